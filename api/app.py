"""The HTTP application: routes, pools, middleware, problem+json for every error.

``create_app`` is the one entry point (uvicorn's factory, the tests, the benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from slotmill.api import (
    admin,
    admin_console,
    admin_day,
    admin_tenants,
    admin_usage,
    catalog,
    events,
    home,
    host,
    public,
    publishable,
    rules,
    slot_status,
    waitlist,
    webhooks,
)
from slotmill.api.cors import TenantCorsMiddleware
from slotmill.api.db import open_pools
from slotmill.api.errors import ProblemError, problem_response
from slotmill.api.metrics import METRICS, MetricsMiddleware, metrics_endpoint
from slotmill.api.middleware import RequestContextMiddleware
from slotmill.api.models import Ok, Ready
from slotmill.api.openapi import openapi_document
from slotmill.api.ratelimit import RateLimiter, SharedLimits, TrustedProxies
from slotmill.api.readcache import ReadCache
from slotmill.api.replicas import ReadRouter
from slotmill.api.routing import Reply, route
from slotmill.config import Settings, get_settings
from slotmill.materializer.model import RuleError
from slotmill.sql import owned_by, schema_version

log = logging.getLogger("slotmill.api")
Q = owned_by(__name__)

WIDGET_DIR = Path(__file__).resolve().parent / "widget"
# Bodies of the JSON endpoints are a few hundred bytes; refuse megabytes early.
MAX_BODY_BYTES = 64 * 1024
# A load balancer probes often and must get an answer well before its own timeout.
READY_TIMEOUT_S = 3.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def healthz_db(request: Request) -> Response:
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    async with pool.connection() as conn:
        await conn.execute(Q["ping"])
    return JSONResponse({"ok": True})


async def readyz(request: Request) -> Response:
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    want = schema_version()
    try:
        async with pool.connection(timeout=READY_TIMEOUT_S) as conn:
            cur = await conn.execute(Q["schema_version"])
            row = await cur.fetchone()
    except Exception as e:  # any failure to ask means "not ready", never a 500
        raise ProblemError(
            503,
            "not_ready",
            "Database unreachable",
            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
        ) from None
    have = row[0] if row else None
    reads: ReadRouter | None = getattr(request.app.state, "reads", None)
    # Behind is not ready; ahead is: migrations are forward-only and additive, so during an
    # upgrade the old processes keep serving (and stay in the load balancer) once the new
    # version has migrated.
    if have is None or have < want:
        raise ProblemError(
            503,
            "schema_outdated",
            "Schema not current",
            f"database schema version {have}, this build needs {want}: run `slotmill migrate`",
        )
    # Replicas are reported, never a reason to be unready: a replica that is down or behind
    # only sends its reads to the primary, and taking every API process out of the load
    # balancer for it would turn a slower read into an outage.
    return JSONResponse({"ok": True, "schema_version": have, "replicas": reads.status() if reads else []})


async def openapi_json(request: Request) -> Response:
    state = request.app.state
    doc: bytes | None = getattr(state, "openapi", None)
    if doc is None:
        # Built on first use from the routes this app mounts, then kept.
        doc = state.openapi = openapi_document(request.app.routes)
    return Response(doc, media_type="application/json")


def _instance(request: Request) -> str:
    return request.url.path


async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ProblemError)
    return problem_response(exc, _instance(request))


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Request body too large"),
}


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, (f"http_{exc.status_code}", "HTTP error"))
    detail = exc.detail if exc.detail and exc.detail != title else None
    if exc.status_code == 404 and detail in (None, "Not Found"):
        detail = f"no route for {request.method} {request.url.path}"
    err = ProblemError(exc.status_code, code, title, detail, headers=dict(exc.headers or {}))
    return problem_response(err, _instance(request))


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    # Pool exhausted or the server unreachable: a retry later may succeed, so 503 (not 500).
    log.warning("database unavailable: %s: %s", type(exc).__name__, exc)
    err = ProblemError(
        503,
        "database_unavailable",
        "Database unavailable",
        "the database did not answer in time; retry shortly",
        headers={"Retry-After": "1"},
    )
    return problem_response(err, _instance(request))


async def _rule_invalid(request: Request, exc: Exception) -> Response:
    # A stored rule the engine cannot compute (the host wrote it straight into a table):
    # the request is fine, the tenant's state is not. A conflict with a clear code, never
    # a 500; admin status names the rule too.
    err = ProblemError(
        409,
        "rule_invalid",
        "A stored rule cannot be computed",
        f"{exc}; fix the rule (admin status lists the staff members it stops)",
    )
    return problem_response(err, _instance(request))


async def _stored_value(request: Request, exc: Exception) -> Response:
    # A value the database holds but the driver cannot read (a year past 9999, BC, infinity),
    # written before the schema refused such values.
    log.warning("unreadable stored value: %s", exc)
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    err = ProblemError(409, "stored_value_invalid", "A stored value cannot be read", first)
    return problem_response(err, _instance(request))


def build_routes(settings: Settings) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        route("/healthz", healthz, "GET", summary="Liveness: the process is up", tag="probes", responses={200: Ok}),
        route(
            "/healthz/db",
            healthz_db,
            "GET",
            summary="SELECT 1 through the async pool (the benchmark's baseline)",
            tag="probes",
            responses={200: Ok},
            problems=[503],
        ),
        route(
            "/readyz",
            readyz,
            "GET",
            summary="Readiness: database reachable and schema current",
            tag="probes",
            responses={200: Ready},
            problems=[503],
        ),
        route(
            "/metrics",
            metrics_endpoint,
            "GET",
            summary="Prometheus metrics of this API instance (all its worker processes)",
            tag="probes",
            responses={200: Reply(str, media_type="text/plain")},
            name="metrics",
        ),
        route(
            "/openapi.json",
            openapi_json,
            "GET",
            summary="This document",
            tag="probes",
            responses={200: dict[str, Any]},
            name="openapi",
        ),
        *public.routes,
        *slot_status.routes,
        *publishable.routes,
        *host.routes,
        *events.routes,  # events14: live updates, webhook endpoints, waitlist
        *webhooks.routes,
        *waitlist.routes,
        *rules.routes,
        *catalog.routes,
        *admin.routes,
        *admin_tenants.routes,
        *admin_day.routes,
        *admin_usage.routes,
        *home.routes,
    ]
    if settings.demo_mode:
        from slotmill.api import demo

        routes.extend(demo.routes)
    if WIDGET_DIR.is_dir():
        routes.append(Mount("/widget", app=StaticFiles(directory=WIDGET_DIR, html=True), name="widget"))
    if admin_console.ADMIN_UI_DIR.is_dir():
        routes.append(admin_console.mount())
    return routes


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pools = await open_pools(settings)
        app.state.pool = pools.pool
        app.state.sync_pool = pools.sync_pool
        app.state.reads = pools.reads
        app.state.database_url = pools.url
        # Made here: the Redis client belongs to the event loop that serves.
        shared = SharedLimits.from_settings(settings)
        app.state.shared_limits = shared
        monitor = asyncio.create_task(pools.reads.monitor()) if pools.reads.replicas else None
        # One LISTEN connection per process feeds every live-update stream.
        hub = app.state.event_hub = events.EventHub.from_settings(pools.url, pools.pool, settings)
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()
            if monitor is not None:
                monitor.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await monitor
            if shared is not None:
                await shared.close()
            await pools.close()

    app = Starlette(
        routes=build_routes(settings),
        middleware=[
            Middleware(RequestContextMiddleware, max_body_bytes=MAX_BODY_BYTES),
            Middleware(MetricsMiddleware),
            # Inside the two above: its preflight answers and refusals carry a request id.
            Middleware(TenantCorsMiddleware),
        ],
        exception_handlers={
            ProblemError: _problem,
            HTTPException: _http_exception,
            psycopg.OperationalError: _database_unavailable,
            RuleError: _rule_invalid,
            psycopg.DataError: _stored_value,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = METRICS
    # In memory, per process; with SLOTMILL_RATE_LIMIT_STORAGE the shared store counts
    # instead, and these take over while it is down (api/ratelimit.py). 0 disables a limit.
    app.state.read_limiter = RateLimiter(settings.rate_limit_reads)
    app.state.hold_limiter = RateLimiter(settings.rate_limit_holds)
    app.state.trusted_proxies = TrustedProxies.from_settings(settings)
    app.state.read_cache = ReadCache(settings.read_cache_mb * 1024 * 1024)
    return app
