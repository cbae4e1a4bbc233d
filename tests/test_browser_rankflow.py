"""The rank-flow chart in a real browser (Debian's chromium via Playwright): in a static page under the
bundle's Content-Security-Policy (no script) its hover text comes from SVG <title> and a hostile title stays
text; at k=50 with five stages nothing overlaps and it shrinks to fit; inside Gradio, RANK_FLOW_JS wired
to the chart's gr.HTML makes a click on a line scroll to and mark that passage's card.

Skips when chromium is absent (install it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import pytest

from tests.app_page import open_page, served
from tests.test_rankflow import HOSTILE_ID, HOSTILE_TITLE, big_result, hand_made_result
from ui import stylesheet
from ui.bundle import CONTENT_SECURITY_POLICY
from ui.html import Markup, element, join
from ui.rankflow import RANK_FLOW_JS, render_comparison, render_rank_flow

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

# A point on the line of a passage that the pointer actually reaches (not under another line), in page
# coordinates: tries points along every segment of the visible polyline.
POINT_ON_LINE = """
(id) => {
  const group = Array.from(document.querySelectorAll('g.rf-line')).find((g) => g.getAttribute('data-passage') === id);
  const path = group.querySelector('polyline.rf-path');
  const matrix = path.getScreenCTM();
  const points = Array.from(path.points);
  for (let i = 0; i + 1 < points.length; i++) {
    for (const t of [0.5, 0.3, 0.7, 0.15, 0.85]) {
      const x = points[i].x + t * (points[i + 1].x - points[i].x);
      const y = points[i].y + t * (points[i + 1].y - points[i].y);
      const screen = new DOMPoint(x, y).matrixTransform(matrix);
      const hit = document.elementFromPoint(screen.x, screen.y);
      if (hit && hit.closest('g.rf-line') === group) return {x: screen.x, y: screen.y};
    }
  }
  return null;
}
"""


def static_page(body: Markup) -> str:
    """A page like the bundle's view.html: its CSP (no script at all), the stylesheet inlined."""
    head = element("head", Markup('<meta charset="utf-8">'),
                   Markup(f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'),
                   element("style", Markup(stylesheet())))
    return f"<!DOCTYPE html>\n{element('html', head, element('body', body, class_='bundle-page'), lang='en')}"


@pytest.fixture
def page(browser):
    page = open_page(browser, width=1400, height=900)
    yield page
    page.close()


def test_hover_text_comes_from_svg_titles_and_a_hostile_title_stays_text_under_the_bundle_csp(page):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.set_content(static_page(render_comparison(hand_made_result(hostile=True), k=3, judgments={"d#0": 2})))
    assert page.locator("figure.rank-flow g.rf-line").count() == 5, "one line per passage in any top 3"
    titles = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('g.rf-line')).map(
        (g) => [g.getAttribute('data-passage'), g.querySelector(':scope > title').textContent]))""")
    assert titles["d#0"].split("\n")[:2] == ["मानसून", "d#0 · Hindi (hi 0.99)"], titles["d#0"]
    assert "Reranked (B): #2 · logit 4.50" in titles["d#0"] and "judged 2 (highly relevant)" in titles["d#0"]
    assert titles[HOSTILE_ID].split("\n")[0] == HOSTILE_TITLE, "the hostile title is the hover text, as text"

    # The pointer over a line lands in that line's group (so its <title> is what the browser shows), and
    # the stylesheet lifts it and dims the others: no script involved.
    point = page.evaluate(POINT_ON_LINE, "d#0")
    assert point is not None, "no point of d's line is reachable by the pointer"
    page.mouse.move(point["x"], point["y"])
    under = page.evaluate(f"document.elementFromPoint({point['x']}, {point['y']}).closest('g.rf-line')"
                          ".getAttribute('data-passage')")
    assert under == "d#0"
    # getAnimations() brings the style up to date, so the hover's 0.12 s transitions are listed until they end
    page.wait_for_function("() => document.getAnimations().length === 0", timeout=10_000)
    drawn = page.evaluate("""() => Object.fromEntries(Array.from(document.querySelectorAll('g.rf-line')).map((g) => {
        const style = getComputedStyle(g.querySelector('.rf-path'));
        return [g.getAttribute('data-passage'), [style.strokeOpacity, style.strokeWidth]]; }))""")
    assert drawn["d#0"] == ["1", "4px"] and drawn["b#0"] == ["0.12", "1.5px"], drawn

    assert page.evaluate("document.querySelectorAll('.rank-flow script, .rank-flow img, svg svg[onload]').length") == 0
    assert page.evaluate("Array.from(document.querySelectorAll('.rank-flow *')).filter("
                         "(node) => Array.from(node.attributes).some((a) => a.name.startsWith('on'))).length") == 0
    shared = page.locator("table.rank-agreement td[data-pair='rerank-rerank-b']").inner_text()
    assert shared.split() == ["2", "J", "0.50"], shared
    assert not dialogs and not page.errors, (dialogs, page.errors)


@pytest.mark.parametrize("k", [50, 28, 10])
def test_k50_with_five_stages_has_no_overlapping_text_and_shrinks_to_fit(page, k):
    result, _ = big_result()
    page.set_content(static_page(render_rank_flow(result, k=k)))
    boxes = page.evaluate("""() => {
        const box = (node) => { const b = node.getBBox(); return [b.x, b.y, b.x + b.width, b.y + b.height]; };
        const all = (selector) => Array.from(document.querySelectorAll(selector)).map(box);
        const svg = document.querySelector('svg.rank-flow-chart');
        return {titles: all('text.rf-axis-title'), ticks: [...all('text.rf-tick'), ...all('.rf-out-lane text')],
                labels: all('text.rf-label'), width: svg.viewBox.baseVal.width,
                lines: document.querySelectorAll('g.rf-line').length};
    }""")
    assert boxes["lines"] > 2 * k, boxes["lines"]

    def overlapping(group):
        return [(a, b) for i, a in enumerate(group) for b in group[i + 1:]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]]

    for name in ("titles", "ticks", "labels"):
        assert not overlapping(boxes[name]), (name, overlapping(boxes[name]))
    assert len(boxes["labels"]) == 3 and max(box[2] for box in boxes["labels"]) <= boxes["width"], boxes["labels"]
    assert min(box[0] for box in boxes["titles"]) >= 0 and max(box[2] for box in boxes["titles"]) <= boxes["width"]

    natural = page.evaluate("document.querySelector('svg.rank-flow-chart').getBoundingClientRect().toJSON()")
    page.set_viewport_size({"width": 480, "height": 800})
    narrow = page.evaluate("document.querySelector('svg.rank-flow-chart').getBoundingClientRect().toJSON()")
    assert narrow["right"] <= 480 and narrow["width"] < natural["width"], (natural, narrow)
    assert narrow["height"] / narrow["width"] == pytest.approx(natural["height"] / natural["width"], rel=0.01), \
        "the viewBox keeps its proportions"


def _cards(result, ids: list[str]) -> Markup:
    """Columns of plain cards as the app's columns draw them (li.hit[data-stage][data-rank]) plus the
    data-passage attribute the chart's click looks for, with filler so the target is below the fold."""
    columns = []
    for name, stage in result.stages.items():
        filler = [element("li", f"filler {i}", class_="hit", data_stage=name, data_rank=0, data_passage=f"x{i}")
                  for i in range(40)]
        cards = [element("li", hit.title, class_="hit", data_stage=name, data_rank=hit.rank,
                         data_passage=hit.passage_id) for hit in stage.hits if hit.passage_id in ids]
        columns.append(element("section", element("ol", join(filler), join(cards)), class_="stage-column",
                               data_stage=name))
    return join(columns)


@pytest.fixture
def gradio_page(browser):
    gradio = pytest.importorskip("gradio")
    result = hand_made_result(hostile=True)
    with gradio.Blocks() as demo:
        gradio.HTML(render_rank_flow(result, k=3), elem_id="rank-flow", js_on_load=RANK_FLOW_JS)
        gradio.HTML(_cards(result, ["a#0", "d#0", HOSTILE_ID]), elem_id="cards")
    with served(demo, css=stylesheet()) as url:
        page = open_page(browser, url, width=1200, height=800, ready="#rank-flow g.rf-line")
        yield page
        page.close()


def test_a_click_on_a_line_scrolls_to_and_marks_its_card_in_gradio(gradio_page):
    page = gradio_page
    for passage_id, stage in (("d#0", "rerank-b"), (HOSTILE_ID, "rerank-b"), ("a#0", "rerank-b")):
        target = page.locator(f"#cards li.hit[data-stage='{stage}']").filter(has_text=page_title(passage_id))
        assert target.count() == 1, passage_id
        page.evaluate("window.scrollTo(0, 0)")
        expect(target).not_to_be_in_viewport()
        point = page.evaluate(POINT_ON_LINE, passage_id)
        assert point is not None, f"no point of {passage_id}'s line is reachable by the pointer"
        page.mouse.click(point["x"], point["y"])
        expect(target).to_be_in_viewport(timeout=5_000)
        marked = page.evaluate("Array.from(document.querySelectorAll('li.hit.rank-flow-target')).map("
                               "(card) => card.getAttribute('data-passage') + '@' + card.getAttribute('data-stage'))")
        expected = sorted(f"{passage_id}@{name}" for name, rank in RANKS[passage_id].items() if rank)
        assert sorted(marked) == expected, (passage_id, marked)
        selected = page.evaluate("Array.from(document.querySelectorAll('g.rf-line.rf-selected')).map("
                                 "(line) => line.getAttribute('data-passage'))")
        assert selected == [passage_id], selected
    assert page.evaluate("window.__pwned === undefined") and not page.errors, page.errors


# Which stages list each passage of hand_made_result (so have a card in _cards), and the card titles.
RANKS = {"a#0": {"bm25": 1, "dense": 3, "hybrid": 1, "rerank": 2, "rerank-b": 1},
         "d#0": {"bm25": 4, "dense": None, "hybrid": 5, "rerank": 1, "rerank-b": 2},
         HOSTILE_ID: {"bm25": None, "dense": 2, "hybrid": 3, "rerank": 5, "rerank-b": 3}}


def page_title(passage_id: str) -> str:
    return {"a#0": "Apple", "d#0": "मानसून", HOSTILE_ID: "]]> &amp;"}[passage_id]
