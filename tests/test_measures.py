"""Measures: numbers over time on goals and milestones (issue 16), from the plan file to the
findings they imply."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratmap.models.planfile import PlanError, parse_plan

PLAN = """\
version: 1
name: Measured plan
leader: alice
people:
  alice: {name: Alice}
goals:
  - id: revenue
    title: Double online revenue
    owner: alice
    progress: measure
    measures:
      - id: online
        title: Online revenue per week
        source: {kind: csv, path: revenue.csv}
        baseline: {value: 100, date: 2027-01-01}
        target: {value: 200, date: 2027-07-01}
        unit: EUR
        every: 7d
    milestones:
      - id: shop
        title: New shop
        owner: alice
        measures:
          - id: orders
            source: {kind: sql, url: "postgresql://reader@db/sales",
                     password: env:SALES_PASSWORD, query: "SELECT day, n FROM orders"}
            baseline: {value: 50, date: 2027-01-01}
            target: {value: 10, date: 2027-04-01}
            direction: down
            lead: true
          - id: visits
            source: {kind: prometheus, url: "http://prom:9090", query: "sum(visits)", step: 1h}
            baseline: {value: 1, date: 2027-01-01}
            target: {value: 2, date: 2027-04-01}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as raised:
        parse_plan(text, file="plan.yaml")
    return [str(p) for p in raised.value.problems]


def test_a_plan_with_measures_of_every_kind() -> None:
    plan = parse_plan(PLAN)
    refs = plan.measure_ids()
    assert list(refs) == ["revenue.online", "revenue.shop.orders", "revenue.shop.visits"]
    goal, milestone, online = refs["revenue.online"]
    assert milestone is None and online.source.kind == "csv" and online.every is not None
    assert online.direction == "up" and not online.lead
    orders = refs["revenue.shop.orders"][2]
    assert orders.lead and orders.direction == "down" and orders.source.kind == "sql"
    assert plan.rules_for(goal).progress == "measure"


BROKEN = [
    ("unknown source kind", "{kind: csv, path: revenue.csv}", "{kind: excel, path: r.xlsx}",
     "plan.yaml:14:17: unknown measure source kind 'excel' (use one of csv, prometheus, sql)"),
    ("target below baseline going up", "target: {value: 200,", "target: {value: 90,",
     "plan.yaml:16:25: direction up needs a target above the baseline (100)"),
    ("target before baseline", "target: {value: 200, date: 2027-07-01}",
     "target: {value: 200, date: 2026-07-01}",
     "plan.yaml:16:36: the target date 2026-07-01 is not after the baseline date 2027-01-01"),
    ("down needs a lower target", "target: {value: 10,", "target: {value: 60,",
     "plan.yaml:28:29: direction down needs a target below the baseline (50)"),
    ("password in the url", "postgresql://reader@db/sales", "postgresql://reader:s3cret@db/sales",
     "plan.yaml:25:38: a password is never written in the plan"),
    ("literal password", "password: env:SALES_PASSWORD", "password: hunter2",
     "plan.yaml:26:32: a secret is never written in the plan"),
    ("prometheus without http", '"http://prom:9090"', '"prom:9090"',
     "plan.yaml:32:45: the Prometheus URL starts with http://"),
    ("bad every", "every: 7d", "every: weekly",
     "plan.yaml:18:16: a duration is written like 14d"),
    ("unknown direction", "direction: down", "direction: sideways",
     "plan.yaml:29:24: direction must be up or down, not 'sideways'"),
    ("a measure id twice", "- id: visits", "- id: orders",
     "plan.yaml:31:17: measure id 'orders' is already used here (by a measure)"),
    ("a goal measure named like a milestone", "- id: online", "- id: shop",
     "plan.yaml:12:13: measure id 'shop' is already used here (by a milestone)"),
    ("missing target", "        target: {value: 200, date: 2027-07-01}\n", "",
     "plan.yaml:12:9: missing required field 'target'"),
    ("progress measure without measures", "        owner: alice\n        measures:",
     "        owner: alice\n        progress: measure\n        measures: []\n        x_measures:",
     "plan.yaml:23:19: progress: measure needs measures here"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_broken_measures_name_line_and_column(old: str, new: str, expected: str) -> None:
    assert old in PLAN
    found = problems(PLAN.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_the_init_template_measure_example_is_valid(tmp_path: Path) -> None:
    """The template's commented measure, uncommented, is a valid measure."""
    from stratmap.flows.cli import main

    assert main(["init", str(tmp_path / "plan.yaml")]) == 0
    lines = (tmp_path / "plan.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("# measures:"))
    out = []
    for line in lines[start:]:
        if not line.strip().startswith("#"):
            break
        body = line.split("#", 1)[1][1:]
        out.append(" " * line.index("#") + body)
    text = "\n".join(lines[:start] + out + lines[start + len(out):])
    plan = parse_plan(text)
    measure = plan.goals[0].measures[0]
    assert measure.id == "revenue" and measure.unit == "EUR" and measure.source.kind == "csv"
    assert plan.goals[0].progress == "measure"
