"""GitLab issues (source kind ``gitlab``): one project's issues, with history and comments.

Endpoints (REST v4, ``PRIVATE-TOKEN`` header when a token is set)::

    GET /api/v4/projects/{id or url-encoded path}/issues?scope=all&order_by=updated_at
        &sort=asc&per_page=100&updated_after=<ISO>&pagination=keyset
    GET .../issues/{iid}/resource_state_events      closed / reopened
    GET .../issues/{iid}/resource_label_events      only with ``in_progress_labels``
    GET .../issues/{iid}/links                      linked issues: ``link_type``
                                                    ``is_blocked_by`` names a blocker
    GET .../milestones?include_ancestors=true       once per sync: the due dates
    GET .../issues/{iid}/notes?sort=asc&order_by=created_at
                                                    comments, and the assignee history
                                                    from ``system`` notes; not asked for
                                                    when ``user_notes_count`` is 0 and
                                                    nobody is assigned

Keyset pagination for project issues came in GitLab 18.3: ``Link: rel="next"`` then
carries a cursor on ``(updated_at, id)``, which no concurrent update can disturb. An older
instance answers 405 (501 before 13.x), and the list is then read by
:func:`connectors.http.sweep_updated` with offset links only inside one second.

Statuses: ``opened`` (todo) and ``closed`` (done); an open issue carrying one of the
source's ``in_progress_labels`` (e.g. a board's ``workflow::doing``) is in progress, and
adding or removing such a label is a status change. ``container`` is the milestone's
title (its ``due_date`` in ``fields["milestone_due"]``), ``parent`` the epic's iid (for
the ``epic:`` selector), ``points`` the weight, ``due`` the issue's own due date.

Assignee history: GitLab has no resource events for assignees, only system notes
(``assigned to @alice``, ``unassigned @bob``, ``assigned to @alice and unassigned @bob``,
``reassigned to @carol`` before 13.x, several handles as ``@a, @b and @c``). They are
replayed over the issue's assignee list; each change of the first assignee (the item's
``assignee``) is an :class:`~models.records.AssigneeChange`. An issue nobody is assigned to
now is not asked for its notes unless it has comments, so its earlier assignees are not
known. A closed issue without any state event (GitLab recorded none before 2020) gets its
close from ``closed_at`` (by ``closed_by``), flagged, so its milestone has a last movement.

Blocked-by: the listing says nothing of links, so each open issue read costs one request
for its links (a closed one's blockers judge nothing, and are not asked for) (a link adds a system note to both issues, which updates them, so a new link is
read with the window); the keys of its ``is_blocked_by`` links go to
``fields["blocked_by"]``, which the ``blocked_by_other_team`` rule reads. Due dates: GitLab
keeps no history of a milestone's ``due_date``; each sync lists the milestones once and
hands their dates to the store as seen, which records a change where one differs from the
last it knows (the slip log).

``stratmap push`` (a ``{milestone: TITLE}`` selector's due date): :mod:`connectors.gitlab.push`.

Rate limits: 429 waits for ``Retry-After``, else until ``RateLimit-Reset`` (epoch seconds).
"""

from __future__ import annotations

import functools
import itertools
import random
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any, ClassVar
from urllib.parse import quote

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
    spent_budget,
    sweep_updated,
)
from stratmap.connectors.labelled import LabelStatus, epoch_seconds, label_names, refusal
from stratmap.models.plan import GitlabSource
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

DEFAULT_WAIT = 60.0
class KeysetUnavailable(FatalSourceError):
    """The instance cannot page project issues by keyset (before GitLab 18.3)."""


def classify(source: str) -> Classify:
    """GitLab's reading of a response."""

    def read(response: httpx.Response, *, what: str, now: float) -> SourceError | None:
        status = response.status_code
        if status < 400:
            return None
        headers = response.headers
        if status == 429:
            wait = parse_retry_after(headers.get("retry-after"))
            if wait is None:
                reset = epoch_seconds(headers.get("ratelimit-reset"))
                wait = max(0.0, reset - now) if reset is not None else DEFAULT_WAIT
            return RateLimited(
                source, f"{what} was rate-limited by GitLab (HTTP 429)", retry_after=wait,
                hint="stratmap waits and retries; lower the source's concurrency if this "
                     "persists",
            )
        if status in (405, 501) and response.request.url.params.get("pagination") == "keyset":
            return KeysetUnavailable(source, f"{what}: no keyset pagination (HTTP {status})")
        return refusal(
            source, status, what=what, tracker="GitLab", retry_after=headers.get("retry-after"),
            token_hint="check the source's token (a personal, project or group access token "
                       "with read_api)",
            forbidden_hint="the token's user may not read this project's issues",
            missing_hint="check project (group/name or id) and url; a private project needs "
                         "a token",
        )

    return read


def _iso_day(value: object) -> str | None:
    """A milestone's ``due_date`` (``YYYY-MM-DD``) as an ISO day; None if unset or not one."""
    try:
        return date.fromisoformat(str(value)[:10]).isoformat() if value else None
    except ValueError:
        return None


def _username(user: Any) -> str | None:
    if isinstance(user, dict) and isinstance(user.get("username"), str):
        return str(user["username"])
    return None


def _day(value: str) -> datetime:
    """A GitLab date (``2026-10-01``) as midnight UTC."""
    return datetime.combine(date.fromisoformat(value), clock_time(0, 0), tzinfo=UTC)


class GitlabConnector:
    """One GitLab project's issues as a stratmap source."""

    kind: ClassVar[str] = "gitlab"
    ordered = True
    default_overlap = timedelta(minutes=15)

    def __init__(
        self,
        name: str,
        source: GitlabSource,
        *,
        token: str | None = None,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.project = source.project
        self.root = f"{source.url.rstrip('/')}/api/v4"
        self.base = f"{self.root}/projects/{quote(source.project, safe='')}"
        self.page_size = source.page_size
        self.concurrency = source.concurrency
        self.statuses = LabelStatus.named("opened", source.in_progress_labels)
        self.clock = clock
        self.keyset: bool | None = None
        """Whether the instance pages issues by keyset; None until the first listing."""
        headers = {"Accept": "application/json", "User-Agent": "stratmap"}
        if token:
            headers["PRIVATE-TOKEN"] = token
        self.api = JsonApi(name, headers=headers, classify=classify(name), timeout=source.timeout,
                           pace=spent_budget("ratelimit-remaining", "ratelimit-reset"),
                           policy=policy, sleep=sleep, clock=clock, rng=rng,
                           max_connections=max(1, source.concurrency))

    # -- the Connector protocol ----------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        return with_dues(self._pages(window), lambda: self._milestone_dues(window.until))

    def _pages(self, window: Window) -> Iterator[Page]:
        # An issue of the overlap whose ``updated_at`` (to the millisecond) the store holds
        # already has not changed since it was read: its events, notes and links are not
        # asked for again (up to four requests an issue, every run) and it is left out.
        stored = window.stored if window.since is not None else {}
        for listing in self._issues(window.since):
            rows = [row for row in listing.rows if not stored
                    or stored.get(self.key(row)) != parse_moment(str(row["updated_at"]))]
            count = RequestCount(listing.requests)
            details = fan_out(functools.partial(self._details, count=count), rows,
                              workers=self.concurrency)
            page = self._page(rows, details, listing, count.value)
            if len(rows) < len(listing.rows):  # the watermark may pass what was left out
                page = page.model_copy(update={"cursor": max(
                    parse_moment(str(row["updated_at"])) for row in listing.rows)})
            yield page

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        return None  # milestone, labels and epic are matched on the stored items

    def reconcile(self) -> frozenset[str]:
        """Every issue the project has now, so the store can hide deleted or moved ones."""
        return frozenset(self.key(row) for listing in self._issues(None)
                         for row in listing.rows)

    def close(self) -> None:
        self.api.close()

    # -- the Pusher protocol (``stratmap push``) -----------------------------------------

    def check(self, targets: Sequence[Target]) -> PushCheck:
        """The milestones the plan names (``{milestone: TITLE}``), against its due days:
        :func:`connectors.gitlab.push.check`."""
        from stratmap.connectors.gitlab.push import check

        return check(self, targets)

    def apply(self, difference: Difference) -> None:
        """Write one difference :meth:`check` found: the milestone's due date."""
        from stratmap.connectors.gitlab.push import apply

        apply(self, difference)


    # -- requests ------------------------------------------------------------------------

    def _params(self, since: datetime | None, *, keyset: bool) -> Params:
        query: dict[str, str | int] = {"scope": "all", "order_by": "updated_at", "sort": "asc",
                                       "per_page": self.page_size}
        if since is not None:
            query["updated_after"] = iso_seconds(since)
        if keyset:
            query["pagination"] = "keyset"
        return query

    def _issues(self, since: datetime | None) -> Iterator[Listing]:
        url = f"{self.base}/issues"
        what = f"listing the issues of {self.project}"
        count = RequestCount()
        if self.keyset is not False:
            pages = self.api.follow(url, params=self._params(since, keyset=True), count=count,
                                    what=what)
            try:
                first = next(pages)
            except KeysetUnavailable:
                self.keyset = False
            else:
                self.keyset = True
                for response, rows in itertools.chain([first], pages):
                    yield Listing(rows=rows, endpoint=str(response.url), requests=count.value)
                    count.value = 0
                return
        yield from sweep_updated(
            self.api, url, params=lambda start: self._params(start, keyset=False), since=since,
            updated=lambda row: parse_moment(str(row["updated_at"])),
            identity=lambda row: str(row["iid"]), slack=timedelta(0), what=what,
            spent=count.value,
        )

    def _details(self, issue: Row, count: RequestCount) -> dict[str, list[Row]]:
        iid = issue["iid"]
        url = f"{self.base}/issues/{iid}"
        ref = f"{self.project}#{iid}"
        details = {
            "resource_state_events": self.api.collect(
                f"{url}/resource_state_events", params={"per_page": 100}, count=count,
                what=f"reading the state events of {ref}"),
            "resource_label_events": [],
            "notes": [],
        }
        if self.statuses.in_progress:
            details["resource_label_events"] = self.api.collect(
                f"{url}/resource_label_events", params={"per_page": 100}, count=count,
                what=f"reading the label events of {ref}")
        if issue.get("state") != "closed":  # a closed issue's blockers judge nothing
            details["links"] = self.api.collect(
                f"{url}/links", params={"per_page": 100}, count=count,
                what=f"reading the linked issues of {ref}")
        if issue.get("user_notes_count", 1) or issue.get("assignees") or issue.get("assignee"):
            details["notes"] = self.api.collect(
                f"{url}/notes", params={"sort": "asc", "order_by": "created_at",
                                        "per_page": 100},
                count=count, what=f"reading the notes of {ref}")
        return details

    def _milestone_dues(self, until: datetime) -> Page:
        """Every milestone's ``due_date`` (the project's and its groups'), as seen now:
        GitLab keeps no history of it, so the store records a change when one differs
        from the last it knows. A project milestone wins over a group one of its title, as
        for ``stratmap push``."""
        count = RequestCount()
        rows = self.api.collect(
            f"{self.base}/milestones", params={"include_ancestors": "true", "per_page": 100},
            count=count, what=f"listing the milestones of {self.project}")
        dues: dict[str, str | None] = {}
        for row in sorted(rows, key=lambda r: r.get("project_id") is None):
            if row.get("title"):
                dues.setdefault(str(row["title"]), _iso_day(row.get("due_date")))
        return Page(source=self.name, requests=count.value, dues=tuple(
            TrackerDue(source=self.name, container=title, at=until, origin="seen", to_due=due)
            for title, due in sorted(dues.items())))

    def blockers(self, issue: Row, links: list[Row]) -> list[str]:
        """The keys of the issues this one is blocked by: its links of ``link_type``
        ``is_blocked_by`` (the type is the listed issue's relation as seen from this one);
        an issue of another project keeps its ``path#iid`` (an item this source lacks)."""
        keys = set()
        for link in links:
            if link.get("link_type") != "is_blocked_by" or link.get("iid") is None:
                continue
            same = link.get("project_id") in (None, issue.get("project_id"))
            keys.add(f"{self.name}#{link['iid']}" if same else str(
                (link.get("references") or {}).get("full") or
                f"{link.get('project_id')}#{link['iid']}"))
        return sorted(keys)

    # -- normalizing ---------------------------------------------------------------------

    def key(self, issue: Row) -> str:
        return f"{self.name}#{issue['iid']}"

    def _page(self, issues: list[Row], details: list[dict[str, list[Row]]], listing: Listing,
              requests: int) -> Page:
        fetched_at = datetime.fromtimestamp(self.clock(), UTC)
        items: list[WorkItem] = []
        changes: list[StatusChange] = []
        comments: list[Comment] = []
        assignments: list[AssigneeChange] = []
        people: dict[str, str | None] = {}
        raw: list[RawPayload] = []
        for issue, detail in zip(issues, details, strict=True):
            item = self.item(issue)
            blocked_by = self.blockers(issue, detail.get("links") or [])
            if blocked_by:
                item = item.model_copy(update={
                    "fields": {**item.fields, BLOCKED_BY: ",".join(blocked_by)}})
            detail = self.closed_without_events(issue, detail)
            if detail.get("synthesized"):
                item = item.model_copy(update={"flags": (
                    *item.flags, "closed without state events: the close is from closed_at")})
            history, notes = self.history(item.key, detail, people)
            assignments.extend(self.assignments(item.key, detail["notes"], people))
            if (history[-1].to_category if history else StatusCategory.TODO) != \
                    item.status_category:
                item = item.model_copy(update={
                    "flags": (*item.flags, "the events do not end in the current status"),
                })
            items.append(item)
            changes.extend(history)
            comments.extend(notes)
            for user in (issue.get("author"), issue.get("assignee"),
                         *(issue.get("assignees") or [])):
                _meet(people, user)
            raw.append(RawPayload(source=self.name, key=item.key, endpoint=listing.endpoint,
                                  fetched_at=fetched_at, payload={"issue": issue, **detail}))
        return Page(
            source=self.name, items=tuple(items), changes=tuple(changes),
            comments=tuple(comments), assignments=tuple(assignments),
            accounts=tuple(Account(source=self.name, account_id=username, display_name=name)
                           for username, name in sorted(people.items())),
            raw=tuple(raw), cursor=max((i.updated for i in items), default=None),
            requests=requests,
        )

    def closed_without_events(self, issue: Row, detail: dict[str, list[Row]],
                              ) -> dict[str, list[Row]]:
        """``detail`` with a close made from ``closed_at`` (by ``closed_by``) when a closed
        issue has no state event at all (GitLab recorded none before 2020); marked by a
        ``synthesized`` entry."""
        if (issue.get("state") != "closed" or not issue.get("closed_at")
                or detail["resource_state_events"]):
            return detail
        close = {"id": "closed_at", "state": "closed", "created_at": issue["closed_at"],
                 "user": issue.get("closed_by"), "resource_type": "Issue",
                 "resource_id": issue.get("id")}
        return {**detail, "resource_state_events": [close], "synthesized": [close]}

    def assignments(self, key: str, notes: list[Row],
                    people: dict[str, str | None]) -> list[AssigneeChange]:
        """Changes of the first assignee, replayed from the assignment system notes."""
        held: list[str] = []
        changes: list[AssigneeChange] = []
        for note in notes:
            if not note.get("system"):
                continue
            moved = assignment_note(str(note.get("body") or ""))
            if moved is None:
                continue
            added, removed, replaced = moved
            before = held[0] if held else None
            held = [] if replaced else [h for h in held if h not in removed]
            held += [h for h in added if h not in held]
            after = held[0] if held else None
            if after == before:
                continue
            _meet(people, note.get("author"))
            changes.append(AssigneeChange(
                source=self.name, item_key=key, change_id=f"note-{note['id']}",
                at=parse_moment(str(note["created_at"])), author=_username(note.get("author")),
                from_account=before, to_account=after))
        return changes

    def item(self, issue: Row) -> WorkItem:
        """An issue of the list endpoint as a WorkItem."""
        try:
            labels = label_names(issue)
            closed = issue["state"] == "closed"
            status, category = self.statuses.of(closed, labels)
            assignees = [_username(a) for a in issue.get("assignees") or []]
            assignee = next(filter(None, assignees), None) or _username(issue.get("assignee"))
            milestone = issue.get("milestone") or {}
            epic = issue.get("epic") or {}
            epic_iid = epic.get("iid") if isinstance(epic, dict) else None
            if epic_iid is None:
                epic_iid = issue.get("epic_iid")
            fields: dict[str, str] = {}
            if milestone.get("due_date"):
                fields["milestone_due"] = str(milestone["due_date"])
            weight = issue.get("weight")
            kind = issue.get("issue_type") or issue.get("type")
            return WorkItem(
                source=self.name,
                key=self.key(issue),
                title=str(issue.get("title") or ""),
                item_type=str(kind).lower() if kind else None,
                status=status,
                status_category=category,
                assignee=assignee,
                reporter=_username(issue.get("author")),
                created=parse_moment(str(issue["created_at"])),
                updated=parse_moment(str(issue["updated_at"])),
                resolved=parse_moment(str(issue["closed_at"]))
                if closed and issue.get("closed_at") else None,
                due=_day(str(issue["due_date"])) if issue.get("due_date") else None,
                parent=str(epic_iid) if epic_iid is not None else None,
                labels=labels,
                container=str(milestone["title"]) if milestone.get("title") else None,
                points=float(weight) if isinstance(weight, int | float) else None,
                url=str(issue["web_url"]) if issue.get("web_url") else None,
                fields=fields,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise FatalSourceError(
                self.name, f"issue {issue.get('iid')!r} of {self.project} is not as expected "
                f"({type(error).__name__}: {error})",
                hint="GitLab's payload changed; report it with the issue's raw payload",
            ) from error

    def history(self, key: str, detail: dict[str, list[Row]],
                people: dict[str, str | None]) -> tuple[list[StatusChange], list[Comment]]:
        """Status changes (replayed from open) and comments; meets the people acting."""
        comments = []
        for note in detail["notes"]:
            if note.get("system"):
                continue
            _meet(people, note.get("author"))
            comments.append(Comment(
                source=self.name, item_key=key, comment_id=str(note["id"]),
                at=parse_moment(str(note["created_at"])), author=_username(note.get("author")),
                body=str(note.get("body") or ""),
            ))
        events: list[tuple[str, Row]] = [("state", e) for e in detail["resource_state_events"]]
        events += [("label", e) for e in detail["resource_label_events"]]
        # At one moment, the state first: a board that closes an issue and drops its
        # "doing" label in one move is one change (to closed), not two.
        events.sort(key=lambda pair: (parse_moment(str(pair[1]["created_at"])),
                                      pair[0] != "state", _event_order(pair[1])))
        changes: list[StatusChange] = []
        replay = self.statuses.replay()
        for source, event in events:
            before = replay.state
            if source == "state":
                new = replay.close(event.get("state") == "closed")
            else:
                new = replay.label(str((event.get("label") or {}).get("name") or ""),
                                   added=event.get("action") == "add")
            if new is None:
                continue
            _meet(people, event.get("user"))
            changes.append(StatusChange(
                source=self.name, item_key=key, change_id=f"{source}-{event['id']}",
                at=parse_moment(str(event["created_at"])), author=_username(event.get("user")),
                from_status=before[0], to_status=new[0], from_category=before[1],
                to_category=new[1],
            ))
        return changes, comments


def _event_order(event: Row) -> int:
    number = event.get("id")
    return int(str(number)) if str(number).isdigit() else 0


_HANDLES = r"@[\w.\-]+(?:(?:,\s*|\s+and\s+)@[\w.\-]+)*"
_ASSIGNED = re.compile(rf"^(?P<verb>re)?assigned to (?P<added>{_HANDLES})"
                       rf"(?: and unassigned (?P<removed>{_HANDLES}))?\s*$")
_UNASSIGNED = re.compile(rf"^unassigned (?P<removed>{_HANDLES})\s*$")


def assignment_note(body: str) -> tuple[list[str], list[str], bool] | None:
    """(added, removed, replaces-all) from an assignment system note's text, else None.

    GitLab writes ``assigned to @a``, ``assigned to @a and unassigned @b``, ``unassigned
    @b``, several handles as ``@a, @b and @c``; ``reassigned to @a`` (before 13.x)
    replaces every assignee."""
    def handles(text: str | None) -> list[str]:
        return re.findall(r"@([\w.\-]+)", text or "")

    text = body.strip()
    if match := _ASSIGNED.match(text):
        return (handles(match.group("added")), handles(match.group("removed")),
                match.group("verb") is not None)
    if match := _UNASSIGNED.match(text):
        return [], handles(match.group("removed")), False
    return None


def _meet(people: dict[str, str | None], user: Any) -> None:
    username = _username(user)
    if username is not None:
        name = user.get("name") if isinstance(user, dict) else None
        people[username] = str(name) if name else people.get(username)

