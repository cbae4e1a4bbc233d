"""The torch cross-encoder backend against a plain one-pair-at-a-time reference, on tiny local XLM-R models
(loaded through `search.loading.load_reranker`, as the app does)."""

from __future__ import annotations

import math
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaForSequenceClassification, XLMRobertaModel

from search.backends.torch_reranker import CrossEncoderReranker
from search.inference import Reranker, RerankerUnavailable, sigmoid
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


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_scores_equal_unbatched_reference_for_any_batch_size(tiny_folder, batch_size):
    reranker = load_reranker(str(tiny_folder), fallback=False).model
    expected = reference_scores(tiny_folder, QUERY, PASSAGES, 512)
    assert max(expected) - min(expected) > 0.1, "random weights too flat for the comparison to mean anything"

    scores = reranker.score(QUERY, PASSAGES, batch_size=batch_size)

    assert [s.raw for s in scores] == pytest.approx(expected, abs=1e-4)
    assert not any(s.truncated or s.query_truncated for s in scores)


def test_scores_follow_input_order_when_shuffled(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model
    shuffled = PASSAGES[:]
    random.Random(7).shuffle(shuffled)
    assert shuffled != PASSAGES

    scores = reranker.score(QUERY, shuffled, batch_size=4)

    assert [s.raw for s in scores] == pytest.approx(reference_scores(tiny_folder, QUERY, shuffled, 512), abs=1e-4)


def test_sigmoid_is_the_logistic_of_the_raw_logit(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model
    for pair in reranker.score(QUERY, PASSAGES):
        assert pair.sigmoid == pytest.approx(1 / (1 + math.exp(-pair.raw)), abs=1e-12)
    assert sigmoid(-1000.0) == 0.0 and sigmoid(1000.0) == 1.0


def test_protocol_and_label(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model
    assert isinstance(reranker, CrossEncoderReranker) and isinstance(reranker, Reranker)
    assert reranker.is_cross_encoder and reranker.backend == "torch"
    assert reranker.label == reranker.model_id == str(tiny_folder)
    assert reranker.max_length == 512


def test_truncation_cuts_only_the_passage_and_is_reported_exactly(short_folder):
    reranker = load_reranker(str(short_folder), fallback=False).model
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


def test_a_query_longer_than_half_the_window_is_cut_to_half(short_folder):
    reranker = load_reranker(str(short_folder), fallback=False).model
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
    reranker = load_reranker(str(tiny_folder), fallback=False).model
    expected = [s.raw for s in reranker.score(QUERY, PASSAGES)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: [s.raw for s in reranker.score(QUERY, PASSAGES, batch_size=3)], range(4)))
    for result in results:
        assert result == pytest.approx(expected, abs=1e-5)


def test_empty_inputs(tiny_folder):
    reranker = load_reranker(str(tiny_folder), fallback=False).model
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
