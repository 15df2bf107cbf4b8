"""The slot grid: candidates stepped from each merged window's start, kept when their
blocked range is free, marked ``held_until`` under live holds."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import date
from typing import NamedTuple
from uuid import UUID

from slotmill.materializer.engine.budget import MAX_SLOTS_PER_STAFF, BudgetExceeded
from slotmill.materializer.engine.windows import merged_windows, union
from slotmill.materializer.model import BusyRange, LiveHold, ServiceRule, Slot, StaffSchedule, Window

# Slot is a frozen slotted dataclass; its generated __init__ goes through
# object.__setattr__ per field, which makes building 5,000 slots take ~9 ms. Writing the
# slot descriptors directly builds the identical object about three times faster. Used only
# while Slot has exactly these fields (checked here, and by a test), else the constructor.
_SLOT_FIELDS = ("staff_id", "service_id", "location_id", "starts_at", "ends_at", "held_until")
_FAST_SLOT = getattr(Slot, "__slots__", None) == _SLOT_FIELDS and not hasattr(Slot, "__post_init__")
_new = object.__new__
# The member descriptors of Slot's __slots__, read from the class dict (typed Any).
_set_staff = Slot.__dict__["staff_id"].__set__
_set_service = Slot.__dict__["service_id"].__set__
_set_location = Slot.__dict__["location_id"].__set__
_set_starts = Slot.__dict__["starts_at"].__set__
_set_ends = Slot.__dict__["ends_at"].__set__
_set_held = Slot.__dict__["held_until"].__set__


def _append_slots(
    out: list[Slot],
    staff_id: UUID,
    service_id: UUID,
    location_id: UUID | None,
    starts: list[int],
    held: dict[int, int],
    duration_s: int,
) -> None:
    """Append the slots of one window; ``held`` maps an index in ``starts`` to held_until."""
    if not _FAST_SLOT:
        out.extend(
            Slot(staff_id, service_id, location_id, t, t + duration_s, held.get(i))
            for i, t in enumerate(starts)
        )
        return
    append = out.append
    for i, t in enumerate(starts):
        slot = _new(Slot)
        _set_staff(slot, staff_id)
        _set_service(slot, service_id)
        _set_location(slot, location_id)
        _set_starts(slot, t)
        _set_ends(slot, t + duration_s)
        _set_held(slot, held.get(i) if held else None)
        append(slot)


class _BusyIndex:
    """Busy ranges as a sorted union: a blocked range is free iff it misses the union."""

    __slots__ = ("ends", "starts")

    def __init__(self, busy: Iterable[BusyRange]) -> None:
        merged = union((b.start, b.end) for b in busy if b.start < b.end)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]


class _HoldIndex:
    """Live holds sorted by start, for the held_until lookup."""

    __slots__ = ("holds",)

    def __init__(self, holds: Iterable[LiveHold]) -> None:
        self.holds = sorted((h for h in holds if h.start < h.end), key=lambda h: h.start)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# A merged window at least this long (a 24/7 schedule) has its grid anchored at the Unix
# epoch, not at its start: its start is wherever the computed date range cuts it, which
# moves every day as the horizon rolls, and the grid (and the slot ids) must not.
EPOCH_ANCHOR_MIN_S = 7 * 86_400


def grid_origin(start: int, end: int, step_s: int) -> int:
    """The first grid start of the window ``[start, end)``: its start, or for a window of
    7 days or more the first instant at or after it a whole number of steps after the
    epoch."""
    if end - start >= EPOCH_ANCHOR_MIN_S:
        return start + (-start) % step_s
    return start


def _window_starts(
    a: int,
    b: int,
    lo: int,
    hi: int,
    duration_s: int,
    step_s: int,
    before_s: int,
    after_s: int,
    busy: _BusyIndex,
) -> list[int]:
    """Free grid starts ``a + k*step`` in ``[lo, hi)`` with ``t + duration <= b``; ``a`` is
    the grid's origin (:func:`grid_origin`)."""
    last = min(b - duration_s, hi - 1)
    t = a if lo <= a else a + _ceil_div(lo - a, step_s) * step_s
    if t > last:
        return []
    span = duration_s + after_s  # blocked range of t is [t - before_s, t + span)
    bstarts, bends = busy.starts, busy.ends
    nb = len(bstarts)
    j = bisect_right(bends, t - before_s)  # first busy range that can still block t
    out: list[int] = []
    while t <= last:
        tb = t - before_s
        while j < nb and bends[j] <= tb:
            j += 1
        if j == nb:
            out.extend(range(t, last + 1, step_s))
            break
        # Starts whose blocked range ends at or before busy range j are free: emit the
        # whole run with one range() instead of testing candidates one by one.
        free_last = min(last, bstarts[j] - span)
        if t <= free_last:
            run = range(t, free_last + 1, step_s)
            out.extend(run)
            t += len(run) * step_s
            continue
        # t's blocked range overlaps busy range j: jump to the first grid start whose
        # blocked range begins at or after its end.
        t = a + _ceil_div(bends[j] + before_s - a, step_s) * step_s
    return out


def _held_until(starts: list[int], holds: _HoldIndex, before_s: int, span_s: int) -> dict[int, int]:
    """Index in ``starts`` -> latest expiry of the holds its blocked range overlaps."""
    out: dict[int, int] = {}
    if not starts:
        return out
    first, last = starts[0], starts[-1]
    for h in holds.holds:
        # [t - before, t + span) overlaps [h.start, h.end)  <=>  h.start - span < t < h.end + before
        if h.start - span_s >= last or h.end + before_s <= first:
            continue
        i = bisect_right(starts, h.start - span_s)
        k = bisect_left(starts, h.end + before_s)
        for idx in range(i, k):
            prev = out.get(idx)
            if prev is None or h.expires_at > prev:
                out[idx] = h.expires_at
    return out


def service_params(service: ServiceRule) -> tuple[int, int, int, int]:
    duration_s = service.duration_min * 60
    step_s = service.step_s
    if duration_s <= 0 or step_s <= 0:
        raise ValueError(
            f"service {service.id}: duration and interval must be positive "
            f"(got {service.duration_min} and {service.interval_min})"
        )
    return duration_s, step_s, service.buffer_before_min * 60, service.buffer_after_min * 60


class SlotRun(NamedTuple):
    """Consecutive slots of one service in one window: what materialization encodes
    without building a Slot per start. ``held`` maps an index in ``starts`` to held_until."""

    service_id: UUID
    location_id: UUID | None
    duration_s: int
    starts: list[int]
    held: dict[int, int]


def _generate_runs(
    service: ServiceRule,
    windows: Sequence[Window],
    lo: int,
    hi: int,
    busy: _BusyIndex,
    holds: _HoldIndex,
) -> list[SlotRun]:
    duration_s, step_s, before_s, after_s = service_params(service)
    span_s = duration_s + after_s
    runs: list[SlotRun] = []
    overlapping = False
    prev_end: int | None = None
    for w in windows:
        if w.end <= lo or w.start >= hi:
            continue
        if prev_end is not None and w.start < prev_end:
            overlapping = True
        prev_end = w.end if prev_end is None else max(prev_end, w.end)
        origin = grid_origin(w.start, w.end, step_s)
        starts = _window_starts(origin, w.end, lo, hi, duration_s, step_s, before_s, after_s, busy)
        if not starts:
            continue
        held = _held_until(starts, holds, before_s, span_s) if holds.holds else {}
        runs.append(SlotRun(service.id, w.location_id, duration_s, starts, held))
    if overlapping:
        runs = _dedupe_starts(runs)
    return runs


def _dedupe_starts(runs: list[SlotRun]) -> list[SlotRun]:
    """Windows of different locations overlap in time (conflicting rules). Order by start
    and keep one slot per start: SPEC §3 derives a slot's id from staff, service and start
    only, so two slots at one start would share an id. The slot of the window listed first
    (earliest start, then end, then location id) wins; sort() is stable, so that is the
    first slot for each start."""
    items = [(t, r.location_id, r.held.get(i)) for r in runs for i, t in enumerate(r.starts)]
    items.sort(key=lambda x: x[0])
    out: list[SlotRun] = []
    last_start: int | None = None
    for t, location_id, held_until in items:
        if t == last_start:
            continue
        last_start = t
        if not out or out[-1].location_id != location_id:
            out.append(SlotRun(runs[0].service_id, location_id, runs[0].duration_s, [], {}))
        run = out[-1]
        if held_until is not None:
            run.held[len(run.starts)] = held_until
        run.starts.append(t)
    return out


def _generate(
    staff_id: UUID,
    service: ServiceRule,
    windows: Sequence[Window],
    lo: int,
    hi: int,
    busy: _BusyIndex,
    holds: _HoldIndex,
) -> list[Slot]:
    out: list[Slot] = []
    for run in _generate_runs(service, windows, lo, hi, busy, holds):
        _append_slots(out, staff_id, service.id, run.location_id, run.starts, run.held, run.duration_s)
    return out


def generate_slots(
    schedule: StaffSchedule,
    service: ServiceRule,
    windows: Sequence[Window],
    lo: int,
    hi: int,
) -> list[Slot]:
    """Slots of one service whose start lies in ``[lo, hi)``, sorted by start.

    Candidates step from each window's start by the service interval (elapsed time); a
    candidate is a slot iff its blocked range overlaps nothing in ``schedule.busy``. Live
    holds overlapping the blocked range set ``held_until`` to the latest ``expires_at``.
    ``windows`` must be sorted by start, as :func:`merged_windows` returns them. Where
    windows of different locations overlap, one slot per start is kept (the first
    window's).
    """
    return _generate(
        schedule.staff_id,
        service,
        windows,
        lo,
        hi,
        _BusyIndex(schedule.busy),
        _HoldIndex(schedule.holds),
    )


def compute_slots(
    schedule: StaffSchedule,
    services: Sequence[ServiceRule],
    first: date,
    last: date,
    lo: int,
    hi: int,
) -> list[Slot]:
    """All slots of ``services`` for one staff member: windows of ``first..last``, starts in
    ``[lo, hi)``. Sorted by (service order given, start)."""
    out: list[Slot] = []
    for run in slot_runs(schedule, services, first, last, lo, hi):
        _append_slots(out, schedule.staff_id, run.service_id, run.location_id, run.starts, run.held, run.duration_s)
    return out


def slot_runs(
    schedule: StaffSchedule,
    services: Sequence[ServiceRule],
    first: date,
    last: date,
    lo: int,
    hi: int,
) -> list[SlotRun]:
    """The same slots as :func:`compute_slots`, as runs of starts (no object per slot).
    Materialization encodes these straight into COPY rows."""
    windows = merged_windows(schedule, first, last)
    if not windows:
        return []
    busy = _BusyIndex(schedule.busy)
    holds = _HoldIndex(schedule.holds)
    runs: list[SlotRun] = []
    for service in services:
        runs.extend(_generate_runs(service, windows, lo, hi, busy, holds))
        total = sum(len(r.starts) for r in runs)
        if total > MAX_SLOTS_PER_STAFF:
            raise BudgetExceeded(
                f"staff member {schedule.staff_id}: more than {MAX_SLOTS_PER_STAFF} slots in one recompute"
            )
    return runs


