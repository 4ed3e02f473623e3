"""The report as Markdown: for the terminal, a wiki page, or a Prefect artifact.

Tracker text is untrusted: every value taken from a tracker or the plan goes through
:func:`cell`, so a title with ``|``, a newline or HTML cannot break a table or inject markup.
"""

from __future__ import annotations

import html

from models.report import Finding, Report, Status

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
    text = html.escape(" ".join(text.split()), quote=False)
    for char in "\\|`*_[]<>#":
        text = text.replace(char, "\\" + char)
    return text


def status(value: Status) -> str:
    return f"{STATUS_MARK[value]} {STATUS_LABEL[value]}"


def pct(value: float) -> str:
    return f"{value:.0%}"


def where(finding: Finding) -> str:
    return finding.milestone or finding.goal or (finding.item or "plan")


def render(report: Report) -> str:
    lines = [
        f"# {cell(report.plan)}",
        "",
        f"Judged at {report.as_of.isoformat()} · overall {status(report.status)} · "
        f"progress {pct(report.progress)} · leader {cell(report.leader)}",
        "",
        "## Goals",
        "",
        "| Goal | Status | Progress | Owner |",
        "|---|---|---|---|",
    ]
    for goal in report.goals:
        lines.append(f"| {cell(goal.title)} (`{goal.id}`) | {status(goal.status)} | "
                     f"{pct(goal.progress)} | {cell(goal.owner or '—')} |")
    lines += ["", "## Milestones", "",
              "| Milestone | Status | Progress | Items done | Due | Owner | Last movement |",
              "|---|---|---|---|---|---|---|"]
    for goal in report.goals:
        for m in goal.milestones:
            moved = m.last_movement.date().isoformat() if m.last_movement else "—"
            lines.append(
                f"| {cell(m.title)} (`{m.id}`) | {status(m.status)} | {pct(m.progress)} | "
                f"{m.items.done}/{m.items.total} | {m.due or '—'} | {cell(m.owner or '—')} | "
                f"{moved} |"
            )
    lines += ["", f"## Findings ({len(report.findings)})", ""]
    if report.findings:
        lines += ["| Severity | Kind | Where | Person | Message |", "|---|---|---|---|---|"]
        for f in report.findings:
            lines.append(f"| {f.severity.value} | {f.kind.value} | {cell(where(f))} | "
                         f"{cell(f.person or '—')} | {cell(f.message)} |")
    else:
        lines.append("No findings: the plan is on track.")
    if report.unknown_people:
        lines += ["", "## Unknown people", "",
                  "Tracker accounts with activity that match no person of the plan "
                  "(add them under `people:` with `accounts:`).", "",
                  "| Source | Account | Name | Last activity |", "|---|---|---|---|"]
        for u in report.unknown_people:
            last = u.last_activity.date().isoformat() if u.last_activity else "—"
            lines.append(f"| {cell(u.source)} | {cell(u.account)} | "
                         f"{cell(u.display_name or '—')} | {last} |")
    if report.flagged_items:
        lines += ["", "## Items with payload problems", "",
                  ", ".join(cell(i) for i in report.flagged_items)]
    return "\n".join(lines) + "\n"
