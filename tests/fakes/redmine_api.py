"""Offline Redmine: replays of the real server's recorded answers, and a small stateful fake.

Recordings (``tests/fakes/redmine/*.json``) come from ``python -m tests.redmine.record``
against a real Redmine 5.0 (Debian 12); each holds every request the connector made and
the server's answer. :class:`Replay` serves them back by exact method, path and query.

:class:`FakeRedmine` keeps issues in memory and answers ``/issues.json`` the way Redmine
does (payload shapes copied from the recordings): ``status_id`` absent lists open issues
only, ``updated_on=>=T`` accepts whole seconds with ``Z`` only (else 422) and means
``updated_on > T - 1s`` on stamps that carry microseconds, ``sort=updated_on,id`` sorts,
``limit``/``offset`` page. Tests can change issues between requests (``before_list``).

Versions (``stratmap push``), as Redmine 5.0's ``VersionsController`` answers them:
``GET /projects/{identifier}/versions.json`` lists the project's versions and those other
projects share with it, all at once (``{"versions": [...], "total_count": n}``, the date as
``due_date``); ``PUT /versions/{id}.json`` takes ``{"version": {...}}`` with
``effective_date`` (or its alias ``due_date``) and answers ``204`` with no body, ``422``
``{"errors": [...]}`` for a bad date, and a bare ``403`` (no body, as Redmine's API does)
when ``editable`` is False: the key's user lacks *Manage versions*.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

RECORDINGS = Path(__file__).resolve().parent / "redmine"
URL = "http://redmine.test"
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}(:?\d{2}){0,2}Z$")
STATUSES = [
    {"id": 1, "name": "New", "is_closed": False},
    {"id": 2, "name": "In Progress", "is_closed": False},
    {"id": 3, "name": "Resolved", "is_closed": False},
    {"id": 4, "name": "Feedback", "is_closed": False},
    {"id": 5, "name": "Closed", "is_closed": True},
    {"id": 6, "name": "Rejected", "is_closed": True},
]


def recording(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDINGS / f"{name}.json").read_text("utf-8"))
    return data


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Replay:
    """An httpx transport answering exactly the recorded requests, in any order."""

    def __init__(self, name: str) -> None:
        self.data = recording(name)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        for exchange in self.data["exchanges"]:
            if (exchange["method"] == request.method and exchange["path"] == request.url.path
                    and exchange["params"] == dict(request.url.params)):
                return httpx.Response(exchange["status"], json=exchange["json"])
        return httpx.Response(599, json={"errors": [f"not recorded: {request.url}"]})

    def sent(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(r.method, r.url.path, dict(r.url.params)) for r in self.requests]

    def recorded(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(e["method"], e["path"], e["params"]) for e in self.data["exchanges"]]


@dataclass
class FakeIssue:
    id: int
    updated: datetime
    status_id: int = 1
    subject: str = ""
    created: datetime | None = None
    journals: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def payload(self, *, with_journals: bool) -> dict[str, Any]:
        status = next(s for s in STATUSES if s["id"] == self.status_id)
        body: dict[str, Any] = {
            "id": self.id, "project": {"id": 1, "name": "Ops"},
            "tracker": {"id": 1, "name": "Bug"}, "status": dict(status),
            "priority": {"id": 2, "name": "Normal"},
            "author": {"id": 1, "name": "Redmine Admin"},
            "subject": self.subject or f"Issue {self.id}", "description": None,
            "start_date": "2026-09-01", "due_date": None, "done_ratio": 0,
            "is_private": False, "estimated_hours": None, "total_estimated_hours": None,
            "spent_hours": 0.0, "total_spent_hours": 0.0,
            "created_on": iso(self.created or self.updated), "updated_on": iso(self.updated),
            "closed_on": iso(self.updated) if status["is_closed"] else None,
            **copy.deepcopy(self.extra),
        }
        if with_journals:
            body["journals"] = copy.deepcopy(self.journals)
        return body


class FakeRedmine:
    """Redmine's issue listing semantics over in-memory issues (see the module docstring)."""

    def __init__(self, *, admin: bool = True) -> None:
        self.issues: dict[int, FakeIssue] = {}
        self.admin = admin
        self.requests: list[httpx.Request] = []
        self.failures: dict[str, list[httpx.Response | Exception]] = {}
        self.before_list: Callable[[int], None] | None = None
        """Called with the list request's number (0, 1, ...) before it is answered."""
        self.trackers = [{"id": 1, "name": "Bug", "default_status": {"id": 1, "name": "New"}}]
        self._lists = 0
        self.projects = {"ops": (1, "Ops")}
        """identifier -> (id, name)"""
        self.versions: dict[int, dict[str, Any]] = {}
        self.editable = True
        """False: every edit is refused with 403 (no Manage versions permission)."""

    def add_version(self, vid: int, name: str, *, due: str | None = None,
                    project: str = "ops", sharing: str = "none",
                    shared_with: tuple[str, ...] = ()) -> dict[str, Any]:
        """A version of ``project``; ``shared_with`` other projects that list it too."""
        pid, pname = self.projects[project]
        version = {
            "id": vid, "project": {"id": pid, "name": pname}, "name": name,
            "description": "", "status": "open", "due_date": due, "sharing": sharing,
            "wiki_page_title": None, "created_on": "2026-01-05T10:00:00Z",
            "updated_on": "2026-01-05T10:00:00Z",
            "_seen_by": [project, *shared_with],
        }
        self.versions[vid] = version
        return version

    def edits(self) -> list[tuple[str, str, Any]]:
        """Every write request: (method, path, JSON body)."""
        return [(r.method, r.url.path, json.loads(r.content or b"null"))
                for r in self.requests if r.method not in ("GET", "HEAD")]

    def _versions(self, project: str) -> httpx.Response:
        if project not in self.projects:
            return httpx.Response(404)
        listed = [{k: v for k, v in version.items() if not k.startswith("_")}
                  for version in self.versions.values() if project in version["_seen_by"]]
        return httpx.Response(200, json={"versions": copy.deepcopy(listed),
                                         "total_count": len(listed)})

    def _edit_version(self, vid: int, request: httpx.Request) -> httpx.Response:
        version = self.versions.get(vid)
        if version is None:
            return httpx.Response(404)
        if not self.editable:
            return httpx.Response(403)  # Redmine's API: a bare status, no body
        try:
            body = json.loads(request.content)
        except ValueError:
            return httpx.Response(400)
        attributes = body.get("version") if isinstance(body, dict) else None
        if not isinstance(attributes, dict):
            return httpx.Response(204)  # Redmine ignores an edit without "version"
        for key in ("effective_date", "due_date"):
            if key in attributes:
                value = attributes[key]
                if value not in (None, "") and not re.fullmatch(r"\d{4}-\d{2}-\d{2}",
                                                                str(value)):
                    return httpx.Response(422, json={"errors": ["Due date is not a valid date"]})
                version["due_date"] = value or None
        if "name" in attributes:
            version["name"] = attributes["name"]
        version["updated_on"] = iso(datetime.now(UTC))
        return httpx.Response(204)

    def fail(self, path: str, *answers: httpx.Response | Exception) -> None:
        """Answer the next requests for ``path`` with these, in order."""
        self.failures.setdefault(path, []).extend(answers)

    def lists(self) -> list[dict[str, str]]:
        return [dict(r.url.params) for r in self.requests if r.url.path == "/issues.json"]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        queued = self.failures.get(path)
        if queued:
            answer = queued.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer
        if path == "/users/current.json":
            return httpx.Response(200, json={"user": {"id": 1, "login": "admin",
                                                      "admin": self.admin}})
        if path == "/issue_statuses.json":
            return httpx.Response(200, json={"issue_statuses": STATUSES})
        if path == "/trackers.json":
            return httpx.Response(200, json={"trackers": self.trackers})
        if path == "/issues.json":
            if self.before_list is not None:
                self.before_list(self._lists)
            self._lists += 1
            return self._list(dict(request.url.params))
        found = re.fullmatch(r"/projects/([^/]+)/versions\.json", path)
        if found and request.method == "GET":
            return self._versions(found.group(1))
        found = re.fullmatch(r"/versions/(\d+)\.json", path)
        if found and request.method == "PUT":
            return self._edit_version(int(found.group(1)), request)
        found = re.fullmatch(r"/issues/(\d+)\.json", path)
        if found and int(found.group(1)) in self.issues:
            issue = self.issues[int(found.group(1))]
            return httpx.Response(200, json={"issue": issue.payload(with_journals=True)})
        found = re.fullmatch(r"/users/(\d+)\.json", path)
        if found and self.admin:
            uid = int(found.group(1))
            return httpx.Response(200, json={"user": {
                "id": uid, "login": f"user{uid}", "admin": uid == 1, "firstname": "User",
                "lastname": str(uid), "mail": f"user{uid}@example.test",
                "api_key": f"USER-{uid}-API-KEY-MUST-NOT-BE-STORED", "status": 1}})
        return httpx.Response(404)

    def _list(self, params: dict[str, str]) -> httpx.Response:
        issues = list(self.issues.values())
        if params.get("status_id") != "*":
            issues = [i for i in issues if i.status_id not in (5, 6)]
        if "updated_on" in params:
            value = params["updated_on"]
            if not value.startswith(">=") or not STAMP.match(value[2:]):
                return httpx.Response(422, json={"errors": ["Updated is invalid"]})
            since = datetime.fromisoformat(value[2:].replace("Z", "+00:00"))
            issues = [i for i in issues if i.updated > since - timedelta(seconds=1)]
        if "issue_id" in params:
            if not re.fullmatch(r">=\d+", params["issue_id"]):
                return httpx.Response(422, json={"errors": ["Issue is invalid"]})
            issues = [i for i in issues if i.id >= int(params["issue_id"][2:])]
        if params.get("sort") == "updated_on,id":
            issues.sort(key=lambda i: (i.updated, i.id))
        elif params.get("sort") == "id":
            issues.sort(key=lambda i: i.id)
        else:
            issues.sort(key=lambda i: -i.id)  # Redmine's default: id DESC
        limit, offset = int(params.get("limit", 25)), int(params.get("offset", 0))
        return httpx.Response(200, json={
            "issues": [i.payload(with_journals=False) for i in issues[offset:offset + limit]],
            "total_count": len(issues), "offset": offset, "limit": limit,
        })
