"""Azure DevOps Boards (source kind ``azure_devops``): one project's work items, REST 7.1.

REST directly on httpx (the ``azure-devops`` package is unmaintained and pins a deprecated
msrest). A personal access token is sent as basic auth with an empty user name. Endpoints,
under ``{url}/{project}/_apis/wit``::

    POST wiql?timePrecision=true             {"query": "SELECT [System.Id] FROM WorkItems
                                             WHERE ... ORDER BY [System.ChangedDate] ASC,
                                             [System.Id] ASC"}: ids only, at most 20,000
    POST workitemsbatch                      {"ids": [<=200], "fields": [...],
                                             "errorPolicy": "omit"}: the items
    GET  workItems/{id}/updates?$top&$skip   every revision's field changes: the state
                                             and assignee history
    GET  workItems/{id}/comments             api-version 7.1-preview.4, ``$top`` and
                                             ``continuationToken``; only asked for when
                                             ``System.CommentCount`` is not 0
    GET  workitemtypes/{type}/states         once per type: each state's category

The window is ``[System.ChangedDate] >= since`` (with ``timePrecision``, or WIQL compares
days). A query that matches more than 20,000 items (VS402337, see
:mod:`connectors.azure_devops.transport`) is split into halves of its ChangedDate window
until each half fits. Ids come in ChangedDate order, but an item may change between the
query and the batch read, so the source is not ``ordered``: the watermark moves once the
last page is written. ``reconcile`` lists every id in scope, so deleted items and items
moved to another project are hidden.

Statuses come from the state's category, never its name: Proposed is to do, InProgress and
Resolved (fixed, not yet verified) are in progress, Completed and Removed are done (nobody
works on a removed item, as with a Linear cancel). ``parent`` is the parent's key (for the
``parent:`` selector), ``labels`` the tags, ``fields`` holds ``area_path`` and
``iteration_path``, ``due`` the Target Date (else Due Date), ``points`` the Story Points
(else Effort, else Size). Accounts are the identities' ``uniqueName`` (an e-mail for Entra
ID users), so people are matched by e-mail too.

Selectors: ``area_path``, ``iteration_path`` (the path or under it), ``tags`` (any) and
``parent`` are matched on the stored items; ``wiql`` is a condition Azure DevOps evaluates
(:meth:`AzureDevopsConnector.resolve`), ANDed with the source's project, area path and
scope, and with the selector's other criteria written as quoted literals.
``stratmap push``: :mod:`connectors.azure_devops.push`.
"""

from __future__ import annotations

import base64
import functools
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from stratmap.connectors.azure_devops.transport import (
    API_VERSION,
    COMMENTS_VERSION,
    PACE,
    QueryTooLarge,
    classify,
)
from stratmap.connectors.base import (
    Difference,
    FatalSourceError,
    IssueRecords,
    PushCheck,
    RequestCount,
    RetryPolicy,
    Target,
    TokenPaginator,
    Window,
    page_of,
)
from stratmap.connectors.http import JsonApi, Row, fan_out, parse_moment
from stratmap.models.plan import AzureDevopsSource
from stratmap.models.records import (
    Account,
    AssigneeChange,
    Comment,
    Page,
    RawPayload,
    StatusCategory,
    StatusChange,
    WorkItem,
)
from stratmap.models.wiql import quoted, wiql_problem

CATEGORIES: dict[str, StatusCategory] = {
    "Proposed": StatusCategory.TODO,
    "InProgress": StatusCategory.IN_PROGRESS,
    "Resolved": StatusCategory.IN_PROGRESS,
    "Completed": StatusCategory.DONE,
    "Removed": StatusCategory.DONE,
}
"""A state's ``category`` (workitemtypes/{type}/states) to ours."""

FIELDS = (
    "System.Id", "System.Title", "System.WorkItemType", "System.State", "System.AssignedTo",
    "System.CreatedBy", "System.CreatedDate", "System.ChangedDate", "System.AreaPath",
    "System.IterationPath", "System.Tags", "System.Parent", "System.CommentCount",
    "Microsoft.VSTS.Common.ClosedDate", "Microsoft.VSTS.Common.StateChangeDate",
    "Microsoft.VSTS.Scheduling.TargetDate", "Microsoft.VSTS.Scheduling.DueDate",
    "Microsoft.VSTS.Scheduling.StoryPoints", "Microsoft.VSTS.Scheduling.Effort",
    "Microsoft.VSTS.Scheduling.Size",
)
"""The fields asked of ``workitemsbatch`` (it answers only those with a value)."""
UPDATES_PAGE = 200
COMMENTS_PAGE = 200
EARLIEST = datetime(2005, 1, 1, tzinfo=UTC)
"""Before any Team Foundation Server: the lower end of a first sync's window, when split."""
FINEST = timedelta(seconds=1)
"""A window this short that still matches too much cannot be split further."""


def wiql_moment(moment: datetime) -> str:
    """A WIQL date literal, to the millisecond (Azure DevOps stamps milliseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _changed(row: Row) -> datetime | None:
    stamp = (row.get("fields") or {}).get("System.ChangedDate")
    return parse_moment(str(stamp)) if stamp else None


def identity(value: Any) -> str | None:
    """An identity's account id: its ``uniqueName`` (an e-mail, a DOMAIN\\user), else id."""
    if isinstance(value, Mapping):
        for key in ("uniqueName", "id"):
            if value.get(key):
                return str(value[key])
    return None


def account_of(source: str, value: Any) -> Account | None:
    ident = identity(value)
    if ident is None or not isinstance(value, Mapping):
        return None
    name = value.get("displayName")
    return Account(source=source, account_id=ident, display_name=str(name) if name else None,
                   email=ident if "@" in ident else None)


class AzureDevopsConnector:
    """One Azure DevOps project's work items as a stratmap source."""

    kind: ClassVar[str] = "azure_devops"
    ordered = False
    default_overlap = timedelta(minutes=15)

    def __init__(
        self,
        name: str,
        source: AzureDevopsSource,
        *,
        token: str,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.project = source.project
        self.root = source.url.rstrip("/")
        self.base = f"{self.root}/{quote(source.project, safe='')}/_apis/wit"
        self.clock = clock
        for where, text in (("scope", source.scope),):
            if text is not None and (problem := wiql_problem(text)):
                raise FatalSourceError(name, f"the source's {where} WIQL cannot be used: "
                                       f"{problem}", hint="fix it in the plan file")
        basic = base64.b64encode(f":{token}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Accept": "application/json",
                   "User-Agent": "stratmap"}
        self.api = JsonApi(name, headers=headers, classify=classify(name),
                           timeout=source.timeout, pace=PACE, policy=policy, sleep=sleep,
                           clock=clock, rng=rng, max_connections=max(1, source.concurrency))
        self._states: dict[str, dict[str, str]] = {}
        """Work item type -> state name -> category (Proposed, InProgress, ...)."""
        self.revisions: dict[int, int] = {}
        """The latest ``rev`` this connector wrote, by work item id (``stratmap push``)."""

    # -- the Connector protocol ----------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        count = RequestCount()
        ids = self._ids(self._scope(), since=window.since, count=count)
        stored = window.stored if window.since is not None else {}
        for start in range(0, len(ids), self.source.page_size):
            chunk = ids[start:start + self.source.page_size]
            # An item of the overlap the store holds at this very ChangedDate has not
            # changed: its updates and comments are not read again.
            rows = [row for row in self._batch(chunk, count=count)
                    if stored.get(self.key_of(row["id"])) != _changed(row)]
            details = fan_out(functools.partial(self._details, count=count), rows,
                              workers=self.source.concurrency)
            yield self._page(rows, details, count.value, until=window.until)
            count = RequestCount()
        if not ids:
            yield page_of(self.name, [], raw=[], requests=count.value)

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        """The work items a ``wiql`` selector chooses (None for the other selectors, which
        are matched on the stored items)."""
        condition = selector.get("wiql")
        if not isinstance(condition, str):
            return None
        if problem := wiql_problem(condition):
            raise FatalSourceError(self.name, f"a wiql selector cannot be used: {problem}",
                                   hint="fix it in the plan file")
        parts = [*self._scope(), f"({condition})", *self.criteria(selector)]
        return frozenset(self.key_of(i) for i in self._ids(parts, since=None,
                                                            count=RequestCount()))

    def reconcile(self) -> frozenset[str]:
        """Every work item in scope now, so the store can hide deleted or moved ones."""
        return frozenset(self.key_of(i) for i in self._ids(self._scope(), since=None,
                                                            count=RequestCount()))

    def close(self) -> None:
        self.api.close()

    # -- the Pusher protocol (``stratmap push``) -----------------------------------------

    def check(self, targets: Sequence[Target]) -> PushCheck:
        from stratmap.connectors.azure_devops.push import check

        return check(self, targets)

    def apply(self, difference: Difference) -> None:
        from stratmap.connectors.azure_devops.push import apply

        apply(self, difference)

    # -- queries -------------------------------------------------------------------------

    def key_of(self, work_item_id: int | str) -> str:
        return f"{self.name}#{work_item_id}"

    def _scope(self) -> list[str]:
        """The source's conditions: its project, area path and scope."""
        parts = [f"[System.TeamProject] = {quoted(self.project)}"]
        if self.source.area_path:
            parts.append(f"[System.AreaPath] UNDER {quoted(self.source.area_path)}")
        if self.source.scope:
            parts.append(f"({self.source.scope})")
        return parts

    def criteria(self, selector: Mapping[str, object]) -> list[str]:
        """A selector's other criteria as WIQL, every value a quoted literal."""
        parts: list[str] = []
        for name, field in (("area_path", "System.AreaPath"),
                            ("iteration_path", "System.IterationPath")):
            value = selector.get(name)
            if value is not None:
                parts.append(f"[{field}] UNDER {quoted(str(value))}")
        tags = selector.get("tags")
        if isinstance(tags, list | tuple) and tags:
            parts.append("(" + " OR ".join(f"[System.Tags] CONTAINS {quoted(str(t))}"
                                           for t in tags) + ")")
        parent = selector.get("parent")
        if parent is not None:
            number = str(parent).rsplit("#", 1)[-1]
            if not number.isdigit():
                raise FatalSourceError(self.name, f"parent {parent!r} is not a work item id",
                                       hint="write the Epic's or Feature's number: parent: 12")
            parts.append(f"[System.Parent] = {int(number)}")
        return parts

    def query(self, parts: Sequence[str], *, since: datetime | None,
              before: datetime | None) -> str:
        """The WIQL for ``parts`` in the ChangedDate window ``[since, before)``."""
        where = list(parts)
        if since is not None:
            where.append(f"[System.ChangedDate] >= {quoted(wiql_moment(since))}")
        if before is not None:
            where.append(f"[System.ChangedDate] < {quoted(wiql_moment(before))}")
        return ("SELECT [System.Id] FROM WorkItems WHERE " + " AND ".join(where)
                + " ORDER BY [System.ChangedDate] ASC, [System.Id] ASC")

    def _ids(self, parts: Sequence[str], *, since: datetime | None,
             count: RequestCount) -> list[int]:
        """The ids ``parts`` match from ``since`` on, in ChangedDate order; a window that
        matches too much is split in halves (its upper end: now)."""
        try:
            return self._wiql(self.query(parts, since=since, before=None), count=count)
        except QueryTooLarge:
            pass
        now = datetime.fromtimestamp(self.clock(), UTC) + timedelta(minutes=1)
        ids = self._split(parts, since or EARLIEST, now, count=count)
        ids += self._wiql(self.query(parts, since=now, before=None), count=count)
        return list(dict.fromkeys(ids))  # an item changed meanwhile may be in two windows

    def _split(self, parts: Sequence[str], low: datetime, high: datetime, *,
               count: RequestCount) -> list[int]:
        try:
            return self._wiql(self.query(parts, since=low, before=high), count=count)
        except QueryTooLarge:
            if high - low <= FINEST:
                raise FatalSourceError(
                    self.name, f"more than 20,000 work items changed between {low.isoformat()} "
                    f"and {high.isoformat()}", hint="narrow the source with area_path or "
                    "scope") from None
        middle = low + (high - low) / 2
        return (self._split(parts, low, middle, count=count)
                + self._split(parts, middle, high, count=count))

    def _wiql(self, text: str, *, count: RequestCount) -> list[int]:
        response = self.api.send(
            "POST", f"{self.base}/wiql",
            params={"api-version": API_VERSION, "timePrecision": "true"},
            json={"query": text}, count=count,
            what=f"querying the work items of {self.project}")
        body = self._json(response.json(), "workItems", what="a WIQL query")
        return [int(row["id"]) for row in body["workItems"]]

    def _batch(self, ids: Sequence[int], *, count: RequestCount) -> list[Row]:
        response = self.api.send(
            "POST", f"{self.base}/workitemsbatch", params={"api-version": API_VERSION},
            json={"ids": list(ids), "fields": list(FIELDS), "errorPolicy": "omit"},
            count=count, what=f"reading {len(ids)} work items of {self.project}")
        body = self._json(response.json(), "value", what="workitemsbatch")
        # With errorPolicy omit, an item deleted since the query comes back as null.
        return [row for row in body["value"] if isinstance(row, dict)]

    def _json(self, body: Any, key: str, *, what: str) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise FatalSourceError(self.name, f"{what} answered without '{key}'",
                                   hint="check the source's url: it must be the "
                                        "organization's, https://dev.azure.com/ORG")
        return body

    def _details(self, row: Row, count: RequestCount) -> dict[str, list[Row]]:
        number = int(row["id"])
        ref = f"work item {number}"
        updates: list[Row] = []
        while True:
            response = self.api.get(
                f"{self.base}/workItems/{number}/updates",
                params={"api-version": API_VERSION, "$top": UPDATES_PAGE,
                        "$skip": len(updates)},
                count=count, what=f"reading the updates of {ref}")
            chunk = self._json(response.json(), "value", what=f"the updates of {ref}")["value"]
            updates.extend(chunk)
            if len(chunk) < UPDATES_PAGE:
                break
        comments: list[Row] = []
        if (row.get("fields") or {}).get("System.CommentCount", 1):
            paginator = TokenPaginator(self.name)
            while True:
                params: dict[str, str | int] = {"api-version": COMMENTS_VERSION,
                                                "$top": COMMENTS_PAGE, "order": "asc"}
                if paginator.token:
                    params["continuationToken"] = paginator.token
                response = self.api.get(f"{self.base}/workItems/{number}/comments",
                                        params=params, count=count,
                                        what=f"reading the comments of {ref}")
                body = self._json(response.json(), "comments", what=f"the comments of {ref}")
                comments.extend(body["comments"])
                paginator.advance(body.get("continuationToken"))
                if paginator.finished:
                    break
        kinds = {str((row.get("fields") or {}).get("System.WorkItemType") or "")}
        for update in updates:
            change = (update.get("fields") or {}).get("System.WorkItemType") or {}
            kinds.update(str(v) for v in (change.get("oldValue"), change.get("newValue")) if v)
        for kind in sorted(k for k in kinds if k):
            self._states_of(kind, count=count)
        return {"updates": updates, "comments": comments}

    def _states_of(self, kind: str, *, count: RequestCount) -> dict[str, str]:
        known = self._states.get(kind)
        if known is None:
            response = self.api.get(
                f"{self.base}/workitemtypes/{quote(kind, safe='')}/states",
                params={"api-version": API_VERSION}, count=count,
                what=f"reading the states of the work item type {kind!r}")
            rows = self._json(response.json(), "value", what=f"the states of {kind!r}")["value"]
            known = {str(r["name"]): str(r.get("category") or "") for r in rows}
            self._states[kind] = known
        return known

    # -- normalizing ---------------------------------------------------------------------

    def category(self, kind: str, state: str, flags: list[str]) -> StatusCategory:
        found = CATEGORIES.get(self._states.get(kind, {}).get(state, ""))
        if found is None:
            flags.append(f"unknown_state:{kind}/{state}")
            return StatusCategory.IN_PROGRESS
        return found

    def _page(self, rows: list[Row], details: list[dict[str, list[Row]]], requests: int, *,
              until: datetime) -> Page:
        fetched_at = datetime.fromtimestamp(self.clock(), UTC)
        found = [self.normalize(row, detail) for row, detail in zip(rows, details, strict=True)]
        raw = [RawPayload(source=self.name, key=self.key_of(row["id"]),
                          endpoint=f"{self.base}/workitemsbatch", fetched_at=fetched_at,
                          payload={"item": row, **detail})
               for row, detail in zip(rows, details, strict=True)]
        return page_of(self.name, found, raw=raw, requests=requests, until=until)

    def normalize(self, row: Row, detail: Mapping[str, list[Row]]) -> IssueRecords:
        """One work item of ``workitemsbatch`` with its updates and comments."""
        try:
            return self._normalize(row, detail)
        except (KeyError, TypeError, ValueError) as error:
            raise FatalSourceError(
                self.name, f"work item {row.get('id')!r} of {self.project} is not as expected "
                f"({type(error).__name__}: {error})",
                hint="Azure DevOps' payload changed; report it with the item's raw payload",
            ) from error

    def _normalize(self, row: Row, detail: Mapping[str, list[Row]]) -> IssueRecords:
        fields: Mapping[str, Any] = row["fields"]
        key = self.key_of(row["id"])
        flags: list[str] = []
        kind = str(fields.get("System.WorkItemType") or "")
        state = str(fields["System.State"])
        category = self.category(kind, state, flags)
        accounts = [a for a in (account_of(self.name, fields.get("System.AssignedTo")),
                                account_of(self.name, fields.get("System.CreatedBy"))) if a]
        changes, assignments = self._history(key, kind, detail["updates"], accounts, flags)
        if (changes[-1].to_category if changes else None) not in (None, category):
            flags.append("the updates do not end in the current state")
        comments = []
        for comment in detail["comments"]:
            if comment.get("isDeleted"):
                continue
            author = comment.get("createdBy")
            if (met := account_of(self.name, author)) is not None:
                accounts.append(met)
            comments.append(Comment(
                source=self.name, item_key=key,
                # 7.1's Comment has "id"; the 5.x preview answers named it "commentId".
                comment_id=str(comment["id"] if "id" in comment else comment["commentId"]),
                at=parse_moment(str(comment["createdDate"])), author=identity(author),
                body=str(comment.get("text") or "")))
        closed = fields.get("Microsoft.VSTS.Common.ClosedDate") or fields.get(
            "Microsoft.VSTS.Common.StateChangeDate")
        due = fields.get("Microsoft.VSTS.Scheduling.TargetDate") or fields.get(
            "Microsoft.VSTS.Scheduling.DueDate")
        points = next((fields[f] for f in ("Microsoft.VSTS.Scheduling.StoryPoints",
                                           "Microsoft.VSTS.Scheduling.Effort",
                                           "Microsoft.VSTS.Scheduling.Size")
                       if isinstance(fields.get(f), int | float)), None)
        parent = fields.get("System.Parent")
        extra = {name: str(fields[field]) for name, field in (
            ("area_path", "System.AreaPath"), ("iteration_path", "System.IterationPath"))
            if fields.get(field)}
        item = WorkItem(
            source=self.name, key=key, title=str(fields.get("System.Title") or ""),
            item_type=kind or None, status=state, status_category=category,
            assignee=identity(fields.get("System.AssignedTo")),
            reporter=identity(fields.get("System.CreatedBy")),
            created=parse_moment(str(fields["System.CreatedDate"])),
            updated=parse_moment(str(fields["System.ChangedDate"])),
            resolved=parse_moment(str(closed)) if closed and category is StatusCategory.DONE
            else None,
            due=parse_moment(str(due)) if due else None,
            parent=self.key_of(int(parent)) if parent is not None else None,
            labels=tuple(t.strip() for t in str(fields.get("System.Tags") or "").split(";")
                         if t.strip()),
            points=float(points) if points is not None else None,
            url=f"{self.root}/{quote(self.project, safe='')}/_workitems/edit/{row['id']}",
            fields=extra, flags=tuple(dict.fromkeys(flags)))
        return IssueRecords(item=item, changes=tuple(changes), comments=tuple(comments),
                            accounts=tuple(accounts), assignments=tuple(assignments))

    def _history(self, key: str, kind: str, updates: list[Row], accounts: list[Account],
                 flags: list[str]) -> tuple[list[StatusChange], list[AssigneeChange]]:
        """State changes and assignee changes, replayed from the updates in ``rev`` order.

        An update's moment is its ``System.ChangedDate`` (its ``revisedDate`` is when the
        *next* revision replaced it: 9999-01-01 for the latest).
        """
        changes: list[StatusChange] = []
        assignments: list[AssigneeChange] = []
        for update in sorted(updates, key=lambda u: (int(u.get("rev") or 0), int(u["id"]))):
            fields = update.get("fields") or {}
            stamp = (fields.get("System.ChangedDate") or {}).get("newValue")
            if not stamp:
                continue  # a links-only update: no field changed, no moment of its own
            at = parse_moment(str(stamp))
            by = update.get("revisedBy")
            kind = str((fields.get("System.WorkItemType") or {}).get("newValue") or kind)
            moved = fields.get("System.State") or {}
            if moved.get("oldValue") and moved.get("newValue"):
                old, new = str(moved["oldValue"]), str(moved["newValue"])
                changes.append(StatusChange(
                    source=self.name, item_key=key, change_id=f"update-{update['id']}", at=at,
                    author=identity(by), from_status=old, to_status=new,
                    from_category=self.category(kind, old, flags),
                    to_category=self.category(kind, new, flags)))
            handed = fields.get("System.AssignedTo")
            if isinstance(handed, Mapping):
                before, after = identity(handed.get("oldValue")), identity(handed.get("newValue"))
                if before != after:
                    assignments.append(AssigneeChange(
                        source=self.name, item_key=key, change_id=f"update-{update['id']}",
                        at=at, author=identity(by), from_account=before, to_account=after))
            if changes or assignments:
                for someone in (by, handed.get("newValue") if isinstance(handed, Mapping)
                                else None):
                    if (met := account_of(self.name, someone)) is not None:
                        accounts.append(met)
        return changes, assignments
