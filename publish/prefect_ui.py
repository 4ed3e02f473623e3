"""Publishing into Prefect: artifacts a leader follows, events Automations react to, and
alerts through Prefect notification blocks. Called from the flows in :mod:`flows.track`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

from stratmap.models.plan import Plan
from stratmap.models.report import Kind, Report
from stratmap.models.text import visible
from stratmap.publish.changes import Alert, Change, alert_text
from stratmap.publish.map import strategic_map_image
from stratmap.publish.markdown import cell, render

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


def resource(plan: Plan, ref: str | None = None) -> dict[str, str]:
    base = f"stratmap.plan.{slug(plan.name)}"
    if ref is None:
        return {"prefect.resource.id": base, "prefect.resource.name": plan.name,
                "stratmap.plan": slug(plan.name)}
    kind = "milestone" if "." in ref else "goal"
    return {"prefect.resource.id": f"{base}.{kind}.{ref}", "prefect.resource.name": ref,
            "stratmap.plan": slug(plan.name), f"stratmap.{kind}": ref}


def publish_artifacts(plan: Plan, report: Report, *, html_url: str | None = None) -> list[UUID]:
    """The Markdown report (stable key), the findings table, progress per goal, a link."""
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_progress_artifact,
        create_table_artifact,
    )

    key = slug(plan.name)
    ids = [
        create_markdown_artifact(key=report_key(plan),
                                 markdown=render(report, map_image=strategic_map_image(report)),
                                 description=f"stratmap report: {cell(plan.name)}"),
        create_table_artifact(
            key=f"stratmap-{key}-findings",
            table=[{"severity": f.severity.value, "kind": f.kind.value,
                    "where": visible(f.milestone or f.goal or f.item or ""),
                    "person": visible(f.person or ""), "message": visible(f.message)}
                   for f in report.findings]
            or [{"severity": "", "kind": "", "where": "", "person": "",
                 "message": "no findings"}],
            description=f"{len(report.findings)} findings as of {report.as_of.isoformat()}",
        ),
    ]
    for goal in report.goals:
        ids.append(create_progress_artifact(
            progress=round(goal.progress * 100, 1),
            description=f"{cell(goal.title)} ({goal.id}): {goal.status.value}",
        ))
    if html_url:
        ids.append(create_link_artifact(key=f"stratmap-{key}-html", link=html_url,
                                        link_text=f"{visible(plan.name)}: full report"))
    return [i for i in ids if isinstance(i, UUID)]


def emit_changes(plan: Plan, report: Report, changes: list[Change]) -> list[str]:
    """One event per change, plus ``stratmap.plan.judged``; returns the event names."""
    from prefect.events import emit_event

    emitted = []
    plan_resource = {**resource(plan), "prefect.resource.role": "plan"}
    for change in changes:
        subject = change.subject
        if subject.finding is None and change.after is not None:
            name = f"stratmap.{subject.entity}.status-changed"
            payload: dict[str, Any] = {"from": change.before, "to": change.after,
                                       "title": subject.title}
        elif change.after is not None and subject.finding is not None:
            name = EVENT_FOR_FINDING[subject.finding.kind]
            payload = subject.finding.model_dump(mode="json")
        else:
            name, payload = "stratmap.finding.cleared", {"kind": change.before}
        emit_event(event=name, resource=resource(plan, subject.ref),
                   related=[plan_resource], payload=payload)
        emitted.append(name)
    emit_event(event="stratmap.plan.judged", resource=resource(plan), payload={
        "status": report.status.value, "progress": report.progress,
        "findings": len(report.findings), "as_of": report.as_of.isoformat()})
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
