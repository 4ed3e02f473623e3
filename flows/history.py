"""The progress history, wired: the store's snapshots plus the past weeks judged in a sweep.

:mod:`stratmap.models.history` is the snapshot's shape, :mod:`stratmap.models.store` reads
and writes snapshots, :mod:`stratmap.judgement.history` judges past weeks; this module
puts them together for a run (:func:`record_run`) and for a report (:func:`history`), and
renders the HTML report from data already in memory (:func:`html_report`).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime

from stratmap.flows.measures import plan_evidence
from stratmap.judgement.evidence import EvidenceIndex
from stratmap.judgement.history import missing_weeks, reconstruct, sweep
from stratmap.models.history import Recorded, Snapshot, SnapshotPoint, snapshots_of
from stratmap.models.plan import Plan
from stratmap.models.records import Evidence
from stratmap.models.report import Report
from stratmap.models.store import (
    Store,
    load_snapshot_points,
    load_snapshots,
    save_snapshots,
    snapshot_moments,
)

log = logging.getLogger(__name__)

SNAPSHOT_BATCH = 2_500
"""Backfilled snapshots written per transaction (whole weeks; at least this many). A
batch waits in memory: 10,000 were some 10 MB of a first run's peak."""


def record_run(store: Store, plan: Plan, report: Report, *,
               evidence: Evidence | None = None, index: EvidenceIndex | None = None) -> Recorded:
    """Store the run's snapshots, and reconstruct the past weeks no snapshot covers yet.

    ``evidence`` is what ``report`` was judged from; it is read from the store if left out.
    ``index`` is the judgement's index of it (:func:`~stratmap.judgement.engine.judge_indexed`),
    so finding where the history begins does not index the evidence again.
    """
    if evidence is None:
        evidence = plan_evidence(store, plan, as_of=report.as_of)
    stored = snapshot_moments(store, plan.name)
    missing = missing_weeks(plan, evidence, until=report.as_of, index=index, stored=stored)
    # A snapshot records the plan as it was judged then: a later run at the same moment
    # (of an edited plan, say) never rewrites it.
    run = [] if report.as_of in stored else snapshots_of(report)
    # Written as the sweep makes them, whole weeks per transaction: years of weeks are
    # never all in memory, no write lock is held while the sweep judges, and a run
    # stopped half way leaves whole weeks that the next run does not sweep again.
    written = 0
    batch: list[Snapshot] = []
    for week in sweep(plan, evidence, missing, index=index):
        batch.extend(week)
        if len(batch) >= SNAPSHOT_BATCH:
            written += save_snapshots(store, batch)
            batch = []
    written += save_snapshots(store, batch + run)
    if missing:
        log.info("history of %r: %d past weeks reconstructed", plan.name, len(missing))
    return Recorded(snapshots=written, backfilled_weeks=len(missing))


def history(store: Store, plan: Plan, evidence: Evidence, *, until: datetime,
            index: EvidenceIndex | None = None) -> list[Snapshot]:
    """The plan's history up to ``until`` for a report, writing nothing.

    Stored snapshots, plus the week-ends none covers reconstructed in memory, so a report
    from a store that never ran still shows the trend. ``index``: as for :func:`record_run`.
    """
    stored = load_snapshots(store, plan.name, until=until)
    extra = _unstored_weeks(store, plan, evidence, until=until, index=index)
    return sorted([*stored, *extra], key=lambda s: (s.entity, s.as_of))


def chart_history(store: Store, plan: Plan, evidence: Evidence, *, until: datetime,
                  index: EvidenceIndex | None = None) -> list[SnapshotPoint]:
    """:func:`history`, only what the charts read of each snapshot (:class:`SnapshotPoint`):
    the stored ones read as that, the reconstructed ones cut down as they are made."""
    stored = load_snapshot_points(store, plan.name, until=until)
    extra = _unstored_weeks(store, plan, evidence, until=until, index=index)
    return sorted([*stored, *map(SnapshotPoint.of, extra)], key=lambda s: (s.entity, s.as_of))


def _unstored_weeks(store: Store, plan: Plan, evidence: Evidence, *, until: datetime,
                    index: EvidenceIndex | None) -> list[Snapshot]:
    """The week-ends up to ``until`` no stored snapshot covers, reconstructed in memory."""
    return reconstruct(plan, evidence, missing_weeks(
        plan, evidence, until=until, stored=snapshot_moments(store, plan.name), index=index),
        index=index)


def html_report(plan: Plan, store: Store, report: Report, *,
                evidence: Evidence | None = None, index: EvidenceIndex | None = None) -> str:
    """The HTML page of ``report``: its history and item links too.

    ``evidence`` is what ``report`` was judged from (read from the store if left out), so a
    caller that judged it already does not read the evidence twice; ``index`` its index.
    """
    from stratmap.publish.html import item_links, render

    if evidence is None:
        evidence = plan_evidence(store, plan, as_of=report.as_of)
    clock = time.perf_counter()
    past = chart_history(store, plan, evidence, until=report.as_of, index=index)
    log.info("read the history: %d snapshots in %.2fs", len(past), time.perf_counter() - clock)
    clock = time.perf_counter()
    page = render(report, history=past, links=item_links(evidence), plan=plan)
    log.info("rendered the page: %d KB in %.2fs", len(page) // 1024, time.perf_counter() - clock)
    return page


__all__ = ["chart_history", "history", "html_report", "record_run"]
