"""Syncing a plan's measures into the store, and the evidence the engine judges them from
(:func:`plan_evidence`; :func:`read_and_judge` reads it and judges it, for a run and a report).

Each measure is read from ``since`` (its last stored value's time minus its ``overlap``,
default :data:`OVERLAP`) and upserted on ``(plan, measure, at)``: incremental, and a double
run duplicates nothing. Secrets (``env:``/``block:``) are resolved here, never logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL, make_url

from stratmap.connectors.base import SourceError
from stratmap.connectors.measures import read_csv, read_prometheus, read_sql
from stratmap.flows.secrets import resolve_secret
from stratmap.judgement.slips import containers
from stratmap.models.plan import Measure, Plan
from stratmap.models.records import Evidence, MeasureValue
from stratmap.models.store import (
    Store,
    load_declarations,
    load_due_changes,
    load_measure_values,
    load_tracker_dues,
    measure_watermark,
    save_measure_values,
)

if TYPE_CHECKING:
    import httpx

    from stratmap.judgement.evidence import EvidenceIndex
    from stratmap.models.report import Report

log = logging.getLogger(__name__)

OVERLAP = timedelta(days=7)
"""How far a measure's sync re-reads before its last value, unless it sets ``overlap``."""


def read_measure(plan: Plan, ref: str, measure: Measure, *, plan_dir: Path,
                 since: datetime | None, until: datetime,
                 client: httpx.Client | None = None) -> list[MeasureValue]:
    """The measure's values from ``since`` (everything when None); ``until`` ends a
    Prometheus range (a file or a query gives what it holds)."""
    source = measure.source
    if source.kind == "csv":
        path = Path(source.path)
        values = read_csv(ref, path if path.is_absolute() else plan_dir / path, since=since)
    elif source.kind == "sql":
        values = read_sql(ref, _sql_url(ref, source.url, source.password), source.query,
                          since=since)
    else:
        token = resolve_secret(ref, source.token) if source.token else None
        start = since or plan.moment(measure.baseline.date)
        own = client is None
        if client is None:
            import httpx  # only for a Prometheus measure

            client = httpx.Client(timeout=30.0)
        http = client
        try:
            values = read_prometheus(ref, http, source.url, source.query, start=start,
                                     end=until, step=source.step, token=token)
        finally:
            if own:
                http.close()
    return values  # all the source gives: the engine judges those up to its as_of


def _sql_url(ref: str, url: str, password: str | None) -> URL:
    if url.startswith(("env:", "block:")):
        url = resolve_secret(ref, url)
    parsed = make_url(url)
    if password:
        parsed = parsed.set(password=resolve_secret(ref, password))
    return parsed


def sync_measures(plan: Plan, store: Store, *, plan_dir: Path, started: datetime,
                  client: httpx.Client | None = None) -> dict[str, int | SourceError]:
    """Sync every measure of the plan: how many new values each stored, or its error."""
    outcomes: dict[str, int | SourceError] = {}
    for ref, (_goal, _milestone, measure) in plan.measure_ids().items():
        latest = measure_watermark(store, plan.name, ref)
        since = latest - (measure.overlap or OVERLAP) if latest is not None else None
        try:
            values = read_measure(plan, ref, measure, plan_dir=plan_dir, since=since,
                                  until=started, client=client)
        except SourceError as error:
            log.error("measure %s: %s", ref, error)
            outcomes[ref] = error
            continue
        outcomes[ref] = save_measure_values(store, plan.name, values, synced_at=started)
        log.info("measure %s: %d values read, %d new", ref, len(values), outcomes[ref])
    return outcomes


def plan_evidence(store: Store, plan: Plan, *, as_of: datetime | None = None,
                  before: Evidence | None = None,
                  written: Collection[tuple[str, str]] | None = None) -> Evidence:
    """Everything stored for the plan: its sources' records, its measures' values, its
    slip log (the due-date changes recorded for its milestones) and the statuses declared
    in its trackers.

    With ``before`` (this evidence read earlier) and ``written`` (the ``(source, key)``
    items synced since), only those items' records are read, with the accounts and
    selections, and merged into ``before`` (:meth:`Evidence.merged`); the rest is read
    whole as always.

    With ``as_of``, for judging at that moment only: a comment's text and id are read only
    where the judgement reads them, in an owner's declarations of the
    :data:`~stratmap.judgement.organisation.DECLARATION_FRESH` before ``as_of`` (older
    comments come with ``body=None`` and ``comment_id=None``)."""
    from stratmap.judgement.organisation import DECLARATION_FRESH

    full_since = None if as_of is None else as_of - DECLARATION_FRESH
    if before is not None and written is not None:
        evidence = before.merged(store.evidence(plan.sources, full_since=full_since,
                                                only=written), written)
    else:
        evidence = store.evidence(plan.sources, full_since=full_since)
    update: dict[str, object] = {"due_changes": load_due_changes(store, plan.name),
                                 "tracker_dues": load_tracker_dues(
                                     store, plan.sources, containers=containers(plan)),
                                 "declarations": load_declarations(store, plan.sources)}
    if plan.measure_ids():
        update["measures"] = load_measure_values(store, plan.name)
    return evidence.model_copy(update=update)


def read_and_judge(store: Store, plan: Plan,
                   as_of: datetime) -> tuple[Evidence, Report, EvidenceIndex]:
    """The plan's evidence read once, and its judgement at ``as_of`` with the index the
    judgement built (for the history and the page). Each phase's time goes to the log:
    ``stratmap -v run`` and ``stratmap -v report`` show where a command's time went."""
    evidence = read_evidence(store, plan, as_of)
    return (evidence, *judge_evidence(plan, evidence, as_of))


def read_evidence(store: Store, plan: Plan, as_of: datetime, *,
                  before: Evidence | None = None,
                  written: Collection[tuple[str, str]] | None = None,
                  while_syncing: bool = False) -> Evidence:
    """:func:`plan_evidence` for judging at ``as_of``, its time logged (``while_syncing``:
    by a run's judgement ahead, its time beside the sync's)."""
    clock = time.perf_counter()
    evidence = plan_evidence(store, plan, as_of=as_of, before=before, written=written)
    again = "" if before is None or written is None else (
        f" ({len(written)} synced items read again)")
    log.info("read the evidence%s: %d items, %d status changes, %d comments%s in %.2fs",
             WHILE_SYNCING if while_syncing else "", len(evidence.items),
             len(evidence.changes), len(evidence.comments), again,
             time.perf_counter() - clock)
    return evidence


def judge_evidence(plan: Plan, evidence: Evidence, as_of: datetime, *,
                   while_syncing: bool = False) -> tuple[Report, EvidenceIndex]:
    """The plan judged at ``as_of`` with the index the judgement built, its time logged
    (``while_syncing``: as for :func:`read_evidence`)."""
    from stratmap.judgement.engine import judge_indexed

    clock = time.perf_counter()
    report, index = judge_indexed(plan, evidence, as_of=as_of)
    log.info("judged %d milestones%s: %d findings in %.2fs",
             sum(len(g.milestones) for g in report.goals),
             WHILE_SYNCING if while_syncing else "", len(report.findings),
             time.perf_counter() - clock)
    return report, index


WHILE_SYNCING = " while syncing"
"""How ``stratmap -v`` tells the judgement ahead's phases (beside the sync) from the rest."""
