"""Shapes of real recorded responses, and the check that a fake's answer has them.

A *shape* is a recorded JSON document with its values replaced by their types: objects
keep their keys, a scalar becomes ``"string"``, ``"number"``, ``"boolean"`` or ``"null"``,
and a list becomes a one-element list holding what *every* recorded element has (the keys
all elements share: two events of different kinds share only their common part). Shapes,
not recordings, are kept in the repository (``tests/recordings/*/``), each with where it
was recorded and under which licence (``tests/recordings/README.md``).

:func:`differences` lists where a fake's answer lacks a key the recording has, or gives a
key another type. ``null`` in the recording accepts any value (the recording did not say
what the field holds when set); a list whose recorded elements were all empty, or a fake's
list that is empty, has no elements to compare. Paths in ``ignore`` (``value[].fields``,
say: fields that depend on the work item's type) are not compared below that point.

``python -m tests.recordings.shapes FILE [JSON-POINTER]`` prints the shape of a recorded
document (or of the part at the pointer), to make a shape file from a recording.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    raise TypeError(f"not a JSON scalar: {value!r}")


def shape_of(value: Any) -> Any:
    """The shape of a JSON value."""
    if isinstance(value, dict):
        return {key: shape_of(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = [shape_of(item) for item in value]
        return [common(shapes)] if shapes else []
    return kind(value)


def common(shapes: list[Any]) -> Any:
    """What every shape in ``shapes`` has: shared keys of objects, recursively."""
    first = shapes[0]
    if all(isinstance(s, dict) for s in shapes):
        keys = [k for k in first if all(k in s for s in shapes)]
        return {k: common([s[k] for s in shapes]) for k in keys}
    if all(isinstance(s, list) for s in shapes):
        filled = [s[0] for s in shapes if s]
        return [common(filled)] if filled else []
    concrete = [s for s in shapes if s != "null"]
    if not concrete:
        return "null"
    if all(s == concrete[0] for s in concrete) and isinstance(concrete[0], str):
        return concrete[0]
    return "null"  # the recording disagrees with itself: any value will do


def differences(recorded: Any, answer: Any, *, path: str = "$",
                ignore: Iterable[str] = ()) -> list[str]:
    """Where ``answer`` (a fake's JSON) lacks what the ``recorded`` shape has."""
    skipped = set(ignore)
    found: list[str] = []

    def walk(shape: Any, value: Any, where: str) -> None:
        if where in skipped or shape == "null":
            return
        if isinstance(shape, dict):
            if not isinstance(value, dict):
                found.append(f"{where}: an object in the recording, {_name(value)} in the fake")
                return
            for key, inner in shape.items():
                if f"{where}.{key}" in skipped:
                    continue
                if key not in value:
                    found.append(f"{where}.{key}: missing in the fake")
                else:
                    walk(inner, value[key], f"{where}.{key}")
            return
        if isinstance(shape, list):
            if not isinstance(value, list):
                found.append(f"{where}: a list in the recording, {_name(value)} in the fake")
                return
            if shape:
                for item in value:
                    walk(shape[0], item, f"{where}[]")
            return
        actual = _name(value)
        if actual != shape and actual != "null":
            found.append(f"{where}: {shape} in the recording, {actual} in the fake")
        elif actual == "null" and shape != "null":
            found.append(f"{where}: {shape} in the recording, null in the fake")

    walk(recorded, answer, path)
    return found


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return kind(value)


def load(name: str) -> Any:
    """A stored shape: ``tests/recordings/<name>.shape.json``."""
    return json.loads((HERE / f"{name}.shape.json").read_text())


def main(argv: list[str]) -> int:
    document = json.loads(Path(argv[0]).read_text())
    for part in (argv[1].strip("/").split("/") if len(argv) > 1 and argv[1] else []):
        document = document[int(part)] if isinstance(document, list) else document[part]
    print(json.dumps(shape_of(document), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
