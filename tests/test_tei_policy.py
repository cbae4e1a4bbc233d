"""Which TEI endpoints a visitor may type, and what the client does with them (issue 21, section 1): the address
rule (only globally routable addresses, for every address a name resolves to), the operator's policy
(`typed_endpoints`, with the messages the app shows), the check again at connect time (a name that rebinds after
the check is refused before any request), and no answer of a typed endpoint shown beyond its status.

Servers are stubs on 127.0.0.1 (tests/tei_helpers.py); a resolver here plays DNS, as `internal_host` and the
client take one. The same with a real resolver and a fake metadata service is tests/test_tei_netns.py."""

from __future__ import annotations

import ipaddress
import socket
import threading

import pytest

from search.backends.tei import (
    ALLOW_INTERNAL_TEI_ENV,
    OPERATOR_ENDPOINT,
    TEI_URL_ENV,
    TOKEN_ENV,
    EndpointPolicy,
    TEIClient,
    TEIError,
    TEIReranker,
    address_problem,
    endpoint_policy,
    internal_host,
    typed_endpoints,
)
from search.backends.tei import policy as tei_policy
from search.inference import RerankerUnavailable
from search.loading import load_reranker
from tests.tei_helpers import Answer, stub_server

SECRET = "SECRET-body-7f3a"
TYPED = EndpointPolicy(typed=True)  # typed, internal addresses allowed: how a stub on 127.0.0.1 can be typed
RERANKER_INFO = {"model_id": "BAAI/bge-reranker-v2-m3", "max_input_length": 512, "max_client_batch_size": 8,
                 "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}}


@pytest.fixture(autouse=True)
def fresh_policy(monkeypatch):
    """No token in the environment, and an empty memory of typed URLs for each test."""
    for name in (TOKEN_ENV, "SEARCH_TEI_TOKEN", TEI_URL_ENV, "SEARCH_TEI_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tei_policy, "_typed", {})


def answers(*addresses: str):
    """A resolver (getaddrinfo's shape) answering `addresses`."""
    return lambda host, port: [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, 0))
                               for a in addresses]


def rebinding(first: str, then: str):
    """A resolver answering `first` once, then `then`: DNS rebinding between a check and a connect."""
    calls: list[str] = []
    lock = threading.Lock()

    def resolve(host, port):
        with lock:
            calls.append(host)
            address = first if len(calls) == 1 else then
        return answers(address)(host, port)
    resolve.calls = calls
    return resolve


# -- the address rule ---------------------------------------------------------------------------------

SHARED = "in the shared address space 100.64.0.0/10 (carrier-grade NAT, where cloud metadata services can live)"
IETF = "in 192.0.0.0/24 (IETF protocol assignments)"


@pytest.mark.parametrize(("address", "why"), [
    ("100.100.100.200", SHARED),  # Alibaba Cloud's metadata service
    ("100.64.0.1", SHARED), ("100.127.255.255", SHARED),
    ("192.0.0.9", IETF), ("192.0.0.10", IETF), ("192.0.0.255", IETF),  # Python calls .9 and .10 global
    ("192.0.0.1", "a private address"),
    ("169.254.169.254", "a link-local address"), ("127.1.2.3", "a loopback address"),
    ("10.0.0.7", "a private address"), ("0.0.0.0", "an unspecified address"),
    ("224.0.0.251", "a multicast address"), ("239.255.255.250", "a multicast address"),
    ("fc00::1", "a private address"), ("fd00:ec2::254", "a private address"),  # IPv6 ULA (AWS's metadata)
    ("fe80::1", "a link-local address"), ("fec0::1", "a site-local address"), ("ff0e::1", "a multicast address"),
    ("::1", "a loopback address"), ("::", "an unspecified address"),
    ("::ffff:10.0.0.1", "an IPv6 form of 10.0.0.1, a private address"),  # IPv4-mapped
    ("::ffff:127.0.0.1", "an IPv6 form of 127.0.0.1, a loopback address"),
    ("::ffff:100.100.100.200", f"an IPv6 form of 100.100.100.200, {SHARED}"),
    ("64:ff9b::100.100.100.200", f"an IPv6 form of 100.100.100.200, {SHARED}"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "an IPv6 form of 169.254.169.254, a link-local address"),
    ("64:ff9b:1::a00:1", "a reserved address"),  # local-use NAT64
    ("2002:6464:64c8::1", f"an IPv6 form of 100.100.100.200, {SHARED}"),  # 6to4
    ("2002:a00:1::1", "an IPv6 form of 10.0.0.1, a private address"),
    ("::a00:1", "a reserved address"),  # deprecated IPv4-compatible
])
def test_an_address_that_is_not_globally_routable_is_named(address, why):
    assert address_problem(ipaddress.ip_address(address)) == why, address


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "100.63.255.255", "100.128.0.0", "192.0.1.1",
                                     "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808",
                                     "2002:808:808::1"])
def test_a_globally_routable_address_is_public(address):
    assert address_problem(ipaddress.ip_address(address)) is None, address


def test_every_address_a_name_resolves_to_is_judged():
    assert internal_host("https://tei.example", resolve=answers("93.184.216.34", "2606:4700::1")) is None
    assert internal_host("https://tei.example", resolve=answers("93.184.216.34", "100.100.100.200")) == \
        f"tei.example (100.100.100.200) is {SHARED}", "one internal address among public ones is enough"
    assert internal_host("http://[::ffff:a9fe:a9fe]/") == \
        "::ffff:a9fe:a9fe is an IPv6 form of 169.254.169.254, a link-local address"
    assert internal_host("http://100.100.100.200/latest/meta-data") == f"100.100.100.200 is {SHARED}"


# -- the operator's policy for typed URLs ---------------------------------------------------------------

PUBLIC_DNS = answers("93.184.216.34")


def typed(value, *, operator="", allow_internal=False, has_token=False, resolve=PUBLIC_DNS, **kw):
    return typed_endpoints(value, operator_urls=operator, allow_internal=allow_internal, has_token=has_token,
                           resolve=resolve, **kw)


def test_a_typed_url_must_name_a_public_address_and_the_message_names_the_settings():
    with pytest.raises(ValueError) as refused:
        typed("http://100.100.100.200/latest/meta-data")
    assert str(refused.value) == (
        f"The TEI URL 100.100.100.200 is not a public address (100.100.100.200 is {SHARED}). Use a public "
        f"endpoint; the operator can set it as {TEI_URL_ENV}, or allow internal addresses with "
        f"{ALLOW_INTERNAL_TEI_ENV}=1.")
    with pytest.raises(TEIError, match=r"metadata\.example \(169\.254\.169\.254\) is a link-local address"):
        typed("https://metadata.example", resolve=answers("169.254.169.254"))
    with pytest.raises(TEIError, match="no-such-host.invalid does not resolve"):
        typed("https://no-such-host.invalid", resolve=socket.getaddrinfo)
    with pytest.raises(TEIError, match="carries credentials"):
        typed("https://user:pw@tei.example")
    assert tei_policy._typed == {}, "nothing refused is remembered"


def test_the_operators_endpoints_and_allowed_internal_ones_pass():
    assert typed("http://127.0.0.1:8080/", operator="http://127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert endpoint_policy("http://127.0.0.1:8080") == OPERATOR_ENDPOINT, "the operator's own stays the operator's"
    assert typed("http://10.0.0.7", allow_internal=True) == "http://10.0.0.7"
    assert endpoint_policy("http://10.0.0.7") == EndpointPolicy(typed=True, public_only=False)
    assert typed(" https://tei.example/ , http://127.0.0.1:8080", operator="http://127.0.0.1:8080") == \
        "https://tei.example,http://127.0.0.1:8080"
    assert endpoint_policy("https://tei.example") == EndpointPolicy(typed=True, public_only=True)
    assert typed("") is None and typed("   ") is None, "empty: the operator's endpoint"
    assert typed("https://elsewhere.example", hidden=True) is None, "hidden field: a value sent anyway is ignored"
    assert endpoint_policy("https://elsewhere.example") == OPERATOR_ENDPOINT


def test_with_a_token_only_the_operators_endpoints_are_accepted():
    assert typed("https://operator.example/", operator="https://operator.example", has_token=True) == \
        "https://operator.example"
    with pytest.raises(TEIError) as refused:
        typed("https://attacker.example", operator="https://operator.example", has_token=True)
    assert str(refused.value) == (
        f"This server holds a TEI token and sends it only to the endpoints its operator set ({TEI_URL_ENV}); "
        "attacker.example is not one of them. Leave the TEI URL empty, or run the app yourself to use another "
        "endpoint.")


def test_the_token_never_goes_to_a_typed_endpoint(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, "hf_token_for_the_operator")
    with stub_server(lambda request, stub: Answer(body=RERANKER_INFO)) as stub:
        TEIClient(stub.url).get("/info")
        TEIClient(stub.url, policy=TYPED).get("/info")
    sent = [request.headers.get("authorization") for request in stub.received]
    assert sent == ["Bearer hf_token_for_the_operator", None], "the operator's endpoint gets it, a typed one never"


# -- checked again at connect time ----------------------------------------------------------------------

def test_a_name_that_rebinds_after_the_check_is_refused_before_any_request():
    with stub_server(lambda request, stub: Answer(body=RERANKER_INFO)) as stub:
        port = stub.url.rsplit(":", 1)[1]
        url = f"http://tei.rebind.example:{port}"
        dns = rebinding("93.184.216.34", "127.0.0.1")
        assert typed(url, resolve=dns) == url, "public when the build checks it"
        with pytest.raises(RerankerUnavailable) as refused:
            TEIReranker("auto", url, client_options={"resolve": dns})
        assert stub.received == [], "no request reached the server"
    assert dns.calls == ["tei.rebind.example", "tei.rebind.example"], "resolved at the check, then at connect"
    assert refused.value.__cause__.kind == "address"
    assert "was not contacted: tei.rebind.example (127.0.0.1) is a loopback address" in str(refused.value)
    assert ALLOW_INTERNAL_TEI_ENV in str(refused.value), "the message names the setting"


def test_at_connect_every_address_is_judged_and_none_is_tried():
    client = TEIClient("https://tei.example", policy=EndpointPolicy(typed=True, public_only=True),
                       resolve=answers("93.184.216.34", "10.0.0.1"))
    with pytest.raises(TEIError, match=r"tei\.example \(10\.0\.0\.1\) is a private address") as refused:
        client.get("/info")
    assert refused.value.kind == "address"
    unresolved = TEIClient("https://tei.example", policy=EndpointPolicy(typed=True, public_only=True),
                           resolve=answers())
    with pytest.raises(TEIError, match="could not be resolved") as failed:
        unresolved.get("/info")
    assert failed.value.kind == "dns"


def test_a_typed_address_is_refused_at_connect_even_without_the_build_check():
    with stub_server(lambda request, stub: Answer(body=RERANKER_INFO)) as stub:
        client = TEIClient(stub.url, policy=EndpointPolicy(typed=True, public_only=True))
        with pytest.raises(TEIError, match=r"127\.0\.0\.1 is a loopback address") as refused:
            client.get("/info")
        assert refused.value.kind == "address" and stub.received == []
        assert TEIClient(stub.url).get("/info")["model_id"] == RERANKER_INFO["model_id"], "the stub does answer"


# -- nothing a typed endpoint answers is shown ----------------------------------------------------------

@pytest.mark.parametrize("reply", [
    Answer(404, raw=f"<Error><Detail>{SECRET}</Detail></Error>".encode()),
    Answer(500, {"error": SECRET, "error_type": "Backend"}),
    Answer(401, {"error": SECRET}), Answer(413, {"error": SECRET}), Answer(424, {"error": SECRET}),
    Answer(503, {"error": SECRET}), Answer(200, raw=SECRET.encode()),
], ids=["404", "500", "401", "413", "424", "503", "not-json"])
def test_a_typed_endpoints_error_says_the_status_never_the_body(reply):
    with stub_server(lambda request, stub: reply) as stub:
        with pytest.raises(TEIError) as shown:
            TEIClient(stub.url, retries=0).get("/info")
        with pytest.raises(TEIError) as hidden:
            TEIClient(stub.url, retries=0, policy=TYPED).get("/info")
    if reply.status != 200:
        assert SECRET in str(shown.value), "the operator's endpoint keeps today's detail"
        assert str(reply.status) in str(hidden.value) and "is not shown" in str(hidden.value), hidden.value
    assert SECRET not in str(hidden.value) and hidden.value.kind == shown.value.kind, hidden.value


def test_a_typed_endpoints_bad_answers_are_named_without_quoting_them():
    bad_rank = [{"index": 0, "score": SECRET}, {"index": 1, "score": 1.0}]

    def endpoint(request, stub):
        return Answer(body=RERANKER_INFO) if request.path == "/info" else Answer(body=bad_rank)
    with stub_server(endpoint) as stub:
        with pytest.raises(RerankerUnavailable, match="bad rank") as shown:
            TEIReranker("auto", stub.url).score("q", ["a", "b"])
        with pytest.raises(RerankerUnavailable, match="bad rank") as hidden:
            TEIReranker("auto", stub.url, client_options={"policy": TYPED}).score("q", ["a", "b"])
    assert SECRET in str(shown.value) and SECRET not in str(hidden.value)

    for info in ({"model_id": "m", "model_type": {SECRET: {}}}, {**RERANKER_INFO, "model_id": f"<{SECRET}> x"}):
        with stub_server(lambda request, stub, info=info: Answer(body=info)) as stub:
            with pytest.raises(RerankerUnavailable, match="did not answer like TEI|unknown type") as hidden:
                TEIReranker("auto", stub.url, client_options={"policy": TYPED})
        assert SECRET not in str(hidden.value), hidden.value


def test_a_typed_endpoint_that_is_not_http_is_not_quoted():
    # An internal service that is not HTTP (an SSH banner): the HTTP parser's error would quote its first line.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            connection, _ = server.accept()
            with connection:
                connection.recv(1024)
                connection.sendall(f"SSH-2.0-{SECRET}\r\nx: y\r\n\r\n".encode())
                connection.recv(1024)  # until the client gives up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        with pytest.raises(TEIError) as shown:
            TEIClient(f"http://127.0.0.1:{port}", timeout=5).get("/info")
        with pytest.raises(TEIError) as hidden:
            TEIClient(f"http://127.0.0.1:{port}", timeout=5, policy=TYPED).get("/info")
    finally:
        thread.join(timeout=5)
        server.close()
    assert SECRET in str(shown.value), "the operator sees what its endpoint said"
    assert SECRET not in str(hidden.value) and hidden.value.kind == "connect", hidden.value


def test_the_loaders_reason_for_a_typed_url_quotes_no_body():
    # The path: a build with backend tei and a typed URL. The loader's reason is what the page shows as
    # the fallback reason (fallback=False raises it rather than loading the offline fallback model).
    def endpoint(request, stub):
        return Answer(404, raw=f"ram/security-credentials/{SECRET}".encode())
    with stub_server(endpoint) as stub:
        url = typed(stub.url, allow_internal=True)
        with pytest.raises(RerankerUnavailable) as reason:
            load_reranker("BAAI/bge-reranker-v2-m3", backend="tei", endpoint=url, fallback=False)
        assert [request.path for request in stub.received] == ["/info"]
    assert "404" in str(reason.value) and "is not shown" in str(reason.value), reason.value
    assert SECRET not in str(reason.value)
