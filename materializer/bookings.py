"""The booking lifecycle below HTTP: hold, release, confirm, cancel, reschedule, expire.

Each function is one transaction's work and raises a :class:`BookingError` (a stable
``code``) when the booking cannot be made; ``api/errors.py`` maps codes to HTTP statuses,
and the demo route, the host API and the worker all call these same functions.

- ``hold`` and ``release`` are the public hot path: async, one function call / one
  statement each (sql/queries/bookings.sql; ``slotmill_hold`` in sql/schema.sql).
- ``confirm``, ``cancel`` and ``reschedule`` run in the caller's transaction on a sync
  connection, because the confirm-time re-check runs the shared engine
  (:func:`slotmill.materializer.ondemand.slot_is_valid`) against the rules as they are now.
- ``expire`` retires lapsed holds for the worker's clean-up job.

Locks follow sql/schema.sql, section "Locks": the staff lock(s) first, sorted, then the
booking row.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from slotmill.materializer.beyond import visible_beyond
from slotmill.materializer.horizon import DAY_S, format_instant, from_epoch, to_epoch
from slotmill.materializer.loader import Conn, Tenant
from slotmill.materializer.locks import lock_staff
from slotmill.materializer.model import Slot
from slotmill.materializer.ondemand import slot_is_valid
from slotmill.sql import owned_by

Q = owned_by(__name__)

DEFAULT_MAX_RESCHEDULES = 3


# --- errors --------------------------------------------------------------------------------


class BookingError(Exception):
    """Why a booking operation did not happen. ``code`` is stable (clients branch on it);
    ``detail`` is for people."""

    code = "booking_error"
    title = "Booking refused"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(BookingError):
    title = "Not found"

    def __init__(self, what: str, detail: str) -> None:
        super().__init__(detail)
        self.what = what
        self.code = f"{what}_not_found"


class SlotUnavailable(BookingError):
    code = "slot_unavailable"
    title = "Slot unavailable"


class SessionFull(BookingError):
    code = "session_full"
    title = "Session full"


class ResourceUnavailable(BookingError):
    code = "resource_unavailable"
    title = "Resource unavailable"


class LimitReached(BookingError):
    code = "limit_reached"
    title = "Booking limit reached"


class HoldExpired(BookingError):
    code = "hold_expired"
    title = "Hold expired"


class HoldNotLive(BookingError):
    code = "hold_not_live"
    title = "Not a live hold"


class HoldConfirmed(BookingError):
    code = "hold_confirmed"
    title = "Hold already confirmed"


class SlotNoLongerValid(BookingError):
    code = "slot_no_longer_valid"
    title = "Slot no longer valid"


class NotConfirmed(BookingError):
    code = "booking_not_confirmed"
    title = "Not a confirmed booking"


class DeadlinePassed(BookingError):
    def __init__(self, code: str, title: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.title = title


class RescheduleLimit(BookingError):
    code = "reschedule_limit_reached"
    title = "Reschedule limit reached"


class ConcurrentUpdate(BookingError):
    """The booking moved to another staff member while we locked: a retry may succeed, so
    this outcome is never stored under an idempotency key."""

    code = "concurrent_update"
    title = "Changed concurrently"
    transient = True


class BookingConflict(BookingError):
    """The database refused the effect (a constraint: a host wrote a conflicting booking
    directly). Nothing was changed; a retry may succeed."""

    code = "booking_conflict"
    title = "Booking conflict"
    transient = True


# The database's refusals by constraint name (sql/schema.sql; the bookings trigger raises
# check_violation naming its own), as the booking errors clients branch on.
_REFUSALS: dict[str, type[BookingError]] = {
    "bookings_no_overlap": SlotUnavailable,
    "bookings_session_location": SlotUnavailable,
    "bookings_travel": SlotUnavailable,
    "bookings_session_seats": SessionFull,
    "booking_resources_no_overlap": ResourceUnavailable,
    "booking_resources_unavailable": ResourceUnavailable,
    "bookings_limit_staff_day": LimitReached,
    "bookings_limit_staff_week": LimitReached,
    "bookings_limit_service_day": LimitReached,
    "bookings_limit_service_week": LimitReached,
}


def refusal(e: psycopg.errors.IntegrityError) -> BookingError | None:
    """The booking error a constraint's refusal means, or None if it is no booking rule."""
    cls = _REFUSALS.get(e.diag.constraint_name or "")
    return None if cls is None else cls(e.diag.message_primary or str(e))


# --- rows ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Booking:
    """A booking as the host API returns it."""

    id: UUID
    staff_id: UUID
    service_id: UUID
    location_id: UUID | None
    starts_at: datetime
    ends_at: datetime
    status: str
    seats: int
    customer_ref: str | None
    notes: str | None
    contact: dict[str, Any] | None
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    reschedule_count: int
    rescheduled_from: UUID | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "staff_id": str(self.staff_id),
            "service_id": str(self.service_id),
            "location_id": None if self.location_id is None else str(self.location_id),
            "starts_at": format_instant(self.starts_at),
            "ends_at": format_instant(self.ends_at),
            "status": self.status,
            "seats": self.seats,
            "customer_ref": self.customer_ref,
            "notes": self.notes,
            "contact": self.contact,
            "confirmed_at": None if self.confirmed_at is None else format_instant(self.confirmed_at),
            "cancelled_at": None if self.cancelled_at is None else format_instant(self.cancelled_at),
            "reschedule_count": self.reschedule_count,
            "rescheduled_from": None if self.rescheduled_from is None else str(self.rescheduled_from),
        }


@dataclass(frozen=True, slots=True)
class LockedBooking:
    """A booking row under FOR UPDATE, with the transaction's ``now``."""

    id: UUID
    staff_id: UUID
    service_id: UUID
    location_id: UUID | None
    starts_at: datetime
    ends_at: datetime
    status: str
    expires_at: datetime | None
    seats: int
    customer_ref: str | None
    notes: str | None
    contact: dict[str, Any] | None
    reschedule_count: int
    rescheduled_from: UUID | None
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    lapsed: bool
    now: datetime


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A public hold: by ``slot_id``, or by ``service_id`` + ``starts_at`` (+ ``staff_id``;
    none: the best candidate who can take it)."""

    slug: str
    slot_id: str | None = None
    service_id: UUID | None = None
    starts_at: datetime | None = None
    staff_id: UUID | None = None
    session_id: str | None = None
    seats: int = 1

    def params(self, staff_id: UUID | None = None) -> dict[str, Any]:
        return {
            "seats": self.seats,
            "slug": self.slug,
            "slot_id": self.slot_id,
            "service_id": self.service_id,
            "starts_at": self.starts_at,
            "staff_id": staff_id if staff_id is not None else self.staff_id,
            "session_id": self.session_id,
            "beyond_staff": [],
        }


@dataclass(frozen=True, slots=True)
class HoldRow:
    """What ``slotmill_hold`` answers: which name is unknown (404s), or the hold as JSON text
    (None: the slot is not offered now)."""

    no_tenant: bool
    no_service: bool
    no_staff: bool
    no_slot: bool
    hold: str | None
    # Past the table's end: the slot the engine must judge (materializer/beyond.py)
    beyond_tenant: UUID | None = None
    beyond_staff: UUID | None = None
    beyond_service: UUID | None = None
    beyond_start: datetime | None = None


@dataclass(frozen=True, slots=True)
class Candidates:
    no_tenant: bool
    no_service: bool
    staff_ids: list[UUID]
    tenant_id: UUID | None
    beyond: bool | None  # the start lies past the table's end: the engine says who


# Judges a start past the table's end: (tenant, service, staff or None: anyone, start, seats)
# -> the slots a customer may hold there now (materializer/beyond.py, visible_beyond).
Judge = Callable[[UUID, UUID, UUID | None, int, int], Awaitable[list[Slot]]]


def pool_judge(pool: ConnectionPool[Any]) -> Judge:
    """A judge running the engine on a connection of a sync pool, in a worker thread."""

    def run(tenant_id: UUID, service_id: UUID, staff_id: UUID | None, starts_at: int, seats: int) -> list[Slot]:
        with pool.connection() as conn:
            return visible_beyond(conn, tenant_id, service_id, staff_id, starts_at, seats, int(time.time()))

    async def judge(tenant_id: UUID, service_id: UUID, staff_id: UUID | None, starts_at: int, seats: int) -> list[Slot]:
        return await asyncio.to_thread(run, tenant_id, service_id, staff_id, starts_at, seats)

    return judge


@dataclass(frozen=True, slots=True)
class Released:
    no_tenant: bool
    status: str | None  # before the release; None: no such booking
    released: bool


# --- hold and release (async, the public hot path) ------------------------------------------


async def hold(conn: AsyncConnection[Any], req: HoldRequest, judge: Judge | None = None) -> str:
    """Hold a slot; returns the hold as JSON text (built by the database). Raises
    :class:`NotFound` or :class:`SlotUnavailable`.

    ``judge`` decides starts past the table's end (beyond the horizon, within the advance
    limit); without one, those are not offered."""
    if req.slot_id is None and req.staff_id is None:
        return await _hold_any(conn, req, judge)
    row = await _attempt(conn, req.params(), judge)
    if row.no_tenant:
        raise NotFound("tenant", f"no tenant {req.slug!r}")
    if row.no_service:
        raise NotFound("service", f"no active service {req.service_id} in tenant {req.slug!r}")
    if row.no_staff:
        raise NotFound("staff", f"no active staff member {req.staff_id} in tenant {req.slug!r}")
    if row.no_slot:
        raise NotFound("slot", f"no slot {req.slot_id!r} in tenant {req.slug!r}")
    if row.hold is None:
        raise SlotUnavailable("the slot is not offered now (taken, held, or no longer bookable)")
    return row.hold


async def _create_hold(conn: AsyncConnection[Any], params: dict[str, Any]) -> HoldRow | None:
    async with conn.cursor(row_factory=class_row(HoldRow)) as cur:
        await cur.execute(Q["create_hold"], params)
        return await cur.fetchone()


async def _attempt(conn: AsyncConnection[Any], params: dict[str, Any], judge: Judge | None) -> HoldRow:
    """One hold attempt in a transaction (or a savepoint) of its own; a refusal of the
    database (a booking the table does not show yet, a full session, a busy resource, a
    reached limit) is raised as the booking error it means, the attempt undone."""
    try:
        async with conn.transaction():
            row = await _create_hold(conn, params)
            if row is not None and row.beyond_staff is not None:
                row = await _hold_beyond(conn, row, params, judge)
    except psycopg.errors.IntegrityError as e:
        err = refusal(e)
        if err is None:
            raise
        raise err from None
    assert row is not None
    return row


async def _hold_beyond(
    conn: AsyncConnection[Any], row: HoldRow, params: dict[str, Any], judge: Judge | None
) -> HoldRow:
    """The start lies past the table's end and this transaction holds the staff lock: the
    engine judges it (on another connection: no booking of this staff member can commit
    meanwhile), and if it is offered the hold is written as any other."""
    assert row.beyond_tenant and row.beyond_service and row.beyond_staff and row.beyond_start
    if judge is None:
        return replace(row, hold=None)
    slots = await judge(
        row.beyond_tenant, row.beyond_service, row.beyond_staff, to_epoch(row.beyond_start), params["seats"]
    )
    if not slots:
        return replace(row, hold=None)
    cur = await conn.execute(Q["hold_beyond"], _beyond_params(row.beyond_tenant, slots[0], params))
    written = await cur.fetchone()
    assert written is not None
    return replace(row, hold=written[0])


def _beyond_params(tenant_id: UUID, slot: Slot, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "staff_id": slot.staff_id,
        "service_id": slot.service_id,
        "location_id": slot.location_id,
        "starts_at": from_epoch(slot.starts_at),
        "ends_at": from_epoch(slot.ends_at),
        "seats": params["seats"],
        "session_id": params["session_id"],
    }


async def _candidates(conn: AsyncConnection[Any], params: dict[str, Any]) -> Candidates:
    async with conn.cursor(row_factory=class_row(Candidates)) as cur:
        await cur.execute(Q["hold_candidates"], params)
        found = await cur.fetchone()
    assert found is not None
    return found


async def _hold_any(conn: AsyncConnection[Any], req: HoldRequest, judge: Judge | None) -> str:
    """Hold the first candidate (best first) who can take the start, in one transaction.

    Each attempt runs in a savepoint: rolling one back also releases the advisory lock it
    took, so a refused candidate leaves nothing behind and the next one is tried.
    """
    found = await _candidates(conn, req.params())
    if found.no_tenant:
        raise NotFound("tenant", f"no tenant {req.slug!r}")
    if found.no_service:
        raise NotFound("service", f"no active service {req.service_id} in tenant {req.slug!r}")
    if found.beyond and judge is not None and found.tenant_id and req.service_id and req.starts_at:
        # Past the table's end the engine says who can take it (each attempt judges again,
        # under that staff member's lock); the database orders them as any candidates.
        slots = await judge(found.tenant_id, req.service_id, None, to_epoch(req.starts_at), req.seats)
        if slots:
            found = await _candidates(conn, {**req.params(), "beyond_staff": [s.staff_id for s in slots]})
    refused: BookingError = SlotUnavailable("no staff member can take this start now")
    async with conn.transaction():
        for staff_id in found.staff_ids:
            try:
                row = await _attempt(conn, req.params(staff_id), judge)  # a savepoint each
            except BookingError as err:
                refused = err  # the last candidate's reason is the answer if nobody can
                continue
            if row.hold is not None:
                return row.hold
            # Not offered any more (taken meanwhile): nothing was written; next candidate.
    raise refused


async def release(conn: AsyncConnection[Any], slug: str, hold_id: UUID) -> bool:
    """Release a hold (DELETE is idempotent: an expired or released hold is fine). True if
    this call released it."""
    params = {"slug": slug, "hold_id": hold_id}
    cur = conn.cursor(row_factory=class_row(Released))
    async with conn.pipeline(), conn.transaction():
        await conn.execute(Q["lock_hold_staff"], params)
        await cur.execute(Q["release_hold"], params)
    row = await cur.fetchone()
    await cur.close()
    assert row is not None
    if row.no_tenant:
        raise NotFound("tenant", f"no tenant {slug!r}")
    if row.status is None:
        raise NotFound("hold", f"no hold {hold_id} in tenant {slug!r}")
    if row.status == "confirmed" or (row.status == "held" and not row.released):
        raise HoldConfirmed(f"{hold_id} is a confirmed booking: cancel it through the host API")
    return row.released


def hold_in_transaction(conn: Conn, req: HoldRequest) -> str | None:
    """:func:`hold` by slot id or by staff member on a sync connection, in a savepoint of the
    caller's transaction (the waitlist's auto-hold): the hold as JSON text, None when the
    slot is not offered now; a refusal of the database raises the booking error it means."""
    try:
        with conn.transaction(), conn.cursor(row_factory=class_row(HoldRow)) as cur:
            row = cur.execute(Q["create_hold"], req.params()).fetchone()
            if row is not None and row.beyond_staff is not None:
                # Past the table's end: the engine judges it on this connection, which
                # holds the staff lock (see _hold_beyond).
                assert row.beyond_tenant and row.beyond_service and row.beyond_start
                slots = visible_beyond(
                    conn, row.beyond_tenant, row.beyond_service, row.beyond_staff,
                    to_epoch(row.beyond_start), req.seats, int(time.time()),
                )  # fmt: skip
                written = None
                if slots:
                    written = conn.execute(
                        Q["hold_beyond"], _beyond_params(row.beyond_tenant, slots[0], req.params())
                    ).fetchone()
                row = replace(row, hold=None if written is None else written[0])
    except psycopg.errors.IntegrityError as e:
        err = refusal(e)
        if err is None:
            raise
        raise err from None
    assert row is not None
    if row.no_tenant or row.no_service or row.no_staff or row.no_slot:
        raise NotFound("slot", f"no slot {req.slot_id!r} in tenant {req.slug!r}")
    return row.hold


# --- confirm, cancel, reschedule (sync, in the caller's transaction) ------------------------


def _staff_of(conn: Conn, tenant: Tenant, booking_id: UUID) -> UUID | None:
    row = conn.execute(Q["booking_staff"], {"tenant_id": tenant.id, "booking_id": booking_id}).fetchone()
    return None if row is None else UUID(str(row[0]))


def _for_update(conn: Conn, tenant: Tenant, booking_id: UUID, staff_id: UUID) -> LockedBooking | None:
    with conn.cursor(row_factory=class_row(LockedBooking)) as cur:
        row = cur.execute(Q["booking_for_update"], {"tenant_id": tenant.id, "booking_id": booking_id}).fetchone()
    if row is not None and row.staff_id != staff_id:
        # The host moved it to another staff member between our two reads.
        raise ConcurrentUpdate("the booking changed meanwhile; retry")
    return row


def _live_hold(conn: Conn, tenant: Tenant, h: LockedBooking) -> None:
    """Raise unless ``h`` is a live hold. A lapsed one is marked expired (the caller commits
    that with its outcome)."""
    if h.lapsed:
        conn.execute(Q["expire_hold"], {"tenant_id": tenant.id, "booking_id": h.id})
        expired_at = "" if h.expires_at is None else f" at {format_instant(h.expires_at)}"
        raise HoldExpired(f"hold {h.id} expired{expired_at}")
    if h.status == "expired":
        raise HoldExpired(f"hold {h.id} has expired")
    if h.status != "held":
        raise HoldNotLive(f"{h.id} is {h.status}, not held")


def _still_valid(conn: Conn, tenant: Tenant, h: LockedBooking) -> None:
    ok = slot_is_valid(
        conn,
        tenant,
        h.staff_id,
        h.service_id,
        to_epoch(h.starts_at),
        h.id,
        ends_at=to_epoch(h.ends_at),
        now=to_epoch(h.now),
        seats=h.seats,
        # A hold past the horizon was judged within the advance limit when it was taken;
        # the limits are not re-checked (slot_is_valid), so no bound but the engine's.
        until=to_epoch(h.starts_at) + DAY_S,
    )
    if not ok:
        raise SlotNoLongerValid("the rules changed since the hold was taken: the slot is not offered any more")


def _confirm_row(
    conn: Conn,
    tenant: Tenant,
    h: LockedBooking,
    *,
    customer_ref: str | None,
    notes: str | None,
    contact: dict[str, Any] | None = None,
    reschedule_count: int = 0,
    rescheduled_from: UUID | None = None,
) -> Booking:
    params = {
        "tenant_id": tenant.id,
        "booking_id": h.id,
        "customer_ref": customer_ref,
        "notes": notes,
        "contact": None if contact is None else Jsonb(contact),
        "reschedule_count": reschedule_count,
        "rescheduled_from": rescheduled_from,
    }
    with conn.cursor(row_factory=class_row(Booking)) as cur:
        booking = cur.execute(Q["confirm_hold"], params).fetchone()
    assert booking is not None  # the row is locked and was 'held'
    conn.execute(Q["remove_blocked_slots"], {"tenant_id": tenant.id, "booking_id": h.id})
    return booking


def _constraint(e: psycopg.errors.IntegrityError) -> BookingError:
    return refusal(e) or BookingConflict(e.diag.message_primary or str(e))


def confirm(
    conn: Conn,
    tenant: Tenant,
    *,
    hold_id: UUID,
    customer_ref: str,
    notes: str | None,
    contact: dict[str, Any] | None = None,
) -> Booking:
    """Held -> confirmed: the hold is live, the slot is still offered by the rules as they
    are now (ignoring the hold itself), and the slots it makes impossible are removed."""
    staff_id = _staff_of(conn, tenant, hold_id)
    if staff_id is None:
        raise NotFound("hold", f"no hold {hold_id}")
    lock_staff(conn, tenant.id, [staff_id])
    h = _for_update(conn, tenant, hold_id, staff_id)
    if h is None:
        raise NotFound("hold", f"no hold {hold_id}")
    _live_hold(conn, tenant, h)
    _still_valid(conn, tenant, h)
    try:
        return _confirm_row(conn, tenant, h, customer_ref=customer_ref, notes=notes, contact=contact)
    except psycopg.errors.IntegrityError as e:
        raise _constraint(e) from None


def _deadline(tenant: Tenant, setting: str, b: LockedBooking, code: str, what: str) -> None:
    hours = max(0, tenant.setting_int(setting, 0))
    if to_epoch(b.now) > to_epoch(b.starts_at) - hours * 3600:
        raise DeadlinePassed(
            code, f"{what.capitalize()} deadline passed", f"bookings can be {what}d until {hours} h before they start"
        )


def _confirmed(b: LockedBooking) -> None:
    if b.status != "confirmed":
        raise NotConfirmed(f"{b.id} is {b.status}")


def cancel(conn: Conn, tenant: Tenant, *, booking_id: UUID) -> Booking:
    """Confirmed -> cancelled, within the tenant's cancellation deadline. The freed time
    comes back through the recompute the bookings trigger enqueues."""
    staff_id = _staff_of(conn, tenant, booking_id)
    b = None if staff_id is None else _for_update(conn, tenant, booking_id, staff_id)
    if b is None:
        raise NotFound("booking", f"no booking {booking_id}")
    _confirmed(b)
    _deadline(tenant, "cancellation_deadline_hours", b, "cancellation_deadline_passed", "cancel")
    with conn.cursor(row_factory=class_row(Booking)) as cur:
        row = cur.execute(Q["cancel_booking"], {"tenant_id": tenant.id, "booking_id": booking_id}).fetchone()
    assert row is not None
    return row


def reschedule(conn: Conn, tenant: Tenant, *, booking_id: UUID, hold_id: UUID) -> Booking:
    """Move a confirmed booking onto a live hold: the old one is cancelled and the hold
    confirmed, carrying the customer over, within the deadline and ``max_reschedules``."""
    old_staff = _staff_of(conn, tenant, booking_id)
    if old_staff is None:
        raise NotFound("booking", f"no booking {booking_id}")
    new_staff = _staff_of(conn, tenant, hold_id)
    if new_staff is None:
        raise NotFound("hold", f"no hold {hold_id}")
    lock_staff(conn, tenant.id, [old_staff, new_staff])
    old = _for_update(conn, tenant, booking_id, old_staff)
    if old is None:
        raise NotFound("booking", f"no booking {booking_id}")
    _confirmed(old)
    _deadline(tenant, "reschedule_deadline_hours", old, "reschedule_deadline_passed", "reschedule")
    limit = tenant.setting_int("max_reschedules", DEFAULT_MAX_RESCHEDULES)
    if old.reschedule_count >= limit:
        raise RescheduleLimit(f"a booking can be rescheduled at most {limit} times")
    h = _for_update(conn, tenant, hold_id, new_staff)
    if h is None:
        raise NotFound("hold", f"no hold {hold_id}")
    _live_hold(conn, tenant, h)
    _still_valid(conn, tenant, h)
    try:
        conn.execute(Q["cancel_booking"], {"tenant_id": tenant.id, "booking_id": booking_id})
        return _confirm_row(
            conn,
            tenant,
            h,
            customer_ref=old.customer_ref,
            notes=old.notes,
            contact=old.contact,
            reschedule_count=old.reschedule_count + 1,
            rescheduled_from=old.id,
        )
    except psycopg.errors.IntegrityError as e:
        raise _constraint(e) from None


# --- expiry (the worker's clean-up) ----------------------------------------------------------


def expire(conn: Conn, *, limit: int) -> int:
    """Mark up to ``limit`` lapsed holds 'expired', in the caller's transaction; how many.

    An expired hold hides nothing already (``held_until`` is in the past) and the slot table
    needs no change, so the bookings trigger is told to enqueue nothing.
    """
    conn.execute("SET LOCAL slotmill.holds_applied = 'on'")
    return int(conn.execute(Q["expire_holds"], {"limit": limit}).rowcount)
