"""IR metrics: nDCG@10, MRR@10, Recall@10 and Recall@100 over ranked id lists, from ir-measures
(pytrec_eval underneath), so the figures match what IR papers report; pure functions, no model.

Relevance is judged per document unless the qrels name passages: `ranked_ids` ranks a document at the
rank of its best passage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ir_measures

from .judgments import Level
from .types import Hit

BASE_METRICS = {"ndcg": ir_measures.nDCG, "mrr": ir_measures.RR, "recall": ir_measures.R}


def metric_names(k: int = 10) -> tuple[str, ...]:
    """The metrics reported: nDCG@10, MRR@10, Recall@10 and Recall@100, plus the same at `k` if k != 10."""
    cutoffs = [10] if k == 10 else [10, k]
    names = [f"{base}@{cutoff}" for cutoff in cutoffs for base in ("ndcg", "mrr", "recall")]
    return tuple(dict.fromkeys([*names, "recall@100"]))


def compute_metrics(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]],
                    names: Sequence[str] = metric_names()) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Return (mean over queries, per query) of each metric for ranked id lists, best first.

    Every query in `rankings` that has judgments counts, including those whose ranking is empty (they
    score 0), so a stage that finds nothing is not flattered.
    """
    measures = {name: _measure(name) for name in names}
    judged = [query_id for query_id in rankings if qrels.get(query_id)]
    run: dict[str, dict[str, float]] = {}
    for query_id in judged:
        ranking = list(dict.fromkeys(rankings[query_id]))
        # Scores strictly decreasing with rank, so no tie-breaking by id can reorder the list.
        run[query_id] = {doc_id: float(len(ranking) - rank) for rank, doc_id in enumerate(ranking)}
        if not run[query_id]:
            run[query_id] = {"\x00no-result": 0.0}
    per_query: dict[str, dict[str, float]] = {query_id: {} for query_id in judged}
    sub_qrels = {query_id: dict(qrels[query_id]) for query_id in judged}
    by_measure = {measure: name for name, measure in measures.items()}
    for metric in ir_measures.iter_calc(list(measures.values()), sub_qrels, run):
        per_query[metric.query_id][by_measure[metric.measure]] = float(metric.value)
    means = {name: (sum(q[name] for q in per_query.values()) / len(per_query) if per_query else 0.0)
             for name in names}
    return means, per_query


def _measure(name: str):
    base, _, cutoff = name.partition("@")
    return BASE_METRICS[base] @ int(cutoff)


def ranked_ids(hits: Sequence[Hit], level: Level) -> list[str]:
    """The ids a stage ranks: passages as they are, or documents at the rank of their best passage."""
    ids = [hit.passage_id if level == "passage" else hit.doc_id for hit in hits]
    return list(dict.fromkeys(ids))


def landed_ranks(ranking: Sequence[str], judged: Mapping[str, int]) -> tuple[int, ...]:
    """The 1-based ranks in `ranking` of the ids judged relevant (grade > 0), best first.

    >>> landed_ranks(["a", "b", "c"], {"c": 1, "a": 0, "x": 2})
    (3,)
    """
    return tuple(rank for rank, ranked_id in enumerate(ranking, start=1) if judged.get(ranked_id, 0) > 0)
