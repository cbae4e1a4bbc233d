"""TEI's HTTP routes over a `TEIService`, as FastAPI routes: `tei_router` (every route, relative to where it
is included), `create_app` (an app with them at its root: what `python -m search serve` runs), `mount_tei_routes`
(them under a prefix of another app, such as the Gradio app's server) and TEI's OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import logging
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
from .limits import ServeLimits
from .requests import TEIRequestError, read_json
from .service import Answer, TEIService
from .timing import timing_headers

logger = logging.getLogger(__name__)

API_KEY_ENV = "SEARCH_SERVE_API_KEY"
DEFAULT_PREFIX = "/tei"
OPENAPI_PATH = "/api-doc/openapi.json"


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


async def _watch_disconnect(request: Request, stop: threading.Event) -> None:
    """Set `stop` once the client goes away while its request is being answered."""
    while not stop.is_set():
        message = await request.receive()
        if message["type"] == "http.disconnect":
            stop.set()
