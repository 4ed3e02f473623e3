"""``stratmap push`` on GitHub: a milestone's due date, onto the repository's milestone of
that title (a milestone has no assignee).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from stratmap.connectors.base import (
    Difference,
    PushCheck,
    RequestCount,
    Target,
    dated,
    due_difference,
)
from stratmap.connectors.github.connector import classify_write, due_day
from stratmap.connectors.http import Row

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stratmap.connectors.github.connector import GithubConnector

def check(connector: GithubConnector, targets: Sequence[Target]) -> PushCheck:
    """The milestones the plan names (``{milestone: TITLE}``), against its due days.

    Only reads: one listing of the repository's milestones (open and closed), and only
    when some target has a due day to compare (a milestone has no assignee).
    """
    found = PushCheck()
    wanted = dated(targets, "milestone")
    if not wanted:
        return found
    by_title: dict[str, Row] = {}
    for row in connector.api.collect(
            f"{connector.base}/milestones", params={"state": "all", "per_page": 100},
            count=RequestCount(), what=f"listing the milestones of {connector.repo}"):
        by_title.setdefault(str(row.get("title")), row)
    for target, due in wanted:
        title = str(target.criteria["milestone"])
        milestone = by_title.get(title)
        if milestone is None:
            found.missing.append(
                f"milestone '{title}' (for {target.milestone}) does not exist in the "
                f"repository {connector.repo} of '{connector.name}', or the token cannot see it")
            continue
        current = due_day(milestone.get("due_on"))
        difference = due_difference(target, due, current, container=f"milestone '{title}'",
                                    ref=str(milestone["number"]))
        if difference is not None:
            found.differences.append(difference)
    return found

def apply(connector: GithubConnector, difference: Difference) -> None:
    """Write one difference :func:`check` found: the milestone's due day."""
    if difference.field != "due":
        raise ValueError(f"a GitHub milestone has no pushable field {difference.field!r}")
    day = date.fromisoformat(difference.plan)
    connector.api.send(
        "PATCH", f"{connector.base}/milestones/{int(difference.ref)}",
        json={"due_on": f"{day.isoformat()}T12:00:00Z"}, count=RequestCount(),
        what=f"setting the due date of {difference.container} in {connector.repo}",
        classify=classify_write(
            connector.name, "check that the milestone still exists (a renamed or deleted "
            "milestone: run `stratmap push` again) and the repository's url"))
