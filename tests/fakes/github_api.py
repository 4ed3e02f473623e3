"""A stateful fake of GitHub's REST API for issues, on respx: a contract-suite harness.

Payload shapes follow GitHub's own recordings and OpenAPI examples: issues as in
``@octokit/fixtures`` (scenario ``paginate-issues``: ``Link`` pointing at
``/repositories/{id}/issues?...&page=N``, the full ``user`` object, ``state_reason``,
``timeline_url``), timeline entries as in ``@octokit/openapi``'s
``timeline-issue-events`` example (``labeled`` with ``label: {name, color}``,
``commented`` with ``user``/``body``/``html_url``, ``cross-referenced`` without an
``id``), milestones as its ``milestone`` example (``due_on``), errors as GitHub sends them
(``{"message", "documentation_url"}``; ``x-ratelimit-*`` headers on every answer).

Issue dependencies (GitHub's REST reference, "REST API endpoints for issue dependencies",
and the issue schema of its OpenAPI description): every issue answer carries
``issue_dependencies_summary`` (``blocked_by``/``blocking``: open issues, ``total_blocked_by``/
``total_blocking``: all); ``GET .../issues/{number}/dependencies/blocked_by`` lists the
blocking issues as issue objects (paged like issues). :meth:`FakeGithub.block` adds one.

Milestones (``stratmap push``, and each sync's due dates): ``GET .../milestones`` lists them (``state=open`` by
default, ``sort=due_on``, paged like issues); ``PATCH .../milestones/{number}`` edits one
and answers the milestone. GitHub keeps only the due *day*: ``due_on`` is floored to
midnight US Pacific time and answered as that instant in UTC (``T07:00:00Z``, or
``T08:00:00Z`` in winter), so ``2026-09-24T00:00:00Z`` is stored as the 23rd. With
``editable = False`` every edit is refused with 403, as for a read-only token.

Checked against recordings (``tests/test_recorded_shapes.py``): the issue list of
``@octokit/fixtures``' ``paginate-issues`` scenario (MIT), every key and type.

The server side follows GitHub's documented defaults (``state=open``, ``sort=created``,
``direction=desc``, ``per_page=30``, at most 100), so a connector that forgets a
parameter gets the wrong answer, not a lucky one.
"""

from __future__ import annotations

import json
import random
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
import respx

from stratmap.connectors.base import RetryPolicy
from stratmap.connectors.github import GithubConnector
from stratmap.models.plan import GithubSource
from tests.contract.suite import T0, SeedItem

API = "https://api.github.com"
REPO = "northwind/website"
REPO_ID = 1000
PROGRESS = "in progress"
DOCS = "https://docs.github.com/rest"
PACIFIC = ZoneInfo("America/Los_Angeles")


def github_due_on(value: str) -> str:
    """How GitHub stores a ``due_on`` it is sent: the Pacific day's midnight, in UTC."""
    day = parse(value).astimezone(PACIFIC).date()
    return iso(datetime.combine(day, time(0, 0), tzinfo=PACIFIC))


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- payload builders (shapes copied from GitHub's recorded answers) -----------------------

def user(login: str, uid: int = 1000) -> dict[str, Any]:
    return {
        "login": login, "id": uid, "node_id": "MDQ6VXNlcjE=",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4", "gravatar_id": "",
        "url": f"{API}/users/{login}", "html_url": f"https://github.com/{login}",
        "followers_url": f"{API}/users/{login}/followers",
        "following_url": f"{API}/users/{login}/following{{/other_user}}",
        "gists_url": f"{API}/users/{login}/gists{{/gist_id}}",
        "starred_url": f"{API}/users/{login}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{API}/users/{login}/subscriptions",
        "organizations_url": f"{API}/users/{login}/orgs",
        "repos_url": f"{API}/users/{login}/repos",
        "events_url": f"{API}/users/{login}/events{{/privacy}}",
        "received_events_url": f"{API}/users/{login}/received_events",
        "type": "User", "site_admin": False,
    }


def label(name: str, lid: int = 1000) -> dict[str, Any]:
    return {"id": lid, "node_id": "MDU6TGFiZWwx", "url": f"{API}/repos/{REPO}/labels/{name}",
            "name": name, "color": "ededed", "default": False, "description": None}


def milestone(number: int, title: str, *, due_on: datetime | None = None) -> dict[str, Any]:
    return {
        "url": f"{API}/repos/{REPO}/milestones/{number}", "html_url":
        f"https://github.com/{REPO}/milestone/{number}", "id": 1002604 + number,
        "node_id": "MDk6TWlsZXN0b25lMTAwMjYwNA==", "number": number, "state": "open",
        "title": title, "description": "", "creator": user("octocat", 1),
        "open_issues": 1, "closed_issues": 0, "created_at": "2026-01-10T20:09:31Z",
        "updated_at": "2026-03-03T18:58:10Z", "closed_at": None,
        "due_on": iso(due_on) if due_on else None,
    }


def issue(number: int, *, title: str, created: datetime, updated: datetime, state: str = "open",
          author: str = "octokit-fixture-user-a", labels: list[str] | None = None,
          assignees: list[str] | None = None, milestone_: dict[str, Any] | None = None,
          closed_at: datetime | None = None, comments: int = 0,
          state_reason: str | None = None, pull_request: bool = False) -> dict[str, Any]:
    url = f"{API}/repos/{REPO}/issues/{number}"
    people = [user(a, 2000 + i) for i, a in enumerate(assignees or [])]
    payload: dict[str, Any] = {
        "url": url, "repository_url": f"{API}/repos/{REPO}",
        "labels_url": f"{url}/labels{{/name}}", "comments_url": f"{url}/comments",
        "events_url": f"{url}/events", "html_url": f"https://github.com/{REPO}/issues/{number}",
        "id": 5000 + number, "node_id": "MDA6RW50aXR5MQ==", "number": number, "title": title,
        "user": user(author), "labels": [label(n, 3000 + i) for i, n in enumerate(labels or [])],
        "state": state, "locked": False, "assignee": people[0] if people else None,
        "assignees": people, "milestone": milestone_, "comments": comments,
        "created_at": iso(created), "updated_at": iso(updated),
        "closed_at": iso(closed_at) if closed_at else None, "author_association": "MEMBER",
        "active_lock_reason": None, "body": None,
        "reactions": {"url": f"{url}/reactions", "total_count": 0, "+1": 0, "-1": 0},
        "timeline_url": f"{url}/timeline", "performed_via_github_app": None,
        "state_reason": state_reason,
        "issue_dependencies_summary": {"blocked_by": 0, "blocking": 0, "total_blocked_by": 0,
                                       "total_blocking": 0},
    }
    if pull_request:
        payload["html_url"] = f"https://github.com/{REPO}/pull/{number}"
        payload["pull_request"] = {
            "url": f"{API}/repos/{REPO}/pulls/{number}",
            "html_url": f"https://github.com/{REPO}/pull/{number}",
            "diff_url": f"https://github.com/{REPO}/pull/{number}.diff",
            "patch_url": f"https://github.com/{REPO}/pull/{number}.patch", "merged_at": None,
        }
    return payload


def event(eid: int, kind: str, *, actor: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": eid, "node_id": "LE_lADODwFebM5HwC0kzwAAAAF_RoSA",
        "url": f"{API}/repos/{REPO}/issues/events/{eid}", "actor": user(actor),
        "event": kind, "commit_id": None, "commit_url": None, "created_at": iso(at),
        "performed_via_github_app": None, **extra,
    }


def comment(cid: int, number: int, *, author: str, at: datetime, body: str) -> dict[str, Any]:
    return {
        "url": f"{API}/repos/{REPO}/issues/comments/{cid}",
        "html_url": f"https://github.com/{REPO}/issues/{number}#issuecomment-{cid}",
        "issue_url": f"{API}/repos/{REPO}/issues/{number}", "id": cid,
        "node_id": "IC_kwDODwFebM5DZ8-5", "user": user(author), "created_at": iso(at),
        "updated_at": iso(at), "author_association": "COLLABORATOR", "body": body,
        "reactions": {"url": f"{API}/repos/{REPO}/issues/comments/{cid}/reactions",
                      "total_count": 0},
        "performed_via_github_app": None, "event": "commented", "actor": user(author),
    }


def cross_reference(at: datetime) -> dict[str, Any]:
    """A timeline entry with no ``id`` (GitHub sends these)."""
    return {"actor": user("octocat", 1), "created_at": iso(at), "updated_at": iso(at),
            "source": {"type": "issue", "issue": {"number": 1}}, "event": "cross-referenced"}


def _category(status: str) -> str:
    return {"To Do": "todo", "Done": "done"}.get(status, "in_progress")


# -- the fake ------------------------------------------------------------------------------

class FakeGithub:
    """GitHub for one repository; usable as the contract suite's harness."""

    http = True

    def __init__(self, *, name: str = "site", page_size: int = 100, token: str | None = None,
                 pull_requests: bool = True, now: datetime = T0 + timedelta(days=40)) -> None:
        self.name = name
        self.page_size = page_size
        self.token = token
        self.pull_requests = pull_requests
        self.issues: dict[int, dict[str, Any]] = {}
        self.timelines: dict[int, list[dict[str, Any]]] = {}
        self.milestones: dict[int, dict[str, Any]] = {}
        self.blockers: dict[int, list[int]] = {}
        """Issue number -> the numbers of the issues it is blocked by (see :meth:`block`)."""
        self.editable = True
        """False: every edit is refused with 403 (a token without write access)."""
        self.faults: deque[tuple[int, dict[str, str], Any]] = deque()
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.now = now.timestamp()
        self.budget: int | None = None
        """Requests left in the hour (None: plenty); see :meth:`limit_budget`."""
        self.budget_reset = self.now + 3600
        self.refused = 0
        """Requests refused because the budget was spent."""
        self._ids = 10_000
        self._lock = threading.RLock()
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.route(host="api.github.com").mock(side_effect=self.handle)

    # -- the Harness protocol --------------------------------------------------------------

    def seed(self, items: list[SeedItem]) -> None:
        with self._lock:
            self.issues.clear()
            self.timelines.clear()
            for n, item in enumerate(items):
                self._seed_one(item)
                if self.pull_requests and n % 7 == 3:  # a PR now and then, as GitHub lists
                    number = 50_000 + n
                    self.issues[number] = issue(number, title=f"PR {n}", created=item.created,
                                                updated=item.updated, pull_request=True)
                    self.timelines[number] = []

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> None:
        with self._lock:
            number = self.number(key)
            payload = self.issues[number]
            current = self._status(payload)
            self._move(number, current, to, at=at, author=author)
            payload["updated_at"] = iso(at)

    def assign(self, key: str, *, at: datetime, actor: str, add: Iterable[str] = (),
               remove: Iterable[str] = ()) -> None:
        """Assign and unassign people, as GitHub records it: one ``assigned`` or
        ``unassigned`` timeline event each, the issue's ``assignee``/``assignees`` updated."""
        with self._lock:
            number = self.number(key)
            payload = self.issues[number]
            logins = [a["login"] for a in payload.get("assignees") or []]
            for login in remove:
                if login in logins:
                    logins.remove(login)
                    self.timelines[number].append(event(
                        self._next_id(), "unassigned", actor=actor, at=at, assignee=user(login)))
            for login in add:
                if login not in logins:
                    logins.append(login)
                    self.timelines[number].append(event(
                        self._next_id(), "assigned", actor=actor, at=at, assignee=user(login)))
            payload["assignees"] = [user(login) for login in logins]
            payload["assignee"] = user(logins[0]) if logins else None
            payload["updated_at"] = iso(at)

    def connector(self) -> GithubConnector:
        source = GithubSource(kind="github", repo=REPO, in_progress_labels=["In Progress"],
                              page_size=self.page_size)
        return GithubConnector(self.name, source, token=self.token, sleep=self.sleep,
                               clock=self.clock, rng=random.Random(7),
                               policy=RetryPolicy(attempts=4))

    def key_of(self, key: str) -> str:
        return f"{self.name}#{self.number(key)}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers = {"retry-after": retry_after} if retry_after is not None else {}
        body: dict[str, Any] = {"message": "Server Error"}
        if status == 401:
            body = {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"}
        elif status in (403, 429):
            body = {"message": "You have exceeded a secondary rate limit. Please wait a few "
                               "minutes before you try again.", "documentation_url": DOCS,
                    "status": str(status)}
        with self._lock:
            for _ in range(times):
                self.faults.append((status, headers, body))

    # -- extra levers for wire tests -----------------------------------------------------

    def fail_primary_rate_limit(self, *, reset_in: float, status: int = 403) -> None:
        """Answer the next request as GitHub does when the hourly budget is spent."""
        reset = str(int(self.now + reset_in))
        with self._lock:
            self.faults.append((status, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset},
                                {"message": "API rate limit exceeded for 203.0.113.7.",
                                 "documentation_url": DOCS, "status": str(status)}))

    def limit_budget(self, requests: int, *, reset_in: float) -> None:
        """GitHub's hourly budget: ``requests`` more answers, then 403 until the reset (each
        answer says ``x-ratelimit-remaining``; the last one ``0``)."""
        with self._lock:
            self.budget, self.budget_reset = requests, self.now + reset_in

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def number(self, key: str) -> int:
        return int(key.rsplit("-", 1)[-1].lstrip("#"))

    def add(self, payload: dict[str, Any], timeline: list[dict[str, Any]] | None = None) -> None:
        with self._lock:
            self.issues[payload["number"]] = payload
            self.timelines[payload["number"]] = list(timeline or [])

    def calls(self, kind: str) -> list[httpx.Request]:
        """Requests to the issue list (``issues``) or to timelines (``timeline``)."""
        if kind == "issues":
            return [r for r in self.requests if r.url.path.endswith("/issues")]
        return [r for r in self.requests if r.url.path.endswith(f"/{kind}")]

    # -- seeding ---------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _seed_one(self, item: SeedItem) -> None:
        number = self.number(item.key)
        payload = issue(number, title=item.title, created=item.created, updated=item.created,
                        assignees=[item.assignee] if item.assignee else [])
        self.issues[number] = payload
        timeline: list[dict[str, Any]] = []
        self.timelines[number] = timeline
        if item.assignee:
            timeline.append(event(self._next_id(), "assigned", actor="octocat", at=item.created,
                                  assignee=user(item.assignee)))
        if number % 5 == 0:  # an unrelated label and a cross-reference: no status change
            payload["labels"].append(label("bug", 3100))
            timeline.append(event(self._next_id(), "labeled", actor="octocat", at=item.created,
                                  label={"name": "bug", "color": "d73a4a"}))
            timeline.append(cross_reference(item.created))
        status = "To Do"
        for at, author, _from, to in item.history:
            self._move(number, status, to, at=at, author=author)
            status = to
        if _category(status) != _category(item.status):
            self._move(number, status, item.status, at=item.created, author="octocat")
        for at, author, body in item.comments:
            timeline.append(comment(self._next_id(), number, author=author, at=at, body=body))
            payload["comments"] += 1
        timeline.sort(key=lambda e: e["created_at"])
        payload["updated_at"] = iso(item.updated)

    def _status(self, payload: dict[str, Any]) -> str:
        if payload["state"] == "closed":
            return "Done"
        names = {entry["name"].casefold() for entry in payload["labels"]}
        return "In Progress" if PROGRESS in names else "To Do"

    def _move(self, number: int, current: str, to: str, *, at: datetime, author: str) -> None:
        """The events GitHub records when someone moves an issue from ``current`` to ``to``."""
        payload = self.issues[number]
        timeline = self.timelines[number]
        has_label = any(e["name"].casefold() == PROGRESS for e in payload["labels"])
        want = _category(to)
        if want == "done":
            if payload["state"] != "closed":
                timeline.append(event(self._next_id(), "closed", actor=author, at=at,
                                      state_reason="completed"))
                payload.update(state="closed", closed_at=iso(at), state_reason="completed")
            return
        if payload["state"] == "closed":
            timeline.append(event(self._next_id(), "reopened", actor=author, at=at,
                                  state_reason="reopened"))
            payload.update(state="open", closed_at=None, state_reason="reopened")
        if want == "in_progress" and not has_label:
            timeline.append(event(self._next_id(), "labeled", actor=author, at=at,
                                  label={"name": PROGRESS, "color": "0e8a16"}))
            payload["labels"].append(label(PROGRESS, 3200))
        elif want == "todo" and has_label:
            timeline.append(event(self._next_id(), "unlabeled", actor=author, at=at,
                                  label={"name": PROGRESS, "color": "0e8a16"}))
            payload["labels"] = [e for e in payload["labels"] if e["name"].casefold() != PROGRESS]

    # -- the server ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            if self.faults:
                status, headers, body = self.faults.popleft()
                return self._json(status, body, headers)
            if self.token and request.headers.get("authorization") != f"Bearer {self.token}":
                return self._json(401, {"message": "Bad credentials", "documentation_url": DOCS,
                                        "status": "401"})
            if self.budget is not None:
                if self.now >= self.budget_reset:
                    self.budget, self.budget_reset = 5000, self.now + 3600
                if self.budget == 0:
                    self.refused += 1
                    return self._json(403, {"message": "API rate limit exceeded for user.",
                                            "documentation_url": DOCS, "status": "403"})
                self.budget -= 1
            parts = request.url.path.strip("/").split("/")
            if parts[:3] in (["repos", *REPO.split("/")],) or parts[:2] == [
                    "repositories", str(REPO_ID)]:
                rest = parts[3:] if parts[0] == "repos" else parts[2:]
                if rest == ["issues"]:
                    return self._list(request)
                if len(rest) == 3 and rest[0] == "issues" and rest[2] == "timeline":
                    return self._timeline(request, int(rest[1]))
                if len(rest) == 4 and rest[0] == "issues" and rest[2:] == [
                        "dependencies", "blocked_by"] and request.method == "GET":
                    return self._blocked_by(request, int(rest[1]))
                if rest == ["milestones"] and request.method == "GET":
                    return self._milestones(request)
                if len(rest) == 2 and rest[0] == "milestones" and request.method == "PATCH":
                    return self._edit_milestone(request, rest[1])
            return self._json(404, {"message": "Not Found", "documentation_url": DOCS,
                                    "status": "404"})

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None,
              ) -> httpx.Response:
        base = {
            "content-type": "application/json; charset=utf-8",
            "x-github-api-version-selected": "2022-11-28",
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999" if self.budget is None else str(self.budget),
            "x-ratelimit-reset": str(int(self.now) + 3600 if self.budget is None
                                     else int(self.budget_reset)),
            "x-ratelimit-used": "1",
            "x-ratelimit-resource": "core",
        }
        base.update(headers or {})
        return httpx.Response(status, headers=base, content=json.dumps(body).encode())

    def _paged(self, request: httpx.Request, rows: list[dict[str, Any]], path: str,
               ) -> httpx.Response:
        params = request.url.params
        per_page = min(100, int(params.get("per_page", "30")))
        page = int(params.get("page", "1"))
        last = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page: page * per_page]
        query = {k: v for k, v in params.multi_items() if k != "page"}

        def link(n: int) -> str:
            return f"<{API}{path}?{urlencode({**query, 'page': n})}>"

        links = []
        if page < last:
            links += [f'{link(page + 1)}; rel="next"', f'{link(last)}; rel="last"']
        if page > 1:
            links += [f'{link(page - 1)}; rel="prev"', f'{link(1)}; rel="first"']
        return self._json(200, chunk, {"link": ", ".join(links)} if links else {})

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        state = params.get("state", "open")
        rows = [p for p in self.issues.values() if state == "all" or p["state"] == state]
        if "since" in params:
            since = parse(params["since"])
            rows = [p for p in rows if parse(p["updated_at"]) >= since]
        field = "updated_at" if params.get("sort", "created") == "updated" else "created_at"
        rows.sort(key=lambda p: (p[field], p["number"]),
                  reverse=params.get("direction", "desc") == "desc")
        answer = [json.loads(json.dumps(p)) for p in rows]
        for payload in answer:
            if "issue_dependencies_summary" in payload:
                payload["issue_dependencies_summary"] = self._summary(payload["number"])
        return self._paged(request, answer, f"/repositories/{REPO_ID}/issues")

    def block(self, key: str, *, by: str, at: datetime) -> None:
        """Mark ``key`` as blocked by ``by`` (GitHub's "Mark as blocked by"): the blocked
        issue is updated at ``at``; both summaries count it from then on."""
        with self._lock:
            number, blocker = self.number(key), self.number(by)
            self.blockers.setdefault(number, []).append(blocker)
            self.issues[number]["updated_at"] = iso(at)

    def _summary(self, number: int) -> dict[str, int]:
        """``issue_dependencies_summary`` as GitHub computes it: open and all blockers, open
        and all issues blocked."""
        by = [self.issues[n] for n in self.blockers.get(number, []) if n in self.issues]
        blocks = [self.issues[n] for n, found in self.blockers.items() if number in found
                  and n in self.issues]
        return {"blocked_by": sum(1 for p in by if p["state"] == "open"),
                "blocking": sum(1 for p in blocks if p["state"] == "open"),
                "total_blocked_by": len(by), "total_blocking": len(blocks)}

    def _blocked_by(self, request: httpx.Request, number: int) -> httpx.Response:
        if number not in self.issues:
            return self._json(404, {"message": "Not Found", "documentation_url": DOCS})
        rows = [json.loads(json.dumps(self.issues[n])) for n in self.blockers.get(number, [])]
        for row in rows:
            row["issue_dependencies_summary"] = self._summary(row["number"])
        return self._paged(request, rows,
                           f"/repositories/{REPO_ID}/issues/{number}/dependencies/blocked_by")

    def add_milestone(self, number: int, title: str, *, due_on: str | None = None,
                      state: str = "open") -> dict[str, Any]:
        """A milestone; ``due_on`` as GitHub answers it (e.g. ``2026-09-24T07:00:00Z``)."""
        with self._lock:
            payload = milestone(number, title)
            payload.update(due_on=due_on, state=state)
            self.milestones[number] = payload
            return payload

    def edits(self) -> list[tuple[str, str, Any]]:
        """Every write request: (method, path, JSON body)."""
        return [(r.method, r.url.path, json.loads(r.content or b"null")) for r in self.requests
                if r.method not in ("GET", "HEAD")]

    def _milestones(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        state = params.get("state", "open")
        rows = [m for m in self.milestones.values() if state == "all" or m["state"] == state]
        if params.get("sort", "due_on") == "due_on":
            # GitHub lists dated milestones first; the fake orders the undated by number.
            rows.sort(key=lambda m: (m["due_on"] is None, m["due_on"] or "", m["number"]),
                      reverse=params.get("direction", "asc") == "desc")
        return self._paged(request, [json.loads(json.dumps(m)) for m in rows],
                           f"/repositories/{REPO_ID}/milestones")

    def _edit_milestone(self, request: httpx.Request, number: str) -> httpx.Response:
        if not number.isdigit() or int(number) not in self.milestones:
            return self._json(404, {"message": "Not Found", "documentation_url": DOCS,
                                    "status": "404"})
        if not self.editable:
            return self._json(403, {"message": "Resource not accessible by personal access "
                                               "token", "documentation_url": DOCS,
                                    "status": "403"},
                              {"x-accepted-github-permissions": "issues=write"})
        try:
            body = json.loads(request.content)
        except ValueError:
            return self._json(400, {"message": "Problems parsing JSON",
                                    "documentation_url": DOCS, "status": "400"})
        payload = self.milestones[int(number)]
        if "due_on" in body:
            value = body["due_on"]
            try:
                payload["due_on"] = None if value is None else github_due_on(str(value))
            except ValueError:
                return self._json(422, {"message": "Validation Failed", "errors": [
                    {"resource": "Milestone", "code": "invalid", "field": "due_on"}],
                    "documentation_url": DOCS, "status": "422"})
        for key in ("title", "state", "description"):
            if key in body:
                payload[key] = body[key]
        payload["updated_at"] = iso(datetime.fromtimestamp(self.now, UTC))
        return self._json(200, json.loads(json.dumps(payload)))

    def _timeline(self, request: httpx.Request, number: int) -> httpx.Response:
        if number not in self.issues:
            return self._json(404, {"message": "Not Found", "documentation_url": DOCS})
        return self._paged(request, list(self.timelines[number]),
                           f"/repositories/{REPO_ID}/issues/{number}/timeline")


def activated(fake: FakeGithub) -> Iterator[FakeGithub]:
    """A fixture body: the fake answers every request to api.github.com while in use."""
    with fake.router:
        yield fake
