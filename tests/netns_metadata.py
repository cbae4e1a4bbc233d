"""The scenario of tests/test_tei_netns.py, run inside the network namespace that test creates (do not run it
anywhere else: it serves on 100.100.100.200:80 and 93.184.215.14:80, addresses the test puts on the
namespace's own loopback, and rewrites the namespace's hosts file, whose path it is given).

    ip netns exec NS python tests/netns_metadata.py /etc/netns/NS/hosts

- A fake cloud metadata service on 100.100.100.200 (Alibaba Cloud's address, in 100.64.0.0/10) answers every
  request with a secret, as a 404 body except for the listing at /latest/meta-data.
- A fake public TEI endpoint on 93.184.215.14 (a globally routable address, here only inside the namespace)
  serves a reranker under the name tei.rebind.test, which the hosts file maps to it, then to the metadata
  service (DNS rebinding).

It prints one JSON object: what each step saw and how many requests each server had received after it.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

METADATA = "100.100.100.200"
PUBLIC = "93.184.215.14"
NAME = "tei.rebind.test"
SECRET = "SECRET-ram-role-AccessKeyId-LTAI5t"
RERANKER_INFO = {"model_id": "BAAI/bge-reranker-v2-m3",
                 "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}},
                 "max_input_length": 512, "max_client_batch_size": 8, "auto_truncate": True}


class Server:
    """An HTTP server on `address`:80 that records (path, Host header) of every request."""

    def __init__(self, address: str, answer) -> None:
        self.requests: list[tuple[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                server.requests.append((self.path, self.headers.get("host", "")))
                status, payload = answer(self.path, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer((address, 80), Handler)
        self.http.daemon_threads = True
        threading.Thread(target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()


def metadata_answer(path: str, body) -> tuple[int, bytes]:
    if path.rstrip("/") == "/latest/meta-data":
        return 200, b"instance-id\nram/security-credentials/\n"
    return 404, f"<Error><Code>NotFound</Code><Detail>{SECRET}</Detail></Error>".encode()


def tei_answer(path: str, body) -> tuple[int, object]:
    if path == "/info":
        return 200, RERANKER_INFO
    if path == "/rerank":
        ranks = [{"index": i, "score": float(len(text))} for i, text in enumerate(body["texts"])]
        return 200, sorted(ranks, key=lambda rank: -rank["score"])
    return 404, {"error": "no route", "error_type": "Validation"}


@contextmanager
def step(seen: dict, name: str, *servers: Server):
    """Record under `name` the error the block raised (its type and message), if any, and each server's count."""
    record: dict = {"error": None, "kind": None}
    try:
        yield record
    except Exception as error:  # noqa: BLE001 - every failure is what the test reads
        record["error"] = f"{type(error).__name__}: {error}"
        record["kind"] = getattr(error, "kind", None) or getattr(getattr(error, "__cause__", None), "kind", None)
    record["requests"] = {name: len(server.requests) for name, server in zip(("metadata", "tei"), servers, strict=True)}
    seen[name] = record


def map_name(hosts: str, address: str) -> str:
    with open(hosts, "w", encoding="utf-8") as file:
        file.write(f"127.0.0.1 localhost\n{address} {NAME}\n")
    return socket.gethostbyname(NAME)


def main(hosts: str) -> dict:
    import httpx

    from search.backends.tei import EndpointPolicy, TEIClient, TEIReranker, typed_endpoints

    metadata, tei = Server(METADATA, metadata_answer), Server(PUBLIC, tei_answer)
    servers = (metadata, tei)
    seen: dict = {}
    url = f"http://{METADATA}/latest/meta-data"

    with step(seen, "reachable", *servers) as record:  # the metadata service answers anyone who asks
        record["status"] = httpx.get(url, trust_env=False, timeout=5).status_code
    with step(seen, "typed_literal", *servers):
        typed_endpoints(url, operator_urls="", allow_internal=False, has_token=False)
    with step(seen, "connect_literal", *servers):
        TEIClient(url, policy=EndpointPolicy(typed=True, public_only=True)).get("/info")

    # A name that is public when typed: the build checks it, and the client reaches it through the checked address.
    seen["resolves_to"] = map_name(hosts, PUBLIC)
    with step(seen, "typed_name", *servers) as record:
        record["value"] = typed_endpoints(f"http://{NAME}", operator_urls="", allow_internal=False,
                                          has_token=False)
        reranker = TEIReranker("auto", f"http://{NAME}")
        record["scores"] = [score.raw for score in reranker.score("q", ["a", "bbb"])]
        record["host_headers"] = sorted({host for _, host in tei.requests})
    # Then the name moves to the metadata service: the next request, and a new client, are refused at connect.
    seen["rebound_to"] = map_name(hosts, METADATA)
    with step(seen, "rebound_loaded", *servers):
        reranker.score("q", ["a", "bbb"])
    with step(seen, "rebound_new", *servers):
        TEIClient(f"http://{NAME}").get("/info")

    # Controls: with internal addresses allowed the same name does reach the metadata service (so the refusals
    # above are the check's), yet the typed endpoint's answer is not shown; the operator's own endpoint keeps
    # today's detail.
    with step(seen, "allowed_typed", *servers):
        typed_endpoints(f"http://{NAME}", operator_urls="", allow_internal=True, has_token=False)
        TEIReranker("auto", f"http://{NAME}")
    with step(seen, "operator", *servers):
        TEIClient(url).get("/info")
    seen["metadata_paths"] = [path for path, _ in metadata.requests]
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
