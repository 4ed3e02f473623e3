"""The shared connector contract against a real Redmine.

Each test gets a fresh project. The harness seeds through the REST API: an issue per
:class:`SeedItem` (created as ``dev1`` is assigned), then each history step as a status
update and each comment as a note, written as their authors (``X-Redmine-Switch-User``).

Redmine stamps every write with its own clock, while the suite's moments are fixed (from
2026-09-01). Two harnesses, two classes:

* :class:`TestRedmineContract` backdates what it wrote to the suite's moments in the
  server's database (see ``admin.py``): every contract test holds, and the window, the
  watermark clamp and the double run are exercised at the moments the suite intends.
* :class:`TestRedmineContractRealClock` does not backdate: Redmine's stamps are real. It
  shows the contract holds with real clocks too: the suite follows the tracker's clock
  (``tracker_now``) and a second of overlap. Only SQLite here: the store is not what it
  tests.

429, 5xx and 401 answers are injected in front of the real server (an httpx transport),
as Redmine gives none of them on demand; a real 401 (a wrong key) is tested in
``test_redmine.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from stratmap.connectors.redmine import RedmineConnector
from stratmap.models.plan import RedmineSource
from tests.contract.suite import ConnectorContract, SeedItem
from tests.redmine.admin import RedmineAdmin

STATUS = {"To Do": "New", "In Progress": "In Progress", "Done": "Closed"}
PEOPLE = ("dev1", "dev2", "lead")


class FailingTransport(httpx.BaseTransport):
    """Answers the next requests with queued failures, then passes through to Redmine."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.queue: list[tuple[int, str | None]] = []
        self.failed = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.queue:
            status, retry_after = self.queue.pop(0)
            self.failed += 1
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            return httpx.Response(status, headers=headers, json={"errors": ["injected"]})
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


class RedmineHarness:
    http = True
    page_size = 20

    def __init__(self, admin: RedmineAdmin, *, backdate: bool) -> None:
        self.admin = admin
        self.backdate = backdate
        self.project = admin.project("c", members=PEOPLE)
        self.ids: dict[str, int] = {}
        self.transport = FailingTransport()
        self._connectors: list[RedmineConnector] = []

    def seed(self, items: list[SeedItem]) -> None:
        for item in items:
            self.ids[item.key] = self.admin.create_issue(self.project, item.title,
                                                         assignee=item.assignee)
        # Each item's history and comments, oldest first, one write each.
        events = {
            item.key: sorted([(at, who, ("status", STATUS[to])) for at, who, _f, to in item.history]
                             + [(at, who, ("notes", body)) for at, who, body in item.comments],
                             key=lambda e: e[0])
            for item in items
        }
        rounds = max((len(e) for e in events.values()), default=0)
        for n in range(rounds):
            if not self.backdate and n:
                _next_second()  # real stamps: one item's steps never share a second
            for key, steps in events.items():
                if n < len(steps):
                    self._write(self.ids[key], steps[n])
        if self.backdate:
            for item in items:
                self._backdate(item, [at for at, _w, _e in events[item.key]])

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> datetime | None:
        issue = self.ids[key]
        self._write(issue, (at, author, ("status", STATUS[to])))
        journal = self.admin.journal_ids(issue)[-1]
        if self.backdate:
            self.admin.backdate(issue, updated=at, journals={journal: at},
                                closed=at if to == "Done" else None)
            return None
        return self.admin.journal_time(journal)


    def connector(self) -> RedmineConnector:
        config = RedmineSource(kind="redmine", url=self.admin.server.url, project=self.project,
                               page_size=self.page_size)
        connector = RedmineConnector("ops", config, token=self.admin.server.key,
                                     transport=self.transport, sleep=lambda _s: None)
        self._connectors.append(connector)
        return connector

    def key_of(self, key: str) -> str:
        return f"ops#{self.ids[key]}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        self.transport.queue.extend([(status, retry_after)] * times)

    def close(self) -> None:
        for connector in self._connectors:
            connector.close()
        self.transport.close()

    def _write(self, issue: int, step: tuple[datetime, str, tuple[str, str]]) -> None:
        _at, author, (what, value) = step
        if what == "status":
            self.admin.update(issue, status=value, as_user=author)
        else:
            self.admin.update(issue, notes=value, as_user=author)

    def _backdate(self, item: SeedItem, moments: list[datetime]) -> None:
        issue = self.ids[item.key]
        journals = self.admin.journal_ids(issue)
        assert len(journals) == len(moments), "one journal per seeded step"
        done = [at for at, _w, _f, to in item.history if to == "Done"]
        self.admin.backdate(issue, created=item.created, updated=item.updated,
                            closed=done[-1] if item.status == "Done" and done else None,
                            journals=dict(zip(journals, moments, strict=True)))


class RealClockHarness(RedmineHarness):
    """Nothing backdated: the suite follows the server's clock instead."""

    def __init__(self, admin: RedmineAdmin) -> None:
        super().__init__(admin, backdate=False)

    def tracker_now(self) -> datetime:
        return datetime.now(UTC)  # the server runs on this machine's clock


def _next_second() -> None:
    now = datetime.now(UTC)
    time.sleep(1.05 - now.microsecond / 1_000_000)


class TestRedmineContract(ConnectorContract):
    # 45 issues at 20 a page: three pages, without seeding 250 issues over HTTP per test.
    page_count_items = 45

    @pytest.fixture
    def harness(self, redmine: RedmineAdmin) -> Iterator[RedmineHarness]:
        harness = RedmineHarness(redmine, backdate=True)
        yield harness
        harness.close()


class TestRedmineContractRealClock(ConnectorContract):
    page_count_items = 12

    @pytest.fixture
    def store_url(self, tmp_path: Path) -> str:
        return f"sqlite:///{tmp_path / 'stratmap.db'}"

    @pytest.fixture
    def harness(self, redmine: RedmineAdmin) -> Iterator[RedmineHarness]:
        harness = RealClockHarness(redmine)
        # Five a page: issues created within one second fill whole pages, which steps the
        # key paging through a single second by position.
        harness.page_size = 5
        yield harness
        harness.close()

    # Redmine's stamps are whole seconds and the seeded issues were written seconds
    # before the first sync: a second of overlap keeps the second run's window honest.
    overlap = timedelta(seconds=1)
