"""The Gradio app: upload a corpus, build its indexes, and compare BM25, dense, hybrid and reranked results.

Only the UI lives here; retrieval is `search.pipeline`, rendering is `ui.render`. Each browser session
keeps its own index in `gr.State`; loaded models are shared read-only through the engine's caches.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import gradio as gr

from search.export import report_to_dict, result_to_dict
from search.models import AUTO_RERANKER, DENSE_ENV, RERANKER_BASE, RERANKER_ENV, RERANKER_V2_M3
from search.pipeline import Index, Settings, build, default_cache_dir
from search.reading import ReadLimits, read_paths
from search.rerank import LATE_INTERACTION_ID
from search.types import FIRST_STAGES, SearchResult
from ui import render, texts

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
SAMPLES = {
    "polyglot-facts: 80 documents, 10 languages": ROOT / "corpora" / "polyglot-facts" / "corpus.jsonl",
    "mixed-formats: 6 files, 6 languages": ROOT / "corpora" / "mixed-formats",
}
NO_SAMPLE = "(none: use my files)"
EXAMPLE_QUERIES = [
    "When did the Luna 2 probe reach the Moon?",
    "Wie viele Bienen leben in einem Volk?",
    "茶是什么时候传入日本的？",
    "चंद्रयान-3 चंद्रमा पर कब उतरा?",
    "Какой самый высокий вулкан в Европе?",
    "ما هي الشعاب المرجانية؟",
    "why do some reefs turn white",
]
UPLOAD_ENV = "SEARCH_MAX_UPLOAD_MB"
SESSION_TTL_S = 6 * 3600  # an idle session's index is dropped after this


def max_upload_mb() -> int:
    """The upload limit in MB, from $SEARCH_MAX_UPLOAD_MB (default 50)."""
    try:
        return max(1, int(os.environ.get(UPLOAD_ENV, "50")))
    except ValueError:
        logger.warning("%s=%r is not a whole number of MB; using 50", UPLOAD_ENV, os.environ.get(UPLOAD_ENV))
        return 50


try:  # ZeroGPU hardware: GPU work must run inside functions decorated with spaces.GPU.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn


# -- callbacks: engine in, components out ----------------------------------------------------------

def build_corpus(files: Sequence[str] | None, sample: str, window: int, overlap: int, dense_model: str,
                 reranker_model: str, request: gr.Request) -> Iterator[tuple]:
    """Read, split, detect languages and index the uploaded files or a sample; streams step progress."""
    paths, names, cache_dir = _corpus_inputs(files, sample, request)
    settings = _settings(window, overlap, dense_model, reranker_model)
    limit = max_upload_mb() * 1_000_000
    read = read_paths(paths, names=names, limits=ReadLimits(max_total_bytes=limit, max_file_bytes=limit))
    progress: dict[str, tuple[int, int]] = {}
    events: queue.Queue[tuple[str, int, int]] = queue.Queue()
    outcome: dict[str, object] = {}

    def work() -> None:
        try:
            index = _build_index(read, settings, lambda *event: events.put(event), cache_dir)
            outcome["index"] = index
            outcome["reranker"] = index.reranker()  # load now: a reranker problem shows before any search
        except Exception as error:  # noqa: BLE001 - reported to the user below, never as a trace
            outcome["error"] = error

    started = time.perf_counter()
    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(timeout=0.25)
        while not events.empty():
            step, done, total = events.get()
            progress[step] = (done, total)
        yield (gr.skip(), render.render_build_progress(progress, time.perf_counter() - started),
               gr.skip(), gr.skip(), gr.skip())
    error = outcome.get("error")
    if isinstance(error, ValueError):
        raise gr.Error(str(error), print_exception=False)
    if error is not None:
        logger.error("building the index failed", exc_info=error)
        raise gr.Error(f"Building the index failed unexpectedly ({type(error).__name__}); the details are in "
                       "the server log. Try other files or settings.", print_exception=False)
    index: Index = outcome["index"]  # type: ignore[assignment]
    skipped = index.report.skipped
    if skipped:
        gr.Warning(f"{len(skipped)} file(s) or line(s) skipped, e.g. {skipped[0]}. The rest was indexed; "
                   "see the list under the summary.")
    loaded = outcome["reranker"]
    summary = render.render_build_summary(index.report) + render.render_reranker(loaded)
    build_json = {**report_to_dict(index.report), "reranker": loaded.reranker.label,
                  "reranker_fallback_reason": loaded.fallback_reason}
    yield index, "", summary, render.languages_frame(index.report), build_json


@gpu
def _build_index(read, settings: Settings, progress, cache_dir: Path) -> Index:
    return build(read, settings, progress=progress, cache_dir=cache_dir)


def first_stages(index: Index | None, query: str, k: int, rerank_depth: int, candidates_from: str,
                 score_view: str, collapse: bool) -> tuple:
    """BM25, dense and hybrid for the query; the Reranked column shows a placeholder until `rerank_stage`."""
    index = _require(index)
    try:
        result = index.retrieve(query, k=int(k), rerank_depth=int(rerank_depth), candidates_from=candidates_from)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None
    columns = [render.render_column(result.stages[name], result, k=int(k), score_view=score_view,
                                    collapse_documents=collapse, corpus_languages=index.languages)
               for name in FIRST_STAGES]
    if result.rerank_depth:
        pending = render.render_rerank_pending(result, index.reranker().reranker.label)
    else:
        pending = render.render_notice("Reranked", "Reranking is off (rerank depth 0).")
    return result, *columns, pending, render.render_summary(result, int(k))


def rerank_stage(index: Index | None, result: SearchResult | None, k: int, score_view: str,
                 collapse: bool) -> tuple:
    """Add the reranker's column to the first stages already on screen."""
    if index is None or result is None or not result.rerank_depth:
        return gr.skip(), gr.skip(), gr.skip()
    result = _rerank(index, result)
    column = render.render_column(result.stages["rerank"], result, k=int(k), score_view=score_view,
                                  collapse_documents=collapse, corpus_languages=index.languages)
    return result, column, render.render_summary(result, int(k))


@gpu
def _rerank(index: Index, result: SearchResult) -> SearchResult:
    return index.rerank(result)


def rerender(index: Index | None, result: SearchResult | None, k: int, score_view: str, collapse: bool) -> tuple:
    """Draw the last result again with another k, score view or document collapsing (no new search)."""
    if index is None or result is None:
        return (gr.skip(),) * 5
    columns = []
    for name in (*FIRST_STAGES, "rerank"):
        stage = result.stages.get(name)
        if stage is None:
            columns.append(gr.skip())
        else:
            columns.append(render.render_column(stage, result, k=int(k), score_view=score_view,
                                                collapse_documents=collapse, corpus_languages=index.languages))
    return *columns, render.render_summary(result, int(k))


def search_api(index: Index | None, query: str, k: int, rerank_depth: int, candidates_from: str) -> dict:
    """Every stage for a query as JSON (the `search` API endpoint)."""
    index = _require(index)
    try:
        result = index.retrieve(query, k=int(k), rerank_depth=int(rerank_depth), candidates_from=candidates_from)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None
    if result.rerank_depth:
        result = _rerank(index, result)
    return result_to_dict(result, int(k))


def forget_session(request: gr.Request) -> None:
    """Delete the indexes a closed session built from its uploads."""
    shutil.rmtree(_session_cache(request), ignore_errors=True)


# -- helpers -------------------------------------------------------------------------------------

def _corpus_inputs(files: Sequence[str] | None, sample: str, request: gr.Request):
    if files:
        paths = [Path(file) for file in files]
        total = sum(path.stat().st_size for path in paths if path.exists())
        if total > max_upload_mb() * 1_000_000:
            raise gr.Error(f"The upload is {total / 1e6:.1f} MB; the limit is {max_upload_mb()} MB "
                           f"(set by {UPLOAD_ENV}). Upload fewer or smaller files.", print_exception=False)
        # Uploads keep their own name as the last path part; messages should name that, not a temp path.
        return paths, [path.name for path in paths], _session_cache(request)
    if sample in SAMPLES:
        return [SAMPLES[sample]], [SAMPLES[sample].name], default_cache_dir() / "samples"
    raise gr.Error("Upload one or more files, or choose a sample corpus, then press Build index.",
                   print_exception=False)


def _session_cache(request: gr.Request) -> Path:
    # Per-session, so one user's "reused the saved index" never reveals what another user uploaded.
    session = "".join(ch for ch in str(request.session_hash or "anonymous") if ch.isalnum())[:64]
    return default_cache_dir() / "sessions" / session


def _settings(window: int, overlap: int, dense_model: str, reranker_model: str) -> Settings:
    try:
        return Settings.from_env(window=int(window), overlap=int(overlap),
                                 dense_model=(dense_model or "").strip() or None,
                                 reranker_model=(reranker_model or "").strip() or None)
    except (TypeError, ValueError) as error:
        raise gr.Error(f"Invalid settings: {error}", print_exception=False) from None


def _require(index: Index | None) -> Index:
    if index is None:
        raise gr.Error(texts.NO_INDEX, print_exception=False)
    return index


# -- layout --------------------------------------------------------------------------------------

def build_demo() -> gr.Blocks:
    """The whole app as a `gr.Blocks`; launch it with `build_demo().launch(css=render.CSS)`."""
    defaults = Settings.from_env()
    with gr.Blocks(title="Multilingual retrieve-and-rerank explorer") as demo:
        index_state = gr.State(None, time_to_live=SESSION_TTL_S)
        result_state = gr.State(None, time_to_live=SESSION_TTL_S)
        gr.Markdown(texts.INTRO)

        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                files = gr.File(label=f"Upload files (up to {max_upload_mb()} MB in all)", file_count="multiple",
                                type="filepath", elem_id="corpus-files")
                sample = gr.Dropdown([NO_SAMPLE, *SAMPLES], value=next(iter(SAMPLES)), label="…or a sample corpus",
                                     info="used when no file is uploaded", elem_id="sample-corpus")
                with gr.Accordion("Passages and models", open=False):
                    window = gr.Slider(32, 1024, value=defaults.window, step=8, label="Passage window (words)",
                                       info="one character counts as a word in Chinese, Japanese, Thai…")
                    overlap = gr.Slider(0, 256, value=defaults.overlap, step=4, label="Overlap (words)")
                    dense_model = gr.Textbox(defaults.dense_model, label="Dense model",
                                             info=f"Hub id or local folder; env {DENSE_ENV}")
                    reranker_model = gr.Dropdown([AUTO_RERANKER, RERANKER_V2_M3, RERANKER_BASE, LATE_INTERACTION_ID],
                                                 value=defaults.reranker_model, allow_custom_value=True,
                                                 label="Reranker", info=f"Hub id or local folder; env {RERANKER_ENV}")
                    gr.Markdown(texts.MODELS_HELP)
                gr.Markdown(texts.CORPUS_HELP)
                build_button = gr.Button("Build index", variant="primary", elem_id="build-button")
            with gr.Column(scale=3):
                build_progress = gr.HTML(elem_id="build-progress")
                build_summary = gr.HTML(elem_id="build-summary")
                languages_plot = gr.BarPlot(x="language", y="passages", title="Passages per detected language",
                                            tooltip=["name", "passages"], height=220, y_lim=[0, None],
                                            sort="-y", elem_id="languages-plot")
                build_json = gr.JSON(visible=False)

        with gr.Row(equal_height=True):
            query = gr.Textbox(label="Query", placeholder="Ask in any language…", scale=5, elem_id="query")
            search_button = gr.Button("Search", variant="primary", scale=1, elem_id="search-button")
        gr.Examples([[text] for text in EXAMPLE_QUERIES], inputs=[query], label="Example queries (polyglot-facts)")
        with gr.Row():
            k = gr.Slider(1, 50, value=10, step=1, label="k (results per column)")
            rerank_depth = gr.Slider(0, 100, value=20, step=1, label="Rerank depth",
                                     info="first-stage candidates the reranker rescores; 0 = off")
            candidates_from = gr.Radio(list(FIRST_STAGES), value="hybrid", label="Reranker candidates from")
            score_view = gr.Radio([("raw logit", "raw"), ("sigmoid 0–1", "sigmoid")], value="raw",
                                  label="Reranker score")
            collapse = gr.Checkbox(False, label="Best passage per document")
        gr.Markdown(texts.SEARCH_HELP)
        with gr.Row(elem_classes="rr-columns", equal_height=False):
            columns = [gr.HTML(elem_id=f"column-{name}", min_height=120) for name in (*FIRST_STAGES, "rerank")]
        summary = gr.HTML(elem_id="search-summary")

        # The API's search endpoint: every stage as JSON in one call (hidden from the page).
        api_search_button = gr.Button(visible=False)
        api_result = gr.JSON(visible=False)

        build_button.click(
            build_corpus, [files, sample, window, overlap, dense_model, reranker_model],
            [index_state, build_progress, build_summary, languages_plot, build_json],
            api_name="build_index", concurrency_limit=1, concurrency_id="build", show_progress="minimal",
        )
        gr.on(
            [search_button.click, query.submit], first_stages,
            [index_state, query, k, rerank_depth, candidates_from, score_view, collapse],
            [result_state, *columns, summary], api_visibility="undocumented", concurrency_limit=4,
            show_progress="minimal",
        ).success(
            rerank_stage, [index_state, result_state, k, score_view, collapse], [result_state, columns[3], summary],
            api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank", show_progress="hidden",
        )
        gr.on(
            [k.release, score_view.change, collapse.change], rerender,
            [index_state, result_state, k, score_view, collapse], [*columns, summary],
            api_visibility="undocumented", show_progress="hidden",
        )
        api_search_button.click(
            search_api, [index_state, query, k, rerank_depth, candidates_from], [api_result], api_name="search",
            concurrency_limit=1, concurrency_id="rerank",
        )
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def launch_kwargs() -> dict[str, object]:
    """Options every launch of the app uses: its stylesheet and the upload limit."""
    return {"css": render.CSS, "max_file_size": f"{max_upload_mb()}mb"}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build_demo().launch(**launch_kwargs())
