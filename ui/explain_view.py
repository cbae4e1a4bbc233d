"""The Explain panel: which reranked passage to explain (of reranker A's column or B's), what it will cost,
and the passage with each sentence shaded by how much the score drops without it (`search.explain`), query
terms still marked.

Built with `ui.html`, so passage text is escaped by construction. Hooks for tests and scripts:

    div.explain-cost[data-state=none|measured|unmeasured|cached][data-pairs]
    div.explain-result[data-kind=sentence|window]   span.explain-part.gain|.loss|.flat[data-level=0..5][data-drop]
    div.explain-progress[data-done][data-total]
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from search.explain import ExplainCost, Explanation
from search.stages import stage as stage_info
from search.types import Hit, SearchResult

from .highlight import highlight
from .html import Markup, element, join
from .labels import about, count

LEVELS = 5  # shades of a part's drop, relative to the largest drop in the passage
_CHOICE_CHARS = 70


def passage_choices(result: SearchResult | None, stage: str = "rerank") -> list[tuple[str, str]]:
    """The passages of `result`'s reranked column `stage` (rerank: A, rerank-b: B) as dropdown choices:
    ("#1 · doc#0 · the start of its text…", id).

    Empty when `result` has no such column (yet)."""
    reranked = result.stages.get(stage) if result is not None else None
    if reranked is None or reranked.error:
        return []
    return [(f"#{hit.rank} · {hit.passage_id} · {_start(hit.text)}", hit.passage_id) for hit in reranked.hits]


def reranked_hit(result: SearchResult | None, passage_id: str | None, stage: str = "rerank") -> Hit | None:
    """The hit with `passage_id` in `result`'s reranked column `stage`, or None."""
    reranked = result.stages.get(stage) if result is not None else None
    if reranked is None or not passage_id:
        return None
    return next((hit for hit in reranked.hits if hit.passage_id == passage_id), None)


def reranker_name(stage: str, label: str) -> str:
    """Which reranker an explanation uses, as the panel says it: "reranker A: <label>" (stage rerank),
    "reranker B: <label>" (rerank-b), …"""
    return f"reranker {stage_info(stage).letter}: {label}"


def render_cost(hit: Hit | None, cost: ExplainCost | None, reranker: str | None = None) -> Markup:
    """Return what explaining `hit` will cost, said before anything runs: its parts, the extra pairs to score
    and the expected time on this machine (`cost` from `search.explain.explain_cost`); with `reranker`
    (`reranker_name`), which reranker will score them."""
    if hit is None or cost is None:
        return element("div", "Pick a reranked passage (or press Explain on a card in the Reranked column) to see "
                              "why it scored as it did.", class_="explain-cost", data_state="none")
    what = count(cost.parts, "sentence" if cost.kind == "sentence" else "window")
    head = f"#{hit.rank} {hit.passage_id}: {what}, each left out in turn"
    if reranker:
        head += f", scored by {reranker}"
    if cost.pairs == 0:
        text, state = "no extra pairs: every version is scored already (score cache)", "cached"
    elif cost.seconds is None:
        text, state = f"{count(cost.pairs, 'extra pair')}; time measured after the first rerank", "unmeasured"
    else:
        text, state = f"{count(cost.pairs, 'extra pair')}, {about(cost.seconds)} on this machine", "measured"
    return element("div", element("span", head, class_="explain-what"), " · ", element("span", text),
                   class_="explain-cost", data_state=state, data_pairs=int(cost.pairs))


def render_progress(done: int, total: int) -> Markup:
    """Return a progress bar for a running explanation: "12 of 20 pairs scored"."""
    done = min(done, total)
    return element("div", element("progress", max=max(total, 1), value=done),
                   element("span", f"{done:,} of {count(total, 'pair')} scored"),
                   class_="explain-progress", data_done=done, data_total=total)


def render_explanation(explanation: Explanation, hit: Hit, terms: Iterable[str],
                       reranker: str | None = None) -> Markup:
    """Return the passage with each part shaded by its drop (green: the score falls without it; red: it rises),
    the query's `terms` marked, the full score, the reranker (`reranker`, else the model's label) and a legend.

    A part's shade is one of LEVELS steps of its drop relative to the passage's largest drop in absolute
    value; its tooltip gives the score without it and the drop."""
    terms = frozenset(terms)
    largest = max((abs(part.drop) for part in explanation.parts), default=0.0)
    pieces: list[str | Markup] = []
    position = 0
    for part in explanation.parts:
        pieces.append(explanation.passage[position:part.start])
        level = math.ceil(LEVELS * abs(part.drop) / largest - 1e-9) if largest > 0 else 0
        shade = "gain" if part.drop > 0 and level else "loss" if part.drop < 0 and level else "flat"
        pieces.append(element(
            "span", highlight(part.text, hit.language.group, terms), class_=f"explain-part {shade}",
            data_level=level, data_drop=f"{part.drop:+.4f}",
            title=f"without this {explanation.kind}: score {part.score_without:.4f} (drop {part.drop:+.4f})"))
        position = part.end
    pieces.append(explanation.passage[position:])
    sigmoid = f" · sigmoid {explanation.sigmoid:.3f}" if explanation.sigmoid is not None else ""
    unit = explanation.kind
    head = element("p", f"#{hit.rank} {hit.passage_id} · score {explanation.score:.4f}{sigmoid} · "
                        f"{reranker or explanation.model}", class_="explain-head")
    legend = element("p", element("span", f"score falls without the {unit}", class_="explain-part gain",
                                  data_level=LEVELS),
                     " ", element("span", "score rises without it", class_="explain-part loss", data_level=LEVELS),
                     f" · darker: a larger change (largest {largest:.4f}); hover a {unit} for its numbers",
                     class_="explain-legend")
    top = explanation.most_important() if explanation.parts else None
    summary = (element("p", f"Without “{_start(top.text)}” the score falls most: {top.drop:+.4f}.",
                       class_="explain-top") if top is not None and top.drop > 0 else None)
    return element("div", head, legend, element("p", join(pieces), class_="explain-passage", dir="auto"), summary,
                   class_="explain-result", data_kind=explanation.kind)


def render_message(text: str) -> Markup:
    """Return a short note in place of an explanation (nothing to explain, or the passage went away)."""
    return element("div", element("p", text, class_="explain-head"), class_="explain-result", data_kind="none")


def _start(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _CHOICE_CHARS else flat[: _CHOICE_CHARS - 1] + "…"


EXPLAIN_HELP = (
    "Pick a passage of the Reranked column, or press **Explain** on its card (on a card of Reranked (B), the "
    "passage is explained with reranker B). Explaining scores the passage again "
    "with each sentence left out in turn (fixed windows of words, or of characters, when the text has no sentence "
    "punctuation): green sentences are the ones without which the score falls, red ones raise it when left out. "
    "It costs one extra pair per sentence, said below before anything runs, and pairs already scored come from "
    "the score cache."
)
