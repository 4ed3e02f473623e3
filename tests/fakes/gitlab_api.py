"""A stateful fake of GitLab's REST API v4 for project issues, on respx: a harness.

Payload shapes follow GitLab's API documentation (``doc/api/issues.md``,
``resource_state_events.md``, ``resource_label_events.md``, ``notes.md``): issues with
``iid``, ``state`` ``opened``/``closed``, label names, ``milestone.due_date``,
``epic: {id, iid, title, url, group_id}``, ``user_notes_count``; notes with ``system``;
state events ``{id, user, created_at, resource_type, resource_id, state}``. Every state
or label change also leaves a system note, as GitLab does, so skipping them is exercised;
an assignment is recorded only as a system note (``assigned to @dev1``), as GitLab does.

Checked against GitLab's own API schema for an issue (``spec/fixtures/api/schemas/
public_api/v4/issue.json`` of gitlabhq/gitlabhq, MIT; ``tests/test_recorded_shapes.py``).

Paging as GitLab does it: ``pagination=keyset`` answers a ``Link: rel="next"`` carrying
an opaque ``cursor`` (GitLab 18.3+ for issues); an instance built with
``keyset=False`` answers that with 405, as older GitLab does, and pages by offset
(``x-next-page``, ``x-page``, ``x-total``, ``Link``). Defaults follow the docs:
``order_by=created_at``, ``sort=desc``, ``per_page=20`` (at most 100).

Issue links (``doc/api/issue_links.md``): ``GET /projects/:id/issues/:iid/links`` answers
the linked issues, each an issue object plus ``issue_link_id``, ``link_type``
(``relates_to``, ``blocks``, ``is_blocked_by``: the relation as seen from the asked issue)
and ``link_created_at``/``link_updated_at``; :meth:`FakeGitlab.block` links two.

Milestones (``doc/api/milestones.md``, ``group_milestones.md``): ``GET
/projects/:id/milestones`` lists the project's milestones of every state, with its group's
when ``include_ancestors=true`` (a group milestone has ``group_id``, no ``project_id``),
paged by offset; ``PUT /projects/:id/milestones/:milestone_id`` and ``PUT
/groups/:id/milestones/:milestone_id`` edit one (by its ``id``) and answer it; a
``due_date`` that is not ``YYYY-MM-DD`` is a 400. With ``editable = False`` every edit is
refused with 403 (a read_api token, or a role below Reporter).
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import respx

from stratmap.connectors.base import RetryPolicy
from stratmap.connectors.gitlab import GitlabConnector
from stratmap.models.plan import GitlabSource
from tests.contract.suite import T0, SeedItem

HOST = "https://gitlab.example.com"
PROJECT = "northwind/website"
PROJECT_ID = 42
GROUP = "northwind"
GROUP_ID = 8
DOING = "workflow::doing"


def iso(moment: datetime) -> str:
    """GitLab's timestamps: milliseconds and ``Z``."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[:-3] + "Z"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def user(username: str, uid: int = 1) -> dict[str, Any]:
    return {"id": uid, "username": username, "name": username.replace("-", " ").title(),
            "state": "active", "locked": False,
            "avatar_url": f"https://www.gravatar.com/avatar/{uid}?s=80&d=identicon",
            "web_url": f"{HOST}/{username}"}


def milestone(mid: int, title: str, *, due: str | None = None, iid: int | None = None,
              group: bool = False, state: str = "active") -> dict[str, Any]:
    owner: dict[str, Any] = {"group_id": GROUP_ID} if group else {"project_id": PROJECT_ID}
    web = (f"{HOST}/groups/{GROUP}/-/milestones/{iid or mid}" if group
           else f"{HOST}/{PROJECT}/-/milestones/{iid or mid}")
    return {"id": mid, "iid": iid or mid, **owner, "title": title,
            "description": "", "state": state, "created_at": "2026-01-04T15:31:51.081Z",
            "updated_at": "2026-01-04T15:31:51.081Z", "due_date": due, "start_date": None,
            "expired": False, "web_url": web}


def epic(iid: int, title: str = "Website epic") -> dict[str, Any]:
    return {"id": 900 + iid, "iid": iid, "title": title, "url": f"/groups/northwind/-/epics/{iid}",
            "group_id": 8}


def issue(iid: int, *, title: str, created: datetime, updated: datetime, state: str = "opened",
          author: str = "root", labels: list[str] | None = None,
          assignees: list[str] | None = None, milestone_: dict[str, Any] | None = None,
          epic_: dict[str, Any] | None = None, closed_at: datetime | None = None,
          notes: int = 0, due_date: str | None = None, weight: int | None = None,
          ) -> dict[str, Any]:
    people = [user(a, 100 + i) for i, a in enumerate(assignees or [])]
    return {
        "id": 7600 + iid, "iid": iid, "project_id": PROJECT_ID, "title": title,
        "description": "", "state": state, "created_at": iso(created),
        "updated_at": iso(updated), "closed_at": iso(closed_at) if closed_at else None,
        "closed_by": user("root") if closed_at else None, "labels": list(labels or []),
        "milestone": milestone_, "assignees": people, "author": user(author, 2),
        "type": "ISSUE", "assignee": people[0] if people else None,
        "user_notes_count": notes, "merge_requests_count": 0, "upvotes": 0, "downvotes": 0,
        "due_date": due_date, "confidential": False, "discussion_locked": None,
        "issue_type": "issue", "web_url": f"{HOST}/{PROJECT}/-/issues/{iid}",
        "time_stats": {"time_estimate": 0, "total_time_spent": 0},
        "task_completion_status": {"count": 0, "completed_count": 0}, "weight": weight,
        "has_tasks": False, "references": {"short": f"#{iid}", "relative": f"#{iid}",
                                           "full": f"{PROJECT}#{iid}"},
        "severity": "UNKNOWN", "moved_to_id": None, "service_desk_reply_to": None,
        "epic_iid": epic_["iid"] if epic_ else None, "epic": epic_, "iteration": None,
        "health_status": None,
        "_links": {"self": f"{HOST}/api/v4/projects/{PROJECT_ID}/issues/{iid}"},
    }


def state_event(eid: int, iid: int, state: str, *, by: str, at: datetime) -> dict[str, Any]:
    return {"id": eid, "user": user(by, 3), "created_at": iso(at), "resource_type": "Issue",
            "resource_id": 7600 + iid, "state": state}


def label_event(eid: int, iid: int, name: str, action: str, *, by: str,
                at: datetime) -> dict[str, Any]:
    return {"id": eid, "user": user(by, 3), "created_at": iso(at), "resource_type": "Issue",
            "resource_id": 7600 + iid,
            "label": {"id": 73, "name": name, "color": "#34495E", "description": ""},
            "action": action}


def note(nid: int, iid: int, *, by: str, at: datetime, body: str,
         system: bool = False) -> dict[str, Any]:
    return {"id": nid, "type": None, "body": body, "attachment": None, "author": user(by, 4),
            "created_at": iso(at), "updated_at": iso(at), "system": system,
            "noteable_id": 7600 + iid, "noteable_type": "Issue", "project_id": PROJECT_ID,
            "resolvable": False, "confidential": False, "internal": False,
            "noteable_iid": iid, "commands_changes": {}}


def _category(status: str) -> str:
    return {"To Do": "todo", "Done": "done"}.get(status, "in_progress")


class FakeGitlab:
    """GitLab for one project; usable as the contract suite's harness."""

    http = True

    def __init__(self, *, name: str = "shop", page_size: int = 100, keyset: bool = True,
                 token: str | None = None, now: datetime = T0 + timedelta(days=40),
                 concurrency: int = 4) -> None:
        self.name = name
        self.page_size = page_size
        self.keyset = keyset
        self.token = token
        self.concurrency = concurrency
        self.issues: dict[int, dict[str, Any]] = {}
        self.state_events: dict[int, list[dict[str, Any]]] = {}
        self.label_events: dict[int, list[dict[str, Any]]] = {}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.milestones: dict[int, dict[str, Any]] = {}
        """Project and group milestones by ``id``."""
        self.links: dict[int, list[tuple[int, str, str]]] = {}
        """Issue iid -> (linked iid, link_type as seen from this issue, created)."""
        self.editable = True
        """False: every edit is refused with 403."""
        self.faults: deque[tuple[int, dict[str, str], Any]] = deque()
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.now = now.timestamp()
        self._ids = 20_000
        self._lock = threading.RLock()
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.route(host="gitlab.example.com").mock(side_effect=self.handle)

    # -- the Harness protocol --------------------------------------------------------------

    def seed(self, items: list[SeedItem]) -> None:
        with self._lock:
            for table in (self.issues, self.state_events, self.label_events, self.notes):
                table.clear()
            for item in items:
                self._seed_one(item)

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> None:
        with self._lock:
            iid = self.iid(key)
            self._move(iid, to, at=at, author=author)
            self.issues[iid]["updated_at"] = iso(at)

    def connector(self) -> GitlabConnector:
        source = GitlabSource(kind="gitlab", project=PROJECT, url=HOST,
                              in_progress_labels=["Workflow::Doing"], page_size=self.page_size,
                              concurrency=self.concurrency)
        return GitlabConnector(self.name, source, token=self.token, sleep=self.sleep,
                               clock=self.clock, rng=random.Random(7),
                               policy=RetryPolicy(attempts=4))

    def key_of(self, key: str) -> str:
        return f"{self.name}#{self.iid(key)}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers: dict[str, str] = {}
        body: Any = {"message": f"{status} Server Error"}
        if status == 429:
            reset = int(self.now) + 60
            headers = {"content-type": "text/plain", "ratelimit-name":
                       "throttle_authenticated_api", "ratelimit-limit": "2000",
                       "ratelimit-observed": "2001", "ratelimit-remaining": "0",
                       "ratelimit-reset": str(reset)}
            body = "Retry later\n"
        elif status == 401:
            body = {"message": "401 Unauthorized"}
        if retry_after is not None:
            headers["retry-after"] = retry_after
        with self._lock:
            for _ in range(times):
                self.faults.append((status, headers, body))

    # -- extra levers ----------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def clock(self) -> float:
        return self.now

    def iid(self, key: str) -> int:
        return int(key.rsplit("-", 1)[-1].lstrip("#"))

    def add(self, payload: dict[str, Any], *, states: list[dict[str, Any]] | None = None,
            labels: list[dict[str, Any]] | None = None,
            notes: list[dict[str, Any]] | None = None) -> None:
        with self._lock:
            iid = payload["iid"]
            self.issues[iid] = payload
            self.state_events[iid] = list(states or [])
            self.label_events[iid] = list(labels or [])
            self.notes[iid] = list(notes or [])

    def calls(self, kind: str) -> list[httpx.Request]:
        """Requests whose path ends in ``/<kind>`` (issues, notes, resource_state_events)."""
        return [r for r in self.requests if r.url.raw_path.split(b"?")[0].endswith(
            f"/{kind}".encode())]

    # -- seeding ---------------------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _seed_one(self, item: SeedItem) -> None:
        iid = self.iid(item.key)
        self.add(issue(iid, title=item.title, created=item.created, updated=item.created,
                       assignees=[item.assignee] if item.assignee else []))
        if item.assignee:  # GitLab records an assignment only as a system note
            self.notes[iid].append(note(self._next_id(), iid, by="root", at=item.created,
                                        body=f"assigned to @{item.assignee}", system=True))
        if iid % 5 == 0:  # an unrelated label, added as GitLab records it
            self.issues[iid]["labels"].append("bug")
            self.label_events[iid].append(label_event(self._next_id(), iid, "bug", "add",
                                                      by="root", at=item.created))
        status = "To Do"
        for at, author, _from, to in item.history:
            self._move(iid, to, at=at, author=author)
            status = to
        if _category(status) != _category(item.status):
            self._move(iid, item.status, at=item.created, author="root")
        for at, author, body in item.comments:
            self.notes[iid].append(note(self._next_id(), iid, by=author, at=at, body=body))
            self.issues[iid]["user_notes_count"] += 1
        self.issues[iid]["updated_at"] = iso(item.updated)

    def _move(self, iid: int, to: str, *, at: datetime, author: str) -> None:
        """The events (and system notes) GitLab records for moving an issue to ``to``."""
        payload = self.issues[iid]
        has = DOING in payload["labels"]
        want = _category(to)
        notes = self.notes.setdefault(iid, [])
        if want == "done":
            if payload["state"] != "closed":
                self.state_events[iid].append(state_event(self._next_id(), iid, "closed",
                                                          by=author, at=at))
                notes.append(note(self._next_id(), iid, by=author, at=at, body="closed",
                                  system=True))
                payload.update(state="closed", closed_at=iso(at), closed_by=user(author))
            return
        if payload["state"] == "closed":
            self.state_events[iid].append(state_event(self._next_id(), iid, "reopened",
                                                      by=author, at=at))
            notes.append(note(self._next_id(), iid, by=author, at=at, body="reopened",
                              system=True))
            payload.update(state="opened", closed_at=None, closed_by=None)
        if (want == "in_progress") != has:
            action = "add" if want == "in_progress" else "remove"
            self.label_events[iid].append(label_event(self._next_id(), iid, DOING, action,
                                                      by=author, at=at))
            notes.append(note(self._next_id(), iid, by=author, at=at, system=True,
                              body=f"{'added' if action == 'add' else 'removed'} ~73 label"))
            payload["labels"] = ([*payload["labels"], DOING] if action == "add"
                                 else [n for n in payload["labels"] if n != DOING])

    # -- the server ----------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            if self.faults:
                status, headers, body = self.faults.popleft()
                return self._answer(status, body, headers)
            if self.token and request.headers.get("private-token") != self.token:
                return self._answer(401, {"message": "401 Unauthorized"})
            raw = request.url.raw_path.split(b"?")[0].decode()
            groups = "/api/v4/groups/"
            if raw.startswith(groups):
                group, _, rest = raw[len(groups):].partition("/")
                if group not in (str(GROUP_ID), quote(GROUP, safe="")):
                    return self._answer(404, {"message": "404 Group Not Found"})
                return self._group(request, rest.split("/"))
            prefix = "/api/v4/projects/"
            if not raw.startswith(prefix):
                return self._answer(404, {"error": "404 Not Found"})
            project, _, rest = raw[len(prefix):].partition("/")
            if project not in (str(PROJECT_ID), quote(PROJECT, safe="")):
                return self._answer(404, {"message": "404 Project Not Found"})
            parts = rest.split("/")
            if parts == ["milestones"] and request.method == "GET":
                return self._milestones(request, raw)
            if (len(parts) == 2 and parts[0] == "milestones" and parts[1].isdigit()
                    and request.method == "PUT"):
                return self._edit_milestone(request, int(parts[1]), "project_id")
            if parts == ["issues"]:
                return self._list(request)
            if (parts[:1] == ["issues"] and len(parts) == 3 and parts[2] == "links"
                    and parts[1].isdigit() and int(parts[1]) in self.issues):
                return self._links(int(parts[1]))
            if len(parts) == 3 and parts[0] == "issues" and parts[1].isdigit():
                iid = int(parts[1])
                table = {"resource_state_events": self.state_events,
                         "resource_label_events": self.label_events,
                         "notes": self.notes}.get(parts[2])
                if table is not None and iid in self.issues:
                    rows = list(table.get(iid, []))
                    if parts[2] == "notes" and request.url.params.get("sort", "desc") == "desc":
                        rows.reverse()
                    return self._offset(request, rows, raw)
            return self._answer(404, {"message": "404 Not found"})

    def block(self, key: str, *, by: str, at: datetime, by_user: str = "root") -> None:
        """Link ``key`` as blocked by ``by`` (``POST .../links`` with ``link_type``
        ``is_blocked_by``): both issues get a system note, which updates them, as GitLab
        does; each lists the other, the type seen from its side."""
        with self._lock:
            iid, blocker = self.iid(key), self.iid(by)
            when = iso(at)
            self.links.setdefault(iid, []).append((blocker, "is_blocked_by", when))
            self.links.setdefault(blocker, []).append((iid, "blocks", when))
            for one, other, text in ((iid, blocker, "marked this issue as blocked by"),
                                     (blocker, iid, "marked this issue as blocking")):
                self.notes.setdefault(one, []).append(note(
                    self._next_id(), one, by=by_user, at=at, body=f"{text} #{other}",
                    system=True))
                self.issues[one]["updated_at"] = when

    def _links(self, iid: int) -> httpx.Response:
        """``GET .../issues/:iid/links`` (``doc/api/issue_links.md``): the linked issues,
        each an issue with ``issue_link_id``, ``link_type`` and ``link_created_at``/
        ``link_updated_at``, oldest link first; not paged."""
        rows = []
        for n, (other, kind, when) in enumerate(self.links.get(iid, [])):
            linked = self.issues.get(other)
            if linked is None:
                continue
            row = {key: value for key, value in linked.items()
                   if key not in ("_links", "time_stats", "task_completion_status", "epic")}
            row.update(issue_link_id=100 + n, link_type=kind, link_created_at=when,
                       link_updated_at=when)
            rows.append(row)
        return self._answer(200, rows)

    def add_milestone(self, mid: int, title: str, *, due: str | None = None,
                      group: bool = False, state: str = "active") -> dict[str, Any]:
        with self._lock:
            payload = milestone(mid, title, due=due, group=group, state=state,
                                iid=mid % 100 or 1)
            self.milestones[mid] = payload
            return payload

    def edits(self) -> list[tuple[str, str, Any]]:
        """Every write request: (method, raw path, JSON body)."""
        return [(r.method, r.url.raw_path.decode(), json.loads(r.content or b"null"))
                for r in self.requests if r.method not in ("GET", "HEAD")]

    def _group(self, request: httpx.Request, parts: list[str]) -> httpx.Response:
        if (len(parts) == 2 and parts[0] == "milestones" and parts[1].isdigit()
                and request.method == "PUT"):
            return self._edit_milestone(request, int(parts[1]), "group_id")
        return self._answer(404, {"message": "404 Not found"})

    def _milestones(self, request: httpx.Request, path: str) -> httpx.Response:
        params = request.url.params
        ancestors = params.get("include_ancestors") == "true"
        rows = [m for m in self.milestones.values()
                if "project_id" in m or ancestors]
        if "state" in params:
            rows = [m for m in rows if m["state"] == params["state"]]
        if "title" in params:
            rows = [m for m in rows if m["title"] == params["title"]]
        rows.sort(key=lambda m: -m["id"])  # GitLab: newest first
        return self._offset(request, [json.loads(json.dumps(m)) for m in rows], path)

    def _edit_milestone(self, request: httpx.Request, mid: int, owner: str) -> httpx.Response:
        payload = self.milestones.get(mid)
        if payload is None or owner not in payload:
            return self._answer(404, {"message": "404 Milestone Not Found"})
        if not self.editable:
            return self._answer(403, {"message": "403 Forbidden"})
        try:
            body = json.loads(request.content)
        except ValueError:
            return self._answer(400, {"error": "The provided content-type is not supported."})
        if "due_date" in body:
            value = body["due_date"]
            if value is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(value)):
                return self._answer(400, {"error": "due_date is invalid"})
            payload["due_date"] = value
        for key in ("title", "description", "start_date"):
            if key in body:
                payload[key] = body[key]
        payload["updated_at"] = iso(datetime.fromtimestamp(self.now, UTC))
        return self._answer(200, json.loads(json.dumps(payload)))

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None,
                ) -> httpx.Response:
        base = {"content-type": "application/json", "ratelimit-limit": "2000",
                "ratelimit-remaining": "1999", "ratelimit-reset": str(int(self.now) + 60)}
        base.update(headers or {})
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return httpx.Response(status, headers=base, content=content)

    def _offset(self, request: httpx.Request, rows: list[dict[str, Any]], path: str,
                ) -> httpx.Response:
        params = request.url.params
        per_page = min(100, int(params.get("per_page", "20")))
        page = int(params.get("page", "1"))
        pages = max(1, -(-len(rows) // per_page))
        chunk = rows[(page - 1) * per_page: page * per_page]
        query = {k: v for k, v in params.multi_items() if k != "page"}

        def link(n: int) -> str:
            return f"<{HOST}{path}?{urlencode({**query, 'page': n, 'per_page': per_page})}>"

        headers = {"x-page": str(page), "x-per-page": str(per_page), "x-total": str(len(rows)),
                   "x-total-pages": str(pages), "x-prev-page": str(page - 1) if page > 1 else "",
                   "x-next-page": str(page + 1) if page < pages else ""}
        links = [f'{link(1)}; rel="first"', f'{link(pages)}; rel="last"']
        if page < pages:
            links.insert(0, f'{link(page + 1)}; rel="next"')
        if page > 1:
            links.insert(0, f'{link(page - 1)}; rel="prev"')
        headers["link"] = ", ".join(links)
        return self._answer(200, chunk, headers)

    def _list(self, request: httpx.Request) -> httpx.Response:
        params = request.url.params
        rows = list(self.issues.values())
        if "updated_after" in params:
            after = parse(params["updated_after"])
            rows = [p for p in rows if parse(p["updated_at"]) >= after]
        field = params.get("order_by", "created_at")
        descending = params.get("sort", "desc") == "desc"
        rows.sort(key=lambda p: (p[field], p["id"]), reverse=descending)
        rows = [json.loads(json.dumps(p)) for p in rows]
        path = request.url.raw_path.split(b"?")[0].decode()
        if params.get("pagination") != "keyset":
            return self._offset(request, rows, path)
        if not self.keyset:
            return self._answer(405, {"error": "Keyset pagination is not yet available for "
                                               "this type of request"})
        per_page = min(100, int(params.get("per_page", "20")))
        if "cursor" in params:
            mark = json.loads(base64.urlsafe_b64decode(params["cursor"]))
            key = (mark["value"], mark["id"])
            rows = [p for p in rows
                    if ((p[field], p["id"]) < tuple(key) if descending
                        else (p[field], p["id"]) > tuple(key))]
        chunk = rows[:per_page]
        headers: dict[str, str] = {}
        if len(rows) > per_page:
            last = chunk[-1]
            cursor = base64.urlsafe_b64encode(json.dumps(
                {"value": last[field], "id": last["id"]}).encode()).decode()
            query = {k: v for k, v in params.multi_items() if k != "cursor"}
            headers["link"] = f'<{HOST}{path}?{urlencode({**query, "cursor": cursor})}>; rel="next"'
        return self._answer(200, chunk, headers)


def activated(fake: FakeGitlab) -> Iterator[FakeGitlab]:
    """A fixture body: the fake answers every request to its host while in use."""
    with fake.router:
        yield fake
