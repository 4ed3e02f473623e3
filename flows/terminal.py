"""Tracker and plan text on the terminal: always printed as text, never as markup.

Titles, names and error messages come from trackers and plan files, so they may hold rich
markup (``[link=...]``, ``[/docs]``) or terminal escape sequences. :func:`shown` makes a
value safe to put inside a rich markup string: control characters are shown escaped
(``\\x1b``) and brackets are escaped, so the text prints exactly as written.
"""

from __future__ import annotations

from rich.markup import escape

from stratmap.flows.redact import redact
from stratmap.models.text import visible

__all__ = ["plain", "shown", "visible"]


def plain(value: object) -> str:
    """Tracker or plan text as it may be printed as plain text (a :class:`rich.text.Text`):
    secrets masked, control characters (terminal escape sequences among them) shown
    escaped."""
    return visible(redact(str(value)))


def shown(value: object) -> str:
    """``value`` as text to put inside a rich markup string: no markup, no escapes, and
    no secret (masked in every form before it is escaped)."""
    return escape(plain(value))
