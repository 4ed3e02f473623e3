"""Every fake answers in the shape of the real tracker's recorded responses.

The shapes in ``tests/recordings/`` come from responses recorded against (or documented
by) the real services, under permissive licences (``tests/recordings/README.md``). Each
test here asks a fake the same question and checks that its answer has every key the
recording has, with the same type, so a fake cannot drift from the real API without a
test failing. Where a fake leaves a key out on purpose, the test says which and why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import requests

from tests.fakes.azure_devops_api import PAT, FakeAzureDevops
from tests.fakes.github_api import FakeGithub, issue
from tests.fakes.jira_server import FakeJira
from tests.recordings.shapes import common, differences, load, shape_of

AT = datetime(2026, 9, 1, 9, tzinfo=UTC)


# -- the checker itself ---------------------------------------------------------------------

def test_the_checker_finds_a_missing_key_a_changed_type_and_a_null() -> None:
    recorded = shape_of({"id": 1, "user": {"login": "a", "site_admin": False},
                         "labels": [{"name": "x", "color": "f00"}, {"name": "y"}],
                         "closed_at": None})
    assert recorded["labels"] == [{"name": "string"}]  # what every element has
    assert differences(recorded, {"id": 1, "user": {"login": "a", "site_admin": False},
                                  "labels": [{"name": "z"}], "closed_at": "2026"}) == []
    assert differences(recorded, {"id": "1", "user": {"login": None},
                                  "labels": [{}], "closed_at": None}) == [
        "$.id: number in the recording, string in the fake",
        "$.user.login: string in the recording, null in the fake",
        "$.user.site_admin: missing in the fake",
        "$.labels[].name: missing in the fake",
    ]
    assert common(["string", "number"]) == "null"


# -- Jira -------------------------------------------------------------------------------------

def test_the_jira_fake_answers_search_and_comments_as_jira_cloud_recorded() -> None:
    with FakeJira(deployment="cloud") as jira:
        jira.add_user("557058:alice", "Alice", "alice@northwind.example")
        jira.add_issue("WEB-1", summary="Checkout", created=AT, assignee="557058:alice",
                       reporter="557058:alice", labels=["web"])
        jira.add_comment("WEB-1", "Looks good", at=AT + timedelta(hours=1),
                         author="557058:alice")
        auth = (jira.email, jira.token)
        fields = ("summary,status,issuetype,assignee,reporter,creator,labels,duedate,"
                  "resolutiondate,created,updated,priority,project,resolution")
        found = requests.post(f"{jira.url}/rest/api/3/search/jql", auth=auth, timeout=10,
                              json={"jql": "key = WEB-1", "fields": fields.split(",")}).json()
        comments = requests.get(f"{jira.url}/rest/api/3/issue/WEB-1/comment", auth=auth,
                                timeout=10).json()
    (answer,) = found["issues"]
    assert differences(load("jira/search_issue"), answer, ignore={
        "$.fields.comment",  # asked for separately (issue/KEY/comment), never embedded
    }) == []
    assert differences(load("jira/comments"), comments["comments"]) == []


# -- GitHub -----------------------------------------------------------------------------------

def test_the_github_fake_answers_the_issue_list_as_github_recorded() -> None:
    fake = FakeGithub(name="site")
    fake.add(issue(1, title="Checkout", created=AT, updated=AT))
    with fake.router, httpx.Client() as client:
        answer = client.get("https://api.github.com/repos/northwind/website/issues",
                            params={"state": "all"}).json()
    assert answer and differences(load("github/issues"), answer) == []


# -- Azure DevOps -----------------------------------------------------------------------------

@pytest.fixture
def boards() -> FakeAzureDevops:
    fake = FakeAzureDevops()
    fake.add(1, title="Epic", created=AT, kind="Epic")
    fake.add(2, title="Story", created=AT, parent=1, assignee="erin")
    fake.change(2, at=AT + timedelta(days=1), by="erin", **{"System.State": "Active"})
    return fake


def ado(fake: FakeAzureDevops, method: str, path: str, **kwargs: object) -> object:
    with fake.router, httpx.Client(auth=("", PAT)) as client:
        response = client.request(method, f"https://dev.azure.com/northwind/Website/_apis/wit/"
                                  f"{path}", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    return response.json()


def test_the_azure_devops_fake_answers_updates_as_documented(boards: FakeAzureDevops) -> None:
    answer = ado(boards, "GET", "workItems/2/updates", params={"api-version": "7.1"})
    assert isinstance(answer, dict)
    # The recording's update changes fields; the first (creation) has no oldValue.
    later = {**answer, "value": answer["value"][1:]}
    assert differences(load("azure_devops/updates"), later) == []


def test_the_azure_devops_fake_answers_states_wiql_and_a_patch_as_documented(
        boards: FakeAzureDevops) -> None:
    states = ado(boards, "GET", "workitemtypes/Epic/states", params={"api-version": "7.1"})
    assert differences(load("azure_devops/states"), states) == []
    wiql = ado(boards, "POST", "wiql", params={"api-version": "7.1"},
               json={"query": "SELECT [System.Id] FROM WorkItems WHERE [System.Id] > 0"})
    assert differences(load("azure_devops/wiql"), wiql) == []
    patched = ado(boards, "PATCH", "workitems/2", params={"api-version": "7.1"},
                  headers={"content-type": "application/json-patch+json"},
                  content=json.dumps([{"op": "test", "path": "/rev", "value": 2},
                                      {"op": "add", "path": "/fields/System.Tags",
                                       "value": "Tag1; Tag2"}]))
    assert differences(load("azure_devops/workitem_patched"), patched) == []


# -- GitLab -----------------------------------------------------------------------------------

def test_the_gitlab_fake_answers_issues_as_gitlabs_own_api_schema_says() -> None:
    import jsonschema

    from tests.fakes.gitlab_api import FakeGitlab, milestone
    from tests.fakes.gitlab_api import issue as gitlab_issue
    from tests.recordings.shapes import HERE

    # Every key and type the schema requires; keys it does not know are allowed (newer
    # GitLab adds some, such as a user's "locked", that this schema's version forbade).
    schema = open_schema(json.loads((HERE / "gitlab" / "issue.schema.json").read_text()))
    fake = FakeGitlab()
    fake.add(gitlab_issue(1, title="Checkout", created=AT, updated=AT, assignees=["erin"],
                          milestone_=milestone(3, "v2 launch", due="2027-01-15")))
    fake.add(gitlab_issue(2, title="Closed", created=AT, updated=AT, state="closed",
                          closed_at=AT))
    with fake.router, httpx.Client() as client:
        answer = client.get("https://gitlab.example.com/api/v4/projects/42/issues",
                            params={"scope": "all"}).json()
    assert len(answer) == 2
    for found in answer:
        jsonschema.validate(found, schema)


def open_schema(schema: object) -> object:
    """``schema`` without ``additionalProperties: false``, at any depth."""
    if isinstance(schema, dict):
        return {k: open_schema(v) for k, v in schema.items()
                if not (k == "additionalProperties" and v is False)}
    if isinstance(schema, list):
        return [open_schema(v) for v in schema]
    return schema
