"""The page's model line: what the background warm-up (`search.warmup`) is doing, e.g.
"Loading models: multilingual-e5-small 120 MB of 470 MB · bge-reranker-v2-m3 (waiting)", then, while a
faster form is prepared in the background, "int8 for bge-reranker-v2-m3: quantising, about 4 min left · torch
meanwhile", and "Models ready: …" with each fallback named and each prepared form.

    div.model-status[data-state=loading|preparing|ready]
      span.model-load[data-role=dense|reranker][data-state=<ModelState>][data-preparation=<PreparationState>]
"""

from __future__ import annotations

from search.estimates import about
from search.preparation import Preparation
from search.warmup import ModelLoad, WarmupStatus

from .html import Markup, element, join
from .labels import megabytes

ROLE_NAMES = {"dense": "dense", "reranker": "reranker"}
LEADS = {"loading": "Loading models: ", "preparing": "Models ready, faster forms being prepared: ",
         "ready": "Models ready: "}


def short_name(model_id: str) -> str:
    """The last part of a Hub id or a folder path, as the status line names a model.

    >>> short_name("intfloat/multilingual-e5-small"), short_name("late-interaction")
    ('multilingual-e5-small', 'late-interaction')
    """
    return model_id.rstrip("/").rsplit("/", 1)[-1] or model_id


def line_state(status: WarmupStatus) -> str:
    """"loading" until every model is usable, "preparing" while a faster form is still being made (the torch
    forms stand in), then "ready"."""
    if not status.loaded:
        return "loading"
    return "ready" if status.done else "preparing"


def render_model_status(status: WarmupStatus) -> Markup:
    """Return the warm-up's line: each model with its download (bytes done of the total), "…" while it
    loads, "done" when loaded, the fallback it loaded instead (why: one hover away), or why it failed; a
    form being prepared with its step and the time left, the torch form standing in meanwhile."""
    state = line_state(status)
    items = [_model_html(model) for model in status.models]
    return element("div", element("span", LEADS[state], class_="model-status-lead"), join(items, " · "),
                   class_="model-status", data_state=state, role="status", aria_live="polite")


def preparation_text(name: str, preparation: Preparation) -> str:
    """What the line says of a form being prepared (or prepared) for the model `name`.

    >>> preparing = Preparation("reranker", "m", "int8", "cpu", "preparing", "quantising", 300.0, "measured here", 60.0)
    >>> preparation_text("bge-reranker-v2-m3", preparing)
    'int8 for bge-reranker-v2-m3: quantising, about 4 min left · torch meanwhile'
    """
    form = preparation.backend
    if preparation.state == "waiting":
        return f"{form} for {name}: waiting for its turn · torch meanwhile"
    if preparation.state == "ready":
        return f"{name} … done, {form} prepared in {about(preparation.elapsed_seconds).removeprefix('about ')}"
    if preparation.state == "failed":
        return f"{name} … done on torch ({form} could not be prepared)"
    left = preparation.seconds_left
    if left is None:
        when = ""
    elif left >= 1:
        when = f", {about(left)} left"
    else:
        when = f", taking longer than the {about(preparation.expected_seconds or 0).removeprefix('about ')} expected"
    return f"{form} for {name}: {preparation.step or 'preparing'}{when} · torch meanwhile"


def _model_html(model: ModelLoad) -> Markup:
    name = short_name(model.model_id)
    title = model.fallback_reason or f"{ROLE_NAMES[model.role]} model {model.model_id}"
    preparation = model.preparation
    if model.state == "waiting":
        text = f"{name} (waiting)"
    elif model.state == "downloading":
        text = f"{name}: downloading {megabytes(model.bytes_done)} of {megabytes(model.bytes_total)}"
    elif model.state == "loading":
        text = f"{name} …"
    elif model.state == "measuring":
        text = f"{name}: measuring its speed …"
    elif model.state == "failed":
        text = f"{name}: failed ({model.error or 'see the server log'})"
    elif preparation is not None:
        text = preparation_text(name, preparation)
        if preparation.state == "failed":
            title = f"{title}; {preparation.backend} could not be prepared: {preparation.error}"
        elif preparation.expected_seconds is not None and not preparation.finished:
            title = f"{title}; expected {about(preparation.expected_seconds)} in all ({preparation.basis})"
    elif model.fallback_reason:
        text = f"{name} → {model.label} … done"
    else:
        text = f"{name} … done"
    extra = {"data_preparation": preparation.state} if preparation is not None else {}
    return element("span", text, class_="model-load", data_role=ROLE_NAMES[model.role], data_state=model.state,
                   title=title, **extra)
