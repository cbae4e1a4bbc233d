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
the Prometheus metrics' names.

The modules, in the order a request meets them:

- `server`: uvicorn's config and `serve`, with the deadline for a request's head and for idle connections.
- `routes`: the FastAPI routes (`tei_router`, `create_app`, `mount_tei_routes`) and TEI's OpenAPI document.
- `requests`: the body read within its limits, each field checked as TEI checks it, TEI's error bodies.
- `service`: `TEIService`, each route's logic over the parsed body; `openai`: OpenAI's embeddings shape.
- `runner`: `ModelRunner`, the models at work: loaded once, permits, embedding and pair scoring.
- `tokens`: prompts, the character cap, cutting at token boundaries; `batching`: embed requests batched.
- `limits` (`ServeLimits`), `timing` (what a request cost, TEI's x-* headers), `metrics` (Prometheus).
"""

from __future__ import annotations

from .batching import MAX_BATCH_TOKENS
from .limits import ServeLimits
from .metrics import Metrics
from .requests import DESERIALIZE, EMPTY_INPUT, NOT_A_RERANKER, NOT_AN_EMBEDDER, STATUS, ErrorType, TEIRequestError
from .routes import (
    API_KEY_ENV,
    DEFAULT_PREFIX,
    OPENAPI_PATH,
    create_app,
    mount_tei_routes,
    openapi_document,
    tei_router,
)
from .server import DEFAULT_HOST, DEFAULT_PORT, serve, server_config
from .service import RERANKER_LABELS, Answer, ServedModels, TEIService
from .timing import Timing
from .tokens import MAX_CHAR_MULTIPLIER

__all__ = [
    "API_KEY_ENV", "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_PREFIX", "DESERIALIZE", "EMPTY_INPUT", "MAX_BATCH_TOKENS",
    "MAX_CHAR_MULTIPLIER", "NOT_AN_EMBEDDER", "NOT_A_RERANKER", "OPENAPI_PATH", "RERANKER_LABELS", "STATUS", "Answer",
    "ErrorType", "Metrics", "ServeLimits", "ServedModels", "TEIRequestError", "TEIService", "Timing", "create_app",
    "mount_tei_routes", "openapi_document", "serve", "server_config", "tei_router",
]
