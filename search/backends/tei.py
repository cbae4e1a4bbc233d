"""The TEI backend: a reranker and a dense encoder served over HTTP by Hugging Face's
text-embeddings-inference (TEI), or by this project's own `python -m search serve`.

- `TEIReranker`: `POST /rerank` with ``raw_scores`` and ``truncate`` on; the answer comes sorted by score
  with each text's `index`, mapped back to input order here (`Reranker`).
- `TEIEncoder`: `POST /embed` with ``normalize`` on; the model's query/passage prefixes are added here, as
  the torch encoder adds them (`TextEncoder`).
- `TEIClient`: one endpoint; every call has a timeout, a bearer token from $SEARCH_TEI_TOKEN or $HF_TOKEN
  when set (never logged, shown or put in an error; sent only over https or to a loopback host), bounded
  retries for 429/503, a cancel check polled while it waits, and named errors (`TEIError`).

The endpoint's `GET /info` is read once: the model it serves (a reranker endpoint must serve a reranker,
an embedding endpoint an embedder), its input window and `max_client_batch_size`, to which requests are
split. $SEARCH_TEI_URL (or --tei-url) may list several endpoints, comma-separated: each model takes the
first that serves its kind (real TEI serves one model per endpoint; `python -m search serve` may serve both).
Truncation is the server's: `PairScore.truncated` is None (unknown).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from ..inference import PairScore, ProgressFn, RerankCancelled, RerankerUnavailable, StopFn, sigmoid
from ..models import LATE_INTERACTION_IDS, ModelSpec, model_spec

logger = logging.getLogger(__name__)

TEI_URL_ENV = "SEARCH_TEI_URL"
TOKEN_ENV = "HF_TOKEN"
TEI_TOKEN_ENV = "SEARCH_TEI_TOKEN"  # takes precedence over HF_TOKEN
TIMEOUT_ENV = "SEARCH_TEI_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0  # a rerank of 32 long pairs on a CPU endpoint can take tens of seconds
CONNECT_TIMEOUT_S = 5.0
RETRY_STATUSES = frozenset({429, 503})
DEFAULT_RETRIES = 4  # after the first try; each waits twice as long as the one before
DEFAULT_RETRY_BUDGET_S = 20.0  # no retry starts later than this after the first try
FIRST_BACKOFF_S = 0.25
STOP_POLL_S = 0.05  # how often a cancel check is polled while a request or a backoff waits
DEFAULT_CHUNK = 32  # texts per request (and per progress report) unless the endpoint allows fewer
URL_SETTING = f"--tei-url or {TEI_URL_ENV}"
URL_HINT = f"set {URL_SETTING} to the endpoint's address (for example http://127.0.0.1:8080)"
_ERROR_TEXT_CHARS = 300

Kind = Literal["reranker", "embedding", "classifier"]
ErrorKind = Literal["setting", "connect", "dns", "timeout", "auth", "too-large", "wrong-model", "overloaded",
                    "http", "protocol"]


class TEIRequestCancelled(Exception):
    """A request's `should_stop()` turned true while it waited for the endpoint or a retry (not a failure)."""


class TEIError(ValueError):
    """A TEI endpoint could not be used; the message says what happened and which setting to change.

    `kind` names the failure (``"connect"``, ``"dns"``, ``"timeout"``, ``"auth"``, ``"too-large"``,
    ``"wrong-model"``, ``"overloaded"``, ``"http"``, ``"protocol"`` or ``"setting"``); `status` is the
    HTTP status, when there was one.
    """

    def __init__(self, message: str, kind: ErrorKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


@dataclass(frozen=True)
class EndpointInfo:
    """What `GET /info` says about one model an endpoint serves."""

    url: str
    model_id: str
    kind: Kind
    max_input_length: int
    max_client_batch_size: int
    auto_truncate: bool
    cross_encoder: bool = True  # False for this project's late-interaction fallback served by `serve`
    labels: int = 1  # a classifier's number of labels


@dataclass(frozen=True)
class RequestLatency:
    """Request latency of one endpoint since it was loaded: `count` requests answered, the `last` and
    `mean` seconds (None before the first)."""

    count: int
    last_s: float | None
    mean_s: float | None


def endpoint_urls(value: str | None) -> tuple[str, ...]:
    """The endpoint URLs a --tei-url / $SEARCH_TEI_URL value names (comma-separated), normalised.

    Raises TEIError (kind "setting") for no URL, a URL that is not http(s) with a host, or one that carries
    a user name or password (the token belongs in $HF_TOKEN, where it is never shown).

    >>> endpoint_urls(" http://127.0.0.1:8080/ , https://tei.example/rerank")
    ('http://127.0.0.1:8080', 'https://tei.example/rerank')
    """
    urls = tuple(part.strip().rstrip("/") for part in (value or "").split(",") if part.strip())
    if not urls:
        raise TEIError(f"backend 'tei' needs the address of a TEI endpoint; {URL_HINT}", "setting")
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise TEIError(f"{_redact_url(url)!r} is not a valid URL; {URL_HINT}", "setting") from None
        if parts.username is not None or parts.password is not None:
            raise TEIError(f"the TEI URL {_redact_url(url)!r} carries credentials; remove them from {URL_SETTING} "
                           f"and put the token in {TOKEN_ENV}", "setting")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TEIError(f"{_redact_url(url)!r} is not an http(s) URL with a host; {URL_HINT}", "setting")
        if parts.query or parts.fragment:
            raise TEIError(f"{_redact_url(url)!r} has a query or fragment (not shown); give the endpoint's base "
                           f"address ({URL_HINT})", "setting")
    return urls


def host_of(url: str) -> str:
    """The host (and port) of `url`, as labels show it.

    >>> host_of("http://127.0.0.1:8080/tei"), host_of("https://my-endpoint.example")
    ('127.0.0.1:8080', 'my-endpoint.example')
    """
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def default_timeout() -> float:
    """Seconds a request may take: $SEARCH_TEI_TIMEOUT, or DEFAULT_TIMEOUT_S.

    Raises TEIError naming the variable when it is not a positive number."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not seconds > 0 or math.isinf(seconds):
        raise TEIError(f"{TIMEOUT_ENV}={value!r} is not a positive number of seconds; set it to e.g. 60", "setting")
    return seconds


class TEIClient:
    """One TEI endpoint at `url` over httpx, safe to share between threads.

    `token` (default: $SEARCH_TEI_TOKEN, else $HF_TOKEN) is sent as ``Authorization: Bearer ...`` over https
    or to a loopback host only (to a plain-http remote host it is withheld, with a warning saying why), and
    is never logged, shown in a repr or put in an error. Every call times out after `timeout` seconds
    (default: `default_timeout()`; connecting after at most CONNECT_TIMEOUT_S). Answers 429 and 503 are
    retried up to `retries` times with exponential backoff from `first_backoff_s` (or the server's
    Retry-After), as long as `retry_budget_s` has not passed since the first try. Every failure raises
    TEIError.
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = None,
                 retries: int = DEFAULT_RETRIES, retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
                 first_backoff_s: float = FIRST_BACKOFF_S) -> None:
        import httpx

        (self.url,) = endpoint_urls(url)
        self.host = host_of(self.url)
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if retries < 0 or retry_budget_s < 0 or first_backoff_s < 0:
            raise ValueError(f"retries={retries}, retry_budget_s={retry_budget_s} and first_backoff_s="
                             f"{first_backoff_s} must not be negative")
        self.retries = retries
        self.retry_budget_s = retry_budget_s
        self.first_backoff_s = first_backoff_s
        if token is None:
            token = os.environ.get(TEI_TOKEN_ENV, "").strip() or os.environ.get(TOKEN_ENV)
        token = token.strip() if token and token.strip() else None
        if token and not _safe_for_token(self.url):
            logger.warning("not sending the token from %s/%s to the TEI endpoint at %s: it is plain http to a host "
                           "that is not this machine, where anyone on the way could read it. Use an https:// "
                           "address in %s (or unset the token for this endpoint)", TEI_TOKEN_ENV, TOKEN_ENV,
                           self.host, URL_SETTING)
            token = None
        self._token = token
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, follow_redirects=False,
                                  timeout=httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT_S, self.timeout)))
        self._latency_lock = threading.Lock()
        self._requests = 0
        self._seconds = 0.0
        self._last: float | None = None

    def __repr__(self) -> str:
        return f"TEIClient({self.url!r}, token={'set' if self._token else 'none'}, timeout={self.timeout:g})"

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def close(self) -> None:
        self._http.close()

    def latency(self) -> RequestLatency:
        """How long this endpoint's answers took (successful requests only)."""
        with self._latency_lock:
            mean = self._seconds / self._requests if self._requests else None
            return RequestLatency(self._requests, self._last, mean)

    def get(self, path: str, *, should_stop: StopFn | None = None) -> Any:
        """GET `path` and return its JSON answer; TEIError on any failure, TEIRequestCancelled once
        `should_stop()` is true (polled every STOP_POLL_S while the request or a retry waits)."""
        return self._call("GET", path, None, should_stop)

    def post(self, path: str, body: dict[str, Any], *, should_stop: StopFn | None = None) -> Any:
        """POST `body` as JSON to `path` and return the JSON answer; TEIError on any failure,
        TEIRequestCancelled once `should_stop()` is true (see `get`)."""
        return self._call("POST", path, body, should_stop)

    def _call(self, method: str, path: str, body: dict[str, Any] | None, should_stop: StopFn | None) -> Any:
        import httpx

        started = time.monotonic()
        delay = self.first_backoff_s
        for attempt in range(self.retries + 1):
            sent = time.perf_counter()
            try:
                response = self._send(method, path, body, should_stop)
            except httpx.TimeoutException as error:
                raise self._timeout_error(method, path, error) from None
            except httpx.TransportError as error:
                raise self._connection_error(error) from None
            except httpx.TooManyRedirects:
                raise self._protocol_error(f"{method} {path} redirected too often") from None
            except httpx.DecodingError:
                raise self._protocol_error(f"{method} {path} answered a body that could not be decoded") from None
            except httpx.HTTPError as error:
                raise self._protocol_error(f"{method} {path} failed: {type(error).__name__}") from None
            if response.status_code < 400:
                self._record(time.perf_counter() - sent)
                try:
                    return response.json()
                except ValueError:
                    raise self._protocol_error(f"{method} {path} answered {response.status_code} without JSON") \
                        from None
            elapsed = time.monotonic() - started
            wait = _retry_after(response, delay)
            if (response.status_code in RETRY_STATUSES and attempt < self.retries
                    and elapsed + wait <= self.retry_budget_s):
                logger.info("TEI endpoint %s answered %d to %s %s; retrying in %.2f s (%d of %d)", self.host,
                            response.status_code, method, path, wait, attempt + 1, self.retries)
                _sleep(wait, should_stop)
                delay *= 2
                continue
            raise self._status_error(method, path, response, attempt + 1, time.monotonic() - started)
        raise AssertionError("unreachable: the loop returns or raises")

    def _send(self, method: str, path: str, body: dict[str, Any] | None, should_stop: StopFn | None):
        """The request's response; with `should_stop`, sent from a helper thread while this one polls it
        (a cancelled request is left to finish or time out on its own, its answer dropped)."""
        if should_stop is None:
            return self._http.request(method, path, json=body)
        if should_stop():
            raise TEIRequestCancelled(f"{method} {path} was cancelled")
        outcome: list[Any] = []
        done = threading.Event()

        def send() -> None:
            try:
                outcome.append(self._http.request(method, path, json=body))
            except BaseException as error:  # handed to the waiting thread
                outcome.append(error)
            finally:
                done.set()

        threading.Thread(target=send, name=f"tei-{method.lower()}-{self.host}", daemon=True).start()
        while not done.wait(STOP_POLL_S):
            if should_stop():
                raise TEIRequestCancelled(f"{method} {path} was cancelled")
        (result,) = outcome
        if isinstance(result, BaseException):
            raise result
        return result

    def _record(self, seconds: float) -> None:
        with self._latency_lock:
            self._requests += 1
            self._seconds += seconds
            self._last = seconds

    # -- errors: each says what happened and which setting to change ------------------------------

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token else text

    def _timeout_error(self, method: str, path: str, error: Exception) -> TEIError:
        import httpx

        if isinstance(error, httpx.ConnectTimeout):
            what = f"did not accept a connection within {min(CONNECT_TIMEOUT_S, self.timeout):g} s"
        else:
            what = f"did not answer {method} {path} within {self.timeout:g} s"
        return TEIError(f"the TEI endpoint at {self.host} {what}; it may be overloaded or still loading its model. "
                        f"Try again, raise {TIMEOUT_ENV} (seconds), lower the rerank depth, or check {URL_SETTING}",
                        "timeout")

    def _connection_error(self, error: Exception) -> TEIError:
        cause = _root_os_error(error)
        if isinstance(cause, socket.gaierror):
            return TEIError(f"the TEI endpoint's host {urlsplit(self.url).hostname!r} could not be resolved (DNS "
                            f"failure); check the address in {URL_SETTING}", "dns")
        if isinstance(cause, ConnectionRefusedError):
            return TEIError(f"could not connect to the TEI endpoint at {self.host} (connection refused): is the "
                            f"server running? Start it (e.g. `python -m search serve`) or {URL_HINT}", "connect")
        reason = self._scrub(str(cause or error).strip() or type(error).__name__)
        return TEIError(f"could not talk to the TEI endpoint at {self.host} ({reason[:_ERROR_TEXT_CHARS]}); check "
                        f"that it is running and that {URL_SETTING} is its address", "connect")

    def _protocol_error(self, what: str) -> TEIError:
        return TEIError(f"the endpoint at {self.host} did not answer like TEI ({what}); check that {URL_SETTING} "
                        "points at a text-embeddings-inference server", "protocol")

    def _status_error(self, method: str, path: str, response, tries: int, seconds: float) -> TEIError:
        status = response.status_code
        said = self._scrub(_error_text(response))
        quoted = f"{status}: {said}" if said else str(status)
        if status in (401, 403):
            if not self._token:
                message = (f"the TEI endpoint at {self.host} requires a token ({quoted}); set {TOKEN_ENV} to a "
                           "token it accepts")
            else:
                message = (f"the TEI endpoint at {self.host} refused the token in {TOKEN_ENV} ({quoted}); set "
                           f"{TOKEN_ENV} to a token with access to this endpoint")
            return TEIError(message, "auth", status)
        if status in (413, 422):
            return TEIError(f"the TEI endpoint at {self.host} refused {method} {path} as too large ({quoted}); "
                            "shorten the passages (a smaller passage window) or raise the server's limits "
                            "(max client batch size, payload limit, max input length)", "too-large", status)
        if status == 424:
            return TEIError(f"the TEI endpoint at {self.host} could not run its model for {path} ({quoted}); it "
                            f"probably serves another kind of model: point {URL_SETTING} at an endpoint that "
                            "serves the right one", "wrong-model", status)
        if status in RETRY_STATUSES:
            return TEIError(f"the TEI endpoint at {self.host} is overloaded or unavailable ({quoted}) and still "
                            f"was after {tries} tries in {seconds:.1f} s; try again later or lower the rerank depth",
                            "overloaded", status)
        return TEIError(f"the TEI endpoint at {self.host} answered {method} {path} with {quoted}; check "
                        f"{URL_SETTING}", "http", status)


def discover(urls: Sequence[str], kind: Kind, *, make_client: Callable[[str], TEIClient] = TEIClient,
             ) -> tuple[TEIClient, EndpointInfo]:
    """Read `GET /info` of each endpoint in `urls` and return the client and model of the first that serves
    a model of `kind` ("reranker" or "embedding").

    Every endpoint is tried in turn. Raises TEIError: with one URL, its failure; otherwise one naming every
    endpoint's failure and what each that answered serves, of kind "wrong-model" when some endpoint
    answered, else the first failure's kind.
    """
    served: list[str] = []
    failures: list[tuple[str, TEIError]] = []
    for url in urls:
        client = make_client(url)
        try:
            infos = parse_info(client.url, client.get("/info"))
        except TEIError as error:
            client.close()
            if len(urls) == 1:
                raise
            failures.append((url, error))
            continue
        except BaseException:
            client.close()
            raise
        for info in infos:
            if info.kind == kind:
                return client, info
        client.close()
        served += [f"{host_of(url)} serves {info.model_id} ({_describe(info)})" for info in infos]
    wanted = "a reranker" if kind == "reranker" else "an embedding model"
    return_hint = ("a reranker endpoint (a sequence classifier with one label)" if kind == "reranker"
                   else "an embedding endpoint")
    summary = "; ".join([*served, *(f"{host_of(url)} failed: {error}" for url, error in failures)])
    raise TEIError(f"no TEI endpoint serves {wanted}: {summary}. Add {return_hint} to {URL_SETTING} "
                   "(comma-separated), or use --backend torch to run this model here",
                   "wrong-model" if served else failures[0][1].kind)


def parse_info(url: str, payload: Any) -> list[EndpointInfo]:
    """The models a `GET /info` answer describes: TEI's own fields, then any in this project's "models"
    extension (see `search.serve`). Raises TEIError (kind "protocol") for an answer that is not TEI's.

    >>> info = parse_info("http://h", {"model_id": "BAAI/bge-reranker-v2-m3", "model_type": {"reranker":
    ...     {"id2label": {"0": "LABEL_0"}, "label2id": {"LABEL_0": 0}}}, "max_input_length": 512,
    ...     "max_client_batch_size": 32, "auto_truncate": True})
    >>> info[0].kind, info[0].model_id, info[0].max_client_batch_size
    ('reranker', 'BAAI/bge-reranker-v2-m3', 32)
    """
    host = host_of(url)
    if not isinstance(payload, dict) or not isinstance(payload.get("model_id"), str):
        raise TEIError(f"the endpoint at {host} did not answer like TEI (GET /info has no model_id); check that "
                       f"{URL_SETTING} points at a text-embeddings-inference server", "protocol")
    infos = [_model_info(url, payload, payload)]
    extension = payload.get("models")
    if isinstance(extension, list):
        for entry in extension:
            if isinstance(entry, dict) and isinstance(entry.get("model_id"), str):
                info = _model_info(url, {**payload, **entry}, entry)
                if all(known.kind != info.kind for known in infos):
                    infos.append(info)
    return infos


def _model_info(url: str, fields: dict[str, Any], source: dict[str, Any]) -> EndpointInfo:
    model_type = source.get("model_type")
    kind: Kind
    labels = 1
    if not isinstance(model_type, dict) or len(model_type) != 1:
        raise TEIError(f"the endpoint at {host_of(url)} did not answer like TEI (GET /info has no model_type); "
                       f"check that {URL_SETTING} points at a text-embeddings-inference server", "protocol")
    (name, details), = model_type.items()
    if name == "embedding":
        kind = "embedding"
    elif name in ("reranker", "classifier"):
        kind = name
        id2label = details.get("id2label") if isinstance(details, dict) else None
        labels = len(id2label) if isinstance(id2label, dict) and id2label else 1
    else:
        raise TEIError(f"the endpoint at {host_of(url)} serves a model of unknown type {name!r}", "protocol")
    return EndpointInfo(url, fields["model_id"], kind, _count(fields, "max_input_length", 512),
                        _count(fields, "max_client_batch_size", DEFAULT_CHUNK), bool(fields.get("auto_truncate")),
                        fields["model_id"] not in LATE_INTERACTION_IDS, labels)


def _count(fields: dict[str, Any], name: str, default: int) -> int:
    value = fields.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _describe(info: EndpointInfo) -> str:
    if info.kind == "classifier":
        return f"a classifier with {info.labels} labels, not a reranker"
    return "a reranker" if info.kind == "reranker" else "an embedding model"


class TEIReranker:
    """A reranker behind a TEI endpoint (`search.loading` builds it for ``backend="tei"``).

    `endpoint` is one URL or several, comma-separated (the first serving a reranker is used). `model_id`
    is the model the endpoint serves (`requested_id` what the settings asked for); `device` is the
    endpoint's URL, so the score cache keeps each endpoint's scores apart. Scores are the raw logits
    (``raw_scores``), their sigmoid, and ``truncated=None``: the server truncates (``truncate``) and does
    not say whether it did. Scoring does not hold RERANK_LOCK (`remote`): the compute is the server's.

    Raises RerankerUnavailable (with the TEIError as its cause) when the endpoint can't be reached or does
    not serve a reranker; the message says which setting to change.
    """

    backend = "tei"
    remote = True
    tokenizer = None  # the endpoint tokenizes
    dtype = "unknown"  # the endpoint's; its /info is not read for it

    def __init__(self, model_id: str, endpoint: str, *, batch_size: int = DEFAULT_CHUNK,
                 client_options: dict[str, Any] | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        try:
            self.client, self.info = discover(endpoint_urls(endpoint), "reranker",
                                              make_client=lambda url: TEIClient(url, **(client_options or {})))
        except TEIError as error:
            raise RerankerUnavailable(str(error)) from error
        try:
            self.requested_id = model_id
            self.model_id = self.info.model_id
            self.device = self.info.url
            self.label = f"{self.model_id} via TEI ({self.client.host})"
            self.is_cross_encoder = self.info.cross_encoder
            self.max_length = self.info.max_input_length
            self._chunk = max(1, min(batch_size, self.info.max_client_batch_size))
            _note_other_model(model_id, self.model_id, self.client.host)
        except BaseException:
            self.client.close()
            raise

    def __repr__(self) -> str:
        return f"TEIReranker({self.model_id!r}, endpoint={self.device!r})"

    def latency(self) -> RequestLatency:
        return self.client.latency()

    def pair_lengths(self, query: str, passages: Sequence[str]) -> None:
        """None: only the endpoint knows its tokens (see `Reranker`)."""
        return None

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        """Return one PairScore per passage in input order, scored by the endpoint.

        Requests carry at most the endpoint's `max_client_batch_size` passages; one the server refuses as
        too large (413/422) is split in half and retried (a single passage it refuses is an error).
        `progress(done, total)` follows every request; `should_stop()` is polled before each one, every
        STOP_POLL_S while one waits for its answer or a retry, and raises RerankCancelled with the scores
        finished so far. Raises ValueError for an empty query and
        RerankerUnavailable when the endpoint fails (the message says what happened and what to change).
        """
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        total = len(passages)
        scores: dict[int, PairScore] = {}
        start = 0
        while start < total:
            if should_stop is not None and should_stop():
                raise RerankCancelled(len(scores), total, scores)
            positions = list(range(start, min(start + self._chunk, total)))
            try:
                self._score_positions(query, passages, positions, scores, should_stop)
            except TEIRequestCancelled:
                raise RerankCancelled(len(scores), total, dict(scores)) from None
            except TEIError as error:
                raise RerankerUnavailable(str(error)) from error
            start = positions[-1] + 1
            if progress is not None:
                progress(len(scores), total)
        return [scores[i] for i in range(total)]

    def _score_positions(self, query: str, passages: Sequence[str], positions: list[int],
                         scores: dict[int, PairScore], should_stop: StopFn | None = None) -> None:
        body = {"query": query, "texts": [passages[i] for i in positions], "raw_scores": True, "truncate": True}
        try:
            answer = self.client.post("/rerank", body, should_stop=should_stop)
        except TEIError as error:
            if error.kind != "too-large" or len(positions) == 1:
                raise
            self._shrink(error, len(positions))
            logger.info("TEI endpoint %s refused %d passages (%s); sending them in halves", self.client.host,
                        len(positions), error.status)
            half = len(positions) // 2
            self._score_positions(query, passages, positions[:half], scores, should_stop)
            self._score_positions(query, passages, positions[half:], scores, should_stop)
            return
        for index, raw in self._ranks(answer, len(positions)):
            scores[positions[index]] = PairScore(raw, sigmoid(raw) if self.is_cross_encoder else None, None)

    def _shrink(self, error: TEIError, sent: int) -> None:
        limit = re.search(r"maximum allowed batch size (\d+)", str(error))
        self._chunk = max(1, min(self._chunk, int(limit.group(1)) if limit else sent // 2))

    def _ranks(self, answer: Any, count: int) -> list[tuple[int, float]]:
        if not isinstance(answer, list) or len(answer) != count:
            raise self.client._protocol_error(f"POST /rerank answered {type(answer).__name__} for {count} texts, "
                                              "not one rank per text")
        ranks: dict[int, float] = {}
        for rank in answer:
            index = rank.get("index") if isinstance(rank, dict) else None
            score = rank.get("score") if isinstance(rank, dict) else None
            if (not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count or index in ranks
                    or not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score)):
                raise self.client._protocol_error(f"POST /rerank answered a bad rank {str(rank)[:80]}")
            ranks[index] = float(score)
        return list(ranks.items())


class TEIEncoder:
    """A dense encoder behind a TEI endpoint (`search.loading` builds it for ``backend="tei"``).

    `endpoint` is one URL or several, comma-separated (the first serving an embedding model is used).
    `model_id` and `spec` are the served model's (its prefixes are added here; the endpoint gets the text
    as is); `dimension` is measured with one request when loading. `tokenizer` is None: the endpoint
    tokenizes, and it serves no token embeddings (`token_embeddings` raises ValueError).

    Raises TEIError (a ValueError) when the endpoint can't be reached or does not serve an embedding model.
    """

    backend = "tei"
    remote = True
    tokenizer = None
    dtype = "unknown"  # the endpoint's; its /info is not read for it

    def __init__(self, model_id: str, endpoint: str, spec: ModelSpec | None = None, label: str | None = None,
                 path: str | None = None, *, client_options: dict[str, Any] | None = None) -> None:
        del label, path  # the label is the served model's; there is nothing to load from a folder
        self.client, self.info = discover(endpoint_urls(endpoint), "embedding",
                                          make_client=lambda url: TEIClient(url, **(client_options or {})))
        try:
            self.requested_id = model_id
            self.model_id = self.info.model_id
            self.device = self.info.url
            self.label = f"{self.model_id} via TEI ({self.client.host})"
            self.spec = (spec if spec is not None and spec.model_id == self.model_id
                         else model_spec(self.model_id, "dense"))
            self.max_length = self.info.max_input_length
            self._chunk = max(1, self.info.max_client_batch_size)
            _note_other_model(model_id, self.model_id, self.client.host)
            self.dimension = 0  # measured next: TEI's /info does not say
            self.dimension = int(self._embed_chunk(["dimension probe"]).shape[1])
        except BaseException:
            self.client.close()  # nothing else holds it
            raise

    def __repr__(self) -> str:
        return f"TEIEncoder({self.model_id!r}, endpoint={self.device!r})"

    def latency(self) -> RequestLatency:
        return self.client.latency()

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """Return L2-normalised float32 embeddings (len(texts), dimension) in input order, computed by the
        endpoint in requests of at most `batch_size` texts (and its `max_client_batch_size`).

        Raises TEIError when the endpoint fails (the message says what happened and what to change).
        """
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        prefix = self.spec.query_prefix if is_query else self.spec.passage_prefix
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        start = 0
        while start < len(texts):
            chunk = [prefix + text for text in texts[start:start + min(batch_size, self._chunk)]]
            out[start:start + len(chunk)] = self._embed_chunk(chunk)
            start += len(chunk)
            if progress is not None:
                progress(start, len(texts))
        return np.ascontiguousarray(out)

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        raise ValueError(f"the TEI backend serves pooled embeddings only, not token embeddings; run {self.model_id} "
                         "with --backend torch for late-interaction scoring")

    def _embed_chunk(self, chunk: list[str]) -> np.ndarray:
        try:
            answer = self.client.post("/embed", {"inputs": chunk, "normalize": True, "truncate": True})
        except TEIError as error:
            if error.kind != "too-large" or len(chunk) == 1:
                raise
            self._chunk = max(1, len(chunk) // 2)
            half = len(chunk) // 2
            return np.concatenate([self._embed_chunk(chunk[:half]), self._embed_chunk(chunk[half:])])
        try:
            vectors = np.asarray(answer, dtype=np.float32)
        except (TypeError, ValueError):
            vectors = np.zeros((0,))
        if (vectors.ndim != 2 or len(vectors) != len(chunk) or not vectors.shape[1] or not np.isfinite(vectors).all()
                or (self.dimension and vectors.shape[1] != self.dimension)):
            raise self.client._protocol_error(f"POST /embed did not answer one finite vector per text for "
                                              f"{len(chunk)} texts")
        return vectors


def _note_other_model(requested: str, served: str, host: str) -> None:
    if requested and requested not in (served, "auto") and requested not in LATE_INTERACTION_IDS:
        logger.info("the settings name %s; the TEI endpoint at %s serves %s, which is used", requested, host, served)


def _retry_after(response, default: float) -> float:
    value = response.headers.get("retry-after", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return default
    return max(0.0, seconds) if math.isfinite(seconds) else default


def _error_text(response) -> str:
    try:
        payload = response.json()
    except ValueError:
        payload = None
    text = payload.get("error") if isinstance(payload, dict) and isinstance(payload.get("error"), str) else None
    if text is None:
        text = response.text if isinstance(response.text, str) else ""
    flat = " ".join(text.split())
    return flat if len(flat) <= _ERROR_TEXT_CHARS else flat[:_ERROR_TEXT_CHARS - 1] + "…"


def _root_os_error(error: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = error
    found: BaseException | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError):
            found = current
            if isinstance(current, socket.gaierror | ConnectionRefusedError):
                return current
        current = current.__cause__ or current.__context__
    return found


def _redact_url(url: str) -> str:
    """`url` as errors and logs may quote it: without user name, password, query and fragment.

    >>> _redact_url("http://user:pw@host:8080/tei?api_key=s#x")
    'http://***@host:8080/tei'
    """
    without = re.sub(r"[?#].*", "", url, flags=re.DOTALL)
    return re.sub(r"^([^/]*//)[^/]*@", r"\1***@", without)


def internal_host(url: str, *, timeout: float = 3.0,
                  resolve: Callable[..., Any] = socket.getaddrinfo) -> str | None:
    """Why `url`'s host is not a public internet address (loopback, private, link-local, reserved,
    multicast, or a name that resolves to one, or that doesn't resolve within `timeout` s), else None.

    For endpoints a visitor types: the server would otherwise call addresses only it can reach. A name is
    resolved once, here; a host whose DNS changes between this check and the request is not caught.

    >>> internal_host("http://127.0.0.1:8080"), internal_host("http://[::1]/"), internal_host("http://10.1.2.3")
    ('127.0.0.1 is a loopback address', '::1 is a loopback address', '10.1.2.3 is a private address')
    >>> internal_host("https://8.8.8.8/")
    """
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return "the URL names no host"
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        answer: list[Any] = []
        worker = threading.Thread(target=lambda: answer.append(_resolved(resolve, host)), daemon=True)
        worker.start()
        worker.join(timeout)
        if not answer or isinstance(answer[0], Exception):
            return f"{host} does not resolve" + ("" if answer else f" within {timeout:g} s")
        addresses = answer[0]
    for address in addresses:
        for kind in ("loopback", "link_local", "private", "reserved", "multicast", "unspecified"):
            if getattr(address, f"is_{kind}"):
                shown = host if str(address) == host else f"{host} ({address})"
                return f"{shown} is a {kind.replace('_', '-')} address"
    return None


def _resolved(resolve: Callable[..., Any], host: str) -> list[Any] | Exception:
    try:
        return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in resolve(host, None)]
    except (OSError, ValueError, UnicodeError) as error:
        return error


def _safe_for_token(url: str) -> bool:
    """Whether a bearer token may go to `url`: over https, or to this machine (loopback)."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sleep(seconds: float, should_stop: StopFn | None) -> None:
    """Sleep `seconds`, in steps of STOP_POLL_S polling `should_stop` (TEIRequestCancelled once true)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if should_stop is not None and should_stop():
            raise TEIRequestCancelled("a retry was cancelled")
        time.sleep(min(left, STOP_POLL_S) if should_stop is not None else left)
    if should_stop is not None and should_stop():
        raise TEIRequestCancelled("a retry was cancelled")
