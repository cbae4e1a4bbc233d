"""The page's model line: what the background warm-up (`search.warmup`) is doing, e.g.
"Loading models: multilingual-e5-small 120 MB of 470 MB · bge-reranker-v2-m3 (waiting)", then
"Models ready: …" with each fallback named.

    div.model-status[data-state=loading|ready]  span.model-load[data-role=dense|reranker][data-state=<ModelState>]
"""

from __future__ import annotations

from search.warmup import ModelLoad, WarmupStatus

from .html import Markup, element, join
from .labels import megabytes

ROLE_NAMES = {"dense": "dense", "reranker": "reranker"}


def short_name(model_id: str) -> str:
    """The last part of a Hub id or a folder path, as the status line names a model.

    >>> short_name("intfloat/multilingual-e5-small"), short_name("late-interaction")
    ('multilingual-e5-small', 'late-interaction')
    """
    return model_id.rstrip("/").rsplit("/", 1)[-1] or model_id


def render_model_status(status: WarmupStatus) -> Markup:
    """Return the warm-up's line: each model with its download (bytes done of the total), "…" while it
    loads, "done" when loaded, the fallback it loaded instead (why: one hover away), or why it failed."""
    loading = not status.done
    items = [_model_html(model) for model in status.models]
    lead = "Loading models: " if loading else "Models ready: "
    return element("div", element("span", lead, class_="model-status-lead"), join(items, " · "),
                   class_="model-status", data_state="loading" if loading else "ready", role="status",
                   aria_live="polite")


def _model_html(model: ModelLoad) -> Markup:
    name = short_name(model.model_id)
    if model.state == "waiting":
        text = f"{name} (waiting)"
    elif model.state == "downloading":
        text = f"{name}: downloading {megabytes(model.bytes_done)} of {megabytes(model.bytes_total)}"
    elif model.state == "loading":
        text = f"{name} …"
    elif model.state == "failed":
        text = f"{name}: failed ({model.error or 'see the server log'})"
    elif model.fallback_reason:
        text = f"{name} → {model.label} … done"
    else:
        text = f"{name} … done"
    return element("span", text, class_="model-load", data_role=ROLE_NAMES[model.role], data_state=model.state,
                   title=model.fallback_reason or f"{ROLE_NAMES[model.role]} model {model.model_id}")
