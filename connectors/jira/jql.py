"""JQL built by the connector: quoting, the window query, and checks on plan-supplied JQL.

A plan contributes JQL in two ways: the source's ``scope`` and a selector's ``jql``. Both
are JQL by design, so they cannot be quoted; instead each is wrapped in parentheses and
first checked to be one balanced expression without ``ORDER BY``, so that it cannot close
the parentheses around it and widen the query past the scope. Plain values (a label, a key)
go through :func:`jql_quote`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stratmap.models.jql import jql_problem

__all__ = ["epoch_ms", "jql_problem", "jql_quote", "selector_jql", "window_jql"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def jql_quote(value: str) -> str:
    """``value`` as one JQL string literal, whatever characters it holds."""
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch (JQL accepts them as a date), exact, never rounded up."""
    if moment.tzinfo is None:
        raise ValueError("a window bound must be timezone-aware")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def window_jql(scope: str, since: datetime | None) -> str:
    """The sync query: the scope, bounded below by ``since``, oldest update first."""
    if since is None:
        return f"({scope}) ORDER BY updated ASC"
    return f"({scope}) AND updated >= {epoch_ms(since)} ORDER BY updated ASC"


def selector_jql(scope: str, jql: str) -> str:
    """A plan selector's JQL, limited to the scope."""
    return f"({scope}) AND ({jql})"
