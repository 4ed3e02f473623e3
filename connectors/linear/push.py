"""``stratmap push`` on Linear: a milestone's due date and owner onto the project it names.

A selector that is exactly ``{project: NAME}`` names a container: the Linear project of
that name. Reading is one query per project name; writing is Linear's
``projectUpdate(id, input: ProjectUpdateInput)`` mutation (``packages/sdk/src/schema.graphql``
of ``linear/linear``), one field at a time::

    query StratmapProjects($name: String!) {
      projects(filter: {name: {eq: $name}}, first: 10) {
        nodes { id name url targetDate lead { id name displayName email } } } }
    mutation StratmapProjectUpdate($id: String!, $input: ProjectUpdateInput!) {
      projectUpdate(id: $id, input: $input) { success project { id targetDate lead { id } } } }

with ``input`` ``{"targetDate": "YYYY-MM-DD"}`` (a TimelessDate) or ``{"leadId": USER_ID}``.
Not ``projectUpdateCreate``, which posts a status update to the project. The owner is
pushed as the project's lead when the plan knows the owner's Linear user id
(``accounts:``). A name shared by several projects is reported, not guessed. Rate limits
and refusals are read as for the sync (:mod:`connectors.linear.transport`: a spent budget
is an HTTP 400 whose error says ``RATELIMITED``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from stratmap.connectors.base import (
    AuthError,
    Difference,
    FatalSourceError,
    PushCheck,
    RequestCount,
    Target,
    due_difference,
)

if TYPE_CHECKING:
    from stratmap.connectors.linear.connector import LinearConnector

PROJECTS_QUERY = """\
query StratmapProjects($name: String!) {
  projects(filter: {name: {eq: $name}}, first: 10) {
    nodes { id name url targetDate lead { id name displayName email } }
  }
}"""

UPDATE_MUTATION = """\
mutation StratmapProjectUpdate($id: String!, $input: ProjectUpdateInput!) {
  projectUpdate(id: $id, input: $input) { success project { id targetDate lead { id } } }
}"""

WRITE_HINT = ("the key's user must be able to edit the project (a member of its teams; a "
              "guest cannot); `stratmap push` without --apply only reads")


def check(connector: LinearConnector, targets: Sequence[Target]) -> PushCheck:
    """The projects' target dates and leads against the plan's."""
    found = PushCheck()
    projects: dict[str, list[Mapping[str, Any]]] = {}
    count = RequestCount()
    for target in targets:
        if set(target.criteria) != {"project"}:
            continue
        name = str(target.criteria["project"])
        if name not in projects:
            answer = connector.api.query(PROJECTS_QUERY, {"name": name}, count=count,
                                         what=f"reading the project {name!r}")
            nodes = ((answer.data.get("projects") or {}).get("nodes")) or []
            projects[name] = [n for n in nodes if isinstance(n, Mapping)]
        rows = projects[name]
        if len(rows) != 1:
            found.missing.append(
                f"project {name!r} (for {target.milestone}) "
                + ("does not exist in Linear, or the key cannot see it" if not rows else
                   f"names {len(rows)} Linear projects; rename them apart to push")
                + f" on '{connector.name}'")
            continue
        project = rows[0]
        container = f"project {name!r}"
        ref = str(project["id"])
        if target.due is not None:
            raw = project.get("targetDate")
            current = date.fromisoformat(str(raw)[:10]) if raw else None
            difference = due_difference(target, target.due, current, container=container,
                                        ref=ref)
            if difference is not None:
                found.differences.append(difference)
        if target.owner_account is not None:
            lead = project.get("lead")
            lead_id = lead.get("id") if isinstance(lead, Mapping) else None
            if lead_id != target.owner_account:
                shown = (lead.get("displayName") or lead.get("name")
                         if isinstance(lead, Mapping) else None)
                found.differences.append(Difference(
                    milestone=target.milestone, container=container, field="assignee",
                    tracker=str(shown) if shown else None, plan=target.owner_account, ref=ref))
    return found


def apply(connector: LinearConnector, difference: Difference) -> None:
    """Write one difference :func:`check` found with ``projectUpdate``."""
    if difference.field == "due":
        update: dict[str, str] = {"targetDate": date.fromisoformat(difference.plan).isoformat()}
    elif difference.field == "assignee":
        update = {"leadId": difference.plan}
    else:
        raise ValueError(f"a Linear project has no pushable field {difference.field!r}")
    what = f"setting the {difference.field} of {difference.container}"
    try:
        answer = connector.api.query(UPDATE_MUTATION, {"id": difference.ref, "input": update},
                                     count=RequestCount(), what=what)
    except AuthError as error:
        raise AuthError(connector.name, f"{what} was refused: {error.message}",
                        hint=WRITE_HINT) from error
    payload = answer.data.get("projectUpdate")
    if not isinstance(payload, Mapping) or payload.get("success") is not True:
        raise FatalSourceError(connector.name, f"{what}: Linear did not confirm the update",
                               hint="run `stratmap push` again to see what is left")
