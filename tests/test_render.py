"""ui/ renderers (highlight, columns, build summary) and their stylesheet: hand-made results in, HTML out.
No models, no browser."""

from __future__ import annotations

import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest

from search import analysis
from search.models import FALLBACK_LABEL, LATE_INTERACTION_LABEL
from search.pipeline import BuildReport
from search.types import UNKNOWN_LANGUAGE, Language, Problem, StageResult
from tests.hand_made import make_hit, make_result, make_stage, ranked
from ui.build_summary import languages_frame, render_build_summary
from ui.columns import (
    language_badge,
    render_column,
    render_notice,
    render_rerank_pending,
    render_summary,
)
from ui.highlight import Marks, highlight, match_spans, snippet

HI = Language("hi", "hi", 0.987)
ZH = Language("zh-cn", "zh", 1.0)
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
QUOTES = '"quotes"'
PAYLOAD = f"{SCRIPT} {IMG} {QUOTES}"


class Elements(HTMLParser):
    """Every start tag of a fragment with its attributes."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def with_class(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for _, attrs in self.tags if name in (attrs.get("class") or "").split()]


def hit_cards(fragment: str) -> list[dict[str, str | None]]:
    return Elements(fragment).with_class("hit")


def assert_inert(fragment: str) -> None:
    """No tag, attribute or handler that the untrusted payloads could have introduced."""
    lowered = fragment.lower()
    assert "<script" not in lowered, fragment
    assert "<img" not in lowered, fragment
    for tag, attrs in Elements(fragment).tags:
        assert tag not in {"script", "img", "iframe", "style"}, (tag, fragment)
        assert not [name for name in attrs if name.startswith("on") or name == "style"], (tag, attrs)


# -- movement, provenance, overlap (computed in search.compare, see test_compare.py; drawn here) --------


def test_lifted_marker_in_reranked_column():
    bm25 = make_stage("bm25", [make_hit(f"d{i}#0", i, ranks={"rerank": 2 if i == 17 else None})
                               for i in range(1, 21)])
    rerank = make_stage("rerank", [
        make_hit("d1#0", 1, ranks={"bm25": 1}, score=5.0, sigmoid=0.99),
        make_hit("d17#0", 2, ranks={"bm25": 17}, score=4.0, sigmoid=0.98),
        make_hit("d2#0", 3, ranks={"bm25": 2}, score=3.0, sigmoid=0.95),
    ])
    result = make_result([bm25, rerank], candidates_from="bm25")
    column = render_column(rerank, result, k=10)
    cards = re.findall(r'<li class="hit".*?</li>', column)
    assert len(cards) == 3, column
    assert 'class="lifted"' in cards[1] and "lifted from BM25 #17" in cards[1], cards[1]
    assert 'class="move new primary" data-against="bm25"' in cards[1], cards[1]
    assert "new: not in BM25 top-10 (was #17)" in cards[1]
    assert "lifted" not in cards[0] and "lifted" not in cards[2], "only the hit from below the top-10 is lifted"
    assert 'class="move down primary" data-against="bm25">↓1 from BM25 #2' in cards[2], cards[2]


def test_summary_lists_latencies_throughput_and_query_language_and_leaves_agreement_to_the_matrix():
    bm25 = make_stage("bm25", ranked("a", "b", "c"), seconds=0.0031)
    dense = make_stage("dense", ranked("c", "a", "e"), seconds=0.025)
    hybrid = make_stage("hybrid", ranked("a", "c", "b"), seconds=0.0001)
    rerank = make_stage("rerank", ranked("c", "a", "b"), seconds=1.24, pairs_per_second=16.13)
    summary = render_summary(make_result([bm25, dense, hybrid, rerank], language=HI), 3)
    assert "shared@" not in summary and "Jaccard" not in summary, "how far stages agree is the chart's matrix"
    assert "BM25 3.1 ms" in summary and "Dense 25 ms" in summary and "Reranked 1,240 ms" in summary, summary
    assert "reranker 16.1 pairs/s" in summary
    assert ">hi 0.99</span>" in summary and "Hindi" in summary, "query language badge with its name"


def test_summary_skips_stages_that_did_not_run():
    bm25 = make_stage("bm25", ranked("a"))
    dense = make_stage("dense", ranked("a"))
    failed = make_stage("rerank", [], error="no model")
    summary = render_summary(make_result([bm25, dense, failed]), 10)
    assert "Reranked failed" in summary and "pairs/s" not in summary


# -- highlighting and snippets ---------------------------------------------------------------------


def test_highlight_latin_stemmed():
    terms = set(analysis.terms("running", "en"))
    assert highlight("He runs; they run. Running!", "en", terms) == (
        "He <mark>runs</mark>; they <mark>run</mark>. <mark>Running</mark>!")


def test_highlight_devanagari_whole_word_with_vowel_signs():
    terms = set(analysis.terms("पानी", "hi"))
    assert highlight("हमें पानी चाहिए", "hi", terms) == "हमें <mark>पानी</mark> चाहिए", "ी must stay inside the mark"


def test_highlight_chinese_bigram_is_one_mark():
    terms = set(analysis.terms("长城", "zh"))
    assert highlight("我爱长城和故宫", "zh", terms) == "我爱<mark>长城</mark>和故宫"
    assert match_spans("长江很长", "zh", terms) == [], "a lone 长 of a two-character query is not a match to show"
    assert highlight("长江很长", "zh", set(analysis.terms("长", "zh"))) == "<mark>长</mark>江很<mark>长</mark>", (
        "a one-character query marks the character")


def test_highlight_escapes_around_and_inside_marks():
    terms = set(analysis.terms("running", "en"))
    assert highlight("<b>running</b> & runs", "en", terms) == (
        "&lt;b&gt;<mark>running</mark>&lt;/b&gt; &amp; <mark>runs</mark>")
    assert highlight('x="run"', "en", {"run"}) == "x=&#34;<mark>run</mark>&#34;"
    assert highlight(SCRIPT, "en", {"script", "alert"}) == (
        "&lt;<mark>script</mark>&gt;<mark>alert</mark>(1)&lt;/<mark>script</mark>&gt;")


def test_snippet_windows_long_text_at_word_boundaries():
    words = [f"w{i}" for i in range(300)]
    words[200] = "target"
    text = " ".join(words)
    shown = snippet(text, "en", {"target"}, max_chars=80)
    assert shown.startswith("…") and shown.endswith("…"), shown
    assert "<mark>target</mark>" in shown
    plain = shown.replace("<mark>", "").replace("</mark>", "").strip("…")
    assert len(plain) <= 80, plain
    assert f" {plain} " in f" {text} ", "cut at whitespace: the window is a run of whole words"
    assert snippet("short <text>", "en", set()) == "short &lt;text&gt;", "short passages come whole"
    assert snippet(text, "en", set(), max_chars=19) == "w0 w1 w2 w3 w4 w5…", "no match: the beginning"


def test_snippet_in_text_without_spaces():
    text = "前面的文字" * 40 + "我爱长城和故宫" + "后面的文字" * 40
    shown = snippet(text, "zh", set(analysis.terms("长城", "zh")), max_chars=40)
    assert shown.startswith("…") and shown.endswith("…")
    assert "<mark>长城</mark>" in shown
    assert len(shown.replace("<mark>", "").replace("</mark>", "")) <= 42, shown


def _draw_a_querys_columns(marker: str, query: str, marks: Marks) -> int:
    # bm25, dense and hybrid show one passage; returns only how long the drawing is, so no reference to the
    # passage's text stays with the caller.
    hit = make_hit("tea#0", 1, text=f"Green tea {marker} grows on the steep hills of Yunnan.")
    result = make_result([make_stage(name, [hit]) for name in ("bm25", "dense", "hybrid")], query=query)
    return sum(len(render_column(result.stages[name], result, k=10, marks=marks)) for name in result.stages)


def _stored(held: object) -> list[object]:
    # What a list, tuple, set or dict (keys and values) stores, read through the built-in types' own methods: a
    # subclass's may do more (transformers' lazy mappings import models), and type() rather than isinstance(),
    # since some objects' __class__ is a property that warns (torch's deprecated aliases).
    kind = type(held)
    if issubclass(kind, dict):
        return [*dict.keys(held), *dict.values(held)]
    for base in (list, tuple, set, frozenset):
        if issubclass(kind, base):
            return list(base.__iter__(held))
    return []


def test_a_querys_columns_analyse_each_passage_once_and_nothing_keeps_its_text_process_wide(monkeypatch):
    import gc

    from ui.regions.session import LatestSearch

    marker = "zqxjk"
    tokenize = analysis.tokenize
    passage_analyses = [0]

    def counted(text, *args, **kwargs):
        passage_analyses[0] += marker in text
        return tokenize(text, *args, **kwargs)

    monkeypatch.setattr(analysis, "tokenize", counted)
    first, second = LatestSearch(), LatestSearch()  # two sessions
    assert first.marks is not second.marks, "each session draws with its own"
    assert _draw_a_querys_columns(marker, "green tea", first.marks) > 0
    assert passage_analyses[0] == 1, "three columns of one query analyse the passage once"
    assert first.marks.analysed == 1 and second.marks.analysed == 0, "the other session holds nothing of it"
    _draw_a_querys_columns(marker, "green tea", second.marks)
    assert passage_analyses[0] == 2, "the other session analyses it for its own drawing"
    before = first.marks
    first.begin(make_result([], query="another query"))
    assert first.marks is not before and first.marks.analysed == 0, "a new search begins a new drawing"
    assert _draw_a_querys_columns(marker, "steep hills", Marks()) > 0 and passage_analyses[0] == 3

    del first, second, before
    gc.collect()
    text = f"Green tea {marker} grows on the steep hills of Yunnan."
    holders = [type(held).__name__ for held in gc.get_objects()
               if any(type(item) is str and item == text for item in _stored(held))]
    assert holders == [], f"something still holds the passage's text after its sessions went: {holders}"


# -- columns ---------------------------------------------------------------------------------------


def first_stages() -> list[StageResult]:
    return [make_stage("bm25", ranked("a#0", "b#0", "c#0")), make_stage("dense", ranked("b#0", "a#0", "d#0")),
            make_stage("hybrid", ranked("b#0", "a#0", "c#0"))]


def test_column_header_cards_and_data_attributes():
    hits = [make_hit("a#0", 1, text="The runner runs far.", title="Running", score=12.3456,
                     ranks={"dense": 2, "hybrid": None}),
            make_hit("b#3", 2, text="हमें पानी चाहिए", language=HI, ranks={"dense": 30, "hybrid": 1}),
            make_hit("c#0", 3, language=UNKNOWN_LANGUAGE)]
    bm25 = make_stage("bm25", hits, seconds=0.0042, model="BM25 (rank-bm25, language-aware analysis)")
    result = make_result([bm25, *first_stages()[1:]], query="running")
    column = render_column(bm25, result, k=10)
    section = Elements(column).tags[0]
    assert section == ("section", {"class": "stage-column", "data-stage": "bm25", "data-state": "done"})
    assert '<h3 class="stage-title">BM25</h3>' in column and "4.2 ms" in column
    assert "BM25 (rank-bm25, language-aware analysis)" in column
    cards = hit_cards(column)
    assert [(c["data-stage"], c["data-rank"], c["data-hit-rank"]) for c in cards] == [
        ("bm25", "1", "1"), ("bm25", "2", "2"), ("bm25", "3", "3")]
    assert "BM25 12.35" in column, "BM25 score with two decimals"
    assert "The runner <mark>runs</mark> far." in column
    badges = Elements(column).with_class("lang-badge")
    assert [b["data-lang-family"] for b in badges] == ["latin", "indic", "unknown"]
    assert ">en 0.99</span>" in column and ">hi 0.99</span>" in column and ">unknown</span>" in column
    assert "Hindi" in badges[1]["title"]
    assert '<div class="hit-title" dir="auto" lang="en" title="a · a#0">Running</div>' in column
    assert '<div class="hit-title is-doc-id" dir="auto" lang="hi" title="b · b#3">b</div>' in column, \
        "no title: the doc id stands in"
    # A compact card: a few lines around the match, the whole passage one click away in place.
    assert '<details class="hit-text"><summary title="show the whole passage"><span class="snippet"' in column
    assert '<div class="full-text" dir="auto" lang="en">The runner <mark>runs</mark> far.</div>' in column
    assert [card["data-passage"] for card in cards] == ["a#0", "b#3", "c#0"], "the chart's click finds the card"
    assert '<span class="passage-id" title="passage id">b#3</span>' in column
    assert 'class="xrank deep" data-against="dense">dense #30' in column, "ranks elsewhere, deep when beyond k"


def test_collapse_documents_keeps_best_passage_per_document():
    hits = [make_hit("A#0", 1), make_hit("A#1", 2), make_hit("B#0", 3), make_hit("A#2", 4), make_hit("C#4", 5)]
    stage = make_stage("dense", hits)
    column = render_column(stage, make_result([stage]), k=10, collapse_documents=True)
    cards = hit_cards(column)
    assert [(c["data-rank"], c["data-hit-rank"]) for c in cards] == [("1", "1"), ("2", "3"), ("3", "5")], column
    assert "passage #3" in column and "passage #5" in column, "the original rank is shown"
    top_two = render_column(stage, make_result([stage]), k=2, collapse_documents=True)
    assert [c["data-hit-rank"] for c in hit_cards(top_two)] == ["1", "3"], "k counts documents once collapsed"
    plain = render_column(stage, make_result([stage]), k=10)
    assert len(hit_cards(plain)) == 5


def test_reranked_column_moves_found_by_and_scores():
    rerank_hits = [
        make_hit("c#0", 1, score=3.0, sigmoid=0.9526, ranks={"bm25": 3, "dense": None, "hybrid": 3}),
        make_hit("a#0", 2, score=1.0, sigmoid=0.7311, ranks={"bm25": 1, "dense": 2, "hybrid": 2}, truncated=True),
    ]
    rerank = make_stage("rerank", rerank_hits, model="BAAI/bge-reranker-v2-m3", pairs_per_second=40.0)
    result = make_result([*first_stages(), rerank])
    raw = render_column(rerank, result, k=10)
    assert "logit 3.00" in raw and "p 0.953" not in raw
    sig = render_column(rerank, result, k=10, score_view="sigmoid")
    assert "p 0.953" in sig and "p 0.731" in sig
    moves = Elements(raw).with_class("move")
    assert [(m["class"], m["data-against"]) for m in moves[:3]] == [
        ("move up primary", "hybrid"), ("move up", "bm25"), ("move new", "dense")], "candidate stage first"
    assert "↑2 from hybrid #3" in raw and "new: not in dense top-10" in raw and "= hybrid #2" in raw
    assert "↓1 from BM25 #1" in raw and "= dense #2" in raw
    found = [f["data-by"] for f in Elements(raw).with_class("found")]
    assert found == ["bm25", "bm25", "dense"], "c#0 found by BM25 only, a#0 by both"
    assert raw.count('class="truncated-mark"') == 1
    assert "2 candidates from hybrid rescored · 40.0 pairs/s" in raw


def test_late_interaction_fallback_has_no_sigmoid_and_labels_are_verbatim():
    note = "reranker 'BAAI/bge-reranker-v2-m3' could not be loaded: offline."
    rerank = make_stage("rerank", [make_hit("a#0", 1, score=0.8123, sigmoid=None, ranks={"hybrid": 1})],
                        model=LATE_INTERACTION_LABEL, note=note)
    dense = make_stage("dense", ranked("a#0"), model=FALLBACK_LABEL, note="the dense model is not cached")
    result = make_result([dense, make_stage("hybrid", ranked("a#0")), rerank])
    column = render_column(rerank, result, k=10, score_view="sigmoid")
    assert LATE_INTERACTION_LABEL in column, "the fallback label must be visible as it is"
    assert "score 0.812" in column and "sigmoid n/a" in column, column
    assert "could not be loaded: offline." in column and 'class="stage-model fallback"' in column
    dense_column = render_column(dense, result, k=10)
    assert FALLBACK_LABEL in dense_column and "the dense model is not cached" in dense_column


class VisibleText(HTMLParser):
    """The text a reader sees without hovering or opening anything: no attributes, no folded <details> body."""

    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.folded = 0  # depth inside closed <details>, outside their <summary>
        self.stack: list[str] = []
        self.feed(fragment)

    def handle_starttag(self, tag, attrs):
        self.stack.append(tag)
        if tag == "details" and "open" not in dict(attrs):
            self.folded += 1

    def handle_endtag(self, tag):
        self.stack.pop()
        if tag == "details" and self.folded:
            self.folded -= 1

    def handle_data(self, data):
        if not self.folded or self.stack[-1] == "summary":
            self.parts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.parts)


OFFLINE_REASON = (f"dense model 'intfloat/multilingual-e5-small' could not be loaded (offline); using "
                  f"{FALLBACK_LABEL}. Set --dense-model or SEARCH_DENSE_MODEL to a cached Hub id or a local "
                  "model folder.")


def test_fallback_reason_is_said_once_in_the_build_summary_and_folded_in_the_columns():
    dense = make_stage("dense", ranked("a#0"), model=FALLBACK_LABEL, note=OFFLINE_REASON)
    hybrid = make_stage("hybrid", ranked("a#0"), model=f"RRF(BM25, {FALLBACK_LABEL})", note=OFFLINE_REASON)
    result = make_result([make_stage("bm25", ranked("a#0")), dense, hybrid])
    for stage in (dense, hybrid):
        column = render_column(stage, result, k=10)
        seen = VisibleText(column).text
        assert "could not be loaded" not in seen and "SEARCH_DENSE_MODEL" not in seen, seen
        assert "offline fallback" in seen, "the short label stays in sight"
        model = Elements(column).with_class("stage-model")[0]
        assert model["class"] == "stage-model fallback" and model["title"].endswith("\n" + OFFLINE_REASON), \
            "the full label and the reason on hover"
        notes = [(tag, attrs) for tag, attrs in Elements(column).tags if "stage-note" in (attrs.get("class") or "")]
        assert notes == [("details", {"class": "stage-note"})], "and one click away, folded (no `open`)"
        assert "fallback: why?" in seen
    summary = render_build_summary(make_report(dense_model="intfloat/multilingual-e5-small",
                                               dense_fallback_reason=OFFLINE_REASON))
    assert VisibleText(summary).text.count("SEARCH_DENSE_MODEL") == 1, "said in full, once, in the build summary"


def test_error_column_shows_escaped_error_and_no_hits():
    error = f"reranker '{IMG}' could not be loaded: {SCRIPT}"
    rerank = StageResult("rerank", (), 0.0, "BAAI/bge-reranker-v2-m3", error=error)
    column = render_column(rerank, make_result([*first_stages(), rerank]), k=10)
    assert_inert(column)
    assert hit_cards(column) == [], "an error column has no hit cards"
    assert Elements(column).tags[0][1]["data-state"] == "error"
    assert "&lt;img src=x onerror=alert(1)&gt;" in column and "&lt;script&gt;alert(1)&lt;/script&gt;" in column
    assert 'role="alert"' in column and "late-interaction" in column, "says how to fix it"


def test_column_escapes_every_untrusted_field():
    hit = make_hit(f"{PAYLOAD}#0", 1, doc_id=PAYLOAD, title=PAYLOAD, text=f"alert {PAYLOAD} tail",
                   score=2.0, sigmoid=0.88, ranks={"hybrid": 1, "bm25": 1, "dense": 1})
    rerank = make_stage("rerank", [hit], model=PAYLOAD, note=PAYLOAD)
    result = make_result([*first_stages(), rerank], query="alert")
    column = render_column(rerank, result, k=10)
    assert_inert(column)
    assert column.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4, "title, doc id, model and note"
    assert "&lt;img src=x onerror=alert(1)&gt;" in column and "&#34;quotes&#34;" in column
    assert "&lt;script&gt;<mark>alert</mark>(1)&lt;/script&gt;" in column, "the snippet highlights the escaped text"
    assert len(hit_cards(column)) == 1


def test_pending_and_notice_columns():
    result = make_result(first_stages(), rerank_depth=20)
    pending = render_rerank_pending(result, "BAAI/bge-reranker-v2-m3")
    assert "Reranking 3 candidates from hybrid with BAAI/bge-reranker-v2-m3…" in pending, "3: hybrid has 3 hits"
    assert 'class="spinner"' in pending and 'data-state="pending"' in pending and 'data-stage="rerank"' in pending
    assert_inert(render_rerank_pending(result, IMG))
    notice = render_notice("rerank", "Reranking is off (rerank depth 0).")
    assert 'data-stage="rerank"' in notice and "Reranking is off" in notice


def test_the_pending_rerank_column_gives_pairs_scored_and_the_time_left():
    from ui.columns import RerankProgress

    result = make_result(first_stages(), rerank_depth=20)
    running = render_rerank_pending(result, "m", RerankProgress(12, 20, 3.4))
    progress = Elements(running).with_class("rerank-progress")
    assert progress == [{"class": "rerank-progress", "data-done": "12", "data-total": "20"}]
    assert "12 of 20 pairs scored · about 3 s left on this machine" in running
    assert '<progress max="20" value="12">' in running and 'data-state="pending"' in running
    unmeasured = render_rerank_pending(result, "m", RerankProgress(0, 20, None))
    assert "0 of 20 pairs scored · measuring this machine&#39;s speed…" in unmeasured
    finished = render_rerank_pending(result, "m", RerankProgress(20, 20, 0.0))
    assert "20 of 20 pairs scored<" in finished, "nothing left to say once every pair is scored"
    assert "1 of 1 pair scored" in render_rerank_pending(result, "m", RerankProgress(1, 1, None))
    assert_inert(render_rerank_pending(result, IMG, RerankProgress(1, 2, 1.0)))


def test_the_expected_rerank_time_says_what_is_known():
    from ui.columns import render_rerank_estimate

    def said(seconds, depth):
        fragment = render_rerank_estimate(seconds, depth)
        return Elements(fragment).with_class("rerank-estimate")[0]["data-state"], re.sub(r"<[^>]+>", "", fragment)

    assert said(None, 20) == ("unmeasured", "Expected rerank time: measured after the first rerank.")
    assert said(4.2, 20) == ("measured", "Expected rerank time: about 4 s on this machine at depth 20")
    assert said(0.4, 50) == ("measured", "Expected rerank time: under a second on this machine at depth 50")
    assert said(200.0, 100) == ("measured", "Expected rerank time: about 3 min on this machine at depth 100")
    assert said(0.0, 20) == ("cached", "Expected rerank time: none at depth 20, every pair is scored already.")
    assert said(None, 0)[0] == said(3.0, 0)[0] == "off"


def model_statuses():
    from search.warmup import ModelLoad, WarmupStatus

    dense = ModelLoad("dense", "intfloat/multilingual-e5-small", "intfloat/multilingual-e5-small")
    reranker = ModelLoad("reranker", "auto", "BAAI/bge-reranker-v2-m3")
    return [
        WarmupStatus((replace(dense, state="downloading", bytes_done=120_400_000, bytes_total=470_000_000),
                      reranker)),
        WarmupStatus((replace(dense, state="loading"), reranker)),
        WarmupStatus((replace(dense, state="ready", label="intfloat/multilingual-e5-small"),
                      replace(reranker, state="ready", label=LATE_INTERACTION_LABEL,
                              fallback_reason=f"offline {SCRIPT}"))),
        WarmupStatus((replace(dense, state="failed", error=IMG), replace(reranker, state="ready", label="x"))),
    ]


def test_the_model_line_gives_downloads_in_bytes_then_what_loaded():
    from ui.model_status import render_model_status

    downloading, loading, ready, failed = (render_model_status(status) for status in model_statuses())
    text = re.sub(r"<[^>]+>", "", downloading)
    assert text == ("Loading models: multilingual-e5-small: downloading 120 MB of 470 MB · "
                    "bge-reranker-v2-m3 (waiting)"), text
    assert 'data-state="loading"' in downloading and 'data-role="dense" data-state="downloading"' in downloading
    assert re.sub(r"<[^>]+>", "", loading).startswith("Loading models: multilingual-e5-small …")
    text = re.sub(r"<[^>]+>", "", ready)
    assert text == (f"Models ready: multilingual-e5-small … done · bge-reranker-v2-m3 → {LATE_INTERACTION_LABEL} "
                    "… done"), text
    assert Elements(ready).with_class("model-status")[0]["data-state"] == "ready"
    assert Elements(ready).with_class("model-load")[1]["title"] == f"offline {SCRIPT}", "why: one hover away"
    assert "multilingual-e5-small: failed (" in failed
    for fragment in (ready, failed):
        assert_inert(fragment)


def test_a_build_waiting_for_the_models_shows_their_line_first():
    from ui.build_summary import BuildEvent, render_build_progress

    waiting = render_build_progress([BuildEvent("read", 1, 1, 0.5)], 0.6, model_statuses()[0])
    assert waiting.index("build-models") < waiting.index("build-step") and "120 MB of 470 MB" in waiting
    ready = render_build_progress([BuildEvent("read", 1, 1, 0.5)], 0.6, model_statuses()[2])
    assert "build-models" not in ready
    assert ready == render_build_progress([BuildEvent("read", 1, 1, 0.5)], 0.6)


def test_language_badge_names_and_confidence():
    assert language_badge(HI) == ('<span class="lang-badge lang-indic" data-lang-family="indic" '
                                  'title="Hindi, detected with confidence 0.987">hi 0.99</span>')
    assert ">zh-cn 1.00<" in language_badge(ZH) and "Chinese (Simplified)" in language_badge(ZH)


def test_render_column_rejects_bad_arguments():
    stage = make_stage("bm25", ranked("a"))
    with pytest.raises(ValueError, match="k=0"):
        render_column(stage, make_result([stage]), k=0)
    with pytest.raises(ValueError, match="score_view"):
        render_column(stage, make_result([stage]), k=5, score_view="logit")  # type: ignore[arg-type]


# -- build summary ---------------------------------------------------------------------------------


def make_report(**fields) -> BuildReport:
    values = dict(documents=3, passages=12, files_read=2, problems=(), languages={"en": 8, "hi": 3, "zh": 1},
                  dense_model="intfloat/multilingual-e5-small", dense_fallback_reason=None, device="cpu",
                  timings_s={"read": 0.12, "languages": 0.5, "bm25": 0.01, "embeddings": 12.5}, index_key="k")
    values.update(fields)
    return BuildReport(**values)


def test_build_summary_counts_problems_and_reused_notice():
    problems = (Problem("data.csv", "the row has no text", line=7), Problem("notes.bin", "not a text file"),
                Problem("b.jsonl", "duplicate id 'x' renamed to 'x-2'", line=3, skipped=False))
    summary = render_build_summary(make_report(problems=problems, reused=True))
    assert "3 documents from 2 files → 12 passages in 3 languages" in summary
    assert "Reused the saved index for this corpus and settings" in summary
    items = Elements(summary).with_class("problem")
    assert [item["class"] for item in items] == ["problem skipped", "problem skipped", "problem warning"]
    assert '<span class="problem-where">data.csv, line 7</span>: ' in summary, "skipped file with its line"
    assert "the row has no text" in summary and "2 skipped, 1 warning" in summary
    assert "intfloat/multilingual-e5-small" in summary and ">cpu<" in summary
    assert "reading 120 ms" in summary and "embeddings 12.5 s" in summary
    assert "Reused" not in render_build_summary(make_report())


def test_build_summary_caps_problems_and_escapes():
    problems = tuple(Problem(f"{IMG}{i}.txt", SCRIPT, line=i) for i in range(60))
    summary = render_build_summary(make_report(problems=problems, dense_model=PAYLOAD, device=QUOTES,
                                               dense_fallback_reason=SCRIPT))
    assert_inert(summary)
    assert len(Elements(summary).with_class("problem")) == 50
    assert "… and 10 more" in summary
    assert "&lt;img src=x onerror=alert(1)&gt;0.txt, line 0" in summary
    assert "Fallback: &lt;script&gt;alert(1)&lt;/script&gt;" in summary and "&#34;quotes&#34;" in summary


def _estimate(fragment: str) -> str:
    found = re.search(r'<p class="build-estimate">(.*?)</p>', fragment)
    return found.group(1) if found else ""


def test_build_progress_says_the_passage_count_then_measures_and_gives_the_time_left():
    from ui.build_summary import BuildEvent, embedding_rate, render_build_progress

    read = [BuildEvent("read", 0, 1, 0.0), BuildEvent("read", 1, 1, 2.0)]
    assert _estimate(render_build_progress(read, 2.5)) == "", "the count is not known while reading"
    languages = [*read, BuildEvent("languages", 64, 12_345, 3.0)]
    assert _estimate(render_build_progress(languages, 3.5)) == "12,345 passages to index."
    started = [*languages, BuildEvent("languages", 12_345, 12_345, 9.0), BuildEvent("bm25", 12_345, 12_345, 10.0),
               BuildEvent("embeddings", 0, 12_345, 10.0)]
    assert _estimate(render_build_progress(started, 14.0)) == (
        "12,345 passages to index. Embedding: measuring the speed on this machine…"), "no batch done yet"
    # 320 passages in 8 s: 40/s, so 12,025 left take 300.6 s, of which 1 s has passed since the last report
    batches = [*started, BuildEvent("embeddings", 32, 12_345, 11.0), BuildEvent("embeddings", 320, 12_345, 18.0)]
    rate = embedding_rate(batches, 19.0)
    assert rate.passages_per_second == pytest.approx(40.0)
    assert rate.seconds_left == pytest.approx(12_025 / 40 - 1)
    assert _estimate(render_build_progress(batches, 19.0)) == (
        "12,345 passages to index. Embedding: about 5 min left at 40 passages/s on this machine.")
    slow = [*started, BuildEvent("embeddings", 32, 12_345, 90.0)]
    assert "about 8.6 h left at 0.4 passages/s" in _estimate(render_build_progress(slow, 90.0))
    nearly = [*started, BuildEvent("embeddings", 12_000, 12_345, 40.0)]
    assert "Embedding: a few seconds left" in _estimate(render_build_progress(nearly, 40.0))
    done = [*batches, BuildEvent("embeddings", 12_345, 12_345, 50.0)]
    assert _estimate(render_build_progress(done, 50.0)) == "12,345 passages to index."
    assert embedding_rate(started, 14.0) is None and embedding_rate(read, 3.0) is None


def test_a_reused_index_does_not_show_a_passage_count_of_one():
    from ui.build_summary import BuildEvent, render_build_progress

    reused = [BuildEvent("read", 1, 1, 1.0), *(BuildEvent(step, 1, 1, 1.1) for step in ("languages", "bm25",
                                                                                          "embeddings"))]
    assert _estimate(render_build_progress(reused, 1.2)) == ""


def test_languages_frame():
    frame = languages_frame(make_report(languages={"hi": 3, "en": 8, "zh": 1, "xx": 1}))
    assert list(frame.columns) == ["language", "name", "passages"]
    assert frame.values.tolist() == [["en", "English", 8], ["hi", "Hindi", 3], ["zh", "Chinese", 1],
                                     ["xx", "xx", 1]]


# -- stylesheet ------------------------------------------------------------------------------------

# Classes the renderers emit only as hooks for tests, scripts or screen readers, on purpose without a rule.
HOOK_CLASSES = {
    "build-counts", "build-model", "build-reranker", "build-step-name", "build-timings", "device", "doc-id",
    "error-fix", "error-text", "eval-progress", "judged-metrics", "judgments-counts", "judgments-estimate",
    "judgments-level", "judgments-summary", "model-label", "more", "passage-id", "problem-message",
    "query-language", "reranker-fallback", "reranker-kind", "summary-item",
}


def css_rules(css: str) -> dict[str, str]:
    """Selector -> declarations of every style rule, those inside @media included (@keyframes are not
    style rules). Raises AssertionError on unbalanced braces."""
    text = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules: dict[str, str] = {}

    def parse(block: str) -> None:
        position = 0
        while (opening := block.find("{", position)) >= 0:
            depth, end = 1, opening + 1
            while depth:
                assert end < len(block), f"unbalanced braces after {block[position:opening].strip()!r}"
                depth += {"{": 1, "}": -1}.get(block[end], 0)
                end += 1
            prelude, body = block[position:opening].strip(), block[opening + 1:end - 1]
            if prelude.startswith("@media"):
                parse(body)
            elif not prelude.startswith("@"):
                for selector in prelude.split(","):
                    rules[" ".join(selector.split())] = rules.get(" ".join(selector.split()), "") + body.strip()
            position = end
        assert "}" not in block[position:], "a closing brace without an opening one"

    parse(text)
    return rules


def css_classes(rules: dict[str, str]) -> set[str]:
    return {name for selector in rules for name in re.findall(r"\.([A-Za-z_][\w-]*)", selector)}


def emitted_classes(*fragments: str) -> set[str]:
    return {name for fragment in fragments for _, attrs in Elements(fragment).tags
            for name in (attrs.get("class") or "").split()}


def every_kind_of_fragment() -> list[str]:
    """One of each thing the renderers draw: every column state, movement kind, badge family, summary."""
    from types import SimpleNamespace

    from search.evaluation import Estimate
    from search.inference import Loaded
    from search.judgments import JudgmentMatch, Judgments, Query
    from ui.build_summary import BuildEvent, render_build_progress, render_reranker
    from ui.columns import LANGUAGE_FAMILIES, RerankProgress, render_pending, render_rerank_estimate
    from ui.evaluation_view import judged_metrics_html, judgments_summary, run_progress
    from ui.model_status import render_model_status

    languages = [Language(code, code, 0.9) for code in sorted(set(LANGUAGE_FAMILIES))] + [UNKNOWN_LANGUAGE]
    bm25 = make_stage("bm25", [make_hit(f"d{i}#0", i, language=language, title="T" if i % 2 else "",
                                        ranks={"dense": i + 20, "hybrid": None})
                               for i, language in enumerate(languages, start=1)])
    dense = make_stage("dense", ranked("d2#0", "d1#0", "d3#0", "x#0"), note="the dense model fell back",
                       model=FALLBACK_LABEL)
    hybrid = make_stage("hybrid", ranked("d1#0", "d2#0", "d3#0"))
    rerank = make_stage("rerank", [
        make_hit("d3#0", 1, ranks={"bm25": 3, "dense": 3, "hybrid": 30}, truncated=True),  # lifted; new in hybrid
        make_hit("d1#0", 2, ranks={"bm25": 1, "dense": 2, "hybrid": 2}, sigmoid=0.5),  # down, same
        make_hit("z#0", 3, ranks={"bm25": None, "dense": None, "hybrid": 4}),  # up, found by neither
    ], model=LATE_INTERACTION_LABEL, note="no cross-encoder", pairs_per_second=3.0)
    result = make_result([bm25, dense, hybrid, rerank])
    problems = (Problem("a.csv", "no text", line=2), Problem("b.jsonl", "renamed", skipped=False))
    reranker = Loaded(SimpleNamespace(label="late", is_cross_encoder=False, backend="late-interaction"), "auto",
                      fallback_reason="x")
    judgments = Judgments((Query("q1", "tea"),), {"q1": {"d1": 1}}, problems=problems)
    return [
        *(render_column(stage, result, k=10, score_view="sigmoid", collapse_documents=True, judgments={"d1#0": 2})
          for stage in (bm25, dense, hybrid, rerank)),
        render_column(StageResult("rerank", (), 0.0, "m", error="broken"), result, k=10),
        render_column(make_stage("dense", []), result, k=10),
        render_pending("rerank", "m", "working"), render_rerank_pending(result, "m"),
        render_rerank_pending(result, "m", RerankProgress(4, 20, 3.0)),
        *(render_rerank_estimate(seconds, depth) for seconds, depth in ((None, 20), (0.0, 20), (4.2, 20), (None, 0))),
        *(render_model_status(status) for status in model_statuses()),
        render_build_progress([BuildEvent("read", 1, 1, 0.5)], 0.6, model_statuses()[0]),
        render_notice("rerank", "off"),
        render_summary(result, 10),
        render_build_summary(make_report(problems=problems, reused=True, dense_fallback_reason="offline"),
                             max_problems=1),
        render_reranker(reranker),  # type: ignore[arg-type]
        render_build_progress([BuildEvent("read", 1, 1, 0.5), BuildEvent("languages", 3, 10, 0.9)], 1.0),
        judgments_summary(judgments, JudgmentMatch("document", 1, 1, problems),
                          Estimate(3.0, 1, 0.01, {"rerank": 20.0})),
        judged_metrics_html({}, 0, 0), judged_metrics_html({"bm25": {"ndcg@10": 0.5}}, 1, 1),
        run_progress(1, 2, 0.5),
    ]


def test_stylesheet_parses_and_styles_what_the_columns_need():
    from ui import stylesheet
    from ui.columns import LANGUAGE_FAMILIES

    rules = css_rules(stylesheet())
    for selector in (".stage-column .hit", ".stage-column .hit-head", ".stage-column mark", ".stage-column .spinner",
                     ".stage-column .move.up", ".stage-column .move.down", ".stage-column .move.new",
                     ".stage-column .move.same", ".stage-column .move.primary", ".stage-column .lifted",
                     ".stage-column .stage-error", ".stage-column .stage-note summary", ".search-summary",
                     ".build-summary", ".build-summary .build-fallback", ".rr-columns > *"):
        assert rules.get(selector, "").strip(), f"no rule (or an empty one) for {selector!r}"
    for family in {*LANGUAGE_FAMILIES.values(), "unknown"}:
        assert rules.get(f".lang-badge.lang-{family}"), f"badge family {family} has no colour"
    assert "@keyframes rr-spin" in stylesheet() and "animation: rr-spin" in rules[".stage-column .spinner"]


def test_every_class_the_renderers_emit_has_a_rule():
    from ui import stylesheet

    styled = css_classes(css_rules(stylesheet()))
    emitted = emitted_classes(*every_kind_of_fragment())
    unstyled = emitted - styled - HOOK_CLASSES
    assert not unstyled, f"classes without a CSS rule: {sorted(unstyled)} (add a rule, or to HOOK_CLASSES)"
    assert HOOK_CLASSES <= emitted, f"hooks no renderer emits any more: {sorted(HOOK_CLASSES - emitted)}"
    assert not HOOK_CLASSES & styled, f"styled classes listed as hooks: {sorted(HOOK_CLASSES & styled)}"


def test_css_rules_parser_sees_rules_not_substrings():
    rules = css_rules(".a .hit-head { color: red; }\n@media (x) { .b, .c > * { margin: 0; } }\n"
                      "@keyframes k { to { opacity: 0; } }")
    assert set(rules) == {".a .hit-head", ".b", ".c > *"}, rules
    assert css_classes(rules) == {"a", "hit-head", "b", "c"}, "`.hit` is not a class of this stylesheet"
    with pytest.raises(AssertionError, match="unbalanced"):
        css_rules(".a { color: red;")


def test_the_app_launches_with_the_stylesheet_file():
    from pathlib import Path

    import app
    import ui

    css = (Path(ui.__file__).parent / "style.css").read_text(encoding="utf-8")
    assert app.launch_kwargs()["css"] == css


def test_every_data_file_of_ui_is_shipped_as_package_data():
    import tomllib
    from fnmatch import fnmatch
    from pathlib import Path

    import ui

    root = Path(ui.__file__).parent
    patterns = tomllib.loads((root.parent / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "package-data"]["ui"]
    data = sorted(path.name for path in root.iterdir() if path.is_file() and path.suffix not in {".py", ".pyc"})
    assert "style.css" in data
    assert [name for name in data if not any(fnmatch(name, pattern) for pattern in patterns)] == [], (
        "a normal install would leave these out: add them to [tool.setuptools.package-data] in pyproject.toml")


def test_the_reranker_summary_says_what_it_is_once_and_what_runs_it():
    from types import SimpleNamespace

    from search.inference import Loaded
    from ui.build_summary import render_reranker

    late = Loaded(SimpleNamespace(label=LATE_INTERACTION_LABEL, is_cross_encoder=False, backend="late-interaction"),
                  "late-interaction")
    text = str(render_reranker(late))
    assert text.count("not a cross-encoder") == 1, text
    assert "(runs on torch)" in text, "late interaction over a torch encoder says torch"
    onnx = Loaded(SimpleNamespace(label="m · onnx", is_cross_encoder=True, backend="onnx"), "m")
    assert "(cross-encoder, runs on onnx)" in str(render_reranker(onnx))
    over = Loaded(SimpleNamespace(label="late", is_cross_encoder=False, backend="late-interaction over int8"), "x")
    assert "(not a cross-encoder, runs on int8)" in str(render_reranker(over))


def test_the_build_says_the_time_left_from_the_speed_measured_before_its_first_batch():
    from search.passages import SourceCount
    from search.pipeline import BuildEstimate
    from ui.build_summary import BuildEvent, render_build_progress, render_confirm

    expected = BuildEstimate(1_000, 200.0, "e5", (SourceCount("junk.md", 900, 1), SourceCount("a.txt", 100, 3)))
    read = [BuildEvent("read", 0, 1, 0.0), BuildEvent("read", 1, 1, 1.0)]
    assert _estimate(render_build_progress(read, 1.5, expected=expected)) == (
        "1,000 passages to index. Embedding: about 3 min left at 5.0 passages/s (measured on this machine).")
    question = str(render_confirm(expected, 120))
    assert "Embedding 1,000 passages with e5 takes about 3 min on this machine (more than 2 min)" in question
    assert question.index("junk.md") < question.index("a.txt"), "the largest contributor first"
    assert 'data-passages="900"' in question


def test_build_summary_names_the_files_that_gave_the_most_passages():
    from search.passages import SourceCount

    sources = tuple(SourceCount(name, passages, 1) for name, passages in
                    ((f"junk-{SCRIPT}.md", 412), ("rivers.csv", 9), ("a.txt", 3), ("b.txt", 2), ("c.txt", 1),
                     ("d.txt", 1), ("e.txt", 1)))
    summary = render_build_summary(make_report(per_source=sources))
    assert_inert(summary)
    text = VisibleText(summary).text
    assert f"Passages per file, largest first: junk-{SCRIPT}.md 412 passages" in text, text
    assert "c.txt 1 passage" in text and "d.txt" not in text and "and 2 more files" in text, text
    single = render_build_summary(make_report(per_source=(SourceCount("only.txt", 12, 3),)))
    assert "Passages per file" not in VisibleText(single).text, "one file: the counts already say it"


def test_a_column_header_leaves_a_label_s_measurements_to_its_hover():
    label = "late-interaction fallback, not a cross-encoder · int8 (quantized, OpenVINO static; ≥ 99.6% of nDCG@10)"
    rerank = make_stage("rerank", ranked("a#0"), model=label)
    column = render_column(rerank, make_result([*first_stages(), rerank]), k=10)
    model = Elements(column).with_class("stage-model")[0]
    assert model["title"] == label, "the whole label on hover"
    shown = VisibleText(column).text
    assert "int8 (quantized, OpenVINO static)" in shown and "99.6%" not in shown, shown
