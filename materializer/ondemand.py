"""Slots computed on demand by the shared engine, not read from the table.

Two users: the confirm-time re-check (SPEC §7: a hold is judged against the rules as they
are now, ignoring the hold itself) and the benchmark that compares a materialized read with
generating the same answer. Both load rules with :func:`materializer.loader.load_rules` and
run :mod:`materializer.engine`, exactly as materialization does, so the three agree.

Read-time rules (min notice, max advance, live holds hiding a slot or lowering a group
session's seats: SPEC §6) are the caller's: :func:`compute_on_demand` returns what
materialization would write, ``held_until``, ``seats_left`` and ``resource_free`` included.
"""

from __future__ import annotations

import time
from dataclasses import replace
from uuid import UUID

from slotmill.materializer import engine
from slotmill.materializer.loader import Conn, Tenant, load_rules, staff_of_service
from slotmill.materializer.model import Slot


def compute_on_demand(
    conn: Conn,
    tenant: Tenant,
    service_id: UUID,
    lo: int,
    hi: int,
    staff_id: UUID | None = None,
    *,
    now: int | None = None,
) -> list[Slot]:
    """Slots of ``service_id`` starting in ``[lo, hi)`` (clipped to the horizon), of one
    staff member or of everyone who performs the service; sorted by start, then staff id.
    (Past the horizon: materializer/beyond.py.)"""
    now = int(time.time()) if now is None else now
    lo, hi = tenant.horizon(now).clip(lo, hi)
    if lo >= hi:
        return []
    staff_ids = [staff_id] if staff_id is not None else staff_of_service(conn, tenant.id, service_id)
    if not staff_ids:
        return []
    rules = load_rules(conn, tenant, staff_ids=staff_ids, lo=lo, hi=hi, now=now)
    out: list[Slot] = []
    for staff in rules.staff.values():
        out.extend(
            engine.compute_slots(
                staff.computable(), staff.offered(service_id), rules.first_date, rules.last_date, lo, hi
            )
        )
    out.sort(key=lambda s: (s.starts_at, str(s.staff_id)))
    return out


def slot_is_valid(
    conn: Conn,
    tenant: Tenant,
    staff_id: UUID,
    service_id: UUID,
    starts_at: int,
    ignore_booking: UUID | None,
    *,
    ends_at: int | None = None,
    now: int | None = None,
    seats: int = 1,
    until: int | None = None,
) -> bool:
    """Whether the rules as they are now (SPEC §5) offer this slot for a hold of ``seats``,
    judging it against the confirmed bookings (and time off and busy times), never against
    ``ignore_booking``.

    The hold being confirmed is itself a hold, so live holds do not count against it: the
    database already refused any that conflicts with it (another session's, or a resource
    or limit another staff member's hold took), and the holds of its own group session share
    its time. Valid iff the engine offers the start for the staff member and service, with
    ``seats_left`` >= ``seats`` for a group service and ``resource_free`` >= 1 for a service
    that needs resources.

    Also false when the slot has already started, lies outside the horizon (or past
    ``until``, for a hold beyond the horizon), or (``ends_at``
    given) no longer ends there because the service's duration changed. Notice and advance
    limits are not re-checked: they applied when the slot was held, and a hold must not
    lapse into invalidity while the customer types.
    """
    now = int(time.time()) if now is None else now
    if starts_at < now:
        return False
    horizon = tenant.horizon(now)
    end = until if until is not None and until > horizon.end else horizon.end
    if not horizon.start <= starts_at < end:
        return False
    rules = load_rules(
        conn,
        tenant,
        staff_ids=[staff_id],
        lo=starts_at,
        hi=starts_at + 1,
        now=now,
        ignore_booking=ignore_booking,
        beyond=starts_at >= horizon.end,
    )
    staff = rules.staff.get(staff_id)
    offered = staff.offered(service_id) if staff else []
    if staff is None or not offered:
        return False
    schedule = replace(staff.computable(), holds=())
    slots = engine.compute_slots(schedule, offered, rules.first_date, rules.last_date, starts_at, starts_at + 1)
    service = offered[0]
    return any(
        s.starts_at == starts_at
        and (ends_at is None or s.ends_at == ends_at)
        and (service.seats <= 1 or s.seats_left >= seats)
        and (s.resource_free is None or s.resource_free >= 1)
        for s in slots
    )
