"""A plan and tracker evidence full of hostile text, for the report renderers' tests.

Every string a tracker or a plan author controls carries a payload that would set
``window.__pwned`` if it ever ran, break a Markdown table, make a link, or end a label.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stratmap.judgement import judge
from stratmap.judgement.history import reconstruct, week_ends
from stratmap.models.history import Snapshot
from stratmap.models.plan import Plan
from stratmap.models.records import (
    Account,
    Comment,
    Evidence,
    StatusCategory,
    StatusChange,
    WorkItem,
)
from stratmap.models.report import Report

SCRIPT = "<script>window.__pwned=1</script>"
IMAGE = '<img src=x onerror="window.__pwned=1">'
JS_URL = "javascript:window.__pwned=1"
TABLE = "| broken | table |"
LINK = "[click me](javascript:window.__pwned=1)"
LABEL_BREAK = '"]) --> x["``` end \\N $x^2$ </style></svg>'
AS_OF = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)

PAYLOADS = (SCRIPT, IMAGE, TABLE, LINK)
"""Texts that must appear, as text, in every rendering."""


def plan() -> Plan:
    return Plan.model_validate({
        "version": 1,
        "name": f"Plan {SCRIPT}",
        "vision": f"{LINK} {TABLE}",
        "leader": "alice",
        "people": {
            "alice": {"name": IMAGE, "senior": True, "accounts": {"jira": "acc-alice"}},
            "bob": {"name": TABLE, "accounts": {"jira": "acc-bob"}},
        },
        "sources": {"jira": {"kind": "jsonl", "path": "x"}},
        "goals": [{
            "id": "g", "title": SCRIPT, "owner": "alice",
            "feedback": {"from": ["alice"], "every": "7d"},
            "milestones": [
                {"id": "m1", "title": f"{TABLE}\n# heading", "owner": "bob",
                 "start": "2027-01-04", "due": "2027-02-01",
                 "work": [{"source": "jira", "epic": "E-1"}]},
                {"id": "m2", "title": LABEL_BREAK, "start": "2027-01-04", "due": "2027-12-01",
                 "depends_on": ["g.m1"], "work": [{"source": "jira", "labels": ["two"]}]},
            ],
        }],
    })


def _item(key: str, title: str, *, url: str | None, parent: str | None = None,
          labels: tuple[str, ...] = (), assignee: str | None = "acc-bob") -> WorkItem:
    return WorkItem(source="jira", key=key, title=title, status="To Do",
                    status_category=StatusCategory.TODO, created=START, updated=START,
                    parent=parent, labels=labels, assignee=assignee, url=url)


def evidence() -> Evidence:
    evil_account = '<b onmouseover="window.__pwned=1">evil</b>'
    items = (
        _item("E-1", "epic", url="https://tracker.example/E-1"),
        _item("A-1", SCRIPT, url=JS_URL, parent="E-1"),
        _item("A-2", LINK, url="https://tracker.example/A-2", parent="E-1"),
        _item("A-3", TABLE, url=" JaVaScRiPt:window.__pwned=1", parent="E-1"),
        _item("B-1", IMAGE, url="data:text/html,<script>window.__pwned=1</script>",
              labels=("two",), assignee=evil_account),
        _item("B-2", "fine", url="https://tracker.example/B-2", labels=("two",)),
        _item("B-3", "fine too", url="https://tracker.example/B-3", labels=("two",)),
        _item("U-1", f"{IMAGE} {TABLE}", url=JS_URL),
        _item('U-2"><script>window.__pwned=1</script>', LINK,
              url="https://tracker.example/U-2?q=<script>"),
    )
    changes = tuple(
        StatusChange(source="jira", item_key=key, change_id=f"{key}-done",
                     at=START + n * 7 * DAY, author="acc-bob", to_status="Done",
                     from_category=StatusCategory.TODO, to_category=StatusCategory.DONE)
        for n, key in enumerate(["A-2", "B-2", "B-3"], start=1)
    )
    comments = (Comment(source="jira", item_key="A-1", comment_id="c1", at=START + DAY,
                        author="acc-alice", body=SCRIPT),)
    accounts = (Account(source="jira", account_id=evil_account, display_name=SCRIPT),)
    return Evidence(items=items, changes=changes, comments=comments, accounts=accounts)


def report_and_history() -> tuple[Plan, Evidence, Report, list[Snapshot]]:
    the_plan, the_evidence = plan(), evidence()
    report = judge(the_plan, the_evidence, as_of=AS_OF)
    past = reconstruct(the_plan, the_evidence,
                       week_ends(the_plan, the_evidence, until=AS_OF))
    return the_plan, the_evidence, report, past
