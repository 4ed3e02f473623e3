"""End to end, as a user waits: ``python -m benchmarks.e2e --issues 2000,20000``.

For each size, against a Jira-compatible load server (:mod:`benchmarks.jira_load`) at a
latency: the raw-fetch floor, then the ``stratmap`` command itself, each in its own process:
a first ``stratmap run`` from an empty SQLite store (sync, judge, the history backfill, the
JSON report), a second run with nothing changed, one after 1% of the issues changed,
``stratmap report --format json`` and ``--format html``, and the store's size per issue.
The plan (:func:`plan_yaml`) has a milestone per epic, grouped by project into goals, plus
label milestones, people matched by email, and feedback and stall rules, so
every rule of the engine and the weekly history have work to do. Prints rows as JSON lines
and a Markdown table; :mod:`benchmarks.run` runs it first in ``make bench``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from benchmarks.run import PROJECTS, SCOPE, LoadServer, log, measure, search_fields

USERS = 80


def plan_yaml(url: str, deployment: str, issues: int) -> str:
    """The benchmark's plan for a site of ``issues`` issues (see the module docstring)."""
    per_project = issues // len(PROJECTS)
    lines = [
        "version: 1", "name: Load plan", "leader: user000", "timezone: Europe/London",
        "people:",
    ]
    for n in range(20):
        lines += [f"  user{n:03d}:", f"    name: Dev {n:03d}",
                  f"    email: user{n:03d}@northwind.example",
                  f"    senior: {'true' if n < 4 else 'false'}"]
    lines += ["sources:", "  jira:", "    kind: jira", f"    url: {url}",
              "    token: env:JIRA_API_TOKEN", f'    scope: "{SCOPE}"',
              f"    deployment: {deployment}", "    page_size: 100", "    concurrency: 4"]
    if deployment == "cloud":
        lines.append("    email: bench@northwind.example")
    lines += ["defaults:", "  stall_after: 14d", "  inactive_after: 30d",
              "  feedback: {from: seniors, every: 28d}", "goals:"]
    for p, project in enumerate(PROJECTS):
        lines += [f"  - id: {project.lower()}", f"    title: {project} delivery",
                  f"    owner: user{p:03d}", "    milestones:"]
        epics = range(1, per_project + 1, 100)
        for m, number in enumerate(epics):
            start_month = 1 + (m * 29) // max(1, len(epics))
            year, month = 2024 + (start_month - 1) // 12, (start_month - 1) % 12 + 1
            due_year = year + (1 if month > 6 else 0)
            due_month = (month + 5) % 12 + 1
            lines += [f"      - id: e{number}", f"        title: Epic {project}-{number}",
                      f"        owner: user{(p * 7 + m) % 20:03d}",
                      f"        start: {year}-{month:02d}-01",
                      f"        due: {due_year}-{due_month:02d}-15",
                      f"        work: [{{source: jira, epic: {project}-{number}}}]"]
        lines += [f"      - id: {project.lower()}-security", "        title: Security work",
                  "        work: [{source: jira, labels: [security]}]"]
    lines += ["  - id: areas", "    title: Areas", "    owner: user001", "    milestones:"]
    for n, label in enumerate(("backend", "frontend", "infra", "data", "ux"), start=1):
        lines += [f"      - id: {label}", f"        title: Area {label}",
                  f"        owner: user{n:03d}",
                  f"        work: [{{source: jira, labels: [{label}]}}]"]
    return "\n".join(lines) + "\n"


@dataclass
class Row:
    deployment: str
    latency_ms: float
    issues: int
    step: str
    wall_s: float
    peak_rss_mb: float
    requests: int
    note: str = ""


def _stratmap(*args: str) -> list[str]:
    return [sys.executable, "-m", "stratmap.flows.cli", *args]


PHASES = (("sync", re.compile(r"INFO stratmap\.flows\.run: synced .* ([\d.]+)s \(watermark")),
          ("evidence", re.compile(r"read the evidence: .* in ([\d.]+)s")),
          ("judge", re.compile(r"judged \d+ milestones: .* in ([\d.]+)s")),
          ("history", re.compile(r"(?:recorded|read) the history: .* in ([\d.]+)s")),
          ("page", re.compile(r"rendered the page: .* in ([\d.]+)s")),
          ("ahead", re.compile(r"(?:read the evidence|judged \d+ milestones) while syncing: "
                               r".* in ([\d.]+)s")))
"""What ``stratmap -v run`` and ``stratmap -v report`` log of each phase's seconds
(flows/run.py, flows/measures.py, flows/history.py). ``ahead`` is a run's reading and
judging while its sources sync (``flows.run.JudgedAhead``): beside the sync, not after it."""


def phases(stderr: str, wall: float) -> str:
    """Where a command's time went, from its log: each phase it logged, with its seconds,
    and the rest (start-up, loading the plan, writing the report). The judgement ahead runs
    beside the sync: only what it took past the sync's end is taken from the rest."""
    found = {name: [float(m) for m in pattern.findall(stderr)] for name, pattern in PHASES}
    ahead, sync = sum(found["ahead"]), sum(found["sync"])
    rest = wall - sum(sum(times) for name, times in found.items() if name != "ahead") \
        - max(0.0, ahead - sync)
    return ", ".join([*(f"{name} {sum(times):.1f}s" for name, times in found.items() if times),
                      f"rest {rest:.1f}s"])


def run_size(deployment: str, latency: float, issues: int, work: Path,
             *, changed: bool = True) -> list[Row]:
    """Every end-to-end step at one size; the store is removed afterwards."""
    rows: list[Row] = []
    folder = work / f"{deployment}-{issues}"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "store.db"
    with LoadServer(deployment, issues) as server:
        server.admin("config", {"latency_ms": latency})
        plan = folder / "plan.yaml"
        plan.write_text(plan_yaml(server.url, deployment, issues), encoding="utf-8")

        def step(name: str, argv: list[str], note: str = "", *, split: bool = False) -> Row:
            server.admin("reset")
            log(f"{deployment} {latency:g} ms {issues}: {name} ...")
            measured = measure(argv)
            stats = server.admin("stats")
            row = Row(deployment, latency, issues, name, round(measured.wall, 2),
                      round(measured.peak_rss_mb, 1), int(stats.get("requests", 0)), note)
            if measured.returncode != 0:
                row.note = (note + "; " if note else "") + f"FAILED (exit {measured.returncode})"
                log(measured.stderr)
            if split and measured.returncode == 0:
                row.note = (row.note + "; " if row.note else "") + phases(measured.stderr,
                                                                          measured.wall)
            log(f"  {row.wall_s}s, {row.requests} requests, {row.peak_rss_mb} MB {row.note}")
            rows.append(row)
            return row

        floor_options = {"url": server.url, "deployment": deployment, "scope": SCOPE,
                         "fields": search_fields(deployment), "concurrency": 4}
        floor = step("floor (httpx, decode only)",
                     [sys.executable, "-m", "benchmarks.clients", "floor",
                      json.dumps(floor_options)])
        url = f"sqlite:///{db}"
        first = step("first `stratmap run` (empty store)",
                     _stratmap("-v", "run", str(plan), "--db", url, "--quiet",
                               "--json", str(folder / "first.json")), split=True)
        first.note = f"{first.wall_s / floor.wall_s:.2f}x the floor" + (
            "; " + first.note if first.note else "")
        step("`stratmap run`, nothing changed",
             _stratmap("-v", "run", str(plan), "--db", url, "--quiet",
                       "--json", str(folder / "again.json")), split=True)
        if changed:
            from datetime import UTC, datetime

            moment = datetime.now(UTC) - timedelta(minutes=10)
            count = server.admin("change", {"fraction": 0.01, "at": moment.isoformat()})
            step("`stratmap run`, 1% changed",
                 _stratmap("run", str(plan), "--db", url, "--quiet",
                           "--json", str(folder / "changed.json")),
                 note=f"{count['changed']} issues changed")
        step("`stratmap report --format json`",
             _stratmap("-v", "report", str(plan), "--db", url, "--format", "json",
                       "-o", str(folder / "report.json")), split=True)
        step("`stratmap report --format html`",
             _stratmap("-v", "report", str(plan), "--db", url, "--format", "html",
                       "-o", str(folder / "report.html")), split=True)
    size = sum(p.stat().st_size for p in folder.glob("store.db*"))
    rows.append(Row(deployment, latency, issues, "store size (KB per issue)",
                    round(size / 1024 / issues, 2), 0, 0, f"{size / 2**20:.1f} MB in all"))
    shutil.rmtree(folder)
    return rows


def markdown(rows: list[Row]) -> str:
    out = ["| deployment | latency | issues | step | wall (s) | peak RSS (MB) | requests | note |",
           "| --- | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    for r in rows:
        value = f"{r.wall_s}" if not r.step.startswith("store") else f"{r.wall_s} KB"
        out.append(f"| {r.deployment} | {r.latency_ms:g} ms | {r.issues} | {r.step} | {value} "
                   f"| {r.peak_rss_mb or ''} | {r.requests or ''} | {r.note} |")
    return "\n".join(out)


def run_all(sizes: list[int], *, modes: list[str], latency: float,
            changed: bool = True) -> list[Row]:
    """Every size in every mode, in a scratch folder."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="stratmap-e2e-") as work:
        for deployment in modes:
            for issues in sizes:
                rows.extend(run_size(deployment, latency, issues, Path(work), changed=changed))
    return rows


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--issues", default="2000,20000", help="sizes, comma-separated")
    parser.add_argument("--latency", type=float, default=50.0, help="ms per request")
    parser.add_argument("--modes", default="datacenter", help="cloud,datacenter")
    parser.add_argument("--no-changed", action="store_true", help="skip the 1%% change run")
    args = parser.parse_args(argv)
    rows = run_all([int(n) for n in args.issues.split(",")], modes=args.modes.split(","),
                   latency=args.latency, changed=not args.no_changed)
    for row in rows:
        print(json.dumps(asdict(row)))
    print(markdown(rows))
    return [asdict(r) for r in rows]


if __name__ == "__main__":
    main()
