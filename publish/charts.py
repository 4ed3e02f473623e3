"""Charts for the HTML report, drawn by matplotlib as SVG to inline in the page.

matplotlib's object API (a :class:`~matplotlib.figure.Figure` with no pyplot) keeps no
global state and needs no GUI backend; text stays text in the SVG (``svg.fonttype:
none``), so the page stays small and its numbers searchable. No tracker text is drawn
into a chart (matplotlib would read ``$...$`` in it as mathtext): charts hold dates and
numbers, and the page around them says what they are.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
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

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "text.parse_math": False,  # never read "$...$" in a label as mathtext
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 8.5,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "legend.frameon": False,
}


@dataclass(frozen=True)
class Point:
    """A milestone's scope and work done at one moment."""

    at: datetime
    total: float
    done: float


def _svg(figure: Any, scope: str) -> str:
    buffer = io.StringIO()
    # The constrained layout fits everything in: no second, "tight" drawing pass.
    figure.savefig(buffer, format="svg", metadata={"Date": None}, transparent=True)
    return scoped(buffer.getvalue(), scope)


_ID = re.compile(r'\bid="([^"]+)"')
_REF = re.compile(r'(url\(#|href="#)([^")]+)')


def scoped(svg: str, scope: str) -> str:
    """The SVG element alone (no XML prolog), its ids prefixed with ``scope``.

    Several generated SVGs share one page; matplotlib numbers its ids per figure
    (``figure_1``, ``axes_1``), so each chart's ids and references get its own prefix.
    """
    start = svg.find("<svg")
    if start < 0:
        raise ValueError("not an SVG document")
    body = svg[start:]
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", scope) + "-"
    body = _ID.sub(lambda m: f'id="{prefix}{m.group(1)}"', body)
    return _REF.sub(lambda m: f"{m.group(1)}{prefix}{m.group(2)}", body)


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _dates(axes: Any) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(
        ConciseDateFormatter(locator, show_offset=False))  # type: ignore[no-untyped-call]


def _day(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local.day} {local:%b %Y}"


def _from_scope(points: list[Point]) -> list[Point]:
    """The points from the last empty one before work appeared (weeks of nothing cut)."""
    first = next((n for n, p in enumerate(points) if p.total > 0), len(points) - 1)
    return points[max(first - 1, 0):]


def burnup_svg(points: Sequence[Point], *, as_of: datetime, due: datetime | None,
               start: datetime | None, forecast: datetime | None, unit: str, status: str,
               scope: str, zone: str = "UTC") -> str:
    """Scope and work done over time, with the due date and the forecast finish.

    ``zone`` is the plan's time zone, for the date axis and the labels.
    """
    import matplotlib

    ordered = _from_scope(sorted(points, key=lambda p: p.at))
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"stratmap-{scope}",
                                "timezone": zone}):
        figure = _figure(4.6, 2.5)
        axes = figure.add_subplot()
        axes.grid(axis="y", color=GRID, linewidth=0.6)
        colour = STATUS_COLOUR.get(status, INK)
        if ordered:
            when = [p.at for p in ordered]
            axes.step(when, [p.total for p in ordered], where="post", color=MUTED,
                      linewidth=1.2, label=f"scope ({unit})")
            axes.fill_between(when, [p.done for p in ordered], step="post", color=colour,
                              alpha=0.18, linewidth=0)
            axes.step(when, [p.done for p in ordered], where="post", color=colour,
                      linewidth=1.8, label="done")
        last = ordered[-1] if ordered else None
        right = as_of
        if forecast is not None and last is not None and last.done < last.total:
            shown = min(forecast, as_of + FORECAST_HORIZON)
            axes.plot([last.at, shown], [last.done, last.total], linestyle=(0, (3, 2)),
                      color=FORECAST, linewidth=1.4,
                      label=f"forecast {_day(forecast, zone)}")
            axes.plot([shown], [last.total], marker="o", markersize=3.5, color=FORECAST)
            right = max(right, shown)
        if due is not None:
            axes.axvline(due, color=DUE, linewidth=1.1, linestyle=(0, (5, 2)),
                         label=f"due {_day(due, zone)}")
            right = max(right, due)
        if start is not None:
            axes.axvline(start, color=MUTED, linewidth=0.8, linestyle=":", label="start")
        axes.axvline(as_of, color=INK, linewidth=0.6, alpha=0.5)
        left = min([p.at for p in ordered] + ([start] if start else []), default=as_of)
        span = max(right - left, timedelta(days=14))
        axes.set_xlim(left - span * 0.02, right + span * 0.04)
        top = max([p.total for p in ordered] + [1.0])
        axes.set_ylim(0, top * 1.08)
        axes.yaxis.get_major_locator().set_params(integer=True)
        _dates(axes)
        figure.legend(loc="outside lower center", fontsize=7, ncols=3, handlelength=1.6)
        return _svg(figure, scope)


def trend_svg(series: Mapping[str, Sequence[tuple[datetime, float]]], *, as_of: datetime,
              scope: str, zone: str = "UTC") -> str:
    """Progress (0..1) over time, one line per named series (the plan, then each goal)."""
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"stratmap-{scope}",
                                "timezone": zone}):
        figure = _figure(6.4, 2.6)
        axes = figure.add_subplot()
        axes.grid(axis="y", color=GRID, linewidth=0.6)
        for number, (name, values) in enumerate(series.items()):
            ordered = sorted(values)
            if not ordered:
                continue
            first = number == 0
            axes.plot([at for at, _ in ordered], [v for _, v in ordered],
                      color=INK if first else SERIES[(number - 1) % len(SERIES)],
                      linewidth=2.4 if first else 1.3, label=name)
        axes.set_ylim(0, 1.02)
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.axvline(as_of, color=INK, linewidth=0.6, alpha=0.5)
        _dates(axes)
        figure.legend(loc="outside lower center", fontsize=7, ncols=min(len(series), 6),
                      handlelength=1.6)
        return _svg(figure, scope)


def measure_svg(values: Sequence[tuple[datetime, float]], *, baseline: tuple[datetime, float],
                target: tuple[datetime, float], rate: float | None, as_of: datetime,
                status: str, scope: str, zone: str = "UTC") -> str:
    """A measure over time: its values, the straight path from baseline to target (the
    target line), and the trend's forecast from the last value to the target date."""
    import matplotlib

    ordered = sorted(values)
    with matplotlib.rc_context({**_RC, "svg.hashsalt": f"stratmap-{scope}",
                                "timezone": zone}):
        figure = _figure(3.6, 1.9)
        axes = figure.add_subplot()
        axes.grid(axis="y", color=GRID, linewidth=0.6)
        axes.plot([baseline[0], target[0]], [baseline[1], target[1]], color=MUTED,
                  linewidth=1.0, linestyle="--", label="target line")
        axes.plot([target[0]], [target[1]], marker="o", color=DUE, markersize=4,
                  linestyle="none", label="target")
        if ordered:
            axes.plot([at for at, _ in ordered], [v for _, v in ordered],
                      color=STATUS_COLOUR.get(status, INK), linewidth=1.6, marker=".",
                      markersize=3, label="values")
            last_at, last = ordered[-1]
            if rate is not None and target[0] > last_at:
                days = (target[0] - last_at).total_seconds() / 86400
                axes.plot([last_at, target[0]], [last, last + rate * days], color=FORECAST,
                          linewidth=1.0, linestyle=":", label="forecast")
        axes.axvline(as_of, color=INK, linewidth=0.6, alpha=0.5)
        _dates(axes)
        figure.legend(loc="outside lower center", fontsize=6.5, ncols=4, handlelength=1.4)
        return _svg(figure, scope)
