"""Issue 17 on the sample corpus (corpora/polyglot-facts, 10 languages): BM25 that other languages'
stopwords can't steer, highlighting without stopwords, and the hybrid stage's fusion named in its label."""

from __future__ import annotations

from pathlib import Path

import pytest

from search.datasets import load_dataset
from search.models import FALLBACK_DENSE_ID
from search.pipeline import Settings, build
from search.stopwords import stopwords
from ui.highlight import highlight_terms, match_spans, snippet

SAMPLE = Path(__file__).resolve().parents[1] / "corpora" / "polyglot-facts"
SETTINGS = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=("late-interaction",), device="cpu")


@pytest.fixture(scope="module")
def index():
    return build(load_dataset(SAMPLE).corpus, SETTINGS)


@pytest.mark.parametrize("query", ["When did the Luna 2 probe reach the Moon?",
                                   "How far is the Moon from the Earth on average?"])
def test_stopwords_no_longer_bring_tea_or_chess_into_bm25s_top_3(index, query):
    top = [hit.doc_id for hit in index.retrieve(query, k=3, rerank_depth=0, stages=("bm25",)).stages["bm25"].hits]
    assert top[0] == "moon-en", top
    assert not {doc for doc in top if doc.split("-")[0] in {"tea", "chess"}}, f"{query}: {top}"


def test_the_old_statistics_are_still_selectable_and_did_bring_them(index):
    from dataclasses import replace

    from search.pipeline import Index

    old = Index(index.passages, index.passage_terms, index.dense, index.encoder,
                replace(SETTINGS, bm25_statistics="corpus", stopwords=False, fusion="rrf"), index.report)
    result = old.retrieve("When did the Luna 2 probe reach the Moon?", k=3, rerank_depth=0)
    assert [hit.doc_id for hit in result.stages["bm25"].hits][:2] == ["moon-en", "tea-en"], "issue 17's finding"
    assert result.stages["hybrid"].model.startswith("RRF(BM25, ")


def test_no_stopword_of_the_querys_language_is_highlighted(index):
    query = "How far is the Moon from the Earth on average?"
    result = index.retrieve(query, k=10, rerank_depth=0)
    english = stopwords("en")
    for hit in result.stages["bm25"].hits:
        terms = highlight_terms(result, hit.language.group, index.languages)
        marked = {hit.text[start:end].casefold() for start, end in match_spans(hit.text, hit.language.group, terms)}
        assert marked and not marked & english, f"{hit.passage_id}: {marked & english}"
    moon = next(hit for hit in result.stages["bm25"].hits if hit.doc_id == "moon-en")
    shown = snippet(moon.text, "en", highlight_terms(result, "en", index.languages), max_chars=200)
    assert "<mark>average</mark> distance" in shown, shown


def test_the_hybrid_label_says_which_fusion_ran(index):
    hybrid = index.retrieve("Wie lang ist das Great Barrier Reef?", k=3, rerank_depth=0).stages["hybrid"]
    assert hybrid.model.startswith("relative score(BM25 ×0.05"), hybrid.model  # 10 of 92 passages are German
    assert hybrid.hits[0].doc_id.startswith("coral-"), hybrid.hits
