"""The Jira connector when the site misbehaves: rate limits, 5xx, auth, broken bodies.

Waits go to a :class:`FakeClock`, so a ``Retry-After: 30`` costs no real time; the
library's own (blind) retry sleep is made to fail the test if it is ever reached.
"""

from __future__ import annotations

import email.utils
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    RateLimited,
    RetriableError,
    SourceError,
    Window,
)
from stratmap.connectors.jira import JiraConnector
from stratmap.models.records import Page
from tests.conftest import Connect
from tests.fakes.jira_server import FakeClock, FakeJira

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SEARCH = {"cloud": "/rest/api/3/search/jql", "datacenter": "/rest/api/2/search"}


@pytest.fixture(autouse=True)
def _library_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(seconds: float) -> None:
        raise AssertionError(f"jira.resilientsession slept {seconds}s")

    monkeypatch.setattr("jira.resilientsession.time.sleep", refuse)


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    with FakeJira(deployment=request.param) as fake:
        fake.seed(12)
        yield fake




def fetch(connector: JiraConnector) -> list[Page]:
    return list(connector.fetch(Window(since=None, until=NOW)))


def count_items(pages: list[Page]) -> int:
    return sum(len(p.items) for p in pages)


# -- rate limits -------------------------------------------------------------------------------


def test_429_waits_at_least_retry_after_seconds(site: FakeJira, connect: Connect) -> None:
    clock = FakeClock()
    site.inject(SEARCH[site.deployment], status=429, retry_after="30")
    pages = fetch(connect(site, clock=clock))

    assert count_items(pages) == 12
    assert len(clock.waits) == 1
    assert clock.waits[0] >= 30
    statuses = [r.status for r in site.calls(SEARCH[site.deployment])]
    assert statuses == [429, 200]
    assert pages[0].requests == 5  # the refused attempt counts


def test_429_with_an_http_date_is_never_retried_sooner(site: FakeJira, connect: Connect) -> None:
    clock = FakeClock()
    not_before = (datetime.now(UTC) + timedelta(seconds=42)).replace(microsecond=0)
    site.inject(
        "/rest/api/2/status",
        status=429,
        retry_after=email.utils.format_datetime(not_before, usegmt=True),
    )
    assert count_items(fetch(connect(site, clock=clock))) == 12

    # The status request met the 429; the field list, asked beside it, waits too if it
    # comes after. Every wait honours the date.
    assert clock.waits and len(clock.waits) == len(clock.wall)
    for asked_at, wait in zip(clock.wall, clock.waits, strict=True):
        assert asked_at + timedelta(seconds=wait) >= not_before
        assert wait <= 43


def test_429_without_retry_after_still_backs_off(site: FakeJira, connect: Connect) -> None:
    clock = FakeClock()
    site.inject(SEARCH[site.deployment], status=429)
    assert count_items(fetch(connect(site, clock=clock))) == 12
    assert clock.waits[0] >= 5  # connectors.base's default when Jira gives no hint


def test_persistent_429_gives_up_as_rate_limited(site: FakeJira, connect: Connect) -> None:
    clock = FakeClock()
    site.inject("/rest/api/2/status", status=429, retry_after="3", times=None)
    with pytest.raises(RateLimited) as caught:
        fetch(connect(site, clock=clock))
    assert caught.value.source == "jira"
    assert caught.value.retry_after == 3
    assert len(site.calls("/rest/api/2/status")) == 6
    assert all(wait >= 3 for wait in clock.waits)


def test_concurrent_dc_pages_back_off_together(connect: Connect) -> None:
    clock = FakeClock()
    with FakeJira(deployment="datacenter") as dc:
        dc.seed(250)
        dc.inject(
            "/rest/api/2/search",
            status=429,
            retry_after="20",
            when=lambda r: isinstance(r.body, dict) and r.body.get("startAt") == 100,
        )
        pages = fetch(connect(dc, clock=clock, page_size=50, concurrency=4))
        assert count_items(pages) == 250
        assert [i.key for p in pages for i in p.items] == [f"WEB-{n}" for n in range(1, 251)]
        assert max(clock.waits) >= 20
        retried = [r for r in dc.calls("/rest/api/2/search") if r.body.get("startAt") == 100]
        assert [r.status for r in retried] == [429, 200]


# -- transient failures ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_5xx_is_retried(site: FakeJira, connect: Connect, status: int) -> None:
    clock = FakeClock()
    site.inject(SEARCH[site.deployment], status=status, times=2)
    assert count_items(fetch(connect(site, clock=clock))) == 12
    assert len(clock.waits) == 2
    assert [r.status for r in site.calls(SEARCH[site.deployment])] == [status, status, 200]


def test_persistent_503_ends_in_a_source_error_naming_the_source(
    site: FakeJira, connect: Connect
) -> None:
    clock = FakeClock()
    site.inject(SEARCH[site.deployment], status=503, times=None)
    with pytest.raises(RetriableError) as caught:
        fetch(connect(site, clock=clock, name="northwind"))
    error = caught.value
    assert isinstance(error, SourceError)
    assert str(error).startswith("source 'northwind': gave up after 6 attempts")
    assert "HTTP 503" in str(error)
    assert len(site.calls(SEARCH[site.deployment])) == 6
    assert len(clock.waits) == 5
    assert all(0.25 <= wait <= 60 for wait in clock.waits)


@pytest.mark.parametrize("action", ["truncate", "cut", "reset"])
def test_broken_responses_are_retried(site: FakeJira, connect: Connect, action: Any) -> None:
    site.inject(SEARCH[site.deployment], action=action)
    pages = fetch(connect(site))
    assert count_items(pages) == 12


def test_truncated_changelog_pages_are_retried(connect: Connect) -> None:
    with FakeJira(deployment="datacenter", changelog_cap=2) as dc:
        dc.seed(1)
        for n in range(7):
            dc.transition("WEB-1", ["In Progress", "To Do"][n % 2], at=NOW + timedelta(hours=n))
        dc.inject(
            "/rest/api/2/issue/WEB-1/changelog",
            action="truncate",
            when=lambda r: r.params.get("startAt") == "2",
        )
        (page,) = fetch(connect(dc))
        assert len(page.changes) == 7


def test_a_read_timeout_is_retried(site: FakeJira, connect: Connect) -> None:
    site.inject(SEARCH[site.deployment], delay=0.6)
    pages = fetch(connect(site, timeout=0.15))
    assert count_items(pages) == 12
    assert len(site.calls(SEARCH[site.deployment])) == 2


def test_an_issue_deleted_mid_sync_is_kept_and_flagged(connect: Connect) -> None:
    with FakeJira(deployment="datacenter") as dc:
        dc.seed(2)
        for n in range(7):
            dc.transition("WEB-2", ["In Progress", "To Do"][n % 2], at=NOW + timedelta(hours=n))

        def delete_after_search(request: Any) -> None:
            if request.path.endswith("/changelog"):
                dc.issues.pop("WEB-2", None)

        dc.on_request(delete_after_search)
        (page,) = fetch(connect(dc))
        item = next(i for i in page.items if i.key == "WEB-2")
        assert "history_incomplete" in item.flags
        assert len(page.changes) == 5  # what the search embedded


# -- fatal -------------------------------------------------------------------------------------


def test_401_is_an_auth_error_naming_the_source(site: FakeJira, connect: Connect) -> None:
    clock = FakeClock()
    connector = connect(site, clock=clock, name="northwind")
    site.token = "rotated-elsewhere"
    with pytest.raises(AuthError) as caught:
        fetch(connector)
    message = str(caught.value)
    assert message.startswith(
        "source 'northwind': GET /rest/api/2/serverInfo was refused (HTTP 401)"
    )
    for what in ("token", "e-mail", "Cloud", "Data Center"):
        assert what in caught.value.hint
    assert len(site.requests) == 1  # never retried
    assert clock.waits == []


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried_anywhere(
    site: FakeJira, connect: Connect, status: int
) -> None:
    site.inject("/rest/api/*/field", status=status)
    with pytest.raises(AuthError):
        fetch(connect(site))
    assert len(site.calls("/rest/api/*/field")) == 1


def test_the_token_is_never_logged_or_shown(
    site: FakeJira, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site.inject(SEARCH[site.deployment], status=503)
    connector = connect(site)
    fetch(connector)
    site.token = "another"
    with pytest.raises(AuthError) as caught:
        fetch(connector)
    real = "s3cret-token"
    assert real not in caplog.text
    assert real not in str(caught.value)
    assert caught.value.__cause__ is None  # the library's error (with headers) is not chained
    assert real not in repr(connector.__dict__)


def test_a_wrong_url_is_fatal_with_a_hint(site: FakeJira, connect: Connect) -> None:
    connector = connect(site, url=site.url + "/jira")
    with pytest.raises(FatalSourceError) as caught:
        fetch(connector)
    assert not isinstance(caught.value, AuthError | RetriableError)
    assert "HTTP 404" in str(caught.value)
    assert "check url" in caught.value.hint
    assert len(site.requests) == 1


def test_a_context_path_is_kept(connect: Connect) -> None:
    with FakeJira(deployment="datacenter", context_path="/jira") as dc:
        dc.seed(3)
        assert dc.url.endswith("/jira")
        assert count_items(fetch(connect(dc))) == 3
        with pytest.raises(FatalSourceError, match="HTTP 404"):
            fetch(connect(dc, url=dc.url.removesuffix("/jira")))


def test_bad_scope_jql_is_fatal_with_jiras_message(site: FakeJira, connect: Connect) -> None:
    with pytest.raises(FatalSourceError) as caught:
        fetch(connect(site, scope="flavour = vanilla"))
    assert "Field 'flavour' does not exist" in str(caught.value)
    assert len(site.calls(SEARCH[site.deployment])) == 1


def test_a_missing_token_is_refused_at_once(site: FakeJira) -> None:
    with pytest.raises(AuthError, match="no token"):
        JiraConnector("jira", site.source_config(), token="")
