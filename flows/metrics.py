"""The plan's progress metrics as OpenMetrics text (``stratmap metrics PLAN``), from the store.

Read from the last run's snapshots (``origin = 'run'``) and the measures' latest values, so
a scrape or a push publishes what the last run judged, without judging again. Labels are
low-cardinality on purpose: plan, goal, milestone, measure, status and kind; never an item
key or a person's account.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from stratmap.models.history import PLAN
from stratmap.models.plan import Plan
from stratmap.models.report import Status
from stratmap.models.store import Store, load_measure_values, load_snapshots

STATUSES = [status.value for status in Status]


class PlanCollector(Collector):
    """A collector of one plan's metrics from the store, read at each collection."""

    def __init__(self, plan: Plan, store: Store) -> None:
        self.plan = plan
        self.store = store

    def collect(self) -> Iterator[Metric]:
        plan = self.plan
        name = plan.name
        runs = [s for s in load_snapshots(self.store, name) if s.origin == "run"]
        latest = max((s.as_of for s in runs), default=None)
        last = {s.entity: s for s in runs if s.as_of == latest}
        run_time = GaugeMetricFamily("stratmap_last_run_timestamp_seconds",
                                     "When the last run judged the plan (Unix seconds)",
                                     labels=["plan"])
        progress = GaugeMetricFamily("stratmap_plan_progress", "The plan's progress (0-1)",
                                     labels=["plan"])
        goal_progress = GaugeMetricFamily("stratmap_goal_progress", "A goal's progress (0-1)",
                                          labels=["plan", "goal"])
        goal_status = GaugeMetricFamily(
            "stratmap_goal_status", "1 for a goal's current status, 0 for the others",
            labels=["plan", "goal", "status"])
        milestone_progress = GaugeMetricFamily(
            "stratmap_milestone_progress", "A milestone's progress (0-1)",
            labels=["plan", "goal", "milestone"])
        milestone_status = GaugeMetricFamily(
            "stratmap_milestone_status", "1 for a milestone's current status, 0 for the others",
            labels=["plan", "goal", "milestone", "status"])
        findings = GaugeMetricFamily(
            "stratmap_findings", "Findings of the last run by goal and kind",
            labels=["plan", "goal", "kind"])
        if latest is not None:
            run_time.add_metric([name], latest.timestamp())
        if PLAN in last:
            progress.add_metric([name], last[PLAN].progress)
        for goal in plan.goals:
            snap = last.get(goal.id)
            if snap is not None:
                goal_progress.add_metric([name, goal.id], snap.progress)
                for status in STATUSES:
                    goal_status.add_metric([name, goal.id, status],
                                           float(snap.status.value == status))
                for kind, count in sorted(snap.finding_kinds.items()):
                    findings.add_metric([name, goal.id, kind], float(count))
            for milestone in goal.milestones:
                ref = f"{goal.id}.{milestone.id}"
                snap = last.get(ref)
                if snap is None:
                    continue
                milestone_progress.add_metric([name, goal.id, ref], snap.progress)
                for status in STATUSES:
                    milestone_status.add_metric([name, goal.id, ref, status],
                                                float(snap.status.value == status))
        yield from (run_time, progress, goal_progress, goal_status, milestone_progress,
                    milestone_status, findings)
        yield from self._measures()

    def _measures(self) -> Iterator[Metric]:
        labels = ["plan", "goal", "milestone", "measure"]
        value = GaugeMetricFamily("stratmap_measure_value", "A measure's latest value",
                                  labels=labels)
        at = GaugeMetricFamily("stratmap_measure_timestamp_seconds",
                               "When a measure's latest value is from (Unix seconds)",
                               labels=labels)
        target = GaugeMetricFamily("stratmap_measure_target", "A measure's target value",
                                   labels=labels)
        baseline = GaugeMetricFamily("stratmap_measure_baseline", "A measure's baseline value",
                                     labels=labels)
        refs = self.plan.measure_ids()
        latest: dict[str, Any] = {}
        if refs:
            for stored in load_measure_values(self.store, self.plan.name):
                latest[stored.measure] = stored  # by measure then time: the last wins
        for ref, (goal, milestone, measure) in refs.items():
            where = [self.plan.name, goal.id,
                     f"{goal.id}.{milestone.id}" if milestone else "", ref]
            target.add_metric(where, measure.target.value)
            baseline.add_metric(where, measure.baseline.value)
            if ref in latest:
                value.add_metric(where, latest[ref].value)
                at.add_metric(where, latest[ref].at.timestamp())
        yield from (value, at, target, baseline)


def registry_of(plan: Plan, store: Store) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(PlanCollector(plan, store))
    return registry


def openmetrics_text(plan: Plan, store: Store) -> str:
    """The plan's metrics as OpenMetrics text (ending in ``# EOF``)."""
    text: bytes = generate_latest(registry_of(plan, store))  # type: ignore[no-untyped-call]
    return text.decode("utf-8")


def push(plan: Plan, store: Store, gateway: str, *, job: str = "stratmap") -> None:
    """Push the plan's metrics to a Prometheus Pushgateway, grouped by plan (replacing the
    plan's previous push)."""
    from prometheus_client.exposition import push_to_gateway

    push_to_gateway(gateway, job=job, registry=registry_of(plan, store),
                    grouping_key={"plan": plan.name})
