"""Keeps secret values out of logs.

Prefect does not scrub a secret's raw value from log messages, so every secret resolved
for a source is registered here, and a filter on the handlers of the root and Prefect
loggers (the API log handler included) replaces it with ``***`` before it is written or
shipped.
"""

from __future__ import annotations

import base64
import logging
import threading
from urllib.parse import quote, quote_plus

MASK = "***"
_MIN_LENGTH = 4
_secrets: set[str] = set()
_lock = threading.Lock()


def forms(value: str) -> set[str]:
    """Every form a secret can take in text: raw, repr-escaped, URL-encoded, and base64 of
    ``user:secret`` as HTTP basic auth sends it (matched from the secret's aligned part)."""
    found = {value, repr(value)[1:-1], value.encode("unicode_escape").decode("ascii"),
             quote(value, safe=""), quote_plus(value, safe="")}
    raw = value.encode()
    for shift in range(3):
        # base64 of prefix+secret holds this run, for a prefix of each length modulo 3.
        encoded = base64.b64encode(b"\0" * shift + raw).decode()
        start = 4 if shift else 0  # the first group mixes in the prefix's bytes
        end = len(encoded) - (4 if (shift + len(raw)) % 3 else 0)
        if end - start >= 8:
            found.add(encoded[start:end])
    return {form for form in found if len(form) >= _MIN_LENGTH}


def register(value: str) -> None:
    """Remember a secret, in each of its text forms, so no log line will ever show it."""
    if len(value) >= _MIN_LENGTH:
        with _lock:
            _secrets.update(forms(value))
    install()


def redact(text: str) -> str:
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class SecretFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_FILTER = SecretFilter()


def install() -> None:
    """Put the filter on every handler of the root and ``prefect*`` loggers (idempotent)."""
    loggers = [logging.getLogger()] + [
        logger for name, logger in list(logging.Logger.manager.loggerDict.items())
        if isinstance(logger, logging.Logger) and (name == "prefect" or
                                                    name.startswith(("prefect.", "stratmap")))
    ]
    for logger in loggers:
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
