"""Reading a plan file, with every problem reported as ``FILE:LINE:COLUMN: message``.

The YAML is composed into nodes first so each value keeps its mark; pydantic's error
locations are then walked back onto those marks. Scalars resolve as YAML 1.2's core schema
(``on``, ``yes`` and ``no`` stay strings; ``1:30`` is not a number), so a Jira username or
an alert route's ``on:`` key mean what they say.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import math
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from stratmap.models.jql import jql_problem
from stratmap.models.plan import (
    MEASURE_KINDS,
    SECRET_REF,
    SELECTOR_KINDS,
    JiraSource,
    Measure,
    Plan,
    Selector,
)
from stratmap.models.report import Kind, Status
from stratmap.models.wiql import wiql_problem

Path_ = tuple[str | int, ...]

MAX_NODES = 100_000
"""The most values a plan may hold once its aliases are expanded (see the README)."""
MAX_DEPTH = 64
"""The deepest nesting of mappings and lists a plan may have."""
MAX_DIGITS = 30
"""The longest integer, in digits; no count or weight in a plan needs more."""

_INT = re.compile(r"^[-+]?[0-9]+$")
_FLOAT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$")
_NULL = {"", "~", "null", "Null", "NULL"}
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False,
         "FALSE": False}


@dataclass(frozen=True, order=True)
class PlanProblem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PlanError(Exception):
    """The plan file has problems; ``problems`` lists every one found."""

    def __init__(self, problems: list[PlanProblem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class _Mark:
    line: int
    column: int


class _Document:
    """The plan's data plus where each value and key stands in the file."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[Path_, _Mark] = {}
        self.keys: dict[Path_, _Mark] = {}
        self.problems: list[PlanProblem] = []
        self.size = 0

    def _count(self, node: yaml.Node, depth: int) -> None:
        """Bound the data an alias can make: aliases repeat their node each time they are
        used, so a few hundred bytes can expand to gigabytes (a "billion laughs")."""
        self.size += 1
        if self.size > MAX_NODES:
            raise PlanError([PlanProblem(self.file, *_where(node), f"the plan expands to more "
                                         f"than {MAX_NODES:,} values (YAML aliases repeat "
                                         "what they name); write it out or use fewer aliases")])
        if depth > MAX_DEPTH:
            raise PlanError([PlanProblem(self.file, *_where(node), f"nested more than "
                                         f"{MAX_DEPTH} levels deep (or an alias names itself)")])

    def problem(self, mark: _Mark, message: str) -> None:
        self.problems.append(PlanProblem(self.file, mark.line, mark.column, message))

    def mark_of(self, path: Path_, *, key: bool = False) -> _Mark:
        """The mark of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while probe:
            if key and probe in self.keys:
                return self.keys[probe]
            if probe in self.values:
                return self.values[probe]
            probe = probe[:-1]
        return self.values.get((), _Mark(1, 1))

    def build(self, node: yaml.Node, path: Path_ = ()) -> Any:
        self._count(node, len(path))
        self.values[path] = _Mark(node.start_mark.line + 1, node.start_mark.column + 1)
        if isinstance(node, yaml.MappingNode):
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(_mark(key_node), "a key must be a plain name")
                    continue
                key = str(key_node.value)
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.problem(_mark(key_node), "YAML merge keys (<<) are not supported")
                    continue
                if key in result:
                    first = self.keys[(*path, key)]
                    self.problem(_mark(key_node), f"'{key}' is given twice "
                                 f"(first at line {first.line})")
                    continue
                self.keys[(*path, key)] = _mark(key_node)
                result[key] = self.build(value_node, (*path, key))
            return result
        if isinstance(node, yaml.SequenceNode):
            return [self.build(child, (*path, i)) for i, child in enumerate(node.value)]
        assert isinstance(node, yaml.ScalarNode)
        value = _scalar(node)
        if (isinstance(value, float) and not math.isfinite(value)) or (isinstance(value, int) and (
                len(node.value) > MAX_DIGITS)):
            self.problem(_mark(node), f"the number {node.value[:20]}{'...' * (len(node.value) > 20)}"
                         " is out of range")
            return None
        return value


def _where(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _mark(node: yaml.Node) -> _Mark:
    return _Mark(node.start_mark.line + 1, node.start_mark.column + 1)


def _scalar(node: yaml.ScalarNode) -> Any:
    text = node.value
    if node.style in ("'", '"', "|", ">") or node.tag == "tag:yaml.org,2002:str":
        return text
    if text in _NULL:
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text) if len(text) <= MAX_DIGITS else 0  # refused by build
    if _FLOAT.match(text):
        return float(text)
    return text


# -- walking pydantic's error locations back to the file --------------------------------------


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete types an annotation may hold (Optional, Annotated, unions flattened)."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _resolve(data: Any, loc: Iterable[str | int]) -> tuple[Path_, list[type[BaseModel]]]:
    """Map a pydantic ``loc`` onto a data path, dropping union-tag segments.

    Returns the path and the model classes that may stand at its last mapping, for the
    "did you mean" of an unknown field.
    """
    path: list[str | int] = []
    current: Any = data
    candidates: list[Any] = [Plan]
    for segment in loc:
        if (isinstance(current, dict) and segment in current) or (
            isinstance(current, list) and isinstance(segment, int) and segment < len(current)
        ):
            current = current[segment]  # type: ignore[index]
            candidates = _step(candidates, segment, current)
            path.append(segment)
        elif isinstance(segment, str) and (
            "[" in segment or segment in _TAGS
            or (isinstance(current, dict) and current.get("kind") == segment)
        ):
            continue  # a discriminator tag or a union branch name, not a key
        else:
            path.append(segment)
            break
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return tuple(path), models


_TAGS = {"str", "int", "float", "bool", "date", "datetime", "function-after", "function-before",
         "function-plain", "literal"}


def _step(candidates: list[Any], segment: str | int, value: Any) -> list[Any]:
    found: list[Any] = []
    for candidate in candidates:
        for option in _unwrap(candidate):
            origin = get_origin(option)
            if isinstance(option, type) and issubclass(option, BaseModel) and isinstance(
                    segment, str):
                field = next((f for n, f in option.model_fields.items()
                              if n == segment or f.alias == segment), None)
                if field is not None:
                    found.extend(_unwrap(field.annotation))
            elif origin in (list, dict) and get_args(option):
                found.extend(_unwrap(get_args(option)[-1]))
    if isinstance(value, dict) and "kind" in value:
        kinded = [c for c in found if isinstance(c, type) and issubclass(c, BaseModel)
                  and "kind" in c.model_fields
                  and value["kind"] in get_args(c.model_fields["kind"].annotation)]
        if kinded:
            return kinded
    return found


def _field_names(models: list[type[BaseModel]]) -> list[str]:
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _message(error: Any) -> str:
    text = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text


def _pydantic_problems(doc: _Document, data: Any, error: ValidationError) -> None:
    placed: set[tuple[Path_, str]] = set()
    for item in error.errors():
        path, _ = _resolve(data, item["loc"])
        kind = item["type"]
        if "date" in kind or "time" in kind:
            # date | datetime fields fail twice, once per branch: say it once, plainly.
            kind = "date"
            item = {**item, "msg": f"not a valid date ({_message(item).split(', ', 1)[-1]}); "
                    "write YYYY-MM-DD or an ISO 8601 datetime"}
        if (path, kind) in placed:
            continue
        placed.add((path, kind))
        if kind == "extra_forbidden":
            name = str(path[-1])
            options = _field_names(_resolve(data, item["loc"][:-1])[1])
            doc.problem(doc.mark_of(path, key=True),
                        f"unknown field '{name}'{_did_you_mean(name, options)}")
        elif kind == "missing":
            doc.problem(doc.mark_of(path[:-1]), f"missing required field '{path[-1]}'")
        elif kind == "union_tag_invalid" or (kind == "literal_error" and path[-1:] == ("kind",)):
            given = item.get("ctx", {}).get("tag", item.get("input"))
            named = f" '{given}'" if isinstance(given, str) else ""
            if "measures" in path:
                hint = _did_you_mean(given, MEASURE_KINDS) if isinstance(given, str) else ""
                doc.problem(doc.mark_of(path), f"unknown measure source kind{named}{hint} (use "
                            f"one of {', '.join(MEASURE_KINDS)})")
                continue
            hint = _did_you_mean(given, SELECTOR_KINDS) if isinstance(given, str) else ""
            doc.problem(doc.mark_of(path), f"unknown source kind{named}{hint} (use one of "
                        f"{', '.join(sorted(SELECTOR_KINDS))})")
        else:
            doc.problem(doc.mark_of(path), _plain(item, path))


_EXPECTED = {
    "int_parsing": "a whole number", "int_type": "a whole number",
    "float_parsing": "a number", "float_type": "a number", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "text", "list_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}
_SHAPES = {
    "a list": "a list, written [a, b] on one line or as lines starting with '- '",
    "a mapping": "a mapping: lines of `name: value`, indented under it",
}
_EXAMPLES = {
    "version": "version: 1", "weight": "weight: 2", "work": "work: [{source: jira, epic: WEB-1}]",
    "people": "people: {alice: {name: Alice Smith}}", "senior": "senior: true",
    "labels": "labels: [website]", "keys": "keys: [WEB-1, WEB-2]",
    "single_owner_share": "single_owner_share: 0.8", "depends_on": "depends_on: [brand.domain]",
    "milestones": "milestones: [{id: website, title: Launch the site}]",
    "goals": "goals: [{id: brand, title: Brand presence}]", "accounts": "accounts: {jira: jdoe}",
}


def _plain(error: Any, path: Path_) -> str:
    """A pydantic error as a plain sentence: what is expected here, with an example."""
    kind, field = error["type"], next((str(p) for p in reversed(path) if isinstance(p, str)),
                                      "this value")
    given = error.get("input")
    if isinstance(given, (str, int, float)) and not isinstance(given, bool):
        shown = f"'{given}'"
    else:
        shown = "a mapping" if isinstance(given, dict) else (
            "a list" if isinstance(given, list) else "this")
    example = f" (e.g. {_EXAMPLES[field]})" if field in _EXAMPLES else ""
    if kind in _EXPECTED:
        wanted = _SHAPES.get(_EXPECTED[kind], _EXPECTED[kind])
        return f"{field} expects {wanted}, not {shown}{example}"
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", "")).replace("'", "")
        options = [o.strip() for o in expected.replace(" or ", ",").split(",") if o.strip()]
        hint = _did_you_mean(str(given), options) if isinstance(given, str) else ""
        return f"{field} must be {expected}, not {shown}{hint}{example}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        bound = next(iter(error.get("ctx", {}).values()), "")
        words = {"greater_than": "greater than", "greater_than_equal": "greater than or equal to",
                 "less_than": "less than", "less_than_equal": "less than or equal to"}[kind]
        return f"{field} must be {words} {bound}, not {shown}{example}"
    if kind == "string_pattern_mismatch" and field in ("id",):
        return (f"{field} must be a lowercase slug (letters, digits, - and _, starting with a "
                f"letter or digit), not {shown} (e.g. id: website)")
    if kind == "string_pattern_mismatch" and field == "pushgateway":
        return (f"pushgateway is an http:// or https:// URL without credentials in it, not "
                f"{shown} (e.g. pushgateway: http://pushgateway:9091)")
    if kind == "string_too_long":
        return f"{field} is too long: {_message(error).lower()}"
    return _message(error)


# -- checks across the plan ------------------------------------------------------------------


def _cross_checks(doc: _Document, plan: Plan) -> None:
    people = plan.people

    def person(handle: str | None, path: Path_) -> None:
        if handle is not None and handle not in people:
            doc.problem(doc.mark_of(path), f"unknown person '{handle}'"
                        f"{_did_you_mean(handle, people)} (add them under people:)")

    person(plan.leader, ("leader",))
    goal_ids: dict[str, int] = {}
    all_milestones = plan.milestone_ids()
    for g, goal in enumerate(plan.goals):
        if goal.id in goal_ids:
            doc.problem(doc.mark_of(("goals", g, "id")),
                        f"goal id '{goal.id}' is used twice (first by goals[{goal_ids[goal.id]}])")
        goal_ids.setdefault(goal.id, g)
        person(goal.owner, ("goals", g, "owner"))
        if goal.feedback and goal.feedback.from_ != "seniors":
            for f, handle in enumerate(goal.feedback.from_):
                person(handle, ("goals", g, "feedback", "from", f))
        seen: dict[str, int] = {}
        for m, milestone in enumerate(goal.milestones):
            base: Path_ = ("goals", g, "milestones", m)
            if milestone.id in seen:
                doc.problem(doc.mark_of((*base, "id")),
                            f"milestone id '{milestone.id}' is used twice in goal '{goal.id}'")
            seen.setdefault(milestone.id, m)
            person(milestone.owner, (*base, "owner"))
            if milestone.feedback and milestone.feedback.from_ != "seniors":
                for f, handle in enumerate(milestone.feedback.from_):
                    person(handle, (*base, "feedback", "from", f))
            if milestone.start and milestone.due and plan.moment(milestone.start) > plan.moment(
                    milestone.due):
                doc.problem(doc.mark_of((*base, "due")),
                            f"due {milestone.due} is before start {milestone.start}")
            for h, (before, after) in enumerate(itertools.pairwise(milestone.due_history)):
                if plan.moment(after.moved) < plan.moment(before.moved):
                    doc.problem(doc.mark_of((*base, "due_history", h + 1, "moved")),
                                f"moved {after.moved} is before the previous entry's "
                                f"{before.moved}: list due_history oldest first")
            if milestone.due_history and milestone.due is None:
                doc.problem(doc.mark_of((*base, "due_history"), key=True),
                            "due_history needs the milestone's due: the date it was moved to")
            for d, dependency in enumerate(milestone.depends_on):
                if dependency not in all_milestones:
                    doc.problem(doc.mark_of((*base, "depends_on", d)),
                                f"unknown milestone '{dependency}' (write goal.milestone)"
                                f"{_did_you_mean(dependency, all_milestones)}")
            for w, selector in enumerate(milestone.work):
                _check_selector(doc, plan, selector, (*base, "work", w))
            _check_measures(doc, plan, milestone.measures, base,
                            taken={}, progress=milestone.progress)
        _check_measures(doc, plan, goal.measures, ("goals", g),
                        taken={m.id: "milestone" for m in goal.milestones},
                        progress=goal.progress,
                        measured_below=any(m.measures for m in goal.milestones))
    _check_cycles(doc, plan)
    for name, source in plan.sources.items():
        scope = getattr(source, "scope", None)
        if source.kind == "jira" and isinstance(scope, str) and (problem := jql_problem(scope)):
            doc.problem(doc.mark_of(("sources", name, "scope")),
                        f"the scope JQL cannot be used: {problem}")
        if (isinstance(source, JiraSource) and source.declared_status_values is not None
                and source.declared_status_field is None):
            doc.problem(doc.mark_of(("sources", name, "declared_status_values"), key=True),
                        "declared_status_values needs declared_status_field: the field whose "
                        "values they map")
        if (source.kind == "azure_devops" and isinstance(scope, str)
                and (problem := wiql_problem(scope))):
            doc.problem(doc.mark_of(("sources", name, "scope")),
                        f"the scope WIQL cannot be used: {problem}")
    defaults = plan.defaults.feedback
    if defaults and defaults.from_ != "seniors":
        for f, handle in enumerate(defaults.from_):
            person(handle, ("defaults", "feedback", "from", f))
    for handle, who in people.items():
        for where in who.accounts:
            kinds = {s.kind for s in plan.sources.values()}
            if where not in plan.sources and where not in kinds:
                doc.problem(doc.mark_of(("people", handle, "accounts", where), key=True),
                            f"'{where}' is neither a source name nor a source kind"
                            f"{_did_you_mean(where, [*plan.sources, *kinds])}")
    if plan.alerts:
        _check_alerts(doc, plan)


def _check_selector(doc: _Document, plan: Plan, selector: Selector, path: Path_) -> None:
    source = plan.sources.get(selector.source)
    if source is None:
        doc.problem(doc.mark_of((*path, "source")), f"unknown source '{selector.source}'"
                    f"{_did_you_mean(selector.source, plan.sources)}")
        return
    allowed = SELECTOR_KINDS[source.kind]
    criteria = selector.criteria()
    if not criteria:
        doc.problem(doc.mark_of(path), "a selector needs a way of choosing items, e.g. "
                    + (", ".join(sorted(allowed)) or "column: value"))
    if source.kind == "csv":
        return
    jql = criteria.get("jql")
    if source.kind == "jira" and isinstance(jql, str) and (problem := jql_problem(jql)):
        doc.problem(doc.mark_of((*path, "jql")), f"this JQL cannot be used: {problem}")
    wiql = criteria.get("wiql")
    if source.kind == "azure_devops" and isinstance(wiql, str) and (problem := wiql_problem(wiql)):
        doc.problem(doc.mark_of((*path, "wiql")), f"this WIQL cannot be used: {problem}")
    for name in criteria:
        if name not in allowed:
            doc.problem(doc.mark_of((*path, name), key=True),
                        f"'{name}' does not select {source.kind} items; use one of "
                        f"{', '.join(sorted(allowed))}{_did_you_mean(name, allowed)}")


def _check_measures(doc: _Document, plan: Plan, measures: list[Measure], base: Path_, *,
                    taken: dict[str, str], progress: str | None,
                    measured_below: bool = False) -> None:
    """Measures of one goal or milestone: unique ids, a target beyond the baseline in the
    measure's direction and after it, sources without secrets in them."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if progress == "measure" and not measures and not measured_below:
        doc.problem(doc.mark_of((*base, "progress")),
                    "progress: measure needs measures here (add measures: [...])")
    seen = dict(taken)
    for n, measure in enumerate(measures):
        path: Path_ = (*base, "measures", n)
        if measure.id in seen:
            doc.problem(doc.mark_of((*path, "id")), f"measure id '{measure.id}' is already "
                        f"used here (by a {seen[measure.id]})")
        seen.setdefault(measure.id, "measure")
        baseline, target = measure.baseline, measure.target
        if plan.moment(target.date) <= plan.moment(baseline.date):
            doc.problem(doc.mark_of((*path, "target", "date")),
                        f"the target date {target.date} is not after the baseline date "
                        f"{baseline.date}")
        if measure.direction == "up" and target.value <= baseline.value:
            doc.problem(doc.mark_of((*path, "target", "value")),
                        f"direction up needs a target above the baseline ({baseline.value:g}); "
                        "write direction: down for a number that should fall")
        if measure.direction == "down" and target.value >= baseline.value:
            doc.problem(doc.mark_of((*path, "target", "value")),
                        f"direction down needs a target below the baseline "
                        f"({baseline.value:g})")
        source = measure.source
        if source.kind == "sql" and not SECRET_REF.match(source.url):
            try:
                url = make_url(source.url)
            except (ArgumentError, ValueError):
                doc.problem(doc.mark_of((*path, "source", "url")),
                            "not a SQLAlchemy URL (e.g. postgresql://reader@db/sales)")
                continue
            if url.password is not None:
                doc.problem(doc.mark_of((*path, "source", "url")),
                            "a password is never written in the plan: leave it out of the URL "
                            "and give password: env:VARIABLE (or the whole URL as env:VARIABLE)")
        if source.kind == "prometheus" and not source.url.startswith(("http://", "https://")):
            doc.problem(doc.mark_of((*path, "source", "url")),
                        "the Prometheus URL starts with http:// or https://")


def _check_cycles(doc: _Document, plan: Plan) -> None:
    graph = {ref: list(m.depends_on) for ref, (_, m) in plan.milestone_ids().items()}
    where = {f"{g.id}.{m.id}": (gi, mi) for gi, g in enumerate(plan.goals)
             for mi, m in enumerate(g.milestones)}
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph.get(node, []):
            if nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt):], nxt]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    g, m = where[node]
                    doc.problem(doc.mark_of(("goals", g, "milestones", m, "depends_on")),
                                "depends_on makes a cycle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [node])


def _check_alerts(doc: _Document, plan: Plan) -> None:
    assert plan.alerts is not None
    for name, ref in plan.alerts.channels.items():
        if not ref.startswith("block:"):
            doc.problem(doc.mark_of(("alerts", "channels", name)),
                        "a channel is a Prefect notification block: write block:NAME "
                        "(webhook URLs hold secrets and never go in the plan)")
    valid = {k.value for k in Kind} | {s.value for s in Status}
    for r, route in enumerate(plan.alerts.routes):
        for o, trigger in enumerate(route.on):
            if trigger not in valid:
                doc.problem(doc.mark_of(("alerts", "routes", r, "on", o)),
                            f"unknown trigger '{trigger}'{_did_you_mean(trigger, valid)}")
        for v, channel in enumerate(route.via):
            if channel not in plan.alerts.channels:
                doc.problem(doc.mark_of(("alerts", "routes", r, "via", v)),
                            f"unknown channel '{channel}'"
                            f"{_did_you_mean(channel, plan.alerts.channels)}")
        for n, target in enumerate(route.notify):
            if target not in ("owner", "leader") and target not in plan.people:
                doc.problem(doc.mark_of(("alerts", "routes", r, "notify", n)),
                            f"notify takes owner, leader or a person, not '{target}'")


# -- entry points ----------------------------------------------------------------------------


def _without_wrong_values(data: Any, error: ValidationError) -> Plan | None:
    """The plan with each wrongly typed optional value left out, for the checks across the
    plan; None when that is not enough (a required value is wrong or missing). Only keys
    are dropped, never list entries, so every path still points at its place in the file."""
    trimmed = copy.deepcopy(data)
    dropped: set[Path_] = set()
    for _ in range(3):
        for item in error.errors():
            path, _models = _resolve(trimmed, item["loc"])
            if path in dropped:
                continue  # a union's second branch failing on the same value
            dropped.add(path)
            if path == ("version",):
                trimmed["version"] = 1  # the one format there is: check the rest as that
                continue
            if not path or not isinstance(path[-1], str):
                return None
            parent: Any = trimmed
            for segment in path[:-1]:
                parent = parent[segment]
            if not isinstance(parent, dict) or path[-1] not in parent:
                return None
            del parent[path[-1]]
        try:
            return Plan.model_validate(trimmed)
        except ValidationError as again:
            error = again
    return None


def _yaml_problem(error: yaml.MarkedYAMLError) -> str:
    """The YAML parser's complaint as a sentence about the plan's lines."""
    problem = str(error.problem or error)
    found = problem.rpartition("but found ")[2] if "but found" in problem else None
    if problem.startswith(("expected <block end>", "expected <block mapping end>")):
        return (f"this line ({found or 'it'}) does not fit the lines above: check its "
                "indentation (spaces, the same as the other keys at its level), and that each "
                "line is `name: value` or a list entry starting with '- '")
    if "mapping values are not allowed" in problem:
        return ("a second ':' on one line: quote a value that contains ': ' "
                "(e.g. title: \"Phase 2: launch\")")
    if "found character '\\t'" in problem or "\\t" in problem:
        return "a tab character: YAML indents with spaces only"
    if problem.startswith("found undefined alias"):
        return f"{problem} (an '*' starts an alias: quote a value that begins with '*')"
    return problem


_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def _compose(text: str) -> yaml.Node | None:
    """The document's nodes, composed by libyaml where PyYAML has it (a plan of hundreds of
    milestones took a second in the pure-Python composer, read on every run). The nodes
    are the same (tags, values, marks; a plain scalar's style is ``''`` rather than
    ``None``). A file libyaml refuses (it also stops at 1,000 levels of nesting) is
    composed again by the pure-Python loader, whose messages the problems are worded on."""
    if _FAST_LOADER is not None:
        try:
            return yaml.compose(text, Loader=_FAST_LOADER)
        except (yaml.YAMLError, RecursionError):
            pass
    return yaml.compose(text, Loader=yaml.SafeLoader)


def parse_plan(text: str, *, file: str = "plan.yaml") -> Plan:
    """Parse and check a plan; raise :class:`PlanError` listing every problem."""
    doc = _Document(file)
    try:
        node = _compose(text)
    except RecursionError:
        raise PlanError([PlanProblem(file, 1, 1, f"not valid YAML: nested more than "
                                     f"{MAX_DEPTH} levels deep")]) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise PlanError([PlanProblem(file, line, column,
                                     f"not valid YAML: {_yaml_problem(error)}")]) from None
    except yaml.YAMLError as error:
        raise PlanError([PlanProblem(file, 1, 1, f"not valid YAML: {error}")]) from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise PlanError([PlanProblem(file, 1, 1, "a plan is a YAML mapping that starts with "
                                     "'version: 1' (run `stratmap init` for a template)")])
    data = doc.build(node)
    if doc.problems:
        raise PlanError(doc.problems)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as error:
        _pydantic_problems(doc, data, error)
        # Every problem in one pass: check the people, sources and milestones the plan
        # names too, on the plan without the values already found wrong.
        repaired = _without_wrong_values(data, error)
        if repaired is not None:
            _cross_checks(doc, repaired)
        raise PlanError(sorted(doc.problems, key=lambda p: (p.line, p.column))) from None
    _cross_checks(doc, plan)
    if doc.problems:
        raise PlanError(doc.problems)
    return plan


def load_plan(path: str | Path) -> Plan:
    """Read a plan file; raise :class:`PlanError` (with the file's name) on any problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError([PlanProblem(str(file), 1, 1, "no such file (create one with "
                                     "`stratmap init`)")]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PlanError([PlanProblem(str(file), 1, 1, f"cannot read the plan: {error}")]) from None
    return parse_plan(text, file=str(file))
