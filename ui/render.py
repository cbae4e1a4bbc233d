"""Engine results -> HTML strings for the app's `gr.HTML` components, and the stylesheet they need.

Everything that comes from a corpus or a query (passage text, titles, ids, file names, model names,
notes, error messages) is untrusted. It reaches the HTML only through `html.escape(..., quote=True)`,
as element text or inside a `title=` tooltip; highlights escape the text between and inside the
`<mark>` tags. Classes and `data-` attributes are built only from closed sets (stage names, movement
kinds, language families) and integers, so a browser test can select on them:

    section.stage-column[data-stage=rerank][data-state=done|error|pending|empty]
    li.hit[data-stage][data-rank=<shown position>][data-hit-rank=<rank in the stage>]
    span.lang-badge[data-lang-family]   span.score   span.truncated-mark   p.snippet mark
    span.move.up|down|same|new[data-against=bm25|dense|hybrid] (.primary: the stage that fed the reranker)
    span.found[data-by=bm25|dense]   span.lifted   span.xrank[data-against]   div.stage-error
    div.search-summary span.overlap[data-pair=bm25-dense]   div.build-summary li.problem.skipped|warning
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, NamedTuple

import pandas as pd

from search import analysis
from search.inference import Loaded, Reranker
from search.language import LANGUAGE_NAMES
from search.models import FALLBACK_LABEL, LATE_INTERACTION_ID, LATE_INTERACTION_LABEL
from search.pipeline import BuildReport, query_terms
from search.types import FIRST_STAGES, STAGES, Hit, Language, Problem, SearchResult, StageResult

ScoreView = Literal["raw", "sigmoid"]
MoveKind = Literal["up", "down", "same", "new"]

STAGE_TITLES = {"bm25": "BM25", "dense": "Dense", "hybrid": "Hybrid (RRF)", "rerank": "Reranked"}
# How a stage is named inside a sentence ("↑6 from BM25 #8", "not in dense top-10").
STAGE_NAMES = {"bm25": "BM25", "dense": "dense", "hybrid": "hybrid", "rerank": "reranked"}
STAGE_PAIRS = (("bm25", "dense"), ("bm25", "hybrid"), ("dense", "hybrid"),
               ("bm25", "rerank"), ("dense", "rerank"), ("hybrid", "rerank"))
SNIPPET_CHARS = 320
# A reranked hit in this top that its candidate stage had below the top-k shown is marked "lifted".
LIFTED_TOP = 3
MAX_PROBLEMS_SHOWN = 50
BUILD_STEP_NAMES = {"read": "reading", "languages": "language detection", "bm25": "BM25 index",
                    "embeddings": "embeddings"}

# Badge colours go by script family, so 55 languages need six colours, not 55.
_FAMILY_CODES = {
    "latin": "af ca cs cy da de en es et fi fr hr hu id it lt lv nl no pl pt ro sk sl so sq sv sw tl tr vi",
    "cyrillic": "bg mk ru uk",
    "cjk": "zh zh-cn zh-tw ja ko",
    "indic": "bn gu hi kn ml mr ne pa ta te",
    "arabic": "ar fa ur",
    "other": "el he th",
}
LANGUAGE_FAMILIES: dict[str, str] = {
    code: family for family, codes in _FAMILY_CODES.items() for code in codes.split()
}
# Clause punctuation of scripts without spaces: a good place to cut a snippet when there is no space.
_CLAUSE_ENDS = frozenset("。，、；：！？．…」』）")
# How far a cut may move to reach a space or clause end; beyond it, cut between characters (no-space text).
_MAX_SNAP = 24


def language_family(code: str) -> str:
    """Return the script family used to colour a language badge: latin, cyrillic, cjk, indic, arabic,
    other, or unknown.

    >>> language_family("zh-cn"), language_family("hi"), language_family("unknown")
    ('cjk', 'indic', 'unknown')
    """
    if code == "unknown":
        return "unknown"
    return LANGUAGE_FAMILIES.get(code, "other")


# -- highlighting ---------------------------------------------------------------------------------


def match_spans(text: str, language: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Return the (start, end) character spans of `text` to mark for `terms`, sorted and merged.

    A span is a token of `analysis.tokenize(text, language)` whose term is in `terms`; overlapping
    and touching spans become one. In scripts written without spaces a single character only counts
    when the query has it alone: a query's characters all come as unigrams too, and marking every
    lone 的 or 是 would bury the runs that actually match.

    >>> match_spans("我爱长城和故宫", "zh", {"长", "长城", "城"})
    [(2, 4)]
    """
    wanted = frozenset(terms)
    if not wanted or not text:
        return []
    tokens = analysis.tokenize(text, language)
    alone = _standalone_terms(wanted)
    spans = [
        (token.start, token.end)
        for i, token in enumerate(tokens)
        if token.term in wanted and (token.term in alone or not _inside_neighbour(tokens, i))
    ]
    return _merge(spans)


def highlight(text: str, language: str, terms: Iterable[str]) -> str:
    """Return `text` as escaped HTML with every token whose term is in `terms` wrapped in ``<mark>``.

    `language` is the passage's language group (it picks the stemmer), `terms` the query's index terms.

    >>> highlight("Dogs <b>run</b>", "en", {"run"})
    'Dogs &lt;b&gt;<mark>run</mark>&lt;/b&gt;'
    """
    return _marked_html(text, match_spans(text, language, terms), 0, len(text))


def snippet(text: str, language: str, terms: Iterable[str], max_chars: int = SNIPPET_CHARS) -> str:
    """Return highlighted, escaped HTML of `text`, or of a window of about `max_chars` characters of it.

    A text of at most `max_chars` characters is returned whole. Otherwise the window holds as many
    matches as fit (the earliest such group), with some context before; it is cut at whitespace
    or clause punctuation, or between characters in scripts without spaces, and "…" marks each cut end.
    Raises ValueError when max_chars < 1.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars={max_chars} must be at least 1")
    spans = match_spans(text, language, terms)
    if len(text) <= max_chars:
        return _marked_html(text, spans, 0, len(text))
    start, end = _window(text, spans, max_chars)
    return ("…" if start > 0 else "") + _marked_html(text, spans, start, end) + ("…" if end < len(text) else "")


def highlight_terms(result: SearchResult, passage_language: str,
                    corpus_languages: Iterable[str] = ()) -> frozenset[str]:
    """Return the terms to mark in a passage of `passage_language` for `result.query`.

    These are BM25's query terms (`search.pipeline.query_terms`) plus the query analysed as the passage's
    language, so a stemmed match shows even when the query was analysed with another stemmer.
    """
    return _highlight_terms(result.query, result.query_language, passage_language, frozenset(corpus_languages))


@lru_cache(maxsize=256)
def _highlight_terms(query: str, query_language: Language, passage_language: str,
                     corpus_languages: frozenset[str]) -> frozenset[str]:
    return frozenset(query_terms(query, query_language, corpus_languages)) | frozenset(
        analysis.terms(query, passage_language))


@lru_cache(maxsize=64)
def _standalone_terms(terms: frozenset[str]) -> frozenset[str]:
    return frozenset(term for term in terms if not any(term != other and term in other for other in terms))


def _inside_neighbour(tokens: Sequence[analysis.Token], i: int) -> bool:
    # Only the unigrams of a run without spaces lie inside another token, and always inside a neighbour.
    token = tokens[i]
    for j in (i - 1, i + 1):
        if 0 <= j < len(tokens):
            other = tokens[j]
            if (other.start <= token.start and token.end <= other.end
                    and other.end - other.start > token.end - token.start):
                return True
    return False


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _marked_html(text: str, spans: Sequence[tuple[int, int]], lo: int, hi: int) -> str:
    pieces = []
    position = lo
    for start, end in spans:
        start, end = max(start, lo), min(end, hi)
        if start >= end:
            continue
        pieces.append(_esc(text[position:start]))
        pieces.append(f"<mark>{_esc(text[start:end])}</mark>")
        position = end
    pieces.append(_esc(text[position:hi]))
    return "".join(pieces)


def _window(text: str, spans: Sequence[tuple[int, int]], width: int) -> tuple[int, int]:
    first, last = _densest(spans, width)
    room = width - (last - first)
    lo = max(0, first - room // 3)
    hi = min(len(text), lo + width)
    lo = max(0, hi - width)
    if lo > 0:
        lo = _snap_start(text, lo, first)
    if hi < len(text):
        hi = _snap_end(text, hi, max(last, lo))
    while lo < hi and text[lo].isspace():
        lo += 1
    while hi > lo and text[hi - 1].isspace():
        hi -= 1
    return lo, hi


def _densest(spans: Sequence[tuple[int, int]], width: int) -> tuple[int, int]:
    best, best_count = (0, 0), 0
    for i, (start, end) in enumerate(spans):
        last, count = min(end, start + width), 1
        for _, other_end in spans[i + 1:]:
            if other_end > start + width:
                break
            last, count = other_end, count + 1
        if count > best_count:
            best, best_count = (start, last), count
    return best


def _snap_start(text: str, lo: int, limit: int) -> int:
    if text[lo - 1].isspace() or text[lo - 1] in _CLAUSE_ENDS:
        return lo
    for position in range(lo, min(limit, lo + _MAX_SNAP)):
        if text[position].isspace():
            return position
        if text[position] in _CLAUSE_ENDS:
            return position + 1
    while lo < limit and _is_mark(text[lo]):  # keep vowel signs and joiners with their base letter
        lo += 1
    return lo


def _snap_end(text: str, hi: int, limit: int) -> int:
    if text[hi].isspace():
        return hi
    for position in range(hi - 1, max(limit, hi - _MAX_SNAP) - 1, -1):
        if text[position].isspace():
            return position
        if text[position] in _CLAUSE_ENDS:
            return position + 1
    while hi > limit and _is_mark(text[hi]):
        hi -= 1
    return hi


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M") or char in "\u200c\u200d"


# -- movement and provenance ----------------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """Where a reranked hit stood in one first stage: `before` is its rank there (None when that stage
    did not return it), `after` its reranked rank; `kind` is "new" when it was not in that stage's top-k."""

    kind: MoveKind
    against: str
    before: int | None
    after: int
    text: str


def movement(hit: Hit, first_stage: str, k: int) -> Movement:
    """Return how `hit` (a reranked hit) moved against `first_stage` (bm25, dense or hybrid).

    A rank deeper than `k`, or none, counts as "new": the passage was not in that stage's column.
    Raises ValueError for an unknown stage or k < 1.

    >>> movement(Hit("p", "d", 2, 1.0, Language("en", "en", 1.0), "", ranks={"bm25": 8}), "bm25", 10).text
    '↑6 from BM25 #8'
    """
    if first_stage not in FIRST_STAGES:
        raise ValueError(f"first_stage={first_stage!r} is not a first stage; use one of {', '.join(FIRST_STAGES)}")
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    name = STAGE_NAMES[first_stage]
    before, after = hit.ranks.get(first_stage), hit.rank
    if before is None or before > k:
        was = f" (was #{before})" if before is not None else ""
        return Movement("new", first_stage, before, after, f"new: not in {name} top-{k}{was}")
    if before > after:
        return Movement("up", first_stage, before, after, f"↑{before - after} from {name} #{before}")
    if before < after:
        return Movement("down", first_stage, before, after, f"↓{after - before} from {name} #{before}")
    return Movement("same", first_stage, before, after, f"= {name} #{before}")


def found_by(hit: Hit, k: int, stage: str = "rerank") -> list[str]:
    """Return the retrievers ("BM25", "dense") that had `hit` in their top-k, in that order.

    `stage` is the stage `hit` belongs to; its own rank is `hit.rank`, the others come from `hit.ranks`.
    """
    names = []
    for retriever in ("bm25", "dense"):
        rank = hit.rank if retriever == stage else hit.ranks.get(retriever)
        if rank is not None and rank <= k:
            names.append(STAGE_NAMES[retriever])
    return names


def is_lifted(hit: Hit, candidates_from: str, k: int) -> bool:
    """Whether the reranker lifted `hit` into its top `LIFTED_TOP` (3) from deeper than k in the stage
    that fed it (`candidates_from`), i.e. from outside the column the user saw next to it."""
    before = hit.ranks.get(candidates_from)
    return hit.rank <= LIFTED_TOP and before is not None and before > k


class Overlap(NamedTuple):
    """How many passages two stages share in their top-k, and the Jaccard index of the two sets."""

    shared: int
    jaccard: float


def overlap(a: StageResult, b: StageResult, k: int) -> Overlap:
    """Return shared@k and Jaccard@k on the passage ids of the two stages' top-k hits (0.0 for two empty lists).

    >>> hits = lambda *ids: tuple(Hit(i, i, r, 0.0, Language("en", "en", 1.0), "") for r, i in enumerate(ids, 1))
    >>> overlap(StageResult("bm25", hits("a", "b", "c"), 0.0), StageResult("dense", hits("b", "c", "d"), 0.0), 3)
    Overlap(shared=2, jaccard=0.5)
    """
    ids_a = {hit.passage_id for hit in a.hits[:k]}
    ids_b = {hit.passage_id for hit in b.hits[:k]}
    union = ids_a | ids_b
    shared = len(ids_a & ids_b)
    return Overlap(shared, shared / len(union) if union else 0.0)


def best_per_document(hits: Iterable[Hit]) -> list[Hit]:
    """Return the first (best-ranked) hit of each document, in rank order."""
    seen: set[str] = set()
    best = []
    for hit in hits:
        if hit.doc_id not in seen:
            seen.add(hit.doc_id)
            best.append(hit)
    return best


# -- result columns -------------------------------------------------------------------------------


def render_column(stage: StageResult, result: SearchResult, *, k: int, score_view: ScoreView = "raw",
                  collapse_documents: bool = False, corpus_languages: Iterable[str] = (),
                  snippet_chars: int = SNIPPET_CHARS, judgments: Mapping[str, int] | None = None) -> str:
    """Return the HTML of one result column: a header (title, model, note, latency) and the top-k hits as cards.

    `score_view` picks the rerank score shown (raw logit or its sigmoid). `collapse_documents` keeps the
    best passage of each document, then the first k of those, numbered 1..k with each passage's rank
    in the stage shown beside it. `corpus_languages` (the index's language groups) makes highlighting
    match BM25's query analysis. A stage with `error` set shows the error and how to fix it, no hits.
    `judgments` (passage id -> grade for this query) turns on the 0/1/2 judging buttons on every card.
    Raises ValueError for k < 1 or an unknown score_view.
    """
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    if score_view not in ("raw", "sigmoid"):
        raise ValueError(f"score_view={score_view!r} is not one of 'raw', 'sigmoid'")
    key = _stage_key(stage.stage)
    header = _stage_header(stage, result)
    if stage.error:
        return _column(key, "error", header + _error_html(key, stage.error))
    hits = best_per_document(stage.hits) if collapse_documents else list(stage.hits)
    hits = hits[:k]
    if not hits:
        return _column(key, "empty", header + '<p class="stage-empty">No passages returned.</p>')
    languages = frozenset(corpus_languages)
    cards = [
        _card(hit, position, key, result, k=k, score_view=score_view, collapsed=collapse_documents,
              terms=highlight_terms(result, hit.language.group, languages), snippet_chars=snippet_chars,
              judgments=judgments)
        for position, hit in enumerate(hits, start=1)
    ]
    return _column(key, "done", header + '<ol class="hits">' + "".join(cards) + "</ol>")


def render_pending(stage_title: str, model_label: str, detail: str) -> str:
    """Return a column placeholder with a spinner, shown while a stage (the reranker) runs."""
    header = (f'<header class="stage-head"><h3 class="stage-title">{_esc(stage_title)}</h3>'
              f'<div class="stage-model">{_esc(model_label)}</div></header>')
    body = (f'<div class="stage-pending" role="status" aria-live="polite">'
            f'<span class="spinner" aria-hidden="true"></span><span>{_esc(detail)}</span></div>')
    return _column("rerank" if stage_title == STAGE_TITLES["rerank"] else "other", "pending", header + body)


def render_rerank_pending(result: SearchResult, model_label: str) -> str:
    """Return the Reranked column's placeholder: "Reranking 20 candidates from hybrid with MODEL…"."""
    candidates = result.stages.get(result.candidates_from)
    count = min(result.rerank_depth, len(candidates.hits)) if candidates else result.rerank_depth
    detail = f"Reranking {count} candidates from {STAGE_NAMES[result.candidates_from]} with {model_label}…"
    return render_pending(STAGE_TITLES["rerank"], model_label, detail)


def render_notice(stage_title: str, message: str) -> str:
    """Return a column that holds only a message, e.g. "Reranking is off (rerank depth 0)"."""
    header = f'<header class="stage-head"><h3 class="stage-title">{_esc(stage_title)}</h3></header>'
    key = next((name for name, title in STAGE_TITLES.items() if title == stage_title), "other")
    return _column(key, "empty", header + f'<p class="stage-empty">{_esc(message)}</p>')


def _column(key: str, state: str, inner: str) -> str:
    return f'<section class="stage-column" data-stage="{key}" data-state="{state}">{inner}</section>'


def _stage_key(stage: str) -> str:
    return stage if stage in STAGES else "other"


def _stage_header(stage: StageResult, result: SearchResult) -> str:
    title = STAGE_TITLES.get(stage.stage, stage.stage)
    fallback = stage.model in (FALLBACK_LABEL, LATE_INTERACTION_LABEL) or bool(stage.note)
    parts = [
        f'<h3 class="stage-title">{_esc(title)}</h3>',
        f'<span class="stage-latency" title="time this stage took">{_esc(_duration(stage.seconds))}</span>',
        f'<div class="stage-model{" fallback" if fallback else ""}" title="model">{_esc(stage.model or "—")}</div>',
    ]
    if stage.note:
        parts.append(f'<p class="stage-note">{_esc(stage.note)}</p>')
    if stage.stage == "rerank" and not stage.error:
        detail = f"{_count(len(stage.hits), 'candidate')} from {STAGE_NAMES.get(result.candidates_from, '?')} rescored"
        if stage.pairs_per_second is not None:
            detail += f" · {stage.pairs_per_second:,.1f} pairs/s"
        parts.append(f'<p class="stage-detail">{_esc(detail)}</p>')
    return '<header class="stage-head">' + "".join(parts) + "</header>"


def _error_html(key: str, error: str) -> str:
    if key == "rerank":
        fix = ("To fix it, put a reranker that is in the Hugging Face cache, or a local model folder, in the "
               f"reranker model field, or enter {LATE_INTERACTION_ID} for the offline fallback, then search "
               "again. The BM25, dense and hybrid columns are unaffected.")
    else:
        fix = "To fix it, check the model settings and build the index again."
    return ('<div class="stage-error" role="alert"><p class="error-title">This stage could not run.</p>'
            f'<p class="error-text">{_esc(error)}</p><p class="error-fix">{_esc(fix)}</p></div>')


def _card(hit: Hit, position: int, key: str, result: SearchResult, *, k: int, score_view: ScoreView,
          collapsed: bool, terms: frozenset[str], snippet_chars: int,
          judgments: Mapping[str, int] | None = None) -> str:
    head = [f'<span class="rank">#{position}</span>']
    if collapsed:
        head.append(f'<span class="orig-rank" title="rank of this passage before keeping one per document">'
                    f'passage #{hit.rank}</span>')
    head.append(_score_html(key, hit, score_view))
    head.append(language_badge(hit.language))
    if hit.truncated:
        head.append('<span class="truncated-mark" title="the passage was longer than the reranker\'s input '
                    'and was cut before scoring">truncated</span>')
    title_class = "hit-title" if hit.title else "hit-title is-doc-id"
    ids = f'<span class="passage-id" title="passage id">{_esc(hit.passage_id)}</span>'
    if hit.title:
        ids = f'<span class="doc-id" title="document id">{_esc(hit.doc_id)}</span> ' + ids
    body = [
        f'<div class="hit-head">{"".join(head)}</div>',
        f'<div class="{title_class}" dir="auto">{_esc(hit.title or hit.doc_id)}</div>',
        f'<div class="hit-ids">{ids}</div>',
    ]
    if key == "rerank":
        body.append(_moves_html(hit, result, k))
        body.append(_provenance_html(hit, result, k))
    else:
        body.append(_elsewhere_html(hit, key, result, k))
    body.append(f'<p class="snippet" dir="auto">{snippet(hit.text, hit.language.group, terms, snippet_chars)}</p>')
    if judgments is not None:
        body.append(_judge_html(judgments.get(hit.passage_id)))
    return (f'<li class="hit" data-stage="{key}" data-rank="{position}" data-hit-rank="{int(hit.rank)}">'
            + "".join(body) + "</li>")


GRADE_TITLES = {0: "not relevant", 1: "relevant", 2: "highly relevant"}
# Wired to each result column's gr.HTML: a click on a grade button sends the card's stage, its rank in
# that stage and the grade (all integers or closed sets, never corpus text) to the judging callback.
JUDGE_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button.judge-btn');
  const card = button && button.closest('li.hit');
  if (!card) return;
  trigger('click', {stage: card.dataset.stage, hit_rank: Number(card.dataset.hitRank),
                    grade: Number(button.dataset.grade)});
});
"""


def _judge_html(grade: int | None) -> str:
    buttons = "".join(
        f'<button type="button" class="judge-btn{" selected" if grade == value else ""}" data-grade="{value}" '
        f'title="{title}" aria-pressed="{"true" if grade == value else "false"}">{value}</button>'
        for value, title in GRADE_TITLES.items())
    state = f'judged {grade}' if grade is not None else "judge:"
    return (f'<div class="judge" role="group" aria-label="relevance judgment" '
            f'data-judged="{"" if grade is None else int(grade)}"><span class="judge-label">{state}</span>'
            f'{buttons}</div>')


def _score_html(key: str, hit: Hit, score_view: ScoreView) -> str:
    if key == "rerank":
        if hit.sigmoid is None:
            note = ('<span class="score-note" title="the late-interaction fallback gives a similarity, not a '
                    'logit">sigmoid n/a</span>' if score_view == "sigmoid" else "")
            return f'<span class="score" title="raw score {hit.score:.6g}">score {hit.score:.3f}</span>{note}'
        tooltip = f"raw logit {hit.score:.6g} · sigmoid {hit.sigmoid:.6g}"
        shown = f"p {hit.sigmoid:.3f}" if score_view == "sigmoid" else f"logit {hit.score:.2f}"
        return f'<span class="score" title="{_esc(tooltip)}">{_esc(shown)}</span>'
    label, digits = {"bm25": ("BM25", 2), "dense": ("cos", 3), "hybrid": ("RRF", 4)}.get(key, ("score", 3))
    return f'<span class="score" title="{hit.score:.6g}">{label} {hit.score:.{digits}f}</span>'


def language_badge(language: Language) -> str:
    """Return a badge "hi 0.99" (or "unknown") coloured by script family, the full name in its tooltip."""
    family = language_family(language.code)
    if not language.is_known:
        return (f'<span class="lang-badge lang-{family}" data-lang-family="{family}" '
                'title="language unknown">unknown</span>')
    name = LANGUAGE_NAMES.get(language.code, language.code)
    tooltip = f"{name}, detected with confidence {language.probability:.3f}"
    return (f'<span class="lang-badge lang-{family}" data-lang-family="{family}" title="{_esc(tooltip)}">'
            f'{_esc(language.code)} {language.probability:.2f}</span>')


def _moves_html(hit: Hit, result: SearchResult, k: int) -> str:
    # The stage that fed the reranker first and prominent, then the other first stages that ran.
    order = [result.candidates_from, *(s for s in FIRST_STAGES if s != result.candidates_from)]
    moves = []
    for first_stage in order:
        if first_stage not in result.stages or result.stages[first_stage].error:
            continue
        move = movement(hit, first_stage, k)
        primary = " primary" if first_stage == result.candidates_from else ""
        moves.append(f'<span class="move {move.kind}{primary}" data-against="{first_stage}">{_esc(move.text)}</span>')
    return '<div class="moves">' + "".join(moves) + "</div>"


def _provenance_html(hit: Hit, result: SearchResult, k: int) -> str:
    names = found_by(hit, k)
    if names:
        chips = "".join(f'<span class="found" data-by="{_retriever_key(name)}">{_esc(name)}</span>' for name in names)
    else:
        chips = f'<span class="found none">neither in top-{k}</span>'
    parts = [f'<span class="found-label">found by</span>{chips}']
    if is_lifted(hit, result.candidates_from, k):
        before = hit.ranks.get(result.candidates_from)
        parts.append(f'<span class="lifted" title="below the top-{k} shown for '
                     f'{_esc(STAGE_NAMES[result.candidates_from])}, now in the reranked top {LIFTED_TOP}">'
                     f'lifted from {_esc(STAGE_NAMES[result.candidates_from])} #{before}</span>')
    return '<div class="provenance">' + "".join(parts) + "</div>"


def _retriever_key(name: str) -> str:
    return "bm25" if name == STAGE_NAMES["bm25"] else "dense"


def _elsewhere_html(hit: Hit, key: str, result: SearchResult, k: int) -> str:
    chips = []
    for other in STAGES:
        if other == key or other not in result.stages or result.stages[other].error:
            continue
        rank = hit.ranks.get(other)
        name = STAGE_NAMES[other]
        if rank is None:
            chips.append(f'<span class="xrank absent" data-against="{other}" title="not returned by {name}">'
                         f'{name} —</span>')
        else:
            deep = " deep" if rank > k else ""
            chips.append(f'<span class="xrank{deep}" data-against="{other}">{name} #{rank}</span>')
    return '<div class="elsewhere">' + "".join(chips) + "</div>" if chips else ""


# -- summaries ------------------------------------------------------------------------------------


def render_summary(result: SearchResult, k: int) -> str:
    """Return the line under the columns: the query's language, shared@k and Jaccard@k for each pair of
    stages that ran, each stage's latency and the reranker's pairs per second."""
    ran = [name for name in STAGES if name in result.stages and not result.stages[name].error]
    items = [f'<span class="summary-item query-language">query language {language_badge(result.query_language)}</span>']
    for a, b in STAGE_PAIRS:
        if a in ran and b in ran:
            shared, jaccard = overlap(result.stages[a], result.stages[b], k)
            items.append(
                f'<span class="summary-item overlap" data-pair="{a}-{b}" title="passages in both top-{k} lists; '
                f'Jaccard = shared / passages in either">{STAGE_TITLES[a]} ∩ {STAGE_TITLES[b]}: '
                f'{shared} shared@{k}, Jaccard@{k} {jaccard:.2f}</span>')
    for name in STAGES:
        if name in result.stages:
            stage = result.stages[name]
            timing = "failed" if stage.error else _duration(stage.seconds)
            items.append(f'<span class="summary-item latency" data-stage="{name}">'
                         f'{STAGE_TITLES[name]} {_esc(timing)}</span>')
    rerank = result.stages.get("rerank")
    if rerank is not None and rerank.pairs_per_second is not None:
        items.append(f'<span class="summary-item throughput">reranker {rerank.pairs_per_second:,.1f} pairs/s</span>')
    return f'<div class="search-summary" data-k="{int(k)}">' + "".join(items) + "</div>"


def render_build_summary(report: BuildReport, *, max_problems: int = MAX_PROBLEMS_SHOWN) -> str:
    """Return what building the index did: counts, the reused-index notice, the dense model and device
    (with the fallback reason), time per step, and skipped files and rows (at most `max_problems`)."""
    counts = (f"{_count(report.documents, 'document')} from {_count(report.files_read, 'file')} → "
              f"{_count(report.passages, 'passage')} in {_count(len(report.languages), 'language')}")
    parts = [f'<p class="build-counts">{_esc(counts)}</p>']
    if report.reused:
        parts.append('<p class="reused-notice">Reused the saved index for this corpus and settings; '
                     'nothing was embedded again.</p>')
    parts.append(f'<p class="build-model">Dense model: <span class="model-label">{_esc(report.dense_model)}</span>'
                 f' on <span class="device">{_esc(report.device)}</span></p>')
    if report.dense_fallback_reason:
        parts.append(f'<p class="build-fallback">Fallback: {_esc(report.dense_fallback_reason)}</p>')
    if report.timings_s:
        steps = " · ".join(f"{BUILD_STEP_NAMES.get(step, step)} {_duration(seconds)}"
                           for step, seconds in report.timings_s.items())
        parts.append(f'<p class="build-timings">Time: {_esc(steps)}</p>')
    if report.problems:
        parts.append(_problems_html(report.problems, max_problems))
    return '<div class="build-summary">' + "".join(parts) + "</div>"


def render_reranker(loaded: Loaded[Reranker]) -> str:
    """Return which reranker this index uses, and why when it is a fallback."""
    label = loaded.model.label
    kind = "cross-encoder" if loaded.model.is_cross_encoder else "not a cross-encoder"
    parts = [f'<p class="build-reranker">Reranker: <span class="model-label">{_esc(label)}</span>'
             f' <span class="reranker-kind">({_esc(kind)})</span></p>']
    if loaded.fallback_reason:
        parts.append(f'<p class="build-fallback reranker-fallback">Fallback: {_esc(loaded.fallback_reason)}</p>')
    return '<div class="build-summary">' + "".join(parts) + "</div>"


def render_build_progress(progress: dict[str, tuple[int, int]], seconds: float) -> str:
    """Return one progress bar per build step (reading, language detection, BM25, embeddings) from
    `progress` = {step: (done, total)}; steps not started yet show as waiting."""
    rows = []
    for step, name in BUILD_STEP_NAMES.items():
        done, total = progress.get(step, (0, 0))
        fraction = min(1.0, done / total) if total else 0.0
        state = "done" if total and done >= total else ("running" if step in progress else "waiting")
        detail = f"{done:,}/{total:,}" if total > 1 else {"done": "done", "running": "…", "waiting": ""}[state]
        rows.append(f'<div class="build-step" data-step="{step}" data-state="{state}">'
                    f'<span class="build-step-name">{_esc(name)}</span>'
                    f'<progress max="1000" value="{round(fraction * 1000)}"></progress>'
                    f'<span class="build-step-detail">{_esc(detail)}</span></div>')
    return (f'<div class="build-progress" role="status" aria-live="polite">{"".join(rows)}'
            f'<p class="build-elapsed">{_esc(_duration(seconds))} elapsed</p></div>')


def _problems_html(problems: Sequence[Problem], max_problems: int) -> str:
    skipped = [problem for problem in problems if problem.skipped]
    warnings = [problem for problem in problems if not problem.skipped]
    heading = ", ".join(text for text in (
        _count(len(skipped), "skipped", plural="skipped") if skipped else "",
        _count(len(warnings), "warning") if warnings else "") if text)
    shown = (skipped + warnings)[:max(0, max_problems)]
    items = []
    for problem in shown:
        kind = "skipped" if problem.skipped else "warning"
        where = problem.source if problem.line is None else f"{problem.source}, line {problem.line}"
        items.append(f'<li class="problem {kind}"><span class="problem-kind">{kind}</span> '
                     f'<span class="problem-where">{_esc(where)}</span>: '
                     f'<span class="problem-message">{_esc(problem.message)}</span></li>')
    hidden = len(problems) - len(shown)
    if hidden > 0:
        items.append(f'<li class="more">… and {hidden:,} more</li>')
    return (f'<details class="problems" open><summary>{_esc(heading)}</summary>'
            f'<ul>{"".join(items)}</ul></details>')


def languages_frame(report: BuildReport) -> pd.DataFrame:
    """Return passages per language (columns language, name, passages), most common first, for a `gr.BarPlot`."""
    rows = [(code, LANGUAGE_NAMES.get(code, code), count) for code, count in report.languages.items()]
    rows.sort(key=lambda row: -row[2])
    return pd.DataFrame(rows, columns=["language", "name", "passages"]).astype({"passages": "int64"})


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _duration(seconds: float) -> str:
    milliseconds = seconds * 1000
    if milliseconds < 10:
        return f"{milliseconds:.1f} ms"
    if milliseconds < 10_000:
        return f"{milliseconds:,.0f} ms"
    return f"{seconds:,.1f} s"


def _count(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


# -- stylesheet -----------------------------------------------------------------------------------

CSS = """
.stage-column .judge { display: flex; gap: 0.3rem; align-items: center; margin-top: 0.35rem; font-size: 0.8rem; }
.stage-column .judge-label { color: var(--body-text-color-subdued, #6b7280); margin-right: 0.2rem; }
.stage-column .judge-btn {
  min-width: 1.7rem; padding: 0.05rem 0.4rem; border: 1px solid var(--border-color-primary, #d1d5db);
  border-radius: 0.35rem; background: transparent; color: inherit; cursor: pointer;
}
.stage-column .judge-btn.selected { background: var(--color-accent, #f97316); color: #fff; border-color: transparent; }
.build-progress { display: grid; gap: 0.35rem; font-size: 0.875rem; }
.build-step { display: grid; grid-template-columns: 10rem 1fr 7rem; align-items: center; gap: 0.5rem; }
.build-step progress { width: 100%; height: 0.6rem; }
.build-step[data-state="waiting"] { color: var(--body-text-color-subdued, #6b7280); }
.build-step-detail, .build-elapsed {
  font-variant-numeric: tabular-nums; color: var(--body-text-color-subdued, #6b7280);
}
.stage-column {
  --rr-up: #15803d; --rr-down: #b91c1c; --rr-new: #1d4ed8; --rr-mark: rgba(250, 204, 21, 0.45);
  --rr-card: var(--block-background-fill, #fff); --rr-border: var(--border-color-primary, #e5e7eb);
  --rr-muted: var(--body-text-color-subdued, #6b7280);
  color: var(--body-text-color); font-size: 0.875rem; line-height: 1.45; min-width: 0;
}
.dark .stage-column { --rr-up: #4ade80; --rr-down: #f87171; --rr-new: #93c5fd; --rr-mark: rgba(250, 204, 21, 0.35); }
.stage-column .stage-head { border-bottom: 2px solid var(--rr-border); margin-bottom: 0.5rem; padding-bottom: 0.35rem; }
.stage-column .stage-title { display: inline; font-size: 1.05rem; font-weight: 700; margin: 0 0.5rem 0 0; }
.stage-column .stage-latency { color: var(--rr-muted); font-variant-numeric: tabular-nums; font-size: 0.8rem; }
.stage-column .stage-model { color: var(--rr-muted); font-size: 0.8rem; overflow-wrap: anywhere; }
.stage-column .stage-model.fallback { color: #b45309; font-weight: 600; }
.dark .stage-column .stage-model.fallback { color: #fbbf24; }
.stage-column .stage-note, .stage-column .stage-detail {
  font-size: 0.78rem; margin: 0.25rem 0 0; overflow-wrap: anywhere;
}
.stage-column .stage-note { border-left: 3px solid #f59e0b; padding-left: 0.4rem; }
.stage-column .stage-detail { color: var(--rr-muted); }
.stage-column ol.hits { list-style: none; margin: 0; padding: 0; }
.stage-column .hit {
  background: var(--rr-card); border: 1px solid var(--rr-border); border-radius: 8px;
  margin: 0 0 0.5rem; padding: 0.5rem 0.6rem; overflow-wrap: anywhere;
}
.stage-column .hit-head { align-items: baseline; display: flex; flex-wrap: wrap; gap: 0.35rem; }
.stage-column .rank { font-weight: 700; font-variant-numeric: tabular-nums; }
.stage-column .orig-rank, .stage-column .hit-ids { color: var(--rr-muted); font-size: 0.75rem; }
.stage-column .score { font-family: var(--font-mono, monospace); font-size: 0.78rem; }
.stage-column .score-note { color: var(--rr-muted); font-size: 0.72rem; font-style: italic; }
.stage-column .lang-badge, .search-summary .lang-badge {
  border-radius: 999px; font-size: 0.72rem; font-weight: 600; padding: 0 0.45rem; white-space: nowrap;
  background: rgba(107, 114, 128, 0.18); color: var(--body-text-color);
}
.lang-badge.lang-latin { background: rgba(59, 130, 246, 0.18); }
.lang-badge.lang-cyrillic { background: rgba(139, 92, 246, 0.2); }
.lang-badge.lang-cjk { background: rgba(239, 68, 68, 0.18); }
.lang-badge.lang-indic { background: rgba(245, 158, 11, 0.25); }
.lang-badge.lang-arabic { background: rgba(16, 185, 129, 0.2); }
.lang-badge.lang-other { background: rgba(236, 72, 153, 0.18); }
.lang-badge.lang-unknown { background: transparent; border: 1px dashed var(--rr-muted); }
.stage-column .truncated-mark {
  border: 1px solid var(--rr-muted); border-radius: 4px; color: var(--rr-muted); font-size: 0.7rem; padding: 0 0.3rem;
}
.stage-column .hit-title { font-weight: 600; margin-top: 0.2rem; }
.stage-column .hit-title.is-doc-id { font-family: var(--font-mono, monospace); font-weight: 500; }
.stage-column .hit-ids span + span::before { content: "· "; }
.stage-column .snippet { margin: 0.3rem 0 0; }
.stage-column mark { background: var(--rr-mark); border-radius: 2px; color: inherit; padding: 0 1px; }
.stage-column .moves, .stage-column .provenance, .stage-column .elsewhere {
  display: flex; flex-wrap: wrap; gap: 0.25rem 0.5rem; font-size: 0.75rem; margin-top: 0.2rem;
}
.stage-column .move { font-variant-numeric: tabular-nums; white-space: nowrap; }
.stage-column .move.primary { font-size: 0.82rem; font-weight: 700; }
.stage-column .move.up { color: var(--rr-up); }
.stage-column .move.down { color: var(--rr-down); }
.stage-column .move.same { color: var(--rr-muted); }
.stage-column .move.new { color: var(--rr-new); }
.stage-column .found-label { color: var(--rr-muted); }
.stage-column .found { border: 1px solid var(--rr-border); border-radius: 4px; padding: 0 0.3rem; }
.stage-column .found.none { border-style: dashed; color: var(--rr-muted); }
.stage-column .lifted {
  background: var(--rr-new); border-radius: 4px; color: #fff; font-weight: 600; padding: 0 0.35rem;
}
.dark .stage-column .lifted { color: #0b1220; }
.stage-column .xrank { color: var(--rr-muted); }
.stage-column .xrank.deep, .stage-column .xrank.absent { opacity: 0.7; }
.stage-column .stage-error {
  border: 1px solid var(--rr-down); border-radius: 8px; padding: 0.5rem 0.6rem; overflow-wrap: anywhere;
}
.stage-column .stage-error .error-title { color: var(--rr-down); font-weight: 700; margin: 0; }
.stage-column .stage-error p { margin: 0.25rem 0 0; }
.stage-column .stage-empty { color: var(--rr-muted); font-style: italic; }
.stage-column .stage-pending {
  align-items: center; color: var(--rr-muted); display: flex; gap: 0.5rem; padding: 1rem 0;
}
.stage-column .spinner {
  animation: rr-spin 0.8s linear infinite; border: 2px solid var(--rr-border); border-radius: 50%;
  border-top-color: var(--color-accent, #f97316); display: inline-block; flex: none; height: 1.1rem; width: 1.1rem;
}
@keyframes rr-spin { to { transform: rotate(360deg); } }
@media (prefers-reduced-motion: reduce) { .stage-column .spinner { animation-duration: 3s; } }
.search-summary {
  color: var(--body-text-color); display: flex; flex-wrap: wrap; font-size: 0.82rem; gap: 0.2rem 0.9rem;
  font-variant-numeric: tabular-nums;
}
.search-summary .latency, .search-summary .throughput { color: var(--body-text-color-subdued, #6b7280); }
.build-summary { color: var(--body-text-color); font-size: 0.875rem; }
.build-summary p { margin: 0.2rem 0; overflow-wrap: anywhere; }
.build-summary .reused-notice { border-left: 3px solid var(--color-accent, #f97316); padding-left: 0.4rem; }
.build-summary .build-fallback { color: #b45309; }
.dark .build-summary .build-fallback { color: #fbbf24; }
.build-summary .problems ul { margin: 0.25rem 0; max-height: 16rem; overflow-y: auto; padding-left: 1.2rem; }
.build-summary .problem { overflow-wrap: anywhere; }
.build-summary .problem-kind { border-radius: 4px; font-size: 0.72rem; font-weight: 600; padding: 0 0.3rem; }
.build-summary .problem.skipped .problem-kind { background: rgba(239, 68, 68, 0.18); }
.build-summary .problem.warning .problem-kind { background: rgba(245, 158, 11, 0.25); }
.build-summary .problem-where { font-family: var(--font-mono, monospace); font-size: 0.8rem; }
/* The app's gr.Row(elem_classes="rr-columns") of four gr.HTML columns: equal widths, no overflow. */
.rr-columns > * { flex: 1 1 0 !important; min-width: 0 !important; }
"""
