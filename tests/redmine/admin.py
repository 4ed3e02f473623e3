"""Writing test data into the real Redmine: REST as the admin (or as another user through
``X-Redmine-Switch-User``), plus the two things its REST API cannot do.

* Backdating: Redmine stamps every write with the server's clock. :meth:`RedmineAdmin.backdate`
  rewrites ``created_on``/``updated_on``/``closed_on`` of an issue and ``created_on`` of its
  journals in the server's own database (SQLite), so a history can be seeded at chosen
  moments. Reads still go through the server's REST API, filters and sorting included.
* Saved queries: there is no REST endpoint to create one; :meth:`RedmineAdmin.saved_query`
  uses ``rails runner`` (about 4 seconds).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REDMINE = Path("/usr/share/redmine")


@dataclass(frozen=True)
class RedmineServer:
    url: str
    key: str
    """The admin's API key: a secret, kept out of every assertion message."""
    database: Path

    def __repr__(self) -> str:
        return f"RedmineServer(url={self.url!r}, database={str(self.database)!r})"


def _db_time(moment: datetime) -> str:
    """How Rails stores a datetime in SQLite (the server runs with TZ=UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class RedmineAdmin:
    def __init__(self, server: RedmineServer) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, headers={"X-Redmine-API-Key": server.key},
                                 timeout=30)
        self._users: dict[str, int] = {}
        self._statuses: dict[str, int] | None = None
        self._trackers: dict[str, int] | None = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> RedmineAdmin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- REST ----------------------------------------------------------------------------

    def _call(self, method: str, path: str, *, as_user: str | None = None,
              body: dict[str, Any] | None = None, params: dict[str, str] | None = None) -> Any:
        headers = {"X-Redmine-Switch-User": as_user} if as_user else {}
        response = self.http.request(method, path, json=body, params=params, headers=headers)
        if response.status_code >= 400:
            raise AssertionError(f"{method} {path} -> {response.status_code}: "
                                 f"{response.text[:300]}")
        return response.json() if response.content.strip() else None

    def status_id(self, name: str) -> int:
        if self._statuses is None:
            self._statuses = {s["name"]: s["id"]
                              for s in self._call("GET", "/issue_statuses.json")["issue_statuses"]}
        return self._statuses[name]

    def tracker_id(self, name: str) -> int:
        if self._trackers is None:
            self._trackers = {t["name"]: t["id"]
                              for t in self._call("GET", "/trackers.json")["trackers"]}
        return self._trackers[name]

    def user(self, login: str, *, name: str | None = None) -> int:
        """The user's id, creating the user on first use (users outlive one test)."""
        if login in self._users:
            return self._users[login]
        found = self._call("GET", "/users.json", params={"name": login, "status": "1"})["users"]
        match = [u["id"] for u in found if u["login"] == login]
        if match:
            self._users[login] = match[0]
            return match[0]
        first, _, last = (name or f"{login.title()} Tester").partition(" ")
        created = self._call("POST", "/users.json", body={"user": {
            "login": login, "firstname": first, "lastname": last or "Tester",
            "mail": f"{login}@stratmap.test", "password": uuid.uuid4().hex,
        }})["user"]
        self._users[login] = created["id"]
        return int(created["id"])

    def api_key_of(self, login: str) -> str:
        """A user's own API key (Redmine answers it to an administrator)."""
        return str(self._call("GET", f"/users/{self.user(login)}.json")["user"]["api_key"])

    def project(self, prefix: str = "t", *, members: tuple[str, ...] = ()) -> str:
        """A fresh private project (its identifier), with ``members`` as developers."""
        identifier = f"{prefix}{uuid.uuid4().hex[:12]}"
        self._call("POST", "/projects.json", body={"project": {
            "name": identifier, "identifier": identifier, "is_public": False,
            "tracker_ids": [self.tracker_id(n) for n in ("Bug", "Feature", "Support")],
        }})
        for login in members:
            self._call("POST", f"/projects/{identifier}/memberships.json", body={
                "membership": {"user_id": self.user(login), "role_ids": [4]}})  # Developer
        return identifier

    def version(self, project: str, name: str, *, due: str | None = None) -> int:
        body: dict[str, Any] = {"name": name}
        if due:
            body["due_date"] = due
        return int(self._call("POST", f"/projects/{project}/versions.json",
                              body={"version": body})["version"]["id"])

    def create_issue(self, project: str, subject: str, *, tracker: str = "Bug",
                     assignee: str | None = None, version: int | None = None,
                     as_user: str | None = None) -> int:
        body: dict[str, Any] = {"project_id": project, "subject": subject,
                                "tracker_id": self.tracker_id(tracker)}
        if assignee:
            body["assigned_to_id"] = self.user(assignee)
        if version:
            body["fixed_version_id"] = version
        return int(self._call("POST", "/issues.json", body={"issue": body},
                              as_user=as_user)["issue"]["id"])

    def update(self, issue_id: int, *, status: str | None = None, notes: str | None = None,
               assignee: str | None = None, as_user: str | None = None) -> None:
        body: dict[str, Any] = {}
        if status:
            body["status_id"] = self.status_id(status)
        if assignee is not None:
            body["assigned_to_id"] = self.user(assignee) if assignee else ""
        if notes:
            body["notes"] = notes
        self._call("PUT", f"/issues/{issue_id}.json", body={"issue": body}, as_user=as_user)

    def delete_issue(self, issue_id: int) -> None:
        self._call("DELETE", f"/issues/{issue_id}.json")

    # -- the server's database -----------------------------------------------------------

    def _db(self) -> contextlib.closing[sqlite3.Connection]:
        return contextlib.closing(sqlite3.connect(self.server.database, timeout=10))

    def journal_ids(self, issue_id: int) -> list[int]:
        with self._db() as db:
            rows = db.execute("SELECT id FROM journals WHERE journalized_type = 'Issue' AND "
                              "journalized_id = ? ORDER BY id", (issue_id,)).fetchall()
        return [int(r[0]) for r in rows]

    def journal_time(self, journal_id: int) -> datetime:
        """When Redmine stamped a journal (the server runs with TZ=UTC)."""
        with self._db() as db:
            (text,) = db.execute("SELECT created_on FROM journals WHERE id = ?",
                                 (journal_id,)).fetchone()
        # The API reports whole seconds, as the connector reads them.
        return datetime.fromisoformat(str(text)).replace(tzinfo=UTC, microsecond=0)

    def backdate(self, issue_id: int, *, created: datetime | None = None,
                 updated: datetime | None = None, closed: datetime | None = None,
                 journals: dict[int, datetime] | None = None) -> None:
        """Rewrite an issue's and its journals' stamps (see the module docstring)."""
        with self._db() as db, db:
            for column, value in (("created_on", created), ("updated_on", updated),
                                  ("closed_on", closed)):
                if value is not None:
                    db.execute(f"UPDATE issues SET {column} = ? WHERE id = ?",
                               (_db_time(value), issue_id))
            db.executemany("UPDATE journals SET created_on = ? WHERE id = ?",
                           [(_db_time(at), jid) for jid, at in (journals or {}).items()])

    def saved_query(self, project: str, name: str,
                    filters: list[tuple[str, str, list[str]]]) -> int:
        """A public saved issue query in ``project``; its id (``query: <id>`` selectors)."""
        script = """
          q = IssueQuery.new(name: ENV["QUERY_NAME"],
                             project: Project.find_by!(identifier: ENV["QUERY_PROJECT"]),
                             user: User.find_by!(login: "admin"),
                             visibility: Query::VISIBILITY_PUBLIC)
          q.filters = {}
          JSON.parse(ENV["QUERY_FILTERS"]).each { |f, op, values| q.add_filter(f, op, values) }
          q.save!
          puts "QUERY_ID=#{q.id}"
        """
        env = {**os.environ, "RAILS_ENV": "production", "TZ": "UTC",
               "DATABASE_URL": f"sqlite3:{self.server.database}?timeout=10000",
               "QUERY_NAME": name, "QUERY_PROJECT": project,
               "QUERY_FILTERS": json.dumps(filters)}
        done = subprocess.run(["bundle", "exec", "rails", "runner", script], cwd=REDMINE,
                              env=env, capture_output=True, text=True, check=False)
        ids = [line.split("=", 1)[1] for line in done.stdout.splitlines()
               if line.startswith("QUERY_ID=")]
        if done.returncode != 0 or not ids:
            raise AssertionError(f"rails runner failed: {done.stderr[-800:]}")
        return int(ids[0])
