"""Declared status from a Jira field: an epic's status or health field, set by someone.

The source's ``declared_status_field`` names a field by id (``customfield_10050``) or name
(``Health``); ``/rest/api/N/field`` resolves the other half, since Cloud's changelog names
a custom field by ``fieldId`` and Data Center's only by its name (``field``). Each change of
the field in an issue's changelog is a declaration by the change's author, at its time; a
value set when the issue was created (the first change's ``fromString``, or a value without
any change) is the reporter's, at creation. Values map to ``on_track``/``at_risk`` through
``declared_status_values`` (any case); any other value, or none, withdraws the claim.

Pure functions over the payloads, like :mod:`connectors.jira.payloads`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from stratmap.connectors.jira.payloads import account_id, history_order, parse_time
from stratmap.models.records import Declaration, DeclaredStatus

DEFAULT_VALUES: dict[str, str] = {
    "on track": "on_track", "green": "on_track",
    "at risk": "at_risk", "amber": "at_risk", "red": "at_risk", "off track": "at_risk",
}
"""What a status or health field's usual values declare, by their case-folded text."""


@dataclass(frozen=True, slots=True)
class DeclaredField:
    """The field a source reads declarations from, resolved against the site's fields."""

    id: str
    name: str
    values: Mapping[str, str]
    """Case-folded value -> ``on_track`` or ``at_risk``."""

    def declares(self, value: str | None) -> DeclaredStatus:
        mapped = self.values.get((value or "").strip().casefold())
        return DeclaredStatus(mapped) if mapped else DeclaredStatus.UNDECLARED

    def names(self, entry: Mapping[str, Any]) -> bool:
        """Whether a changelog item is a change of this field."""
        if entry.get("fieldId"):
            return str(entry["fieldId"]) == self.id
        return str(entry.get("field") or "").casefold() == self.name.casefold()


def declared_field(wanted: str | None, values: Mapping[str, str] | None,
                   fields: Iterable[Mapping[str, Any]]) -> DeclaredField | None:
    """The field ``wanted`` names (its id or name, any case) among the site's ``fields``;
    None when no field is wanted or the site has no such field."""
    if wanted is None:
        return None
    table = {k.strip().casefold(): v for k, v in (values or DEFAULT_VALUES).items()}
    folded = wanted.strip().casefold()
    for entry in fields:
        ident, name = str(entry.get("id") or ""), str(entry.get("name") or "")
        if ident and (ident.casefold() == folded or name.casefold() == folded):
            return DeclaredField(id=ident, name=name or ident, values=table)
    return None


def field_value(value: object) -> str | None:
    """A field's value as text: a select option's ``value``, a status's ``name``, a string."""
    if isinstance(value, Mapping):
        text = value.get("value") or value.get("name")
        return str(text) if text else None
    if isinstance(value, str) and value:
        return value
    return None


def declarations(source: str, issue: Mapping[str, Any], field: DeclaredField, *,
                 histories: Iterable[Mapping[str, Any]], cloud: bool,
                 user_names: Mapping[str, str] | None = None) -> tuple[Declaration, ...]:
    """The declarations an issue's field and changelog hold, oldest first."""
    key = str(issue["key"])
    fields: Mapping[str, Any] = issue.get("fields") or {}
    found: list[Declaration] = []

    def author(user: object) -> str | None:
        ident = account_id(user, cloud=cloud)
        return (user_names or {}).get(ident, ident) if ident else None

    created = parse_time(fields.get("created"))
    reporter = author(fields.get("reporter"))

    def at_creation(value: str | None) -> None:
        if value and created is not None:
            found.append(Declaration(source=source, subject=key, declaration_id="created",
                                     at=created, author=reporter,
                                     status=field.declares(value), said=value,
                                     where=field.name))

    for _, history in sorted(((history_order(h), h) for h in histories),
                             key=lambda pair: pair[0]):
        at = parse_time(history.get("created"))
        changes = [e for e in history.get("items") or [] if field.names(e)]
        if at is None or not changes:
            continue
        entry = changes[-1]
        if not found:
            at_creation(entry.get("fromString"))
        value = entry.get("toString")
        found.append(Declaration(
            source=source, subject=key, declaration_id=str(history.get("id")), at=at,
            author=author(history.get("author")), status=field.declares(value),
            said=str(value or ""), where=field.name))
    if not found:
        at_creation(field_value(fields.get(field.id)))
    return tuple(found)
