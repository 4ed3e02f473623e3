"""SQLAlchemy 2 tables of the store.

Natural keys throughout: an item is ``(source, key)``, a status change ``(source,
item_key, change_id)``. Datetimes are stored as UTC and always read back aware, on SQLite as
well as PostgreSQL. The schema is created and evolved by Alembic (``models/migrations``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        # SQLite keeps no offset: store naive UTC there.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # One C call per value instead of this decorator's step plus SQLite's
        # ``DATETIME`` formatting: the same text (``2024-05-01 10:02:03.000000``), so stored
        # and compared values are unchanged; a sync binds some 100,000 of them.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is UTC:  # most are: the text without its "+00:00"
                return value.isoformat(" ", "microseconds")[:-6]
            if value.tzinfo is None:
                raise ValueError("naive datetime given to the store")
            return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class SourceState(Base):
    """Per-source sync state: the watermark moves only after the rows are written."""

    __tablename__ = "sources"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    watermark: Mapped[datetime | None]
    last_sync_started: Mapped[datetime | None]
    last_sync_finished: Mapped[datetime | None]
    last_reconciled: Mapped[datetime | None]
    items_seen: Mapped[int] = mapped_column(default=0)


class ItemRow(Base):
    __tablename__ = "items"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(Text, default="")
    item_type: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    status_category: Mapped[str] = mapped_column(String(20))
    assignee: Mapped[str | None] = mapped_column(Text)
    reporter: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime]
    updated: Mapped[datetime]
    resolved: Mapped[datetime | None]
    due: Mapped[datetime | None]
    parent: Mapped[str | None] = mapped_column(Text)
    labels: Mapped[list[str]] = mapped_column(default=list)
    container: Mapped[str | None] = mapped_column(Text)
    points: Mapped[float | None] = mapped_column(Float)
    url: Mapped[str | None] = mapped_column(Text)
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    flags: Mapped[list[str]] = mapped_column(default=list)
    removed: Mapped[datetime | None]
    """Set when reconciliation finds the item deleted or moved out of scope."""

    __table_args__ = (Index("ix_items_source_updated", "source", "updated"),)


class StatusChangeRow(Base):
    __tablename__ = "status_changes"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    change_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(Text)
    from_status: Mapped[str | None] = mapped_column(Text)
    to_status: Mapped[str] = mapped_column(Text)
    from_category: Mapped[str | None] = mapped_column(String(20))
    to_category: Mapped[str] = mapped_column(String(20))

    __table_args__ = (
        ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
    )


class AssigneeChangeRow(Base):
    __tablename__ = "assignee_changes"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    change_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(Text)
    from_account: Mapped[str | None] = mapped_column(Text)
    to_account: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
    )


class CommentRow(Base):
    __tablename__ = "comments"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    item_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    comment_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
    )


class AccountRow(Base):
    __tablename__ = "accounts"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(Text)


class RawPayloadRow(Base):
    """The tracker's own payload per item, with provenance, for re-normalizing.

    ``payload_zst`` is the payload's JSON compressed with Zstandard (level 3, no
    dictionary): five times smaller, and cheaper to compress than zlib at the same size
    (revision 0006). :meth:`stratmap.models.store.Store.raw_payloads` reads it back.
    """

    __tablename__ = "raw_payloads"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    endpoint: Mapped[str] = mapped_column(Text)
    fetched_at: Mapped[datetime]
    payload_zst: Mapped[bytes] = mapped_column(LargeBinary)


class SelectionRow(Base):
    """Keys a tracker returned for a selector only it can evaluate (a JQL)."""

    __tablename__ = "selections"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    selector: Mapped[str] = mapped_column(String(2000), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)


class SnapshotRow(Base):
    """A goal's or milestone's judged state at one moment: the progress history.

    One row per ``(plan, entity, as_of)``: ``entity`` is a goal id, ``goal.milestone``, or
    ``*`` for the plan as a whole. Written by every run and, for the weeks before the first
    run, reconstructed from the status changes (``origin = 'backfill'``).
    """

    __tablename__ = "snapshots"

    plan: Mapped[str] = mapped_column(String(500), primary_key=True)
    entity: Mapped[str] = mapped_column(String(300), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    progress: Mapped[float] = mapped_column(Float)
    items_total: Mapped[int]
    items_done: Mapped[int]
    points_total: Mapped[float | None] = mapped_column(Float)
    points_done: Mapped[float | None] = mapped_column(Float)
    forecast: Mapped[datetime | None]
    findings: Mapped[int]
    finding_kinds: Mapped[dict[str, Any]]
    """Findings on this entity by kind: ``{"stalled": 1, ...}``."""
    origin: Mapped[str] = mapped_column(String(20))
    """``run`` (judged by a run at ``as_of``) or ``backfill`` (reconstructed later)."""
    recorded_at: Mapped[datetime]


class PlanMarkRow(Base):
    """What the last run published for a plan (``models.marks.Mark``), keyed by entity."""

    __tablename__ = "plan_marks"

    plan: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    value: Mapped[str] = mapped_column(String(100))
    since: Mapped[datetime]
    notified: Mapped[datetime | None]


class MeasureValueRow(Base):
    """A value of a plan's measure at a moment: the measure's history.

    One row per ``(plan, measure, at)``; ``measure`` is the plan reference (goal.measure or
    goal.milestone.measure). A sync upserts what its source returns, so a double run
    duplicates nothing and a revised value replaces its moment's; earlier values are kept.
    """

    __tablename__ = "measure_values"

    plan: Mapped[str] = mapped_column(String(200), primary_key=True)
    measure: Mapped[str] = mapped_column(String(300), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    first_seen: Mapped[datetime]
    """When a sync first stored a value at this moment."""
    synced_at: Mapped[datetime]
    """When a sync last read it from the source."""
class DueChangeRow(Base):
    """A change of a milestone's due date (``models.records.DueChange``): the slip log."""

    __tablename__ = "due_changes"

    plan: Mapped[str] = mapped_column(String(500), primary_key=True)
    milestone: Mapped[str] = mapped_column(String(300), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    where: Mapped[str] = mapped_column(String(300), primary_key=True)
    from_due: Mapped[str | None] = mapped_column(String(40))
    to_due: Mapped[str | None] = mapped_column(String(40))


class TrackerDueRow(Base):
    """A change of a tracker container's due date (``models.records.TrackerDue``).

    One row per ``(source, container, at, origin)``: a change from the tracker's history
    (a Jira changelog entry), a change a sync saw by content (a GitHub or GitLab milestone
    whose due date differs from the last row's ``to_due``), or a ``stratmap push`` that wrote
    the plan's due date. ``container`` is the Jira issue key or the milestone's title.
    """

    __tablename__ = "tracker_due_changes"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    container: Mapped[str] = mapped_column(String(300), primary_key=True)
    at: Mapped[datetime] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(20), primary_key=True)
    from_due: Mapped[str | None] = mapped_column(String(40))
    to_due: Mapped[str | None] = mapped_column(String(40))


class DeclarationRow(Base):
    """A status declared in a tracker (``models.records.Declaration``): a Jira epic's status
    or health field as its changelog set it, a Linear project update's health.

    Keyed by ``(source, subject, declaration_id)``; ``subject`` is an epic's key or a
    project's name, so no foreign key to the items (a Linear project is not an item).
    """

    __tablename__ = "declarations"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    subject: Mapped[str] = mapped_column(String(300), primary_key=True)
    declaration_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20))
    said: Mapped[str] = mapped_column(Text, default="")
    where: Mapped[str] = mapped_column(Text, default="")
