"""The Redmine connector's wire, offline: replays of a real Redmine's answers (respx) and a
small fake with Redmine's listing semantics. The same connector runs against the real
server in ``tests/redmine/``."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import respx

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    RateLimited,
    RetriableError,
    Window,
)
from stratmap.connectors.redmine import RedmineConnector, format_since
from stratmap.connectors.registry import build_connector
from stratmap.models.plan import RedmineSource
from stratmap.models.records import Page, StatusCategory
from tests.fakes.redmine_api import URL, FakeIssue, FakeRedmine, Replay

T = datetime(2026, 9, 1, 9, 0, tzinfo=UTC)
KEY = "0123456789abcdef0123456789abcdef01234567"


def connector(transport: httpx.BaseTransport | None = None, *, project: str | None = "ops",
              token: str | None = KEY, sleeps: list[float] | None = None,
              **config: object) -> RedmineConnector:
    source = RedmineSource(kind="redmine", url=config.pop("url", URL), project=project,
                           **config)  # type: ignore[arg-type]
    waits = sleeps if sleeps is not None else []
    return RedmineConnector("ops", source, token=token, transport=transport,
                            sleep=waits.append, rng=random.Random(7))


def fetch(source: RedmineConnector, since: datetime | None = None) -> list[Page]:
    with source:
        return list(source.fetch(Window(since=since, until=T + timedelta(days=365))))


@pytest.fixture
def fake() -> FakeRedmine:
    return FakeRedmine()


def fake_connector(fake: FakeRedmine, **config: object) -> RedmineConnector:
    return connector(httpx.MockTransport(fake), **config)


# -- replays of the real server ------------------------------------------------------------

@pytest.fixture
def replay_full() -> Iterator[Replay]:
    replay = Replay("full_sync")
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.route().mock(side_effect=replay)
        yield replay


def test_a_full_sync_sends_what_the_real_server_was_sent(replay_full: Replay) -> None:
    project = replay_full.data["project"]
    fetch(connector(project=project, page_size=2, concurrency=1))
    assert replay_full.sent() == replay_full.recorded()
    first_list = replay_full.sent()[3][2]
    assert first_list == {"status_id": "*", "sort": "updated_on,id", "limit": "2",
                          "offset": "0", "project_id": project}
    assert all(r.headers["X-Redmine-API-Key"] == KEY for r in replay_full.requests)


def test_a_full_sync_normalizes_the_real_payloads(replay_full: Replay) -> None:
    pages = fetch(connector(project=replay_full.data["project"], page_size=2, concurrency=1))
    assert [len(p.items) for p in pages] == [2, 1]
    items = {i.key: i for p in pages for i in p.items}
    shipped = items["ops#1"]
    assert (shipped.status, shipped.status_category) == ("Closed", StatusCategory.DONE)
    assert (shipped.container, shipped.item_type, shipped.assignee) == ("v1", "Bug", "dev1")
    assert shipped.resolved == T + timedelta(days=2)
    assert shipped.url == f"{URL}/issues/1"
    assert items["ops#2"].container is None
    assert items["ops#3"].item_type == "Support"
    changes = [c for p in pages for c in p.changes if c.item_key == "ops#1"]
    assert [(c.from_status, c.to_status, c.to_category, c.author) for c in changes] == [
        ("New", "In Progress", StatusCategory.IN_PROGRESS, "dev1"),
        ("In Progress", "Closed", StatusCategory.DONE, "lead"),
    ]
    assert changes[0].from_category is StatusCategory.TODO
    assert [c.at for c in changes] == [T + timedelta(days=1), T + timedelta(days=2)]
    comments = {(c.item_key, c.author, c.body) for p in pages for c in p.comments}
    assert comments == {("ops#1", "dev1", "started"),
                        ("ops#3", "lead", "what is the plan here?")}
    accounts = {a.account_id: (a.display_name, a.email) for p in pages for a in p.accounts}
    assert accounts["dev1"] == ("Dev1 Tester", "dev1@stratmap.test")
    assert pages[0].cursor == datetime.fromisoformat(
        replay_full.data["exchanges"][3]["json"]["issues"][-1]["updated_on"])
    assert pages[0].requests == 9  # site (3), list, 2 journals, 3 users
    assert pages[0].raw[0].endpoint == f"{URL}/issues/1.json?include=journals"


def test_users_own_api_keys_are_never_kept(replay_full: Replay) -> None:
    pages = fetch(connector(project=replay_full.data["project"], page_size=2, concurrency=1))
    text = json.dumps([p.model_dump(mode="json") for p in pages])
    assert "SCRUBBED-USER-API-KEY" not in text and KEY not in text


def test_an_incremental_sync_sends_the_window_as_redmine_reads_it() -> None:
    replay = Replay("incremental_sync")
    since = datetime.fromisoformat(replay.data["since"])
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.route().mock(side_effect=replay)
        fetch(connector(project=replay.data["project"], page_size=2, concurrency=1), since)
    assert replay.sent() == replay.recorded()
    lists = [params for _m, path, params in replay.sent() if path == "/issues.json"]
    assert lists[0]["updated_on"] == ">=" + since.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_saved_query_resolves_through_its_id() -> None:
    replay = Replay("resolve_query")
    with respx.mock(base_url=URL, assert_all_called=False) as router:
        router.route().mock(side_effect=replay)
        with connector(project=replay.data["project"], page_size=2) as source:
            keys = source.resolve({"query": str(replay.data["query"])})
    assert keys == frozenset(replay.data["keys"])
    (_method, _path, params), *_ = replay.sent()
    assert params["query_id"] == str(replay.data["query"]) and params["status_id"] == "*"


@pytest.mark.parametrize(("moment", "text"), [
    (datetime(2026, 9, 1, 9, 0, 5, 999999, tzinfo=UTC), "2026-09-01T09:00:05Z"),
    (datetime(2026, 9, 1, 11, 0, tzinfo=timezone(timedelta(hours=2))), "2026-09-01T09:00:00Z"),
])
def test_the_window_is_whole_seconds_in_utc_with_z(moment: datetime, text: str) -> None:
    # Redmine answers 422 "Updated is invalid" to fractions and to +00:00.
    assert format_since(moment) == text


# -- paging --------------------------------------------------------------------------------

def test_pages_follow_updated_on_and_read_each_issue_once(fake: FakeRedmine) -> None:
    for n in range(1, 8):
        fake.issues[n] = FakeIssue(n, updated=T + timedelta(hours=n))
    pages = fetch(fake_connector(fake, page_size=3), T)
    assert [i.key for p in pages for i in p.items] == [f"ops#{n}" for n in range(1, 8)]
    # Each request starts at the last stamp read: that issue is listed again (and dropped),
    # since others may share its second.
    stamps = [params.get("updated_on") for params in fake.lists()]
    assert stamps == [">=2026-09-01T09:00:00Z", ">=2026-09-01T12:00:00Z",
                      ">=2026-09-01T14:00:00Z", ">=2026-09-01T16:00:00Z"]
    assert {params["offset"] for params in fake.lists()} == {"0"}
    assert all(p["status_id"] == "*" and p["sort"] == "updated_on,id" for p in fake.lists())


def test_closed_issues_are_listed_too(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T, status_id=5)
    (page,) = fetch(fake_connector(fake))
    assert page.items[0].status_category is StatusCategory.DONE


def test_issues_sharing_one_second_are_stepped_through_by_offset(fake: FakeRedmine) -> None:
    for n in range(1, 8):  # seven issues in one second, microseconds apart
        fake.issues[n] = FakeIssue(n, updated=T + timedelta(microseconds=n))
    fake.issues[8] = FakeIssue(8, updated=T + timedelta(seconds=5))
    pages = fetch(fake_connector(fake, page_size=3))
    assert sorted(i.key for p in pages for i in p.items) == sorted(f"ops#{n}"
                                                                   for n in range(1, 9))
    assert sum(len(p.items) for p in pages) == 8
    assert [(p.get("updated_on"), p["offset"]) for p in fake.lists()] == [
        (None, "0"), (">=2026-09-01T09:00:00Z", "0"), (">=2026-09-01T09:00:00Z", "3"),
        (">=2026-09-01T09:00:00Z", "6")]


def test_the_second_before_the_filter_is_not_read_twice(fake: FakeRedmine) -> None:
    # Redmine reads >=T as > T - 1s: issues of the second before T come back again.
    fake.issues[1] = FakeIssue(1, updated=T + timedelta(microseconds=500))
    fake.issues[2] = FakeIssue(2, updated=T + timedelta(seconds=1, microseconds=1))
    fake.issues[3] = FakeIssue(3, updated=T + timedelta(seconds=1, microseconds=2))
    fake.issues[4] = FakeIssue(4, updated=T + timedelta(seconds=2))
    pages = fetch(fake_connector(fake, page_size=2))
    assert [i.key for p in pages for i in p.items] == ["ops#1", "ops#2", "ops#3", "ops#4"]


def test_an_issue_updated_while_paging_skips_no_other(fake: FakeRedmine) -> None:
    """Offset paging would skip issue 3 here: issue 1 moves to the end after page one."""
    for n in range(1, 6):
        fake.issues[n] = FakeIssue(n, updated=T + timedelta(hours=n))

    def edit(number: int) -> None:
        if number == 1:
            fake.issues[1].updated = T + timedelta(days=1)
            fake.issues[1].status_id = 2

    fake.before_list = edit
    pages = fetch(fake_connector(fake, page_size=2))
    read = [i.key for p in pages for i in p.items]
    assert set(read) == {f"ops#{n}" for n in range(1, 6)}
    assert read.count("ops#1") == 2  # and its new version is read as well
    assert read[-1] == "ops#1" and pages[-1].items[-1].status == "In Progress"


def test_a_page_cursor_is_the_listing_s_highest_stamp(fake: FakeRedmine) -> None:
    for n in range(1, 5):
        fake.issues[n] = FakeIssue(n, updated=T + timedelta(hours=n))
    pages = fetch(fake_connector(fake, page_size=3))
    assert [p.cursor for p in pages] == [T + timedelta(hours=3), T + timedelta(hours=4)]


# -- statuses, people ------------------------------------------------------------------

@pytest.mark.parametrize(("status_id", "category"), [
    (1, StatusCategory.TODO), (2, StatusCategory.IN_PROGRESS),
    (3, StatusCategory.IN_PROGRESS),  # Resolved is not a closed status in Redmine
    (4, StatusCategory.TODO),  # Feedback: the default status of the Support tracker below
    (5, StatusCategory.DONE), (6, StatusCategory.DONE),
])
def test_categories_follow_closedness_and_default_statuses(
        fake: FakeRedmine, status_id: int, category: StatusCategory) -> None:
    fake.trackers.append({"id": 3, "name": "Support",
                          "default_status": {"id": 4, "name": "Feedback"}})
    fake.issues[1] = FakeIssue(1, updated=T, status_id=status_id)
    (page,) = fetch(fake_connector(fake))
    assert page.items[0].status_category is category


def test_a_status_unknown_to_the_site_is_flagged(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T, journals=[{
        "id": 9, "user": {"id": 1, "name": "Redmine Admin"}, "notes": "",
        "created_on": "2026-09-01T09:00:00Z", "private_notes": False,
        "details": [{"property": "attr", "name": "status_id", "old_value": "1",
                     "new_value": "77"}]}])
    (page,) = fetch(fake_connector(fake))
    assert page.changes[0].to_status == "status 77"
    assert page.items[0].flags == ("unknown status id 77",)


def test_an_administrator_key_matches_people_by_login(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T, extra={"assigned_to": {"id": 7, "name": "Al"}})
    (page,) = fetch(fake_connector(fake))
    assert page.items[0].assignee == "user7"
    assert page.items[0].reporter == "user1"
    assert {a.account_id: a.email for a in page.accounts}["user7"] == "user7@example.test"
    assert "MUST-NOT-BE-STORED" not in page.model_dump_json()


def test_any_other_key_matches_people_by_id_without_asking(fake: FakeRedmine) -> None:
    fake.admin = False
    fake.issues[1] = FakeIssue(1, updated=T, extra={"assigned_to": {"id": 7, "name": "Al"}})
    (page,) = fetch(fake_connector(fake))
    assert page.items[0].assignee == "7"
    assert {a.account_id: a.display_name for a in page.accounts} == {"7": "Al",
                                                                     "1": "Redmine Admin"}
    assert not [r for r in fake.requests if r.url.path.startswith("/users/")
                and r.url.path != "/users/current.json"]


def test_without_a_token_no_key_is_sent(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T)
    fetch(fake_connector(fake, token=None))
    assert all("X-Redmine-API-Key" not in r.headers for r in fake.requests)
    assert "/users/current.json" not in [r.url.path for r in fake.requests]


def test_an_issue_deleted_between_list_and_journals_is_left_out(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T)
    fake.issues[2] = FakeIssue(2, updated=T + timedelta(hours=1))
    fake.fail("/issues/1.json", httpx.Response(404))
    (page,) = fetch(fake_connector(fake))
    assert [i.key for i in page.items] == ["ops#2"]
    assert page.cursor == T + timedelta(hours=1)


# -- errors ------------------------------------------------------------------------------

def test_server_errors_and_timeouts_are_retried(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T)
    fake.fail("/issues.json", httpx.Response(503), httpx.ReadTimeout("slow"),
              httpx.Response(502))
    sleeps: list[float] = []
    (page,) = fetch(fake_connector(fake, sleeps=sleeps))
    assert len(page.items) == 1
    assert len(sleeps) == 3
    assert page.requests == 3 + 4 + 1 + 1  # site, list (3 failed), journals, one user


def test_a_rate_limit_waits_at_least_retry_after(fake: FakeRedmine) -> None:
    fake.issues[1] = FakeIssue(1, updated=T)
    fake.fail("/issues.json", httpx.Response(429, headers={"Retry-After": "7"}))
    sleeps: list[float] = []
    fetch(fake_connector(fake, sleeps=sleeps))
    assert sleeps and sleeps[0] >= 7


def test_a_server_that_stays_down_gives_up_naming_the_source(fake: FakeRedmine) -> None:
    fake.fail("/users/current.json", *[httpx.Response(503)] * 6)
    with pytest.raises(RetriableError) as raised:
        fetch(fake_connector(fake))
    assert "source 'ops'" in str(raised.value) and "gave up after 6 attempts" in str(raised.value)


def test_a_lasting_rate_limit_stays_a_rate_limit(fake: FakeRedmine) -> None:
    fake.fail("/users/current.json", *[httpx.Response(429, headers={"Retry-After": "1"})] * 6)
    with pytest.raises(RateLimited):
        fetch(fake_connector(fake))


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_are_not_retried(fake: FakeRedmine, status: int) -> None:
    fake.fail("/users/current.json", httpx.Response(status))
    with pytest.raises(AuthError) as raised:
        fetch(fake_connector(fake))
    assert len(fake.requests) == 1
    assert "source 'ops'" in str(raised.value) and "API key" in str(raised.value)
    assert KEY not in str(raised.value)


def test_an_unknown_project_names_the_project(fake: FakeRedmine) -> None:
    fake.fail("/issues.json", httpx.Response(404))
    with pytest.raises(FatalSourceError) as raised:
        fetch(fake_connector(fake, project="nope"))
    assert "'nope'" in str(raised.value)


def test_redmine_s_own_error_text_is_shown(fake: FakeRedmine) -> None:
    fake.fail("/issues.json", httpx.Response(422, json={"errors": ["Updated is invalid"]}))
    with pytest.raises(FatalSourceError) as raised:
        fetch(fake_connector(fake))
    assert "Updated is invalid" in str(raised.value)


def test_a_page_that_is_not_json_points_at_the_url(fake: FakeRedmine) -> None:
    fake.fail("/users/current.json", httpx.Response(200, html="<html>login</html>"))
    with pytest.raises(FatalSourceError) as raised:
        fetch(fake_connector(fake))
    assert "did not answer JSON" in str(raised.value) and "url" in str(raised.value)


def test_an_unknown_saved_query_is_named(fake: FakeRedmine) -> None:
    fake.fail("/issues.json", httpx.Response(404))
    with fake_connector(fake) as source, pytest.raises(FatalSourceError) as raised:
        source.resolve({"query": "42"})
    assert "saved query 42" in str(raised.value)


def test_resolve_pages_by_offset_and_answers_none_for_local_selectors(
        fake: FakeRedmine) -> None:
    for n in range(1, 6):
        fake.issues[n] = FakeIssue(n, updated=T, status_id=5 if n % 2 else 1)
    with fake_connector(fake, page_size=2) as source:
        assert source.resolve({"query": "3"}) == {f"ops#{n}" for n in range(1, 6)}
        assert source.resolve({"version": "v1"}) is None
        assert source.resolve({"tracker": "Bug"}) is None
    assert [p["offset"] for p in fake.lists()] == ["0", "2", "4"]
    assert all(p["query_id"] == "3" and p["status_id"] == "*" for p in fake.lists())


def test_reconcile_lists_every_key_in_scope_by_id(fake: FakeRedmine) -> None:
    for n in range(1, 6):
        fake.issues[n] = FakeIssue(n, updated=T, status_id=5 if n % 2 else 1)

    def delete(number: int) -> None:  # offsets would now hide issue 3
        if number == 1:
            del fake.issues[1]

    fake.before_list = delete
    with fake_connector(fake, page_size=2) as source:
        assert source.reconcile() == {f"ops#{n}" for n in range(1, 6)}
    assert [(p.get("issue_id"), p["offset"]) for p in fake.lists()] == [
        (None, "0"), (">=3", "0"), (">=5", "0")]


# -- the registry ----------------------------------------------------------------------

def test_the_registry_builds_it_with_the_key_from_the_environment(
        fake: FakeRedmine, tmp_path: Path) -> None:
    source = RedmineSource(kind="redmine", url=URL, token="env:REDMINE_API_KEY")
    built = build_connector("ops", source, plan_dir=tmp_path,
                            secret=lambda name, ref: KEY if ref == "env:REDMINE_API_KEY" else "")
    assert isinstance(built, RedmineConnector)
    built.close()
    anonymous = build_connector("ops", RedmineSource(kind="redmine", url=URL),
                                plan_dir=tmp_path, secret=lambda *_: pytest.fail("no token"))
    assert isinstance(anonymous, RedmineConnector)
    anonymous.close()
