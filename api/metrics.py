"""Prometheus metrics of the API, and the pure ASGI middleware that times requests.

With several uvicorn worker processes (``slotmill api --workers N``) every process writes
its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode;
api/server.py sets it to a fresh directory before the workers start), and whichever
process a scrape reaches answers for all of them: counters and histograms summed, each
gauge by its ``multiprocess_mode``. One process alone keeps its values in memory.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slotmill.sql import owned_by

log = logging.getLogger("slotmill.api")
Q = owned_by(__name__)

REQUEST_SECONDS = Histogram(
    "slotmill_http_request_duration_seconds",
    "HTTP request latency by route template, method and status.",
    ["route", "method", "status"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The business counters, reachable from handlers as ``request.app.state.metrics``."""

    holds_created: Counter
    hold_conflicts: Counter
    holds_released: Counter
    confirms: Counter
    cancels: Counter
    reschedules: Counter


# Module level: prometheus_client refuses to register a name twice, and tests build many apps.
METRICS = Metrics(
    holds_created=Counter("slotmill_holds_created_total", "Holds created."),
    hold_conflicts=Counter(
        "slotmill_hold_conflicts_total", "Hold attempts refused: slot not visible or taken."
    ),
    holds_released=Counter("slotmill_holds_released_total", "Live holds released by DELETE."),
    confirms=Counter("slotmill_confirms_total", "Holds confirmed into bookings."),
    cancels=Counter("slotmill_cancels_total", "Bookings cancelled through the host API."),
    reschedules=Counter("slotmill_reschedules_total", "Bookings rescheduled through the host API."),
)


def route_template(scope: Scope) -> str:
    """The matched route's path template (a bounded label set), never the raw path."""
    route: BaseRoute | None = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return "unmatched"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            REQUEST_SECONDS.labels(route_template(scope), scope["method"], str(status)).observe(
                time.perf_counter() - start
            )


# The queue as the database has it, read at each scrape: any API process answers for the
# whole fleet of workers, and a stuck or parked recompute is visible without logs.
# With several processes, the value of the process that read it last (the one scraped).
QUEUE_REQUESTS = Gauge(
    "slotmill_recompute_requests",
    "Recompute requests in the queue: due (waiting for a worker), retrying (failed, backing off), parked.",
    ["state"],
    multiprocess_mode="livemostrecent",
)
QUEUE_OLDEST_SECONDS = Gauge(
    "slotmill_recompute_oldest_due_seconds",
    "Age of the oldest due recompute request.",
    multiprocess_mode="livemostrecent",
)
# How long a scrape waits for the queue numbers before answering without them.
GAUGE_TIMEOUT_S = 2.0


async def _read_queue_gauges(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection(timeout=GAUGE_TIMEOUT_S) as conn:
        cur = await conn.execute(Q["queue_gauges"])
        row = await cur.fetchone()
    if row is not None:
        due, oldest, retrying, parked = row
        QUEUE_REQUESTS.labels("due").set(due)
        QUEUE_REQUESTS.labels("retrying").set(retrying)
        QUEUE_REQUESTS.labels("parked").set(parked)
        QUEUE_OLDEST_SECONDS.set(oldest)


async def metrics_endpoint(request: Request) -> Response:
    pool = getattr(request.app.state, "pool", None)
    if pool is not None:
        try:
            await _read_queue_gauges(pool)
        except (psycopg.Error, PoolTimeout) as e:
            # The process's own metrics still answer; the queue gauges keep their last value.
            log.warning("metrics: queue gauges unavailable: %s", e)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """This process's registry, or (multiprocess mode) one that reads every process's files."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry
