"""The first hour of a new user (issue 15), through the installed ``stratmap`` command.

Each test starts the console script the wheel installs (``.venv/bin/stratmap``), from a
working folder of its own, and checks what the user sees: the exit code and the text.
The plan is a small shop whose tracker is a JSON lines export, so nothing needs a network.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

STRATMAP = Path(sys.executable).with_name("stratmap")
AS_OF = "2027-03-01T09:00Z"

PLAN = """\
version: 1
name: Shop plan
leader: alice
timezone: America/New_York
people:
  alice: {{name: Alice Smith, senior: true, accounts: {{jira: acc-alice}}}}
  bob: {{name: Bob Jones, accounts: {{jira: acc-bob}}}}
sources:
  jira: {{kind: jsonl, path: export}}
goals:
  - id: shop
    title: A better shop
    owner: bob
    milestones:
      - id: checkout
        title: New checkout
        start: 2027-01-04
        due: 2027-02-15
        work:
          - {{source: jira, epic: {epic}}}
      - id: search
        title: Better search
        owner: alice
        start: 2027-01-04
        due: 2027-06-30
        work:
          - {{source: jira, labels: [search]}}
"""


def _item(key: str, **extra: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "key": key, "title": f"Work on {key}", "type": "Task", "status": "In Progress",
        "category": "in_progress", "assignee": "acc-bob", "reporter": "acc-alice",
        "created": "2027-01-05T10:00:00Z", "updated": "2027-01-06T10:00:00Z",
        "resolved": None, "due": None, "parent": "SHOP-1", "labels": [], "milestone": None,
        "points": None, "url": f"https://shop.example/browse/{key}", "fields": {},
        "history": [{"at": "2027-01-06T10:00:00Z", "author": "acc-bob", "from": "To Do",
                     "to": "In Progress"}],
        "comments": []}
    item.update(extra)
    return item


def shop(folder: Path, *, epic: str = "SHOP-1") -> Path:
    """A plan folder: plan.yaml and export/ (an epic with three children, two search items
    held by a contractor the plan does not know)."""
    export = folder / "export"
    export.mkdir(parents=True)
    items = [_item("SHOP-1", type="Epic", parent=None),
             *(_item(f"SHOP-{n}", assignee="acc-kai") for n in (2, 3, 4)),
             *(_item(f"SHOP-{n}", parent=None, labels=["search"], assignee="acc-kai",
                     history=[{"at": "2027-02-26T10:00:00Z", "author": "acc-kai",
                               "from": "To Do", "to": "In Progress"}],
                     comments=[{"id": f"c{n}", "at": "2027-02-25T10:00:00Z",
                                "author": "acc-alice", "body": "Looks good"}])
               for n in (5, 6))]
    (export / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in items))
    accounts = [{"id": "acc-alice", "name": "Alice Smith"}, {"id": "acc-bob", "name": "Bob Jones"},
                {"id": "acc-kai", "name": "Kai Lindqvist"}]
    (export / "accounts.jsonl").write_text("".join(json.dumps(a) + "\n" for a in accounts))
    plan = folder / "plan.yaml"
    plan.write_text(PLAN.format(epic=epic))
    return plan


def stratmap(*args: str, cwd: Path, columns: int = 160,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PREFECT_", "STRATMAP_"))}
    environment.update({"COLUMNS": str(columns), "NO_COLOR": "1", **(env or {})})
    return subprocess.run([str(STRATMAP), *args], capture_output=True, text=True, check=False,
                          cwd=cwd, env=environment, timeout=120)


def report_json(plan: Path, cwd: Path, *extra: str) -> dict[str, Any]:
    done = stratmap("report", str(plan), "--format", "json", "--as-of", AS_OF, *extra, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


# -- 1. a selector that selects nothing --------------------------------------------------


@pytest.mark.parametrize(("written", "nearest"), [("shop-1", "epic: SHOP-1"),
                                                  ("SHOP-99", None)])
def test_a_selector_that_selects_nothing_is_its_own_finding(tmp_path: Path, written: str,
                                                            nearest: str | None) -> None:
    plan = shop(tmp_path / "shop", epic=written)
    done = stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "empty_selector" in done.stdout and "selects no item" in done.stdout
    assert "no items" in done.stdout  # the milestone's Items column
    assert "0 of 0" not in done.stdout
    report = report_json(plan, tmp_path)
    checkout = [f for f in report["findings"] if f["milestone"] == "shop.checkout"]
    kinds = sorted(f["kind"] for f in checkout)
    # Overdue (a date passed), said as "no items"; never stalled or missing feedback on nothing.
    assert kinds == ["empty_selector", "overdue", "unowned"]
    empty = next(f for f in checkout if f["kind"] == "empty_selector")
    assert empty["person"] == "bob" and empty["item"] is None  # the goal's owner: no milestone owner
    assert empty["evidence"]["notify"] == ["alice", "bob"]
    assert empty["evidence"]["nearest"] == nearest
    assert empty["message"].startswith(
        f"{{source: jira, epic: {written}}} of shop.checkout selects no item of source 'jira'")
    assert empty["message"].endswith(f"; did you mean {nearest}?" if nearest else "'jira'")
    overdue = next(f for f in checkout if f["kind"] == "overdue")
    assert "it has no items" in overdue["message"]


# -- 2. who must act ---------------------------------------------------------------------


def test_every_finding_names_who_must_act_and_names_people(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    done = stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Who must act" in done.stdout and "Bob Jones" in done.stdout
    assert "Kai Lindqvist (jira:acc-kai)" in done.stdout  # an unknown account by its name
    report = report_json(plan, tmp_path)
    assert report["findings"], "the plan has findings to check"
    for finding in report["findings"]:
        assert finding["person"] in ("alice", "bob"), finding
        if finding["milestone"] or (finding["goal"] and finding["kind"] != "unmapped_work"):
            assert finding["item"] is None, finding
    by_kind = {f["kind"]: f for f in report["findings"]}
    assert by_kind["overdue"]["person"] == "bob"   # checkout has no owner: the goal's owner
    assert by_kind["stalled"]["person"] == "bob"
    spof = by_kind["single_point_of_failure"]      # held by an account the plan does not know
    assert spof["person"] == "bob" and spof["evidence"]["display_name"] == "Kai Lindqvist"
    md = stratmap("report", str(plan), "--as-of", AS_OF, cwd=tmp_path).stdout
    assert "| Who must act |" in md and "## People" in md and "| Bob Jones (`bob`) |" in md


# -- 3. where the store is ---------------------------------------------------------------


def test_the_store_is_beside_the_plan_and_an_empty_one_is_refused(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = stratmap("report", str(plan), "--as-of", AS_OF, cwd=elsewhere)
    assert refused.returncode == 5
    assert "nothing to judge" in refused.stderr and "stratmap run" in refused.stderr
    assert not list(elsewhere.iterdir()) and not (plan.parent / "plan.stratmap.db").exists()
    offline = stratmap("run", str(plan), "--offline", "--as-of", AS_OF, cwd=elsewhere)
    assert offline.returncode == 5 and "nothing to judge" in offline.stdout
    assert stratmap("run", str(plan), "--as-of", AS_OF, cwd=elsewhere).returncode == 0
    assert (plan.parent / "plan.stratmap.db").exists() and not list(elsewhere.iterdir())
    # From any folder, the same store.
    assert report_json(plan, tmp_path)["goals"][0]["milestones"][0]["items"]["total"] == 3


# -- 5. what-if --------------------------------------------------------------------------


def test_no_record_judges_an_edited_plan_without_touching_the_history(tmp_path: Path) -> None:
    import sqlite3

    plan = shop(tmp_path / "shop")
    assert stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path).returncode == 0
    database = plan.parent / "plan.stratmap.db"

    def snapshots() -> list[tuple[Any, ...]]:
        with sqlite3.connect(database) as connection:
            return sorted(connection.execute(
                "SELECT entity, as_of, status, items_total FROM snapshots WHERE origin = 'run'"))

    before = snapshots()
    assert before
    plan.write_text(plan.read_text().replace("epic: SHOP-1", "epic: SHOP-99"))
    what_if = stratmap("run", str(plan), "--offline", "--no-record", "--as-of", AS_OF,
                       cwd=tmp_path)
    assert what_if.returncode == 0, what_if.stdout + what_if.stderr
    assert "empty_selector" in what_if.stdout and "nothing was recorded" in what_if.stdout
    assert snapshots() == before
    # A recording run of the changed plan at the same moment keeps what was recorded then.
    again = stratmap("run", str(plan), "--offline", "--as-of", AS_OF, cwd=tmp_path)
    assert again.returncode == 0
    assert snapshots() == before
    assert "--no-record" in stratmap("run", "--help", cwd=tmp_path).stdout


# -- 6. exit codes -----------------------------------------------------------------------


def test_a_failed_sync_prints_the_stored_report_marked_stale(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    assert stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path).returncode == 0
    shutil.rmtree(plan.parent / "export")
    done = stratmap("run", str(plan), "--as-of", AS_OF, "--quiet", cwd=tmp_path)
    assert done.returncode == 3
    assert "sync failed" in done.stdout and "STALE: not synced: jira" in done.stdout
    assert "A better shop" in done.stdout  # the summary, from what the store held


def test_a_source_that_never_synced_is_marked_stale_in_every_report(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    plan.write_text(plan.read_text().replace(
        "jira: {kind: jsonl, path: export}",
        "jira: {kind: jsonl, path: export}\n  extra: {kind: jsonl, path: missing}"))
    done = stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path)
    assert done.returncode == 3 and "STALE: not synced: extra" in done.stdout
    md = stratmap("report", str(plan), "--as-of", AS_OF, cwd=tmp_path)
    assert md.returncode == 0 and "never synced into this store: extra" in md.stderr
    assert "| extra | never |" in md.stdout
    html = tmp_path / "r.html"
    assert stratmap("report", str(plan), "--as-of", AS_OF, "--format", "html", "-o", str(html),
                    cwd=tmp_path).returncode == 0
    assert "<b>extra</b> (never synced: no sync of it ever finished" in html.read_text()


def test_user_side_errors_have_their_own_exit_codes(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    assert stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path).returncode == 0
    missing = stratmap("report", str(plan), "-o", str(tmp_path / "no" / "r.md"), cwd=tmp_path)
    assert missing.returncode == 1 and "does not exist" in missing.stderr
    assert "bug" not in missing.stderr
    driver = stratmap("report", str(plan), "--db", "mysql+mysqldb://u@localhost/x",
                      cwd=tmp_path)
    assert driver.returncode == 1 and "cannot use the store" in driver.stderr
    assert "bug" not in driver.stderr
    help_text = stratmap("run", "--help", cwd=tmp_path).stdout
    assert "130" in help_text and "70" in help_text


def test_ctrl_c_exits_130(tmp_path: Path) -> None:
    """Ctrl-C while a sync waits on a tracker that never answers: exit 130, one line."""
    plan = shop(tmp_path / "shop")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(60)
        port = silent.getsockname()[1]
        plan.write_text(plan.read_text().replace(
            "jira: {kind: jsonl, path: export}",
            f"jira: {{kind: jira, url: 'http://127.0.0.1:{port}', token: env:SHOP_TOKEN, "
            "scope: project = SHOP, deployment: datacenter}"))
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("PREFECT_", "STRATMAP_"))}
        environment.update({"SHOP_TOKEN": "t0ken", "NO_COLOR": "1"})
        with subprocess.Popen([str(STRATMAP), "run", str(plan)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=environment,
                              cwd=tmp_path) as process:
            connection, _ = silent.accept()  # the sync is waiting for an answer now
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
            connection.close()
    assert process.returncode == 130, out + err
    assert "interrupted" in out and "Traceback" not in out + err


# -- 4. messages -------------------------------------------------------------------------

FOUR_PROBLEMS = """\
version: 1
name: Four problems
leader: alicia
people:
  alice: {name: Alice}
sources:
  jira: {kind: jria, url: "https://x.example", token: env:T, scope: "project = X"}
goals:
  - id: g
    title: G
    owner: alice
    weight: lots
    milestones:
      - id: m
        title: M
        owner: carl
        work: {source: jira, epic: X-1}
"""


def test_validate_reports_every_problem_in_plain_sentences(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(FOUR_PROBLEMS)
    done = stratmap("validate", str(plan), cwd=tmp_path)
    assert done.returncode == 2
    lines = [line.removeprefix(f"{plan}:") for line in done.stdout.splitlines()]
    assert lines[:-1] == [
        "3:9: unknown person 'alicia'; did you mean 'alice'? (add them under people:)",
        "7:9: unknown source kind 'jria'; did you mean 'jira'? (use one of azure_devops, csv, github, "
        "gitlab, jira, jsonl, linear, redmine)",
        "12:13: weight expects a number, not 'lots' (e.g. weight: 2)",
        "16:16: unknown person 'carl' (add them under people:)",
        "17:15: work expects a list, written [a, b] on one line or as lines starting with "
        "'- ', not a mapping (e.g. work: [{source: jira, epic: WEB-1}])",
    ]
    assert lines[-1].endswith("5 problem(s) in " + str(plan).removeprefix(f"{plan}:"))
    for parser_word in ("Input should", "valid list", "<block end>"):
        assert parser_word not in done.stdout
    plan.write_text("version: 1\nname: x\nleader: a\ngoals:\n  - id: g\n    title: G\n  ? bad\n")
    yaml_error = stratmap("validate", str(plan), cwd=tmp_path)
    assert yaml_error.returncode == 2 and "<block end>" not in yaml_error.stdout
    assert "check its indentation" in yaml_error.stdout


def test_a_refused_connection_names_the_host_and_the_cause(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plan.write_text(plan.read_text().replace(
        "jira: {kind: jsonl, path: export}",
        f"jira: {{kind: jira, url: 'http://127.0.0.1:{port}', token: env:SHOP_TOKEN, "
        "scope: project = SHOP, deployment: datacenter}"))
    done = stratmap("-v", "run", str(plan), cwd=tmp_path, env={"SHOP_TOKEN": "t0ken"})
    output = " ".join(done.stdout.split())
    assert done.returncode == 3, done.stdout + done.stderr
    assert "connection to 127.0.0.1 refused" in output and "check url" in output
    assert "lost its connection" not in output
    assert "retry" not in done.stderr.lower()  # refused is not retried


# -- 7. one time-zone rule ---------------------------------------------------------------


def test_a_bare_date_is_midnight_in_the_plans_zone_everywhere(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")  # timezone: America/New_York
    done = stratmap("run", str(plan), "--as-of", "2027-03-01", cwd=tmp_path)
    assert done.returncode == 0
    assert "as of 2027-03-01 00:00 America/New_York" in done.stdout
    js = stratmap("report", str(plan), "--format", "json", "--as-of", "2027-03-01",
                  cwd=tmp_path)
    data = json.loads(js.stdout)
    assert data["as_of"] == "2027-03-01T05:00:00+00:00" and data["timezone"] == "America/New_York"
    md = stratmap("report", str(plan), "--as-of", "2027-03-01T14:30Z", cwd=tmp_path).stdout
    assert "Judged at 2027-03-01 09:30 America/New_York" in md


# -- 8. small things ---------------------------------------------------------------------


def test_the_small_things_a_user_notices(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    valid = stratmap("validate", str(plan), cwd=tmp_path)
    assert "1 goal, 2 milestones, 2 people, 1 source" in valid.stdout
    validate_help = stratmap("validate", "--help", cwd=tmp_path).stdout
    codes = validate_help.split("exit codes:")[1]
    assert "0  done" in codes and "2  the plan" in codes and "3  " not in codes
    wide = stratmap("run", str(plan), "--as-of", AS_OF, cwd=tmp_path).stdout
    severities = [word for line in wide.splitlines() for word in line.split()
                  if word in ("critical", "warning", "info")]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    narrow = stratmap("run", str(plan), "--offline", "--no-record", "--as-of", AS_OF,
                      cwd=tmp_path, columns=80).stdout
    findings = narrow.split("findings", 1)[1]
    assert "┃" not in findings and "│" not in findings  # lines, not a table
    message = "No status change on shop.checkout for 53 days (limit 14d)"
    assert message in " ".join(findings.split())  # wrapped at spaces, never mid-word
    md = stratmap("report", str(plan), "--as-of", AS_OF, cwd=tmp_path).stdout
    kinds = [line.split("|")[1].strip() for line in md.split("## Findings")[1].split(
        "## Milestones")[0].splitlines() if line.startswith("| ") and "Severity" not in line]
    assert kinds == sorted(kinds, key=["critical", "warning", "info"].index)
    html = tmp_path / "r.html"
    assert stratmap("report", str(plan), "--as-of", AS_OF, "--format", "html", "-o", str(html),
                    cwd=tmp_path).returncode == 0
    assert 'class="bar bar-off_track"' in html.read_text()


def test_serve_without_a_prefect_api_says_what_it_does(tmp_path: Path) -> None:
    plan = shop(tmp_path / "shop")
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("PREFECT_", "STRATMAP_"))}
    environment.update({"PREFECT_HOME": str(tmp_path / "prefect-home"), "COLUMNS": "200"})
    with subprocess.Popen([str(STRATMAP), "serve", str(plan)], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, env=environment,
                          cwd=tmp_path) as process:
        assert process.stdout is not None
        first = process.stdout.readline()
        process.kill()
        process.communicate(timeout=60)
    assert "No Prefect API is configured" in first and "temporary server" in first
    assert "prefect server start" in first and "http://127.0.0.1:4200" in first


def test_every_plan_field_has_hover_help_in_the_schema(tmp_path: Path) -> None:
    done = stratmap("schema", "plan", cwd=tmp_path)
    assert done.returncode == 0
    body = json.loads(done.stdout)
    bare = [f"{name}.{field}" for name, model in [("Plan", body), *body["$defs"].items()]
            for field, spec in model.get("properties", {}).items() if not spec.get("description")]
    assert bare == []
    assert body["properties"]["version"]["description"] == "The plan format's version: 1."
