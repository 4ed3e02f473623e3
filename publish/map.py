"""The strategic map: the plan → goals → milestones (with their work counts), coloured by
status, with ``depends_on`` arrows. Laid out by Graphviz (``dot -Tsvg``).

The graph is built with the ``graphviz`` package, which quotes every attribute; labels are
Graphviz HTML-like labels whose text is XML-escaped here, so a title such as
``<script>`` or ``\\N`` is drawn as those characters. Node names are generated (``g0``,
``g0m1``), never taken from the plan.
"""

from __future__ import annotations

import base64
import html
import logging
import re
import textwrap
from collections.abc import Mapping

from stratmap.models.report import GoalReport, MilestoneReport, Report, Status
from stratmap.models.text import visible
from stratmap.publish.charts import scoped

log = logging.getLogger(__name__)

FILL = {
    Status.DONE: ("#dafbe1", "#2f7d4a"),
    Status.NOT_STARTED: ("#eef1f4", "#7a828a"),
    Status.ON_TRACK: ("#dafbe1", "#2f7d4a"),
    Status.AT_RISK: ("#fff1c7", "#b7791f"),
    Status.OFF_TRACK: ("#ffdcd7", "#c0392b"),
}
"""(fill, border) per status."""
LABEL = {
    Status.DONE: "done",
    Status.NOT_STARTED: "not started",
    Status.ON_TRACK: "on track",
    Status.AT_RISK: "at risk",
    Status.OFF_TRACK: "off track",
}
FONT = "DejaVu Sans,Helvetica,Arial,sans-serif"
WRAP = 30


def anchors(report: Report) -> dict[str, str]:
    """An HTML id per goal and milestone: readable, unique, whatever the ids hold."""
    found: dict[str, str] = {}
    used: set[str] = {"summary", "map", "goals", "findings", "people"}
    refs = [(g.id, "goal") for g in report.goals] + [
        (m.id, "ms") for g in report.goals for m in g.milestones]
    for ref, prefix in refs:
        base = f"{prefix}-" + (re.sub(r"[^a-z0-9_-]+", "-", ref.lower()).strip("-") or "x")
        anchor, n = base, 1
        while anchor in used:
            n += 1
            anchor = f"{base}-{n}"
        used.add(anchor)
        found[ref] = anchor
    return found


class MapUnavailable(RuntimeError):
    """Graphviz's ``dot`` is not installed: the page shows the map as a list instead."""


def _text(text: str) -> str:
    """Text for an HTML-like label: XML-escaped, and each backslash doubled (``dot``
    reads ``\\N`` as the node's name even there, and ``\\\\`` as one backslash)."""
    return html.escape(visible(text)).replace("\\", "\\\\")


def _tip(text: str) -> str:
    """Text for a tooltip attribute: control characters escaped, then quoted for dot."""
    import graphviz

    return str(graphviz.escape(visible(text)))


def _lines(text: str, *, bold: bool = False, size: int | None = None,
           colour: str | None = None, wrap: int = WRAP) -> str:
    wrapped = textwrap.wrap(" ".join(text.split()), wrap) or [""]
    body = '<BR ALIGN="LEFT"/>'.join(_text(line) for line in wrapped)
    if bold:
        body = f"<B>{body}</B>"
    if size or colour:
        attributes = (f' POINT-SIZE="{size}"' if size else "") + (
            f' COLOR="{colour}"' if colour else "")
        body = f"<FONT{attributes}>{body}</FONT>"
    return body + '<BR ALIGN="LEFT"/>'


def _label(title: str, *facts: str) -> str:
    parts = [_lines(title, bold=True)]
    if facts:
        parts.append(_lines(" · ".join(facts), size=9, colour="#3d444d", wrap=44))
    return "<" + "".join(parts) + ">"


def _goal_facts(goal: GoalReport) -> list[str]:
    return [LABEL[goal.status], f"{goal.progress:.0%}", f"owner {goal.owner or '—'}"]


def _milestone_facts(milestone: MilestoneReport) -> list[str]:
    counts = milestone.items
    work = (f"{counts.points_done:g}/{counts.points_total:g} points"
            if counts.points_total is not None and counts.points_done is not None
            else f"{counts.done}/{counts.total} items")
    facts = [LABEL[milestone.status], work]
    if milestone.due:
        facts.append(f"due {milestone.due}")
    return facts


def strategic_map_svg(report: Report, anchors: Mapping[str, str],
                      *, background: str = "transparent") -> str:
    """The map as an inline SVG; nodes link to ``#anchor`` of their section of the page.

    Raises :class:`MapUnavailable` when Graphviz's ``dot`` is not installed.
    """
    import graphviz

    graph = graphviz.Digraph(
        "strategic_map",
        graph_attr={"rankdir": "LR", "bgcolor": background, "nodesep": "0.18",
                    "ranksep": "0.45", "fontname": FONT, "pad": "0.1",
                    "tooltip": _tip(report.plan)},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": FONT,
                   "fontsize": "11", "margin": "0.12,0.06", "penwidth": "1.4",
                   "target": "_self"},
        edge_attr={"color": "#8c959f", "arrowsize": "0.6", "fontname": FONT,
                   "fontsize": "8"},
    )
    fill, border = FILL[report.status]
    graph.node("plan", _label(report.plan, LABEL[report.status], f"{report.progress:.0%}"),
               fillcolor="#ffffff", color=border, penwidth="2", id="plan",
               tooltip=_tip(report.plan), URL="#summary")
    names: dict[str, str] = {}
    for g_number, goal in enumerate(report.goals):
        fill, border = FILL[goal.status]
        goal_node = f"g{g_number}"
        graph.node(goal_node, _label(goal.title, *_goal_facts(goal)), fillcolor=fill,
                   color=border, penwidth="2", id=anchors[goal.id],
                   tooltip=_tip(f"{goal.id}: {goal.title}"),
                   URL=f"#{anchors[goal.id]}")
        graph.edge("plan", goal_node)
        for m_number, milestone in enumerate(goal.milestones):
            fill, border = FILL[milestone.status]
            node = f"g{g_number}m{m_number}"
            names[milestone.id] = node
            graph.node(node, _label(milestone.title, *_milestone_facts(milestone)),
                       fillcolor=fill, color=border, id=anchors[milestone.id],
                       tooltip=_tip(f"{milestone.id}: {milestone.title}"),
                       URL=f"#{anchors[milestone.id]}")
            graph.edge(goal_node, node)
    for goal in report.goals:
        for milestone in goal.milestones:
            for needed in milestone.depends_on:
                if needed in names:
                    graph.edge(names[milestone.id], names[needed], style="dashed",
                               color="#1f6feb", fontcolor="#1f6feb", label="depends on",
                               constraint="false", penwidth="1.2",
                               **{"class": "depends-on"})
    try:
        svg = graph.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as error:
        raise MapUnavailable(
            "Graphviz's `dot` is not installed (Debian: apt-get install graphviz)"
        ) from error
    return scoped(svg, "map")


MAX_IMAGE_BYTES = 600_000
"""Past this size (a plan of several hundred milestones) the map stays Mermaid text."""


def strategic_map_image(report: Report) -> str | None:
    """The map as a ``data:image/svg+xml`` URI for Markdown that cannot run Mermaid (the
    Prefect UI shows Mermaid as code, but draws images); None without Graphviz or when the
    map is too large to embed."""
    try:
        svg = strategic_map_svg(report, anchors(report), background="#ffffff")
    except MapUnavailable as problem:
        log.info("strategic map as Mermaid text: %s", problem)
        return None
    data = base64.b64encode(svg.encode()).decode()
    if len(data) > MAX_IMAGE_BYTES:
        log.info("strategic map as Mermaid text: %d bytes is too large to embed", len(data))
        return None
    return "data:image/svg+xml;base64," + data
