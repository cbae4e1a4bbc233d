"""The interface every model backend follows, and the records that cross it; no model code.

- `Reranker`: scores passages against a query (`score` -> one `PairScore` per passage); what a backend is.
- `MeasuredReranker`: a Reranker with its measured speed and its cached pairs; what callers get.
- `PassageCachingReranker`: a Reranker that encodes each passage once and keeps it (late interaction).
- `TextEncoder`: pooled embeddings for dense retrieval (`embed`) and per-token ones (`token_embeddings`).
- `Loaded[M]`: a loaded model with the id that was asked for and, for a fallback, why.
- `RerankerUnavailable`, `RERANK_LOCK`, `sigmoid`, `ProgressFn`: shared by the backends and the loader.
- Long reranks report progress and stop on request: `ProgressFn`, `StopFn`, `RerankCancelled`, `rerank_turn`.
- `Throughput`: a reranker's measured speed on this machine, to tell how long a rerank will take.

Backends live in `search/backends/`, one per module; `search/loading.py` chooses, builds and caches them.

Concurrency: loaded models are cached per (model id, device) and shared read-only between threads.
Every reranker's `score` call holds `RERANK_LOCK` for its whole duration, so two heavy reranks never
compete for the same CPU cores (on 2 cores, two interleaved reranks would both finish about as late as
the second one does when they queue). It is re-entrant: a caller that times several calls together may
hold it too. Backends take it through `rerank_turn`, so a rerank still waiting for its turn can be
cancelled too. A remote backend (``remote`` True, like the TEI client) computes elsewhere and does not
take it: a server in this same process needs it to answer.

Progress and cancellation: `score(..., progress=..., should_stop=...)` calls ``progress(done, total)``
(pairs) after every batch and polls ``should_stop()`` before every batch (and while waiting for the
lock); when it returns True, `score` raises `RerankCancelled` within one batch, carrying the scores
finished so far.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from .models import ModelSpec

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)``: texts embedded, or (query, passage) pairs scored, so far."""

StopFn = Callable[[], bool]
"""Polled between batches; returning True stops the work (a rerank raises `RerankCancelled`)."""

RERANK_LOCK = threading.RLock()
LOCK_POLL_SECONDS = 0.05  # how often a rerank waiting for RERANK_LOCK asks whether it should stop

M = TypeVar("M")


@dataclass(frozen=True, slots=True)  # slots: the score cache holds hundreds of thousands
class PairScore:
    """A reranker's score for one (query, passage) pair.

    `raw` is the model's score (a logit for cross-encoders); `sigmoid` is its sigmoid, or None when
    the score is not a logit. `truncated`: the passage was cut to fit the model (None: unknown, when a
    server truncates and does not say). `query_truncated`: the query alone was longer than half the
    model's window and was cut to that half.
    """

    raw: float
    sigmoid: float | None
    truncated: bool | None
    query_truncated: bool = False


@runtime_checkable
class Reranker(Protocol):
    """Anything that scores passages against a query; higher is more relevant."""

    model_id: str
    label: str  # what the UI and CLI show
    backend: str  # what runs it: "torch", "late-interaction", ...
    is_cross_encoder: bool

    device: str  # where it runs: "cpu", "cuda:0", ...
    max_length: int  # tokens it reads per (query, passage) pair (late interaction: per text); longer pairs are cut
    remote: bool  # computes elsewhere (a TEI endpoint): scoring takes no RERANK_LOCK turn on this machine
    dtype: str  # what its weights run at, as TEI's /info `model_dtype` says: "float32", "int8", "q4_0", ...
    tokenizer: Any  # its transformers tokenizer (a fast one: offsets and decode), or None when `remote`

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int] | None:
        """Return the tokens each (query, passage) pair takes before any truncation, special tokens and
        prefixes included (late interaction, which reads query and passage apart: the longer of the two); a
        pair longer than `max_length` is cut when scored. None when only a server could tell (`remote`)."""
        ...

    def passage_caching(self) -> PassageCachingReranker | None:
        """The reranker that encodes each passage once and keeps it, when this one reranks that way (late
        interaction: itself; a wrapper such as the score cache: what it wraps says), else None (a
        cross-encoder reads every pair whole). It decides what an estimate counts (`search.estimates`)."""
        ...

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        """Return one PairScore per passage, in input order; ValueError for an empty query.

        `progress(done_pairs, total_pairs)` is called after every scored batch, the last time with
        ``(len(passages), len(passages))`` (never for no passage); it runs on the scoring thread, which
        holds `RERANK_LOCK`, so it should be quick. `should_stop()` is polled before every batch and while
        waiting for `RERANK_LOCK`; when it returns True, raises `RerankCancelled`.
        """
        ...


@runtime_checkable
class MeasuredReranker(Reranker, Protocol):
    """A `Reranker` that also knows its speed on this machine and which pairs it has scored already: what
    every caller of a loaded reranker gets (`search.loading.load_reranker` gives a
    `score_cache.CachedReranker`; `score_cache.measured` wraps any other)."""

    def throughput(self) -> Throughput:
        """The backend's measured speed here (cached pairs not counted)."""
        ...

    def expected_seconds(self, pairs: int) -> float | None:
        """Seconds scoring `pairs` uncached pairs should take here; None before anything was measured."""
        ...

    def uncached(self, query: str, passages: Sequence[str]) -> int:
        """How many distinct pairs of `passages` a `score` call would send to the backend now."""
        ...


@runtime_checkable
class PassageCachingReranker(Protocol):
    """A `Reranker` that encodes each passage once with `encoder` and keeps its vectors (late interaction):
    a rerank costs one encoding of the query and one of each passage not encoded yet, however many pairs, so
    its time follows its encoder's measured speed (`search.estimates`), not a speed per pair."""

    encoder: TextEncoder

    def unencoded(self, passages: Sequence[str]) -> int:
        """How many distinct `passages` are not encoded yet: what a rerank of them would encode."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """A text encoder with its tokenizer and conventions (the `spec`: pooling, prefixes, max length).

    Implementations are safe to share between threads for inference.
    """

    model_id: str
    label: str  # what the UI and CLI show
    backend: str  # what runs it: "torch", ...
    device: str
    dimension: int  # length of one embedding
    max_length: int  # tokens read per text; longer texts are cut
    dtype: str  # what its weights run at, as TEI's /info `model_dtype` says: "float32", "int8", "q4_0", ...
    spec: ModelSpec
    tokenizer: Any  # a transformers tokenizer: called on a list of texts, gives {"input_ids": [...]}

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """Return L2-normalised float32 embeddings (len(texts), dimension), C-contiguous, in input order.

        `is_query` picks the model's query or passage prefix (``query: `` / ``passage: `` for E5).
        """
        ...

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """Return, per text, its L2-normalised token vectors (n_tokens, dimension), without padding and
        [CLS]/[SEP]-like markers."""
        ...


@dataclass(frozen=True)
class Loaded(Generic[M]):
    """A loaded `model` (a Reranker or a TextEncoder), the id that was `requested` and, when `model` is a
    fallback, why the requested one could not be used.

    >>> Loaded("a model", "org/missing", "it is not cached").is_fallback
    True
    """

    model: M
    requested: str
    fallback_reason: str | None = None

    @property
    def is_fallback(self) -> bool:
        return self.fallback_reason is not None


class RerankerUnavailable(ValueError):
    """The chosen reranker cannot be loaded; the message says why and which setting to change."""


class RerankCancelled(Exception):
    """A rerank stopped because its `should_stop` returned True.

    `done` of `total` pairs had been scored; `partial` maps input positions to the scores finished
    before the stop (the score cache keeps them, so running the rerank again resumes where it stopped).

    >>> error = RerankCancelled(4, 20)
    >>> str(error), error.partial
    ('rerank cancelled after 4 of 20 pairs', {})
    """

    def __init__(self, done: int, total: int, partial: Mapping[int, PairScore] | None = None) -> None:
        super().__init__(f"rerank cancelled after {done} of {total} pairs")
        self.done = done
        self.total = total
        self.partial: dict[int, PairScore] = dict(partial or {})


@contextmanager
def rerank_turn(should_stop: StopFn | None = None, *, total: int = 0) -> Iterator[None]:
    """Hold `RERANK_LOCK` for the body: one heavy rerank at a time.

    While another rerank holds it, `should_stop` is polled every LOCK_POLL_SECONDS; when it returns True,
    raises RerankCancelled(0, total) without ever taking the lock.
    """
    if should_stop is None:
        RERANK_LOCK.acquire()
    else:
        while not RERANK_LOCK.acquire(timeout=LOCK_POLL_SECONDS):
            if should_stop():
                raise RerankCancelled(0, total)
    try:
        yield
    finally:
        RERANK_LOCK.release()


@dataclass(frozen=True)
class Throughput:
    """A reranker's measured speed on this machine: seconds per (query, passage) pair scored by its
    backend, exponentially weighted over the scored batches (recent ones count most; pairs answered
    from the score cache are not counted). `pairs` and `batches` count what was measured since the
    reranker was loaded; `seconds_per_pair` is None before the first batch.

    >>> Throughput(0.25, 40, 3).expected_seconds(20), Throughput(None, 0, 0).expected_seconds(20)
    (5.0, None)
    """

    seconds_per_pair: float | None
    pairs: int
    batches: int

    @property
    def pairs_per_second(self) -> float | None:
        if not self.seconds_per_pair:
            return None
        return 1.0 / self.seconds_per_pair

    def expected_seconds(self, pairs: int) -> float | None:
        """Seconds scoring `pairs` uncached pairs should take here; None before anything was measured."""
        if pairs < 0:
            raise ValueError(f"pairs={pairs} is negative; pass the number of pairs still to score")
        if self.seconds_per_pair is None:
            return None
        return pairs * self.seconds_per_pair


def sigmoid(logit: float) -> float:
    """Return 1 / (1 + e^-logit) without overflowing for large negative logits."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)
