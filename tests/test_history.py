"""Progress history: snapshots per run, the first run's backfill, and the schema behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from stratmap.flows.cli import main
from stratmap.judgement import judge
from stratmap.models.history import (
    PLAN,
    history,
    load,
    record_run,
    snapshots_of,
    week_ends,
)
from stratmap.models.planfile import load_plan
from stratmap.models.store import Store
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
    # And the run itself is stored as a run, with its findings counted by kind.
    whole = [s for s in load(store, plan.name, entity=PLAN) if s.as_of == AS_OF]
    assert [(s.origin, s.findings) for s in whole] == [("run", len(report.findings))]
    assert sum(whole[0].finding_kinds.values()) == len(report.findings)


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
