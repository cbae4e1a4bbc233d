"""What every region's callbacks share: updates keyed by component, streaming a background run's progress,
and messages that reach the user escaped (never a stack trace)."""

from __future__ import annotations

import html
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import gradio as gr

from ui import texts

logger = logging.getLogger(__name__)

Updates = dict[Any, object]
"""A callback's answer: component -> new value; components left out keep theirs."""

try:  # ZeroGPU hardware: GPU work must run inside functions decorated with spaces.GPU.
    import spaces

    gpu = spaces.GPU
except ImportError:
    def gpu(fn):
        return fn


def unchanged() -> Updates:
    """Leave every output of the event as it is (an empty dict would be read as one missing value)."""
    return gr.skip()


def fail(message: str) -> gr.Error:
    """The error a callback raises for the user to read. Gradio renders message text as (sanitised) HTML,
    which still allows links and images: it is escaped, since messages quote file names, ids and lines
    from uploads."""
    return gr.Error(html.escape(message), print_exception=False)


def warn(message: str) -> None:
    gr.Warning(html.escape(message))


def info(message: str) -> None:
    gr.Info(html.escape(message))


def require(index):
    """`index`, or the message that a corpus must be built first."""
    if index is None:
        raise fail(texts.NO_INDEX)
    return index


def event_value(event: gr.EventData, name: str) -> object:
    """A custom event's payload value `name` (None when the payload lacks it, or the event was sent by hand
    rather than by the page's script)."""
    try:
        return getattr(event, name)
    except (AttributeError, TypeError):
        return None


def stream(work: Callable[[Callable[[object], None]], Any], show: Callable[[list, float], Updates | None],
           stop: threading.Event | None = None) -> Generator[Updates, None, Any]:
    """Run `work(report)` in a thread, where `report(event)` records progress; while it runs, yield
    `show(events, seconds)` with every event recorded so far (unless it returns None: nothing to update).
    Returns what `work` returned; when the event is closed mid-run (the page went away, Cancel), sets
    `stop` so the work can stop at its next step. Errors reach the user as messages, never as a trace."""
    events: queue.Queue[object] = queue.Queue()
    seen: list[object] = []
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = work(events.put)
        except Exception as error:  # noqa: BLE001 - reported below
            outcome["error"] = error

    started = time.perf_counter()
    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    try:
        while worker.is_alive():
            worker.join(timeout=0.25)
            while not events.empty():
                seen.append(events.get())
            update = show(seen, time.perf_counter() - started)
            if update is not None:
                yield update
    finally:
        if worker.is_alive() and stop is not None:
            stop.set()  # the page went away mid-run: let the worker stop at its next step
    error = outcome.get("error")
    if isinstance(error, ValueError):
        raise fail(str(error))
    if error is not None:
        logger.error("a background run failed", exc_info=error)
        raise fail(f"The run failed unexpectedly ({type(error).__name__}); the details are in the server log. "
                   "Try other files or settings.")
    return outcome["value"]
