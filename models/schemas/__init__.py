"""JSON Schemas of the plan file and the report, generated from the models.

The committed ``plan.schema.json`` and ``report.schema.json`` are what editors
(yaml-language-server) and report consumers use; a test keeps them equal to the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def schema(which: str) -> dict[str, Any]:
    if which == "plan":
        from stratmap.models.plan import Plan

        body = Plan.model_json_schema(by_alias=True)
        body["$id"] = "urn:stratmap:schema:plan:1"  # no hosted copy: a URN, not a made-up URL
        title = "stratmap plan file (format version 1)"
    elif which == "report":
        from stratmap.models.report import Report

        body = Report.model_json_schema(mode="serialization")
        body["$id"] = "urn:stratmap:schema:report"
        title = "stratmap report"
    else:
        raise ValueError(f"no schema named {which!r}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": title, **{
        k: v for k, v in body.items() if k != "title"}}


def schema_text(which: str) -> str:
    return json.dumps(schema(which), indent=2, sort_keys=True) + "\n"


def write_all() -> None:
    """Regenerate the committed schema files (``python -m stratmap.models.schemas``)."""
    for which in ("plan", "report"):
        (HERE / f"{which}.schema.json").write_text(schema_text(which), encoding="utf-8")


