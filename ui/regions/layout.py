"""The page assembled: every region laid out in its place and wired, inside the caller's `gr.Blocks`."""

from __future__ import annotations

import gradio as gr

from ui import texts

from . import corpus, evaluate, explain, judgments, search, session, sharing, status
from .page import ApiOnly, AppContext, Page


def assemble(demo: gr.Blocks, ctx: AppContext) -> Page:
    """Lay out and wire every region of the page in `demo` (call it inside ``with demo:``); returns the page's
    components, region by region (tests call the regions' callbacks with them)."""
    states = session.session_state()
    gr.Markdown(texts.INTRO, elem_id="intro")
    models = status.layout(ctx.warmup)
    with gr.Tabs() as tabs:
        with gr.Tab("Search", id="search"):
            corpus_panel = corpus.layout(ctx)
            search_panel = search.layout(ctx)
            explain_panel = explain.layout()
            share_panel = sharing.layout()
            judging_panel = judgments.layout()
        with gr.Tab("Evaluate", id="evaluate"):
            evaluate_panel = evaluate.layout(ctx)
    api = ApiOnly(gr.Button(visible=False), gr.JSON(visible=False))
    page = Page(tabs, models, states, corpus_panel, search_panel, explain_panel, judging_panel, evaluate_panel,
                share_panel, api)
    status.wire(demo, models, ctx.warmup)
    corpus.wire(page, ctx)
    search.wire(page, ctx)
    judgments.wire(page)
    evaluate.wire(page, ctx)
    sharing.wire(demo, page, ctx)
    explain.wire(page)
    demo.load(None, js=search.PAGE_JS)
    demo.unload(session.forget_session)
    return page
