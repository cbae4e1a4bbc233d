"""The TEI backend: a reranker and a dense encoder served over HTTP by Hugging Face's
text-embeddings-inference (TEI), or by this project's own `python -m search serve`. One module per concern:

- `policy`: which endpoints may be called: parsing --tei-url / $SEARCH_TEI_URL (`endpoint_urls`), the address
  rule (only globally routable addresses are public: `address_problem`, `internal_host`) and the operator's
  policy for a URL a visitor typed (`typed_endpoints`).
- `transport`: an httpx transport that connects only to public addresses, checked when connecting.
- `client`: `TEIClient`, one endpoint: timeouts, the bearer token (never logged or shown), bounded retries for
  429/503, a cancel check while it waits, and named errors (`errors.TEIError`).
- `discovery`: the endpoint's `GET /info`, read once: the model it serves (a reranker endpoint must serve a
  reranker, an embedding endpoint an embedder), its input window and `max_client_batch_size`, to which
  requests are split; of several endpoints, comma-separated, each model takes the first that serves its kind.
- `reranker`: `TEIReranker` (`POST /rerank`); `encoder`: `TEIEncoder` (`POST /embed`).

Like every backend, it imports `search.inference` and `search.models`, never another backend nor
`search.loading`. The names below are its public interface; import them from here.
"""

from __future__ import annotations

from .client import (
    CONNECT_TIMEOUT_S,
    DEFAULT_RETRIES,
    DEFAULT_RETRY_BUDGET_S,
    DEFAULT_TIMEOUT_S,
    FIRST_BACKOFF_S,
    RETRY_STATUSES,
    STOP_POLL_S,
    TIMEOUT_ENV,
    RequestLatency,
    TEIClient,
    default_timeout,
)
from .discovery import DEFAULT_CHUNK, EndpointInfo, Kind, discover, parse_info
from .encoder import TEIEncoder
from .errors import ErrorKind, TEIError, TEIRequestCancelled
from .policy import (
    ALLOW_INTERNAL_TEI_ENV,
    HIDE_TEI_URL_ENV,
    OPERATOR_ENDPOINT,
    TEI_TOKEN_ENV,
    TEI_URL_ENV,
    TOKEN_ENV,
    URL_HINT,
    URL_SETTING,
    EndpointPolicy,
    address_problem,
    endpoint_policy,
    endpoint_urls,
    host_of,
    internal_host,
    typed_endpoints,
)
from .reranker import TEIReranker

__all__ = [
    "ALLOW_INTERNAL_TEI_ENV", "CONNECT_TIMEOUT_S", "DEFAULT_CHUNK", "DEFAULT_RETRIES", "DEFAULT_RETRY_BUDGET_S",
    "DEFAULT_TIMEOUT_S", "FIRST_BACKOFF_S", "HIDE_TEI_URL_ENV", "OPERATOR_ENDPOINT", "RETRY_STATUSES",
    "STOP_POLL_S", "TEI_TOKEN_ENV", "TEI_URL_ENV", "TIMEOUT_ENV", "TOKEN_ENV", "URL_HINT", "URL_SETTING",
    "EndpointInfo", "EndpointPolicy", "ErrorKind", "Kind", "RequestLatency", "TEIClient", "TEIEncoder", "TEIError",
    "TEIRequestCancelled", "TEIReranker", "address_problem", "default_timeout", "discover", "endpoint_policy",
    "endpoint_urls", "host_of", "internal_host", "parse_info", "typed_endpoints",
]
