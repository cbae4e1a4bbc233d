"""The app's rerank column, through its callbacks with a real (tiny, local) cross-encoder: progress streamed
batch by batch, a new search cancelling the rerank of the old one, no pair scored twice when only the
view changes, and the expected rerank time beside the depth slider.

The reranker is paused after every batch (`tests.gated`) so a test can look at a rerank in its middle
without timing anything; pairs actually scored are counted with a forward hook on the model."""

from __future__ import annotations

import re
import threading
from dataclasses import replace

import pytest

from search.models import FALLBACK_DENSE_ID
from search.pipeline import Settings, build
from tests.gated import GatedReranker
from tests.tiny_models import build_tiny_xlmr_cross_encoder
from ui import columns, judging
from ui.regions import search as search_region
from ui.regions.corpus import AfterBuild
from ui.regions.judgments import JudgingCallbacks
from ui.regions.session import LatestSearch

DOCS = {
    f"{topic}-{number}.txt": f"{sentence} Note {number} on {topic}."
    for topic, sentence in (
        ("tea", "Green tea is grown on terraced hillsides and picked by hand in spring."),
        ("volcano", "A volcano erupts when magma rises through cracks in the crust of the Earth."),
        ("bees", "Honeybees dance to tell their sisters where the best flowers are blooming."),
    )
    for number in range(1, 5)
}
QUERY, OTHER_QUERY = "volcano magma crust", "where does green tea grow"
DEPTH = 10
VIEW = (5, "raw", False, "default")  # k, score view, best passage per document, score line


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("rerank-corpus")
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    folder = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-app-reranker"),
                                           [*DOCS.values(), QUERY, OTHER_QUERY] * 3)
    index = build([corpus], Settings(dense_model=FALLBACK_DENSE_ID, rerankers=(str(folder),), device="cpu",
                                     backend="torch"))  # the tests reach into the torch model
    index.reranker().model.inner.batch_size = 3  # several batches for 10 pairs
    return index


@pytest.fixture(scope="module")
def callbacks():
    from tests.app_page import make_page
    from ui.regions.search import SearchCallbacks

    page, _, _ = make_page()
    return SearchCallbacks(page)


@pytest.fixture
def gate(index, monkeypatch):
    cached = index.reranker().model
    gated = GatedReranker(cached.inner)
    monkeypatch.setattr(cached, "inner", gated)
    yield gated
    gated.open()


@pytest.fixture
def scored(index):
    """Rows (pairs) of every forward pass the reranker's model makes during a test."""
    rows: list[int] = []
    inner = index.reranker().model.inner
    model = (inner.inner if isinstance(inner, GatedReranker) else inner).model
    handle = model.register_forward_pre_hook(
        lambda module, args, kwargs: rows.append(kwargs["input_ids"].shape[0]), with_kwargs=True)
    yield rows
    handle.remove()


@pytest.fixture(autouse=True)
def fresh_scores(index):
    index.reranker().model.cache.clear()


def search(callbacks, index, latest, query, depth=DEPTH, candidates_from="hybrid"):
    return callbacks.first_stages(index, latest, judging.SessionJudgments(), query, VIEW[0], depth, candidates_from,
                                  *VIEW[1:])


def rerank(callbacks, index, latest):
    return callbacks.rerank_column("rerank")(index, judging.SessionJudgments(), latest, *VIEW)


def column(callbacks, updates, stage="rerank"):
    return str(updates.get(callbacks.page.search.columns[stage], ""))


def progress_of(html: str) -> tuple[int, int] | None:
    match = re.search(r'class="rerank-progress" data-done="(\d+)" data-total="(\d+)"', html)
    return (int(match[1]), int(match[2])) if match else None


def passage_ids(html: str) -> list[str]:
    return re.findall(r'<span class="passage-id" title="passage id">([^<]+)</span>', html)


def test_the_rerank_column_streams_its_progress_batch_by_batch_then_shows_the_results(callbacks, index, gate):
    latest = LatestSearch()
    first = search(callbacks, index, latest, QUERY)
    assert 'data-state="pending"' in column(callbacks, first)
    assert "measured after the first rerank" in str(first[callbacks.page.search.rerank_estimate])

    shown: list[tuple[int, int]] = []
    texts: list[str] = []
    final = None
    for update in rerank(callbacks, index, latest):
        html = column(callbacks, update)
        if (progress := progress_of(html)) is not None:
            shown.append(progress)
            texts.append(re.search(r'class="rerank-progress-text">([^<]+)<', html)[1])
            if gate.paused_at == progress[0]:
                gate.release()
        elif 'data-state="done"' in html:
            final = update

    assert final is not None, f"the rerank never showed its results; progress seen: {shown}"
    done = [done for done, total in shown if done > 0]
    assert {total for _, total in shown} == {DEPTH}
    assert done == sorted(set(done)) and done[-1] == DEPTH and len(done) >= 3, f"one update per batch: {shown}"
    assert any(text.endswith("left on this machine") for text in texts), texts
    assert all(text.startswith(f"{d:,} of {DEPTH} pairs scored") for (d, _), text in zip(shown, texts, strict=True))
    assert passage_ids(column(callbacks, final)) == [hit.passage_id for hit in
                                                     latest.result.stages["rerank"].hits[:VIEW[0]]]
    assert latest.result.query == QUERY and "rerank" in latest.result.stages


def test_a_new_search_cancels_the_running_rerank_which_then_shows_nothing(callbacks, index, gate, scored):
    import gradio as gr

    latest = LatestSearch()
    search(callbacks, index, latest, QUERY)
    first_updates: list[dict] = []
    first = threading.Thread(target=lambda: first_updates.extend(rerank(callbacks, index, latest)))
    first.start()
    paused_at = gate.wait_for_pause()
    assert 0 < paused_at < DEPTH

    second = search(callbacks, index, latest, OTHER_QUERY)  # the user searched again
    assert 'data-state="pending"' in column(callbacks, second)
    gate.release()
    first.join(timeout=120)
    assert not first.is_alive(), "the first rerank did not stop"
    assert sum(scored) == paused_at, "the first rerank stopped at its next batch"
    assert not any('data-state="done"' in column(callbacks, update) or progress_of(column(callbacks, update)) ==
                   (DEPTH, DEPTH) for update in first_updates), "the cancelled rerank drew a result"
    assert first_updates[-1] == gr.skip(), "after the cancel it changes nothing"
    assert latest.result.query == OTHER_QUERY and "rerank" not in latest.result.stages

    gate.open()
    final = list(rerank(callbacks, index, latest))[-1]  # the second search's own rerank event
    expected = index.rerank(latest.result)
    assert passage_ids(column(callbacks, final)) == [hit.passage_id for hit in expected.stages["rerank"].hits[:5]]
    assert latest.result.query == OTHER_QUERY and "rerank" in latest.result.stages


def test_a_rerank_that_starts_after_a_newer_search_reranks_the_newer_one(callbacks, index, gate):
    gate.open()
    latest = LatestSearch()
    search(callbacks, index, latest, QUERY)
    search(callbacks, index, latest, OTHER_QUERY)  # before the first search's rerank event got its turn
    updates = list(rerank(callbacks, index, latest))
    assert latest.result.query == OTHER_QUERY and "rerank" in latest.result.stages
    assert passage_ids(column(callbacks, updates[-1])) == [
        hit.passage_id for hit in latest.result.stages["rerank"].hits[:5]]
    again = list(rerank(callbacks, index, latest))  # the second search's event: draws the same column again
    assert column(callbacks, again[-1]) == column(callbacks, updates[-1])


def test_k_the_score_view_collapsing_judging_and_the_same_query_again_score_no_pair_twice(callbacks, index, gate,
                                                                                          scored):
    import gradio as gr

    gate.open()
    latest = LatestSearch()
    search(callbacks, index, latest, QUERY)
    list(rerank(callbacks, index, latest))
    assert sum(scored) == DEPTH
    cache = index.reranker().model.cache
    before = cache.stats()
    scored.clear()

    session = judging.SessionJudgments()
    again = search(callbacks, index, latest, QUERY)  # the same query again
    assert 'data-state="done"' in column(callbacks, again), "the cached rerank is drawn with the first stages"
    # k changed
    more = callbacks.search_again(index, latest, session, QUERY, 8, DEPTH, "hybrid", "raw", False, "default")
    assert 'data-state="done"' in column(callbacks, more)
    list(rerank(callbacks, index, latest))  # the rerank event that follows every search
    callbacks.rerender(index, session, latest, 8, "sigmoid", True, "0.5")
    hit = latest.result.stages["rerank"].hits[0]
    event = gr.EventData(callbacks.page.search.columns["rerank"], {"hit_rank": hit.rank, "grade": 2})
    judged = JudgingCallbacks(callbacks.page).judge_result(index, session, latest, 8, "raw", False, "default", event)
    assert judged[callbacks.page.session.judged].judgment_count == 1
    shallower = search(callbacks, index, latest, QUERY, depth=6)
    assert 'data-state="done"' in column(callbacks, shallower)

    after = cache.stats()
    assert scored == [], "no pair went to the model again"
    assert after.misses == before.misses, (before, after)
    assert after.hits > before.hits


def test_the_expected_rerank_time_follows_the_depth_and_the_results(callbacks, index, gate):
    gate.open()
    latest = LatestSearch()
    estimate = callbacks.page.search.rerank_estimate
    search(callbacks, index, latest, QUERY)
    list(rerank(callbacks, index, latest))  # measures the speed, and caches these pairs

    at_same = str(callbacks.rerank_estimate(index, latest, DEPTH, "hybrid")[estimate])
    assert 'data-state="cached"' in at_same and f"none at depth {DEPTH}" in at_same, at_same
    deeper = str(callbacks.rerank_estimate(index, latest, 12, "hybrid")[estimate])
    assert 'data-state="measured"' in deeper, deeper
    assert re.search(r"Expected rerank time: (about \d+ s|under a second) on this machine at depth 12", deeper)
    from_bm25 = str(callbacks.rerank_estimate(index, latest, DEPTH, "bm25")[estimate])
    expected = index.expected_rerank_seconds(replace(latest.result, candidates_from="bm25"), DEPTH)
    assert from_bm25 == columns.render_rerank_estimate(expected, DEPTH), "the source radio counts too"
    off = str(callbacks.rerank_estimate(index, latest, 0, "hybrid")[estimate])
    assert 'data-state="off"' in off
    new_query = search(callbacks, index, latest, OTHER_QUERY)
    assert 'data-state="measured"' in str(new_query[estimate]), "a new query's pairs are not scored yet"
    without_search = str(AfterBuild(callbacks.page).new_index_estimate(index, DEPTH)[estimate])
    assert f"on this machine at depth {DEPTH}" in without_search


def test_a_failing_rerank_says_so_in_the_column_and_leaves_the_first_stages(callbacks, index, monkeypatch):
    latest = LatestSearch()
    search(callbacks, index, latest, QUERY)

    def broken(*args, **kwargs):
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(search_region, "_rerank", broken)
    updates = list(rerank(callbacks, index, latest))
    assert "Reranking failed (RuntimeError)" in column(callbacks, updates[-1])
    assert latest.result.query == QUERY and "rerank" not in latest.result.stages
