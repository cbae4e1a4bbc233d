"""The HTTP client of one TEI endpoint: `TEIClient`.

Every call has a timeout; a bearer token from $SEARCH_TEI_TOKEN or $HF_TOKEN is sent when set (never logged,
shown or put in an error; sent only over https or to a loopback host, and never to a URL a visitor typed);
answers 429/503 are retried, bounded; a cancel check is polled while a call waits; every failure is a named
`TEIError`. An endpoint a visitor typed (`policy.endpoint_policy`) is reached only at public addresses checked
when connecting (`transport.PublicOnlyTransport`), and its errors never quote what it answered.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ...inference import StopFn
from .errors import TEIError, TEIRequestCancelled
from .policy import (
    ALLOW_INTERNAL_TEI_ENV,
    TEI_TOKEN_ENV,
    TEI_URL_ENV,
    TOKEN_ENV,
    URL_HINT,
    URL_SETTING,
    EndpointPolicy,
    Resolver,
    endpoint_policy,
    endpoint_urls,
    host_of,
    safe_for_token,
)

logger = logging.getLogger(__name__)

TIMEOUT_ENV = "SEARCH_TEI_TIMEOUT"
DEFAULT_TIMEOUT_S = 60.0  # a rerank of 32 long pairs on a CPU endpoint can take tens of seconds
CONNECT_TIMEOUT_S = 5.0
RETRY_STATUSES = frozenset({429, 503})
DEFAULT_RETRIES = 4  # after the first try; each waits twice as long as the one before
DEFAULT_RETRY_BUDGET_S = 20.0  # no retry starts later than this after the first try
FIRST_BACKOFF_S = 0.25
STOP_POLL_S = 0.05  # how often a cancel check is polled while a request or a backoff waits
_ERROR_TEXT_CHARS = 300


@dataclass(frozen=True)
class RequestLatency:
    """Request latency of one endpoint since it was loaded: `count` requests answered, the `last` and
    `mean` seconds (None before the first)."""

    count: int
    last_s: float | None
    mean_s: float | None


def default_timeout() -> float:
    """Seconds a request may take: the setting SEARCH_TEI_TIMEOUT (default DEFAULT_TIMEOUT_S; a bad value is
    refused when the configuration is read, naming the variable)."""
    from ... import config

    return float(config.current().tei_timeout)


class TEIClient:
    """One TEI endpoint at `url` over httpx, safe to share between threads.

    `token` (default: $SEARCH_TEI_TOKEN, else $HF_TOKEN) is sent as ``Authorization: Bearer ...`` over https
    or to a loopback host only (to a plain-http remote host it is withheld, with a warning saying why), and
    is never logged, shown in a repr or put in an error. Every call times out after `timeout` seconds
    (default: `default_timeout()`; connecting after at most CONNECT_TIMEOUT_S). Answers 429 and 503 are
    retried up to `retries` times with exponential backoff from `first_backoff_s` (or the server's
    Retry-After), as long as `retry_budget_s` has not passed since the first try. Every failure raises
    TEIError.

    `policy` (default: `endpoint_policy(url)`, what `typed_endpoints` decided for a URL a visitor typed, else the
    operator's) says whether the endpoint was typed (then no token is sent and no error quotes what it
    answered: only the status and a fixed message) and whether it is reached only at public addresses, resolved
    with `resolve` and checked when connecting (a host that resolves to another is refused: kind "address").
    """

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = None,
                 retries: int = DEFAULT_RETRIES, retry_budget_s: float = DEFAULT_RETRY_BUDGET_S,
                 first_backoff_s: float = FIRST_BACKOFF_S, policy: EndpointPolicy | None = None,
                 resolve: Resolver = socket.getaddrinfo) -> None:
        import httpx

        (self.url,) = endpoint_urls(url)
        self.host = host_of(self.url)
        self.policy = endpoint_policy(self.url) if policy is None else policy
        self.timeout = default_timeout() if timeout is None else float(timeout)
        if retries < 0 or retry_budget_s < 0 or first_backoff_s < 0:
            raise ValueError(f"retries={retries}, retry_budget_s={retry_budget_s} and first_backoff_s="
                             f"{first_backoff_s} must not be negative")
        self.retries = retries
        self.retry_budget_s = retry_budget_s
        self.first_backoff_s = first_backoff_s
        if self.policy.typed:
            token = None  # a token goes only to the operator's own endpoints
        elif token is None:
            from ... import config

            token = config.tei_token()
        token = token.strip() if token and token.strip() else None
        if token and not safe_for_token(self.url):
            logger.warning("not sending the token from %s/%s to the TEI endpoint at %s: it is plain http to a host "
                           "that is not this machine, where anyone on the way could read it. Use an https:// "
                           "address in %s (or unset the token for this endpoint)", TEI_TOKEN_ENV, TOKEN_ENV,
                           self.host, URL_SETTING)
            token = None
        self._token = token
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        connect = min(CONNECT_TIMEOUT_S, self.timeout)
        transport = None
        if self.policy.public_only:
            from .transport import PublicOnlyTransport

            transport = PublicOnlyTransport(resolve=resolve, resolve_timeout=connect)
        self._http = httpx.Client(base_url=self.url, headers=headers, follow_redirects=False, transport=transport,
                                  timeout=httpx.Timeout(self.timeout, connect=connect))
        self._latency_lock = threading.Lock()
        self._requests = 0
        self._seconds = 0.0
        self._last: float | None = None

    def __repr__(self) -> str:
        typed = ", typed" if self.policy.typed else ""
        return f"TEIClient({self.url!r}, token={'set' if self._token else 'none'}, timeout={self.timeout:g}{typed})"

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

        from .transport import AddressRefused

        started = time.monotonic()
        delay = self.first_backoff_s
        for attempt in range(self.retries + 1):
            sent = time.perf_counter()
            try:
                response = self._send(method, path, body, should_stop)
            except AddressRefused as error:
                raise self._address_error(error.reason) from None
            except httpx.TimeoutException as error:
                raise self._timeout_error(method, path, error) from None
            except httpx.TransportError as error:
                raise self._connection_error(error) from None
            except httpx.TooManyRedirects:
                raise self.protocol_error(f"{method} {path} redirected too often") from None
            except httpx.DecodingError:
                raise self.protocol_error(f"{method} {path} answered a body that could not be decoded") from None
            except httpx.HTTPError as error:
                raise self.protocol_error(f"{method} {path} failed: {type(error).__name__}") from None
            if response.status_code < 400:
                self._record(time.perf_counter() - sent)
                try:
                    return response.json()
                except ValueError:
                    raise self.protocol_error(f"{method} {path} answered {response.status_code} without JSON") \
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
        if self.policy.typed:  # only what this machine says (an OS error), never bytes the endpoint sent
            reason = (cause.strerror if isinstance(cause, OSError) and cause.strerror else None) or type(error).__name__
        else:
            reason = self._scrub(str(cause or error).strip() or type(error).__name__)
        return TEIError(f"could not talk to the TEI endpoint at {self.host} ({reason[:_ERROR_TEXT_CHARS]}); check "
                        f"that it is running and that {URL_SETTING} is its address", "connect")

    def _address_error(self, reason: str) -> TEIError:
        return TEIError(f"the TEI endpoint at {self.host} was not contacted: {reason}. A TEI URL typed here must "
                        f"name a public address; use a public endpoint (the operator can set it as {TEI_URL_ENV}, or "
                        f"allow internal addresses with {ALLOW_INTERNAL_TEI_ENV}=1)", "address")

    def protocol_error(self, what: str, detail: str | None = None) -> TEIError:
        """The TEIError (kind "protocol") for an answer that is not TEI's: `what` was wrong, and `detail`, a
        part of the answer, is quoted unless the endpoint was typed by a visitor."""
        if detail and not self.policy.typed:
            what = f"{what}: {detail}"
        return TEIError(f"the endpoint at {self.host} did not answer like TEI ({what}); check that {URL_SETTING} "
                        "points at a text-embeddings-inference server", "protocol")

    def _status_error(self, method: str, path: str, response, tries: int, seconds: float) -> TEIError:
        status = response.status_code
        if self.policy.typed:
            quoted = f"{status}; what an endpoint typed here answers is not shown"
        else:
            said = self._scrub(_error_text(response))
            quoted = f"{status}: {said}" if said else str(status)
        if status in (401, 403):
            if self.policy.typed:
                message = (f"the TEI endpoint at {self.host} requires a token ({quoted}); a token goes only to the "
                           f"endpoints the operator set ({TEI_URL_ENV}): leave the TEI URL empty to use them")
            elif not self._token:
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




def _sleep(seconds: float, should_stop: StopFn | None) -> None:
    """Sleep `seconds`, in steps of STOP_POLL_S polling `should_stop` (TEIRequestCancelled once true)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if should_stop is not None and should_stop():
            raise TEIRequestCancelled("a retry was cancelled")
        time.sleep(min(left, STOP_POLL_S) if should_stop is not None else left)
    if should_stop is not None and should_stop():
        raise TEIRequestCancelled("a retry was cancelled")
