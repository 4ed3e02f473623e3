"""The trackers' due-date changes as entries of the plan's slip log.

A milestone's due date lives in the plan file and, often, in a tracker container the
milestone names: a Jira epic (``{source: jira, epic: WEB-1}``, its ``duedate``) or a GitHub
or GitLab milestone (``{source: site, milestone: v2 launch}``, its due date). Every change of
those is the milestone's too, logged with ``where`` naming the container
(``jira:WEB-1``, ``site:v2 launch``). Only a selector that is exactly one container counts,
as for ``stratmap push``: JQL, keys and labels choose items, not a date.

The plan's own ``push`` is one source of change, not a slip of the tracker: the plan's
change is already in the log (``where = plan``), so the date a push wrote is logged as
``push:<source>:<container>`` and not counted, and the tracker's own record of that write
(a Jira changelog entry to exactly the pushed date, from ``PUSH_ECHO_BEFORE`` before the
push to ``PUSH_ECHO_AFTER`` after it) is the same change, left out. GitHub and GitLab keep
no history: the store compares each date a sync sees with the last one it knows, the
pushed one included, so a push leaves nothing there to leave out.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from stratmap.models.plan import Plan
from stratmap.models.records import DueChange, TrackerDue

CONTAINER_KEYS = {"jira": "epic", "github": "milestone", "gitlab": "milestone"}
"""Source kind -> the selector key naming a container with a due date whose history the
connector records."""
PUSH_ECHO_BEFORE = timedelta(minutes=5)
"""How much earlier than the push's own record the tracker may time its write (clocks
differ)."""
PUSH_ECHO_AFTER = timedelta(hours=1)
"""How long after a push a tracker change to exactly the pushed date is the push's own."""


def containers(plan: Plan) -> dict[tuple[str, str], list[str]]:
    """``(source, container) -> milestones`` (``goal.milestone``) naming it, in plan order."""
    named: dict[tuple[str, str], list[str]] = {}
    for goal in plan.goals:
        for milestone in goal.milestones:
            ref = f"{goal.id}.{milestone.id}"
            for selector in milestone.work:
                source = plan.sources.get(selector.source)
                key = CONTAINER_KEYS.get(source.kind) if source is not None else None
                criteria = selector.criteria()
                if key is None or set(criteria) != {key}:
                    continue
                refs = named.setdefault((selector.source, str(criteria[key])), [])
                if ref not in refs:
                    refs.append(ref)
    return named


def is_push_echo(change: TrackerDue, pushes: Iterable[TrackerDue]) -> bool:
    """Whether a change from the tracker's history is a push's own write: to exactly the
    pushed date, right after the push."""
    return change.origin == "history" and any(
        p.to_due == change.to_due
        and p.at - PUSH_ECHO_BEFORE <= change.at <= p.at + PUSH_ECHO_AFTER
        for p in pushes)


def tracker_due_changes(plan: Plan, dues: Iterable[TrackerDue]) -> list[DueChange]:
    """The slip log entries the trackers give the plan's milestones, oldest first per
    container; pushes are entries that do not count as slips, their echoes none."""
    named = containers(plan)
    grouped: dict[tuple[str, str], list[TrackerDue]] = {}
    for due in dues:
        if (due.source, due.container) in named:
            grouped.setdefault((due.source, due.container), []).append(due)
    found: list[DueChange] = []
    for (source, container), changes in sorted(grouped.items()):
        changes.sort(key=lambda d: (d.at, d.origin))
        pushes = [d for d in changes if d.origin == "push"]
        for due in changes:
            if is_push_echo(due, pushes):
                continue
            pushed = due.origin == "push"
            where = f"{'push:' if pushed else ''}{source}:{container}"
            found.extend(DueChange(plan=plan.name, milestone=ref, at=due.at, where=where,
                                   from_due=due.from_due, to_due=due.to_due,
                                   counted=not pushed)
                         for ref in named[(source, container)])
    return found
