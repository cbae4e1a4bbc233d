"""End-to-end in a real browser (Debian's chromium via Playwright): upload, build, search, and hostile text.

Skips when chromium is absent (install it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from search.models import DEFAULT_DENSE_MODEL, FALLBACK_LABEL, RERANKER_V2_M3
from tests.app_page import open_page

ROOT = Path(__file__).resolve().parents[1]
MIXED = ROOT / "corpora" / "mixed-formats"
SCREENSHOT = ROOT / "artifacts" / "screenshot.png"

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect


@pytest.fixture
def page(browser, app_url):
    page = open_page(browser, app_url)
    yield page
    page.close()


def _upload_and_build(page, paths):
    page.set_input_files("#corpus-files input[type=file]", [str(path) for path in paths])
    for path in paths:
        expect(page.locator("#corpus-files")).to_contain_text(Path(path).stem, timeout=30_000)
    page.click("#build-button")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)


def _search(page, query):
    page.fill("#query textarea", query)
    page.click("#search-button")
    page.wait_for_selector('#column-bm25 section[data-state="done"]', timeout=60_000)
    page.wait_for_selector('#column-rerank section[data-state="done"]', timeout=180_000)


def test_upload_build_and_search_shows_four_columns_with_languages_and_movements(page):
    files = [MIXED / "hindi-monsoon.txt", MIXED / "chinese-silk-road.md", MIXED / "german-rivers.csv"]
    _upload_and_build(page, files)
    # text_content: the corpus panel folds after a build (in an event of its own), hiding the summary
    counts = page.text_content("#build-summary .build-counts")
    assert "6 documents from 3 files" in counts and "3 languages" in counts, counts

    _search(page, "Welcher Fluss entspringt in den Schweizer Alpen?")
    titles = [page.inner_text(f"#column-{name} h3.stage-title") for name in ("bm25", "dense", "hybrid", "rerank")]
    assert titles == ["BM25", "Dense", "Hybrid", "Reranked"]
    for name in ("bm25", "dense", "hybrid", "rerank"):
        assert page.locator(f"#column-{name} li.hit").count() >= 3, name
    assert page.inner_text("#column-bm25 li.hit[data-rank='1'] .lang-badge").startswith("de")
    badges = {text.split()[0] for text in page.locator(".lang-badge").all_inner_texts()}
    assert {"de", "hi", "zh-cn"} <= badges, badges
    assert page.locator("#column-rerank span.move[data-against='hybrid']").count() >= 3
    assert "late-interaction fallback, not a cross-encoder" in page.inner_text("#column-rerank .stage-model")
    assert FALLBACK_LABEL in page.inner_text("#column-dense .stage-model")
    assert page.locator("#column-bm25 li.hit mark").count() >= 1, "query terms are highlighted"
    expect(page.locator("#rank-flow table.rank-agreement")).to_contain_text("shared@10", timeout=30_000)
    assert page.locator("#rank-flow td.rf-pair[data-pair='bm25-dense']").count() == 1
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert not page.errors, page.errors


def test_hostile_passages_show_as_text_and_never_run(page, tmp_path):
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text(
        '{"_id": "x1", "title": "<b>bold title</b>", '
        '"text": "Payload one <script>window.__pwned = 1</script> stays plain text about tulips."}\n'
        '{"_id": "x2", "title": "img", '
        '"text": "Payload two <img src=x onerror=\\"window.__pwned=2\\"> about tulips."}\n',
        encoding="utf-8")
    named = tmp_path / "<img src=y onerror=alert(3)>.txt"
    named.write_text("Tulips bloom in spring.", encoding="utf-8")
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    _upload_and_build(page, [hostile, named])
    _search(page, "tulips <script>alert(4)</script>")
    # Gradio drops "<" and ">" from uploaded file names; the rest of the name is the document id, as text.
    assert "img src=y onerror=alert(3)" in page.inner_text("#column-bm25"), "a file name is shown as text"
    text = page.inner_text("#column-bm25")
    assert "<script>window.__pwned = 1</script>" in text, "the script tag must be visible as text"
    assert '<img src=x onerror="window.__pwned=2">' in text
    assert "<b>bold title</b>" in text
    assert page.evaluate("window.__pwned === undefined"), "a corpus script ran"
    injected = "document.querySelectorAll('img[src=x], img[src=y], .stage-column script, .stage-column b').length"
    assert page.evaluate(injected) == 0, "an element from the corpus was injected"
    assert not dialogs, dialogs
    assert not page.errors, page.errors


def test_bad_file_gives_a_warning_and_keeps_the_good_ones(page, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"_id": "a", "text": "Owls hunt at night."}\n{oops\n', encoding="utf-8")
    _upload_and_build(page, [good, broken])
    # text_content: the corpus panel folds after a build (in an event of its own), hiding the summary
    assert "2 documents" in page.text_content("#build-summary .build-counts")
    problems = page.text_content("#build-summary details.problems")
    assert "broken.jsonl" in problems and "line 2" in problems, problems
    assert "Traceback" not in page.content()


def test_evaluate_tab_runs_and_shows_metrics_chart_and_queries(page):
    # the polyglot-facts sample is preselected
    page.click("#build-button")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    page.get_by_role("tab", name="Evaluate").click()
    page.click("#bundled-judgments")
    expect(page.locator("#judgments-summary")).to_contain_text("44 queries", timeout=60_000)
    assert "80 of 80" in page.inner_text("#judgments-summary .judgments-counts")
    assert "Estimated run time" in page.inner_text("#judgments-summary")
    page.click("#run-eval")
    expect(page.locator("#metrics-table")).to_contain_text("Reranked", timeout=300_000)
    table = page.inner_text("#metrics-table")
    for title in ("BM25", "Dense", "Hybrid", "nDCG@10", "MRR@10"):
        assert title in table, table
    assert page.locator("#metrics-chart canvas, #metrics-chart svg").count() >= 1, "the chart is drawn"
    expect(page.locator("#per-query-table")).to_contain_text("q01", timeout=30_000)
    page.locator("#per-query-table").get_by_text(re.compile(r"^q\d\d$")).filter(visible=True).first.click()
    expect(page.locator("#query textarea")).not_to_have_value("", timeout=30_000)
    page.wait_for_selector('#column-bm25 section[data-state="done"]', timeout=60_000)
    assert not page.errors, page.errors


def test_judge_three_results_and_download_the_qrels(page):
    page.click("#build-button")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    _search(page, "When did the Luna 2 probe reach the Moon?")
    for rank, grade in ((1, 2), (2, 1), (3, 0)):
        page.locator(f"#column-rerank li.hit[data-rank='{rank}'] button.judge-btn[data-grade='{grade}']").click()
        expect(page.locator(f"#column-rerank li.hit[data-rank='{rank}'] button.judge-btn.selected")).to_have_text(
            str(grade), timeout=30_000)
    expect(page.locator("#judged-metrics")).to_contain_text("3 judgment(s) on 1 query", timeout=30_000)
    page.click("#download-button")
    link = page.locator("#downloads tr", has_text="qrels").locator("a").first  # the name shows as "qrels .trec"
    link.wait_for(timeout=30_000)
    with page.expect_download() as download_info:
        link.click()
    qrels = Path(download_info.value.path()).read_text(encoding="utf-8").split("\n")
    judged = sorted(line.split()[3] for line in qrels if line.strip())
    assert judged == ["0", "1", "2"], qrels
    assert not page.errors, page.errors


def test_the_fallback_reason_is_said_once_and_the_columns_start_with_results(browser, another_app):
    # A second app whose default models are the real ones, which can't be loaded offline: both fall back. (An app
    # started with these defaults: the dropdowns take them as their values.)
    page = open_page(browser, another_app(dense_model=DEFAULT_DENSE_MODEL, rerankers=((RERANKER_V2_M3, ""),)))
    _upload_and_build(page, [MIXED / "german-rivers.csv", MIXED / "hindi-monsoon.txt"])
    # The corpus panel folds after a build; the reasons are said in its build summary, so open it to read them.
    page.locator("#corpus-panel").get_by_text("(open to change it)").click()
    expect(page.locator("#build-summary")).to_be_visible(timeout=30_000)
    summary = page.inner_text("#build-summary")
    assert "SEARCH_DENSE_MODEL" in summary and "SEARCH_RERANKER_MODEL" in summary, summary
    _search(page, "Welcher Fluss entspringt in den Schweizer Alpen?")
    # As shown (inner_text): the columns' notes are folded, the summary is open.
    shown = page.inner_text("body")
    for reason in (f"dense model '{DEFAULT_DENSE_MODEL}' could not be loaded",
                   f"reranker '{RERANKER_V2_M3}' could not be loaded"):
        assert shown.count(reason) == 1, (reason, "said once, in the build summary")
    assert shown.count("could not be loaded") == 2, "the dense and reranker reasons, and nothing else"
    for name in ("dense", "hybrid", "rerank"):
        column = f"#column-{name}"
        assert "could not be loaded" not in page.inner_text(column), name
        assert "could not be loaded" in page.get_attribute(f"{column} .stage-model", "title"), "one hover away"
        assert "fallback" in page.inner_text(f"{column} .stage-model"), "a short label says it is a fallback"

    def below_the_model(name: str) -> float:
        """Pixels from the bottom of the column's model label to the top of its first card."""
        model = page.locator(f"#column-{name} .stage-model").bounding_box()
        card = page.locator(f"#column-{name} li.hit[data-rank='1']").bounding_box()
        return card["y"] - (model["y"] + model["height"])

    # Below the model's label a fallback column has one folded line ("fallback: why?") more than BM25 before its
    # first card, not the reason (about 200 px here when unfolded). The labels themselves differ in length (the
    # hybrid's names both its inputs), so the columns' tops are compared from the label down.
    for name in ("dense", "hybrid"):
        assert below_the_model(name) - below_the_model("bm25") < 60, (name, below_the_model(name),
                                                                       below_the_model("bm25"))
    page.click("#column-dense details.stage-note summary")
    expect(page.locator("#column-dense details.stage-note p")).to_contain_text("SEARCH_DENSE_MODEL")
    assert not page.errors, page.errors
    page.close()



def test_cancel_or_closing_the_page_stops_the_build_and_the_panel_gives_the_time_left(browser, another_app,
                                                                                      tmp_path, caplog):
    import logging
    import random
    import time

    caplog.set_level(logging.INFO, logger="ui.regions")
    rng = random.Random(5)
    words = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3)) for _ in range(400)]
    corpus = tmp_path / "long.txt"
    corpus.write_text(" ".join(rng.choices(words, k=160 * 1000)), encoding="utf-8")  # about 1,000 passages

    def cancelled() -> list[str]:
        return [record.getMessage() for record in caplog.records
                if record.name == "ui.regions.corpus" and "build cancelled" in record.getMessage()]

    def wait_for_cancelled(count: int) -> str:
        for _ in range(600):
            if len(cancelled()) >= count:
                return cancelled()[count - 1]
            time.sleep(0.2)
        pytest.fail("the server-side build did not stop within 120 s")

    # An app that never asks before a build (SEARCH_CONFIRM_BUILD_SECONDS=0): on a slow or busy machine a thousand
    # passages take longer to embed than the default 2 min, and the build would wait for a go-ahead.
    page = open_page(browser, another_app(confirm_build_seconds=0))
    page.set_input_files("#corpus-files input[type=file]", [str(corpus)])
    expect(page.locator("#corpus-files")).to_contain_text("long", timeout=30_000)

    page.click("#build-button")
    page.wait_for_selector("#build-progress .build-step", timeout=60_000)
    page.click("#cancel-build")
    assert "cancelled during" in wait_for_cancelled(1)
    expect(page.locator("#build-progress .build-step")).to_have_count(0, timeout=30_000)

    page.click("#build-button")
    estimate = page.locator("#build-progress .build-estimate")
    expect(estimate).to_contain_text("passages to index", timeout=300_000)
    expect(estimate).to_have_text(re.compile(r"[\d,]+ passages to index\. Embedding: .+ left at [\d.,]+ passages/s "
                                             r"on this machine\."), timeout=300_000)
    page.close()  # the build's event loses its page: the build must stop at its next batch
    assert "cancelled during embeddings" in wait_for_cancelled(2)
    assert not any("built" in record.getMessage() for record in caplog.records if record.name == "ui.regions.corpus")


def test_a_spaced_file_name_still_gives_every_download_it_can(page, tmp_path):
    notes = tmp_path / "my notes.txt"
    notes.write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    _upload_and_build(page, [notes])
    _search(page, "lighthouses at night")
    page.locator("#column-bm25 li.hit[data-rank='1'] button.judge-btn[data-grade='2']").click()
    expect(page.locator("#judged-metrics")).to_contain_text("1 judgment(s) on 1 query", timeout=30_000)
    page.click("#download-button")
    expect(page.locator("#downloads")).to_contain_text("results", timeout=30_000)
    files = page.inner_text("#downloads")  # every stage ranked the spaced id: no TREC file can hold it
    for name in ("results\n.csv", "results\n.json", "queries\n.tsv"):
        assert name in files, files
    assert "qrels" not in files and "run-" not in files, files
    expect(page.locator(".toast-body").filter(has_text="qrels.trec was left out")).to_contain_text("my notes#0")
    assert not page.errors, page.errors


def _two_topic_corpus(path: Path) -> Path:
    """60 passages that say "zebrafinch" (ids finch-N) and 60 that say "glockenturm" (bell-N), each with its own
    filler words, one passage per document: a query for one topic ranks that topic's passages first."""
    import json
    import random

    rng = random.Random(9)
    words = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3)) for _ in range(300)]
    with open(path, "w", encoding="utf-8") as out:
        for topic, word in (("finch", "zebrafinch"), ("bell", "glockenturm")):
            for number in range(60):
                text = " ".join([word, *rng.choices(words, k=25), word])
                out.write(json.dumps({"_id": f"{topic}-{number}", "text": text}) + "\n")
    return path


def test_the_reranked_column_shows_live_progress_and_a_new_query_cancels_the_old_rerank(page, tmp_path, caplog,
                                                                                        monkeypatch):
    import logging

    from search.loading import load_reranker
    from tests.gated import GatedReranker

    caplog.set_level(logging.INFO, logger="ui.regions")
    _upload_and_build(page, [_two_topic_corpus(tmp_path / "topics.jsonl")])
    # The app's late-interaction reranker (shared by the process), paused after every batch of 32 passages.
    cached = load_reranker("late-interaction").model
    gate = GatedReranker(cached.inner)
    monkeypatch.setattr(cached, "inner", gate)
    try:
        page.fill("#rerank-depth input[type=number]", "100")
        page.press("#rerank-depth input[type=number]", "Enter")
        page.fill("#query textarea", "zebrafinch")
        page.click("#search-button")

        progress = page.locator("#column-rerank .rerank-progress")
        for pause, done in ((1, 32), (2, 64)):
            assert gate.wait_for_pause(pause) == done
            expect(progress).to_have_attribute("data-done", str(done), timeout=60_000)
            expect(progress).to_contain_text(f"{done} of 100 pairs scored · ")
            if pause == 1:
                gate.release()
        assert "left on this machine" in progress.inner_text() or "measuring" in progress.inner_text()

        page.fill("#query textarea", "glockenturm")  # a new query while the first rerank is paused at 64 of 100
        page.click("#search-button")
        # A card's passage id is its data-passage (the id as text is folded with the whole passage).
        expect(page.locator("#column-bm25 li.hit[data-rank='1']")).to_have_attribute("data-passage",
                                                                                   re.compile(r"^bell-"),
                                                                                   timeout=60_000)
        gate.open()
        page.wait_for_selector('#column-rerank section[data-state="done"]', timeout=180_000)
        # The reranked column is the new query's (bell-), not the old rerank's (finch-), in rank order.
        top = page.eval_on_selector_all("#column-rerank li.hit", "cards => cards.map(card => card.dataset.passage)")[:5]
        assert top and all(passage.startswith("bell-") for passage in top), top
        expect(page.locator("#rerank-estimate .rerank-estimate")).not_to_have_attribute("data-state", "unmeasured")
    finally:
        gate.open()
    stopped = [record.getMessage() for record in caplog.records
               if record.name == "ui.regions.search" and "rerank of 'zebrafinch' stopped" in record.getMessage()]
    assert stopped and "cancelled after 64 of 100 pairs" in stopped[0], stopped
    expect(page.locator("#model-status .model-status")).to_have_attribute("data-state", "ready", timeout=300_000)
    assert not page.errors, page.errors


def test_a_shared_link_restores_the_view_builds_the_sample_and_searches(browser, app_url):
    from urllib.parse import quote

    context = browser.new_context(viewport={"width": 1600, "height": 1100})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_url.rstrip("/"))
    page = open_page(context, width=None)
    query = "When did the Luna 2 probe reach the Moon?"
    page.goto(f"{app_url}?sample=polyglot-facts&q={quote(query)}&k=4&depth=8&from=bm25&score=sigmoid"
              "&reranker=no/such-model&compare=late-interaction&zzz=<b>x</b>")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    expect(page.locator("#query textarea")).to_have_value(query, timeout=30_000)
    page.wait_for_selector('#column-bm25 section[data-state="done"]', timeout=60_000)
    page.wait_for_selector('#column-rerank section[data-state="done"]', timeout=180_000)
    assert "polyglot-facts" in page.locator("#sample-corpus input").input_value()
    assert page.locator("#rerank-depth input[type=number]").input_value() == "8"
    for name in ("bm25", "dense", "hybrid", "rerank"):
        assert page.locator(f"#column-{name} li.hit").count() == 4, name
    # The link names a reranker B (compare=late-interaction): its column shows too, with its own results.
    page.wait_for_selector('#column-rerank-b section[data-state="done"]', timeout=180_000)
    assert page.locator("#column-rerank-b li.hit").count() == 4
    assert page.locator("#column-rerank-b span.move.vs-a").count() == 4, "B's cards move against A"
    assert page.locator("#column-rerank span.move.primary[data-against='bm25']").count() >= 1, "candidates from bm25"
    assert page.locator("#column-rerank span.score").first.inner_text().startswith("score"), "sigmoid n/a view"
    problems = page.inner_text("#share-problems")
    assert "reranker='no/such-model' in the link is not a reranker offered here" in problems, problems
    assert page.locator("#share-problems b").count() == 0

    link = page.locator("#share-link textarea, #share-link input").first
    expect(link).to_have_value(re.compile(r"^http://127\.0\.0\.1:\d+/\?sample=polyglot-facts&q=When%20did"),
                               timeout=30_000)
    shared = link.input_value()
    for part in ("k=4", "depth=8", "from=bm25", "score=sigmoid", "reranker=late-interaction"):
        assert part in shared, (part, shared)
    assert page.url == shared, "the address bar follows the view"
    page.click("#copy-link")
    expect(page.locator("#copy-link")).to_have_attribute("data-copied", re.compile(r"\d+"), timeout=10_000)
    assert page.evaluate("navigator.clipboard.readText()") == shared

    page.fill("#query textarea", "volcano")
    page.click("#search-button")
    expect(link).to_have_value(re.compile(r"q=volcano"), timeout=30_000)
    assert "q=volcano" in page.url
    assert not page.errors, page.errors
    context.close()


def test_a_link_made_from_uploads_says_it_cannot_carry_them_and_the_bundle_downloads(page, browser, tmp_path):
    import io
    import zipfile

    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text('{"_id": "x1", "text": "Tulips <script>window.__pwned = 1</script> and '
                       '<img src=x onerror=\\"window.__pwned=2\\"> bloom."}\n', encoding="utf-8")
    _upload_and_build(page, [hostile])
    expect(page.locator("#share-notes")).to_contain_text("cannot carry uploaded files", timeout=30_000)
    _search(page, "tulips")
    link = page.locator("#share-link textarea, #share-link input").first
    expect(link).to_have_value(re.compile(r"q=tulips"), timeout=30_000)
    assert "sample=" not in link.input_value()
    page.click("#bundle-button")
    anchor = page.locator("#bundle a").first
    anchor.wait_for(timeout=30_000)
    with page.expect_download() as download_info:
        anchor.click()
    with zipfile.ZipFile(io.BytesIO(Path(download_info.value.path()).read_bytes())) as archive:
        names = set(archive.namelist())
        view = archive.read("view.html").decode("utf-8")
    assert {"settings.json", "results.json", "results.csv", "view.html"} <= names, names
    assert "<script" not in view.lower() and "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in view
    offline = browser.new_page(offline=True)  # the page needs no network
    offline.set_content(view)
    assert offline.locator("section.stage-column").count() == 4
    assert "<script>window.__pwned = 1</script>" in offline.inner_text("section.stage-column[data-stage=bm25]")
    assert offline.evaluate("window.__pwned === undefined")
    offline.close()


def _choose(page, elem_id: str, value: str) -> None:
    # A Gradio dropdown: open its list, then click the option (a model's option says where it loads from:
    # "late-interaction-minilm (bundled, offline)").
    page.click(f"#{elem_id} input")
    page.get_by_role("option", name=re.compile(rf"^{re.escape(value)}( \(.*\))?$")).click()
    expect(page.locator(f"#{elem_id} input")).to_have_value(re.compile(rf"^{re.escape(value)}"))


def test_a_second_reranker_adds_a_fifth_column_whose_cards_move_against_a(page):
    # The polyglot-facts sample; A: late interaction over the bundled multilingual e5, B: over the bundled
    # MiniLM in int8 (English-centric, quantized: it orders the Chinese question's candidates otherwise).
    page.get_by_text("Passages and models").click()
    assert not page.locator("#column-rerank-b").is_visible(), "no fifth column without a reranker B"
    _choose(page, "compare-model", "late-interaction-minilm")
    _choose(page, "compare-backend", "int8")
    page.click("#build-button")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    expect(page.locator("#build-summary")).to_contain_text("Reranker B (compare with)", timeout=30_000)
    _search(page, "茶是什么时候传入日本的？")
    page.wait_for_selector('#column-rerank-b section[data-state="done"]', timeout=180_000)

    assert page.inner_text("#column-rerank-b h3.stage-title") == "Reranked (B)"
    model_a, model_b = (page.inner_text(f"#column-{name} .stage-model") for name in ("rerank", "rerank-b"))
    assert model_a.startswith("late-interaction fallback") and "all-MiniLM-L6-v2" in model_b, (model_a, model_b)
    assert "int8" in model_b, model_b
    versus = page.locator("#column-rerank-b span.move.vs-a").all_inner_texts()
    assert len(versus) >= 5 and all(re.fullmatch(r"[↑↓]\d+ vs A|= A", text) for text in versus), versus
    assert any(text != "= A" for text in versus), "two different models order the candidates differently"
    assert page.locator("#column-rerank-b span.move[data-against='hybrid']").count() >= 5, "B's cards move too"
    shared = page.locator("#rank-flow td.rf-pair[data-pair='rerank-rerank-b']")
    expect(shared).to_have_count(1, timeout=30_000)
    assert 0 <= int(shared.get_attribute("data-shared")) <= 10 and re.fullmatch(r"J [01]\.\d\d", shared.locator(
        ".rf-jaccard").inner_text())
    tau = page.locator("#rank-flow td.rf-pair[data-pair='rerank-b-rerank']").get_attribute("data-tau")
    assert -1.0 <= float(tau) <= 1.0, "Kendall's tau of A and B, below the diagonal"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT.with_name("compare.png")), full_page=True)

    # Explain on a card of B: the panel switches to reranker B, and the full score shown is the B card's.
    card = page.locator("#column-rerank-b li.hit").first
    card.locator("button.explain-btn").click()
    expect(page.locator("#explain-reranker label", has_text="reranker B").locator("input")).to_be_checked()
    full_b = page.get_attribute("#column-rerank-b .stage-model", "title").split("\n")[0]  # the header's is short
    expect(page.locator("#explain-cost .explain-cost")).to_contain_text(f"scored by reranker B: {full_b}",
                                                                        timeout=30_000)
    page.click("#explain-button")
    head = page.locator("#explain-result .explain-head")
    expect(head).to_contain_text(f"reranker B: {full_b}", timeout=120_000)
    shown = float(head.inner_text().split("score ")[1].split()[0])
    assert shown == pytest.approx(float(card.locator(".score").get_attribute("title").split()[-1]), abs=1e-4)
    assert not page.errors, page.errors


def test_an_empty_query_says_so_once_and_k_typed_then_enter_searches_again(page):
    page.click("#build-button")  # the sample corpus
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    page.click("#search-button")
    expect(page.locator(".toast-body").first).to_contain_text("the query is empty", timeout=30_000)
    page.wait_for_timeout(1500)  # a second toast would have come by now
    assert page.locator(".toast-body").count() == 1, page.locator(".toast-body").all_inner_texts()
    _search(page, "When did the Luna 2 probe reach the Moon?")
    assert page.locator("#column-bm25 li.hit").count() == 10
    box = page.locator("#k input[type=number]")
    box.fill("4")
    box.press("Enter")  # the number box commits on Enter, not only when it loses focus
    expect(page.locator("#column-bm25 li.hit")).to_have_count(4, timeout=30_000)
    assert not page.errors, page.errors


@pytest.mark.parametrize("viewport", [(1600, 1000), (1280, 800)])
def test_after_search_the_query_the_chart_and_the_columns_tops_are_in_view(browser, app_url, viewport):
    width, height = viewport
    page = open_page(browser, app_url, width=width, height=height)
    page.click("#build-button")  # the sample corpus
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    expect(page.locator("#corpus-panel")).to_contain_text("Corpus: 92 passages of 80 documents", timeout=30_000)
    assert not page.locator("#build-button").is_visible(), "the corpus panel folds to its one-line summary"
    _search(page, "How far is the Moon from the Earth on average?")
    for selector in ("#query textarea", "#search-button", "#rank-flow svg.rank-flow-chart"):
        box = page.locator(selector).bounding_box()
        assert box and 0 <= box["y"] and box["y"] + min(box["height"], 40) <= height, (selector, box)
    for name in ("bm25", "dense", "hybrid", "rerank"):
        top = page.locator(f"#column-{name} h3.stage-title").bounding_box()
        assert top and 0 <= top["y"] < height - top["height"], (name, top, "the column's top is on screen")
    # The controls stay in view while the columns scroll: once the page has scrolled past where the query box
    # was (the wheel returns before the page scrolls), the box is still at the top.
    was_at = page.evaluate("window.scrollY") + page.locator("#query textarea").bounding_box()["y"]
    page.mouse.wheel(0, 1500)
    page.wait_for_function("top => window.scrollY > top + 200", arg=was_at, timeout=10_000)
    assert 0 <= page.locator("#query textarea").bounding_box()["y"] < 80, "the query box sticks to the top"
    # From the bottom of the page (the share and judging panels under the columns, the controls stuck above
    # them), a new search still brings the chart and the columns' tops into view.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")  # instant: no wait needed
    assert page.locator("#share-link").bounding_box()["y"] < height, "the test starts from the page's bottom"
    _search(page, "茶是什么时候传入日本的？")
    for name in ("bm25", "rerank"):  # the new query's columns, not the last one's (already "done")
        expect(page.locator(f"#column-{name} li.hit").first).to_have_attribute("data-passage", re.compile(r"^tea-"),
                                                                             timeout=180_000)
    for name in ("bm25", "rerank"):
        top = page.locator(f"#column-{name} h3.stage-title").bounding_box()
        assert top and 0 <= top["y"] < height - top["height"], (name, top, "the column's top is on screen")
    chart = page.locator("#rank-flow svg.rank-flow-chart").bounding_box()
    assert chart and chart["y"] >= 0, ("the chart's top is on screen", chart)
    page.close()


def test_the_rank_flow_chart_draws_every_passage_and_a_click_finds_its_card(page, tmp_path):
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text("".join(
        json.dumps({"_id": f"h{i}", "title": f'<img src=x onerror="window.__pwned={i}"> tulips {i}',
                    "text": f"Tulips bloom in spring, tulip number {i} <script>window.__pwned = {i}</script>."}) + "\n"
        for i in range(6)), encoding="utf-8")
    _upload_and_build(page, [hostile, MIXED / "german-rivers.csv"])
    _search(page, "tulips spring")
    passages = set(page.eval_on_selector_all(".rr-columns li.hit", "cards => cards.map(card => card.dataset.passage)"))
    lines = page.locator("#rank-flow g.rf-line")
    assert lines.count() == len(passages) and passages, "one line per passage in any stage's top k"
    assert set(page.eval_on_selector_all("#rank-flow g.rf-line", "lines => lines.map(l => l.dataset.passage)")) \
        == passages
    first = lines.first
    hover = first.locator("title").text_content()
    assert "BM25" in hover and "Reranked" in hover and "#" in hover, hover
    assert page.locator("#rank-flow img, #rank-flow script").count() == 0, "no markup from the corpus"
    assert page.evaluate("window.__pwned === undefined")
    target, focus = first.get_attribute("data-passage"), first.get_attribute("data-focus-stage")
    first.locator("polyline.rf-path").first.dispatch_event("click")
    card = page.locator(f'#column-{focus} li.hit.rank-flow-target[data-passage="{target}"]')
    expect(card).to_be_in_viewport(timeout=10_000)  # scrolled to the card of the line's last stage
    assert not page.errors, page.errors


def test_a_long_build_says_what_it_will_cost_and_lets_files_be_left_out(browser, another_app, tmp_path, caplog):
    import logging
    import time

    caplog.set_level(logging.INFO, logger="ui.regions.corpus")
    # An app that asks before any build that takes over a second to embed (SEARCH_CONFIRM_BUILD_SECONDS=1).
    page = open_page(browser, another_app(confirm_build_seconds=1), height=1000)
    junk = _long_corpus(tmp_path, passages=300)
    good = tmp_path / "good.txt"
    good.write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    page.set_input_files("#corpus-files input[type=file]", [str(junk), str(good)])
    expect(page.locator("#corpus-files")).to_contain_text("good", timeout=30_000)
    page.click("#build-button")
    question = page.locator("#build-confirm .build-confirm")
    expect(question).to_contain_text("Embedding 301 passages", timeout=180_000)
    assert re.search(r"takes (about \d+ (s|min)|under a second) on this machine", question.inner_text())
    sources = page.locator("#build-confirm .confirm-sources li").all_inner_texts()
    assert sources[0].startswith("long.txt 300 passages") and sources[1].startswith("good.txt 1 passage"), sources
    assert page.locator("#build-summary .build-counts").count() == 0, "nothing is embedded before the go-ahead"
    page.locator("#leave-out label", has_text="long.txt").click()
    page.click("#confirm-build")
    # attached, not visible: after a build the corpus panel folds to its one-line summary
    page.wait_for_selector("#build-summary .build-counts", state="attached", timeout=180_000)
    assert "1 document" in page.text_content("#build-summary .build-counts")  # the panel may have folded
    assert "left out before embedding" in page.text_content("#build-summary")
    assert not page.locator("#build-confirm").is_visible()

    # With a corpus built and searched, a long build asks again: the question stays in view (the panel does
    # not fold over it) and the columns keep their results, as nothing was built.
    _search(page, "lighthouses at night")
    page.locator("#corpus-panel").get_by_text("(open to change it)").click()
    page.click("#build-button")  # the same two files, still uploaded
    expect(question).to_contain_text("Embedding 301 passages", timeout=180_000)

    def waiting() -> list[str]:
        return [record.getMessage() for record in caplog.records
                if record.name == "ui.regions.corpus" and "waits for its go-ahead" in record.getMessage()]

    # The panel would fold in the event that follows the build's; its record says it has run.
    for _ in range(150):
        if len(waiting()) >= 2:  # the first question's, then this one's
            break
        time.sleep(0.2)
    assert len(waiting()) >= 2, ("the event after the build did not see the corpus waiting", caplog.text)
    assert question.is_visible() and page.locator("#build-button").is_visible(), "the panel stays open"
    assert page.locator("#column-rerank li.hit").count() == 1, "the reranked column keeps its result"
    page.click("#drop-build")
    expect(question).to_be_hidden(timeout=30_000)
    assert page.locator("#column-bm25 li.hit").count() == 1
    page.close()


def _long_corpus(tmp_path, passages: int):
    """One .txt (long.txt) that splits into `passages` passages with the default window (200 words, 40 shared)."""
    import random

    rng = random.Random(8)
    words = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3)) for _ in range(400)]
    path = tmp_path / "long.txt"
    path.write_text(" ".join(rng.choices(words, k=160 * passages)), encoding="utf-8")
    return path
