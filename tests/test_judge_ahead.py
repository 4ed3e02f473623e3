"""A run judges the plan while its sources sync (``flows.run.JudgedAhead``), and reports that
judgement only when the syncs wrote nothing new: the scheduled run's usual case costs the
longer of the sync and the judgement, not their sum, and never reports stale evidence."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratmap.connectors.base import Window
from stratmap.flows import pipeline
from stratmap.flows import run as run_module
from stratmap.flows.run import Tracked, track
from stratmap.models.planfile import parse_plan
from stratmap.models.records import Page, StatusCategory, WorkItem
from stratmap.models.report import Status

AS_OF = datetime(2027, 3, 1, 9, tzinfo=UTC)
T0 = AS_OF - timedelta(days=20)
AHEAD = "stratmap-judge-ahead"
PLAN = parse_plan("""\
version: 1
name: P
leader: a
people: {a: {name: A}}
sources:
  t: {kind: jsonl, path: export}
goals:
  - id: g
    title: G
    owner: a
    milestones:
      - id: m
        title: M
        owner: a
        start: 2027-01-01
        due: 2027-06-01
        work: [{source: t, keys: [T-0, T-1]}]
""")


class Tracker:
    """A tracker in memory that leaves out what the store holds as it is, as the trackers'
    connectors do (``Window.stored``)."""

    kind = "memory"
    name = "t"
    ordered = True
    default_overlap = timedelta(minutes=15)

    def __init__(self) -> None:
        self.items = {f"T-{n}": self._item(n, "In Progress", T0) for n in range(2)}

    @staticmethod
    def _item(n: int, status: str, updated: datetime) -> WorkItem:
        category = StatusCategory.DONE if status == "Done" else StatusCategory.IN_PROGRESS
        return WorkItem(source="t", key=f"T-{n}", title=f"T {n}", status=status,
                        status_category=category, created=T0, updated=updated,
                        resolved=updated if status == "Done" else None)

    def finish(self, n: int, at: datetime) -> None:
        self.items[f"T-{n}"] = self._item(n, "Done", at)

    def fetch(self, window: Window) -> Iterator[Page]:
        news = tuple(i for i in sorted(self.items.values(), key=lambda i: i.updated)
                     if (window.since is None or i.updated >= window.since)
                     and window.stored.get(i.key) != i.updated)
        yield Page(source="t", items=news, cursor=max((i.updated for i in news), default=None),
                   requests=1)

    def resolve(self, selector: dict[str, object]) -> frozenset[str] | None:
        return None

    def close(self) -> None:
        pass


@pytest.fixture
def tracker(monkeypatch: pytest.MonkeyPatch) -> Tracker:
    fake = Tracker()
    monkeypatch.setattr(pipeline, "connector_for", lambda *args, **kwargs: fake)
    return fake


def tracked(db: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
            tmp_path: Path) -> tuple[Tracked, dict[str, Any]]:
    """One run; with how it read the evidence after its syncs (``all`` again, or ``merged``
    the items they wrote) and on which threads the plan was judged."""
    seen: dict[str, Any] = {"all": 0}
    real = run_module.read_and_judge

    def again(*args: Any) -> Any:
        seen["all"] += 1
        return real(*args)

    monkeypatch.setattr(run_module, "read_and_judge", again)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="stratmap"):
        result = track(PLAN, plan_dir=tmp_path, db=db, as_of=AS_OF)
    seen["judged_on"] = sorted(r.threadName for r in caplog.records
                               if r.getMessage().startswith("judged "))
    seen["merged"] = [r.getMessage() for r in caplog.records
                      if "synced items read again" in r.getMessage()]
    return result, seen


def offline(db: str, tmp_path: Path) -> str:
    """The report of the same store judged from scratch, after the run."""
    return track(PLAN, plan_dir=tmp_path, db=db, as_of=AS_OF, offline=True,
                 record=False).report.to_json()


def test_a_run_with_nothing_new_reports_what_it_judged_while_syncing(
        tracker: Tracker, store_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    first, seen = tracked(store_url, monkeypatch, caplog, tmp_path)
    assert first.synced["t"].changed and first.synced["t"].written == {"T-0", "T-1"}
    # The store was empty while the first sync ran: judged again after it, from the two
    # items merged into what was read (nothing), whether the judgement ahead had got as
    # far as judging when the page stopped it or not.
    assert seen["judged_on"][0] == "MainThread" and len(seen["merged"]) == 1
    assert first.report.to_json() == offline(store_url, tmp_path)
    again, seen = tracked(store_url, monkeypatch, caplog, tmp_path)
    assert not again.synced["t"].changed and again.synced["t"].items == 0
    assert seen == {"all": 0, "judged_on": [AHEAD], "merged": []}
    assert again.report.to_json() == first.report.to_json()


def test_a_run_whose_sync_brings_news_reads_just_those_items_again(
        tracker: Tracker, store_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    first, _ = tracked(store_url, monkeypatch, caplog, tmp_path)
    assert first.report.goals[0].milestones[0].progress == 0
    tracker.finish(0, AS_OF - timedelta(days=1))
    again, seen = tracked(store_url, monkeypatch, caplog, tmp_path)
    assert again.synced["t"].written == {"T-0"}
    # What was judged while syncing saw the store before the news: not what is reported.
    assert seen["all"] == 0 and seen["judged_on"][0] == "MainThread"
    assert [m.split(": ")[1].split(" in ")[0] for m in seen["merged"]] == [
        "2 items, 0 status changes, 0 comments (1 synced items read again)"]
    assert again.report.goals[0].milestones[0].progress == 0.5
    assert again.report.to_json() == offline(store_url, tmp_path)
    # Past WRITTEN_KEPT items, everything is read again after the syncs.
    monkeypatch.setattr(run_module, "WRITTEN_KEPT", 0)
    tracker.finish(1, AS_OF - timedelta(hours=1))
    last, seen = tracked(store_url, monkeypatch, caplog, tmp_path)
    assert seen["all"] == 1 and seen["merged"] == []
    milestone = last.report.goals[0].milestones[0]
    assert milestone.progress == 1 and milestone.status is Status.DONE
    assert last.report.to_json() == offline(store_url, tmp_path)


def test_a_judgement_ahead_that_fails_leaves_the_run_to_judge_after_its_syncs(
        tracker: Tracker, store_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """Whatever goes wrong on the thread (the store unreadable for a moment, a bug) is
    not the run's error: the run reads and judges after its syncs, and reports that."""
    import threading

    first, _ = tracked(store_url, monkeypatch, caplog, tmp_path)
    real = run_module.read_evidence

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == AHEAD:
            raise OSError("disk I/O error")
        return real(*args, **kwargs)

    monkeypatch.setattr(run_module, "read_evidence", flaky)
    again, seen = tracked(store_url, monkeypatch, caplog, tmp_path)
    assert not again.synced["t"].changed
    assert seen["all"] == 1 and seen["judged_on"] == ["MainThread"]
    assert again.report.to_json() == first.report.to_json()
