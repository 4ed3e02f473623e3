"""One tracking run: sync each source (collecting failures), judge once, record the progress
history once, publish.

``stratmap run`` calls :func:`track` directly, with :class:`Steps` that run each step here,
in order. The Prefect flow ``track_plan`` (:mod:`stratmap.flows.track`) calls the same
function with steps that run as tasks (a task per source sync and per step, never per item),
so both ways fail the same way: a source that cannot be synced is named in
:attr:`Tracked.failed`, the plan is still judged from what the store holds, the report marks
that source stale, and the caller fails the run (exit 3, or a failed flow run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

from stratmap.connectors.base import SourceError
from stratmap.flows.history import record_run
from stratmap.flows.measures import read_and_judge, sync_measures
from stratmap.flows.pipeline import SyncResult, sync_plan_source
from stratmap.models.plan import Plan
from stratmap.models.records import Page, utcnow
from stratmap.models.report import Report, StaleSource
from stratmap.models.store import Store, record_plan_dues

log = logging.getLogger(__name__)

T = TypeVar("T")


class Observer(Protocol):
    """Who watches a local run's syncs (the CLI's progress bars)."""

    def page(self, source: str, page: Page) -> None: ...

    def synced(self, source: str, result: SyncResult) -> None: ...

    def failed(self, source: str, error: SourceError) -> None: ...


Publisher = Callable[[Plan, str | None, Report], dict[str, Any]]
"""Publishes a judged report: (plan, store URL, report) -> what was published."""


@dataclass(frozen=True)
class Tracked:
    """What one tracking run did."""

    report: Report
    synced: dict[str, SyncResult] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    """Sources that could not be synced: name -> what went wrong and what to check."""
    published: dict[str, Any] = field(default_factory=dict)


class Steps:
    """How the steps of a run are executed: here, one after the other. The Prefect flow's
    subclass runs each as a task; the failure handling is this class's, both ways."""

    def sync(self, sources: Sequence[str], step: Callable[..., SyncResult],
             *args: Any) -> dict[str, SyncResult | SourceError]:
        """``step(source, *args)`` for each source; a :class:`SourceError` is collected."""
        outcomes: dict[str, SyncResult | SourceError] = {}
        for source in sources:
            try:
                outcomes[source] = step(source, *args)
            except SourceError as error:
                outcomes[source] = error
        return outcomes

    def run(self, name: str, step: Callable[..., T], *args: Any) -> T:
        return step(*args)


def sync_one(source: str, plan: Plan, plan_dir: Path, db: str | None, started: datetime,
             observer: Observer | None = None) -> SyncResult:
    """Sync one source of the plan into the store at ``db``."""
    on_page = (lambda page: observer.page(source, page)) if observer is not None else None
    with Store(db) as store:
        result = sync_plan_source(plan, source, store, plan_dir=plan_dir, started=started,
                                  on_page=on_page)
    log.info("synced %s: %d items in %d pages, %d requests, %.1fs (watermark %s)",
             source, result.items, result.pages, result.requests, result.seconds,
             result.watermark)
    return result


def sync_plan_measures(plan: Plan, plan_dir: Path, db: str | None,
                       started: datetime) -> dict[str, str]:
    """Sync the plan's measures; the error of each that failed, by its reference."""
    with Store(db) as store:
        outcomes = sync_measures(plan, store, plan_dir=plan_dir, started=started)
    return {ref: str(outcome) for ref, outcome in outcomes.items()
            if isinstance(outcome, SourceError)}


def push_plan_metrics(plan: Plan, db: str | None) -> str | None:
    """Push the plan's metrics to its Pushgateway; the error, if the push failed (the run
    itself stands: the next run pushes again)."""
    from stratmap.flows.metrics import push

    assert plan.metrics is not None and plan.metrics.pushgateway is not None
    try:
        with Store(db) as store:
            push(plan, store, plan.metrics.pushgateway)
    except OSError as error:  # URLError and HTTPError are OSErrors
        log.error("metrics not pushed to %s: %s", plan.metrics.pushgateway, error)
        return str(error)
    log.info("metrics pushed to %s", plan.metrics.pushgateway)
    return None


def judge_and_record(plan: Plan, db: str | None, as_of: datetime,
                     stale: Mapping[str, str], record: bool = True) -> Report:
    """Judge the plan from the store, mark the sources that did not sync as stale, and
    record the run in the progress history (once; not at all with ``record=False``, a
    what-if)."""
    with Store(db) as store:
        if record:
            record_plan_dues(store, plan.name, plan.dues(), as_of)
        evidence, report, index = read_and_judge(store, plan, as_of)
        if stale:
            report = report.model_copy(update={"stale_sources": [
                StaleSource(source=name, error=stale[name],
                            last_synced=(state.last_sync_finished if (state := store.state(name))
                                         else None))
                for name in sorted(stale)]})
        if record:
            clock = time.perf_counter()
            recorded = record_run(store, plan, report, evidence=evidence, index=index)
            log.info("recorded the history: %d snapshots, %d past weeks in %.2fs",
                     recorded.snapshots, recorded.backfilled_weeks, time.perf_counter() - clock)
    return report


def track(plan: Plan, *, plan_dir: Path, db: str | None, as_of: datetime | None = None,
          offline: bool = False, steps: Steps | None = None, publish: Publisher | None = None,
          observer: Observer | None = None, record: bool = True) -> Tracked:
    """Sync every source (unless ``offline``), judge once, record once (unless not
    ``record``), then ``publish``."""
    steps = steps or Steps()
    started = utcnow()
    synced: dict[str, SyncResult] = {}
    failed: dict[str, str] = {}
    if not offline:
        extra = (observer,) if observer is not None else ()
        outcomes = steps.sync(list(plan.sources), sync_one, plan, plan_dir, db, started, *extra)
        for source, outcome in outcomes.items():
            if isinstance(outcome, SourceError):
                failed[source] = str(outcome)
                log.error("sync of %s failed: %s", source, outcome)
                if observer is not None:
                    observer.failed(source, outcome)
            else:
                synced[source] = outcome
                if observer is not None:
                    observer.synced(source, outcome)
        if plan.measure_ids():
            failed.update(steps.run("sync-measures", sync_plan_measures, plan, plan_dir, db,
                                    started))
    report = steps.run("judge-plan", judge_and_record, plan, db, as_of or utcnow(), failed,
                       record)
    published = steps.run("publish-report", publish, plan, db, report) if publish else {}
    if plan.metrics is not None and plan.metrics.pushgateway is not None:
        published = {**published, "metrics_push_failure": steps.run(
            "push-metrics", push_plan_metrics, plan, db)}
    return Tracked(report=report, synced=synced, failed=failed, published=published)
