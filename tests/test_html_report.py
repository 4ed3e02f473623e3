"""The HTML report: one self-contained page, checked as a person sees it, in Chromium.

The browser tests skip only when Chromium is not installed (``apt-get install chromium``);
CI sets ``STRATMAP_REQUIRE_BROWSER`` so that a missing browser fails instead.
``STRATMAP_UPDATE_GOLDEN=1`` also rewrites ``docs/report.png`` from the sample.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from stratmap.flows.cli import main
from stratmap.models.report import Kind
from stratmap.publish.html import item_links, render, safe_url
from tests import hostile
from tests.browser import Browser, Tab
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "northwind" / "plan.yaml"
AS_OF = "2027-03-01T09:00Z"
DOCS_SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "report.png"

NOTHING_RAN = """(() => ({
  pwned: typeof window.__pwned,
  scripts: document.scripts.length,
  handlers: [...document.querySelectorAll('*')].flatMap(e => [...e.attributes]
      .filter(a => a.name.toLowerCase().startsWith('on')).map(a => e.tagName + ' ' + a.name)),
  links: [...document.querySelectorAll('a[href], body [*|href]')]
      .map(e => e.getAttribute('href') || e.getAttributeNS('http://www.w3.org/1999/xlink', 'href'))
      .filter(h => !(h.startsWith('#') || /^https?:\\/\\//.test(h))),
  embeds: document.querySelectorAll('iframe, object, embed, img, script, link[rel=stylesheet]').length,
}))()"""


def open_page(browser: Browser, path: Path) -> Tab:
    tab = browser.tab()
    tab.open(path.resolve().as_uri())
    return tab


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """The sample, run (recording its history) and reported as HTML and JSON."""
    folder = tmp_path_factory.mktemp("sample")
    db = f"sqlite:///{folder / 's.db'}"
    assert main(["run", str(SAMPLE), "--db", db, "--as-of", AS_OF, "-q"]) == 0
    page, data = folder / "report.html", folder / "report.json"
    for fmt, out in (("html", page), ("json", data)):
        assert main(["report", str(SAMPLE), "--db", db, "--as-of", AS_OF, "--format", fmt,
                     "-o", str(out)]) == 0
    return page, json.loads(data.read_text())


# -- in the browser ----------------------------------------------------------------------------


def test_the_sample_page_shows_map_charts_findings_and_people(
        browser: Browser, sample: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page, report = sample
    tab = open_page(browser, page)
    milestones = [m for g in report["goals"] for m in g["milestones"]]  # type: ignore[attr-defined]

    seen = tab.evaluate("""(() => {
      const box = e => e ? e.getBoundingClientRect() : null;
      const map = document.querySelector('#map svg');
      return {
        map: box(map) && box(map).width,
        mapNodes: [...document.querySelectorAll('#map g.node[id^="map-ms-"]')].map(n => ({
            id: n.id, fill: n.querySelector('path, polygon').getAttribute('fill'),
            text: n.textContent.replace(/\\s+/g, ' ')})),
        dependsOn: document.querySelectorAll('#map g.edge.depends-on').length,
        charts: [...document.querySelectorAll('figure.burnup svg')].map(s => ({
            width: box(s).width, lines: s.querySelectorAll('path').length})),
        trend: !!document.querySelector('#summary figure.trend svg'),
        findings: [...document.querySelectorAll('#findings tr.finding')].map(r => r.className),
        trackerLinks: [...document.querySelectorAll('#findings a[href^="https://"]')]
            .map(a => a.getAttribute('href')),
        people: [...document.querySelectorAll('#people tr.person')].map(r => r.innerText),
        overflow: document.documentElement.scrollWidth - window.innerWidth,
        text: document.body.innerText,
      };
    })()""")

    assert tab.errors == []
    assert tab.evaluate(NOTHING_RAN) == {"pwned": "undefined", "scripts": 0, "handlers": [],
                                         "links": [], "embeds": 0}
    # The strategic map: every milestone, coloured by its status, with depends_on arrows.
    assert seen["map"] > 600
    assert len(seen["mapNodes"]) == len(milestones) == 10
    fills = {n["id"]: n["fill"] for n in seen["mapNodes"]}
    assert fills["map-ms-crm-migration"] == "#ffdcd7"  # off track
    assert fills["map-ms-eu-payments"] == "#fff1c7"  # at risk
    assert fills["map-ms-brand-campaign"] == "#eef1f4"  # not started
    assert any("26/38 items" in n["text"] for n in seen["mapNodes"])
    assert seen["dependsOn"] == sum(len(m["depends_on"]) for m in milestones) == 5
    # A burn-up chart per milestone, drawn (not an empty box), and the trend.
    assert len(seen["charts"]) == 10
    assert all(c["width"] > 300 and c["lines"] > 10 for c in seen["charts"])
    assert seen["trend"]
    # Every finding, with links to the tracker items behind it.
    assert len(seen["findings"]) == len(report["findings"])  # type: ignore[arg-type]
    # Every kind but empty_selector, which the sample's selectors never are: the
    # organisation's too (a slipped date from the plan's due history, a declared "on
    # track" the evidence contradicts, an item blocked by another team's).
    assert {k.value for k in Kind} - {"empty_selector"} <= {
        c.split("kind-")[1] for c in seen["findings"]}
    assert "https://northwind.atlassian.net/browse/CRM-2" in seen["trackerLinks"]
    assert "https://github.com/northwind/website/issues/139" in seen["trackerLinks"]
    # People: who owns what, their load, and the feedback they owe.
    assert len(seen["people"]) == 9
    helen = next(row for row in seen["people"] if row.startswith("Helen"))
    assert "eu" in helen and "crm.training" in helen
    assert "Unknown people" in seen["text"] and "Needs attention" in seen["text"]
    assert seen["overflow"] <= 0, "the page scrolls sideways at 1280 px"

    shot = tab.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 50_000
    if os.environ.get("STRATMAP_UPDATE_GOLDEN"):
        tab.screenshot(DOCS_SCREENSHOT, height=2400)


def test_hostile_tracker_text_is_shown_as_text_and_never_runs(
        browser: Browser, tmp_path: Path) -> None:
    plan, evidence, report, past = hostile.report_and_history()
    page = tmp_path / "hostile.html"
    page.write_text(render(report, history=past, links=item_links(evidence), plan=plan),
                    encoding="utf-8")
    tab = open_page(browser, page)

    assert tab.evaluate(NOTHING_RAN) == {"pwned": "undefined", "scripts": 0, "handlers": [],
                                         "links": [], "embeds": 0}
    assert tab.errors == []  # a blocked inline script would have logged a CSP error
    text = tab.evaluate("document.body.innerText")
    for payload in hostile.PAYLOADS:
        assert payload in text
    assert "| broken | table | # heading" in text
    assert "U-2\"><script>window.__pwned=1</script>" in text
    # The map draws hostile titles as characters too (wrapped over lines).
    drawn = tab.evaluate("[...document.querySelectorAll('#map svg text')]"
                         ".map(t => t.textContent).join('')")
    assert hostile.SCRIPT in drawn.replace(" ", "")
    assert '"]) --> x["``` end \\N $x^2$' in tab.evaluate(
        "[...document.querySelectorAll('#map svg text')].map(t => t.textContent).join(' ')")
    # Only the http(s) item URLs became links.
    links = tab.evaluate("[...document.links].map(a => a.getAttribute('href'))")
    external = {href for href in links if not href.startswith("#")}
    assert external == {"https://tracker.example/U-2?q=<script>"}
    evidence_text = tab.evaluate("document.querySelector('#findings').textContent")
    assert "A-1" in evidence_text and "A-3" in evidence_text  # javascript: URLs: plain text


# -- without a browser -------------------------------------------------------------------------


def test_the_page_is_self_contained_with_unique_ids(
        sample: tuple[Path, dict[str, object]]) -> None:
    text = sample[0].read_text(encoding="utf-8")
    assert "<script" not in text.lower()
    assert re.findall(r"""\b(?:src|srcset)\s*=\s*["'](?!data:)""", text) == []
    assert "@import" not in text and "url(http" not in text
    assert re.findall(r"""(?:xlink:)?href="(?!#|https?://|data:,")""", text) == []
    ids = re.findall(r'\bid="([^"]+)"', text)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []
    assert len(text) < 600_000


def test_without_graphviz_the_map_is_a_list(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    plan, evidence, report, past = hostile.report_and_history()
    text = render(report, history=past, links=item_links(evidence), plan=plan)
    assert "The diagram needs Graphviz" in text and "apt-get install graphviz" in text
    assert 'class="map-list"' in text and "<svg" in text  # the charts are still there


@pytest.mark.parametrize(("url", "safe"), [
    ("https://x.example/a?b=1", True),
    ("http://x.example", True),
    ("javascript:alert(1)", False),
    (" JaVaScRiPt:alert(1)", False),
    ("java\tscript:alert(1)", False),
    ("data:text/html,hi", False),
    ("//x.example/a", False),
    ("https:///nohost", False),
    ("https://x.example/a b", False),
    (None, False),
])
def test_only_http_urls_become_links(url: str | None, safe: bool) -> None:
    assert (safe_url(url) is not None) is safe


def test_item_links_check_each_url_when_its_key_is_asked_and_agree_with_checking_all(
) -> None:
    """Links are looked up, not built for every stored item; the answers are those of
    checking every item up front: a key links when all its items' URLs check to one safe
    URL, and never to an unsafe one."""
    import random
    from collections import defaultdict

    from stratmap.models.records import Evidence, WorkItem

    rng = random.Random(7)
    choices = ["https://t.example/A-1", " https://t.example/A-1", "javascript:alert(1)",
               "https://t.example/B-2", None, "https://t.example/a b"]
    items = tuple(
        WorkItem(source=rng.choice(["jira", "github"]), key=f"K-{rng.randrange(40)}",
                 title="t", status="Open", status_category="todo", url=rng.choice(choices),
                 created="2026-01-01T00:00:00Z", updated="2026-01-02T00:00:00Z")
        for _ in range(50))
    found: dict[str, set[str | None]] = defaultdict(set)
    for item in items:
        found[item.key].add(safe_url(item.url))
    expected = {key: url for key, urls in found.items() if len(urls) == 1
                for url in urls if url is not None}
    links = item_links(Evidence(items=items))
    asked = [f"K-{n}" for n in range(45)]
    rng.shuffle(asked)
    assert {key: links[key] for key in asked if key in links} == expected
    assert {key: links.get(key) for key in asked} == {key: expected.get(key) for key in asked}
    assert dict(links) == expected and len(links) == len(expected)
    assert 0 < len(expected) < 40  # the draw has keys with and without a link


def test_a_page_checks_the_urls_of_the_keys_it_shows_not_of_every_item(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Rendering asks the links for the keys it shows: a store of 2,000 more items (all
    with URLs) costs no URL check of theirs (``links or {}`` once counted every one)."""
    from stratmap.models.records import Evidence, WorkItem
    from stratmap.publish import html

    plan, evidence, report, past = hostile.report_and_history()
    extra = tuple(
        WorkItem(source="jira", key=f"ZZ-{n}", title="t", status="Open",
                 status_category="todo", url=f"https://t.example/ZZ-{n}",
                 created="2026-01-01T00:00:00Z", updated="2026-01-02T00:00:00Z")
        for n in range(2000))
    checked: list[object] = []
    real = html.safe_url

    def counting(url: object) -> str | None:
        checked.append(url)
        return real(url)  # type: ignore[arg-type]

    monkeypatch.setattr(html, "safe_url", counting)
    links = item_links(Evidence(items=(*evidence.items, *extra)))
    render(report, history=past, links=links, plan=plan)
    assert checked and len(checked) < len(evidence.items) + 100


@pytest.mark.parametrize(("values", "expected"), [
    ((110_400.0, 150_300.0, 240_000.0), ["150,000", "200,000", "250,000"]),
    ((0.12, 0.5, 0.8), ["0.2", "0.4", "0.6", "0.8"]),
    ((-2.0, 0.0, 3.0), ["-2", "-1", "0", "1", "2", "3"]),
])
def test_a_measure_chart_labels_its_axis_with_round_readable_numbers(
        values: tuple[float, float, float], expected: list[str]) -> None:
    """The value axis of a measure shows round values a person reads (``150,000``), not
    ``1.503e+05``; every tick is inside the plotted range, evenly spaced."""
    from datetime import UTC, datetime, timedelta
    from xml.etree import ElementTree

    from stratmap.publish.charts import measure_svg

    now = datetime(2027, 3, 1, tzinfo=UTC)
    low, last, high = values
    svg = measure_svg([(now - timedelta(days=30), low), (now, last)],
                      baseline=(now - timedelta(days=60), low),
                      target=(now + timedelta(days=60), high), rate=None, as_of=now,
                      status="on_track", scope="g.m")
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text or "" for t in ElementTree.fromstring(svg).iter(f"{ns}text")
             if t.get("text-anchor") == "end"]
    assert texts == expected
    assert not any("e+" in t or "e-" in t for t in texts)


def test_a_burn_up_chart_is_svg_written_from_the_data_with_its_legend() -> None:
    from datetime import UTC, datetime, timedelta
    from xml.etree import ElementTree

    from stratmap.publish.charts import Point, burnup_svg, trend_svg

    now = datetime(2027, 3, 1, 9, tzinfo=UTC)
    points = [Point(now - timedelta(weeks=10 - n), 20.0, 2.0 * n) for n in range(10)]
    svg = burnup_svg(points, as_of=now, due=now + timedelta(days=30),
                     start=now - timedelta(weeks=12), forecast=now + timedelta(days=20),
                     unit="points", status="at_risk", scope="ms-eu", zone="Europe/London")
    root = ElementTree.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    texts = [t.text for t in root.iter(f"{ns}text")]
    assert {"scope (points)", "done", "forecast 21 Mar 2027", "due 31 Mar 2027",
            "start"} <= set(texts)
    assert {"0", "10", "20"} <= set(texts)  # the value axis reaches the scope
    assert "Mar" in texts  # a date tick, in the plan's zone
    assert root.get("viewBox") == "0 0 460 250" and "style" not in svg and " id=" not in svg
    # Scope and done are step lines through each week; done in the status's colour.
    steps = [p for p in root.iter(f"{ns}path") if p.get("d", "").count("H") == 9]
    assert {p.get("stroke") for p in steps} >= {"#6e7781", "#b7791f"}

    trend = ElementTree.fromstring(trend_svg(
        {"plan": [(p.at, p.done / 20) for p in points], "<eu>": [(now, 0.5)]},
        as_of=now, scope="trend"))
    assert [t.text for t in trend.iter(f"{ns}text")][-2:] == ["plan", "<eu>"]
    assert "100%" in [t.text for t in trend.iter(f"{ns}text")]
