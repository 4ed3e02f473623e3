"""Issue 13 on a real ``prefect server``: concurrent runs of one plan tell each change once;
a run whose sync failed alerts nobody, marks the report stale and fails; stratmap's own
loggers reach the flow run's logs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.test_prefect_server import (
    AS_OF,
    ROOT,
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
    stale = json.loads(report.read_text())["stale_sources"]
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


# -- no secret in a flow run's parameters ------------------------------------------------------

STORE_PASSWORD = "pw-Canary-93b1e7"


def _header_commands(text: str) -> list[str]:
    """The shell commands a file's header comment tells the reader to run, in order."""
    commands = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("#   ") and not line.startswith("#    "):
            commands.append(line.removeprefix("#   "))
    return commands


def _sh(server: PrefectServer, command: str, *, cwd: Path,
        env: dict[str, str] | None = None) -> str:
    path = f"{Path(sys.executable).parent}:{server.env.get('PATH', '')}"
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=cwd,
                          env={**server.env, "PATH": path, **(env or {})}, capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _store_with_password(tmp_path: Path) -> str:
    """A store URL holding a password: PostgreSQL (trust auth accepts any), else SQLite."""
    from sqlalchemy.engine import make_url

    from tests.conftest import _postgres_or_skip

    try:
        url = _postgres_or_skip()
    except pytest.skip.Exception:
        return f"sqlite:///{tmp_path / 'store.db'}"
    return make_url(url).set(password=STORE_PASSWORD).render_as_string(hide_password=False)


def _no_password_in_any_flow_run(server: PrefectServer) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = _api(server, "POST", "/flow_runs/filter", json={"limit": 200})
    assert runs
    for run in runs:
        assert STORE_PASSWORD not in json.dumps(run["parameters"]), run["name"]
    return runs


def _deploy_shipped(server: PrefectServer, tmp_path: Path, plan_file: Path,
                    store: str) -> dict[str, str]:
    """Follow the header of the shipped deployments/prefect.yaml: create the work pool and
    deploy; the ids of the plan's deployments (deployed once per server)."""
    names = {"track": "track-plan/track-northwind-growth-plan-2027",
             "report": "report-plan/report-northwind-growth-plan-2027"}
    try:
        return {k: _api(server, "GET", f"/deployments/name/{v}")["id"] for k, v in names.items()}
    except __import__("httpx").HTTPStatusError:
        pass
    shipped = (ROOT / "deployments" / "prefect.yaml").read_text()
    folder = tmp_path / "deploy"
    (folder / "deployments").mkdir(parents=True)
    (folder / "deployments" / "prefect.yaml").write_text(shipped)
    create, deploy, worker = _header_commands(shipped)
    assert worker.startswith("STRATMAP_DB=") and "prefect worker start" in worker
    _sh(server, create, cwd=folder)
    _sh(server, deploy.replace("/srv/stratmap/plan.yaml", str(plan_file)), cwd=folder)
    return {k: _api(server, "GET", f"/deployments/name/{v}")["id"] for k, v in names.items()}


def test_the_shipped_prefect_yaml_works_as_written_with_no_password_in_any_parameter(
        server: PrefectServer, tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        store = _store_with_password(tmp_path)
        ids = _deploy_shipped(server, tmp_path, plan_file, store)
        shipped = (ROOT / "deployments" / "prefect.yaml").read_text()
        worker = _header_commands(shipped)[2]
        run = _api(server, "POST", f"/deployments/{ids['track']}/create_flow_run", json={})
        # The header's worker, with this test's store in STRATMAP_DB, for one run.
        _sh(server, worker.replace("sqlite:////srv/stratmap/stratmap.db", f"'{store}'")
            + " --run-once", cwd=tmp_path)
        done = _api(server, "GET", f"/flow_runs/{run['id']}")
        assert done["state"]["type"] == "COMPLETED", done["state"]
        assert done["name"].startswith("track-northwind-growth-plan-2027-")
        assert "plan:northwind-growth-plan-2027" in done["tags"]
        assert receiver.bodies, "the deployed run alerted"

        # The CLI with --db holding a password: the flow reads it from STRATMAP_DB.
        code, out = _finish(_stratmap(server, str(plan_file), "--db", store, "--prefect",
                                      "--offline", "--quiet"))
        assert code == 0, out
        assert STORE_PASSWORD not in out
        # Calling the flow with it is refused before a run exists.
        before = len(_no_password_in_any_flow_run(server))
        called = server.python(
            "from stratmap.flows.track import track_plan\n"
            f"track_plan({str(plan_file)!r}, db={store!r}, offline=True)\n")
        assert called.returncode != 0
        assert "holds a password" in called.stderr and "STRATMAP_DB" in called.stderr
        assert STORE_PASSWORD not in called.stderr
        after = _no_password_in_any_flow_run(server)
        assert len(after) == before, "no flow run was created"
        names = {r["name"] for r in after}
        assert any(n.startswith("track-northwind-growth-plan-2027-") for n in names)
    finally:
        receiver.close()


# -- the example Automations fire only for what they name -------------------------------------

_EMIT = """
import sys
from prefect.events.clients import get_events_client
from stratmap.models.planfile import load_plan, parse_plan
from stratmap.models.report import Finding, Kind, Severity
from stratmap.publish.changes import Change, Subject
from stratmap.publish.prefect_ui import emit_changes
from stratmap.judgement import judge
from stratmap.models.records import Evidence
from datetime import datetime, UTC

ours = load_plan(sys.argv[1])
other = parse_plan("version: 1\\nname: Other plan\\nleader: a\\npeople: {a: {}}\\n")
report = judge(ours, Evidence(), as_of=datetime(2027, 3, 1, tzinfo=UTC))


def goal(ref, before, after):
    return Change(Subject(f"status:goal:{ref}", after, "goal", ref, ref.upper(), None),
                  before, after)


def stalled(ref):
    finding = Finding(kind=Kind.STALLED, severity=Severity.WARNING, goal=ref.split(".")[0],
                      milestone=ref, person=None, item=None, message=f"{ref} stalled")
    return Change(Subject(f"finding:{ref}", "stalled", "stalled", ref, finding.message, None,
                          finding), None, "stalled")


which = sys.argv[2]
if which == "first":
    emit_changes(ours, report, [goal("crm", "at_risk", "off_track"), stalled("eu.localisation")])
elif which == "not":
    emit_changes(ours, report, [goal("crm", "off_track", "at_risk"),   # an improvement
                                goal("eu", None, "off_track"),          # first judged
                                goal("brand", "on_track", "at_risk")])  # worse, not off track
    emit_changes(other, report, [goal("crm", "at_risk", "off_track"),  # another plan's
                                 stalled("eu.localisation")])
else:
    emit_changes(ours, report, [goal("eu", "on_track", "off_track"), stalled("crm.migration")])
"""


def test_the_example_automations_fire_only_for_what_they_name(
        server: PrefectServer, tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        ids = _deploy_shipped(server, tmp_path, plan_file, f"sqlite:///{tmp_path / 's.db'}")
        # The header says slack-webhook/northwind-strategy; here the block posting to the
        # receiver stands in for it (a Slack webhook needs hooks.slack.com).
        hook = server.python(
            "from prefect.blocks.notifications import CustomWebhookNotificationBlock as B\n"
            f"B(name='northwind-strategy', url={receiver.url!r}, "
            "json_data={'subject': '{{subject}}', 'text': '{{body}}'})"
            ".save('northwind-strategy', overwrite=True)\n")
        assert hook.returncode == 0, hook.stderr
        folder = tmp_path / "deploy"
        (folder / "automations").mkdir(parents=True, exist_ok=True)
        for name in ("goal-off-track.yaml", "stalled-milestone.yaml"):
            text = (ROOT / "deployments" / "automations" / name).read_text()
            (folder / "automations" / name).write_text(text)
            session = "\n".join(_header_commands(text))  # one shell, as a reader types them
            _sh(server, session.replace("slack-webhook/northwind-strategy",
                                        "custom-webhook/northwind-strategy"), cwd=folder)

        def reports() -> int:
            """Runs of the plan's report deployment an Automation started (the scheduler's
            are auto-scheduled)."""
            runs = _api(server, "POST", "/flow_runs/filter", json={
                "flow_runs": {"deployment_id": {"any_": [ids["report"]]}}})
            started = [r for r in runs if not r["auto_scheduled"]]
            assert all((r.get("created_by") or {}).get("type") == "AUTOMATION" for r in started)
            return len(started)

        def fired(messages: int, runs: int) -> None:
            deadline = time.monotonic() + 120
            while (len(receiver.bodies) < messages or reports() < runs) \
                    and time.monotonic() < deadline:
                time.sleep(1)

        assert reports() == 0
        emit = tmp_path / "emit.py"
        emit.write_text(_EMIT)

        def send(which: str) -> None:
            done = subprocess.run([sys.executable, str(emit), str(plan_file), which],
                                  env=server.env, cwd=server.home, capture_output=True,
                                  text=True, timeout=180, check=False)
            assert done.returncode == 0, done.stderr

        # Once the Automations answer, the events that must not fire are sent, then two
        # that must: when those have fired, the ones before them were seen and let pass.
        for _ in range(40):
            send("first")
            fired(1, 1)
            if receiver.bodies and reports():
                break
        assert len(receiver.bodies) == 1 and reports() == 1, (receiver.bodies, reports())
        assert receiver.bodies[0]["subject"] == "Goal crm is off track"
        assert "from at_risk to off_track" in receiver.bodies[0]["text"]
        send("not")
        send("last")
        fired(2, 2)
        time.sleep(5)  # anything late would have arrived by now
        assert [b["subject"] for b in receiver.bodies] == ["Goal crm is off track",
                                                           "Goal eu is off track"]
        assert reports() == 2
    finally:
        receiver.close()


# -- what a person sees in the Prefect UI --------------------------------------------------------


def _wait_for_text(tab: Any, wanted: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = str(tab.evaluate("document.body.innerText"))
        if wanted in text:
            return text
        time.sleep(0.5)
    raise AssertionError(f"{wanted!r} never shown; the page says:\n{text[:3000]}")


def test_the_ui_shows_readable_artifacts_and_the_run_page(
        server: PrefectServer, tmp_path: Path) -> None:
    """The report, findings and HTML artifacts and the flow run page in headless Chromium:
    status words, times in the plan's zone to the minute, nothing wider than the page.
    With STRATMAP_UPDATE_SCREENSHOTS set, the screenshots are copied into docs/."""
    import os

    from tests.browser import Browser, chromium

    executable = chromium()
    if executable is None:
        if os.environ.get("STRATMAP_REQUIRE_BROWSER"):
            pytest.fail("chromium is required here (apt-get install chromium)")
        pytest.skip("no chromium (apt-get install chromium)")
    receiver = Receiver()
    try:
        plan_file = _sample_alerting_to(server, receiver, tmp_path)
        store = f"sqlite:///{tmp_path / 's.db'}"
        ran = server.python(
            "from stratmap.flows.track import track_plan\n"
            f"track_plan({str(plan_file)!r}, db={store!r}, "
            f"as_of={AS_OF!r}, html_path={str(tmp_path / 'report.html')!r})\n")
        assert ran.returncode == 0, ran.stderr[-3000:]
    finally:
        receiver.close()
    (run,) = _api(server, "POST", "/flow_runs/filter", json={
        "flow_runs": {"name": {"like_": "track-northwind"}}, "sort": "START_TIME_DESC",
        "limit": 1})
    assert run["state"]["type"] == "COMPLETED"
    assert run["name"].startswith("track-northwind-growth-plan-2027-")
    artifacts = {a["key"]: a for a in _api(server, "POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run["id"]]}}}) if a["key"]}
    prefix = "stratmap-northwind-growth-plan-2027-"
    assert {f"{prefix}report", f"{prefix}findings", f"{prefix}html",
            f"{prefix}goal-crm"} <= set(artifacts)
    progress = [a for a in artifacts.values() if a["type"] == "progress"]
    assert progress and all(float(a["data"]).is_integer() for a in progress)
    for artifact in artifacts.values():
        assert "2027-03-01 09:00 GMT" in artifact["description"], artifact["description"]

    shots: dict[str, Path] = {}
    base = f"http://127.0.0.1:{server.port}"
    browser = Browser(executable, tmp_path / "chromium")
    try:
        def page(path: str, wanted: str) -> tuple[Any, str]:
            tab = browser.tab(width=1400, height=1000)  # a fresh tab per page
            tab.open(f"{base}{path}")
            return tab, _wait_for_text(tab, wanted)

        def shoot(tab: Any, wanted: str, name: str) -> Path:
            """A screenshot once ``wanted`` is drawn in the top 1000 pixels of a page laid out
            1400 wide (the UI sometimes lays a page out narrower for a moment)."""
            def shown(text: str) -> str:  # a leaf showing ``text`` wholly on screen
                return ("[...document.querySelectorAll('*')].some(e => e.childElementCount === 0"
                        f" && e.textContent.includes({json.dumps(text)}) && (r => r.width > 0 "
                        "&& r.left >= 0 && r.right <= 1400 && r.top >= 0 && r.bottom <= 1000)"
                        "(e.getBoundingClientRect()))")

            # The UI's own navigation in place: nothing pushed the page sideways.
            drawn = f"window.innerWidth === 1400 && {shown(wanted)} && {shown('Dashboard')}"
            for _ in range(20):
                shot = tab.screenshot(tmp_path / f"prefect-ui-{name}.png", width=1400,
                                      height=1000)
                if tab.evaluate(drawn):
                    return shot
                time.sleep(1)
            raise AssertionError(f"{name}: {wanted!r} never drawn on the first screen")

        def clipped(tab: Any) -> list[str]:
            """Tables whose content is wider than the box that shows them."""
            return list(tab.evaluate(
                "[...document.querySelectorAll('table')].filter(t => "
                "t.scrollWidth > t.clientWidth + 1 || t.parentElement.scrollWidth > "
                "t.parentElement.clientWidth + 1 || t.getBoundingClientRect().right > "
                "window.innerWidth).map(t => t.innerText.slice(0, 80))"))

        tab, text = page(f"/artifacts/artifact/{artifacts[f'{prefix}findings']['id']}",
                         "Full messages")
        assert "2027-03-01 09:00 GMT" in text
        assert any(word in text for word in ("CRITICAL", "WARNING"))
        assert clipped(tab) == [], "the findings table is wider than the page"
        # The table fills the first screen (the full messages follow below it).
        shots["findings"] = shoot(tab, "finding(s), judged", "findings")

        tab, text = page(f"/artifacts/artifact/{artifacts[f'{prefix}report']['id']}",
                         "crm.migration")
        assert "OFF TRACK" in text and "2027-03-01 09:00 GMT" in text
        assert "🔴" not in text and "🟠" not in text  # status words, no emoji to miss a font
        shots["report"] = shoot(tab, "crm.migration", "report")

        tab, text = page(f"/artifacts/artifact/{artifacts[f'{prefix}html']['id']}",
                         "The HTML report of Northwind growth plan 2027")
        assert "Needs attention" in text and "crm.migration" in text
        assert (tmp_path / "report.html").as_uri() in text
        assert clipped(tab) == [] and tab.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"), "wider than the page"
        shots["html"] = shoot(tab, "Needs attention", "html")

        tab, text = page(f"/runs/flow-run/{run['id']}", run["name"])
        _wait_for_text(tab, "published stratmap-northwind-growth-plan-2027-report")
        assert "Completed" in str(tab.evaluate("document.body.innerText"))
        shots["flow-run"] = shoot(tab, run["name"], "flow-run")
    finally:
        browser.close()
    for shot in shots.values():
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("STRATMAP_UPDATE_SCREENSHOTS"):
        for name, shot in shots.items():
            shutil.copy(shot, ROOT / "docs" / f"prefect-ui-{name}.png")


# -- issue 14: a canary token through a failing Prefect run ------------------------------------


@pytest.mark.parametrize("ending", ["\r\n", "\n"])
def test_a_canary_token_is_absent_from_everything_a_failing_prefect_run_records(
        server: PrefectServer, tmp_path: Path, ending: str) -> None:
    import base64
    import subprocess as sp
    from urllib.parse import quote

    from tests.fakes.jira_server import FakeJira
    from tests.test_hostile_input import CANARY, _jira_plan

    before = {r["id"] for r in _api(server, "POST", "/flow_runs/filter", json={"limit": 200})}
    with FakeJira(deployment="cloud", token="another-token") as jira:  # answers 401
        plan = _jira_plan(tmp_path, jira)
        done = sp.run([sys.executable, "-m", "stratmap.flows.cli", "-v", "run", str(plan),
                       "--db", f"sqlite:///{tmp_path / 's.db'}", "--prefect"],
                      env={**server.env, "HOSTILE_TOKEN": CANARY + ending}, cwd=server.home,
                      capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 3, done.stdout + done.stderr
    (run,) = [r for r in _api(server, "POST", "/flow_runs/filter", json={"limit": 200})
              if r["id"] not in before]
    assert run["state"]["type"] == "FAILED"
    assert "401" in run["state"]["message"] or "token" in run["state"]["message"].lower()
    tasks = _api(server, "POST", "/task_runs/filter", json={
        "flow_runs": {"id": {"any_": [run["id"]]}}})
    assert any(t["state"]["type"] == "FAILED" for t in tasks)
    logs = _logs(server, run["id"], "sync of jira failed")
    assert any("sync of jira failed" in m for m in logs), logs
    artifacts = _api(server, "POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    assert artifacts
    recorded = json.dumps({"run": run, "tasks": tasks, "logs": logs, "artifacts": artifacts})
    basic = base64.b64encode(f"{jira.email}:{CANARY}".encode()).decode()
    for form in (CANARY, quote(CANARY), quote(CANARY + ending), basic, basic[8:-4]):
        assert form not in recorded, form
        assert form not in done.stdout + done.stderr, form
