"""Slips and blocks from the trackers (issue 17): a Jira epic's ``duedate`` changelog, a
GitHub or GitLab milestone's due date seen between syncs, ``stratmap push`` told from a slip,
and blocked-by from Jira issue links, GitHub dependencies and GitLab links; through
``stratmap run`` against the Jira Cloud and Data Center and the GitLab fakes and through the
pipeline against the GitHub fake, each finding only where the rule implies it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratmap.connectors.base import Window
from stratmap.connectors.jira.payloads import Site, normalize_issue
from stratmap.flows import cli
from stratmap.flows.pipeline import judge_plan, sync_plan_source
from stratmap.judgement.slips import PUSH_ECHO_AFTER, PUSH_ECHO_BEFORE, tracker_due_changes
from stratmap.models.planfile import load_plan
from stratmap.models.records import TrackerDue
from stratmap.models.store import Store, load_tracker_dues, record_push, write_tracker_dues
from tests.fakes.github_api import FakeGithub, activated, comment, issue
from tests.fakes.gitlab_api import FakeGitlab
from tests.fakes.jira_server import FakeJira

AS_OF = datetime(2027, 3, 1, 9, tzinfo=UTC)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


# -- the engine: which tracker changes are the milestone's, and which are a push -----------------

MAPPING_PLAN = """\
version: 1
name: Map
leader: alice
people: {alice: {name: Alice}}
sources:
  jira: {kind: jira, url: "https://x.atlassian.net", email: a@x.example, token: env:T,
         scope: project = WEB}
  site: {kind: github, repo: northwind/website}
goals:
  - id: g
    title: G
    owner: alice
    milestones:
      - {id: epic, title: E, owner: alice, due: 2027-03-01, work: [{source: jira, epic: WEB-1}]}
      - {id: jql, title: J, owner: alice, work: [{source: jira, jql: "key = WEB-1"}]}
      - {id: site, title: S, owner: alice, work: [{source: site, milestone: v2 launch}]}
"""


def due(container: str, at: datetime, before: str | None, after: str | None, *,
        origin: str = "history", source: str = "jira") -> TrackerDue:
    return TrackerDue(source=source, container=container, at=at, origin=origin,  # type: ignore[arg-type]
                      from_due=before, to_due=after)


def test_a_container_change_is_the_slip_of_each_milestone_naming_exactly_it(
        tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(MAPPING_PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    log = tracker_due_changes(plan, [
        due("WEB-1", ago(9), "2027-02-01", "2027-02-15"),
        due("WEB-2", ago(8), "2027-02-01", "2027-02-15"),         # no milestone names it
        due("v2 launch", ago(7), "2027-04-01", "2027-04-20", origin="seen", source="site"),
        due("WEB-1", ago(6), "2027-04-01", "2027-04-20", source="site"),  # another source
    ])
    # The JQL selector chooses items, not a date: only the epic's milestone logs it.
    assert [(c.milestone, c.where, c.from_due, c.to_due, c.counted) for c in log] == [
        ("g.epic", "jira:WEB-1", "2027-02-01", "2027-02-15", True),
        ("g.site", "site:v2 launch", "2027-04-01", "2027-04-20", True)]


def test_a_push_is_logged_not_counted_and_its_changelog_echo_is_left_out(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(MAPPING_PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    pushed = ago(5)
    log = tracker_due_changes(plan, [
        due("WEB-1", pushed, "2027-02-01", "2027-03-01", origin="push"),
        due("WEB-1", pushed + 2 * 60 * timedelta(seconds=1), "2027-02-01", "2027-03-01"),
        # The same date again by hand, well after the push, and a slip after that.
        due("WEB-1", pushed + 2 * HOUR, "2027-02-10", "2027-03-01"),
        due("WEB-1", pushed + 3 * HOUR, "2027-03-01", "2027-03-20"),
    ])
    assert [(c.where, c.to_due, c.counted) for c in log] == [
        ("push:jira:WEB-1", "2027-03-01", False),
        ("jira:WEB-1", "2027-03-01", True),
        ("jira:WEB-1", "2027-03-20", True)]
    # Without the push record the echo is a change of the tracker like any other.
    assert len(tracker_due_changes(plan, [
        due("WEB-1", pushed + 2 * 60 * timedelta(seconds=1), "2027-02-01", "2027-03-01")])) == 1


@pytest.mark.parametrize(("offset", "echo"), [
    (-PUSH_ECHO_BEFORE - SECOND, False), (-PUSH_ECHO_BEFORE, True), (PUSH_ECHO_AFTER, True),
    (PUSH_ECHO_AFTER + SECOND, False)])
def test_the_push_echo_window_at_its_edges(offset: timedelta, echo: bool,
                                           tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(MAPPING_PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    pushed = ago(5)
    push = due("WEB-1", pushed, "2027-02-01", "2027-03-01", origin="push")
    change = due("WEB-1", pushed + offset, "2027-02-01", "2027-03-01")
    other_date = change.model_copy(update={"to_due": "2027-03-02"})
    assert len(tracker_due_changes(plan, [push, change])) == (1 if echo else 2)
    assert len(tracker_due_changes(plan, [push, other_date])) == 2  # not the pushed date


def test_seen_due_dates_are_recorded_by_content_after_a_push(store: Store) -> None:
    seen = [due("v2 launch", ago(10), None, "2027-04-01", origin="seen", source="site"),
            due("v3", ago(10), None, None, origin="seen", source="site")]
    with store.transaction() as connection:
        assert [(d.container, d.from_due, d.to_due) for d in
                write_tracker_dues(connection, seen)] == [("v2 launch", None, "2027-04-01")]
        assert write_tracker_dues(connection, [d.model_copy(update={"at": ago(9)})
                                               for d in seen]) == []
    record_push(store, due("v2 launch", ago(8), "2027-04-01", "2027-05-01", source="site"))
    with store.transaction() as connection:
        # The date the push wrote is no change when the next sync sees it...
        assert write_tracker_dues(connection, [seen[0].model_copy(
            update={"at": ago(7), "to_due": "2027-05-01"})]) == []
        # ... a later move is, from the pushed date.
        (moved,) = write_tracker_dues(connection, [seen[0].model_copy(
            update={"at": ago(6), "to_due": "2027-05-20"})])
    assert (moved.from_due, moved.to_due) == ("2027-05-01", "2027-05-20")
    assert [d.origin for d in load_tracker_dues(store, ["site"])] == ["seen", "push", "seen"]
    assert load_tracker_dues(store, ["jira"]) == ()
    # Only the containers a plan names, when it says which.
    assert len(load_tracker_dues(store, ["site"], containers=[("site", "v2 launch")])) == 3
    assert load_tracker_dues(store, ["site"], containers=[("site", "v3"),
                                                          ("jira", "v2 launch")]) == ()


def test_duedate_changelog_items_of_cloud_and_data_center() -> None:
    cloud = {"field": "duedate", "fieldtype": "jira", "fieldId": "duedate",
             "from": "2027-01-15", "fromString": "2027-01-15 00:00:00.0",
             "to": "2027-02-01", "toString": "2027-02-01 00:00:00.0"}
    center = {k: v for k, v in cloud.items() if k != "fieldId"}
    cleared = {**center, "to": None, "toString": None}
    for entry, after in ((cloud, "2027-02-01"), (center, "2027-02-01"), (cleared, None)):
        issue_ = {"key": "WEB-1", "fields": {"summary": "e", "status": {
            "name": "To Do", "statusCategory": {"key": "new"}}, "updated": "2027-01-20T10:00:00.000+0000"}}
        history = {"id": "1", "created": "2027-01-20T10:00:00.000+0000", "items": [entry]}
        found = normalize_issue("jira", issue_, Site(cloud=True, base_url="https://x"),
                                histories=[history], comments=[])
        assert [(d.container, d.from_due, d.to_due, d.origin) for d in found.dues] == [
            ("WEB-1", "2027-01-15", after, "history")]


# -- through `stratmap run`: Jira Cloud and Data Center ------------------------------------------

JIRA_PLAN = """\
version: 1
name: Jira slips
leader: alice
people:
  alice: {{name: Alice, senior: true, accounts: {{jira: "{alice}"}}}}
  bob: {{name: Bob, accounts: {{jira: "{bob}"}}}}
  dan: {{name: Dan, accounts: {{jira: "{dan}"}}}}
sources:
  jira:
    kind: jira
    url: "{url}"
    {auth}
    token: env:STRATMAP_TEST_JIRA_TOKEN
    scope: project = WEB
defaults: {{max_slips: 1, max_slip_total: 60d, stall_after: 14d}}
goals:
  - id: web
    title: The website
    owner: alice
    milestones:
      - id: build          # its epic moved later twice: date_slipped
        title: Build it
        owner: bob
        start: 2027-01-01
        due: 2027-06-30
        work: [{{source: jira, epic: WEB-1}}]
      - id: shop           # its epic moved later once: within max_slips, no finding
        title: Shop
        owner: alice
        start: 2027-01-01
        due: 2027-06-30
        work: [{{source: jira, epic: WEB-5}}]
"""


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest) -> Iterator[tuple[FakeJira, dict[str, str]]]:
    cloud = request.param == "cloud"
    users = ({"alice": "557058:alice", "bob": "557058:bob", "dan": "557058:dan"} if cloud
             else {"alice": "alice", "bob": "bob", "dan": "dan"})
    with FakeJira(deployment=request.param) as fake:
        for handle, account in users.items():
            fake.add_user(account, handle.title())
        alice, bob, dan = users["alice"], users["bob"], users["dan"]

        def child(key: str, epic: str, **fields: Any) -> None:
            fake.add_issue(key, created=ago(70), parent=epic if cloud else None,
                           epic=None if cloud else epic, **fields)

        for epic in ("WEB-1", "WEB-5"):
            fake.add_issue(epic, summary=f"Epic {epic}", issuetype="Epic", created=ago(80),
                           status="In Progress", duedate=date(2027, 4, 1))
        child("WEB-2", "WEB-1", assignee=bob)
        child("WEB-3", "WEB-1", assignee=bob)
        child("WEB-6", "WEB-5", assignee=alice)
        for key in ("WEB-2", "WEB-3", "WEB-6"):
            fake.transition(key, "In Progress", at=ago(3), author=bob)
        # WEB-1: set (where its log starts), then later twice; WEB-5 later once.
        fake.edit("WEB-1", at=ago(60), author=bob, duedate=date(2027, 4, 15))
        fake.edit("WEB-1", at=ago(30), author=bob, duedate=date(2027, 5, 1))
        fake.edit("WEB-5", at=ago(30), author=alice, duedate=date(2027, 4, 20))
        # Blockers outside both milestones: WEB-40 (dan's) unmoved for 40 days blocks WEB-2;
        # WEB-41 (dan's) moved 2 days ago blocks WEB-3: not stalled, no finding.
        fake.add_issue("WEB-40", summary="API from the platform team", created=ago(50),
                       assignee=dan)
        fake.transition("WEB-40", "In Progress", at=ago(40), author=dan)
        fake.add_issue("WEB-41", summary="Fonts from design", created=ago(50), assignee=dan)
        fake.transition("WEB-41", "In Progress", at=ago(2), author=dan)
        fake.block("WEB-2", by="WEB-40", at=ago(20), author=bob)
        fake.block("WEB-3", by="WEB-41", at=ago(20), author=bob)
        yield fake, users


def test_jira_epic_slips_and_blocks_through_stratmap_run(
        jira: tuple[FakeJira, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake, users = jira
    auth = f"email: {fake.email}" if fake.cloud else "deployment: datacenter"
    plan = tmp_path / "plan.yaml"
    plan.write_text(JIRA_PLAN.format(url=fake.url, auth=auth, **users))
    monkeypatch.setenv("STRATMAP_TEST_JIRA_TOKEN", fake.token)
    out = tmp_path / "report.json"
    code = cli.main(["run", str(plan), "--db", f"sqlite:///{tmp_path / 's.db'}", "--as-of",
                     AS_OF.isoformat(), "--json", str(out), "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())

    tracker_log = [(e["milestone"], e["where"], e["from_due"], e["to_due"], e["slip_days"])
                   for e in report["slip_log"] if e["where"] != "plan"]
    assert tracker_log == [
        ("web.build", "jira:WEB-1", "2027-04-01", "2027-04-15", 14.0),
        ("web.build", "jira:WEB-1", "2027-04-15", "2027-05-01", 16.0),
        ("web.shop", "jira:WEB-5", "2027-04-01", "2027-04-20", 19.0)]
    [slipped] = [f for f in report["findings"] if f["kind"] == "date_slipped"]
    assert (slipped["milestone"], slipped["person"]) == ("web.build", "bob")
    assert slipped["evidence"]["slips"] == 2 and slipped["evidence"]["due"] == "2027-05-01"
    assert [e["where"] for e in slipped["evidence"]["log"]] == ["jira:WEB-1", "jira:WEB-1"]

    [blocked] = [f for f in report["findings"] if f["kind"] == "blocked_by_other_team"]
    assert blocked["milestone"] == "web.build"
    assert (blocked["evidence"]["blocked"], blocked["evidence"]["blocker"],
            blocked["evidence"]["blocker_assignee"]) == ("WEB-2", "WEB-40", "dan")
    assert "WEB-40" in blocked["message"] and "Dan (dan)" in blocked["message"]


PUSH_PLAN = """\
version: 1
name: Pushed
leader: alice
people: {{alice: {{name: Alice}}}}
sources:
  jira: {{kind: jira, url: "{url}", {auth} token: env:STRATMAP_TEST_JIRA_TOKEN,
          scope: project = WEB}}
defaults: {{max_slips: 0}}
goals:
  - id: web
    title: W
    owner: alice
    milestones:
      - {{id: build, title: B, owner: alice, due: {due}, work: [{{source: jira, epic: WEB-1}}]}}
"""


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_push_is_the_plans_change_not_a_slip_of_the_epic(
        deployment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    with FakeJira(deployment=deployment) as fake:  # type: ignore[arg-type]
        fake.add_issue("WEB-1", summary="Epic", issuetype="Epic", status="In Progress",
                       created=now - timedelta(days=30), duedate=date(2027, 4, 1))
        fake.add_issue("WEB-2", created=now - timedelta(days=30),
                       parent="WEB-1" if fake.cloud else None,
                       epic=None if fake.cloud else "WEB-1")
        fake.edit("WEB-1", at=now - timedelta(days=20), duedate=date(2027, 4, 10))
        auth = f"email: {fake.email}," if fake.cloud else "deployment: datacenter,"
        plan = tmp_path / "plan.yaml"
        monkeypatch.setenv("STRATMAP_TEST_JIRA_TOKEN", fake.token)
        monkeypatch.setenv("STRATMAP_DB", f"sqlite:///{tmp_path / 's.db'}")
        out = tmp_path / "report.json"

        def run(due: str) -> dict[str, Any]:
            plan.write_text(PUSH_PLAN.format(url=fake.url, auth=auth, due=due))
            assert cli.main(["run", str(plan), "--as-of", (now + HOUR).isoformat(),
                             "--json", str(out), "--quiet"]) in (0, 1)
            data: dict[str, Any] = json.loads(out.read_text())
            return data

        run("2027-04-10")
        # The plan moves the date, and pushes it to the epic: one change, the plan's.
        plan.write_text(PUSH_PLAN.format(url=fake.url, auth=auth, due="2027-05-01"))
        assert cli.main(["push", str(plan), "--apply"]) == 0
        assert fake.issues["WEB-1"].duedate == date(2027, 5, 1)
        report = run("2027-05-01")
        log = [(e["where"], e["to_due"], e["slip_days"]) for e in report["slip_log"]]
        # The push (logged at its moment), then the plan's change (seen by the next run).
        assert log == [("jira:WEB-1", "2027-04-10", 9.0),
                       ("push:jira:WEB-1", "2027-05-01", None),
                       ("plan", "2027-05-01", 21.0)]
        [slipped] = [f for f in report["findings"] if f["kind"] == "date_slipped"]
        # Two moves later (the epic's own, then the plan's), not three: the push's
        # changelog entry is the plan's change arriving in the tracker.
        assert slipped["evidence"]["slips"] == 2


# -- through the pipeline: GitHub ------------------------------------------------------------------

GITHUB_PLAN = """\
version: 1
name: GitHub slips
leader: alice
people:
  alice: {name: Alice, senior: true, accounts: {site: alice-s}}
  bob: {name: Bob, accounts: {site: bob-gh}}
  dan: {name: Dan, accounts: {site: dan-gh}}
sources:
  site: {kind: github, repo: northwind/website, in_progress_labels: [in progress]}
defaults: {max_slips: 1, stall_after: 14d}
goals:
  - id: brand
    title: Brand
    owner: alice
    milestones:
      - {id: launch, title: Launch, owner: bob, start: 2026-09-01, due: 2026-12-01,
         work: [{source: site, milestone: v2 launch}]}
      - {id: later, title: Later, owner: alice, start: 2026-09-01, due: 2026-12-01,
         work: [{source: site, milestone: v3}]}
"""
GH0 = datetime(2026, 10, 1, tzinfo=UTC)


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub(name="site")
    launch = fake.add_milestone(3, "v2 launch", due_on="2026-11-01T07:00:00Z")
    later = fake.add_milestone(4, "v3", due_on="2026-11-01T07:00:00Z")
    fake.add(issue(1, title="Checkout", created=GH0, updated=GH0 + timedelta(days=1),
                   assignees=["bob-gh"], milestone_=launch, labels=["in progress"]),
             [comment(21, 1, author="bob-gh", at=GH0 + timedelta(days=1), body="started")])
    fake.add(issue(2, title="Search", created=GH0, updated=GH0, assignees=["bob-gh"],
                   milestone_=launch))
    fake.add(issue(3, title="Shipping", created=GH0, updated=GH0, assignees=["alice-s"],
                   milestone_=later))
    # Outside both milestones: #10 (dan's) never moves; #11 (dan's) is closed.
    fake.add(issue(10, title="Payments API", created=GH0 - timedelta(days=30),
                   updated=GH0 - timedelta(days=30), assignees=["dan-gh"]))
    fake.add(issue(11, title="Old API", created=GH0 - timedelta(days=30),
                   updated=GH0 - timedelta(days=29), state="closed",
                   closed_at=GH0 - timedelta(days=29), assignees=["dan-gh"]))
    yield from activated(fake)


def test_github_milestone_slips_and_dependencies_through_the_pipeline(
        tmp_path: Path, store: Store, github: FakeGithub) -> None:
    (tmp_path / "plan.yaml").write_text(GITHUB_PLAN)
    plan = load_plan(tmp_path / "plan.yaml")
    github.block("site-1", by="site-10", at=GH0 + timedelta(days=2))
    github.block("site-2", by="site-11", at=GH0 + timedelta(days=2))  # closed: no finding

    def sync(day: int) -> None:
        github.now = (GH0 + timedelta(days=day)).timestamp()
        sync_plan_source(plan, "site", store, plan_dir=tmp_path,
                         started=GH0 + timedelta(days=day))

    def move(number: int, due_on: str) -> None:
        github.milestones[number]["due_on"] = due_on

    sync(3)
    move(3, "2026-11-15T08:00:00Z")
    move(4, "2026-11-10T08:00:00Z")
    sync(10)
    sync(11)  # nothing moved: nothing recorded
    move(3, "2026-12-01T08:00:00Z")
    sync(20)
    report = judge_plan(plan, store, as_of=GH0 + timedelta(days=21))

    log = [(e.milestone, e.where, e.from_due, e.to_due, e.slip_days) for e in report.slip_log]
    assert log == [  # by milestone, then time
        ("brand.later", "site:v3", "2026-11-01", "2026-11-10", 9.0),
        ("brand.launch", "site:v2 launch", "2026-11-01", "2026-11-15", 14.0),
        ("brand.launch", "site:v2 launch", "2026-11-15", "2026-12-01", 16.0)]
    slipped = [f for f in report.findings if f.kind.value == "date_slipped"]
    assert [(f.milestone, f.person) for f in slipped] == [("brand.launch", "bob")]

    blocked = [f for f in report.findings if f.kind.value == "blocked_by_other_team"]
    assert [(f.milestone, f.evidence["blocked"], f.evidence["blocker"],
             f.evidence["blocker_assignee"]) for f in blocked] == [
        ("brand.launch", "site#1", "site#10", "dan")]
    # The dependencies were asked for only where the summary counted an open blocker.
    asked = sorted({r.url.path for r in github.requests if "dependencies" in r.url.path})
    assert asked == ["/repos/northwind/website/issues/1/dependencies/blocked_by"]


# -- GitLab: links and milestone due dates read by the connector --------------------------------

def test_gitlab_is_blocked_by_links_and_milestone_dues() -> None:
    fake = FakeGitlab()
    with fake.router:
        from tests.fakes.gitlab_api import issue as gl_issue

        at = datetime(2026, 9, 1, tzinfo=UTC)
        for iid in (1, 2, 3):
            fake.add(gl_issue(iid, title=f"i{iid}", created=at, updated=at))
        fake.block("ITEM-1", by="ITEM-2", at=at + HOUR)
        fake.block("ITEM-3", by="ITEM-1", at=at + HOUR)  # 1 blocks 3: not 1's blocker
        fake.add_milestone(7, "v2 launch", due="2026-10-01")
        fake.add_milestone(8, "v2 launch", due="2026-12-24", group=True)  # the project's wins
        connector = fake.connector()
        pages = list(connector.fetch(Window(since=None, until=at + 2 * HOUR)))
        connector.close()
    items = {i.key: i for p in pages for i in p.items}
    assert items["shop#1"].fields.get("blocked_by") == "shop#2"
    assert "blocked_by" not in items["shop#2"].fields
    assert items["shop#3"].fields.get("blocked_by") == "shop#1"
    dues = [(d.container, d.to_due, d.origin) for p in pages for d in p.dues]
    assert dues == [("v2 launch", "2026-10-01", "seen")]


GITLAB_PLAN = """\
version: 1
name: GitLab slips
leader: alice
people:
  alice: {{name: Alice, senior: true, accounts: {{shop: alice}}}}
  bob: {{name: Bob, accounts: {{shop: bob}}}}
  dan: {{name: Dan, accounts: {{shop: dan}}}}
sources:
  shop: {{kind: gitlab, project: {project}, url: "{host}"}}
defaults: {{max_slips: 1, stall_after: 14d}}
goals:
  - id: shop
    title: Shop
    owner: alice
    milestones:
      - {{id: launch, title: Launch, owner: bob, start: {start}, due: {due},
         work: [{{source: shop, milestone: v2 launch}}]}}
"""


def test_gitlab_milestone_slips_and_blocks_through_stratmap_run(tmp_path: Path) -> None:
    """Three `stratmap run`s against the GitLab fake, the milestone's due date moved
    between them: the slip log shows both moves where they were seen, the milestone has
    slipped more than max_slips, and the open item blocked by another team's unmoved
    issue (an ``is_blocked_by`` link) is a blocked_by_other_team finding."""
    from tests.fakes.gitlab_api import HOST, PROJECT
    from tests.fakes.gitlab_api import issue as gl_issue

    now = datetime.now(UTC).replace(microsecond=0)
    fake = FakeGitlab(now=now)
    launch = fake.add_milestone(3, "v2 launch", due="2027-08-01")
    plan = tmp_path / "plan.yaml"
    plan.write_text(GITLAB_PLAN.format(project=PROJECT, host=HOST,
                                       start=(now - 90 * 24 * HOUR).date(),
                                       due=(now + 365 * 24 * HOUR).date()))
    db = f"sqlite:///{tmp_path / 's.db'}"
    with fake.router:
        created = now - 60 * 24 * HOUR
        fake.add(gl_issue(1, title="Checkout", created=created, updated=created,
                          assignees=["bob"], milestone_=launch))
        fake.add(gl_issue(2, title="Payments API", created=now - 50 * 24 * HOUR,
                          updated=now - 50 * 24 * HOUR, assignees=["dan"]))
        fake.block("ITEM-1", by="ITEM-2", at=now - 20 * 24 * HOUR)

        def run() -> dict[str, Any]:
            out = tmp_path / "report.json"
            assert cli.main(["run", str(plan), "--db", db, "--json", str(out), "--quiet"]) in (
                0, 4)
            return json.loads(out.read_text())

        run()
        launch["due_date"] = "2027-08-15"
        run()
        run()  # nothing moved: nothing recorded
        launch["due_date"] = "2027-09-01"
        report = run()

    log = [(e["milestone"], e["where"], e["from_due"], e["to_due"], e["slip_days"])
           for e in report["slip_log"] if e["where"] != "plan"]
    assert log == [("shop.launch", "shop:v2 launch", "2027-08-01", "2027-08-15", 14.0),
                   ("shop.launch", "shop:v2 launch", "2027-08-15", "2027-09-01", 17.0)]
    [slipped] = [f for f in report["findings"] if f["kind"] == "date_slipped"]
    assert (slipped["milestone"], slipped["person"]) == ("shop.launch", "bob")
    [blocked] = [f for f in report["findings"] if f["kind"] == "blocked_by_other_team"]
    assert (blocked["milestone"], blocked["evidence"]["blocked"],
            blocked["evidence"]["blocker"], blocked["evidence"]["blocker_assignee"]) == (
        "shop.launch", "shop#1", "shop#2", "dan")


def test_a_hostile_milestone_title_in_the_slip_log_is_escaped() -> None:
    from stratmap.publish.html import render as html
    from stratmap.publish.markdown import render as markdown
    from tests.test_slips import judged, moved

    title = "v2 <img src=x onerror=alert(1)> | `x` [a](javascript:1)"
    report = judged(moved("2027-03-01", "2027-03-05", where=f"site:{title}"))
    assert report.slip_log and report.slip_log[0].where == f"site:{title}"
    page = html(report)
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    text = markdown(report)
    row = next(line for line in text.splitlines() if "site:v2" in line)
    assert "<img" not in row and "&lt;img" in row
    assert "\\[a\\](javascript:1)" in row  # no link: its brackets are escaped
    assert row.count(" | ") == 5 and " \\| " in row  # the title's pipe is no new cell
