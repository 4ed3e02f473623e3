"""JQL built by the connector: quoting, the window query, and checks on plan-supplied JQL.

A plan contributes JQL in two ways: the source's ``scope`` and a selector's ``jql``. Both
are JQL by design, so they cannot be quoted; instead each is wrapped in parentheses and
first checked to be one balanced expression without ``ORDER BY``, so that it cannot close
the parentheses around it and widen the query past the scope. Plain values (a label, a key)
go through :func:`jql_quote`.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jql_quote(value: str) -> str:
    """``value`` as one JQL string literal, whatever characters it holds."""
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (JQL accepts them as a date), exact, never rounded up."""
    if moment.tzinfo is None:
        raise ValueError("a window bound must be timezone-aware")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _unquoted(jql: str) -> str | None:
    """``jql`` with its string literals blanked out, or None if a literal is unterminated."""
    out: list[str] = []
    quote: str | None = None
    escaped = False
    for char in jql:
        if quote is None:
            if char in "\"'":
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


def jql_problem(jql: str) -> str | None:
    """Why ``jql`` cannot be wrapped as ``(<jql>)`` safely, or None when it can."""
    if not jql.strip():
        return "it is empty"
    bare = _unquoted(jql)
    if bare is None:
        return "a quoted string is not closed"
    depth = 0
    for char in bare:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return "it closes a parenthesis it did not open"
    if depth:
        return "a parenthesis is not closed"
    if _ORDER_BY.search(bare):
        return "it has an ORDER BY (stratmap orders the query itself)"
    return None


def window_jql(scope: str, since: datetime | None) -> str:
    """The sync query: the scope, bounded below by ``since``, oldest update first."""
    if since is None:
        return f"({scope}) ORDER BY updated ASC"
    return f"({scope}) AND updated >= {epoch_ms(since)} ORDER BY updated ASC"


def selector_jql(scope: str, jql: str) -> str:
    """A plan selector's JQL, limited to the scope."""
    return f"({scope}) AND ({jql})"
