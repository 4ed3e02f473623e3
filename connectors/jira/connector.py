"""The Jira connector: Cloud (``/rest/api/3/search/jql``), Data Center (``/rest/api/2/search``).

Each fetch reads the site's fields and statuses once, then pages through
``(<scope>) AND updated >= <since> ORDER BY updated ASC`` and completes every issue's
history (:mod:`connectors.jira.history`) before yielding its page.

Cloud search is eventually consistent and never reports a total: it pages by
``nextPageToken``. Data Center reports a total, so its remaining pages are read
concurrently; offset paging over a moving result set can skip an issue, so when the
count does not add up the window is listed again (keys and stamps only) and whatever the
first pass missed is read by key.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal

from jira import JIRA

from stratmap.connectors.base import (
    AuthError,
    Difference,
    FatalSourceError,
    IssueRecords,
    NotFound,
    PushCheck,
    RequestCount,
    RetryPolicy,
    Target,
    TokenPaginator,
    Window,
    page_of,
)
from stratmap.connectors.jira.declarations import DeclaredField, declarations, declared_field
from stratmap.connectors.jira.history import HistoryReader, Searched
from stratmap.connectors.jira.jql import jql_problem, jql_quote, selector_jql, window_jql
from stratmap.connectors.jira.payloads import (
    Site,
    discover_fields,
    normalize_issue,
    parse_time,
    shown_users,
    status_categories,
    user_keys,
)
from stratmap.connectors.jira.transport import AUTH_HINT, SessionFactory, Transport
from stratmap.models.plan import JiraSource
from stratmap.models.records import (
    Page,
    RawPayload,
    utcnow,
)

log = logging.getLogger(__name__)

CLOUD_SEARCH = "/rest/api/3/search/jql"
DC_SEARCH = "/rest/api/2/search"
CLOUD_KEYS_PAGE = 5000
DC_KEYS_PAGE = 1000
CLOUD_OVERLAP = timedelta(minutes=15)
DC_OVERLAP = timedelta(minutes=5)
PREFETCH = 2
"""Cloud search pages read ahead of the one being written."""

Deployment = Literal["cloud", "datacenter"]


@dataclass
class _Batch:
    issues: list[Searched]
    count: RequestCount
    total: int | None = None


class JiraConnector:
    """Reads one Jira source: a site and a JQL scope.

    ``token`` is the resolved secret (an API token with ``config.email`` on Cloud, a
    personal access token on Data Center). ``sleep``, ``clock`` and ``rng`` drive the
    retry waits and exist to be replaced in tests.
    """

    kind: ClassVar[str] = "jira"
    ordered: bool = True

    def __init__(
        self,
        name: str,
        config: JiraSource,
        *,
        token: str,
        session_factory: SessionFactory | None = None,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.config = config
        if not token:
            raise AuthError(name, "no token was given", hint=AUTH_HINT)
        problem = jql_problem(config.scope)
        if problem:
            raise FatalSourceError(
                name, f"the scope JQL cannot be used: {problem}", hint="check the source's scope"
            )
        self._base = config.url.rstrip("/")
        self._deployment: Deployment | None = (
            None if config.deployment == "auto" else config.deployment
        )
        auth: dict[str, Any] = (
            {"basic_auth": (config.email, token)} if config.email else {"token_auth": token}
        )
        client = (session_factory or JIRA)(
            server=self._base,
            timeout=config.timeout,
            max_retries=0,
            get_server_info=False,
            validate=False,
            options={"check_update": False},
            **auth,
        )
        self._http = Transport(
            name,
            client,
            self._base,
            policy=retry_policy or RetryPolicy(),
            sleep=sleep,
            clock=clock,
            rng=rng or random.Random(),
            pool_size=config.concurrency,
        )
        self._history = HistoryReader(name, self._http)
        self._user_names_cache: dict[str, str | None] = {}
        self._declared: DeclaredField | None = None
        self._closed = False

    # -- the Connector protocol ---------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        """Issues updated since ``window.since`` (all on a full sync), oldest first."""
        count = RequestCount()
        site = self._site(count)
        jql = window_jql(self.config.scope, window.since)
        log.info("source '%s': searching %s", self.name, jql)
        endpoint = CLOUD_SEARCH if site.cloud else DC_SEARCH
        stored = window.stored if window.since is not None else {}
        batches = (
            self._cloud_batches(site, jql, count, stored)
            if site.cloud
            else self._dc_batches(site, jql, count, stored)
        )
        for batch in batches:
            yield self._page(site, batch, endpoint)

    def resolve(self, selector: Mapping[str, object]) -> frozenset[str] | None:
        """Keys for a ``jql`` selector, limited to the scope; None for the others.

        ``epic``, ``keys`` and ``labels`` are evaluated from stored fields by the engine.
        """
        jql = selector.get("jql")
        if jql is None:
            return None
        if not isinstance(jql, str) or jql_problem(jql):
            problem = jql_problem(jql) if isinstance(jql, str) else "it is not text"
            raise FatalSourceError(
                self.name,
                f"the selector jql {jql!r} cannot be used: {problem}",
                hint="write one JQL condition, without ORDER BY",
            )
        count = RequestCount()
        cloud = self.deployment == "cloud"
        try:
            return self._keys(selector_jql(self.config.scope, jql), cloud, count)
        except FatalSourceError as error:
            if type(error) is not FatalSourceError:  # auth, or a wrong url: not the selector
                raise
            raise FatalSourceError(
                self.name, error.message, hint=f"check the selector's jql: {jql}"
            ) from error

    def reconcile(self) -> frozenset[str]:
        """Every key now in scope, so the store can drop issues deleted or moved out."""
        count = RequestCount()
        cloud = self.deployment == "cloud"
        return self._keys(f"({self.config.scope})", cloud, count)

    def check(self, targets: Sequence[Target]) -> PushCheck:
        """``stratmap push``: the epics the plan names, against its due dates and owners."""
        from stratmap.connectors.jira import push

        return push.check(self, targets)

    def apply(self, difference: Difference) -> None:
        """``stratmap push --apply``: write one difference :meth:`check` found."""
        from stratmap.connectors.jira import push

        push.apply(self, difference)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._http.close()

    def __enter__(self) -> JiraConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the site ------------------------------------------------------------------------

    @property
    def deployment(self) -> Deployment:
        """``cloud`` or ``datacenter``: from the config, else asked once of ``serverInfo``."""
        if self._deployment is None:
            self._deployment = self._detect(RequestCount())
        return self._deployment

    @property
    def default_overlap(self) -> timedelta:
        """How far each incremental sync re-reads before the watermark.

        Cloud search is eventually consistent (an update can appear minutes after its
        ``updated`` stamp), hence 15 minutes there. May ask ``serverInfo`` once.
        """
        if self.config.overlap is not None:
            return self.config.overlap
        return CLOUD_OVERLAP if self.deployment == "cloud" else DC_OVERLAP

    def _detect(self, count: RequestCount) -> Deployment:
        info = self._http.get("/rest/api/2/serverInfo", count=count)
        kind = info.get("deploymentType") if isinstance(info, dict) else None
        log.info("source '%s': Jira deploymentType %s", self.name, kind)
        return "cloud" if kind == "Cloud" else "datacenter"

    def _site(self, count: RequestCount) -> Site:
        if self._deployment is None:
            self._deployment = self._detect(count)
        cloud = self._deployment == "cloud"
        # The statuses are asked beside the field list, not after it: one round trip less
        # on every sync (a scheduled run with nothing new makes three requests in all). On
        # a daemon thread: when the field list fails or Ctrl-C stops the run, nothing waits
        # for a tracker that does not answer.
        asked: dict[str, Any] = {}

        def ask_statuses() -> None:
            try:
                asked["statuses"] = self._http.get("/rest/api/2/status", count=count)
            except BaseException as error:  # handed to the caller's thread
                asked["error"] = error

        beside = threading.Thread(target=ask_statuses, name="jira-site-" + self.name,
                                  daemon=True)
        beside.start()
        fields = self._http.get(f"/rest/api/{3 if cloud else 2}/field", count=count)
        beside.join()
        if "error" in asked:
            raise asked["error"]
        statuses = asked["statuses"]
        points, epic_link = discover_fields(fields if isinstance(fields, list) else [])
        self._declared = declared_field(self.config.declared_status_field,
                                        self.config.declared_status_values,
                                        fields if isinstance(fields, list) else [])
        if self.config.declared_status_field and self._declared is None:
            log.warning("source '%s': no field %r for declared status on this site",
                        self.name, self.config.declared_status_field)
        return Site(
            cloud=cloud,
            base_url=self._base,
            points_field=self.config.points_field or points,
            epic_link_field=None if cloud else epic_link,
            status_categories=status_categories(statuses if isinstance(statuses, list) else []),
            declared_field=self._declared.id if self._declared else None,
        )

    # -- searching -----------------------------------------------------------------------

    def _cloud_batches(self, site: Site, jql: str, count: RequestCount,
                       stored: Mapping[str, datetime]) -> Iterator[_Batch]:
        """Search pages in order, read ahead.

        The cursor is sequential, so a walker thread fetches the next pages while this one's
        history is completed and the caller writes the one before: at most ``PREFETCH`` pages
        wait, so memory stays bounded however large the window.
        """
        ahead: queue.Queue[Future[_Batch] | BaseException | None] = queue.Queue(PREFETCH)
        stop = threading.Event()

        def offer(entry: Future[_Batch] | BaseException | None) -> bool:
            while not stop.is_set():
                try:
                    ahead.put(entry, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def walk(pool: ThreadPoolExecutor, completer: ThreadPoolExecutor) -> None:
            pages = TokenPaginator(self.name)
            page_count = count
            try:
                while not pages.finished and not stop.is_set():
                    body: dict[str, object] = {
                        "jql": jql,
                        "fields": site.search_fields(),
                        "expand": "changelog",
                        "maxResults": self.config.page_size,
                    }
                    if pages.token:
                        body["nextPageToken"] = pages.token
                    data = self._http.post(CLOUD_SEARCH, body, count=page_count)
                    pages.advance(None if data.get("isLast") else data.get("nextPageToken"))
                    issues = _searched(data, stored)
                    if issues:
                        completed = completer.submit(self._completed, site, issues, page_count, pool)
                        if not offer(completed):
                            return
                        page_count = RequestCount()
                offer(None)
            except BaseException as error:  # handed to the caller's thread
                offer(error)

        with (
            ThreadPoolExecutor(self.config.concurrency, "jira-" + self.name) as pool,
            ThreadPoolExecutor(PREFETCH, "jira-page-" + self.name) as completer,
        ):
            walker = threading.Thread(
                target=walk, args=(pool, completer), name="jira-cursor-" + self.name, daemon=True
            )
            walker.start()
            try:
                while (entry := ahead.get()) is not None:
                    if isinstance(entry, BaseException):
                        raise entry
                    yield entry.result()
            finally:
                stop.set()
                walker.join()

    def _completed(
        self, site: Site, issues: list[Searched], count: RequestCount, pool: ThreadPoolExecutor
    ) -> _Batch:
        self._history.complete(site, issues, count, pool)
        return _Batch(issues, count)

    def _dc_batch(
        self, site: Site, jql: str, start: int, size: int, stored: Mapping[str, datetime],
        pool: ThreadPoolExecutor | None = None,
    ) -> _Batch:
        """One Data Center search page, completed.

        With ``pool``, runs on a page thread and makes every request through ``pool``, so the
        requests in flight never pass the source's concurrency while a page's issues are
        completed at once rather than one after another.
        """
        count = RequestCount()
        if pool is None:
            data = self._dc_page(site, jql, start, size, count)
        else:
            data = pool.submit(self._dc_page, site, jql, start, size, count).result()
        issues = _searched(data, stored)
        self._history.complete(site, issues, count, pool)
        return _Batch(issues, count, int(data.get("total") or 0))

    def _dc_page(
        self, site: Site, jql: str, start: int, size: int, count: RequestCount
    ) -> dict[str, Any]:
        body = {
            "jql": jql,
            "startAt": start,
            "maxResults": size,
            "fields": site.search_fields(),
            "expand": ["changelog"],
        }
        data: dict[str, Any] = self._http.post(DC_SEARCH, body, count=count)
        return data

    def _dc_batches(self, site: Site, jql: str, count: RequestCount,
                    stored: Mapping[str, datetime]) -> Iterator[_Batch]:
        first = self._dc_page(site, jql, 0, self.config.page_size, count)
        total = int(first.get("total") or 0)
        step = int(first.get("maxResults") or self.config.page_size) or 1
        issues = _searched(first, stored)
        seen: dict[str, str] = {}
        moved = False
        with (
            ThreadPoolExecutor(self.config.concurrency, "jira-" + self.name) as pool,
            ThreadPoolExecutor(self.config.concurrency, "jira-page-" + self.name) as pages,
        ):
            if issues:
                self._history.complete(site, issues, count, pool)
                seen.update((i.key, _updated(i)) for i in issues)
                yield _Batch(issues, count, total)
            offsets = iter(range(step, total, step)) if issues else iter(())
            running: list[Future[_Batch]] = []
            try:
                while True:
                    while len(running) < self.config.concurrency:
                        start = next(offsets, None)
                        if start is None:
                            break
                        running.append(
                            pages.submit(self._dc_batch, site, jql, start, step, stored, pool)
                        )
                    if not running:
                        break
                    batch = running.pop(0).result()
                    moved = moved or batch.total != total
                    if batch.issues:
                        seen.update((i.key, _updated(i)) for i in batch.issues)
                        yield batch
            finally:
                for future in running:
                    future.cancel()
        if moved or len(seen) < total:
            log.warning(
                "source '%s': the result set moved while paging (%d of %d seen); re-reading",
                self.name,
                len(seen),
                total,
            )
            yield from self._dc_sweep(site, jql, seen, step, stored)

    def _dc_sweep(self, site: Site, jql: str, seen: dict[str, str], size: int,
                  stored: Mapping[str, datetime]) -> Iterator[_Batch]:
        """Re-list the window cheaply (keys and stamps), then read what the first pass missed."""
        missed = [
            str(i["key"])
            for i in self._scan(jql, cloud=False, fields=["updated"], count=RequestCount())
            if seen.get(str(i.get("key"))) != str((i.get("fields") or {}).get("updated"))
        ]
        for offset in range(0, len(missed), size):
            keys = ", ".join(jql_quote(key) for key in missed[offset : offset + size])
            batch = self._dc_batch(
                site, f"({self.config.scope}) AND key in ({keys}) ORDER BY updated ASC", 0, size,
                stored,
            )
            if batch.issues:
                yield batch

    def _keys(self, jql: str, cloud: bool, count: RequestCount) -> frozenset[str]:
        issues = self._scan(jql, cloud=cloud, fields=["key"], count=count)
        return frozenset(str(i["key"]) for i in issues if i.get("key"))

    def _scan(
        self, jql: str, *, cloud: bool, fields: list[str], count: RequestCount
    ) -> Iterator[dict[str, Any]]:
        """A light search (a few fields, the largest pages), serially to the end."""
        if cloud:
            pages = TokenPaginator(self.name)
            while not pages.finished:
                body: dict[str, object] = {
                    "jql": jql,
                    "fields": fields,
                    "maxResults": CLOUD_KEYS_PAGE,
                }
                if pages.token:
                    body["nextPageToken"] = pages.token
                data = self._http.post(CLOUD_SEARCH, body, count=count)
                yield from data.get("issues") or []
                pages.advance(None if data.get("isLast") else data.get("nextPageToken"))
            return
        start = 0
        while True:
            body = {"jql": jql, "fields": fields, "startAt": start, "maxResults": DC_KEYS_PAGE}
            data = self._http.post(DC_SEARCH, body, count=count)
            issues = data.get("issues") or []
            yield from issues
            start += len(issues)
            if not issues or start >= int(data.get("total") or 0):
                return

    # -- pages ---------------------------------------------------------------------------

    def _user_names(self, site: Site, batch: _Batch) -> dict[str, str]:
        """Usernames of the Data Center user keys the batch's assignee changes name, asked
        once per key per connector (``GET /rest/api/2/user?key=``); a deleted user stays
        unresolved (its key is kept, and the item flagged)."""
        if site.cloud:
            return {}
        wanted: set[str] = set()
        for issue in batch.issues:
            if not issue.unchanged:
                keys = user_keys(issue.histories)
                if keys:
                    wanted |= keys - shown_users(issue.payload, issue.histories,
                                                 issue.comments).keys()
        wanted -= self._user_names_cache.keys()
        for key in sorted(wanted):
            try:
                user = self._http.get("/rest/api/2/user", {"key": key}, count=batch.count)
            except NotFound:
                user = None
            name = user.get("name") if isinstance(user, Mapping) else None
            self._user_names_cache[key] = str(name) if name else None
        return {k: v for k, v in self._user_names_cache.items() if v is not None}

    def _page(self, site: Site, batch: _Batch, endpoint: str) -> Page:
        fetched_at = utcnow()
        user_names = self._user_names(site, batch)
        found: list[IssueRecords] = []
        raw: list[RawPayload] = []
        for issue in batch.issues:
            if issue.unchanged:
                continue
            raw.append(
                RawPayload(
                    source=self.name,
                    key=issue.key,
                    endpoint=endpoint,
                    fetched_at=fetched_at,
                    payload=issue.completed_payload(),
                )
            )
            try:
                records = normalize_issue(
                    self.name,
                    issue.payload,
                    site,
                    histories=issue.histories,
                    comments=issue.comments,
                    flags=issue.flags,
                    user_names=user_names,
                )
                if self._declared is not None:
                    records = dataclasses.replace(records, declarations=declarations(
                        self.name, issue.payload, self._declared, histories=issue.histories,
                        cloud=site.cloud, user_names=user_names))
                found.append(records)
            except (AttributeError, KeyError, TypeError, ValueError) as error:
                # Beyond drift (which is stored and flagged): kept only as a raw payload.
                log.warning("source '%s': cannot read issue %s: %s", self.name, issue.key, error)
        log.info(
            "source '%s': page of %d issues, %d requests", self.name, len(found), batch.count.value
        )
        return page_of(self.name, found, raw=raw, requests=batch.count.value)


def _searched(data: Mapping[str, Any], stored: Mapping[str, datetime]) -> list[Searched]:
    """A search page's issues; those the store holds at the same ``updated`` are marked
    unchanged (an edit, a transition or a comment always moves ``updated``)."""
    issues = [Searched(dict(i)) for i in data.get("issues") or []]
    if stored:
        for issue in issues:
            known = stored.get(issue.key)
            if known is not None:
                try:
                    issue.unchanged = parse_time(_updated(issue)) == known
                except ValueError:
                    issue.unchanged = False
    return issues


def _updated(issue: Searched) -> str:
    return str((issue.payload.get("fields") or {}).get("updated"))
