"""The late-interaction reranker backend: ColBERT-style MaxSim scoring over the token embeddings of
any `TextEncoder`. `search.loading` builds it over the bundled all-MiniLM-L6-v2 as the offline
fallback, used when no cross-encoder can be loaded.

For each query token, take its best cosine similarity with any passage token; the score is the mean
over query tokens, in [-1, 1]. Mean and sum rank a query's passages identically (the number of query
tokens is the same for all of them); the mean is kept because it reads the same for short and long
queries. Query and passage are encoded separately, so passage vectors are cached across calls.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..inference import RERANK_LOCK, PairScore, TextEncoder
from ..models import LATE_INTERACTION_ID, LATE_INTERACTION_LABEL

DEFAULT_CACHE_SIZE = 4096


def maxsim(query_vectors: np.ndarray, passage_vectors: np.ndarray) -> float:
    """Return the mean over query tokens of each one's highest cosine similarity with a passage token.

    Both arguments are L2-normalised (n_tokens, dim) arrays. An empty passage scores -1 (the lowest
    possible); an empty query is a ValueError.

    >>> q = np.array([[1.0, 0.0], [0.0, 1.0]]); p = np.array([[1.0, 0.0], [0.6, 0.8]])
    >>> round(maxsim(q, p), 6)  # (max(1, .6) + max(0, .8)) / 2
    0.9
    """
    if len(query_vectors) == 0:
        raise ValueError("the query has no tokens to match; type a question or keywords")
    if len(passage_vectors) == 0:
        return -1.0
    return float((query_vectors @ passage_vectors.T).max(axis=1).mean())


class CacheInfo(NamedTuple):
    hits: int
    misses: int
    size: int
    max_size: int


class _PassageVectors(NamedTuple):
    vectors: np.ndarray
    truncated: bool


class LateInteractionReranker:
    """MaxSim reranking over `encoder`'s token embeddings; `sigmoid` is None (the score is no logit).

    Thread-safe: the passage cache has its own lock, and scoring holds `inference.RERANK_LOCK`.
    """

    model_id = LATE_INTERACTION_ID
    label = LATE_INTERACTION_LABEL
    backend = "late-interaction"
    is_cross_encoder = False

    def __init__(self, encoder: TextEncoder, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size={cache_size} must be 0 or more")
        self.encoder = encoder
        self.cache_size = cache_size
        self._cache: OrderedDict[str, _PassageVectors] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def __repr__(self) -> str:
        return f"LateInteractionReranker({self.encoder.model_id!r}, device={self.encoder.device!r})"

    def score(self, query: str, passages: Sequence[str]) -> list[PairScore]:
        """Return MaxSim scores (sigmoid None) for `passages` against `query`, in input order.

        `truncated` is True for passages longer than the encoder's window (256 tokens for MiniLM).
        Raises ValueError for an empty query.
        """
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        if not passages:
            return []
        with RERANK_LOCK:
            query_vectors = self.encoder.token_embeddings([query])[0]
            stored = self._passage_vectors(passages)
        return [PairScore(maxsim(query_vectors, item.vectors), None, item.truncated) for item in stored]

    def cache_info(self) -> CacheInfo:
        """Return the passage cache's hit and miss counts (one per passage looked up) and its size."""
        with self._cache_lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), self.cache_size)

    def clear_cache(self) -> None:
        """Forget every cached passage and reset the counts."""
        with self._cache_lock:
            self._cache.clear()
            self._hits = self._misses = 0

    def _passage_vectors(self, passages: Sequence[str]) -> list[_PassageVectors]:
        found: dict[str, _PassageVectors | None] = {}
        with self._cache_lock:
            for text in passages:
                if text in found:
                    self._hits += 1
                elif text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
                    self._hits += 1
                else:
                    found[text] = None  # placeholder: encode once even if repeated in this call
                    self._misses += 1
        missing = [text for text, item in found.items() if item is None]
        if missing:
            lengths = self.encoder.tokenizer(missing, verbose=False)["input_ids"]
            vectors = self.encoder.token_embeddings(missing)
            fresh = {text: _PassageVectors(v, len(ids) > self.encoder.max_length)
                     for text, v, ids in zip(missing, vectors, lengths, strict=True)}
            found.update(fresh)
            with self._cache_lock:
                for text, item in fresh.items():
                    self._cache[text] = item
                    self._cache.move_to_end(text)
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [found[text] for text in passages]
