"""The report as one self-contained HTML page: ``stratmap report --format html``.

Everything the page needs is inside it (styles, the map and the charts as inline SVG, no
script at all), so it opens from a file, an email attachment or an artifact store with no
network. A Content-Security-Policy in the page forbids scripts and remote loads as a second
line of defence.

Tracker text is untrusted. Jinja2 autoescapes every value in ``templates/report.html.j2``;
the only markup inserted as is comes from :mod:`~stratmap.publish.charts` and Graphviz,
which escape the text they draw; a link is made only from an ``http``/``https`` URL (:func:`safe_url`).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemBytecodeCache, PackageLoader, StrictUndefined
from markupsafe import Markup

from stratmap.models.report import (
    ORGANISATION_KINDS,
    Finding,
    GoalReport,
    MeasureReport,
    MilestoneReport,
    Report,
    Severity,
    Status,
)
from stratmap.models.text import visible
from stratmap.publish.charts import Point, burnup_svg, measure_svg, trend_svg, unmapped_svg
from stratmap.publish.map import LABEL, MapUnavailable, anchors, strategic_map_svg

if TYPE_CHECKING:
    from stratmap.models.history import Snapshot, SnapshotPoint
    from stratmap.models.plan import Plan
    from stratmap.models.records import Evidence

PLAN_ENTITY = "*"
TREND_WINDOW = timedelta(days=28)
ATTENTION_SHOWN = 10
SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
_ISO_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


# -- links -------------------------------------------------------------------------------


_UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\s]")
"""A control character or any whitespace (``\\s`` is Unicode whitespace, as ``str.isspace``)."""


def safe_url(url: object) -> str | None:
    """``url`` if it is an absolute http(s) URL, else None: nothing else becomes a link."""
    if not isinstance(url, str):
        return None
    text = url.strip()
    if _UNSAFE_CHARACTER.search(text):
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return text


class ItemLinks(Mapping[str, str]):
    """Tracker key -> item URL, for keys that name one item with a safe URL.

    A report links a few hundred of a store's keys: each URL is checked when its key is
    looked up, not all of them up front (28,000 checks were a second of a 20k-issue page).
    """

    def __init__(self, evidence: Evidence) -> None:
        urls: dict[str, object] = {}
        several: dict[str, set[object]] = {}
        for item in evidence.items:
            key, url = item.key, item.url
            if key in urls and urls[key] != url:
                several.setdefault(key, {urls[key]}).add(url)
            urls[key] = url
        self._urls = urls
        self._several = several
        self._checked: dict[str, str | None] = {}

    def _url(self, key: str) -> str | None:
        try:
            return self._checked[key]
        except KeyError:
            pass
        found = None
        if key in self._several:  # items of several sources share the key: one safe URL
            checked = {safe_url(url) for url in self._several[key]}
            found = checked.pop() if len(checked) == 1 else None
        elif key in self._urls:
            found = safe_url(self._urls[key])
        self._checked[key] = found
        return found

    def __getitem__(self, key: str) -> str:
        url = self._url(key)
        if url is None:
            raise KeyError(key)
        return url

    def __iter__(self) -> Iterator[str]:
        return (key for key in self._urls if self._url(key) is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def item_links(evidence: Evidence) -> ItemLinks:
    """Tracker key -> item URL, for keys that name one item with a safe URL."""
    return ItemLinks(evidence)


# -- the page's view of the report -------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A piece of text, a link when ``href`` is set."""

    text: str
    href: str | None = None


@dataclass
class FindingView:
    finding: Finding
    where: Part
    person: str | None
    evidence: list[tuple[str, list[Part]]]
    item: Part | None


@dataclass
class MeasureView:
    report: MeasureReport
    chart: Markup
    last_at: str | None


@dataclass
class MilestoneView:
    report: MilestoneReport
    anchor: str
    chart: Markup
    unit: str
    start: str | None
    due: str | None
    forecast: str | None
    last_movement: str | None
    findings: list[FindingView] = field(default_factory=list)
    measures: list[MeasureView] = field(default_factory=list)


@dataclass
class GoalView:
    report: GoalReport
    anchor: str
    milestones: list[MilestoneView]
    findings: list[FindingView] = field(default_factory=list)
    measures: list[MeasureView] = field(default_factory=list)


@dataclass
class PersonView:
    handle: str
    name: str | None
    senior: bool
    owns: list[Part]
    open_items: int
    last_activity: str | None
    quiet_days: int | None
    feedback_owed: list[Part]
    other_findings: list[str]


@dataclass
class Attention:
    severity: Severity
    where: Part
    status: Status | None
    kinds: list[str]
    owner: str | None


class Page:
    """Everything the template shows, computed from the report and its history."""

    def __init__(self, report: Report, *, history: Sequence[Snapshot | SnapshotPoint],
                 links: Mapping[str, str], plan: Plan | None) -> None:
        self.report = report
        self.plan = plan
        self.vision = plan.vision if plan else None
        self.tz: tzinfo = plan.tz if plan else UTC
        self.zone = plan.timezone if plan else "UTC"
        self.links = links
        self.anchors = anchors(report)
        self.series = _Series(report, history)
        self.findings = [self._finding(f) for f in sorted(
            report.findings, key=lambda f: SEVERITY_ORDER[f.severity])]
        by_scope: dict[str | None, list[FindingView]] = defaultdict(list)
        for view in self.findings:
            by_scope[view.finding.milestone or view.finding.goal].append(view)
        self.goals = [self._goal(g, by_scope) for g in report.goals]
        self.people = self._people()
        self.organisation = [v for v in self.findings
                             if v.finding.kind in ORGANISATION_KINDS]
        self.attention = self._attention()
        self.severities = Counter(f.severity for f in report.findings)
        self.milestone_statuses = Counter(m.status for g in report.goals for m in g.milestones)
        self.unmapped = sum(f.kind.value == "unmapped_work" for f in report.findings)
        self.trend = self._trend()
        self.unmapped_chart = self._unmapped_chart()
        self.delta = self._delta()
        try:  # SVG from dot, which escapes the text it draws
            self.map: Markup | None = Markup(strategic_map_svg(report, self.anchors))
            self.map_problem: str | None = None
        except MapUnavailable as problem:
            self.map, self.map_problem = None, str(problem)

    # -- formatting ----------------------------------------------------------------------

    def moment(self, value: date | datetime | None) -> datetime | None:
        if value is None:
            return None
        if self.plan is not None:
            return self.plan.moment(value)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        return datetime.combine(value, time(0, 0), tzinfo=UTC)

    def day(self, value: date | datetime | None) -> str | None:
        moment = self.moment(value)
        return None if moment is None else moment.astimezone(self.tz).date().isoformat()

    def when(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        return value.astimezone(self.tz).strftime("%Y-%m-%d %H:%M")

    def item(self, key: str, url: object = None) -> Part:
        return Part(key, safe_url(url) or self.links.get(key))

    def where(self, ref: str | None) -> Part:
        if ref is None:
            return Part("plan")
        return Part(ref, "#" + self.anchors[ref] if ref in self.anchors else None)

    # -- pieces --------------------------------------------------------------------------

    def _evidence(self, finding: Finding) -> list[tuple[str, list[Part]]]:
        rows: list[tuple[str, list[Part]]] = []
        for name, value in finding.evidence.items():
            if name == "url":
                continue  # shown as the item's link
            label = name.replace("_", " ")
            values = value if isinstance(value, list) else [value]
            if name in ("items", "item"):
                parts = [self.item(str(v), finding.evidence.get("url")
                                   if name == "item" else None) for v in values if v]
            else:
                parts = [Part(self._value(v)) for v in values]
            rows.append((label, parts or [Part("—")]))
        return rows

    def _value(self, value: Any) -> str:
        if value is None:
            return "—"
        if isinstance(value, str) and _ISO_MOMENT.match(value):
            try:
                return self.when(datetime.fromisoformat(value)) or value
            except ValueError:
                return value
        if isinstance(value, float):
            return f"{value:g}"
        return str(value)

    def _finding(self, finding: Finding) -> FindingView:
        item = None
        if finding.item:
            item = self.item(finding.item, finding.evidence.get("url"))
        return FindingView(
            finding=finding,
            where=self.where(finding.milestone or finding.goal) if (
                finding.milestone or finding.goal) else Part("unmapped"),
            person=self.name(finding.person), evidence=self._evidence(finding), item=item,
        )

    def name(self, handle: str | None) -> str | None:
        """A plan handle as the person's name (the handle when the plan gives none)."""
        if handle is None:
            return None
        return next((p.name for p in self.report.people if p.handle == handle and p.name),
                    handle)

    def _goal(self, goal: GoalReport,
              by_scope: Mapping[str | None, list[FindingView]]) -> GoalView:
        milestones = []
        for m in goal.milestones:
            points = m.items.points_total is not None
            start, due = self.moment(m.start), self.moment(m.due)
            chart = burnup_svg(
                self.series.burnup(m, points=points), as_of=self.report.as_of, due=due,
                start=start, forecast=m.forecast, unit="points" if points else "items",
                status=m.status.value, scope=self.anchors[m.id], zone=self.zone,
            )
            milestones.append(MilestoneView(
                report=m, anchor=self.anchors[m.id], chart=Markup(chart),
                unit="points" if points else "items", start=self.day(m.start),
                due=self.day(m.due), forecast=self.day(m.forecast),
                last_movement=self.when(m.last_movement),
                findings=list(by_scope.get(m.id, [])),
                measures=[self._measure(x, m.status.value) for x in m.measures],
            ))
        return GoalView(report=goal, anchor=self.anchors[goal.id], milestones=milestones,
                        findings=[f for f in by_scope.get(goal.id, [])
                                  if f.finding.milestone is None],
                        measures=[self._measure(x, goal.status.value) for x in goal.measures])

    def _measure(self, measure: MeasureReport, status: str) -> MeasureView:
        baseline, target = self.moment(measure.baseline.date), self.moment(measure.target.date)
        assert baseline is not None and target is not None
        chart = measure_svg(
            measure.values, baseline=(baseline, measure.baseline.value),
            target=(target, measure.target.value), rate=measure.rate,
            as_of=self.report.as_of, status=status,
            scope="measure-" + measure.id.replace(".", "-"), zone=self.zone)
        return MeasureView(report=measure, chart=Markup(chart),
                           last_at=self.day(measure.last_at))

    def _people(self) -> list[PersonView]:
        owed: dict[str, list[Part]] = defaultdict(list)
        other: dict[str, Counter[str]] = defaultdict(Counter)
        for f in self.report.findings:
            if f.kind.value == "missing_feedback":
                for handle in f.evidence.get("expected_from") or []:
                    owed[str(handle)].append(self.where(f.milestone or f.goal))
            elif f.person:
                other[f.person][f.kind.value.replace("_", " ")] += 1
        people = []
        for p in self.report.people:
            quiet = None
            if p.last_activity is not None:
                quiet = (self.report.as_of - p.last_activity) // timedelta(days=1)
            people.append(PersonView(
                handle=p.handle, name=p.name, senior=p.senior,
                owns=[self.where(ref) for ref in p.owns], open_items=p.open_items,
                last_activity=self.when(p.last_activity), quiet_days=quiet,
                feedback_owed=owed.get(p.handle, []),
                other_findings=[f"{kind} ({n})" if n > 1 else kind
                                for kind, n in sorted(other.get(p.handle, Counter()).items())],
            ))
        return people

    def _attention(self) -> list[Attention]:
        """Milestones and goals with warnings or worse, the most severe first."""
        grouped: dict[str, list[Finding]] = defaultdict(list)
        for f in self.report.findings:
            if f.severity is not Severity.INFO and (f.milestone or f.goal):
                grouped[f.milestone or f.goal or ""].append(f)
        status: dict[str, tuple[Status, str | None]] = {}
        for g in self.report.goals:
            status[g.id] = (g.status, g.owner)
            for m in g.milestones:
                status[m.id] = (m.status, m.owner)
        order = list(status)
        rows = [
            Attention(
                severity=min((f.severity for f in found), key=SEVERITY_ORDER.__getitem__),
                where=self.where(ref), status=status.get(ref, (None, None))[0],
                kinds=sorted({f.kind.value.replace("_", " ") for f in found}),
                owner=status.get(ref, (None, None))[1],
            )
            for ref, found in grouped.items()
        ]
        rows.sort(key=lambda a: (SEVERITY_ORDER[a.severity],
                                 order.index(a.where.text) if a.where.text in order else 0))
        return rows[:ATTENTION_SHOWN]

    def _trend(self) -> Markup | None:
        lines = {"plan": self.series.progress(PLAN_ENTITY, self.report.progress)}
        for goal in self.report.goals:
            lines[goal.id] = self.series.progress(goal.id, goal.progress)
        if max(len(v) for v in lines.values()) < 2:
            return None
        return Markup(trend_svg(lines, as_of=self.report.as_of, scope="trend",
                                zone=self.zone))

    def _unmapped_chart(self) -> Markup | None:
        """Each source's weekly share of activity outside the plan (and all sources')."""
        shares = self.report.unmapped_share
        if not shares:
            return None
        lines: dict[str, list[tuple[datetime, float]]] = {}
        if len(shares) > 1:
            weeks = zip(*(s.weeks for s in shares), strict=True)
            lines["all sources"] = [
                (week[0].end, sum(w.unmapped for w in week) / total) for week in weeks
                if (total := sum(w.activity for w in week))]
        for share in shares:
            lines[f"source {share.source}"] = [
                (w.end, w.share) for w in share.weeks if w.share is not None]
        return Markup(unmapped_svg(lines, as_of=self.report.as_of, zone=self.zone))

    def _delta(self) -> tuple[float, str] | None:
        """The plan's progress change over the last four weeks, where history has it."""
        before = [s for s in self.series.of(PLAN_ENTITY)
                  if s.as_of <= self.report.as_of - TREND_WINDOW]
        if not before:
            return None
        return self.report.progress - before[-1].progress, "4 weeks"

    @property
    def headline(self) -> str:
        r = self.report
        counts = self.milestone_statuses
        parts = [f"{r.plan} is {LABEL[r.status]}: {r.progress:.0%} done"]
        if self.delta is not None:
            change, span = self.delta
            parts[0] += f" ({change * 100:+.0f} points in {span})"
        bad = [f"{counts[s]} milestone{'s' if counts[s] != 1 else ''} {LABEL[s]}"
               for s in (Status.OFF_TRACK, Status.AT_RISK) if counts[s]]
        if bad:
            parts.append(" and ".join(bad))
        return "; ".join(parts) + "."


class _Series:
    """The history by entity, with the report's own moment as the last point."""

    def __init__(self, report: Report, history: Iterable[Snapshot | SnapshotPoint]) -> None:
        self.as_of = report.as_of
        self._by_entity: dict[str, dict[datetime, Snapshot | SnapshotPoint]] = defaultdict(dict)
        for snapshot in history:
            if snapshot.plan == report.plan and snapshot.as_of <= report.as_of:
                self._by_entity[snapshot.entity][snapshot.as_of] = snapshot

    def of(self, entity: str) -> list[Snapshot | SnapshotPoint]:
        return [s for at, s in sorted(self._by_entity.get(entity, {}).items())
                if at < self.as_of]

    def progress(self, entity: str, now: float) -> list[tuple[datetime, float]]:
        return [(s.as_of, s.progress) for s in self.of(entity)] + [(self.as_of, now)]

    def burnup(self, milestone: MilestoneReport, *, points: bool) -> list[Point]:
        counts = milestone.items
        out = [
            Point(at=s.as_of, total=(s.points_total or 0.0) if points else s.items_total,
                  done=(s.points_done or 0.0) if points else s.items_done)
            for s in self.of(milestone.id)
        ]
        out.append(Point(at=self.as_of,
                         total=(counts.points_total or 0.0) if points else counts.total,
                         done=(counts.points_done or 0.0) if points else counts.done))
        return out


# -- rendering ---------------------------------------------------------------------------


def _visible(value: object) -> object:
    """Every printed text with its control characters shown escaped (Markup is ours)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


@lru_cache(maxsize=1)
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("stratmap.publish", "templates"), autoescape=True,
        undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, finalize=_visible,
        bytecode_cache=_bytecode_cache(),
    )
    environment.globals.update(LABEL=LABEL)
    return environment


def _bytecode_cache() -> FileSystemBytecodeCache | None:
    """The compiled template, kept between runs in Jinja's own per-user cache folder
    (compiling it was a fifth of a second of every report); keyed by the template's
    checksum, so an upgraded template compiles again. None where the folder cannot be
    made safely (Jinja refuses one another user owns): the page is the same, only slower."""
    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def render(report: Report, *, history: Sequence[Snapshot | SnapshotPoint] = (),
           links: Mapping[str, str] | None = None, plan: Plan | None = None) -> str:
    """The HTML page of ``report``, with burn-up charts from ``history``.

    ``links`` maps tracker keys to item URLs (see :func:`item_links`); ``plan`` adds the
    vision and shows dates in the plan's time zone.
    """
    page = Page(report, history=history, links=links if links is not None else {}, plan=plan)
    return _environment().get_template("report.html.j2").render(page=page, r=report)
