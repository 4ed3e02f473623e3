"""Deployments of a plan: when its flows run, from the plan's ``schedule:`` section.

``stratmap serve PLAN`` serves these from one long-running process; ``deployments/
prefect.yaml`` declares the same for a work pool and a process worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect.schedules import Cron
from prefect.schedules import Schedule as Schedule_

from stratmap.models.plan import Plan, Schedule
from stratmap.publish.prefect_ui import slug


def schedules_for(plan: Plan) -> dict[str, Schedule_]:
    """The sync and report schedules, as crons in the plan's time zone."""
    schedule = plan.schedule or Schedule()
    return {
        "sync": Cron(schedule.sync, timezone=plan.timezone),
        "report": Cron(schedule.report, timezone=plan.timezone),
    }


def deployments_for(plan: Plan, *, plan_path: str | Path, db: str | None = None) -> list[Any]:
    """``track-<plan>`` on the sync schedule, ``report-<plan>`` on the report schedule, and
    ``push-<plan>`` run on demand (``apply`` false unless the run sets it)."""
    from stratmap.flows.track import push_plan_flow, report_plan, track_plan

    name = slug(plan.name)
    path = str(Path(plan_path).resolve())
    schedules = schedules_for(plan)
    tags = ["stratmap", f"plan:{name}"]
    return [
        track_plan.to_deployment(
            name=f"track-{name}", schedules=[schedules["sync"]], tags=tags,
            parameters={"plan_path": path, "db": db},
            description=f"Sync the trackers of {plan.name}, judge it, publish what changed.",
        ),
        report_plan.to_deployment(
            name=f"report-{name}", schedules=[schedules["report"]], tags=tags,
            parameters={"plan_path": path, "db": db},
            description=f"The weekly report of {plan.name}.",
        ),
        push_plan_flow.to_deployment(
            name=f"push-{name}", tags=tags,
            parameters={"plan_path": path, "apply": False},
            description=f"The plan's due dates and owners against the trackers of {plan.name}; "
                        "run with apply=true to write them.",
        ),
    ]
