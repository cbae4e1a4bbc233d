"""Several rerankers of the same candidates: Kendall's tau, shared@k and Jaccard@k between them, each further
reranker's move against A, on hand-built lists checked by hand; then the stages rerank-b (and rerank-c) through
`Index.rerank`, the evaluation, the depth trade-off, the exports and the CLI, with the tiny local cross-encoder
and the late-interaction models (no download)."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from itertools import combinations
from pathlib import Path

import pytest

from search.cli import main
from search.compare import Agreement, Movement, agreement, compare, kendall_tau, versus
from search.evaluation import depth_tradeoff, evaluate, stage_rankings
from search.export import CSV_COLUMNS, result_to_dict, results_to_csv
from search.judgments import Judgments, Query
from search.models import FALLBACK_DENSE_ID
from search.pipeline import Index, Settings, build
from tests.hand_made import make_hit, make_result, make_stage, ranked
from tests.tiny_models import build_tiny_xlmr_cross_encoder

# -- pure functions on hand-checked lists --------------------------------------------------------------


def test_kendall_tau_on_hand_counted_pairs():
    assert kendall_tau(list("abcde"), list("abcde")) == 1.0
    assert kendall_tau(list("abcde"), list("edcba")) == -1.0
    # b-a and d-c swapped: 2 discordant of 10 pairs -> (8 - 2) / 10
    assert kendall_tau(list("abcde"), list("badce")) == pytest.approx(0.6)
    # a moved from first to last: the 3 pairs with a are discordant, the other 3 concordant -> 0
    assert kendall_tau(list("abcd"), list("bcda")) == pytest.approx(0.0)
    # only the shared ids count: a, c, d in both; order a c d vs d a c -> pairs ac +, ad -, cd - -> -1/3
    assert kendall_tau(["a", "x", "c", "d"], ["d", "a", "y", "c"]) == pytest.approx(-1 / 3)
    assert kendall_tau(["a"], ["a", "b"]) is None and kendall_tau([], []) is None
    with pytest.raises(ValueError, match="repeats an id"):
        kendall_tau(["a", "a"], ["a"])


def test_kendall_tau_matches_a_brute_force_count():
    first, second = list("abcdefgh"), list("cbahgfed")
    concordant = discordant = 0
    for x, y in combinations(first, 2):  # x before y in first
        if second.index(x) < second.index(y):
            concordant += 1
        else:
            discordant += 1
    assert kendall_tau(first, second) == pytest.approx((concordant - discordant) / 28)


def test_versus_a_says_how_far_b_moved_a_passage():
    assert versus(make_hit("p#0", 2, ranks={"rerank": 5})) == Movement("up", "rerank", 5, 2, "↑3 vs A")
    assert versus(make_hit("p#0", 4, ranks={"rerank": 1})).text == "↓3 vs A"
    assert versus(make_hit("p#0", 3, ranks={"rerank": 3})) == Movement("same", "rerank", 3, 3, "= A")
    assert versus(make_hit("p#0", 3, ranks={"rerank": None})) is None


def _two_rerankers():
    hybrid = make_stage("hybrid", ranked("a#0", "b#0", "c#0", "d#0", "e#0"))
    a = make_stage("rerank", ranked("c#0", "a#0", "b#0", "d#0", "e#0"))
    b = make_stage("rerank-b", ranked("a#0", "d#0", "c#0", "e#0", "b#0"))
    from search.pipeline import _cross_ranked

    result = make_result([hybrid, a, b], rerank_depth=5)
    return replace(result, stages=_cross_ranked(result.stages))


def test_agreement_of_two_rerankers_checked_by_hand():
    result = _two_rerankers()
    # top-3: A {c, a, b}, B {a, d, c}: shared a, c -> 2, Jaccard 2/4.
    # tau over 5: A order c a b d e; B ranks c3 a1 b5 d2 e4 -> sequence 3 1 5 2 4:
    # pairs (3,1)- (3,5)+ (3,2)- (3,4)+ (1,5)+ (1,2)+ (1,4)+ (5,2)- (5,4)- (2,4)+ -> 6 - 4 = 2 of 10
    assert agreement(result, 3) == Agreement("rerank", "rerank-b", 3, 2, 0.5, pytest.approx(0.2), 5)
    comparison = compare(result, 3)
    assert comparison.agreements == (agreement(result, 3),)
    assert [hit.versus_a.text for hit in comparison.reranked["rerank-b"]] == ["↑1 vs A", "↑2 vs A", "↓2 vs A"]
    assert all(hit.versus_a is None for hit in comparison.reranked["rerank"]), "A's own hits have no A to move against"
    # d is hybrid #4, outside the hybrid top-3 the user saw: "new", as for A's cards
    assert [move.text for move in comparison.reranked["rerank-b"][1].movements] == ["new: not in hybrid top-3 (was #4)"]
    assert agreement(make_result([make_stage("rerank", ranked("a#0"))]), 3) is None, "no B: no agreement"


def test_exports_carry_b_and_the_agreement():
    result = _two_rerankers()
    data = result_to_dict(result, 3)
    assert list(data["stages"]) == ["hybrid", "rerank", "rerank-b"]
    assert data["comparison"]["agreements"] == [{"stages": ["rerank", "rerank-b"], "k": 3, "shared": 2,
                                                 "jaccard": 0.5, "kendall_tau": pytest.approx(0.2), "candidates": 5}]
    first_b = data["stages"]["rerank-b"]["hits"][0]
    assert first_b["versus_a"]["text"] == "↑1 vs A" and first_b["movements"][0]["against"] == "hybrid"
    rows = results_to_csv(result, 3).splitlines()
    assert any(row.startswith("query,rerank-b,1,a#0") and ",same," in row for row in rows), rows


def test_the_csv_has_ranks_in_b_and_how_far_b_moved_each_passage_against_a():
    result = _two_rerankers()
    rows = list(csv.DictReader(io.StringIO(results_to_csv(result, 3), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(row["passage_id"], row["rank_in_rerank"], row["rank_in_rerank-b"], row["versus_a"])
            for row in rows if row["stage"] == "rerank-b"] == [
        ("a#0", "2", "1", "↑1 vs A"), ("d#0", "4", "2", "↑2 vs A"), ("c#0", "1", "3", "↓2 vs A")]
    assert [(row["passage_id"], row["rank_in_rerank-b"], row["versus_a"])
            for row in rows if row["stage"] == "rerank"] == [("c#0", "3", ""), ("a#0", "1", ""), ("b#0", "5", "")]
    assert {row["rank_in_rerank-b"] for row in rows if row["stage"] == "hybrid"} == {"1", "5", "3"}
    from search.pipeline import _cross_ranked

    same = make_stage("rerank-b", ranked("c#0", "a#0", "b#0", "d#0", "e#0"))
    agreeing = replace(result, stages=_cross_ranked({**result.stages, "rerank-b": same}))
    rows = list(csv.DictReader(io.StringIO(results_to_csv(agreeing, 3), newline="")))
    assert {row["versus_a"] for row in rows if row["stage"] == "rerank-b"} == {"'= A"}, "neutralised: no formula"


def test_stage_rankings_continue_b_with_the_candidates_tail():
    result = _two_rerankers()
    short_b = make_stage("rerank-b", ranked("b#0", "a#0"))
    result = replace(result, stages={**result.stages, "rerank-b": short_b}, rerank_depth=2)
    assert stage_rankings(result, "passage")["rerank-b"] == ["b#0", "a#0", "c#0", "d#0", "e#0"]


# -- the stage rerank-b with the tiny local cross-encoder -----------------------------------------------

DOCS = {
    "tea.txt": "Green tea is grown on terraced hillsides and picked by hand in spring.",
    "volcano.txt": "A volcano erupts when magma rises through cracks in the crust of the Earth.",
    "magma.txt": "Magma cools into basalt. Magma chambers feed a volcano.",
    "bees.txt": "Honeybees dance to tell their sisters where the best flowers are blooming.",
    "rivers.txt": "Rivers carry sand and gravel from the mountains down to the sea.",
    "bread.txt": "Bread rises when yeast turns sugar into gas inside the warm dough.",
}
QUERIES = ["where does tea grow", "volcano magma"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-b"), [*DOCS.values(), *QUERIES] * 3)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("corpus-b")
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def index(tiny, corpus) -> Index:
    settings = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=(str(tiny), ("late-interaction", "torch")),
                        device="cpu", backend="torch")
    return build([corpus], settings)


@pytest.fixture(scope="module")
def three(tiny, corpus) -> Index:
    """Three rerankers side by side: the tiny cross-encoder, late interaction over the bundled e5 and over
    the bundled MiniLM."""
    settings = Settings(dense_model=FALLBACK_DENSE_ID, device="cpu", backend="torch",
                        rerankers=(str(tiny), "late-interaction", "late-interaction-minilm"))
    return build([corpus], settings)


def test_rerank_b_rescores_the_same_candidates_with_the_second_reranker(index, tiny):
    result = index.search("where does tea grow", k=4, rerank_depth=5)
    a, b = result.stages["rerank"], result.stages["rerank-b"]
    assert a.error is None and b.error is None, (a.error, b.error)
    assert {hit.passage_id for hit in a.hits} == {hit.passage_id for hit in b.hits}
    assert len(b.hits) == 5 and "late-interaction" in b.model.lower(), b.model
    assert a.model != b.model
    # B's own ranking: the late-interaction scores, best first; every B hit knows its rank in A.
    assert [hit.score for hit in b.hits] == sorted((hit.score for hit in b.hits), reverse=True)
    a_ranks = {hit.passage_id: hit.rank for hit in a.hits}
    assert all(hit.ranks["rerank"] == a_ranks[hit.passage_id] for hit in b.hits)
    assert compare(result, 4).agreements[0].candidates == 5
    # The same pairs again come from the shared score cache, for both rerankers.
    assert index.expected_rerank_seconds(result) == 0.0
    assert index.expected_rerank_seconds(result, stage="rerank-b") == 0.0


def test_no_second_reranker_no_rerank_b(tiny, corpus):
    plain = build([corpus], Settings(dense_model=FALLBACK_DENSE_ID, rerankers=(str(tiny),), device="cpu",
                                     backend="torch"))
    assert plain.rerank_stages == ("rerank",)
    assert "rerank-b" not in plain.search("volcano magma", rerank_depth=3).stages
    with pytest.raises(ValueError, match="names no reranker of this index; its rerank stages are rerank"):
        plain.rerank(plain.retrieve("volcano magma", rerank_depth=3), stage="rerank-b")
    judgments = Judgments((Query("q1", "volcano magma"),), {"q1": {"volcano.txt": 1}})
    with pytest.raises(ValueError, match=r"rerank-b stage needs reranker B \(reranker number 2\), but 1 reranker"):
        evaluate(plain, judgments, stages=["bm25", "rerank-b"])


def test_three_rerankers_rerank_the_same_candidates_each_as_a_stage_compared_with_the_first(three):
    result = three.search("where does tea grow", k=4, rerank_depth=5)
    names = ("rerank", "rerank-b", "rerank-c")
    assert list(result.stages) == ["bm25", "dense", "hybrid", *names]
    reranked = [result.stages[name] for name in names]
    assert all(stage.error is None and len(stage.hits) == 5 for stage in reranked), [s.error for s in reranked]
    assert len({frozenset(hit.passage_id for hit in stage.hits) for stage in reranked}) == 1, "the same candidates"
    assert "MiniLM" in reranked[2].model and "late-interaction" in reranked[1].model.lower()
    comparison = compare(result, 4)
    assert [(one.first, one.second) for one in comparison.agreements] == [("rerank", "rerank-b"),
                                                                          ("rerank", "rerank-c")]
    assert all(hit.versus_a is not None for hit in comparison.reranked["rerank-c"]), "C's cards move against A"
    a_ranks = {hit.passage_id: hit.rank for hit in result.stages["rerank"].hits}
    assert all(hit.ranks["rerank"] == a_ranks[hit.passage_id] for hit in result.stages["rerank-c"].hits)
    judgments = Judgments((Query("q1", "where does tea grow"), Query("q2", "volcano magma")),
                          {"q1": {"tea.txt": 1}, "q2": {"volcano.txt": 1, "magma.txt": 1}})
    report = evaluate(three, judgments, rerank_depth=4)
    assert set(report.stages) == {"bm25", "dense", "hybrid", *names}
    assert set(report.agreements) == {"rerank-b", "rerank-c"} and report.agreements["rerank-c"].queries == 2
    assert {f"{name}_pairs_per_second" for name in names} <= set(report.timings_s)
    points = depth_tradeoff(three, judgments, depths=(2, 4))
    assert [p.stage for p in points] == ["rerank", "rerank", "rerank-b", "rerank-b", "rerank-c", "rerank-c"]


def test_evaluation_and_depth_tradeoff_cover_rerank_b(index):
    judgments = Judgments((Query("q1", "where does tea grow"), Query("q2", "volcano magma")),
                          {"q1": {"tea.txt": 1}, "q2": {"volcano.txt": 1, "magma.txt": 1}})
    report = evaluate(index, judgments, stages=["hybrid", "rerank", "rerank-b"], rerank_depth=4)
    assert set(report.stages) == {"hybrid", "rerank", "rerank-b"}
    assert "late-interaction" in report.models["rerank-b"].lower()
    assert report.agreements["rerank-b"].queries == 2 and report.agreements["rerank-b"].k == 10
    assert report.to_json()["agreements"]["rerank-b"]["queries"] == 2
    points = depth_tradeoff(index, judgments, depths=(2, 4), stages=("rerank", "rerank-b"))
    assert [(p.stage, p.depth) for p in points] == [("rerank", 2), ("rerank", 4), ("rerank-b", 2), ("rerank-b", 4)]
    assert [p.stage for p in depth_tradeoff(index, judgments, depths=(2,), stages=("rerank",))] == ["rerank"]


def test_a_saved_index_keeps_or_drops_the_second_reranker(index, tmp_path):
    index.save(tmp_path / "idx")
    assert Index.load(tmp_path / "idx").settings.rerankers[1].model == "late-interaction"
    one = replace(index.settings, rerankers=index.settings.rerankers[:1])
    assert Index.load(tmp_path / "idx", overrides=one).rerank_stages == ("rerank",)


# -- the CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("SEARCH_DENSE_MODEL", FALLBACK_DENSE_ID)
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


def test_cli_query_compares_two_rerankers_as_json(offline, tiny, corpus, capsys):
    assert main(["query", str(corpus), "--query", "where does tea grow", "--k", "3", "--rerank-depth", "5",
                 "--reranker-model", str(tiny), "--backend", "torch",
                 "--compare-reranker-model", "late-interaction-minilm", "--compare-backend", "onnx", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["stages"]) == ["bm25", "dense", "hybrid", "rerank", "rerank-b"]
    assert result["stages"]["rerank"]["model"] == str(tiny), "A: the tiny cross-encoder on torch (no suffix)"
    assert result["stages"]["rerank-b"]["model"].endswith("· onnx"), "B names its own backend"
    assert all("versus_a" in hit for hit in result["stages"]["rerank-b"]["hits"])
    (agreement_json,) = result["comparison"]["agreements"]
    assert agreement_json["stages"] == ["rerank", "rerank-b"] and agreement_json["candidates"] == 5
    assert -1.0 <= agreement_json["kendall_tau"] <= 1.0


def test_cli_query_text_names_the_agreement(offline, tiny, corpus, capsys):
    assert main(["query", str(corpus), "--query", "volcano magma", "--k", "3", "--rerank-depth", "4",
                 "--reranker-model", str(tiny), "--backend", "torch",
                 "--compare-reranker-model", "late-interaction"]) == 0
    out = capsys.readouterr().out
    assert "== rerank-b:" in out and " vs A" in out and "agreement A vs B (rerank, rerank-b): " in out, out
    assert "rerank-rerank-b" not in out
    assert "Kendall's tau" in out


def test_cli_eval_adds_rerank_b_and_the_mean_agreement(offline, tiny, tmp_path, capsys):
    data = tmp_path / "beir"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": name, "text": text}) + "\n"
                                               for name, text in DOCS.items()), encoding="utf-8")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "where does tea grow"}) + "\n"
                                        + json.dumps({"_id": "q2", "text": "volcano magma"}) + "\n", encoding="utf-8")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\ttea.txt\t1\nq2\tvolcano.txt\t1\n",
                                             encoding="utf-8")
    assert main(["eval", str(data), "--rerank-depth", "4", "--reranker-model", str(tiny), "--backend", "torch",
                 "--compare-reranker-model", "late-interaction", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["stages"]) == {"bm25", "dense", "hybrid", "rerank", "rerank-b"}
    assert report["agreements"]["rerank-b"]["queries"] == 2 and report["agreements"]["rerank-b"]["k"] == 10
    assert "rerank-b_pairs_per_second" in report["timings_s"]
    assert main(["eval", str(data), "--rerank-depth", "4", "--reranker-model", str(tiny), "--backend", "torch",
                 "--compare-reranker-model", "late-interaction"]) == 0
    out = capsys.readouterr().out
    assert "agreement A vs B (rerank, rerank-b), mean of 2 queries: " in out and "rerank-rerank-b" not in out, out


def test_cli_query_and_eval_take_three_rerankers(offline, tiny, corpus, tmp_path, capsys):
    rerankers = ["--reranker-model", str(tiny), "--reranker-model", "late-interaction",
                 "--reranker-model", "late-interaction-minilm@onnx"]
    assert main(["query", str(corpus), "--query", "where does tea grow", "--k", "3", "--rerank-depth", "4",
                 "--backend", "torch", *rerankers, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert list(result["stages"])[3:] == ["rerank", "rerank-b", "rerank-c"]
    assert result["stages"]["rerank-c"]["model"].endswith("· onnx"), "C runs on its own backend"
    assert [one["stages"] for one in result["comparison"]["agreements"]] == [["rerank", "rerank-b"],
                                                                             ["rerank", "rerank-c"]]
    data = tmp_path / "beir3"
    (data / "qrels").mkdir(parents=True)
    (data / "corpus.jsonl").write_text("".join(json.dumps({"_id": name, "text": text}) + "\n"
                                               for name, text in DOCS.items()), encoding="utf-8")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "volcano magma"}) + "\n", encoding="utf-8")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tvolcano.txt\t1\n", encoding="utf-8")
    assert main(["eval", str(data), "--rerank-depth", "4", "--backend", "torch", *rerankers]) == 0
    out = capsys.readouterr().out
    assert "agreement A vs B (rerank, rerank-b)" in out and "agreement A vs C (rerank, rerank-c)" in out, out
    assert "reranker C (rerank-c):" in out and "pairs/s" in out
