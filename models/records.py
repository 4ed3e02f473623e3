"""Normalized tracker records: what every connector produces and the store keeps.

Connectors turn each tracker's payloads into these frozen records; the store writes them;
the judgement engine reads them. All datetimes are timezone-aware UTC.

An item's key is the tracker's own human key (``WEB-9`` in Jira, ``site#42`` for a GitHub
issue in the source named ``site``); ``(source, key)`` is the natural key everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator


class StatusCategory(StrEnum):
    """Tracker-neutral status category (Jira's statusCategory keys, mapped)."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    DONE = "done"


def ensure_utc(value: datetime) -> datetime:
    """Refuse naive datetimes and convert aware ones to UTC."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC)


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_R = TypeVar("_R", bound=BaseModel)
_set_attribute = object.__setattr__


def stored(cls: type[_R], values: dict[str, Any]) -> _R:
    """A record the store wrote, rebuilt without validating it again.

    Only for a store's own rows, which were validated on their way in and are read back
    already in the record's types (aware UTC moments, enum members, tuples), and for values
    the engine made in those types (the history's weekly reports): ``values`` holds every
    field, in the model's order. The result equals the validated record (the same fields, the same
    fields set); pydantic's checks per row were most of a no-change run's reading.
    """
    record = cls.__new__(cls)
    _set_attribute(record, "__dict__", values)
    _set_attribute(record, "__pydantic_fields_set__", _every_field(cls))
    _set_attribute(record, "__pydantic_extra__", None)
    _set_attribute(record, "__pydantic_private__", None)
    return record


@functools.cache
def _every_field(cls: type[BaseModel]) -> set[str]:
    """The one "fields set" every stored record of ``cls`` shares: all its fields.

    A set per record was most of the evidence's memory (a 19-name set is 2 KB: 480 MB of
    100,000 issues' records). Sharing is safe: the records are frozen, and pydantic copies
    the set before adding to it (``model_copy``), so nothing changes it.
    """
    return set(cls.model_fields)


class StatusChange(_Record):
    """One transition of an item's status, by whom and when."""

    source: str
    item_key: str
    change_id: str
    at: datetime
    author: str | None = None
    from_status: str | None = None
    to_status: str
    from_category: StatusCategory | None = None
    to_category: StatusCategory

    _utc = field_validator("at")(ensure_utc)


class AssigneeChange(_Record):
    """One change of an item's assignee, by whom and when.

    ``from_account`` and ``to_account`` are account ids, as an item's ``assignee`` is (None:
    unassigned). The engine replays them to know who held an item at a past ``as_of``; an
    item without any is judged with its current assignee.
    """

    source: str
    item_key: str
    change_id: str
    at: datetime
    author: str | None = None
    from_account: str | None = None
    to_account: str | None = None

    _utc = field_validator("at")(ensure_utc)


class Comment(_Record):
    """A comment on an item: the evidence for senior feedback and for activity."""

    source: str
    item_key: str
    comment_id: str
    at: datetime
    author: str | None = None
    body: str = ""

    _utc = field_validator("at")(ensure_utc)


class Account(_Record):
    """A tracker account (Jira accountId or username, GitHub login, ...)."""

    source: str
    account_id: str
    display_name: str | None = None
    email: str | None = None


class WorkItem(_Record):
    """A tracker item, normalized.

    ``container`` is the tracker's grouping that plans select by name: a GitHub or GitLab
    milestone title, a Redmine version, a Linear project. ``parent`` is the epic (or parent)
    key. ``fields`` keeps extra columns (CSV exports) that selectors may match on.
    """

    source: str
    key: str
    title: str = ""
    item_type: str | None = None
    status: str
    status_category: StatusCategory
    assignee: str | None = None
    reporter: str | None = None
    created: datetime
    updated: datetime
    resolved: datetime | None = None
    due: datetime | None = None
    parent: str | None = None
    labels: tuple[str, ...] = ()
    container: str | None = None
    points: float | None = None
    url: str | None = None
    fields: dict[str, str] = {}
    flags: tuple[str, ...] = ()
    """Problems met while normalizing (payload drift): the item is kept and flagged."""

    @field_validator("created", "updated")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return ensure_utc(value)

    @field_validator("resolved", "due")
    @classmethod
    def _utc_opt(cls, value: datetime | None) -> datetime | None:
        return None if value is None else ensure_utc(value)


class RawPayload(_Record):
    """The tracker's payload for an item, with where and when it came from.

    Kept so a mapping bug can be fixed by re-normalizing instead of re-fetching.
    """

    source: str
    key: str
    endpoint: str
    fetched_at: datetime
    payload: dict[str, Any]

    _utc = field_validator("fetched_at")(ensure_utc)


class Page(_Record):
    """One page of a sync: everything learned about a batch of items.

    ``cursor`` is the highest ``updated`` seen on the page: the candidate watermark.
    ``requests`` counts the HTTP requests (every attempt) the page cost.
    """

    source: str
    items: tuple[WorkItem, ...] = ()
    changes: tuple[StatusChange, ...] = ()
    comments: tuple[Comment, ...] = ()
    accounts: tuple[Account, ...] = ()
    raw: tuple[RawPayload, ...] = ()
    assignments: tuple[AssigneeChange, ...] = ()
    dues: tuple[TrackerDue, ...] = ()
    """Containers' due dates: changes from history, or the dates seen."""
    declarations: tuple[Declaration, ...] = ()
    cursor: datetime | None = None
    requests: int = 0

    @property
    def has_records(self) -> bool:
        """Whether writing the page always changes what the plan is judged from: it carries
        items, their history, accounts or declarations. Its containers' due dates are
        written only where they changed (``Store.write_page`` says whether any was); its
        cursor and raw payloads are never judged from."""
        return bool(self.items or self.changes or self.comments or self.accounts
                    or self.assignments or self.declarations)


class MeasureValue(_Record):
    """One value of a plan's measure at a moment (``measure`` is its plan reference,
    goal.measure or goal.milestone.measure)."""

    measure: str
    at: datetime
    value: float
class DueChange(_Record):
    """A change of a milestone's due date: when it was seen, from what, to what, and where
    (``plan`` for the plan file; ``source:container`` for a tracker's epic or milestone,
    ``push:source:container`` for ``stratmap push`` writing the plan's date there). ``from_due`` None is the first
    due date recorded, where the log starts. Dates are ISO text, as the plan writes them."""

    plan: str
    milestone: str
    at: datetime
    where: str
    from_due: str | None = None
    to_due: str | None = None
    counted: bool = True
    """False for ``stratmap push`` writing the plan's date to a tracker: logged, but the
    plan's change it carries is counted where the plan changed, not again."""

    _utc = field_validator("at")(ensure_utc)


class TrackerDue(_Record):
    """A tracker container's due date (a Jira epic's ``duedate``, a GitHub or GitLab
    milestone's due date), keyed by ``(source, container)``: the item key for Jira, the
    milestone's title for GitHub and GitLab. Dates are ISO days.

    ``origin`` says how it is known: ``history`` is a change the tracker's own history
    gives (Jira's changelog: ``at`` when it was made, ``from_due`` and ``to_due``); ``seen``
    is the due date a sync saw (GitHub and GitLab keep no history: the store records a
    change when it differs from the last one it knows, ``from_due`` is filled there);
    ``push`` is ``stratmap push`` writing the plan's due date there.
    """

    source: str
    container: str
    at: datetime
    origin: Literal["history", "seen", "push"] = "history"
    from_due: str | None = None
    to_due: str | None = None

    _utc = field_validator("at")(ensure_utc)


class DeclaredStatus(StrEnum):
    """What someone declared of a milestone in a tracker: on track, at risk, or nothing
    (a field cleared or set to a value that declares nothing, withdrawing the claim)."""

    ON_TRACK = "on_track"
    AT_RISK = "at_risk"
    UNDECLARED = "undeclared"


class Declaration(_Record):
    """A status declared in a tracker, by whom and when: a Jira epic's status or health
    field set (``subject`` is the epic's key, one row per change in its changelog), or a
    Linear project update's ``health`` (``subject`` is the project's name). ``said`` is the
    tracker's words (the field's value; the update's health and the start of its body),
    ``where`` the field or ``project update``. ``author`` is an account id, as elsewhere."""

    source: str
    subject: str
    declaration_id: str
    at: datetime
    author: str | None = None
    status: DeclaredStatus
    said: str = ""
    where: str = ""

    _utc = field_validator("at")(ensure_utc)


# -- the evidence, as the engine reads it ------------------------------------------------
#
# The store's items, status changes, comments and assignee changes are the bulk of what a
# run holds in memory: 100,000 issues bring some 460,000 of them. As pydantic records each
# costs an object and a dict of its fields (a WorkItem 540 bytes before its values, a
# Comment 350); as the named tuples below, 90-210 bytes. They carry the same attribute
# names and values as the records, so the engine reads either alike; the store builds
# them straight from its rows, already validated on the way in.

NO_FIELDS: Mapping[str, str] = MappingProxyType({})
"""The extra fields of an item that has none: one shared, read-only mapping."""


class EvidenceItem(NamedTuple):
    """A :class:`WorkItem` as the evidence holds it (the same fields, in the same order)."""

    source: str
    key: str
    title: str
    item_type: str | None
    status: str
    status_category: StatusCategory
    assignee: str | None
    reporter: str | None
    created: datetime
    updated: datetime
    resolved: datetime | None
    due: datetime | None
    parent: str | None
    labels: tuple[str, ...]
    container: str | None
    points: float | None
    url: str | None
    fields: Mapping[str, str]
    flags: tuple[str, ...]


class EvidenceChange(NamedTuple):
    """A :class:`StatusChange` as the evidence holds it."""

    source: str
    item_key: str
    change_id: str
    at: datetime
    author: str | None
    from_status: str | None
    to_status: str
    from_category: StatusCategory | None
    to_category: StatusCategory


class EvidenceComment(NamedTuple):
    """A :class:`Comment` as the evidence holds it."""

    source: str
    item_key: str
    comment_id: str | None
    at: datetime
    author: str | None
    body: str | None
    """``body`` and ``comment_id`` are None when the evidence was read without them
    (``Store.evidence``'s ``full_since``)."""


class EvidenceAssignment(NamedTuple):
    """An :class:`AssigneeChange` as the evidence holds it."""

    source: str
    item_key: str
    change_id: str
    at: datetime
    author: str | None
    from_account: str | None
    to_account: str | None


_COMPACT: dict[type[BaseModel], Any] = {
    WorkItem: EvidenceItem, StatusChange: EvidenceChange, Comment: EvidenceComment,
    AssigneeChange: EvidenceAssignment,
}


def _compacted(values: Any) -> Any:
    """Records given to :class:`Evidence` (tests, benchmarks) as the evidence's tuples;
    anything else is left to pydantic's validation."""
    if not isinstance(values, Iterable) or isinstance(values, (str, bytes, Mapping)):
        return values
    out = []
    for value in values:
        compact = _COMPACT.get(type(value))
        if compact is not None:
            value = compact._make(value.__dict__[name] for name in compact._fields)
        out.append(value)
    return tuple(out)


class Evidence(_Record):
    """Everything the engine judges from: all stored records for the plan's sources.

    Items, status changes, comments and assignee changes are kept compact (see
    :class:`EvidenceItem`); records given here are turned into those.
    ``selections`` holds the tracker-resolved selectors (a Jira JQL, a Redmine query):
    ``{(source, Selector.key()): frozenset(item keys)}``.
    """

    items: tuple[EvidenceItem, ...] = ()
    changes: tuple[EvidenceChange, ...] = ()
    comments: tuple[EvidenceComment, ...] = ()
    accounts: tuple[Account, ...] = ()
    selections: dict[tuple[str, str], frozenset[str]] = {}
    assignments: tuple[EvidenceAssignment, ...] = ()
    measures: tuple[MeasureValue, ...] = ()
    """The plan's measure values, by measure then time (empty for a plan without any)."""
    due_changes: tuple[DueChange, ...] = ()
    """The plan's slip log (read with the plan's name, not per source)."""
    tracker_dues: tuple[TrackerDue, ...] = ()
    """The due-date changes of the sources' containers (epics, milestones), by container
    then time: the engine maps them onto the milestones that name those containers."""
    declarations: tuple[Declaration, ...] = ()
    """Statuses declared in the plan's trackers (Jira fields, Linear project updates)."""

    _compact = field_validator("items", "changes", "comments", "assignments",
                               mode="before")(_compacted)

    def merged(self, fresh: Evidence, items: Iterable[tuple[str, str]]) -> Evidence:
        """This evidence with the records of ``items`` (``(source, key)`` pairs) replaced by
        ``fresh``'s, as ``Store.evidence(only=items)`` reads them, and ``fresh``'s accounts
        and selections: the evidence after a sync that wrote those items, from what was read
        before it. The same records in the same order as reading it all again (by source and
        key, each item's own in the order they were read)."""
        changed = set(items)
        of_item = itemgetter(0, 1)  # (source, key) of an item, (source, item_key) of the rest

        def swapped(old: tuple[Any, ...], new: tuple[Any, ...]) -> tuple[Any, ...]:
            # A stable sort by item: every item's records come from one side, in order.
            kept = [r for r in old if of_item(r) not in changed]
            return tuple(sorted([*kept, *new], key=of_item)) if new or len(kept) < len(old) \
                else old

        return self.model_copy(update={
            "items": swapped(self.items, fresh.items),
            "changes": swapped(self.changes, fresh.changes),
            "comments": swapped(self.comments, fresh.comments),
            "assignments": swapped(self.assignments, fresh.assignments),
            "accounts": fresh.accounts, "selections": fresh.selections})


def utcnow() -> datetime:
    """The one place the current time is read outside flows (patched in tests)."""
    return datetime.now(UTC)
