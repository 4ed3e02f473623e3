"""A milestone's due_history: the slip log the plan file brings from before stratmap
recorded it, judged with the log the runs record, and validated with its position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratmap.judgement import judge
from stratmap.models.planfile import PlanError, parse_plan
from stratmap.models.records import DueChange
from stratmap.models.report import Kind, Report
from tests.test_engine import DAY, START, change, evidence, item, plan

AS_OF = START + 60 * DAY
HISTORY = [{"due": "2027-03-01", "moved": "2027-01-10"},
           {"due": "2027-03-05", "moved": "2027-01-20"},
           {"due": "2027-03-09", "moved": "2027-02-01"}]


def judged(history: list[dict[str, Any]], *, as_of: datetime = AS_OF,
           recorded: tuple[DueChange, ...] = ()) -> Report:
    ev = evidence([item("A-1")], [change("A-1", as_of - DAY, item("A-1").status_category)])
    return judge(plan(milestone={"due": "2027-03-10", "due_history": history}),
                 ev.model_copy(update={"due_changes": recorded}), as_of=as_of)


def slipped(report: Report) -> list[Any]:
    return [f for f in report.findings if f.kind is Kind.DATE_SLIPPED]


def test_the_plan_history_is_the_slip_log_and_can_slip() -> None:
    report = judged(HISTORY)
    assert [(e.where, e.from_due, e.to_due, e.slip_days) for e in report.slip_log] == [
        ("plan history", "2027-03-01", "2027-03-05", 4),
        ("plan history", "2027-03-05", "2027-03-09", 4),
        ("plan history", "2027-03-09", "2027-03-10", 1)]
    assert report.slip_log[0].at == datetime(2027, 1, 10, tzinfo=UTC)  # the plan's zone: UTC
    [finding] = slipped(report)
    assert finding.evidence["slips"] == 3 and "moved later 3 times (limit 2)" in finding.message
    # Two moves are within the limit.
    assert not slipped(judged(HISTORY[1:]))


def test_only_moves_made_by_as_of_count() -> None:
    third = datetime(2027, 2, 1, tzinfo=UTC)
    assert slipped(judged(HISTORY, as_of=third))
    before = judged(HISTORY, as_of=third - timedelta(seconds=1))
    assert not slipped(before) and len(before.slip_log) == 2


def test_moves_after_the_first_recorded_due_are_the_runs_to_record() -> None:
    start = DueChange(plan="P", milestone="g.m", at=datetime(2027, 1, 25, tzinfo=UTC),
                      where="plan", to_due="2027-03-09")
    report = judged(HISTORY, recorded=(start,))
    assert [(e.from_due, e.to_due) for e in report.slip_log] == [
        ("2027-03-01", "2027-03-05"), ("2027-03-05", "2027-03-09")]
    assert not slipped(report)
    later = DueChange(plan="P", milestone="g.m", at=datetime(2027, 2, 1, tzinfo=UTC),
                      where="plan", from_due="2027-03-09", to_due="2027-03-10")
    both = judged(HISTORY, recorded=(start, later))
    assert [e.where for e in both.slip_log] == ["plan history", "plan history", "plan"]
    assert slipped(both)


PLAN = """\
version: 1
name: P
leader: a
people: {a: {name: A}}
goals:
  - id: g
    title: G
    milestones:
      - id: m
        title: M
DUE
        due_history:
          - {due: 2027-03-01, moved: 2027-01-20}
          - {due: 2027-03-05, moved: 2027-01-10}
"""


def test_due_history_is_validated_with_its_position() -> None:
    with pytest.raises(PlanError) as raised:
        parse_plan(PLAN.replace("DUE", "        due: 2027-03-10"), file="plan.yaml")
    [order] = [str(p) for p in raised.value.problems]
    assert order.startswith("plan.yaml:14:38:") and "oldest first" in order
    with pytest.raises(PlanError) as raised:
        parse_plan(PLAN.replace("DUE\n", ""), file="plan.yaml")
    assert any(str(p).startswith("plan.yaml:11:9:") and "needs the milestone's due" in str(p)
               for p in raised.value.problems), raised.value.problems
    with pytest.raises(PlanError) as raised:
        parse_plan(PLAN.replace("DUE", "        due: 2027-03-10").replace(
            "moved: 2027-01-10", "moved: soon"), file="plan.yaml")
    assert any(str(p).startswith("plan.yaml:14:") for p in raised.value.problems)
