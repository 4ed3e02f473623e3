"""The Linear connector: the shared contract, and the GraphQL wire it speaks."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    Pusher,
    RetriableError,
    Target,
    Window,
)
from stratmap.connectors.linear import LinearConnector
from stratmap.connectors.registry import build_connector
from stratmap.flows.pipeline import judge_plan, sync_plan_source
from stratmap.models.plan import LinearSource
from stratmap.models.planfile import load_plan
from stratmap.models.records import Page, StatusCategory, WorkItem
from stratmap.models.store import Store
from tests.contract.suite import T0, ConnectorContract, SeedItem, make_items
from tests.fakes.linear_api import FakeLinear, ident, started

UNTIL = T0 + timedelta(days=60)
EVERYTHING = Window(since=None, until=UNTIL)


class TestLinearContract(ConnectorContract):
    @pytest.fixture
    def harness(self) -> Iterator[FakeLinear]:
        yield from started(FakeLinear(page_size=50))


@pytest.fixture
def linear() -> Iterator[FakeLinear]:
    yield from started(FakeLinear(page_size=10, nested_page_size=5))


def fetch(fake: FakeLinear, window: Window = EVERYTHING, **config: object) -> list[Page]:
    with fake.connector(**config) as connector:
        return list(connector.fetch(window))


def items_of(pages: list[Page]) -> dict[str, WorkItem]:
    return {item.key: item for page in pages for item in page.items}


# -- the wire ---------------------------------------------------------------------------

def test_the_issue_query_filters_by_updated_and_team_and_follows_cursors_to_the_end(
        linear: FakeLinear) -> None:
    items = make_items(40)
    linear.seed(items)
    since = datetime(2026, 9, 2, 3, 30, 15, 999_000, tzinfo=UTC)
    pages = fetch(linear, Window(since=since, until=UNTIL))

    (team,) = linear.calls("StratmapTeam")
    assert team.variables == {"key": "ENG"}
    listed = linear.calls("StratmapIssues")
    assert all(r.method == "POST" and r.path == "/graphql" for r in linear.requests)
    assert listed[0].headers["content-type"] == "application/json"
    assert listed[0].variables == {
        "filter": {"updatedAt": {"gte": "2026-09-02T03:30:15Z"},  # floored: never late
                   "team": {"key": {"eq": "ENG"}}},
        "first": 10, "after": None, "nested": 5,
    }
    assert "orderBy: updatedAt" in listed[0].query
    assert "includeArchived: true" in listed[0].query
    # Every page asks again with the cursor of the one before, to the last page.
    expected = sorted(linear.key_of(i.key) for i in items
                      if i.updated >= since.replace(microsecond=0))
    assert len(listed) == -(-len(expected) // 10)
    afters = [r.variables["after"] for r in listed]
    assert afters[0] is None and None not in afters[1:] and len(set(afters)) == len(afters)
    assert all(r.variables["filter"] == listed[0].variables["filter"] for r in listed)
    assert sorted(items_of(pages)) == expected
    assert len(pages) == len(listed)


def test_a_first_sync_filters_by_team_only_and_a_workspace_source_not_at_all() -> None:
    with FakeLinear() as fake:
        fake.seed(make_items(3))
        fetch(fake)
        assert fake.calls("StratmapIssues")[0].variables["filter"] == {
            "team": {"key": {"eq": "ENG"}}}
    with FakeLinear(team=None) as workspace:
        workspace.seed(make_items(3))
        pages = fetch(workspace)
        assert workspace.calls("StratmapIssues")[0].variables["filter"] is None
        assert workspace.calls("StratmapTeam") == []
    # Another team's issue comes with a workspace source; a trashed one never does.
    assert sorted(items_of(pages)) == ["ENG-1", "ENG-2", "ENG-3", "OPS-1"]


def test_the_api_key_goes_verbatim_and_an_oauth_token_as_a_bearer() -> None:
    with FakeLinear(token="lin_api_secret") as fake:
        fake.seed(make_items(2))
        with fake.connector() as connector:
            pages = list(connector.fetch(EVERYTHING))
            assert "lin_api_secret" not in repr(connector) + repr(connector.api)
        assert {r.headers["authorization"] for r in fake.requests} == {"lin_api_secret"}
    assert len(items_of(pages)) == 2
    with FakeLinear(token="lin_oauth_secret", oauth=True) as fake:
        fake.seed(make_items(2))
        fetch(fake)
        assert {r.headers["authorization"] for r in fake.requests} == {
            "Bearer lin_oauth_secret"}


def test_long_history_and_comments_are_followed_past_the_first_page(
        linear: FakeLinear) -> None:
    linear.add_issue("ENG-7", title="Long", created=T0)
    moves = ["In Progress", "In Review"] * 6
    for n, to in enumerate(moves):
        linear.move("ENG-7", to, at=T0 + timedelta(hours=n + 1), author="dev1")
    for n in range(7):
        linear.comment("ENG-7", at=T0 + timedelta(days=1, hours=n), author="lead",
                       body=f"note {n}")
    (page,) = fetch(linear)

    history = linear.calls("StratmapIssueHistory")
    comments = linear.calls("StratmapIssueComments")
    assert [r.variables["first"] for r in history] == [5, 5]  # 12 = 5 + 5 + 2
    assert len(comments) == 1  # 7 = 5 + 2
    assert {r.variables["id"] for r in history + comments} == {ident("issue", "ENG-7")}
    assert all(r.variables["after"] for r in history + comments)
    assert len({r.variables["after"] for r in history}) == 2
    assert [c.to_status for c in page.changes] == moves  # in time order, none lost
    assert [c.from_status for c in page.changes][:2] == ["To Do", "In Progress"]
    assert sorted(c.body for c in page.comments) == [f"note {n}" for n in range(7)]
    # team, list, two history pages, one comment page, the project updates
    assert page.requests == 1 + 1 + 2 + 1 + 1
    (raw,) = page.raw
    assert len(raw.payload["history"]["nodes"]) == 12
    assert len(raw.payload["comments"]["nodes"]) == 7


def test_workflow_state_types_map_onto_categories(linear: FakeLinear) -> None:
    expected = {
        "Triage": StatusCategory.TODO, "Backlog": StatusCategory.TODO,
        "To Do": StatusCategory.TODO, "In Progress": StatusCategory.IN_PROGRESS,
        "Done": StatusCategory.DONE, "Canceled": StatusCategory.DONE,
        "Duplicate": StatusCategory.DONE,
    }
    for n, name in enumerate(expected, start=1):
        linear.add_issue(f"ENG-{n}", title=name, created=T0)
        if name != "To Do":
            linear.move(f"ENG-{n}", name, at=T0 + timedelta(days=1), author="dev1")
    found = items_of(fetch(linear))
    by_status = {item.status: item for item in found.values()}
    assert {name: item.status_category for name, item in by_status.items()} == expected
    # Done, canceled and duplicate are resolved when they got there; nothing else is.
    assert {name for name, item in by_status.items() if item.resolved} == {
        "Done", "Canceled", "Duplicate"}
    assert by_status["Canceled"].resolved == T0 + timedelta(days=1)
    assert by_status["Triage"].fields["state_type"] == "triage"


def test_an_issue_maps_key_people_project_labels_points_due_parent_and_url(
        linear: FakeLinear) -> None:
    linear.add_issue("ENG-1", title="Epic-ish parent", created=T0)
    linear.add_issue("ENG-42", title="Launch the site", created=T0,
                     updated=T0 + timedelta(hours=3), assignee="alice", creator="carol",
                     labels=["website", "launch"], project="Website relaunch",
                     parent="ENG-1", estimate=3, due="2027-01-15")
    pages = fetch(linear)
    item = items_of(pages)["ENG-42"]
    assert item.key == "ENG-42"
    assert item.title == "Launch the site"
    assert item.assignee == ident("user", "alice")
    assert item.reporter == ident("user", "carol")
    assert item.labels == ("website", "launch")
    assert item.container == "Website relaunch"
    assert item.parent == "ENG-1"
    assert item.points == 3.0
    assert item.due == datetime(2027, 1, 15, tzinfo=UTC)
    assert item.url == "https://linear.app/northwind/issue/ENG-42/launch-the-site"
    assert item.created == T0
    assert item.updated == T0 + timedelta(hours=3)
    assert item.status_category is StatusCategory.TODO
    assert item.flags == ()
    accounts = {a.account_id: a for page in pages for a in page.accounts}
    alice = accounts[ident("user", "alice")]
    assert (alice.display_name, alice.email) == ("alice", "alice@northwind.example")
    raw = next(r for page in pages for r in page.raw if r.key == "ENG-42")
    assert raw.endpoint == linear.url and raw.payload["identifier"] == "ENG-42"


def test_payload_drift_keeps_the_issue_and_flags_it(linear: FakeLinear) -> None:
    for n in range(1, 7):
        linear.add_issue(f"ENG-{n}", title=f"Issue {n}", created=T0,
                         updated=T0 + timedelta(hours=n), assignee="dev1")
    linear.mangle["ENG-2"] = lambda node: node["state"].update(type="paused")
    linear.mangle["ENG-3"] = lambda node: node.update(createdAt=None)
    linear.mangle["ENG-4"] = lambda node: node.update(estimate="three")
    linear.mangle["ENG-5"] = lambda node: node.update(dueDate="soon", state=None)
    linear.field_errors["ENG-6"] = "assignee"
    found = items_of(fetch(linear))
    assert sorted(found) == [f"ENG-{n}" for n in range(1, 7)]
    flags = {key: item.flags for key, item in found.items()}
    assert flags["ENG-1"] == ()
    assert flags["ENG-2"] == ("unknown_state_type:paused",)
    assert found["ENG-2"].status_category is StatusCategory.IN_PROGRESS
    assert flags["ENG-3"] == ("missing_createdAt",)
    assert found["ENG-3"].created == T0 + timedelta(hours=3)
    assert flags["ENG-4"] == ("unreadable_estimate",)
    assert set(flags["ENG-5"]) == {"missing_state", "unreadable_dueDate"}
    assert found["ENG-5"].status_category is StatusCategory.IN_PROGRESS
    assert flags["ENG-6"] == ("graphql_error:assignee",)
    assert found["ENG-6"].assignee is None


def test_an_item_updated_after_the_run_start_never_becomes_the_cursor(
        linear: FakeLinear) -> None:
    linear.add_issue("ENG-1", title="late", created=T0, updated=UNTIL + timedelta(minutes=3))
    (page,) = fetch(linear)
    assert page.cursor == UNTIL


def test_issues_the_store_holds_at_the_same_version_are_not_completed_again(
        linear: FakeLinear) -> None:
    linear.add_issue("ENG-1", title="same", created=T0, updated=T0 + timedelta(days=2))
    linear.add_issue("ENG-2", title="changed", created=T0, updated=T0 + timedelta(days=3))
    for n in range(8):
        for key in ("ENG-1", "ENG-2"):
            linear.comment(key, at=T0 + timedelta(hours=n), author="lead", body=str(n))
    linear.issues["ENG-1"]["updatedAt"] = "2026-09-03T09:00:00.000Z"
    window = Window(since=T0, until=UNTIL, stored={"ENG-1": T0 + timedelta(days=2),
                                                   "ENG-2": T0 + timedelta(days=1)})
    (page,) = fetch(linear, window)
    assert [i.key for i in page.items] == ["ENG-2"]
    assert [r.variables["id"] for r in linear.calls("StratmapIssueComments")] == [
        ident("issue", "ENG-2")]


def test_reconcile_lists_every_issue_in_scope_but_no_trashed_one(linear: FakeLinear) -> None:
    linear.seed(make_items(12))
    with linear.connector() as connector:
        keys = connector.reconcile()
    assert keys == frozenset(f"ENG-{n}" for n in range(1, 13))
    (listed,) = linear.calls("StratmapIssueKeys")
    assert listed.variables == {"filter": {"team": {"key": {"eq": "ENG"}}}, "after": None,
                                "first": 250}


# -- errors and rate limits ---------------------------------------------------------------

def test_a_refused_key_names_the_source_and_where_to_make_one() -> None:
    with FakeLinear(token="lin_api_right") as fake:
        fake.seed(make_items(2))
        fake.token = "lin_api_other"  # the key the source holds is no longer valid
        with pytest.raises(AuthError) as raised:
            fetch(fake)
        message = str(raised.value)
        assert "source 'eng'" in message
        assert "https://linear.app/settings/account/security" in message
        assert "env:LINEAR_API_KEY" in message
        assert "lin_api_right" not in message
        assert len(fake.requests) == 1 and fake.sleeps == []


def test_a_spent_request_budget_waits_until_its_reset(linear: FakeLinear) -> None:
    linear.seed(make_items(3))
    linear.fail_rate_limited(reset_in=600)
    pages = fetch(linear)
    assert len(items_of(pages)) == 3
    assert len(linear.sleeps) == 1 and 600 <= linear.sleeps[0] < 601


def test_a_spent_complexity_budget_waits_until_its_reset(linear: FakeLinear) -> None:
    linear.seed(make_items(3))
    linear.fail_rate_limited(reset_in=90, budget="complexity")
    fetch(linear)
    assert 90 <= linear.sleeps[0] < 91  # not the hour the request budget would take


def test_retry_after_is_a_floor(linear: FakeLinear) -> None:
    linear.seed(make_items(1))
    linear.fail_next(429, retry_after="45")
    fetch(linear)
    assert linear.sleeps[0] >= 45


def test_graphql_errors_are_fatal_and_say_what_linear_said(linear: FakeLinear) -> None:
    linear.seed(make_items(2))
    linear.fail_graphql("Query too complex: 12000 > 10000")
    with pytest.raises(FatalSourceError) as raised:
        fetch(linear)
    assert not isinstance(raised.value, AuthError | RetriableError)
    assert "source 'eng'" in str(raised.value)
    assert "Query too complex" in str(raised.value)
    assert "page_size" in str(raised.value)
    assert len(linear.requests) == 1 and linear.sleeps == []


def test_server_errors_and_dropped_connections_are_retried(linear: FakeLinear) -> None:
    linear.seed(make_items(2))
    linear.fail_next(502)
    linear.drop_next()
    pages = fetch(linear)
    assert len(items_of(pages)) == 2
    assert len(linear.sleeps) == 2
    assert pages[0].requests == 2 + 1 + 1 + 1  # the failed tries, the team, the list, updates


def test_server_errors_give_up_after_the_policy(linear: FakeLinear) -> None:
    linear.fail_next(503, times=10)
    with pytest.raises(RetriableError):
        fetch(linear)
    assert len(linear.requests) == 4 and len(linear.sleeps) == 3  # RetryPolicy(attempts=4)


def test_an_unknown_team_is_a_clear_error() -> None:
    with FakeLinear(team="NOPE") as fake:
        fake.seed(make_items(2))
        with pytest.raises(FatalSourceError) as raised:
            fetch(fake)
    assert "no Linear team has the key 'NOPE'" in str(raised.value)
    assert fake.calls("StratmapIssues") == []


# -- wiring -------------------------------------------------------------------------------

def test_the_registry_builds_it_with_the_resolved_key(tmp_path: Path) -> None:
    asked: list[tuple[str, str]] = []

    def secret(name: str, ref: str) -> str:
        asked.append((name, ref))
        return "lin_api_x"

    source = LinearSource(kind="linear", team="ENG", token="env:LINEAR_API_KEY")
    connector = build_connector("eng", source, plan_dir=tmp_path, secret=secret)
    assert isinstance(connector, LinearConnector)
    assert asked == [("eng", "env:LINEAR_API_KEY")]
    assert connector.api.headers["Authorization"] == "lin_api_x"
    assert connector.api.url == "https://api.linear.app/graphql"
    assert connector.api.timeout == 30.0
    assert connector.kind == "linear" and not connector.ordered
    assert connector.resolve({"project": "x"}) is None
    connector.close()


def plan_text(url: str) -> str:
    return f"""\
version: 1
name: Linear plan
leader: alice
people:
  alice: {{name: Alice, email: alice@northwind.example, senior: true}}
  bob: {{name: Bob, email: bob@northwind.example}}
sources:
  eng: {{kind: linear, team: ENG, token: env:LINEAR_API_KEY, url: "{url}"}}
goals:
  - id: brand
    title: Greater online brand presence
    owner: alice
    milestones:
      - id: website
        title: Relaunch the website
        owner: bob
        start: 2026-09-01
        due: 2026-12-01
        feedback: {{from: seniors, every: 30d}}
        work:
          - {{source: eng, project: Website relaunch}}
      - id: launch
        title: Launch campaign
        owner: bob
        start: 2026-09-01
        due: 2026-12-01
        work:
          - {{source: eng, labels: [launch, press]}}
"""


def test_project_and_labels_selectors_choose_items_end_to_end(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLinear(token="lin_api_plan") as fake:
        day = timedelta(days=1)
        fake.add_issue("ENG-1", title="Navigation", created=T0, assignee="bob",
                       project="Website relaunch")
        fake.move("ENG-1", "In Progress", at=T0 + day, author="bob")
        fake.move("ENG-1", "Done", at=T0 + 3 * day, author="bob")
        fake.add_issue("ENG-2", title="Checkout", created=T0, assignee="bob",
                       project="Website relaunch", labels=["launch"])
        fake.comment("ENG-2", at=T0 + 5 * day, author="alice", body="Ship it")
        fake.add_issue("ENG-3", title="Press kit", created=T0, labels=["press"])
        fake.move("ENG-3", "Canceled", at=T0 + 2 * day, author="alice")
        fake.add_issue("ENG-4", title="Nobody planned this", created=T0)
        fake.add_issue("OPS-1", title="Another team", created=T0, project="Website relaunch")
        monkeypatch.setenv("LINEAR_API_KEY", "lin_api_plan")
        (tmp_path / "plan.yaml").write_text(plan_text(fake.url))
        plan = load_plan(tmp_path / "plan.yaml")
        as_of = T0 + 10 * day
        synced = sync_plan_source(plan, "eng", store, plan_dir=tmp_path, started=as_of)
    assert synced.items == 4  # another team's issue is out of scope
    report = judge_plan(plan, store, as_of=as_of)
    (goal,) = report.goals
    website, launch = goal.milestones
    assert (website.items.total, website.items.done) == (2, 1)  # ENG-1, ENG-2
    assert (launch.items.total, launch.items.done) == (2, 1)  # ENG-2, ENG-3 (canceled)
    assert website.last_movement == T0 + 3 * day
    # alice's comment (matched to her by e-mail) is the senior feedback website needs.
    assert not any(f.kind.value == "missing_feedback" and f.milestone == "brand.website"
                   for f in report.findings)
    unmapped = sorted(f.item or "" for f in report.findings if f.kind.value == "unmapped_work")
    assert unmapped == ["ENG-4"]


def test_a_transition_leaves_one_history_entry_and_moves_the_issue(
        linear: FakeLinear) -> None:
    linear.seed([SeedItem(key="ITEM-1", title="x", created=T0)])
    linear.transition("ITEM-1", at=T0 + timedelta(days=2), author="dev2", to="In Progress")
    linear.transition("ITEM-1", at=T0 + timedelta(days=3), author="dev2", to="Done")
    (page,) = fetch(linear)
    assert [(c.from_category, c.to_category) for c in page.changes] == [
        (StatusCategory.TODO, StatusCategory.IN_PROGRESS),
        (StatusCategory.IN_PROGRESS, StatusCategory.DONE)]
    (item,) = page.items
    assert item.resolved == T0 + timedelta(days=3) and item.flags == ()
    assert {c.author for c in page.changes} == {ident("user", "dev2")}


def test_reassignments_come_from_the_history_as_user_ids(linear: FakeLinear) -> None:
    linear.add_issue("ENG-7", title="Passed around", created=T0, assignee="alice")
    linear.move("ENG-7", "In Progress", at=T0 + timedelta(hours=1), author="alice")
    linear.assign("ENG-7", "bob", at=T0 + timedelta(days=1), author="carol")
    linear.assign("ENG-7", None, at=T0 + timedelta(days=2), author="carol")
    pages = fetch(linear)
    moves = [(a.at - T0, a.from_account, a.to_account, a.author)
             for page in pages for a in page.assignments]
    assert moves == [
        (timedelta(days=1), ident("user", "alice"), ident("user", "bob"), ident("user", "carol")),
        (timedelta(days=2), ident("user", "bob"), None, ident("user", "carol")),
    ]
    assert [c.to_status for page in pages for c in page.changes] == ["In Progress"]
    assert items_of(pages)["ENG-7"].assignee is None
    # The history query asks for both sides of an assignment.
    query = linear.calls("StratmapIssues")[0].query
    assert "fromAssignee {" in query and "toAssignee {" in query


# -- stratmap push: a project's target date and lead -------------------------------------

def project_target(name: str, due: date | None, *, lead: str | None = None) -> Target:
    return Target(milestone=f"web.{name}", criteria={"project": name}, due=due,
                  owner="bob" if lead else None,
                  owner_account=ident("user", lead) if lead else None)


def test_push_check_reads_each_project_by_name_and_writes_nothing(linear: FakeLinear) -> None:
    linear.add_project("Website relaunch", target="2026-09-24", lead="alice")
    linear.add_project("Payments")
    linear.add_project("Twin")
    linear.add_project("Twin")
    with linear.connector() as connector:
        assert isinstance(connector, Pusher)
        found = connector.check([
            project_target("Website relaunch", date(2026, 10, 1), lead="bob"),
            project_target("Payments", date(2026, 11, 2)),
            project_target("Twin", date(2026, 11, 2)),
            project_target("Nowhere", date(2026, 11, 2)),
        ])
    listed = linear.calls("StratmapProjects")
    assert [r.variables for r in listed] == [{"name": n} for n in (
        "Website relaunch", "Payments", "Twin", "Nowhere")]
    assert "projects(filter: {name: {eq: $name}}" in listed[0].query
    assert not [r for r in linear.requests if "mutation" in r.query]
    assert [(d.container, d.field, d.tracker, d.plan) for d in found.differences] == [
        ("project 'Website relaunch'", "due", "2026-09-24", "2026-10-01"),
        ("project 'Website relaunch'", "assignee", "alice", ident("user", "bob")),
        ("project 'Payments'", "due", None, "2026-11-02"),
    ]
    assert len(found.missing) == 2
    assert "names 2 Linear projects" in found.missing[0]
    assert "does not exist" in found.missing[1]


def test_push_apply_sends_project_update_with_a_timeless_date_and_the_lead(
        linear: FakeLinear) -> None:
    project = linear.add_project("Website relaunch", target="2026-09-24", lead="alice")
    with linear.connector() as connector:
        for difference in connector.check([project_target("Website relaunch",
                                                          date(2026, 10, 1), lead="bob")]
                                          ).differences:
            connector.apply(difference)
        assert not connector.check([project_target("Website relaunch", date(2026, 10, 1),
                                                   lead="bob")]).differences
    updates = linear.calls("StratmapProjectUpdate")
    assert [r.variables for r in updates] == [
        {"id": project["id"], "input": {"targetDate": "2026-10-01"}},
        {"id": project["id"], "input": {"leadId": ident("user", "bob")}},
    ]
    assert all("projectUpdate(id: $id, input: $input)" in r.query for r in updates)
    assert not any("projectUpdateCreate" in r.query for r in linear.requests)
    assert project["targetDate"] == "2026-10-01" and project["lead"]["displayName"] == "bob"


def test_push_apply_waits_out_a_rate_limit_signalled_as_http_400(linear: FakeLinear) -> None:
    linear.add_project("Payments")
    with linear.connector() as connector:
        (difference,) = connector.check([project_target("Payments", date(2026, 11, 2))]
                                        ).differences
        linear.fail_rate_limited(reset_in=42)
        connector.apply(difference)
    assert linear.sleeps and linear.sleeps[0] >= 42
    assert linear.projects[difference.ref]["targetDate"] == "2026-11-02"


def test_push_apply_refused_says_what_the_key_needs(linear: FakeLinear) -> None:
    linear.add_project("Payments")
    linear.editable = False
    with linear.connector() as connector:
        (difference,) = connector.check([project_target("Payments", date(2026, 11, 2))]
                                        ).differences
        with pytest.raises(AuthError) as raised:
            connector.apply(difference)
    assert "edit the project" in str(raised.value) and "'eng'" in str(raised.value)


def test_the_linear_rate_limit_reset_is_read_as_milliseconds_or_seconds() -> None:
    import httpx

    from stratmap.connectors.linear.transport import rate_limit_wait

    now = 1_800_000_000.0
    for reset in (str(int((now + 30) * 1000)), str(int(now + 30))):
        headers = httpx.Headers({"x-ratelimit-requests-remaining": "0",
                                 "x-ratelimit-requests-reset": reset})
        assert rate_limit_wait(headers, now) == pytest.approx(30, abs=1)


def test_push_through_the_cli_moves_the_projects_target_date(
        linear: FakeLinear, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stratmap.flows import cli

    project = linear.add_project("Website relaunch", target="2026-09-24")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"""\
version: 1
name: Linear plan
leader: alice
people:
  alice: {{name: Alice}}
sources:
  eng: {{kind: linear, team: ENG, token: env:STRATMAP_TEST_LINEAR_KEY, url: "{linear.url}"}}
goals:
  - id: web
    title: Web
    milestones:
      - id: launch
        title: Launch
        due: 2026-10-01
        work: [{{source: eng, project: Website relaunch}}]
""")
    monkeypatch.setenv("STRATMAP_TEST_LINEAR_KEY", linear.token)
    assert cli.main(["push", str(plan), "--check"]) == cli.EXIT_FINDINGS
    assert project["targetDate"] == "2026-09-24"  # a check only reads
    assert cli.main(["push", str(plan), "--apply"]) == 0
    assert project["targetDate"] == "2026-10-01"
    assert cli.main(["push", str(plan), "--check"]) == 0
