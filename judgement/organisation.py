"""Findings about the organisation, not one milestone: balance, engagement, load.

The item rules (:mod:`stratmap.judgement.engine`) judge each milestone from its items; the
rules here judge how the plan's people and goals fare together, from the same evidence:

- ``goal_imbalance``: one goal's share of recent plan activity exceeds its weight's share by
  more than ``imbalance_factor`` while another goal gets under half its weight's share;
- ``disengaged``: a person holding open plan items or owning an active milestone made no
  status change or comment on any plan item for longer than ``disengaged_after``;
- ``overloaded_owner``: a person owns more than ``max_active_milestones`` active milestones,
  or holds more than ``max_open_items`` open plan items;

and the plan's engagement figure (the share of its people active on plan items lately).

``imbalance_factor`` comes from the goal, else the defaults; the activity of all goals is
counted over one window, the defaults' ``balance_window``. A person-level option comes from the milestones the person is judged on (those
they own or hold open items of, each from its own cascade) and the strictest of them
applies; the engagement window is the defaults' ``disengaged_after``. Pure, like the engine.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TypeVar

from stratmap.judgement.evidence import EvidenceIndex, ItemId, ItemState
from stratmap.models.plan import DEFAULT_RULES, Goal, Milestone, Plan, Rules, format_duration
from stratmap.models.records import DueChange as RecordedDue
from stratmap.models.records import EvidenceChange, EvidenceComment
from stratmap.models.report import (
    Balance,
    DueDateChange,
    Engagement,
    Finding,
    GoalShare,
    Kind,
    Severity,
    Status,
    UnmappedShare,
    UnmappedWeek,
)

MIN_BALANCE_ACTIVITY = 10
"""Fewer status changes and comments than this in the window say nothing about balance."""
STARVING_SHARE = 0.5
"""A goal starves when its share of the activity is under this part of its weight's share."""
ACTIVE = (Status.ON_TRACK, Status.AT_RISK, Status.OFF_TRACK)

CONTRADICTS_ON_TRACK = frozenset({Kind.STALLED, Kind.OVERDUE, Kind.SLIPPING})
"""What the evidence shows that an owner's "on track" contradicts."""
DECLARATION_FRESH = timedelta(days=30)
"""An owner's declaration older than this is no longer their claim."""

UNMAPPED_WEEKS = 12
"""How many weeks back the share of unmapped activity is reported."""
WEEK = timedelta(days=7)

BLOCKED_BY = "blocked_by"
"""The item field naming the items an item is blocked by (keys, comma-separated, same source;
the Jira connector fills it from "is blocked by" issue links)."""

SEVERITY = {
    Kind.BLOCKED_BY_OTHER_TEAM: Severity.WARNING,
    Kind.OPTIMISTIC_STATUS: Severity.WARNING,
    Kind.DATE_SLIPPED: Severity.WARNING,
    Kind.GOAL_IMBALANCE: Severity.WARNING,
    Kind.DISENGAGED: Severity.WARNING,
    Kind.OVERLOADED_OWNER: Severity.WARNING,
}


@dataclass(frozen=True)
class Judged:
    """One milestone as the engine judged it: what the organisation rules ask of it."""

    goal: Goal
    ref: str
    owner: str | None
    status: Status
    rules: Rules
    counted: tuple[ItemState, ...]
    context: tuple[ItemState, ...]
    first_seen: datetime | None
    kinds: frozenset[Kind] = frozenset()
    """The kinds of the item rules' findings on this milestone."""


@dataclass(frozen=True)
class Outcome:
    """What the organisation rules add to a report."""

    findings: list[Finding]
    engagement: Engagement
    balance: Balance | None
    slip_log: list[DueDateChange]
    unmapped_share: list[UnmappedShare] = field(default_factory=list)


@dataclass(frozen=True)
class _Claim:
    """One declaration of a milestone's status: an owner's comment or a tracker's field."""

    status: str
    at: datetime
    order: str
    source: str
    subject: str
    by: str | None
    """The person of the plan who declared it (None: an account no person matches)."""
    account: str | None
    quote: str
    via: str


@dataclass
class _Person:
    """What one person is judged on: milestones owned or held, and their strictest rules."""

    owns: list[str] = field(default_factory=list)
    holds: list[str] = field(default_factory=list)
    disengaged_after: timedelta | None = None
    max_active_milestones: int | None = None
    max_open_items: int | None = None
    since: datetime | None = None
    """The earliest first_seen of the milestones judged on: the quiet clock's latest start."""


_Limit = TypeVar("_Limit", int, timedelta)


def _strictest(known: _Limit | None, value: _Limit | None) -> _Limit | None:
    if value is None:
        return known
    return value if known is None or value < known else known


def _days(span: timedelta) -> int:
    return math.floor(span.total_seconds() / 86400)


class Organisation:
    """The organisation rules over one judgement's milestones."""

    def __init__(self, plan: Plan, index: EvidenceIndex, judged: list[Judged]) -> None:
        self.plan = plan
        self.index = index
        self.as_of = index.as_of
        self.judged = judged
        self._plan_activity: dict[str, datetime] | None = None
        self._states: dict[bool, list[ItemState]] = {}

    def states(self, *, context: bool = True) -> list[ItemState]:
        """Every judged milestone's items, each once (context items too, unless not), in
        no particular order (every rule that asks takes a set, a count or a latest moment);
        several rules ask, so each list is made once."""
        found = self._states.get(context)
        if found is None:
            found = self._states[context] = _states(self.judged, context=context)
        return found

    def who(self, handle: str) -> str:
        person = self.plan.people.get(handle)
        return f"{person.name} ({handle})" if person is not None and person.name else handle

    def finding(self, kind: Kind, message: str, *, person: str | None, goal: str | None = None,
                **evidence: object) -> Finding:
        return Finding(kind=kind, severity=SEVERITY[kind], goal=goal, milestone=None,
                       person=person or self.plan.leader, item=None, message=message,
                       evidence=evidence)

    # -- activity on plan items ----------------------------------------------------------

    def plan_activity(self) -> dict[str, datetime]:
        """Each person's latest status change or comment on a plan item, up to ``as_of``."""
        if self._plan_activity is None:
            latest: dict[str, datetime] = {}
            person_of = self.index.person_of
            for state in self.states():
                for events in (state.changes, state.comments):
                    for event in events:
                        handle = person_of.get((event.source, event.author or ""))
                        if handle is not None and (handle not in latest
                                                   or event.at > latest[handle]):
                            latest[handle] = event.at
            self._plan_activity = latest
        return self._plan_activity

    # -- goal_imbalance ------------------------------------------------------------------

    def balance(self) -> Balance | None:
        """The active goals' shares of the window's activity against their weights' shares
        (None with fewer than two active goals)."""
        by_goal: dict[str, list[Judged]] = {}
        for judged in self.judged:
            by_goal.setdefault(judged.goal.id, []).append(judged)
        goals = [g for g in self.plan.goals
                 if any(j.status in ACTIVE for j in by_goal.get(g.id, []))]
        if len(goals) < 2:
            return None
        window = self.plan.defaults.balance_window or DEFAULT_RULES.balance_window
        assert window is not None
        activity = {g.id: self._activity(by_goal[g.id], self.as_of - window) for g in goals}
        total = sum(activity.values())
        weights = sum(g.weight for g in goals)
        return Balance(window=format_duration(window), total=total, goals=[
            GoalShare(goal=g.id, activity=activity[g.id],
                      share=round(activity[g.id] / total, 4) if total else 0.0,
                      weight_share=round(g.weight / weights, 4))
            for g in goals])

    def goal_imbalance(self, balance: Balance | None) -> list[Finding]:
        if balance is None or balance.total < MIN_BALANCE_ACTIVITY:
            return []
        shares = {s.goal: s for s in balance.goals}
        # Exact fractions for the comparisons: rounding must not move a goal over a limit.
        weights = sum(g.weight for g in self.plan.goals if g.id in shares)
        share = {gid: s.activity / balance.total for gid, s in shares.items()}
        due = {g.id: g.weight / weights for g in self.plan.goals if g.id in shares}
        starving = [gid for gid in shares if share[gid] < STARVING_SHARE * due[gid]]
        found = []
        for goal in self.plan.goals:
            if goal.id not in shares:
                continue
            factor = self.plan.rules_for(goal).imbalance_factor or 2.0
            starved = [s for s in starving if s != goal.id]
            if share[goal.id] <= factor * due[goal.id] or not starved:
                continue
            found.append(self.finding(
                Kind.GOAL_IMBALANCE,
                f"Goal {goal.id} drew {share[goal.id]:.0%} of the plan's activity in the last "
                f"{balance.window}, against its {due[goal.id]:.0%} share of the weight (limit "
                f"{factor:g}x), while {', '.join(starved)} "
                f"{'starves' if len(starved) == 1 else 'starve'}",
                person=self.plan.leader, goal=goal.id,
                share=shares[goal.id].share, weight_share=shares[goal.id].weight_share,
                factor=factor, window=balance.window,
                activity={gid: s.activity for gid, s in shares.items()}, total=balance.total,
                starving=[{"goal": s, "share": shares[s].share,
                           "weight_share": shares[s].weight_share} for s in starved],
            ))
        return found

    def _activity(self, milestones: list[Judged], since: datetime) -> int:
        """Status changes and comments after ``since`` on the goal's items (an item shared
        by two of its milestones counts once; an item done is its status change)."""
        # An item's changes and comments are in time order: count from the first after
        # (most items have none after: their last event says so without a search).
        count = 0
        for state in _states(milestones):
            for events in (state.changes, state.comments):
                if events and events[-1].at > since:
                    count += len(events) - bisect_right(events, since, key=_at)
        return count

    # -- people ----------------------------------------------------------------------------

    def people(self) -> dict[str, _Person]:
        """Each person judged: the active milestones they own or hold open items of."""
        out: dict[str, _Person] = {}
        holders = self.index.open_holder
        for judged in self.judged:
            if judged.status not in ACTIVE:
                continue
            concerned: set[str] = set()
            if judged.owner is not None and judged.owner in self.plan.people:
                out.setdefault(judged.owner, _Person()).owns.append(judged.ref)
                concerned.add(judged.owner)
            for holder in sorted({holders[s.id] for s in judged.counted if s.id in holders}):
                out.setdefault(holder, _Person()).holds.append(judged.ref)
                concerned.add(holder)
            for handle in concerned:
                person = out[handle]
                rules = judged.rules
                person.disengaged_after = _strictest(person.disengaged_after,
                                                     rules.disengaged_after)
                person.max_active_milestones = _strictest(person.max_active_milestones,
                                                          rules.max_active_milestones)
                person.max_open_items = _strictest(person.max_open_items, rules.max_open_items)
                if judged.first_seen is not None and (person.since is None
                                                      or judged.first_seen < person.since):
                    person.since = judged.first_seen
        return out

    def disengaged(self, people: dict[str, _Person]) -> list[Finding]:
        found = []
        activity = self.plan_activity()
        for handle in sorted(people):
            person = people[handle]
            limit = person.disengaged_after
            last = activity.get(handle)
            clock = last or person.since
            if limit is None or clock is None or self.as_of - clock <= limit:
                continue
            quiet = (f"for {_days(self.as_of - last)} days" if last
                     else "at all since their work began")
            held = sorted(set(person.holds))
            found.append(self.finding(
                Kind.DISENGAGED,
                f"{self.who(handle)} has made no status change or comment on any plan item "
                f"{quiet} (limit {format_duration(limit)}) while {_duties(person.owns, held)}",
                person=handle, last_plan_activity=_iso(last), since=_iso(clock),
                disengaged_after=format_duration(limit), owns=person.owns, holds=held,
                notify=sorted({handle, self.plan.leader}),
            ))
        return found

    def overloaded_owner(self, people: dict[str, _Person]) -> list[Finding]:
        found = []
        holders = self.index.open_holder
        counted = {s.id for s in self.states(context=False)}
        load = Counter(holders[i] for i in counted if i in holders)
        for handle in sorted(people):
            person = people[handle]
            owns, held = len(person.owns), load[handle]
            over_owns = (person.max_active_milestones is not None
                         and owns > person.max_active_milestones)
            over_held = person.max_open_items is not None and held > person.max_open_items
            if not (over_owns or over_held):
                continue
            reasons = []
            if over_owns:
                reasons.append(f"owns {owns} active milestones (limit "
                               f"{person.max_active_milestones})")
            if over_held:
                reasons.append(f"holds {held} open plan items (limit {person.max_open_items})")
            found.append(self.finding(
                Kind.OVERLOADED_OWNER,
                f"{self.who(handle)} {' and '.join(reasons)}",
                person=handle, active_milestones=owns, owns=person.owns, open_items=held,
                max_active_milestones=person.max_active_milestones,
                max_open_items=person.max_open_items,
                notify=sorted({handle, self.plan.leader}),
            ))
        return found

    # -- date_slipped and the slip log ------------------------------------------------------

    def slip_log(self) -> list[DueDateChange]:
        """Every recorded change of a due date (not where a log starts), oldest first."""
        log = []
        changes = sorted([*self.index.due_changes, *self.plan_due_history()],
                         key=lambda c: (c.milestone, c.at, c.where))
        for change in changes:
            if change.from_due is None:
                continue
            before, after = self._due(change.from_due), self._due(change.to_due)
            days = (round((after - before).total_seconds() / 86400, 2)
                    if before is not None and after is not None and change.counted else None)
            log.append(DueDateChange(milestone=change.milestone, at=change.at,
                                     where=change.where, from_due=change.from_due,
                                     to_due=change.to_due, slip_days=days))
        return log

    def plan_due_history(self) -> list[RecordedDue]:
        """The changes the plan file lists in milestones' ``due_history`` (``where`` is
        ``plan history``), up to ``as_of``, but none from the first due date the store
        recorded from the plan on: from then on the runs record the changes themselves."""
        recorded: dict[str, RecordedDue] = {}
        for change in self.index.due_changes:  # by milestone, oldest first
            if change.where == "plan":
                recorded.setdefault(change.milestone, change)
        found = []
        for ref, (_, milestone) in self.plan.milestone_ids().items():
            moves = milestone.due_history
            first = recorded.get(ref)
            for n, move in enumerate(moves):
                at = self.plan.moment(move.moved)
                if at > self.as_of or (first is not None and at >= first.at):
                    continue
                after = (moves[n + 1].due.isoformat() if n + 1 < len(moves)
                         else first.to_due if first is not None
                         else milestone.due.isoformat() if milestone.due else None)
                found.append(RecordedDue(plan=self.plan.name, milestone=ref, at=at,
                                         where="plan history", from_due=move.due.isoformat(),
                                         to_due=after))
        return found

    def _due(self, text: str | None) -> datetime | None:
        if text is None:
            return None
        value: date | datetime = (date.fromisoformat(text) if len(text) == 10
                                  else datetime.fromisoformat(text))
        return self.plan.moment(value)

    def date_slipped(self, log: list[DueDateChange]) -> list[Finding]:
        by_milestone: dict[str, list[DueDateChange]] = {}
        for entry in log:
            by_milestone.setdefault(entry.milestone, []).append(entry)
        found = []
        for judged in self.judged:
            entries = by_milestone.get(judged.ref)
            if not entries or judged.status is Status.DONE:
                continue
            most, longest = judged.rules.max_slips, judged.rules.max_slip_total
            later = [e for e in entries if e.slip_days is not None and e.slip_days > 0]
            total = timedelta(days=sum(e.slip_days or 0.0 for e in entries))
            over_count = most is not None and len(later) > most
            over_total = longest is not None and total > longest
            if not (over_count or over_total):
                continue
            first, last = entries[0], entries[-1]
            reasons = []
            if over_count:
                reasons.append(f"moved later {len(later)} times (limit {most})")
            if over_total and longest is not None:
                reasons.append(f"moved {_days(total)} days later in all (limit "
                               f"{format_duration(longest)})")
            found.append(Finding(
                kind=Kind.DATE_SLIPPED, severity=SEVERITY[Kind.DATE_SLIPPED],
                goal=judged.goal.id, milestone=judged.ref,
                person=judged.owner or judged.goal.owner or self.plan.leader, item=None,
                message=f"The due date of {judged.ref} {' and '.join(reasons)}: from "
                        f"{first.from_due} to {last.to_due}",
                evidence={"slips": len(later), "changes": len(entries),
                          "total_days": round(total.total_seconds() / 86400, 2),
                          "first_due": first.from_due, "due": last.to_due,
                          "max_slips": most,
                          "max_slip_total": format_duration(longest) if longest else None,
                          "log": [e.model_dump(mode="json") for e in entries]},
            ))
        return found

    # -- optimistic_status: what owners declare against what the evidence shows ------------

    def optimistic_status(self) -> list[Finding]:
        found = []
        milestones = self.plan.milestone_ids()
        for judged in self.judged:
            if judged.owner is None or judged.status not in ACTIVE:
                continue
            claims = [*self._said(judged), *self._declared(judged, milestones)]
            if not claims:
                continue
            claim = max(claims, key=lambda c: (c.at, c.order))
            shown = sorted(k.value for k in judged.kinds & CONTRADICTS_ON_TRACK)
            by = self.who(claim.by) if claim.by else (
                self.index.display_names.get((claim.source, claim.account or "")) or claim.account
                or "someone")
            where = (f"({claim.subject})" if claim.via == "comment"
                     else f"({claim.via} of {claim.subject})")
            if claim.status == "on_track" and shown:
                message = (f"{by} declared {judged.ref} on track on {claim.at.date().isoformat()} "
                           f"{where}, but the evidence shows it {', '.join(shown)}")
            elif claim.status == "at_risk" and judged.status is Status.ON_TRACK:
                message = (f"{by} declared {judged.ref} at risk on {claim.at.date().isoformat()} "
                           f"{where}, but the evidence shows no risk: say what the trackers "
                           "do not")
            else:
                continue
            above = judged.goal.owner if judged.goal.owner != judged.owner else None
            found.append(Finding(
                kind=Kind.OPTIMISTIC_STATUS, severity=SEVERITY[Kind.OPTIMISTIC_STATUS],
                goal=judged.goal.id, milestone=judged.ref,
                person=above or self.plan.leader, item=None, message=message,
                evidence={"declared": claim.status, "declared_by": claim.by,
                          "declared_account": None if claim.by else claim.account,
                          "declared_at": claim.at.isoformat(), "item": claim.subject,
                          "via": claim.via, "quote": claim.quote[:300],
                          "evidence_shows": shown, "status": judged.status.value,
                          "direction": "optimistic" if claim.status == "on_track"
                          else "pessimistic",
                          "notify": sorted({p for p in (judged.owner, claim.by,
                                                        above or self.plan.leader) if p})},
            ))
        return found

    def _said(self, judged: Judged) -> list[_Claim]:
        """The owner's declarations in comments on the milestone's items, fresh ones only."""
        on_track = _phrases(judged.rules.on_track_phrases)
        at_risk = _phrases(judged.rules.at_risk_phrases)
        person_of = self.index.person_of
        since = self.as_of - DECLARATION_FRESH
        claims = []
        for state in (*judged.counted, *judged.context):
            for comment in state.comments:
                if (comment.at <= since or person_of.get(
                        (comment.source, comment.author or "")) != judged.owner):
                    continue
                body, order = comment.body, comment.comment_id
                if body is None or order is None:
                    raise ValueError(f"the comment of {comment.at.isoformat()} on "
                                     f"{comment.item_key} was read without its text: read "
                                     "the evidence with full_since at least "
                                     "DECLARATION_FRESH before as_of")
                if at_risk is not None and at_risk.search(body):
                    status = "at_risk"
                elif on_track is not None and on_track.search(body):
                    status = "on_track"
                else:
                    continue
                claims.append(_Claim(status=status, at=comment.at, order=order,
                                     source=comment.source, subject=comment.item_key,
                                     by=judged.owner, account=comment.author,
                                     quote=body, via="comment"))
        return claims

    def _declared(self, judged: Judged,
                  milestones: dict[str, tuple[Goal, Milestone]]) -> list[_Claim]:
        """The statuses declared in trackers on what the milestone selects: its epics' status
        fields, its Linear projects' updates; by whoever set them. A tracker's declaration
        stands until the next one replaces it (the tracker still shows it)."""
        subjects = {s.id for s in judged.context}
        if judged.ref in milestones:
            for selector in milestones[judged.ref][1].work:
                project = selector.criteria().get("project")
                if project is not None:
                    subjects.add((selector.source, str(project)))
        claims = []
        for subject in sorted(subjects):
            for declared in self.index.declarations.get(subject, ()):
                claims.append(_Claim(
                    status=declared.status.value, at=declared.at,
                    order=declared.declaration_id, source=declared.source,
                    subject=declared.subject,
                    by=self.index.person(declared.source, declared.author),
                    account=declared.author, quote=declared.said, via=declared.where))
        return claims

    # -- blocked_by_other_team ------------------------------------------------------------

    def blocked_by_other_team(self) -> list[Finding]:
        found = []
        items = self.index.items
        for judged in self.judged:
            limit = judged.rules.stall_after
            if judged.status not in ACTIVE or limit is None:
                continue
            own = {s.id for s in (*judged.counted, *judged.context)}
            for state in judged.counted:
                named = state.item.fields.get(BLOCKED_BY)
                if state.done or not named:
                    continue
                for key in sorted(set(named.split(","))):
                    blocker = items.get((state.item.source, key))
                    if blocker is None or blocker.id in own or blocker.done:
                        continue
                    moved = blocker.last_change or blocker.item.created
                    if self.as_of - moved <= limit:
                        continue
                    holder = (self.index.person(blocker.item.source, blocker.assignee)
                              if blocker.assignee else None)
                    held = (self.who(holder) if holder else blocker.assignee) or "nobody"
                    found.append(Finding(
                        kind=Kind.BLOCKED_BY_OTHER_TEAM,
                        severity=SEVERITY[Kind.BLOCKED_BY_OTHER_TEAM], goal=judged.goal.id,
                        milestone=judged.ref,
                        person=judged.owner or judged.goal.owner or self.plan.leader,
                        item=None,
                        message=f"{state.item.key} of {judged.ref} is blocked by {key}, "
                                f"outside the milestone, held by {held} and unmoved for "
                                f"{_days(self.as_of - moved)} days (limit "
                                f"{format_duration(limit)})",
                        evidence={"blocked": state.item.key, "blocker": key,
                                  "blocker_assignee": holder,
                                  "blocker_account": None if holder else blocker.assignee,
                                  "blocker_status": blocker.item.status,
                                  "blocker_last_movement": _iso(blocker.last_change),
                                  "stall_after": format_duration(limit),
                                  "notify": sorted({p for p in (
                                      judged.owner or self.plan.leader, holder) if p})},
                    ))
        return found

    # -- unmapped work as a ratio over time ----------------------------------------------

    def unmapped_share(self) -> list[UnmappedShare]:
        """Each source's status changes and comments in each of the last ``UNMAPPED_WEEKS``
        weeks (ending at ``as_of``), and how many were on items no milestone selects (as
        selected at ``as_of``; an epic a milestone selects is the plan's)."""
        mapped = {s.id for s in self.states()}
        span = UNMAPPED_WEEKS * WEEK
        counts: dict[str, list[list[int]]] = {}
        oldest = self.as_of - span
        for iid, state in self.index.items.items():
            for events in (state.changes, state.comments):
                # In time order: most items have nothing in the span (their last event
                # says so); the others skip to their first event inside it.
                if not events or events[-1].at <= oldest:
                    continue
                for event in events[bisect_right(events, oldest, key=_at):]:
                    age = self.as_of - event.at
                    if age >= span:
                        continue
                    week = UNMAPPED_WEEKS - 1 - max(0, math.ceil(age / WEEK) - 1)
                    row = counts.setdefault(iid[0], [[0, 0] for _ in range(UNMAPPED_WEEKS)])
                    row[week][0] += 1
                    if iid not in mapped:
                        row[week][1] += 1
        shares = []
        for source in sorted(counts):
            weeks = [UnmappedWeek(start=self.as_of - (UNMAPPED_WEEKS - n) * WEEK,
                                  end=self.as_of - (UNMAPPED_WEEKS - 1 - n) * WEEK,
                                  activity=total, unmapped=outside,
                                  share=round(outside / total, 4) if total else None)
                     for n, (total, outside) in enumerate(counts[source])]
            total = sum(w.activity for w in weeks)
            outside = sum(w.unmapped for w in weeks)
            shares.append(UnmappedShare(source=source, activity=total, unmapped=outside,
                                        share=round(outside / total, 4) if total else None,
                                        weeks=weeks))
        return shares

    # -- the plan's figure -----------------------------------------------------------------

    def engagement(self) -> Engagement:
        window = self.plan.defaults.disengaged_after or DEFAULT_RULES.disengaged_after
        assert window is not None
        activity = self.plan_activity()
        since = self.as_of - window
        active = [h for h in self.plan.people if h in activity and activity[h] > since]
        total = len(self.plan.people)
        return Engagement(
            window=format_duration(window), people=total, active=len(active),
            share=round(len(active) / total, 4) if total else 0.0,
            quiet=sorted(h for h in self.plan.people if h not in active),
        )

    def run(self) -> Outcome:
        people = self.people()
        balance = self.balance()
        log = self.slip_log()
        findings = [*self.date_slipped(log), *self.optimistic_status(),
                    *self.blocked_by_other_team(),
                    *self.goal_imbalance(balance),
                    *self.disengaged(people), *self.overloaded_owner(people)]
        return Outcome(findings=findings, engagement=self.engagement(), balance=balance,
                       slip_log=log, unmapped_share=self.unmapped_share())


def _at(event: EvidenceChange | EvidenceComment) -> datetime:
    return event.at


def _states(judged: Iterable[Judged], *, context: bool = True) -> list[ItemState]:
    """The items of ``judged`` milestones, each once (context items too, unless not), in
    no particular order: sorting 100,000 items' keys cost more than the rules that ask."""
    seen: dict[ItemId, ItemState] = {}
    for one in judged:
        for state in (*one.counted, *(one.context if context else ())):
            seen.setdefault(state.id, state)
    return list(seen.values())


def _phrases(phrases: list[str] | None) -> re.Pattern[str] | None:
    """Any of ``phrases`` as whole words, in any case (None: no phrases, no declaration)."""
    if not phrases:
        return None
    alternatives = "|".join(re.escape(p.strip()) for p in sorted(phrases, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def _duties(owns: list[str], holds: list[str]) -> str:
    """What a person still answers for, in words: ``owning eu.vat and holding open items of
    eu.localisation, eu.vat``."""
    parts = []
    if owns:
        parts.append(f"owning {', '.join(owns)}")
    if holds:
        parts.append(f"holding open items of {', '.join(holds)}")
    return " and ".join(parts)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def judge_organisation(plan: Plan, index: EvidenceIndex, judged: list[Judged]) -> Outcome:
    """The organisation's findings, the plan's engagement figure and its goals' balance."""
    return Organisation(plan, index, judged).run()
