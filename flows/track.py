"""The Prefect flows: track a plan (sync every source concurrently, judge, publish), sync
one source, and publish the weekly report.

Tasks are per source and per step, never per item: each task run costs the Prefect server
real work. Tasks that touch trackers or the database retry, and never reuse cached
results (``NO_CACHE``): the same inputs mean "look again", not "nothing changed".
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, tags
from prefect.assets import Asset, AssetProperties, materialize
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from stratmap.connectors.base import FatalSourceError
from stratmap.flows import redact
from stratmap.flows.pipeline import sync_plan_source
from stratmap.judgement import judge
from stratmap.models.history import record_run
from stratmap.models.plan import Plan
from stratmap.models.planfile import load_plan
from stratmap.models.records import utcnow
from stratmap.models.report import Report
from stratmap.models.store import Store, database_url, load_marks, redact_url, save_marks
from stratmap.publish.changes import diff, due_alerts, mark_delivered
from stratmap.publish.prefect_ui import deliver, emit_changes, publish_artifacts, report_key, slug


class SyncFailed(RuntimeError):
    """Some sources could not be synced; the plan was still judged on what is stored."""


def _retry_unless_fatal(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry transient failures; a fatal one (bad token, missing file) fails at once."""
    try:
        state.result()
    except FatalSourceError:
        return False
    except Exception:
        return True
    return True


def _run_name() -> str:
    """``track-<plan>-<date>``, readable in the UI's run list."""
    path = str(flow_run.parameters.get("plan_path", "plan"))
    try:
        name = slug(load_plan(path).name)
    except Exception:
        name = slug(Path(path).stem)
    return f"track-{name}-{utcnow():%Y-%m-%d-%H%M}"


def _asset(plan: Plan, name: str, description: str) -> Asset:
    return Asset(key=f"stratmap://{slug(plan.name)}/{name}",
                 properties=AssetProperties(name=f"{plan.name}: {name}",
                                            description=description, owners=[plan.leader]))


def _sync(plan_path: str, source: str, db: str | None, started: datetime) -> dict[str, Any]:
    logger = get_run_logger()
    plan = load_plan(plan_path)
    redact.install()
    with Store(db) as store:
        result = sync_plan_source(
            plan, source, store, plan_dir=Path(plan_path).parent, started=started,
            on_page=lambda page: logger.debug("%s: %d items", source, len(page.items)))
    logger.info("synced %s: %d items in %d pages, %d requests, %.1fs (watermark %s)",
                source, result.items, result.pages, result.requests, result.seconds,
                result.watermark)
    return {"source": source, "items": result.items, "pages": result.pages,
            "requests": result.requests, "removed": result.removed}


def _judge(plan_path: str, db: str | None, as_of: datetime) -> Report:
    """Judge from the store and record the run in the progress history."""
    plan = load_plan(plan_path)
    with Store(db) as store:
        evidence = store.evidence(plan.sources)
        report = judge(plan, evidence, as_of=as_of)
        record_run(store, plan, report, evidence=evidence)
    return report


def _write_html(plan: Plan, store: Store, report: Report, html_path: str) -> str:
    """Write the HTML report; its address for the link artifact."""
    from stratmap.publish.html import render_from_store

    target = Path(html_path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render_from_store(plan, store, report), encoding="utf-8")
    return target.as_uri()


def _publish(plan_path: str, db: str | None, report: Report, notify: bool,
             html_path: str | None = None) -> dict[str, Any]:
    """Artifacts, events for what changed since the last run, and the due alerts."""
    logger = get_run_logger()
    plan = load_plan(plan_path)
    now = utcnow()
    with Store(db) as store:
        previous = load_marks(store, slug(plan.name))
        changes, marks, subjects = diff(previous, report, now=now)
        html_url = _write_html(plan, store, report, html_path) if html_path else None
        publish_artifacts(plan, report, html_url=html_url)
        events = emit_changes(plan, report, changes)
        delivered: set[str] = set()
        failures: list[str] = []
        if notify and plan.alerts:
            alerts = due_alerts(plan, marks, subjects, now=now)
            delivered, failures = deliver(plan, alerts)
            marks = mark_delivered(marks, delivered, now=now)
        save_marks(store, slug(plan.name), marks)
    for failure in failures:
        logger.error("alert not delivered (it stays due for the next run): %s", failure)
    logger.info("published %s: %d changes, %d events, %d alerts delivered",
                report_key(plan), len(changes), len(events), len(delivered))
    return {"changes": len(changes), "events": events, "alerts_delivered": len(delivered),
            "alert_failures": failures}


def sync_task(plan: Plan, source: str) -> Any:
    """The sync task of one source, materializing that source's items as an asset."""
    return materialize(
        _asset(plan, f"items/{source}", f"Items of source '{source}', synced incrementally"),
        name=f"sync-{source}", retries=3, retry_delay_seconds=[5, 30, 120],
        retry_condition_fn=_retry_unless_fatal, cache_policy=NO_CACHE,
        tags=[f"source:{source}"],
    )(_sync)


@flow(name="track-plan", flow_run_name=_run_name, log_prints=False)
def track_plan(plan_path: str, db: str | None = None, as_of: datetime | None = None,
               offline: bool = False, notify: bool = True,
               html_path: str | None = None) -> dict[str, Any]:
    """Sync every source of the plan concurrently, judge the plan, publish what changed.

    ``html_path``: also write the HTML report there, linked from a link artifact.
    """
    logger = get_run_logger()
    redact.install()
    plan = load_plan(plan_path)
    logger.info("tracking %s (store %s)", plan.name, redact_url(database_url(db)))
    started = utcnow()
    sources: list[Asset | str] = [_asset(plan, f"items/{s}", f"Items of source '{s}'")
                                  for s in plan.sources]
    judgement = _asset(plan, "judgement", "Statuses, progress and findings of the plan")
    report_asset = _asset(plan, "report", "The published report (Prefect artifact)")
    failed: dict[str, str] = {}
    summary: dict[str, Any] = {"plan": plan.name, "sources": {}}
    with tags(f"plan:{slug(plan.name)}"):
        if not offline:
            futures = {name: sync_task(plan, name).submit(plan_path, name, db, started)
                       for name in plan.sources}
            for name, future in futures.items():
                try:
                    summary["sources"][name] = future.result()
                except Exception as error:
                    failed[name] = str(error)
                    logger.error("sync of %s failed: %s", name, error)
        judge = materialize(judgement, asset_deps=sources, name="judge-plan", retries=2,
                            retry_delay_seconds=10, cache_policy=NO_CACHE)(_judge)
        report = judge(plan_path, db, as_of or utcnow())
        publish = materialize(report_asset, asset_deps=[judgement], name="publish-report",
                              retries=1, cache_policy=NO_CACHE)(_publish)
        summary["published"] = publish(plan_path, db, report, notify, html_path)
    summary.update(status=report.status.value, progress=report.progress,
                   findings=len(report.findings))
    if failed:
        raise SyncFailed("sources not synced: " + "; ".join(f"{k}: {v}" for k, v in
                                                           sorted(failed.items())))
    return summary


@flow(name="sync-source", log_prints=False)
def sync_source_flow(plan_path: str, source: str, db: str | None = None) -> dict[str, Any]:
    """Sync one source of the plan (for a schedule of its own)."""
    redact.install()
    plan = load_plan(plan_path)
    return dict(sync_task(plan, source)(plan_path, source, db, utcnow()))


@flow(name="report-plan", log_prints=False)
def report_plan(plan_path: str, db: str | None = None,
                html_path: str | None = None) -> dict[str, Any]:
    """Judge from the store and publish the report, without syncing (the weekly report)."""
    return dict(track_plan(plan_path, db=db, offline=True, notify=True, html_path=html_path))


@flow(name="push-plan", log_prints=False)
def push_plan_flow(plan_path: str, apply: bool = False,
                   sources: list[str] | None = None) -> dict[str, Any]:
    """The trackers' containers against the plan's due dates and owners (``stratmap push``):
    a table artifact of the differences; with ``apply``, the plan's values are written."""
    from prefect.artifacts import create_table_artifact

    from stratmap.flows.push import push_plan

    logger = get_run_logger()
    plan = load_plan(Path(plan_path))
    results = push_plan(plan, plan_dir=Path(plan_path).parent, apply=apply, sources=sources)
    rows = [{"source": r.source, "container": d.container, "field": d.field,
             "tracker": d.tracker or "", "plan": d.plan, "milestone": d.milestone,
             "written": d in r.applied}
            for r in results for d in r.check.differences]
    notes = [f"{r.source}: {note}" for r in results for note in r.check.missing + r.conflicts]
    for note in notes:
        logger.warning(note)
    create_table_artifact(
        key=f"stratmap-{slug(plan.name)}-push", table=rows or [{"source": "", "container": "",
                                                               "field": "", "tracker": "",
                                                               "plan": "", "milestone": "",
                                                               "written": False}],
        description=(f"{plan.name}: {len(rows)} difference(s) between the trackers and the "
                     f"plan; {'written' if apply else 'nothing written (apply=false)'}"))
    logger.info("%d difference(s), %d written", len(rows), sum(1 for r in rows if r["written"]))
    return {"differences": len(rows), "written": sum(1 for r in rows if r["written"]),
            "notes": notes}
