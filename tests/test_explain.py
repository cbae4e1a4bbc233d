"""Why a passage scored so (`search.explain`): sentence splitting across scripts, leaving each part out
in turn, the cost said beforehand, and the score cache.

The ranking assertion uses a word-counting reranker whose scores are checked by hand (a tiny random-weight
model gives no meaningful importance); the tiny real cross-encoder checks the plumbing: each score without a
part is the reranker's own score of the passage with that part left out, and the full score is cached."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import pytest

from search.backends.torch_reranker import CrossEncoderReranker
from search.explain import (
    MAX_WINDOWS,
    ExplainCost,
    Part,
    explain,
    explain_cost,
    passage_without,
    split_passage,
    split_sentences,
    split_windows,
)
from search.inference import PairScore, Reranker, Throughput
from search.score_cache import CachedReranker, ScoreCache, ThroughputMeter
from tests.tiny_models import build_tiny_xlmr_cross_encoder


class WordCountReranker:
    """Scores a passage by how many of the query's words it contains (each occurrence counts once more)."""

    model_id = label = "word-count"
    backend = "test"
    device = "cpu"
    is_cross_encoder = False
    max_length = 512
    remote = False
    dtype = "float32"
    tokenizer = None

    def pair_lengths(self, query: str, passages: Sequence[str]) -> None:
        return None

    def passage_caching(self) -> None:
        return None

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def score(self, query: str, passages: Sequence[str], *, progress=None, should_stop=None) -> list[PairScore]:
        self.calls.append(list(passages))
        words = set(query.lower().split())
        scores = [PairScore(float(sum(token.strip(".,!?") in words for token in text.lower().split())), None, False)
                  for text in passages]
        if progress is not None and passages:
            progress(len(passages), len(passages))
        return scores


QUERY = "where does green tea grow"
# Sentence 2 holds three of the query's words (green, tea, grow); sentence 1 one (where), sentence 3 none.
PASSAGE = "Farmers ask where the rain goes. Green tea plants grow on steep hills. Bees hum all summer."


def texts(parts):
    return [part.text for part in parts]


# -- splitting ----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "sentences"), [
    ("Tea grows on hills. Does it?  Yes! It does…", ["Tea grows on hills.", "Does it?", "Yes!", "It does…"]),
    ("Pi is 3.14, e.g. here.\nNext line. She said \"done.\" Then left.",
     ["Pi is 3.14, e.g. here.", "Next line.", 'She said "done."', "Then left."]),
    ("Dr. Smith met Mr. Jones. They talked.", ["Dr. Smith met Mr. Jones.", "They talked."]),
    ("Prof. Weber, z.B. hier, wohnt in der Str. Nr. 5. Sra. López i.e. la jefa. Fin vs. fine, etc. Done.",
     ["Prof. Weber, z.B. hier, wohnt in der Str.", "Nr. 5.", "Sra. López i.e. la jefa.",
      "Fin vs. fine, etc. Done."]),
    ("茶起源于中国。它在唐朝传入日本！你喜欢喝茶吗？", ["茶起源于中国。", "它在唐朝传入日本！", "你喜欢喝茶吗？"]),
    ("「お茶です。」と彼は言った。", ["「お茶です。」", "と彼は言った。"]),
    ("चाय भारत में उगती है। असम चाय प्रसिद्ध है॥ क्या आप चाय पीते हैं?",
     ["चाय भारत में उगती है।", "असम चाय प्रसिद्ध है॥", "क्या आप चाय पीते हैं?"]),
    ("ما هو الشاي؟ الشاي مشروب شائع. يزرع في الصين", ["ما هو الشاي؟", "الشاي مشروب شائع.", "يزرع في الصين"]),
    ("چائے پاکستان میں مقبول ہے۔ لوگ اسے روز پیتے ہیں۔", ["چائے پاکستان میں مقبول ہے۔", "لوگ اسے روز پیتے ہیں۔"]),
    ("A title\n\nThe body without a full stop", ["A title", "The body without a full stop"]),
])
def test_sentences_end_at_the_punctuation_of_each_script(text, sentences):
    parts = split_sentences(text)
    assert texts(parts) == sentences
    assert all(text[part.start:part.end] == part.text for part in parts), "spans point into the passage"


def test_text_without_sentence_punctuation_is_cut_into_windows_of_words_or_characters():
    words = " ".join(f"w{i}" for i in range(30))
    split = split_passage(words)
    assert split.kind == "window"
    assert texts(split.parts) == [" ".join(f"w{i}" for i in range(start, min(start + 12, 30)))
                                  for start in (0, 12, 24)]
    thai = "ชาเขียวปลูกบนเนินเขาสูงในภาคเหนือของประเทศไทย"
    split = split_passage(thai)
    assert split.kind == "window" and len(split.parts) >= 2, split
    assert "".join(texts(split.parts)) == thai, "character windows cover the text, in order"
    chinese = "茶树生长在山坡上人们在春天采摘嫩叶然后晒干制成绿茶"
    assert texts(split_windows(chinese, 10)) == [chinese[:10], chinese[10:20], chinese[20:]]


def test_a_long_text_without_sentences_gets_at_most_max_windows_windows():
    words = " ".join(["word"] * 1000)
    assert len(split_passage(words).parts) <= MAX_WINDOWS


def test_a_long_text_with_many_sentences_gets_at_most_max_windows_runs_of_adjacent_sentences():
    text = " ".join(f"w{i}." for i in range(1024))
    split = split_passage(text)
    assert split.kind == "sentence"
    assert 2 <= len(split.parts) <= MAX_WINDOWS
    assert all(text[part.start:part.end] == part.text for part in split.parts), "spans point into the passage"
    assert split.parts[0].start == 0 and split.parts[-1].end == len(text)
    assert all(left.end + 1 == right.start
               for left, right in zip(split.parts, split.parts[1:], strict=False)), "contiguous"
    assert [word for part in split.parts for word in part.text.split()] == text.split(), "every sentence, once"
    lengths = [len(part.text) for part in split.parts]
    assert max(lengths) <= 2 * min(lengths), f"runs of about equal length: {lengths}"
    assert explain_cost(WordCountReranker(), "w7", text).parts == len(split.parts)
    exactly = " ".join(f"s{i}." for i in range(MAX_WINDOWS))
    assert texts(split_passage(exactly).parts) == exactly.split(), "up to MAX_WINDOWS sentences stay single"


def test_a_single_short_sentence_is_one_part_and_an_empty_text_none():
    assert texts(split_passage("Tea.").parts) == ["Tea."]
    assert split_passage("   ").parts == ()
    with pytest.raises(ValueError, match="window=0"):
        split_windows("a b", 0)


def test_leaving_a_part_out_keeps_one_run_of_whitespace():
    parts = split_sentences(PASSAGE)
    assert [passage_without(PASSAGE, part) for part in parts] == [
        "Green tea plants grow on steep hills. Bees hum all summer.",
        "Farmers ask where the rain goes. Bees hum all summer.",
        "Farmers ask where the rain goes. Green tea plants grow on steep hills.",
    ]
    text = "First.\n\nSecond.\n\nThird."
    assert passage_without(text, split_sentences(text)[1]) == "First.\n\nThird."
    with pytest.raises(ValueError, match="split_passage"):
        passage_without(PASSAGE, Part(0, 5, "Bees "))


# -- explaining ---------------------------------------------------------------------------------------

def test_the_sentence_that_carries_the_query_words_drops_the_score_most():
    reranker = WordCountReranker()
    assert isinstance(reranker, Reranker)
    explanation = explain(reranker, QUERY, PASSAGE)
    # Hand-checked: the passage has where + green + tea + grow = 4; without each sentence 3, 1 and 4.
    assert explanation.score == 4.0
    assert [(part.score_without, part.drop) for part in explanation.parts] == [(3.0, 1.0), (1.0, 3.0), (4.0, 0.0)]
    assert explanation.most_important().text == "Green tea plants grow on steep hills."
    assert explanation.kind == "sentence"
    assert [(part.start, part.end) for part in explanation.parts] == [(0, 32), (33, 70), (71, 91)]
    assert len(reranker.calls) == 1 and len(reranker.calls[0]) == 4, "one call: the passage and 3 versions"


def test_a_title_is_scored_in_front_of_every_version():
    reranker = WordCountReranker()
    explanation = explain(reranker, QUERY, PASSAGE, title="Tea")
    assert all(text.startswith("Tea\n") for text in reranker.calls[0])
    assert explanation.score == 5.0 and explanation.parts[1].drop == 3.0


def test_to_dict_holds_spans_scores_and_drops():
    data = explain(WordCountReranker(), QUERY, PASSAGE).to_dict()
    assert data["score"] == 4.0 and data["kind"] == "sentence" and data["model"] == "word-count"
    assert data["parts"][1] == {"start": 33, "end": 70, "text": "Green tea plants grow on steep hills.",
                                "score_without": 1.0, "drop": 3.0}


def test_bad_input_is_refused_with_what_to_give():
    with pytest.raises(ValueError, match="query is empty"):
        explain(WordCountReranker(), " ", PASSAGE)
    with pytest.raises(ValueError, match="passage is empty"):
        explain(WordCountReranker(), QUERY, "")


def test_the_cost_counts_uncached_pairs_and_uses_the_measured_speed():
    cached = CachedReranker(WordCountReranker(), ScoreCache())
    before = explain_cost(cached, QUERY, PASSAGE)
    assert before == ExplainCost(parts=3, kind="sentence", pairs=4, seconds=None), "nothing measured yet"
    cached.score(QUERY, [PASSAGE])  # the reranked card: its full passage is cached now
    cached.meter = ThroughputMeter()  # a speed measured by hand: 0.2 s per pair
    cached.meter.record(10, 2.0)
    cached.meter.record(10, 2.0)
    assert cached.throughput() == Throughput(pytest.approx(0.2), 20, 2)
    cost = explain_cost(cached, QUERY, PASSAGE)
    assert (cost.pairs, cost.seconds) == (3, pytest.approx(0.6)), "the full passage costs nothing again"
    explain(cached, QUERY, PASSAGE)
    assert explain_cost(cached, QUERY, PASSAGE) == ExplainCost(3, "sentence", 0, 0.0)
    assert explain_cost(WordCountReranker(), QUERY, PASSAGE).seconds is None, "no meter, no time"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> CrossEncoderReranker:
    corpus = [QUERY, PASSAGE, "茶起源于中国。它在唐朝传入日本！", "चाय भारत में उगती है। असम चाय प्रसिद्ध है।"]
    folder = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-explain"), corpus * 5)
    return CrossEncoderReranker(str(folder), "cpu", batch_size=4)


@pytest.mark.parametrize("passage", [PASSAGE, "茶起源于中国。它在唐朝传入日本！",
                                     "चाय भारत में उगती है। असम चाय प्रसिद्ध है।"])
def test_on_a_real_cross_encoder_each_score_is_the_passage_scored_without_that_part(tiny, passage):
    cached = CachedReranker(tiny, ScoreCache())
    explanation = explain(cached, QUERY, passage)
    parts = split_passage(passage).parts
    assert len(explanation.parts) == len(parts) >= 2
    full = tiny.score(QUERY, [passage])[0]
    assert explanation.score == pytest.approx(full.raw, abs=1e-5)
    assert explanation.sigmoid == pytest.approx(full.sigmoid, abs=1e-6)
    for part, scored in zip(parts, explanation.parts, strict=True):
        without = tiny.score(QUERY, [passage_without(passage, part)])[0].raw
        assert (scored.start, scored.end, scored.text) == (part.start, part.end, part.text)
        assert scored.score_without == pytest.approx(without, abs=1e-5), part.text
        assert scored.drop == pytest.approx(full.raw - without, abs=1e-5)
    assert len({round(part.drop, 4) for part in explanation.parts}) > 1, "random weights still tell parts apart"
    assert cached.uncached(QUERY, [passage]) == 0, "every pair went through the score cache"
    assert explain_cost(cached, QUERY, passage).pairs == 0


# -- the command line ---------------------------------------------------------------------------------

def test_cli_explain_prints_spans_scores_and_drops_as_json(tiny, tmp_path, capsys):
    from search.cli import main
    from search.loading import load_reranker

    file = tmp_path / "passage.txt"
    file.write_text(f"\n{PASSAGE}\n", encoding="utf-8")
    folder = tiny.model_id
    assert main(["explain", "--model", folder, "--backend", "torch", "--query", QUERY, "--passage", str(file),
                 "--json"]) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # stdout holds the JSON document alone
    assert "3 sentence(s), " in captured.err, captured.err
    assert data["passage"] == PASSAGE and data["kind"] == "sentence"
    assert [(part["start"], part["end"]) for part in data["parts"]] == [(0, 32), (33, 70), (71, 91)]
    reference = load_reranker(folder, "cpu", fallback=False, backend="torch").model.inner
    full = reference.score(QUERY, [PASSAGE])[0].raw
    assert data["score"] == pytest.approx(full, abs=1e-5)
    for part in data["parts"]:
        without = reference.score(QUERY, [passage_without(PASSAGE, Part(part["start"], part["end"], part["text"]))])
        assert part["score_without"] == pytest.approx(without[0].raw, abs=1e-5)
        assert part["drop"] == pytest.approx(full - without[0].raw, abs=1e-5)


def test_cli_explain_plain_text_shades_each_sentence_with_a_bar(tiny, tmp_path, capsys):
    from search.cli import main

    file = tmp_path / "passage.txt"
    file.write_text(PASSAGE, encoding="utf-8")
    assert main(["explain", "--model", tiny.model_id, "--backend", "torch", "--query", QUERY,
                 "--passage", str(file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("score ") and "drop = score - score without" in lines[1], lines
    rows = lines[2:]
    assert len(rows) == 3 and "[33:70] Green tea plants grow on steep hills." in rows[1], rows
    assert sum(row.count("█") + row.count("░") for row in rows) >= 20, "the largest drop has a full bar"


def test_cli_explain_refuses_an_empty_passage_file(tmp_path, capsys):
    from search.cli import main

    file = tmp_path / "empty.txt"
    file.write_text("  \n", encoding="utf-8")
    assert main(["explain", "--model", "late-interaction", "--query", "x", "--passage", str(file)]) == 2
    assert "holds no text" in capsys.readouterr().err


# -- the app's rendering ------------------------------------------------------------------------------

def test_the_explain_view_escapes_the_passage_and_shades_parts_by_their_drop():
    from tests.hand_made import make_hit, make_result, make_stage
    from tests.test_render import css_classes, css_rules, emitted_classes
    from ui import stylesheet
    from ui.explain_view import passage_choices, render_cost, render_explanation, render_message, render_progress

    passage = "Green tea grows on hills. Bees <script>alert(1)</script> hum. Owls hunt."
    explanation = explain(WordCountReranker(), "green tea", passage)
    hit = make_hit("tea#0", 1, text=passage)
    html = str(render_explanation(explanation, hit, {"green", "tea"}))
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    spans = re.findall(r'<span class="explain-part (\w+)" data-level="(\d)" data-drop="([^"]+)"', html)
    assert spans == [("gain", "5", "+2.0000"), ("flat", "0", "+0.0000"), ("flat", "0", "+0.0000")], spans
    assert "<mark>Green</mark> <mark>tea</mark>" in html, "query terms stay marked"
    assert 'data-kind="sentence"' in html and "score 2.0000" in html

    cheaper = explain(WordCountReranker(), "tea owls", "Tea. Tea tea tea tea owls. Bees.")
    levels = re.findall(r'class="explain-part (\w+)" data-level="(\d)"', str(render_explanation(
        cheaper, make_hit("x#0", 1, text=cheaper.passage), set())))
    assert levels[2:] == [("gain", "1"), ("gain", "5"), ("flat", "0")], "levels relative to the largest drop"

    result = make_result([make_stage("rerank", [hit])])
    assert passage_choices(result) == [("#1 · tea#0 · " + passage[:69] + "…", "tea#0")]
    costs = [render_cost(hit, ExplainCost(3, "sentence", pairs, seconds))
             for pairs, seconds in ((3, 4.2), (3, None), (0, 0.0))]
    assert [re.search(r'data-state="(\w+)"', str(cost)).group(1) for cost in costs] == [
        "measured", "unmeasured", "cached"]
    assert "3 extra pairs, about 4 s on this machine" in str(costs[0])
    assert 'data-state="none"' in str(render_cost(None, None))

    fragments = [html, *map(str, costs), str(render_progress(2, 4)), str(render_message("x"))]
    unstyled = emitted_classes(*fragments) - css_classes(css_rules(stylesheet()))
    assert not unstyled, f"classes without a CSS rule: {sorted(unstyled)}"


def test_reranked_cards_carry_an_explain_button_and_other_columns_do_not():
    from tests.hand_made import make_hit, make_result, make_stage
    from ui.columns import COLUMN_JS, render_column

    result = make_result([make_stage("bm25", [make_hit("a#0", 1)]),
                          make_stage("rerank", [make_hit("a#0", 1, sigmoid=0.5, ranks={"bm25": 1})]),
                          make_stage("rerank-b", [make_hit("a#0", 1, sigmoid=0.4, ranks={"bm25": 1, "rerank": 1})])],
                         candidates_from="bm25")
    assert str(render_column(result.stages["rerank"], result, k=5)).count('class="explain-btn"') == 1
    assert str(render_column(result.stages["rerank-b"], result, k=5)).count('class="explain-btn"') == 1
    assert 'class="explain-btn"' not in str(render_column(result.stages["bm25"], result, k=5))
    assert "button.explain-btn" in COLUMN_JS and "explain_rank" in COLUMN_JS
    assert "explain_stage: card.dataset.stage" in COLUMN_JS, "the click says which reranked column it came from"


def test_the_explain_view_offers_either_reranked_column_and_names_its_reranker():
    from tests.hand_made import make_hit, make_result, make_stage
    from ui.explain_view import passage_choices, render_cost, render_explanation, reranked_hit, reranker_name

    a_hits = [make_hit("a#0", 1, text="Alpha one."), make_hit("b#0", 2, text="Beta two.")]
    b_hits = [make_hit("b#0", 1, text="Beta two.", score=7.0), make_hit("a#0", 2, text="Alpha one.")]
    result = make_result([make_stage("rerank", a_hits), make_stage("rerank-b", b_hits)])
    assert [value for _, value in passage_choices(result)] == ["a#0", "b#0"]
    assert [value for _, value in passage_choices(result, "rerank-b")] == ["b#0", "a#0"]
    assert reranked_hit(result, "b#0", "rerank-b").rank == 1 and reranked_hit(result, "b#0").rank == 2
    assert reranker_name("rerank", "tiny") == "reranker A: tiny" and reranker_name("rerank-b", "li") == "reranker B: li"
    hit = reranked_hit(result, "b#0", "rerank-b")
    cost = str(render_cost(hit, ExplainCost(1, "sentence", 1, 1.0), "reranker B: li"))
    assert "#1 b#0: 1 sentence, each left out in turn, scored by reranker B: li" in cost
    assert "scored by" not in str(render_cost(hit, ExplainCost(1, "sentence", 1, 1.0))), "only A: said as before"
    explanation = explain(WordCountReranker(), "beta", "Beta two.")
    assert "· reranker B: li</p>" in str(render_explanation(explanation, hit, set(), "reranker B: li"))
    assert f"· {explanation.model}</p>" in str(render_explanation(explanation, hit, set()))


def test_the_app_panel_offers_the_latest_reranked_passages_and_keeps_the_choice_while_it_is_there():
    import gradio as gr

    from tests.app_page import make_page
    from tests.hand_made import make_hit, make_result, make_stage
    from ui.regions.explain import ExplainCallbacks
    from ui.regions.session import LatestSearch

    callbacks = ExplainCallbacks(make_page()[0])
    first = make_result([make_stage("rerank", [make_hit("a#0", 1, text="Alpha one."),
                                               make_hit("b#0", 2, text="Beta two.")])])
    second = make_result([make_stage("rerank", [make_hit("b#0", 1, text="Beta two.")])])
    latest = LatestSearch(first)
    update = callbacks.refresh(None, latest, "b#0")[callbacks.panel.passage]
    assert [value for _, value in update.choices] == ["a#0", "b#0"] and update.value == "b#0"
    latest.begin(second)
    assert callbacks.refresh(None, latest, "a#0")[callbacks.panel.passage].value is None, "a#0 went away"
    assert callbacks.refresh(None, LatestSearch(), None)[callbacks.panel.passage].choices == []
    with pytest.raises(gr.Error):  # running needs a built index (the browser test runs one)
        list(callbacks.run(None, latest, "b#0"))
    # The choices follow every column update; an event may still send a value of the previous choices, which
    # the callbacks check themselves: Gradio must not refuse it first (a traceback in the log).
    assert callbacks.panel.passage.allow_custom_value is True


def test_explain_without_a_passage_says_to_pick_one_once_there_is_a_search():
    import types

    from tests.app_page import make_page
    from tests.hand_made import make_hit, make_result, make_stage
    from ui.regions.explain import ExplainCallbacks
    from ui.regions.session import LatestSearch

    callbacks = ExplainCallbacks(make_page()[0])
    index = types.SimpleNamespace(rerank_stages=("rerank",))
    latest = LatestSearch()
    [before] = callbacks.run(index, latest, None)
    assert "Search first" in str(before[callbacks.panel.result])
    latest.begin(make_result([make_stage("rerank", [make_hit("a#0", 1, text="Alpha one.")])]), index)
    [after] = callbacks.run(index, latest, None)
    assert "Search first" not in str(after[callbacks.panel.result])
    assert "Pick a passage of the Reranked column" in str(after[callbacks.panel.result])
