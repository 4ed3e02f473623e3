"""Every logger stratmap creates hangs under one ``stratmap`` tree, so a user configures them
all at once (``logging.getLogger("stratmap")``, ``PREFECT_LOGGING_EXTRA_LOGGERS=stratmap``)."""

from __future__ import annotations

import ast
import importlib
import logging
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "connectors", "models", "judgement", "publish", "deployments")


def sources() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py")
                  if "migrations" not in path.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(("stratmap", *parts))


def logger_names(path: Path) -> list[str]:
    """The name of every ``getLogger(...)`` call in the file (``""`` for the root logger)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) == "getLogger"):
            continue
        if not node.args:
            names.append("")  # the root logger: read, to put filters on its handlers
        elif isinstance(node.args[0], ast.Name) and node.args[0].id == "__name__":
            names.append(module_name(path))
        elif isinstance(node.args[0], ast.Constant):
            names.append(str(node.args[0].value))
        else:
            names.append(f"<computed at {path.name}:{node.lineno}>")
    return names


def test_the_sources_are_found() -> None:
    assert len(sources()) > 40
    assert any(logger_names(path) for path in sources())


def test_every_logger_is_in_the_stratmap_tree() -> None:
    outside = {str(path.relative_to(ROOT)): name for path in sources()
               for name in logger_names(path)
               if name not in ("", "stratmap") and not name.startswith("stratmap.")}
    assert outside == {}


def test_module_loggers_are_named_by_their_stratmap_module() -> None:
    """What ``__name__`` gives at run time: the installed module's name, under stratmap."""
    for path in sources():
        module = importlib.import_module(module_name(path))
        for value in vars(module).values():
            if isinstance(value, logging.Logger):
                assert value.name.startswith("stratmap."), (path, value.name)
