"""Judgments in and out: readers with broken lines, writers and round trips, every upload form of
`load_judgments`, matching against a corpus, and the results CSV."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile

import ir_measures
import pytest

from search.export import CSV_COLUMNS, results_to_csv
from search.judgments import (
    MAX_LISTED_UNMATCHED,
    Judgments,
    Query,
    load_judgments,
    match_judgments,
    qrels_to_trec,
    queries_to_tsv,
    read_judgments,
    read_qrels,
    read_queries,
    run_to_trec,
)
from search.reading import ReadLimits
from search.types import UNKNOWN_LANGUAGE, Hit, Language, Passage, SearchResult, StageResult

QUERIES_JSONL = '{"_id": "q1", "text": "what is tea"}\n{"_id": "q2", "text": "where is Lhasa"}\n'
QRELS_TSV = "query-id\tcorpus-id\tscore\nq1\ttea-en\t2\nq1\ttea-de\t1\nq2\tlhasa\t1\n"
CORPUS_JSONL = '{"_id": "tea-en", "title": "Tea", "text": "Tea is a drink."}\n'


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- readers ------------------------------------------------------------------------------------------

def test_query_tsv_keeps_good_lines_and_names_bad_ones(tmp_path):
    path = _write(tmp_path / "queries.tsv", "q1\twhat is tea\nbroken line without tab\nq2\twhere is Lhasa\n"
                                            "q1\tdup\n\nq3\t   \n")
    queries, problems = read_queries(path)
    assert [(q.query_id, q.text) for q in queries] == [("q1", "what is tea"), ("q2", "where is Lhasa")]
    assert [p.line for p in problems] == [2, 4, 6], problems
    assert str(problems[0]).startswith("queries.tsv, line 2:")
    assert "appears again (first on line 1)" in problems[1].message


def test_query_tsv_header_is_skipped_and_the_display_name_is_used(tmp_path):
    path = _write(tmp_path / "tmp3x9q.tsv", "id\ttext\nq1\tChai\n")
    queries, problems = read_queries(path, name="my queries.tsv")
    assert queries == (Query("q1", "Chai"),) and problems == ()
    _, problems = read_queries(_write(tmp_path / "tmp4.tsv", "oops\n"), name="my queries.tsv")
    assert str(problems[0]).startswith("my queries.tsv, line 1:"), problems


def test_query_jsonl_bad_json_and_non_objects(tmp_path):
    path = _write(tmp_path / "queries.jsonl",
                  '{"_id": "q1", "text": "Chai"}\n{not json\n[1, 2]\n{"_id": "q3"}\n{"_id": 4, "text": "茶"}\n')
    queries, problems = read_queries(path)
    assert [(q.query_id, q.text) for q in queries] == [("q1", "Chai"), ("4", "茶")]
    assert [p.line for p in problems] == [2, 3, 4], problems
    assert "not valid JSON" in problems[0].message and "JSON object" in problems[1].message


def test_trec_qrels_broken_lines_and_sources(tmp_path):
    path = _write(tmp_path / "qrels.trec", "q1 0 tea-en 2\nq1 0 tea-de one\nq2 0 lhasa 1\nq9 0 x 1\nonly two\n"
                                           "q2 0 half 0.5\nq2 0 whole 1.0\nq1 0 tea-en 0\n")
    qrels, problems, sources = read_qrels(path)
    assert qrels == {"q1": {"tea-en": 2}, "q2": {"lhasa": 1, "whole": 1}, "q9": {"x": 1}}
    assert [p.line for p in problems] == [2, 5, 6, 8], problems
    assert str(problems[0]) == "qrels.trec, line 2: grade 'one' is not a whole number; line skipped"
    assert "found 2 fields" in problems[1].message
    assert "first grade 2 (line 1) is kept" in problems[3].message
    assert sources[("q2", "lhasa")] == ("qrels.trec", 3) and sources[("q2", "whole")] == ("qrels.trec", 7)


def test_beir_qrels_with_header_and_ids_with_spaces(tmp_path):
    path = _write(tmp_path / "test.tsv", "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\nq1\tmy notes#0\t2\n")
    result = read_qrels(path)
    assert result.qrels == {"q1": {"d1": 1, "d2": 0, "my notes#0": 2}} and result.problems == ()
    assert result.sources[("q1", "d1")] == ("test.tsv", 2)


def test_read_judgments_names_the_file_and_line_of_unknown_queries(tmp_path):
    queries = _write(tmp_path / "queries.tsv", "q1\twhat is tea\nq2\twhere is Lhasa\n")
    qrels = _write(tmp_path / "qrels.trec", "q1 0 tea-en 2\nq2 0 lhasa 1\nq9 0 x 1\nq9 0 y 1\nq8 0 z 1\n")
    judgments = read_judgments(queries, qrels)
    assert set(judgments.qrels) == {"q1", "q2"}
    assert judgments.sources == {("q1", "tea-en"): ("qrels.trec", 1), ("q2", "lhasa"): ("qrels.trec", 2)}
    (problem,) = judgments.problems
    assert (problem.source, problem.line) == ("qrels.trec", 3), problem
    assert "q9 (lines 3, 4)" in problem.message and "q8 (line 5)" in problem.message
    assert "not in queries.tsv" in problem.message


# -- writers ------------------------------------------------------------------------------------------

def test_qrels_round_trip(tmp_path):
    qrels = {"q2": {"b#0": 1, "a": 0}, "q1": {"tea-en": 2}}
    text = qrels_to_trec(qrels)
    assert text == "q1 0 tea-en 2\nq2 0 a 0\nq2 0 b#0 1\n"
    parsed = read_qrels(_write(tmp_path / "qrels.trec", text))
    assert parsed.qrels == qrels and parsed.problems == ()


def test_queries_round_trip(tmp_path):
    queries = (Query("q1", "what is tea"), Query("q2", "где Лхаса?"), Query("q3", "茶"))
    text = queries_to_tsv(queries)
    assert read_queries(_write(tmp_path / "queries.tsv", text)) == (queries, ())
    assert queries_to_tsv([Query("q4", "two\nlines\tand a tab")]) == "q4\ttwo lines and a tab\n"


def test_run_round_trip_through_ir_measures(tmp_path):
    rankings = {"q2": [("b", 3.0), ("a#1", 0.1)], "q1": [("x", -1.5)]}
    text = run_to_trec(rankings, "explorer-bm25")
    assert text.splitlines()[0] == "q2 Q0 b 1 3.0 explorer-bm25"
    read = [(r.query_id, r.doc_id, r.score) for r in ir_measures.read_trec_run(str(_write(tmp_path / "run", text)))]
    assert read == [("q2", "b", 3.0), ("q2", "a#1", 0.1), ("q1", "x", -1.5)]


@pytest.mark.parametrize(("call", "message"), [
    (lambda: qrels_to_trec({"q1": {"my notes#0": 1}}), "'my notes#0'"),
    (lambda: queries_to_tsv([Query("q 1", "tea")]), "'q 1'"),
    (lambda: run_to_trec({"q1": [("a", 1.0)]}, "my run"), "run name 'my run'"),
    (lambda: run_to_trec({"q1": [("a", 2.0), ("a", 1.0)]}, "run"), "ranked twice"),
])
def test_writers_refuse_what_trec_files_cannot_hold(call, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# -- load_judgments -----------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [0, 1])
def test_two_uploaded_files_in_either_order(tmp_path, order):
    # Uploads arrive under temporary names; `names` carries the originals, and content decides the role.
    queries = _write(tmp_path / "upload1", "q1\twhat is tea 2\nq2\twhere is Lhasa\n")
    qrels = _write(tmp_path / "upload2", "q1 0 tea-en 2\nq2 0 lhasa 1\nq9 0 x 1\n")
    pairs = [(queries, "topics.txt"), (qrels, "judged.txt")][::1 if order == 0 else -1]
    judgments = load_judgments([path for path, _ in pairs], names=[name for _, name in pairs])
    assert [q.query_id for q in judgments.queries] == ["q1", "q2"]
    assert judgments.queries[0].text == "what is tea 2", "a query TSV line ending in a number is still a query"
    assert judgments.qrels == {"q1": {"tea-en": 2}, "q2": {"lhasa": 1}}
    assert judgments.sources[("q2", "lhasa")] == ("judged.txt", 2)
    (problem,) = judgments.problems
    assert (problem.source, problem.line) == ("judged.txt", 3) and "q9" in problem.message, problem


def test_several_qrels_files_are_merged(tmp_path):
    queries = _write(tmp_path / "queries.jsonl", QUERIES_JSONL)
    first = _write(tmp_path / "a.qrels", "q1 0 tea-en 2\n")
    second = _write(tmp_path / "b.tsv", "q2\tlhasa\t1\nq1\ttea-en\t1\n")
    judgments = load_judgments([first, queries, second])
    assert judgments.qrels == {"q1": {"tea-en": 2}, "q2": {"lhasa": 1}}
    (problem,) = judgments.problems
    assert (problem.source, problem.line) == ("b.tsv", 2) and "a.qrels, line 1" in problem.message, problem


def _beir_folder(root):
    _write(root / "corpus.jsonl", CORPUS_JSONL)
    _write(root / "queries.jsonl", QUERIES_JSONL)
    _write(root / "qrels" / "test.tsv", QRELS_TSV)
    _write(root / "qrels" / "train.tsv", "query-id\tcorpus-id\tscore\nq1\tother\t1\n")
    return root


def _zip(folder, target, top=""):
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, top + path.relative_to(folder).as_posix())
        archive.writestr("__MACOSX/._queries.jsonl", b"\x00\x05junk")
    return target


def _check_beir(judgments, prefix):
    assert [q.query_id for q in judgments.queries] == ["q1", "q2"]
    assert judgments.qrels == {"q1": {"tea-en": 2, "tea-de": 1}, "q2": {"lhasa": 1}}, "test.tsv, not train.tsv"
    assert judgments.sources[("q1", "tea-de")] == (f"{prefix}qrels/test.tsv", 3)
    assert judgments.problems == ()


def test_beir_folder(tmp_path):
    _check_beir(load_judgments([_beir_folder(tmp_path / "scifact")]), "scifact/")


def test_beir_zip(tmp_path):
    archive = _zip(_beir_folder(tmp_path / "scifact"), tmp_path / "upload.zip")
    _check_beir(load_judgments([archive], names=["scifact.zip"]), "scifact.zip!")


def test_beir_zip_with_a_nested_top_folder(tmp_path):
    archive = _zip(_beir_folder(tmp_path / "scifact"), tmp_path / "scifact.zip", top="datasets/scifact/")
    _check_beir(load_judgments([archive]), "scifact.zip!datasets/scifact/")


def test_zip_without_test_split_uses_dev_and_says_so(tmp_path):
    root = tmp_path / "beir"
    _write(root / "queries.jsonl", QUERIES_JSONL)
    _write(root / "qrels" / "dev.tsv", "q1\ttea-en\t1\n")
    _write(root / "qrels" / "train.tsv", "q2\tlhasa\t1\n")
    judgments = load_judgments([_zip(root, tmp_path / "beir.zip")])
    assert judgments.qrels == {"q1": {"tea-en": 1}}
    (problem,) = judgments.problems
    assert not problem.skipped and "qrels/dev.tsv" in problem.message and "qrels/train.tsv" in problem.message


def test_a_queries_file_alone_asks_for_the_qrels(tmp_path):
    queries = _write(tmp_path / "queries.jsonl", QUERIES_JSONL)
    with pytest.raises(ValueError, match="no qrels file among queries.jsonl: upload the relevance judgments"):
        load_judgments([queries])
    root = tmp_path / "no-qrels"
    _write(root / "corpus.jsonl", CORPUS_JSONL)
    _write(root / "queries.jsonl", QUERIES_JSONL)
    with pytest.raises(ValueError, match="TREC qrels"):
        load_judgments([_zip(root, tmp_path / "no-qrels.zip")])


def test_qrels_alone_ask_for_the_queries_and_other_files_are_named(tmp_path):
    qrels = _write(tmp_path / "qrels.trec", "q1 0 tea-en 2\n")
    corpus = _write(tmp_path / "corpus.jsonl", CORPUS_JSONL)
    notes = _write(tmp_path / "notes.md", "# Notes\n")
    with pytest.raises(ValueError, match="no queries file among qrels.trec, corpus.jsonl, notes.md") as error:
        load_judgments([qrels, corpus, notes])
    assert "queries.jsonl" in str(error.value) and "notes.md: neither qrels" in str(error.value)


def test_qrels_that_match_no_query_or_hold_nothing_are_refused(tmp_path):
    queries = _write(tmp_path / "queries.jsonl", QUERIES_JSONL)
    other = _write(tmp_path / "other.trec", "x1 0 tea-en 1\nx2 0 lhasa 1\n")
    with pytest.raises(ValueError, match="no judgment of other.trec names a query.*x1 \\(line 1\\)"):
        load_judgments([queries, other])
    broken = _write(tmp_path / "broken.qrels", "q1 0 tea-en high\n")
    with pytest.raises(ValueError, match="broken.qrels hold\\(s\\) no judgment \\(broken.qrels, line 1: grade"):
        load_judgments([queries, broken])


def test_misuse_and_limits(tmp_path):
    with pytest.raises(ValueError, match="single path"):
        load_judgments(str(tmp_path))
    with pytest.raises(ValueError, match="one name per path"):
        load_judgments([tmp_path], names=[])
    root = _beir_folder(tmp_path / "big")
    archive = _zip(root, tmp_path / "big.zip")
    with pytest.raises(ValueError, match="max_file_bytes=40"):
        load_judgments([archive], limits=ReadLimits(max_file_bytes=40))


def test_not_utf8_is_a_problem_not_a_crash(tmp_path):
    queries = _write(tmp_path / "queries.jsonl", QUERIES_JSONL)
    qrels = tmp_path / "qrels.trec"
    qrels.write_bytes("q1 0 caf\u00e9 1\n".encode("latin-1"))
    with pytest.raises(ValueError, match="qrels.trec is not UTF-8 text"):
        load_judgments([queries, qrels])


# -- matching a corpus --------------------------------------------------------------------------------

PASSAGES = [Passage("tea-en#0", "tea-en", 0, "Tea"), Passage("tea-en#1", "tea-en", 1, "more tea"),
            Passage("lhasa#0", "lhasa", 0, "Lhasa")]


def test_document_level_names_the_file_and_line_of_an_unknown_id():
    judgments = Judgments((Query("q1", "tea"), Query("q2", "Lhasa")),
                          {"q1": {"tea-en": 2, "tea-zz": 1}, "q2": {"lhasa": 1, "tea-en": 0}},
                          sources={("q1", "tea-en"): ("qrels.trec", 1), ("q1", "tea-zz"): ("qrels.trec", 2),
                                   ("q2", "lhasa"): ("qrels.trec", 3), ("q2", "tea-en"): ("qrels.trec", 4)})
    match = match_judgments(judgments, PASSAGES)
    assert (match.level, match.judged, match.matched) == ("document", 3, 2)
    (problem,) = match.problems
    assert str(problem).startswith("qrels.trec, line 2: judged id 'tea-zz' (query 'q1')"), problem
    assert not problem.skipped


def test_passage_level_when_passage_ids_match_more():
    judgments = Judgments((Query("q1", "tea"),), {"q1": {"tea-en#1": 2, "lhasa#0": 0, "tea-en#7": 1}})
    match = match_judgments(judgments, PASSAGES)
    assert (match.level, match.judged, match.matched) == ("passage", 3, 2)
    assert [p.source for p in match.problems] == ["qrels"] and "'tea-en#7'" in match.problems[0].message


def test_unmatched_ids_are_listed_up_to_the_cap():
    missing = {f"gone-{i:03}": 1 for i in range(MAX_LISTED_UNMATCHED + 7)}
    sources = {("q1", judged): ("big.qrels", line) for line, judged in enumerate(missing, start=1)}
    match = match_judgments(Judgments((Query("q1", "x"),), {"q1": {**missing, "lhasa": 1}}, sources=sources),
                            PASSAGES)
    assert len(match.problems) == MAX_LISTED_UNMATCHED + 1
    assert [p.line for p in match.problems[:3]] == [1, 2, 3]
    assert match.problems[-1].message == "… and 7 more judged ids that are not in the corpus"


# -- results CSV --------------------------------------------------------------------------------------

def test_results_csv_quotes_commas_quotes_and_newlines():
    german = Language("de", "de", 0.99)
    tricky = 'Tea, "chai"\nand more'
    bm25 = StageResult("bm25", (
        Hit("tea-en#0", "tea-en", 1, 3.5, german, tricky, "Tea, hot", ranks={"rerank": 2}),
        Hit("lhasa#0", "lhasa", 2, 1.25, UNKNOWN_LANGUAGE, "Lhasa", ranks={"rerank": None}),
    ), 0.01)
    rerank = StageResult("rerank", (
        Hit("tea-en#0", "tea-en", 2, -0.5, german, tricky, "Tea, hot", ranks={"bm25": 1}, sigmoid=0.377),
    ), 0.2)
    result = SearchResult("tea, or \"chai\"?", german, {"bm25": bm25, "rerank": rerank})
    rows = list(csv.DictReader(io.StringIO(results_to_csv(result), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [(r["stage"], r["rank"], r["passage_id"]) for r in rows] == [
        ("bm25", "1", "tea-en#0"), ("bm25", "2", "lhasa#0"), ("rerank", "2", "tea-en#0")]
    first = rows[0]
    assert first["text"] == tricky and first["title"] == "Tea, hot" and first["query"] == 'tea, or "chai"?'
    assert (first["rank_in_bm25"], first["rank_in_rerank"], first["rank_in_dense"]) == ("1", "2", "")
    assert (first["score"], first["sigmoid"], first["language"]) == ("3.5", "", "de")
    assert rows[2]["sigmoid"] == "0.377" and rows[1]["rank_in_rerank"] == ""
    assert len(list(csv.reader(io.StringIO(results_to_csv(result, k=1), newline="")))) == 3


def test_json_export_still_round_trips():
    # The JSON form is export.result_to_dict; the CSV must not have changed it.
    from search.export import result_to_dict

    result = SearchResult("q", UNKNOWN_LANGUAGE, {"bm25": StageResult("bm25", (), 0.0)})
    assert json.loads(json.dumps(result_to_dict(result)))["stages"]["bm25"]["hits"] == []


def test_grades_too_large_for_trec_eval_are_problems(tmp_path):
    from search.judgments import read_qrels

    path = tmp_path / "q.trec"
    path.write_text("q1 0 d1 1\nq1 0 d2 123456789012345678901234567890\n", encoding="utf-8")
    parsed = read_qrels(path)
    assert parsed.qrels == {"q1": {"d1": 1}}
    assert [problem.line for problem in parsed.problems] == [2]


def test_unsafe_zip_member_names_are_reported_like_the_corpus_reader_does(tmp_path):
    archive = _zip(_beir_folder(tmp_path / "scifact"), tmp_path / "upload.zip")
    with zipfile.ZipFile(archive, "a") as extra:
        for name in ("../queries.jsonl", "/qrels/test.tsv", "C:/qrels/dev.tsv", "..\\evil.tsv"):
            extra.writestr(zipfile.ZipInfo(name), "q9\tevil\t1\n")
    judgments = load_judgments([archive], names=["scifact.zip"])
    assert judgments.qrels == {"q1": {"tea-en": 2, "tea-de": 1}, "q2": {"lhasa": 1}}, "the unsafe members unread"
    assert sorted(str(problem) for problem in judgments.problems) == [
        f"scifact.zip!{name}: unsafe member name (absolute or '..' path); skipped"
        for name in sorted(("../queries.jsonl", "/qrels/test.tsv", "C:/qrels/dev.tsv", "..\\evil.tsv"))
    ], judgments.problems


def test_query_ids_of_any_length_are_read(tmp_path):
    long_id = "9" * 5000
    queries = _write(tmp_path / "queries.jsonl", f'{{"_id": {long_id}, "text": "long"}}\n' + QUERIES_JSONL)
    qrels = _write(tmp_path / "qrels.tsv", QRELS_TSV + f"{long_id}\ttea-en\t1\n")
    judgments = load_judgments([queries, qrels])
    assert [query.query_id for query in judgments.queries] == [long_id, "q1", "q2"]
    assert judgments.qrels[long_id] == {"tea-en": 1}


def test_a_crash_while_parsing_one_file_costs_only_that_file(tmp_path, monkeypatch):
    from search import judgments as module

    parse = module._parse_qrels

    def fragile(text, name):
        if name == "second.trec":
            raise IndexError("a bug")
        return parse(text, name)

    monkeypatch.setattr(module, "_parse_qrels", fragile)
    queries = _write(tmp_path / "queries.jsonl", QUERIES_JSONL)
    first = _write(tmp_path / "first.trec", "q1 0 tea-en 1\n")
    second = _write(tmp_path / "second.trec", "q2 0 lhasa 1\n")
    judgments = load_judgments([queries, first, second])
    assert judgments.qrels == {"q1": {"tea-en": 1}}
    assert [str(problem) for problem in judgments.problems] == [
        "second.trec: could not be read (IndexError: a bug); skipped"]
