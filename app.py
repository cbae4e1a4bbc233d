"""The Gradio app: upload a corpus, build its indexes, and compare BM25, dense, hybrid and reranked results.

Only the UI lives here; retrieval is `search.pipeline`, rendering is `ui/`. Each browser session
keeps its own index in `gr.State`; loaded models are shared read-only through the engine's caches.
"""

from __future__ import annotations

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import gradio as gr

from search.evaluation import depth_tradeoff, estimate_evaluation, evaluate
from search.export import report_to_dict, result_to_dict, results_to_csv
from search.judgments import Judgments, load_judgments, match_judgments
from search.models import (
    AUTO_RERANKER,
    DENSE_ENV,
    KNOWN_MODELS,
    RERANKER_BASE,
    RERANKER_ENV,
    RERANKER_V2_M3,
)
from search.pipeline import Index, Settings, build, default_cache_dir
from search.reading import ReadLimits, read_paths
from search.rerank import LATE_INTERACTION_ID
from search.types import FIRST_STAGES, STAGES, SearchResult
from ui import build_summary, evaluation_view, judging, stylesheet, texts
from ui import columns as result_columns

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
# A public Space must not let visitors load any Hub id or probe server folders: only the model table's
# models (and the operator's env defaults) are offered unless the operator opts in.
CUSTOM_MODELS_ENV = "SEARCH_ALLOW_CUSTOM_MODELS"
SESSION_TTL_S = 6 * 3600  # an idle session's index is dropped after this
BUNDLED_JUDGMENTS = ROOT / "corpora" / "polyglot-facts"
DEPTHS = (10, 20, 50, 100)


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


class StopFlag(threading.Event):
    """A session's "cancel the running evaluation" flag. Gradio deep-copies a State's default for each
    session; a fresh flag is that copy (an Event holds a lock, which can't be copied)."""

    def __deepcopy__(self, memo: dict) -> StopFlag:
        return StopFlag()


# -- callbacks: engine in, components out ----------------------------------------------------------

def build_corpus(files: Sequence[str] | None, sample: str, window: int, overlap: int, dense_model: str,
                 reranker_model: str, request: gr.Request) -> Iterator[tuple]:
    """Read, split, detect languages and index the uploaded files or a sample; streams step progress."""
    paths, names, cache_dir = _corpus_inputs(files, sample, request)
    settings = _settings(window, overlap, dense_model, reranker_model)
    limit = max_upload_mb() * 1_000_000

    def work(report: Callable[[object], None]):
        report(("read", 0, 1))
        read = read_paths(paths, names=names, limits=ReadLimits(max_total_bytes=limit, max_file_bytes=limit))
        index = _build_index(read, settings, lambda *event: report(event), cache_dir)
        return index, index.reranker()  # load the reranker now: a problem with it shows before any search

    def show(events: list, seconds: float) -> tuple:
        progress = {step: (done, total) for step, done, total in events}
        return gr.skip(), build_summary.render_build_progress(progress, seconds), gr.skip(), gr.skip(), gr.skip()

    index, loaded = yield from _stream(work, show)
    skipped = index.report.skipped
    if skipped:
        _warn(f"{len(skipped)} file(s) or line(s) skipped, e.g. {skipped[0]}. The rest was indexed; "
              "see the list under the summary.")
    summary = build_summary.render_build_summary(index.report) + build_summary.render_reranker(loaded)
    build_json = {**report_to_dict(index.report), "reranker": loaded.reranker.label,
                  "reranker_fallback_reason": loaded.fallback_reason}
    yield index, "", summary, build_summary.languages_frame(index.report), build_json


@gpu
def _build_index(read, settings: Settings, progress, cache_dir: Path) -> Index:
    return build(read, settings, progress=progress, cache_dir=cache_dir)


def first_stages(index: Index | None, session: judging.SessionJudgments, query: str, k: int, rerank_depth: int,
                 candidates_from: str, score_view: str, collapse: bool) -> tuple:
    """BM25, dense and hybrid for the query; the Reranked column shows a placeholder until `rerank_stage`."""
    index = _require(index)
    try:
        result = index.retrieve(query, k=int(k), rerank_depth=int(rerank_depth), candidates_from=candidates_from)
    except ValueError as error:
        raise _fail(str(error)) from None
    columns = _columns(index, result, session, k, score_view, collapse)[:3]
    if result.rerank_depth:
        pending = result_columns.render_rerank_pending(result, index.reranker().reranker.label)
    else:
        pending = result_columns.render_notice("Reranked", "Reranking is off (rerank depth 0).")
    return result, *columns, pending, result_columns.render_summary(result, int(k))


def rerank_stage(index: Index | None, session: judging.SessionJudgments, result: SearchResult | None, k: int,
                 score_view: str, collapse: bool) -> tuple:
    """Add the reranker's column to the first stages already on screen."""
    if index is None or result is None or not result.rerank_depth or "rerank" in result.stages:
        return gr.skip(), gr.skip(), gr.skip()
    try:
        result = _rerank(index, result)
    except Exception as error:  # noqa: BLE001 - the column says what failed; the rest keeps working
        logger.error("reranking failed", exc_info=error)
        return gr.skip(), result_columns.render_notice("Reranked", f"Reranking failed ({type(error).__name__}); "
                                               "the first stages are unaffected. Details are in the server log."),
        gr.skip()
    column = _columns(index, result, session, k, score_view, collapse)[3]
    return result, column, result_columns.render_summary(result, int(k))


@gpu
def _rerank(index: Index, result: SearchResult) -> SearchResult:
    return index.rerank(result)


def search_again(index: Index | None, session: judging.SessionJudgments, query: str, k: int, rerank_depth: int,
                 candidates_from: str, score_view: str, collapse: bool) -> tuple:
    """After k changes: search again (deeper lists) if there is something on screen, else do nothing."""
    if index is None or not (query or "").strip():
        return (gr.skip(),) * 6
    return first_stages(index, session, query, k, rerank_depth, candidates_from, score_view, collapse)


def rerender(index: Index | None, session: judging.SessionJudgments, result: SearchResult | None, k: int,
             score_view: str, collapse: bool) -> tuple:
    """Draw the last result again with another k, score view or document collapsing (no new search)."""
    if index is None or result is None:
        return (gr.skip(),) * 5
    return *_columns(index, result, session, k, score_view, collapse), result_columns.render_summary(result, int(k))


def judge_result(index: Index | None, session: judging.SessionJudgments, result: SearchResult | None, k: int,
                 score_view: str, collapse: bool, event: gr.EventData) -> tuple:
    """Record the grade a user gave a result card (sent by the card's 0/1/2 buttons)."""
    data = getattr(event, "_data", None) or {}
    stage_name = str(getattr(event.target, "elem_id", "")).removeprefix("column-")
    stage = result.stages.get(stage_name) if result is not None else None
    hit = next((h for h in stage.hits if h.rank == data.get("hit_rank")), None) if stage is not None else None
    grade = data.get("grade")
    if index is None or hit is None or grade not in (0, 1, 2):
        return (gr.skip(),) * 6
    session = judging.judge(session, result, hit.passage_id, int(grade))
    return (session, *_columns(index, result, session, k, score_view, collapse), _judged_panel(session))


def download_judgments(session: judging.SessionJudgments, result: SearchResult | None) -> list[str]:
    """Write the session's qrels, queries and runs (TREC) and the current results (CSV, JSON) to files."""
    try:
        files = judging.export_files(session)
    except ValueError as error:  # e.g. an id with a space, which TREC files cannot hold
        raise _fail(f"Cannot write TREC files: {error}") from None
    if result is not None:
        files["results.csv"] = results_to_csv(result)
        files["results.json"] = json.dumps(result_to_dict(result), ensure_ascii=False, indent=1)
    if not files.get("qrels.trec") and result is None:
        raise _fail("Nothing to download yet: search, and judge a few results first.")
    folder = Path(tempfile.mkdtemp(prefix="judgments-"))
    for name, content in files.items():
        (folder / name).write_text(content, encoding="utf-8")
    return [str(folder / name) for name in files]


def load_session_judgments(session: judging.SessionJudgments, files: Sequence[str] | None) -> tuple:
    """Load qrels + queries downloaded earlier (or any TREC/BEIR judgments) to go on judging."""
    loaded = _load_judgments(files)
    for problem in loaded.problems[:3]:
        _warn(str(problem))
    session = judging.merge(session, loaded)
    _info(f"Loaded {sum(len(m) for m in loaded.qrels.values())} judgments on {len(loaded.queries)} queries.")
    return session, _judged_panel(session)


def load_eval_judgments(index: Index | None, files: Sequence[str] | None, bundled: bool, stages: list[str],
                        rerank_depth: int, candidates_from: str) -> tuple:
    """Load judgments for the Evaluate tab, check them against the corpus and estimate a run's time."""
    index = _require(index)
    judgments = load_judgments([BUNDLED_JUDGMENTS]) if bundled else _load_judgments(files)
    match = match_judgments(judgments, index.passages)
    if match.matched == 0:
        _warn("None of the judged ids is in this corpus: were these judgments made for another corpus?")
    estimate = estimate_evaluation(
        index, len(judgments.queries), stages=stages, rerank_depth=int(rerank_depth),
        candidates_from=candidates_from, sample_queries=[query.text for query in judgments.queries[:2]])
    return judgments, evaluation_view.judgments_summary(judgments, match, estimate)


def run_evaluation(index: Index | None, judgments: Judgments | None, stop: StopFlag, stages: list[str],
                   rerank_depth: int, candidates_from: str, max_queries: float | None, first: str,
                   second: str) -> Iterator[tuple]:
    """Run every judged query through the chosen stages, streaming progress; Cancel keeps what finished."""
    index = _require(index)
    if judgments is None:
        raise _fail("Load judgments first (bundled, or upload qrels and queries).")
    if int(rerank_depth) == 0 and "rerank" in stages:
        stages = [stage for stage in stages if stage != "rerank"]
        _info("Rerank depth 0: the Reranked stage is left out.")
    if not stages:
        raise _fail("Choose at least one stage to evaluate.")
    stop.clear()
    limit = int(max_queries) if max_queries else None

    def work(progress: Callable[[int, int], None]):
        return evaluate(index, judgments, stages=stages, rerank_depth=int(rerank_depth),
                        candidates_from=candidates_from, max_queries=limit, progress=progress,
                        should_stop=stop.is_set)

    def show(events: list, seconds: float) -> tuple:
        return (gr.skip(), evaluation_view.run_progress(*(events[-1] if events else (0, 0)), seconds),
                *(gr.skip(),) * 4)

    report = yield from _stream(lambda report: work(lambda done, total: report((done, total))), show, stop)
    if report.cancelled:
        _info(f"Cancelled: the metrics cover the {report.queries} queries that finished.")
    yield (report, "", evaluation_view.metrics_frame(report), evaluation_view.chart_frame(report),
           evaluation_view.per_query_frame(report, first, second), report.to_json())


def resort_queries(report, first: str, second: str):
    """Sort the per-query table by the change from one stage to another."""
    return evaluation_view.per_query_frame(report, first, second) if report is not None else gr.skip()


def open_query(table, event: gr.SelectData) -> tuple:
    """Clicking a row of the per-query table opens its query in the Search tab."""
    row = event.index[0] if isinstance(event.index, list | tuple) else event.index
    query = str(table.iloc[row]["query"]) if table is not None and "query" in table else ""
    if not query:
        return gr.skip(), gr.skip()
    return query, gr.Tabs(selected="search")


def run_depth_tradeoff(index: Index | None, judgments: Judgments | None, stop: StopFlag,
                       candidates_from: str, max_queries: float | None) -> Iterator[tuple]:
    """nDCG@10 and time per query against rerank depth, for the loaded judgments."""
    index = _require(index)
    if judgments is None:
        raise _fail("Load judgments first (bundled, or upload qrels and queries).")
    stop.clear()
    limit = int(max_queries) if max_queries else None

    def work(progress: Callable[[int, int], None]):
        return depth_tradeoff(index, judgments, depths=DEPTHS, candidates_from=candidates_from, max_queries=limit,
                              progress=progress, should_stop=stop.is_set)

    def show(events: list, seconds: float) -> tuple:
        return evaluation_view.run_progress(*(events[-1] if events else (0, 0)), seconds), gr.skip(), gr.skip()

    points = yield from _stream(lambda report: work(lambda done, total: report((done, total))), show, stop)
    quality, latency = evaluation_view.depth_frames(points)
    yield "", quality, latency


def search_api(index: Index | None, query: str, k: int, rerank_depth: int, candidates_from: str) -> dict:
    """Every stage for a query as JSON (the `search` API endpoint)."""
    index = _require(index)
    try:
        result = index.retrieve(query, k=int(k), rerank_depth=int(rerank_depth), candidates_from=candidates_from)
    except ValueError as error:
        raise _fail(str(error)) from None
    if result.rerank_depth:
        result = _rerank(index, result)
    return result_to_dict(result, int(k))


def cancel_run(stop: StopFlag) -> None:
    stop.set()


def forget_session(request: gr.Request) -> None:
    """Delete the indexes a closed session built from its uploads."""
    shutil.rmtree(_session_cache(request), ignore_errors=True)


# -- helpers -------------------------------------------------------------------------------------

def _corpus_inputs(files: Sequence[str] | None, sample: str, request: gr.Request):
    if files:
        paths = [Path(file) for file in files]
        total = sum(path.stat().st_size for path in paths if path.exists())
        if total > max_upload_mb() * 1_000_000:
            raise _fail(f"The upload is {total / 1e6:.1f} MB; the limit is {max_upload_mb()} MB "
                        f"(set by {UPLOAD_ENV}). Upload fewer or smaller files.")
        # Uploads keep their own name as the last path part; messages should name that, not a temp path.
        return paths, [path.name for path in paths], _session_cache(request)
    if sample in SAMPLES:
        return [SAMPLES[sample]], [SAMPLES[sample].name], default_cache_dir() / "samples"
    raise _fail("Upload one or more files, or choose a sample corpus, then press Build index.")


def _session_cache(request: gr.Request) -> Path:
    # Per-session, so one user's "reused the saved index" never reveals what another user uploaded.
    session = hashlib.sha256(str(request.session_hash or "anonymous").encode()).hexdigest()[:32]
    return default_cache_dir() / "sessions" / session


def custom_models_allowed() -> bool:
    """Whether visitors may name any model ($SEARCH_ALLOW_CUSTOM_MODELS=1), not only the offered ones."""
    return os.environ.get(CUSTOM_MODELS_ENV, "").strip().lower() in {"1", "true", "yes"}


def model_choices() -> tuple[list[str], list[str]]:
    """The dense and reranker models the app offers: the model table's, plus the env defaults."""
    defaults = Settings.from_env()
    dense = [model_id for model_id, spec in KNOWN_MODELS.items() if spec.kind == "dense"]
    rerankers = [AUTO_RERANKER, RERANKER_V2_M3, RERANKER_BASE, LATE_INTERACTION_ID]
    dense = list(dict.fromkeys([defaults.dense_model, *dense]))
    rerankers = list(dict.fromkeys([defaults.reranker_model, *rerankers]))
    return dense, rerankers


def _settings(window: int, overlap: int, dense_model: str, reranker_model: str) -> Settings:
    dense_model, reranker_model = (dense_model or "").strip(), (reranker_model or "").strip()
    if not custom_models_allowed():
        dense_choices, reranker_choices = model_choices()
        for chosen, offered in ((dense_model, dense_choices), (reranker_model, reranker_choices)):
            if chosen and chosen not in offered:
                raise _fail(f"{chosen} is not one of the models offered here ({', '.join(offered)}). "
                            f"The operator can allow any model with {CUSTOM_MODELS_ENV}=1.")
    try:
        return Settings.from_env(window=int(window), overlap=int(overlap), dense_model=dense_model or None,
                                 reranker_model=reranker_model or None)
    except (TypeError, ValueError) as error:
        raise _fail(f"Invalid settings: {error}") from None


def _columns(index: Index, result: SearchResult, session: judging.SessionJudgments, k: int, score_view: str,
             collapse: bool) -> list[str]:
    grades = session.grades_for(result)
    return [result_columns.render_column(result.stages[name], result, k=int(k), score_view=score_view,
                                 collapse_documents=collapse, corpus_languages=index.languages, judgments=grades)
            if name in result.stages else "" for name in (*FIRST_STAGES, "rerank")]


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
    `show(events, seconds)` with every event recorded so far. Returns what `work` returned. Errors reach
    the user as messages, never as a trace."""
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
            yield show(seen, time.perf_counter() - started)
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


# -- layout --------------------------------------------------------------------------------------

def build_demo() -> gr.Blocks:
    """The whole app as a `gr.Blocks`; launch it with `build_demo().launch(**launch_kwargs())`."""
    defaults = Settings.from_env()
    with gr.Blocks(title="Multilingual retrieve-and-rerank explorer") as demo:
        index_state = gr.State(None, time_to_live=SESSION_TTL_S)
        result_state = gr.State(None, time_to_live=SESSION_TTL_S)
        judged_state = gr.State(judging.SessionJudgments(), time_to_live=SESSION_TTL_S)
        eval_judgments_state = gr.State(None, time_to_live=SESSION_TTL_S)
        report_state = gr.State(None, time_to_live=SESSION_TTL_S)
        stop_state = gr.State(StopFlag())
        gr.Markdown(texts.INTRO)

        with gr.Tabs() as tabs:
            with gr.Tab("Search", id="search"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        files = gr.File(label=f"Upload files (up to {max_upload_mb()} MB in all)",
                                        file_count="multiple", type="filepath", elem_id="corpus-files")
                        sample = gr.Dropdown([NO_SAMPLE, *SAMPLES], value=next(iter(SAMPLES)),
                                             label="…or a sample corpus", info="used when no file is uploaded",
                                             elem_id="sample-corpus")
                        with gr.Accordion("Passages and models", open=False):
                            window = gr.Slider(32, 1024, value=defaults.window, step=8, label="Passage window (words)",
                                               info="one character counts as a word in Chinese, Japanese, Thai…")
                            overlap = gr.Slider(0, 256, value=defaults.overlap, step=4, label="Overlap (words)")
                            dense_choices, reranker_choices = model_choices()
                            dense_model = gr.Dropdown(dense_choices, value=defaults.dense_model, label="Dense model",
                                                      allow_custom_value=custom_models_allowed(),
                                                      info=f"default from env {DENSE_ENV}")
                            reranker_model = gr.Dropdown(reranker_choices, value=defaults.reranker_model,
                                                         allow_custom_value=custom_models_allowed(), label="Reranker",
                                                         info=f"default from env {RERANKER_ENV}")
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
                gr.Examples([[text] for text in EXAMPLE_QUERIES], inputs=[query],
                            label="Example queries (polyglot-facts)")
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
                    columns = [gr.HTML(elem_id=f"column-{name}", min_height=120, js_on_load=result_columns.JUDGE_JS)
                               for name in (*FIRST_STAGES, "rerank")]
                summary = gr.HTML(elem_id="search-summary")
                with gr.Accordion("Judgments: your marks, their metrics, downloads", open=True):
                    judged_panel = gr.HTML(_judged_panel(judging.SessionJudgments()), elem_id="judged-metrics")
                    with gr.Row():
                        download_button = gr.Button("Download qrels, runs and results", elem_id="download-button")
                        downloads = gr.File(label="Downloads", file_count="multiple", interactive=False,
                                            elem_id="downloads")
                    with gr.Row():
                        judgments_upload = gr.File(label="Load judgments to continue (qrels + queries)",
                                                   file_count="multiple", type="filepath")
                        load_back_button = gr.Button("Load judgments")

            with gr.Tab("Evaluate", id="evaluate"):
                gr.Markdown(texts.EVALUATE_HELP)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        bundled_button = gr.Button("Use the bundled polyglot-facts judgments",
                                                   elem_id="bundled-judgments")
                        eval_files = gr.File(label="…or upload qrels + queries, or a BEIR folder as .zip",
                                             file_count="multiple", type="filepath")
                        upload_judgments_button = gr.Button("Load uploaded judgments")
                        eval_stages = gr.CheckboxGroup(list(STAGES), value=list(STAGES), label="Stages")
                        with gr.Row():
                            eval_depth = gr.Slider(0, 100, value=20, step=1, label="Rerank depth")
                            eval_candidates = gr.Radio(list(FIRST_STAGES), value="hybrid", label="Candidates from")
                        eval_max = gr.Number(0, label="Max queries (0 = all)", precision=0, minimum=0)
                        with gr.Row():
                            run_button = gr.Button("Run evaluation", variant="primary", elem_id="run-eval")
                            cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel-eval")
                    with gr.Column(scale=3):
                        judgments_info = gr.HTML(elem_id="judgments-summary")
                        eval_progress = gr.HTML(elem_id="eval-progress")
                        metrics_table = gr.Dataframe(label="Metrics per stage", interactive=False,
                                                     elem_id="metrics-table")
                        metrics_chart = gr.BarPlot(x="stage", y="value", color="stage", title="nDCG@10 by stage",
                                                   y_lim=[0, 1], height=260, sort=None, elem_id="metrics-chart")
                with gr.Row():
                    compare_first = gr.Dropdown(list(STAGES), value="hybrid", label="Change from")
                    compare_second = gr.Dropdown(list(STAGES), value="rerank", label="to")
                per_query_table = gr.Dataframe(label="Per query (click a row to open it in Search)", interactive=False,
                                               elem_id="per-query-table")
                depth_button = gr.Button("Plot rerank depth against quality and time", elem_id="depth-button")
                depth_progress = gr.HTML()
                with gr.Row():
                    depth_quality = gr.LinePlot(x="rerank depth", y="nDCG@10", title="nDCG@10 by rerank depth",
                                                height=240, elem_id="depth-quality")
                    depth_latency = gr.LinePlot(x="rerank depth", y="seconds per query", height=240,
                                                title="Time per query by rerank depth (from measured pairs/s)",
                                                elem_id="depth-latency")
                eval_json = gr.JSON(visible=False)

        # The API's search endpoint: every stage as JSON in one call (hidden from the page).
        api_search_button = gr.Button(visible=False)
        api_result = gr.JSON(visible=False)

        build_button.click(
            build_corpus, [files, sample, window, overlap, dense_model, reranker_model],
            [index_state, build_progress, build_summary, languages_plot, build_json],
            api_name="build_index", concurrency_limit=1, concurrency_id="build", show_progress="minimal",
        )
        view = [k, score_view, collapse]
        gr.on(
            [search_button.click, query.submit], first_stages,
            [index_state, judged_state, query, k, rerank_depth, candidates_from, score_view, collapse],
            [result_state, *columns, summary], api_visibility="undocumented", concurrency_limit=4,
            show_progress="minimal",
        ).success(
            rerank_stage, [index_state, judged_state, result_state, *view], [result_state, columns[3], summary],
            api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank", show_progress="hidden",
        )
        gr.on(  # a larger k needs deeper lists, so k searches again; the view toggles only redraw
            [k.release], search_again,
            [index_state, judged_state, query, k, rerank_depth, candidates_from, score_view, collapse],
            [result_state, *columns, summary], api_visibility="undocumented", concurrency_limit=4,
            show_progress="minimal", trigger_mode="always_last",
        ).success(
            rerank_stage, [index_state, judged_state, result_state, *view], [result_state, columns[3], summary],
            api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank", show_progress="hidden",
        )
        gr.on(
            [score_view.change, collapse.change], rerender,
            [index_state, judged_state, result_state, *view], [*columns, summary],
            api_visibility="undocumented", show_progress="hidden",
        )
        gr.on(
            [column.click for column in columns], judge_result, [index_state, judged_state, result_state, *view],
            [judged_state, *columns, judged_panel], api_visibility="undocumented", show_progress="hidden",
        )
        download_button.click(download_judgments, [judged_state, result_state], [downloads],
                              api_visibility="undocumented")
        load_back_button.click(load_session_judgments, [judged_state, judgments_upload], [judged_state, judged_panel],
                               api_visibility="undocumented")
        api_search_button.click(
            search_api, [index_state, query, k, rerank_depth, candidates_from], [api_result], api_name="search",
            concurrency_limit=1, concurrency_id="rerank",
        )

        load_inputs = [eval_stages, eval_depth, eval_candidates]
        bundled_button.click(lambda index, *rest: load_eval_judgments(index, None, True, *rest),
                             [index_state, *load_inputs], [eval_judgments_state, judgments_info],
                             api_name="load_bundled_judgments")
        upload_judgments_button.click(lambda index, files, *rest: load_eval_judgments(index, files, False, *rest),
                                      [index_state, eval_files, *load_inputs], [eval_judgments_state, judgments_info],
                                      api_visibility="undocumented")
        run_button.click(
            run_evaluation,
            [index_state, eval_judgments_state, stop_state, *load_inputs, eval_max, compare_first, compare_second],
            [report_state, eval_progress, metrics_table, metrics_chart, per_query_table, eval_json],
            api_name="evaluate", concurrency_limit=1, concurrency_id="evaluate", show_progress="minimal",
        )
        cancel_button.click(cancel_run, [stop_state], None, api_visibility="undocumented", queue=False)
        gr.on([compare_first.change, compare_second.change], resort_queries,
              [report_state, compare_first, compare_second], [per_query_table], api_visibility="undocumented")
        per_query_table.select(open_query, [per_query_table], [query, tabs], api_visibility="undocumented").success(
            first_stages, [index_state, judged_state, query, k, rerank_depth, candidates_from, score_view, collapse],
            [result_state, *columns, summary], api_visibility="undocumented", concurrency_limit=4,
        ).success(
            rerank_stage, [index_state, judged_state, result_state, *view], [result_state, columns[3], summary],
            api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank",
        )
        depth_button.click(
            run_depth_tradeoff, [index_state, eval_judgments_state, stop_state, eval_candidates, eval_max],
            [depth_progress, depth_quality, depth_latency], api_visibility="undocumented", concurrency_limit=1,
            concurrency_id="evaluate",
        )
        demo.unload(forget_session)
    demo.queue(default_concurrency_limit=4, max_size=64)
    return demo


def launch_kwargs() -> dict[str, object]:
    """Options every launch of the app uses: its stylesheet and the upload limit."""
    return {"css": stylesheet(), "max_file_size": f"{max_upload_mb()}mb"}


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    build_demo().launch(**launch_kwargs())
