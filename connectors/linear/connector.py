"""Linear (source kind ``linear``): a workspace's issues, or one team's, with history and comments.

One endpoint (``https://api.linear.app/graphql``) takes GraphQL over POST (a JSON
``{"query", "variables"}`` body) and answers ``{"data", "errors"}``. Lists are Relay
connections (``nodes`` and ``pageInfo { hasNextPage endCursor }``; the next page is asked
for with ``after``). The operations stratmap sends::

    teams(filter: {key: {eq: TEAM}})         once, when ``team`` is set: an unknown key
                                             is an error, not an empty sync
    issues(filter: {updatedAt: {gte: SINCE}, team: {key: {eq: TEAM}}}, first: N,
           after: CURSOR, orderBy: updatedAt, includeArchived: true)
                                             the window; each issue with its first
                                             ``nested_page_size`` history entries and
                                             comments
    issue(id: ID) { history(first, after) }  the rest of a long history, and of a long
    issue(id: ID) { comments(first, after) } comment thread, one issue at a time
    projects(first, after) { teams projectUpdates(first) { nodes { id health body
           createdAt user } } }        after the issues, every sync: each project's latest
                                             updates, whose ``health`` (onTrack, atRisk,
                                             offTrack) declares the project's status

``orderBy: updatedAt`` lists the most recently updated first, so the source is not
``ordered``: the watermark moves once the last page is written. The cursors are opaque:
an issue updated while the sync pages moves ahead of the cursor and is read by the next
run (its new ``updatedAt`` is after this run's start). Archived issues are read (Linear
archives finished work after a while; it still counts), trashed ones are not, and the
daily reconciliation hides those trashed since.

Statuses come from the workflow state's ``type``, never its name (see
:data:`connectors.linear.payloads.CATEGORIES`). History entries with a ``toState`` are the
status changes. ``container`` is the project's name (``project:`` selectors), ``labels``
the label names, ``points`` the estimate, ``due`` the due date, ``resolved`` the
completion or cancellation, ``parent`` the parent's identifier (ENG-12). Accounts are
Linear user ids, with display name and e-mail (people are matched by e-mail too). Errors
and rate limits: :mod:`connectors.linear.transport`.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import ClassVar

from stratmap.connectors.base import (
    Difference,
    FatalSourceError,
    PushCheck,
    RequestCount,
    RetryPolicy,
    Target,
    TokenPaginator,
    Window,
    page_of,
)
from stratmap.connectors.http import fan_out, iso_seconds
from stratmap.connectors.linear.payloads import (
    LABELS_PER_ISSUE,
    LinearIssue,
    Row,
    moment,
    normalize_issue,
    project_declarations,
)
from stratmap.connectors.linear.transport import GraphQLApi
from stratmap.models.plan import LinearSource
from stratmap.models.records import (
    Account,
    Declaration,
    Page,
    RawPayload,
)

log = logging.getLogger(__name__)

KEYS_PAGE = 250
"""Issues per request of the key-only reconciliation (Linear's largest page)."""

_USER = "id name displayName email"
_STATE = "id name type"
_PAGE_INFO = "pageInfo { hasNextPage endCursor }"
_HISTORY = (f"nodes {{ id createdAt actor {{ {_USER} }} fromState {{ {_STATE} }} "
            f"toState {{ {_STATE} }} fromAssignee {{ {_USER} }} toAssignee {{ {_USER} }} }} "
            f"{_PAGE_INFO}")
_COMMENTS = f"nodes {{ id body createdAt user {{ {_USER} }} }} {_PAGE_INFO}"

ISSUES_QUERY = f"""\
query StratmapIssues($filter: IssueFilter, $first: Int!, $after: String, $nested: Int!) {{
  issues(filter: $filter, first: $first, after: $after, orderBy: updatedAt,
         includeArchived: true) {{
    nodes {{
      id identifier title url createdAt updatedAt completedAt canceledAt dueDate estimate
      trashed
      state {{ {_STATE} }}
      team {{ key }}
      project {{ name }}
      parent {{ identifier }}
      assignee {{ {_USER} }}
      creator {{ {_USER} }}
      labels(first: {LABELS_PER_ISSUE}) {{ nodes {{ name }} {_PAGE_INFO} }}
      history(first: $nested) {{ {_HISTORY} }}
      comments(first: $nested) {{ {_COMMENTS} }}
    }}
    {_PAGE_INFO}
  }}
}}"""

KEYS_QUERY = f"""\
query StratmapIssueKeys($filter: IssueFilter, $first: Int!, $after: String) {{
  issues(filter: $filter, first: $first, after: $after, includeArchived: true) {{
    nodes {{ identifier trashed }}
    {_PAGE_INFO}
  }}
}}"""

NESTED_QUERIES = {
    "history": f"""\
query StratmapIssueHistory($id: String!, $first: Int!, $after: String) {{
  issue(id: $id) {{ history(first: $first, after: $after) {{ {_HISTORY} }} }}
}}""",
    "comments": f"""\
query StratmapIssueComments($id: String!, $first: Int!, $after: String) {{
  issue(id: $id) {{ comments(first: $first, after: $after) {{ {_COMMENTS} }} }}
}}""",
}

PROJECTS_PAGE = 50
"""Projects per request of the project updates' listing."""

PROJECT_UPDATES_QUERY = f"""\
query StratmapProjectUpdates($first: Int!, $after: String, $nested: Int!) {{
  projects(first: $first, after: $after) {{
    nodes {{
      id name
      teams {{ nodes {{ key }} }}
      projectUpdates(first: $nested) {{ nodes {{ id health body createdAt user {{ {_USER} }} }} }}
    }}
    {_PAGE_INFO}
  }}
}}"""

TEAM_QUERY = """\
query StratmapTeam($key: String!) {
  teams(filter: {key: {eq: $key}}) { nodes { id key name } }
}"""

Listing = tuple[list[Row], dict[int, list[str]], int]
"""One page of issue nodes, the field errors per node index, and the requests it cost."""


def _connection(data: object, name: str, source: str, what: str) -> tuple[list[Row], Row]:
    """A connection's nodes and pageInfo, refusing an answer of another shape."""
    connection = data.get(name) if isinstance(data, dict) else None
    nodes = connection.get("nodes") if isinstance(connection, dict) else None
    info = connection.get("pageInfo") if isinstance(connection, dict) else None
    if not isinstance(nodes, list) or not isinstance(info, dict):
        raise FatalSourceError(source, f"{what}: Linear's answer has no {name} connection",
                               hint="check the source's url: it must be Linear's GraphQL API")
    return [n for n in nodes if isinstance(n, dict)], info


def _next(info: Row, source: str, what: str) -> str | None:
    if not info.get("hasNextPage"):
        return None
    cursor = info.get("endCursor")
    if not isinstance(cursor, str) or not cursor:
        raise FatalSourceError(source, f"{what}: Linear said there is more but gave no cursor",
                               hint="this is a tracker bug; retry later")
    return cursor


class LinearConnector:
    """Linear issues (one team's, or every team's the key sees) as a stratmap source."""

    kind: ClassVar[str] = "linear"
    ordered = False
    default_overlap = timedelta(minutes=15)

    def __init__(self, name: str, config: LinearSource, token: str, *,
                 policy: RetryPolicy | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time, rng: random.Random | None = None) -> None:
        self.name = name
        self.config = config
        self.team = config.team
        self.page_size = config.page_size
        self.nested = config.nested_page_size
        self.concurrency = config.concurrency
        self.clock = clock
        self._team_checked = False
        bearer = config.auth == "oauth" and not token.lower().startswith("bearer ")
        self.api = GraphQLApi(name, url=config.url,
                              authorization=f"Bearer {token}" if bearer else token,
                              timeout=config.timeout, policy=policy, sleep=sleep, clock=clock,
                              rng=rng, max_connections=max(2, config.concurrency))

    def __enter__(self) -> LinearConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the Pusher protocol (``stratmap push``, :mod:`connectors.linear.push`) -------------

    def check(self, targets: Sequence[Target]) -> PushCheck:
        from stratmap.connectors.linear.push import check

        return check(self, targets)

    def apply(self, difference: Difference) -> None:
        from stratmap.connectors.linear.push import apply

        apply(self, difference)

    def __repr__(self) -> str:  # never the key
        return f"LinearConnector({self.name!r}, team={self.team!r})"

    # -- the Connector protocol ----------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        stored = window.stored if window.since is not None else {}
        spent = RequestCount()
        self._check_team(spent)
        last: Page | None = None
        for nodes, problems, requests in self._listing(window.since, spent=spent.value):
            count = RequestCount(requests)
            issues = []
            for index, node in enumerate(nodes):
                if node.get("trashed"):
                    continue
                known = stored.get(str(node.get("identifier")))
                if known is not None and moment(node.get("updatedAt")) == known:
                    continue  # the store holds this very version: nothing changed
                issues.append(LinearIssue(node, problems=list(problems.get(index, ()))))
            completed = fan_out(functools.partial(self._complete, count=count), issues,
                                workers=self.concurrency)
            if last is not None:
                yield last
            last = self._page(completed, window.until, count.value)
        # The project updates ride on the last page, so they are written with it.
        updates = self._project_updates()
        if last is None:
            yield updates
            return
        yield last.model_copy(update={
            "declarations": updates.declarations,
            "accounts": tuple({a.account_id: a for a in (*updates.accounts, *last.accounts)
                               }.values()),
            "requests": last.requests + updates.requests})

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        return None  # project and labels are matched on the stored items

    def reconcile(self) -> frozenset[str]:
        """Every issue in scope now (archived included), so the store hides the others."""
        return frozenset(
            str(node["identifier"])
            for nodes, _, _ in self._listing(None, keys_only=True)
            for node in nodes if node.get("identifier") and not node.get("trashed"))

    def close(self) -> None:
        self.api.close()

    # -- requests ------------------------------------------------------------------------

    def _check_team(self, count: RequestCount) -> None:
        if self.team is None or self._team_checked:
            return
        what = f"looking up the team {self.team}"
        answer = self.api.query(TEAM_QUERY, {"key": self.team}, count=count, what=what)
        teams, _ = _connection(answer.data, "teams", self.name, what)
        if not teams:
            raise FatalSourceError(
                self.name, f"no Linear team has the key {self.team!r}",
                hint="use the key that prefixes the team's issues (ENG for ENG-123); for a "
                     "private team the key's user must be a member")
        self._team_checked = True

    def issue_filter(self, since: datetime | None) -> dict[str, object] | None:
        """The ``IssueFilter`` of a window: ``updatedAt >= since`` and the source's team."""
        found: dict[str, object] = {}
        if since is not None:
            found["updatedAt"] = {"gte": iso_seconds(since)}
        if self.team is not None:
            found["team"] = {"key": {"eq": self.team}}
        return found or None

    def _listing(self, since: datetime | None, *, keys_only: bool = False,
                 spent: int = 0) -> Iterator[Listing]:
        """Every page of issues in the window, following ``endCursor`` to the end."""
        what = f"listing the issues of {self.team or 'the workspace'}"
        variables: dict[str, object] = {"filter": self.issue_filter(since), "after": None}
        if keys_only:
            document, variables["first"] = KEYS_QUERY, KEYS_PAGE
        else:
            document, variables["first"], variables["nested"] = (
                ISSUES_QUERY, self.page_size, self.nested)
        paginator = TokenPaginator(self.name)
        while True:
            count = RequestCount(spent)
            spent = 0
            answer = self.api.query(document, variables, count=count, what=what)
            nodes, info = _connection(answer.data, "issues", self.name, what)
            problems: dict[int, list[str]] = {}
            for path, message in answer.problems:
                if len(path) > 2 and path[:2] == ("issues", "nodes") and isinstance(path[2], int):
                    problems.setdefault(path[2], []).append(
                        "graphql_error:" + (".".join(str(p) for p in path[3:]) or "issue"))
                log.warning("source '%s': Linear reported %r at %s", self.name, message,
                            ".".join(str(p) for p in path))
            yield nodes, problems, count.value
            paginator.advance(_next(info, self.name, what))
            if paginator.finished or paginator.token is None:
                return
            variables["after"] = paginator.token

    def _complete(self, issue: LinearIssue, count: RequestCount) -> LinearIssue:
        """Follow the issue's history and comments past their first page."""
        for name, into in (("history", issue.history), ("comments", issue.comments)):
            if not isinstance(issue.node.get(name), dict):
                issue.problems.append(f"missing_{name}")
                continue
            what = f"reading the {name} of {issue.key}"
            nodes, info = _connection(issue.node, name, self.name, what)
            into.extend(nodes)
            paginator = TokenPaginator(self.name)
            paginator.advance(_next(info, self.name, what))
            while not paginator.finished and paginator.token is not None:
                answer = self.api.query(
                    NESTED_QUERIES[name],
                    {"id": issue.node.get("id") or issue.key, "first": self.nested,
                     "after": paginator.token},
                    count=count, what=what)
                more, info = _connection(answer.data.get("issue"), name, self.name, what)
                into.extend(more)
                paginator.advance(_next(info, self.name, what))
        return issue

    def _project_updates(self) -> Page:
        """The latest ``nested_page_size`` updates of every project (of the source's team,
        when it has one): each update's ``health`` is a declaration of the project. Read
        whole on every sync (projects are few); the store keeps each update once."""
        what = "listing the project updates"
        count = RequestCount()
        found: list[Declaration] = []
        accounts: dict[str, Account] = {}
        variables: dict[str, object] = {"first": PROJECTS_PAGE, "after": None,
                                        "nested": self.nested}
        paginator = TokenPaginator(self.name)
        while True:
            answer = self.api.query(PROJECT_UPDATES_QUERY, variables, count=count, what=what)
            projects, info = _connection(answer.data, "projects", self.name, what)
            for project in projects:
                teams = project.get("teams")
                keys = {str(t.get("key")) for t in (teams or {}).get("nodes") or []
                        if isinstance(t, dict)} if isinstance(teams, dict) else set()
                if self.team is not None and self.team not in keys:
                    continue
                declared, authors = project_declarations(self.name, project)
                found += declared
                accounts.update((a.account_id, a) for a in authors)
            paginator.advance(_next(info, self.name, what))
            if paginator.finished or paginator.token is None:
                break
            variables["after"] = paginator.token
        return Page(source=self.name, declarations=tuple(found),
                    accounts=tuple(accounts[k] for k in sorted(accounts)),
                    requests=count.value)

    # -- pages ---------------------------------------------------------------------------

    def _page(self, issues: list[LinearIssue], until: datetime, requests: int) -> Page:
        fetched_at = datetime.fromtimestamp(self.clock(), UTC)
        found = [normalize_issue(self.name, issue) for issue in issues]
        raw = [RawPayload(source=self.name, key=records.item.key, endpoint=self.api.url,
                          fetched_at=fetched_at, payload=issue.payload())
               for issue, records in zip(issues, found, strict=True)]
        return page_of(self.name, found, raw=raw, requests=requests, until=until)
