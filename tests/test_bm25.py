from __future__ import annotations

import math

import numpy as np
import pytest
import rank_bm25

from search.analysis import terms
from search.bm25 import BM25Index, LuceneBM25Okapi, top_k
from search.types import Scored

SMALL_CORPUS = [
    "the cat sat on the mat",
    "the dog chased the cat around the garden",
    "a bird sang in the garden at dawn",
    "dogs and cats and birds",
    "",
    "the the the the",
    "quantum physics of the cat",
]


def analysed(texts: list[str]) -> list[list[str]]:
    return [text.split() for text in texts]


def test_word_in_one_of_two_documents_ranks_it_first():
    # "mat" is in 1 of 2 documents: BM25Okapi's idf log((2 - 1 + .5) / (1 + .5)) = 0 scores it nowhere.
    corpus = analysed(["the cat sat on the mat", "the dog sat on the log"])
    assert rank_bm25.BM25Okapi(corpus).get_scores(["mat"]).tolist() == [0.0, 0.0]
    hits = BM25Index.build(corpus).search(["mat"], k=2)
    assert [hit.index for hit in hits] == [0], f"only document 0 holds 'mat': {hits}"


def test_word_in_one_of_three_documents_ranks_it_first():
    corpus = analysed(["red apple pie", "green apple tart", "red cherry pie"])
    index = BM25Index.build(corpus)
    assert [hit.index for hit in index.search(["green"], k=3)] == [1]
    assert [hit.index for hit in index.search(["cherry", "pie"], k=3)] == [2, 0]
    # "apple" and "red" are both in 2 of 3 documents; the one with both comes first.
    assert [hit.index for hit in index.search(["red", "apple"], k=3)] == [0, 1, 2]


def test_lucene_idf_is_positive_and_matches_the_formula():
    model = LuceneBM25Okapi(analysed(["a b", "a c", "a d"]))
    assert model.idf["a"] == pytest.approx(math.log(1 + (3 - 3 + 0.5) / (3 + 0.5)))
    assert model.idf["b"] == pytest.approx(math.log(1 + (3 - 1 + 0.5) / (1 + 0.5)))
    assert all(idf > 0 for idf in model.idf.values())


@pytest.mark.parametrize(("k1", "b"), [(0.9, 0.6), (1.2, 0.75), (1.5, 0.0), (2.0, 0.9)])
def test_sparse_scores_equal_rank_bm25_get_scores(k1, b):
    corpus = analysed(SMALL_CORPUS)
    index = BM25Index.build(corpus, k1=k1, b=b)
    model = LuceneBM25Okapi(corpus, k1=k1, b=b)
    queries = [["cat"], ["the"], ["garden", "dog", "dog"], ["cat", "unseen"], ["unseen"], ["the", "cat", "the"]]
    for query in queries:
        np.testing.assert_allclose(index.scores(query), model.get_scores(query), rtol=0, atol=1e-9, err_msg=str(query))


def test_from_model_reproduces_plain_bm25okapi():
    corpus = analysed(SMALL_CORPUS)
    model = rank_bm25.BM25Okapi(corpus, k1=1.5, b=0.75)
    index = BM25Index.from_model(model)
    for query in (["cat"], ["the", "garden"], ["birds"]):
        np.testing.assert_allclose(index.scores(query), model.get_scores(query), rtol=0, atol=1e-9)


def test_search_returns_positive_scores_best_first():
    index = BM25Index.build(analysed(SMALL_CORPUS))
    hits = index.search(["cat", "garden"], k=10)
    # 1 holds both; "garden" (2 of 7 passages) outweighs "cat" (3 of 7), and short 6 beats longer 0.
    assert [hit.index for hit in hits] == [1, 2, 6, 0], hits
    assert all(isinstance(hit, Scored) and hit.score > 0 for hit in hits)
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert [hit.index for hit in index.search(["cat", "garden"], k=2)] == [1, 2]


def test_ties_break_by_passage_index():
    # Four identical passages and one without the term: equal scores come back in corpus order.
    corpus = analysed(["x y", "x y", "z", "x y", "x y"])
    index = BM25Index.build(corpus)
    assert [hit.index for hit in index.search(["x"], k=10)] == [0, 1, 3, 4]
    assert [hit.index for hit in index.search(["x"], k=3)] == [0, 1, 3]
    assert [hit.index for hit in index.search(["x"], k=1)] == [0]


def test_top_k_keeps_every_tie_at_the_cut_before_ordering():
    scores = np.array([1.0, 3.0, 2.0, 3.0, 2.0, 2.0, 0.0, -1.0, 2.0])
    assert [hit.index for hit in top_k(scores, 3)] == [1, 3, 2]
    assert [hit.index for hit in top_k(scores, 5)] == [1, 3, 2, 4, 5]
    assert [hit.index for hit in top_k(scores, 100)] == [1, 3, 2, 4, 5, 8, 0]


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_rejected(k):
    index = BM25Index.build(analysed(SMALL_CORPUS))
    with pytest.raises(ValueError, match=f"k={k}"):
        index.search(["cat"], k=k)


def test_empty_query_and_unknown_terms_give_nothing():
    index = BM25Index.build(analysed(SMALL_CORPUS))
    assert index.search([], k=5) == []
    assert index.search(["unseen", "words"], k=5) == []
    assert index.scores([]).tolist() == [0.0] * len(SMALL_CORPUS)


def test_len_and_build_validation():
    assert len(BM25Index.build(analysed(SMALL_CORPUS))) == len(SMALL_CORPUS)
    assert len(BM25Index.build([[], []])) == 2, "passages without terms are indexed and never found"
    with pytest.raises(ValueError, match="empty"):
        BM25Index.build([])
    with pytest.raises(ValueError, match="b=1.5"):
        BM25Index.build([["a"]], b=1.5)
    with pytest.raises(ValueError, match="k1=-1"):
        BM25Index.build([["a"]], k1=-1)


def test_rebuilding_from_the_same_terms_gives_the_same_scores():
    corpus = analysed(SMALL_CORPUS)
    first, second = BM25Index.build(corpus), BM25Index.build([list(passage) for passage in corpus])
    assert first.scores(["cat", "garden"]).tolist() == second.scores(["cat", "garden"]).tolist()


def test_analysed_multilingual_corpus():
    passages = ["Die Häuser stehen am Fluss.", "The running dogs sleep.", "北京大学在中国。"]
    languages = ["de", "en", "zh"]
    index = BM25Index.build([terms(text, language) for text, language in zip(passages, languages, strict=True)])
    assert [hit.index for hit in index.search(terms("Haus", "de"), k=3)] == [0]
    assert [hit.index for hit in index.search(terms("dog runs", "en"), k=3)] == [1]
    assert [hit.index for hit in index.search(terms("大学", "zh"), k=3)] == [2]


# -- statistics per language -------------------------------------------------------------------------


MIXED = [["the", "moon", "orbit", "the", "earth"], ["the", "tea", "is", "a", "drink"], ["the", "chess", "game"],
         ["der", "mond", "umkreist", "die", "erde"], ["die", "teepflanze"]]
MIXED_LANGUAGES = ["en", "en", "en", "de", "de"]


def test_each_language_has_its_own_statistics():
    index = BM25Index.build(MIXED, languages=MIXED_LANGUAGES)
    assert index.statistics == "language" and index.languages == {"en", "de"}
    english = BM25Index.build(MIXED[:3])
    german = BM25Index.build(MIXED[3:])
    scores = index.scores({"en": ["the", "moon"], "de": ["mond", "die"]})
    np.testing.assert_allclose(scores[:3], english.scores(["the", "moon"]), rtol=1e-12)
    np.testing.assert_allclose(scores[3:], german.scores(["mond", "die"]), rtol=1e-12)


def test_a_word_common_in_its_language_weighs_little_however_rare_in_the_corpus():
    corpus = MIXED + [["das", "schach"]] * 6
    languages = MIXED_LANGUAGES + ["de"] * 6
    global_index = BM25Index.build(corpus)
    per_language = BM25Index.build(corpus, languages=languages)
    # "the" is in 3 of 11 passages (rare overall) but in all 3 English ones.
    assert global_index.scores(["the"])[0] > global_index.scores(["earth"])[0] * 0.5
    assert per_language.scores({"en": ["the"]})[0] < per_language.scores({"en": ["earth"]})[0] * 0.2


def test_terms_of_one_language_match_only_its_passages():
    index = BM25Index.build([["tea"], ["tea"]], languages=["en", "de"])
    assert [hit.index for hit in index.search({"de": ["tea"]}, k=5)] == [1]
    assert [hit.index for hit in index.search(["tea"], k=5)] == [0, 1], "a plain list matches every language"
    assert index.search({"fr": ["tea"]}, k=5) == [], "a language the corpus lacks matches nothing"


def test_corpus_statistics_pool_the_languages_terms_once():
    index = BM25Index.build(MIXED)
    assert index.statistics == "corpus"
    np.testing.assert_allclose(index.scores({"en": ["moon", "the"], "de": ["the", "mond"]}),
                               index.scores(["moon", "the", "mond"]), rtol=1e-12)


def test_languages_must_match_the_passages():
    with pytest.raises(ValueError, match="languages has 1 entries for 2 passages"):
        BM25Index.build([["a"], ["b"]], languages=["en"])
    assert len(BM25Index.build([[], []], languages=["en", "en"])) == 2, "a language without terms is indexed"
