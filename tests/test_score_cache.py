"""The score cache in front of a real (tiny, local) cross-encoder: pairs are scored once, only the uncached
ones reach the model, progress and cancellation go through, and the measured throughput.

Forward passes are counted with a forward hook on the model itself (the model still runs), and the pairs
scored with the cache's own hit and miss counts."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from search.backends.torch_reranker import CrossEncoderReranker
from search.inference import PairScore, RerankCancelled, Reranker, Throughput
from search.score_cache import (
    THROUGHPUT_HALF_LIFE_PAIRS,
    CachedReranker,
    ScoreCache,
    ThroughputMeter,
    pair_keys,
)
from tests.tiny_models import build_tiny_xlmr_cross_encoder

QUERY = "Which river flows through Berlin?"
PASSAGES = [
    "The Spree flows through the centre of Berlin.",
    "Die Spree fließt durch die Mitte von Berlin und mündet in die Havel.",
    "बर्लिन जर्मनी की राजधानी है और स्प्री नदी इसके बीच से बहती है।",
    "柏林是德国的首都，施普雷河流经市中心。",
    "برلين هي عاصمة ألمانيا ويمر نهر شبريه عبر وسطها.",
    "Bananas are rich in potassium.",
    "Der Rhein ist einer der längsten Flüsse Europas.",
    "नदी",
    "河",
    "The Thames flows through London, and the Seine flows through Paris, while the Danube passes Vienna.",
]


@pytest.fixture(scope="module")
def backend(tmp_path_factory) -> CrossEncoderReranker:
    folder = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-cached"), [QUERY, *PASSAGES])
    return CrossEncoderReranker(str(folder), "cpu", batch_size=4)


@pytest.fixture
def scored(backend):
    """Rows (pairs) of every forward pass the real model makes during a test."""
    rows: list[int] = []
    handle = backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    yield rows
    handle.remove()


@pytest.fixture
def cached(backend) -> CachedReranker:
    """A fresh cache in front of the shared tiny backend."""
    return CachedReranker(backend, ScoreCache())


def test_the_same_query_again_scores_nothing_and_gives_the_same_scores(cached, backend, scored):
    first = cached.score(QUERY, PASSAGES)
    assert sum(scored) == len(PASSAGES)
    scored.clear()

    again = cached.score(QUERY, PASSAGES)

    assert scored == [], "no forward pass for pairs already scored"
    assert again == first == backend.score(QUERY, PASSAGES)
    stats = cached.cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (len(PASSAGES), len(PASSAGES), len(PASSAGES))
    assert stats.hit_rate == 0.5


def test_only_uncached_passages_reach_the_model_and_progress_counts_cached_ones_at_once(cached, backend, scored):
    cached.score(QUERY, PASSAGES[:4])  # e.g. depth 4, then the user asks for depth 10
    scored.clear()
    seen = []

    scores = cached.score(QUERY, PASSAGES, progress=lambda done, total: seen.append((done, total)))
    batches = list(scored)

    assert sum(batches) == 6, f"only the six new pairs may be scored, got batches {batches}"
    # Batches differ from a fresh run (other pairs, other padding), hence float noise.
    assert [s.raw for s in scores] == pytest.approx([s.raw for s in backend.score(QUERY, PASSAGES)], abs=1e-5)
    assert seen[0] == (4, 10), "the cached pairs are done at once"
    assert seen[-1] == (10, 10) and len(seen) == 1 + len(batches)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:], strict=False))
    assert cached.uncached(QUERY, PASSAGES) == 0 and cached.uncached("another query", PASSAGES[:3]) == 3


def test_a_repeated_passage_is_scored_once(cached, scored):
    passages = [PASSAGES[0], PASSAGES[5], PASSAGES[0], PASSAGES[0]]
    seen = []

    scores = cached.score(QUERY, passages, progress=lambda done, total: seen.append(done))

    assert sum(scored) == 2
    assert scores[0] == scores[2] == scores[3] != scores[1]
    assert seen[-1] == 4
    assert (cached.cache.stats().hits, cached.cache.stats().misses) == (2, 2)


def test_a_cached_pair_is_scored_again_for_another_query_model_or_device(cached, scored):
    cached.score(QUERY, PASSAGES[:2])
    scored.clear()
    cached.score("Where does the Spree end?", PASSAGES[:2])
    assert sum(scored) == 2
    keys = {pair_keys(*key, QUERY, ["x"])[0] for key in
            [("m", "torch", "cpu"), ("m2", "torch", "cpu"), ("m", "onnx", "cpu"), ("m", "torch", "cuda:0")]}
    assert len(keys) == 4
    assert pair_keys("a", "b", "c", "d", ["e"]) != pair_keys("a", "b", "c", "de", [""]), "fields are delimited"


def test_concurrent_callers_never_score_a_pair_twice(cached, backend, scored):
    expected = [s.raw for s in backend.score(QUERY, PASSAGES)]
    scored.clear()
    start = threading.Barrier(4)

    def run(_: int) -> list[float]:
        start.wait()
        return [s.raw for s in cached.score(QUERY, PASSAGES)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, range(4)))

    assert sum(scored) == len(PASSAGES), "whoever waited for the lock finds the pairs cached"
    assert all(result == pytest.approx(expected, abs=1e-6) for result in results)
    assert cached.cache.stats().misses == len(PASSAGES)


def test_a_cancelled_rerank_keeps_its_scores_and_the_next_run_resumes(cached, backend, scored):
    seen = []
    with pytest.raises(RerankCancelled) as cancelled:
        cached.score(QUERY, PASSAGES, progress=lambda done, total: seen.append(done),
                     should_stop=lambda: len(seen) >= 2)  # the start report, then one batch

    (first_batch,) = scored
    assert cancelled.value.done == first_batch == len(cancelled.value.partial) < len(PASSAGES)
    scored.clear()
    seen.clear()

    scores = cached.score(QUERY, PASSAGES, progress=lambda done, total: seen.append(done))

    assert sum(scored) == len(PASSAGES) - first_batch and seen[0] == first_batch and seen[-1] == len(PASSAGES)
    expected = [s.raw for s in backend.score(QUERY, PASSAGES)]
    assert [s.raw for s in scores] == pytest.approx(expected, abs=1e-5)
    assert all(scores[i] == pair for i, pair in cancelled.value.partial.items()), "kept, not scored again"


def test_cancelling_a_fully_cached_rerank_still_returns_it(cached, scored):
    first = cached.score(QUERY, PASSAGES[:3])
    assert cached.score(QUERY, PASSAGES[:3], should_stop=lambda: True) == first


def test_the_cache_is_an_lru_bounded_by_entries_and_bytes():
    score = PairScore(0.5, 0.62, False)
    by_entries = ScoreCache(max_entries=3)
    by_entries.store({bytes([i]) * 16: score for i in range(3)})
    by_entries.lookup([bytes([0]) * 16])  # 0 is now the most recently used; 1 the least
    by_entries.store({bytes([3]) * 16: score})
    assert [found is not None for found in by_entries.lookup([bytes([i]) * 16 for i in range(4)])] == [
        True, False, True, True]
    assert by_entries.stats().evictions == 1 and by_entries.stats().entries == 3

    assert ScoreCache().stats().bytes == 0
    sizing = ScoreCache()
    sizing.store({b"k" * 16: score})
    per_entry = sizing.stats().bytes
    assert 150 < per_entry < 600, per_entry
    by_bytes = ScoreCache(max_bytes=per_entry * 2)
    by_bytes.store({bytes([i]) * 16: score for i in range(5)})
    assert by_bytes.stats().entries == 2 and by_bytes.stats().bytes == 2 * per_entry

    disabled = ScoreCache(max_entries=0)
    disabled.store({b"k" * 16: score})
    assert len(disabled) == 0
    with pytest.raises(ValueError, match="max_entries=-1"):
        ScoreCache(max_entries=-1)


def test_a_disabled_cache_still_scores_correctly(backend, scored):
    cached = CachedReranker(backend, ScoreCache(max_entries=0))
    assert cached.score(QUERY, PASSAGES[:3]) == backend.score(QUERY, PASSAGES[:3])
    scored.clear()
    cached.score(QUERY, PASSAGES[:3])
    assert sum(scored) == 3


def test_the_wrapper_is_a_reranker_with_the_backends_identity(cached, backend):
    assert isinstance(cached, Reranker)
    assert (cached.model_id, cached.label, cached.backend, cached.device, cached.is_cross_encoder) == (
        backend.model_id, backend.label, "torch", "cpu", True)
    assert (cached.max_length, cached.remote, cached.dtype, cached.tokenizer) == (
        backend.max_length, False, "float32", backend.tokenizer)
    read = [len(ids) for ids in backend.pair_token_ids(QUERY, PASSAGES)]
    assert cached.pair_lengths(QUERY, PASSAGES) == read, "every pair fits: its length is what the model reads"
    long_pair = backend.pair_lengths(QUERY, ["river " * 600])[0]
    assert long_pair > backend.max_length == len(backend.pair_token_ids(QUERY, ["river " * 600])[0]), \
        "a pair past the window is counted whole, then cut to the window"
    assert cached.score(QUERY, []) == []
    with pytest.raises(ValueError, match="query is empty"):
        cached.score("  ", PASSAGES)


# -- throughput -------------------------------------------------------------------------------------------

def test_throughput_counts_scored_batches_only(cached, scored):
    assert cached.throughput() == Throughput(None, 0, 0) and cached.expected_seconds(20) is None

    cached.score(QUERY, PASSAGES)
    measured = cached.throughput()
    assert (measured.pairs, measured.batches) == (len(PASSAGES), len(scored))
    assert measured.seconds_per_pair > 0 and measured.pairs_per_second == pytest.approx(1 / measured.seconds_per_pair)
    assert cached.expected_seconds(20) == pytest.approx(20 * measured.seconds_per_pair)
    assert cached.expected_seconds(0) == 0.0

    cached.score(QUERY, PASSAGES)  # all cached: nothing to measure
    assert cached.throughput() == measured
    with pytest.raises(ValueError, match="pairs=-1"):
        cached.expected_seconds(-1)


def test_the_meter_replaces_the_warm_up_batch_then_weights_by_pairs():
    meter = ThroughputMeter()
    meter.record(1, 5.0)  # first batch after loading: one-off costs
    assert meter.snapshot() == Throughput(5.0, 1, 1)
    meter.record(10, 1.0)
    assert meter.snapshot().seconds_per_pair == pytest.approx(0.1), "the warm-up does not linger"
    meter.record(THROUGHPUT_HALF_LIFE_PAIRS, THROUGHPUT_HALF_LIFE_PAIRS * 0.3)
    assert meter.snapshot().seconds_per_pair == pytest.approx(0.2), "a half-life of pairs weighs one half"
    meter.record(1, 0.3)
    assert 0.2 < meter.snapshot().seconds_per_pair < 0.21, "one pair moves it a little"
    meter.record(0, 1.0)
    meter.record(5, 0.0)
    assert meter.snapshot().batches == 4, "empty or untimed batches are ignored"
