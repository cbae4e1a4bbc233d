"""search.compare on tiny hand-built results with rankings checked by hand, and the CLI and exports that report it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from search.compare import (
    Comparison,
    Movement,
    RerankedHit,
    StageOverlap,
    best_per_document,
    compare,
    found_by,
    is_lifted,
    movement,
    movements,
    overlap,
    overlaps,
    stages_that_ran,
)
from search.export import CSV_COLUMNS, result_to_dict, results_to_csv
from search.types import StageResult
from tests.hand_made import make_hit, make_result, make_stage, ranked

ROOT = Path(__file__).resolve().parents[1]

# -- one stage against another ---------------------------------------------------------------------


def test_movement_up_down_same_and_new():
    hit = make_hit("a#0", 2, ranks={"bm25": 8, "dense": 1, "hybrid": 2})
    assert movement(hit, "bm25", 10) == Movement("up", "bm25", 8, 2, "↑6 from BM25 #8")
    assert movement(hit, "dense", 10).text == "↓1 from dense #1"
    assert movement(hit, "hybrid", 10) == Movement("same", "hybrid", 2, 2, "= hybrid #2")
    third = make_hit("b#0", 3, ranks={"dense": 1})
    assert movement(third, "dense", 10).text == "↓2 from dense #1"
    assert movement(third, "dense", 10).kind == "down"


def test_movement_not_in_top_k_is_new():
    absent = make_hit("a#0", 1, ranks={"dense": None})
    assert movement(absent, "dense", 10) == Movement("new", "dense", None, 1, "new: not in dense top-10")
    deep = make_hit("a#0", 1, ranks={"dense": 14})
    assert movement(deep, "dense", 10).kind == "new", "rank 14 is outside the dense top-10 the user saw"
    assert movement(deep, "dense", 10).text == "new: not in dense top-10 (was #14)"
    assert movement(deep, "dense", 20).text == "↑13 from dense #14", "with k=20, #14 was visible"
    with pytest.raises(ValueError, match="rerank"):
        movement(deep, "rerank", 10)
    with pytest.raises(ValueError, match="k=0"):
        movement(deep, "dense", 0)


def test_found_by_and_lifted():
    hit = make_hit("a#0", 2, ranks={"bm25": 17, "dense": 4, "hybrid": 9})
    assert found_by(hit, 10) == ("dense",), "BM25 #17 is outside the top-10"
    assert found_by(hit, 20) == ("bm25", "dense")
    assert found_by(make_hit("a#0", 3, ranks={"dense": 2}), 10, stage="bm25") == ("bm25", "dense")
    assert found_by(make_hit("a#0", 1, ranks={"hybrid": 1}), 10) == (), "hybrid only fuses; it finds nothing itself"
    assert is_lifted(hit, "bm25", 10), "BM25 #17 -> rerank #2 with k=10 is lifted"
    assert not is_lifted(hit, "hybrid", 10), "hybrid #9 was visible in the top-10"
    assert not is_lifted(make_hit("a#0", 4, ranks={"bm25": 17}), "bm25", 10), "rerank #4 is outside the top 3"
    assert not is_lifted(make_hit("a#0", 1, ranks={"bm25": None}), "bm25", 10), "not returned is not lifted"


def test_overlap_shared_and_jaccard():
    bm25 = make_stage("bm25", ranked("a", "b", "c", "d"))
    dense = make_stage("dense", ranked("c", "a", "e", "f"))
    # top-3: {a, b, c} and {c, a, e}: 2 shared of 4 distinct
    assert overlap(bm25, dense, 3) == (2, 0.5)
    # top-4: {a, b, c, d} and {c, a, e, f}: 2 shared of 6 distinct
    shared, jaccard = overlap(bm25, dense, 4)
    assert shared == 2 and jaccard == pytest.approx(1 / 3)
    assert overlap(bm25, bm25, 4) == (4, 1.0)
    assert overlap(make_stage("bm25", []), make_stage("dense", []), 10) == (0, 0.0)


def test_best_per_document_keeps_the_first_passage_of_each_document():
    hits = [make_hit("A#0", 1), make_hit("A#1", 2), make_hit("B#0", 3), make_hit("A#2", 4), make_hit("C#4", 5)]
    assert [h.passage_id for h in best_per_document(hits)] == ["A#0", "B#0", "C#4"]
    assert best_per_document([]) == ()


# -- a whole search --------------------------------------------------------------------------------


def four_stages():
    """bm25 a b c d | dense c a e | hybrid a c b | rerank c e a (from hybrid, depth 3 of a deeper list).

    e is hybrid #5 (below the top-3), reranked to #2: lifted at k=3.
    """
    bm25 = make_stage("bm25", ranked("a", "b", "c", "d"))
    dense = make_stage("dense", ranked("c", "a", "e"))
    hybrid = make_stage("hybrid", ranked("a", "c", "b", "d", "e"))
    rerank = make_stage("rerank", [
        make_hit("c", 1, ranks={"bm25": 3, "dense": 1, "hybrid": 2}),
        make_hit("e", 2, ranks={"bm25": None, "dense": 3, "hybrid": 5}),
        make_hit("a", 3, ranks={"bm25": 1, "dense": 2, "hybrid": 1}),
    ])
    return bm25, dense, hybrid, rerank


def test_movements_put_the_candidate_stage_first_and_skip_stages_that_did_not_run():
    bm25, dense, hybrid, rerank = four_stages()
    result = make_result([bm25, dense, hybrid, rerank], candidates_from="hybrid")
    e = rerank.hits[1]
    assert movements(e, result, 3) == (
        Movement("new", "hybrid", 5, 2, "new: not in hybrid top-3 (was #5)"),
        Movement("new", "bm25", None, 2, "new: not in BM25 top-3"),
        Movement("up", "dense", 3, 2, "↑1 from dense #3"),
    )
    failed = make_result([bm25, StageResult("dense", (), 0.0, error="no model"), hybrid, rerank])
    assert [move.against for move in movements(e, failed, 3)] == ["hybrid", "bm25"], "dense did not run"
    assert stages_that_ran(failed) == ("bm25", "hybrid", "rerank")


def test_overlaps_of_every_pair_that_ran():
    bm25, dense, hybrid, rerank = four_stages()
    pairs = overlaps(make_result([bm25, dense, hybrid, rerank]), 3)
    # top-3: bm25 {a,b,c}, dense {c,a,e}, hybrid {a,c,b}, rerank {c,e,a}
    assert pairs == (
        StageOverlap("bm25", "dense", 3, 2, 0.5),
        StageOverlap("bm25", "hybrid", 3, 3, 1.0),
        StageOverlap("dense", "hybrid", 3, 2, 0.5),
        StageOverlap("bm25", "rerank", 3, 2, 0.5),
        StageOverlap("dense", "rerank", 3, 3, 1.0),
        StageOverlap("hybrid", "rerank", 3, 2, 0.5),
    )
    failed = StageResult("rerank", (), 0.0, error="no model")
    assert [(p.first, p.second) for p in overlaps(make_result([bm25, dense, failed]), 3)] == [("bm25", "dense")]
    with pytest.raises(ValueError, match="k=0"):
        overlaps(make_result([bm25, dense]), 0)


def test_compare_reports_each_reranked_hit_in_the_top_k():
    bm25, dense, hybrid, rerank = four_stages()
    comparison = compare(make_result([bm25, dense, hybrid, rerank]), 3)
    assert isinstance(comparison, Comparison) and comparison.k == 3 and len(comparison.overlaps) == 6
    assert comparison.reranked["rerank"] == (
        RerankedHit("c", 1, (Movement("up", "hybrid", 2, 1, "↑1 from hybrid #2"),
                             Movement("up", "bm25", 3, 1, "↑2 from BM25 #3"),
                             Movement("same", "dense", 1, 1, "= dense #1")), ("bm25", "dense"), False),
        RerankedHit("e", 2, (Movement("new", "hybrid", 5, 2, "new: not in hybrid top-3 (was #5)"),
                             Movement("new", "bm25", None, 2, "new: not in BM25 top-3"),
                             Movement("up", "dense", 3, 2, "↑1 from dense #3")), ("dense",), True),
        RerankedHit("a", 3, (Movement("down", "hybrid", 1, 3, "↓2 from hybrid #1"),
                             Movement("down", "bm25", 1, 3, "↓2 from BM25 #1"),
                             Movement("down", "dense", 2, 3, "↓1 from dense #2")), ("bm25", "dense"), False),
    )
    assert [hit.passage_id for hit in compare(make_result([bm25, dense, hybrid, rerank]), 2).reranked["rerank"]] == \
        ["c", "e"]
    assert compare(make_result([bm25, dense, hybrid]), 3).reranked == {}, "no rerank stage, nothing reranked"


# -- reported by the exports and the CLI ----------------------------------------------------------


def test_json_export_carries_movements_found_by_lifted_and_overlaps():
    result = make_result(list(four_stages()))
    exported = json.loads(json.dumps(result_to_dict(result, 3), ensure_ascii=False))
    assert exported["comparison"]["k"] == 3
    assert exported["comparison"]["overlap"][0] == {"stages": ["bm25", "dense"], "k": 3, "shared": 2, "jaccard": 0.5}
    assert len(exported["comparison"]["overlap"]) == 6
    e = exported["stages"]["rerank"]["hits"][1]
    assert (e["passage_id"], e["found_by"], e["lifted"]) == ("e", ["dense"], True)
    assert e["movements"][0] == {"against": "hybrid", "kind": "new", "before": 5, "after": 2,
                                 "text": "new: not in hybrid top-3 (was #5)"}
    assert "movements" not in exported["stages"]["bm25"]["hits"][0], "only reranked hits moved"
    everything = result_to_dict(result)  # k None: every hit, compared at the longest list's depth (5)
    assert everything["comparison"]["k"] == 5
    assert everything["stages"]["rerank"]["hits"][1]["movements"][0]["kind"] == "up", "hybrid #5 is in a top-5"


def test_csv_export_has_movement_found_by_and_lifted_on_rerank_rows():
    rows = list(csv.DictReader(io.StringIO(results_to_csv(make_result(list(four_stages())), k=3), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    reranked = {row["passage_id"]: row for row in rows if row["stage"] == "rerank"}
    e = reranked["e"]
    assert (e["movement_from_hybrid"], e["movement_from_bm25"], e["movement_from_dense"]) == ("new", "new", "up")
    assert (e["found_by"], e["lifted"]) == ("dense", "true")
    assert (reranked["c"]["found_by"], reranked["c"]["lifted"]) == ("bm25 dense", "false")
    first_stage = next(row for row in rows if row["stage"] == "bm25")
    assert (first_stage["movement_from_hybrid"], first_stage["found_by"], first_stage["lifted"]) == ("", "", "")


def test_cli_query_prints_movements_and_overlaps(monkeypatch, tmp_path, capsys):
    from search.cli import main
    from search.models import FALLBACK_DENSE_ID

    monkeypatch.setenv("SEARCH_DENSE_MODEL", FALLBACK_DENSE_ID)
    monkeypatch.setenv("SEARCH_RERANKER_MODEL", "late-interaction")
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    corpus = ROOT / "corpora" / "mixed-formats"
    assert main(["query", str(corpus), "--query", "Rhein Alpen", "--k", "3", "--rerank-depth", "5"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    reranked = lines[lines.index(next(line for line in lines if line.startswith("== rerank"))) + 1:]
    assert any(" · found by " in line and "hybrid #" in line.split(" · ")[0] for line in reranked), out
    assert "overlap bm25-dense: " in out and "shared@3, Jaccard@3 " in out, out
    assert main(["query", str(corpus), "--query", "Rhein Alpen", "--k", "3", "--rerank-depth", "5", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["comparison"]["k"] == 3 and exported["comparison"]["overlap"], exported["comparison"]
    top = exported["stages"]["rerank"]["hits"][0]
    assert top["movements"][0]["against"] == "hybrid" and isinstance(top["lifted"], bool), top
