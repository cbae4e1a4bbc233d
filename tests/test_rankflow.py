"""ui/rankflow.py: the rank-flow chart and the agreement matrix, from hand-made results. No models, no browser.

The chart is parsed as XML (it must be well-formed: a saved .svg is read that way), so every assertion is on
elements and attributes, not substrings.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from itertools import pairwise

import pytest

from search import compare
from search.types import UNKNOWN_LANGUAGE, Language, StageResult
from tests.hand_made import EN, make_hit, make_result, make_stage
from tests.test_render import css_classes, css_rules, emitted_classes
from ui import rankflow
from ui.rankflow import (
    FONT,
    PALETTE,
    STAGE_GAP,
    language_styles,
    render_agreement,
    render_comparison,
    render_rank_flow,
    text_width,
    tick_ranks,
)

DE = Language("de", "de", 0.97)
ZH = Language("zh-cn", "zh", 1.0)
HI = Language("hi", "hi", 0.99)
HOSTILE_TITLE = '<script>alert(1)</script> "><img src=x onerror=alert(2)> ]]> &amp; \'single\''
HOSTILE_ID = 'e"><svg onload=alert(3)>#0'
ALLOWED_TAGS = {"figure", "figcaption", "svg", "g", "title", "line", "text", "polyline", "circle", "path", "ul", "li",
                "p", "table", "caption", "thead", "tbody", "tr", "th", "td", "span", "div"}


def hand_made_result(*, hostile: bool = False):
    """Five stages over passages a..e, k=3 in the tests:

        bm25      a b c | d          dense   c e a          hybrid  a c e | b d
        rerank    d a c | b e        rerank-b  a d e | c b

    so at k=3: a is in every top 3; b only in BM25's; c drops out of rerank-b's; d is outside every first
    stage's top 3 (hybrid #5) and the reranker lifts it to #1; e is not returned by BM25.
    """
    e_id = HOSTILE_ID if hostile else "e#0"
    e_title = HOSTILE_TITLE if hostile else "Eel"
    hit = {
        "a": dict(passage_id="a#0", title="Apple", language=EN),
        "b": dict(passage_id="b#0", title="Birch", language=DE),
        "c": dict(passage_id="c#0", title="茶的历史", language=ZH),
        "d": dict(passage_id="d#0", title="मानसून", language=HI),
        "e": dict(passage_id=e_id, title=e_title, language=UNKNOWN_LANGUAGE),
    }

    def stage(name, order, scores, **fields):
        hits = [make_hit(hit[key]["passage_id"], rank, title=hit[key]["title"], language=hit[key]["language"],
                         score=score, ranks=ranks.get(key, {}), sigmoid=0.5 if name.startswith("rerank") else None)
                for rank, (key, score) in enumerate(zip(order, scores, strict=True), start=1)]
        return make_stage(name, hits, **fields)

    ranks = {"d": {"hybrid": 5, "bm25": 4}}
    return make_result([
        stage("bm25", "abcd", [9.5, 8.25, 7.0, 3.0]),
        stage("dense", "cea", [0.91, 0.85, 0.8]),
        stage("hybrid", "acebd", [0.0325, 0.0318, 0.03, 0.029, 0.028]),
        stage("rerank", "dacbe", [4.0, 3.0, 2.0, 1.0, 0.5]),
        stage("rerank-b", "adecb", [5.0, 4.5, 1.5, 1.0, -2.0]),
    ], candidates_from="hybrid", rerank_depth=5)


def parse(markup: str) -> ET.Element:
    """The fragment as an XML tree, namespaces dropped from tag names."""
    root = ET.fromstring(str(markup))
    for node in root.iter():
        node.tag = node.tag.rpartition("}")[2]
    return root


def has_class(node: ET.Element, name: str) -> bool:
    return name in (node.get("class") or "").split()


def lines(root: ET.Element) -> dict[str, ET.Element]:
    groups = [node for node in root.iter("g") if has_class(node, "rf-line")]
    by_id = {group.get("data-passage"): group for group in groups}
    assert len(by_id) == len(groups), "one line per passage"
    return by_id


def path_of(group: ET.Element) -> ET.Element:
    paths = [node for node in group.iter("polyline") if has_class(node, "rf-path")]
    assert len(paths) == 1, "one visible polyline per passage"
    return paths[0]


def points(polyline: ET.Element) -> list[tuple[float, float]]:
    return [tuple(float(value) for value in pair.split(",")) for pair in polyline.get("points").split()]


# -- the chart ----------------------------------------------------------------------------------------------


def test_one_polyline_per_passage_in_any_top_k_with_its_ranks_and_the_out_lane():
    root = parse(render_rank_flow(hand_made_result(), k=3))
    by_id = lines(root)
    assert set(by_id) == {"a#0", "b#0", "c#0", "d#0", "e#0"}, sorted(by_id)
    ranks = {pid: path_of(group).get("data-ranks") for pid, group in by_id.items()}
    assert ranks == {"a#0": "1 3 1 2 1", "b#0": "2 out out out out", "c#0": "3 1 2 3 out",
                     "d#0": "out out out 1 2", "e#0": "out 2 3 out 3"}, ranks
    svg = next(root.iter("svg"))
    assert root.get("data-stages") == "bm25 dense hybrid rerank rerank-b"
    axes = [node for node in svg.iter("g") if has_class(node, "rf-axis")]
    assert [axis.get("data-stage") for axis in axes] == ["bm25", "dense", "hybrid", "rerank", "rerank-b"]
    assert [node.text for axis in axes for node in axis.iter("text") if has_class(node, "rf-axis-title")] == [
        "BM25", "Dense", "Hybrid", "Reranked", "Reranked (B)"]
    # Geometry: rank r at y = TOP + (r - 0.5) * row on axis i at x = LEFT + i * gap; "out" on one lane below.
    a, d = points(path_of(by_id["a#0"])), points(path_of(by_id["d#0"]))
    assert [x for x, _ in a] == [rankflow.LEFT + i * STAGE_GAP for i in range(5)]
    row = (a[1][1] - a[0][1]) / 2  # rank 3 minus rank 1
    assert row == rankflow.MAX_ROW, "k=3 gets the tallest rows"
    lane = {y for (_, y), rank in zip(d, ("out", "out", "out", 1, 2), strict=True) if rank == "out"}
    assert len(lane) == 1 and lane.pop() > a[1][1] + row, "every 'out' point is on one lane under rank k"
    assert d[3][1] == a[0][1], "d is #1 of rerank where a is #1 of BM25"


def test_strong_lines_are_the_last_rerankers_top_3_and_the_lifted():
    by_id = lines(parse(render_rank_flow(hand_made_result(), k=3)))
    strong = {pid for pid, group in by_id.items() if has_class(group, "rf-strong")}
    assert strong == {"a#0", "d#0", "e#0"}, f"Reranked (B)'s top 3 are a, d, e; got {sorted(strong)}"
    assert {pid for pid, group in by_id.items() if has_class(group, "rf-lifted")} == {"d#0"}, (
        "d: rerank #1 from hybrid #5, below hybrid's top 3")
    for pid, group in by_id.items():
        path = path_of(group)
        assert (path.get("stroke-width"), path.get("stroke-opacity")) == (
            ("3", "1") if pid in strong else ("1.5", "0.4")), pid
    # The focus stage of a line: the last stage that has it in its top k (its card there is scrolled to).
    assert {pid: group.get("data-focus-stage") for pid, group in by_id.items()} == {
        "a#0": "rerank-b", "b#0": "bm25", "c#0": "rerank", "d#0": "rerank-b", "e#0": "rerank-b"}


def test_without_a_reranker_the_last_stages_top_3_stand_out():
    result = hand_made_result()
    first_stages = make_result([result.stages[name] for name in ("bm25", "dense", "hybrid")])
    by_id = lines(parse(render_rank_flow(first_stages, k=3)))
    assert {pid for pid, group in by_id.items() if has_class(group, "rf-strong")} == {"a#0", "c#0", "e#0"}


def test_hover_text_names_the_passage_its_language_and_every_stages_rank_and_score():
    by_id = lines(parse(render_rank_flow(hand_made_result(), k=3, judgments={"d#0": 2})))
    titles = {pid: group.find("title").text for pid, group in by_id.items()}
    assert titles["d#0"].split("\n") == [
        "मानसून",
        "d#0 · Hindi (hi 0.99)",
        "BM25: out of top 3 (#4 · BM25 3.00)",
        "Dense: not returned",
        "Hybrid: out of top 3 (#5 · fused 0.0280)",
        "Reranked: #1 · logit 4.00",
        "Reranked (B): #2 · logit 4.50",
        "judged 2 (highly relevant)",
        "lifted from hybrid #5 into a reranker's top 3",
    ], titles["d#0"]
    assert titles["c#0"].split("\n")[:3] == ["茶的历史", "c#0 · Chinese (Simplified) (zh-cn 1.00)",
                                             "BM25: #3 · BM25 7.00"], titles["c#0"]
    assert "Reranked (B): out of top 3 (#4 · logit 1.00)" in titles["c#0"]
    assert titles["e#0"].split("\n")[1:3] == ["e#0 · Unknown (unknown)", "BM25: not returned"], titles["e#0"]
    assert all(group.find("title") is list(group)[0] for group in by_id.values()), "the title comes first"


def test_legend_has_one_entry_per_language_with_its_line_style_and_count():
    result = hand_made_result()
    root = parse(render_rank_flow(result, k=3, judgments={"a#0": 2, "b#0": 0}))
    keys = [node for node in root.iter("li") if has_class(node, "rf-key")]
    assert [key.get("data-lang") for key in keys] == ["de", "en", "hi", "unknown", "zh"], "code order"
    assert ["".join(key.itertext()) for key in keys] == [
        "German (de) · 1", "English (en) · 1", "Hindi (hi) · 1", "Unknown (unknown) · 1", "Chinese (zh) · 1"]
    styles = {key.get("data-lang"): next(key.iter("line")) for key in keys}
    by_id = lines(root)
    for pid, group in by_id.items():
        swatch, path = styles[group.get("data-lang")], path_of(group)
        assert (swatch.get("stroke"), swatch.get("stroke-dasharray")) == (
            path.get("stroke"), path.get("stroke-dasharray")), f"{pid}: the legend shows the line's style"
    notes = [node.get("data-note") for node in root.iter("li") if has_class(node, "rf-key-note")]
    assert notes == ["strong", "out", "grade-2", "grade-0"], notes
    # Judged passages carry their grade's marker at every point in a top k, the others plain dots.
    assert {node.get("data-grade") for node in by_id["a#0"].iter() if has_class(node, "rf-mark")} == {"2"}
    assert len([node for node in by_id["a#0"].iter() if has_class(node, "rf-mark")]) == 5
    assert [node.tag for node in by_id["b#0"].iter() if has_class(node, "rf-mark")] == ["path"], "0 is a cross"
    assert not [node for node in by_id["c#0"].iter() if has_class(node, "rf-mark")]


def test_languages_of_the_corpus_fix_the_colours_across_queries():
    result = hand_made_result()
    corpus = ["zh", "ar", "en", "de", "hi", "unknown"]
    root = parse(render_rank_flow(result, k=3, languages=corpus))
    strokes = {group.get("data-lang"): path_of(group).get("stroke") for group in lines(root).values()}
    # sorted corpus codes: ar de en hi unknown zh -> ar takes the first colour although no line is Arabic.
    assert strokes == {"de": PALETTE[1], "en": PALETTE[2], "hi": PALETTE[3], "zh": PALETTE[4],
                       "unknown": rankflow.UNKNOWN_COLOUR}, strokes


def test_twelve_languages_get_twelve_distinct_styles_and_eighteen_stay_distinct():
    groups = [f"l{i:02d}" for i in range(18)]
    styles = language_styles(groups)
    assert len(set(styles.values())) == 18
    assert len({style.colour for style in styles.values()}) == len(PALETTE) == 6
    assert [style.dash for style in styles.values()][:7] == [None] * 6 + ["7 3"], "six solid, then dashed"


def test_a_hostile_title_and_id_stay_text():
    markup = str(render_rank_flow(hand_made_result(hostile=True), k=3))
    assert "<script" not in markup and "<img" not in markup and "<svg onload" not in markup, markup
    assert "]]>" not in markup, "']]>' is escaped as ']]&gt;'"
    root = parse(markup)  # well-formed XML despite the payloads
    for node in root.iter():
        assert node.tag in ALLOWED_TAGS, node.tag
        assert not [name for name in node.attrib if name.lower().startswith("on") or name == "style"], node.attrib
    group = lines(root)[HOSTILE_ID]
    assert group.find("title").text.split("\n")[0] == HOSTILE_TITLE, "the title is the text, unchanged"
    label = [node for node in root.iter("g") if has_class(node, "rf-label-group")
             and node.get("data-passage") == HOSTILE_ID]
    assert len(label) == 1 and label[0].find("title").text == HOSTILE_TITLE, "e is #3 of rerank-b: labelled"
    assert next(label[0].iter("text")).text.startswith("3. <script>"), "the label's text, escaped"


def test_stages_pick_the_axes_an_error_has_none_and_bad_arguments_are_refused():
    result = hand_made_result()
    root = parse(render_rank_flow(result, k=3, stages=["rerank", "bm25"]))
    assert root.get("data-stages") == "rerank bm25"
    assert set(lines(root)) == {"a#0", "b#0", "c#0", "d#0"}
    broken = make_result([*(result.stages[name] for name in ("bm25", "dense", "hybrid")),
                          StageResult("rerank", (), 0.1, "m", error="model failed"), result.stages["rerank-b"]])
    assert parse(render_rank_flow(broken, k=3)).get("data-stages") == "bm25 dense hybrid rerank-b"
    with pytest.raises(ValueError, match="k=0"):
        render_rank_flow(result, k=0)
    with pytest.raises(ValueError, match="'rerank-z'"):
        render_rank_flow(result, k=3, stages=["bm25", "rerank-z"])
    empty = make_result([StageResult("bm25", (), 0.0, "m", error="x")])
    assert "nothing to chart" in str(render_rank_flow(empty, k=3))


def test_any_number_of_rerankers_each_gets_an_axis_and_the_last_one_leads():
    result = hand_made_result()
    third = make_stage("rerank-c", [make_hit(hit.passage_id, rank, title=hit.title, language=hit.language,
                                             ranks=hit.ranks, sigmoid=0.5)
                                    for rank, hit in enumerate(reversed(result.stages["rerank-b"].hits), start=1)])
    root = parse(render_rank_flow(make_result([*result.stages.values(), third]), k=3))
    titles = [node.text for node in root.iter("text") if has_class(node, "rf-axis-title")]
    assert titles == ["BM25", "Dense", "Hybrid", "Reranked", "Reranked (B)", "Reranked (C)"], titles
    by_id = lines(root)
    # rerank-c: b c e d a -> its top 3 (b, c, e) lead; d stays strong because a reranker lifted it.
    assert {pid for pid, group in by_id.items() if has_class(group, "rf-top")} == {"b#0", "c#0", "e#0"}
    assert {pid for pid, group in by_id.items() if has_class(group, "rf-strong")} == {"b#0", "c#0", "d#0", "e#0"}


# -- scale: k=50, five stages -----------------------------------------------------------------------------

LANGUAGES = [Language(code, code, 0.9) for code in ("en", "de", "fr", "es", "ru", "ar", "he", "el", "hi", "th", "zh",
                                                    "ja")]


def big_result(k: int = 50, depth: int = 80, seed: int = 7):
    """Five stages over 120 passages in 12 languages, each a shuffled ranking of its own `depth` passages."""
    generator = random.Random(seed)
    ids = [f"doc{i:03d}#0" for i in range(120)]
    language = {pid: LANGUAGES[i % len(LANGUAGES)] for i, pid in enumerate(ids)}
    orders = {name: generator.sample(ids, depth) for name in ("bm25", "dense", "hybrid")}
    candidates = orders["hybrid"][:depth]
    orders["rerank"] = generator.sample(candidates, len(candidates))
    orders["rerank-b"] = generator.sample(candidates, len(candidates))
    stages = []
    for name, order in orders.items():
        hits = [make_hit(pid, rank, title=f"Title of {pid} in {language[pid].code}", language=language[pid],
                         score=float(depth - rank), sigmoid=0.5 if name.startswith("rerank") else None,
                         ranks={other: orders[other].index(pid) + 1 if pid in orders[other] else None
                                for other in orders if other != name})
                for rank, pid in enumerate(order, start=1)]
        stages.append(make_stage(name, hits))
    return make_result(stages, candidates_from="hybrid", rerank_depth=depth), orders


def boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def text_box(node: ET.Element, size: float) -> tuple[float, float, float, float]:
    """An estimated box (x0, y0, x1, y1) of an SVG text from its anchor, font size, `text_width` and the line
    height (the browser test measures the real boxes)."""
    x, y, width = float(node.get("x")), float(node.get("y")), text_width(node.text, size)
    x0 = {"end": x - width, "middle": x - width / 2}.get(node.get("text-anchor"), x)
    half = size * rankflow.LINE_HEIGHT / 2
    return (x0, y - half, x0 + width, y + half)


def test_k50_with_five_stages_stays_readable():
    result, orders = big_result()
    root = parse(render_rank_flow(result, k=50))
    expected = {pid for order in orders.values() for pid in order[:50]}
    by_id = lines(root)
    assert set(by_id) == expected, "one line per passage in any stage's top 50"
    svg = next(root.iter("svg"))
    width, height = float(svg.get("width")), float(svg.get("height"))
    assert svg.get("viewBox") == f"0 0 {width:g} {height:g}", "the viewBox is the natural size; CSS scales it"
    for group in by_id.values():
        for x, y in points(path_of(group)):
            assert 0 < x < width and 0 < y < height, (group.get("data-passage"), x, y)
    # Axes: five, at least a stage gap apart, titles inside their share of the width, never touching.
    axis_x = sorted(float(node.get("x1")) for node in root.iter("line") if has_class(node, "rf-axis-line"))
    assert len(axis_x) == 5 and min(b - a for a, b in pairwise(axis_x)) >= STAGE_GAP
    titles = [text_box(node, rankflow.TITLE_FONT) for node in root.iter("text") if has_class(node, "rf-axis-title")]
    assert not any(boxes_overlap(a, b) for a, b in pairwise(titles)), titles
    assert titles[0][0] >= 0 and titles[-1][2] <= width
    # Rank numbers and the top-3 titles never collide; the latter stay inside the viewBox.
    ticks = [text_box(node, FONT) for node in root.iter("text") if has_class(node, "rf-tick")]
    assert [node.text for node in root.iter("text") if has_class(node, "rf-tick")][:3] == ["1", "5", "10"]
    assert not any(boxes_overlap(a, b) for a, b in pairwise(ticks)), ticks
    labels = [text_box(node, FONT) for node in root.iter("text") if has_class(node, "rf-label")]
    assert len(labels) == 3 and not any(boxes_overlap(a, b) for a, b in pairwise(labels)), labels
    assert all(box[2] <= width for box in labels), (labels, width)
    out = next(node for node in root.iter("g") if has_class(node, "rf-out-lane")).find("text")
    assert not boxes_overlap(text_box(out, FONT), ticks[-1]), "'out' and the last rank number stay apart"
    # Twelve languages: twelve legend entries, twelve distinct line styles.
    keys = [node for node in root.iter("li") if has_class(node, "rf-key")]
    assert len(keys) == 12
    assert len({(next(key.iter("line")).get("stroke"), next(key.iter("line")).get("stroke-dasharray"))
                for key in keys}) == 12


def test_the_viewbox_grows_with_k_and_the_stages():
    result, _ = big_result()
    sizes = {}
    for k, stages in ((10, None), (50, None), (10, ["bm25", "rerank"])):
        svg = next(parse(render_rank_flow(result, k=k, stages=stages)).iter("svg"))
        sizes[(k, stages is None)] = (float(svg.get("width")), float(svg.get("height")))
    assert sizes[(10, True)][0] == sizes[(50, True)][0] > sizes[(10, False)][0], sizes
    assert sizes[(50, True)][1] > sizes[(10, True)][1], sizes


def test_tick_ranks_and_text_width():
    assert tick_ranks(3, 26.0) == (1, 2, 3)
    assert tick_ranks(20, 22.0) == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)
    assert tick_ranks(46, 9.0) == (1, 5, 10, 15, 20, 25, 30, 35, 40, 45), "46 would crowd 45"
    assert tick_ranks(47, 9.0)[-2:] == (45, 47)
    assert tick_ranks(100, 9.0) == (1, *range(5, 101, 5))
    assert text_width("नमस्ते", 10) == pytest.approx(4 * 6.2), "virama and vowel signs take no width"


# -- the agreement matrix ---------------------------------------------------------------------------------


def test_agreement_matrix_has_the_overlaps_and_taus_compare_reports():
    result = hand_made_result()
    root = parse(render_agreement(result, 3))
    cells = {node.get("data-pair"): node for node in root.iter("td") if node.get("data-pair")}
    assert len(cells) == 20, "5 x 5 without the diagonal"
    for pair in compare.overlaps(result, 3):
        cell = cells[f"{pair.first}-{pair.second}"]
        assert (int(cell.get("data-shared")), float(cell.get("data-jaccard"))) == (
            pair.shared, pytest.approx(pair.jaccard, abs=1e-4)), pair
    assert cells["bm25-dense"].get("data-shared") == "2" and cells["bm25-dense"].get("data-jaccard") == "0.5000"
    both = compare.agreement(result, 3)
    assert (int(cells["rerank-rerank-b"].get("data-shared")), float(cells["rerank-b-rerank"].get("data-tau"))) == (
        both.shared, pytest.approx(both.kendall_tau, abs=1e-4))
    # rerank d a c b e vs rerank-b a d e c b: 3 of 10 pairs swapped (d-a, c-e, b-e) -> (7 - 3) / 10
    assert cells["rerank-b-rerank"].text == "τ 0.40"
    # tau below the diagonal only where both rank the same candidates: rerankers and the stage that fed them.
    taus = {pair for pair, cell in cells.items() if "rf-tau" in cell.get("class")}
    assert taus == {"rerank-hybrid", "rerank-b-hybrid", "rerank-b-rerank"}, taus
    # hybrid a c e b d vs rerank d a c b e: 5 of 10 pairs swapped (every pair with d, and e-b) -> 0
    assert float(cells["rerank-hybrid"].get("data-tau")) == pytest.approx(0.0)
    assert cells["dense-bm25"].text == "—"


def test_agreement_needs_two_stages_and_a_valid_k():
    result = hand_made_result()
    assert "needs two stages" in str(render_agreement(result, 3, stages=["bm25"]))
    with pytest.raises(ValueError, match="k=0"):
        render_agreement(result, 0)


# -- the stylesheet -----------------------------------------------------------------------------------------

# Classes the chart emits only as hooks for tests and RANK_FLOW_JS, on purpose without a rule.
HOOKS = {"rf-axes", "rf-grid", "rf-axis", "rf-axis-line", "rf-axis-title", "rf-out-lane", "rf-top", "rf-lifted",
         "rf-judged", "rf-hit", "rf-mark", "rf-labels", "rf-leader", "rf-pair"}


def test_every_class_the_chart_emits_has_a_rule_or_is_a_hook():
    from ui import stylesheet

    result = hand_made_result()
    fragments = [str(render_comparison(result, k=3, judgments={"a#0": 2, "b#0": 1, "c#0": 0})),
                 str(render_rank_flow(make_result([StageResult("bm25", (), 0.0, "m", error="x")]), k=3)),
                 str(render_agreement(result, 3, stages=["bm25"]))]
    styled = css_classes(css_rules(stylesheet()))
    emitted = emitted_classes(*fragments)
    assert not emitted - styled - HOOKS, f"classes without a rule: {sorted(emitted - styled - HOOKS)}"
    assert {"rf-selected", "rank-flow-target"} <= styled, "the classes RANK_FLOW_JS sets are styled"
    assert not (HOOKS & styled), sorted(HOOKS & styled)
    assert "rf-j4" in emitted or "rf-j3" in emitted, "some pair shares most of its top 3"
