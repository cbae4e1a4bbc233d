from __future__ import annotations

import pytest

from search.answerability import crossing, default_threshold, is_calibrated
from search.models import KNOWN_MODELS, LATE_INTERACTION_ID, LATE_INTERACTION_MINILM_ID, RERANKER_V2_M3


def test_crossing_counts_the_hits_that_reach_the_threshold():
    assert crossing([0.88, 0.84, 0.71], 0.8) == 2, "the line goes after the second hit"
    assert crossing([0.88, 0.84], 0.8) == 2, "every hit reaches it: the line goes last"
    assert crossing([0.71, 0.6], 0.8) == 0, "none does: the column says there is no good answer"
    assert crossing([0.8, 0.8], 0.8) == 2, "reaching is >="
    assert crossing([], 0.8) == 0
    assert crossing([0.9, 0.1], None) is None, "no threshold, no line"


def test_crossing_rejects_a_bad_threshold_or_unsorted_scores():
    with pytest.raises(ValueError, match="not a finite number"):
        crossing([0.5], float("nan"))
    with pytest.raises(ValueError, match="sorted best first"):
        crossing([0.5, 0.9], 0.6)


def test_only_the_measured_late_interaction_has_a_default_and_it_is_not_calibrated():
    assert {model_id for model_id, spec in KNOWN_MODELS.items() if spec.no_answer_threshold is not None} == {
        LATE_INTERACTION_ID}, "no model card gives a threshold; only late interaction over e5 was measured"
    assert default_threshold(LATE_INTERACTION_ID) == 0.84
    assert default_threshold(RERANKER_V2_M3) is None and default_threshold("org/unknown") is None
    assert default_threshold(LATE_INTERACTION_MINILM_ID) is None
    assert not is_calibrated(LATE_INTERACTION_ID) and not is_calibrated(LATE_INTERACTION_MINILM_ID)
    assert is_calibrated(RERANKER_V2_M3)
