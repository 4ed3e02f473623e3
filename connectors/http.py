"""JSON over HTTP on httpx, for the trackers with a REST API (GitHub, GitLab) or GraphQL (Linear).

Every request goes through :func:`connectors.base.with_retries`. Each tracker passes its
own ``classify`` (response -> an error of :mod:`connectors.base`, or None), because each
signals rate limits in its own headers. A rate limit seen by one thread holds back every
thread of the same :class:`JsonApi` until the wait has passed.

Paging: :meth:`JsonApi.follow` walks ``Link: rel="next"`` to the end, refusing a link it
has already seen. :func:`sweep_updated` reads a list sorted by ``updated`` ascending
without trusting page offsets: an item updated while the sync pages would move to the end
of the list and shift every later item back by one, so offset paging skips one item per
update, and an ordered source's watermark then passes it for good. The sweep re-asks from
the last page's highest ``updated`` instead, and follows the offset link only while a page
cannot move the window forward (a bulk edit: a whole page updated in the same second).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

import httpx

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    RateGate,
    RateLimited,
    RequestCount,
    RetryPolicy,
    SourceError,
    TokenPaginator,
    with_retries,
)
from stratmap.connectors.transport_errors import transport_error

log = logging.getLogger(__name__)

A = TypeVar("A")
R = TypeVar("R")

Params = Mapping[str, str | int]
Row = dict[str, Any]


class Classify(Protocol):
    """A tracker's reading of a response: None for success, else the error to raise."""

    def __call__(self, response: httpx.Response, *, what: str, now: float) -> SourceError | None:
        ...


def refusals_explained(
    base: Classify, *, source: str, tracker: str, said: Callable[[httpx.Response], str],
    auth_hint: Callable[[httpx.Response], str], what_to_fix: str,
) -> Classify:
    """``base`` for an edit's answer: a refusal quotes the tracker (``said``) and says what
    the token needs for writing (``auth_hint``) or what to fix in the plan."""

    def read(response: httpx.Response, *, what: str, now: float) -> SourceError | None:
        error = base(response, what=what, now=now)
        if error is None or not isinstance(error, FatalSourceError):
            return error
        told = said(response)
        message = f"{what} was refused by {tracker} (HTTP {response.status_code}" + (
            f": {told})" if told else ")")
        if isinstance(error, AuthError):
            return AuthError(source, message, hint=auth_hint(response))
        return FatalSourceError(source, message, hint=what_to_fix)

    return read


def parse_moment(value: str) -> datetime:
    """An ISO 8601 timestamp from a tracker (``Z`` or an offset) as aware UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_seconds(moment: datetime) -> str:
    """``2026-09-01T09:00:00Z``: floored to the second, so a filter never starts late."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_url(response: httpx.Response) -> str | None:
    """The ``Link: <...>; rel="next"`` target, if any."""
    link = response.links.get("next")
    return link.get("url") if link else None


MAX_PACE = 3700.0
"""The longest proactive wait: GitHub's and GitLab's budgets reset within the hour."""
Pace = Callable[[httpx.Response, float], float | None]
"""A tracker's reading of a *successful* answer's rate-limit headers: seconds to hold every
request back (the budget is spent), or None."""


def spent_budget(remaining: str, reset: str) -> Pace:
    """Hold back until ``reset`` (epoch seconds) once ``remaining`` says the budget is spent:
    the next request would only be refused (GitHub ``x-ratelimit-*``, GitLab ``ratelimit-*``)."""

    def pace(response: httpx.Response, now: float) -> float | None:
        left = response.headers.get(remaining)
        if left is None or left.strip() not in ("0", "0.0"):
            return None
        try:
            until = float(response.headers.get(reset) or "")
        except ValueError:
            return None
        return max(0.0, until - now) or None

    return pace


class JsonApi:
    """GETs JSON from one tracker with retries, a shared rate-limit hold, request counting.

    The httpx client is made on the first request, so a connector that is built and never
    used holds no connection. With ``pace``, an answer that says the rate-limit budget is
    spent holds every later request back until it resets, instead of spending a refused
    request to learn it.
    """

    def __init__(
        self,
        source: str,
        *,
        headers: Mapping[str, str],
        classify: Classify,
        timeout: float = 30.0,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        max_connections: int = 4,
        pace: Pace | None = None,
    ) -> None:
        self.source = source
        self.headers = dict(headers)
        self.classify = classify
        self.pace = pace
        self.timeout = timeout
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()
        self.max_connections = max_connections
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()
        self._gate = RateGate(clock=clock, sleep=sleep)

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    headers=self.headers,
                    timeout=self.timeout,
                    follow_redirects=True,  # a renamed repository answers 301
                    limits=httpx.Limits(max_connections=self.max_connections),
                )
            return self._client

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def get(self, url: str, *, params: Params | None = None, count: RequestCount,
            what: str) -> httpx.Response:
        """One GET, retried per the policy; raises the tracker's classified error."""
        return self.send("GET", url, params=params, count=count, what=what)

    def send(self, method: str, url: str, *, params: Params | None = None,
             json: object = None, count: RequestCount, what: str,
             classify: Classify | None = None,
             headers: Mapping[str, str] | None = None) -> httpx.Response:
        """One request (a JSON body with ``json``), retried per the policy; raises the
        tracker's classified error (``classify`` overrides the tracker's reading for this
        request, e.g. a write that passes the tracker's own refusal on; ``headers`` add to
        or override the client's, e.g. a JSON Patch body's content type)."""
        read = classify or self.classify

        def attempt() -> httpx.Response:
            self._gate.wait_turn()
            count.add()
            try:
                response = self._http().request(method, url, params=params, json=json,
                                                headers=headers)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                raise transport_error(self.source, what, exc) from exc
            now = self.clock()
            error = read(response, what=what, now=now)
            if error is not None:
                if isinstance(error, RateLimited):
                    self._gate.hold_back(error.retry_after)
                raise error
            wait = self.pace(response, now) if self.pace is not None else None
            if wait:
                wait = min(wait, MAX_PACE)
                log.warning("source '%s': the tracker's rate-limit budget is spent; the next "
                            "request waits %.0f s for it to reset", self.source, wait)
                self._gate.hold_back(wait)
            return response

        return with_retries(attempt, policy=self.policy, sleep=self.sleep, rng=self.rng)

    def rows(self, response: httpx.Response, *, what: str) -> list[Row]:
        """The JSON array of objects a list endpoint answers."""
        try:
            data = response.json()
        except ValueError as exc:
            raise FatalSourceError(
                self.source, f"{what} answered something that is not JSON",
                hint="check the source's url: it must be the tracker's API",
            ) from exc
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise FatalSourceError(
                self.source, f"{what} answered {type(data).__name__}, not a list of objects",
                hint="check the source's url: it must be the tracker's API",
            )
        return data

    def follow(self, url: str, *, params: Params | None = None, count: RequestCount,
               what: str) -> Iterator[tuple[httpx.Response, list[Row]]]:
        """Every page of a list, following ``rel="next"`` links to the end."""
        paginator = TokenPaginator(self.source)
        response = self.get(url, params=params, count=count, what=what)
        while True:
            yield response, self.rows(response, what=what)
            paginator.advance(next_url(response))
            if paginator.finished or paginator.token is None:
                return
            response = self.get(paginator.token, count=count, what=what)

    def collect(self, url: str, *, params: Params | None = None, count: RequestCount,
                what: str) -> list[Row]:
        """A whole (short) list: an issue's events or comments."""
        return [row for _, rows in self.follow(url, params=params, count=count, what=what)
                for row in rows]


@dataclass(frozen=True, slots=True)
class Listing:
    """New rows from one or more list requests, and what it cost to get them."""

    rows: list[Row]
    endpoint: str
    requests: int


def sweep_updated(
    api: JsonApi,
    url: str,
    *,
    params: Callable[[datetime | None], Params],
    since: datetime | None,
    updated: Callable[[Row], datetime],
    identity: Callable[[Row], str],
    slack: timedelta,
    what: str,
    spent: int = 0,
) -> Iterator[Listing]:
    """Rows of a list sorted by ``updated`` ascending, from ``since`` on, each version once.

    ``params(since)`` builds the query for a window starting at ``since`` (inclusive, or
    ``slack`` before it for trackers whose filter may be exclusive). Every listing holds
    only rows not yet yielded at that ``updated``; one that would be empty is merged into
    the next, and the last is yielded even when empty (so its requests are counted).
    ``spent`` requests made before (a refused first try) are counted with the first.
    """
    seen: dict[str, datetime] = {}
    query_since = since
    paginator = TokenPaginator(api.source)
    count = RequestCount(spent)
    response = api.get(url, params=params(query_since), count=count, what=what)
    while True:
        rows = api.rows(response, what=what)
        fresh = []
        for row in rows:
            key, moment = identity(row), updated(row)
            if seen.get(key) != moment:
                seen[key] = moment
                fresh.append(row)
        link = next_url(response)
        if fresh or link is None:
            yield Listing(rows=fresh, endpoint=str(response.url), requests=count.value)
            count = RequestCount()
        if link is None:
            return
        top = max((updated(row) for row in rows), default=None)
        restart = None if top is None else top.replace(microsecond=0) - slack
        if restart is None or (query_since is not None and restart <= query_since):
            # The whole page sits at the window's start: only the offset link moves on.
            paginator.advance(link)
            if paginator.token is None:  # pragma: no cover - advance() raised or finished
                return
            response = api.get(paginator.token, count=count, what=what)
            continue
        query_since = restart
        paginator = TokenPaginator(api.source)
        response = api.get(url, params=params(query_since), count=count, what=what)


def fan_out(call: Callable[[A], R], items: Sequence[A], *, workers: int) -> list[R]:
    """``[call(i) for i in items]``, on up to ``workers`` threads; the first error wins."""
    if workers <= 1 or len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(min(workers, len(items)), thread_name_prefix="stratmap-http") as pool:
        return list(pool.map(call, items))
