"""HTTP to addresses hosts give us (webhook endpoints, calendar feeds), kept off our own networks.

A host types a URL; the worker then fetches it from inside the platform's network. Without a
guard, ``http://169.254.169.254/`` (a cloud's metadata service), ``http://localhost:5432`` or
an internal admin page would be one form field away (server-side request forgery). So every
outbound connection is checked where it is made, in the connection pool's network backend:
the host name is resolved once, every address it resolves to must be public (``is_global``)
or inside a network the operator allowed (``SLOTMILL_OUTBOUND_ALLOW_NETWORKS``), and the
connection goes to the address that was checked. Checking at connect time covers redirects
and DNS answers that change between a check and a fetch (rebinding); TLS still verifies the
certificate against the URL's host name (httpcore sends it as SNI).

URLs are also checked when a host registers them (:func:`url_problem`), so a literal private
address or ``localhost`` is refused with a 422 at once rather than failing every delivery.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import anyio
import httpcore
import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

__all__ = ["Guard", "async_client", "sync_client", "url_problem"]


@dataclass(frozen=True, slots=True)
class Guard:
    """Which addresses outbound requests may reach: public ones, and ``allowed`` networks
    (``allow_all``: anything, for a trusted single-tenant install)."""

    allowed: tuple[Network, ...] = ()
    allow_all: bool = False

    @classmethod
    def from_setting(cls, text: str) -> Guard:
        """``SLOTMILL_OUTBOUND_ALLOW_NETWORKS``: comma-separated CIDRs, or ``*`` for any."""
        items = [x.strip() for x in text.split(",") if x.strip()]
        if "*" in items:
            return cls(allow_all=True)
        return cls(tuple(ipaddress.ip_network(x, strict=False) for x in items))

    def refuses(self, address: str) -> bool:
        if self.allow_all:
            return False
        ip: Address = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.allowed):
            return False
        return not ip.is_global or ip.is_multicast

    def pick(self, host: str, infos: Iterable[tuple[Any, ...]]) -> str:
        """The first resolved address it may reach; a ConnectError naming the refused one
        when every address of ``host`` is refused."""
        addresses = [str(info[4][0]) for info in infos]
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        for a in addresses:
            if not self.refuses(a):
                return a
        raise httpcore.ConnectError(
            f"{host} resolves to {addresses[0]}, which is not a public address: refused "
            "(SLOTMILL_OUTBOUND_ALLOW_NETWORKS allows private networks)"
        )


def url_problem(url: str, guard: Guard) -> str | None:
    """Why a URL a host registers can never be reached (a literal private address, or
    ``localhost``), or None. Names are checked again, resolved, on every connection."""
    host = httpx.URL(url).host
    if guard.allow_all or not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        return "localhost is not reachable from here: give a public address"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    if guard.refuses(host):
        return f"{host} is not a public address (SLOTMILL_OUTBOUND_ALLOW_NETWORKS allows private networks)"
    return None


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            with anyio.fail_after(timeout):
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, TimeoutError) as e:
            raise httpcore.ConnectError(f"{host}: {e}") from None
        address = self.guard.pick(host, infos)
        return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from here")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class _SyncBackend(httpcore.NetworkBackend):
    def __init__(self, guard: Guard) -> None:
        self.guard = guard
        self.inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as e:
            raise httpcore.ConnectError(f"{host}: {e}") from None
        address = self.guard.pick(host, infos)
        return self.inner.connect_tcp(address, port, timeout, local_address, socket_options)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not reachable from here")


def _limits(limits: httpx.Limits) -> dict[str, Any]:
    return {
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }


class _AsyncTransport(httpx.AsyncHTTPTransport):
    # httpx builds its httpcore pool without a way to pass a network backend: the pool is
    # built again with the guarded one (same TLS context and limits; no proxy: outbound
    # requests go direct, or the guard would check the proxy instead of the target).
    def __init__(self, guard: Guard, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        ssl_context = self._pool._ssl_context
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=_AsyncBackend(guard), **_limits(limits)
        )


class _SyncTransport(httpx.HTTPTransport):
    def __init__(self, guard: Guard, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, trust_env=False)
        ssl_context = self._pool._ssl_context
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context, network_backend=_SyncBackend(guard), **_limits(limits)
        )


def async_client(guard: Guard, *, limits: httpx.Limits | None = None, **kw: Any) -> httpx.AsyncClient:
    """An httpx.AsyncClient whose every connection passes ``guard``."""
    return httpx.AsyncClient(transport=_AsyncTransport(guard, limits or httpx.Limits()), trust_env=False, **kw)


def sync_client(guard: Guard, *, limits: httpx.Limits | None = None, **kw: Any) -> httpx.Client:
    """An httpx.Client whose every connection passes ``guard``."""
    return httpx.Client(transport=_SyncTransport(guard, limits or httpx.Limits()), trust_env=False, **kw)
