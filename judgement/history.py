"""The plan judged at past moments, in one sweep: the history's backfill.

Judging the plan once per past week-end from scratch costs weeks x evidence (every week
regroups every status change and rebuilds every item's state). :func:`reconstruct` instead
walks time forward once: each item's state is rebuilt only when one of its own moments
(creation, a status change, a comment, an assignee change, its resolution) has passed since
the week before; what each milestone selects is decided once (an item's selection never
changes, only whether it exists yet); and each milestone and goal keeps what the rules ask
of it (counts, point sums, done times, latest movement and feedback, open items by holder)
up to date as its items change, as each person's last activity is as events pass. A week
then costs the engine's rules per milestone, not per item: O(events + weeks x milestones).

The rules here are the engine's (:mod:`stratmap.judgement.engine`) restated over those
running totals, counting findings by kind (a snapshot keeps no more). A week judged here is
the week :func:`~stratmap.judgement.judge` judges: ``tests/test_history.py`` compares the
two on the sample and on random plans, with findings of every kind.

Pure, like the engine: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from stratmap.judgement.engine import (
    MIN_DONE_FOR_FORECAST,
    MIN_FORECAST_HISTORY,
    RANK,
    collector_paused,
    overall,
)
from stratmap.judgement.evidence import (
    EvidenceIndex,
    ItemId,
    ItemState,
    _assignee_at,
    _state,
)
from stratmap.judgement.measures import judge_scope, measured_progress, missed
from stratmap.models.history import MAX_BACKFILL_WEEKS, Found, Snapshot, snapshots_from
from stratmap.models.plan import Feedback, Goal, Milestone, Plan, Rules
from stratmap.models.records import (
    Evidence,
    EvidenceAssignment,
    EvidenceChange,
    EvidenceComment,
    EvidenceItem,
    MeasureValue,
    ensure_utc,
    stored,
)
from stratmap.models.report import (
    AT_RISK_KINDS,
    GoalReport,
    ItemCounts,
    Kind,
    MilestoneReport,
    Status,
)

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
              max_weeks: int = MAX_BACKFILL_WEEKS,
              index: EvidenceIndex | None = None) -> list[datetime]:
    """Every Monday 00:00 (plan time zone) after the plan's history begins, before ``until``.

    ``index`` is the evidence's index at ``until`` (the run's judgement has it), if any.
    """
    until = ensure_utc(until)
    if index is not None and index.as_of != until:
        index = None
    began = first_moment(plan, evidence, until=until, index=index)
    if began is None:
        return []
    local: date = began.astimezone(plan.tz).date()
    day = local + timedelta(days=7 - local.weekday())
    moments: list[datetime] = []
    while (moment := plan.moment(day)) < until:
        moments.append(moment)
        day += timedelta(days=7)
    return moments[-max_weeks:] if max_weeks else []


def reconstruct(plan: Plan, evidence: Evidence, moments: Iterable[datetime], *,
                index: EvidenceIndex | None = None) -> list[Snapshot]:
    """The plan judged at each moment from the same evidence: the backfill's snapshots,
    in time order (each is what ``snapshots_of(judge(plan, evidence, as_of=moment))`` gives,
    marked ``backfill``).

    ``index`` is the evidence's index at a moment no earlier than any of ``moments`` (the
    run's judgement has one): what it selects is what every earlier moment selects, of the
    items that exist by then, so the sweep need not index the evidence again.
    """
    return [snapshot for week in sweep(plan, evidence, moments, index=index)
            for snapshot in week]


def sweep(plan: Plan, evidence: Evidence, moments: Iterable[datetime], *,
          index: EvidenceIndex | None = None) -> Iterator[list[Snapshot]]:
    """:func:`reconstruct` one week at a time, oldest first: a caller that stores each
    week as it comes keeps one week in memory, not years of them (a thousand milestones
    over three years are 150,000 snapshots)."""
    wanted = sorted({ensure_utc(m).astimezone(UTC) for m in moments})
    if not wanted:
        return
    if index is not None and index.as_of < wanted[-1]:
        index = None
    with collector_paused():
        yield from _Sweep(plan, evidence, index).weeks(wanted)


class _Scope:
    """What the rules need of one milestone, or of a goal taken as a whole, kept up to date
    as items change: counts, sums, done times, the latest movement and feedback, holders."""

    def __init__(self, *, goal: Goal, milestone: Milestone | None, rules: Rules,
                 start: datetime | None, due: datetime | None,
                 feedback: Feedback | None, feedback_from: frozenset[str],
                 counted: list[int]) -> None:
        self.goal = goal
        self.milestone = milestone
        self.ref = f"{goal.id}.{milestone.id}" if milestone else goal.id
        self.owner = milestone.owner if milestone else goal.owner
        self.rules = rules
        self.start = start
        self.due = due
        self.feedback = feedback
        self.feedback_from = feedback_from
        self.counted = counted
        """Every item the scope counts at the end of time, by number, in the order of their
        ids (the engine's order, for exact point sums)."""
        self.selectors: list[tuple[str, datetime | None]] = []
        """A milestone's selectors that may select nothing (an ``empty_selector``): their
        source and when the first item they select at the end of time was created (None:
        they never select one)."""
        self.total = 0
        self.done = 0
        self.points_total = 0.0
        self.points_done = 0.0
        self.done_at: list[datetime] = []
        """When each done item became done, sorted."""
        self.last_movement: datetime | None = None
        self.first_created: datetime | None = None
        self.latest_feedback: datetime | None = None
        self.holders: Counter[str] = Counter()
        """Open assigned items by holder (a person, or ``source:account``)."""

    def first_seen(self) -> datetime | None:
        return self.start if self.start is not None else self.first_created


class _Sweep:
    def __init__(self, plan: Plan, evidence: Evidence, index: EvidenceIndex | None) -> None:
        self.plan = plan
        sources = plan.sources
        self.measures: dict[str, list[MeasureValue]] = {}
        for value in evidence.measures:
            self.measures.setdefault(value.measure, []).append(value)
        # What every milestone selects, decided once (at the end of time, or at the given
        # index's moment, after every week): at any moment a milestone selects the same
        # items, those of them that exist yet.
        everything = index if index is not None else EvidenceIndex(plan, evidence, _END_OF_TIME)
        self.person_of = everything.person_of
        indexed = everything.items
        # Its records by item, every one of them: grouped once for the run, not again here.
        self.changes: dict[ItemId, tuple[EvidenceChange, ...]] = everything.changes_of
        self.comments: dict[ItemId, tuple[EvidenceComment, ...]] = everything.comments_of
        self.assignments: dict[ItemId, tuple[EvidenceAssignment, ...]] = everything.assignments_of
        seniors = frozenset(plan.seniors())

        def expected(rule: Feedback | None) -> frozenset[str]:
            if rule is None:
                return frozenset()
            return seniors if rule.from_ == "seniors" else frozenset(rule.from_)

        # Every item of the plan's sources by number: the sweep's state of each, its
        # scopes and whether any milestone selects it are kept in lists by number (three
        # hash tables of every item were some 15 MB at 100,000 issues).
        self.items: list[EvidenceItem] = []
        self.ids: list[ItemId] = []
        """Each item and its id, by number."""
        self.first_of_source: dict[str, datetime] = {}
        """When each source's first item was created: from then on its selectors judge."""
        exact = True
        for item in evidence.items:
            if item.source not in sources:
                continue
            # The index's own key of the item, not a second tuple per item.
            iid = (item.source, item.key)
            state = indexed.get(iid)
            self.items.append(item)
            self.ids.append(iid if state is None else state.id)
            if item.points is not None and not _dyadic(item.points):
                exact = False
            created = item.created
            if item.source not in self.first_of_source or created < self.first_of_source[
                    item.source]:
                self.first_of_source[item.source] = created
        self.goals: list[tuple[_Scope, list[_Scope]]] = []
        number = {iid: n for n, iid in enumerate(self.ids)}
        member: list[list[tuple[_Scope, bool]] | None] = [None] * len(self.ids)

        def join(items: set[ItemId], pair: tuple[_Scope, bool]) -> None:
            for iid in items:
                n = number[iid]
                pairs = member[n]
                if pairs is None:
                    member[n] = [pair]
                else:
                    pairs.append(pair)

        selected = bytearray(len(self.ids))
        for goal in plan.goals:
            scopes: list[_Scope] = []
            goal_counted: set[ItemId] = set()
            goal_context: set[ItemId] = set()
            for milestone in goal.milestones:
                counted: set[ItemId] = set()
                context: set[ItemId] = set()
                selectors: list[tuple[str, datetime | None]] = []
                for selector in milestone.work:
                    found, around = everything.select(selector)
                    counted |= found
                    context |= around
                    if everything.resolved(selector):
                        selectors.append((selector.source, min(
                            (indexed[i].item.created for chosen in (found, around)
                             for i in chosen), default=None)))
                context -= counted
                for iid in counted | context:
                    selected[number[iid]] = 1
                goal_counted |= counted
                goal_context |= context
                rules = plan.rules_for(goal, milestone)
                scope = _Scope(
                    goal=goal, milestone=milestone, rules=rules,
                    start=plan.moment(milestone.start) if milestone.start else None,
                    due=plan.moment(milestone.due) if milestone.due else None,
                    feedback=rules.feedback, feedback_from=expected(rules.feedback),
                    counted=[number[i] for i in sorted(counted)])
                scope.selectors = selectors
                scopes.append(scope)
                # One (scope, counts) pair per scope, shared by its items' lists: at
                # 100,000 issues a pair per item and scope was some 30 MB.
                join(counted, (scope, True))
                join(context, (scope, False))
            whole = _Scope(
                goal=goal, milestone=None, rules=plan.rules_for(goal),
                start=min((s.start for s in scopes if s.start), default=None), due=None,
                feedback=goal.feedback, feedback_from=expected(goal.feedback),
                counted=[number[i] for i in sorted(goal_counted)])
            join(goal_counted, (whole, True))
            join(goal_context, (whole, False))
            self.goals.append((whole, scopes))
        # Each item's scopes as a tuple: a list per item was twice the size.
        self.member: list[tuple[tuple[_Scope, bool], ...]] = [
            () if pairs is None else tuple(pairs) for pairs in member]
        self.selected = selected
        """1 for an item some milestone selects, by number."""
        self.states: list[ItemState | None] = []
        """Each item's state in the week swept last, by number (None before it exists)."""
        self.exact_points = exact
        """Whether every story point is a multiple of 1/1024 (and small): then sums kept
        by adding and taking away are exactly the engine's sums in any order."""

    def _by_week(self, moments: list[datetime]) -> tuple[list[list[int]],
                                                          list[dict[ItemId, datetime]]]:
        """For the week ending at each of ``moments`` (sorted): the items (by number) with
        a moment of their own in it (created, resolved, a change, a comment, an assignee
        change), whose state may have changed; and each account's latest status change or
        comment that counts in it (at its moment, never before its item exists).

        Bucketed as they are read, a number or an account per entry, instead of one sorted
        timeline of every event: at 100,000 issues that timeline was some 60 MB of tuples
        and the sort of all of them."""
        weeks = len(moments)
        dirty: list[list[int]] = [[] for _ in moments]
        active: list[dict[ItemId, datetime]] = [{} for _ in moments]
        accounts: dict[ItemId, ItemId] = {}  # one key object per account
        empty: tuple[Any, ...] = ()
        changes, comments = self.changes, self.comments
        assignments = self.assignments
        for number, (iid, item) in enumerate(zip(self.ids, self.items, strict=True)):
            created = item.created
            seen = {bisect_left(moments, created)}
            if item.resolved is not None:
                seen.add(bisect_left(moments, item.resolved))
            acting = (changes.get(iid, empty), comments.get(iid, empty))
            for group in (*acting, assignments.get(iid, empty)):
                for event in group:
                    seen.add(bisect_left(moments, event.at))
            for week in seen:
                if week < weeks:
                    dirty[week].append(number)
            for events in acting:
                for event in events:
                    author = event.author
                    if author is None:
                        continue
                    at = event.at
                    week = bisect_left(moments, at if at > created else created)
                    if week < weeks:
                        key = (item.source, author)
                        account = accounts.setdefault(key, key)
                        latest = active[week]
                        known = latest.get(account)
                        if known is None or at > known:
                            latest[account] = at
        return dirty, active

    def weeks(self, moments: list[datetime]) -> Iterator[list[Snapshot]]:
        states: list[ItemState | None] = [None] * len(self.items)
        self.states = states
        activity: dict[str, datetime] = {}
        none: list[Any] = []
        changes, comments, assignments = self.changes, self.comments, self.assignments
        selected, member = self.selected, self.member
        person_of = self.person_of
        touched, active = self._by_week(moments)
        volatile: set[int] = set()
        open_unselected = 0
        for week, moment in enumerate(moments):
            dirty = volatile
            dirty.update(touched[week])
            touched[week] = []  # read once: let the week's numbers go
            volatile = set()
            for account, at in active[week].items():
                person = person_of.get(account)
                if person is not None:
                    known = activity.get(person)
                    if known is None or at > known:
                        activity[person] = at
            for number in sorted(dirty):
                iid, item = self.ids[number], self.items[number]
                if item.created > moment:
                    continue
                held = (_assignee_at(item, assignments[iid], moment) if iid in assignments
                        else item.assignee)
                state = _state(iid, item, changes.get(iid, none), comments.get(iid, none),
                               moment, held)
                before = states[number]
                states[number] = state
                if not selected[number]:
                    open_unselected += (not state.done) - (before is not None and not before.done)
                for scope, counts in member[number]:
                    self._update(scope, counts, before, state)
                if state.done_at is not None and state.done_at >= moment:
                    # Done by its resolution or last update, which is still to come: its
                    # done time is the moment itself, so it moves with every week.
                    volatile.add(number)
            if not self.exact_points:
                self._resum(states)
            yield self._week(moment, activity, open_unselected)

    def _update(self, scope: _Scope, counts: bool, before: ItemState | None,
                state: ItemState) -> None:
        item = state.item
        if counts:
            points = item.points or 0.0
            if before is None:
                scope.total += 1
                scope.points_total += points
                if scope.first_created is None or item.created < scope.first_created:
                    scope.first_created = item.created
            else:
                if before.done:
                    scope.done -= 1
                    scope.points_done -= points
                    assert before.done_at is not None
                    del scope.done_at[bisect_left(scope.done_at, before.done_at)]
                if not before.done and before.assignee is not None:
                    scope.holders[self._holder(before)] -= 1
            if state.done:
                scope.done += 1
                scope.points_done += points
                assert state.done_at is not None
                insort(scope.done_at, state.done_at)
            elif state.assignee is not None:
                scope.holders[self._holder(state)] += 1
            last = state.last_change
            if last is not None and (scope.last_movement is None or last > scope.last_movement):
                scope.last_movement = last
        if scope.feedback_from:
            people, person_of = scope.feedback_from, self.person_of
            latest = scope.latest_feedback
            for comment in state.comments:
                if (comment.author is not None
                        and person_of.get((comment.source, comment.author)) in people
                        and (latest is None or comment.at > latest)):
                    latest = comment.at
            scope.latest_feedback = latest

    def _holder(self, state: ItemState) -> str:
        source = state.item.source
        return self.person_of.get((source, state.assignee or "")) or f"{source}:{state.assignee}"

    def _resum(self, states: list[ItemState | None]) -> None:
        """Point sums in the engine's order, for points no sum keeps exact."""
        for whole, scopes in self.goals:
            for scope in (whole, *scopes):
                present = [state for i in scope.counted if (state := states[i]) is not None]
                scope.points_total = sum(s.item.points or 0.0 for s in present)
                scope.points_done = sum(s.item.points or 0.0 for s in present if s.done)

    # -- one week: the engine's rules over the scopes ------------------------------------

    def _week(self, moment: datetime, activity: dict[str, datetime],
              unmapped: int) -> list[Snapshot]:
        plan = self.plan
        found: list[Found] = [(None, None, Kind.UNMAPPED_WORK.value)] * unmapped
        goals: list[GoalReport] = []
        for whole, scopes in self.goals:
            goal = whole.goal
            milestones = [self._milestone(scope, moment, activity, found) for scope in scopes]
            statuses = [m.status for m in milestones]
            if statuses and all(s is Status.DONE for s in statuses):
                status = Status.DONE
            elif statuses and all(s is Status.NOT_STARTED for s in statuses):
                status = Status.NOT_STARTED
            else:
                status = max((s for s in statuses if s not in (Status.DONE, Status.NOT_STARTED)),
                             key=RANK.__getitem__, default=Status.ON_TRACK)
            kinds: list[Kind] = []
            if whole.owner is None:
                kinds.append(Kind.UNOWNED)
            judged = judge_scope(plan, goal.id, goal.measures, self.measures, as_of=moment)
            if judged and not milestones and all(j.reached for j in judged):
                status = Status.DONE
            if status not in (Status.DONE, Status.NOT_STARTED):
                kinds.extend(f.kind for j in judged for f in j.findings)
                if self._feedback_missing(whole, moment):
                    kinds.append(Kind.MISSING_FEEDBACK)
                if self._single_point(whole):
                    kinds.append(Kind.SINGLE_POINT_OF_FAILURE)
                if (whole.total or not (judged or any(m.measures for m in goal.milestones))) \
                        and self._inactive(whole, moment, activity):
                    kinds.append(Kind.INACTIVE_OWNER)
                if set(kinds) & AT_RISK_KINDS and RANK[status] < RANK[Status.AT_RISK]:
                    status = Status.AT_RISK
                if missed(judged):
                    status = Status.OFF_TRACK
            found.extend((goal.id, None, k.value) for k in kinds)
            weights = sum(m.weight for m in goal.milestones)
            progress = (sum(r.progress * m.weight for r, m in zip(milestones, goal.milestones,
                                                                 strict=True)) / weights
                        if weights else 0.0)
            if whole.rules.progress == "measure" and judged:
                progress = measured_progress(judged)
            # Every defaulted list given: pydantic would parse the signature of ``list`` to
            # build each (12 s and 1 GB of a 200-milestone, 150-week backfill).
            goals.append(stored(GoalReport, {
                "id": goal.id, "title": goal.title, "owner": goal.owner, "weight": goal.weight,
                "status": status, "progress": round(progress, 4), "milestones": milestones,
                "measures": []}))
        progress, status = overall(plan, goals)
        return snapshots_from(plan=plan.name, as_of=moment, status=status, progress=progress,
                              goals=goals, found=found, origin="backfill", validate=False)

    def _milestone(self, scope: _Scope, moment: datetime, activity: dict[str, datetime],
                   found: list[Found]) -> MilestoneReport:
        kinds: list[Kind] = []
        if scope.owner is None:
            kinds.append(Kind.UNOWNED)
        for source, first in scope.selectors:
            # Nothing it selects exists yet (an item is among the week's states from the
            # week it is created in): its first item's creation says when that ends.
            began = self.first_of_source.get(source)
            if began is not None and began <= moment and (first is None or first > moment):
                kinds.append(Kind.EMPTY_SELECTOR)
        if scope.start is not None and scope.start > moment:
            status = Status.NOT_STARTED
        elif scope.total and scope.done == scope.total:
            status = Status.DONE
        else:
            status = Status.ON_TRACK
        assert scope.milestone is not None
        judged = judge_scope(self.plan, scope.ref, scope.milestone.measures, self.measures,
                             as_of=moment)
        if status is Status.ON_TRACK and judged and not scope.milestone.work and all(
                j.reached for j in judged):
            status = Status.DONE
        forecast = None
        if status is Status.ON_TRACK:
            kinds.extend(f.kind for j in judged for f in j.findings)
            # As the engine: the rules about items judge only a milestone that has some.
            if scope.total and self._stalled(scope, moment):
                kinds.append(Kind.STALLED)
            if scope.due is not None and scope.due < moment:
                kinds.append(Kind.OVERDUE)
            elif scope.total:
                enough, forecast = self._forecast(scope, moment)
                if (scope.due is not None and enough
                        and not (forecast is not None and forecast <= scope.due)):
                    kinds.append(Kind.SLIPPING)
            if scope.total and self._feedback_missing(scope, moment):
                kinds.append(Kind.MISSING_FEEDBACK)
            if (scope.total or not judged) and self._inactive(scope, moment, activity):
                kinds.append(Kind.INACTIVE_OWNER)
            if Kind.OVERDUE in kinds or missed(judged):
                status = Status.OFF_TRACK
            elif set(kinds) & AT_RISK_KINDS:
                status = Status.AT_RISK
        by_points = scope.rules.progress == "points"
        if by_points:
            progress = scope.points_done / scope.points_total if scope.points_total else 0.0
        else:
            progress = scope.done / scope.total if scope.total else 0.0
        if scope.rules.progress == "measure" and judged:
            progress = measured_progress(judged)
        found.extend((scope.goal.id, scope.ref, k.value) for k in kinds)
        # Built as the store rebuilds its rows (every field given, in order, not validated):
        # half the cost of model_construct, for a report per milestone per past week.
        return stored(MilestoneReport, {
            "id": scope.ref, "title": scope.milestone.title, "owner": scope.owner,
            "status": status, "progress": round(progress, 4), "start": scope.milestone.start,
            "due": scope.milestone.due,
            "items": stored(ItemCounts, {
                "total": scope.total, "done": scope.done,
                "points_total": round(scope.points_total, 4) if by_points else None,
                "points_done": round(scope.points_done, 4) if by_points else None}),
            "last_movement": scope.last_movement, "forecast": forecast,
            "depends_on": list(scope.milestone.depends_on), "measures": []})

    @staticmethod
    def _stalled(scope: _Scope, moment: datetime) -> bool:
        limit = scope.rules.stall_after
        clock = max((m for m in (scope.start, scope.last_movement) if m is not None),
                    default=None)
        if clock is None:
            clock = scope.first_seen()
        return limit is not None and clock is not None and moment - clock > limit

    @staticmethod
    def _forecast(scope: _Scope, moment: datetime) -> tuple[bool, datetime | None]:
        window = scope.rules.forecast_window or timedelta(days=28)
        remaining = scope.total - scope.done
        began = scope.first_seen()
        if (remaining == 0 or scope.done < MIN_DONE_FOR_FORECAST or began is None
                or moment - began < MIN_FORECAST_HISTORY):
            return False, None
        recent = scope.done - bisect_right(scope.done_at, moment - window)
        if recent == 0:
            return True, None
        return True, moment + window / recent * remaining

    @staticmethod
    def _feedback_missing(scope: _Scope, moment: datetime) -> bool:
        rule = scope.feedback
        if rule is None:
            return False
        began = scope.first_seen()
        if began is None or moment - began < rule.every:
            return False
        latest = scope.latest_feedback
        return not (latest is not None and latest > moment - rule.every)

    @staticmethod
    def _single_point(scope: _Scope) -> bool:
        share_limit = scope.rules.single_owner_share
        holders = {k: v for k, v in scope.holders.items() if v}
        total = sum(holders.values())
        if share_limit is None or total < 3:
            return False
        _holder, count = min(holders.items(), key=lambda kv: (-kv[1], kv[0]))
        return not count / total < share_limit

    @staticmethod
    def _inactive(scope: _Scope, moment: datetime, activity: dict[str, datetime]) -> bool:
        owner, limit = scope.owner, scope.rules.inactive_after
        if owner is None or limit is None:
            return False
        last = activity.get(owner)
        return not (last is not None and moment - last <= limit)


def _dyadic(points: float) -> bool:
    return abs(points) < 2**30 and (points * 1024).is_integer()


def missing_weeks(plan: Plan, evidence: Evidence, *, until: datetime, stored: set[datetime],
                  index: EvidenceIndex | None = None) -> list[datetime]:
    """The week-ends up to ``until`` with no snapshot among ``stored``."""
    return [m for m in week_ends(plan, evidence, until=until, index=index) if m not in stored]


__all__ = ["first_moment", "missing_weeks", "reconstruct", "sweep", "week_ends"]
