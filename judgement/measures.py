"""Judging a plan's measures: where each number stands, its trend, and the two rules.

- ``off_target``: the trend (least squares over the measure's recent ``window``, from at
  least :data:`MIN_POINTS` values) will not reach the target by its date; past the date,
  a target not reached is missed (critical, the scope is off_track).
- ``stale_measure``: no value for longer than the measure's ``every`` (the clock starts at
  the baseline date when there is no value at all).

Pure like the engine: values and ``as_of`` in, a :class:`MeasureJudgement` out; the engine
turns its findings into the scope's findings (``judgement.engine.Judgement.measured``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from stratmap.models.plan import Measure, Plan, format_duration
from stratmap.models.records import MeasureValue
from stratmap.models.report import Kind, MeasurePointReport, MeasureReport, Severity

MIN_POINTS = 4
"""The fewest values in the window for a trend: fewer make no ``off_target`` forecast."""
DAY = 86400.0
_EPSILON = 1e-9
"""A forecast this close to the target (relative) reaches it: rounding is not a finding."""


@dataclass(frozen=True)
class MeasureFinding:
    kind: Kind
    severity: Severity
    message: str
    evidence: dict[str, Any]


@dataclass(frozen=True)
class MeasureJudgement:
    report: MeasureReport
    reached: bool
    findings: list[MeasureFinding] = field(default_factory=list)


def trend(values: Sequence[MeasureValue]) -> tuple[float, float] | None:
    """Least squares over ``values``: (slope per day, value at the first value's time), or
    None when all values share one moment."""
    origin = values[0].at
    xs = [(v.at - origin).total_seconds() / DAY for v in values]
    ys = [v.value for v in values]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return slope, mean_y - slope * mean_x


def judge_measure(plan: Plan, ref: str, measure: Measure, values: Sequence[MeasureValue], *,
                  as_of: datetime) -> MeasureJudgement:
    """The measure at ``as_of`` from its stored ``values`` (any order; later ones ignored)."""
    known = sorted((v for v in values if v.at <= as_of), key=lambda v: v.at)
    baseline_at = plan.moment(measure.baseline.date)
    target_at = plan.moment(measure.target.date)
    base, goal = measure.baseline.value, measure.target.value
    sign = 1.0 if measure.direction == "up" else -1.0
    last = known[-1] if known else None
    reached = last is not None and sign * (last.value - goal) >= 0
    progress = 0.0 if last is None else min(1.0, max(0.0, (last.value - base) / (goal - base)))
    recent = [v for v in known if v.at >= as_of - measure.window]
    fitted = trend(recent) if len(recent) >= MIN_POINTS else None
    rate = forecast = required = None
    if fitted is not None:
        rate, start = fitted
        forecast = start + rate * (target_at - recent[0].at).total_seconds() / DAY
    if last is not None and target_at > last.at:
        required = (goal - last.value) / ((target_at - last.at).total_seconds() / DAY)
    tz = ZoneInfo(plan.timezone)

    def day(moment: datetime) -> str:
        return moment.astimezone(tz).date().isoformat()

    def number(value: float) -> str:
        return f"{value:,.6g}" + (f" {measure.unit}" if measure.unit else "")

    findings: list[MeasureFinding] = []
    evidence: dict[str, Any] = {
        "measure": ref, "last_value": last.value if last else None,
        "last_at": last.at.isoformat() if last else None, "target": goal,
        "target_date": target_at.isoformat(), "required_rate": _round(required),
        "rate": _round(rate), "forecast": _round(forecast), "points": len(recent),
        "window": format_duration(measure.window),
    }
    if not reached and last is not None and as_of > target_at:
        findings.append(MeasureFinding(
            Kind.OFF_TARGET, Severity.CRITICAL,
            f"{ref} missed its target: {number(last.value)} on {day(last.at)}, the target was "
            f"{number(goal)} by {day(target_at)}", evidence))
    elif not reached and forecast is not None and sign * (forecast - goal) < -_EPSILON * max(
            1.0, abs(goal)):
        findings.append(MeasureFinding(
            Kind.OFF_TARGET, Severity.WARNING,
            f"{ref} is off target: at {number(last.value if last else base)}, its trend "
            f"({rate:+,.4g}/day) reaches {number(forecast)} by {day(target_at)}, not "
            f"{number(goal)}; that needs {required or 0:+,.4g}/day", evidence))
    if measure.every is not None:
        clock = last.at if last is not None else baseline_at
        if as_of - clock > measure.every:
            since = "no value yet" if last is None else f"the last is from {day(last.at)}"
            findings.append(MeasureFinding(
                Kind.STALE_MEASURE, Severity.WARNING,
                f"{ref} has had no new value for {_days(as_of - clock)} days ({since}; "
                f"expected every {format_duration(measure.every)})",
                {"measure": ref, "last_at": last.at.isoformat() if last else None,
                 "every": format_duration(measure.every)}))
    report = MeasureReport(
        id=ref, title=measure.title, unit=measure.unit, direction=measure.direction,
        lead=measure.lead,
        baseline=MeasurePointReport(value=base, date=measure.baseline.date),
        target=MeasurePointReport(value=goal, date=measure.target.date),
        last_value=last.value if last else None, last_at=last.at if last else None,
        progress=round(progress, 4), rate=_round(rate), required_rate=_round(required),
        forecast=_round(forecast), values=[(v.at, v.value) for v in known],
    )
    return MeasureJudgement(report=report, reached=reached, findings=findings)


def judge_scope(plan: Plan, ref: str, measures: Sequence[Measure],
                values: Mapping[str, Sequence[MeasureValue]], *,
                as_of: datetime) -> list[MeasureJudgement]:
    """A goal's or milestone's own measures (``ref`` is the scope's reference) at ``as_of``;
    the engine and the history's sweep both judge a scope's measures through this."""
    return [judge_measure(plan, f"{ref}.{measure.id}", measure,
                          values.get(f"{ref}.{measure.id}", ()), as_of=as_of)
            for measure in measures]


def missed(judged: Sequence[MeasureJudgement]) -> bool:
    """A target date passed without the target reached: the scope is off_track."""
    return any(f.kind is Kind.OFF_TARGET and f.severity is Severity.CRITICAL
               for j in judged for f in j.findings)


def measured_progress(judged: Sequence[MeasureJudgement]) -> float:
    """Progress from measures: the mean over the lag measures (the results), else over all."""
    lag = [j for j in judged if not j.report.lead] or list(judged)
    return sum(j.report.progress for j in lag) / len(lag) if lag else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def _days(span: timedelta) -> int:
    return int(span.total_seconds() // DAY)
