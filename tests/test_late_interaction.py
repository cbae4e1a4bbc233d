"""The late-interaction (MaxSim) fallback reranker over the bundled 4-bit multilingual-e5-small."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from search import estimates
from search.backends.late_interaction import LateInteractionReranker, maxsim
from search.inference import PassageCachingReranker, RerankCancelled, Reranker
from search.loading import load_encoder
from search.models import FALLBACK_DENSE_ID, LATE_INTERACTION_LABEL
from search.score_cache import measured

QUERY = "What is the capital of France?"
ANSWER = "Paris is the capital and largest city of France."
UNRELATED = [
    "Mitochondria produce most of the chemical energy that powers a cell.",
    "The 1998 football World Cup final was played in front of 80,000 people.",
    "Bananas are a good source of potassium.",
]


@pytest.fixture(scope="module")
def encoder():
    # MaxSim over the torch encoder; over the onnx ones see tests/test_onnx_backends.py.
    return load_encoder(FALLBACK_DENSE_ID, "cpu", backend="torch")


@pytest.fixture
def reranker(encoder) -> LateInteractionReranker:
    """A fresh reranker (empty passage cache) over the shared, already loaded encoder."""
    return LateInteractionReranker(encoder)


def test_the_answering_passage_outscores_unrelated_ones(reranker):
    scores = reranker.score(QUERY, [*UNRELATED, ANSWER])
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i].raw)
    assert ranked[0] == 3, f"the answer should rank first, got order {ranked} with {scores}"


def test_score_is_the_mean_of_per_query_token_max_cosine(reranker, encoder):
    # Read as E5 reads them, "query: " + text and "passage: " + text, the prefixes' tokens left out.
    query_vectors = encoder.token_embeddings(["query: " + QUERY])[0][3:]  # "▁que", "ry", ":"
    passage_vectors = encoder.token_embeddings(["passage: " + ANSWER])[0][2:]  # "▁passage", ":"
    best = []
    for q in query_vectors:
        cosines = [float(np.dot(q, p) / (np.linalg.norm(q) * np.linalg.norm(p))) for p in passage_vectors]
        best.append(max(cosines))

    (score,) = reranker.score(QUERY, [ANSWER])

    assert score.raw == pytest.approx(sum(best) / len(best), abs=1e-5)
    assert score.sigmoid is None and not score.truncated


def test_maxsim_on_hand_made_vectors():
    query = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    passage = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    assert maxsim(query, passage) == pytest.approx((1.0 + 0.8) / 2)
    assert maxsim(query, passage[:0]) == -1.0
    with pytest.raises(ValueError, match="no tokens"):
        maxsim(query[:0], passage)


def test_repeated_passages_are_not_encoded_again(reranker):
    passages = [ANSWER, *UNRELATED]
    first = reranker.score(QUERY, passages)
    assert reranker.cache_info()[:3] == (0, 4, 4)

    second = reranker.score("Which city is the French capital?", passages + [ANSWER])

    assert reranker.cache_info()[:3] == (5, 4, 4), "the second call should find every passage in the cache"
    assert [s.raw for s in reranker.score(QUERY, passages)] == [s.raw for s in first]
    assert second[0].raw == second[-1].raw


def test_unencoded_counts_the_distinct_passages_a_rerank_would_encode(reranker, encoder):
    assert isinstance(reranker, PassageCachingReranker) and reranker.encoder is encoder
    assert reranker.passage_caching() is reranker, "the Reranker interface says it keeps its passages"
    assert measured(reranker).passage_caching() is reranker, "and so does the score cache in front of it"
    assert reranker.unencoded([ANSWER, *UNRELATED, ANSWER]) == 4, "four distinct passages, none encoded yet"
    reranker.score(QUERY, [ANSWER, UNRELATED[0]])
    before = reranker.cache_info()
    assert reranker.unencoded([ANSWER, *UNRELATED, ANSWER]) == 2, "two of them are in the passage cache"
    assert reranker.unencoded([]) == 0
    assert reranker.cache_info() == before, "counting is no lookup: the hit and miss counts stay"


def test_the_passages_it_encodes_are_measured_in_its_encoders_meter(reranker, encoder, monkeypatch):
    # A late-interaction rerank's time follows its encoder's speed (search.estimates), so its own encoding
    # measures that speed too, even when no build ever embedded with this encoder.
    monkeypatch.setattr(estimates, "_meters", {})
    reranker.score(QUERY, [ANSWER, *UNRELATED])
    assert estimates.meter(encoder).snapshot().pairs == 4, "its four passages (the query is no passage)"
    reranker.score("Which city is the French capital?", [ANSWER, *UNRELATED])
    assert estimates.meter(encoder).snapshot().pairs == 4, "nothing encoded again, nothing measured"
    assert estimates.passages_per_second(encoder) > 0


def test_the_cache_is_bounded_and_keeps_recent_passages(encoder):
    reranker = LateInteractionReranker(encoder, cache_size=2)
    reranker.score(QUERY, UNRELATED)  # three misses; the oldest is evicted
    assert reranker.cache_info().size == 2
    reranker.score(QUERY, UNRELATED[1:])
    assert reranker.cache_info()[:2] == (2, 3)


def test_long_passages_are_flagged_as_truncated(reranker, encoder):
    long_passage = " ".join([ANSWER] * 60)
    assert len(encoder.tokenizer(long_passage, verbose=False)["input_ids"]) > encoder.max_length
    scores = reranker.score(QUERY, [long_passage, ANSWER])
    assert [s.truncated for s in scores] == [True, False]


def test_texts_are_read_with_the_encoders_prefixes_and_the_prefix_tokens_left_out(reranker, encoder):
    assert (encoder.spec.query_prefix, encoder.spec.passage_prefix) == ("query: ", "passage: ")
    tokens = encoder.tokenizer.convert_ids_to_tokens(encoder.tokenizer("query: " + QUERY)["input_ids"])
    assert tokens[:5] == ["<s>", "▁que", "ry", ":", "▁What"], "the prefix's space goes to the first word"
    query = encoder.token_embeddings(["query: " + QUERY])[0][3:]
    passage = encoder.token_embeddings(["passage: " + ANSWER])[0][2:]
    assert len(query) == len(encoder.tokenizer(QUERY, add_special_tokens=False)["input_ids"])
    assert reranker.score(QUERY, [ANSWER])[0].raw == pytest.approx(maxsim(query, passage), abs=1e-5)
    unprefixed = maxsim(encoder.token_embeddings([QUERY])[0], encoder.token_embeddings([ANSWER])[0])
    assert reranker.score(QUERY, [ANSWER])[0].raw != pytest.approx(unprefixed, abs=1e-4)


def test_label_and_interface(reranker, encoder):
    assert isinstance(reranker, Reranker)
    assert reranker.label == LATE_INTERACTION_LABEL == "late-interaction fallback, not a cross-encoder"
    assert reranker.is_cross_encoder is False and reranker.backend == "late-interaction"
    assert (reranker.max_length, reranker.remote, reranker.tokenizer) == (512, False, encoder.tokenizer)
    assert reranker.dtype == encoder.dtype == "q4_0", "the bundled e5's 4-bit weights"
    query = len(encoder.tokenizer("query: " + QUERY)["input_ids"])
    answer = len(encoder.tokenizer("passage: " + ANSWER)["input_ids"])
    long = len(encoder.tokenizer("passage: " + "tea " * 600)["input_ids"])
    assert reranker.pair_lengths(QUERY, [ANSWER, "tea " * 600]) == [max(query, answer), long]
    assert long > reranker.max_length, "the long passage is counted whole"
    assert reranker.score(QUERY, []) == []
    with pytest.raises(ValueError, match="query is empty"):
        reranker.score(" ", [ANSWER])


def test_concurrent_calls_share_the_cache_safely(reranker):
    passages = [ANSWER, *UNRELATED]
    expected = [s.raw for s in reranker.score(QUERY, passages)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: [s.raw for s in reranker.score(QUERY, passages)], range(8)))
    assert all(result == pytest.approx(expected, abs=1e-6) for result in results)
    assert reranker.cache_info()[:3] == (32, 4, 4)


def test_progress_after_every_encoded_batch_with_cached_passages_done_at_once(encoder):
    reranker = LateInteractionReranker(encoder, batch_size=2)
    reranker.score(QUERY, [ANSWER])  # cached from now on
    seen = []

    scores = reranker.score(QUERY, [ANSWER, *UNRELATED], progress=lambda done, total: seen.append((done, total)))

    assert seen == [(3, 4), (4, 4)], "ANSWER was cached: it counts with the first batch of two"
    assert [s.raw for s in scores] == pytest.approx([s.raw for s in LateInteractionReranker(encoder).score(
        QUERY, [ANSWER, *UNRELATED])], abs=1e-6)
    seen.clear()
    reranker.score(QUERY, [ANSWER, *UNRELATED], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(4, 4)], "all cached: one report"


def test_should_stop_cancels_between_batches_and_keeps_what_was_encoded(encoder):
    reranker = LateInteractionReranker(encoder, batch_size=1)
    passages = [ANSWER, *UNRELATED]
    expected = [s.raw for s in LateInteractionReranker(encoder).score(QUERY, passages)]
    seen = []

    with pytest.raises(RerankCancelled) as cancelled:
        reranker.score(QUERY, passages, progress=lambda done, total: seen.append(done),
                       should_stop=lambda: len(seen) >= 2)

    error = cancelled.value
    assert (error.done, error.total) == (2, 4) and sorted(error.partial) == [0, 1]
    assert [error.partial[i].raw for i in (0, 1)] == pytest.approx(expected[:2], abs=1e-6)
    assert reranker.cache_info().size == 2, "the encoded passages stay cached for the next run"
