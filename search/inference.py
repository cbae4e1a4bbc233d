"""The interface every model backend follows, and the records that cross it; no model code.

- `Reranker`: scores passages against a query (`score` -> one `PairScore` per passage).
- `TextEncoder`: pooled embeddings for dense retrieval (`embed`) and per-token ones (`token_embeddings`).
- `Loaded[M]`: a loaded model with the id that was asked for and, for a fallback, why.
- `RerankerUnavailable`, `RERANK_LOCK`, `sigmoid`, `ProgressFn`: shared by the backends and the loader.

Backends live in `search/backends/`, one per module; `search/loading.py` chooses, builds and caches them.

Concurrency: loaded models are cached per (model id, device) and shared read-only between threads.
Every reranker's `score` call holds `RERANK_LOCK` for its whole duration, so two heavy reranks never
compete for the same CPU cores (on 2 cores, two interleaved reranks would both finish about as late as
the second one does when they queue). It is re-entrant: a caller that times several calls together may
hold it too.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from .models import ModelSpec

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while texts are embedded."""

RERANK_LOCK = threading.RLock()

M = TypeVar("M")


@dataclass(frozen=True)
class PairScore:
    """A reranker's score for one (query, passage) pair.

    `raw` is the model's score (a logit for cross-encoders); `sigmoid` is its sigmoid, or None when
    the score is not a logit. `truncated`: the passage was cut to fit the model. `query_truncated`:
    the query alone was longer than half the model's window and was cut to that half.
    """

    raw: float
    sigmoid: float | None
    truncated: bool
    query_truncated: bool = False


@runtime_checkable
class Reranker(Protocol):
    """Anything that scores passages against a query; higher is more relevant."""

    model_id: str
    label: str  # what the UI and CLI show
    backend: str  # what runs it: "torch", "late-interaction", ...
    is_cross_encoder: bool

    def score(self, query: str, passages: Sequence[str]) -> list[PairScore]:
        """Return one PairScore per passage, in input order; ValueError for an empty query."""
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


def sigmoid(logit: float) -> float:
    """Return 1 / (1 + e^-logit) without overflowing for large negative logits."""
    if logit >= 0:
        return 1.0 / (1.0 + math.exp(-logit))
    exp = math.exp(logit)
    return exp / (1.0 + exp)
