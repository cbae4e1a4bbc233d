"""`Index.rerank` with a real (tiny, local) cross-encoder: progress and cancellation passed through, the score
cache shared by every search of the index, the measured speed and the time estimate, and the backend setting.

Pairs actually scored are counted with a forward hook on the model (the model still runs)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from search.evaluation import estimate_evaluation
from search.inference import RerankCancelled
from search.loading import BACKEND_ENV
from search.models import FALLBACK_DENSE_ID
from search.pipeline import MAX_RERANK_DEPTH, Index, Settings, build
from tests.tiny_models import build_tiny_xlmr_cross_encoder

DOCS = {
    "tea.txt": "Green tea is grown on terraced hillsides and picked by hand in spring.",
    "volcano.txt": "A volcano erupts when magma rises through cracks in the crust of the Earth.",
    "magma.txt": "Magma cools into basalt. Magma chambers feed a volcano.",
    "bees.txt": "Honeybees dance to tell their sisters where the best flowers are blooming.",
    "rivers.txt": "Rivers carry sand and gravel from the mountains down to the sea.",
    "bread.txt": "Bread rises when yeast turns sugar into gas inside the warm dough.",
    "tee.txt": "Grüner Tee wird im Frühling an steilen Hängen von Hand gepflückt.",
    "chai.txt": "हरी चाय पहाड़ी ढलानों पर उगाई जाती है।",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("corpus")
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    folder = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-stage"),
                                           [*DOCS.values(), "where does tea grow", "volcano magma"] * 3)
    # torch: the `scored` fixture counts the rows of each forward pass of its model
    settings = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=(str(folder),), device="cpu", backend="torch")
    return build([corpus], settings)


@pytest.fixture
def scored(index):
    """Rows (pairs) of every forward pass the reranker's model makes during a test."""
    rows: list[int] = []
    model = index.reranker().model.inner.model
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    yield rows
    handle.remove()


def test_changing_k_or_the_depth_scores_no_pair_twice(index, scored):
    first = index.search("where does tea grow", k=3, rerank_depth=6)
    assert sum(scored) == 6
    scored.clear()

    more = index.search("where does tea grow", k=8, rerank_depth=6)
    shallower = index.search("where does tea grow", k=3, rerank_depth=4)

    assert scored == [], "every pair was scored by the first search"
    assert [hit.passage_id for hit in more.stages["rerank"].hits] == [
        hit.passage_id for hit in first.stages["rerank"].hits]
    top4 = {hit.passage_id for hit in first.stages["hybrid"].hits[:4]}
    assert [hit.passage_id for hit in shallower.stages["rerank"].hits] == [
        hit.passage_id for hit in first.stages["rerank"].hits if hit.passage_id in top4]
    deeper = index.search("where does tea grow", k=3, rerank_depth=8)
    assert sum(scored) == 2, "only the two new candidates"
    assert deeper.stages["rerank"].pairs_per_second == index.reranker().model.throughput().pairs_per_second


def test_rerank_passes_progress_and_cancellation_through(index, scored, monkeypatch):
    monkeypatch.setattr(index.reranker().model.inner, "batch_size", 3)  # several batches for 8 pairs
    result = index.retrieve("volcano magma", k=3, rerank_depth=8)
    stop_after_one_batch = []
    with pytest.raises(RerankCancelled) as cancelled:
        index.rerank(result, progress=lambda done, total: stop_after_one_batch.append((done, total)),
                     should_stop=lambda: len(stop_after_one_batch) >= 2)
    assert len(scored) == 1 and stop_after_one_batch == [(0, 8), (scored[0], 8)]
    assert cancelled.value.done == scored[0]
    scored.clear()
    seen = []

    reranked = index.rerank(result, progress=lambda done, total: seen.append((done, total)))

    assert seen[0] == (cancelled.value.done, 8) and seen[-1] == (8, 8)
    assert sum(scored) == 8 - cancelled.value.done, "the pairs scored before the stop were kept"
    assert len(reranked.stages["rerank"].hits) == 8


def test_expected_rerank_seconds_counts_only_uncached_pairs(index):
    fresh = Index(index.passages, index.passage_terms, index.dense, index.encoder, index.settings, index.report)
    result = fresh.retrieve("rivers carry sand", k=3, rerank_depth=5)
    assert fresh.expected_rerank_seconds(result) is None, "the reranker is not loaded yet, and it is not loaded here"
    assert fresh.expected_rerank_seconds(result, 0) == 0.0 and fresh.loaded_reranker() is None

    index.search("bees and flowers", k=3, rerank_depth=5)  # measures the speed
    per_pair = index.reranker().model.throughput().seconds_per_pair
    result = index.retrieve("rivers carry sand", k=3, rerank_depth=5)
    assert index.expected_rerank_seconds(result) == pytest.approx(5 * per_pair)
    assert index.expected_rerank_seconds(result, 8) == pytest.approx(8 * per_pair), "unretrieved ones count too"
    assert index.expected_rerank_seconds(result, 50) == pytest.approx(len(index) * per_pair), "clipped to the corpus"

    index.rerank(result)
    per_pair = index.reranker().model.throughput().seconds_per_pair
    assert index.expected_rerank_seconds(result) == 0.0
    assert index.expected_rerank_seconds(result, 7) == pytest.approx(2 * per_pair)
    assert index.expected_rerank_seconds(result, 0) == 0.0
    with pytest.raises(ValueError, match="rerank_depth=-1"):
        index.expected_rerank_seconds(result, -1)
    with pytest.raises(ValueError, match=str(MAX_RERANK_DEPTH)):
        index.expected_rerank_seconds(result, MAX_RERANK_DEPTH + 1)


def test_the_backend_setting_comes_from_the_environment_and_reaches_the_loader(index, monkeypatch, tmp_path):
    assert Settings().backend == "auto"
    monkeypatch.setenv(BACKEND_ENV, "torch")
    assert Settings.from_config().backend == "torch"
    assert Settings.from_config(backend="auto").backend == "auto"

    bogus = Index(index.passages, index.passage_terms, index.dense, index.encoder,
                  Settings(**{**index.settings.__dict__, "backend": "tpu"}), index.report)
    stage = bogus.rerank(bogus.retrieve("tea", k=3, rerank_depth=3)).stages["rerank"]
    assert stage.error and "backend='tpu'" in stage.error and "auto, torch" in stage.error
    assert stage.hits == ()

    index.save(tmp_path / "saved")
    loaded = Index.load(tmp_path / "saved", overrides=replace(index.settings, backend="auto"))
    assert loaded.settings.backend == "auto" and index.settings.backend == "torch"
    assert loaded.reranker().model.backend == "onnx", "auto is onnx on the CPU"
    again = Index.load(tmp_path / "saved", overrides=replace(index.settings, backend="torch"))
    assert again.reranker().model is index.reranker().model, "one model, one cache per backend"


def test_the_evaluation_estimate_of_a_cross_encoder_counts_every_uncached_pair(index):
    # A cross-encoder scores each (query, passage) pair whole: 30 queries x 5 candidates are 150 pairs at the
    # pairs/s the rerank estimate uses, whatever it scored before (late interaction: test_evaluation_runs.py);
    # none when the sample query's pairs are in the score cache (the same queries again).
    index.search("bees and flowers", k=3, rerank_depth=5)  # measures the speed
    sample = "green tea on steep hills"  # no other test searches it: none of its pairs is cached
    estimate = estimate_evaluation(index, 30, stages=["bm25", "hybrid", "rerank"], rerank_depth=5,
                                   candidates_from="hybrid", sample_queries=[sample])
    speed = index.reranker().model.throughput().pairs_per_second
    assert estimate.pairs_per_second == {"rerank": speed} and speed > 0
    assert estimate.passages_per_second == {} and estimate.passages_to_encode == {}
    assert estimate.seconds == pytest.approx(30 * (estimate.first_stage_seconds + 5 / speed))
    index.rerank(index.retrieve(sample, k=100, rerank_depth=5, candidates_from="hybrid"))
    again = estimate_evaluation(index, 30, stages=["bm25", "hybrid", "rerank"], rerank_depth=5,
                                candidates_from="hybrid", sample_queries=[sample])
    assert again.seconds == pytest.approx(30 * again.first_stage_seconds), "every pair is in the score cache"


def test_rerank_seconds_counts_a_cross_encoder_at_the_speed_its_caller_measured(index):
    from search import estimates

    fresh = Index(index.passages, index.passage_terms, index.dense, index.encoder, index.settings, index.report)
    model = fresh.reranker().model
    work = [estimates.RerankWork(6), estimates.RerankWork(2)]
    # Evaluate measures the speed itself; a probe answered from the score cache leaves the model's meter empty.
    assert model.passage_caching() is None
    assert estimates.rerank_seconds(model, work, queries=10, pairs_per_second=4.0) == pytest.approx(10 * 4 / 4.0)
