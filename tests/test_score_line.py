"""The Reranked columns' "no good answer" line (issue 17 §3): where it is drawn, the note when no passage
reaches it, the label of uncalibrated scores, and the line in the exports, the CLI and a share link."""

from __future__ import annotations

import csv
import io
import math
import re
import subprocess
import sys

import pytest

from search.answerability import score_line
from search.config import parse_line
from search.export import result_to_dict, results_to_csv
from search.models import LATE_INTERACTION_ID
from tests.hand_made import make_hit, make_result, make_stage, ranked
from ui.columns import render_column
from ui.share import ShareOptions, ViewState, parse_view, query_string

BGE = "BAAI/bge-reranker-base"


def late_interaction(*scores: float):
    """A late-interaction rerank stage (default line 0.84) with passages p1, p2, … scored `scores`."""
    hits = [make_hit(f"p{rank}#0", rank, score=score) for rank, score in enumerate(scores, start=1)]
    return make_stage("rerank", hits, model="late-interaction fallback, not a cross-encoder",
                      model_id=LATE_INTERACTION_ID)


def cross_encoder(*logits: float):
    hits = [make_hit(f"p{rank}#0", rank, score=logit, sigmoid=1 / (1 + math.exp(-logit)))
            for rank, logit in enumerate(logits, start=1)]
    return make_stage("rerank", hits, model=BGE, model_id=BGE)


def result_with(rerank):
    first = [make_stage(name, ranked("p1#0", "p2#0", "p3#0", "p4#0")) for name in ("bm25", "dense", "hybrid")]
    return make_result([*first, rerank])


def cards_and_lines(column: str) -> list[str]:
    """The list's items in order: each card's passage id, "LINE" for the line."""
    items = re.findall(r'<li class="(hit|score-line)"[^>]*?(?:data-passage="([^"]+)")?>', column)
    return ["LINE" if kind == "score-line" else passage for kind, passage in items]


def test_the_line_goes_between_the_passages_that_reach_it_and_those_that_dont():
    stage = late_interaction(0.91, 0.85, 0.80, 0.62)
    column = render_column(stage, result_with(stage), k=10)
    assert cards_and_lines(column) == ["p1#0", "p2#0", "LINE", "p3#0", "p4#0"], column
    assert 'data-threshold="0.84"' in column and 'data-reached="2"' in column
    assert "line at score 0.84 (measured default; scores not calibrated)" in column, "the label says so"
    assert "no-answer" not in column


def test_a_column_no_passage_reaches_says_there_may_be_no_good_answer_and_draws_no_line():
    stage = late_interaction(0.72, 0.71, 0.70)  # "Arbeitslosenquote in Portugal" on the sample: 0.72 at best
    column = render_column(stage, result_with(stage), k=10)
    assert cards_and_lines(column) == ["p1#0", "p2#0", "p3#0"]
    note = re.search(r'<p class="no-answer"[^>]*>([^<]*)</p>', column)
    assert note and "No passage reaches the line at score 0.84" in note.group(1), column
    assert column.index('class="no-answer"') < column.index('<ol class="hits"'), "the note comes before the list"


def test_when_every_listed_passage_reaches_it_no_line_is_drawn_inside_the_list():
    stage = late_interaction(0.95, 0.90, 0.86)
    column = render_column(stage, result_with(stage), k=2)
    assert cards_and_lines(column) == ["p1#0", "p2#0"] and "no-answer" not in column


def test_none_turns_it_off_and_a_cross_encoder_has_no_default_but_takes_a_set_line_on_the_shown_scale():
    stage = late_interaction(0.91, 0.80)
    assert "score-line" not in render_column(stage, result_with(stage), k=10, score_line="none")
    bge = cross_encoder(2.0, 0.5, -1.0)  # sigmoid 0.881, 0.622, 0.269
    result = result_with(bge)
    plain = render_column(bge, result, k=10)
    assert "score-line" not in plain and "stage-line" not in plain, "no default is known for bge-reranker-base"
    assert cards_and_lines(render_column(bge, result, k=10, score_line=0.6, score_view="sigmoid")) == [
        "p1#0", "p2#0", "LINE", "p3#0"]  # p 0.6 on the sigmoid view
    assert cards_and_lines(render_column(bge, result, k=10, score_line=0.6, score_view="raw")) == [
        "p1#0", "LINE", "p2#0", "p3#0"]  # logit 0.6 on the raw view
    set_line = render_column(bge, result, k=10, score_line=0.6, score_view="sigmoid")
    assert "line at p 0.60 (set)" in set_line and "scores not calibrated" not in set_line


def test_a_models_default_follows_the_sigmoid_view():
    line = score_line(late_interaction(0.9), "default", score_view="sigmoid")
    assert (line.threshold, line.scale) == (0.84, "raw"), "late interaction has no sigmoid: its raw score stays"
    first_stage = make_stage("hybrid", ranked("a#0"))
    assert score_line(first_stage, 0.5) is None, "only reranked columns have a line"


def test_the_line_is_in_the_json_and_csv_exports():
    result = result_with(late_interaction(0.91, 0.85, 0.80))
    exported = result_to_dict(result, 10)
    assert exported["stages"]["rerank"]["score_line"] == {
        "threshold": 0.84, "scale": "raw", "source": "model", "calibrated": False, "reached": 2, "listed": 3}
    assert "score_line" not in exported["stages"]["bm25"]
    assert result_to_dict(result, 10, score_line="none")["stages"]["rerank"]["score_line"] is None
    assert result_to_dict(result, 1, score_line=0.95)["stages"]["rerank"]["score_line"]["reached"] == 0
    rows = list(csv.DictReader(io.StringIO(results_to_csv(result, 10))))
    assert [row["reaches_line"] for row in rows if row["stage"] == "rerank"] == ["true", "true", "false"]
    assert {row["reaches_line"] for row in rows if row["stage"] != "rerank"} == {""}


def test_a_share_link_carries_the_line_and_says_what_is_wrong_with_a_bad_one():
    options = ShareOptions(samples=("polyglot-facts",))
    view = ViewState(sample="polyglot-facts", query="tea", score_line="0.8")
    link = query_string(view)
    assert "line=0.8" in link, link
    assert parse_view(dict([pair.split("=", 1) for pair in link[1:].split("&")]), options).state.score_line == "0.8"
    parsed = parse_view({"sample": "polyglot-facts", "line": "<b>high</b>"}, options)
    assert parsed.state.score_line == "default"
    assert parsed.problems and "is not a score line" in parsed.problems[0], parsed.problems


@pytest.mark.parametrize(("text", "setting"), [("", "default"), ("default", "default"), ("off", "none"),
                                               ("0.84", 0.84), ("-2", -2.0)])
def test_the_setting_reads_words_and_numbers(text, setting):
    assert parse_line(text) == setting


@pytest.mark.parametrize("text", ["high", "nan", "inf", "1e999"])
def test_a_setting_that_is_no_finite_number_names_what_is_accepted(text):
    with pytest.raises(ValueError, match="give a score such as 0.8"):
        parse_line(text)


def test_the_cli_refuses_a_bad_line_naming_the_flag_and_what_it_takes():
    run = subprocess.run([sys.executable, "-m", "search", "query", "--query", "tea", "--score-line", "high", "x"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stderr
    assert "--score-line" in run.stderr and "default" in run.stderr and "none" in run.stderr, run.stderr


def test_the_bundle_draws_the_line_of_its_view_and_its_files_carry_it():
    import json
    import zipfile

    from ui.bundle import PAGE_NAME, make_bundle
    from ui.judging import SessionJudgments

    result = result_with(late_interaction(0.91, 0.85, 0.80))
    bundle = make_bundle(result, SessionJudgments(), ViewState(sample="polyglot-facts", query="query", k=10,
                                                               score_line="0.9"))
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        page = archive.read(PAGE_NAME).decode()
        exported = json.loads(archive.read("results.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("results.csv").decode())))
        settings = json.loads(archive.read("settings.json"))
    reranked = re.search(r'<section class="stage-column" data-stage="rerank".*?</section>', page, re.S).group(0)
    assert cards_and_lines(reranked) == ["p1#0", "LINE", "p2#0", "p3#0"], "the line of the view: 0.9, set"
    assert exported["stages"]["rerank"]["score_line"]["threshold"] == 0.9
    assert [row["reaches_line"] for row in rows if row["stage"] == "rerank"] == ["true", "false", "false"]
    assert settings["view"]["score_line"] == "0.9"
