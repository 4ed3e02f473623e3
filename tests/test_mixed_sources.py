"""One milestone judged from several trackers: a JSON lines export and a GitHub repository;
Jira, GitHub and Azure DevOps."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stratmap.flows.pipeline import judge_plan, sync_plan_source
from stratmap.models.planfile import load_plan
from stratmap.models.store import Store
from tests.fakes.azure_devops_api import FakeAzureDevops
from tests.fakes.github_api import FakeGithub, activated, comment, event, issue, milestone
from tests.fakes.jira_server import FakeJira

PLAN = """\
version: 1
name: Mixed sources
leader: alice
people:
  alice: {name: Alice, senior: true, accounts: {site: alice-s, tracker: alice}}
  bob: {name: Bob, accounts: {site: bob-gh, tracker: bob}}
sources:
  tracker: {kind: jsonl, path: export}
  site: {kind: github, repo: northwind/website, in_progress_labels: [in progress]}
goals:
  - id: brand
    title: Greater online brand presence
    owner: alice
    milestones:
      - id: website
        title: Launch the new website
        owner: bob
        start: 2026-09-01
        due: 2026-10-01
        feedback: {from: seniors, every: 14d}
        work:
          - {source: tracker, milestone: v2 launch}
          - {source: site, milestone: v2 launch}
"""


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 9, day, hour, tzinfo=UTC)


def export_rows() -> list[dict[str, object]]:
    def iso(moment: datetime) -> str:
        return moment.isoformat()

    return [
        {"key": "A-1", "title": "Copy for the landing page", "status": "Done",
         "milestone": "v2 launch", "assignee": "bob", "created": iso(at(2)),
         "updated": iso(at(20)),
         "history": [{"at": iso(at(3)), "author": "bob", "from": "To Do", "to": "In Progress"},
                     {"at": iso(at(20)), "author": "bob", "from": "In Progress",
                      "to": "Done"}]},
        {"key": "A-2", "title": "Legal review", "status": "In Progress",
         "milestone": "v2 launch", "assignee": "bob", "created": iso(at(2)),
         "updated": iso(at(4)),
         "history": [{"at": iso(at(4)), "author": "bob", "from": "To Do",
                      "to": "In Progress"}]},
        {"key": "A-3", "title": "Nobody planned this", "status": "To Do",
         "created": iso(at(6)), "updated": iso(at(6))},
    ]


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub(name="site")
    launch = milestone(3, "v2 launch", due_on=datetime(2026, 10, 1, tzinfo=UTC))
    fake.add(issue(1, title="New navigation", created=at(2), updated=at(25), state="closed",
                   closed_at=at(25), state_reason="completed", labels=["in progress"],
                   assignees=["bob-gh"], milestone_=launch),
             [event(11, "labeled", actor="bob-gh", at=at(5),
                    label={"name": "in progress", "color": "0e8a16"}),
              event(12, "closed", actor="bob-gh", at=at(25), state_reason="completed")])
    fake.add(issue(2, title="Checkout flow", created=at(3), updated=at(28),
                   assignees=["bob-gh"], milestone_=launch, comments=1),
             [comment(21, 2, author="alice-s", at=at(28), body="Ship it")])
    fake.add(issue(3, title="Old site redirect", created=at(4), updated=at(4),
                   milestone_=milestone(4, "v3")))
    fake.add(issue(4, title="Navigation PR", created=at(5), updated=at(26),
                   milestone_=launch, pull_request=True))
    yield from activated(fake)


def test_one_milestone_is_judged_from_an_export_and_github_together(
        tmp_path: Path, store: Store, github: FakeGithub) -> None:
    (tmp_path / "plan.yaml").write_text(PLAN)
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "items.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in export_rows()))
    plan = load_plan(tmp_path / "plan.yaml")
    as_of = datetime(2026, 10, 5, tzinfo=UTC)

    synced = {name: sync_plan_source(plan, name, store, plan_dir=tmp_path, started=as_of)
              for name in plan.sources}
    assert (synced["tracker"].items, synced["site"].items) == (3, 3)  # the PR is dropped
    report = judge_plan(plan, store, as_of=as_of)

    (goal,) = report.goals
    (website,) = goal.milestones
    assert (website.items.total, website.items.done) == (4, 2)  # site#1, site#2
    assert website.progress == pytest.approx(0.5)
    assert website.last_movement == at(25)  # the GitHub close: the latest across both
    assert website.status.value == "off_track"
    mine = {f.kind.value for f in report.findings if f.milestone == "brand.website"}
    # Overdue; alice's GitHub comment (as alice-s) is the senior feedback it needs.
    assert mine == {"overdue"}
    unmapped = sorted(f.item or "" for f in report.findings if f.kind.value == "unmapped_work")
    assert unmapped == ["A-3", "site#3"]
    # One listing for the sync, one for the first (daily) reconciliation; timelines only
    # for the three issues, never for the pull request.
    assert len(github.calls("issues")) == 2
    assert sorted(r.url.path for r in github.calls("timeline")) == [
        f"/repos/northwind/website/issues/{n}/timeline" for n in (1, 2, 3)]


THREE_TRACKERS = """\
version: 1
name: Three trackers
leader: alice
people:
  alice: {{name: Alice, senior: true, accounts: {{jira: "557058:alice", site: alice-s,
          boards: alice@northwind.example}}}}
  bob: {{name: Bob, accounts: {{jira: "557058:bob", site: bob-gh,
        boards: bob@northwind.example}}}}
sources:
  jira:
    kind: jira
    url: "{url}"
    email: {email}
    token: env:STRATMAP_TEST_JIRA_TOKEN
    scope: project = WEB
  site: {{kind: github, repo: northwind/website, in_progress_labels: [in progress]}}
  boards:
    kind: azure_devops
    url: https://dev.azure.com/northwind
    project: Website
    token: env:STRATMAP_TEST_ADO_PAT
goals:
  - id: brand
    title: Greater online brand presence
    owner: alice
    milestones:
      - id: website
        title: Launch the new website
        owner: bob
        start: 2026-09-01
        due: 2026-10-01
        feedback: {{from: seniors, every: 14d}}
        work:
          - {{source: jira, epic: WEB-1}}
          - {{source: site, milestone: v2 launch}}
          - {{source: boards, parent: 10}}
"""


def test_one_milestone_is_judged_from_jira_github_and_azure_devops_together(
        tmp_path: Path, store: Store, github: FakeGithub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    boards = FakeAzureDevops()
    # One router answers both fakes' hosts (two active respx routers would each refuse
    # the other's requests).
    github.router.route(host="dev.azure.com").mock(side_effect=boards.handle)
    boards.add(10, title="Website epic", created=at(1), kind="Epic", state="Active")
    boards.add(11, title="Hosting", created=at(2), assignee="bob", parent=10)
    boards.change(11, at=at(27), by="bob", **{"System.State": "Closed"})  # the latest move
    boards.add(12, title="Analytics", created=at(2), assignee="bob", parent=10)
    boards.add(13, title="Unplanned", created=at(3))
    with FakeJira(deployment="cloud") as jira:
        jira.add_user("557058:alice", "Alice")
        jira.add_user("557058:bob", "Bob")
        jira.add_issue("WEB-1", summary="Website epic", issuetype="Epic",
                       status="In Progress", created=at(1))
        jira.add_issue("WEB-2", summary="Copy", created=at(2), assignee="557058:bob",
                       parent="WEB-1")
        jira.transition("WEB-2", "Done", at=at(21), author="557058:bob")
        jira.add_issue("WEB-3", summary="Legal", created=at(2), assignee="557058:bob",
                       parent="WEB-1")
        (tmp_path / "plan.yaml").write_text(THREE_TRACKERS.format(url=jira.url,
                                                                  email=jira.email))
        monkeypatch.setenv("STRATMAP_TEST_JIRA_TOKEN", jira.token)
        monkeypatch.setenv("STRATMAP_TEST_ADO_PAT", boards.token)
        plan = load_plan(tmp_path / "plan.yaml")
        as_of = datetime(2026, 10, 5, tzinfo=UTC)
        synced = {name: sync_plan_source(plan, name, store, plan_dir=tmp_path, started=as_of)
                  for name in plan.sources}
    assert (synced["jira"].items, synced["site"].items, synced["boards"].items) == (3, 3, 4)
    report = judge_plan(plan, store, as_of=as_of)
    (website,) = report.goals[0].milestones
    # WEB-2, WEB-3; site#1, site#2; boards#11, boards#12 (the epics are context).
    assert (website.items.total, website.items.done) == (6, 3)
    assert website.progress == pytest.approx(0.5)
    assert website.last_movement == at(27)  # the Azure DevOps close: the latest of all three
    assert {f.kind.value for f in report.findings if f.milestone == "brand.website"} == {
        "overdue"}
    unmapped = sorted(f.item or "" for f in report.findings if f.kind.value == "unmapped_work")
    assert unmapped == ["boards#13", "site#3"]
