"""The Azure DevOps Boards connector: the shared contract, the wire, selectors and push."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from stratmap.connectors.azure_devops.transport import RevisionMoved
from stratmap.connectors.base import AuthError, FatalSourceError, Pusher, Target, Window
from stratmap.flows import cli
from stratmap.models.planfile import PlanError, parse_plan
from stratmap.models.records import Page, StatusCategory
from stratmap.models.wiql import quoted, wiql_problem
from tests.contract.suite import T0, ConnectorContract, make_items
from tests.fakes.azure_devops_api import FakeAzureDevops, activated, ident

EVERYTHING = Window(since=None, until=T0 + timedelta(days=60))


class TestAzureDevopsContract(ConnectorContract):
    """Azure DevOps Services, the query size limit as the service has it."""

    @pytest.fixture
    def harness(self) -> Iterator[FakeAzureDevops]:
        yield from activated(FakeAzureDevops())


class TestSplitWindowsContract(ConnectorContract):
    """A project whose queries outgrow the size limit: every sync splits its window."""

    @pytest.fixture
    def harness(self) -> Iterator[FakeAzureDevops]:
        yield from activated(FakeAzureDevops(limit=70, page_size=50, concurrency=1))


@pytest.fixture
def boards() -> Iterator[FakeAzureDevops]:
    yield from activated(FakeAzureDevops())


def fetch(fake: FakeAzureDevops, window: Window = EVERYTHING) -> list[Page]:
    connector = fake.connector()
    try:
        return list(connector.fetch(window))
    finally:
        connector.close()


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


# -- the wire ---------------------------------------------------------------------------

def test_a_sync_asks_wiql_for_ids_then_reads_them_in_batches(boards: FakeAzureDevops) -> None:
    boards.seed(make_items(3))
    since = datetime(2026, 9, 1, 12, 30, 15, 250_000, tzinfo=UTC)
    fetch(boards, Window(since=since, until=EVERYTHING.until))
    wiql = boards.calls("wiql")[0]
    assert wiql.url.path == "/northwind/Website/_apis/wit/wiql"
    assert dict(wiql.url.params) == {"api-version": "7.1", "timePrecision": "true"}
    assert json.loads(wiql.content) == {"query": (
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = 'Website' "
        "AND [System.ChangedDate] >= '2026-09-01T12:30:15.250Z' "
        "ORDER BY [System.ChangedDate] ASC, [System.Id] ASC")}
    batch = boards.calls("workitemsbatch")[0]
    body = json.loads(batch.content)
    assert body["errorPolicy"] == "omit" and "System.State" in body["fields"]
    assert wiql.headers["authorization"] == "Basic OmFkby1wYXQtc2VjcmV0"  # ":" + the PAT
    comments = boards.calls("comments")
    assert comments and all(r.url.params["api-version"] == "7.1-preview.4" for r in comments)
    # Only ITEM-3 has comments: the others' System.CommentCount is 0, so none are asked for.
    assert [r.url.path.split("/")[-2] for r in comments] == ["3"]


def test_a_query_over_the_size_limit_is_split_by_changed_date_until_each_half_fits() -> None:
    fake = FakeAzureDevops(limit=40, page_size=200)
    with fake.router:
        fake.seed(make_items(130))
        pages = fetch(fake)
    keys = [i.key for p in pages for i in p.items]
    assert sorted(keys) == sorted(f"boards#{n}" for n in range(1, 131))
    assert len(keys) == len(set(keys))
    queries = [json.loads(r.content)["query"] for r in fake.calls("wiql")]
    refused = [r for r in fake.requests if r.url.path.endswith("/wiql")]
    assert len(refused) > 4  # the whole project, then halves of halves
    assert "[System.ChangedDate] >= '2005-01-01T00:00:00.000Z'" in queries[1]
    assert all("[System.ChangedDate] <" in q for q in queries[1:-1])
    assert sum(p.requests for p in pages) == len(fake.requests)


def test_a_work_item_maps_state_category_paths_tags_parent_and_people(
        boards: FakeAzureDevops) -> None:
    boards.add(7, title="Checkout epic", created=at(1), kind="Epic", state="Active")
    boards.add(8, title="Pay by card", created=at(2), assignee="erin", by="grace",
               area="Website\\Payments", iteration="Website\\Sprint 4", tags=["pci", "web"],
               parent=7, target="2026-10-01T00:00:00Z", points=5)
    boards.change(8, at=at(3), by="erin", **{"System.State": "Active"})
    boards.change(8, at=at(4), by="erin", **{"System.State": "Resolved",
                                              "System.AssignedTo": ident("frank")})
    boards.add(9, title="Dropped", created=at(2))
    boards.change(9, at=at(5), by="grace", **{"System.State": "Removed"})
    (page,) = fetch(boards)
    items = {i.key: i for i in page.items}
    card = items["boards#8"]
    assert (card.status, card.status_category) == ("Resolved", StatusCategory.IN_PROGRESS)
    assert card.parent == "boards#7" and card.labels == ("pci", "web")
    assert card.fields == {"area_path": "Website\\Payments", "iteration_path": "Website\\Sprint 4"}
    assert card.due == datetime(2026, 10, 1, tzinfo=UTC) and card.points == 5.0
    assert card.assignee == "frank@northwind.example"
    assert card.reporter == "grace@northwind.example"
    assert card.item_type == "User Story" and card.flags == ()
    assert card.url == "https://dev.azure.com/northwind/Website/_workitems/edit/8"
    assert items["boards#9"].status_category is StatusCategory.DONE  # Removed: nobody works on it
    assert items["boards#9"].resolved == at(5)
    assert items["boards#7"].status_category is StatusCategory.IN_PROGRESS
    changes = [(c.item_key, c.to_status, c.to_category, c.at, c.author) for c in page.changes]
    assert changes == [
        ("boards#8", "Active", StatusCategory.IN_PROGRESS, at(3), "erin@northwind.example"),
        ("boards#8", "Resolved", StatusCategory.IN_PROGRESS, at(4), "erin@northwind.example"),
        ("boards#9", "Removed", StatusCategory.DONE, at(5), "grace@northwind.example"),
    ]
    handed = [(a.item_key, a.from_account, a.to_account, a.at) for a in page.assignments]
    assert handed == [("boards#8", None, "erin@northwind.example", at(2)),
                      ("boards#8", "erin@northwind.example", "frank@northwind.example", at(4))]
    accounts = {a.account_id: a for a in page.accounts}
    assert accounts["frank@northwind.example"].email == "frank@northwind.example"
    assert accounts["frank@northwind.example"].display_name == "Frank"
    # One states request per work item type, whatever the number of items.
    kinds = sorted(r.url.path.split("/")[-2] for r in boards.calls("states"))
    assert kinds == ["Epic", "User%20Story"] or kinds == ["Epic", "User Story"]


def test_an_unknown_state_is_flagged_not_guessed(boards: FakeAzureDevops) -> None:
    boards.add(3, title="Custom", created=at(1))
    boards.change(3, at=at(2), by="erin", **{"System.State": "Waiting for legal"})
    (page,) = fetch(boards)
    (item,) = page.items
    assert item.status_category is StatusCategory.IN_PROGRESS
    assert "unknown_state:User Story/Waiting for legal" in item.flags


def test_long_comment_threads_follow_the_continuation_token(boards: FakeAzureDevops) -> None:
    boards.add(4, title="Chatty", created=at(1))
    for n in range(205):
        boards.comment(4, at=at(2) + timedelta(minutes=n), by="alice", text=f"note {n}")
    (page,) = fetch(boards)
    assert [c.body for c in page.comments] == [f"note {n}" for n in range(205)]
    calls = boards.calls("comments")
    assert len(calls) == 2 and "continuationToken" in calls[1].url.params
    # 206 revisions: the updates are paged by $top/$skip too.
    assert [r.url.params["$skip"] for r in boards.calls("updates")] == ["0", "200"]


def test_a_sign_in_page_instead_of_the_api_is_a_refused_token(boards: FakeAzureDevops) -> None:
    boards.add(1, title="t", created=at(1))
    connector = boards.connector()
    connector.api.headers.pop("Authorization")
    with pytest.raises(AuthError) as raised:
        list(connector.fetch(EVERYTHING))
    assert "sign-in page" in str(raised.value) and "boards" in str(raised.value)


def test_a_429_waits_for_retry_after(boards: FakeAzureDevops) -> None:
    boards.add(1, title="t", created=at(1))
    boards.fail_next(429, retry_after="7")
    (page,) = fetch(boards)
    assert len(page.items) == 1
    assert boards.sleeps and boards.sleeps[0] >= 7


def test_a_429_without_retry_after_waits_until_the_reset(boards: FakeAzureDevops) -> None:
    boards.add(1, title="t", created=at(1))
    boards.fail_next(429)  # X-RateLimit-Reset is 30 s ahead
    fetch(boards)
    assert boards.sleeps and boards.sleeps[0] >= 30


def test_a_spent_budget_or_a_server_delay_slows_the_next_request(
        boards: FakeAzureDevops) -> None:
    boards.add(1, title="t", created=at(1))
    boards.rate_headers = {"x-ratelimit-resource": "ATCPU", "x-ratelimit-delay": "2.5",
                           "x-ratelimit-limit": "200", "x-ratelimit-remaining": "10",
                           "x-ratelimit-reset": str(int(boards.now) + 100)}
    fetch(boards)
    assert boards.sleeps and min(boards.sleeps) >= 2.5
    boards.sleeps.clear()
    boards.rate_headers["x-ratelimit-remaining"] = "0"
    boards.rate_headers["x-ratelimit-reset"] = str(int(boards.now) + 100)
    boards.rate_headers.pop("x-ratelimit-delay")
    fetch(boards)
    assert boards.sleeps and boards.sleeps[0] >= 99


def test_reconcile_lists_every_item_in_scope(boards: FakeAzureDevops) -> None:
    boards.seed(make_items(5))
    del boards.items[4]  # deleted (or moved to another project) since
    connector = boards.connector()
    try:
        assert connector.reconcile() == {f"boards#{n}" for n in (1, 2, 3, 5)}
    finally:
        connector.close()


# -- selectors ----------------------------------------------------------------------------

def test_a_wiql_selector_is_anded_with_the_scope_and_its_values_are_quoted() -> None:
    fake = FakeAzureDevops(area_path="Website\\O'Brien team",
                           scope="[System.WorkItemType] <> 'Epic'")
    with fake.router:
        fake.add(1, title="a", created=at(1), area="Website\\O'Brien team", tags=["legal"])
        fake.add(2, title="b", created=at(1), area="Website\\O'Brien team\\Sub", tags=["Legal"])
        fake.add(3, title="c", created=at(1), area="Website\\Other", tags=["legal"])
        fake.add(4, title="d", created=at(1), area="Website\\O'Brien team", kind="Epic",
                 tags=["legal"])
        fake.add(5, title="e", created=at(1), area="Website\\O'Brien team")
        fake.change(5, at=at(2), by="x", **{"System.State": "Active"})
        connector = fake.connector()
        try:
            chosen = connector.resolve({"wiql": "[System.State] = 'New'", "tags": ["legal"],
                                        "iteration_path": "Website"})
            assert connector.resolve({"tags": ["legal"]}) is None  # matched on stored items
        finally:
            connector.close()
    assert chosen == {"boards#1", "boards#2"}
    query = json.loads(fake.calls("wiql")[0].content)["query"]
    assert ("WHERE [System.TeamProject] = 'Website' AND [System.AreaPath] UNDER "
            "'Website\\O''Brien team' AND ([System.WorkItemType] <> 'Epic') AND "
            "([System.State] = 'New') AND [System.IterationPath] UNDER 'Website' AND "
            "([System.Tags] CONTAINS 'legal')") in query


@pytest.mark.parametrize("condition", [
    "[System.State] = 'New') OR ([System.TeamProject] <> 'x'",
    "[System.State] = 'New' ORDER BY [System.Id]",
    "[System.Title] = 'it''s",
    "[System.State] = 'New'; SELECT",
])
def test_a_wiql_that_could_widen_the_query_is_refused(boards: FakeAzureDevops,
                                                      condition: str) -> None:
    connector = boards.connector()
    with pytest.raises(FatalSourceError) as raised:
        connector.resolve({"wiql": condition})
    assert "cannot be used" in str(raised.value)
    assert not boards.requests


def test_a_quote_in_a_value_stays_inside_its_literal() -> None:
    assert quoted("Website\\O'Brien") == "'Website\\O''Brien'"
    assert wiql_problem("[System.Title] = 'it''s fine' AND ([System.Id] > 3)") is None
    assert wiql_problem("[System.Title] = ')'") is None


# -- stratmap push -----------------------------------------------------------------------

def push_target(number: int, due: date | None, *, account: str | None = None) -> Target:
    return Target(milestone=f"web.m{number}", criteria={"parent": str(number)}, due=due,
                  owner="bob" if account else None, owner_account=account)


@pytest.fixture
def epics(boards: FakeAzureDevops) -> FakeAzureDevops:
    boards.add(10, title="Launch", created=at(1), kind="Epic", assignee="alice",
               target="2026-09-24T00:00:00Z")
    boards.add(11, title="Checkout", created=at(1), kind="Feature")
    return boards


def test_push_check_reads_the_containers_in_one_batch_and_writes_nothing(
        epics: FakeAzureDevops) -> None:
    connector = epics.connector()
    assert isinstance(connector, Pusher)
    found = connector.check([
        push_target(10, date(2026, 10, 1), account="bob@northwind.example"),
        push_target(11, date(2026, 11, 2)),
        push_target(12, date(2026, 11, 2)),
    ])
    connector.close()
    assert [r.method for r in epics.requests] == ["POST"]
    assert json.loads(epics.requests[0].content)["ids"] == [10, 11, 12]
    assert [(d.container, d.field, d.tracker, d.plan, d.ref) for d in found.differences] == [
        ("Epic 10", "due", "2026-09-24", "2026-10-01", "10@1"),
        ("Epic 10", "assignee", "Alice", "bob@northwind.example", "10@1"),
        ("Feature 11", "due", None, "2026-11-02", "11@1"),
    ]
    assert len(found.missing) == 1 and "work item 12" in found.missing[0]


def test_push_apply_writes_json_patch_guarded_by_the_revision(epics: FakeAzureDevops) -> None:
    connector = epics.connector()
    found = connector.check([push_target(10, date(2026, 10, 1),
                                         account="bob@northwind.example")])
    for difference in found.differences:
        connector.apply(difference)
    connector.close()
    edits = epics.edits()
    assert [path for _, path, _ in edits] == ["/northwind/Website/_apis/wit/workitems/10"] * 2
    assert edits[0][2] == [
        {"op": "test", "path": "/rev", "value": 1},
        {"op": "add", "path": "/fields/Microsoft.VSTS.Scheduling.TargetDate",
         "value": "2026-10-01T00:00:00Z"}]
    # The second field is guarded by the revision the first write answered.
    assert edits[1][2][0] == {"op": "test", "path": "/rev", "value": 2}
    patches = [r for r in epics.requests if r.method == "PATCH"]
    assert {r.headers["content-type"] for r in patches} == {"application/json-patch+json"}
    fields = epics.items[10]["fields"]
    assert fields["Microsoft.VSTS.Scheduling.TargetDate"] == "2026-10-01T00:00:00Z"
    assert fields["System.AssignedTo"]["uniqueName"] == "bob@northwind.example"


def test_push_apply_never_overwrites_an_edit_made_since_the_check(
        epics: FakeAzureDevops) -> None:
    connector = epics.connector()
    (difference,) = connector.check([push_target(10, date(2026, 10, 1))]).differences
    epics.change(10, at=at(9), by="carol",
                 **{"Microsoft.VSTS.Scheduling.TargetDate": "2026-12-24T00:00:00Z"})
    with pytest.raises(RevisionMoved) as raised:
        connector.apply(difference)
    connector.close()
    assert "changed since it was read" in str(raised.value) and "HTTP 412" in str(raised.value)
    assert epics.items[10]["fields"]["Microsoft.VSTS.Scheduling.TargetDate"] == (
        "2026-12-24T00:00:00Z")


def test_push_apply_refused_for_the_token_says_what_it_needs(epics: FakeAzureDevops) -> None:
    connector = epics.connector()
    (difference,) = connector.check([push_target(11, date(2026, 10, 1))]).differences
    epics.fail_next(403)
    with pytest.raises(AuthError) as raised:
        connector.apply(difference)
    connector.close()
    assert "Read & write" in str(raised.value)


# -- a plan over Azure DevOps -------------------------------------------------------------

PLAN = """\
version: 1
name: Boards plan
leader: alice
people:
  alice: {name: Alice, senior: true, email: alice@northwind.example}
  bob: {name: Bob, accounts: {boards: bob@northwind.example}}
sources:
  boards:
    kind: azure_devops
    url: https://dev.azure.com/northwind
    project: Website
    token: env:STRATMAP_TEST_ADO_PAT
defaults: {stall_after: 30d, inactive_after: 30d}
goals:
  - id: web
    title: The website
    owner: alice
    milestones:
      - id: launch         # overdue: two of three stories open after the due date
        title: Launch
        owner: bob
        start: 2026-09-01
        due: 2026-10-01
        work: [{source: boards, parent: 10}]
      - id: legal          # a WIQL selector: only dan (not senior) has commented
        title: Legal review
        owner: alice
        start: 2026-09-01
        due: 2026-12-01
        feedback: {from: seniors, every: 14d}
        work: [{source: boards, wiql: "[System.Tags] CONTAINS 'legal'"}]
      - id: payments       # done: every story under the area path is closed
        title: Payments
        owner: bob
        start: 2026-09-01
        due: 2026-12-01
        work: [{source: boards, area_path: "Website\\\\Payments"}]
"""


def test_a_plan_over_azure_devops_gives_the_findings_the_rules_imply(
        boards: FakeAzureDevops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    as_of = datetime(2026, 10, 15, 9, tzinfo=UTC)
    boards.add(10, title="Launch", created=at(1), kind="Epic", state="Active")
    for n in (11, 12, 13):
        boards.add(n, title=f"Story {n}", created=at(2), assignee="bob", parent=10)
    boards.change(11, at=at(20), by="bob", **{"System.State": "Closed"})
    boards.change(12, at=at(24), by="bob", **{"System.State": "Active"})
    boards.add(20, title="Privacy policy", created=at(3), assignee="alice", tags=["legal"])
    boards.change(20, at=as_of - timedelta(days=2), by="alice", **{"System.State": "Active"})
    boards.comment(20, at=as_of - timedelta(days=1), by="dan", text="waiting on counsel")
    for n in (30, 31):
        boards.add(n, title=f"Card {n}", created=at(4), area="Website\\Payments",
                   assignee="bob")
        boards.change(n, at=at(10), by="bob", **{"System.State": "Closed"})
    boards.add(40, title="Stray bug nobody planned", created=at(5))
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    monkeypatch.setenv("STRATMAP_TEST_ADO_PAT", boards.token)
    out = tmp_path / "report.json"
    code = cli.main(["run", str(plan), "--db", f"sqlite:///{tmp_path / 's.db'}", "--as-of",
                     as_of.isoformat(), "--json", str(out), "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())
    found = sorted((f["kind"], f["milestone"] or f["goal"] or "", f["item"] or "", f["person"]
                    or "") for f in report["findings"])
    assert found == sorted([
        ("overdue", "web.launch", "", "bob"),  # its owner must act
        ("missing_feedback", "web.legal", "", "alice"),
        ("unmapped_work", "", "boards#40", "alice"),
    ])
    milestones = {m["id"]: m for m in report["goals"][0]["milestones"]}
    assert milestones["web.launch"]["items"] == {**milestones["web.launch"]["items"],
                                                 "total": 3, "done": 1}  # the Epic: context
    assert milestones["web.legal"]["items"]["total"] == 1  # from Azure DevOps' WIQL answer
    assert milestones["web.payments"]["status"] == "done"
    secret = boards.token.encode()
    assert all(secret not in f.read_bytes() for f in tmp_path.glob("s.db*"))
    assert secret not in out.read_bytes()


def test_the_plan_file_refuses_a_wiql_that_could_widen_the_query_at_its_line() -> None:
    text = PLAN.replace("CONTAINS 'legal'\"", "CONTAINS 'legal') OR (1 = 1\"").replace(
        "token: env:STRATMAP_TEST_ADO_PAT\n",
        "token: env:STRATMAP_TEST_ADO_PAT\n    scope: '[System.Id] > 0 ORDER BY x'\n")
    with pytest.raises(PlanError) as raised:
        parse_plan(text, file="plan.yaml")
    found = sorted((p.line, str(p)) for p in raised.value.problems)
    lines = text.splitlines()
    scope = next(n for n, line in enumerate(lines, 1) if "scope:" in line)
    wiql = next(n for n, line in enumerate(lines, 1) if "wiql:" in line)
    assert [line for line, _ in found] == [scope, wiql]
    assert "the scope WIQL cannot be used: it has its own ORDER BY clause" in found[0][1]
    assert "this WIQL cannot be used: it closes a parenthesis it did not open" in found[1][1]
    assert found[0][1].startswith(f"plan.yaml:{scope}:")


def test_a_plan_with_azure_devops_selectors_parses_and_checks_their_names() -> None:
    plan = parse_plan(PLAN, file="plan.yaml")
    (selector,) = plan.goals[0].milestones[0].work
    assert selector.criteria() == {"parent": "10"}
    with pytest.raises(PlanError) as raised:
        parse_plan(PLAN.replace("parent: 10", "epic: 10"), file="plan.yaml")
    assert "'epic' does not select azure_devops items" in str(raised.value)


def test_push_through_the_cli_sets_the_epics_target_date_and_owner(
        boards: FakeAzureDevops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    boards.add(10, title="Launch", created=at(1), kind="Epic", assignee="alice",
               target="2026-09-24T00:00:00Z")
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    monkeypatch.setenv("STRATMAP_TEST_ADO_PAT", boards.token)
    assert cli.main(["push", str(plan)]) == 0
    assert not boards.edits()  # a dry run by default
    assert cli.main(["push", str(plan), "--check"]) == cli.EXIT_FINDINGS
    assert cli.main(["push", str(plan), "--apply"]) == 0
    assert [ops[1]["path"] for _, _, ops in boards.edits()] == [
        "/fields/Microsoft.VSTS.Scheduling.TargetDate", "/fields/System.AssignedTo"]
    fields = boards.items[10]["fields"]
    assert fields["Microsoft.VSTS.Scheduling.TargetDate"] == "2026-10-01T00:00:00Z"
    assert fields["System.AssignedTo"]["uniqueName"] == "bob@northwind.example"
    assert cli.main(["push", str(plan), "--check"]) == 0
    out = capsys.readouterr().out
    assert "Epic 10" in out and boards.token not in out


def test_a_comment_id_is_read_from_id_or_the_older_comment_id(boards: FakeAzureDevops) -> None:
    boards.add(5, title="t", created=at(1))
    boards.comment(5, at=at(2), by="alice", text="new shape")
    boards.comment(5, at=at(3), by="alice", text="old shape")
    old = boards.items[5]["comments"][1]
    old["commentId"] = old.pop("id")
    (page,) = fetch(boards)
    assert [(c.comment_id, c.body) for c in page.comments] == [
        (str(boards.items[5]["comments"][0]["id"]), "new shape"),
        (str(old["commentId"]), "old shape")]


def test_the_overlap_items_the_store_holds_unchanged_are_not_read_again(
        boards: FakeAzureDevops) -> None:
    boards.seed(make_items(4))
    first = fetch(boards)
    stored = {i.key: i.updated for p in first for i in p.items}
    since = min(stored.values())
    boards.requests.clear()
    boards.transition("ITEM-2", at=T0 + timedelta(days=20), author="dev2", to="Done")
    again = fetch(boards, Window(since=since, until=EVERYTHING.until, stored=stored))
    assert [i.key for p in again for i in p.items] == ["boards#2"]
    assert [r.url.path.split("/")[-2] for r in boards.calls("updates")] == ["2"]
