"""Servers and schemas for the TEI tests. Every server listens on 127.0.0.1 and a free port, in a thread of
the test process, and stops when its `with` block ends:

- `uvicorn_server(app)`: a FastAPI app (this project's `search.serve`) under uvicorn, a real HTTP server.
- `stub_server(answer)`: a small stdlib HTTP server answering each request as `answer` says (status, body,
  delay), recording what it was sent, to play a TEI endpoint that fails in a given way.
- `validate(instance, schema)` / `check_response(path, method, response)`: TEI's OpenAPI document
  (tests/tei_openapi/openapi.json) as JSON Schema validators; `path` is the documented route (`/embed` for
  an answer of `POST /`, `/v1/embeddings` for one of `/embeddings`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

OPENAPI = Path(__file__).resolve().parent / "tei_openapi" / "openapi.json"
START_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def uvicorn_server(app, config: Callable[[str, int], Any] | None = None) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 in a thread; yield its base URL. `config(host, port)`, when
    given, makes the uvicorn Config instead (e.g. `search.serve.server_config`, with its deadlines)."""
    import uvicorn

    port = free_port()
    made = config("127.0.0.1", port) if config is not None else uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(made)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"uvicorn did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass(frozen=True)
class Answer:
    """What a stub answers: a status, a JSON body (or raw bytes), headers, after `delay` seconds."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raw: bytes | None = None


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class Stub:
    """A running stub server: its `url` and the requests it `received`, in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[Received] = []
        self._lock = threading.Lock()

    def record(self, request: Received) -> None:
        with self._lock:
            self.received.append(request)

    def paths(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.received]


@contextmanager
def stub_server(answer: Callable[[Received, Stub], Answer]) -> Iterator[Stub]:
    """Run an HTTP server on 127.0.0.1 answering each request with `answer(request, stub)`."""
    port = free_port()
    stub = Stub(f"http://127.0.0.1:{port}")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            data = self.rfile.read(length) if length else b""
            try:
                body = json.loads(data) if data else None
            except ValueError:
                body = data
            request = Received(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            stub.record(request)
            reply = answer(request, stub)
            if reply.delay:
                time.sleep(reply.delay)
            payload = reply.raw if reply.raw is not None else (
                b"" if reply.body is None else json.dumps(reply.body).encode())
            try:
                self.send_response(reply.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = _handle

        def log_message(self, *args) -> None:  # keep the test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# -- TEI's OpenAPI schemas ----------------------------------------------------------------------------

@lru_cache(maxsize=1)
def openapi() -> dict[str, Any]:
    """TEI's OpenAPI document, with OpenAPI 3.0's `nullable` made JSON Schema and the OpenAI error body's
    `error_type` field named `type`, as TEI's code serialises it (see tests/tei_openapi/README.md)."""
    document = _json_schema(json.loads(OPENAPI.read_text(encoding="utf-8")))
    error = document["components"]["schemas"]["OpenAICompatErrorResponse"]
    error["properties"]["type"] = error["properties"].pop("error_type")
    error["required"] = ["type" if name == "error_type" else name for name in error["required"]]
    return document


def _json_schema(node: Any) -> Any:
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


def validate(instance: Any, schema: str) -> None:
    """Raise jsonschema.ValidationError unless `instance` is valid against components/schemas/`schema`."""
    import jsonschema

    document = openapi()
    jsonschema.validate(instance, {"$ref": f"#/components/schemas/{schema}", "components": document["components"]},
                        cls=jsonschema.Draft7Validator)


def check_response(path: str, method: str, response) -> None:
    """Assert that `response` (an httpx response) has a status TEI documents for `method` `path` and, when
    the document gives that status a JSON body, that the body is valid against its schema."""
    operation = openapi()["paths"][path][method.lower()]
    status = str(response.status_code)
    assert status in operation["responses"], f"{method} {path} answered {status}; TEI documents " \
                                             f"{sorted(operation['responses'])}"
    content = operation["responses"][status].get("content")
    if content is None:
        return
    if "text/plain" in content:
        assert response.headers["content-type"].startswith("text/plain"), response.headers["content-type"]
        return
    reference = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    validate(response.json(), reference)
