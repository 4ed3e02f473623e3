"""``stratmap push`` on Redmine: a version's date, on the wire the fake speaks as Redmine
5.0's VersionsController does (``due_date`` read, ``effective_date`` written, 204, a bare
403). The same against a real Redmine: tests/redmine/test_push_live.py."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date

import httpx
import pytest

from stratmap.connectors.base import AuthError, Difference, FatalSourceError, Pusher, Target
from stratmap.connectors.redmine import RedmineConnector
from stratmap.models.plan import RedmineSource
from tests.fakes.redmine_api import URL, FakeRedmine

KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake() -> FakeRedmine:
    made = FakeRedmine()
    made.projects["web"] = (2, "Web")
    made.add_version(11, "v1", due="2026-09-24")
    made.add_version(12, "v2")
    made.add_version(13, "Shared 2026", due="2026-12-31", project="web", sharing="system",
                     shared_with=("ops",))
    made.add_version(14, "web only", due="2026-05-01", project="web")
    return made


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def redmine(fake: FakeRedmine, sleeps: list[float]) -> Iterator[RedmineConnector]:
    made = make(fake, sleeps)
    yield made
    made.close()


def make(fake: FakeRedmine, sleeps: list[float], project: str | None = "ops",
         ) -> RedmineConnector:
    source = RedmineSource(kind="redmine", url=URL, project=project)
    return RedmineConnector("ops", source, token=KEY, transport=httpx.MockTransport(fake),
                            sleep=sleeps.append, rng=random.Random(7))


def target(name: str, due: date | None, *, account: str | None = None,
           **criteria: object) -> Target:
    return Target(milestone=f"ops.{name}", criteria=criteria or {"version": name}, due=due,
                  owner="alice" if account else None, owner_account=account)


def diff(ref: str, plan: str = "2026-10-01") -> Difference:
    return Difference(milestone="ops.v1", container="version 'v1'", field="due",
                      tracker=None, plan=plan, ref=ref)


def test_the_connector_is_a_pusher(redmine: RedmineConnector) -> None:
    assert isinstance(redmine, Pusher)


def test_check_reads_the_projects_versions_once_and_writes_nothing(
        fake: FakeRedmine, redmine: RedmineConnector) -> None:
    found = redmine.check([target("v1", date(2026, 10, 1)), target("v2", date(2026, 11, 2)),
                           target("Shared 2026", date(2026, 12, 31))])
    assert [(r.method, r.url.path) for r in fake.requests] == [
        ("GET", "/projects/ops/versions.json")]
    assert fake.requests[0].headers["x-redmine-api-key"] == KEY
    assert fake.edits() == []
    assert found.missing == []
    assert [(d.container, d.field, d.tracker, d.plan, d.ref) for d in found.differences] == [
        ("version 'v1'", "due", "2026-09-24", "2026-10-01", "11"),
        ("version 'v2'", "due", None, "2026-11-02", "12"),
    ]


def test_check_apply_check_shows_no_difference(fake: FakeRedmine,
                                               redmine: RedmineConnector) -> None:
    targets = [target("v1", date(2026, 10, 1)), target("Shared 2026", date(2027, 1, 15))]
    for difference in redmine.check(targets).differences:
        redmine.apply(difference)
    assert fake.edits() == [
        ("PUT", "/versions/11.json", {"version": {"effective_date": "2026-10-01"}}),
        ("PUT", "/versions/13.json", {"version": {"effective_date": "2027-01-15"}}),
    ]
    put = next(r for r in fake.requests if r.method == "PUT")
    assert put.headers["content-type"] == "application/json"
    assert put.headers["x-redmine-api-key"] == KEY
    assert fake.versions[11]["due_date"] == "2026-10-01"
    assert fake.versions[13]["due_date"] == "2027-01-15"
    again = redmine.check(targets)
    assert again.differences == [] and again.missing == []


def test_a_version_the_project_does_not_see_is_reported_missing(
        fake: FakeRedmine, redmine: RedmineConnector) -> None:
    found = redmine.check([target("web only", date(2026, 10, 1)),
                           target("v9", date(2026, 10, 1))])
    assert found.differences == []
    assert len(found.missing) == 2
    assert "version 'web only'" in found.missing[0] and "project ops" in found.missing[0]
    assert "ops.v9" in found.missing[1]


def test_a_name_two_visible_versions_share_is_not_pushed(fake: FakeRedmine,
                                                         redmine: RedmineConnector) -> None:
    fake.add_version(15, "v1", due="2026-01-01", project="web", sharing="system",
                     shared_with=("ops",))
    found = redmine.check([target("v1", date(2026, 10, 1))])
    assert found.differences == []
    [sentence] = found.missing
    assert "2 versions" in sentence and "11" in sentence and "15" in sentence


def test_without_a_project_nothing_is_asked_and_the_reason_is_given(
        fake: FakeRedmine, sleeps: list[float]) -> None:
    with make(fake, sleeps, project=None) as site:
        found = site.check([target("v1", date(2026, 10, 1))])
    assert fake.requests == []
    [sentence] = found.missing
    assert "names no project" in sentence and "version 'v1'" in sentence


def test_a_target_without_due_is_left_alone_without_a_request(
        fake: FakeRedmine, redmine: RedmineConnector) -> None:
    found = redmine.check([target("v1", None, account="dev1"), target("v2", None)])
    assert found.differences == [] and found.missing == []
    assert fake.requests == []


def test_other_selectors_name_no_version(fake: FakeRedmine,
                                         redmine: RedmineConnector) -> None:
    found = redmine.check([target("q", date(2026, 10, 1), query=7),
                           target("t", date(2026, 10, 1), version="v1", tracker="Bug")])
    assert found.differences == [] and found.missing == []
    assert fake.requests == []


def test_an_unknown_project_is_a_fatal_error_naming_it(fake: FakeRedmine,
                                                       sleeps: list[float]) -> None:
    with make(fake, sleeps, project="nope") as site, pytest.raises(FatalSourceError) as raised:
        site.check([target("v1", date(2026, 10, 1))])
    assert "nope" in raised.value.hint


def test_a_refused_edit_is_an_auth_error_naming_manage_versions(
        fake: FakeRedmine, redmine: RedmineConnector, sleeps: list[float]) -> None:
    fake.editable = False
    [difference] = redmine.check([target("v1", date(2026, 10, 1))]).differences
    with pytest.raises(AuthError) as raised:
        redmine.apply(difference)
    error = raised.value
    assert error.source == "ops"
    assert "version 'v1'" in error.message and "HTTP 403" in error.message
    assert "Manage versions" in error.hint
    assert "without --apply only reads" in error.hint
    assert KEY not in str(error)
    assert fake.versions[11]["due_date"] == "2026-09-24"
    assert sleeps == []


def test_a_rejected_date_passes_redmines_errors_on(fake: FakeRedmine,
                                                   redmine: RedmineConnector) -> None:
    with pytest.raises(FatalSourceError) as raised:
        redmine.apply(diff("11", plan="2026-10-01"))  # fine
        fake.fail("/versions/11.json", httpx.Response(
            422, json={"errors": ["Due date is not a valid date"]}))
        redmine.apply(diff("11", plan="2026-10-02"))
    assert not isinstance(raised.value, AuthError)
    assert "Due date is not a valid date" in raised.value.message
    assert "version 'v1'" in raised.value.message
    assert fake.versions[11]["due_date"] == "2026-10-01"


def test_a_deleted_version_is_a_fatal_error(fake: FakeRedmine,
                                            redmine: RedmineConnector) -> None:
    with pytest.raises(FatalSourceError) as raised:
        redmine.apply(diff("99"))
    assert "HTTP 404" in raised.value.message
    assert "run `stratmap push` again" in raised.value.hint


def test_a_server_error_on_an_edit_is_retried(fake: FakeRedmine, redmine: RedmineConnector,
                                              sleeps: list[float]) -> None:
    fake.fail("/versions/11.json", httpx.Response(503))
    redmine.apply(diff("11"))
    assert [r.method for r in fake.requests] == ["PUT", "PUT"]
    assert len(sleeps) == 1
    assert fake.versions[11]["due_date"] == "2026-10-01"


def test_only_the_date_can_be_applied(fake: FakeRedmine, redmine: RedmineConnector) -> None:
    with pytest.raises(ValueError, match="assignee"):
        redmine.apply(Difference(milestone="ops.v1", container="version 'v1'",
                                 field="assignee", tracker=None, plan="5", ref="11"))
    assert fake.requests == []
