"""The TEI backend's two exceptions: `TEIError`, an endpoint that could not be used (a ValueError whose
message says what happened and which setting to change), and `TEIRequestCancelled`."""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal["setting", "address", "connect", "dns", "timeout", "auth", "too-large", "wrong-model",
                    "overloaded", "http", "protocol"]


class TEIRequestCancelled(Exception):
    """A request's `should_stop()` turned true while it waited for the endpoint or a retry (not a failure)."""


class TEIError(ValueError):
    """A TEI endpoint could not be used; the message says what happened and which setting to change.

    `kind` names the failure (``"connect"``, ``"dns"``, ``"timeout"``, ``"auth"``, ``"too-large"``,
    ``"wrong-model"``, ``"overloaded"``, ``"http"``, ``"protocol"``, ``"setting"``, or ``"address"``: a typed
    URL's host resolved, when connecting, to an address that is not public); `status` is the HTTP status, when
    there was one.
    """

    def __init__(self, message: str, kind: ErrorKind, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status
