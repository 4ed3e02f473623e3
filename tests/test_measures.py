"""Measures: numbers over time on goals and milestones (issue 16), from the plan file to the
findings they imply."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from stratmap.connectors.base import AuthError, FatalSourceError
from stratmap.connectors.measures import read_csv, read_prometheus, read_sql
from stratmap.judgement import judge
from stratmap.models.planfile import PlanError, parse_plan
from stratmap.models.records import Evidence, MeasureValue
from stratmap.models.report import Kind, Severity, Status
from stratmap.models.store import (
    Store,
    load_measure_values,
    measure_watermark,
)

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


# -- sources and storage ----------------------------------------------------------------------

def day(n: int) -> datetime:
    return datetime(2027, 1, 1, tzinfo=UTC) + timedelta(days=n)


def test_csv_values_with_a_header_and_since(tmp_path: Path) -> None:
    path = tmp_path / "revenue.csv"
    path.write_text("week,revenue\n2027-01-01,100\n2027-01-08T00:00Z,110.5\n\n2027-01-15,120\n")
    values = read_csv("revenue.online", path)
    assert [(v.at, v.value) for v in values] == [(day(0), 100.0), (day(7), 110.5),
                                                 (day(14), 120.0)]
    assert [v.value for v in read_csv("revenue.online", path, since=day(7))] == [110.5, 120.0]


def test_csv_bad_rows_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "revenue.csv"
    path.write_text("2027-01-01,100\n2027-01-08,lots\n")
    with pytest.raises(FatalSourceError, match=r"revenue.csv:2: not a number: 'lots'"):
        read_csv("revenue.online", path)
    path.write_text("2027-01-01,100\nyesterday,5\n")
    with pytest.raises(FatalSourceError, match=r"revenue.csv:2: not a time: 'yesterday'"):
        read_csv("revenue.online", path)


def _prometheus(seen: list[httpx.Request], body: dict[str, object],
                status: int = 200) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    return httpx.Client(transport=httpx.MockTransport(answer))


def _matrix(*pairs: tuple[datetime, str]) -> dict[str, object]:
    """Prometheus's query_range answer, as /api/v1/query_range gives it."""
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"job": "shop"}, "values": [[at.timestamp(), v] for at, v in pairs]}]}}


def test_prometheus_query_range_on_the_wire() -> None:
    seen: list[httpx.Request] = []
    client = _prometheus(seen, _matrix((day(0), "1.5"), (day(1), "2")))
    values = read_prometheus("shop.visits", client, "http://prom:9090/", "sum(visits)",
                             start=day(0), end=day(1), step=timedelta(days=1), token="t0k")
    assert [(v.at, v.value) for v in values] == [(day(0), 1.5), (day(1), 2.0)]
    (request,) = seen
    assert request.url.path == "/api/v1/query_range"
    assert dict(request.url.params) == {"query": "sum(visits)",
                                        "start": f"{day(0).timestamp():.3f}",
                                        "end": f"{day(1).timestamp():.3f}", "step": "86400s"}
    assert request.headers["authorization"] == "Bearer t0k"


def test_prometheus_errors_are_classed() -> None:
    error = {"status": "error", "errorType": "bad_data", "error": "parse error at char 4"}
    with pytest.raises(FatalSourceError, match="bad_data: parse error"):
        read_prometheus("m", _prometheus([], error, 400), "http://p", "sum(", start=day(0),
                        end=day(1), step=timedelta(days=1))
    with pytest.raises(AuthError):
        read_prometheus("m", _prometheus([], {}, 401), "http://p", "up", start=day(0),
                        end=day(1), step=timedelta(days=1))
    two = _matrix((day(0), "1"))
    two["data"]["result"] *= 2  # type: ignore[index]
    with pytest.raises(FatalSourceError, match="returns 2 series"):
        read_prometheus("m", _prometheus([], two), "http://p", "up", start=day(0),
                        end=day(1), step=timedelta(days=1))


SALES = """\
version: 1
name: Sales plan
leader: alice
people:
  alice: {name: Alice}
goals:
  - id: revenue
    title: Double revenue
    owner: alice
    measures:
      - id: online
        source: {kind: sql, url: "URL", query: "SELECT week, total FROM sales_weekly
                 WHERE week >= :since ORDER BY week"}
        baseline: {value: 100, date: 2027-01-01}
        target: {value: 400, date: 2027-07-01}
        every: 7d
      - id: shop
        source: {kind: csv, path: shop.csv}
        baseline: {value: 10, date: 2027-01-01}
        target: {value: 20, date: 2027-07-01}
"""


def test_sql_and_csv_measures_sync_incrementally_and_idempotently(
        store_url: str, tmp_path: Path) -> None:
    """On SQLite and PostgreSQL: a first sync stores everything, a second reads from the last
    value minus the overlap and stores only what is new; a revised value replaces its
    moment's; values gone from the source are kept."""
    from stratmap.flows.measures import plan_evidence, sync_measures

    (tmp_path / "shop.csv").write_text("time,value\n2027-01-01,10\n2027-01-08,11\n")
    plan = parse_plan(SALES.replace("URL", store_url))
    with Store(store_url) as store:
        sales = create_engine(store_url)
        with sales.begin() as connection:
            connection.execute(text("CREATE TABLE sales_weekly (week TIMESTAMP, total FLOAT)"))
            connection.execute(text("INSERT INTO sales_weekly VALUES (:w, :t)"),
                               [{"w": day(7 * n).replace(tzinfo=None), "t": 100 + 5 * n}
                                for n in range(4)])
        first = sync_measures(plan, store, plan_dir=tmp_path, started=day(30))
        assert first == {"revenue.online": 4, "revenue.shop": 2}
        assert measure_watermark(store, plan.name, "revenue.online") == day(21)
        again = sync_measures(plan, store, plan_dir=tmp_path, started=day(31))
        assert again == {"revenue.online": 0, "revenue.shop": 0}
        with sales.begin() as connection:
            connection.execute(text("UPDATE sales_weekly SET total = 117 WHERE total = 115"))
            connection.execute(text("INSERT INTO sales_weekly VALUES (:w, 120)"),
                               {"w": day(28).replace(tzinfo=None)})
            connection.execute(text("DELETE FROM sales_weekly WHERE total = 100"))
        (tmp_path / "shop.csv").write_text("time,value\n2027-01-08,11\n2027-01-15,12\n")
        third = sync_measures(plan, store, plan_dir=tmp_path, started=day(32))
        assert third == {"revenue.online": 1, "revenue.shop": 1}
        sales.dispose()
        online = [(v.at, v.value) for v in load_measure_values(store, plan.name)
                  if v.measure == "revenue.online"]
        assert online == [(day(0), 100.0), (day(7), 105.0), (day(14), 110.0), (day(21), 117.0),
                          (day(28), 120.0)]
        evidence = plan_evidence(store, plan)
        assert len(evidence.measures) == 8
    # Judged from the store: the SQL measure's trend (about +0.7/day) will not reach 400 by
    # July, and no value came for 12 days (every 7d); the CSV one has no `every`.
    report = judge(plan, evidence, as_of=day(40))
    found = sorted((f.kind.value, f.evidence["measure"]) for f in report.findings
                   if f.kind.value in ("off_target", "stale_measure"))
    assert found == [("off_target", "revenue.online"), ("stale_measure", "revenue.online")]


def test_a_failing_sql_measure_is_an_error_without_its_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sales.db'}"
    with pytest.raises(FatalSourceError, match="the query failed") as raised:
        read_sql("revenue.online", url, "SELECT nothing FROM nowhere")
    assert str(tmp_path) not in str(raised.value)


# -- judgement ----------------------------------------------------------------------------------


JUDGED = """\
version: 1
name: Judged plan
leader: alice
people:
  alice: {name: Alice}
goals:
  - id: revenue
    title: Revenue
    owner: alice
    progress: measure
    measures:
      - id: online
        source: {kind: csv, path: r.csv}
        baseline: {value: 100, date: 2027-01-01}
        target: {value: 300, date: 2027-07-20}
        unit: EUR
        every: 7d
"""


def judged(values: dict[int, float], *, at: datetime, plan_text: str = JUDGED,
           ref: str = "revenue.online"):  # type: ignore[no-untyped-def]
    plan = parse_plan(plan_text)
    evidence = Evidence(measures=tuple(MeasureValue(measure=ref, at=day(d), value=v)
                                       for d, v in values.items()))
    return judge(plan, evidence, as_of=at)


def kinds(report) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.kind.value for f in report.findings]


def test_on_track_exactly_at_the_required_rate() -> None:
    """The target needs +1/day (200 in 200 days): a trend of exactly that is no finding."""
    report = judged({0: 100, 7: 107, 14: 114, 21: 121}, at=day(21))
    assert kinds(report) == []
    (measure,) = report.goals[0].measures
    assert measure.rate == 1.0 and measure.forecast == 300.0
    assert measure.progress == pytest.approx(21 / 200, abs=1e-4)
    assert report.goals[0].progress == measure.progress  # progress: measure
    assert report.goals[0].status is Status.ON_TRACK


def test_off_target_just_below_the_required_rate() -> None:
    report = judged({0: 100, 7: 107, 14: 114, 21: 120}, at=day(21))
    (finding,) = report.findings
    assert finding.kind is Kind.OFF_TARGET and finding.severity is Severity.WARNING
    assert finding.goal == "revenue" and finding.milestone is None and finding.person == "alice"
    evidence = finding.evidence
    assert evidence["last_value"] == 120 and evidence["points"] == 4
    assert evidence["forecast"] < 300
    assert evidence["required_rate"] == pytest.approx(180 / 179)
    assert "revenue.online is off target: at 120 EUR" in finding.message
    assert report.goals[0].status is Status.AT_RISK


def test_off_target_needs_enough_points_in_the_window() -> None:
    """Three values are too few for a trend; older values out of the window do not count."""
    assert kinds(judged({7: 100, 14: 101, 21: 102}, at=day(21))) == []
    assert kinds(judged({0: 100, 7: 100, 14: 101, 21: 102}, at=day(21))) == ["off_target"]
    plan = JUDGED.replace("every: 7d", "every: 7d\n        window: 14d")
    assert kinds(judged({0: 100, 7: 100, 14: 101, 21: 102}, at=day(21), plan_text=plan)) == []


def test_a_missed_target_is_critical_and_off_track() -> None:
    report = judged({0: 100, 100: 200, 200: 290}, at=day(201))
    (finding,) = report.findings
    assert finding.kind is Kind.OFF_TARGET and finding.severity is Severity.CRITICAL
    assert "missed its target: 290 EUR on 2027-07-20" in finding.message
    assert report.goals[0].status is Status.OFF_TRACK
    reached = judged({0: 100, 100: 200, 200: 300}, at=day(201))
    assert kinds(reached) == [] and reached.goals[0].status is Status.DONE


def test_stale_measure_after_more_than_every() -> None:
    values = {0: 100, 7: 107, 14: 114, 21: 121}
    assert kinds(judged(values, at=day(28))) == []
    report = judged(values, at=day(28) + timedelta(seconds=1))
    (finding,) = report.findings
    assert finding.kind is Kind.STALE_MEASURE
    assert finding.evidence == {"measure": "revenue.online", "last_at": day(21).isoformat(),
                                "every": "7d"}
    assert report.goals[0].status is Status.AT_RISK


def test_a_measure_without_values_is_stale_from_its_baseline() -> None:
    assert kinds(judged({}, at=day(7))) == []
    report = judged({}, at=day(8))
    assert kinds(report) == ["stale_measure"]
    assert "no value yet" in report.findings[0].message


def test_a_falling_measure_on_a_milestone() -> None:
    plan = """\
version: 1
name: Churn plan
leader: alice
people:
  alice: {name: Alice}
goals:
  - id: retention
    title: Retention
    owner: alice
    milestones:
      - id: churn
        title: Lower churn
        owner: alice
        progress: measure
        measures:
          - id: rate
            source: {kind: csv, path: churn.csv}
            baseline: {value: 10, date: 2027-01-01}
            target: {value: 5, date: 2027-03-02}
            direction: down
            lead: true
"""
    ref = "retention.churn.rate"
    slow = judged({0: 10, 7: 9.9, 14: 9.8, 21: 9.7}, at=day(21), plan_text=plan, ref=ref)
    (finding,) = slow.findings
    assert finding.kind is Kind.OFF_TARGET and finding.milestone == "retention.churn"
    milestone = slow.goals[0].milestones[0]
    assert milestone.status is Status.AT_RISK and milestone.measures[0].lead
    assert milestone.progress == pytest.approx(0.06)
    fast = judged({0: 10, 7: 9, 14: 8, 21: 7}, at=day(21), plan_text=plan, ref=ref)
    assert kinds(fast) == [] and fast.goals[0].milestones[0].status is Status.ON_TRACK
    met = judged({0: 10, 7: 4}, at=day(21), plan_text=plan, ref=ref)
    assert met.goals[0].milestones[0].status is Status.DONE  # measures alone, all met


# -- reports ------------------------------------------------------------------------------------


def test_measures_in_the_json_markdown_and_html_reports() -> None:
    import json

    import jsonschema

    from stratmap.models.schemas import schema
    from stratmap.publish import html, markdown

    report = judged({0: 100, 7: 107, 14: 114, 21: 120}, at=day(21))
    data = json.loads(report.to_json())
    jsonschema.validate(data, schema("report"))
    (row,) = data["goals"][0]["measures"]
    assert row["id"] == "revenue.online" and row["last_value"] == 120
    assert row["values"][-1] == [day(21).isoformat(), 120.0]
    assert row["baseline"] == {"value": 100.0, "date": "2027-01-01"}
    assert row["required_rate"] == pytest.approx(180 / 179, abs=1e-6)

    text = markdown.render(report)
    assert "## Measures" in text
    line = next(line for line in text.splitlines() if "`revenue.online`" in line)
    assert "| lag, up | 120 EUR (2027-01-22) | 100 EUR on 2027-01-01 | 300 EUR by 2027-07-20 |" \
        in line
    assert line.endswith("| 10% | +0.9571 | +1.006 | 291.629 EUR |")

    page = html.render(report)
    figure = page[page.index('id="measure-revenue-online"'):]
    figure = figure[:figure.index("</figure>")]
    assert "120 EUR on 2027-01-22" in figure and "target 300 EUR by 2027-07-20" in figure
    assert figure.count("<svg") == 1 and "forecast" in figure and "target line" in figure


def test_reports_of_a_plan_without_measures_have_no_measures_section() -> None:
    from stratmap.publish import markdown

    plan = parse_plan(JUDGED.replace("progress: measure\n", "").split("    measures:")[0])
    report = judge(plan, Evidence(), as_of=day(1))
    assert report.goals[0].measures == [] and "## Measures" not in markdown.render(report)


# -- published metrics ----------------------------------------------------------------------------


def test_dashboard_views_and_openmetrics_from_a_run(store_url: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A run with a CSV measure, then the documented views and `stratmap metrics`, on SQLite
    and PostgreSQL."""
    from prometheus_client.parser import text_string_to_metric_families

    from stratmap.flows.metrics import openmetrics_text
    from stratmap.flows.run import track

    (tmp_path / "r.csv").write_text("time,value\n2027-01-01,100\n2027-01-08,107\n"
                                    "2027-01-15,114\n2027-01-22,120\n")
    text_ = JUDGED.replace("    milestones:", "").rstrip() + """
    milestones:
      - id: shop
        title: Shop
        owner: alice
        due: 2027-01-10
"""
    plan = parse_plan(text_)
    monkeypatch.setattr("stratmap.flows.run.utcnow", lambda: day(21) + timedelta(hours=1))
    tracked = track(plan, plan_dir=tmp_path, db=store_url)
    assert tracked.failed == {}
    assert sorted(kinds(tracked.report)) == ["inactive_owner", "off_target", "overdue"]
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            def rows(sql: str) -> list[dict[str, object]]:
                return [dict(r._mapping) for r in connection.execute(text(sql))]

            goals = rows("SELECT plan, goal, day, status, progress, findings "
                         "FROM stratmap_goal_daily WHERE origin = 'run'")
            assert goals == [{"plan": "Judged plan", "goal": "revenue",
                              "day": goals[0]["day"], "status": "off_track",
                              "progress": pytest.approx(0.1), "findings": 3}]
            assert str(goals[0]["day"]) == "2027-01-22"
            milestones = rows("SELECT goal, milestone, status, items_total "
                              "FROM stratmap_milestone_daily WHERE origin = 'run'")
            assert milestones == [{"goal": "revenue", "milestone": "revenue.shop",
                                   "status": "off_track", "items_total": 0}]
            found = rows("SELECT level, goal, milestone, kind, findings FROM stratmap_findings "
                         "WHERE origin = 'run' ORDER BY level, kind")
            assert {"level": "goal", "goal": "revenue", "milestone": None,
                    "kind": "off_target", "findings": 1} in found
            assert {"level": "milestone", "goal": "revenue", "milestone": "revenue.shop",
                    "kind": "overdue", "findings": 1} in found
            measures = rows("SELECT goal, milestone, measure, value FROM stratmap_measures "
                            "ORDER BY at")
            assert [m["value"] for m in measures] == [100, 107, 114, 120]
            assert measures[0] == {"goal": "revenue", "milestone": None,
                                   "measure": "revenue.online", "value": 100}
    finally:
        engine.dispose()
    with Store(store_url) as store:
        exposition = openmetrics_text(plan, store)
    assert exposition.endswith("# EOF\n")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(exposition)
               for s in family.samples}
    assert samples[("stratmap_goal_progress", (("goal", "revenue"), ("plan", "Judged plan")))] \
        == pytest.approx(0.1)
    assert samples[("stratmap_goal_status", (("goal", "revenue"), ("plan", "Judged plan"),
                                             ("status", "off_track")))] == 1
    assert samples[("stratmap_findings", (("goal", "revenue"), ("kind", "off_target"),
                                          ("plan", "Judged plan")))] == 1
    where = (("goal", "revenue"), ("measure", "revenue.online"), ("milestone", ""),
             ("plan", "Judged plan"))
    assert samples[("stratmap_measure_value", where)] == 120
    assert samples[("stratmap_measure_target", where)] == 300
    labels = {name for (_, pairs) in samples for name, _ in pairs}
    assert labels == {"plan", "goal", "milestone", "measure", "status", "kind"}


def test_the_sample_shows_its_measures_and_the_grafana_queries_run(store_url: str,
                                                                   tmp_path: Path) -> None:
    """The sample's revenue measure is off target and its sessions measure stale, in the JSON
    and Markdown reports; every query of the Grafana dashboard in deployments/ runs on the
    store's views and gives rows."""
    import json

    from stratmap.flows.cli import main
    from tests.conftest import EXAMPLES

    sample = EXAMPLES / "northwind" / "plan.yaml"
    out = tmp_path / "out.json"
    assert main(["run", str(sample), "--db", store_url, "--as-of", "2027-03-01T09:00Z",
                 "--json", str(out), "--quiet"]) == 0
    report = json.loads(out.read_text())
    measured = {f["kind"]: f["evidence"]["measure"] for f in report["findings"]
                if f["kind"] in ("off_target", "stale_measure")}
    assert measured == {"off_target": "brand.revenue", "stale_measure": "brand.sessions"}
    brand = report["goals"][0]
    assert [m["id"] for m in brand["measures"]] == ["brand.revenue", "brand.sessions"]
    md = tmp_path / "report.md"
    assert main(["report", str(sample), "--db", store_url, "--as-of", "2027-03-01T09:00Z",
                 "-o", str(md)]) == 0
    assert "| Weekly online revenue (`brand.revenue`) | lag, up | 150,300 GBP" in md.read_text()
    dashboard = json.loads((Path(__file__).parent.parent / "deployments"
                            / "grafana-dashboard.json").read_text())
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            for panel in dashboard["panels"]:
                (target,) = panel["targets"]
                assert connection.execute(text(target["rawSql"])).fetchall(), panel["title"]
    finally:
        engine.dispose()


def test_a_run_pushes_its_metrics_to_the_plans_pushgateway(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`metrics: {pushgateway: URL}`: each run PUTs the plan's metrics (the Pushgateway's
    text protocol, grouped by job and plan) to a local server standing in for it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from prometheus_client.parser import text_string_to_metric_families

    from stratmap.flows.run import track

    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "r.csv").write_text("2027-01-01,100\n2027-01-08,107\n")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        plan = parse_plan(JUDGED + f"metrics: {{pushgateway: \"{url}\"}}\n")
        monkeypatch.setattr("stratmap.flows.run.utcnow", lambda: day(8))
        tracked = track(plan, plan_dir=tmp_path, db=f"sqlite:///{tmp_path / 's.db'}")
        assert tracked.published == {"metrics_push_failure": None}
    finally:
        server.shutdown()
        server.server_close()
    ((method, path, body),) = received
    import base64

    plan_key = base64.urlsafe_b64encode(b"Judged plan").decode()
    assert (method, path) == ("PUT", f"/metrics/job/stratmap/plan@base64/{plan_key}")
    names = {family.name for family in text_string_to_metric_families(body.decode())}
    assert {"stratmap_goal_progress", "stratmap_measure_value", "stratmap_findings"} <= names
    unreachable = parse_plan(JUDGED + "metrics: {pushgateway: \"http://127.0.0.1:9\"}\n")
    failed = track(unreachable, plan_dir=tmp_path, db=f"sqlite:///{tmp_path / 's.db'}")
    assert "Connection refused" in str(failed.published["metrics_push_failure"])


def test_a_pushgateway_url_never_holds_credentials() -> None:
    found = problems(PLAN + "metrics: {pushgateway: \"http://user:pw@gw:9091\"}\n")
    assert found == ["plan.yaml:35:24: pushgateway is an http:// or https:// URL without "
                     "credentials in it, not 'http://user:pw@gw:9091' (e.g. pushgateway: "
                     "http://pushgateway:9091)"]


def test_the_metrics_command_prints_openmetrics(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    from stratmap.flows.cli import main

    (tmp_path / "r.csv").write_text("2027-01-01,100\n2027-01-08,107\n")
    (tmp_path / "plan.yaml").write_text(JUDGED)
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(tmp_path / "plan.yaml"), "--db", db, "--as-of", "2027-01-09",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["metrics", str(tmp_path / "plan.yaml"), "--db", db]) == 0
    out = capsys.readouterr().out
    assert 'stratmap_measure_value{goal="revenue",measure="revenue.online",milestone="",' \
           'plan="Judged plan"} 107.0' in out
    assert 'stratmap_goal_status{goal="revenue",plan="Judged plan",status="on_track"} 1.0' in out
    assert out.endswith("# EOF\n")


def test_every_measure_finding_has_an_event_and_a_key_of_its_own() -> None:
    """Two measures of one goal off target are two findings to event and alert on, and
    each kind reaches Prefect as an event (an unknown kind would fail the flow)."""
    from stratmap.publish.changes import finding_key
    from stratmap.publish.prefect_ui import EVENT_FOR_FINDING

    assert set(Kind) <= set(EVENT_FOR_FINDING)
    plan = JUDGED.replace("    measures:\n", """    measures:
      - id: second
        source: {kind: csv, path: s.csv}
        baseline: {value: 100, date: 2027-01-01}
        target: {value: 300, date: 2027-07-20}
""")
    values = {0: 100, 7: 101, 14: 102, 21: 103}
    parsed = parse_plan(plan)
    evidence = Evidence(measures=tuple(
        MeasureValue(measure=ref, at=day(d), value=v) for d, v in values.items()
        for ref in ("revenue.online", "revenue.second")))
    report = judge(parsed, evidence, as_of=day(21))
    off = [f for f in report.findings if f.kind is Kind.OFF_TARGET]
    assert len(off) == 2 and len({finding_key(f) for f in off}) == 2


def test_a_measure_that_cannot_be_read_holds_its_goal_as_stale(tmp_path: Path) -> None:
    """A missing measure file fails that measure's sync, not the run's judgement: the report
    lists it as stale and its goal's changes wait (no alert from a number not read)."""
    from stratmap.flows.run import track
    from stratmap.publish.changes import stale_refs

    plan = parse_plan(JUDGED)
    tracked = track(plan, plan_dir=tmp_path, db=f"sqlite:///{tmp_path / 's.db'}")
    assert list(tracked.failed) == ["revenue.online"]
    assert "r.csv" in tracked.failed["revenue.online"]
    assert [s.source for s in tracked.report.stale_sources] == ["revenue.online"]
    assert stale_refs(plan, tracked.report) == {"revenue"}
