"""The app's page for tests that call the regions' callbacks directly: the same regions `app.build_demo`
assembles, in a `gr.Blocks` that is never launched, with the configuration a test gives."""

from __future__ import annotations

from dataclasses import replace

import gradio as gr

import app
from search import config
from ui.regions.form import PageForm
from ui.regions.layout import assemble
from ui.regions.page import AppContext, Page


def make_page(**settings) -> tuple[Page, AppContext, gr.Blocks]:
    """(page, context, blocks) with the configuration read now, `settings` (setting name -> value) in place
    of its own."""
    ctx = AppContext(replace(config.current(), **settings), app.model_warmup(), PageForm())
    with gr.Blocks() as demo:
        page = assemble(demo, ctx)
    return page, ctx, demo
