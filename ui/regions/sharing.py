"""The Share region: a link to this view (the address bar follows it), Copy link, restoring a view from the
link a page was opened with (its sample is built and its query searched), and the Download bundle zip.

Everything comes from the page's form (`form.PageForm`): a field of `ui.share.ViewState` registered there
is in the link, the restore, the bundle and the build with no edit here.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import gradio as gr

from search import policy
from search.pipeline import Index
from ui import judging, share
from ui.bundle import BUNDLE_NAME, make_bundle

from .common import Updates, fail, unchanged, warn
from .corpus import BUILD_SLOTS, CorpusCallbacks, built_outputs, wire_after_build
from .form import UPLOADS
from .page import SAMPLE_NAMES, AppContext
from .search import SearchCallbacks, wire_search_chain
from .session import BuildIdle, LatestSearch, downloads_folder

if TYPE_CHECKING:
    from .page import Page


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


def layout() -> SharePanel:
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


def wire(demo: gr.Blocks, page: Page, ctx: AppContext) -> None:
    """The link follows the page's settings; a page opened with one restores its view, builds its sample
    and searches (the same chain as the Search button, and what follows a build); Copy link and Download
    bundle."""
    panel, session, form = page.share, page.session, ctx.form
    callbacks = ShareCallbacks(page, ctx)
    quiet = {"api_visibility": "undocumented", "show_progress": "hidden"}
    widgets = form.widgets()
    # Every widget's change, except the query's on each keystroke: it joins the link when it is searched or
    # left.
    triggers = [component.change for name, component in widgets.items() if name != "query"]
    triggers += [page.search.query.blur, page.search.query.submit, page.search.button.click]
    gr.on(triggers, callbacks.share_link, None, [panel.query_string, panel.notes], inputs_kwargs=widgets,
          trigger_mode="always_last", queue=False, **quiet)
    # In the browser: the link box gets the full URL, and the address bar follows without a reload.
    panel.query_string.change(None, [panel.query_string], [panel.link], js=share.LINK_JS, **quiet)
    panel.copy_button.click(None, [panel.link], None, js=share.COPY_JS, api_visibility="undocumented")
    demo.load(callbacks.share_link, None, [panel.query_string, panel.notes], inputs_kwargs=widgets, queue=False,
              **quiet)
    demo.load(callbacks.restore_view, None,
              [*form.components(), panel.problems, panel.query_string, panel.restoring], **quiet)
    built = panel.restoring.change(
        callbacks.build_restored, [panel.restoring, session.build_idle], built_outputs(page),
        inputs_kwargs=form.widgets("corpus"), api_visibility="undocumented", concurrency_limit=BUILD_SLOTS,
        concurrency_id="build", show_progress="minimal",
    )
    wire_after_build(page, built)
    wire_search_chain(page, built.success, callbacks.search_restored)
    panel.bundle_button.click(callbacks.download_bundle, [session.index, session.judged, session.latest, panel.link],
                              [panel.bundle], inputs_kwargs=widgets, api_visibility="undocumented")


def share_options(ctx: AppContext) -> share.ShareOptions:
    """What a link may name here: the samples, the offered models (any, if the operator allows custom ones),
    the backends, the configured ranges, and the page's defaults."""
    settings = ctx.settings
    offered = policy.offered_models(settings)
    return share.ShareOptions(
        samples=tuple(SAMPLE_NAMES), dense_models=None if offered.custom else offered.dense,
        rerankers=None if offered.custom else offered.rerankers, backends=policy.offered_backends(settings),
        max_query_chars=settings.max_query_chars,
        defaults=share.ViewState(k=settings.k, rerank_depth=settings.rerank_depth,
                                 candidates_from=settings.candidates_from, window=settings.window,
                                 overlap=settings.overlap, dense_model=settings.dense_model,
                                 reranker_model=settings.rerankers[0][0], backend=settings.backend))


class ShareCallbacks:
    """The Share region's handlers."""

    def __init__(self, page: Page, ctx: AppContext) -> None:
        self.page = page
        self.ctx = ctx
        self.panel = page.share

    def share_link(self, **form: Any) -> Updates:
        """The link of the page's current settings, and whether it can carry the corpus (not uploads)."""
        link = share.share_link(self.ctx.form.view(form), uploaded=bool(form.get(UPLOADS)))
        return {self.panel.query_string: link.query_string, self.panel.notes: share.render_share_note(link.note)}

    def restore_view(self, request: gr.Request) -> Updates:
        """On page load: the view a link carries (`ui.share.parse_view`) set into the controls; a bad value
        keeps the default and is said beside the link. Setting `restoring` builds the sample and searches."""
        params = dict(request.query_params) if request is not None else {}
        if not set(params) & set(share.PARAMETERS):
            return unchanged()
        parsed = share.parse_view(params, share_options(self.ctx))
        state = parsed.state
        updates: Updates = self.ctx.form.restore(state, parsed.given | ({"sample"} if state.sample else set()))
        problems = list(parsed.problems)
        if state.sample is None and state.query:
            problems.append("The link names no sample corpus (a link cannot carry uploaded files): upload the "
                            "files it was made from, press Build index, then Search.")
        updates[self.panel.problems] = share.render_share_note("", problems)
        updates[self.panel.query_string] = share.query_string(state)
        updates[self.panel.restoring] = state
        return updates

    def build_restored(self, restoring: share.ViewState | None, idle: BuildIdle, request: gr.Request,
                       **form: Any):
        """Build the sample a link names, with the link's settings (set into the controls already)."""
        if restoring is None or restoring.sample is None or form.get(UPLOADS):
            yield unchanged()
            return
        yield from CorpusCallbacks(self.page, self.ctx).build_corpus(idle, request, **form)

    def search_restored(self, index: Index | None, latest: LatestSearch, session: judging.SessionJudgments,
                        query: str, k: int, rerank_depth: int, candidates_from: str, score_view: str,
                        collapse: bool, score_line: str) -> Updates:
        """After a link's build: its query, searched as the Search button would (nothing without a query)."""
        if index is None or not (query or "").strip():
            return unchanged()
        return SearchCallbacks(self.page).first_stages(index, latest, session, query, k, rerank_depth,
                                                       candidates_from, score_view, collapse, score_line)

    def download_bundle(self, index: Index | None, session: judging.SessionJudgments, latest: LatestSearch,
                        link: str, request: gr.Request, **form: Any) -> Updates:
        """One zip (`ui.bundle`) of the latest search as drawn, the session's judgments and runs, and a
        static page of the columns; a TREC file that can't hold an id is left out with a warning."""
        result = latest.result
        view = self.ctx.form.view(form)
        if result is not None:  # what was searched, even if the controls moved since
            view = replace(view, query=result.query, rerank_depth=result.rerank_depth,
                           candidates_from=result.candidates_from)
        if index is not None:  # what the index was built with, even if the controls moved since
            settings = index.settings
            compare = settings.rerankers[1] if len(settings.rerankers) > 1 else None
            view = replace(view, window=settings.window, overlap=settings.overlap,
                           dense_model=settings.dense_model, reranker_model=settings.rerankers[0].model,
                           backend=settings.backend, compare_reranker=compare.model if compare else None,
                           compare_backend=(compare.backend or None) if compare else None)
        files = form.get(UPLOADS)
        uploaded = bool(files)
        corpus = ("uploaded files: " + ", ".join(Path(file).name for file in files)) if files else (view.sample or "")
        try:
            bundle = make_bundle(result, session, view, link=link or "",
                                 link_note=share.UPLOADED_NOTE if uploaded else "", corpus=corpus,
                                 corpus_languages=index.languages if index is not None else ())
        except ValueError as error:
            raise fail(str(error)) from None
        for name, reason in bundle.left_out.items():
            warn(f"{name} was left out of the bundle: {reason}")
        folder = downloads_folder(request) / "bundle"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / BUNDLE_NAME).write_bytes(bundle.data)
        return {self.panel.bundle: str(folder / BUNDLE_NAME)}

