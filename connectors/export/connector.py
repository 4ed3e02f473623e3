"""Tracker exports on disk: JSON lines or CSV files (source kinds ``jsonl`` and ``csv``).

A folder holds one export. JSON lines: ``items.jsonl`` (one item a line, with its
``history`` and ``comments`` inside) and optionally ``accounts.jsonl``. CSV: ``items.csv``
and optionally ``history.csv``, ``comments.csv`` and ``accounts.csv``. The README's "Export
files" section lists every column. A path to a single ``.jsonl`` or ``.csv`` file works too.

The connector streams the items file page by page and reads history and comments once per
fetch, so the window (``updated >= since``) and the paging behave like a remote tracker's.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from stratmap.connectors.base import FatalSourceError, Window
from stratmap.models.records import (
    Account,
    Comment,
    Page,
    RawPayload,
    StatusCategory,
    StatusChange,
    WorkItem,
)

DONE_STATUSES = frozenset(
    {"done", "closed", "resolved", "complete", "completed", "released", "won't do", "cancelled",
     "canceled", "rejected"}
)
TODO_STATUSES = frozenset(
    {"to do", "todo", "open", "new", "backlog", "selected for development", "reopened"}
)
ITEM_COLUMNS = frozenset(
    {"key", "title", "type", "status", "category", "assignee", "reporter", "created",
     "updated", "resolved", "due", "parent", "labels", "milestone", "points", "url", "fields",
     "history", "comments"}
)


def category_of(status: str, category: str | None, extra_done: frozenset[str]) -> StatusCategory:
    """The status category: the export's own if given, else guessed from the status name."""
    if category:
        value = category.strip().lower().replace(" ", "_").replace("-", "_")
        aliases = {"new": "todo", "to_do": "todo", "indeterminate": "in_progress"}
        return StatusCategory(aliases.get(value, value))
    name = status.strip().lower()
    if name in DONE_STATUSES or name in extra_done:
        return StatusCategory.DONE
    if name in TODO_STATUSES:
        return StatusCategory.TODO
    return StatusCategory.IN_PROGRESS


def parse_moment(value: str) -> datetime:
    """ISO 8601; a bare date is midnight UTC; a naive datetime is taken as UTC."""
    text = value.strip()
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), datetime.min.time(), tzinfo=UTC)
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


class ExportConnector:
    """Reads a JSON lines or CSV export folder as if it were a tracker."""

    kind: ClassVar[str] = "export"
    ordered = False

    def __init__(self, name: str, path: Path, *, fmt: str, page_size: int = 200,
                 status_done: Iterable[str] = ()) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"unknown export format {fmt!r}")
        self.name = name
        self.fmt = fmt
        self.path = path
        self.page_size = page_size
        self.extra_done = frozenset(s.strip().lower() for s in status_done)

    # -- files ---------------------------------------------------------------------------

    def _file(self, stem: str, *, required: bool) -> Path | None:
        if self.path.is_file():
            return self.path if stem == "items" else None
        candidate = self.path / f"{stem}.{self.fmt}"
        if candidate.is_file():
            return candidate
        if required:
            raise FatalSourceError(
                self.name,
                f"no {candidate.name} in {self.path}",
                hint=f"point the source's path at the export folder holding {candidate.name}",
            )
        return None

    def _rows(self, path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        """(line number, row) for each record of a JSON lines or CSV file."""
        try:
            with path.open(encoding="utf-8", newline="") as handle:
                if self.fmt == "csv":
                    reader = csv.DictReader(handle)
                    for row in reader:
                        yield reader.line_num, row
                    return
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as error:
                        raise FatalSourceError(
                            self.name, f"{path}:{number}: not JSON ({error.msg})",
                            hint="fix or remove that line of the export",
                        ) from error
                    if not isinstance(record, dict):
                        raise FatalSourceError(self.name, f"{path}:{number}: not a JSON object")
                    yield number, record
        except OSError as error:
            raise FatalSourceError(self.name, f"cannot read {path}: {error.strerror}") from error

    # -- normalizing ---------------------------------------------------------------------

    def _item(self, where: str, row: dict[str, Any]) -> WorkItem:
        labels = row.get("labels") or []
        if isinstance(labels, str):
            labels = [part.strip() for part in labels.split(";") if part.strip()]
        fields = dict(row.get("fields") or {})
        fields.update({k: str(v) for k, v in row.items()
                       if k not in ITEM_COLUMNS and k is not None and not _blank(v)})
        points = row.get("points")
        status = str(row.get("status") or "")
        try:
            return WorkItem(
                source=self.name,
                key=str(row["key"]),
                title=str(row.get("title") or ""),
                item_type=row.get("type") or None,
                status=status,
                status_category=category_of(status, row.get("category") or None, self.extra_done),
                assignee=row.get("assignee") or None,
                reporter=row.get("reporter") or None,
                created=parse_moment(row["created"]),
                updated=parse_moment(row.get("updated") or row["created"]),
                resolved=None if _blank(row.get("resolved")) else parse_moment(row["resolved"]),
                due=None if _blank(row.get("due")) else parse_moment(row["due"]),
                parent=row.get("parent") or None,
                labels=tuple(labels),
                container=row.get("milestone") or None,
                points=None if points is None or _blank(points) else float(points),
                url=row.get("url") or None,
                fields={k: str(v) for k, v in fields.items()},
            )
        except (KeyError, ValueError, TypeError, ValidationError) as error:
            raise FatalSourceError(
                self.name, f"{where}: not a valid item ({_why(error)})",
                hint="each item needs key, status and created (ISO 8601)",
            ) from error

    def _change(self, where: str, key: str, index: int, row: dict[str, Any]) -> StatusChange:
        try:
            to_status = str(row["to"])
            from_status = row.get("from") or None
            return StatusChange(
                source=self.name, item_key=key, change_id=str(row.get("id") or index),
                at=parse_moment(row["at"]), author=row.get("author") or None,
                from_status=from_status, to_status=to_status,
                from_category=category_of(from_status, None, self.extra_done)
                if from_status else None,
                to_category=category_of(to_status, row.get("to_category") or None,
                                        self.extra_done),
            )
        except (KeyError, ValueError, ValidationError) as error:
            raise FatalSourceError(
                self.name, f"{where}: not a valid status change ({_why(error)})",
                hint="each change needs at (ISO 8601) and to (the new status)",
            ) from error

    def _comment(self, where: str, key: str, index: int, row: dict[str, Any]) -> Comment:
        try:
            return Comment(
                source=self.name, item_key=key, comment_id=str(row.get("id") or index),
                at=parse_moment(row["at"]), author=row.get("author") or None,
                body=str(row.get("body") or ""),
            )
        except (KeyError, ValueError, ValidationError) as error:
            raise FatalSourceError(
                self.name, f"{where}: not a valid comment ({_why(error)})",
                hint="each comment needs at (ISO 8601)",
            ) from error

    def _side_tables(self) -> tuple[dict[str, list[tuple[str, dict[str, Any]]]],
                                    dict[str, list[tuple[str, dict[str, Any]]]]]:
        history: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        comments: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        if self.fmt != "csv":
            return history, comments
        for stem, table in (("history", history), ("comments", comments)):
            path = self._file(stem, required=False)
            if path is None:
                continue
            for number, row in self._rows(path):
                table[str(row.get("key"))].append((f"{path}:{number}", row))
        return history, comments

    def accounts(self) -> tuple[Account, ...]:
        path = self._file("accounts", required=False)
        if path is None:
            return ()
        return tuple(
            Account(source=self.name, account_id=str(row["id"]),
                    display_name=row.get("name") or None, email=row.get("email") or None)
            for _number, row in self._rows(path)
            if not _blank(row.get("id"))
        )

    # -- the Connector protocol ----------------------------------------------------------

    def fetch(self, window: Window) -> Iterator[Page]:
        items_path = self._file("items", required=True)
        assert items_path is not None
        history, comments = self._side_tables()
        accounts = self.accounts()
        fetched_at = window.until
        batch: list[tuple[WorkItem, list[StatusChange], list[Comment], dict[str, Any]]] = []
        for number, row in self._rows(items_path):
            where = f"{items_path}:{number}"
            item = self._item(where, row)
            if window.since is not None and item.updated < window.since:
                continue
            changes_in = [(where, h) for h in row.get("history") or []] + history.get(item.key, [])
            comments_in = [(where, c) for c in row.get("comments") or []] + comments.get(
                item.key, []
            )
            changes = [self._change(w, item.key, i, h) for i, (w, h) in enumerate(changes_in)]
            notes = [self._comment(w, item.key, i, c) for i, (w, c) in enumerate(comments_in)]
            batch.append((item, changes, notes, row))
            if len(batch) >= self.page_size:
                yield self._page(batch, accounts, items_path, fetched_at)
                accounts = ()
                batch = []
        if batch or accounts:
            yield self._page(batch, accounts, items_path, fetched_at)

    def _page(self, batch: list[tuple[WorkItem, list[StatusChange], list[Comment],
                                      dict[str, Any]]],
              accounts: tuple[Account, ...], path: Path, fetched_at: datetime) -> Page:
        return Page(
            source=self.name,
            items=tuple(item for item, _, _, _ in batch),
            changes=tuple(c for _, changes, _, _ in batch for c in changes),
            comments=tuple(c for _, _, notes, _ in batch for c in notes),
            accounts=accounts,
            raw=tuple(
                RawPayload(source=self.name, key=item.key, endpoint=f"file://{path.resolve()}",
                           fetched_at=fetched_at, payload=dict(row))
                for item, _, _, row in batch
            ),
            cursor=max((item.updated for item, _, _, _ in batch), default=None),
            requests=1,
        )

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        return None

    def close(self) -> None:
        return None


def _why(error: BaseException) -> str:
    if isinstance(error, KeyError):
        return f"missing {error.args[0]!r}"
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(error)
