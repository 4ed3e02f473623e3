"""A Jira-compatible load server: the test server (tests/fakes/jira_server.py) grown to
serve tens of thousands of realistic issues fast enough that the client is what is measured.

It keeps the test server's issue model, JQL and wire format (Cloud ``/rest/api/3/search/jql``
with ``nextPageToken``; Data Center ``/rest/api/2/search`` with offsets), and adds:

* synthetic issues (:func:`populate`): 3-8 KB each as stratmap asks for them, a few with long
  changelogs (50-200 entries), 0-8 comments, epics, labels, versions, story points;
* every issue's JSON encoded once, field by field, so a page is a join of bytes, and every
  search's result set cached until the data changes;
* latency injected per request, and a limit on requests in flight answered with
  ``429`` and ``Retry-After``;
* ``/__bench/*`` (no auth, never counted): ``stats``, ``reset``, ``config`` and ``change``
  (touch a fraction of the issues, for incremental syncs).

Run it in its own process (``python -m benchmarks.jira_load --issues 20000``) so its CPU and
memory are not the client's; it prints its URL on the first line of stdout and serves until
terminated. Only 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.jira_server import (
    FakeComment,
    FakeHistory,
    FakeIssue,
    FakeJira,
    JqlError,
    _Handler,
    _HttpError,
    _offset,
    _split_list,
    _token,
)
from tests.fakes.local import QuietServer

PROJECTS = ("WEB", "API", "OPS", "DATA")
START = datetime(2024, 1, 1, tzinfo=UTC)
END = datetime(2026, 6, 1, tzinfo=UTC)
TOKEN = "bench-token"
EMAIL = "bench@northwind.example"
EMBEDDED_HISTORIES = {"cloud": 40, "datacenter": 10**9}
"""Histories a search embeds per issue (``expand=changelog``). Cloud cuts the changelog short
(the rest comes from ``changelog/bulkfetch``); Data Center embeds it whole, which is what
Perceval relies on."""
EMBEDDED_COMMENTS = 20
"""Comments a search embeds per issue: all of the 0-8 generated."""
COMMENTS = (0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 6, 8)
"""How many comments an issue gets (0-8, most have few)."""
FLOW = ("To Do", "In Progress", "In Review", "Done")
_CORPUS = (
    "migrate billing service to the new ledger api and keep the old endpoints alive until "
    "every client has moved review the rollout plan with the platform team before friday "
    "latency regression in checkout after the cache change needs a flame graph and a fix "
    "customers in the eu region see stale invoices the nightly export skipped two shards "
    "add metrics for queue depth alert when the backlog grows past one hour of work "
    "document the runbook write the postmortem and schedule the follow up actions"
)
WORDS = tuple(_CORPUS.split())


def _text(rng: random.Random, low: int, high: int) -> str:
    size = rng.randint(low, high)
    words: list[str] = []
    length = 0
    while length < size:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
        if rng.random() < 0.06:
            words.append("\n")
    return " ".join(words).replace(" \n ", "\n").strip()


def populate(
    fake: FakeJira,
    count: int,
    *,
    projects: tuple[str, ...] = PROJECTS,
    seed: int = 1,
    start: datetime = START,
    end: datetime = END,
) -> None:
    """``count`` issues spread evenly over ``projects`` and over ``start``..``end``."""
    rng = random.Random(seed)
    users = [f"user{n:03d}" for n in range(80)]
    for user in users:
        fake.add_user(user, user.replace("user", "Dev ").title(), f"{user}@northwind.example")
    versions = [f"2025.{n}" for n in range(1, 31)]
    span = (end - start).total_seconds()
    epics: dict[str, list[str]] = {p: [] for p in projects}
    status_ids = {name: fake._status_id(name) for name in FLOW}
    for n in range(count):
        project = projects[n % len(projects)]
        number = n // len(projects) + 1
        key = f"{project}-{number}"
        created = start + timedelta(seconds=span * n / count + rng.uniform(0, 60))
        is_epic = number % 100 == 1
        issue = FakeIssue(
            id=str(fake._next_id),
            key=key,
            project=project,
            summary=_text(rng, 30, 90).replace("\n", " "),
            status="To Do",
            issuetype="Epic" if is_epic else rng.choice(("Story", "Task", "Bug")),
            created=created,
            updated=created,
            assignee=rng.choice(users) if rng.random() < 0.85 else None,
            reporter=rng.choice(users),
            labels=rng.sample(("backend", "frontend", "infra", "security", "data", "ux"),
                              rng.randint(0, 3)),
            epic=None if is_epic or not epics[project] or rng.random() < 0.2
            else rng.choice(epics[project][-20:]),
            points=rng.choice((None, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0)),
            fix_versions=[rng.choice(versions)] if rng.random() < 0.6 else [],
            description=_text(rng, 200, 1500),
        )
        fake._next_id += 1
        if is_epic:
            epics[project].append(key)
        moment = last = created
        long_log = rng.random() < 0.03
        steps = rng.randint(0, 3)
        edits = rng.randint(50, 200) if long_log else rng.randint(0, 2)
        events = ["status"] * steps + ["edit"] * edits
        rng.shuffle(events)
        for kind in events:
            moment += timedelta(minutes=rng.randint(5, 60 * 24 * 3))
            if moment > end:  # nothing happens after the site's "now"
                break
            author = rng.choice(users)
            items: list[dict[str, Any]]
            if kind == "status":
                before = issue.status
                after = FLOW[FLOW.index(before) + 1]
                items = [{"field": "status", "fieldtype": "jira", "fieldId": "status",
                          "from": status_ids[before], "fromString": before,
                          "to": status_ids[after], "toString": after}]
                issue.status = after
                if after == "Done":
                    issue.resolutiondate = moment
            else:
                items = [{"field": "Rank", "fieldtype": "custom", "fieldId": "customfield_10019",
                          "from": "", "fromString": "", "to": "", "toString": "Ranked higher"}]
                if rng.random() < 0.3:
                    items.append({"field": "labels", "fieldtype": "jira", "fieldId": "labels",
                                  "from": None, "fromString": " ".join(issue.labels),
                                  "to": None, "toString": _text(rng, 5, 30)})
            issue.histories.append(FakeHistory(str(fake._next_history), moment, author, items))
            fake._next_history += 1
            last = moment
        for _ in range(rng.choice(COMMENTS)):
            moment += timedelta(minutes=rng.randint(5, 60 * 24))
            if moment > end:
                break
            body = _text(rng, 30, 200)
            issue.comments.append(
                FakeComment(str(fake._next_comment), moment, rng.choice(users), body)
            )
            fake._next_comment += 1
            last = moment
        issue.updated = last
        fake.issues[key] = issue


class _Encoded:
    """One issue's JSON, field by field, for one API version."""

    __slots__ = ("changelog", "fields", "head", "order")

    def __init__(self, head: bytes, fields: dict[str, bytes], changelog: bytes) -> None:
        self.head = head
        self.fields = fields
        self.order = tuple(fields)
        self.changelog = changelog


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class _LoadServer(QuietServer):
    request_queue_size = 128
    fake: LoadJira


class LoadJira(FakeJira):
    """A :class:`FakeJira` that serves many issues fast, with latency and a concurrency limit."""

    server_class = _LoadServer

    def __init__(
        self,
        *,
        deployment: Any = "cloud",
        latency: float = 0.0,
        max_in_flight: int = 16,
        retry_after: int = 1,
        **options: Any,
    ) -> None:
        options.setdefault("embedded_histories", EMBEDDED_HISTORIES[deployment])
        options.setdefault("embedded_comments", EMBEDDED_COMMENTS)
        super().__init__(deployment=deployment, email=EMAIL, token=TOKEN, **options)
        self.latency = latency
        self.max_in_flight = max_in_flight
        self.retry_after = retry_after
        self.stats: Counter[str] = Counter()
        self._stats_lock = threading.Lock()
        self._in_flight = 0
        self._by_id: dict[str, FakeIssue] = {}
        self._encoded: dict[tuple[str, str], _Encoded] = {}
        self._found: dict[str, list[FakeIssue]] = {}
        self._histories: dict[tuple[str, str, bool], dict[str, Any]] = {}

    @property
    def version(self) -> str:
        return "3" if self.cloud else "2"

    def prepare(self) -> None:
        """Index the issues and encode them all once (after :func:`populate` and ``start``:
        payloads hold the server's URL)."""
        self._by_id = {issue.id: issue for issue in self.issues.values()}
        self._encoded.clear()
        self._found.clear()
        for issue in self.issues.values():
            self.encoded(issue, self.version)
            if len(issue.histories) > self.embedded_histories:
                for history in issue.histories:
                    self.history(issue, history, self.version, epoch_ms=self.cloud)

    def encoded(self, issue: FakeIssue, version: str) -> _Encoded:
        cached = self._encoded.get((issue.key, version))
        if cached is not None:
            return cached
        head = (
            b'{"expand":"operations,versionedRepresentations,editmeta,changelog,renderedFields",'
            + b'"id":' + _dumps(issue.id)
            + b',"self":' + _dumps(f"{self._api(version)}/issue/{issue.id}")
            + b',"key":' + _dumps(issue.key)
        )
        fields = {name: _dumps(value) for name, value in self._all_fields(issue, version).items()}
        shown = issue.histories[: self.embedded_histories]
        changelog = _dumps({
            "startAt": 0,
            "maxResults": len(shown),
            "total": len(issue.histories),
            "histories": [self.render_history(h, version) for h in shown],
        })
        encoded = _Encoded(head, fields, changelog)
        self._encoded[(issue.key, version)] = encoded
        return encoded

    def issue_json(
        self, issue: FakeIssue, version: str, fields: list[str] | None, expand: set[str]
    ) -> bytes:
        """Exactly :meth:`FakeJira.render_issue`, from the encoded pieces."""
        encoded = self.encoded(issue, version)
        if fields is None or "*all" in fields or "*navigable" in fields:
            names: list[str] = list(encoded.order)
        else:
            names = [name for name in dict.fromkeys(fields) if name in encoded.fields]
        dropped = {name[1:] for name in fields or [] if name.startswith("-")}
        body = b",".join(
            _dumps(name) + b":" + encoded.fields[name] for name in names if name not in dropped
        )
        out = encoded.head + b',"fields":{' + body + b"}"
        if "changelog" in expand:
            out += b',"changelog":' + encoded.changelog
        return out + b"}"

    def found(self, jql: str, *, require_bound: bool) -> list[FakeIssue]:
        cached = self._found.get(jql)
        if cached is None:
            cached = self.search(jql, require_bound=require_bound)
            self._found[jql] = cached
        return cached

    def history(
        self, issue: FakeIssue, history: FakeHistory, version: str, *, epoch_ms: bool = False
    ) -> dict[str, Any]:
        """:meth:`FakeJira.render_history`, rendered once."""
        rendered = self._histories.setdefault((issue.key, version, epoch_ms), {})
        if history.id not in rendered:
            rendered[history.id] = self.render_history(history, version, epoch_ms=epoch_ms)
        found: dict[str, Any] = rendered[history.id]
        return found

    def lookup(self, key_or_id: str) -> FakeIssue | None:
        return self.issues.get(key_or_id) or self._by_id.get(key_or_id)

    def change(self, fraction: float, *, at: datetime, seed: int = 99) -> int:
        """Move ``fraction`` of the issues one status on (half also get a comment), at
        moments spread over the hour before ``at``."""
        rng = random.Random(seed)
        with self._lock:
            keys = sorted(self.issues)
            chosen = rng.sample(keys, max(1, round(len(keys) * fraction)))
            for n, key in enumerate(sorted(chosen)):
                issue = self.issues[key]
                moment = at - timedelta(hours=1) + timedelta(hours=1) * n / len(chosen)
                moment = max(moment, issue.updated + timedelta(seconds=1))
                after = FLOW[(FLOW.index(issue.status) + 1) % len(FLOW)]
                self.transition(key, after, at=moment, author="user001")
                if n % 2:
                    self.add_comment(key, _text(rng, 60, 300), at=moment, author="user002")
                for version in ("2", "3"):
                    self._encoded.pop((key, version), None)
                for cached in [k for k in self._histories if k[0] == key]:
                    del self._histories[cached]
                self.encoded(issue, self.version)
            self._found.clear()
            return len(chosen)

    def count(self, kind: str, n: int = 1) -> None:
        with self._stats_lock:
            self.stats[kind] += n

    def enter(self) -> bool:
        with self._stats_lock:
            if self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            self.stats["peak_in_flight"] = max(self.stats["peak_in_flight"], self._in_flight)
            return True

    def leave(self) -> None:
        with self._stats_lock:
            self._in_flight -= 1

    def handler(self) -> type[_Handler]:
        return _LoadHandler


class _Raw(bytes):
    """A JSON body already encoded."""


def _kind(path: str) -> str:
    if path.endswith("/search") or path.endswith("/search/jql"):
        return "search"
    if path.endswith("/changelog/bulkfetch"):
        return "bulkfetch"
    if path.endswith("/changelog"):
        return "changelog"
    if path.endswith("/comment"):
        return "comment"
    return path.rsplit("/", 1)[-1]


class _LoadHandler(_Handler):
    server: _LoadServer  # type: ignore[assignment]

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        if path.startswith("/__bench/"):
            self._admin(method, path, raw)
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        fake.count("requests")
        fake.count(_kind(path))
        if not fake.enter():
            fake.count("throttled")
            self._send(429, _dumps({"errorMessages": ["Too many requests in flight"]}),
                       {"Retry-After": str(fake.retry_after)})
            return
        try:
            if fake.latency:
                time.sleep(fake.latency)
            headers: dict[str, str] = {}
            try:
                self._authenticate()
                result = self._route(method, path, params, body)
                status = 200
                data = result if isinstance(result, _Raw) else _dumps(result)
            except _HttpError as error:
                status, headers = error.status, error.headers
                data = _dumps({"errorMessages": [error.message], "errors": {}})
            except JqlError as error:
                status = 400
                data = _dumps({"errorMessages": [str(error)], "errors": {}})
            fake.count("bytes", len(data))
            self._send(status, data, headers)
        finally:
            fake.leave()

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _admin(self, method: str, path: str, raw: bytes) -> None:
        fake = self.server.fake
        args = json.loads(raw) if raw else {}
        if path == "/__bench/stats":
            out: Any = dict(fake.stats)
        elif path == "/__bench/reset":
            with fake._stats_lock:
                fake.stats.clear()
            out = {}
        elif path == "/__bench/config":
            if "latency_ms" in args:
                fake.latency = float(args["latency_ms"]) / 1000
            if "max_in_flight" in args:
                fake.max_in_flight = int(args["max_in_flight"])
            out = {"latency_ms": fake.latency * 1000, "max_in_flight": fake.max_in_flight}
        elif path == "/__bench/change":
            at = datetime.fromisoformat(args["at"])
            out = {"changed": fake.change(float(args["fraction"]), at=at)}
        else:
            self._send(404, b"{}", {})
            return
        self._send(200, _dumps(out), {})

    # -- the routes that must be fast at scale ------------------------------------------

    def _issue(self, key_or_id: str) -> FakeIssue:
        issue = self.server.fake.lookup(key_or_id)
        if issue is None:
            raise _HttpError(404, "Issue does not exist or you do not have permission to see it.")
        return issue

    def _search_cloud(self, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        jql = str(args.get("jql") or "")
        fields = _split_list(args.get("fields"))
        expand = set(_split_list(args.get("expand")) or [])
        light = fields is None or set(fields) <= {"id", "key"}
        cap = 5000 if light else fake.search_cap
        size = min(max(self._int(args, "maxResults", 50), 1), cap)
        start = _offset(args.get("nextPageToken"), jql)
        found = fake.found(jql, require_bound=True)
        page = found[start : start + size]
        if fields is None or fields == ["id"]:
            issues = b",".join(_dumps({"id": issue.id}) for issue in page)
        else:
            issues = b",".join(fake.issue_json(i, version, fields, expand) for i in page)
        tail: dict[str, Any] = {"isLast": True}
        if start + size < len(found):
            tail = {"nextPageToken": _token(start + size, jql), "isLast": False}
        return _Raw(b'{"issues":[' + issues + b"]," + _dumps(tail)[1:])

    def _search_dc(self, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        jql = str(args.get("jql") or "")
        fields = _split_list(args.get("fields"))
        expand = set(_split_list(args.get("expand")) or [])
        start = self._int(args, "startAt", 0)
        size = min(max(self._int(args, "maxResults", 50), 0), fake.search_cap)
        found = fake.found(jql, require_bound=False)
        page = found[start : start + size]
        head = _dumps({"expand": "schema,names", "startAt": start, "maxResults": size,
                       "total": len(found)})
        issues = b",".join(fake.issue_json(i, version, fields, expand) for i in page)
        return _Raw(head[:-1] + b',"issues":[' + issues + b"]}")

    def _changelog(self, issue: FakeIssue, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        start = self._int(args, "startAt", 0)
        size = min(max(self._int(args, "maxResults", 100), 1), fake.changelog_cap)
        values = issue.histories[start : start + size]
        base = f"{fake._api(version)}/issue/{issue.key}/changelog"
        out: dict[str, Any] = {
            "self": f"{base}?startAt={start}&maxResults={size}",
            "maxResults": size,
            "startAt": start,
            "total": len(issue.histories),
            "isLast": start + size >= len(issue.histories),
            "values": [fake.history(issue, h, version) for h in values],
        }
        if not out["isLast"]:
            out["nextPage"] = f"{base}?&startAt={start + size}&maxResults={size}"
        return out

    def _bulkfetch(self, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        wanted = args.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not wanted:
            raise _HttpError(400, "issueIdsOrKeys must not be empty.")
        if len(wanted) > 1000:
            raise _HttpError(400, "issueIdsOrKeys must not have more than 1000 entries.")
        size = min(max(self._int(args, "maxResults", 1000), 1), fake.bulkfetch_cap)
        entries: list[tuple[FakeIssue, FakeHistory]] = []
        for ident in wanted:
            issue = fake.lookup(str(ident))
            if issue is not None:
                entries.extend((issue, history) for history in issue.histories)
        query = json.dumps([wanted, []])
        start = _offset(args.get("nextPageToken"), query)
        grouped: dict[str, dict[str, Any]] = {}
        for issue, history in entries[start : start + size]:
            group = grouped.setdefault(issue.id, {"changeHistories": [], "issueId": issue.id})
            group["changeHistories"].append(fake.history(issue, history, "3", epoch_ms=True))
        out: dict[str, Any] = {"issueChangeLogs": list(grouped.values())}
        if start + size < len(entries):
            out["nextPageToken"] = _token(start + size, query)
        return out



def serve(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    fake = LoadJira(deployment=args.deployment, latency=args.latency_ms / 1000,
                    max_in_flight=args.max_in_flight)
    populate(fake, args.issues, seed=args.seed)
    fake.start()
    fake.prepare()
    sys.stdout.write(json.dumps({"url": fake.url, "issues": len(fake.issues),
                                 "seconds": round(time.perf_counter() - started, 1)}) + "\n")
    sys.stdout.flush()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # Bounded: a forgotten server ends by itself.
    stop.wait(args.lifetime)
    fake.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deployment", choices=("cloud", "datacenter"), default="cloud")
    parser.add_argument("--issues", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--max-in-flight", type=int, default=16)
    parser.add_argument("--lifetime", type=float, default=3 * 3600,
                        help="seconds after which the server stops by itself")
    serve(parser.parse_args(argv))


if __name__ == "__main__":
    main()
