"""The GitHub Issues connector: the shared contract, and the wire it speaks."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from stratmap.connectors.base import AuthError, FatalSourceError, RateLimited, RetryPolicy, Window
from stratmap.connectors.github import GithubConnector
from stratmap.connectors.registry import build_connector
from stratmap.models.plan import GithubSource
from stratmap.models.records import Page, StatusCategory
from tests.contract.suite import T0, ConnectorContract, SeedItem, make_items
from tests.fakes.github_api import (
    API,
    REPO,
    FakeGithub,
    activated,
    comment,
    event,
    issue,
    milestone,
)

UNTIL = T0 + timedelta(days=60)
EVERYTHING = Window(since=None, until=UNTIL)


class TestGithubContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> Iterator[FakeGithub]:
        yield from activated(FakeGithub(page_size=50))


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    yield from activated(FakeGithub(page_size=100))


def fetch(fake: FakeGithub, window: Window = EVERYTHING) -> list[Page]:
    connector = fake.connector()
    try:
        return list(connector.fetch(window))
    finally:
        connector.close()


# -- the wire ---------------------------------------------------------------------------

def test_the_issue_list_asks_for_every_state_by_updated_ascending_since_the_window(
        github: FakeGithub) -> None:
    github.seed(make_items(5))
    since = datetime(2026, 9, 1, 12, 30, 15, 999_000, tzinfo=UTC)
    fetch(github, Window(since=since, until=UNTIL))
    first = github.calls("issues")[0]
    assert str(first.url).startswith(f"{API}/repos/{REPO}/issues?")
    assert dict(first.url.params) == {
        "state": "all", "sort": "updated", "direction": "asc", "per_page": "100",
        "since": "2026-09-01T12:30:15Z",  # floored to the second: never starts late
    }
    assert first.headers["accept"] == "application/vnd.github+json"
    assert first.headers["x-github-api-version"] == "2022-11-28"
    assert "authorization" not in first.headers  # public repositories need no token


def test_a_first_sync_sends_no_since(github: FakeGithub) -> None:
    github.seed(make_items(3))
    fetch(github)
    assert "since" not in github.calls("issues")[0].url.params


def test_the_token_goes_as_a_bearer() -> None:
    fake = FakeGithub(token="ghp_secret")
    with fake.router:
        fake.seed(make_items(2))
        pages = fetch(fake)
    assert sum(len(p.items) for p in pages) == 2
    assert {r.headers["authorization"] for r in fake.requests} == {"Bearer ghp_secret"}


def test_pull_requests_are_dropped_and_never_read_further(github: FakeGithub) -> None:
    github.add(issue(1, title="a bug", created=T0, updated=T0))
    github.add(issue(2, title="a fix", created=T0, updated=T0, pull_request=True))
    pages = fetch(github)
    assert [i.key for p in pages for i in p.items] == ["site#1"]
    assert [r.url.path for r in github.calls("timeline")] == [
        f"/repos/{REPO}/issues/1/timeline"]


def test_pages_follow_the_link_header_as_given() -> None:
    """Inside one second, only the offset link moves on; GitHub's link names the
    repository by id (``/repositories/1000/...``), and is followed verbatim."""
    fake = FakeGithub(page_size=10)
    with fake.router:
        for n in range(1, 26):  # a bulk edit: 25 issues updated in the same second
            fake.add(issue(n, title=f"bulk {n}", created=T0, updated=T0 + timedelta(days=1)))
        pages = fetch(fake)
    listed = fake.calls("issues")
    # The first page moves the window to its own second; that page cannot move it
    # further, so the offset links of that query carry on.
    assert [r.url.params.get("since") for r in listed] == [None] + ["2026-09-02T08:59:59Z"] * 3
    assert [r.url.params.get("page") for r in listed] == [None, None, "2", "3"]
    assert listed[2].url.path == "/repositories/1000/issues"
    assert listed[2].url.params["per_page"] == "10"
    assert sorted(i.key for p in pages for i in p.items) == sorted(f"site#{n}" for n in
                                                                   range(1, 26))


def test_pages_move_the_window_by_updated_not_by_offset() -> None:
    """Offset paging over a list sorted by updated skips an item whenever one is updated
    mid-sync; the sweep re-asks from the page's highest updated_at instead."""
    fake = FakeGithub(page_size=10)
    with fake.router:
        fake.seed(make_items(30))
        connector = fake.connector()
        pages = connector.fetch(EVERYTHING)
        first = next(pages)
        # Someone edits an issue of the first page while we read it.
        fake.transition("ITEM-2", at=T0 + timedelta(days=35), author="dev2", to="Done")
        rest = list(pages)
        connector.close()
    listed = fake.calls("issues")
    assert "since" not in listed[0].url.params
    assert all("page" not in r.url.params for r in listed)
    seen = [i.key for p in [first, *rest] for i in p.items]
    assert sorted(set(seen)) == sorted(fake.key_of(f"ITEM-{n}") for n in range(1, 31))
    assert seen.count("site#2") == 2  # read again at its new version, last


def test_the_timeline_is_read_page_by_page_and_becomes_history_and_comments(
        github: FakeGithub) -> None:
    at = T0 + timedelta(days=1)
    timeline = [
        event(1, "labeled", actor="bob", at=at, label={"name": "In Progress", "color": "x"}),
        event(2, "labeled", actor="bob", at=at, label={"name": "bug", "color": "x"}),
        *[comment(100 + n, 7, author="alice", at=at + timedelta(hours=n), body=f"c{n}")
          for n in range(150)],
        event(3, "closed", actor="carol", at=at + timedelta(days=9), state_reason="not_planned"),
        event(4, "reopened", actor="carol", at=at + timedelta(days=10)),
        event(5, "unlabeled", actor="bob", at=at + timedelta(days=11),
              label={"name": "In Progress", "color": "x"}),
        event(6, "closed", actor="carol", at=at + timedelta(days=12), state_reason="completed"),
    ]
    github.add(issue(7, title="t", created=T0, updated=at + timedelta(days=12), state="closed",
                     closed_at=at + timedelta(days=12), state_reason="not_planned",
                     labels=["bug"], comments=150), timeline)
    (page,) = fetch(github)
    calls = github.calls("timeline")
    assert [r.url.params.get("page") for r in calls] == [None, "2"]
    assert calls[0].url.params["per_page"] == "100"
    assert len(page.comments) == 150
    assert {c.author for c in page.comments} == {"alice"}
    steps = [(c.to_status, c.to_category, c.author) for c in page.changes]
    assert steps == [
        ("In Progress", StatusCategory.IN_PROGRESS, "bob"),
        ("closed", StatusCategory.DONE, "carol"),  # not_planned is still done
        ("In Progress", StatusCategory.IN_PROGRESS, "carol"),  # reopened, label still on
        ("open", StatusCategory.TODO, "bob"),
        ("closed", StatusCategory.DONE, "carol"),
    ]
    assert [c.change_id for c in page.changes] == ["1", "3", "4", "5", "6"]
    (item,) = page.items
    assert item.status_category is StatusCategory.DONE
    assert item.fields["state_reason"] == "not_planned"
    assert item.flags == ()


def test_an_issue_maps_key_people_labels_milestone_and_url(github: FakeGithub) -> None:
    due = datetime(2027, 1, 15, 8, tzinfo=UTC)
    github.add(issue(42, title="Launch", created=T0, updated=T0 + timedelta(hours=1),
                     labels=["website-launch", "In progress"], assignees=["alice-s", "bob"],
                     author="carol", milestone_=milestone(3, "v2 launch", due_on=due)))
    (page,) = fetch(github)
    (item,) = page.items
    assert item.key == "site#42"
    assert item.assignee == "alice-s"
    assert item.reporter == "carol"
    assert item.labels == ("website-launch", "In progress")
    assert (item.status, item.status_category) == ("In progress", StatusCategory.IN_PROGRESS)
    assert item.container == "v2 launch"
    assert item.fields["milestone_due"] == "2027-01-15T08:00:00Z"
    assert item.url == f"https://github.com/{REPO}/issues/42"
    assert item.created == T0 and item.updated == T0 + timedelta(hours=1)
    # The label was there from the start without an event: flagged, not invented.
    assert item.flags == ("the timeline does not end in the current status",)
    assert {a.account_id for a in page.accounts} == {"alice-s", "bob", "carol"}
    (raw,) = page.raw
    assert raw.endpoint.startswith(f"{API}/repos/{REPO}/issues?")
    assert raw.payload["issue"]["number"] == 42 and raw.payload["timeline"] == []


def test_without_in_progress_labels_only_open_and_closed_exist() -> None:
    connector = GithubConnector("site", GithubSource(kind="github", repo=REPO))
    labeled = event(1, "labeled", actor="bob", at=T0, label={"name": "in progress",
                                                           "color": "x"})
    closed = event(2, "closed", actor="bob", at=T0 + timedelta(days=1))
    changes, _, _ = connector.history("site#1", [labeled, closed])
    assert [(c.from_status, c.to_status) for c in changes] == [("open", "closed")]
    item = connector.item(issue(1, title="", created=T0, updated=T0, labels=["in progress"]))
    assert item.status_category is StatusCategory.TODO


def test_requests_are_counted_per_page(github: FakeGithub) -> None:
    github.seed(make_items(3))
    github.fail_next(502)
    (page,) = fetch(github)
    # the failed try, the list, three timelines, the milestones' due dates (once per sync;
    # no issue is blocked, so no dependencies are asked for)
    assert page.requests == 1 + 1 + 3 + 1
    assert page.cursor == max(i.updated for i in page.items)


# -- errors and rate limits ---------------------------------------------------------------

def test_a_spent_primary_rate_limit_waits_until_the_reset(github: FakeGithub) -> None:
    github.seed(make_items(2))
    github.fail_primary_rate_limit(reset_in=600)
    fetch(github)
    assert len(github.sleeps) == 1 and github.sleeps[0] >= 600


def test_an_answer_that_spends_the_budget_holds_the_next_request_until_the_reset(
        github: FakeGithub) -> None:
    """The answer that leaves ``x-ratelimit-remaining: 0`` is heeded at once: the next
    request waits for the reset instead of being refused first."""
    github.seed(make_items(4))
    github.limit_budget(2, reset_in=900)
    pages = fetch(github)
    assert github.refused == 0  # never asked while the budget was spent
    assert len(github.sleeps) == 1 and 890 <= github.sleeps[0] <= 900
    assert sum(len(p.items) for p in pages) == 4


def test_a_429_with_the_limit_spent_also_waits_until_the_reset(github: FakeGithub) -> None:
    github.seed(make_items(2))
    github.fail_primary_rate_limit(reset_in=120, status=429)
    fetch(github)
    assert github.sleeps[0] >= 120


def test_retry_after_is_honoured_never_sooner(github: FakeGithub) -> None:
    github.seed(make_items(2))
    github.fail_next(403, retry_after="45")
    github.fail_next(429, retry_after="90")
    fetch(github)
    assert github.sleeps[0] >= 45 and github.sleeps[1] >= 90


def test_a_secondary_limit_without_headers_waits_a_minute(github: FakeGithub) -> None:
    github.seed(make_items(1))
    github.fail_next(403)  # the message says "secondary rate limit", no header
    fetch(github)
    assert github.sleeps[0] >= 60


def test_a_forbidden_403_is_an_auth_error_not_a_wait(github: FakeGithub) -> None:
    github.faults.append((403, {}, {"message": "Resource not accessible by integration",
                                    "documentation_url": "https://docs.github.com/rest"}))
    with pytest.raises(AuthError):
        fetch(github)
    assert github.sleeps == []


def test_refused_credentials_name_the_source_and_are_not_retried(github: FakeGithub) -> None:
    github.fail_next(401, times=5)
    with pytest.raises(AuthError) as raised:
        fetch(github)
    assert "source 'site'" in str(raised.value)
    assert "token" in str(raised.value)
    assert len(github.requests) == 1 and github.sleeps == []


def test_a_missing_repository_is_fatal_with_a_hint() -> None:
    fake = FakeGithub()
    with fake.router:
        connector = GithubConnector("site", GithubSource(kind="github", repo="northwind/nope"),
                                    sleep=fake.sleep)
        with pytest.raises(FatalSourceError) as raised:
            list(connector.fetch(EVERYTHING))
    assert "HTTP 404" in str(raised.value) and "owner/name" in str(raised.value)


def test_server_errors_give_up_after_the_policy(github: FakeGithub) -> None:
    github.fail_next(503, times=10)
    connector = GithubConnector("site", GithubSource(kind="github", repo=REPO),
                                sleep=github.sleep, policy=RetryPolicy(attempts=3),
                                rng=random.Random(1))
    with pytest.raises(Exception) as raised:
        list(connector.fetch(EVERYTHING))
    assert not isinstance(raised.value, RateLimited)
    assert len(github.requests) == 3 and len(github.sleeps) == 2


def test_a_dropped_connection_is_retried(github: FakeGithub) -> None:
    github.seed(make_items(1))
    calls = {"n": 0}
    original = github.handle

    def flaky(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 1:
            raise httpx.ConnectError("connection reset", request=request)
        return original(request)

    github.router.routes[0].side_effect = flaky
    (page,) = fetch(github)
    assert len(page.items) == 1 and len(github.sleeps) == 1


# -- wiring -------------------------------------------------------------------------------

def test_the_registry_builds_it_with_or_without_a_token(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def secret(name: str, ref: str) -> str:
        asked.append((name, ref))
        return "ghp_x"

    public = build_connector("site", GithubSource(kind="github", repo=REPO),
                             plan_dir=tmp_path, secret=secret)
    private = build_connector(
        "site", GithubSource(kind="github", repo=REPO, token="env:GITHUB_TOKEN"),
        plan_dir=tmp_path, secret=secret)
    assert isinstance(public, GithubConnector) and isinstance(private, GithubConnector)
    assert asked == [("site", "env:GITHUB_TOKEN")]
    assert private.api.headers["Authorization"] == "Bearer ghp_x"
    assert "Authorization" not in public.api.headers
    assert public.kind == "github" and public.ordered and public.resolve({"labels": ["x"]}) is None


def test_reconcile_lists_every_issue_but_no_pull_request(github: FakeGithub) -> None:
    github.seed(make_items(12))
    connector = github.connector()
    keys = connector.reconcile()
    connector.close()
    assert keys == frozenset(f"site#{n}" for n in range(1, 13))
    assert github.calls("timeline") == []


def test_a_transition_moves_the_issue_and_leaves_one_event(github: FakeGithub) -> None:
    github.seed([SeedItem(key="ITEM-1", title="x", created=T0)])
    github.transition("ITEM-1", at=T0 + timedelta(days=2), author="dev2", to="In Progress")
    github.transition("ITEM-1", at=T0 + timedelta(days=3), author="dev2", to="Done")
    github.transition("ITEM-1", at=T0 + timedelta(days=4), author="lead", to="To Do")
    (page,) = fetch(github)
    # Back to "To Do" from done is two events on GitHub: reopened (the label is still
    # on: in progress), then the label removed.
    assert [c.to_category.value for c in page.changes] == [
        "in_progress", "done", "in_progress", "todo"]
    assert page.items[0].status == "open" and page.items[0].flags == ()


def test_assignee_changes_follow_the_first_assignee_through_the_timeline(
        github: FakeGithub) -> None:
    github.seed(make_items(1))  # ITEM-1, assigned to dev1 when created
    key, t = "ITEM-1", make_items(1)[0].created
    github.assign(key, at=t + timedelta(days=1), actor="lead", add=["dev2"])  # dev1 still first
    github.assign(key, at=t + timedelta(days=2), actor="lead", remove=["dev1"])  # dev2 now
    github.assign(key, at=t + timedelta(days=3), actor="lead", remove=["dev2"])  # nobody
    (page,) = fetch(github)
    moves = [(a.at - t, a.from_account, a.to_account, a.author) for a in page.assignments]
    assert moves == [(timedelta(0), None, "dev1", "octocat"),
                     (timedelta(days=2), "dev1", "dev2", "lead"),
                     (timedelta(days=3), "dev2", None, "lead")]
    assert page.items[0].assignee is None
