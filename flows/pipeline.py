"""The steps of a tracking run as plain functions: sync each source, judge, publish.

The Prefect flows in :mod:`flows.track` wrap these same functions in tasks; ``stratmap
run`` calls them directly when no Prefect API is configured, so the CLI stays fast.

The sync's guarantees (tested in ``tests/test_sync.py`` and the contract suite):

* each run reads ``updated >= watermark - overlap``, and upserts on ``(source, key)``, so a
  double run over overlapping data loses nothing and duplicates nothing;
* the watermark moves only in the transaction that wrote the rows it covers, never past
  the run's start, and never backwards;
* a crash at any point leaves the store as it was after the last committed page.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from stratmap.connectors.base import Connector, Window, at_most, minus
from stratmap.connectors.registry import build_connector
from stratmap.flows.secrets import resolve_secret
from stratmap.judgement import judge
from stratmap.models.plan import Plan, Selector
from stratmap.models.records import Page
from stratmap.models.report import Report
from stratmap.models.store import Store

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(minutes=15)
RECONCILE_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class SyncResult:
    source: str
    pages: int
    items: int
    requests: int
    watermark: datetime | None
    removed: int
    seconds: float
    changed: bool = True
    """Whether the sync wrote anything the plan is judged from (items and their history,
    accounts, a changed selection or due date, removals); False for a scheduled run that
    found nothing new."""
    written: frozenset[str] | None = None
    """The keys of the items whose records the sync wrote, when that is all it changed of
    what :meth:`Store.evidence` reads (besides accounts) and they are at most
    :data:`WRITTEN_KEPT`: a run then reads just those again. None otherwise."""


WRITTEN_KEPT = 5_000
"""The most keys a :class:`SyncResult` lists as written; past it, a run reads all again."""


PageHook = Callable[[Page], None]


def selectors_of(plan: Plan, source: str) -> list[Selector]:
    """Every selector of the plan that reads ``source``, once each."""
    seen: dict[str, Selector] = {}
    for goal in plan.goals:
        for milestone in goal.milestones:
            for selector in milestone.work:
                if selector.source == source:
                    seen.setdefault(selector.key(), selector)
    return [seen[k] for k in sorted(seen)]


def sync_source(connector: Connector, store: Store, *, started: datetime,
                overlap: timedelta | None = None, selectors: list[Selector] | None = None,
                reconcile_every: timedelta | None = RECONCILE_EVERY,
                on_page: PageHook | None = None) -> SyncResult:
    """Sync one source incrementally into ``store``; see the module's guarantees."""
    with _fewer_collections():
        return _sync_source(connector, store, started=started, overlap=overlap,
                            selectors=selectors, reconcile_every=reconcile_every,
                            on_page=on_page)


def _sync_source(connector: Connector, store: Store, *, started: datetime,
                 overlap: timedelta | None, selectors: list[Selector] | None,
                 reconcile_every: timedelta | None, on_page: PageHook | None) -> SyncResult:
    clock = time.perf_counter()
    name = connector.name
    if overlap is None:
        overlap = getattr(connector, "default_overlap", DEFAULT_OVERLAP)
    store.start_sync(name, connector.kind, started)
    previous = store.watermark(name)
    since = minus(previous, overlap)
    # What the store holds of the overlap, so a connector need not complete it again.
    stored = store.updated_since(name, since) if since is not None else {}
    window = Window(since=since, until=started, stored=stored)
    pages = items = requests = 0
    changed = False
    written: set[str] | None = set()
    highest: datetime | None = None
    for page in connector.fetch(window):
        pages += 1
        if page.has_records and written is not None:
            written.update(i.key for i in page.items)
            for records in (page.changes, page.comments, page.assignments):
                written.update(r.item_key for r in records)
            if len(written) > WRITTEN_KEPT:
                written = None
        items += len(page.items)
        requests += page.requests
        cursor = at_most(started, page.cursor)
        if cursor is not None and (highest is None or cursor > highest):
            highest = cursor
        # An ordered source's watermark may follow each page; an unordered one's only
        # the last, once every row it covers is written. Written here, not on a thread of
        # its own: SQLite's executemany lets go of the GIL for every row and waits to get it
        # back from the normalizing thread, so a writer thread made a 20,000-issue sync
        # 25-40% slower (measured), not faster.
        if store.write_page(page, watermark=cursor if connector.ordered else None):
            changed = True
        if on_page is not None:
            on_page(page)
    if not connector.ordered and highest is not None:
        store.write_page(Page(source=name), watermark=highest)
    for selector in selectors or []:
        keys = connector.resolve(selector.criteria())
        if keys is not None and store.replace_selection(name, selector.key(), keys):
            changed, written = True, None
    removed = 0
    reconcile = getattr(connector, "reconcile", None)
    state = store.state(name)
    due = reconcile_every is not None and (
        state is None or state.last_reconciled is None
        or started - state.last_reconciled >= reconcile_every
    )
    if reconcile is not None and due:
        removed = store.mark_removed(name, reconcile(), started)
    store.finish_sync(name, started, reconciled=bool(reconcile is not None and due))
    return SyncResult(source=name, pages=pages, items=items, requests=requests,
                      watermark=store.watermark(name), removed=removed,
                      seconds=time.perf_counter() - clock, changed=changed or removed > 0,
                      written=frozenset(written) if written is not None and not removed
                      else None)


YOUNG_COLLECTION_EVERY = 20_000
"""Allocations between young-generation collections while a sync runs (Python's default: 700)."""
_gc_lock = threading.Lock()
_gc_syncs = 0
_gc_default: tuple[int, int, int] | None = None


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Let Python's cyclic garbage collector run less often while syncing.

    A page of JSON is some 100,000 fresh dicts and lists that live until the page is
    written, so at the default threshold every page sets off dozens of collections that free
    nothing: a quarter of a sync's CPU. Cycles are still collected, only less often. Syncs on
    several threads share the setting; the last one to finish puts the default back.
    """
    global _gc_syncs, _gc_default
    with _gc_lock:
        if _gc_syncs == 0:
            _gc_default = gc.get_threshold()
            young, *older = _gc_default
            gc.set_threshold(max(young, YOUNG_COLLECTION_EVERY), *older)
        _gc_syncs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_syncs -= 1
            if _gc_syncs == 0 and _gc_default is not None:
                gc.set_threshold(*_gc_default)


def connector_for(plan: Plan, name: str, *, plan_dir: Path) -> Connector:
    return build_connector(name, plan.sources[name], plan_dir=plan_dir, secret=resolve_secret)


def sync_plan_source(plan: Plan, name: str, store: Store, *, plan_dir: Path,
                     started: datetime, on_page: PageHook | None = None) -> SyncResult:
    """Build the source's connector and sync it."""
    source = plan.sources[name]
    connector = connector_for(plan, name, plan_dir=plan_dir)
    try:
        return sync_source(connector, store, started=started, overlap=source.overlap,
                           selectors=selectors_of(plan, name), on_page=on_page,
                           reconcile_every=getattr(source, "reconcile_every", None)
                           or RECONCILE_EVERY)
    finally:
        connector.close()


def judge_plan(plan: Plan, store: Store, *, as_of: datetime) -> Report:
    """Judge the plan from everything stored for its sources."""
    from stratmap.flows.measures import plan_evidence

    return judge(plan, plan_evidence(store, plan, as_of=as_of), as_of=as_of)
