"""Indexes over the evidence, built once per judgement: who is who, what is selected,
and what state each item was in at ``as_of``.

Everything here is pure and reads no clock. History is reconstructed from status
changes, so judging at a past ``as_of`` sees the plan as it stood then.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stratmap.judgement.slips import tracker_due_changes
from stratmap.models.plan import Plan, Selector
from stratmap.models.records import (
    Declaration,
    DueChange,
    Evidence,
    EvidenceAssignment,
    EvidenceChange,
    EvidenceComment,
    EvidenceItem,
    MeasureValue,
    StatusCategory,
)

ItemId = tuple[str, str]
"""(source, key)"""


@dataclass(slots=True)
class ItemState:
    """One item as it stood at ``as_of``."""

    item: EvidenceItem
    category: StatusCategory
    done_at: datetime | None
    """When it last became done, if it is done at ``as_of``."""
    last_change: datetime | None
    id: ItemId
    done: bool
    """Whether it is done at ``as_of``. ``id`` and ``done`` are asked for so often that
    they are computed once."""
    assignee: str | None
    """Who held it at ``as_of``: its current assignee, unless assignee changes after
    ``as_of`` say someone else did then."""
    changes: Sequence[EvidenceChange] = ()
    comments: Sequence[EvidenceComment] = ()


def _assignee_at(item: EvidenceItem, assignments: Sequence[EvidenceAssignment],
                 as_of: datetime) -> str | None:
    """The item's assignee at ``as_of``: the current one when no recorded change is later
    (the tracker's field is the truth for now), else what the first later change found."""
    if not assignments or assignments[-1].at <= as_of:
        return item.assignee
    later = next(a for a in assignments if a.at > as_of)
    return later.from_account


def _state(iid: ItemId, item: EvidenceItem, changes: Sequence[EvidenceChange],
           comments: Sequence[EvidenceComment], as_of: datetime,
           assignee: str | None) -> ItemState:
    # ``changes`` and ``comments`` are in time order and this item's own: when all of them
    # are past, they are kept as they are instead of copied.
    past = changes if not changes or changes[-1].at <= as_of else [
        c for c in changes if c.at <= as_of]
    if past:
        category = past[-1].to_category
    elif changes:
        # Every recorded change is still to come: the item was in its first change's
        # "from" state (or not yet started) at as_of.
        category = changes[0].from_category or StatusCategory.TODO
    elif item.status_category is StatusCategory.DONE and item.resolved and item.resolved > as_of:
        category = StatusCategory.IN_PROGRESS
    else:
        category = item.status_category
    done_at: datetime | None = None
    if category is StatusCategory.DONE:
        into_done = [c.at for c in past if c.to_category is StatusCategory.DONE]
        done_at = into_done[-1] if into_done else (item.resolved or item.updated)
        done_at = min(done_at, as_of)
    return ItemState(
        item=item,
        category=category,
        done_at=done_at,
        last_change=past[-1].at if past else None,
        id=iid,
        done=category is StatusCategory.DONE,
        assignee=assignee,
        changes=past,
        comments=comments if not comments or comments[-1].at <= as_of else [
            c for c in comments if c.at <= as_of],
    )


def _by_item(records: (Iterable[EvidenceChange] | Iterable[EvidenceComment]
                       | Iterable[EvidenceAssignment]),
             order: Callable[[Any], tuple[datetime, str]],
             ids: dict[ItemId, ItemId]) -> dict[ItemId, tuple[Any, ...]]:
    """Records grouped by item, each group in ``order`` (ties keep their given order).

    One pass groups the records and notes the groups that arrive out of time order (none,
    as the store reads them); only those are sorted. Groups are keyed by the item's id
    from ``ids`` (added there when new): one id object per item for every index.
    """
    groups: dict[ItemId, list[Any]] = {}
    unsorted: set[ItemId] = set()
    for record in records:
        key = (record.source, record.item_key)
        group = groups.get(key)
        if group is None:
            groups[ids.setdefault(key, key)] = [record]
        else:
            if not group[-1].at < record.at:
                unsorted.add(key)
            group.append(record)
    for key in unsorted:
        groups[key].sort(key=order)
    # Kept as tuples, each list let go as its tuple is made: a list grown by appending
    # holds spare room (6 MB at 100,000 issues).
    kept: dict[ItemId, Any] = groups
    for key in kept:
        kept[key] = tuple(kept[key])
    return kept


class EvidenceIndex:
    """The evidence as the engine asks about it."""

    def __init__(self, plan: Plan, evidence: Evidence, as_of: datetime) -> None:
        self.plan = plan
        self.as_of = as_of
        # One (source, key) tuple per item, shared by every index below (four of them
        # were some 25 MB at 100,000 issues).
        ids: dict[ItemId, ItemId] = {}
        changes: dict[ItemId, tuple[EvidenceChange, ...]] = _by_item(
            evidence.changes, lambda c: (c.at, c.change_id), ids)
        comments: dict[ItemId, tuple[EvidenceComment, ...]] = _by_item(
            evidence.comments, lambda c: (c.at, c.comment_id), ids)
        assignments: dict[ItemId, tuple[EvidenceAssignment, ...]] = _by_item(
            evidence.assignments, lambda a: (a.at, a.change_id), ids)
        self.changes_of, self.comments_of, self.assignments_of = changes, comments, assignments
        """Every status change, comment and assignee change by item, in time order, as
        recorded (``as_of`` aside): the history's sweep replays them."""
        none: list[Any] = []  # shared by every item without records: never mutated

        self.items: dict[ItemId, ItemState] = {}
        self.selections = evidence.selections
        self._selected: dict[tuple[str, str], tuple[frozenset[ItemId], frozenset[ItemId]]] = {}
        self.measures: dict[str, list[MeasureValue]] = defaultdict(list)
        """Each measure's values (by its plan reference), as stored: all of them."""
        for value in evidence.measures:
            self.measures[value.measure].append(value)
        self._by_source: dict[str, list[ItemId]] = defaultdict(list)
        self._by_parent: dict[tuple[str, str], list[ItemId]] = defaultdict(list)
        self._by_label: dict[tuple[str, str], list[ItemId]] = defaultdict(list)
        self._by_container: dict[tuple[str, str], list[ItemId]] = defaultdict(list)
        self.activity: dict[ItemId, datetime] = {}
        """The latest status change or comment of each account, up to ``as_of``."""
        self.person_of: dict[ItemId, str] = self._match_people(evidence)
        self.open_holder: dict[ItemId, str] = {}
        """Open items at ``as_of`` whose assignee is a person of the plan: item -> handle."""
        self.flagged: list[ItemId] = []
        person_of, open_holder, activity = self.person_of, self.open_holder, self.activity
        sources = plan.sources
        self._assigned: set[ItemId] = set()
        """Accounts assigned to an item (for :meth:`unknown_accounts`)."""
        self._person_activity: dict[str, datetime] | None = None
        assigned = self._assigned
        latest: dict[str, dict[str, datetime]] = {}
        for item in evidence.items:
            source = item.source
            if source not in sources or item.created > as_of:
                continue
            iid = (source, item.key)
            iid = ids.get(iid, iid)
            held = _assignee_at(item, assignments[iid], as_of) if iid in assignments else (
                item.assignee)
            state = _state(iid, item, changes.get(iid, none), comments.get(iid, none), as_of,
                           held)
            self.items[iid] = state
            self._by_source[source].append(iid)
            if item.parent:
                self._by_parent[(source, item.parent)].append(iid)
            for label in item.labels:
                self._by_label[(source, label)].append(iid)
            if item.container:
                self._by_container[(source, item.container)].append(iid)
            if held is not None:
                if held:
                    assigned.add((source, held))
                if not state.done:
                    holder = person_of.get((source, held))
                    if holder is not None:
                        open_holder[iid] = holder
            if item.flags:
                self.flagged.append(iid)
            # The latest status change or comment of each account (inlined: per item; by
            # author within the source, so no key is built per event).
            acts = latest.get(source)
            if acts is None:
                acts = latest[source] = {}
            for events in (state.changes, state.comments):
                for event in events:
                    author = event.author
                    if author is not None:
                        known = acts.get(author)
                        if known is None or event.at > known:
                            acts[author] = event.at
        for source, acts in latest.items():
            for author, at in acts.items():
                activity[(source, author)] = at

        self.due_changes: list[DueChange] = sorted(
            (c for c in (*evidence.due_changes,
                         *tracker_due_changes(plan, evidence.tracker_dues))
             if c.plan == plan.name and c.at <= as_of),
            key=lambda c: (c.milestone, c.at, c.where))
        """The plan's slip log up to ``as_of``, by milestone, oldest first."""
        self.declarations: dict[ItemId, list[Declaration]] = defaultdict(list)
        """Statuses declared in trackers up to ``as_of``, by (source, subject), oldest
        first: a Jira epic's key, a Linear project's name."""
        for declared in sorted((d for d in evidence.declarations if d.at <= as_of),
                               key=lambda d: (d.at, d.declaration_id)):
            self.declarations[(declared.source, declared.subject)].append(declared)
        self.display_names: dict[ItemId, str | None] = {
            (a.source, a.account_id): a.display_name for a in evidence.accounts
        }

    # -- people --------------------------------------------------------------------------

    def _match_people(self, evidence: Evidence) -> dict[ItemId, str]:
        """(source, account id) -> person handle, from ``accounts`` and ``email``."""
        kinds: dict[str, list[str]] = defaultdict(list)
        for name, source in self.plan.sources.items():
            kinds[source.kind].append(name)
        matched: dict[ItemId, str] = {}
        by_email = {
            person.email.lower(): handle
            for handle, person in self.plan.people.items()
            if person.email
        }
        for account in evidence.accounts:
            if account.email and account.email.lower() in by_email:
                matched[(account.source, account.account_id)] = by_email[account.email.lower()]
        for handle, person in self.plan.people.items():
            for where, account_id in person.accounts.items():
                # A source's own name wins over its kind.
                targets = [where] if where in self.plan.sources else kinds.get(where, [])
                for source_name in targets:
                    matched[(source_name, account_id)] = handle
        return matched

    def person(self, source: str, account: str | None) -> str | None:
        if account is None:
            return None
        return self.person_of.get((source, account))

    def last_activity(self, handle: str) -> datetime | None:
        """The person's latest status change or comment on any of their accounts."""
        if self._person_activity is None:
            # Once per judgement: asked for every owner of every goal and milestone.
            latest: dict[str, datetime] = {}
            for account, at in self.activity.items():
                person = self.person_of.get(account)
                if person is not None and (person not in latest or at > latest[person]):
                    latest[person] = at
            self._person_activity = latest
        return self._person_activity.get(handle)

    def unknown_accounts(self) -> list[ItemId]:
        """Accounts seen acting or assigned in the evidence that match no person."""
        seen: set[ItemId] = set(self.activity) | self._assigned
        return sorted(a for a in seen if a not in self.person_of)

    # -- selection -----------------------------------------------------------------------

    def select(self, selector: Selector) -> tuple[frozenset[ItemId], frozenset[ItemId]]:
        """(counted items, context items) chosen by one selector.

        Criteria in one selector are ANDed. An epic selected by ``epic:`` is context: its
        comments count as feedback, it does not count in progress. Each selector is
        resolved once per index: the judgement, the history's first moment and the
        sweep ask for the same ones.
        """
        memo = (selector.source, selector.key())
        found = self._selected.get(memo)
        if found is None:
            counted, context = self._select(selector)
            found = self._selected[memo] = (frozenset(counted), frozenset(context))
        return found

    def _select(self, selector: Selector) -> tuple[set[ItemId], set[ItemId]]:
        source = selector.source
        criteria = selector.criteria()
        if not criteria:
            return set(), set()
        candidates: set[ItemId] | None = None
        context: set[ItemId] = set()

        def narrow(found: Iterable[ItemId]) -> None:
            nonlocal candidates
            chosen = set(found)
            candidates = chosen if candidates is None else candidates & chosen

        for name, value in criteria.items():
            if name in ("epic", "parent"):
                # An Azure DevOps parent is named by its id, its key is ``source#id``.
                parent = str(value)
                if name == "parent" and parent.isdigit():
                    parent = f"{source}#{parent}"
                narrow(self._by_parent.get((source, parent), ()))
                if (source, parent) in self.items:
                    context.add((source, parent))
            elif name in ("area_path", "iteration_path"):
                narrow(i for i in self._by_source.get(source, ())
                       if _under(self.items[i].item.fields.get(name), str(value)))
            elif name == "tags":
                narrow(i for tag in value for i in self._by_label.get((source, str(tag)), ()))
            elif name == "keys":
                narrow((source, str(k)) for k in value if (source, str(k)) in self.items)
            elif name == "labels":
                narrow(i for label in value for i in self._by_label.get((source, str(label)), ()))
            elif name in ("milestone", "version", "project"):
                narrow(self._by_container.get((source, str(value)), ()))
            elif name in ("jql", "query", "wiql"):
                keys = self.selections.get((source, selector.key()), frozenset())
                narrow((source, k) for k in keys if (source, k) in self.items)
            elif name == "tracker":
                narrow(i for i in self._by_source.get(source, ())
                       if self.items[i].item.item_type == str(value))
            else:
                narrow(i for i in self._by_source.get(source, ())
                       if _column(self.items[i].item, name) == str(value))
        counted = candidates or set()
        return counted - context, context


    def resolved(self, selector: Selector) -> bool:
        """Whether ``selector`` choosing nothing is news: its source has synced items, and
        a tracker-resolved selector (``jql``, ``query``) was resolved by a sync."""
        if not self._by_source.get(selector.source):
            return False
        criteria = selector.criteria()
        if ("jql" in criteria or "query" in criteria) and (
                selector.source, selector.key()) not in self.selections:
            return False
        return bool(criteria)

    def nearest(self, selector: Selector) -> str | None:
        """What the author of a selector that chose nothing most likely meant: a value
        differing only in case, the same key in another source, or a close spelling."""
        source = selector.source
        for name, value in selector.criteria().items():
            values = [str(v) for v in value] if isinstance(value, list) else [str(value)]
            if name == "epic":
                known = {parent for (where, parent) in self._by_parent if where == source}
                others = {f"{parent} in source '{where}'" for (where, parent) in self._by_parent
                          if where != source and parent.casefold() == values[0].casefold()}
                number = values[0].rpartition("-")[2]
                renamed = sorted(k for k in known if values[0] not in known
                                 and "-" in values[0] and k.rpartition("-")[2] == number)
                found = (_closest(values[0], known, spelling=False) or min(others, default=None)
                         or (renamed[0] if len(renamed) == 1 else None))
            elif name == "keys":
                known = {key for (where, key) in self.items if where == source}
                found = next((hit for v in values if (source, v) not in self.items
                              and (hit := _closest(v, known, spelling=False))), None)
            elif name == "labels":
                known = {label for (where, label) in self._by_label if where == source}
                found = next((hit for v in values if (hit := _closest(v, known))), None)
            elif name in ("milestone", "version", "project"):
                known = {c for (where, c) in self._by_container if where == source}
                found = _closest(values[0], known)
            elif name in ("jql", "query", "tracker"):
                found = None
            else:
                known = {v for i in self._by_source.get(source, ())
                         if (v := _column(self.items[i].item, name)) is not None}
                found = _closest(values[0], known)
            if found is not None:
                return f"{name}: {found}" if not found.endswith("'") else found
        return None


def _closest(value: str, known: set[str], *, spelling: bool = True) -> str | None:
    """The known value equal to ``value`` but for case, else (``spelling``: not for keys,
    where SHOP-1 is no nearer SHOP-99 than any other) the closest spelling."""
    if value in known:
        return None
    folded = value.casefold()
    same = sorted(k for k in known if k.casefold() == folded)
    if same or not spelling:
        return same[0] if same else None
    close = difflib.get_close_matches(folded, {k.casefold(): k for k in known}, n=1, cutoff=0.85)
    if not close:
        return None
    return next(k for k in sorted(known) if k.casefold() == close[0])


def _under(path: str | None, wanted: str) -> bool:
    """An Azure DevOps area or iteration path is ``wanted`` or below it (WIQL's UNDER)."""
    if path is None:
        return False
    path, wanted = path.casefold(), wanted.casefold().rstrip("\\")
    return path == wanted or path.startswith(wanted + "\\")


def _column(item: EvidenceItem, name: str) -> str | None:
    """A CSV-style column of an item: its extra fields first, then its own attributes."""
    if name in item.fields:
        return item.fields[name]
    aliases = {"type": "item_type", "category": "status_category"}
    name = aliases.get(name, name)
    # Only the item's own fields: a tuple's methods (``count``, ``index``) are no columns.
    value = getattr(item, name) if name in item._fields else None
    if value is None or isinstance(value, (tuple, Mapping)):
        return None
    return str(value)
