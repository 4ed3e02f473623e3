"""How Azure DevOps answers: refusals, rate limits, and the query size limit.

Rate limits (Azure DevOps Services counts "TSTUs" per user and delays, then refuses)::

    429                         Retry-After (seconds); else X-RateLimit-Reset (epoch
                                seconds); else X-RateLimit-Delay; else a minute
    any answer with             X-RateLimit-Remaining: 0 -> every later request waits
                                until X-RateLimit-Reset; X-RateLimit-Delay: N (the
                                server already delayed us N s) or Retry-After -> the
                                next request waits as long, so the client slows down
                                before it is refused

Refusals: 401 (the token), 403 (the token's scopes or the user's permissions), 404 (the
organization or project). A missing or malformed token is not always a 401: Azure DevOps
may answer ``203 Non-Authoritative Information`` with its HTML sign-in page, which is read
as the 401 it means. A WIQL query matching more than 20,000 work items is a 400 whose
``typeKey`` is ``WorkItemTrackingQueryResultSizeLimitExceededException`` (VS402337):
:class:`QueryTooLarge`, which the connector answers by splitting the query's
``System.ChangedDate`` window.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from stratmap.connectors.base import (
    AuthError,
    FatalSourceError,
    NotFound,
    RateLimited,
    SourceError,
    error_for_status,
    parse_retry_after,
)
from stratmap.connectors.http import Classify, Pace

API_VERSION = "7.1"
COMMENTS_VERSION = "7.1-preview.4"
"""Comments are still a preview resource in 7.1."""
TOO_LARGE = "WorkItemTrackingQueryResultSizeLimitExceededException"
DEFAULT_WAIT = 60.0
TOKEN_HINT = ("check the source's token: a personal access token of the organization, with "
              "the Work Items (Read) scope, not expired")
WRITE_HINT = ("the token needs the Work Items (Read & write) scope and its user the permission "
              "to edit work items in the item's area path; `stratmap push` without --apply only "
              "reads")


class QueryTooLarge(FatalSourceError):
    """A WIQL query matched more than Azure DevOps returns (20,000 work items)."""


class RevisionMoved(FatalSourceError):
    """A write's ``test`` of ``/rev`` failed: someone edited the work item since it was read."""


def message(response: httpx.Response) -> str:
    """Azure DevOps' own explanation (``message``), for the user; never branched on."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, Mapping) and body.get("message"):
        return str(body["message"])[:300]
    return ""


def _type_key(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return str(body.get("typeKey")) if isinstance(body, Mapping) and body.get("typeKey") else None


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _sign_in_page(response: httpx.Response) -> bool:
    kind = response.headers.get("content-type", "")
    return response.status_code == 203 or (response.status_code < 300 and "html" in kind)


def classify(source: str) -> Classify:
    """Azure DevOps' reading of a response."""

    def read(response: httpx.Response, *, what: str, now: float) -> SourceError | None:
        status = response.status_code
        headers = response.headers
        if _sign_in_page(response):
            return AuthError(source, f"{what}: Azure DevOps answered its sign-in page "
                             f"(HTTP {status}), not the API", hint=TOKEN_HINT)
        if status < 400:
            return None
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"))
            if wait is None:
                reset = _number(headers.get("x-ratelimit-reset"))
                wait = max(0.0, reset - now) if reset is not None else _number(
                    headers.get("x-ratelimit-delay"))
            return RateLimited(
                source, f"{what} was rate-limited by Azure DevOps (HTTP 429)",
                retry_after=wait if wait is not None else DEFAULT_WAIT,
                hint="stratmap waits and retries; lower the source's concurrency if this "
                     "persists")
        told = message(response)
        said = f": {told}" if told else ""
        if status == 400 and _type_key(response) == TOO_LARGE:
            return QueryTooLarge(source, f"{what} matched too many work items (HTTP 400)")
        if status == 401:
            return AuthError(source, f"{what} was refused: Azure DevOps did not accept the "
                             f"token (HTTP 401{said})", hint=TOKEN_HINT)
        if status == 403:
            return AuthError(source, f"{what} was forbidden (HTTP 403{said})",
                             hint="the token's user may not read this project's work items")
        if status == 404:
            return NotFound(source, f"{what} found nothing (HTTP 404{said})",
                            hint="check the source's url (https://dev.azure.com/ORG) and "
                                 "project")
        if status == 400:
            return FatalSourceError(source, f"{what} was refused (HTTP 400{said})",
                                    hint="check the source's scope and the plan's wiql "
                                         "selectors")
        return error_for_status(source, status, retry_after=headers.get("retry-after"),
                                what=what)

    return read


def classify_write(source: str) -> Classify:
    """A work item edit's answer: a failed ``test`` of ``/rev`` (409 or 412) is
    :class:`RevisionMoved`; a refusal quotes Azure DevOps and says what the token needs."""
    base = classify(source)

    def read(response: httpx.Response, *, what: str, now: float) -> SourceError | None:
        status = response.status_code
        told = message(response)
        said = f": {told}" if told else ""
        if status in (409, 412):
            return RevisionMoved(source, f"{what}: the work item changed since it was read "
                                 f"(HTTP {status}{said})",
                                 hint="run `stratmap push` again to compare afresh")
        error = base(response, what=what, now=now)
        if isinstance(error, AuthError):
            return AuthError(source, f"{what} was refused by Azure DevOps (HTTP {status}"
                             f"{said})", hint=WRITE_HINT)
        if isinstance(error, FatalSourceError) and not isinstance(error, NotFound):
            return FatalSourceError(source, f"{what} was refused by Azure DevOps (HTTP "
                                    f"{status}{said})",
                                    hint="the work item type must have the field (Target "
                                         "Date on Epics and Features) and the owner must be a "
                                         "member of the project")
        return error

    return read


def pace(response: httpx.Response, now: float) -> float | None:
    """How long the next request waits, from a successful answer's rate-limit headers."""
    headers = response.headers
    waits: list[float] = []
    remaining = headers.get("x-ratelimit-remaining")
    if remaining is not None and remaining.strip() in ("0", "0.0"):
        reset = _number(headers.get("x-ratelimit-reset"))
        if reset is not None:
            waits.append(reset - now)
    for name in ("x-ratelimit-delay",):
        delay = _number(headers.get(name))
        if delay is not None:
            waits.append(delay)
    after = parse_retry_after(headers.get("retry-after"))
    if after is not None:
        waits.append(after)
    wait = max(waits, default=0.0)
    return wait if wait > 0 else None


PACE: Pace = pace
