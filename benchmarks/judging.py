"""Judging at scale: ``python -m benchmarks.judging --items 100000 --milestones 500``.

Builds a plan (goals of ten milestones, owners, seniors, feedback rules) and evidence
(items under one epic per milestone, some chosen by label or by key, with status changes
and comments by known and unknown people), then times :func:`judgement.judge` alone and
reports memory. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

AS_OF = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def build(items: int, milestones: int, *, seed: int = 5) -> tuple[Any, Any]:
    from stratmap.models.plan import Plan
    from stratmap.models.records import (
        Account,
        Comment,
        Evidence,
        StatusCategory,
        StatusChange,
        WorkItem,
    )

    rng = random.Random(seed)
    people = {f"p{n:03d}": {"name": f"Person {n}", "email": f"p{n:03d}@northwind.example",
                            "senior": n < 10, "accounts": {"jira": f"acc{n:03d}"}}
              for n in range(100)}
    per_goal = 10
    goals: list[dict[str, Any]] = []
    chooser: list[dict[str, Any]] = []
    for m in range(milestones):
        if m % per_goal == 0:
            goals.append({"id": f"g{len(goals):03d}", "title": f"Goal {len(goals)}",
                          "owner": f"p{len(goals) % 100:03d}", "milestones": []})
        kind = ("epic", "epic", "epic", "epic", "epic", "epic", "epic", "labels", "labels",
                "keys")[m % 10]
        chooser.append({"kind": kind, "m": m})
        start = date(2026, 1, 1) + timedelta(days=rng.randint(0, 200))
        milestone = {"id": f"m{m:03d}", "title": f"Milestone {m}", "owner": f"p{m % 97:03d}",
                     "start": start.isoformat(),
                     "due": (start + timedelta(days=rng.randint(60, 400))).isoformat(),
                     "work": []}
        goals[-1]["milestones"].append(milestone)
    plan = Plan.model_validate({
        "version": 1, "name": "Scale", "leader": "p000", "people": people,
        "sources": {"jira": {"kind": "jira", "url": "https://jira.example", "scope": "project = S",
                             "token": "env:JIRA_API_TOKEN"}},
        "defaults": {"feedback": {"from": "seniors", "every": "14d"}, "stall_after": "14d"},
        "goals": [{**g, "milestones": [
            {**m, "work": [_selector(chooser[int(m["id"][1:])], items, milestones)]}
            for m in g["milestones"]]} for g in goals],
    })
    accounts = [f"acc{n:03d}" for n in range(100)] + [f"stranger{n}" for n in range(100)]
    records: list[WorkItem] = []
    changes: list[StatusChange] = []
    comments: list[Comment] = []
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(items):
        m = n % milestones
        created = t0 + timedelta(minutes=rng.randint(0, 60 * 24 * 400))
        moments = sorted(created + timedelta(hours=rng.randint(1, 24 * 60))
                         for _ in range(rng.randint(0, 3)))
        category = StatusCategory.TODO
        for k, at in enumerate(moments):
            after = (StatusCategory.IN_PROGRESS if k < len(moments) - 1 or rng.random() < 0.4
                     else StatusCategory.DONE)
            changes.append(StatusChange(
                source="jira", item_key=f"S-{n}", change_id=f"{n}.{k}", at=at,
                author=rng.choice(accounts), from_status=category.value,
                to_status=after.value, from_category=category, to_category=after))
            category = after
        for k in range(rng.choice((0, 0, 1, 1, 2, 3))):
            comments.append(Comment(
                source="jira", item_key=f"S-{n}", comment_id=f"{n}.{k}",
                at=created + timedelta(hours=rng.randint(1, 24 * 90)),
                author=rng.choice(accounts), body="looks good"))
        updated = max([created, *moments])
        records.append(WorkItem(
            source="jira", key=f"S-{n}", title=f"Item {n}", item_type="Story",
            status=category.value, status_category=category,
            assignee=rng.choice(accounts) if rng.random() < 0.8 else None,
            created=created, updated=updated,
            resolved=moments[-1] if category is StatusCategory.DONE else None,
            parent=f"EPIC-{m}", labels=(f"m{m}",), points=float(rng.choice((1, 2, 3, 5, 8)))))
    # In the order Store.evidence() returns them (ORDER BY source, key / item, time, id):
    # what judge() is given in production.
    evidence = Evidence(
        items=tuple(sorted(records, key=lambda i: (i.source, i.key))),
        changes=tuple(sorted(changes, key=lambda c: (c.source, c.item_key, c.at, c.change_id))),
        comments=tuple(sorted(comments,
                              key=lambda c: (c.source, c.item_key, c.at, c.comment_id))),
        accounts=tuple(Account(source="jira", account_id=a, display_name=a) for a in accounts),
    )
    return plan, evidence


def _selector(choice: dict[str, Any], items: int, milestones: int) -> dict[str, Any]:
    m = choice["m"]
    if choice["kind"] == "epic":
        return {"source": "jira", "epic": f"EPIC-{m}"}
    if choice["kind"] == "labels":
        return {"source": "jira", "labels": [f"m{m}"]}
    return {"source": "jira", "keys": [f"S-{n}" for n in range(m, items, milestones)]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--milestones", type=int, default=500)
    args = parser.parse_args(argv)
    from stratmap.judgement import judge

    clock = time.perf_counter()
    plan, evidence = build(args.items, args.milestones)
    built = time.perf_counter() - clock
    before = _rss_mb()
    clock = time.perf_counter()
    report = judge(plan, evidence, as_of=AS_OF)
    seconds = time.perf_counter() - clock
    after = _rss_mb()
    out = {
        "items": len(evidence.items), "changes": len(evidence.changes),
        "comments": len(evidence.comments), "milestones": args.milestones,
        "findings": len(report.findings), "build_seconds": round(built, 2),
        "judge_seconds": round(seconds, 3), "rss_before_judge_mb": round(before, 1),
        "judge_rss_growth_mb": round(after - before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
