"""ui.bundle: the zip's members, its JSON, its CSV still neutralised, and a static page that stays inert."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from tests.hand_made import make_hit, make_result, make_stage, ranked
from tests.test_render import css_classes, css_rules
from ui import stylesheet
from ui.bundle import CONTENT_SECURITY_POLICY, make_bundle, render_page
from ui.columns import render_column
from ui.judging import SessionJudgments, judge
from ui.share import ViewState, render_share_note

SCRIPT = "<script>alert(1)</script>"
IMG = '<img src=x onerror="alert(2)">'
FORMULA = "=HYPERLINK(\"http://evil\",\"x\")"
VIEW = ViewState(sample="polyglot-facts", query="tulips", k=3, rerank_depth=20, score_view="sigmoid",
                 reranker_model="late-interaction", backend="auto")
LINK = "http://127.0.0.1:7860/?sample=polyglot-facts&q=tulips&k=3"


def _result():
    hostile = make_hit("evil#0", 1, text=f"Tulips {SCRIPT} and {IMG} bloom.", title="<b>title</b>",
                       ranks={"dense": 2, "hybrid": 1})
    formula = make_hit("formula#0", 2, text=FORMULA, ranks={"dense": 1, "hybrid": 2})
    rerank = make_stage("rerank", [make_hit("formula#0", 1, text=FORMULA, sigmoid=0.9, score=2.2,
                                            ranks={"bm25": 2, "dense": 1, "hybrid": 2}),
                                   make_hit("evil#0", 2, text=f"Tulips {SCRIPT} and {IMG} bloom.", sigmoid=0.4,
                                            score=-0.4, ranks={"bm25": 1, "dense": 2, "hybrid": 1})])
    return make_result([make_stage("bm25", [hostile, formula]), make_stage("dense", ranked("formula#0", "evil#0")),
                        make_stage("hybrid", ranked("evil#0", "formula#0")), rerank], query="tulips <i>now</i>")


class Tags(HTMLParser):
    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _members(data: bytes) -> dict[str, str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name).decode("utf-8") for name in archive.namelist()}


def test_the_bundle_holds_settings_results_judgments_runs_and_the_page():
    result = _result()
    session = judge(judge(SessionJudgments(), result, "evil#0", 2), result, "formula#0", 0)
    bundle = make_bundle(result, session, VIEW, link=LINK, corpus="polyglot-facts",
                         created=datetime(2026, 1, 2, tzinfo=UTC))
    members = _members(bundle.data)
    assert list(members) == list(bundle.members)
    assert set(members) == {"settings.json", "results.json", "results.csv", "view.html", "qrels.trec",
                            "queries.tsv", "run-bm25.trec", "run-dense.trec", "run-hybrid.trec", "run-rerank.trec"}
    settings = json.loads(members["settings.json"])
    assert settings["view"] == VIEW.to_dict() and settings["view"]["k"] == 3
    assert settings["link"] == LINK and settings["corpus"] == "polyglot-facts"
    assert settings["created"] == "2026-01-02T00:00:00+00:00"
    assert settings["files"] == list(members) and settings["left_out"] == {}
    results = json.loads(members["results.json"])
    assert list(results["stages"]) == ["bm25", "dense", "hybrid", "rerank"]
    assert [hit["passage_id"] for hit in results["stages"]["rerank"]["hits"]] == ["formula#0", "evil#0"]
    assert results["stages"]["bm25"]["hits"][0]["text"] == f"Tulips {SCRIPT} and {IMG} bloom."
    assert sorted(line.split()[2:] for line in members["qrels.trec"].splitlines()) == [["evil#0", "2"],
                                                                                         ["formula#0", "0"]]
    rows = list(csv.DictReader(io.StringIO(members["results.csv"])))
    assert len(rows) == 8 and {row["stage"] for row in rows} == {"bm25", "dense", "hybrid", "rerank"}
    formulas = {row["text"] for row in rows if row["passage_id"] == "formula#0" and row["stage"] in {"bm25", "rerank"}}
    assert formulas == {"'" + FORMULA}, "CSV cells stay neutralised"


def test_the_page_shows_hostile_text_escaped_and_holds_no_script():
    page = render_page(_result(), VIEW, link=LINK, link_note="", corpus="polyglot-facts")
    lowered = page.lower()
    assert "<script" not in lowered, "no script tag at all, not even the app's own"
    assert "<img" not in lowered and "<b>" not in lowered and "<i>" not in lowered
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in page
    assert "&lt;b&gt;title&lt;/b&gt;" in page and "tulips &lt;i&gt;now&lt;/i&gt;" in page
    tags = Tags(page).tags
    assert {tag for tag, _ in tags} <= {"html", "head", "meta", "title", "style", "body", "header", "h1", "p", "span",
                                        "q", "dl", "dt", "dd", "a", "main", "div", "section", "h3", "ol", "li",
                                        "mark", "details", "summary", "small", "code", "progress",
                                        # the rank-flow chart (an inline SVG) and the agreement matrix
                                        "figure", "figcaption", "svg", "g", "line", "polyline", "circle", "path",
                                        "text", "ul", "table", "caption", "thead", "tbody", "tr", "th", "td"}, tags
    for tag, attrs in tags:
        assert not [name for name in attrs if name.startswith("on") or name in {"style", "src"}], (tag, attrs)
        assert not any((value or "").strip().lower().startswith("javascript:") for value in attrs.values()), attrs
    policy = next(attrs["content"] for tag, attrs in tags if tag == "meta" and attrs.get("http-equiv"))
    assert policy == CONTENT_SECURITY_POLICY and "default-src 'none'" in policy and "script" not in policy
    assert page.count("<style>") == 1 and stylesheet().strip()[:40] in page, "the stylesheet is inlined"
    assert 'href="http' not in page.replace(f'href="{LINK.replace("&", "&amp;")}"', ""), "no outside resource"
    sections = [attrs["data-stage"] for tag, attrs in tags if tag == "section"]
    assert sections == ["bm25", "dense", "hybrid", "rerank"], sections
    assert page.startswith("<!DOCTYPE html>")


def test_the_page_has_no_buttons_that_only_the_app_could_answer():
    result = _result()
    session = judge(SessionJudgments(), result, "evil#0", 2)
    page = _members(make_bundle(result, session, VIEW, link=LINK).data)["view.html"]
    assert "rerank" in [attrs.get("data-stage") for tag, attrs in Tags(page).tags if tag == "section"]
    assert 'class="hit"' in page, "the cards are there, only without buttons"
    tags = Tags(page).tags
    classes = {name for _, attrs in tags for name in (attrs.get("class") or "").split()}
    assert not classes & {"explain-btn", "judge-btn", "judge"}, "the inlined stylesheet may name them, no element"
    assert "button" not in {tag for tag, _ in tags} and "<button" not in page
    live = str(render_column(result.stages["rerank"], result, k=3, judgments={"evil#0": 2}))
    assert "explain-btn" in live and "judge-btn" in live, "the app's columns keep both"


def test_a_link_that_is_not_http_is_shown_as_text_only():
    page = render_page(_result(), VIEW, link="javascript:alert(3)", link_note="cannot carry uploaded files")
    assert "javascript:alert(3)" in page and "href=" not in page
    assert "cannot carry uploaded files" in page


def test_a_bundle_with_judgments_only_or_nothing():
    result = _result()
    session = judge(SessionJudgments(), result, "evil#0", 1)
    members = _members(make_bundle(None, session, VIEW).data)
    assert set(members) == {"settings.json", "qrels.trec", "queries.tsv", "run-bm25.trec", "run-dense.trec",
                            "run-hybrid.trec", "run-rerank.trec"}
    with pytest.raises(ValueError, match="Nothing to bundle yet: search first"):
        make_bundle(None, SessionJudgments(), VIEW)


def test_a_trec_file_that_cannot_hold_an_id_is_left_out_and_named():
    result = make_result([make_stage("bm25", ranked("my notes#0"))], query="notes")
    bundle = make_bundle(result, judge(SessionJudgments(), result, "my notes#0", 2), VIEW)
    assert "qrels.trec" not in bundle.members and "qrels.trec" in bundle.left_out
    settings = json.loads(_members(bundle.data)["settings.json"])
    assert "my notes#0" in settings["left_out"]["qrels.trec"]
    assert {"results.csv", "results.json", "view.html", "queries.tsv"} <= set(bundle.members)


def test_every_class_of_the_page_and_the_share_notes_has_a_rule():
    styled = css_classes(css_rules(stylesheet()))
    from tests.test_rankflow import HOOKS as CHART_HOOKS

    hooks = {"summary-item", "query-language", "passage-id", "doc-id", "more", "model-label", *CHART_HOOKS}
    fragments = render_page(_result(), VIEW, link=LINK, link_note="a note") + str(
        render_share_note("a note", ["a problem"]))
    emitted = {name for _, attrs in Tags(fragments).tags for name in (attrs.get("class") or "").split()}
    assert not emitted - styled - hooks, sorted(emitted - styled - hooks)
