"""``stratmap push``: the plan's milestone due dates and owners, onto the trackers.

Syncing reads the trackers into the plan's judgement; pushing keeps the trackers' own
containers in step with the plan, so people who live in the tracker see the plan's dates:
the container a milestone names (a Jira epic, a GitHub or GitLab milestone, a Redmine
version, an Azure DevOps Epic or Feature, a Linear project) gets the milestone's ``due`` as
its due date, and a Jira epic, an Azure DevOps item or a Linear project the owner as its
assignee or lead (when the plan knows the owner's account on that source). Only a selector that is
exactly one container (``{source: jira, epic: WEB-1}``, ``{source: site, milestone: v2}``)
is pushed to; JQL, keys and labels choose items, not a container, and are left alone.

Nothing is written without ``apply``; nothing is ever cleared (a milestone without ``due``
leaves the tracker's date as it is), created or deleted. Two milestones that name one
container with different values are reported, and neither value is pushed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from stratmap.connectors.base import Difference, PushCheck, Pusher, Target
from stratmap.flows.pipeline import connector_for
from stratmap.models.plan import Plan
from stratmap.models.records import TrackerDue, utcnow
from stratmap.models.store import Store, record_push

log = logging.getLogger(__name__)

CONTAINERS: dict[str, str] = {
    "jira": "epic", "github": "milestone", "gitlab": "milestone", "redmine": "version",
    "azure_devops": "parent", "linear": "project"}
"""Source kind -> the selector key that names one container there."""
CONTAINER_NAMES = ("a Jira epic, an Azure DevOps Epic/Feature or a Linear project (due date, "
                   "assignee), a GitHub or GitLab milestone or a Redmine version (due date)")


@dataclass
class PushResult:
    """One source's comparison with the plan, and what was written."""

    source: str
    kind: str
    supported: bool = True
    targets: int = 0
    """Containers compared with the plan."""
    check: PushCheck = field(default_factory=PushCheck)
    conflicts: list[str] = field(default_factory=list)
    applied: list[Difference] = field(default_factory=list)


def _day(plan: Plan, value: date | datetime | None) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return plan.moment(value).astimezone(plan.tz).date()
    return value


def _account(plan: Plan, handle: str | None, source: str) -> str | None:
    if handle is None or handle not in plan.people:
        return None
    accounts = plan.people[handle].accounts
    return accounts.get(source) or accounts.get(plan.sources[source].kind)


def targets_for(plan: Plan, source: str) -> tuple[list[Target], list[str]]:
    """The containers the plan names on ``source``, and conflicts between milestones."""
    key = CONTAINERS.get(plan.sources[source].kind)
    if key is None:
        return [], []
    wanted: dict[str, list[Target]] = {}
    for goal in plan.goals:
        for milestone in goal.milestones:
            for selector in milestone.work:
                criteria = selector.criteria()
                if selector.source != source or set(criteria) != {key}:
                    continue
                target = Target(
                    milestone=f"{goal.id}.{milestone.id}", criteria=criteria,
                    due=_day(plan, milestone.due), owner=milestone.owner,
                    owner_account=_account(plan, milestone.owner, source))
                if target.due is not None or target.owner_account is not None:
                    wanted.setdefault(str(criteria[key]), []).append(target)
    targets: list[Target] = []
    conflicts: list[str] = []
    for name, claims in wanted.items():
        first = claims[0]
        dues = {t.due for t in claims if t.due is not None}
        owners = {t.owner_account for t in claims if t.owner_account is not None}
        who = ", ".join(t.milestone for t in claims)
        if len(dues) > 1:
            conflicts.append(f"{key} {name}: {who} give different due dates "
                             f"({', '.join(sorted(d.isoformat() for d in dues))}); not pushed")
        if len(owners) > 1:
            conflicts.append(f"{key} {name}: {who} have different owners; assignee not pushed")
        targets.append(Target(
            milestone=who, criteria=first.criteria,
            due=next(iter(dues)) if len(dues) == 1 else None,
            owner=first.owner if len(owners) == 1 else None,
            owner_account=next(iter(owners)) if len(owners) == 1 else None))
    return targets, conflicts


def pushed(store: Store, source: str, difference: Difference, at: datetime) -> None:
    """Record that a due date was written to a container (from just before the write)."""
    if difference.field != "due" or difference.name is None:
        return
    record_push(store, TrackerDue(source=source, container=difference.name, at=at,
                                  origin="push", from_due=difference.tracker,
                                  to_due=difference.plan))


def push_plan(plan: Plan, *, plan_dir: Path, apply: bool = False,
              sources: Iterable[str] | None = None,
              on_apply: Callable[[str, Difference], None] | None = None,
              store: Store | None = None) -> list[PushResult]:
    """Compare every source's containers with the plan; with ``apply``, write the differences.

    Each due date written is recorded in ``store`` (the plan's), so the sync that then
    reads it from the tracker knows it for the plan's own change, not a slip there
    (:mod:`stratmap.judgement.slips`).

    Raises the connector's :class:`connectors.base.SourceError` on a tracker error; what was
    applied before it stays applied (each write is one field of one container).
    """
    results: list[PushResult] = []
    for name in sources or plan.sources:
        source = plan.sources[name]
        result = PushResult(source=name, kind=source.kind)
        results.append(result)
        targets, result.conflicts = targets_for(plan, name)
        if source.kind not in CONTAINERS:
            result.supported = False
            continue
        if not targets:
            continue
        result.targets = len(targets)
        connector = connector_for(plan, name, plan_dir=plan_dir)
        try:
            if not isinstance(connector, Pusher):  # pragma: no cover - CONTAINERS says so
                result.supported = False
                continue
            result.check = connector.check(targets)
            if apply:
                for difference in result.check.differences:
                    at = utcnow()
                    connector.apply(difference)
                    if store is not None:
                        pushed(store, name, difference, at)
                    result.applied.append(difference)
                    log.info("source '%s': %s %s %s -> %s (plan: %s)", name,
                             difference.container, difference.field,
                             difference.tracker or "unset", difference.plan,
                             difference.milestone)
                    if on_apply is not None:
                        on_apply(name, difference)
        finally:
            connector.close()
    return results
