"""The app's page for tests: the same regions `app.build_demo` assembles, in a `gr.Blocks` that is never launched
(`make_page`, for tests that call the regions' callbacks directly), or served on a free local port for a
browser or a client (`served_app`, `served`), and a browser page that collects the page's script errors
(`open_page`). Every app or page a browser test starts comes from here."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import gradio as gr

import app
from search import config
from search.warmup import Warmup
from ui.regions.form import PageForm
from ui.regions.layout import assemble
from ui.regions.page import AppContext, Page


def make_page(**settings) -> tuple[Page, AppContext, gr.Blocks]:
    """(page, context, blocks) with the configuration read now, `settings` (setting name -> value) in place
    of its own."""
    ctx = AppContext(replace(config.current(), **settings), app.model_warmup(), PageForm())
    with gr.Blocks() as demo:
        page = assemble(demo, ctx)
    return page, ctx, demo


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def served(demo: gr.Blocks, **launch: object) -> Iterator[str]:
    """`demo` launched in this process (Gradio serves it from its own threads) on a free port of 127.0.0.1,
    with `launch`'s options: yields its URL, and closes it after."""
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@contextmanager
def served_app(settings: config.Config | None = None, *, warmup: Warmup | None = None,
               **changes: object) -> Iterator[str]:
    """The whole app (`app.build_demo`) served as `served` does, with `settings` (default: the configuration
    read now) and `changes` (setting name -> value) in their place, and with `warmup` instead of the
    process-wide warm-up when given: yields its URL."""
    settings = replace(settings or config.current(), **changes)
    with served(app.build_demo(settings, warmup), **app.launch_kwargs(settings)) as url:
        yield url


def open_page(browser, url: str | None = None, *, width: int | None = 1600, height: int = 1100,
              ready: str | None = "#build-button"):
    """A new page of `browser` (a Playwright Browser, or a BrowserContext with its own viewport: width None)
    of `width` x `height`, whose script errors are collected in `page.errors`; with `url`, opened there and
    waited for the `ready` selector (the app's Build button by default; None waits for nothing more)."""
    page = browser.new_page(**({"viewport": {"width": width, "height": height}} if width is not None else {}))
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    if url is not None:
        page.goto(url)
        if ready is not None:
            page.wait_for_selector(ready)
    return page
