"""Redmine over its REST API (source kind ``redmine``), on httpx.

Each fetch reads the site's statuses, trackers and the key's own user once, then pages
through ``GET /issues.json?status_id=*&sort=updated_on,id&updated_on=>=<since>`` (with
``project_id`` when the source names a project; without ``status_id=*`` Redmine lists open
issues only) and reads each issue's journals (``GET /issues/{id}.json?include=journals``,
``concurrency`` at a time: Redmine has no bulk endpoint for journals). A journal's
``status_id`` detail is a status change; its ``notes`` are a comment.

Paging is by key, not by offset: each request asks for ``updated_on >= `` the last page's
highest ``updated_on`` and drops the issues already read at that second. Offset paging
over a list sorted by ``updated_on`` skips an issue whenever an earlier one is updated
during the sync (the list shifts under the offset); by key, nothing can be skipped. Only
when more than a page of issues share one second does the offset step through them.

Keys are ``<source>#<id>`` (``ops#12``): Redmine's issue ids are unique per site, and the
source name tells sites apart in reports. Statuses map to categories by Redmine's own
flags: a closed status (``is_closed``) is ``done``; a tracker's default status (and the
first status) is ``todo``; every other status is ``in_progress``.

People: an administrator's API key can read logins (``/users/{id}.json``), so accounts are
logins (write ``accounts: {redmine: jsmith}`` in the plan); any other key sees numeric ids
only, so accounts are ids (``accounts: {redmine: "5"}``). The choice is made once per sync
from ``/users/current.json`` so that one sync never mixes the two. ``/users/{id}.json``
answers with the user's own API key: only login, name and e-mail are kept from it.

``stratmap push`` (:meth:`RedmineConnector.check`, :meth:`RedmineConnector.apply`): a
``{version: NAME}`` selector names the version of that name the source's project sees
(its own, and versions other projects share with it); only its date is pushed (a version
has no assignee). ``GET /projects/{project}/versions.json`` answers every version at once
(the date as ``due_date``); ``PUT /versions/{id}.json`` with ``{"version":
{"effective_date": "YYYY-MM-DD"}}`` sets it (``effective_date`` is the attribute,
``due_date`` its alias) and answers ``204 No Content``. Editing needs the *Manage versions*
permission in the project that owns the version.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any, ClassVar

import httpx

from stratmap.connectors.base import (
    AuthError,
    Difference,
    FatalSourceError,
    NotFound,
    PushCheck,
    RateLimited,
    RequestCount,
    RetriableError,
    RetryPolicy,
    SourceError,
    Target,
    Window,
    error_for_status,
    with_retries,
)
from stratmap.connectors.transport_errors import transport_error
from stratmap.models.plan import RedmineSource
from stratmap.models.records import (
    Account,
    AssigneeChange,
    Comment,
    Page,
    RawPayload,
    StatusCategory,
    StatusChange,
    WorkItem,
    utcnow,
)

log = logging.getLogger(__name__)

ISSUES = "/issues.json"
AUTH_HINT = (
    "check the API key (My account -> API access key), that the REST API is enabled "
    "(Administration -> Settings -> API) and that the key's user may see the project"
)
URL_HINT = "check url: it must be Redmine's base url, e.g. https://redmine.example.com"
POINTS_FIELDS = frozenset({"story points", "points"})
WRITE_HINT = ("the API key's user needs the Manage versions permission in the project that owns "
              "the version (Administration -> Roles and permissions); `stratmap push` without "
              "--apply only reads")


@dataclass
class _Site:
    """What one sync learns about the site before reading issues."""

    statuses: dict[str, tuple[str, StatusCategory]]
    """status id -> (name, category)"""
    logins: bool
    """Whether the key can read logins (an administrator's key)."""


@dataclass
class _Issue:
    listed: dict[str, Any]
    detail: dict[str, Any] | None = None
    flags: list[str] = field(default_factory=list)


def format_since(moment: datetime) -> str:
    """``updated_on`` as Redmine's filter accepts it: whole seconds, UTC, ``Z``.

    Redmine refuses fractions and ``+00:00`` (HTTP 422); flooring re-reads at most a second.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class RedmineConnector:
    """One Redmine site (optionally one project and its subprojects)."""

    kind: ClassVar[str] = "redmine"
    ordered: bool = True

    def __init__(
        self,
        name: str,
        config: RedmineSource,
        *,
        token: str | None,
        transport: httpx.BaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self._base = config.url.rstrip("/")
        headers = {"Accept": "application/json"}
        if token:
            headers["X-Redmine-API-Key"] = token
        self._authenticated = bool(token)
        self._client = httpx.Client(
            base_url=self._base, headers=headers, timeout=config.timeout, transport=transport,
            follow_redirects=True,
        )
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._pool: ThreadPoolExecutor | None = None
        self._accounts: dict[str, Account] = {}
        """user id -> account, for this connector's life (one sync)"""

    # -- the Connector protocol ---------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        """Issues updated since ``window.since`` (all on a full sync), oldest first."""
        count = RequestCount()
        site = self._site(count)
        for listed in self._listed_pages(window.since, count):
            issues = [_Issue(listed=entry) for entry in listed]
            self._read_journals(issues, count)
            yield self._page(site, issues, listed, count)
            count = RequestCount()

    def resolve(self, selector: Mapping[str, object]) -> frozenset[str] | None:
        """Keys of a ``query`` selector (a saved query's id); None for the others.

        ``version`` and ``tracker`` are evaluated from stored fields by the engine. The saved
        query's own filters apply, including its status filter: save it with "Status: any"
        or closed issues leave the selection (and the milestone) when they close.
        """
        query = selector.get("query")
        if query is None:
            return None
        try:
            return self._keys({"query_id": str(query)}, RequestCount())
        except FatalSourceError as error:
            if isinstance(error, AuthError):
                raise AuthError(
                    self.name, f"{error.message} for the saved query {query}",
                    hint="make the query public, or use the key of a user who can see it",
                ) from error
            raise FatalSourceError(
                self.name, f"{error.message} for the saved query {query}",
                hint="check the selector's query: the number in /issues?query_id=N",
            ) from error

    def reconcile(self) -> frozenset[str]:
        """Every key now in scope, so the store can drop issues deleted or moved out.

        Paged by id (``issue_id>=N``), not by offset: an issue deleted meanwhile would shift
        the offsets and hide another, which the store would then mark removed.
        """
        count = RequestCount()
        keys: set[str] = set()
        after = 0
        while True:
            params: dict[str, object] = {"status_id": "*", "sort": "id",
                                         "limit": self.config.page_size, "offset": 0}
            if after:
                params["issue_id"] = f">={after + 1}"
            listed = self._get(ISSUES, self._scoped(params), count).get("issues") or []
            keys.update(self._key(i["id"]) for i in listed)
            if len(listed) < self.config.page_size:
                return frozenset(keys)
            highest = max(int(i["id"]) for i in listed)
            if highest <= after:
                raise FatalSourceError(self.name, f"issue_id>={after + 1} listed lower ids",
                                       hint="this is a Redmine bug; retry later")
            after = highest

    # -- the Pusher protocol (``stratmap push``): :mod:`connectors.redmine.push` --

    def check(self, targets: Sequence[Target]) -> PushCheck:
        """What ``stratmap push`` would change: :func:`connectors.redmine.push.check`."""
        from stratmap.connectors.redmine.push import check

        return check(self, targets)

    def apply(self, difference: Difference) -> None:
        """Write one difference :meth:`check` found: :func:`connectors.redmine.push.apply`."""
        from stratmap.connectors.redmine.push import apply

        apply(self, difference)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        self._client.close()

    def __enter__(self) -> RedmineConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- HTTP ----------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, object] | None, count: RequestCount) -> Any:
        return self._send("GET", path, None, count, params=params)

    def _send(self, method: str, path: str, body: Mapping[str, object] | None,
              count: RequestCount, *, params: Mapping[str, object] | None = None) -> Any:
        """One request, retried per the policy; the JSON answer (None for ``204``)."""
        what = f"{method} {path}"
        try:
            return with_retries(lambda: self._once(path, params, count, what, method=method,
                                                   body=body),
                                policy=self._policy, sleep=self._sleep, rng=self._rng)
        except RateLimited as error:
            raise RateLimited(
                self.name, f"{what} was still rate-limited after {self._policy.attempts} attempts",
                retry_after=error.retry_after, hint="sync less often, or lower concurrency",
            ) from error
        except RetriableError as error:
            raise RetriableError(
                self.name, f"gave up after {self._policy.attempts} attempts: {error.message}",
                hint="Redmine may be down or overloaded; the next sync will try again",
            ) from error

    def _once(self, path: str, params: Mapping[str, object] | None, count: RequestCount,
              what: str, *, method: str = "GET", body: Mapping[str, object] | None = None,
              ) -> Any:
        count.add()
        query = {k: str(v) for k, v in (params or {}).items()}
        log.debug("source '%s': %s %s", self.name, what, query)
        try:
            response = self._client.request(method, path, params=query, json=body)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise transport_error(self.name, what, error, url_hint=URL_HINT) from error
        classed = error_for_status(self.name, response.status_code,
                                   retry_after=response.headers.get("Retry-After"), what=what)
        if classed is not None:
            raise self._refine(classed, response)
        if method != "GET" and (response.status_code == 204 or not response.content.strip()):
            return None  # an edit: Redmine answers 204 No Content
        if "json" not in response.headers.get("Content-Type", ""):
            raise FatalSourceError(self.name, f"{what} did not answer JSON", hint=URL_HINT)
        try:
            return response.json()
        except ValueError:
            raise RetriableError(self.name, f"{what} returned a truncated JSON body") from None

    def _refine(self, classed: SourceError, response: httpx.Response) -> SourceError:
        if isinstance(classed, AuthError):
            return AuthError(self.name, classed.message, hint=AUTH_HINT)
        if isinstance(classed, RetriableError):
            return classed
        detail = _redmine_errors(response)
        message = f"{classed.message}: {detail}" if detail else classed.message
        if isinstance(classed, NotFound):
            hint = (f"check the source's project {self.config.project!r} (its identifier) and url"
                    if self.config.project else URL_HINT)
            return NotFound(self.name, message, hint=hint)
        return FatalSourceError(self.name, message, hint=classed.hint)

    def _scoped(self, params: dict[str, object]) -> dict[str, object]:
        if self.config.project:
            params["project_id"] = self.config.project
        return params

    # -- the site ------------------------------------------------------------------------

    def _site(self, count: RequestCount) -> _Site:
        """Statuses with their categories, and whether logins can be read."""
        logins = False
        if self._authenticated:
            user = self._get("/users/current.json", None, count).get("user") or {}
            logins = bool(user.get("admin"))
        listed = self._get("/issue_statuses.json", None, count).get("issue_statuses") or []
        defaults: set[str] = set()
        try:
            for tracker in self._get("/trackers.json", None, count).get("trackers") or []:
                default = tracker.get("default_status") or {}
                if default.get("id") is not None:
                    defaults.add(str(default["id"]))
        except AuthError:
            log.info("source '%s': cannot read trackers; the first status is 'todo'", self.name)
        if listed:
            defaults.add(str(listed[0]["id"]))
        statuses: dict[str, tuple[str, StatusCategory]] = {}
        for status in listed:
            sid = str(status["id"])
            category = (StatusCategory.DONE if status.get("is_closed")
                        else StatusCategory.TODO if sid in defaults
                        else StatusCategory.IN_PROGRESS)
            statuses[sid] = (str(status.get("name") or sid), category)
        return _Site(statuses=statuses, logins=logins)

    # -- paging --------------------------------------------------------------------------

    def _listed_pages(self, since: datetime | None,
                      count: RequestCount) -> Iterator[list[dict[str, Any]]]:
        """Pages of listed issues updated at or after ``since``, by ``(updated_on, id)``.

        Redmine reads ``updated_on>=T`` as ``updated_on > T - 1s`` on its stored stamps
        (which have microseconds), so each answer may start with issues of the second
        before ``T``; those already read are dropped by ``(id, updated_on)``. The filter
        moves to the last issue's second; when a page moves it nowhere (a page of issues
        read before, or all in one second), the offset steps on within the same filter.
        """
        size = self.config.page_size
        cursor = None if since is None else format_since(since)
        offset = 0
        read: dict[int, str] = {}
        """id -> the updated_on it was read at"""
        asked: set[tuple[str | None, int]] = set()
        while True:
            if (cursor, offset) in asked:
                raise FatalSourceError(
                    self.name, f"paging repeated itself at updated_on {cursor}, offset {offset}",
                    hint="this is a Redmine bug or a concurrent bulk edit; retry later",
                )
            asked.add((cursor, offset))
            params: dict[str, object] = {"status_id": "*", "sort": "updated_on,id",
                                         "limit": size, "offset": offset}
            if cursor is not None:
                params["updated_on"] = f">={cursor}"
            data = self._get(ISSUES, self._scoped(params), count)
            listed: list[dict[str, Any]] = list(data.get("issues") or [])
            fresh = [i for i in listed if read.get(int(i["id"])) != _stamp(i)]
            read.update((int(i["id"]), _stamp(i)) for i in listed)
            if fresh:
                yield fresh
            if len(listed) < size:
                return
            last = _stamp(listed[-1])
            if cursor is None or last > cursor:
                cursor, offset = last, 0
            else:
                offset += len(listed)

    def _keys(self, params: dict[str, object], count: RequestCount) -> frozenset[str]:
        """Keys of every issue a saved query selects, paged by offset over ``sort=id``
        (Redmine ignores other filters next to ``query_id``)."""
        keys: set[str] = set()
        offset = 0
        size = self.config.page_size
        while True:
            page = {**params, "status_id": "*", "sort": "id", "limit": size, "offset": offset}
            data = self._get(ISSUES, self._scoped(page), count)
            listed = data.get("issues") or []
            keys.update(self._key(i["id"]) for i in listed)
            offset += len(listed)
            if len(listed) < size or offset >= int(data.get("total_count") or 0):
                return frozenset(keys)

    def _read_journals(self, issues: list[_Issue], count: RequestCount) -> None:
        """Each issue's detail with journals, ``concurrency`` at a time."""
        def read(issue: _Issue) -> None:
            path = f"/issues/{issue.listed['id']}.json"
            try:
                issue.detail = self._get(path, {"include": "journals"}, count).get("issue")
            except NotFound:
                issue.detail = None  # deleted since it was listed: the reconcile drops it

        if self.config.concurrency == 1 or len(issues) < 2:
            for issue in issues:
                read(issue)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.config.concurrency,
                                            thread_name_prefix=f"redmine-{self.name}")
        for future in [self._pool.submit(read, issue) for issue in issues]:
            future.result()

    # -- people --------------------------------------------------------------------------

    def _account(self, user: Mapping[str, Any] | None, site: _Site,
                 count: RequestCount) -> Account | None:
        if not user or user.get("id") is None:
            return None
        uid = str(user["id"])
        known = self._accounts.get(uid)
        if known is not None:
            return known
        name = str(user.get("name") or "") or None
        account = Account(source=self.name, account_id=uid, display_name=name)
        if site.logins:
            try:
                found = self._get(f"/users/{uid}.json", None, count).get("user") or {}
            except NotFound:
                found = {}  # a group, or the anonymous user: no login to read
            # Only these fields: the payload also carries the user's own API key.
            if found.get("login"):
                full = " ".join(str(found.get(k) or "") for k in ("firstname", "lastname"))
                account = Account(source=self.name, account_id=str(found["login"]),
                                  display_name=full.strip() or name,
                                  email=found.get("mail") or None)
        self._accounts[uid] = account
        return account

    # -- normalizing ---------------------------------------------------------------------

    def _key(self, issue_id: object) -> str:
        return f"{self.name}#{issue_id}"

    def _status(self, site: _Site, status_id: object, fallback: Mapping[str, Any] | None,
                flags: list[str]) -> tuple[str, StatusCategory]:
        known = site.statuses.get(str(status_id))
        if known is not None:
            return known
        flags.append(f"unknown status id {status_id}")
        fallback = fallback or {}
        name = str(fallback.get("name") or f"status {status_id}")
        return name, (StatusCategory.DONE if fallback.get("is_closed")
                      else StatusCategory.IN_PROGRESS)

    def _page(self, site: _Site, issues: list[_Issue], listed: list[dict[str, Any]],
              count: RequestCount) -> Page:
        fetched_at = utcnow()
        items: list[WorkItem] = []
        changes: list[StatusChange] = []
        comments: list[Comment] = []
        assignments: list[AssigneeChange] = []
        accounts: dict[str, Account] = {}
        raw: list[RawPayload] = []

        def who(user: Mapping[str, Any] | None) -> str | None:
            account = self._account(user, site, count)
            if account is None:
                return None
            accounts[account.account_id] = account
            return account.account_id

        for issue in issues:
            if issue.detail is None:
                continue
            payload = issue.detail
            key = self._key(payload["id"])
            flags = list(issue.flags)
            try:
                for journal in payload.get("journals") or []:
                    at = parse_time(journal["created_on"])
                    author = who(journal.get("user"))
                    for detail in journal.get("details") or []:
                        if (detail.get("property") == "attr"
                                and detail.get("name") == "assigned_to_id"):
                            before, after = detail.get("old_value"), detail.get("new_value")
                            assignments.append(AssigneeChange(
                                source=self.name, item_key=key, change_id=str(journal["id"]),
                                at=at, author=author,
                                from_account=who({"id": before}) if before else None,
                                to_account=who({"id": after}) if after else None,
                            ))
                        if detail.get("property") == "attr" and detail.get("name") == "status_id":
                            old = detail.get("old_value")
                            new_name, new_category = self._status(
                                site, detail.get("new_value"), None, flags)
                            old_status = (self._status(site, old, None, flags)
                                          if old is not None else None)
                            changes.append(StatusChange(
                                source=self.name, item_key=key, change_id=str(journal["id"]),
                                at=at, author=author,
                                from_status=old_status[0] if old_status else None,
                                to_status=new_name, to_category=new_category,
                                from_category=old_status[1] if old_status else None,
                            ))
                    if (journal.get("notes") or "").strip():
                        comments.append(Comment(
                            source=self.name, item_key=key, comment_id=str(journal["id"]),
                            at=at, author=author, body=str(journal["notes"]),
                        ))
                items.append(self._item(site, payload, key, flags, who))
            except (KeyError, TypeError, ValueError) as error:
                log.warning("source '%s': cannot read issue %s: %s", self.name, key, error)
                continue
            raw.append(RawPayload(
                source=self.name, key=key, fetched_at=fetched_at, payload=payload,
                endpoint=f"{self._base}/issues/{payload['id']}.json?include=journals",
            ))
        kept = {item.key for item in items}
        changes = [c for c in changes if c.item_key in kept]
        comments = [c for c in comments if c.item_key in kept]
        assignments = [a for a in assignments if a.item_key in kept]
        log.info("source '%s': page of %d issues, %d requests", self.name, len(items),
                 count.value)
        return Page(
            source=self.name, items=tuple(items), changes=tuple(changes),
            comments=tuple(comments), accounts=tuple(accounts.values()), raw=tuple(raw),
            # The listing's stamps, not the details': the details may be newer than issues
            # not yet listed, and the watermark must not pass those.
            cursor=max((parse_time(i["updated_on"]) for i in listed), default=None),
            requests=count.value, assignments=tuple(assignments),
        )

    def _item(self, site: _Site, payload: dict[str, Any], key: str, flags: list[str],
              who: Callable[[Mapping[str, Any] | None], str | None]) -> WorkItem:
        status = payload.get("status") or {}
        name, category = self._status(site, status.get("id"), status, flags)
        fields: dict[str, str] = {}
        for label, value in (("project", (payload.get("project") or {}).get("name")),
                             ("priority", (payload.get("priority") or {}).get("name")),
                             ("category", (payload.get("category") or {}).get("name"))):
            if value:
                fields[label] = str(value)
        points: float | None = None
        for custom in payload.get("custom_fields") or []:
            value = custom.get("value")
            if value in (None, "", []):
                continue
            text = ";".join(map(str, value)) if isinstance(value, list) else str(value)
            fields[str(custom.get("name"))] = text
            if str(custom.get("name", "")).strip().lower() in POINTS_FIELDS:
                try:
                    points = float(text)
                except ValueError:
                    flags.append(f"points {text!r} is not a number")
        parent = payload.get("parent") or {}
        closed = payload.get("closed_on")
        return WorkItem(
            source=self.name, key=key, title=str(payload.get("subject") or ""),
            item_type=(payload.get("tracker") or {}).get("name"),
            status=name, status_category=category,
            assignee=who(payload.get("assigned_to")), reporter=who(payload.get("author")),
            created=parse_time(payload["created_on"]),
            updated=parse_time(payload["updated_on"]),
            resolved=parse_time(closed) if closed and category is StatusCategory.DONE else None,
            due=_day(payload.get("due_date")),
            parent=self._key(parent["id"]) if parent.get("id") is not None else None,
            container=(payload.get("fixed_version") or {}).get("name"),
            points=points, url=f"{self._base}/issues/{payload['id']}", fields=fields,
            flags=tuple(dict.fromkeys(flags)),
        )


def _stamp(issue: Mapping[str, Any]) -> str:
    """An issue's ``updated_on`` as the filter writes it (whole seconds, ``Z``)."""
    return format_since(parse_time(str(issue["updated_on"])))


def _day(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.combine(date.fromisoformat(str(value)), clock_time(0, 0), tzinfo=UTC)


def _redmine_errors(response: httpx.Response) -> str:
    """Redmine's own explanation (``{"errors": [...]}``), if any."""
    try:
        data = response.json()
    except ValueError:
        return ""
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list):
        return ""
    return "; ".join(str(e) for e in errors)[:500]
