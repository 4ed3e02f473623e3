"""optimistic_status: what an owner declares in comments against what the evidence shows,
both directions, at each boundary."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from stratmap.judgement import judge
from stratmap.models.planfile import PlanError, parse_plan
from stratmap.models.records import Comment, Declaration, DeclaredStatus, Evidence, StatusCategory
from stratmap.models.report import Finding, Kind, Report
from tests.test_engine import DAY, START, change, evidence, item, plan

SECOND = timedelta(seconds=1)
MOVED = START + 2 * DAY
STALLED_AT = MOVED + 20 * DAY  # 20 days without a status change, limit 14d
FINE_AT = MOVED + 5 * DAY


def said(body: str, at: datetime, author: str = "acc-bob", key: str = "A-1") -> Comment:
    return Comment(source="jira", item_key=key, comment_id=f"{key}-{at.isoformat()}-{author}",
                   at=at, author=author, body=body)


def world(*comments: Comment) -> Evidence:
    return evidence([item("A-1")], [change("A-1", MOVED, StatusCategory.IN_PROGRESS)],
                    list(comments))


def claims(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.kind is Kind.OPTIMISTIC_STATUS]


def test_an_owner_declaring_on_track_while_stalled_is_optimistic() -> None:
    report = judge(plan(), world(said("Status: we are on track for March.", STALLED_AT - DAY)),
                   as_of=STALLED_AT)
    [claim] = claims(report)
    assert (claim.goal, claim.milestone, claim.person) == ("g", "g.m", "alice")
    assert claim.evidence["direction"] == "optimistic"
    assert claim.evidence["evidence_shows"] == ["stalled"]
    assert claim.evidence["declared_by"] == "bob" and claim.evidence["item"] == "A-1"
    assert "declared g.m on track on" in claim.message and "shows it stalled" in claim.message
    # The same words while the milestone moves are simply true.
    assert not claims(judge(plan(), world(said("on track", FINE_AT - DAY)), as_of=FINE_AT))


def test_a_declared_risk_the_evidence_does_not_show_is_reported_too() -> None:
    report = judge(plan(), world(said("This is NOT on track, honestly.", FINE_AT - DAY)),
                   as_of=FINE_AT)
    [claim] = claims(report)
    assert claim.evidence["declared"] == "at_risk"
    assert claim.evidence["direction"] == "pessimistic" and claim.evidence["status"] == "on_track"
    # A declared risk the evidence shows is consistent: no finding.
    assert not claims(judge(plan(), world(said("at risk", STALLED_AT - DAY)), as_of=STALLED_AT))


def test_only_the_owners_words_are_a_declaration() -> None:
    report = judge(plan(), world(said("on track", STALLED_AT - DAY, author="acc-alice")),
                   as_of=STALLED_AT)
    assert not claims(report)


def test_a_declaration_counts_for_thirty_days() -> None:
    words = said("green across the board", STALLED_AT - DAY)
    assert claims(judge(plan(), world(words), as_of=words.at + timedelta(days=30) - SECOND))
    assert not claims(judge(plan(), world(words), as_of=words.at + timedelta(days=30)))


def test_the_latest_declaration_wins() -> None:
    report = judge(plan(), world(said("blocked on the agency", STALLED_AT - 3 * DAY),
                                 said("good progress now", STALLED_AT - DAY)), as_of=STALLED_AT)
    assert [c.evidence["declared"] for c in claims(report)] == ["on_track"]
    later_risk = judge(plan(), world(said("good progress", STALLED_AT - 3 * DAY),
                                     said("blocked", STALLED_AT - DAY)), as_of=STALLED_AT)
    assert not claims(later_risk)


@pytest.mark.parametrize(("body", "declares"), [
    ("We are On Track.", True),
    ("a greenfield project", False),  # whole words only
    ("reduced scope", False),
    ("on-track", False),
    ("(green)", True),
])
def test_phrases_are_whole_words_in_any_case(body: str, declares: bool) -> None:
    report = judge(plan(), world(said(body, STALLED_AT - DAY)), as_of=STALLED_AT)
    assert bool(claims(report)) is declares


def test_phrases_cascade_and_an_empty_list_declares_nothing() -> None:
    words = world(said("all good here", STALLED_AT - DAY))
    own: dict[str, Any] = {"milestone": {"on_track_phrases": ["all good"]}}
    assert claims(judge(plan(**own), words, as_of=STALLED_AT))
    assert not claims(judge(plan(), words, as_of=STALLED_AT))
    by_goal = plan(goal={"on_track_phrases": ["all good"]})
    assert claims(judge(by_goal, words, as_of=STALLED_AT))
    off = plan(defaults={"on_track_phrases": [], "at_risk_phrases": []})
    assert not claims(judge(off, world(said("on track", STALLED_AT - DAY)), as_of=STALLED_AT))


def test_phrases_are_validated_with_their_position() -> None:
    text = ("version: 1\nname: P\nleader: a\npeople: {a: {name: A}}\n"
            "defaults:\n  on_track_phrases: [fine, '']\ngoals: []\n")
    with pytest.raises(PlanError) as raised:
        parse_plan(text, file="plan.yaml")
    assert any(str(p).startswith("plan.yaml:6:") for p in raised.value.problems), \
        raised.value.problems


# -- declared in trackers: a Jira epic's status field, a Linear project update's health ------


def declared(status: str, at: datetime, *, subject: str = "E-1", author: str | None = "acc-alice",
             source: str = "jira", where: str = "Health") -> Declaration:
    return Declaration(source=source, subject=subject, declaration_id=f"{subject}-{at.isoformat()}",
                       at=at, author=author, status=DeclaredStatus(status),
                       said="On Track" if status == "on_track" else "At Risk", where=where)


def with_epic(*declarations: Declaration, comments: tuple[Comment, ...] = ()) -> Evidence:
    return evidence([item("E-1", parent=None), item("A-1")],
                    [change("A-1", MOVED, StatusCategory.IN_PROGRESS)], list(comments)
                    ).model_copy(update={"declarations": declarations})


def test_an_epic_field_declared_on_track_while_stalled_is_optimistic_whoever_set_it() -> None:
    report = judge(plan(), with_epic(declared("on_track", STALLED_AT - DAY)), as_of=STALLED_AT)
    [claim] = claims(report)
    assert claim.evidence["declared_by"] == "alice" and claim.evidence["via"] == "Health"
    assert claim.evidence["item"] == "E-1" and claim.evidence["evidence_shows"] == ["stalled"]
    assert "(Health of E-1)" in claim.message
    assert claim.evidence["notify"] == ["alice", "bob"]
    # While the milestone moves, the field is simply true.
    assert not claims(judge(plan(), with_epic(declared("on_track", FINE_AT - DAY)),
                            as_of=FINE_AT))
    # An account no person matches is named by its account.
    stranger = judge(plan(), with_epic(declared("on_track", STALLED_AT - DAY, author="acc-x")),
                     as_of=STALLED_AT)
    [claim] = claims(stranger)
    assert claim.evidence["declared_by"] is None and claim.evidence["declared_account"] == "acc-x"


def test_a_field_declared_at_risk_the_evidence_does_not_show_is_reported() -> None:
    [claim] = claims(judge(plan(), with_epic(declared("at_risk", FINE_AT - DAY)), as_of=FINE_AT))
    assert claim.evidence["direction"] == "pessimistic"
    assert not claims(judge(plan(), with_epic(declared("at_risk", STALLED_AT - DAY)),
                            as_of=STALLED_AT))


def test_a_field_stands_until_changed_and_the_latest_declaration_wins() -> None:
    old = declared("on_track", START)  # 42 days before: a comment would have lapsed
    assert claims(judge(plan(), with_epic(old), as_of=STALLED_AT))
    changed = with_epic(old, declared("at_risk", STALLED_AT - 2 * DAY))
    assert not claims(judge(plan(), changed, as_of=STALLED_AT))
    # Judged before the change, the field still said on track.
    assert claims(judge(plan(), changed, as_of=STALLED_AT - 3 * DAY))
    # An owner's later comment replaces the field's claim, and the other way round.
    risk_said = with_epic(old, comments=(said("blocked by legal", STALLED_AT - DAY),))
    assert not claims(judge(plan(), risk_said, as_of=STALLED_AT))
    field_later = with_epic(declared("on_track", STALLED_AT - DAY),
                            comments=(said("blocked by legal", STALLED_AT - 2 * DAY),))
    assert [c.evidence["via"] for c in claims(judge(plan(), field_later, as_of=STALLED_AT))] == [
        "Health"]


def test_only_what_the_milestone_selects_is_declared_of_it() -> None:
    other_epic = with_epic(declared("on_track", STALLED_AT - DAY, subject="E-2"))
    assert not claims(judge(plan(), other_epic, as_of=STALLED_AT))
    on_a_story = with_epic(declared("on_track", STALLED_AT - DAY, subject="A-1"))
    assert not claims(judge(plan(), on_a_story, as_of=STALLED_AT))


def test_a_linear_project_update_declares_the_milestone_selecting_that_project() -> None:
    linear = plan(sources={"jira": {"kind": "jsonl", "path": "x"},
                           "eng": {"kind": "linear", "token": "env:LINEAR_API_KEY"}},
                  milestone={"work": [{"source": "eng", "project": "Website"}]},
                  people={"alice": {"senior": True, "accounts": {"eng": "lin-alice"}},
                          "bob": {"accounts": {"eng": "lin-bob"}}})
    ev = Evidence(
        items=(item("ENG-1", source="eng", parent=None, assignee="lin-bob",
                    container="Website"),),
        changes=(change("ENG-1", MOVED, StatusCategory.IN_PROGRESS, source="eng",
                        author="lin-bob"),))

    def update(status: str, subject: str = "Website") -> Evidence:
        return ev.model_copy(update={"declarations": (declared(
            status, STALLED_AT - DAY, subject=subject, source="eng", author="lin-bob",
            where="project update"),)})

    [claim] = claims(judge(linear, update("on_track"), as_of=STALLED_AT))
    assert claim.evidence["declared_by"] == "bob" and "(project update of Website)" in claim.message
    assert not claims(judge(linear, update("on_track", subject="Mobile"), as_of=STALLED_AT))
    assert not claims(judge(linear, update("at_risk"), as_of=STALLED_AT))
