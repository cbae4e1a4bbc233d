"""The `tei` backend's failures are named, bounded and say which setting to change, never a stack trace:
refused port, timeout, 401/403, 413/422 (split and retried), 424, 429/503 (retried with backoff), answers that
are not TEI's, and bad settings. Each endpoint is a small stub server on 127.0.0.1 (tests/tei_helpers.py);
every request the client sends is checked against TEI's OpenAPI request schemas. The token in $HF_TOKEN is
sent, and never appears in a repr, a label, an error or a log line."""

from __future__ import annotations

import logging
import socket
import threading
import time

import httpx
import pytest

from search.backends.tei import (
    TEI_TOKEN_ENV,
    TEI_URL_ENV,
    TIMEOUT_ENV,
    TOKEN_ENV,
    TEIClient,
    TEIEncoder,
    TEIError,
    TEIReranker,
    default_timeout,
    endpoint_urls,
)
from search.inference import RerankCancelled, RerankerUnavailable
from search.loading import TEI_SETTING_HINT, load_dense_encoder, load_reranker
from search.models import FALLBACK_DENSE_ID, LATE_INTERACTION_ID
from tests.tei_helpers import Answer, Received, Stub, free_port, stub_server, validate

SECRET = "hf_test_SECRET_0123456789"
RERANKER_INFO = {"model_id": "BAAI/bge-reranker-v2-m3", "model_sha": None, "model_dtype": "float16",
                 "served_model_name": "BAAI/bge-reranker-v2-m3",
                 "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}},
                 "max_concurrent_requests": 512, "max_input_length": 512, "max_batch_tokens": 16384,
                 "max_client_batch_size": 8, "auto_truncate": True, "tokenization_workers": 1, "version": "1.9.3"}
EMBEDDER_INFO = {**RERANKER_INFO, "model_id": "intfloat/multilingual-e5-small",
                 "model_type": {"embedding": {"pooling": "mean"}}}
PASSAGES = ["a", "bb", "ccc", "dddd", "eeeee"]


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.delenv(TEI_TOKEN_ENV, raising=False)
    monkeypatch.delenv(TEI_URL_ENV, raising=False)
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)


def ranks(texts: list[str]) -> list[dict]:
    """TEI's answer with score = text length, sorted by score as TEI sorts it."""
    return sorted(({"index": i, "score": float(len(text))} for i, text in enumerate(texts)), key=lambda r: -r["score"])


def tei(rerank=None, embed=None, info=RERANKER_INFO):
    """An `answer` for `stub_server`: /info as given; /rerank and /embed by the given functions of
    (request, number of that route's calls so far), by default TEI's correct answers."""
    def answer(request: Received, stub: Stub) -> Answer:
        if request.path == "/info":
            return Answer(body=info)
        calls = sum(path == f"{request.method} {request.path}" for path in stub.paths())
        if request.path == "/rerank":
            validate(request.body, "RerankRequest")
            return rerank(request, calls) if rerank else Answer(body=ranks(request.body["texts"]))
        if request.path == "/embed":
            validate(request.body, "EmbedRequest")
            return embed(request, calls) if embed else Answer(body=[[1.0, 0.0] for _ in request.body["inputs"]])
        return Answer(404, {"error": "no route", "error_type": "Validation"})
    return answer


def raw(scores) -> list[float]:
    return [score.raw for score in scores]


# -- what the client sends and how it reads the answer ------------------------------------------------

def test_rerank_requests_are_teis_and_answers_are_mapped_back_to_input_order():
    with stub_server(tei()) as stub:
        reranker = TEIReranker("BAAI/bge-reranker-v2-m3", stub.url)
        assert raw(reranker.score("q", PASSAGES)) == [1.0, 2.0, 3.0, 4.0, 5.0], "sorted answers, input order"
        sent = stub.received[-1]
    assert sent.body == {"query": "q", "texts": PASSAGES, "raw_scores": True, "truncate": True}
    assert "authorization" not in sent.headers, "no token without HF_TOKEN"
    assert reranker.label == f"BAAI/bge-reranker-v2-m3 via TEI ({stub.url.removeprefix('http://')})"


def test_embed_requests_are_teis_and_carry_the_models_prefix():
    with stub_server(tei(info=EMBEDDER_INFO)) as stub:
        encoder = TEIEncoder("intfloat/multilingual-e5-small", stub.url)
        encoder.embed(["green tea"], is_query=True)
        encoder.embed(["green tea"], is_query=False)
        bodies = [r.body for r in stub.received if r.path == "/embed"]
    assert encoder.dimension == 2
    assert bodies[1:] == [{"inputs": ["query: green tea"], "normalize": True, "truncate": True},
                          {"inputs": ["passage: green tea"], "normalize": True, "truncate": True}]


@pytest.mark.parametrize(("answer", "what"), [
    ([{"index": 0, "score": 1.0}], "not one rank per text"),
    ([{"index": 0, "score": 1.0}, {"index": 0, "score": 2.0}], "bad rank"),
    ([{"index": 0, "score": 1.0}, {"index": 5, "score": 2.0}], "bad rank"),
    ([{"index": 0, "score": "high"}, {"index": 1, "score": 2.0}], "bad rank"),
    ({"error": "?"}, "not one rank per text"),
])
def test_an_answer_that_is_not_teis_is_named(answer, what):
    with stub_server(tei(rerank=lambda request, calls: Answer(body=answer))) as stub:
        with pytest.raises(RerankerUnavailable, match="did not answer like TEI") as error:
            TEIReranker("m", stub.url).score("q", ["a", "b"])
    assert what in str(error.value) and TEI_URL_ENV in str(error.value)


def test_an_info_that_is_not_teis_is_named():
    with stub_server(lambda request, stub: Answer(raw=b"<html>a web page</html>")) as stub:
        with pytest.raises(RerankerUnavailable, match="did not answer like TEI"):
            TEIReranker("m", stub.url)
    with stub_server(lambda request, stub: Answer(body={"model_id": "m", "model_type": {"splade": {}}})) as stub:
        with pytest.raises(RerankerUnavailable, match="unknown type 'splade'"):
            TEIReranker("m", stub.url)


def test_a_classifier_endpoint_is_not_taken_for_a_reranker():
    info = {**RERANKER_INFO, "model_id": "SamLowe/roberta-base-go_emotions",
            "model_type": {"classifier": {"id2label": {"0": "joy", "1": "anger", "2": "fear"},
                                          "label2id": {"joy": 0, "anger": 1, "fear": 2}}}}
    with stub_server(tei(info=info)) as stub:
        with pytest.raises(RerankerUnavailable) as error:
            TEIReranker("BAAI/bge-reranker-v2-m3", stub.url)
    assert "serves SamLowe/roberta-base-go_emotions (a classifier with 3 labels, not a reranker)" in str(error.value)


# -- connection failures ------------------------------------------------------------------------------

def test_a_refused_port_is_named_with_the_setting():
    url = f"http://127.0.0.1:{free_port()}"  # bound and closed again: nothing listens there
    with pytest.raises(TEIError) as error:
        TEIClient(url).get("/info")
    assert error.value.kind == "connect" and "connection refused" in str(error.value)
    assert TEI_URL_ENV in str(error.value) and "python -m search serve" in str(error.value)


def test_a_dns_failure_is_named_with_the_setting():
    """Classified from the cause httpx keeps (no name is looked up: a test sends nothing off this machine)."""
    client = TEIClient("http://no-such-host.invalid:8080")
    try:
        raise httpx.ConnectError("[Errno -2] Name or service not known") from socket.gaierror(-2, "Name unknown")
    except httpx.ConnectError as failure:
        error = client._connection_error(failure)
    assert error.kind == "dns" and "'no-such-host.invalid' could not be resolved" in str(error)
    assert TEI_URL_ENV in str(error)


def test_a_timeout_is_named_and_bounded():
    slow = tei(rerank=lambda request, calls: Answer(body=ranks(request.body["texts"]), delay=2.0))
    with stub_server(slow) as stub:
        reranker = TEIReranker("m", stub.url, client_options={"timeout": 0.3})
        started = time.monotonic()
        with pytest.raises(RerankerUnavailable, match=r"did not answer POST /rerank within 0.3 s") as error:
            reranker.score("q", ["a"])
        assert time.monotonic() - started < 1.5
    assert TIMEOUT_ENV in str(error.value) and isinstance(error.value.__cause__, TEIError)


def test_the_timeout_setting_is_read_and_checked(monkeypatch):
    assert default_timeout() == 60.0
    monkeypatch.setenv(TIMEOUT_ENV, "7.5")
    assert TEIClient("http://127.0.0.1:9").timeout == 7.5
    for bad in ("soon", "0", "-1", "inf", "nan"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ValueError, match=f"{TIMEOUT_ENV}='{bad}' is not allowed: it takes a number from 0.1"):
            default_timeout()


# -- the token ----------------------------------------------------------------------------------------

def guarded(token: str, info: dict = RERANKER_INFO):
    """A TEI endpoint that wants `Authorization: Bearer <token>` on every route."""
    inner = tei(info=info)

    def answer(request: Received, stub: Stub) -> Answer:
        if request.headers.get("authorization") != f"Bearer {token}":
            # A careless server that echoes what it was sent: the client must still not show it.
            return Answer(401, {"error": f"bad header {request.headers.get('authorization')}",
                                "error_type": "Validation"})
        return inner(request, stub)
    return answer


def test_401_says_to_set_the_token_and_the_right_token_is_sent(monkeypatch):
    with stub_server(guarded(SECRET)) as stub:
        with pytest.raises(RerankerUnavailable, match=f"requires a token.*set {TOKEN_ENV}"):
            TEIReranker("m", stub.url)
        monkeypatch.setenv(TOKEN_ENV, "hf_wrong")
        with pytest.raises(RerankerUnavailable, match=f"refused the token in {TOKEN_ENV}"):
            TEIReranker("m", stub.url)
        monkeypatch.setenv(TOKEN_ENV, SECRET)
        assert raw(TEIReranker("m", stub.url).score("q", ["a", "bb"])) == [1.0, 2.0]
        assert stub.received[-1].headers["authorization"] == f"Bearer {SECRET}"


def test_403_is_named_as_the_token_lacking_access(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    forbidden = tei(rerank=lambda request, calls: Answer(403, {"error": "forbidden", "error_type": "Validation"}))
    with stub_server(forbidden) as stub:
        with pytest.raises(RerankerUnavailable, match="refused the token") as error:
            TEIReranker("m", stub.url).score("q", ["a"])
    assert error.value.__cause__.status == 403 and error.value.__cause__.kind == "auth"


def test_the_token_never_shows_in_reprs_labels_errors_or_logs(monkeypatch, caplog):
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    caplog.set_level(logging.DEBUG)  # every logger, httpx's and httpcore's included
    shown: list[str] = []
    with (stub_server(guarded(SECRET)) as good, stub_server(guarded("another")) as bad,
          stub_server(guarded(SECRET, EMBEDDER_INFO)) as embedder):
        reranker = TEIReranker("m", good.url)
        loaded = load_reranker("m", "cpu", backend="tei", endpoint=good.url, fallback=False)
        encoder = TEIEncoder("e", embedder.url)
        shown += [repr(reranker), reranker.label, repr(reranker.client), repr(loaded.model), loaded.model.label,
                  str(reranker.info), repr(encoder), encoder.label, repr(encoder.client), str(vars(encoder))]
        reranker.score("q", ["a", "bb"])
        with pytest.raises(RerankerUnavailable) as echoed:
            TEIReranker("m", bad.url)
        shown.append(str(echoed.value))
        assert "***" in str(echoed.value), "the echoed token was masked"
        fallback = load_reranker("m", "cpu", backend="tei", endpoint=bad.url)
        shown.append(fallback.fallback_reason)
        dense = load_dense_encoder("e", "cpu", backend="tei", endpoint=bad.url)
        shown.append(dense.fallback_reason)
    with pytest.raises(TEIError) as refused:
        TEIClient(f"http://127.0.0.1:{free_port()}").get("/info")
    shown.append(str(refused.value))
    with stub_server(tei(rerank=lambda request, calls: Answer(body=[], delay=1.0))) as slow:
        with pytest.raises(RerankerUnavailable) as timeout:
            TEIReranker("m", slow.url, client_options={"timeout": 0.2}).score("q", ["a"])
    shown.append(str(timeout.value))
    shown.append(caplog.text)
    assert caplog.records, "the check needs log lines to look at"
    leaks = [text for text in shown if SECRET in text]
    assert not leaks, leaks


def test_credentials_in_the_url_are_refused_without_showing_them():
    with pytest.raises(TEIError, match=TOKEN_ENV) as error:
        endpoint_urls(f"http://user:{SECRET}@127.0.0.1:8080")
    assert SECRET not in str(error.value) and error.value.kind == "setting"


@pytest.mark.parametrize(("value", "expected"), [
    ("", "needs the address of a TEI endpoint"), (None, "needs the address"), ("  ,  ", "needs the address"),
    ("ftp://127.0.0.1", "not an http(s) URL"), ("127.0.0.1:8080", "not an http(s) URL"),
    ("http://127.0.0.1:port", "not a valid URL"), ("http://127.0.0.1:8080/?model=x", "query or fragment"),
])
def test_bad_endpoint_settings_name_the_setting(value, expected):
    with pytest.raises(TEIError, match="--tei-url") as error:
        endpoint_urls(value)
    assert expected in str(error.value)


# -- too large: split and retried ---------------------------------------------------------------------

def test_413_splits_the_request_and_retries_the_halves():
    def rerank(request, calls):
        if len(request.body["texts"]) > 2:
            return Answer(413, raw=b"Failed to buffer the request body: length limit exceeded")
        return Answer(body=ranks(request.body["texts"]))

    with stub_server(tei(rerank=rerank)) as stub:
        reranker = TEIReranker("m", stub.url)
        assert raw(reranker.score("q", PASSAGES)) == [1.0, 2.0, 3.0, 4.0, 5.0]
        sizes = [len(r.body["texts"]) for r in stub.received if r.path == "/rerank"]
        assert sizes == [5, 2, 3, 1, 2], "5 refused, halves of 2 and 3; 3 refused, halves of 1 and 2"
        assert raw(reranker.score("q", PASSAGES)) == [1.0, 2.0, 3.0, 4.0, 5.0]
        sizes = [len(r.body["texts"]) for r in stub.received if r.path == "/rerank"][5:]
        assert sizes == [1] * 5, "later requests keep to half the smallest refused size: no refusal again"


def test_422_for_a_batch_over_the_limit_learns_the_limit():
    def rerank(request, calls):
        if len(request.body["texts"]) > 3:
            size = len(request.body["texts"])
            return Answer(422, {"error": f"batch size {size} > maximum allowed batch size 3",
                                "error_type": "Validation"})
        return Answer(body=ranks(request.body["texts"]))

    with stub_server(tei(rerank=rerank)) as stub:
        reranker = TEIReranker("m", stub.url)
        assert raw(reranker.score("q", PASSAGES * 2)) == [1.0, 2.0, 3.0, 4.0, 5.0] * 2
        assert reranker.score("q", PASSAGES) and all(
            len(r.body["texts"]) <= 3 for r in stub.received[-2:]), "the endpoint's limit is kept"


def test_one_text_too_large_is_an_error_not_a_loop():
    refuse = tei(rerank=lambda request, calls: Answer(413, {"error": "too big", "error_type": "Validation"}))
    with stub_server(refuse) as stub:
        with pytest.raises(RerankerUnavailable, match="too large.*smaller passage window"):
            TEIReranker("m", stub.url).score("q", PASSAGES)
        assert sum(r.path == "/rerank" for r in stub.received) == 3, "5, its first half 2, its first 1: stop"


def test_embeddings_are_split_on_413_too():
    def embed(request, calls):
        if len(request.body["inputs"]) > 2:
            return Answer(413, raw=b"length limit exceeded")
        return Answer(body=[[float(len(text)), 0.0] for text in request.body["inputs"]])

    with stub_server(tei(embed=embed, info=EMBEDDER_INFO)) as stub:
        vectors = TEIEncoder("m", stub.url).embed(["a", "bb", "ccc", "dddd"], is_query=False)
    assert vectors[:, 0].tolist() == [len("passage: a"), len("passage: bb"), len("passage: ccc"), len("passage: dddd")]


# -- overloaded: retried with backoff, bounded --------------------------------------------------------

@pytest.mark.parametrize("status", [429, 503])
def test_overloaded_then_success_is_retried_with_backoff(status):
    def rerank(request, calls):
        if calls <= 2:
            return Answer(status, {"error": "Model is overloaded", "error_type": "Overloaded"})
        return Answer(body=ranks(request.body["texts"]))

    with stub_server(tei(rerank=rerank)) as stub:
        reranker = TEIReranker("m", stub.url, client_options={"first_backoff_s": 0.05})
        started = time.monotonic()
        assert raw(reranker.score("q", ["a", "bb"])) == [1.0, 2.0]
        elapsed = time.monotonic() - started
        assert sum(r.path == "/rerank" for r in stub.received) == 3
    assert 0.15 <= elapsed < 2.0, "waited 0.05 then 0.1 s"


def test_overloaded_for_good_gives_up_after_the_bounded_retries():
    busy = tei(rerank=lambda request, calls: Answer(429, {"error": "Model is overloaded", "error_type": "Overloaded"}))
    with stub_server(busy) as stub:
        reranker = TEIReranker("m", stub.url, client_options={"retries": 2, "first_backoff_s": 0.01})
        with pytest.raises(RerankerUnavailable, match=r"overloaded .*after 3 tries") as error:
            reranker.score("q", ["a"])
        assert error.value.__cause__.kind == "overloaded"


def test_a_retry_after_beyond_the_budget_is_not_waited_for():
    busy = tei(rerank=lambda request, calls: Answer(503, {"error": "loading", "error_type": "Unhealthy"},
                                                    headers={"Retry-After": "120"}))
    with stub_server(busy) as stub:
        started = time.monotonic()
        with pytest.raises(RerankerUnavailable, match="after 1 tries"):
            TEIReranker("m", stub.url).score("q", ["a"])
        assert time.monotonic() - started < 2.0


def test_424_says_the_endpoint_serves_another_kind_of_model():
    wrong = tei(rerank=lambda request, calls: Answer(424, {"error": "model is not a re-ranker model",
                                                           "error_type": "Backend"}))
    with stub_server(wrong) as stub:
        with pytest.raises(RerankerUnavailable, match="model is not a re-ranker model") as error:
            TEIReranker("m", stub.url).score("q", ["a"])
    assert error.value.__cause__.kind == "wrong-model" and TEI_URL_ENV in str(error.value)


# -- through the loader: fallbacks run here and say why -----------------------------------------------

def test_an_unreachable_endpoint_falls_back_to_late_interaction_with_the_reason():
    url = f"http://127.0.0.1:{free_port()}"
    loaded = load_reranker("BAAI/bge-reranker-v2-m3", "cpu", backend="tei", endpoint=url)
    assert loaded.model.model_id == LATE_INTERACTION_ID and loaded.model.backend == "late-interaction"
    assert "connection refused" in loaded.fallback_reason and TEI_SETTING_HINT in loaded.fallback_reason
    with pytest.raises(RerankerUnavailable, match="connection refused"):
        load_reranker("BAAI/bge-reranker-v2-m3", "cpu", backend="tei", endpoint=url, fallback=False)
    assert load_reranker(LATE_INTERACTION_ID, "cpu", backend="tei").model.model_id == LATE_INTERACTION_ID


def test_no_endpoint_setting_is_named_by_the_loaders():
    loaded = load_reranker("BAAI/bge-reranker-v2-m3", "cpu", backend="tei")
    assert loaded.is_fallback and "--tei-url" in loaded.fallback_reason
    dense = load_dense_encoder("intfloat/multilingual-e5-small", "cpu", backend="tei")
    assert dense.is_fallback and f"{TEI_URL_ENV}" in dense.fallback_reason
    assert dense.model.backend == "torch" and dense.model.model_id == FALLBACK_DENSE_ID, "the fallback runs here"
    with pytest.raises(ValueError, match="needs the address"):
        load_dense_encoder("intfloat/multilingual-e5-small", "cpu", backend="tei", fallback=False)


# -- review fixes: token scope, named httpx errors, leaks, cancellation, discovery, redaction --------------

def test_the_token_goes_only_over_https_or_to_this_machine(monkeypatch, caplog):
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    for url in ("https://tei.example", "http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080",
                "http://127.0.0.2"):
        assert TEIClient(url).has_token, url
    caplog.set_level(logging.WARNING)
    for url in ("http://tei.example:8080", "http://10.0.0.5", "http://[2001:db8::1]"):
        client = TEIClient(url)
        assert not client.has_token and "authorization" not in {k.lower() for k in client._http.headers}, url
    assert "https://" in caplog.text and "not sending the token" in caplog.text and "tei.example" in caplog.text
    assert SECRET not in caplog.text


def test_search_tei_token_takes_precedence_over_hf_token(monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(TOKEN_ENV, "hf_wrong")
    monkeypatch.setenv(TEI_TOKEN_ENV, SECRET)
    with stub_server(guarded(SECRET)) as stub:
        assert raw(TEIReranker("m", stub.url).score("q", ["a", "bb"])) == [1.0, 2.0]
        assert stub.received[-1].headers["authorization"] == f"Bearer {SECRET}"
    TEIClient("http://tei.example")  # withheld: the warning names the variable, never its value
    assert TEI_TOKEN_ENV in caplog.text and SECRET not in caplog.text


def test_an_undecodable_body_is_a_named_tei_error():
    answer = Answer(raw=b"not gzip at all", headers={"content-encoding": "gzip"})
    with stub_server(lambda request, stub: answer) as stub:
        with pytest.raises(TEIError, match="could not be decoded") as error:
            TEIClient(stub.url).get("/info")
    assert error.value.kind == "protocol" and TEI_URL_ENV in str(error.value)


def test_too_many_redirects_is_a_named_tei_error(monkeypatch):
    client = TEIClient("http://127.0.0.1:9")

    def redirect_loop(*args, **kwargs):
        raise httpx.TooManyRedirects("Exceeded maximum allowed redirects.")
    monkeypatch.setattr(client._http, "request", redirect_loop)
    with pytest.raises(TEIError, match="redirected too often") as error:
        client.get("/info")
    assert error.value.kind == "protocol"


def test_the_client_is_closed_when_the_encoder_fails_after_discovery(monkeypatch):
    closed: list[str] = []
    original = TEIClient.close
    monkeypatch.setattr(TEIClient, "close", lambda self: (closed.append(self.url), original(self)))
    broken = tei(embed=lambda request, calls: Answer(500, {"error": "boom", "error_type": "Backend"}),
                 info=EMBEDDER_INFO)
    with stub_server(broken) as stub:
        with pytest.raises(TEIError, match="boom"):
            TEIEncoder("e", stub.url)
    assert closed == [stub.url]


def stop_after(seconds: float):
    deadline = time.monotonic() + seconds
    return lambda: time.monotonic() > deadline


def test_cancelling_a_rerank_stops_a_retry_backoff_promptly():
    busy = tei(rerank=lambda request, calls: Answer(503, {"error": "loading", "error_type": "Unhealthy"},
                                                    headers={"Retry-After": "10"}))
    with stub_server(busy) as stub:
        reranker = TEIReranker("m", stub.url)
        started = time.monotonic()
        with pytest.raises(RerankCancelled):
            reranker.score("q", ["a"], should_stop=stop_after(0.3))
        assert time.monotonic() - started < 1.5, "did not sleep through the 10 s Retry-After"


def test_cancelling_a_rerank_does_not_wait_for_a_slow_answer():
    slow = tei(rerank=lambda request, calls: Answer(body=ranks(request.body["texts"]), delay=5.0))
    with stub_server(slow) as stub:
        reranker = TEIReranker("m", stub.url)
        started = time.monotonic()
        with pytest.raises(RerankCancelled) as cancelled:
            reranker.score("q", ["a", "bb"], should_stop=stop_after(0.3))
        assert time.monotonic() - started < 1.5, "did not wait for the 5 s answer"
    assert cancelled.value.done == 0


def test_discovery_tries_every_url_past_one_that_is_not_tei():
    with (stub_server(lambda request, stub: Answer(raw=b"<html>a web page</html>")) as page,
          stub_server(tei()) as good):
        assert TEIReranker("m", f"{page.url},{good.url}").device == good.url


def test_discovery_names_every_endpoints_failure():
    refused = f"http://127.0.0.1:{free_port()}"
    with (stub_server(lambda request, stub: Answer(raw=b"<html>a web page</html>")) as page,
          stub_server(tei(info=EMBEDDER_INFO)) as embedder):
        with pytest.raises(RerankerUnavailable) as error:
            TEIReranker("m", f"{refused},{page.url},{embedder.url}")
        with pytest.raises(TEIError) as none_answered:
            TEIEncoder("e", f"{refused},{page.url}")
    message = str(error.value)
    assert "connection refused" in message and "did not answer like TEI" in message
    assert "serves intfloat/multilingual-e5-small (an embedding model)" in message
    assert error.value.__cause__.kind == "wrong-model"
    assert "connection refused" in str(none_answered.value) and "did not answer like TEI" in str(none_answered.value)
    assert none_answered.value.kind == "connect"


@pytest.mark.parametrize("value", [
    f"http://127.0.0.1:8080/?api_key={SECRET}", f"ftp://127.0.0.1/?api_key={SECRET}",
    f"http://127.0.0.1:port/?api_key={SECRET}", f"http://127.0.0.1:8080/#{SECRET}",
    f"ftp://user:{SECRET}@127.0.0.1/", f"http://127.0.0.1:port/x?k={SECRET}",
])
def test_url_errors_never_quote_the_query_or_credentials(value):
    with pytest.raises(TEIError) as error:
        endpoint_urls(value)
    assert SECRET not in str(error.value) and "--tei-url" in str(error.value)


def test_a_slow_endpoint_does_not_block_other_model_loads():
    """GET /info of a slow endpoint is read outside the loader's global locks; a key still loads once."""
    load_reranker(LATE_INTERACTION_ID, "cpu")  # loaded before, so the timing below is the lock's alone
    slow = tei(info=RERANKER_INFO)

    def answer(request: Received, stub: Stub) -> Answer:
        reply = slow(request, stub)
        return Answer(reply.status, reply.body, delay=2.0) if request.path == "/info" else reply

    with stub_server(answer) as stub:
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(
            load_reranker("m", "cpu", backend="tei", endpoint=stub.url, fallback=False))) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 5
        while not stub.received and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        assert load_reranker(LATE_INTERACTION_ID, "cpu").model.model_id == LATE_INTERACTION_ID
        assert load_dense_encoder(FALLBACK_DENSE_ID, "cpu").model.model_id == FALLBACK_DENSE_ID
        assert time.monotonic() - started < 1.0, "waited for the slow endpoint's load"
        for thread in threads:
            thread.join(timeout=10)
        assert stub.paths().count("GET /info") == 1, "one key is built once"
    assert len(results) == 2 and results[0].model is results[1].model


def test_a_slow_embedding_endpoint_does_not_block_other_encoder_loads():
    load_dense_encoder(FALLBACK_DENSE_ID, "cpu")
    slow = tei(info=EMBEDDER_INFO)

    def answer(request: Received, stub: Stub) -> Answer:
        reply = slow(request, stub)
        return Answer(reply.status, reply.body, delay=2.0) if request.path == "/embed" else reply

    with stub_server(answer) as stub:
        thread = threading.Thread(target=lambda: load_dense_encoder("e", "cpu", backend="tei", endpoint=stub.url))
        thread.start()
        deadline = time.monotonic() + 5
        while "POST /embed" not in stub.paths() and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        assert load_dense_encoder(FALLBACK_DENSE_ID, "cpu").model.model_id == FALLBACK_DENSE_ID
        assert time.monotonic() - started < 1.0, "waited for the slow endpoint's probe"
        thread.join(timeout=10)
