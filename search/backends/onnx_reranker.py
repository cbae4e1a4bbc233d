"""The ONNX Runtime reranker backends: the same cross-encoders as the torch backend, exported once to ONNX
(`runtime.onnx_export`) and run on the CPU.

- ``"onnx"``: the fp32 graph with ONNX Runtime's transformer fusions; exact (scores match torch within
  1e-6) and faster than torch on a CPU (see docs/models.md).
- ``"int8"``: `OpenVinoReranker` when openvino and nncf are installed: the model quantized once to
  static int8 by NNCF (`runtime.openvino_int8`: calibrated int8 weights and activations, embeddings and
  the classification head fp32) and run by OpenVINO; else, or when quantizing fails, the ONNX graph with
  int8 MatMul weights (ONNX Runtime's dynamic quantization). `int8_reranker` chooses. Faster than fp32
  and approximate: labelled as quantized wherever it is shown, the OpenVINO one with the retention the
  recipe measured on trained weights (`runtime.openvino_int8.BACKEND_LABEL`).

Pairs are tokenised, truncated and batched exactly as by the torch backend (`runtime.pairs`) with the
model's own tokenizer. Loads safetensors weights only and never runs remote code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from ..inference import PairScore, ProgressFn, RerankerUnavailable, StopFn
from ..models import error_summary, load_kwargs, pretrained_source
from .runtime.costs import ModelSize
from .runtime.onnx_export import (
    ExportFailed,
    ExportRecipe,
    Precision,
    exported_session,
    model_folder,
    require_onnxruntime,
)
from .runtime.openvino_int8 import BACKEND_LABEL as OPENVINO_LABEL
from .runtime.openvino_int8 import calibration_pairs, openvino_available, quantized_session, require_openvino
from .runtime.pairs import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_PADDING,
    PairTokenizer,
    Row,
    check_batching,
    check_one_logit_classifier,
    check_trained_head,
    score_in_buckets,
)

logger = logging.getLogger(__name__)

BACKEND_LABELS: dict[Precision, str] = {"fp32": "onnx", "int8": "onnx int8 (quantized)"}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxReranker:
    """A one-logit cross-encoder run by ONNX Runtime on the CPU, from an export cached on disk.

    `precision` ``"fp32"`` is the ``"onnx"`` backend, ``"int8"`` the ``"int8"`` one. The first load of a
    model exports it (seconds for a small model, a few minutes for bge-reranker-base); later loads, in
    any process, open the cached export. `label` says the backend: ``BAAI/bge-reranker-base · onnx int8
    (quantized)``.

    Raises RerankerUnavailable when the model can't be loaded, exported or opened, or is not a one-logit
    classifier (the message says why), and ValueError for a device other than the CPU.
    """

    is_cross_encoder = True
    remote = False

    def __init__(self, model_id: str, device: str = "cpu", *, precision: Precision = "fp32",
                 batch_size: int = DEFAULT_BATCH_SIZE, max_padding: float = DEFAULT_MAX_PADDING) -> None:
        if device != "cpu":
            raise ValueError(f"the onnx backends run on the CPU only, not device={device!r}; use --device cpu, "
                             "or --backend torch on a GPU")
        check_batching(batch_size, max_padding)
        self.model_id = model_id
        self.precision = precision
        self.backend = "onnx" if precision == "fp32" else "int8"
        self.dtype = "float32" if precision == "fp32" else "int8"
        self.label = f"{model_id} · {BACKEND_LABELS[precision]}"
        self.device = device
        self.batch_size = batch_size
        self.max_padding = max_padding
        try:
            require_onnxruntime()
        except ImportError as error:
            raise RerankerUnavailable(str(error)) from error
        self.tokenizer, config, folder, source = _load_tokenizer_and_config(model_id)
        self.pairs = PairTokenizer(model_id, self.tokenizer, config)
        self.max_length = self.pairs.max_length
        self.max_query_tokens = self.pairs.max_query_tokens
        names = tuple(name for name in _INPUTS if name in self.tokenizer.model_input_names)
        recipe = ExportRecipe("reranker", lambda: _load_for_export(model_id, folder, source), names, "logits",
                              output_is_sequence=False, size=ModelSize.from_config(config))
        self.export, self.session = self._open(model_id, folder, recipe)

    def _open(self, model_id: str, folder, recipe: ExportRecipe):
        """The (Export, session) that runs the model: ONNX Runtime here, OpenVINO in the subclass."""
        return _open(model_id, folder, recipe, self.precision)

    def __repr__(self) -> str:
        return f"OnnxReranker({self.model_id!r}, precision={self.precision!r}, max_length={self.max_length})"

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None, batch_size: int | None = None,
              max_padding: float | None = None) -> list[PairScore]:
        """Return raw logits and their sigmoids for `passages` against `query`, in input order.

        As `CrossEncoderReranker.score`: progress after every batch, `should_stop` polled before every
        batch (RerankCancelled with the finished scores), `batch_size` / `max_padding` overrides. Raises
        ValueError for an empty query or a bad batch setting.
        """
        names = self.export.input_names

        def run_batch(rows: Sequence[Row]) -> list[float]:
            batch = self.pairs.pad(rows, "np")
            feed = {name: np.asarray(batch[name], dtype=np.int64) for name in names}
            return self.session.run(None, feed)[0][:, 0].astype(np.float64).tolist()

        return score_in_buckets(self.pairs, query, passages, run_batch,
                                batch_size=self.batch_size if batch_size is None else batch_size,
                                max_padding=self.max_padding if max_padding is None else max_padding,
                                progress=progress, should_stop=should_stop)

    def passage_caching(self) -> None:
        """None: a cross-encoder reads every (query, passage) pair whole (see `Reranker`)."""
        return None

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int]:
        """Return the tokens each (query, passage) pair takes before truncation (see `Reranker`)."""
        return self.pairs.pair_lengths(query, passages)

    def pair_token_ids(self, query: str, passages: Sequence[str]) -> list[list[int]]:
        """Return the token ids the model reads for each pair, after truncation (to show what was cut)."""
        rows, _, _ = self.pairs.encode(query, passages)
        return [list(row["input_ids"]) for row in rows]


class OpenVinoReranker(OnnxReranker):
    """A one-logit cross-encoder quantized to static int8 and run by OpenVINO on the CPU.

    Arguments, scoring and errors as `OnnxReranker`'s (RerankerUnavailable when the model can't be
    loaded, quantized or compiled, or openvino/nncf are missing). The first load quantizes the model:
    seconds for a small one, about 5 minutes for bge-reranker-base on 2 CPUs.
    """

    def __init__(self, model_id: str, device: str = "cpu", **options) -> None:
        try:
            require_openvino()
        except ImportError as error:
            raise RerankerUnavailable(str(error)) from error
        super().__init__(model_id, device, precision="int8", **options)
        self.label = f"{model_id} · {OPENVINO_LABEL}"

    def __repr__(self) -> str:
        return f"OpenVinoReranker({self.model_id!r}, max_length={self.max_length})"

    def _open(self, model_id: str, folder, recipe: ExportRecipe):
        def calibration() -> list[dict[str, np.ndarray]]:
            feeds = []
            for query, passage in calibration_pairs():
                rows, _, _ = self.pairs.encode(query, [passage])
                batch = self.pairs.pad(rows, "np")
                feeds.append({name: np.asarray(batch[name], dtype=np.int64) for name in recipe.input_names})
            return feeds

        try:
            return quantized_session(model_id, folder, recipe, calibration)
        except (ExportFailed, OSError) as error:
            raise RerankerUnavailable(f"reranker {model_id!r} could not be quantized by OpenVINO/NNCF: "
                                      f"{error_summary(error)}") from error


def int8_reranker(model_id: str, device: str = "cpu", **options) -> OnnxReranker:
    """The ``"int8"`` backend: `OpenVinoReranker` when openvino and nncf are installed and it can
    quantize the model, else ONNX Runtime's dynamic int8 (logged with the reason)."""
    if openvino_available():
        try:
            return OpenVinoReranker(model_id, device, **options)
        except RerankerUnavailable as error:
            if "could not be quantized" not in str(error):
                raise  # the model itself can't be loaded: ONNX Runtime can't either
            logger.warning("%s; using ONNX Runtime's dynamic int8 instead", error)
    else:
        logger.info("int8: openvino/nncf are not installed, using ONNX Runtime's dynamic int8")
    return OnnxReranker(model_id, device, precision="int8", **options)


def _load_tokenizer_and_config(model_id: str):
    from transformers import AutoConfig, AutoTokenizer

    location = os.path.expanduser(model_id)
    try:
        source = pretrained_source(location)
        config = AutoConfig.from_pretrained(location, **source, trust_remote_code=False)
        check_one_logit_classifier(model_id, config)
        tokenizer = AutoTokenizer.from_pretrained(location, **source, trust_remote_code=False)
        folder = model_folder(location, source)
    except RerankerUnavailable:
        raise
    except (OSError, ValueError, ImportError, KeyError) as error:
        raise RerankerUnavailable(f"reranker {model_id!r} could not be loaded: {_first_line(error)}") from error
    return tokenizer, config, folder, source


def _load_for_export(model_id: str, folder, source: dict[str, object]):
    from transformers import AutoModelForSequenceClassification

    # Eager attention: the legacy exporter then writes attention as MatMul/Softmax, which ONNX Runtime's
    # optimizer fuses into Attention; SDPA's graph is left unfused (slower).
    model, info = AutoModelForSequenceClassification.from_pretrained(
        str(folder), **source, **load_kwargs("cpu"), attn_implementation="eager", output_loading_info=True)
    check_trained_head(model_id, info.get("missing_keys") or ())
    return model.float().eval()


def _open(model_id: str, folder, recipe: ExportRecipe, precision: Precision):
    try:
        return exported_session(model_id, folder, recipe, precision)
    except (ExportFailed, OSError) as error:
        raise RerankerUnavailable(f"reranker {model_id!r} could not be run by ONNX Runtime: "
                                  f"{error_summary(error)}; --backend torch runs it without ONNX.") from error


def _first_line(error: BaseException) -> str:
    return error_summary(error).rstrip(".") + "."
