from __future__ import annotations

import pytest

from search.fusion import reciprocal_rank_fusion
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
