"""Explain: why a start is or is not offered, in the engine's own words."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from slotmill.materializer.engine.capacity import Capacity
from slotmill.materializer.engine.grid import grid_origin, service_params
from slotmill.materializer.engine.recurrence import applies_on
from slotmill.materializer.engine.windows import merged_windows
from slotmill.materializer.engine.zones import local_date_of
from slotmill.materializer.horizon import format_instant as _iso
from slotmill.materializer.model import BusyKind, Explanation, Reason, ReasonCode, ServiceRule, StaffSchedule, Window

_BUSY_CODES = {
    BusyKind.TIME_OFF: (ReasonCode.TIME_OFF, "time off"),
    BusyKind.BUSY: (ReasonCode.BUSY, "busy time"),
    BusyKind.BOOKED: (ReasonCode.BOOKED, "confirmed booking"),
}


def _ref(ref: str) -> str:
    return f" {ref}" if ref else ""


def _place(location: UUID | None) -> str:
    return f"location {location}" if location is not None else "no location"


class _Judgement:
    """What stands in the way of a candidate at one location (every reason that is not
    about working hours, holds, notice or the horizon), and what the slot would carry."""

    def __init__(
        self,
        capacity: Capacity,
        service: ServiceRule,
        location: UUID | None,
        t: int,
        block_lo: int,
        block_hi: int,
    ) -> None:
        schedule = capacity.schedule
        self.reasons: list[Reason] = []
        taken = joined = 0
        for b in sorted(capacity.busy, key=lambda r: (r.start, r.end)):
            if capacity.own_session(service, location, t, b):
                taken += b.seats
                joined += 1
            elif b.start < block_hi and b.end > block_lo:
                code, label = _BUSY_CODES[b.kind]
                self.reasons.append(
                    Reason(
                        code,
                        f"{label}{_ref(b.ref)} {_iso(b.start)}-{_iso(b.end)} overlaps the blocked "
                        f"range {_iso(block_lo)}-{_iso(block_hi)}",
                    )
                )
            elif (w := capacity.widened(b, location)) != (b.start, b.end) and w[0] < block_hi and w[1] > block_lo:
                there, back = b.start - w[0], w[1] - b.end
                self.reasons.append(
                    Reason(
                        ReasonCode.TRAVEL,
                        f"confirmed booking{_ref(b.ref)} {_iso(b.start)}-{_iso(b.end)} at {_place(b.location_id)} "
                        f"needs {there // 60} min of travel there from {_place(location)} and {back // 60} min back: "
                        f"{_iso(w[0])}-{_iso(w[1])} overlaps the blocked range {_iso(block_lo)}-{_iso(block_hi)}",
                    )
                )
        self.seats_left = service.seats - taken
        if service.seats > 1 and self.seats_left <= 0:
            self.reasons.append(
                Reason(
                    ReasonCode.SESSION_FULL,
                    f"the session at {_iso(t)} has {taken} of {service.seats} seats taken "
                    f"by {joined} confirmed booking{'s' if joined != 1 else ''}",
                )
            )
        if joined == 0 and capacity.limited(service):
            day = local_date_of(schedule.zone, t)
            for hit in capacity.limits_on(service, day.toordinal()):
                whose = "the staff member's" if hit.scope == "staff" else "the service's"
                self.reasons.append(
                    Reason(
                        ReasonCode.LIMIT_REACHED,
                        f"{whose} {hit.period} limit is reached: {hit.booked} of {hit.limit} "
                        f"booked in {hit.label} ({schedule.zone})",
                    )
                )
        self.resource_free: int | None = None
        if service.resources:
            counts = capacity.resource_counts(service, location, t, block_lo, block_hi)
            self.resource_free = min(c.free // c.needed for c in counts)
            for c in counts:
                if c.free < c.needed:
                    self.reasons.append(
                        Reason(
                            ReasonCode.RESOURCE_BUSY,
                            f"{c.free} of {c.usable} resources of kind {c.kind!r} usable at {_place(location)} "
                            f"are free over {_iso(block_lo)}-{_iso(block_hi)}; {c.needed} needed",
                        )
                    )


def explain(
    schedule: StaffSchedule,
    service: ServiceRule,
    *,
    qualified: bool,
    active: bool,
    starts_at: int,
    now: int,
    min_notice_s: int,
    advance_limit: int,
    horizon_end: int,
    first: date,
    last: date,
) -> Explanation:
    """Why a slot at ``starts_at`` is or is not offered: every reason that applies.

    The schedule-based reasons (holiday, outside_working_hours, off_grid, time_off, busy,
    booked, travel, session_full, limit_reached, resource_busy) are reported iff
    ``generate_slots`` over ``merged_windows(schedule, first, last)`` would not produce this
    start; ``held`` iff it would but with ``held_until``.
    A holiday implies the start lies outside working hours, so only ``holiday`` is said.
    ``in_past`` implies ``min_notice``, so only ``in_past`` is said. When nothing applies
    the single reason is ``available``, naming the slot's location and end.
    """
    duration_s, step_s, before_s, after_s = service_params(service)
    t = starts_at
    end = t + duration_s
    block_lo, block_hi = t - before_s, end + after_s
    reasons: list[Reason] = []

    if not qualified:
        reasons.append(
            Reason(
                ReasonCode.NOT_QUALIFIED,
                f"staff member {schedule.staff_id} does not perform service {service.id}",
            )
        )
    if not active:
        reasons.append(Reason(ReasonCode.INACTIVE, "the staff member or the service is inactive"))

    capacity = Capacity(schedule)
    day = local_date_of(schedule.zone, t)
    offered_at: Window | None = None
    judged: _Judgement | None = None
    holidays = [
        h for h in schedule.holidays if day.toordinal() in applies_on(h.rrule, h.on_date, day, day)
    ]
    if holidays:
        names = ", ".join(h.name or "unnamed" for h in holidays)
        reasons.append(
            Reason(ReasonCode.HOLIDAY, f"{day.isoformat()} ({schedule.zone}) is a holiday: {names}")
        )
    else:
        fitting = [
            w for w in merged_windows(schedule, first, last) if w.start <= t and end <= w.end
        ]
        on_grid = [
            w for w in fitting if t >= (o := grid_origin(w.start, w.end, step_s)) and (t - o) % step_s == 0
        ]
        if not fitting:
            reasons.append(
                Reason(
                    ReasonCode.OUTSIDE_WORKING_HOURS,
                    f"no working window holds {_iso(t)}-{_iso(end)}",
                )
            )
        elif not on_grid:
            w = fitting[0]
            origin = grid_origin(w.start, w.end, step_s)
            before = origin + (t - origin) // step_s * step_s
            reasons.append(
                Reason(
                    ReasonCode.OFF_GRID,
                    f"the window starting {_iso(w.start)} offers starts every "
                    f"{step_s // 60} min; nearest are {_iso(before)} and {_iso(before + step_s)}",
                )
            )
        else:
            # Windows of different locations may overlap (conflicting rules): the slot is
            # the first window's that offers it, as generation keeps it.
            for w in on_grid:
                j = _Judgement(capacity, service, w.location_id, t, block_lo, block_hi)
                if not j.reasons:
                    offered_at, judged = w, j
                    break
            if judged is None:
                offered_at = on_grid[0]
    if judged is None:
        location = offered_at.location_id if offered_at is not None else schedule.location_id
        judged = _Judgement(capacity, service, location, t, block_lo, block_hi)
        reasons.extend(judged.reasons)
    location = offered_at.location_id if offered_at is not None else schedule.location_id
    own = capacity.own_hold(service, location) if service.seats > 1 else None
    for h in sorted(schedule.holds, key=lambda r: (r.start, r.end)):
        if h.start < h.end and h.start < block_hi and h.end > block_lo and not (own is not None and own(h, t)):
            reasons.append(
                Reason(
                    ReasonCode.HELD,
                    f"hold{_ref(h.booking_id)} {_iso(h.start)}-{_iso(h.end)} hides it "
                    f"until {_iso(h.expires_at)}",
                )
            )

    if t < now:
        reasons.append(Reason(ReasonCode.IN_PAST, f"{_iso(t)} is before now ({_iso(now)})"))
    elif t < now + min_notice_s:
        reasons.append(
            Reason(
                ReasonCode.MIN_NOTICE,
                f"{_iso(t)} is within the minimum notice of {min_notice_s // 60} min "
                f"(bookable from {_iso(now + min_notice_s)})",
            )
        )
    limit = min(horizon_end, advance_limit)
    if t >= limit:
        which = "the horizon" if horizon_end <= advance_limit else "the advance booking limit"
        reasons.append(
            Reason(ReasonCode.BEYOND_HORIZON, f"{_iso(t)} is at or after {which} ({_iso(limit)})")
        )

    if reasons:
        return Explanation(False, tuple(reasons))
    loc = ""
    if offered_at is not None and offered_at.location_id is not None:
        loc = f" at location {offered_at.location_id}"
    carries = ""
    if service.seats > 1:
        carries += f", {judged.seats_left} of {service.seats} seats left"
    if judged.resource_free is not None:
        carries += f", resources for {judged.resource_free} more"
    return Explanation(
        True, (Reason(ReasonCode.AVAILABLE, f"offered{loc}, {_iso(t)}-{_iso(end)}{carries}"),)
    )
