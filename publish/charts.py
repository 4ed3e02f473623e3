"""Charts for the HTML report, written as SVG straight from the data to inline in the page.

A chart is a few dozen elements: axes, ticks, step lines and a legend, laid out here in
the SVG's own units (its ``viewBox``; the page scales it to the column). No plotting
library draws them: a matplotlib figure per milestone took about a quarter of a second,
so a plan of hundreds of milestones waited a minute for its page; these take well under
a millisecond each. Text stays text (searchable, small) and every text is escaped; no
tracker text is drawn into a chart: charts hold dates and numbers (and the plan's goal
ids in the trend's legend), and the page around them says what they are. Styles are
presentation attributes, never ``style=`` (Prefect's UI drops those, see
:mod:`stratmap.publish.prefect_ui`), and there are no ids, so several charts share a page.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from zoneinfo import ZoneInfo

STATUS_COLOUR = {
    "done": "#2f7d4a",
    "not_started": "#7a828a",
    "on_track": "#2f7d4a",
    "at_risk": "#b7791f",
    "off_track": "#c0392b",
}
INK = "#24292f"
MUTED = "#6e7781"
GRID = "#d8dee4"
DUE = "#c0392b"
FORECAST = "#1f6feb"
SERIES = ("#1f6feb", "#8250df", "#bf3989", "#1a7f37", "#bc4c00", "#0a7a8a", "#6e7781")
"""Colours of the goals' lines, in plan order."""
FORECAST_HORIZON = timedelta(days=365)
"""A forecast further out than this is drawn to the edge and labelled with its date."""

FONT = 11.0
"""Tick labels' size in the chart's units (a chart is 460 or 640 units wide)."""
LEGEND_FONT = 9.5
LEGEND_ROW = 14.0
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Point:
    """A milestone's scope and work done at one moment."""

    at: datetime
    total: float
    done: float


@dataclass(frozen=True)
class _Key:
    """One legend entry: a line sample (or a dot) and its label."""

    label: str
    colour: str
    width: float
    dash: str | None = None
    opacity: float = 1.0


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')


def scoped(svg: str, scope: str) -> str:
    """The SVG element alone (no XML prolog), its ids prefixed with ``scope``.

    Several generated SVGs share one page; a tool may number its ids per drawing (Graphviz
    names nodes ``node1``, ``node2``), so each drawing's ids and references get its own
    prefix.
    """
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    body = svg[start:]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", scope) + "-"
    body = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', body)
    return _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", body)


def _n(value: float) -> str:
    """A coordinate, short: two decimals at most, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


class _Canvas:
    """A chart's plot area: data (seconds since the epoch, values) to SVG units."""

    def __init__(self, *, width: float, height: float, left: float, right: float,
                 top: float, bottom: float, x: tuple[float, float], y: tuple[float, float],
                 ) -> None:
        self.width, self.height = width, height
        self.x0, self.x1, self.y0, self.y1 = left, width - right, height - bottom, top
        self.domain_x, self.domain_y = x, y
        self.parts: list[str] = []

    def px(self, seconds: float) -> float:
        low, high = self.domain_x
        return self.x0 + (seconds - low) / (high - low) * (self.x1 - self.x0)

    def py(self, value: float) -> float:
        low, high = self.domain_y
        return self.y0 - (value - low) / (high - low) * (self.y0 - self.y1)

    def add(self, element: str) -> None:
        self.parts.append(element)

    def path(self, d: str, *, colour: str, width: float, dash: str | None = None,
             opacity: float = 1.0, fill: str = "none", fill_opacity: float | None = None,
             cap: str = "butt") -> None:
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        if opacity != 1.0:
            extra += f' stroke-opacity="{_n(opacity)}"'
        if fill_opacity is not None:
            extra += f' fill-opacity="{_n(fill_opacity)}"'
        stroke = f'stroke="{colour}" stroke-width="{_n(width)}"' if width else 'stroke="none"'
        self.add(f'<path d="{d}" fill="{fill}" {stroke} stroke-linecap="{cap}"{extra}/>')

    def text(self, x: float, y: float, label: str, *, anchor: str = "middle",
             size: float = FONT, colour: str = MUTED) -> None:
        self.add(f'<text x="{_n(x)}" y="{_n(y)}" font-size="{_n(size)}" fill="{colour}" '
                 f'text-anchor="{anchor}">{escape(label)}</text>')

    def vline(self, seconds: float, *, colour: str, width: float, dash: str | None = None,
              opacity: float = 1.0) -> None:
        x = _n(self.px(seconds))
        self.path(f"M{x} {_n(self.y0)}V{_n(self.y1)}", colour=colour, width=width,
                  dash=dash, opacity=opacity)

    def y_axis(self, ticks: Iterable[tuple[float, str]]) -> None:
        """Horizontal grid lines with their labels at the left."""
        for value, label in ticks:
            y = self.py(value)
            self.path(f"M{_n(self.x0)} {_n(y)}H{_n(self.x1)}", colour=GRID, width=0.6)
            self.text(self.x0 - 5, y + FONT * 0.35, label, anchor="end")
        self.path(f"M{_n(self.x0)} {_n(self.y1)}V{_n(self.y0)}H{_n(self.x1)}",
                  colour=GRID, width=0.8)

    def x_axis(self, ticks: Iterable[tuple[float, str]]) -> None:
        """Date ticks below the plot area."""
        for seconds, label in ticks:
            x = self.px(seconds)
            self.path(f"M{_n(x)} {_n(self.y0)}v3.5", colour=MUTED, width=0.8)
            self.text(x, self.y0 + 4 + FONT, label)

    def legend(self, keys: Sequence[_Key], *, columns: int) -> None:
        """The keys in rows of ``columns`` below the axis, centred like the plot."""
        top = self.y0 + 8 + FONT + 6
        for row_start in range(0, len(keys), columns):
            row = keys[row_start:row_start + columns]
            widths = [24 + len(k.label) * LEGEND_FONT * 0.56 + 12 for k in row]
            x = (self.width - sum(widths)) / 2
            y = top + (row_start // columns) * LEGEND_ROW + LEGEND_ROW / 2
            for key, width in zip(row, widths, strict=True):
                self.path(f"M{_n(x)} {_n(y)}h18", colour=key.colour, width=key.width,
                          dash=key.dash, opacity=key.opacity)
                self.text(x + 22, y + LEGEND_FONT * 0.35, key.label, anchor="start",
                          size=LEGEND_FONT, colour=INK)
                x += width

    def svg(self, label: str) -> str:
        return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(self.width)}" '
                f'height="{_n(self.height)}" viewBox="0 0 {_n(self.width)} '
                f'{_n(self.height)}" role="img" font-family="DejaVu Sans, sans-serif">'
                f"<title>{escape(label)}</title>" + "".join(self.parts) + "</svg>")


def _legend_height(keys: int, columns: int) -> float:
    return 8 + FONT + 6 + math.ceil(keys / columns) * LEGEND_ROW + 4


def _round_step(raw: float) -> float:
    """The smallest round step (1, 2, 2.5 or 5 times 10^k) of at least ``raw``."""
    magnitude: float = 10.0 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)


def _value_ticks(top: float) -> list[float]:
    """Whole numbers from 0 up to ``top`` at a round step (1, 2, 2.5 or 5 times 10^k)."""
    step = _round_step(max(top / 5, 1.0))
    if step != int(step):
        step = math.ceil(step)
    count = int(top // step)
    return [n * step for n in range(count + 1)]


def _round_ticks(low: float, high: float) -> list[tuple[float, str]]:
    """Three to six round values between ``low`` and ``high`` (a step of 1, 2, 2.5 or 5
    times 10^k), written out with thousands separators and as few decimals as the step
    needs: ``150,000``, ``0.25``, never ``1.5e+05``."""
    step = _round_step((high - low) / 6)
    decimals = next((d for d in range(12) if abs(round(step, d) - step) <= step * 1e-9), 12)
    first = math.ceil(low / step - 1e-9)
    ticks = []
    for n in range(first, math.floor(high / step + 1e-9) + 1):
        value = round(n * step, decimals)
        ticks.append((value, f"{value + 0.0:,.{decimals}f}"))  # + 0.0: never "-0"
    return ticks


def _count(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:g}"


def _date_ticks(left: datetime, right: datetime, zone: ZoneInfo) -> list[tuple[datetime, str]]:
    """Local midnights between ``left`` and ``right`` at a calendar step giving 3-7 ticks.

    Days show as ``3 Mar``; months as ``Mar``, with the year at each January (and at
    the first tick); years as ``2027``.
    """
    start = left.astimezone(zone)
    end = right.astimezone(zone)
    span_days = (right - left).total_seconds() / 86400
    for days in (1, 2, 3, 7, 14):
        if span_days / days <= 7:
            first = start.replace(hour=0, minute=0, second=0, microsecond=0)
            if first < start:
                first += timedelta(days=1)
            if days == 7 or days == 14:
                first += timedelta(days=(7 - first.weekday()) % 7)  # Mondays
            ticks = []
            moment = first
            while moment <= end:
                ticks.append((moment, f"{moment.day} {MONTHS[moment.month - 1]}"))
                moment = (moment + timedelta(days=days)).replace(tzinfo=zone)
            return ticks
    months_span = span_days / 30.44
    for months in (1, 2, 3, 4, 6, 12, 24, 60, 120):
        if months_span / months <= 7:
            break
    index = start.year * 12 + start.month - 1
    if (start.day, start.hour, start.minute, start.second, start.microsecond) != (
            1, 0, 0, 0, 0):
        index += 1
    index += (-index) % months  # steps at calendar multiples: Jan, Apr, Jul, Oct
    ticks = []
    while True:
        moment = datetime(index // 12, index % 12 + 1, 1, tzinfo=zone)
        if moment > end:
            break
        if months >= 12:
            label = str(moment.year)
        elif moment.month == 1 or not ticks:
            label = str(moment.year) if moment.month == 1 else (
                f"{MONTHS[moment.month - 1]} {moment.year}")
        else:
            label = MONTHS[moment.month - 1]
        ticks.append((moment, label))
        index += months
    return ticks


def _day(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.day} {local:%b %Y}"


def _from_scope(points: list[Point]) -> list[Point]:
    """The points from the last empty one before work appeared (weeks of nothing cut)."""
    first = next((n for n, p in enumerate(points) if p.total > 0), len(points) - 1)
    return points[max(first - 1, 0):]


def _steps(canvas: _Canvas, when: Sequence[float], values: Sequence[float]) -> str:
    """A step line holding each value until the next moment (matplotlib's ``post``)."""
    d = [f"M{_n(canvas.px(when[0]))} {_n(canvas.py(values[0]))}"]
    for at, value in zip(when[1:], values[1:], strict=True):
        d.append(f"H{_n(canvas.px(at))}V{_n(canvas.py(value))}")
    return "".join(d)


def burnup_svg(points: Sequence[Point], *, as_of: datetime, due: datetime | None,
               start: datetime | None, forecast: datetime | None, unit: str, status: str,
               scope: str, zone: str = "UTC") -> str:
    """Scope and work done over time, with the due date and the forecast finish.

    ``zone`` is the plan's time zone, for the date axis and the labels; ``scope`` names
    the chart (its title, for screen readers).
    """
    tz = ZoneInfo(zone)
    ordered = _from_scope(sorted(points, key=lambda p: p.at))
    colour = STATUS_COLOUR.get(status, INK)
    keys: list[_Key] = []
    if ordered:
        keys += [_Key(f"scope ({unit})", MUTED, 1.6), _Key("done", colour, 2.4)]
    last = ordered[-1] if ordered else None
    right = as_of
    shown = None
    if forecast is not None and last is not None and last.done < last.total:
        shown = min(forecast, as_of + FORECAST_HORIZON)
        keys.append(_Key(f"forecast {_day(forecast, zone)}", FORECAST, 1.9, "4.2 2.8"))
        right = max(right, shown)
    if due is not None:
        keys.append(_Key(f"due {_day(due, zone)}", DUE, 1.5, "7.5 3"))
        right = max(right, due)
    if start is not None:
        keys.append(_Key("start", MUTED, 1.1, "1.1 1.8"))
    left = min([p.at for p in ordered] + ([start] if start else []), default=as_of)
    span = max(right - left, timedelta(days=14))
    low, high = left - span * 0.02, right + span * 0.04
    top = max([p.total for p in ordered] + [1.0]) * 1.08
    ticks = _value_ticks(top)
    width, height = 460.0, 250.0
    canvas = _Canvas(width=width, height=height, top=8, right=12,
                     left=14 + FONT * 0.62 * max(len(_count(t)) for t in ticks),
                     bottom=_legend_height(len(keys), 3),
                     x=(low.timestamp(), high.timestamp()), y=(0.0, top))
    canvas.y_axis((t, _count(t)) for t in ticks)
    canvas.x_axis((at.timestamp(), label) for at, label in _date_ticks(low, high, tz))
    if ordered:
        when = [p.at.timestamp() for p in ordered]
        done = [p.done for p in ordered]
        base = _n(canvas.py(0))
        canvas.path(f"{_steps(canvas, when, done)}V{base}H{_n(canvas.px(when[0]))}Z",
                    colour=colour, width=0, fill=colour, fill_opacity=0.18)
        canvas.path(_steps(canvas, when, [p.total for p in ordered]), colour=MUTED,
                    width=1.6)
        canvas.path(_steps(canvas, when, done), colour=colour, width=2.4)
    if shown is not None and last is not None:
        x0, y0 = canvas.px(last.at.timestamp()), canvas.py(last.done)
        x1, y1 = canvas.px(shown.timestamp()), canvas.py(last.total)
        canvas.path(f"M{_n(x0)} {_n(y0)}L{_n(x1)} {_n(y1)}", colour=FORECAST, width=1.9,
                    dash="4.2 2.8")
        canvas.add(f'<circle cx="{_n(x1)}" cy="{_n(y1)}" r="2.4" fill="{FORECAST}"/>')
    if due is not None:
        canvas.vline(due.timestamp(), colour=DUE, width=1.5, dash="7.5 3")
    if start is not None:
        canvas.vline(start.timestamp(), colour=MUTED, width=1.1, dash="1.1 1.8")
    canvas.vline(as_of.timestamp(), colour=INK, width=0.8, opacity=0.5)
    canvas.legend(keys, columns=3)
    return canvas.svg(f"Burn-up of {scope}")


SHARE_TOPS = (0.05, 0.1, 0.2, 0.25, 0.5, 1.0)
"""Where a share's axis may end: the first at or above its highest value."""


def trend_svg(series: Mapping[str, Sequence[tuple[datetime, float]]], *, as_of: datetime,
              scope: str, zone: str = "UTC", title: str | None = None,
              top: float = 1.0) -> str:
    """Progress (0..1) over time, one line per named series (the plan, then each goal);
    ``title`` names another share drawn the same way, ``top`` where its axis ends (one of
    :data:`SHARE_TOPS`)."""
    tz = ZoneInfo(zone)
    lines = [(name, sorted(values)) for name, values in series.items()]
    moments = [at for _, values in lines for at, _ in values] + [as_of]
    left, right = min(moments), max(moments)
    span = max(right - left, timedelta(days=1))
    low, high = left - span * 0.05, right + span * 0.05
    keys = [_Key(name, INK if n == 0 else SERIES[(n - 1) % len(SERIES)],
                 3.2 if n == 0 else 1.8) for n, (name, _) in enumerate(lines)]
    columns = max(1, min(len(series), 6))
    canvas = _Canvas(width=640.0, height=260.0, top=8, right=12, left=14 + FONT * 0.62 * 4,
                     bottom=_legend_height(len(keys), columns),
                     x=(low.timestamp(), high.timestamp()), y=(0.0, top * 1.02))
    canvas.y_axis((top * n / 5, f"{top * n * 20:g}%") for n in range(6))
    canvas.x_axis((at.timestamp(), label) for at, label in _date_ticks(low, high, tz))
    for key, (_, values) in zip(keys, lines, strict=True):
        if not values:
            continue
        d = "".join(f"{'L' if i else 'M'}{_n(canvas.px(at.timestamp()))} "
                    f"{_n(canvas.py(value))}" for i, (at, value) in enumerate(values))
        canvas.path(d, colour=key.colour, width=key.width, cap="round")
    canvas.vline(as_of.timestamp(), colour=INK, width=0.8, opacity=0.5)
    canvas.legend(keys, columns=columns)
    return canvas.svg(title or f"Progress of {scope}")


def unmapped_svg(series: Mapping[str, Sequence[tuple[datetime, float]]], *,
                 as_of: datetime, zone: str = "UTC") -> str:
    """The share (0..1) of activity outside the plan, week by week, one line per series
    (all sources first when there are several, then each source), each point a week's end."""
    # A share that stays low is drawn on an axis that ends just above it (10%, say), so
    # its weekly changes show instead of a line along the floor of a 0-100% axis.
    highest = max((value for values in series.values() for _, value in values), default=0.0)
    top = next(t for t in SHARE_TOPS if t >= highest or t == SHARE_TOPS[-1])
    return trend_svg(series, as_of=as_of, scope="unmapped", zone=zone,
                     title="Share of activity on items no milestone selects, by week", top=top)


def measure_svg(values: Sequence[tuple[datetime, float]], *, baseline: tuple[datetime, float],
                target: tuple[datetime, float], rate: float | None, as_of: datetime,
                status: str, scope: str, zone: str = "UTC") -> str:
    """A measure over time: its values, the straight path from baseline to target (the
    target line), and the trend's forecast from the last value to the target date."""
    tz = ZoneInfo(zone)
    ordered = sorted(values)
    colour = STATUS_COLOUR.get(status, INK)
    keys = [_Key("target line", MUTED, 1.0, "4 2.5"), _Key("target", DUE, 3.0)]
    forecast: tuple[datetime, float] | None = None
    if ordered:
        keys.append(_Key("values", colour, 1.6))
        last_at, last = ordered[-1]
        if rate is not None and target[0] > last_at:
            days = (target[0] - last_at).total_seconds() / 86400
            forecast = (target[0], last + rate * days)
            keys.append(_Key("forecast", FORECAST, 1.0, "1.5 2"))
    moments = [at for at, _ in ordered] + [baseline[0], target[0], as_of]
    numbers = [v for _, v in ordered] + [baseline[1], target[1]]
    if forecast is not None:
        numbers.append(forecast[1])
    left, right = min(moments), max(moments)
    span = max(right - left, timedelta(days=7))
    low_x, high_x = left - span * 0.03, right + span * 0.05
    low, high = min(numbers), max(numbers)
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    labels = _round_ticks(low, high)
    canvas = _Canvas(width=360.0, height=190.0, top=8, right=10,
                     left=12 + FONT * 0.62 * max(len(label) for _, label in labels),
                     bottom=_legend_height(len(keys), 4),
                     x=(low_x.timestamp(), high_x.timestamp()), y=(low, high))
    canvas.y_axis(labels)
    canvas.x_axis((at.timestamp(), label) for at, label in _date_ticks(low_x, high_x, tz))

    def point(at: datetime, value: float) -> str:
        return f"{_n(canvas.px(at.timestamp()))} {_n(canvas.py(value))}"

    canvas.path(f"M{point(*baseline)}L{point(*target)}", colour=MUTED, width=1.0,
                dash="4 2.5")
    tx, ty = canvas.px(target[0].timestamp()), canvas.py(target[1])
    canvas.add(f'<circle cx="{_n(tx)}" cy="{_n(ty)}" r="3" fill="{DUE}"/>')
    if ordered:
        canvas.path("".join(f"{'L' if i else 'M'}{point(at, value)}"
                            for i, (at, value) in enumerate(ordered)),
                    colour=colour, width=1.6, cap="round")
        for at, value in ordered:
            x, y = canvas.px(at.timestamp()), canvas.py(value)
            canvas.add(f'<circle cx="{_n(x)}" cy="{_n(y)}" r="1.6" fill="{colour}"/>')
    if forecast is not None:
        canvas.path(f"M{point(*ordered[-1])}L{point(*forecast)}", colour=FORECAST, width=1.0,
                    dash="1.5 2")
    canvas.vline(as_of.timestamp(), colour=INK, width=0.6, opacity=0.5)
    canvas.legend(keys, columns=4)
    return canvas.svg(f"Measure {scope}")
