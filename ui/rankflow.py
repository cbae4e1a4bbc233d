"""The rank-flow chart: how every passage moved through the stages of one search, as an inline SVG, and the
stages' agreement (shared@k, Jaccard@k, Kendall's tau) as a small matrix beside it.

One vertical axis per stage that ran (in `SearchResult.stages` order: bm25, dense, hybrid, rerank, then
every reranker after it; titled by the stage registry, `search.stages`), rank 1 at the top. Each passage
in any stage's top k is one line joining its ranks; where a stage did not rank it in its top k the line
drops to the "out" lane under that axis. Lines are coloured (and, past six languages, dashed) by the
passage's language group; judged passages carry a marker per grade; the last reranker's top 3 and every
lifted passage are drawn thick and opaque.

Built with `ui.html`, so every text from the corpus (titles, ids, language codes) is escaped by
construction; the hover text of a line is the escaped text of an SVG ``<title>``, which needs no script,
so the bundle's ``view.html`` (no script, strict CSP) shows the same chart. In the live page
`RANK_FLOW_JS` (for a ``gr.HTML``'s ``js_on_load``) makes a click on a line scroll to its card.

Hooks for CSS and tests (class names and data attributes come from code or from escaped values):

    figure.rank-flow[data-k][data-stages]   svg.rank-flow-chart[viewBox]
    g.rf-axis[data-stage] text.rf-axis-title   text.rf-tick   g.rf-out-lane
    g.rf-line[data-passage=<passage id>][data-lang][data-focus-stage][data-judged] (.rf-strong .rf-top .rf-lifted)
        title (hover text)   polyline.rf-path[data-ranks]   polyline.rf-hit   circle.rf-dot
        circle.rf-mark | path.rf-mark [data-grade]   text.rf-label (the top 3's titles, right of the last axis)
    ul.rf-legend li.rf-key[data-lang] | li.rf-key-note[data-note=strong|out|grade-0|grade-1|grade-2]
    table.rank-agreement td.rf-pair[data-pair=<a>-<b>][data-shared][data-jaccard][data-tau]

The cards the click scrolls to are ``li.hit`` elements whose ``data-passage`` equals the line's (see
`PASSAGE_ATTRIBUTE`); the click marks them ``.rank-flow-target`` and the line ``.rf-selected``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import regex

from search import compare, stages
from search.language import LANGUAGE_NAMES
from search.types import Hit, SearchResult, StageResult

from .html import Markup, classes, element, join
from .labels import stage_short, stage_title

__all__ = ["PALETTE", "PASSAGE_ATTRIBUTE", "RANK_FLOW_JS", "LineStyle", "language_styles", "render_agreement",
           "render_comparison", "render_rank_flow", "reranker_stages", "text_width", "tick_ranks"]

# The attribute a card (li.hit) carries so a click on its line can find it: the passage id, escaped.
PASSAGE_ATTRIBUTE = "data-passage"

# Okabe and Ito's colour-blind-safe set without its yellow (too faint as a thin line on white) and black
# (lost in a dark theme); past six languages the colours repeat dashed, then dotted.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
DASHES = (None, "7 3", "1.5 2.5")
UNKNOWN_COLOUR = "#8c8c8c"

GRADE_TITLES = {0: "not relevant", 1: "relevant", 2: "highly relevant"}

# Geometry, in viewBox units (CSS pixels at the chart's natural size).
FONT = 11  # rank numbers, labels, the "out" lane
TITLE_FONT = 12  # axis titles
LEFT = 44  # the first axis' x: room for rank numbers and "out" to its left
TOP = 40  # the row of rank 1 starts here: room for the axis titles above
STAGE_GAP = 150  # between two axes
RIGHT = 210  # right of the last axis: the top 3's titles
LABEL_WIDTH = 186  # the most a top-3 title may take, estimated
MIN_ROW, MAX_ROW = 9.0, 26.0  # one rank's height: k=10 gets 26, k=50 gets 9
PLOT_HEIGHT = 440.0  # what the k ranks aim to fill, within the bounds above
OUT_GAP = 18.0  # from the last rank's row to the "out" lane
BOTTOM = 14.0
TICK_STEPS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)
LINE_HEIGHT = 1.4  # a line of text is about this many ems tall (Noto Sans: 1.36)
MIN_TICK_SPACING = FONT * LINE_HEIGHT + 1  # rank numbers at least this far apart
LABEL_SPACING = FONT * LINE_HEIGHT + 1  # the top-3 titles at least this far apart

# Wired to the chart's gr.HTML (js_on_load): a click on a line (or its top-3 label) marks the line and every
# card of that passage, and scrolls the card in the line's focus stage (the last stage that has it in its
# top k) into view. It compares data-passage values and never builds a selector from one, so an id needs
# no escaping beyond the attribute's own.
RANK_FLOW_JS = """
element.addEventListener('click', (event) => {
  const hook = event.target.closest && event.target.closest('svg.rank-flow-chart [data-passage]');
  if (!hook || !element.contains(hook)) return;
  const id = hook.getAttribute('data-passage');
  element.querySelectorAll('g.rf-line').forEach((line) => {
    line.classList.toggle('rf-selected', line.getAttribute('data-passage') === id);
  });
  const cards = Array.from(document.querySelectorAll('li.hit'));
  cards.forEach((card) => card.classList.toggle('rank-flow-target', card.getAttribute('data-passage') === id));
  const targets = cards.filter((card) => card.getAttribute('data-passage') === id);
  if (!targets.length) return;
  const stage = hook.getAttribute('data-focus-stage');
  const focus = targets.find((card) => card.getAttribute('data-stage') === stage) || targets[0];
  focus.scrollIntoView({block: 'center', behavior: 'smooth'});
});
"""

_GRAPHEME = regex.compile(r"\X")


class LineStyle(NamedTuple):
    """How the lines of one language group are drawn: a stroke colour and a dash pattern (None: solid)."""

    colour: str
    dash: str | None


@dataclass(frozen=True)
class _Geometry:
    stages: tuple[str, ...]
    k: int
    row: float
    width: float
    height: float

    def x(self, index: int) -> float:
        return LEFT + index * STAGE_GAP

    def y(self, position: int | None) -> float:
        """The y of a rank within the top k, or of the out lane (None)."""
        return self.out_y if position is None else TOP + (position - 0.5) * self.row

    @property
    def out_y(self) -> float:
        return TOP + self.k * self.row + OUT_GAP


@dataclass(frozen=True)
class _Passage:
    passage_id: str
    hit: Hit  # the first stage's hit of it: title, language, doc id
    positions: tuple[int | None, ...]  # its position in each drawn stage's top k (None: out)
    hits: tuple[Hit | None, ...]  # its hit in each drawn stage at any depth (None: not returned)


def reranker_stages(names: Iterable[str]) -> tuple[str, ...]:
    """Return the names that are rerank stages (`search.stages.is_rerank`: rerank, rerank-b, rerank-c, …), in
    the order given.

    >>> reranker_stages(["bm25", "hybrid", "rerank", "rerank-b", "rerank-c"])
    ('rerank', 'rerank-b', 'rerank-c')
    """
    return tuple(name for name in names if stages.is_rerank(name))


def language_styles(groups: Iterable[str]) -> dict[str, LineStyle]:
    """Return a line style for each language group, in the order given: six colours solid, then the same
    six dashed, then dotted (18 distinct styles, then they repeat); "unknown" is always grey.

    >>> styles = language_styles(["de", "en", "unknown"])
    >>> styles["de"], styles["unknown"]
    (LineStyle(colour='#0072B2', dash=None), LineStyle(colour='#8c8c8c', dash='1.5 2.5'))
    """
    styles: dict[str, LineStyle] = {}
    for group in groups:
        if group in styles:
            continue
        if group == "unknown":
            styles[group] = LineStyle(UNKNOWN_COLOUR, DASHES[-1])
            continue
        index = sum(1 for name in styles if name != "unknown")
        styles[group] = LineStyle(PALETTE[index % len(PALETTE)], DASHES[index // len(PALETTE) % len(DASHES)])
    return styles


def render_rank_flow(result: SearchResult, *, k: int, judgments: Mapping[str, int] | None = None,
                     stages: Sequence[str] | None = None, languages: Iterable[str] = ()) -> Markup:
    """Return the rank-flow chart of `result` at `k` as a ``<figure>``: an inline SVG and its legend.

    `stages` picks the axes and their order (default: every stage of `result.stages` that ran without an
    error, in that order); a stage with an error has no axis. `judgments` (passage id -> grade 0/1/2 for
    this query) marks judged passages. `languages` (the corpus' language groups) fixes each language's
    colour for the whole corpus; without it the languages of this chart take the colours in code order.
    The last reranker's top 3 (the last stage's, when no reranker ran) and every passage a reranker lifted
    (`search.compare.is_lifted`) are drawn thick and opaque, the rest light.

    Raises ValueError for k < 1 or a name in `stages` that `result` has no stage of.
    """
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    drawn = _drawn_stages(result, stages)
    if not drawn:
        return element("figure", element("p", "No stage ran, so there is nothing to chart.", class_="rf-empty"),
                       class_="rank-flow", data_k=k, data_stages="")
    geometry = _geometry(drawn, k)
    passages = _passages(result, drawn, k)
    styles = language_styles([*sorted(set(languages)), *sorted({p.hit.language.group for p in passages})])
    focus_stage = (reranker_stages(drawn) or drawn)[-1]
    strong = _strong_passages(result, drawn, k, focus_stage)
    grades = {pid: grade for pid, grade in (judgments or {}).items() if grade in GRADE_TITLES}
    # Light lines first, so the strong ones are drawn over them.
    ordered = sorted(passages, key=lambda p: (p.passage_id in strong, _sort_rank(p)))
    lines = [_line(passage, result, geometry, styles[passage.hit.language.group], strong.get(passage.passage_id),
                   grades.get(passage.passage_id)) for passage in ordered]
    labels = _top_labels(passages, geometry, focus_stage)
    svg = element(
        "svg",
        element("title", f"Rank flow at k={k}: {len(passages)} passages across "
                         f"{', '.join(stage_title(name) for name in drawn)}"),
        _axes(geometry),
        element("g", join(lines), class_="rf-lines"),
        labels,
        xmlns="http://www.w3.org/2000/svg", viewBox=f"0 0 {geometry.width:g} {geometry.height:g}",
        width=f"{geometry.width:g}", height=f"{geometry.height:g}", class_="rank-flow-chart", role="img",
        aria_label=f"How each passage's rank changes across {len(drawn)} stages, top {k}",
        font_size=FONT,
    )
    legend = _legend(passages, styles, strong_note=_strong_note(result, focus_stage, k), grades=set(grades.values()),
                     k=k)
    return element("figure", svg, element("figcaption", legend, class_="rf-caption"), class_="rank-flow",
                   data_k=k, data_stages=" ".join(drawn))


def render_agreement(result: SearchResult, k: int, stages: Sequence[str] | None = None) -> Markup:
    """Return a matrix of how far the stages agree at `k`: above the diagonal shared@k and Jaccard@k of each
    pair's top k (`search.compare.overlap`), below it Kendall's tau over the candidates both ranked
    (`search.compare.kendall_tau`), for the pairs that rank the same candidates: two rerankers, or a reranker
    and the stage that fed it; other cells say "—". Raises ValueError for k < 1 or an unknown stage.

    The numbers equal `compare.overlaps` and `compare.agreement` for the pairs those report.
    """
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    drawn = _drawn_stages(result, stages)
    if len(drawn) < 2:
        return element("p", "Agreement needs two stages that ran.", class_="rank-agreement rf-empty")
    head = element("tr", element("th", "", scope="col"),
                   *[element("th", stage_title(name), scope="col", data_stage=name) for name in drawn])
    rows = []
    for i, first in enumerate(drawn):
        cells = [element("th", stage_title(first), scope="row", data_stage=first)]
        for j, second in enumerate(drawn):
            if i == j:
                cells.append(element("td", "", class_="rf-diagonal"))
            elif i < j:
                cells.append(_overlap_cell(result.stages[first], result.stages[second], k))
            else:
                cells.append(_tau_cell(result, first, second))
        rows.append(element("tr", *cells))
    caption = element("caption", f"Agreement at k={k}", element(
        "span", f"upper: shared@{k} and Jaccard · lower: Kendall's τ", class_="rf-agreement-note",
        title=f"above the diagonal: passages both top-{k} lists share, and Jaccard (shared / in either); below: "
              "Kendall's τ over the candidates both ranked (1 same order, −1 reversed)"))
    return element("table", caption, element("thead", head), element("tbody", join(rows)), class_="rank-agreement",
                   data_k=k)


def render_comparison(result: SearchResult, *, k: int, judgments: Mapping[str, int] | None = None,
                      languages: Iterable[str] = ()) -> Markup:
    """Return the chart and the agreement matrix side by side (``div.rank-flow-row``), for one gr.HTML."""
    return element("div", render_rank_flow(result, k=k, judgments=judgments, languages=languages),
                   render_agreement(result, k), class_="rank-flow-row")


# -- what is drawn -----------------------------------------------------------------------------------


def _drawn_stages(result: SearchResult, stages: Sequence[str] | None) -> tuple[str, ...]:
    if stages is None:
        return tuple(name for name, stage in result.stages.items() if not stage.error)
    unknown = [name for name in stages if name not in result.stages]
    if unknown:
        raise ValueError(f"stages={list(stages)!r} names {unknown[0]!r}, which this search has no result for; "
                         f"use some of {', '.join(result.stages)}")
    return tuple(dict.fromkeys(name for name in stages if not result.stages[name].error))




def _passages(result: SearchResult, drawn: Sequence[str], k: int) -> list[_Passage]:
    top: list[dict[str, int]] = []
    every: list[dict[str, Hit]] = []
    for name in drawn:
        hits = result.stages[name].hits
        top.append({hit.passage_id: position for position, hit in enumerate(hits[:k], start=1)})
        every.append({hit.passage_id: hit for hit in hits})
    ids = list(dict.fromkeys(pid for positions in top for pid in positions))
    passages = []
    for pid in ids:
        hits = tuple(stage_hits.get(pid) for stage_hits in every)
        first = next(hit for hit in hits if hit is not None)
        passages.append(_Passage(pid, first, tuple(positions.get(pid) for positions in top), hits))
    return passages


def _sort_rank(passage: _Passage) -> tuple[int, ...]:
    # Later stages first: a line whose last position is deep is drawn under one that ends high.
    return tuple(-(position or 10**9) for position in reversed(passage.positions))


def _strong_passages(result: SearchResult, drawn: Sequence[str], k: int, focus_stage: str) -> dict[str, set[str]]:
    """Passage id -> why it stands out ("top": the focus stage's top 3, "lifted": a reranker lifted it)."""
    strong: dict[str, set[str]] = {}
    for hit in result.stages[focus_stage].hits[:compare.LIFTED_TOP]:
        strong.setdefault(hit.passage_id, set()).add("top")
    for name in reranker_stages(drawn):
        for hit in result.stages[name].hits[:compare.LIFTED_TOP]:
            if compare.is_lifted(hit, result.candidates_from, k):
                strong.setdefault(hit.passage_id, set()).add("lifted")
    return strong


def _strong_note(result: SearchResult, focus_stage: str, k: int) -> str:
    source = stage_short(result.candidates_from)
    note = f"thick: {stage_title(focus_stage)} top {compare.LIFTED_TOP}"
    if reranker_stages([focus_stage]):
        note += f", and passages a reranker lifted into its top {compare.LIFTED_TOP} from below {source}'s top {k}"
    return note


# -- geometry -----------------------------------------------------------------------------------------


def _geometry(drawn: Sequence[str], k: int) -> _Geometry:
    row = min(MAX_ROW, max(MIN_ROW, PLOT_HEIGHT / k))
    width = LEFT + (len(drawn) - 1) * STAGE_GAP + RIGHT
    height = TOP + k * row + OUT_GAP + BOTTOM
    return _Geometry(tuple(drawn), k, row, round(width, 1), round(height, 1))


def tick_ranks(k: int, row: float) -> tuple[int, ...]:
    """Return the ranks numbered beside the first axis: 1, then every step that keeps the numbers at least
    `MIN_TICK_SPACING` apart, and k itself when it does not crowd the last one.

    >>> tick_ranks(10, 26.0), tick_ranks(50, 9.0)
    ((1, 2, 3, 4, 5, 6, 7, 8, 9, 10), (1, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50))
    """
    step = next((step for step in TICK_STEPS if step * row >= MIN_TICK_SPACING), TICK_STEPS[-1])
    ranks = [1, *range(step, k + 1, step)] if step > 1 else list(range(1, k + 1))
    ranks = list(dict.fromkeys(ranks))
    if len(ranks) > 1 and (ranks[1] - ranks[0]) * row < MIN_TICK_SPACING:
        ranks.pop(1)
    if ranks[-1] != k and (k - ranks[-1]) * row >= MIN_TICK_SPACING:
        ranks.append(k)
    return tuple(ranks)


def text_width(text: str, size: float) -> float:
    """Return an estimate of `text`'s width at font `size`: wide (CJK) characters one em, combining marks
    none, others 0.62 em (generous for Latin in a sans-serif), so labels are placed apart with room to spare.

    >>> text_width("abc", 10), text_width("中文", 10)
    (18.6, 20.0)
    """
    width = 0.0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in {"Mn", "Me", "Cf"}:
            continue
        width += size if unicodedata.east_asian_width(char) in {"W", "F"} else 0.62 * size
    return round(width, 3)


def _fit(text: str, size: float, width: float) -> str:
    """`text` cut at a grapheme boundary, with an ellipsis, so that it fits `width`."""
    if text_width(text, size) <= width:
        return text
    kept = ""
    for grapheme in _GRAPHEME.findall(text):
        if text_width(kept + grapheme + "…", size) > width:
            break
        kept += grapheme
    return kept.rstrip() + "…"


# -- drawing ------------------------------------------------------------------------------------------


def _axes(geometry: _Geometry) -> Markup:
    top, bottom = geometry.y(1) - geometry.row / 2, TOP + geometry.k * geometry.row
    parts = []
    for rank in tick_ranks(geometry.k, geometry.row):
        y = geometry.y(rank)
        parts.append(element("line", x1=LEFT, x2=geometry.x(len(geometry.stages) - 1), y1=f"{y:g}", y2=f"{y:g}",
                             class_="rf-grid", stroke="currentColor", stroke_opacity="0.08"))
        parts.append(element("text", str(rank), x=LEFT - 8, y=f"{y:g}", class_="rf-tick", text_anchor="end",
                             dominant_baseline="central", fill="currentColor"))
    for index, name in enumerate(geometry.stages):
        x = geometry.x(index)
        title = stage_title(name)
        shown = _fit(title, TITLE_FONT, STAGE_GAP - 12)
        parts.append(element(
            "g",
            element("title", title) if shown != title else None,
            element("line", x1=x, x2=x, y1=f"{top:g}", y2=f"{bottom:g}", class_="rf-axis-line", stroke="currentColor",
                    stroke_opacity="0.35"),
            element("text", shown, x=x, y=TOP - 22, class_="rf-axis-title", text_anchor="middle",
                    font_size=TITLE_FONT, font_weight="700", fill="currentColor"),
            element("text", f"top {geometry.k}", x=x, y=TOP - 9, class_="rf-axis-sub", text_anchor="middle",
                    fill="currentColor", fill_opacity="0.6"),
            class_="rf-axis", data_stage=name))
    out_y = geometry.out_y
    parts.append(element(
        "g",
        element("title", f"out: not in that stage's top {geometry.k}"),
        element("line", x1=LEFT - 4, x2=geometry.x(len(geometry.stages) - 1) + 4, y1=f"{out_y:g}", y2=f"{out_y:g}",
                stroke="currentColor", stroke_opacity="0.35", stroke_dasharray="3 3"),
        element("text", "out", x=LEFT - 8, y=f"{out_y:g}", text_anchor="end", dominant_baseline="central",
                fill="currentColor", font_style="italic"),
        class_="rf-out-lane"))
    return element("g", join(parts), class_="rf-axes")


def _line(passage: _Passage, result: SearchResult, geometry: _Geometry, style: LineStyle, why: set[str] | None,
          grade: int | None) -> Markup:
    points = " ".join(f"{geometry.x(i):g},{geometry.y(position):g}" for i, position in enumerate(passage.positions))
    strong = why is not None
    in_top = [i for i, position in enumerate(passage.positions) if position is not None]
    focus = geometry.stages[in_top[-1]]
    marks = []
    for i in in_top:
        x, y = geometry.x(i), geometry.y(passage.positions[i])
        if grade is None:
            marks.append(element("circle", cx=f"{x:g}", cy=f"{y:g}", r="2.5" if strong else "1.8", fill=style.colour,
                                 class_="rf-dot"))
        else:
            marks.append(_grade_mark(x, y, grade, style.colour))
    ranks = " ".join("out" if position is None else str(position) for position in passage.positions)
    return element(
        "g",
        element("title", _hover_text(passage, result, geometry, why, grade)),
        element("polyline", points=points, class_="rf-path", fill="none", stroke=style.colour,
                stroke_width="3" if strong else "1.5", stroke_opacity="1" if strong else "0.4",
                stroke_dasharray=style.dash, stroke_linejoin="round", data_ranks=ranks),
        element("polyline", points=points, class_="rf-hit", fill="none", stroke="transparent", stroke_width="7"),
        join(marks),
        class_=classes("rf-line", strong and "rf-strong", strong and "top" in why and "rf-top",
                       strong and "lifted" in why and "rf-lifted", grade is not None and "rf-judged"),
        data_passage=passage.passage_id, data_lang=passage.hit.language.group, data_focus_stage=focus,
        data_judged=None if grade is None else str(grade),
    )


def _grade_mark(x: float, y: float, grade: int, colour: str) -> Markup:
    """A judged passage's marker: 2 a filled disc, 1 a ring, 0 a cross."""
    if grade == 0:
        d = f"M{x - 3.5:g},{y - 3.5:g}L{x + 3.5:g},{y + 3.5:g}M{x - 3.5:g},{y + 3.5:g}L{x + 3.5:g},{y - 3.5:g}"
        return element("path", d=d, stroke="currentColor", stroke_width="1.6", class_="rf-mark", data_grade="0")
    return element("circle", cx=f"{x:g}", cy=f"{y:g}", r="4", fill=colour if grade == 2 else "none",
                   stroke="currentColor" if grade == 2 else colour, stroke_width="1.4" if grade == 2 else "2",
                   class_="rf-mark", data_grade=str(grade))


def _hover_text(passage: _Passage, result: SearchResult, geometry: _Geometry, why: set[str] | None,
                grade: int | None) -> str:
    hit = passage.hit
    language = hit.language
    name = LANGUAGE_NAMES.get(language.code, language.code)
    confidence = f" {language.probability:.2f}" if language.is_known else ""
    lines = [hit.title or hit.doc_id, f"{passage.passage_id} · {name} ({language.code}{confidence})"]
    for index, stage in enumerate(geometry.stages):
        title = stage_title(stage)
        stage_hit = passage.hits[index]
        if stage_hit is None:
            rank = _rank_in(passage, geometry, stage)
            lines.append(f"{title}: not returned" if rank is None else f"{title}: out of top {geometry.k} (#{rank})")
        elif passage.positions[index] is None:
            lines.append(f"{title}: out of top {geometry.k} (#{stage_hit.rank} · {_score(stage, stage_hit)})")
        else:
            lines.append(f"{title}: #{stage_hit.rank} · {_score(stage, stage_hit)}")
    if grade is not None:
        lines.append(f"judged {grade} ({GRADE_TITLES[grade]})")
    if why and "lifted" in why:
        source = stage_short(result.candidates_from)
        before = _rank_in(passage, geometry, result.candidates_from)
        lines.append(f"lifted from {source} #{before if before is not None else '?'} into a reranker's top "
                     f"{compare.LIFTED_TOP}")
    return "\n".join(lines)


def _rank_in(passage: _Passage, geometry: _Geometry, stage: str) -> int | None:
    """The passage's rank in `stage` at any depth: its hit there, else what its other hits say (None: unranked)."""
    if stage in geometry.stages:
        hit = passage.hits[geometry.stages.index(stage)]
        if hit is not None:
            return hit.rank
    return next((hit.ranks[stage] for hit in passage.hits if hit is not None and hit.ranks.get(stage) is not None),
                None)


def _score(name: str, hit: Hit) -> str:
    """The score as the cards say it: the registry's label and digits ("cos 0.512", "logit 4.21"); a reranker
    without a logit (the late-interaction fallback) gives a plain score."""
    if not stages.known(name) or (stages.is_rerank(name) and hit.sigmoid is None):
        return f"score {hit.score:.3f}"
    entry = stages.stage(name)
    return f"{entry.score_label} {hit.score:.{entry.digits}f}"


def _top_labels(passages: Sequence[_Passage], geometry: _Geometry, focus_stage: str) -> Markup:
    """The focus stage's top 3 titles right of the last axis, pushed apart so they never overlap, each with
    a leader from its line's end when it had to move. They sit in the passage's own group (hover, click)."""
    index = geometry.stages.index(focus_stage)
    top = sorted((p for p in passages if p.positions[index] is not None and p.positions[index] <= compare.LIFTED_TOP),
                 key=lambda p: p.positions[index])
    last_x = geometry.x(len(geometry.stages) - 1)
    labels, previous = [], None
    for passage in top:
        anchor_y = geometry.y(passage.positions[index]) if index == len(geometry.stages) - 1 else geometry.y(
            passage.positions[-1])
        y = anchor_y if previous is None else max(anchor_y, previous + LABEL_SPACING)
        previous = y
        text = _fit(f"{passage.positions[index]}. {passage.hit.title or passage.hit.doc_id}", FONT, LABEL_WIDTH)
        leader = (element("line", x1=last_x + 3, y1=f"{anchor_y:g}", x2=last_x + 10, y2=f"{y:g}", stroke="currentColor",
                          stroke_opacity="0.5", class_="rf-leader") if abs(y - anchor_y) > 0.5 else None)
        labels.append(element(
            "g", element("title", passage.hit.title or passage.hit.doc_id), leader,
            element("text", text, x=last_x + 12, y=f"{y:g}", dominant_baseline="central", fill="currentColor",
                    class_="rf-label", lang=passage.hit.language.group if passage.hit.language.is_known else None),
            class_="rf-label-group", data_passage=passage.passage_id, data_focus_stage=focus_stage))
    return element("g", join(labels), class_="rf-labels")


def _legend(passages: Sequence[_Passage], styles: Mapping[str, LineStyle], *, strong_note: str, grades: set[int],
            k: int) -> Markup:
    counts: dict[str, int] = {}
    for passage in passages:
        counts[passage.hit.language.group] = counts.get(passage.hit.language.group, 0) + 1
    keys = []
    for group, style in styles.items():
        if group not in counts:
            continue
        name = LANGUAGE_NAMES.get(group, group)
        keys.append(element("li", _swatch(style), f"{name} ({group}) · {counts[group]}", class_="rf-key",
                            data_lang=group))
    keys.append(element("li", _swatch(LineStyle("currentColor", None), strong=True), strong_note,
                        class_="rf-key-note", data_note="strong"))
    keys.append(element("li", f"out: not in that stage's top {k}", class_="rf-key-note", data_note="out"))
    for grade in sorted(grades, reverse=True):
        mark = element("svg", _grade_mark(8, 6, grade, PALETTE[0]), width="16", height="12", viewBox="0 0 16 12",
                       aria_hidden="true", class_="rf-swatch")
        keys.append(element("li", mark, f"judged {grade} ({GRADE_TITLES[grade]})", class_="rf-key-note",
                            data_note=f"grade-{grade}"))
    return element("ul", join(keys), class_="rf-legend")


def _swatch(style: LineStyle, strong: bool = False) -> Markup:
    return element("svg", element("line", x1="1", x2="27", y1="6", y2="6", stroke=style.colour,
                                  stroke_width="3" if strong else "2", stroke_dasharray=style.dash),
                   width="28", height="12", viewBox="0 0 28 12", aria_hidden="true", class_="rf-swatch")


# -- agreement ----------------------------------------------------------------------------------------


def _overlap_cell(first: StageResult, second: StageResult, k: int) -> Markup:
    shared, jaccard = compare.overlap(first, second, k)
    band = min(4, int(jaccard * 5))  # 0..4, the cell's shade
    return element("td", element("span", str(shared), class_="rf-shared"),
                   element("span", f"J {jaccard:.2f}", class_="rf-jaccard"),
                   class_=f"rf-pair rf-j{band}", data_pair=f"{first.stage}-{second.stage}", data_shared=shared,
                   data_jaccard=f"{jaccard:.4f}",
                   title=f"{stage_title(first.stage)} and {stage_title(second.stage)}: {shared} of top {k} shared, "
                         f"Jaccard {jaccard:.2f}")


def _tau_cell(result: SearchResult, first: str, second: str) -> Markup:
    """Kendall's tau of two stages that rank the same candidates (two rerankers, or a reranker and the stage
    that fed it), over every candidate both ranked; "—" for the other pairs."""
    rerankers = reranker_stages([first, second])
    same_candidates = len(rerankers) == 2 or (len(rerankers) == 1 and result.candidates_from in (first, second))
    if not same_candidates:
        return element("td", "—", class_="rf-pair rf-no-tau", data_pair=f"{first}-{second}",
                       title="Kendall's τ only for stages that rank the same candidates")
    # Over the ids both lists hold: a reranker's candidates are the top of the stage that fed it.
    ids_first = [hit.passage_id for hit in result.stages[first].hits]
    ids_second = [hit.passage_id for hit in result.stages[second].hits]
    tau = compare.kendall_tau(ids_first, ids_second)
    both = len(set(ids_first) & set(ids_second))
    text = "n/a" if tau is None else f"τ {tau:.2f}"
    return element("td", text, class_="rf-pair rf-tau", data_pair=f"{first}-{second}",
                   data_tau="" if tau is None else f"{tau:.4f}",
                   title=f"{stage_title(first)} and {stage_title(second)}: Kendall's τ over {both} candidates "
                         "both ranked")
