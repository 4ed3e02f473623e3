"""Untrusted text (tracker and plan values) made safe to show."""

from __future__ import annotations


def visible(text: str) -> str:
    """``text`` with every character that is not printable (ESC, CR, NUL, bidi overrides,
    lone surrogates) shown escaped, as ``\\x1b``: no terminal escape or broken encoding
    reaches a terminal, a Graphviz label or a file."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() or char in "\n\t" else
                   char.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for char in text)
