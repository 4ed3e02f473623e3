"""Deployments of a plan: when its flows run, from the plan's ``schedule:`` section.

``stratmap serve PLAN`` serves these from one long-running process; ``stratmap deployments
write PLAN DIR`` writes the same deployments as a ``prefect.yaml`` for a work pool and a
process worker. Both use module entrypoints (``stratmap.flows.track.track_plan``): a worker
needs stratmap installed, never a checkout of this repository.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from prefect.schedules import Cron
from prefect.schedules import Schedule as Schedule_
from prefect.types.entrypoint import EntrypointType

from stratmap.models.plan import Plan, Schedule
from stratmap.publish.prefect_ui import slug

SAMPLE_SLUG = "northwind-growth-plan-2027"
"""The plan the shipped example Automations are written for (examples/northwind)."""


def schedules_for(plan: Plan) -> dict[str, Schedule_]:
    """The sync and report schedules, as crons in the plan's time zone."""
    schedule = plan.schedule or Schedule()
    return {
        "sync": Cron(schedule.sync, timezone=plan.timezone),
        "report": Cron(schedule.report, timezone=plan.timezone),
    }


def deployments_for(plan: Plan, *, plan_path: str | Path, db: str | None = None) -> list[Any]:
    """``track-<plan>`` on the sync schedule, ``report-<plan>`` on the report schedule, and
    ``push-<plan>`` run on demand (``apply`` false unless the run sets it). ``plan_path`` is
    used as given: the path where the flows will read the plan."""
    from stratmap.flows.track import (
        push_plan_flow,
        refuse_secret_parameters,
        report_plan,
        track_plan,
    )

    # Deployment parameters are stored by the server and shown in the UI: no password there.
    refuse_secret_parameters("track-plan", {"db": db})
    name = slug(plan.name)
    path = str(plan_path)
    schedules = schedules_for(plan)
    tags = ["stratmap", f"plan:{name}"]
    common: dict[str, Any] = {"tags": tags, "entrypoint_type": EntrypointType.MODULE_PATH,
                              "concurrency_limit": 1}
    return [
        track_plan.to_deployment(
            name=f"track-{name}", schedules=[schedules["sync"]],
            parameters={"plan_path": path, "db": db},
            description=f"Sync the trackers of {plan.name}, judge it, publish what changed.",
            **common,
        ),
        report_plan.to_deployment(
            name=f"report-{name}", schedules=[schedules["report"]],
            parameters={"plan_path": path, "db": db},
            description=f"The weekly report of {plan.name}.",
            **common,
        ),
        push_plan_flow.to_deployment(
            name=f"push-{name}",
            parameters={"plan_path": path, "apply": False},
            description=f"The plan's due dates and owners against the trackers of {plan.name}; "
                        "run with apply=true to write them.",
            **common,
        ),
    ]


_HEADER = """\
# Prefect deployments of the stratmap plan {plan_name!r},
# for a work pool and a process worker. Written by `stratmap deployments write`; write it
# again after changing the plan's schedule: section (`stratmap serve PLAN` serves the same
# deployments without a work pool).
#
#   prefect work-pool create {pool} --type process
#   {deploy_env}prefect deploy --prefect-file {prefect_file} --all
#   STRATMAP_DB=sqlite:////srv/stratmap/stratmap.db prefect worker start --pool {pool}
#
# The worker needs stratmap installed (`pip install stratmap`): the entrypoints are modules of
# the package, so no checkout, no working directory and no STRATMAP_HOME. `plan_path` must
# exist on the worker.{plan_note}
# The store comes from the worker's environment (STRATMAP_DB, e.g.
# postgresql+psycopg://stratmap@db/stratmap with PGPASSWORD set there), never from this file:
# a flow parameter holding a password is refused, since Prefect stores parameters in clear.
# Crons are read in the plan's time zone ({timezone}).
"""


def prefect_yaml(plan: Plan, *, plan_path: str | Path, pool: str = "stratmap",
                 prefect_file: str = "prefect.yaml") -> str:
    """The plan's deployments (as :func:`deployments_for` builds them for ``serve``) as a
    ``prefect.yaml`` for ``prefect deploy``."""
    deployments = []
    for deployment in deployments_for(plan, plan_path=plan_path):
        entry: dict[str, Any] = {
            "name": deployment.name,
            "description": deployment.description,
            "entrypoint": deployment.entrypoint,
            "tags": list(deployment.tags),
            "parameters": {k: v for k, v in deployment.parameters.items() if k != "db"},
            "work_pool": {"name": pool},
            "concurrency_limit": deployment.concurrency_limit,
            "schedules": [{"cron": s.schedule.cron, "timezone": s.schedule.timezone}
                          for s in deployment.schedules],
        }
        deployments.append(entry)
    body = yaml.safe_dump({"name": "stratmap", "prefect-version": "3.4.0", "pull": [],
                           "deployments": deployments}, sort_keys=False, allow_unicode=True,
                          width=100)
    from_env = "$STRATMAP_PLAN" in str(plan_path)
    return _HEADER.format(
        plan_name=plan.name, pool=pool, prefect_file=prefect_file, timezone=plan.timezone,
        deploy_env="STRATMAP_PLAN=/srv/stratmap/plan.yaml " if from_env else "",
        plan_note=(" STRATMAP_PLAN is read by `prefect deploy`:\n# the plan's absolute "
                   "path on the worker." if from_env else ""),
    ) + "\n" + body


def write_deployments(plan: Plan, folder: Path, *, plan_path: str | Path,
                      pool: str = "stratmap") -> list[Path]:
    """Write ``prefect.yaml`` and the example Automations into ``folder``; return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "prefect.yaml"]
    written[0].write_text(prefect_yaml(plan, plan_path=plan_path, pool=pool,
                                       prefect_file=str(written[0])), encoding="utf-8")
    automations = resources.files("stratmap.deployments").joinpath("automations")
    (folder / "automations").mkdir(exist_ok=True)
    for example in sorted(automations.iterdir(), key=lambda p: p.name):
        if example.name.endswith(".yaml"):
            # The examples are written for the sample plan: they match its slug only.
            target = folder / "automations" / example.name
            target.write_text(example.read_text("utf-8").replace(SAMPLE_SLUG, slug(plan.name)),
                              encoding="utf-8")
            written.append(target)
    return written
