"""Fusion of first-stage rankings into the hybrid stage, and the candidate pool the reranker sees.

Two families, as the engines that ship hybrid search have them:

- by rank: reciprocal rank fusion (Cormack et al. 2009; Elasticsearch's and OpenSearch's RRF, Vespa's
  `reciprocal_rank_fusion`), optionally weighted per list (weighted RRF, MongoDB's `$rankFusion` weights);
- by score: each list's scores min-max normalised over what it returned, then a weighted sum (Weaviate's
  `relativeScoreFusion`, its default since 1.24, with `alpha` the dense weight; Elasticsearch's linear
  retriever with the `minmax` normaliser; OpenSearch's normalisation processor with `min_max` and
  `arithmetic_mean`; Vespa's `normalize_linear`). Bruch et al. (2023) found such a convex combination
  better than RRF in and out of domain.

`fuse(rankings, method, weights)` is the one entry point; `FUSION_METHODS` names the choices and
`hybrid_weights` gives the per-query weights of each.

The default, ``relative-score``: relative-score fusion with dense weighing 1 and BM25 `BM25_WEIGHT` times
the share of the corpus written in the query's language (`language_share_weights`). In a one-language
corpus that is Weaviate's fusion at alpha 2/3; in a corpus of seven languages BM25 weighs about 0.07, as
it can vouch for one seventh of the corpus only. Measured on XQuAD (docs/ranking.md): in a pool of seven
languages it lifts hybrid nDCG@10 from RRF's 0.46 to 0.64 with cross-language judgments (dense alone:
0.64) and keeps 0.97 with own-language ones; on each language alone it beats RRF (0.976 -> 0.982).
``rrf`` is the old default, equal-weight RRF.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from .types import Scored

RRF_K = 60  # Cormack et al. (2009); large enough that the top few ranks of one list don't dominate.

FusionMethod = Literal["relative-score", "rrf"]
FUSION_METHODS: tuple[FusionMethod, ...] = ("relative-score", "rrf")
# BM25's weight in relative-score fusion when the whole corpus is in the query's language (dense: 1). 1.0
# left hybrid below dense on the XQuAD pool with cross-language judgments, 1/3 (Weaviate's alpha 0.75)
# dropped own-language nDCG@10 below 0.97; 0.5 kept both (docs/ranking.md).
BM25_WEIGHT = 0.5


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Scored]], *, k: int = RRF_K, limit: int | None = None,
                           weights: Sequence[float] | None = None) -> list[Scored]:
    """Fuse ranked lists: each passage scores sum(weight / (k + rank)) over the lists that contain it.

    `weights` (one per list, default all 1) makes it weighted RRF. Ties go to the passage with the
    better best rank, then the lower passage index, so the result is deterministic. Returns at most
    `limit` passages, best first. Raises ValueError for k < 1 or weights that don't fit.

    >>> reciprocal_rank_fusion([[Scored(7, 3.0), Scored(2, 1.0)], [Scored(2, 0.9)]], k=60)
    [Scored(index=2, score=0.03252247488101534), Scored(index=7, score=0.01639344262295082)]
    """
    if k < 1:
        raise ValueError(f"RRF k={k} must be at least 1")
    weights = _check_weights(rankings, weights)
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.index] = fused.get(hit.index, 0.0) + weight / (k + rank)
            best_rank[hit.index] = min(best_rank.get(hit.index, rank), rank)
    return _ordered(fused, best_rank, limit)


def relative_score_fusion(rankings: Sequence[Sequence[Scored]], *, weights: Sequence[float] | None = None,
                          limit: int | None = None) -> list[Scored]:
    """Fuse ranked lists by score: each list's scores are min-max normalised over the passages it returned
    (its best becomes 1, its last 0; a list whose scores are all equal gives them all 1), and a passage
    scores the weighted sum of its normalised scores (0 from a list that did not return it).

    Unlike RRF it keeps how far apart the scores are: a BM25 list with one clear winner gives the rest
    little, where RRF gives its second passage nearly as much as its first. Ties go to the better best
    rank, then the lower index. Raises ValueError for weights that don't fit.

    >>> relative_score_fusion([[Scored(7, 9.0), Scored(2, 1.0)], [Scored(2, 0.9), Scored(5, 0.8)]],
    ...                       weights=[0.5, 0.5])
    [Scored(index=2, score=0.5), Scored(index=7, score=0.5), Scored(index=5, score=0.0)]
    """
    weights = _check_weights(rankings, weights)
    fused: dict[int, float] = {}
    best_rank: dict[int, int] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if not ranking:
            continue
        scores = [hit.score for hit in ranking]
        high, low = max(scores), min(scores)
        for rank, hit in enumerate(ranking, start=1):
            normalised = 1.0 if high == low else (hit.score - low) / (high - low)
            fused[hit.index] = fused.get(hit.index, 0.0) + weight * normalised
            best_rank[hit.index] = min(best_rank.get(hit.index, rank), rank)
    return _ordered(fused, best_rank, limit)


def fuse(rankings: Sequence[Sequence[Scored]], method: str = "rrf", *, weights: Sequence[float] | None = None,
         limit: int | None = None) -> list[Scored]:
    """Fuse `rankings` with `method` (one of `FUSION_METHODS`); see `reciprocal_rank_fusion` and
    `relative_score_fusion`. Raises ValueError naming the choices for an unknown method."""
    if method == "rrf":
        return reciprocal_rank_fusion(rankings, weights=weights, limit=limit)
    if method == "relative-score":
        return relative_score_fusion(rankings, weights=weights, limit=limit)
    raise ValueError(f"fusion method {method!r} is unknown; use one of {', '.join(FUSION_METHODS)}")


def language_share_weights(query_language: str, passage_languages: Mapping[str, int]) -> tuple[float, float]:
    """The (BM25, dense) weights for a query: BM25 weighs the share of the corpus in the query's language.

    BM25 can only match passages written in the query's language (names and numbers aside), so in a corpus
    where that language is one of seven its ranking says little about the other six sevenths, where dense
    still finds the answer; in a corpus of one language the two lists weigh the same, and an English
    question over German passages leaves the ranking to dense. A query without a language (``unknown``:
    numbers, codes) is matched alike in every language, so BM25 keeps its full weight.

    >>> language_share_weights("en", {"en": 100}), language_share_weights("de", {"en": 300, "de": 100})
    ((1.0, 1.0), (0.25, 1.0))
    >>> language_share_weights("fr", {"en": 300}), language_share_weights("unknown", {"en": 300})
    ((0.0, 1.0), (1.0, 1.0))
    """
    total = sum(passage_languages.values())
    if total <= 0 or query_language == "unknown":
        return 1.0, 1.0
    return passage_languages.get(query_language, 0) / total, 1.0


def hybrid_weights(method: str, query_language: str, passage_languages: Mapping[str, int]) -> tuple[float, float]:
    """The (BM25, dense) weights `method` fuses with for a query in `query_language` over a corpus with
    `passage_languages` (language group -> passages): ``relative-score`` scales BM25 by `BM25_WEIGHT`
    and the share of the corpus in the query's language; ``rrf`` weighs both lists 1.

    >>> hybrid_weights("relative-score", "de", {"en": 300, "de": 100}), hybrid_weights("rrf", "de", {"de": 1})
    ((0.125, 1.0), (1.0, 1.0))
    """
    if method == "rrf":
        return 1.0, 1.0
    bm25, dense = language_share_weights(query_language, passage_languages)
    return BM25_WEIGHT * bm25, dense


def fusion_label(method: str, names: Sequence[str], weights: Sequence[float] | None = None) -> str:
    """The hybrid stage's model label: which fusion ran, over what, with which weights.

    >>> fusion_label("rrf", ["BM25", "e5"])
    'RRF(BM25, e5)'
    >>> fusion_label("relative-score", ["BM25", "e5"], [0.0714, 1.0])
    'relative score(BM25 ×0.071, e5 ×1)'
    """
    if method == "rrf" and (weights is None or len(set(weights)) == 1):
        return f"RRF({', '.join(names)})"
    name = "RRF" if method == "rrf" else "relative score"
    if weights is None:
        return f"{name}({', '.join(names)})"
    return f"{name}({', '.join(f'{label} ×{weight:.2g}' for label, weight in zip(names, weights, strict=True))})"


def _check_weights(rankings: Sequence[Sequence[Scored]], weights: Sequence[float] | None) -> Sequence[float]:
    if weights is None:
        return [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(weights)} weights for {len(rankings)} rankings; give one weight per ranking")
    if any(not math.isfinite(weight) or weight < 0 for weight in weights):
        raise ValueError(f"weights={list(weights)} must be finite and >= 0")
    return weights


def _ordered(fused: dict[int, float], best_rank: dict[int, int], limit: int | None) -> list[Scored]:
    order = sorted(fused, key=lambda index: (-fused[index], best_rank[index], index))
    if limit is not None:
        order = order[:limit]
    return [Scored(index, fused[index]) for index in order]
