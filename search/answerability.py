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
from dataclasses import dataclass
from typing import Literal

from .config import LineSetting
from .models import KNOWN_MODELS, LATE_INTERACTION_IDS
from .stages import is_rerank
from .types import Hit, StageResult

Scale = Literal["raw", "sigmoid"]

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


@dataclass(frozen=True)
class ScoreLine:
    """The "no good answer" line of one reranked list: its threshold on the `scale` the list is shown in,
    where it came from, and how many of the listed passages reach it (0: none does)."""

    threshold: float
    scale: Scale  # "raw": the reranker's own score; "sigmoid": a cross-encoder's logit through the sigmoid
    source: Literal["model", "set"]  # the model's measured default, or the user's setting
    calibrated: bool  # False: the scores are no relevance estimate (late interaction), the line is a guide
    reached: int
    listed: int

    @property
    def none_reach(self) -> bool:
        return self.listed > 0 and self.reached == 0

    def describe(self) -> str:
        """A short label: "line at score 0.84 (measured default; scores not calibrated)".

        >>> ScoreLine(0.5, "sigmoid", "set", True, 2, 10).describe()
        'line at p 0.50 (set)'
        """
        notes = ["measured default" if self.source == "model" else "set"]
        if not self.calibrated:
            notes.append("scores not calibrated")
        return f"line at {self.at()} ({'; '.join(notes)})"

    def at(self) -> str:
        """Where the line is, as the column's scores read: "score 0.84", "p 0.50"."""
        return f"{ {'raw': 'score', 'sigmoid': 'p'}[self.scale]} {self.threshold:.2f}"


def score_line(stage: StageResult, setting: LineSetting, *, score_view: Scale = "raw",
               hits: Sequence[Hit] | None = None) -> ScoreLine | None:
    """The line of a reranked `stage` as shown in `score_view` over `hits` (default: all its hits, best
    first), or None: not a reranked stage, no line set, none known for its model ("default"), or the stage
    failed.

    A set number is read on the scale the column shows: a cross-encoder's sigmoid in the sigmoid view, else
    the raw score. A model's default is on its raw score and follows the view (through the sigmoid).

    >>> from search.types import Hit, Language, StageResult
    >>> hit = lambda rank, score: Hit(f"p{rank}", "d", rank, score, Language("en", "en", 1.0), "text")
    >>> stage = StageResult("rerank", (hit(1, 0.88), hit(2, 0.80)), 0.1, model_id="late-interaction")
    >>> line = score_line(stage, "default")
    >>> line.threshold, line.reached, line.calibrated
    (0.84, 1, False)
    >>> score_line(stage, 0.9).none_reach, score_line(stage, "none")
    (True, None)
    """
    listed = tuple(stage.hits if hits is None else hits)
    if setting == "none" or stage.error or not is_rerank(stage.stage):
        return None
    sigmoid = score_view == "sigmoid" and bool(listed) and all(hit.sigmoid is not None for hit in listed)
    if setting == "default":
        threshold = default_threshold(stage.model_id) if stage.model_id else None
        if threshold is None:
            return None
        if sigmoid:
            threshold = 1.0 / (1.0 + math.exp(-threshold))
        source = "model"
    else:
        threshold, source = float(setting), "set"
    scores = [hit.sigmoid if sigmoid else hit.score for hit in listed]
    return ScoreLine(threshold, "sigmoid" if sigmoid else "raw", source, is_calibrated(stage.model_id),
                     crossing(scores, threshold) or 0, len(listed))
