"""Declared status from trackers, through the fakes: a Jira epic's health field (Cloud and
Data Center, read with its changelog) and a Linear project update's ``health`` feed
optimistic_status, each finding as the rule implies, with its counter-cases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratmap.connectors.base import Window
from stratmap.connectors.jira.declarations import declarations, declared_field
from stratmap.flows.measures import plan_evidence
from stratmap.judgement import judge
from stratmap.models.plan import Plan
from stratmap.models.planfile import PlanError, parse_plan
from stratmap.models.records import DeclaredStatus
from stratmap.models.report import Finding, Kind, Report
from stratmap.models.store import Store, load_declarations
from tests.fakes.jira_server import FakeJira, connector_for

AS_OF = datetime(2027, 3, 1, 9, tzinfo=UTC)
HEALTH = "customfield_10050"


def ago(days: float) -> datetime:
    return AS_OF - timedelta(days=days)


def claims(report: Report) -> dict[str | None, Finding]:
    return {f.milestone: f for f in report.findings if f.kind is Kind.OPTIMISTIC_STATUS}


def jira_plan(url: str, **source: Any) -> Plan:
    milestones = [
        {"id": key.lower().replace("-", ""), "title": key, "owner": "bob",
         "start": "2027-01-01", "due": "2027-06-30", "work": [{"source": "jira", "epic": key}]}
        for key in ("WEB-1", "WEB-10", "WEB-20", "WEB-30")]
    return Plan.model_validate({
        "version": 1, "name": "Declared", "leader": "alice",
        "people": {"alice": {"name": "Alice", "accounts": {"jira": "alice-id"}},
                   "bob": {"name": "Bob", "accounts": {"jira": "bob-id"}}},
        "sources": {"jira": {"kind": "jira", "url": url, "token": "env:JIRA_TOKEN",
                             "scope": "project = WEB", **source}},
        "goals": [{"id": "web", "title": "Web", "owner": "alice", "milestones": milestones}],
    })


def seeded(jira: FakeJira) -> None:
    """Four epics, each with one story: WEB-1 stalled and declared Green (was On Track),
    WEB-10 moving and declared At Risk, WEB-20 moving and On Track, WEB-30 stalled and At Risk."""
    jira.add_user("alice-id", "Alice")
    jira.add_user("bob-id", "Bob")
    jira.select_fields[HEALTH] = "Health"
    created = ago(60)
    for epic, moved in (("WEB-1", 20), ("WEB-10", 2), ("WEB-20", 2), ("WEB-30", 20)):
        number = int(epic.split("-")[1])
        jira.add_issue(epic, issuetype="Epic", created=created, reporter="alice-id")
        story = f"WEB-{number + 1}"
        jira.add_issue(story, epic=epic, parent=epic if jira.cloud else None, created=created)
        jira.transition(story, "In Progress", at=ago(moved), author="bob-id")
    jira.select("WEB-1", HEALTH, "On Track", at=ago(30), author="alice-id")
    jira.select("WEB-1", HEALTH, "Green", at=ago(3), author="bob-id")
    jira.select("WEB-10", HEALTH, "At Risk", at=ago(1), author="bob-id")
    jira.select("WEB-20", HEALTH, "On Track", at=ago(1), author="bob-id")
    jira.select("WEB-30", HEALTH, "At Risk", at=ago(1), author="bob-id")


@pytest.mark.parametrize(("deployment", "named"), [("cloud", HEALTH), ("datacenter", "health")])
def test_a_jira_health_field_declares_through_cloud_and_data_center(
        store: Store, deployment: str, named: str) -> None:
    with FakeJira(deployment=deployment) as jira:  # type: ignore[arg-type]
        seeded(jira)
        with connector_for(jira, declared_status_field=named) as connector:
            for page in connector.fetch(Window(since=None, until=AS_OF)):
                store.write_page(page)
        searched = jira.calls("/rest/api/3/search/jql" if jira.cloud else "/rest/api/2/search")
        assert HEALTH in searched[0].body["fields"]
        plan = jira_plan(jira.url, declared_status_field=named)
    stored = [d for d in load_declarations(store, ["jira"]) if d.subject == "WEB-1"]
    assert [(d.status, d.said, d.author) for d in stored] == [
        (DeclaredStatus.ON_TRACK, "On Track", "alice-id"),
        (DeclaredStatus.ON_TRACK, "Green", "bob-id")]
    assert stored[1].at == ago(3) and stored[1].where == "Health"
    found = claims(judge(plan, plan_evidence(store, plan), as_of=AS_OF))
    assert sorted(found, key=str) == ["web.web1", "web.web10"]
    optimistic, pessimistic = found["web.web1"], found["web.web10"]
    assert optimistic.evidence["direction"] == "optimistic"
    assert optimistic.evidence["declared_by"] == "bob"
    assert optimistic.evidence["quote"] == "Green" and optimistic.evidence["item"] == "WEB-1"
    assert optimistic.evidence["evidence_shows"] == ["stalled"]
    assert pessimistic.evidence["direction"] == "pessimistic"
    # Judged before Green, alice's On Track was the declaration (still standing).
    earlier = claims(judge(plan, plan_evidence(store, plan), as_of=ago(5)))
    assert earlier["web.web1"].evidence["declared_by"] == "alice"


def test_without_the_option_no_field_is_read(store: Store) -> None:
    with FakeJira(deployment="cloud") as jira:
        seeded(jira)
        with connector_for(jira) as connector:
            for page in connector.fetch(Window(since=None, until=AS_OF)):
                store.write_page(page)
        assert HEALTH not in jira.calls("/rest/api/3/search/jql")[0].body["fields"]
        plan = jira_plan(jira.url)
    assert load_declarations(store, ["jira"]) == ()
    assert not claims(judge(plan, plan_evidence(store, plan), as_of=AS_OF))


def test_values_map_in_any_case_and_others_withdraw_the_claim() -> None:
    fields = [{"id": HEALTH, "name": "Health"}]
    field = declared_field("Health", {"Fine": "on_track"}, fields)
    assert field is not None and field.id == HEALTH
    assert field.declares("FINE") is DeclaredStatus.ON_TRACK
    assert field.declares("On Track") is DeclaredStatus.UNDECLARED  # the map replaces defaults
    default = declared_field(HEALTH, None, fields)
    assert default is not None and default.declares(" amber ") is DeclaredStatus.AT_RISK
    assert declared_field("Mood", None, fields) is None
    issue = {"key": "WEB-1", "fields": {"created": "2027-01-01T00:00:00.000+0000",
                                        "reporter": {"accountId": "r"},
                                        HEALTH: {"value": "Red", "id": "1"}}}
    # A value set at creation, with no change since, is the reporter's at creation.
    [made] = declarations("jira", issue, default, histories=[], cloud=True)
    assert (made.status, made.author, made.declaration_id) == (
        DeclaredStatus.AT_RISK, "r", "created")
    cleared = {"id": "5", "created": "2027-01-02T00:00:00.000+0000",
               "author": {"accountId": "a"},
               "items": [{"field": "Health", "fieldtype": "custom", "fieldId": HEALTH,
                          "fromString": "Red", "toString": None}]}
    first, withdrawn = declarations("jira", issue, default, histories=[cleared], cloud=True)
    assert first.status is DeclaredStatus.AT_RISK and first.author == "r"
    assert withdrawn.status is DeclaredStatus.UNDECLARED and withdrawn.author == "a"


SOURCE = """\
version: 1
name: P
leader: a
people: {a: {name: A}}
sources:
  jira:
    kind: jira
    url: https://x.atlassian.net
    token: env:T
    scope: project = WEB
OPTIONS
goals: []
"""


def test_the_options_are_validated_with_their_position() -> None:
    def problems(options: str) -> list[str]:
        with pytest.raises(PlanError) as raised:
            parse_plan(SOURCE.replace("OPTIONS", options), file="plan.yaml")
        return [str(p) for p in raised.value.problems]

    [alone] = problems("    declared_status_values: {Green: on_track}")
    assert alone.startswith("plan.yaml:11:5:") and "needs declared_status_field" in alone
    [wrong] = problems("    declared_status_field: Health\n"
                       "    declared_status_values: {Green: fine}")
    assert wrong.startswith("plan.yaml:12:") and "on_track" in wrong
    assert parse_plan(SOURCE.replace("OPTIONS", "    declared_status_field: Health\n"
                                     "    declared_status_values: {Green: on_track}"))


# -- Linear: a project update's health -----------------------------------------------------


def linear_plan(url: str) -> Plan:
    milestones = [
        {"id": slug, "title": project, "owner": "bob", "start": "2027-01-01",
         "due": "2027-06-30", "work": [{"source": "eng", "project": project}]}
        for slug, project in (("site", "Website"), ("app", "Mobile app"), ("api", "API"))]
    return Plan.model_validate({
        "version": 1, "name": "Declared in Linear", "leader": "alice",
        "people": {"alice": {"name": "Alice", "email": "alice@northwind.example"},
                   "bob": {"name": "Bob", "email": "bob@northwind.example"}},
        "sources": {"eng": {"kind": "linear", "team": "ENG", "url": url,
                            "token": "env:LINEAR_API_KEY"}},
        "goals": [{"id": "g", "title": "G", "owner": "alice", "milestones": milestones}],
    })


def test_linear_project_updates_declare_the_milestone_selecting_the_project(
        store: Store) -> None:
    from tests.fakes.linear_api import FakeLinear

    with FakeLinear(now=AS_OF) as linear:
        for n, (project, moved) in enumerate((("Website", 20), ("Mobile app", 2), ("API", 2)),
                                             start=1):
            linear.add_project(project)
            linear.add_issue(f"ENG-{n}", title=project, created=ago(60), project=project)
            linear.move(f"ENG-{n}", "In Progress", at=ago(moved), author="bob")
        linear.add_project("Other team's")
        linear.projects[next(p for p, v in linear.projects.items()
                             if v["name"] == "Other team's")]["teams"] = ["OPS"]
        # Website: stalled, but bob's latest update says on track (an earlier one at risk).
        linear.add_project_update("Website", health="atRisk", at=ago(10), author="bob")
        linear.add_project_update("Website", health="onTrack", at=ago(3), author="bob",
                                  body="Good week, **all green**.")
        # Mobile app: moving, declared off track by alice; API: moving, on track.
        linear.add_project_update("Mobile app", health="offTrack", at=ago(1), author="alice")
        linear.add_project_update("API", health="onTrack", at=ago(1), author="bob")
        linear.add_project_update("API", health=None, at=ago(0.5), author="bob")
        linear.add_project_update("Other team's", health="onTrack", at=ago(1), author="bob")
        with linear.connector() as connector:
            for page in connector.fetch(Window(since=None, until=AS_OF)):
                store.write_page(page)
        [listing] = linear.calls("StratmapProjectUpdates")
        assert "projectUpdates(first: $nested)" in listing.query
        assert "health" in listing.query and "createdAt" in listing.query
        plan = linear_plan(linear.url)
    stored = load_declarations(store, ["eng"])
    assert sorted({d.subject for d in stored}) == ["API", "Mobile app", "Website"]
    assert len(stored) == 4  # the update without a health declares nothing
    found = claims(judge(plan, plan_evidence(store, plan), as_of=AS_OF))
    assert sorted(found) == ["g.app", "g.site"]
    site, app = found["g.site"], found["g.app"]
    assert site.evidence["declared_by"] == "bob" and site.evidence["via"] == "project update"
    assert site.evidence["quote"].startswith("onTrack: Good week")
    assert site.evidence["evidence_shows"] == ["stalled"]
    assert app.evidence["declared_by"] == "alice" and app.evidence["direction"] == "pessimistic"
    # Before bob's on-track update, his at-risk one matched the stall: nothing to report.
    assert "g.site" not in claims(judge(plan, plan_evidence(store, plan), as_of=ago(5)))
