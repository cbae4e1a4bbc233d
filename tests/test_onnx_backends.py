"""The ONNX Runtime backends ("onnx" exact, and the dynamic int8 that the "int8" backend runs without
openvino/nncf: built directly here) for the reranker and the encoder: against the torch backend, their
export cache (reused, rebuilt when broken, shared between processes), labels, progress
and cancellation, and how the loader chooses and falls back. Tiny local models only; exports take seconds.

The fidelity of "onnx" against an unbatched torch forward pass is tested with the torch backend's own
tests (tests/test_torch_reranker.py, parametrized over the exact backends)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest

from search.backends.onnx_encoder import OnnxEncoder
from search.backends.onnx_reranker import OnnxReranker
from search.backends.runtime import onnx_export
from search.backends.runtime.pairs import length_buckets
from search.inference import RerankCancelled, Reranker, RerankerUnavailable, TextEncoder
from search.loading import BACKENDS, auto_backends, load_encoder, load_reranker, resolve_backend
from search.models import (
    FALLBACK_DENSE_ID,
    LATE_INTERACTION_LABEL,
    MINILM_ID,
    MINILM_LABEL,
    bundled_minilm_path,
    model_spec,
)
from search.preparation import preparer
from tests.test_torch_reranker import CORPUS, PASSAGES, QUERY, reference_scores
from tests.tiny_models import build_tiny_xlmr_cross_encoder

ROOT = Path(__file__).resolve().parents[1]
MORE_PASSAGES = [f"{a} {b}" for a in PASSAGES for b in PASSAGES[::3]]  # 40 pairs of varied length
INT8_SPEARMAN_FLOOR = 0.9


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-onnx"), CORPUS)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    """An empty export cache for this test (backends built directly, not through the loader's caches). Forms
    earlier tests left to prepare in the background finish first: one writing into this cache meanwhile would
    race with the test's own export."""
    assert preparer().wait(timeout=900), "a background preparation of an earlier test did not finish"
    cache = tmp_path / "onnx-cache"
    monkeypatch.setenv(onnx_export.ONNX_CACHE_ENV, str(cache))
    return cache


def entry(cache: Path, task: str, precision: str) -> Path:
    found = list(cache.glob(f"*/*/{task}-{precision}"))
    assert len(found) == 1, found
    return found[0]


def ort_int8_reranker(folder: Path) -> OnnxReranker:
    """The int8 backend as it is without openvino/nncf (the loader's "int8" is OpenVINO's when installed)."""
    return OnnxReranker(str(folder), precision="int8")


def ort_int8_encoder() -> OnnxEncoder:
    return OnnxEncoder(MINILM_ID, "cpu", model_spec(MINILM_ID, "dense"), MINILM_LABEL,
                       str(bundled_minilm_path()), precision="int8")


def spearman(a, b) -> float:
    ranks_a, ranks_b = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ranks_a, ranks_b)[0, 1])


# -- the reranker ------------------------------------------------------------------------------------------

def test_onnx_reranker_is_exact_labelled_and_a_reranker(tiny_folder):
    reranker = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="onnx").model.inner

    assert isinstance(reranker, OnnxReranker) and isinstance(reranker, Reranker)
    assert (reranker.backend, reranker.label) == ("onnx", f"{tiny_folder} · onnx")
    assert reranker.export.meta["fusion"] == "2 of 2 attention layers fused", reranker.export.meta
    scores = reranker.score(QUERY, MORE_PASSAGES)
    expected = reference_scores(tiny_folder, QUERY, MORE_PASSAGES, 512)
    assert [s.raw for s in scores] == pytest.approx(expected, abs=1e-4)
    # The word embeddings were set aside in their own file (never through the exporter or the fusion).
    config = json.loads((tiny_folder / "config.json").read_text())
    vocab, hidden = config["vocab_size"], config["hidden_size"]
    assert reranker.export.meta["files"]["word_embeddings.bin"] == vocab * hidden * 4, reranker.export.meta["files"]
    graph = onnx.load(str(reranker.export.model_path), load_external_data=False).graph
    tables = [tensor for tensor in graph.initializer if tensor.data_location == onnx.TensorProto.EXTERNAL]
    assert [(list(t.dims), t.external_data[0].value) for t in tables] == [([vocab, hidden], "word_embeddings.bin")]


def test_int8_reranker_keeps_the_ranking_and_says_it_is_quantized(tiny_folder):
    fp32 = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="onnx").model.inner
    int8 = ort_int8_reranker(tiny_folder)

    assert (int8.backend, int8.label) == ("int8", f"{tiny_folder} · onnx int8 (quantized)")
    exact = [s.raw for s in fp32.score(QUERY, MORE_PASSAGES)]
    quantized = [s.raw for s in int8.score(QUERY, MORE_PASSAGES)]
    correlation = spearman(exact, quantized)
    # Measured 0.99 on this random model (logits spread over about 8); real weights are tested in
    # tests/test_onnx_quality.py.
    assert correlation >= INT8_SPEARMAN_FLOOR, f"Spearman int8 vs fp32 {correlation:.4f}"
    assert quantized != pytest.approx(exact, abs=1e-4), "int8 should not be the fp32 graph"


def test_int8_quantizes_only_the_layer_weights(tiny_folder):
    int8 = ort_int8_reranker(tiny_folder)
    graph = onnx.load(str(int8.export.model_path)).graph
    ops = Counter(node.op_type for node in graph.node)
    initializers = {tensor.name: tensor.data_type for tensor in graph.initializer}

    assert ops["MatMulInteger"] == 3 * 2, ops  # attention output, intermediate, output per layer
    assert not any(("classifier" in node.name or node.name.startswith("logits")) and node.op_type == "MatMulInteger"
                   for node in graph.node), "the classification head stays fp32"
    embeddings = [name for name in initializers if "embeddings" in name]
    assert embeddings and all(initializers[name] == onnx.TensorProto.FLOAT for name in embeddings)


def test_progress_and_should_stop(tiny_folder):
    reranker = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="onnx").model.inner
    lengths = [len(ids) for ids in reranker.pair_token_ids(QUERY, PASSAGES)]
    sizes = [len(batch) for batch in length_buckets(lengths, 3)]
    seen: list[int] = []

    reranker.score(QUERY, PASSAGES, batch_size=3, progress=lambda done, total: seen.append(done))
    assert seen == [sum(sizes[:n]) for n in range(1, len(sizes) + 1)] and seen[-1] == len(PASSAGES)

    seen.clear()
    with pytest.raises(RerankCancelled) as cancelled:
        reranker.score(QUERY, PASSAGES, batch_size=3, progress=lambda done, total: seen.append(done),
                       should_stop=lambda: len(seen) >= 2)
    assert len(seen) == 2, "no batch may start after should_stop said stop"
    assert cancelled.value.done == seen[-1] and len(cancelled.value.partial) == seen[-1]


def test_the_onnx_backend_refuses_what_torch_refuses(tmp_path):
    folder = build_tiny_xlmr_cross_encoder(tmp_path / "two-labels", CORPUS, num_labels=2)
    with pytest.raises(RerankerUnavailable, match="num_labels=2"):
        load_reranker(str(folder), "cpu", fallback=False, backend="onnx")
    with pytest.raises(RerankerUnavailable, match="no model folder"):
        load_reranker(str(tmp_path / "missing"), "cpu", fallback=False, backend="int8")
    with pytest.raises(ValueError, match="CPU only"):
        OnnxReranker(str(folder), "cuda:0")


# -- the export cache --------------------------------------------------------------------------------------

def test_the_export_is_reused_by_a_second_load(tiny_folder, fresh_cache):
    first = OnnxReranker(str(tiny_folder))
    folder = entry(fresh_cache, "reranker", "fp32")
    stamp = (folder / "model.onnx").stat().st_mtime_ns

    second = OnnxReranker(str(tiny_folder))

    assert second.export.folder == folder and (folder / "model.onnx").stat().st_mtime_ns == stamp
    assert second.export.meta == first.export.meta, "not exported again"
    assert [p.name for p in folder.parent.iterdir()] == ["reranker-fp32"], "no temporary folder left behind"


def test_another_process_reuses_the_export(tiny_folder, fresh_cache):
    OnnxReranker(str(tiny_folder), precision="int8")
    stamps = {p: p.stat().st_mtime_ns for p in fresh_cache.rglob("model.onnx")}
    script = ("import json, sys; from search.backends.onnx_reranker import OnnxReranker; "
              "r = OnnxReranker(sys.argv[1], precision='int8'); "
              "print(json.dumps([s.raw for s in r.score('Which river flows through Berlin?', ['The Spree.'])]))")
    done = subprocess.run([sys.executable, "-c", script, str(tiny_folder)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, onnx_export.ONNX_CACHE_ENV: str(fresh_cache)}, timeout=300, check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    assert "exported" not in done.stderr
    assert {p: p.stat().st_mtime_ns for p in fresh_cache.rglob("model.onnx")} == stamps
    assert len(json.loads(done.stdout.splitlines()[-1])) == 1


@pytest.mark.parametrize("damage", ["no meta", "truncated", "garbage of the same size", "empty folder"])
def test_a_broken_cache_entry_is_rebuilt(tiny_folder, fresh_cache, damage):
    OnnxReranker(str(tiny_folder))
    folder = entry(fresh_cache, "reranker", "fp32")
    model = folder / "model.onnx"
    if damage == "no meta":
        (folder / "meta.json").unlink()
    elif damage == "truncated":
        model.write_bytes(model.read_bytes()[:1000])
    elif damage == "garbage of the same size":
        model.write_bytes(b"\0" * model.stat().st_size)
    else:
        for path in folder.iterdir():
            path.unlink()

    rebuilt = OnnxReranker(str(tiny_folder))

    assert rebuilt.export.folder == folder and json.loads((folder / "meta.json").read_text())["files"]
    expected = reference_scores(tiny_folder, QUERY, PASSAGES, 512)
    assert [s.raw for s in rebuilt.score(QUERY, PASSAGES)] == pytest.approx(expected, abs=1e-4)


def test_external_data_and_the_unfused_graph_stay_exact(tiny_folder, fresh_cache, monkeypatch):
    # What bge-reranker-v2-m3 gets: weights beside the graph (over 2 GB) and no Python fusion (memory).
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 0)
    monkeypatch.setattr(onnx_export, "FUSION_MAX_BYTES", 0)

    reranker = OnnxReranker(str(tiny_folder))

    assert reranker.export.meta["fusion"].startswith("skipped"), reranker.export.meta
    assert set(reranker.export.meta["files"]) == {"model.onnx", "model.onnx.data", "word_embeddings.bin"}
    expected = reference_scores(tiny_folder, QUERY, PASSAGES, 512)
    assert [s.raw for s in reranker.score(QUERY, PASSAGES)] == pytest.approx(expected, abs=1e-4)
    int8 = OnnxReranker(str(tiny_folder), precision="int8")
    # On the 40 pairs of MORE_PASSAGES, as the int8 test above: over the 10 of PASSAGES one swap of two
    # near-tied random logits already takes Spearman below the floor (0.879 in one clean CI run).
    exact = [s.raw for s in reranker.score(QUERY, MORE_PASSAGES)]
    correlation = spearman(exact, [s.raw for s in int8.score(QUERY, MORE_PASSAGES)])
    assert correlation >= INT8_SPEARMAN_FLOOR, f"Spearman int8 vs fp32 {correlation:.4f}"


def test_a_changed_checkpoint_gets_a_new_cache_entry(tiny_folder, tmp_path):
    copy = build_tiny_xlmr_cross_encoder(tmp_path / "other-seed", CORPUS, seed=1)
    assert onnx_export.weights_key(copy) != onnx_export.weights_key(tiny_folder)
    assert onnx_export.weights_key(tiny_folder) == onnx_export.weights_key(tiny_folder)


# -- the encoder -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def minilm_torch():
    return load_encoder(MINILM_ID, "cpu", backend="torch")


@pytest.mark.parametrize("backend, max_distance", [("onnx", 1e-5), ("int8", 0.03)])
def test_onnx_encoders_against_torch(minilm_torch, backend, max_distance):
    encoder = load_encoder(MINILM_ID, "cpu", backend=backend) if backend == "onnx" else ort_int8_encoder()
    assert isinstance(encoder, OnnxEncoder) and isinstance(encoder, TextEncoder)
    quantized = " int8 (quantized)" if backend == "int8" else ""
    assert (encoder.backend, encoder.label) == (backend, f"{MINILM_LABEL} · onnx{quantized}")
    assert (encoder.dimension, encoder.max_length) == (minilm_torch.dimension, minilm_torch.max_length)
    texts = [*PASSAGES, " ".join(PASSAGES * 4)]  # the last one is cut at max_length

    got = encoder.embed(texts, is_query=False, batch_size=3)
    expected = minilm_torch.embed(texts, is_query=False)

    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and got.shape == expected.shape
    distance = 1 - (got * expected).sum(axis=1)
    assert distance.max() <= max_distance, distance
    tokens, expected_tokens = encoder.token_embeddings(texts), minilm_torch.token_embeddings(texts)
    assert [t.shape for t in tokens] == [t.shape for t in expected_tokens]
    if backend == "onnx":
        assert all(np.abs(a - b).max() < 1e-4 for a, b in zip(tokens, expected_tokens, strict=True))


def test_int8_embeddings_move_a_little_with_the_batch():
    # Dynamic quantization scales activations per batch (per tensor), so an int8 embedding depends slightly
    # on the texts batched with it; the exact backends don't (tests/test_dense.py).
    encoder = ort_int8_encoder()
    alone = np.vstack([encoder.embed([text], is_query=False) for text in PASSAGES])
    batched = encoder.embed(PASSAGES, is_query=False, batch_size=len(PASSAGES))
    distance = 1 - (alone * batched).sum(axis=1)
    assert 0 < distance.max() <= 0.02, distance


def test_encoder_progress_and_empty_input():
    encoder = load_encoder(MINILM_ID, "cpu", backend="onnx")
    seen: list[tuple[int, int]] = []
    encoder.embed(PASSAGES, is_query=True, batch_size=4, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert encoder.embed([], is_query=True).shape == (0, encoder.dimension)
    assert encoder.token_embeddings([]) == []
    with pytest.raises(ValueError, match="CPU only"):
        OnnxEncoder(MINILM_ID, "cuda", model_spec(MINILM_ID, "dense"), MINILM_LABEL,
                    str(bundled_minilm_path()))


def test_late_interaction_over_int8_says_what_really_runs():
    # The bundled e5 has an int8 form: asked for on int8, the late-interaction fallback runs it and says so,
    # with score-cache keys of its own; its scores stay close to the torch form's.
    torch_based = load_reranker("late-interaction", "cpu", backend="torch").model
    int8_based = load_reranker("late-interaction", "cpu", backend="int8").model
    assert torch_based.label == LATE_INTERACTION_LABEL
    assert int8_based.label.startswith(f"{LATE_INTERACTION_LABEL} · ") and "quantized" in int8_based.label
    assert int8_based.inner.encoder is load_encoder(FALLBACK_DENSE_ID, "cpu", backend="int8"), "one e5 per form"
    assert int8_based.backend != torch_based.backend, "the score cache keys differ"
    exact = [s.raw for s in torch_based.score(QUERY, PASSAGES[:3])]
    assert [s.raw for s in int8_based.score(QUERY, PASSAGES[:3])] == pytest.approx(exact, abs=0.02)


# -- choosing a backend ------------------------------------------------------------------------------------

def test_backends_and_the_auto_order():
    assert BACKENDS == ("auto", "torch", "onnx", "int8", "tei")
    assert auto_backends("auto", "cuda") == ("torch",) and resolve_backend("auto", "cuda:1") == "torch"
    assert "int8" not in auto_backends("auto", "cpu"), "auto never picks an approximate backend"
    assert auto_backends("auto", "cpu")[-1] == "torch", "torch is the last resort"
    assert auto_backends(" INT8 ", "cpu") == ("int8",)


def test_auto_falls_back_to_torch_when_the_export_cannot_be_written(tmp_path, monkeypatch, caplog):
    if auto_backends("auto", "cpu")[0] != "onnx":
        pytest.skip("auto does not pick onnx on the CPU")
    folder = build_tiny_xlmr_cross_encoder(tmp_path / "unexportable", CORPUS, seed=2)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    monkeypatch.setenv(onnx_export.ONNX_CACHE_ENV, str(blocked))

    loaded = load_reranker(str(folder), "cpu", fallback=False)

    assert loaded.model.backend == "torch" and not loaded.is_fallback
    assert "backend auto: onnx can't run" in caplog.text and "using torch" in caplog.text
    with pytest.raises(RerankerUnavailable, match="ONNX Runtime"):
        load_reranker(str(folder), "cpu", fallback=False, backend="onnx")


class _Embedded:
    """A stand-in model with only input embeddings, for `_embeddings_aside`."""

    def __init__(self, embedding) -> None:
        self.embedding = embedding

    def get_input_embeddings(self):
        return self.embedding


@pytest.mark.parametrize(("options", "set_aside"), [
    ({"padding_idx": 1}, True),  # XLM-R's and BERT's pad ids sit within the placeholder's rows
    ({"padding_idx": 50}, False),  # a pad row past them would fail the trace (ModernBERT: 50283)
    ({"max_norm": 1.0}, False),  # renormalises rows in place while tracing
])
def test_word_embeddings_set_aside_only_when_the_trace_can_run_on_the_placeholder(options, set_aside):
    import torch

    embedding = torch.nn.Embedding(100, 4, **options)
    full = embedding.weight
    with onnx_export._embeddings_aside(_Embedded(embedding)) as aside:
        if set_aside:
            assert aside is not None and tuple(aside.shape) == (100, 4)
            assert embedding.num_embeddings == 100 and embedding.weight.shape[0] == onnx_export._PLACEHOLDER_ROWS
        else:
            assert aside is None, f"{options}: the table must be exported whole"
            assert embedding.weight is full
    assert embedding.weight is full, "the model gets its table back"
