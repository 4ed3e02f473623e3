"""The report as Markdown: for the terminal, a wiki page, or a Prefect artifact.

Tracker text is untrusted: every value taken from a tracker or the plan goes through
:func:`cell`, so a title with ``|``, a newline or HTML cannot break a table or inject markup.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from stratmap.models.report import Finding, Report, Severity, Status
from stratmap.models.text import visible
from stratmap.publish.map import FILL

STATUS_LABEL = {
    Status.DONE: "done",
    Status.NOT_STARTED: "not started",
    Status.ON_TRACK: "on track",
    Status.AT_RISK: "at risk",
    Status.OFF_TRACK: "off track",
}
STATUS_MARK = {
    Status.DONE: "✅",
    Status.NOT_STARTED: "⏳",
    Status.ON_TRACK: "🟢",
    Status.AT_RISK: "🟠",
    Status.OFF_TRACK: "🔴",
}


def cell(value: object) -> str:
    """A value made safe for one Markdown table cell."""
    text = "" if value is None else str(value)
    text = html.escape(" ".join(visible(text).split()), quote=False)
    for char in "\\|`*_[]<>#":
        text = text.replace(char, "\\" + char)
    return text


def status(value: Status) -> str:
    return f"{STATUS_MARK[value]} {STATUS_LABEL[value]}"


def pct(value: float) -> str:
    return f"{value:.0%}"


def where(finding: Finding) -> str:
    return finding.milestone or finding.goal or (finding.item or "plan")


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_SAFE_URL = re.compile(r"^https?://[^\s()<>\[\]`|]+$")


def local(report: Report, moment: datetime, *, minutes: bool = True) -> str:
    """A moment in the plan's time zone: to the minute, or (``minutes=False``) the day."""
    value = moment.astimezone(ZoneInfo(report.timezone))
    return f"{value:%Y-%m-%d %H:%M} {report.timezone}" if minutes else f"{value:%Y-%m-%d}"


def person(report: Report, handle: str | None) -> str:
    """A plan handle as a person's name (the handle if the plan gives no name)."""
    if handle is None:
        return "—"
    names = {p.handle: p.name for p in report.people}
    return names.get(handle) or handle


def item_link(finding: Finding) -> str:
    """The finding's item, linked to the tracker when its URL is known."""
    if finding.item is None:
        return cell(where(finding))
    url = finding.evidence.get("url")
    if isinstance(url, str) and _SAFE_URL.match(url):
        return f"[{cell(finding.item)}]({url})"
    return cell(finding.item)


MERMAID_CLASS = {
    state: (f"status_{state.value}", f"fill:{fill},stroke:{border},color:#1f2328")
    for state, (fill, border) in FILL.items()
}
"""The map's colours (publish.map.FILL), as Mermaid classes."""
_MERMAID_PLAIN = frozenset(" .,:-/()+%'")


def mermaid_text(value: object) -> str:
    """Text made safe inside a quoted Mermaid label: anything but letters, digits and
    plain punctuation becomes an entity code (``#60;``), so no quote, bracket, backtick,
    ``<`` or ``#`` of a title can end the label, start markup or close the code fence."""
    text = " ".join(("" if value is None else str(value)).split())
    return "".join(char if char.isalnum() or char in _MERMAID_PLAIN else f"#{ord(char)};"
                   for char in text)


def _node(name: str, title: str, *facts: str) -> str:
    label = mermaid_text(title)
    if facts:
        label += "<br/>" + " · ".join(mermaid_text(fact) for fact in facts)
    return f'    {name}["{label}"]'


def strategic_map(report: Report) -> list[str]:
    """The plan → goals → milestones as a Mermaid flowchart, coloured by status.

    Node names are generated (``g1``, ``g1m2``), never taken from the plan; ``depends_on``
    is a dotted arrow from a milestone to the one it depends on.
    """
    lines = ["```mermaid", "flowchart LR",
             _node("plan", report.plan, STATUS_LABEL[report.status], pct(report.progress))]
    classes: dict[Status, list[str]] = {s: [] for s in MERMAID_CLASS}
    classes[report.status].append("plan")
    names: dict[str, str] = {}
    for g_number, goal in enumerate(report.goals, start=1):
        goal_node = f"g{g_number}"
        lines.append(_node(goal_node, goal.title, STATUS_LABEL[goal.status],
                           pct(goal.progress)))
        lines.append(f"    plan --> {goal_node}")
        classes[goal.status].append(goal_node)
        for m_number, m in enumerate(goal.milestones, start=1):
            node = f"{goal_node}m{m_number}"
            names[m.id] = node
            work = (f"{m.items.points_done:g}/{m.items.points_total:g} points"
                    if m.items.points_total is not None and m.items.points_done is not None
                    else f"{m.items.done}/{m.items.total} items")
            facts = [STATUS_LABEL[m.status], work] + ([f"due {m.due}"] if m.due else [])
            lines.append(_node(node, m.title, *facts))
            lines.append(f"    {goal_node} --> {node}")
            classes[m.status].append(node)
    for goal in report.goals:
        for m in goal.milestones:
            for needed in m.depends_on:
                if needed in names:
                    lines.append(f"    {names[m.id]} -. depends on .-> {names[needed]}")
    for state, (name, style) in MERMAID_CLASS.items():
        lines.append(f"    classDef {name} {style}")
        if classes[state]:
            lines.append(f"    class {','.join(classes[state])} {name}")
    lines.append("```")
    return lines


def number(value: float | None, unit: str | None = None) -> str:
    """A measure's number for a table: ``1,234.5 EUR``, or a dash."""
    if value is None:
        return "—"
    return f"{value:,.6g}" + (f" {cell(unit)}" if unit else "")


def measures_table(report: Report) -> list[str]:
    """The plan's measures, one row each (nothing for a plan without any)."""
    rows = [measure for goal in report.goals for measure in goal.measures]
    rows += [measure for goal in report.goals for m in goal.milestones for measure in m.measures]
    if not rows:
        return []
    lines = ["", "## Measures", "",
             "| Measure | Kind | Last value | Baseline | Target | Progress | Trend/day | "
             "Needs/day | Forecast at target |",
             "|---|---|---|---|---|---|---|---|---|"]
    for m in rows:
        last = (f"{number(m.last_value, m.unit)} ({local(report, m.last_at, minutes=False)})"
                if m.last_at else "no value")
        rate = f"{m.rate:+,.4g}" if m.rate is not None else "—"
        needs = f"{m.required_rate:+,.4g}" if m.required_rate is not None else "—"
        lines.append(
            f"| {f'{cell(m.title)} (`{m.id}`)' if m.title else f'`{m.id}`'} | "
            f"{'lead' if m.lead else 'lag'}, "
            f"{m.direction} | {last} | {number(m.baseline.value, m.unit)} on "
            f"{m.baseline.date} | {number(m.target.value, m.unit)} by {m.target.date} | "
            f"{pct(m.progress)} | {rate} | {needs} | {number(m.forecast, m.unit)} |")
    return lines


def organisation(report: Report) -> list[str]:
    """The organisation section: engagement and the goals' balance of recent activity."""
    lines: list[str] = []
    if report.engagement is not None and report.engagement.people:
        e = report.engagement
        quiet = ", ".join(cell(person(report, h)) for h in e.quiet) or "nobody"
        lines += [f"Engagement: {e.active} of {e.people} people ({pct(e.share)}) moved or "
                  f"commented on a plan item in the last {e.window}; quiet: {quiet}."]
    if report.balance is not None:
        b = report.balance
        lines += ["", f"| Goal | Activity (last {b.window}) | Share | Weight share |",
                  "|---|---|---|---|"]
        lines += [f"| `{g.goal}` | {g.activity} | {pct(g.share)} | {pct(g.weight_share)} |"
                  for g in b.goals]
    if report.slip_log:
        lines += ["", "Slip log: every change of a milestone's due date.", "",
                  "| Milestone | Seen | Where | From | To | Days later |", "|---|---|---|---|---|---|"]
        lines += [f"| `{e.milestone}` | {local(report, e.at, minutes=False)} | {cell(e.where)} | "
                  f"{e.from_due or '—'} | {e.to_due or '—'} | "
                  f"{'—' if e.slip_days is None else f'{e.slip_days:g}'} |"
                  for e in report.slip_log]
    if report.unmapped_share:
        lines += ["", "Unmapped work: each source's share of status changes and comments on "
                  "items no milestone selects, week by week (oldest first; — no activity).", "",
                  f"| Source | Last {len(report.unmapped_share[0].weeks)} weeks | By week |",
                  "|---|---|---|"]
        lines += [f"| {cell(s.source)} | {_share(s.share)} ({s.unmapped} of {s.activity}) | "
                  f"{' · '.join(_share(w.share) for w in s.weeks)} |"
                  for s in report.unmapped_share]
    return ["", "## Organisation", "", *lines] if lines else []


def _share(value: float | None) -> str:
    return "—" if value is None else pct(value)


def render(report: Report, *, map_image: str | None = None) -> str:
    """Goals and findings first (what a leader acts on), then milestones and the map.

    The map is a Mermaid flowchart (GitHub, GitLab and most wikis draw it), or, with
    ``map_image`` (an image URL, such as :func:`publish.map.strategic_map_image`'s data
    URI), that image: the Prefect UI shows Mermaid as code but draws images.
    """
    lines = [
        f"# {cell(report.plan)}",
        "",
        f"Judged at {local(report, report.as_of)} · overall {status(report.status)} · "
        f"progress {pct(report.progress)} · leader {cell(person(report, report.leader))}",
        "",
    ]
    if report.stale_sources:
        lines += ["**Stale**: these sources could not be synced this run; what rests on them "
                  "is judged from what was stored before, and nothing about it is alerted.", "",
                  "| Source | Last synced | Error |", "|---|---|---|"]
        for stale in report.stale_sources:
            last = local(report, stale.last_synced) if stale.last_synced else "never"
            lines.append(f"| {cell(stale.source)} | {last} | {cell(stale.error)} |")
        lines.append("")
    lines += [
        "## Goals",
        "",
        "| Goal | Status | Progress | Owner |",
        "|---|---|---|---|",
    ]
    for goal in report.goals:
        lines.append(f"| {cell(goal.title)} (`{goal.id}`) | {status(goal.status)} | "
                     f"{pct(goal.progress)} | {cell(person(report, goal.owner))} |")
    lines += ["", f"## Findings ({len(report.findings)})", ""]
    if report.findings:
        lines += ["| Severity | Kind | Where | Who must act | Message |",
                  "|---|---|---|---|---|"]
        for f in sorted(report.findings, key=lambda f: SEVERITY_ORDER[f.severity]):
            lines.append(f"| {f.severity.value} | {f.kind.value} | {item_link(f)} | "
                         f"{cell(person(report, f.person))} | {cell(f.message)} |")
    else:
        lines.append("No findings: the plan is on track.")
    lines += ["", "## Milestones", "",
              "| Milestone | Status | Progress | Items done | Due | Owner | Last movement |",
              "|---|---|---|---|---|---|---|"]
    for goal in report.goals:
        for m in goal.milestones:
            moved = local(report, m.last_movement, minutes=False) if m.last_movement else "—"
            items = f"{m.items.done}/{m.items.total}" if m.items.total else "no items"
            lines.append(
                f"| {cell(m.title)} (`{m.id}`) | {status(m.status)} | {pct(m.progress)} | "
                f"{items} | {m.due or '—'} | {cell(person(report, m.owner))} | {moved} |"
            )
    lines += measures_table(report)
    lines += ["", "## Strategic map", ""]
    if map_image:
        lines += [f"![Strategic map: the plan, its goals and milestones, coloured by status]"
                  f"({map_image})"]
    else:
        lines += strategic_map(report)
    if report.people:
        lines += ["", "## People", "",
                  "| Person | Owns | Open items | Last activity |", "|---|---|---|---|"]
        for p in report.people:
            last = local(report, p.last_activity, minutes=False) if p.last_activity else "—"
            name = f"{cell(p.name)} (`{p.handle}`)" if p.name else f"`{p.handle}`"
            lines.append(f"| {name} | {cell(', '.join(p.owns) or '—')} | {p.open_items} | "
                         f"{last} |")
    lines += organisation(report)
    if report.unknown_people:
        lines += ["", "## Unknown people", "",
                  "Tracker accounts with activity that match no person of the plan "
                  "(add them under `people:` with `accounts:`).", "",
                  "| Source | Account | Name | Last activity |", "|---|---|---|---|"]
        for u in report.unknown_people:
            last = local(report, u.last_activity, minutes=False) if u.last_activity else "—"
            lines.append(f"| {cell(u.source)} | {cell(u.account)} | "
                         f"{cell(u.display_name or '—')} | {last} |")
    if report.flagged_items:
        lines += ["", "## Items with payload problems", "",
                  ", ".join(cell(i) for i in report.flagged_items)]
    return "\n".join(lines) + "\n"
