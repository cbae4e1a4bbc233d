"""The `tei` backend against this project's own server over loopback: real HTTP round trips whose scores and
embeddings equal the local models' (tiny XLM-R cross-encoder, bundled all-MiniLM-L6-v2), through the loader,
the score cache, the pipeline and the CLI."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from search import cli
from search.backends.tei import TEI_URL_ENV, TEIEncoder, TEIError, TEIReranker
from search.backends.torch_reranker import CrossEncoderReranker
from search.inference import RerankCancelled, RerankerUnavailable, sigmoid
from search.loading import load_dense_encoder, load_encoder, load_reranker
from search.models import MINILM_ID
from search.pipeline import Index, Settings, build
from search.score_cache import CachedReranker
from search.serve import ServeLimits, TEIService, create_app
from tests.tei_helpers import Answer, Received, Stub, stub_server, uvicorn_server
from tests.tiny_models import build_tiny_xlmr_cross_encoder
from ui.columns import render_column

QUERY = "Which river flows through Berlin?"
PASSAGES = ["The Spree flows through the centre of Berlin.", "Bananas are rich in potassium.",
            "Berlin has many bridges over its river.", "Tea grows on terraced hillsides.",
            "The Havel joins the Spree in Spandau.", "Bread rises in a warm kitchen.", "Rivers carry sand to the sea."]
DOCS = {"spree.txt": PASSAGES[0], "bananas.txt": PASSAGES[1], "bridges.txt": PASSAGES[2], "tea.txt": PASSAGES[3],
        "havel.txt": PASSAGES[4], "bread.txt": PASSAGES[5], "sand.txt": PASSAGES[6]}
BATCH = 3  # the server's max_client_batch_size: 7 passages take 3 requests


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-tei"), [QUERY, *PASSAGES] * 4)


@pytest.fixture(scope="module")
def served(tiny_folder):
    """The tiny cross-encoder and MiniLM served on 127.0.0.1; yields the URL."""
    # torch on both sides: the client's scores are compared with CrossEncoderReranker run here.
    service = TEIService.from_models(reranker=load_reranker(str(tiny_folder), "cpu", fallback=False, backend="torch"),
                                     encoder=load_dense_encoder(MINILM_ID, "cpu", fallback=False,
                                                                backend="torch"),
                                     limits=ServeLimits(max_client_batch_size=BATCH))
    with uvicorn_server(create_app(service)) as url:
        yield url


def test_reranker_scores_equal_the_local_model_in_input_order(served, tiny_folder):
    remote = TEIReranker(str(tiny_folder), served)
    model = CrossEncoderReranker(str(tiny_folder), "cpu")
    # The server scores each request's passages as one batch; batches of other shapes differ by float noise
    # (about 1e-5 on this deliberately wide-weighted model), so the local reference scores the same requests.
    local = [score for start in range(0, len(PASSAGES), BATCH)
             for score in model.score(QUERY, PASSAGES[start:start + BATCH])]
    scores = remote.score(QUERY, PASSAGES)
    assert len({round(s.raw, 4) for s in local}) == len(PASSAGES), "distinct scores, so order errors would show"
    for got, want, whole in zip(scores, local, model.score(QUERY, PASSAGES), strict=True):
        assert got.raw == pytest.approx(want.raw, abs=1e-5)
        assert got.sigmoid == pytest.approx(want.sigmoid, abs=1e-5)
        assert got.truncated is None, "truncation is the server's: unknown here"
        assert got.raw == pytest.approx(whole.raw, abs=1e-4)
    assert remote.label == f"{tiny_folder} via TEI ({served.removeprefix('http://')})"
    assert remote.latency().count == 1 + math.ceil(len(PASSAGES) / BATCH), "/info, then requests split to the limit"
    assert remote.latency().mean_s > 0 and remote.is_cross_encoder and remote.device == served


def test_encoder_embeddings_equal_the_local_model(served):
    remote = TEIEncoder(MINILM_ID, served)
    local = load_encoder(MINILM_ID, "cpu")
    assert (remote.model_id, remote.dimension, remote.max_length) == (MINILM_ID, 384, 256)
    seen = []
    vectors = remote.embed(PASSAGES, is_query=False, progress=lambda done, total: seen.append((done, total)))
    np.testing.assert_allclose(vectors, local.embed(PASSAGES, is_query=False), atol=1e-5)
    assert vectors.dtype == np.float32 and vectors.flags.c_contiguous
    assert seen == [(3, 7), (6, 7), (7, 7)], "one request (and report) per max_client_batch_size texts"
    np.testing.assert_allclose(remote.embed([QUERY], is_query=True), local.embed([QUERY], is_query=True), atol=1e-5)
    with pytest.raises(ValueError, match="--backend torch"):
        remote.token_embeddings(["tea"])


def test_progress_and_cancellation_follow_the_requests(served, tiny_folder):
    remote = TEIReranker(str(tiny_folder), served)
    seen = []
    remote.score(QUERY, PASSAGES, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(3, 7), (6, 7), (7, 7)]
    with pytest.raises(RerankCancelled) as cancelled:
        remote.score(QUERY, PASSAGES, should_stop=lambda: len(seen) > 3,
                     progress=lambda done, total: seen.append((done, total)))
    assert (cancelled.value.done, cancelled.value.total, sorted(cancelled.value.partial)) == (3, 7, [0, 1, 2])


def test_the_loader_builds_it_behind_the_score_cache_from_the_setting(served, tiny_folder, monkeypatch):
    monkeypatch.setenv(TEI_URL_ENV, served + "/")
    loaded = load_reranker(str(tiny_folder), "cpu", backend="tei", fallback=False)
    assert isinstance(loaded.model, CachedReranker) and isinstance(loaded.model.inner, TEIReranker)
    assert loaded.model.passage_caching() is None, "the endpoint scores every pair it is sent"
    assert loaded.fallback_reason is None and loaded.model.backend == "tei" and loaded.model.device == served
    assert load_reranker(str(tiny_folder), backend="tei", endpoint=served).model is loaded.model, "one per endpoint"
    query = "Where does the Havel meet the Spree?"
    first = loaded.model.score(query, PASSAGES)  # the server answers through RERANK_LOCK in this same process
    assert loaded.model.throughput().pairs == len(PASSAGES), "pairs/s measured as for a local model"
    assert loaded.model.score(query, PASSAGES) == first and loaded.model.uncached(query, PASSAGES) == 0
    local = load_reranker(str(tiny_folder), "cpu").model
    # Other batch shapes than the server's: float noise of about 1e-5 (see the first test).
    assert [s.raw for s in first] == pytest.approx([s.raw for s in local.score(query, PASSAGES)], abs=1e-4)
    encoder = load_dense_encoder(MINILM_ID, backend="tei").model
    assert isinstance(encoder, TEIEncoder) and encoder is load_encoder(MINILM_ID, backend="tei",
                                                                       endpoint=served)


def test_the_pipeline_runs_both_models_on_the_endpoint(served, tiny_folder, tmp_path):
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    common = {"dense_model": MINILM_ID, "rerankers": (str(tiny_folder),), "device": "cpu"}
    remote = build([tmp_path], Settings(**common, backend="tei", tei_url=served))
    local = build([tmp_path], Settings(**common))
    assert remote.report.dense_model.endswith(f"via TEI ({served.removeprefix('http://')})")
    np.testing.assert_allclose(remote.dense.embeddings, local.dense.embeddings, atol=1e-5)
    there, here = remote.search(QUERY, k=5, rerank_depth=5), local.search(QUERY, k=5, rerank_depth=5)
    for stage in ("bm25", "dense", "hybrid", "rerank"):
        assert [hit.passage_id for hit in there.stages[stage].hits] == \
            [hit.passage_id for hit in here.stages[stage].hits], stage
    rerank = there.stages["rerank"]
    assert "via TEI" in rerank.model and rerank.error is None and rerank.pairs_per_second
    assert all(hit.truncated is None for hit in rerank.hits)


def test_the_late_interaction_fallback_served_is_no_cross_encoder():
    service = TEIService.from_models(reranker=load_reranker("late-interaction", "cpu"))
    with uvicorn_server(create_app(service)) as url:
        remote = TEIReranker("late-interaction", url)
        scores = remote.score("green tea", ["green tea leaves", "volcanic rock"])
    assert not remote.is_cross_encoder and all(s.sigmoid is None for s in scores)
    assert scores[0].raw > scores[1].raw


def test_each_model_takes_the_endpoint_that_serves_its_kind(tiny_folder):
    reranker_only = TEIService.from_models(reranker=load_reranker(str(tiny_folder), "cpu", fallback=False))
    dense_only = TEIService.from_models(encoder=load_dense_encoder(MINILM_ID, "cpu"))
    with uvicorn_server(create_app(dense_only)) as dense_url, uvicorn_server(create_app(reranker_only)) as rerank_url:
        both = f"{dense_url}, {rerank_url}"
        assert TEIReranker("any", both).device == rerank_url
        assert TEIEncoder("any", both).device == dense_url
        with pytest.raises(RerankerUnavailable, match="no TEI endpoint serves a reranker") as error:
            TEIReranker("BAAI/bge-reranker-v2-m3", dense_url)
        assert f"serves {MINILM_ID} (an embedding model)" in str(error.value)
        assert TEI_URL_ENV in str(error.value) and "--backend torch" in str(error.value)
        with pytest.raises(TEIError, match="no TEI endpoint serves an embedding model") as error:
            TEIEncoder("intfloat/multilingual-e5-small", rerank_url)
        assert error.value.kind == "wrong-model"


def test_a_reranker_whose_endpoint_stops_gives_the_stage_an_error_and_keeps_the_rest(tiny_folder, tmp_path):
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    index = build([tmp_path], Settings(dense_model=MINILM_ID, rerankers=(str(tiny_folder),), device="cpu"))
    service = TEIService.from_models(reranker=load_reranker(str(tiny_folder), "cpu", fallback=False))
    with uvicorn_server(create_app(service)) as url:
        loaded = load_reranker(str(tiny_folder), backend="tei", endpoint=url, fallback=False)
    result = index.rerank(index.retrieve("bridges over the river", k=3, rerank_depth=3), loaded)
    stage = result.stages["rerank"]
    assert stage.hits == () and "connection refused" in stage.error and TEI_URL_ENV in stage.error
    assert "Traceback" not in stage.error and len(result.stages["hybrid"].hits) == 3


def test_the_cli_reaches_the_endpoint_with_tei_url(served, tiny_folder, tmp_path, capsys):
    passages = tmp_path / "passages.json"
    passages.write_text(json.dumps(PASSAGES[:3]), encoding="utf-8")
    code = cli.main(["rerank", "--backend", "tei", "--tei-url", served, "--model", str(tiny_folder),
                     "--query", QUERY, "--passages", str(passages), "--json"])
    captured = capsys.readouterr()
    assert code == 0 and f"via TEI ({served.removeprefix('http://')})" in captured.err
    rows = json.loads(captured.out)
    local = CrossEncoderReranker(str(tiny_folder), "cpu").score(QUERY, PASSAGES[:3])
    assert [row["raw"] for row in rows] == pytest.approx([s.raw for s in local], abs=1e-5)
    assert [row["sigmoid"] for row in rows] == pytest.approx([sigmoid(s.raw) for s in local], abs=1e-5)
    assert all(row["truncated"] is None for row in rows)


# -- a saved index and a dense endpoint that fails ----------------------------------------------------

def write_docs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_loading_an_index_on_an_endpoint_serving_another_model_is_refused(tmp_path):
    """Same dimension, other model: the saved embeddings would be compared with another model's."""
    index = build([write_docs(tmp_path / "docs")], Settings(dense_model=MINILM_ID, device="cpu"))
    folder = index.save(tmp_path / "index")
    other = {"model_id": "intfloat/multilingual-e5-small", "model_type": {"embedding": {"pooling": "mean"}},
             "max_input_length": 512, "max_client_batch_size": 8, "auto_truncate": True}
    vector = [1.0] + [0.0] * (index.dense.embeddings.shape[1] - 1)

    def answer(request: Received, stub: Stub) -> Answer:
        return Answer(body=other) if request.path == "/info" else Answer(body=[vector for _ in request.body["inputs"]])

    with stub_server(answer) as stub:
        with pytest.raises(ValueError) as error:
            Index.load(folder, overrides=replace(index.settings, backend="tei", tei_url=stub.url))
    message = str(error.value)
    assert MINILM_ID in message and "intfloat/multilingual-e5-small" in message
    assert TEI_URL_ENV in message and "--backend torch" in message
    assert Index.load(folder).encoder.model.model_id == MINILM_ID, "the local load still works"


def test_a_dense_endpoint_that_stops_fails_dense_and_hybrid_and_keeps_bm25(tmp_path, capsys):
    service = TEIService.from_models(encoder=load_dense_encoder(MINILM_ID, "cpu", fallback=False))
    settings = Settings(dense_model=MINILM_ID, rerankers=("late-interaction",), device="cpu")
    with uvicorn_server(create_app(service)) as url:
        index = build([write_docs(tmp_path)], replace(settings, backend="tei", tei_url=url))
    result = index.retrieve("bridges over the river", k=3, rerank_depth=3)
    assert [hit.text for hit in result.stages["bm25"].hits][:1] == [PASSAGES[2]] and not result.stages["bm25"].error
    for stage in ("dense", "hybrid"):
        assert result.stages[stage].hits == () and "connection refused" in result.stages[stage].error, stage
        assert "Traceback" not in result.stages[stage].error
    reranked = index.rerank(result)
    assert reranked.stages["rerank"].hits == () and "hybrid stage failed" in reranked.stages["rerank"].error
    from_bm25 = index.search("bridges over the river", k=3, rerank_depth=3, candidates_from="bm25")
    assert len(from_bm25.stages["rerank"].hits) == len(from_bm25.stages["bm25"].hits) == 2, (
        "the BM25 candidates are reranked: the passages with 'bridges' or 'river' ('over the' matches nothing)")
    assert from_bm25.stages["dense"].error
    html = render_column(result.stages["dense"], result, k=3)
    assert "connection refused" in html
