"""Live updates (docs/architecture.md, "Events"): ``GET /v1/tenants/{slug}/events`` is a
public Server-Sent Events stream of slot changes, so an open widget redraws when a time is
taken or freed.

One database connection per API process LISTENs on ``slotmill_events`` (the worker's
sequencer notifies when it has numbered events), or, behind PgBouncer in transaction mode
(``SLOTMILL_API_PGBOUNCER``), where a LISTEN would be lost with its server connection, the
hub looks every ``SLOTMILL_EVENTS_POLL_SECONDS`` instead; the :class:`EventHub` then reads the new
events of the tenants someone watches, once for all of them, and fans them out in memory
to each stream's bounded queue. A stream too slow to keep up is told to resync instead of
holding memory. Heartbeats are comment lines. A browser's EventSource reconnects with
``Last-Event-ID`` (the tenant's event number), and the stream replays what it missed from
the outbox. Messages carry no customer data: the services and the range of a change.

Wire format, per change: ``event: slots.changed``, ``id: <seq>``,
``data: {"service_ids": [...], "from": ..., "to": ..., "seq": <seq>}``; first a
``ready`` event whose id is where the stream starts; ``resync`` when changes were dropped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
import psycopg
from prometheus_client import Counter, Gauge
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import ProblemError, invalid, not_found
from slotmill.api.models import TenantPath, parse_uuid, tenant_slug
from slotmill.api.ratelimit import client_address, rate_limit
from slotmill.api.routing import Header, Reply, route
from slotmill.config import Settings
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.api")
Q = owned_by(__name__)

CHANNEL = "slotmill_events"
# Read the outbox this often even without a notification (a lost one, a reconnect).
BACKSTOP_S = 5.0
# Rows per tenant per read, and the most a resume replays before it says resync instead.
READ_LIMIT = 1000
# Browsers wait this long before reconnecting (the SSE `retry:` field).
RETRY_MS = 2000

STREAMS = Gauge("slotmill_sse_streams", "Open live-update streams (GET /v1/tenants/{slug}/events) of this process.")
SENT = Counter("slotmill_sse_messages_total", "Slot changes queued to live-update streams.")
RESYNCS = Counter("slotmill_sse_resyncs_total", "Streams told to resync: too slow, or too far behind.")


@dataclass(frozen=True, slots=True)
class Change:
    tenant_id: UUID
    seq: int
    service_ids: list[str] | None
    lo: str | None
    hi: str | None

    def event(self) -> ServerSentEvent:
        data = {"service_ids": self.service_ids, "from": self.lo, "to": self.hi, "seq": self.seq}
        return ServerSentEvent(data=orjson.dumps(data).decode(), event="slots.changed", id=str(self.seq))


@dataclass(eq=False)
class Subscriber:
    tenant_id: UUID
    service_id: str | None
    address: str
    queue: asyncio.Queue[Change | None]
    dropped: bool = False

    def wants(self, c: Change) -> bool:
        return c.service_ids is not None and (self.service_id is None or self.service_id in c.service_ids)

    def offer(self, c: Change) -> None:
        try:
            self.queue.put_nowait(c)
        except asyncio.QueueFull:
            # Too slow: forget what waits and tell it to read everything again.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.dropped = True
            self.queue.put_nowait(c)


class TooManyStreams(Exception):
    pass


@dataclass
class EventHub:
    """Per API process: one LISTEN connection, the cursors of the watched tenants, the
    streams. ``start()`` in the app's lifespan, ``stop()`` at its end."""

    url: str
    pool: AsyncConnectionPool[Any]
    per_client: int = 10
    queue_size: int = 256
    # None: LISTEN (a connection of its own); else look this often (behind PgBouncer)
    poll_s: float | None = None
    cursors: dict[UUID, int] = field(default_factory=dict)
    streams: dict[UUID, set[Subscriber]] = field(default_factory=lambda: collections.defaultdict(set))
    by_address: collections.Counter[str] = field(default_factory=collections.Counter)
    _kick: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def from_settings(cls, url: str, pool: AsyncConnectionPool[Any], settings: Settings) -> EventHub:
        return cls(
            url,
            pool,
            per_client=settings.sse_streams_per_client,
            queue_size=max(1, settings.sse_queue_size),
            poll_s=max(settings.events_poll_seconds, 0.05) if settings.api_pgbouncer else None,
        )

    async def start(self) -> None:
        wake = self._listen() if self.poll_s is None else self._poll(self.poll_s)
        self._tasks = [asyncio.create_task(wake), asyncio.create_task(self._fetch_loop())]

    async def _poll(self, every: float) -> None:
        while True:
            if self.streams:
                self._kick.set()
            await asyncio.sleep(every)

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for subs in self.streams.values():
            for s in subs:
                with contextlib.suppress(asyncio.QueueFull):
                    s.queue.put_nowait(None)  # the stream ends

    def subscribe(self, tenant_id: UUID, service_id: str | None, address: str, last_seq: int) -> Subscriber:
        if self.per_client > 0 and self.by_address[address] >= self.per_client:
            raise TooManyStreams(address)
        sub = Subscriber(tenant_id, service_id, address, asyncio.Queue(self.queue_size))
        if tenant_id not in self.cursors:
            self.cursors[tenant_id] = last_seq
        self.streams[tenant_id].add(sub)
        self.by_address[address] += 1
        STREAMS.inc()
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.streams.get(sub.tenant_id)
        if subs is not None and sub in subs:
            subs.discard(sub)
            STREAMS.dec()
            self.by_address[sub.address] -= 1
            if self.by_address[sub.address] <= 0:
                del self.by_address[sub.address]
            if not subs:
                del self.streams[sub.tenant_id]
                self.cursors.pop(sub.tenant_id, None)

    async def read(self, after: dict[UUID, int], limit: int = READ_LIMIT) -> list[Change]:
        tenants = list(after)
        async with self.pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Change))
            await cur.execute(
                Q["slot_changes"],
                {"tenant_ids": tenants, "after": [after[t] for t in tenants], "limit": limit},
            )
            rows: list[Change] = await cur.fetchall()
            return rows

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, application_name="slotmill-api-events"
                )
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    self._kick.set()  # what was numbered while nobody listened
                    while True:
                        async for _ in conn.notifies(timeout=BACKSTOP_S):
                            self._kick.set()
                        self._kick.set()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("event listener lost its connection; retrying", extra={"ctx_error": str(e)[:200]})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def _fetch_loop(self) -> None:
        while True:
            await self._kick.wait()
            self._kick.clear()
            try:
                await self._fetch()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("reading events failed", extra={"ctx_error": str(e)[:200]})
                await asyncio.sleep(0.5)
                self._kick.set()

    async def _fetch(self) -> None:
        while self.cursors:
            changes = await self.read(dict(self.cursors))
            if not changes:
                return
            counts: collections.Counter[UUID] = collections.Counter()
            for c in changes:
                counts[c.tenant_id] += 1
                if c.tenant_id in self.cursors:
                    self.cursors[c.tenant_id] = max(self.cursors[c.tenant_id], c.seq)
                for sub in self.streams.get(c.tenant_id, ()):
                    if sub.wants(c):
                        sub.offer(c)
                        SENT.inc()
            if max(counts.values()) < READ_LIMIT:
                return


# --- GET /v1/tenants/{slug}/events --------------------------------------------------------


class EventsQuery(BaseModel):
    """Query parameters (documentation: the handler reads them)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    service_id: UUID | None = Field(None, description="Only changes of this service (omitted: every service).")
    last_event_id: int | None = Field(
        None, ge=0, description="Resume after this event (for clients that cannot send the Last-Event-ID header)."
    )


class EventsHeaders(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)
    last_event_id: int | None = Field(
        None, alias="Last-Event-ID", ge=0, description="Resume after this event (an EventSource sends it by itself)."
    )


@dataclass(frozen=True, slots=True)
class StreamStart:
    tenant_id: UUID
    service_found: bool
    last_seq: int


def _last_event_id(request: Request) -> int | None:
    for source, name, value in (
        ("header", "Last-Event-ID", request.headers.get("last-event-id")),
        ("query", "last_event_id", request.query_params.get("last_event_id")),
    ):
        if value is not None and value.strip() != "":
            if not value.strip().isdigit() or len(value.strip()) > 18:
                raise invalid(f"{source}.{name}", f"{source}.{name}: an event number (a whole number >= 0)")
            return int(value.strip())
    return None


def _marker(kind: str, seq: int) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps({"seq": seq}).decode(), event=kind, id=str(seq), retry=RETRY_MS)


async def stream_events(request: Request) -> Response:
    await rate_limit(request, "reads")
    slug = tenant_slug(request.path_params["slug"])
    raw_service = request.query_params.get("service_id")
    service_id = None if not raw_service else parse_uuid(raw_service, "query.service_id")
    resume = _last_event_id(request)
    state = request.app.state
    hub: EventHub = state.event_hub
    async with state.pool.connection() as conn:
        cur = conn.cursor(row_factory=class_row(StreamStart))
        await cur.execute(Q["stream_start"], {"slug": slug, "service_id": service_id})
        start = await cur.fetchone()
    if start is None:
        raise not_found("tenant", f"no tenant {slug!r}")
    if not start.service_found:
        raise not_found("service", f"no service {service_id} in tenant {slug!r}")
    address = client_address(request, getattr(state, "trusted_proxies", None))
    wanted = None if service_id is None else str(service_id)
    try:
        sub = hub.subscribe(start.tenant_id, wanted, address, start.last_seq)
    except TooManyStreams:
        raise ProblemError(
            429,
            "too_many_streams",
            "Too many open streams",
            f"at most {hub.per_client} open event streams per client address",
            headers={"Retry-After": "10"},
        ) from None

    async def events() -> AsyncIterator[ServerSentEvent]:
        sent = start.last_seq if resume is None else resume
        try:
            if resume is not None and resume < start.last_seq:
                backlog = await hub.read({start.tenant_id: resume})
                if len(backlog) >= READ_LIMIT:
                    RESYNCS.inc()
                    sent = start.last_seq
                    yield _marker("resync", sent)
                else:
                    for c in backlog:
                        sent = max(sent, c.seq)
                        if sub.wants(c):
                            yield c.event()
            yield _marker("ready", sent)
            while True:
                got = await sub.queue.get()
                if got is None:
                    return
                c = got
                if sub.dropped:
                    sub.dropped = False
                    RESYNCS.inc()
                    sent = max(sent, c.seq)
                    yield _marker("resync", sent)
                    continue
                if c.seq <= sent:
                    continue  # already sent from the backlog
                sent = c.seq
                yield c.event()
        finally:
            hub.unsubscribe(sub)

    return EventSourceResponse(
        events(),
        ping=state.settings.sse_heartbeat_seconds,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/events",
        stream_events,
        "GET",
        summary="Live slot changes as Server-Sent Events (resumable with Last-Event-ID)",
        tag="public",
        path=TenantPath,
        query=EventsQuery,
        headers=EventsHeaders,
        responses={
            200: Reply(
                str,
                description=(
                    "An event stream: `ready` (where it starts), then `slots.changed` per change with "
                    '`id: <seq>` and `data: {"service_ids", "from", "to", "seq"}`; `resync` when changes '
                    "were dropped (read the slots again); comment lines as heartbeats."
                ),
                media_type="text/event-stream",
                headers={"Cache-Control": Header("Never cached.", required=True)},
            )
        },
        problems=[404, 422, 429, 503],
        notes={429: "Rate-limited, or too many open streams from this address (`too_many_streams`)."},
        name="stream_events",
    ),
]
