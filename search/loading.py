"""Loading models by id: which backend builds a reranker or an encoder, one per process and device, and
the offline fallbacks with the reason and the setting to change.

- `load_reranker`: a cross-encoder (torch backend), or the late-interaction fallback over the bundled
  all-MiniLM-L6-v2 when it can't be loaded (or when ``"late-interaction"`` is asked for).
- `load_encoder` / `load_dense_encoder`: a dense encoder (torch backend), the latter falling back to the
  bundled all-MiniLM-L6-v2.

`backend` picks what runs a model: one of BACKENDS (``"auto"`` picks the best available, today
``"torch"``); a new backend is a module in `search/backends/` plus its line in the tables below.
A remote backend (``"tei"``: a text-embeddings-inference endpoint) runs the model elsewhere: its "device"
is the endpoint's URL (`endpoint=`, else $SEARCH_TEI_URL), and its fallbacks run here, on the first
local backend.
Loaded models are cached per (model id, backend, device) and shared read-only between threads (see
`search.inference` for how reranks share the CPU). Every reranker comes wrapped in a
`score_cache.CachedReranker` over the process-wide score cache, so no caller scores a pair twice.
Backends load safetensors only and never run remote code; this module is the only one that knows which
backend serves which model.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from .backends.late_interaction import LateInteractionReranker
from .backends.tei import TEI_URL_ENV, TEIEncoder, TEIReranker, endpoint_urls
from .backends.torch_encoder import TorchEncoder
from .backends.torch_reranker import CrossEncoderReranker
from .inference import Loaded, Reranker, RerankerUnavailable, TextEncoder
from .models import (
    DENSE_ENV,
    FALLBACK_DENSE_ID,
    FALLBACK_LABEL,
    LATE_INTERACTION_ID,
    LATE_INTERACTION_LABEL,
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
TEI_SETTING_HINT = (f"Set --tei-url or {TEI_URL_ENV} to a running TEI endpoint that serves this model, or "
                    f"--backend torch to run it here.")

BACKEND_ENV = "SEARCH_BACKEND"
AUTO_BACKEND = "auto"

# What each backend builds: a cross-encoder reranker from (model id, device), an encoder from
# (model id, device, spec, label, path or None). A new backend is a new module plus one line in each.
_RERANKER_BACKENDS: dict[str, Callable[[str, str], Reranker]] = {
    "torch": CrossEncoderReranker,
    "tei": TEIReranker,
}
_ENCODER_BACKENDS: dict[str, Callable[..., TextEncoder]] = {
    "torch": TorchEncoder,
    "tei": TEIEncoder,
}
# Tried in this order for "auto": the first that is available. Remote backends are never picked by "auto".
_AUTO_ORDER = ("torch",)
# Backends whose "device" is an endpoint URL (from `endpoint=` or their environment variable).
_REMOTE_BACKENDS: dict[str, str] = {"tei": TEI_URL_ENV}
REMOTE_BACKENDS = frozenset(_REMOTE_BACKENDS)
"""The backends that run models elsewhere (their device is an endpoint URL)."""
BACKENDS: tuple[str, ...] = (AUTO_BACKEND, *_RERANKER_BACKENDS)
"""The names `backend` takes: "auto" and each backend."""

_rerankers: dict[tuple[str, str, str], CachedReranker] = {}
_rerankers_lock = threading.Lock()
_encoders: dict[tuple[str, str, str], TextEncoder] = {}
_encoders_lock = threading.Lock()
# One lock per key being built: a key is built once, while loads of other keys (a slow remote endpoint's
# GET /info, the local fallback, a server mounted on this process answering its own client) go on.
# The global locks above guard the dicts only and are never held while a model is built.
_building: dict[tuple[str, tuple[str, str, str]], threading.Lock] = {}
_T = TypeVar("_T")


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
                  backend: str = AUTO_BACKEND, endpoint: str | None = None) -> Loaded[Reranker]:
    """Load (once per process, backend and device) the reranker `model_id`: a Hub id, a local folder, or
    ``"late-interaction"`` for the offline fallback over the bundled all-MiniLM-L6-v2.

    The model comes as a `CachedReranker` over the shared score cache (its `inner` is the backend's
    reranker), with its measured `throughput()`. When the cross-encoder can't be loaded and `fallback`
    is on, returns the late-interaction reranker with `fallback_reason` saying why; with
    `fallback=False` raises RerankerUnavailable instead. Either message names the setting to change. An
    unknown `backend` is a ValueError whatever `fallback` says. A remote backend (``"tei"``) serves the
    model at `endpoint` (default $SEARCH_TEI_URL); the late-interaction fallback always runs here.

    >>> loaded = load_reranker("late-interaction")  # doctest: +SKIP
    >>> loaded.model.is_cross_encoder, loaded.fallback_reason  # doctest: +SKIP
    (False, None)
    """
    backend = resolve_backend(backend)
    local = _local_backend(backend)
    if model_id.strip() == LATE_INTERACTION_ID:
        return Loaded(_cached_reranker(LATE_INTERACTION_ID, local, choose_device(device)), model_id)
    try:
        try:
            where = _where(backend, device, endpoint)
        except ValueError as error:  # no or a bad endpoint URL
            raise RerankerUnavailable(str(error)) from error
        return Loaded(_cached_reranker(model_id, backend, where), model_id)
    except RerankerUnavailable as error:
        # The backend says why; the setting to change is the loader's to say.
        reason = f"{error} {TEI_SETTING_HINT if backend in _REMOTE_BACKENDS else SETTING_HINT}"
        if not fallback:
            raise RerankerUnavailable(reason) from error
        logger.warning("%s Reranking with: %s.", reason, LATE_INTERACTION_LABEL)
        return Loaded(_cached_reranker(LATE_INTERACTION_ID, local, choose_device(device)), model_id, reason)


def load_encoder(model_id: str, device: str | None = None, *, backend: str = AUTO_BACKEND,
                 endpoint: str | None = None) -> TextEncoder:
    """Load (once per process, backend and device) and return the encoder `model_id`, a Hub id or a local
    folder; `FALLBACK_DENSE_ID` loads the bundled all-MiniLM-L6-v2. A remote backend (``"tei"``) uses the
    model served at `endpoint` (default $SEARCH_TEI_URL).

    Raises OSError, ValueError or ImportError saying why it could not be loaded, and ValueError for an
    unknown `backend`.
    """
    backend = resolve_backend(backend)
    if backend not in _ENCODER_BACKENDS:
        raise ValueError(f"backend {backend!r} runs no dense encoder; use one of "
                         f"{', '.join((AUTO_BACKEND, *_ENCODER_BACKENDS))} ({BACKEND_ENV})")
    device = _where(backend, device, endpoint)
    return _once("encoder", _encoders, _encoders_lock, (model_id, backend, device),
                 lambda: _build_encoder(model_id, backend, device))


def load_dense_encoder(model_id: str, device: str | None = None, *, fallback: bool = True,
                       backend: str = AUTO_BACKEND, endpoint: str | None = None) -> Loaded[TextEncoder]:
    """Load `model_id`, or the bundled all-MiniLM-L6-v2 when it can't be loaded and `fallback` is on (it
    runs here, also when `backend` is a remote one).

    The returned `fallback_reason` says why and which setting to change. With `fallback=False` (or when
    the bundled model itself fails) raises what `load_encoder` raised. An unknown `backend` is a
    ValueError whatever `fallback` says.
    """
    backend = resolve_backend(backend)
    local = _local_backend(backend)
    try:
        return Loaded(load_encoder(model_id, device, backend=backend, endpoint=endpoint), model_id)
    except (OSError, ValueError, ImportError) as error:
        if not fallback or (model_id == FALLBACK_DENSE_ID and backend == local):
            raise
        hint = TEI_SETTING_HINT if backend in _REMOTE_BACKENDS else DENSE_SETTING_HINT
        reason = (f"dense model {model_id!r} could not be loaded ({error_summary(error)}); "
                  f"using {FALLBACK_LABEL}. {hint}")
        logger.info(reason)
        return Loaded(load_encoder(FALLBACK_DENSE_ID, device, backend=local), model_id, reason)


def _local_backend(backend: str) -> str:
    """`backend` itself, or for a remote backend the local one its fallbacks run on."""
    return _AUTO_ORDER[0] if backend in _REMOTE_BACKENDS else backend


def _where(backend: str, device: str | None, endpoint: str | None) -> str:
    """Where `backend` runs a model: a torch device, or a remote backend's endpoint URL(s), normalised so
    that one endpoint is one cache key. Raises ValueError for a missing or bad endpoint URL."""
    if backend in _REMOTE_BACKENDS:
        return ",".join(endpoint_urls(endpoint or os.environ.get(_REMOTE_BACKENDS[backend])))
    return choose_device(device)


def _cached_reranker(model_id: str, backend: str, device: str) -> CachedReranker:
    return _once("reranker", _rerankers, _rerankers_lock, (model_id, backend, device),
                 lambda: CachedReranker(_build_reranker(model_id, backend, device), shared_cache()))


def _once(what: str, cache: dict[tuple[str, str, str], _T], lock: threading.Lock, key: tuple[str, str, str],
          build: Callable[[], _T]) -> _T:
    """`cache[key]`, built by `build()` the first time: once per key, holding only that key's lock while it
    builds (a failed build is tried again by the next caller)."""
    with lock:
        if key in cache:
            return cache[key]
        key_lock = _building.setdefault((what, key), threading.Lock())
    with key_lock:
        with lock:
            if key in cache:
                return cache[key]
        model = build()
        with lock:
            model = cache.setdefault(key, model)
            _building.pop((what, key), None)
        logger.info("loaded %s %s (%s) on %s", what, *key)
        return model


def _build_reranker(model_id: str, backend: str, device: str) -> Reranker:
    if model_id == LATE_INTERACTION_ID:
        # The fallback shares the encoder cache: with the MiniLM dense fallback it is one model in memory.
        return LateInteractionReranker(load_encoder(FALLBACK_DENSE_ID, device, backend=backend))
    return _RERANKER_BACKENDS[backend](model_id, device)


def _build_encoder(model_id: str, backend: str, device: str) -> TextEncoder:
    build = _ENCODER_BACKENDS[backend]
    if model_id == FALLBACK_DENSE_ID and backend not in _REMOTE_BACKENDS:
        return build(FALLBACK_DENSE_ID, device, model_spec(FALLBACK_DENSE_ID, "dense"), FALLBACK_LABEL,
                      str(bundled_minilm_path()))
    return build(model_id, device, model_spec(model_id, "dense"), model_id)
