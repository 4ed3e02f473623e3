"""Record the real Redmine's answers to a sync, for the offline wire tests.

    tests/redmine/setup.sh                      # a server, from the template
    .venv/bin/python -m tests.redmine.record    # writes tests/fakes/redmine/*.json
    tests/redmine/setup.sh --stop

Seeds one project (``wire-<random>``) with three issues, then runs the connector through
a recording transport: a full sync, an incremental one, and a saved query's resolution, two
issues a page and one request at a time so the order is fixed. Every request and answer is
kept as sent and received, except that the users' own API keys (``/users/*.json`` carries
them) are replaced by :data:`SCRUBBED`.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from stratmap.connectors.base import Window
from stratmap.connectors.redmine import RedmineConnector
from stratmap.models.plan import RedmineSource
from tests.redmine.admin import RedmineAdmin, RedmineServer

OUT = Path(__file__).resolve().parent.parent / "fakes" / "redmine"
STATE = Path(os.environ.get("STRATMAP_REDMINE_STATE", "/var/lib/stratmap-redmine"))
SCRUBBED = "SCRUBBED-USER-API-KEY-0000000000000000"


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: SCRUBBED if k == "api_key" else _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


class Recorder(httpx.BaseTransport):
    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.exchanges: list[dict[str, Any]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        body = response.json() if response.content else None
        self.exchanges.append({
            "method": request.method, "path": request.url.path,
            "params": dict(request.url.params), "status": response.status_code,
            "json": _scrub(body),
        })
        return httpx.Response(response.status_code, headers=response.headers,
                              content=response.content)

    def close(self) -> None:
        self.inner.close()


def _connector(server: RedmineServer, project: str, recorder: Recorder) -> RedmineConnector:
    config = RedmineSource(kind="redmine", url=server.url, project=project, page_size=2,
                           concurrency=1)
    return RedmineConnector("ops", config, token=server.key, transport=recorder)


def main() -> int:
    server = RedmineServer(url=(STATE / "server.url").read_text().strip(),
                           key=(STATE / "admin-api-key").read_text().strip(),
                           database=STATE / "server" / "redmine.sqlite3")
    with RedmineAdmin(server) as admin:
        project = admin.project("wire", members=("dev1", "lead"))
        v1 = admin.version(project, "v1", due="2026-12-01")
        shipped = admin.create_issue(project, "Ship the thing", assignee="dev1", version=v1)
        admin.update(shipped, status="In Progress", notes="started", as_user="dev1")
        admin.update(shipped, status="Closed", as_user="lead")
        admin.create_issue(project, "Stray feature", tracker="Feature")
        support = admin.create_issue(project, "Help desk", tracker="Support", version=v1)
        admin.update(support, notes="what is the plan here?", as_user="lead")
        base = datetime(2026, 9, 1, 9, tzinfo=UTC)
        admin.backdate(shipped, created=base, updated=base + timedelta(days=2),
                       closed=base + timedelta(days=2),
                       journals=dict(zip(admin.journal_ids(shipped),
                                         [base + timedelta(days=1), base + timedelta(days=2)],
                                         strict=True)))
        query = admin.saved_query(project, "Features and support",
                                  [("status_id", "*", [""]),
                                   ("tracker_id", "=", [str(admin.tracker_id("Feature")),
                                                        str(admin.tracker_id("Support"))])])
        now = datetime.now(UTC)
        recordings = {
            "full_sync": Window(since=None, until=now),
            "incremental_sync": Window(since=now - timedelta(minutes=30), until=now),
        }
        OUT.mkdir(parents=True, exist_ok=True)
        for name, window in recordings.items():
            recorder = Recorder()
            with _connector(server, project, recorder) as connector:
                pages = list(connector.fetch(window))
            print(f"{name}: {len(pages)} pages, {len(recorder.exchanges)} requests")
            _write(name, {"project": project, "url": server.url,
                          "since": window.since.isoformat() if window.since else None,
                          "until": window.until.isoformat(), "exchanges": recorder.exchanges})
        recorder = Recorder()
        with _connector(server, project, recorder) as connector:
            keys = connector.resolve({"query": str(query)})
        _write("resolve_query", {"project": project, "url": server.url, "query": query,
                                 "keys": sorted(keys), "exchanges": recorder.exchanges})
    return 0


def _write(name: str, data: dict[str, Any]) -> None:
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
