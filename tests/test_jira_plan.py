"""A plan over a Jira-compatible server, through `stratmap run`: exactly the findings the
rules imply, on Jira Cloud and on Data Center alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratmap.flows import cli
from tests.fakes.jira_server import FakeJira

AS_OF = datetime(2027, 3, 1, 9, tzinfo=UTC)


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


PLAN = """\
version: 1
name: Jira plan
leader: alice
people:
  alice: {{name: Alice, senior: true, accounts: {{jira: {alice}}}}}
  bob: {{name: Bob, accounts: {{jira: {bob}}}}}
  dan: {{name: Dan, accounts: {{jira: {dan}}}}}
sources:
  jira:
    kind: jira
    url: "{url}"
    {auth}
    token: env:STRATMAP_TEST_JIRA_TOKEN
    scope: project = WEB
goals:
  - id: web
    title: The website
    owner: alice
    milestones:
      - id: build          # stalled, and only a non-senior commented: missing feedback
        title: Build it
        owner: bob
        start: 2027-01-01
        due: 2027-06-30
        feedback: {{from: seniors, every: 14d}}
        work: [{{source: jira, epic: WEB-1}}]
      - id: legal          # overdue; a JQL selector resolved by the server
        title: Legal review
        owner: alice
        start: 2027-01-01
        due: 2027-02-15
        work: [{{source: jira, jql: "labels = legal"}}]
      - id: domain         # done
        title: Domain
        owner: bob
        start: 2027-01-01
        due: 2027-02-01
        work: [{{source: jira, keys: [WEB-20]}}]
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
        fake.add_issue("WEB-1", summary="Build epic", issuetype="Epic", status="In Progress",
                       created=ago(80))
        for n in (2, 3, 4):
            fake.add_issue(f"WEB-{n}", summary=f"Page {n}", created=ago(70), assignee=bob,
                           parent="WEB-1" if cloud else None, epic=None if cloud else "WEB-1")
        fake.transition("WEB-2", "In Progress", at=ago(30), author=bob)
        fake.add_comment("WEB-2", "still blocked on design", at=ago(2), author=dan)
        fake.add_comment("WEB-1", "old senior note", at=ago(40), author=alice)
        fake.add_issue("WEB-10", summary="Privacy policy", created=ago(50), labels=["legal"],
                       assignee=alice)
        fake.transition("WEB-10", "In Progress", at=ago(3), author=alice)
        fake.add_issue("WEB-20", summary="Buy the domain", created=ago(60), assignee=alice)
        fake.transition("WEB-20", "Done", at=ago(35), author=alice)
        fake.add_issue("WEB-30", summary="Stray bug nobody planned", created=ago(5))
        yield fake, users


def test_the_plan_over_jira_gives_exactly_the_findings_the_rules_imply(
        jira: tuple[FakeJira, dict[str, str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake, users = jira
    auth = f"email: {fake.email}" if fake.cloud else "deployment: datacenter"
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN.format(url=fake.url, auth=auth, **users))
    monkeypatch.setenv("STRATMAP_TEST_JIRA_TOKEN", fake.token)
    out = tmp_path / "report.json"
    code = cli.main(["run", str(plan), "--db", f"sqlite:///{tmp_path / 's.db'}", "--as-of",
                     AS_OF.isoformat(), "--json", str(out), "--quiet"])
    assert code == 0
    report = json.loads(out.read_text())

    found = sorted((f["kind"], f["milestone"] or f["goal"] or "", f["item"] or "", f["person"]
                    or "") for f in report["findings"])
    assert found == sorted([
        ("stalled", "web.build", "", "bob"),                  # last change 30 days ago
        ("missing_feedback", "web.build", "", "alice"),       # alice's note is 40 days old
        ("inactive_owner", "web.build", "", "bob"),           # bob's last change: 30 days
        ("disengaged", "", "", "bob"),                        # ... on a plan item too (21d)
        ("overdue", "web.legal", "", "alice"),
        ("unmapped_work", "", "WEB-30", "alice"),
    ])
    milestones = {m["id"]: m for m in report["goals"][0]["milestones"]}
    assert milestones["web.build"]["items"]["total"] == 3  # the epic is context only
    assert milestones["web.legal"]["items"]["total"] == 1  # from the server's JQL answer
    assert milestones["web.domain"]["status"] == "done"
    # The token is nowhere in what stratmap wrote.
    secret = fake.token.encode()
    stored = list(tmp_path.glob("s.db*"))  # the database and any WAL beside it
    assert stored and all(secret not in f.read_bytes() for f in stored)
    assert secret not in out.read_bytes()
    # The old search endpoint is never called on Cloud.
    if fake.cloud:
        assert not fake.calls("/rest/api/*/search")
        assert fake.calls("/rest/api/3/search/jql")
