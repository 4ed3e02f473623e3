"""A stateful fake of Azure DevOps Boards' REST API 7.1 for one project, on respx: a harness.

Shapes follow the REST reference (learn.microsoft.com/rest/api/azure/devops/wit, 7.1):

* ``POST {org}/{project}/_apis/wit/wiql`` answers a ``WorkItemQueryResult``
  (``queryType: flat``, ``queryResultType: workItem``, ``asOf``, ``columns``,
  ``sortColumns``, ``workItems: [{id, url}]``): ids only. More than ``limit`` matches (20,000
  on the service) is a 400 with ``typeKey: WorkItemTrackingQueryResultSizeLimitExceededException``
  (VS402337). A date literal with a time of day without ``timePrecision=true`` is a 400, as
  WIQL compares days unless told. The WHERE clause is parsed and evaluated (AND, OR, NOT,
  parentheses; =, <>, <, <=, >, >=, UNDER, CONTAINS, IN; quoted literals with doubled
  quotes); a malformed one is a 400.
* ``POST .../workitemsbatch`` takes ``{ids (<=200), fields, errorPolicy}`` and answers
  ``{count, value: [WorkItem]}``, each with ``id``, ``rev``, ``fields`` (only the asked
  fields that have a value; identities as ``IdentityRef``: displayName, id, uniqueName,
  imageUrl, descriptor, url) and ``url``; an unknown id is ``null`` with ``errorPolicy:
  omit``, else a 404.
* ``GET .../workItems/{id}/updates?$top&$skip`` answers ``{count, value: [WorkItemUpdate]}``
  (``id``, ``workItemId``, ``rev``, ``revisedBy``, ``revisedDate`` - when the *next*
  revision replaced it, 9999-01-01 for the latest - and ``fields: {ref: {oldValue,
  newValue}}``).
* ``GET .../workItems/{id}/comments`` (7.1-preview.4) answers ``{totalCount, count,
  comments: [Comment], continuationToken, nextPage, url}``; ``$top`` pages, and a
  continuation token is an opaque string.
* ``GET .../workitemtypes/{type}/states`` answers ``{count, value: [{name, color,
  category}]}`` (the Agile process: New/Active/Resolved/Closed/Removed).
* ``PATCH .../workitems/{id}`` takes ``application/json-patch+json`` (anything else is a
  400); a failed ``test`` of ``/rev`` is a 412 and nothing is written.

Checked against recordings (``tests/test_recorded_shapes.py``, ``tests/recordings/``): the
REST reference's examples of updates, work item type states, a WIQL result and a PATCH with
a ``test`` of ``/rev`` (MicrosoftDocs/vsts-rest-api-specs, MIT).

Every answer carries ``X-RateLimit-*`` headers as the service sends them when it starts to
delay. Basic auth with an empty user name and the PAT; a wrong or missing one is a 401.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import respx

from stratmap.connectors.azure_devops import AzureDevopsConnector
from stratmap.connectors.base import RetryPolicy
from stratmap.models.plan import AzureDevopsSource
from tests.contract.suite import T0, SeedItem

HOST = "https://dev.azure.com"
ORG = "northwind"
PROJECT = "Website"
URL = f"{HOST}/{ORG}"
PAT = "ado-pat-secret"
NEVER = "9999-01-01T00:00:00Z"

STATES: dict[str, list[tuple[str, str]]] = {
    "User Story": [("New", "Proposed"), ("Active", "InProgress"), ("Resolved", "Resolved"),
                   ("Closed", "Completed"), ("Removed", "Removed")],
    "Feature": [("New", "Proposed"), ("Active", "InProgress"), ("Resolved", "Resolved"),
                ("Closed", "Completed"), ("Removed", "Removed")],
    "Epic": [("New", "Proposed"), ("Active", "InProgress"), ("Resolved", "Resolved"),
             ("Closed", "Completed"), ("Removed", "Removed")],
}
SUITE_STATES = {"To Do": "New", "In Progress": "Active", "Done": "Closed"}


def iso(moment: datetime) -> str:
    """Azure DevOps' timestamps: milliseconds and ``Z`` (trailing zeros dropped)."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3].rstrip("0").rstrip(".")
    return text + "Z"


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def ident(name: str) -> dict[str, Any]:
    """An ``IdentityRef`` as the REST API answers it."""
    uid = f"{zlib.crc32(name.encode()):012d}"
    return {"displayName": name.replace("-", " ").title(),
            "url": f"https://spsprodweu5.vssps.visualstudio.com/A1/_apis/Identities/{uid}",
            "_links": {"avatar": {"href": f"{URL}/_apis/GraphProfile/MemberAvatars/aad.{uid}"}},
            "id": f"7a9a1f0c-0000-4000-8000-{uid}", "uniqueName": f"{name}@northwind.example",
            "imageUrl": f"{URL}/_apis/GraphProfile/MemberAvatars/aad.{uid}",
            "descriptor": f"aad.{uid}"}


# -- WIQL --------------------------------------------------------------------------------

_TOKEN = re.compile(r"""\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dstr>"(?:[^"]|"")*")|\[(?P<field>[^\]]+)\]
                    |(?P<op><>|>=|<=|=|<|>)|(?P<par>[(),])|(?P<word>[@\w.]+))""", re.VERBOSE)


class WiqlError(ValueError):
    pass


def tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        if not text[position:].strip():
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise WiqlError(f"unexpected character at {position}: {text[position:position + 10]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("''", "'")
        elif kind == "dstr":
            kind, value = "str", value[1:-1].replace('""', '"')
        out.append((kind, value))
        position = match.end()
    return out


Predicate = Callable[[dict[str, Any]], bool]


class _Parser:
    def __init__(self, items: list[tuple[str, str]], *, precise: bool, project: str) -> None:
        self.items = items
        self.at = 0
        self.precise = precise
        self.project = project

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.at] if self.at < len(self.items) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise WiqlError("the condition ends too soon")
        self.at += 1
        return token

    def word(self, *names: str) -> bool:
        token = self.peek()
        if token and token[0] == "word" and token[1].upper() in names:
            self.at += 1
            return True
        return False

    def expression(self) -> Predicate:
        left = self.conjunction()
        while self.word("OR"):
            right = self.conjunction()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conjunction(self) -> Predicate:
        left = self.unary()
        while self.word("AND"):
            right = self.unary()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def unary(self) -> Predicate:
        if self.word("NOT"):
            inner = self.unary()
            return lambda row: not inner(row)
        token = self.peek()
        if token == ("par", "("):
            self.take()
            inner = self.expression()
            if self.take() != ("par", ")"):
                raise WiqlError("a parenthesis is not closed")
            return inner
        return self.comparison()

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "str":
            return value
        if kind == "word" and value.lower() == "@project":
            return self.project
        if kind == "word" and re.fullmatch(r"-?\d+(\.\d+)?", value):
            return float(value)
        raise WiqlError(f"expected a value, found {value!r}")

    def comparison(self) -> Predicate:
        kind, field = self.take()
        if kind != "field":
            raise WiqlError(f"expected a [field], found {field!r}")
        negate = self.word("NOT")
        token = self.take()
        op = token[1].upper()
        if op == "IN":
            if self.take() != ("par", "("):
                raise WiqlError("IN needs a list")
            values = [self.literal()]
            while self.peek() == ("par", ","):
                self.take()
                values.append(self.literal())
            if self.take() != ("par", ")"):
                raise WiqlError("IN's list is not closed")
            folded = {_fold(v) for v in values}

            def test(row: dict[str, Any]) -> bool:
                return _fold(row.get(field)) in folded
        else:
            value = self.literal()
            if field.endswith("Date") and isinstance(value, str) and "T" in value \
                    and not self.precise:
                raise WiqlError("VS402323: a date with a time needs timePrecision")
            test = _compare(field, op, value)
        return (lambda row: not test(row)) if negate else test


def _fold(value: Any) -> Any:
    if isinstance(value, dict):
        value = value.get("uniqueName")
    return value.casefold() if isinstance(value, str) else value


def _compare(field: str, op: str, value: Any) -> Predicate:
    def get(row: dict[str, Any]) -> Any:
        found = row.get(field)
        if field.endswith("Date") and isinstance(found, str):
            return parse(found)
        return _fold(found)

    wanted: Any = parse(value) if field.endswith("Date") and isinstance(value, str) else (
        _fold(value))
    if field in ("System.Id", "System.Parent") and isinstance(value, float):
        wanted = int(value)

    def test(row: dict[str, Any]) -> bool:
        found = get(row)
        if op == "UNDER":
            return isinstance(found, str) and (found == wanted or found.startswith(wanted + "\\"))
        if op == "CONTAINS":
            if field == "System.Tags":
                return wanted in {t.strip().casefold() for t in str(found or "").split(";")}
            return isinstance(found, str) and wanted in found
        if found is None:
            return op == "<>"
        return {"=": found == wanted, "<>": found != wanted, "<": found < wanted,
                "<=": found <= wanted, ">": found > wanted, ">=": found >= wanted}[op]

    if op not in ("UNDER", "CONTAINS", "=", "<>", "<", "<=", ">", ">="):
        raise WiqlError(f"unknown operator {op!r}")
    return test


_QUERY = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+WorkItems"
                    r"(?:\s+WHERE\s+(?P<where>.+?))?(?:\s+ORDER\s+BY\s+(?P<order>.+?))?\s*$",
                    re.IGNORECASE | re.DOTALL)


def compile_wiql(text: str, *, precise: bool, project: str) -> Predicate:
    match = _QUERY.match(text)
    if match is None:
        raise WiqlError("TF51006: the query is not SELECT ... FROM WorkItems")
    where = match.group("where")
    if where is None:
        return lambda row: True
    parser = _Parser(tokens(where), precise=precise, project=project)
    predicate = parser.expression()
    if parser.peek() is not None:
        raise WiqlError(f"unexpected {parser.peek()!r}")
    return predicate


# -- the fake ------------------------------------------------------------------------------

class FakeAzureDevops:
    """Azure DevOps for one project; usable as the contract suite's harness."""

    http = True

    def __init__(self, *, name: str = "boards", page_size: int = 200, limit: int = 20_000,
                 token: str = PAT, now: datetime = T0 + timedelta(days=40),
                 concurrency: int = 4, area_path: str | None = None,
                 scope: str | None = None) -> None:
        self.name = name
        self.page_size = page_size
        self.limit = limit
        self.token = token
        self.concurrency = concurrency
        self.area_path = area_path
        self.scope = scope
        self.items: dict[int, dict[str, Any]] = {}
        """id -> {"rev", "fields", "updates", "comments"}"""
        self.faults: deque[tuple[int, dict[str, str], Any]] = deque()
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.now = now.timestamp()
        self.rate_headers: dict[str, str] = {}
        """Extra headers on every successful answer (``X-RateLimit-*``)."""
        self._ids = 5_000
        self._lock = threading.RLock()
        self.router = respx.MockRouter(assert_all_called=False, assert_all_mocked=True)
        self.router.route(host="dev.azure.com").mock(side_effect=self.handle)

    # -- the Harness protocol --------------------------------------------------------------

    def seed(self, items: list[SeedItem]) -> None:
        with self._lock:
            self.items.clear()
            for item in items:
                self._seed_one(item)

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> None:
        self.change(self.number(key), at=at, by=author,
                    **{"System.State": SUITE_STATES.get(to, to)})

    def connector(self) -> AzureDevopsConnector:
        return AzureDevopsConnector(self.name, self.source(), token=PAT, sleep=self.sleep,
                                    clock=self.clock, policy=RetryPolicy(attempts=4))

    def source(self) -> AzureDevopsSource:
        return AzureDevopsSource(kind="azure_devops", url=URL, project=PROJECT,
                                 token="env:AZURE_DEVOPS_PAT", page_size=self.page_size,
                                 concurrency=self.concurrency, area_path=self.area_path,
                                 scope=self.scope)

    def key_of(self, key: str) -> str:
        return f"{self.name}#{self.number(key)}"

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        headers: dict[str, str] = {}
        body: Any = {"$id": "1", "innerException": None,
                     "message": f"TF400733: the request failed ({status})",
                     "typeName": "Microsoft.VisualStudio.Services.WebApi.VssServiceException",
                     "typeKey": "VssServiceException", "errorCode": 0, "eventId": 3000}
        if status == 429:
            headers = {"x-ratelimit-resource": "ATCPU", "x-ratelimit-delay": "0.5",
                       "x-ratelimit-limit": "200", "x-ratelimit-remaining": "0",
                       "x-ratelimit-reset": str(int(self.now) + 30)}
            body = {"message": "TF400733: The request has been blocked (rate limit)."}
        elif status == 401:
            body = ""
        if retry_after is not None:
            headers["retry-after"] = retry_after
        with self._lock:
            for _ in range(times):
                self.faults.append((status, headers, body))

    # -- levers ------------------------------------------------------------------------------

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def clock(self) -> float:
        return self.now

    def number(self, key: str) -> int:
        return int(key.rsplit("-", 1)[-1].rsplit("#", 1)[-1])

    def calls(self, kind: str) -> list[httpx.Request]:
        """Requests whose path ends in ``/<kind>`` (wiql, workitemsbatch, updates, ...)."""
        return [r for r in self.requests if r.url.path.endswith(f"/{kind}")]

    def add(self, number: int, *, title: str, created: datetime, by: str = "root",
            kind: str = "User Story", state: str = "New", assignee: str | None = None,
            area: str | None = None, iteration: str | None = None, tags: list[str] | None = None,
            parent: int | None = None, target: str | None = None,
            points: float | None = None) -> None:
        """A work item as created (revision 1), with the fields given."""
        with self._lock:
            self._ids += 1
            fields: dict[str, Any] = {
                "System.Id": number, "System.Rev": 1, "System.AuthorizedDate": iso(created),
                "System.RevisedDate": NEVER, "System.Watermark": self._ids,
                "System.AreaPath": area or PROJECT,
                "System.TeamProject": PROJECT, "System.IterationPath": iteration or PROJECT,
                "System.WorkItemType": kind, "System.State": state,
                "System.Reason": "New", "System.CreatedDate": iso(created),
                "System.CreatedBy": ident(by), "System.ChangedDate": iso(created),
                "System.ChangedBy": ident(by), "System.CommentCount": 0,
                "System.Title": title, "Microsoft.VSTS.Common.StateChangeDate": iso(created),
                "Microsoft.VSTS.Common.Priority": 2,
            }
            if assignee:
                fields["System.AssignedTo"] = ident(assignee)
            if tags:
                fields["System.Tags"] = "; ".join(tags)
            if parent is not None:
                fields["System.Parent"] = parent
            if target:
                fields["Microsoft.VSTS.Scheduling.TargetDate"] = target
            if points is not None:
                fields["Microsoft.VSTS.Scheduling.StoryPoints"] = points
            first = {name: {"newValue": value} for name, value in fields.items()}
            self.items[number] = {"rev": 1, "fields": fields, "comments": [],
                                  "updates": [self._update(number, 1, by, first)]}

    def change(self, number: int, *, at: datetime, by: str, **changes: Any) -> None:
        """A new revision changing ``changes`` (field reference names, with dots)."""
        with self._lock:
            item = self.items[number]
            fields = item["fields"]
            delta: dict[str, dict[str, Any]] = {}
            self._ids += 1
            stamps = {"System.Rev": item["rev"] + 1, "System.AuthorizedDate": iso(at),
                      "System.RevisedDate": NEVER, "System.Watermark": self._ids,
                      "System.ChangedDate": iso(at), "System.ChangedBy": ident(by)}
            for name, value in {**changes, **stamps}.items():
                old = fields.get(name)
                if old == value:
                    continue
                delta[name] = {"newValue": value} if old is None else {"oldValue": old,
                                                                        "newValue": value}
                if value is None:
                    fields.pop(name, None)
                else:
                    fields[name] = value
            if "System.State" in changes:
                fields["Microsoft.VSTS.Common.StateChangeDate"] = iso(at)
                if self._category(fields["System.WorkItemType"], changes["System.State"]) == \
                        "Completed":
                    fields["Microsoft.VSTS.Common.ClosedDate"] = iso(at)
                else:
                    fields.pop("Microsoft.VSTS.Common.ClosedDate", None)
            item["updates"][-1]["revisedDate"] = iso(at)
            # The replaced revision's RevisedDate moves from "never" to now, as recorded.
            delta["System.RevisedDate"] = {"oldValue": NEVER, "newValue": iso(at)}
            item["rev"] += 1
            item["updates"].append(self._update(number, item["rev"], by, delta))

    def comment(self, number: int, *, at: datetime, by: str, text: str) -> None:
        with self._lock:
            item = self.items[number]
            self._ids += 1
            item["comments"].append({
                "workItemId": number, "id": self._ids, "version": 1, "text": text,
                "createdBy": ident(by), "createdDate": iso(at), "modifiedBy": ident(by),
                "modifiedDate": iso(at), "isDeleted": False,
                "url": f"{URL}/{PROJECT}/_apis/wit/workItems/{number}/comments/{self._ids}"})
            self.change(number, at=at, by=by,
                        **{"System.CommentCount": item["fields"]["System.CommentCount"] + 1,
                           "System.History": text})

    def _update(self, number: int, rev: int, by: str,
                fields: dict[str, Any]) -> dict[str, Any]:
        return {"id": rev, "workItemId": number, "rev": rev, "revisedBy": ident(by),
                "revisedDate": NEVER, "fields": fields,
                "url": f"{URL}/{PROJECT}/_apis/wit/workItems/{number}/updates/{rev}"}

    def _category(self, kind: str, state: str) -> str | None:
        return dict(STATES.get(kind, [])).get(state)

    def _seed_one(self, item: SeedItem) -> None:
        number = self.number(item.key)
        self.add(number, title=item.title, created=item.created, assignee=item.assignee,
                 tags=["web"] if number % 5 == 0 else None)
        for at, author, _from, to in item.history:
            self.change(number, at=at, by=author, **{"System.State": SUITE_STATES[to]})
        if self.items[number]["fields"]["System.State"] != SUITE_STATES[item.status]:
            self.change(number, at=item.created, by="root",
                        **{"System.State": SUITE_STATES[item.status]})
        for at, author, body in sorted(item.comments):
            self.comment(number, at=at, by=author, text=body)

    # -- the server --------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.requests.append(request)
            if self.faults:
                status, headers, body = self.faults.popleft()
                return self._answer(status, body, headers)
            expected = "Basic " + base64.b64encode(f":{self.token}".encode()).decode()
            if request.headers.get("authorization") != expected:
                # The service answers a missing token with its sign-in page, a wrong one 401.
                if "authorization" not in request.headers:
                    return httpx.Response(203, headers={"content-type": "text/html"},
                                          content=b"<html><title>Sign in</title></html>")
                return self._answer(401, "")
            if request.url.params.get("api-version") is None:
                return self._error(400, "VS403445: api-version is required", "VssException")
            prefix = f"/{ORG}/{PROJECT}/_apis/wit/"
            path = unquote(request.url.path)
            if not path.startswith(prefix):
                return self._error(404, f"TF200016: The following project does not exist: "
                                   f"{path.split('/')[2] if path.count('/') > 2 else ''}",
                                   "ProjectDoesNotExistWithNameException")
            parts = path[len(prefix):].split("/")
            route = (request.method, parts[0].lower(), len(parts))
            if route == ("POST", "wiql", 1):
                return self._wiql(request)
            if route == ("POST", "workitemsbatch", 1):
                return self._batch(request)
            if route[1] == "workitems" and len(parts) == 3 and parts[1].isdigit():
                number = int(parts[1])
                if number not in self.items:
                    return self._error(404, f"TF401232: Work item {number} does not exist",
                                       "WorkItemUnauthorizedAccessException")
                if request.method == "GET" and parts[2] == "updates":
                    return self._updates(request, number)
                if request.method == "GET" and parts[2] == "comments":
                    return self._comments(request, number)
            if route == ("PATCH", "workitems", 2) and parts[1].isdigit():
                return self._patch(request, int(parts[1]))
            if request.method == "GET" and parts[0] == "workitemtypes" and len(parts) == 3 \
                    and parts[2] == "states":
                states = STATES.get(parts[1])
                if states is None:
                    return self._error(404, f"VS402323: Work item type {parts[1]} does not "
                                       "exist", "WorkItemTypeNotFoundException")
                return self._answer(200, {"count": len(states), "value": [
                    {"name": n, "color": "b2b2b2", "category": c} for n, c in states]})
            return self._error(404, "The controller for path was not found", "HttpException")

    def _answer(self, status: int, body: Any, headers: dict[str, str] | None = None,
                ) -> httpx.Response:
        base = {"content-type": "application/json; charset=utf-8; api-version=7.1",
                "x-tfs-processid": "a1b2", "activityid": "c3d4", "x-vss-e2eid": "e5f6"}
        if status < 400:
            base.update(self.rate_headers)
        base.update(headers or {})
        content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return httpx.Response(status, headers=base, content=content)

    def _error(self, status: int, message: str, type_key: str) -> httpx.Response:
        return self._answer(status, {
            "$id": "1", "innerException": None, "message": message,
            "typeName": f"Microsoft.TeamFoundation.WorkItemTracking.Server.{type_key}, "
                        "Microsoft.TeamFoundation.WorkItemTracking.Server",
            "typeKey": type_key, "errorCode": 0, "eventId": 3200})

    def _wiql(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        precise = request.url.params.get("timePrecision") == "true"
        try:
            predicate = compile_wiql(str(body["query"]), precise=precise, project=PROJECT)
            rows = [i["fields"] for i in self.items.values()]
            matched = [r for r in rows if predicate(r)]
        except (WiqlError, KeyError, TypeError) as error:
            return self._error(400, f"TF51005: The query is not valid: {error}",
                               "QueryException")
        if len(matched) > self.limit:
            return self._error(
                400, f"VS402337: The number of work items returned exceeds the size limit of "
                f"{self.limit}. Change the query to return fewer work items.",
                "WorkItemTrackingQueryResultSizeLimitExceededException")
        matched.sort(key=lambda r: (parse(r["System.ChangedDate"]), r["System.Id"]))
        return self._answer(200, {
            "queryType": "flat", "queryResultType": "workItem",
            "asOf": iso(datetime.fromtimestamp(self.now, UTC)),
            "columns": [{"referenceName": "System.Id", "name": "ID",
                         "url": f"{URL}/_apis/wit/fields/System.Id"}],
            "sortColumns": [{"field": {"referenceName": "System.ChangedDate",
                                       "name": "Changed Date",
                                       "url": f"{URL}/_apis/wit/fields/System.ChangedDate"},
                             "descending": False}],
            "workItems": [{"id": r["System.Id"],
                           "url": f"{URL}/_apis/wit/workItems/{r['System.Id']}"}
                          for r in matched]})

    def _batch(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        ids = body.get("ids") or []
        if len(ids) > 200:
            return self._error(400, "VS402335: at most 200 work items", "VssException")
        wanted = body.get("fields")
        value: list[Any] = []
        for number in ids:
            item = self.items.get(number)
            if item is None:
                if body.get("errorPolicy", "fail").lower() != "omit":
                    return self._error(404, f"TF401232: Work item {number} does not exist",
                                       "WorkItemUnauthorizedAccessException")
                value.append(None)
                continue
            fields = item["fields"]
            chosen = {k: v for k, v in fields.items() if wanted is None or k in wanted}
            value.append(json.loads(json.dumps({
                "id": number, "rev": item["rev"], "fields": chosen,
                "url": f"{URL}/{PROJECT}/_apis/wit/workItems/{number}"})))
        return self._answer(200, {"count": len(value), "value": value})

    def _updates(self, request: httpx.Request, number: int) -> httpx.Response:
        params = request.url.params
        top = min(200, int(params.get("$top", "200")))
        skip = int(params.get("$skip", "0"))
        rows = self.items[number]["updates"][skip:skip + top]
        return self._answer(200, {"count": len(rows), "value": json.loads(json.dumps(rows))})

    def _comments(self, request: httpx.Request, number: int) -> httpx.Response:
        params = request.url.params
        if params.get("api-version") != "7.1-preview.4":
            return self._error(400, "VS403449: comments need api-version 7.1-preview.4",
                               "VssVersionNotSupportedException")
        top = min(200, int(params.get("$top", "200")))
        rows = self.items[number]["comments"]
        if params.get("order", "desc") == "desc":
            rows = list(reversed(rows))
        start = 0
        if "continuationToken" in params:
            start = int(base64.b64decode(params["continuationToken"]).decode())
        chunk = rows[start:start + top]
        body: dict[str, Any] = {"totalCount": len(rows), "count": len(chunk),
                                "comments": json.loads(json.dumps(chunk)),
                                "url": f"{URL}/{PROJECT}/_apis/wit/workItems/{number}/comments"}
        if start + top < len(rows):
            token = base64.b64encode(str(start + top).encode()).decode()
            body["continuationToken"] = token
            body["nextPage"] = f"{body['url']}?continuationToken={token}"
        return self._answer(200, body)

    def _patch(self, request: httpx.Request, number: int) -> httpx.Response:
        if not request.headers.get("content-type", "").startswith("application/json-patch+json"):
            return self._error(400, "VS403430: the request's media type must be "
                               "application/json-patch+json", "VssRequestContentException")
        item = self.items.get(number)
        if item is None:
            return self._error(404, f"TF401232: Work item {number} does not exist",
                               "WorkItemUnauthorizedAccessException")
        changes: dict[str, Any] = {}
        for op in json.loads(request.content):
            if op["op"] == "test" and op["path"] == "/rev":
                if op["value"] != item["rev"]:
                    return self._error(412, f"TF26071: This work item has been changed by "
                                       f"someone else since you opened it (rev {item['rev']})",
                                       "WorkItemRevisionMismatchException")
            elif op["op"] in ("add", "replace") and op["path"].startswith("/fields/"):
                field = op["path"][len("/fields/"):]
                value = op["value"]
                if field == "System.AssignedTo":
                    handle = str(value).split("@")[0]
                    value = ident(handle)
                changes[field] = value
            else:
                return self._error(400, f"unsupported operation {op}", "VssException")
        self.change(number, at=datetime.fromtimestamp(self.now, UTC), by="pusher", **changes)
        return self._answer(200, json.loads(json.dumps(self.expanded(number))))

    def expanded(self, number: int) -> dict[str, Any]:
        """A work item as a write answers it: fields, relations (when it has any) and
        ``_links``, as the PATCH example of the 7.1 reference shows."""
        item = self.items[number]
        own = f"{URL}/_apis/wit/workItems/{number}"
        body: dict[str, Any] = {"id": number, "rev": item["rev"], "fields": item["fields"]}
        parent = item["fields"].get("System.Parent")
        if parent is not None:
            body["relations"] = [{"rel": "System.LinkTypes.Hierarchy-Reverse",
                                  "url": f"{URL}/_apis/wit/workItems/{parent}",
                                  "attributes": {"isLocked": False, "name": "Parent"}}]
        body["_links"] = {
            "self": {"href": own}, "workItemUpdates": {"href": f"{own}/updates"},
            "workItemRevisions": {"href": f"{own}/revisions"},
            "workItemComments": {"href": f"{own}/comments"},
            "workItemHistory": {"href": f"{own}/history"},
            "html": {"href": f"{URL}/{PROJECT}/_workitems/edit/{number}"},
            "workItemType": {"href": f"{URL}/{PROJECT}/_apis/wit/workItemTypes/"
                                     f"{item['fields']['System.WorkItemType']}"},
            "fields": {"href": f"{URL}/{PROJECT}/_apis/wit/fields"}}
        body["url"] = own
        return body

    def edits(self) -> list[tuple[str, str, Any]]:
        return [(r.method, r.url.path, json.loads(r.content or b"null"))
                for r in self.requests if r.method == "PATCH"]


def activated(fake: FakeAzureDevops) -> Iterator[FakeAzureDevops]:
    with fake.router:
        yield fake
