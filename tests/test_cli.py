"""The command line as a user meets it: help, exit codes, outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stratmap.flows.cli import main
from tests.conftest import EXAMPLES

# Most tests here run the installed CLI in a subprocess (a second or two each).
pytestmark = pytest.mark.integration

SAMPLE = EXAMPLES / "northwind"
AS_OF = "2027-03-01T09:00Z"


def stratmap(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratmap.flows.cli", *args], capture_output=True,
                          text=True, check=False, cwd=cwd)


def test_help_teaches_the_first_steps_and_the_exit_codes() -> None:
    done = stratmap("--help")
    assert done.returncode == 0
    for text in ("stratmap init plan.yaml", "stratmap validate", "exit codes:",
                 "3  a tracker could not be synced"):
        assert text in done.stdout
    run_help = stratmap("run", "--help").stdout
    assert "--offline" in run_help and "--as-of" in run_help and "STRATMAP_DB" in run_help


def test_a_bad_as_of_is_a_usage_error_not_a_traceback() -> None:
    done = stratmap("run", str(SAMPLE / "plan.yaml"), "--as-of", "next tuesday")
    assert done.returncode == 2
    assert "not an ISO 8601 date" in done.stderr
    assert "Traceback" not in done.stderr


def test_report_markdown_and_json_from_the_store(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", AS_OF, "-q"]) == 0
    md = tmp_path / "r.md"
    assert main(["report", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", AS_OF,
                 "-o", str(md)]) == 0
    text = md.read_text()
    assert text.startswith("# Northwind")
    assert "| Severity | Kind |" in text
    js = tmp_path / "r.json"
    assert main(["report", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", AS_OF,
                 "--format", "json", "-o", str(js)]) == 0
    assert json.loads(js.read_text())["as_of"] == "2027-03-01T09:00:00+00:00"


def test_verbose_says_where_a_commands_time_went(tmp_path: Path) -> None:
    """``-v`` logs each phase with its seconds, as the end-to-end benchmark reads them
    (``benchmarks.e2e.PHASES``): a run's sync, evidence, judgement and history; an HTML
    report's evidence, judgement, history and page."""
    from benchmarks.e2e import PHASES, phases

    db = f"sqlite:///{tmp_path / 's.db'}"
    run = stratmap("-v", "run", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", AS_OF, "-q")
    assert run.returncode == 0, run.stderr
    assert [name for name, pattern in PHASES if pattern.search(run.stderr)] == [
        "sync", "evidence", "judge", "history", "ahead"]
    # The judgement ahead ran beside the sync: only what it took past the sync's end is
    # taken from the rest.
    parts = {k: float(v[:-1]) for k, v in (
        part.rsplit(" ", 1) for part in phases(run.stderr, 10.0).split(", "))}
    after = sum(v for k, v in parts.items() if k not in ("rest", "ahead"))
    beyond = max(0.0, parts["ahead"] - parts["sync"])
    assert parts["rest"] == pytest.approx(10.0 - after - beyond, abs=0.3)
    page = stratmap("-v", "report", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", AS_OF,
                    "--format", "html", "-o", str(tmp_path / "r.html"))
    assert page.returncode == 0, page.stderr
    assert [name for name, pattern in PHASES if pattern.search(page.stderr)] == [
        "evidence", "judge", "history", "page"]
    split = phases(page.stderr, 10.0)
    assert split.startswith("evidence ") and "page " in split and "sync" not in split


def test_fail_on_exits_4_when_a_finding_is_that_severe(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    args = ["run", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", AS_OF, "-q"]
    assert main([*args, "--fail-on", "critical"]) == 4
    early = ["run", str(SAMPLE / "plan.yaml"), "--db", db, "--as-of", "2026-08-01", "-q",
             "--offline", "--fail-on", "critical"]
    assert main(early) == 0  # before anything was due, nothing is critical


def test_a_broken_source_exits_3_naming_it_and_keeps_the_store(tmp_path: Path) -> None:
    folder = tmp_path / "northwind"
    shutil.copytree(SAMPLE, folder)
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(folder / "plan.yaml"), "--db", db, "--as-of", AS_OF, "-q"]) == 0
    (folder / "site-export" / "items.csv").unlink()
    done = stratmap("run", str(folder / "plan.yaml"), "--db", db, "--as-of", AS_OF)
    assert done.returncode == 3
    assert "source 'site'" in done.stdout and "items.csv" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
    # What was synced before is still there to judge.
    assert main(["run", str(folder / "plan.yaml"), "--db", db, "--as-of", AS_OF, "-q",
                 "--offline"]) == 0


def test_a_missing_secret_says_which_variable(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text((Path(__file__).parent.parent / "models" / "templates" / "plan.yaml")
                    .read_text())
    monkeypatch.delenv("JIRA_API_TOKEN", raising=False)
    done = stratmap("run", str(plan), "--db", f"sqlite:///{tmp_path / 's.db'}", cwd=tmp_path)
    assert done.returncode == 3
    assert "JIRA_API_TOKEN is not set" in done.stdout


def test_schema_command_prints_json() -> None:
    done = stratmap("schema", "report")
    assert json.loads(done.stdout)["title"] == "stratmap report"


def test_offline_on_a_store_that_never_synced_is_refused(tmp_path: Path) -> None:
    done = stratmap("run", str(SAMPLE / "plan.yaml"), "--db", f"sqlite:///{tmp_path / 'e.db'}",
                    "--offline", "--as-of", AS_OF)
    assert done.returncode == 5
    assert "holds no sync of this plan's sources (jira, site)" in " ".join(done.stdout.split())
    assert not (tmp_path / "e.db").exists()  # nothing is created to judge from


def test_an_unreachable_store_is_a_clear_error_without_the_password(tmp_path: Path) -> None:
    done = stratmap("run", str(SAMPLE / "plan.yaml"), "--db",
                    "postgresql+psycopg://me:hunter2@127.0.0.1:1/nowhere", "-q")
    assert done.returncode == 1
    text = " ".join((done.stdout + done.stderr).split())
    assert "cannot use the store postgresql+psycopg://me:***@127.0.0.1:1/nowhere" in text
    assert "hunter2" not in text and "Traceback" not in text
