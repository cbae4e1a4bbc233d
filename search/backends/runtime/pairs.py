"""How every cross-encoder backend reads (query, passage) pairs, so that all of them score the same pairs
the same way; no model code.

- `check_one_logit_classifier`, `check_trained_head`, `window`: whether a model is a one-logit
  cross-encoder, and its window.
- `PairTokenizer`: pairs tokenised as (query, passage), the query cut to at most half the window
  (reported) and passages cut to fit (``truncation="only_second"``, reported per pair).
- `length_buckets`, `padding_share`: length-sorted batches with little padding.
- `score_in_buckets`: the scoring loop every local cross-encoder backend runs, with progress,
  cancellation and `RERANK_LOCK`; a backend only says how to run one right-padded batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ...inference import (
    PairScore,
    ProgressFn,
    RerankCancelled,
    RerankerUnavailable,
    StopFn,
    rerank_turn,
    sigmoid,
)
from ...models import model_spec

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16
# A batch is closed before padding would exceed this share of its tokens: padded positions are computed
# like real ones, and on a CPU a batch-1 loop (no padding at all) beat loose buckets by 7-12%.
DEFAULT_MAX_PADDING = 0.1

# Models whose position ids count from padding_idx + 1 (RoBERTa family): they have two fewer usable
# positions than `max_position_embeddings` says.
_PADDING_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert"})

Row = dict[str, list[int]]
"""One tokenised pair: what the tokenizer gives for it (input_ids, attention_mask, maybe token_type_ids)."""


class PairTokenizer:
    """Tokenises (query, passage) pairs for the cross-encoder `model_id` within its `max_length` window.

    A query longer than half the window is first cut to half the window (logged, and flagged as
    `PairScore.query_truncated`) so every passage keeps at least the other half; passages are cut to fit.
    """

    def __init__(self, model_id: str, tokenizer: Any, config: Any) -> None:
        self.model_id = model_id
        self.tokenizer = tokenizer
        self.max_length = window(model_id, tokenizer, config)
        self.pair_specials = tokenizer.num_special_tokens_to_add(pair=True)
        # The query may take at most half of what the special tokens leave.
        self.max_query_tokens = (self.max_length - self.pair_specials) // 2

    def encode(self, query: str, passages: Sequence[str]) -> tuple[list[Row], list[bool], bool]:
        """Return the tokenised pairs, whether each passage was cut, and whether the query was.

        Raises ValueError for an empty query."""
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        query, query_tokens, query_truncated = self._fit_query(query)
        # Un-truncated lengths; verbose=False silences the "longer than the maximum" warning we expect here.
        passage_tokens = [len(ids) for ids in self.tokenizer(list(passages), add_special_tokens=False,
                                                             verbose=False)["input_ids"]]
        truncated = [query_tokens + n + self.pair_specials > self.max_length for n in passage_tokens]
        encoded = self.tokenizer([query] * len(passages), list(passages), truncation="only_second",
                                 max_length=self.max_length)
        rows = [{key: encoded[key][i] for key in encoded.keys()} for i in range(len(passages))]
        return rows, truncated, query_truncated

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int]:
        """Return the tokens each (query, passage) pair takes before any truncation, special tokens included."""
        if not passages:
            return []
        query_tokens = len(self.tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"])
        passage_tokens = self.tokenizer(list(passages), add_special_tokens=False, verbose=False)["input_ids"]
        return [query_tokens + len(ids) + self.pair_specials for ids in passage_tokens]

    def pad(self, rows: Sequence[Row], return_tensors: str) -> Any:
        """Right-pad `rows` to the longest one: real tokens keep the position ids they have in an unpadded
        pass, and the attention mask hides the padding."""
        return self.tokenizer.pad(list(rows), padding=True, padding_side="right", return_tensors=return_tensors)

    def _fit_query(self, query: str) -> tuple[str, int, bool]:
        fast = getattr(self.tokenizer, "is_fast", False)
        encoded = self.tokenizer(query, add_special_tokens=False, return_offsets_mapping=fast, verbose=False)
        if len(encoded["input_ids"]) <= self.max_query_tokens:
            return query, len(encoded["input_ids"]), False
        # Cut the text at a token boundary; re-tokenising a prefix can rarely add a token, so re-check.
        cut, cut_tokens = "", 0
        for keep in range(self.max_query_tokens, 0, -1):
            candidate = (query[:encoded["offset_mapping"][keep - 1][1]] if fast
                         else self.tokenizer.decode(encoded["input_ids"][:keep]))
            candidate_tokens = len(self.tokenizer(candidate, add_special_tokens=False)["input_ids"])
            if candidate_tokens <= self.max_query_tokens:
                cut, cut_tokens = candidate, candidate_tokens
                break
        logger.warning("query of %d tokens cut to %d for %s (at most half of its %d-token window)",
                       len(encoded["input_ids"]), cut_tokens, self.model_id, self.max_length)
        return cut, cut_tokens, True


def score_in_buckets(pairs: PairTokenizer, query: str, passages: Sequence[str],
                     run_batch: Callable[[Sequence[Row]], Sequence[float]], *, batch_size: int, max_padding: float,
                     progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> list[PairScore]:
    """Score `passages` against `query` in length buckets (see `length_buckets`), holding `RERANK_LOCK`.

    `run_batch(rows)` returns one logit per row of a batch. `progress(done, total)` is called after every
    batch; `should_stop()` is polled before every batch (and while another rerank holds the lock) and
    raises RerankCancelled with the scores finished so far. Raises ValueError for an empty query or a bad
    batch setting.
    """
    check_batching(batch_size, max_padding)
    if not passages:
        return []
    total = len(passages)
    with rerank_turn(should_stop, total=total):
        rows, truncated, query_truncated = pairs.encode(query, passages)
        logits: dict[int, float] = {}

        def finished() -> dict[int, PairScore]:
            return {i: PairScore(raw, sigmoid(raw), truncated[i], query_truncated) for i, raw in logits.items()}

        # On CPU batching itself gains little (see benchmarks/bench_rerank.py); on a GPU it is most of
        # the speed. Padding is pure waste either way, hence the length buckets.
        for positions in length_buckets([len(row["input_ids"]) for row in rows], batch_size, max_padding):
            if should_stop is not None and should_stop():
                raise RerankCancelled(len(logits), total, finished())
            out = [float(value) for value in run_batch([rows[i] for i in positions])]
            logits.update(zip(positions, out, strict=True))
            if progress is not None:
                progress(len(logits), total)
        scores = finished()
    return [scores[i] for i in range(total)]


def length_buckets(lengths: Sequence[int], batch_size: int,
                   max_padding: float = DEFAULT_MAX_PADDING) -> list[list[int]]:
    """Group positions of `lengths` (tokens per pair) into batches of similar length, shortest first.

    Positions are sorted by length; a batch is closed when it holds `batch_size` pairs or when adding the
    next (longer) pair would make padding more than `max_padding` of the batch's tokens (every pair is
    padded to the longest in its batch). ``max_padding=1.0`` closes batches by size only.

    >>> length_buckets([10, 30, 11, 12, 29], batch_size=4)
    [[0, 2, 3], [4, 1]]
    >>> length_buckets([10, 30, 11, 12, 29], batch_size=4, max_padding=1.0)
    [[0, 2, 3, 4], [1]]
    """
    check_batching(batch_size, max_padding)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for position in order:
        length = lengths[position]
        if current:
            padded = (len(current) + 1) * length  # sorted: this pair is the longest so far
            if len(current) == batch_size or padded - (real + length) > max_padding * padded:
                batches.append(current)
                current, real = [], 0
        current.append(position)
        real += length
    if current:
        batches.append(current)
    return batches


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """The share of computed tokens that are padding when `batches` (positions of `lengths`) each run
    padded to their longest pair.

    >>> round(padding_share([10, 30, 11, 12], [[0, 2, 3], [1]]), 4)  # 36 + 30 computed, 63 real
    0.0455
    """
    computed = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches if batch)
    return 1.0 - sum(lengths[i] for batch in batches for i in batch) / computed if computed else 0.0


def check_batching(batch_size: int, max_padding: float) -> None:
    """Raise ValueError naming the fix for a batch size below 1 or a padding share outside [0, 1]."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be at least 1")
    if not 0.0 <= max_padding <= 1.0:
        raise ValueError(f"max_padding={max_padding} is a share of a batch's tokens; use 0 <= max_padding <= 1 "
                         "(0: only equal lengths share a batch, 1: batch by size only)")


def check_one_logit_classifier(model_id: str, config: Any) -> None:
    """Raise RerankerUnavailable unless `config` is a sequence classifier with exactly one label."""
    architectures = list(getattr(config, "architectures", None) or [])
    if not any(name.endswith("ForSequenceClassification") for name in architectures):
        found = ", ".join(architectures) or "no architecture"
        raise RerankerUnavailable(f"reranker {model_id!r} is not a sequence classifier ({found}); a cross-encoder "
                                  "reranker is one with a single relevance logit.")
    # Two or more labels are classes (e.g. entailment / contradiction), not one relevance score; picking
    # a class to rank by would be a guess, so such models are refused.
    if config.num_labels != 1:
        raise RerankerUnavailable(f"reranker {model_id!r} has num_labels={config.num_labels}; a cross-encoder "
                                  "reranker has exactly 1 label (one relevance logit).")


def check_trained_head(model_id: str, missing_keys: Sequence[str]) -> None:
    """Raise RerankerUnavailable when loading left weights untrained (`missing_keys` from transformers'
    loading info): a classifier config over a bare encoder is not a cross-encoder."""
    missing = sorted(missing_keys)
    if missing:
        raise RerankerUnavailable(
            f"reranker {model_id!r} has no trained classification head (missing weights: "
            f"{', '.join(missing[:4])}); it is not a cross-encoder.")


def window(model_id: str, tokenizer: Any, config: Any) -> int:
    """The tokens a pair may have: the least of the model table's, the tokenizer's and the position limit."""
    limits = [model_spec(model_id, "reranker").max_length]
    tokenizer_limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    if 0 < tokenizer_limit < 1_000_000:  # unset limits are reported as a huge sentinel
        limits.append(tokenizer_limit)
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = (config.pad_token_id or 0) + 1 if config.model_type in _PADDING_OFFSET_POSITIONS else 0
        limits.append(int(positions) - offset)
    return min(limits)
