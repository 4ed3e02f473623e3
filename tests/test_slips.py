"""date_slipped and the slip log: due date changes of the plan file, detected between runs
by content and stored (revision 0007_slips), judged at each boundary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratmap.flows.cli import main
from stratmap.judgement import judge
from stratmap.models.records import DueChange
from stratmap.models.report import Kind, Report
from stratmap.models.store import Store, load_due_changes, record_plan_dues
from tests.test_engine import DAY, START, change, evidence, item, plan
from tests.test_engine import StatusCategory as Category

AS_OF = START + 60 * DAY


def moved(*dues: str, ref: str = "g.m", where: str = "plan") -> tuple[DueChange, ...]:
    """The log of a milestone whose due date was ``dues[0]``, then each next one, a week
    apart."""
    log = [DueChange(plan="P", milestone=ref, at=START, where=where, to_due=dues[0])]
    log += [DueChange(plan="P", milestone=ref, at=START + (n + 1) * 7 * DAY, where=where,
                      from_due=before, to_due=after)
            for n, (before, after) in enumerate(pairwise(dues))]
    return tuple(log)


def judged(log: tuple[DueChange, ...], as_of: datetime = AS_OF, **rules: Any) -> Report:
    ev = evidence([item("A-1")], [change("A-1", as_of - DAY, Category.IN_PROGRESS)])
    return judge(plan(milestone=rules), ev.model_copy(update={"due_changes": log}), as_of=as_of)


def slipped(report: Report) -> list[Any]:
    return [f for f in report.findings if f.kind is Kind.DATE_SLIPPED]


def test_date_slipped_beyond_max_slips() -> None:
    twice = moved("2027-03-01", "2027-03-05", "2027-03-09")
    assert not slipped(judged(twice))  # 2 slips, limit 2, 8 days in all
    thrice = moved("2027-03-01", "2027-03-05", "2027-03-09", "2027-03-10")
    [finding] = slipped(judged(thrice))
    assert (finding.milestone, finding.person) == ("g.m", "bob")
    assert finding.evidence["slips"] == 3 and finding.evidence["total_days"] == 9
    assert finding.message == ("The due date of g.m moved later 3 times (limit 2): from "
                               "2027-03-01 to 2027-03-10")
    assert [e["to_due"] for e in finding.evidence["log"]] == [
        "2027-03-05", "2027-03-09", "2027-03-10"]
    # An earlier date is a change in the log, not a slip.
    back = moved("2027-03-01", "2027-03-05", "2027-03-09", "2027-03-02")
    assert not slipped(judged(back))


def test_date_slipped_beyond_max_slip_total() -> None:
    exactly = moved("2027-03-01", "2027-03-31")
    assert not slipped(judged(exactly))  # 30 days, limit 30d
    beyond = moved("2027-03-01", "2027-04-01")
    [finding] = slipped(judged(beyond))
    assert "moved 31 days later in all (limit 30d)" in finding.message
    assert not slipped(judged(beyond, max_slip_total="31d"))
    assert slipped(judged(moved("2027-03-01", "2027-03-02"), max_slip_total="12h"))


def test_only_changes_seen_by_as_of_count() -> None:
    log = moved("2027-03-01", "2027-03-05", "2027-03-09", "2027-03-10")
    seen_last = log[-1].at
    assert slipped(judged(log, as_of=seen_last))
    assert not slipped(judged(log, as_of=seen_last - timedelta(seconds=1)))
    assert [e.to_due for e in judged(log, as_of=seen_last - timedelta(seconds=1)).slip_log] == [
        "2027-03-05", "2027-03-09"]


def test_the_slip_log_lists_changes_not_where_a_log_starts() -> None:
    report = judged(moved("2027-03-01", "2027-03-05T12:00:00+00:00"))
    [entry] = report.slip_log
    assert (entry.milestone, entry.where, entry.from_due, entry.slip_days) == (
        "g.m", "plan", "2027-03-01", 4.5)
    other = judged((DueChange(plan="other plan", milestone="g.m", at=START, where="plan",
                              from_due="2027-03-01", to_due="2027-09-01"),))
    assert not other.slip_log and not slipped(other)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(-20, 40), max_size=6), st.integers(0, 4), st.integers(1, 60))
def test_invariants(steps: list[int], most: int, days: int) -> None:
    dues = ["2027-03-01"]
    for step in steps:
        dues.append((datetime.fromisoformat(dues[-1]) + timedelta(days=step)).date().isoformat())
    report = judged(moved(*dues), max_slips=most, max_slip_total=f"{days}d")
    assert len(report.slip_log) == len(steps)
    later = sum(1 for s in steps if s > 0)
    total = sum(steps)
    assert bool(slipped(report)) == (later > most or total > days)
    assert sum(e.slip_days or 0 for e in report.slip_log) == total


# -- the store and runs --------------------------------------------------------------------------


def test_dues_are_recorded_by_content(store: Store) -> None:
    at = datetime(2027, 1, 4, tzinfo=UTC)
    first = record_plan_dues(store, "P", {"g.m": "2027-03-01", "g.n": None}, at)
    assert [(c.milestone, c.from_due, c.to_due) for c in first] == [("g.m", None, "2027-03-01")]
    assert record_plan_dues(store, "P", {"g.m": "2027-03-01", "g.n": None}, at + DAY) == []
    again = record_plan_dues(store, "P", {"g.m": "2027-03-08", "g.n": "2027-05-01"}, at + 2 * DAY)
    assert [(c.milestone, c.from_due, c.to_due) for c in again] == [
        ("g.m", "2027-03-01", "2027-03-08"), ("g.n", None, "2027-05-01")]
    log = load_due_changes(store, "P")
    assert [(c.milestone, c.at, c.to_due) for c in log] == [
        ("g.m", at, "2027-03-01"), ("g.m", at + 2 * DAY, "2027-03-08"),
        ("g.n", at + 2 * DAY, "2027-05-01")]
    assert load_due_changes(store, "another plan") == ()


SAMPLE_PLAN = """\
version: 1
name: Slips
leader: alice
people: {alice: {name: Alice}}
sources:
  jira: {kind: jsonl, path: export}
defaults: {max_slips: 1}
goals:
  - id: g
    title: G
    owner: alice
    milestones:
      - id: m
        title: M
        owner: alice
        start: 2027-01-01
        due: DUE
        work: [{source: jira, keys: [A-1]}]
"""


def test_runs_record_each_change_of_the_plan_file_once(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "items.jsonl").write_text(
        '{"key": "A-1", "title": "a", "status": "In Progress", "status_category": '
        '"in_progress", "created": "2027-01-02T00:00:00Z", "updated": "2027-01-02T00:00:00Z"}\n')
    plan_file, out = tmp_path / "plan.yaml", tmp_path / "out.json"
    url = f"sqlite:///{tmp_path / 's.db'}"

    def run(due: str, when: str) -> dict[str, Any]:
        import json

        plan_file.write_text(SAMPLE_PLAN.replace("DUE", due))
        assert main(["run", str(plan_file), "--db", url, "--as-of", when, "--json", str(out),
                     "--quiet"]) in (0, 1)
        data: dict[str, Any] = json.loads(out.read_text())
        return data

    run("2027-03-01", "2027-01-10")
    run("2027-03-01", "2027-01-17")
    second = run("2027-03-15", "2027-01-24")
    assert [(e["from_due"], e["to_due"], e["where"]) for e in second["slip_log"]] == [
        ("2027-03-01", "2027-03-15", "plan")]
    assert not [f for f in second["findings"] if f["kind"] == "date_slipped"]
    third = run("2027-03-29", "2027-01-31")
    assert len(third["slip_log"]) == 2
    [finding] = [f for f in third["findings"] if f["kind"] == "date_slipped"]
    assert finding["milestone"] == "g.m" and finding["person"] == "alice"
    with Store(url) as store:
        assert len(load_due_changes(store, "Slips")) == 3


def test_markdown_and_html_show_the_slip_log() -> None:
    from stratmap.publish.html import render as html
    from stratmap.publish.markdown import render as markdown

    report = judged(moved("2027-03-01", "2027-03-05", "2027-03-09", "2027-03-10"))
    text = markdown(report)
    assert "| `g.m` | 2027-01-08 | plan | 2027-03-01 | 2027-03-05 | 4 |" in text
    page = html(report)
    section = page[page.index('<section id="organisation">'):]
    assert section.count('<tr class="slip">') == 3 and "date_slipped" in section
