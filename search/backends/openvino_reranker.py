"""The OpenVINO static int8 reranker, what the ``"int8"`` backend runs when openvino and nncf are
installed: the cross-encoder quantized once by NNCF (`search.openvino_int8`: calibrated int8 weights and
activations, embeddings and the classification head fp32) and run by OpenVINO on the CPU; without them,
or when quantizing fails, ONNX Runtime's dynamic int8 (`OnnxReranker(precision="int8")`).

Approximate, so labelled as quantized with what it kept on trained weights: ``BAAI/bge-reranker-v2-m3 ·
int8 (quantized, OpenVINO static; 99.x% of fp32 nDCG@10)``, the retention of the same recipe on the
bundled all-MiniLM-L6-v2 (`MEASURED_RETENTION`; the README's *Models* section has the measurements).
Tokenising, truncating, batching and scoring are the onnx backend's, unchanged.
"""

from __future__ import annotations

import logging

import numpy as np

from ..inference import RerankerUnavailable
from ..models import error_summary
from ..onnx_export import ExportFailed, ExportRecipe
from ..openvino_int8 import calibration_pairs, openvino_available, quantized_session, require_openvino
from .onnx_reranker import OnnxReranker

logger = logging.getLogger(__name__)

# English XQuAD dense nDCG@10 of the bundled all-MiniLM-L6-v2 quantized with this recipe, over fp32
# (tests/test_onnx_quality.py checks it stays at least 99%).
MEASURED_RETENTION = "99.9%"
BACKEND_LABEL = f"int8 (quantized, OpenVINO static; {MEASURED_RETENTION} of fp32 nDCG@10)"


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
        self.label = f"{model_id} · {BACKEND_LABEL}"

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
