"""`search.serve` answers as TEI does: every response of POST /rerank, POST /embed, GET /info and GET /health,
errors included, is checked against TEI's OpenAPI schemas (tests/tei_openapi) over real HTTP on 127.0.0.1,
and against the local models' own answers."""

from __future__ import annotations

import math

import httpx
import numpy as np
import pytest

from search.loading import load_dense_encoder, load_reranker, resolve_backend
from search.models import MINILM_ID
from search.serve import (
    SERVE_TEI_ENV,
    ServeLimits,
    TEIService,
    create_app,
    mount_tei_routes,
    tei_routes_enabled,
)
from tests.tei_helpers import check_response, uvicorn_server, validate
from tests.tiny_models import build_tiny_xlmr_cross_encoder

QUERY = "Which river flows through Berlin?"
PASSAGES = ["The Spree flows through the centre of Berlin.", "Bananas are rich in potassium.",
            "Berlin has many bridges over its river.", "Tea grows on hillsides."]
LIMITS = ServeLimits(max_client_batch_size=4, payload_limit=4000)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-serve"), [QUERY, *PASSAGES] * 5)


@pytest.fixture(scope="module")
def reranker(tiny_folder):
    return load_reranker(str(tiny_folder), "cpu", fallback=False)


@pytest.fixture(scope="module")
def encoder():
    return load_dense_encoder(MINILM_ID, "cpu", fallback=False)


@pytest.fixture(scope="module")
def both(reranker, encoder):
    with uvicorn_server(create_app(TEIService.from_models(reranker=reranker, encoder=encoder, limits=LIMITS))) as url:
        yield url


@pytest.fixture(scope="module")
def dense_only(encoder):
    with uvicorn_server(create_app(TEIService.from_models(encoder=encoder, limits=LIMITS))) as url:
        yield url


@pytest.fixture(scope="module")
def rerank_only(reranker):
    with uvicorn_server(create_app(TEIService.from_models(reranker=reranker, limits=LIMITS))) as url:
        yield url


def post(url: str, path: str, body, **kwargs) -> httpx.Response:
    response = httpx.post(url + path, json=body, timeout=30, **kwargs)
    check_response(path, "post", response)
    return response


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_type"], body["error"]


# -- answers ------------------------------------------------------------------------------------------

def test_rerank_answers_sorted_ranks_with_sigmoids_or_raw_scores(both, reranker):
    local = reranker.model.inner.score(QUERY, PASSAGES)
    validate({"query": QUERY, "texts": PASSAGES}, "RerankRequest")
    ranks = post(both, "/rerank", {"query": QUERY, "texts": PASSAGES}).json()
    assert [rank["index"] for rank in ranks] == sorted(range(4), key=lambda i: -local[i].raw), "sorted by score"
    assert all("text" not in rank for rank in ranks), "text only with return_text"
    for rank in ranks:
        assert rank["score"] == pytest.approx(local[rank["index"]].sigmoid, abs=1e-6)
    raw = post(both, "/rerank", {"query": QUERY, "texts": PASSAGES, "raw_scores": True, "return_text": True}).json()
    for rank in raw:
        assert rank["score"] == pytest.approx(local[rank["index"]].raw, abs=1e-6)
        assert rank["text"] == PASSAGES[rank["index"]]


def test_embed_answers_normalised_vectors_for_one_text_or_a_list(both, encoder):
    local = encoder.model.embed(PASSAGES, is_query=False)
    batch = np.array(post(both, "/embed", {"inputs": PASSAGES}).json())
    assert batch.shape == (4, 384)
    np.testing.assert_allclose(batch, local, atol=1e-5)
    single = post(both, "/embed", {"inputs": PASSAGES[0], "normalize": True, "truncate": True}).json()
    assert len(single) == 1 and np.allclose(single[0], local[0], atol=1e-5)
    plain = np.array(post(both, "/embed", {"inputs": PASSAGES[:2], "normalize": False}).json())
    assert not np.allclose(np.linalg.norm(plain, axis=1), 1.0), "normalize=false gives the pooled vectors as they are"
    np.testing.assert_allclose(plain / np.linalg.norm(plain, axis=1, keepdims=True), local[:2], atol=1e-5)


def test_embed_adds_no_prefix_the_client_would_add(tmp_path):
    """TEI embeds the text as given: an E5-style encoder's "query: " prefix is the client's to add."""
    from dataclasses import replace

    encoder = load_dense_encoder(MINILM_ID, "cpu").model
    prefixed = _with_spec(encoder, replace(encoder.spec, query_prefix="query: ", passage_prefix="passage: "))
    service = TEIService.from_models(encoder=prefixed)
    vectors = np.array(service.embed({"inputs": ["green tea"]}))
    np.testing.assert_allclose(vectors, encoder.embed(["green tea"], is_query=False), atol=1e-6)
    assert not np.allclose(vectors, prefixed.embed(["green tea"], is_query=False), atol=1e-3)
    assert prefixed.spec.query_prefix == "query: ", "the served encoder itself is left as it was"


def _with_spec(encoder, spec):
    import copy

    view = copy.copy(encoder)
    view.spec = spec
    return view


def test_info_describes_the_reranker_first_and_lists_every_model(both, rerank_only, dense_only, tiny_folder):
    info = httpx.get(both + "/info", timeout=10)
    check_response("/info", "get", info)
    info = info.json()
    assert info["model_id"] == str(tiny_folder) and "reranker" in info["model_type"]
    assert info["max_client_batch_size"] == 4 and info["auto_truncate"] is True
    assert info["max_input_length"] == 512, "the tiny XLM-R's window: 514 positions less 2"
    assert [model["model_id"] for model in info["models"]] == [str(tiny_folder), MINILM_ID]
    assert info["models"][1]["max_input_length"] == 256, "MiniLM's window"
    for url, kind in ((rerank_only, "reranker"), (dense_only, "embedding")):
        answer = httpx.get(url + "/info", timeout=10)
        check_response("/info", "get", answer)
        assert list(answer.json()["model_type"]) == [kind]


def test_health_is_200_when_the_models_load_and_503_when_they_cannot(both):
    response = httpx.get(both + "/health", timeout=10)
    check_response("/health", "get", response)
    assert response.status_code == 200

    def broken():
        raise OSError("no model folder at /nowhere")

    with uvicorn_server(create_app(TEIService(broken))) as url:
        response = httpx.get(url + "/health", timeout=10)
        check_response("/health", "get", response)
        assert error_of(response)[:2] == (503, "Unhealthy") and "/nowhere" in response.json()["error"]
        info = httpx.get(url + "/info", timeout=10)
        assert info.status_code == 503 and info.json()["error_type"] == "Unhealthy"


# -- errors, with TEI's status codes ------------------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/rerank", {"query": QUERY, "texts": []}, (400, "Empty", "`texts` cannot be empty")),
    ("/embed", {"inputs": []}, (400, "Empty", "`inputs` cannot be empty")),
    ("/rerank", {"query": QUERY, "texts": PASSAGES * 2}, (422, "Validation", "batch size 8 > maximum allowed batch "
                                                                             "size 4")),
    ("/embed", {"inputs": PASSAGES * 2}, (422, "Validation", "batch size 8 > maximum allowed batch size 4")),
    ("/rerank", {"query": QUERY, "texts": ["river " * 600], "truncate": False},
     (422, "Validation", "`inputs` must have less than 512 tokens")),
    ("/embed", {"inputs": ["river " * 300], "truncate": False}, (422, "Validation", "less than 256 tokens")),
    ("/rerank", {"query": QUERY}, (422, "Validation", "missing field `texts`")),
    ("/rerank", {"query": QUERY, "texts": [1, 2]}, (422, "Validation", "list of strings")),
    ("/embed", {"inputs": [[101, 102]]}, (422, "Validation", "token-id inputs are not supported")),
    ("/embed", {"inputs": ["a"], "prompt_name": "query"}, (422, "Validation", "`prompt_name`")),
    ("/rerank", {"query": "   ", "texts": PASSAGES}, (400, "Empty", "`query` cannot be empty")),
    ("/rerank", {"query": QUERY, "texts": PASSAGES, "truncation_direction": "Left"},
     (422, "Validation", "truncates on the right only")),
])
def test_bad_requests_get_teis_status_and_error_body(both, path, body, expected):
    if "query" in body and "texts" in body and all(isinstance(text, str) for text in body["texts"]):
        validate(body, "RerankRequest")  # a request TEI's schema allows, refused for what it asks
    status, error_type, message = error_of(post(both, path, body))
    assert (status, error_type) == expected[:2] and expected[2] in message, message


def test_long_inputs_are_cut_when_truncation_is_on(both):
    ranks = post(both, "/rerank", {"query": QUERY, "texts": ["river " * 600, PASSAGES[0]], "truncate": True}).json()
    assert sorted(rank["index"] for rank in ranks) == [0, 1]
    assert post(both, "/embed", {"inputs": ["river " * 300]}).status_code == 200, "auto_truncate is on"


def test_a_model_of_the_wrong_kind_is_424(dense_only, rerank_only):
    status, error_type, message = error_of(post(dense_only, "/rerank", {"query": QUERY, "texts": PASSAGES}))
    assert (status, error_type, message) == (424, "Backend", "model is not a re-ranker model")
    status, error_type, message = error_of(post(rerank_only, "/embed", {"inputs": PASSAGES}))
    assert (status, error_type, message) == (424, "Backend", "Model is not an embedding model")


def test_a_body_over_the_payload_limit_is_413(both):
    response = post(both, "/rerank", {"query": QUERY, "texts": ["x" * 5000]})
    status, error_type, message = error_of(response)
    assert (status, error_type) == (413, "Validation") and "payload limit of 4000" in message
    broken = httpx.post(both + "/rerank", content=b"{not json", timeout=10)
    check_response("/rerank", "post", broken)
    assert error_of(broken)[:2] == (422, "Validation")


def test_more_concurrent_requests_than_allowed_is_429(reranker):
    service = TEIService.from_models(reranker=reranker, limits=ServeLimits(max_concurrent_requests=1))
    with uvicorn_server(create_app(service)) as url:
        assert service.try_acquire(), "the one slot, taken as a long request would"
        try:
            status, error_type, message = error_of(post(url, "/rerank", {"query": QUERY, "texts": PASSAGES}))
            assert (status, error_type, message) == (429, "Overloaded", "Model is overloaded")
        finally:
            service.release()
        assert post(url, "/rerank", {"query": QUERY, "texts": PASSAGES}).status_code == 200


def test_an_api_key_guards_every_route_but_health(reranker):
    service = TEIService.from_models(reranker=reranker, api_key="s3cret-key")
    with uvicorn_server(create_app(service)) as url:
        assert httpx.post(url + "/rerank", json={"query": QUERY, "texts": PASSAGES}).status_code == 401
        assert httpx.get(url + "/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert httpx.get(url + "/health").status_code == 200
        good = httpx.post(url + "/rerank", json={"query": QUERY, "texts": PASSAGES},
                          headers={"Authorization": "Bearer s3cret-key"})
        assert good.status_code == 200
    assert "s3cret" not in repr(service)


def test_limits_are_settings_reported_by_info_and_checked(reranker):
    with pytest.raises(ValueError, match="max_client_batch_size=0"):
        ServeLimits(max_client_batch_size=0)
    service = TEIService.from_models(reranker=reranker, limits=ServeLimits(max_input_tokens=16, auto_truncate=False))
    info = service.info()
    validate(info, "Info")
    assert (info["max_input_length"], info["auto_truncate"]) == (16, False)
    with pytest.raises(Exception, match="less than 16 tokens") as error:
        service.rerank({"query": QUERY, "texts": [PASSAGES[0] * 3]})  # no "truncate": auto_truncate is off
    assert error.value.status == 422
    assert len(service.rerank({"query": QUERY, "texts": [PASSAGES[0] * 3], "truncate": True})) == 1


def test_the_late_interaction_fallback_serves_raw_maxsim_scores():
    service = TEIService.from_models(reranker=load_reranker("late-interaction", "cpu"))
    ranks = service.rerank({"query": "green tea", "texts": ["green tea leaves", "volcanic rock"]})
    validate(ranks, "RerankResponse")
    assert ranks[0]["index"] == 0 and -1.0 <= ranks[1]["score"] <= ranks[0]["score"] <= 1.0
    assert not math.isclose(ranks[0]["score"], 1 / (1 + math.exp(-ranks[0]["score"]))), "no sigmoid of a MaxSim"


# -- mounted on another app ---------------------------------------------------------------------------

def test_the_routes_mount_under_a_prefix_of_another_app(reranker):
    import fastapi

    app = fastapi.FastAPI()

    @app.get("/info")
    def own_info():  # like Gradio's own /info, which the prefix keeps apart
        return {"app": "own"}

    service = mount_tei_routes(app, service=TEIService.from_models(reranker=reranker))
    with uvicorn_server(app) as url:
        assert httpx.get(url + "/info").json() == {"app": "own"}
        info = httpx.get(url + "/tei/info")
        check_response("/info", "get", info)
        ranks = httpx.post(url + "/tei/rerank", json={"query": QUERY, "texts": PASSAGES})
        check_response("/rerank", "post", ranks)
        assert len(ranks.json()) == 4 and service.info()["model_id"] == info.json()["model_id"]
    with pytest.raises(ValueError, match="prefix"):
        mount_tei_routes(fastapi.FastAPI(), prefix="tei/", service=service)


def test_mounted_routes_load_the_settings_models_on_first_use(monkeypatch):
    import fastapi

    from search.pipeline import Settings

    app = fastapi.FastAPI()
    service = mount_tei_routes(app, settings=Settings(rerankers=("late-interaction",),
                                                      dense_model=MINILM_ID, device="cpu", backend="tei"))
    with uvicorn_server(app) as url:
        info = httpx.get(url + "/tei/info", timeout=60).json()
    assert [model["model_id"] for model in info["models"]] == ["late-interaction", MINILM_ID]
    served = service.ensure_loaded()
    assert served.encoder.model is load_dense_encoder(MINILM_ID, "cpu").model, "the app's cached model"
    assert served.encoder.model.backend == resolve_backend("auto"), \
        "a server runs its models here (auto's backend), whatever backend says"


def test_the_switch_is_off_unless_set(monkeypatch):
    monkeypatch.delenv(SERVE_TEI_ENV, raising=False)
    assert not tei_routes_enabled()
    for value, expected in (("1", True), ("true", True), ("ON", True), ("0", False), ("", False), ("no", False)):
        monkeypatch.setenv(SERVE_TEI_ENV, value)
        assert tei_routes_enabled() is expected, value


def test_python_m_search_serve_answers_on_its_port():
    """The CLI in a child process: loads the models, then serves TEI's API until terminated."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    from tests.tei_helpers import free_port

    port = free_port()
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "SEARCH_SERVE_API_KEY": ""}
    child = subprocess.Popen(
        [sys.executable, "-m", "search", "serve", "--reranker-model", "late-interaction", "--no-dense",
         "--device", "cpu", "--host", "127.0.0.1", "--port", str(port), "--max-client-batch-size", "4"],
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert child.poll() is None, child.stderr.read().decode(errors="replace")
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not answer /health within 120 s"
            time.sleep(0.25)
        info = httpx.get(url + "/info", timeout=10)
        check_response("/info", "get", info)
        assert info.json()["model_id"] == "late-interaction" and info.json()["max_client_batch_size"] == 4
        ranks = post(url, "/rerank", {"query": "green tea", "texts": ["green tea leaves", "volcanic rock"]}).json()
        assert ranks[0]["index"] == 0
        status, error_type, _ = error_of(post(url, "/embed", {"inputs": ["green tea"]}))
        assert (status, error_type) == (424, "Backend"), "--no-dense: no embedding model"
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)
        child.stderr.close()


def test_the_routes_mount_on_a_launched_gradio_app(reranker):
    """How app.py mounts them: after `launch` (which makes the server's app), under /tei, apart from
    Gradio's own /info."""
    import gradio as gr

    from tests.tei_helpers import free_port

    with gr.Blocks() as demo:
        gr.Markdown("a page")
    port = free_port()
    app, _, _ = demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        mount_tei_routes(app, service=TEIService.from_models(reranker=reranker))
        url = f"http://127.0.0.1:{port}/tei"
        info = httpx.get(url + "/info", timeout=10)
        check_response("/info", "get", info)
        assert len(post(url, "/rerank", {"query": QUERY, "texts": PASSAGES}).json()) == 4
        assert httpx.get(url + "/health", timeout=10).status_code == 200
    finally:
        demo.close()
