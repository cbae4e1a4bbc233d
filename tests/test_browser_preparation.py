"""The model line in a real browser while the app prepares faster forms in the background (issue 19 §2):
the torch forms stand in at once, the line says which form is being prepared, its step and the time left,
and then that it is prepared. Tiny local models on the onnx backend (exported in seconds); the preparation
is held at two real points (before it starts, and before its export begins) while the test looks; no timing
assertion anywhere.

Skips when chromium is absent (install it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import re
import shutil
from contextlib import ExitStack
from dataclasses import replace

import pytest

from search import config
from search.backends.runtime import onnx_export
from search.preparation import preparer
from search.warmup import Warmup
from tests.app_page import open_page, served_app
from tests.test_torch_reranker import CORPUS
from tests.tiny_models import build_tiny_xlmr_cross_encoder

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

WAIT_SECONDS = 600  # bounds on waiting for tiny preparations (never a timing assertion)


@pytest.fixture
def tiny_models(tmp_path) -> tuple[str, str]:
    """A tiny cross-encoder as the reranker, and a copy of it as the dense model (its XLM-R body encodes),
    in folders named for their role so the line can tell them apart."""
    reranker = build_tiny_xlmr_cross_encoder(tmp_path / "tiny-reranker", CORPUS)
    dense = tmp_path / "tiny-dense"
    shutil.copytree(reranker, dense)
    return str(dense), str(reranker)


def test_the_model_line_shows_the_preparing_and_then_the_prepared_forms(browser, tiny_models, tmp_path,
                                                                         monkeypatch):
    dense, reranker = tiny_models
    monkeypatch.setenv(onnx_export.ONNX_CACHE_ENV, str(tmp_path / "onnx-cache"))
    assert preparer().wait(timeout=WAIT_SECONDS), "an earlier test's preparation is still running"
    settings = replace(config.current(), dense_model=dense, rerankers=((reranker, ""),), backend="onnx",
                       device="cpu")
    line = ".model-status"
    with ExitStack() as cleanup:  # the page, then the app (one of its own: the process-wide warm-up is the others')
        with preparer().held():
            warmup = Warmup(dense, reranker, device="cpu", backend="onnx", download=lambda *_: 0).start()
            assert warmup.wait(timeout=WAIT_SECONDS), "the torch forms stand in without waiting for a preparation"
            url = cleanup.enter_context(served_app(settings, warmup=warmup))
            page = open_page(browser, url, width=1400, height=900, ready=None)
            cleanup.callback(page.close)
            status = page.locator(f"#model-status {line}")
            expect(status).to_have_attribute("data-state", "preparing", timeout=60_000)
            expect(status).to_have_text("Models ready, faster forms being prepared: "
                                        "onnx for tiny-dense: waiting for its turn · torch meanwhile · "
                                        "onnx for tiny-reranker: waiting for its turn · torch meanwhile")
            # Held again, at the export: the dense model's preparation has started and planned its cost.
            onnx_export._export_lock.acquire()
        try:
            dense_item = status.locator("span.model-load[data-role='dense']")
            expect(dense_item).to_have_attribute("data-preparation", "preparing", timeout=60_000)
            expect(dense_item).to_have_text(re.compile(
                r"onnx for tiny-dense: preparing, (about \d+ s left|taking longer than the \d+ s expected)"
                r" · torch meanwhile"))
            assert "expected about" in dense_item.get_attribute("title"), "the estimate's basis is one hover away"
            expect(status.locator("span.model-load[data-role='reranker']")).to_have_attribute(
                "data-preparation", "waiting")
        finally:
            onnx_export._export_lock.release()
        expect(status).to_have_attribute("data-state", "ready", timeout=WAIT_SECONDS * 1000)
        expect(status).to_have_text(re.compile(r"Models ready: tiny-dense … done, onnx prepared in [^·]+ · "
                                               r"tiny-reranker … done, onnx prepared in .+"))
        assert [item.get_attribute("data-preparation") for item in status.locator("span.model-load").all()] == \
            ["ready", "ready"]
        assert not page.errors, page.errors
