"""The Redmine connector against a real Redmine: a plan run through the CLI, people,
credentials, deleted issues and saved queries. Nothing here is backdated: Redmine's own
clock stamps everything, and the plan's dates are set relative to today."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stratmap.connectors.base import AuthError, Window
from stratmap.connectors.redmine import RedmineConnector
from stratmap.flows import cli
from stratmap.flows.pipeline import sync_source
from stratmap.models.plan import RedmineSource
from stratmap.models.store import Store
from tests.redmine.admin import RedmineAdmin

PEOPLE = ("carol", "dev1")


def _source(admin: RedmineAdmin, project: str, **extra: Any) -> RedmineSource:
    return RedmineSource(kind="redmine", url=admin.server.url, project=project, **extra)


@dataclass
class Synced:
    project: str
    ids: dict[str, int]
    report: dict[str, Any]
    second_report: dict[str, Any]
    database: Path
    log: str = field(repr=False)
    secrets: list[str] = field(repr=False)

    def key(self, name: str) -> str:
        return f"redmine#{self.ids[name]}"

    def findings(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.report["findings"] if f["kind"] == kind]


PLAN = """\
version: 1
name: Redmine operations plan
leader: carol
people:
  carol: {{name: Carol Senior, senior: true, accounts: {{redmine: carol}}}}
  dave: {{name: Dave Developer, accounts: {{redmine: dev1}}}}
sources:
  redmine:
    kind: redmine
    url: {url}
    project: {project}
    token: env:REDMINE_API_KEY
goals:
  - id: ops
    title: Run operations well
    owner: carol
    milestones:
      - id: launch
        title: Launch version 1
        owner: dave
        start: {past}
        due: {future}
        work: [{{source: redmine, version: v1}}]
      - id: migrate
        title: Migrate to version 2
        owner: dave
        start: {past}
        due: {overdue}
        work: [{{source: redmine, version: v2}}]
      - id: support
        title: Answer support
        owner: dave
        start: {past}
        due: {future}
        feedback: {{from: seniors, every: 14d}}
        work: [{{source: redmine, tracker: Support}}]
      - id: docs
        title: Write the docs
        owner: dave
        start: {past}
        due: {future}
        feedback: {{from: seniors, every: 14d}}
        work: [{{source: redmine, query: {query}}}]
"""


@pytest.fixture(scope="module")
def synced(redmine: RedmineAdmin, tmp_path_factory: pytest.TempPathFactory) -> Synced:
    """A project seeded through the REST API, judged twice by ``stratmap run``."""
    admin = redmine
    project = admin.project("plan", members=PEOPLE)
    v1, v2 = admin.version(project, "v1"), admin.version(project, "v2")
    ids = {
        "shipped": admin.create_issue(project, "Ship the site", assignee="dev1", version=v1),
        "shipped_too": admin.create_issue(project, "Ship the app", tracker="Feature",
                                          assignee="dev1", version=v1),
        "migration": admin.create_issue(project, "Move the data", assignee="dev1", version=v2),
        "ticket": admin.create_issue(project, "Customer cannot log in", tracker="Support"),
        "docs": admin.create_issue(project, "Write the docs", assignee="dev1"),
        "stray": admin.create_issue(project, "Stray work", assignee="dev1"),
    }
    for name in ("shipped", "shipped_too"):
        admin.update(ids[name], status="In Progress", as_user="dev1")
        admin.update(ids[name], status="Closed", notes="done and deployed", as_user="dev1")
    admin.update(ids["migration"], status="In Progress", as_user="dev1")
    admin.update(ids["ticket"], notes="looking into it", as_user="dev1")  # not a senior
    admin.update(ids["docs"], notes="please cover the API too", as_user="carol")  # a senior
    query = admin.saved_query(project, "Documentation",
                              [("status_id", "*", [""]), ("subject", "~", ["docs"])])

    today = datetime.now(UTC).date()
    folder = tmp_path_factory.mktemp("redmine-plan")
    plan = folder / "plan.yaml"
    plan.write_text(PLAN.format(
        url=admin.server.url, project=project, query=query,
        past=today - timedelta(days=60), future=today + timedelta(days=60),
        overdue=today - timedelta(days=5)), encoding="utf-8")
    database = folder / "stratmap.db"
    secrets = [admin.server.key] + [admin.api_key_of(login) for login in PEOPLE]

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("REDMINE_API_KEY", admin.server.key)
        records: list[str] = []
        handler = _Collect(records)
        root = logging.getLogger()
        previous = root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        try:
            reports = []
            for run in (1, 2):
                out = folder / f"report{run}.json"
                code = cli.main(["-v", "run", str(plan), "--db", f"sqlite:///{database}",
                                 "--json", str(out), "-q"])
                assert code == cli.EXIT_OK
                reports.append(json.loads(out.read_text()))
        finally:
            root.removeHandler(handler)
            root.setLevel(previous)
    return Synced(project=project, ids=ids, report=reports[0], second_report=reports[1],
                  database=database, log="\n".join(records), secrets=secrets)


class _Collect(logging.Handler):
    def __init__(self, records: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


def _milestone(report: dict[str, Any], ref: str) -> dict[str, Any]:
    return next(m for g in report["goals"] for m in g["milestones"] if m["id"] == ref)


def test_a_version_whose_issues_are_all_closed_is_a_done_milestone(synced: Synced) -> None:
    launch = _milestone(synced.report, "ops.launch")
    assert launch["status"] == "done"
    assert launch["items"] == {"total": 2, "done": 2, "points_total": None, "points_done": None}
    assert launch["progress"] == 1.0


def test_an_open_version_past_its_due_date_is_overdue(synced: Synced) -> None:
    (overdue,) = synced.findings("overdue")
    assert overdue["milestone"] == "ops.migrate"
    assert overdue["evidence"]["items"] == [synced.key("migration")]
    assert _milestone(synced.report, "ops.migrate")["status"] == "off_track"


def test_an_issue_no_milestone_selects_is_unmapped_work(synced: Synced) -> None:
    unmapped = {f["item"] for f in synced.findings("unmapped_work")}
    assert unmapped == {synced.key("stray")}


def test_feedback_counts_only_seniors(synced: Synced) -> None:
    missing = {f["milestone"] for f in synced.findings("missing_feedback")}
    assert "ops.support" in missing  # only dev1 (not senior) commented on the ticket
    assert "ops.docs" not in missing  # carol (senior) commented on the docs issue


def test_a_saved_query_selects_its_issues(synced: Synced) -> None:
    assert _milestone(synced.report, "ops.docs")["items"]["total"] == 1


def test_people_are_matched_by_login(synced: Synced) -> None:
    people = {p["handle"]: p for p in synced.report["people"]}
    assert people["carol"]["last_activity"] is not None
    assert people["dave"]["last_activity"] is not None
    assert people["dave"]["open_items"] == 2  # the migration and the docs, not the stray one


def test_a_second_run_judges_the_same(synced: Synced) -> None:
    def strip(report: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in report.items() if k not in ("as_of", "generated_at")}

    first, second = strip(synced.report), strip(synced.second_report)
    assert first["findings"] == second["findings"]
    assert first["goals"] == second["goals"]


def test_no_api_key_reaches_the_store_the_report_or_the_log(synced: Synced) -> None:
    stored = b"".join(path.read_bytes() for path in synced.database.parent.iterdir()
                      if path.name.startswith(synced.database.name))  # with -wal, -journal
    assert b"Stray work" in stored and b"please cover the API too" in stored
    texts = {"report": json.dumps(synced.report), "log": synced.log}
    assert synced.log  # the run did log (at DEBUG), so the check below means something
    for n, secret in enumerate(synced.secrets):
        assert secret.encode() not in stored, f"secret #{n} is in the database"
        for where, text in texts.items():
            assert secret not in text, f"secret #{n} is in the {where}"


def test_a_wrong_key_is_refused_by_name(redmine: RedmineAdmin) -> None:
    project = redmine.project("auth")
    connector = RedmineConnector("ops", _source(redmine, project), token="0" * 40)
    with connector, pytest.raises(AuthError) as raised:
        list(connector.fetch(Window(since=None, until=datetime.now(UTC))))
    assert "source 'ops'" in str(raised.value)
    assert "HTTP 401" in str(raised.value)


def test_a_key_without_access_to_the_project_is_refused(redmine: RedmineAdmin) -> None:
    project = redmine.project("private")  # outsider is no member of it
    redmine.user("outsider")
    connector = RedmineConnector("ops", _source(redmine, project),
                                 token=redmine.api_key_of("outsider"))
    with connector, pytest.raises(AuthError) as raised:
        list(connector.fetch(Window(since=None, until=datetime.now(UTC))))
    assert "source 'ops'" in str(raised.value)
    assert "HTTP 403" in str(raised.value)


def test_without_an_admin_key_people_are_user_ids(redmine: RedmineAdmin) -> None:
    project = redmine.project("ids", members=PEOPLE)
    issue = redmine.create_issue(project, "Seen by a developer", assignee="dev1")
    redmine.update(issue, notes="a note", as_user="carol")
    connector = RedmineConnector("ops", _source(redmine, project),
                                 token=redmine.api_key_of("dev1"))
    with connector:
        (page,) = connector.fetch(Window(since=None, until=datetime.now(UTC)))
    dev1, carol = str(redmine.user("dev1")), str(redmine.user("carol"))
    assert page.items[0].assignee == dev1
    assert page.comments[0].author == carol
    assert {a.account_id: a.display_name for a in page.accounts}[carol] == "Carol Tester"
    assert all(a.email is None for a in page.accounts)


def test_reassignments_are_read_from_the_journals_as_logins(redmine: RedmineAdmin) -> None:
    project = redmine.project("moves", members=PEOPLE)
    issue = redmine.create_issue(project, "Passed around", assignee="dev1")
    redmine.update(issue, assignee="carol", as_user="carol")
    redmine.update(issue, assignee="", notes="back to the pool", as_user="carol")
    connector = RedmineConnector("ops", _source(redmine, project), token=redmine.server.key)
    with connector:
        (page,) = connector.fetch(Window(since=None, until=datetime.now(UTC)))
    moves = [(a.from_account, a.to_account, a.author) for a in page.assignments]
    assert moves == [("dev1", "carol", "carol"), ("carol", None, "carol")]
    assert page.items[0].assignee is None
    assert [a.change_id for a in page.assignments] == [
        str(j) for j in redmine.journal_ids(issue)[:2]]


def test_a_deleted_issue_leaves_the_store_at_the_reconcile(redmine: RedmineAdmin,
                                                           tmp_path: Path) -> None:
    project = redmine.project("gone")
    kept = redmine.create_issue(project, "Kept")
    gone = redmine.create_issue(project, "Deleted later")
    also = redmine.create_issue(project, "Also kept")
    with Store(f"sqlite:///{tmp_path / 'stratmap.db'}") as store:
        for step in range(2):
            # One issue a page: reconcile pages by issue_id on the real server.
            connector = RedmineConnector("ops", _source(redmine, project, page_size=1),
                                         token=redmine.server.key)
            with connector:
                sync_source(connector, store, started=datetime.now(UTC),
                            reconcile_every=timedelta(0))
            if step == 0:
                assert {i.key for i in store.evidence(["ops"]).items} == {
                    f"ops#{kept}", f"ops#{gone}", f"ops#{also}"}
                redmine.delete_issue(gone)
        assert {i.key for i in store.evidence(["ops"]).items} == {f"ops#{kept}", f"ops#{also}"}


def test_a_saved_query_resolves_closed_issues_too(redmine: RedmineAdmin) -> None:
    project = redmine.project("query")
    closed = redmine.create_issue(project, "Closed feature", tracker="Feature")
    redmine.update(closed, status="Closed")
    open_ = redmine.create_issue(project, "Open feature", tracker="Feature")
    redmine.create_issue(project, "A bug")
    query = redmine.saved_query(project, "Features", [
        ("status_id", "*", [""]), ("tracker_id", "=", [str(redmine.tracker_id("Feature"))])])
    with RedmineConnector("ops", _source(redmine, project, page_size=1),
                          token=redmine.server.key) as connector:
        assert connector.resolve({"query": str(query)}) == {f"ops#{closed}", f"ops#{open_}"}
        assert connector.resolve({"version": "v1"}) is None
