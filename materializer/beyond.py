"""Slots past the table's end, computed on demand (docs/architecture.md, "Beyond the horizon").

The table holds ``horizon_days``; a service may be bookable further ahead (its advance limit).
There a read gets its slots from the engine and passes them into the one read statement
(sql/queries/reads.sql), and a hold is judged by the engine while the hold's transaction
holds the staff lock, then written exactly as a hold of a table row is (slotmill_hold_insert).
Both use the loader and engine that materialization uses, with the windows built through the
asked dates on the same grid anchoring (horizon.window_dates): a slot offered beyond the
horizon today is the slot, id included, that the nightly will write once the horizon gets there.

Where the table ends is ``slotmill_table_end`` (sql/schema.sql): the horizon's end, or the
end the last full refresh covered while the nightly has not yet written a new day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from slotmill.materializer import engine
from slotmill.materializer.horizon import from_epoch, to_epoch
from slotmill.materializer.loader import Conn, load_rules, load_tenant_by_id, staff_of_service
from slotmill.materializer.model import RuleError, Slot
from slotmill.materializer.slot_ids import slot_id
from slotmill.sql import owned_by

Q = owned_by(__name__)

__all__ = ["Extras", "compute_beyond", "visible_beyond"]


@dataclass(frozen=True, slots=True)
class Extras:
    """The engine's slots of one service from the table's end on, as a read passes them in."""

    tenant_id: UUID
    service_id: UUID
    slots: list[Slot]

    def params(self) -> dict[str, Any]:
        """The read statement's %(x_...)s arrays."""
        s = self.slots
        return {
            "x_id": [slot_id(self.tenant_id, x.staff_id, self.service_id, x.starts_at) for x in s],
            "x_staff": [x.staff_id for x in s],
            "x_location": [x.location_id for x in s],
            "x_starts": [from_epoch(x.starts_at) for x in s],
            "x_ends": [from_epoch(x.ends_at) for x in s],
            "x_held": [None if x.held_until is None else from_epoch(x.held_until) for x in s],
            "x_seats": [x.seats_left for x in s],
            "x_free": [x.resource_free for x in s],
        }

    def kept_until(
        self, now: int, *, bookable_from: datetime, bookable_until: datetime, window_hi: datetime
    ) -> int | None:
        """Until when time alone leaves this part of the answer unchanged (what
        slotmill_kept_until answers for the table's part): a hold hiding a slot lapses, the
        notice limit moves past the first slot, the advance limit reaches a slot past the
        window (the extras are computed through the asked end for this). None: never."""
        ends: list[int] = [x.held_until for x in self.slots if x.held_until is not None and x.held_until > now]
        hi = to_epoch(window_hi)
        inside = [x.starts_at for x in self.slots if x.starts_at < hi]
        if inside:
            ends.append(min(inside) - (to_epoch(bookable_from) - now))
        after = [x.starts_at for x in self.slots if x.starts_at >= to_epoch(bookable_until)]
        if after:
            ends.append(min(after) - (to_epoch(bookable_until) - now))
        return min(ends) if ends else None


def compute_beyond(
    conn: Conn, tenant_id: UUID, service_id: UUID, staff_id: UUID | None, lo: int, hi: int, now: int
) -> Extras:
    """The slots of ``service_id`` (of ``staff_id``, or of everyone who performs it) starting
    in ``[lo, hi)``, ``lo`` at or past the table's end, as materialization would write them.

    A staff member whose stored rules cannot be computed offers nothing here, as their
    recompute fails (docs/rules.md): one bad rule never fails a customer's read."""
    tenant = load_tenant_by_id(conn, tenant_id)
    none = Extras(tenant_id, service_id, [])
    if tenant is None or lo >= hi:
        return none
    staff_ids = [staff_id] if staff_id is not None else staff_of_service(conn, tenant_id, service_id)
    if not staff_ids:
        return none
    rules = load_rules(conn, tenant, staff_ids=staff_ids, lo=lo, hi=hi, now=now, beyond=True)
    out: list[Slot] = []
    for staff in rules.staff.values():
        offered = staff.offered(service_id)
        if not offered:
            continue
        try:
            out.extend(engine.compute_slots(staff.computable(), offered, rules.first_date, rules.last_date, lo, hi))
        except RuleError:
            continue
    out.sort(key=lambda s: (s.starts_at, str(s.staff_id)))
    return Extras(tenant_id, service_id, out)


def visible_beyond(
    conn: Conn, tenant_id: UUID, service_id: UUID, staff_id: UUID | None, starts_at: int, seats: int, now: int
) -> list[Slot]:
    """The slots at ``starts_at`` (of ``staff_id``, or of anyone) a customer may hold now for
    ``seats`` seats, as a read shows them: not hidden by a live hold, with the seats left
    after live holds, and (for a service that needs them) a resource free.

    For a hold, the caller's transaction holds the staff lock of ``staff_id`` while this
    runs (on that connection or another): no booking of that staff member can commit
    meanwhile, so what this finds stays true until the hold is written."""
    extras = compute_beyond(conn, tenant_id, service_id, staff_id, starts_at, starts_at + 1, now)
    shown = [
        s
        for s in extras.slots
        if s.starts_at == starts_at
        and (s.held_until is None or s.held_until <= now)
        and (s.resource_free is None or s.resource_free >= 1)
    ]
    if not shown:
        return []
    # One statement for every candidate's held seats (0 for a one-seat service).
    rows = conn.execute(
        Q["held_seats"],
        {
            "tenant_id": tenant_id,
            "service_id": service_id,
            "starts_at": from_epoch(starts_at),
            "staff_ids": [s.staff_id for s in shown],
        },
    ).fetchall()
    held = {UUID(str(r[0])): int(r[1]) for r in rows}
    return [s for s in shown if s.seats_left - held.get(s.staff_id, 0) >= seats]
