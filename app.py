"""The Gradio app: upload a corpus, build its indexes, and compare BM25, dense, hybrid and reranked results.

Only the UI lives here; retrieval is `search.pipeline`, comparing stages is `search.compare`, rendering is
`ui/`. The page is built region by region (corpus panel, search controls and columns, judging panel,
Evaluate tab), each returning its components as a NamedTuple; `Callbacks` turns engine results into
updates keyed by component. Each browser session keeps its own index in `gr.State`; loaded models are
shared read-only through the engine's caches, and `build_demo` starts warming the default models in the
background (`search.warmup`), once per process.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from contextlib import suppress
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import NamedTuple

import anyio
import gradio as gr

from search.backends.tei import TEI_TOKEN_ENV, TEI_URL_ENV, TOKEN_ENV, endpoint_urls, host_of, internal_host
from search.evaluation import depth_tradeoff, estimate_evaluation, evaluate
from search.explain import explain, explain_cost
from search.export import report_to_dict, result_to_dict, results_to_csv
from search.inference import RerankCancelled
from search.judgments import Judgments, load_judgments, match_judgments
from search.loading import BACKEND_ENV, BACKENDS, resolve_backend
from search.models import (
    AUTO_RERANKER,
    DENSE_ENV,
    KNOWN_MODELS,
    LATE_INTERACTION_ID,
    LATE_INTERACTION_MINILM_ID,
    RERANKER_BASE,
    RERANKER_ENV,
    RERANKER_V2_M3,
)
from search.pipeline import (
    BuildCancelled,
    Index,
    Settings,
    build,
    default_cache_dir,
    max_passages_from_env,
)
from search.reading import ReadLimits, read_paths
from search.score_cache import CachedReranker
from search.types import ALL_STAGES, COMPARE_STAGE, FIRST_STAGES, RERANK_STAGES, STAGES, Hit, SearchResult
from search.warmup import Role, Warmup, start_warmup
from ui import build_summary, columns, evaluation_view, explain_view, judging, share, stylesheet, texts
from ui.bundle import BUNDLE_NAME, make_bundle
from ui.highlight import highlight_terms
from ui.labels import STAGE_TITLES
from ui.model_status import render_model_status

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent
SAMPLES = {
    "polyglot-facts: 80 documents, 10 languages": ROOT / "corpora" / "polyglot-facts" / "corpus.jsonl",
    "mixed-formats: 6 files, 6 languages": ROOT / "corpora" / "mixed-formats",
}
NO_SAMPLE = "(none: use my files)"
# A link names a sample by the short name before the colon ("polyglot-facts").
SAMPLE_NAMES = {label.split(":")[0]: label for label in SAMPLES}
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
# A public Space must not let visitors load any Hub id or probe server folders: only the model table's
# models (and the operator's env defaults) are offered unless the operator opts in.
CUSTOM_MODELS_ENV = "SEARCH_ALLOW_CUSTOM_MODELS"
# The model panel's TEI URL field lets visitors point the tei backend at any endpoint; an operator hides it
# with this variable (the app then uses $SEARCH_TEI_URL alone, whatever a request sends).
HIDE_TEI_URL_ENV = "SEARCH_HIDE_TEI_URL"
# Typed TEI URLs must name public addresses unless the operator allows loopback and private ones (a local
# `python -m search serve`, an endpoint on the private network) with this variable.
ALLOW_INTERNAL_TEI_ENV = "SEARCH_ALLOW_INTERNAL_TEI_URL"
NO_COMPARE = "none"  # the "Compare with" choice that turns the second reranker off
SAME_BACKEND = "same as A"  # reranker B's backend choice that follows the Backend field
SESSION_TTL_S = 6 * 3600  # an idle session's index is dropped after this
# Two builds at a time: a small corpus is built beside a long one instead of waiting for it, and a third
# waits in the queue. Each build is bounded by $SEARCH_MAX_PASSAGES and stops when its page goes away.
BUILD_SLOTS = 2
# First stages (BM25, the query embedding, fusion) run at most 4 at a time: from the page (one Gradio
# concurrency group) and, on their own, from API clients. Reranks run one at a time (the engine's
# RERANK_LOCK). An API search waits for its first stages and its rerank in two separate lines
# (`ApiSlots`), never holding a first-stage slot while it waits to rerank, so first-stage-only API
# calls do not queue behind reranks; API_SEARCHES bounds how many API searches are in flight at once.
FIRST_STAGE_SLOTS = 4
API_SEARCHES = 32
BUNDLED_JUDGMENTS = ROOT / "corpora" / "polyglot-facts"
DEPTHS = (10, 20, 50, 100)
DEFAULT_RERANK_DEPTH = 20
STATUS_POLL_SECONDS = 0.5  # how often the model line and a waiting build look at the warm-up
# Gradio only hands out files from the working or the temp directory, so downloads are written under
# the temp dir: one folder per session, replaced on each download and removed with the session.
DOWNLOADS_DIR = Path(tempfile.gettempdir()) / "rerank-explorer-downloads"


MB = 1_000_000  # the upload limit is counted in decimal megabytes, by the app and by Gradio alike


def max_upload_mb() -> int:
    """The upload limit in MB (1 MB = 1,000,000 bytes), from $SEARCH_MAX_UPLOAD_MB (default 50)."""
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


class StopFlag(threading.Event):
    """A session's "cancel the running evaluation" flag. Gradio deep-copies a State's default for each
    session; a fresh flag is that copy (an Event holds a lock, which can't be copied)."""

    def __deepcopy__(self, memo: dict) -> StopFlag:
        return StopFlag()


class BuildIdle(threading.Event):
    """Set while none of a session's builds is running, so *Cancel build* can wait for the cancelled
    build to have stopped before it clears the progress panel (else a last progress update could land
    after the clearing). Fresh, and set, in each session's copy."""

    def __init__(self) -> None:
        super().__init__()
        self.set()

    def __deepcopy__(self, memo: dict) -> BuildIdle:
        return BuildIdle()


class LatestSearch:
    """A session's latest search: its result (the first stages, then with the rerank added) and its turn.

    Each search begins a new turn (`begin`). A rerank works on the latest search and stops as soon as a
    newer one begins (`is_current`), and its result is kept only while its turn is still the latest
    (`finish`), so a rerank that was overtaken leaves nothing stale behind. Thread-safe. Gradio
    deep-copies a State's default for each session; an empty holder is that copy (a lock can't be copied).

    >>> latest = LatestSearch()
    >>> first = latest.begin("first result"); second = latest.begin("second result")
    >>> latest.is_current(first), latest.finish(first, "first, reranked"), latest.result
    (False, False, 'second result')
    """

    def __init__(self, result: SearchResult | None = None) -> None:
        self._lock = threading.Lock()
        self._turn = 0
        self._result = result
        self._index: object | None = None  # the index that search ran on

    def __deepcopy__(self, memo: dict) -> LatestSearch:
        return LatestSearch()

    @property
    def result(self) -> SearchResult | None:
        with self._lock:
            return self._result

    def latest(self) -> tuple[int, SearchResult | None]:
        """The current turn and its result."""
        with self._lock:
            return self._turn, self._result

    def begin(self, result: SearchResult, index: object | None = None) -> int:
        """Make `result` (a search on `index`) the latest search; returns its turn (a running rerank of an
        older one stops)."""
        with self._lock:
            self._turn += 1
            self._result = result
            self._index = index
            return self._turn

    def result_on(self, index: object | None) -> SearchResult | None:
        """The latest result if it was searched on `index` (not on the index a rebuild replaced), else None.

        >>> latest = LatestSearch(); old, new = object(), object(); _ = latest.begin("result", old)
        >>> latest.result_on(old), latest.result_on(new)
        ('result', None)
        """
        with self._lock:
            return self._result if self._index is index else None

    def is_current(self, turn: int) -> bool:
        with self._lock:
            return turn == self._turn

    def finish(self, turn: int, result: SearchResult) -> bool:
        """Keep `result` (the reranked search of `turn`) if `turn` is still the latest; False otherwise."""
        with self._lock:
            if turn != self._turn:
                return False
            self._result = result
            return True


class ApiSlots(NamedTuple):
    """The two lines an API search waits in: its first stages, then (if it reranks) its rerank."""

    first_stages: anyio.CapacityLimiter
    rerank: anyio.CapacityLimiter


# -- regions: the components of each part of the page -----------------------------------------------

class SessionState(NamedTuple):
    """What one browser session keeps between events."""

    index: gr.State
    latest: gr.State  # a LatestSearch: the latest result and its turn
    judged: gr.State
    eval_judgments: gr.State
    report: gr.State
    stop: gr.State
    build_idle: gr.State


class CorpusPanel(NamedTuple):
    """Files or a sample, passage and model settings, Build, and what the build did."""

    files: gr.File
    sample: gr.Dropdown
    window: gr.Slider
    overlap: gr.Slider
    dense_model: gr.Dropdown
    reranker_model: gr.Dropdown
    backend: gr.Dropdown
    build_button: gr.Button
    cancel_button: gr.Button
    progress: gr.HTML
    summary: gr.HTML
    languages_plot: gr.BarPlot
    build_json: gr.JSON
    compare_model: gr.Dropdown  # reranker B ("Compare with"), or none
    compare_backend: gr.Dropdown  # what runs B, or the same as A
    tei_url: gr.Textbox  # the tei backend's endpoint(s); hidden by $SEARCH_HIDE_TEI_URL

    @property
    def model_settings(self) -> list[gr.components.Component]:
        """The fields that pick the models, after the three of the first reranker (build inputs' order)."""
        return [self.compare_model, self.compare_backend, self.tei_url]


class SearchPanel(NamedTuple):
    """The query, the search and view settings, one column per stage and the summary line."""

    query: gr.Textbox
    button: gr.Button
    k: gr.Slider
    rerank_depth: gr.Slider
    rerank_estimate: gr.HTML  # the expected rerank time at that depth, beside the slider
    candidates_from: gr.Radio
    score_view: gr.Radio
    collapse: gr.Checkbox
    columns: tuple[gr.HTML, ...]  # one per stage, in ALL_STAGES order (rerank-b: shown with a reranker B)
    summary: gr.HTML

    @property
    def view(self) -> list[gr.components.Component]:
        """The settings that only change how a result is drawn (k also searches again)."""
        return [self.k, self.score_view, self.collapse]

    def column(self, stage: str) -> gr.HTML:
        return self.columns[ALL_STAGES.index(stage)]


class JudgingPanel(NamedTuple):
    """The session's marks: their metrics, downloads, and loading marks back."""

    metrics: gr.HTML
    download_button: gr.Button
    downloads: gr.File
    upload: gr.File
    load_button: gr.Button


class EvaluatePanel(NamedTuple):
    """The Evaluate tab: judgments in, metrics per stage, per-query changes and the depth trade-off out."""

    bundled_button: gr.Button
    files: gr.File
    upload_button: gr.Button
    stages: gr.CheckboxGroup
    rerank_depth: gr.Slider
    candidates_from: gr.Radio
    max_queries: gr.Number
    run_button: gr.Button
    cancel_button: gr.Button
    judgments_info: gr.HTML
    progress: gr.HTML
    metrics_table: gr.Dataframe
    metrics_chart: gr.BarPlot
    compare_first: gr.Dropdown
    compare_second: gr.Dropdown
    per_query_table: gr.Dataframe
    depth_button: gr.Button
    depth_progress: gr.HTML
    depth_quality: gr.LinePlot
    depth_latency: gr.LinePlot
    eval_json: gr.JSON

    @property
    def run_settings(self) -> list[gr.components.Component]:
        return [self.stages, self.rerank_depth, self.candidates_from]


class ApiOnly(NamedTuple):
    """Hidden components behind the `search` API endpoint (every stage as JSON in one call)."""

    button: gr.Button
    result: gr.JSON


class SharePanel(NamedTuple):
    """The link to this view (kept in the page's URL too), Copy link, and the Download bundle zip."""

    link: gr.Textbox
    copy_button: gr.Button
    notes: gr.HTML  # what the link cannot carry (uploaded files)
    problems: gr.HTML  # what was wrong with the link this page was opened with
    query_string: gr.Textbox  # hidden: the server's "?sample=...", made a full URL in the browser
    restoring: gr.State  # the ViewState read from the page's URL; setting it builds and searches
    bundle_button: gr.Button
    bundle: gr.File


class Page(NamedTuple):
    """Every region of the page."""

    tabs: gr.Tabs
    models: gr.HTML  # the model warm-up's line
    session: SessionState
    corpus: CorpusPanel
    search: SearchPanel
    judging: JudgingPanel
    evaluate: EvaluatePanel
    api: ApiOnly
    share: SharePanel


def build_demo() -> gr.Blocks:
    """The whole app as a `gr.Blocks`; launch it with `build_demo().launch(**launch_kwargs())`."""
    defaults = Settings.from_env()
    warmup = model_warmup(defaults)
    with gr.Blocks(title="Multilingual retrieve-and-rerank explorer") as demo:
        session = _session_state()
        gr.Markdown(texts.INTRO)
        models = gr.HTML(render_model_status(warmup.status()), elem_id="model-status")
        with gr.Tabs() as tabs:
            with gr.Tab("Search", id="search"):
                corpus = _corpus_panel(defaults)
                search = _search_panel()
                explain_panel = _explain_panel()
                share_panel = _share_panel()
                judging_panel = _judging_panel()
            with gr.Tab("Evaluate", id="evaluate"):
                evaluate_panel = _evaluate_panel()
        api = ApiOnly(gr.Button(visible=False), gr.JSON(visible=False))
        page = Page(tabs, models, session, corpus, search, judging_panel, evaluate_panel, api, share_panel)
        callbacks = Callbacks(page, warmup)
        demo.load(callbacks.model_status, None, [models], api_visibility="undocumented", show_progress="hidden",
                  concurrency_limit=None)
        _wire_corpus(page, callbacks)
        _wire_search(page, callbacks)
        _wire_judging(page, callbacks)
        _wire_evaluate(page, callbacks)
        _wire_share(demo, page, callbacks)
        _wire_explain(page, explain_panel, ExplainCallbacks(page, explain_panel))
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def model_warmup(defaults: Settings | None = None) -> Warmup:
    """The process-wide warm-up of the default dense model and reranker (started by the first call, with
    `defaults` or the env's settings; later calls return the same one). Tests can `wait()` on it."""
    defaults = defaults or Settings.from_env()
    return start_warmup(defaults.dense_model, defaults.reranker_model, device=defaults.device,
                        backend=defaults.backend)


def launch_kwargs() -> dict[str, object]:
    """Options every launch of the app uses: its stylesheet and the upload limit (per file, in bytes)."""
    # In bytes: Gradio reads "50mb" as 50 MiB, while the app counts MB of 1,000,000 bytes.
    return {"css": stylesheet(), "max_file_size": max_upload_mb() * MB}


def _session_state() -> SessionState:
    return SessionState(
        index=gr.State(None, time_to_live=SESSION_TTL_S),
        latest=gr.State(LatestSearch(), time_to_live=SESSION_TTL_S),
        judged=gr.State(judging.SessionJudgments(), time_to_live=SESSION_TTL_S),
        eval_judgments=gr.State(None, time_to_live=SESSION_TTL_S),
        report=gr.State(None, time_to_live=SESSION_TTL_S),
        stop=gr.State(StopFlag()),
        build_idle=gr.State(BuildIdle()),
    )


def _corpus_panel(defaults: Settings) -> CorpusPanel:
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            files = gr.File(label=f"Upload files (up to {max_upload_mb()} MB in all; 1 MB = 1,000,000 bytes)",
                            file_count="multiple",
                            type="filepath", elem_id="corpus-files")
            sample = gr.Dropdown([NO_SAMPLE, *SAMPLES], value=next(iter(SAMPLES)), label="…or a sample corpus",
                                 info="used when no file is uploaded", elem_id="sample-corpus")
            with gr.Accordion("Passages and models", open=False):
                window = gr.Slider(32, 1024, value=defaults.window, step=8, label="Passage window (words)",
                                   info="one character counts as a word in Chinese, Japanese, Thai…")
                overlap = gr.Slider(0, 256, value=defaults.overlap, step=4, label="Overlap (words)")
                dense_choices, reranker_choices = model_choices()
                dense_model = gr.Dropdown(dense_choices, value=defaults.dense_model, label="Dense model",
                                          allow_custom_value=custom_models_allowed(),
                                          info=f"default from env {DENSE_ENV}", elem_id="dense-model")
                reranker_model = gr.Dropdown(reranker_choices, value=defaults.reranker_model, label="Reranker",
                                             allow_custom_value=custom_models_allowed(),
                                             info=f"default from env {RERANKER_ENV}", elem_id="reranker-model")
                backend = gr.Dropdown(backend_choices(), value=defaults.backend, label="Backend",
                                      info=f"what runs both models; default from env {BACKEND_ENV} (auto: the best "
                                           "available here)", elem_id="backend")
                tei_url = _tei_url_field()
                with gr.Row():
                    compare_model = gr.Dropdown([NO_COMPARE, *reranker_choices], value=NO_COMPARE,
                                                label="Compare with (reranker B)",
                                                allow_custom_value=custom_models_allowed(),
                                                info="a second reranker for the same candidates: a fifth column",
                                                elem_id="compare-model")
                    compare_backend = gr.Dropdown([SAME_BACKEND, *backend_choices()], value=SAME_BACKEND,
                                                  label="Backend of B", info="e.g. int8 against A's onnx, or tei",
                                                  elem_id="compare-backend")
                gr.Markdown(texts.MODELS_HELP)
            gr.Markdown(texts.CORPUS_HELP + texts.corpus_limits(max_upload_mb(), _shown_max_passages()))
            with gr.Row():
                build_button = gr.Button("Build index", variant="primary", elem_id="build-button", scale=3)
                cancel_button = gr.Button("Cancel build", variant="stop", elem_id="cancel-build", scale=1)
        with gr.Column(scale=3):
            progress = gr.HTML(elem_id="build-progress")
            summary = gr.HTML(elem_id="build-summary")
            languages_plot = gr.BarPlot(x="language", y="passages", title="Passages per detected language",
                                        tooltip=["name", "passages"], height=220, y_lim=[0, None], sort="-y",
                                        elem_id="languages-plot")
            build_json = gr.JSON(visible=False)
    return CorpusPanel(files, sample, window, overlap, dense_model, reranker_model, backend, build_button,
                       cancel_button, progress, summary, languages_plot, build_json, compare_model=compare_model,
                       compare_backend=compare_backend, tei_url=tei_url)


def _search_panel() -> SearchPanel:
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Query", placeholder="Ask in any language…", scale=5, elem_id="query")
        button = gr.Button("Search", variant="primary", scale=1, elem_id="search-button")
    gr.Examples([[text] for text in EXAMPLE_QUERIES], inputs=[query], label="Example queries (polyglot-facts)")
    with gr.Row():
        k = gr.Slider(1, 50, value=10, step=1, label="k (results per column)")
        with gr.Column(min_width=240):
            rerank_depth = gr.Slider(0, 100, value=DEFAULT_RERANK_DEPTH, step=1, label="Rerank depth",
                                     info="first-stage candidates the reranker rescores; 0 = off",
                                     elem_id="rerank-depth")
            rerank_estimate = gr.HTML(columns.render_rerank_estimate(None, DEFAULT_RERANK_DEPTH),
                                      elem_id="rerank-estimate")
        candidates_from = gr.Radio(list(FIRST_STAGES), value="hybrid", label="Reranker candidates from")
        score_view = gr.Radio([("raw logit", "raw"), ("sigmoid 0–1", "sigmoid")], value="raw",
                              label="Reranker score")
        collapse = gr.Checkbox(False, label="Best passage per document")
    gr.Markdown(texts.SEARCH_HELP)
    with gr.Row(elem_classes="rr-columns", equal_height=False):
        stage_columns = tuple(gr.HTML(elem_id=f"column-{name}", min_height=120, js_on_load=columns.JUDGE_JS,
                                      visible=name != COMPARE_STAGE)  # B's column: shown once B is set
                              for name in ALL_STAGES)
    summary = gr.HTML(elem_id="search-summary")
    return SearchPanel(query, button, k, rerank_depth, rerank_estimate, candidates_from, score_view, collapse,
                       stage_columns, summary)


def _share_panel() -> SharePanel:
    with gr.Row(equal_height=True):
        link = gr.Textbox(label="Link to this view", interactive=False, scale=5, elem_id="share-link",
                          info="the sample corpus, query, k, rerank settings, score view and models")
        copy_button = gr.Button("Copy link", scale=1, elem_id="copy-link")
        bundle_button = gr.Button("Download bundle", scale=1, elem_id="bundle-button")
    notes = gr.HTML(elem_id="share-notes")
    problems = gr.HTML(elem_id="share-problems")
    bundle = gr.File(label="Bundle: settings, results, judgments, runs and an offline page", interactive=False,
                     elem_id="bundle")
    query_string = gr.Textbox(visible="hidden", elem_id="share-query")
    return SharePanel(link, copy_button, notes, problems, query_string, gr.State(None), bundle_button, bundle)


def _judging_panel() -> JudgingPanel:
    with gr.Accordion("Judgments: your marks, their metrics, downloads", open=True):
        metrics = gr.HTML(_judged_panel(judging.SessionJudgments()), elem_id="judged-metrics")
        with gr.Row():
            download_button = gr.Button("Download qrels, runs and results", elem_id="download-button")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        with gr.Row():
            upload = gr.File(label="Load judgments to continue (qrels + queries)", file_count="multiple",
                             type="filepath")
            load_button = gr.Button("Load judgments")
    return JudgingPanel(metrics, download_button, downloads, upload, load_button)


def _evaluate_panel() -> EvaluatePanel:
    gr.Markdown(texts.EVALUATE_HELP)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            bundled_button = gr.Button("Use the bundled polyglot-facts judgments", elem_id="bundled-judgments")
            files = gr.File(label="…or upload qrels + queries, or a BEIR folder as .zip", file_count="multiple",
                            type="filepath")
            upload_button = gr.Button("Load uploaded judgments")
            stages = gr.CheckboxGroup(list(ALL_STAGES), value=list(STAGES), label="Stages",
                                      info="rerank-b: the second reranker (Compare with), when one is set")
            with gr.Row():
                rerank_depth = gr.Slider(0, 100, value=20, step=1, label="Rerank depth")
                candidates_from = gr.Radio(list(FIRST_STAGES), value="hybrid", label="Candidates from")
            max_queries = gr.Number(0, label="Max queries (0 = all)", precision=0, minimum=0)
            with gr.Row():
                run_button = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
                cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-eval")
        with gr.Column(scale=3):
            judgments_info = gr.HTML(elem_id="judgments-summary")
            progress = gr.HTML(elem_id="eval-progress")
            metrics_table = gr.Dataframe(label="Metrics per stage", interactive=False, elem_id="metrics-table")
            metrics_chart = gr.BarPlot(x="stage", y="value", color="stage", title="nDCG@10 by stage", y_lim=[0, 1],
                                       height=260, sort=None, elem_id="metrics-chart")
    with gr.Row():
        compare_first = gr.Dropdown(list(ALL_STAGES), value="hybrid", label="Change from")
        compare_second = gr.Dropdown(list(ALL_STAGES), value="rerank", label="to")
    per_query_table = gr.Dataframe(label="Per query (click a row to open it in Search)", interactive=False,
                                   elem_id="per-query-table")
    depth_button = gr.Button("Plot rerank depth against quality and time", elem_id="depth-button")
    depth_progress = gr.HTML()
    with gr.Row():
        depth_quality = gr.LinePlot(x="rerank depth", y="nDCG@10", color="reranker", title="nDCG@10 by rerank depth",
                                    height=240, elem_id="depth-quality")
        depth_latency = gr.LinePlot(x="rerank depth", y="seconds per query", color="reranker", height=240,
                                    title="Time per query by rerank depth (from measured pairs/s)",
                                    elem_id="depth-latency")
    eval_json = gr.JSON(visible=False)
    return EvaluatePanel(bundled_button, files, upload_button, stages, rerank_depth, candidates_from, max_queries,
                         run_button, cancel_button, judgments_info, progress, metrics_table, metrics_chart,
                         compare_first, compare_second, per_query_table, depth_button, depth_progress,
                         depth_quality, depth_latency, eval_json)


# -- wiring: which event runs which callback --------------------------------------------------------

def _wire_corpus(page: Page, callbacks: Callbacks) -> None:
    corpus = page.corpus
    building = corpus.build_button.click(
        callbacks.build_corpus,
        [page.session.build_idle, corpus.files, corpus.sample, corpus.window, corpus.overlap, corpus.dense_model,
         corpus.reranker_model, corpus.backend, *corpus.model_settings],
        [page.session.index, corpus.progress, corpus.summary, corpus.languages_plot, corpus.build_json],
        api_name="build_index", concurrency_limit=BUILD_SLOTS, concurrency_id="build", show_progress="minimal",
    )
    # A new index may have another reranker, measured or not: say what its depth will cost.
    building.success(callbacks.new_index_estimate, [page.session.index, page.search.rerank_depth],
                     [page.search.rerank_estimate], api_visibility="undocumented", show_progress="hidden")
    # A reranker B shows its column (and offers its stage to the Evaluate tab); none hides it.
    building.success(callbacks.compare_column, [page.session.index, page.evaluate.stages],
                     [page.search.column(COMPARE_STAGE), page.evaluate.stages], api_visibility="undocumented",
                     show_progress="hidden")
    # Cancelling closes the build's event (as closing the page does), which stops the build at its next batch;
    # then the progress panel is cleared, once the build has stopped sending progress.
    corpus.cancel_button.click(None, None, None, cancels=[building], api_visibility="undocumented", queue=False).then(
        callbacks.build_cancelled, [page.session.build_idle], [corpus.progress], api_visibility="undocumented",
        show_progress="hidden")


def _wire_search(page: Page, callbacks: Callbacks) -> None:
    search, session = page.search, page.session
    _wire_search_chain(page, callbacks, partial(gr.on, [search.button.click, search.query.submit]),
                       callbacks.first_stages)
    # A larger k needs deeper lists, so k searches again; the view toggles only redraw.
    _wire_search_chain(page, callbacks, partial(gr.on, [search.k.release], trigger_mode="always_last"),
                       callbacks.search_again)
    gr.on(
        [search.score_view.change, search.collapse.change], callbacks.rerender,
        [session.index, session.judged, session.latest, *search.view], [*search.columns, search.summary],
        api_visibility="undocumented", show_progress="hidden",
    )
    gr.on(
        [search.rerank_depth.change, search.candidates_from.change], callbacks.rerank_estimate,
        [session.index, session.latest, search.rerank_depth, search.candidates_from], [search.rerank_estimate],
        api_visibility="undocumented", show_progress="hidden", trigger_mode="always_last", concurrency_limit=None,
    )
    page.api.button.click(
        callbacks.search_api, [session.index, search.query, search.k, search.rerank_depth, search.candidates_from],
        [page.api.result], api_name="search", concurrency_limit=API_SEARCHES, concurrency_id="search_api",
    )


def _wire_search_chain(page: Page, callbacks: Callbacks, listen: Callable[..., gr.events.Dependency],
                       first_stages: Callable[..., dict]) -> None:
    """Wire `first_stages` to the event(s) `listen` stands for, then the reranker once they succeed:
    every trigger of a search gets the same chain, the same queues and the same progress display."""
    search, session = page.search, page.session
    listen(
        first_stages,
        [session.index, session.latest, session.judged, search.query, search.k, search.rerank_depth,
         search.candidates_from, search.score_view, search.collapse],
        [session.latest, *search.columns, search.summary, search.rerank_estimate],
        api_visibility="undocumented", concurrency_limit=FIRST_STAGE_SLOTS, concurrency_id="first_stages",
        show_progress="minimal",
    ).success(
        callbacks.rerank_stage, [session.index, session.judged, session.latest, *search.view],
        [search.column("rerank"), search.summary],
        api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank", show_progress="hidden",
        # A new search while this session's rerank still runs cancels that one (LatestSearch); its own rerank
        # must then run after it, not be dropped as Gradio's default ("once") would.
        trigger_mode="always_last",
    ).then(
        # The rerank measured the speed and cached its pairs: the estimate beside the slider (read now, as it
        # may have moved meanwhile) changes.
        callbacks.rerank_estimate,
        [session.index, session.latest, search.rerank_depth, search.candidates_from], [search.rerank_estimate],
        api_visibility="undocumented", show_progress="hidden", concurrency_limit=None,
    ).then(
        # Reranker B after A, in the same queue as A (one rerank at a time), cancelled by a newer search alike.
        callbacks.compare_rerank_stage, [session.index, session.judged, session.latest, *search.view],
        [search.column(COMPARE_STAGE), search.summary],
        api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank", show_progress="hidden",
        trigger_mode="always_last",
    )


def _wire_judging(page: Page, callbacks: Callbacks) -> None:
    search, session, panel = page.search, page.session, page.judging
    gr.on(
        [column.click for column in search.columns], callbacks.judge_result,
        [session.index, session.judged, session.latest, *search.view],
        [session.judged, *search.columns, panel.metrics], api_visibility="undocumented", show_progress="hidden",
    )
    panel.download_button.click(callbacks.download_judgments, [session.judged, session.latest], [panel.downloads],
                                api_visibility="undocumented")
    panel.load_button.click(callbacks.load_session_judgments, [session.judged, panel.upload],
                            [session.judged, panel.metrics], api_visibility="undocumented")


def _wire_evaluate(page: Page, callbacks: Callbacks) -> None:
    panel, session = page.evaluate, page.session
    loaded = [session.eval_judgments, panel.judgments_info]
    panel.bundled_button.click(callbacks.load_bundled_judgments, [session.index, *panel.run_settings], loaded,
                               api_name="load_bundled_judgments")
    panel.upload_button.click(callbacks.load_uploaded_judgments, [session.index, panel.files, *panel.run_settings],
                              loaded, api_visibility="undocumented")
    panel.run_button.click(
        callbacks.run_evaluation,
        [session.index, session.eval_judgments, session.stop, *panel.run_settings, panel.max_queries,
         panel.compare_first, panel.compare_second],
        [session.report, panel.progress, panel.metrics_table, panel.metrics_chart, panel.per_query_table,
         panel.eval_json],
        api_name="evaluate", concurrency_limit=1, concurrency_id="evaluate", show_progress="minimal",
    )
    panel.cancel_button.click(cancel_run, [session.stop], None, api_visibility="undocumented", queue=False)
    gr.on([panel.compare_first.change, panel.compare_second.change], callbacks.resort_queries,
          [session.report, panel.compare_first, panel.compare_second], [panel.per_query_table],
          api_visibility="undocumented")
    opened = panel.per_query_table.select(callbacks.open_query, [panel.per_query_table],
                                          [page.search.query, page.tabs], api_visibility="undocumented")
    _wire_search_chain(page, callbacks, opened.success, callbacks.first_stages)
    panel.depth_button.click(
        callbacks.run_depth_tradeoff,
        [session.index, session.eval_judgments, session.stop, panel.candidates_from, panel.max_queries],
        [panel.depth_progress, panel.depth_quality, panel.depth_latency], api_visibility="undocumented",
        concurrency_limit=1, concurrency_id="evaluate",
    )


def _wire_share(demo: gr.Blocks, page: Page, callbacks: Callbacks) -> None:
    """The link follows the page's settings; a page opened with one restores its view, builds its sample
    and searches (the same chain as the Search button); Copy link and Download bundle."""
    share_panel, corpus, search, session = page.share, page.corpus, page.search, page.session
    view_inputs = [corpus.files, corpus.sample, search.query, search.k, search.rerank_depth, search.candidates_from,
                   search.score_view, search.collapse, corpus.window, corpus.overlap, corpus.dense_model,
                   corpus.reranker_model, corpus.backend, corpus.compare_model, corpus.compare_backend]
    gr.on(
        [corpus.files.change, corpus.sample.change, search.query.blur, search.query.submit, search.button.click,
         search.k.change, search.rerank_depth.change, search.candidates_from.change, search.score_view.change,
         search.collapse.change, corpus.window.change, corpus.overlap.change, corpus.dense_model.change,
         corpus.reranker_model.change, corpus.backend.change, corpus.compare_model.change,
         corpus.compare_backend.change],
        callbacks.share_link, view_inputs, [share_panel.query_string, share_panel.notes],
        api_visibility="undocumented", show_progress="hidden", trigger_mode="always_last", queue=False,
    )
    # In the browser: the link box gets the full URL, and the address bar follows without a reload.
    share_panel.query_string.change(None, [share_panel.query_string], [share_panel.link], js=share.LINK_JS,
                                    api_visibility="undocumented", show_progress="hidden")
    share_panel.copy_button.click(None, [share_panel.link], None, js=share.COPY_JS, api_visibility="undocumented")
    demo.load(callbacks.share_link, view_inputs, [share_panel.query_string, share_panel.notes],
              api_visibility="undocumented", show_progress="hidden", queue=False)
    demo.load(callbacks.restore_view, None,
              [*callbacks.restorable.values(), share_panel.problems, share_panel.query_string,
               share_panel.restoring], api_visibility="undocumented", show_progress="hidden")
    built = share_panel.restoring.change(
        callbacks.build_restored,
        [share_panel.restoring, session.build_idle, corpus.files, corpus.sample, corpus.window, corpus.overlap,
         corpus.dense_model, corpus.reranker_model, corpus.backend, *corpus.model_settings],
        [session.index, corpus.progress, corpus.summary, corpus.languages_plot, corpus.build_json],
        api_visibility="undocumented", concurrency_limit=BUILD_SLOTS, concurrency_id="build", show_progress="minimal",
    )
    _wire_search_chain(page, callbacks, built.success, callbacks.search_restored)
    share_panel.bundle_button.click(
        callbacks.download_bundle,
        [session.index, session.judged, session.latest, *view_inputs, share_panel.link], [share_panel.bundle],
        api_visibility="undocumented",
    )


# -- callbacks: engine in, updates keyed by component out ----------------------------------------------

Updates = dict[gr.components.Component | gr.State, object]


class Callbacks:
    """The app's event handlers. Each returns (or yields) a dict keyed by the components it updates, so
    adding an output cannot shift the others; outputs it leaves out are not changed."""

    def __init__(self, page: Page, warmup: Warmup) -> None:
        self.page = page
        self.warmup = warmup
        self._api_slots: ApiSlots | None = None  # made on first use, inside the server's event loop

    # models

    async def model_status(self) -> AsyncIterator[Updates]:
        """The page's model line: the warm-up's progress, streamed until every model is loaded (or failed)."""
        while not (status := self.warmup.status()).done:
            yield {self.page.models: render_model_status(status)}
            await asyncio.sleep(STATUS_POLL_SECONDS)
        yield {self.page.models: render_model_status(status)}

    # corpus

    def build_corpus(self, idle: BuildIdle, files: Sequence[str] | None, sample: str, window: int, overlap: int,
                     dense_model: str, reranker_model: str, backend: str, request: gr.Request,
                     compare_model: str = NO_COMPARE, compare_backend: str = SAME_BACKEND,
                     tei_url: str = "") -> Iterator[Updates]:
        """Read, split, detect languages and index the uploaded files or a sample; streams step progress with
        the passage count and the time left for embedding. A corpus over $SEARCH_MAX_PASSAGES is refused
        after reading; when the event is closed (Cancel, or the page went away) the build stops. A build
        with the default models waits for the model warm-up to have loaded them, showing its progress.
        `compare_model` (reranker B, or "none"), `compare_backend` and `tei_url` come from the model panel."""
        idle.clear()
        try:
            yield from self._build_corpus(files, sample, window, overlap, dense_model, reranker_model, backend,
                                          request, compare_model, compare_backend, tei_url)
        finally:  # also when the event is closed: the build has then stopped sending progress
            idle.set()

    def _build_corpus(self, files: Sequence[str] | None, sample: str, window: int, overlap: int, dense_model: str,
                      reranker_model: str, backend: str, request: gr.Request, compare_model: str = NO_COMPARE,
                      compare_backend: str = SAME_BACKEND, tei_url: str = "") -> Iterator[Updates]:
        corpus = self.page.corpus
        paths, names, cache_dir = _corpus_inputs(files, sample, request)
        settings = _settings(window, overlap, dense_model, reranker_model, backend, compare_model=compare_model,
                             compare_backend=compare_backend, tei_url=tei_url)
        max_passages = _max_passages()
        stop = threading.Event()  # set by _stream when this event is closed before the build is done

        def work(report: Callable[[object], None]):
            started = time.perf_counter()

            def progress(step: str, done: int, total: int) -> None:
                report(build_summary.BuildEvent(step, done, total, time.perf_counter() - started))

            def models_ready(role: Role, requested: str) -> bool:
                if _wait_for_warmup(self.warmup, role, requested, settings.backend, stop):
                    return True
                logger.info("build cancelled after %.1f s while waiting for the %s model",
                            time.perf_counter() - started, role)
                return False

            progress("read", 0, 1)
            # The upload itself is capped by SEARCH_MAX_UPLOAD_MB; what it may expand to (archives) and cost to
            # parse follows the reading limits' own settings, which every limit message names.
            read = read_paths(paths, names=names, limits=ReadLimits())
            if not models_ready("dense", settings.dense_model):
                return None
            try:
                index = _build_index(read, settings, progress, cache_dir, max_passages, stop.is_set)
            except BuildCancelled as error:
                logger.info("build cancelled after %.1f s: %s", time.perf_counter() - started, error)
                return None
            logger.info("built %d passages in %.1f s", len(index), time.perf_counter() - started)
            if not models_ready("reranker", settings.reranker_model):
                return None
            # Load the rerankers now: a problem with either shows before any search.
            return index, index.reranker(), index.compare_reranker()

        def show(events: list, seconds: float) -> Updates:
            return {corpus.progress: build_summary.render_build_progress(events, seconds, self.warmup.status())}

        try:
            built = yield from _stream(work, show, stop)
        except gr.Error:
            yield {corpus.progress: ""}  # nothing was indexed: no progress left standing beside the error
            raise
        if built is None:
            yield {corpus.progress: ""}
            return
        index, loaded, loaded_b = built
        skipped = index.report.skipped
        if skipped:
            _warn(f"{len(skipped)} file(s) or line(s) skipped, e.g. {skipped[0]}. The rest was indexed; "
                  "see the list under the summary.")
        yield {
            self.page.session.index: index,
            corpus.progress: "",
            corpus.summary: build_summary.render_build_summary(index.report) + build_summary.render_reranker(loaded)
            + (build_summary.render_reranker(loaded_b, "Reranker B (compare with)") if loaded_b else ""),
            corpus.languages_plot: build_summary.languages_frame(index.report),
            corpus.build_json: {**report_to_dict(index.report), "reranker": loaded.model.label,
                                "reranker_fallback_reason": loaded.fallback_reason,
                                "backend": resolve_backend(index.settings.backend),
                                **({"compare_reranker": loaded_b.model.label,
                                    "compare_reranker_fallback_reason": loaded_b.fallback_reason}
                                   if loaded_b else {})},
        }

    def build_cancelled(self, idle: BuildIdle) -> Updates:
        """After Cancel build (which closes the running build's event): once that build has stopped, clear
        its progress panel."""
        if not idle.wait(timeout=30):
            logger.warning("a cancelled build was still sending progress after 30 s")
        return {self.page.corpus.progress: ""}

    # search

    def first_stages(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments, query: str,
                     k: int, rerank_depth: int, candidates_from: str, score_view: str, collapse: bool) -> Updates:
        """BM25, dense and hybrid for the query, begun as the session's latest search (a rerank still running
        for an older one stops). The Reranked column shows a placeholder until `rerank_stage`, unless every
        pair is in the score cache already (the same query again, another k): then it is drawn at once."""
        index = _require(index)
        try:
            result = index.retrieve(query, k=int(k), rerank_depth=int(rerank_depth), candidates_from=candidates_from)
        except ValueError as error:
            raise _fail(str(error)) from None
        if result.rerank_depth and index.expected_rerank_seconds(result) == 0.0:
            with suppress(RerankCancelled):  # evicted meanwhile: it waits for the rerank queue like any other
                result = index.rerank(result, should_stop=_cached_scores_only)
        if ("rerank" in result.stages and index.has_compare_reranker
                and index.expected_rerank_seconds(result, stage=COMPARE_STAGE) == 0.0):
            with suppress(RerankCancelled):  # reranker B's pairs are all cached too: draw its column at once
                result = index.rerank(result, should_stop=_cached_scores_only, stage=COMPARE_STAGE)
        latest.begin(result, index)
        if "rerank" in result.stages:
            rerank = self._columns(index, result, session, k, score_view, collapse, ["rerank"])
        elif result.rerank_depth:
            rerank = {self.page.search.column("rerank"): columns.render_rerank_pending(
                result, index.reranker().model.label)}
        else:
            rerank = {self.page.search.column("rerank"): _rerank_off()}
        return {self.page.session.latest: latest,
                **self._columns(index, result, session, k, score_view, collapse, FIRST_STAGES), **rerank,
                **self._compare_column(index, result, session, k, score_view, collapse),
                self.page.search.summary: _summary(result, k),
                self.page.search.rerank_estimate: _rerank_estimate(index, result, result.rerank_depth,
                                                                   result.candidates_from)}

    def search_again(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments, query: str,
                     k: int, rerank_depth: int, candidates_from: str, score_view: str, collapse: bool) -> Updates:
        """After k changes: search again (deeper lists) if there is something on screen, else do nothing."""
        if index is None or not (query or "").strip():
            return _unchanged()
        return self.first_stages(index, latest, session, query, k, rerank_depth, candidates_from, score_view,
                                 collapse)

    def rerank_stage(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch, k: int,
                     score_view: str, collapse: bool) -> Iterator[Updates]:
        """Add the reranker's column to the session's latest search, streaming its progress: pairs scored of
        the total and the time left at the speed measured on this machine, batch by batch.

        A newer search of the session stops it within a batch; it then shows nothing more (the newer search's
        own rerank follows in this queue). When the latest search needs no rerank (depth 0, or reranked
        already) its Reranked column is drawn again, so the last rerank event to run always leaves the
        latest search's column on screen."""
        turn, result = latest.latest()
        if index is None or result is None:
            yield _unchanged()
            return
        if not result.rerank_depth or "rerank" in result.stages:
            yield self._reranked(index, result, session, k, score_view, collapse)
            return
        reranked = yield from self._rerank_streamed(index, latest, turn, result, "rerank")
        if reranked is not None:
            yield self._reranked(index, reranked, session, k, score_view, collapse)

    def compare_rerank_stage(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch,
                             k: int, score_view: str, collapse: bool) -> Iterator[Updates]:
        """Add reranker B's column (rerank-b) to the session's latest search once A has reranked it,
        streaming its progress as `rerank_stage` does for A, in the same queue and under the same lock.

        A newer search stops it within a batch and it then shows nothing more (the newer search's own B
        follows). Without a reranker B it changes nothing; when the latest search needs no rerank by B
        (depth 0, or done already) B's column is drawn again."""
        turn, result = latest.latest()
        if index is None or result is None or not index.has_compare_reranker:
            yield _unchanged()
            return
        if not result.rerank_depth or COMPARE_STAGE in result.stages:
            yield {**self._compare_column(index, result, session, k, score_view, collapse),
                   self.page.search.summary: _summary(result, k)}
            return
        if "rerank" not in result.stages:
            yield _unchanged()  # A did not finish this search (a newer one overtook it): B follows that one
            return
        reranked = yield from self._rerank_streamed(index, latest, turn, result, COMPARE_STAGE)
        if reranked is not None:
            yield {**self._compare_column(index, reranked, session, k, score_view, collapse),
                   self.page.search.summary: _summary(reranked, k)}

    def _rerank_streamed(self, index: Index, latest: LatestSearch, turn: int, result: SearchResult,
                         stage: str) -> Generator[Updates, None, SearchResult | None]:
        """Rerank `result` (the search of `turn`) by `stage`'s reranker (A: rerank, B: rerank-b), yielding its
        column's progress; returns the reranked result once it is kept as the latest, else None, having
        yielded what the column shows (a failure says so; a search overtaken by a newer one, nothing)."""
        column = self.page.search.column(stage)
        stop = threading.Event()  # set by _stream when this event is closed (the page went away)
        which = " B" if stage == COMPARE_STAGE else ""  # as the log says it: "rerank of …", "rerank B of …"

        def should_stop() -> bool:
            return stop.is_set() or not latest.is_current(turn)

        def work(report: Callable[[object], None]):
            try:
                return _rerank(index, result, progress=lambda done, total: report((done, total)),
                               should_stop=should_stop, stage=stage)
            except RerankCancelled as cancelled:
                logger.info("rerank%s of %r stopped: %s", which, result.query, cancelled)
                return None
            except Exception as error:  # noqa: BLE001 - the column says what failed; the rest keeps working
                logger.error("rerank%s failed", which, exc_info=error)
                return error

        label = _reranker_label(index, stage)
        shown: list[object] = [None]

        def show(events: list, seconds: float) -> Updates | None:
            if not events or events[-1] == shown[0] or should_stop():
                return None  # nothing new, or a newer search owns the column now
            shown[0] = done, total = events[-1]
            progress = columns.RerankProgress(done, total, _seconds_left(index, total - done, stage))
            return {column: columns.render_rerank_pending(result, label, progress, stage=stage)}

        reranked = yield from _stream(work, show, stop)
        if isinstance(reranked, Exception):
            if stage == COMPARE_STAGE:
                title, failed = STAGE_TITLE_B, "Reranking with B failed ({}); the other columns are unaffected."
            else:
                title, failed = "Reranked", "Reranking failed ({}); the first stages are unaffected."
            yield ({column: columns.render_notice(title, failed.format(type(reranked).__name__)
                                                  + " Details are in the server log.")}
                   if latest.is_current(turn) else _unchanged())
            return None
        if reranked is None or not latest.finish(turn, reranked):
            yield _unchanged()  # overtaken by a newer search: its own rerank draws the column
            return None
        return reranked

    def compare_column(self, index: Index | None, stages: Sequence[str] | None = None) -> Updates:
        """After a build: show reranker B's column (empty until a search) and tick its stage in the Evaluate
        tab when the index has a reranker B; hide and untick it otherwise. The other stages stay as chosen."""
        shown = index is not None and index.has_compare_reranker
        chosen = set(STAGES if stages is None else stages) - {COMPARE_STAGE} | ({COMPARE_STAGE} if shown else set())
        return {self.page.search.column(COMPARE_STAGE): gr.HTML("", visible=shown),
                self.page.evaluate.stages: gr.CheckboxGroup(value=[name for name in ALL_STAGES if name in chosen])}

    def rerender(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch, k: int,
                 score_view: str, collapse: bool) -> Updates:
        """Draw the last result again with another score view or document collapsing (no new search)."""
        result = latest.result
        if index is None or result is None:
            return _unchanged()
        return {**self._columns(index, result, session, k, score_view, collapse, ALL_STAGES),
                self.page.search.summary: _summary(result, k)}

    def rerank_estimate(self, index: Index | None, latest: LatestSearch, rerank_depth: int,
                        candidates_from: str) -> Updates:
        """The expected rerank time beside the depth slider, for the latest search at this depth and source."""
        return {self.page.search.rerank_estimate: _rerank_estimate(index, latest.result, int(rerank_depth),
                                                                   candidates_from)}

    def new_index_estimate(self, index: Index | None, rerank_depth: int) -> Updates:
        """After a build: the expected rerank time at this depth with the new index's reranker."""
        return {self.page.search.rerank_estimate: _rerank_estimate(index, None, int(rerank_depth), "hybrid")}

    async def search_api(self, index: Index | None, query: str, k: int, rerank_depth: int,
                         candidates_from: str) -> Updates:
        """Every stage for a query as JSON, with how the stages compare (the `search` API endpoint).

        The first stages and the rerank run in worker threads, each behind its own limit (`ApiSlots`):
        a call waiting for the reranker holds no first-stage slot."""
        index = _require(index)
        slots = self._slots()
        try:
            result = await anyio.to_thread.run_sync(
                partial(index.retrieve, query, k=int(k), rerank_depth=int(rerank_depth),
                        candidates_from=candidates_from), limiter=slots.first_stages)
        except ValueError as error:
            raise _fail(str(error)) from None
        if result.rerank_depth:
            result = await anyio.to_thread.run_sync(_rerank, index, result, limiter=slots.rerank)
        if result.rerank_depth and index.has_compare_reranker:
            result = await anyio.to_thread.run_sync(partial(_rerank, index, result, stage=COMPARE_STAGE),
                                                    limiter=slots.rerank)
        return {self.page.api.result: await anyio.to_thread.run_sync(result_to_dict, result, int(k))}

    # judging

    def judge_result(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch,
                     k: int, score_view: str, collapse: bool, event: gr.EventData) -> Updates:
        """Record the grade a user gave a result card: the clicked column (`event.target`) is the stage, the
        card's buttons send its rank in that stage and the grade (see `ui.columns.JUDGE_JS`)."""
        result = latest.result
        stage_name = self._stage_of(event.target)
        stage = result.stages.get(stage_name) if result is not None and stage_name else None
        hit_rank, grade = _event_value(event, "hit_rank"), _event_value(event, "grade")
        hit = next((h for h in stage.hits if h.rank == hit_rank), None) if stage is not None else None
        if index is None or hit is None or grade not in (0, 1, 2):
            return _unchanged()
        session = judging.judge(session, result, hit.passage_id, int(grade))
        return {self.page.session.judged: session,
                **self._columns(index, result, session, k, score_view, collapse, ALL_STAGES),
                self.page.judging.metrics: _judged_panel(session)}

    def download_judgments(self, session: judging.SessionJudgments, latest: LatestSearch,
                           request: gr.Request) -> Updates:
        """Write the session's qrels, queries and runs (TREC) and the current results (CSV, JSON) to files.
        A file that can't be written (an id with whitespace in a TREC file) is left out with a warning
        naming it and the id; every other file still comes."""
        result = latest.result
        if session.judgment_count == 0 and result is None:
            raise _fail("Nothing to download yet: search, and judge a few results first.")
        files, left_out = judging.export_files(session)
        if result is not None:
            files["results.csv"] = results_to_csv(result)
            files["results.json"] = json.dumps(result_to_dict(result), ensure_ascii=False, indent=1)
        for name, reason in left_out.items():
            _warn(f"{name} was left out of the download: {reason}")
        return {self.page.judging.downloads: write_downloads(files, downloads_folder(request))}

    def load_session_judgments(self, session: judging.SessionJudgments, files: Sequence[str] | None) -> Updates:
        """Load qrels + queries downloaded earlier (or any TREC/BEIR judgments) to go on judging."""
        loaded = _load_judgments(files)
        for problem in loaded.problems[:3]:
            _warn(str(problem))
        session = judging.merge(session, loaded)
        _info(f"Loaded {sum(len(m) for m in loaded.qrels.values())} judgments on {len(loaded.queries)} queries.")
        return {self.page.session.judged: session, self.page.judging.metrics: _judged_panel(session)}

    # sharing

    @property
    def restorable(self) -> dict[str, gr.components.Component]:
        """The controls a link sets, by ViewState field."""
        corpus, search = self.page.corpus, self.page.search
        return {"sample": corpus.sample, "query": search.query, "k": search.k, "rerank_depth": search.rerank_depth,
                "candidates_from": search.candidates_from, "score_view": search.score_view,
                "collapse": search.collapse, "window": corpus.window, "overlap": corpus.overlap,
                "dense_model": corpus.dense_model, "reranker_model": corpus.reranker_model,
                "backend": corpus.backend, "compare_reranker": corpus.compare_model,
                "compare_backend": corpus.compare_backend}

    def share_link(self, files: Sequence[str] | None, sample: str, query: str, k: int, rerank_depth: int,
                   candidates_from: str, score_view: str, collapse: bool, window: int, overlap: int,
                   dense_model: str, reranker_model: str, backend: str, compare_model: str = NO_COMPARE,
                   compare_backend: str = SAME_BACKEND) -> Updates:
        """The link of the page's current settings, and whether it can carry the corpus (not uploads)."""
        view = _view_state(sample, query, k, rerank_depth, candidates_from, score_view, collapse, window, overlap,
                           dense_model, reranker_model, backend, compare_model, compare_backend)
        link = share.share_link(view, uploaded=bool(files))
        return {self.page.share.query_string: link.query_string,
                self.page.share.notes: share.render_share_note(link.note)}

    def restore_view(self, request: gr.Request) -> Updates:
        """On page load: the view a link carries (`ui.share.parse_view`) set into the controls; a bad value
        keeps the default and is said beside the link. Setting `restoring` builds the sample and searches."""
        params = dict(request.query_params) if request is not None else {}
        if not set(params) & set(share.PARAMETERS):
            return _unchanged()
        parsed = share.parse_view(params, _share_options())
        state = parsed.state
        updates: Updates = {self.restorable[name]: getattr(state, name) for name in parsed.given
                            if name in self.restorable}
        if state.sample is not None:
            updates[self.page.corpus.sample] = SAMPLE_NAMES[state.sample]
        problems = list(parsed.problems)
        if state.sample is None and state.query:
            problems.append("The link names no sample corpus (a link cannot carry uploaded files): upload the "
                            "files it was made from, press Build index, then Search.")
        updates[self.page.share.problems] = share.render_share_note("", problems)
        updates[self.page.share.query_string] = share.query_string(state)
        updates[self.page.share.restoring] = state
        return updates

    def build_restored(self, restoring: share.ViewState | None, idle: BuildIdle, files: Sequence[str] | None,
                       sample: str, window: int, overlap: int, dense_model: str, reranker_model: str, backend: str,
                       compare_model: str, compare_backend: str, tei_url: str,
                       request: gr.Request) -> Iterator[Updates]:
        """Build the sample a link names (with the link's settings, set into the controls already)."""
        if restoring is None or restoring.sample is None or files:
            yield _unchanged()
            return
        yield from self.build_corpus(idle, None, SAMPLE_NAMES[restoring.sample], window, overlap, dense_model,
                                     reranker_model, backend, request, compare_model, compare_backend, tei_url)

    def search_restored(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments,
                        query: str, k: int, rerank_depth: int, candidates_from: str, score_view: str,
                        collapse: bool) -> Updates:
        """After a link's build: its query, searched as the Search button would (nothing without a query)."""
        if index is None or not (query or "").strip():
            return _unchanged()
        return self.first_stages(index, latest, session, query, k, rerank_depth, candidates_from, score_view,
                                 collapse)

    def download_bundle(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch,
                        files: Sequence[str] | None, sample: str, query: str, k: int, rerank_depth: int,
                        candidates_from: str, score_view: str, collapse: bool, window: int, overlap: int,
                        dense_model: str, reranker_model: str, backend: str, compare_model: str,
                        compare_backend: str, link: str, request: gr.Request) -> Updates:
        """One zip (`ui.bundle`) of the latest search as drawn, the session's judgments and runs, and a
        static page of the columns; a TREC file that can't hold an id is left out with a warning."""
        result = latest.result
        view = _view_state(sample, result.query if result else query, k,
                           result.rerank_depth if result else rerank_depth,
                           result.candidates_from if result else candidates_from, score_view, collapse, window,
                           overlap, dense_model, reranker_model, backend, compare_model, compare_backend)
        if index is not None:  # what the index was built with, even if the controls moved since
            settings = index.settings
            view = replace(view, window=settings.window, overlap=settings.overlap,
                           dense_model=settings.dense_model, reranker_model=settings.reranker_model,
                           backend=settings.backend, compare_reranker=settings.compare_reranker_model or None,
                           compare_backend=settings.compare_backend or None)
        uploaded = bool(files)
        corpus = ("uploaded files: " + ", ".join(Path(file).name for file in files)) if files else (view.sample or "")
        try:
            bundle = make_bundle(result, session, view, link=link or "",
                                 link_note=share.UPLOADED_NOTE if uploaded else "", corpus=corpus,
                                 corpus_languages=index.languages if index is not None else ())
        except ValueError as error:
            raise _fail(str(error)) from None
        for name, reason in bundle.left_out.items():
            _warn(f"{name} was left out of the bundle: {reason}")
        folder = downloads_folder(request) / "bundle"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BUNDLE_NAME).write_bytes(bundle.data)
        return {self.page.share.bundle: str(folder / BUNDLE_NAME)}

    # evaluation

    def load_bundled_judgments(self, index: Index | None, stages: list[str], rerank_depth: int,
                               candidates_from: str) -> Updates:
        """The polyglot-facts judgments for the Evaluate tab (the `load_bundled_judgments` API endpoint)."""
        _require(index)
        return self._load_eval_judgments(index, load_judgments([BUNDLED_JUDGMENTS]), stages, rerank_depth,
                                         candidates_from)

    def load_uploaded_judgments(self, index: Index | None, files: Sequence[str] | None, stages: list[str],
                                rerank_depth: int, candidates_from: str) -> Updates:
        """Uploaded qrels + queries (or a BEIR zip) for the Evaluate tab."""
        _require(index)
        return self._load_eval_judgments(index, _load_judgments(files), stages, rerank_depth, candidates_from)

    def run_evaluation(self, index: Index | None, judgments: Judgments | None, stop: StopFlag, stages: list[str],
                       rerank_depth: int, candidates_from: str, max_queries: float | None, first: str,
                       second: str) -> Iterator[Updates]:
        """Run every judged query through the chosen stages, streaming progress; Cancel keeps what finished."""
        index = _require(index)
        if judgments is None:
            raise _fail("Load judgments first (bundled, or upload qrels and queries).")
        if int(rerank_depth) == 0 and "rerank" in stages:
            stages = [stage for stage in stages if stage != "rerank"]
            _info("Rerank depth 0: the Reranked stage is left out.")
        if COMPARE_STAGE in stages and (int(rerank_depth) == 0 or not index.has_compare_reranker):
            stages = [stage for stage in stages if stage != COMPARE_STAGE]
            _info("The Reranked (B) stage is left out: " + ("rerank depth 0." if int(rerank_depth) == 0 else
                  "no second reranker is set (Compare with, in the model panel, then Build index)."))
        if not stages:
            raise _fail("Choose at least one stage to evaluate.")
        stop.clear()
        limit = int(max_queries) if max_queries else None
        panel = self.page.evaluate

        def work(report: Callable[[object], None]):
            return evaluate(index, judgments, stages=stages, rerank_depth=int(rerank_depth),
                            candidates_from=candidates_from, max_queries=limit,
                            progress=lambda done, total: report((done, total)), should_stop=stop.is_set)

        report = yield from _stream(work, partial(_show_run_progress, panel.progress), stop)
        if report.cancelled:
            _info(f"Cancelled: the metrics cover the {report.queries} queries that finished.")
        yield {
            self.page.session.report: report,
            panel.progress: "",
            panel.metrics_table: evaluation_view.metrics_frame(report),
            panel.metrics_chart: evaluation_view.chart_frame(report),
            panel.per_query_table: evaluation_view.per_query_frame(report, first, second),
            panel.eval_json: report.to_json(),
        }

    def resort_queries(self, report, first: str, second: str) -> Updates:
        """Sort the per-query table by the change from one stage to another."""
        if report is None:
            return _unchanged()
        return {self.page.evaluate.per_query_table: evaluation_view.per_query_frame(report, first, second)}

    def open_query(self, table, event: gr.SelectData) -> Updates:
        """Clicking a row of the per-query table opens its query in the Search tab."""
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        query = str(table.iloc[row]["query"]) if table is not None and "query" in table else ""
        if not query:
            return _unchanged()
        return {self.page.search.query: query, self.page.tabs: gr.Tabs(selected="search")}

    def run_depth_tradeoff(self, index: Index | None, judgments: Judgments | None, stop: StopFlag,
                           candidates_from: str, max_queries: float | None) -> Iterator[Updates]:
        """nDCG@10 and time per query against rerank depth, for the loaded judgments."""
        index = _require(index)
        if judgments is None:
            raise _fail("Load judgments first (bundled, or upload qrels and queries).")
        stop.clear()
        limit = int(max_queries) if max_queries else None
        panel = self.page.evaluate

        def work(report: Callable[[object], None]):
            return depth_tradeoff(index, judgments, depths=DEPTHS, candidates_from=candidates_from,
                                  max_queries=limit, progress=lambda done, total: report((done, total)),
                                  should_stop=stop.is_set,
                                  stages=("rerank", COMPARE_STAGE) if index.has_compare_reranker else ("rerank",))

        points = yield from _stream(work, partial(_show_run_progress, panel.depth_progress), stop)
        quality, latency = evaluation_view.depth_frames(points)
        yield {panel.depth_progress: "", panel.depth_quality: quality, panel.depth_latency: latency}

    # helpers

    def _reranked(self, index: Index, result: SearchResult, session: judging.SessionJudgments, k: int,
                  score_view: str, collapse: bool) -> Updates:
        if "rerank" in result.stages:
            column = self._columns(index, result, session, k, score_view, collapse, ["rerank"])
        else:
            column = {self.page.search.column("rerank"): _rerank_off()}
        return {**column, self.page.search.summary: _summary(result, k)}

    def _compare_column(self, index: Index, result: SearchResult, session: judging.SessionJudgments, k: int,
                        score_view: str, collapse: bool) -> Updates:
        # Reranker B's column: its results, a placeholder until it has run, or nothing without a B.
        column = self.page.search.column(COMPARE_STAGE)
        if COMPARE_STAGE in result.stages:
            return self._columns(index, result, session, k, score_view, collapse, [COMPARE_STAGE])
        if not index.has_compare_reranker:
            return {column: ""}
        if not result.rerank_depth:
            return {column: columns.render_notice(STAGE_TITLE_B, "Reranking is off (rerank depth 0).")}
        return {column: columns.render_rerank_pending(result, _reranker_label(index, COMPARE_STAGE),
                                                      stage=COMPARE_STAGE)}

    def _columns(self, index: Index, result: SearchResult, session: judging.SessionJudgments, k: int,
                 score_view: str, collapse: bool, stages: Sequence[str]) -> Updates:
        # A stage not in the result yet (a rerank waiting or working, or off) keeps what its column shows:
        # its progress or its notice.
        grades = session.grades_for(result)
        return {self.page.search.column(name): columns.render_column(
                    result.stages[name], result, k=int(k), score_view=score_view, collapse_documents=collapse,
                    corpus_languages=index.languages, judgments=grades)
                for name in stages if name in result.stages}

    def _load_eval_judgments(self, index: Index | None, judgments: Judgments, stages: list[str], rerank_depth: int,
                             candidates_from: str) -> Updates:
        index = _require(index)
        match = match_judgments(judgments, index.passages)
        if match.matched == 0:
            _warn("None of the judged ids is in this corpus: were these judgments made for another corpus?")
        estimate = estimate_evaluation(
            index, len(judgments.queries), stages=stages, rerank_depth=int(rerank_depth),
            candidates_from=candidates_from, sample_queries=[query.text for query in judgments.queries[:2]])
        return {self.page.session.eval_judgments: judgments,
                self.page.evaluate.judgments_info: evaluation_view.judgments_summary(judgments, match, estimate)}

    def _slots(self) -> ApiSlots:
        if self._api_slots is None:
            self._api_slots = ApiSlots(anyio.CapacityLimiter(FIRST_STAGE_SLOTS), anyio.CapacityLimiter(1))
        return self._api_slots

    def _stage_of(self, column: object) -> str | None:
        elem_id = getattr(column, "elem_id", None)
        return next((name for name, html_column in zip(ALL_STAGES, self.page.search.columns, strict=True)
                     if html_column.elem_id == elem_id), None)


# -- explain: why a reranked passage scored so ---------------------------------------------------------

class ExplainPanel(NamedTuple):
    """Pick a reranked passage (or press Explain on its card), see the cost, run, see each sentence shaded.
    With a reranker B, `reranker` says which reranker (and so which column's passages) is explained."""

    passage: gr.Dropdown
    button: gr.Button
    cost: gr.HTML
    result: gr.HTML
    reranker: gr.Radio  # the stage explained: rerank (A) or rerank-b (B); shown only when the index has a B


def _explain_panel() -> ExplainPanel:
    with gr.Accordion("Why did this passage score so? (Explain)", open=True, elem_id="explain-panel"):
        gr.Markdown(explain_view.EXPLAIN_HELP)
        with gr.Row(equal_height=True):
            reranker = gr.Radio([("reranker A", "rerank"), ("reranker B", COMPARE_STAGE)], value="rerank",
                                label="Explain with", visible=False, scale=2, elem_id="explain-reranker")
            passage = gr.Dropdown([], value=None, label="Reranked passage", scale=4, elem_id="explain-passage")
            button = gr.Button("Explain", variant="secondary", scale=1, elem_id="explain-button")
        cost = gr.HTML(explain_view.render_cost(None, None), elem_id="explain-cost")
        result = gr.HTML(elem_id="explain-result")
    return ExplainPanel(passage, button, cost, result, reranker)


def _wire_explain(page: Page, panel: ExplainPanel, callbacks: ExplainCallbacks) -> None:
    session = page.session
    quiet = {"api_visibility": "undocumented", "show_progress": "hidden"}
    chosen = [session.index, session.latest, panel.passage, panel.reranker]
    for stage in RERANK_STAGES:
        column = page.search.column(stage)
        # A new reranked column (a search, a rerank finishing, a judgment) offers its passages.
        column.change(callbacks.refresh, chosen, [panel.passage, panel.cost, panel.reranker],
                      trigger_mode="always_last", concurrency_limit=None, **quiet)
        # Explain on a card (ui.columns.JUDGE_JS sends its rank and stage) picks that passage and that
        # column's reranker, and says the cost; no more.
        column.click(callbacks.pick, [session.index, session.latest], [panel.passage, panel.cost, panel.reranker],
                     concurrency_limit=None, **quiet)
    panel.reranker.input(callbacks.refresh, chosen, [panel.passage, panel.cost, panel.reranker],
                         concurrency_limit=None, **quiet)
    panel.passage.input(callbacks.preview, chosen, [panel.cost], concurrency_limit=None, **quiet)
    # Explaining scores pairs: it waits in the rerank queue like a rerank.
    panel.button.click(callbacks.run, chosen, [panel.result, panel.cost],
                       api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank",
                       show_progress="minimal")


class ExplainCallbacks:
    """The Explain panel's handlers: its choices follow the latest reranked column of the reranker chosen (A,
    or B when the index has one); the cost is said first; that reranker scores the passage with each sentence
    left out only when Explain is pressed."""

    def __init__(self, page: Page, panel: ExplainPanel) -> None:
        self.page = page
        self.panel = panel

    def refresh(self, index: Index | None, latest: LatestSearch, chosen: str | None,
                stage: str = "rerank") -> Updates:
        """Offer the latest search's passages reranked by `stage`'s reranker, keeping the chosen one while it
        is still there."""
        result = latest.result_on(index)
        stage = _explain_stage(index, stage)
        choices = explain_view.passage_choices(result, stage)
        value = chosen if any(passage_id == chosen for _, passage_id in choices) else None
        return {self.panel.passage: gr.Dropdown(choices=choices, value=value),
                self.panel.cost: self._cost(index, result, value, stage),
                self.panel.reranker: self._reranker_choice(index, result, stage)}

    def pick(self, index: Index | None, latest: LatestSearch, event: gr.EventData) -> Updates:
        """A card's Explain button: choose its passage and its column's reranker (A or B), and say what
        explaining it costs (nothing runs)."""
        rank = _event_value(event, "explain_rank")
        stage = _event_value(event, "explain_stage") or "rerank"  # a payload without it: a card of A
        result = latest.result_on(index)
        reranked = result.stages.get(stage) if result is not None and stage in RERANK_STAGES else None
        hit = next((h for h in reranked.hits if h.rank == rank), None) if reranked is not None else None
        if hit is None or _explain_stage(index, stage) != stage:
            return _unchanged()  # a judging click, or a card of an older search
        return {self.panel.passage: gr.Dropdown(choices=explain_view.passage_choices(result, stage),
                                                value=hit.passage_id),
                self.panel.cost: self._cost(index, result, hit.passage_id, stage),
                self.panel.reranker: self._reranker_choice(index, result, stage)}

    def preview(self, index: Index | None, latest: LatestSearch, chosen: str | None,
                stage: str = "rerank") -> Updates:
        """The cost of explaining the passage chosen in the dropdown."""
        return {self.panel.cost: self._cost(index, latest.result_on(index), chosen, _explain_stage(index, stage))}

    def run(self, index: Index | None, latest: LatestSearch, chosen: str | None,
            stage: str = "rerank") -> Iterator[Updates]:
        """Score the chosen passage with each sentence left out in turn by the chosen reranker (through the
        score cache), streaming progress, then show it shaded by the drops with the query terms marked."""
        index = _require(index)
        result = latest.result_on(index)
        stage = _explain_stage(index, stage)
        hit = explain_view.reranked_hit(result, chosen, stage)
        if result is None or hit is None:
            column = STAGE_TITLE_B if stage == COMPARE_STAGE else "Reranked"
            yield {self.panel.result: explain_view.render_message(
                f"Search first, then pick a passage of the {column} column (or press Explain on its card).")}
            return
        try:
            loaded = index.reranker() if stage == "rerank" else index.compare_reranker()
        except ValueError as error:
            raise _fail(str(error)) from None
        if loaded is None:  # _explain_stage keeps B only while the index has one
            raise _fail("This index has no reranker B: explain with reranker A, or choose one under "
                        "'Compare with' in the model panel and build the index again.")
        reranker = loaded.model
        stop = threading.Event()  # set by _stream when the page goes away

        def work(report: Callable[[object], None]):
            try:
                return explain(reranker, result.query, hit.text, title=_explain_title(index, hit),
                               progress=lambda done, total: report((done, total)), should_stop=stop.is_set)
            except RerankCancelled:
                return None

        def show(events: list, seconds: float) -> Updates | None:
            return {self.panel.result: explain_view.render_progress(*events[-1])} if events else None

        explanation = yield from _stream(work, show, stop)
        if explanation is None:
            yield _unchanged()
            return
        terms = highlight_terms(result, hit.language.group, index.languages)
        yield {self.panel.result: explain_view.render_explanation(explanation, hit, terms,
                                                                  _explain_reranker_name(index, result, stage)),
               self.panel.cost: self._cost(index, result, hit.passage_id, stage)}

    def _cost(self, index: Index | None, result: SearchResult | None, chosen: str | None,
              stage: str = "rerank") -> str:
        hit = explain_view.reranked_hit(result, chosen, stage)
        # That stage's reranker and its measured speed (only once a passage is chosen: it has reranked then).
        reranker = _measured_reranker(index, stage) if index is not None and hit is not None else None
        if hit is None or result is None or reranker is None:
            return explain_view.render_cost(None, None)
        return explain_view.render_cost(hit, explain_cost(reranker, result.query, hit.text,
                                                          title=_explain_title(index, hit)),
                                        _explain_reranker_name(index, result, stage))

    def _reranker_choice(self, index: Index | None, result: SearchResult | None, stage: str) -> gr.Radio:
        # Which reranker is explained: a choice only when the index has a B, each named with its model.
        if index is None or not index.has_compare_reranker:
            return gr.Radio(value="rerank", visible=False)
        choices = [(explain_view.reranker_name(name, _explained_label(index, result, name)), name)
                   for name in RERANK_STAGES]
        return gr.Radio(choices=choices, value=stage, visible=True)


def _explain_stage(index: Index | None, stage: str | None) -> str:
    # The reranked stage to explain: B only while the index has a reranker B; anything else is A.
    has_b = index is not None and index.has_compare_reranker
    return COMPARE_STAGE if stage == COMPARE_STAGE and has_b else "rerank"


def _explained_label(index: Index, result: SearchResult | None, stage: str) -> str:
    # The model that reranked `stage` in `result` (the label its cards show), else the one the settings name
    # (without loading it: the panel follows every column update).
    reranked = result.stages.get(stage) if result is not None else None
    if reranked is not None and not reranked.error:
        return reranked.model
    return index.settings.reranker_model if stage == "rerank" else index.settings.compare_reranker_model


def _explain_reranker_name(index: Index | None, result: SearchResult | None, stage: str) -> str | None:
    # "reranker A: <label>" or "reranker B: <label>" when the index has a B; None (the model's label alone)
    # when it has only A.
    if index is None or not index.has_compare_reranker:
        return None
    return explain_view.reranker_name(stage, _explained_label(index, result, stage))


def _explain_title(index: Index, hit: Hit) -> str:
    # What the reranker read in front of the passage: as search.pipeline.Index._rerank_text.
    return hit.title if index.settings.index_titles and hit.title else ""


@gpu
def _build_index(read, settings: Settings, progress, cache_dir: Path, max_passages: int | None,
                 should_stop: Callable[[], bool]) -> Index:
    return build(read, settings, progress=progress, cache_dir=cache_dir, max_passages=max_passages,
                 should_stop=should_stop)


@gpu
def _rerank(index: Index, result: SearchResult, progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, stage: str = "rerank") -> SearchResult:
    return index.rerank(result, progress=progress, should_stop=should_stop, stage=stage)


def _cached_scores_only() -> bool:
    # As a rerank's should_stop: scores come from the score cache, and the first pair it would have to
    # score stops it (RerankCancelled) before any model work.
    return True


def cancel_run(stop: StopFlag) -> None:
    stop.set()


def forget_session(request: gr.Request) -> None:
    """Delete what a closed session left on disk: the indexes it built from its uploads, its downloads."""
    shutil.rmtree(_session_cache(request), ignore_errors=True)
    shutil.rmtree(downloads_folder(request), ignore_errors=True)


def downloads_folder(request: gr.Request) -> Path:
    """The session's own download folder (under the temp dir, where Gradio may serve files from)."""
    return DOWNLOADS_DIR / _session_key(request)


def write_downloads(files: Mapping[str, str], folder: Path) -> list[str]:
    """Write file name -> text into `folder`, replacing whatever an earlier download left there; returns the paths."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)  # two quick clicks: the second must not fail on the first's folder
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return [str(folder / name) for name in files]


# -- helpers -------------------------------------------------------------------------------------

def _summary(result: SearchResult, k: int) -> str:
    return columns.render_summary(result, int(k))


def _unchanged() -> Updates:
    # Leaves every output of the event as it is (an empty dict would be read as one missing value).
    return gr.skip()


STAGE_TITLE_B = STAGE_TITLES[COMPARE_STAGE]


def _rerank_off() -> str:
    return columns.render_notice("Reranked", "Reranking is off (rerank depth 0).")


def _reranker_label(index: Index, stage: str = "rerank") -> str:
    try:
        loaded = index.reranker() if stage == "rerank" else index.compare_reranker()
    except ValueError:  # the rerank itself will say why, in the column
        loaded = None
    if loaded is None:
        return index.settings.reranker_model if stage == "rerank" else index.settings.compare_reranker_model
    return loaded.model.label


def _measured_reranker(index: Index, stage: str = "rerank") -> CachedReranker | None:
    # The index's reranker (of `stage`), when it is loaded and measures its speed (the app loads it with every build).
    try:
        loaded = index.reranker() if stage == "rerank" else index.compare_reranker()
    except ValueError:
        return None
    model = loaded.model if loaded is not None else None
    return model if isinstance(model, CachedReranker) else None


def _seconds_left(index: Index, pairs: int, stage: str = "rerank") -> float | None:
    reranker = _measured_reranker(index, stage)
    return reranker.expected_seconds(max(0, pairs)) if reranker is not None else None


def _rerank_estimate(index: Index | None, result: SearchResult | None, rerank_depth: int,
                     candidates_from: str) -> str:
    """The expected time of reranking `result` (the latest search) at `rerank_depth` from `candidates_from`;
    without a search, of `rerank_depth` pairs none of which is cached."""
    seconds: float | None = None
    if index is not None and rerank_depth > 0:
        if result is not None and candidates_from in result.stages:
            seconds = index.expected_rerank_seconds(replace(result, candidates_from=candidates_from), rerank_depth)
        else:
            seconds = _seconds_left(index, min(rerank_depth, len(index)))
    return columns.render_rerank_estimate(seconds, rerank_depth)


def _wait_for_warmup(warmup: Warmup, role: Role, requested: str, backend: str, stop: threading.Event) -> bool:
    """Wait until the warm-up has loaded `role`'s model when this build asks for the same one with the
    same backend (else at once); False when the build was cancelled meanwhile."""
    try:
        same_backend = resolve_backend(warmup.backend) == resolve_backend(backend)
    except ValueError:  # the operator's default names no backend: the warm-up loaded nothing to wait for
        same_backend = False
    if not same_backend or not warmup.serves(role, requested):
        return True
    while not warmup.wait(role, timeout=STATUS_POLL_SECONDS):
        if stop.is_set():
            return False
    return True


def _show_run_progress(component: gr.HTML, events: list, seconds: float) -> Updates:
    return {component: evaluation_view.run_progress(*(events[-1] if events else (0, 0)), seconds)}


def _event_value(event: gr.EventData, name: str) -> object:
    # A custom event's payload is read as attributes of its EventData; a payload may lack the key, or be
    # missing altogether when the event was sent by hand rather than by the page's script.
    try:
        return getattr(event, name)
    except (AttributeError, TypeError):
        return None


def _corpus_inputs(files: Sequence[str] | None, sample: str, request: gr.Request):
    if files:
        paths = [Path(file) for file in files]
        total = sum(path.stat().st_size for path in paths if path.exists())
        if total > max_upload_mb() * MB:
            raise _fail(f"The upload is {total / MB:.1f} MB; the limit is {max_upload_mb()} MB "
                        f"(set by {UPLOAD_ENV}). Upload fewer or smaller files.")
        # Uploads keep their own name as the last path part; messages should name that, not a temp path.
        return paths, [path.name for path in paths], _session_cache(request)
    if sample in SAMPLES:
        return [SAMPLES[sample]], [SAMPLES[sample].name], default_cache_dir() / "samples"
    raise _fail("Upload one or more files, or choose a sample corpus, then press Build index.")


def _max_passages() -> int | None:
    try:
        return max_passages_from_env()
    except ValueError as error:  # the operator's setting is wrong: say which and how to fix it
        raise _fail(str(error)) from None


def _shown_max_passages() -> int | None:
    try:
        return max_passages_from_env()
    except ValueError as error:  # every build will say so too
        logger.warning("%s", error)
        return None


def _session_key(request: gr.Request) -> str:
    # Hashed: a folder name must not reveal (or be steered by) the session id.
    return hashlib.sha256(str(request.session_hash or "anonymous").encode()).hexdigest()[:32]


def _session_cache(request: gr.Request) -> Path:
    # Per-session, so one user's "reused the saved index" never reveals what another user uploaded.
    return default_cache_dir() / "sessions" / _session_key(request)


def custom_models_allowed() -> bool:
    """Whether visitors may name any model ($SEARCH_ALLOW_CUSTOM_MODELS=1), not only the offered ones."""
    return os.environ.get(CUSTOM_MODELS_ENV, "").strip().lower() in {"1", "true", "yes"}


def model_choices() -> tuple[list[str], list[str]]:
    """The dense and reranker models the app offers: the model table's, plus the env defaults."""
    defaults = Settings.from_env()
    dense = [model_id for model_id, spec in KNOWN_MODELS.items() if spec.kind == "dense"]
    rerankers = [AUTO_RERANKER, RERANKER_V2_M3, RERANKER_BASE, LATE_INTERACTION_ID, LATE_INTERACTION_MINILM_ID]
    dense = list(dict.fromkeys([defaults.dense_model, *dense]))
    rerankers = list(dict.fromkeys([defaults.reranker_model, *rerankers]))
    return dense, rerankers


def backend_choices() -> list[str]:
    """The backends the app offers (search.loading.BACKENDS), plus the env default if it names another."""
    return list(dict.fromkeys([*BACKENDS, Settings.from_env().backend]))


def tei_url_field_shown() -> bool:
    """Whether the model panel offers the TEI URL field (unless $SEARCH_HIDE_TEI_URL=1)."""
    return not _truthy(HIDE_TEI_URL_ENV)


def _truthy(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() in {"1", "true", "yes"}


def _tei_url_field() -> gr.Textbox:
    # Empty by default: the operator's own endpoint ($SEARCH_TEI_URL) is used and never written into the page,
    # nor is the token, which only ever comes from the server's environment.
    shown = tei_url_field_shown()
    default = "set by the server" if os.environ.get(TEI_URL_ENV, "").strip() else "none set"
    return gr.Textbox("", label="TEI URL", visible=shown, elem_id="tei-url",
                      placeholder="https://…endpoints.huggingface.cloud (comma-separate several)",
                      info=f"the text-embeddings-inference endpoint the tei backend calls; empty: the server's "
                           f"default ({default}). A token, if needed, is the server's {TOKEN_ENV}, never typed here.")


def _tei_url(value: str | None) -> str | None:
    """The TEI URL a build uses: the field's, when it is shown and filled, else None (the server's $SEARCH_TEI_URL).

    With a token on the server, only the operator's own endpoints are accepted: the token must never be sent
    to an address a visitor typed."""
    value = (value or "").strip()
    if not value or not tei_url_field_shown():
        return None
    try:
        urls = endpoint_urls(value)
    except ValueError as error:
        raise _fail(str(error)) from None
    try:
        allowed = set(endpoint_urls(os.environ.get(TEI_URL_ENV, "")))
    except ValueError:
        allowed = set()
    if not _truthy(ALLOW_INTERNAL_TEI_ENV):
        # A visitor's URL must not make the server call addresses only it can reach (its own ports, the
        # cloud's metadata service, the private network); the operator's own endpoints are always allowed.
        for url in urls:
            why = None if url in allowed else internal_host(url)
            if why:
                raise _fail(f"The TEI URL {host_of(url)} is not a public address ({why}). Use a public endpoint; "
                            f"the operator can set it as {TEI_URL_ENV}, or allow internal addresses with "
                            f"{ALLOW_INTERNAL_TEI_ENV}=1.")
    has_token = bool(os.environ.get(TEI_TOKEN_ENV, "").strip() or os.environ.get(TOKEN_ENV, "").strip())
    if has_token:
        others = [host_of(url) for url in urls if url not in allowed]
        if others:
            raise _fail(f"This server holds a TEI token and sends it only to the endpoints its operator set "
                        f"({TEI_URL_ENV}); {', '.join(others)} is not one of them. Leave the TEI URL empty, or run "
                        "the app yourself to use another endpoint.")
    return ",".join(urls)


def _settings(window: int, overlap: int, dense_model: str, reranker_model: str, backend: str | None = None, *,
              compare_model: str | None = None, compare_backend: str | None = None,
              tei_url: str | None = None) -> Settings:
    dense_model, reranker_model = (dense_model or "").strip(), (reranker_model or "").strip()
    compare_model = "" if (compare_model or "").strip() in ("", NO_COMPARE) else compare_model.strip()
    compare_backend = "" if (compare_backend or "").strip() in ("", SAME_BACKEND) else compare_backend.strip()
    if not custom_models_allowed():
        dense_choices, reranker_choices = model_choices()
        for chosen, offered in ((dense_model, dense_choices), (reranker_model, reranker_choices),
                                (compare_model, reranker_choices)):
            if chosen and chosen not in offered:
                raise _fail(f"{chosen} is not one of the models offered here ({', '.join(offered)}). "
                            f"The operator can allow any model with {CUSTOM_MODELS_ENV}=1.")
    try:
        for chosen in (backend, compare_backend):
            if chosen:
                resolve_backend(chosen)  # an unknown one is refused here, with the choices, before anything is read
        return Settings.from_env(window=int(window), overlap=int(overlap), dense_model=dense_model or None,
                                 reranker_model=reranker_model or None, backend=(backend or "").strip() or None,
                                 compare_reranker_model=compare_model, compare_backend=compare_backend,
                                 tei_url=_tei_url(tei_url))
    except gr.Error:
        raise  # said already, and escaped once
    except (TypeError, ValueError) as error:
        raise _fail(f"Invalid settings: {error}") from None


def _share_options() -> share.ShareOptions:
    """What a link may name here: the samples, the offered models (any, if the operator allows custom ones),
    the backends, the sliders' ranges, and the page's defaults."""
    defaults = Settings.from_env()
    dense, rerankers = model_choices()
    custom = custom_models_allowed()
    return share.ShareOptions(
        samples=tuple(SAMPLE_NAMES), dense_models=None if custom else tuple(dense),
        rerankers=None if custom else tuple(rerankers), backends=tuple(backend_choices()),
        defaults=share.ViewState(rerank_depth=DEFAULT_RERANK_DEPTH, window=defaults.window, overlap=defaults.overlap,
                                 dense_model=defaults.dense_model, reranker_model=defaults.reranker_model,
                                 backend=defaults.backend))


def _view_state(sample: str, query: str, k: int, rerank_depth: int, candidates_from: str, score_view: str,
                collapse: bool, window: int, overlap: int, dense_model: str, reranker_model: str,
                backend: str, compare_model: str = NO_COMPARE, compare_backend: str = SAME_BACKEND) -> share.ViewState:
    # The page's controls as a view; a sample is named by its short name, reranker B "none" and its
    # backend "same as A" as no value.
    short = next((name for name, label in SAMPLE_NAMES.items() if label == sample), None)
    return share.ViewState(sample=short, query=(query or "").strip(), k=int(k), rerank_depth=int(rerank_depth),
                           candidates_from=candidates_from, score_view=score_view, collapse=bool(collapse),
                           window=int(window), overlap=int(overlap), dense_model=(dense_model or "").strip() or None,
                           reranker_model=(reranker_model or "").strip() or None,
                           backend=(backend or "").strip() or None,
                           compare_reranker=_chosen(compare_model, NO_COMPARE),
                           compare_backend=_chosen(compare_backend, SAME_BACKEND))


def _chosen(value: str | None, off: str) -> str | None:
    value = (value or "").strip()
    return None if value in ("", off) else value


def _judged_panel(session: judging.SessionJudgments) -> str:
    return evaluation_view.judged_metrics_html(judging.judged_metrics(session), len(session.qrels),
                                               session.judgment_count)


def _load_judgments(files: Sequence[str] | None) -> Judgments:
    if not files:
        raise _fail("Upload a qrels file and a queries file, or a BEIR folder as a .zip.")
    try:
        return load_judgments([Path(file) for file in files], names=[Path(file).name for file in files])
    except ValueError as error:
        raise _fail(str(error)) from None


def _stream(work, show, stop: threading.Event | None = None):
    """Run `work(report)` in a thread, where `report(event)` records progress; while it runs, yield
    `show(events, seconds)` with every event recorded so far (unless it returns None: nothing to update).
    Returns what `work` returned. Errors reach the user as messages, never as a trace."""
    events: queue.Queue[object] = queue.Queue()
    seen: list[object] = []
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work(events.put)
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    started = time.perf_counter()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(timeout=0.25)
            while not events.empty():
                seen.append(events.get())
            update = show(seen, time.perf_counter() - started)
            if update is not None:
                yield update
    finally:
        if worker.is_alive() and stop is not None:
            stop.set()  # the page went away mid-run: let the worker stop at its next query
    error = outcome.get("error")
    if isinstance(error, ValueError):
        raise _fail(str(error))
    if error is not None:
        logger.error("a background run failed", exc_info=error)
        raise _fail(f"The run failed unexpectedly ({type(error).__name__}); the details are in the server log. "
                    "Try other files or settings.")
    return outcome["value"]


def _fail(message: str) -> gr.Error:
    # Gradio renders message text as (sanitised) HTML, which still allows links and images: escape it,
    # since messages quote file names, ids and lines from uploads.
    return gr.Error(html.escape(message), print_exception=False)


def _warn(message: str) -> None:
    gr.Warning(html.escape(message))


def _info(message: str) -> None:
    gr.Info(html.escape(message))


def _require(index: Index | None) -> Index:
    if index is None:
        raise _fail(texts.NO_INDEX)
    return index


def main() -> None:
    """Serve the app; with SEARCH_SERVE_TEI=1 also TEI's /rerank, /embed, /info and /health under /tei.

    The routes are mounted after `launch()`, which creates the server app they are added to.
    """
    from search.serve import mount_tei_routes, tei_routes_enabled

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    demo = build_demo()
    if not tei_routes_enabled():
        demo.launch(**launch_kwargs())
        return
    server_app, _, _ = demo.launch(prevent_thread_lock=True, **launch_kwargs())
    mount_tei_routes(server_app)
    logger.info("TEI routes served under /tei (SEARCH_SERVE_TEI)")
    demo.block_thread()


if __name__ == "__main__":
    main()
