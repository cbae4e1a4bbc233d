"""Metrics, qrels/queries readers and document-level deduplication, on hand-checked examples."""

from __future__ import annotations

import math

import pytest

from search.evaluation import compute_metrics, metric_names, ranked_ids, read_judgments, read_qrels, read_queries
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


def test_readers_keep_good_lines_and_name_bad_ones(tmp_path):
    queries = tmp_path / "queries.tsv"
    queries.write_text("q1\twhat is tea\nbroken line without tab\nq2\twhere is Lhasa\nq1\tdup\n", encoding="utf-8")
    qrels = tmp_path / "qrels.trec"
    qrels.write_text("q1 0 tea-en 2\nq1 0 tea-de one\nq2 0 lhasa 1\nq9 0 x 1\nonly two\n", encoding="utf-8")
    parsed, problems = read_queries(queries)
    assert [q.query_id for q in parsed] == ["q1", "q2"]
    assert [(p.line, "id") for p in problems] == [(2, "id"), (4, "id")], problems
    judged, problems = read_qrels(qrels)
    assert judged == {"q1": {"tea-en": 2}, "q2": {"lhasa": 1}, "q9": {"x": 1}}
    assert [p.line for p in problems] == [2, 5]
    assert "qrels.trec, line 2" in str(problems[0])
    judgments = read_judgments(queries, qrels)
    assert set(judgments.qrels) == {"q1", "q2"}
    assert any("q9" in p.message for p in judgments.problems), judgments.problems


def test_beir_qrels_with_header(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n", encoding="utf-8")
    judged, problems = read_qrels(path)
    assert judged == {"q1": {"d1": 1, "d2": 0}} and problems == ()


def test_beir_queries_jsonl(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_text('{"_id": "q1", "text": "Chai"}\n{not json\n{"_id": "q2", "text": "茶"}\n', encoding="utf-8")
    parsed, problems = read_queries(path)
    assert [(q.query_id, q.text) for q in parsed] == [("q1", "Chai"), ("q2", "茶")]
    assert [p.line for p in problems] == [2]
