"""Progress history: every goal's and milestone's judged state, run after run.

Each ``stratmap run`` stores a :class:`Snapshot` of the plan, each goal and each milestone
at its ``as_of``, so progress over time is a query (``snapshots`` table, Alembic revision
0002). The engine can judge any past moment from the status changes, so the weeks before
the first run are reconstructed rather than left empty: :func:`record_run` fills every
week-end (Monday 00:00 in the plan's time zone) from the plan's first item or milestone
start up to ``as_of`` that has no snapshot yet. On the first run that is the backfill, a new
user's months of trend; later it fills only the weeks no run saw.

Entities are a goal id, ``goal.milestone``, or :data:`PLAN` for the plan as a whole. A
goal's counts are the sums over its milestones (an item two milestones select counts in
both), and its findings are those on the goal or any of its milestones.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import select

from stratmap.judgement.engine import judge
from stratmap.judgement.evidence import EvidenceIndex
from stratmap.models.plan import Plan
from stratmap.models.records import Evidence, ensure_utc, utcnow
from stratmap.models.report import Finding, Report, Status
from stratmap.models.store import Store, upsert
from stratmap.models.tables import SnapshotRow

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Recorded:
    """What :func:`record_run` wrote."""

    snapshots: int
    backfilled_weeks: int


# -- from reports ------------------------------------------------------------------------


def _kinds(findings: Iterable[Finding]) -> dict[str, int]:
    return dict(sorted(Counter(f.kind.value for f in findings).items()))


def _sum_points(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(sum(known), 4) if known else None


def snapshots_of(report: Report, *, origin: Origin = "run") -> list[Snapshot]:
    """The report's plan, goals and milestones as snapshots at its ``as_of``."""
    out: list[Snapshot] = []
    milestones = [m for g in report.goals for m in g.milestones]

    def snap(entity: str, kind: EntityKind, findings: list[Finding], **values: Any) -> None:
        out.append(Snapshot(plan=report.plan, entity=entity, kind=kind, as_of=report.as_of,
                            findings=len(findings), finding_kinds=_kinds(findings),
                            origin=origin, **values))

    snap(PLAN, "plan", report.findings, status=report.status, progress=report.progress,
         items_total=sum(m.items.total for m in milestones),
         items_done=sum(m.items.done for m in milestones),
         points_total=_sum_points(m.items.points_total for m in milestones),
         points_done=_sum_points(m.items.points_done for m in milestones))
    for goal in report.goals:
        snap(goal.id, "goal", [f for f in report.findings if f.goal == goal.id],
             status=goal.status, progress=goal.progress,
             items_total=sum(m.items.total for m in goal.milestones),
             items_done=sum(m.items.done for m in goal.milestones),
             points_total=_sum_points(m.items.points_total for m in goal.milestones),
             points_done=_sum_points(m.items.points_done for m in goal.milestones))
        for m in goal.milestones:
            snap(m.id, "milestone", [f for f in report.findings if f.milestone == m.id],
                 status=m.status, progress=m.progress, items_total=m.items.total,
                 items_done=m.items.done, points_total=m.items.points_total,
                 points_done=m.items.points_done, forecast=m.forecast)
    return out


# -- reconstruction ----------------------------------------------------------------------


def first_moment(plan: Plan, evidence: Evidence, *, until: datetime) -> datetime | None:
    """When the plan's history begins: its first milestone start or first selected item."""
    moments = [plan.moment(m.start) for g in plan.goals for m in g.milestones if m.start]
    index = EvidenceIndex(plan, evidence, until)
    for goal in plan.goals:
        for milestone in goal.milestones:
            for selector in milestone.work:
                counted, _context = index.select(selector)
                moments.extend(index.items[i].item.created for i in counted)
    return min(moments, default=None)


def week_ends(plan: Plan, evidence: Evidence, *, until: datetime,
              max_weeks: int = MAX_BACKFILL_WEEKS) -> list[datetime]:
    """Every Monday 00:00 (plan time zone) after the plan's history begins, before ``until``."""
    until = ensure_utc(until)
    began = first_moment(plan, evidence, until=until)
    if began is None:
        return []
    local: date = began.astimezone(plan.tz).date()
    day = local + timedelta(days=7 - local.weekday())
    moments: list[datetime] = []
    while (moment := plan.moment(day)) < until:
        moments.append(moment)
        day += timedelta(days=7)
    return moments[-max_weeks:] if max_weeks else []


def reconstruct(plan: Plan, evidence: Evidence, moments: Iterable[datetime]) -> list[Snapshot]:
    """Judge the plan at each moment from the same evidence: the backfill's snapshots."""
    out: list[Snapshot] = []
    for moment in moments:
        out.extend(snapshots_of(judge(plan, evidence, as_of=moment), origin="backfill"))
    return out


# -- the store ---------------------------------------------------------------------------


def save(store: Store, snapshots: Sequence[Snapshot]) -> int:
    """Upsert snapshots on ``(plan, entity, as_of)`` in one transaction; return how many."""
    if not snapshots:
        return 0
    recorded = utcnow()
    rows = [{**s.model_dump(), "status": s.status.value, "recorded_at": recorded}
            for s in snapshots]
    with store.transaction() as connection:
        upsert(connection, SnapshotRow.__table__, rows, ["plan", "entity", "as_of"])
    return len(rows)


def load(store: Store, plan: str, *, until: datetime | None = None,
         entity: str | None = None) -> list[Snapshot]:
    """Stored snapshots of a plan (up to ``until``), by entity then time."""
    query = select(SnapshotRow).where(SnapshotRow.plan == plan)
    if until is not None:
        query = query.where(SnapshotRow.as_of <= until)
    if entity is not None:
        query = query.where(SnapshotRow.entity == entity)
    query = query.order_by(SnapshotRow.entity, SnapshotRow.as_of)
    with store.engine.connect() as connection:
        return [
            Snapshot(plan=r.plan, entity=r.entity, kind=r.kind, as_of=r.as_of,
                     status=Status(r.status), progress=r.progress, items_total=r.items_total,
                     items_done=r.items_done, points_total=r.points_total,
                     points_done=r.points_done, forecast=r.forecast, findings=r.findings,
                     finding_kinds=dict(r.finding_kinds or {}), origin=r.origin)
            for r in connection.execute(query)
        ]


def _stored_moments(store: Store, plan: str) -> set[datetime]:
    with store.engine.connect() as connection:
        return set(connection.scalars(
            select(SnapshotRow.as_of).where(SnapshotRow.plan == plan,
                                            SnapshotRow.entity == PLAN)
        ))


def _missing_weeks(store: Store, plan: Plan, evidence: Evidence,
                   until: datetime) -> list[datetime]:
    stored = _stored_moments(store, plan.name)
    return [m for m in week_ends(plan, evidence, until=until) if m not in stored]


def record_run(store: Store, plan: Plan, report: Report, *,
               evidence: Evidence | None = None) -> Recorded:
    """Store the run's snapshots, and reconstruct the past weeks no snapshot covers yet.

    ``evidence`` is what ``report`` was judged from; it is read from the store if left out.
    """
    if evidence is None:
        evidence = store.evidence(plan.sources)
    stored = _stored_moments(store, plan.name)
    missing = [m for m in week_ends(plan, evidence, until=report.as_of) if m not in stored]
    # A snapshot records the plan as it was judged then: a later run at the same moment
    # (of an edited plan, say) never rewrites it.
    run = [] if report.as_of in stored else snapshots_of(report)
    snapshots = reconstruct(plan, evidence, missing) + run
    written = save(store, snapshots)
    if missing:
        log.info("history of %r: %d past weeks reconstructed", plan.name, len(missing))
    return Recorded(snapshots=written, backfilled_weeks=len(missing))


def history(store: Store, plan: Plan, evidence: Evidence, *,
            until: datetime) -> list[Snapshot]:
    """The plan's history up to ``until`` for a report, writing nothing.

    Stored snapshots, plus the week-ends none covers reconstructed in memory, so a report
    from a store that never ran still shows the trend.
    """
    stored = load(store, plan.name, until=until)
    extra = reconstruct(plan, evidence, _missing_weeks(store, plan, evidence, until))
    return sorted([*stored, *extra], key=lambda s: (s.entity, s.as_of))


__all__ = ["MAX_BACKFILL_WEEKS", "PLAN", "Recorded", "Snapshot", "history", "load",
           "reconstruct", "record_run", "save", "snapshots_of", "week_ends"]
