"""The organisation rules (goal_imbalance, disengaged, overloaded_owner) and the plan's
engagement figure, at each rule's edges; then invariants (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratmap.judgement import judge
from stratmap.judgement.organisation import MIN_BALANCE_ACTIVITY
from stratmap.models.plan import Plan
from stratmap.models.planfile import PlanError, parse_plan
from stratmap.models.records import Comment, Evidence, StatusCategory, StatusChange, WorkItem
from stratmap.models.report import Finding, Kind, Report
from tests.test_engine import DAY, START, change, comment, evidence, item, worlds

SECOND = timedelta(seconds=1)
PEOPLE = {
    "alice": {"name": "Alice", "senior": True, "accounts": {"jira": "acc-alice"}},
    "bob": {"name": "Bob", "accounts": {"jira": "acc-bob"}},
    "carol": {"email": "carol@example.com"},
}


def milestone(mid: str, epic: str, owner: str | None = "bob", **extra: Any) -> dict[str, Any]:
    return {"id": mid, "title": mid.upper(), "owner": owner, "start": "2027-01-01",
            "due": "2027-12-31", "work": [{"source": "jira", "epic": epic}], **extra}


def goals_plan(weights: dict[str, float], *, defaults: dict[str, Any] | None = None,
               goal_rules: dict[str, dict[str, Any]] | None = None) -> Plan:
    """One goal per weight (id = its name), each with one milestone m over epic E-<id>."""
    return Plan.model_validate({
        "version": 1, "name": "P", "leader": "alice", "people": PEOPLE,
        "sources": {"jira": {"kind": "jsonl", "path": "x"}},
        "defaults": defaults or {},
        "goals": [{"id": gid, "title": gid, "owner": "alice", "weight": weight,
                   "milestones": [milestone("m", f"E-{gid}")],
                   **(goal_rules or {}).get(gid, {})}
                  for gid, weight in weights.items()],
    })


def busy(counts: dict[str, int], at: datetime) -> Evidence:
    """One open item per goal (under its epic) and ``counts[goal]`` comments on it at ``at``."""
    items = [item(f"{gid}-1", parent=f"E-{gid}") for gid in counts]
    comments = [Comment(source="jira", item_key=f"{gid}-1", comment_id=f"{gid}-{n}", at=at,
                        author="acc-bob", body="ok")
                for gid, count in counts.items() for n in range(count)]
    return evidence(items, [], comments)


def found(report: Report, kind: Kind) -> list[Finding]:
    return [f for f in report.findings if f.kind is kind]


# -- goal_imbalance ------------------------------------------------------------------------------
# Weights 1, 1, 2 are shares 25%, 25%, 50%: over 50% of the activity is twice g's share, and
# under 25% is half k's share.

WEIGHTS = {"g": 1.0, "h": 1.0, "k": 2.0}
AS_OF = START + 40 * DAY


def test_goal_imbalance_only_beyond_the_factor() -> None:
    exactly = judge(goals_plan(WEIGHTS), busy({"g": 10, "h": 6, "k": 4}, AS_OF - DAY),
                    as_of=AS_OF)
    assert not found(exactly, Kind.GOAL_IMBALANCE)  # 50% is exactly 2 x 25%
    beyond = judge(goals_plan(WEIGHTS), busy({"g": 11, "h": 5, "k": 4}, AS_OF - DAY),
                   as_of=AS_OF)
    [imbalance] = found(beyond, Kind.GOAL_IMBALANCE)
    assert (imbalance.goal, imbalance.milestone, imbalance.person) == ("g", None, "alice")
    assert imbalance.evidence["share"] == 0.55 and imbalance.evidence["weight_share"] == 0.25
    assert imbalance.evidence["starving"] == [{"goal": "k", "share": 0.2, "weight_share": 0.5}]
    assert imbalance.evidence["activity"] == {"g": 11, "h": 5, "k": 4}
    assert "Goal g drew 55%" in imbalance.message and "k starves" in imbalance.message


def test_goal_imbalance_needs_another_goal_under_half_its_share() -> None:
    at_half = judge(goals_plan(WEIGHTS), busy({"g": 11, "h": 4, "k": 5}, AS_OF - DAY),
                    as_of=AS_OF)
    assert not found(at_half, Kind.GOAL_IMBALANCE)  # k at 25% is exactly half its 50%


def test_goal_imbalance_counts_activity_inside_the_window_only() -> None:
    window = timedelta(days=28)
    heavy = busy({"g": 11, "h": 5, "k": 4}, AS_OF - window)
    assert not found(judge(goals_plan(WEIGHTS), heavy, as_of=AS_OF), Kind.GOAL_IMBALANCE)
    inside = busy({"g": 11, "h": 5, "k": 4}, AS_OF - window + SECOND)
    assert found(judge(goals_plan(WEIGHTS), inside, as_of=AS_OF), Kind.GOAL_IMBALANCE)
    shorter = goals_plan(WEIGHTS, defaults={"balance_window": "7d"})
    assert not found(judge(shorter, busy({"g": 11, "h": 5, "k": 4}, AS_OF - 8 * DAY),
                           as_of=AS_OF), Kind.GOAL_IMBALANCE)


def test_goal_imbalance_factor_cascades_goal_over_defaults() -> None:
    ev = busy({"g": 11, "h": 5, "k": 4}, AS_OF - DAY)
    lenient = goals_plan(WEIGHTS, defaults={"imbalance_factor": 3})
    assert not found(judge(lenient, ev, as_of=AS_OF), Kind.GOAL_IMBALANCE)
    own = goals_plan(WEIGHTS, defaults={"imbalance_factor": 3},
                     goal_rules={"g": {"imbalance_factor": 2.1}})
    assert [f.goal for f in found(judge(own, ev, as_of=AS_OF), Kind.GOAL_IMBALANCE)] == ["g"]


def test_goal_imbalance_needs_enough_activity_and_counts_status_changes() -> None:
    scale = MIN_BALANCE_ACTIVITY - 1
    few = busy({"g": scale - 2, "h": 1, "k": 1}, AS_OF - DAY)
    assert not found(judge(goals_plan(WEIGHTS), few, as_of=AS_OF), Kind.GOAL_IMBALANCE)
    moved = evidence(list(few.items), [change("g-1", AS_OF - DAY, StatusCategory.IN_PROGRESS)],
                     list(few.comments))
    assert found(judge(goals_plan(WEIGHTS), moved, as_of=AS_OF), Kind.GOAL_IMBALANCE)
    window = timedelta(days=28)  # a status change exactly at the window's start is outside
    at_edge = evidence(list(few.items),
                       [change("g-1", AS_OF - window, StatusCategory.IN_PROGRESS)],
                       list(few.comments))
    assert not found(judge(goals_plan(WEIGHTS), at_edge, as_of=AS_OF), Kind.GOAL_IMBALANCE)


# -- disengaged -----------------------------------------------------------------------------------


def one_goal(**rules: Any) -> Plan:
    return goals_plan({"g": 1.0}, goal_rules={"g": rules})


def test_disengaged_only_after_more_than_disengaged_after() -> None:
    last = START + 5 * DAY
    ev = evidence([item("g-1", parent="E-g")], [], [comment("g-1", last, "acc-bob")])
    limit = timedelta(days=21)
    exactly = judge(one_goal(), ev, as_of=last + limit)
    assert not [f for f in found(exactly, Kind.DISENGAGED) if f.person == "bob"]
    after = judge(one_goal(), ev, as_of=last + limit + SECOND)
    [bob] = [f for f in found(after, Kind.DISENGAGED) if f.person == "bob"]
    assert (bob.goal, bob.milestone) == (None, None)
    assert bob.evidence["last_plan_activity"] == last.isoformat()
    assert bob.evidence["owns"] == ["g.m"] and bob.evidence["holds"] == ["g.m"]
    assert bob.evidence["notify"] == ["alice", "bob"]
    assert "for 21 days (limit 21d)" in bob.message


def test_activity_outside_the_plan_is_not_engagement() -> None:
    last = START + 5 * DAY
    as_of = last + 30 * DAY
    ev = evidence([item("g-1", parent="E-g"), item("X-1", parent=None)], [],
                  [comment("g-1", last, "acc-bob"), comment("X-1", as_of - DAY, "acc-bob")])
    report = judge(one_goal(), ev, as_of=as_of)
    assert [f.person for f in found(report, Kind.DISENGAGED)] == ["bob"]
    # inactive_owner counts every tracker: bob is not an inactive owner.
    assert not [f for f in found(report, Kind.INACTIVE_OWNER) if f.person == "bob"]


def test_disengaged_after_cascades_and_the_strictest_milestone_applies() -> None:
    last = START + 5 * DAY
    ev = evidence([item("g-1", parent="E-g")], [], [comment("g-1", last, "acc-bob")])
    as_of = last + 7 * DAY + SECOND
    assert not found(judge(one_goal(), ev, as_of=as_of), Kind.DISENGAGED)
    assert found(judge(one_goal(disengaged_after="7d"), ev, as_of=as_of), Kind.DISENGAGED)
    strict = Plan.model_validate({
        **goals_plan({"g": 1.0}).model_dump(by_alias=True, exclude_none=True),
        "goals": [{"id": "g", "title": "g", "disengaged_after": "30d", "milestones": [
            milestone("m", "E-g"), milestone("n", "E-n", disengaged_after="7d")]}],
    })
    assert found(judge(strict, evidence([*ev.items, item("n-1", parent="E-n")], [],
                                        list(ev.comments)), as_of=as_of), Kind.DISENGAGED)


def test_someone_never_active_is_disengaged_from_when_their_work_began() -> None:
    plan = goals_plan({"g": 1.0})
    plan = plan.model_copy(update={"goals": [plan.goals[0].model_copy(update={
        "milestones": [plan.goals[0].milestones[0].model_copy(update={"owner": "carol"})]})]})
    ev = evidence([item("g-1", parent="E-g", assignee=None)])
    start = datetime.fromisoformat("2027-01-01T00:00:00+00:00")
    assert not found(judge(plan, ev, as_of=start + 21 * DAY), Kind.DISENGAGED)
    [carol] = found(judge(plan, ev, as_of=start + 21 * DAY + SECOND), Kind.DISENGAGED)
    assert carol.person == "carol" and carol.evidence["last_plan_activity"] is None
    assert "at all since their work began" in carol.message


def test_nobody_is_disengaged_from_done_or_future_milestones() -> None:
    ev = evidence([item("g-1", parent="E-g", status=StatusCategory.DONE)])
    assert not found(judge(one_goal(), ev, as_of=START + 90 * DAY), Kind.DISENGAGED)
    later = goals_plan({"g": 1.0})
    future = judge(later, evidence([item("g-1", parent="E-g")]),
                   as_of=START - DAY)
    assert not found(future, Kind.DISENGAGED)


def test_engagement_is_the_share_of_plan_people_active_on_plan_items() -> None:
    as_of = START + 40 * DAY
    ev = evidence([item("g-1", parent="E-g"), item("X-1", parent=None)], [],
                  [comment("g-1", as_of - 21 * DAY + SECOND, "acc-bob"),
                   comment("g-1", as_of - 21 * DAY, "acc-alice"),
                   comment("X-1", as_of - DAY, "acc-alice")])
    engagement = judge(one_goal(), ev, as_of=as_of).engagement
    assert engagement is not None
    assert (engagement.window, engagement.people, engagement.active) == ("21d", 3, 1)
    assert engagement.share == round(1 / 3, 4) and engagement.quiet == ["alice", "carol"]
    wider = goals_plan({"g": 1.0}, defaults={"disengaged_after": "30d"})
    assert judge(wider, ev, as_of=as_of).engagement.active == 2  # type: ignore[union-attr]


# -- overloaded_owner -------------------------------------------------------------------------------


def owners_plan(count: int, **defaults: Any) -> Plan:
    return Plan.model_validate({
        "version": 1, "name": "P", "leader": "alice", "people": PEOPLE,
        "sources": {"jira": {"kind": "jsonl", "path": "x"}}, "defaults": defaults,
        "goals": [{"id": "g", "title": "g", "owner": "alice",
                   "milestones": [milestone(f"m{n}", f"E-{n}") for n in range(count)]}],
    })


def active_items(count: int, *, per: int = 1) -> Evidence:
    as_of = START + 10 * DAY
    items = [item(f"I-{n}-{k}", parent=f"E-{n}") for n in range(count) for k in range(per)]
    return evidence(items, [change(i.key, as_of - DAY, StatusCategory.IN_PROGRESS)
                            for i in items], [])


def test_overloaded_owner_only_beyond_max_active_milestones() -> None:
    as_of = START + 10 * DAY
    assert not found(judge(owners_plan(3), active_items(3), as_of=as_of), Kind.OVERLOADED_OWNER)
    [bob] = found(judge(owners_plan(4), active_items(4), as_of=as_of), Kind.OVERLOADED_OWNER)
    assert bob.person == "bob" and bob.evidence["active_milestones"] == 4
    assert bob.evidence["owns"] == ["g.m0", "g.m1", "g.m2", "g.m3"]
    assert "owns 4 active milestones (limit 3)" in bob.message
    stricter = owners_plan(3, max_active_milestones=2)
    assert found(judge(stricter, active_items(3), as_of=as_of), Kind.OVERLOADED_OWNER)


def test_done_milestones_are_not_active_ones() -> None:
    as_of = START + 10 * DAY
    ev = active_items(4)
    done = evidence([*ev.items[:3], item("I-3-0", parent="E-3", status=StatusCategory.DONE)],
                    list(ev.changes[:3]), [])
    assert not found(judge(owners_plan(4), done, as_of=as_of), Kind.OVERLOADED_OWNER)


def test_overloaded_by_open_plan_items_beyond_max_open_items() -> None:
    as_of = START + 10 * DAY
    ev = active_items(1, per=3)
    assert not found(judge(owners_plan(1, max_open_items=3), ev, as_of=as_of),
                     Kind.OVERLOADED_OWNER)
    [bob] = found(judge(owners_plan(1, max_open_items=2), ev, as_of=as_of),
                  Kind.OVERLOADED_OWNER)
    assert bob.evidence["open_items"] == 3 and "holds 3 open plan items (limit 2)" in bob.message
    assert not found(judge(owners_plan(1), ev, as_of=as_of), Kind.OVERLOADED_OWNER)  # no limit


# -- validation ---------------------------------------------------------------------------------------

VALID = """\
version: 1
name: P
leader: alice
people: {alice: {name: Alice}}
defaults:
  imbalance_factor: 2
goals: []
"""


@pytest.mark.parametrize(("line", "expected"), [
    ("  imbalance_factor: 1", "plan.yaml:6:21:"),
    ("  imbalance_factor: lots", "plan.yaml:6:21:"),
    ("  disengaged_after: 3 weeks", "plan.yaml:6:21: a duration is written like"),
    ("  balance_window: 0.5", "plan.yaml:6:19:"),
    ("  max_active_milestones: 0", "plan.yaml:6:26:"),
    ("  max_open_items: -1", "plan.yaml:6:19:"),
])
def test_the_new_options_are_validated_with_their_position(line: str, expected: str) -> None:
    parse_plan(VALID, file="plan.yaml")
    with pytest.raises(PlanError) as raised:
        parse_plan(VALID.replace("  imbalance_factor: 2", line), file="plan.yaml")
    assert any(str(p).startswith(expected) for p in raised.value.problems), raised.value.problems


# -- invariants ---------------------------------------------------------------------------------------


def _organisation_plan(factor: float, limit: str, most: int) -> Plan:
    return Plan.model_validate({
        "version": 1, "name": "P", "leader": "alice", "people": PEOPLE,
        "sources": {"jira": {"kind": "jsonl", "path": "x"}},
        "defaults": {"imbalance_factor": factor, "disengaged_after": limit,
                     "max_active_milestones": most, "max_open_items": 3},
        "goals": [
            {"id": "g", "title": "g", "owner": "alice", "weight": 3,
             "milestones": [milestone("m", "E-1")]},
            {"id": "h", "title": "h", "owner": "bob",
             "milestones": [milestone("m", "E-2", owner="alice"),
                            milestone("n", "E-1", owner="carol")]},
        ],
    })


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(worlds(), st.sampled_from([1.5, 2.0, 4.0]), st.sampled_from(["3d", "21d"]),
       st.integers(1, 3))
def test_invariants(world: tuple[Evidence, datetime], factor: float, limit: str,
                    most: int) -> None:
    ev, as_of = world
    plan = _organisation_plan(factor, limit, most)
    report = judge(plan, ev, as_of=as_of)
    engagement = report.engagement
    assert engagement is not None
    assert 0 <= engagement.active <= engagement.people == len(plan.people)
    assert 0.0 <= engagement.share <= 1.0
    assert len(engagement.quiet) == engagement.people - engagement.active
    for f in report.findings:
        assert f.person in plan.people
        if f.kind is Kind.GOAL_IMBALANCE:
            share = f.evidence["activity"][f.goal] / f.evidence["total"]
            assert share > f.evidence["factor"] * f.evidence["weight_share"]
            assert f.evidence["starving"] and f.evidence["total"] >= MIN_BALANCE_ACTIVITY
            assert sum(f.evidence["activity"].values()) == f.evidence["total"]
        if f.kind is Kind.DISENGAGED:
            assert f.evidence["owns"] or f.evidence["holds"]
            assert f.person in engagement.quiet
        if f.kind is Kind.OVERLOADED_OWNER:
            assert (f.evidence["active_milestones"] > most or f.evidence["open_items"] > 3)
    # Order does not matter; what happens after as_of changes nothing.
    shuffled = Evidence(items=ev.items[::-1], changes=ev.changes[::-1],
                        comments=ev.comments[::-1])
    assert judge(plan, shuffled, as_of=as_of) == report
    future = Evidence(
        items=(*ev.items, WorkItem(source="jira", key="F-1", title="F", status="To Do",
                                   status_category=StatusCategory.TODO, created=as_of + DAY,
                                   updated=as_of + DAY, parent="E-2", assignee="acc-bob")),
        changes=(*ev.changes, StatusChange(source="jira", item_key="A-0", change_id="later",
                                           at=as_of + DAY, author="acc-bob", to_status="Done",
                                           to_category=StatusCategory.DONE)),
        comments=(*ev.comments, comment("E-1", as_of + DAY, "acc-alice")),
    )
    assert judge(plan, future, as_of=as_of) == report


# -- reports and events --------------------------------------------------------------------------


def _sample_like() -> Report:
    ev = busy({"g": 11, "h": 5, "k": 4}, AS_OF - DAY)
    return judge(goals_plan(WEIGHTS, defaults={"max_open_items": 0 + 1}),
                 evidence([*ev.items, item("h-2", parent="E-h")], [], list(ev.comments)),
                 as_of=AS_OF)


def test_every_finding_kind_has_a_prefect_event() -> None:
    from stratmap.publish.prefect_ui import EVENT_FOR_FINDING

    assert set(EVENT_FOR_FINDING) == set(Kind)
    assert len(set(EVENT_FOR_FINDING.values())) == len(Kind)


def test_markdown_and_html_show_the_organisation() -> None:
    from stratmap.publish.html import render as html
    from stratmap.publish.markdown import render as markdown

    report = _sample_like()
    assert {f.kind for f in report.findings} >= {Kind.GOAL_IMBALANCE, Kind.OVERLOADED_OWNER}
    text = markdown(report)
    assert "## Organisation" in text
    assert "Engagement: 1 of 3 people (33%) moved or commented on a plan item in the last " \
           "21d; quiet: Alice, carol." in text
    assert "| `g` | 11 | 55% | 25% |" in text and "| `k` | 4 | 20% | 50% |" in text
    page = html(report)
    section = page[page.index('<section id="organisation">'):]
    section = section[:section.index("</section>")]
    assert "<b>1 of 3</b> people (33%)" in section and "quiet: Alice, carol" in section
    assert section.count('<tr class="goal-share">') == 3
    assert "goal_imbalance" in section and "overloaded_owner" in section
    assert "Goal g drew 55%" in section


def test_the_json_report_carries_engagement_and_balance() -> None:
    import json

    import jsonschema

    from stratmap.models.schemas import schema

    data = json.loads(_sample_like().to_json())
    jsonschema.validate(data, schema("report"))
    assert data["engagement"] == {"window": "21d", "people": 3, "active": 1,
                                  "share": 0.3333, "quiet": ["alice", "carol"]}
    assert data["balance"]["total"] == 20 and [g["goal"] for g in data["balance"]["goals"]] == [
        "g", "h", "k"]


def test_alerts_for_owner_about_a_person_go_to_that_person() -> None:
    from stratmap.publish.changes import finding_key, subjects_of

    last = START + 5 * DAY
    ev = evidence([item("g-1", parent="E-g")], [], [comment("g-1", last, "acc-bob")])
    report = judge(one_goal(), ev, as_of=last + 30 * DAY)
    [bob] = [f for f in found(report, Kind.DISENGAGED) if f.person == "bob"]
    assert subjects_of(report)[finding_key(bob)].owner == "bob"
