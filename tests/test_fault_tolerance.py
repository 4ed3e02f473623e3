"""The sync survives what real trackers and real machines do to it, end to end.

A real :class:`~connectors.jira.JiraConnector` reads the local Jira
(:mod:`tests.fakes.jira_server`) through :func:`flows.pipeline.sync_source` into a real store,
and every run is compared table by table with a clean sync of the same site:

* the sync process is killed (SIGKILL) at ten seeded requests, then run again;
* 20% of requests fail with 500/503, some with 429 and ``Retry-After``;
* a read timeout mid-page, a connection reset, a truncated JSON body: once, and for good;
* two runs of one plan at the same time, on SQLite and PostgreSQL;
* payload drift: missing fields, nulls, an unknown status category, a 1 MB comment, an
  unknown user.

Everything is seeded and bounded: small sites, short timeouts, waits on a fake clock except
where the server's log must show real time passing (``Retry-After``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from stratmap.connectors.base import RetriableError, RetryPolicy, SourceError
from stratmap.connectors.jira import JiraConnector
from stratmap.flows.pipeline import sync_source
from stratmap.judgement import judge
from stratmap.models.plan import Plan
from stratmap.models.store import Base, Store
from stratmap.publish.markdown import render
from tests.fakes.jira_server import (
    Deployment,
    FakeClock,
    FakeJira,
    RecordedRequest,
    connector_for,
)

# Kills syncs in subprocesses and runs the Jira fake over HTTP: seconds per test.
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STARTED = T0 + timedelta(days=90)
TABLES = ("items", "status_changes", "comments", "accounts", "raw_payloads", "selections",
          "sources")
VOLATILE = {
    "raw_payloads": {"fetched_at"},
    "sources": {"items_seen", "last_sync_started", "last_sync_finished", "last_reconciled"},
}
"""Columns that say when or how often a sync ran, not what it stored."""
KILL_SEEDS = range(10)


# -- helpers -------------------------------------------------------------------------------


def seed_site(fake: FakeJira, count: int = 120, *, seed: int = 3) -> None:
    """``count`` issues two hours apart; some with more history and comments than a search
    embeds (so completing them takes more requests), all before ``STARTED``."""
    rng = random.Random(seed)
    flow = ["In Progress", "In Review", "Done"]
    for n in range(1, count + 1):
        key = f"WEB-{n}"
        created = T0 + timedelta(hours=2 * n)
        fake.add_issue(key, created=created, assignee=rng.choice(["ann", "bob", "cy", None]),
                       labels=rng.sample(["api", "ui", "ops"], rng.randint(0, 2)))
        moment = created
        for step in range(rng.choice([0, 1, 2, 3, 8])):
            moment += timedelta(minutes=rng.randint(1, 600))
            if step < len(flow):
                fake.transition(key, flow[step], at=moment, author=rng.choice(["ann", "bob"]))
            else:
                fake.edit(key, at=moment, author="cy", summary=f"Issue {key} v{step}")
        for _ in range(rng.choice([0, 0, 1, 2, 7])):
            moment += timedelta(minutes=rng.randint(1, 600))
            fake.add_comment(key, f"note on {key}", at=moment, author=rng.choice(["ann", "dee"]))


def snapshot(url: str) -> dict[str, list[str]]:
    """Every table's rows, in a stable order, without the columns that only time a run."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            out: dict[str, list[str]] = {}
            for name in TABLES:
                skip = VOLATILE.get(name, set())
                rows = connection.execute(select(Base.metadata.tables[name])).mappings()
                out[name] = sorted(
                    json.dumps({k: v for k, v in row.items() if k not in skip},
                               sort_keys=True, default=_moment)
                    for row in rows
                )
            return out
    finally:
        engine.dispose()


def _moment(value: object) -> str:
    if isinstance(value, bytes):  # a compressed raw payload: compared as its JSON
        import zstandard

        return zstandard.ZstdDecompressor().decompress(value).decode()
    assert isinstance(value, datetime) and value.tzinfo is not None, value
    return value.astimezone(UTC).isoformat()


def sync(fake: FakeJira, url: str, *, deployment: str, **config: Any) -> None:
    with Store(url) as store, connector_for(fake, deployment=deployment, page_size=20,
                                            **config) as connector:
        sync_source(connector, store, started=STARTED)


def clean(fake: FakeJira, folder: Path, deployment: str) -> dict[str, list[str]]:
    """A clean sync of the site, as the reference every test compares with. The request
    log then holds the clean run's requests only until the caller clears it."""
    fake.clear_log()
    url = f"sqlite:///{folder / 'clean.db'}"
    sync(fake, url, deployment=deployment)
    return snapshot(url)


def twins(requests: list[RecordedRequest]) -> dict[str, list[RecordedRequest]]:
    """Requests grouped by what they asked (a retry asks exactly the same)."""
    groups: dict[str, list[RecordedRequest]] = {}
    for request in requests:
        groups.setdefault(_asked(request), []).append(request)
    return groups


def _asked(request: RecordedRequest) -> str:
    return json.dumps([request.method, request.path, request.params, request.body],
                      sort_keys=True)


@pytest.fixture(params=["cloud", "datacenter"])
def site(request: pytest.FixtureRequest) -> Iterator[FakeJira]:
    with FakeJira(deployment=request.param) as fake:
        seed_site(fake)
        yield fake


# -- SIGKILL at ten seeded points --------------------------------------------------------


@pytest.mark.parametrize("seed", KILL_SEEDS)
def test_a_sync_killed_at_any_request_then_rerun_equals_a_clean_sync(
    seed: int, tmp_path: Path
) -> None:
    deployment: Deployment = "cloud" if seed % 2 == 0 else "datacenter"
    with FakeJira(deployment=deployment) as fake:
        seed_site(fake)
        reference = clean(fake, tmp_path, deployment)
        total = len(fake.requests)
        fake.clear_log()
        # The seeded kill point: the k-th request of the run, anywhere from the site reads
        # through the last page (with reads ahead and writes in flight).
        kill_at = random.Random(seed).randint(3, total - 1)
        killed = tmp_path / "killed.db"
        child = _killed_sync(fake, killed, deployment, kill_at=kill_at)
        assert child == -signal.SIGKILL, f"the sync was not killed (exit {child})"

        with Store(f"sqlite:///{killed}") as store:
            _assert_the_watermark_covers_only_written_rows(fake, store)
            with connector_for(fake, deployment=deployment, page_size=20) as connector:
                sync_source(connector, store, started=STARTED)
        assert snapshot(f"sqlite:///{killed}") == reference


def _killed_sync(fake: FakeJira, db: Path, deployment: str, *, kill_at: int) -> int:
    """Run the sync in a child process and SIGKILL it as the server takes request ``kill_at``."""
    seen = 0
    lock = threading.Lock()
    pid: list[int] = []

    def kill(request: RecordedRequest) -> None:
        nonlocal seen
        with lock:
            seen += 1
            if seen == kill_at and pid:
                os.kill(pid[0], signal.SIGKILL)

    fake.on_request(kill)
    options = {"url": fake.url, "db": f"sqlite:///{db}", "deployment": deployment,
               "started": STARTED.isoformat(), "token": fake.token,
               "email": fake.email if fake.cloud else None, "page_size": 20}
    process = subprocess.Popen([sys.executable, "-m", "tests.fakes.sync_process",
                                json.dumps(options)], cwd=ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with lock:
        pid.append(process.pid)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        fake.hooks.remove(kill)
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode not in (0, -signal.SIGKILL):
        pytest.fail(f"the sync failed by itself: {stderr.decode()[-2000:]}")
    return process.returncode


def _assert_the_watermark_covers_only_written_rows(fake: FakeJira, store: Store) -> None:
    """Every issue at or before the watermark is stored whole: itself, its history, its
    comments. (What lies after it may be there too: the rerun re-reads it.)"""
    mark = store.watermark("jira")
    if mark is None:
        return
    evidence = store.evidence(["jira"])
    stored = {item.key: item for item in evidence.items}
    for issue in fake.issues.values():
        if issue.updated > mark:
            continue
        assert issue.key in stored, f"{issue.key} is covered by the watermark but not stored"
        assert stored[issue.key].updated == issue.updated
        changes = [c for c in evidence.changes if c.item_key == issue.key]
        assert len(changes) == sum(1 for h in issue.histories
                                   if any(i["field"] == "status" for i in h.items))
        assert len([c for c in evidence.comments if c.item_key == issue.key]) == len(
            issue.comments)


# -- 20% errors and rate limits -----------------------------------------------------------


def _seeded_failures(fake: FakeJira, seed: int) -> dict[int, str]:
    """Fail about 20% of requests with 500 or 503 and about 3% with 429 (Retry-After: 1).

    Whether an attempt fails depends only on what it asks and how many times it was asked
    before, never on thread timing, so the run is the same every time.
    """
    attempts: dict[str, int] = {}
    decided: dict[int, str] = {}

    def decide(request: RecordedRequest) -> None:
        asked = _asked(request)
        with fake._lock:
            attempt = attempts.get(asked, 0)
            attempts[asked] = attempt + 1
        digest = hashlib.sha256(f"{seed}:{asked}:{attempt}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        outcome = ("500" if draw < 0.10 else "503" if draw < 0.20
                   else "429" if draw < 0.23 and attempt == 0 else "")
        decided[id(request)] = outcome

    def answer(status: str) -> Callable[[RecordedRequest], bool]:
        return lambda request: decided.get(id(request)) == status

    fake.on_request(decide)
    fake.inject("*", status=429, retry_after="1", times=None, when=answer("429"))
    fake.inject("*", status=500, times=None, when=answer("500"))
    fake.inject("*", status=503, times=None, when=answer("503"))
    return decided


def test_errors_on_a_fifth_of_requests_and_rate_limits_still_sync_everything(
    site: FakeJira, tmp_path: Path
) -> None:
    deployment = site.deployment
    reference = clean(site, tmp_path, deployment)
    site.clear_log()
    _seeded_failures(site, seed=11)
    url = f"sqlite:///{tmp_path / 'faulty.db'}"
    config = site.source_config(deployment=deployment, page_size=20)
    with Store(url) as store, JiraConnector(
        "jira", config, token=site.token, rng=random.Random(5),
        retry_policy=RetryPolicy(attempts=10, base_delay=0.01, max_delay=0.05),
    ) as connector:
        sync_source(connector, store, started=STARTED)
    assert snapshot(url) == reference

    log = site.requests
    failed = [r for r in log if r.status in (500, 503)]
    limited = [r for r in log if r.status == 429]
    assert len(failed) >= 0.1 * len(log), (len(failed), len(log))
    assert limited, "the seed must rate-limit at least one request"
    groups = twins(log)
    for request in limited:
        tries = groups[_asked(request)]
        after = tries[tries.index(request) + 1]
        waited = after.monotonic - request.monotonic
        assert waited >= 1.0, f"{request.method} {request.path} retried after {waited:.3f}s"


# -- broken responses ---------------------------------------------------------------------

BROKEN = [
    pytest.param("stall", id="read-timeout-mid-page"),
    pytest.param("delay", id="read-timeout-before-headers"),
    pytest.param("reset", id="connection-reset"),
    pytest.param("truncate", id="truncated-json"),
    pytest.param("cut", id="body-cut-short"),
]


def _search_path(fake: FakeJira) -> str:
    return "/rest/api/3/search/jql" if fake.cloud else "/rest/api/2/search"


@pytest.mark.parametrize("action", BROKEN)
def test_a_broken_page_is_retried(site: FakeJira, tmp_path: Path, action: Any) -> None:
    reference = clean(site, tmp_path, site.deployment)
    site.clear_log()
    # A later page's first two answers break; the third answer is whole.
    later = (lambda r: (r.body or {}).get("nextPageToken") is not None) if site.cloud else (
        lambda r: (r.body or {}).get("startAt") == 40)
    site.inject(_search_path(site), action=action, delay=1.0, times=2, when=later)
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    sync(site, url, deployment=site.deployment, timeout=0.3)
    assert snapshot(url) == reference
    broken = [r for r in site.requests if r.fault == action]
    assert len(broken) == 2
    retried = twins(site.requests)[_asked(broken[0])]
    assert len(retried) == 3


@pytest.mark.parametrize("action", BROKEN)
def test_a_page_broken_for_good_fails_naming_the_source(
    site: FakeJira, tmp_path: Path, action: Any
) -> None:
    site.inject(_search_path(site), action=action, delay=1.0, times=None)
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    clock = FakeClock()
    with Store(url) as store, JiraConnector(
        "tracker", site.source_config(deployment=site.deployment, page_size=20, timeout=0.3),
        token=site.token, sleep=clock.sleep, clock=clock.monotonic, rng=random.Random(1),
        retry_policy=RetryPolicy(attempts=3),
    ) as connector:
        with pytest.raises(RetriableError) as raised:
            sync_source(connector, store, started=STARTED)
        assert store.counts()["items"] == 0
        assert store.watermark("tracker") is None
    message = str(raised.value)
    assert message.startswith("source 'tracker': gave up after 3 attempts"), message
    assert isinstance(raised.value, SourceError) and raised.value.source == "tracker"
    assert len(clock.waits) == 2  # three attempts, two waits between them


# -- two runs at once ---------------------------------------------------------------------


def test_two_runs_of_one_plan_at_once_duplicate_nothing(store_url: str, tmp_path: Path) -> None:
    """No lock of stratmap's own: the database keeps them apart. Rows are upserted on their
    natural primary keys (INSERT ... ON CONFLICT), and the watermark only moves by a single
    conditional UPDATE (``watermark < new``), atomic on SQLite and PostgreSQL alike."""
    with FakeJira(deployment="cloud") as fake:
        seed_site(fake, 160)
        reference = clean(fake, tmp_path, "cloud")
        Store(store_url).close()  # migrated once, before the race
        errors: list[BaseException] = []
        marks: list[datetime] = []
        running = threading.Event()
        running.set()

        def run() -> None:
            try:
                with Store(store_url) as store, connector_for(
                    fake, deployment="cloud", page_size=10
                ) as connector:
                    sync_source(connector, store, started=STARTED)
            except BaseException as error:
                errors.append(error)

        def watch() -> None:
            with Store(store_url, migrate_schema=False) as store:
                while running.is_set():
                    mark = store.watermark("jira")
                    if mark is not None:
                        marks.append(mark)
                    time.sleep(0.005)

        watcher = threading.Thread(target=watch)
        watcher.start()
        runs = [threading.Thread(target=run) for _ in range(2)]
        for thread in runs:
            thread.start()
        for thread in runs:
            thread.join(timeout=120)
        running.clear()
        watcher.join(timeout=10)
    assert errors == []
    assert marks == sorted(marks), "the watermark moved back"
    assert snapshot(store_url) == reference


# -- payload drift --------------------------------------------------------------------------


def _drop(*names: str) -> Callable[[dict[str, Any]], None]:
    def mangle(issue: dict[str, Any]) -> None:
        for name in names:
            issue["fields"].pop(name, None)
    return mangle


# Each mangles only what a response holds: a key scan asks for no fields at all.


def _null(*names: str) -> Callable[[dict[str, Any]], None]:
    def mangle(issue: dict[str, Any]) -> None:
        for name in names:
            if name in issue["fields"]:
                issue["fields"][name] = None
    return mangle


def _purple(issue: dict[str, Any]) -> None:
    if "status" in issue["fields"]:
        issue["fields"]["status"]["statusCategory"]["key"] = "purple"


def _former_user(issue: dict[str, Any]) -> None:
    for comment in (issue["fields"].get("comment") or {}).get("comments") or []:
        comment["author"] = {"displayName": "Former user", "active": False}


def test_payload_drift_is_stored_flagged_and_reported(tmp_path: Path) -> None:
    with FakeJira(deployment="cloud") as fake:
        for n in range(1, 9):
            fake.add_issue(f"WEB-{n}", created=T0 + timedelta(hours=n), assignee="ann")
        fake.add_issue("WEB-9", created=T0 + timedelta(hours=9), assignee="ghost")
        fake.add_comment("WEB-4", "x" * 1_000_000, at=T0 + timedelta(days=1), author="ann")
        fake.add_comment("WEB-5", "who wrote this?", at=T0 + timedelta(days=1), author="ann")
        fake.drift.update({
            "WEB-1": _drop("summary", "issuetype", "status", "created"),
            "WEB-2": _null("status", "labels", "fixVersions", "comment", "assignee", "updated"),
            "WEB-3": _purple,
            "WEB-5": _former_user,
            "WEB-6": _null("created", "updated"),
        })
        url = f"sqlite:///{tmp_path / 'drift.db'}"
        with Store(url) as store:
            with connector_for(fake, deployment="cloud") as connector:
                result = sync_source(connector, store, started=STARTED)
            evidence = store.evidence(["jira"])
    assert result.items == 9
    flags = {item.key: set(item.flags) for item in evidence.items}
    assert flags["WEB-1"] >= {"missing_status", "missing_created"}
    assert flags["WEB-2"] >= {"missing_status", "missing_updated"}
    assert "unknown_status_category:status=purple" in flags["WEB-3"]
    assert flags["WEB-4"] == {"comment_truncated"}
    assert flags["WEB-5"] == {"unreadable_user"}
    assert flags["WEB-6"] >= {"missing_created", "missing_updated"}
    assert flags["WEB-7"] == flags["WEB-8"] == flags["WEB-9"] == set()
    (long,) = [c for c in evidence.comments if c.item_key == "WEB-4"]
    assert len(long.body) == 65_536
    (anonymous,) = [c for c in evidence.comments if c.item_key == "WEB-5"]
    assert anonymous.author is None

    plan = Plan.model_validate({
        "version": 1, "name": "Drift", "leader": "lead",
        "people": {"lead": {"accounts": {"jira": "ann"}}},
        "sources": {"jira": {"kind": "jira", "url": "https://jira.example",
                             "token": "env:JIRA_API_TOKEN", "scope": "project = WEB"}},
        "goals": [{"id": "g", "title": "Goal", "owner": "lead", "milestones": [
            {"id": "m", "title": "All", "owner": "lead",
             "work": [{"source": "jira", "keys": [f"WEB-{n}" for n in range(1, 10)]}]}]}],
    })
    report = judge(plan, evidence, as_of=STARTED)
    assert report.flagged_items == [f"jira:WEB-{n}" for n in range(1, 7)]
    assert [u.account for u in report.unknown_people] == ["ghost"]
    markdown = render(report)
    assert "## Items with payload problems" in markdown
    assert "jira:WEB-6" in markdown


# -- SIGKILL during first-time schema creation ----------------------------------------------

_KILL_AT_STATEMENT = """
import os, signal, sys
from sqlalchemy import Engine, event
seen = [0]
@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args):
    seen[0] += 1
    if seen[0] == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)
from stratmap.models.store import Store
Store(sys.argv[1]).close()
print(seen[0])
"""


def _open_store_killed_at(url: str, statement: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _KILL_AT_STATEMENT, url, str(statement)],
                          capture_output=True, text=True, check=False, timeout=120)


# The same, once per statement, each in its own process: a helper imports stratmap once and
# forks a child per kill point (a fresh interpreter each was most of this test's minute).
# The helper has no thread and never opens a store itself, so each child starts clean.
_KILL_AT_EACH_STATEMENT = """
import os, signal, sys
from sqlalchemy import Engine, event
seen = [0]
kill_at = [0]
@event.listens_for(Engine, "before_cursor_execute")
def _count(*_args):
    seen[0] += 1
    if seen[0] == kill_at[0]:
        os.kill(os.getpid(), signal.SIGKILL)
import alembic.command, alembic.config, alembic.runtime.migration, alembic.script
from stratmap.models.store import Store
folder, last = sys.argv[1], int(sys.argv[2])
for statement in range(1, last + 1):
    pid = os.fork()
    if pid == 0:
        kill_at[0] = statement
        Store(f"sqlite:///{folder}/killed{statement}.db").close()
        os._exit(0)
    _pid, status = os.waitpid(pid, 0)
    print(statement, os.waitstatus_to_exitcode(status), flush=True)
"""


def test_a_store_killed_at_every_statement_of_its_first_migration_stays_usable(
        tmp_path: Path) -> None:
    clean = _open_store_killed_at(f"sqlite:///{tmp_path / 'clean.db'}", 0)
    assert clean.returncode == 0, clean.stderr
    statements = int(clean.stdout.split()[-1])
    assert statements > 10  # the kill points below cover every statement
    from alembic.script import ScriptDirectory

    from stratmap.models.store import _MIGRATIONS

    heads = set(ScriptDirectory(str(_MIGRATIONS)).get_heads())
    assert len(heads) >= 1
    helper = subprocess.run(
        [sys.executable, "-c", _KILL_AT_EACH_STATEMENT, str(tmp_path), str(statements)],
        capture_output=True, text=True, check=False, timeout=600)
    assert helper.returncode == 0, helper.stderr
    exits = dict(line.split() for line in helper.stdout.splitlines())
    assert exits == {str(n): str(-signal.SIGKILL) for n in range(1, statements + 1)}, (
        helper.stderr)
    for statement in range(1, statements + 1):
        url = f"sqlite:///{tmp_path / f'killed{statement}.db'}"
        with Store(url) as store:  # the next run finds a usable store (issue 14)
            assert set(store.counts()) >= {"items", "accounts", "status_changes"}
            with store.engine.connect() as connection:
                versions = {row[0] for row in connection.exec_driver_sql(
                    "SELECT version_num FROM alembic_version")}
            assert versions == heads  # one row per head: at the newest schema, once


def test_first_runs_at_once_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    runs = [subprocess.Popen([sys.executable, "-c", _KILL_AT_STATEMENT, url, "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
    for run in runs:
        _out, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    with Store(url) as store:
        assert store.counts()["items"] == 0
