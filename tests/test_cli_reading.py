"""`python -m search index` names every file it skipped and why, hostile ones included."""

from __future__ import annotations

import json

import pytest

from search.cli import main
from search.models import FALLBACK_DENSE_ID
from tests.hostile_inputs import GOOD_TEXT, hostile_cases


@pytest.fixture(autouse=True)
def offline_models(monkeypatch, tmp_path):
    monkeypatch.setenv("SEARCH_DENSE_MODEL", FALLBACK_DENSE_ID)
    monkeypatch.setenv("SEARCH_RERANKER_MODEL", "late-interaction")


def test_index_lists_each_skipped_file_with_its_reason(tmp_path, capsys):
    corpus = tmp_path / "upload"
    corpus.mkdir()
    (corpus / "good.txt").write_text(GOOD_TEXT, encoding="utf-8")
    for name in ("zip-version-8.4.zip", "zero-width-only.txt", "unterminated-tags.html"):  # the last: text "x"
        (corpus / name).write_bytes(hostile_cases()[name])
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--no-cache"]) == 0
    captured = capsys.readouterr()
    assert "2 documents, 2 passages from 3 file(s)" in captured.out, captured.out
    assert f"passages per file, largest first: {corpus}/good.txt 1, {corpus}/unterminated-tags.html 1" \
        in captured.out, captured.out
    assert "2 skipped (a file, row, line or page) and 0 warning(s)" in captured.out, captured.out
    assert f"skipped: {corpus}/zip-version-8.4.zip: not a readable zip archive (zip file version 8.4); " \
           "skipped" in captured.err, captured.err
    assert f"skipped: {corpus}/zero-width-only.txt: empty text: only invisible characters" in captured.err


def test_the_encoding_flag_reads_files_the_guess_gets_wrong(tmp_path, capsys):
    text = "Миналата седмица ходихме на планина и видяхме много диви цветя."
    corpus = tmp_path / "upload"
    corpus.mkdir()
    (corpus / "bg.txt").write_bytes(text.encode("koi8-r"))
    assert main(["index", str(corpus), "--out", str(tmp_path / "guessed"), "--no-cache"]) == 0
    assert "the CLI's --encoding koi8-r" in capsys.readouterr().err, "a low-confidence guess names the flag"
    assert main(["query", str(corpus), "--query", "планина", "--encoding", "KOI8-R", "--no-cache",
                 "--rerank-depth", "0"]) == 0
    captured = capsys.readouterr()
    assert "ходихме на планина" in captured.out, captured.out
    assert "decoded as koi8-r, the encoding given for the upload" in captured.err, captured.err
    assert main(["index", str(corpus), "--out", str(tmp_path / "bad"), "--encoding", "klingon"]) != 0
    assert "encoding='klingon' is not a text encoding Python knows" in capsys.readouterr().err


def test_eval_reads_the_corpus_with_the_encoding_flag_and_query_index_refuses_it(tmp_path, capsys):
    text = "Миналата седмица ходихме на планина и видяхме много диви цветя."
    folder = tmp_path / "bg-beir"
    (folder / "qrels").mkdir(parents=True)
    record = json.dumps({"_id": "bg-1", "text": text}, ensure_ascii=False)
    (folder / "corpus.jsonl").write_bytes(record.encode("koi8-r"))
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "планина цветя"}\n', encoding="utf-8")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tbg-1\t1\n", encoding="utf-8")
    assert main(["eval", str(folder), "--encoding", "koi8-r", "--stages", "bm25", "--rerank-depth", "0",
                 "--no-cache", "--json"]) == 0
    captured = capsys.readouterr()
    assert "decoded as koi8-r, the encoding given for the upload" in captured.err, captured.err
    assert json.loads(captured.out)["stages"]["bm25"]["ndcg@10"] == 1.0, captured.out
    assert main(["query", "--index", str(tmp_path / "any"), "--query", "x", "--encoding", "koi8-r"]) == 2
    assert "a saved index keeps what it was built from" in capsys.readouterr().err


def test_the_text_column_flag_is_stripped_and_a_bad_one_refused_before_reading(tmp_path, capsys):
    corpus = tmp_path / "upload"
    corpus.mkdir()
    (corpus / "items.csv").write_text("sku,Beschreibung\n1,Ein roter Stuhl aus Eiche\n", encoding="utf-8")
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--no-cache",
                 "--text-column", "  Beschreibung "]) == 0
    assert "1 documents, 1 passages from 1 file(s)" in capsys.readouterr().out
    assert main(["index", str(corpus), "--out", str(tmp_path / "bad"), "--text-column", "Besch\x07reibung"]) != 0
    err = capsys.readouterr().err
    assert "text_column='Besch\\x07reibung' holds the control character '\\x07'" in err, err
    assert not (tmp_path / "bad").exists(), "refused before anything was read or built"
