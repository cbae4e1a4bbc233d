"""The ONNX Runtime encoder backends: the same dense encoders as the torch backend (each model's pooling,
prefixes and length), exported once to ONNX (`runtime.onnx_export`) and run on the CPU.

- ``"onnx"``: the fp32 graph with ONNX Runtime's transformer fusions; exact (cosine distance to torch's
  embeddings about 1e-7).
- ``"int8"``: `OpenVinoEncoder` when openvino and nncf are installed: the encoder quantized once to
  static int8 by NNCF (`runtime.openvino_int8`, the reranker's recipe; the word-embedding table stays
  fp32), calibrated on the queries and passages of the bundled calibration pairs with the model's own
  prefixes, and run by OpenVINO; else, or when quantizing fails, the ONNX graph with int8 MatMul weights
  (ONNX Runtime's dynamic quantization). `int8_encoder` chooses. Approximate, labelled as quantized.

Texts are tokenised by the model's own tokenizer, sorted by token length and run in right-padded
batches. Loads safetensors weights only and never runs remote code.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence

import numpy as np

from ..inference import ProgressFn
from ..models import ModelSpec, load_kwargs, pretrained_source
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
from .runtime.pairs import length_buckets

logger = logging.getLogger(__name__)

BACKEND_LABELS: dict[Precision, str] = {"fp32": "onnx", "int8": "onnx int8 (quantized)"}
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class OnnxEncoder:
    """A transformers encoder run by ONNX Runtime on the CPU, from an export cached on disk, with its
    tokenizer and conventions (`spec`: pooling, prefixes, max length).

    Arguments as `TorchEncoder`'s, plus `precision` (``"fp32"`` for the ``"onnx"`` backend, ``"int8"``
    for the ``"int8"`` one). `label` says the backend: ``all-MiniLM-L6-v2 (...) · onnx``. Raises OSError,
    ValueError or ImportError saying why the model can't be loaded, exported or run (ValueError for a
    device other than the CPU). Thread-safe for inference (ONNX Runtime sessions are).
    """

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None, *,
                 precision: Precision = "fp32") -> None:
        from transformers import AutoConfig, AutoTokenizer

        if device != "cpu":
            raise ValueError(f"the onnx backends run on the CPU only, not device={device!r}; use --device cpu, "
                             "or --backend torch on a GPU")
        require_onnxruntime()
        location = os.path.expanduser(path or model_id)  # the bundled model has a Hub id but a package folder
        source = pretrained_source(location)
        self.model_id = model_id
        self.device = device
        self.spec = spec
        self.precision = precision
        self.backend = "onnx" if precision == "fp32" else "int8"
        self.dtype = "float32" if precision == "fp32" else "int8"
        self.label = f"{label} · {BACKEND_LABELS[precision]}"
        self.tokenizer = AutoTokenizer.from_pretrained(location, **source, trust_remote_code=False)
        config = AutoConfig.from_pretrained(location, **source, trust_remote_code=False)
        self.max_length = min(spec.max_length, int(getattr(self.tokenizer, "model_max_length", 512) or 512))
        self.dimension = int(config.hidden_size)
        folder = model_folder(location, source)
        names = tuple(name for name in _INPUTS if name in self.tokenizer.model_input_names)
        recipe = ExportRecipe("encoder", lambda: _load_for_export(folder, source), names, "last_hidden_state",
                              output_is_sequence=True, size=ModelSize.from_config(config))
        self.export, self.session = self._open(model_id, folder, recipe)

    def _open(self, model_id: str, folder, recipe: ExportRecipe):
        """The (Export, session) that runs the model: ONNX Runtime here, OpenVINO in the subclass."""
        return _open(model_id, folder, recipe, self.precision)

    def __repr__(self) -> str:
        return f"OnnxEncoder({self.model_id!r}, precision={self.precision!r}, max_length={self.max_length})"

    def embed(self, texts: Sequence[str], *, is_query: bool, batch_size: int = 32,
              progress: ProgressFn | None = None) -> np.ndarray:
        """Return L2-normalised float32 embeddings, one row per text, in input order.

        `is_query` picks the model's query or passage prefix (``query: `` / ``passage: `` for E5).
        """
        prefix = self.spec.query_prefix if is_query else self.spec.passage_prefix
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for done, positions, hidden, mask, _ in self._batches(texts, prefix, batch_size):
            if self.spec.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                weights = mask[..., None].astype(hidden.dtype)
                pooled = (hidden * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
            out[positions] = _normalise(pooled) if self.spec.normalize else pooled
            if progress is not None:
                progress(done, len(texts))
        return np.ascontiguousarray(out)

    def token_embeddings(self, texts: Sequence[str], *, batch_size: int = 32) -> list[np.ndarray]:
        """Return, per text, its L2-normalised token vectors (n_tokens, dim), without padding and the
        [CLS]/[SEP]-like markers. Used for late-interaction (MaxSim) scoring."""
        out: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        # As the torch encoder: [UNK] is kept, it is all the model sees of an unknown script.
        special = list(set(self.tokenizer.all_special_ids) - {self.tokenizer.unk_token_id})
        for _, positions, hidden, mask, ids in self._batches(texts, "", batch_size):
            vectors = _normalise(hidden)
            keep = mask.astype(bool) & ~np.isin(ids, special)
            for row, position in enumerate(positions):
                out[position] = np.ascontiguousarray(vectors[row][keep[row]])
        return out

    def _batches(self, texts: Sequence[str], prefix: str,
                 batch_size: int) -> Iterator[tuple[int, list[int], np.ndarray, np.ndarray, np.ndarray]]:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        if not texts:
            return
        encoded = self.tokenizer([prefix + text for text in texts], truncation=True, max_length=self.max_length)
        rows = [{key: encoded[key][i] for key in encoded.keys()} for i in range(len(texts))]
        done = 0
        # Sorted by token length, so each batch pads little (a batch by size only: the sort keeps it tight).
        for positions in length_buckets([len(row["input_ids"]) for row in rows], batch_size, max_padding=1.0):
            batch = self.tokenizer.pad([rows[i] for i in positions], padding=True, padding_side="right",
                                       return_tensors="np")
            feed = {name: np.asarray(batch[name], dtype=np.int64) for name in self.export.input_names}
            hidden = self.session.run(None, feed)[0]
            done += len(positions)
            yield done, positions, hidden, feed["attention_mask"], feed["input_ids"]


class OpenVinoEncoder(OnnxEncoder):
    """A transformers encoder quantized to static int8 and run by OpenVINO on the CPU. Arguments and
    errors as `OnnxEncoder`'s (ImportError without openvino/nncf, ValueError when quantizing fails)."""

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None) -> None:
        require_openvino()
        super().__init__(model_id, device, spec, label, path, precision="int8")
        self.label = f"{label} · {OPENVINO_LABEL}"

    def __repr__(self) -> str:
        return f"OpenVinoEncoder({self.model_id!r}, max_length={self.max_length})"

    def _open(self, model_id: str, folder, recipe: ExportRecipe):
        def calibration() -> list[dict[str, np.ndarray]]:
            pairs = calibration_pairs()
            texts = [self.spec.query_prefix + q for q in dict.fromkeys(q for q, _ in pairs)]
            texts += [self.spec.passage_prefix + p for _, p in pairs]
            feeds = []
            for text in texts:
                encoded = self.tokenizer([text], truncation=True, max_length=self.max_length, return_tensors="np")
                feeds.append({name: np.asarray(encoded[name], dtype=np.int64) for name in recipe.input_names})
            return feeds

        try:
            return quantized_session(model_id, folder, recipe, calibration)
        except ExportFailed as error:
            raise ValueError(f"{error}; --backend onnx runs it exactly, without int8") from error


def int8_encoder(model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None) -> OnnxEncoder:
    """The ``"int8"`` backend: `OpenVinoEncoder` when openvino and nncf are installed and it can quantize
    the model, else ONNX Runtime's dynamic int8 (logged with the reason)."""
    if openvino_available():
        try:
            return OpenVinoEncoder(model_id, device, spec, label, path)
        except ValueError as error:
            if "could not be quantized" not in str(error):
                raise
            logger.warning("%s; using ONNX Runtime's dynamic int8 instead", error)
    return OnnxEncoder(model_id, device, spec, label, path, precision="int8")


def _load_for_export(folder, source: dict[str, object]):
    from transformers import AutoModel

    # Eager attention: the exported MatMul/Softmax attention is what ONNX Runtime fuses into Attention.
    model = AutoModel.from_pretrained(str(folder), **source, **load_kwargs("cpu"), attn_implementation="eager")
    return model.float().eval()


def _open(model_id: str, folder, recipe: ExportRecipe, precision: Precision):
    try:
        return exported_session(model_id, folder, recipe, precision)
    except ExportFailed as error:
        raise ValueError(f"{error}; --backend torch runs it without ONNX") from error


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)
