"""The Explain region: why did a reranked passage score so? Pick a passage (or press Explain on its card),
see what explaining it will cost, then score it with each sentence left out in turn by the reranker of its
column (A, B, …)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

import gradio as gr

from search import stages
from search.explain import explain, explain_cost
from search.inference import RerankCancelled
from search.pipeline import Index
from search.types import Hit, SearchResult
from ui import explain_view
from ui.highlight import highlight_terms
from ui.labels import stage_title

from .common import Updates, event_value, fail, require, stream, unchanged
from .session import LatestSearch

if TYPE_CHECKING:
    from .page import Page


class ExplainPanel(NamedTuple):
    """Pick a reranked passage (or press Explain on its card), see the cost, run, see each sentence shaded.
    With several rerankers, `reranker` says which one (and so which column's passages) is explained."""

    passage: gr.Dropdown
    button: gr.Button
    cost: gr.HTML
    result: gr.HTML
    reranker: gr.Radio  # the stage explained: rerank (A), rerank-b (B)…; shown only when the index has several


def layout() -> ExplainPanel:
    with gr.Accordion("Why did this passage score so? (Explain)", open=True, elem_id="explain-panel"):
        gr.Markdown(explain_view.EXPLAIN_HELP)
        with gr.Row(equal_height=True):
            reranker = gr.Radio([("reranker A", stages.RERANK)], value=stages.RERANK, label="Explain with",
                                visible=False, scale=2, elem_id="explain-reranker")
            # Custom values allowed: the choices follow every column update, and an event may read the value a
            # moment after they changed; the callbacks check the value against the current choices themselves.
            passage = gr.Dropdown([], value=None, label="Reranked passage", scale=4, allow_custom_value=True,
                                  elem_id="explain-passage")
            button = gr.Button("Explain", variant="secondary", scale=1, elem_id="explain-button")
        cost = gr.HTML(explain_view.render_cost(None, None), elem_id="explain-cost")
        result = gr.HTML(elem_id="explain-result")
    return ExplainPanel(passage, button, cost, result, reranker)


def wire(page: Page) -> None:
    session, panel = page.session, page.explain
    callbacks = ExplainCallbacks(page)
    quiet = {"api_visibility": "undocumented", "show_progress": "hidden"}
    chosen = [session.index, session.latest, panel.passage, panel.reranker]
    for stage in page.search.rerank_stages:
        column = page.search.columns[stage]
        # A new reranked column (a search, a rerank finishing, a judgment) offers its passages.
        column.change(callbacks.refresh, chosen, [panel.passage, panel.cost, panel.reranker],
                      trigger_mode="always_last", concurrency_limit=None, **quiet)
        # Explain on a card (ui.columns.COLUMN_JS sends its rank and stage) picks that passage and that
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
    """The Explain panel's handlers: its choices follow the latest column of the reranker chosen; the cost is
    said first; that reranker scores the passage with each sentence left out only when Explain is pressed."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.panel = page.explain

    def refresh(self, index: Index | None, latest: LatestSearch, chosen: str | None,
                stage: str = stages.RERANK) -> Updates:
        """Offer the latest search's passages reranked by `stage`'s reranker, keeping the chosen one while it
        is still there."""
        result = latest.result_on(index)
        stage = explained_stage(index, stage)
        choices = explain_view.passage_choices(result, stage)
        value = chosen if any(passage_id == chosen for _, passage_id in choices) else None
        return {self.panel.passage: gr.Dropdown(choices=choices, value=value),
                self.panel.cost: self._cost(index, result, value, stage),
                self.panel.reranker: self._reranker_choice(index, result, stage)}

    def pick(self, index: Index | None, latest: LatestSearch, event: gr.EventData) -> Updates:
        """A card's Explain button: choose its passage and its column's reranker, and say what explaining it
        costs (nothing runs)."""
        rank = event_value(event, "explain_rank")
        stage = event_value(event, "explain_stage") or stages.RERANK  # a payload without it: a card of A
        result = latest.result_on(index)
        reranked = result.stages.get(stage) if result is not None and stages.is_rerank(str(stage)) else None
        hit = next((h for h in reranked.hits if h.rank == rank), None) if reranked is not None else None
        if hit is None or explained_stage(index, stage) != stage:
            return unchanged()  # a judging click, or a card of an older search
        return {self.panel.passage: gr.Dropdown(choices=explain_view.passage_choices(result, stage),
                                                value=hit.passage_id),
                self.panel.cost: self._cost(index, result, hit.passage_id, stage),
                self.panel.reranker: self._reranker_choice(index, result, stage)}

    def preview(self, index: Index | None, latest: LatestSearch, chosen: str | None,
                stage: str = stages.RERANK) -> Updates:
        """The cost of explaining the passage chosen in the dropdown."""
        return {self.panel.cost: self._cost(index, latest.result_on(index), chosen, explained_stage(index, stage))}

    def run(self, index: Index | None, latest: LatestSearch, chosen: str | None,
            stage: str = stages.RERANK) -> Iterator[Updates]:
        """Score the chosen passage with each sentence left out in turn by the chosen reranker (through the
        score cache), streaming progress, then show it shaded by the drops with the query terms marked."""
        index = require(index)
        result = latest.result_on(index)
        stage = explained_stage(index, stage)
        hit = explain_view.reranked_hit(result, chosen, stage)
        if hit is None:
            if result is None or stage not in result.stages:
                message = f"Search first, then pick a passage of the {stage_title(stage)} column."
            else:
                message = (f"Pick a passage of the {stage_title(stage)} column above (or press Explain on its card), "
                           "then press Explain.")
            yield {self.panel.result: explain_view.render_message(message)}
            return
        try:
            reranker = index.reranker(stage).model
        except ValueError as error:
            raise fail(str(error)) from None
        stop = threading.Event()  # set by `stream` when the page goes away

        def work(report: Callable[[object], None]):
            try:
                return explain(reranker, result.query, hit.text, title=explain_title(index, hit),
                               progress=lambda done, total: report((done, total)), should_stop=stop.is_set)
            except RerankCancelled:
                return None

        def show(events: list, seconds: float) -> Updates | None:
            return {self.panel.result: explain_view.render_progress(*events[-1])} if events else None

        explanation = yield from stream(work, show, stop)
        if explanation is None:
            yield unchanged()
            return
        terms = highlight_terms(result, hit.language.group, index.languages)
        yield {self.panel.result: explain_view.render_explanation(explanation, hit, terms,
                                                                  reranker_name(index, result, stage)),
               self.panel.cost: self._cost(index, result, hit.passage_id, stage)}

    def _cost(self, index: Index | None, result: SearchResult | None, chosen: str | None,
              stage: str = stages.RERANK) -> str:
        hit = explain_view.reranked_hit(result, chosen, stage)
        # That stage's reranker and its measured speed (only once a passage is chosen: it has reranked then).
        loaded = index.loaded_reranker(stage) if index is not None and hit is not None else None
        if hit is None or result is None or loaded is None:
            return explain_view.render_cost(None, None)
        return explain_view.render_cost(hit, explain_cost(loaded.model, result.query, hit.text,
                                                          title=explain_title(index, hit)),
                                        reranker_name(index, result, stage))

    def _reranker_choice(self, index: Index | None, result: SearchResult | None, stage: str) -> gr.Radio:
        # Which reranker is explained: a choice only when the index has several, each named with its model.
        if index is None or len(index.rerank_stages) < 2:
            return gr.Radio(value=stages.RERANK, visible=False)
        choices = [(explain_view.reranker_name(name, explained_label(index, result, name)), name)
                   for name in index.rerank_stages]
        return gr.Radio(choices=choices, value=stage, visible=True)


def explained_stage(index: Index | None, stage: str | None) -> str:
    """The reranked stage to explain: `stage` while the index has its reranker; anything else is A's."""
    return stage if index is not None and stage in index.rerank_stages else stages.RERANK


def explained_label(index: Index, result: SearchResult | None, stage: str) -> str:
    """The model that reranked `stage` in `result` (the label its cards show), else the one the index names
    (without loading it: the panel follows every column update)."""
    reranked = result.stages.get(stage) if result is not None else None
    if reranked is not None and not reranked.error:
        return reranked.model
    return index.reranker_label(stage)


def reranker_name(index: Index | None, result: SearchResult | None, stage: str) -> str | None:
    """"reranker A: <label>", "reranker B: <label>" … when the index has several rerankers; None (the model's
    label alone) with one."""
    if index is None or len(index.rerank_stages) < 2:
        return None
    return explain_view.reranker_name(stage, explained_label(index, result, stage))


def explain_title(index: Index, hit: Hit) -> str:
    """What the reranker read in front of the passage, as the pipeline reranks it (`Index._rerank_text`)."""
    return hit.title if index.settings.index_titles and hit.title else ""
