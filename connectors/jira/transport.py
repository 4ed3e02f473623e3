"""HTTP to one Jira site through the ``jira`` library's session, with our retries.

The library's own retry loop sleeps blindly (it doubles ``Retry-After`` and ignores HTTP
dates), so it is switched off (``max_retries=0``) and every call goes through
:func:`connectors.base.with_retries`, classed by :func:`connectors.base.error_for_status`.
Calls return the raw JSON: building the library's Resource objects is ~9x slower.

A rate limit seen by one thread holds back all threads of the same transport until the
``Retry-After`` has passed, so concurrent page fetches back off together.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

import orjson
import requests
from jira import JIRA, JIRAError
from requests.adapters import HTTPAdapter

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    NotFound,
    RateGate,
    RateLimited,
    RequestCount,
    RetriableError,
    RetryPolicy,
    SourceError,
    error_for_status,
    with_retries,
)
from stratmap.connectors.transport_errors import transport_error

log = logging.getLogger(__name__)

SessionFactory = Callable[..., JIRA]
"""Builds the ``jira.JIRA`` client; called with the keyword arguments of ``jira.JIRA``."""

AUTH_HINT = (
    "check the token; Jira Cloud needs the account's e-mail and an API token, Data Center a "
    "personal access token and no e-mail; and that the account may browse the scope's projects"
)
URL_HINT = "check url: it must be the site's base url, e.g. https://example.atlassian.net"


class Transport:
    """JSON over one authenticated ``jira.JIRA`` session."""

    def __init__(
        self,
        source: str,
        client: JIRA,
        base_url: str,
        *,
        policy: RetryPolicy,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
        pool_size: int,
    ) -> None:
        self.source = source
        self.client = client
        self.base_url = base_url
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._rng = rng
        self._gate = RateGate(clock=clock, sleep=sleep)
        session = client._session
        session.max_retries = 0
        adapter = HTTPAdapter(pool_connections=2, pool_maxsize=max(pool_size, 10))
        session.mount("https://", adapter)
        session.mount("http://", adapter)

    def get(
        self, path: str, params: Mapping[str, object] | None = None, *, count: RequestCount
    ) -> Any:
        return self._call("GET", path, params=params, body=None, count=count)

    def post(self, path: str, body: Mapping[str, object], *, count: RequestCount) -> Any:
        return self._call("POST", path, params=None, body=body, count=count)

    def put(self, path: str, body: Mapping[str, object], *, count: RequestCount) -> Any:
        """An edit (idempotent, so retried like a read); None for Jira's ``204 No Content``."""
        return self._call("PUT", path, params=None, body=body, count=count)

    def close(self) -> None:
        self.client.close()  # type: ignore[no-untyped-call]

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, object] | None,
        body: Mapping[str, object] | None,
        count: RequestCount,
    ) -> Any:
        what = f"{method} {path}"
        try:
            return with_retries(
                lambda: self._once(method, path, params, body, count, what),
                policy=self._policy,
                sleep=self._sleep,
                rng=self._rng,
            )
        except RateLimited as error:
            raise RateLimited(
                self.source,
                f"{what} was still rate-limited after {self._policy.attempts} attempts",
                retry_after=error.retry_after,
                hint="lower the source's concurrency, or sync less often",
            ) from error
        except RetriableError as error:
            raise RetriableError(
                self.source,
                f"gave up after {self._policy.attempts} attempts: {error.message}",
                hint="Jira may be down or overloaded; the next sync will try again",
            ) from error

    def _once(
        self,
        method: str,
        path: str,
        params: Mapping[str, object] | None,
        body: Mapping[str, object] | None,
        count: RequestCount,
        what: str,
    ) -> Any:
        self._gate.wait_turn()
        count.add()
        url = self.base_url + path
        session = self.client._session
        log.debug("source '%s': %s %s", self.source, what, dict(params or body or {}))
        try:
            if method == "GET":
                response = session.get(url, params={k: str(v) for k, v in (params or {}).items()})
            elif method == "PUT":
                response = session.put(url, data=json.dumps(body))
            else:
                response = session.post(url, data=json.dumps(body))
        except JIRAError as error:
            # Chained JIRAErrors print request details; never let them reach a log.
            raise self._status_error(error, what) from None
        except requests.exceptions.RequestException as error:
            raise transport_error(self.source, what, error, url_hint=URL_HINT) from error
        if method == "PUT" and not response.content:
            return None  # 204 No Content: the edit is done
        try:
            # orjson: several times faster than requests' json decoding on large pages.
            return orjson.loads(response.content)
        except ValueError:
            raise RetriableError(
                self.source, f"{what} returned a truncated or malformed JSON body"
            ) from None

    def _status_error(self, error: JIRAError, what: str) -> SourceError:
        response = error.response
        status = error.status_code or (response.status_code if response is not None else 0)
        headers = response.headers if response is not None else {}
        classed = error_for_status(
            self.source, status, retry_after=headers.get("Retry-After"), what=what
        )
        if classed is None:  # a 2xx/3xx the library still refused: treat as transient
            return RetriableError(self.source, f"{what} got an unexpected HTTP {status}")
        if isinstance(classed, RateLimited):
            self._gate.hold_back(classed.retry_after)
            return classed
        if isinstance(classed, AuthError):
            return AuthError(self.source, classed.message, hint=AUTH_HINT)
        if isinstance(classed, RetriableError):
            return classed
        detail = _jira_messages(response)
        message = f"{classed.message}: {detail}" if detail else classed.message
        if isinstance(classed, NotFound):
            return NotFound(self.source, message, hint=URL_HINT)
        return FatalSourceError(self.source, message, hint=classed.hint)


def _jira_messages(response: requests.Response | None) -> str:
    """Jira's own explanation (``errorMessages``/``errors``) for the user, if any."""
    if response is None:
        return ""
    try:
        data = response.json()
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    messages = [str(m) for m in data.get("errorMessages") or []]
    errors = data.get("errors")
    if isinstance(errors, dict):
        messages += [f"{k}: {v}" for k, v in errors.items()]
    return "; ".join(messages)[:500]
