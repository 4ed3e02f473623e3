"""``stratmap push`` against a real Redmine: a version's date written through the REST API
(``PUT /versions/{id}.json``, ``effective_date``) and read back from the server, and the
refusal a key without *Manage versions* meets."""

from __future__ import annotations

import random
from datetime import date

import pytest

from stratmap.connectors.base import AuthError, Target
from stratmap.connectors.redmine import RedmineConnector
from stratmap.models.plan import RedmineSource
from tests.redmine.admin import RedmineAdmin


def _connector(admin: RedmineAdmin, project: str, key: str) -> RedmineConnector:
    source = RedmineSource(kind="redmine", url=admin.server.url, project=project)
    return RedmineConnector("ops", source, token=key, sleep=lambda _: None,
                            rng=random.Random(7))


def _target(name: str, due: date | None) -> Target:
    return Target(milestone=f"ops.{name}", criteria={"version": name}, due=due, owner=None,
                  owner_account=None)


def test_push_sets_a_versions_date_and_a_recheck_sees_it(redmine: RedmineAdmin) -> None:
    project = redmine.project("push")
    moved = redmine.version(project, "v1", due="2026-09-24")
    undated = redmine.version(project, "v2")
    kept = redmine.version(project, "v3", due="2026-03-01")
    targets = [_target("v1", date(2026, 10, 1)), _target("v2", date(2026, 11, 2)),
               _target("v3", None), _target("v9", date(2026, 12, 1))]

    with _connector(redmine, project, redmine.server.key) as connector:
        found = connector.check(targets)
        assert [(d.container, d.tracker, d.plan, d.ref) for d in found.differences] == [
            ("version 'v1'", "2026-09-24", "2026-10-01", str(moved)),
            ("version 'v2'", None, "2026-11-02", str(undated)),
        ]
        assert len(found.missing) == 1 and "version 'v9'" in found.missing[0]
        # check only reads: the server still holds the old dates
        assert redmine._call("GET", f"/versions/{moved}.json")["version"]["due_date"] == (
            "2026-09-24")

        for difference in found.differences:
            connector.apply(difference)
        again = connector.check(targets)

    assert again.differences == []
    read = {vid: redmine._call("GET", f"/versions/{vid}.json")["version"]
            for vid in (moved, undated, kept)}
    assert read[moved]["due_date"] == "2026-10-01"
    assert read[undated]["due_date"] == "2026-11-02"
    assert read[kept]["due_date"] == "2026-03-01"  # no due in the plan: left alone
    assert read[moved]["name"] == "v1" and read[moved]["status"] == "open"


def test_a_key_without_manage_versions_is_refused_with_the_permission_named(
        redmine: RedmineAdmin) -> None:
    project = redmine.project("pushrep")
    # Reporter: browses issues and versions, but has no Manage versions (Redmine's default
    # data gives that to Manager and Developer).
    reporter = next(r["id"] for r in redmine._call("GET", "/roles.json")["roles"]
                    if r["name"] == "Reporter")
    redmine._call("POST", f"/projects/{project}/memberships.json", body={
        "membership": {"user_id": redmine.user("reporter1"), "role_ids": [reporter]}})
    version = redmine.version(project, "v1", due="2026-09-24")
    key = redmine.api_key_of("reporter1")
    with _connector(redmine, project, key) as connector:
        [difference] = connector.check([_target("v1", date(2026, 10, 1))]).differences
        with pytest.raises(AuthError) as raised:
            connector.apply(difference)
    assert "HTTP 403" in raised.value.message
    assert "Manage versions" in raised.value.hint
    assert key not in str(raised.value) and redmine.server.key not in str(raised.value)
    assert redmine._call("GET", f"/versions/{version}.json")["version"]["due_date"] == (
        "2026-09-24")
