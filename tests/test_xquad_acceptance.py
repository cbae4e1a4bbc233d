"""The engine issues' acceptance figures on XQuAD, through `python -m search eval` as a user runs it, with
the offline models: the bundled 4-bit multilingual-e5-small and the late-interaction reranker.

Slow (about 30 minutes on 2 CPUs; the indexes are built once and shared by the tests): run with
`python -m pytest -m slow`. Skips cleanly when ../shared/xquad is absent, as in a fresh clone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from search.cli import main
from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, LATE_INTERACTION_LABEL

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "xquad"
LANGUAGES = ("en", "de", "es", "ru", "ar", "hi", "zh")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (XQUAD / "xquad.en.json").is_file(), reason=f"XQuAD not found at {XQUAD}"),
]


@pytest.fixture(scope="module")
def index_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("xquad-indexes")


@pytest.fixture(autouse=True)
def offline_models(monkeypatch, index_cache):
    monkeypatch.setenv("SEARCH_DENSE_MODEL", FALLBACK_DENSE_ID)
    monkeypatch.setenv("SEARCH_RERANKER_MODEL", "late-interaction")
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(index_cache))


def _eval(capsys, *argv: str) -> dict:
    assert main(["eval", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _xquad(language: str) -> str:
    return str(XQUAD / f"xquad.{language}.json")


def test_bm25_dense_and_language_detection_in_every_language(capsys):
    bm25, dense = {}, {}
    for language in LANGUAGES:
        report = _eval(capsys, _xquad(language), "--stages", "bm25,dense")
        bm25[language] = report["stages"]["bm25"]["ndcg@10"]
        dense[language] = report["stages"]["dense"]["ndcg@10"]
        detected = report["languages"].get(language, 0) / report["passages"]
        assert detected >= 0.995, f"{language}: {detected:.2%} of passages detected ({report['languages']})"
        assert report["queries"] == 1190 and report["models"]["dense"].startswith(FALLBACK_LABEL)
    assert sum(bm25.values()) / len(bm25) >= 0.95, bm25
    assert min(bm25.values()) >= 0.93, bm25
    assert sum(dense.values()) / len(dense) >= 0.93, dense
    assert min(dense.values()) >= 0.90, dense


def test_english_questions_over_every_other_languages_paragraphs(capsys):
    dense = {}
    for language in LANGUAGES[1:]:
        report = _eval(capsys, _xquad(language), "--queries-from", _xquad("en"), "--stages", "bm25,dense,hybrid")
        assert report["languages"].get(language, 0) / report["passages"] >= 0.995, report["languages"]
        assert report["query_languages"].get("en", 0) >= 1185, report["query_languages"]
        dense[language] = report["stages"]["dense"]["ndcg@10"]
        hybrid, bm25 = report["stages"]["hybrid"]["ndcg@10"], report["stages"]["bm25"]["ndcg@10"]
        # No paragraph is in the questions' language, so the fusion gives BM25 no weight: hybrid is dense.
        assert hybrid >= dense[language] - 1e-9 and hybrid > bm25, (language, report["stages"])
    assert sum(dense.values()) / len(dense) >= 0.85, dense


def test_english_dense_hybrid_and_rerank(capsys):
    report = _eval(capsys, _xquad("en"), "--stages", "dense,hybrid")
    assert report["stages"]["dense"]["ndcg@10"] >= 0.96, report["stages"]
    assert report["stages"]["hybrid"]["ndcg@10"] >= 0.975, report["stages"]
    reranked = _eval(capsys, _xquad("en"), "--stages", "hybrid,rerank", "--max-queries", "300", "--rerank-depth", "20")
    # The label names the backend when it is not torch: "... · onnx".
    assert reranked["models"]["rerank"].startswith(LATE_INTERACTION_LABEL)
    assert reranked["stages"]["rerank"]["ndcg@10"] >= 0.98, reranked["stages"]


@pytest.mark.parametrize("language", ["de", "zh"])
def test_the_offline_reranker_does_not_lose_to_the_stage_it_reranks(capsys, language):
    # Measured against RRF's hybrid (German 0.9663, Chinese 0.9737) the late-interaction fallback lifted both.
    # The relative-score hybrid is stronger in one language (German 0.9783): there late interaction, which is
    # not a cross-encoder, sits 0.004 below it (0.9744; docs/ranking.md), so it may trail by at most 0.005.
    reranked = _eval(capsys, _xquad(language), "--stages", "hybrid,rerank", "--max-queries", "300",
                     "--rerank-depth", "20")
    assert reranked["stages"]["rerank"]["ndcg@10"] >= reranked["stages"]["hybrid"]["ndcg@10"] - 0.005, \
        reranked["stages"]
    rrf = _eval(capsys, _xquad(language), "--stages", "hybrid,rerank", "--max-queries", "300", "--rerank-depth",
                "20", "--fusion", "rrf")
    assert rrf["stages"]["rerank"]["ndcg@10"] >= rrf["stages"]["hybrid"]["ndcg@10"], rrf["stages"]
