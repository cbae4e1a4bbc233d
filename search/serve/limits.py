"""What one request to the TEI-compatible server may ask for (TEI's launcher options, which ``GET /info``
reports) and how long a client may take to send it: `ServeLimits`."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class ServeLimits:
    """What one request may ask for, as TEI's launcher options (`/info` reports them), and how long a client
    may take to send it.

    `max_input_tokens` caps each model's own window (None: the window); with truncation off a longer input
    is refused, with it on the input is cut at that many tokens. `header_timeout_s`: a request's line and
    headers must arrive within it (of the connection opening, or of the previous answer); `body_timeout_s`:
    its body within it of the headers; `keep_alive_s`: an idle connection is closed after it. Raises
    ValueError for a limit below 1 or a timeout that is not a positive number of seconds.
    """

    max_client_batch_size: int = 32
    max_input_tokens: int | None = None
    payload_limit: int = 2_000_000  # bytes of one request body
    max_concurrent_requests: int = 512  # inputs (texts, pairs) being answered at once; more get 429
    auto_truncate: bool = True  # what a request without "truncate" gets
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0
    keep_alive_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("max_client_batch_size", "max_input_tokens", "payload_limit", "max_concurrent_requests"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name}={value!r} must be a whole number of at least 1")
        for name in ("header_timeout_s", "body_timeout_s", "keep_alive_s"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not 0 < value < math.inf:
                raise ValueError(f"{name}={value!r} must be a positive number of seconds")
