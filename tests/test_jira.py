"""The Jira connector against a local Jira (tests/fakes/jira_server.py), over real HTTP.

Each test asserts the wire (endpoint, JQL, fields, page tokens) as well as the records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from jira import JIRA

from stratmap.connectors.base import Connector, FatalSourceError, Window
from stratmap.connectors.jira import JiraConnector, jql_quote
from stratmap.models.records import Evidence, Page, StatusCategory
from tests.conftest import Connect
from tests.fakes.jira_server import T0, FakeJira

NOW = datetime(2026, 6, 1, tzinfo=UTC)
FIELDS = [
    "summary",
    "status",
    "issuetype",
    "assignee",
    "reporter",
    "created",
    "updated",
    "resolutiondate",
    "duedate",
    "labels",
    "parent",
    "fixVersions",
    "comment",
    "issuelinks",
]
SEARCHES = "/rest/api/*search*"


@pytest.fixture(autouse=True)
def _library_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    """The jira library's own retry loop must stay off: it would sleep blindly."""

    def refuse(seconds: float) -> None:
        raise AssertionError(f"jira.resilientsession slept {seconds}s")

    monkeypatch.setattr("jira.resilientsession.time.sleep", refuse)


@pytest.fixture
def cloud() -> Iterator[FakeJira]:
    with FakeJira(deployment="cloud") as fake:
        yield fake


@pytest.fixture
def dc() -> Iterator[FakeJira]:
    with FakeJira(deployment="datacenter") as fake:
        yield fake


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    with FakeJira(deployment=request.param) as fake:
        yield fake




def fetch(connector: JiraConnector, since: datetime | None = None) -> list[Page]:
    return list(connector.fetch(Window(since=since, until=NOW)))


def keys(pages: list[Page]) -> list[str]:
    return [item.key for page in pages for item in page.items]


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# -- the protocol --------------------------------------------------------------------------


def test_is_a_connector(cloud: FakeJira, connect: Connect) -> None:
    connector = connect(cloud)
    assert isinstance(connector, Connector)
    assert (connector.kind, connector.name, connector.ordered) == ("jira", "jira", True)
    assert cloud.requests == []  # building a connector does no I/O


def test_builds_the_library_client_with_timeout_and_no_library_retries(
    site: FakeJira,
) -> None:
    seen: dict[str, Any] = {}

    def factory(**kwargs: Any) -> JIRA:
        seen.update(kwargs)
        return JIRA(**kwargs)

    config = site.source_config(timeout=12.5)
    with JiraConnector("jira", config, token=site.token, session_factory=factory) as connector:
        assert connector._http.client._session.max_retries == 0
    assert seen["timeout"] == 12.5
    assert seen["max_retries"] == 0
    assert seen["get_server_info"] is False
    if site.cloud:
        assert seen["basic_auth"] == (site.email, site.token)
        assert "token_auth" not in seen
    else:
        assert seen["token_auth"] == site.token
        assert "basic_auth" not in seen


# -- Cloud: the wire ---------------------------------------------------------------------------


def test_cloud_pages_search_jql_by_token_to_the_end(cloud: FakeJira, connect: Connect) -> None:
    cloud.seed(250)
    pages = fetch(connect(cloud, page_size=100))

    assert [len(p.items) for p in pages] == [100, 100, 50]
    assert keys(pages) == [f"WEB-{n}" for n in range(1, 251)]
    assert cloud.requests[0].path == "/rest/api/2/serverInfo"
    # then the field list and the statuses, asked at once
    assert sorted(r.path for r in cloud.requests[1:3]) == [
        "/rest/api/2/status", "/rest/api/3/field"]
    searches = cloud.calls(SEARCHES)
    assert {r.path for r in searches} == {"/rest/api/3/search/jql"}
    first, second, third = (r.body for r in searches)
    assert first == {
        "jql": "(project = WEB) ORDER BY updated ASC",
        "fields": [*FIELDS, "customfield_10042"],
        "expand": "changelog",
        "maxResults": 100,
    }
    assert second["nextPageToken"] == searches[0].response["nextPageToken"]
    assert third["nextPageToken"] == searches[1].response["nextPageToken"]
    assert searches[2].response["isLast"] is True
    assert sum(p.requests for p in pages) == len(cloud.requests)
    assert pages[0].requests == 4  # serverInfo, field, status, the first search page


def test_cloud_never_calls_the_removed_search(cloud: FakeJira, connect: Connect) -> None:
    cloud.seed(3)
    connector = connect(cloud)
    fetch(connector)
    connector.resolve({"jql": "labels = x"})
    connector.reconcile()
    assert not [r for r in cloud.requests if r.path.endswith("/search")]


def test_the_fake_answers_410_on_the_old_cloud_search(cloud: FakeJira) -> None:
    import requests

    auth = (cloud.email, cloud.token)
    with requests.Session() as session:
        for version in ("2", "3"):
            answer = session.get(f"{cloud.url}/rest/api/{version}/search", auth=auth)
            assert answer.status_code == 410
            assert "search/jql" in answer.json()["errorMessages"][0]
        ids_only = session.get(
            f"{cloud.url}/rest/api/3/search/jql", params={"jql": "project = WEB"}, auth=auth
        ).json()
        assert "total" not in ids_only


# -- Data Center: the wire -------------------------------------------------------------------


def test_dc_pages_search_by_offset_to_the_end(dc: FakeJira, connect: Connect) -> None:
    dc.seed(250)
    pages = fetch(connect(dc, page_size=100))

    assert keys(pages) == [f"WEB-{n}" for n in range(1, 251)]
    searches = dc.calls(SEARCHES)
    assert {r.path for r in searches} == {"/rest/api/2/search"}
    assert searches[0].body["startAt"] == 0  # the total first, then the rest concurrently
    assert sorted((r.body["startAt"], r.body["maxResults"]) for r in searches) == [
        (0, 100),
        (100, 100),
        (200, 100),
    ]
    assert searches[0].body == {
        "jql": "(project = WEB) ORDER BY updated ASC",
        "startAt": 0,
        "maxResults": 100,
        "fields": [*FIELDS, "customfield_10042", "customfield_10700"],
        "expand": ["changelog"],
    }
    assert not [r for r in dc.requests if r.path.startswith("/rest/api/3/")]
    assert {r.auth for r in dc.requests} == {"Bearer"}
    assert sum(p.requests for p in pages) == len(dc.requests)


def test_dc_follows_the_page_size_the_server_grants(connect: Connect) -> None:
    with FakeJira(deployment="datacenter", search_cap=40) as dc:
        dc.seed(130)
        pages = fetch(connect(dc, page_size=100, concurrency=3))
        assert keys(pages) == [f"WEB-{n}" for n in range(1, 131)]
        starts = sorted(r.body["startAt"] for r in dc.calls("/rest/api/2/search"))
        assert starts == [0, 40, 80, 120]


def test_dc_rereads_when_the_result_set_moves_while_paging(dc: FakeJira, connect: Connect) -> None:
    dc.seed(250)
    moved_at = T0 + timedelta(days=30)

    def move_an_early_issue(request: Any) -> None:
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == "/rest/api/2/search" and body.get("startAt") == 100:
            # WEB-5 jumps to the end: every later offset shifts, so WEB-101 is skipped.
            dc.transition("WEB-5", "In Progress", at=moved_at)

    dc.on_request(move_an_early_issue)
    pages = fetch(connect(dc, page_size=50, concurrency=1))

    assert set(keys(pages)) == {f"WEB-{n}" for n in range(1, 251)}
    latest = max(i.updated for p in pages for i in p.items if i.key == "WEB-5")
    assert latest == moved_at
    sweep = [r.body["jql"] for r in dc.calls("/rest/api/2/search") if "key in" in r.body["jql"]]
    assert sweep == ['(project = WEB) AND key in ("WEB-101") ORDER BY updated ASC']


# -- windows -------------------------------------------------------------------------------


def test_incremental_window_sends_the_epoch_ms_bound(site: FakeJira, connect: Connect) -> None:
    site.seed(20)
    since = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
    site.transition("WEB-3", "In Progress", at=since + timedelta(minutes=5))
    site.add_comment("WEB-7", "still on it", at=since)  # at the bound: included
    site.transition("WEB-9", "Done", at=since - timedelta(milliseconds=1))  # just before

    pages = fetch(connect(site), since=since)

    assert keys(pages) == ["WEB-7", "WEB-3"]
    jql = site.calls(SEARCHES)[0].body["jql"]
    assert jql == "(project = WEB) AND updated >= 1772366400123 ORDER BY updated ASC"


def test_empty_window_yields_no_pages(site: FakeJira, connect: Connect) -> None:
    site.seed(5)
    assert fetch(connect(site), since=NOW) == []
    assert f"updated >= {ms(NOW)}" in site.calls(SEARCHES)[0].body["jql"]


def test_a_double_run_returns_the_same_records(site: FakeJira, connect: Connect) -> None:
    site.seed(30)
    site.transition("WEB-2", "In Progress", at=T0 + timedelta(days=1), author="bob")
    site.add_comment("WEB-2", "looks good", at=T0 + timedelta(days=1), author="alice")
    connector = connect(site, page_size=10)
    first, second = fetch(connector), fetch(connector)
    assert [p.items for p in first] == [p.items for p in second]
    assert [p.changes for p in first] == [p.changes for p in second]
    assert [p.comments for p in first] == [p.comments for p in second]


def test_a_late_update_is_caught_by_rereading_the_overlap(
    cloud: FakeJira, connect: Connect
) -> None:
    """Cloud search is eventually consistent: re-reading ``since - overlap`` catches up."""
    cloud.seed(10, step=timedelta(hours=1))
    connector = connect(cloud)
    watermark = max(p.cursor for p in fetch(connector) if p.cursor)
    assert connector.default_overlap == timedelta(minutes=15)

    # During the next run, WEB-4 moves at 10:00 but search only shows it later; WEB-8
    # moves at 10:05 and is visible at once, so the run's watermark passes WEB-4's stamp.
    t = T0 + timedelta(days=1)
    cloud.transition("WEB-4", "In Progress", at=t, late=True)
    cloud.transition("WEB-8", "In Progress", at=t + timedelta(minutes=5))
    second = fetch(connector, since=watermark - connector.default_overlap)
    assert keys(second) == ["WEB-10", "WEB-8"]  # WEB-10 again: the overlap re-reads it
    watermark = max(p.cursor for p in second if p.cursor)
    assert watermark == t + timedelta(minutes=5)

    cloud.reveal("WEB-4")
    assert keys(fetch(connector, since=watermark)) == ["WEB-8"]  # without the overlap: lost
    caught = fetch(connector, since=watermark - connector.default_overlap)
    assert "WEB-4" in keys(caught)
    (change,) = [c for p in caught for c in p.changes if c.item_key == "WEB-4"]
    assert (change.to_status, change.at) == ("In Progress", t)


def test_default_overlap(site: FakeJira, connect: Connect) -> None:
    expected = timedelta(minutes=15) if site.cloud else timedelta(minutes=5)
    assert connect(site).default_overlap == expected
    assert connect(site, overlap="2h").default_overlap == timedelta(hours=2)


def test_a_configured_deployment_skips_server_info(site: FakeJira, connect: Connect) -> None:
    site.seed(2)
    connector = connect(site, deployment=site.deployment)
    assert connector.deployment == site.deployment
    assert len(keys(fetch(connector))) == 2
    assert not site.calls("/rest/api/2/serverInfo")


def test_server_info_is_asked_once(site: FakeJira, connect: Connect) -> None:
    site.seed(2)
    connector = connect(site)
    fetch(connector)
    fetch(connector)
    connector.reconcile()
    assert len(site.calls("/rest/api/2/serverInfo")) == 1
    assert len(site.calls("/rest/api/2/status")) == 2  # statuses: once per sync


# -- complete history ----------------------------------------------------------------------


def _walk(fake: FakeJira, key: str, steps: int) -> list[str]:
    """``steps`` status changes on ``key``, an hour apart; returns the statuses entered."""
    path = ["In Progress", "In Review", "In Progress", "In Review", "Done", "To Do"]
    entered = []
    for n in range(steps):
        to = path[n % len(path)]
        fake.transition(key, to, at=T0 + timedelta(hours=n + 1), author="alice")
        entered.append(to)
    return entered


def test_cloud_completes_a_truncated_changelog_with_bulkfetch(connect: Connect) -> None:
    with FakeJira(deployment="cloud", bulkfetch_cap=4) as cloud:
        cloud.seed(3)
        entered = _walk(cloud, "WEB-2", 12)
        cloud.edit("WEB-2", at=T0 + timedelta(hours=20), summary="Renamed")

        pages = fetch(connect(cloud))

        embedded = cloud.calls("/rest/api/3/search/jql")[0].response["issues"][2]["changelog"]
        assert (len(embedded["histories"]), embedded["total"]) == (5, 13)
        bulk = cloud.calls("/rest/api/3/changelog/bulkfetch")
        assert len(bulk) == 4  # 13 histories, 4 a page
        assert bulk[0].body == {"issueIdsOrKeys": ["WEB-2"], "maxResults": 1000}
        assert [r.body.get("nextPageToken") for r in bulk[1:]] == [
            r.response["nextPageToken"] for r in bulk[:-1]
        ]
        assert not cloud.calls("/rest/api/*/issue/*/changelog")
        changes = [c for p in pages for c in p.changes]
        assert [c.to_status for c in changes] == entered
        assert [c.at for c in changes] == [T0 + timedelta(hours=n + 1) for n in range(12)]
        assert changes[0].from_status == "To Do"
        assert changes[0].from_category is StatusCategory.TODO
        assert [c.to_category for c in changes[3:5]] == [
            StatusCategory.IN_PROGRESS,
            StatusCategory.DONE,
        ]
        assert {c.author for c in changes} == {"alice"}
        (raw,) = [r for p in pages for r in p.raw if r.key == "WEB-2"]
        assert raw.payload["changelog"]["total"] == 13
        assert len(raw.payload["changelog"]["histories"]) == 13


def test_dc_completes_a_truncated_changelog_by_paging(connect: Connect) -> None:
    with FakeJira(deployment="datacenter", changelog_cap=3) as dc:
        dc.seed(3)
        entered = _walk(dc, "WEB-1", 11)
        pages = fetch(connect(dc))

        calls = dc.calls("/rest/api/2/issue/WEB-1/changelog")
        assert [r.params["startAt"] for r in calls] == ["0", "3", "6", "9"]
        changes = [c for p in pages for c in p.changes]
        assert [c.to_status for c in changes] == entered
        assert [c.change_id for c in changes] == sorted(c.change_id for c in changes)
        assert not dc.calls("/rest/api/*/issue/WEB-2/changelog")  # complete: not asked


def test_comments_are_paged_past_the_embedded_page(site: FakeJira, connect: Connect) -> None:
    site.comment_cap = 3
    site.seed(2)
    for n in range(12):
        site.add_comment("WEB-1", f"note {n}", at=T0 + timedelta(hours=n), author="carol")

    pages = fetch(connect(site))

    version = "3" if site.cloud else "2"
    calls = site.calls(f"/rest/api/{version}/issue/WEB-1/comment")
    assert [r.params["startAt"] for r in calls] == ["5", "8", "11"]
    comments = [c for p in pages for c in p.comments]
    assert [c.body for c in comments] == [f"note {n}" for n in range(12)]
    assert {c.author for c in comments} == {"carol"}
    assert not site.calls("/rest/api/*/issue/WEB-2/comment")


def test_adf_comment_bodies_become_text(cloud: FakeJira, connect: Connect) -> None:
    cloud.seed(1)
    cloud.add_comment(
        "WEB-1",
        {
            "type": "doc",
            "version": 1,
            "content": [
                {
                    "type": "paragraph",
                    "content": [
                        {"type": "mention", "attrs": {"id": "5b10", "text": "@Alice Smith"}},
                        {"type": "text", "text": " please review"},
                        {"type": "hardBreak"},
                        {"type": "text", "text": "by Friday", "marks": [{"type": "strong"}]},
                    ],
                },
                {
                    "type": "bulletList",
                    "content": [
                        {
                            "type": "listItem",
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": "a"}]}
                            ],
                        },
                        {
                            "type": "listItem",
                            "content": [
                                {"type": "paragraph", "content": [{"type": "text", "text": "b"}]}
                            ],
                        },
                    ],
                },
            ],
        },
        at=T0,
        author="alice",
    )
    (page,) = fetch(connect(cloud))
    (comment,) = page.comments
    assert comment.body == "@Alice Smith please review\nby Friday\n- a\n- b"
    raw_body = page.raw[0].payload["fields"]["comment"]["comments"][0]["body"]
    assert raw_body["type"] == "doc"  # the raw payload keeps the ADF


# -- normalized fields -----------------------------------------------------------------------


def test_cloud_item_fields(cloud: FakeJira, connect: Connect) -> None:
    cloud.add_user("5b10ac8d82e05b22cc7d4ef5", "Alice Smith", "alice@northwind.example")
    cloud.add_user("712020:0b1c", "Bob Jones")  # e-mail hidden by privacy settings
    cloud.add_issue("WEB-1", summary="Website", issuetype="Epic")
    cloud.add_issue(
        "WEB-2",
        summary="Home page",
        issuetype="Story",
        epic="WEB-1",
        assignee="712020:0b1c",
        reporter="5b10ac8d82e05b22cc7d4ef5",
        labels=["website-launch", "ux"],
        points=5,
        fix_versions=["v2 launch", "v3"],
        duedate=date(2027, 1, 15),
        created=T0,
    )
    cloud.transition("WEB-2", "Done", at=T0 + timedelta(days=2), author="712020:0b1c")

    pages = fetch(connect(cloud))
    item = next(i for p in pages for i in p.items if i.key == "WEB-2")
    assert item.title == "Home page"
    assert item.item_type == "Story"
    assert (item.status, item.status_category) == ("Done", StatusCategory.DONE)
    assert item.parent == "WEB-1"
    assert (item.assignee, item.reporter) == ("712020:0b1c", "5b10ac8d82e05b22cc7d4ef5")
    assert item.labels == ("website-launch", "ux")
    assert item.points == 5.0
    assert item.container == "v2 launch"
    assert item.due == datetime(2027, 1, 15, tzinfo=UTC)
    assert item.created == T0  # served as -0700, read back as UTC
    assert item.updated == item.resolved == T0 + timedelta(days=2)
    assert item.url == f"{cloud.url}/browse/WEB-2"
    assert item.flags == ()
    accounts = {a.account_id: a for p in pages for a in p.accounts}
    assert accounts["5b10ac8d82e05b22cc7d4ef5"].email == "alice@northwind.example"
    assert accounts["712020:0b1c"].display_name == "Bob Jones"
    assert accounts["712020:0b1c"].email is None


def test_dc_epic_link_points_and_usernames(connect: Connect) -> None:
    with FakeJira(
        deployment="datacenter",
        points_field="customfield_12310",
        epic_link_field="customfield_12311",
        server_type="DataCenter",
    ) as dc:
        dc.add_user("bob.jones", "Bob Jones", "bob@northwind.example")
        dc.add_issue("CRM-1", issuetype="Epic")
        dc.add_issue("CRM-2", epic="CRM-1", points="3.5", assignee="bob.jones")
        dc.add_issue("CRM-3", issuetype="Sub-task", parent="CRM-2")
        pages = fetch(connect(dc, scope="project = CRM"))

        items = {i.key: i for p in pages for i in p.items}
        assert items["CRM-2"].parent == "CRM-1"  # from the discovered Epic Link field
        assert items["CRM-2"].points == 3.5
        assert items["CRM-2"].assignee == "bob.jones"  # the username, not the user key
        assert items["CRM-3"].parent == "CRM-2"  # a sub-task's parent
        fields = dc.calls("/rest/api/2/search")[0].body["fields"]
        assert fields[-2:] == ["customfield_12310", "customfield_12311"]
        (bob,) = [a for p in pages for a in p.accounts]
        assert (bob.account_id, bob.email) == ("bob.jones", "bob@northwind.example")


def test_a_configured_points_field_wins(connect: Connect) -> None:
    with FakeJira(points_field="customfield_20000", points_field_name="Effort") as cloud:
        cloud.add_issue("WEB-1", points=8)
        (page,) = fetch(connect(cloud))
        assert page.items[0].points is None  # "Effort" is not a name stratmap knows
        assert "customfield_20000" not in cloud.calls(SEARCHES)[0].body["fields"]
        (page,) = fetch(connect(cloud, points_field="customfield_20000"))
        assert page.items[0].points == 8.0
        assert "customfield_20000" in cloud.calls(SEARCHES)[-1].body["fields"]


def test_status_category_by_key_and_unknown_categories_flagged(
    site: FakeJira, connect: Connect
) -> None:
    site.statuses = [
        ("1", "Backlog", "new"),
        ("3", "Doing", "indeterminate"),
        ("4", "Finished", "done"),
        ("5", "Parked", "undefined"),
    ]
    site.add_issue("WEB-1", status="Backlog")
    site.add_issue("WEB-2", status="Backlog")
    site.transition("WEB-2", "Finished", at=T0 + timedelta(hours=1))
    site.transition("WEB-2", "Parked", at=T0 + timedelta(hours=2))

    (page,) = fetch(connect(site))
    first, second = page.items
    assert (first.status_category, first.flags) == (StatusCategory.TODO, ())
    assert second.status_category is StatusCategory.IN_PROGRESS
    assert any(flag.startswith("unknown_status_category") for flag in second.flags)
    assert [c.to_category for c in page.changes] == [
        StatusCategory.DONE,
        StatusCategory.IN_PROGRESS,
    ]


def test_pages_carry_cursor_raw_payloads_and_provenance(site: FakeJira, connect: Connect) -> None:
    site.seed(25)
    pages = fetch(connect(site, page_size=10))
    for page in pages:
        assert page.source == "jira"
        assert page.cursor == max(i.updated for i in page.items)
        assert [r.key for r in page.raw] == [i.key for i in page.items]
        endpoint = "/rest/api/3/search/jql" if site.cloud else "/rest/api/2/search"
        assert {r.endpoint for r in page.raw} == {endpoint}
        assert all(r.payload["key"] == r.key for r in page.raw)


# -- resolve and reconcile -------------------------------------------------------------------


def test_resolve_runs_a_jql_selector_inside_the_scope(site: FakeJira, connect: Connect) -> None:
    site.seed(4)
    site.add_issue("WEB-5", labels=["website-launch"])
    site.add_issue("OPS-1", labels=["website-launch"])  # outside the scope
    connector = connect(site)

    assert connector.resolve({"jql": "labels = website-launch"}) == {"WEB-5"}
    (call,) = site.calls(SEARCHES)
    assert call.body["jql"] == "(project = WEB) AND (labels = website-launch)"
    assert call.body["fields"] == ["key"]


def test_resolve_leaves_other_selectors_to_the_engine(site: FakeJira, connect: Connect) -> None:
    connector = connect(site)
    for selector in ({"epic": "WEB-1"}, {"keys": ["WEB-1"]}, {"labels": ["x"]}):
        assert connector.resolve({"source": "jira", **selector}) is None
    assert site.requests == []


@pytest.mark.parametrize(
    "jql",
    [
        "labels = x) OR (project = SECRET",
        "labels = x ORDER BY created",
        'labels = "x',
        "",
    ],
)
def test_resolve_refuses_jql_that_could_escape_the_scope(
    cloud: FakeJira, connect: Connect, jql: str
) -> None:
    with pytest.raises(FatalSourceError, match="source 'jira'"):
        connect(cloud).resolve({"jql": jql})
    assert cloud.requests == []


def test_resolve_reports_jira_jql_errors_for_the_selector(
    cloud: FakeJira, connect: Connect
) -> None:
    with pytest.raises(FatalSourceError) as caught:
        connect(cloud).resolve({"jql": "flavour = vanilla"})
    assert "Field 'flavour' does not exist" in caught.value.message
    assert "flavour = vanilla" in caught.value.hint


def test_a_quoted_plan_value_stays_one_value(site: FakeJira, connect: Connect) -> None:
    evil = '" OR project = OPS OR labels = "x'
    site.add_issue("WEB-1", labels=[evil])
    site.add_issue("WEB-2", labels=["x"])
    site.add_issue("OPS-1")
    connector = connect(site)
    assert connector.resolve({"jql": f"labels = {jql_quote(evil)}"}) == {"WEB-1"}
    assert connector.resolve({"jql": f"labels in ({jql_quote('x')}, {jql_quote(evil)})"}) == {
        "WEB-1",
        "WEB-2",
    }


def test_reconcile_lists_every_key_in_scope(site: FakeJira, connect: Connect) -> None:
    site.seed(30)
    site.add_issue("OPS-1")
    site.delete("WEB-7")
    connector = connect(site)
    assert connector.reconcile() == {f"WEB-{n}" for n in range(1, 31)} - {"WEB-7"}
    (call,) = site.calls(SEARCHES)
    assert call.body["jql"] == "(project = WEB)"
    assert call.body["fields"] == ["key"]
    assert call.body["maxResults"] == (5000 if site.cloud else 1000)


def test_reconcile_pages_by_5000_on_cloud(cloud: FakeJira, connect: Connect) -> None:
    cloud.seed(5003, step=timedelta(seconds=1))
    assert len(connect(cloud).reconcile()) == 5003
    calls = cloud.calls("/rest/api/3/search/jql")
    assert [len(r.response["issues"]) for r in calls] == [5000, 3]
    assert calls[1].body["nextPageToken"] == calls[0].response["nextPageToken"]


def test_a_scope_with_order_by_is_refused(cloud: FakeJira) -> None:
    config = cloud.source_config(scope="project = WEB ORDER BY rank")
    with pytest.raises(FatalSourceError, match="ORDER BY"):
        JiraConnector("jira", config, token=cloud.token)


def test_resolve_by_parent_and_epic_link(site: FakeJira, connect: Connect) -> None:
    site.add_issue("WEB-1", issuetype="Epic")
    site.add_issue("WEB-2", epic="WEB-1")
    site.add_issue("WEB-3", epic="WEB-1")
    site.add_issue("WEB-4")
    connector = connect(site)
    jql = "parent = WEB-1" if site.cloud else '"Epic Link" = WEB-1'
    assert connector.resolve({"jql": jql}) == {"WEB-2", "WEB-3"}


def test_the_fake_also_answers_get_searches(site: FakeJira) -> None:
    import requests

    site.seed(7)
    with requests.Session() as session:
        if site.cloud:
            session.auth = (site.email, site.token)
            path, params = "/rest/api/3/search/jql", {"maxResults": "5", "fields": "summary"}
        else:
            session.headers["Authorization"] = f"Bearer {site.token}"
            path, params = "/rest/api/2/search", {"maxResults": "5", "startAt": "5"}
        params["jql"] = "project = WEB ORDER BY key ASC"
        answer = session.get(site.url + path, params=params).json()
        if site.cloud:
            assert [i["key"] for i in answer["issues"]] == [f"WEB-{n}" for n in range(1, 6)]
            assert set(answer["issues"][0]["fields"]) == {"summary"}
            params["nextPageToken"] = answer["nextPageToken"]
            rest = session.get(site.url + path, params=params).json()
            assert ([i["key"] for i in rest["issues"]], rest["isLast"]) == (
                ["WEB-6", "WEB-7"],
                True,
            )
        else:
            assert [i["key"] for i in answer["issues"]] == ["WEB-6", "WEB-7"]
            assert (answer["startAt"], answer["total"]) == (5, 7)


# -- the overlap, re-read ----------------------------------------------------------------------


def test_a_no_change_sync_re_reads_the_overlap_without_completing_it(
    site: FakeJira, connect: Connect, store: Any
) -> None:
    """An issue in the overlap whose stored ``updated`` is the same is not completed again:
    a sync with nothing new makes three requests (fields, statuses, one search page), even
    when that issue's history is longer than a search embeds."""
    from stratmap.flows.pipeline import sync_source

    site.embedded_histories = 2
    site.embedded_comments = 1
    site.seed(4)
    _walk(site, "WEB-3", 6)
    for n in range(3):
        site.add_comment("WEB-3", f"note {n}", at=T0 + timedelta(hours=6, minutes=n + 1),
                         author="alice")
    connector = connect(site, deployment=site.deployment)
    started = T0 + timedelta(days=1)
    sync_source(connector, store, started=started)
    complete = store.evidence(["jira"])
    assert len([c for c in complete.changes if c.item_key == "WEB-3"]) == 6
    assert len([c for c in complete.comments if c.item_key == "WEB-3"]) == 3

    before = len(site.calls())
    again = sync_source(connector, store, started=started + timedelta(hours=1))
    made = site.calls()[before:]
    fields = "/rest/api/3/field" if site.cloud else "/rest/api/2/field"
    # The field list and the statuses are asked at once (in either order), then one page.
    assert sorted(r.path for r in made[:2]) == sorted([fields, "/rest/api/2/status"])
    assert [r.path for r in made[2:]] == [SEARCH_PATH[site.deployment]]
    assert made[-1].response["issues"][0]["key"] == "WEB-3"  # re-read, then skipped
    assert again.items == 0
    assert store.evidence(["jira"]) == complete

    # A change moves ``updated``: the issue is read and completed again.
    site.transition("WEB-3", "Done", at=started + timedelta(hours=2), author="bob")
    changed = sync_source(connector, store, started=started + timedelta(hours=3))
    assert changed.items == 1
    after = store.evidence(["jira"])
    assert [c.to_status for c in after.changes if c.item_key == "WEB-3"][-1] == "Done"
    assert len([c for c in after.changes if c.item_key == "WEB-3"]) == 7
    assert len([c for c in after.comments if c.item_key == "WEB-3"]) == 3


SEARCH_PATH = {"cloud": "/rest/api/3/search/jql", "datacenter": "/rest/api/2/search"}


def test_the_hint_is_ignored_on_a_full_sync_and_for_other_stamps(
    site: FakeJira, connect: Connect
) -> None:
    site.seed(3)
    connector = connect(site)
    stamps = {item.key: item.updated for page in fetch(connector) for item in page.items}
    full = list(connector.fetch(Window(since=None, until=NOW, stored=stamps)))
    assert keys(full) == ["WEB-1", "WEB-2", "WEB-3"]
    older = {key: at - timedelta(seconds=1) for key, at in stamps.items()}
    since = min(stamps.values())
    assert keys(list(connector.fetch(Window(since=since, until=NOW, stored=older)))) == [
        "WEB-1", "WEB-2", "WEB-3"]
    same = {"WEB-2": stamps["WEB-2"]}
    assert keys(list(connector.fetch(Window(since=since, until=NOW, stored=same)))) == [
        "WEB-1", "WEB-3"]


# -- who held an issue when ------------------------------------------------------------------


def test_assignee_changes_reach_the_store_as_account_ids(
    site: FakeJira, connect: Connect, store: Any
) -> None:
    from stratmap.flows.pipeline import sync_source

    ann = site.add_user("557058:ann" if site.cloud else "ann", "Ann").account_id
    bob = site.add_user("557058:bob" if site.cloud else "bob", "Bob").account_id
    site.seed(2)
    site.edit("WEB-1", at=T0 + timedelta(days=1), author="alice", assignee=ann)
    site.edit("WEB-1", at=T0 + timedelta(days=5), author="alice", assignee=bob)
    connector = connect(site, deployment=site.deployment)
    sync_source(connector, store, started=T0 + timedelta(days=10))
    evidence = store.evidence(["jira"])
    held = [(a.item_key, a.at, a.from_account, a.to_account) for a in evidence.assignments]
    assert held == [("WEB-1", T0 + timedelta(days=1), None, ann),
                    ("WEB-1", T0 + timedelta(days=5), ann, bob)]
    (web1,) = [i for i in evidence.items if i.key == "WEB-1"]
    assert web1.assignee == bob and web1.flags == ()
    assert evidence.changes == ()  # assignments are not status changes
    # Data Center's changelog names ann by her user key: one lookup, then remembered.
    lookups = site.calls("/rest/api/2/user")
    # (bob, the current assignee, is shown by the issue itself: no lookup for him.)
    assert [r.params for r in lookups] == ([] if site.cloud else [{"key": "JIRAUSER10100"}])


def test_a_deleted_users_key_is_kept_and_the_item_flagged(dc: FakeJira, connect: Connect,
                                                          store: Any) -> None:
    from stratmap.flows.pipeline import sync_source

    dc.add_user("gone", "Former colleague")
    dc.seed(1)
    dc.edit("WEB-1", at=T0 + timedelta(days=1), assignee="gone")
    dc.edit("WEB-1", at=T0 + timedelta(days=2), assignee="alice")
    dc.deleted_users.add("gone")
    sync_source(connect(dc, deployment="datacenter"), store, started=T0 + timedelta(days=3))
    evidence = store.evidence(["jira"])
    assert [a.to_account for a in evidence.assignments] == ["JIRAUSER10100", "alice"]
    assert evidence.items[0].flags == ("unresolved_user_key",)


def test_stored_raw_payloads_re_normalize_without_re_fetching(
    site: FakeJira, connect: Connect, store: Any
) -> None:
    """The store keeps each issue's complete payload (compressed, revision 0006): read back,
    the normalizer makes from it the very records the sync stored, with no request."""
    from stratmap.connectors.base import RequestCount
    from stratmap.connectors.jira.payloads import normalize_issue
    from stratmap.flows.pipeline import sync_source

    site.embedded_histories = 2
    site.embedded_comments = 1
    site.seed(5)
    _walk(site, "WEB-2", 7)
    for n in range(3):
        site.add_comment("WEB-2", f"note {n}", at=T0 + timedelta(hours=8, minutes=n + 1),
                         author="alice")
    connector = connect(site, deployment=site.deployment)
    sync_source(connector, store, started=T0 + timedelta(days=1))
    evidence = store.evidence(["jira"])
    about = connector._site(RequestCount())  # what the sync learnt of the site
    before = len(site.calls())

    raws = list(store.raw_payloads("jira"))
    again = [normalize_issue("jira", raw.payload, about,
                             histories=raw.payload["changelog"]["histories"],
                             comments=raw.payload["fields"]["comment"]["comments"])
             for raw in raws]

    assert len(site.calls()) == before  # nothing fetched
    assert [r.key for r in raws] == sorted(i.key for i in evidence.items)
    # Normalized again, as the evidence holds records (Evidence compacts them):
    renormalized = Evidence(
        items=sorted((r.item for r in again), key=lambda i: i.key),
        changes=sorted((c for r in again for c in r.changes),
                       key=lambda c: (c.item_key, c.at, c.change_id)),
        comments=sorted((c for r in again for c in r.comments),
                        key=lambda c: (c.item_key, c.at, c.comment_id)))
    assert renormalized.items == evidence.items
    assert renormalized.changes == evidence.changes
    assert len([c for c in evidence.changes if c.item_key == "WEB-2"]) == 7
    assert renormalized.comments == evidence.comments
    with store.engine.connect() as connection:  # stored compressed, not as JSON text
        stored = connection.exec_driver_sql(
            "SELECT payload_zst FROM raw_payloads WHERE key = 'WEB-2'").scalar_one()
    assert bytes(stored)[:4] == b"\x28\xb5\x2f\xfd"  # the Zstandard frame's magic number
