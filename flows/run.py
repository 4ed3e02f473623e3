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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from stratmap.connectors.base import SourceError
from stratmap.flows.history import record_run
from stratmap.flows.measures import judge_evidence, read_and_judge, read_evidence, sync_measures
from stratmap.flows.pipeline import WRITTEN_KEPT, SyncResult, sync_plan_source
from stratmap.models.plan import Plan
from stratmap.models.records import Evidence, Page, utcnow
from stratmap.models.report import Report, StaleSource
from stratmap.models.store import Store, record_plan_dues

if TYPE_CHECKING:
    from stratmap.judgement.evidence import EvidenceIndex

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

    judge_ahead = True
    """Whether the plan is read and judged from the store while the sources sync
    (:class:`JudgedAhead`): here, yes; the Prefect flow judges in a task of its own."""

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


@dataclass(frozen=True)
class MeasuresSynced:
    failed: dict[str, str]
    """The error of each measure that failed, by its reference."""
    new_values: int


def sync_plan_measures(plan: Plan, plan_dir: Path, db: str | None,
                       started: datetime) -> MeasuresSynced:
    """Sync the plan's measures."""
    with Store(db) as store:
        outcomes = sync_measures(plan, store, plan_dir=plan_dir, started=started)
    return MeasuresSynced(
        failed={ref: str(outcome) for ref, outcome in outcomes.items()
                if isinstance(outcome, SourceError)},
        new_values=sum(n for n in outcomes.values() if isinstance(n, int)))


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


Judged = tuple[Evidence, Report, "EvidenceIndex"]
"""The evidence read, the report judged from it and the index the judgement built."""


class JudgedAhead:
    """The plan read and judged from the store on a thread of its own while the sources
    sync: what the run reports when its syncs wrote nothing new, the usual case of a
    scheduled run.

    Its work fills the time the syncs wait on their trackers (a quiet Jira answers three
    requests), so such a run takes about as long as the longer of the two, not their sum.
    The first page that carries records stops it before it judges (:meth:`stop`); then
    :meth:`result` is None, and the run merges what its syncs wrote into the evidence read
    here (:meth:`evidence`) or, past a few thousand items, reads it all again. It judges at
    ``as_of``, set when it starts; the plan's due dates are recorded before it starts
    (:func:`track`), so it only reads.
    """

    def __init__(self, plan: Plan, db: str | None, as_of: datetime) -> None:
        self.as_of = as_of
        self._plan, self._db = plan, db
        self._stopped = threading.Event()
        self._evidence: Evidence | None = None
        self._judged: Judged | None = None
        self._thread = threading.Thread(target=self._judge, name="stratmap-judge-ahead",
                                        daemon=True)
        self._thread.start()

    def _judge(self) -> None:
        try:
            with Store(self._db) as store:
                evidence = read_evidence(store, self._plan, self.as_of, while_syncing=True)
            self._evidence = evidence
            if self._stopped.is_set():
                return
            report, index = judge_evidence(self._plan, evidence, self.as_of,
                                           while_syncing=True)
            self._judged = (evidence, report, index)
        except Exception:  # the run judges after its syncs, where an error is reported
            log.debug("judging ahead failed; the run judges after its syncs", exc_info=True)

    def stop(self) -> None:
        """The store has changed, or will: what was read is not what the run reports."""
        self._stopped.set()

    def result(self) -> Judged | None:
        """The judgement, once the thread has ended; None if it was stopped or failed."""
        _, judged = self._hand_over()
        return None if self._stopped.is_set() else judged

    def evidence(self) -> Evidence | None:
        """The evidence it read, once the thread has ended (stopped or not); None if the
        read failed."""
        evidence, _ = self._hand_over()
        return evidence

    def _hand_over(self) -> tuple[Evidence | None, Judged | None]:
        """What the thread made, once it has ended; not kept here (a second call: None)."""
        self._thread.join()
        made, self._evidence, self._judged = (self._evidence, self._judged), None, None
        return made


class _StopAhead:
    """The run's observer, and the first page that carries records stops ``ahead``."""

    def __init__(self, ahead: JudgedAhead, observer: Observer | None) -> None:
        self.ahead, self.observer = ahead, observer

    def page(self, source: str, page: Page) -> None:
        if page.has_records:  # its due dates alone may change nothing: the sync says
            self.ahead.stop()
        if self.observer is not None:
            self.observer.page(source, page)

    def synced(self, source: str, result: SyncResult) -> None:
        if self.observer is not None:
            self.observer.synced(source, result)

    def failed(self, source: str, error: SourceError) -> None:
        if self.observer is not None:
            self.observer.failed(source, error)


def judge_and_record(plan: Plan, db: str | None, as_of: datetime,
                     stale: Mapping[str, str], record: bool = True,
                     ahead: JudgedAhead | None = None,
                     written: frozenset[tuple[str, str]] | None = None) -> Report:
    """Judge the plan from the store, mark the sources that did not sync as stale, and
    record the run in the progress history (once; not at all with ``record=False``, a
    what-if).

    With ``ahead`` (the plan's due dates were recorded before it started): its judgement
    is the run's unless it was stopped; then, with ``written`` (the ``(source, key)`` items
    the syncs wrote, all they changed), those items are read again and merged into the
    evidence it read, and the plan is judged from that at ``as_of``."""
    with Store(db) as store:
        if record and ahead is None:
            record_plan_dues(store, plan.name, plan.dues(), as_of)
        judged: Judged | None = None
        if ahead is not None and written is None:
            judged = ahead.result()
            if judged is None:
                log.info("judging after the syncs: they changed more than a few items")
        elif ahead is not None and (before := ahead.evidence()) is not None:
            evidence = read_evidence(store, plan, as_of, before=before, written=written)
            del before
            judged = (evidence, *judge_evidence(plan, evidence, as_of))
        evidence, report, index = judged or read_and_judge(store, plan, as_of)
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
    ``record``), then ``publish``. With :attr:`Steps.judge_ahead`, the plan is judged while
    the sources sync (:class:`JudgedAhead`)."""
    steps = steps or Steps()
    started = utcnow()
    synced: dict[str, SyncResult] = {}
    failed: dict[str, str] = {}
    ahead: JudgedAhead | None = None
    written: frozenset[tuple[str, str]] | None = None
    if not offline:
        if steps.judge_ahead:
            moment = as_of or utcnow()
            with Store(db) as store:  # opened here first: migrated before the thread reads
                if record:
                    record_plan_dues(store, plan.name, plan.dues(), moment)
            ahead = JudgedAhead(plan, db, moment)
            observer = _StopAhead(ahead, observer)
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
        changed = bool(failed) or any(result.changed for result in synced.values())
        if plan.measure_ids():
            measured = steps.run("sync-measures", sync_plan_measures, plan, plan_dir, db,
                                 started)
            failed.update(measured.failed)
            changed = changed or bool(measured.failed) or measured.new_values > 0
        if ahead is not None and changed:
            ahead.stop()
            written = None if failed else _written(synced)
    report = steps.run("judge-plan", judge_and_record, plan, db, as_of or utcnow(), failed,
                       record, ahead, written)
    published = steps.run("publish-report", publish, plan, db, report) if publish else {}
    if plan.metrics is not None and plan.metrics.pushgateway is not None:
        published = {**published, "metrics_push_failure": steps.run(
            "push-metrics", push_plan_metrics, plan, db)}
    return Tracked(report=report, synced=synced, failed=failed, published=published)


def _written(synced: Mapping[str, SyncResult]) -> frozenset[tuple[str, str]] | None:
    """The ``(source, key)`` items the syncs wrote, when that is all they changed and there
    are at most :data:`~stratmap.flows.pipeline.WRITTEN_KEPT` of them; else None."""
    found: set[tuple[str, str]] = set()
    for source, result in synced.items():
        if result.written is None:
            return None
        found.update((source, key) for key in result.written)
    return frozenset(found) if len(found) <= WRITTEN_KEPT else None
