"""Hostile and broken input (issue 14): never a leak, never a traceback, never a dead store.

Each defect the independent test found has a regression test here; the fuzz test of plan
files is in ``test_plan_fuzz.py``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from stratmap.connectors.base import FatalSourceError, RateLimited, RetryPolicy, error_for_status
from stratmap.flows import redact
from stratmap.flows.secrets import resolve_secret
from stratmap.flows.terminal import shown
from stratmap.models.planfile import PlanError, parse_plan
from tests.fakes.jira_server import FakeJira

CANARY = "cAnArY-7f3e9b1d2c4a"
HEAD = "version: 1\nname: P\nleader: a\npeople: {a: {}}\n"


def stratmap(*args: str, env: dict[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stratmap.flows.cli", *args],
                          capture_output=True, text=True, check=False, cwd=cwd,
                          env={**os.environ, **(env or {})})


# -- 1. secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["\r", "\n", "\r\n", " \t"])
def test_whitespace_around_a_secret_is_dropped(monkeypatch: pytest.MonkeyPatch,
                                               ending: str) -> None:
    monkeypatch.setenv("HOSTILE_TOKEN", f"  {CANARY}{ending}")
    assert resolve_secret("jira", "env:HOSTILE_TOKEN") == CANARY


def test_a_secret_with_a_control_character_inside_is_refused_plainly(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTILE_TOKEN", f"{CANARY}\r\nX-Injected: 1")
    with pytest.raises(FatalSourceError) as caught:
        resolve_secret("jira", "env:HOSTILE_TOKEN")
    assert "control character" in str(caught.value)
    assert CANARY not in str(caught.value)


@pytest.mark.parametrize("user", ["a", "ab", "abc", "alice@northwind.example"])
def test_every_form_of_a_secret_is_masked(user: str) -> None:
    secret = f"{CANARY}/+=?&\r"
    redact.register(secret)
    forms = [secret, repr(secret), quote(secret, safe=""),
             base64.b64encode(f"{user}:{secret.strip()}".encode()).decode(),
             base64.b64encode(f"{user}:{secret}".encode()).decode()]
    for form in forms:
        text = redact.redact(f"header {form} end")
        assert form not in text and CANARY not in text, form


def _jira_plan(tmp_path: Path, jira: FakeJira) -> Path:
    plan = tmp_path / "plan.yaml"
    plan.write_text(HEAD + f"""sources:
  jira: {{kind: jira, url: "{jira.url}", email: {jira.email}, token: "env:HOSTILE_TOKEN",
         scope: "project = WEB"}}
goals: [{{id: g, title: t, milestones: [{{id: m, title: t, work: [{{source: jira,
  labels: [x]}}]}}]}}]
""")
    return plan


@pytest.mark.integration  # runs the CLI in a subprocess
@pytest.mark.parametrize("token", [f"{CANARY}\r\n", f"{CANARY}\n", f"{CANARY}\rX"])
def test_a_canary_token_is_absent_from_every_output_of_a_failing_run(
        tmp_path: Path, token: str) -> None:
    with FakeJira(deployment="cloud", token="another-token") as jira:  # answers 401
        plan = _jira_plan(tmp_path, jira)
        db = tmp_path / "s.db"
        done = stratmap("-v", "run", str(plan), "--db", f"sqlite:///{db}",
                        env={"HOSTILE_TOKEN": token})
    assert done.returncode == 3, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    stored = db.read_bytes() if db.exists() else b""
    basic = base64.b64encode(f"{jira.email}:{CANARY}".encode()).decode()
    for form in (CANARY, quote(CANARY), basic, basic[8:-4]):
        assert form not in output and form.encode() not in stored


# -- 2. terminal injection --------------------------------------------------------------------


def test_tracker_text_prints_as_text_on_the_terminal() -> None:
    text = "Ship [beta] build [/docs] [link=https://evil.example]x[/link] \x1b[5;35mB\x1b]8;;u\x07"
    from io import StringIO

    from rich.console import Console

    out = StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=400).print(
        f"[bold]{shown(text)}[/]", highlight=False)
    printed = out.getvalue()
    assert "Ship [beta] build [/docs] [link=https://evil.example]x[/link]" in printed
    assert "\\x1b[5;35mB\\x1b]8;;u\\x07" in printed
    assert "\x1b]8;" not in printed and "\x1b[5;35m" not in printed


HOSTILE_TITLE = "[link=https://evil.example]click[/link] [/docs] \x1b[5;35mBLINK \x00 \u202e"


@pytest.mark.integration  # runs the CLI in a subprocess
def test_hostile_text_through_the_cli_summary_markdown_and_html(tmp_path: Path) -> None:
    export = tmp_path / "exp"
    export.mkdir()
    (export / "items.csv").write_text(
        "key,title,type,status,category,assignee,reporter,created,updated,resolved,due,"
        "parent,labels,milestone,points,url,component\n"
        '"x#1[/docs]","Title [link=https://evil.example]t[/link] \x1b[5;35mB",Task,Open,todo,'
        '"[/m]mallory\x1b[5;35m",bob,2026-10-29T08:54:00Z,2026-11-05T13:33:00Z,,,,,'
        '"v2 [/docs]",2,,\n', encoding="utf-8")
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        'version: 1\nname: "Plan [bold]x[/bold] \\e[5;35mBLINK"\nleader: alice\n'
        "people: {alice: {}}\nsources: {site: {kind: csv, path: exp}}\n"
        'goals:\n  - id: g\n    title: "Ship [beta] build [/docs]"\n    owner: alice\n'
        '    milestones:\n      - id: m\n        title: "[link=https://evil.example]c[/link]'
        ' \\e]8;;https://evil.example\\e\\\\ \\0 \\x01"\n        due: 2027-02-01\n'
        '        work: [{source: site, milestone: "v2 [/docs]"}]\n', encoding="utf-8")
    db = f"sqlite:///{tmp_path / 's.db'}"
    done = stratmap("run", str(plan), "--db", db, "--as-of", "2027-03-01",
                    env={"FORCE_COLOR": "1", "COLUMNS": "300"})
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "Ship [beta] build [/docs]" in out and "[link=https://evil.example]c[/link]" in out
    assert "[/m]mallory\\x1b[5;35m" in out
    assert "\x1b[5;35m" not in out and "\x1b]8;" not in out and "\x00" not in out
    for form in ("md", "html", "json"):
        target = tmp_path / f"r.{form}"
        done = stratmap("report", str(plan), "--db", db, "--as-of", "2027-03-01",
                        "--format", form, "-o", str(target))
        assert done.returncode == 0, done.stdout + done.stderr
        written = target.read_text(encoding="utf-8")
        assert not [c for c in written if ord(c) < 32 and c not in "\n\t"], form
        assert "<a href=\"https://evil" not in written


def test_prefect_artifacts_carry_no_live_markup_or_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    import prefect.artifacts

    from stratmap.judgement import judge
    from stratmap.models.plan import Plan
    from stratmap.models.records import Evidence
    from stratmap.publish import prefect_ui

    made: list[dict[str, object]] = []
    for name in ("create_markdown_artifact", "create_table_artifact",
                 "create_progress_artifact", "create_link_artifact"):
        monkeypatch.setattr(prefect.artifacts, name,
                            lambda name=name, **kw: made.append({"_": name, **kw}))
    plan = Plan.model_validate({
        "version": 1, "name": f"P {HOSTILE_TITLE}", "leader": "a", "people": {"a": {}},
        "goals": [{"id": "g", "title": HOSTILE_TITLE, "milestones": [
            {"id": "m", "title": HOSTILE_TITLE, "due": "2027-01-01"}]}]})
    report = judge(plan, Evidence(), as_of=datetime(2027, 3, 1, tzinfo=UTC))
    prefect_ui.publish_artifacts(plan, report, html_url="http://127.0.0.1/r.html")
    text = repr(made)
    assert made and "\\x1b" not in text.replace("\\\\x1b", "")
    for artifact in made:
        for value in artifact.values():
            flat = str(value)
            assert not [c for c in flat if ord(c) < 32 and c not in "\n\t"], artifact
            assert "\ud800" not in flat
    descriptions = " ".join(str(a.get("description", "")) for a in made)
    assert "[link=https://evil.example]" not in descriptions.replace("\\[", "[") or \
        "\\[link" in descriptions


# -- 5, 6. plans that are hostile or wrong: FILE:LINE:COL, exit 2 ------------------------------


def _bomb() -> str:
    lines = [HEAD.rstrip(), 'a0: &a0 ["x","x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "message"), [
    (_bomb(), "expands to more than 100,000 values"),
    (HEAD + "vision: " + "[" * 1000 + "\n", "nested more than 64 levels"),
    (HEAD + "vision: &a [*a]\n", "nested more than 64 levels deep (or an alias names itself)"),
    (HEAD + "timezone: Europe\n", "unknown time zone 'Europe'"),
    (HEAD + "timezone: " + "A" * 300 + "\n", "unknown time zone"),
    (HEAD + "defaults: {stall_after: 99999999999d}\n", "at most 100 years"),
    (HEAD + "defaults: {stall_after: 99999999w}\n", "at most 100 years"),
    (HEAD + "alerts: {renotify_after: 999999999999999h}\n", "at most 100 years"),
    (HEAD + "goals: [{id: g, title: t, weight: " + "9" * 5000 + "}]\n", "out of range"),
    (HEAD + "goals: [{id: g, title: t, weight: 1e999}]\n", "finite number"),
    (HEAD + "goals: [{id: g, title: t, weight: 1e300}]\n", "less than or equal to 1000000"),
    (HEAD + "timezone: America/Los_Angeles\ngoals: [{id: g, title: t, milestones: "
     "[{id: m, title: t, due: 9999-12-31}]}]\n", "years 1900-9000"),
    (HEAD + "goals: [{id: g, title: t, milestones: [{id: m, title: t, due: 0001-01-01}]}]\n",
     "years 1900-9000"),
    (HEAD + "goals: [{id: g, title: " + "x" * 3000 + "}]\n", "at most 2000 characters"),
])
@pytest.mark.integration  # runs the CLI in a subprocess
def test_a_hostile_plan_is_a_positioned_problem(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(text, file="p.yaml")
    assert message in str(caught.value)
    assert all(p.line >= 1 for p in caught.value.problems)
    plan = tmp_path / "p.yaml"
    plan.write_text(text)
    done = stratmap("validate", str(plan))
    assert done.returncode == 2 and "Traceback" not in done.stderr + done.stdout
    assert "this is a bug" not in done.stdout + done.stderr


# -- 9. JQL checked in validate ------------------------------------------------------------------


@pytest.mark.parametrize(("jql", "message"), [
    ('labels = a\\") OR project = ZZZ OR (labels = "b\\""', "closes a parenthesis"),
    ("", "it is empty"),
    ('summary ~ "x', "not closed"),
    ("a = (b", "a parenthesis is not closed"),
    ("project = A ORDER BY key", "ORDER BY"),
])
def test_validate_refuses_jql_that_run_refuses_at_its_line(jql: str, message: str) -> None:
    text = HEAD + """sources:
  j: {kind: jira, url: "https://x.atlassian.net", email: a@b.c, token: "env:T",
      scope: "project = A"}
goals:
  - id: g
    title: t
    milestones:
      - id: m
        title: t
        work:
          - source: j
            jql: %s
""" % ("'" + jql.replace("'", "''") + "'")
    with pytest.raises(PlanError) as caught:
        parse_plan(text, file="p.yaml")
    problem, = caught.value.problems
    assert problem.line == 16 and message in problem.message


def test_validate_refuses_a_scope_with_order_by() -> None:
    text = HEAD + ('sources:\n  j: {kind: jira, url: "https://x.atlassian.net", email: a@b.c, '
                   'token: "env:T", scope: "project = A order  by key"}\n')
    with pytest.raises(PlanError) as caught:
        parse_plan(text, file="p.yaml")
    assert "p.yaml:6:" in str(caught.value) and "ORDER BY" in str(caught.value)


# -- 10. a 503 with Retry-After waits as a 429 does ---------------------------------------------


def test_a_503_with_retry_after_is_a_floor_on_the_wait() -> None:
    classed = error_for_status("jira", 503, retry_after="40")
    assert isinstance(classed, RateLimited) and classed.retry_after == 40.0
    import random

    assert RetryPolicy().delay(0, classed, random.Random(1)) >= 40.0
    assert not isinstance(error_for_status("jira", 503), RateLimited)


def test_the_jira_connector_waits_out_a_503s_retry_after(connect) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from stratmap.connectors.base import Window
    from tests.fakes.jira_server import FakeClock

    clock = FakeClock()
    with FakeJira(deployment="cloud") as jira:
        jira.seed(3, project="WEB")
        jira.inject("/rest/api/3/search/jql", status=503, retry_after="37")
        connector = connect(jira, clock=clock)
        pages = list(connector.fetch(Window(since=None, until=datetime(2030, 1, 1, tzinfo=UTC))))
    assert sum(len(p.items) for p in pages) == 3
    assert clock.waits and max(clock.waits) >= 37


# -- 4. text PostgreSQL refuses: the same store on both ------------------------------------------


def test_nul_bytes_and_long_names_are_stored_alike_and_flagged(store) -> None:  # type: ignore[no-untyped-def]
    from datetime import UTC, datetime

    from stratmap.models.records import (
        Account,
        Comment,
        Page,
        RawPayload,
        StatusCategory,
        StatusChange,
        WorkItem,
    )
    from stratmap.models.store import NUL_REMOVED

    at = datetime(2027, 1, 5, tzinfo=UTC)
    status = "S" * 300
    item = WorkItem(source="j", key="J-1", title="a\x00b", status=status,
                    status_category=StatusCategory.IN_PROGRESS, assignee="acc\x00",
                    created=at, updated=at, labels=("x\x00y",))
    page = Page(
        source="j", items=(item,),
        changes=(StatusChange(source="j", item_key="J-1", change_id="1", at=at,
                              author="n" * 600, from_status=None, to_status=status,
                              to_category=StatusCategory.IN_PROGRESS),),
        comments=(Comment(source="j", item_key="J-1", comment_id="1", at=at,
                          author="acc", body="hi\x00there"),),
        accounts=(Account(source="j", account_id="acc", display_name="D" * 700 + "\x00"),),
        raw=(RawPayload(source="j", key="J-1", endpoint="/x", fetched_at=at,
                        payload={"summary": "a\x00b"}),),
        cursor=at,
    )
    store.write_page(page, watermark=at)
    evidence = store.evidence(["j"])
    stored, = evidence.items
    assert (stored.title, stored.assignee, stored.labels) == ("ab", "acc", ("xy",))
    assert stored.status == status and NUL_REMOVED in stored.flags
    assert evidence.changes[0].author == "n" * 600
    assert evidence.comments[0].body == "hithere"


# -- 3, 8. stores and files that are the user's to fix -------------------------------------------


SAMPLE_PLAN = str(Path(__file__).parent.parent / "examples" / "northwind" / "plan.yaml")


def _sqlite_file_with(tmp_path: Path, *statements: str) -> Path:
    import sqlite3

    path = tmp_path / "other.db"
    with sqlite3.connect(path) as connection:
        for statement in statements:
            connection.execute(statement)
    return path


def _content(path: Path) -> object:
    """The database's tables and rows (the bytes, for a file that is not SQLite)."""
    import sqlite3

    if not path.exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
            return list(connection.iterdump())
    except sqlite3.DatabaseError:
        return path.read_bytes()


@pytest.mark.integration  # runs the CLI in a subprocess
@pytest.mark.parametrize("case", ["other app", "newer", "garbage", "driver"])
def test_a_store_the_user_must_fix_is_one_clear_message_touching_nothing(
        tmp_path: Path, case: str) -> None:
    if case == "other app":
        path = _sqlite_file_with(tmp_path, "CREATE TABLE customers (id INTEGER)")
        url, said = f"sqlite:///{path}", "is not a stratmap store"
    elif case == "newer":
        path = _sqlite_file_with(tmp_path, "PRAGMA journal_mode=WAL",  # as stores are
                                 "CREATE TABLE alembic_version (version_num TEXT)",
                                 "INSERT INTO alembic_version VALUES ('9999')")
        url, said = f"sqlite:///{path}", "written by a newer stratmap (revision 9999)"
    elif case == "garbage":
        path = tmp_path / "garbage.db"
        path.write_bytes(bytes(range(256)) * 40)
        url, said = f"sqlite:///{path}", "file is not a database"
    else:
        path, url, said = tmp_path / "none", "mysql://me@127.0.0.1/x", "No module named"
    before = _content(path)
    done = stratmap("run", SAMPLE_PLAN, "--db", url, "-q")
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and said in output, output
    assert "Traceback" not in output and "this is a bug" not in output
    assert _content(path) == before  # nothing written to a database that is not ours


@pytest.mark.integration  # runs the CLI in a subprocess
def test_an_output_folder_that_does_not_exist_is_named(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    done = stratmap("report", SAMPLE_PLAN, "--db", db, "-o", str(tmp_path / "no" / "r.md"))
    output = " ".join((done.stdout + done.stderr).split())
    assert done.returncode == 1 and "No such file or directory" in output, output
    assert str(tmp_path / "no" / "r.md") in output and "this is a bug" not in output


@pytest.mark.integration  # runs the CLI in a subprocess
@pytest.mark.parametrize("folder", ["writable folder", "read-only folder"])
def test_report_reads_a_store_it_may_not_write(folder: str) -> None:
    """`report` only reads: a store file (and folder) this user may not write is opened
    read-only, reports as usual and stays byte for byte as it was. As root, who may write
    anything, the report runs as `nobody`."""
    import json
    import shutil
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="stratmap-ro-"))  # /tmp: readable by `nobody`
    try:
        home.chmod(0o755)
        db = home / "s.db"
        done = stratmap("run", SAMPLE_PLAN, "--db", f"sqlite:///{db}", "--as-of",
                        "2027-03-01T09:00Z", "-q")
        assert done.returncode == 0, done.stdout + done.stderr
        db.chmod(0o444)
        if folder == "read-only folder":
            home.chmod(0o555)
        before = db.read_bytes()
        command = [sys.executable, "-m", "stratmap.flows.cli", "report", SAMPLE_PLAN, "--db",
                   f"sqlite:///{db}", "--as-of", "2027-03-01T09:00Z", "--format", "json"]
        if os.geteuid() == 0:
            command = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                       *command]
        read = subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=tempfile.gettempdir(),
                              env={**os.environ, "HOME": tempfile.gettempdir()})
        assert read.returncode == 0, read.stdout + read.stderr
        report = json.loads(read.stdout)
        assert report["plan"] == "Northwind growth plan 2027"
        assert sum(m["items"]["total"] for g in report["goals"] for m in g["milestones"]) > 0
        assert db.read_bytes() == before
        if folder == "read-only folder":
            assert sorted(p.name for p in home.iterdir()) == ["s.db"]
    finally:
        home.chmod(0o755)
        shutil.rmtree(home)
