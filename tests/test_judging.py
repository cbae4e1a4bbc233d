"""Judging in place, on hand-made results: marks, metrics of judged queries, exports and loading back."""

from __future__ import annotations

import pytest

from search.judgments import Judgments, Query, load_judgments
from search.types import UNKNOWN_LANGUAGE, Hit, Language, SearchResult, StageResult
from ui import judging

EN = Language("en", "en", 0.99)


def _result(query: str, stages: dict[str, list[str]]) -> SearchResult:
    built = {}
    for name, passage_ids in stages.items():
        hits = tuple(Hit(pid, pid.split("#")[0], rank, 1.0 / rank, UNKNOWN_LANGUAGE, f"text of {pid}")
                     for rank, pid in enumerate(passage_ids, start=1))
        built[name] = StageResult(name, hits, 0.01, "model")
    return SearchResult(query, EN, built, "bm25", 3)


def test_marks_build_qrels_and_metrics_per_stage():
    result = _result("tea history", {"bm25": ["a#0", "b#0", "c#0"], "dense": ["c#0", "a#0", "b#0"],
                                     "hybrid": ["a#0", "c#0", "b#0"], "rerank": ["c#0", "b#0", "a#0"]})
    session = judging.SessionJudgments()
    session = judging.judge(session, result, "c#0", 2)
    session = judging.judge(session, result, "a#0", 0)
    session = judging.judge(session, result, "a#0", 1)  # a later mark replaces the earlier one
    assert session.queries == (Query("u1", "tea history"),)
    assert session.qrels == {"u1": {"c#0": 2, "a#0": 1}}
    assert session.grades_for(result) == {"c#0": 2, "a#0": 1}
    metrics = judging.judged_metrics(session)
    assert metrics["dense"]["mrr@10"] == pytest.approx(1.0), "dense ranks c#0 first"
    assert metrics["bm25"]["mrr@10"] == pytest.approx(1.0), "bm25 ranks a#0 (grade 1) first"
    assert metrics["dense"]["ndcg@10"] > metrics["bm25"]["ndcg@10"], "the grade-2 passage first scores higher"
    with pytest.raises(ValueError, match="grade=3"):
        judging.judge(session, result, "b#0", 3)


def test_a_second_query_gets_its_own_id():
    first = _result("q one", {"bm25": ["a#0"]})
    second = _result("q two", {"bm25": ["b#0"]})
    session = judging.judge(judging.judge(judging.SessionJudgments(), first, "a#0", 1), second, "b#0", 2)
    assert [q.query_id for q in session.queries] == ["u1", "u2"]
    assert session.judgment_count == 2


def test_exports_load_back_into_a_new_session(tmp_path):
    result = _result("tea history", {"bm25": ["a#0", "b#0"], "rerank": ["b#0", "a#0"]})
    session = judging.judge(judging.SessionJudgments(), result, "b#0", 2)
    files, left_out = judging.export_files(session)
    assert left_out == {}
    assert files["qrels.trec"].split() == ["u1", "0", "b#0", "2"]
    assert files["queries.tsv"].strip() == "u1\ttea history"
    assert files["run-bm25.trec"].splitlines()[0].split()[:4] == ["u1", "Q0", "a#0", "1"]
    assert "run-rerank.trec" in files
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    loaded = load_judgments([tmp_path / "qrels.trec", tmp_path / "queries.tsv"])
    restored = judging.merge(judging.SessionJudgments(), loaded)
    assert restored.qrels == {"u1": {"b#0": 2}}
    assert restored.grades_for(result) == {"b#0": 2}


def test_merge_keeps_existing_query_ids_and_adds_new_ones():
    result = _result("tea history", {"bm25": ["a#0"]})
    session = judging.judge(judging.SessionJudgments(), result, "a#0", 1)
    loaded = Judgments((Query("u1", "another query"), Query("x", "tea history")),
                       {"u1": {"z#0": 2}, "x": {"b#0": 1}})
    merged = judging.merge(session, loaded)
    assert merged.qrels["u1"] == {"a#0": 1, "b#0": 1}, "marks for the same query text join its id"
    other = next(q.query_id for q in merged.queries if q.text == "another query")
    assert other != "u1" and merged.qrels[other] == {"z#0": 2}


# -- downloads: results.csv cells a spreadsheet would run, TREC files per file --------------------------

def test_results_csv_neutralises_formula_cells_and_keeps_negative_numbers():
    import csv
    import io

    from search.export import results_to_csv

    hostile = {"=HYPERLINK(\"http://evil.example\",\"x\")": "=", "+1+cmd|' /C calc'!A0": "+",
               "-2+3+cmd|' /C calc'!A0": "-", "@SUM(A1:A2)": "@", "\tstarts with a tab": "\t",
               "\rstarts with CR": "\r"}
    hits = tuple(Hit(f"p{i}#0", f"p{i}", i, -0.5 * i, UNKNOWN_LANGUAGE, text, title=text)
                 for i, text in enumerate(hostile, start=1))
    result = SearchResult("=1+1", EN, {"rerank": StageResult("rerank", hits, 0.01, "m")}, "bm25", 3)
    rows = list(csv.DictReader(io.StringIO(results_to_csv(result), newline="")))
    assert [row["text"] for row in rows] == ["'" + text for text in hostile], "every formula start is quoted"
    assert all(row["title"] == row["text"] for row in rows) and all(row["query"] == "'=1+1" for row in rows)
    assert [row["score"] for row in rows] == ["-0.5", "-1.0", "-1.5", "-2.0", "-2.5", "-3.0"], \
        "negative scores stay numbers"


@pytest.mark.parametrize(("cell", "expected"), [
    ("-12", "-12"), ("-0.25", "-0.25"), ("+3", "+3"), ("-1e-05", "-1e-05"), (-7.5, -7.5), (3, 3),
    ("-1+2", "'-1+2"), ("-", "'-"), ("-inf", "'-inf"), ("- bullet point", "'- bullet point"),
    ("plain text", "plain text"), ("a=b", "a=b"), ("", ""), (None, None),
])
def test_neutralise_cell(cell, expected):
    from search.export import neutralise_cell

    assert neutralise_cell(cell) == expected


def test_an_id_with_a_space_leaves_out_only_the_files_that_hold_it():
    # An uploaded `my notes.txt` gives passage ids like `my notes#0`, which TREC files cannot hold.
    result = _result("tea history", {"bm25": ["a#0", "my notes#0"], "dense": ["a#0", "b#0"],
                                     "rerank": ["b#0", "my notes#0"]})
    session = judging.judge(judging.SessionJudgments(), result, "a#0", 2)
    files, left_out = judging.export_files(session)
    assert sorted(files) == ["qrels.trec", "queries.tsv", "run-dense.trec"], "files without the id still come"
    assert sorted(left_out) == ["run-bm25.trec", "run-rerank.trec"]
    assert all("'my notes#0'" in reason for reason in left_out.values()), left_out
    session = judging.judge(session, result, "my notes#0", 1)
    files, left_out = judging.export_files(session)
    assert "qrels.trec" in left_out and "'my notes#0'" in left_out["qrels.trec"]
    assert "queries.tsv" in files and "run-dense.trec" in files
