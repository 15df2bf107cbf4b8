"""Host-backend endpoints (SPEC §7, §9): confirm a hold, cancel or reschedule a booking.

``Authorization: Bearer <secret>`` must be a live key of the tenant in the path. Each call
is ONE transaction on a sync connection, run in a worker thread, because the confirm-time
re-check runs the shared engine (materializer.ondemand) against the rules as they are now.
``Idempotency-Key`` (or ``X-Idempotency-Key``) makes a call replayable: the outcome, errors
of the call itself included (404, 409, 410), is stored in the transaction of its effect;
the same key and body replays it, the same key with another body is a 422.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

import orjson
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import PROBLEM_JSON, ProblemError, invalid, not_found
from slotmill.api.models import (
    BookingOut,
    BookingPath,
    CancelIn,
    ConfirmIn,
    HoldPath,
    IdempotencyHeaders,
    RescheduleIn,
    parse_json_object,
    parse_model,
    parse_uuid,
    tenant_slug,
)
from slotmill.api.routing import Header, Link, Reply, route
from slotmill.keys import hash_key
from slotmill.materializer.horizon import to_epoch
from slotmill.materializer.loader import Tenant
from slotmill.materializer.ondemand import slot_is_valid
from slotmill.sql import query

Conn = psycopg.Connection[Any]
Row = dict[str, Any]

_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
DEFAULT_MAX_RESCHEDULES = 3


class _Transient(ProblemError):
    """A failure a retry may not see: never stored under an idempotency key."""


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    problem: bool = False
    text: str | None = None  # as stored under the idempotency key: replays are byte-identical
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> Response:
        content = self.text if self.text is not None else orjson.dumps(self.body)
        headers = dict(self.headers)
        if self.replayed:
            headers["Idempotent-Replayed"] = "true"
        media = PROBLEM_JSON if self.status >= 400 else "application/json"
        return Response(content, status_code=self.status, media_type=media, headers=headers)


@dataclass(frozen=True)
class HostCall:
    slug: str
    key_hash: str
    endpoint: str
    path: str
    idempotency_key: str | None
    request_hash: str


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _uuid(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def booking_json(row: Row) -> dict[str, Any]:
    """A booking as the host API shows it (api.models.BookingOut)."""
    return {
        "id": str(row["id"]),
        "staff_id": str(row["staff_id"]),
        "service_id": str(row["service_id"]),
        "location_id": _uuid(row["location_id"]),
        "starts_at": _instant(row["starts_at"]),
        "ends_at": _instant(row["ends_at"]),
        "status": row["status"],
        "customer_ref": row["customer_ref"],
        "notes": row["notes"],
        "confirmed_at": _instant(row["confirmed_at"]),
        "cancelled_at": _instant(row["cancelled_at"]),
        "reschedule_count": row["reschedule_count"],
        "rescheduled_from": _uuid(row["rescheduled_from"]),
    }


# --- the transaction around every host call -------------------------------------------------


def _run(
    pool: ConnectionPool, call: HostCall, action: Callable[[Conn, Tenant], Outcome]
) -> Outcome:
    with pool.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            query("host_tenant"), {"slug": call.slug, "key_hash": call.key_hash}
        ).fetchone()
        if row is None:
            raise not_found("tenant", f"no tenant {call.slug!r}")
        if not row["authorized"]:
            raise unauthorized("the key is not a live key of this tenant")
        tenant = Tenant(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            zone=row["timezone"],
            horizon_days=row["horizon_days"],
            settings=dict(row["settings"] or {}),
        )
        idem = {"tenant_id": tenant.id, "endpoint": call.endpoint, "key": call.idempotency_key}
        if call.idempotency_key is not None:
            cur.execute(query("idempotency_lock"), idem)
            prev = cur.execute(query("idempotency_get"), idem).fetchone()
            if prev is not None:
                if prev["request_hash"] != call.request_hash:
                    raise ProblemError(
                        422,
                        "idempotency_key_reused",
                        "Idempotency key reused",
                        "this Idempotency-Key was used with another request; use a new key",
                        field="header.Idempotency-Key",
                    )
                return Outcome(prev["status_code"], {}, text=prev["body"], replayed=True)
        try:
            outcome = action(conn, tenant)
        except _Transient:
            raise
        except ProblemError as err:
            outcome = Outcome(err.status, err.body(call.path), problem=True, headers=err.headers)
        if call.idempotency_key is not None:
            stored = cur.execute(
                query("idempotency_put"),
                {
                    **idem,
                    "request_hash": call.request_hash,
                    "status_code": outcome.status,
                    "body": orjson.dumps(outcome.body).decode(),
                },
            ).fetchone()
            assert stored is not None
            outcome.text = stored["body"]
        return outcome


def _lock_staff(conn: Conn, tenant: Tenant, staff_ids: list[UUID]) -> None:
    conn.execute(query("lock_staff"), {"tenant_id": tenant.id, "staff_ids": sorted(set(staff_ids))})


def _staff_of(conn: Conn, tenant: Tenant, booking_id: UUID) -> UUID | None:
    row = conn.execute(
        query("booking_staff"), {"tenant_id": tenant.id, "booking_id": booking_id}
    ).fetchone()
    return None if row is None else UUID(str(row[0]))


def _for_update(conn: Conn, tenant: Tenant, booking_id: UUID, staff_id: UUID) -> Row | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            query("booking_for_update"), {"tenant_id": tenant.id, "booking_id": booking_id}
        ).fetchone()
    if row is not None and row["staff_id"] != staff_id:
        # The host moved it to another staff member between our two reads.
        raise _Transient(
            409, "concurrent_update", "Changed concurrently", "the booking changed meanwhile; retry"
        )
    return row


def _live_hold(conn: Conn, tenant: Tenant, hold: Row) -> None:
    """Raise unless ``hold`` is a live hold. A lapsed one is marked expired (and stays so:
    the outcome is committed with it)."""
    if hold["lapsed"]:
        conn.execute(query("expire_hold"), {"tenant_id": tenant.id, "booking_id": hold["id"]})
        raise ProblemError(
            410,
            "hold_expired",
            "Hold expired",
            f"hold {hold['id']} expired at {_instant(hold['expires_at'])}",
        )
    if hold["status"] == "expired":
        raise ProblemError(410, "hold_expired", "Hold expired", f"hold {hold['id']} has expired")
    if hold["status"] != "held":
        raise ProblemError(
            409, "hold_not_live", "Not a live hold", f"{hold['id']} is {hold['status']}, not held"
        )


def _still_valid(conn: Conn, tenant: Tenant, hold: Row) -> None:
    ok = slot_is_valid(
        conn,
        tenant,
        hold["staff_id"],
        hold["service_id"],
        to_epoch(hold["starts_at"]),
        hold["id"],
        ends_at=to_epoch(hold["ends_at"]),
        now=to_epoch(hold["now"]),
    )
    if not ok:
        raise ProblemError(
            409,
            "slot_no_longer_valid",
            "Slot no longer valid",
            "the rules changed since the hold was taken: the slot is not offered any more",
        )


def _confirm_row(
    conn: Conn,
    tenant: Tenant,
    hold: Row,
    *,
    customer_ref: str | None,
    notes: str | None,
    reschedule_count: int = 0,
    rescheduled_from: UUID | None = None,
) -> Row:
    with conn.cursor(row_factory=dict_row) as cur:
        booking = cur.execute(
            query("confirm_hold"),
            {
                "tenant_id": tenant.id,
                "booking_id": hold["id"],
                "customer_ref": customer_ref,
                "notes": notes,
                "reschedule_count": reschedule_count,
                "rescheduled_from": rescheduled_from,
            },
        ).fetchone()
    assert booking is not None  # the row is locked and was 'held'
    conn.execute(query("remove_blocked_slots"), {"tenant_id": tenant.id, "booking_id": hold["id"]})
    return booking


def confirm(conn: Conn, tenant: Tenant, *, hold_id: UUID, req: ConfirmIn) -> Outcome:
    staff_id = _staff_of(conn, tenant, hold_id)
    if staff_id is None:
        raise not_found("hold", f"no hold {hold_id}")
    # Staff lock before the row lock: the order of the bookings trigger, so no deadlock.
    _lock_staff(conn, tenant, [staff_id])
    hold = _for_update(conn, tenant, hold_id, staff_id)
    if hold is None:
        raise not_found("hold", f"no hold {hold_id}")
    _live_hold(conn, tenant, hold)
    _still_valid(conn, tenant, hold)
    booking = _confirm_row(conn, tenant, hold, customer_ref=req.customer_ref, notes=req.notes)
    return Outcome(201, booking_json(booking))


def _deadline(tenant: Tenant, setting: str, booking: Row, code: str, what: str) -> None:
    hours = max(0, tenant.setting_int(setting, 0))
    if to_epoch(booking["now"]) > to_epoch(booking["starts_at"]) - hours * 3600:
        raise ProblemError(
            409,
            code,
            f"{what.capitalize()} deadline passed",
            f"bookings can be {what}d until {hours} h before they start",
        )


def _confirmed(booking: Row) -> None:
    if booking["status"] != "confirmed":
        raise ProblemError(
            409,
            "booking_not_confirmed",
            "Not a confirmed booking",
            f"{booking['id']} is {booking['status']}",
        )


def cancel(conn: Conn, tenant: Tenant, *, booking_id: UUID) -> Outcome:
    staff_id = _staff_of(conn, tenant, booking_id)
    booking = None if staff_id is None else _for_update(conn, tenant, booking_id, staff_id)
    if booking is None:
        raise not_found("booking", f"no booking {booking_id}")
    _confirmed(booking)
    _deadline(
        tenant, "cancellation_deadline_hours", booking, "cancellation_deadline_passed", "cancel"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            query("cancel_booking"), {"tenant_id": tenant.id, "booking_id": booking_id}
        ).fetchone()
    assert row is not None
    return Outcome(200, booking_json(row))


def reschedule(conn: Conn, tenant: Tenant, *, booking_id: UUID, req: RescheduleIn) -> Outcome:
    old_staff = _staff_of(conn, tenant, booking_id)
    if old_staff is None:
        raise not_found("booking", f"no booking {booking_id}")
    new_staff = _staff_of(conn, tenant, req.hold_id)
    if new_staff is None:
        raise not_found("hold", f"no hold {req.hold_id}")
    _lock_staff(conn, tenant, [old_staff, new_staff])
    old = _for_update(conn, tenant, booking_id, old_staff)
    if old is None:
        raise not_found("booking", f"no booking {booking_id}")
    _confirmed(old)
    _deadline(tenant, "reschedule_deadline_hours", old, "reschedule_deadline_passed", "reschedule")
    limit = tenant.setting_int("max_reschedules", DEFAULT_MAX_RESCHEDULES)
    if old["reschedule_count"] >= limit:
        raise ProblemError(
            409,
            "reschedule_limit_reached",
            "Reschedule limit reached",
            f"a booking can be rescheduled at most {limit} times",
        )
    hold = _for_update(conn, tenant, req.hold_id, new_staff)
    if hold is None:
        raise not_found("hold", f"no hold {req.hold_id}")
    _live_hold(conn, tenant, hold)
    _still_valid(conn, tenant, hold)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(query("cancel_booking"), {"tenant_id": tenant.id, "booking_id": booking_id})
    booking = _confirm_row(
        conn,
        tenant,
        hold,
        customer_ref=old["customer_ref"],
        notes=old["notes"],
        reschedule_count=old["reschedule_count"] + 1,
        rescheduled_from=old["id"],
    )
    return Outcome(200, booking_json(booking))


# --- HTTP ----------------------------------------------------------------------------------


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "unauthorized",
        "Unauthorized",
        detail,
        headers={"WWW-Authenticate": 'Bearer realm="slotmill"'},
    )


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise unauthorized("send the tenant's secret key as `Authorization: Bearer <key>`")
    return secret


def _idempotency_key(request: Request) -> str | None:
    keys = {v for k in ("idempotency-key", "x-idempotency-key") for v in request.headers.getlist(k)}
    if not keys:
        return None
    if len(keys) > 1:
        raise invalid("header.Idempotency-Key", "Idempotency-Key and X-Idempotency-Key disagree")
    (key,) = keys
    if not _IDEMPOTENCY_KEY.match(key):
        raise invalid("header.Idempotency-Key", "1 to 255 visible ASCII characters")
    return key


async def _host_call(
    request: Request, endpoint: str, data: dict[str, Any], action: Callable[[Conn, Tenant], Outcome]
) -> Outcome:
    secret = _bearer(request)
    key = _idempotency_key(request)
    slug = tenant_slug(request.path_params["slug"])
    digest = hashlib.sha256(f"{endpoint} {request.url.path}\n".encode())
    digest.update(orjson.dumps(data, option=orjson.OPT_SORT_KEYS))
    call = HostCall(slug, hash_key(secret), endpoint, request.url.path, key, digest.hexdigest())
    try:
        return await asyncio.to_thread(_run, request.app.state.sync_pool, call, action)
    except psycopg.errors.IntegrityError as e:
        # The database refused the effect (the exclusion constraint: a host wrote a
        # conflicting booking directly). Nothing was stored; a retry may succeed.
        raise ProblemError(
            409, "booking_conflict", "Booking conflict", e.diag.message_primary or str(e)
        ) from None


async def confirm_hold(request: Request) -> Response:
    _bearer(request)
    hold_id = parse_uuid(request.path_params["hold_id"], "path.hold_id")
    data = parse_json_object(await request.body())
    req = parse_model(ConfirmIn, data, "body")
    outcome = await _host_call(
        request, "confirm", data, lambda c, t: confirm(c, t, hold_id=hold_id, req=req)
    )
    if outcome.status == 201 and not outcome.replayed:
        request.app.state.metrics.confirms.inc()
    return outcome.response()


async def cancel_booking(request: Request) -> Response:
    _bearer(request)
    booking_id = parse_uuid(request.path_params["booking_id"], "path.booking_id")
    data = parse_json_object(await request.body(), empty_ok=True)
    parse_model(CancelIn, data, "body")
    outcome = await _host_call(
        request, "cancel", data, lambda c, t: cancel(c, t, booking_id=booking_id)
    )
    if outcome.status == 200 and not outcome.replayed:
        request.app.state.metrics.cancels.inc()
    return outcome.response()


async def reschedule_booking(request: Request) -> Response:
    _bearer(request)
    booking_id = parse_uuid(request.path_params["booking_id"], "path.booking_id")
    data = parse_json_object(await request.body())
    req = parse_model(RescheduleIn, data, "body")
    outcome = await _host_call(
        request, "reschedule", data, lambda c, t: reschedule(c, t, booking_id=booking_id, req=req)
    )
    if outcome.status == 200 and not outcome.replayed:
        request.app.state.metrics.reschedules.inc()
    return outcome.response()


# An answer can be the stored one of an earlier call with the same Idempotency-Key.
_REPLAYED = {
    "Idempotent-Replayed": Header(
        "`true`: the stored answer of an earlier call with this Idempotency-Key.", Literal["true"]
    )
}
# The booking this answer shows (OpenAPI runtime expressions), for the next call.
_THE_BOOKING = {"slug": "$request.path.slug", "booking_id": "$response.body#/id"}
_BOOKING_LINKS = {
    "cancel": Link("cancel_booking", _THE_BOOKING),
    "reschedule": Link("reschedule_booking", _THE_BOOKING),
}
_HOST_PROBLEMS = [401, 404, 409, 413, 422, 503]

routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/holds/{hold_id}/confirm",
        confirm_hold,
        "POST",
        summary="Confirm a hold into a booking",
        tag="host",
        path=HoldPath,
        headers=IdempotencyHeaders,
        body=ConfirmIn,
        responses={201: Reply(BookingOut, headers=_REPLAYED, links=_BOOKING_LINKS)},
        problems=[*_HOST_PROBLEMS, 410],
        notes={409: "`hold_not_live`, `slot_no_longer_valid` or `booking_conflict`."},
        security="tenant_key",
    ),
    route(
        "/v1/tenants/{slug}/bookings/{booking_id}/cancel",
        cancel_booking,
        "POST",
        summary="Cancel a confirmed booking",
        tag="host",
        path=BookingPath,
        headers=IdempotencyHeaders,
        body=CancelIn,
        body_required=False,
        responses={200: Reply(BookingOut, headers=_REPLAYED)},
        problems=_HOST_PROBLEMS,
        notes={409: "`booking_not_confirmed` or `cancellation_deadline_passed`."},
        security="tenant_key",
    ),
    route(
        "/v1/tenants/{slug}/bookings/{booking_id}/reschedule",
        reschedule_booking,
        "POST",
        summary="Move a confirmed booking to a held slot",
        tag="host",
        path=BookingPath,
        headers=IdempotencyHeaders,
        body=RescheduleIn,
        responses={200: Reply(BookingOut, headers=_REPLAYED, links=_BOOKING_LINKS)},
        problems=[*_HOST_PROBLEMS, 410],
        notes={
            409: "`booking_not_confirmed`, `reschedule_deadline_passed`, `reschedule_limit_reached`, "
            "`hold_not_live`, `slot_no_longer_valid` or `booking_conflict`."
        },
        security="tenant_key",
    ),
]
