"""What the command line shows: progress bars while syncing and the plan's summary.

Tracker text (titles, names, messages) is printed as plain text, never read as markup:
it goes into :class:`rich.text.Text` (no markup parsing) through :func:`plain` (control
characters shown escaped, secrets masked).
"""

from __future__ import annotations

from types import TracebackType
from zoneinfo import ZoneInfo as zone

from rich.console import Console
from rich.padding import Padding
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from stratmap.connectors.base import SourceError
from stratmap.flows.pipeline import SyncResult
from stratmap.flows.terminal import plain
from stratmap.models.records import Page
from stratmap.models.report import Finding, Report

STATUS_STYLE = {
    "done": "green", "not_started": "dim", "on_track": "green", "at_risk": "yellow",
    "off_track": "bold red",
}
SEVERITY_STYLE = {"info": "cyan", "warning": "yellow", "critical": "bold red"}
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


class SyncProgress:
    """A progress bar per source (an :class:`~stratmap.flows.run.Observer`)."""

    def __init__(self, console: Console, sources: list[str], *, quiet: bool) -> None:
        self.console = console
        self.progress = Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.fields[items]} items · {task.fields[requests]} requests"),
            TimeElapsedColumn(), console=console, transient=False, disable=quiet)
        self.tasks: dict[str, TaskID] = {
            name: self.progress.add_task(f"sync {name}", total=None, items=0, requests=0)
            for name in sources}

    def __enter__(self) -> SyncProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.progress.stop()

    def page(self, source: str, page: Page) -> None:
        task = self.tasks[source]
        shown = self.progress.tasks[task]
        self.progress.update(task, advance=len(page.items),
                             items=shown.completed + len(page.items),
                             requests=shown.fields["requests"] + page.requests)

    def synced(self, source: str, result: SyncResult) -> None:
        done = max(1, result.items)
        self.progress.update(self.tasks[source], total=done, completed=done,
                             description=f"synced {source}")

    def failed(self, source: str, error: SourceError) -> None:
        self.progress.update(self.tasks[source], description=f"failed {source}")


def sync_failures(console: Console, failed: dict[str, str]) -> None:
    for message in failed.values():
        console.print(Text.assemble(("sync failed: ", "red"), plain(message)))
    if failed:
        console.print(Text("the report is stale for these sources: judged from what the store "
                           "held before; what was synced before the error is kept"))


COMPACT_BELOW = 100
"""Terminals narrower than this many columns get the findings as lines, not a table."""


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 goal``, ``2 goals``: a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def by_severity(report: Report) -> list[Finding]:
    """The findings, most severe first (the engine's order within one severity)."""
    return sorted(report.findings, key=lambda f: -SEVERITY_RANK[f.severity.value])


def person_name(report: Report, handle: str | None) -> str:
    """A plan handle as a person: their name from the plan, else the handle."""
    if handle is None:
        return ""
    names = {p.handle: p.name for p in report.people}
    return names.get(handle) or handle


def summary(report: Report, console: Console) -> None:
    """The goals and milestones, then the findings, unknown people and flagged items."""
    title = Text(f"{plain(report.plan)} — as of {shown_moment(report)}")
    if report.stale_sources:
        title.append(" — STALE: not synced: " + ", ".join(plain(s.source)
                                                          for s in report.stale_sources),
                     "bold yellow")
    table = Table(title=title, title_justify="left")
    for column in ("Goal / milestone", "Status", "Progress", "Items", "Due", "Owner"):
        table.add_column(column)
    for goal in report.goals:
        table.add_row(Text.assemble((plain(goal.title), "bold"), f" ({goal.id})"),
                      Text(goal.status.value, STATUS_STYLE[goal.status.value]),
                      f"{goal.progress:.0%}", "", "", _owner(report, goal.owner))
        for m in goal.milestones:
            items = (f"{m.items.done}/{m.items.total}" if m.items.total
                     else Text("no items", "yellow"))
            table.add_row(Text(f"  {plain(m.title)}"), Text(m.status.value, STATUS_STYLE[m.status.value]),
                          f"{m.progress:.0%}", items, str(m.due or ""),
                          _owner(report, m.owner))
    console.print(table)
    if report.findings and console.width < COMPACT_BELOW:
        _findings_compact(report, console)
    elif report.findings:
        findings = Table(title=plural(len(report.findings), "finding"), title_justify="left")
        for column in ("Severity", "Kind", "Where", "Who must act", "Message"):
            findings.add_column(column)
        for f in by_severity(report):
            findings.add_row(Text(f.severity.value, SEVERITY_STYLE[f.severity.value]),
                             f.kind.value, Text(plain(f.item or f.milestone or f.goal or "")),
                             Text(plain(person_name(report, f.person))),
                             Text(plain(f.message)))
        console.print(findings)
    if report.stale_sources:
        names = ", ".join(plain(s.source) for s in report.stale_sources)
        console.print(Text.assemble(("Stale", "yellow"), f" (not synced this run): {names}"))
    if report.unknown_people:
        names = ", ".join(plain(f"{u.display_name} ({u.source}:{u.account})" if u.display_name
                                else f"{u.source}:{u.account}")
                          for u in report.unknown_people)
        console.print(Text.assemble(("Unknown people", "yellow"),
                                    f" (add them to the plan): {names}"))
    if report.flagged_items:
        console.print(Text.assemble(
            ("Items with payload problems", "yellow"),
            " (stored and judged as they are; see their flags in the store): "
            + plain(", ".join(report.flagged_items))))


def _findings_compact(report: Report, console: Console) -> None:
    """The findings for a narrow terminal: a heading line and the message beneath it, words
    never split."""
    console.print(Text(plural(len(report.findings), "finding"), "italic"))
    for f in by_severity(report):
        where = plain(f.item or f.milestone or f.goal or "plan")  # a plan-wide finding
        who = plain(person_name(report, f.person))
        console.print(Text.assemble((f"{f.severity.value:<8}", SEVERITY_STYLE[f.severity.value]),
                                    f" {f.kind.value} ", (where, "bold"),
                                    (f" → {who}" if who else "")), overflow="ellipsis",
                      no_wrap=True)
        console.print(Padding(Text(plain(f.message)), (0, 0, 0, 2), expand=False))


def shown_moment(report: Report) -> str:
    """The report's moment as the plan reads it: in the plan's time zone, to the minute."""
    moment = report.as_of.astimezone(zone(report.timezone))
    return f"{moment:%Y-%m-%d %H:%M} {report.timezone}"


def _owner(report: Report, owner: str | None) -> Text:
    return Text(plain(person_name(report, owner))) if owner else Text("—", "red")
