"""blocked_by_other_team: Jira "is blocked by" links read from the real issuelinks shape,
and the rule at its boundaries."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from stratmap.connectors.jira.payloads import Site, normalize_issue
from stratmap.judgement import judge
from stratmap.models.records import StatusCategory
from stratmap.models.report import Finding, Kind, Report
from tests.test_engine import DAY, START, change, evidence, item, plan

FIXTURE = Path("/work/shared/fixtures/jira/atlassian-openapi-examples/search_jql_200.json")
SECOND = timedelta(seconds=1)


def _issue_with_links() -> dict[str, Any]:
    """The Atlassian example issue, its links made Jira's own Blocks type (the shape is the
    fixture's: a link carries inwardIssue or outwardIssue and the type's texts)."""
    if FIXTURE.exists():
        issue = copy.deepcopy(json.loads(FIXTURE.read_text())["issues"][0])
    else:  # the same shape, written out
        issue = {"key": "ED-1", "fields": {"issuelinks": [
            {"id": "10001", "outwardIssue": {"key": "PR-2"}, "type": {}},
            {"id": "10002", "inwardIssue": {"key": "PR-3"}, "type": {}}]}}
    blocks = {"id": "10000", "name": "Blocks", "inward": "is blocked by", "outward": "blocks"}
    for link in issue["fields"]["issuelinks"]:
        link["type"] = dict(blocks)
    return issue


def test_is_blocked_by_links_become_the_blocked_by_field() -> None:
    issue = _issue_with_links()
    links = issue["fields"]["issuelinks"]
    inward = [link["inwardIssue"]["key"] for link in links if "inwardIssue" in link]
    outward = [link["outwardIssue"]["key"] for link in links if "outwardIssue" in link]
    assert inward and outward
    site = Site(cloud=True, base_url="https://x.atlassian.net")
    item_ = normalize_issue("jira", issue, site, histories=[], comments=[]).item
    # Only the inward side "is blocked by"; what this issue blocks is not its blocker.
    assert item_.fields["blocked_by"] == ",".join(sorted(inward))
    # Another link type (the fixture's own "Dependent") is not blocking.
    other = _issue_with_links()
    for link in other["fields"]["issuelinks"]:
        link["type"] = {"name": "Relates", "inward": "relates to", "outward": "relates to"}
    assert "blocked_by" not in normalize_issue("jira", other, site, histories=[],
                                               comments=[]).item.fields


MOVED = START + 2 * DAY


def world(*, blocker_moved: Any = START + DAY, blocker_status: StatusCategory =
          StatusCategory.IN_PROGRESS, blocker_parent: str | None = None) -> Any:
    blocked = item("A-1", fields={"blocked_by": "X-9"})
    blocker = item("X-9", parent=blocker_parent, assignee="acc-alice", status=blocker_status)
    return evidence([blocked, item("A-2"), blocker],
                    [change("X-9", blocker_moved, blocker_status, author="acc-alice"),
                     change("A-2", MOVED + 20 * DAY, StatusCategory.IN_PROGRESS)])


def blocked(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.kind is Kind.BLOCKED_BY_OTHER_TEAM]


def test_an_item_blocked_by_an_unmoving_item_outside_the_milestone() -> None:
    moved = START + DAY
    exactly = moved + timedelta(days=14)
    assert not blocked(judge(plan(), world(blocker_moved=moved), as_of=exactly))
    [finding] = blocked(judge(plan(), world(blocker_moved=moved), as_of=exactly + SECOND))
    assert (finding.goal, finding.milestone, finding.person, finding.item) == (
        "g", "g.m", "bob", None)
    assert finding.evidence["blocked"] == "A-1" and finding.evidence["blocker"] == "X-9"
    assert finding.evidence["blocker_assignee"] == "alice"
    assert finding.evidence["notify"] == ["alice", "bob"]
    assert "A-1 of g.m is blocked by X-9, outside the milestone, held by alice" in finding.message


def test_no_finding_when_the_blocker_is_inside_done_or_the_rule_is_shorter() -> None:
    as_of = START + 30 * DAY
    assert not blocked(judge(plan(), world(blocker_parent="E-1"), as_of=as_of))
    assert not blocked(judge(plan(), world(blocker_status=StatusCategory.DONE), as_of=as_of))
    long_rule = plan(milestone={"stall_after": "60d"})
    assert not blocked(judge(long_rule, world(), as_of=as_of))


def test_each_blocked_item_and_blocker_is_its_own_alert_subject() -> None:
    from stratmap.publish.changes import finding_key, subjects_of

    two = world()
    two = evidence([*two.items, item("A-3", fields={"blocked_by": "X-9"})], list(two.changes))
    report = judge(plan(), two, as_of=START + 30 * DAY)
    found = blocked(report)
    assert [f.evidence["blocked"] for f in found] == ["A-1", "A-3"]
    assert len({finding_key(f) for f in found}) == 2
    subjects = subjects_of(report)
    assert all(subjects[finding_key(f)].owner == "bob" for f in found)
