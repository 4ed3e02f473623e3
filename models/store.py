"""The store: normalized tracker records in SQL (SQLite by default, PostgreSQL supported).

Every write is an idempotent upsert on the natural key, inside one transaction per page
together with the watermark it justifies, so a crash at any point leaves either the page
and its watermark or neither. An item is only overwritten by a version at least as new
(``updated``), so re-reading an overlap window can never roll an item back.
"""

from __future__ import annotations

import ast
import functools
import gc
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
import zstandard
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    case,
    create_engine,
    delete,
    event,
    false,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool
from sqlalchemy.sql.dml import Insert

if TYPE_CHECKING:
    from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert

from stratmap.models.history import PLAN, Snapshot, SnapshotPoint
from stratmap.models.marks import Mark
from stratmap.models.records import (
    NO_FIELDS,
    Account,
    Declaration,
    DeclaredStatus,
    DueChange,
    Evidence,
    EvidenceAssignment,
    EvidenceChange,
    EvidenceComment,
    EvidenceItem,
    MeasureValue,
    Page,
    RawPayload,
    StatusCategory,
    StatusChange,
    TrackerDue,
    WorkItem,
    stored,
    utcnow,
)
from stratmap.models.report import Status
from stratmap.models.tables import (
    AccountRow,
    AssigneeChangeRow,
    Base,
    CommentRow,
    DeclarationRow,
    DueChangeRow,
    ItemRow,
    MeasureValueRow,
    PlanMarkRow,
    RawPayloadRow,
    SelectionRow,
    SnapshotRow,
    SourceState,
    StatusChangeRow,
    TrackerDueRow,
)

log = logging.getLogger(__name__)

DEFAULT_DB = "sqlite:///stratmap.db"
_MIGRATIONS = Path(__file__).parent / "migrations"


def database_url(url: str | None = None, *, plan_path: str | Path | None = None) -> str:
    """``--db``, else ``STRATMAP_DB``, else the plan's own SQLite file beside the plan
    (``<folder>/<plan name>.stratmap.db``, whatever the working folder), else (no plan)
    ``stratmap.db`` in the working folder."""
    if url or os.environ.get("STRATMAP_DB"):
        return url or os.environ["STRATMAP_DB"]
    if plan_path is not None:
        return f"sqlite:///{plan_store(plan_path)}"
    return DEFAULT_DB


def plan_store(plan_path: str | Path) -> Path:
    """Where a plan's store is by default: ``plan.yaml`` -> ``plan.stratmap.db`` beside it."""
    path = Path(plan_path).resolve()
    return path.with_name(f"{path.stem}.stratmap.db")


def redact_url(url: str) -> str:
    """The URL with any password hidden, for logs and errors."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


PAYLOAD_LEVEL = 3
"""Zstandard level of raw payloads (see :class:`~stratmap.models.tables.RawPayloadRow`)."""


def _json_dumps(value: Any) -> str:
    # The raw payloads are most of what a sync writes: orjson encodes them about ten times
    # faster than the standard library (same JSON; keys stay in the tracker's order).
    return orjson.dumps(value).decode()


def _wal(cursor: Any) -> None:
    """Put the file in WAL mode (it stays so) unless it already is.

    Switching needs the file to itself, and SQLite answers "database is locked" at once,
    without waiting, while another connection writes: several syncs opening a new store
    at the same moment (a plan's sources on threads) met that. So the mode is read first,
    and the switch retried briefly.
    """
    import sqlite3

    for attempt in range(100):
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
                return
            if not _empty_or_ours(cursor):
                return  # another application's file: migrate() refuses it, untouched
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            # SQLITE_BUSY is "database is locked"; branch on the code, never the text.
            busy = getattr(error, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY,
                                                                sqlite3.SQLITE_LOCKED)
            if not busy or attempt == 99:
                raise
            time.sleep(0.05)


def _empty_or_ours(cursor: Any) -> bool:
    names = {row[0] for row in cursor.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' LIMIT 2")}
    return not names or bool(cursor.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'").fetchone())


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite store URL (None for another database or an in-memory one)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def writable(url: str) -> bool:
    """Whether this process may write the store: False only for an existing SQLite file
    that it, or the folder it is in (where SQLite keeps its -wal and -shm files), may not
    write. A report reads such a store read-only instead of failing."""
    path = sqlite_file(url)
    if path is None or not path.exists():
        return True
    return os.access(path, os.W_OK) and os.access(path.parent or Path("."), os.W_OK)


def _read_only_url(url: str) -> str:
    """A SQLite URL opened read-only. SQLite reads a WAL store read-only only where it can
    create the -shm file; in a folder it may not write, the file is opened as immutable
    (nobody can be writing a store in a folder nobody may write)."""
    from sqlalchemy.engine import make_url

    path = sqlite_file(url)
    assert path is not None
    immutable = not os.access(path.resolve().parent, os.W_OK)
    query = {"mode": "ro", "uri": "true", **({"immutable": "1"} if immutable else {})}
    return make_url(url).set(database=f"file:{path.resolve()}", query=query) \
        .render_as_string(hide_password=False)


def _engine(url: str, *, read_only: bool = False) -> Engine:
    if read_only and sqlite_file(url) is not None:
        url = _read_only_url(url)
    engine = create_engine(url, future=True, json_serializer=_json_dumps,
                           json_deserializer=orjson.loads)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # First, so that everything below waits for other writers instead of failing.
            cursor.execute("PRAGMA busy_timeout=30000")
            if read_only:
                cursor.close()
                return
            cursor.execute("PRAGMA foreign_keys=ON")
            _wal(cursor)
            # With WAL, NORMAL syncs at checkpoints, not at every commit: a killed process
            # loses nothing committed and the file never corrupts; only a power cut can drop
            # the last commits, and each page's watermark is in the commit with its rows.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

    return engine


def _check_current(engine: Engine) -> None:
    """A store read without writing must be at this version's schema already."""
    if _at_heads(engine):
        return
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        if current == _heads():
            return
        _check_ours(connection, current)
    found = ", ".join(sorted(current)) or "none"
    raise StoreRefused(
        f"the store is read-only here and its schema (revision {found}) is older than this "
        f"stratmap's ({', '.join(sorted(_heads()))}); run `stratmap run` once where it may "
        "be written, to upgrade it")


_MIGRATE_LOCK = threading.Lock()
_MEMORY_LOCK = threading.RLock()


@contextmanager
def _bulk() -> Iterator[None]:
    """Tens of thousands of records built without the cyclic garbage collector: its passes
    over the growing heap were half of reading a 20,000-issue store's evidence, and the
    records hold no reference cycles to collect."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


_REVISION_LINE = re.compile(r"^(revision|down_revision)\b[^=\n]*=\s*(.+?)\s*$", re.MULTILINE)


@functools.cache
def _file_heads() -> frozenset[str] | None:
    """The newest revisions, read from the migration files without importing Alembic
    (importing it was a second of a run that changed nothing); None when a file names
    its revisions in a form not read here (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (_MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
        except (KeyError, ValueError, SyntaxError):
            return None
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update((down,) if isinstance(down, str) else down or ())
    return frozenset(revisions - parents) or None


def _at_heads(engine: Engine) -> bool:
    """Whether the store's schema is this version's, asked with one query (no Alembic);
    False whenever that is not plainly so (no version table yet, another revision)."""
    heads = _file_heads()
    if heads is None:
        return False
    try:
        with engine.connect() as connection:
            found = {row[0] for row in connection.exec_driver_sql(
                "SELECT version_num FROM alembic_version")}
    except SQLAlchemyError:
        return False
    return found == heads


def _heads() -> set[str]:
    from alembic.script import ScriptDirectory

    return set(ScriptDirectory(str(_MIGRATIONS)).get_heads())


@dataclass(frozen=True)
class SyncState:
    """A source's row of :class:`~stratmap.models.tables.SourceState`."""

    source: str
    kind: str
    watermark: datetime | None
    last_sync_started: datetime | None
    last_sync_finished: datetime | None
    last_reconciled: datetime | None
    items_seen: int


class StoreRefused(ValueError):
    """The database cannot be used as a store: it is another application's, or newer."""


def _check_ours(connection: Connection, current: set[str]) -> None:
    """Refuse, touching nothing, a database that is not a stratmap store or is newer."""
    from sqlalchemy import inspect

    if current - _known_revisions():
        raise StoreRefused(
            f"it was written by a newer stratmap (revision {', '.join(sorted(current))}); "
            "upgrade stratmap to use it")
    if not current:
        tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
        if tables:
            raise StoreRefused(
                f"it holds other tables ({', '.join(sorted(tables)[:3])}"
                f"{', ...' if len(tables) > 3 else ''}) and is not a stratmap store; "
                "point --db at a new or a stratmap database")


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory(str(_MIGRATIONS)).walk_revisions()}


def _begin_immediate(connection: Connection, where: str) -> None:
    """Take SQLite's write lock; if another process holds it, say so, then wait for it."""
    from sqlalchemy.exc import OperationalError

    connection.exec_driver_sql("PRAGMA busy_timeout=0")
    try:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    except OperationalError as error:
        if "locked" not in str(error):
            raise
        log.warning("the store %s is locked by another process (a sync or a first run "
                    "creating it); waiting up to 30 s", where)
        connection.exec_driver_sql("PRAGMA busy_timeout=30000")
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        connection.exec_driver_sql("PRAGMA busy_timeout=30000")


@contextmanager
def _schema_transaction(engine: Engine) -> Iterator[Connection]:
    """One transaction for the whole migration, holding the database's write lock.

    SQLite's Python driver runs DDL outside any transaction, so a first migration killed
    half way left tables without a version row, and two first runs raced to create them.
    Here SQLite takes ``BEGIN IMMEDIATE`` (the write lock: a second process waits for the
    first, then finds the schema there) and PostgreSQL an advisory lock.
    """
    if engine.dialect.name != "sqlite":
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(7355608)"))
            yield connection
        return
    migrating = create_engine(engine.url, poolclass=NullPool)

    @event.listens_for(migrating, "connect")
    def _explicit(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit transactions: ours is explicit
        dbapi_connection.execute("PRAGMA busy_timeout=30000")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    try:
        with migrating.connect() as connection:
            _begin_immediate(connection, redact_url(str(engine.url)))
            try:
                yield connection
            except BaseException:
                connection.exec_driver_sql("ROLLBACK")
                raise
            connection.exec_driver_sql("COMMIT")
    finally:
        migrating.dispose()


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest Alembic revision (a no-op when it is there).

    The whole upgrade is one transaction under a lock, so a process killed during it leaves
    the store as it was, and concurrent first runs create the schema once.
    """
    if _at_heads(engine):
        return
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        if current == _heads():
            return
        try:
            _check_ours(connection, current)
        except StoreRefused:
            # Another process's first migration can commit between reading the version
            # and reading the tables (each its own snapshot here): refuse only if the
            # version still reads the same; the check under the write lock settles it.
            if set(MigrationContext.configure(connection).get_current_heads()) == current:
                raise
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    # Alembic's environment is module-global: one migration at a time in a process.
    with _MIGRATE_LOCK, _schema_transaction(engine) as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
        if current == _heads():
            return  # another process migrated while this one waited for the lock
        _check_ours(connection, current)
        config.attributes["connection"] = connection
        command.upgrade(config, "heads")


_STATEMENTS: dict[tuple[Any, ...], Insert] = {}

_E = TypeVar("_E", bound=Enum)


def _by_value(kind: type[_E]) -> Callable[[Any], _E]:
    """``kind(value)`` for the rows of one read, as a dict lookup: the enum's own call per
    row was a tenth of the evidence's read. An unknown value still fails (KeyError)."""
    return {member.value: member for member in kind}.__getitem__


def _stored_moment(moment: datetime) -> str:
    """``moment`` as SQLite holds a moment column (SQLAlchemy's naive UTC text, to the
    microsecond), for comparing with it in SQL as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _postgresql_insert(table: Table) -> PostgresqlInsert:
    """PostgreSQL's INSERT (with ON CONFLICT), its dialect imported when a store is one: a
    SQLite user's every run skipped importing it (25 ms of start-up)."""
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(table)


def _upsert_statement(dialect: str, table: Any, columns: tuple[str, ...], keys: tuple[str, ...],
                      newer_only: bool) -> Insert:
    # Built once per shape: building ``excluded`` and the SET clause is a tenth of a page's
    # write time, and a statement that is the same object is also a compiled-cache hit.
    shape = (dialect, table, columns, keys, newer_only)
    stmt = _STATEMENTS.get(shape)
    if stmt is None:
        if dialect == "postgresql":
            stmt = _postgresql_insert(table)
        elif dialect == "sqlite":
            stmt = sqlite.insert(table)
        else:  # pragma: no cover - guarded by Store.__init__
            raise ValueError(f"unsupported database {dialect}")
        excluded = stmt.excluded
        where = (table.c.updated <= excluded.updated) if newer_only else None
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c: excluded[c] for c in columns},
            where=where,
        )
        _STATEMENTS[shape] = stmt
    return stmt


def upsert(connection: Connection, table: Any, rows: Sequence[dict[str, Any]],
            keys: Sequence[str], *, newer_only: bool = False) -> None:
    if not rows:
        return
    # One search of the joined text: twice as fast as a test per value.
    if "\0" in "".join([v for row in rows for v in row.values() if isinstance(v, str)]):
        rows = [_without_nul(row) for row in rows]
    columns = tuple(c for c in rows[0] if c not in keys)
    stmt = _upsert_statement(connection.dialect.name, table, columns, tuple(keys), newer_only)
    # Sorted rows take row locks in one order, so concurrent runs cannot deadlock.
    ordered = _in_key_order(rows, keys)
    driver = _driver_statement(connection, stmt, table, (*keys, *columns))
    if driver is None:
        connection.execute(stmt, ordered)
        return
    sql, take, processed = driver
    values = [take(row) for row in ordered]
    if processed:
        for number, row in enumerate(values):
            value = list(row)
            for at, process in processed:
                value[at] = process(value[at])
            values[number] = tuple(value)
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(sql, values)
    finally:
        cursor.close()


def _in_key_order(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """The rows by their keys' text: text keys as they are (the same order, without a
    ``str`` per key and row), other keys as text."""
    if all(type(rows[0][k]) is str for k in keys):
        try:
            return sorted(rows, key=itemgetter(*keys))
        except TypeError:  # a later row's key is not text
            pass
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))


_Driver = tuple[str, Callable[[dict[str, Any]], tuple[Any, ...]],
                tuple[tuple[int, Callable[[Any], Any]], ...]]
_DRIVER: dict[tuple[Any, ...], _Driver | None] = {}


def _driver_statement(connection: Connection, stmt: Insert, table: Any,
                      given: tuple[str, ...]) -> _Driver | None:
    """On SQLite, the upsert as the driver runs it: its SQL, a function taking a row's
    parameters in their order, and the bind processors of the columns that have one, by
    position (SQLAlchemy's own, so the stored text is the same).

    SQLAlchemy's work per row and value before the driver's ``executemany`` was more than
    the write itself (half a first sync's writing time). None where SQLAlchemy must do it:
    on PostgreSQL, and where a column is not given (its default is SQLAlchemy's to fill)."""
    dialect = connection.dialect
    if dialect.name != "sqlite" or set(given) != set(table.c.keys()):
        return None
    shape = (stmt, given)
    if shape not in _DRIVER:
        compiled = stmt.compile(dialect=dialect, column_keys=list(given))
        names = tuple(compiled.positiontup or ())
        if compiled.insert_prefetch or set(names) != set(given) or len(names) != len(given):
            _DRIVER[shape] = None
        else:
            processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect)
                          for n in names]
            take = itemgetter(*names) if len(names) > 1 else (lambda row: (row[names[0]],))
            _DRIVER[shape] = (str(compiled), take, tuple(
                (at, p) for at, p in enumerate(processors) if p is not None))
    return _DRIVER[shape]


NUL_REMOVED = "nul_removed"
"""The flag of an item whose text held NUL bytes (PostgreSQL cannot store them)."""


def _without_nul(row: dict[str, Any]) -> dict[str, Any]:
    """The row with NUL removed from its text, on every store alike (PostgreSQL refuses
    NUL in text; SQLite would keep it, and both stores must judge the same)."""
    return {k: v.replace("\0", "") if isinstance(v, str) else v for k, v in row.items()}


def _item_row(item: WorkItem) -> dict[str, Any]:
    row = item.model_dump()
    if any(isinstance(v, str) and "\0" in v for v in row.values()) or any(
            "\0" in label for label in item.labels):
        row = _without_nul(row)
        item = item.model_copy(update={"flags": (*item.flags, NUL_REMOVED),
                                       "labels": tuple(x.replace("\0", "") for x in item.labels)})
    row["status_category"] = item.status_category.value
    row["labels"] = list(item.labels)
    row["flags"] = list(item.flags)
    row["removed"] = None
    return row


def _change_row(change: StatusChange) -> dict[str, Any]:
    row = change.model_dump()
    row["to_category"] = change.to_category.value
    row["from_category"] = change.from_category.value if change.from_category else None
    return row


def _raw_rows(raws: Sequence[RawPayload]) -> list[dict[str, Any]]:
    # Not model_dump(): it deep-copies the payload, a third of a page's write time. A
    # compressor per page: they are not to be shared between threads (sources sync on
    # threads). The page's payloads are compressed in one call, which lets go of the
    # interpreter lock once, not once a payload: a sync's fetching threads took the lock at
    # every release, so each payload's compression waited to win it back (74 us a payload
    # in a 20,000-issue sync, 20 us of it compressing). The same frames either way.
    if not raws:
        return []
    compressor = zstandard.ZstdCompressor(level=PAYLOAD_LEVEL)
    frames = compressor.multi_compress_to_buffer([orjson.dumps(raw.payload) for raw in raws])
    assert len(frames) == len(raws)
    return [{"source": raw.source, "key": raw.key, "endpoint": raw.endpoint,
             "fetched_at": raw.fetched_at, "payload_zst": frames[n].tobytes()}
            for n, raw in enumerate(raws)]


class Store:
    """Records of every source, with per-source watermarks."""

    def __init__(self, url: str | None = None, *, migrate_schema: bool = True,
                 read_only: bool = False) -> None:
        """``read_only``: open the store for reading only (a SQLite file opened with
        ``mode=ro``, no migration; it must already be at this version's schema)."""
        self.url = database_url(url)
        self.read_only = read_only
        self.engine = _engine(self.url, read_only=read_only)
        if self.engine.dialect.name not in ("sqlite", "postgresql"):
            raise ValueError(
                f"stratmap stores to SQLite or PostgreSQL, not {self.engine.dialect.name}"
            )
        if read_only:
            try:
                _check_current(self.engine)
            except BaseException:
                self.engine.dispose()
                raise
        elif migrate_schema:
            try:
                migrate(self.engine)
            except BaseException:
                self.engine.dispose()
                raise

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Hold the lock ``name`` across processes while the block runs; others wait.

        PostgreSQL: a session advisory lock (``pg_advisory_lock``) on a connection of its
        own, released when the block ends or the connection drops. SQLite: an exclusive
        ``flock`` on a file beside the database (``<file>.lock``); SQLite's own write lock
        cannot span the separate transactions the block makes.
        """
        if self.engine.dialect.name == "postgresql":
            key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
            with self.engine.connect() as connection:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                connection.commit()
                try:
                    yield
                finally:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    connection.commit()
            return
        database = self.engine.url.database
        if not database or database == ":memory:":
            with _MEMORY_LOCK:  # one process: a thread lock is enough
                yield
            return
        import fcntl

        with open(f"{database}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- sync state -------------------------------------------------------------------

    def watermark(self, source: str) -> datetime | None:
        with self.engine.connect() as connection:
            return connection.scalar(
                select(SourceState.watermark).where(SourceState.source == source)
            )

    def state(self, source: str) -> SyncState | None:
        with self.engine.connect() as connection:
            row = connection.execute(
                select(SourceState).where(SourceState.source == source)
            ).first()
            return None if row is None else SyncState(**row._asdict())

    def start_sync(self, source: str, kind: str, started: datetime) -> None:
        with self.transaction() as connection:
            upsert(
                connection,
                SourceState.__table__,
                [{"source": source, "kind": kind, "last_sync_started": started}],
                ["source"],
            )

    def finish_sync(self, source: str, finished: datetime, *, reconciled: bool = False) -> None:
        values: dict[str, Any] = {"last_sync_finished": finished}
        if reconciled:
            values["last_reconciled"] = finished
        with self.transaction() as connection:
            connection.execute(
                update(SourceState).where(SourceState.source == source).values(**values)
            )

    def write_page(self, page: Page, *, watermark: datetime | None = None) -> bool:
        """Upsert one page; move the watermark forward (never back) in the same transaction.
        Whether it wrote anything the plan is judged from (:attr:`Page.has_records`, or a
        container's due date that changed)."""
        raws = _raw_rows(page.raw)  # compressed before the write lock is taken
        with self.transaction() as connection:
            wrote = self._write(connection, page, raws)
            if watermark is not None:
                self._advance(connection, page.source, watermark, len(page.items))
        return wrote

    def _write(self, connection: Connection, page: Page, raws: list[dict[str, Any]]) -> bool:
        upsert(connection, ItemRow.__table__, [_item_row(i) for i in page.items],
                ["source", "key"], newer_only=True)
        # Children of an item come only with a version of it at least as new as the
        # stored one, so the foreign key always holds.
        upsert(connection, StatusChangeRow.__table__, [_change_row(c) for c in page.changes],
                ["source", "item_key", "change_id"])
        upsert(connection, CommentRow.__table__, [c.model_dump() for c in page.comments],
                ["source", "item_key", "comment_id"])
        upsert(connection, AssigneeChangeRow.__table__,
               [a.model_dump() for a in page.assignments], ["source", "item_key", "change_id"])
        upsert(connection, AccountRow.__table__, [a.model_dump() for a in page.accounts],
                ["source", "account_id"])
        upsert(connection, RawPayloadRow.__table__, raws, ["source", "key"])
        dues = write_tracker_dues(connection, page.dues) if page.dues else []
        if page.declarations:
            upsert(connection, DeclarationRow.__table__,
                   [d.model_dump() for d in page.declarations],
                   ["source", "subject", "declaration_id"])
        return page.has_records or bool(dues)

    def _advance(self, connection: Connection, source: str, watermark: datetime,
                 count: int) -> None:
        # Each statement is atomic in the database: two runs at once can interleave pages,
        # but no read-then-write race can ever move the watermark back.
        mine = SourceState.source == source
        connection.execute(update(SourceState).where(mine)
                           .values(items_seen=SourceState.items_seen + count))
        connection.execute(
            update(SourceState)
            .where(mine, (SourceState.watermark.is_(None)) | (SourceState.watermark < watermark))
            .values(watermark=watermark)
        )

    def updated_since(self, source: str, since: datetime) -> dict[str, datetime]:
        """``key -> updated`` of the source's items updated at or after ``since`` and not
        flagged removed: what a sync's overlap will read again."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(ItemRow.key, ItemRow.updated).where(
                    ItemRow.source == source, ItemRow.updated >= since, ItemRow.removed.is_(None)
                )
            ).all()
        return {key: updated for key, updated in rows}

    def replace_selection(self, source: str, selector_key: str, keys: Iterable[str]) -> bool:
        """Store what the tracker selected for ``Selector.key()``, replacing the last answer;
        whether the answer changed (an unchanged one is not written again)."""
        digest = selector_key
        wanted = sorted(set(keys))
        mine = (SelectionRow.source == source, SelectionRow.selector == digest)
        with self.transaction() as connection:
            stored = connection.scalars(select(SelectionRow.key).where(*mine)).all()
            if set(stored) == set(wanted):
                return False
            connection.execute(delete(SelectionRow).where(*mine))
            rows = [{"source": source, "selector": digest, "key": k} for k in wanted]
            if rows:
                connection.execute(insert(SelectionRow), rows)
            return True

    def mark_removed(self, source: str, present: frozenset[str], when: datetime) -> int:
        """Flag stored items the tracker no longer has in scope; return how many."""
        with self.transaction() as connection:
            stored = connection.scalars(
                select(ItemRow.key).where(ItemRow.source == source, ItemRow.removed.is_(None))
            ).all()
            gone = sorted(set(stored) - present)
            for start in range(0, len(gone), 500):
                connection.execute(
                    update(ItemRow)
                    .where(ItemRow.source == source, ItemRow.key.in_(gone[start:start + 500]))
                    .values(removed=when)
                )
            return len(gone)

    # -- reading ------------------------------------------------------------------------

    def evidence(self, sources: Iterable[str], *, full_since: datetime | None = None,
                 only: Iterable[tuple[str, str]] | None = None) -> Evidence:
        """All records of the given sources, in a stable order, for the engine.

        ``only``: the items, status changes, comments and assignee changes of just these
        ``(source, key)`` items (what a sync has just written, to be merged into evidence
        read before it: :meth:`Evidence.merged`); accounts and selections come whole.

        ``full_since``: only comments from then on keep their text and id; older ones come
        with ``body=None`` and ``comment_id=None``. The engine reads those only for an
        owner's recent declaration
        (:data:`~stratmap.judgement.organisation.DECLARATION_FRESH`; the store gives each
        item's comments in order already), and they are most of the comments' memory
        (some 50 MB at 100,000 issues)."""
        names = sorted(set(sources))
        keys = None if only is None else sorted(set(only))
        with _bulk():
            if self.engine.dialect.name == "sqlite":
                return self._sqlite_evidence(names, full_since, keys)
            return self._evidence(names, full_since, keys)

    def _evidence(self, names: list[str], full_since: datetime | None,
                  keys: list[tuple[str, str]] | None = None) -> Evidence:
        def mine(table: Any, key: Any) -> list[Any]:
            found = [table.source.in_(names)]
            if keys is not None:
                found.append(tuple_(table.source, key).in_(keys) if keys else false())
            return found

        with self.engine.connect() as connection:
            items = tuple([
                EvidenceItem(
                    source=r.source, key=r.key, title=r.title, item_type=r.item_type,
                    status=r.status, status_category=StatusCategory(r.status_category),
                    assignee=r.assignee, reporter=r.reporter, created=r.created,
                    updated=r.updated, resolved=r.resolved, due=r.due, parent=r.parent,
                    labels=tuple(r.labels or ()), container=r.container, points=r.points,
                    url=r.url, fields=dict(r.fields) if r.fields else NO_FIELDS,
                    flags=tuple(r.flags or ()),
                )
                for r in connection.execute(
                    select(ItemRow)
                    .where(*mine(ItemRow, ItemRow.key), ItemRow.removed.is_(None))
                    .order_by(ItemRow.source, ItemRow.key)
                )
            ])
            changes = tuple([
                EvidenceChange(
                    source=r.source, item_key=r.item_key, change_id=r.change_id, at=r.at,
                    author=r.author, from_status=r.from_status, to_status=r.to_status,
                    from_category=StatusCategory(r.from_category) if r.from_category else None,
                    to_category=StatusCategory(r.to_category),
                )
                for r in connection.execute(
                    select(StatusChangeRow)
                    .where(*mine(StatusChangeRow, StatusChangeRow.item_key))
                    .order_by(StatusChangeRow.source, StatusChangeRow.item_key,
                              StatusChangeRow.at, StatusChangeRow.change_id)
                )
            ])
            recent = (None if full_since is None
                      else CommentRow.at >= full_since.astimezone(UTC))
            body = CommentRow.body if recent is None else case((recent, CommentRow.body))
            comment_id = (CommentRow.comment_id if recent is None
                          else case((recent, CommentRow.comment_id)))
            comments = tuple([
                EvidenceComment(source=r.source, item_key=r.item_key, comment_id=r.comment_id,
                                at=r.at, author=r.author, body=r.body)
                for r in connection.execute(
                    select(CommentRow.source, CommentRow.item_key,
                           comment_id.label("comment_id"), CommentRow.at, CommentRow.author,
                           body.label("body"))
                    .where(*mine(CommentRow, CommentRow.item_key))
                    .order_by(CommentRow.source, CommentRow.item_key, CommentRow.at,
                              CommentRow.comment_id)
                )
            ])
            accounts = tuple(
                Account(source=r.source, account_id=r.account_id,
                        display_name=r.display_name, email=r.email)
                for r in connection.execute(
                    select(AccountRow)
                    .where(AccountRow.source.in_(names))
                    .order_by(AccountRow.source, AccountRow.account_id)
                )
            )
            assignments = tuple([
                EvidenceAssignment(source=r.source, item_key=r.item_key,
                                   change_id=r.change_id, at=r.at, author=r.author,
                                   from_account=r.from_account, to_account=r.to_account)
                for r in connection.execute(
                    select(AssigneeChangeRow)
                    .where(*mine(AssigneeChangeRow, AssigneeChangeRow.item_key))
                    .order_by(AssigneeChangeRow.source, AssigneeChangeRow.item_key,
                              AssigneeChangeRow.at, AssigneeChangeRow.change_id)
                )
            ])
            selections: dict[tuple[str, str], set[str]] = {}
            for r in connection.execute(select(SelectionRow).where(SelectionRow.source.in_(names))):
                selections.setdefault((r.source, r.selector), set()).add(r.key)
        # Built, not validated: the rows were validated on their way in.
        return Evidence.model_construct(
            items=items, changes=changes, comments=comments, accounts=accounts,
            selections={k: frozenset(v) for k, v in selections.items()},
            assignments=assignments,
        )

    def raw_payloads(self, source: str, keys: Iterable[str] | None = None
                     ) -> Iterator[RawPayload]:
        """The stored raw payloads of ``source`` (of ``keys`` only, if given), by key: what
        a connector's normalizer reads again to fix a mapping without re-fetching."""
        query = select(RawPayloadRow).where(RawPayloadRow.source == source)
        if keys is not None:
            query = query.where(RawPayloadRow.key.in_(sorted(set(keys))))
        decompress = zstandard.ZstdDecompressor().decompress
        with self.engine.connect() as connection:
            for r in connection.execute(query.order_by(RawPayloadRow.key)):
                yield RawPayload(source=r.source, key=r.key, endpoint=r.endpoint,
                                 fetched_at=r.fetched_at,
                                 payload=orjson.loads(decompress(r.payload_zst)))

    def _sqlite_evidence(self, names: list[str], full_since: datetime | None,
                         keys: list[tuple[str, str]] | None = None) -> Evidence:
        """:meth:`evidence` from SQLite, read through the driver: the same rows in the same
        order, without SQLAlchemy's processing per value (a third of the read at 20,000
        issues). Moments are stored as naive UTC text, JSON columns as JSON text. The rows
        were validated on their way in: the evidence's tuples are built from them, not
        validated again (a test compares both paths, record by record)."""
        marks = ", ".join("?" * len(names))

        parse = datetime.fromisoformat

        def moment(text: str | None) -> datetime | None:
            # "+00:00" parses straight to datetime.UTC, several times faster than .replace
            return None if text is None else parse(text + "+00:00")

        # ``only``: the (source, key) pairs as one JSON parameter, whatever their number.
        pairs = () if keys is None else (orjson.dumps(keys).decode(),)

        def rows(sql: str, *more: object, key: str = "") -> Any:
            # The driver's own cursor: SQLAlchemy's result costs more per row than the read.
            cursor = connection.connection.cursor()
            only = "" if keys is None or not key else (
                f" AND (source, {key}) IN (SELECT json_extract(value, '$[0]'), "
                "json_extract(value, '$[1]') FROM json_each(?))")
            cursor.execute(sql.format(marks=marks, only=only),
                           (*more, *names, *(pairs if only else ())))
            return cursor

        full = "comment_id, at, author, body"
        since: tuple[str, ...] = ()
        if full_since is not None:
            full = ("CASE WHEN at >= ? THEN comment_id END, at, author, "
                    "CASE WHEN at >= ? THEN body END")
            since = (_stored_moment(full_since),) * 2

        loads = orjson.loads
        category = _by_value(StatusCategory)
        item, change = EvidenceItem._make, EvidenceChange._make
        comment, assignment = EvidenceComment._make, EvidenceAssignment._make
        # One string object per distinct value of the columns that repeat (sources, keys
        # named by changes and comments, statuses, people): the driver makes a fresh one per
        # row. Half the strings of 100,000 issues' evidence, some 100 MB, are repeats.
        strings: dict[Any, Any] = {}
        shared = strings.setdefault
        # One tuple per distinct set of labels, as stored (most items share theirs).
        label_sets: dict[str, tuple[str, ...]] = {}

        def labels(text: str) -> tuple[str, ...]:
            found = label_sets.get(text)
            if found is None:
                found = label_sets[text] = tuple([shared(x, x) for x in loads(text) or ()])
            return found

        with self.engine.connect() as connection:
            items = tuple([
                item((
                    shared(r[0], r[0]), shared(r[1], r[1]), r[2], shared(r[3], r[3]),
                    shared(r[4], r[4]), category(r[5]), shared(r[6], r[6]), shared(r[7], r[7]),
                    moment(r[8]), moment(r[9]), moment(r[10]), moment(r[11]),
                    shared(r[12], r[12]),
                    labels(r[13]) if r[13] is not None else (),
                    shared(r[14], r[14]), None if r[15] is None else shared(r[15], float(r[15])),
                    r[16],
                    (loads(r[17]) or NO_FIELDS) if r[17] is not None else NO_FIELDS,
                    tuple(loads(r[18]) or ()) if r[18] is not None else (),
                ))
                for r in rows(
                    "SELECT source, key, title, item_type, status, status_category, assignee, "
                    "reporter, created, updated, resolved, due, parent, labels, container, "
                    "points, url, fields, flags FROM items "
                    "WHERE source IN ({marks}){only} AND removed IS NULL ORDER BY source, key",
                    key="key")
            ])
            changes = tuple([
                change((
                    shared(r[0], r[0]), shared(r[1], r[1]), r[2], moment(r[3]),
                    shared(r[4], r[4]), shared(r[5], r[5]), shared(r[6], r[6]),
                    category(r[7]) if r[7] else None, category(r[8]),
                ))
                for r in rows(
                    "SELECT source, item_key, change_id, at, author, from_status, to_status, "
                    "from_category, to_category FROM status_changes WHERE source IN ({marks})"
                    "{only} ORDER BY source, item_key, at, change_id", key="item_key")
            ])
            comments = tuple([
                comment((shared(r[0], r[0]), shared(r[1], r[1]), r[2], moment(r[3]),
                         shared(r[4], r[4]), r[5]))
                for r in rows(
                    f"SELECT source, item_key, {full} FROM comments "
                    "WHERE source IN ({marks}){only} ORDER BY source, item_key, at, comment_id",
                    *since, key="item_key")
            ])
            accounts = tuple(
                stored(Account, {"source": shared(r[0], r[0]),
                                 "account_id": shared(r[1], r[1]), "display_name": r[2],
                                 "email": r[3]})
                for r in rows(
                    "SELECT source, account_id, display_name, email FROM accounts "
                    "WHERE source IN ({marks}) ORDER BY source, account_id")
            )
            assignments = tuple([
                assignment((shared(r[0], r[0]), shared(r[1], r[1]), r[2], moment(r[3]),
                            shared(r[4], r[4]), shared(r[5], r[5]), shared(r[6], r[6])))
                for r in rows(
                    "SELECT source, item_key, change_id, at, author, from_account, to_account "
                    "FROM assignee_changes WHERE source IN ({marks}){only} "
                    "ORDER BY source, item_key, at, change_id", key="item_key")
            ])
            selections: dict[tuple[str, str], set[str]] = {}
            for source, selector, key in rows(
                    "SELECT source, selector, key FROM selections WHERE source IN ({marks})"):
                selections.setdefault((source, selector), set()).add(key)
        # Built, not validated: the rows were validated on their way in.
        return Evidence.model_construct(
            items=items, changes=changes, comments=comments, accounts=accounts,
            selections={k: frozenset(v) for k, v in selections.items()},
            assignments=assignments,
        )

    def counts(self) -> dict[str, int]:
        """Row counts per table (for tests, benchmarks and `stratmap status`)."""
        from sqlalchemy import func

        with self.engine.connect() as connection:
            return {
                table.__tablename__: int(
                    connection.scalar(select(func.count()).select_from(table)) or 0
                )
                for table in (ItemRow, StatusChangeRow, CommentRow, AccountRow, RawPayloadRow,
                              AssigneeChangeRow)
            }


def load_marks(store: Store, plan: str) -> dict[str, Mark]:
    """What the last run published for ``plan`` (empty before its first run)."""
    with store.engine.connect() as connection:
        rows = connection.execute(select(PlanMarkRow).where(PlanMarkRow.plan == plan))
        return {r.key: Mark(key=r.key, value=r.value, since=r.since, notified=r.notified)
                for r in rows}


def save_marks(store: Store, plan: str, marks: dict[str, Mark]) -> None:
    """Replace the plan's marks with ``marks`` in one transaction."""
    with store.transaction() as connection:
        keys = set(marks)
        stored = set(connection.scalars(select(PlanMarkRow.key).where(PlanMarkRow.plan == plan)))
        gone = sorted(stored - keys)
        for start in range(0, len(gone), 500):
            connection.execute(delete(PlanMarkRow).where(
                PlanMarkRow.plan == plan, PlanMarkRow.key.in_(gone[start:start + 500])))
        upsert(connection, PlanMarkRow.__table__, [
            {"plan": plan, "key": m.key, "value": m.value, "since": m.since,
             "notified": m.notified} for m in marks.values()
        ], ["plan", "key"])


def load_due_changes(store: Store, plan: str) -> tuple[DueChange, ...]:
    """The plan's slip log: every due date change recorded, oldest first."""
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(DueChangeRow).where(DueChangeRow.plan == plan)
            .order_by(DueChangeRow.milestone, DueChangeRow.at, DueChangeRow.where))
        return tuple(DueChange(plan=r.plan, milestone=r.milestone, at=r.at, where=r.where,
                               from_due=r.from_due, to_due=r.to_due) for r in rows)


def load_declarations(store: Store, sources: Iterable[str]) -> tuple[Declaration, ...]:
    """The statuses declared in the given sources (Jira fields, Linear project updates),
    by source, subject and time."""
    names = sorted(set(sources))
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(DeclarationRow).where(DeclarationRow.source.in_(names))
            .order_by(DeclarationRow.source, DeclarationRow.subject, DeclarationRow.at,
                      DeclarationRow.declaration_id))
        return tuple(Declaration(source=r.source, subject=r.subject,
                                 declaration_id=r.declaration_id, at=r.at, author=r.author,
                                 status=DeclaredStatus(r.status), said=r.said, where=r.where)
                     for r in rows)


def record_plan_dues(store: Store, plan: str, dues: dict[str, str | None],
                     at: datetime) -> list[DueChange]:
    """Record each milestone whose due date in the plan file differs from the last one the
    store saw from the plan (``where = 'plan'``); return what was recorded.

    Detected by content: only a changed date is a row, so a run that reads the same plan
    again records nothing. A milestone seen for the first time starts its log
    (``from_due`` None).
    """
    with store.transaction() as connection:
        last: dict[str, str | None] = {}
        for r in connection.execute(
                select(DueChangeRow).where(DueChangeRow.plan == plan,
                                           DueChangeRow.where == "plan")
                .order_by(DueChangeRow.at)):
            last[r.milestone] = r.to_due
        found = [DueChange(plan=plan, milestone=ref, at=at, where="plan",
                           from_due=last.get(ref), to_due=due)
                 for ref, due in sorted(dues.items())
                 if (ref not in last and due is not None) or (ref in last and last[ref] != due)]
        upsert(connection, DueChangeRow.__table__, [
            {"plan": plan, "milestone": c.milestone, "at": c.at, "where": c.where,
             "from_due": c.from_due, "to_due": c.to_due} for c in found
        ], ["plan", "milestone", "at", "where"])
    return found


def write_tracker_dues(connection: Connection, dues: Sequence[TrackerDue]) -> list[TrackerDue]:
    """Record containers' due dates; return the rows written.

    A change from history or a push is a row as it is (a double sync upserts the same
    row). A due date ``seen`` is a row only when it differs from the last row of its
    container (of any origin, so the date a push wrote is no change when a sync then sees
    it), with that row's ``to_due`` as its ``from_due``; a container seen for the first time
    starts its log (``from_due`` None), unless it has no due date.
    """
    seen = [d for d in dues if d.origin == "seen"]
    found = [d for d in dues if d.origin != "seen"]
    if seen:
        last: dict[tuple[str, str], str | None] = {}
        for source in sorted({d.source for d in seen}):
            for row in connection.execute(
                    select(TrackerDueRow.container, TrackerDueRow.to_due)
                    .where(TrackerDueRow.source == source)
                    .order_by(TrackerDueRow.at, TrackerDueRow.origin)):
                last[(source, row.container)] = row.to_due
        for due in seen:
            key = (due.source, due.container)
            if (key in last and last[key] != due.to_due) or (key not in last and due.to_due):
                found.append(due.model_copy(update={"from_due": last.get(key)}))
                last[key] = due.to_due
    upsert(connection, TrackerDueRow.__table__, [d.model_dump() for d in found],
           ["source", "container", "at", "origin"])
    return found


def record_push(store: Store, due: TrackerDue) -> None:
    """Record that ``stratmap push`` wrote the plan's due date to a container."""
    with store.transaction() as connection:
        write_tracker_dues(connection, [due.model_copy(update={"origin": "push"})])


def load_tracker_dues(store: Store, sources: Iterable[str], *,
                      containers: Iterable[tuple[str, str]] | None = None,
                      ) -> tuple[TrackerDue, ...]:
    """The due-date changes of the sources' containers, by source, container and time;
    with ``containers`` (``(source, container)`` pairs), only theirs (a Jira sync records
    every issue's due-date changes, a plan names a few epics)."""
    names = sorted(set(sources))
    wanted = None if containers is None else {c for c in containers if c[0] in names}
    if not names or wanted == set():
        return ()
    query = select(TrackerDueRow).where(TrackerDueRow.source.in_(names))
    if wanted is not None and len(wanted) <= 500:
        query = query.where(TrackerDueRow.container.in_(sorted({c for _, c in wanted})))
    with store.engine.connect() as connection:
        rows = connection.execute(query.order_by(
            TrackerDueRow.source, TrackerDueRow.container, TrackerDueRow.at,
            TrackerDueRow.origin))
        return tuple(TrackerDue(source=r.source, container=r.container, at=r.at,
                                origin=r.origin, from_due=r.from_due, to_due=r.to_due)
                     for r in rows
                     if wanted is None or (r.source, r.container) in wanted)


def save_snapshots(store: Store, snapshots: Sequence[Snapshot]) -> int:
    """Upsert snapshots on ``(plan, entity, as_of)`` in one transaction; return how many."""
    if not snapshots:
        return 0
    recorded = utcnow()
    # The fields as they are (no model_dump copy): a first run writes tens of thousands.
    rows = [{**s.__dict__, "status": s.status.value, "recorded_at": recorded}
            for s in snapshots]
    with store.transaction() as connection:
        upsert(connection, SnapshotRow.__table__, rows, ["plan", "entity", "as_of"])
    return len(rows)


def load_snapshots(store: Store, plan: str, *, until: datetime | None = None,
                   entity: str | None = None) -> list[Snapshot]:
    """Stored snapshots of a plan (up to ``until``), by entity then time."""
    query = select(SnapshotRow).where(SnapshotRow.plan == plan)
    if until is not None:
        query = query.where(SnapshotRow.as_of <= until)
    if entity is not None:
        query = query.where(SnapshotRow.entity == entity)
    query = query.order_by(SnapshotRow.entity, SnapshotRow.as_of)
    if store.engine.dialect.name == "sqlite":
        with _bulk():
            return _sqlite_snapshots(store, plan, until=until, entity=entity)
    # Constructed, not validated: the rows were valid snapshots when saved, and the moments
    # come back aware UTC (a report's history holds tens of thousands).
    make = Snapshot.model_construct
    with store.engine.connect() as connection:
        return [
            make(plan=r.plan, entity=r.entity, kind=r.kind, as_of=r.as_of,
                 status=Status(r.status), progress=r.progress, items_total=r.items_total,
                 items_done=r.items_done, points_total=r.points_total,
                 points_done=r.points_done, forecast=r.forecast, findings=r.findings,
                 finding_kinds=dict(r.finding_kinds or {}), origin=r.origin)
            for r in connection.execute(query)
        ]


def _sqlite_snapshots(store: Store, plan: str, *, until: datetime | None,
                      entity: str | None) -> list[Snapshot]:
    """:func:`load_snapshots` from SQLite through the driver, as the evidence is read
    (SQLAlchemy's processing per value was most of the read): moments are naive UTC text,
    ``finding_kinds`` JSON text; rows rebuilt with :func:`stored`, not validated again."""
    parse = datetime.fromisoformat
    sql = ("SELECT plan, entity, kind, as_of, status, progress, items_total, items_done, "
           "points_total, points_done, forecast, findings, finding_kinds, origin "
           "FROM snapshots WHERE plan = ?")
    params: list[object] = [plan]
    if until is not None:
        sql += " AND as_of <= ?"
        params.append(_stored_moment(until))
    if entity is not None:
        sql += " AND entity = ?"
        params.append(entity)
    sql += " ORDER BY entity, as_of"
    # A report's history is weeks x entities: one object per distinct text and per week
    # (immutable both), not one per row, and rows read as they come, not all first.
    strings: dict[Any, Any] = {}
    shared = strings.setdefault
    weeks: dict[str, datetime] = {}

    def week(text: str) -> datetime:
        moment = weeks.get(text)
        if moment is None:
            moment = weeks[text] = parse(text + "+00:00")
        return moment

    status = _by_value(Status)
    with store.engine.connect() as connection:
        cursor: Any = connection.connection.cursor()  # sqlite3's: iterable
        cursor.execute(sql, params)
        return [
            stored(Snapshot, {
                "plan": shared(r[0], r[0]), "entity": shared(r[1], r[1]),
                "kind": shared(r[2], r[2]), "as_of": week(r[3]),
                "status": status(r[4]), "progress": r[5], "items_total": r[6],
                "items_done": r[7], "points_total": r[8], "points_done": r[9],
                "forecast": None if r[10] is None else parse(r[10] + "+00:00"),
                "findings": r[11],
                "finding_kinds": dict(orjson.loads(r[12]) or {}) if r[12] else {},
                "origin": shared(r[13], r[13])})
            for r in cursor
        ]


def load_snapshot_points(store: Store, plan: str, *,
                         until: datetime | None = None) -> list[SnapshotPoint]:
    """:func:`load_snapshots`, only what a chart reads of each (:class:`SnapshotPoint`):
    the HTML report's history. Read as :func:`_sqlite_snapshots` reads, one object per
    distinct entity and week."""
    strings: dict[Any, Any] = {}
    shared = strings.setdefault
    weeks: dict[Any, datetime] = {}
    parse = datetime.fromisoformat
    sqlite = store.engine.dialect.name == "sqlite"

    def week(value: Any) -> datetime:
        moment = weeks.get(value)
        if moment is None:  # naive UTC text from SQLite, aware UTC from the others
            moment = weeks[value] = parse(value + "+00:00") if sqlite else value
        return moment

    point = SnapshotPoint._make
    with _bulk(), store.engine.connect() as connection:
        if sqlite:
            sql = ("SELECT plan, entity, as_of, progress, items_total, items_done, "
                   "points_total, points_done FROM snapshots WHERE plan = ?"
                   + (" AND as_of <= ?" if until is not None else "")
                   + " ORDER BY entity, as_of")
            rows: Any = connection.connection.cursor()  # sqlite3's: iterable
            rows.execute(sql, [plan] if until is None else [plan, _stored_moment(until)])
        else:
            query = select(SnapshotRow.plan, SnapshotRow.entity, SnapshotRow.as_of,
                           SnapshotRow.progress, SnapshotRow.items_total,
                           SnapshotRow.items_done, SnapshotRow.points_total,
                           SnapshotRow.points_done).where(SnapshotRow.plan == plan)
            if until is not None:
                query = query.where(SnapshotRow.as_of <= until)
            rows = connection.execute(query.order_by(SnapshotRow.entity, SnapshotRow.as_of))
        return [point((shared(r[0], r[0]), shared(r[1], r[1]), week(r[2]), r[3], r[4], r[5],
                       r[6], r[7])) for r in rows]


def snapshot_moments(store: Store, plan: str) -> set[datetime]:
    """The moments the plan as a whole has a stored snapshot at."""
    with store.engine.connect() as connection:
        return set(connection.scalars(
            select(SnapshotRow.as_of).where(SnapshotRow.plan == plan,
                                            SnapshotRow.entity == PLAN)
        ))


def save_measure_values(store: Store, plan: str, values: Sequence[MeasureValue], *,
                        synced_at: datetime) -> int:
    """Upsert a sync's measure values on ``(plan, measure, at)`` in one transaction.

    A value already stored keeps its ``first_seen`` and takes the source's current number;
    values the source no longer returns are kept (the history). Returns how many were new.
    """
    if not values:
        return 0
    rows = [{"plan": plan, "measure": v.measure, "at": v.at, "value": v.value,
             "first_seen": synced_at, "synced_at": synced_at} for v in values]
    unique = list({(r["measure"], r["at"]): r for r in rows}.values())
    table = MeasureValueRow.__table__
    assert isinstance(table, Table)
    with store.transaction() as connection:
        before = _measure_count(connection, plan)
        dialect = connection.dialect.name
        stmt = (_postgresql_insert(table) if dialect == "postgresql" else sqlite.insert(table))
        stmt = stmt.on_conflict_do_update(
            index_elements=["plan", "measure", "at"],
            set_={"value": stmt.excluded.value, "synced_at": stmt.excluded.synced_at})
        connection.execute(stmt, sorted(unique, key=lambda r: (r["measure"], r["at"])))
        return _measure_count(connection, plan) - before


def _measure_count(connection: Connection, plan: str) -> int:
    return int(connection.scalar(select(func.count()).select_from(MeasureValueRow).where(
        MeasureValueRow.plan == plan)) or 0)


def measure_watermark(store: Store, plan: str, measure: str) -> datetime | None:
    """The time of the measure's latest stored value (None before its first)."""
    with store.engine.connect() as connection:
        latest: datetime | None = connection.scalar(
            select(func.max(MeasureValueRow.at)).where(MeasureValueRow.plan == plan,
                                                       MeasureValueRow.measure == measure))
        if latest is not None and latest.tzinfo is None:  # max() bypasses the column type
            latest = datetime.fromisoformat(str(latest)).replace(tzinfo=UTC)
        return latest


def load_measure_values(store: Store, plan: str) -> tuple[MeasureValue, ...]:
    """Every stored value of the plan's measures, by measure then time."""
    query = (select(MeasureValueRow.measure, MeasureValueRow.at, MeasureValueRow.value)
             .where(MeasureValueRow.plan == plan)
             .order_by(MeasureValueRow.measure, MeasureValueRow.at))
    with store.engine.connect() as connection:
        return tuple(MeasureValue(measure=r.measure, at=r.at, value=r.value)
                     for r in connection.execute(query))


__all__ = [
    "DEFAULT_DB", "Base", "Store", "database_url", "load_marks", "load_measure_values",
    "load_snapshots", "measure_watermark", "migrate", "plan_store", "redact_url", "save_marks",
    "save_measure_values", "save_snapshots", "snapshot_moments",
]
