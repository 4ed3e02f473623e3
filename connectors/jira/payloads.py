"""Jira payloads (Cloud v3 and Data Center v2) to normalized records.

Pure functions over the raw JSON dicts: no I/O, so every mapping rule is a unit test and a
mapping bug can be fixed by re-normalizing stored payloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from stratmap.connectors.base import IssueRecords
from stratmap.models.records import (
    Account,
    AssigneeChange,
    Comment,
    StatusCategory,
    StatusChange,
    TrackerDue,
    WorkItem,
)

CATEGORIES: dict[str, StatusCategory] = {
    "new": StatusCategory.TODO,
    "indeterminate": StatusCategory.IN_PROGRESS,
    "done": StatusCategory.DONE,
}
"""Jira's ``statusCategory.key`` to ours. ``undefined`` (No Category) is deliberately absent."""

BASE_FIELDS = (
    "summary",
    "status",
    "issuetype",
    "assignee",
    "reporter",
    "created",
    "updated",
    "resolutiondate",
    "duedate",
    "labels",
    "parent",
    "fixVersions",
    "comment",
    "issuelinks",
)

POINTS_FIELD_NAMES = ("story points", "story point estimate")
MAX_COMMENT = 65_536
"""Characters of a comment body kept in the normalized record (the raw payload keeps all)."""
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
"""An issue with neither ``created`` nor ``updated`` is stored (flagged) as this old."""
EPIC_LINK_SCHEMA = "com.pyxis.greenhopper.jira:gh-epic-link"


@dataclass(frozen=True, slots=True)
class Site:
    """What a sync learns about a Jira site before reading issues."""

    cloud: bool
    base_url: str
    points_field: str | None = None
    epic_link_field: str | None = None
    status_categories: Mapping[str, str] = field(default_factory=dict)
    """Status id to ``statusCategory.key``, from ``/rest/api/2/status``."""
    declared_field: str | None = None
    """The source's ``declared_status_field``, by id (``connectors.jira.declarations``)."""

    def search_fields(self) -> list[str]:
        extra = [f for f in (self.points_field, self.epic_link_field, self.declared_field) if f]
        return [*BASE_FIELDS, *extra]


def discover_fields(fields: Iterable[Mapping[str, Any]]) -> tuple[str | None, str | None]:
    """The story points and Epic Link field ids of a site, from ``/rest/api/N/field``."""
    points: str | None = None
    epic_link: str | None = None
    for entry in fields:
        name = str(entry.get("name") or "").strip().lower()
        schema = entry.get("schema") or {}
        if points is None and name in POINTS_FIELD_NAMES:
            points = str(entry["id"])
        if epic_link is None and (schema.get("custom") == EPIC_LINK_SCHEMA or name == "epic link"):
            epic_link = str(entry["id"])
    return points, epic_link


def status_categories(statuses: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Status id to category key, from ``/rest/api/2/status``."""
    table: dict[str, str] = {}
    for status in statuses:
        key = (status.get("statusCategory") or {}).get("key")
        if status.get("id") is not None and key:
            table[str(status["id"])] = str(key)
    return table


def parse_time(value: object) -> datetime | None:
    """A Jira timestamp (``2024-05-01T10:02:03.000+0200`` or epoch ms) as aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a Jira timestamp: {value!r}")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_day(value: object) -> datetime | None:
    """A Jira date (``duedate``: ``2024-05-01``) as midnight UTC."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.combine(date.fromisoformat(value[:10]), time(0, 0), tzinfo=UTC)


def account_id(user: object, *, cloud: bool) -> str | None:
    """Cloud: the ``accountId``. Data Center: the username (``name``), else the user ``key``."""
    if not isinstance(user, Mapping):
        return None
    keys = ("accountId",) if cloud else ("name", "key")
    for key in keys:
        if user.get(key):
            return str(user[key])
    return None


def account(source: str, user: object, *, cloud: bool) -> Account | None:
    ident = account_id(user, cloud=cloud)
    if ident is None or not isinstance(user, Mapping):
        return None
    return Account(
        source=source,
        account_id=ident,
        display_name=user.get("displayName") or None,
        email=user.get("emailAddress") or None,
    )


_CONTAINERS = frozenset(
    {
        "doc",
        "bulletList",
        "orderedList",
        "blockquote",
        "panel",
        "expand",
        "nestedExpand",
        "table",
        "tableRow",
        "tableCell",
        "tableHeader",
        "layoutSection",
        "layoutColumn",
    }
)
_SKIPPED = frozenset({"rule", "mediaSingle", "mediaGroup", "media"})


def adf_text(node: object) -> str:
    """Atlassian Document Format flattened to plain text: blocks on their own lines."""
    lines: list[str] = []
    _adf_blocks(node, lines)
    return "\n".join(line.rstrip() for line in lines).strip()


def _adf_inline(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    if kind == "text":
        return str(node.get("text", ""))
    attrs = node.get("attrs") or {}
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        return str(attrs.get("text") or "@" + str(attrs.get("id", "")))
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url") or "")
    if kind in ("status", "placeholder"):
        return str(attrs.get("text") or "")
    if kind == "date":
        return str(attrs.get("timestamp") or "")
    return "".join(_adf_inline(c) for c in node.get("content") or [] if _is_mapping(c))


def _is_mapping(node: object) -> bool:
    return type(node) is dict or isinstance(node, Mapping)  # the ABC check is slow


def _adf_blocks(node: object, lines: list[str]) -> None:
    if isinstance(node, list):
        for child in node:
            _adf_blocks(child, lines)
        return
    if not _is_mapping(node):
        return
    assert isinstance(node, Mapping)
    kind = node.get("type")
    if kind in _CONTAINERS:
        _adf_blocks(node.get("content") or [], lines)
    elif kind == "listItem":
        start = len(lines)
        _adf_blocks(node.get("content") or [], lines)
        if len(lines) > start:
            lines[start] = "- " + lines[start]
    elif kind not in _SKIPPED:
        text = _adf_inline(node)
        if text:
            lines.extend(text.split("\n"))


def body_text(body: object) -> str:
    """A comment or description body: ADF on v3, wiki text on v2."""
    if body is None:
        return ""
    if isinstance(body, Mapping):
        return adf_text(body)
    return str(body)


def _category(key: object, flags: list[str], what: str) -> StatusCategory:
    mapped = CATEGORIES.get(str(key)) if key is not None else None
    if mapped is None:
        flags.append(f"unknown_status_category:{what}={key}")
        return StatusCategory.IN_PROGRESS
    return mapped


def _points(value: object, flags: list[str]) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        flags.append("unreadable_story_points")
        return None


def _key_of(value: object) -> str | None:
    if isinstance(value, Mapping):
        return str(value["key"]) if value.get("key") else None
    if isinstance(value, str) and value:
        return value
    return None


def _moment(fields: Mapping[str, Any], name: str, flags: list[str]) -> datetime | None:
    """A timestamp field, or None with a flag when it is missing or unreadable."""
    try:
        moment = parse_time(fields.get(name))
    except (TypeError, ValueError):
        flags.append(f"unreadable_{name}")
        return None
    if moment is None:
        flags.append(f"missing_{name}")
    return moment


def history_order(history: Mapping[str, Any]) -> tuple[datetime, int, str]:
    """Histories sort by time, then numerically by id (ids grow with time within a site)."""
    ident = str(history.get("id", ""))
    when = parse_time(history.get("created")) or datetime.min.replace(tzinfo=UTC)
    return when, int(ident) if ident.isdigit() else 0, ident


USER_KEY = "JIRAUSER"
"""Data Center user keys of accounts made since Jira 8 (``JIRAUSER10100``); older ones are
the username itself."""


def user_keys(histories: Iterable[Mapping[str, Any]]) -> set[str]:
    """The Data Center user keys named by assignee changes (``from``/``to``)."""
    found: set[str] = set()
    for history in histories:
        for entry in history.get("items") or []:
            if entry.get("field") == "assignee" or entry.get("fieldId") == "assignee":
                for side in ("from", "to"):
                    value = entry.get(side)
                    if isinstance(value, str) and value.startswith(USER_KEY):
                        found.add(value)
    return found


def shown_users(issue: Mapping[str, Any], histories: Iterable[Mapping[str, Any]],
                comments: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Data Center: user key -> username of every user the issue itself shows (assignee,
    reporter, the authors of its history and comments)."""
    fields: Mapping[str, Any] = issue.get("fields") or {}
    found: dict[str, str] = {}
    for user in (fields.get("assignee"), fields.get("reporter"),
                 *(h.get("author") for h in histories), *(c.get("author") for c in comments)):
        if isinstance(user, Mapping) and user.get("key") and user.get("name"):
            found.setdefault(str(user["key"]), str(user["name"]))
    return found


BLOCKED_BY = "blocked_by"
"""The item field holding the keys of the issues this one "is blocked by" (comma-separated)."""


def _links(links: object) -> dict[str, str]:
    """The issues this one "is blocked by", from ``issuelinks``: a link shows its
    ``inwardIssue`` with the type's ``inward`` text (Jira's own Blocks type: "is blocked by"),
    on Cloud and Data Center alike."""
    if not isinstance(links, list):
        return {}
    keys = []
    for link in links:
        if not isinstance(link, Mapping):
            continue
        kind, inward = link.get("type") or {}, link.get("inwardIssue")
        if (isinstance(kind, Mapping) and isinstance(inward, Mapping) and inward.get("key")
                and (str(kind.get("inward") or "").strip().lower() == "is blocked by"
                     or kind.get("name") == "Blocks")):
            keys.append(str(inward["key"]))
    return {BLOCKED_BY: ",".join(sorted(set(keys)))} if keys else {}


def _due_day(value: object, text: object) -> str | None:
    """A ``duedate`` changelog side as an ISO day: ``from``/``to`` hold ``2027-01-15``,
    ``fromString``/``toString`` ``2027-01-15 00:00:00.0`` (Cloud and Data Center alike)."""
    for candidate in (value, text):
        if isinstance(candidate, str) and len(candidate) >= 10:
            try:
                return date.fromisoformat(candidate[:10]).isoformat()
            except ValueError:
                continue
    return None


def _due_changes(source: str, key: str, at: datetime,
                 entries: Iterable[Mapping[str, Any]]) -> list[TrackerDue]:
    """The ``duedate`` items of one changelog history, as changes of the issue's due date
    (the field is ``duedate`` on both deployments; Cloud adds ``fieldId``)."""
    return [TrackerDue(source=source, container=key, at=at, origin="history",
                       from_due=_due_day(entry.get("from"), entry.get("fromString")),
                       to_due=_due_day(entry.get("to"), entry.get("toString")))
            for entry in entries
            if entry.get("field") == "duedate" or entry.get("fieldId") == "duedate"]


def normalize_issue(
    source: str,
    issue: Mapping[str, Any],
    site: Site,
    *,
    histories: Iterable[Mapping[str, Any]],
    comments: Iterable[Mapping[str, Any]],
    flags: Iterable[str] = (),
    user_names: Mapping[str, str] | None = None,
) -> IssueRecords:
    """One issue, with its complete histories and comments, as records."""
    key = str(issue["key"])
    fields: Mapping[str, Any] = issue.get("fields") or {}
    found = list(flags)
    accounts: dict[str, Account] = {}

    def remember(user: object) -> str | None:
        ident = account_id(user, cloud=site.cloud)
        if ident is None or not isinstance(user, Mapping):
            if user is not None:  # a user without an id: deleted, anonymized, or drifted
                found.append("unreadable_user")
            return None
        known = accounts.get(ident)
        # The same people appear on every history and comment: build each record once.
        if known is None or (not known.email and user.get("emailAddress")):
            accounts[ident] = Account(
                source=source,
                account_id=ident,
                display_name=user.get("displayName") or None,
                email=user.get("emailAddress") or None,
            )
        return ident

    status = fields.get("status")
    if not isinstance(status, Mapping) or not status:
        found.append("missing_status")
        status = {}
    category = _category((status.get("statusCategory") or {}).get("key"), found, "status")
    histories, comments = list(histories), list(comments)  # each is read twice below
    changes: list[StatusChange] = []
    assignments: list[AssigneeChange] = []
    dues: list[TrackerDue] = []
    # Data Center changelogs name users by their key (JIRAUSER10100); accounts are
    # usernames: map the keys of every user this issue shows (and ``user_names``, the
    # connector's lookups of the others).
    names_by_key: dict[str, str] = {}
    if not site.cloud:
        names_by_key = {**(user_names or {}), **shown_users(issue, histories, comments)}

    def held(entry: Mapping[str, Any], side: str) -> str | None:
        """An assignee change's account on one side (``from``/``to``), as ids are stored."""
        if site.cloud:
            value = entry.get(f"tmp{side.title()}AccountId") or entry.get(side)
            return str(value) if value else None
        value = entry.get(side)
        if not value:
            return None
        if str(value) in names_by_key:
            return names_by_key[str(value)]
        if str(value).startswith(USER_KEY):
            found.append("unresolved_user_key")
        return str(value)

    # Each history's time is parsed once, for the order and for the change.
    for (changed_at, _, _), history in sorted(
        ((history_order(h), h) for h in histories), key=lambda pair: pair[0]
    ):
        if history.get("created") in (None, ""):
            continue
        entries = history.get("items") or []
        status_items = [i for i in entries if i.get("field") == "status"]
        assignee_items = [i for i in entries
                          if i.get("field") == "assignee" or i.get("fieldId") == "assignee"]
        dues.extend(_due_changes(source, key, changed_at, entries))
        if not status_items and not assignee_items:
            continue
        author = remember(history.get("author"))
        for index, entry in enumerate(assignee_items):
            change_id = str(history.get("id")) + (f":{index}" if index else "")
            assignments.append(AssigneeChange(
                source=source, item_key=key, change_id=change_id, at=changed_at, author=author,
                from_account=held(entry, "from"), to_account=held(entry, "to")))
        for index, entry in enumerate(status_items):
            change_id = str(history.get("id"))
            if index:
                change_id += f":{index}"
            from_id, to_id = entry.get("from"), entry.get("to")
            changes.append(
                StatusChange(
                    source=source,
                    item_key=key,
                    change_id=change_id,
                    at=changed_at,
                    author=author,
                    from_status=entry.get("fromString"),
                    to_status=str(entry.get("toString") or ""),
                    from_category=None
                    if from_id is None
                    else _category(site.status_categories.get(str(from_id)), found, "from"),
                    to_category=_category(site.status_categories.get(str(to_id)), found, "to"),
                )
            )

    notes: list[Comment] = []
    for entry in comments:
        at = parse_time(entry.get("created"))
        if at is None:
            continue
        body = body_text(entry.get("body"))
        if len(body) > MAX_COMMENT:
            found.append("comment_truncated")
            body = body[:MAX_COMMENT]
        notes.append(
            Comment(
                source=source,
                item_key=key,
                comment_id=str(entry.get("id")),
                at=at,
                author=remember(entry.get("author")),
                body=body,
            )
        )
    notes.sort(key=lambda c: (c.at, c.comment_id))

    parent = _key_of(fields.get("parent"))
    if parent is None and site.epic_link_field:
        parent = _key_of(fields.get(site.epic_link_field))
    versions = [v for v in fields.get("fixVersions") or [] if isinstance(v, Mapping)]
    created = _moment(fields, "created", found)
    updated = _moment(fields, "updated", found)
    # Kept rather than dropped: without ``updated`` an issue counts as no newer than its
    # creation, so it can never move the watermark past anything unread.
    created = created or updated or UNKNOWN_TIME
    updated = updated or created
    item = WorkItem(
        source=source,
        key=key,
        title=str(fields.get("summary") or ""),
        item_type=(fields.get("issuetype") or {}).get("name"),
        status=str(status.get("name") or ""),
        status_category=category,
        assignee=remember(fields.get("assignee")),
        reporter=remember(fields.get("reporter")),
        created=created,
        updated=updated,
        resolved=parse_time(fields.get("resolutiondate")),
        due=parse_day(fields.get("duedate")),
        parent=parent,
        labels=tuple(str(label) for label in fields.get("labels") or ()),
        container=str(versions[0]["name"]) if versions and versions[0].get("name") else None,
        points=_points(fields.get(site.points_field), found) if site.points_field else None,
        url=f"{site.base_url}/browse/{key}",
        fields=_links(fields.get("issuelinks")),
        flags=tuple(dict.fromkeys(found)),
    )
    return IssueRecords(item, tuple(changes), tuple(notes), tuple(accounts.values()),
                        tuple(assignments), tuple(dues))
