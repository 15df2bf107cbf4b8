"""Per-client-address rate limits of the public endpoints (SPEC §9, §16).

Two places the counts can live (``SLOTMILL_RATE_LIMIT_STORAGE``):

- ``memory`` (the default): a token bucket per address in this process
  (:class:`RateLimiter`). With N API processes a client gets up to N times the limit, and a
  restart forgets every bucket; it costs nothing on the hot path.
- ``redis://...``: a moving window per address in Redis, through the ``limits`` library
  (:class:`SharedLimits`), counted once across every API process. One Redis round trip per
  limited request. When the store fails, requests are never refused for it: the failure is
  logged, and for a few seconds each process falls back to its own in-memory limit (the
  behaviour without a store) before it asks Redis again.

Behind proxies, the client's address comes from X-Forwarded-For, believed only as far as
the configured proxies vouch for it (:class:`TrustedProxies`).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import time
from collections.abc import Callable, Iterable

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from starlette.requests import Request

from slotmill.api.errors import ProblemError
from slotmill.config import Settings

log = logging.getLogger("slotmill.api")

# Buckets kept before idle (full) ones are swept: bounds memory under many addresses.
_SWEEP_AT = 50_000
# A shared store that failed is left alone this long (each process limits on its own
# meanwhile), so an outage costs one failed round trip per process every few seconds,
# not one per request.
STORE_RETRY_S = 5.0
# A store that does not answer within this is down for the request at hand.
STORE_TIMEOUT_S = 0.25


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
            raise rate_limited(int(self.capacity), wait)

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


def rate_limited(per_minute: int, wait: float) -> ProblemError:
    seconds = max(1, math.ceil(wait))
    return ProblemError(
        429,
        "rate_limited",
        "Too many requests",
        f"at most {per_minute} requests a minute from one address; retry in {seconds} s",
        headers={"Retry-After": str(seconds)},
    )


class SharedLimits:
    """Per-address limits counted in a shared store: ``limits``' moving window (at most N
    requests in any 60 seconds) in Redis, one key per kind and address."""

    def __init__(self, url: str) -> None:
        # limits names its asyncio Redis storage async+redis://; redis-py's asyncio client
        # (not coredis) is the one pinned in requirements.lock.
        self.url = url
        self.storage = RedisStorage(
            f"async+{url}",
            implementation="redispy",
            key_prefix="slotmill",
            socket_connect_timeout=STORE_TIMEOUT_S,
            socket_timeout=STORE_TIMEOUT_S,
        )
        self.window = MovingWindowRateLimiter(self.storage)
        self._items: dict[int, RateLimitItem] = {}
        self._down_until = 0.0

    async def hit(self, which: str, per_minute: int, key: str) -> float | None:
        """Take one request from ``key``'s window of ``which``: 0.0 when allowed, else the
        seconds until one is; None when the store cannot say (the caller decides alone)."""
        if time.monotonic() < self._down_until:
            return None
        item = self._items.get(per_minute)
        if item is None:
            item = self._items[per_minute] = RateLimitItemPerMinute(per_minute)
        try:
            if await self.window.hit(item, which, key):
                return 0.0
            stats = await self.window.get_window_stats(item, which, key)
        except Exception as e:  # whatever the store's failure, never a refusal or a 500
            self._down_until = time.monotonic() + STORE_RETRY_S
            log.warning(
                "rate limit store unavailable; limiting per process for %.0f s: %s: %s",
                STORE_RETRY_S,
                type(e).__name__,
                str(e).splitlines()[0] if str(e) else "",
            )
            return None
        return max(1.0, stats.reset_time - time.time())

    async def close(self) -> None:
        # limits has no close of its own; the redis-py client it made has (its connections
        # belong to the event loop that is about to end).
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)
        aclose = getattr(client, "aclose", None)
        if aclose is not None:
            await aclose()

    @classmethod
    def from_settings(cls, settings: Settings) -> SharedLimits | None:
        # Settings checked the form: "memory", or a Redis URL.
        return None if settings.rate_limit_storage == "memory" else cls(settings.rate_limit_storage)


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


async def rate_limit(request: Request, which: str) -> None:
    """Charge this request to its client address's count of ``which`` ("reads" or
    "holds"): in the shared store when there is one and it answers, else in this process.
    A 429 problem when the limit is reached."""
    state = request.app.state
    limiter: RateLimiter | None = getattr(state, "read_limiter" if which == "reads" else "hold_limiter", None)
    if limiter is None or not limiter.enabled:
        return
    key = client_address(request, getattr(state, "trusted_proxies", None))
    shared: SharedLimits | None = getattr(state, "shared_limits", None)
    if shared is not None:
        per_minute = int(limiter.capacity)
        wait = await shared.hit(which, per_minute, key)
        if wait is not None:
            if wait > 0:
                raise rate_limited(per_minute, wait)
            return
    limiter.check(key)
