"""The Markdown report (Prefect artifact, wiki page): the sample's golden file, the Mermaid
map, and hostile tracker text rendered by a CommonMark renderer and opened in Chromium.

Rewrite the golden file after an intended change with ``STRATMAP_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from stratmap.flows.cli import main
from stratmap.publish.markdown import mermaid_text, render
from tests import hostile
from tests.browser import Browser
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "northwind" / "plan.yaml"
AS_OF = "2027-03-01T09:00Z"
GOLDEN = Path(__file__).resolve().parent / "golden" / "northwind.md"
NODE = re.compile(r'^    (plan|g\d+|g\d+m\d+)\["([^"<>\[\]`]*)(<br/>[^"<>\[\]`]*)?"\]$')
"""A Mermaid node line as the renderer writes it: nothing in a label can end it."""
STRUCTURE = re.compile(
    r"^(```(mermaid)?|flowchart LR|    \w+ --> \w+|    \w+ -\. depends on \.-> \w+"
    r"|    classDef status_\w+ [\w:#,]+|    class [\w,]+ status_\w+)$")


def mermaid_block(markdown: str) -> list[str]:
    start = markdown.index("```mermaid")
    end = markdown.index("```", start + 3)
    return markdown[start:end + 3].splitlines()


def commonmark(markdown: str) -> MarkdownIt:
    """CommonMark with tables, passing raw HTML through: the least forgiving renderer."""
    return MarkdownIt("commonmark", {"html": True}).enable("table")


@pytest.fixture(scope="module")
def sample_markdown(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The sample's Markdown report, rendered now (never read back from the golden file)."""
    folder = tmp_path_factory.mktemp("sample")
    db = f"sqlite:///{folder / 's.db'}"
    assert main(["run", str(SAMPLE), "--db", db, "--as-of", AS_OF, "-q"]) == 0
    out = folder / "report.md"
    assert main(["report", str(SAMPLE), "--db", db, "--as-of", AS_OF, "-o", str(out)]) == 0
    return out.read_text(encoding="utf-8")


def test_the_sample_report_matches_its_golden_file(sample_markdown: str) -> None:
    text = sample_markdown
    if os.environ.get("STRATMAP_UPDATE_GOLDEN"):
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text, encoding="utf-8")
    assert GOLDEN.exists(), "no golden file: run with STRATMAP_UPDATE_GOLDEN=1 to write it"
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the Markdown report changed; if intended, rerun with STRATMAP_UPDATE_GOLDEN=1 and "
        "review the diff of tests/golden/northwind.md")


def test_the_sample_map_is_a_mermaid_flowchart_of_goals_and_milestones(
        sample_markdown: str) -> None:
    lines = mermaid_block(sample_markdown)
    nodes = [line for line in lines if NODE.match(line)]
    assert len(nodes) == 1 + 4 + 10
    assert all(NODE.match(line) or STRUCTURE.match(line) for line in lines)
    assert "    g2m2 -. depends on .-> g2m1" in lines  # crm.training needs crm.migration
    assert "    class plan,g2,g2m1 status_off_track" in lines
    assert any("12/14 items" in line for line in nodes)


def test_mermaid_labels_escape_everything_but_plain_text() -> None:
    assert mermaid_text("Launch: the site (v2), 50% - ok/done") == (
        "Launch: the site (v2), 50% - ok/done")
    assert mermaid_text('a"b') == "a#34;b"
    assert mermaid_text("<script>") == "#60;script#62;"
    assert mermaid_text("```end``` #35; [x]") == (
        "#96;#96;#96;end#96;#96;#96; #35;35#59; #91;x#93;")
    assert mermaid_text("Grüße\nzwei  Zeilen") == "Grüße zwei Zeilen"


def test_hostile_text_cannot_break_the_markdown() -> None:
    _plan, _evidence, report, _past = hostile.report_and_history()
    markdown = render(report)
    tokens = commonmark(markdown).parse(markdown)
    inline = [child for token in tokens for child in (token.children or [])]
    assert [t.content for t in tokens + inline if t.type.startswith("html")] == []
    assert [t for t in inline if t.type == "link_open"] == []
    for line in mermaid_block(markdown):
        assert NODE.match(line) or STRUCTURE.match(line), line
    # Each table row keeps its header's cells: no title's "|" split one.
    header = None
    for line in markdown.splitlines():
        pipes = len(re.findall(r"(?<!\\)\|", line))
        if not line.startswith("|"):
            header = None
        elif header is None:
            header = pipes
        else:
            assert pipes == header, line


def test_hostile_markdown_rendered_to_html_shows_text_and_runs_nothing(
        browser: Browser, tmp_path: Path) -> None:
    _plan, _evidence, report, _past = hostile.report_and_history()
    markdown = render(report)
    page = tmp_path / "markdown.html"
    # No Content-Security-Policy here: only the escaping stands between payload and page.
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'><title>md</title>"
                    "<link rel='icon' href='data:,'></head><body>"
                    + commonmark(markdown).render(markdown) + "</body></html>",
                    encoding="utf-8")
    tab = browser.tab()
    tab.open(page.resolve().as_uri())

    assert tab.evaluate("typeof window.__pwned") == "undefined"
    assert tab.evaluate("document.scripts.length") == 0
    assert tab.evaluate("document.querySelectorAll('img, a, iframe').length") == 0
    assert tab.errors == []
    cells = tab.evaluate("[...document.querySelectorAll('td')].map(td => td.innerText)")
    assert f"{hostile.TABLE} # heading ({'g.m1'})" in cells
    assert any(hostile.IMAGE in cell and hostile.TABLE in cell for cell in cells)
    text = tab.evaluate("document.body.innerText")
    for payload in hostile.PAYLOADS:
        assert payload in text


# -- the map as an image (the Prefect UI draws images, not Mermaid) -----------------------------


def test_with_a_map_image_the_map_section_is_that_image_not_mermaid() -> None:
    _plan, _evidence, report, _past = hostile.report_and_history()
    text = render(report, map_image="data:image/svg+xml;base64,PHN2Zy8+")
    section = text[text.index("## Strategic map"):]
    assert "```mermaid" not in text
    assert section.splitlines()[2] == (
        "![Strategic map: the plan, its goals and milestones, coloured by status]"
        "(data:image/svg+xml;base64,PHN2Zy8+)")
    # (CommonMark renderers such as markdown-it refuse SVG data URIs; the Prefect UI draws
    # them, which tests/test_prefect_server.py checks in Chromium.)
    assert "```mermaid" in render(report)  # without an image: Mermaid, as before


def test_the_map_image_is_the_graphviz_map_embedded_as_a_data_uri() -> None:
    import base64
    import xml.etree.ElementTree as ET

    from stratmap.publish.map import strategic_map_image

    _plan, _evidence, report, _past = hostile.report_and_history()
    uri = strategic_map_image(report)
    assert uri is not None and uri.startswith("data:image/svg+xml;base64,")
    svg = base64.b64decode(uri.split(",", 1)[1]).decode()
    root = ET.fromstring(svg)  # a whole, well-formed SVG document: hostile titles escaped
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    drawn = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for goal in report.goals:
        assert goal.title[:12].strip() in drawn or goal.id in svg
    assert 'fill="#ffffff"' in svg  # an opaque card: readable on the UI's dark theme too
    # Nothing in it can end the Markdown image: base64 has no ')' or ']'.
    assert not set(uri) & set(")] \n")


def test_without_graphviz_or_for_a_huge_map_the_map_stays_mermaid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import stratmap.publish.map
    from stratmap.publish.map import strategic_map_image

    _plan, _evidence, report, _past = hostile.report_and_history()
    monkeypatch.setattr(stratmap.publish.map, "MAX_IMAGE_BYTES", 100)
    assert strategic_map_image(report) is None
    monkeypatch.undo()
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    assert strategic_map_image(report) is None
    assert "```mermaid" in render(report, map_image=strategic_map_image(report))
