"""`search.serve` answers as TEI does: every route, field and error of TEI's router, each checked over real HTTP
on 127.0.0.1 against TEI's OpenAPI document (tests/tei_openapi) and against the local models' own answers.
Real clients against the same server are in tests/test_tei_clients.py; slow clients in
tests/test_tei_slow_clients.py."""

from __future__ import annotations

import base64
import math
import time

import httpx
import numpy as np
import pytest

from search.loading import load_dense_encoder, load_reranker, resolve_backend
from search.models import FALLBACK_DENSE_ID, MINILM_ID
from search.serve import (
    ServeLimits,
    TEIService,
    create_app,
    mount_tei_routes,
    openapi_document,
)
from search.serve.tokens import cut_to_tokens
from tests.tei_helpers import OPENAPI, check_response, uvicorn_server, validate
from tests.tiny_models import build_tiny_xlmr_cross_encoder

QUERY = "Which river flows through Berlin?"
PASSAGES = ["The Spree flows through the centre of Berlin.", "Bananas are rich in potassium.",
            "Berlin has many bridges over its river.", "Tea grows on hillsides."]
LIMITS = ServeLimits(max_client_batch_size=4, payload_limit=20_000)
LONG = " ".join(f"word{i} river" for i in range(400))  # ~1,200 tokens: past every window here
EMPTY = "Input validation error: `inputs` cannot be empty"


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-serve"), [QUERY, *PASSAGES, LONG] * 5)


@pytest.fixture(scope="module")
def reranker(tiny_folder):
    return load_reranker(str(tiny_folder), "cpu", fallback=False)


@pytest.fixture(scope="module")
def encoder():
    return load_dense_encoder(MINILM_ID, "cpu", fallback=False)


@pytest.fixture(scope="module")
def e5():
    return load_dense_encoder(FALLBACK_DENSE_ID, "cpu", fallback=False).model


@pytest.fixture(scope="module")
def both_service(reranker, encoder):
    return TEIService.from_models(reranker=reranker, encoder=encoder, limits=LIMITS)


@pytest.fixture(scope="module")
def both(both_service):
    with uvicorn_server(create_app(both_service)) as url:
        yield url


@pytest.fixture(scope="module")
def dense_only(encoder):
    with uvicorn_server(create_app(TEIService.from_models(encoder=encoder, limits=LIMITS))) as url:
        yield url


@pytest.fixture(scope="module")
def rerank_only(reranker):
    with uvicorn_server(create_app(TEIService.from_models(reranker=reranker, limits=LIMITS))) as url:
        yield url


@pytest.fixture(scope="module")
def e5_url(e5):
    with uvicorn_server(create_app(TEIService.from_models(encoder=e5))) as url:
        yield url


def post(url: str, path: str, body, *, documented: str | None = None, **kwargs) -> httpx.Response:
    response = httpx.post(url + path, json=body, timeout=60, **kwargs)
    check_response(documented or path, "post", response)
    return response


def error_of(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body["error_type"], body["error"]


def normalised(vectors) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


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
    np.testing.assert_allclose(normalised(plain), local[:2], atol=1e-5)


def test_post_root_and_invocations_choose_the_route_from_the_body(both, rerank_only, dense_only):
    for path in ("/", "/invocations"):
        embedded = post(both, path, {"inputs": PASSAGES[:2]}, documented="/embed").json()
        assert np.allclose(embedded, post(both, "/embed", {"inputs": PASSAGES[:2]}).json(), atol=1e-6)
        ranked = post(both, path, {"query": QUERY, "texts": PASSAGES}, documented="/rerank").json()
        assert ranked == post(both, "/rerank", {"query": QUERY, "texts": PASSAGES}).json()
    assert len(post(rerank_only, "/", {"query": QUERY, "texts": PASSAGES}, documented="/rerank").json()) == 4
    status, _, message = error_of(post(rerank_only, "/", {"inputs": ["x"]}, documented="/rerank"))
    assert status == 422 and "missing field `query`" in message, "a reranker's TEI reranks at POST /"
    assert len(post(dense_only, "/", {"inputs": "x"}, documented="/embed").json()) == 1
    info = httpx.get(both + "/info").json()
    assert info["post_root"] == {"query": "/rerank", "inputs": "/embed"}, "/info says which route POST / takes"


def test_get_root_and_ping_are_health_checks(both):
    for path in ("/", "/ping", "/health"):
        response = httpx.get(both + path, timeout=10)
        check_response("/health", "get", response)
        assert response.status_code == 200 and response.content == b""


def test_openai_embeddings_in_float_and_base64_with_usage(both, encoder):
    local = encoder.model.embed(PASSAGES[:2], is_query=False)
    tokens = sum(len(ids) for ids in encoder.model.tokenizer(PASSAGES[:2])["input_ids"])
    for path in ("/v1/embeddings", "/embeddings"):
        answer = post(both, path, {"input": PASSAGES[:2], "model": MINILM_ID}, documented="/v1/embeddings").json()
        assert (answer["object"], answer["model"], answer["usage"]) == (
            "list", MINILM_ID, {"prompt_tokens": tokens, "total_tokens": tokens})
        assert [item["index"] for item in answer["data"]] == [0, 1] and answer["data"][0]["object"] == "embedding"
        np.testing.assert_allclose([item["embedding"] for item in answer["data"]], local, atol=1e-5)
    encoded = post(both, "/v1/embeddings", {"input": PASSAGES[0], "encoding_format": "base64"}).json()
    vector = np.frombuffer(base64.b64decode(encoded["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_allclose(vector, local[0], atol=1e-5)
    cut = post(both, "/v1/embeddings", {"input": PASSAGES[0], "dimensions": 128}).json()["data"][0]["embedding"]
    assert len(cut) == 128 and math.isclose(np.linalg.norm(cut), 1.0, rel_tol=1e-5)


def test_openai_errors_carry_teis_and_openais_shapes(both, rerank_only):
    response = post(both, "/v1/embeddings", {"input": ["ok", ""]})
    body = response.json()
    assert (response.status_code, body["type"], body["message"], body["code"]) == (400, "Empty", EMPTY, 400)
    assert body["error"] == {"message": EMPTY, "type": "Empty", "param": None, "code": 400}, "OpenAI's shape"
    wrong_kind = post(rerank_only, "/v1/embeddings", {"input": "x"}).json()
    assert (wrong_kind["code"], wrong_kind["message"]) == (424, "Backend error: Model is not an embedding model")


def test_tokenize_gives_ids_and_utf8_byte_offsets_and_decode_reverses_it(both, encoder):
    tokenizer = encoder.model.tokenizer
    text = "Grüße aus Köln"
    answer = post(both, "/tokenize", {"inputs": text}).json()
    (tokens,) = answer
    assert [token["id"] for token in tokens] == tokenizer(text)["input_ids"]
    assert tokens[0] == {"id": tokenizer.cls_token_id, "text": "[CLS]", "special": True, "start": None, "stop": None}
    data = text.encode()
    for token in tokens[1:-1]:
        assert token["text"] == data[token["start"]:token["stop"]].decode(), token
    assert tokens[-2]["stop"] == len(data), "byte offsets: ü and ö take two bytes each"
    bare = post(both, "/tokenize", {"inputs": [text, "Köln"], "add_special_tokens": False}).json()
    assert len(bare) == 2 and all(not token["special"] for token in bare[0])
    ids = [token["id"] for token in tokens]
    assert post(both, "/decode", {"ids": ids}).json() == [tokenizer.decode(ids, skip_special_tokens=True)]
    assert post(both, "/decode", {"ids": [ids, ids[:3]], "skip_special_tokens": False}).json() == [
        tokenizer.decode(ids), tokenizer.decode(ids[:3])]
    assert error_of(post(both, "/decode", {"ids": []})) == (400, "Empty", "Input validation error: `input_ids` "
                                                                           "cannot be empty")
    assert error_of(post(both, "/tokenize", {"inputs": ""})) == (400, "Empty", EMPTY)


def test_predict_scores_pairs_like_rerank(both, reranker):
    local = reranker.model.inner.score(QUERY, PASSAGES[:2])
    single = post(both, "/predict", {"inputs": [QUERY, PASSAGES[0]]}).json()
    assert single == [{"score": pytest.approx(local[0].sigmoid, abs=1e-6), "label": "LABEL_0"}]
    batch = post(both, "/predict", {"inputs": [[QUERY, PASSAGES[0]], [QUERY, PASSAGES[1]]], "raw_scores": True})
    assert [[p["score"] for p in row] for row in batch.json()] == [
        [pytest.approx(local[0].raw, abs=1e-6)], [pytest.approx(local[1].raw, abs=1e-6)]]
    status, error_type, message = error_of(post(both, "/predict", {"inputs": "one text, no pair"}))
    assert (status, error_type) == (424, "Backend") and "pairs" in message


def test_similarity_is_the_cosine_with_the_source_sentence(both, encoder):
    vectors = encoder.model.embed([QUERY, *PASSAGES[:3]], is_query=False)
    answer = post(both, "/similarity", {"inputs": {"source_sentence": QUERY, "sentences": PASSAGES[:3]}}).json()
    np.testing.assert_allclose(answer, vectors[1:] @ vectors[0], atol=1e-5)
    assert error_of(post(both, "/similarity", {"inputs": {"source_sentence": QUERY, "sentences": []}})) == (
        400, "Empty", "`inputs.sentences` cannot be empty")
    status, _, message = error_of(post(both, "/similarity", {"inputs": {"source_sentence": QUERY,
                                                                         "sentences": PASSAGES}}))
    assert (status, message) == (422, "batch size 5 > maximum allowed batch size 4"), "the source counts too"


def test_metrics_count_requests_in_prometheus_text_with_teis_names(both):
    before = httpx.get(both + "/metrics").text
    post(both, "/embed", {"inputs": PASSAGES[:2]})
    post(both, "/rerank", {"query": QUERY, "texts": PASSAGES})
    post(both, "/embed", {"inputs": []})
    response = httpx.get(both + "/metrics")
    check_response("/metrics", "get", response)
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    after = _samples(response.text)
    earlier = _samples(before)
    grew = {name: after.get(name, 0) - earlier.get(name, 0) for name in after}
    assert grew['te_request_count{method="batch"}'] == 2 and grew['te_request_count{method="single"}'] == 1
    assert grew['te_request_success{method="batch"}'] == 2
    assert grew['te_request_failure{err="tokenization"}'] == 1, "`inputs: []` is one empty input"
    assert grew["te_embed_success"] == 2 and grew["te_predict_success"] == 4
    assert grew["te_request_duration_count"] == 2 and grew['te_request_duration_bucket{le="+Inf"}'] == 2
    assert grew["te_batch_next_size_count"] >= 1 and after["te_queue_size"] == 0


def _samples(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_the_openapi_document_is_teis_at_teis_path(both):
    response = httpx.get(both + "/api-doc/openapi.json")
    import json

    tei = json.loads(OPENAPI.read_text(encoding="utf-8"))
    served = response.json()
    assert response.status_code == 200 and served["paths"] == tei["paths"] == openapi_document()["paths"]
    assert served["components"] == tei["components"] and served["info"]["version"].startswith("search-")
    assert "swagger" in httpx.get(both + "/docs").text.lower()


@pytest.mark.parametrize(("path", "message"), [
    ("/embed_sparse", "Backend error: Model is not an embedding model with SPLADE pooling"),
    ("/embed_all", "Backend error: `embed_all` is not available"),
])
def test_routes_no_served_model_can_answer_are_424(both, path, message):
    status, error_type, said = error_of(post(both, path, {"inputs": "x"}))
    assert (status, error_type) == (424, "Backend") and said.startswith(message)


# -- TEI's semantics, field by field ------------------------------------------------------------------

@pytest.mark.parametrize("inputs", ["", ["ok", ""], [], [[]]])
def test_empty_inputs_are_400(both, inputs):
    assert error_of(post(both, "/embed", {"inputs": inputs})) == (400, "Empty", EMPTY)


def test_a_blank_rerank_query_is_answered(both):
    for query in ("", "   "):
        ranks = post(both, "/rerank", {"query": query, "texts": PASSAGES[:3]}).json()
        assert [rank["index"] for rank in ranks] == [2, 1, 0], "equal scores, in TEI's order for ties"
        assert {rank["score"] for rank in ranks} == {0.5}, "no relevance against an empty query: sigmoid(0)"
    assert error_of(post(both, "/rerank", {"query": "", "texts": ["a", ""]})) == (400, "Empty", EMPTY), \
        "an empty query with an empty text is an empty input, as TEI says"


def test_token_id_inputs_embed_like_their_text(both, encoder):
    ids = [encoder.model.tokenizer(text)["input_ids"] for text in PASSAGES[:2]]
    expected = encoder.model.embed(PASSAGES[:2], is_query=False)
    np.testing.assert_allclose(post(both, "/embed", {"inputs": ids[0]}).json(), expected[:1], atol=1e-5)
    np.testing.assert_allclose(post(both, "/embed", {"inputs": ids}).json(), expected, atol=1e-5)


def test_left_truncation_keeps_the_end_of_a_long_input(both, encoder, reranker):
    tokenizer = encoder.model.tokenizer
    offsets = tokenizer(LONG, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    tail = LONG[offsets[len(offsets) - 254][0]:]  # MiniLM's 256 tokens less [CLS] and [SEP]
    head = LONG[:offsets[253][1]]
    left = post(both, "/embed", {"inputs": LONG, "truncate": True, "truncation_direction": "Left"}).json()
    right = post(both, "/embed", {"inputs": LONG, "truncate": True, "truncation_direction": "right"}).json()
    np.testing.assert_allclose(left, encoder.model.embed([tail], is_query=False), atol=1e-5)
    np.testing.assert_allclose(right, encoder.model.embed([head], is_query=False), atol=1e-5)
    cut_left = post(both, "/rerank", {"query": QUERY, "texts": [LONG], "raw_scores": True,
                                      "truncation_direction": "Left"}).json()[0]["score"]
    cut_right = post(both, "/rerank", {"query": QUERY, "texts": [LONG], "raw_scores": True}).json()[0]["score"]
    inner = reranker.model.inner
    query_tokens = len(inner.tokenizer(QUERY, add_special_tokens=False)["input_ids"])
    room = inner.max_length - query_tokens - inner.tokenizer.num_special_tokens_to_add(pair=True)
    tail, _ = cut_to_tokens(inner.tokenizer, LONG, room, "left")
    assert cut_left == pytest.approx(inner.score(QUERY, [tail])[0].raw, abs=1e-5)
    assert cut_right == pytest.approx(inner.score(QUERY, [LONG])[0].raw, abs=1e-5), "the engine cuts the right"
    assert cut_left != pytest.approx(cut_right, abs=1e-4)


def test_texts_are_cut_at_token_boundaries_to_fit(reranker):
    tokenizer = reranker.model.inner.tokenizer
    count = len(tokenizer(LONG, add_special_tokens=False)["input_ids"])
    for keep in (1, 7, 300):
        tail, tail_tokens = cut_to_tokens(tokenizer, LONG, keep, "left")
        head, head_tokens = cut_to_tokens(tokenizer, LONG, keep, "right")
        assert LONG.endswith(tail) and LONG.startswith(head) and tail and head
        for text, tokens in ((tail, tail_tokens), (head, head_tokens)):
            assert tokens == len(tokenizer(text, add_special_tokens=False)["input_ids"])
            assert keep - 2 <= tokens <= keep, (keep, tokens, "re-tokenising a cut may cost a token or two")
    assert cut_to_tokens(tokenizer, PASSAGES[0], 300, "left") == (PASSAGES[0], len(
        tokenizer(PASSAGES[0], add_special_tokens=False)["input_ids"])), "what fits is kept whole"
    assert count > 300


def test_truncate_cuts_the_bundled_e5_at_its_window_instead_of_averaging_windows(e5_url, e5):
    offsets = e5.tokenizer(LONG, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    head = LONG[:offsets[509][1]]
    served = post(e5_url, "/embed", {"inputs": LONG, "truncate": True}).json()[0]
    plain = _plain_embed(e5, head)
    np.testing.assert_allclose(served, plain, atol=1e-5)
    windowed = _plain_embed(e5, LONG)
    assert float(np.dot(served, windowed)) < 0.999, "the engine's windowing gives another vector"
    status, _, message = error_of(post(e5_url, "/embed", {"inputs": LONG, "truncate": False}))
    tokens = len(e5.tokenizer(LONG)["input_ids"])
    assert (status, message) == (422, f"Input validation error: `inputs` must have less than 512 tokens. "
                                      f"Given: {tokens}")


def _plain_embed(e5, text: str) -> np.ndarray:
    """e5's vector for `text` read as given, without its passage prefix (what TEI embeds)."""
    import copy
    from dataclasses import replace

    view = copy.copy(e5)
    view.spec = replace(e5.spec, passage_prefix="")
    return view.embed([text], is_query=False)[0]


def test_prompt_name_uses_the_models_prompts(e5_url, e5, both):
    query = post(e5_url, "/embed", {"inputs": "green tea", "prompt_name": "query"}).json()[0]
    np.testing.assert_allclose(query, e5.embed(["green tea"], is_query=True)[0], atol=1e-5)
    passage = post(e5_url, "/embed", {"inputs": "green tea", "prompt_name": "passage"}).json()[0]
    np.testing.assert_allclose(passage, e5.embed(["green tea"], is_query=False)[0], atol=1e-5)
    status, _, message = error_of(post(e5_url, "/embed", {"inputs": "tea", "prompt_name": "title"}))
    assert status == 422 and message.startswith("Input validation error: `default-prompt-name` is set to `title` "
                                                "but it was not found") and '["query", "passage"]' in message
    status, _, message = error_of(post(both, "/embed", {"inputs": "tea", "prompt_name": "query"}))
    assert status == 422 and "no prompts were found" in message, "MiniLM declares no prompts"
    tokens = post(e5_url, "/tokenize", {"inputs": "tea", "prompt_name": "query"}).json()[0]
    assert "".join(token["text"] for token in tokens if not token["special"]).replace("▁", " ").strip() \
        in ("query: tea", "query:tea") and tokens[1]["start"] == 0


def test_dimensions_keep_the_first_values_renormalised(both):
    plain = np.array(post(both, "/embed", {"inputs": PASSAGES[:2], "normalize": False}).json())
    cut = np.array(post(both, "/embed", {"inputs": PASSAGES[:2], "dimensions": 128}).json())
    np.testing.assert_allclose(cut, normalised(plain[:, :128]), atol=1e-5)
    raw_cut = post(both, "/embed", {"inputs": PASSAGES[0], "dimensions": 64, "normalize": False}).json()[0]
    np.testing.assert_allclose(raw_cut, plain[0, :64], atol=1e-5)
    assert error_of(post(both, "/embed", {"inputs": "x", "dimensions": 1000}))[1:] == (
        "Validation", "Input validation error: `dimensions` should be smaller than the maximum embedding dimension.")
    assert error_of(post(both, "/embed", {"inputs": "x", "dimensions": 0}))[2] == (
        "Input validation error: `dimensions` should be positive")


def test_the_info_names_each_models_real_dtype(both, e5, e5_url):
    info = httpx.get(both + "/info").json()
    assert [model["model_dtype"] for model in info["models"]] == ["float32", "float32"]
    e5_info = httpx.get(e5_url + "/info")
    check_response("/info", "get", e5_info)
    # auto runs the bundled e5 in its int8 form where OpenVINO can quantize it, else its 4-bit weights as they are
    assert e5_info.json()["model_dtype"] == ("int8" if "int8" in e5.label else "q4_0"), e5.label
    assert e5_info.json()["models"][0]["prompts"] == {"query": "query: ", "passage": "passage: "}


@pytest.mark.parametrize(("body", "field"), [
    ({"inputs": "x", "normalize": None}, "normalize: invalid type: null, expected a boolean"),
    ({"inputs": "x", "truncation_direction": "middle"}, "unknown variant `middle`"),
    ({"inputs": 5}, "inputs: data did not match any variant"),
    ({"input": "x"}, "missing field `inputs`"),
])
def test_wrong_types_and_missing_fields_are_422_with_serdes_message(both, body, field):
    status, error_type, message = error_of(post(both, "/embed", body))
    assert (status, error_type) == (422, "Validation")
    assert message.startswith("Failed to deserialize the JSON body into the target type: ") and field in message


def test_raw_scores_null_is_422_and_truncate_null_is_the_default(both):
    status, _, message = error_of(post(both, "/rerank", {"query": QUERY, "texts": PASSAGES, "raw_scores": None}))
    assert status == 422 and "raw_scores: invalid type: null, expected a boolean" in message
    assert post(both, "/rerank", {"query": QUERY, "texts": PASSAGES, "truncate": None}).status_code == 200


def test_malformed_requests_get_415_400_and_413(both):
    for headers in ({}, {"content-type": "text/plain"}):
        response = httpx.post(both + "/embed", content=b'{"inputs": "x"}', headers=headers)
        assert response.status_code == 415
        assert response.json()["error"] == "Expected request with `Content-Type: application/json`"
    broken = httpx.post(both + "/rerank", content=b"{not json", headers={"content-type": "application/json"})
    check_response("/rerank", "post", broken)
    status, _, message = error_of(broken)
    assert status == 400 and message.startswith("Failed to parse the request body as JSON: ")
    status, error_type, message = error_of(post(both, "/rerank", {"query": QUERY, "texts": ["x" * 25_000]}))
    assert (status, error_type) == (413, "Validation") and "payload limit is 20000 bytes" in message


def test_concurrency_permits_are_counted_per_text(reranker, encoder):
    service = TEIService.from_models(reranker=reranker, encoder=encoder,
                                     limits=ServeLimits(max_concurrent_requests=2))
    with uvicorn_server(create_app(service)) as url:
        assert error_of(post(url, "/embed", {"inputs": PASSAGES})) == (429, "Overloaded", "Model is overloaded")
        assert error_of(post(url, "/rerank", {"query": QUERY, "texts": PASSAGES}))[:2] == (429, "Overloaded")
        assert post(url, "/embed", {"inputs": PASSAGES[:2]}).status_code == 200, "permits are given back"
        assert post(url, "/rerank", {"query": QUERY, "texts": PASSAGES[:2]}).status_code == 200


def test_embed_requests_that_wait_share_one_forward_pass():
    """While the model runs one request, the ones that arrive wait and then go through it together (TEI's
    queue), each getting its own vectors back."""
    import threading

    from search.loading import load_encoder

    torch_encoder = load_encoder(MINILM_ID, "cpu", backend="torch")  # torch: a forward hook to hold the model
    service = TEIService.from_models(encoder=torch_encoder)
    model = torch_encoder.model
    first_pass, release = threading.Event(), threading.Event()
    passes: list[int] = []

    def gate(module, args, kwargs):
        passes.append(kwargs["input_ids"].shape[0])
        if len(passes) == 1:
            first_pass.set()
            release.wait(timeout=60)

    handle = model.register_forward_pre_hook(gate, with_kwargs=True)
    requests = [[PASSAGES[0]], [PASSAGES[1], PASSAGES[2]], [PASSAGES[3]], [QUERY]]
    answers: dict[int, list] = {}

    def send(number: int) -> None:
        answers[number] = service.embed({"inputs": requests[number]}).body

    try:
        threads = [threading.Thread(target=send, args=(0,))]
        threads[0].start()
        assert first_pass.wait(timeout=60), "the first request reached the model"
        threads += [threading.Thread(target=send, args=(n,)) for n in (1, 2, 3)]
        for thread in threads[1:]:
            thread.start()
        deadline = time.monotonic() + 60
        while service.metrics.value("te_queue_size") < 3:
            assert time.monotonic() < deadline, "the three requests did not queue"
            time.sleep(0.01)
        release.set()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        release.set()
        handle.remove()
    assert passes == [1, 4], "one pass for the first request, one for the four texts that waited"
    for number, texts in enumerate(requests):
        np.testing.assert_allclose(answers[number], torch_encoder.embed(texts, is_query=False), atol=1e-5)


def test_answers_carry_teis_timing_headers(both, encoder):
    response = post(both, "/embed", {"inputs": PASSAGES[:2]})
    headers = response.headers
    for name in ("x-compute-time", "x-total-time", "x-tokenization-time", "x-queue-time", "x-inference-time"):
        assert headers[name].isdigit(), (name, headers.get(name))
    tokens = sum(len(ids) for ids in encoder.model.tokenizer(PASSAGES[:2])["input_ids"])
    assert (headers["x-compute-type"], headers["x-compute-characters"], headers["x-compute-tokens"]) == (
        "cpu", str(len(PASSAGES[0]) + len(PASSAGES[1])), str(tokens))
    reranked = post(both, "/rerank", {"query": QUERY, "texts": PASSAGES[:2]}).headers
    assert reranked["x-compute-characters"] == str(2 * len(QUERY) + len(PASSAGES[0]) + len(PASSAGES[1]))


# -- errors, with TEI's status codes ------------------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "expected"), [
    ("/rerank", {"query": QUERY, "texts": []}, (400, "Empty", "`texts` cannot be empty")),
    ("/rerank", {"query": QUERY, "texts": PASSAGES * 2}, (422, "Validation", "batch size 8 > maximum allowed batch "
                                                                             "size 4")),
    ("/embed", {"inputs": PASSAGES * 2}, (422, "Validation", "batch size 8 > maximum allowed batch size 4")),
    ("/rerank", {"query": QUERY, "texts": [LONG], "truncate": False},
     (422, "Validation", "Input validation error: `inputs` must have less than 512 tokens. Given: ")),
    ("/embed", {"inputs": [LONG], "truncate": False}, (422, "Validation", "less than 256 tokens")),
    ("/rerank", {"query": QUERY}, (422, "Validation", "missing field `texts`")),
    ("/rerank", {"query": QUERY, "texts": [1, 2]}, (422, "Validation", "texts: invalid type: integer `1`")),
])
def test_bad_requests_get_teis_status_and_error_body(both, path, body, expected):
    status, error_type, message = error_of(post(both, path, body))
    assert (status, error_type) == expected[:2] and expected[2] in message, message


def test_inputs_past_250_characters_a_token_are_refused_or_cut(both_service, encoder):
    with pytest.raises(Exception, match="less than 64000 characters. Given: 64001") as error:
        both_service.embed({"inputs": ["x " * 32_000 + "y"], "truncate": False})
    assert error.value.status == 422, "TEI's cap on characters, checked before tokenizing"
    vector = both_service.embed({"inputs": ["tea " * 20_000], "truncate": True}).body[0]
    np.testing.assert_allclose(vector, encoder.model.embed(["tea " * 254], is_query=False)[0], atol=1e-5)


def test_long_inputs_are_cut_when_truncation_is_on(both):
    ranks = post(both, "/rerank", {"query": QUERY, "texts": [LONG, PASSAGES[0]], "truncate": True}).json()
    assert sorted(rank["index"] for rank in ranks) == [0, 1]
    assert post(both, "/embed", {"inputs": [LONG]}).status_code == 200, "auto_truncate is on"


def test_a_model_of_the_wrong_kind_is_424(dense_only, rerank_only):
    status, error_type, message = error_of(post(dense_only, "/rerank", {"query": QUERY, "texts": PASSAGES}))
    assert (status, error_type, message) == (424, "Backend", "Backend error: model is not a re-ranker model")
    status, error_type, message = error_of(post(rerank_only, "/embed", {"inputs": PASSAGES}))
    assert (status, error_type, message) == (424, "Backend", "Backend error: Model is not an embedding model")
    status, _, message = error_of(post(dense_only, "/predict", {"inputs": ["a", "b"]}))
    assert (status, message) == (424, "Backend error: Model is not a classifier model")


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
        again = httpx.get(url + "/health", timeout=10)
        assert error_of(again)[:2] == (503, "Unhealthy") and "/nowhere" in again.json()["error"], "and stays so"
        info = httpx.get(url + "/info", timeout=10)
        assert info.status_code == 503 and info.json()["error_type"] == "Unhealthy"


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


def test_an_api_key_guards_every_route_but_health_and_metrics(reranker):
    service = TEIService.from_models(reranker=reranker, api_key="s3cret-key")
    with uvicorn_server(create_app(service)) as url:
        assert httpx.post(url + "/rerank", json={"query": QUERY, "texts": PASSAGES}).status_code == 401
        assert httpx.post(url + "/", json={"query": QUERY, "texts": PASSAGES}).status_code == 401
        assert httpx.get(url + "/info", headers={"Authorization": "Bearer wrong"}).status_code == 401
        for public in ("/health", "/", "/ping", "/metrics", "/api-doc/openapi.json"):
            assert httpx.get(url + public).status_code == 200, public
        good = httpx.post(url + "/rerank", json={"query": QUERY, "texts": PASSAGES},
                          headers={"Authorization": "Bearer s3cret-key"})
        assert good.status_code == 200
    assert "s3cret" not in repr(service)


def test_limits_are_settings_reported_by_info_and_checked(reranker):
    with pytest.raises(ValueError, match="max_client_batch_size=0"):
        ServeLimits(max_client_batch_size=0)
    with pytest.raises(ValueError, match="body_timeout_s=0"):
        ServeLimits(body_timeout_s=0)
    service = TEIService.from_models(reranker=reranker, limits=ServeLimits(max_input_tokens=16, auto_truncate=False))
    info = service.info()
    validate(info, "Info")
    assert (info["max_input_length"], info["auto_truncate"]) == (16, False)
    with pytest.raises(Exception, match="less than 16 tokens") as error:
        service.rerank({"query": QUERY, "texts": [PASSAGES[0] * 3]})  # no "truncate": auto_truncate is off
    assert error.value.status == 422
    assert len(service.rerank({"query": QUERY, "texts": [PASSAGES[0] * 3], "truncate": True}).body) == 1


def test_the_late_interaction_fallback_serves_raw_maxsim_scores():
    reranker = load_reranker("late-interaction", "cpu").model
    service = TEIService.from_models(reranker=reranker)
    ranks = service.rerank({"query": "green tea", "texts": ["green tea leaves", "volcanic rock"]}).body
    validate(ranks, "RerankResponse")
    assert ranks[0]["index"] == 0 and -1.0 <= ranks[1]["score"] <= ranks[0]["score"] <= 1.0
    assert not math.isclose(ranks[0]["score"], 1 / (1 + math.exp(-ranks[0]["score"]))), "no sigmoid of a MaxSim"
    expected = "int8" if "int8" in reranker.label else "q4_0"  # over the bundled e5: its int8 form, or its 4 bits
    assert service.info()["model_dtype"] == expected, reranker.label


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
        for root in ("/tei/", "/tei"):  # a client whose URL is http://HOST/tei posts to /tei itself
            assert httpx.post(url + root, json={"query": QUERY, "texts": PASSAGES}).status_code == 200, root
            assert httpx.get(url + root).status_code == 200, root
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
         "--device", "cpu", "--host", "127.0.0.1", "--port", str(port), "--max-client-batch-size", "4",
         "--header-timeout", "5", "--body-timeout", "5"],
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
        ranks = post(url, "/", {"query": "green tea", "texts": ["green tea leaves", "volcanic rock"]},
                     documented="/rerank").json()
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
