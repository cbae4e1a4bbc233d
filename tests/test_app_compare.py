"""The app's fifth column, Reranked (B), through the regions' callbacks with two tiny local cross-encoders (A
and B, different random weights): B runs after A and streams its progress, its cards say how far they moved
against A, the summary says how far the two agree, a new search cancels B like A, the score cache serves
both, and Explain on a card of B explains it with B. Also the model panel's settings through the operator's
policy (`search.policy`): reranker B, and the TEI URL field an operator can hide (SEARCH_HIDE_TEI_URL)."""

from __future__ import annotations

import re
import threading

import pytest

from search import policy
from search.backends.tei import policy as tei_policy
from search.compare import agreement
from search.models import FALLBACK_DENSE_ID
from search.pipeline import Settings, build
from tests.app_page import make_page
from tests.gated import GatedReranker
from tests.tiny_models import build_tiny_xlmr_cross_encoder
from ui import judging
from ui.regions.corpus import AfterBuild
from ui.regions.explain import ExplainCallbacks
from ui.regions.search import SearchCallbacks
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
    corpus = tmp_path_factory.mktemp("compare-corpus")
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    texts = [*DOCS.values(), QUERY, OTHER_QUERY] * 3
    a = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-a"), texts, seed=0)
    b = build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-b"), texts, seed=1)
    index = build([corpus], Settings(dense_model=FALLBACK_DENSE_ID, rerankers=(str(a), str(b)), device="cpu",
                                     backend="torch"))
    index.reranker("rerank-b").model.inner.batch_size = 3  # several batches for 10 pairs
    return index


@pytest.fixture(scope="module")
def page():
    return make_page()[0]


@pytest.fixture(scope="module")
def callbacks(page):
    return SearchCallbacks(page)


@pytest.fixture(scope="module")
def explaining(page):
    return ExplainCallbacks(page)


def rerank(callbacks, index, latest, stage):
    return list(callbacks.rerank_column(stage)(index, judging.SessionJudgments(), latest, *VIEW))


@pytest.fixture(autouse=True)
def fresh_scores(index):
    index.reranker().model.cache.clear()


@pytest.fixture
def gate_b(index, monkeypatch):
    cached = index.reranker("rerank-b").model
    gated = GatedReranker(cached.inner)
    monkeypatch.setattr(cached, "inner", gated)
    yield gated
    gated.open()


def search(callbacks, index, latest, query):
    return callbacks.first_stages(index, latest, judging.SessionJudgments(), query, VIEW[0], DEPTH, "hybrid",
                                  *VIEW[1:])


def column_b(callbacks, updates) -> str:
    return str(updates.get(callbacks.page.search.columns["rerank-b"], ""))


def test_b_runs_after_a_and_its_cards_say_how_far_they_moved_against_a(callbacks, index, gate_b):
    import gradio as gr

    latest = LatestSearch()
    first = search(callbacks, index, latest, QUERY)
    assert 'data-stage="rerank-b" data-state="pending"' in column_b(callbacks, first)
    assert "(after A)" in column_b(callbacks, first), "B says it waits for A"
    assert rerank(callbacks, index, latest, "rerank-b") == [gr.skip()], \
        "before A has reranked, B does nothing (A's own chain runs B after it)"
    rerank(callbacks, index, latest, "rerank")
    assert "rerank" in latest.result.stages

    updates: list[dict] = []
    shown: list[tuple[int, int]] = []
    for update in callbacks.rerank_column("rerank-b")(index, judging.SessionJudgments(), latest, *VIEW):
        updates.append(update)
        match = re.search(r'class="rerank-progress" data-done="(\d+)" data-total="(\d+)"', column_b(callbacks, update))
        if match:
            shown.append((int(match[1]), int(match[2])))
            if gate_b.paused_at == shown[-1][0]:
                gate_b.release()
    done = [done for done, total in shown if done > 0]
    assert {total for _, total in shown} == {DEPTH} and len(done) >= 3, f"B streamed batch by batch: {shown}"
    final = column_b(callbacks, updates[-1])
    assert 'data-stage="rerank-b" data-state="done"' in final and "Reranked (B)" in final
    result = latest.result
    b_hits = result.stages["rerank-b"].hits[:5]
    for hit in b_hits:  # each card's move against A, from its rank in A's list
        before = hit.ranks["rerank"]
        text = "= A" if before == hit.rank else (f"↑{before - hit.rank} vs A" if before > hit.rank
                                                  else f"↓{hit.rank - before} vs A")
        assert f'data-against="rerank" title="rank {hit.rank} here, {before} in the first reranker (A)">{text}' \
            in final, text
    both = agreement(result, 5)
    matrix = str(updates[-1][callbacks.page.search.chart])  # the agreement matrix beside the rank-flow chart
    cell = re.search(r'<td class="rf-pair[^"]*" data-pair="rerank-rerank-b" data-shared="(\d+)"', matrix)
    assert cell is not None and int(cell[1]) == both.shared, matrix[:300]
    assert 'data-pair="rerank-b-rerank"' in matrix and f'data-tau="{both.kendall_tau:.4f}"' in matrix
    assert both.candidates == DEPTH and result.stages["rerank-b"].model != result.stages["rerank"].model


def test_the_same_query_again_draws_both_rerankers_from_the_score_cache(callbacks, index):
    latest = LatestSearch()
    search(callbacks, index, latest, OTHER_QUERY)
    rerank(callbacks, index, latest, "rerank")
    rerank(callbacks, index, latest, "rerank-b")
    again = search(callbacks, index, latest, OTHER_QUERY)
    assert 'data-stage="rerank-b" data-state="done"' in column_b(callbacks, again), "every pair of B was cached"
    assert "rerank-b" in latest.result.stages


def test_a_new_search_cancels_b_which_then_shows_nothing(callbacks, index, gate_b):
    import gradio as gr

    latest = LatestSearch()
    search(callbacks, index, latest, QUERY)
    rerank(callbacks, index, latest, "rerank")
    updates: list[dict] = []
    worker = threading.Thread(target=lambda: updates.extend(rerank(callbacks, index, latest, "rerank-b")))
    worker.start()
    gate_b.wait_for_pause()
    second = search(callbacks, index, latest, OTHER_QUERY)  # the user searched again: its first stages at once
    assert "data-state" in str(second[callbacks.page.search.columns["bm25"]])
    gate_b.release()
    worker.join(timeout=120)
    assert not worker.is_alive(), "B did not stop"
    assert updates[-1] == gr.skip() and not any('data-state="done"' in column_b(callbacks, u) for u in updates)
    assert latest.result.query == OTHER_QUERY and "rerank-b" not in latest.result.stages


def test_after_a_build_the_b_column_shows_only_with_a_reranker_b_and_evaluate_follows(page, index, tmp_path):
    after = AfterBuild(page)
    column, stages = page.search.columns["rerank-b"], page.evaluate.stages
    updates = after.new_index(index, None)
    assert updates[column].visible is True and updates[stages].value == ["rerank-b"]
    # The user's own choice of the other stages survives a build; a reranker's stage follows the index.
    assert after.new_index(index, ["bm25", "rerank"])[stages].value == ["bm25", "rerank", "rerank-b"]
    (tmp_path / "a.txt").write_text("Tea grows on hills.", encoding="utf-8")
    plain = build([tmp_path], Settings(dense_model=FALLBACK_DENSE_ID, rerankers=("late-interaction",), device="cpu"))
    updates = after.new_index(plain, ["dense", "rerank-b"])
    assert updates[column].visible is False and updates[stages].value == ["dense"]
    assert updates[page.evaluate.metrics_table] is None, "the previous corpus' results are cleared"
    assert "load judgments for it" in str(updates[page.evaluate.judgments_info])


def test_explain_on_a_card_of_b_explains_it_with_reranker_b(explaining, callbacks, index):
    import gradio as gr

    panel = explaining.panel
    latest = LatestSearch()
    search(callbacks, index, latest, QUERY)
    rerank(callbacks, index, latest, "rerank")
    rerank(callbacks, index, latest, "rerank-b")
    result = latest.result
    a_scores = {hit.passage_id: hit.score for hit in result.stages["rerank"].hits}
    b_hit = result.stages["rerank-b"].hits[1]
    label_a, label_b = result.stages["rerank"].model, result.stages["rerank-b"].model

    column_b_html = column_b(callbacks, callbacks.rerender(index, judging.SessionJudgments(), latest, *VIEW))
    assert column_b_html.count('class="explain-btn"') == VIEW[0], "every card of B has an Explain button"

    event = gr.EventData(callbacks.page.search.columns["rerank-b"],
                         {"explain_rank": b_hit.rank, "explain_stage": "rerank-b"})
    picked = explaining.pick(index, latest, event)
    assert picked[panel.passage].value == b_hit.passage_id
    assert [value for _, value in picked[panel.passage].choices] == [
        hit.passage_id for hit in result.stages["rerank-b"].hits], "the passages of B's column, in B's order"
    chooser = picked[panel.reranker]
    assert chooser.visible is True and chooser.value == "rerank-b"
    assert chooser.choices == [(f"reranker A: {label_a}", "rerank"), (f"reranker B: {label_b}", "rerank-b")]
    cost = str(picked[panel.cost])
    assert f"#{b_hit.rank} {b_hit.passage_id}: " in cost and f"scored by reranker B: {label_b}" in cost
    assert 'data-state="measured"' in cost, "B's measured speed prices it"

    shown = list(explaining.run(index, latest, b_hit.passage_id, "rerank-b"))[-1]
    head = re.search(r'class="explain-head">#(\d+) (\S+) · score (-?[\d.]+)[^<]* · ([^<]+)</p>',
                     str(shown[panel.result]))
    assert head is not None, shown[panel.result]
    assert (int(head[1]), head[2]) == (b_hit.rank, b_hit.passage_id)
    assert float(head[3]) == pytest.approx(b_hit.score, abs=1e-4), "the full score is the B card's"
    assert abs(float(head[3]) - a_scores[b_hit.passage_id]) > 1e-3, "not A's score for the same passage"
    assert head[4] == f"reranker B: {label_b}"
    assert 'data-state="cached"' in str(shown[panel.cost]), "B's score cache now holds every version"

    # A's cards (whose payload may lack the stage) still pick A, and explain with A.
    a_hit = result.stages["rerank"].hits[0]
    for payload in ({"explain_rank": a_hit.rank}, {"explain_rank": a_hit.rank, "explain_stage": "rerank"}):
        picked = explaining.pick(index, latest, gr.EventData(callbacks.page.search.columns["rerank"], payload))
        assert picked[panel.passage].value == a_hit.passage_id and picked[panel.reranker].value == "rerank"
        assert f"scored by reranker A: {label_a}" in str(picked[panel.cost])
    shown = list(explaining.run(index, latest, a_hit.passage_id, "rerank"))[-1]
    score = float(re.search(r"· score (-?[\d.]+)", str(shown[panel.result]))[1])
    assert score == pytest.approx(a_hit.score, abs=1e-4)
    # Switching the panel to B offers B's column, keeping the passage chosen.
    switched = explaining.refresh(index, latest, a_hit.passage_id, "rerank-b")
    assert switched[panel.passage].value == a_hit.passage_id and switched[panel.reranker].value == "rerank-b"
    assert "reranker B" in str(switched[panel.cost])


def test_without_a_reranker_b_the_explain_panel_explains_a_and_hides_the_choice(explaining):
    from tests.hand_made import make_hit, make_result, make_stage

    latest = LatestSearch(make_result([make_stage("rerank", [make_hit("a#0", 1, text="Alpha one.")])]))
    update = explaining.refresh(None, latest, "a#0", "rerank-b")  # no index, so no B: A's passages
    assert update[explaining.panel.reranker].visible is False and update[explaining.panel.reranker].value == "rerank"
    assert update[explaining.panel.passage].value == "a#0"


# -- the model panel's settings ---------------------------------------------------------------------------


def _settings(tei_url="", backend="torch", rerankers=None, **overrides):
    return policy.build_settings({"window": 200, "overlap": 40, "backend": backend, **overrides},
                                 rerankers=rerankers, tei_url=tei_url)


def test_compare_settings_from_the_panel(monkeypatch):
    monkeypatch.delenv("SEARCH_ALLOW_CUSTOM_MODELS", raising=False)
    assert len(_settings().rerankers) == 1
    chosen = _settings(backend="onnx", rerankers=[("", ""), ("late-interaction", "int8")])
    assert [(item.model, item.backend) for item in chosen.rerankers] == [("auto", ""), ("late-interaction", "int8")]
    with pytest.raises(ValueError, match="not one of the models offered"):
        _settings(rerankers=[("auto", ""), ("someone/else", "")])
    with pytest.raises(ValueError, match="tpu"):
        _settings(rerankers=[("auto", ""), ("late-interaction", "tpu")])


def _tei_field(demo):
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "tei-url")


def _public_example(url: str, **options) -> str | None:
    from search.backends.tei import internal_host

    return None if url.endswith(".example") else internal_host(url, **options)


def test_the_tei_url_field_is_shown_and_used_unless_the_operator_hides_it(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SEARCH_TEI_TOKEN", raising=False)
    monkeypatch.delenv("SEARCH_HIDE_TEI_URL", raising=False)
    monkeypatch.setenv("SEARCH_TEI_URL", "https://operator.example")
    monkeypatch.setattr(tei_policy, "internal_host", _public_example)  # no DNS here: *.example counts as public
    field = _tei_field(make_page()[2])
    assert field.visible is True and field.value == "", "the operator's endpoint is not written into the page"
    assert _settings(backend="tei", tei_url="https://mine.example/ ").tei_url == "https://mine.example"
    assert _settings(backend="tei", tei_url="").tei_url == "https://operator.example"
    with pytest.raises(ValueError, match="credentials"):
        _settings(backend="tei", tei_url="https://user:secret@mine.example")

    monkeypatch.setenv("SEARCH_HIDE_TEI_URL", "1")
    assert _tei_field(make_page()[2]).visible is False
    # Hidden, a value sent anyway (through the API) is ignored: the operator's endpoint is used.
    assert _settings(backend="tei", tei_url="https://elsewhere.example").tei_url == "https://operator.example"


def test_the_token_never_goes_to_a_typed_endpoint_nor_into_the_page(monkeypatch):
    monkeypatch.delenv("SEARCH_HIDE_TEI_URL", raising=False)
    monkeypatch.setenv("SEARCH_TEI_URL", "https://operator.example")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_123")
    monkeypatch.setattr(tei_policy, "internal_host", _public_example)
    with pytest.raises(ValueError, match="sends it only to the endpoints its operator set") as refused:
        _settings(backend="tei", tei_url="https://attacker.example")
    assert "hf_secret_token_123" not in str(refused.value)
    assert _settings(backend="tei", tei_url="https://operator.example/").tei_url == "https://operator.example"
    from search import config

    assert "hf_secret_token_123" not in repr(config.current()), "the token is kept out of the configuration's repr"
    assert "hf_secret_token_123" not in str(make_page()[2].config), "the token never reaches the page"


def test_a_typed_tei_url_must_name_a_public_address_unless_the_operator_allows_internal_ones(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("SEARCH_TEI_TOKEN", raising=False)
    monkeypatch.delenv("SEARCH_HIDE_TEI_URL", raising=False)
    monkeypatch.delenv("SEARCH_ALLOW_INTERNAL_TEI_URL", raising=False)
    monkeypatch.setenv("SEARCH_TEI_URL", "http://127.0.0.1:8080")
    for url, why in (("http://127.0.0.1:9000", "loopback"), ("http://169.254.169.254", "link-local"),
                     ("http://10.0.0.7:80", "private"), ("http://localhost:8080", "loopback"),
                     ("https://no-such-host.invalid", "does not resolve")):
        with pytest.raises(ValueError, match=why) as refused:
            _settings(backend="tei", tei_url=url)
        assert "SEARCH_ALLOW_INTERNAL_TEI_URL" in str(refused.value), "the message names the setting"
        assert "Invalid settings" not in str(refused.value), "said once"
    # The operator's own endpoint is always allowed, loopback or not.
    assert _settings(backend="tei", tei_url="http://127.0.0.1:8080").tei_url == "http://127.0.0.1:8080"
    monkeypatch.setenv("SEARCH_ALLOW_INTERNAL_TEI_URL", "1")
    assert _settings(backend="tei", tei_url="http://10.0.0.7").tei_url == "http://10.0.0.7"


def test_internal_host_resolves_names_and_bounds_the_wait():
    import time

    from search.backends.tei import internal_host

    def answers(address):
        return lambda host, port: [(2, 1, 6, "", (address, 0))]

    assert internal_host("https://api.example", resolve=answers("93.184.216.34")) is None
    assert internal_host("https://rebind.example", resolve=answers("192.168.1.5")) == \
        "rebind.example (192.168.1.5) is a private address"

    def hangs(host, port):
        time.sleep(1)
        return []

    # A resolver that doesn't answer in time: the wait ends at the timeout, and the host is refused.
    assert internal_host("https://slow.example", timeout=0.2, resolve=hangs) == \
        "slow.example does not resolve within 0.2 s"


def test_after_a_rebuild_explain_does_not_explain_the_old_indexs_search(explaining):
    # The latest search ran on the index a rebuild replaced: Explain offers nothing from it and asks for a
    # new search, rather than scoring the old passage with the new index's reranker.
    from tests.hand_made import make_hit, make_result, make_stage

    old_index = object()
    latest = LatestSearch()
    latest.begin(make_result([make_stage("rerank", [make_hit("a#0", 1, text="Alpha one.")])]), old_index)
    assert latest.result_on(old_index) is not None and latest.result_on(None) is None
    update = explaining.refresh(None, latest, "a#0", "rerank")
    assert update[explaining.panel.passage].choices == [] and update[explaining.panel.passage].value is None


def test_redrawing_for_another_k_leaves_a_rerank_column_that_is_still_working_alone(callbacks):
    # Another k, view or a judgment redraws the columns of the latest result; a rerank stage not in it yet
    # (B waiting behind A, or A at work) keeps its column's progress instead of going blank.
    import types

    from tests.hand_made import make_hit, make_result, make_stage

    latest = LatestSearch()
    index = types.SimpleNamespace(languages=(), rerank_stages=("rerank", "rerank-b"))
    latest.begin(make_result([make_stage(name, [make_hit("a#0", 1)]) for name in ("bm25", "dense", "hybrid",
                                                                                "rerank")]), index)
    update = callbacks.rerender(index, judging.SessionJudgments(), latest, *VIEW)
    drawn = {name for name, column in callbacks.page.search.columns.items() if column in update}
    assert drawn == {"bm25", "dense", "hybrid", "rerank"}, "rerank-b is not in the result: left as it is"
