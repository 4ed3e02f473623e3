"""The Prefect flows: track a plan (the one tracking run of :mod:`stratmap.flows.run`, its
steps as tasks), sync one source, publish the weekly report, push the plan's dates.

Tasks are per source and per step, never per item: each task run costs the Prefect server
real work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from prefect import Flow, get_run_logger, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run

from stratmap.connectors.base import FatalSourceError, SourceError
from stratmap.flows import redact
from stratmap.flows.pipeline import SyncResult
from stratmap.flows.run import Publisher, Steps, Tracked, sync_one, track
from stratmap.models.plan import Plan
from stratmap.models.planfile import load_plan
from stratmap.models.records import utcnow
from stratmap.models.report import Report
from stratmap.models.store import Store, database_url, load_marks, redact_url, save_marks
from stratmap.publish.changes import diff, due_alerts, mark_delivered, stale_refs
from stratmap.publish.prefect_ui import (
    deliver,
    emit_changes,
    local_time,
    publish_artifacts,
    report_key,
    slug,
)

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")


class SecretParameter(ValueError):
    """A flow parameter holds a password: Prefect would store it in clear with the run."""


def refuse_secret_parameters(flow_name: str, parameters: dict[str, Any]) -> None:
    """Raise :class:`SecretParameter` if a parameter is a URL with a password in it.

    Prefect stores a flow run's parameters in its database and shows them in the UI and the
    API, so the store URL comes from the worker's environment (``STRATMAP_DB``, or
    ``PGPASSWORD`` beside a URL without one) or a reference (``env:VAR``, ``block:NAME``).
    """
    for name, value in parameters.items():
        if not isinstance(value, str) or "://" not in value:
            continue
        try:
            parts = urlsplit(value.strip())
            password = parts.password
        except ValueError:
            continue
        if password:
            user = f"{parts.username}:" if parts.username else ":"
            shown = f"{parts.scheme}://{user}***@{parts.netloc.rpartition('@')[2]}{parts.path}"
            raise SecretParameter(
                f"the parameter {name!r} of the flow {flow_name!r} holds a password "
                f"({shown}); "
                "Prefect would store it in clear with the flow run. Set STRATMAP_DB in the "
                "environment of the worker (or PGPASSWORD beside a URL without a password), "
                "or pass db='env:VARIABLE' or db='block:NAME' (a Secret block holding the URL)")


class _NoSecretsFlow(Flow[P, R]):
    """A flow whose parameters are checked before Prefect records them: Prefect serializes
    a run's parameters for the API before it validates them, so a refusal in the flow's
    body would come after the password was stored."""

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        refuse_secret_parameters(self.name, parameters)
        return super().serialize_parameters(parameters)


def stratmap_flow(**options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]:
    """``@flow(**options)`` that refuses a parameter holding a password."""

    def wrap(fn: Callable[P, R]) -> Flow[P, R]:
        return _NoSecretsFlow(fn=fn, **options)

    return wrap


def store_url(db: str | None) -> str | None:
    """The store's URL from the ``db`` parameter or ``STRATMAP_DB``: a URL, ``env:VAR`` (the
    URL is in that environment variable) or ``block:NAME`` (a Secret block holding it).
    The URL's password is masked in every log line from here on."""
    from stratmap.flows.secrets import resolve_secret

    reference = db or os.environ.get("STRATMAP_DB")
    if reference is None or not reference.startswith(("env:", "block:")):
        url = reference
    else:
        url = resolve_secret("store", reference)
    if url and (password := _password(url)):
        redact.register(password)
    return db if url is None else url


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        password = make_url(url).password
    except (ArgumentError, ValueError):
        return None  # not a URL: Store() says so, with the URL's password hidden
    return str(password) if password else None


def ship_logs() -> None:
    """Send the ``stratmap.*`` loggers (connector retries, publishing errors) to the flow
    run's logs in the Prefect UI, as ``PREFECT_LOGGING_EXTRA_LOGGERS=stratmap`` would."""
    from prefect.logging.handlers import APILogHandler

    logger = logging.getLogger("stratmap")
    if not any(isinstance(handler, APILogHandler) for handler in logger.handlers):
        logger.addHandler(APILogHandler())
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)


class RunFailed(RuntimeError):
    """The run judged and published what it could, but some sources were not synced or some
    alerts were not delivered; ``tracked`` is what it did."""

    def __init__(self, tracked: Tracked) -> None:
        self.tracked = tracked
        problems = [f"source {k} not synced: {v}" for k, v in sorted(tracked.failed.items())]
        problems += [f"alert not delivered: {failure}"
                     for failure in tracked.published.get("alert_failures", [])]
        super().__init__("; ".join(problems))


SyncFailed = RunFailed  # the name before alerts could fail a run


def _retry_unless_fatal(task: Any, task_run: Any, state: State[Any]) -> bool:
    """Retry transient failures; a fatal one (bad token, missing file) fails at once."""
    try:
        state.result()
    except FatalSourceError:
        return False
    except Exception:
        return True
    return True


def _named(kind: str) -> Callable[[], str]:
    """``<kind>-<plan>-<date>-<time>`` in the plan's time zone, as the deployments are named
    (``track-<plan>``, ``report-<plan>``): readable and sortable in the UI's run list."""

    def name() -> str:
        path = str(flow_run.parameters.get("plan_path", "plan"))
        try:
            plan = load_plan(path)
            label, moment = slug(plan.name), local_time(utcnow(), plan.timezone)
        except Exception:
            label, moment = slug(Path(path).stem), utcnow()
        return f"{kind}-{label}-{moment:%Y-%m-%d-%H%M}"

    return name


_run_name = _named("track")
_report_name = _named("report")
_push_name = _named("push")


class TaskSteps(Steps):
    """The run's steps as Prefect tasks: one per source sync (concurrently), one per step.

    Tasks that touch trackers or the database retry, and never reuse cached results
    (``NO_CACHE``): the same inputs mean "look again", not "nothing changed".
    """

    judge_ahead = False  # the judgement is a task of its own, after the syncs

    def sync(self, sources: Sequence[str], step: Callable[..., SyncResult],
             *args: Any) -> dict[str, SyncResult | SourceError]:
        options: dict[str, Any] = {"retries": 3, "retry_delay_seconds": [5, 30, 120],
                                   "retry_condition_fn": _retry_unless_fatal,
                                   "cache_policy": NO_CACHE}

        # The arguments (the plan, the store URL) are bound here, not passed as task
        # parameters: Prefect would walk the plan's models and record the URL with the run.
        def sync(source: str) -> SyncResult:
            return step(source, *args)

        futures = {source: task(name=f"sync-{source}", tags=[f"source:{source}"],
                                **options)(sync).submit(source)
                   for source in sources}
        outcomes: dict[str, SyncResult | SourceError] = {}
        for source, future in futures.items():
            try:
                outcomes[source] = future.result()
            except SourceError as error:
                outcomes[source] = error
        return outcomes

    def run(self, name: str, step: Callable[..., T], *args: Any) -> T:
        # Publishing is not retried: a second attempt would send its events again.
        options: dict[str, Any] = {"retries": 2 if name == "judge-plan" else 0,
                                   "retry_delay_seconds": 10, "cache_policy": NO_CACHE}

        def bound() -> T:
            return step(*args)

        result: T = task(name=name, **options)(bound)()
        return result


def _write_html(plan: Plan, store: Store, report: Report,
                html_path: str | None) -> tuple[str, str | None]:
    """The HTML report, and where it was written (``html_path``), if anywhere."""
    from stratmap.flows.history import html_report

    page = html_report(plan, store, report)
    if not html_path:
        return page, None
    target = Path(html_path).expanduser().resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return page, target.as_uri()


def publisher(*, notify: bool, html_path: str | None) -> Publisher:
    """Artifacts, events for what changed since the last run, and the due alerts."""

    def publish(plan: Plan, db: str | None, report: Report) -> dict[str, Any]:
        logger = get_run_logger()
        now = utcnow()
        stale = stale_refs(plan, report)
        with Store(db) as store, store.exclusive(f"stratmap-marks:{slug(plan.name)}"):
            # Held from reading the marks to saving them: a concurrent run of the plan waits
            # here, then finds the marks this one saved, so each change is told once.
            previous = load_marks(store, slug(plan.name))
            changes, marks, subjects = diff(previous, report, now=now, stale=stale)
            html, html_url = _write_html(plan, store, report, html_path)
            publish_artifacts(plan, report, html=html, html_url=html_url)
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
        if stale is not None:
            logger.warning("stale sources (not synced this run): %s; what rests on them is "
                           "neither evented nor alerted until they sync",
                           ", ".join(s.source for s in report.stale_sources))
        logger.info("published %s: %d changes, %d events, %d alerts delivered",
                    report_key(plan), len(changes), len(events), len(delivered))
        return {"changes": len(changes), "events": events, "alerts_delivered": len(delivered),
                "alert_failures": failures}

    return publish


@stratmap_flow(name="track-plan", flow_run_name=_run_name, log_prints=False)
def track_plan(plan_path: str, db: str | None = None, as_of: datetime | None = None,
               offline: bool = False, notify: bool = True,
               html_path: str | None = None) -> dict[str, Any]:
    """Sync every source of the plan concurrently, judge the plan, publish what changed: the
    tracking run of :mod:`stratmap.flows.run`, its steps as tasks.

    ``db``: the store, as a URL without a password, ``env:VARIABLE`` or ``block:NAME``;
    unset, ``STRATMAP_DB``. ``html_path``: also write the HTML report there.
    """
    logger = get_run_logger()
    redact.install()
    ship_logs()
    db = store_url(db)
    plan = load_plan(plan_path)
    db = database_url(db, plan_path=plan_path)  # by default the store beside the plan
    logger.info("tracking %s (store %s)", plan.name, redact_url(db))
    with tags(f"plan:{slug(plan.name)}"):
        tracked = track(plan, plan_dir=Path(plan_path).parent, db=db, as_of=as_of,
                        offline=offline, steps=TaskSteps(),
                        publish=publisher(notify=notify, html_path=html_path))
    if tracked.failed or tracked.published.get("alert_failures"):
        raise RunFailed(tracked)
    report = tracked.report
    return {"plan": plan.name, "report": report,
            "sources": {name: {"items": r.items, "pages": r.pages, "requests": r.requests,
                               "removed": r.removed} for name, r in tracked.synced.items()},
            "published": tracked.published, "status": report.status.value,
            "progress": report.progress, "findings": len(report.findings)}


@stratmap_flow(name="sync-source", log_prints=False)
def sync_source_flow(plan_path: str, source: str, db: str | None = None) -> dict[str, Any]:
    """Sync one source of the plan (for a schedule of its own)."""
    redact.install()
    ship_logs()
    db = store_url(db)
    plan = load_plan(plan_path)
    db = database_url(db, plan_path=plan_path)
    result = TaskSteps().sync([source], sync_one, plan, Path(plan_path).parent, db, utcnow())
    if isinstance(outcome := result[source], SourceError):
        raise outcome
    return {"source": source, "items": outcome.items, "pages": outcome.pages,
            "requests": outcome.requests, "removed": outcome.removed}


@stratmap_flow(name="report-plan", flow_run_name=_report_name, log_prints=False)
def report_plan(plan_path: str, db: str | None = None,
                html_path: str | None = None) -> dict[str, Any]:
    """Judge from the store and publish the report, without syncing (the weekly report)."""
    return dict(track_plan(plan_path, db=db, offline=True, notify=True, html_path=html_path))


@stratmap_flow(name="push-plan", flow_run_name=_push_name, log_prints=False)
def push_plan_flow(plan_path: str, apply: bool = False,
                   sources: list[str] | None = None) -> dict[str, Any]:
    """The trackers' containers against the plan's due dates and owners (``stratmap push``):
    a table artifact of the differences; with ``apply``, the plan's values are written."""
    from prefect.artifacts import create_table_artifact

    from stratmap.flows.push import push_plan

    logger = get_run_logger()
    plan = load_plan(Path(plan_path))
    store = Store(database_url(store_url(None), plan_path=plan_path)) if apply else None
    try:
        results = push_plan(plan, plan_dir=Path(plan_path).parent, apply=apply,
                            sources=sources, store=store)
    finally:
        if store is not None:
            store.close()
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
