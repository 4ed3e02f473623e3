"""SQLAlchemy 2 tables of the store.

Natural keys throughout: an item is ``(source, key)``, a status change ``(source,
item_key, change_id)``. Datetimes are stored as UTC and always read back aware, on SQLite as
well as PostgreSQL. The schema is created and evolved by Alembic (``models/migrations``).

Each table is declared as a class of :class:`Rows` (SQLAlchemy's Core, not its ORM: the
store reads and writes rows, never mapped objects, and the ORM's import and mapping were
some 40 ms of every command's start).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import ColumnClause
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


metadata = MetaData()
"""Every table of the store (what Alembic's migrations are compared with)."""


def column(type_: Any, *, nullable: bool = False, **options: Any) -> ColumnClause[Any]:
    """A column of a :class:`Rows` class, named by its attribute; NOT NULL unless said."""
    return Column(type_, nullable=nullable, **options)


class Rows:
    """A table declared as a class: each :func:`column` an attribute named as the column
    (``ItemRow.key``, a SQL expression as the table's column is), the table itself as
    ``__table__``, and the class taken wherever SQLAlchemy takes a table
    (``select(ItemRow)``, ``update(SourceState)``)."""

    __tablename__: ClassVar[str]
    __table__: ClassVar[Table]
    __table_args__: ClassVar[tuple[Any, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        columns = []
        for name, value in vars(cls).items():
            if isinstance(value, Column):
                value.name = value.key = name
                columns.append(value)
        cls.__table__ = Table(cls.__tablename__, metadata, *columns, *cls.__table_args__)

    @classmethod
    def __clause_element__(cls) -> Table:
        return cls.__table__


class Base:
    """What Alembic and the tests know the tables by: ``Base.metadata``."""

    metadata = metadata


class SourceState(Rows):
    """Per-source sync state: the watermark moves only after the rows are written."""

    __tablename__ = "sources"

    source = column(String(100), primary_key=True)
    kind = column(String(20))
    watermark = column(UTCDateTime(), nullable=True)
    last_sync_started = column(UTCDateTime(), nullable=True)
    last_sync_finished = column(UTCDateTime(), nullable=True)
    last_reconciled = column(UTCDateTime(), nullable=True)
    items_seen = column(Integer(), default=0)


class ItemRow(Rows):
    __tablename__ = "items"

    source = column(String(100), primary_key=True)
    key = column(String(200), primary_key=True)
    title = column(Text(), default="")
    item_type = column(Text(), nullable=True)
    status = column(Text())
    status_category = column(String(20))
    assignee = column(Text(), nullable=True)
    reporter = column(Text(), nullable=True)
    created = column(UTCDateTime())
    updated = column(UTCDateTime())
    resolved = column(UTCDateTime(), nullable=True)
    due = column(UTCDateTime(), nullable=True)
    parent = column(Text(), nullable=True)
    labels = column(JSON(), default=list)
    container = column(Text(), nullable=True)
    points = column(Float(), nullable=True)
    url = column(Text(), nullable=True)
    fields = column(JSON(), default=dict)
    flags = column(JSON(), default=list)
    removed = column(UTCDateTime(), nullable=True)
    """Set when reconciliation finds the item deleted or moved out of scope."""

    __table_args__ = (Index("ix_items_source_updated", "source", "updated"),)


class StatusChangeRow(Rows):
    __tablename__ = "status_changes"

    source = column(String(100), primary_key=True)
    item_key = column(String(200), primary_key=True)
    change_id = column(String(200), primary_key=True)
    at = column(UTCDateTime())
    author = column(Text(), nullable=True)
    from_status = column(Text(), nullable=True)
    to_status = column(Text())
    from_category = column(String(20), nullable=True)
    to_category = column(String(20))

    __table_args__ = (
        ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
    )


class AssigneeChangeRow(Rows):
    __tablename__ = "assignee_changes"

    source = column(String(100), primary_key=True)
    item_key = column(String(200), primary_key=True)
    change_id = column(String(200), primary_key=True)
    at = column(UTCDateTime())
    author = column(Text(), nullable=True)
    from_account = column(Text(), nullable=True)
    to_account = column(Text(), nullable=True)

    __table_args__ = (
        ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
    )


class CommentRow(Rows):
    __tablename__ = "comments"

    source = column(String(100), primary_key=True)
    item_key = column(String(200), primary_key=True)
    comment_id = column(String(200), primary_key=True)
    at = column(UTCDateTime())
    author = column(Text(), nullable=True)
    body = column(Text(), default="")

    __table_args__ = (
        ForeignKeyConstraint(["source", "item_key"], ["items.source", "items.key"]),
    )


class AccountRow(Rows):
    __tablename__ = "accounts"

    source = column(String(100), primary_key=True)
    account_id = column(String(200), primary_key=True)
    display_name = column(Text(), nullable=True)
    email = column(Text(), nullable=True)


class RawPayloadRow(Rows):
    """The tracker's own payload per item, with provenance, for re-normalizing.

    ``payload_zst`` is the payload's JSON compressed with Zstandard (level 3, no
    dictionary): five times smaller, and cheaper to compress than zlib at the same size
    (revision 0006). :meth:`stratmap.models.store.Store.raw_payloads` reads it back.
    """

    __tablename__ = "raw_payloads"

    source = column(String(100), primary_key=True)
    key = column(String(200), primary_key=True)
    endpoint = column(Text())
    fetched_at = column(UTCDateTime())
    payload_zst = column(LargeBinary())


class SelectionRow(Rows):
    """Keys a tracker returned for a selector only it can evaluate (a JQL)."""

    __tablename__ = "selections"

    source = column(String(100), primary_key=True)
    selector = column(String(2000), primary_key=True)
    key = column(String(200), primary_key=True)


class SnapshotRow(Rows):
    """A goal's or milestone's judged state at one moment: the progress history.

    One row per ``(plan, entity, as_of)``: ``entity`` is a goal id, ``goal.milestone``, or
    ``*`` for the plan as a whole. Written by every run and, for the weeks before the first
    run, reconstructed from the status changes (``origin = 'backfill'``).
    """

    __tablename__ = "snapshots"

    plan = column(String(500), primary_key=True)
    entity = column(String(300), primary_key=True)
    as_of = column(UTCDateTime(), primary_key=True)
    kind = column(String(20))
    status = column(String(20))
    progress = column(Float())
    items_total = column(Integer())
    items_done = column(Integer())
    points_total = column(Float(), nullable=True)
    points_done = column(Float(), nullable=True)
    forecast = column(UTCDateTime(), nullable=True)
    findings = column(Integer())
    finding_kinds = column(JSON())
    """Findings on this entity by kind: ``{"stalled": 1, ...}``."""
    origin = column(String(20))
    """``run`` (judged by a run at ``as_of``) or ``backfill`` (reconstructed later)."""
    recorded_at = column(UTCDateTime())


class PlanMarkRow(Rows):
    """What the last run published for a plan (``models.marks.Mark``), keyed by entity."""

    __tablename__ = "plan_marks"

    plan = column(String(200), primary_key=True)
    key = column(String(300), primary_key=True)
    value = column(String(100))
    since = column(UTCDateTime())
    notified = column(UTCDateTime(), nullable=True)


class MeasureValueRow(Rows):
    """A value of a plan's measure at a moment: the measure's history.

    One row per ``(plan, measure, at)``; ``measure`` is the plan reference (goal.measure or
    goal.milestone.measure). A sync upserts what its source returns, so a double run
    duplicates nothing and a revised value replaces its moment's; earlier values are kept.
    """

    __tablename__ = "measure_values"

    plan = column(String(200), primary_key=True)
    measure = column(String(300), primary_key=True)
    at = column(UTCDateTime(), primary_key=True)
    value = column(Float())
    first_seen = column(UTCDateTime())
    """When a sync first stored a value at this moment."""
    synced_at = column(UTCDateTime())
    """When a sync last read it from the source."""
class DueChangeRow(Rows):
    """A change of a milestone's due date (``models.records.DueChange``): the slip log."""

    __tablename__ = "due_changes"

    plan = column(String(500), primary_key=True)
    milestone = column(String(300), primary_key=True)
    at = column(UTCDateTime(), primary_key=True)
    where = column(String(300), primary_key=True)
    from_due = column(String(40), nullable=True)
    to_due = column(String(40), nullable=True)


class TrackerDueRow(Rows):
    """A change of a tracker container's due date (``models.records.TrackerDue``).

    One row per ``(source, container, at, origin)``: a change from the tracker's history
    (a Jira changelog entry), a change a sync saw by content (a GitHub or GitLab milestone
    whose due date differs from the last row's ``to_due``), or a ``stratmap push`` that wrote
    the plan's due date. ``container`` is the Jira issue key or the milestone's title.
    """

    __tablename__ = "tracker_due_changes"

    source = column(String(100), primary_key=True)
    container = column(String(300), primary_key=True)
    at = column(UTCDateTime(), primary_key=True)
    origin = column(String(20), primary_key=True)
    from_due = column(String(40), nullable=True)
    to_due = column(String(40), nullable=True)


class DeclarationRow(Rows):
    """A status declared in a tracker (``models.records.Declaration``): a Jira epic's status
    or health field as its changelog set it, a Linear project update's health.

    Keyed by ``(source, subject, declaration_id)``; ``subject`` is an epic's key or a
    project's name, so no foreign key to the items (a Linear project is not an item).
    """

    __tablename__ = "declarations"

    source = column(String(100), primary_key=True)
    subject = column(String(300), primary_key=True)
    declaration_id = column(String(200), primary_key=True)
    at = column(UTCDateTime())
    author = column(Text(), nullable=True)
    status = column(String(20))
    said = column(Text(), default="")
    where = column(Text(), default="")
