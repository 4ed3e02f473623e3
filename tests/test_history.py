"""Progress history: snapshots per run, the first run's backfill, and the schema behind it."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from stratmap.flows.cli import main
from stratmap.flows.history import history, record_run
from stratmap.judgement import judge
from stratmap.judgement.evidence import EvidenceIndex
from stratmap.judgement.history import reconstruct, week_ends
from stratmap.models.history import PLAN, Snapshot, snapshots_of
from stratmap.models.plan import Plan
from stratmap.models.planfile import load_plan
from stratmap.models.records import (
    AssigneeChange,
    Comment,
    Evidence,
    StatusCategory,
    StatusChange,
    WorkItem,
)
from stratmap.models.report import ORGANISATION_KINDS
from stratmap.models.store import Store
from stratmap.models.store import load_snapshots as load
from stratmap.models.tables import Base, SnapshotRow
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "northwind" / "plan.yaml"
AS_OF = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
WEEK = timedelta(days=7)


def synced(store: Store) -> None:
    assert main(["run", str(SAMPLE), "--db", store.url, "--as-of", "2026-08-01", "-q"]) == 0
    with store.transaction() as connection:  # that run's own history is not under test
        connection.execute(SnapshotRow.__table__.delete())


def rows(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(SnapshotRow)) or 0)


def test_the_schema_of_revision_0002_matches_the_table(store: Store) -> None:
    with store.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = [d for d in compare_metadata(context, Base.metadata)
                       if "snapshots" in repr(d)]
    assert differences == []


def test_the_first_run_backfills_every_past_week_as_the_engine_judges_it(store: Store) -> None:
    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    report = judge(plan, evidence, as_of=AS_OF)

    recorded = record_run(store, plan, report, evidence=evidence)

    weeks = week_ends(plan, evidence, until=AS_OF)
    assert recorded.backfilled_weeks == len(weeks) > 20  # the sample starts in September
    entities = 1 + len(plan.goals) + sum(len(g.milestones) for g in plan.goals)
    assert recorded.snapshots == rows(store) == entities * (len(weeks) + 1)
    for moment in weeks:  # each a Monday midnight in London, across both DST changes
        local = moment.astimezone(plan.tz)
        assert (local.weekday(), local.hour, local.minute) == (0, 0, 0)
    # A backfilled week is exactly what the engine says of that moment.
    week = weeks[len(weeks) // 2]
    stored = [s for s in load(store, plan.name) if s.as_of == week]
    expected = snapshots_of(judge(plan, evidence, as_of=week), origin="backfill")
    assert sorted(stored, key=lambda s: s.entity) == sorted(expected, key=lambda s: s.entity)
    # And the run itself is stored as a run, with its findings counted by kind (the item
    # rules' findings: the organisation's are not history).
    whole = [s for s in load(store, plan.name, entity=PLAN) if s.as_of == AS_OF]
    counted = [f for f in report.findings if f.kind not in ORGANISATION_KINDS]
    assert len(counted) < len(report.findings)  # the sample has organisation findings
    assert [(s.origin, s.findings) for s in whole] == [("run", len(counted))]
    assert sum(whole[0].finding_kinds.values()) == len(counted)


def test_history_shows_progress_over_time(store: Store) -> None:
    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    record_run(store, plan, judge(plan, evidence, as_of=AS_OF), evidence=evidence)
    warehouse = load(store, plan.name, entity="data.warehouse")
    assert warehouse[0].items_done == 0
    assert warehouse[-1].status.value == "done"
    assert warehouse[-1].points_done == warehouse[-1].points_total
    done = [s.items_done for s in warehouse]
    assert done == sorted(done) and len(set(done)) > 3  # it grew over the weeks


def test_later_runs_fill_only_the_weeks_no_snapshot_covers(store: Store) -> None:
    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    early = AS_OF - 3 * WEEK
    first = record_run(store, plan, judge(plan, evidence, as_of=early), evidence=evidence)
    again = record_run(store, plan, judge(plan, evidence, as_of=early), evidence=evidence)
    later = record_run(store, plan, judge(plan, evidence, as_of=AS_OF), evidence=evidence)

    assert first.backfilled_weeks > 0
    assert again.backfilled_weeks == 0  # the same moment again: nothing new, nothing doubled
    assert later.backfilled_weeks == 3  # the three Mondays between the two runs
    moments = {s.as_of for s in load(store, plan.name, entity=PLAN)}
    assert len(moments) == first.backfilled_weeks + 3 + 2
    assert rows(store) == len(moments) * (1 + 4 + 10)


def test_the_page_charts_the_same_history_from_what_it_reads_of_each_snapshot(
        store: Store) -> None:
    """The HTML report holds only what its charts read of each snapshot
    (``chart_history``, ``SnapshotPoint``: a fifth of the memory at 100,000 issues): stored
    weeks and reconstructed ones, the page byte for byte the one the whole snapshots give."""
    from stratmap.flows.history import chart_history
    from stratmap.models.history import SnapshotPoint
    from stratmap.publish.html import render

    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    record_run(store, plan, judge(plan, evidence, as_of=AS_OF - 3 * WEEK), evidence=evidence)
    report = judge(plan, evidence, as_of=AS_OF)  # three weeks no snapshot covers yet
    whole = history(store, plan, evidence, until=AS_OF)
    points = chart_history(store, plan, evidence, until=AS_OF)
    assert {s.origin for s in whole} == {"run", "backfill"}
    assert points == [SnapshotPoint.of(s) for s in whole]
    page = render(report, history=points, plan=plan)
    assert page == render(report, history=whole, plan=plan)
    assert page.count("<svg") > 10


def test_a_report_from_a_store_that_never_ran_reconstructs_without_writing(
        store: Store) -> None:
    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    series = history(store, plan, evidence, until=AS_OF)
    assert rows(store) == 0
    assert {s.origin for s in series} == {"backfill"}
    assert len({s.as_of for s in series}) == len(week_ends(plan, evidence, until=AS_OF))


def test_the_backfill_reaches_back_at_most_max_weeks(store: Store) -> None:
    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    all_weeks = week_ends(plan, evidence, until=AS_OF)
    assert week_ends(plan, evidence, until=AS_OF, max_weeks=4) == all_weeks[-4:]
    assert week_ends(plan, evidence, until=datetime(2020, 1, 1, tzinfo=UTC)) == []


def test_stratmap_run_records_history_and_backfills_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    args = ["run", str(SAMPLE), "--db", db, "-q"]
    assert main([*args, "--as-of", "2027-03-01T09:00Z"]) == 0
    with Store(db) as store:
        first = rows(store)
    assert main([*args, "--as-of", "2027-03-01T10:00Z", "--offline"]) == 0
    with Store(db) as store:
        assert rows(store) == first + 15  # one more snapshot per entity, no second backfill
        assert len(load(store, "Northwind growth plan 2027", entity="crm.migration")) > 20


@pytest.mark.parametrize("as_of", ["2026-09-01"])
def test_a_run_before_any_work_has_no_past_to_backfill(tmp_path: Path, as_of: str) -> None:
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", str(SAMPLE), "--db", db, "-q", "--as-of", as_of]) == 0
    with Store(db) as store:
        assert rows(store) == 15


# -- the sweep is the engine, week by week ------------------------------------------------


def _one_by_one(plan: Plan, evidence: Evidence, weeks: list[datetime]) -> list[Snapshot]:
    """What the sweep replaced: the plan judged from scratch at each week."""
    return [s for week in weeks
            for s in snapshots_of(judge(plan, evidence, as_of=week), origin="backfill")]


def test_the_sweep_judges_each_sample_week_as_the_engine_does(store: Store) -> None:
    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    weeks = week_ends(plan, evidence, until=AS_OF)
    assert len(weeks) > 20
    expected = _one_by_one(plan, evidence, weeks)
    assert reconstruct(plan, evidence, weeks) == expected
    index = EvidenceIndex(plan, evidence, AS_OF)
    assert reconstruct(plan, evidence, weeks, index=index) == expected


def _random_plan(rng: random.Random) -> tuple[Plan, Evidence]:
    """A plan and evidence drawn at random: items created before and during the weeks,
    reopened, resolved without a recorded change, done by their last update only, assigned
    and reassigned, commented by people and strangers; milestones by epic, label, keys
    and version, with every rule the engine has."""
    t0 = datetime(2026, 1, 5, tzinfo=UTC)
    day = timedelta(days=1)
    accounts = [f"acc{n}" for n in range(8)]
    people = {f"p{n}": {"name": f"P{n}", "senior": n < 2,
                        "accounts": {"jira": f"acc{n}"}} for n in range(5)}
    items: list[WorkItem] = []
    changes: list[StatusChange] = []
    comments: list[Comment] = []
    assignments: list[AssigneeChange] = []
    epics = [f"J-{n}" for n in range(1, 5)]
    flow = [StatusCategory.TODO, StatusCategory.IN_PROGRESS, StatusCategory.DONE]
    # Whole points are summed as they change; tenths in the engine's order each week.
    points = [None, 1.0, 3.0, 5.0] + ([0.1, 0.7] if rng.random() < 0.5 else [0.5])
    for n in range(1, rng.randint(20, 70)):
        key = f"J-{n}"
        created = t0 + rng.randint(-30, 150) * day + rng.randint(0, 86399) * timedelta(seconds=1)
        moment = created
        category = StatusCategory.TODO
        steps = rng.choice([0, 0, 1, 2, 3, 5])
        for k in range(steps):
            moment += rng.choice([timedelta(hours=3), 2 * day, 9 * day, 7 * day])
            if rng.random() < 0.1:  # recorded before the item's creation (clock skew)
                moment = created - day
            to = rng.choice(flow)
            changes.append(StatusChange(
                source="jira", item_key=key, change_id=f"{key}-{k}", at=moment,
                author=rng.choice([*accounts, None]), from_status=category.value,
                to_status=to.value, from_category=rng.choice([category, None]),
                to_category=to))
            category = to
        done_now = category is StatusCategory.DONE if steps else rng.random() < 0.4
        resolved = (moment + rng.choice([0, 3, 30]) * day
                    if done_now and rng.random() < 0.7 else None)
        updated = moment + rng.choice([0, 1, 40]) * day
        for k in range(rng.choice([0, 0, 1, 3])):
            at = created + rng.randint(-2, 120) * day
            comments.append(Comment(source="jira", item_key=key, comment_id=f"{key}-c{k}",
                                    at=at, author=rng.choice([*accounts, None]), body="note"))
        holder = rng.choice([*accounts, None])
        if rng.random() < 0.3:
            at = created + rng.randint(1, 90) * day
            assignments.append(AssigneeChange(
                source="jira", item_key=key, change_id=f"{key}-a", at=at,
                author=rng.choice(accounts), from_account=rng.choice([*accounts, None]),
                to_account=holder))
        items.append(WorkItem(
            source="jira", key=key, title=key, item_type=rng.choice(["Story", "Bug", "Epic"]),
            status="Done" if done_now else "Open",
            status_category=StatusCategory.DONE if done_now else rng.choice(flow[:2]),
            assignee=holder, created=created, updated=updated, resolved=resolved,
            parent=rng.choice([*epics, None]) if key not in epics else None,
            labels=tuple(rng.sample(["a", "b", "c"], rng.randint(0, 2))),
            container=rng.choice(["1.0", "2.0", None]),
            points=rng.choice(points)))
    comments.sort(key=lambda c: (c.item_key, c.at, c.comment_id))
    changes.sort(key=lambda c: (c.item_key, c.at, c.change_id))
    selectors = [{"source": "jira", "epic": rng.choice(epics)},
                 {"source": "jira", "labels": [rng.choice("abc")]},
                 {"source": "jira", "keys": [f"J-{rng.randint(1, 40)}" for _ in range(5)]},
                 {"source": "jira", "version": rng.choice(["1.0", "2.0"])},
                 # no item has it: an empty selector in every week
                 {"source": "jira", "labels": ["none-has-it"]}]
    goals = []
    for g in range(rng.randint(1, 3)):
        milestones = []
        for m in range(rng.randint(1, 4)):
            start = (t0 + rng.randint(-20, 100) * day).date()
            milestones.append({
                "id": f"m{m}", "title": f"M{m}", "owner": rng.choice([*people, None]),
                "start": start.isoformat() if rng.random() < 0.7 else None,
                "due": (start + rng.randint(10, 120) * day).isoformat()
                if rng.random() < 0.7 else None,
                "progress": rng.choice(["items", "points"]),
                "work": rng.sample(selectors, rng.randint(1, 2))})
        goals.append({"id": f"g{g}", "title": f"G{g}", "owner": rng.choice([*people, None]),
                      "single_owner_share": rng.choice([0.3, 0.5, None]),
                      "feedback": rng.choice([None, {"from": "seniors", "every": "10d"}]),
                      "milestones": milestones})
    plan = Plan.model_validate({
        "version": 1, "name": "Random", "leader": "p0", "people": people,
        "sources": {"jira": {"kind": "jira", "url": "https://jira.example",
                             "scope": "project = J", "token": "env:JIRA_API_TOKEN"}},
        "defaults": {"stall_after": "12d", "inactive_after": "20d",
                     "feedback": {"from": ["p2", "p3"], "every": "14d"},
                     "forecast_window": "21d"},
        "goals": goals,
    })
    evidence = Evidence(items=tuple(items), changes=tuple(changes), comments=tuple(comments),
                        accounts=(), assignments=tuple(assignments))
    return plan, evidence


@pytest.mark.parametrize("seed", range(25))
def test_the_sweep_judges_each_week_of_a_random_plan_as_the_engine_does(seed: int) -> None:
    plan, evidence = _random_plan(random.Random(seed))
    weeks = week_ends(plan, evidence, until=datetime(2026, 7, 1, tzinfo=UTC))
    # Also moments that are not Mondays, and one on an event's very instant.
    extra = [evidence.changes[0].at] if evidence.changes else []
    moments = sorted({*weeks, *extra, datetime(2026, 3, 3, 17, 5, tzinfo=UTC)})
    expected = _one_by_one(plan, evidence, moments)
    assert reconstruct(plan, evidence, moments) == expected
    # Selections taken from the run's own index (at a moment after every week) instead.
    index = EvidenceIndex(plan, evidence, max(moments))
    assert reconstruct(plan, evidence, moments, index=index) == expected


def test_the_sweep_never_makes_pydantic_build_a_default_list(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep builds a report per milestone and week with ``model_construct``; a field it
    leaves out makes pydantic build the default, and a ``default_factory`` costs an
    ``inspect.signature`` parse each time: with 200 milestones over 150 weeks that was 12 s and
    1 GB of a first run. Every such field is given."""
    from pydantic.fields import FieldInfo

    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    weeks = week_ends(plan, evidence, until=AS_OF)

    built = FieldInfo.get_default

    def refuse(self: FieldInfo, *args: object, **kwargs: object) -> object:
        assert self.default_factory is None, f"a default was built for {self!r}"
        return built(self, *args, **kwargs)

    monkeypatch.setattr(FieldInfo, "get_default", refuse)
    assert reconstruct(plan, evidence, weeks)


def test_a_backfill_is_written_in_whole_weeks_and_a_stopped_one_is_finished_next_run(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sweep's weeks are written as they come, several weeks per transaction: a run
    that stops half way leaves whole weeks only, and the next run sweeps just the rest,
    to the same history as one run without a stop."""
    import stratmap.flows.history as recording
    import stratmap.judgement.history as sweeping

    synced(store)
    plan = load_plan(SAMPLE)
    evidence = store.evidence(plan.sources)
    report = judge(plan, evidence, as_of=AS_OF)
    entities = 1 + len(plan.goals) + sum(len(g.milestones) for g in plan.goals)
    monkeypatch.setattr(recording, "SNAPSHOT_BATCH", 3 * entities)  # three weeks a batch
    whole_sweep = sweeping.sweep

    def stops_after_eight_weeks(*args: object, **kwargs: object) -> object:
        for number, week in enumerate(whole_sweep(*args, **kwargs)):  # type: ignore[arg-type]
            if number == 8:
                raise KeyboardInterrupt  # the process is stopped
            yield week

    monkeypatch.setattr(recording, "sweep", stops_after_eight_weeks)
    with pytest.raises(KeyboardInterrupt):
        record_run(store, plan, report, evidence=evidence)
    kept = load(store, plan.name)
    weeks = {s.as_of for s in kept}
    assert len(weeks) == 6 and len(kept) == 6 * entities  # two whole batches, no part week

    monkeypatch.setattr(recording, "sweep", whole_sweep)
    finished = record_run(store, plan, report, evidence=evidence)
    all_weeks = week_ends(plan, evidence, until=AS_OF)
    assert finished.backfilled_weeks == len(all_weeks) - 6
    resumed = [s.model_dump(exclude={"recorded_at"}) for s in load(store, plan.name)]

    with store.transaction() as connection:
        connection.execute(SnapshotRow.__table__.delete())
    record_run(store, plan, report, evidence=evidence)
    assert resumed == [s.model_dump(exclude={"recorded_at"}) for s in load(store, plan.name)]
