"""Issue 13 on a real ``prefect server``: concurrent runs of one plan tell each change once;
a run whose sync failed alerts nobody, marks the report stale and fails; stratmap's own
loggers reach the flow run's logs."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_prefect_server import (
    AS_OF,
    PrefectServer,
    Receiver,
    _api,
    _sample_alerting_to,
    server,
)

pytestmark = pytest.mark.integration
__all__ = ["server"]  # the module's prefect server fixture


def _stratmap(server: PrefectServer, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "stratmap.flows.cli", "run", *args],
                            env=server.env, cwd=server.home, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _finish(process: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = process.communicate(timeout=300)
    return process.returncode, out


@pytest.mark.parametrize("store_kind", ["sqlite", "postgresql"])
def test_concurrent_runs_of_one_plan_deliver_each_alert_once(
        server: PrefectServer, tmp_path: Path, store_kind: str) -> None:
    from tests.conftest import _postgres_or_skip

    receiver = Receiver(slow=1.0)  # deliveries overlap: the runs meet in the critical part
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        baseline = f"sqlite:///{tmp_path / 'baseline.db'}"
        code, out = _finish(_stratmap(server, str(plan_file), "--db", baseline, "--as-of",
                                      AS_OF, "--prefect", "--quiet"))
        assert code == 0, out
        once = len(receiver.bodies)
        assert once > 0
        receiver.bodies.clear()

        db = (f"sqlite:///{tmp_path / 'store.db'}" if store_kind == "sqlite"
              else _postgres_or_skip())
        code, out = _finish(_stratmap(server, str(plan_file), "--db", db, "--as-of", AS_OF,
                                      "--no-prefect", "--quiet"))  # synced, nothing told yet
        assert code == 0, out
        runs = [_stratmap(server, str(plan_file), "--db", db, "--as-of", AS_OF, "--prefect",
                          "--offline", "--quiet") for _ in range(3)]
        results = [_finish(run) for run in runs]
        assert all(code == 0 for code, _ in results), results
        assert len(receiver.bodies) == once, "each alert exactly once across the three runs"
    finally:
        receiver.close()


def _logs(server: PrefectServer, flow_run_id: str, wanted: str) -> list[str]:
    deadline = time.monotonic() + 30
    while True:
        found = _api(server, "POST", "/logs/filter", json={
            "logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
        messages = [f"{entry['name']}: {entry['message']}" for entry in found]
        if any(wanted in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.5)


def test_a_failed_sync_alerts_nobody_marks_the_report_stale_and_fails_the_run(
        server: PrefectServer, tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        for folder in ("jira-export", "site-export"):  # never synced: nothing to judge from
            shutil.rmtree(plan_file.parent / folder)
        report = tmp_path / "report.json"
        code, out = _finish(_stratmap(server, str(plan_file), "--db",
                                      f"sqlite:///{tmp_path / 's.db'}", "--prefect",
                                      "--json", str(report)))
    finally:
        receiver.close()
    assert code == 3, out  # a source could not be synced
    assert receiver.bodies == [], "no alert judged from sources that never synced"
    stale = __import__("json").loads(report.read_text())["stale_sources"]
    assert {s["source"] for s in stale} == {"jira", "site"}
    assert all(s["last_synced"] is None for s in stale)

    (run,) = _api(server, "POST", "/flow_runs/filter", json={
        "flow_runs": {"name": {"like_": "track-northwind"}}, "sort": "START_TIME_DESC",
        "limit": 1})
    assert run["state"]["type"] == "FAILED"
    artifacts: list[dict[str, Any]] = _api(server, "POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run["id"]]}, "type": {"any_": ["markdown"]}}})
    assert any("**Stale**" in a["data"] and "| jira | never |" in a["data"]
               for a in artifacts), [a["data"][:300] for a in artifacts]
    # stratmap's own logger (not prefect.*) reaches the flow run's logs in the UI.
    messages = _logs(server, run["id"], "sync of jira failed")
    assert any(m.startswith("stratmap.flows.run: sync of jira failed") for m in messages), \
        messages
