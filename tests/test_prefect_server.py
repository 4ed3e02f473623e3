"""End to end on a real ``prefect server``: deploy the tracking flow, let a process worker
run it, and read back the run, the report artifact, the events and the alerts; then look
at the report in the Prefect UI in headless Chromium. Also: the block type is registered
by the plugin entry point, and secrets never reach the run logs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratmap.models.planfile import load_plan
from tests.browser import Browser, chromium
from tests.conftest import EXAMPLES

ROOT = Path(__file__).resolve().parent.parent
AS_OF = "2027-03-01T09:00:00+00:00"
pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrefectServer:
    def __init__(self, home: Path, *, database: str | None = None) -> None:
        self.port = _free_port()
        # Every process of these tests runs outside the checkout, as a user's would: the
        # flows must come from the installed package, never from ./flows.
        self.home = home
        self.url = f"http://127.0.0.1:{self.port}/api"
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.url,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_DATABASE_CONNECTION_URL":
                database or f"sqlite+aiosqlite:///{home}/prefect.db",
            "PREFECT_LOGGING_TO_API_BATCH_INTERVAL": "0.3",
        }
        self.log = (home / "server.log").open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
             "--port", str(self.port)], env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited: see {self.log.name}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError("prefect server did not answer in time")

    def prefect(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "prefect", *args], env=self.env,
                              cwd=self.home, capture_output=True, text=True, timeout=timeout, check=False)

    def python(self, code: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code], env=self.env, cwd=self.home,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    running = PrefectServer(tmp_path_factory.mktemp("prefect-home"))
    try:
        running.wait()
        yield running
    finally:
        running.stop()


class Receiver:
    """A local webhook endpoint that records what it is sent."""

    def __init__(self, *, slow: float = 0.0) -> None:
        """``slow``: seconds each delivery takes (a slow chat service)."""
        self.bodies: list[dict[str, Any]] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                received.append(json.loads(self.rfile.read(length) or b"{}"))
                time.sleep(slow)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


RETRIED = (408, 429, 502, 503)
"""What Prefect's own client retries (prefect/client/base.py, its extra codes aside), as
this helper does: a loaded server answers 503 now and then (seen once on a slow CI host,
creating a flow run)."""


def _api(server: PrefectServer, method: str, path: str, **kwargs: Any) -> Any:
    for attempt in range(1, 6):
        response = httpx.request(method, f"{server.url}{path}", timeout=30, **kwargs)
        if response.status_code not in RETRIED or attempt == 5:
            break
        time.sleep(float(response.headers.get("Retry-After") or attempt))
    response.raise_for_status()
    return response.json() if response.content else None


def _deploy(server: PrefectServer, plan_file: Path, db: str, pool: str,
            html: Path | None = None) -> dict[str, Any]:
    created = server.prefect("work-pool", "create", pool, "--type", "process")
    assert created.returncode == 0, created.stdout + created.stderr
    deployed = server.python(
        "from prefect import deploy\n"
        "from prefect.types.entrypoint import EntrypointType\n"
        "from stratmap.flows.track import track_plan\n"
        f"deployment = track_plan.to_deployment(name={pool!r}, "
        "entrypoint_type=EntrypointType.MODULE_PATH, parameters={'plan_path': "
        f"{str(plan_file)!r}, 'db': {db!r}, 'as_of': {AS_OF!r}, "
        f"'html_path': {str(html) if html else None!r}}})\n"
        f"deploy(deployment, work_pool_name={pool!r}, print_next_steps_message=False)\n")
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    return dict(_api(server, "GET", f"/deployments/name/track-plan/{pool}"))


def _run_worker_until(server: PrefectServer, flow_run_id: str, pool: str) -> dict[str, Any]:
    done = server.prefect("worker", "start", "--pool", pool, "--run-once", timeout=300)
    run = _api(server, "GET", f"/flow_runs/{flow_run_id}")
    assert run["state"]["type"] == "COMPLETED", done.stdout[-3000:] + done.stderr[-3000:]
    return dict(run)


def test_the_block_types_are_registered_by_the_plugin_entry_point(server: PrefectServer) -> None:
    block_type = _api(server, "GET", "/block_types/slug/stratmap-tracker-credentials")
    assert block_type["name"] == "stratmap Tracker Credentials"
    mail = _api(server, "GET", "/block_types/slug/stratmap-smtp-email")
    assert mail["name"] == "stratmap SMTP Email"
    (schema,) = _api(server, "POST", "/block_schemas/filter", json={
        "block_schemas": {"block_type_id": {"any_": [mail["id"]]}}})
    assert "notify" in schema["capabilities"]  # Automations can send through it
    password = schema["fields"]["properties"]["password"]
    assert {"format": "password", "type": "string", "writeOnly": True} in password["anyOf"]


def _sample_alerting_to(server: PrefectServer, receiver: Receiver, tmp_path: Path) -> Path:
    """A copy of the sample whose alert channels are one webhook block posting to
    ``receiver``."""
    folder = tmp_path / "northwind"
    shutil.copytree(EXAMPLES / "northwind", folder)
    plan_file = folder / "plan.yaml"
    plan = load_plan(plan_file)
    assert plan.alerts is not None
    text = plan_file.read_text()
    for reference in plan.alerts.channels.values():
        text = text.replace(reference, "block:custom-webhook/strategy-hook")
    plan_file.write_text(text)
    made = server.python(
        "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B\n"
        f"B(name='strategy-hook', url={receiver.url!r}, "
        "json_data={'subject': '{{subject}}', 'text': '{{body}}'})"
        ".save('strategy-hook', overwrite=True)\n")
    assert made.returncode == 0, made.stderr
    return plan_file


def test_deployed_tracking_flow_publishes_report_events_and_alerts_once(
        server: PrefectServer, tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        db = f"sqlite:///{tmp_path / 'store.db'}"
        html = tmp_path / "out" / "report.html"
        deployment = _deploy(server, plan_file, db, "e2e-pool", html)

        def run_once() -> dict[str, Any]:
            created = _api(server, "POST", f"/deployments/{deployment['id']}/create_flow_run",
                           json={})
            return _run_worker_until(server, created["id"], "e2e-pool")

        first = run_once()
        assert first["name"].startswith("track-northwind-growth-plan-2027-")
        sent_first = list(receiver.bodies)
        assert sent_first, "the first run alerts on the at-risk and off-track plan"
        assert any("off track" in body["text"] for body in sent_first)

        artifacts = _api(server, "POST", "/artifacts/latest/filter", json={
            "artifacts": {"key": {"any_": ["stratmap-northwind-growth-plan-2027-report"]}}})
        (report,) = artifacts
        assert report["type"] == "markdown"
        assert "# Northwind growth plan 2027" in report["data"]
        assert "crm.migration" in report["data"]

        from prefect.events.filters import EventFilter, EventNameFilter, EventOccurredFilter

        window = EventOccurredFilter(since=datetime.now(UTC) - timedelta(hours=1),
                                     until=datetime.now(UTC) + timedelta(hours=1))
        query = EventFilter(occurred=window, event=EventNameFilter(prefix=["stratmap."]))
        pages = _api(server, "POST", "/artifacts/latest/filter", json={
            "artifacts": {"key": {"any_": ["stratmap-northwind-growth-plan-2027-html"]}}})
        (page,) = pages  # the HTML report as an artifact of its own, which the UI shows
        assert page["type"] == "markdown"
        assert "/<wbr>report.html" in page["data"]  # where it was written, wrapping at "/"
        assert "Strategic map" in html.read_text()
        assert "<h1" in page["data"] and "<script" not in page["data"]

        expected = {"stratmap.plan.judged", "stratmap.milestone.stalled",
                    "stratmap.feedback.missing", "stratmap.goal.status-changed"}
        deadline = time.monotonic() + 60
        while True:  # the server persists events asynchronously, in batches
            events = _api(server, "POST", "/events/filter", json={
                "filter": query.model_dump(mode="json"), "limit": 50})["events"]
            names = {e["event"] for e in events}
            if expected <= names or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert {"stratmap.plan.judged", "stratmap.milestone.stalled",
                "stratmap.feedback.missing", "stratmap.goal.status-changed"} <= names
        stalled = next(e for e in events if e["event"] == "stratmap.milestone.stalled")
        assert stalled["resource"]["prefect.resource.id"] == (
            "stratmap.plan.northwind-growth-plan-2027.milestone.eu.localisation")

        second = run_once()
        assert second["id"] != first["id"]
        assert receiver.bodies == sent_first, "no change, so no alert the second time"

        screenshot = _ui_shows_artifact(server, tmp_path, report["latest_id"])
        if os.environ.get("STRATMAP_UPDATE_SCREENSHOTS"):
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copy(screenshot, ROOT / "docs" / "prefect-ui-report.png")
    finally:
        receiver.close()


def _ui_shows_artifact(server: PrefectServer, tmp_path: Path, artifact_id: str) -> Path:
    """Open the report artifact in the Prefect UI; wait until the Markdown is rendered."""
    executable = chromium()
    if executable is None:
        if os.environ.get("STRATMAP_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (apt-get install chromium)")
        pytest.skip("no chromium (apt-get install chromium)")
    browser = Browser(executable, tmp_path / "chromium")
    try:
        tab = browser.tab(width=1400, height=1000)
        tab.open(f"http://127.0.0.1:{server.port}/artifacts/artifact/{artifact_id}")
        deadline = time.monotonic() + 60
        text = ""
        while time.monotonic() < deadline:
            text = str(tab.evaluate("document.body.innerText"))
            if "crm.migration" in text:
                break
            time.sleep(0.5)
        # The Markdown report as the UI renders it: its title, a milestone, a finding.
        assert "Northwind growth plan 2027" in text
        assert "crm.migration" in text and "was due 2027-02-12" in text
        # The strategic map is drawn: an SVG image the UI decoded, not Mermaid shown as code.
        maps: list[list[Any]] = []
        while time.monotonic() < deadline:
            maps = json.loads(tab.evaluate(
                "JSON.stringify([...document.images].filter(i => i.alt.startsWith("
                "'Strategic map')).map(i => [i.complete, i.naturalWidth, i.naturalHeight, "
                "i.src.slice(0, 26)]))"))
            if maps and maps[0][0]:
                break
            time.sleep(0.5)
        assert len(maps) == 1, maps
        complete, width, height, src = maps[0]
        assert complete and width > 300 and height > 100, maps
        assert src == "data:image/svg+xml;base64,"
        assert "flowchart LR" not in text
        return tab.screenshot(tmp_path / "prefect-ui-report.png", width=1400, height=1000)
    finally:
        browser.close()


def test_secrets_never_reach_the_run_logs(server: PrefectServer) -> None:
    secret = "sk-live-5f3a9c1e7b2d"
    code = (
        "import os\n"
        "from prefect import flow, get_run_logger\n"
        "from stratmap.flows.secrets import resolve_secret\n"
        "@flow(name='leaky')\n"
        "def leaky():\n"
        "    token = resolve_secret('jira', 'env:STRATMAP_E2E_TOKEN')\n"
        "    get_run_logger().info('calling the tracker with token %s', token)\n"
        "    get_run_logger().warning(f'inline {token} too')\n"
        "    return str(leaky_id())\n"
        "def leaky_id():\n"
        "    from prefect.runtime import flow_run\n"
        "    return flow_run.id\n"
        "print(leaky())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=server.home, capture_output=True,
                          text=True, timeout=180, check=False,
                          env={**server.env, "STRATMAP_E2E_TOKEN": secret})
    assert done.returncode == 0, done.stderr
    flow_run_id = done.stdout.strip().splitlines()[-1]
    assert secret not in done.stdout + done.stderr

    async def logs() -> list[str]:
        deadline = time.monotonic() + 30
        while True:
            found = _api(server, "POST", "/logs/filter", json={
                "logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
            messages = [entry["message"] for entry in found]
            if any("calling the tracker" in m for m in messages) or time.monotonic() > deadline:
                return messages
            await asyncio.sleep(0.5)

    messages = asyncio.run(logs())
    assert any("calling the tracker with token ***" in m for m in messages), messages
    assert any("inline *** too" in m for m in messages)
    assert not any(secret in m for m in messages)


def test_stratmap_run_goes_through_prefect_when_an_api_is_configured(
        server: PrefectServer, tmp_path: Path) -> None:
    def runs() -> list[dict[str, Any]]:
        return list(_api(server, "POST", "/flow_runs/filter", json={
            "flow_runs": {"name": {"like_": "track-northwind-growth-plan-2027"}}}))

    from sqlalchemy import create_engine, text

    before = {r["id"] for r in runs()}
    store = tmp_path / "s.db"
    report = tmp_path / "report.json"
    receiver = Receiver()
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        done = subprocess.run(
            [sys.executable, "-m", "stratmap.flows.cli", "run", str(plan_file),
             "--db", f"sqlite:///{store}", "--quiet", "--json", str(report)],
            env=server.env, cwd=server.home, capture_output=True, text=True, timeout=300, check=False)
    finally:
        receiver.close()
    assert done.returncode == 0, done.stdout + done.stderr
    assert receiver.bodies, "the flow delivered the alerts"
    new = [r for r in runs() if r["id"] not in before]
    assert len(new) == 1 and new[0]["state"]["type"] == "COMPLETED"
    assert {"stratmap", "plan:northwind-growth-plan-2027"} <= set(new[0]["tags"])  # as deployed
    # Judged and recorded once, by the flow: one run snapshot per entity at one moment (the
    # CLI used to judge "now" and record a second time after the flow returned).
    engine = create_engine(f"sqlite:///{store}")
    with engine.connect() as connection:
        moments = connection.execute(text(
            "SELECT DISTINCT recorded_at FROM snapshots WHERE origin = 'run'")).all()
        plan_rows = connection.execute(text(
            "SELECT count(*) FROM snapshots WHERE origin = 'run' AND entity = '*'")).scalar()
    engine.dispose()
    assert len(moments) == 1 and plan_rows == 1
    assert json.loads(report.read_text())["plan"] == "Northwind growth plan 2027"


def test_a_prefect_toml_api_url_sends_stratmap_run_through_prefect(
        server: PrefectServer, tmp_path: Path) -> None:
    """Prefect's own settings decide: an ``[api] url`` in the working folder's prefect.toml."""
    (tmp_path / "prefect.toml").write_text(f'[api]\nurl = "{server.url}"\n')
    env = {k: v for k, v in server.env.items() if k != "PREFECT_API_URL"}
    code = ("from stratmap.flows.cli import prefect_api_configured\n"
            "print(prefect_api_configured())\n")
    found = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120, check=False)
    assert found.stdout.strip() == "True", found.stderr
    (tmp_path / "prefect.toml").unlink()
    missing = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120, check=False)
    assert missing.stdout.strip() == "False", missing.stderr


def test_scale_out_server_and_store_on_postgresql(tmp_path_factory: pytest.TempPathFactory,
                                                  tmp_path: Path) -> None:
    """A prefect server on PostgreSQL, a process worker, and the store on PostgreSQL."""
    from sqlalchemy import create_engine, text

    from stratmap.models.store import Store
    from tests.conftest import PG_URL, _postgres_or_skip

    store_url = _postgres_or_skip()
    prefect_db = f"stratmap_prefect_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{prefect_db}"'))
    base = PG_URL.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql+asyncpg")
    server = PrefectServer(tmp_path_factory.mktemp("prefect-pg"),
                           database=f"{base}/{prefect_db}")
    receiver = Receiver()
    try:
        server.wait()
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        deployment = _deploy(server, plan_file, store_url, "pg-pool")
        created = _api(server, "POST", f"/deployments/{deployment['id']}/create_flow_run",
                       json={})
        _run_worker_until(server, created["id"], "pg-pool")
    finally:
        receiver.close()
        server.stop()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{prefect_db}" WITH (FORCE)'))
        admin.dispose()
    with Store(store_url) as store:
        assert store.counts()["items"] == 149


def test_stratmap_serve_registers_the_plans_scheduled_deployments(
        server: PrefectServer, tmp_path: Path) -> None:
    served = subprocess.Popen(
        [sys.executable, "-m", "stratmap.flows.cli", "serve", str(EXAMPLES / "northwind" / "plan.yaml"),
         "--db", f"sqlite:///{tmp_path / 's.db'}"],
        env=server.env, cwd=server.home, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        found: dict[str, Any] = {}
        names = ("track-plan/track-northwind-growth-plan-2027",
                 "report-plan/report-northwind-growth-plan-2027",
                 "push-plan/push-northwind-growth-plan-2027")
        while time.monotonic() < deadline and len(found) < len(names):
            for name in names:
                with contextlib.suppress(httpx.HTTPStatusError):
                    found[name] = _api(server, "GET", f"/deployments/name/{name}")
            time.sleep(1)
        assert set(found) == set(names)
        assert found["push-plan/push-northwind-growth-plan-2027"]["schedules"] == []
        assert found["push-plan/push-northwind-growth-plan-2027"]["parameters"]["apply"] is False
        report = found["report-plan/report-northwind-growth-plan-2027"]
        (schedule,) = report["schedules"]
        assert schedule["schedule"]["cron"] == "0 9 * * MON"
        assert schedule["schedule"]["timezone"] == "Europe/London"
        assert report["parameters"]["plan_path"] == str(EXAMPLES / "northwind" / "plan.yaml")
    finally:
        served.terminate()
        try:
            served.wait(timeout=30)
        except subprocess.TimeoutExpired:
            served.kill()
            served.wait()
        if served.stdout:
            served.stdout.close()


def test_the_push_flow_writes_the_plans_dates_and_publishes_a_table(
        server: PrefectServer, tmp_path: Path) -> None:
    from datetime import date

    from tests.fakes.jira_server import FakeJira
    from tests.test_push import PLAN

    with FakeJira(deployment="datacenter") as fake:
        for user in ("alice", "bob"):
            fake.add_user(user, user.title())
        for key in ("WEB-1", "WEB-2", "WEB-3", "WEB-4"):
            fake.add_issue(key, issuetype="Epic", assignee="alice",
                           duedate=date(2027, 2, 15))
        plan_file = tmp_path / "plan.yaml"
        plan_file.write_text(PLAN.format(url=fake.url, auth="deployment: datacenter",
                                         alice="alice", bob="bob"))
        code = ("import json\nfrom stratmap.flows.track import push_plan_flow\n"
                f"print(json.dumps(push_plan_flow({str(plan_file)!r}, apply=True)))\n")
        done = subprocess.run([sys.executable, "-c", code], cwd=server.home, capture_output=True,
                              text=True, timeout=180, check=False,
                              env={**server.env, "STRATMAP_TEST_JIRA_TOKEN": fake.token})
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout.strip().splitlines()[-1])
        assert (result["differences"], result["written"]) == (3, 3)
        assert any("WEB-99" in note for note in result["notes"])
        assert fake.issues["WEB-1"].duedate == date(2027, 6, 30)
        assert fake.issues["WEB-1"].assignee == "bob"
        assert fake.token not in done.stdout + done.stderr
    (table,) = _api(server, "POST", "/artifacts/latest/filter", json={
        "artifacts": {"key": {"any_": ["stratmap-push-plan-push"]}}})
    rows = json.loads(table["data"]) if isinstance(table["data"], str) else table["data"]
    assert sorted((r["container"], r["field"], r["plan"], r["written"]) for r in rows) == [
        ("epic WEB-1", "assignee", "bob", True), ("epic WEB-1", "due", "2027-06-30", True),
        ("epic WEB-3", "due", "2027-04-01", True)]
