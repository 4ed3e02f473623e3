"""``stratmap push`` on Jira: a milestone's due date and owner onto the epic its plan names.

Only a selector that is exactly ``{epic: KEY}`` names a container. Reading is one
``GET issue/KEY?fields=duedate,assignee`` per epic; writing is ``PUT issue/KEY`` with
``{"fields": {"duedate": ...}}`` and ``PUT issue/KEY/assignee`` (Cloud: ``accountId``;
Data Center: the username, ``name``). Both answer ``204 No Content``. An edit needs the
*Edit Issues* permission (and *Assign Issues* for the assignee) in the epic's project, and
the due date on the epic's edit screen; Jira's refusal is passed on with what to change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from stratmap.connectors.base import (
    AuthError,
    Difference,
    FatalSourceError,
    NotFound,
    PushCheck,
    RequestCount,
    Target,
    due_difference,
)
from stratmap.connectors.jira.payloads import account_id

if TYPE_CHECKING:
    from stratmap.connectors.jira.connector import JiraConnector

EDIT_HINT = ("the token's account needs the Edit Issues permission (and Assign Issues for the "
             "assignee) in the epic's project; `stratmap push` without --apply only reads")


def _api(connector: JiraConnector) -> str:
    return "/rest/api/3" if connector.deployment == "cloud" else "/rest/api/2"


def _person(user: object) -> str | None:
    if not isinstance(user, Mapping):
        return None
    return str(user.get("displayName") or user.get("name") or user.get("accountId") or "") or None


def check(connector: JiraConnector, targets: Sequence[Target]) -> PushCheck:
    """The epics' due dates and assignees against the plan's."""
    found = PushCheck()
    cloud = connector.deployment == "cloud"
    count = RequestCount()
    epics: dict[str, Any] = {}
    for target in targets:
        key = str(target.criteria.get("epic") or "")
        if not key or set(target.criteria) != {"epic"}:
            continue
        if key not in epics:
            try:
                epics[key] = connector._http.get(
                    f"{_api(connector)}/issue/{key}", {"fields": "duedate,assignee"}, count=count)
            except NotFound:
                epics[key] = None
        issue = epics[key]
        if not isinstance(issue, Mapping):
            found.missing.append(f"epic {key} (for {target.milestone}) does not exist in "
                                 f"'{connector.name}', or the token cannot see it")
            continue
        raw_fields = issue.get("fields")
        fields: Mapping[str, Any] = raw_fields if isinstance(raw_fields, Mapping) else {}
        container = f"epic {key}"
        if target.due is not None:
            raw = fields.get("duedate")
            current = date.fromisoformat(str(raw)[:10]) if raw else None
            difference = due_difference(target, target.due, current, container=container,
                                        ref=key)
            if difference is not None:
                found.differences.append(difference)
        if target.owner_account is not None:
            assignee = fields.get("assignee")
            if account_id(assignee, cloud=cloud) != target.owner_account:
                found.differences.append(Difference(
                    milestone=target.milestone, container=container, field="assignee",
                    tracker=_person(assignee), plan=target.owner_account, ref=key))
    return found


def apply(connector: JiraConnector, difference: Difference) -> None:
    """Write one difference :func:`check` found."""
    count = RequestCount()
    key = difference.ref
    path: str
    body: dict[str, object]
    if difference.field == "due":
        path, body = f"{_api(connector)}/issue/{key}", {"fields": {"duedate": difference.plan}}
    elif difference.field == "assignee":
        who = "accountId" if connector.deployment == "cloud" else "name"
        path, body = f"{_api(connector)}/issue/{key}/assignee", {who: difference.plan}
    else:
        raise ValueError(f"Jira has no pushable field {difference.field!r}")
    try:
        connector._http.put(path, body, count=count)
    except AuthError as error:
        raise AuthError(connector.name, f"setting the {difference.field} of epic {key} was "
                        f"refused: {error.message}", hint=EDIT_HINT) from error
    except FatalSourceError as error:
        if isinstance(error, NotFound):
            raise
        raise FatalSourceError(
            connector.name, f"setting the {difference.field} of epic {key} failed: "
            f"{error.message}",
            hint="Jira names the field it refused; a due date must be on the epic's edit "
                 "screen, an assignee assignable in its project") from error
