"""Reading plan files: every problem answered at its FILE:LINE:COLUMN."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from stratmap.models.planfile import PlanError, load_plan, parse_plan
from stratmap.models.schemas import HERE, schema_text

BASE = """\
version: 1
name: Test plan
leader: alice
people:
  alice: {name: Alice, senior: true, accounts: {jira: a1}}
  bob: {name: Bob}
sources:
  jira: {kind: jira, url: "https://x.atlassian.net", token: "env:JIRA_TOKEN", scope: "project = X"}
goals:
  - id: brand
    title: Brand
    owner: bob
    milestones:
      - id: website
        title: Website
        owner: bob
        start: 2027-01-01
        due: 2027-02-01
        work:
          - {source: jira, epic: X-1}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(PlanError) as raised:
        parse_plan(text, file="plan.yaml")
    return [str(p) for p in raised.value.problems]


def test_the_base_plan_is_valid() -> None:
    plan = parse_plan(BASE)
    assert plan.goals[0].milestones[0].work[0].epic == "X-1"


BROKEN = [
    # (what, replace this, with this, expected problem)
    ("yaml syntax", "  bob: {name: Bob}", "  bob: {name: Bob",
     "plan.yaml:7:8: not valid YAML"),
    ("unknown field with a suggestion", "        owner: bob\n        start",
     "        ownr: bob\n        start",
     "plan.yaml:16:9: unknown field 'ownr'; did you mean 'owner'?"),
    ("bad duration", "leader: alice\n", "leader: alice\ndefaults: {stall_after: 2 weeks}\n",
     "plan.yaml:4:25: a duration is written like 14d, 12h or 2w, not '2 weeks'"),
    ("bad date", "due: 2027-02-01", "due: 2027-02-31",
     "plan.yaml:18:14: not a valid date"),
    ("duplicate milestone id", "          - {source: jira, epic: X-1}\n",
     "          - {source: jira, epic: X-1}\n      - id: website\n        title: Again\n",
     "plan.yaml:21:13: milestone id 'website' is used twice in goal 'brand'"),
    ("unknown person", "    owner: bob\n    milestones", "    owner: rob\n    milestones",
     "plan.yaml:12:12: unknown person 'rob'; did you mean 'bob'?"),
    ("unknown source", "{source: jira, epic", "{source: jra, epic",
     "plan.yaml:20:22: unknown source 'jra'; did you mean 'jira'?"),
    ("unknown milestone in depends_on", "        due: 2027-02-01\n",
     "        due: 2027-02-01\n        depends_on: [brand.webiste]\n",
     "plan.yaml:19:22: unknown milestone 'brand.webiste' (write goal.milestone); "
     "did you mean 'brand.website'?"),
    ("literal token", 'token: "env:JIRA_TOKEN"', "token: hunter2",
     "plan.yaml:8:61: a secret is never written in the plan"),
    ("selector not for this tracker", "epic: X-1}", "milestone: v2}",
     "plan.yaml:20:28: 'milestone' does not select jira items"),
    ("duplicate key", "  bob: {name: Bob}\n", "  bob: {name: Bob}\n  alice: {name: A2}\n",
     "plan.yaml:7:3: 'alice' is given twice (first at line 5)"),
    ("missing title", "    title: Brand\n", "",
     "plan.yaml:10:5: missing required field 'title'"),
    ("wrong version", "version: 1", "version: 2", "plan.yaml:1:10: version must be 1, not '2' (e.g. version: 1)"),
    ("start after due", "start: 2027-01-01", "start: 2027-03-01",
     "plan.yaml:18:14: due 2027-02-01 is before start 2027-03-01"),
    ("unknown source kind", "{kind: jira,", "{kind: jiro,",
     "plan.yaml:8:9: unknown source kind"),
    ("unknown timezone", "leader: alice\n", "leader: alice\ntimezone: Mars/Olympus\n",
     "plan.yaml:4:11: unknown time zone 'Mars/Olympus'"),
]


@pytest.mark.parametrize(("old", "new", "expected"), [b[1:] for b in BROKEN],
                         ids=[b[0] for b in BROKEN])
def test_broken_plans_name_line_and_column(old: str, new: str, expected: str) -> None:
    assert old in BASE
    found = problems(BASE.replace(old, new, 1))
    assert any(p.startswith(expected) for p in found), found


def test_a_cycle_in_depends_on() -> None:
    text = BASE.replace("        due: 2027-02-01\n", (
        "        due: 2027-02-01\n"
        "        depends_on: [brand.domain]\n"
        "      - id: domain\n"
        "        title: Domain\n"
        "        owner: bob\n"
        "        depends_on: [brand.website]\n"
        "        work: []\n"
        "      - id: later\n"
        "        title: Later\n"
        "        owner: bob\n"
        "        depends_on: [brand.domain]\n"), 1)
    found = problems(text)
    assert [p for p in found if "cycle" in p] == [
        "plan.yaml:23:21: depends_on makes a cycle: brand.website -> brand.domain -> brand.website"
    ], found


def test_every_problem_is_reported_at_once() -> None:
    text = BASE.replace("owner: bob\n    milestones", "owner: rob\n    milestones").replace(
        "{source: jira, epic", "{source: jra, epic")
    assert len(problems(text)) == 2


def test_on_yes_and_account_ids_stay_strings() -> None:
    text = BASE.replace("accounts: {jira: a1}", "accounts: {jira: 712020:0b1c}") + textwrap.dedent(
        """\
        alerts:
          channels: {slack: "block:slack-webhook/strategy"}
          routes:
            - {on: [at_risk, off_track], notify: [owner, leader], via: [slack]}
        """)
    plan = parse_plan(text)
    assert plan.people["alice"].accounts["jira"] == "712020:0b1c"
    assert plan.alerts is not None and plan.alerts.routes[0].on == ["at_risk", "off_track"]


def test_a_missing_file_and_an_empty_file(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no such file"):
        load_plan(tmp_path / "nope.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(PlanError, match=r"empty.yaml:1:1: a plan is a YAML mapping"):
        load_plan(empty)


def test_validate_exits_2_with_positions_and_no_traceback(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(BASE.replace("owner: bob\n    milestones", "owner: rob\n    milestones"))
    done = subprocess.run([sys.executable, "-m", "stratmap.flows.cli", "validate", str(plan)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert f"{plan}:12:12: unknown person 'rob'" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_init_template_is_a_valid_plan(tmp_path: Path) -> None:
    from stratmap.flows.cli import main

    assert main(["init", str(tmp_path / "plan.yaml")]) == 0
    assert load_plan(tmp_path / "plan.yaml").goals
    assert main(["init", str(tmp_path / "plan.yaml")]) == 2  # no silent overwrite


@pytest.mark.parametrize("which", ["plan", "report"])
def test_committed_schemas_match_the_models(which: str) -> None:
    committed = (HERE / f"{which}.schema.json").read_text()
    assert committed == schema_text(which), "run: python -m models.schemas"


def test_plan_schema_accepts_the_sample_and_refuses_a_literal_token() -> None:
    import jsonschema
    import yaml

    schema = json.loads(schema_text("plan"))
    data = yaml.safe_load(BASE)
    data["goals"][0]["milestones"][0]["start"] = "2027-01-01"
    data["goals"][0]["milestones"][0]["due"] = "2027-02-01"
    jsonschema.validate(data, schema)
    data["sources"]["jira"]["token"] = "hunter2"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_type_errors_and_unknown_names_are_reported_in_one_pass() -> None:
    text = ("version: 2\nname: x\nleader: bobb\npeople: {bob: {}}\n"
            "goals: [{id: g, title: G, owner: carl, weight: lots}]\n")
    with pytest.raises(PlanError) as caught:
        parse_plan(text)
    assert [str(p) for p in caught.value.problems] == [
        "plan.yaml:1:10: version must be 1, not '2' (e.g. version: 1)",
        "plan.yaml:3:9: unknown person 'bobb'; did you mean 'bob'? (add them under people:)",
        "plan.yaml:5:34: unknown person 'carl' (add them under people:)",
        "plan.yaml:5:48: weight expects a number, not 'lots' (e.g. weight: 2)",
    ]
