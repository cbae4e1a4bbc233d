"""The late-interaction reranker backend: ColBERT-style MaxSim scoring over the token embeddings of
any `TextEncoder`. `search.loading` builds it over the bundled 4-bit multilingual-e5-small as the
offline fallback, used when no cross-encoder can be loaded.

Texts are encoded with the encoder's own query and passage prefixes (``query: `` / ``passage: `` for
E5, none for MiniLM), the way the model was trained to read them; the prefix's own token vectors are
then dropped, so only the text's tokens are matched.

For each query token, take its best cosine similarity with any passage token; the score is the mean
over query tokens, in [-1, 1]. Mean and sum rank a query's passages identically (the number of query
tokens is the same for all of them); the mean is kept because it reads the same for short and long
queries. Query and passage are encoded separately, so passage vectors are cached across calls.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from .. import estimates
from ..inference import PairScore, ProgressFn, RerankCancelled, StopFn, TextEncoder, rerank_turn
from ..models import LATE_INTERACTION_ID, LATE_INTERACTION_LABEL

DEFAULT_CACHE_SIZE = 4096
DEFAULT_BATCH_SIZE = 32  # passages encoded per batch (one progress report, one stop check)


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
    Passages not in the cache are encoded in batches of `batch_size`, in input order.
    """

    model_id = LATE_INTERACTION_ID
    label = LATE_INTERACTION_LABEL
    backend = "late-interaction"
    is_cross_encoder = False
    remote = False

    def __init__(self, encoder: TextEncoder, *, cache_size: int = DEFAULT_CACHE_SIZE,
                 batch_size: int = DEFAULT_BATCH_SIZE, model_id: str = LATE_INTERACTION_ID,
                 label: str = LATE_INTERACTION_LABEL) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size={cache_size} must be 0 or more")
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.encoder = encoder
        self.model_id, self.label = model_id, label
        if getattr(encoder, "backend", "torch") != "torch":
            # Another encoder backend gives other vectors (int8: other scores): the score cache keys and
            # the label must tell them apart.
            self.backend = f"late-interaction over {encoder.backend}"
            self.label = f"{label} · {encoder.label.rpartition(' · ')[2]}"
        self.cache_size = cache_size
        self.batch_size = batch_size
        self._cache: OrderedDict[str, _PassageVectors] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def __repr__(self) -> str:
        return f"LateInteractionReranker({self.encoder.model_id!r}, device={self.encoder.device!r})"

    @property
    def device(self) -> str:
        return self.encoder.device

    @property
    def max_length(self) -> int:
        """The encoder's window: query and passage are each read alone, each cut at it."""
        return self.encoder.max_length

    @property
    def dtype(self) -> str:
        return self.encoder.dtype

    @property
    def tokenizer(self):
        return self.encoder.tokenizer

    def passage_caching(self) -> LateInteractionReranker:
        """Itself: it encodes each passage once and keeps its vectors (see `Reranker`)."""
        return self

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int]:
        """Return, per passage, the longer of the query and the passage in tokens, each read alone with its
        prefix and special tokens (see `Reranker`)."""
        if not passages:
            return []
        spec, tokenizer = self.encoder.spec, self.encoder.tokenizer
        query_tokens = len(tokenizer(spec.query_prefix + query, verbose=False)["input_ids"])
        passage_ids = tokenizer([spec.passage_prefix + text for text in passages], verbose=False)["input_ids"]
        return [max(query_tokens, len(ids)) for ids in passage_ids]

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        """Return MaxSim scores (sigmoid None) for `passages` against `query`, in input order.

        `truncated` is True for passages longer than the encoder's window (512 tokens for e5, 256 for MiniLM).
        `progress(done, total)` is called after every encoded batch (passages found in the passage cache
        count as done with the first); `should_stop()` is polled before any work and before every further
        batch, and raises RerankCancelled with the scores finished so far. Raises ValueError for an empty query.
        """
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        if not passages:
            return []
        total = len(passages)
        with rerank_turn(should_stop, total=total):
            if should_stop is not None and should_stop():
                raise RerankCancelled(0, total)
            query_vectors = self._token_vectors([query], self.encoder.spec.query_prefix)[0]

            def scores(found: dict[str, _PassageVectors]) -> dict[int, PairScore]:
                return {i: PairScore(maxsim(query_vectors, found[text].vectors), None, found[text].truncated)
                        for i, text in enumerate(passages) if text in found}

            found = self._cached_vectors(passages)
            # In input order, so the passage cache keeps the top candidates longest; the encoder sorts each
            # batch by length.
            missing = list(dict.fromkeys(text for text in passages if text not in found))
            for start in range(0, len(missing), self.batch_size):
                if start and should_stop is not None and should_stop():  # polled before the first already
                    done = scores(found)
                    raise RerankCancelled(len(done), total, done)
                found.update(self._encode_and_cache(missing[start:start + self.batch_size]))
                if progress is not None:
                    progress(sum(text in found for text in passages), total)
            if not missing and progress is not None:
                progress(total, total)
            done = scores(found)
        return [done[i] for i in range(total)]

    def unencoded(self, passages: Sequence[str]) -> int:
        """How many distinct `passages` are not in the passage cache: what `score` would encode now (the
        cache's counts are left alone)."""
        with self._cache_lock:
            return sum(text not in self._cache for text in set(passages))

    def cache_info(self) -> CacheInfo:
        """Return the passage cache's hit and miss counts (one per passage looked up) and its size."""
        with self._cache_lock:
            return CacheInfo(self._hits, self._misses, len(self._cache), self.cache_size)

    def clear_cache(self) -> None:
        """Forget every cached passage and reset the counts."""
        with self._cache_lock:
            self._cache.clear()
            self._hits = self._misses = 0

    def _cached_vectors(self, passages: Sequence[str]) -> dict[str, _PassageVectors]:
        found: dict[str, _PassageVectors] = {}
        looked_up: set[str] = set()
        with self._cache_lock:
            for text in passages:
                if text in found:
                    self._hits += 1
                elif text in self._cache:
                    self._cache.move_to_end(text)
                    found[text] = self._cache[text]
                    self._hits += 1
                elif text in looked_up:
                    self._hits += 1  # encoded once for this call, like a cached one
                else:
                    looked_up.add(text)
                    self._misses += 1
        return found

    def _token_vectors(self, texts: Sequence[str], prefix: str) -> list[np.ndarray]:
        """Token vectors of `texts` read with `prefix` in front, the prefix's own vectors left out."""
        if not prefix:
            return self.encoder.token_embeddings(texts, batch_size=self.batch_size)
        # Counted without the prefix's closing space, which the text's first word takes ("query:" + "▁tea").
        skip = len(self.encoder.tokenizer(prefix.rstrip(), add_special_tokens=False, verbose=False)["input_ids"])
        vectors = self.encoder.token_embeddings([prefix + text for text in texts], batch_size=self.batch_size)
        return [np.ascontiguousarray(v[skip:]) for v in vectors]

    def _encode_and_cache(self, texts: Sequence[str]) -> dict[str, _PassageVectors]:
        prefix = self.encoder.spec.passage_prefix
        lengths = self.encoder.tokenizer([prefix + text for text in texts], verbose=False)["input_ids"]
        started = time.perf_counter()  # the encoding alone: what a build's passages cost too
        vectors = self._token_vectors(texts, prefix)
        # Its time follows its encoder's speed (`Reranker.passage_caching`): measured here as a build's is.
        estimates.record(self.encoder, len(texts), time.perf_counter() - started)
        fresh = {text: _PassageVectors(v, len(ids) > self.encoder.max_length)
                 for text, v, ids in zip(texts, vectors, lengths, strict=True)}
        with self._cache_lock:
            for text, item in fresh.items():
                self._cache[text] = item
                self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return fresh
