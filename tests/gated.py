"""A real reranker whose scoring pauses after every batch until the test lets it go on, so a test can look
at a rerank in the middle (its progress, a new search arriving) without timing anything."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from search.inference import PairScore, PassageCachingReranker, ProgressFn, Reranker, StopFn

PAUSE_LIMIT_S = 120.0  # a forgotten release never hangs a test for longer


class GatedReranker:
    """Wraps `inner` (any Reranker, as a `CachedReranker.inner`): after each batch `inner` reports,
    `paused_at` is set to the pairs done and scoring waits for `release()` (or `open()`, for good)."""

    def __init__(self, inner: Reranker) -> None:
        self.inner = inner
        self.paused_at: int | None = None
        self.pauses = 0
        self._go_on = threading.Semaphore(0)
        self._paused = threading.Condition()
        self._open = False

    model_id = property(lambda self: self.inner.model_id)
    label = property(lambda self: self.inner.label)
    backend = property(lambda self: self.inner.backend)
    device = property(lambda self: self.inner.device)
    is_cross_encoder = property(lambda self: self.inner.is_cross_encoder)
    max_length = property(lambda self: self.inner.max_length)
    remote = property(lambda self: self.inner.remote)
    dtype = property(lambda self: self.inner.dtype)
    tokenizer = property(lambda self: self.inner.tokenizer)

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int] | None:
        return self.inner.pair_lengths(query, passages)

    def passage_caching(self) -> PassageCachingReranker | None:
        return self.inner.passage_caching()

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        def pause(done: int, total: int) -> None:
            if self._open:
                if progress is not None:
                    progress(done, total)
                return
            with self._paused:
                self.paused_at = done  # before the report, so whoever sees the report sees the pause
                self.pauses += 1
                self._paused.notify_all()
            if progress is not None:
                progress(done, total)
            self._go_on.acquire(timeout=PAUSE_LIMIT_S)
            with self._paused:
                self.paused_at = None

        return self.inner.score(query, passages, progress=pause, should_stop=should_stop)

    def wait_for_pause(self, pauses: int = 1, timeout: float = PAUSE_LIMIT_S) -> int:
        """Wait until scoring has paused `pauses` times in all; returns the pairs done at the current pause."""
        with self._paused:
            if not self._paused.wait_for(lambda: self.pauses >= pauses and self.paused_at is not None, timeout):
                raise AssertionError(f"the rerank did not pause {pauses} time(s) within {timeout:.0f} s")
            return self.paused_at  # type: ignore[return-value]

    def release(self) -> None:
        """Let the paused batch go on (the next one pauses again)."""
        self._go_on.release()

    def open(self) -> None:
        """Stop pausing, and let a paused batch go on."""
        self._open = True
        self._go_on.release()
