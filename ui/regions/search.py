"""The Search region: the query and its controls, one column per stage, the summary under them, and the
`search` API endpoint.

A search runs the first stages at once and draws their columns; each reranker's column then follows in
the rerank queue (one rerank at a time, A, then B…), streaming its progress, and a newer search of the
session stops it within a batch (`session.LatestSearch`). Whether a reranked column can be drawn at once
from the score cache is the engine's answer (`Index.rerank_from_cache`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import anyio
import gradio as gr

from search import stages
from search.config import LineSetting, parse_line
from search.export import result_to_dict
from search.inference import RerankCancelled
from search.pipeline import Index
from search.policy import check_query
from search.types import SearchResult
from ui import columns, judging, rankflow, share, texts
from ui.highlight import Marks

from .common import Updates, event_value, fail, gpu, require, stream, unchanged
from .page import APP_RERANKERS, AppContext
from .session import API_SEARCHES, FIRST_STAGE_SLOTS, LatestSearch, api_slots

if TYPE_CHECKING:
    from .page import Page

logger = logging.getLogger(__name__)

EXAMPLE_QUERIES = [
    "When did the Luna 2 probe reach the Moon?",
    "Wie viele Bienen leben in einem Volk?",
    "茶是什么时候传入日本的？",
    "चंद्रयान-3 चंद्रमा पर कब उतरा?",
    "Какой самый высокий вулкан в Европе?",
    "ما هي الشعاب المرجانية؟",
    "why do some reefs turn white",
]
COLUMN_STAGES = stages.search_stages(APP_RERANKERS)  # the page's columns: first stages, then rerankers A, B
# Run once when the page loads. A slider's number box commits (its "release" event) only when it loses focus:
# Enter commits too. A search (the button, Enter in the query, an example) notes when it started, so each
# column can say how long the user waited for it (ui.columns.COLUMN_JS), and brings the results into view.
PAGE_JS = """
() => {
  const started = () => {
    window.rrSearchStarted = performance.now();
    // The query and its controls to the top of the window: the chart and the columns fill the rest. The
    // controls are sticky: stuck at the top they say nothing of where the page is (it may show the share
    // panel below the columns, which the new columns would then push down), so their place in the page
    // is read with sticking undone for the measurement.
    const controls = document.getElementById('search-controls');
    if (!controls) return;
    const position = controls.style.position;
    controls.style.position = 'static';
    const top = controls.getBoundingClientRect().top;
    controls.style.position = position;
    if (Math.abs(top) > 8) window.scrollBy({top, behavior: 'instant'});
  };
  document.addEventListener('keydown', (event) => {
    const box = event.target;
    if (event.key !== 'Enter' || event.shiftKey) return;
    if (box instanceof HTMLInputElement && box.type === 'number' && box.closest('#k, #rerank-depth')) box.blur();
    if (box instanceof HTMLTextAreaElement && box.closest('#query')) started();
  }, true);
  document.addEventListener('click', (event) => {
    if (event.target.closest && event.target.closest('#search-button')) started();
  }, true);
}
"""


class ColumnView(NamedTuple):
    """How a result is drawn: the values of `SearchPanel.view`, in its order."""

    k: int
    score_view: str
    collapse: bool
    score_line: LineSetting

    @classmethod
    def of(cls, k: int, score_view: str, collapse: bool, score_line: str | None) -> ColumnView:
        """The view of the widgets' values (a score line that is no number gets a message, see `line_setting`)."""
        return cls(int(k), score_view, bool(collapse), line_setting(score_line))


def line_setting(text: str | None) -> LineSetting:
    """The score-line field's value as a setting; one that is no number gets a message and nothing is redrawn."""
    try:
        return parse_line(text)
    except ValueError as error:
        raise fail(f"{error}. Nothing was redrawn.") from None


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
    score_line: gr.Dropdown  # the Reranked columns' "no good answer" line: default, none or a score
    columns: dict[str, gr.HTML]  # stage -> its column (a reranker after A is shown when the index has it)
    summary: gr.HTML
    chart: gr.HTML  # the rank-flow chart and the agreement matrix (ui.rankflow), above the columns
    examples: gr.Dropdown  # example queries: choosing one puts it in the query box and searches

    @property
    def view(self) -> list[gr.components.Component]:
        """The settings that only change how a result is drawn (k also searches again), in the order of
        `ColumnView`'s fields."""
        return [self.k, self.score_view, self.collapse, self.score_line]

    @property
    def rerank_stages(self) -> tuple[str, ...]:
        return tuple(name for name in self.columns if stages.is_rerank(name))

    def stage_of(self, column: object) -> str | None:
        """The stage of a column component (an event's target), or None."""
        elem_id = getattr(column, "elem_id", None)
        return next((name for name, html in self.columns.items() if html.elem_id == elem_id), None)


def layout(ctx: AppContext) -> SearchPanel:
    settings, form = ctx.settings, ctx.form
    # The query and its controls stay at the top of the window while the columns scroll (style.css).
    with gr.Group(elem_id="search-controls"):
        with gr.Row(equal_height=True):
            query = form.add("query", gr.Textbox(show_label=False, placeholder="Ask in any language…", scale=6,
                                                 max_length=settings.max_query_chars, lines=1, max_lines=3,
                                                 elem_id="query"), "search",
                             to_view=lambda text: " ".join((text or "").split()))
            button = gr.Button("Search", variant="primary", scale=1, min_width=100, elem_id="search-button")
        with gr.Row(equal_height=True, elem_id="search-settings"):
            low, high, step = (int(value) for value in _range("k"))
            k = form.add("k", gr.Slider(low, high, value=settings.k, step=step, label="k",
                                        elem_id="k", min_width=160), "search", to_view=int)
            low, high, step = (int(value) for value in _range("rerank_depth"))
            rerank_depth = form.add("rerank_depth", gr.Slider(
                low, high, value=settings.rerank_depth, step=step, label="Rerank depth", min_width=160,
                elem_id="rerank-depth"), "search", to_view=int)
            candidates_from = form.add("candidates_from", gr.Dropdown(
                list(stages.FIRST_STAGES), value=settings.candidates_from, min_width=130,
                label="Candidates from", elem_id="candidates-from"), "search")
            score_view = form.add("score_view", gr.Dropdown([("raw logit", "raw"), ("sigmoid 0–1", "sigmoid")],
                                                            value="raw", label="Reranker score", min_width=130,
                                                            elem_id="score-view"), "search")
            # A choice, or a number typed in: on the scale the Reranked columns show (share.line_text reads it).
            score_line = gr.Dropdown([("model default", "default"), ("none", "none")],
                                     value=share.line_text(settings.score_line), allow_custom_value=True,
                                     label="Score line", min_width=140, elem_id="score-line")
            examples = gr.Dropdown(EXAMPLE_QUERIES, value=None, label="Examples", min_width=140, scale=2,
                                   info=None, elem_id="example-queries")
            with gr.Column(min_width=160, scale=2):
                collapse = form.add("collapse", gr.Checkbox(False, label="Best passage per document"), "search",
                                    to_view=bool)
                rerank_estimate = gr.HTML(columns.render_rerank_estimate(None, settings.rerank_depth),
                                          elem_id="rerank-estimate")
    form.add("score_line", score_line, "search", to_view=_line_or_default)  # after the others: see ui.regions.form
    chart = gr.HTML(elem_id="rank-flow", js_on_load=rankflow.RANK_FLOW_JS)
    with gr.Row(elem_classes="rr-columns", equal_height=False):
        stage_columns = {name: gr.HTML(elem_id=f"column-{name}", min_height=120, js_on_load=columns.COLUMN_JS,
                                       visible=not stages.is_rerank(name) or name == stages.RERANK)
                         for name in COLUMN_STAGES}
    summary = gr.HTML(elem_id="search-summary")
    with gr.Accordion("How to read the chart and the columns", open=False):
        gr.Markdown(texts.SEARCH_HELP)
    return SearchPanel(query, button, k, rerank_depth, rerank_estimate, candidates_from, score_view, collapse,
                       score_line, stage_columns, summary, chart, examples)


def _line_or_default(text: str | None) -> str:
    # What a link or the bundle records of the field: a line it can't read is left at the default.
    try:
        return share.line_text(text)
    except ValueError:
        return "default"


def _range(name: str) -> tuple[float, float, float]:
    from search import config

    return config.limits(name)


# -- wiring ---------------------------------------------------------------------------------------------

def wire(page: Page, ctx: AppContext) -> None:
    search, session = page.search, page.session
    callbacks = SearchCallbacks(page)
    wire_search_chain(page, partial(gr.on, [search.button.click, search.query.submit]), callbacks.first_stages)
    # An example query goes into the box and is searched, as if typed and sent.
    chosen = search.examples.input(lambda text: {search.query: text or gr.skip()}, [search.examples], [search.query],
                                   api_visibility="undocumented", show_progress="hidden", queue=False,
                                   js="(text) => { window.rrSearchStarted = performance.now(); return text; }")
    wire_search_chain(page, chosen.success, callbacks.first_stages)
    # A larger k needs deeper lists, so k searches again (on release: a drag ending, or a number typed and
    # Enter, see PAGE_JS); the view toggles only redraw.
    wire_search_chain(page, partial(gr.on, [search.k.release], trigger_mode="always_last"), callbacks.search_again)
    gr.on(
        [search.score_view.change, search.collapse.change, search.score_line.change], callbacks.rerender,
        [session.index, session.judged, session.latest, *search.view],
        [*search.columns.values(), search.summary, search.chart],
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


def wire_search_chain(page: Page, listen: Callable[..., gr.events.Dependency],
                      first_stages: Callable[..., Updates]) -> None:
    """Wire `first_stages` to the event(s) `listen` stands for, then each reranker's column once they
    succeed: every trigger of a search (the button, k, a link, the Evaluate tab) gets the same chain, the
    same queues and the same progress display."""
    search, session = page.search, page.session
    callbacks = SearchCallbacks(page)
    chain = listen(
        first_stages,
        [session.index, session.latest, session.judged, search.query, search.k, search.rerank_depth,
         search.candidates_from, search.score_view, search.collapse, search.score_line],
        [session.latest, *search.columns.values(), search.summary, search.rerank_estimate],
        api_visibility="undocumented", concurrency_limit=FIRST_STAGE_SLOTS, concurrency_id="first_stages",
        show_progress="minimal",
    )
    chain.success(callbacks.chart, [session.index, session.latest, session.judged, search.k],
                  [search.chart, search.summary], api_visibility="undocumented", show_progress="hidden",
                  concurrency_limit=None)
    for position, stage in enumerate(search.rerank_stages):
        after = chain.success if position == 0 else chain.then
        chain = after(
            callbacks.rerank_column(stage), [session.index, session.judged, session.latest, *search.view],
            [search.columns[stage], search.summary, search.chart],
            api_visibility="undocumented", concurrency_limit=1, concurrency_id="rerank", show_progress="hidden",
            # A new search while this session's rerank still runs cancels that one (LatestSearch); its own
            # rerank must then run after it, not be dropped as Gradio's default ("once") would.
            trigger_mode="always_last",
        )
        if position == 0:
            # The rerank measured the speed and cached its pairs: the estimate beside the slider (read now,
            # as it may have moved meanwhile) changes.
            chain = chain.then(
                callbacks.rerank_estimate,
                [session.index, session.latest, search.rerank_depth, search.candidates_from],
                [search.rerank_estimate], api_visibility="undocumented", show_progress="hidden",
                concurrency_limit=None,
            )


# -- callbacks ------------------------------------------------------------------------------------------

class SearchCallbacks:
    """The Search region's handlers; each returns (or yields) updates keyed by component."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.panel = page.search

    def first_stages(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments, query: str,
                     k: int, rerank_depth: int, candidates_from: str, score_view: str, collapse: bool,
                     score_line: str) -> Updates:
        """BM25, dense and hybrid for the query, begun as the session's latest search (a rerank still running
        for an older one stops). Each reranked column shows a placeholder until its rerank, unless the score
        cache answers every pair it needs (the same query again, another k): then it is drawn at once."""
        index = require(index)
        view = ColumnView.of(k, score_view, collapse, score_line)
        try:
            query = check_query(query)
            result = index.retrieve(query, k=int(k), rerank_depth=int(rerank_depth), candidates_from=candidates_from)
        except ValueError as error:
            raise fail(str(error)) from None
        for stage in index.rerank_stages:  # in order: B is drawn at once only after A was
            cached = index.rerank_from_cache(result, stage)
            if cached is None:
                break
            result = cached
        latest.begin(result, index)
        # The chart follows in its own event (`chart`): the columns are not kept waiting for it.
        return {self.page.session.latest: latest,
                **column_updates(self.panel, index, result, session, view, marks=latest.marks),
                self.panel.summary: columns.render_summary(result, int(k)),
                self.panel.rerank_estimate: rerank_estimate(index, result, result.rerank_depth,
                                                            result.candidates_from)}

    def chart(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments, k: int) -> Updates:
        """The rank-flow chart and agreement matrix of the session's latest search (drawn just after its first
        stages, and again with every reranker that finishes)."""
        result = latest.result_on(index)
        if index is None or result is None:
            return unchanged()
        return result_updates(self.panel, index, result, session, k)

    def search_again(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments, query: str,
                     k: int, rerank_depth: int, candidates_from: str, score_view: str, collapse: bool,
                     score_line: str) -> Updates:
        """After k changes: search again (deeper lists) if there is something on screen, else do nothing."""
        if index is None or not (query or "").strip():
            return unchanged()
        return self.first_stages(index, latest, session, query, k, rerank_depth, candidates_from, score_view,
                                 collapse, score_line)

    def rerank_column(self, stage: str) -> Callable[..., Iterator[Updates]]:
        """The handler that adds `stage`'s column (a reranker's) to the session's latest search."""

        def rerank(index: Index | None, session: judging.SessionJudgments, latest: LatestSearch, k: int,
                   score_view: str, collapse: bool, score_line: str) -> Iterator[Updates]:
            """Rerank the session's latest search with `stage`'s reranker, streaming its progress: pairs scored
            of the total and the time left at the speed measured on this machine, batch by batch.

            A newer search of the session stops it within a batch; it then shows nothing more (the newer
            search's own rerank follows in this queue). When the latest search needs no rerank by it (depth
            0, or reranked already) its column is drawn again, so the last rerank event to run always leaves
            the latest search's column on screen. Without that reranker (the index has fewer) nothing changes."""
            turn, result = latest.latest()
            view = ColumnView.of(k, score_view, collapse, score_line)
            if index is None or result is None or stage not in index.rerank_stages:
                yield unchanged()
                return
            if not result.rerank_depth or stage in result.stages:
                yield self._drawn(index, result, session, view, stage, latest.marks)
                return
            earlier = index.rerank_stages[: index.rerank_stages.index(stage)]
            if any(name not in result.stages for name in earlier):
                yield unchanged()  # an earlier reranker did not finish this search (a newer one overtook it)
                return
            reranked = yield from self._rerank_streamed(index, latest, turn, result, stage)
            if reranked is not None:
                yield self._drawn(index, reranked, session, view, stage, latest.marks)

        rerank.__name__ = f"rerank_{stage.replace('-', '_')}"
        return rerank

    def _drawn(self, index: Index, result: SearchResult, session: judging.SessionJudgments, view: ColumnView,
               stage: str, marks: Marks) -> Updates:
        return {**column_updates(self.panel, index, result, session, view, [stage], marks=marks),
                **result_updates(self.panel, index, result, session, view.k)}

    def _rerank_streamed(self, index: Index, latest: LatestSearch, turn: int, result: SearchResult,
                         stage: str) -> Generator[Updates, None, SearchResult | None]:
        """Rerank `result` (the search of `turn`) by `stage`'s reranker, yielding its column's progress;
        returns the reranked result once it is kept as the latest, else None, having yielded what the column
        shows (a failure says so; a search overtaken by a newer one, nothing)."""
        column = self.panel.columns[stage]
        stop = threading.Event()  # set by `stream` when this event is closed (the page went away)
        which = "" if stage == stages.RERANK else f" {stages.stage(stage).letter}"  # "rerank of …", "rerank B of …"

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

        label = reranker_label(index, stage)
        shown: list[object] = [None]

        def show(events: list, seconds: float) -> Updates | None:
            if not events or events[-1] == shown[0] or should_stop():
                return None  # nothing new, or a newer search owns the column now
            shown[0] = done, total = events[-1]
            progress = columns.RerankProgress(done, total, _seconds_left(index, total - done, stage))
            return {column: columns.render_rerank_pending(result, label, progress, stage=stage)}

        reranked = yield from stream(work, show, stop)
        if isinstance(reranked, Exception):
            others = "the first stages are unaffected" if stage == stages.RERANK else "the other columns are unaffected"
            message = f"Reranking failed ({type(reranked).__name__}); {others}. Details are in the server log."
            yield {column: columns.render_notice(stage, message)} if latest.is_current(turn) else unchanged()
            return None
        if reranked is None or not latest.finish(turn, reranked):
            yield unchanged()  # overtaken by a newer search: its own rerank draws the column
            return None
        return reranked

    def rerender(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch, k: int,
                 score_view: str, collapse: bool, score_line: str) -> Updates:
        """Draw the last result again with another score view, document collapsing or score line (no new
        search)."""
        view = ColumnView.of(k, score_view, collapse, score_line)
        result = latest.result
        if index is None or result is None:
            return unchanged()
        return {**column_updates(self.panel, index, result, session, view, list(result.stages), marks=latest.marks),
                **result_updates(self.panel, index, result, session, view.k)}

    def rerank_estimate(self, index: Index | None, latest: LatestSearch, rerank_depth: int,
                        candidates_from: str) -> Updates:
        """The expected rerank time beside the depth slider, for the latest search at this depth and source."""
        return {self.panel.rerank_estimate: rerank_estimate(index, latest.result, int(rerank_depth), candidates_from)}

    async def search_api(self, index: Index | None, query: str, k: int, rerank_depth: int,
                         candidates_from: str) -> Updates:
        """Every stage for a query as JSON, with how the stages compare (the `search` API endpoint).

        The first stages and the reranks run in worker threads, each behind its own limit (`ApiSlots`):
        a call waiting for a reranker holds no first-stage slot."""
        index = require(index)
        slots = api_slots()
        try:
            query = check_query(query)
            result = await anyio.to_thread.run_sync(
                partial(index.retrieve, query, k=int(k), rerank_depth=int(rerank_depth),
                        candidates_from=candidates_from), limiter=slots.first_stages)
        except ValueError as error:
            raise fail(str(error)) from None
        if result.rerank_depth:
            for stage in index.rerank_stages:
                result = await anyio.to_thread.run_sync(partial(_rerank, index, result, stage=stage),
                                                        limiter=slots.rerank)
        return {self.page.api.result: await anyio.to_thread.run_sync(result_to_dict, result, int(k))}


# -- drawing --------------------------------------------------------------------------------------------

def column_updates(panel: SearchPanel, index: Index, result: SearchResult, session: judging.SessionJudgments,
                   view: ColumnView, names: Sequence[str] | None = None, *, marks: Marks | None = None) -> Updates:
    """The columns `names` (default: every column) of `result`: a stage's results; a reranker of the index
    that has not run yet shows its placeholder (or that reranking is off); a column with no reranker in this
    index is emptied. Passing only the columns a callback owns keeps the others as they are. `marks` is the
    search's highlighting (`LatestSearch.marks`), so a passage is analysed once for all its columns."""
    marks = Marks() if marks is None else marks
    grades = session.grades_for(result)
    updates: Updates = {}
    for name in names if names is not None else panel.columns:
        column = panel.columns.get(name)
        if column is None:
            continue
        if name in result.stages:
            updates[column] = columns.render_column(
                result.stages[name], result, k=view.k, score_view=view.score_view, collapse_documents=view.collapse,
                corpus_languages=index.languages, judgments=grades, score_line=view.score_line, marks=marks)
        elif stages.is_rerank(name) and name in index.rerank_stages:
            updates[column] = (columns.render_rerank_pending(result, reranker_label(index, name), stage=name)
                               if result.rerank_depth else
                               columns.render_notice(name, "Reranking is off (rerank depth 0)."))
        elif stages.is_rerank(name):
            updates[column] = ""
    return updates


def result_updates(panel: SearchPanel, index: Index, result: SearchResult, session: judging.SessionJudgments,
                   k: int) -> Updates:
    """What the whole result draws besides the columns: the rank-flow chart with the agreement matrix (colours
    kept per language of the corpus, judged passages marked) and the summary line."""
    return {panel.chart: rankflow.render_comparison(result, k=int(k), judgments=session.grades_for(result),
                                                    languages=sorted(index.languages)),
            panel.summary: columns.render_summary(result, int(k))}


def reranker_label(index: Index, stage: str = stages.RERANK) -> str:
    """What `stage`'s column names before it has run: the reranker's label when it is loaded."""
    return index.reranker_label(stage)


def rerank_estimate(index: Index | None, result: SearchResult | None, rerank_depth: int, candidates_from: str) -> str:
    """The expected time of reranking `result` (the latest search) at `rerank_depth` from `candidates_from`
    by every reranker of the index (`Index.expected_rerank_seconds`, counted as Evaluate's estimate counts a
    query); without a search, of `rerank_depth` candidates none of which is cached."""
    seconds: float | None = None
    if index is not None and rerank_depth > 0:
        searched = (replace(result, candidates_from=candidates_from)
                    if result is not None and candidates_from in result.stages else None)
        times = [index.expected_rerank_seconds(searched, rerank_depth, stage=stage) for stage in index.rerank_stages]
        seconds = None if None in times else sum(times)
    return columns.render_rerank_estimate(seconds, rerank_depth)


def _seconds_left(index: Index, pairs: int, stage: str = stages.RERANK) -> float | None:
    loaded = index.loaded_reranker(stage)
    return loaded.model.expected_seconds(max(0, pairs)) if loaded is not None else None


@gpu
def _rerank(index: Index, result: SearchResult, progress: Callable[[int, int], None] | None = None,
            should_stop: Callable[[], bool] | None = None, stage: str = stages.RERANK) -> SearchResult:
    return index.rerank(result, progress=progress, should_stop=should_stop, stage=stage)


def clicked_hit(panel: SearchPanel, latest: LatestSearch, event: gr.EventData, rank_key: str = "hit_rank"):
    """(stage, hit) of a card a click came from (the column is the event's target; the card's script sends
    its rank in that stage), or (None, None)."""
    result = latest.result
    name = panel.stage_of(event.target)
    stage_result = result.stages.get(name) if result is not None and name else None
    rank = event_value(event, rank_key)
    hit = next((h for h in stage_result.hits if h.rank == rank), None) if stage_result is not None else None
    return name, hit
