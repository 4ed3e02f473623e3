"""Checks on plan-supplied JQL (a Jira source's ``scope``, a selector's ``jql``).

Both are JQL by design, so they cannot be quoted; the connector wraps each in parentheses,
and first checks here that it is one balanced expression without ``ORDER BY``, so that it
cannot close the parentheses around it and widen the query past the scope. ``validate``
runs the same check, at the line of the plan that holds the JQL.
"""

from __future__ import annotations

import re

_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


def _unquoted(jql: str) -> str | None:
    """``jql`` with its string literals blanked out, or None if a literal is unterminated."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for char in jql:
        if quote is None:
            if escaped:  # JQL's backslash escape outside quotes: the character is a literal
                escaped = False
                out.append(" ")
            elif char == "\\":
                escaped = True
                out.append(" ")
            elif char in "\"'":
                quote = char
                out.append(" ")
            else:
                out.append(char)
        elif escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == quote:
            quote = None
            out.append(" ")
    return None if quote is not None else "".join(out)


def parenthesis_problem(bare: str) -> str | None:
    """Why the parentheses of a query whose literals are blanked out (JQL's or WIQL's) do
    not balance, or None when they do: wrapped as ``(<query>)``, it cannot close the
    wrapping parenthesis."""
    depth = 0
    for char in bare:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return "it closes a parenthesis it did not open"
    return "a parenthesis is not closed" if depth else None


def jql_problem(jql: str) -> str | None:
    """Why ``jql`` cannot be wrapped as ``(<jql>)`` safely, or None when it can."""
    if not jql.strip():
        return "it is empty"
    bare = _unquoted(jql)
    if bare is None:
        return "a quoted string is not closed"
    unbalanced = parenthesis_problem(bare)
    if unbalanced:
        return unbalanced
    if _ORDER_BY.search(bare):
        return "it has an ORDER BY (stratmap orders the query itself)"
    return None
