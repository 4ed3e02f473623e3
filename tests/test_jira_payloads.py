"""Pure parts of the Jira connector: JQL building and quoting, payload normalization.

Payloads here are trimmed copies of real ones (shared/fixtures/jira: airbyte's Cloud v3
issue, go-jira's Data Center v2 issue, Atlassian's changelog examples).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from stratmap.connectors.jira import jql_quote
from stratmap.connectors.jira.jql import epoch_ms, jql_problem, selector_jql, window_jql
from stratmap.connectors.jira.payloads import (
    Site,
    adf_text,
    body_text,
    discover_fields,
    normalize_issue,
    parse_day,
    parse_time,
    status_categories,
)
from stratmap.models.records import StatusCategory
from tests.fakes.jira_server import FakeJira, JqlError

# -- JQL -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("website-launch", '"website-launch"'),
        ('say "hi"', r'"say \"hi\""'),
        ("back\\slash", r'"back\\slash"'),
        ('" OR project = X', r'"\" OR project = X"'),
        ('\\" OR project = X OR "', r'"\\\" OR project = X OR \""'),
        ("two\nlines\ttab", r'"two\nlines\ttab"'),
        ("", '""'),
        ("ünïcødé ✓", '"ünïcødé ✓"'),
    ],
)
def test_jql_quote(value: str, quoted: str) -> None:
    assert jql_quote(value) == quoted


@pytest.mark.parametrize(
    "value",
    ['" OR project = X', '\\" OR project = X OR "', "a) OR (b", "x' OR 'y", "\\", '"', '\\\\"'],
)
def test_a_quoted_value_parses_back_as_one_literal(value: str) -> None:
    """Jira's grammar (as the fake implements it) reads the literal back unchanged."""
    with FakeJira() as fake:
        fake.add_issue("WEB-1", labels=[value])
        fake.add_issue("WEB-2", labels=["X"])
        fake.add_issue("X-1")
        found = fake.search(f"project = WEB AND labels = {jql_quote(value)}")
        assert [i.key for i in found] == ["WEB-1"]


def test_unquoted_injection_would_have_widened_the_query() -> None:
    """The control: the same value pasted without quoting changes the query's meaning."""
    with FakeJira() as fake:
        fake.add_issue("WEB-1", labels=["a"])
        fake.add_issue("X-1")
        widened = fake.search('labels = "" OR project = X')
        assert [i.key for i in widened] == ["X-1"]
        with pytest.raises(JqlError):
            fake.search("labels = ")


def test_epoch_ms_is_exact_and_never_rounds_up() -> None:
    assert epoch_ms(datetime(1970, 1, 1, tzinfo=UTC)) == 0
    assert epoch_ms(datetime(2026, 3, 1, 12, 0, 0, 123999, tzinfo=UTC)) == 1772366400123
    plus_two = datetime(2026, 3, 1, 16, 0, tzinfo=timezone(timedelta(hours=2)))
    assert epoch_ms(plus_two) == 1772373600000  # 14:00 UTC
    with pytest.raises(ValueError):
        epoch_ms(datetime(2026, 3, 1))


def test_window_and_selector_jql() -> None:
    since = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert (
        window_jql("project in (WEB, CRM)", None) == "(project in (WEB, CRM)) ORDER BY updated ASC"
    )
    assert (
        window_jql("project = WEB OR labels = x", since)
        == "(project = WEB OR labels = x) AND updated >= 1772366400000 ORDER BY updated ASC"
    )
    assert selector_jql("project = WEB", "labels = a OR labels = b") == (
        "(project = WEB) AND (labels = a OR labels = b)"
    )


@pytest.mark.parametrize(
    ("jql", "problem"),
    [
        ("project = WEB", None),
        ('summary ~ "a) OR (b"', None),
        ("labels in (a, b) AND (status = Done OR status = 'In (x')", None),
        (r'summary ~ "say \"order by\" now"', None),
        ("labels = x) OR (project = SECRET", "closes a parenthesis"),
        ("(labels = x", "not closed"),
        ('summary ~ "open', "quoted string"),
        ("project = WEB order  by rank", "ORDER BY"),
        ("   ", "empty"),
    ],
)
def test_jql_problem(jql: str, problem: str | None) -> None:
    found = jql_problem(jql)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


# -- times, bodies, fields -----------------------------------------------------------------


def test_parse_time_reads_jira_offsets_and_epoch_ms() -> None:
    assert parse_time("2022-06-09T16:29:31.871-0700") == datetime(
        2022, 6, 9, 23, 29, 31, 871000, tzinfo=UTC
    )
    assert parse_time("2021-01-17T12:34:00.000+0000") == datetime(2021, 1, 17, 12, 34, tzinfo=UTC)
    # changelog/bulkfetch may give epoch ms (Atlassian's example: 1492070429 is 1970-01-18)
    assert parse_time(1492070429) == datetime(1970, 1, 18, 6, 27, 50, 429000, tzinfo=UTC)
    assert parse_time(None) is None
    assert parse_day("2027-01-15") == datetime(2027, 1, 15, tzinfo=UTC)


def test_adf_text() -> None:
    doc = {
        "version": 1,
        "type": "doc",
        "content": [
            {
                "type": "heading",
                "attrs": {"level": 2},
                "content": [{"type": "text", "text": "Plan"}],
            },
            {
                "type": "paragraph",
                "content": [
                    {"type": "text", "text": "See "},
                    {"type": "inlineCard", "attrs": {"url": "https://example.com/x"}},
                    {"type": "text", "text": " "},
                    {"type": "emoji", "attrs": {"shortName": ":tada:", "text": "🎉"}},
                ],
            },
            {"type": "rule"},
            {
                "type": "orderedList",
                "content": [
                    {
                        "type": "listItem",
                        "content": [
                            {"type": "paragraph", "content": [{"type": "text", "text": "one"}]}
                        ],
                    }
                ],
            },
            {"type": "codeBlock", "content": [{"type": "text", "text": "x = 1\ny = 2"}]},
            {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "abc"}}]},
        ],
    }
    assert adf_text(doc) == "Plan\nSee https://example.com/x 🎉\n- one\nx = 1\ny = 2"
    assert body_text("wiki *text*") == "wiki *text*"
    assert body_text(None) == ""


def test_discover_fields() -> None:
    cloud = [
        {"id": "parent", "name": "Parent", "custom": False, "clauseNames": ["parent"]},
        {
            "id": "customfield_10016",
            "name": "Story point estimate",
            "custom": True,
            "schema": {"custom": "com.pyxis.greenhopper.jira:jsw-story-points"},
        },
    ]
    assert discover_fields(cloud) == ("customfield_10016", None)
    dc = [
        {"id": "customfield_10105", "name": "Story Points", "custom": True, "schema": {}},
        {
            "id": "customfield_10700",
            "name": "Épica",  # a localized site: found by the schema, not the name
            "custom": True,
            "schema": {"custom": "com.pyxis.greenhopper.jira:gh-epic-link"},
        },
    ]
    assert discover_fields(dc) == ("customfield_10105", "customfield_10700")


def test_status_categories_from_the_status_list() -> None:
    statuses = [
        {"id": "1", "name": "Idea", "statusCategory": {"id": 2, "key": "new"}},
        {"id": "10000", "name": "Archived", "statusCategory": {"id": 1, "key": "undefined"}},
        {"id": "10004", "name": "QA", "statusCategory": {"id": 4, "key": "indeterminate"}},
    ]
    assert status_categories(statuses) == {
        "1": "new",
        "10000": "undefined",
        "10004": "indeterminate",
    }


# -- whole issues --------------------------------------------------------------------------

CLOUD_ISSUE: dict[str, Any] = {
    "expand": "operations,versionedRepresentations,editmeta,changelog,renderedFields",
    "id": "10627",
    "self": "https://airbyteio.atlassian.net/rest/api/3/issue/10627",
    "key": "TESTKEY13-1",
    "fields": {
        "statuscategorychangedate": "2022-06-09T16:29:32.382-0700",
        "issuetype": {"id": "10000", "name": "Epic", "subtask": False, "hierarchyLevel": 1},
        "project": {"id": "10016", "key": "TESTKEY13", "name": "Test project 13"},
        "fixVersions": [],
        "resolution": None,
        "resolutiondate": None,
        "created": "2022-06-09T16:29:31.871-0700",
        "labels": ["test"],
        "customfield_10016": None,
        "assignee": {
            "accountId": "5fc9e78d2730d800760becc4",
            "emailAddress": "integration-test@airbyte.io",
            "displayName": "integration test",
            "active": True,
            "accountType": "atlassian",
        },
        "updated": "2022-12-08T02:22:18.889-0800",
        "status": {
            "name": "To Do",
            "id": "10000",
            "statusCategory": {"id": 2, "key": "new", "colorName": "blue-gray", "name": "To Do"},
        },
        "description": {
            "version": 1,
            "type": "doc",
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Test issue"}]}],
        },
        "summary": "My epic",
        "reporter": {
            "accountId": "5fc9e78d2730d800760becc4",
            "displayName": "integration test",
        },
        "duedate": None,
        "comment": {"comments": [], "maxResults": 0, "total": 0, "startAt": 0},
        "parent": None,
    },
}

DC_ISSUE: dict[str, Any] = {
    "id": "12338",
    "key": "AR-86",
    "fields": {
        "issuetype": {"id": "3", "name": "Task", "subtask": False},
        "fixVersions": [{"id": "1", "name": "Iteration-10"}, {"id": "2", "name": "Later"}],
        "customfield_10105": 13.0,
        "customfield_10700": "AR-37",
        "resolutiondate": "2015-12-07T14:19:13.000-0800",
        "created": "2015-12-02T07:39:15.000-0800",
        "labels": [],
        "assignee": {
            "name": "mister.morris",
            "key": "mister.morris",
            "emailAddress": "mister.morris@uservoice.com",
            "displayName": "mister Morris",
        },
        "updated": "2016-02-01T08:17:04.000-0800",
        "status": {
            "name": "Ready",
            "id": "10000",
            "statusCategory": {"id": 2, "key": "new", "name": "To Do"},
        },
        "summary": "Moderation design",
    },
}


def test_a_real_cloud_issue() -> None:
    site = Site(
        cloud=True, base_url="https://airbyteio.atlassian.net", points_field="customfield_10016"
    )
    records = normalize_issue("jira", CLOUD_ISSUE, site, histories=[], comments=[])
    item = records.item
    assert item.key == "TESTKEY13-1"
    assert (item.title, item.item_type, item.status) == ("My epic", "Epic", "To Do")
    assert item.status_category is StatusCategory.TODO
    assert item.assignee == item.reporter == "5fc9e78d2730d800760becc4"
    assert item.updated == datetime(2022, 12, 8, 10, 22, 18, 889000, tzinfo=UTC)
    assert (item.parent, item.points, item.container, item.resolved) == (None, None, None, None)
    assert item.url == "https://airbyteio.atlassian.net/browse/TESTKEY13-1"
    (account,) = records.accounts  # the richer record (with e-mail) wins
    assert account.email == "integration-test@airbyte.io"


def test_a_real_dc_issue_with_history_and_comments() -> None:
    site = Site(
        cloud=False,
        base_url="https://jira.example",
        points_field="customfield_10105",
        epic_link_field="customfield_10700",
        status_categories={"10000": "new", "3": "indeterminate", "10001": "done"},
    )
    user = {"name": "mister.morris", "key": "JIRAUSER10100", "displayName": "mister Morris"}
    histories = [
        {
            "id": "10002",
            "author": user,
            "created": "2015-12-07T14:19:13.000-0800",
            "items": [
                {"field": "resolution", "fieldtype": "jira", "from": None, "to": "6"},
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "from": "3",
                    "fromString": "In Progress",
                    "to": "10001",
                    "toString": "Closed",
                },
            ],
        },
        {
            "id": "10001",
            "author": user,
            "created": "2015-12-03T09:00:00.000-0800",
            "items": [
                {
                    "field": "status",
                    "fieldtype": "jira",
                    "from": "10000",
                    "fromString": "Ready",
                    "to": "3",
                    "toString": "In Progress",
                }
            ],
        },
        {
            "id": "10003",
            "created": "2016-01-01T00:00:00.000+0000",
            "items": [{"field": "labels", "fieldtype": "jira", "toString": "x"}],
        },
    ]
    comments = [
        {"id": "1", "author": user, "body": "Done.", "created": "2015-12-07T14:20:00.000-0800"}
    ]
    records = normalize_issue("ar", DC_ISSUE, site, histories=histories, comments=comments)
    item = records.item
    assert (item.parent, item.points, item.container) == ("AR-37", 13.0, "Iteration-10")
    assert item.assignee == "mister.morris"
    assert item.resolved == datetime(2015, 12, 7, 22, 19, 13, tzinfo=UTC)
    first, second = records.changes
    assert (first.change_id, first.from_status, first.to_status) == (
        "10001",
        "Ready",
        "In Progress",
    )
    assert (first.from_category, first.to_category) == (
        StatusCategory.TODO,
        StatusCategory.IN_PROGRESS,
    )
    assert (second.to_status, second.to_category) == ("Closed", StatusCategory.DONE)
    assert second.at - first.at == timedelta(days=4, hours=5, minutes=19, seconds=13)
    assert {c.author for c in records.changes} == {"mister.morris"}
    (comment,) = records.comments
    assert (comment.body, comment.author) == ("Done.", "mister.morris")
    assert item.flags == ()


def test_payload_drift_is_flagged_not_fatal() -> None:
    site = Site(cloud=False, base_url="https://jira.example", points_field="customfield_10105")
    issue = {
        "key": "AR-1",
        "fields": {
            **DC_ISSUE["fields"],
            "customfield_10105": "a lot",
            "status": {"name": "Limbo", "statusCategory": {"key": "purple"}},
        },
    }
    history = {
        "id": "5",
        "created": "2016-01-01T00:00:00.000+0000",
        "items": [{"field": "status", "from": "10000", "to": "999", "toString": "Limbo"}],
    }
    records = normalize_issue("ar", issue, site, histories=[history], comments=[])
    item = records.item
    assert item.status_category is StatusCategory.IN_PROGRESS
    assert item.points is None
    assert "unreadable_story_points" in item.flags
    assert "unknown_status_category:status=purple" in item.flags
    (change,) = records.changes
    assert change.to_category is StatusCategory.IN_PROGRESS
    assert change.author is None


# -- assignee history ----------------------------------------------------------------------


def _assigned(history_id: str, at: str, item: dict[str, Any]) -> dict[str, Any]:
    return {"id": history_id, "created": at, "author": CLOUD_ISSUE["fields"]["reporter"],
            "items": [item]}


def test_cloud_assignee_changes_carry_account_ids() -> None:
    site = Site(cloud=True, base_url="https://x.atlassian.net")
    histories = [
        _assigned("20001", "2022-06-10T09:00:00.000+0000", {
            "field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
            "from": None, "fromString": None, "to": "557058:ann", "toString": "Ann",
            "tmpFromAccountId": None, "tmpToAccountId": "557058:ann"}),
        _assigned("20002", "2022-06-12T09:00:00.000+0000", {
            "field": "assignee", "fieldtype": "jira", "fieldId": "assignee",
            "from": "557058:ann", "fromString": "Ann",
            "to": "5fc9e78d2730d800760becc4", "toString": "integration test"}),
    ]
    records = normalize_issue("jira", CLOUD_ISSUE, site, histories=histories, comments=[])
    assert [(a.change_id, a.from_account, a.to_account) for a in records.assignments] == [
        ("20001", None, "557058:ann"), ("20002", "557058:ann", "5fc9e78d2730d800760becc4")]
    assert records.assignments[0].at == datetime(2022, 6, 10, 9, tzinfo=UTC)
    assert records.changes == ()  # not a status change


def test_dc_assignee_keys_become_usernames_where_the_issue_shows_the_user() -> None:
    site = Site(cloud=False, base_url="https://jira.example")
    history = {"id": "30001", "created": "2015-12-03T10:00:00.000-0800",
               "author": {"name": "ops.lead", "key": "JIRAUSER10200", "displayName": "Ops"},
               "items": [{"field": "assignee", "fieldtype": "jira",
                          "from": "JIRAUSER10200", "fromString": "Ops",
                          "to": "mister.morris", "toString": "mister Morris"}]}
    gone = {"id": "30002", "created": "2015-12-04T10:00:00.000-0800", "author": None,
            "items": [{"field": "assignee", "fieldtype": "jira",
                       "from": "mister.morris", "fromString": "mister Morris",
                       "to": "JIRAUSER99999", "toString": "Former employee"}]}
    records = normalize_issue("jira", DC_ISSUE, site, histories=[history, gone], comments=[])
    assert [(a.from_account, a.to_account) for a in records.assignments] == [
        ("ops.lead", "mister.morris"), ("mister.morris", "JIRAUSER99999")]
    assert "unresolved_user_key" in records.item.flags  # kept, and said
