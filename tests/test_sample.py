"""The bundled sample, end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from stratmap.flows.cli import main
from stratmap.models.report import Kind
from stratmap.models.schemas import schema
from tests.conftest import EXAMPLES, _postgres_or_skip

SAMPLE = EXAMPLES / "northwind" / "plan.yaml"
AS_OF = "2027-03-01T09:00Z"


def run_sample(db: str, out: Path) -> str:
    code = main(["run", str(SAMPLE), "--db", db, "--as-of", AS_OF, "--json", str(out),
                 "--quiet"])
    assert code == 0
    return out.read_text()


def test_the_sample_report_holds_every_finding_kind_and_fits_its_schema(
        store_url: str, tmp_path: Path) -> None:
    report = json.loads(run_sample(store_url, tmp_path / "out.json"))
    jsonschema.validate(report, schema("report"))
    found = {f["kind"] for f in report["findings"]}
    # Every kind but empty_selector: each of the sample's selectors selects its items
    # (tests/test_first_hour.py and test_engine.py plant empty selectors).
    assert found == {k.value for k in Kind} - {"empty_selector"}
    # The organisation's claims and slips, each for the reason the sample's README gives.
    by_kind = {f["kind"]: f for f in report["findings"]}
    slipped = by_kind["date_slipped"]
    assert (slipped["milestone"], slipped["evidence"]["slips"]) == ("eu.payments", 3)
    assert [e["where"] for e in report["slip_log"]] == ["plan history"] * 3
    claim = by_kind["optimistic_status"]
    assert (claim["milestone"], claim["person"], claim["evidence"]["item"]) == (
        "crm.migration", "erin", "CRM-2")
    assert claim["evidence"]["evidence_shows"] == ["overdue"]
    blocked = by_kind["blocked_by_other_team"]
    assert (blocked["evidence"]["blocked"], blocked["evidence"]["blocker"],
            blocked["evidence"]["blocker_assignee"]) == ("EU-3", "FIN-5", "lena")
    assert {s["source"] for s in report["unmapped_share"]} == {"jira", "site"}
    statuses = {m["status"] for g in report["goals"] for m in g["milestones"]}
    assert {"done", "not_started", "on_track", "at_risk", "off_track"} <= statuses
    assert report["unknown_people"], "the sample has contractors the plan does not name"
    # The report contract: someone must act on every finding, and `item` is the subject
    # only where one item is (unmapped work); milestone and goal findings carry theirs as
    # evidence.
    people = {p["handle"] for p in report["people"]}
    for finding in report["findings"]:
        assert finding["person"] in people, finding
        assert (finding["item"] is not None) == (finding["kind"] == "unmapped_work"), finding


@pytest.mark.postgres
def test_sqlite_and_postgresql_give_the_same_report_byte_for_byte(tmp_path: Path) -> None:
    pg = _postgres_or_skip()
    lite = run_sample(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "a.json")
    post = run_sample(pg, tmp_path / "b.json")
    assert lite == post


def test_a_second_run_changes_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    first = run_sample(db, tmp_path / "a.json")
    second = run_sample(db, tmp_path / "b.json")
    assert first == second


@pytest.mark.parametrize("as_of", ["2026-12-01", "2027-02-01"])
def test_the_past_is_judged_as_it_stood(tmp_path: Path, as_of: str) -> None:
    db = f"sqlite:///{tmp_path / 'a.db'}"
    run_sample(db, tmp_path / "now.json")
    out = tmp_path / "past.json"
    assert main(["run", str(SAMPLE), "--db", db, "--offline", "--as-of", as_of, "--json",
                 str(out), "--quiet"]) == 0
    now = json.loads((tmp_path / "now.json").read_text())
    past = json.loads(out.read_text())
    assert past["as_of"].startswith(as_of)
    done_now = sum(m["items"]["done"] for g in now["goals"] for m in g["milestones"])
    done_past = sum(m["items"]["done"] for g in past["goals"] for m in g["milestones"])
    assert done_past < done_now
