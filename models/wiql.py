"""WIQL (Azure DevOps' work item query language) from the plan: quoting and checks.

Values the plan gives as values (a project, an area path, a tag, a moment) are written as
WIQL string literals by :func:`quoted`, which doubles a single quote as WIQL does, so no
value can end its literal and change the query. A condition the plan gives as WIQL (a
source's ``scope``, a selector's ``wiql``) cannot be quoted: the connector wraps it in
parentheses, and :func:`wiql_problem` first checks that it is one balanced condition
without a clause of its own (``SELECT``, ``FROM``, ``ORDER BY``, ``ASOF``, ``MODE``), so it
cannot close the parentheses and widen the query past the source's project. ``validate``
runs the same check at the line of the plan that holds it.
"""

from __future__ import annotations

import re

from stratmap.models.jql import parenthesis_problem

_CLAUSE = re.compile(r"\b(select|from|order\s+by|asof|mode)\b", re.IGNORECASE)


def quoted(value: str) -> str:
    """``value`` as a WIQL string literal: ``'it''s'``."""
    return "'" + value.replace("'", "''") + "'"


def _unquoted(wiql: str) -> str | None:
    """``wiql`` with string literals and ``[field names]`` blanked out, or None when one is
    not closed. WIQL escapes a quote inside a literal by doubling it."""
    out: list[str] = []
    closing: str | None = None
    i = 0
    while i < len(wiql):
        char = wiql[i]
        if closing is None:
            if char in "'\"":
                closing = char
            elif char == "[":
                closing = "]"
            else:
                out.append(char)
                i += 1
                continue
            out.append(" ")
        elif char == closing:
            if closing != "]" and wiql[i + 1:i + 2] == closing:
                i += 1  # a doubled quote is a quote inside the literal
            else:
                closing = None
        i += 1
    return None if closing is not None else "".join(out)


def wiql_problem(wiql: str) -> str | None:
    """Why ``wiql`` cannot be ANDed as ``(<wiql>)`` safely, or None when it can."""
    if not wiql.strip():
        return "it is empty"
    bare = _unquoted(wiql)
    if bare is None:
        return "a quoted string or a [field name] is not closed"
    unbalanced = parenthesis_problem(bare)
    if unbalanced:
        return unbalanced
    if ";" in bare:
        return "it has a ';'"
    clause = _CLAUSE.search(bare)
    if clause:
        return (f"it has its own {clause.group(1).upper()} clause (write only the condition: "
                "stratmap adds SELECT, FROM and ORDER BY itself)")
    return None
