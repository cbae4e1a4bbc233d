"""The model line under the title: what the background warm-up of the default models is doing, streamed
until every model is loaded (or failed) and every faster form it prepares in the background is made."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import gradio as gr

from search.warmup import Warmup
from ui.model_status import render_model_status

from .common import Updates

STATUS_POLL_SECONDS = 0.5  # how often the line looks at the warm-up while models load
PREPARING_POLL_SECONDS = 2.0  # and while the models are usable and a form is being prepared (minutes)


def layout(warmup: Warmup) -> gr.HTML:
    return gr.HTML(render_model_status(warmup.status()), elem_id="model-status")


def wire(demo: gr.Blocks, line: gr.HTML, warmup: Warmup) -> None:
    async def follow() -> AsyncIterator[Updates]:
        """The warm-up's progress, streamed until every model is loaded (or failed) and prepared."""
        while not (status := warmup.status()).done:
            yield {line: render_model_status(status)}
            await asyncio.sleep(STATUS_POLL_SECONDS if not status.loaded else PREPARING_POLL_SECONDS)
        yield {line: render_model_status(status)}

    demo.load(follow, None, [line], api_visibility="undocumented", show_progress="hidden", concurrency_limit=None)
