"""What one request cost (`Timing`: characters and tokens read, seconds tokenizing, queued and running a
model), for the metrics and for TEI's x-* response headers (`timing_headers`)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class Timing:
    """What one request cost, for TEI's x-* headers and metrics: characters and tokens read, and seconds
    spent tokenizing, waiting for a turn to run the model (`queue_s`) and running it."""

    device: str = "cpu"
    characters: int = 0
    tokens: int = 0
    tokenization_s: float = 0.0
    queue_s: float = 0.0
    inference_s: float = 0.0


def timing_headers(timing: Timing | None, started: float) -> dict[str, str] | None:
    """TEI's response headers (milliseconds) for a route that ran a model."""
    if timing is None:
        return None
    total = f"{(time.perf_counter() - started) * 1000:.0f}"
    return {"x-compute-type": timing.device, "x-compute-time": total,
            "x-compute-characters": str(timing.characters), "x-compute-tokens": str(timing.tokens),
            "x-total-time": total, "x-tokenization-time": f"{timing.tokenization_s * 1000:.0f}",
            "x-queue-time": f"{timing.queue_s * 1000:.0f}", "x-inference-time": f"{timing.inference_s * 1000:.0f}"}
