"""GitHub Issues (source kind ``github``): one repository's issues, with history and comments.

Endpoints (REST, ``X-GitHub-Api-Version: 2022-11-28``)::

    GET /repos/{owner}/{repo}/issues?state=all&sort=updated&direction=asc&per_page=100
        &since=<ISO>                      the window; pull requests (a ``pull_request``
                                          key) are dropped
    GET /repos/{owner}/{repo}/issues/{number}/timeline?per_page=100
                                          state changes and comments of one issue, in one
                                          list (``closed``/``reopened``/``labeled``/
                                          ``unlabeled``/``commented``)
    GET /repos/{owner}/{repo}/issues/{number}/dependencies/blocked_by?per_page=100
                                          the open issues blocking one, asked only when
                                          the listing's ``issue_dependencies_summary``
                                          counts any (``blocked_by``: open blockers), so an
                                          unblocked issue costs no request
    GET /repos/{owner}/{repo}/milestones?state=all&per_page=100
                                          once per sync: every milestone's ``due_on``

Blocked-by: the keys of an issue's open blockers go to ``fields["blocked_by"]`` (the
``blocked_by_other_team`` rule reads it); a blocker in another repository keeps its
``owner/repo#N``. Dependencies came to the REST API in 2025 (``issue_dependencies_summary``
in every issue answer): reading the summary costs nothing, and the list is asked only for
the few issues it names as blocked, where one request per issue for every issue would
double a sync's requests.

Due dates: GitHub keeps no history of a milestone's ``due_on``, so each sync lists the
milestones once and hands their due days to the store as seen (``origin = seen``); the
store records a change where one differs from the last it knows (the slip log).

The issue list is read by :func:`connectors.http.sweep_updated` (``since`` moves to each
page's highest ``updated_at``; ``Link: rel="next"`` only inside one second), so an issue
updated mid-sync cannot shift another past the watermark. GitHub asks that one client's
requests be made serially, so ``concurrency`` defaults to 1.

Statuses: an open issue is ``open`` (todo), a closed one ``closed`` (done, whatever its
``state_reason``). An open issue carrying one of the source's ``in_progress_labels`` is in
progress, and adding or removing such a label is a status change: GitHub has no other
in-progress state. The item's ``container`` is its milestone's title; the milestone's
``due_on`` is kept in ``fields["milestone_due"]``.

``stratmap push`` (:meth:`GithubConnector.check`, :meth:`GithubConnector.apply`): a
``{milestone: TITLE}`` selector names the repository's milestone of that title; only its
``due_on`` is pushed (a milestone has no assignee)::

    GET   /repos/{owner}/{repo}/milestones?state=all&per_page=100   every milestone, paged
    PATCH /repos/{owner}/{repo}/milestones/{number}  {"due_on": "YYYY-MM-DDT12:00:00Z"}

GitHub keeps a milestone's due *day*: it floors ``due_on`` to midnight US Pacific time and
answers that instant (``2026-09-24T07:00:00Z``, ``08:00:00Z`` in winter). Midnight UTC
would be the evening before in Pacific time, and store the day before; noon UTC is the
same day in every US zone and in UTC, so it is what is sent, and days are compared in UTC.

Rate limits: a 403 or 429 with ``x-ratelimit-remaining: 0`` waits until
``x-ratelimit-reset`` (epoch seconds); a ``retry-after`` is honoured, never undercut; a
secondary limit without either waits a minute, as GitHub's documentation asks.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

import httpx

from stratmap.connectors.base import (
    BLOCKED_BY,
    Difference,
    FatalSourceError,
    PushCheck,
    RateLimited,
    RequestCount,
    RetryPolicy,
    SourceError,
    Target,
    Window,
    parse_retry_after,
    with_dues,
)
from stratmap.connectors.http import (
    Classify,
    JsonApi,
    Listing,
    Params,
    Row,
    fan_out,
    iso_seconds,
    parse_moment,
    refusals_explained,
    spent_budget,
    sweep_updated,
)
from stratmap.connectors.labelled import LabelStatus, epoch_seconds, label_names, refusal
from stratmap.models.plan import GithubSource
from stratmap.models.records import (
    Account,
    AssigneeChange,
    Comment,
    Page,
    RawPayload,
    StatusCategory,
    StatusChange,
    TrackerDue,
    WorkItem,
)

API_VERSION = "2022-11-28"
SECONDARY_WAIT = 60.0
"""GitHub: without retry-after or x-ratelimit-reset, wait at least a minute."""

STATE_EVENTS = frozenset({"closed", "reopened", "labeled", "unlabeled"})
WRITE_HINT = ("the token needs write access to the repository's issues and milestones (a "
              "fine-grained token: 'Issues: Read and write' on this repository; a classic "
              "token: the repo scope) and its account at least the Triage role; "
              "`stratmap push` without --apply only reads")


def classify(source: str) -> Classify:
    """GitHub's reading of a response (see the module docstring for the rate limits)."""

    def read(response: httpx.Response, *, what: str, now: float) -> SourceError | None:
        status = response.status_code
        if status < 400:
            return None
        headers = response.headers
        if status in (403, 429):
            retry_after = parse_retry_after(headers.get("retry-after"))
            wait: float | None = retry_after
            if headers.get("x-ratelimit-remaining") == "0":
                reset = epoch_seconds(headers.get("x-ratelimit-reset"))
                until_reset = max(0.0, reset - now) if reset is not None else SECONDARY_WAIT
                wait = max(until_reset, retry_after or 0.0)
            elif wait is None and (status == 429 or _says_rate_limit(response)):
                wait = SECONDARY_WAIT
            if wait is not None:
                return RateLimited(
                    source, f"{what} was rate-limited by GitHub (HTTP {status})",
                    retry_after=wait,
                    hint="stratmap waits and retries; a token raises the limit from 60 to "
                         "5,000 requests an hour",
                )
        if status == 410:
            return FatalSourceError(
                source, f"{what}: issues are disabled for this repository (HTTP 410)",
            )
        return refusal(
            source, status, what=what, tracker="GitHub", retry_after=headers.get("retry-after"),
            token_hint="check the source's token; a fine-grained token needs 'Issues: read'",
            forbidden_hint="the token may not read this repository's issues",
            missing_hint="check repo (owner/name); a private repository needs a token with "
                         "access",
        )

    return read


def classify_write(source: str, what_to_fix: str) -> Classify:
    """GitHub's reading of an edit's answer: as :func:`classify`, but a refusal carries
    GitHub's own message and says what the token needs for writing."""

    def auth_hint(response: httpx.Response) -> str:
        needs = response.headers.get("x-accepted-github-permissions")
        return WRITE_HINT + (f" (GitHub accepts: {needs})" if needs else "")

    return refusals_explained(classify(source), source=source, tracker="GitHub", said=_message,
                              auth_hint=auth_hint, what_to_fix=what_to_fix)


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` and its validation ``errors`` (``{"field", "code"}``), if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    parts = [str(body["message"])] if body.get("message") else []
    for error in body.get("errors") or []:
        if isinstance(error, dict):
            detail = error.get("message") or " ".join(
                str(error[k]) for k in ("field", "code") if error.get(k))
            if detail:
                parts.append(str(detail))
        elif error:
            parts.append(str(error))
    return "; ".join(parts)[:500]


def due_day(due_on: object) -> date | None:
    """The day of a milestone's ``due_on`` (GitHub: Pacific midnight, in UTC: same day)."""
    if not due_on:
        return None
    return parse_moment(str(due_on)).date()


def _says_rate_limit(response: httpx.Response) -> bool:
    """A secondary rate limit's 403 without headers says so only in its message."""
    try:
        body = response.json()
    except ValueError:
        return False
    message = body.get("message") if isinstance(body, dict) else None
    return isinstance(message, str) and "rate limit" in message.lower()


def _login(user: Any) -> str | None:
    if isinstance(user, dict) and isinstance(user.get("login"), str):
        return str(user["login"])
    return None


class GithubConnector:
    """One GitHub repository's issues as a stratmap source."""

    kind: ClassVar[str] = "github"
    ordered = True
    default_overlap = timedelta(minutes=15)

    def __init__(
        self,
        name: str,
        source: GithubSource,
        *,
        token: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.repo = source.repo
        self.base = f"{source.url.rstrip('/')}/repos/{source.repo}"
        self.page_size = source.page_size
        self.concurrency = source.concurrency
        self.statuses = LabelStatus.named("open", source.in_progress_labels)
        self.clock = clock
        headers = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": "stratmap",
        }
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.api = JsonApi(name, headers=headers, classify=classify(name), timeout=source.timeout,
                           pace=spent_budget("x-ratelimit-remaining", "x-ratelimit-reset"),
                           policy=policy, sleep=sleep, clock=clock, rng=rng,
                           max_connections=max(1, source.concurrency))

    # -- the Connector protocol ----------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        return with_dues(self._pages(window), lambda: self._milestone_dues(window.until))

    def _pages(self, window: Window) -> Iterator[Page]:
        for listing in self._issues(window.since):
            issues = [row for row in listing.rows if "pull_request" not in row]
            count = RequestCount(listing.requests)
            timelines = fan_out(functools.partial(self._timeline, count=count), issues,
                                workers=self.concurrency)
            blockers = fan_out(functools.partial(self._blockers, count=count), issues,
                               workers=self.concurrency)
            yield self._page(issues, timelines, listing, count.value, blockers)

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        return None  # milestone and labels are matched on the stored items

    def reconcile(self) -> frozenset[str]:
        """Every issue the repository has now, so the store can hide deleted ones."""
        return frozenset(
            self.key(row) for listing in self._issues(None) for row in listing.rows
            if "pull_request" not in row
        )

    def close(self) -> None:
        self.api.close()

    # -- the Pusher protocol (``stratmap push``): :mod:`connectors.github.push` --

    def check(self, targets: Sequence[Target]) -> PushCheck:
        """What ``stratmap push`` would change: :func:`connectors.github.push.check`."""
        from stratmap.connectors.github.push import check

        return check(self, targets)

    def apply(self, difference: Difference) -> None:
        """Write one difference :meth:`check` found: :func:`connectors.github.push.apply`."""
        from stratmap.connectors.github.push import apply

        apply(self, difference)

    # -- requests ------------------------------------------------------------------------

    def _issues(self, since: datetime | None) -> Iterator[Listing]:
        def params(start: datetime | None) -> Params:
            query: dict[str, str | int] = {"state": "all", "sort": "updated",
                                           "direction": "asc", "per_page": self.page_size}
            if start is not None:
                query["since"] = iso_seconds(start)
            return query

        return sweep_updated(
            self.api, f"{self.base}/issues", params=params, since=since,
            updated=lambda row: parse_moment(str(row["updated_at"])),
            identity=lambda row: str(row["number"]),
            slack=timedelta(seconds=1),
            what=f"listing the issues of {self.repo}",
        )

    def _timeline(self, issue: Row, count: RequestCount) -> list[Row]:
        number = issue["number"]
        return self.api.collect(
            f"{self.base}/issues/{number}/timeline", params={"per_page": 100}, count=count,
            what=f"reading the timeline of {self.repo}#{number}",
        )

    def _blockers(self, issue: Row, count: RequestCount) -> list[Row]:
        """The open issues this one is blocked by: asked only of an issue whose
        ``issue_dependencies_summary`` counts open blockers (the listing carries it)."""
        summary = issue.get("issue_dependencies_summary")
        if not isinstance(summary, dict) or not int(summary.get("blocked_by") or 0):
            return []
        number = issue["number"]
        return self.api.collect(
            f"{self.base}/issues/{number}/dependencies/blocked_by", params={"per_page": 100},
            count=count, what=f"reading what blocks {self.repo}#{number}")

    def _milestone_dues(self, until: datetime) -> Page:
        """Every milestone's due day, as seen now: GitHub keeps no history of it, so the
        store records a change when one differs from the last it knows."""
        count = RequestCount()
        rows = self.api.collect(
            f"{self.base}/milestones", params={"state": "all", "per_page": 100}, count=count,
            what=f"listing the milestones of {self.repo}")
        dues = {str(row["title"]): due_day(row.get("due_on")) for row in rows
                if row.get("title")}
        return Page(source=self.name, requests=count.value, dues=tuple(
            TrackerDue(source=self.name, container=title, at=until, origin="seen",
                       to_due=day.isoformat() if day else None)
            for title, day in sorted(dues.items())))

    def blocker_key(self, blocker: Row) -> str:
        """A blocking issue's key: ``site#12`` in this repository, ``owner/repo#12`` in
        another (an item this source does not hold)."""
        repository = str(blocker.get("repository_url") or "")
        number = blocker.get("number")
        if not repository or repository.rstrip("/").endswith(f"/repos/{self.repo}"):
            return f"{self.name}#{number}"
        return f"{repository.rstrip('/').split('/repos/')[-1]}#{number}"

    # -- normalizing ---------------------------------------------------------------------

    def key(self, issue: Row) -> str:
        return f"{self.name}#{issue['number']}"

    def _page(self, issues: list[Row], timelines: list[list[Row]], listing: Listing,
              requests: int, blockers: list[list[Row]] | None = None) -> Page:
        fetched_at = datetime.fromtimestamp(self.clock(), UTC)
        items: list[WorkItem] = []
        changes: list[StatusChange] = []
        comments: list[Comment] = []
        assignments: list[AssigneeChange] = []
        logins: set[str] = set()
        raw: list[RawPayload] = []
        blocking = blockers or [[] for _ in issues]
        for issue, timeline, blocked_by in zip(issues, timelines, blocking, strict=True):
            item = self.item(issue)
            if blocked_by:
                keys = sorted({self.blocker_key(b) for b in blocked_by})
                item = item.model_copy(update={
                    "fields": {**item.fields, BLOCKED_BY: ",".join(keys)}})
            history, notes, actors = self.history(item.key, timeline)
            assignments.extend(self.assignments(item.key, timeline))
            if (history[-1].to_category if history else StatusCategory.TODO) != \
                    item.status_category:
                item = item.model_copy(update={
                    "flags": (*item.flags, "the timeline does not end in the current status"),
                })
            items.append(item)
            changes.extend(history)
            comments.extend(notes)
            logins.update(actors)
            logins.update(login for login in (item.assignee, item.reporter) if login)
            logins.update(filter(None, (_login(a) for a in issue.get("assignees") or [])))
            raw.append(RawPayload(source=self.name, key=item.key, endpoint=listing.endpoint,
                                  fetched_at=fetched_at,
                                  payload={"issue": issue, "timeline": timeline,
                                           **({"blocked_by": blocked_by} if blocked_by
                                              else {})}))
        return Page(
            source=self.name, items=tuple(items), changes=tuple(changes),
            comments=tuple(comments),
            accounts=tuple(Account(source=self.name, account_id=login)
                           for login in sorted(logins)),
            raw=tuple(raw), cursor=max((i.updated for i in items), default=None),
            requests=requests, assignments=tuple(assignments),
        )

    def item(self, issue: Row) -> WorkItem:
        """An issue of the list endpoint as a WorkItem."""
        try:
            labels = label_names(issue)
            closed = issue["state"] == "closed"
            status, category = self.statuses.of(closed, labels)
            assignees = [_login(a) for a in issue.get("assignees") or []]
            assignee = next(filter(None, assignees), None) or _login(issue.get("assignee"))
            milestone = issue.get("milestone") or {}
            fields: dict[str, str] = {}
            if issue.get("state_reason"):
                fields["state_reason"] = str(issue["state_reason"])
            if milestone.get("due_on"):
                fields["milestone_due"] = str(milestone["due_on"])
            kind = issue.get("type")
            return WorkItem(
                source=self.name,
                key=self.key(issue),
                title=str(issue.get("title") or ""),
                item_type=str(kind["name"]) if isinstance(kind, dict) and kind.get("name")
                else None,
                status=status,
                status_category=category,
                assignee=assignee,
                reporter=_login(issue.get("user")),
                created=parse_moment(str(issue["created_at"])),
                updated=parse_moment(str(issue["updated_at"])),
                resolved=parse_moment(str(issue["closed_at"]))
                if closed and issue.get("closed_at") else None,
                labels=labels,
                container=str(milestone["title"]) if milestone.get("title") else None,
                url=str(issue["html_url"]) if issue.get("html_url") else None,
                fields=fields,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FatalSourceError(
                self.name, f"issue {issue.get('number')!r} of {self.repo} is not as expected "
                f"({type(error).__name__}: {error})",
                hint="GitHub's payload changed; report it with the issue's raw payload",
            ) from error

    def assignments(self, key: str, timeline: list[Row]) -> list[AssigneeChange]:
        """Changes of the item's assignee (its first assignee, as :meth:`item` reads it),
        replayed from the timeline's ``assigned``/``unassigned`` events: while several
        people are assigned, the one assigned first is the assignee."""
        held: list[str] = []  # in the order they were assigned
        found: list[AssigneeChange] = []
        events = [e for e in timeline if e.get("event") in ("assigned", "unassigned")]
        for event in sorted(events, key=lambda e: parse_moment(str(e["created_at"]))):
            who = _login(event.get("assignee"))
            if who is None:
                continue
            before = held[0] if held else None
            if event["event"] == "assigned" and who not in held:
                held.append(who)
            elif event["event"] == "unassigned" and who in held:
                held.remove(who)
            after = held[0] if held else None
            if after != before:
                found.append(AssigneeChange(
                    source=self.name, item_key=key, change_id=str(event["id"]),
                    at=parse_moment(str(event["created_at"])),
                    author=_login(event.get("actor")), from_account=before,
                    to_account=after))
        return found

    def history(self, key: str, timeline: list[Row]) -> tuple[list[StatusChange],
                                                              list[Comment], set[str]]:
        """Status changes (replayed from open), comments and the accounts acting in them."""
        changes: list[StatusChange] = []
        comments: list[Comment] = []
        actors: set[str] = set()
        replay = self.statuses.replay()
        relevant = [e for e in timeline if e.get("event") in STATE_EVENTS | {"commented"}]
        for event in sorted(relevant, key=lambda e: parse_moment(str(e["created_at"]))):
            kind = event.get("event")
            if kind == "commented":
                author = _login(event.get("user")) or _login(event.get("actor"))
                comments.append(Comment(
                    source=self.name, item_key=key, comment_id=str(event["id"]),
                    at=parse_moment(str(event["created_at"])), author=author,
                    body=str(event.get("body") or ""),
                ))
                if author:
                    actors.add(author)
                continue
            before = replay.state
            if kind in ("closed", "reopened"):
                new = replay.close(kind == "closed")
            else:
                new = replay.label(str((event.get("label") or {}).get("name") or ""),
                                   added=kind == "labeled")
            if new is None:
                continue
            author = _login(event.get("actor"))
            if author:
                actors.add(author)
            changes.append(StatusChange(
                source=self.name, item_key=key, change_id=str(event["id"]),
                at=parse_moment(str(event["created_at"])), author=author,
                from_status=before[0], to_status=new[0], from_category=before[1],
                to_category=new[1],
            ))
        return changes, comments, actors
