"""Linear issue nodes (as :mod:`connectors.linear.connector` queries them) to records.

Pure functions over the raw JSON: no I/O, so a mapping bug is fixed by re-normalizing the
stored payloads. Payload drift (a missing field, a null, a state type stratmap does not
know) keeps the issue and adds a flag to it, as the Jira mapping does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any

from stratmap.connectors.base import IssueRecords
from stratmap.connectors.http import parse_moment
from stratmap.models.records import (
    Account,
    AssigneeChange,
    Comment,
    Declaration,
    DeclaredStatus,
    StatusCategory,
    StatusChange,
    WorkItem,
)

Row = dict[str, Any]

CATEGORIES: dict[str, StatusCategory] = {
    "triage": StatusCategory.TODO,
    "backlog": StatusCategory.TODO,
    "unstarted": StatusCategory.TODO,
    "started": StatusCategory.IN_PROGRESS,
    "completed": StatusCategory.DONE,
    "canceled": StatusCategory.DONE,
    "duplicate": StatusCategory.DONE,
}
"""``WorkflowState.type`` to ours: the seven types Linear's schema lists. Canceled and
duplicate count as done, as a GitHub issue closed as not planned does: nobody works on it."""

LABELS_PER_ISSUE = 50
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""An issue with neither ``createdAt`` nor ``updatedAt`` is stored (flagged) as this old."""


@dataclass(slots=True)
class LinearIssue:
    """An issue node, completed with every history entry and comment."""

    node: Row
    history: list[Row] = field(default_factory=list)
    comments: list[Row] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Flags known before normalizing: GraphQL errors on the node's fields."""

    @property
    def key(self) -> str:
        return str(self.node.get("identifier") or self.node.get("id") or "unknown")

    def payload(self) -> Row:
        """The node as stored raw: with the complete history and comments inside."""
        return {**self.node, "history": {"nodes": self.history},
                "comments": {"nodes": self.comments}}


def moment(value: object) -> datetime | None:
    """A Linear DateTime (``2026-09-01T09:00:00.000Z``), or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_moment(value)
    except ValueError:
        return None


def category(kind: object, flags: list[str]) -> StatusCategory:
    mapped = CATEGORIES.get(str(kind)) if kind is not None else None
    if mapped is None:
        flags.append(f"unknown_state_type:{kind}")
        return StatusCategory.IN_PROGRESS
    return mapped


def _time(node: Mapping[str, Any], name: str, flags: list[str]) -> datetime | None:
    value = node.get(name)
    found = moment(value)
    if found is None:
        flags.append(f"unreadable_{name}" if value else f"missing_{name}")
    return found


def _day(value: object, flags: list[str]) -> datetime | None:
    """A TimelessDate (``2026-10-01``) as midnight UTC."""
    if not value:
        return None
    try:
        return datetime.combine(date.fromisoformat(str(value)[:10]), clock_time(0, 0),
                                tzinfo=UTC)
    except ValueError:
        flags.append("unreadable_dueDate")
        return None


def _points(value: object, flags: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    flags.append("unreadable_estimate")
    return None


def _names(connection: object) -> tuple[str, ...]:
    nodes: Iterable[object] = (connection.get("nodes") or []) if isinstance(
        connection, dict) else []
    return tuple(str(n["name"]) for n in nodes if isinstance(n, dict) and n.get("name"))


def _named(value: object, key: str) -> str | None:
    return str(value[key]) if isinstance(value, dict) and value.get(key) else None


def normalize_issue(source: str, issue: LinearIssue) -> IssueRecords:
    """One completed issue as records."""
    node = issue.node
    flags = list(issue.problems)
    accounts: dict[str, Account] = {}

    def person(user: object) -> str | None:
        if user is None:
            return None
        if not isinstance(user, dict) or not user.get("id"):
            flags.append("unreadable_user")
            return None
        ident = str(user["id"])
        known = accounts.get(ident)
        if known is None or (not known.email and user.get("email")):
            accounts[ident] = Account(
                source=source, account_id=ident,
                display_name=str(user.get("displayName") or user.get("name") or "") or None,
                email=str(user["email"]) if user.get("email") else None)
        return ident

    key = issue.key
    if not node.get("identifier"):
        flags.append("missing_identifier")
    state = node.get("state")
    if isinstance(state, dict):
        status_category = category(state.get("type"), flags)
    else:
        flags.append("missing_state")
        state, status_category = {}, StatusCategory.IN_PROGRESS
    created = _time(node, "createdAt", flags)
    updated = _time(node, "updatedAt", flags)
    # Kept rather than dropped: without ``updatedAt`` an issue counts as no newer than its
    # creation, so it can never move the watermark past anything unread.
    created = created or updated or UNKNOWN_TIME
    updated = updated or created
    resolved = None
    if status_category is StatusCategory.DONE:
        resolved = moment(node.get("completedAt")) or moment(node.get("canceledAt"))
    labels = node.get("labels")
    if isinstance(labels, dict) and (labels.get("pageInfo") or {}).get("hasNextPage"):
        flags.append(f"more_than_{LABELS_PER_ISSUE}_labels")

    changes: list[StatusChange] = []
    entries = [e for e in issue.history if isinstance(e, dict) and e.get("toState") is not None]
    for entry in sorted(entries, key=lambda e: (str(e.get("createdAt")), str(e.get("id")))):
        at = moment(entry.get("createdAt"))
        to, before = entry.get("toState"), entry.get("fromState")
        if at is None or not isinstance(to, dict):
            flags.append("unreadable_history")
            continue
        changes.append(StatusChange(
            source=source, item_key=key, change_id=str(entry.get("id")), at=at,
            author=person(entry.get("actor")),
            from_status=str(before.get("name") or "") if isinstance(before, dict) else None,
            to_status=str(to.get("name") or ""),
            from_category=category(before.get("type"), flags)
            if isinstance(before, dict) else None,
            to_category=category(to.get("type"), flags),
        ))
    # Assignments: the history entries that name an assignee on either side.
    assignments: list[AssigneeChange] = []
    moves = [e for e in issue.history if isinstance(e, dict)
             and (e.get("fromAssignee") is not None or e.get("toAssignee") is not None)]
    for entry in sorted(moves, key=lambda e: (str(e.get("createdAt")), str(e.get("id")))):
        at = moment(entry.get("createdAt"))
        if at is None:
            flags.append("unreadable_history")
            continue
        assignments.append(AssigneeChange(
            source=source, item_key=key, change_id=str(entry.get("id")), at=at,
            author=person(entry.get("actor")), from_account=person(entry.get("fromAssignee")),
            to_account=person(entry.get("toAssignee"))))
    notes: list[Comment] = []
    for entry in issue.comments:
        at = moment(entry.get("createdAt")) if isinstance(entry, dict) else None
        if at is None:
            flags.append("unreadable_comment")
            continue
        notes.append(Comment(source=source, item_key=key, comment_id=str(entry.get("id")),
                             at=at, author=person(entry.get("user")),
                             body=str(entry.get("body") or "")))
    notes.sort(key=lambda c: (c.at, c.comment_id))

    fields: dict[str, str] = {}
    team = _named(node.get("team"), "key")
    if team:
        fields["team"] = team
    if state.get("type"):
        fields["state_type"] = str(state["type"])
    item = WorkItem(
        source=source, key=key, title=str(node.get("title") or ""),
        status=str(state.get("name") or ""), status_category=status_category,
        assignee=person(node.get("assignee")), reporter=person(node.get("creator")),
        created=created, updated=updated, resolved=resolved,
        due=_day(node.get("dueDate"), flags),
        parent=_named(node.get("parent"), "identifier"),
        labels=_names(labels),
        container=_named(node.get("project"), "name"),
        points=_points(node.get("estimate"), flags),
        url=str(node["url"]) if node.get("url") else None,
        fields=fields, flags=tuple(dict.fromkeys(flags)),
    )
    return IssueRecords(item, tuple(changes), tuple(notes), tuple(accounts.values()),
                        tuple(assignments))


HEALTH: dict[str, DeclaredStatus] = {
    "onTrack": DeclaredStatus.ON_TRACK,
    "atRisk": DeclaredStatus.AT_RISK,
    "offTrack": DeclaredStatus.AT_RISK,
}
"""``ProjectUpdateHealthType`` to what it declares; an update without a health declares
nothing."""
QUOTED = 300
"""Characters of an update's body kept with its declaration."""


def project_declarations(source: str, project: Row) -> tuple[list[Declaration], list[Account]]:
    """A project's updates (``projectUpdates { nodes { id health body createdAt user } }``) as
    declarations of the project (its ``name``, as ``project:`` selectors name it), by their
    authors; and those authors' accounts."""
    name = project.get("name")
    updates = project.get("projectUpdates")
    nodes = updates.get("nodes") if isinstance(updates, dict) else None
    if not name or not isinstance(nodes, list):
        return [], []
    found: list[Declaration] = []
    accounts: dict[str, Account] = {}
    for update in nodes:
        if not isinstance(update, dict):
            continue
        health, at = HEALTH.get(str(update.get("health"))), moment(update.get("createdAt"))
        if health is None or at is None or not update.get("id"):
            continue
        user = update.get("user")
        author = str(user["id"]) if isinstance(user, dict) and user.get("id") else None
        if author is not None and isinstance(user, dict):
            accounts[author] = Account(
                source=source, account_id=author,
                display_name=str(user.get("displayName") or user.get("name") or "") or None,
                email=str(user["email"]) if user.get("email") else None)
        body = str(update.get("body") or "").strip()
        found.append(Declaration(
            source=source, subject=str(name), declaration_id=str(update["id"]), at=at,
            author=author, status=health,
            said=f"{update.get('health')}: {body}"[:QUOTED] if body else str(update["health"]),
            where="project update"))
    return found, list(accounts.values())
