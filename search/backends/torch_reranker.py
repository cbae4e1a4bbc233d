"""The torch reranker backend: cross-encoders (bge-reranker-base, bge-reranker-v2-m3 or any local one-logit
sequence classifier) through transformers' `AutoModelForSequenceClassification`.

Loads safetensors weights only and never runs remote code (`models.load_kwargs`). Its errors say why a
model can't be used; `search.loading` adds which setting to change and falls back.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..inference import PairScore, ProgressFn, RerankerUnavailable, StopFn
from ..models import error_summary, load_kwargs, pretrained_source
from .runtime.pairs import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_PADDING,
    PairTokenizer,
    Row,
    check_batching,
    check_one_logit_classifier,
    check_trained_head,
    score_in_buckets,
)


class CrossEncoderReranker:
    """A sequence-classification model with one output logit that reads query and passage together.

    Pairs are tokenised as (query, passage), passages cut to fit (``truncation="only_second"``), sorted
    by token length and run in right-padded batches of similar length (`length_buckets`: at most
    `batch_size` pairs, padding at most `max_padding` of a batch's tokens), so scores do not depend on
    batch size or order.
    A query longer than half the window is first cut to half the window (logged, and flagged as
    `PairScore.query_truncated`) so every passage keeps at least the other half.

    Raises RerankerUnavailable when the model can't be loaded or is not a one-logit classifier (the
    message says why; `search.loading.load_reranker` adds which setting to change).
    """

    backend = "torch"
    is_cross_encoder = True
    remote = False

    def __init__(self, model_id: str, device: str = "cpu", *, batch_size: int = DEFAULT_BATCH_SIZE,
                 max_padding: float = DEFAULT_MAX_PADDING) -> None:
        check_batching(batch_size, max_padding)
        self.model_id = model_id
        self.label = model_id
        self.device = device
        self.batch_size = batch_size
        self.max_padding = max_padding
        self.tokenizer, self.model = _load_sequence_classifier(model_id, device)
        self.model.eval()
        self.pairs = PairTokenizer(model_id, self.tokenizer, self.model.config)
        self.max_length = self.pairs.max_length
        self.max_query_tokens = self.pairs.max_query_tokens
        self.dtype = str(self.model.dtype).removeprefix("torch.")

    def __repr__(self) -> str:
        return f"CrossEncoderReranker({self.model_id!r}, device={self.device!r}, max_length={self.max_length})"

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None, batch_size: int | None = None,
              max_padding: float | None = None) -> list[PairScore]:
        """Return raw logits and their sigmoids for `passages` against `query`, in input order.

        `progress(done, total)` is called after every batch; `should_stop()` is polled before every batch
        (and while another rerank holds the lock) and raises RerankCancelled with the scores finished so
        far. `batch_size` and `max_padding` override the reranker's defaults (16 and 0.1) for this call;
        ``max_padding=1.0`` batches by size only. Raises ValueError for an empty query or a bad batch
        setting.
        """
        import torch

        def run_batch(rows: Sequence[Row]) -> list[float]:
            batch = {key: value.to(self.model.device) for key, value in self.pairs.pad(rows, "pt").items()}
            with torch.inference_mode():
                return self.model(**batch).logits[:, 0].float().cpu().tolist()

        return score_in_buckets(self.pairs, query, passages, run_batch,
                                batch_size=self.batch_size if batch_size is None else batch_size,
                                max_padding=self.max_padding if max_padding is None else max_padding,
                                progress=progress, should_stop=should_stop)

    def passage_caching(self) -> None:
        """None: a cross-encoder reads every (query, passage) pair whole (see `Reranker`)."""
        return None

    def pair_lengths(self, query: str, passages: Sequence[str]) -> list[int]:
        """Return the tokens each (query, passage) pair takes before truncation (see `Reranker`)."""
        return self.pairs.pair_lengths(query, passages)

    def pair_token_ids(self, query: str, passages: Sequence[str]) -> list[list[int]]:
        """Return the token ids the model reads for each pair, after truncation (to show what was cut)."""
        rows, _, _ = self.pairs.encode(query, passages)
        return [list(row["input_ids"]) for row in rows]


def _load_sequence_classifier(model_id: str, device: str):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    location = os.path.expanduser(model_id)
    try:
        source = pretrained_source(location)
        config = AutoConfig.from_pretrained(location, **source, trust_remote_code=False)
        check_one_logit_classifier(model_id, config)
        tokenizer = AutoTokenizer.from_pretrained(location, **source, trust_remote_code=False)
        model, info = AutoModelForSequenceClassification.from_pretrained(
            location, **source, **load_kwargs(device), output_loading_info=True)
    except RerankerUnavailable:
        raise
    except (OSError, ValueError, ImportError, KeyError) as error:
        raise RerankerUnavailable(f"reranker {model_id!r} could not be loaded: {_first_line(error)}") from error
    check_trained_head(model_id, info.get("missing_keys") or ())
    return tokenizer, model.to(device)


def _first_line(error: BaseException) -> str:
    return error_summary(error).rstrip(".") + "."
