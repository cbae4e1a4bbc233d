"""How long embedding and reranking will take here: the speed each encoder was measured at on this machine.

Every build records its embedding batches in its encoder's meter (`record`), and so does every
late-interaction rerank for the passages it encodes; the app's warm-up measures the default encoder on a few
passages before the first build (`measure`), so the first estimate already comes from this machine.
`embedding_seconds` turns a passage count into seconds at that speed; the build's estimate-and-confirm step,
the passage cap's note and the CLI's line on stderr all use it. `rerank_seconds` is the one count of a
rerank's time, for the estimate beside the depth slider (`Index.expected_rerank_seconds`) and Evaluate's
(`search.evaluation.estimate_evaluation`) alike.

Speeds are per passage of the length builds make (a window of about 200 words), so an estimate is a guide
for the corpus at hand, not a promise: a corpus of very short or very long passages runs faster or slower.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from .inference import MeasuredReranker, TextEncoder, Throughput
from .score_cache import ThroughputMeter

_meters: dict[tuple[str, str, str], ThroughputMeter] = {}
_lock = threading.Lock()


def meter(encoder: TextEncoder) -> ThroughputMeter:
    """The process-wide speed meter of `encoder` (one per model, backend and device)."""
    key = (encoder.model_id, encoder.backend, encoder.device)
    with _lock:
        return _meters.setdefault(key, ThroughputMeter())


def record(encoder: TextEncoder, passages: int, seconds: float) -> None:
    """Count `passages` embedded by `encoder` in `seconds` (one batch of a build)."""
    meter(encoder).record(passages, seconds)


def measure(encoder: TextEncoder, texts: Sequence[str]) -> Throughput:
    """Embed `texts` as passages once to measure `encoder` here (the first batch pays one-off costs, so
    they are embedded as two batches and the second is what counts); returns the measurement."""
    texts = list(texts)
    half = max(1, len(texts) // 2)
    for batch in (texts[:half], texts[half:]):
        if not batch:
            continue
        started = time.perf_counter()
        encoder.embed(batch, is_query=False, batch_size=len(batch))
        record(encoder, len(batch), time.perf_counter() - started)
    return meter(encoder).snapshot()


SAMPLE_PASSAGES = 8  # passages a build embeds to measure an encoder nothing has measured yet (two batches)


def ensure_measured(encoder: TextEncoder, texts: Sequence[str]) -> Throughput:
    """`encoder`'s measured speed, measuring it first on up to SAMPLE_PASSAGES of `texts` (spread over
    them) when nothing has measured it in this process yet."""
    snapshot = meter(encoder).snapshot()
    if snapshot.seconds_per_pair is not None or not texts:
        return snapshot
    step = max(1, len(texts) // SAMPLE_PASSAGES)
    return measure(encoder, list(texts)[::step][:SAMPLE_PASSAGES])


def embedding_seconds(encoder: TextEncoder, passages: int) -> float | None:
    """Seconds embedding `passages` passages with `encoder` should take here; None before any measurement."""
    return meter(encoder).snapshot().expected_seconds(passages)


def passages_per_second(encoder: TextEncoder) -> float | None:
    """`encoder`'s measured passages per second here (None before any measurement)."""
    return meter(encoder).snapshot().pairs_per_second


@dataclass(frozen=True)
class RerankWork:
    """What reranking one query's candidates would make a reranker do now: score `pairs` (query, passage)
    pairs that are not in the score cache, and, for one that encodes each passage once and keeps it (late
    interaction), encode `passages` of their passages that it does not hold yet (`Index.rerank_work`)."""

    pairs: int
    passages: int = 0


def passages_to_encode(work: Sequence[RerankWork], queries: int, unencoded: int | None = None) -> int:
    """Passages `queries` queries like those of `work` (each the mean of them) would encode: at most
    `unencoded`, the corpus' passages not encoded yet, since the same passages recur from query to query.

    >>> passages_to_encode([RerankWork(4, 4), RerankWork(4, 2)], 50), passages_to_encode([RerankWork(4, 4)], 50, 6)
    (150, 6)
    """
    if not work:
        return 0
    total = round(queries * sum(item.passages for item in work) / len(work))
    return total if unencoded is None else min(unencoded, total)


def rerank_seconds(reranker: MeasuredReranker, work: Sequence[RerankWork], *, queries: int | None = None,
                   unencoded: int | None = None, pairs_per_second: float | None = None) -> float | None:
    """Seconds reranking `queries` queries (default ``len(work)``) should take here, each query like the mean
    of `work` (what each sample query would make `reranker` do now):

    - a reranker that reads every pair whole (a cross-encoder): the pairs at its measured seconds per pair
      (`MeasuredReranker.throughput`, or `pairs_per_second` when the caller measured it itself);
    - a reranker that encodes each passage once and keeps it (late interaction, `Reranker.passage_caching`):
      one encoding for each query with a pair to score, and one for each passage to encode
      (`passages_to_encode`, at most `unencoded`), at its encoder's passages/s measured here (`meter`).

    0.0 when no query has a pair to score; None when the speed it needs was not measured yet (this never
    measures anything: see `ensure_measured`). Raises ValueError for negative `queries`.

    >>> rerank_seconds(reranker, [RerankWork(20, 20)])  # doctest: +SKIP
    1.3
    """
    queries = len(work) if queries is None else queries
    if queries < 0:
        raise ValueError(f"queries={queries} is negative; pass the number of queries to rerank")
    if not queries or not any(item.pairs for item in work):
        return 0.0
    caching = reranker.passage_caching()
    if caching is None:
        seconds_per_pair = 1.0 / pairs_per_second if pairs_per_second else reranker.throughput().seconds_per_pair
        if seconds_per_pair is None:
            return None
        return queries * sum(item.pairs for item in work) / len(work) * seconds_per_pair
    speed = passages_per_second(caching.encoder)
    if not speed:
        return None
    encodings = queries * sum(1 for item in work if item.pairs) / len(work)
    return (encodings + passages_to_encode(work, queries, unencoded)) / speed


def about(seconds: float) -> str:
    """Return an expected duration the way estimates say it: "under a second", "about 4 s", "about 3 min".

    >>> about(0.3), about(4.4), about(75), about(200), about(9000)
    ('under a second', 'about 4 s', 'about 75 s', 'about 3 min', 'about 2.5 h')
    """
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 90 * 60:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
