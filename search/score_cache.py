"""The score cache: every (query, passage) pair a reranker scored, kept in memory, so that running a query
again, changing k, judging and the evaluation's depth trade-off never score a pair twice; and the speed
each reranker was measured at, to say how long a rerank will take.

- `ScoreCache`: a thread-safe LRU map from pair keys to `PairScore`, bounded by entries and approximate
  bytes, with hit and miss counts (`stats()`).
- `CachedReranker`: wraps any `Reranker` and is one itself. Only the pairs not in the cache go to the
  backend; it measures the backend's throughput (`throughput()`, `expected_seconds(pairs)`) with a
  `ThroughputMeter`.

`search.loading.load_reranker` wraps every reranker it loads in a `CachedReranker` over `shared_cache()`,
so the app, the CLI and the evaluation share one cache. A pair's key is a 128-bit BLAKE2b digest of the
model id, backend, device, query and passage text, so entries stay small whatever the passage length.
"""

from __future__ import annotations

import hashlib
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

from .inference import (
    PairScore,
    PassageCachingReranker,
    ProgressFn,
    RerankCancelled,
    Reranker,
    StopFn,
    Throughput,
    rerank_turn,
)

DEFAULT_MAX_ENTRIES = 200_000
DEFAULT_MAX_BYTES = 128 * 2**20  # about 60 MB at DEFAULT_MAX_ENTRIES, so the entry bound is the one that binds
# What an entry costs besides its key and score: the OrderedDict's hash slot and linked-list node and the
# (score, size) tuple; measured with tracemalloc on CPython 3.11 (about 300 bytes per entry in all).
ENTRY_OVERHEAD_BYTES = 145
# Throughput: a batch's weight halves with every THROUGHPUT_HALF_LIFE_PAIRS pairs scored after it.
THROUGHPUT_HALF_LIFE_PAIRS = 64


@dataclass(frozen=True)
class CacheStats:
    """A snapshot of a `ScoreCache`: `hits` (pairs answered from the cache) and `misses` (pairs sent to a
    backend) since it was made or cleared, its size, its bounds and how many entries it evicted."""

    hits: int
    misses: int
    entries: int
    bytes: int
    evictions: int
    max_entries: int
    max_bytes: int

    @property
    def hit_rate(self) -> float | None:
        looked_up = self.hits + self.misses
        return self.hits / looked_up if looked_up else None


class ScoreCache:
    """A thread-safe LRU map from pair keys (see `pair_keys`) to `PairScore`.

    Least recently used entries are evicted once there are more than `max_entries` or their approximate
    size passes `max_bytes`; 0 for either keeps nothing. Raises ValueError for a negative bound.

    >>> cache = ScoreCache(max_entries=2)
    >>> cache.store({b"a": PairScore(1.0, None, False), b"b": PairScore(2.0, None, False)})
    >>> cache.lookup([b"a"])[0].raw, cache.stats().entries
    (1.0, 2)
    >>> cache.store({b"c": PairScore(3.0, None, False)})  # evicts b, the least recently used
    >>> [score is not None for score in cache.lookup([b"a", b"b", b"c"])]
    [True, False, True]
    """

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        for name, value in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if value < 0:
                raise ValueError(f"{name}={value} is negative; use 0 to keep nothing, or a positive bound")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[bytes, tuple[PairScore, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._bytes = self._hits = self._misses = self._evictions = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def lookup(self, keys: Iterable[bytes]) -> list[PairScore | None]:
        """Return the cached score of each key (None when absent), marking the found ones recently used.

        Counts nothing: the caller knows which lookups end in a scored pair (see `record`)."""
        found: list[PairScore | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None:
                    self._entries.move_to_end(key)
                found.append(entry[0] if entry is not None else None)
        return found

    def missing(self, keys: Iterable[bytes]) -> int:
        """How many distinct `keys` are not cached; neither counts nor changes the LRU order."""
        with self._lock:
            return sum(key not in self._entries for key in set(keys))

    def store(self, scores: Mapping[bytes, PairScore]) -> None:
        """Add (or refresh) `scores`, then evict the least recently used entries beyond the bounds."""
        with self._lock:
            for key, score in scores.items():
                old = self._entries.pop(key, None)
                if old is not None:
                    self._bytes -= old[1]
                size = _entry_bytes(key, score)
                self._entries[key] = (score, size)
                self._bytes += size
            while self._entries and (len(self._entries) > self.max_entries or self._bytes > self.max_bytes):
                _, (_, size) = self._entries.popitem(last=False)
                self._bytes -= size
                self._evictions += 1

    def record(self, *, hits: int, misses: int) -> None:
        """Count `hits` pairs answered from the cache and `misses` pairs sent to a backend."""
        with self._lock:
            self._hits += hits
            self._misses += misses

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self._hits, self._misses, len(self._entries), self._bytes, self._evictions,
                              self.max_entries, self.max_bytes)

    def clear(self) -> None:
        """Forget every entry and reset the counts."""
        with self._lock:
            self._entries.clear()
            self._bytes = self._hits = self._misses = self._evictions = 0


_shared: ScoreCache | None = None
_shared_lock = threading.Lock()


def shared_cache() -> ScoreCache:
    """The process-wide cache `search.loading.load_reranker` gives every reranker it loads."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ScoreCache()
        return _shared


def pair_keys(model_id: str, backend: str, device: str, query: str, passages: Sequence[str]) -> list[bytes]:
    """Return the cache key of each (query, passage) pair for this model, backend and device.

    >>> a, b = pair_keys("m", "torch", "cpu", "tea", ["green tea", "green tea"])
    >>> a == b, len(a), a == pair_keys("m", "torch", "cuda", "tea", ["green tea"])[0]
    (True, 16, False)
    """
    prefix = hashlib.blake2b(digest_size=16)
    for part in (model_id, backend, device, query):
        encoded = part.encode("utf-8", "surrogatepass")
        prefix.update(len(encoded).to_bytes(8, "little") + encoded)  # length-prefixed: no two splits collide
    keys = []
    for passage in passages:
        digest = prefix.copy()
        digest.update(passage.encode("utf-8", "surrogatepass"))
        keys.append(digest.digest())
    return keys


class CachedReranker:
    """`reranker` behind `cache`: a Reranker whose `score` sends only the pairs not cached to `reranker`.

    Every attribute of the `Reranker` interface (`model_id`, `label`, `backend`, `device`, `max_length`,
    `remote`, `dtype`, `tokenizer`, `pair_lengths`, ...) is the wrapped reranker's; `inner` is the wrapped
    reranker itself. Scores are cached per (model id, backend, device, query, passage), so
    a backend whose scores depend on anything else must say so in its `backend` string.

    It also measures the backend's speed in its `meter` (a `ThroughputMeter`): each batch the backend
    reports is timed from the previous report (or from the start of scoring), so cached pairs and the wait
    for RERANK_LOCK are not counted. See `throughput()` and `expected_seconds`. Thread-safe.

    `switch_to(reranker)` replaces the wrapped reranker (a model's torch form standing in while its
    accelerated form is prepared, `search.preparation`): a `score` call runs on one form from start to end,
    and its pairs are cached under that form's backend, so keys always follow the form that scored.
    """

    def __init__(self, reranker: Reranker, cache: ScoreCache | None = None) -> None:
        self.inner = reranker
        self.cache = shared_cache() if cache is None else cache
        self.meter = ThroughputMeter()

    def __repr__(self) -> str:
        return f"CachedReranker({self.inner!r})"

    @property
    def model_id(self) -> str:
        return self.inner.model_id

    @property
    def label(self) -> str:
        return self.inner.label

    @property
    def backend(self) -> str:
        return self.inner.backend

    @property
    def device(self) -> str:
        return self.inner.device

    @property
    def is_cross_encoder(self) -> bool:
        return self.inner.is_cross_encoder

    @property
    def max_length(self) -> int:
        return self.inner.max_length

    @property
    def remote(self) -> bool:
        return self.inner.remote

    @property
    def dtype(self) -> str:
        return self.inner.dtype

    @property
    def tokenizer(self):
        return self.inner.tokenizer

    def passage_caching(self) -> PassageCachingReranker | None:
        """The wrapped reranker's `passage_caching` (late interaction: itself)."""
        return self.inner.passage_caching()

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int] | None:
        """The wrapped reranker's `pair_lengths` (tokens per pair before truncation; None when remote)."""
        return self.inner.pair_lengths(query, passages)

    def switch_to(self, reranker: Reranker) -> None:
        """Score with `reranker` from the next `score` call on (one in progress finishes on the previous
        form); its speed is measured anew."""
        self.meter = ThroughputMeter()
        self.inner = reranker

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        """Return one PairScore per passage, in input order, scoring only the pairs not in the cache.

        `progress(done, total)` is called once at the start with the pairs found in the cache (all of them:
        ``(total, total)``, and nothing is scored), then after every batch the backend scores. A pair
        repeated in `passages` is scored once. `should_stop()` is polled while waiting for RERANK_LOCK and
        before every batch; it raises RerankCancelled whose `partial` holds the cached and the finished
        scores (these stay cached, so the next run resumes). Raises ValueError for an empty query.
        """
        if not passages:
            return []
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        total = len(passages)
        inner = self.inner  # one form for the whole call, even if `switch_to` replaces it meanwhile
        keys = pair_keys(inner.model_id, inner.backend, inner.device, query, passages)
        found = self._found(keys)
        from_cache = sum(key in found for key in keys)
        reported = 0  # the last `done` reported

        def report(done: int) -> None:
            nonlocal reported
            reported = done
            if progress is not None:
                progress(done, total)

        report(from_cache)
        if from_cache == total:
            self.cache.record(hits=total, misses=0)
            return [found[key] for key in keys]
        missing: dict[bytes, str] = {}
        # A remote backend computes elsewhere: it needs no turn on this machine's CPU (see search.inference).
        turn = nullcontext() if inner.remote else rerank_turn(should_stop, total=total)
        try:
            with turn:
                # Another rerank may have scored some of these pairs while this one waited for its turn.
                found.update(self._found([key for key in keys if key not in found]))
                from_cache = sum(key in found for key in keys)
                missing = {key: text for key, text in zip(keys, passages, strict=True) if key not in found}
                try:
                    if missing:
                        self._score_missing(inner, query, missing, found, from_cache, report, should_stop)
                finally:
                    self.cache.record(hits=total - len(missing), misses=len(missing))
        except RerankCancelled:
            partial = {position: found[key] for position, key in enumerate(keys) if key in found}
            raise RerankCancelled(len(partial), total, partial) from None
        if reported < total:
            report(total)  # found meanwhile by another rerank, or repeated passages, scored once
        return [found[key] for key in keys]

    def _found(self, keys: Sequence[bytes]) -> dict[bytes, PairScore]:
        return {key: score for key, score in zip(keys, self.cache.lookup(keys), strict=True) if score is not None}

    def _score_missing(self, inner: Reranker, query: str, missing: Mapping[bytes, str], found: dict[bytes, PairScore],
                       from_cache: int, report: Callable[[int], None], should_stop: StopFn | None) -> None:
        """Score `missing` (key -> passage), caching and adding to `found` what was scored, also when
        cancelled."""
        keys, texts = list(missing), list(missing.values())
        last_time, last_done = time.perf_counter(), 0
        meter = self.meter

        def on_batch(done: int, _total: int) -> None:
            nonlocal last_time, last_done
            now = time.perf_counter()
            meter.record(done - last_done, now - last_time)
            last_time, last_done = now, done
            report(from_cache + done)

        try:
            scores = inner.score(query, texts, progress=on_batch, should_stop=should_stop)
        except RerankCancelled as cancelled:
            fresh = {keys[i]: score for i, score in cancelled.partial.items()}
            self.cache.store(fresh)
            found.update(fresh)
            raise
        if last_done < len(texts):  # a backend that reports no (or not all) progress: time what is left
            meter.record(len(texts) - last_done, time.perf_counter() - last_time)
        fresh = dict(zip(keys, scores, strict=True))
        self.cache.store(fresh)
        found.update(fresh)

    # -- speed --------------------------------------------------------------------------------------

    def throughput(self) -> Throughput:
        """The backend's measured speed on this machine (see `ThroughputMeter`)."""
        return self.meter.snapshot()

    def expected_seconds(self, pairs: int) -> float | None:
        """Seconds scoring `pairs` uncached pairs should take here; None before anything was measured.

        For a rerank in progress, ``expected_seconds(total - done)`` is the time left (cached pairs are
        reported done at once)."""
        return self.throughput().expected_seconds(pairs)

    def uncached(self, query: str, passages: Sequence[str]) -> int:
        """How many distinct pairs of `passages` a `score` call would send to the backend now."""
        return self.cache.missing(pair_keys(self.model_id, self.backend, self.device, query, passages))


def measured(reranker: Reranker) -> CachedReranker:
    """`reranker` as a `MeasuredReranker`: itself when it is one already, else wrapped in a `CachedReranker`
    over the shared cache (its speed is measured from its first batch on)."""
    return reranker if isinstance(reranker, CachedReranker) else CachedReranker(reranker, shared_cache())


class ThroughputMeter:
    """Seconds per pair, exponentially weighted over scored batches: a batch's weight halves with every
    THROUGHPUT_HALF_LIFE_PAIRS pairs recorded after it. The very first batch pays one-off costs (memory,
    kernel choice), so it only stands until the second one replaces it. Thread-safe.

    >>> meter = ThroughputMeter()
    >>> meter.record(1, 3.0); meter.record(16, 1.6)  # a slow warm-up, then 0.1 s per pair
    >>> meter.snapshot()
    Throughput(seconds_per_pair=0.1, pairs=17, batches=2)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds_per_pair: float | None = None
        self._pairs = self._batches = 0

    def record(self, pairs: int, seconds: float) -> None:
        """Count one batch of `pairs` pairs scored in `seconds` (ignored when either is not positive)."""
        if pairs <= 0 or seconds <= 0:
            return
        sample = seconds / pairs
        with self._lock:
            if self._batches <= 1 or self._seconds_per_pair is None:
                self._seconds_per_pair = sample
            else:
                weight = 1.0 - 0.5 ** (pairs / THROUGHPUT_HALF_LIFE_PAIRS)
                self._seconds_per_pair += weight * (sample - self._seconds_per_pair)
            self._pairs += pairs
            self._batches += 1

    def snapshot(self) -> Throughput:
        with self._lock:
            return Throughput(self._seconds_per_pair, self._pairs, self._batches)


def _entry_bytes(key: bytes, score: PairScore) -> int:
    value = sys.getsizeof(score) + sys.getsizeof(score.raw)
    if score.sigmoid is not None:
        value += sys.getsizeof(score.sigmoid)
    return sys.getsizeof(key) + value + ENTRY_OVERHEAD_BYTES
