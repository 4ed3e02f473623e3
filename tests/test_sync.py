"""The sync's guarantees: nothing lost, nothing duplicated, no corrupt store after a crash."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import ClassVar

import pytest

from stratmap.connectors.base import RetriableError, Window
from stratmap.flows.pipeline import sync_source
from stratmap.models.records import Evidence, Page, StatusCategory, StatusChange, WorkItem
from stratmap.models.store import Store

T0 = datetime(2027, 1, 1, tzinfo=UTC)


def item(n: int, *, updated: datetime, status: str = "To Do") -> WorkItem:
    category = StatusCategory.DONE if status == "Done" else StatusCategory.TODO
    return WorkItem(source="t", key=f"T-{n}", title=f"v@{updated.isoformat()}", status=status,
                    status_category=category, created=T0, updated=updated)


class ListConnector:
    """A tracker of pages held in memory, ordered by ``updated``; may crash after N pages."""

    kind: ClassVar[str] = "memory"
    name = "t"
    ordered = True
    default_overlap = timedelta(minutes=15)

    def __init__(self, items: list[WorkItem], *, page_size: int = 10,
                 crash_after: int | None = None) -> None:
        self.items = sorted(items, key=lambda i: (i.updated, i.key))
        self.page_size = page_size
        self.crash_after = crash_after
        self.windows: list[Window] = []

    def fetch(self, window: Window) -> Iterator[Page]:
        self.windows.append(window)
        chosen = [i for i in self.items if window.since is None or i.updated >= window.since]
        for n, start in enumerate(range(0, len(chosen), self.page_size)):
            if self.crash_after is not None and n == self.crash_after:
                raise RetriableError(self.name, "connection reset")
            batch = chosen[start:start + self.page_size]
            changes = tuple(
                StatusChange(source="t", item_key=i.key, change_id=f"{i.key}@{i.updated}",
                             at=i.updated, to_status=i.status, to_category=i.status_category)
                for i in batch if i.status == "Done")
            yield Page(source="t", items=tuple(batch), changes=changes,
                       cursor=max(i.updated for i in batch), requests=1)

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        return None

    def close(self) -> None:
        pass


def items_of(store: Store) -> dict[str, str]:
    return {i.key: i.title for i in store.evidence(["t"]).items}


def test_a_crash_mid_sync_keeps_whole_pages_and_a_true_watermark(store: Store) -> None:
    data = [item(n, updated=T0 + timedelta(hours=n)) for n in range(50)]
    with pytest.raises(RetriableError):
        sync_source(ListConnector(data, crash_after=3), store, started=T0 + timedelta(days=5))
    assert len(items_of(store)) == 30  # three whole pages, nothing partial
    mark = store.watermark("t")
    assert mark == T0 + timedelta(hours=29)  # the last written row, not beyond
    # The rerun resumes from the watermark (minus overlap) and completes the store.
    again = ListConnector(data)
    sync_source(again, store, started=T0 + timedelta(days=5))
    assert again.windows[0].since == mark - timedelta(minutes=15)
    assert len(items_of(store)) == 50
    assert store.counts()["items"] == 50


def test_a_failed_write_stops_the_sync_with_its_error_and_writes_nothing_after(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that fails is the sync's error, no later page is written, the watermark is
    the last written page's, and the next sync completes the store."""
    data = [item(n, updated=T0 + timedelta(hours=n)) for n in range(60)]
    real = store.write_page
    calls: list[int] = []

    def failing(page: Page, *, watermark: datetime | None = None) -> None:
        calls.append(len(page.items))
        if len(calls) == 3:
            raise OSError("disk full")
        real(page, watermark=watermark)

    monkeypatch.setattr(store, "write_page", failing)
    with pytest.raises(OSError, match="disk full"):
        sync_source(ListConnector(data), store, started=T0 + timedelta(days=5))
    assert len(items_of(store)) == 20
    assert store.watermark("t") == T0 + timedelta(hours=19)
    assert len(calls) == 3  # no page after the failure was written
    monkeypatch.setattr(store, "write_page", real)
    sync_source(ListConnector(data), store, started=T0 + timedelta(days=5))
    assert len(items_of(store)) == 60


def test_an_older_copy_of_an_item_never_overwrites_a_newer_one(store: Store) -> None:
    new = item(1, updated=T0 + timedelta(hours=5), status="Done")
    old = item(1, updated=T0 + timedelta(hours=1))
    store.start_sync("t", "memory", T0)
    store.write_page(Page(source="t", items=(new,)))
    store.write_page(Page(source="t", items=(old,)))
    (stored,) = store.evidence(["t"]).items
    assert stored.status == "Done" and stored.updated == new.updated


def test_the_watermark_never_moves_back(store: Store) -> None:
    store.start_sync("t", "memory", T0)
    store.write_page(Page(source="t"), watermark=T0 + timedelta(hours=5))
    store.write_page(Page(source="t"), watermark=T0 + timedelta(hours=1))
    assert store.watermark("t") == T0 + timedelta(hours=5)


def test_an_update_during_the_sync_is_read_again_next_time(store: Store) -> None:
    started = T0 + timedelta(days=1)
    data = [item(1, updated=T0), item(2, updated=started + timedelta(minutes=1))]
    sync_source(ListConnector(data), store, started=started)
    assert store.watermark("t") == started  # clamped to the run's start
    nxt = ListConnector(data)
    sync_source(nxt, store, started=started + timedelta(hours=1))
    assert nxt.windows[0].since is not None and nxt.windows[0].since < started


def test_two_syncs_at_once_duplicate_nothing(store_url: str) -> None:
    data = [item(n, updated=T0 + timedelta(minutes=n)) for n in range(300)]
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Store(store_url) as own:
                sync_source(ListConnector(data, page_size=25), own,
                            started=T0 + timedelta(days=1))
        except BaseException as error:
            errors.append(error)

    Store(store_url).close()  # migrate once before the race
    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Store(store_url) as store:
        assert store.counts()["items"] == 300
        assert store.watermark("t") == T0 + timedelta(minutes=299)


def test_a_sync_says_whether_it_wrote_anything_the_plan_is_judged_from(store: Store) -> None:
    """A run that syncs nothing new uses the judgement it made while syncing
    (``flows.run.JudgedAhead``): ``changed`` must be true for every write that changes
    the evidence (items, selections, removals) and false only when there was none."""
    from stratmap.models.plan import Selector

    class Selecting(ListConnector):
        """Leaves out what the store holds as it is, as the trackers' connectors do."""

        selected = frozenset({"T-0"})
        present = frozenset({"T-0", "T-1", "T-2"})

        def fetch(self, window: Window) -> Iterator[Page]:
            for page in super().fetch(window):
                news = tuple(i for i in page.items if window.stored.get(i.key) != i.updated)
                yield page.model_copy(update={"items": news, "changes": ()})

        def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
            return self.selected

        def reconcile(self) -> frozenset[str]:
            return self.present

    tracker = Selecting([item(n, updated=T0) for n in range(3)])
    selectors = [Selector(source="t", jql="labels = a")]
    day = timedelta(days=1)

    def sync(started: datetime) -> bool:
        result = sync_source(tracker, store, started=started, selectors=selectors,
                             reconcile_every=day)
        return result.changed

    assert sync(T0 + timedelta(hours=1)) is True  # the items, the selection
    assert sync(T0 + timedelta(hours=2)) is False  # nothing new, the same selection
    tracker.selected = frozenset({"T-0", "T-1"})
    assert sync(T0 + timedelta(hours=3)) is True
    assert store.evidence(["t"]).selections == {("t", selectors[0].key()): tracker.selected}
    assert sync(T0 + timedelta(hours=4)) is False
    tracker.present = frozenset({"T-0", "T-1"})  # T-2 gone, seen at the next reconciliation
    tracker.items = [i for i in tracker.items if i.key in tracker.present]
    assert sync(T0 + 2 * day) is True
    assert sorted(items_of(store)) == ["T-0", "T-1"]
    assert sync(T0 + 3 * day) is False  # reconciled again, nothing more gone
    tracker.items.append(item(3, updated=T0 + 3 * day + timedelta(minutes=5)))
    assert sync(T0 + 3 * day + timedelta(hours=1)) is True


def test_a_sync_that_sees_the_same_due_dates_changed_nothing(store: Store) -> None:
    """GitHub and GitLab give their milestones' due dates on every sync: only one that
    differs from the last the store knows is written, and only that makes the run judge
    again."""
    from stratmap.models.records import TrackerDue

    class Dated(ListConnector):
        due = "2027-03-01"

        def fetch(self, window: Window) -> Iterator[Page]:
            yield Page(source="t", dues=(TrackerDue(source="t", container="v1.0", at=window.until,
                                                     origin="seen", to_due=self.due),))

    tracker = Dated([])

    def sync(started: datetime) -> bool:
        return sync_source(tracker, store, started=started).changed

    assert sync(T0) is True  # the first due date of v1.0
    assert sync(T0 + timedelta(hours=1)) is False
    tracker.due = "2027-03-15"
    assert sync(T0 + timedelta(hours=2)) is True
    assert sync(T0 + timedelta(hours=3)) is False


def test_reconciliation_hides_items_gone_from_the_tracker(store: Store) -> None:
    data = [item(n, updated=T0) for n in range(5)]

    class Reconciling(ListConnector):
        def reconcile(self) -> frozenset[str]:
            return frozenset({"T-0", "T-1", "T-2"})

    result = sync_source(Reconciling(data), store, started=T0 + timedelta(days=1))
    assert result.removed == 2
    assert sorted(items_of(store)) == ["T-0", "T-1", "T-2"]
    assert store.counts()["items"] == 5  # kept, flagged: nothing is lost


def test_a_sync_puts_the_collectors_threshold_back(store: Store) -> None:
    import gc

    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []

    class Watching(ListConnector):
        def fetch(self, window: Window) -> Iterator[Page]:
            seen.append(gc.get_threshold())
            yield from super().fetch(window)

    sync_source(Watching([item(1, updated=T0)]), store, started=T0 + timedelta(days=1))
    assert seen[0][0] >= 20_000  # collected less often while syncing
    assert gc.get_threshold() == before


def test_the_overlap_hint_holds_stored_stamps_since_the_bound_not_removed_ones(
    store: Store,
) -> None:
    items = [item(n, updated=T0 + timedelta(minutes=n)) for n in range(1, 6)]
    connector = ListConnector(items)
    sync_source(connector, store, started=T0 + timedelta(hours=1))
    assert store.updated_since("t", T0 + timedelta(minutes=4)) == {
        "T-4": T0 + timedelta(minutes=4), "T-5": T0 + timedelta(minutes=5)}
    store.mark_removed("t", frozenset({"T-1", "T-2", "T-3", "T-4"}), T0 + timedelta(hours=1))
    assert store.updated_since("t", T0 + timedelta(minutes=4)) == {"T-4": T0 + timedelta(minutes=4)}

    # The next sync hands the overlap's stamps to the connector.
    sync_source(connector, store, started=T0 + timedelta(hours=2))
    window = connector.windows[-1]
    assert window.since == T0 + timedelta(minutes=5) - connector.default_overlap
    assert window.stored == {f"T-{n}": T0 + timedelta(minutes=n) for n in (1, 2, 3, 4)}


@pytest.mark.integration  # thirty rounds of eight threads: seconds
def test_many_syncs_opening_a_new_sqlite_store_at_once_never_meet_a_locked_file(
    tmp_path: Path,
) -> None:
    """A plan's sources sync on threads, each opening the store: on a new SQLite file, the
    switch to WAL once answered "database is locked" at once to all but one (seen in the
    4-cursor benchmark; here, without the fix, in about one round of ten)."""
    for round_ in range(30):
        url = f"sqlite:///{tmp_path / f'new-{round_}.db'}"
        errors: list[BaseException] = []
        start = threading.Barrier(8)

        def open_and_write(n: int, url: str = url, start: threading.Barrier = start,
                           errors: list[BaseException] = errors) -> None:
            try:
                start.wait()
                with Store(url) as store:
                    store.start_sync(f"source-{n}", "memory", T0)
            except BaseException as error:  # collected for the assertion below
                errors.append(error)

        threads = [threading.Thread(target=open_and_write, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with Store(url) as store, store.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert all(store.state(f"source-{n}") is not None for n in range(8))


def test_sqlite_reads_the_evidence_as_the_generic_path_does(tmp_path: Path) -> None:
    """SQLite's evidence is read through the driver (no per-value processing): the same
    records, in the same order, as SQLAlchemy's reading, on the sample and on hostile rows
    (a removed item, JSON columns, missing moments, a selection)."""
    from stratmap.flows.cli import main
    from stratmap.models.planfile import load_plan
    from tests.conftest import EXAMPLES

    plan_path = EXAMPLES / "northwind" / "plan.yaml"
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(plan_path), "--db", url, "-q", "--as-of", "2027-03-01"]) == 0
    names = sorted(load_plan(plan_path).sources)
    with Store(url) as store:
        at = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
        written = WorkItem(source="jira", key="Z-1", status="Open",
                           status_category=StatusCategory.TODO, created=at, updated=at,
                           labels=("é", "b"), fields={"x": "y"}, flags=("drift",), points=2.5)
        store.write_page(Page(source="jira", items=(written,), changes=(
            StatusChange(source="jira", item_key="Z-1", change_id="9", at=at,
                         to_status="Open", to_category=StatusCategory.TODO),)))
        store.replace_selection("jira", "jql:abc", ["Z-1", "CRM-2"])
        store.mark_removed("site", frozenset(), at)
        fast = store.evidence(names)
        generic = store._evidence(names, None)
        assert fast == generic
        # Comment text from a moment on only: the same comments, the same ones without it.
        middle = sorted(c.at for c in fast.comments)[len(fast.comments) // 2]
        trimmed = store.evidence(names, full_since=middle)
        assert trimmed == store._evidence(names, middle)
        assert 0 < sum(c.body is None for c in trimmed.comments) < len(trimmed.comments)
        assert [c.body is None for c in trimmed.comments] == [
            c.comment_id is None for c in trimmed.comments]
        # Just some items' records: the same through both paths.
        some = sorted({(c.source, c.item_key) for c in fast.comments[::7]} | {("jira", "Z-1")})
        only = store.evidence(names, full_since=middle, only=some)
        assert only == store._evidence(names, middle, some)
        assert {(i.source, i.key) for i in only.items} == {  # the site's are removed
            k for k in some if k[0] != "site"}
        assert only.comments and only.changes and only.accounts == fast.accounts
        # Built without validation, yet the same records: each value of the same type
        # (aware UTC moments, enum members, floats), field by field.
        for ours, theirs in ((fast.items, generic.items), (fast.changes, generic.changes),
                             (fast.comments, generic.comments),
                             (fast.assignments, generic.assignments)):
            for a, b in zip(ours, theirs, strict=True):
                assert type(a) is type(b) and a._fields == b._fields
                assert a == b and [type(v) for v in a] == [type(v) for v in b]
        for a, b in zip(fast.accounts, generic.accounts, strict=True):
            assert a.model_dump_json() == b.model_dump_json()
        # What was written comes back: the record as the evidence holds it.
        z = next(i for i in fast.items if i.key == "Z-1")
        assert z == Evidence(items=(written,)).items[0]
        assert z.created == at and z.created.tzinfo is UTC and z.fields == {"x": "y"}
        assert len(fast.items) > 50 and fast.changes and fast.comments and fast.accounts
        # Repeated text is one object: a change names its item's key object, and every
        # record of a source the same source text (a fresh string per row was 100 MB at
        # 100,000 issues).
        keys = {(i.source, i.key): i.key for i in fast.items}
        assert all(c.item_key is keys[(c.source, c.item_key)] for c in fast.changes
                   if (c.source, c.item_key) in keys)
        assert len({id(r.source) for r in (*fast.items, *fast.changes, *fast.comments)
                    if r.source == "jira"}) == 1
        assert fast.selections[("jira", "jql:abc")] == {"Z-1", "CRM-2"}
        assert not [i for i in fast.items if i.source == "site"]


def test_evidence_merged_with_what_a_sync_wrote_is_the_evidence_read_again(
        store: Store) -> None:
    """A run that synced a few items reads just those again and merges them into the
    evidence read while it synced (``Evidence.merged``, ``Store.evidence(only=...)``): the
    same records in the same order as reading everything again, on both databases, for new
    items, changed ones with new history, items of another source, and comment text cut."""
    import random

    from stratmap.models.records import Account, AssigneeChange, Comment

    rng = random.Random(11)

    def page(source: str, keys: list[str], at: datetime) -> Page:
        items, changes, comments, assignments = [], [], [], []
        for key in keys:
            done = rng.random() < 0.4
            items.append(WorkItem(
                source=source, key=key, title=f"{key} at {at:%H:%M}",
                status="Done" if done else "Open",
                status_category=StatusCategory.DONE if done else StatusCategory.TODO,
                created=T0, updated=at, labels=tuple(rng.sample(["a", "b", "c"], 2)),
                assignee=rng.choice([None, "u1", "u2"])))
            for n in range(rng.randrange(3)):
                moment = at - timedelta(hours=rng.randrange(1, 500))
                changes.append(StatusChange(
                    source=source, item_key=key, change_id=f"{at:%H%M}-{n}", at=moment,
                    to_status="Done", to_category=StatusCategory.DONE))
                comments.append(Comment(source=source, item_key=key,
                                        comment_id=f"{at:%H%M}-{n}", at=moment,
                                        author="u1", body=f"said {n}"))
                assignments.append(AssigneeChange(
                    source=source, item_key=key, change_id=f"{at:%H%M}-{n}", at=moment,
                    to_account="u2"))
        return Page(source=source, items=tuple(items), changes=tuple(changes),
                    comments=tuple(comments), assignments=tuple(assignments),
                    accounts=(Account(source=source, account_id="u1",
                                      display_name=f"U at {at:%H:%M}"),))

    first = T0 + timedelta(days=30)
    for source in ("s", "t"):
        store.write_page(page(source, [f"K-{n}" for n in range(40)], first))
    since = T0 + timedelta(days=20)
    before = store.evidence(["s", "t"], full_since=since)
    later = first + timedelta(hours=5)
    written: set[tuple[str, str]] = set()
    for source, keys in (("s", ["K-3", "K-17", "K-39", "K-40", "A-1"]), ("t", ["K-0"])):
        store.write_page(page(source, keys, later))
        written.update((source, key) for key in keys)
    fresh = store.evidence(["s", "t"], full_since=since, only=written)
    assert {(i.source, i.key) for i in fresh.items} == written
    merged = before.merged(fresh, written)
    again = store.evidence(["s", "t"], full_since=since)
    assert merged == again
    assert merged.items != before.items and merged.accounts != before.accounts
    assert len(merged.items) == 82
    assert again.merged(store.evidence(["s", "t"], full_since=since, only=()), ()) == again


def test_the_evidence_tuples_carry_every_field_of_their_records() -> None:
    """The evidence's tuples repeat their records' fields, in order (Evidence builds one
    from the other by name): a field added to a record and not to its tuple fails here,
    not as a value the engine silently never sees."""
    from stratmap.models.records import (
        AssigneeChange,
        Comment,
        EvidenceAssignment,
        EvidenceChange,
        EvidenceComment,
        EvidenceItem,
    )

    for record, compact in ((WorkItem, EvidenceItem), (StatusChange, EvidenceChange),
                            (Comment, EvidenceComment), (AssigneeChange, EvidenceAssignment)):
        assert compact._fields == tuple(record.model_fields), record.__name__


def test_sqlite_reads_snapshots_as_the_generic_path_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's snapshots are read through the driver: the same snapshots, values of the
    same types, as SQLAlchemy's reading, whole and up to a moment (on a week's start and
    between weeks) and for one entity."""
    from stratmap.flows.cli import main
    from stratmap.models.history import SnapshotPoint
    from stratmap.models.planfile import load_plan
    from stratmap.models.store import load_snapshot_points, load_snapshots
    from tests.conftest import EXAMPLES

    plan_path = EXAMPLES / "northwind" / "plan.yaml"
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(plan_path), "--db", url, "-q", "--as-of", "2027-03-01"]) == 0
    name = load_plan(plan_path).name
    with Store(url) as store:
        fast = load_snapshots(store, name)
        middle = fast[len(fast) // 2]
        cuts = [dict(until=middle.as_of), dict(until=middle.as_of + timedelta(hours=1)),
                dict(until=middle.as_of, entity=middle.entity)]
        fast_cuts = [load_snapshots(store, name, **cut) for cut in cuts]  # type: ignore[arg-type]
        monkeypatch.setattr(store.engine.dialect, "name", "generic")
        generic = load_snapshots(store, name)
        assert len(fast) > 100 and any(s.forecast for s in fast)
        for ours, theirs in zip([fast, *fast_cuts], [generic, *(
                load_snapshots(store, name, **cut) for cut in cuts)], strict=True):  # type: ignore[arg-type]
            assert ours and len(ours) == len(theirs)
            for a, b in zip(ours, theirs, strict=True):
                assert list(a.__dict__.items()) == list(b.__dict__.items())
                assert [type(v) for v in a.__dict__.values()] == [
                    type(v) for v in b.__dict__.values()]
        # What the charts read of them (the HTML report's history): the same values, in the
        # same order, through both paths.
        points = [load_snapshot_points(store, name),
                  load_snapshot_points(store, name, until=middle.as_of)]
        monkeypatch.setattr(store.engine.dialect, "name", "sqlite")
        assert points == [load_snapshot_points(store, name),
                          load_snapshot_points(store, name, until=middle.as_of)]
        assert points == [[SnapshotPoint.of(s) for s in fast],
                          [SnapshotPoint.of(s) for s in fast_cuts[0]]]
        assert [[type(v) for v in p] for p in points[0]] == [
            [type(v) for v in SnapshotPoint.of(s)] for s in fast]
    # A week is one moment object and an entity one string, however many rows name them.
    assert len({id(s.as_of) for s in fast}) == len({s.as_of for s in fast})
    assert len({id(s.entity) for s in fast}) == len({s.entity for s in fast})
    assert len({id(p.as_of) for p in points[0]}) == len({p.as_of for p in points[0]})


def test_records_read_from_the_store_share_one_fields_set_per_record_type(
        tmp_path: Path) -> None:
    """A set of field names per record was most of the evidence's memory (2 KB for an
    item's 19 names); every stored record of a type shares one, equal to what validating
    would give, and a copy with an update leaves the shared one as it was."""
    from stratmap.models.records import stored

    moment = datetime(2026, 1, 1, tzinfo=UTC)
    values = WorkItem(source="s", key="K-1", title="t", status="Open",
                      status_category="todo", created=moment, updated=moment)
    first = stored(WorkItem, dict(values.__dict__))
    second = stored(WorkItem, {**values.__dict__, "key": "K-2"})
    assert first.model_fields_set is second.model_fields_set
    assert first.model_fields_set == set(WorkItem.model_fields) == \
        WorkItem.model_validate(values.model_dump()).model_fields_set
    shared = set(first.model_fields_set)
    copied = first.model_copy(update={"title": "u"})
    assert copied.title == "u" and first.title == "t"
    assert first.model_fields_set == shared


def test_sqlite_writes_through_the_driver_what_sqlalchemy_writes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On SQLite a page is written through the driver (SQLAlchemy's processing per value was
    half the writing): every table holds the same values of the same SQLite types as
    SQLAlchemy's writing gives, for hostile rows (NUL, non-UTC and microsecond moments, JSON,
    missing values), and an older version of an item still does not replace a newer one."""
    import sqlite3

    from stratmap.models import store as store_module
    from stratmap.models.records import Account as AccountRecord
    from stratmap.models.records import AssigneeChange, Comment, RawPayload

    paris = timezone(timedelta(hours=1))
    newer = datetime(2027, 1, 2, 3, 4, 5, 678901, tzinfo=paris)
    older = datetime(2027, 1, 1, tzinfo=UTC)

    def page(updated: datetime, title: str) -> Page:
        return Page(
            source="s",
            items=(WorkItem(source="s", key="K-1", title=title, status="Open",
                            status_category=StatusCategory.TODO, created=older,
                            updated=updated, labels=("é", "a\0b"), fields={"x": "y", "n": "\u2603"},
                            points=2.5, due=None, assignee="u\0v"),
                   WorkItem(source="s", key="K-2", title="", status="Done",
                            status_category=StatusCategory.DONE, created=older,
                            updated=older, resolved=newer)),
            changes=(StatusChange(source="s", item_key="K-2", change_id="1", at=newer,
                                  from_status="Open", to_status="Done",
                                  from_category=StatusCategory.TODO,
                                  to_category=StatusCategory.DONE),),
            comments=(Comment(source="s", item_key="K-1", comment_id="c", at=newer,
                              author=None, body="ok \0 ✓"),),
            assignments=(AssigneeChange(source="s", item_key="K-1", change_id="a", at=older,
                                        to_account="u"),),
            accounts=(AccountRecord(source="s", account_id="u", display_name="Ü"),),
            raw=(RawPayload(source="s", key="K-1", endpoint="/e", fetched_at=older,
                            payload={"k": "v"}),))

    def tables(url: str) -> dict[str, list[tuple[object, ...]]]:
        connection = sqlite3.connect(url.removeprefix("sqlite:///"))
        out = {}
        for table in ("items", "status_changes", "comments", "assignee_changes", "accounts",
                      "raw_payloads"):
            columns = [r[1] for r in connection.execute(f"PRAGMA table_info({table})")]
            typed = ", ".join(f"{c}, typeof({c})" for c in columns if c != "fetched_at")
            out[table] = connection.execute(f"SELECT {typed} FROM {table} ORDER BY 1, 3").fetchall()
        connection.close()
        return out

    fast_paths: list[str] = []
    real = store_module._driver_statement

    def spy(*args: object) -> object:
        found = real(*args)  # type: ignore[arg-type]
        if found is not None:
            fast_paths.append(args[2].name)  # type: ignore[attr-defined]
        return found

    written = {}
    for name, driver in (("driver", spy), ("sqlalchemy", lambda *_: None)):
        monkeypatch.setattr(store_module, "_driver_statement", driver)
        url = f"sqlite:///{tmp_path / name}.db"
        with Store(url) as store:
            store.write_page(page(newer, "new"))
            store.write_page(page(older, "old"))  # older: must not replace the item
        written[name] = tables(url)
    assert {"items", "status_changes", "comments", "raw_payloads"} <= set(fast_paths)
    assert written["driver"] == written["sqlalchemy"]
    items = written["driver"]["items"]
    assert items[0][4] == "new" and "\0" not in str(items)
    # Moments as naive UTC text, from UTC and from another zone alike.
    assert items[0][2 * 8:2 * 10] == ("2027-01-01 00:00:00.000000", "text",
                                      "2027-01-02 02:04:05.678901", "text")


def test_comment_text_is_read_only_where_the_judgement_reads_it(store: Store) -> None:
    """Judging at ``as_of`` reads a comment's text and id only from DECLARATION_FRESH
    before it (an owner's declarations are their only reader): older comments come
    without them, on
    SQLite and PostgreSQL alike, and the judgement is the one the whole text gives.
    Evidence read for a later moment refuses to judge an earlier one where it lacks text."""
    from stratmap.flows.measures import plan_evidence
    from stratmap.judgement import judge
    from stratmap.judgement.organisation import DECLARATION_FRESH
    from stratmap.models.plan import Plan
    from stratmap.models.records import Comment
    from stratmap.models.report import Kind

    as_of = datetime(2027, 3, 1, 9, tzinfo=UTC)
    since = as_of - DECLARATION_FRESH
    day = timedelta(days=1)
    created = as_of - 120 * day
    items = (WorkItem(source="jira", key="WEB-2", status="In Progress",
                      status_category=StatusCategory.IN_PROGRESS, created=created,
                      updated=as_of - 20 * day, parent="WEB-1"),)
    said = [(as_of - 90 * day, "on track, said long ago"), (since, "on track at the edge"),
            (as_of - 3 * day, "We are on track for March.")]
    comments = tuple(Comment(source="jira", item_key="WEB-2", comment_id=str(n), at=at,
                             author="bob-id", body=body) for n, (at, body) in enumerate(said))
    store.write_page(Page(source="jira", items=items, comments=comments, changes=(
        StatusChange(source="jira", item_key="WEB-2", change_id="1", at=as_of - 20 * day,
                     author="bob-id", to_status="In Progress",
                     to_category=StatusCategory.IN_PROGRESS),)))
    plan = Plan.model_validate({
        "version": 1, "name": "Bodies", "leader": "alice",
        "people": {"alice": {"name": "Alice", "accounts": {"jira": "alice-id"}},
                   "bob": {"name": "Bob", "accounts": {"jira": "bob-id"}}},
        "sources": {"jira": {"kind": "jira", "url": "https://jira.example",
                             "token": "env:JIRA_TOKEN", "scope": "project = WEB"}},
        "defaults": {"stall_after": "14d"},
        "goals": [{"id": "web", "title": "Web", "owner": "alice", "milestones": [
            {"id": "m", "title": "M", "owner": "bob", "start": "2026-11-01",
             "work": [{"source": "jira", "epic": "WEB-1"}]}]}],
    })
    whole = store.evidence(["jira"])
    read = store.evidence(["jira"], full_since=since)
    assert [c.body for c in whole.comments] == [body for _, body in said]
    assert [c.body for c in read.comments] == [None, "on track at the edge",
                                                "We are on track for March."]
    assert [c.comment_id for c in read.comments] == [None, "1", "2"]
    assert read.comments[1].at == since  # the edge itself keeps its text
    assert [c._replace(body=None, comment_id=None) for c in read.comments] == [
        c._replace(body=None, comment_id=None) for c in whole.comments]
    assert (read.items, read.changes) == (whole.items, whole.changes)

    trimmed = plan_evidence(store, plan, as_of=as_of)
    report = judge(plan, trimmed, as_of=as_of)
    assert report == judge(plan, plan_evidence(store, plan), as_of=as_of)
    [claim] = [f for f in report.findings if f.kind is Kind.OPTIMISTIC_STATUS]
    assert claim.evidence["quote"] == "We are on track for March."
    # 80 days earlier the owner's claim of 90 days ago is fresh: its text was not read.
    with pytest.raises(ValueError, match="read without its text"):
        judge(plan, trimmed, as_of=as_of - 80 * day)
