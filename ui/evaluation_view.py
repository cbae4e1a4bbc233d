"""Evaluation results -> tables, chart data and HTML for the app's Evaluate tab and judging panel."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from search.evaluation import DepthPoint, Estimate, EvalReport
from search.judgments import JudgmentMatch, Judgments
from search.stages import ordered
from search.stages import stage as stage_info

from .build_summary import ProgressStep, render_progress
from .html import Markup, element
from .labels import duration, stage_title

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")
METRIC_TITLES = {"ndcg@10": "nDCG@10", "mrr@10": "MRR@10", "recall@10": "Recall@10", "recall@100": "Recall@100"}
MAX_PROBLEMS_SHOWN = 30


def metrics_frame(report: EvalReport) -> pd.DataFrame:
    """One row per stage: the four metrics and the mean latency per query in ms."""
    rows = []
    for stage in ordered(report.stages):
        metrics = report.stages[stage]
        row = {"stage": stage_title(stage), "model": report.models.get(stage, "")}
        row.update({METRIC_TITLES[name]: round(metrics.get(name, 0.0), 4) for name in METRICS})
        row["ms/query"] = round(report.timings_s.get(f"{stage}_mean_query", 0.0) * 1000, 1)
        rows.append(row)
    return pd.DataFrame(rows, columns=["stage", *METRIC_TITLES.values(), "ms/query", "model"])


def chart_frame(report: EvalReport, metric: str = "ndcg@10") -> pd.DataFrame:
    """(stage, value) of one metric, in stage order, for a bar chart comparing the stages."""
    rows = [{"stage": stage_title(stage), "value": report.stages[stage].get(metric, 0.0)}
            for stage in ordered(report.stages)]
    return pd.DataFrame(rows, columns=["stage", "value"])


def per_query_frame(report: EvalReport, first: str, second: str) -> pd.DataFrame:
    """One row per query: nDCG@10 in each stage, the change from `first` to `second` (rows sorted by it,
    biggest gain first), and where the relevant items landed in each stage."""
    stages = [stage for stage in ordered(report.stages)]
    rows = []
    for query_id, text in report.query_texts.items():
        row: dict[str, object] = {"query id": query_id, "query": text}
        for stage in stages:
            row[f"nDCG@10 {stage_title(stage)}"] = round(report.per_query.get(stage, {}).get(query_id, {})
                                                          .get("ndcg@10", 0.0), 4)
        if first in stages and second in stages:
            row["change"] = round(float(row[f"nDCG@10 {stage_title(second)}"])
                                  - float(row[f"nDCG@10 {stage_title(first)}"]), 4)
        for stage in stages:
            ranks = report.landed.get(stage, {}).get(query_id, ())
            row[f"relevant at ({stage_title(stage)})"] = ", ".join(f"#{rank}" for rank in ranks[:8]) or "—"
        rows.append(row)
    frame = pd.DataFrame(rows)
    if "change" in frame:
        frame = frame.sort_values("change", ascending=False, kind="stable").reset_index(drop=True)
    return frame


def depth_frames(points: Sequence[DepthPoint]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(nDCG@10 by rerank depth, seconds per query by rerank depth) for two line plots, each row with its
    reranker's stage title ("Reranked", "Reranked (B)") in "reranker", one line per reranker."""
    quality = pd.DataFrame([{"rerank depth": p.depth, "nDCG@10": p.ndcg_at_10,
                             "reranker": stage_title(p.stage)} for p in points])
    latency = pd.DataFrame([{"rerank depth": p.depth, "seconds per query": p.seconds_per_query,
                             "reranker": stage_title(p.stage)} for p in points])
    return quality, latency


def judgments_summary(judgments: Judgments, match: JudgmentMatch, estimate: Estimate | None) -> Markup:
    """What was loaded, how it matched the corpus (documents or passages), what was skipped, and how long
    a full run should take on this machine."""
    judged = sum(len(marks) for marks in judgments.qrels.values())
    level = ("documents: a document-level judgment counts for the document's best-ranked passage, and each "
             "stage's ranking is deduplicated by document before the metrics are computed"
             if match.level == "document" else
             "passages: each judged id is a passage id (doc#n), and rankings are compared passage by passage")
    parts = [
        element("p", f"{len(judgments.queries)} queries, {judged} judgments; ",
                element("strong", f"{match.matched} of {match.judged}"), " judged ids are in the corpus.",
                class_="judgments-counts"),
        element("p", f"The qrels name {level}.", class_="judgments-level"),
    ]
    if estimate is not None:
        parts.append(element("p", f"Estimated run time: about {duration(estimate.seconds)} for {estimate.queries} "
                                  f"queries ({estimate.first_stage_seconds * 1000:,.0f} ms of first stages per "
                                  f"query{_measured_speeds(estimate)}).", class_="judgments-estimate"))
    problems = [*judgments.problems, *match.problems]
    if problems:
        items = [element("li", str(problem), class_="problem") for problem in problems[:MAX_PROBLEMS_SHOWN]]
        if len(problems) > MAX_PROBLEMS_SHOWN:
            items.append(element("li", f"… and {len(problems) - MAX_PROBLEMS_SHOWN} more", class_="more"))
        parts.append(element("details", element("summary", f"{len(problems)} problem(s); the rest was used"),
                             element("ul", *items), class_="problems", open=True))
    return element("div", *parts, class_="build-summary judgments-summary")


def _measured_speeds(estimate: Estimate) -> str:
    # A reranker that encodes each passage once (late interaction) is timed by its passages, not its pairs.
    measured = [f"reranker {stage_info(stage).letter} {speed:,.1f} pairs/s"
                for stage, speed in estimate.pairs_per_second.items() if speed]
    measured += [f"reranker {stage_info(stage).letter} encodes {speed:,.1f} passages/s, each passage once "
                 f"({estimate.passages_to_encode.get(stage, 0):,} to encode)"
                 for stage, speed in estimate.passages_per_second.items()]
    return f"; measured on this machine: {'; '.join(measured)}" if measured else ""


def judged_metrics_html(metrics: Mapping[str, Mapping[str, float]], queries: int, judgments: int) -> Markup:
    """The judging panel's table: each stage's metrics over the session's judged queries."""
    if not judgments:
        return element("div", element("p", "Mark results with 0 (not relevant), 1 (relevant) or 2 (highly "
                                           "relevant) using the buttons on each card; metrics of the judged "
                                           "queries appear here."), class_="judged-metrics")
    head = element("tr", element("th", "stage"), *(element("th", METRIC_TITLES[name]) for name in METRICS))
    rows = [element("tr", element("th", stage_title(stage)),
                    *(element("td", f"{metrics[stage].get(name, 0.0):.4f}") for name in METRICS), data_stage=stage)
            for stage in ordered(metrics)]
    summary = (f"{judgments} judgment(s) on {queries} quer{'y' if queries == 1 else 'ies'}; unjudged results "
               "count as not relevant.")
    return element("div", element("p", summary), element("table", element("thead", head), element("tbody", *rows)),
                   class_="judged-metrics", data_judgments=int(judgments))


def render_note(text: str) -> Markup:
    """A one-line note in the judgments summary's place (e.g. that a new corpus needs its judgments)."""
    return element("div", element("p", text, class_="judgments-note"), class_="build-summary judgments-summary")


def run_progress(done: int, total: int, seconds: float) -> Markup:
    """A progress bar for an evaluation run."""
    return render_progress([ProgressStep("queries", "queries", done, total, "running")], seconds,
                           extra_class="eval-progress")
