"""The judgement: a plan, its evidence and a moment in, a report out.

Pure: no I/O, no clock (``as_of`` is a parameter). Each rule of the contract is one
function below, in the contract's order, so a rule reads as its definition.
"""

from __future__ import annotations

import gc
import heapq
import math
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stratmap.judgement.evidence import EvidenceIndex, ItemId, ItemState
from stratmap.judgement.measures import MeasureJudgement, judge_scope, measured_progress
from stratmap.judgement.organisation import Judged, judge_organisation
from stratmap.models.plan import (
    Feedback,
    Goal,
    Milestone,
    Plan,
    Rules,
    Selector,
    format_duration,
)
from stratmap.models.records import Evidence, EvidenceComment
from stratmap.models.report import (
    AT_RISK_KINDS,
    Finding,
    GoalReport,
    ItemCounts,
    Kind,
    MilestoneReport,
    PersonReport,
    Report,
    Severity,
    Status,
    UnknownPerson,
)

MIN_FORECAST_HISTORY = timedelta(days=14)
"""A milestone must have been active this long before ``slipping`` is forecast."""
MIN_DONE_FOR_FORECAST = 2
EVIDENCE_KEYS_SHOWN = 20

SEVERITY = {
    Kind.OVERDUE: Severity.CRITICAL,
    Kind.STALLED: Severity.WARNING,
    Kind.SLIPPING: Severity.WARNING,
    Kind.MISSING_FEEDBACK: Severity.WARNING,
    Kind.SINGLE_POINT_OF_FAILURE: Severity.WARNING,
    Kind.UNOWNED: Severity.WARNING,
    Kind.INACTIVE_OWNER: Severity.WARNING,
    Kind.UNMAPPED_WORK: Severity.INFO,
    Kind.EMPTY_SELECTOR: Severity.WARNING,
    Kind.OFF_TARGET: Severity.WARNING,  # critical once the target date has passed
    Kind.STALE_MEASURE: Severity.WARNING,
}


def _days(span: timedelta) -> int:
    return math.floor(span.total_seconds() / 86400)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _keys(states: list[ItemState]) -> list[str]:
    """The first keys of ``states`` in order, as many as a finding shows (the few
    smallest of a label milestone's thousands, without sorting them all)."""
    return heapq.nsmallest(EVIDENCE_KEYS_SHOWN, (s.item.key for s in states))


@dataclass
class Scope:
    """A milestone, or a goal taken as a whole: its items and its rules."""

    goal: Goal
    milestone: Milestone | None
    rules: Rules
    counted: list[ItemState]
    context: list[ItemState]
    start: datetime | None
    due: datetime | None
    leader: str = ""
    empty: list[Selector] = field(default_factory=list)
    """Selectors that chose nothing from a source that has synced items."""
    findings: list[Finding] = field(default_factory=list)

    @property
    def answerable(self) -> str:
        """Who must act on this scope's findings: the milestone's owner, else the goal's
        owner, else the leader."""
        return (self.milestone.owner if self.milestone else None) or self.goal.owner \
            or self.leader

    @property
    def ref(self) -> str:
        return f"{self.goal.id}.{self.milestone.id}" if self.milestone else self.goal.id

    @property
    def owner(self) -> str | None:
        return self.milestone.owner if self.milestone else self.goal.owner

    def finding(self, kind: Kind, message: str, *, person: str | None = None,
                item: str | None = None, **evidence: Any) -> Finding:
        """A finding about this scope, addressed to ``person``, else to who answers for the
        scope: the milestone's owner, else the goal's owner, else the plan's leader."""
        found = Finding(
            kind=kind, severity=SEVERITY[kind], goal=self.goal.id,
            milestone=self.ref if self.milestone else None,
            person=person or self.answerable, item=item, message=message, evidence=evidence,
        )
        self.findings.append(found)
        return found

    _moments: tuple[datetime | None, datetime | None] | None = field(
        default=None, init=False, repr=False, compare=False)
    """(first creation, last change) of the counted items, once asked: the rules ask
    several times, and a label milestone counts thousands of items."""

    def _counted_moments(self) -> tuple[datetime | None, datetime | None]:
        if self._moments is None:
            counted = self.counted
            self._moments = (
                min((s.item.created for s in counted), default=None),
                max((s.last_change for s in counted if s.last_change), default=None))
        return self._moments

    def first_seen(self) -> datetime | None:
        """When this scope's clock starts: its start, else its first item's creation."""
        if self.start is not None:
            return self.start
        return self._counted_moments()[0]

    def last_movement(self) -> datetime | None:
        return self._counted_moments()[1]


class Judgement:
    def __init__(self, plan: Plan, index: EvidenceIndex) -> None:
        self.plan = plan
        self.as_of = index.as_of
        self.index = index
        self.selected: set[ItemId] = set()
        self.counted: set[ItemId] = set()
        """Items some milestone counts: ``selected`` without the epics kept for comments."""
        self.judged: list[Judged] = []
        """Every milestone as judged, for the organisation rules."""

    def who(self, handle: str) -> str:
        """A plan handle as messages name people: ``Lena Fischer (lena)``."""
        person = self.plan.people.get(handle)
        return f"{person.name} ({handle})" if person is not None and person.name else handle

    def day(self, moment: datetime) -> str:
        """A moment as a date in the plan's time zone, for messages."""
        return moment.astimezone(self.plan.tz).date().isoformat()

    # -- scopes --------------------------------------------------------------------------

    def milestone_scope(self, goal: Goal, milestone: Milestone) -> Scope:
        counted: set[ItemId] = set()
        context: set[ItemId] = set()
        empty: list[Selector] = []
        for selector in milestone.work:
            chosen, around = self.index.select(selector)
            counted |= chosen
            context |= around
            if not chosen and not around and self.index.resolved(selector):
                empty.append(selector)
        context -= counted
        self.selected |= counted | context
        self.counted |= counted
        return Scope(
            empty=empty,
            goal=goal, milestone=milestone, rules=self.plan.rules_for(goal, milestone),
            counted=[self.index.items[i] for i in sorted(counted)],
            context=[self.index.items[i] for i in sorted(context)],
            start=self.plan.moment(milestone.start) if milestone.start else None,
            due=self.plan.moment(milestone.due) if milestone.due else None,
            leader=self.plan.leader,
        )

    def state(self, scope: Scope) -> Status:
        if scope.start is not None and scope.start > self.as_of:
            return Status.NOT_STARTED
        if scope.counted and all(s.done for s in scope.counted):
            return Status.DONE
        return Status.ON_TRACK

    # -- the rules -----------------------------------------------------------------------

    def stalled(self, scope: Scope) -> None:
        limit = scope.rules.stall_after
        last = scope.last_movement()
        clock = max((m for m in (scope.start, last) if m is not None), default=None)
        if clock is None:
            clock = scope.first_seen()
        if limit is None or clock is None or self.as_of - clock <= limit:
            return
        scope.finding(
            Kind.STALLED,
            f"No status change on {scope.ref} for {_days(self.as_of - clock)} days "
            f"(limit {format_duration(limit)})",
            last_movement=_iso(last), since=_iso(clock), stall_after=format_duration(limit),
            items=_keys([s for s in scope.counted if not s.done]),
        )

    def overdue(self, scope: Scope) -> bool:
        if scope.due is None or scope.due >= self.as_of:
            return False
        done = sum(s.done for s in scope.counted)
        progress = (f"{done} of {len(scope.counted)} items done" if scope.counted
                    else "it has no items (check its work selectors)")
        scope.finding(
            Kind.OVERDUE,
            f"{scope.ref} was due {self.day(scope.due)}, "
            f"{_days(self.as_of - scope.due)} days ago; {progress}",
            due=_iso(scope.due), open=len(scope.counted) - done,
            items=_keys([s for s in scope.counted if not s.done]),
        )
        return True

    def forecast(self, scope: Scope) -> tuple[bool, datetime | None]:
        """(enough history, forecast finish); None finish means no recent rate at all."""
        window = scope.rules.forecast_window or timedelta(days=28)
        done_at = [s.done_at for s in scope.counted if s.done_at is not None]
        remaining = len(scope.counted) - len(done_at)
        began = scope.first_seen()
        if (remaining == 0 or len(done_at) < MIN_DONE_FOR_FORECAST or began is None
                or self.as_of - began < MIN_FORECAST_HISTORY):
            return False, None
        recent = sum(1 for at in done_at if at > self.as_of - window)
        if recent == 0:
            return True, None
        per_item = window / recent
        return True, self.as_of + per_item * remaining

    def slipping(self, scope: Scope) -> datetime | None:
        enough, finish = self.forecast(scope)
        if scope.due is None or not enough:
            return finish
        if finish is not None and finish <= scope.due:
            return finish
        window = format_duration(scope.rules.forecast_window or timedelta(days=28))
        open_count = sum(not s.done for s in scope.counted)
        if finish is None:
            message = (f"{scope.ref} finished no item in the last {window}; "
                       f"{open_count} open, due {self.day(scope.due)}")
        else:
            message = (f"{scope.ref} is forecast to finish {self.day(finish)}, "
                       f"after its due date {self.day(scope.due)} "
                       f"({open_count} open items at the last {window}'s rate)")
        scope.finding(Kind.SLIPPING, message, forecast=_iso(finish), due=_iso(scope.due),
                      open=open_count, window=window)
        return finish

    def missing_feedback(self, scope: Scope, rule: Feedback | None) -> None:
        if rule is None:
            return
        expected = self.plan.seniors() if rule.from_ == "seniors" else list(rule.from_)
        began = scope.first_seen()
        if began is None or self.as_of - began < rule.every:
            return  # the first period has not passed yet
        since = self.as_of - rule.every
        latest = self._latest_feedback((*scope.counted, *scope.context), frozenset(expected))
        if latest is not None and latest.at > since:
            return
        who = (", ".join(map(self.who, expected)) if expected
               else "nobody (no senior people in the plan)")
        scope.finding(
            Kind.MISSING_FEEDBACK,
            f"No feedback from {who} on {scope.ref} in the last {format_duration(rule.every)}",
            person=expected[0] if len(expected) == 1 else None,
            expected_from=expected, every=format_duration(rule.every),
            last_feedback=_iso(latest.at if latest else None),
            last_feedback_by=self.index.person(latest.source, latest.author) if latest else None,
            last_feedback_item=latest.item_key if latest else None,
        )

    def _latest_feedback(self, states: tuple[ItemState, ...],
                         people: frozenset[str]) -> EvidenceComment | None:
        """The latest comment by one of ``people`` on any of ``states`` (the first state in
        ``states`` wins a tie).

        States are visited newest last comment first, so the search stops at the first state
        whose newest comment is older than what was found: a milestone of 200 items reads a
        handful of them, not all.
        """
        commented = [(state.comments[-1].at, index, state)
                     for index, state in enumerate(states) if state.comments]
        commented.sort(key=lambda entry: (entry[0], -entry[1]), reverse=True)
        best: EvidenceComment | None = None
        best_index = 0
        for newest, index, state in commented:
            if best is not None and newest < best.at:
                break
            found = self._latest_comment(state, people)
            if found is None:
                continue
            if best is None or found.at > best.at or (found.at == best.at and index < best_index):
                best, best_index = found, index
        return best

    def _latest_comment(self, state: ItemState, people: frozenset[str]) -> EvidenceComment | None:
        """The item's latest comment by one of ``people`` (the first listed, on a tie)."""
        person_of = self.index.person_of
        found: EvidenceComment | None = None
        for comment in reversed(state.comments):  # time order: newest last
            if found is not None and comment.at != found.at:
                break
            if comment.author is not None and person_of.get(
                    (comment.source, comment.author)) in people:
                found = comment
        return found

    def unowned(self, scope: Scope) -> None:
        if scope.owner is None:
            what = "milestone" if scope.milestone else "goal"
            scope.finding(Kind.UNOWNED, f"The {what} {scope.ref} has no owner",
                          person=self.plan.leader)

    def inactive_owner(self, scope: Scope) -> None:
        owner, limit = scope.owner, scope.rules.inactive_after
        if owner is None or limit is None:
            return
        last = self.index.last_activity(owner)
        if last is not None and self.as_of - last <= limit:
            return
        quiet = (f"for {_days(self.as_of - last)} days" if last
                 else "at all in the synced trackers")
        scope.finding(
            Kind.INACTIVE_OWNER,
            f"{self.who(owner)}, owner of {scope.ref}, has made no status change or comment {quiet} "
            f"(limit {format_duration(limit)})",
            person=owner, last_activity=_iso(last), inactive_after=format_duration(limit),
        )

    def single_point_of_failure(self, scope: Scope) -> None:
        share_limit = scope.rules.single_owner_share
        holders: Counter[str] = Counter()
        seen: set[ItemId] = set()
        for state in scope.counted:
            if state.done or state.assignee is None or state.id in seen:
                continue
            seen.add(state.id)
            person = self.index.person(state.item.source, state.assignee)
            holders[person or f"{state.item.source}:{state.assignee}"] += 1
        total = sum(holders.values())
        if share_limit is None or total < 3:
            return
        holder, count = min(holders.items(), key=lambda kv: (-kv[1], kv[0]))
        if count / total < share_limit:
            return
        known = holder in self.plan.people
        scope.finding(
            Kind.SINGLE_POINT_OF_FAILURE,
            f"{self.who(holder) if known else holder} holds {count} of the {total} open "
            "assigned items of goal "
            f"{scope.goal.id} ({count / total:.0%}, limit {share_limit:.0%})",
            person=holder if known else None, share=round(count / total, 4), held=count,
            open_assigned=total, account=None if known else holder,
            display_name=None if known else self.index.display_names.get(
                _account(holder)),
        )

    def empty_selector(self, scope: Scope) -> None:
        for selector in scope.empty:
            written = _selector_text(selector)
            nearest = self.index.nearest(selector)
            hint = f"; did you mean {nearest}?" if nearest else ""
            scope.finding(
                Kind.EMPTY_SELECTOR,
                f"{{{written}}} of {scope.ref} selects no item of source "
                f"'{selector.source}'{hint}",
                selector=selector.model_dump(mode="json", exclude_none=True),
                nearest=nearest, notify=sorted({scope.answerable, self.plan.leader}),
            )

    def unmapped_work(self) -> list[Finding]:
        found = []
        for iid in sorted(set(self.index.items) - self.selected):
            state = self.index.items[iid]
            if state.done:
                continue
            found.append(Finding(
                kind=Kind.UNMAPPED_WORK, severity=SEVERITY[Kind.UNMAPPED_WORK], goal=None,
                milestone=None, person=self.plan.leader, item=state.item.key,
                message=f"{state.item.key} ({state.item.title or 'untitled'}) in source "
                        f"'{iid[0]}' belongs to no milestone",
                evidence={"source": iid[0], "status": state.item.status,
                          "assignee": state.assignee, "url": state.item.url},
            ))
        return found

    # -- putting it together -------------------------------------------------------------

    def milestone(self, scope: Scope) -> MilestoneReport:
        assert scope.milestone is not None
        milestone = scope.milestone
        self.unowned(scope)
        self.empty_selector(scope)
        status = self.state(scope)
        judged = self.measures_of(scope)
        if status is Status.ON_TRACK and judged and not milestone.work and all(
                j.reached for j in judged):
            status = Status.DONE  # a milestone of measures alone is done when all are met
        forecast = None
        if status is Status.ON_TRACK:
            self.measure_findings(scope, judged)
            # The rules about items judge items: a milestone with none says so (its
            # overdue finding, its 'no items' in every table) instead of being stalled,
            # slipping or missing feedback on nothing.
            if scope.counted:
                self.stalled(scope)
            if not self.overdue(scope) and scope.counted:
                forecast = self.slipping(scope)
            if scope.counted:
                self.missing_feedback(scope, scope.rules.feedback)
            if scope.counted or not judged:  # measures alone: no tracker activity to judge
                self.inactive_owner(scope)
            kinds = {f.kind for f in scope.findings}
            if Kind.OVERDUE in kinds or _missed(scope.findings):
                status = Status.OFF_TRACK
            elif kinds & AT_RISK_KINDS:
                status = Status.AT_RISK
        done = [s for s in scope.counted if s.done]
        by_points = scope.rules.progress == "points"
        points_total = sum(s.item.points or 0.0 for s in scope.counted) if by_points else 0.0
        points_done = sum(s.item.points or 0.0 for s in done) if by_points else 0.0
        if by_points:
            progress = points_done / points_total if points_total else 0.0
        else:
            progress = len(done) / len(scope.counted) if scope.counted else 0.0
        if scope.rules.progress == "measure" and judged:
            progress = measured_progress(judged)
        return MilestoneReport(
            id=scope.ref, title=milestone.title, owner=milestone.owner, status=status,
            progress=round(progress, 4), start=milestone.start, due=milestone.due,
            items=ItemCounts(
                total=len(scope.counted), done=len(done),
                points_total=round(points_total, 4) if scope.rules.progress == "points" else None,
                points_done=round(points_done, 4) if scope.rules.progress == "points" else None,
            ),
            last_movement=scope.last_movement(), forecast=forecast,
            depends_on=list(milestone.depends_on),
            measures=[j.report for j in judged],
        )

    def goal(self, goal: Goal) -> tuple[GoalReport, list[Finding]]:
        scopes = [self.milestone_scope(goal, m) for m in goal.milestones]
        milestones = [self.milestone(scope) for scope in scopes]
        self.judged.extend(
            Judged(goal=goal, ref=scope.ref, owner=scope.owner, status=report.status,
                   rules=scope.rules, counted=tuple(scope.counted),
                   context=tuple(scope.context), first_seen=scope.first_seen(),
                   kinds=frozenset(f.kind for f in scope.findings))
            for scope, report in zip(scopes, milestones, strict=True))
        whole = Scope(
            goal=goal, milestone=None, rules=self.plan.rules_for(goal),
            counted=_union(s.counted for s in scopes),
            context=_union(s.context for s in scopes),
            start=min((s.start for s in scopes if s.start), default=None), due=None,
            leader=self.plan.leader,
        )
        statuses = [m.status for m in milestones]
        if statuses and all(s is Status.DONE for s in statuses):
            status = Status.DONE
        elif statuses and all(s is Status.NOT_STARTED for s in statuses):
            status = Status.NOT_STARTED
        else:
            status = max((s for s in statuses if s not in (Status.DONE, Status.NOT_STARTED)),
                         key=RANK.__getitem__, default=Status.ON_TRACK)
        self.unowned(whole)
        judged = self.measures_of(whole)
        if judged and not milestones and all(j.reached for j in judged):
            status = Status.DONE
        if status not in (Status.DONE, Status.NOT_STARTED):
            self.measure_findings(whole, judged)
            # A goal's own feedback rule judges the goal as a whole; defaults never do.
            self.missing_feedback(whole, goal.feedback)
            self.single_point_of_failure(whole)
            if whole.counted or not (judged or any(m.measures for m in goal.milestones)):
                self.inactive_owner(whole)
            if {f.kind for f in whole.findings} & AT_RISK_KINDS and RANK[status] < RANK[
                    Status.AT_RISK]:
                status = Status.AT_RISK
            if _missed(whole.findings):
                status = Status.OFF_TRACK
        weights = sum(m.weight for m in goal.milestones)
        progress = (sum(r.progress * m.weight for r, m in zip(milestones, goal.milestones,
                                                             strict=True)) / weights
                    if weights else 0.0)
        if self.plan.rules_for(goal).progress == "measure" and judged:
            progress = measured_progress(judged)
        findings = [f for f in whole.findings if f.kind is Kind.UNOWNED]
        for scope in scopes:
            findings.extend(scope.findings)
        findings.extend(f for f in whole.findings if f.kind is not Kind.UNOWNED)
        report = GoalReport(id=goal.id, title=goal.title, owner=goal.owner, weight=goal.weight,
                            status=status, progress=round(progress, 4), milestones=milestones,
                            measures=[j.report for j in judged])
        return report, findings

    def measures_of(self, scope: Scope) -> list[MeasureJudgement]:
        """The scope's own measures (a goal's, not its milestones') judged at ``as_of``."""
        owner = scope.milestone or scope.goal
        return judge_scope(self.plan, scope.ref, owner.measures, self.index.measures,
                           as_of=self.as_of)

    def measure_findings(self, scope: Scope, judged: list[MeasureJudgement]) -> None:
        """The measures' off_target and stale_measure findings, as the scope's."""
        for measured in judged:
            for found in measured.findings:
                scope.findings.append(Finding(
                    kind=found.kind, severity=found.severity, goal=scope.goal.id,
                    milestone=scope.ref if scope.milestone else None,
                    person=scope.answerable, item=None, message=found.message,
                    evidence=found.evidence))

    def people(self, goals: list[GoalReport]) -> list[PersonReport]:
        owns: dict[str, list[str]] = {}
        for goal in goals:
            if goal.owner:
                owns.setdefault(goal.owner, []).append(goal.id)
            for milestone in goal.milestones:
                if milestone.owner:
                    owns.setdefault(milestone.owner, []).append(milestone.id)
        holders = self.index.open_holder
        load = Counter(map(holders.__getitem__, self.counted & holders.keys()))
        return [
            PersonReport(handle=handle, name=person.name, senior=person.senior,
                         owns=owns.get(handle, []), open_items=load[handle],
                         last_activity=self.index.last_activity(handle))
            for handle, person in self.plan.people.items()
        ]

    def run(self) -> Report:
        goals: list[GoalReport] = []
        findings: list[Finding] = []
        for goal in self.plan.goals:
            report, found = self.goal(goal)
            goals.append(report)
            findings.extend(found)
        organisation = judge_organisation(self.plan, self.index, self.judged)
        findings.extend(organisation.findings)
        findings.extend(self.unmapped_work())
        progress, status = overall(self.plan, goals)
        unknown = [
            UnknownPerson(source=source, account=account,
                          display_name=self.index.display_names.get((source, account)),
                          last_activity=self.index.activity.get((source, account)))
            for source, account in self.index.unknown_accounts()
        ]
        flagged = sorted(f"{source}:{key}" for source, key in self.index.flagged)
        return Report(
            plan=self.plan.name, as_of=self.as_of, timezone=self.plan.timezone,
            leader=self.plan.leader,
            progress=progress, status=status, goals=goals, findings=findings,
            people=self.people(goals), unknown_people=unknown, flagged_items=flagged,
            engagement=organisation.engagement, balance=organisation.balance,
            slip_log=organisation.slip_log, unmapped_share=organisation.unmapped_share,
        )


RANK = {Status.DONE: 0, Status.NOT_STARTED: 1, Status.ON_TRACK: 2, Status.AT_RISK: 3,
         Status.OFF_TRACK: 4}


def overall(plan: Plan, goals: list[GoalReport]) -> tuple[float, Status]:
    """The plan's progress (rounded) and status from its goals' reports."""
    weights = sum(g.weight for g in plan.goals)
    progress = sum(g.progress * g.weight for g in goals) / weights if weights else 0.0
    statuses = [g.status for g in goals]
    if statuses and all(s is Status.DONE for s in statuses):
        status = Status.DONE
    else:
        status = max(statuses, key=RANK.__getitem__, default=Status.ON_TRACK)
    return round(progress, 4), status


def _missed(findings: list[Finding]) -> bool:
    """A measure's target date passed without the target reached (a critical off_target)."""
    return any(f.kind is Kind.OFF_TARGET and f.severity is Severity.CRITICAL for f in findings)


def _selector_text(selector: Selector) -> str:
    """A selector as the plan writes it: ``source: jira, epic: SHOP-99``."""
    parts = {"source": selector.source, **selector.criteria()}
    return ", ".join(f"{name}: {value}" for name, value in parts.items())


def _account(holder: str) -> tuple[str, str]:
    """``source:account`` (an account no person matches) as a key of the display names."""
    source, _, account = holder.partition(":")
    return source, account


def _union(groups: Any) -> list[ItemState]:
    merged: dict[ItemId, ItemState] = {}
    for group in groups:
        for state in group:
            merged[state.id] = state
    return [merged[i] for i in sorted(merged)]


def judge(plan: Plan, evidence: Evidence, *, as_of: datetime) -> Report:
    """Judge ``plan`` from ``evidence`` as it stood at ``as_of`` (aware)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    with collector_paused():
        return Judgement(plan, EvidenceIndex(plan, evidence, as_of.astimezone(UTC))).run()


def judge_indexed(plan: Plan, evidence: Evidence, *,
                  as_of: datetime) -> tuple[Report, EvidenceIndex]:
    """:func:`judge`, and the evidence's index at ``as_of`` it judged from (the history
    reuses it to find where the plan's history begins)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    with collector_paused():
        index = EvidenceIndex(plan, evidence, as_of.astimezone(UTC))
        return Judgement(plan, index).run(), index


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while judging.

    Judging makes a few hundred thousand short-lived objects beside the evidence's millions
    of long-lived ones, and each full collection they trigger re-scans all the evidence
    (over a second at 100,000 items) to free nothing: the engine makes no reference cycles,
    and reference counting frees what it makes. The report is the same either way.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
