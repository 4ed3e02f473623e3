"""``stratmap push`` on GitHub: a milestone's due day, on the wire the fake speaks as GitHub
does (Pacific-midnight ``due_on``, 403 with ``x-accepted-github-permissions``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from stratmap.connectors.base import AuthError, Difference, FatalSourceError, Pusher, Target
from stratmap.connectors.github import GithubConnector, due_day
from tests.fakes.github_api import REPO, FakeGithub, activated, github_due_on


@pytest.fixture
def github() -> Iterator[FakeGithub]:
    fake = FakeGithub(token="ghp_secret-token-value")
    fake.add_milestone(1, "v2 launch", due_on="2026-09-24T07:00:00Z")
    fake.add_milestone(2, "Beta", due_on=None)
    fake.add_milestone(3, "Old release", due_on="2026-01-15T08:00:00Z", state="closed")
    yield from activated(fake)


@pytest.fixture
def connector(github: FakeGithub) -> Iterator[GithubConnector]:
    made = github.connector()
    yield made
    made.close()


def target(title: str, due: date | None, *, account: str | None = None,
           **criteria: object) -> Target:
    return Target(milestone=f"web.{title}", criteria=criteria or {"milestone": title},
                  due=due, owner="alice" if account else None, owner_account=account)


def test_the_connector_is_a_pusher(connector: GithubConnector) -> None:
    assert isinstance(connector, Pusher)


def test_the_fake_stores_due_on_as_github_does() -> None:
    # Midnight UTC is the evening before in Pacific time: GitHub keeps the day before.
    assert github_due_on("2026-09-24T00:00:00Z") == "2026-09-23T07:00:00Z"
    assert github_due_on("2026-09-24T12:00:00Z") == "2026-09-24T07:00:00Z"
    assert github_due_on("2026-12-24T12:00:00Z") == "2026-12-24T08:00:00Z"
    assert due_day("2026-12-24T08:00:00Z") == date(2026, 12, 24)
    assert due_day(None) is None


def test_check_lists_every_milestone_once_and_only_reads(
        github: FakeGithub, connector: GithubConnector) -> None:
    found = connector.check([target("v2 launch", date(2026, 10, 1)),
                             target("Beta", date(2026, 11, 2)),
                             target("Old release", date(2026, 1, 15))])
    assert [(r.method, r.url.path) for r in github.requests] == [
        ("GET", f"/repos/{REPO}/milestones")]
    params = github.requests[0].url.params
    assert params["state"] == "all"  # a closed milestone is still a container
    assert params["per_page"] == "100"
    assert github.requests[0].headers["authorization"] == "Bearer ghp_secret-token-value"
    assert github.edits() == []
    assert found.missing == []
    assert [(d.container, d.field, d.tracker, d.plan, d.ref) for d in found.differences] == [
        ("milestone 'v2 launch'", "due", "2026-09-24", "2026-10-01", "1"),
        ("milestone 'Beta'", "due", None, "2026-11-02", "2"),
    ]
    assert found.differences[0].milestone == "web.v2 launch"


def test_a_milestone_already_due_on_the_plans_day_is_no_difference(
        connector: GithubConnector) -> None:
    # 07:00Z is midnight in Pacific daylight time: GitHub's way of saying the 24th.
    assert connector.check([target("v2 launch", date(2026, 9, 24))]).differences == []


def test_check_apply_check_shows_no_difference(github: FakeGithub,
                                               connector: GithubConnector) -> None:
    first = connector.check([target("v2 launch", date(2026, 10, 1)),
                             target("Beta", date(2026, 12, 24))])
    for difference in first.differences:
        connector.apply(difference)
    assert github.edits() == [
        ("PATCH", f"/repos/{REPO}/milestones/1", {"due_on": "2026-10-01T12:00:00Z"}),
        ("PATCH", f"/repos/{REPO}/milestones/2", {"due_on": "2026-12-24T12:00:00Z"}),
    ]
    patch = next(r for r in github.requests if r.method == "PATCH")
    assert patch.headers["content-type"] == "application/json"
    assert github.milestones[1]["due_on"] == "2026-10-01T07:00:00Z"
    assert github.milestones[2]["due_on"] == "2026-12-24T08:00:00Z"  # winter: PST
    again = connector.check([target("v2 launch", date(2026, 10, 1)),
                             target("Beta", date(2026, 12, 24))])
    assert again.differences == []
    assert again.missing == []


def test_milestones_on_a_later_page_are_found(github: FakeGithub,
                                              connector: GithubConnector) -> None:
    for number in range(10, 130):
        github.add_milestone(number, f"Sprint {number}", due_on="2026-03-01T08:00:00Z")
    found = connector.check([target("Sprint 129", date(2026, 3, 2))])
    assert [r.url.params.get("page") for r in github.requests] == [None, "2"]
    assert [(d.ref, d.tracker) for d in found.differences] == [("129", "2026-03-01")]


def test_a_title_the_repository_lacks_is_reported_missing_with_the_repo(
        github: FakeGithub, connector: GithubConnector) -> None:
    found = connector.check([target("v3 launch", date(2026, 10, 1)),
                             target("v2 launch", date(2026, 9, 24))])
    assert found.differences == []
    assert len(found.missing) == 1
    assert "milestone 'v3 launch'" in found.missing[0]
    assert REPO in found.missing[0]
    assert "web.v3 launch" in found.missing[0]


def test_titles_match_exactly(connector: GithubConnector) -> None:
    found = connector.check([target("V2 Launch", date(2026, 10, 1))])
    assert found.differences == []
    assert len(found.missing) == 1


def test_a_target_without_due_is_left_alone_without_a_request(
        github: FakeGithub, connector: GithubConnector) -> None:
    # A milestone has no assignee: an owner's account alone is nothing to push.
    found = connector.check([target("v2 launch", None, account="alice-gh"),
                             target("Beta", None)])
    assert found.differences == []
    assert found.missing == []
    assert github.requests == []


def test_other_selectors_name_no_milestone(github: FakeGithub,
                                           connector: GithubConnector) -> None:
    found = connector.check([target("x", date(2026, 10, 1), labels=["web"]),
                             target("y", date(2026, 10, 1), milestone="v2 launch",
                                    labels=["web"])])
    assert found.differences == [] and found.missing == []
    assert github.requests == []


def test_a_refused_edit_is_an_auth_error_saying_what_the_token_needs(
        github: FakeGithub, connector: GithubConnector) -> None:
    github.editable = False
    [difference] = connector.check([target("v2 launch", date(2026, 10, 1))]).differences
    with pytest.raises(AuthError) as raised:
        connector.apply(difference)
    error = raised.value
    assert error.source == "site"
    assert "milestone 'v2 launch'" in error.message
    assert "Resource not accessible by personal access token" in error.message
    assert "Issues: Read and write" in error.hint
    assert "without --apply only reads" in error.hint
    assert "issues=write" in error.hint  # GitHub's x-accepted-github-permissions
    assert "ghp_secret-token-value" not in str(error)
    assert github.milestones[1]["due_on"] == "2026-09-24T07:00:00Z"
    assert github.sleeps == []  # a refusal is not retried


def test_a_deleted_milestone_is_a_fatal_error_with_githubs_message(
        github: FakeGithub, connector: GithubConnector) -> None:
    [difference] = connector.check([target("v2 launch", date(2026, 10, 1))]).differences
    del github.milestones[1]
    with pytest.raises(FatalSourceError) as raised:
        connector.apply(difference)
    assert not isinstance(raised.value, AuthError)
    assert "HTTP 404: Not Found" in raised.value.message
    assert "run `stratmap push` again" in raised.value.hint


def test_a_validation_failure_passes_githubs_errors_on(
        github: FakeGithub, connector: GithubConnector) -> None:
    github.faults.append((422, {}, {"message": "Validation Failed", "errors": [
        {"resource": "Milestone", "code": "invalid", "field": "due_on"}],
        "documentation_url": "https://docs.github.com/rest", "status": "422"}))
    difference = Difference(milestone="web.v2", container="milestone 'v2 launch'",
                            field="due", tracker=None, plan="2026-10-01", ref="1")
    with pytest.raises(FatalSourceError) as raised:
        connector.apply(difference)
    assert "Validation Failed; due_on invalid" in raised.value.message


def test_a_server_error_on_an_edit_is_retried(github: FakeGithub,
                                              connector: GithubConnector) -> None:
    github.fail_next(502)
    difference = Difference(milestone="web.v2", container="milestone 'v2 launch'",
                            field="due", tracker=None, plan="2026-10-01", ref="1")
    connector.apply(difference)
    assert [r.method for r in github.requests] == ["PATCH", "PATCH"]
    assert len(github.sleeps) == 1
    assert github.milestones[1]["due_on"] == "2026-10-01T07:00:00Z"


def test_only_the_due_day_can_be_applied(github: FakeGithub,
                                         connector: GithubConnector) -> None:
    with pytest.raises(ValueError, match="assignee"):
        connector.apply(Difference(milestone="web.v2", container="milestone 'v2 launch'",
                                   field="assignee", tracker=None, plan="alice", ref="1"))
    assert github.requests == []


def test_the_patch_body_is_plain_json(github: FakeGithub, connector: GithubConnector) -> None:
    connector.apply(Difference(milestone="web.v2", container="milestone 'Beta'", field="due",
                               tracker=None, plan="2027-02-28", ref="2"))
    [request] = github.requests
    assert json.loads(request.content) == {"due_on": "2027-02-28T12:00:00Z"}
