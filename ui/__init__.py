"""The Gradio layer's rendering: engine results in, HTML, tables and chart data out.

`highlight` (query terms in passages), `columns` (one column per stage), `build_summary` (what a build
did), `evaluation_view` (the Evaluate tab), `explain_view` (why a passage scored so), `judging` (a session's
marks), built with `html` (escaping by construction) and `labels` (titles, durations); `style.css` styles it all.
"""

from __future__ import annotations

from importlib import resources


def stylesheet() -> str:
    """Return the app's CSS (``ui/style.css``, shipped as package data)."""
    return resources.files(__name__).joinpath("style.css").read_text(encoding="utf-8")
