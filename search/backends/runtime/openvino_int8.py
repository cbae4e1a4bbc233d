"""OpenVINO static int8: a model quantized once by NNCF's post-training quantization, calibrated on fixed
pairs, cached beside the ONNX exports (`search.backends.runtime.onnx_export`) and run by OpenVINO on the
CPU; shared by the OpenVINO int8 backends (`OpenVinoReranker` and `OpenVinoEncoder` in
`search.backends.onnx_reranker` and `.onnx_encoder`), not a backend itself.

The recipe (`OV_RECIPE`; the measurements behind it are in docs/models.md):
1. the torch model (eager attention) converted to an OpenVINO model in memory by OpenVINO's PyTorch frontend
   (`convert`: traced with one padded row, as the ONNX export is; no ONNX file in between: the whole
   preparation of bge-reranker-base's shape peaks at 2.8 GB instead of 4.8 GB, docs/performance.md);
2. `nncf.quantize` with static (calibrated) int8 activations and per-channel int8 weights:
   ``ModelType.TRANSFORMER`` (SmoothQuant, attention MatMuls quantized, LayerNorm/Softmax kept fp32),
   ``QuantizationPreset.MIXED`` (asymmetric activations), fast bias correction, calibrated on
   `CALIBRATION_SIZE` (query, passage) pairs in ten languages from the bundled sample corpus
   (``search/backends/runtime/calibration_pairs.json``, built from ``corpora/polyglot-facts``). The
   word-embedding Gather and the classification head stay fp32 (`IgnoredScope`);
3. saved as OpenVINO IR (``openvino_model.xml`` / ``.bin``) in ``<onnx cache>/<model>/<weights
   key>/<task>-int8-openvino-r<OV_RECIPE>/``, keyed like the ONNX exports by model id and revision (or
   weights hash) plus this recipe; later loads, in any process, only compile it (about a second).

Running it: `compile_export` compiles for the CPU with as many threads as the process's CPU share,
the latency hint and f32 for whatever is not int8 (by default OpenVINO would run those parts in bf16
on CPUs that have it, which differs between hosts).

CPU instruction sets: OpenVINO (oneDNN) picks its int8 kernels at run time. With AVX-512 VNNI or
AVX-VNNI (the benchmark host, an Emerald Rapids Xeon; AMX too where the host exposes it) an int8 dot
product is one instruction, which is where the 5-6x over `CrossEncoder.predict` (2.2x over the exact
onnx backend) comes from. On AVX2-only CPUs oneDNN emulates it with ``vpmaddubsw``/``vpmaddwd``, whose
16-bit intermediate sums can saturate with full 8-bit weights: the quantizer's ``OverflowFix.ENABLE``
keeps every weight in 7 bits so the results stay right there (the same idea as ONNX Runtime's
``reduce_range``), at a small cost in precision everywhere. Measured with ``ONEDNN_MAX_CPU_ISA=AVX2``
(OpenVINO's AVX2 kernels on this CPU): about 2x `CrossEncoder.predict` instead of 5-6x, with scores
as close to fp32 as with VNNI (the AVX2 rows of docs/models.md).

Needs ``openvino`` and ``nncf`` (the ``[openvino]`` extra): `openvino_available()`; without them the
``int8`` backend is ONNX Runtime's dynamic int8 (`search.backends.runtime.onnx_export`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import logging
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ...models import error_summary
from .onnx_export import (
    Export,
    ExportFailed,
    ExportRecipe,
    cached_entry,
    cpu_share,
    discard,
    report_step,
    traceable,
)

logger = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "multilingual-rerank-explorer[openvino]" (or: pip install openvino nncf)'
# Bumped when the quantization recipe or the calibration pairs change, so older entries are not reused.
OV_RECIPE = 3  # 2: converted from torch by OpenVINO's PyTorch frontend (1: from the ONNX export); 3: 2 again, past
# entries that a development version made on 16 calibration pairs under the same name
IR_FILE = "openvino_model.xml"
CALIBRATION_FILE = Path(__file__).with_name("calibration_pairs.json")
Feed = dict[str, np.ndarray]


@dataclass(frozen=True)
class Int8Options:
    """The options of NNCF's quantization that cost the most time (docs/performance.md measures each):
    `calibration_size` pairs calibrate (NNCF's statistics passes grow with it: about 0.6 CPU s a pair for
    bge-reranker-base's shape), `smooth_quant` runs SmoothQuant (a statistics pass of its own, about 40% of
    the quantization's time), `bias_correction` NNCF's fast bias correction (no time to save).
    Measured and not taken: without SmoothQuant the bundled MiniLM kept 99.65% of its XQuAD nDCG@10 instead
    of 99.96%; 16 pairs instead of 64 (37% of NNCF's CPU time; MiniLM 99.98%) took the bundled e5's Arabic 0.0052 below
    torch, past the 0.005 it must stay within. For bge-reranker-base's shape 48 and 32 pairs prepare in 3.9x
    and 3.3x torch's scoring time instead of 4.9x, but moved a trained body's ranking further from fp32's
    (benchmarks/int8_reranker_retention.py: mean Spearman 0.9773 and 0.9723 against 0.9798), so rerankers
    keep 64 too (docs/performance.md). `suffix` names a non-default choice in the cache entry's name
    (benchmarks compare them)."""

    calibration_size: int = 64
    smooth_quant: bool = True
    bias_correction: bool = True

    @property
    def suffix(self) -> str:
        if self == Int8Options():
            return ""
        return (f"-c{self.calibration_size}" + ("" if self.smooth_quant else "-nosq")
                + ("" if self.bias_correction else "-nobc"))


INT8_OPTIONS = Int8Options()
"""The options every int8 form is made with (benchmarks may set another to measure it)."""
CALIBRATION_SIZE = INT8_OPTIONS.calibration_size
# English XQuAD dense nDCG@10 of the bundled all-MiniLM-L6-v2 quantized with this recipe, over fp32
# (benchmarks/bench_dense.py measures it; tests/test_onnx_quality.py checks it stays at least 99%).
MEASURED_RETENTION = "99.96%"
BACKEND_LABEL = f"int8 (quantized, OpenVINO static; {MEASURED_RETENTION} of fp32 nDCG@10)"
"""How the OpenVINO int8 backends label a model: ``BAAI/bge-reranker-v2-m3 · int8 (quantized, ...)``."""


def openvino_available() -> bool:
    """Whether openvino and nncf are installed (the ``[openvino]`` extra)."""
    return all(importlib.util.find_spec(name) is not None for name in ("openvino", "nncf"))


def require_openvino() -> None:
    """Raise ImportError with the install line when openvino or nncf is missing."""
    if not openvino_available():
        raise ImportError(f"the OpenVINO int8 backend needs openvino and nncf; install them with: {INSTALL_HINT}")


def calibration_pairs(size: int | None = None) -> tuple[tuple[str, str], ...]:
    """The `size` (default: `INT8_OPTIONS`'s) (query, passage) pairs int8 models are calibrated on: evenly
    spread over ``calibration_pairs.json`` (44 queries in ten languages, each with a relevant and a random
    paragraph)."""
    size = INT8_OPTIONS.calibration_size if size is None else size
    if size < 1:
        raise ValueError(f"calibration size {size}: calibrating needs at least one pair")
    return _calibration_pairs(size)


@cache
def _calibration_pairs(size: int) -> tuple[tuple[str, str], ...]:
    pairs = json.loads(CALIBRATION_FILE.read_text(encoding="utf-8"))["pairs"]
    step = max(1, len(pairs) / size)
    return tuple((pairs[int(i * step)][0], pairs[int(i * step)][1]) for i in range(min(size, len(pairs))))


class OpenVinoSession:
    """A compiled OpenVINO model behind ONNX Runtime's `run(None, feed) -> [output]` call, so the onnx
    backends' batching code runs it unchanged. Thread-safe: one inference at a time (they share the CPU)."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self._lock = threading.Lock()
        self.input_names = tuple(port.get_any_name() for port in compiled.inputs)

    def run(self, output_names: Sequence[str] | None, feed: Feed) -> list[np.ndarray]:
        with self._lock:
            result = self._request.infer({name: feed[name] for name in self.input_names})
            return [np.array(result[self._compiled.output(0)], copy=True)]


def quantized_session(model_id: str, folder: Path, recipe: ExportRecipe, calibration: Callable[[], list[Feed]], *,
                      cache_dir: Path | None = None,
                      also_fp32: Callable[[Any], list[str]] | None = None) -> tuple[Export, OpenVinoSession]:
    """The model in `folder` (named `model_id`) quantized to static int8 (cached; `calibration()` gives
    the feeds to calibrate on when it must be made) and compiled. `also_fp32(model)` names nodes to keep
    fp32 besides `fp32_nodes` (a caller that passes it says so in `recipe.task`, which names the
    entry). An entry OpenVINO can't compile is quantized again, once.
    Raises ExportFailed naming the failed step, ImportError without openvino/nncf."""
    require_openvino()
    options = INT8_OPTIONS
    name = f"{recipe.task}-int8-openvino-r{OV_RECIPE}{options.suffix}"

    def entry() -> Export:
        return cached_entry(model_id, folder, name,
                            lambda out: _quantize(model_id, recipe, calibration, out, also_fp32, options),
                            cache_dir=cache_dir,
                            kind="openvino-int8", size=recipe.size)

    export = entry()
    try:
        return export, compile_export(export)
    except Exception as error:  # openvino raises RuntimeError subclasses
        logger.warning("OpenVINO could not compile %s (%s); quantizing it again", export.folder, error_summary(error))
        discard(export)
    export = entry()
    try:
        return export, compile_export(export)
    except Exception as error:
        raise ExportFailed(f"OpenVINO could not compile the int8 model of {model_id!r}: "
                           f"{error_summary(error)}") from error


def compile_export(export: Export, *, threads: int | None = None) -> OpenVinoSession:
    """Compile an OpenVINO IR for the CPU: `threads` or the process's CPU share, latency hint, f32 for
    the parts that are not int8."""
    import openvino as ov

    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": threads or cpu_share(),
              "INFERENCE_PRECISION_HINT": "f32"}
    return OpenVinoSession(ov.Core().compile_model(str(export.model_path), "CPU", config))


def fp32_nodes(model: Any) -> list[str]:
    """The nodes quantization must leave fp32: the word-embedding Gather (the one indexed by the
    ``input_ids`` input) and the classification head's MatMuls (named ``classifier`` by transformers,
    and the last one, which the exporter names after the output)."""
    keep = []
    for op in model.get_ops():
        name = op.get_friendly_name()
        if op.get_type_name() == "Gather" and _source(op.input(1)).get_type_name() == "Parameter":
            keep.append(name)
        elif op.get_type_name() == "MatMul" and ("classifier" in name or any(
                target.get_node().get_type_name() == "Result" for target in op.output(0).get_target_inputs())):
            keep.append(name)
    return keep


@contextlib.contextmanager
def _nncf_log_on_stderr():
    """NNCF's log handler writes to stdout (it is set up when nncf is imported): stderr meanwhile. Its progress
    bars use rich's shared console, which is pointed at stderr for good (stdout is for answers)."""
    import rich

    rich.get_console().stderr = True
    moved = [(handler, handler.stream) for handler in logging.getLogger("nncf").handlers
             if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__)]
    for handler, _ in moved:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def _source(port: Any) -> Any:
    """The node feeding `port`, looking through type conversions."""
    node = port.get_source_output().get_node()
    while node.get_type_name() == "Convert":
        node = node.input(0).get_source_output().get_node()
    return node


def convert(model_id: str, recipe: ExportRecipe) -> tuple[Any, dict[str, Any]]:
    """The recipe's torch model converted to an OpenVINO model in memory (OpenVINO's PyTorch frontend, which
    shares the torch weights: no ONNX file in between; the whole int8 preparation of bge-reranker-base's shape
    peaks at 2.8 GB where the ONNX route peaked at 4.8 GB, docs/performance.md), with the recipe's input and
    output names; and what meta.json says of it. Raises ExportFailed."""
    import openvino as ov
    import torch
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    torch_model = recipe.load()
    weight_bytes = sum(p.numel() * p.element_size() for p in torch_model.parameters())
    module, inputs = traceable(torch_model, recipe)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's warnings about data-dependent branches, as for ONNX
            # Traced once: torch's default check re-runs and re-traces the model to compare the two graphs
            # (about 4 of the 75 s of a profiled preparation of bge-reranker-base's shape under load; tests
            # compare the quantized form's scores with torch's).
            decoder = TorchScriptPythonDecoder(module, example_input=inputs, shared_memory=True,
                                               trace_kwargs={"check_trace": False})
            model = ov.convert_model(decoder)
    except Exception as error:
        raise ExportFailed(f"OpenVINO could not convert {model_id!r}: {error_summary(error)}") from error
    del torch_model, module
    for port, name in zip(model.inputs, recipe.input_names, strict=True):
        port.get_tensor().set_names({name})
    model.outputs[0].get_tensor().set_names({recipe.output})
    return model, {"input_names": list(recipe.input_names), "output": recipe.output, "weight_bytes": weight_bytes,
                   "conversion": "torch -> OpenVINO (PyTorch frontend)"}


def _quantize(model_id: str, recipe: ExportRecipe, calibration: Callable[[], list[Feed]], out: Path,
              also_fp32: Callable[[Any], list[str]] | None, options: Int8Options) -> dict[str, Any]:
    import nncf
    import openvino as ov
    from nncf.quantization.advanced_parameters import (
        AdvancedQuantizationParameters,
        AdvancedSmoothQuantParameters,
        OverflowFix,
    )

    report_step("exporting")
    model, meta = convert(model_id, recipe)
    report_step("quantising")
    feeds = calibration()
    keep = fp32_nodes(model) + (also_fp32(model) if also_fp32 else [])
    try:
        # NNCF logs and draws its progress bars on stdout, which `--json` commands keep for their answer. Not
        # `redirect_stdout`: it swaps sys.stdout for every thread, and a background preparation would then
        # send another thread's answer to stderr.
        with _nncf_log_on_stderr():
            quantized = nncf.quantize(
                model, nncf.Dataset(feeds), model_type=nncf.ModelType.TRANSFORMER,
                preset=nncf.QuantizationPreset.MIXED, subset_size=len(feeds),
                ignored_scope=nncf.IgnoredScope(names=keep, validate=False),
                # 7-bit weights everywhere: right on AVX2-only CPUs too (see the module docstring).
                advanced_parameters=AdvancedQuantizationParameters(
                    overflow_fix=OverflowFix.ENABLE, disable_bias_correction=not options.bias_correction,
                    # alpha -1 turns SmoothQuant off for MatMuls (the only layers it smooths here)
                    smooth_quant_alphas=AdvancedSmoothQuantParameters() if options.smooth_quant
                    else AdvancedSmoothQuantParameters(matmul=-1)))
        ov.save_model(quantized, str(out / IR_FILE), compress_to_fp16=False)
    except Exception as error:
        raise ExportFailed(f"{model_id!r} could not be quantized by NNCF: {error_summary(error)}") from error
    del model, quantized
    return {**meta, "task": recipe.task, "precision": "int8", "model_file": IR_FILE, "runtime": "openvino",
            "quantization": (f"OpenVINO + NNCF static int8 (recipe {OV_RECIPE}): TRANSFORMER, MIXED preset, "
                             f"7-bit weights, calibrated on {len(feeds)} pairs of "
                             "search/backends/runtime/calibration_pairs.json; "
                             "fp32 kept: " + (", ".join(keep) or "nothing")),
            "fp32_nodes": keep, "calibration": len(feeds), "options": dataclasses.asdict(options),
            "versions": {"openvino": ov.__version__, "nncf": nncf.__version__}}
