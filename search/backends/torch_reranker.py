"""The torch reranker backend: cross-encoders (bge-reranker-base, bge-reranker-v2-m3 or any local one-logit
sequence classifier) through transformers' `AutoModelForSequenceClassification`.

Loads safetensors weights only and never runs remote code (`models.load_kwargs`). Its errors say why a
model can't be used; `search.loading` adds which setting to change and falls back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from ..inference import RERANK_LOCK, PairScore, RerankerUnavailable, sigmoid
from ..models import error_summary, load_kwargs, model_spec, pretrained_source

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 16

# Models whose position ids count from padding_idx + 1 (RoBERTa family): they have two fewer usable
# positions than `max_position_embeddings` says.
_PADDING_OFFSET_POSITIONS = frozenset({"roberta", "xlm-roberta", "xlm-roberta-xl", "camembert"})


class CrossEncoderReranker:
    """A sequence-classification model with one output logit that reads query and passage together.

    Pairs are tokenised as (query, passage), passages cut to fit (``truncation="only_second"``), sorted
    by token length and run in right-padded batches, so scores do not depend on batch size or order.
    A query longer than half the window is first cut to half the window (logged, and flagged as
    `PairScore.query_truncated`) so every passage keeps at least the other half.

    Raises RerankerUnavailable when the model can't be loaded or is not a one-logit classifier (the
    message says why; `search.loading.load_reranker` adds which setting to change).
    """

    backend = "torch"
    is_cross_encoder = True

    def __init__(self, model_id: str, device: str = "cpu", *, batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        self.model_id = model_id
        self.label = model_id
        self.device = device
        self.batch_size = batch_size
        self.tokenizer, self.model = _load_sequence_classifier(model_id, device)
        self.model.eval()
        self.max_length = _max_length(model_id, self.tokenizer, self.model.config)
        self._pair_specials = self.tokenizer.num_special_tokens_to_add(pair=True)
        # The query may take at most half of what the special tokens leave.
        self.max_query_tokens = (self.max_length - self._pair_specials) // 2

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.model_id!r}, device={self.device!r}, max_length={self.max_length})"

    def score(self, query: str, passages: Sequence[str], *, batch_size: int | None = None) -> list[PairScore]:
        """Return raw logits and their sigmoids for `passages` against `query`, in input order.

        `batch_size` overrides the reranker's default (16) for this call. Raises ValueError for an empty
        query or a batch size below 1.
        """
        import torch

        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        if not passages:
            return []
        with RERANK_LOCK:
            rows, truncated, query_truncated = self._encode(query, passages)
            logits = [0.0] * len(passages)
            # Sorting by length keeps padding (wasted compute) small within each batch. On CPU batching
            # itself gains little (see benchmarks/bench_rerank.py); on a GPU it is most of the speed.
            order = sorted(range(len(rows)), key=lambda i: len(rows[i]["input_ids"]))
            with torch.inference_mode():
                for start in range(0, len(order), batch_size):
                    positions = order[start:start + batch_size]
                    # Right padding: positions count from the left, so real tokens keep the position ids
                    # they have in an unpadded pass and the attention mask hides the padding.
                    batch = self.tokenizer.pad([rows[i] for i in positions], padding=True, padding_side="right",
                                               return_tensors="pt")
                    batch = {key: value.to(self.model.device) for key, value in batch.items()}
                    out = self.model(**batch).logits[:, 0].float().cpu().tolist()
                    for position, logit in zip(positions, out, strict=True):
                        logits[position] = logit
        return [PairScore(raw, sigmoid(raw), cut, query_truncated)
                for raw, cut in zip(logits, truncated, strict=True)]

    def pair_token_ids(self, query: str, passages: Sequence[str]) -> list[list[int]]:
        """Return the token ids the model reads for each pair, after truncation (to show what was cut)."""
        rows, _, _ = self._encode(query, passages)
        return [list(row["input_ids"]) for row in rows]

    def _encode(self, query: str, passages: Sequence[str]) -> tuple[list[dict], list[bool], bool]:
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        query, query_tokens, query_truncated = self._fit_query(query)
        # Un-truncated lengths; verbose=False silences the "longer than the maximum" warning we expect here.
        passage_tokens = [len(ids) for ids in self.tokenizer(list(passages), add_special_tokens=False,
                                                             verbose=False)["input_ids"]]
        truncated = [query_tokens + n + self._pair_specials > self.max_length for n in passage_tokens]
        encoded = self.tokenizer([query] * len(passages), list(passages), truncation="only_second",
                                 max_length=self.max_length)
        rows = [{key: encoded[key][i] for key in encoded.keys()} for i in range(len(passages))]
        return rows, truncated, query_truncated

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


def _load_sequence_classifier(model_id: str, device: str):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    location = os.path.expanduser(model_id)
    try:
        source = pretrained_source(location)
        config = AutoConfig.from_pretrained(location, **source, trust_remote_code=False)
        _check_one_logit_classifier(model_id, config)
        tokenizer = AutoTokenizer.from_pretrained(location, **source, trust_remote_code=False)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            location, **source, **load_kwargs(device), output_loading_info=True)
    except RerankerUnavailable:
        raise
    except (OSError, ValueError, ImportError, KeyError) as error:
        raise RerankerUnavailable(f"reranker {model_id!r} could not be loaded: {_first_line(error)}") from error
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise RerankerUnavailable(
            f"reranker {model_id!r} has no trained classification head (missing weights: "
            f"{', '.join(missing[:4])}); it is not a cross-encoder.")
    return tokenizer, model.to(device)


def _check_one_logit_classifier(model_id: str, config) -> None:
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


def _max_length(model_id: str, tokenizer, config) -> int:
    limits = [model_spec(model_id, "reranker").max_length]
    tokenizer_limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    if 0 < tokenizer_limit < 1_000_000:  # unset limits are reported as a huge sentinel
        limits.append(tokenizer_limit)
    positions = getattr(config, "max_position_embeddings", None)
    if positions:
        offset = (config.pad_token_id or 0) + 1 if config.model_type in _PADDING_OFFSET_POSITIONS else 0
        limits.append(int(positions) - offset)
    return min(limits)


def _first_line(error: BaseException) -> str:
    return error_summary(error).rstrip(".") + "."
