"""The model warm-up (`search.warmup`): the bundled models load in the background, a Hub model's download is
counted in bytes through huggingface_hub itself (against a small Hub-like server on loopback, since the
real Hub is out of reach here), offline ids fall back as a build would, and the app's builds wait for
the default models with the warm-up's line in their progress panel."""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from search.models import FALLBACK_DENSE_ID, FALLBACK_LABEL, LATE_INTERACTION_ID, LATE_INTERACTION_LABEL
from search.warmup import ByteCounter, Warmup, download_with_progress, needs_hub, plan_download

REPO = "example-org/tiny-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "config.json": b'{"model_type": "bert"}',
    "model.safetensors": bytes(range(256)) * 1200,  # 307,200 bytes
    "tokenizer.json": b'{"version": "1.0"}' * 50,
    "pytorch_model.bin": b"pickle weights are never downloaded" * 100,
    "onnx/model.onnx": b"nor exports in subfolders",
}


class FakeHub(BaseHTTPRequestHandler):
    """The three Hub routes huggingface_hub needs to list a model's files and download one."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        self._answer(body=True)

    def do_HEAD(self):  # noqa: N802
        self._answer(body=False)

    def _answer(self, body: bool):
        path = self.path.split("?")[0]
        if path.startswith(f"/api/models/{REPO}"):
            payload = json.dumps({"id": REPO, "modelId": REPO, "sha": COMMIT, "private": False,
                                  "siblings": [{"rfilename": name, "size": len(data)}
                                               for name, data in FILES.items()]}).encode()
            return self._send(200, payload, {"Content-Type": "application/json"}, body)
        prefix = f"/{REPO}/resolve/{COMMIT}/"
        if path.startswith(prefix) and path[len(prefix):] in FILES:
            data = FILES[path[len(prefix):]]
            etag = f'"{hashlib.sha256(data).hexdigest()}"'
            return self._send(200, data, {"ETag": etag, "X-Repo-Commit": COMMIT,
                                          "Content-Type": "application/octet-stream"}, body)
        return self._send(404, b"not found", {"X-Error-Code": "EntryNotFound"}, body)

    def _send(self, status: int, payload: bytes, headers: dict[str, str], body: bool):
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(payload))}.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(payload)


@pytest.fixture
def hub():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_hub_model_is_downloaded_with_its_bytes_counted_and_only_what_from_pretrained_reads(hub, tmp_path):
    wanted = {"config.json", "model.safetensors", "tokenizer.json"}
    total = sum(len(FILES[name]) for name in wanted)
    plan = plan_download(REPO, endpoint=hub, cache_dir=tmp_path)
    assert plan.revision == COMMIT and {name for name, _ in plan.files} == wanted and plan.bytes_total == total

    reports: list[tuple[int, int]] = []
    assert download_with_progress(REPO, lambda done, size: reports.append((done, size)), endpoint=hub,
                                  cache_dir=tmp_path) == total
    assert {size for _, size in reports} == {total}
    done = [done for done, _ in reports]
    assert done[0] == 0 and done[-1] == total and done == sorted(done), "bytes done only grow, up to the total"
    boundaries = [sum(len(FILES[name]) for name in ("config.json", "model.safetensors", "tokenizer.json")[:i])
                  for i in range(4)]
    assert sorted(set(done)) == boundaries, "each file's bytes count as huggingface_hub writes them"
    from huggingface_hub import try_to_load_from_cache

    for name in wanted:
        cached = try_to_load_from_cache(REPO, name, cache_dir=tmp_path, revision=COMMIT)
        assert isinstance(cached, str) and Path(cached).read_bytes() == FILES[name], name
    assert try_to_load_from_cache(REPO, "pytorch_model.bin", cache_dir=tmp_path, revision=COMMIT) is None

    assert plan_download(REPO, endpoint=hub, cache_dir=tmp_path).files == (), "all cached: nothing left to fetch"
    assert download_with_progress(REPO, lambda *_: pytest.fail("nothing to report"), endpoint=hub,
                                  cache_dir=tmp_path) == 0


def test_the_byte_counter_counts_bytes_written_not_bytes_received():
    reports: list[tuple[int, int]] = []
    counter = ByteCounter(100, lambda done, total: reports.append((done, total)))
    bar_class = counter.bar_class()
    assert callable(getattr(bar_class, "update_transfer", None)), "so huggingface_hub makes one bar, not two"
    with bar_class(total=70, initial=20, unit="B", desc="model.safetensors", bar_format="x", position=1) as bar:
        bar.update(50)
        bar.update_transfer(45)  # compressed network bytes: not what lands on disk
        bar.set_postfix_str("3 MB/s")
        bar.update(-10)  # a retry whose resumed bytes were thrown away
        bar.update(40)
        bar.close()
    assert reports == [(20, 100), (70, 100), (60, 100), (100, 100)]


def test_which_ids_name_hub_models(tmp_path):
    assert needs_hub("intfloat/multilingual-e5-small") and needs_hub("BAAI/bge-reranker-v2-m3")
    for local in (LATE_INTERACTION_ID, FALLBACK_DENSE_ID, str(tmp_path), "./models/x", "a/b/c"):
        assert not needs_hub(local), local


def test_the_bundled_models_warm_in_the_background_and_the_status_follows():
    gate = threading.Event()
    seen: list[str] = []

    def download(model_id: str, progress):
        progress(0, 2_000_000)
        progress(1_500_000, 2_000_000)
        seen.append(model_id)
        gate.wait(timeout=120)  # held: the test looks at the status in the middle of the download
        return 2_000_000

    warmup = Warmup(FALLBACK_DENSE_ID, LATE_INTERACTION_ID, device="cpu", download=download, backend="torch")
    assert [model.state for model in warmup.status().models] == ["waiting", "waiting"], "nothing before start()"
    warmup.start()
    assert warmup.start() is warmup
    assert not warmup.wait("dense", timeout=0.2)
    dense = warmup.status().model("dense")
    assert (dense.state, dense.bytes_done, dense.bytes_total) == ("downloading", 1_500_000, 2_000_000)
    assert warmup.status().model("reranker").state == "waiting" and not warmup.status().done
    gate.set()
    assert warmup.wait(timeout=600), "the warm-up did not finish"
    status = warmup.status()
    assert status.done and seen == [FALLBACK_DENSE_ID, LATE_INTERACTION_ID]
    assert [(model.state, model.label, model.fallback_reason) for model in status.models] == [
        ("ready", FALLBACK_LABEL, None), ("ready", LATE_INTERACTION_LABEL, None)]
    assert warmup.serves("dense", FALLBACK_DENSE_ID) and warmup.serves("reranker", LATE_INTERACTION_ID)
    assert not warmup.serves("dense", "intfloat/multilingual-e5-small")


def test_offline_the_defaults_warm_as_the_fallbacks_a_build_would_use_and_say_why():
    from search.models import DEFAULT_DENSE_MODEL, RERANKER_V2_M3, hub_reachable

    if hub_reachable():
        pytest.skip("the Hub answers here: this test is about a machine without it")
    warmup = Warmup(DEFAULT_DENSE_MODEL, "auto", device="cpu", backend="torch").start()
    assert warmup.wait(timeout=600)
    dense, reranker = warmup.status().models
    assert reranker.model_id == RERANKER_V2_M3 and warmup.serves("reranker", "auto"), "auto warms v2-m3"
    assert (dense.state, dense.label) == ("ready", FALLBACK_LABEL) and "could not be loaded" in dense.fallback_reason
    assert (reranker.state, reranker.label) == ("ready", LATE_INTERACTION_LABEL) and reranker.fallback_reason


def test_a_load_that_fails_is_reported_and_the_other_model_still_loads():
    warmup = Warmup("./no/such/folder", LATE_INTERACTION_ID, device="cpu", backend="torch").start()
    assert warmup.wait(timeout=600)
    dense, reranker = warmup.status().models
    assert dense.state == "ready" and dense.fallback_reason, "the dense loader falls back to the bundled model"
    assert reranker.state == "ready"
    broken = Warmup(FALLBACK_DENSE_ID, LATE_INTERACTION_ID, device="cpu", backend="no-such-backend").start()
    assert broken.wait(timeout=600)
    assert [model.state for model in broken.status().models] == ["failed", "failed"]
    assert "no-such-backend" in broken.status().model("dense").error


def test_a_build_with_the_default_models_waits_for_the_warm_up_and_shows_its_line(tmp_path, monkeypatch):
    from dataclasses import replace

    import gradio as gr

    import app
    from tests.app_page import make_page
    from ui.regions.corpus import CorpusCallbacks
    from ui.regions.session import BuildIdle

    monkeypatch.setenv("SEARCH_CACHE_DIR", str(tmp_path / "cache"))
    page, ctx, _ = make_page()
    assert app.model_warmup() is ctx.warmup, "one warm-up per process"
    gate = threading.Event()

    def download(model_id, progress):
        progress(3_000_000, 9_000_000)
        gate.wait(timeout=120)

    warmup = Warmup(FALLBACK_DENSE_ID, LATE_INTERACTION_ID, device="auto", download=download).start()
    callbacks = CorpusCallbacks(page, replace(ctx, warmup=warmup))
    corpus = tmp_path / "notes.txt"
    corpus.write_text("Lighthouses guide ships along rocky coasts at night.", encoding="utf-8")
    build = callbacks.build_corpus(BuildIdle(), gr.Request(session_hash="warm"), files=[str(corpus)],
                                   sample="(none: use my files)", window=200, overlap=40, dense_model=FALLBACK_DENSE_ID,
                                   reranker_model=LATE_INTERACTION_ID, backend="auto")
    panel = callbacks.page.corpus.progress
    waiting = []
    for update in build:
        html = str(update.get(panel, ""))
        if "build-models" in html:
            waiting.append(html)
            if len(waiting) == 3:
                gate.set()
        if callbacks.page.session.index in update:
            index = update[callbacks.page.session.index]
            break
    assert len(waiting) >= 3 and all("Loading models:" in html and "3.0 MB of 9.0 MB" in html
                                     for html in waiting[:3]), waiting[:1]
    assert all('data-step="embeddings" data-state="waiting"' in html for html in waiting[:3]), \
        "nothing was embedded while the dense model was still loading"
    assert len(index) == 1 and warmup.status().done
