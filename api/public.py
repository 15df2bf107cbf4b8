"""Public endpoints (SPEC §9), no key, rate-limited per client address: slot reads, holds.

Hot paths on the async pools. A slot read is one statement whose result is the response body
(sql/queries/reads.sql), run on a read replica when there is one (api/replicas.py); a hold
and a release are the booking lifecycle's (slotmill.materializer.bookings), on the primary,
and answer with the consistency token that later reads carry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg_pool import ConnectionPool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api import replicas
from slotmill.api.errors import booking_problem, invalid, not_found
from slotmill.api.models import (
    MAX_RANGE_DAYS,
    ConsistencyHeaders,
    HoldBySlot,
    HoldByTime,
    HoldOut,
    HoldPath,
    SlotQuery,
    SlotsOut,
    TenantPath,
    TimeSlotsOut,
    parse_json_object,
    parse_model,
    parse_uuid,
    tenant_slug,
)
from slotmill.api.ratelimit import rate_limit
from slotmill.api.readcache import Kept, ReadCache, kept_from
from slotmill.api.routing import Header, Link, Reply, route
from slotmill.materializer import bookings
from slotmill.materializer.beyond import Extras, compute_beyond
from slotmill.materializer.horizon import from_epoch, to_epoch
from slotmill.sql import owned_by

Q = owned_by(__name__)

JSON = "application/json"


# --- GET /v1/tenants/{slug}/slots ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SlotRead:
    """A read's one row: flags naming what does not exist (404s), the JSON body, and what
    keeping it needs (the tenant's version, until when time leaves it unchanged)."""

    no_tenant: bool
    no_service: bool
    no_staff: bool
    no_location: bool
    body: str
    tenant_id: UUID | None
    version: int | None
    valid_until: datetime | None
    # where the table's slots end, and the window the read covers (None: nothing to read)
    table_end: datetime | None
    window_lo: datetime | None
    window_hi: datetime | None
    asked_hi: datetime | None
    bookable_from: datetime | None
    bookable_until: datetime | None

    def reaches_beyond(self) -> bool:
        """Whether part of the window lies past the table's end (beyond the horizon,
        within the advance limit): that part is the engine's."""
        return (
            self.table_end is not None
            and self.window_lo is not None
            and self.window_hi is not None
            and self.window_lo < self.window_hi
            and self.window_hi > self.table_end
        )


async def read_slots(request: Request) -> Response:
    await rate_limit(request, "reads")
    q = parse_model(SlotQuery, request.query_params, "query")
    problem = q.range_error()
    if problem:
        raise invalid("query.to", f"query.to: {problem}")
    slug = tenant_slug(request.path_params["slug"])
    lo, hi = q.from_, q.to
    instants = isinstance(lo, datetime)
    params: dict[str, Any] = {
        "slug": slug,
        "service_id": q.service_id,
        "from_at": lo if instants else None,
        "to_at": hi if instants else None,
        "from_date": None if instants else lo,
        "to_date": None if instants else hi,
        "tz": q.tz,
        "staff_id": q.staff_id,
        "location_id": q.location_id,
        "candidates": q.candidates,
        "limit": q.limit,
    }
    name = "read_slots_by_time" if q.group == "time" else "read_slots"
    cache: ReadCache = request.app.state.read_cache
    key = (name, *params.items())
    reads: replicas.ReadRouter = request.app.state.reads

    async def answer(conn: AsyncConnection[Any], extras: dict[str, Any] | None = None) -> Kept | SlotRead | None:
        # On a replica, this connection has replayed the request's token (api/replicas.py):
        # a version found current there is at least as new as the customer's own write.
        kept = cache.candidate(key) if cache.enabled and extras is None else None
        if kept is not None and await cache.still_current(conn, kept):
            return kept
        try:
            # Never a server-side prepared statement (api/db.py: prepare_threshold=None,
            # which psycopg honours over any prepare=True): planned afresh for its values,
            # and safe behind PgBouncer in transaction mode.
            cur = conn.cursor(row_factory=class_row(SlotRead))
            await cur.execute(Q[name], {**params, **(NO_EXTRAS if extras is None else extras)})
        except psycopg.errors.InvalidParameterValue:
            # zoneinfo knows the zone but this server's time zone database does not
            raise invalid("query.tz", f"query.tz: {q.tz!r} is unknown to the database") from None
        except psycopg.errors.DatetimeFieldOverflow:
            raise invalid("query.from", "query.from: date out of range") from None
        return await cur.fetchone()

    row = await reads.run(answer, token=replicas.request_token(request))
    if isinstance(row, Kept):
        cache.hits += 1
        return _answer(request, row)
    assert row is not None
    if row.no_tenant:
        raise not_found("tenant", f"no tenant {slug!r}")
    if row.no_service:
        raise not_found("service", f"no active service {q.service_id} in tenant {slug!r}")
    if row.no_staff:
        raise not_found("staff", f"no active staff member {q.staff_id} in tenant {slug!r}")
    if row.no_location:
        raise not_found("location", f"no location {q.location_id} in tenant {slug!r}")
    assert row.tenant_id is not None and row.version is not None
    valid_until = row.valid_until
    if row.reaches_beyond():
        row, valid_until = await _read_beyond(request, answer, row, q)
    # The database built the body: it is passed through, never decoded here.
    assert row.tenant_id is not None and row.version is not None
    kept = kept_from(row.tenant_id, row.version, valid_until, row.body)
    cache.misses += 1
    cache.put(key, kept)
    return _answer(request, kept)


# The read's engine slots when it has none (its window ends at the table's end).
NO_EXTRAS: dict[str, Any] = {
    "beyond_from": None,
    **{k: [] for k in ("x_id", "x_staff", "x_location", "x_starts", "x_ends", "x_held", "x_seats", "x_free")},
}


async def _read_beyond(
    request: Request,
    answer: Callable[[AsyncConnection[Any], dict[str, Any] | None], Awaitable[Kept | SlotRead | None]],
    row: SlotRead,
    q: SlotQuery,
) -> tuple[SlotRead, datetime | None]:
    """The read again, with the engine's slots from the table's end on (the same ids,
    instants and rules as materialization: materializer/beyond.py), and until when its
    answer holds. Computed on the primary's rules; the statement then runs where reads run."""
    assert row.tenant_id and row.table_end and row.window_lo and row.window_hi and row.asked_hi
    assert row.bookable_from and row.bookable_until
    now = int(time.time())
    lo = max(row.window_lo, row.table_end)
    # Through the asked end, past the advance limit: the first slot there says when the
    # moving limit changes this answer (Extras.kept_until).
    hi = max(row.window_hi, min(row.asked_hi, row.window_hi + timedelta(days=MAX_RANGE_DAYS)))
    extras = await asyncio.to_thread(
        _compute_beyond, request.app.state.sync_pool, row.tenant_id, q.service_id, q.staff_id, lo, hi, now
    )
    reads: replicas.ReadRouter = request.app.state.reads
    again = await reads.run(
        lambda conn: answer(conn, {"beyond_from": row.table_end, **extras.params()}),
        token=replicas.request_token(request),
    )
    assert isinstance(again, SlotRead)
    until = extras.kept_until(
        now, bookable_from=row.bookable_from, bookable_until=row.bookable_until, window_hi=row.window_hi
    )
    valid_until = again.valid_until
    if until is not None:
        engine_until = from_epoch(until)
        valid_until = engine_until if valid_until is None else min(valid_until, engine_until)
    return again, valid_until


def _compute_beyond(
    pool: ConnectionPool[Any],
    tenant_id: UUID,
    service_id: UUID,
    staff_id: UUID | None,
    lo: datetime,
    hi: datetime,
    now: int,
) -> Extras:
    with pool.connection() as conn:
        return compute_beyond(conn, tenant_id, service_id, staff_id, to_epoch(lo), to_epoch(hi), now)


def _answer(request: Request, kept: Kept) -> Response:
    """The answer, or 304 when the client has it already; gzip when it asks for it. The
    client must revalidate every time (no-cache): the ETag makes that cheap, and only the
    server can know the answer is unchanged."""
    headers = {"ETag": kept.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    if kept.etag in _etags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    if kept.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        return Response(kept.gzipped, media_type=JSON, headers={**headers, "Content-Encoding": "gzip"})
    return Response(kept.body, media_type=JSON, headers=headers)


def _etags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


# --- POST /v1/tenants/{slug}/holds --------------------------------------------------------


def _hold_request(body: bytes, slug: str) -> bookings.HoldRequest:
    data = parse_json_object(body)
    if "slot_id" in data:
        by_slot = parse_model(HoldBySlot, data, "body")
        return bookings.HoldRequest(slug, slot_id=by_slot.slot_id, session_id=by_slot.session_id, seats=by_slot.seats)
    by_time = parse_model(HoldByTime, data, "body")
    return bookings.HoldRequest(
        slug,
        service_id=by_time.service_id,
        starts_at=by_time.starts_at,
        staff_id=by_time.staff_id,
        session_id=by_time.session_id,
        seats=by_time.seats,
    )


async def create_hold(request: Request) -> Response:
    await rate_limit(request, "holds")
    slug = tenant_slug(request.path_params["slug"])
    req = _hold_request(await request.body(), slug)
    metrics = request.app.state.metrics
    try:
        # In a pipeline, the token's statement rides with the hold's COMMIT: no round trip
        # of its own (the hold's BEGIN rides with its statement, too).
        async with request.app.state.pool.connection() as conn, conn.pipeline():
            hold = await bookings.hold(conn, req, bookings.pool_judge(request.app.state.sync_pool))
            token = await replicas.write_position(conn)
    except bookings.SlotUnavailable as err:
        metrics.hold_conflicts.inc()
        raise booking_problem(err) from None
    except bookings.BookingError as err:
        raise booking_problem(err) from None
    metrics.holds_created.inc()
    # The database built the hold's JSON object; the token joins it without a decode.
    assert hold.endswith("}")
    body = f'{hold[:-1]},"consistency":"{token}"}}'
    return Response(body, status_code=201, media_type=JSON, headers={replicas.HEADER: token})


# --- DELETE /v1/tenants/{slug}/holds/{hold_id} ---------------------------------------------


async def release_hold(request: Request) -> Response:
    hold_id = parse_uuid(request.path_params["hold_id"], "path.hold_id")
    slug = tenant_slug(request.path_params["slug"])
    try:
        async with request.app.state.pool.connection() as conn, conn.pipeline():
            released = await bookings.release(conn, slug, hold_id)
            token = await replicas.write_position(conn)
    except bookings.BookingError as err:
        raise booking_problem(err) from None
    if released:
        request.app.state.metrics.holds_released.inc()
    # Releasing what is already cancelled or expired is done already: DELETE is idempotent.
    return Response(status_code=204, headers={replicas.HEADER: token})


# Link parameters (OpenAPI runtime expressions): the next call is for the same tenant, and
# for the hold this answer made.
_SAME_TENANT = {"slug": "$request.path.slug"}
_THE_HOLD = {**_SAME_TENANT, "hold_id": "$response.body#/hold_id"}
_TOKEN = {
    replicas.HEADER: Header(
        "The primary's WAL position after this write: send it with later reads (header or `consistency`"
        " parameter) and they never show a state older than it.",
        required=True,
    )
}

routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/slots",
        read_slots,
        "GET",
        summary="Bookable slots of one service (one SQL statement)",
        tag="public",
        path=TenantPath,
        query=SlotQuery,
        headers=ConsistencyHeaders,
        responses={
            200: Reply(
                SlotsOut | TimeSlotsOut,
                links={
                    "hold_slot": Link(
                        "create_hold",
                        _SAME_TENANT,
                        body={"slot_id": "$response.body#/slots/0/id"},
                        description="Hold the first slot by its id.",
                    ),
                    "hold_time": Link(
                        "create_hold",
                        _SAME_TENANT,
                        body={
                            "service_id": "$request.query.service_id",
                            "starts_at": "$response.body#/slots/0/starts_at",
                        },
                        description="Hold the first start with any staff member.",
                    ),
                },
            )
        },
        problems=[404, 422, 429, 503],
    ),
    route(
        "/v1/tenants/{slug}/holds",
        create_hold,
        "POST",
        summary="Hold a slot: by slot id, or by service and start (optionally a staff member)",
        tag="public",
        path=TenantPath,
        body=HoldBySlot | HoldByTime,
        responses={
            201: Reply(
                HoldOut,
                headers=_TOKEN,
                links={
                    "confirm": Link("confirm_hold", _THE_HOLD),
                    "release": Link("release_hold", _THE_HOLD),
                    "demo_confirm": Link("demo_confirm", _THE_HOLD),
                },
            )
        },
        problems=[404, 409, 413, 422, 429, 503],
        notes={409: "The slot is not offered now (code `slot_unavailable`)."},
    ),
    route(
        "/v1/tenants/{slug}/holds/{hold_id}",
        release_hold,
        "DELETE",
        summary="Release a hold (idempotent)",
        tag="public",
        path=HoldPath,
        responses={204: Reply(headers=_TOKEN)},
        problems=[404, 409, 422, 503],
        notes={409: "It is a confirmed booking now (code `hold_confirmed`)."},
    ),
]
