"""An httpx transport that connects only to public addresses, checked when connecting.

`PublicOnlyTransport` resolves each request's host itself, refuses the request when any address the name
resolves to is not public (`policy.address_problem`), and sends it to the checked address itself: the URL's
host stays in the Host header and, over https, in the TLS server name and certificate check (httpcore's
``sni_hostname`` request extension). No second lookup happens, so a DNS answer that changes after the check
(rebinding) is never used. Built from public httpx API only: a `BaseTransport` around an `HTTPTransport`.
A client given this transport also ignores proxies set in the environment, which would resolve the name
themselves.
"""

from __future__ import annotations

import socket

import httpx

from .policy import Resolver, host_addresses, host_problem


class AddressRefused(httpx.ConnectError):
    """The host resolved, when connecting, to an address that is not public; `reason` says which and why."""

    def __init__(self, reason: str, *, request: httpx.Request) -> None:
        super().__init__(reason, request=request)
        self.reason = reason


class PublicOnlyTransport(httpx.BaseTransport):
    """Sends each request to a public address its host resolves to now (see the module's docstring).

    `resolve` is the resolver (socket.getaddrinfo's shape) and `resolve_timeout` the seconds a lookup may
    take. Raises AddressRefused (an httpx.ConnectError) for a host with any address that is not public,
    httpx.ConnectError (caused by socket.gaierror) for one that does not resolve, httpx.ConnectTimeout for a
    resolver that does not answer in time; the addresses are tried in the resolver's order while connecting
    fails.
    """

    def __init__(self, *, resolve: Resolver = socket.getaddrinfo, resolve_timeout: float = 5.0) -> None:
        self._resolve = resolve
        self._resolve_timeout = resolve_timeout
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        try:
            addresses = host_addresses(host, resolve=self._resolve, timeout=self._resolve_timeout)
        except TimeoutError as error:
            raise httpx.ConnectTimeout(str(error), request=request) from error
        except OSError as error:
            raise httpx.ConnectError(str(error), request=request) from error
        why = host_problem(host, addresses)
        if why:
            raise AddressRefused(why, request=request)
        failure: httpx.ConnectError | None = None
        for address in addresses:
            extensions = dict(request.extensions)
            if request.url.scheme == "https" and str(address) != host:
                extensions.setdefault("sni_hostname", host)
            pinned = httpx.Request(request.method, request.url.copy_with(host=str(address)),
                                   headers=request.headers, stream=request.stream, extensions=extensions)
            try:
                return self._inner.handle_request(pinned)
            except httpx.ConnectError as error:
                failure = error
        assert failure is not None  # host_addresses never answers an empty list
        raise failure

    def close(self) -> None:
        self._inner.close()
