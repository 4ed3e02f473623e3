"""``stratmap push`` on Redmine: a milestone's due date, onto the project's version of that
name (its ``effective_date``; a version has no assignee).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from stratmap.connectors.base import (
    AuthError,
    Difference,
    FatalSourceError,
    PushCheck,
    RequestCount,
    Target,
    dated,
    due_difference,
)
from stratmap.connectors.redmine.connector import WRITE_HINT

if TYPE_CHECKING:
    from collections.abc import Sequence

    from stratmap.connectors.redmine.connector import RedmineConnector

def check(connector: RedmineConnector, targets: Sequence[Target]) -> PushCheck:
    """The versions the plan names (``{version: NAME}``), against its due days.

    Only reads: one ``versions.json`` of the source's project, and only when some target
    has a due day to compare (a version has no assignee).
    """
    found = PushCheck()
    wanted = dated(targets, "version")
    if not wanted:
        return found
    project = connector.config.project
    if not project:
        for target, _ in wanted:
            found.missing.append(
                f"version '{target.criteria['version']}' (for {target.milestone}): "
                f"'{connector.name}' names no project, and Redmine's versions belong to one; "
                "set the source's project to push their dates")
        return found
    listed = connector._get(f"/projects/{project}/versions.json", None, RequestCount())
    by_name: dict[str, list[dict[str, Any]]] = {}
    for version in listed.get("versions") or []:
        by_name.setdefault(str(version.get("name")), []).append(version)
    for target, due in wanted:
        name = str(target.criteria["version"])
        versions = by_name.get(name, [])
        if len(versions) != 1:
            found.missing.append(
                f"version '{name}' (for {target.milestone}) does not exist in the project "
                f"{project} of '{connector.name}', or the key cannot see it" if not versions
                else f"version '{name}' (for {target.milestone}) names "
                f"{len(versions)} versions the project {project} sees (ids "
                f"{', '.join(str(v.get('id')) for v in versions)}, some shared by other "
                "projects); rename one to push its date")
            continue
        version = versions[0]
        raw = version.get("due_date")
        current = date.fromisoformat(str(raw)) if raw else None
        difference = due_difference(target, due, current, container=f"version '{name}'",
                                    ref=str(version["id"]))
        if difference is not None:
            found.differences.append(difference)
    return found

def apply(connector: RedmineConnector, difference: Difference) -> None:
    """Write one difference :func:`check` found: the version's date."""
    if difference.field != "due":
        raise ValueError(f"a Redmine version has no pushable field {difference.field!r}")
    day = date.fromisoformat(difference.plan)
    path = f"/versions/{int(difference.ref)}.json"
    try:
        connector._send("PUT", path, {"version": {"effective_date": day.isoformat()}},
                   RequestCount())
    except AuthError as error:
        raise AuthError(connector.name, f"setting the date of {difference.container} was "
                        f"refused: {error.message}", hint=WRITE_HINT) from error
    except FatalSourceError as error:
        raise FatalSourceError(
            connector.name, f"setting the date of {difference.container} failed: "
            f"{error.message}",
            hint="check that the version still exists (renamed or deleted: run "
                 "`stratmap push` again) and is not locked against edits") from error
