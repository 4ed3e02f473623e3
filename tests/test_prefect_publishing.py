"""What stratmap hands to Prefect, checked offline: no password in a flow parameter, artifacts
people can read (keys, the report's rounding, times in the plan's zone, tables that fit),
events that name what they are about and say which way a status went, and example
Automations written for the plan they belong to."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from stratmap.models.planfile import load_plan
from stratmap.models.report import Report
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "northwind" / "plan.yaml"
AS_OF = datetime(2027, 3, 1, 9, 0, 38, 264072, tzinfo=UTC)


@pytest.fixture(scope="module")
def report() -> Report:
    from stratmap.judgement import judge
    from stratmap.models.records import Evidence

    return judge(load_plan(SAMPLE), Evidence(), as_of=AS_OF)


@pytest.mark.parametrize("url", [
    "postgresql+psycopg://stratmap:s3cret@db/stratmap",
    "mysql+pymysql://u:p%40ss@h/d",
    " https://user:tok@example.test/x ",
])
def test_a_flow_parameter_holding_a_password_is_refused_before_prefect_records_it(
        url: str) -> None:
    from stratmap.flows.track import SecretParameter, report_plan, track_plan

    for flow in (track_plan, report_plan):
        with pytest.raises(SecretParameter) as caught:
            flow.serialize_parameters({"plan_path": "p.yaml", "db": url})
        message = str(caught.value)
        assert "'db'" in message and "STRATMAP_DB" in message and "block:NAME" in message
        assert "s3cret" not in message and "p%40ss" not in message and "tok@" not in message


@pytest.mark.parametrize("url", [None, "sqlite:///s.db", "postgresql+psycopg://stratmap@db/s",
                                 "env:STRATMAP_STORE", "block:store-url"])
def test_a_store_without_a_password_or_a_reference_is_a_parameter(url: str | None) -> None:
    from stratmap.flows.track import track_plan

    assert track_plan.serialize_parameters({"plan_path": "p", "db": url})["db"] == url


def test_deployments_refuse_a_store_url_with_a_password() -> None:
    from stratmap.flows.deploy import deployments_for
    from stratmap.flows.track import SecretParameter

    with pytest.raises(SecretParameter):
        deployments_for(load_plan(SAMPLE), plan_path=SAMPLE, db="postgresql://u:pw@h/d")


def test_the_store_url_comes_from_an_environment_variable(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from stratmap.flows import redact
    from stratmap.flows.track import store_url

    monkeypatch.setenv("STRATMAP_STORE", "postgresql+psycopg://u:hidden-pw-42@h/d\r\n")
    assert store_url("env:STRATMAP_STORE") == "postgresql+psycopg://u:hidden-pw-42@h/d"
    assert "hidden-pw-42" not in redact.redact("connect to postgresql+psycopg://u:hidden-pw-42@h")
    monkeypatch.setenv("STRATMAP_DB", "env:STRATMAP_STORE")
    assert store_url(None) == "postgresql+psycopg://u:hidden-pw-42@h/d"
    monkeypatch.delenv("STRATMAP_DB")
    assert store_url(None) is None
    assert store_url("sqlite:///x.db") == "sqlite:///x.db"


def test_the_cli_moves_a_password_url_out_of_the_flow_parameters(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from stratmap.flows.cli import _store_parameter

    # set, then removed: the test's end restores the environment it found, so the URL the
    # CLI moves into it does not leak into the tests after this one
    monkeypatch.setenv("STRATMAP_DB", "placeholder")
    monkeypatch.delenv("STRATMAP_DB")
    assert _store_parameter("sqlite:///a.db") == "sqlite:///a.db"
    assert "STRATMAP_DB" not in os.environ
    assert _store_parameter("postgresql+psycopg://u:pw@h/d") is None
    assert os.environ["STRATMAP_DB"] == "postgresql+psycopg://u:pw@h/d"


def test_times_are_shown_in_the_plans_zone_to_the_minute() -> None:
    from stratmap.publish.prefect_ui import minute

    assert minute(AS_OF, "Europe/London") == "2027-03-01 09:00 GMT"
    assert minute(datetime(2027, 7, 1, 8, 59, 59, tzinfo=UTC), "Europe/London") == \
        "2027-07-01 09:59 BST"
    assert minute(AS_OF, "Asia/Tokyo") == "2027-03-01 18:00 JST"


@pytest.mark.parametrize(("progress", "shown"), [(0.178, 18), (0.174, 17), (0.0, 0), (1.0, 100),
                                                 (0.995, 100)])
def test_progress_artifacts_round_as_the_report_does(progress: float, shown: int) -> None:
    from stratmap.publish.markdown import pct
    from stratmap.publish.prefect_ui import percent

    assert percent(progress) == shown
    assert pct(progress) == f"{shown}%"


def _capture(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import prefect.artifacts

    made: list[dict[str, Any]] = []
    for name in ("create_markdown_artifact", "create_table_artifact",
                 "create_progress_artifact", "create_link_artifact"):
        monkeypatch.setattr(prefect.artifacts, name,
                            lambda name=name, **kw: made.append({"_": name, **kw}))
    return made


def test_artifacts_are_keyed_titled_rounded_and_in_the_plans_zone(
        monkeypatch: pytest.MonkeyPatch, report: Report) -> None:
    from stratmap.publish.prefect_ui import publish_artifacts

    made = _capture(monkeypatch)
    plan = load_plan(SAMPLE)
    publish_artifacts(plan, report, html="<html><body>\n  <h1>Page</h1>\n\n  <p>x</p>\n"
                                        "<style>p{}</style></body></html>",
                      html_url="file:///srv/out_dir/report.html")
    keys = [a.get("key") for a in made]
    assert None not in keys and len(set(keys)) == len(keys)
    progress = [a for a in made if a["_"] == "create_progress_artifact"]
    assert [a["key"] for a in progress] == [
        f"stratmap-northwind-growth-plan-2027-goal-{g.id}" for g in report.goals]
    for artifact, goal in zip(progress, report.goals, strict=True):
        assert artifact["progress"] == round(goal.progress * 100)
        assert isinstance(artifact["progress"], int)
        assert goal.title in artifact["description"]
        assert f"{artifact['progress']}%" in artifact["description"]
        assert goal.status.value.replace("_", " ").upper() in artifact["description"]
    for artifact in made:
        description = str(artifact["description"])
        assert "2027-03-01 09:00 GMT" in description, description
        assert "T09:00:38" not in description and "+00:00" not in description
    html = next(a for a in made if a["key"] == "stratmap-northwind-growth-plan-2027-html")
    assert html["_"] == "create_markdown_artifact"
    assert "<h1>Page</h1>\n<p>x</p>" in html["markdown"]  # no indented or blank lines
    assert "<style>p{}</style>" in html["markdown"]  # the drawings' own styles stay
    assert "file:/<wbr>/<wbr>/<wbr>srv/<wbr>out\\_dir/<wbr>report.html" in html["markdown"]


def test_the_findings_table_fits_and_the_full_messages_follow(
        monkeypatch: pytest.MonkeyPatch, report: Report) -> None:
    from stratmap.publish.markdown import cell
    from stratmap.publish.prefect_ui import MESSAGE_WIDTH, publish_artifacts

    made = _capture(monkeypatch)
    publish_artifacts(load_plan(SAMPLE), report)
    (findings,) = [a for a in made if a["key"] == "stratmap-northwind-growth-plan-2027-findings"]
    text = findings["markdown"]
    table, full = text.split("## Full messages")
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(report.findings) + 1
    long = [f for f in report.findings if len(f.message) > MESSAGE_WIDTH]
    assert long, "the sample has long messages"
    for row in rows[1:]:
        message = row.rsplit("|", 2)[-2].strip()
        assert len(message.replace("\\", "")) <= MESSAGE_WIDTH
    from stratmap.publish.markdown import SEVERITY_ORDER

    ordered = sorted(report.findings, key=lambda f: SEVERITY_ORDER[f.severity])
    for number, finding in enumerate(ordered, start=1):
        assert f"\n{number}. {cell(finding.message)}" in full
    severities = [row.split("|")[2].strip() for row in rows[1:]]
    assert severities == sorted(severities, key=["CRITICAL", "WARNING", "INFO"].index)
    assert len(set(severities)) > 1, "the sample has findings of several severities"


def test_events_name_their_item_and_say_which_way_a_status_went(
        monkeypatch: pytest.MonkeyPatch, report: Report) -> None:
    import prefect.events

    from stratmap.publish.changes import Change, Subject
    from stratmap.publish.prefect_ui import emit_changes

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **kw: sent.append(kw))
    plan = load_plan(SAMPLE)
    from stratmap.models.report import Finding, Kind, Severity

    unmapped = Finding(kind=Kind.UNMAPPED_WORK, severity=Severity.INFO, goal=None,
                       milestone=None, person=None, item="WEB-77",
                       message="WEB-77 is in progress but maps to no milestone",
                       evidence={"source": "jira"})
    goal = Subject("status:goal:crm", "off_track", "goal", "crm", "CRM", None)
    changes = [Change(goal, "at_risk", "off_track"), Change(goal, "off_track", "at_risk"),
               Change(goal, None, "off_track"),
               Change(Subject("f", "unmapped_work", "unmapped_work", None, unmapped.message,
                              None, unmapped), None, "unmapped_work")]
    emit_changes(plan, report, changes)
    worse, better, new, work = sent[:4]
    assert worse["resource"]["stratmap.direction"] == "worse"
    assert worse["resource"]["stratmap.status"] == "off_track"
    assert better["resource"]["stratmap.direction"] == "better"
    assert new["resource"]["stratmap.direction"] == "new"
    assert work["event"] == "stratmap.work.unmapped"
    assert work["resource"]["stratmap.item"] == unmapped.item
    assert work["resource"]["prefect.resource.id"].endswith(f".item.{unmapped.item}")
    assert work["payload"]["item"] == work["payload"]["where"] == unmapped.item
    assert sent[-1]["payload"]["judged"] == "2027-03-01 09:00 GMT"


def test_example_automations_match_their_plan_and_getting_worse_only() -> None:
    from prefect.events.schemas.events import Resource

    from stratmap.flows.deploy import SAMPLE_SLUG

    root = Path(__file__).resolve().parent.parent / "deployments" / "automations"
    off_track = yaml.safe_load((root / "goal-off-track.yaml").read_text())["trigger"]
    base = f"stratmap.plan.{SAMPLE_SLUG}"

    def matches(trigger: dict[str, Any], labels: dict[str, str]) -> bool:
        from prefect.events.schemas.events import ResourceSpecification

        return ResourceSpecification(trigger["match"]).matches(Resource(labels))

    goal = {"prefect.resource.id": f"{base}.goal.crm", "stratmap.status": "off_track"}
    assert matches(off_track, {**goal, "stratmap.direction": "worse"})
    assert not matches(off_track, {**goal, "stratmap.direction": "better"})
    assert not matches(off_track, {**goal, "stratmap.direction": "new"})
    assert not matches(off_track, {**goal, "stratmap.direction": "worse",
                                   "prefect.resource.id": "stratmap.plan.other.goal.crm"})
    stalled = yaml.safe_load((root / "stalled-milestone.yaml").read_text())["trigger"]
    assert matches(stalled, {"prefect.resource.id": f"{base}.milestone.eu.localisation"})
    assert not matches(stalled, {"prefect.resource.id": "stratmap.plan.other.milestone.eu.x"})


def test_written_automations_belong_to_the_plan_written(tmp_path: Path) -> None:
    from stratmap.flows.deploy import SAMPLE_SLUG, write_deployments
    from stratmap.models.planfile import parse_plan

    plan = parse_plan("version: 1\nname: Other Plan\nleader: a\npeople: {a: {}}\n")
    write_deployments(plan, tmp_path, plan_path="/srv/other.yaml")
    for name in ("goal-off-track.yaml", "stalled-milestone.yaml"):
        text = (tmp_path / "automations" / name).read_text()
        assert SAMPLE_SLUG not in text
        assert "stratmap.plan.other-plan." in yaml.safe_load(text)["trigger"]["match"][
            "prefect.resource.id"]


def test_the_samples_alert_channels_name_real_block_types() -> None:
    from prefect.blocks.core import Block

    import stratmap.flows.blocks  # noqa: F401  (registers stratmap's block types)

    plan = load_plan(SAMPLE)
    assert plan.alerts is not None
    for reference in plan.alerts.channels.values():
        type_slug = reference.removeprefix("block:").split("/")[0]
        block_class = Block.get_block_class_from_key(type_slug)
        assert "notify" in block_class.get_block_capabilities(), reference


def test_the_report_artifact_fits_reads_in_the_plans_zone_and_says_status_in_words() -> None:
    from stratmap.judgement import judge
    from stratmap.models.records import Evidence
    from stratmap.models.report import Finding, Kind, Severity
    from stratmap.publish.markdown import STATUS_MARK
    from stratmap.publish.prefect_ui import MESSAGE_WIDTH, report_markdown

    plan = load_plan(SAMPLE)
    long = "x" * 200
    judged = judge(plan, Evidence(), as_of=AS_OF)
    report = judged.model_copy(update={"findings": [
        *judged.findings, Finding(kind=Kind.UNMAPPED_WORK, severity=Severity.INFO, goal=None,
                                  milestone=None, person=None, item="WEB-9", message=long)]})
    text = report_markdown(plan, report)
    # Judged at 09:00 in the plan's zone, to the minute (the Markdown report's own rule).
    assert "Judged at 2027-03-01 09:00 Europe/London" in text
    assert AS_OF.isoformat() not in text
    assert not any(mark in text for mark in STATUS_MARK.values())
    table = [line for line in text.split("## Findings")[1].split("### Full messages")[0]
             .splitlines() if line.startswith("| ")]
    assert len(table) == len(report.findings) + 1
    assert all(len(row.rsplit("|", 2)[-2].strip()) <= MESSAGE_WIDTH for row in table[1:])
    assert f"{len(report.findings)}. {long}" in text
    assert "## Milestones" in text  # the rest of the report follows
