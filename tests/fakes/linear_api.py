"""A local Linear GraphQL API on 127.0.0.1: the contract suite's harness, and wire tests'.

``FakeLinear`` runs a stdlib ``ThreadingHTTPServer`` (random port) in a thread. It answers
``POST /graphql`` with JSON ``{"data"}`` or ``{"errors"}`` the way Linear does, keeps a
small workspace (teams, users, workflow states, issues with history and comments) that
tests seed and mutate, records every request, and injects faults.

Where the shapes come from:

* Linear's public schema (``linear/linear``, ``packages/sdk/src/schema.graphql``):
  ``Issue`` (``identifier``, ``url``, ``dueDate`` as a TimelessDate, ``estimate``,
  ``completedAt``, ``canceledAt``, ``trashed``, ``state``, ``team``, ``project``,
  ``parent``, ``labels``/``history``/``comments`` connections), ``IssueHistory``
  (``actor``, ``fromState``, ``toState``, ``createdAt``), ``WorkflowState.type`` with its
  seven values (triage, backlog, unstarted, started, completed, canceled, duplicate),
  ``IssueFilter`` with ``updatedAt: DateComparator`` (``gte``) and ``team: TeamFilter``
  (``key: {eq}``), Relay connections with ``nodes`` and ``pageInfo {hasNextPage
  endCursor}``.
* Linear's developer docs (linear.app/developers): the endpoint; personal API keys sent as
  ``Authorization: <API_KEY>``, OAuth tokens as ``Authorization: Bearer <TOKEN>``;
  pagination (``first``/``after``, 50 by default, ``createdAt`` order unless
  ``orderBy: updatedAt``, which lists the most recently updated first); rate limiting.
* The SDK's error mapping (``packages/sdk/src/error.ts``): ``extensions.type``
  (``ratelimited``, ``authentication error``...), ``userPresentableMessage``, and the
  ``X-RateLimit-Requests-*`` / ``X-RateLimit-Complexity-*`` headers. A spent budget is
  HTTP 400 with ``extensions.code`` ``RATELIMITED`` (and ``statusCode: 429``), resets in
  UTC epoch milliseconds.

Projects (``stratmap push``): ``Project`` (``id``, ``name``, ``url``, ``targetDate`` as a
TimelessDate, ``lead``), ``projects(filter: {name: {eq}})``, and the mutation
``projectUpdate(id: String!, input: ProjectUpdateInput!): ProjectPayload!`` (``success``,
``lastSyncId``, ``project``); a ``targetDate`` that is not ``YYYY-MM-DD``, an unknown
``leadId`` or project id is an error, as an input Linear rejects. With ``editable = False``
every mutation answers Linear's ``FORBIDDEN`` error.

Project updates (declared status): ``Project.projectUpdates`` (a ``ProjectUpdateConnection``)
of ``ProjectUpdate`` (``id``, ``body``, ``health``, ``createdAt``, ``user``), ``health`` a
``ProjectUpdateHealthType`` (``onTrack``, ``atRisk``, ``offTrack``; nullable), and
``Project.teams``, from the same schema (the enum as the SDK's generated types and several
public clients spell it); ``projects(first, after)`` without a filter lists them all.

Not checked against a recording: none under a permissive licence was found (the SDK's
tests mock its client); see ``tests/recordings/README.md``.

It does not execute arbitrary GraphQL. It recognises stratmap's operations by their root
field (``teams``, ``issues``, ``issue``, ``projects``, ``projectUpdate``) and answers only
the fields the query text names, so a connector that forgets to select a field gets
nothing for it.
"""

from __future__ import annotations

import base64
import json
import random
import re
import socket
import struct
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

from stratmap.connectors.base import RetryPolicy
from stratmap.connectors.linear import LinearConnector
from stratmap.models.plan import LinearSource
from tests.contract.suite import T0, SeedItem
from tests.fakes.local import LocalServer, QuietServer

TEAM = "ENG"
OTHER_TEAM = "OPS"
WORKSPACE = "northwind"
STATES: dict[str, str] = {
    "Triage": "triage", "Backlog": "backlog", "To Do": "unstarted",
    "In Progress": "started", "In Review": "started", "Done": "completed",
    "Canceled": "canceled", "Duplicate": "duplicate",
}
"""State name -> WorkflowState.type (the contract suite speaks To Do / In Progress / Done)."""

Row = dict[str, Any]
Mangle = Callable[[Row], None]


def iso(moment: datetime) -> str:
    """Linear's DateTime: milliseconds and ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def ident(kind: str, name: str) -> str:
    """A stable UUID, as Linear's ids are."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"linear:{kind}:{name}"))


def user(handle: str) -> Row:
    return {"id": ident("user", handle), "name": handle.replace("-", " ").title(),
            "displayName": handle, "email": f"{handle}@northwind.example",
            "active": True, "admin": False, "avatarUrl": None,
            "createdAt": "2026-01-05T09:00:00.000Z"}


def state(name: str, team: str = TEAM) -> Row:
    return {"id": ident("state", f"{team}:{name}"), "name": name, "type": STATES[name],
            "color": "#bec2c8", "position": list(STATES).index(name)}


def _cursor(value: object) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def _uncursor(value: str) -> Any:
    return json.loads(base64.b64decode(value.encode()))


def gql_error(message: str, *, code: str, kind: str, status: int,
              friendly: str | None = None, path: list[object] | None = None) -> Row:
    """One GraphQL error as Linear sends it."""
    error: Row = {"message": message, "locations": [{"line": 2, "column": 3}],
                  "extensions": {"type": kind, "code": code, "statusCode": status,
                                 "userError": status < 500,
                                 "userPresentableMessage": friendly or message}}
    if path is not None:
        error["path"] = path
    return error


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any

    @property
    def query(self) -> str:
        return str(self.body.get("query", "")) if isinstance(self.body, dict) else ""

    @property
    def variables(self) -> Row:
        found = self.body.get("variables") if isinstance(self.body, dict) else None
        return found if isinstance(found, dict) else {}

    @property
    def operation(self) -> str:
        match = re.match(r"\s*(?:query|mutation)\s+(\w+)", self.query)
        return match.group(1) if match else ""


@dataclass
class Fault:
    status: int = 0
    headers: dict[str, str] | None = None
    body: Any = None
    drop: bool = False


class FakeLinear(LocalServer):
    """Linear for one workspace; usable as the contract suite's harness."""

    http = True

    def __init__(self, *, name: str = "eng", team: str | None = TEAM, page_size: int = 25,
                 nested_page_size: int = 25, token: str = "lin_api_fake0123456789",
                 oauth: bool = False, now: datetime = T0 + timedelta(days=40)) -> None:
        self.name = name
        self.team = team
        self.page_size = page_size
        self.nested_page_size = nested_page_size
        self.token = token
        """The key the source holds (what the connector sends)."""
        self.accepted = token
        """The key the workspace accepts."""
        self.oauth = oauth
        self.now = now.timestamp()
        self.teams = {key: {"id": ident("team", key), "key": key, "name": key.title()}
                      for key in (TEAM, OTHER_TEAM)}
        self.issues: dict[str, Row] = {}
        """identifier -> the issue's own fields (connections are kept apart)."""
        self.history: dict[str, list[Row]] = {}
        self.comments: dict[str, list[Row]] = {}
        self.labels: dict[str, list[str]] = {}
        self.mangle: dict[str, Mangle] = {}
        """identifier -> a function that changes the issue node as answered (drift)."""
        self.field_errors: dict[str, str] = {}
        """identifier -> a field answered null with a GraphQL error at its path."""
        self.projects: dict[str, Row] = {}
        """project id -> the project's fields."""
        self.updates: dict[str, list[Row]] = {}
        """project id -> its project updates (``add_project_update``)."""
        self.editable = True
        """False: every mutation is refused (FORBIDDEN), as for a guest."""
        self.faults: deque[Fault] = deque()
        self.requests: list[Recorded] = []
        self.sleeps: list[float] = []
        self._ids = 0
        self._lock = threading.RLock()

    # -- lifecycle -------------------------------------------------------------------------

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    @property
    def url(self) -> str:
        return f"{self.address}/graphql"

    # -- the Harness protocol --------------------------------------------------------------

    def seed(self, items: list[SeedItem]) -> None:
        with self._lock:
            for table in (self.issues, self.history, self.comments, self.labels):
                table.clear()
            for item in items:
                self._seed_one(item)
            if items:  # what the source must leave out: another team's, a trashed one
                first = items[0]
                self.add_issue(f"{OTHER_TEAM}-1", title="Another team's", created=first.created,
                               team=OTHER_TEAM)
                self.add_issue(f"{TEAM}-9999", title="Deleted", created=first.created,
                               trashed=True)

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> None:
        with self._lock:
            self.move(self.key_of(key), to, at=at, author=author)

    def connector(self, **config: Any) -> LinearConnector:
        values: Row = {"kind": "linear", "team": self.team, "token": "env:LINEAR_API_KEY",
                       "url": self.url, "page_size": self.page_size,
                       "nested_page_size": self.nested_page_size,
                       "auth": "oauth" if self.oauth else "api_key"}
        values.update(config)
        return LinearConnector(self.name, LinearSource.model_validate(values), self.token,
                               sleep=self.sleep, clock=self.clock, rng=random.Random(7),
                               policy=RetryPolicy(attempts=4))

    def key_of(self, key: str) -> str:
        return f"{TEAM}-{key.rsplit('-', 1)[-1]}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        body: Any
        if status == 429:
            body = {"errors": [self._rate_error()]}
        elif status == 401:
            body = {"errors": [self._auth_error()]}
        elif status >= 500:
            body = "<html><body>502 Bad Gateway</body></html>"
        else:
            body = {"errors": [gql_error("Bad request", code="INVALID_INPUT",
                                         kind="invalid input", status=status)]}
        with self._lock:
            for _ in range(times):
                self.faults.append(Fault(status, dict(headers), body))

    # -- extra levers for wire tests -------------------------------------------------------

    def fail_rate_limited(self, *, reset_in: float, budget: str = "requests") -> None:
        """Answer the next request as Linear does when a budget is spent: HTTP 400, a
        RATELIMITED error, the budget's remaining at 0 and its reset in epoch ms."""
        headers = self._rate_headers()
        headers[f"x-ratelimit-{budget}-remaining"] = "0"
        headers[f"x-ratelimit-{budget}-reset"] = str(int((self.now + reset_in) * 1000))
        with self._lock:
            self.faults.append(Fault(400, headers, {"errors": [self._rate_error()]}))

    def fail_graphql(self, message: str, *, code: str = "INVALID_INPUT",
                     status: int = 400) -> None:
        """Answer the next request with a GraphQL error (a query Linear refuses)."""
        with self._lock:
            self.faults.append(Fault(status, {}, {"errors": [
                gql_error(message, code=code, kind="invalid input", status=status)]}))

    def drop_next(self) -> None:
        """Close the next connection without an answer."""
        with self._lock:
            self.faults.append(Fault(drop=True))

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def calls(self, operation: str) -> list[Recorded]:
        """Requests of one operation (``StratmapIssues``, ``StratmapIssueHistory``...)."""
        return [r for r in self.requests if r.operation == operation]

    def add_project(self, name: str, *, target: str | None = None,
                    lead: str | None = None) -> Row:
        project: Row = {"id": ident("project", f"{name}:{len(self.projects)}"), "name": name,
                        "url": f"https://linear.app/{WORKSPACE}/project/"
                               + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"),
                        "targetDate": target, "lead": user(lead) if lead else None,
                        "state": "started", "progress": 0.4}
        with self._lock:
            self.projects[project["id"]] = project
        return project

    def add_issue(self, identifier: str, *, title: str, created: datetime,
                  updated: datetime | None = None, status: str = "To Do",
                  team: str | None = None, assignee: str | None = None,
                  creator: str = "lead", labels: list[str] | None = None,
                  project: str | None = None, parent: str | None = None,
                  estimate: float | None = None, due: str | None = None,
                  trashed: bool = False, archived: bool = False) -> Row:
        team = team or identifier.split("-", 1)[0]
        number = int(identifier.rsplit("-", 1)[-1])
        node: Row = {
            "id": ident("issue", identifier), "identifier": identifier, "number": number,
            "title": title, "description": None, "priority": 0, "priorityLabel": "No priority",
            "url": f"https://linear.app/{WORKSPACE}/issue/{identifier}/"
                   + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-"),
            "branchName": f"{identifier.lower()}-branch",
            "createdAt": iso(created), "updatedAt": iso(updated or created),
            "startedAt": None, "completedAt": None, "canceledAt": None,
            "archivedAt": iso(updated or created) if archived else None,
            "dueDate": due, "estimate": estimate, "trashed": True if trashed else None,
            "state": state(status, team), "team": self.teams[team],
            "project": {"id": ident("project", project), "name": project,
                        "slugId": "abc123"} if project else None,
            "parent": {"id": ident("issue", parent), "identifier": parent} if parent else None,
            "assignee": user(assignee) if assignee else None, "creator": user(creator),
        }
        with self._lock:
            self.issues[identifier] = node
            self.history[identifier] = []
            self.comments[identifier] = []
            self.labels[identifier] = list(labels or [])
        return node

    def move(self, identifier: str, to: str, *, at: datetime, author: str) -> None:
        """A state change as Linear records it: a history entry, and the issue updated."""
        with self._lock:
            node = self.issues[identifier]
            before = node["state"]
            after = state(to, node["team"]["key"])
            self.history[identifier].append(self._entry(at, author, before, after))
            node["state"] = after
            node["updatedAt"] = iso(max(parse(node["updatedAt"]), at))
            kind = after["type"]
            node["startedAt"] = node["startedAt"] or (iso(at) if kind == "started" else None)
            node["completedAt"] = iso(at) if kind == "completed" else None
            node["canceledAt"] = iso(at) if kind in ("canceled", "duplicate") else None

    def assign(self, identifier: str, to: str | None, *, at: datetime, author: str) -> None:
        """A reassignment as Linear records it: a history entry with ``fromAssignee`` and
        ``toAssignee`` (and no state), and the issue's assignee updated."""
        with self._lock:
            node = self.issues[identifier]
            before, after = node.get("assignee"), user(to) if to else None
            self._ids += 1
            self.history[identifier].append({
                "id": ident("history", str(self._ids)), "createdAt": iso(at),
                "updatedAt": iso(at), "actor": user(author), "fromState": None,
                "toState": None, "fromStateId": None, "toStateId": None, "archived": None,
                "trashed": None, "updatedDescription": None, "fromAssignee": before,
                "toAssignee": after, "fromAssigneeId": before["id"] if before else None,
                "toAssigneeId": after["id"] if after else None})
            node["assignee"] = after
            node["updatedAt"] = iso(max(parse(node["updatedAt"]), at))

    def comment(self, identifier: str, *, at: datetime, author: str, body: str) -> None:
        with self._lock:
            self._ids += 1
            self.comments[identifier].append({
                "id": ident("comment", f"{identifier}:{self._ids}"), "body": body,
                "createdAt": iso(at), "updatedAt": iso(at), "editedAt": None,
                "url": f"{self.issues[identifier]['url']}#comment-{self._ids:08x}",
                "user": user(author)})
            node = self.issues[identifier]
            node["updatedAt"] = iso(max(parse(node["updatedAt"]), at))

    # -- seeding ---------------------------------------------------------------------------

    def _entry(self, at: datetime, author: str, before: Row | None, after: Row) -> Row:
        self._ids += 1
        return {"id": ident("history", str(self._ids)), "createdAt": iso(at),
                "updatedAt": iso(at), "actor": user(author), "fromState": before,
                "toState": after, "fromStateId": before["id"] if before else None,
                "toStateId": after["id"], "archived": None, "trashed": None,
                "updatedDescription": None, "fromAssignee": None, "toAssignee": None,
                "fromAssigneeId": None, "toAssigneeId": None}

    def _seed_one(self, item: SeedItem) -> None:
        identifier = self.key_of(item.key)
        number = int(identifier.rsplit("-", 1)[-1])
        self.add_issue(identifier, title=item.title, created=item.created,
                       assignee=item.assignee, labels=["website"] if number % 4 == 0 else [],
                       project="Website relaunch" if number % 5 == 0 else None,
                       estimate=float(number % 8) or None,
                       archived=number % 10 == 9 and item.status == "Done")
        current = "To Do"
        for at, author, _from, to in item.history:
            self.move(identifier, to, at=at, author=author)
            current = to
        if current != item.status:  # no history: the issue was created in that state
            self.issues[identifier]["state"] = state(item.status)
        for at, author, body in item.comments:
            self.comment(identifier, at=at, author=author, body=body)
        self.issues[identifier]["updatedAt"] = iso(item.updated)

    # -- the server ------------------------------------------------------------------------

    def _rate_headers(self) -> dict[str, str]:
        reset = str(int((self.now + 3600) * 1000))
        return {"x-ratelimit-requests-limit": "5000", "x-ratelimit-requests-remaining": "4990",
                "x-ratelimit-requests-reset": reset,
                "x-ratelimit-complexity-limit": "3000000",
                "x-ratelimit-complexity-remaining": "2990000",
                "x-ratelimit-complexity-reset": reset, "x-complexity": "1200"}

    @staticmethod
    def _rate_error() -> Row:
        return gql_error("Rate limit exceeded. Only 5000 requests are allowed per 1 hour.",
                         code="RATELIMITED", kind="ratelimited", status=429,
                         friendly="You have exceeded the rate limit. Please try again later.")

    @staticmethod
    def _auth_error() -> Row:
        return gql_error("Authentication required, not authenticated",
                         code="AUTHENTICATION_ERROR", kind="authentication error", status=401,
                         friendly="You need to authenticate to access this operation.")

    def answer(self, request: Recorded) -> tuple[int, dict[str, str], Any] | None:
        """(status, headers, body) for one request; None to drop the connection."""
        with self._lock:
            self.requests.append(request)
            if self.faults:
                fault = self.faults.popleft()
                if fault.drop:
                    return None
                return fault.status, {**self._rate_headers(), **(fault.headers or {})}, fault.body
            headers = self._rate_headers()
            if request.path != "/graphql":
                return 404, headers, "Cannot POST " + request.path
            if request.method != "POST":
                return 405, headers, "Method Not Allowed"
            expected = f"Bearer {self.accepted}" if self.oauth else self.accepted
            if request.headers.get("authorization") != expected:
                return 401, headers, {"errors": [self._auth_error()]}
            if not request.query:
                return 400, headers, {"errors": [gql_error(
                    "Must provide query string.", code="GRAPHQL_PARSE_FAILED",
                    kind="graphql error", status=400)]}
            try:
                data, errors = self._execute(request.query, request.variables)
            except ValueError as problem:
                return 400, headers, {"errors": [gql_error(
                    str(problem), code="GRAPHQL_VALIDATION_FAILED", kind="graphql error",
                    status=400)]}
            body: Row = {"data": data}
            if errors:
                body["errors"] = errors
            return 200, headers, body

    def _execute(self, query: str, variables: Row) -> tuple[Row, list[Row]]:
        root = re.search(r"\)\s*\{\s*(\w+)\s*\(", query) or re.search(r"\{\s*(\w+)", query)
        field = root.group(1) if root else ""
        if field == "teams":
            key = variables.get("key")
            nodes = [t for t in self.teams.values() if t["key"] == key]
            return {"teams": {"nodes": _select(nodes, query),
                              "pageInfo": {"hasNextPage": False, "endCursor": None}}}, []
        if field == "issues":
            return self._issues(query, variables)
        if field == "issue":
            return self._issue(query, variables), []
        if field == "projects" and "filter" not in variables and "name" not in variables:
            return self._project_updates(query, variables), []
        if field == "projects":
            name = (((variables.get("filter") or {}).get("name") or {}).get("eq")
                    if "filter" in variables else variables.get("name"))
            nodes = [json.loads(json.dumps(p)) for p in self.projects.values()
                     if p["name"] == name]
            return {"projects": {"nodes": _select(nodes, query),
                                 "pageInfo": {"hasNextPage": False, "endCursor": None}}}, []
        if field == "projectUpdate":
            return self._project_update(query, variables)
        raise ValueError(f'Cannot query field "{field}" on type "Query".')

    def add_project_update(self, project: str, *, health: str | None, at: datetime,
                           author: str, body: str = "") -> Row:
        """A project update (``ProjectUpdate``: ``id``, ``body`` in Markdown, ``health`` a
        ``ProjectUpdateHealthType`` (onTrack, atRisk, offTrack) or null, ``createdAt``,
        ``user``) on the project named ``project``."""
        with self._lock:
            target = next(p for p in self.projects.values() if p["name"] == project)
            self._ids += 1
            update = {"id": ident("projectUpdate", f"{project}:{self._ids}"), "body": body,
                      "health": health, "createdAt": iso(at), "updatedAt": iso(at),
                      "user": user(author), "url": f"{target['url']}/updates"}
            self.updates.setdefault(target["id"], []).append(update)
            return update

    def _project_updates(self, query: str, variables: Row) -> Row:
        """``projects(first, after)``, each project with its ``teams`` and its
        ``projectUpdates(first: N)``, newest first (the connection's default order is by
        creation; Linear lists updates newest first in its UI and API)."""
        rows = []
        for project in self.projects.values():
            row = json.loads(json.dumps(project))
            row["teams"] = {"nodes": [{"key": k} for k in project.get("teams", [TEAM])]}
            newest = sorted(self.updates.get(project["id"], []), key=lambda u: u["createdAt"],
                            reverse=True)
            nested = self._argument(query, "projectUpdates", variables, 50)
            row["projectUpdates"] = self._connection(newest, nested, None)
            rows.append(row)
        first = int(variables.get("first") or 50)
        page = self._connection(rows, first, variables.get("after"))
        return {"projects": {"nodes": _select(page["nodes"], query),
                             "pageInfo": page["pageInfo"]}}

    def _project_update(self, query: str, variables: Row) -> tuple[Row, list[Row]]:
        if not query.lstrip().startswith("mutation"):
            raise ValueError('Cannot query field "projectUpdate" on type "Query".')
        if not self.editable:
            return {"projectUpdate": None}, [gql_error(
                "Forbidden", code="FORBIDDEN", kind="forbidden", status=403,
                friendly="You don't have permission to update this project.",
                path=["projectUpdate"])]
        project = self.projects.get(str(variables.get("id")))
        if project is None:
            raise ValueError("Entity not found: Project")
        update = variables.get("input") or {}
        unknown = set(update) - {"targetDate", "leadId", "name", "description", "startDate"}
        if unknown:
            raise ValueError(f'Field "{sorted(unknown)[0]}" is not defined by type '
                             '"ProjectUpdateInput".')
        if "targetDate" in update:
            value = update["targetDate"]
            if value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                raise ValueError(f"Argument Validation Error: targetDate {value!r} is not a "
                                 "TimelessDate")
            project["targetDate"] = value
        if "leadId" in update:
            lead = update["leadId"]
            handle = next((h for h in self._handles() if ident("user", h) == lead), None)
            if lead is not None and handle is None:
                raise ValueError("Entity not found: User")
            project["lead"] = user(handle) if handle else None
        self._ids += 1
        return {"projectUpdate": _select({"success": True, "lastSyncId": self._ids,
                                          "project": json.loads(json.dumps(project))},
                                         query)}, []

    def _handles(self) -> set[str]:
        """The workspace's users: everyone the issues and projects name, and its members."""
        names = {"lead", "alice", "bob", "carol", "dev1", "dev2"}
        for node in self.issues.values():
            for key in ("assignee", "creator"):
                if node.get(key):
                    names.add(node[key]["displayName"])
        return names

    def _argument(self, query: str, name: str, variables: Row, default: int) -> int:
        """``name(first: N)`` or ``name(first: $var)`` in the query text."""
        match = re.search(rf"\b{name}\(\s*first:\s*(\$\w+|\d+)", query)
        if not match:
            return default
        value = match.group(1)
        number = variables.get(value[1:]) if value.startswith("$") else int(value)
        if not isinstance(number, int) or not 0 < number <= 250:
            raise ValueError(f"first must be between 1 and 250, got {number!r}")
        return number

    def _issues(self, query: str, variables: Row) -> tuple[Row, list[Row]]:
        first = variables.get("first", 50)
        if not isinstance(first, int) or not 0 < first <= 250:
            raise ValueError(f"first must be between 1 and 250, got {first!r}")
        rows = list(self.issues.values())
        if "includeArchived: true" not in query:
            rows = [r for r in rows if not r["archivedAt"] and not r["trashed"]]
        found = variables.get("filter") or {}
        gte = ((found.get("updatedAt") or {}).get("gte"))
        if gte is not None:
            try:
                since = parse(str(gte))
            except ValueError as error:
                raise ValueError(f"Argument Validation Error: updatedAt.gte {gte!r}") from error
            rows = [r for r in rows if parse(r["updatedAt"]) >= since]
        team = (((found.get("team") or {}).get("key") or {}).get("eq"))
        if team is not None:
            rows = [r for r in rows if r["team"]["key"] == team]
        order = "updatedAt" if re.search(r"orderBy:\s*updatedAt", query) else "createdAt"
        rows.sort(key=lambda r: (r[order], r["id"]), reverse=True)  # newest first
        after = variables.get("after")
        if after:
            mark = tuple(_uncursor(str(after)))
            rows = [r for r in rows if (r[order], r["id"]) < mark]
        page, more = rows[:first], len(rows) > first
        nested = self._argument(query, "history", variables, 50)
        thread = self._argument(query, "comments", variables, 50)
        per_issue = self._argument(query, "labels", variables, 50)
        nodes, errors = [], []
        for index, row in enumerate(page):
            identifier = row["identifier"]
            node = json.loads(json.dumps(row))
            node["labels"] = self._connection(
                [{"id": ident("label", n), "name": n, "color": "#5e6ad2"}
                 for n in self.labels[identifier]], per_issue, None)
            node["history"] = self._connection(
                sorted(self.history[identifier], key=lambda e: e["createdAt"], reverse=True),
                nested, None)
            node["comments"] = self._connection(self.comments[identifier], thread, None)
            if identifier in self.mangle:
                self.mangle[identifier](node)
            if identifier in self.field_errors:
                name = self.field_errors[identifier]
                node[name] = None
                errors.append(gql_error(f"Could not resolve {name}", code="INTERNAL_ERROR",
                                        kind="internal error", status=500,
                                        path=["issues", "nodes", index, name]))
            nodes.append(node)
        end = _cursor([page[-1][order], page[-1]["id"]]) if page else None
        return {"issues": {"nodes": _select(nodes, query),
                           "pageInfo": {"hasNextPage": more, "endCursor": end,
                                        "hasPreviousPage": bool(after), "startCursor": None}}}, errors

    def _connection(self, rows: list[Row], first: int, after: object) -> Row:
        start = int(_uncursor(str(after))) if after else 0
        chunk = rows[start:start + first]
        more = start + first < len(rows)
        return {"nodes": chunk, "pageInfo": {
            "hasNextPage": more, "endCursor": _cursor(start + len(chunk)) if chunk else None,
            "hasPreviousPage": start > 0, "startCursor": _cursor(start) if chunk else None}}

    def _issue(self, query: str, variables: Row) -> Row:
        wanted = str(variables.get("id"))
        row = next((r for r in self.issues.values() if wanted in (r["id"], r["identifier"])),
                   None)
        if row is None:
            raise ValueError("Entity not found: Issue")
        identifier = row["identifier"]
        first = variables.get("first", 50)
        if not isinstance(first, int) or not 0 < first <= 250:
            raise ValueError(f"first must be between 1 and 250, got {first!r}")
        node: Row = {"id": row["id"], "identifier": identifier}
        if re.search(r"\bhistory\(", query):
            node["history"] = self._connection(
                sorted(self.history[identifier], key=lambda e: e["createdAt"], reverse=True),
                first, variables.get("after"))
        if re.search(r"\bcomments\(", query):
            node["comments"] = self._connection(self.comments[identifier], first,
                                                variables.get("after"))
        return {"issue": _select(node, query)}


def _select(value: Any, query: str) -> Any:
    """Only the fields the query names (by name, at any depth: enough for our queries)."""
    if isinstance(value, list):
        return [_select(v, query) for v in value]
    if isinstance(value, dict):
        return {k: _select(v, query) for k, v in value.items()
                if re.search(rf"\b{re.escape(k)}\b", query)}
    return value


class _Handler(BaseHTTPRequestHandler):
    server: QuietServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Recorded(method, self.path.split("?", 1)[0],
                           {k.lower(): v for k, v in self.headers.items()}, body)
        outcome = self.server.fake.answer(request)
        if outcome is None:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        status, headers, payload = outcome
        content = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        kind = "text/html" if isinstance(payload, str) else "application/json; charset=utf-8"
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)


def started(fake: FakeLinear) -> Iterator[FakeLinear]:
    """A fixture body: the fake serves while in use."""
    with fake:
        yield fake
