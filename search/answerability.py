"""Whether a reranked list holds a good answer at all: a score threshold per model, and where the list
crosses it.

A threshold only means something on scores that say how relevant a passage is, not only which of two is
more relevant. A cross-encoder is trained as a relevance classifier: the sigmoid of its logit estimates
that, so a line can mean something, but the model cards (bge-reranker-base, bge-reranker-v2-m3) publish
none and they could not be measured here (offline), so they have no default. The late-interaction
fallback's score is a mean of cosine similarities (MaxSim), not calibrated at all; yet measured, its
reranked top-1 score tells questions with an answer from questions without one well within a corpus
(ROC AUC 0.975 on the sample, 0.996 to 1.0 on XQuAD en/de/zh), though the best line moves with the corpus
and language (0.75 to 0.85). Its default, 0.84, is the one line best over all four (balanced accuracy
0.90 on the sample, 0.95 to 0.98 on XQuAD): a guide, to be labelled as uncalibrated (docs/ranking.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .models import KNOWN_MODELS, LATE_INTERACTION_IDS

# Rerankers whose scores are no relevance estimate at all (cosine MaxSim): a threshold on them is a guess.
UNCALIBRATED = LATE_INTERACTION_IDS


def default_threshold(model_id: str) -> float | None:
    """The reranker's "no good answer" threshold on its raw score, from the model table (None: none known).

    >>> default_threshold("late-interaction"), default_threshold("BAAI/bge-reranker-v2-m3")
    (0.84, None)
    """
    spec = KNOWN_MODELS.get(model_id.strip())
    return spec.no_answer_threshold if spec is not None else None


def is_calibrated(model_id: str) -> bool:
    """Whether the reranker's scores estimate relevance, so a fixed threshold can mean something: a
    cross-encoder's do (though uncalibrated), late interaction's cosine MaxSim does not."""
    return model_id.strip() not in UNCALIBRATED


def crossing(scores: Sequence[float], threshold: float | None) -> int | None:
    """How many of the reranked `scores` (best first) reach `threshold`: the line goes after that many hits.

    0 means no passage reaches it (say "no good answer"); ``len(scores)`` that all do; None that there is no
    threshold. Raises ValueError for a threshold that is not a finite number or scores not best first.

    >>> crossing([0.88, 0.84, 0.71, 0.60], 0.8), crossing([0.71], 0.8), crossing([0.9], None)
    (2, 0, None)
    """
    if threshold is None:
        return None
    if not math.isfinite(threshold):
        raise ValueError(f"threshold={threshold} is not a finite number; give a score such as 0.8, or None")
    if any(later > earlier for earlier, later in zip(scores, scores[1:], strict=False)):
        raise ValueError("scores must be sorted best first (as a reranked stage's hits are)")
    return sum(1 for score in scores if score >= threshold)
