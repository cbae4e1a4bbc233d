"""Which TEI endpoints may be called, and how: the URL rules and the operator's policy for URLs typed by
visitors.

- `endpoint_urls`: a --tei-url / $SEARCH_TEI_URL value (comma-separated) parsed and normalised; a URL with
  credentials, a query or no host is refused.
- `address_problem` / `internal_host`: the address rule. Only globally routable addresses are public: not
  loopback, private, link-local, shared (100.64.0.0/10, carrier-grade NAT, where Alibaba Cloud's metadata
  service lives), 192.0.0.0/24, reserved, multicast, site-local, nor an IPv6 form (IPv4-mapped, NAT64, 6to4)
  of any of those. A name is judged by every address it resolves to.
- `typed_endpoints`: the operator's policy for a TEI URL a visitor typed (the app's TEI URL field): the address
  rule (unless the operator allows internal addresses), and no typed URL at all while the server holds a token.
  It remembers what it let through: the client (`endpoint_policy`) then connects to such an endpoint only at
  public addresses checked again at connect time (DNS rebinding can't swap them), never sends it the token, and
  never shows what it answered beyond the status.

Nothing here reads the environment: the operator's settings come in as arguments.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .errors import TEIError

TEI_URL_ENV = "SEARCH_TEI_URL"
TOKEN_ENV = "HF_TOKEN"
TEI_TOKEN_ENV = "SEARCH_TEI_TOKEN"  # takes precedence over HF_TOKEN
ALLOW_INTERNAL_TEI_ENV = "SEARCH_ALLOW_INTERNAL_TEI_URL"
HIDE_TEI_URL_ENV = "SEARCH_HIDE_TEI_URL"
URL_SETTING = f"--tei-url or {TEI_URL_ENV}"
URL_HINT = f"set {URL_SETTING} to the endpoint's address (for example http://127.0.0.1:8080)"
RESOLVE_TIMEOUT_S = 3.0

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Any]  # socket.getaddrinfo's shape: (host, port) -> [(family, type, proto, name, sockaddr)]

_SHARED = ipaddress.ip_network("100.64.0.0/10")
_IETF_ASSIGNMENTS = ipaddress.ip_network("192.0.0.0/24")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Checked in this order; the first that holds names the address. Python's own `is_global` misses several
# (multicast, 192.0.0.9, site-local, NAT64 and 6to4 forms on 3.11), hence the explicit list before it.
_RULES: tuple[tuple[Callable[[Address], bool], str], ...] = (
    (lambda a: a.is_link_local, "a link-local address"),
    (lambda a: a.is_private, "a private address"),
    (lambda a: a in _SHARED, "in the shared address space 100.64.0.0/10 (carrier-grade NAT, where cloud metadata "
                             "services can live)"),
    (lambda a: a in _IETF_ASSIGNMENTS, "in 192.0.0.0/24 (IETF protocol assignments)"),
    (lambda a: isinstance(a, ipaddress.IPv6Address) and a.is_site_local, "a site-local address"),
    (lambda a: a.is_reserved, "a reserved address"),
    (lambda a: a.is_multicast, "a multicast address"),
    (lambda a: not a.is_global, "not a globally routable address"),
)


@dataclass(frozen=True)
class EndpointPolicy:
    """How the client treats one endpoint.

    `typed`: a visitor typed its URL, so the client never sends it a token and never shows what it answered
    (an error says the status and a fixed message). `public_only`: the client connects to it only at globally
    routable addresses, every address its name resolves to checked when connecting.
    """

    typed: bool = False
    public_only: bool = False


OPERATOR_ENDPOINT = EndpointPolicy()
"""The operator's own endpoints ($SEARCH_TEI_URL, --tei-url) and any URL `typed_endpoints` never saw."""

_typed: dict[str, EndpointPolicy] = {}
_typed_lock = threading.Lock()


def endpoint_urls(value: str | None) -> tuple[str, ...]:
    """The endpoint URLs a --tei-url / $SEARCH_TEI_URL value names (comma-separated), normalised.

    Raises TEIError (kind "setting") for no URL, a URL that is not http(s) with a host, or one that carries
    a user name or password (the token belongs in $HF_TOKEN, where it is never shown).

    >>> endpoint_urls(" http://127.0.0.1:8080/ , https://tei.example/rerank")
    ('http://127.0.0.1:8080', 'https://tei.example/rerank')
    """
    urls = tuple(part.strip().rstrip("/") for part in (value or "").split(",") if part.strip())
    if not urls:
        raise TEIError(f"backend 'tei' needs the address of a TEI endpoint; {URL_HINT}", "setting")
    for url in urls:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            raise TEIError(f"{redact_url(url)!r} is not a valid URL; {URL_HINT}", "setting") from None
        if parts.username is not None or parts.password is not None:
            raise TEIError(f"the TEI URL {redact_url(url)!r} carries credentials; remove them from {URL_SETTING} "
                           f"and put the token in {TOKEN_ENV}", "setting")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TEIError(f"{redact_url(url)!r} is not an http(s) URL with a host; {URL_HINT}", "setting")
        if parts.query or parts.fragment:
            raise TEIError(f"{redact_url(url)!r} has a query or fragment (not shown); give the endpoint's base "
                           f"address ({URL_HINT})", "setting")
    return urls


def host_of(url: str) -> str:
    """The host (and port) of `url`, as labels show it.

    >>> host_of("http://127.0.0.1:8080/tei"), host_of("https://my-endpoint.example")
    ('127.0.0.1:8080', 'my-endpoint.example')
    """
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def redact_url(url: str) -> str:
    """`url` as errors and logs may quote it: without user name, password, query and fragment.

    >>> redact_url("http://user:pw@host:8080/tei?api_key=s#x")
    'http://***@host:8080/tei'
    """
    without = re.sub(r"[?#].*", "", url, flags=re.DOTALL)
    return re.sub(r"^([^/]*//)[^/]*@", r"\1***@", without)


def address_problem(address: Address) -> str | None:
    """Why `address` is not a public internet address, or None when it is globally routable.

    An IPv6 form of an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4 2002::/16) is judged by the IPv4
    address it leads to.

    >>> address_problem(ipaddress.ip_address("100.100.100.200"))[:32]
    'in the shared address space 100.'
    >>> address_problem(ipaddress.ip_address("::ffff:10.0.0.1")), address_problem(ipaddress.ip_address("8.8.8.8"))
    ('an IPv6 form of 10.0.0.1, a private address', None)
    """
    if address.is_loopback:
        return "a loopback address"
    if address.is_unspecified:
        return "an unspecified address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            why = address_problem(embedded)
            return None if why is None else f"an IPv6 form of {embedded}, {why}"
    return next((phrase for applies, phrase in _RULES if applies(address)), None)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def host_addresses(host: str, *, resolve: Resolver = socket.getaddrinfo,
                   timeout: float = RESOLVE_TIMEOUT_S) -> list[Address]:
    """Every address `host` names: itself when it is an IP literal, else each address `resolve` answers within
    `timeout` s, in its order, once each.

    Raises socket.gaierror when the name does not resolve (or resolves to nothing), TimeoutError when the
    resolver does not answer within `timeout` s (the lookup is left to finish in its own thread).

    >>> host_addresses("::1"), host_addresses("8.8.8.8")
    ([IPv6Address('::1')], [IPv4Address('8.8.8.8')])
    """
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    answer: list[list[Address] | BaseException] = []

    def lookup() -> None:
        try:
            answer.append([ipaddress.ip_address(info[4][0].split("%")[0]) for info in resolve(host, None)])
        except (OSError, ValueError, UnicodeError) as error:
            answer.append(error)

    worker = threading.Thread(target=lookup, name=f"resolve-{host[:40]}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not answer:
        raise TimeoutError(f"{host} does not resolve within {timeout:g} s")
    (result,) = answer
    if isinstance(result, BaseException) or not result:
        raise socket.gaierror(f"{host} does not resolve") from (result if isinstance(result, BaseException)
                                                                else None)
    return list(dict.fromkeys(result))


def host_problem(host: str, addresses: Sequence[Address]) -> str | None:
    """Why `host` is not public given the `addresses` it resolved to (the first that is not), else None.

    >>> host_problem("metadata.example", [ipaddress.ip_address("93.184.216.34"),
    ...                                   ipaddress.ip_address("169.254.169.254")])
    'metadata.example (169.254.169.254) is a link-local address'
    """
    for address in addresses:
        why = address_problem(address)
        if why:
            shown = host if str(address) == host else f"{host} ({address})"
            return f"{shown} is {why}"
    return None


def internal_host(url: str, *, timeout: float = RESOLVE_TIMEOUT_S, resolve: Resolver = socket.getaddrinfo,
                  ) -> str | None:
    """Why `url`'s host is not a public internet address (see `address_problem`; a name is judged by every
    address it resolves to, and one that doesn't resolve within `timeout` s is refused), else None.

    For endpoints a visitor types: the server would otherwise call addresses only it can reach. The answer
    holds for this lookup only; the client checks again when it connects (see `typed_endpoints`).

    >>> internal_host("http://127.0.0.1:8080"), internal_host("http://[::1]/"), internal_host("http://10.1.2.3")
    ('127.0.0.1 is a loopback address', '::1 is a loopback address', '10.1.2.3 is a private address')
    >>> internal_host("https://8.8.8.8/")
    """
    host = (urlsplit(url).hostname or "").lower()
    if not host:
        return "the URL names no host"
    try:
        addresses = host_addresses(host, resolve=resolve, timeout=timeout)
    except TimeoutError:
        return f"{host} does not resolve within {timeout:g} s"
    except OSError:
        return f"{host} does not resolve"
    return host_problem(host, addresses)


def safe_for_token(url: str) -> bool:
    """Whether a bearer token may go to `url`: over https, or to this machine (loopback).

    >>> safe_for_token("https://tei.example"), safe_for_token("http://localhost:8080"), safe_for_token("http://a.b")
    (True, True, False)
    """
    parts = urlsplit(url)
    if parts.scheme == "https":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def typed_endpoints(value: str | None, *, operator_urls: str | None, allow_internal: bool, has_token: bool,
                    hidden: bool = False, resolve: Resolver = socket.getaddrinfo,
                    timeout: float = RESOLVE_TIMEOUT_S) -> str | None:
    """The TEI endpoint(s) a build uses for the URL a visitor typed: `value` normalised (comma-separated), or
    None when it is empty or the operator hides the field (`hidden`, $SEARCH_HIDE_TEI_URL), which means "the
    operator's endpoint".

    `operator_urls` is the operator's $SEARCH_TEI_URL (its endpoints are always allowed), `allow_internal`
    $SEARCH_ALLOW_INTERNAL_TEI_URL, `has_token` whether the server holds a token ($SEARCH_TEI_TOKEN or
    $HF_TOKEN). Raises ValueError (a TEIError) naming the setting to change for a URL that is not valid, one
    whose host is not a public address (unless `allow_internal`; see `internal_host`), and, while the server
    holds a token, any URL that is not the operator's: the token must never go to an address a visitor typed.

    Every URL let through that is not the operator's is remembered (`endpoint_policy`): the client never sends
    it a token nor shows what it answered beyond the status, and, unless `allow_internal`, connects to it only
    at public addresses, checked again when connecting.

    >>> typed_endpoints(" https://8.8.8.8/ ", operator_urls="", allow_internal=False, has_token=False)
    'https://8.8.8.8'
    """
    value = (value or "").strip()
    if not value or hidden:
        return None
    urls = endpoint_urls(value)
    try:
        allowed = set(endpoint_urls(operator_urls))
    except ValueError:
        allowed = set()
    if not allow_internal:
        # A visitor's URL must not make the server call addresses only it can reach (its own ports, the
        # cloud's metadata service, the private network); the operator's own endpoints are always allowed.
        for url in urls:
            why = None if url in allowed else internal_host(url, timeout=timeout, resolve=resolve)
            if why:
                raise TEIError(f"The TEI URL {host_of(url)} is not a public address ({why}). Use a public endpoint; "
                               f"the operator can set it as {TEI_URL_ENV}, or allow internal addresses with "
                               f"{ALLOW_INTERNAL_TEI_ENV}=1.", "address")
    if has_token:
        others = [host_of(url) for url in urls if url not in allowed]
        if others:
            raise TEIError(f"This server holds a TEI token and sends it only to the endpoints its operator set "
                           f"({TEI_URL_ENV}); {', '.join(others)} is not one of them. Leave the TEI URL empty, or "
                           "run the app yourself to use another endpoint.", "setting")
    policy = EndpointPolicy(typed=True, public_only=not allow_internal)
    with _typed_lock:
        _typed.update((url, policy) for url in urls if url not in allowed)
    return ",".join(urls)


def endpoint_policy(url: str) -> EndpointPolicy:
    """How the client treats the endpoint at `url` (normalised as `endpoint_urls` gives it): as typed by a visitor
    when `typed_endpoints` let it through, else as the operator's (`OPERATOR_ENDPOINT`)."""
    with _typed_lock:
        return _typed.get(url, OPERATOR_ENDPOINT)
