"""Reciprocal rank fusion: combine rankings by rank alone, so BM25 and cosine scores need no calibration."""

from __future__ import annotations

from collections.abc import Sequence

from .types import Scored

RRF_K = 60  # Cormack et al. (2009); large enough that the top few ranks of one list don't dominate.


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Scored]], *, k: int = RRF_K,
                           limit: int | None = None) -> list[Scored]:
    """Fuse ranked lists: each passage scores sum(1 / (k + rank)) over the lists that contain it.

    Ties go to the passage with the better best rank, then the lower passage index, so the result is
    deterministic. Returns at most `limit` passages, best first.

    >>> reciprocal_rank_fusion([[Scored(7, 3.0), Scored(2, 1.0)], [Scored(2, 0.9)]], k=60)
    [Scored(index=2, score=0.03252247488101534), Scored(index=7, score=0.01639344262295082)]
    """
    if k < 1:
        raise ValueError(f"RRF k={k} must be at least 1")
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.index] = fused.get(hit.index, 0.0) + 1.0 / (k + rank)
            best_rank[hit.index] = min(best_rank.get(hit.index, rank), rank)
    order = sorted(fused, key=lambda index: (-fused[index], best_rank[index], index))
    if limit is not None:
        order = order[:limit]
    return [Scored(index, fused[index]) for index in order]
