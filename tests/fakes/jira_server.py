"""A local Jira that speaks the real wire format, for offline connector tests.

``FakeJira`` runs a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (random port) in a thread
and answers like Jira Cloud (``deployment="cloud"``) or Data Center
(``deployment="datacenter"``). Payload shapes are copied from the real responses in
``shared/fixtures/jira``, and checked against them: a Cloud search answer's issue and an
issue's comments have every key and type of airbyte's recordings (MIT;
``tests/test_recorded_shapes.py``). It keeps a small issue database that tests seed and
mutate, logs every request, and injects faults::

    with FakeJira(deployment="cloud") as jira:            # or "datacenter"
        jira.seed(250, project="WEB")                       # WEB-1..WEB-250, a minute apart
        jira.transition("WEB-1", "In Progress", at=T, author="alice")
        jira.add_comment("WEB-1", "on it", at=T, author="alice")
        jira.inject("/rest/api/3/search/jql", status=429, retry_after="3")
        clock = FakeClock()
        with connector_for(jira, clock=clock, page_size=100) as connector:
            pages = list(connector.fetch(Window(since=None, until=NOW)))
        assert jira.calls("/rest/api/3/search/jql")[0].body["jql"] == "..."
        assert clock.waits[0] >= 3

Cloud: ``/rest/api/3/search/jql`` (``nextPageToken``, ``isLast``, no total, ids only unless
``fields`` is given, unbounded JQL refused); ``/rest/api/{2,3}/search`` answer 410 Gone;
``/rest/api/3/changelog/bulkfetch``; ADF bodies on v3. Data Center: ``/rest/api/2/search``
with ``startAt``/``maxResults``/``total``, usernames, Bearer tokens, an Epic Link field.
Both: ``serverInfo``, ``field``, ``status``, ``issue/{key}/changelog``,
``issue/{key}/comment``; ``expand=changelog`` and the ``comment`` field are truncated like
real Jira (``embedded_histories``/``embedded_comments`` entries, with the true ``total``).
``issuelinks`` carry Jira's Blocks type (``FakeJira.block``) in the shape of Atlassian's
search example (``search_jql_200.json``), alike on both; a ``duedate`` edit leaves the
changelog item Jira writes (``from``/``to`` ISO days, ``fromString``/``toString``
``2027-01-15 00:00:00.0``; Data Center's items without ``fieldId``).

The JQL it understands is small but real: AND/OR/NOT, parentheses, ``=``, ``!=``, ``<``,
``<=``, ``>``, ``>=``, ``~``, ``IN``, ``NOT IN``, ``IS [NOT] EMPTY`` over project, key,
parent, "Epic Link", labels, status, statusCategory, issuetype, assignee, reporter,
summary, created, updated, fixVersion; dates as epoch milliseconds or "yyyy-MM-dd[ HH:mm]"
(UTC); ``ORDER BY`` updated, created, key.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import re
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from http.server import BaseHTTPRequestHandler
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tests.fakes.local import LocalServer, QuietServer

Deployment = Literal["cloud", "datacenter"]

DEFAULT_STATUSES: tuple[tuple[str, str, str], ...] = (
    ("1", "To Do", "new"),
    ("3", "In Progress", "indeterminate"),
    ("10001", "In Review", "indeterminate"),
    ("10002", "Done", "done"),
    ("10003", "Archived", "undefined"),
)
_CATEGORIES = {
    "undefined": (1, "No Category", "medium-gray"),
    "new": (2, "To Do", "blue-gray"),
    "done": (3, "Done", "green"),
    "indeterminate": (4, "In Progress", "yellow"),
}
GONE = (
    "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
    "A full migration guideline is available at "
    "https://developer.atlassian.com/changelog/#CHANGE-2046"
)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
"""Default creation time of seeded issues."""


# -- the issue database --------------------------------------------------------------------


@dataclass
class FakeUser:
    account_id: str
    """Cloud accountId, or the Data Center username."""
    display_name: str
    email: str | None = None
    key: str = ""
    """Data Center user key (``JIRAUSER10100``)."""


@dataclass
class FakeHistory:
    id: str
    created: datetime
    author: str | None
    items: list[dict[str, Any]]


@dataclass
class FakeComment:
    id: str
    created: datetime
    author: str | None
    body: str | dict[str, Any]
    """Plain text, or an ADF document (served as is on v3, flattened on v2)."""


@dataclass
class FakeIssue:
    id: str
    key: str
    project: str
    summary: str
    status: str
    issuetype: str
    created: datetime
    updated: datetime
    assignee: str | None = None
    reporter: str | None = None
    labels: list[str] = field(default_factory=list)
    parent: str | None = None
    """Cloud parent (epic or parent issue); on Data Center only a sub-task's parent."""
    epic: str | None = None
    """The epic: ``parent`` on Cloud, the Epic Link field on Data Center."""
    points: float | str | None = None
    fix_versions: list[str] = field(default_factory=list)
    duedate: date | None = None
    resolutiondate: datetime | None = None
    description: str = ""
    histories: list[FakeHistory] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)
    """Keys of the issues this one "is blocked by" (Jira's Blocks link type): see ``block``."""
    blocks: list[str] = field(default_factory=list)
    """Keys of the issues this one blocks (the other side of ``blocked_by``)."""
    hidden: bool = False
    """Not yet visible to search (Cloud's eventual consistency): see ``FakeJira.hide``."""
    custom: dict[str, Any] = field(default_factory=dict)
    """Select-list custom fields by id, as rendered (see ``FakeJira.select``)."""


@dataclass
class Fault:
    """What to do instead of (or before) answering a matching request."""

    path: str
    """An exact path or a glob (``/rest/api/2/issue/*/changelog``), without context path."""
    method: str | None = None
    status: int | None = None
    retry_after: str | None = None
    action: Literal["respond", "reset", "truncate", "cut", "delay", "stall"] = "respond"
    delay: float = 0.0
    times: int | None = 1
    """How many matching requests it affects; None: all of them."""
    when: Callable[[RecordedRequest], bool] | None = None

    def matches(self, request: RecordedRequest) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.method and self.method != request.method:
            return False
        if request.path != self.path and not fnmatch.fnmatchcase(request.path, self.path):
            return False
        return self.when is None or self.when(request)


@dataclass
class RecordedRequest:
    method: str
    path: str
    """Without the context path."""
    params: dict[str, str]
    """Query parameters (the last value of each)."""
    body: Any
    at: datetime
    monotonic: float
    auth: str
    """The Authorization scheme only (``Basic``, ``Bearer`` or ``""``): never the secret."""
    status: int = 0
    """The HTTP status answered (-1: connection reset)."""
    response: Any = None
    """The JSON answered (before any truncation)."""
    fault: str | None = None


# -- JQL -------------------------------------------------------------------------------------


class JqlError(ValueError):
    pass


_TOKEN = re.compile(
    r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|=|>|<|~|!~)"""
    r"""|(?P<punct>[(),])|(?P<word>[^\s()",=!<>~']+))"""
)
_UNESCAPE = {"n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str
    quoted: bool = False


def _tokens(jql: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    while pos < len(jql):
        if jql[pos:].strip() == "":
            break
        match = _TOKEN.match(jql, pos)
        if not match:
            raise JqlError(f"Error in the JQL Query: unexpected character at {pos}")
        pos = match.end()
        if match.group("str"):
            raw = match.group("str")[1:-1]
            text = re.sub(r"\\(.)", lambda m: _UNESCAPE.get(m.group(1), m.group(1)), raw)
            out.append(_Tok("value", text, quoted=True))
        elif match.group("op"):
            out.append(_Tok("op", match.group("op")))
        elif match.group("punct"):
            out.append(_Tok(match.group("punct"), match.group("punct")))
        else:
            out.append(_Tok("value", match.group("word")))
    return out


Predicate = Callable[["FakeIssue"], bool]


class _Parser:
    def __init__(self, jql: str, resolve: Callable[[str], Callable[[FakeIssue], Any]]):
        self.toks = _tokens(jql)
        self.i = 0
        self.resolve = resolve

    def peek_word(self, *words: str) -> bool:
        tok = self.toks[self.i] if self.i < len(self.toks) else None
        return bool(tok and tok.kind == "value" and not tok.quoted and tok.text.lower() in words)

    def take(self) -> _Tok:
        if self.i >= len(self.toks):
            raise JqlError("Error in the JQL Query: the query ended too early")
        tok = self.toks[self.i]
        self.i += 1
        return tok

    def parse(self) -> tuple[Predicate | None, list[tuple[str, bool]]]:
        where = None if self.peek_word("order") or not self.toks else self.or_expr()
        order: list[tuple[str, bool]] = []
        if self.peek_word("order"):
            self.take()
            if not self.peek_word("by"):
                raise JqlError("Error in the JQL Query: expecting 'by' after 'order'")
            self.take()
            while True:
                name = self.take().text.lower()
                asc = True
                if self.peek_word("asc", "desc"):
                    asc = self.take().text.lower() == "asc"
                order.append((name, asc))
                if self.i < len(self.toks) and self.toks[self.i].kind == ",":
                    self.take()
                    continue
                break
        if self.i != len(self.toks):
            raise JqlError(f"Error in the JQL Query: unexpected '{self.toks[self.i].text}'")
        return where, order

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.peek_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda i: any(p(i) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.peek_word("and"):
            self.take()
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda i: all(p(i) for p in parts))

    def not_expr(self) -> Predicate:
        if self.peek_word("not"):
            self.take()
            inner = self.not_expr()
            return lambda i: not inner(i)
        if self.i < len(self.toks) and self.toks[self.i].kind == "(":
            self.take()
            inner = self.or_expr()
            if self.take().kind != ")":
                raise JqlError("Error in the JQL Query: expecting ')'")
            return inner
        return self.clause()

    def values(self) -> list[str]:
        if self.take().kind != "(":
            raise JqlError("Error in the JQL Query: expecting '(' after IN")
        out: list[str] = []
        while True:
            tok = self.take()
            if tok.kind != "value":
                raise JqlError(f"Error in the JQL Query: unexpected '{tok.text}'")
            out.append(tok.text)
            sep = self.take()
            if sep.kind == ")":
                return out
            if sep.kind != ",":
                raise JqlError("Error in the JQL Query: expecting ',' or ')'")

    def clause(self) -> Predicate:
        name = self.take()
        if name.kind != "value":
            raise JqlError(f"Error in the JQL Query: unexpected '{name.text}'")
        getter = self.resolve(name.text)
        if self.peek_word("in"):
            self.take()
            wanted = self.values()
            return lambda i: _any_match(getter(i), wanted)
        if self.peek_word("not"):
            self.take()
            if self.peek_word("in"):
                self.take()
                wanted = self.values()
                return lambda i: not _any_match(getter(i), wanted)
            raise JqlError("Error in the JQL Query: expecting IN after NOT")
        if self.peek_word("is"):
            self.take()
            negate = self.peek_word("not")
            if negate:
                self.take()
            if not self.peek_word("empty", "null"):
                raise JqlError("Error in the JQL Query: expecting EMPTY")
            self.take()
            return lambda i: _is_empty(getter(i)) != negate
        op = self.take()
        if op.kind != "op":
            raise JqlError(f"Error in the JQL Query: expecting an operator, got '{op.text}'")
        value = self.take()
        if value.kind != "value":
            raise JqlError(f"Error in the JQL Query: unexpected '{value.text}'")
        return _compare(getter, op.text, value.text)


def _norm(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _any_match(actual: object, wanted: list[str]) -> bool:
    values = actual if isinstance(actual, list) else [actual]
    if any(isinstance(v, datetime) for v in values):
        return any(v == _as_time(w) for v in values for w in wanted)
    return any(_norm(v) == _norm(w) for v in values for w in wanted)


def _is_empty(actual: object) -> bool:
    return actual is None or actual == [] or actual == ""


def _as_time(text: str) -> datetime:
    if re.fullmatch(r"-?\d+", text):  # epoch milliseconds, as Perceval sends (`> 0`)
        return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
    for pattern in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        with contextlib.suppress(ValueError):
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
    raise JqlError(f"Date value '{text}' for field is invalid.")


def _compare(getter: Callable[[FakeIssue], Any], op: str, text: str) -> Predicate:
    def test(issue: FakeIssue) -> bool:
        actual = getter(issue)
        values = actual if isinstance(actual, list) else [actual]
        if op in ("~", "!~"):
            hit = any(isinstance(v, str) and text.lower() in v.lower() for v in values)
            return hit if op == "~" else not hit
        if op in ("=", "!="):
            hit = _any_match(actual, [text])
            return hit if op == "=" else (not hit and not _is_empty(actual))
        if actual is None:
            return False
        bound: Any = _as_time(text) if isinstance(actual, datetime) else text
        if isinstance(actual, float | int):
            bound = float(text)
        return {
            ">": actual > bound,
            ">=": actual >= bound,
            "<": actual < bound,
            "<=": actual <= bound,
        }[op]

    return test


# -- the server ------------------------------------------------------------------------------


class FakeJira(LocalServer):
    """A Jira Cloud or Data Center site on 127.0.0.1, for tests. Use as a context manager."""

    def __init__(
        self,
        *,
        deployment: Deployment = "cloud",
        email: str = "alice@northwind.example",
        token: str = "s3cret-token",
        context_path: str = "",
        points_field: str = "customfield_10042",
        epic_link_field: str = "customfield_10700",
        points_field_name: str | None = None,
        embedded_histories: int = 5,
        embedded_comments: int = 5,
        search_cap: int | None = None,
        changelog_cap: int = 100,
        comment_cap: int = 100,
        bulkfetch_cap: int = 1000,
        statuses: Iterable[tuple[str, str, str]] = DEFAULT_STATUSES,
        tz: tzinfo = timezone(timedelta(hours=-7)),
        server_type: str = "Server",
    ) -> None:
        self.deployment: Deployment = deployment
        self.cloud = deployment == "cloud"
        self.email = email
        self.token = token
        self.context_path = context_path.rstrip("/")
        self.points_field = points_field
        self.epic_link_field = epic_link_field
        self.points_field_name = points_field_name or (
            "Story point estimate" if deployment == "cloud" else "Story Points"
        )
        self.embedded_histories = embedded_histories
        self.embedded_comments = embedded_comments
        self.search_cap = search_cap or (100 if self.cloud else 1000)
        self.changelog_cap = changelog_cap
        self.comment_cap = comment_cap
        self.bulkfetch_cap = bulkfetch_cap
        self.statuses = [(i, n, c) for i, n, c in statuses]
        self.tz = tz
        self.server_type = server_type
        self.editable = True
        """False: every edit is refused with 403 (the token lacks Edit Issues)."""
        self.deleted_users: set[str] = set()
        """Accounts whose lookup answers 404 (deleted users; their history stays)."""
        self.select_fields: dict[str, str] = {}
        """Select-list custom fields the site has: id -> name (``select`` sets one)."""
        self.edit_screen = {"duedate", "summary", "labels"}
        """The fields an edit may set (Jira refuses others: not on the screen)."""
        self.issues: dict[str, FakeIssue] = {}
        self.users: dict[str, FakeUser] = {}
        self.faults: list[Fault] = []
        self.hooks: list[Callable[[RecordedRequest], None]] = []
        self.drift: dict[str, Callable[[dict[str, Any]], None]] = {}
        """Issue key to a function that mangles its rendered JSON (payload drift)."""
        self._log: list[RecordedRequest] = []
        self._lock = threading.RLock()
        self._closing = threading.Event()
        self._next_id = 10000
        self._next_history = 20000
        self._next_comment = 30000

    # -- lifecycle --

    def handler(self) -> type[BaseHTTPRequestHandler]:
        return _Handler

    def close(self) -> None:
        self._closing.set()  # stalled answers end at once
        super().close()

    @property
    def url(self) -> str:
        return f"{self.address}{self.context_path}"

    def source_config(self, **overrides: Any) -> Any:
        """A ``JiraSource`` pointing here, with matching auth settings."""
        from stratmap.models.plan import JiraSource

        values: dict[str, Any] = {
            "kind": "jira",
            "url": self.url,
            "email": self.email if self.cloud else None,
            "token": "env:JIRA_API_TOKEN",
            "scope": "project = WEB",
        }
        values.update(overrides)
        return JiraSource.model_validate(values)

    # -- seeding and mutating --

    def add_user(self, account_id: str, display_name: str, email: str | None = None) -> FakeUser:
        with self._lock:
            user = FakeUser(
                account_id, display_name, email, key=f"JIRAUSER{10100 + len(self.users)}"
            )
            self.users[account_id] = user
            return user

    def add_issue(
        self,
        key: str,
        *,
        summary: str | None = None,
        status: str = "To Do",
        issuetype: str = "Task",
        created: datetime = T0,
        updated: datetime | None = None,
        assignee: str | None = None,
        reporter: str | None = None,
        labels: Iterable[str] = (),
        parent: str | None = None,
        epic: str | None = None,
        points: float | str | None = None,
        fix_versions: Iterable[str] = (),
        duedate: date | None = None,
        description: str = "",
    ) -> FakeIssue:
        with self._lock:
            self._status_id(status)
            for user in (assignee, reporter):
                self._user(user)
            issue = FakeIssue(
                id=str(self._next_id),
                key=key,
                project=key.rsplit("-", 1)[0],
                summary=summary if summary is not None else f"Issue {key}",
                status=status,
                issuetype=issuetype,
                created=created,
                updated=updated or created,
                assignee=assignee,
                reporter=reporter,
                labels=list(labels),
                parent=parent,
                epic=epic,
                points=points,
                fix_versions=list(fix_versions),
                duedate=duedate,
                description=description,
            )
            self._next_id += 1
            self.issues[key] = issue
            return issue

    def seed(
        self,
        count: int,
        *,
        project: str = "WEB",
        start: datetime = T0,
        step: timedelta = timedelta(minutes=1),
        **fields: Any,
    ) -> list[str]:
        """``count`` issues PROJECT-1.., created (and updated) ``step`` apart."""
        keys = []
        for n in range(1, count + 1):
            key = f"{project}-{n}"
            self.add_issue(key, created=start + step * (n - 1), **fields)
            keys.append(key)
        return keys

    def transition(
        self, key: str, to: str, *, at: datetime, author: str | None = None, late: bool = False
    ) -> FakeHistory:
        """Move an issue to status ``to`` (a changelog entry); ``late``: hide it from search."""
        with self._lock:
            issue = self.issues[key]
            old, new = self._status_id(issue.status), self._status_id(to)
            history = self._history(
                issue,
                at,
                author,
                [
                    {
                        "field": "status",
                        "fieldtype": "jira",
                        "fieldId": "status",
                        "from": old,
                        "fromString": issue.status,
                        "to": new,
                        "toString": to,
                    }
                ],
            )
            issue.status = to
            if self._category(to) == "done":
                issue.resolutiondate = at
            elif issue.resolutiondate is not None:
                issue.resolutiondate = None
            issue.updated = at
            issue.hidden = issue.hidden or late
            return history

    def edit(self, key: str, *, at: datetime, author: str | None = None, **changes: Any) -> None:
        """Change fields (``summary``, ``labels``, ``assignee``...), with a changelog entry."""
        with self._lock:
            issue = self.issues[key]
            items = []
            for name, value in changes.items():
                before = getattr(issue, name)
                setattr(issue, name, value)
                if name == "assignee":
                    items.append(self._assignee_item(before, value))
                    continue
                if name == "duedate":  # ISO days in from/to, "2027-01-15 00:00:00.0" shown
                    items.append({"field": "duedate", "fieldtype": "jira", "fieldId": "duedate",
                                  "from": before.isoformat() if before else None,
                                  "fromString": f"{before} 00:00:00.0" if before else None,
                                  "to": value.isoformat() if value else None,
                                  "toString": f"{value} 00:00:00.0" if value else None})
                    if not self.cloud:  # Data Center's items carry no fieldId
                        items[-1].pop("fieldId")
                    continue
                items.append(
                    {
                        "field": name,
                        "fieldtype": "jira",
                        "fieldId": name,
                        "from": None,
                        "fromString": None if before is None else str(before),
                        "to": None,
                        "toString": None if value is None else str(value),
                    }
                )
            self._history(issue, at, author, items)
            issue.updated = at

    def block(self, key: str, *, by: str, at: datetime, author: str | None = None) -> None:
        """Link ``key`` as blocked by ``by`` (Jira's Blocks type): both issues list the link
        in ``issuelinks`` (``inwardIssue`` on the blocked one, ``outwardIssue`` on the
        blocker), and each gets a "Link" changelog entry and is updated, as Jira does."""
        with self._lock:
            blocked, blocker = self.issues[key], self.issues[by]
            blocked.blocked_by.append(by)
            blocker.blocks.append(key)
            for one, other, text in ((blocked, by, "This issue is blocked by"),
                                     (blocker, key, "This issue blocks")):
                self._history(one, at, author, [{
                    "field": "Link", "fieldtype": "jira", "from": None, "fromString": None,
                    "to": other, "toString": f"{text} {other}"}])
                one.updated = at

    def _links(self, issue: FakeIssue, version: str) -> list[dict[str, Any]]:
        """``issuelinks`` as Jira renders them (the shape of Atlassian's search example):
        the type's ``name``/``inward``/``outward``, the other issue with its status."""
        api = self._api(version)
        kind = {"id": "10000", "name": "Blocks", "inward": "is blocked by",
                "outward": "blocks", "self": f"{api}/issueLinkType/10000"}
        pairs = [("inwardIssue", k) for k in issue.blocked_by]
        pairs += [("outwardIssue", k) for k in issue.blocks]
        links = []
        for n, (side, key) in enumerate(pairs):
            other = self.issues[key]
            links.append({"id": str(10100 + n), "self": f"{api}/issueLink/{10100 + n}",
                          "type": dict(kind), side: {
                              "id": other.id, "key": other.key,
                              "self": f"{api}/issue/{other.id}",
                              "fields": {"summary": other.summary,
                                         "status": self.render_status(other.status, version)}}})
        return links

    def _assignee_item(self, before: str | None, after: str | None) -> dict[str, Any]:
        """A changelog item for an assignee change, as Jira writes it: Cloud names users by
        accountId in ``from``/``to`` (and ``tmpFromAccountId``/``tmpToAccountId``), Data
        Center by user key (``JIRAUSER10100``); ``fromString``/``toString`` are display
        names."""
        def side(account: str | None) -> tuple[str | None, str | None]:
            user = self._user(account)
            if user is None:
                return None, None
            return (user.account_id if self.cloud else user.key), user.display_name

        old_id, old_name = side(before)
        new_id, new_name = side(after)
        item: dict[str, Any] = {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
                                "from": old_id, "fromString": old_name,
                                "to": new_id, "toString": new_name}
        if self.cloud:
            item.update(tmpFromAccountId=old_id, tmpToAccountId=new_id)
        return item

    def add_comment(
        self, key: str, body: str | dict[str, Any], *, at: datetime, author: str | None = None
    ) -> FakeComment:
        with self._lock:
            issue = self.issues[key]
            self._user(author)
            comment = FakeComment(str(self._next_comment), at, author, body)
            self._next_comment += 1
            issue.comments.append(comment)
            issue.updated = max(issue.updated, at)
            return comment

    def delete(self, key: str) -> None:
        with self._lock:
            del self.issues[key]

    def hide(self, key: str) -> None:
        """Keep an issue out of search results until :meth:`reveal` (a "late" update)."""
        with self._lock:
            self.issues[key].hidden = True

    def reveal(self, key: str | None = None) -> None:
        with self._lock:
            for issue in self.issues.values():
                if key is None or issue.key == key:
                    issue.hidden = False

    # -- faults and the request log --

    def inject(
        self,
        path: str,
        *,
        status: int | None = None,
        retry_after: str | None = None,
        action: Literal["respond", "reset", "truncate", "cut", "delay", "stall"] | None = None,
        delay: float = 0.0,
        times: int | None = 1,
        method: str | None = None,
        when: Callable[[RecordedRequest], bool] | None = None,
    ) -> Fault:
        """Make the next ``times`` requests to ``path`` fail.

        ``status`` answers that HTTP status (with ``Retry-After`` if given); ``reset`` drops
        the connection (TCP RST); ``truncate`` sends half the JSON body with a matching
        Content-Length; ``cut`` announces the full body but closes half way; ``stall`` sends
        half the body, then waits ``delay`` seconds before closing (a read timeout mid-page);
        ``delay`` waits ``delay`` seconds, then answers normally.
        """
        if action is None:
            action = "delay" if delay and status is None else "respond"
        fault = Fault(path, method, status, retry_after, action, delay, times, when)
        with self._lock:
            self.faults.append(fault)
        return fault

    def on_request(self, hook: Callable[[RecordedRequest], None]) -> None:
        """Call ``hook`` before answering each request (to change the site mid-sync)."""
        self.hooks.append(hook)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def calls(self, path: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        """Logged requests, optionally only those to ``path`` (exact or glob) / ``method``."""
        return [
            r
            for r in self.requests
            if (path is None or r.path == path or fnmatch.fnmatchcase(r.path, path))
            and (method is None or r.method == method)
        ]

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    # -- internals: lookups --

    def _user(self, account_id: str | None) -> FakeUser | None:
        if account_id is None:
            return None
        if account_id not in self.users:
            self.add_user(account_id, account_id.replace(".", " ").title())
        return self.users[account_id]

    def _status_id(self, name: str) -> str:
        for ident, status, _ in self.statuses:
            if status == name:
                return ident
        raise KeyError(f"the fake has no status {name!r}")

    def _category(self, name: str) -> str:
        return next(c for _, n, c in self.statuses if n == name)

    def _history(
        self, issue: FakeIssue, at: datetime, author: str | None, items: list[dict[str, Any]]
    ) -> FakeHistory:
        self._user(author)
        history = FakeHistory(str(self._next_history), at, author, items)
        self._next_history += 1
        issue.histories.append(history)
        return history

    def _field_getter(self, name: str) -> Callable[[FakeIssue], Any]:
        lowered = name.lower()
        cf = re.fullmatch(r"cf\[(\d+)\]", lowered)
        if cf:
            lowered = f"customfield_{cf.group(1)}"
        getters: dict[str, Callable[[FakeIssue], Any]] = {
            "project": lambda i: i.project,
            "key": lambda i: i.key,
            "issuekey": lambda i: i.key,
            "id": lambda i: i.id,
            "labels": lambda i: i.labels,
            "status": lambda i: i.status,
            "statuscategory": lambda i: [
                self._category(i.status),
                _CATEGORIES[self._category(i.status)][1],
            ],
            "issuetype": lambda i: i.issuetype,
            "type": lambda i: i.issuetype,
            "assignee": lambda i: i.assignee,
            "reporter": lambda i: i.reporter,
            "summary": lambda i: i.summary,
            "text": lambda i: i.summary,
            "created": lambda i: i.created,
            "updated": lambda i: i.updated,
            "resolved": lambda i: i.resolutiondate,
            "fixversion": lambda i: i.fix_versions,
            "parent": (lambda i: i.parent or i.epic) if self.cloud else (lambda i: i.parent),
        }
        if not self.cloud:
            getters["epic link"] = lambda i: i.epic
            getters[self.epic_link_field] = lambda i: i.epic
        if lowered not in getters:
            raise JqlError(
                f"Field '{name}' does not exist or you do not have permission to view it."
            )
        return getters[lowered]

    def search(self, jql: str, *, require_bound: bool = False) -> list[FakeIssue]:
        """The visible issues matching ``jql``, ordered as it says."""
        where, order = _Parser(jql, self._field_getter).parse()
        if where is None and require_bound:
            raise JqlError(
                "Unbounded JQL queries are not allowed here. Please add a search restriction "
                "to your query."
            )
        with self._lock:
            found = [
                i for i in self.issues.values() if not i.hidden and (where is None or where(i))
            ]
        found.sort(key=lambda i: int(i.id))
        for name, asc in reversed(order or [("key", False)]):
            if name == "key":
                found.sort(key=lambda i: (i.project, int(i.key.rsplit("-", 1)[1])), reverse=not asc)
            elif name in ("updated", "created"):
                found.sort(key=lambda i, n=name: getattr(i, n), reverse=not asc)
            else:
                raise JqlError(f"Not able to sort using field '{name}'.")
        return found

    # -- internals: rendering --

    def time(self, moment: datetime | None) -> str | None:
        if moment is None:
            return None
        local = moment.astimezone(self.tz)
        return (
            local.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{local.microsecond // 1000:03d}"
            + local.strftime("%z")
        )

    def _api(self, version: str) -> str:
        return f"{self.url}/rest/api/{version}"

    def render_user(self, account_id: str | None, version: str) -> dict[str, Any] | None:
        user = self._user(account_id)
        if user is None:
            return None
        avatars = {
            size: f"https://avatar.example/{user.account_id}?s={size.split('x')[0]}"
            for size in ("48x48", "24x24", "16x16", "32x32")
        }
        if self.cloud:
            out: dict[str, Any] = {
                "self": f"{self._api(version)}/user?accountId={user.account_id}",
                "accountId": user.account_id,
            }
            if user.email:
                out["emailAddress"] = user.email
            out.update(
                avatarUrls=avatars,
                displayName=user.display_name,
                active=True,
                timeZone="Europe/London",
                accountType="atlassian",
            )
            return out
        return {
            "self": f"{self._api(version)}/user?username={user.account_id}",
            "name": user.account_id,
            "key": user.key,
            "emailAddress": user.email or "",
            "avatarUrls": avatars,
            "displayName": user.display_name,
            "active": True,
            "timeZone": "Europe/London",
        }

    def render_status(self, name: str, version: str) -> dict[str, Any]:
        ident = self._status_id(name)
        key = self._category(name)
        cat_id, cat_name, color = _CATEGORIES.get(key, (99, key, "medium-gray"))
        return {
            "self": f"{self._api(version)}/status/{ident}",
            "description": "",
            "iconUrl": f"{self.url}/images/icons/statuses/generic.png",
            "name": name,
            "id": ident,
            "statusCategory": {
                "self": f"{self._api(version)}/statuscategory/{cat_id}",
                "id": cat_id,
                "key": key,
                "colorName": color,
                "name": cat_name,
            },
        }

    def render_body(self, body: str | dict[str, Any], version: str) -> Any:
        if version == "3":
            if isinstance(body, dict):
                return body
            return {
                "version": 1,
                "type": "doc",
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": line}]}
                    for line in body.split("\n")
                    if line
                ],
            }
        if isinstance(body, dict):
            return "\n".join(_adf_strings(body))
        return body

    def render_history(
        self, history: FakeHistory, version: str, *, epoch_ms: bool = False
    ) -> dict[str, Any]:
        created: Any = self.time(history.created)
        if epoch_ms:
            created = int(history.created.timestamp() * 1000)
        out: dict[str, Any] = {"id": history.id}
        author = self.render_user(history.author, version)
        if author:
            out["author"] = author
        out["created"] = created
        out["items"] = [dict(item) for item in history.items]
        if not self.cloud:
            for item in out["items"]:
                item.pop("fieldId", None)
        return out

    def render_comment(
        self, issue: FakeIssue, comment: FakeComment, version: str
    ) -> dict[str, Any]:
        author = self.render_user(comment.author, version)
        out = {
            "self": f"{self._api(version)}/issue/{issue.id}/comment/{comment.id}",
            "id": comment.id,
            "author": author,
            "body": self.render_body(comment.body, version),
            "updateAuthor": author,
            "created": self.time(comment.created),
            "updated": self.time(comment.created),
        }
        if self.cloud:
            out["jsdPublic"] = True
        return out

    def render_issue(
        self, issue: FakeIssue, version: str, fields: list[str] | None, expand: set[str]
    ) -> dict[str, Any]:
        everything = self._all_fields(issue, version)
        if fields is None or "*all" in fields or "*navigable" in fields:
            chosen = dict(everything)
        else:
            chosen = {name: everything[name] for name in fields if name in everything}
        for name in fields or []:
            if name.startswith("-"):
                chosen.pop(name[1:], None)
        out: dict[str, Any] = {
            "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
            "id": issue.id,
            "self": f"{self._api(version)}/issue/{issue.id}",
            "key": issue.key,
            "fields": chosen,
        }
        if "changelog" in expand:
            histories = issue.histories[: self.embedded_histories]
            out["changelog"] = {
                "startAt": 0,
                "maxResults": len(histories),
                "total": len(issue.histories),
                "histories": [self.render_history(h, version) for h in histories],
            }
        mangle = self.drift.get(issue.key)
        if mangle is not None:
            mangle(out)
        return out

    def _all_fields(self, issue: FakeIssue, version: str) -> dict[str, Any]:
        api = self._api(version)
        parent_key = (issue.parent or issue.epic) if self.cloud else issue.parent
        parent = None
        if parent_key:
            target = self.issues.get(parent_key)
            parent = {
                "id": target.id if target else "0",
                "key": parent_key,
                "self": f"{api}/issue/{target.id if target else 0}",
                "fields": {
                    "summary": target.summary if target else "",
                    "status": self.render_status(target.status, version) if target else None,
                },
            }
        shown = issue.comments[: self.embedded_comments]
        fields: dict[str, Any] = {
            "statuscategorychangedate": self.time(issue.updated),
            "issuetype": {
                "self": f"{api}/issuetype/10001",
                "id": "10001",
                "description": "",
                "iconUrl": f"{self.url}/images/icons/issuetypes/task.svg",
                "name": issue.issuetype,
                "subtask": issue.issuetype.lower() in ("sub-task", "subtask"),
                "hierarchyLevel": 1 if issue.issuetype == "Epic" else 0,
            },
            "project": {
                "self": f"{api}/project/{issue.project}",
                "id": "10016",
                "key": issue.project,
                "name": issue.project.title(),
                "projectTypeKey": "software",
                "simplified": False,
                "avatarUrls": {size: f"{self.url}/rest/api/2/universal_avatar/view/type/"
                               f"project/avatar/10400?size={name}"
                               for size, name in (("48x48", "large"), ("24x24", "small"),
                                                  ("16x16", "xsmall"), ("32x32", "medium"))},
            },
            "fixVersions": [
                {
                    "self": f"{api}/version/{10200 + n}",
                    "id": str(10200 + n),
                    "description": "",
                    "name": name,
                    "archived": False,
                    "released": False,
                }
                for n, name in enumerate(issue.fix_versions)
            ],
            "resolution": {"id": "10000", "name": "Done"} if issue.resolutiondate else None,
            "resolutiondate": self.time(issue.resolutiondate),
            "created": self.time(issue.created),
            "updated": self.time(issue.updated),
            "priority": {"self": f"{api}/priority/3", "name": "Medium", "id": "3",
                         "iconUrl": f"{self.url}/images/icons/priorities/medium.svg"},
            "labels": list(issue.labels),
            "assignee": self.render_user(issue.assignee, version),
            "reporter": self.render_user(issue.reporter, version),
            "creator": self.render_user(issue.reporter, version),
            "status": self.render_status(issue.status, version),
            "summary": issue.summary,
            "description": self.render_body(issue.description, version)
            if issue.description
            else None,
            "duedate": issue.duedate.isoformat() if issue.duedate else None,
            "issuelinks": self._links(issue, version),
            "comment": {
                "comments": [self.render_comment(issue, c, version) for c in shown],
                "self": f"{api}/issue/{issue.id}/comment",
                "maxResults": len(shown),
                "total": len(issue.comments),
                "startAt": 0,
            },
            self.points_field: issue.points,
        }
        if self.cloud or parent is not None:
            fields["parent"] = parent
        if not self.cloud:
            fields[self.epic_link_field] = issue.epic
        fields.update(issue.custom)
        return fields

    def field_list(self) -> list[dict[str, Any]]:
        def system(ident: str, name: str, clauses: list[str], kind: str) -> dict[str, Any]:
            return {
                "id": ident,
                "key": ident,
                "name": name,
                "custom": False,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": clauses,
                "schema": {"type": kind, "system": ident},
            }

        def custom(ident: str, name: str, kind: str, plugin: str) -> dict[str, Any]:
            number = ident.rsplit("_", 1)[1]
            return {
                "id": ident,
                "key": ident,
                "name": name,
                "untranslatedName": name,
                "custom": True,
                "orderable": True,
                "navigable": True,
                "searchable": True,
                "clauseNames": [f"cf[{number}]", name],
                "schema": {"type": kind, "custom": plugin, "customId": int(number)},
            }

        fields = [
            system("summary", "Summary", ["summary"], "string"),
            system("status", "Status", ["status"], "status"),
            system("issuetype", "Issue Type", ["issuetype", "type"], "issuetype"),
            system("assignee", "Assignee", ["assignee"], "user"),
            system("created", "Created", ["created", "createdDate"], "datetime"),
            system("updated", "Updated", ["updated", "updatedDate"], "datetime"),
            system("labels", "Labels", ["labels"], "array"),
            {
                "id": "parent",
                "key": "parent",
                "name": "Parent",
                "custom": False,
                "orderable": False,
                "navigable": True,
                "searchable": False,
                "clauseNames": ["parent"],
            },
            custom("customfield_10019", "Rank", "any", "com.pyxis.greenhopper.jira:gh-lexo-rank"),
        ]
        if self.cloud:
            fields.append(
                custom(
                    self.points_field,
                    self.points_field_name,
                    "number",
                    "com.pyxis.greenhopper.jira:jsw-story-points",
                )
            )
        else:
            fields.append(
                custom(
                    self.points_field,
                    self.points_field_name,
                    "number",
                    "com.atlassian.jira.plugin.system.customfieldtypes:float",
                )
            )
            fields.append(
                custom(
                    self.epic_link_field,
                    "Epic Link",
                    "any",
                    "com.pyxis.greenhopper.jira:gh-epic-link",
                )
            )
        fields += [custom(ident, name, "option",
                          "com.atlassian.jira.plugin.system.customfieldtypes:select")
                   for ident, name in self.select_fields.items()]
        return fields

    def select(self, key: str, ident: str, value: str | None, *, at: datetime,
               author: str | None = None) -> FakeHistory:
        """Set a select-list custom field (``ident``, named in ``select_fields``) to the option
        ``value``: the issue shows ``{self, value, id}`` (the shape of airbyte's recorded
        ``customfield_10012``), the changelog an item with the option ids and values, its
        ``fieldtype`` ``custom`` (Cloud adds the ``fieldId``; Data Center names the field)."""
        with self._lock:
            issue = self.issues[key]
            before = issue.custom.get(ident)

            def option(text: str | None) -> dict[str, Any] | None:
                if text is None:
                    return None
                number = str(10100 + int(hashlib.sha1(text.encode()).hexdigest()[:4], 16))
                return {"self": f"{self._api('3' if self.cloud else '2')}/customFieldOption/"
                                f"{number}", "value": text, "id": number}

            after = option(value)
            item: dict[str, Any] = {
                "field": self.select_fields[ident], "fieldtype": "custom",
                "from": before["id"] if before else None,
                "fromString": before["value"] if before else None,
                "to": after["id"] if after else None, "toString": value}
            if self.cloud:
                item["fieldId"] = ident
            issue.custom[ident] = after
            history = self._history(issue, at, author, [item])
            issue.updated = at
            return history

    def server_info(self) -> dict[str, Any]:
        now = self.time(datetime.now(UTC))
        if self.cloud:
            return {
                "baseUrl": self.url,
                "displayUrl": self.url,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100287,
                "buildDate": "2026-01-02T00:00:00.000+0000",
                "serverTime": now,
                "scmInfo": "4a6a5ba1d0e4d1a1b2a9d2e4c8a2b1f7c6d5e4f3",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            }
        return {
            "baseUrl": self.url,
            "version": "9.12.4",
            "versionNumbers": [9, 12, 4],
            "deploymentType": self.server_type,
            "buildNumber": 9120004,
            "buildDate": "2024-01-15T00:00:00.000+0000",
            "serverTime": now,
            "scmInfo": "2c1ce2b4c2b4e5c4b8d1e2f3a4b5c6d7e8f9a0b1",
            "serverTitle": "Northwind Jira",
        }

    def status_list(self) -> list[dict[str, Any]]:
        return [self.render_status(name, "2") for _, name, _ in self.statuses]

    def record(self, request: RecordedRequest) -> Fault | None:
        with self._lock:
            self._log.append(request)
            for fault in self.faults:
                if fault.matches(request):
                    if fault.times is not None:
                        fault.times -= 1
                    request.fault = fault.action if fault.status is None else str(fault.status)
                    return fault
        return None


def _adf_strings(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("type") == "text":
            yield node.get("text", "")
        for child in node.get("content") or []:
            yield from _adf_strings(child)


def _token(offset: int, query: str) -> str:
    raw = json.dumps({"o": offset, "q": hashlib.sha1(query.encode()).hexdigest()[:10]})
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _offset(token: str | None, query: str) -> int:
    if not token:
        return 0
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, TypeError) as error:
        raise _HttpError(400, "The provided next page token is invalid.") from error
    if data.get("q") != hashlib.sha1(query.encode()).hexdigest()[:10]:
        raise _HttpError(400, "The provided next page token does not match the query.")
    return int(data["o"])


class _HttpError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None,
                 errors: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.errors = errors or {}


NO_CONTENT = object()
"""What a route returns for Jira's ``204 No Content`` (an edit)."""


def _split_list(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


class _Handler(BaseHTTPRequestHandler):
    server: QuietServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # -- plumbing --

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        path = parts.path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        auth = (self.headers.get("Authorization") or "").split(" ", 1)[0]
        in_context = path.startswith(fake.context_path + "/") or not fake.context_path
        inner = path[len(fake.context_path) :] if in_context else path
        request = RecordedRequest(
            method, inner, params, body, datetime.now(UTC), time.monotonic(), auth
        )
        for hook in list(fake.hooks):
            hook(request)
        fault = fake.record(request)
        if fault is not None and fault.action == "reset":
            request.status = -1
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and fault.delay and fault.action != "stall":
            fake._closing.wait(fault.delay)
        try:
            if fault is not None and fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                raise _HttpError(fault.status, f"Injected HTTP {fault.status}", headers)
            if not in_context:
                raise _HttpError(404, f"null for uri: {path}")
            self._authenticate()
            status, payload = 200, self._route(method, inner, params, body)
            headers = {}
        except _HttpError as error:
            status, headers = error.status, error.headers
            payload = {"errorMessages": [error.message] if error.message else [],
                       "errors": error.errors}
        except JqlError as error:
            status, headers = 400, {}
            payload = {"errorMessages": [str(error)], "errors": {}}
        if payload is NO_CONTENT:
            status, payload = 204, None
        request.status = status
        request.response = payload
        data = b"" if status == 204 else json.dumps(payload).encode()
        if fault is not None and fault.action == "truncate":
            data = data[: len(data) // 2]
        announced = len(data)
        if fault is not None and fault.action in ("cut", "stall"):
            data = data[: len(data) // 2]
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(announced))
        for name, value in headers.items():
            self.send_header(name, value)
        if fault is not None and fault.action in ("cut", "stall"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if fault is not None and fault.action == "stall":
            fake._closing.wait(fault.delay)

    def _authenticate(self) -> None:
        fake = self.server.fake
        header = self.headers.get("Authorization") or ""
        if fake.cloud:
            expected = "Basic " + base64.b64encode(f"{fake.email}:{fake.token}".encode()).decode()
        else:
            expected = f"Bearer {fake.token}"
        if header != expected:
            raise _HttpError(
                401,
                "You are not authenticated. Authentication required to perform this operation.",
                {} if fake.cloud else {"X-Seraph-LoginReason": "AUTHENTICATED_FAILED"},
            )

    def _route(self, method: str, path: str, params: dict[str, str], body: Any) -> Any:
        fake = self.server.fake
        match = re.fullmatch(r"/rest/api/(2|3|latest)/(.+)", path)
        if not match:
            raise _HttpError(404, f"null for uri: {path}")
        version, rest = match.groups()
        version = "2" if version == "latest" else version
        if version == "3" and not fake.cloud:
            raise _HttpError(404, f"null for uri: {path}")
        args = dict(params)
        if method == "POST" and isinstance(body, dict):
            args.update(body)
        with fake._lock:
            if rest == "serverInfo" and method == "GET":
                return fake.server_info()
            if rest == "field" and method == "GET":
                return fake.field_list()
            if rest == "status" and method == "GET":
                return fake.status_list()
            if rest == "user" and method == "GET" and not fake.cloud:
                # Data Center: ?key=JIRAUSER10100 or ?username=ann; 404 for a deleted user.
                wanted = args.get("key") or args.get("username")
                for user in fake.users.values():
                    if wanted in (user.key, user.account_id) and user.account_id not in (
                            fake.deleted_users):
                        return fake.render_user(user.account_id, version)
                raise _HttpError(404, f"The user with the key '{wanted}' does not exist")
            if rest == "search" and method in ("GET", "POST"):
                if fake.cloud:
                    raise _HttpError(410, GONE)
                return self._search_dc(version, args)
            if rest == "search/jql" and method in ("GET", "POST"):
                if not fake.cloud:
                    raise _HttpError(404, f"null for uri: {path}")
                return self._search_cloud(version, args)
            if rest == "changelog/bulkfetch" and method == "POST" and fake.cloud and version == "3":
                return self._bulkfetch(version, args)
            one = re.fullmatch(r"issue/([^/]+)(/assignee)?", rest)
            if one and method == "GET" and not one.group(2):
                issue = self._issue(one.group(1))
                return fake.render_issue(issue, version, _split_list(args.get("fields")), set())
            if one and method == "PUT":
                self._edit(self._issue(one.group(1)), assignee=bool(one.group(2)), body=body)
                return NO_CONTENT
            issue_match = re.fullmatch(r"issue/([^/]+)/(changelog|comment)", rest)
            if issue_match and method == "GET":
                issue = self._issue(issue_match.group(1))
                if issue_match.group(2) == "changelog":
                    return self._changelog(issue, version, args)
                return self._comments(issue, version, args)
        raise _HttpError(404, f"null for uri: {path}")

    def _edit(self, issue: FakeIssue, *, assignee: bool, body: Any) -> None:
        """``PUT issue/KEY`` (``{"fields": {...}}``) or ``PUT issue/KEY/assignee``, as Jira
        answers them: 204, or 400 with the refused field under ``errors``, or 403."""
        fake = self.server.fake
        if not fake.editable:
            raise _HttpError(403, "You do not have permission to edit issues in this project.")
        if not isinstance(body, dict):
            raise _HttpError(400, "Can not deserialize instance of the request body")
        at = max(datetime.now(UTC), issue.updated + timedelta(seconds=1))
        if assignee:
            who = body.get("accountId") if fake.cloud else body.get("name")
            if who is not None and str(who) not in fake.users:
                raise _HttpError(400, "", errors={"assignee": f"User '{who}' does not exist."})
            fake.edit(issue.key, at=at, assignee=None if who is None else str(who))
            return
        fields = body.get("fields")
        if not isinstance(fields, dict):
            raise _HttpError(400, "", errors={"fields": "no fields to set"})
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in fake.edit_screen:
                raise _HttpError(400, "", errors={
                    name: f"Field '{name}' cannot be set. It is not on the appropriate screen, "
                          "or unknown."})
            if name == "duedate":
                try:
                    changes["duedate"] = None if value is None else date.fromisoformat(str(value))
                except ValueError:
                    raise _HttpError(400, "", errors={
                        "duedate": f"Error parsing date string: {value}"}) from None
            else:
                changes[name] = value
        fake.edit(issue.key, at=at, **changes)

    def _issue(self, key_or_id: str) -> FakeIssue:
        fake = self.server.fake
        for issue in fake.issues.values():
            if key_or_id in (issue.key, issue.id):
                return issue
        raise _HttpError(404, "Issue does not exist or you do not have permission to see it.")

    @staticmethod
    def _int(args: dict[str, Any], name: str, default: int) -> int:
        value = args.get(name)
        try:
            return default if value in (None, "") else int(value)
        except (TypeError, ValueError) as error:
            raise _HttpError(400, f"'{name}' must be a number") from error

    def _search_cloud(self, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        jql = str(args.get("jql") or "")
        fields = _split_list(args.get("fields"))
        expand = set(_split_list(args.get("expand")) or [])
        light = fields is None or set(fields) <= {"id", "key"}
        cap = 5000 if light else fake.search_cap
        size = min(max(self._int(args, "maxResults", 50), 1), cap)
        start = _offset(args.get("nextPageToken"), jql)
        found = fake.search(jql, require_bound=True)
        page = found[start : start + size]
        if fields is None or fields == ["id"]:
            issues = [{"id": issue.id} for issue in page]
        else:
            issues = [fake.render_issue(i, version, fields, expand) for i in page]
        out: dict[str, Any] = {"issues": issues}
        if start + size < len(found):
            out["nextPageToken"] = _token(start + size, jql)
            out["isLast"] = False
        else:
            out["isLast"] = True
        return out

    def _search_dc(self, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        jql = str(args.get("jql") or "")
        fields = _split_list(args.get("fields"))
        expand = set(_split_list(args.get("expand")) or [])
        start = self._int(args, "startAt", 0)
        size = min(max(self._int(args, "maxResults", 50), 0), fake.search_cap)
        found = fake.search(jql)
        page = found[start : start + size]
        return {
            "expand": "schema,names",
            "startAt": start,
            "maxResults": size,
            "total": len(found),
            "issues": [fake.render_issue(i, version, fields, expand) for i in page],
        }

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
            "values": [fake.render_history(h, version) for h in values],
        }
        if not out["isLast"]:
            out["nextPage"] = f"{base}?&startAt={start + size}&maxResults={size}"
        return out

    def _comments(self, issue: FakeIssue, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        start = self._int(args, "startAt", 0)
        size = min(max(self._int(args, "maxResults", 5000), 1), fake.comment_cap)
        ordered = sorted(issue.comments, key=lambda c: (c.created, int(c.id)))
        if str(args.get("orderBy", "")).startswith("-"):
            ordered.reverse()
        return {
            "comments": [
                fake.render_comment(issue, c, version) for c in ordered[start : start + size]
            ],
            "maxResults": size,
            "total": len(issue.comments),
            "startAt": start,
        }

    def _bulkfetch(self, version: str, args: dict[str, Any]) -> Any:
        fake = self.server.fake
        wanted = args.get("issueIdsOrKeys")
        if not isinstance(wanted, list) or not wanted:
            raise _HttpError(400, "issueIdsOrKeys must not be empty.")
        if len(wanted) > 1000:
            raise _HttpError(400, "issueIdsOrKeys must not have more than 1000 entries.")
        field_ids = set(args.get("fieldIds") or [])
        size = min(max(self._int(args, "maxResults", 1000), 1), fake.bulkfetch_cap)
        entries: list[tuple[FakeIssue, FakeHistory]] = []
        for ident in wanted:
            issue = next((i for i in fake.issues.values() if ident in (i.key, i.id)), None)
            if issue is None:
                continue  # like Jira: unknown or invisible issues are left out
            for history in issue.histories:
                if field_ids and not any(it.get("fieldId") in field_ids for it in history.items):
                    continue
                entries.append((issue, history))
        query = json.dumps([wanted, sorted(field_ids)])
        start = _offset(args.get("nextPageToken"), query)
        page = entries[start : start + size]
        grouped: dict[str, dict[str, Any]] = {}
        for issue, history in page:
            group = grouped.setdefault(issue.id, {"changeHistories": [], "issueId": issue.id})
            group["changeHistories"].append(fake.render_history(history, version, epoch_ms=True))
        out: dict[str, Any] = {"issueChangeLogs": list(grouped.values())}
        if start + size < len(entries):
            out["nextPageToken"] = _token(start + size, query)
        return out


class FakeClock:
    """A ``sleep``/``clock`` pair for connectors: sleeping records the wait and advances time.

    Pass ``sleep=clock.sleep, clock=clock.monotonic`` to ``JiraConnector``; ``waits`` then
    holds every wait the connector asked for, and ``wall`` the real UTC time of each request
    to wait (to compare with an HTTP-date ``Retry-After``).
    """

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []
        self.wall: list[datetime] = []
        self._lock = threading.Lock()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            self.wall.append(datetime.now(UTC))
            self.now += seconds

    def monotonic(self) -> float:
        with self._lock:
            return self.now


def connector_for(
    fake: FakeJira,
    *,
    clock: FakeClock | None = None,
    name: str = "jira",
    seed: int = 7,
    **config: Any,
) -> Any:
    """A ``JiraConnector`` for ``fake`` whose waits go to ``clock`` (never real sleeps).

    ``config`` overrides fields of the ``JiraSource`` (``page_size``, ``scope``...). The
    caller closes it.
    """
    import random

    from stratmap.connectors.jira import JiraConnector

    clock = clock or FakeClock()
    return JiraConnector(
        name,
        fake.source_config(**config),
        token=fake.token,
        sleep=clock.sleep,
        clock=clock.monotonic,
        rng=random.Random(seed),
    )
