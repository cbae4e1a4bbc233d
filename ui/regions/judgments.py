"""The Judgments region: 0/1/2 marks given on the result cards, their metrics per stage, downloads (qrels,
queries, runs and the current results) and loading marks back to go on judging."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import gradio as gr

from search.export import result_to_dict, results_to_csv
from search.pipeline import Index
from ui import evaluation_view, judging

from .common import Updates, event_value, fail, info, unchanged, warn
from .evaluate import load_uploaded
from .search import ColumnView, column_updates, line_setting, result_updates
from .session import LatestSearch, downloads_folder, write_downloads

if TYPE_CHECKING:
    from .page import Page


class JudgingPanel(NamedTuple):
    """The session's marks: their metrics, downloads, and loading marks back."""

    metrics: gr.HTML
    download_button: gr.Button
    downloads: gr.File
    upload: gr.File
    load_button: gr.Button


def layout() -> JudgingPanel:
    with gr.Accordion("Judgments: your marks, their metrics, downloads", open=True):
        metrics = gr.HTML(judged_panel(judging.SessionJudgments()), elem_id="judged-metrics")
        with gr.Row():
            download_button = gr.Button("Download qrels, runs and results", elem_id="download-button")
            downloads = gr.File(label="Downloads", file_count="multiple", interactive=False, elem_id="downloads")
        with gr.Row():
            upload = gr.File(label="Load judgments to continue (qrels + queries)", file_count="multiple",
                             type="filepath")
            load_button = gr.Button("Load judgments")
    return JudgingPanel(metrics, download_button, downloads, upload, load_button)


def wire(page: Page) -> None:
    search, session, panel = page.search, page.session, page.judging
    callbacks = JudgingCallbacks(page)
    gr.on(
        [column.click for column in search.columns.values()], callbacks.judge_result,
        [session.index, session.judged, session.latest, *search.view],
        [session.judged, *search.columns.values(), search.chart, search.summary, panel.metrics],
        api_visibility="undocumented",
        show_progress="hidden",
    )
    panel.download_button.click(callbacks.download_judgments,
                                [session.judged, session.latest, search.score_line, search.score_view],
                                [panel.downloads], api_visibility="undocumented")
    panel.load_button.click(callbacks.load_session_judgments, [session.judged, panel.upload],
                            [session.judged, panel.metrics], api_visibility="undocumented")


class JudgingCallbacks:
    """The Judgments region's handlers."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def judge_result(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch,
                     k: int, score_view: str, collapse: bool, score_line: str, event: gr.EventData) -> Updates:
        """Record the grade a user gave a result card: the clicked column (`event.target`) is the stage, the
        card's buttons send its rank in that stage and the grade (see `ui.columns.COLUMN_JS`)."""
        result = latest.result
        name = self.page.search.stage_of(event.target)
        stage = result.stages.get(name) if result is not None and name else None
        hit_rank, grade = event_value(event, "hit_rank"), event_value(event, "grade")
        hit = next((h for h in stage.hits if h.rank == hit_rank), None) if stage is not None else None
        if index is None or hit is None or grade not in (0, 1, 2):
            return unchanged()
        session = judging.judge(session, result, hit.passage_id, int(grade))
        return {self.page.session.judged: session,
                **column_updates(self.page.search, index, result, session,
                                 ColumnView.of(k, score_view, collapse, score_line), list(result.stages),
                                 marks=latest.marks),
                **result_updates(self.page.search, index, result, session, k),
                self.page.judging.metrics: judged_panel(session)}

    def download_judgments(self, session: judging.SessionJudgments, latest: LatestSearch, score_line: str,
                           score_view: str, request: gr.Request) -> Updates:
        """Write the session's qrels, queries and runs (TREC) and the current results (CSV, JSON, with the
        Reranked columns' score line as shown) to files.
        A file that can't be written (an id with whitespace in a TREC file) is left out with a warning
        naming it and the id; every other file still comes."""
        result = latest.result
        if session.judgment_count == 0 and result is None:
            raise fail("Nothing to download yet: search, and judge a few results first.")
        files, left_out = judging.export_files(session)
        if result is not None:
            line = line_setting(score_line)
            files["results.csv"] = results_to_csv(result, score_line=line, score_view=score_view)
            files["results.json"] = json.dumps(result_to_dict(result, score_line=line, score_view=score_view),
                                               ensure_ascii=False, indent=1)
        for name, reason in left_out.items():
            warn(f"{name} was left out of the download: {reason}")
        return {self.page.judging.downloads: write_downloads(files, downloads_folder(request))}

    def load_session_judgments(self, session: judging.SessionJudgments, files: Sequence[str] | None) -> Updates:
        """Load qrels + queries downloaded earlier (or any TREC/BEIR judgments) to go on judging."""
        loaded = load_uploaded(files)
        for problem in loaded.problems[:3]:
            warn(str(problem))
        session = judging.merge(session, loaded)
        info(f"Loaded {sum(len(m) for m in loaded.qrels.values())} judgments on {len(loaded.queries)} queries.")
        return {self.page.session.judged: session, self.page.judging.metrics: judged_panel(session)}


def judged_panel(session: judging.SessionJudgments) -> str:
    """The metrics of the session's marks, per stage."""
    return evaluation_view.judged_metrics_html(judging.judged_metrics(session), len(session.qrels),
                                               session.judgment_count)
