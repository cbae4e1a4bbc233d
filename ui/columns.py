"""Result columns: one `<section>` per stage with its hits as cards, and the summary line under them.

What the cards say about movement, provenance and overlap comes from `search.compare`; this module
only draws it. Every element is built with `ui.html`, so corpus text is escaped by construction.
Classes and `data-` attributes come only from closed sets (stage names, movement kinds, language
families) and integers, so a browser test can select on them:

    section.stage-column[data-stage=bm25|…|rerank|rerank-b|…][data-state=done|error|pending|empty]
    div.rerank-progress[data-done][data-total] (a pending rerank)   p.rerank-estimate[data-state]
    li.hit[data-stage][data-rank=<shown position>][data-hit-rank=<rank in the stage>][data-passage=<id>]
    span.lang-badge[data-lang-family]   span.score   span.truncated-mark
    details.hit-text > summary > span.snippet mark (a few lines) + div.full-text mark + div.hit-ids (opened)
    div.hit-actions > div.judge + button.explain-btn
    div.stage-model.fallback[title=<why>]   details.stage-note (the fallback's reason, closed)
    span.move.up|down|same|new[data-against=bm25|dense|hybrid] (.primary: the stage that fed the reranker)
    span.move.vs-a.up|down|same[data-against=rerank] (cards of a further reranker: "↑3 vs A")
    div.moves span.found[data-by=bm25|dense]   span.lifted   span.xrank[data-against]   div.stage-error
    div.search-summary span.latency[data-stage]   span.stage-waited (the time waited, written by COLUMN_JS)
    button.explain-btn (the cards of every reranked column; not with controls=False)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, NamedTuple

from search import compare
from search.answerability import ScoreLine
from search.answerability import score_line as line_of
from search.config import LineSetting
from search.language import LANGUAGE_NAMES
from search.models import FALLBACK_LABEL, LATE_INTERACTION_ID, LATE_INTERACTION_LABEL
from search.stages import RERANK, is_rerank, known, ordered, stage
from search.types import Hit, Language, SearchResult, StageResult

from .highlight import Marks
from .html import Markup, classes, element, join
from .labels import about, count, duration, short_model, stage_short, stage_title

ScoreView = Literal["raw", "sigmoid"]

GRADE_TITLES = {0: "not relevant", 1: "relevant", 2: "highly relevant"}
LINE_HELP = ("Passages above the line score at or above it; none above it suggests the corpus holds no good "
             "answer. A model's default line is measured on XQuAD and the sample corpus; late interaction's "
             "scores are similarities, not calibrated relevance, so its line is a guide. Set another under "
             "'Score line'.")
CARD_SNIPPET_CHARS = 180  # a card's snippet: about three lines of a column, around the best query match
# Wired to each result column's gr.HTML: a click on a grade button sends the card's rank in its stage and
# the grade (integers, never corpus text); the column that was clicked tells the callback the stage. The column
# also notes the time the user waited for it.
COLUMN_JS = """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button.judge-btn');
  const card = button && button.closest('li.hit');
  if (!card) return;
  trigger('click', {hit_rank: Number(card.dataset.hitRank), grade: Number(button.dataset.grade)});
});
""" + """
element.addEventListener('click', (event) => {
  const button = event.target.closest('button.explain-btn');
  const card = button && button.closest('li.hit');
  if (!card) return;
  trigger('click', {explain_rank: Number(card.dataset.hitRank), explain_stage: card.dataset.stage});
  const panel = document.getElementById('explain-panel');
  if (panel) panel.scrollIntoView({block: 'nearest', behavior: 'smooth'});
});
""" + """
// The time the user waited for this column: from the Search (window.rrSearchStarted, set by the page's
// ui.regions.search.PAGE_JS) to this column's results on screen, once per search, kept across redraws.
const waited = new Map();
const note = () => {
  const section = element.querySelector('section.stage-column[data-state="done"]');
  const started = window.rrSearchStarted;
  if (!section || !started) return;
  if (!waited.has(started)) waited.set(started, (performance.now() - started) / 1000);
  const seconds = waited.get(started);
  if (section.dataset.waited === seconds.toFixed(3)) return;
  section.dataset.waited = seconds.toFixed(3);
  const slot = section.querySelector('.stage-waited');
  const shown = seconds < 1 ? Math.round(seconds * 1000) + ' ms' : seconds.toFixed(1) + ' s';
  if (slot) slot.textContent = 'waited ' + shown;
};
new MutationObserver(note).observe(element, {childList: true, subtree: true});
"""  # Explain on a reranked card (any reranker): sends its rank and its stage (the Explain region)

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
# A fallback's label, maybe followed by the form that ran it (" · onnx", " · int8 (quantized, ...)").
FALLBACK_LABELS = (FALLBACK_LABEL, LATE_INTERACTION_LABEL)


def language_family(code: str) -> str:
    """Return the script family used to colour a language badge: latin, cyrillic, cjk, indic, arabic,
    other, or unknown.

    >>> language_family("zh-cn"), language_family("hi"), language_family("unknown")
    ('cjk', 'indic', 'unknown')
    """
    if code == "unknown":
        return "unknown"
    return LANGUAGE_FAMILIES.get(code, "other")


def language_badge(language: Language) -> Markup:
    """Return a badge "hi 0.99" (or "unknown") coloured by script family, the full name in its tooltip."""
    family = language_family(language.code)
    badge_class = f"lang-badge lang-{family}"
    if not language.is_known:
        return element("span", "unknown", class_=badge_class, data_lang_family=family, title="language unknown")
    name = LANGUAGE_NAMES.get(language.code, language.code)
    return element("span", f"{language.code} {language.probability:.2f}", class_=badge_class,
                   data_lang_family=family, title=f"{name}, detected with confidence {language.probability:.3f}")


# -- columns ----------------------------------------------------------------------------------------


def render_column(stage: StageResult, result: SearchResult, *, k: int, score_view: ScoreView = "raw",
                  collapse_documents: bool = False, corpus_languages: Iterable[str] = (),
                  snippet_chars: int = CARD_SNIPPET_CHARS, judgments: Mapping[str, int] | None = None,
                  controls: bool = True, score_line: LineSetting = "default", marks: Marks | None = None) -> Markup:
    """Return the HTML of one result column: a header (title, model, latency) and the top-k hits as cards.

    `score_view` picks the rerank score shown (raw logit or its sigmoid). `collapse_documents` keeps the
    best passage of each document, then the first k of those, numbered 1..k with each passage's rank
    in the stage shown beside it. `corpus_languages` (the index's language groups) makes highlighting
    match BM25's query analysis. A stage with `error` set shows the error and how to fix it, no hits.
    A stage with a `note` (why a model fell back) keeps it one hover or click away, not in full: the
    build summary says it once. `judgments` (passage id -> grade for this query) turns on the 0/1/2
    judging buttons on every card. `controls=False` draws no button at all (no Explain, no judging), for a
    static page without the app behind it (`ui.bundle`). `score_line` draws a reranked column's "no good
    answer" line (`search.answerability`: "default", "none" or a score on the scale shown) between the
    cards that reach it and those that don't, or says that none does. Raises ValueError for k < 1 or an
    unknown score_view. `marks` is the query's drawing the column belongs to (`ui.highlight.Marks`): its
    passages, analysed once for highlighting, are shared with the query's other columns; without it, the
    column is its own drawing.
    """
    if k < 1:
        raise ValueError(f"k={k} must be at least 1")
    if score_view not in ("raw", "sigmoid"):
        raise ValueError(f"score_view={score_view!r} is not one of 'raw', 'sigmoid'")
    key = _stage_key(stage.stage)
    hits = compare.best_per_document(stage.hits) if collapse_documents else stage.hits
    hits = hits[:k]
    line = line_of(stage, score_line, score_view=score_view, hits=hits)
    header = _stage_header(stage, result, line)
    if stage.error:
        return _column(key, "error", header, _error_html(key, stage.error))
    if not hits:
        return _column(key, "empty", header, element("p", "No passages returned.", class_="stage-empty"))
    languages = frozenset(corpus_languages)
    marks = Marks() if marks is None else marks
    cards = [
        _card(hit, position, key, result, k=k, score_view=score_view, collapsed=collapse_documents, marks=marks,
              terms=marks.terms(result, hit.language.group, languages), snippet_chars=snippet_chars,
              judgments=judgments if controls else None, explain=controls and is_rerank(key),
              reranked=compare.reranked_hit(hit, result, k, key) if is_rerank(key) else None)
        for position, hit in enumerate(hits, start=1)
    ]
    if line is None:
        return _column(key, "done", header, element("ol", join(cards), class_="hits"))
    if 0 < line.reached < len(cards):
        cards.insert(line.reached, _line_html(line))
    return _column(key, "done", header, _no_answer_html(line) if line.none_reach else None,
                   element("ol", join(cards), class_="hits"))


def _line_html(line: ScoreLine) -> Markup:
    # Between the last card that reaches the line and the first that doesn't (an <li> of the list).
    return element("li", element("span", line.describe(), class_="score-line-label"), class_="score-line",
                   role="separator", data_threshold=f"{line.threshold:g}", data_reached=line.reached)


def _no_answer_html(line: ScoreLine) -> Markup:
    return element("p", f"No passage reaches the line at {line.at()}: maybe there is no good answer to this query "
                        "in the corpus.", class_="no-answer", role="note", data_threshold=f"{line.threshold:g}")


class RerankProgress(NamedTuple):
    """How far a running rerank is: `done` of `total` pairs scored (pairs found in the score cache count
    as done at once) and the seconds left at the speed measured on this machine (None before any
    measurement)."""

    done: int
    total: int
    seconds_left: float | None


def render_pending(stage_name: str, model_label: str, detail: str, extra: Markup | None = None) -> Markup:
    """Return the column of `stage_name` as a placeholder with a spinner, shown while the stage (a
    reranker) runs; `extra` goes under the spinner line (the rerank's progress)."""
    header = element("header", element("h3", stage_title(stage_name), class_="stage-title"),
                     element("div", model_label, class_="stage-model"), class_="stage-head")
    body = element("div", element("span", class_="spinner", aria_hidden="true"), element("span", detail),
                   class_="stage-pending", role="status", aria_live="polite")
    return _column(_stage_key(stage_name), "pending", header, body, extra)


def render_rerank_pending(result: SearchResult, model_label: str, progress: RerankProgress | None = None,
                          stage: str = RERANK) -> Markup:
    """Return a reranked column's placeholder: "Reranking 20 candidates from hybrid with MODEL…", and with
    `progress` a bar and "12 of 20 pairs scored · about 3 s left on this machine". A further reranker's
    column (`stage` rerank-b, …) waits for the ones before it ("…after A")."""
    candidates = result.stages.get(result.candidates_from)
    number = min(result.rerank_depth, len(candidates.hits)) if candidates else result.rerank_depth
    detail = f"Reranking {number} candidates from {stage_short(result.candidates_from)} with {model_label}…"
    if stage != RERANK and progress is None:
        detail = f"{detail} (after A)"
    extra = _rerank_progress_html(progress) if progress is not None else None
    return render_pending(stage, model_label, detail, extra)


def render_rerank_estimate(seconds: float | None, depth: int) -> Markup:
    """Return the line beside the rerank-depth slider: how long reranking at `depth` should take here.

    `seconds` comes from `Index.expected_rerank_seconds` (None: nothing measured yet; 0.0: every pair is
    in the score cache). The state is a hook for tests: off, unmeasured, cached or measured.

    >>> str(render_rerank_estimate(4.2, 20))
    '<p class="rerank-estimate" data-state="measured">Expected rerank time: about 4 s on this machine at depth 20</p>'
    """
    if depth <= 0:
        text, state = "Reranking is off at depth 0.", "off"
    elif seconds is None:
        text, state = "Expected rerank time: measured after the first rerank.", "unmeasured"
    elif seconds <= 0:
        text, state = f"Expected rerank time: none at depth {depth}, every pair is scored already.", "cached"
    else:
        text, state = f"Expected rerank time: {about(seconds)} on this machine at depth {depth}", "measured"
    return element("p", text, class_="rerank-estimate", data_state=state)


def render_notice(stage_name: str, message: str) -> Markup:
    """Return the column of `stage_name` holding only a message, e.g. "Reranking is off (rerank depth 0)"."""
    header = element("header", element("h3", stage_title(stage_name), class_="stage-title"), class_="stage-head")
    return _column(_stage_key(stage_name), "empty", header, element("p", message, class_="stage-empty"))


def render_summary(result: SearchResult, k: int) -> Markup:
    """Return the line under the columns: the query's language, each stage's own time (the time the user
    waited for each column is in its header, measured in the browser) and each reranker's pairs per
    second. How far the stages agree is the matrix beside the rank-flow chart (`ui.rankflow`)."""
    items = [element("span", "query language ", language_badge(result.query_language),
                     class_="summary-item query-language")]
    for name in ordered(result.stages):
        ran = result.stages[name]
        timing = "failed" if ran.error else duration(ran.seconds)
        items.append(element("span", f"{stage_title(name)} {timing}", class_="summary-item latency",
                             data_stage=name, title="the stage's own time (the model's, without the page's)"))
    for name in ordered(result.stages):
        ran = result.stages[name]
        if is_rerank(name) and ran.pairs_per_second is not None:
            who = "reranker" if name == RERANK else f"reranker {stage(name).letter}"
            items.append(element("span", f"{who} {ran.pairs_per_second:,.1f} pairs/s",
                                 class_="summary-item throughput", data_stage=name))
    return element("div", join(items), class_="search-summary", data_k=int(k))


# -- parts of a column ------------------------------------------------------------------------------


def _rerank_progress_html(progress: RerankProgress) -> Markup:
    done, total = min(progress.done, progress.total), progress.total
    text = f"{done:,} of {count(total, 'pair')} scored"
    if done < total:
        left = (f"{about(progress.seconds_left)} left on this machine" if progress.seconds_left is not None
                else "measuring this machine's speed…")
        text = f"{text} · {left}"
    return element("div", element("progress", max=max(total, 1), value=done),
                   element("span", text, class_="rerank-progress-text"),
                   class_="rerank-progress", data_done=done, data_total=total)


def _column(key: str, state: str, *inner: Markup) -> Markup:
    return element("section", *inner, class_="stage-column", data_stage=key, data_state=state)


def _stage_key(name: str) -> str:
    return name if known(name) else "other"


def _stage_header(stage: StageResult, result: SearchResult, line: ScoreLine | None = None) -> Markup:
    fallback = (stage.model or "").startswith(FALLBACK_LABELS) or bool(stage.note)
    parts = [
        element("h3", stage_title(stage.stage), class_="stage-title"),
        element("span", duration(stage.seconds), class_="stage-latency", title="the stage's own time"),
        # Filled in the browser (COLUMN_JS): from Search to this column on screen.
        element("span", "", class_="stage-waited", title="the time from Search to this column on screen"),
        element("div", short_model(stage.model or "—"), class_=classes("stage-model", fallback and "fallback"),
                title="\n".join(text for text in (stage.model, stage.note) if text) or "model"),
    ]
    if stage.note:
        # The full reason is in the build summary; here it is one click (or the hover above) away.
        parts.append(element("details", element("summary", "fallback: why?"), element("p", stage.note),
                             class_="stage-note"))
    if is_rerank(stage.stage) and not stage.error:
        detail = f"{count(len(stage.hits), 'candidate')} from {stage_short(result.candidates_from)} rescored"
        if stage.pairs_per_second is not None:
            detail += f" · {stage.pairs_per_second:,.1f} pairs/s"
        parts.append(element("p", detail, class_="stage-detail"))
        if line is not None:
            uncalibrated = not line.calibrated and "uncalibrated"
            parts.append(element("p", line.describe(), class_=classes("stage-line", uncalibrated), title=LINE_HELP))
    return element("header", *parts, class_="stage-head")


def _error_html(key: str, error: str) -> Markup:
    if is_rerank(key) and key != RERANK:
        fix = ("To fix it, choose another reranker (or backend, or TEI URL) under 'Compare with' in the model "
               "panel and build the index again, or set it to none. The other columns are unaffected.")
    elif key == RERANK:
        fix = ("To fix it, put a reranker that is in the Hugging Face cache, or a local model folder, in the "
               f"reranker model field, or enter {LATE_INTERACTION_ID} for the offline fallback, then search "
               "again. The BM25, dense and hybrid columns are unaffected.")
    else:
        fix = "To fix it, check the model settings and build the index again."
    return element("div", element("p", "This stage could not run.", class_="error-title"),
                   element("p", error, class_="error-text"), element("p", fix, class_="error-fix"),
                   class_="stage-error", role="alert")


def _card(hit: Hit, position: int, key: str, result: SearchResult, *, k: int, score_view: ScoreView,
          collapsed: bool, marks: Marks, terms: frozenset[str], snippet_chars: int,
          judgments: Mapping[str, int] | None, explain: bool, reranked: compare.RerankedHit | None) -> Markup:
    # A compact card: rank, score, language, title, how it moved, and a few lines around the best match;
    # the whole passage opens in place (a <details>, so the bundle's page, which has no script, opens it too).
    head = [element("span", f"#{position}", class_="rank")]
    if collapsed:
        head.append(element("span", f"passage #{hit.rank}", class_="orig-rank",
                            title="rank of this passage before keeping one per document"))
    head.append(_score_html(key, hit, score_view))
    head.append(language_badge(hit.language))
    if hit.truncated:
        head.append(element("span", "truncated", class_="truncated-mark",
                            title="the passage was longer than the reranker's input and was cut before scoring"))
    ids = [element("span", hit.passage_id, class_="passage-id", title="passage id")]
    if hit.title:
        ids = [element("span", hit.doc_id, class_="doc-id", title="document id"), Markup(" "), *ids]
    lang = hit.language.code if hit.language.is_known else None
    body = [
        element("div", *head, class_="hit-head"),
        element("div", hit.title or hit.doc_id, class_=classes("hit-title", not hit.title and "is-doc-id"),
                dir="auto", lang=lang, title=f"{hit.doc_id} · {hit.passage_id}"),
    ]
    if reranked is not None:
        body.append(_moves_html(reranked, result, hit, k))
    else:
        body.append(_elsewhere_html(hit, key, result, k))
    shown = element("span", marks.snippet(hit.text, hit.language.group, terms, snippet_chars), class_="snippet",
                    dir="auto", lang=lang)
    whole = element("div", marks.highlight(hit.text, hit.language.group, terms), class_="full-text", dir="auto",
                    lang=lang)
    body.append(element("details", element("summary", shown, title="show the whole passage"), whole,
                        element("div", *ids, class_="hit-ids"), class_="hit-text"))
    actions = []
    if judgments is not None:
        actions.append(_judge_html(judgments.get(hit.passage_id)))
    if explain:
        actions.append(_explain_button())
    if actions:
        body.append(element("div", *actions, class_="hit-actions"))
    return element("li", *body, class_="hit", data_stage=key, data_rank=position, data_hit_rank=int(hit.rank),
                   data_passage=hit.passage_id)


def _explain_button() -> Markup:
    return element("button", "Explain", type="button", class_="explain-btn",
                   title="why did this passage score so? Shows the cost first, runs only when asked")


def _judge_html(grade: int | None) -> Markup:
    buttons = [element("button", str(value), type="button", class_=classes("judge-btn", grade == value and "selected"),
                       data_grade=value, title=title, aria_pressed="true" if grade == value else "false")
               for value, title in GRADE_TITLES.items()]
    state = f"judged {grade}" if grade is not None else "judge:"
    return element("div", element("span", state, class_="judge-label"), *buttons, class_="judge", role="group",
                   aria_label="relevance judgment", data_judged="" if grade is None else int(grade))


def _score_html(key: str, hit: Hit, score_view: ScoreView) -> Markup:
    if is_rerank(key):
        if hit.sigmoid is None:
            note = (element("span", "sigmoid n/a", class_="score-note",
                            title="the late-interaction fallback gives a similarity, not a logit")
                    if score_view == "sigmoid" else None)
            return join((element("span", f"score {hit.score:.3f}", class_="score", title=f"raw score {hit.score:.6g}"),
                         note))
        shown = f"p {hit.sigmoid:.3f}" if score_view == "sigmoid" else f"logit {hit.score:.2f}"
        return element("span", shown, class_="score", title=f"raw logit {hit.score:.6g} · sigmoid {hit.sigmoid:.6g}")
    label, digits = (stage(key).score_label, stage(key).digits) if known(key) else ("score", 3)
    return element("span", f"{label} {hit.score:.{digits}f}", class_="score", title=f"{hit.score:.6g}")


def _moves_html(reranked: compare.RerankedHit, result: SearchResult, hit: Hit, k: int) -> Markup:
    # One line: how the passage moved (the stage that fed the reranker first, drawn prominent; a further
    # reranker's move against A before it), which retrievers had it in their top k, and a lifted badge.
    moves = [element("span", move.text, class_=classes("move", move.kind,
                                                       move.against == result.candidates_from and "primary"),
                     data_against=move.against)
             for move in reranked.movements]
    if reranked.versus_a is not None:
        versus = reranked.versus_a
        moves.insert(0, element("span", versus.text, class_=classes("move", "vs-a", versus.kind),
                                data_against=versus.against,
                                title=f"rank {versus.after} here, {versus.before} in the first reranker (A)"))
    if reranked.found_by:
        found = [element("span", stage_short(name), class_="found", data_by=name,
                         title=f"in the {stage_short(name)} top-{k}") for name in reranked.found_by]
    else:
        found = [element("span", f"neither in top-{k}", class_="found none")]
    if reranked.lifted:
        source = stage_short(result.candidates_from)
        found.append(element("span", f"lifted from {source} #{hit.ranks.get(result.candidates_from)}",
                             class_="lifted", title=f"below the top-{k} shown for {source}, now in the reranked "
                                                    f"top {compare.LIFTED_TOP}"))
    return element("div", *moves, element("span", "found by", class_="found-label"), *found, class_="moves")


def _elsewhere_html(hit: Hit, key: str, result: SearchResult, k: int) -> Markup | None:
    chips = []
    for other in compare.stages_that_ran(result):
        if other == key:
            continue
        rank = hit.ranks.get(other)
        name = stage_short(other)
        if rank is None:
            chips.append(element("span", f"{name} —", class_="xrank absent", data_against=other,
                                 title=f"not returned by {name}"))
        else:
            chips.append(element("span", f"{name} #{rank}", class_=classes("xrank", rank > k and "deep"),
                                 data_against=other))
    return element("div", *chips, class_="elsewhere") if chips else None
