"""Against a real Prometheus and Pushgateway (Debian's `prometheus` and
`prometheus-pushgateway`; `.ci/run` installs them when missing): a run pushes the plan's
metrics, Prometheus scrapes the Pushgateway, and they come back through its HTTP API, both
as an instant query and as a plan measure of kind `prometheus` that the engine judges."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratmap.models.planfile import parse_plan
from tests.test_measures import JUDGED

pytestmark = pytest.mark.integration

WAIT = 120.0
"""Seconds a server gets to start, and Prometheus to have scraped enough."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for(what: str, check: Any, process: subprocess.Popen[bytes] | None = None) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            pytest.fail(f"{what}: the process exited ({process.returncode})")
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"{what}: not after {WAIT:.0f}s")


@pytest.fixture
def prometheus_stack(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(pushgateway URL, prometheus URL): both started on free ports, Prometheus scraping
    the Pushgateway every second; stopped afterwards."""
    binaries = [shutil.which("prometheus-pushgateway"), shutil.which("prometheus")]
    if None in binaries:
        if os.environ.get("STRATMAP_REQUIRE_PROMETHEUS"):
            pytest.fail("prometheus and prometheus-pushgateway are required here")
        pytest.skip("prometheus or prometheus-pushgateway is not installed")
    gateway_port, prometheus_port = _free_port(), _free_port()
    gateway_url = f"http://127.0.0.1:{gateway_port}"
    prometheus_url = f"http://127.0.0.1:{prometheus_port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: pushgateway\n"
        "    honor_labels: true\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{gateway_port}']}}]\n")
    logs = (tmp_path / "gateway.log").open("wb"), (tmp_path / "prometheus.log").open("wb")
    gateway = subprocess.Popen(
        [str(binaries[0]), f"--web.listen-address=127.0.0.1:{gateway_port}",
         f"--persistence.file={tmp_path / 'gateway.data'}"], stdout=logs[0], stderr=logs[0])
    prometheus = subprocess.Popen(
        [str(binaries[1]), f"--config.file={config}", f"--web.listen-address=127.0.0.1:"
         f"{prometheus_port}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"],
        stdout=logs[1], stderr=logs[1])
    try:
        _wait_for("pushgateway", lambda: httpx.get(f"{gateway_url}/-/ready").is_success,
                  gateway)
        _wait_for("prometheus", lambda: httpx.get(f"{prometheus_url}/-/ready").is_success,
                  prometheus)
        yield gateway_url, prometheus_url
    finally:
        for process in (prometheus, gateway):
            process.terminate()
        for process in (prometheus, gateway):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def _query(prometheus_url: str, query: str) -> list[dict[str, Any]]:
    body = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}).json()
    assert body["status"] == "success"
    return list(body["data"]["result"])


def test_pushed_metrics_are_scraped_and_judged_as_a_prometheus_measure(
        prometheus_stack: tuple[str, str], tmp_path: Path) -> None:
    from stratmap.flows.measures import sync_measures
    from stratmap.flows.run import track
    from stratmap.judgement import judge
    from stratmap.models.records import Evidence
    from stratmap.models.store import Store, load_measure_values

    gateway_url, prometheus_url = prometheus_stack
    (tmp_path / "r.csv").write_text("2026-01-01,100\n2026-01-08,107\n")
    pushed = parse_plan(JUDGED + f"metrics: {{pushgateway: \"{gateway_url}\"}}\n")
    db = f"sqlite:///{tmp_path / 's.db'}"
    tracked = track(pushed, plan_dir=tmp_path, db=db)
    assert tracked.published == {"metrics_push_failure": None}

    # Scraped: the goal's progress and the measure's value, with the plan's labels.
    (progress,) = _wait_for("scrape", lambda: _query(prometheus_url, "stratmap_goal_progress"))
    assert progress["metric"]["plan"] == "Judged plan" and progress["metric"]["goal"] == "revenue"
    assert "item" not in progress["metric"] and "person" not in progress["metric"]
    selector = 'stratmap_measure_value{measure="revenue.online"}'
    # A minute of scrapes, so that the measure's one-minute steps include a scraped value.
    _wait_for("a minute of scrapes", lambda: [
        r for r in _query(prometheus_url, f"count_over_time({selector}[5m])")
        if float(r["value"][1]) >= 65])

    now = datetime.now(UTC)
    start = (now - timedelta(days=1)).date()
    measured = parse_plan(f"""\
version: 1
name: Read back
leader: alice
people:
  alice: {{name: Alice}}
goals:
  - id: revenue
    title: Revenue
    owner: alice
    measures:
      - id: scraped
        source: {{kind: prometheus, url: "{prometheus_url}", step: 1m,
                 query: 'max({selector}) or vector(100)'}}
        baseline: {{value: 100, date: {start.isoformat()}}}
        target: {{value: 300, date: {(start + timedelta(days=30)).isoformat()}}}
        every: 1h
""")
    with Store(db) as store:
        assert sync_measures(measured, store, plan_dir=tmp_path, started=now)[
            "revenue.scraped"] > 60 * 24
        values = list(load_measure_values(store, "Read back"))
    assert values[0].value == 100 and values[-1].value == 107  # before the push, and after
    evidence = Evidence(measures=tuple(values))
    report = judge(measured, evidence, as_of=now)
    assert [f.kind.value for f in report.findings] == ["off_target"]
    assert report.findings[0].evidence["last_value"] == 107
    later = judge(measured, evidence, as_of=now + timedelta(hours=2))
    assert sorted(f.kind.value for f in later.findings) == ["off_target", "stale_measure"]
