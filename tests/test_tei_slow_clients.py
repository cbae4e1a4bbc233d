"""`python -m search serve` drops slow clients and stops work nobody waits for: a request head or body that
trickles in is cut off at its deadline (1 s here), an idle connection is closed, /health answers meanwhile,
and a rerank whose client went away stops at its next batch. Raw sockets on 127.0.0.1 play the clients;
every wait is bounded, and no assertion is on time: each is on what the server did."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from search.backends.torch_reranker import CrossEncoderReranker
from search.serve import ServeLimits, TEIService, server_config
from tests.gated import GatedReranker
from tests.tei_helpers import uvicorn_server
from tests.tiny_models import build_tiny_xlmr_cross_encoder

QUERY = "Which river flows through Berlin?"
PASSAGES = [f"The Spree flows through Berlin, part {i}." for i in range(12)]
DEADLINE_S = 1.0
GIVE_UP_S = 30.0  # a client that is never cut off fails the test after this, instead of hanging


@pytest.fixture(scope="module")
def backend(tmp_path_factory):
    folder = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-slow"), [QUERY, *PASSAGES])
    return CrossEncoderReranker(str(folder), "cpu", batch_size=1)  # one pair per batch: a stop check per pair


@pytest.fixture(scope="module")
def gated(backend):
    return GatedReranker(backend)


@pytest.fixture(scope="module")
def served(gated):
    gated.open()  # no pauses unless a test asks for them
    service = TEIService.from_models(reranker=gated, limits=ServeLimits(
        header_timeout_s=DEADLINE_S, body_timeout_s=DEADLINE_S, keep_alive_s=DEADLINE_S))
    with uvicorn_server(None, config=lambda host, port: server_config(service, host, port)) as url:
        yield url, service


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    client = socket.create_connection((host, int(port)), timeout=GIVE_UP_S)
    return client


def trickle(client: socket.socket, data: bytes, url: str) -> tuple[int, bytes]:
    """Send `data` a byte every 0.2 s, checking /health between bytes; return how many bytes went out before
    the server closed the connection, and what it answered."""
    client.settimeout(0.2)
    answer = b""
    for sent in range(len(data)):
        try:
            client.sendall(data[sent:sent + 1])
        except (BrokenPipeError, ConnectionResetError):
            return sent, answer
        try:
            chunk = client.recv(4096)
            if not chunk:
                return sent + 1, answer
            answer += chunk
        except TimeoutError:
            pass
        assert httpx.get(url + "/health", timeout=GIVE_UP_S).status_code == 200, "/health answers meanwhile"
    return len(data), answer


def test_a_head_that_trickles_in_is_cut_off(served):
    url, _ = served
    head = b"POST /rerank HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 400 + b"\r\n\r\n"
    with connect(url) as client:
        sent, answer = trickle(client, head, url)
    assert sent < len(head), "the server closed the connection before the head was whole"
    assert answer == b"", "nothing is answered to a head that never arrived"


def test_a_body_that_trickles_in_gets_408_and_the_connection_closes(served):
    url, _ = served
    body = b'{"query": "' + QUERY.encode() + b'", "texts": ["' + b"x" * 300 + b'"]}'
    head = (f"POST /rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with connect(url) as client:
        client.sendall(head)
        sent, answer = trickle(client, body, url)
        client.settimeout(GIVE_UP_S)
        try:
            while chunk := client.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert sent < len(body), "the server stopped reading before the body was whole"
    assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
    assert b"the request body did not arrive within 1 s" in answer and b"connection: close" in answer.lower()


def test_an_idle_connection_is_closed(served):
    url, _ = served
    with connect(url) as client:
        client.settimeout(GIVE_UP_S)
        assert client.recv(16) == b"", "a connection that sends nothing is closed by the server"
    with connect(url) as client:  # and one that went idle after an answer (keep-alive)
        client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        client.settimeout(GIVE_UP_S)
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]


def test_a_rerank_whose_client_went_away_stops_at_its_next_batch(served, gated, backend):
    url, service = served
    scored: list[int] = []
    handle = backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: scored.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    gated._open = False
    pauses = gated.pauses
    dropped = service.metrics.value("te_request_failure", {"err": "dropped"})
    body = json.dumps({"query": QUERY, "texts": [f"{text} (gone)" for text in PASSAGES]}).encode()
    try:
        with connect(url) as client:
            client.sendall((f"POST /rerank HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            f"Content-Length: {len(body)}\r\n\r\n").encode() + body)
            gated.wait_for_pause(pauses + 1)  # the first pair is scored; the client leaves
        time.sleep(1.0)  # for the server to see the connection close (not a timed assertion)
        gated.open()
        deadline = time.monotonic() + GIVE_UP_S
        while service.metrics.value("te_request_failure", {"err": "dropped"}) == dropped:
            assert time.monotonic() < deadline, "the rerank was never stopped"
            time.sleep(0.05)
    finally:
        gated.open()
        handle.remove()
    assert 1 <= len(scored) < len(PASSAGES), f"scored {len(scored)} of {len(PASSAGES)} pairs before stopping"
    assert httpx.post(url + "/rerank", json={"query": QUERY, "texts": PASSAGES[:2]}).status_code == 200, \
        "the server goes on answering"
