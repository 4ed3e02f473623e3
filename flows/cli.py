"""``stratmap``: the command line.

Prefect is imported only by the commands that need it (``serve``, or ``run`` with a
Prefect API configured), so ``validate`` and an offline ``run`` start in well under a second.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sys
import textwrap
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stratmap.flows.terminal import shown, visible

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2
EXIT_SOURCE = 3
EXIT_FINDINGS = 4
EXIT_NOTHING = 5
EXIT_BUG = 70
EXIT_INTERRUPTED = 130

EXIT_CODE_TEXT = {
    EXIT_OK: "done",
    EXIT_ERROR: "the store, a file or a folder cannot be used, or a database driver is\n"
                "     missing: the message says which and what to do",
    EXIT_INVALID: "the plan (or the command line) is invalid: every problem is printed as\n"
                  "     PLAN:LINE:COLUMN: message",
    EXIT_SOURCE: "a tracker could not be synced: the message names the source, the host and\n"
                 "     the cause; the report from what the store held before is printed,\n"
                 "     marked stale",
    EXIT_FINDINGS: "--fail-on was given and a finding of that severity (or worse) was found;\n"
                   "     for push --check: a tracker differs from the plan",
    EXIT_NOTHING: "nothing to judge: no source of the plan was ever synced into this store",
    EXIT_BUG: "an unexpected error: a bug in stratmap (please report it with the message)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C); what was synced before is kept",
}


def exit_codes(*codes: int) -> str:
    """The ``exit codes:`` block of a command's --help: only the codes it returns."""
    return "exit codes:\n" + "".join(f"  {code:<2} {EXIT_CODE_TEXT[code]}\n"
                                     for code in codes)


EXIT_CODES = exit_codes(*EXIT_CODE_TEXT)
SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}

log = logging.getLogger(__name__)


def parse_when(text: str) -> date | datetime:
    """An ISO 8601 date or datetime, as written: :func:`as_of` places it in the plan's time
    zone (a bare date is midnight there, a datetime without an offset is read there)."""
    value = text.strip().replace("Z", "+00:00")
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date or datetime (e.g. 2027-01-20 or "
            "2027-01-20T09:00Z)") from None


def as_of(args: argparse.Namespace, plan) -> datetime | None:  # type: ignore[no-untyped-def]
    """``--as-of`` as an aware moment, by the plan's one rule: a bare date is midnight in
    the plan's time zone, like the plan's own dates; None: now."""
    when = getattr(args, "as_of", None)
    return None if when is None else plan.moment(when).astimezone(UTC)


# -- commands ----------------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace, console: Console) -> int:
    target = Path(args.path)
    if target.is_dir():
        target = target / "plan.yaml"
    if target.exists() and not args.force:
        console.print(f"[red]{target} exists[/]; pass --force to overwrite it")
        return EXIT_INVALID
    template = resources.files("stratmap.models").joinpath("templates/plan.yaml").read_text("utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(template, encoding="utf-8")
    console.print(f"Wrote [bold]{target}[/]. Next: edit it, then "
                  f"[bold]stratmap validate {target}[/] and [bold]stratmap run {target}[/].")
    return EXIT_OK


def _load(path: str, console: Console):  # type: ignore[no-untyped-def]
    from stratmap.models.planfile import PlanError, load_plan

    try:
        return load_plan(path)
    except PlanError as error:
        for problem in error.problems:
            console.print(visible(str(problem)), markup=False, highlight=False, soft_wrap=True)
        console.print(f"[red]{len(error.problems)} problem(s)[/] in {path}", highlight=False)
        return None


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    failed = False
    for path in args.plans:
        plan = _load(path, console)
        if plan is None:
            failed = True
            continue
        milestones = sum(len(g.milestones) for g in plan.goals)
        from stratmap.flows.present import plural

        console.print(f"{path}: [green]valid[/] — {plural(len(plan.goals), 'goal')}, "
                      f"{plural(milestones, 'milestone')}, "
                      f"{plural(len(plan.people), 'person', 'people')}, "
                      f"{plural(len(plan.sources), 'source')}", highlight=False)
    return EXIT_INVALID if failed else EXIT_OK


def _store(args: argparse.Namespace, *, reading: bool = False):  # type: ignore[no-untyped-def]
    """The store of ``--db``. ``reading``: a command that only reads opens a store it may not
    write (a read-only file or folder) read-only instead of failing."""
    from stratmap.models.store import Store, database_url, writable

    if reading and not writable(database_url(args.db)):
        return Store(args.db, read_only=True)
    return Store(args.db)


def _fail_on(report, threshold: str | None) -> int:  # type: ignore[no-untyped-def]
    if threshold is None:
        return EXIT_OK
    worst = max((SEVERITY_RANK[f.severity.value] for f in report.findings), default=-1)
    return EXIT_FINDINGS if worst >= SEVERITY_RANK[threshold] else EXIT_OK


def prefect_api_configured() -> bool:
    """Whether a Prefect API is set, as Prefect itself reads its settings (environment,
    profile, ``prefect.toml``, ``pyproject.toml``, ``.env``).

    Importing Prefect takes seconds, so it is imported only when one of those places could
    set something: with none of them, Prefect would read its defaults (no API).
    """
    import os

    here = Path.cwd()
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    pyproject = here / "pyproject.toml"
    anywhere = (any(name.startswith("PREFECT_") for name in os.environ)
                or (home / "profiles.toml").exists() or (here / "prefect.toml").exists()
                or (here / ".env").exists()
                or (pyproject.exists() and "tool.prefect" in pyproject.read_text("utf-8")))
    if not anywhere:
        return False
    from prefect.settings import get_current_settings

    return bool(get_current_settings().api.url)


def _store_of(args: argparse.Namespace, plan_path: Path) -> None:
    """Fill in ``--db``: STRATMAP_DB, else the plan's own store beside the plan file."""
    from stratmap.models.store import database_url

    args.db = database_url(args.db, plan_path=plan_path)


def _never_synced(plan, args: argparse.Namespace, *, reading: bool = False) -> list[str] | None:  # type: ignore[no-untyped-def]
    """The plan's sources this store never synced; None when it synced none of them (or is
    a SQLite file that does not exist: it is not created). ``reading``: as for
    :func:`_store`."""
    from sqlalchemy.engine import make_url

    url = make_url(args.db)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
            and not Path(url.database).exists():
        return None
    with _store(args, reading=reading) as store:
        never = [name for name in plan.sources
                 if (state := store.state(name)) is None or state.last_sync_finished is None]
    return None if plan.sources and len(never) == len(plan.sources) else never


def _nothing_to_judge(plan, args: argparse.Namespace, console: Console) -> int:  # type: ignore[no-untyped-def]
    from stratmap.models.store import redact_url

    console.print(Text.assemble(
        ("nothing to judge: ", "red"),
        f"the store {redact_url(args.db)} holds no sync of this plan's sources "
        f"({', '.join(plan.sources) or 'none'}). Run `stratmap run {args.plan}` first (it "
        "syncs them), or point --db / STRATMAP_DB at the store that run used."))
    return EXIT_NOTHING


def _mark_never_synced(report, never: list[str]):  # type: ignore[no-untyped-def]
    """The report with each never-synced source listed as stale: nothing of it was judged."""
    from stratmap.models.report import StaleSource

    if not never:
        return report
    known = {s.source for s in report.stale_sources}
    marked = [StaleSource(source=name, error="no sync of it ever finished into this store, "
                          "so nothing of it is judged", last_synced=None)
              for name in never if name not in known]
    return report.model_copy(update={"stale_sources": [*report.stale_sources, *marked]})


def _store_parameter(db: str | None) -> str | None:
    """``--db`` as a flow parameter: Prefect stores parameters in clear, so a URL with a
    password goes to this process's STRATMAP_DB (the flow, or the runs ``serve`` starts,
    read it there) and the parameter stays empty."""
    import os
    from urllib.parse import urlsplit

    try:
        password = urlsplit(db).password if db else None
    except ValueError:
        password = None
    if db and password:
        os.environ["STRATMAP_DB"] = db
        return None
    return db


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from stratmap.flows.present import SyncProgress, summary, sync_failures

    plan = _load(args.plan, console)
    if plan is None:
        return EXIT_INVALID
    plan_path = Path(args.plan).resolve()
    _store_of(args, plan_path)
    when = as_of(args, plan)
    never: list[str] = []
    if args.offline:
        found = _never_synced(plan, args)
        if found is None:
            return _nothing_to_judge(plan, args, console)
        never = found
        if never:
            console.print(f"[yellow]warning:[/] never synced: {', '.join(never)}; "
                          "--offline judges only what the store holds (run once without "
                          "--offline, or check --db)", highlight=False)
    use_prefect = (args.prefect if args.prefect is not None else prefect_api_configured()) \
        and args.record
    if use_prefect:
        from prefect import tags

        from stratmap.flows.track import RunFailed, track_plan
        from stratmap.publish.prefect_ui import slug

        # The flow syncs, judges, records and publishes; the CLI shows what it returned.
        # Tagged as the deployments' runs are, so one filter finds both in the UI.
        undelivered: list[str] = []
        try:
            with tags("stratmap", f"plan:{slug(plan.name)}"):
                report = track_plan(str(plan_path), db=_store_parameter(args.db), as_of=when,
                                    offline=args.offline)["report"]
            failed: dict[str, str] = {}
        except RunFailed as error:
            report, failed = error.tracked.report, error.tracked.failed
            undelivered = list(error.tracked.published.get("alert_failures", []))
    else:
        from stratmap.flows.run import track

        if plan.alerts and plan.alerts.routes and not args.quiet and args.record:
            console.print("[dim]alerts and events are sent by the Prefect flow: set "
                          "PREFECT_API_URL (or pass --prefect) to publish them[/]")
        with SyncProgress(console, [] if args.offline else list(plan.sources),
                          quiet=args.quiet) as progress:
            run = track(plan, plan_dir=plan_path.parent, db=args.db, as_of=when,
                        offline=args.offline, observer=progress, record=args.record)
        report, failed, undelivered = run.report, run.failed, []
    report = _mark_never_synced(report, never)
    if args.json:
        Path(args.json).write_text(report.to_json(), encoding="utf-8")
    sync_failures(console, failed)
    if not args.quiet or failed:
        summary(report, console)
        if args.json and not args.quiet:
            console.print(f"Report written to [bold]{args.json}[/]")
    if not args.record and not args.quiet:
        console.print("[dim]--no-record: judged only; nothing was recorded in the history "
                      "(sources are still synced unless --offline)[/]")
    if failed:
        return EXIT_SOURCE
    if use_prefect and undelivered:
        for failure in undelivered:
            console.print(Text.assemble(("alert not delivered: ", "red"), failure))
        return EXIT_ERROR
    return _fail_on(report, args.fail_on)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from stratmap.flows.measures import read_and_judge
    from stratmap.models.records import utcnow

    plan = _load(args.plan, console)
    if plan is None:
        return EXIT_INVALID
    _store_of(args, Path(args.plan))
    if args.output and not Path(args.output).resolve().parent.is_dir():
        console.print(f"[red]cannot use[/] {args.output}: No such file or directory (the "
                      f"folder {Path(args.output).resolve().parent} does not exist)",
                      highlight=False)
        return EXIT_ERROR
    never = _never_synced(plan, args, reading=True)
    if never is None:
        return _nothing_to_judge(plan, args, console)
    if never:
        console.print(Text.assemble(("warning: ", "yellow"), f"never synced into this store: "
                                    f"{', '.join(never)}; the report marks them stale"))
    with _store(args, reading=True) as store:
        # read once: the judgement and the page
        evidence, report, index = read_and_judge(store, plan, as_of(args, plan) or utcnow())
        report = _mark_never_synced(report, never)
        if args.format == "html":  # issue 6: one self-contained page, with history and map
            from stratmap.flows.history import html_report

            html_text = html_report(plan, store, report, evidence=evidence, index=index)
    if args.format == "json":
        text = report.to_json()
    elif args.format == "html":
        text = html_text
    else:
        from stratmap.publish.markdown import render

        text = render(report)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        console.print(f"Wrote {args.output}", highlight=False)
    else:
        sys.stdout.write(text)
    return _fail_on(report, args.fail_on)


def cmd_serve(args: argparse.Namespace, console: Console) -> int:
    plan = _load(args.plan, console)
    if plan is None:
        return EXIT_INVALID
    configured = prefect_api_configured()
    from prefect import serve
    from prefect.settings import get_current_settings

    from stratmap.flows.deploy import deployments_for

    if configured:
        settings = get_current_settings()
        ui = settings.ui_url or str(settings.api.url).removesuffix("/api")
        console.print(f"Prefect API {settings.api.url}; the deployments, their runs and "
                      f"schedules are in the UI at {ui}/deployments", highlight=False)
    else:
        console.print(
            "No Prefect API is configured (PREFECT_API_URL): Prefect starts a temporary "
            "server for as long as this command runs (API only, no UI; nothing is kept "
            "after). The schedules below still run. For the UI, start a lasting server with "
            "`prefect server start` (UI at http://127.0.0.1:4200) and run: "
            f"PREFECT_API_URL=http://127.0.0.1:4200/api stratmap serve {args.plan}",
            highlight=False, markup=False, soft_wrap=True)
    # db stays as given: the flow finds STRATMAP_DB or the plan's own store itself, and a
    # URL from the environment (with its password) never lands in deployment parameters.
    deployments = deployments_for(plan, plan_path=Path(args.plan).resolve(),
                                  db=_store_parameter(args.db))
    for deployment in deployments:
        when = (f"on {deployment.schedules[0].schedule.cron} ({plan.timezone})"
                if deployment.schedules else "on demand (run it from the Prefect UI)")
        console.print(f"serving [bold]{deployment.name}[/] {when}", highlight=False)
    serve(*deployments)
    return EXIT_OK


def cmd_deployments(args: argparse.Namespace, console: Console) -> int:
    plan = _load(args.plan, console)
    if plan is None:
        return EXIT_INVALID
    from stratmap.flows.deploy import write_deployments

    folder = Path(args.folder)
    target = folder / "prefect.yaml"
    if target.exists() and not args.force:
        console.print(f"[red]{target} exists[/]: pass --force to overwrite it", highlight=False)
        return EXIT_ERROR
    plan_path = args.plan_path or str(Path(args.plan).resolve())
    for path in write_deployments(plan, folder, plan_path=plan_path, pool=args.pool):
        console.print(f"wrote {path}", highlight=False, markup=False)
    console.print(f"next: prefect work-pool create {args.pool} --type process; "
                  f"prefect deploy --prefect-file {target} --all; "
                  f"prefect worker start --pool {args.pool}", highlight=False, markup=False)
    return EXIT_OK


def _push_store(args: argparse.Namespace, console: Console):  # type: ignore[no-untyped-def]
    """The plan's store, where ``push --apply`` records the due dates it writes (so they
    are the plan's change, not a tracker's slip); None, said, if it cannot be used: the
    writes the user asked for still go to the trackers."""
    from sqlalchemy.exc import SQLAlchemyError

    from stratmap.models.store import Store, StoreRefused, database_url, redact_url, writable

    url = database_url(getattr(args, "db", None), plan_path=Path(args.plan))
    try:
        if writable(url):
            return Store(url)
    except (SQLAlchemyError, StoreRefused, OSError, ModuleNotFoundError):
        pass
    console.print(f"[yellow]the store {shown(redact_url(url))} cannot be written:[/] what is "
                  "pushed is not recorded there, so the next run takes a Jira epic's new "
                  "date for a change of the tracker", highlight=False)
    return None


def cmd_push(args: argparse.Namespace, console: Console) -> int:
    from stratmap.connectors.base import SourceError
    from stratmap.flows.push import CONTAINER_NAMES, push_plan

    plan = _load(args.plan, console)
    if plan is None:
        return EXIT_INVALID
    unknown = [name for name in args.source or [] if name not in plan.sources]
    if unknown:
        console.print(f"[red]no such source:[/] {', '.join(unknown)} (the plan has "
                      f"{', '.join(plan.sources)})", highlight=False)
        return EXIT_INVALID
    written: list[str] = []
    store = _push_store(args, console) if args.apply else None
    try:
        results = push_plan(plan, plan_dir=Path(args.plan).parent, apply=args.apply,
                            sources=args.source or None,
                            on_apply=lambda source, d: written.append(source), store=store)
    except SourceError as error:
        if store is not None:
            store.close()
        console.print(f"[red]push failed:[/] {shown(error)}", highlight=False)
        if written:
            console.print(f"{len(written)} change(s) were written before the error; run "
                          "`stratmap push` again to see what is left", highlight=False)
        return EXIT_SOURCE
    if store is not None:
        store.close()
    table = Table(title="The trackers against the plan", title_justify="left")
    for column in ("Source", "Container", "Field", "Tracker", "Plan", "Milestone"):
        table.add_column(column, overflow="fold")
    differences = 0
    for result in results:
        for d in result.check.differences:
            differences += 1
            done = " [green]✓ written[/]" if d in result.applied else ""
            wanted = (_account_name(plan, result.source, d.plan) if d.field == "assignee"
                      else d.plan)
            table.add_row(result.source, shown(d.container), d.field,
                          shown(d.tracker or "") or "[dim]unset[/]", f"{shown(wanted)}{done}",
                          d.milestone)
    if differences:
        console.print(table)
    for result in results:
        if not result.supported:
            console.print(f"[dim]{result.source} ({result.kind}): push is not supported for "
                          "this tracker yet; left as it is[/]", highlight=False)
        for note in result.check.missing + result.conflicts:
            console.print(f"[yellow]{result.source}:[/] {shown(note)}", highlight=False)
    if not any(result.targets for result in results):
        console.print("Nothing to push: no milestone with a due date (or an owner whose "
                      "account the plan knows, where the tracker has an owner) names exactly "
                      "one container: "
                      f"{CONTAINER_NAMES}.", highlight=False)
        return EXIT_OK
    if not differences:
        console.print("[green]The trackers match the plan[/]: every due date and owner it "
                      "names is already there.")
        return EXIT_OK
    if args.apply:
        console.print(f"{differences} change(s) written.")
        return EXIT_OK
    console.print(f"{differences} difference(s). Nothing was written: run with [bold]--apply"
                  "[/] to write the plan's values to the trackers.")
    return EXIT_FINDINGS if args.check else EXIT_OK


def _account_name(plan, source: str, account: str) -> str:  # type: ignore[no-untyped-def]
    """A tracker account as a person: ``Carol Nguyen (5e8b1c...)``, from the plan's
    ``accounts`` (by source name or kind); the account alone if no person has it."""
    kind = plan.sources[source].kind if source in plan.sources else None
    for person in plan.people.values():
        if person.name and account in (person.accounts.get(source), person.accounts.get(kind)):
            return f"{person.name} ({account})"
    return account


def cmd_metrics(args: argparse.Namespace, console: Console) -> int:
    from stratmap.flows.metrics import openmetrics_text, push

    plan = _load(args.plan, console)
    if plan is None:
        return EXIT_INVALID
    _store_of(args, Path(args.plan))
    with _store(args, reading=True) as store:
        if args.push:
            push(plan, store, args.push)
            console.print(f"pushed the metrics of {plan.name} to {args.push}", highlight=False)
            return EXIT_OK
        sys.stdout.write(openmetrics_text(plan, store))
    return EXIT_OK


def cmd_schema(args: argparse.Namespace, console: Console) -> int:
    from stratmap.models.schemas import schema_text

    sys.stdout.write(schema_text(args.which))
    return EXIT_OK


# -- the parser --------------------------------------------------------------------------------


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


def _db_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL",
                        help="SQLAlchemy URL of the store (default: $STRATMAP_DB, else the "
                             "plan's own SQLite file beside it: plan.yaml -> "
                             "plan.stratmap.db), e.g. postgresql+psycopg://host/db")
    parser.add_argument("--as-of", type=parse_when, metavar="WHEN",
                        help="judge the plan as it stood at WHEN (ISO 8601 date or datetime; "
                             "a bare date is midnight in the plan's time zone, like the "
                             "plan's dates; default: now)")
    parser.add_argument("--fail-on", choices=["info", "warning", "critical"],
                        help="exit 4 when a finding of this severity or worse is found")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stratmap", formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Tie a strategic plan to the issue trackers and judge it from evidence.

            A plan file names the goals, milestones, owners and the tracker items behind
            them; stratmap syncs the trackers, maps the items, and reports what is stalled,
            overdue, slipping, missing senior feedback, resting on one person, or unowned."""),
        epilog=textwrap.dedent("""\
            first steps:
              stratmap init plan.yaml          write a commented plan template
              stratmap validate plan.yaml      check it (problems as FILE:LINE:COL)
              stratmap run plan.yaml           sync the trackers, judge, print the summary
              stratmap report plan.yaml --format md -o report.md
              stratmap push plan.yaml          show (--apply: write) the plan's dates in the trackers

            try the bundled sample, offline:
              stratmap run examples/northwind/plan.yaml --as-of 2027-03-01T09:00Z

            """) + EXIT_CODES,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    init = commands.add_parser("init", help="write a commented plan template",
                               formatter_class=_Formatter,
                               description="Write a commented plan template to fill in.",
                               epilog="example:\n  stratmap init plans/growth.yaml")
    init.add_argument("path", nargs="?", default="plan.yaml", help="where (default plan.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite an existing file")
    init.set_defaults(func=cmd_init)

    validate = commands.add_parser(
        "validate", help="check plan files", formatter_class=_Formatter,
        description="Check plan files; print every problem as PLAN:LINE:COLUMN: message.",
        epilog="example:\n  stratmap validate plan.yaml\n\n" + exit_codes(EXIT_OK, EXIT_INVALID))
    validate.add_argument("plans", nargs="+", metavar="PLAN")
    validate.set_defaults(func=cmd_validate)

    run = commands.add_parser(
        "run", help="sync every source, judge the plan, publish", formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Sync every source of the plan incrementally (only what changed since the last
            run, re-reading a small overlap), judge the plan, and print the summary."""),
        epilog=textwrap.dedent("""\
            examples:
              stratmap run plan.yaml
              stratmap run plan.yaml --json report.json --fail-on critical
              stratmap run plan.yaml --offline --as-of 2027-01-20   # judge the past, no sync
              STRATMAP_DB=postgresql+psycopg://localhost/stratmap stratmap run plan.yaml

            """) + exit_codes(EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_SOURCE, EXIT_FINDINGS,
                            EXIT_NOTHING, EXIT_BUG, EXIT_INTERRUPTED))
    run.add_argument("plan", metavar="PLAN")
    _db_options(run)
    run.add_argument("--json", metavar="FILE", help="also write the JSON report to FILE")
    run.add_argument("--offline", action="store_true",
                     help="skip the sync: judge what the store already holds")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="print nothing but errors (and, when a sync fails, the report)")
    run.add_argument("--no-record", dest="record", action="store_false",
                     help="what-if: judge (an edited plan, say) without recording the run "
                          "in the progress history and without publishing; also skips the "
                          "Prefect flow")
    run.add_argument("--prefect", action=argparse.BooleanOptionalAction, default=None,
                     help="run as a Prefect flow (runs, artifacts, events and alerts in the "
                          "Prefect UI); default: when a Prefect API is configured "
                          "(PREFECT_API_URL), else the fast local path")
    run.set_defaults(func=cmd_run)

    serve = commands.add_parser(
        "serve", help="run the plan's scheduled deployments", formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Serve the plan's deployments from this process: track-<plan> on the plan's
            schedule.sync cron (default every 30 minutes) and report-<plan> on
            schedule.report (default Monday 09:00), both in the plan's time zone, and
            push-<plan> on demand (stratmap push as a flow: apply=true writes).
            Needs a Prefect API (PREFECT_API_URL, e.g. a `prefect server start`)."""),
        epilog="example:\n  PREFECT_API_URL=http://127.0.0.1:4200/api stratmap serve plan.yaml")
    serve.add_argument("plan", metavar="PLAN")
    serve.add_argument("--db", metavar="URL", help="SQLAlchemy URL of the store")
    serve.set_defaults(func=cmd_serve)

    deployments = commands.add_parser(
        "deployments", help="write the plan's deployments as a prefect.yaml for a work pool",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Write DIR/prefect.yaml with the deployments `stratmap serve` would serve
            (track-<plan>, report-<plan>, push-<plan>: the plan's schedule: crons in its time
            zone, one run at a time), and the example Automations under DIR/automations/.
            The entrypoints are modules of the installed package (stratmap.flows.track...),
            so a process worker needs `pip install stratmap`, not a checkout."""),
        epilog=textwrap.dedent("""\
            examples:
              stratmap deployments write plan.yaml deploy/
              stratmap deployments write plan.yaml deploy/ --pool strategy \\
                  --plan-path /srv/plans/growth.yaml    # where the worker reads the plan
              prefect deploy --prefect-file deploy/prefect.yaml --all"""))
    deployments_actions = deployments.add_subparsers(dest="action", metavar="ACTION",
                                                     required=True)
    write = deployments_actions.add_parser(
        "write", help="write DIR/prefect.yaml and DIR/automations/", formatter_class=_Formatter,
        description="Write DIR/prefect.yaml and the example Automations for PLAN.")
    write.add_argument("plan", metavar="PLAN")
    write.add_argument("folder", metavar="DIR")
    write.add_argument("--pool", default="stratmap", help="work pool name (default stratmap)")
    write.add_argument("--plan-path", metavar="PATH",
                       help="the plan's path on the worker (default: PLAN's absolute path)")
    write.add_argument("--force", action="store_true", help="overwrite DIR/prefect.yaml")
    write.set_defaults(func=cmd_deployments)

    report = commands.add_parser(
        "report", help="write the report from the store (no sync)", formatter_class=_Formatter,
        description="Judge the plan from the store (no sync) and write the report.",
        epilog=textwrap.dedent("""\
            examples:
              stratmap report plan.yaml --format md -o report.md
              stratmap report plan.yaml --format html -o report.html
              stratmap report plan.yaml --format json --as-of 2027-01-20 | jq .findings

            """) + exit_codes(EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_FINDINGS, EXIT_NOTHING,
                            EXIT_BUG, EXIT_INTERRUPTED))
    report.add_argument("plan", metavar="PLAN")
    _db_options(report)
    report.add_argument("--format", choices=["md", "html", "json"], default="md",
                        help="md (default), html (one self-contained page: map, burn-up "
                             "charts, findings, people; the map needs Graphviz's `dot`, "
                             "else it is a list) or json")
    report.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    report.set_defaults(func=cmd_report)

    metrics = commands.add_parser(
        "metrics", help="print the plan's progress metrics (OpenMetrics) from the store",
        formatter_class=_Formatter,
        description="Print the last run's progress metrics as OpenMetrics text, for "
                    "Prometheus (a textfile collector, or --push to a Pushgateway). Labels: "
                    "plan, goal, milestone, measure, status, kind; never item keys or people.",
        epilog=textwrap.dedent("""\
            examples:
              stratmap metrics plan.yaml > /var/lib/node_exporter/textfile/stratmap.prom
              stratmap metrics plan.yaml --push http://pushgateway:9091

            """) + exit_codes(EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_BUG, EXIT_INTERRUPTED))
    metrics.add_argument("plan", metavar="PLAN")
    metrics.add_argument("--db", metavar="URL",
                         help="SQLAlchemy URL of the store (default: $STRATMAP_DB, else the "
                              "plan's own SQLite file beside it)")
    metrics.add_argument("--push", metavar="URL",
                         help="push to this Prometheus Pushgateway (job stratmap, grouped by "
                              "plan) instead of printing")
    metrics.set_defaults(func=cmd_metrics)

    push = commands.add_parser(
        "push", help="write the plan's due dates and owners to the trackers",
        formatter_class=_Formatter,
        description=textwrap.dedent("""\
            Keep the trackers' containers in step with the plan: the container a milestone
            names with exactly one selector key gets the milestone's due date: a Jira epic
            ({source: jira, epic: KEY}, also its owner as assignee when the owner has an
            account on that source under `accounts:`), a GitHub or GitLab milestone
            ({milestone: title}), a Redmine version ({version: name}), an Azure DevOps
            Epic or Feature ({parent: ID}: Target Date, and Assigned To like a Jira
            epic), a Linear project ({project: name}: target date, and its lead).

            Without --apply nothing is written: the differences are printed. Nothing is
            ever cleared, created or deleted. Tokens need edit permission to --apply."""),
        epilog=textwrap.dedent("""\
            examples:
              stratmap push plan.yaml                  show what differs from the plan
              stratmap push plan.yaml --apply          write the plan's values
              stratmap push plan.yaml --check          exit 4 if anything differs (CI)
              stratmap push plan.yaml --source jira --apply

            """) + exit_codes(EXIT_OK, EXIT_ERROR, EXIT_INVALID, EXIT_SOURCE, EXIT_FINDINGS,
                            EXIT_BUG, EXIT_INTERRUPTED))
    push.add_argument("plan", metavar="PLAN")
    push.add_argument("--apply", action="store_true", help="write the differences")
    push.add_argument("--check", action="store_true",
                      help="exit 4 when a tracker differs from the plan (without --apply)")
    push.add_argument("--source", action="append", metavar="NAME",
                      help="only this source (repeat for more); default: every source")
    push.set_defaults(func=cmd_push)

    schema = commands.add_parser(
        "schema", help="print the JSON Schema of the plan file or the report",
        description="Print a JSON Schema (for editors and for checking reports).",
        epilog="example:\n  stratmap schema plan > plan.schema.json")
    schema.add_argument("which", choices=["plan", "report"])
    schema.set_defaults(func=cmd_schema)
    return parser


def _not_printed_twice(record: logging.LogRecord) -> bool:
    """Keep the run's own "sync of X failed" off the terminal (the command prints it). Only
    the terminal's handler filters it: the flow run's logs in Prefect still get it."""
    return record.name != "stratmap.flows.run"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not args.verbose:  # the command prints a failed sync itself, once, on the terminal
        for handler in logging.getLogger().handlers:
            handler.addFilter(_not_printed_twice)
    console = Console(stderr=args.command in ("report", "schema"))
    try:
        return int(args.func(args, console))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: what was synced before is kept")
        return EXIT_INTERRUPTED
    except Exception as error:  # the last line of defence: say it plainly
        return _unexpected(error, args, console)


_DB_DRIVERS = {"MySQLdb", "pymysql", "psycopg", "psycopg2", "asyncpg", "pyodbc", "cx_Oracle",
               "oracledb", "pg8000", "mysql", "mariadb"}
"""Database drivers SQLAlchemy imports for a --db URL: missing, the user installs one."""


def _unexpected(error: Exception, args: argparse.Namespace, console: Console) -> int:
    """A clear message instead of a traceback (which -v shows), secrets masked."""
    from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

    from stratmap.flows.redact import redact
    from stratmap.models.store import StoreRefused

    driver = isinstance(error, ModuleNotFoundError) and error.name in _DB_DRIVERS
    if isinstance(error, OSError) and error.filename and not isinstance(error, DatabaseError):
        # A folder that does not exist, a read-only one, a full disk: the user's to fix.
        console.print(f"[red]cannot use[/] {shown(error.filename)}: "
                      f"{shown(error.strerror or error)}", highlight=False)
    elif isinstance(error, (ArgumentError, DatabaseError, NoSuchModuleError, StoreRefused)) \
            or driver:
        from stratmap.models.store import database_url, redact_url

        try:
            where = redact_url(database_url(getattr(args, "db", None)))
        except ArgumentError:
            where = "the --db URL"
        console.print(f"[red]cannot use the store[/] {where}: "
                      f"{shown(redact(str(error).splitlines()[0]))}", highlight=False)
        console.print("check --db / STRATMAP_DB (e.g. sqlite:///stratmap.db or "
                      "postgresql+psycopg://user@host/db) and that the server is running",
                      highlight=False)
    else:
        console.print(f"[red]error:[/] {type(error).__name__}: {shown(redact(str(error)))}",
                      highlight=False)
        console.print("this is a bug in stratmap: please report it with the message above "
                      "(run with -v for the traceback)", highlight=False)
        if args.verbose:
            log.exception("traceback")
        return EXIT_BUG
    if args.verbose:
        log.exception("traceback")
    return EXIT_ERROR


def entry() -> None:
    """The ``stratmap`` command: :func:`main`, then exit.

    What is left when the command is done (the modules and what they hold) is handed to
    the garbage collector's permanent generation first, so the collection Python makes as
    it shuts down has nothing to scan: that collection, over every object the imports made,
    took about a tenth of a second of every run. Not in :func:`main`, which tests call
    many times in one process."""
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
