"""What building an index did, as HTML: progress per step while it runs (with the passage count and the
time left for embedding), then counts, models (with the reason for any fallback, said here once),
timings and the files or rows that were skipped.

    div.build-progress div.build-step[data-step][data-state=waiting|running|done]  p.build-estimate
    div.build-models (the model warm-up's line, while a build waits for it; see ui.model_status)
    div.build-summary p.build-counts|build-model|build-fallback|build-reranker   li.problem.skipped|warning
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import pandas as pd

from search.estimates import about
from search.inference import Loaded, Reranker
from search.language import LANGUAGE_NAMES
from search.pipeline import BuildEstimate, BuildReport
from search.stages import stage as stage_info
from search.types import Problem
from search.warmup import WarmupStatus

from .html import Markup, element, join
from .labels import count, duration
from .model_status import render_model_status

MAX_PROBLEMS_SHOWN = 50
BUILD_STEP_NAMES = {"read": "reading", "languages": "language detection", "bm25": "BM25 index",
                    "embeddings": "embeddings"}


class BuildEvent(NamedTuple):
    """One progress report of a build: `done` of `total` in `step` (a step of BUILD_STEP_NAMES), `at`
    seconds after the build started."""

    step: str
    done: int
    total: int
    at: float


class EmbeddingRate(NamedTuple):
    """The embedding speed measured so far in a build, and the time left at that speed."""

    passages_per_second: float
    seconds_left: float


class ProgressStep(NamedTuple):
    """One bar of a progress panel: `step` names it for tests (data-step), `name` for people."""

    step: str
    name: str
    done: int
    total: int
    state: Literal["waiting", "running", "done"]


def render_build_summary(report: BuildReport, *, max_problems: int = MAX_PROBLEMS_SHOWN) -> Markup:
    """Return what building the index did: counts, the reused-index notice, the dense model and device
    (with the fallback reason), time per step, and skipped files and rows (at most `max_problems`)."""
    counts = (f"{count(report.documents, 'document')} from {count(report.files_read, 'file')} → "
              f"{count(report.passages, 'passage')} in {count(len(report.languages), 'language')}")
    parts = [element("p", counts, class_="build-counts")]
    if report.reused:
        parts.append(element("p", "Reused the saved index for this corpus and settings; nothing was embedded "
                                  "again.", class_="reused-notice"))
    if len(report.per_source) > 1:
        parts.append(_sources_html(report))
    parts.append(element("p", "Dense model: ", element("span", report.dense_model, class_="model-label"), " on ",
                         element("span", report.device, class_="device"), class_="build-model"))
    if report.dense_fallback_reason:
        parts.append(element("p", f"Fallback: {report.dense_fallback_reason}", class_="build-fallback"))
    if report.timings_s:
        steps = " · ".join(f"{BUILD_STEP_NAMES.get(step, step)} {duration(seconds)}"
                           for step, seconds in report.timings_s.items())
        parts.append(element("p", f"Time: {steps}", class_="build-timings"))
    if report.problems:
        parts.append(_problems_html(report.problems, max_problems))
    return element("div", *parts, class_="build-summary")


def _sources_html(report: BuildReport, shown: int = 5) -> Markup:
    # Where the passages come from: a file of junk that became hundreds of passages shows first.
    items = [element("li", element("span", item.source, class_="source-name"), " ",
                     element("span", count(item.passages, "passage"), class_="source-passages"),
                     data_passages=str(item.passages))
             for item in report.per_source[:shown]]
    more = len(report.per_source) - shown
    if more > 0:
        items.append(element("li", f"and {count(more, 'more file')}", class_="source-more"))
    return element("div", element("span", "Passages per file, largest first: ", class_="sources-lead"),
                   element("ol", *items, class_="build-sources-list"), class_="build-sources")


def one_line(report: BuildReport, rerankers: Sequence[str]) -> str:
    """The build in one line, for the folded corpus panel: "92 passages of 80 documents · 10 languages ·
    dense: <label> · reranker: <label>" (a label cut at its first " · " or "(")."""
    def short(label: str) -> str:
        return label.split(" · ")[0].split(" (")[0].strip() or label

    parts = [f"{count(report.passages, 'passage')} of {count(report.documents, 'document')}",
             count(len(report.languages), "language"), f"dense: {short(report.dense_model)}"]
    if rerankers:
        parts.append(("reranker: " if len(rerankers) == 1 else "rerankers: ")
                     + ", ".join(short(label) for label in rerankers))
    return " · ".join(parts)


def render_reranker(loaded: Loaded[Reranker], title: str = "Reranker") -> Markup:
    """Return which reranker this index uses (`title`: "Reranker", or "Reranker B" for the second): its
    label, whether it is a cross-encoder (unless the label says so already), what runs it, and why when it
    is a fallback."""
    model = loaded.model
    kind = "cross-encoder" if model.is_cross_encoder else "not a cross-encoder"
    details = [kind] if kind not in model.label else []
    details.append(f"runs on {_runtime(model.backend)}")
    parts = [element("p", f"{title}: ", element("span", model.label, class_="model-label"), " ",
                     element("span", f"({', '.join(details)})", class_="reranker-kind"), class_="build-reranker",
                     data_backend=model.backend)]
    if loaded.fallback_reason:
        parts.append(element("p", f"Fallback: {loaded.fallback_reason}", class_="build-fallback reranker-fallback"))
    return element("div", *parts, class_="build-summary")


def _runtime(backend: str) -> str:
    # Late interaction names the encoder backend it runs over ("late-interaction over onnx"); plain
    # "late-interaction" runs over torch.
    runtime = backend.removeprefix("late-interaction over ")
    return "torch" if runtime == "late-interaction" else runtime


def render_rerankers(stages: Sequence[str], rerankers: Sequence[Loaded[Reranker]]) -> Markup:
    """Return `render_reranker` of each of an index's rerankers, titled by their stage: "Reranker" for the
    first, "Reranker B (compare with)" for the second, …"""
    titles = ["Reranker" if position == 0 else f"Reranker {stage_info(stage).letter} (compare with)"
              for position, stage in enumerate(stages)]
    return join(render_reranker(loaded, title) for title, loaded in zip(titles, rerankers, strict=True))


def render_build_progress(events: Sequence[BuildEvent], seconds: float, models: WarmupStatus | None = None,
                          expected: BuildEstimate | None = None) -> Markup:
    """Return one progress bar per build step (reading, language detection, BM25, embeddings) from the
    build's reports so far (steps not started show as waiting), then how many passages the corpus has
    and, while embedding, the time left at the speed measured on this machine: this build's own batches
    once there are two, before that the encoder's speed measured earlier (`expected`). While `models` (the
    app's model warm-up) is not done, its line comes first: the build waits for the models it shares with it."""
    progress = {event.step: (event.done, event.total) for event in events}
    steps = []
    for step, name in BUILD_STEP_NAMES.items():
        done, total = progress.get(step, (0, 0))
        state = "done" if total and done >= total else ("running" if step in progress else "waiting")
        steps.append(ProgressStep(step, name, done, total, state))
    panel = render_progress(steps, seconds, note=_estimate(events, seconds, expected))
    if models is None or models.done:
        return panel
    return join((element("div", render_model_status(models), class_="build-models"), panel))


def embedding_rate(events: Sequence[BuildEvent], seconds: float) -> EmbeddingRate | None:
    """The embedding speed from the build's reports so far and the time left at that speed, `seconds`
    after the build started; None before the first batch of passages is embedded.

    >>> events = [BuildEvent("embeddings", 0, 1000, 10.0), BuildEvent("embeddings", 100, 1000, 12.0)]
    >>> embedding_rate(events, 13.0)
    EmbeddingRate(passages_per_second=50.0, seconds_left=17.0)
    """
    embedding = [event for event in events if event.step == "embeddings"]
    if not embedding:
        return None
    first, last = embedding[0], embedding[-1]
    if last.done <= first.done or last.at <= first.at:
        return None
    rate = (last.done - first.done) / (last.at - first.at)
    return EmbeddingRate(rate, max(0.0, (last.total - last.done) / rate - max(0.0, seconds - last.at)))


def render_progress(steps: Sequence[ProgressStep], seconds: float, *, extra_class: str = "",
                    note: str | None = None) -> Markup:
    """Return a progress panel: a bar per step with "done/total" (or done, …), the time elapsed and `note`."""
    rows = []
    for step in steps:
        fraction = min(1.0, step.done / step.total) if step.total else 0.0
        detail = (f"{step.done:,}/{step.total:,}" if step.total > 1
                  else {"done": "done", "running": "…", "waiting": ""}[step.state])
        rows.append(element("div", element("span", step.name, class_="build-step-name"),
                            element("progress", max="1000", value=round(fraction * 1000)),
                            element("span", detail, class_="build-step-detail"),
                            class_="build-step", data_step=step.step, data_state=step.state))
    estimate = element("p", note, class_="build-estimate") if note else None
    return element("div", *rows, estimate, element("p", f"{duration(seconds)} elapsed", class_="build-elapsed"),
                   class_=f"build-progress {extra_class}".strip(), role="status", aria_live="polite")


def languages_frame(report: BuildReport) -> pd.DataFrame:
    """Return passages per language (columns language, name, passages), most common first, for a `gr.BarPlot`."""
    rows = [(code, LANGUAGE_NAMES.get(code, code), number) for code, number in report.languages.items()]
    rows.sort(key=lambda row: -row[2])
    return pd.DataFrame(rows, columns=["language", "name", "passages"]).astype({"passages": "int64"})


def _estimate(events: Sequence[BuildEvent], seconds: float, expected: BuildEstimate | None = None) -> str | None:
    passages = _passage_count(events)
    if passages is None and expected is not None:
        passages = expected.passages
    if passages is None:
        return None
    said = f"{count(passages, 'passage')} to index."
    embedding = [event for event in events if event.step == "embeddings"]
    if (embedding and embedding[-1].done >= embedding[-1].total) or (not embedding and expected is None):
        return said
    rate = embedding_rate(events, seconds)
    if rate is None and expected is not None and expected.seconds:
        done = embedding[-1].done if embedding else 0
        per_second = expected.passages / expected.seconds
        left = (expected.passages - done) / per_second
        return (f"{said} Embedding: {_time_left(left)} left at {_speed(per_second)} passages/s (measured on this "
                "machine).")
    if rate is None:
        return f"{said} Embedding: measuring the speed on this machine…"
    return (f"{said} Embedding: {_time_left(rate.seconds_left)} left at {_speed(rate.passages_per_second)} "
            "passages/s on this machine.")


def _speed(per_second: float) -> str:
    return f"{per_second:,.0f}" if per_second >= 10 else f"{per_second:.1f}"


def render_confirm(expected: BuildEstimate, threshold: float) -> Markup:
    """Return the question a long build asks before embedding: how many passages, how long here at the
    encoder's measured speed, the files that contribute most (a junk file that became hundreds of passages
    shows first), and that the files ticked below are left out.

        div.build-confirm[data-seconds] p.confirm-cost  ol.confirm-sources li[data-passages]"""
    cost = (f"Embedding {count(expected.passages, 'passage')} with {expected.encoder} takes {about(expected.seconds)} "
            f"on this machine (more than {about(threshold).removeprefix('about ')}).")
    top = expected.per_source[:8]
    sources = [element("li", element("span", item.source, class_="source-name"), " ",
                       element("span", f"{count(item.passages, 'passage')} from {count(item.documents, 'document')}",
                               class_="source-count"), data_passages=item.passages) for item in top]
    more = len(expected.per_source) - len(top)
    return element("div", element("p", cost, class_="confirm-cost"),
                   element("p", "Where the passages come from, largest first:", class_="confirm-lead"),
                   element("ol", *sources, class_="confirm-sources"),
                   element("p", f"… and {count(more, 'other file')}.", class_="more") if more > 0 else None,
                   element("p", "Tick files to leave out (a file of junk often makes hundreds of passages), then "
                                "Build it, or Cancel.", class_="confirm-lead"),
                   class_="build-confirm", data_seconds=round(expected.seconds or 0))


def _passage_count(events: Sequence[BuildEvent]) -> int | None:
    # A reused index reports each step as 1 of 1, so only a real count (or the embedding start) says it.
    for event in events:
        if (event.step == "embeddings" and event.done == 0) or (event.step in {"languages", "bm25"}
                                                                  and event.total > 1):
            return event.total
    return None


def _time_left(seconds: float) -> str:
    return "a few seconds" if seconds < 10 else about(seconds)


def _problems_html(problems: Sequence[Problem], max_problems: int) -> Markup:
    skipped = [problem for problem in problems if problem.skipped]
    warnings = [problem for problem in problems if not problem.skipped]
    heading = ", ".join(text for text in (
        count(len(skipped), "skipped", plural="skipped") if skipped else "",
        count(len(warnings), "warning") if warnings else "") if text)
    shown = (skipped + warnings)[:max(0, max_problems)]
    items = []
    for problem in shown:
        kind = "skipped" if problem.skipped else "warning"
        where = problem.source if problem.line is None else f"{problem.source}, line {problem.line}"
        items.append(element("li", element("span", kind, class_="problem-kind"), " ",
                             element("span", where, class_="problem-where"), ": ",
                             element("span", problem.message, class_="problem-message"),
                             class_=f"problem {kind}"))
    hidden = len(problems) - len(shown)
    if hidden > 0:
        items.append(element("li", f"… and {hidden:,} more", class_="more"))
    return element("details", element("summary", heading), element("ul", join(items)), class_="problems", open=True)
