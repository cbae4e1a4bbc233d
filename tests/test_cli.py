"""`python -m search` as a user runs it: index, query, eval on the sample corpus, rerank."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from search.cli import main
from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, LATE_INTERACTION_LABEL
from tests.tiny_models import build_tiny_xlmr_cross_encoder

ROOT = Path(__file__).resolve().parents[1]
MIXED = ROOT / "corpora" / "mixed-formats"
POLYGLOT = ROOT / "corpora" / "polyglot-facts"


@pytest.fixture(autouse=True)
def offline_models(monkeypatch, tmp_path):
    monkeypatch.setenv("SEARCH_DENSE_MODEL", FALLBACK_DENSE_ID)
    monkeypatch.setenv("SEARCH_RERANKER_MODEL", "late-interaction")
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))


def test_index_then_query_the_saved_index_as_json(tmp_path, capsys):
    assert main(["index", str(MIXED), "--out", str(tmp_path / "idx")]) == 0
    out = capsys.readouterr().out
    assert "6 file(s)" in out and "saved to" in out, out
    assert main(["query", "--index", str(tmp_path / "idx"), "--query", "Rhein", "--k", "3", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout holds the JSON document alone
    assert list(result["stages"]) == ["bm25", "dense", "hybrid", "rerank"]
    top = result["stages"]["bm25"]["hits"][0]
    assert top["language"] == "de" and "Rhein" in top["text"], top
    # The offline models: the bundled e5 in its fastest form, and labels that say which ("... · int8 (...)").
    dense_form = result["stages"]["dense"]["model"].removeprefix(FALLBACK_LABEL)
    assert dense_form.startswith(" · "), result["stages"]["dense"]["model"]
    assert result["stages"]["rerank"]["model"] == LATE_INTERACTION_LABEL + dense_form, "the same e5 in the same form"
    assert len(result["stages"]["hybrid"]["hits"]) == 3


def test_query_files_directly_and_report_skipped_lines(tmp_path, capsys):
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"_id": "n1", "text": "Der Rhein fließt durch Basel."}\nnot json\n', encoding="utf-8")
    assert main(["query", str(bad), "--query", "Basel", "--rerank-depth", "0"]) == 0
    captured = capsys.readouterr()
    assert "notes.jsonl, line 2" in captured.err, captured.err
    assert "n1#0" in captured.out


def test_eval_on_the_sample_corpus_prints_one_json_object(capsys):
    assert main(["eval", str(POLYGLOT), "--stages", "bm25,dense,hybrid,rerank", "--rerank-depth", "10",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["queries"] == 44 and report["passages"] >= 80
    assert len(report["languages"]) == 10, report["languages"]
    assert set(report["stages"]) == {"bm25", "dense", "hybrid", "rerank"}
    for metrics in report["stages"].values():
        assert set(metrics) == {"ndcg@10", "mrr@10", "recall@10", "recall@100"}
        assert all(0.0 <= value <= 1.0 for value in metrics.values())
    # Every query has its grade-2 answer in its own language, which BM25 finds nearly always.
    assert report["stages"]["bm25"]["mrr@10"] > 0.9, report["stages"]["bm25"]
    assert report["models"]["rerank"] == LATE_INTERACTION_LABEL + report["models"]["dense"].removeprefix(FALLBACK_LABEL)
    assert report["level"] == "document" and report["matched_ids"] == report["judged_ids"] == 80
    # What the app is for: offline, the bundled multilingual model finds the other languages' versions too.
    ndcg = {stage: metrics["ndcg@10"] for stage, metrics in report["stages"].items()}
    assert ndcg["dense"] > ndcg["bm25"] and ndcg["hybrid"] > ndcg["bm25"], ndcg
    assert report["models"]["dense"].startswith(FALLBACK_LABEL) and len(report["query_languages"]) == 10

    tea_question = "茶是什么时候传入日本的？"
    assert main(["query", str(POLYGLOT / "corpus.jsonl"), "--query", tea_question, "--rerank-depth", "0",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for stage in ("dense", "hybrid"):
        top = result["stages"][stage]["hits"][0]
        assert top["doc_id"].startswith("tea-"), (stage, top["doc_id"], top["text"][:60])


def test_rerank_command_scores_in_input_order(tmp_path, capsys):
    passages = ["Tea grows on hills.", "चाय पहाड़ियों पर उगती है।", "茶树生长在山坡上。", "Bees make honey."]
    folder = build_tiny_xlmr_cross_encoder(tmp_path / "tiny", passages * 5)
    file = tmp_path / "passages.json"
    file.write_text(json.dumps(passages, ensure_ascii=False), encoding="utf-8")
    assert main(["rerank", "--model", str(folder), "--query", "where does tea grow", "--passages", str(file),
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    from search.loading import load_reranker

    expected = load_reranker(str(folder), "cpu", fallback=False).model.score("where does tea grow", passages)
    assert [row["raw"] for row in rows] == pytest.approx([s.raw for s in expected], abs=1e-6)
    assert all(row["sigmoid"] == pytest.approx(1 / (1 + pytest.importorskip("math").exp(-row["raw"])))
               for row in rows)


def test_rerank_reads_one_passage_per_line(tmp_path, capsys):
    file = tmp_path / "passages.txt"
    file.write_text("Bees make honey.\n\nVolcanoes erupt.\n", encoding="utf-8")
    assert main(["rerank", "--query", "honey", "--passages", str(file), "--json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert len(rows) == 2 and rows[0]["raw"] > rows[1]["raw"] and rows[0]["sigmoid"] is None
    assert "late-interaction fallback, not a cross-encoder" in captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (["query", "--query", "x"], "either corpus PATHs or --index"),
    (["query", "--index", "/nonexistent/idx", "--query", "x"], "no saved index"),
    (["eval", "/nonexistent/data"], "neither a SQuAD"),
    (["query", str(MIXED / "hindi-monsoon.txt"), "--query", "x", "--k", "0"], "k=0"),
])
def test_bad_input_exits_2_with_a_message_naming_the_fix(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_bad_passages_file(tmp_path, capsys):
    file = tmp_path / "p.json"
    file.write_text('["a",\n oops]', encoding="utf-8")
    assert main(["rerank", "--query", "x", "--passages", str(file)]) == 2
    assert "line 2" in capsys.readouterr().err


def test_python_dash_m_search_runs_as_a_program(tmp_path):
    done = subprocess.run([sys.executable, "-m", "search", "--help"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0 and "index" in done.stdout and "eval" in done.stdout


def test_backend_flag_and_environment(tmp_path, capsys, monkeypatch):
    file = tmp_path / "passages.txt"
    file.write_text("Bees make honey.\nVolcanoes erupt.\n", encoding="utf-8")
    assert main(["rerank", "--backend", "torch", "--query", "honey", "--passages", str(file), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2

    with pytest.raises(SystemExit) as refused:
        main(["rerank", "--backend", "tpu", "--query", "honey", "--passages", str(file)])
    assert refused.value.code == 2 and "choose from 'auto', 'torch'" in capsys.readouterr().err

    monkeypatch.setenv("SEARCH_BACKEND", "tpu")
    assert main(["rerank", "--query", "honey", "--passages", str(file)]) == 2
    assert "SEARCH_BACKEND='tpu' is not allowed: it takes one of auto, torch" in capsys.readouterr().err


def test_a_beir_folder_is_indexed_by_its_corpus_only(tmp_path, capsys):
    folder = tmp_path / "tiny-beir"
    folder.mkdir()
    (folder / "corpus.jsonl").write_text('{"_id": "owl", "title": "Owls", "text": "Owls hunt mice at night."}\n'
                                         '{"_id": "tea", "title": "Tea", "text": "Tea grows on misty hills."}\n',
                                         encoding="utf-8")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "When do owls hunt?"}\n', encoding="utf-8")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\towl\t1\n", encoding="utf-8")
    assert main(["query", str(folder), "--query", "owls hunt", "--rerank-depth", "0", "--no-cache", "--json"]) == 0
    captured = capsys.readouterr()
    seen = {hit["doc_id"] for stage in json.loads(captured.out)["stages"].values() for hit in stage["hits"]}
    assert seen == {"owl", "tea"}, "the queries and qrels are not passages"
    assert f"note: {folder} is a BEIR folder: indexing its corpus.jsonl only" in captured.err, captured.err
