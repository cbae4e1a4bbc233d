"""Shared fixtures: the app served on a free local port, with the offline models."""

from __future__ import annotations

import os
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest

from search import config
from search.models import FALLBACK_DENSE_ID

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")


class _EnvironmentPatch:
    """pytest's monkeypatch, except that a change to the environment is read as a process start reads it:
    the configuration (`search.config`) is read again on its next use, and once more after the test."""

    def __init__(self, patch: pytest.MonkeyPatch) -> None:
        self._patch = patch

    def setenv(self, *args, **kwargs) -> None:
        self._patch.setenv(*args, **kwargs)
        config.reset()

    def delenv(self, *args, **kwargs) -> None:
        self._patch.delenv(*args, **kwargs)
        config.reset()

    def __getattr__(self, name: str):
        return getattr(self._patch, name)


@pytest.fixture
def monkeypatch(monkeypatch):
    """See `_EnvironmentPatch`: settings a test puts in the environment take effect, and are undone."""
    yield _EnvironmentPatch(monkeypatch)
    monkeypatch.undo()
    config.reset()


# The bundled e5's exports, which `auto` makes on first use (about a minute: int8 by NNCF), are kept between
# test runs here: their cache entries are named by the model file and the recipes, so any run may reuse them.
BUNDLED_E5_EXPORTS = Path.home() / ".cache" / "multilingual-rerank-explorer" / "test-onnx" / FALLBACK_DENSE_ID


@pytest.fixture(scope="session", autouse=True)
def onnx_cache(tmp_path_factory):
    """ONNX exports made by the tests go to a temporary folder, never the user's cache (the bundled e5's
    to `BUNDLED_E5_EXPORTS`, linked from it)."""
    saved = os.environ.get("SEARCH_ONNX_CACHE")
    folder = tmp_path_factory.mktemp("onnx-cache")
    BUNDLED_E5_EXPORTS.mkdir(parents=True, exist_ok=True)
    (folder / FALLBACK_DENSE_ID).symlink_to(BUNDLED_E5_EXPORTS, target_is_directory=True)
    os.environ["SEARCH_ONNX_CACHE"] = str(folder)
    config.reset()
    yield folder
    if saved is None:
        os.environ.pop("SEARCH_ONNX_CACHE", None)
    else:
        os.environ["SEARCH_ONNX_CACHE"] = saved
    config.reset()


@pytest.fixture(scope="session")
def app_url(tmp_path_factory):
    """Launch `app.build_demo()` in this process with the offline models; yield its URL."""
    saved = {name: os.environ.get(name) for name in ("SEARCH_DENSE_MODEL", "SEARCH_RERANKER_MODEL",
                                                     "SEARCH_CACHE_DIR", "SEARCH_MAX_UPLOAD_MB")}
    os.environ.update({"SEARCH_DENSE_MODEL": FALLBACK_DENSE_ID, "SEARCH_RERANKER_MODEL": "late-interaction",
                       "SEARCH_CACHE_DIR": str(tmp_path_factory.mktemp("app-cache")), "SEARCH_MAX_UPLOAD_MB": "5"})
    config.reset()
    from tests.app_page import served_app

    with served_app() as url:
        yield url
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    config.reset()


@pytest.fixture
def another_app(app_url):
    """Serves further apps for one test: ``another_app(setting=value, ...)`` starts the app with the test app's
    configuration (offline models, its cache folder) and those changes on a port of its own, and returns its
    URL; each is closed after the test."""
    from tests.app_page import served_app

    with ExitStack() as apps:
        yield lambda **changes: apps.enter_context(served_app(**changes))


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium driven by Playwright; skips when chromium is not installed."""
    if not CHROMIUM.exists():
        pytest.skip("chromium not found; install it with: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"],
        )
        yield browser
        browser.close()
