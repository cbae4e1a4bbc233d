"""ONNX exports of transformers models, made once into a cache folder that every process reuses, and the
ONNX Runtime sessions that run them; shared by the onnx backends, not a backend itself.

- `exported(...)` -> `Export`: the cached export of a model for a precision, made when it is missing or
  broken. ``"fp32"`` is exact: the legacy TorchScript exporter (``dynamo=False``) over eager attention,
  then ONNX Runtime's transformer fusions (Attention, SkipLayerNorm, BiasGelu), which the dynamo exporter's
  graph does not get. ``"int8"`` is that graph with its MatMul weights quantized to int8 per channel
  (dynamic quantization: activations are quantized per batch at run time); embeddings and the
  classification head (a Gemm) stay fp32.
- `open_session(export)`: an `onnxruntime.InferenceSession` using the process's CPU share;
  `exported_session` gives both, exporting again once when a cached entry can't be opened.
- `onnx_cache_dir()`: $SEARCH_ONNX_CACHE, else a Space's persistent storage (/data/multilingual-rerank-explorer/onnx)
  when it is writable, else ~/.cache/multilingual-rerank-explorer/onnx (`search.config`).
- `only_cached()`: within it, a form that is not in the cache raises `NotPrepared` at once instead of being made
  (how the loader asks "is it ready?" without paying for it); `observing(observer)`: what a preparation made
  within it does, step by step, with its expected cost (`runtime.costs`), for a status line.

Cache layout: ``<cache>/<model id, filesystem-safe>/<weights key>/<task>-<precision>/`` holding
``model.onnx`` (plus ``model.onnx.data`` above protobuf's 2 GB limit), the fp32 word embeddings in
``word_embeddings.bin`` (external data of model.onnx: set aside at export, which saves most of its time and
memory for a 250k vocabulary) and ``meta.json``, written last,
which lists every file with its size. The weights key hashes the Hub revision (a snapshot's commit), or
for a local folder config.json and each weight file's name, size and first and last MiB; a changed
checkpoint gets a new folder. An export is written to a temporary folder beside its destination and
renamed into place, so a crash never leaves a half-written entry; a folder whose meta.json is missing or
does not match its files (or that ONNX Runtime cannot open) is rebuilt.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from ...models import error_summary
from .costs import CostKind, ModelSize, expected_seconds, recorded_costs

logger = logging.getLogger(__name__)

Precision = Literal["fp32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "int8")

ONNX_CACHE_ENV = "SEARCH_ONNX_CACHE"
DEFAULT_ONNX_CACHE = Path.home() / ".cache" / "multilingual-rerank-explorer" / "onnx"
INSTALL_HINT = "pip install onnxruntime onnx"

# Bumped when the export recipe changes, so older cache entries are not reused.
RECIPE_VERSION = 1
OPSET = 17
# Above this many bytes of weights the graph is saved with external data (protobuf's 2 GB limit, with margin).
EXTERNAL_DATA_BYTES = 1_800_000_000
# ORT's Python fusion holds several copies of the graph (the word embeddings set aside, see
# `_embeddings_aside`): bge-reranker-base's 0.34 GB of layer weights export and fuse at a 3.2 GB peak,
# v2-m3's 1.25 GB at 10.4 GB (fresh processes, benchmarks/bench_prepare.py and bench_rerank.py). Larger graphs
# run unfused: still exact, and as fast where measured (v2-m3's shape: 4.87x CrossEncoder.predict unfused,
# 4.85x fused; bge-reranker-base's: 97% of the fused speed; docs/performance.md).
FUSION_MAX_BYTES = 1_000_000_000
MODEL_FILE = "model.onnx"
META_FILE = "meta.json"
# The word embeddings' own file beside model.onnx (see `_embeddings_aside`), and the rows the traced graph holds
# meanwhile (the trace reads token id 5).
EMBEDDINGS_FILE = "word_embeddings.bin"
_PLACEHOLDER_ROWS = 8


class ExportFailed(RuntimeError):
    """A model could not be exported, optimised, quantized or opened; the message says which step and why."""


class NotPrepared(Exception):
    """Within `only_cached()`: the form asked for is not in the export cache (nothing was made)."""


class Observer(Protocol):
    """Follows a preparation made within `observing(...)`: `planned` once it is known what must be made (the
    expected seconds of all of it, None when nothing can tell, and what the figure comes from), then
    `step` as each step starts: "exporting", "fusing", "quantising", "saving"."""

    def planned(self, seconds: float | None, basis: str) -> None: ...

    def step(self, name: str) -> None: ...


_cache_only: contextvars.ContextVar[bool] = contextvars.ContextVar("cache_only", default=False)
_observer: contextvars.ContextVar[Observer | None] = contextvars.ContextVar("observer", default=None)


@contextlib.contextmanager
def only_cached() -> Iterator[None]:
    """Within the block (in this thread), `exported` and `cached_entry` return what the cache holds and raise
    `NotPrepared` for anything they would have to make. They don't wait for an export in progress."""
    token = _cache_only.set(True)
    try:
        yield
    finally:
        _cache_only.reset(token)


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[None]:
    """Within the block (in this thread), preparations tell `observer` their plan and their steps."""
    token = _observer.set(observer)
    try:
        yield
    finally:
        _observer.reset(token)


def cache_only() -> bool:
    """Whether this thread is within `only_cached()`."""
    return _cache_only.get()


def report_step(name: str) -> None:
    """Tell the current observer (if any) that a preparation step starts; for the runtimes that prepare."""
    observer = _observer.get()
    if observer is not None:
        observer.step(name)


def _plan(kinds: Sequence[CostKind], size: ModelSize | None, cache_dir: Path) -> None:
    observer = _observer.get()
    if observer is None or not kinds:
        return
    total, bases = 0.0, set()
    for kind in kinds:
        seconds, basis = expected_seconds(kind, size, recorded_costs(cache_dir))
        if seconds is None:
            observer.planned(None, basis)
            return
        total += seconds
        bases.add(basis)
    observer.planned(total, " and ".join(sorted(bases)))


@dataclass(frozen=True)
class Export:
    """A cached export: its `folder`, the ONNX file to run, the graph's input names and what `meta.json`
    says (task, precision, fusion, files, seconds the export took)."""

    folder: Path
    precision: Precision
    input_names: tuple[str, ...]
    meta: dict[str, Any] = field(hash=False, compare=False)

    @property
    def model_path(self) -> Path:
        """The model file: ``model.onnx``, or what meta.json's ``model_file`` names (an OpenVINO IR)."""
        return self.folder / self.meta.get("model_file", MODEL_FILE)


@dataclass(frozen=True)
class ExportRecipe:
    """What to export: `load()` returns the torch model (fp32, eager attention, checks done); the graph
    reads `input_names` (int64, shape batch x sequence) and returns its output field `output`."""

    task: str  # "reranker" or "encoder": part of the cache folder's name
    load: Callable[[], Any]
    input_names: tuple[str, ...]
    output: str
    output_is_sequence: bool  # the output has a sequence axis (last_hidden_state) or not (logits)
    size: ModelSize | None = None  # the model's shape, for the expected preparation time (`runtime.costs`)


# A MatMul inside a transformer block: "/encoder/layer.3/..." (BERT, XLM-R), "layers.3" elsewhere.
_LAYER_NODE = re.compile(r"[/.]layers?[._]\d+[/.]")
_export_lock = threading.Lock()  # one export at a time in a process; across processes the rename decides


def onnx_cache_dir() -> Path:
    """$SEARCH_ONNX_CACHE; unset: /data/multilingual-rerank-explorer/onnx when /data (a Space's persistent
    storage) is writable, else ~/.cache/multilingual-rerank-explorer/onnx."""
    from ... import config

    return Path(config.current().onnx_cache).expanduser()


def require_onnxruntime() -> None:
    """Raise ImportError with the install line when onnxruntime or onnx is missing."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise ImportError(f"the onnx backends need onnxruntime and onnx ({error}); install them with: "
                          f"{INSTALL_HINT}") from error


def weights_key(location: str | Path) -> str:
    """A short hash naming the weights at `location` (a model folder, maybe a Hub snapshot, or a single
    model file such as the bundled e5's).

    A Hub snapshot (``.../snapshots/<commit>/``) is named by its commit; any other folder by config.json
    and each weight file's name, size and first and last MiB (cheap even for 2 GB files); a file likewise.
    """
    folder = Path(location)
    digest = hashlib.sha256(f"recipe {RECIPE_VERSION} opset {OPSET}\n".encode())
    if folder.parent.name == "snapshots":
        digest.update(f"revision {folder.name}".encode())
        return digest.hexdigest()[:16]
    config = folder / "config.json"
    if config.exists():
        digest.update(config.read_bytes())
    files = [folder] if folder.is_file() else []
    files += sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.safetensors.index.json"))
    for weights in files:
        size = weights.stat().st_size
        digest.update(f"{weights.name}:{size}".encode())
        with weights.open("rb") as stream:
            digest.update(stream.read(1 << 20))
            stream.seek(max(0, size - (1 << 20)))
            digest.update(stream.read(1 << 20))
    return digest.hexdigest()[:16]


def model_folder(model_id: str, source: dict[str, object]) -> Path:
    """The folder `model_id`'s files are in: itself when it is a folder, else its HF cache snapshot (which
    `from_pretrained` with `source` fills first when the Hub answers). Raises OSError when it is neither."""
    location = Path(os.path.expanduser(model_id))
    if location.is_dir():
        return location
    from transformers.utils import cached_file

    config = cached_file(model_id, "config.json", **source)
    if config is None:
        raise OSError(f"{model_id!r} has no config.json in the Hugging Face cache")
    return Path(config).parent


def exported(model_id: str, folder: Path, recipe: ExportRecipe, precision: Precision, *,
             cache_dir: Path | None = None) -> Export:
    """Return the cached export of the model in `folder` (named `model_id`) for `precision`, exporting it
    first when it is missing or broken (an int8 export starts from the fp32 one, exporting that too).

    Raises ExportFailed naming the step that failed, ImportError (with the install line) without onnxruntime.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}; use one of {', '.join(PRECISIONS)}")
    require_onnxruntime()
    cache = cache_dir or onnx_cache_dir()
    root = cache / _safe_name(model_id) / weights_key(folder)
    entries: dict[CostKind, Path] = {"onnx-fp32": root / f"{recipe.task}-fp32"}
    if precision == "int8":
        entries["onnx-int8"] = root / f"{recipe.task}-int8"
    missing = [kind for kind, entry in entries.items() if _read_entry(entry) is None]
    if missing and _cache_only.get():
        raise NotPrepared(f"{model_id!r}: {', '.join(missing)} not in {root}")
    _plan(missing, recipe.size, cache)
    with _export_lock:
        fp32 = _ensure(root / f"{recipe.task}-fp32", lambda out: _export_fp32(model_id, recipe, out))
        if precision == "fp32":
            return fp32
        return _ensure(root / f"{recipe.task}-int8", lambda out: _quantize(fp32, out))


def cached_entry(model_id: str, folder: Path, name: str, build: Callable[[Path], dict[str, Any]], *,
                 cache_dir: Path | None = None, kind: CostKind | None = None,
                 size: ModelSize | None = None) -> Export:
    """The cache entry `name` beside the model's ONNX exports (same model id and weights key), made by
    `build(temporary_folder)` when missing or broken; `build` writes its files and returns the meta
    (``precision``, ``input_names``, ``model_file``; the recipe and file list are added here). For
    other runtimes' artefacts made from the same weights (`search.backends.runtime.openvino_int8`). `kind`
    and `size` say what making it costs (`runtime.costs`), for observers and for the next estimates.
    Within `only_cached()`, raises NotPrepared instead of making it."""
    cache = cache_dir or onnx_cache_dir()
    root = cache / _safe_name(model_id) / weights_key(folder)
    if _read_entry(root / name) is None:
        if _cache_only.get():
            raise NotPrepared(f"{model_id!r}: {name} not in {root}")
        if kind is not None:
            _plan([kind], size, cache)

    def build_with_recipe(out: Path) -> dict[str, Any]:
        meta = {**build(out), "recipe": RECIPE_VERSION, "model_id": model_id}
        if kind is not None:
            meta["cost"] = _cost(kind, size)
        return meta

    with _export_lock:
        return _ensure(root / name, build_with_recipe)


def export_unfused(model_id: str, recipe: ExportRecipe, out: Path) -> dict[str, Any]:
    """Export the model to ``out/model.onnx`` (fp32, unfused: standard ONNX ops only, for runtimes other
    than ONNX Runtime; the whole model in the graph, with external data above 1.8 GB); returns what
    `_export_fp32`'s meta says of it. For benchmarks that compare runtimes."""
    require_onnxruntime()
    model = recipe.load()
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    external = weight_bytes > EXTERNAL_DATA_BYTES
    raw = out / "raw"
    raw.mkdir()
    _trace(model_id, recipe, model, raw / MODEL_FILE)
    del model
    if external:
        import onnx

        _save(onnx.load(str(raw / MODEL_FILE)), out / MODEL_FILE, external)
    else:
        shutil.move(raw / MODEL_FILE, out / MODEL_FILE)
    shutil.rmtree(raw)
    return {"input_names": list(recipe.input_names), "output": recipe.output, "weight_bytes": weight_bytes,
            "external_data": external}


def cache_entries(cache_dir: Path | None = None) -> dict[Path, dict[str, Any]]:
    """Every whole entry of the export cache (its folder -> its meta.json), e.g. to tell what a preparation
    made: ``<cache>/<model>/<weights key>/<entry>/``."""
    entries = {}
    for meta in sorted((cache_dir or onnx_cache_dir()).glob(f"*/*/*/{META_FILE}")):
        entry = _read_entry(meta.parent)
        if entry is not None:
            entries[meta.parent] = entry.meta
    return entries


def exported_session(model_id: str, folder: Path, recipe: ExportRecipe, precision: Precision, *,
                     cache_dir: Path | None = None):
    """`exported(...)` and its `open_session`, as (Export, session). A cached entry ONNX Runtime can't open
    (a damaged file of the right size) is exported again, once. Raises what `exported` raises, and
    ExportFailed when the new export can't be opened either."""
    export = exported(model_id, folder, recipe, precision, cache_dir=cache_dir)
    try:
        return export, open_session(export)
    except Exception as error:  # onnxruntime's errors derive from Exception only
        logger.warning("ONNX Runtime could not open %s (%s); exporting it again", export.folder,
                       error_summary(error))
        discard(export)
    export = exported(model_id, folder, recipe, precision, cache_dir=cache_dir)
    try:
        return export, open_session(export)
    except Exception as error:
        raise ExportFailed(f"ONNX Runtime could not open the export of {model_id!r}: {error_summary(error)}") from error


def open_session(export: Export, *, threads: int | None = None):
    """An ONNX Runtime CPU session for `export`: intra-op threads = this process's CPU share (or
    `threads`), one inter-op thread, sequential execution, every graph optimisation on."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cpu_share()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if export.precision == "int8":
        # x64 CPUs without AVX-512 VNNI / AVX-VNNI (AVX2-only hosts) run ORT's default U8S8 int8 kernels
        # through 16-bit intermediate sums that can saturate, giving wrong scores. "1" selects U8U8
        # kernels there, exact with the reduce_range=True weights of `_quantize`; VNNI hosts ignore it.
        options.add_session_config_entry("session.x64quantprecision", "1")
    return ort.InferenceSession(str(export.model_path), options, providers=["CPUExecutionProvider"])


def cpu_share() -> int:
    """The CPUs this process may run on (its affinity mask, which container limits often set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def discard(export: Export) -> None:
    """Remove a cache entry that turned out unusable (ONNX Runtime could not open it), so the next
    `exported` call rebuilds it."""
    _remove(export.folder)


# -- the cache ----------------------------------------------------------------------------------------------

def _ensure(destination: Path, build: Callable[[Path], dict[str, Any]]) -> Export:
    found = _read_entry(destination)
    if found is not None:
        return found
    if destination.exists():
        logger.warning("ONNX cache entry %s is incomplete or broken; rebuilding it", destination)
        _remove(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=destination.parent, prefix=f".{destination.name}-"))
    try:
        started = time.perf_counter()
        try:
            meta = build(temporary)
        finally:
            release_freed_memory()
        meta["seconds"] = round(time.perf_counter() - started, 1)
        meta["files"] = {path.name: path.stat().st_size for path in sorted(temporary.iterdir())}
        (temporary / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            temporary.rename(destination)
        except OSError:
            # Another process finished the same export first; use its entry if it is whole.
            if _read_entry(destination) is None:
                raise
            logger.info("ONNX export %s was made by another process meanwhile", destination)
    finally:
        if temporary.exists():
            shutil.rmtree(temporary, ignore_errors=True)
    entry = _read_entry(destination)
    if entry is None:
        raise ExportFailed(f"the ONNX export in {destination} is unreadable right after it was written")
    logger.info("exported %s in %.1f s", destination, entry.meta.get("seconds", 0.0))
    return entry


def release_freed_memory() -> None:
    """Hand the memory an export freed back to the operating system (glibc's ``malloc_trim``; nothing
    elsewhere). An export's graph copies are freed when it ends, but glibc keeps the pages for the process:
    without this the app process stayed gigabytes larger after preparing a form in the background, and
    v2-m3's export peaked at 12.8 GB with the exporter's freed copies kept under the fusion's (10.5 GB
    now; docs/performance.md)."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):  # not glibc
        pass


def _read_entry(folder: Path) -> Export | None:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        files = meta["files"]
        whole = meta.get("model_file", MODEL_FILE) in files and all(
            (folder / name).stat().st_size == size for name, size in files.items())
        if not whole or meta.get("recipe") != RECIPE_VERSION:
            return None
        return Export(folder, meta["precision"], tuple(meta["input_names"]), meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove(folder: Path) -> None:
    # Renamed aside first, so no reader ever sees a half-deleted entry.
    if not folder.exists():
        return
    aside = folder.with_name(f".{folder.name}-removed-{os.getpid()}-{time.monotonic_ns()}")
    try:
        folder.rename(aside)
    except OSError:
        aside = folder
    shutil.rmtree(aside, ignore_errors=True)


def _safe_name(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "--", model_id.strip()).strip("-.") or "model"


# -- export, fusion, quantization ---------------------------------------------------------------------------

def _export_fp32(model_id: str, recipe: ExportRecipe, out: Path) -> dict[str, Any]:
    import onnx

    report_step("exporting")
    model = recipe.load()
    config = model.config
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    raw = out / "raw"
    raw.mkdir()
    with _embeddings_aside(model) as aside:
        # Only what the graph holds counts for protobuf's limit and the fusion's memory: the word
        # embeddings go to their own file.
        graph_bytes = weight_bytes - (aside.nbytes if aside is not None else 0)
        _trace(model_id, recipe, model, raw / MODEL_FILE)
        shape = None if aside is None else _write_embeddings(aside, out / EMBEDDINGS_FILE)
    del model, aside
    release_freed_memory()  # the exporter's copies, before the fusion makes its own (v2-m3: 12.8 GB peak without)
    external = graph_bytes > EXTERNAL_DATA_BYTES
    graph = onnx.load(str(raw / MODEL_FILE))
    table = None if shape is None else _placeholder_table(model_id, graph, shape[1])
    meta: dict[str, Any] = {
        "recipe": RECIPE_VERSION, "model_id": model_id, "task": recipe.task, "precision": "fp32",
        "input_names": list(recipe.input_names), "output": recipe.output, "weight_bytes": weight_bytes,
        "external_data": external, "word_embeddings": None if shape is None else EMBEDDINGS_FILE,
        "versions": _versions(), "cost": _cost("onnx-fp32", recipe.size),
    }
    layers, heads, hidden = (int(getattr(config, name)) for name in
                             ("num_hidden_layers", "num_attention_heads", "hidden_size"))
    fused = None
    if graph_bytes > FUSION_MAX_BYTES:
        meta["fusion"] = (f"skipped: {graph_bytes / 1e9:.1f} GB of weights besides the word embeddings (fusing "
                          "needs several times that in memory); the unfused graph is exact too")
        logger.info("%s: ONNX fusion %s", model_id, meta["fusion"])
    else:
        report_step("fusing")
        fused = _fuse(graph, heads, hidden, layers, meta)
        if fused is None:  # the fusion changes the graph it is given, also when it gives up
            graph = onnx.load(str(raw / MODEL_FILE))
    if table is not None and shape is not None:
        _point_to_embeddings(fused.model if fused is not None else graph, table, shape)
    if fused is not None:
        fused.save_model_to_file(str(out / MODEL_FILE), use_external_data_format=external,
                                 all_tensors_to_one_file=True)
    else:
        _save(graph, out / MODEL_FILE, external)
    shutil.rmtree(raw)
    return meta


@contextlib.contextmanager
def _embeddings_aside(model) -> Iterator[Any]:
    """Within the block the model's word embeddings hold only their first `_PLACEHOLDER_ROWS` rows (all the
    trace reads), and the block gets the full matrix: None for a model whose input embeddings are not a plain
    fp32 `nn.Embedding` of its own (e.g. the bundled e5's 4-bit one), which is exported whole.

    Why: the word embeddings are most of a multilingual model's weights (192 M of bge-reranker-base's 278 M
    parameters: a 250k vocabulary), and every step of an export copies what the graph holds (the exporter,
    protobuf, the fusion, several times each). Written once to their own file instead, they go through none
    of it (docs/performance.md measures the peak memory and time of both ways)."""
    import torch

    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if (type(embedding) is not torch.nn.Embedding or embedding.weight.dtype != torch.float32
            or embedding.num_embeddings <= _PLACEHOLDER_ROWS
            # a padding row past the placeholder's rows fails the trace; max_norm renormalises rows in place
            or (embedding.padding_idx is not None and embedding.padding_idx >= _PLACEHOLDER_ROWS)
            or embedding.max_norm is not None
            or (output is not None and getattr(output, "weight", None) is embedding.weight)):
        yield None
        return
    full = embedding.weight
    embedding.weight = torch.nn.Parameter(full.detach()[:_PLACEHOLDER_ROWS].clone(), requires_grad=False)
    try:
        yield full.detach()
    finally:
        embedding.weight = full


def _write_embeddings(weights: Any, path: Path) -> tuple[int, int]:
    """Write the embedding matrix (a torch tensor) to `path` as raw little-endian fp32; return its shape."""
    array = weights.numpy().astype("<f4", copy=False)
    with path.open("wb") as file:
        file.write(memoryview(array).cast("B"))
    return array.shape


def _placeholder_table(model_id: str, graph: Any, hidden: int) -> str:
    """The name of the placeholder word-embedding table in the traced `graph`: the data of the Gather that
    reads ``input_ids``. Raises ExportFailed when there is not exactly one."""
    tables = {node.input[0] for node in graph.graph.node if node.op_type == "Gather" and node.input[1] == "input_ids"}
    found = [tensor.name for tensor in graph.graph.initializer
             if tensor.name in tables and list(tensor.dims) == [_PLACEHOLDER_ROWS, hidden]]
    if len(found) != 1:
        raise ExportFailed(f"{model_id!r}: the word embeddings' table was not found in the ONNX graph "
                           f"({len(found)} candidates), so they can't be set aside")
    return found[0]


def _point_to_embeddings(graph: Any, name: str, shape: tuple[int, int]) -> None:
    """Make the initializer `name` (the placeholder, after any fusion) a reference to `EMBEDDINGS_FILE` of
    `shape`, in place. Done after the fusion, which reads the table's shape (EmbedLayerNormalization)."""
    import onnx

    table = next((tensor for tensor in graph.graph.initializer if tensor.name == name), None)
    if table is None:
        raise ExportFailed(f"the word embeddings' placeholder {name!r} is gone from the fused ONNX graph; "
                           "report the model id (the export can't point the graph at its table)")
    table.ClearField("raw_data")
    del table.dims[:]
    table.dims.extend(shape)
    del table.external_data[:]
    for key, value in (("location", EMBEDDINGS_FILE), ("offset", "0"), ("length", str(shape[0] * shape[1] * 4))):
        entry = table.external_data.add()
        entry.key, entry.value = key, value
    table.data_location = onnx.TensorProto.EXTERNAL


def _cost(kind: CostKind, size: ModelSize | None) -> dict[str, Any]:
    """What meta.json records of an entry's cost besides its seconds: its kind and the model's shape."""
    return {"kind": kind, "size": asdict(size) if size is not None else None}


def traceable(model, recipe: ExportRecipe):
    """(module, example inputs): `model` called with the recipe's inputs in order, returning its output
    field, and the inputs to trace it with: a batch of two rows, the second padded, so that the traced
    graph is the one for padded batches."""
    import torch

    input_ids = torch.full((2, 8), 5, dtype=torch.int64)
    mask = torch.ones_like(input_ids)
    mask[1, 6:] = 0
    dummy = {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(input_ids)}
    names = list(recipe.input_names)
    return _ByName(model, names, recipe.output), tuple(dummy[name] for name in names)


def _trace(model_id: str, recipe: ExportRecipe, model, path: Path) -> None:
    """The legacy TorchScript export of `model` to `path` (dynamic batch and sequence axes)."""
    import torch

    names = list(recipe.input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    axes[recipe.output] = {0: "batch", 1: "sequence"} if recipe.output_is_sequence else {0: "batch"}
    module, inputs = traceable(model, recipe)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about every data-dependent Python branch (padding checks in masking_utils);
            # the graph is traced with a padded row and tested against unpadded torch passes.
            warnings.simplefilter("ignore")
            torch.onnx.export(module, inputs, str(path), input_names=names, output_names=[recipe.output],
                              opset_version=OPSET, do_constant_folding=True, dynamo=False, dynamic_axes=axes)
    except Exception as error:
        raise ExportFailed(f"{model_id!r} could not be exported to ONNX: {error_summary(error)}") from error


class _PlaceholderNote(logging.Filter):
    """Drops the embedding fusion's warning that the word-embedding table is smaller than the position one:
    true of the placeholder the fusion sees (`_embeddings_aside`), and it fuses all the same."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("word_embedding_table (")


def _fuse(graph, heads: int, hidden: int, layers: int, meta: dict[str, Any]):
    """ONNX Runtime's Python transformer fusions over `graph` (a ModelProto, changed in place), or None when
    they don't fuse every attention layer (`meta` says why)."""
    from onnxruntime.transformers.optimizer import optimize_model

    for name in ("fusion_embedlayer", "onnxruntime.transformers.fusion_embedlayer"):  # how ORT imports it varies
        embed_logger = logging.getLogger(name)
        if _PlaceholderNote not in map(type, embed_logger.filters):
            embed_logger.addFilter(_PlaceholderNote())
    try:
        # A ModelProto, not a path: from a path the optimizer reads the whole graph twice.
        fused = optimize_model(graph, model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=0)
    except Exception as error:  # an architecture the bert fusions do not know: run the unfused graph
        meta["fusion"] = f"failed ({error_summary(error)}); the unfused graph is used"
        logger.warning("ONNX fusion %s", meta["fusion"])
        return None
    counts = {name: count for name, count in fused.get_fused_operator_statistics().items() if count}
    meta["fused_operators"] = counts
    if counts.get("Attention", 0) != layers:
        meta["fusion"] = (f"found {counts.get('Attention', 0)} Attention for {layers} layers; "
                          "the unfused graph is used")
        logger.warning("ONNX fusion %s", meta["fusion"])
        return None
    meta["fusion"] = f"{layers} of {layers} attention layers fused"
    return fused


def _save(graph, target: Path, external: bool) -> None:
    import onnx

    # One data file beside the graph (the word embeddings set aside keep theirs).
    onnx.save_model(graph, str(target), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=f"{MODEL_FILE}.data")


def _quantize(fp32: Export, out: Path) -> dict[str, Any]:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model_id = fp32.meta["model_id"]
    report_step("quantising")
    # Only the transformer layers' MatMuls: the quantizer would otherwise turn the classification head's
    # Gemms into MatMuls and quantize them too. Embeddings (Gather) are never quantized.
    graph = onnx.load(str(fp32.model_path), load_external_data=False).graph
    layers = [node.name for node in graph.node if node.op_type == "MatMul" and _LAYER_NODE.search(node.name)]
    if not layers:
        raise ExportFailed(f"{model_id!r}: no transformer-layer MatMul found to quantize in {fp32.model_path}")
    try:
        quantize_dynamic(
            str(fp32.model_path), str(out / MODEL_FILE), op_types_to_quantize=["MatMul"], nodes_to_quantize=layers,
            per_channel=True, weight_type=QuantType.QInt8, use_external_data_format=fp32.meta["external_data"],
            # 7-bit weights: exact on CPUs without VNNI too (see open_session's x64quantprecision).
            reduce_range=True,
            # MatMulConstBOnly: weight MatMuls only, not attention's activation x activation ones.
            # DefaultTensorType: the fused contrib ops leave tensors without shape inference, and without a
            # default the quantizer stops with "Unable to find data type for weight_name=...".
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT})
    except Exception as error:
        raise ExportFailed(f"{model_id!r} could not be quantized to int8: {error_summary(error)}") from error
    size = (fp32.meta.get("cost") or {}).get("size")
    return {**fp32.meta, "precision": "int8", "from": str(fp32.folder), "cost": {"kind": "onnx-int8", "size": size},
            "quantization": (f"dynamic int8: {len(layers)} layer MatMul weights per channel (reduce_range); "
                             "embeddings, fused attention projections and the head stay fp32")}


def _ByName(model, names: Sequence[str], output: str):
    """The model called with its inputs by name: transformers 5 changed some models' positional order."""
    import torch

    class ByName(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return getattr(self.model(**dict(zip(names, inputs, strict=True))), output)

    return ByName()


def _versions() -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}

