"""Ready before the first query (issue 19 §2): a form not made yet is prepared in the background while the
model's torch form stands in, labelled so; once ready it is used from the next query on (a reranker switches in
place, with its score-cache keys following the form that scored); the warm-up shows it on the page's model
line with the time left; `python -m search prepare` does it ahead of time; where the export cache lives.

Tiny local models, exported in seconds; a preparation is held with `Preparer.held()` while the test looks at
the stand-in (no timing assertion anywhere)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from search import config
from search.backends.runtime import onnx_export
from search.backends.runtime.costs import BASIS_MEASURED, ModelSize, Record, expected_seconds, recorded_costs
from search.backends.torch_reranker import CrossEncoderReranker
from search.loading import load_encoder, load_reranker
from search.preparation import Preparation, preparer
from tests.test_torch_reranker import CORPUS, PASSAGES, QUERY
from tests.tiny_models import build_tiny_xlmr_cross_encoder

WAIT_SECONDS = 600  # a bound on waiting for a tiny model's preparation, never a timing assertion


@pytest.fixture
def tiny(tmp_path) -> str:
    """A tiny cross-encoder of its own (its loader cache keys are this test's alone); as a dense model its
    XLM-R body is the encoder."""
    return str(build_tiny_xlmr_cross_encoder(tmp_path / "tiny", CORPUS))


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "onnx-cache"
    monkeypatch.setenv(onnx_export.ONNX_CACHE_ENV, str(cache))
    return cache


def raw_scores(reranker, passages=PASSAGES) -> np.ndarray:
    return np.array([score.raw for score in reranker.score(QUERY, passages)])


def test_a_reranker_runs_on_torch_while_its_form_is_prepared_then_switches_in_place(tiny, fresh_cache, tmp_path):
    from search.models import MINILM_ID
    from search.pipeline import RerankerChoice, Settings, build

    reference = raw_scores(CrossEncoderReranker(tiny, "cpu"))
    with preparer().held():
        loaded = load_reranker(tiny, "cpu", backend="onnx", fallback=False, prepare="background")
        reranker = loaded.model
        key = ("reranker", tiny, "onnx", "cpu")
        assert preparer().status(key).state == "waiting", "held: nothing is made yet"
        assert not list(fresh_cache.glob("*/*/reranker-fp32")), "the export cache is still empty"
        assert reranker.label == f"{tiny} · torch meanwhile (onnx being prepared)"
        assert reranker.backend == "torch"
        assert raw_scores(reranker) == pytest.approx(reference, abs=1e-6), "the stand-in is the torch form"
        assert reranker.uncached(QUERY, PASSAGES) == 0, "its scores are cached under torch"
        assert load_reranker(tiny, "cpu", backend="onnx", fallback=False).model is reranker, \
            "a later load of the form gets the stand-in, not an export of its own"
        notes = tmp_path / "notes.txt"
        notes.write_text("Green tea grows on hillsides.\n\nBlack tea is oxidised longer.", encoding="utf-8")
        index = build([notes], Settings(dense_model=MINILM_ID, backend="torch",
                                        rerankers=(RerankerChoice(tiny, "onnx"),)))
        assert index.reranker().model is reranker
        result = index.search("tea", k=2, rerank_depth=3)
        assert result.stages["rerank"].model == f"{tiny} · torch meanwhile (onnx being prepared)"

    assert preparer().wait([key], timeout=WAIT_SECONDS), "the preparation did not finish"
    done = preparer().status(key)
    assert done.state == "ready" and done.expected_seconds is not None and done.basis, done
    assert list(fresh_cache.glob("*/*/reranker-fp32/model.onnx")), "the form is in the export cache"
    assert reranker.label == f"{tiny} · onnx" and reranker.backend == "onnx", "switched in place"
    assert reranker.uncached(QUERY, PASSAGES) == len(PASSAGES), "cache keys follow the form that scores"
    assert raw_scores(reranker) == pytest.approx(reference, abs=1e-4)
    assert reranker.uncached(QUERY, PASSAGES) == 0
    assert index.reranker().model is reranker, "the index keeps its reranker, now on the prepared form"
    assert index.search("tea", k=2, rerank_depth=3).stages["rerank"].model == f"{tiny} · onnx"
    costs = recorded_costs(fresh_cache)
    vocab = json.loads((Path(tiny) / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    assert [record.kind for record in costs] == ["onnx-fp32"] and costs[0].size == ModelSize(2, 32, 64, vocab), \
        "the export recorded what it cost, for the next estimates"


def test_an_encoder_stand_in_keeps_its_vectors_and_later_loads_get_the_prepared_form(tiny, fresh_cache):
    with preparer().held():
        stand_in = load_encoder(tiny, "cpu", backend="onnx", prepare="background")
        assert stand_in.backend == "torch" and stand_in.label.endswith(" · torch meanwhile (onnx being prepared)")
        assert load_encoder(tiny, "cpu", backend="onnx") is stand_in, "no second export while one is pending"
        before = stand_in.embed(PASSAGES[:3], is_query=False)
    key = ("encoder", tiny, "onnx", "cpu")
    assert preparer().wait([key], timeout=WAIT_SECONDS) and preparer().status(key).state == "ready"
    prepared = load_encoder(tiny, "cpu", backend="onnx")
    assert prepared is not stand_in and prepared.backend == "onnx" and prepared.label.endswith(" · onnx")
    assert stand_in.label.endswith(" · torch (onnx ready for the next build)"), "an index built on it says so"
    assert np.abs(prepared.embed(PASSAGES[:3], is_query=False) - before).max() < 1e-5


def test_the_warm_up_prepares_in_the_background_measures_the_encoder_and_the_line_says_so(tiny, fresh_cache):
    from search import estimates
    from search.warmup import Warmup
    from ui.model_status import render_model_status

    with preparer().held():
        warmup = Warmup(tiny, tiny, device="cpu", backend="onnx", download=lambda *_: 0).start()
        assert warmup.wait(timeout=WAIT_SECONDS), "the torch forms load while the preparations are held"
        status = warmup.status()
        assert status.loaded and not status.done
        assert [(model.state, model.preparation.state) for model in status.models] == [("ready", "waiting")] * 2
        line = render_model_status(status)
        text = re.sub(r"<[^>]+>", "", line)
        assert text == ("Models ready, faster forms being prepared: onnx for tiny: waiting for its turn · torch "
                        "meanwhile · onnx for tiny: waiting for its turn · torch meanwhile"), text
        assert 'data-state="preparing"' in line and 'data-preparation="waiting"' in line
        stand_in = load_encoder(tiny, "cpu", backend="onnx")
        assert estimates.passages_per_second(stand_in) is not None, "measured before any build asks"
    keys = [model.preparation.key for model in status.models]
    assert preparer().wait(keys, timeout=WAIT_SECONDS)
    assert warmup.wait(timeout=WAIT_SECONDS)
    status = warmup.status()
    assert status.done and [model.preparation.state for model in status.models] == ["ready", "ready"]
    text = re.sub(r"<[^>]+>", "", render_model_status(status))
    assert re.fullmatch(r"Models ready: tiny … done, onnx prepared in [^·]+ · tiny … done, onnx prepared in .+",
                        text), text


def test_the_line_gives_the_step_and_the_time_left_from_the_expected_cost():
    from ui.model_status import preparation_text

    preparing = Preparation("reranker", "BAAI/bge-reranker-v2-m3", "int8", "cpu", "preparing", "quantising",
                            expected_seconds=300.0, basis=BASIS_MEASURED, elapsed_seconds=60.0)
    assert preparation_text("bge-reranker-v2-m3", preparing) == \
        "int8 for bge-reranker-v2-m3: quantising, about 4 min left · torch meanwhile"
    late = Preparation("reranker", "m", "onnx", "cpu", "preparing", "exporting", expected_seconds=30.0,
                       elapsed_seconds=45.0)
    assert preparation_text("m", late) == \
        "onnx for m: exporting, taking longer than the 30 s expected · torch meanwhile"
    unknown = Preparation("encoder", "m", "onnx", "cpu", "preparing")
    assert preparation_text("m", unknown) == "onnx for m: preparing · torch meanwhile"
    failed = Preparation("encoder", "m", "int8", "cpu", "failed", error="no space left")
    assert preparation_text("m", failed) == "m … done on torch (int8 could not be prepared)"


def test_expected_costs_scale_the_reference_by_what_this_machine_took_before():
    base, tiny = ModelSize(12, 768, 3072, 250002), ModelSize(2, 32, 64, 400)
    alone, basis = expected_seconds("openvino-int8", base, [])
    assert alone > 0 and basis != BASIS_MEASURED
    half_as_fast = [Record("onnx-fp32", tiny, 2 * expected_seconds("onnx-fp32", tiny, [])[0])]
    assert expected_seconds("openvino-int8", base, half_as_fast) == (pytest.approx(2 * alone), BASIS_MEASURED)
    assert expected_seconds("onnx-fp32", None, half_as_fast) == (None, "")


def test_prepare_makes_the_forms_ahead_of_time_and_says_what_and_where(tiny, tmp_path, capsys):
    from search.cli import main

    cache = tmp_path / "prepared"
    argv = ["prepare", "--reranker-model", tiny, "--dense-model", tiny, "--backend", "onnx", "--device", "cpu",
            "--onnx-cache", str(cache)]
    assert main([*argv, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["cache"] == str(cache)
    assert [(row["role"], row["backend"], row["label"]) for row in answer["models"]] == [
        ("dense", "onnx", f"{tiny} · onnx"), ("reranker", "onnx", f"{tiny} · onnx")]
    made = [Path(entry["entry"]) for row in answer["models"] for entry in row["made"]]
    assert sorted(folder.name for folder in made) == ["encoder-fp32", "reranker-fp32"]
    assert all(folder.is_relative_to(cache) and (folder / "model.onnx").is_file() for folder in made)

    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"dense: {tiny} · onnx: already prepared (loaded in ")
    assert lines[1].startswith(f"reranker: {tiny} · onnx: already prepared (loaded in ")
    assert re.fullmatch(rf"0 form\(s\) made in [0-9.]+ s; cache: {re.escape(str(cache))}", lines[2]), lines
    assert main(["prepare", "--backend", "tei", "--tei-url", "http://127.0.0.1:9"]) == 2
    assert "nothing to prepare" in capsys.readouterr().err


def test_the_export_cache_lives_on_a_spaces_persistent_storage_when_it_is_there(tmp_path, monkeypatch):
    storage = tmp_path / "data"
    assert config.persistent_or_home("onnx", storage) == config.DEFAULT_CACHE / "onnx", "no /data: the home cache"
    storage.write_text("not a folder", encoding="utf-8")
    assert config.persistent_or_home("onnx", storage) == config.DEFAULT_CACHE / "onnx"
    storage.unlink()
    storage.mkdir()
    assert config.persistent_or_home("onnx", storage) == storage / "multilingual-rerank-explorer" / "onnx"
    monkeypatch.delenv(onnx_export.ONNX_CACHE_ENV, raising=False)
    assert config.load({}).onnx_cache == config.persistent_or_home("onnx"), "the default follows the rule"
    assert config.load({onnx_export.ONNX_CACHE_ENV: str(tmp_path / "mine")}).onnx_cache == tmp_path / "mine"
