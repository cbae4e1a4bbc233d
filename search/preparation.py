"""Preparing the accelerated forms of models in the background, while their torch form stands in.

A model's onnx and int8 forms are made once per machine (an ONNX export; an NNCF quantization: seconds for
a small model, minutes for bge-reranker-v2-m3) and kept in the export cache (`backends.runtime.onnx_export`).
The app's first visitor should not wait for that. When the loader (`search.loading`, ``prepare="background"``:
the app's warm-up) is asked for a form that is not in the cache yet, it

- hands out the model's torch form at once, as a stand-in whose label says so
  (``BAAI/bge-reranker-v2-m3 · torch meanwhile (onnx being prepared)``), and
- submits the form's preparation to the process's `Preparer`: one background thread that makes one form at
  a time (an export of a large model peaks at several GB), in the order asked.

When a form is ready, the loader makes it the one used: a reranker's `CachedReranker` switches to it from
its next query on; the next loads of an encoder get it (an index embedded on the stand-in keeps the
stand-in, so its queries match its vectors). Every preparation is a `Preparation` record (state, step,
expected and elapsed seconds) that the warm-up's status line shows.

- `Preparation`, `Preparer`, `preparer()`: the records, the background worker, the process's worker.
- `StandInReranker`, `StandInEncoder`: a torch form labelled as standing in for a form being prepared.
- `stand_in_note(preparation)`: what a stand-in's label adds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from .backends.runtime.onnx_export import observing
from .inference import PairScore, PassageCachingReranker, ProgressFn, Reranker, StopFn, TextEncoder
from .models import error_summary

logger = logging.getLogger(__name__)

Kind = Literal["reranker", "encoder"]
PreparationState = Literal["waiting", "preparing", "ready", "failed"]
Key = tuple[str, str, str, str]  # (kind, model id, backend, device)


@dataclass(frozen=True)
class Preparation:
    """Where the preparation of `model_id`'s `backend` form (``"onnx"``, ``"int8"``) on `device` is.

    `step` is what it does now ("exporting", "fusing", "quantising"); `expected_seconds` what all of it
    should take here, from `basis` (`backends.runtime.costs`: "measured here" or "this project's
    measurements"; None while unknown, or when it only had to open a cached form); `elapsed_seconds` how
    long it has run (its whole duration once finished); `error` why it failed.

    >>> Preparation("reranker", "m", "int8", "cpu", "preparing", expected_seconds=300.0,
    ...             elapsed_seconds=60.0).seconds_left
    240.0
    """

    kind: Kind
    model_id: str
    backend: str
    device: str
    state: PreparationState = "waiting"
    step: str = ""
    expected_seconds: float | None = None
    basis: str = ""
    elapsed_seconds: float = 0.0
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("ready", "failed")

    @property
    def key(self) -> Key:
        return (self.kind, self.model_id, self.backend, self.device)

    @property
    def seconds_left(self) -> float | None:
        """Expected seconds minus elapsed ones (negative: it takes longer than expected); None when unknown."""
        if self.expected_seconds is None or self.finished:
            return None
        return self.expected_seconds - self.elapsed_seconds


def stand_in_note(preparation: Preparation | None) -> str:
    """What a stand-in's label adds to its torch form's label.

    >>> stand_in_note(Preparation("reranker", "m", "int8", "cpu", "preparing"))
    'torch meanwhile (int8 being prepared)'
    >>> stand_in_note(Preparation("encoder", "m", "onnx", "cpu", "ready"))
    'torch (onnx ready for the next build)'
    """
    if preparation is None:
        return "torch"
    form = preparation.backend
    if preparation.state == "failed":
        return f"torch ({form} could not be prepared: {preparation.error})"
    if preparation.state == "ready":
        return f"torch ({form} ready for the next build)"
    return f"torch meanwhile ({form} being prepared)"


class _Job:
    """One preparation: what it makes and what is done with it; its record changes under the Preparer's lock."""

    def __init__(self, record: Preparation, build: Callable[[], Any], on_ready: Callable[[Any], None],
                 on_failed: Callable[[BaseException], None] | None) -> None:
        self.record = record
        self.build = build
        self.on_ready = on_ready
        self.on_failed = on_failed
        self.started: float | None = None
        self.finished = threading.Event()


class Preparer:
    """Runs preparations one at a time, in the order submitted, in one background daemon thread (started
    with the first). Thread-safe; `status` and `preparations` may be read at any time.

    `held()` keeps new preparations from starting until the block ends (one already running goes on): for
    an operator who wants the first build to have the CPU, and for tests that look at the stand-in."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._jobs: dict[Key, _Job] = {}
        self._queue: deque[_Job] = deque()
        self._holds = 0
        self._thread: threading.Thread | None = None

    def submit(self, kind: Kind, model_id: str, backend: str, device: str, build: Callable[[], Any],
               on_ready: Callable[[Any], None], on_failed: Callable[[BaseException], None] | None = None) -> Key:
        """Queue `build()` (which makes and returns the form); `on_ready(form)` runs in the worker once it is
        made, `on_failed(error)` when `build` raised. A key already queued, running or made is not queued
        again (one that failed is). Returns the preparation's key."""
        record = Preparation(kind, model_id, backend, device)
        with self._lock:
            existing = self._jobs.get(record.key)
            if existing is not None and existing.record.state != "failed":
                return record.key
            job = _Job(record, build, on_ready, on_failed)
            self._jobs[record.key] = job
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="model-preparation", daemon=True)
                self._thread.start()
            self._lock.notify_all()
        logger.info("preparing the %s form of %s (%s) in the background", backend, model_id, kind)
        return record.key

    def status(self, key: Key) -> Preparation | None:
        """The record of the preparation `key` (None: never submitted), its elapsed seconds as of now."""
        with self._lock:
            job = self._jobs.get(key)
            return None if job is None else self._snapshot(job)

    def preparations(self) -> tuple[Preparation, ...]:
        """Every preparation submitted in this process, in the order submitted."""
        with self._lock:
            return tuple(self._snapshot(job) for job in self._jobs.values())

    def find(self, kind: Kind, model_id: str) -> Preparation | None:
        """The latest preparation of `model_id` as a `kind` (any backend or device), or None."""
        found = [item for item in self.preparations() if item.kind == kind and item.model_id == model_id]
        return found[-1] if found else None

    def wait(self, keys: Sequence[Key] | None = None, timeout: float | None = None) -> bool:
        """Wait until the preparations `keys` (default: all submitted so far) have finished; False when
        `timeout` passed first."""
        with self._lock:
            jobs = [self._jobs[key] for key in keys if key in self._jobs] if keys is not None else \
                list(self._jobs.values())
        deadline = None if timeout is None else time.monotonic() + timeout
        for job in jobs:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not job.finished.wait(left):
                return False
        return True

    @contextmanager
    def held(self) -> Iterator[None]:
        """No preparation starts within the block (one already running finishes)."""
        with self._lock:
            self._holds += 1
        try:
            yield
        finally:
            with self._lock:
                self._holds -= 1
                self._lock.notify_all()

    def _snapshot(self, job: _Job) -> Preparation:
        if job.started is None or job.record.finished:
            return job.record
        return replace(job.record, elapsed_seconds=time.monotonic() - job.started)

    def _update(self, job: _Job, **changes: Any) -> None:
        with self._lock:
            job.record = replace(job.record, **changes)

    def _work(self) -> None:
        while True:
            with self._lock:
                while not self._queue or self._holds:
                    self._lock.wait()
                job = self._queue.popleft()
                job.started = time.monotonic()
                job.record = replace(job.record, state="preparing")
            self._run(job)

    def _run(self, job: _Job) -> None:
        preparer = self

        class Observer:
            def planned(self, seconds: float | None, basis: str) -> None:
                elapsed = time.monotonic() - (job.started or time.monotonic())
                preparer._update(job, expected_seconds=None if seconds is None else elapsed + seconds, basis=basis)

            def step(self, name: str) -> None:
                preparer._update(job, step=name)

        record = job.record
        try:
            with observing(Observer()):
                form = job.build()
            job.on_ready(form)
        except Exception as error:  # noqa: BLE001 - a failed preparation leaves the stand-in working
            logger.warning("the %s form of %s could not be prepared: %s", record.backend, record.model_id,
                           error_summary(error))
            self._update(job, state="failed", error=error_summary(error),
                         elapsed_seconds=time.monotonic() - (job.started or time.monotonic()))
            if job.on_failed is not None:
                job.on_failed(error)
        else:
            seconds = time.monotonic() - (job.started or time.monotonic())
            self._update(job, state="ready", step="", elapsed_seconds=seconds)
            logger.info("the %s form of %s is ready (%.1f s)", record.backend, record.model_id, seconds)
        finally:
            job.finished.set()


_preparer = Preparer()


def preparer() -> Preparer:
    """The process's preparer (one background thread for every preparation of the process)."""
    return _preparer


# -- stand-ins ----------------------------------------------------------------------------------------------

class _StandIn:
    """What both stand-ins share: the torch form, its label with `stand_in_note`, and every other attribute
    read from the torch form."""

    def __init__(self, torch_form: Any, preparation: Callable[[], Preparation | None]) -> None:
        self.torch_form = torch_form
        self._preparation = preparation

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.torch_form!r})"

    @property
    def label(self) -> str:
        return f"{self.torch_form.label} · {stand_in_note(self._preparation())}"

    def __getattr__(self, name: str) -> Any:  # model_id, backend, device, max_length, tokenizer, ...
        if name.startswith("__") or name == "torch_form":
            raise AttributeError(name)
        return getattr(self.torch_form, name)


class StandInReranker(_StandIn):
    """`torch_form` scoring while another form of the model is prepared: every attribute is the torch
    form's (its backend is "torch", so scores are cached as torch's), its label adds `stand_in_note`."""

    def __init__(self, torch_form: Reranker, preparation: Callable[[], Preparation | None]) -> None:
        super().__init__(torch_form, preparation)

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        """The torch form's scores (see `Reranker.score`)."""
        return self.torch_form.score(query, passages, progress=progress, should_stop=should_stop)

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int] | None:
        return self.torch_form.pair_lengths(query, passages)

    def passage_caching(self) -> PassageCachingReranker | None:
        return self.torch_form.passage_caching()


class StandInEncoder(_StandIn):
    """`torch_form` embedding while another form of the model is prepared: every attribute is the torch
    form's (its backend is "torch": its speed meter and index keys are torch's), its label adds
    `stand_in_note`."""

    def __init__(self, torch_form: TextEncoder, preparation: Callable[[], Preparation | None]) -> None:
        super().__init__(torch_form, preparation)

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """The torch form's embeddings (see `TextEncoder.embed`)."""
        return self.torch_form.embed(texts, is_query=is_query, batch_size=batch_size, progress=progress)

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        return self.torch_form.token_embeddings(texts, batch_size=batch_size)
