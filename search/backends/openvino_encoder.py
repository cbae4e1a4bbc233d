"""The OpenVINO static int8 dense encoder, what the ``"int8"`` backend runs when openvino and nncf are
installed: the encoder quantized once by NNCF (`search.openvino_int8`, the reranker's recipe; the
word-embedding table stays fp32), calibrated on the queries and passages of the bundled calibration
pairs with the model's own prefixes, and run by OpenVINO on the CPU. Without them, or when quantizing
fails, ONNX Runtime's dynamic int8 (`OnnxEncoder(precision="int8")`). Pooling, prefixes and batching
are the onnx encoder's, unchanged; labelled as quantized with its measured retention.
"""

from __future__ import annotations

import logging

import numpy as np

from ..models import ModelSpec
from ..onnx_export import ExportFailed, ExportRecipe
from ..openvino_int8 import calibration_pairs, openvino_available, quantized_session, require_openvino
from .onnx_encoder import OnnxEncoder
from .openvino_reranker import BACKEND_LABEL

logger = logging.getLogger(__name__)


class OpenVinoEncoder(OnnxEncoder):
    """A transformers encoder quantized to static int8 and run by OpenVINO on the CPU. Arguments and
    errors as `OnnxEncoder`'s (ImportError without openvino/nncf, ValueError when quantizing fails)."""

    def __init__(self, model_id: str, device: str, spec: ModelSpec, label: str, path: str | None = None) -> None:
        require_openvino()
        super().__init__(model_id, device, spec, label, path, precision="int8")
        self.label = f"{label} · {BACKEND_LABEL}"

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
