"""`TEIReranker`: a reranker behind a TEI endpoint's `POST /rerank` (`search.inference.Reranker`).

Requests carry ``raw_scores`` and ``truncate``; TEI answers sorted by score with each text's `index`, mapped
back to input order here. Truncation is the server's: `PairScore.truncated` is None (unknown).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from ...inference import PairScore, ProgressFn, RerankCancelled, RerankerUnavailable, StopFn, sigmoid
from .client import RequestLatency, TEIClient
from .discovery import DEFAULT_CHUNK, discover, note_other_model
from .errors import TEIError, TEIRequestCancelled
from .policy import endpoint_urls

logger = logging.getLogger(__name__)


class TEIReranker:
    """A reranker behind a TEI endpoint (`search.loading` builds it for ``backend="tei"``).

    `endpoint` is one URL or several, comma-separated (the first serving a reranker is used). `model_id`
    is the model the endpoint serves (`requested_id` what the settings asked for); `device` is the
    endpoint's URL, so the score cache keeps each endpoint's scores apart. Scores are the raw logits
    (``raw_scores``), their sigmoid, and ``truncated=None``: the server truncates (``truncate``) and does
    not say whether it did. Scoring does not hold RERANK_LOCK (`remote`): the compute is the server's.

    Raises RerankerUnavailable (with the TEIError as its cause) when the endpoint can't be reached or does
    not serve a reranker; the message says which setting to change.
    """

    backend = "tei"
    remote = True
    tokenizer = None  # the endpoint tokenizes
    dtype = "unknown"  # the endpoint's; its /info is not read for it

    def __init__(self, model_id: str, endpoint: str, *, batch_size: int = DEFAULT_CHUNK,
                 client_options: dict[str, Any] | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be at least 1")
        try:
            self.client, self.info = discover(endpoint_urls(endpoint), "reranker",
                                              make_client=lambda url: TEIClient(url, **(client_options or {})))
        except TEIError as error:
            raise RerankerUnavailable(str(error)) from error
        try:
            self.requested_id = model_id
            self.model_id = self.info.model_id
            self.device = self.info.url
            self.label = f"{self.model_id} via TEI ({self.client.host})"
            self.is_cross_encoder = self.info.cross_encoder
            self.max_length = self.info.max_input_length
            self._chunk = max(1, min(batch_size, self.info.max_client_batch_size))
            note_other_model(model_id, self.model_id, self.client.host)
        except BaseException:
            self.client.close()
            raise

    def __repr__(self) -> str:
        return f"TEIReranker({self.model_id!r}, endpoint={self.device!r})"

    def latency(self) -> RequestLatency:
        return self.client.latency()

    def passage_caching(self) -> None:
        """None: the endpoint scores every (query, passage) pair it is sent (see `Reranker`)."""
        return None

    def pair_lengths(self, query: str, passages: Sequence[str]) -> None:
        """None: only the endpoint knows its tokens (see `Reranker`)."""
        return None

    def score(self, query: str, passages: Sequence[str], *, progress: ProgressFn | None = None,
              should_stop: StopFn | None = None) -> list[PairScore]:
        """Return one PairScore per passage in input order, scored by the endpoint.

        Requests carry at most the endpoint's `max_client_batch_size` passages; one the server refuses as
        too large (413/422) is split in half and retried (a single passage it refuses is an error).
        `progress(done, total)` follows every request; `should_stop()` is polled before each one, every
        STOP_POLL_S while one waits for its answer or a retry, and raises RerankCancelled with the scores
        finished so far. Raises ValueError for an empty query and
        RerankerUnavailable when the endpoint fails (the message says what happened and what to change).
        """
        if not query.strip():
            raise ValueError("the query is empty; type a question or keywords to rerank against")
        total = len(passages)
        scores: dict[int, PairScore] = {}
        start = 0
        while start < total:
            if should_stop is not None and should_stop():
                raise RerankCancelled(len(scores), total, scores)
            positions = list(range(start, min(start + self._chunk, total)))
            try:
                self._score_positions(query, passages, positions, scores, should_stop)
            except TEIRequestCancelled:
                raise RerankCancelled(len(scores), total, dict(scores)) from None
            except TEIError as error:
                raise RerankerUnavailable(str(error)) from error
            start = positions[-1] + 1
            if progress is not None:
                progress(len(scores), total)
        return [scores[i] for i in range(total)]

    def _score_positions(self, query: str, passages: Sequence[str], positions: list[int],
                         scores: dict[int, PairScore], should_stop: StopFn | None = None) -> None:
        body = {"query": query, "texts": [passages[i] for i in positions], "raw_scores": True, "truncate": True}
        try:
            answer = self.client.post("/rerank", body, should_stop=should_stop)
        except TEIError as error:
            if error.kind != "too-large" or len(positions) == 1:
                raise
            self._shrink(error, len(positions))
            logger.info("TEI endpoint %s refused %d passages (%s); sending them in halves", self.client.host,
                        len(positions), error.status)
            half = len(positions) // 2
            self._score_positions(query, passages, positions[:half], scores, should_stop)
            self._score_positions(query, passages, positions[half:], scores, should_stop)
            return
        for index, raw in self._ranks(answer, len(positions)):
            scores[positions[index]] = PairScore(raw, sigmoid(raw) if self.is_cross_encoder else None, None)

    def _shrink(self, error: TEIError, sent: int) -> None:
        limit = re.search(r"maximum allowed batch size (\d+)", str(error))
        self._chunk = max(1, min(self._chunk, int(limit.group(1)) if limit else sent // 2))

    def _ranks(self, answer: Any, count: int) -> list[tuple[int, float]]:
        if not isinstance(answer, list) or len(answer) != count:
            raise self.client.protocol_error(f"POST /rerank answered {type(answer).__name__} for {count} texts, "
                                             "not one rank per text")
        ranks: dict[int, float] = {}
        for rank in answer:
            index = rank.get("index") if isinstance(rank, dict) else None
            score = rank.get("score") if isinstance(rank, dict) else None
            if (not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < count or index in ranks
                    or not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score)):
                raise self.client.protocol_error("POST /rerank answered a bad rank", str(rank)[:80])
            ranks[index] = float(score)
        return list(ranks.items())

