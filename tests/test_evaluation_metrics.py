"""Metrics, document-level deduplication and where relevant ids landed, on hand-checked examples.

The judgment readers are tested in test_judgments.py."""

from __future__ import annotations

import math

import pytest

from search.judgments import Judgments, Query, read_judgments, read_qrels, read_queries
from search.metrics import compute_metrics, landed_ranks, metric_names, ranked_ids
from search.types import UNKNOWN_LANGUAGE, Hit


def test_metrics_match_hand_computation():
    qrels = {"q1": {"a": 1}, "q2": {"b": 2, "c": 1}}
    rankings = {"q1": ["x", "a", "y"], "q2": ["c", "z", "b"]}
    means, per_query = compute_metrics(qrels, rankings)
    # q1: the one relevant doc at rank 2 -> nDCG = 1/log2(3), RR = 1/2
    assert per_query["q1"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    assert per_query["q1"]["mrr@10"] == pytest.approx(0.5)
    # q2: gains c=1 at rank 1, b=2 at rank 3; ideal b then c
    dcg = 1 / math.log2(2) + 2 / math.log2(4)
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert per_query["q2"]["ndcg@10"] == pytest.approx(dcg / ideal)
    assert per_query["q2"]["recall@10"] == pytest.approx(1.0)
    assert means["mrr@10"] == pytest.approx((0.5 + 1.0) / 2)


def test_a_query_with_no_results_counts_as_zero():
    means, per_query = compute_metrics({"q1": {"a": 1}, "q2": {"b": 1}}, {"q1": ["a"], "q2": []})
    assert per_query["q2"]["ndcg@10"] == 0.0
    assert means["ndcg@10"] == pytest.approx(0.5), "an empty ranking must lower the mean, not vanish"


def test_cutoffs_apply():
    ranking = [f"d{i}" for i in range(20)] + ["rel"]
    means, _ = compute_metrics({"q": {"rel": 1}}, {"q": ranking})
    assert means["recall@10"] == 0.0 and means["mrr@10"] == 0.0
    assert means["recall@100"] == 1.0


def test_metric_names_add_k():
    assert metric_names(10) == ("ndcg@10", "mrr@10", "recall@10", "recall@100")
    assert metric_names(5)[:3] == ("ndcg@10", "mrr@10", "recall@10") and "ndcg@5" in metric_names(5)


def _hit(passage_id: str, doc_id: str, rank: int) -> Hit:
    return Hit(passage_id, doc_id, rank, 1.0 / rank, UNKNOWN_LANGUAGE, "")


def test_documents_rank_at_their_best_passage():
    hits = [_hit("a#1", "a", 1), _hit("b#0", "b", 2), _hit("a#0", "a", 3), _hit("c#0", "c", 4)]
    assert ranked_ids(hits, "document") == ["a", "b", "c"]
    assert ranked_ids(hits, "passage") == ["a#1", "b#0", "a#0", "c#0"]


def test_landed_ranks_are_the_relevant_positions():
    assert landed_ranks(["x", "a", "y", "b"], {"a": 2, "b": 1, "y": 0, "z": 1}) == (2, 4)
    assert landed_ranks(["x"], {"a": 1}) == ()


def test_the_readers_are_still_importable_from_evaluation():
    # They moved to search.judgments; the old import path must keep working for existing callers.
    from search import judgments

    assert (read_judgments, read_qrels, read_queries, Query, Judgments) == (
        judgments.read_judgments, judgments.read_qrels, judgments.read_queries, judgments.Query, judgments.Judgments)
