"""The plan judged at past moments, in one sweep: the history's backfill.

Judging the plan once per past week-end from scratch costs weeks x evidence (every week
regroups every status change and rebuilds every item's state). :func:`reconstruct` instead
walks time forward once: each item's state is rebuilt only when one of its own moments
(creation, a status change, a comment, an assignee change, its resolution) has passed since
the week before, each account's last activity grows as events pass, and what each milestone
selects is decided once (an item's selection never changes; only whether it exists yet
does). Each week then runs the engine's own rules (:class:`~stratmap.judgement.engine.Judgement`)
over those states, so a week judged here is the week :func:`~stratmap.judgement.judge` would
judge: ``tests/test_history.py`` compares the two on the sample and on random plans.

Pure, like the engine: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stratmap.judgement.engine import Judgement, Scope, collector_paused, overall
from stratmap.judgement.evidence import (
    EvidenceIndex,
    ItemId,
    ItemState,
    _assignee_at,
    _by_item,
    _state,
)
from stratmap.models.history import MAX_BACKFILL_WEEKS, Snapshot, snapshots_from
from stratmap.models.plan import Goal, Milestone, Plan
from stratmap.models.records import AssigneeChange, Comment, Evidence, StatusChange, ensure_utc
from stratmap.models.report import Finding, GoalReport, Kind

_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def first_moment(plan: Plan, evidence: Evidence, *, until: datetime,
                 index: EvidenceIndex | None = None) -> datetime | None:
    """When the plan's history begins: its first milestone start or first selected item.

    ``index`` is the evidence's index at ``until``, when the caller has one already.
    """
    moments = [plan.moment(m.start) for g in plan.goals for m in g.milestones if m.start]
    if index is None:
        index = EvidenceIndex(plan, evidence, until)
    for goal in plan.goals:
        for milestone in goal.milestones:
            for selector in milestone.work:
                counted, _context = index.select(selector)
                moments.extend(index.items[i].item.created for i in counted)
    return min(moments, default=None)


def week_ends(plan: Plan, evidence: Evidence, *, until: datetime,
              max_weeks: int = MAX_BACKFILL_WEEKS) -> list[datetime]:
    """Every Monday 00:00 (plan time zone) after the plan's history begins, before ``until``."""
    until = ensure_utc(until)
    began = first_moment(plan, evidence, until=until)
    if began is None:
        return []
    local: date = began.astimezone(plan.tz).date()
    day = local + timedelta(days=7 - local.weekday())
    moments: list[datetime] = []
    while (moment := plan.moment(day)) < until:
        moments.append(moment)
        day += timedelta(days=7)
    return moments[-max_weeks:] if max_weeks else []


class _Moment(EvidenceIndex):
    """The sweep's evidence at one moment, as the engine's rules ask about it.

    Not built from the evidence (that is the point): the sweep keeps ``items`` and
    ``activity`` up to date and hands the same dicts to each week in turn.
    """

    def __init__(self, plan: Plan, as_of: datetime, items: dict[ItemId, ItemState],
                 person_of: dict[ItemId, str], activity: dict[ItemId, datetime]) -> None:
        # Deliberately not EvidenceIndex.__init__: only what the rules read is set.
        self.plan = plan
        self.as_of = as_of
        self.items = items
        self.person_of = person_of
        self.activity = activity
        self._person_activity = None


class _PastJudgement(Judgement):
    """The engine's judgement with each milestone's selection decided once for all weeks."""

    def __init__(self, plan: Plan, index: EvidenceIndex,
                 chosen: dict[tuple[str, str], tuple[list[ItemId], list[ItemId]]]) -> None:
        super().__init__(plan, index)
        self.chosen = chosen

    def milestone_scope(self, goal: Goal, milestone: Milestone) -> Scope:
        counted, context = self.chosen[(goal.id, milestone.id)]
        items = self.index.items
        return Scope(
            goal=goal, milestone=milestone, rules=self.plan.rules_for(goal, milestone),
            counted=[items[i] for i in counted if i in items],
            context=[items[i] for i in context if i in items],
            start=self.plan.moment(milestone.start) if milestone.start else None,
            due=self.plan.moment(milestone.due) if milestone.due else None,
        )


def reconstruct(plan: Plan, evidence: Evidence, moments: Iterable[datetime]) -> list[Snapshot]:
    """The plan judged at each moment from the same evidence: the backfill's snapshots,
    in time order (each is what ``snapshots_of(judge(plan, evidence, as_of=moment))`` gives,
    marked ``backfill``)."""
    wanted = sorted({ensure_utc(m).astimezone(UTC) for m in moments})
    if not wanted:
        return []
    with collector_paused():
        return _Sweep(plan, evidence).run(wanted)


class _Sweep:
    def __init__(self, plan: Plan, evidence: Evidence) -> None:
        self.plan = plan
        sources = plan.sources
        self.changes: dict[ItemId, list[StatusChange]] = _by_item(
            evidence.changes, lambda c: (c.at, c.change_id))
        self.comments: dict[ItemId, list[Comment]] = _by_item(
            evidence.comments, lambda c: (c.at, c.comment_id))
        self.assignments: dict[ItemId, list[AssigneeChange]] = _by_item(
            evidence.assignments, lambda a: (a.at, a.change_id))
        # What every milestone selects, decided at the end of time: at any moment a
        # milestone selects the same items, those of them that exist yet.
        everything = EvidenceIndex(plan, evidence, _END_OF_TIME)
        self.person_of = everything.person_of
        self.chosen: dict[tuple[str, str], tuple[list[ItemId], list[ItemId]]] = {}
        selected: set[ItemId] = set()
        for goal in plan.goals:
            for milestone in goal.milestones:
                counted: set[ItemId] = set()
                context: set[ItemId] = set()
                for selector in milestone.work:
                    found, around = everything.select(selector)
                    counted |= found
                    context |= around
                context -= counted
                selected |= counted | context
                self.chosen[(goal.id, milestone.id)] = (sorted(counted), sorted(context))
        self.selected = selected
        # Each item's own moments, when its state can change; and the events that make an
        # account active, at the moment they count (not before the item exists).
        self.items: list[tuple[ItemId, Any]] = []
        timeline: list[tuple[datetime, int]] = []
        acts: list[tuple[datetime, datetime, ItemId]] = []
        for item in evidence.items:
            if item.source not in sources:
                continue
            iid = (item.source, item.key)
            number = len(self.items)
            self.items.append((iid, item))
            created = item.created
            times = {created}
            if item.resolved is not None:
                times.add(item.resolved)
            for group in (self.changes.get(iid, ()), self.comments.get(iid, ()),
                          self.assignments.get(iid, ())):
                for event in group:
                    times.add(event.at)
            timeline.extend((t, number) for t in times)
            for events in (self.changes.get(iid, ()), self.comments.get(iid, ())):
                for event in events:
                    if event.author is not None:
                        acts.append((max(event.at, created), event.at,
                                     (item.source, event.author)))
        timeline.sort(key=lambda entry: entry[0])
        acts.sort(key=lambda entry: entry[0])
        self.timeline = timeline
        self.acts = acts

    def run(self, moments: list[datetime]) -> list[Snapshot]:
        plan = self.plan
        states: dict[ItemId, ItemState] = {}
        activity: dict[ItemId, datetime] = {}
        none: list[Any] = []
        changes, comments, assignments = self.changes, self.comments, self.assignments
        timeline, acts, selected = self.timeline, self.acts, self.selected
        at_event = at_act = 0
        volatile: set[int] = set()
        open_unselected = 0
        out: list[Snapshot] = []
        for moment in moments:
            dirty = volatile
            volatile = set()
            while at_event < len(timeline) and timeline[at_event][0] <= moment:
                dirty.add(timeline[at_event][1])
                at_event += 1
            while at_act < len(acts) and acts[at_act][0] <= moment:
                _eff, at, account = acts[at_act]
                known = activity.get(account)
                if known is None or at > known:
                    activity[account] = at
                at_act += 1
            for number in dirty:
                iid, item = self.items[number]
                if item.created > moment:
                    continue
                held = (_assignee_at(item, assignments[iid], moment) if iid in assignments
                        else item.assignee)
                state = _state(iid, item, changes.get(iid, none), comments.get(iid, none),
                               moment, held)
                before = states.get(iid)
                states[iid] = state
                if iid not in selected:
                    open_unselected += (not state.done) - (before is not None and not before.done)
                if state.done_at is not None and state.done_at >= moment:
                    # Done by its resolution or last update, which is still to come: its
                    # done time is the moment itself, so it moves with every week.
                    volatile.add(number)
            index = _Moment(plan, moment, states, self.person_of, activity)
            judgement = _PastJudgement(plan, index, self.chosen)
            goals: list[GoalReport] = []
            findings: list[Finding] = []
            for goal in plan.goals:
                report, found = judgement.goal(goal)
                goals.append(report)
                findings.extend(found)
            progress, status = overall(plan, goals)
            unmapped = {Kind.UNMAPPED_WORK.value: open_unselected} if open_unselected else {}
            out.extend(snapshots_from(plan=plan.name, as_of=moment, status=status,
                                      progress=progress, goals=goals, findings=findings,
                                      plan_only=unmapped, origin="backfill"))
        return out


def missing_weeks(plan: Plan, evidence: Evidence, *, until: datetime,
                  stored: set[datetime]) -> list[datetime]:
    """The week-ends up to ``until`` with no snapshot among ``stored``."""
    return [m for m in week_ends(plan, evidence, until=until) if m not in stored]


__all__ = ["first_moment", "missing_weeks", "reconstruct", "week_ends"]
