"""The Corpus region: files or a sample, the passage and model settings, Build and Cancel, and what the
build did (progress, summary, the languages plot).

A build reads the uploads (or the sample), waits for the model warm-up when it needs the same models,
splits, detects languages and indexes, streaming each step's progress; *Cancel build* (or closing the
page) stops it within a batch. Which models and TEI URLs a visitor may name, and how much they may upload,
is the engine's policy (`search.policy`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import gradio as gr

from search import config, policy
from search.export import report_to_dict
from search.loading import resolve_backend
from search.pipeline import (
    BuildCancelled,
    BuildEstimate,
    Index,
    Prepared,
    Settings,
    build,
    default_cache_dir,
    estimate,
    prepare,
)
from search.reading import ReadLimits, read_paths
from search.warmup import Role, Warmup
from ui import build_summary, texts
from ui.share import build_overrides

from . import evaluate
from .common import Updates, fail, gpu, stream, unchanged, warn
from .form import TEI_URL, UPLOADS
from .page import NO_SAMPLE, SAMPLE_NAMES, SAMPLES, AppContext
from .search import rerank_estimate
from .session import BuildIdle, session_cache

if TYPE_CHECKING:
    from .page import Page

logger = logging.getLogger(__name__)

NO_COMPARE = "none"  # the "Compare with" choice that turns reranker B off
SAME_BACKEND = "same as A"  # reranker B's backend choice that follows the Backend field
DETECT_ENCODING = "detect"  # the encoding choice that leaves it to search.decoding
# Legacy encodings a user is likely to need to name (any other Python codec can be typed).
ENCODINGS = (("Windows-1252 (Western European)", "cp1252"), ("Windows-1250 (Central European)", "cp1250"),
             ("Windows-1251 (Cyrillic)", "cp1251"), ("KOI8-R (Russian)", "koi8-r"), ("Windows-1253 (Greek)", "cp1253"),
             ("Windows-1254 (Turkish)", "cp1254"), ("Windows-1255 (Hebrew)", "cp1255"),
             ("Windows-1256 (Arabic)", "cp1256"), ("Windows-874 (Thai)", "cp874"), ("GB18030 (Chinese)", "gb18030"),
             ("Big5 (Traditional Chinese)", "big5"), ("Shift_JIS (Japanese)", "shift_jis"),
             ("EUC-JP (Japanese)", "euc_jp"), ("ISO-2022-JP (Japanese)", "iso2022_jp"), ("EUC-KR (Korean)", "euc_kr"),
             ("UTF-16 little-endian", "utf-16-le"), ("UTF-16 big-endian", "utf-16-be"))
# Two builds at a time: a small corpus is built beside a long one instead of waiting for it, and a third
# waits in the queue. Each build is bounded by SEARCH_MAX_PASSAGES and stops when its page goes away.
BUILD_SLOTS = 2
STATUS_POLL_SECONDS = 0.5  # how often a waiting build looks at the warm-up


class CorpusPanel(NamedTuple):
    """Files or a sample, passage and model settings, Build, and what the build did."""

    files: gr.File
    sample: gr.Dropdown
    window: gr.Slider
    overlap: gr.Slider
    dense_model: gr.Dropdown
    reranker_model: gr.Dropdown
    backend: gr.Dropdown
    compare_model: gr.Dropdown  # reranker B ("Compare with"), or none
    compare_backend: gr.Dropdown  # what runs B, or the same as A
    tei_url: gr.Textbox  # the tei backend's endpoint(s); hidden by SEARCH_HIDE_TEI_URL
    build_button: gr.Button
    cancel_button: gr.Button
    progress: gr.HTML
    summary: gr.HTML
    languages_plot: gr.BarPlot
    build_json: gr.JSON
    accordion: gr.Accordion  # the whole panel: folded to a one-line summary after a build
    confirm_box: gr.Group  # a long build's question before embedding (hidden otherwise)
    confirm_text: gr.HTML
    leave_out: gr.CheckboxGroup  # files to leave out before embedding
    go_on: gr.Button
    drop: gr.Button
    api_build: gr.Button  # hidden: the build_index API endpoint, which never asks


def layout(ctx: AppContext) -> CorpusPanel:
    settings, form = ctx.settings, ctx.form
    offered = policy.offered_models(settings)
    backends = list(policy.offered_backends(settings))
    # Open until a corpus is built; then folded to a one-line summary, one click from changing it.
    with gr.Accordion("Corpus: upload files or pick a sample, then Build index", open=True,
                      elem_id="corpus-panel") as accordion, gr.Row(equal_height=False):
        with gr.Column(scale=2):
            files = form.add(UPLOADS, gr.File(
                label=f"Upload files (up to {settings.max_upload_mb} MB in all; 1 MB = 1,000,000 bytes)",
                file_count="multiple", type="filepath", elem_id="corpus-files"), "corpus")
            sample = form.add("sample", gr.Dropdown(
                [NO_SAMPLE, *SAMPLES], value=next(iter(SAMPLES)), label="…or a sample corpus",
                info="used when no file is uploaded", elem_id="sample-corpus"), "corpus",
                to_view=lambda label: next((name for name, full in SAMPLE_NAMES.items() if full == label), None),
                to_widget=lambda name: SAMPLE_NAMES.get(name, NO_SAMPLE))
            with gr.Accordion("Passages and models", open=False):
                low, high, step = config.limits("window")
                window = form.add("window", gr.Slider(
                    low, high, value=settings.window, step=step, label="Passage window (words)",
                    info="one character counts as a word in Chinese, Japanese, Thai…"), "corpus", to_view=int)
                low, high, step = config.limits("overlap")
                overlap = form.add("overlap", gr.Slider(low, high, value=settings.overlap, step=step,
                                                        label="Overlap (words)"), "corpus", to_view=int)
                titles = gr.Checkbox(settings.index_titles, label="Index titles with passages",
                                     info="a document's title is searched and reranked with each of its passages",
                                     elem_id="index-titles")
                dense_model = form.add("dense_model", gr.Dropdown(
                    _choices(offered.dense), value=settings.dense_model, label="Dense model",
                    allow_custom_value=offered.custom, info="default from env SEARCH_DENSE_MODEL; offline, "
                    "models that can't load fall back to the bundled multilingual-e5-small", elem_id="dense-model"),
                    "corpus", to_view=_text)
                reranker_model = form.add("reranker_model", gr.Dropdown(
                    _choices(offered.rerankers), value=settings.rerankers[0][0], label="Reranker",
                    allow_custom_value=offered.custom, info="default from env SEARCH_RERANKER_MODEL; offline, "
                    "models that can't load fall back to late interaction", elem_id="reranker-model"),
                    "corpus", to_view=_text)
                backend = form.add("backend", gr.Dropdown(
                    backends, value=settings.backend, label="Backend",
                    info="what runs the models; default from env SEARCH_BACKEND (auto: the best available here)",
                    elem_id="backend"), "corpus", to_view=_text)
                with gr.Row():
                    compare_model = form.add("compare_reranker", gr.Dropdown(
                        [NO_COMPARE, *_choices(offered.rerankers)], value=NO_COMPARE,
                        label="Compare with (reranker B)", allow_custom_value=offered.custom,
                        info="a second reranker for the same candidates: a fifth column", elem_id="compare-model"),
                        "corpus", to_view=lambda value: _chosen(value, NO_COMPARE),
                        to_widget=lambda value: value or NO_COMPARE)
                    compare_backend = form.add("compare_backend", gr.Dropdown(
                        [SAME_BACKEND, *backends], value=SAME_BACKEND, label="Backend of B",
                        info="e.g. int8 against A's onnx, or tei", elem_id="compare-backend"), "corpus",
                        to_view=lambda value: _chosen(value, SAME_BACKEND),
                        to_widget=lambda value: value or SAME_BACKEND)
                tei_url = form.add(TEI_URL, _tei_url_field(settings), "corpus")
                # Fields added later come last: the build_index API takes them after the older ones.
                form.add("index_titles", titles, "corpus", to_view=bool)
                gr.Markdown(texts.MODELS_HELP)
            with gr.Accordion("Formats and limits", open=False):
                with gr.Row():
                    text_column = gr.Textbox(
                        "", label="Text column", placeholder="found by name (text, body, content…)",
                        info="the CSV/TSV column or JSON key that holds the text, when it has another name",
                        elem_id="text-column", max_length=100)
                    encoding = gr.Dropdown(
                        [(DETECT_ENCODING, ""), *ENCODINGS], value="", label="Encoding of files without a BOM",
                        allow_custom_value=True, elem_id="encoding",
                        info="detected by default; name one (any Python codec) when the build summary says a "
                             "file was decoded with low confidence")
                gr.Markdown(texts.CORPUS_HELP + texts.corpus_limits(settings.max_upload_mb,
                                                                     policy.max_passages(settings)))
                # Fields added later come last: the build_index API takes them after the older ones.
                form.add("text_column", text_column, "corpus", to_view=_text)
                form.add("encoding", encoding, "corpus", to_view=_text, to_widget=lambda value: value or "")
            with gr.Row():
                build_button = gr.Button("Build index", variant="primary", elem_id="build-button", scale=3)
                cancel_button = gr.Button("Cancel build", variant="stop", elem_id="cancel-build", scale=1)
        with gr.Column(scale=3):
            # A long build asks before embedding: what it will cost here, the files that contribute most.
            with gr.Group(visible=False, elem_id="build-confirm") as confirm_box:
                confirm_text = gr.HTML()
                leave_out = gr.CheckboxGroup([], label="Leave out these files before embedding",
                                             elem_id="leave-out")
                with gr.Row():
                    go_on = gr.Button("Build it", variant="primary", elem_id="confirm-build")
                    drop = gr.Button("Cancel", elem_id="drop-build")
            progress = gr.HTML(elem_id="build-progress")
            summary = gr.HTML(elem_id="build-summary")
            languages_plot = gr.BarPlot(x="language", y="passages", title="Passages per detected language",
                                        tooltip=["name", "passages"], height=220, y_lim=[0, None], sort="-y",
                                        elem_id="languages-plot")
            build_json = gr.JSON(visible=False)
    api_build = gr.Button(visible=False)  # the build_index API endpoint: it never asks, it builds
    return CorpusPanel(files, sample, window, overlap, dense_model, reranker_model, backend, compare_model,
                       compare_backend, tei_url, build_button, cancel_button, progress, summary, languages_plot,
                       build_json, accordion, confirm_box, confirm_text, leave_out, go_on, drop, api_build)


def _choices(models: Sequence[str]) -> list[tuple[str, str]]:
    # Each model with where it would load from here, so a visitor sees which ones can't load offline.
    return [(f"{model} ({policy.availability(model)})", model) for model in models]


def _text(value: Any) -> str | None:
    return (value or "").strip() or None


def _chosen(value: str | None, off: str) -> str | None:
    value = (value or "").strip()
    return None if value in ("", off) else value


def _tei_url_field(settings: config.Config) -> gr.Textbox:
    # Empty by default: the operator's own endpoint (SEARCH_TEI_URL) is used and never written into the page,
    # nor is the token, which only ever comes from the server's environment.
    default = "set by the server" if settings.tei_url.strip() else "none set"
    return gr.Textbox("", label="TEI URL", visible=not settings.hide_tei_url, elem_id="tei-url",
                      placeholder="https://…endpoints.huggingface.cloud (comma-separate several)",
                      info=f"the text-embeddings-inference endpoint the tei backend calls; empty: the server's "
                           f"default ({default}). A token, if needed, is the server's HF_TOKEN, never typed here.")


# -- wiring ---------------------------------------------------------------------------------------------

def wire(page: Page, ctx: AppContext) -> None:
    corpus = page.corpus
    callbacks = CorpusCallbacks(page, ctx)
    confirm = [page.session.pending_build, corpus.confirm_box, corpus.confirm_text, corpus.leave_out]
    building = corpus.build_button.click(
        callbacks.build_page, [page.session.build_idle], [*built_outputs(page), *confirm],
        inputs_kwargs=ctx.form.widgets("corpus"), api_visibility="undocumented", concurrency_limit=BUILD_SLOTS,
        concurrency_id="build", show_progress="minimal",
    )
    wire_after_build(page, building)
    continuing = corpus.go_on.click(
        callbacks.continue_build, [page.session.pending_build, corpus.leave_out, page.session.build_idle],
        [*built_outputs(page), *confirm], inputs_kwargs=ctx.form.widgets("corpus"), api_visibility="undocumented",
        concurrency_limit=BUILD_SLOTS, concurrency_id="build", show_progress="minimal",
    )
    wire_after_build(page, continuing)
    corpus.drop.click(callbacks.drop_pending, None, [page.session.pending_build, corpus.confirm_box, corpus.progress],
                      api_visibility="undocumented", queue=False)
    api_building = corpus.api_build.click(
        callbacks.build_corpus, [page.session.build_idle], built_outputs(page),
        inputs_kwargs=ctx.form.widgets("corpus"), api_name="build_index", concurrency_limit=BUILD_SLOTS,
        concurrency_id="build", show_progress="minimal",
    )
    wire_after_build(page, api_building)
    # Cancelling closes the build's event (as closing the page does), which stops the build at its next batch;
    # then the progress panel is cleared, once the build has stopped sending progress.
    corpus.cancel_button.click(None, None, None, cancels=[building, continuing], api_visibility="undocumented",
                               queue=False).then(
        callbacks.build_cancelled, [page.session.build_idle], [corpus.progress], api_visibility="undocumented",
        show_progress="hidden")


def built_outputs(page: Page) -> list:
    """What a build (from the button or a link) updates."""
    corpus = page.corpus
    return [page.session.index, corpus.progress, corpus.summary, corpus.languages_plot, corpus.build_json]


def wire_after_build(page: Page, building: gr.events.Dependency) -> None:
    """What follows a successful build, from the button or a link: the estimate beside the depth slider (a
    new reranker, measured or not), the reranker columns this index has (B shown or hidden) and the
    Evaluate tab started afresh for the new corpus. A build that stopped to ask before embedding also
    ends successfully: it built nothing, so the panel, the columns and the Evaluate tab stay."""
    callbacks = AfterBuild(page)
    building.success(callbacks.new_index_estimate, [page.session.index, page.search.rerank_depth],
                     [page.search.rerank_estimate], api_visibility="undocumented", show_progress="hidden")
    building.success(callbacks.new_index, [page.session.index, page.evaluate.stages, page.session.pending_build],
                     [page.corpus.accordion, *page.search.columns.values(), *evaluate.cleared_outputs(page.evaluate),
                      page.session.eval_judgments, page.session.report],
                     api_visibility="undocumented", show_progress="hidden")


# -- callbacks ------------------------------------------------------------------------------------------

class CorpusCallbacks:
    """The Corpus region's handlers."""

    def __init__(self, page: Page, ctx: AppContext) -> None:
        self.page = page
        self.panel = page.corpus
        self.ctx = ctx

    def build_corpus(self, idle: BuildIdle, request: gr.Request, **form: Any) -> Iterator[Updates]:
        """Read, split, detect languages and index the uploaded files or a sample (the form's corpus fields,
        by name: the `build_index` API endpoint's parameters); streams step progress with the passage count
        and the time left for embedding at the speed measured on this machine. A corpus over
        SEARCH_MAX_PASSAGES is refused while splitting; when the event is closed (Cancel, or the page went
        away) the build stops. A build with the default models waits for the model warm-up to have loaded
        them, showing its progress. An API call never asks: it builds."""
        yield from self._guarded(idle, form, request, confirm=False)

    def build_page(self, idle: BuildIdle, request: gr.Request, **form: Any) -> Iterator[Updates]:
        """The page's Build index: as `build_corpus`, except that when embedding would take longer than
        SEARCH_CONFIRM_BUILD_SECONDS here it stops before embedding and asks (what it will cost, the files
        that contribute most, which to leave out), keeping the read corpus for `continue_build`."""
        yield {self.panel.confirm_box: gr.Group(visible=False), self.page.session.pending_build: None}
        yield from self._guarded(idle, form, request, confirm=True)

    def continue_build(self, pending: Prepared | None, leave_out: Sequence[str] | None, idle: BuildIdle,
                       request: gr.Request, **form: Any) -> Iterator[Updates]:
        """Build it: embed the corpus the page asked about, without the files left out."""
        if pending is None:
            raise fail("There is no build waiting: press Build index.")
        try:
            prepared = pending.without(leave_out or ())
        except ValueError as error:
            raise fail(str(error)) from None
        yield {self.panel.confirm_box: gr.Group(visible=False), self.page.session.pending_build: None}
        yield from self._guarded(idle, form, request, confirm=False, prepared=prepared)

    def drop_pending(self) -> Updates:
        """Cancel a build that waits for its go-ahead: nothing was embedded, nothing is kept."""
        return {self.panel.confirm_box: gr.Group(visible=False), self.page.session.pending_build: None,
                self.panel.progress: ""}

    def _guarded(self, idle: BuildIdle, form: dict[str, Any], request: gr.Request, **options: Any):
        idle.clear()
        try:
            yield from self._build(form, request, **options)
        finally:  # also when the event is closed: the build has then stopped sending progress
            idle.set()

    def _build(self, form: dict[str, Any], request: gr.Request, *, confirm: bool,
               prepared: Prepared | None = None) -> Iterator[Updates]:
        panel, warmup = self.panel, self.ctx.warmup
        paths, names, cache_dir = _corpus_inputs(form.get(UPLOADS), form.get("sample"), request, self.ctx.settings)
        settings = prepared.settings if prepared is not None else settings_of(self.ctx, form)
        max_passages = policy.max_passages(self.ctx.settings)
        threshold = self.ctx.settings.confirm_build_seconds
        stop = threading.Event()  # set by `stream` when this event is closed before the build is done

        def work(report: Callable[[object], None]):
            started = time.perf_counter()

            def progress(step: str, done: int, total: int) -> None:
                report(build_summary.BuildEvent(step, done, total, time.perf_counter() - started))

            def models_ready(role: Role, requested: str) -> bool:
                if wait_for_warmup(warmup, role, requested, settings.backend, stop):
                    return True
                logger.info("build cancelled after %.1f s while waiting for the %s model",
                            time.perf_counter() - started, role)
                return False

            corpus = prepared
            if corpus is None:
                progress("read", 0, 1)
                # The upload itself is capped by SEARCH_MAX_UPLOAD_MB; what it may expand to (archives) and cost
                # to parse follows the reading limits' own settings, which every limit message names.
                read = read_paths(paths, names=names, limits=ReadLimits(), text_column=settings.text_column,
                                  encoding=settings.encoding)
                corpus = prepare(read, settings, max_passages=max_passages)
            if not models_ready("dense", settings.dense_model):
                return None
            expected = estimate(corpus)
            report(expected)
            if confirm and expected.seconds is not None and threshold and expected.seconds > threshold:
                return corpus, expected
            try:
                index = _build_index(corpus, progress, cache_dir, stop.is_set)
            except BuildCancelled as error:
                logger.info("build cancelled after %.1f s: %s", time.perf_counter() - started, error)
                return None
            logger.info("built %d passages in %.1f s", len(index), time.perf_counter() - started)
            if not models_ready("reranker", settings.rerankers[0].model):
                return None
            # Load the rerankers now: a problem with one shows before any search.
            return index, [index.reranker(stage) for stage in index.rerank_stages]

        def show(events: list, seconds: float) -> Updates:
            steps = [event for event in events if isinstance(event, build_summary.BuildEvent)]
            known = next((event for event in reversed(events) if isinstance(event, BuildEstimate)), None)
            return {panel.progress: build_summary.render_build_progress(steps, seconds, warmup.status(), known)}

        try:
            built = yield from stream(work, show, stop)
        except gr.Error:
            yield {panel.progress: ""}  # nothing was indexed: no progress left standing beside the error
            raise
        if built is None:
            yield {panel.progress: ""}
            return
        if isinstance(built[0], Prepared):
            corpus, expected = built
            yield {panel.progress: "", self.page.session.pending_build: corpus,
                   panel.confirm_box: gr.Group(visible=True),
                   panel.confirm_text: build_summary.render_confirm(expected, threshold),
                   panel.leave_out: gr.CheckboxGroup(choices=[item.source for item in expected.per_source[:20]],
                                                     value=[])}
            return
        index, rerankers = built
        skipped = index.report.skipped
        if skipped:
            warn(f"{len(skipped)} file(s) or line(s) skipped, e.g. {skipped[0]}. The rest was indexed; "
                 "see the list under the summary.")
        yield {
            self.page.session.index: index,
            panel.progress: "",
            panel.summary: build_summary.render_build_summary(index.report) + build_summary.render_rerankers(
                index.rerank_stages, rerankers),
            panel.languages_plot: build_summary.languages_frame(index.report),
            panel.build_json: {**report_to_dict(index.report), "backend": resolve_backend(index.settings.backend),
                               "rerankers": [{"stage": stage, "label": loaded.model.label,
                                              "backend": loaded.model.backend,
                                              "fallback_reason": loaded.fallback_reason}
                                             for stage, loaded in zip(index.rerank_stages, rerankers, strict=True)]},
        }

    def build_cancelled(self, idle: BuildIdle) -> Updates:
        """After Cancel build (which closes the running build's event): once that build has stopped, clear
        its progress panel."""
        if not idle.wait(timeout=30):
            logger.warning("a cancelled build was still sending progress after 30 s")
        return {self.panel.progress: ""}


class AfterBuild:
    """The updates that follow a build in other regions."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def new_index_estimate(self, index: Index | None, depth: int) -> Updates:
        """The expected rerank time at this depth with the new index's rerankers."""
        return {self.page.search.rerank_estimate: rerank_estimate(index, None, int(depth), "hybrid")}

    def new_index(self, index: Index | None, chosen: Sequence[str] | None, pending: Prepared | None = None) -> Updates:
        """Show the columns of the rerankers this index has (empty until a search) and hide the others; offer
        the Evaluate tab the new index's stages (those chosen before stay chosen, a new reranker's is ticked,
        a gone one's unticked) and clear the results and judgments it showed for the previous corpus.
        Nothing changes while a corpus waits for the go-ahead (`pending`): the build asked instead of
        building, and folding the panel would hide its question."""
        if pending is not None:
            logger.info("a build of %d passages waits for its go-ahead: the corpus panel, the columns and the "
                        "Evaluate tab stay as they are", len(pending.passages))
            return unchanged()
        search = self.page.search
        names = index.rerank_stages if index is not None else ()
        updates: Updates = {search.columns[name]: gr.HTML("", visible=name in names or name == search.rerank_stages[0])
                            for name in search.rerank_stages}
        if index is not None:
            labels = [index.reranker_label(stage) for stage in index.rerank_stages]
            updates[self.page.corpus.accordion] = gr.Accordion(
                label=f"Corpus: {build_summary.one_line(index.report, labels)} (open to change it)", open=False)
        return {**updates, **evaluate.cleared(self.page.evaluate, index, chosen),
                self.page.session.eval_judgments: None, self.page.session.report: None}


def settings_of(ctx: AppContext, form: dict[str, Any]) -> Settings:
    """The build settings the form's values ask for, checked by the operator's policy."""
    view = ctx.form.view(form)
    overrides = build_overrides(view)
    rerankers = overrides.pop("rerankers")
    try:
        return policy.build_settings(overrides, rerankers=rerankers, tei_url=form.get(TEI_URL),
                                     settings=ctx.settings)
    except ValueError as error:
        raise fail(str(error)) from None


@gpu
def _build_index(corpus: Prepared, progress, cache_dir: Path, should_stop: Callable[[], bool]) -> Index:
    return build(corpus, progress=progress, cache_dir=cache_dir, should_stop=should_stop)


def wait_for_warmup(warmup: Warmup, role: Role, requested: str, backend: str, stop: threading.Event) -> bool:
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


def _corpus_inputs(files: Sequence[str] | None, sample: str | None, request: gr.Request,
                   settings: config.Config) -> tuple[list[Path], list[str], Path]:
    if files:
        paths = [Path(file) for file in files]
        try:
            policy.check_upload(paths, settings)
        except ValueError as error:
            raise fail(str(error)) from None
        # Uploads keep their own name as the last path part; messages should name that, not a temp path.
        return paths, [path.name for path in paths], session_cache(request)
    if sample in SAMPLES:
        return [SAMPLES[sample]], [SAMPLES[sample].name], default_cache_dir() / "samples"
    raise fail("Upload one or more files, or choose a sample corpus, then press Build index.")

