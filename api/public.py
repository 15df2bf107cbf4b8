"""Public endpoints (SPEC §9), no key, rate-limited per client address: slot reads, holds.

Hot paths on the async pool. A slot read is one statement whose result is the response body
(sql/queries/api.sql); a hold is one function call, slotmill_hold() (sql/migrations/0005_hold_function.sql).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import ProblemError, invalid, not_found
from slotmill.api.models import (
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
from slotmill.api.ratelimit import client_address
from slotmill.api.routing import Link, Reply, route
from slotmill.sql import query

JSON = "application/json"


def _limit(request: Request, which: str) -> None:
    state = request.app.state
    limiter = state.read_limiter if which == "reads" else state.hold_limiter
    if limiter.enabled:
        limiter.check(
            client_address(request, trust_forwarded_for=state.settings.trust_forwarded_for)
        )


# --- GET /v1/tenants/{slug}/slots ---------------------------------------------------------


async def read_slots(request: Request) -> Response:
    _limit(request, "reads")
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
    }
    name = "read_slots_by_time" if q.group == "time" else "read_slots"
    async with request.app.state.pool.connection() as conn:
        try:
            # Prepared only for the per-staff read: measured 1.35 ms prepared vs 2.11 ms
            # planned afresh (PostgreSQL 15), while a generic plan of the any-staff read was
            # once 3.7x slower than a custom one (api/db.py).
            cur = await conn.execute(query(name), params, prepare=name == "read_slots")
        except psycopg.errors.InvalidParameterValue:
            # zoneinfo knows the zone but this server's time zone database does not
            raise invalid("query.tz", f"query.tz: {q.tz!r} is unknown to the database") from None
        except psycopg.errors.DatetimeFieldOverflow:
            raise invalid("query.from", "query.from: date out of range") from None
        row = await cur.fetchone()
    assert row is not None
    no_tenant, no_service, no_staff, no_location, body = row
    if no_tenant:
        raise not_found("tenant", f"no tenant {slug!r}")
    if no_service:
        raise not_found("service", f"no active service {q.service_id} in tenant {slug!r}")
    if no_staff:
        raise not_found("staff", f"no active staff member {q.staff_id} in tenant {slug!r}")
    if no_location:
        raise not_found("location", f"no location {q.location_id} in tenant {slug!r}")
    # The database built the body: pass its text through without decoding it here.
    return Response(body, media_type=JSON)


# --- POST /v1/tenants/{slug}/holds --------------------------------------------------------


def _hold_request(body: bytes) -> HoldBySlot | HoldByTime:
    data = parse_json_object(body)
    if "slot_id" in data:
        return parse_model(HoldBySlot, data, "body")
    return parse_model(HoldByTime, data, "body")


async def _attempt(conn: AsyncConnection[Any], params: dict[str, Any]) -> tuple[Any, ...] | None:
    """One hold attempt (slotmill_hold(): lock, check, insert, hide; one round trip plus the
    commit). None when the database refused the booking."""
    try:
        async with conn.transaction():
            cur = await conn.execute(query("create_hold"), params)
            return await cur.fetchone()
    except psycopg.errors.ExclusionViolation:
        # A booking the slot table does not show yet (a host's direct insert whose
        # recompute is still queued) is in the way.
        return None


async def _attempt_any(
    conn: AsyncConnection[Any], params: dict[str, Any], staff_ids: list[Any]
) -> str | None:
    """Hold the first of ``staff_ids`` (best first) that can be held, in one transaction.

    Each attempt runs in a savepoint: rolling one back also releases the staff member's
    advisory lock it took, so a refused attempt leaves nothing behind and never makes the
    next one wait behind a lock it no longer needs.
    """
    async with conn.pipeline(), conn.transaction():
        for staff_id in staff_ids:
            try:
                async with conn.transaction():
                    p = {**params, "staff_id": staff_id}
                    cur = await conn.execute(query("create_hold"), p)
                    row = await cur.fetchone()
                    if row is None or row[4] is None:
                        raise psycopg.Rollback()
            except psycopg.errors.ExclusionViolation:
                continue
            hold: str = row[4]
            return hold
    return None


def _unavailable() -> ProblemError:
    return ProblemError(
        409,
        "slot_unavailable",
        "Slot unavailable",
        "the slot is not offered now (taken, held, or no longer bookable)",
    )


async def create_hold(request: Request) -> Response:
    _limit(request, "holds")
    req = _hold_request(await request.body())
    slug = tenant_slug(request.path_params["slug"])
    metrics = request.app.state.metrics
    base: dict[str, Any] = {
        "slug": slug,
        "slot_id": None,
        "service_id": None,
        "starts_at": None,
        "staff_id": None,
        "session_id": req.session_id,
    }
    if isinstance(req, HoldBySlot):
        base["slot_id"] = req.slot_id
    else:
        base.update(service_id=req.service_id, starts_at=req.starts_at, staff_id=req.staff_id)

    hold: str | None = None
    async with request.app.state.pool.connection() as conn:
        if isinstance(req, HoldByTime) and req.staff_id is None:
            cur = await conn.execute(query("hold_candidates"), base)
            found = await cur.fetchone()
            assert found is not None
            no_tenant, no_service, staff_ids = found
            if no_tenant:
                raise not_found("tenant", f"no tenant {slug!r}")
            if no_service:
                raise not_found("service", f"no active service {req.service_id} in tenant {slug!r}")
            if staff_ids:
                hold = await _attempt_any(conn, base, staff_ids)
        else:
            row = await _attempt(conn, base)
            if row is not None:
                no_tenant, no_service, no_staff, no_slot, hold = row
                if no_tenant:
                    raise not_found("tenant", f"no tenant {slug!r}")
                if no_service:
                    raise not_found(
                        "service", f"no active service {base['service_id']} in tenant {slug!r}"
                    )
                if no_staff:
                    raise not_found(
                        "staff", f"no active staff member {base['staff_id']} in tenant {slug!r}"
                    )
                if no_slot:
                    raise not_found("slot", f"no slot {base['slot_id']!r} in tenant {slug!r}")
    if hold is None:
        metrics.hold_conflicts.inc()
        raise _unavailable()
    metrics.holds_created.inc()
    return Response(hold, status_code=201, media_type=JSON)


# --- DELETE /v1/tenants/{slug}/holds/{hold_id} ---------------------------------------------


async def release_hold(request: Request) -> Response:
    hold_id = parse_uuid(request.path_params["hold_id"], "path.hold_id")
    slug = tenant_slug(request.path_params["slug"])
    params = {"slug": slug, "hold_id": hold_id}
    async with request.app.state.pool.connection() as conn:
        async with conn.pipeline(), conn.transaction():
            await conn.execute(query("lock_hold_staff"), params)
            cur = await conn.execute(query("release_hold"), params)
        row = await cur.fetchone()
    assert row is not None
    no_tenant, status, released = row
    if no_tenant:
        raise not_found("tenant", f"no tenant {slug!r}")
    if status is None:
        raise not_found("hold", f"no hold {hold_id} in tenant {slug!r}")
    if status == "confirmed" or (status == "held" and not released):
        raise ProblemError(
            409,
            "hold_confirmed",
            "Hold already confirmed",
            f"{hold_id} is a confirmed booking: cancel it through the host API",
        )
    if released:
        request.app.state.metrics.holds_released.inc()
    # Releasing what is already cancelled or expired is done already: DELETE is idempotent.
    return Response(status_code=204)


# Link parameters (OpenAPI runtime expressions): the next call is for the same tenant, and
# for the hold this answer made.
_SAME_TENANT = {"slug": "$request.path.slug"}
_THE_HOLD = {**_SAME_TENANT, "hold_id": "$response.body#/hold_id"}

routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/slots",
        read_slots,
        "GET",
        summary="Bookable slots of one service (one SQL statement)",
        tag="public",
        path=TenantPath,
        query=SlotQuery,
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
        responses={204: None},
        problems=[404, 409, 422, 503],
        notes={409: "It is a confirmed booking now (code `hold_confirmed`)."},
    ),
]
