"""Resolving ``env:VAR`` and ``block:NAME`` references; secrets never come from the plan."""

from __future__ import annotations

import os
from typing import Any

from stratmap.connectors.base import FatalSourceError
from stratmap.flows import redact


def resolve_secret(source: str, reference: str) -> str:
    """The secret named by ``reference`` for ``source``, or a clear error saying what to set."""
    scheme, _, name = reference.partition(":")
    if scheme == "env":
        value = os.environ.get(name)
        if not value:
            raise FatalSourceError(
                source, f"the environment variable {name} is not set",
                hint=f"export {name}=... before running, or use block:NAME for a Prefect block",
            )
    elif scheme == "block":
        value = _from_block(source, name)
    else:
        raise FatalSourceError(source, f"cannot resolve secret reference {reference!r}")
    redact.register(value)
    # A CRLF .env or a secret file ending in a newline leaves whitespace around the token:
    # it is never part of a token, so it is dropped (see the README).
    value = value.strip()
    redact.register(value)
    if not value or any(not char.isprintable() for char in value):
        raise FatalSourceError(
            source, f"the secret {reference} " + ("is empty" if not value else
                                                  "holds a control character (a line break "
                                                  "or tab inside the token)"),
            hint="set it again with the token alone, on one line",
        )
    return value


def _from_block(source: str, name: str) -> str:
    from prefect.blocks.core import Block

    try:
        block: Any = Block.load(name) if "/" in name else _load_any(name)
    except (ValueError, RuntimeError) as error:
        raise FatalSourceError(
            source, f"cannot load the Prefect block {name!r}",
            hint="create it in the Prefect UI or with `prefect block create`; names are "
                 "type-slug/block-name, e.g. stratmap-tracker-credentials/jira",
        ) from error
    from stratmap.flows.blocks import TrackerCredentials

    if isinstance(block, TrackerCredentials):
        return block.get_token()
    for attribute in ("token", "api_token", "value"):
        value = getattr(block, attribute, None)
        if value is not None:
            return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)
    if hasattr(block, "get"):
        return str(block.get())
    raise FatalSourceError(source, f"the block {name!r} holds no token")


def _load_any(name: str) -> Any:
    """A bare block name: stratmap's own credentials block, else a Secret block."""
    from prefect.blocks.system import Secret

    from stratmap.flows.blocks import TrackerCredentials

    try:
        return TrackerCredentials.load(name)
    except ValueError:
        return Secret.load(name)
