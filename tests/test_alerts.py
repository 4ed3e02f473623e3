"""Alerts and events on changes only: transitions, deduplication, re-notification, digests,
and failed deliveries that stay due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stratmap.models.plan import Plan
from stratmap.models.report import Finding, GoalReport, ItemCounts, MilestoneReport, Report, Status
from stratmap.models.store import Store, load_marks, save_marks
from stratmap.publish.changes import alert_text, diff, due_alerts, mark_delivered
from stratmap.publish.prefect_ui import deliver

NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)


def plan(**alerts: Any) -> Plan:
    return Plan.model_validate({
        "version": 1, "name": "P", "leader": "alice",
        "people": {"alice": {"name": "Alice"}, "bob": {"name": "Bob"}},
        "goals": [{"id": "g", "title": "G", "owner": "alice", "milestones": [
            {"id": "m", "title": "M", "owner": "bob"}]}],
        "alerts": {"channels": {"slack": "block:slack-webhook/s", "mail": "block:email/m"},
                   "routes": [{"on": ["at_risk", "off_track"], "notify": ["owner", "leader"],
                               "via": ["slack"]},
                              {"on": ["stalled"], "notify": ["leader"], "via": ["mail"]}],
                   **alerts},
    })


def report(status: Status, *, stalled: bool = False) -> Report:
    milestone = MilestoneReport(id="g.m", title="M", owner="bob", status=status, progress=0.5,
                                start=None, due=None, items=ItemCounts(total=2, done=1),
                                last_movement=None)
    findings = [Finding(kind="stalled", severity="warning", goal="g", milestone="g.m",
                        person=None, item=None, message="No status change on g.m")] if stalled else []
    return Report(plan="P", as_of=NOW, leader="alice", progress=0.5, status=status,
                  goals=[GoalReport(id="g", title="G", owner="alice", weight=1, status=status,
                                    progress=0.5, milestones=[milestone])], findings=findings)


def run(p: Plan, marks: dict, r: Report, now: datetime, *, deliver_ok: bool = True):  # type: ignore[no-untyped-def]
    changes, marks, subjects = diff(marks, r, now=now)
    alerts = due_alerts(p, marks, subjects, now=now)
    if deliver_ok:
        marks = mark_delivered(marks, {k for a in alerts for k in a.keys}, now=now)
    return changes, alerts, marks


def test_a_worsening_alerts_once_and_an_improvement_never() -> None:
    p = plan()
    _, alerts, marks = run(p, {}, report(Status.ON_TRACK), NOW)
    assert alerts == []
    changes, alerts, marks = run(p, marks, report(Status.AT_RISK), NOW + timedelta(hours=1))
    assert {a.subjects[0].key for a in alerts} == {"status:goal:g", "status:milestone:g.m"}
    milestone_alert = next(a for a in alerts if a.subjects[0].entity == "milestone")
    assert milestone_alert.recipients == ("bob", "alice")
    assert [c.after for c in changes] == ["at_risk", "at_risk"]
    _, alerts, marks = run(p, marks, report(Status.AT_RISK), NOW + timedelta(hours=2))
    assert alerts == [], "no change, no alert"
    _, alerts, marks = run(p, marks, report(Status.OFF_TRACK), NOW + timedelta(hours=3))
    assert len(alerts) == 2
    _, alerts, marks = run(p, marks, report(Status.AT_RISK), NOW + timedelta(hours=4))
    assert alerts == [], "off track -> at risk is an improvement"


def test_a_failed_delivery_stays_due_until_delivered() -> None:
    p = plan()
    _, alerts, marks = run(p, {}, report(Status.AT_RISK), NOW, deliver_ok=False)
    assert alerts
    _, again, marks = run(p, marks, report(Status.AT_RISK), NOW + timedelta(hours=1))
    assert {a.subjects[0].key for a in again} == {a.subjects[0].key for a in alerts}
    _, after, _ = run(p, marks, report(Status.AT_RISK), NOW + timedelta(hours=2))
    assert after == []


def test_renotify_after_while_the_condition_holds() -> None:
    p = plan(renotify_after="7d")
    _, first, marks = run(p, {}, report(Status.AT_RISK, stalled=True), NOW)
    assert any(a.channel == "mail" for a in first)
    _, none, marks = run(p, marks, report(Status.AT_RISK, stalled=True), NOW + timedelta(days=6))
    assert none == []
    _, again, _ = run(p, marks, report(Status.AT_RISK, stalled=True), NOW + timedelta(days=7))
    assert len(again) == len(first)


def test_a_cleared_finding_can_alert_again_when_it_returns() -> None:
    p = plan()
    _, _, marks = run(p, {}, report(Status.AT_RISK, stalled=True), NOW)
    changes, _, marks = run(p, marks, report(Status.AT_RISK), NOW + timedelta(days=1))
    assert [(c.before, c.after) for c in changes] == [("stalled", None)]
    _, back, _ = run(p, marks, report(Status.AT_RISK, stalled=True), NOW + timedelta(days=2))
    assert [a.channel for a in back] == ["mail"]


def test_a_digest_is_one_message_per_channel() -> None:
    p = plan(digest=True)
    _, alerts, _ = run(p, {}, report(Status.OFF_TRACK, stalled=True), NOW)
    assert sorted(a.channel for a in alerts) == ["mail", "slack"]
    slack = next(a for a in alerts if a.channel == "slack")
    assert len(slack.subjects) == 2
    subject, body = alert_text(p, slack)
    assert subject == "stratmap · P · 2 changes"
    assert "goal g (G) is now off track" in body and "For: Alice, Bob" in body


class FlakyBlock:
    def __init__(self, fail_times: int) -> None:
        self.fail_times = fail_times
        self.sent: list[tuple[str, str | None]] = []
        self.raising = False

    def raise_on_failure(self) -> Any:
        block = self

        class Context:
            def __enter__(self) -> None:
                block.raising = True

            def __exit__(self, *exc: object) -> None:
                block.raising = False

        return Context()

    def notify(self, body: str, subject: str | None = None) -> None:
        assert self.raising, "notify must run under raise_on_failure, or errors are swallowed"
        if self.fail_times:
            self.fail_times -= 1
            raise RuntimeError("webhook answered 500")
        self.sent.append((body, subject))


def test_deliver_retries_then_reports_the_failure() -> None:
    p = plan()
    _, marks, subjects = diff({}, report(Status.AT_RISK), now=NOW)
    alerts = due_alerts(p, marks, subjects, now=NOW)
    flaky = FlakyBlock(fail_times=2)
    waits: list[float] = []
    delivered, failures = deliver(p, alerts, loader=lambda ref: flaky, sleep=waits.append)
    assert failures == [] and len(flaky.sent) == len(alerts)
    assert delivered == {k for a in alerts for k in a.keys}
    dead = FlakyBlock(fail_times=100)
    delivered, failures = deliver(p, alerts, loader=lambda ref: dead, sleep=waits.append)
    assert delivered == set() and len(failures) == len(alerts)


def test_a_missing_block_is_not_retried() -> None:
    p = plan()
    _, marks, subjects = diff({}, report(Status.AT_RISK), now=NOW)
    calls: list[str] = []

    def missing(ref: str) -> Any:
        calls.append(ref)
        raise ValueError("Unable to find block document")

    delivered, failures = deliver(p, due_alerts(p, marks, subjects, now=NOW), loader=missing,
                                  sleep=lambda s: pytest.fail("no retry for a missing block"))
    assert calls == ["block:slack-webhook/s"] and delivered == set() and failures


def test_marks_round_trip_through_the_store(store: Store) -> None:
    _, marks, _ = diff({}, report(Status.AT_RISK, stalled=True), now=NOW)
    save_marks(store, "p", marks)
    assert load_marks(store, "p") == marks
    _, fewer, _ = diff(marks, report(Status.AT_RISK), now=NOW)
    save_marks(store, "p", fewer)
    assert load_marks(store, "p") == fewer
