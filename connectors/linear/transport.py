"""GraphQL over HTTP to Linear: one POST per operation, with retries and rate-limit holds.

How Linear's answers are classed (:func:`classify`)::

    HTTP 400/429, errors[].extensions.code RATELIMITED   RateLimited: wait until the spent
                                                          budget's X-RateLimit-*-Reset
    HTTP 401/403, AUTHENTICATION_ERROR / FORBIDDEN        AuthError: a new key is needed
    HTTP 5xx, 408, 425, a dropped connection, a timeout   RetriableError
    any other errors[]                                    FatalSourceError with Linear's
                                                          message (userPresentableMessage)
    errors[] on single fields, with data                  the data, and the errors by path

The reset headers are UTC epoch milliseconds; a ``Retry-After`` is a floor.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    RateLimited,
    RequestCount,
    RetriableError,
    RetryPolicy,
    SourceError,
    parse_retry_after,
)
from stratmap.connectors.http import JsonApi

Row = dict[str, Any]
Path = tuple[str | int, ...]

DEFAULT_WAIT = 60.0
"""A rate limit without any reset or Retry-After header waits a minute."""
KEY_HINT = ("make a personal API key in Linear under Settings -> Account -> Security & access "
            "(https://linear.app/settings/account/security) and give it as env:LINEAR_API_KEY "
            "or block:NAME; an OAuth2 access token needs `auth: oauth`")


@dataclass(frozen=True, slots=True)
class Answer:
    """A query's ``data``, and the errors Linear reported on single fields of it."""

    data: Row
    problems: tuple[tuple[Path, str], ...] = ()


def _number(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _epoch_seconds(value: str | None) -> float | None:
    """A reset header: epoch milliseconds (Linear's unit); plain seconds are accepted too."""
    number = _number(value)
    if number is None:
        return None
    return number / 1000 if number > 1e11 else number


def rate_limit_wait(headers: httpx.Headers, now: float) -> float:
    """Seconds until the spent budget (requests or complexity) resets, never less than a
    ``Retry-After``; a minute when Linear gives neither."""
    resets: list[float] = []
    spent: list[float] = []
    for budget in ("requests", "complexity"):
        reset = _epoch_seconds(headers.get(f"x-ratelimit-{budget}-reset"))
        if reset is None:
            continue
        resets.append(reset)
        remaining = _number(headers.get(f"x-ratelimit-{budget}-remaining"))
        if remaining is not None and remaining <= 0:
            spent.append(reset)
    retry_after = parse_retry_after(headers.get("retry-after"))
    if spent:
        wait = max(spent) - now
    elif retry_after is not None:
        wait = retry_after
    elif resets:
        wait = min(resets) - now  # no budget says it is spent: the first to refill
    else:
        wait = DEFAULT_WAIT
    return max(wait, retry_after or 0.0, 0.0)


def _errors(body: object) -> list[Row]:
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _code(error: Row) -> tuple[str, str, object]:
    """(extensions.code, extensions.type, extensions.statusCode) of one GraphQL error."""
    extensions = error.get("extensions")
    if not isinstance(extensions, dict):
        return "", "", None
    return (str(extensions.get("code") or "").upper(), str(extensions.get("type") or "").lower(),
            extensions.get("statusCode"))


def _message(error: Row) -> str:
    extensions = error.get("extensions")
    friendly = extensions.get("userPresentableMessage") if isinstance(extensions, dict) else None
    return str(friendly or error.get("message") or "an unnamed error")


def classify(source: str, response: httpx.Response, *, what: str,
             now: float) -> SourceError | Answer:
    """Linear's answer as data, or the error to raise (see the module docstring)."""
    status = response.status_code
    try:
        body: object = response.json()
    except ValueError:
        body = None
    errors = _errors(body)
    codes = [_code(e) for e in errors]
    if status == 429 or any(c == "RATELIMITED" or t == "ratelimited" or s == 429
                            for c, t, s in codes):
        return RateLimited(
            source, f"{what} was rate-limited by Linear (HTTP {status})",
            retry_after=rate_limit_wait(response.headers, now),
            hint="stratmap waits for the reset Linear gives and retries; a smaller page_size "
                 "spends less of the complexity budget",
        )
    if status in (401, 403) or any(
            c in ("AUTHENTICATION_ERROR", "FORBIDDEN")
            or t in ("authentication error", "forbidden") or s in (401, 403)
            for c, t, s in codes):
        if status == 401 or any(c == "AUTHENTICATION_ERROR" or t == "authentication error"
                                or s == 401 for c, t, s in codes):
            return AuthError(
                source, f"{what} was refused: Linear did not accept the API key (HTTP {status})",
                hint=KEY_HINT)
        return AuthError(
            source, f"{what} was forbidden by Linear (HTTP {status}): "
            f"{'; '.join(_message(e) for e in errors) or 'no access'}",
            hint="the key's user may not read this team's issues; ask to join the team")
    if status >= 500 or status in (408, 425):
        wait = parse_retry_after(response.headers.get("retry-after"))
        if wait is not None:  # a 503 with Retry-After: the same floor as a 429's
            return RateLimited(source, f"{what} failed (HTTP {status})", retry_after=wait)
        return RetriableError(source, f"{what} failed (HTTP {status})")
    if not isinstance(body, dict):
        return FatalSourceError(
            source, f"{what} answered HTTP {status} with something that is not GraphQL JSON",
            hint="check the source's url: it must be Linear's GraphQL endpoint",
        )
    data = body.get("data")
    located = [e for e in errors if isinstance(e.get("path"), list) and e["path"]]
    if errors and (status >= 400 or not isinstance(data, dict) or len(located) < len(errors)):
        return FatalSourceError(
            source, f"{what} failed: Linear answered "
            f"{'; '.join(_message(e) for e in errors)} (HTTP {status})",
            hint="a query Linear finds too complex needs a smaller page_size or "
                 "nested_page_size; anything else is worth reporting with this message",
        )
    if status >= 400 or not isinstance(data, dict):
        return FatalSourceError(source, f"{what} failed (HTTP {status})",
                                hint="check the source's url")
    return Answer(data=data, problems=tuple((tuple(e["path"]), _message(e)) for e in located))


class GraphQLApi(JsonApi):
    """POSTs GraphQL to Linear over :class:`connectors.http.JsonApi` (retries, a shared
    rate-limit hold, request counting). The key is only ever a header: it is in no
    message, log line or repr.
    """

    def __init__(self, source: str, *, url: str, authorization: str, timeout: float,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None,
                 max_connections: int = 2) -> None:
        headers = {"Authorization": authorization, "Content-Type": "application/json",
                   "Accept": "application/json", "User-Agent": "stratmap"}

        def errors_only(response: httpx.Response, *, what: str, now: float) -> SourceError | None:
            outcome = classify(source, response, what=what, now=now)
            return outcome if isinstance(outcome, SourceError) else None

        super().__init__(source, headers=headers, classify=errors_only, timeout=timeout,
                         policy=policy, sleep=sleep, clock=clock, rng=rng,
                         max_connections=max_connections)
        self.url = url

    def __repr__(self) -> str:
        return f"GraphQLApi({self.source!r}, url={self.url!r})"

    def query(self, document: str, variables: Mapping[str, object], *, count: RequestCount,
              what: str) -> Answer:
        """One GraphQL operation, retried per the policy; raises the classified error."""
        response = self.send("POST", self.url, json={"query": document,
                                                     "variables": dict(variables)},
                             count=count, what=what)
        outcome = classify(self.source, response, what=what, now=self.clock())
        if isinstance(outcome, SourceError):  # pragma: no cover - raised by send already
            raise outcome
        return outcome
