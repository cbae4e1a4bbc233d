"""One lone surrogate can't sink an upload (issue 21 §2): what leaves a reader is valid Unicode.

The three ways in that lost whole uploads ("'utf-8' codec can't encode character '\\ud800'"): a JSON
``\\ud800`` escape in a .jsonl record, a SQuAD paragraph id ``"\\udead"``, and a PDF whose ToUnicode map
yields U+D800. Each is built beside a good file, through the engine and through the app's upload.
"""

from __future__ import annotations

import json

import pytest

from search.formats.squad import squad_paragraphs
from search.judgments import load_judgments
from search.models import FALLBACK_DENSE_ID
from search.pipeline import Index, Settings, build
from tests.hostile_inputs import GOOD_NAME, GOOD_TEXT, surrogate_inputs

# No reranker runs here: the default settings but the offline dense model.
SETTINGS = Settings(dense_model=FALLBACK_DENSE_ID, device="cpu")
REPLACED = "replaced 1 lone surrogate(s) (half of a UTF-16 pair, e.g. a JSON \\ud800 escape) with U+FFFD"
# What each bad file becomes: (doc id, text).
EXPECTED = {
    "escape.jsonl": ("s1", "Half a pair \ufffd in the middle."),
    "squad.json": ("\ufffd", "Owls hunt at night."),
    "tounicode.pdf": ("tounicode", "H\ufffdi owl"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_lone_surrogate_beside_a_good_file_is_replaced_counted_and_built(tmp_path, name):
    bad, good = tmp_path / name, tmp_path / GOOD_NAME
    bad.write_bytes(surrogate_inputs()[name])
    good.write_text(GOOD_TEXT, encoding="utf-8")
    index = build([bad, good], SETTINGS, names=[name, GOOD_NAME])
    documents = {(passage.doc_id, passage.text) for passage in index.passages}
    assert documents == {EXPECTED[name], ("good", GOOD_TEXT)}, documents
    warnings = [(problem.source, problem.message, problem.skipped) for problem in index.report.problems]
    assert (name, REPLACED, False) in warnings, warnings
    index.save(tmp_path / "saved")  # wrote "'utf-8' codec can't encode character" before
    loaded = Index.load(tmp_path / "saved")
    assert {passage.doc_id for passage in loaded.passages} == {EXPECTED[name][0], "good"}


def test_squad_questions_and_uploaded_queries_are_valid_unicode_too(tmp_path):
    # squad_paragraphs makes the ids of an evaluation's SQuAD queries as of its corpus.
    value = json.loads('{"data": [{"paragraphs": [{"id": "p1", "context": "Owls hunt at night.", '
                       '"qas": [{"id": "q\\udead", "question": "When do owls hunt\\ud800?"}]}]}]}')
    squad = squad_paragraphs(value, "squad.json")
    assert [(question.query_id, question.text) for question in squad.paragraphs[0].questions] == [
        ("q\ufffd", "When do owls hunt\ufffd?")]
    assert [str(problem) for problem in squad.question_problems] == [
        "squad.json: replaced 2 lone surrogate(s) (half of a UTF-16 pair, e.g. a JSON \\ud800 escape) with U+FFFD"]
    queries = tmp_path / "queries.jsonl"
    queries.write_text('{"_id": "q\\ud800", "text": "owls"}\n', encoding="utf-8")
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text("q\ufffd\tp1\t1\n", encoding="utf-8")
    uploaded = load_judgments([queries, qrels])
    assert uploaded.qrels == {"q\ufffd": {"p1": 1}}
    assert [str(problem) for problem in uploaded.problems] == [f"queries.jsonl: {REPLACED}"]


def test_the_app_builds_an_upload_holding_all_three_beside_a_good_file(app_url, tmp_path):
    gradio_client = pytest.importorskip("gradio_client")
    paths = []
    for name, data in sorted(surrogate_inputs().items()):
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    (tmp_path / GOOD_NAME).write_text(GOOD_TEXT, encoding="utf-8")
    paths.append(tmp_path / GOOD_NAME)
    client = gradio_client.Client(app_url, verbose=False)
    # By name, the other inputs left at their defaults (the offline models, see conftest): the app's layout changes.
    summary = client.predict(files=[gradio_client.handle_file(str(path)) for path in paths],
                             sample="(none: use my files)", api_name="/build_index")[-1]
    assert summary["documents"] == 4, summary
    warnings = {(problem["source"], problem["message"]) for problem in summary["problems"]}
    assert {(name, REPLACED) for name in EXPECTED} <= warnings, warnings
