"""The Gradio app: upload a corpus, build its indexes, and compare BM25, dense, hybrid and reranked results.

Only the app's start lives here: each region of the page (corpus, search and columns, explain, judgments,
share and bundle, evaluate) is a module of `ui.regions` with its layout, its wiring and its callbacks,
assembled by `ui.regions.layout`; retrieval is the engine's (`search`), rendering is `ui`'s. Each browser
session keeps its own index in `gr.State`; loaded models are shared read-only through the engine's caches,
and `build_demo` starts warming the default models in the background (`search.warmup`), once per process.
"""

from __future__ import annotations

import logging
import sys

import gradio as gr

from search import config
from search.warmup import Warmup, start_warmup
from ui import stylesheet
from ui.regions.form import PageForm
from ui.regions.layout import assemble
from ui.regions.page import AppContext

logger = logging.getLogger(__name__)


def build_demo(settings: config.Config | None = None, warmup: Warmup | None = None) -> gr.Blocks:
    """The whole app as a `gr.Blocks` (with `settings`, default: the configuration read at start-up, and
    `warmup`, default: the process-wide `model_warmup`); launch it with `build_demo().launch(**launch_kwargs())`."""
    settings = settings or config.current()
    ctx = AppContext(settings, warmup if warmup is not None else model_warmup(settings), PageForm())
    with gr.Blocks(title="Multilingual retrieve-and-rerank explorer") as demo:
        assemble(demo, ctx)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def model_warmup(settings: config.Config | None = None) -> Warmup:
    """The process-wide warm-up of the default dense model and reranker (started by the first call, with
    `settings` or the configuration's; later calls return the same one). Tests can `wait()` on it."""
    settings = settings or config.current()
    return start_warmup(settings.dense_model, settings.rerankers[0][0], device=settings.device,
                        backend=settings.backend)


def launch_kwargs(settings: config.Config | None = None) -> dict[str, object]:
    """Options every launch of the app uses: its stylesheet and the upload limit (per file, in bytes)."""
    settings = settings or config.current()
    # In bytes: Gradio reads "50mb" as 50 MiB, while the app counts MB of 1,000,000 bytes.
    return {"css": stylesheet(), "max_file_size": settings.max_upload_mb * 1_000_000}


def main() -> None:
    """Serve the app; with SEARCH_SERVE_TEI=1 also TEI's routes under /tei. A bad setting stops here, named.

    The routes are mounted after `launch()`, which creates the server app they are added to.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = config.current()
    except config.ConfigError as error:
        sys.exit(f"error: {error}")
    demo = build_demo(settings)
    if not settings.serve_tei:
        demo.launch(**launch_kwargs(settings))
        return
    from search.serve import mount_tei_routes

    server_app, _, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs(settings))
    mount_tei_routes(server_app)
    logger.info("TEI routes served under /tei (SEARCH_SERVE_TEI)")
    demo.block_thread()


if __name__ == "__main__":
    main()
