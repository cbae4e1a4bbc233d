"""The served models at work for TEI's routes (`ModelRunner`, which `TEIService` extends): loaded once on
first use, one permit per input, inputs prompted and cut (or refused) at the window as TEI's tokenization does,
embeddings batched across requests, (query, passage) pairs scored in turn under RERANK_LOCK, and every refusal
a `TEIRequestError` counted in the metrics."""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from ..inference import LOCK_POLL_SECONDS, RERANK_LOCK, Loaded, RerankCancelled, Reranker, StopFn, TextEncoder
from .batching import EmbedBatcher
from .limits import ServeLimits
from .metrics import Metrics
from .requests import EMPTY_INPUT, NOT_AN_EMBEDDER, ErrorType, TEIRequestError
from .timing import Timing
from .tokens import MAX_CHAR_MULTIPLIER, ReadyText, cut_to_tokens, model_prompts, named_prompt

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModels:
    """What a `TEIService` serves: a reranker and/or an encoder, and why either is a fallback."""

    reranker: Loaded[Reranker] | None
    encoder: Loaded[TextEncoder] | None


@dataclass
class _Calls:
    """A request's stop check and how many of its inputs a model has finished, batch by batch."""

    should_stop: StopFn | None = None
    batches: list[int] = field(default_factory=list)


class ModelRunner:
    """The models `load` returns (called once, on first use, in a worker thread; `ensure_loaded` loads them
    now), run within `limits`, with their `metrics`. Thread-safe. Raises TEIRequestError as TEI would."""

    def __init__(self, load: Callable[[], ServedModels], limits: ServeLimits | None = None) -> None:
        self.limits = limits or ServeLimits()
        self._load = load
        self._models: ServedModels | None = None
        self._load_error: str | None = None
        self._load_lock = threading.Lock()
        self._permits = threading.BoundedSemaphore(self.limits.max_concurrent_requests)
        self._plain_encoders: dict[int, TextEncoder] = {}
        self.metrics = Metrics(self.limits.max_input_tokens or 512)
        self._batcher = EmbedBatcher(self.metrics)

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

    def health_now(self) -> bool:
        """True when the models are loaded, False while they are not loaded yet; raises TEIRequestError
        (Unhealthy) when they could not be. Never waits: for /health under load."""
        if self._models is not None:
            return True
        if self._load_error is not None:
            raise TEIRequestError("Unhealthy", self._load_error)
        return False

    # -- checks --------------------------------------------------------------------------------------

    @contextmanager
    def _permits_for(self, inputs: int) -> Iterator[None]:
        """Hold one of `max_concurrent_requests` permits per input for the body, as TEI counts them; raises
        TEIRequestError (Overloaded, 429) without waiting when there are not enough free."""
        taken = 0
        try:
            while taken < inputs:
                if not self._permits.acquire(blocking=False):
                    raise self._fail("overloaded", "Overloaded", "Model is overloaded")
                taken += 1
            yield
        finally:
            for _ in range(taken):
                self._permits.release()

    def _fail(self, reason: str, error_type: ErrorType, message: str) -> TEIRequestError:
        self.metrics.count("te_request_failure", {"err": reason})
        return TEIRequestError(error_type, message)

    def _limit(self, window: int) -> int:
        cap = self.limits.max_input_tokens
        return window if cap is None else min(cap, window)

    def _check_batch(self, size: int) -> None:
        if size > self.limits.max_client_batch_size:
            raise self._fail("batch_size", "Validation", f"batch size {size} > maximum allowed batch size "
                                                         f"{self.limits.max_client_batch_size}")

    def _check_characters(self, text: str, limit: int) -> None:
        if len(text) > limit * MAX_CHAR_MULTIPLIER:
            raise self._fail("tokenization", "Validation", f"Input validation error: `inputs` must have less than "
                                                           f"{limit * MAX_CHAR_MULTIPLIER} characters. Given: "
                                                           f"{len(text)}")

    def _too_long(self, tokens: int, limit: int) -> TEIRequestError:
        return self._fail("tokenization", "Validation", f"Input validation error: `inputs` must have less than "
                                                        f"{limit} tokens. Given: {tokens}")

    def _succeeded(self, method: str, timing: Timing, kind: Literal["embed", "predict"]) -> None:
        self.metrics.count("te_request_success", {"method": method})
        total = timing.tokenization_s + timing.queue_s + timing.inference_s
        for prefix in ("te_request", f"te_{kind}"):
            self.metrics.observe(f"{prefix}_duration", total)
            self.metrics.observe(f"{prefix}_tokenization_duration", timing.tokenization_s)
            self.metrics.observe(f"{prefix}_queue_duration", timing.queue_s)
            self.metrics.observe(f"{prefix}_inference_duration", timing.inference_s)

    # -- models at work ----------------------------------------------------------------------------

    def _embed_inputs(self, inputs: list[str | list[int]], batch: bool, *, truncate: bool, direction: str,
                      prompt_name: str | None, normalize: bool, dimensions: int | None) -> tuple[np.ndarray, Timing]:
        """Embed `inputs` as TEI's embed_pooled does: prompt, truncation at the window (or refusal), the
        pooled vector cut to `dimensions`, then normalised. Counts metrics; raises TEIRequestError."""
        self.metrics.count("te_request_count", {"method": "batch" if batch else "single"})
        if batch:
            if not inputs:
                raise self._fail("validation", "Empty", "`inputs` cannot be empty")
            self._check_batch(len(inputs))
        with self._permits_for(len(inputs)):
            served = self.ensure_loaded()
            if dimensions == 0:
                raise self._fail("validation", "Validation", "Input validation error: `dimensions` should be positive")
            if served.encoder is None:
                raise self._fail("model_type", "Backend", NOT_AN_EMBEDDER)
            encoder = served.encoder.model
            timing = Timing(device=encoder.device)
            started = time.perf_counter()
            prompt = named_prompt(model_prompts(encoder), prompt_name) if prompt_name is not None else ""
            limit = self._limit(encoder.max_length)
            ready = [self._ready_text(encoder.tokenizer, item, prompt, limit, truncate, direction, timing)
                     for item in inputs]
            timing.tokenization_s = time.perf_counter() - started
            self.metrics.count("te_embed_count", by=len(ready))
            vectors = self._batcher.embed(self._plain(encoder), ready, timing)
        if dimensions is not None:
            if dimensions > vectors.shape[1]:
                raise self._fail("validation", "Validation", "Input validation error: `dimensions` should be "
                                                             "smaller than the maximum embedding dimension.")
            vectors = vectors[:, :dimensions]
        if normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.metrics.count("te_embed_success", by=len(ready))
        self._succeeded("batch" if batch else "single", timing, "embed")
        return np.ascontiguousarray(vectors, dtype=np.float32), timing

    def _ready_text(self, tokenizer: Any, item: str | list[int], prompt: str, limit: int, truncate: bool,
                    direction: str, timing: Timing) -> ReadyText:
        """One input as the model will read it: token ids decoded, the prompt in front, and, past `limit`
        tokens, cut from `direction` (or refused when not `truncate`), as TEI's tokenizer does."""
        if isinstance(item, list):
            if not item:
                raise self._fail("tokenization", "Empty", EMPTY_INPUT)
            timing.characters += len(item)
            item = tokenizer.decode(item, skip_special_tokens=True) if tokenizer is not None else ""
        else:
            if not item:
                raise self._fail("tokenization", "Empty", EMPTY_INPUT)
            timing.characters += len(item)
        text = prompt + item
        if len(text) > limit * MAX_CHAR_MULTIPLIER:
            if not truncate:
                self._check_characters(text, limit)
            text = text[:limit * MAX_CHAR_MULTIPLIER]
        if tokenizer is None:  # a remote encoder: the endpoint truncates
            return ReadyText(text, 0)
        tokens = len(tokenizer(text, verbose=False)["input_ids"])
        if tokens > limit:
            if not truncate:
                raise self._too_long(tokens, limit)
            keep = limit - tokenizer.num_special_tokens_to_add(pair=False)
            text, tokens = cut_to_tokens(tokenizer, text, keep, direction)
            tokens += tokenizer.num_special_tokens_to_add(pair=False)
        self.metrics.observe("te_request_input_length", tokens)
        timing.tokens += tokens
        return ReadyText(text, tokens)

    def _score_pairs(self, reranker: Reranker, pairs: Sequence[tuple[str, str]], truncate: bool, direction: str,
                     should_stop: StopFn | None) -> tuple[list[tuple[float, float | None]], Timing]:
        """Score (query, passage) `pairs` as TEI's predict does for each: truncated at the window from
        `direction` (or refused when not `truncate`). A pair with a blank query scores 0 (see docs/tei.md):
        the engine scores no pair against an empty query. Returns (raw, sigmoid) per pair, and the timing."""
        timing = Timing(device=reranker.device)
        started = time.perf_counter()
        limit = self._limit(reranker.max_length)
        by_query: dict[str, list[int]] = {}
        texts = [text for _, text in pairs]
        for position, (query, text) in enumerate(pairs):
            if not query and not text:
                raise self._fail("tokenization", "Empty", EMPTY_INPUT)
            timing.characters += len(query) + len(text)
            cap = limit * MAX_CHAR_MULTIPLIER
            if len(query) + len(text) > cap:
                if not truncate:
                    raise self._fail("tokenization", "Validation", f"Input validation error: `inputs` must have "
                                     f"less than {cap} characters. Given: {len(query) + len(text)}")
                query, texts[position] = query[:cap // 2], text[:cap // 2]
            by_query.setdefault(query, []).append(position)
        blank = (0.0, 0.5 if reranker.is_cross_encoder else None)
        scores: list[tuple[float, float | None]] = [blank] * len(pairs)
        scored: list[tuple[str, list[int]]] = []
        for query, positions in by_query.items():
            passages = [texts[i] for i in positions]
            lengths = reranker.pair_lengths(query, passages) if query.strip() else None
            if lengths is not None:
                for i, (position, length) in enumerate(zip(positions, lengths, strict=True)):
                    if length > limit and not truncate:
                        raise self._too_long(length, limit)
                    if length > limit and (direction == "left" or limit < reranker.max_length):
                        texts[position] = self._fit_passage(reranker, query, passages[i], length, limit, direction)
                    self.metrics.observe("te_request_input_length", min(length, limit))
                    timing.tokens += min(length, limit)
            if query.strip():
                scored.append((query, positions))
        timing.tokenization_s = time.perf_counter() - started
        calls = _Calls(should_stop)
        self.metrics.count("te_predict_count", by=len(pairs))
        for query, positions in scored:
            queued = time.perf_counter()
            with self._turn(reranker, should_stop):
                timing.queue_s += time.perf_counter() - queued
                started = time.perf_counter()
                try:
                    results = reranker.score(query, [texts[i] for i in positions], should_stop=should_stop,
                                             progress=_batch_counter(calls, self.metrics))
                except RerankCancelled:
                    raise self._fail("dropped", "Backend", "Backend error: the client went away; the rerank "
                                                           "stopped") from None
                timing.inference_s += time.perf_counter() - started
            for position, result in zip(positions, results, strict=True):
                if math.isnan(result.raw):
                    raise self._fail("inference", "Backend", "score is NaN")
                scores[position] = (result.raw, result.sigmoid)
        self.metrics.count("te_predict_success", by=len(pairs))
        return scores, timing

    def _fit_passage(self, reranker: Reranker, query: str, passage: str, length: int, limit: int,
                     direction: str) -> str:
        """`passage` cut from `direction` so that its pair with `query` takes at most `limit` tokens."""
        tokenizer = reranker.tokenizer
        passage_tokens = len(tokenizer(passage, add_special_tokens=False, verbose=False)["input_ids"])
        for _ in range(3):  # re-tokenising a cut text can rarely add a token: check and cut again
            keep = max(0, passage_tokens - (length - limit))
            passage, passage_tokens = cut_to_tokens(tokenizer, passage, keep, direction)
            length = reranker.pair_lengths(query, [passage])[0]  # type: ignore[index]
            if length <= limit or not passage:
                break
        return passage

    @contextmanager
    def _turn(self, reranker: Reranker, should_stop: StopFn | None) -> Iterator[None]:
        """Wait for RERANK_LOCK (re-entrant: the rerank takes it again inside), counted in te_queue_size, so
        the queue time is measured; a remote reranker needs no turn here."""
        if reranker.remote:
            yield
            return
        self.metrics.add("te_queue_size", 1)
        try:
            while not RERANK_LOCK.acquire(timeout=LOCK_POLL_SECONDS):
                if should_stop is not None and should_stop():
                    raise self._fail("dropped", "Backend", "Backend error: the client went away; the rerank "
                                                           "stopped")
        finally:
            self.metrics.add("te_queue_size", -1)
        try:
            yield
        finally:
            RERANK_LOCK.release()

    def _plain(self, encoder: TextEncoder) -> TextEncoder:
        """`encoder` without its query/passage prefixes and normalisation: TEI embeds the text as given (with
        the prompt a request names) and normalises after `dimensions` cuts the vector."""
        spec = replace(encoder.spec, query_prefix="", passage_prefix="", normalize=False)
        if spec == encoder.spec:
            return encoder
        with self._load_lock:
            if id(encoder) not in self._plain_encoders:
                view = copy.copy(encoder)  # shares the model and tokenizer; only the conventions differ
                view.spec = spec
                self._plain_encoders[id(encoder)] = view
            return self._plain_encoders[id(encoder)]


def _batch_counter(calls: _Calls, metrics: Metrics) -> Callable[[int, int], None]:
    last = 0

    def progress(done: int, _total: int) -> None:
        nonlocal last
        if done > last:
            metrics.observe("te_batch_next_size", done - last)
            calls.batches.append(done - last)
            last = done

    return progress
