"""A TEI-compatible server over this project's models: `POST /rerank`, `POST /embed`, `GET /info` and
`GET /health` with text-embeddings-inference's request, response and error shapes, so any TEI client (this
project's `tei` backend among them) can use a reranker or an encoder loaded here.

- `TEIService`: the four routes' logic over a reranker and/or an encoder from `search.loading` (the same
  cached models, score cache and RERANK_LOCK as the app), with its `ServeLimits`.
- `create_app` / `serve`: a FastAPI app with the routes at its root, run by uvicorn (`python -m search serve`).
- `mount_tei_routes(app)`: the same routes under a prefix (default ``/tei``) of another FastAPI app, such as
  the Gradio app's server; `tei_routes_enabled()` reads the switch, $SEARCH_SERVE_TEI (off by default).

TEI's shapes (router/src/http/server.rs and types.rs of huggingface/text-embeddings-inference): rerank
answers are sorted by score with each text's `index` (and `text` with ``return_text``), sigmoids unless
``raw_scores``; errors are ``{"error": ..., "error_type": ...}`` with error_type Empty (400), Validation
(422: a batch over `max_client_batch_size`, an input over `max_input_length` with truncation off, a bad
body), Backend (424: a model of the wrong kind), Overloaded (429: more than `max_concurrent_requests` at
once) and Unhealthy (503, /health). A body over `payload_limit` bytes is refused with 413. /info describes
the reranker when one is served (else the encoder) and lists every served model in an extra ``models`` field.
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import fastapi
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from . import __version__
from .inference import Loaded, Reranker, TextEncoder
from .models import choose_reranker

logger = logging.getLogger(__name__)

SERVE_TEI_ENV = "SEARCH_SERVE_TEI"
API_KEY_ENV = "SEARCH_SERVE_API_KEY"
DEFAULT_PREFIX = "/tei"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080

ErrorType = Literal["Unhealthy", "Backend", "Overloaded", "Validation", "Tokenizer", "Empty"]
STATUS: dict[str, int] = {"Unhealthy": 503, "Backend": 424, "Overloaded": 429, "Tokenizer": 422,
                          "Validation": 422, "Empty": 400}
"""TEI's HTTP status for each error_type (`impl From<&ErrorType> for StatusCode`)."""


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for, as TEI's launcher options; `/info` reports them.

    `max_input_tokens` caps each model's own window (None: the window); with truncation off a longer input
    is refused, with it on the model cuts at its window. Raises ValueError for a limit below 1.
    """

    max_client_batch_size: int = 32
    max_input_tokens: int | None = None
    payload_limit: int = 2_000_000  # bytes of one request body
    max_concurrent_requests: int = 512
    auto_truncate: bool = True  # what a request without "truncate" gets

    def __post_init__(self) -> None:
        for name in ("max_client_batch_size", "max_input_tokens", "payload_limit", "max_concurrent_requests"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r} must be a whole number of at least 1")


class TEIRequestError(Exception):
    """A request TEI would refuse: `status`, `error_type` and the message of its error body."""

    def __init__(self, error_type: ErrorType, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = STATUS[error_type] if status is None else status

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.message, "error_type": self.error_type}, status_code=self.status)


@dataclass(frozen=True)
class ServedModels:
    """What a `TEIService` serves: a reranker and/or an encoder, and why either is a fallback."""

    reranker: Loaded[Reranker] | None
    encoder: Loaded[TextEncoder] | None


class TEIService:
    """The logic of the four routes over the models `load` returns (called once, on first use, in a
    worker thread; `ensure_loaded` loads them now). Thread-safe.

    `api_key`, when set, must come as ``Authorization: Bearer <api_key>`` on every route but /health
    (TEI's --api-key); a request without it gets 401.
    """

    def __init__(self, load: Callable[[], ServedModels], limits: ServeLimits | None = None, *,
                 api_key: str | None = None) -> None:
        self.limits = limits or ServeLimits()
        self._load = load
        self._models: ServedModels | None = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.limits.max_concurrent_requests)
        self._api_key = api_key or None
        self._plain_encoders: dict[bool, TextEncoder] = {}

    def __repr__(self) -> str:
        return f"TEIService({self.limits!r}, api_key={'set' if self._api_key else 'none'})"

    @classmethod
    def from_models(cls, *, reranker: Reranker | Loaded[Reranker] | None = None,
                    encoder: TextEncoder | Loaded[TextEncoder] | None = None, limits: ServeLimits | None = None,
                    api_key: str | None = None) -> TEIService:
        """A service over models already loaded. Raises ValueError when neither is given."""
        if reranker is None and encoder is None:
            raise ValueError("serve at least one model: a reranker, a dense encoder or both")
        served = ServedModels(_as_loaded(reranker), _as_loaded(encoder))
        return cls(lambda: served, limits, api_key=api_key)

    @classmethod
    def from_settings(cls, settings=None, *, reranker: bool = True, dense: bool = True,
                      limits: ServeLimits | None = None, api_key: str | None = None) -> TEIService:
        """A service over the models `settings` (default `Settings.from_config()`) name, loaded on first use
        through `search.loading` (so shared with the app in the same process), with the usual offline
        fallbacks. ``auto`` serves bge-reranker-v2-m3 (a server does not know its queries' languages);
        a remote `backend` (``tei``) is replaced by ``auto``: the server runs its models here.
        """
        if not (reranker or dense):
            raise ValueError("serve at least one model: leave out --no-reranker or --no-dense")
        from .loading import AUTO_BACKEND, REMOTE_BACKENDS, load_dense_encoder, load_reranker, resolve_backend
        from .pipeline import Settings

        settings = settings or Settings.from_config()
        backend = settings.backend if resolve_backend(settings.backend) not in REMOTE_BACKENDS else AUTO_BACKEND
        device = None if settings.device == "auto" else settings.device

        def load() -> ServedModels:
            model = choose_reranker(settings.rerankers[0].model)
            served = ServedModels(
                load_reranker(model, device, backend=backend) if reranker else None,
                load_dense_encoder(settings.dense_model, device, backend=backend) if dense else None)
            for loaded in (served.reranker, served.encoder):
                if loaded is not None and loaded.fallback_reason:
                    logger.warning("serving %s: %s", loaded.model.label, loaded.fallback_reason)
            return served

        return cls(load, limits, api_key=api_key)

    # -- models ------------------------------------------------------------------------------------

    def ensure_loaded(self) -> ServedModels:
        """Load the models (once); raises TEIRequestError (Unhealthy) when they could not be loaded."""
        with self._load_lock:
            if self._models is None and self._load_error is None:
                try:
                    self._models = self._load()
                except Exception as error:  # noqa: BLE001 - /health reports it; the server stays up
                    logger.error("the served models could not be loaded", exc_info=error)
                    self._load_error = f"the models could not be loaded: {error}"
            if self._models is None:
                raise TEIRequestError("Unhealthy", self._load_error or "unhealthy")
            return self._models

    # -- routes, as plain functions of the request body ---------------------------------------------

    def info(self) -> dict[str, Any]:
        """The `GET /info` answer (TEI's `Info`, plus the served models in "models")."""
        served = self.ensure_loaded()
        described = []
        if served.reranker is not None:
            described.append({"model_id": served.reranker.model.model_id,
                              "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}},
                              "max_input_length": self._limit(_reranker_window(served.reranker.model))})
        if served.encoder is not None:
            encoder = served.encoder.model
            described.append({"model_id": encoder.model_id,
                              "model_type": {"embedding": {"pooling": encoder.spec.pooling}},
                              "max_input_length": self._limit(encoder.max_length)})
        primary = described[0]
        return {
            "model_id": primary["model_id"], "model_sha": None, "model_dtype": "float32",
            "served_model_name": primary["model_id"], "model_type": primary["model_type"],
            "max_concurrent_requests": self.limits.max_concurrent_requests,
            "max_input_length": primary["max_input_length"],
            "max_batch_tokens": primary["max_input_length"] * self.limits.max_client_batch_size,
            "max_batch_requests": None, "max_client_batch_size": self.limits.max_client_batch_size,
            "auto_truncate": self.limits.auto_truncate, "tokenization_workers": 1,
            "version": f"search-{__version__}", "sha": None, "docker_label": None,
            "models": described,
        }

    def rerank(self, body: Any) -> list[dict[str, Any]]:
        """The `POST /rerank` answer for a parsed `body`; raises TEIRequestError as TEI would."""
        request = _object(body)
        query = _field(request, "query", str, required=True)
        texts = _field(request, "texts", list, required=True)
        if not all(isinstance(text, str) for text in texts):
            raise TEIRequestError("Validation", "Failed to deserialize the JSON body: `texts` must be a list of "
                                                "strings")
        raw_scores = _field(request, "raw_scores", bool, default=False)
        return_text = _field(request, "return_text", bool, default=False)
        truncate = self._truncate(request)
        if not texts:
            raise TEIRequestError("Empty", "`texts` cannot be empty")
        served = self.ensure_loaded()
        if served.reranker is None:
            raise TEIRequestError("Backend", "model is not a re-ranker model")
        self._check_batch(len(texts))
        if not query.strip():
            raise TEIRequestError("Empty", "`query` cannot be empty")
        reranker = served.reranker.model
        if not truncate:
            self._check_lengths(_pair_lengths(reranker, query, texts), _reranker_window(reranker))
        scores = reranker.score(query, texts)
        if any(math.isnan(score.raw) for score in scores):
            raise TEIRequestError("Backend", "score is NaN")
        ranks = []
        for index, score in enumerate(scores):
            value = score.raw if raw_scores or score.sigmoid is None else score.sigmoid
            rank: dict[str, Any] = {"index": index, "score": value}
            if return_text:
                rank["text"] = texts[index]
            ranks.append(rank)
        ranks.sort(key=lambda rank: (-rank["score"], rank["index"]))
        return ranks

    def embed(self, body: Any) -> list[list[float]]:
        """The `POST /embed` answer for a parsed `body`; raises TEIRequestError as TEI would."""
        request = _object(body)
        if "inputs" not in request:
            raise TEIRequestError("Validation", "Failed to deserialize the JSON body: missing field `inputs`")
        inputs = request["inputs"]
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            raise TEIRequestError("Validation", "`inputs` must be a string or a list of strings (token-id inputs "
                                                "are not supported by this server)")
        normalize = _field(request, "normalize", bool, default=True)
        truncate = self._truncate(request)
        if request.get("prompt_name") is not None:
            raise TEIRequestError("Validation", "`prompt_name` is set but this server has no prompts; add the "
                                                "model's prefix to the text")
        if not texts:
            raise TEIRequestError("Empty", "`inputs` cannot be empty")
        served = self.ensure_loaded()
        if served.encoder is None:
            raise TEIRequestError("Backend", "Model is not an embedding model")
        encoder = served.encoder.model
        dimensions = request.get("dimensions")
        if dimensions is not None and dimensions != encoder.dimension:
            raise TEIRequestError("Validation", f"`dimensions` is {dimensions!r} but {encoder.model_id} gives "
                                                f"{encoder.dimension}; leave it out")
        self._check_batch(len(texts))
        if not truncate and encoder.tokenizer is not None:
            lengths = [len(ids) for ids in encoder.tokenizer(list(texts), verbose=False)["input_ids"]]
            self._check_lengths(lengths, encoder.max_length)
        vectors = self._plain(encoder, normalize).embed(texts, is_query=False)
        return vectors.tolist()

    def health(self) -> None:
        """Nothing when the models are loaded; raises TEIRequestError (Unhealthy, 503) otherwise."""
        self.ensure_loaded()

    # -- checks --------------------------------------------------------------------------------------

    def authorized(self, header: str | None) -> bool:
        """Whether an Authorization header value may use the routes (always, when no api_key is set)."""
        if self._api_key is None:
            return True
        return hmac.compare_digest((header or "").encode(), f"Bearer {self._api_key}".encode())

    def try_acquire(self) -> bool:
        """Take one of `max_concurrent_requests` slots without waiting; False when all are taken."""
        return self._slots.acquire(blocking=False)

    def release(self) -> None:
        self._slots.release()

    def _limit(self, window: int) -> int:
        cap = self.limits.max_input_tokens
        return window if cap is None else min(cap, window)

    def _truncate(self, request: dict[str, Any]) -> bool:
        truncate = request.get("truncate")
        if truncate is not None and not isinstance(truncate, bool):
            raise TEIRequestError("Validation", "Failed to deserialize the JSON body: `truncate` must be a boolean")
        direction = request.get("truncation_direction", "Right")
        if direction not in ("Left", "Right", "left", "right"):
            raise TEIRequestError("Validation", "Failed to deserialize the JSON body: `truncation_direction` must "
                                                "be Left or Right")
        truncate = self.limits.auto_truncate if truncate is None else truncate
        if truncate and direction.lower() == "left":
            raise TEIRequestError("Validation", "this server truncates on the right only; send "
                                                "truncation_direction Right")
        return truncate

    def _check_batch(self, size: int) -> None:
        if size > self.limits.max_client_batch_size:
            raise TEIRequestError("Validation", f"batch size {size} > maximum allowed batch size "
                                                f"{self.limits.max_client_batch_size}")

    def _check_lengths(self, lengths: Sequence[int] | None, window: int) -> None:
        limit = self._limit(window)
        longest = max(lengths or [0])
        if longest > limit:
            raise TEIRequestError("Validation", f"Input validation error: `inputs` must have less than {limit} "
                                                f"tokens. Given: {longest}")

    def _plain(self, encoder: TextEncoder, normalize: bool) -> TextEncoder:
        """`encoder` without its query/passage prefixes (TEI embeds the text as given), normalising or not."""
        spec = replace(encoder.spec, query_prefix="", passage_prefix="", normalize=normalize)
        if spec == encoder.spec:
            return encoder
        with self._load_lock:
            if normalize not in self._plain_encoders:
                view = copy.copy(encoder)  # shares the model and tokenizer; only the conventions differ
                view.spec = spec
                self._plain_encoders[normalize] = view
            return self._plain_encoders[normalize]


# -- HTTP ---------------------------------------------------------------------------------------------

def tei_router(service: TEIService) -> fastapi.APIRouter:
    """An APIRouter with TEI's four routes over `service`."""
    router = fastapi.APIRouter()

    async def call(request: Request, route: Callable[[Any], Any], *, parse: bool, auth: bool = True) -> Response:
        started = time.perf_counter()
        if auth and not service.authorized(request.headers.get("authorization")):
            return Response(status_code=401)
        try:
            body = await _read_json(request, service.limits.payload_limit) if parse else None
            if not service.try_acquire():
                raise TEIRequestError("Overloaded", "Model is overloaded")
            try:
                inference_started = time.perf_counter()
                answer = await run_in_threadpool(route, body)
                inference_ms = (time.perf_counter() - inference_started) * 1000
            finally:
                service.release()
        except TEIRequestError as error:
            return error.response()
        except ValueError as error:  # the engine refusing an input, e.g. an empty query
            return TEIRequestError("Validation", f"Input validation error: {error}").response()
        except Exception as error:  # noqa: BLE001 - a client gets TEI's "Inference failed", the log the rest
            logger.error("%s failed", request.url.path, exc_info=error)
            return TEIRequestError("Backend", f"Inference failed: {type(error).__name__}").response()
        headers = {"x-total-time": f"{(time.perf_counter() - started) * 1000:.0f}",
                   "x-inference-time": f"{inference_ms:.0f}"}
        if answer is None:
            return Response(status_code=200, headers=headers)
        return JSONResponse(answer, headers=headers)

    @router.post("/rerank")
    async def rerank(request: Request) -> Response:
        return await call(request, service.rerank, parse=True)

    @router.post("/embed")
    async def embed(request: Request) -> Response:
        return await call(request, service.embed, parse=True)

    @router.get("/info")
    async def info(request: Request) -> Response:
        return await call(request, lambda _: service.info(), parse=False)

    @router.get("/health")
    async def health(request: Request) -> Response:
        return await call(request, lambda _: service.health(), parse=False, auth=False)

    return router


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
    `tei_routes_enabled`.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"prefix={prefix!r} must start with '/' and not end with one, e.g. '/tei'")
    if service is None:
        service = TEIService.from_settings(settings, limits=limits, api_key=api_key or os.environ.get(API_KEY_ENV))
    app.include_router(tei_router(service), prefix=prefix)
    return service


def tei_routes_enabled(environ: dict[str, str] | None = None) -> bool:
    """Whether $SEARCH_SERVE_TEI asks the app to mount TEI's routes (1, true, yes or on; off by default).

    >>> tei_routes_enabled({"SEARCH_SERVE_TEI": "1"}), tei_routes_enabled({})
    (True, False)
    """
    value = (os.environ if environ is None else environ).get(SERVE_TEI_ENV, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


def serve(service: TEIService, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          log_level: str = "warning") -> None:
    """Load `service`'s models, then serve them on `host`:`port` until interrupted."""
    import uvicorn

    service.ensure_loaded()
    uvicorn.run(create_app(service), host=host, port=port, log_level=log_level)


# -- helpers ------------------------------------------------------------------------------------------

async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(len(body), limit)
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise TEIRequestError("Validation", f"Failed to parse the request body as JSON: {error}") from None


def _too_large(size: int, limit: int) -> TEIRequestError:
    return TEIRequestError("Validation", f"the request body has {size} bytes, more than the payload limit of "
                                         f"{limit}; send fewer or shorter texts per request", status=413)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise TEIRequestError("Validation", "Failed to deserialize the JSON body: expected an object")
    return body


def _field(request: dict[str, Any], name: str, kind: type, *, required: bool = False, default: Any = None) -> Any:
    if name not in request or (request[name] is None and not required):
        if required:
            raise TEIRequestError("Validation", f"Failed to deserialize the JSON body: missing field `{name}`")
        return default
    value = request[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise TEIRequestError("Validation", f"Failed to deserialize the JSON body: `{name}` must be a "
                                            f"{kind.__name__}")
    return value


def _as_loaded(model: Any) -> Loaded | None:
    if model is None or isinstance(model, Loaded):
        return model
    return Loaded(model, model.model_id)


def _reranker_window(reranker: Reranker) -> int:
    inner = getattr(reranker, "inner", reranker)
    if hasattr(inner, "encoder"):  # late interaction: query and passage each fill the encoder's window
        return int(inner.encoder.max_length)
    return int(getattr(inner, "max_length", 512))


def _pair_lengths(reranker: Reranker, query: str, texts: Sequence[str]) -> list[int] | None:
    """Tokens each (query, text) pair takes in `reranker`'s model, or None when it can't tell."""
    inner = getattr(reranker, "inner", reranker)
    encoder = getattr(inner, "encoder", None)
    if encoder is not None and getattr(encoder, "tokenizer", None) is not None:
        query_tokens = len(encoder.tokenizer(query, verbose=False)["input_ids"])
        return [max(query_tokens, len(ids)) for ids in encoder.tokenizer(list(texts), verbose=False)["input_ids"]]
    tokenizer = getattr(inner, "tokenizer", None)
    if tokenizer is None:
        return None
    return [len(ids) for ids in tokenizer([query] * len(texts), list(texts), verbose=False)["input_ids"]]
