"""Cross-origin access to a tenant's public endpoints, allowed per tenant.

A booking page embedded on a salon's own site (another origin) calls the public endpoints
of one tenant: the catalog, slot reads, holds, the publishable-key confirm, live events,
the waitlist. The tenant lists the sites that may do so in ``settings.allowed_origins``
(exact origins such as ``https://fernandfinch.example``, or ``"*"`` for any). Starlette's
CORSMiddleware has one list for the whole app, so this pure ASGI middleware (no
BaseHTTPMiddleware: no task per request) answers preflights and adds
``Access-Control-Allow-Origin`` only for the origins of the tenant in the path.

Host-backend routes (confirm with the secret key, cancel, reschedule) never get CORS
headers: the secret key must never be used from a browser, and a browser that tries is
stopped by its own same-origin policy.

A tenant's origins are read once and kept for ``ORIGINS_TTL_S``: a changed list applies
within that time, and a page that makes many calls costs one lookup, not one per call.

The widget's own files (``/widget/...``: scripts, stylesheet) are public and the same for
everyone, so any site may read them (``Access-Control-Allow-Origin: *``, no credentials):
tools that read a page's stylesheets, such as accessibility checkers, can then read the
widget's too.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slotmill.api.errors import ProblemError, problem_response
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.api")
Q = owned_by(__name__)

# The public endpoints of one tenant (the only ones a page on another site may call).
PUBLIC_PATH = re.compile(
    r"^/v1/tenants/(?P<slug>[a-z0-9][a-z0-9-]{0,62})/"
    r"(?:catalog|slots|slot-status|holds|holds/[^/]+|holds/[^/]+/confirm/public|events|waitlist)$"
)
ASSETS_PREFIX = "/widget/"
ALLOW_METHODS = "GET, POST, DELETE"
ALLOW_HEADERS = "Accept, Authorization, Content-Type, Last-Event-ID, X-Request-ID"
# Date lets a page check its clock; Retry-After says how long a 429 lasts.
EXPOSE_HEADERS = "Date, Retry-After, X-Request-ID"
# Browsers cap this anyway (Chromium at 2 hours); 10 minutes keeps a changed list current.
PREFLIGHT_MAX_AGE = "600"
ORIGINS_TTL_S = 30.0
# Bounds the memory of the cache under a flood of made-up slugs.
MAX_CACHED = 10_000


def normalize_origin(value: str) -> str:
    """An origin as browsers send it: lower case, no trailing slash (a tenant may have
    written ``https://Salon.example/``)."""
    return value.strip().rstrip("/").lower()


def origins_from_setting(value: Any) -> frozenset[str]:
    """``settings.allowed_origins`` as a set; anything but a list of strings allows none."""
    if not isinstance(value, list):
        return frozenset()
    return frozenset(normalize_origin(v) for v in value if isinstance(v, str) and v.strip())


class AllowedOrigins:
    """Each tenant's allowed origins, looked up on first use and kept for ``ttl`` seconds."""

    def __init__(self, ttl: float = ORIGINS_TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._cache: dict[str, tuple[float, frozenset[str]]] = {}

    async def get(self, pool: Any, slug: str) -> frozenset[str]:
        now = self.clock()
        hit = self._cache.get(slug)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with pool.connection() as conn:
            cur = await conn.execute(Q["allowed_origins"], {"slug": slug})
            row = await cur.fetchone()
        origins = origins_from_setting(row[0] if row else None)
        if len(self._cache) >= MAX_CACHED:
            self._cache.clear()
        self._cache[slug] = (now + self.ttl, origins)
        return origins


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def _forbidden(origin: str, slug: str) -> ProblemError:
    return ProblemError(
        403,
        "origin_not_allowed",
        "Origin not allowed",
        f"{origin} is not in the allowed_origins of tenant {slug!r}",
    )


class TenantCorsMiddleware:
    def __init__(self, app: ASGIApp, *, origins: AllowedOrigins | None = None) -> None:
        self.app = app
        self.origins = origins or AllowedOrigins()

    async def _allowed(self, scope: Scope, slug: str, origin: str) -> bool:
        pool = scope["app"].state.pool
        allowed = await self.origins.get(pool, slug)
        return "*" in allowed or normalize_origin(origin) in allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        m = PUBLIC_PATH.match(scope["path"])
        if m is None:
            if scope["path"].startswith(ASSETS_PREFIX):
                await self.app(scope, receive, _adding(send, [(b"access-control-allow-origin", b"*")]))
            else:
                await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        preflight = scope["method"] == "OPTIONS" and _header(scope, b"access-control-request-method") is not None
        allowed = False
        if origin is not None:
            try:
                allowed = await self._allowed(scope, m["slug"], origin)
            except Exception as e:  # the database is down: no cross-origin grant, the app answers
                log.warning("allowed origins of %s unavailable: %s", m["slug"], e)
                if preflight:
                    err = ProblemError(
                        503,
                        "database_unavailable",
                        "Database unavailable",
                        "retry shortly",
                        headers={"Retry-After": "1"},
                    )
                    await problem_response(err, scope["path"])(scope, receive, send)
                    return

        if preflight and origin is not None:
            if not allowed:
                await problem_response(_forbidden(origin, m["slug"]), scope["path"])(scope, receive, send)
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", origin.encode("latin-1")),
                        (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                        (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                        (b"access-control-max-age", PREFLIGHT_MAX_AGE.encode()),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        extra: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
        if allowed and origin is not None:
            extra += [
                (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
            ]

        await self.app(scope, receive, _adding(send, extra))


def _adding(send: Send, headers: list[tuple[bytes, bytes]]) -> Send:
    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), *headers]
        await send(message)

    return send_with
