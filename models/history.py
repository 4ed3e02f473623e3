"""Progress history: every goal's and milestone's judged state, run after run.

Each ``stratmap run`` stores a :class:`Snapshot` of the plan, each goal and each milestone
at its ``as_of``, so progress over time is a query (``snapshots`` table, Alembic revision
0002). The engine can judge any past moment from the status changes, so the weeks before
the first run are reconstructed rather than left empty (:mod:`stratmap.judgement.history`
judges them, in one sweep; :mod:`stratmap.flows.history` fills the week-ends no snapshot
covers yet). This module is the data shape only: the store reads and writes snapshots
(:func:`stratmap.models.store.save_snapshots`, :func:`~stratmap.models.store.load_snapshots`).

Entities are a goal id, ``goal.milestone``, or :data:`PLAN` for the plan as a whole. A
goal's counts are the sums over its milestones (an item two milestones select counts in
both), and its findings are those on the goal or any of its milestones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, field_validator

from stratmap.models.records import ensure_utc, stored
from stratmap.models.report import ORGANISATION_KINDS, GoalReport, Report, Status

PLAN = "*"
"""The entity of the plan as a whole (never a goal id: ids are slugs)."""
MAX_BACKFILL_WEEKS = 156
"""How far back a backfill reaches at most (three years), however old the oldest item."""

Origin = Literal["run", "backfill"]
EntityKind = Literal["plan", "goal", "milestone"]


class Snapshot(BaseModel):
    """One entity of a plan as judged at ``as_of``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    plan: str
    entity: str
    kind: EntityKind
    as_of: datetime
    status: Status
    progress: float
    items_total: int
    items_done: int
    points_total: float | None = None
    points_done: float | None = None
    forecast: datetime | None = None
    findings: int = 0
    finding_kinds: dict[str, int] = {}
    origin: Origin = "run"

    _utc = field_validator("as_of")(ensure_utc)

    @field_validator("forecast")
    @classmethod
    def _utc_opt(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_utc(value)


class SnapshotPoint(NamedTuple):
    """What a chart reads of a :class:`Snapshot`: the HTML report's history holds these
    (a fifth of a snapshot's memory: 156,000 of them at 100,000 issues)."""

    plan: str
    entity: str
    as_of: datetime
    progress: float
    items_total: int
    items_done: int
    points_total: float | None
    points_done: float | None

    @classmethod
    def of(cls, snapshot: Snapshot) -> SnapshotPoint:
        return cls(snapshot.plan, snapshot.entity, snapshot.as_of, snapshot.progress,
                   snapshot.items_total, snapshot.items_done, snapshot.points_total,
                   snapshot.points_done)


@dataclass(frozen=True)
class Recorded:
    """What a run recorded in the history."""

    snapshots: int
    backfilled_weeks: int


# -- from reports ------------------------------------------------------------------------


def _sum_points(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 4) if known else None


Found = tuple[str | None, str | None, str]
"""A finding as the history counts it: (goal id, ``goal.milestone``, kind)."""


def snapshots_of(report: Report, *, origin: Origin = "run") -> list[Snapshot]:
    """The report's plan, goals and milestones as snapshots at its ``as_of``.

    The findings about the organisation (``ORGANISATION_KINDS``) are left out: the history
    counts what the item rules find, week by week, and its sweep does not reconstruct the
    organisation's past (who was engaged or overloaded in a past week) yet.
    """
    return snapshots_from(plan=report.plan, as_of=report.as_of, status=report.status,
                          progress=report.progress, goals=report.goals,
                          found=[(f.goal, f.milestone, f.kind.value) for f in report.findings
                                 if f.kind not in ORGANISATION_KINDS],
                          origin=origin)


def snapshots_from(*, plan: str, as_of: datetime, status: Status, progress: float,
                   goals: Sequence[GoalReport], found: Iterable[Found],
                   origin: Origin = "run", validate: bool = True) -> list[Snapshot]:
    """Snapshots from the parts of a report: what :func:`snapshots_of` reads from one.

    ``found`` names each finding's goal, milestone and kind only: the history's sweep
    counts findings without making one per item per week. ``validate=False`` skips
    pydantic's checks, for values already in shape (aware UTC moments): the sweep makes
    tens of thousands of snapshots.
    """
    def make(**values: Any) -> Snapshot:
        if validate:
            return Snapshot(**values)
        return stored(Snapshot, {name: values[name] for name in _SNAPSHOT_FIELDS})

    everything: Counter[str] = Counter()
    by_goal: dict[str | None, Counter[str]] = {}
    by_milestone: dict[str | None, Counter[str]] = {}
    # Counted as triples first (in C): a week of the sweep names each unmapped item.
    for (goal_id, milestone_id, kind), times in Counter(found).items():
        everything[kind] += times
        by_goal.setdefault(goal_id, Counter())[kind] += times
        by_milestone.setdefault(milestone_id, Counter())[kind] += times
    none: Counter[str] = Counter()
    out: list[Snapshot] = []
    milestones = [m for g in goals for m in g.milestones]

    def snap(entity: str, kind: EntityKind, kinds: Counter[str], **values: Any) -> None:
        out.append(make(plan=plan, entity=entity, kind=kind, as_of=as_of,
                        findings=sum(kinds.values()), finding_kinds=dict(sorted(kinds.items())),
                        origin=origin, **values))

    snap(PLAN, "plan", everything, status=status, progress=progress, forecast=None,
         items_total=sum(m.items.total for m in milestones),
         items_done=sum(m.items.done for m in milestones),
         points_total=_sum_points(m.items.points_total for m in milestones),
         points_done=_sum_points(m.items.points_done for m in milestones))
    for goal in goals:
        snap(goal.id, "goal", by_goal.get(goal.id, none),
             status=goal.status, progress=goal.progress, forecast=None,
             items_total=sum(m.items.total for m in goal.milestones),
             items_done=sum(m.items.done for m in goal.milestones),
             points_total=_sum_points(m.items.points_total for m in goal.milestones),
             points_done=_sum_points(m.items.points_done for m in goal.milestones))
        for m in goal.milestones:
            snap(m.id, "milestone", by_milestone.get(m.id, none),
                 status=m.status, progress=m.progress, items_total=m.items.total,
                 items_done=m.items.done, points_total=m.items.points_total,
                 points_done=m.items.points_done, forecast=m.forecast)
    return out


_SNAPSHOT_FIELDS = tuple(Snapshot.model_fields)
"""Every field of a snapshot, in order: one built without validation is given them all."""

__all__ = ["MAX_BACKFILL_WEEKS", "PLAN", "Found", "Recorded", "Snapshot", "SnapshotPoint",
           "snapshots_from", "snapshots_of"]
