"""The connector interface, and the plumbing every tracker shares.

A connector reads one source (a tracker and a scope) and yields normalized :class:`Page`
objects; it never imports Prefect and never touches the store. ``flows`` wrap connectors
in tasks; :func:`flows.pipeline.sync_source` writes pages and moves the watermark.

Errors are classed by how to recover::

    SourceError                 every tracker problem; names the source and what to do
    ├── RetriableError          5xx, connection reset, read timeout: retry with backoff
    │   └── RateLimited         429, or 5xx with Retry-After: wait at least ``retry_after`` s
    └── FatalSourceError        nothing a retry can fix: bad credentials, no permission,
        │                       a missing export file, an unknown project
        ├── AuthError           401 / 403
        └── NotFound            404: a wrong url or project, or an item deleted meanwhile

HTTP answers are classed by :func:`error_for_status` (each tracker refines the hints);
failures below HTTP (timeouts, resets, bad urls) by :func:`connectors.http.transport_error`,
the one place that reads httpx's and requests' exceptions.

Never branch on exception text: branch on the class.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar, Protocol, TypeVar, runtime_checkable

from stratmap.models.records import (
    Account,
    AssigneeChange,
    Comment,
    Declaration,
    Page,
    RawPayload,
    StatusChange,
    TrackerDue,
    WorkItem,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

BLOCKED_BY = "blocked_by"
"""The item field naming the items an item is blocked by: keys, comma-separated (the
``blocked_by_other_team`` rule reads it)."""


class SourceError(Exception):
    """A tracker problem, with the source's name and a hint for the user."""

    def __init__(self, source: str, message: str, *, hint: str = "") -> None:
        self.source = source
        self.message = message
        self.hint = hint
        text = f"source '{source}': {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class RetriableError(SourceError):
    """A transient failure: the same call may succeed later."""


class RateLimited(RetriableError):
    """The tracker asked us to slow down; ``retry_after`` is its minimum wait in seconds."""

    def __init__(self, source: str, message: str, *, retry_after: float, hint: str = "") -> None:
        super().__init__(source, message, hint=hint)
        self.retry_after = retry_after


class FatalSourceError(SourceError):
    """A failure no retry can fix: configuration, permissions, missing data."""


class AuthError(FatalSourceError):
    """The tracker refused the credentials (401) or the permission (403)."""


class NotFound(FatalSourceError):
    """HTTP 404: a wrong url or project, an unknown query, or an item deleted meanwhile."""


class RequestCount:
    """HTTP requests made on behalf of one page; every attempt counts (thread-safe)."""

    def __init__(self, value: int = 0) -> None:
        self._lock = threading.Lock()
        self.value = value

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.value += n


class RateGate:
    """Holds back every thread of one source after a rate limit, never sooner than told.

    A 429 met by one request means the tracker wants the whole client to slow down: each
    request first waits its turn, and a rate limit moves the turn to at least
    ``retry_after`` seconds from now.
    """

    def __init__(self, *, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = 0.0

    def wait_turn(self) -> None:
        with self._lock:
            wait = self._not_before - self._clock()
        if wait > 0:
            self._sleep(wait)

    def hold_back(self, seconds: float) -> None:
        with self._lock:
            self._not_before = max(self._not_before, self._clock() + seconds)


@dataclass(frozen=True, slots=True)
class IssueRecords:
    """One tracker item normalized: the item and what its history, comments and people
    give (what a connector's ``normalize_issue`` returns)."""

    item: WorkItem
    changes: tuple[StatusChange, ...]
    comments: tuple[Comment, ...]
    accounts: tuple[Account, ...]
    assignments: tuple[AssigneeChange, ...] = ()
    dues: tuple[TrackerDue, ...] = ()
    """Changes of the item's own due date from its history (a Jira epic's ``duedate``)."""
    declarations: tuple[Declaration, ...] = ()


def page_of(source: str, records: Iterable[IssueRecords], *, raw: Iterable[RawPayload],
            requests: int, until: datetime | None = None) -> Page:
    """One page from normalized items: their records side by side, each account once (the
    copy with an e-mail wins), the cursor the highest ``updated`` (at most ``until``)."""
    items: list[WorkItem] = []
    changes: list[StatusChange] = []
    comments: list[Comment] = []
    assignments: list[AssigneeChange] = []
    dues: list[TrackerDue] = []
    declarations: list[Declaration] = []
    accounts: dict[str, Account] = {}
    for found in records:
        items.append(found.item)
        dues.extend(found.dues)
        changes.extend(found.changes)
        comments.extend(found.comments)
        assignments.extend(found.assignments)
        declarations.extend(found.declarations)
        for account in found.accounts:
            known = accounts.get(account.account_id)
            if known is None or (not known.email and account.email):
                accounts[account.account_id] = account
    top = max((item.updated for item in items), default=None)
    return Page(
        source=source, items=tuple(items), changes=tuple(changes), comments=tuple(comments),
        accounts=tuple(accounts[k] for k in sorted(accounts)), raw=tuple(raw),
        assignments=tuple(assignments), declarations=tuple(declarations), requests=requests,
        dues=tuple(dues),
        cursor=top if top is None or until is None else min(top, until),
    )


def with_dues(pages: Iterable[Page], read: Callable[[], Page]) -> Iterator[Page]:
    """``pages``, the first also carrying what ``read`` gives (the containers' due dates,
    read once per sync after that page, and the requests they cost); that alone when there
    is no page."""
    first = True
    for page in pages:
        if first:
            first = False
            dues = read()
            page = page.model_copy(update={"dues": (*page.dues, *dues.dues),
                                           "requests": page.requests + dues.requests})
        yield page
    if first:
        dues = read()
        if dues.dues or dues.requests:
            yield dues


@dataclass(frozen=True, slots=True)
class Window:
    """What a sync asks for: items updated at or after ``since`` (None: everything).

    ``until`` is the run's start. Nothing after it may become a watermark, so an update
    made while the sync runs is read again next time instead of being skipped.
    """

    since: datetime | None
    until: datetime
    stored: Mapping[str, datetime] = field(default_factory=dict)
    """A hint: the ``updated`` stamp the store already holds for items updated at or after
    ``since`` (the overlap a sync re-reads). A connector may skip an item whose stamp is
    the same, without completing its history: nothing about it has changed. Connectors
    that ignore it only re-read what they already wrote."""


@runtime_checkable
class Connector(Protocol):
    """One source of one plan.

    ``ordered`` says the pages come in ascending ``updated`` order, so the store may move
    the watermark after each page; otherwise it moves only after the last page.
    """

    kind: ClassVar[str]
    name: str
    ordered: bool

    def fetch(self, window: Window) -> Iterator[Page]:
        """Yield the items updated in ``window``, with complete history, page by page."""
        ...

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        """Keys the tracker selects for a selector only it can evaluate (JQL), else None."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


@dataclass(frozen=True, slots=True)
class Target:
    """What the plan says one tracker container (a Jira epic, a GitHub or GitLab milestone, a
    Redmine version) should hold: the milestone's due date and owner (``stratmap push``)."""

    milestone: str
    """The plan's milestone, as ``goal.milestone``."""
    criteria: Mapping[str, object]
    """The selector that names the container, without ``source`` (``{"epic": "WEB-1"}``)."""
    due: date | None
    """The milestone's due day in the plan's time zone, if the plan sets one."""
    owner: str | None
    """The owner's handle, if any."""
    owner_account: str | None
    """The owner's account on this source, if the plan knows it (``accounts:``)."""


@dataclass(frozen=True, slots=True)
class Difference:
    """One field of one tracker container that differs from the plan."""

    milestone: str
    container: str
    """How a person finds it in the tracker: ``epic WEB-1``, ``milestone 'v2 launch'``."""
    field: str
    """``due`` or ``assignee``."""
    tracker: str | None
    """The tracker's value, as text (None: unset)."""
    plan: str
    """The plan's value, as text (what ``apply`` writes)."""
    ref: str
    """The connector's own handle for writing it (an issue key, a milestone number)."""
    name: str | None = None
    """The container as the plan's selector names it (``WEB-1``, ``v2 launch``), where
    one names it: how the sync keys its due dates, so a push can be told from a slip."""


@dataclass
class PushCheck:
    """What a tracker holds against the plan: differences, and containers not found."""

    differences: list[Difference] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Containers the plan names that the tracker does not have, as sentences."""


def dated(targets: Sequence[Target], key: str) -> list[tuple[Target, date]]:
    """The targets that name exactly one ``key`` container and have a due day to push."""
    return [(t, t.due) for t in targets if set(t.criteria) == {key} and t.due is not None]


def due_difference(target: Target, due: date, current: date | None, *, container: str,
                   ref: str) -> Difference | None:
    """The container's due day against the plan's: a ``due`` difference, or None."""
    if current == due:
        return None
    names = [str(value) for value in target.criteria.values()]
    return Difference(milestone=target.milestone, container=container, field="due",
                      tracker=current.isoformat() if current else None, plan=due.isoformat(),
                      ref=ref, name=names[0] if len(names) == 1 else None)


@runtime_checkable
class Pusher(Protocol):
    """A connector that can keep the tracker's containers in step with the plan.

    ``check`` only reads; ``apply`` writes one difference ``check`` returned. Neither ever
    clears a value the plan does not set, nor creates or deletes anything.
    """

    name: str

    def check(self, targets: Sequence[Target]) -> PushCheck:
        ...

    def apply(self, difference: Difference) -> None:
        ...


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


def error_for_status(
    source: str, status: int, *, retry_after: str | None = None, what: str = "request"
) -> SourceError | None:
    """Class an HTTP status by how to recover (None for success)."""
    if status < 400:
        return None
    if status == 429:
        wait = parse_retry_after(retry_after)
        return RateLimited(
            source,
            f"{what} was rate-limited (HTTP 429)",
            retry_after=wait if wait is not None else 5.0,
            hint="stratmap waits and retries; lower the source's concurrency if this persists",
        )
    if status in (401, 403):
        return AuthError(
            source,
            f"{what} was refused (HTTP {status})",
            hint="check the source's token/e-mail and that the account may browse the projects",
        )
    if status >= 500 or status in (408, 409, 425):
        wait = parse_retry_after(retry_after)
        if wait is not None:
            # A 503 with Retry-After asks for the same wait a 429 does: it is a floor.
            return RateLimited(source, f"{what} failed (HTTP {status})", retry_after=wait,
                               hint="the tracker asked to wait; stratmap waits and retries")
        return RetriableError(source, f"{what} failed (HTTP {status})")
    if status == 404:
        return NotFound(source, f"{what} failed (HTTP 404)",
                        hint="check the source's url and scope")
    return FatalSourceError(
        source, f"{what} failed (HTTP {status})", hint="check the source's url and scope"
    )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter; a rate limit's ``retry_after`` is a floor."""

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 60.0

    def delay(self, attempt: int, error: RetriableError, rng: random.Random) -> float:
        backoff = min(self.max_delay, self.base_delay * (2**attempt))
        wait = rng.uniform(backoff / 2, backoff)
        if isinstance(error, RateLimited):
            # Never sooner than the tracker said: the jitter only adds.
            wait = max(wait, error.retry_after) + rng.uniform(0, 0.25)
        return wait


def with_retries(
    call: Callable[[], T],
    *,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run ``call``, retrying :class:`RetriableError` per ``policy``; re-raise the last one."""
    rng = rng or random.Random()
    for attempt in range(policy.attempts):
        try:
            return call()
        except RetriableError as error:
            if attempt == policy.attempts - 1:
                raise
            wait = policy.delay(attempt, error, rng)
            log.warning("%s; retry %d/%d in %.1fs", error, attempt + 1, policy.attempts - 1, wait)
            sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


class TokenPaginator:
    """Follows an opaque next-page token, refusing one it has already seen.

    A tracker that hands back the same token twice would otherwise loop forever.
    """

    def __init__(self, source: str) -> None:
        self._source = source
        self._seen: set[str] = set()
        self.token: str | None = None
        self.finished = False

    def advance(self, next_token: str | None) -> None:
        if not next_token:
            self.finished = True
            return
        if next_token in self._seen:
            raise FatalSourceError(
                self._source,
                f"the tracker repeated the page token {next_token[:16]!r}",
                hint="this is a tracker bug; retry later",
            )
        self._seen.add(next_token)
        self.token = next_token


def at_most(until: datetime, value: datetime | None) -> datetime | None:
    """Clamp a cursor to the run's start: a watermark never runs ahead of the run."""
    if value is None:
        return None
    return min(value, until)


def minus(value: datetime | None, overlap: timedelta) -> datetime | None:
    """``value - overlap``, keeping None (a first, full sync)."""
    return None if value is None else value - overlap
