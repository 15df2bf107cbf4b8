"""Per-client-address rate limits of the public endpoints (SPEC §9).

In memory, per process: with N API worker processes a client gets up to N times the limit,
and a restart forgets every bucket. That is acceptable for what these limits are for (one
widget or script hammering the API), costs no database round trip on the hot path, and a
shared limit belongs in the proxy in front of the API if it is ever needed.

Behind proxies, the client's address comes from X-Forwarded-For, believed only as far as
the configured proxies vouch for it (:class:`TrustedProxies`).
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable

from starlette.requests import Request

from slotmill.api.errors import ProblemError
from slotmill.config import Settings

# Buckets kept before idle (full) ones are swept: bounds memory under many addresses.
_SWEEP_AT = 50_000


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests in a burst, refilled evenly over a
    minute. ``per_minute`` 0 disables the limit."""

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    @property
    def enabled(self) -> bool:
        return self.capacity > 0

    def hit(self, key: str) -> float:
        """Take one token; 0.0 when allowed, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens, last = self._buckets.get(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            if len(self._buckets) >= _SWEEP_AT and key not in self._buckets:
                self._sweep(now)
            self._buckets[key] = (tokens - 1.0, now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (1.0 - tokens) / self.rate

    def check(self, key: str) -> None:
        wait = self.hit(key)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ProblemError(
                429,
                "rate_limited",
                "Too many requests",
                f"at most {int(self.capacity)} requests a minute from one address;"
                f" retry in {seconds} s",
                headers={"Retry-After": str(seconds)},
            )

    def _sweep(self, now: float) -> None:
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.capacity
        ]
        for k in full:
            del self._buckets[k]
        if len(self._buckets) >= _SWEEP_AT * 0.9:
            # Mostly busy buckets (a flood from many addresses): forget them all rather than
            # sweep again on every new address.
            self._buckets.clear()


class TrustedProxies:
    """The proxies in front of the API whose X-Forwarded-For entries are believed.

    The client's address is the rightmost X-Forwarded-For hop that is not one of them,
    walking left from the peer: every proxy appends the address it saw, so entries left of
    the first untrusted hop are whatever the client chose to send (behind nginx or an AWS
    load balancer the leftmost entry is the client's own invention).
    """

    def __init__(self, networks: Iterable[str] = (), *, peer: bool = False) -> None:
        self.networks = [ipaddress.ip_network(n.strip(), strict=False) for n in networks if n.strip()]
        # SLOTMILL_TRUST_FORWARDED_FOR: the immediate peer is a proxy, whatever its address.
        self.peer = peer

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustedProxies:
        return cls(settings.trusted_proxies.split(","), peer=settings.trust_forwarded_for)

    @property
    def enabled(self) -> bool:
        return self.peer or bool(self.networks)

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in n for n in self.networks)

    def client(self, peer: str, forwarded_for: str | None) -> str:
        if not self.enabled or not forwarded_for:
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        if not (self.peer or self._trusted(peer)):
            return peer
        while hops:
            hop = hops.pop()
            if not self._trusted(hop) or not hops:
                return hop
        return peer


def client_address(request: Request, trusted: TrustedProxies | None = None) -> str:
    """The client's address for rate limits and logs (see :class:`TrustedProxies`)."""
    peer = request.client.host if request.client else "unknown"
    if trusted is None or not trusted.enabled:
        return peer
    return trusted.client(peer, request.headers.get("x-forwarded-for"))


def rate_limit(request: Request, which: str) -> None:
    """Charge this request to its client address's bucket of ``which`` ("reads" or
    "holds"); a 429 problem when the bucket is empty."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "read_limiter" if which == "reads" else "hold_limiter", None)
    if limiter is not None and limiter.enabled:
        limiter.check(client_address(request, getattr(state, "trusted_proxies", None)))
