"""The slot grid: candidates stepped from each merged window's start, kept when their
blocked range is free and the capacity rules allow them (engine/capacity.py), marked
``held_until`` under live holds."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from typing import NamedTuple
from uuid import UUID

from slotmill.materializer.engine.budget import MAX_SLOTS_PER_STAFF, BudgetExceeded
from slotmill.materializer.engine.capacity import BusyIndex, Capacity
from slotmill.materializer.engine.windows import merged_windows
from slotmill.materializer.model import LiveHold, ServiceRule, Slot, StaffSchedule, Window

# Slot is a frozen slotted dataclass; its generated __init__ goes through
# object.__setattr__ per field, which makes building 5,000 slots take ~9 ms. Writing the
# slot descriptors directly builds the identical object about three times faster. Used only
# while Slot has exactly these fields (checked here, and by a test), else the constructor.
_SLOT_FIELDS = (
    "staff_id",
    "service_id",
    "location_id",
    "starts_at",
    "ends_at",
    "held_until",
    "seats_left",
    "resource_free",
)
_FAST_SLOT = getattr(Slot, "__slots__", None) == _SLOT_FIELDS and not hasattr(Slot, "__post_init__")
_new = object.__new__
# The member descriptors of Slot's __slots__, read from the class dict (typed Any).
_set_staff = Slot.__dict__["staff_id"].__set__
_set_service = Slot.__dict__["service_id"].__set__
_set_location = Slot.__dict__["location_id"].__set__
_set_starts = Slot.__dict__["starts_at"].__set__
_set_ends = Slot.__dict__["ends_at"].__set__
_set_held = Slot.__dict__["held_until"].__set__
_set_seats = Slot.__dict__["seats_left"].__set__
_set_free = Slot.__dict__["resource_free"].__set__


class SlotRun(NamedTuple):
    """Consecutive slots of one service in one window: what materialization encodes
    without building a Slot per start. ``held`` maps an index in ``starts`` to held_until.
    ``seats_left`` and ``resource_free`` are one value for every start of the run (the
    common case) or a list with one per start."""

    service_id: UUID
    location_id: UUID | None
    duration_s: int
    starts: list[int]
    held: dict[int, int]
    seats_left: int | list[int] = 1
    resource_free: int | list[int] | None = None


def seats_at(run: SlotRun, i: int) -> int:
    s = run.seats_left
    return s if isinstance(s, int) else s[i]


def free_at(run: SlotRun, i: int) -> int | None:
    f = run.resource_free
    return f if f is None or isinstance(f, int) else f[i]


def _append_slots(out: list[Slot], staff_id: UUID, run: SlotRun) -> None:
    """Append the slots of one run."""
    service_id, location_id, duration_s = run.service_id, run.location_id, run.duration_s
    starts, held = run.starts, run.held
    if not _FAST_SLOT:
        out.extend(
            Slot(staff_id, service_id, location_id, t, t + duration_s, held.get(i), seats_at(run, i), free_at(run, i))
            for i, t in enumerate(starts)
        )
        return
    seats, free = run.seats_left, run.resource_free
    if not (isinstance(seats, int) and (free is None or isinstance(free, int))):
        out.extend(
            Slot(staff_id, service_id, location_id, t, t + duration_s, held.get(i), seats_at(run, i), free_at(run, i))
            for i, t in enumerate(starts)
        )
        return
    # Locals, not globals, in the loop: LOAD_FAST is what pays for the two extra fields.
    new, set_staff, set_service, set_location = _new, _set_staff, _set_service, _set_location
    set_starts, set_ends, set_held, set_seats, set_free = _set_starts, _set_ends, _set_held, _set_seats, _set_free
    cls = Slot
    append = out.append
    if held:
        for i, t in enumerate(starts):
            slot = new(cls)
            set_staff(slot, staff_id)
            set_service(slot, service_id)
            set_location(slot, location_id)
            set_starts(slot, t)
            set_ends(slot, t + duration_s)
            set_held(slot, held.get(i))
            set_seats(slot, seats)
            set_free(slot, free)
            append(slot)
        return
    for t in starts:
        slot = new(cls)
        set_staff(slot, staff_id)
        set_service(slot, service_id)
        set_location(slot, location_id)
        set_starts(slot, t)
        set_ends(slot, t + duration_s)
        set_held(slot, None)
        set_seats(slot, seats)
        set_free(slot, free)
        append(slot)


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
    busy: BusyIndex,
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


def _held_until(
    starts: list[int],
    holds: _HoldIndex,
    before_s: int,
    span_s: int,
    own: Callable[[LiveHold, int], bool] | None = None,
) -> dict[int, int]:
    """Index in ``starts`` -> latest expiry of the holds its blocked range overlaps, leaving
    out those ``own`` says are of the start's own group session."""
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
            if own is not None and own(h, starts[idx]):
                continue
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


def _generate_runs(
    service: ServiceRule,
    windows: Sequence[Window],
    lo: int,
    hi: int,
    capacity: Capacity,
    holds: _HoldIndex,
) -> list[SlotRun]:
    duration_s, step_s, before_s, after_s = service_params(service)
    span_s = duration_s + after_s
    plain = capacity.plain(service)
    group = service.seats > 1
    group_id = service.id if group else None
    # Without travel the busy index is the same at every location: fetched once.
    fixed = None if capacity.travel else capacity.busy_index(None, group_id)
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
        busy = fixed if fixed is not None else capacity.busy_index(w.location_id, group_id)
        starts = _window_starts(origin, w.end, lo, hi, duration_s, step_s, before_s, after_s, busy)
        if not starts:
            continue
        seats: int | list[int] = 1
        free: int | list[int] | None = None
        if not plain:
            starts, seats, free = capacity.filter_starts(service, w.location_id, starts, before_s, span_s)
            if not starts:
                continue
        own = capacity.own_hold(service, w.location_id) if group else None
        held = _held_until(starts, holds, before_s, span_s, own) if holds.holds else {}
        runs.append(SlotRun(service.id, w.location_id, duration_s, starts, held, seats, free))
    if overlapping:
        runs = _dedupe_starts(runs)
    return runs


def _dedupe_starts(runs: list[SlotRun]) -> list[SlotRun]:
    """Windows of different locations overlap in time (conflicting rules). Order by start
    and keep one slot per start: SPEC §3 derives a slot's id from staff, service and start
    only, so two slots at one start would share an id. The slot of the window listed first
    (earliest start, then end, then location id) wins; sort() is stable, so that is the
    first slot for each start."""
    if not runs:
        return runs
    items = [(t, r, i) for r in runs for i, t in enumerate(r.starts)]
    items.sort(key=lambda x: x[0])
    grouped: list[tuple[UUID | None, list[int], dict[int, int], list[int], list[int | None]]] = []
    last_start: int | None = None
    for t, r, i in items:
        if t == last_start:
            continue
        last_start = t
        if not grouped or grouped[-1][0] != r.location_id:
            grouped.append((r.location_id, [], {}, [], []))
        _, starts, held, seats, free = grouped[-1]
        held_until = r.held.get(i)
        if held_until is not None:
            held[len(starts)] = held_until
        starts.append(t)
        seats.append(seats_at(r, i))
        free.append(free_at(r, i))
    first = runs[0]
    out: list[SlotRun] = []
    for location_id, starts, held, seats, free in grouped:
        out.append(
            SlotRun(
                first.service_id,
                location_id,
                first.duration_s,
                starts,
                held,
                seats[0] if seats.count(seats[0]) == len(seats) else seats,
                free[0] if free.count(free[0]) == len(free) else [f or 0 for f in free],
            )
        )
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
    candidate is a slot iff its blocked range overlaps nothing in ``schedule.busy`` and the
    capacity rules allow it (group sessions, resources, limits, travel: engine/capacity.py).
    Live holds overlapping the blocked range set ``held_until`` to the latest
    ``expires_at`` (a hold of the candidate's own group session does not). ``windows`` must
    be sorted by start, as :func:`merged_windows` returns them. Where windows of different
    locations overlap, one slot per start is kept (the first window's that offers it).
    """
    out: list[Slot] = []
    capacity = Capacity(schedule, windows)
    for run in _generate_runs(service, windows, lo, hi, capacity, _HoldIndex(schedule.holds)):
        _append_slots(out, schedule.staff_id, run)
    return out


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
        _append_slots(out, schedule.staff_id, run)
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
    capacity = Capacity(schedule, windows)
    holds = _HoldIndex(schedule.holds)
    runs: list[SlotRun] = []
    for service in services:
        runs.extend(_generate_runs(service, windows, lo, hi, capacity, holds))
        total = sum(len(r.starts) for r in runs)
        if total > MAX_SLOTS_PER_STAFF:
            raise BudgetExceeded(
                f"staff member {schedule.staff_id}: more than {MAX_SLOTS_PER_STAFF} slots in one recompute"
            )
    return runs
