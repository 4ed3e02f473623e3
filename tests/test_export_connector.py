"""The export connector (JSON lines and CSV) against the shared contract, and its errors."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stratmap.connectors.base import FatalSourceError, Window
from stratmap.connectors.export import ExportConnector
from tests.contract.suite import T0, ConnectorContract, SeedItem


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _category(status: str) -> str:
    return {"To Do": "todo", "Done": "done"}.get(status, "in_progress")


class ExportHarness:
    http = False

    def __init__(self, folder: Path, fmt: str) -> None:
        self.folder = folder
        self.fmt = fmt
        self.items: dict[str, SeedItem] = {}

    def seed(self, items: list[SeedItem]) -> None:
        self.items = {i.key: i for i in items}
        self._write()

    def transition(self, key: str, *, at: datetime, author: str, to: str) -> None:
        item = self.items[key]
        item.history.append((at, author, item.status, to))
        item.status = to
        self._write()

    def key_of(self, key: str) -> str:
        return key

    def connector(self) -> ExportConnector:
        return ExportConnector("export", self.folder, fmt=self.fmt, page_size=50)

    def fail_next(self, status: int, *, times: int = 1, retry_after: str | None = None) -> None:
        raise NotImplementedError

    def _write(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.fmt == "jsonl":
            with (self.folder / "items.jsonl").open("w") as out:
                for item in self.items.values():
                    out.write(json.dumps({
                        "key": item.key, "title": item.title, "status": item.status,
                        "assignee": item.assignee, "created": _iso(item.created),
                        "updated": _iso(item.updated),
                        "history": [{"at": _iso(a), "author": w, "from": f, "to": t}
                                    for a, w, f, t in item.history],
                        "comments": [{"id": f"{item.key}-c{n}", "at": _iso(a), "author": w,
                                      "body": b} for n, (a, w, b) in enumerate(item.comments)],
                    }) + "\n")
            return
        with (self.folder / "items.csv").open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["key", "title", "status", "category", "assignee", "created",
                             "updated", "component"])
            for item in self.items.values():
                writer.writerow([item.key, item.title, item.status, _category(item.status),
                                 item.assignee, _iso(item.created), _iso(item.updated), "web"])
        with (self.folder / "history.csv").open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["key", "id", "at", "author", "from", "to"])
            for item in self.items.values():
                for n, (a, w, f, t) in enumerate(item.history):
                    writer.writerow([item.key, f"{item.key}-h{n}", _iso(a), w, f, t])
        with (self.folder / "comments.csv").open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["key", "id", "at", "author", "body"])
            for item in self.items.values():
                for n, (a, w, b) in enumerate(item.comments):
                    writer.writerow([item.key, f"{item.key}-c{n}", _iso(a), w, b])


class TestJsonLinesContract(ConnectorContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ExportHarness:
        return ExportHarness(tmp_path / "export", "jsonl")


class TestCsvContract(ConnectorContract):
    @pytest.fixture
    def harness(self, tmp_path: Path) -> ExportHarness:
        return ExportHarness(tmp_path / "export", "csv")


WINDOW = Window(since=None, until=T0 + timedelta(days=365))


def test_csv_extra_columns_become_fields_and_quoted_bodies_survive(tmp_path: Path) -> None:
    harness = ExportHarness(tmp_path, "csv")
    item = SeedItem(key="site#1", title='Says "hi", twice', created=T0,
                    comments=[(T0 + timedelta(hours=1), "lead", "line one,\nline two")])
    harness.seed([item])
    pages = list(harness.connector().fetch(WINDOW))
    (stored,) = pages[0].items
    assert stored.fields == {"component": "web"}
    assert stored.title == 'Says "hi", twice'
    assert pages[0].comments[0].body == "line one,\nline two"


def test_missing_export_names_the_source_and_the_file(tmp_path: Path) -> None:
    connector = ExportConnector("site", tmp_path / "nowhere", fmt="csv")
    with pytest.raises(FatalSourceError) as raised:
        list(connector.fetch(WINDOW))
    assert "source 'site'" in str(raised.value)
    assert "items.csv" in str(raised.value)


def test_a_broken_line_is_named_by_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text(
        json.dumps({"key": "A-1", "status": "Open", "created": "2026-01-01"}) + "\n{oops\n")
    with pytest.raises(FatalSourceError) as raised:
        list(ExportConnector("jira", tmp_path, fmt="jsonl").fetch(WINDOW))
    assert "items.jsonl:2" in str(raised.value)


def test_an_item_without_created_is_refused_with_a_hint(tmp_path: Path) -> None:
    (tmp_path / "items.jsonl").write_text(json.dumps({"key": "A-1", "status": "Open"}) + "\n")
    with pytest.raises(FatalSourceError) as raised:
        list(ExportConnector("jira", tmp_path, fmt="jsonl").fetch(WINDOW))
    assert "missing 'created'" in str(raised.value)


@pytest.mark.parametrize(("status", "category"), [
    ("Done", "done"), ("Closed", "done"), ("Backlog", "todo"), ("In Review", "in_progress"),
    ("Shipped", "done"),  # via status_done
])
def test_status_names_map_to_categories(tmp_path: Path, status: str, category: str) -> None:
    (tmp_path / "items.jsonl").write_text(
        json.dumps({"key": "A-1", "status": status, "created": "2026-01-01"}) + "\n")
    connector = ExportConnector("jira", tmp_path, fmt="jsonl", status_done=["Shipped"])
    (page,) = connector.fetch(WINDOW)
    assert page.items[0].status_category.value == category


def test_the_window_keeps_only_items_updated_since(tmp_path: Path) -> None:
    harness = ExportHarness(tmp_path, "jsonl")
    harness.seed([SeedItem(key=f"A-{n}", title="", created=T0 + timedelta(days=n))
                  for n in range(10)])
    since = T0 + timedelta(days=7)
    pages = list(harness.connector().fetch(Window(since=since, until=WINDOW.until)))
    assert sorted(i.key for p in pages for i in p.items) == ["A-7", "A-8", "A-9"]
