"""The contract every connector passes, whatever the tracker.

A connector's test module subclasses :class:`ConnectorContract` and provides a
``harness`` fixture: a fake tracker (files, or a local server speaking the tracker's wire
format) that the suite seeds and mutates through :class:`Harness`. The suite then syncs
through the real pipeline into a real store (SQLite and PostgreSQL) and checks what every
user relies on: every page read, history complete, the incremental window, a double run
that neither loses nor duplicates, the watermark never ahead of the data, an empty window,
and, for trackers spoken to over HTTP, the handling of 429, 5xx and 401.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest

from stratmap.connectors.base import AuthError, Connector
from stratmap.flows.pipeline import sync_source
from stratmap.models.records import StatusCategory
from stratmap.models.store import Store

T0 = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)


@dataclass
class SeedItem:
    """A tracker item as the suite describes it, independent of any wire format."""

    key: str
    title: str
    created: datetime
    status: str = "To Do"
    history: list[tuple[datetime, str, str, str]] = field(default_factory=list)
    """(at, author, from status, to status)"""
    comments: list[tuple[datetime, str, str]] = field(default_factory=list)
    """(at, author, body)"""
    assignee: str | None = None

    @property
    def updated(self) -> datetime:
        moments = [self.created] + [h[0] for h in self.history] + [c[0] for c in self.comments]
        return max(moments)


class Harness(Protocol):
    """A fake tracker. ``keys`` are the seed's own keys (``ITEM-1``); ``key_of`` maps a
    seed key to the key the connector reports (``site#1`` on GitHub, say)."""

    http: bool

    def seed(self, items: list[SeedItem]) -> None: ...

    def transition(self, key: str, *, at: datetime, author: str,
                   to: str) -> datetime | None:
        """Change an item's status; return the moment the tracker recorded, if not ``at``."""
        ...

    def connector(self) -> Connector: ...

    def key_of(self, key: str) -> str: ...

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (HTTP harnesses only)."""
        ...


def make_items(count: int, *, start: datetime = T0) -> list[SeedItem]:
    """``count`` items, one a day apart; every third done with a full history and comments."""
    items = []
    for n in range(1, count + 1):
        created = start + timedelta(hours=n)
        item = SeedItem(key=f"ITEM-{n}", title=f"Item {n}", created=created, assignee="dev1")
        if n % 3 == 0:
            item.history = [(created + timedelta(days=1), "dev1", "To Do", "In Progress"),
                            (created + timedelta(days=2), "dev2", "In Progress", "Done")]
            item.status = "Done"
            item.comments = [(created + timedelta(days=1, hours=2), "lead", f"Looks good {n}")]
        elif n % 3 == 1:
            item.history = [(created + timedelta(days=1), "dev1", "To Do", "In Progress")]
            item.status = "In Progress"
        items.append(item)
    return items


Sync = Callable[..., object]


class ConnectorContract:
    """Subclass with a ``harness`` fixture; every test here then runs for that tracker.

    A harness over a real server whose clock cannot be set offers ``tracker_now()`` (the tracker's
    clock): the suite's run starts are then never before what the tracker stamped, and
    ``overlap`` may be set to fit a tracker whose stamps are whole seconds.
    """

    page_count_items = 250
    overlap = timedelta(minutes=15)

    def sync(self, harness: Harness, store: Store, *, started: datetime) -> object:
        connector = harness.connector()
        try:
            return sync_source(connector, store, started=started, overlap=self.overlap)
        finally:
            connector.close()

    @staticmethod
    def moment(harness: Harness, suite_moment: datetime) -> datetime:
        """The suite's moment, or the tracker's clock if that is later."""
        clock = getattr(harness, "tracker_now", None)
        return max(suite_moment, clock()) if clock else suite_moment

    def test_full_sync_reads_every_page(self, harness: Harness, store: Store) -> None:
        items = make_items(self.page_count_items)
        harness.seed(items)
        result = self.sync(harness, store, started=T0 + timedelta(days=30))
        assert result.pages > 1  # type: ignore[attr-defined]
        evidence = store.evidence([harness.connector().name])
        assert sorted(i.key for i in evidence.items) == sorted(harness.key_of(i.key) for i in items)

    def test_history_and_comments_are_complete(self, harness: Harness, store: Store) -> None:
        items = make_items(30)
        harness.seed(items)
        self.sync(harness, store, started=T0 + timedelta(days=30))
        evidence = store.evidence([harness.connector().name])
        expected_changes = sum(len(i.history) for i in items)
        expected_comments = sum(len(i.comments) for i in items)
        assert len(evidence.changes) == expected_changes
        assert len(evidence.comments) == expected_comments
        third = next(i for i in evidence.items if i.key == harness.key_of("ITEM-3"))
        assert third.status_category is StatusCategory.DONE
        changes = [c for c in evidence.changes if c.item_key == third.key]
        assert [c.to_category for c in changes] == [StatusCategory.IN_PROGRESS,
                                                    StatusCategory.DONE]
        assert changes[0].at < changes[1].at

    def test_incremental_run_reads_the_change_and_only_the_window(
            self, harness: Harness, store: Store) -> None:
        items = make_items(40)
        harness.seed(items)
        first = self.moment(harness, T0 + timedelta(days=30))
        self.sync(harness, store, started=first)
        name = harness.connector().name
        mark = store.watermark(name)
        assert mark is not None and mark <= first
        # What the window may hold: the items updated since the watermark less the overlap
        # (a minute more for trackers that filter by the minute), and the one that moves.
        since = mark - self.overlap - timedelta(minutes=1)
        in_window = {i.key for i in store.evidence([name]).items if i.updated >= since}
        in_window.add(harness.key_of("ITEM-2"))
        moved = self.moment(harness, first + timedelta(days=1))
        moved = harness.transition("ITEM-2", at=moved, author="dev2", to="Done") or moved
        result = self.sync(harness, store,
                           started=self.moment(harness, moved + timedelta(hours=1)))
        read = result.items  # type: ignore[attr-defined]
        assert 1 <= read <= len(in_window), (read, sorted(in_window))
        evidence = store.evidence([harness.connector().name])
        item = next(i for i in evidence.items if i.key == harness.key_of("ITEM-2"))
        assert item.status_category is StatusCategory.DONE
        assert any(c.item_key == item.key and c.at == moved for c in evidence.changes)

    def test_double_run_loses_nothing_and_duplicates_nothing(
            self, harness: Harness, store: Store) -> None:
        harness.seed(make_items(60))
        started = T0 + timedelta(days=30)
        self.sync(harness, store, started=started)
        once = (store.counts(), store.evidence([harness.connector().name]))
        self.sync(harness, store, started=started + timedelta(minutes=5))
        twice = (store.counts(), store.evidence([harness.connector().name]))
        assert once == twice

    def test_watermark_never_passes_the_run_start(self, harness: Harness, store: Store) -> None:
        items = make_items(5)
        started = self.moment(harness, T0 + timedelta(days=3))
        late = SeedItem(key="ITEM-99", title="changed while syncing", created=T0,
                        history=[(started + timedelta(minutes=3), "dev1", "To Do", "In Progress")],
                        status="In Progress")
        harness.seed([*items, late])
        self.sync(harness, store, started=started)
        mark = store.watermark(harness.connector().name)
        assert mark is not None and mark <= started

    def test_empty_tracker(self, harness: Harness, store: Store) -> None:
        harness.seed([])
        result = self.sync(harness, store, started=T0)
        assert result.items == 0  # type: ignore[attr-defined]
        assert store.watermark(harness.connector().name) is None
        assert store.counts()["items"] == 0

    # -- HTTP trackers -------------------------------------------------------------------

    def test_rate_limit_and_server_errors_are_survived(self, harness: Harness,
                                                       store: Store) -> None:
        if not harness.http:
            pytest.skip("not spoken to over HTTP")
        items = make_items(20)
        harness.seed(items)
        harness.fail_next(429, retry_after="0")
        harness.fail_next(503, times=2)
        self.sync(harness, store, started=T0 + timedelta(days=30))
        assert store.counts()["items"] == len(items)

    def test_refused_credentials_name_the_source(self, harness: Harness, store: Store) -> None:
        if not harness.http:
            pytest.skip("not spoken to over HTTP")
        harness.seed(make_items(3))
        harness.fail_next(401, times=50)
        with pytest.raises(AuthError) as raised:
            self.sync(harness, store, started=T0 + timedelta(days=30))
        assert harness.connector().name in str(raised.value)
        assert store.counts()["items"] == 0
