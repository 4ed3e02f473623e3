"""Publishing into Prefect: artifacts a leader follows, events Automations react to, and
alerts through Prefect notification blocks. Called from the flows in :mod:`flows.track`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from stratmap.models.plan import Plan
from stratmap.models.report import Kind, Report, Status
from stratmap.models.text import visible
from stratmap.publish.changes import RANK, Alert, Change, alert_text
from stratmap.publish.map import strategic_map_image
from stratmap.publish.markdown import (
    SEVERITY_ORDER,
    STATUS_LABEL,
    STATUS_MARK,
    cell,
    person,
    render,
)

log = logging.getLogger(__name__)

EVENT_FOR_FINDING = {
    Kind.STALLED: "stratmap.milestone.stalled",
    Kind.OVERDUE: "stratmap.milestone.overdue",
    Kind.SLIPPING: "stratmap.milestone.slipping",
    Kind.MISSING_FEEDBACK: "stratmap.feedback.missing",
    Kind.SINGLE_POINT_OF_FAILURE: "stratmap.goal.single-point-of-failure",
    Kind.UNOWNED: "stratmap.plan.unowned",
    Kind.INACTIVE_OWNER: "stratmap.owner.inactive",
    Kind.UNMAPPED_WORK: "stratmap.work.unmapped",
    Kind.EMPTY_SELECTOR: "stratmap.milestone.empty-selector",
    Kind.OFF_TARGET: "stratmap.measure.off-target",
    Kind.STALE_MEASURE: "stratmap.measure.stale",
    Kind.GOAL_IMBALANCE: "stratmap.goal.imbalance",
    Kind.DISENGAGED: "stratmap.person.disengaged",
    Kind.OVERLOADED_OWNER: "stratmap.owner.overloaded",
    Kind.DATE_SLIPPED: "stratmap.milestone.date-slipped",
    Kind.OPTIMISTIC_STATUS: "stratmap.milestone.status-contradicted",
    Kind.BLOCKED_BY_OTHER_TEAM: "stratmap.milestone.blocked-by-other-team",
}


def slug(text: str) -> str:
    """Lowercase letters, digits and dashes: what artifact keys and resource ids allow."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", text.lower())).strip("-") or "plan"


def report_key(plan: Plan) -> str:
    return f"stratmap-{slug(plan.name)}-report"


def resource(plan: Plan, ref: str | None = None, *, item: str | None = None,
             labels: dict[str, str] | None = None) -> dict[str, str]:
    """The event resource: the plan, one of its goals or milestones (``ref``), or a tracker
    item (``item``, for work mapped to no milestone); ``labels`` for Automations to match."""
    base = f"stratmap.plan.{slug(plan.name)}"
    extra = dict(labels or {})
    if ref is None and item is None:
        return {"prefect.resource.id": base, "prefect.resource.name": plan.name,
                "stratmap.plan": slug(plan.name), **extra}
    if ref is None:
        assert item is not None
        return {"prefect.resource.id": f"{base}.item.{item}", "prefect.resource.name": item,
                "stratmap.plan": slug(plan.name), "stratmap.item": item, **extra}
    kind = "milestone" if "." in ref else "goal"
    return {"prefect.resource.id": f"{base}.{kind}.{ref}", "prefect.resource.name": ref,
            "stratmap.plan": slug(plan.name), f"stratmap.{kind}": ref, **extra}


def local_time(moment: datetime, zone: str) -> datetime:
    """``moment`` in the plan's time zone (an unknown zone leaves it in UTC)."""
    try:
        return moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        return moment.astimezone(UTC)


def minute(moment: datetime, zone: str) -> str:
    """A time as people read it in the plan's zone, to the minute: ``2027-03-01 09:00 GMT``."""
    local = local_time(moment, zone)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone}"


def percent(progress: float) -> int:
    """Progress as the report rounds it (``pct``: 0.178 → 18), for progress artifacts."""
    return int(f"{progress * 100:.0f}")


STATUS_WORD = {status: STATUS_LABEL[status].upper() for status in Status}
"""Status as a word: the UI's fonts may draw no emoji, and a colour alone says nothing."""
MESSAGE_WIDTH = 36
"""Characters of a finding's message shown in the findings table; the full text follows."""


def plain_marks(markdown: str) -> str:
    """The report's status marks (emoji beside each status word) dropped: the Prefect UI's
    fonts often draw none, and the word says it."""
    for mark in STATUS_MARK.values():
        markdown = markdown.replace(f"{mark} ", "").replace(mark, "")
    return markdown


def _short(text: str, width: int = MESSAGE_WIDTH) -> str:
    return text if len(text) <= width else text[:width - 1].rstrip() + "…"


def findings_table(report: Report, *, heading: str = "##") -> list[str]:
    """The findings as a table narrow enough for the artifact page (most severe first, people
    by name, each message cut to :data:`MESSAGE_WIDTH` characters, numbered), the full
    messages listed below it."""
    lines = ["| # | severity | kind | where | person | message |",
             "|---|---|---|---|---|---|"]
    full: list[str] = []
    ordered = sorted(report.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    for number, f in enumerate(ordered, start=1):
        message = visible(f.message)
        who = person(report, f.person) if f.person else ""
        lines.append(f"| {number} | {f.severity.value.upper()} | {f.kind.value.replace('_', ' ')} "
                     f"| {cell(f.milestone or f.goal or f.item or 'plan')} "
                     f"| {cell(who)} | {cell(_short(message))} |")
        full.append(f"{number}. {cell(message)}")
    return [*lines, "", f"{heading} Full messages", "", *full]


def findings_markdown(plan: Plan, report: Report) -> str:
    """The findings artifact: :func:`findings_table` under a title."""
    when = minute(report.as_of, plan.timezone)
    lines = [f"# Findings: {cell(plan.name)}", "",
             f"{len(report.findings)} finding(s), judged {when}.", ""]
    if not report.findings:
        return "\n".join([*lines, "No findings."]) + "\n"
    return "\n".join([*lines, *findings_table(report)]) + "\n"


def report_markdown(plan: Plan, report: Report) -> str:
    """The report artifact: the Markdown report as the UI should show it. Its findings table
    is :func:`findings_table` (messages cut to fit, full text below), the time it was judged
    reads in the plan's zone to the minute, and status marks are words alone."""
    text = plain_marks(render(report, map_image=strategic_map_image(report)))
    text = text.replace(report.as_of.isoformat(), minute(report.as_of, plan.timezone))
    lines = text.split("\n")
    heading = next((i for i, line in enumerate(lines) if line.startswith("## Findings")), None)
    if heading is None or not report.findings:
        return text
    start = next((i for i in range(heading + 1, len(lines)) if lines[i].startswith("|")),
                 None)
    if start is None:
        return text
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:start], *findings_table(report, heading="###"),
                      *lines[end:]])


_SVG_PROPERTIES = frozenset({
    "fill", "fill-opacity", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap",
    "stroke-linejoin", "stroke-dasharray", "opacity", "font-family", "font-size",
    "font-weight", "font-style", "text-anchor", "dominant-baseline"})


def _breakable(path: str) -> str:
    """A long path that may wrap after each ``/`` (a ``<wbr>``), not widen the page."""
    return "/<wbr>".join(cell(part) for part in path.split("/"))


def _presentation(style: re.Match[str]) -> str:
    """``style="fill: #fff; stroke: none"`` as ``fill="#fff" stroke="none"`` (what an SVG
    also understands); other declarations are dropped."""
    attributes = []
    for declaration in style.group(1).split(";"):
        name, _, value = declaration.partition(":")
        name, value = name.strip().lower(), value.strip()
        if name in _SVG_PROPERTIES and value and '"' not in value:
            attributes.append(f' {name}="{value}"')
    return "".join(attributes)


def html_markdown(plan: Plan, html: str, *, html_url: str | None) -> str:
    """The HTML report as a Markdown artifact the UI opens: the page's body as raw HTML
    (the UI renders it and drops styles and anything active), with no blank or indented
    line that Markdown would read as a paragraph break or a code block."""
    found = re.search(r"<body[^>]*>(.*)</body>", html, flags=re.DOTALL | re.IGNORECASE)
    body = found.group(1) if found else html
    body = re.sub(r"<script\b.*?</script>", "", body, flags=re.DOTALL | re.IGNORECASE)
    # Drawings sized in points would widen the page past the UI's column: without a fixed
    # width and height an SVG fills the column and keeps its shape (its viewBox).
    body = re.sub(r"<svg\b[^>]*>", lambda tag: re.sub(r'\s(width|height)="[^"]*"', "",
                                                      tag.group(0)), body)
    # The UI drops style attributes: a drawing's styles become SVG presentation attributes.
    body = re.sub(r'\sstyle="([^"]*)"', _presentation, body)
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    head = [f"_The HTML report of {cell(plan.name)}._"
            + (f" Also written on the worker to {_breakable(html_url)}" if html_url else ""),
            ""]
    return "\n".join([*head, *lines]) + "\n"


def publish_artifacts(plan: Plan, report: Report, *, html_url: str | None = None,
                      html: str | None = None) -> list[UUID]:
    """The Markdown report (stable key), the findings (a Markdown table that fits the page,
    full messages below it), a keyed progress artifact per goal with the report's rounding,
    and the HTML report as an artifact of its own when it was written."""
    from prefect.artifacts import (
        create_markdown_artifact,
        create_progress_artifact,
    )

    key = slug(plan.name)
    when = minute(report.as_of, plan.timezone)
    ids = [
        create_markdown_artifact(key=report_key(plan), markdown=report_markdown(plan, report),
                                 description=f"{cell(plan.name)}: report, judged {when} "
                                             f"({STATUS_WORD[report.status]}, "
                                             f"{percent(report.progress)}%)"),
        create_markdown_artifact(
            key=f"stratmap-{key}-findings", markdown=findings_markdown(plan, report),
            description=f"{cell(plan.name)}: {len(report.findings)} finding(s), judged {when}"),
    ]
    for goal in report.goals:
        ids.append(create_progress_artifact(
            key=f"stratmap-{key}-goal-{slug(goal.id)}",
            progress=percent(goal.progress),
            description=f"{cell(plan.name)} · goal {cell(goal.title)} ({cell(goal.id)}): "
                        f"{STATUS_WORD[goal.status]}, {percent(goal.progress)}% "
                        f"(judged {when})",
        ))
    if html is not None:
        ids.append(create_markdown_artifact(
            key=f"stratmap-{key}-html", markdown=html_markdown(plan, html, html_url=html_url),
            description=f"{cell(plan.name)}: the HTML report, judged {when}"))
    return [i for i in ids if isinstance(i, UUID)]


def direction(before: str | None, after: str) -> str:
    """``worse``, ``better`` or ``same`` from one status to the next; ``new`` when first seen
    (an Automation that reacts to a status getting worse matches ``worse`` only)."""
    if before is None:
        return "new"
    rank_before, rank_after = RANK.get(before, 0), RANK.get(after, 0)
    return "worse" if rank_after > rank_before else "better" if rank_after < rank_before \
        else "same"


def emit_changes(plan: Plan, report: Report, changes: list[Change]) -> list[str]:
    """One event per change, plus ``stratmap.plan.judged``; returns the event names."""
    from prefect.events import emit_event

    emitted = []
    plan_resource = {**resource(plan), "prefect.resource.role": "plan"}
    for change in changes:
        subject = change.subject
        finding = subject.finding
        item = finding.item if finding is not None and subject.ref is None else None
        labels: dict[str, str] = {}
        if subject.finding is None and change.after is not None:
            name = f"stratmap.{subject.entity}.status-changed"
            labels = {"stratmap.status": change.after,
                      "stratmap.direction": direction(change.before, change.after)}
            payload: dict[str, Any] = {"from": change.before, "to": change.after,
                                       "title": subject.title,
                                       "direction": labels["stratmap.direction"]}
        elif change.after is not None and finding is not None:
            name = EVENT_FOR_FINDING[finding.kind]
            payload = {**finding.model_dump(mode="json"),
                       "where": finding.milestone or finding.goal or finding.item or "plan"}
        else:
            name = "stratmap.finding.cleared"
            payload = {"kind": change.before, "title": subject.title,
                       "goal": finding.goal if finding else None,
                       "milestone": finding.milestone if finding else None,
                       "item": finding.item if finding else None}
        emit_event(event=name, resource=resource(plan, subject.ref, item=item, labels=labels),
                   related=[plan_resource], payload=payload)
        emitted.append(name)
    emit_event(event="stratmap.plan.judged", resource=resource(plan), payload={
        "status": report.status.value, "progress": report.progress,
        "findings": len(report.findings), "as_of": report.as_of.isoformat(),
        "judged": minute(report.as_of, plan.timezone)})
    emitted.append("stratmap.plan.judged")
    return emitted


def load_channel(reference: str) -> Any:
    from prefect.blocks.core import Block

    return Block.load(reference.removeprefix("block:"))


def deliver(plan: Plan, alerts: list[Alert], *, attempts: int = 3,
            loader: Callable[[str], Any] = load_channel,
            sleep: Callable[[float], None] = time.sleep) -> tuple[set[str], list[str]]:
    """Send each alert, retrying; (keys delivered, failures). Undelivered ones stay due."""
    assert plan.alerts is not None
    delivered: set[str] = set()
    failures: list[str] = []
    blocks: dict[str, Any] = {}
    for alert in alerts:
        subject, body = alert_text(plan, alert)
        reference = plan.alerts.channels[alert.channel]
        if reference not in blocks:
            try:
                blocks[reference] = loader(reference)
            except Exception as error:
                blocks[reference] = None
                log.error("channel %s: cannot load %s: %s", alert.channel, reference, error)
        block = blocks[reference]
        if block is None:
            failures.append(f"{alert.channel}: cannot load the notification block {reference}")
            continue
        # A block that can address people (stratmap's SMTP e-mail) writes to the e-mail the
        # plan gives each person the alert is for; any other block sends as it is set up.
        send_alert = getattr(block, "send_alert", None)
        emails = [person.email for handle in alert.recipients
                  if (person := plan.people.get(handle)) is not None and person.email]
        for attempt in range(1, attempts + 1):
            try:
                with block.raise_on_failure():
                    if callable(send_alert):
                        send_alert(emails, body, subject)
                    else:
                        block.notify(body=body, subject=subject)
            except Exception as error:
                log.warning("alert to %s failed (attempt %d/%d): %s", alert.channel, attempt,
                            attempts, type(error).__name__)
                # A refused login will be refused again: reported at once, not retried.
                if attempt == attempts or isinstance(error, PermissionError):
                    failures.append(f"{alert.channel}: {type(error).__name__}: {error}")
                    break
                sleep(2.0 ** attempt)
                continue
            delivered.update(alert.keys)
            break
    return delivered, failures
