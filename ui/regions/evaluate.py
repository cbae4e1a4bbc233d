"""The Evaluate tab: judgments in (bundled, TREC + queries, or a BEIR zip), metrics per stage, per-query
changes between two stages and the rerank-depth trade-off out, with the same numbers as
`python -m search eval` (the engine's `search.evaluation`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import gradio as gr

from search import stages
from search.evaluation import DEPTHS, depth_tradeoff, estimate_evaluation, evaluate
from search.judgments import Judgments, load_judgments, match_judgments
from search.pipeline import Index
from ui import evaluation_view, texts
from ui.labels import stage_title

from .common import Updates, fail, info, require, stream, unchanged, warn
from .page import BUNDLED_JUDGMENTS, AppContext
from .search import COLUMN_STAGES, wire_search_chain
from .session import StopFlag

if TYPE_CHECKING:
    from .page import Page


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


def layout(ctx: AppContext) -> EvaluatePanel:
    settings = ctx.settings
    stage_choices = [(stage_title(name), name) for name in COLUMN_STAGES]
    gr.Markdown(texts.EVALUATE_HELP)
    with gr.Row(equal_height=False):
        with gr.Column(scale=2):
            bundled_button = gr.Button("Use the bundled polyglot-facts judgments", elem_id="bundled-judgments")
            files = gr.File(label="…or upload qrels + queries, or a BEIR folder as .zip", file_count="multiple",
                            type="filepath")
            upload_button = gr.Button("Load uploaded judgments")
            stage_box = gr.CheckboxGroup(stage_choices, value=[*stages.FIRST_STAGES, stages.RERANK], label="Stages",
                                         info="a reranker B (Compare with, in the model panel) is a stage too")
            with gr.Row():
                low, high, step = (int(value) for value in _limits("rerank_depth"))
                rerank_depth = gr.Slider(low, high, value=settings.rerank_depth, step=step, label="Rerank depth")
                candidates_from = gr.Radio(list(stages.FIRST_STAGES), value=settings.candidates_from,
                                           label="Candidates from")
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
        compare_first = gr.Dropdown(stage_choices, value="hybrid", label="Change from")
        compare_second = gr.Dropdown(stage_choices, value=stages.RERANK, label="to")
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
    return EvaluatePanel(bundled_button, files, upload_button, stage_box, rerank_depth, candidates_from, max_queries,
                         run_button, cancel_button, judgments_info, progress, metrics_table, metrics_chart,
                         compare_first, compare_second, per_query_table, depth_button, depth_progress,
                         depth_quality, depth_latency, eval_json)


def _limits(name: str) -> tuple[float, float, float]:
    from search import config

    return config.limits(name)


def cleared_outputs(panel: EvaluatePanel) -> list[gr.components.Component]:
    """What a new build clears in this tab (see `cleared`)."""
    return [panel.stages, panel.judgments_info, panel.progress, panel.metrics_table, panel.metrics_chart,
            panel.per_query_table, panel.depth_progress, panel.depth_quality, panel.depth_latency, panel.eval_json]


def cleared(panel: EvaluatePanel, index: Index | None, chosen: Sequence[str] | None) -> Updates:
    """After a build: the stages the new index has, ticked as before (a new reranker's ticked, a gone one's
    unticked), and no results or judgments of the previous corpus left standing."""
    rerankers = set(index.rerank_stages) if index is not None else set()
    kept = [name for name in (chosen or []) if not stages.is_rerank(name) or name in rerankers]
    ticked = stages.ordered([*kept, *(name for name in rerankers if name != stages.RERANK and name not in kept)])
    note = ("A new corpus was built: load judgments for it (bundled or uploaded), then run the evaluation."
            if index is not None else "")
    return {panel.stages: gr.CheckboxGroup(value=list(ticked)),
            panel.judgments_info: evaluation_view.render_note(note) if note else "",
            panel.progress: "", panel.metrics_table: None, panel.metrics_chart: None, panel.per_query_table: None,
            panel.depth_progress: "", panel.depth_quality: None, panel.depth_latency: None, panel.eval_json: None}


# -- wiring ---------------------------------------------------------------------------------------------

def wire(page: Page, ctx: AppContext) -> None:
    panel, session = page.evaluate, page.session
    callbacks = EvaluateCallbacks(page)
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
    panel.cancel_button.click(_cancel_run, [session.stop], None, api_visibility="undocumented", queue=False)
    gr.on([panel.compare_first.change, panel.compare_second.change], callbacks.resort_queries,
          [session.report, panel.compare_first, panel.compare_second], [panel.per_query_table],
          api_visibility="undocumented")
    opened = panel.per_query_table.select(callbacks.open_query, [panel.per_query_table],
                                          [page.search.query, page.tabs], api_visibility="undocumented")
    from .search import SearchCallbacks

    wire_search_chain(page, opened.success, SearchCallbacks(page).first_stages)
    panel.depth_button.click(
        callbacks.run_depth_tradeoff,
        [session.index, session.eval_judgments, session.stop, panel.candidates_from, panel.max_queries],
        [panel.depth_progress, panel.depth_quality, panel.depth_latency], api_visibility="undocumented",
        concurrency_limit=1, concurrency_id="evaluate",
    )


def _cancel_run(stop: StopFlag) -> None:
    stop.set()


# -- callbacks ------------------------------------------------------------------------------------------

class EvaluateCallbacks:
    """The Evaluate tab's handlers."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.panel = page.evaluate

    def load_bundled_judgments(self, index: Index | None, stage_names: list[str], rerank_depth: int,
                               candidates_from: str) -> Updates:
        """The polyglot-facts judgments for the Evaluate tab (the `load_bundled_judgments` API endpoint)."""
        require(index)
        return self._load(index, load_judgments([BUNDLED_JUDGMENTS]), stage_names, rerank_depth, candidates_from)

    def load_uploaded_judgments(self, index: Index | None, files: Sequence[str] | None, stage_names: list[str],
                                rerank_depth: int, candidates_from: str) -> Updates:
        """Uploaded qrels + queries (or a BEIR zip) for the Evaluate tab."""
        require(index)
        return self._load(index, load_uploaded(files), stage_names, rerank_depth, candidates_from)

    def run_evaluation(self, index: Index | None, judgments: Judgments | None, stop: StopFlag,
                       stage_names: list[str], rerank_depth: int, candidates_from: str, max_queries: float | None,
                       first: str, second: str) -> Iterator[Updates]:
        """Run every judged query through the chosen stages, streaming progress; Cancel keeps what finished."""
        index = require(index)
        if judgments is None:
            raise fail("Load judgments first (bundled, or upload qrels and queries).")
        chosen = runnable_stages(index, stage_names, int(rerank_depth))
        if not chosen:
            raise fail("Choose at least one stage to evaluate.")
        stop.clear()
        limit = int(max_queries) if max_queries else None

        def work(report: Callable[[object], None]):
            return evaluate(index, judgments, stages=chosen, rerank_depth=int(rerank_depth),
                            candidates_from=candidates_from, max_queries=limit,
                            progress=lambda done, total: report((done, total)), should_stop=stop.is_set)

        report = yield from stream(work, partial(_show_run_progress, self.panel.progress), stop)
        if report.cancelled:
            info(f"Cancelled: the metrics cover the {report.queries} queries that finished.")
        yield {
            self.page.session.report: report,
            self.panel.progress: "",
            self.panel.metrics_table: evaluation_view.metrics_frame(report),
            self.panel.metrics_chart: evaluation_view.chart_frame(report),
            self.panel.per_query_table: evaluation_view.per_query_frame(report, first, second),
            self.panel.eval_json: report.to_json(),
        }

    def resort_queries(self, report, first: str, second: str) -> Updates:
        """Sort the per-query table by the change from one stage to another."""
        if report is None:
            return unchanged()
        return {self.panel.per_query_table: evaluation_view.per_query_frame(report, first, second)}

    def open_query(self, table, event: gr.SelectData) -> Updates:
        """Clicking a row of the per-query table opens its query in the Search tab."""
        row = event.index[0] if isinstance(event.index, list | tuple) else event.index
        query = str(table.iloc[row]["query"]) if table is not None and "query" in table else ""
        if not query:
            return unchanged()
        return {self.page.search.query: query, self.page.tabs: gr.Tabs(selected="search")}

    def run_depth_tradeoff(self, index: Index | None, judgments: Judgments | None, stop: StopFlag,
                           candidates_from: str, max_queries: float | None) -> Iterator[Updates]:
        """nDCG@10 and time per query against rerank depth, for the loaded judgments, one line per reranker."""
        index = require(index)
        if judgments is None:
            raise fail("Load judgments first (bundled, or upload qrels and queries).")
        stop.clear()
        limit = int(max_queries) if max_queries else None

        def work(report: Callable[[object], None]):
            return depth_tradeoff(index, judgments, depths=DEPTHS, candidates_from=candidates_from,
                                  max_queries=limit, progress=lambda done, total: report((done, total)),
                                  should_stop=stop.is_set)

        points = yield from stream(work, partial(_show_run_progress, self.panel.depth_progress), stop)
        quality, latency = evaluation_view.depth_frames(points)
        yield {self.panel.depth_progress: "", self.panel.depth_quality: quality, self.panel.depth_latency: latency}

    def _load(self, index: Index, judgments: Judgments, stage_names: list[str], rerank_depth: int,
              candidates_from: str) -> Updates:
        match = match_judgments(judgments, index.passages)
        if match.matched == 0:
            warn("None of the judged ids is in this corpus: were these judgments made for another corpus?")
        estimate = estimate_evaluation(
            index, len(judgments.queries), stages=runnable_stages(index, stage_names, int(rerank_depth), quiet=True),
            rerank_depth=int(rerank_depth), candidates_from=candidates_from,
            sample_queries=[query.text for query in judgments.queries[:2]])
        return {self.page.session.eval_judgments: judgments,
                self.panel.judgments_info: evaluation_view.judgments_summary(judgments, match, estimate)}


def runnable_stages(index: Index, chosen: Sequence[str], rerank_depth: int, *, quiet: bool = False) -> list[str]:
    """The chosen stages this index can run at this depth: a reranker's stage only with depth > 0 and when
    the index has that reranker (each one left out is said, unless `quiet`)."""
    kept = []
    for name in chosen:
        if stages.is_rerank(name) and rerank_depth == 0:
            reason = "rerank depth 0."
        elif stages.is_rerank(name) and name not in index.rerank_stages:
            reason = "this index has no such reranker (Compare with, in the model panel, then Build index)."
        else:
            kept.append(name)
            continue
        if not quiet:
            info(f"The {stage_title(name)} stage is left out: {reason}")
    return kept


def load_uploaded(files: Sequence[str] | None) -> Judgments:
    """Judgments from uploaded files (qrels + queries, or a BEIR zip); the user's error names the file."""
    if not files:
        raise fail("Upload a qrels file and a queries file, or a BEIR folder as a .zip.")
    try:
        return load_judgments([Path(file) for file in files], names=[Path(file).name for file in files])
    except ValueError as error:
        raise fail(str(error)) from None


def _show_run_progress(component: gr.HTML, events: list, seconds: float) -> Updates:
    return {component: evaluation_view.run_progress(*(events[-1] if events else (0, 0)), seconds)}
