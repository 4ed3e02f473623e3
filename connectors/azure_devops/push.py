"""``stratmap push`` on Azure DevOps: a milestone's due date and owner onto its Epic or Feature.

A selector that is exactly ``{parent: ID}`` names a container: the Epic or Feature whose
children the milestone holds. Reading is one ``workitemsbatch`` for every named container;
writing is one JSON Patch per field::

    PATCH {url}/{project}/_apis/wit/workitems/{id}?api-version=7.1
    Content-Type: application/json-patch+json
    [{"op": "test", "path": "/rev", "value": REV},
     {"op": "add", "path": "/fields/Microsoft.VSTS.Scheduling.TargetDate",
      "value": "2026-10-01T00:00:00Z"}]                  (or /fields/System.AssignedTo)

The ``test`` of ``/rev`` makes the write conditional: if anyone edited the item since
``check`` read it, Azure DevOps refuses the whole patch and nothing is overwritten
(:class:`connectors.azure_devops.transport.RevisionMoved`). The revision a write answers
is remembered, so a second field of the same item is guarded by the first write's revision.
The owner is written as the plan's account for the person on this source (the identity's
``uniqueName``, an e-mail for Entra ID users). The token needs Work Items (Read & write).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from stratmap.connectors.azure_devops.transport import API_VERSION, classify_write
from stratmap.connectors.base import (
    Difference,
    PushCheck,
    RequestCount,
    Target,
    due_difference,
)

if TYPE_CHECKING:
    from stratmap.connectors.azure_devops.connector import AzureDevopsConnector

TARGET_DATE = "Microsoft.VSTS.Scheduling.TargetDate"
ASSIGNED_TO = "System.AssignedTo"
PATHS = {"due": f"/fields/{TARGET_DATE}", "assignee": f"/fields/{ASSIGNED_TO}"}


def _number(value: object) -> int | None:
    text = str(value).rsplit("#", 1)[-1]
    return int(text) if text.isdigit() else None


def check(connector: AzureDevopsConnector, targets: Sequence[Target]) -> PushCheck:
    """The Epics' and Features' target dates and assignees against the plan's."""
    from stratmap.connectors.azure_devops.connector import identity

    found = PushCheck()
    wanted = [(t, _number(t.criteria["parent"])) for t in targets
              if set(t.criteria) == {"parent"}]
    for target, number in wanted:
        if number is None:
            found.missing.append(f"parent {target.criteria['parent']!r} (for "
                                 f"{target.milestone}) is not a work item id")
    numbers = sorted({n for _, n in wanted if n is not None})
    items: dict[int, dict[str, Any]] = {}
    for start in range(0, len(numbers), 200):
        response = connector.api.send(
            "POST", f"{connector.base}/workitemsbatch", params={"api-version": API_VERSION},
            json={"ids": numbers[start:start + 200],
                  "fields": ["System.Id", "System.WorkItemType", "System.Title", TARGET_DATE,
                             ASSIGNED_TO], "errorPolicy": "omit"},
            count=RequestCount(), what=f"reading the Epics and Features of {connector.project}")
        for row in connector._json(response.json(), "value", what="workitemsbatch")["value"]:
            if isinstance(row, dict):
                items[int(row["id"])] = row
    for target, number in wanted:
        if number is None:
            continue
        row = items.get(number)
        if row is None:
            found.missing.append(f"work item {number} (for {target.milestone}) does not exist "
                                 f"in the project {connector.project} on '{connector.name}', "
                                 "or the token cannot see it")
            continue
        fields = row.get("fields") or {}
        kind = str(fields.get("System.WorkItemType") or "work item")
        container = f"{kind} {number}"
        ref = f"{number}@{int(row['rev'])}"
        if target.due is not None:
            raw = fields.get(TARGET_DATE)
            current = date.fromisoformat(str(raw)[:10]) if raw else None
            difference = due_difference(target, target.due, current, container=container,
                                        ref=ref)
            if difference is not None:
                found.differences.append(difference)
        if target.owner_account is not None:
            assigned = fields.get(ASSIGNED_TO)
            if (identity(assigned) or "").casefold() != target.owner_account.casefold():
                shown = (assigned.get("displayName") or identity(assigned)
                         if isinstance(assigned, dict) else None)
                found.differences.append(Difference(
                    milestone=target.milestone, container=container, field="assignee",
                    tracker=str(shown) if shown else None, plan=target.owner_account,
                    ref=ref))
    return found


def apply(connector: AzureDevopsConnector, difference: Difference) -> None:
    """Write one difference :func:`check` found, guarded by a ``test`` of ``/rev``."""
    path = PATHS.get(difference.field)
    if path is None:
        raise ValueError(f"Azure DevOps has no pushable field {difference.field!r}")
    number_text, _, rev_text = difference.ref.partition("@")
    number = int(number_text)
    rev = connector.revisions.get(number, int(rev_text))
    value: str = difference.plan
    if difference.field == "due":
        value = f"{date.fromisoformat(difference.plan).isoformat()}T00:00:00Z"
    response = connector.api.send(
        "PATCH", f"{connector.base}/workitems/{number}", params={"api-version": API_VERSION},
        json=[{"op": "test", "path": "/rev", "value": rev},
              {"op": "add", "path": path, "value": value}],
        headers={"Content-Type": "application/json-patch+json"}, count=RequestCount(),
        what=f"setting the {difference.field} of {difference.container}",
        classify=classify_write(connector.name))
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("rev"), int):
        connector.revisions[number] = body["rev"]
