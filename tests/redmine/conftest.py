"""A real Redmine for the tests in this folder (session-scoped).

Reuses a server ``setup.sh`` started (``$STRATMAP_REDMINE_STATE/server.url``), else starts
one on a free port from a copy of the template database, waits until ``/issues.json``
answers, and stops it at the end of the session. Where Redmine is not installed the tests
skip, saying how to install it; ``STRATMAP_REQUIRE_REDMINE=1`` (set by ``.ci/run``) turns
that skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.redmine.admin import RedmineAdmin, RedmineServer

HERE = Path(__file__).resolve().parent
SETUP = HERE / "setup.sh"
REDMINE = Path("/usr/share/redmine")
STATE = Path(os.environ.get("STRATMAP_REDMINE_STATE", "/var/lib/stratmap-redmine"))
READY_WITHIN = 120.0


def _unavailable(reason: str) -> None:
    if os.environ.get("STRATMAP_REQUIRE_REDMINE"):
        pytest.fail(f"a real Redmine is required here (STRATMAP_REQUIRE_REDMINE) but {reason}")
    pytest.skip(reason)


def _answers(url: str, key: str) -> bool:
    try:
        response = httpx.get(f"{url}/issues.json", params={"limit": "1"},
                             headers={"X-Redmine-API-Key": key}, timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@pytest.fixture(scope="session")
def redmine_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedmineServer]:
    if not (REDMINE / "Gemfile").is_file() or shutil.which("bundle") is None:
        _unavailable(f"Redmine is not installed: run {SETUP.relative_to(HERE.parent.parent)} "
                     "--install-only (root, Debian 12)")
    prepared = subprocess.run(["bash", str(SETUP), "--prepare"], capture_output=True,
                              text=True, check=False)
    if prepared.returncode != 0:
        _unavailable(f"preparing its database failed: {prepared.stderr.strip()[-500:]}")
    key = (STATE / "admin-api-key").read_text().strip()

    running = STATE / "server.url"
    if running.is_file():
        url = running.read_text().strip()
        if _answers(url, key):
            yield RedmineServer(url=url, key=key, database=STATE / "server" / "redmine.sqlite3")
            return

    folder = tmp_path_factory.mktemp("redmine")
    database = folder / "redmine.sqlite3"
    shutil.copyfile(STATE / "template.sqlite3", database)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        # Redmine stores local times: pin the zone so the database holds UTC.
        "RAILS_ENV": "production", "TZ": "UTC", "RAILS_LOG_TO_STDOUT": "1",
        "DATABASE_URL": f"sqlite3:{database}?timeout=10000",
    }
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            ["bundle", "exec", "rails", "server", "-u", "webrick", "-b", "127.0.0.1",
             "-p", str(port), "-P", str(folder / "server.pid")],
            cwd=REDMINE, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_WITHIN
        while not _answers(url, key):
            if server.poll() is not None:
                pytest.fail(f"Redmine exited with {server.returncode}:\n{_tail(log_path)}")
            if time.monotonic() > deadline:
                pytest.fail(f"Redmine did not answer within {READY_WITHIN:.0f}s:\n"
                            f"{_tail(log_path)}")
            time.sleep(0.25)
        yield RedmineServer(url=url, key=key, database=database)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()


@pytest.fixture(scope="session")
def redmine(redmine_server: RedmineServer) -> Iterator[RedmineAdmin]:
    """The admin's REST client on the session's Redmine."""
    with RedmineAdmin(redmine_server) as admin:
        yield admin
