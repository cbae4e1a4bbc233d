from __future__ import annotations

import pytest

from search.fusion import (
    BM25_WEIGHT,
    fuse,
    fusion_label,
    hybrid_weights,
    language_share_weights,
    reciprocal_rank_fusion,
    relative_score_fusion,
)
from search.types import Scored


def test_rrf_sums_reciprocal_ranks_and_orders_by_them():
    bm25 = [Scored(3, 9.0), Scored(1, 5.0), Scored(2, 1.0)]
    dense = [Scored(1, 0.9), Scored(4, 0.8)]
    fused = reciprocal_rank_fusion([bm25, dense], k=60)
    # passage 1: 1/62 + 1/61; passage 3: 1/61; passage 4: 1/62; passage 2: 1/63
    assert [hit.index for hit in fused] == [1, 3, 4, 2], fused
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)
    assert fused[-1].score == pytest.approx(1 / 63)


def test_rrf_ties_go_to_best_rank_then_lowest_index():
    fused = reciprocal_rank_fusion([[Scored(5, 1.0), Scored(7, 0.5)], [Scored(7, 1.0), Scored(5, 0.5)]])
    assert [hit.index for hit in fused] == [5, 7], "equal fused scores and best ranks: lower index first"


def test_rrf_limit_and_empty_lists():
    assert reciprocal_rank_fusion([[], []]) == []
    fused = reciprocal_rank_fusion([[Scored(i, 1.0) for i in range(10)]], limit=3)
    assert [hit.index for hit in fused] == [0, 1, 2]


def test_rrf_rejects_bad_k():
    with pytest.raises(ValueError, match="k=0"):
        reciprocal_rank_fusion([[Scored(0, 1.0)]], k=0)


def test_weighted_rrf_scales_each_lists_share():
    fused = reciprocal_rank_fusion([[Scored(1, 9.0)], [Scored(2, 0.9)]], weights=[0.25, 1.0])
    assert [hit.index for hit in fused] == [2, 1]
    assert fused[1].score == pytest.approx(0.25 / 61)
    with pytest.raises(ValueError, match="2 weights for 1 rankings"):
        reciprocal_rank_fusion([[Scored(1, 1.0)]], weights=[1.0, 1.0])
    with pytest.raises(ValueError, match="finite and >= 0"):
        reciprocal_rank_fusion([[Scored(1, 1.0)]], weights=[-1.0])


def test_relative_score_fusion_normalises_each_list_to_its_own_range():
    bm25 = [Scored(1, 12.0), Scored(2, 3.0), Scored(3, 2.0)]  # one clear winner
    dense = [Scored(4, 0.86), Scored(2, 0.85), Scored(1, 0.80)]  # close scores
    fused = relative_score_fusion([bm25, dense], weights=[0.5, 0.5])
    # 1: .5 * 1 + .5 * 0 = .5; 2: .5 * .1 + .5 * (.05 / .06); 4: .5 * 1; 3: 0
    scores = {hit.index: hit.score for hit in fused}
    assert scores[1] == pytest.approx(0.5) and scores[4] == pytest.approx(0.5) and scores[3] == pytest.approx(0.0)
    assert scores[2] == pytest.approx(0.5 * 0.1 + 0.5 * 0.05 / 0.06)
    assert [hit.index for hit in fused] == [1, 4, 2, 3], "1 and 4 tie at .5: the better best rank, then the index"


def test_relative_score_fusion_of_equal_scores_and_empty_lists():
    fused = relative_score_fusion([[Scored(3, 2.0), Scored(1, 2.0)], []])
    assert fused == [Scored(3, 1.0), Scored(1, 1.0)], "equal scores all normalise to 1"
    assert relative_score_fusion([[], []]) == []


def test_fuse_dispatches_and_names_the_choices():
    lists = [[Scored(1, 2.0), Scored(2, 1.0)], [Scored(2, 0.9)]]
    assert fuse(lists, "rrf") == reciprocal_rank_fusion(lists)
    assert fuse(lists, "relative-score", weights=[1, 3]) == relative_score_fusion(lists, weights=[1, 3])
    with pytest.raises(ValueError, match="fusion method .cc. is unknown; use one of relative-score, rrf"):
        fuse(lists, "cc")


def test_language_share_weights():
    assert language_share_weights("en", {"en": 10}) == (1.0, 1.0)
    assert language_share_weights("hi", {"en": 60, "de": 30, "hi": 10}) == (0.1, 1.0)
    assert language_share_weights("fr", {"en": 60, "de": 40}) == (0.0, 1.0), "no French passage: dense decides"
    assert language_share_weights("unknown", {"en": 60, "de": 40}) == (1.0, 1.0), "no language: BM25 in full"
    assert language_share_weights("en", {}) == (1.0, 1.0)


def test_hybrid_weights_and_labels_say_which_fusion_ran():
    assert hybrid_weights("relative-score", "en", {"en": 100}) == (BM25_WEIGHT, 1.0)
    assert hybrid_weights("relative-score", "hi", {"en": 600, "hi": 200, "zh": 200}) == (BM25_WEIGHT * 0.2, 1.0)
    assert hybrid_weights("rrf", "hi", {"en": 600, "hi": 200}) == (1.0, 1.0), "the old default, unweighted"
    assert fusion_label("rrf", ["BM25", "dense"], [1.0, 1.0]) == "RRF(BM25, dense)"
    assert fusion_label("relative-score", ["BM25", "dense"], [0.1, 1.0]) == "relative score(BM25 ×0.1, dense ×1)"
