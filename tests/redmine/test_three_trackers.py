"""One milestone judged from Jira, GitHub and Redmine together, through `stratmap run`.

Jira is the local Jira-compatible server (the real `jira` library over HTTP), GitHub the
respx fake built from GitHub's payload shapes, Redmine the real server. Redmine stamps
everything with today's clock, so the plan's dates are set relative to now.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratmap.flows import cli
from tests.fakes.github_api import FakeGithub, comment, event, issue, milestone
from tests.fakes.jira_server import FakeJira
from tests.redmine.admin import RedmineAdmin

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _now() -> None:
    """Redmine stamps with the wall clock: take "now" when the test starts, not when the
    module was imported (minutes earlier in a long session, which put the Redmine issues
    after the run's as-of)."""
    global NOW
    NOW = datetime.now(UTC).replace(microsecond=0)


def days_ago(n: float) -> datetime:
    return NOW - timedelta(days=n)


PLAN = """\
version: 1
name: Three trackers
leader: alice
people:
  alice: {{name: Alice, senior: true, accounts: {{jira: acc-alice, site: alice-s}}}}
  bob: {{name: Bob, accounts: {{jira: acc-bob, site: bob-gh, ops: dev1}}}}
  carol: {{name: Carol, accounts: {{ops: carol}}}}
sources:
  jira: {{kind: jira, url: "{jira}", email: alice@northwind.example,
         token: "env:STRATMAP_TEST_JIRA_TOKEN", scope: "project = WEB", deployment: cloud}}
  site: {{kind: github, repo: northwind/website}}
  ops: {{kind: redmine, url: "{redmine}", project: {project},
        token: "env:STRATMAP_TEST_REDMINE_KEY"}}
goals:
  - id: brand
    title: Greater online brand presence
    owner: alice
    milestones:
      - id: launch
        title: Launch the new website
        owner: bob
        start: {start}
        due: {due}
        feedback: {{from: seniors, every: 14d}}
        work:
          - {{source: jira, epic: WEB-1}}
          - {{source: site, milestone: v2 launch}}
          - {{source: ops, version: v2 launch}}
"""


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    with FakeJira(deployment="cloud") as fake:
        fake.add_user("acc-alice", "Alice", "alice@northwind.example")
        fake.add_user("acc-bob", "Bob")
        fake.add_issue("WEB-1", summary="Website epic", issuetype="Epic", status="In Progress",
                       created=days_ago(40), reporter="acc-alice")
        fake.add_issue("WEB-2", summary="Navigation", created=days_ago(30), parent="WEB-1",
                       assignee="acc-bob")
        fake.add_issue("WEB-3", summary="Checkout copy", created=days_ago(30), parent="WEB-1",
                       assignee="acc-bob")
        fake.transition("WEB-2", "In Progress", at=days_ago(20), author="acc-bob")
        fake.transition("WEB-2", "Done", at=days_ago(12), author="acc-bob")
        fake.transition("WEB-3", "In Progress", at=days_ago(6), author="acc-bob")
        # Senior feedback on the epic itself counts for the milestone.
        fake.add_comment("WEB-1", "Looks right, ship the navigation first",
                         at=days_ago(5), author="acc-alice")
        yield fake


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub(name="site")
    launch = milestone(3, "v2 launch", due_on=NOW + timedelta(days=30))
    fake.add(issue(1, title="Hero image", created=days_ago(25), updated=days_ago(9),
                   state="closed", closed_at=days_ago(9), state_reason="completed",
                   assignees=["bob-gh"], milestone_=launch),
             [event(11, "closed", actor="bob-gh", at=days_ago(9), state_reason="completed")])
    fake.add(issue(2, title="Footer links", created=days_ago(25), updated=days_ago(3),
                   assignees=["bob-gh"], milestone_=launch, comments=1),
             [comment(21, 2, author="bob-gh", at=days_ago(3), body="Working on it")])
    # The Redmine server is local: let it through the GitHub fake.
    fake.router.route(host="127.0.0.1").pass_through()
    with fake.router:
        yield fake


def test_one_milestone_from_jira_github_and_redmine(
        tmp_path: Path, redmine: RedmineAdmin, jira: FakeJira, github: FakeGithub,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project = redmine.project("m", members=("carol", "dev1"))
    version = redmine.version(project, "v2 launch")
    done = redmine.create_issue(project, "Server certificates", assignee="dev1", version=version)
    redmine.update(done, status="Closed", as_user="dev1")
    redmine.create_issue(project, "Load balancer", assignee="carol", version=version)
    redmine.create_issue(project, "Stray printer ticket")  # in no version: unmapped

    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(jira=jira.url, redmine=redmine.server.url, project=project,
                                start=days_ago(35).date(), due=(NOW + timedelta(days=30)).date()))
    monkeypatch.setenv("STRATMAP_TEST_JIRA_TOKEN", jira.token)
    monkeypatch.setenv("STRATMAP_TEST_REDMINE_KEY", redmine.server.key)
    db = f"sqlite:///{tmp_path / 'store.db'}"

    def run(as_of: datetime, *extra: str) -> dict[str, Any]:
        out = tmp_path / f"{as_of:%Y%m%d%H%M}.json"
        code = cli.main(["run", str(plan), "--db", db, "--as-of", as_of.isoformat(),
                         "--json", str(out), "--quiet", *extra])
        assert code == 0
        return dict(json.loads(out.read_text()))

    report = run(NOW + timedelta(minutes=5))
    (goal,) = report["goals"]
    (launch,) = goal["milestones"]
    # WEB-2, WEB-3 (the epic is context, not counted), site#1, site#2, and two Redmine issues.
    assert launch["items"] == {"total": 6, "done": 3, "points_total": None,
                               "points_done": None}
    assert launch["progress"] == 0.5
    assert launch["status"] == "on_track"
    assert [f for f in report["findings"] if f["milestone"] == "brand.launch"] == []
    unmapped = [f["item"] for f in report["findings"] if f["kind"] == "unmapped_work"]
    assert len(unmapped) == 1 and unmapped[0].startswith("ops#")
    assert not report["unknown_people"]

    # Three weeks on, with no movement and no senior comment, the same milestone stalls
    # and misses its feedback: judged from all three trackers' evidence at once.
    later = run(NOW + timedelta(days=21), "--offline")
    kinds = {f["kind"] for f in later["findings"] if f["milestone"] == "brand.launch"}
    assert {"stalled", "missing_feedback"} <= kinds
