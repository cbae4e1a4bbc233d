"""Loading models by id: which backend builds a reranker or an encoder, one per process and device, and
the offline fallbacks with the reason and the setting to change.

- `load_reranker`: a cross-encoder (torch backend), or the late-interaction fallback over the bundled
  all-MiniLM-L6-v2 when it can't be loaded (or when ``"late-interaction"`` is asked for).
- `load_encoder` / `load_dense_encoder`: a dense encoder (torch backend), the latter falling back to the
  bundled all-MiniLM-L6-v2.

Loaded models are cached per (model id, device) and shared read-only between threads (see
`search.inference` for how reranks share the CPU). Backends load safetensors only and never run remote
code; this module is the only one that knows which backend serves which model.
"""

from __future__ import annotations

import logging
import threading

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
    RERANKER_ENV,
    bundled_minilm_path,
    choose_device,
    error_summary,
    model_spec,
)

logger = logging.getLogger(__name__)

SETTING_HINT = (f"Set --reranker-model or {RERANKER_ENV} (the app's reranker model field) to a cached Hub id "
                f"or a local model folder, or to {LATE_INTERACTION_ID!r} for the offline fallback.")
DENSE_SETTING_HINT = (f"Set --dense-model or {DENSE_ENV} to a cached Hub id or a local model folder to use "
                      "another model.")

_rerankers: dict[tuple[str, str], Reranker] = {}
_rerankers_lock = threading.Lock()
_encoders: dict[tuple[str, str], TextEncoder] = {}
_encoders_lock = threading.Lock()


def load_reranker(model_id: str, device: str | None = None, *, fallback: bool = True) -> Loaded[Reranker]:
    """Load (once per process and device) the reranker `model_id`: a Hub id, a local folder, or
    ``"late-interaction"`` for the offline fallback over the bundled all-MiniLM-L6-v2.

    When the cross-encoder can't be loaded and `fallback` is on, returns the late-interaction reranker
    with `fallback_reason` saying why; with `fallback=False` raises RerankerUnavailable instead. Either
    message names the setting to change.

    >>> loaded = load_reranker("late-interaction")  # doctest: +SKIP
    >>> loaded.model.is_cross_encoder, loaded.fallback_reason  # doctest: +SKIP
    (False, None)
    """
    device = choose_device(device)
    if model_id.strip() == LATE_INTERACTION_ID:
        return Loaded(_cached_reranker(LATE_INTERACTION_ID, device), model_id)
    try:
        return Loaded(_cached_reranker(model_id, device), model_id)
    except RerankerUnavailable as error:
        # The backend says why; the setting to change is the loader's to say.
        reason = f"{error} {SETTING_HINT}"
        if not fallback:
            raise RerankerUnavailable(reason) from error
        logger.warning("%s Reranking with: %s.", reason, LATE_INTERACTION_LABEL)
        return Loaded(_cached_reranker(LATE_INTERACTION_ID, device), model_id, reason)


def load_encoder(model_id: str, device: str | None = None) -> TextEncoder:
    """Load (once per process and device) and return the encoder `model_id`, a Hub id or a local folder;
    `FALLBACK_DENSE_ID` loads the bundled all-MiniLM-L6-v2.

    Raises OSError, ValueError or ImportError saying why it could not be loaded.
    """
    device = choose_device(device)
    key = (model_id, device)
    with _encoders_lock:
        if key not in _encoders:
            _encoders[key] = _build_encoder(model_id, device)
            logger.info("loaded encoder %s on %s", model_id, device)
        return _encoders[key]


def load_dense_encoder(model_id: str, device: str | None = None, *, fallback: bool = True) -> Loaded[TextEncoder]:
    """Load `model_id`, or the bundled all-MiniLM-L6-v2 when it can't be loaded and `fallback` is on.

    The returned `fallback_reason` says why and which setting to change. With `fallback=False` (or when
    the bundled model itself fails) raises what `load_encoder` raised.
    """
    try:
        return Loaded(load_encoder(model_id, device), model_id)
    except (OSError, ValueError, ImportError) as error:
        if not fallback or model_id == FALLBACK_DENSE_ID:
            raise
        reason = (f"dense model {model_id!r} could not be loaded ({error_summary(error)}); "
                  f"using {FALLBACK_LABEL}. {DENSE_SETTING_HINT}")
        logger.info(reason)
        return Loaded(load_encoder(FALLBACK_DENSE_ID, device), model_id, reason)


def _cached_reranker(model_id: str, device: str) -> Reranker:
    key = (model_id, device)
    with _rerankers_lock:
        if key not in _rerankers:
            _rerankers[key] = _build_reranker(model_id, device)
            logger.info("loaded reranker %s on %s", model_id, device)
        return _rerankers[key]


def _build_reranker(model_id: str, device: str) -> Reranker:
    if model_id == LATE_INTERACTION_ID:
        # The fallback shares the encoder cache: with the MiniLM dense fallback it is one model in memory.
        return LateInteractionReranker(load_encoder(FALLBACK_DENSE_ID, device))
    return CrossEncoderReranker(model_id, device)


def _build_encoder(model_id: str, device: str) -> TextEncoder:
    if model_id == FALLBACK_DENSE_ID:
        return TorchEncoder(FALLBACK_DENSE_ID, device, model_spec(FALLBACK_DENSE_ID, "dense"), FALLBACK_LABEL,
                            str(bundled_minilm_path()))
    return TorchEncoder(model_id, device, model_spec(model_id, "dense"), model_id)
