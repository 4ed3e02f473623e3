"""``stratmap push`` on GitLab: a milestone's due date, onto the milestone of that title.

A ``{milestone: TITLE}`` selector names the milestone of that title the project's issues can
carry: the project's own, or one of its ancestor groups' (``include_ancestors``, GitLab
16.7+). Only its ``due_date`` is pushed (a milestone has no assignee)::

    GET /api/v4/projects/:id/milestones?include_ancestors=true&per_page=100   paged
    PUT /api/v4/projects/:project_id/milestones/:milestone_id  {"due_date": "YYYY-MM-DD"}
    PUT /api/v4/groups/:group_id/milestones/:milestone_id      (a group milestone)

Editing needs a token with the ``api`` scope (``read_api`` cannot write) whose user has at
least the Reporter role (Planner too; Developer before GitLab 15.0) where the milestone
lives: the project, or the group for a group milestone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

import httpx

from stratmap.connectors.base import (
    Difference,
    PushCheck,
    RequestCount,
    Target,
    dated,
    due_difference,
)
from stratmap.connectors.gitlab.connector import classify
from stratmap.connectors.http import Classify, Row, refusals_explained

if TYPE_CHECKING:
    from stratmap.connectors.gitlab.connector import GitlabConnector

WRITE_HINT = ("the token needs the api scope (read_api cannot write) and its user at least the "
              "Reporter role (or Planner) where the milestone lives: the project, or the group "
              "for a group milestone; `stratmap push` without --apply only reads")


def classify_write(source: str, what_to_fix: str) -> Classify:
    """GitLab's reading of an edit's answer: as :func:`classify`, but a refusal carries
    GitLab's own message and says what the token needs for writing."""
    return refusals_explained(classify(source), source=source, tracker="GitLab", said=_message,
                              auth_hint=lambda _response: WRITE_HINT, what_to_fix=what_to_fix)


def _message(response: httpx.Response) -> str:
    """GitLab's explanation: ``message`` (text, or field -> messages), ``error``,
    ``error_description``."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:200]
    if not isinstance(body, dict):
        return ""
    parts: list[str] = []
    for key in ("message", "error", "error_description"):
        value = body.get(key)
        if isinstance(value, dict):
            parts.extend(f"{name} {'; '.join(map(str, said)) if isinstance(said, list) else said}"
                         for name, said in value.items())
        elif value:
            parts.append(str(value))
    return "; ".join(parts)[:500]


def _milestone_ref(milestone: Row) -> str | None:
    """Where a listed milestone is edited: ``projects/P/milestones/M`` or
    ``groups/G/milestones/M`` (its numeric ``id``, not the ``iid``)."""
    if milestone.get("id") is None:
        return None
    for owner, key in (("projects", "project_id"), ("groups", "group_id")):
        if milestone.get(key) is not None:
            return f"{owner}/{int(milestone[key])}/milestones/{int(milestone['id'])}"
    return None


def check(connector: GitlabConnector, targets: Sequence[Target]) -> PushCheck:
    """The milestones the plan names (``{milestone: TITLE}``), against its due days.

    Only reads: one listing of the project's and its groups' milestones (every state),
    and only when some target has a due day to compare (a milestone has no assignee).
    """
    found = PushCheck()
    wanted = dated(targets, "milestone")
    if not wanted:
        return found
    by_title: dict[str, list[Row]] = {}
    for row in connector.api.collect(
            f"{connector.base}/milestones",
            params={"include_ancestors": "true", "per_page": 100}, count=RequestCount(),
            what=f"listing the milestones of {connector.project}"):
        by_title.setdefault(str(row.get("title")), []).append(row)
    for target, due in wanted:
        title = str(target.criteria["milestone"])
        rows = by_title.get(title, [])
        if not rows:
            found.missing.append(
                f"milestone '{title}' (for {target.milestone}) does not exist in the "
                f"project {connector.project} or its groups on '{connector.name}', or the token "
                "cannot see it")
            continue
        # GitLab lets a project milestone share a title with a group one; an issue's
        # milestone is then ambiguous by title, so the project's own is the container.
        milestone = next((r for r in rows if r.get("project_id") is not None), rows[0])
        ref = _milestone_ref(milestone)
        if ref is None:
            found.missing.append(f"milestone '{title}' (for {target.milestone}) has "
                                 "neither a project nor a group in GitLab's answer")
            continue
        raw = milestone.get("due_date")
        current = date.fromisoformat(str(raw)) if raw else None
        difference = due_difference(target, due, current, container=f"milestone '{title}'",
                                    ref=ref)
        if difference is not None:
            found.differences.append(difference)
    return found

def apply(connector: GitlabConnector, difference: Difference) -> None:
    """Write one difference :func:`check` found: the milestone's due date."""
    if difference.field != "due":
        raise ValueError(f"a GitLab milestone has no pushable field {difference.field!r}")
    day = date.fromisoformat(difference.plan)
    connector.api.send(
        "PUT", f"{connector.root}/{difference.ref}", json={"due_date": day.isoformat()},
        count=RequestCount(),
        what=f"setting the due date of {difference.container} ({difference.ref})",
        classify=classify_write(
            connector.name, "check that the milestone still exists (a renamed or deleted "
            "milestone: run `stratmap push` again) and the source's url"))
