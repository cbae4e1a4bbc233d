"""The app's API from gradio_client: named endpoints, and two sessions that never see each other's corpus."""

from __future__ import annotations

import threading

import pytest

from search.models import FALLBACK_DENSE_ID, LATE_INTERACTION_ID

gradio_client = pytest.importorskip("gradio_client")

MODELS = (FALLBACK_DENSE_ID, LATE_INTERACTION_ID)  # the offline models (see conftest)
CORPORA = {
    "alpha": ("alpha.txt", "Zebrafinch colonies nest in the reeds of Lake Alphavale every spring."),
    "beta": ("beta.txt", "Der Glockenturm von Betastadt läutet jeden Abend um sieben Uhr."),
}


def _build(client, tmp_path, name):
    file_name, text = CORPORA[name]
    path = tmp_path / name / file_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return client.predict([gradio_client.handle_file(str(path))], "(none: use my files)", 200, 40, *MODELS,
                          api_name="/build_index")


def test_named_endpoints_exist(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/build_index", "/search"} <= set(endpoints), endpoints.keys()


def test_two_concurrent_sessions_each_see_only_their_own_corpus(app_url, tmp_path):
    clients = {name: gradio_client.Client(app_url, verbose=False) for name in CORPORA}
    builds, errors = {}, []

    def run(name):
        try:
            builds[name] = _build(clients[name], tmp_path, name)
        except Exception as error:  # noqa: BLE001 - surfaced by the assert below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(name,)) for name in CORPORA]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    for summary in builds.values():
        assert summary[-1]["documents"] == 1 and summary[-1]["passages"] == 1, summary[-1]

    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        result = clients[name].predict("Zebrafinch Glockenturm", 10, 5, "hybrid", api_name="/search")
        seen = {hit["doc_id"] for stage in result["stages"].values() for hit in stage["hits"]}
        assert seen == {name}, f"session {name} saw {seen}"
        assert other not in str(result)


def test_search_before_building_names_the_fix(app_url):
    client = gradio_client.Client(app_url, verbose=False)
    with pytest.raises(Exception, match="Build an index first"):
        client.predict("anything", 5, 5, "hybrid", api_name="/search")


def test_bad_upload_keeps_good_files_and_reports(app_url, tmp_path):
    client = gradio_client.Client(app_url, verbose=False)
    good = tmp_path / "good.txt"
    good.write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"_id": "a", "text": "Owls hunt at night."}\n{oops\n', encoding="utf-8")
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    summary = client.predict([gradio_client.handle_file(str(p)) for p in (good, bad, empty)],
                             "(none: use my files)", 200, 40, *MODELS, api_name="/build_index")[-1]
    assert summary["documents"] == 2, summary
    problems = {(p["source"], p["line"]) for p in summary["problems"]}
    assert ("broken.jsonl", 2) in problems and any(source == "empty.csv" for source, _ in problems), problems


def test_app_and_cli_report_the_same_metrics_on_the_sample_corpus(app_url, capsys):
    import json

    from search.cli import main

    client = gradio_client.Client(app_url, verbose=False)
    client.predict(None, "polyglot-facts: 80 documents, 10 languages", 200, 40, *MODELS, api_name="/build_index")
    client.predict(["bm25", "dense", "hybrid", "rerank"], 20, "hybrid", api_name="/load_bundled_judgments")
    app_report = client.predict(["bm25", "dense", "hybrid", "rerank"], 20, "hybrid", None, "hybrid", "rerank",
                                api_name="/evaluate")[-1]
    assert main(["eval", "corpora/polyglot-facts", "--rerank-depth", "20", "--candidates-from", "hybrid",
                 "--json"]) == 0
    cli_report = json.loads(capsys.readouterr().out)
    assert app_report["queries"] == cli_report["queries"] == 44
    assert set(app_report["stages"]) == set(cli_report["stages"]) == {"bm25", "dense", "hybrid", "rerank"}
    for stage, metrics in cli_report["stages"].items():
        assert app_report["stages"][stage] == pytest.approx(metrics, abs=1e-9), stage


def test_only_offered_models_can_be_chosen(app_url, tmp_path):
    client = gradio_client.Client(app_url, verbose=False)
    path = tmp_path / "a.txt"
    path.write_text("Some text about tea.", encoding="utf-8")
    with pytest.raises(Exception, match="not in the list of choices|not one of the models offered"):
        client.predict([gradio_client.handle_file(str(path))], "(none: use my files)", 200, 40, "evil/huge-model",
                       "late-interaction", api_name="/build_index")


def test_messages_from_uploads_are_escaped_before_gradio_renders_them():
    from ui.regions.common import fail

    assert fail("bad header <a href=https://evil.example>x</a>").message == \
        "bad header &lt;a href=https://evil.example&gt;x&lt;/a&gt;"


def _chain(demo, start: int) -> list[str]:
    """The names of the handlers that follow event `start` of `demo`, one after the other (after the first
    stages: the chart beside the rerankers' chain)."""
    dependencies = demo.config["dependencies"]
    names = [getattr(block_fn.fn, "__name__", None) for block_fn in demo.fns.values()]  # Cancel build has no fn
    chain, current = [], start
    while followers := [i for i, dependency in enumerate(dependencies) if dependency["trigger_after"] == current]:
        chain.extend(names[i] for i in followers if names[i] == "chart")
        current = next(i for i in followers if names[i] != "chart")
        chain.append(names[current])
    return chain


def test_every_search_trigger_runs_the_same_chain():
    import app

    demo = app.build_demo()
    dependencies = demo.config["dependencies"]
    names = [getattr(block_fn.fn, "__name__", None) for block_fn in demo.fns.values()]  # Cancel build has no fn
    starts = [i for i, name in enumerate(names) if name in {"first_stages", "search_again", "search_restored"}]
    assert len(starts) == 5, "search button / Enter, k, an example query, a row of the per-query table, a shared link"
    for start in starts:
        assert _chain(demo, start) == ["chart", "rerank_rerank", "rerank_estimate", "rerank_rerank_b"], names[start]
        first = next(i for i, dependency in enumerate(dependencies)
                     if dependency["trigger_after"] == start and names[i] == "rerank_rerank")
        assert dependencies[first]["trigger_only_on_success"]
        for key in ("inputs", "outputs", "show_progress"):
            assert dependencies[start][key] == dependencies[starts[0]][key], (key, start)


def test_downloads_use_one_folder_per_session_replaced_each_time_and_removed_with_the_session(tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    import gradio as gr

    from ui.regions import session

    assert session.DOWNLOADS_DIR.is_relative_to(Path(tempfile.gettempdir())), "Gradio serves files from the temp dir"
    monkeypatch.setattr(session, "DOWNLOADS_DIR", tmp_path / "downloads")
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    alice, bob = gr.Request(session_hash="alice"), gr.Request(session_hash="bob")
    first = session.write_downloads({"qrels.trec": "u1 0 a#0 1\n", "results.csv": "x\n"},
                                    session.downloads_folder(alice))
    second = session.write_downloads({"qrels.trec": "u1 0 b#0 2\n"}, session.downloads_folder(alice))
    session.write_downloads({"qrels.trec": "u1 0 c#0 0\n"}, session.downloads_folder(bob))
    folder = Path(second[0]).parent
    assert Path(first[0]).parent == folder and folder.parent == tmp_path / "downloads"
    assert sorted(path.name for path in folder.iterdir()) == ["qrels.trec"], "the earlier download was replaced"
    assert Path(second[0]).read_text(encoding="utf-8") == "u1 0 b#0 2\n"
    assert len(list((tmp_path / "downloads").iterdir())) == 2, "one folder per session"
    session.forget_session(alice)
    assert not folder.exists(), "a closed session's downloads are removed"
    assert session.downloads_folder(bob).exists(), "another session's downloads stay"


def test_download_with_a_spaced_id_gives_every_file_it_can_and_names_the_one_left_out(tmp_path, monkeypatch):
    from pathlib import Path

    import gradio as gr

    from tests.app_page import make_page
    from tests.hand_made import make_result, make_stage, ranked
    from ui import judging
    from ui.regions import session as session_state
    from ui.regions.judgments import JudgingCallbacks

    monkeypatch.setattr(session_state, "DOWNLOADS_DIR", tmp_path / "downloads")
    callbacks = JudgingCallbacks(make_page()[0])
    result = make_result([make_stage("bm25", ranked("a#0", "my notes#0")), make_stage("dense", ranked("a#0")),
                          make_stage("rerank", ranked("my notes#0", "a#0"))], candidates_from="bm25")
    session = judging.judge(judging.SessionJudgments(), result, "my notes#0", 2)
    with pytest.warns(UserWarning) as warned:
        updates = callbacks.download_judgments(session, session_state.LatestSearch(result), "default", "raw",
                                               gr.Request(session_hash="spaced"))
    paths = updates[callbacks.page.judging.downloads]
    assert sorted(Path(path).name for path in paths) == ["queries.tsv", "results.csv", "results.json",
                                                          "run-dense.trec"]
    messages = [str(warning.message) for warning in warned]
    for name in ("qrels.trec", "run-bm25.trec", "run-rerank.trec"):
        assert any(message.startswith(f"{name} was left out") and "my notes#0" in message for message in messages), \
            (name, messages)
    assert "my notes#0" in Path(next(p for p in paths if p.endswith("results.csv"))).read_text(encoding="utf-8")


def test_the_upload_limit_is_counted_in_the_same_unit_by_gradio_and_the_app(monkeypatch):
    from gradio.utils import _parse_file_size

    import app

    monkeypatch.setenv("SEARCH_MAX_UPLOAD_MB", "50")
    assert _parse_file_size(app.launch_kwargs()["max_file_size"]) == 50 * 1_000_000
    demo = app.build_demo()
    labels = [block.label for block in demo.blocks.values() if getattr(block, "elem_id", None) == "corpus-files"]
    assert labels == ["Upload files (up to 50 MB in all; 1 MB = 1,000,000 bytes)"], labels


def test_a_file_over_the_limit_in_mb_but_under_it_in_mib_is_refused_at_upload(app_url, tmp_path):
    # The test app allows 5 MB: 5,100,000 bytes is over 5 MB (10^6) and under 5 MiB (5,242,880).
    client = gradio_client.Client(app_url, verbose=False)
    big = tmp_path / "big.txt"
    big.write_bytes(b"word " * 1_020_000)
    with pytest.raises(Exception) as refused:
        client.predict([gradio_client.handle_file(str(big))], "(none: use my files)", 200, 40, *MODELS,
                       api_name="/build_index")
    assert "The upload is" not in str(refused.value), "Gradio let it through and only the app refused it"


# -- builds: a passage limit, two at a time, and a cancelled build stops -------------------------------

def _long_corpus(tmp_path, passages: int = 4000):
    """One .txt that splits into `passages` passages with a 32-word window and no overlap."""
    import random

    rng = random.Random(8)
    words = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3)) for _ in range(400)]
    path = tmp_path / "long.txt"
    path.write_text(" ".join(rng.choices(words, k=32 * passages)), encoding="utf-8")
    return path


def _wait_for(condition, what: str, timeout: float = 300.0):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.2)
    pytest.fail(f"{what} did not happen within {timeout:.0f} s")


def test_builds_run_two_at_a_time_and_cancel_is_wired_to_the_build():
    import app
    from ui.regions.corpus import BUILD_SLOTS

    demo = app.build_demo()
    builds = [fn for fn in demo.fns.values()
              if getattr(fn.fn, "__name__", "") in {"build_corpus", "build_page", "continue_build", "build_restored"}]
    assert len(builds) == 4 and BUILD_SLOTS == 2, "the API's, the page's, its go-ahead and a link's"
    assert {(fn.concurrency_limit, fn.concurrency_id) for fn in builds} == {(BUILD_SLOTS, "build")}
    assert [fn.api_name for fn in builds if fn.fn.__name__ == "build_corpus"] == ["build_index"]
    page_builds = sorted(fn._id for fn in builds if fn.fn.__name__ in {"build_page", "continue_build"})
    cancels = [sorted(dependency["cancels"]) for dependency in demo.config["dependencies"] if dependency["cancels"]]
    assert page_builds in cancels, "Cancel build closes the page's build events"


def test_a_corpus_over_the_passage_limit_is_refused_and_nothing_is_indexed(tmp_path):
    import gradio as gr

    from tests.app_page import make_page
    from ui.regions.corpus import CorpusCallbacks
    from ui.regions.session import BuildIdle

    page, ctx, _ = make_page(max_passages=3)  # an app started with SEARCH_MAX_PASSAGES=3
    path = tmp_path / "seven.txt"
    path.write_text(" ".join(f"word{i}" for i in range(7 * 32)), encoding="utf-8")
    build = CorpusCallbacks(page, ctx).build_corpus(
        BuildIdle(), gr.Request(session_hash="limit"), files=[str(path)], sample="(none: use my files)", window=32,
        overlap=0, dense_model=MODELS[0], reranker_model=MODELS[1])
    updates = []
    with pytest.raises(gr.Error, match=r"the corpus has 7 passages .*at most 3 \(SEARCH_MAX_PASSAGES\)"):
        updates.extend(build)
    assert not any(page.session.index in update for update in updates), "nothing was indexed"


def test_a_small_build_runs_beside_a_long_one_and_cancelling_stops_the_long_one(app_url, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="ui.regions.corpus")
    long_client = gradio_client.Client(app_url, verbose=False)
    long_build = long_client.submit([gradio_client.handle_file(str(_long_corpus(tmp_path)))], "(none: use my files)",
                                    32, 0, *MODELS, api_name="/build_index")
    _wait_for(lambda: any('data-state="running"' in str(output) and "4,000" in str(output)
                          for output in long_build.outputs()), "the long build reporting its 4,000 passages")

    small = _build(gradio_client.Client(app_url, verbose=False), tmp_path, "alpha")[-1]
    assert small["passages"] == 1
    assert not long_build.done(), "the small build waited for the long one to finish"

    long_build.cancel()
    cancelled = _wait_for(lambda: [record.getMessage() for record in caplog.records
                                   if record.name == "ui.regions.corpus"
                                   and "build cancelled" in record.getMessage()],
                          "the server-side build stopping", timeout=120)
    assert "of 4000 done" in cancelled[0], cancelled
    assert not any("built 4000 passages" in record.getMessage() for record in caplog.records)


# -- API searches: first stages do not queue behind reranks ---------------------------------------------

def test_first_stage_api_searches_do_not_wait_behind_reranks(app_url, tmp_path):
    from search.inference import RERANK_LOCK
    from ui.regions.session import FIRST_STAGE_SLOTS

    client = gradio_client.Client(app_url, verbose=False)
    _build(client, tmp_path, "alpha")
    # Hold the reranker (as a long rerank would) while more reranking calls arrive than there are
    # first-stage slots; a first-stage-only call must still be answered.
    RERANK_LOCK.acquire()
    try:
        reranking = [client.submit("Zebrafinch reeds", 5, 5, "hybrid", api_name="/search")
                     for _ in range(FIRST_STAGE_SLOTS + 2)]
        first_only = client.submit("Zebrafinch reeds", 5, 0, "hybrid", api_name="/search").result(timeout=120)
        assert set(first_only["stages"]) == {"bm25", "dense", "hybrid"}, first_only["stages"].keys()
        assert not any(job.done() for job in reranking), "a rerank ran while the reranker was held"
    finally:
        RERANK_LOCK.release()
    for job in reranking:
        assert job.result(timeout=300)["stages"]["rerank"]["hits"][0]["doc_id"] == "alpha"


def test_the_search_api_and_the_pages_first_stages_have_their_own_limits():
    import app
    from ui.regions.session import API_SEARCHES, FIRST_STAGE_SLOTS

    demo = app.build_demo()
    api = next(fn for fn in demo.fns.values() if fn.api_name == "search")
    assert (api.concurrency_id, api.concurrency_limit) == ("search_api", API_SEARCHES)
    starts = [fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") in {"first_stages", "search_again"}]
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in starts} == {("first_stages", 4)}
    assert FIRST_STAGE_SLOTS == 4


def test_a_hostile_file_beside_a_good_one_does_not_hang_the_build_or_lose_the_good_one(app_url, tmp_path):
    # A Markdown heading line of 100,000 spaces (a regex with nested repetition backtracks on it).
    hostile = tmp_path / "hostile.md"
    hostile.write_text("# a" + " " * 100_000 + "b", encoding="utf-8")
    good = tmp_path / "good.txt"
    good.write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    client = gradio_client.Client(app_url, verbose=False)
    job = client.submit([gradio_client.handle_file(str(path)) for path in (hostile, good)], "(none: use my files)",
                        200, 40, *MODELS, api_name="/build_index")
    summary = job.result(timeout=900)[-1]  # generous: a bound on hanging, not a speed test
    reasons = {problem["source"]: problem["message"] for problem in summary["problems"]}
    if summary["documents"] == 1:
        assert reasons.get("hostile.md"), f"hostile.md was neither indexed nor listed with a reason: {summary}"
    else:
        assert summary["documents"] == 2, summary
    result = client.predict("lighthouses ships", 5, 0, "hybrid", api_name="/search")
    assert result["stages"]["bm25"]["hits"][0]["doc_id"] == "good", result["stages"]["bm25"]["hits"]


# -- the backend setting and the model warm-up's line ------------------------------------------------------

def test_the_backend_dropdown_offers_the_engines_backends_and_reaches_the_index(app_url, tmp_path, monkeypatch):
    import app
    from search.loading import BACKENDS, resolve_backend
    from search.policy import build_settings

    monkeypatch.setenv("SEARCH_BACKEND", "torch")
    demo = app.build_demo()
    dropdown = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "backend")
    assert [value for _, value in dropdown.choices] == list(BACKENDS) and dropdown.value == "torch"
    assert build_settings({"backend": "torch"}).backend == "torch"
    with pytest.raises(ValueError, match=r"no-such-backend.* is not one of auto, torch"):
        build_settings({"backend": "no-such-backend"})

    client = gradio_client.Client(app_url, verbose=False)
    path = tmp_path / "a.txt"
    path.write_text("Zebrafinch colonies nest in the reeds.", encoding="utf-8")
    built = client.predict([gradio_client.handle_file(str(path))], "(none: use my files)", 200, 40, *MODELS, "torch",
                           api_name="/build_index")[-1]
    assert built["backend"] == "torch"
    default = _build(client, tmp_path, "beta")[-1]  # the API may leave the backend out: "auto", resolved
    assert default["backend"] == resolve_backend("auto")


def test_the_page_says_which_models_are_loading_and_the_warm_up_is_started_once():
    import app

    demo = app.build_demo()
    warmup = app.model_warmup()
    assert app.build_demo() is not demo and app.model_warmup() is warmup, "one warm-up per process"
    line = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "model-status")
    assert "model-load" in line.value and ("Loading models:" in line.value or "Models ready:" in line.value)
    loads = [fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "follow"]
    assert len(loads) == 1 and loads[0].concurrency_limit is None, "a page waiting for the models holds no slot"
    assert warmup.wait(timeout=600), "the warm-up did not finish"
    assert warmup.status().done


def test_a_rerank_triggered_while_the_sessions_last_one_runs_waits_for_it_instead_of_being_dropped():
    import app

    demo = app.build_demo()
    names = [getattr(block_fn.fn, "__name__", None) for block_fn in demo.fns.values()]
    dependencies = demo.config["dependencies"]
    reranks = [i for i, name in enumerate(names) if name in ("rerank_rerank", "rerank_rerank_b")]
    # search button, k, an example query, a per-query row, a shared link (one chain each), A and B in each
    assert len(reranks) == 10 and {dependencies[i]["trigger_mode"] for i in reranks} == {"always_last"}
    for rerank in reranks:  # A is followed by the estimate beside the slider, read once A has measured and cached
        if names[rerank] == "rerank_rerank":
            assert _chain(demo, rerank)[:1] == ["rerank_estimate"]
