"""The shared connector contract (tests/contract/suite.py), for Jira Cloud and Data Center.

The harness seeds the local Jira (tests/fakes/jira_server.py) and builds connectors whose
retry waits go to a fake clock, so rate limits cost no real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest

from stratmap.connectors.base import Connector
from tests.contract.suite import ConnectorContract, SeedItem
from tests.fakes.jira_server import FakeClock, FakeJira, connector_for


class JiraHarness:
    """The contract's :class:`~tests.contract.suite.Harness` over a :class:`FakeJira`."""

    http = True

    def __init__(self, fake: FakeJira) -> None:
        self.fake = fake
        self.clock = FakeClock()

    def seed(self, items: list[SeedItem]) -> None:
        for item in items:
            first = item.history[0][2] if item.history else item.status
            self.fake.add_issue(
                item.key,
                summary=item.title,
                status=first,
                created=item.created,
                assignee=item.assignee,
            )
            events = [(at, 0, author, to) for at, author, _, to in item.history]
            events += [(at, 1, author, body) for at, author, body in item.comments]
            for at, kind, author, text in sorted(events):
                if kind == 0:
                    self.fake.transition(item.key, text, at=at, author=author)
                else:
                    self.fake.add_comment(item.key, text, at=at, author=author)

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> None:
        self.fake.transition(key, to, at=at, author=author)

    def connector(self) -> Connector:
        connector: Connector = connector_for(self.fake, clock=self.clock, scope="project = ITEM")
        return connector

    def key_of(self, key: str) -> str:
        return key

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        self.fake.inject("*", status=status, times=times, retry_after=retry_after)


@pytest.fixture(autouse=True)
def _library_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"jira.resilientsession slept {seconds}s")

    monkeypatch.setattr("jira.resilientsession.time.sleep", refuse)


class TestJiraCloudContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> Iterator[JiraHarness]:
        with FakeJira(deployment="cloud") as fake:
            yield JiraHarness(fake)


class TestJiraDataCenterContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> Iterator[JiraHarness]:
        with FakeJira(deployment="datacenter") as fake:
            yield JiraHarness(fake)
