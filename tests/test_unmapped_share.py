"""Unmapped work as a ratio over time: each source's share of activity on items no milestone
selects, week by week, at the weeks' boundaries; and where the reports show it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratmap.judgement import judge
from stratmap.models.records import Comment, Evidence, StatusCategory
from stratmap.models.report import Report, UnmappedShare
from tests.test_engine import DAY, START, change, evidence, item, plan

AS_OF = START + 100 * DAY
WEEK = 7 * DAY
SECOND = timedelta(seconds=1)


def world(*moments: tuple[str, timedelta]) -> Evidence:
    """A-1 (the milestone's, by its epic E-1), E-1 itself, and X-1 that no milestone
    selects; each ``(key, age)`` a status change ``age`` before AS_OF."""
    items = [item("A-1"), item("E-1", parent=None), item("X-1", parent=None)]
    return evidence(items, [change(key, AS_OF - age, StatusCategory.IN_PROGRESS)
                            for key, age in moments])


def share(report: Report, source: str = "jira") -> UnmappedShare:
    return next(s for s in report.unmapped_share if s.source == source)


def test_each_week_counts_activity_outside_the_plan() -> None:
    report = judge(plan(), world(("A-1", DAY), ("X-1", 2 * DAY), ("X-1", 3 * DAY),
                                 ("E-1", 8 * DAY), ("X-1", 9 * DAY)), as_of=AS_OF)
    jira = share(report)
    assert len(jira.weeks) == 12 and jira.weeks[-1].end == AS_OF
    last, before = jira.weeks[-1], jira.weeks[-2]
    assert (last.activity, last.unmapped, last.share) == (3, 2, 0.6667)
    assert (before.activity, before.unmapped, before.share) == (2, 1, 0.5)  # the epic is mapped
    assert all(w.share is None and w.activity == 0 for w in jira.weeks[:-2])
    assert (jira.activity, jira.unmapped, jira.share) == (5, 3, 0.6)
    assert [w.start for w in jira.weeks] == [AS_OF - (12 - n) * WEEK for n in range(12)]


def test_a_week_ends_at_its_boundary_and_twelve_weeks_are_kept() -> None:
    exactly = share(judge(plan(), world(("X-1", WEEK)), as_of=AS_OF))
    assert exactly.weeks[-1].activity == 1 and exactly.weeks[-2].activity == 0
    past = share(judge(plan(), world(("X-1", WEEK + SECOND)), as_of=AS_OF))
    assert past.weeks[-1].activity == 0 and past.weeks[-2].activity == 1
    oldest = share(judge(plan(), world(("X-1", 12 * WEEK - SECOND)), as_of=AS_OF))
    assert oldest.weeks[0].activity == 1
    gone = judge(plan(), world(("X-1", 12 * WEEK)), as_of=AS_OF)
    assert gone.unmapped_share == []  # no activity in the weeks: the source is left out
    # Activity after as_of is not yet there.
    assert judge(plan(), world(("X-1", -DAY)), as_of=AS_OF).unmapped_share == []


def test_comments_count_and_sources_are_apart() -> None:
    words = Comment(source="jira", item_key="X-1", comment_id="c1", at=AS_OF - DAY,
                    author="acc-bob", body="hi")
    other = item("S-1", parent=None, source="site")
    ev = world(("A-1", DAY)).model_copy(update={
        "comments": (words,), "items": (*world().items, other),
        "changes": (change("A-1", AS_OF - DAY, StatusCategory.IN_PROGRESS),
                    change("S-1", AS_OF - DAY, StatusCategory.IN_PROGRESS, source="site"))})
    two = plan(sources={"jira": {"kind": "jsonl", "path": "x"},
                        "site": {"kind": "jsonl", "path": "y"}})
    report = judge(two, ev, as_of=AS_OF)
    assert share(report).weeks[-1].share == 0.5
    assert share(report, "site").share == 1.0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A-1", "E-1", "X-1"]),
                          st.integers(0, 100 * 24)), max_size=12))
def test_invariants(events: list[tuple[str, int]]) -> None:
    report = judge(plan(), world(*[(k, timedelta(hours=h)) for k, h in events]), as_of=AS_OF)
    inside = [(k, h) for k, h in events if timedelta(hours=h) < 12 * WEEK]
    if not inside:
        assert report.unmapped_share == []
        return
    jira = share(report)
    assert jira.activity == len(inside) == sum(w.activity for w in jira.weeks)
    assert jira.unmapped == sum(1 for k, _ in inside if k == "X-1")
    for week in jira.weeks:
        assert 0 <= week.unmapped <= week.activity
        assert (week.share is None) == (week.activity == 0)


def test_markdown_json_and_html_show_the_weekly_share() -> None:
    from stratmap.publish.html import render as html
    from stratmap.publish.markdown import render as markdown

    report = judge(plan(), world(("A-1", DAY), ("X-1", 2 * DAY), ("X-1", 9 * DAY)), as_of=AS_OF)
    assert '"unmapped_share"' in report.to_json()
    text = markdown(report)
    assert "| jira | 67% (2 of 3) | " + " · ".join(["—"] * 10 + ["100%", "50%"]) + " |" in text
    page = html(report)
    section = page[page.index('<section id="organisation">'):]
    section = section[:section.index("</section>")]
    assert "Unmapped work by week" in section and "jira 67% (2 of 3)" in section
    chart = section[section.index('<figure class="trend chart-unmapped"'):]
    assert "<svg" in chart and "source jira" in chart
    assert "Share of activity on items no milestone selects" in chart
    # No activity in the weeks: no chart.
    quiet = html(judge(plan(), world(), as_of=AS_OF))
    assert "chart-unmapped" not in quiet


def test_a_hostile_source_name_is_escaped_in_the_chart() -> None:
    from stratmap.publish.charts import unmapped_svg

    svg = unmapped_svg({"source <script>x</script>": [(AS_OF - WEEK, 0.5), (AS_OF, 1.0)]},
                       as_of=AS_OF)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


@pytest.mark.parametrize(("highest", "top_label"), [
    (0.03, "5%"), (0.08, "10%"), (0.1, "10%"), (0.22, "25%"), (0.6, "100%"), (0.0, "5%")])
def test_the_chart_axis_ends_just_above_the_highest_share(highest: float,
                                                           top_label: str) -> None:
    """A share that stays low is drawn on an axis ending just above it, so its changes
    show; the labels still read as percentages from 0%."""
    from xml.etree import ElementTree

    from stratmap.publish.charts import unmapped_svg

    svg = unmapped_svg({"all sources": [(AS_OF - WEEK, highest / 2), (AS_OF, highest)]},
                       as_of=AS_OF)
    ns = "{http://www.w3.org/2000/svg}"
    labels = [t.text for t in ElementTree.fromstring(svg).iter(f"{ns}text")
              if t.get("text-anchor") == "end"]
    assert labels[0] == "0%" and labels[-1] == top_label and len(labels) == 6
