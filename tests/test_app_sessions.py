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
    import app

    assert app._fail("bad header <a href=https://evil.example>x</a>").message == \
        "bad header &lt;a href=https://evil.example&gt;x&lt;/a&gt;"


def test_every_search_trigger_runs_the_same_chain():
    import app

    demo = app.build_demo()
    dependencies = demo.config["dependencies"]
    names = [block_fn.fn.__name__ for block_fn in demo.fns.values()]
    starts = [i for i, name in enumerate(names) if name in {"first_stages", "search_again"}]
    assert len(starts) == 3, "search button / Enter, k, and a row of the per-query table"
    for start in starts:
        followers = [i for i, dependency in enumerate(dependencies) if dependency["trigger_after"] == start]
        assert [names[i] for i in followers] == ["rerank_stage"], f"{names[start]} #{start} is not followed by rerank"
        assert dependencies[followers[0]]["trigger_only_on_success"]
        for key in ("inputs", "outputs", "show_progress"):
            assert dependencies[start][key] == dependencies[starts[0]][key], (key, start)
            assert dependencies[followers[0]][key] == dependencies[starts[0] + 1][key], (key, followers[0])


def test_downloads_use_one_folder_per_session_replaced_each_time_and_removed_with_the_session(tmp_path, monkeypatch):
    import tempfile
    from pathlib import Path

    import gradio as gr

    import app

    assert app.DOWNLOADS_DIR.is_relative_to(Path(tempfile.gettempdir())), "Gradio serves files from the temp dir"
    monkeypatch.setattr(app, "DOWNLOADS_DIR", tmp_path / "downloads")
    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    alice, bob = gr.Request(session_hash="alice"), gr.Request(session_hash="bob")
    first = app.write_downloads({"qrels.trec": "u1 0 a#0 1\n", "results.csv": "x\n"}, app.downloads_folder(alice))
    second = app.write_downloads({"qrels.trec": "u1 0 b#0 2\n"}, app.downloads_folder(alice))
    app.write_downloads({"qrels.trec": "u1 0 c#0 0\n"}, app.downloads_folder(bob))
    folder = Path(second[0]).parent
    assert Path(first[0]).parent == folder and folder.parent == tmp_path / "downloads"
    assert sorted(path.name for path in folder.iterdir()) == ["qrels.trec"], "the earlier download was replaced"
    assert Path(second[0]).read_text(encoding="utf-8") == "u1 0 b#0 2\n"
    assert len(list((tmp_path / "downloads").iterdir())) == 2, "one folder per session"
    app.forget_session(alice)
    assert not folder.exists(), "a closed session's downloads are removed"
    assert app.downloads_folder(bob).exists(), "another session's downloads stay"
