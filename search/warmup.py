"""Warming the default models in the background, so the first build and the first query don't stall silently.

- `Warmup`: loads a dense model and a reranker in a background thread with `search.loading`'s loaders
  (so they land in the loaders' caches, for the chosen backend), downloading a Hub model first when it
  is not in the HF cache (bytes counted as huggingface_hub writes them). A form the backend needs that is
  not made yet on this machine (onnx, int8; ``auto`` included) is prepared in the background while the
  model's torch form stands in (`search.preparation`); each `ModelLoad` carries its `Preparation`. Once the
  dense model is loaded, its speed is measured on a few passages (`search.estimates`), so the first build's
  estimate comes from this machine at once. `status()` is a `WarmupStatus` snapshot; `wait(role)` waits
  for one model or both to be usable.
- `download_with_progress`: a Hub model's config, tokenizer and safetensors files into the HF cache,
  reporting ``progress(bytes_done, bytes_total)``.
- `start_warmup` / `current_warmup`: the process-wide warm-up, started once.

Offline (the Hub unreachable) nothing is downloaded: the loaders load what is cached or fall back to
the bundled model, as they do for a build. A failed download or load never raises out of the thread;
its status says what failed, and a build that needs the model then tries (and explains) by itself.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, NamedTuple

from . import estimates
from .backends.runtime.openvino_int8 import calibration_pairs
from .inference import ProgressFn, TextEncoder
from .loading import AUTO_BACKEND, load_dense_encoder, load_reranker
from .models import (
    FALLBACK_DENSE_ID,
    LATE_INTERACTION_IDS,
    MINILM_ID,
    choose_reranker,
    error_summary,
    hub_reachable,
)
from .preparation import Preparation, preparer

logger = logging.getLogger(__name__)

Role = Literal["dense", "reranker"]
ROLES: tuple[Role, ...] = ("dense", "reranker")
ModelState = Literal["waiting", "downloading", "loading", "measuring", "ready", "failed"]
FINISHED_STATES = frozenset({"ready", "failed"})
# What `from_pretrained` reads: config and tokenizer files and safetensors weights, at the top of the
# repository (never pickles, ONNX exports or other frameworks' copies in subfolders).
DOWNLOAD_PATTERNS = ("*.json", "*.safetensors", "*.model", "*.txt")


@dataclass(frozen=True)
class ModelLoad:
    """Where one model of a warm-up is: `requested` is the setting (``auto`` included) and `model_id`
    what is loaded for it; while `state` is "downloading", `bytes_done` of `bytes_total` are in the HF
    cache; "measuring": the dense model's speed is measured on a few passages. Once "ready", `label` names
    the loaded model and `fallback_reason` says why it is a fallback; once "failed", `error` says why.
    `preparation` is the background preparation of the form the backend asked for, when it was not made
    yet (meanwhile the torch form stands in), else None."""

    role: Role
    requested: str
    model_id: str
    state: ModelState = "waiting"
    bytes_done: int = 0
    bytes_total: int = 0
    label: str | None = None
    fallback_reason: str | None = None
    error: str | None = None
    preparation: Preparation | None = None

    @property
    def finished(self) -> bool:
        """Loaded (maybe as a stand-in) or failed: a build can go on."""
        return self.state in FINISHED_STATES

    @property
    def preparing(self) -> bool:
        """Its accelerated form is still being prepared (or waits its turn)."""
        return self.preparation is not None and not self.preparation.finished


@dataclass(frozen=True)
class WarmupStatus:
    """A snapshot of a warm-up: one `ModelLoad` per role, dense first.

    >>> WarmupStatus((ModelLoad("dense", "m", "m", "ready"), ModelLoad("reranker", "r", "r"))).done
    False
    """

    models: tuple[ModelLoad, ...]

    @property
    def done(self) -> bool:
        """Every model loaded (or failed) and every preparation finished."""
        return all(model.finished and not model.preparing for model in self.models)

    @property
    def loaded(self) -> bool:
        """Every model loaded or failed (preparations may go on: the torch forms stand in)."""
        return all(model.finished for model in self.models)

    def model(self, role: Role) -> ModelLoad:
        return next(model for model in self.models if model.role == role)


class DownloadPlan(NamedTuple):
    """The files of a Hub model still to download (name, size in bytes) at `revision`."""

    revision: str
    files: tuple[tuple[str, int], ...]

    @property
    def bytes_total(self) -> int:
        return sum(size for _, size in self.files)


def warmup_reranker_id(requested: str) -> str:
    """The reranker to warm for a setting: ``auto`` warms the one `choose_reranker` picks before the corpus is
    known (bge-reranker-v2-m3); any other setting is itself.

    >>> warmup_reranker_id("auto"), warmup_reranker_id("late-interaction")
    ('BAAI/bge-reranker-v2-m3', 'late-interaction')
    """
    return choose_reranker(requested)


class Warmup:
    """Load `dense_model` and `reranker_model` (``auto``: see `warmup_reranker_id`) on `device` with
    `backend`, in a background thread started by `start()`; downloads come first and are counted.

    Thread-safe. `status()` may be read at any time; `wait()` blocks until the models are loaded (or
    failed). Nothing starts before `start()`.
    """

    def __init__(self, dense_model: str, reranker_model: str, *, device: str = "auto",
                 backend: str = AUTO_BACKEND,
                 download: Callable[[str, ProgressFn], object] | None = None) -> None:
        self.device = device
        self.backend = backend
        self._download = download or download_if_missing
        self._models: dict[Role, ModelLoad] = {
            "dense": ModelLoad("dense", dense_model, dense_model.strip()),
            "reranker": ModelLoad("reranker", reranker_model, warmup_reranker_id(reranker_model)),
        }
        self._finished: dict[Role, threading.Event] = {role: threading.Event() for role in ROLES}
        self._loaded_ids: dict[Role, str] = {}  # the id of what was loaded (a fallback's), for its preparation
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        models = ", ".join(f"{model.role}={model.model_id!r}:{model.state}" for model in self.status().models)
        return f"Warmup({models})"

    def start(self) -> Warmup:
        """Start the background thread (once; later calls do nothing) and return self."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self.run, name="model-warmup", daemon=True)
                self._thread.start()
        return self

    def run(self) -> None:
        """Download (if needed) and load each model in turn, the dense one first (a build needs it first);
        then, once the dense model's own form is prepared in the background, measure its speed too."""
        for role in ROLES:
            try:
                self._warm(role)
            except Exception as error:  # noqa: BLE001 - a warm-up never takes the process down
                logger.exception("warming the %s model failed", role)
                self._set(role, state="failed", error=error_summary(error))
            finally:
                self._finished[role].set()
        self._measure_prepared_encoder()

    def status(self) -> WarmupStatus:
        with self._lock:
            models = [self._models[role] for role in ROLES]
            loaded_ids = dict(self._loaded_ids)
        return WarmupStatus(tuple(replace(model, preparation=self._preparation(model.role, loaded_ids))
                                  for model in models))

    def _preparation(self, role: Role, loaded_ids: dict[Role, str]) -> Preparation | None:
        loaded_id = loaded_ids.get(role)
        return None if loaded_id is None else preparer().find("encoder" if role == "dense" else "reranker",
                                                              loaded_id)

    def wait(self, role: Role | None = None, timeout: float | None = None) -> bool:
        """Wait until `role`'s model (both, for None) is loaded or failed; False when `timeout` passed first."""
        roles = ROLES if role is None else (role,)
        for name in roles:
            if not self._finished[name].wait(timeout):
                return False
        return True

    def serves(self, role: Role, requested: str) -> bool:
        """Whether this warm-up loads the model a build asking for `requested` (a setting) would load."""
        model = self.status().model(role)
        return requested.strip() in {model.requested.strip(), model.model_id}

    def _warm(self, role: Role) -> None:
        model_id = self._models[role].model_id

        def progress(done: int, total: int) -> None:
            self._set(role, state="downloading", bytes_done=done, bytes_total=total)

        try:
            self._download(model_id, progress)
        except Exception as error:  # noqa: BLE001 - the loader below says what is wrong, or falls back
            logger.warning("could not download %s before loading it: %s", model_id, error_summary(error))
        self._set(role, state="loading")
        if role == "dense":
            loaded = load_dense_encoder(model_id, self.device, backend=self.backend, prepare="background")
            with self._lock:
                self._loaded_ids[role] = loaded.model.model_id
            self._set(role, state="measuring")
            self._measure(loaded.model)
        else:
            loaded = load_reranker(model_id, self.device, backend=self.backend, prepare="background")
            with self._lock:
                self._loaded_ids[role] = loaded.model.model_id
        self._set(role, state="ready", label=loaded.model.label, fallback_reason=loaded.fallback_reason)
        logger.info("warm-up: %s model %s ready (%s)", role, model_id, loaded.model.label)

    def _measure(self, encoder: TextEncoder) -> None:
        """Measure `encoder`'s speed on a few passages, unless something measured it already."""
        passages = list(dict.fromkeys(passage for _, passage in calibration_pairs()))
        try:
            speed = estimates.ensure_measured(encoder, passages)
        except (ValueError, OSError) as error:  # e.g. a remote encoder that does not answer: builds will say
            logger.warning("warm-up: could not measure %s: %s", encoder.label, error_summary(error))
            return
        if speed.pairs_per_second:
            logger.info("warm-up: %s embeds %.1f passages/s here", encoder.label, speed.pairs_per_second)

    def _measure_prepared_encoder(self) -> None:
        """Once the dense model's prepared form is ready, measure it too (the next build runs it): after the
        warm-up's preparations are all done, so that none slows the measurement."""
        preparations = [model.preparation for model in self.status().models if model.preparation is not None]
        preparation = self.status().model("dense").preparation
        if preparation is None or not preparer().wait([item.key for item in preparations]):
            return
        if preparer().status(preparation.key).state != "ready":  # type: ignore[union-attr]
            return
        dense = self.status().model("dense")
        try:
            loaded = load_dense_encoder(dense.model_id, self.device, backend=self.backend)
        except (OSError, ValueError, ImportError) as error:
            logger.warning("warm-up: could not load %s after its preparation: %s", dense.model_id,
                           error_summary(error))
            return
        self._measure(loaded.model)

    def _set(self, role: Role, **changes: object) -> None:
        with self._lock:
            self._models[role] = replace(self._models[role], **changes)  # type: ignore[arg-type]


_current: Warmup | None = None
_current_lock = threading.Lock()


def start_warmup(dense_model: str, reranker_model: str, *, device: str = "auto",
                 backend: str = AUTO_BACKEND) -> Warmup:
    """Start the process-wide warm-up on its first call and return it; later calls return the same one
    (whatever they ask for), so a process warms its defaults once."""
    global _current
    with _current_lock:
        if _current is None:
            _current = Warmup(dense_model, reranker_model, device=device, backend=backend).start()
        return _current


def current_warmup() -> Warmup | None:
    """The process-wide warm-up, or None before `start_warmup`."""
    with _current_lock:
        return _current


# -- downloads ----------------------------------------------------------------------------------------

def needs_hub(model_id: str) -> bool:
    """Whether `model_id` names a Hub model (not a local folder, the bundled model or the fallback reranker).

    >>> needs_hub("intfloat/multilingual-e5-small"), needs_hub("late-interaction")
    (True, False)
    """
    model_id = model_id.strip()
    if model_id in {*LATE_INTERACTION_IDS, FALLBACK_DENSE_ID, MINILM_ID} or model_id.startswith((".", "/", "~")):
        return False
    return model_id.count("/") <= 1 and not Path(model_id).is_dir()


def download_if_missing(model_id: str, progress: ProgressFn) -> int:
    """Download `model_id`'s files that are not in the HF cache yet, when it is a Hub id and the Hub
    answers; returns the bytes downloaded (0 when there was nothing to do)."""
    if not needs_hub(model_id) or not hub_reachable():
        return 0
    return download_with_progress(model_id, progress)


def plan_download(model_id: str, *, endpoint: str | None = None, cache_dir: str | Path | None = None,
                  patterns: Sequence[str] = DOWNLOAD_PATTERNS) -> DownloadPlan:
    """The files of `model_id` matching `patterns` at the top of the repository that are not cached.

    Raises what huggingface_hub raises for an unknown repository or an unreachable Hub."""
    from huggingface_hub import HfApi, try_to_load_from_cache

    info = HfApi(endpoint=endpoint).model_info(model_id, files_metadata=True)
    revision = info.sha or "main"
    wanted = [(sibling.rfilename, int(sibling.size or 0)) for sibling in info.siblings or ()
              if "/" not in sibling.rfilename
              and any(fnmatch.fnmatch(sibling.rfilename, pattern) for pattern in patterns)]
    missing = tuple((name, size) for name, size in wanted
                    if not isinstance(try_to_load_from_cache(model_id, name, cache_dir=cache_dir, revision=revision),
                                      str))
    return DownloadPlan(revision, missing)


def download_with_progress(model_id: str, progress: ProgressFn, *, endpoint: str | None = None,
                           cache_dir: str | Path | None = None) -> int:
    """Download the files `plan_download` names into the HF cache, one after another, calling
    ``progress(bytes_done, bytes_total)`` as huggingface_hub writes them; returns bytes_total."""
    from huggingface_hub import hf_hub_download

    plan = plan_download(model_id, endpoint=endpoint, cache_dir=cache_dir)
    total = plan.bytes_total
    if not plan.files:
        return 0
    counter = ByteCounter(total, progress)
    progress(0, total)
    for name, _ in plan.files:
        hf_hub_download(model_id, name, revision=plan.revision, endpoint=endpoint, cache_dir=cache_dir,
                        tqdm_class=counter.bar_class())  # type: ignore[arg-type]
    progress(total, total)
    return total


class ByteCounter:
    """Adds up the bytes huggingface_hub reports through the progress bars it makes from `bar_class()`,
    and passes ``(done, total)`` (done capped at total) to `progress` on every update. Thread-safe.

    Only bytes written count: the bar class has ``update_transfer`` (network bytes, ignored), which tells
    huggingface_hub to report both kinds through one bar rather than make a second one.

    >>> seen = []
    >>> Bar = ByteCounter(100, lambda done, total: seen.append(done)).bar_class()
    >>> with Bar(total=60, initial=10, unit="B", desc="model.safetensors") as bar:
    ...     bar.update(30); bar.update_transfer(25)
    >>> seen
    [10, 40]
    """

    def __init__(self, total: int, progress: ProgressFn) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        with self._lock:
            self.done = max(0, self.done + count)
            done = min(self.done, self.total)
        self._progress(done, self.total)

    def bar_class(self) -> type:
        counter = self

        class Bar:
            """Mimics the part of tqdm that huggingface_hub's downloads use."""

            def __init__(self, *args: object, initial: int = 0, total: int | None = None, **kwargs: object) -> None:
                self.n = initial
                self.total = total
                if initial:
                    counter.add(int(initial))

            def __enter__(self) -> Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def update(self, count: float | None = 1) -> None:
                self.n += int(count or 0)
                counter.add(int(count or 0))

            def update_transfer(self, count: float | None = 1) -> None:
                return None

            def _draw(self, *args: object, **kwargs: object) -> None:
                return None  # nothing to draw: the counter reports

            close = refresh = clear = reset = set_description = set_description_str = _draw
            set_postfix = set_postfix_str = set_transfer_postfix_str = _draw

        return Bar
