"""Running the TEI-compatible server: `serve` (what `python -m search serve` calls) runs `server_config`'s
uvicorn server over `create_app`, with deadlines for a request's head (an h11 protocol that closes a
connection whose head trickles in: uvicorn alone waits for ever) and for idle connections."""

from __future__ import annotations

import asyncio
import logging
import math
from functools import lru_cache

from .routes import create_app
from .service import TEIService

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def server_config(service: TEIService, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
                  log_level: str = "warning"):
    """The uvicorn Config `serve` runs: `create_app(service)` over h11 with `service.limits`' deadlines (a
    connection that sends no whole request head within ``header_timeout_s`` is closed; an idle one after
    ``keep_alive_s``) and request heads of at most 64 KiB."""
    import uvicorn

    return uvicorn.Config(create_app(service), host=host, port=port, log_level=log_level, lifespan="off",
                          http=_deadline_protocol(service.limits.header_timeout_s),
                          timeout_keep_alive=max(1, math.ceil(service.limits.keep_alive_s)),
                          h11_max_incomplete_event_size=64 * 1024)


def serve(service: TEIService, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *,
          log_level: str = "warning") -> None:
    """Load `service`'s models, then serve them on `host`:`port` until interrupted."""
    import uvicorn

    service.ensure_loaded()
    uvicorn.Server(server_config(service, host, port, log_level=log_level)).run()


@lru_cache(maxsize=8)
def _deadline_protocol(header_timeout_s: float) -> type:
    """uvicorn's h11 protocol, closing a connection whose request head (line and headers) has not fully
    arrived `header_timeout_s` after the connection opened or its previous answer went out: uvicorn alone
    waits for a slow head for ever."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class DeadlineH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._head_deadline is None and self.conn.their_state is h11.IDLE:
                self._arm()
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._head_deadline = self.loop.call_later(header_timeout_s, self._head_too_slow)

        def _disarm(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_too_slow(self) -> None:
            self._head_deadline = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                logger.info("closed a connection whose request head took over %g s", header_timeout_s)
                self.transport.close()

    return DeadlineH11Protocol
