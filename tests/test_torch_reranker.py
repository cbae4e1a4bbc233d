"""The torch cross-encoder backend against a plain one-pair-at-a-time reference, on tiny local XLM-R models
(loaded through `search.loading.load_reranker`, as the app does; its `.inner` is the backend itself, without
the score cache in front). The fidelity tests run for every exact backend (`EXACT_BACKENDS`)."""

from __future__ import annotations

import math
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaModel

from search.backends.runtime.pairs import length_buckets, padding_share
from search.backends.torch_reranker import CrossEncoderReranker
from search.inference import RERANK_LOCK, RerankCancelled, Reranker, RerankerUnavailable, sigmoid
from search.loading import load_reranker
from search.models import RERANKER_ENV
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
LONG_PASSAGES = [
    " ".join([PASSAGES[1]] * 6),
    " ".join([PASSAGES[2]] * 4),
    " ".join([PASSAGES[3]] * 6),
]
LONG_QUERY = " ".join([QUERY] * 12)
CORPUS = [QUERY, *PASSAGES]
SHORT_MAX_LENGTH = 48
EXACT_BACKENDS = ("torch", "onnx")  # scores equal the unbatched torch reference within 1e-4


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory) -> Path:
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-reranker"), CORPUS)


@pytest.fixture(scope="session")
def short_folder(tmp_path_factory) -> Path:
    """A model whose window is only SHORT_MAX_LENGTH tokens, to exercise truncation cheaply."""
    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-reranker-short"), CORPUS,
                                         max_position_embeddings=SHORT_MAX_LENGTH + 2)


def reference_scores(folder: Path, query: str, passages: list[str], max_length: int) -> list[float]:
    """One pair at a time, no padding, no batching: the logit each pair should get."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = XLMRobertaForSequenceClassification.from_pretrained(folder).eval()
    logits = []
    with torch.no_grad():
        for passage in passages:
            encoded = tokenizer(query, passage, truncation="only_second", max_length=max_length,
                                return_tensors="pt")
            logits.append(model(**encoded).logits[0, 0].item())
    return logits


def untruncated_length(folder: Path, query: str, passage: str) -> int:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return len(tokenizer(query, passage, verbose=False)["input_ids"])


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_scores_equal_unbatched_reference_for_any_batch_size(tiny_folder, batch_size, backend):
    reranker = load_reranker(str(tiny_folder), fallback=False, backend=backend).model.inner
    assert reranker.backend == backend
    expected = reference_scores(tiny_folder, QUERY, PASSAGES, 512)
    assert max(expected) - min(expected) > 0.1, "random weights too flat for the comparison to mean anything"

    scores = reranker.score(QUERY, PASSAGES, batch_size=batch_size)

    assert [s.raw for s in scores] == pytest.approx(expected, abs=1e-4)
    assert not any(s.truncated or s.query_truncated for s in scores)


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_scores_follow_input_order_when_shuffled(tiny_folder, backend):
    reranker = load_reranker(str(tiny_folder), fallback=False, backend=backend).model.inner
    shuffled = PASSAGES[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != PASSAGES

    scores = reranker.score(QUERY, shuffled, batch_size=4)

    assert [s.raw for s in scores] == pytest.approx(reference_scores(tiny_folder, QUERY, shuffled, 512), abs=1e-4)


def test_sigmoid_is_the_logistic_of_the_raw_logit(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model.inner
    for pair in reranker.score(QUERY, PASSAGES):
        assert pair.sigmoid == pytest.approx(1 / (1 + math.exp(-pair.raw)), abs=1e-12)
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0


def test_protocol_and_label(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False, backend="torch").model.inner
    assert isinstance(reranker, CrossEncoderReranker) and isinstance(reranker, Reranker)
    assert reranker.passage_caching() is None, "a cross-encoder reads every pair whole: it keeps no passage"
    assert reranker.is_cross_encoder and reranker.backend == "torch"
    assert reranker.label == reranker.model_id == str(tiny_folder)
    assert reranker.max_length == 512


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_truncation_cuts_only_the_passage_and_is_reported_exactly(short_folder, backend):
    reranker = load_reranker(str(short_folder), fallback=False, backend=backend).model.inner
    assert reranker.max_length == SHORT_MAX_LENGTH
    passages = PASSAGES + LONG_PASSAGES
    expected_cut = [untruncated_length(short_folder, QUERY, p) > SHORT_MAX_LENGTH for p in passages]
    assert any(expected_cut) and not all(expected_cut), "the corpus should have both short and long pairs"

    scores = reranker.score(QUERY, passages, batch_size=5)

    assert [s.truncated for s in scores] == expected_cut
    assert not any(s.query_truncated for s in scores)
    expected = reference_scores(short_folder, QUERY, passages, SHORT_MAX_LENGTH)
    assert [s.raw for s in scores] == pytest.approx(expected, abs=1e-4)
    query_ids = reranker.tokenizer(QUERY, add_special_tokens=False)["input_ids"]
    for ids, cut in zip(reranker.pair_token_ids(QUERY, passages), expected_cut, strict=True):
        assert len(ids) <= SHORT_MAX_LENGTH
        assert ids[1:1 + len(query_ids)] == query_ids, "the query must reach the model whole"
        assert (len(ids) == SHORT_MAX_LENGTH) or not cut


@pytest.mark.parametrize("backend", EXACT_BACKENDS)
def test_a_query_longer_than_half_the_window_is_cut_to_half(short_folder, backend):
    reranker = load_reranker(str(short_folder), fallback=False, backend=backend).model.inner
    half = (SHORT_MAX_LENGTH - reranker.tokenizer.num_special_tokens_to_add(pair=True)) // 2

    scores = reranker.score(LONG_QUERY, [PASSAGES[0], LONG_PASSAGES[0]])

    assert all(s.query_truncated for s in scores)
    assert [s.truncated for s in scores] == [True, True]
    sep = reranker.tokenizer.sep_token_id
    for ids in reranker.pair_token_ids(LONG_QUERY, [PASSAGES[0], LONG_PASSAGES[0]]):
        query_part = ids[1:ids.index(sep)]
        assert 0 < len(query_part) <= half
        assert len(ids) - len(query_part) - 4 >= SHORT_MAX_LENGTH - half - 4, "the passage keeps the other half"


def test_concurrent_calls_give_the_same_scores(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model.inner
    expected = [s.raw for s in reranker.score(QUERY, PASSAGES)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: [s.raw for s in reranker.score(QUERY, PASSAGES, batch_size=3)], range(4)))
    for result in results:
        assert result == pytest.approx(expected, abs=1e-5)


def test_empty_inputs(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model.inner
    assert reranker.score(QUERY, []) == []
    with pytest.raises(ValueError, match="query is empty"):
        reranker.score("   ", PASSAGES)
    with pytest.raises(ValueError, match="batch_size=0"):
        reranker.score(QUERY, PASSAGES, batch_size=0)


def test_pickle_only_folder_is_refused(tiny_folder, tmp_path):
    folder = tmp_path / "pickle-only"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tiny_folder / name).read_bytes())
    torch.save({}, folder / "pytorch_model.bin")

    with pytest.raises(RerankerUnavailable, match="safetensors") as error:
        load_reranker(str(folder), fallback=False)
    assert RERANKER_ENV in str(error.value) and "pytorch_model.bin" in str(error.value)


def test_two_label_classifier_is_refused(tmp_path):
    folder = build_tiny_xlmr_cross_encoder(tmp_path / "two-labels", CORPUS, num_labels=2)
    with pytest.raises(RerankerUnavailable, match="num_labels=2"):
        load_reranker(str(folder), fallback=False)


def test_model_without_classification_head_is_refused(tiny_folder, tmp_path):
    folder = tmp_path / "encoder-only"
    config = XLMRobertaConfig.from_pretrained(tiny_folder)
    config.architectures = None
    XLMRobertaModel(config).save_pretrained(folder)
    with pytest.raises(RerankerUnavailable, match="not a sequence classifier"):
        load_reranker(str(folder), fallback=False)


def test_classifier_config_without_trained_head_weights_is_refused(tiny_folder, tmp_path):
    folder = tmp_path / "untrained-head"
    config = XLMRobertaConfig.from_pretrained(tiny_folder)
    XLMRobertaModel(config).save_pretrained(folder)
    config.architectures = ["XLMRobertaForSequenceClassification"]
    config.save_pretrained(folder)
    with pytest.raises(RerankerUnavailable, match="no trained classification head"):
        load_reranker(str(folder), fallback=False)


# -- length buckets, progress and cancellation ------------------------------------------------------------

@pytest.fixture
def counted(tiny_folder):
    """The tiny cross-encoder with a hook that records each forward pass's input shape."""
    reranker = load_reranker(str(tiny_folder), fallback=False, backend="torch").model.inner
    shapes: list[tuple[int, int]] = []
    handle = reranker.model.register_forward_pre_hook(
        lambda module, args, kwargs: shapes.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True)
    yield reranker, shapes
    handle.remove()


@given(st.lists(st.integers(1, 512), max_size=60), st.integers(1, 20), st.sampled_from([0.0, 0.05, 0.1, 0.5, 1.0]))
def test_length_buckets_cover_every_pair_once_within_size_and_padding(lengths, batch_size, max_padding):
    batches = length_buckets(lengths, batch_size, max_padding)

    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    order = [i for batch in batches for i in batch]
    assert [lengths[i] for i in order] == sorted(lengths), "shortest pairs first, batches in length order"
    for batch in batches:
        assert 1 <= len(batch) <= batch_size
        assert padding_share(lengths, [batch]) <= max_padding + 1e-12, (batch, [lengths[i] for i in batch])
    # Closing a batch early is only allowed when the next pair was too long for it.
    for batch, following in zip(batches, batches[1:], strict=False):
        if len(batch) < batch_size:
            assert padding_share(lengths, [[*batch, following[0]]]) > max_padding


def test_length_buckets_by_size_only_is_the_old_sorted_batching():
    lengths = [40, 12, 33, 12, 90, 41, 5]
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    assert length_buckets(lengths, 3, max_padding=1.0) == [order[0:3], order[3:6], order[6:]]
    assert length_buckets(lengths, 3, max_padding=0.0) == [[6], [1, 3], [2], [0], [5], [4]]
    with pytest.raises(ValueError, match="max_padding=1.5"):
        length_buckets(lengths, 3, max_padding=1.5)


@pytest.mark.parametrize("max_padding", [0.0, 0.1, 1.0])
def test_scores_do_not_depend_on_the_padding_limit(tiny_folder, counted, max_padding):
    reranker, shapes = counted
    expected = reference_scores(tiny_folder, QUERY, PASSAGES, 512)
    lengths = [len(ids) for ids in reranker.pair_token_ids(QUERY, PASSAGES)]

    scores = reranker.score(QUERY, PASSAGES, max_padding=max_padding)

    assert [s.raw for s in scores] == pytest.approx(expected, abs=1e-4)
    buckets = length_buckets(lengths, reranker.batch_size, max_padding)
    assert shapes == [(len(batch), max(lengths[i] for i in batch)) for batch in buckets], "what the model computed"
    computed = sum(rows * width for rows, width in shapes)
    assert 1 - sum(lengths) / computed <= max_padding + 1e-12


def test_default_buckets_compute_less_padding_than_size_only_batches(counted):
    reranker, shapes = counted
    passages = PASSAGES + LONG_PASSAGES
    lengths = [len(ids) for ids in reranker.pair_token_ids(QUERY, passages)]

    reranker.score(QUERY, passages, max_padding=1.0)
    loose = sum(rows * width for rows, width in shapes)
    shapes.clear()
    reranker.score(QUERY, passages)
    tight = sum(rows * width for rows, width in shapes)

    assert 1 - sum(lengths) / loose > 0.3, "the test passages should pad a lot in one batch"
    assert 1 - sum(lengths) / tight <= 0.1 and tight < loose


def test_progress_after_every_batch(counted):
    reranker, shapes = counted
    seen = []

    reranker.score(QUERY, PASSAGES, batch_size=3, progress=lambda done, total: seen.append((done, total)))

    sizes = [rows for rows, _ in shapes]
    assert seen == [(sum(sizes[:n]), len(PASSAGES)) for n in range(1, len(sizes) + 1)]
    assert seen[-1] == (len(PASSAGES), len(PASSAGES)) and len(seen) >= 4


def test_should_stop_cancels_within_one_batch_and_keeps_the_finished_scores(tiny_folder, counted):
    reranker, shapes = counted
    expected = reference_scores(tiny_folder, QUERY, PASSAGES, 512)
    seen = []

    with pytest.raises(RerankCancelled) as cancelled:
        reranker.score(QUERY, PASSAGES, batch_size=3, progress=lambda done, total: seen.append(done),
                       should_stop=lambda: len(seen) >= 2)

    assert len(shapes) == 2, "no batch may start after should_stop said stop"
    error = cancelled.value
    assert (error.done, error.total) == (seen[-1], len(PASSAGES)) and len(error.partial) == error.done
    assert str(error) == f"rerank cancelled after {error.done} of {len(PASSAGES)} pairs"
    for position, pair in error.partial.items():
        assert pair.raw == pytest.approx(expected[position], abs=1e-4)


def test_a_rerank_waiting_for_the_lock_can_be_cancelled(counted):
    reranker, shapes = counted
    stop = threading.Event()
    with RERANK_LOCK:  # another rerank is running
        with ThreadPoolExecutor(max_workers=1) as pool:
            waiting = pool.submit(reranker.score, QUERY, PASSAGES, should_stop=stop.is_set)
            time.sleep(0.2)
            assert not waiting.done(), "it must wait for its turn"
            stop.set()
            with pytest.raises(RerankCancelled) as cancelled:
                waiting.result(timeout=5)
    assert (cancelled.value.done, cancelled.value.total) == (0, len(PASSAGES)) and shapes == []
