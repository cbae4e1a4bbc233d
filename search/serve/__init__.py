"""A text-embeddings-inference (TEI) compatible server over this project's models, so any TEI client (and any
OpenAI embeddings client) can use a reranker or an encoder loaded here; docs/tei.md lists every route and
field, and what knowingly differs from TEI.

- `TEIService`: the routes' logic over a reranker and/or an encoder from `search.loading` (the same cached
  models, score cache and RERANK_LOCK as the app), within its `ServeLimits`.
- `create_app` / `serve` / `server_config`: a FastAPI app with the routes at its root, run by uvicorn
  (`python -m search serve`) with deadlines for a request's head and body and for idle connections.
- `mount_tei_routes(app)`: the same routes under a prefix (default ``/tei``) of another FastAPI app, such as
  the Gradio app's server, when the setting SEARCH_SERVE_TEI asks for it (off by default).

TEI's behaviour is followed field by field from its router (router/src/http/server.rs, types.rs), core
(tokenization.rs, infer.rs) and OpenAPI document, served at ``/api-doc/openapi.json``: routes, status codes,
error bodies ``{"error", "error_type"}`` (OpenAI's routes: ``{"message", "code", "type"}``), the messages'
prefixes ("Input validation error: ", "Backend error: "), one concurrency permit per input, truncation at
``max_input_length`` from either side, prompts, ``dimensions``, token-id inputs, the x-* timing headers and
the Prometheus metrics' names (`search.serve.metrics`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import fastapi
from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import __version__, config
from .batching import MAX_BATCH_TOKENS
from .limits import ServeLimits
from .metrics import Metrics
from .requests import (
    DESERIALIZE,
    EMPTY_INPUT,
    NOT_A_RERANKER,
    NOT_AN_EMBEDDER,
    STATUS,
    ErrorType,
    TEIRequestError,
    read_json,
)
from .service import RERANKER_LABELS, Answer, ServedModels, TEIService
from .timing import Timing, timing_headers
from .tokens import MAX_CHAR_MULTIPLIER

__all__ = [
    "API_KEY_ENV", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_PREFIX", "DESERIALIZE", "EMPTY_INPUT", "MAX_BATCH_TOKENS",
    "MAX_CHAR_MULTIPLIER", "NOT_AN_EMBEDDER", "NOT_A_RERANKER", "OPENAPI_PATH", "RERANKER_LABELS", "STATUS", "Answer",
    "ErrorType", "Metrics", "ServeLimits", "ServedModels", "TEIRequestError", "TEIService", "Timing", "create_app",
    "mount_tei_routes", "openapi_document", "serve", "server_config", "tei_router",
]

logger = logging.getLogger(__name__)

API_KEY_ENV = "SEARCH_SERVE_API_KEY"
DEFAULT_PREFIX = "/tei"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
OPENAPI_PATH = "/api-doc/openapi.json"


# -- HTTP ---------------------------------------------------------------------------------------------

def tei_router(service: TEIService) -> fastapi.APIRouter:
    """An APIRouter with TEI's routes over `service` (paths relative to wherever it is included)."""
    router = fastapi.APIRouter()

    async def call(request: Request, route: Callable[..., Answer], *, openai: bool = False,
                   stoppable: bool = False) -> Response:
        started = time.perf_counter()
        if not service.authorized(request.headers.get("authorization")):
            return Response(status_code=401)
        stop = threading.Event()
        watcher: asyncio.Task | None = None
        try:
            body = await read_json(request, service.limits)
            if stoppable:
                watcher = asyncio.create_task(_watch_disconnect(request, stop))
                answer = await run_in_threadpool(route, body, stop.is_set)
            else:
                answer = await run_in_threadpool(route, body)
        except TEIRequestError as error:
            headers = {"connection": "close"} if error.status in (408, 413) else None
            return error.response(openai=openai, headers=headers)
        except ValueError as error:  # the engine refusing an input
            return TEIRequestError("Validation", f"Input validation error: {error}").response(openai=openai)
        except Exception as error:  # noqa: BLE001 - a client gets TEI's "Backend error", the log the rest
            logger.error("%s failed", request.url.path, exc_info=error)
            service.metrics.count("te_request_failure", {"err": "inference"})
            return TEIRequestError("Backend", f"Backend error: Inference failed: {type(error).__name__}").response(
                openai=openai)
        finally:
            if watcher is not None:
                watcher.cancel()
        return JSONResponse(answer.body, headers=timing_headers(answer.timing, started))

    def post(path: str, route: Callable[..., Answer], **options: bool) -> None:
        async def endpoint(request: Request) -> Response:
            return await call(request, route, **options)

        router.add_api_route(path, endpoint, methods=["POST"], name=path.strip("/") or "root")

    post("/rerank", service.rerank, stoppable=True)
    post("/predict", service.predict, stoppable=True)
    post("/embed", service.embed)
    post("/similarity", service.similarity)
    post("/tokenize", service.tokenize)
    post("/decode", service.decode)
    post("/v1/embeddings", service.openai_embeddings, openai=True)
    post("/embeddings", service.openai_embeddings, openai=True)
    post("/embed_sparse", lambda _: service.not_served("/embed_sparse"))
    post("/embed_all", lambda _: service.not_served("/embed_all"))
    post("/", service.root, stoppable=True)
    post("/invocations", service.root, stoppable=True)

    @router.get("/info")
    async def info(request: Request) -> Response:
        if not service.authorized(request.headers.get("authorization")):
            return Response(status_code=401)
        try:
            return JSONResponse(await run_in_threadpool(service.info))
        except TEIRequestError as error:
            return error.response()

    async def health(request: Request) -> Response:
        try:
            if not service.health_now():  # no thread, no lock once loaded: fast however busy the models are
                await run_in_threadpool(service.health)  # the first call loads the models
        except TEIRequestError as error:
            return error.response()
        return Response(status_code=200)

    for path in ("/health", "/", "/ping"):
        router.add_api_route(path, health, methods=["GET"], name=f"health {path}")

    @router.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(service.metrics.render(), media_type="text/plain; version=0.0.4")

    @router.get(OPENAPI_PATH)
    async def openapi() -> Response:
        return JSONResponse(openapi_document())

    @router.get("/docs")
    async def docs(request: Request) -> Response:
        from fastapi.openapi.docs import get_swagger_ui_html

        # Relative, so the page finds the document under any prefix the routes are mounted at.
        return get_swagger_ui_html(openapi_url=OPENAPI_PATH.lstrip("/"), title="TEI-compatible server")

    return router


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    """TEI's OpenAPI document (version 1.9.3, Apache-2.0, shipped as search/serve/tei_openapi.json) naming this
    server: what ``GET /api-doc/openapi.json`` answers, as TEI does."""
    document = json.loads(resources.files(__package__).joinpath("tei_openapi.json").read_text(encoding="utf-8"))
    document["info"] = {**document["info"], "title": "search: a Text Embeddings Inference compatible server",
                        "version": f"search-{__version__}"}
    return document


def create_app(service: TEIService) -> fastapi.FastAPI:
    """A FastAPI app serving `service`'s routes at its root (what `python -m search serve` runs)."""
    app = fastapi.FastAPI(title="search: TEI-compatible server", version=__version__, docs_url=None,
                          redoc_url=None, openapi_url=None)
    app.include_router(tei_router(service))
    return app


def mount_tei_routes(app: fastapi.FastAPI, *, prefix: str = DEFAULT_PREFIX, service: TEIService | None = None,
                     settings=None, limits: ServeLimits | None = None,
                     api_key: str | None = None) -> TEIService:
    """Add TEI's routes under `prefix` to `app` (e.g. the Gradio app's server) and return their service.

    Without `service`, they serve the models `settings` (default `Settings.from_config()`) name, loaded on
    the first request through `search.loading`, so the app and the routes share one copy of each model,
    the score cache and RERANK_LOCK. `api_key` defaults to $SEARCH_SERVE_API_KEY. A TEI client then uses
    ``http://HOST:PORT{prefix}`` as its URL. Whether to call this at all is the caller's choice; see
    the setting SEARCH_SERVE_TEI. The body deadline holds there too; the header and keep-alive deadlines are the
    host server's (see `server_config`).
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix={prefix!r} must start with '/' and not end with one, e.g. '/tei'")
    if service is None:
        service = TEIService.from_settings(settings, limits=limits,
                                           api_key=api_key or config.current().serve_api_key or None)
    router = tei_router(service)
    app.include_router(router, prefix=prefix)
    for route in router.routes:  # POST/GET {prefix} itself too: a client whose URL is {prefix} posts there
        if isinstance(route, fastapi.routing.APIRoute) and route.path == "/":
            app.add_api_route(prefix, route.endpoint, methods=list(route.methods), include_in_schema=False)
    return service


def server_config(service: TEIService, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                  log_level: str = "warning"):
    """The uvicorn Config `serve` runs: `create_app(service)` over h11 with `service.limits`' deadlines (a
    connection that sends no whole request head within ``header_timeout_s`` is closed; an idle one after
    ``keep_alive_s``) and request heads of at most 64 KiB."""
    import uvicorn

    return uvicorn.Config(create_app(service), host=host, port=port, log_level=log_level, lifespan="off",
                          http=_deadline_protocol(service.limits.header_timeout_s),
                          timeout_keep_alive=max(1, math.ceil(service.limits.keep_alive_s)),
                          h11_max_incomplete_event_size=64 * 1024)


def serve(service: TEIService, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          log_level: str = "warning") -> None:
    """Load `service`'s models, then serve them on `host`:`port` until interrupted."""
    import uvicorn

    service.ensure_loaded()
    uvicorn.Server(server_config(service, host, port, log_level=log_level)).run()


@lru_cache(maxsize=8)
def _deadline_protocol(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head (line and headers) has not fully
    arrived `header_timeout_s` after the connection opened or its previous answer went out: uvicorn alone
    waits for a slow head for ever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_deadline is None and self.conn.their_state is h11.IDLE:
                self._arm()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_too_slow)

        def _disarm(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_too_slow(self) -> None:
            self._head_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                logger.info("closed a connection whose request head took over %g s", header_timeout_s)
                self.transport.close()

    return DeadlineH11Protocol


async def _watch_disconnect(request: Request, stop: threading.Event) -> None:
    """Set `stop` once the client goes away while its request is being answered."""
    while not stop.is_set():
        message = await request.receive()
        if message["type"] == "http.disconnect":
            stop.set()
