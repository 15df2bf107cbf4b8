"""One staff member's day for one service, as the engine computes it: the intermediate
results of slot generation (merged working windows, the busy set with its travel-widened
ranges, live holds, the grid's candidates) beside the slots themselves and explain's reasons
for every candidate.

Nothing here decides anything: the windows are :func:`merged_windows`, the candidates are
the grid starts generation steps through (:func:`grid_origin`, ``_window_starts`` with
nothing busy), the slots are :func:`slot_runs` (what materialization writes), and the
reasons are :func:`explain`'s. The operator console draws this (api/admin_day.py), so what
it shows is what the engine computed, not a second opinion.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import UUID

from slotmill.materializer.engine.capacity import BusyIndex, Capacity
from slotmill.materializer.engine.explain import explain
from slotmill.materializer.engine.grid import _append_slots, _window_starts, grid_origin, service_params, slot_runs
from slotmill.materializer.engine.windows import merged_windows
from slotmill.materializer.engine.zones import day_segments, to_instants, zone_segments
from slotmill.materializer.model import BusyRange, Explanation, LiveHold, ServiceRule, Slot, StaffSchedule, Window

_NOTHING_BUSY = BusyIndex(())


@dataclass(frozen=True, slots=True)
class Widened:
    """A confirmed booking's range as it blocks candidates at ``location_id``: its blocked
    range plus the travel there before and back after."""

    location_id: UUID | None
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Blocker:
    """A range of the busy set (already the blocked range, for a booking) and, where travel
    applies, how it blocks candidates at the day's other locations."""

    busy: BusyRange
    widened: tuple[Widened, ...] = ()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A grid start of one window: its appointment, its blocked range, the slot
    materialization writes for it (None: not a slot) and explain's reasons."""

    starts_at: int
    ends_at: int
    location_id: UUID | None
    blocked_start: int
    blocked_end: int
    slot: Slot | None
    explanation: Explanation


@dataclass(frozen=True, slots=True)
class DayView:
    start: int  # the local day [start, end) in the staff member's zone
    end: int
    windows: tuple[Window, ...]  # merged windows that overlap the day, whole
    busy: tuple[Blocker, ...]  # busy ranges that can block a candidate of the day
    holds: tuple[LiveHold, ...]  # live holds that can hide a candidate of the day
    candidates: tuple[Candidate, ...]  # by window, then start
    slots: tuple[Slot, ...]  # the slots with a start in the day, from the horizon's start on


def wall_spans(zone: str, on: date, start_min: int, end_min: int) -> list[tuple[int, int]]:
    """The instants of the wall-clock window ``[start_min, end_min)`` on local date ``on``, by
    the conversion the windows use (more than one piece inside a repeated hour)."""
    ordinal = on.toordinal()
    return list(to_instants(day_segments(zone_segments(zone, ordinal, ordinal), ordinal), ordinal, start_min, end_min))


def day_view(
    schedule: StaffSchedule,
    service: ServiceRule,
    *,
    start: int,
    end: int,
    offered: bool,
    qualified: bool,
    active: bool,
    now: int,
    min_notice_s: int,
    advance_limit: int,
    horizon_start: int,
    horizon_end: int,
    first: date,
    last: date,
) -> DayView:
    """The day ``[start, end)`` of ``schedule`` for ``service``.

    ``first``..``last`` are the local dates materialization builds windows over (the
    horizon's ``window_dates``, through the day when it lies beyond the horizon), so windows
    and grids are anchored where a refresh anchors them. ``offered`` says whether the staff
    member has slots of the service at all (both active and linked: ``StaffRules.offered``);
    ``qualified`` and ``active`` are explain's, and so is ``horizon_end`` (where explain says
    ``beyond_horizon``). Slots are those with a start in the day from ``horizon_start`` on
    (nothing before the start of today is ever materialized): in the table's days exactly the
    rows a refresh writes, past them what a read computes on demand.
    """
    duration_s, step_s, before_s, after_s = service_params(service)
    windows = merged_windows(schedule, first, last)
    day_windows = tuple(w for w in windows if w.start < end and w.end > start)

    slots: list[Slot] = []
    lo = max(start, horizon_start)
    if offered and lo < end:
        for run in slot_runs(schedule, [service], first, last, lo, end):
            _append_slots(slots, schedule.staff_id, run)
    slots.sort(key=lambda s: s.starts_at)
    by_start = {s.starts_at: s for s in slots}

    candidates: list[Candidate] = []
    explained: dict[int, Explanation] = {}
    for w in day_windows:
        origin = grid_origin(w.start, w.end, step_s)
        for t in _window_starts(origin, w.end, start, end, duration_s, step_s, before_s, after_s, _NOTHING_BUSY):
            why = explained.get(t)
            if why is None:
                why = explained[t] = explain(
                    schedule,
                    service,
                    qualified=qualified,
                    active=active,
                    starts_at=t,
                    now=now,
                    min_notice_s=min_notice_s,
                    advance_limit=advance_limit,
                    horizon_end=horizon_end,
                    first=first,
                    last=last,
                    windows=windows,
                )
            slot = by_start.get(t)
            if slot is not None and slot.location_id != w.location_id:
                slot = None  # overlapping windows: the start is another window's slot
            candidates.append(
                Candidate(t, t + duration_s, w.location_id, t - before_s, t + duration_s + after_s, slot, why)
            )

    # What can block a candidate of the day: its blocked ranges reach this far.
    reach_lo, reach_hi = start - before_s, end + duration_s + after_s
    capacity = Capacity(schedule, day_windows)
    places = sorted({w.location_id for w in day_windows if w.location_id is not None}, key=str)
    busy: list[Blocker] = []
    for b in sorted(capacity.busy, key=lambda r: (r.start, r.end)):
        widened = []
        for place in places:
            w0, w1 = capacity.widened(b, place)
            if (w0, w1) != (b.start, b.end):
                widened.append(Widened(place, w0, w1))
        if any(x.start < reach_hi and x.end > reach_lo for x in widened) or (b.start < reach_hi and b.end > reach_lo):
            busy.append(Blocker(b, tuple(widened)))
    holds = tuple(
        h
        for h in sorted(schedule.holds, key=lambda r: (r.start, r.end))
        if h.start < h.end and h.start < reach_hi and h.end > reach_lo
    )
    return DayView(start, end, day_windows, tuple(busy), holds, tuple(candidates), tuple(slots))
