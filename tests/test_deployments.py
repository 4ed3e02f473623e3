"""Schedules, deployments and automations, checked offline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from stratmap.flows.deploy import deployments_for, schedules_for
from stratmap.models.planfile import load_plan, parse_plan
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = EXAMPLES / "northwind" / "plan.yaml"


def next_dates(cron: str, timezone: str, start: datetime, n: int = 3) -> list[datetime]:
    """Next run times exactly as the Prefect server's scheduler computes them."""
    from prefect.server.schemas.schedules import CronSchedule

    schedule = CronSchedule(cron=cron, timezone=timezone)
    return [d.astimezone(UTC) for d in asyncio.run(schedule.get_dates(n=n, start=start))]


def test_the_weekly_report_is_monday_nine_in_the_plans_zone_across_dst() -> None:
    plan = load_plan(SAMPLE)
    report = schedules_for(plan)["report"]
    assert report.cron == "0 9 * * MON" and report.timezone == "Europe/London"
    # The clocks go forward in London on 28 March 2027: 09:00 is 09:00 UTC, then 08:00 UTC.
    dates = next_dates(report.cron, report.timezone, datetime(2027, 3, 20, tzinfo=UTC))
    assert dates == [datetime(2027, 3, 22, 9, tzinfo=UTC), datetime(2027, 3, 29, 8, tzinfo=UTC),
                     datetime(2027, 4, 5, 8, tzinfo=UTC)]
    assert all(d.astimezone(ZoneInfo("Europe/London")).hour == 9 for d in dates)


def test_default_schedules_without_a_schedule_section() -> None:
    plan = parse_plan("version: 1\nname: P\nleader: a\npeople: {a: {}}\ntimezone: Asia/Tokyo\n")
    sync = schedules_for(plan)["sync"]
    assert sync.cron == "*/30 * * * *" and sync.timezone == "Asia/Tokyo"
    dates = next_dates(sync.cron, sync.timezone, datetime(2027, 1, 1, 0, 10, tzinfo=UTC))
    assert [d.minute for d in dates] == [30, 0, 30]


def test_deployments_of_a_plan(tmp_path: Path) -> None:
    plan = load_plan(SAMPLE)
    track, report, push = deployments_for(plan, plan_path=SAMPLE, db="sqlite:///x.db")
    assert track.name == "track-northwind-growth-plan-2027"
    assert report.name == "report-northwind-growth-plan-2027"
    assert push.name == "push-northwind-growth-plan-2027"
    assert not push.schedules  # on demand only
    assert push.parameters == {"plan_path": str(SAMPLE.resolve()), "apply": False}
    assert track.parameters == {"plan_path": str(SAMPLE.resolve()), "db": "sqlite:///x.db"}
    assert "plan:northwind-growth-plan-2027" in track.tags


def test_prefect_yaml_entrypoints_load_as_flows_and_schedules_are_real() -> None:
    from prefect import Flow
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    assert config["pull"] == []  # nothing to pull: the flows come from the installed package
    names = set()
    for deployment in config["deployments"]:
        assert deployment["entrypoint"].startswith("stratmap.flows.")  # a module, not a file
        flow = load_flow_from_entrypoint(deployment["entrypoint"], use_placeholder_flow=False)
        assert isinstance(flow, Flow)
        names.add(flow.name)
        assert deployment["concurrency_limit"] == 1
        assert "plan:northwind-growth-plan-2027" in deployment["tags"]
        for schedule in deployment["schedules"]:
            assert next_dates(schedule["cron"], schedule["timezone"],
                              datetime(2027, 1, 4, tzinfo=UTC))
    assert names == {"track-plan", "report-plan", "push-plan"}


def test_the_committed_prefect_yaml_is_what_deployments_write_produces(tmp_path: Path) -> None:
    from stratmap.flows.cli import main

    out = tmp_path / "deploy"
    assert main(["deployments", "write", str(SAMPLE), str(out), "--plan-path",
                 "{{ $STRATMAP_PLAN }}"]) == 0
    written = (out / "prefect.yaml").read_text()
    committed = (ROOT / "deployments" / "prefect.yaml").read_text()
    # Only the header's own path differs.
    assert written.replace(str(out / "prefect.yaml"), "deployments/prefect.yaml") == committed
    for name in ("goal-off-track.yaml", "stalled-milestone.yaml"):
        assert (out / "automations" / name).read_text() == (
            ROOT / "deployments" / "automations" / name).read_text()
    # Written again only with --force.
    assert main(["deployments", "write", str(SAMPLE), str(out)]) == 1
    assert main(["deployments", "write", str(SAMPLE), str(out), "--force"]) == 0
    again = yaml.safe_load((out / "prefect.yaml").read_text())
    assert again["deployments"][0]["parameters"] == {"plan_path": str(SAMPLE.resolve())}


def test_serve_and_prefect_yaml_describe_the_same_deployments() -> None:
    plan = load_plan(SAMPLE)
    served = {d.name: d for d in deployments_for(plan, plan_path="P")}
    written = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text())
    for entry in written["deployments"]:
        deployment = served[entry["name"]]
        assert deployment.entrypoint == entry["entrypoint"]
        assert deployment.concurrency_limit == entry["concurrency_limit"] == 1
        assert [s.schedule.cron for s in deployment.schedules] == [
            s["cron"] for s in entry["schedules"]]
        assert list(deployment.tags) == entry["tags"]


@pytest.mark.parametrize("name", ["goal-off-track.yaml", "stalled-milestone.yaml"])
def test_example_automations_are_valid_prefect_automations(name: str) -> None:
    from prefect.automations import AutomationCore

    data = yaml.safe_load((ROOT / "deployments" / "automations" / name).read_text())
    automation = AutomationCore.model_validate(data)
    assert automation.trigger.expect <= {  # type: ignore[union-attr]
        "stratmap.goal.status-changed", "stratmap.milestone.stalled"}
