"""What changed since the last run, and which alerts are due: pure functions over marks.

A *mark* remembers one entity's status (``status:milestone:brand.website`` → ``at_risk``)
or one active finding (``finding:<digest>`` → ``stalled``), since when, and when it was
last alerted. Diffing the new report against the marks gives the changes (for events)
and the due alerts:

* a status alert only when the status gets worse (on_track → at_risk → off_track), or is
  first seen; an improvement is never alerted;
* a finding alert when the finding is new;
* an alert not yet delivered stays due (a failed notification is retried next run);
* a delivered alert is due again after ``renotify_after`` while its condition holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import datetime

from stratmap.models.marks import Mark
from stratmap.models.plan import Plan
from stratmap.models.report import Finding, Report, Status

RANK = {Status.DONE.value: 0, Status.NOT_STARTED.value: 1, Status.ON_TRACK.value: 2,
        Status.AT_RISK.value: 3, Status.OFF_TRACK.value: 4}


_ADDRESSED = frozenset({"stalled", "overdue", "slipping", "empty_selector", "off_target",
                        "stale_measure", "goal_imbalance", "date_slipped", "optimistic_status",
                        "blocked_by_other_team"})
"""Kinds whose ``person`` is only who must act (the scope's owner), not what the finding is
about: a new owner does not make it a new finding, so it stays out of the key (as when
these findings had no person)."""


_MEASURED = frozenset({"off_target", "stale_measure"})
_ABOUT_A_PERSON = frozenset({"inactive_owner", "disengaged", "overloaded_owner"})
"""Kinds about a person: alerts for `owner` go to that person."""


def finding_key(finding: Finding) -> str:
    kind = finding.kind.value
    person = None if kind in _ADDRESSED or (
        kind == "single_point_of_failure" and finding.evidence.get("account")) else finding.person
    parts: tuple[object, ...] = (kind, finding.goal, finding.milestone, person, finding.item)
    if kind in _MEASURED:  # one finding per measure, not per goal or milestone
        parts = (*parts, finding.evidence.get("measure"))
    if kind == "blocked_by_other_team":  # one finding per blocked item and blocker
        parts += (finding.evidence.get("blocked"), finding.evidence.get("blocker"))
    identity = "|".join(str(part) for part in parts)
    return "finding:" + hashlib.sha256(identity.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Subject:
    """What a mark is about, for events and alert text."""

    key: str
    value: str
    entity: str  # "goal", "milestone" or the finding kind
    ref: str | None  # goal id or goal.milestone
    title: str
    owner: str | None
    finding: Finding | None = None


@dataclass(frozen=True)
class Change:
    subject: Subject
    before: str | None
    after: str | None  # None: the finding cleared


@dataclass(frozen=True)
class Alert:
    channel: str
    recipients: tuple[str, ...]
    subjects: tuple[Subject, ...]
    keys: tuple[str, ...] = field(default=())


def subjects_of(report: Report) -> dict[str, Subject]:
    subjects: dict[str, Subject] = {}
    owners: dict[str, str | None] = {}
    for goal in report.goals:
        key = f"status:goal:{goal.id}"
        subjects[key] = Subject(key, goal.status.value, "goal", goal.id, goal.title, goal.owner)
        owners[goal.id] = goal.owner
        for m in goal.milestones:
            key = f"status:milestone:{m.id}"
            subjects[key] = Subject(key, m.status.value, "milestone", m.id, m.title, m.owner)
            owners[m.id] = m.owner
    for finding in report.findings:
        key = finding_key(finding)
        ref = finding.milestone or finding.goal
        owner = (finding.person if finding.kind.value in _ABOUT_A_PERSON
                 else owners.get(ref or ""))
        subjects[key] = Subject(key, finding.kind.value, finding.kind.value, ref,
                                finding.message, owner, finding)
    return subjects


def stale_refs(plan: Plan, report: Report) -> set[str] | None:
    """The goals and milestones whose work reads a source (or whose measure reads one) this
    run could not sync (the report is stale for them); None when every source synced."""
    stale = {s.source for s in report.stale_sources}
    if not stale:
        return None
    refs: set[str] = set()
    for goal in plan.goals:
        for milestone in goal.milestones:
            if any(selector.source in stale for selector in milestone.work):
                refs.update({goal.id, f"{goal.id}.{milestone.id}"})
    for ref, (owner, part, _measure) in plan.measure_ids().items():
        if ref in stale:  # a measure that could not be read is reported like a source
            refs.update({owner.id} | ({f"{owner.id}.{part.id}"} if part else set()))
    return refs


def held(subject: Subject, refs: set[str] | None, report: Report) -> bool:
    """Whether ``subject`` may rest on a source that did not sync: its change waits."""
    if refs is None:
        return False
    if subject.ref is not None:
        return subject.ref in refs
    finding = subject.finding
    source = finding.evidence.get("source") if finding is not None else None
    if isinstance(source, str):  # unmapped work names its source
        return source in {s.source for s in report.stale_sources}
    return True  # about the plan or a person as a whole: may rest on any source


def diff(previous: dict[str, Mark], report: Report, *, now: datetime,
         stale: set[str] | None = None) -> tuple[list[Change], dict[str, Mark], dict[str, Subject]]:
    """(changes, the new marks, the subjects by key).

    ``stale`` (from :func:`stale_refs`): while a source cannot be synced, what rests on it
    keeps its mark and changes nothing (no event, no alert); the change is seen when the
    source syncs again. Cleared findings wait too: an empty source clears everything.
    """
    subjects = {key: subject for key, subject in subjects_of(report).items()
                if not held(subject, stale, report)}
    changes: list[Change] = []
    marks: dict[str, Mark] = {}
    if stale is not None:
        marks.update({key: mark for key, mark in previous.items() if key not in subjects})
    for key, subject in subjects.items():
        old = previous.get(key)
        if old is not None and old.value == subject.value:
            marks[key] = old
            continue
        before = old.value if old else None
        changes.append(Change(subject, before, subject.value))
        worse = subject.finding is not None or before is None or RANK.get(
            subject.value, 0) > RANK.get(before, 0)
        # An improvement is marked as already told, so it never alerts.
        marks[key] = Mark(key=key, value=subject.value, since=now,
                          notified=None if worse else now)
    for key, old in previous.items():
        if stale is None and key not in subjects and key.startswith("finding:"):
            changes.append(Change(Subject(key, old.value, old.value, None, "", None),
                                  old.value, None))
    return changes, marks, subjects


def due_alerts(plan: Plan, marks: dict[str, Mark], subjects: dict[str, Subject], *,
               now: datetime) -> list[Alert]:
    """The alerts to send now, per the plan's ``alerts.routes`` (one per channel if digest)."""
    if plan.alerts is None:
        return []
    renotify = plan.alerts.renotify_after
    alerts: list[Alert] = []
    for key in sorted(subjects):
        mark, subject = marks[key], subjects[key]
        if mark.notified is not None and (renotify is None or now - mark.notified < renotify):
            continue
        for route in plan.alerts.routes:
            if subject.value not in route.on:
                continue
            recipients = []
            for target in route.notify:
                handle = {"owner": subject.owner, "leader": plan.leader}.get(target, target)
                if handle and handle not in recipients:
                    recipients.append(handle)
            alerts.extend(Alert(channel, tuple(recipients), (subject,), (key,))
                          for channel in route.via)
    if not plan.alerts.digest:
        return alerts
    digests: dict[str, Alert] = {}
    for alert in alerts:
        got = digests.get(alert.channel)
        if got is None:
            digests[alert.channel] = alert
            continue
        merged = tuple(dict.fromkeys(got.recipients + alert.recipients))
        digests[alert.channel] = replace(got, recipients=merged,
                                         subjects=got.subjects + alert.subjects,
                                         keys=got.keys + alert.keys)
    return list(digests.values())


def mark_delivered(marks: dict[str, Mark], keys: set[str], *, now: datetime) -> dict[str, Mark]:
    return {k: (replace(m, notified=now) if k in keys else m) for k, m in marks.items()}


def alert_text(plan: Plan, alert: Alert) -> tuple[str, str]:
    """(subject line, body) for a notification; names are the plan's, never secrets."""
    def who(handle: str) -> str:
        person = plan.people.get(handle)
        return person.name if person and person.name else handle

    lines = []
    for s in alert.subjects:
        if s.finding is not None:
            lines.append(f"• [{s.value}] {s.title}")
        else:
            lines.append(f"• {s.entity} {s.ref} ({s.title}) is now {s.value.replace('_', ' ')}")
    if len(alert.subjects) == 1:
        (only,) = alert.subjects
        headline = (f"{only.ref}: {only.value.replace('_', ' ')}" if only.finding is None
                    else f"{only.value.replace('_', ' ')} on {only.ref or 'the plan'}")
    else:
        headline = f"{len(alert.subjects)} changes"
    subject = f"stratmap · {plan.name} · {headline}"
    body = "\n".join([*lines, "", "For: " + ", ".join(who(h) for h in alert.recipients)])
    return subject, body
