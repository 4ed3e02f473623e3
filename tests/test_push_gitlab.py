"""``stratmap push`` on GitLab: a milestone's due date (the project's, or its group's), on
the wire the fake speaks as GitLab's REST v4 does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from stratmap.connectors.base import AuthError, Difference, FatalSourceError, Pusher, Target
from stratmap.connectors.gitlab import GitlabConnector
from tests.fakes.gitlab_api import GROUP_ID, PROJECT, PROJECT_ID, FakeGitlab, activated

TOKEN = "glpat-secret-token-value"


@pytest.fixture
def gitlab() -> Iterator[FakeGitlab]:
    fake = FakeGitlab(token=TOKEN)
    fake.add_milestone(301, "v2 launch", due="2026-09-24")
    fake.add_milestone(302, "Beta")
    fake.add_milestone(303, "Old release", due="2026-01-15", state="closed")
    fake.add_milestone(901, "Q4", due="2026-12-31", group=True)
    yield from activated(fake)


@pytest.fixture
def connector(gitlab: FakeGitlab) -> Iterator[GitlabConnector]:
    made = gitlab.connector()
    yield made
    made.close()


def target(title: str, due: date | None, *, account: str | None = None,
           **criteria: object) -> Target:
    return Target(milestone=f"web.{title}", criteria=criteria or {"milestone": title},
                  due=due, owner="alice" if account else None, owner_account=account)


def due(title: str, gitlab: FakeGitlab) -> str | None:
    return next(m["due_date"] for m in gitlab.milestones.values() if m["title"] == title)


def test_the_connector_is_a_pusher(connector: GitlabConnector) -> None:
    assert isinstance(connector, Pusher)


def test_check_lists_the_projects_and_groups_milestones_once_and_only_reads(
        gitlab: FakeGitlab, connector: GitlabConnector) -> None:
    found = connector.check([target("v2 launch", date(2026, 10, 1)),
                             target("Beta", date(2026, 11, 2)),
                             target("Old release", date(2026, 1, 15)),
                             target("Q4", date(2027, 1, 8))])
    [request] = gitlab.requests
    assert request.method == "GET"
    assert request.url.raw_path.split(b"?")[0].decode() == (
        f"/api/v4/projects/{PROJECT.replace('/', '%2F')}/milestones")
    assert request.url.params["include_ancestors"] == "true"
    assert request.url.params["per_page"] == "100"
    assert "state" not in request.url.params  # a closed milestone is still a container
    assert request.headers["private-token"] == TOKEN
    assert gitlab.edits() == []
    assert found.missing == []
    assert [(d.container, d.tracker, d.plan, d.ref) for d in found.differences] == [
        ("milestone 'v2 launch'", "2026-09-24", "2026-10-01",
         f"projects/{PROJECT_ID}/milestones/301"),
        ("milestone 'Beta'", None, "2026-11-02", f"projects/{PROJECT_ID}/milestones/302"),
        ("milestone 'Q4'", "2026-12-31", "2027-01-08", f"groups/{GROUP_ID}/milestones/901"),
    ]
    assert {d.field for d in found.differences} == {"due"}


def test_check_apply_check_shows_no_difference(gitlab: FakeGitlab,
                                               connector: GitlabConnector) -> None:
    targets = [target("v2 launch", date(2026, 10, 1)), target("Q4", date(2027, 1, 8))]
    for difference in connector.check(targets).differences:
        connector.apply(difference)
    assert gitlab.edits() == [
        ("PUT", f"/api/v4/projects/{PROJECT_ID}/milestones/301", {"due_date": "2026-10-01"}),
        ("PUT", f"/api/v4/groups/{GROUP_ID}/milestones/901", {"due_date": "2027-01-08"}),
    ]
    put = next(r for r in gitlab.requests if r.method == "PUT")
    assert put.headers["content-type"] == "application/json"
    assert put.headers["private-token"] == TOKEN
    assert due("v2 launch", gitlab) == "2026-10-01"
    assert due("Q4", gitlab) == "2027-01-08"
    again = connector.check(targets)
    assert again.differences == [] and again.missing == []


def test_a_project_milestone_wins_over_a_group_one_of_the_same_title(
        gitlab: FakeGitlab, connector: GitlabConnector) -> None:
    gitlab.add_milestone(902, "v2 launch", due="2026-09-01", group=True)
    [difference] = connector.check([target("v2 launch", date(2026, 10, 1))]).differences
    assert difference.ref == f"projects/{PROJECT_ID}/milestones/301"
    assert difference.tracker == "2026-09-24"


def test_milestones_on_a_later_page_are_found(gitlab: FakeGitlab,
                                              connector: GitlabConnector) -> None:
    for mid in range(1000, 1120):
        gitlab.add_milestone(mid, f"Sprint {mid}", due="2026-03-01")
    found = connector.check([target("v2 launch", date(2026, 9, 24))])
    assert [r.url.params.get("page") for r in gitlab.requests] == [None, "2"]
    assert found.differences == [] and found.missing == []


def test_a_title_that_does_not_exist_is_reported_missing_with_the_project(
        gitlab: FakeGitlab, connector: GitlabConnector) -> None:
    found = connector.check([target("v3 launch", date(2026, 10, 1))])
    assert found.differences == []
    [sentence] = found.missing
    assert "milestone 'v3 launch'" in sentence and PROJECT in sentence
    assert "web.v3 launch" in sentence


def test_a_target_without_due_is_left_alone_without_a_request(
        gitlab: FakeGitlab, connector: GitlabConnector) -> None:
    found = connector.check([target("v2 launch", None, account="alice"),
                             target("Beta", None)])
    assert found.differences == [] and found.missing == []
    assert gitlab.requests == []


def test_other_selectors_name_no_milestone(gitlab: FakeGitlab,
                                           connector: GitlabConnector) -> None:
    found = connector.check([target("e", date(2026, 10, 1), epic=5),
                             target("l", date(2026, 10, 1), labels=["web"])])
    assert found.differences == [] and found.missing == []
    assert gitlab.requests == []


def test_a_refused_edit_is_an_auth_error_saying_what_the_token_needs(
        gitlab: FakeGitlab, connector: GitlabConnector) -> None:
    gitlab.editable = False
    [difference] = connector.check([target("v2 launch", date(2026, 10, 1))]).differences
    with pytest.raises(AuthError) as raised:
        connector.apply(difference)
    error = raised.value
    assert error.source == "shop"
    assert "milestone 'v2 launch'" in error.message and "403 Forbidden" in error.message
    assert "api scope" in error.hint and "Reporter" in error.hint
    assert "without --apply only reads" in error.hint
    assert TOKEN not in str(error)
    assert due("v2 launch", gitlab) == "2026-09-24"
    assert gitlab.sleeps == []


def test_a_deleted_milestone_is_a_fatal_error_with_gitlabs_message(
        gitlab: FakeGitlab, connector: GitlabConnector) -> None:
    [difference] = connector.check([target("v2 launch", date(2026, 10, 1))]).differences
    del gitlab.milestones[301]
    with pytest.raises(FatalSourceError) as raised:
        connector.apply(difference)
    assert not isinstance(raised.value, AuthError)
    assert "404 Milestone Not Found" in raised.value.message
    assert "run `stratmap push` again" in raised.value.hint


def test_a_bad_request_passes_gitlabs_error_on(gitlab: FakeGitlab,
                                                connector: GitlabConnector) -> None:
    gitlab.faults.append((400, {}, {"message": {"due_date": ["is invalid"]}}))
    with pytest.raises(FatalSourceError) as raised:
        connector.apply(Difference(milestone="web.v2", container="milestone 'v2 launch'",
                                   field="due", tracker=None, plan="2026-10-01",
                                   ref=f"projects/{PROJECT_ID}/milestones/301"))
    assert "HTTP 400: due_date is invalid" in raised.value.message


def test_a_rate_limited_edit_waits_and_is_retried(gitlab: FakeGitlab,
                                                  connector: GitlabConnector) -> None:
    gitlab.fail_next(429, retry_after="7")
    connector.apply(Difference(milestone="web.v2", container="milestone 'Beta'", field="due",
                               tracker=None, plan="2027-02-28",
                               ref=f"projects/{PROJECT_ID}/milestones/302"))
    assert [r.method for r in gitlab.requests] == ["PUT", "PUT"]
    assert gitlab.sleeps and gitlab.sleeps[0] >= 7
    assert due("Beta", gitlab) == "2027-02-28"


def test_only_the_due_date_can_be_applied(gitlab: FakeGitlab,
                                          connector: GitlabConnector) -> None:
    with pytest.raises(ValueError, match="assignee"):
        connector.apply(Difference(milestone="web.v2", container="milestone 'Beta'",
                                   field="assignee", tracker=None, plan="alice",
                                   ref=f"projects/{PROJECT_ID}/milestones/302"))
    assert gitlab.requests == []
