"""The OpenVINO static int8 backends (what "int8" runs when openvino and nncf are installed): quantized with
the word embeddings and the classification head kept fp32, ranking close to fp32 on the tiny model,
labelled as quantized, cached like the ONNX exports (reused across processes, rebuilt when broken), and
the fallback to ONNX Runtime's dynamic int8 without openvino/nncf or when quantizing fails. Tiny local
models and the bundled MiniLM only; quantizing takes seconds. Real-weight quality: tests/test_onnx_quality.py.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from search.backends import onnx_encoder, onnx_reranker
from search.backends.onnx_encoder import OnnxEncoder, OpenVinoEncoder, int8_encoder
from search.backends.onnx_reranker import OnnxReranker, OpenVinoReranker, int8_reranker
from search.backends.runtime import onnx_export, openvino_int8
from search.backends.runtime.openvino_int8 import BACKEND_LABEL
from search.inference import Reranker, RerankerUnavailable
from search.loading import load_encoder, load_reranker
from search.models import MINILM_ID, MINILM_LABEL, bundled_minilm_path, model_spec
from search.preparation import preparer
from tests.test_onnx_backends import INT8_SPEARMAN_FLOOR, MORE_PASSAGES, spearman
from tests.test_torch_reranker import CORPUS, PASSAGES, QUERY
from tests.tiny_models import build_tiny_xlmr_cross_encoder

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.skipif(not openvino_int8.openvino_available(),
                                reason="openvino and nncf are not installed (the [openvino] extra)")


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-openvino"), CORPUS)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    assert preparer().wait(timeout=900), "a background preparation of an earlier test did not finish"
    cache = tmp_path / "onnx-cache"
    monkeypatch.setenv(onnx_export.ONNX_CACHE_ENV, str(cache))
    return cache


def the_entry(cache: Path) -> Path:
    found = list(cache.glob(f"*/*/reranker-int8-openvino-r{openvino_int8.OV_RECIPE}"))
    assert len(found) == 1, found
    return found[0]


# -- the reranker ------------------------------------------------------------------------------------------

def test_int8_is_openvino_static_keeps_the_ranking_and_says_it_is_quantized(tiny_folder):
    fp32 = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="onnx").model.inner
    int8 = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="int8").model.inner

    assert isinstance(int8, OpenVinoReranker) and isinstance(int8, Reranker)
    assert (int8.backend, int8.label) == ("int8", f"{tiny_folder} · {BACKEND_LABEL}")
    assert "int8 (quantized, OpenVINO static" in int8.label and "nDCG@10" in int8.label
    exact = [s.raw for s in fp32.score(QUERY, MORE_PASSAGES)]
    quantized = [s.raw for s in int8.score(QUERY, MORE_PASSAGES)]
    correlation = spearman(exact, quantized)
    # Measured 0.97 on this random model (logits spread over about 8; ONNX Runtime's dynamic int8: 0.99).
    assert correlation >= INT8_SPEARMAN_FLOOR, f"Spearman int8 vs fp32 {correlation:.4f}"
    assert quantized != pytest.approx(exact, abs=1e-4), "int8 should not be the fp32 graph"
    # Static quantization: a pair scores the same alone and in a batch, up to float rounding.
    alone = [int8.score(QUERY, [passage])[0].raw for passage in PASSAGES[:4]]
    assert alone == pytest.approx([s.raw for s in int8.score(QUERY, PASSAGES[:4])], abs=1e-3)


def test_embeddings_and_head_stay_fp32_and_the_layers_are_int8(tiny_folder):
    import openvino as ov

    int8 = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="int8").model.inner
    model = ov.Core().read_model(str(int8.export.model_path))
    ops = {op.get_friendly_name(): op for op in model.get_ops()}

    def weight_source(op) -> str:  # what feeds the weights: a fp32 Constant, or an int8 dequantization
        return op.input(0 if op.get_type_name() == "Gather" else 1).get_source_output().get_node().get_type_name()

    word_embeddings = [name for name in ops if "word_embeddings" in name and ops[name].get_type_name() == "Gather"]
    head = [name for name, op in ops.items()
            if op.get_type_name() == "MatMul" and ("classifier" in name or name == "logits")]
    assert len(word_embeddings) == 1 and len(head) == 2, (word_embeddings, head)
    for name in word_embeddings + head:
        assert weight_source(ops[name]) == "Constant", f"{name} should read fp32 weights"
        assert ops[name].input(0).get_element_type() == ov.Type.f32
    # Named by OpenVINO's PyTorch frontend after the modules: "__module.model.roberta.encoder.layer.0.output.dense/..."
    layer_matmuls = [op for name, op in ops.items() if op.get_type_name() == "MatMul" and ".encoder.layer." in name]
    quantized = [op for op in layer_matmuls if op.input(0).get_source_output().get_node().get_type_name()
                 == "FakeQuantize"]
    assert len(quantized) >= 4 * 2, f"{len(quantized)} of {len(layer_matmuls)} layer MatMuls have int8 inputs"
    assert int8.export.meta["calibration"] == openvino_int8.CALIBRATION_SIZE
    assert int8.export.meta["runtime"] == "openvino" and int8.export.meta["precision"] == "int8"


def test_threads_follow_the_cpu_share(tiny_folder):
    int8 = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="int8").model.inner
    compiled = int8.session._compiled
    assert compiled.get_property("INFERENCE_NUM_THREADS") == onnx_export.cpu_share()
    assert str(compiled.get_property("INFERENCE_PRECISION_HINT")) in ("f32", "<Type: 'float32'>")


def test_progress_and_refusals(tiny_folder, tmp_path):
    int8 = load_reranker(str(tiny_folder), "cpu", fallback=False, backend="int8").model.inner
    seen: list[int] = []
    int8.score(QUERY, PASSAGES, batch_size=3, progress=lambda done, total: seen.append(done))
    assert seen[-1] == len(PASSAGES) and len(seen) >= 4
    with pytest.raises(RerankerUnavailable, match="no model folder"):
        OpenVinoReranker(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="CPU only"):
        OpenVinoReranker(str(tiny_folder), "cuda:0")


# -- the cache ---------------------------------------------------------------------------------------------

def test_the_quantized_model_is_reused_by_another_process(tiny_folder, fresh_cache):
    first = OpenVinoReranker(str(tiny_folder))
    folder = the_entry(fresh_cache)
    assert set(first.export.meta["files"]) == {"openvino_model.xml", "openvino_model.bin"}, "no ONNX left behind"
    stamps = {p: p.stat().st_mtime_ns for p in folder.iterdir()}
    script = ("import json, sys; from search.backends.onnx_reranker import OpenVinoReranker; "
              "r = OpenVinoReranker(sys.argv[1]); "
              "print(json.dumps([s.raw for s in r.score('Which river flows through Berlin?', ['The Spree.'])]))")
    done = subprocess.run([sys.executable, "-c", script, str(tiny_folder)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, onnx_export.ONNX_CACHE_ENV: str(fresh_cache)}, timeout=300, check=False)

    assert done.returncode == 0, done.stderr[-2000:]
    assert {p: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps, "not quantized again"
    assert json.loads(done.stdout.splitlines()[-1]) == pytest.approx([first.score(
        "Which river flows through Berlin?", ["The Spree."])[0].raw], abs=1e-5)
    assert [p.name for p in folder.parent.iterdir()] == [folder.name], "only this entry, no temporary folder"


@pytest.mark.parametrize("damage", ["truncated weights", "garbage graph of the same size", "no meta"])
def test_a_broken_entry_is_quantized_again(tiny_folder, fresh_cache, damage):
    first = [s.raw for s in OpenVinoReranker(str(tiny_folder)).score(QUERY, PASSAGES)]
    folder = the_entry(fresh_cache)
    if damage == "truncated weights":
        weights = folder / "openvino_model.bin"
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "garbage graph of the same size":
        graph = folder / "openvino_model.xml"
        graph.write_bytes(b"\0" * graph.stat().st_size)
    else:
        (folder / "meta.json").unlink()

    again = OpenVinoReranker(str(tiny_folder))

    assert again.export.folder == folder and json.loads((folder / "meta.json").read_text())["files"]
    assert [s.raw for s in again.score(QUERY, PASSAGES)] == pytest.approx(first, abs=1e-5), "same recipe, same model"


def test_the_recipe_and_the_checkpoint_name_the_entry(tiny_folder, fresh_cache, monkeypatch):
    OpenVinoReranker(str(tiny_folder))
    monkeypatch.setattr(openvino_int8, "OV_RECIPE", openvino_int8.OV_RECIPE + 1)
    OpenVinoReranker(str(tiny_folder))
    assert len(list(fresh_cache.glob("*/*/reranker-int8-openvino-r*"))) == 2, "a new recipe is quantized anew"


# -- fallbacks ---------------------------------------------------------------------------------------------

def test_without_openvino_int8_is_onnx_runtime_dynamic(tiny_folder, monkeypatch):
    monkeypatch.setattr(onnx_reranker, "openvino_available", lambda: False)
    monkeypatch.setattr(onnx_encoder, "openvino_available", lambda: False)

    reranker = int8_reranker(str(tiny_folder), "cpu")
    encoder = int8_encoder(MINILM_ID, "cpu", model_spec(MINILM_ID, "dense"), MINILM_LABEL,
                           str(bundled_minilm_path()))

    assert type(reranker) is OnnxReranker and reranker.label.endswith("· onnx int8 (quantized)")
    assert type(encoder) is OnnxEncoder and encoder.label.endswith("· onnx int8 (quantized)")


def test_a_failed_quantization_falls_back_to_onnx_runtime(tiny_folder, fresh_cache, monkeypatch, caplog):
    import nncf

    def broken(*args, **kwargs):
        raise RuntimeError("no quantizer for this graph")

    monkeypatch.setattr(nncf, "quantize", broken)
    with caplog.at_level(logging.WARNING):
        reranker = int8_reranker(str(tiny_folder), "cpu")

    assert type(reranker) is OnnxReranker and reranker.precision == "int8"
    assert "could not be quantized by NNCF: no quantizer for this graph" in caplog.text
    assert "using ONNX Runtime's dynamic int8" in caplog.text
    assert not list(fresh_cache.glob("*/*/reranker-int8-openvino-*")), "no entry left for a failed quantization"
    with pytest.raises(RerankerUnavailable, match="could not be quantized"):
        OpenVinoReranker(str(tiny_folder))
    with pytest.raises(RerankerUnavailable, match="no model folder"):
        int8_reranker(str(tiny_folder / "missing"), "cpu")  # not a quantization failure: no fallback


# -- the encoder and the calibration set -------------------------------------------------------------------

def test_openvino_int8_encoder_against_torch():
    torch_encoder = load_encoder(MINILM_ID, "cpu", backend="torch")
    encoder = load_encoder(MINILM_ID, "cpu", backend="int8")
    assert isinstance(encoder, OpenVinoEncoder)
    assert (encoder.backend, encoder.label) == ("int8", f"{MINILM_LABEL} · {BACKEND_LABEL}")
    texts = [*PASSAGES, " ".join(PASSAGES * 4)]

    got = encoder.embed(texts, is_query=False, batch_size=3)
    expected = torch_encoder.embed(texts, is_query=False)

    assert got.dtype == np.float32 and got.shape == expected.shape
    distance = 1 - (got * expected).sum(axis=1)
    assert 0 < distance.max() <= 0.03, distance
    alone = np.vstack([encoder.embed([text], is_query=False) for text in PASSAGES])
    assert np.abs(alone - got[: len(PASSAGES)]).max() < 1e-3, "static scales: batching does not move a vector"
    assert [t.shape for t in encoder.token_embeddings(texts)] == [t.shape for t in
                                                                   torch_encoder.token_embeddings(texts)]


def test_the_calibration_pairs_are_fixed_and_multilingual():
    pairs = openvino_int8.calibration_pairs()
    assert len(pairs) == openvino_int8.CALIBRATION_SIZE and len(set(pairs)) == len(pairs)
    text = " ".join(query + passage for query, passage in pairs)
    scripts = {"Devanagari": "\u0900-\u097f", "Arabic": "\u0600-\u06ff", "Han": "\u4e00-\u9fff",
               "Cyrillic": "\u0400-\u04ff", "Thai": "\u0e00-\u0e7f"}
    import re

    assert all(re.search(f"[{span}]", text) for span in scripts.values()), "ten languages, several scripts"
    assert openvino_int8.calibration_pairs() is pairs


def test_quantizing_writes_nothing_on_stdout(tiny_folder, fresh_cache, capfd):
    # `search eval --json` and the like print their answer on stdout; NNCF's progress bars must not land there.
    OpenVinoReranker(str(tiny_folder))
    captured = capfd.readouterr()
    assert captured.out == "", captured.out[:300]


def test_calibration_needs_at_least_one_pair():
    from search.backends.runtime.openvino_int8 import calibration_pairs

    assert len(calibration_pairs(3)) == 3
    with pytest.raises(ValueError, match="at least one pair"):
        calibration_pairs(0)


def test_a_background_quantization_leaves_other_threads_stdout_alone(tiny_folder, fresh_cache, capsys):
    """`--json` answers go to stdout while the app (or a test) quantizes in another thread."""
    import threading
    import time

    worker = threading.Thread(target=lambda: OpenVinoReranker(str(tiny_folder)))
    worker.start()
    printed = 0
    while worker.is_alive() and printed < 10_000:
        print("answer")
        printed += 1
        time.sleep(0.002)
    worker.join(timeout=600)
    assert printed > 0 and the_entry(fresh_cache).is_dir(), "the quantization ran while the answers were printed"
    captured = capsys.readouterr()
    assert captured.out.count("answer") == printed, "every answer printed meanwhile reached stdout"
    assert "Statistics collection" not in captured.out, "NNCF's progress bars go to stderr"
