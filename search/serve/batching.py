"""Embed requests batched as TEI's queue batches them: one forward pass at a time over the encoder, of
every text waiting (up to `MAX_BATCH_TOKENS`), instead of one pass per request."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..inference import TextEncoder
from .metrics import Metrics
from .timing import Timing
from .tokens import ReadyText

MAX_BATCH_TOKENS = 16_384  # TEI's default --max-batch-tokens: the most one embedding pass takes


@dataclass
class _EmbedJob:
    texts: list[str]
    tokens: int
    queued: float
    vectors: np.ndarray | None = None
    error: BaseException | None = None
    started: float = 0.0
    finished: float = 0.0


class EmbedBatcher:
    """One forward pass at a time over the encoder, of every request waiting (up to MAX_BATCH_TOKENS), as
    TEI's queue batches them: on a few cores, concurrent passes only share the CPU (and starve the event loop
    that answers /health), while one pass over the waiting texts keeps the model busy. The thread that finds
    the model free runs the waiting jobs, its own among them; the others wait for their vectors."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._ready = threading.Condition()
        self._waiting: list[_EmbedJob] = []
        self._running = False

    def embed(self, encoder: TextEncoder, texts: Sequence[ReadyText], timing: Timing) -> np.ndarray:
        """`encoder`'s vectors of `texts`; fills `timing`'s queue and inference seconds."""
        job = _EmbedJob([text.text for text in texts], sum(text.tokens for text in texts), time.perf_counter())
        with self._ready:
            self._waiting.append(job)
            self._metrics.add("te_queue_size", 1)
        while True:
            with self._ready:
                while self._running and not job.finished:
                    self._ready.wait()
                if job.finished:
                    break
                self._running = True
                batch = self._take()
            self._run(encoder, batch)
        timing.queue_s = job.started - job.queued
        timing.inference_s = job.finished - job.started
        if job.error is not None:
            raise job.error
        assert job.vectors is not None
        return job.vectors

    def _take(self) -> list[_EmbedJob]:
        batch, tokens = [], 0
        while self._waiting and (not batch or tokens + self._waiting[0].tokens <= MAX_BATCH_TOKENS):
            tokens += self._waiting[0].tokens
            batch.append(self._waiting.pop(0))
        self._metrics.add("te_queue_size", -len(batch))
        return batch

    def _run(self, encoder: TextEncoder, batch: list[_EmbedJob]) -> None:
        started = time.perf_counter()
        texts = [text for job in batch for text in job.texts]
        self._metrics.observe("te_batch_next_size", len(texts))
        try:
            vectors = encoder.embed(texts, is_query=False)
            error = None
        except Exception as failure:  # noqa: BLE001 - handed to every request of the batch
            vectors, error = None, failure
        finished = time.perf_counter()
        with self._ready:
            start = 0
            for job in batch:
                job.started, job.finished, job.error = started, max(finished, started + 1e-9), error
                if vectors is not None:
                    job.vectors = vectors[start:start + len(job.texts)]
                start += len(job.texts)
            self._running = False
            self._ready.notify_all()
