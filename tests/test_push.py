"""``stratmap push``: the plan's due dates and owners onto Jira epics, through the CLI,
against the Jira-compatible server (Cloud and Data Center), and what is never touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from stratmap.flows import cli
from stratmap.flows.push import targets_for
from stratmap.models.planfile import load_plan
from tests.fakes.jira_server import FakeJira

PLAN = """\
version: 1
name: Push plan
leader: alice
timezone: Europe/Berlin
people:
  alice: {{name: Alice, accounts: {{jira: {alice}}}}}
  bob: {{name: Bob, accounts: {{jira: {bob}}}}}
  carol: {{name: Carol, email: carol@northwind.example}}
sources:
  jira:
    kind: jira
    url: "{url}"
    {auth}
    token: env:STRATMAP_TEST_JIRA_TOKEN
    scope: project = WEB
  export:
    kind: jsonl
    path: nowhere
goals:
  - id: web
    title: The website
    owner: alice
    milestones:
      - id: build           # due moved in the plan, owner changed: two differences
        title: Build it
        owner: bob
        due: 2027-06-30
        work: [{{source: jira, epic: WEB-1}}]
      - id: legal           # already in step with the plan: nothing to do
        title: Legal review
        owner: alice
        due: 2027-02-15
        work: [{{source: jira, epic: WEB-2}}]
      - id: launch          # a datetime due: its day in the plan's time zone
        title: Launch
        owner: carol        # no Jira account in the plan: the assignee is left alone
        due: 2027-03-31T23:30:00+00:00
        work:
          - {{source: jira, epic: WEB-3}}
          - {{source: jira, jql: "labels = launch"}}   # chooses items, names no container
      - id: undated         # no due, owner without account: nothing to push
        title: Undated
        owner: carol
        work: [{{source: jira, epic: WEB-4}}]
      - id: ghost
        title: Ghost
        due: 2027-05-01
        work: [{{source: jira, epic: WEB-99}}]
"""


@pytest.fixture(params=["cloud", "datacenter"])
def jira(request: pytest.FixtureRequest, tmp_path: Path,
         monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeJira, dict[str, str], Path]]:
    cloud = request.param == "cloud"
    users = ({"alice": "557058:alice", "bob": "557058:bob"} if cloud
             else {"alice": "alice", "bob": "bob"})
    with FakeJira(deployment=request.param) as fake:
        for handle, account in users.items():
            fake.add_user(account, handle.title())
        fake.add_issue("WEB-1", issuetype="Epic", assignee=users["alice"],
                       duedate=date(2027, 5, 31))
        fake.add_issue("WEB-2", issuetype="Epic", assignee=users["alice"],
                       duedate=date(2027, 2, 15))
        fake.add_issue("WEB-3", issuetype="Epic")
        fake.add_issue("WEB-4", issuetype="Epic", duedate=date(2027, 9, 1))
        auth = f"email: {fake.email}" if cloud else "deployment: datacenter"
        plan = tmp_path / "plan.yaml"
        plan.write_text(PLAN.format(url=fake.url, auth=auth, **users))
        monkeypatch.setenv("STRATMAP_TEST_JIRA_TOKEN", fake.token)
        yield fake, users, plan


def edits(fake: FakeJira) -> list[tuple[str, object]]:
    return [(r.path, r.body) for r in fake.calls(method="PUT")]


def test_push_shows_the_differences_and_writes_nothing(
        jira: tuple[FakeJira, dict[str, str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    fake, _users, plan = jira
    assert cli.main(["push", str(plan)]) == 0
    out = capsys.readouterr().out
    assert edits(fake) == []
    assert "3 difference(s). Nothing was written" in out
    assert "Bob (" in out  # the plan's assignee shown as a person, with the account
    assert "epic WEB-99 (for web.ghost) does not exist in 'jira'" in " ".join(out.split())
    assert "export (jsonl): push is not supported" in out
    reads = fake.calls(method="GET")
    assert sorted(r.path.rsplit("/", 1)[-1] for r in reads if "/issue/" in r.path) == [
        "WEB-1", "WEB-2", "WEB-3", "WEB-99"]  # WEB-4: nothing to push, not even read
    assert all(r.params == {"fields": "duedate,assignee"} for r in reads if "/issue/" in r.path)
    assert cli.main(["push", str(plan), "--check"]) == cli.EXIT_FINDINGS


def test_push_apply_writes_due_dates_and_assignees_as_jira_expects(
        jira: tuple[FakeJira, dict[str, str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    fake, users, plan = jira
    api = "/rest/api/3" if fake.cloud else "/rest/api/2"
    assert cli.main(["push", str(plan), "--apply"]) == 0
    assignee = {"accountId": users["bob"]} if fake.cloud else {"name": users["bob"]}
    assert sorted(edits(fake), key=str) == sorted([
        (f"{api}/issue/WEB-1", {"fields": {"duedate": "2027-06-30"}}),
        (f"{api}/issue/WEB-1/assignee", assignee),
        # 2027-03-31T23:30Z is April 1st in Berlin, the plan's time zone.
        (f"{api}/issue/WEB-3", {"fields": {"duedate": "2027-04-01"}}),
    ], key=str)
    assert all(r.status == 204 for r in fake.calls(method="PUT"))
    assert fake.issues["WEB-1"].duedate == date(2027, 6, 30)
    assert fake.issues["WEB-1"].assignee == users["bob"]
    assert fake.issues["WEB-4"].duedate == date(2027, 9, 1)  # the plan sets none: kept
    assert fake.issues["WEB-3"].assignee is None             # carol has no Jira account
    assert "3 change(s) written" in capsys.readouterr().out

    # Jira now matches the plan: a second push finds nothing and writes nothing.
    before = len(fake.calls(method="PUT"))
    assert cli.main(["push", str(plan), "--check"]) == 0
    assert len(fake.calls(method="PUT")) == before
    assert "The trackers match the plan" in capsys.readouterr().out


def test_a_refused_edit_names_the_source_and_the_permission(
        jira: tuple[FakeJira, dict[str, str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    fake, _users, plan = jira
    fake.editable = False
    assert cli.main(["push", str(plan), "--apply"]) == cli.EXIT_SOURCE
    out = " ".join(capsys.readouterr().out.split())
    assert "push failed: source 'jira'" in out
    assert "Edit Issues permission" in out
    assert fake.token not in out


def test_a_field_jira_will_not_set_says_which_and_keeps_what_was_written(
        jira: tuple[FakeJira, dict[str, str], Path], capsys: pytest.CaptureFixture[str]) -> None:
    fake, _users, plan = jira
    fake.edit_screen = set()  # the due date is not on the epics' edit screen
    assert cli.main(["push", str(plan), "--apply"]) == cli.EXIT_SOURCE
    out = " ".join(capsys.readouterr().out.split())
    assert "Field 'duedate' cannot be set" in out and "edit screen" in out


def test_two_milestones_naming_one_epic_with_different_dates_push_neither(
        tmp_path: Path) -> None:
    text = PLAN.format(url="https://jira.example", auth="deployment: datacenter",
                       alice="alice", bob="bob")
    text = text.replace("work: [{source: jira, epic: WEB-2}]",
                        "work: [{source: jira, epic: WEB-1}]")
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(text)
    targets, conflicts = targets_for(load_plan(plan_file), "jira")
    web1 = next(t for t in targets if t.criteria == {"epic": "WEB-1"})
    assert web1.due is None and web1.owner_account is None
    assert web1.milestone == "web.build, web.legal"
    assert any("web.build, web.legal give different due dates (2027-02-15, 2027-06-30)" in c
               for c in conflicts)
    assert {tuple(t.criteria.items()) for t in targets} == {
        (("epic", "WEB-1"),), (("epic", "WEB-3"),), (("epic", "WEB-99"),)}


def test_push_refuses_an_unknown_source(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN.format(url="https://jira.example", auth="deployment: datacenter",
                                     alice="alice", bob="bob"))
    assert cli.main(["push", str(plan_file), "--source", "jria"]) == cli.EXIT_INVALID
    assert "no such source: jria" in capsys.readouterr().out


def test_a_plan_without_pushable_containers_says_so(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.conftest import EXAMPLES

    assert cli.main(["push", str(EXAMPLES / "northwind" / "plan.yaml")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Nothing to push" in out and "match the plan" not in out


GITHUB_PLAN = """\
version: 1
name: Site plan
leader: alice
people:
  alice: {name: Alice, accounts: {github: alice-gh}}
sources:
  site:
    kind: github
    repo: northwind/website
    token: env:STRATMAP_TEST_GITHUB_TOKEN
goals:
  - id: web
    title: The website
    owner: alice
    milestones:
      - id: launch
        title: Launch
        owner: alice
        due: 2026-10-01
        work: [{source: site, milestone: v2 launch}]
      - id: beta
        title: Beta
        work: [{source: site, milestone: Beta}, {source: site, labels: [beta]}]
"""


def test_push_through_the_cli_on_github_moves_only_the_dated_milestone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from tests.fakes.github_api import REPO, FakeGithub, activated

    fake = FakeGithub(token="ghp_secret-token-value")
    fake.add_milestone(1, "v2 launch", due_on="2026-09-24T07:00:00Z")
    fake.add_milestone(2, "Beta", due_on="2026-12-01T08:00:00Z")
    plan = tmp_path / "plan.yaml"
    plan.write_text(GITHUB_PLAN)
    monkeypatch.setenv("STRATMAP_TEST_GITHUB_TOKEN", fake.token)
    for running in activated(fake):
        assert cli.main(["push", str(plan), "--check"]) == cli.EXIT_FINDINGS
        assert cli.main(["push", str(plan), "--apply"]) == 0
        writes = [(r.method, r.url.path, json.loads(r.content)) for r in running.requests
                  if r.method != "GET"]
        assert writes == [("PATCH", f"/repos/{REPO}/milestones/1",
                           {"due_on": "2026-10-01T12:00:00Z"})]
        assert cli.main(["push", str(plan), "--check"]) == 0
    out = capsys.readouterr().out
    assert "1 change(s) written" in out and "The trackers match the plan" in out
    assert fake.token not in out
