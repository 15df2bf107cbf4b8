"""The slot engine: SPEC §5 as pure functions. No I/O, no database imports.

Materialization, on-demand computation, the confirm-time re-check and `explain` all call
these functions; nothing else may decide what a slot is.

How wall-clock windows become instants (SPEC §5.1, DST)
--------------------------------------------------------
SPEC §5.1 defines a local window ``[s, e)`` on date *d* as *the set of instants whose
wall-clock time on d lies in [s, e)*. The engine implements exactly that set, as the preimage
of the wall-time interval under ``instant -> instant + utcoffset(instant)``: the zone's
offset is piecewise constant, so on each constant-offset piece ``[T_i, T_i+1)`` with offset
``o_i`` the preimage of wall seconds ``[W0, W1)`` is ``[W0 - o_i, W1 - o_i) ∩ [T_i, T_i+1)``.
Consequences, which are the edge-case choices for times that do not exist or exist twice:

- A start time inside a spring-forward gap resolves to the instant the gap ends (the first
  instant whose wall time is >= s); an end time inside the gap resolves to the same instant
  (nothing in the gap can lie before it). London 2025-03-30 00:00-03:00 is 00:00Z-02:00Z,
  two hours.
- An ambiguous (fall-back) start time resolves to its first occurrence (fold=0), and an
  ambiguous end time to its second occurrence (fold=1), so every instant whose wall time is
  in ``[s, e)`` is included: London 2024-10-27 00:00-02:00 is 23:00Z(26th)-02:00Z, three
  hours; New York 2026-11-01 13:00-18:00 is 18:00Z-23:00Z.
- If ``s`` or ``e`` lies *strictly inside* the repeated hour the set is not one interval:
  London 2024-10-27 01:30-03:00 is 00:30Z-01:00Z (01:30-02:00 BST) plus 01:30Z-03:00Z
  (01:30-03:00 GMT); 01:00Z-01:30Z reads 01:00-01:30 GMT, which is not in the window, so it
  is not working time. Both pieces are returned (and merge with neighbours as usual).

Because preimages commute with set operations, overrides that subtract wall-time ranges are
applied in local minutes first and the result is converted once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time
from functools import lru_cache
from operator import attrgetter
from typing import NamedTuple
from uuid import UUID
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr

from slotmill.materializer.model import (
    MINUTES_PER_DAY,
    BusyKind,
    BusyRange,
    Explanation,
    LiveHold,
    Reason,
    ReasonCode,
    ServiceRule,
    Slot,
    StaffSchedule,
    Window,
)

__all__ = [
    "compute_slots",
    "explain",
    "generate_slots",
    "local_date_of",
    "merged_windows",
]

_DAY_S = 86400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# UTC offsets stay within about -12h..+14h; 26 h bounds any zone with room to spare.
_MAX_OFFSET_S = 26 * 3600
# Offsets are sampled every 3 h and transitions located by bisection between samples.
# A zone that changed offset and changed it back within 3 hours would be missed; no zone
# in the tz database does that in the years this service schedules.
_SAMPLE_S = 3 * 3600

# A segment of constant UTC offset: [start, end) in instants, offset in seconds.
_Segment = tuple[int, int, int]
# A local window on one day: (location, start minute, end minute).
_LocalWindow = tuple[UUID | None, int, int]


def _day_base(ordinal: int) -> int:
    """Wall-clock seconds of local midnight of a date, counted as if the zone were UTC."""
    return (ordinal - _EPOCH_ORDINAL) * _DAY_S


def _iso(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# Zones: constant-offset segments, cached across calls (a full refresh asks the same zone
# and date range for every staff member).


def _offset_at(tz: ZoneInfo, t: int) -> int:
    off = datetime.fromtimestamp(t, tz).utcoffset()
    assert off is not None  # a ZoneInfo always answers
    return int(off.total_seconds())


@lru_cache(maxsize=1024)
def _zone_segments(zone: str, first_ord: int, last_ord: int) -> tuple[_Segment, ...]:
    """Constant-offset segments covering every instant whose wall date can be in range."""
    tz = ZoneInfo(zone)
    lo = _day_base(first_ord) - _MAX_OFFSET_S
    hi = _day_base(last_ord + 1) + _MAX_OFFSET_S
    starts = [lo]
    offsets = [_offset_at(tz, lo)]
    t, o = lo, offsets[0]
    while t < hi:
        nt = min(t + _SAMPLE_S, hi)
        no = _offset_at(tz, nt)
        # Locate every change between the samples: bisect for the first instant whose
        # offset differs from the left one, then continue from there (handles o1->o2->o3).
        a, oa = t, o
        while oa != no:
            left, right = a, nt
            while right - left > 1:
                mid = (left + right) // 2
                if _offset_at(tz, mid) == oa:
                    left = mid
                else:
                    right = mid
            a, oa = right, _offset_at(tz, right)
            starts.append(a)
            offsets.append(oa)
        t, o = nt, no
    ends = [*starts[1:], hi + _DAY_S]
    return tuple(zip(starts, ends, offsets, strict=True))


def _day_segments(segments: Sequence[_Segment], ordinal: int) -> list[_Segment]:
    """The pieces of ``segments`` whose instants have wall date ``ordinal``."""
    base = _day_base(ordinal)
    out: list[_Segment] = []
    for start, end, off in segments:
        # Instants of this segment reading wall time in [base, base + 1 day).
        lo = max(start, base - off)
        hi = min(end, base + _DAY_S - off)
        if lo < hi:
            out.append((lo, hi, off))
    return out


def _to_instants(
    day_segments: Sequence[_Segment], ordinal: int, s_min: int, e_min: int
) -> Iterable[tuple[int, int]]:
    """Instant pieces of the local window [s_min, e_min) on one date (see module doc)."""
    base = _day_base(ordinal)
    w0 = base + s_min * 60
    w1 = base + e_min * 60
    for start, end, off in day_segments:
        lo = max(start, w0 - off)
        hi = min(end, w1 - off)
        if lo < hi:
            yield lo, hi


# ---------------------------------------------------------------------------------------
# Rules: which local dates a dated (optionally recurring) row applies on.


def _parse_rrule_dates(rule: str, on_date: date, first: date, last: date) -> set[date]:
    start = datetime.combine(first, time.min)
    end = datetime.combine(last, time.max)
    dtstart = datetime.combine(on_date, time.min)
    try:
        parsed = rrulestr(rule, dtstart=dtstart)
        occurrences = parsed.between(start, end, inc=True)
    except ValueError:
        # An ``UNTIL=...Z`` is refused with a floating DTSTART; read the dates in UTC, which
        # is what a local-date rule with a UTC UNTIL means to the host application.
        try:
            parsed = rrulestr(rule, dtstart=dtstart.replace(tzinfo=UTC))
            occurrences = parsed.between(
                start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), inc=True
            )
        except (ValueError, TypeError):
            # A malformed rule written by the host must not stop materialization of the
            # whole tenant: the row then applies on its on_date only.
            return set()
    return {o.date() for o in occurrences}


@lru_cache(maxsize=8192)
def _applies_on(rule: str | None, on_date: date, first: date, last: date) -> frozenset[int]:
    """Ordinals of the dates in ``first..last`` a row with ``on_date``/``rrule`` applies on.

    ``on_date`` itself always counts: it is the DTSTART, which RFC 5545 makes the first
    instance even when the rule's BY* parts would not produce it.
    """
    days: set[date] = set()
    if first <= on_date <= last:
        days.add(on_date)
    if rule and on_date <= last:
        days |= _parse_rrule_dates(rule, on_date, first, last)
    return frozenset(d.toordinal() for d in days)


def _valid_minutes(start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None or end is None:
        return None
    s, e = max(0, start), min(MINUTES_PER_DAY, end)
    return (s, e) if s < e else None


def _union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of half-open intervals; touching ones are joined."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _subtract(
    intervals: list[tuple[int, int]], cuts: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """``intervals`` minus ``cuts``; both sorted and disjoint."""
    out: list[tuple[int, int]] = []
    for s, e in intervals:
        cur = s
        for cs, ce in cuts:
            if ce <= cur or cs >= e:
                continue
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if cur >= e:
                break
        if cur < e:
            out.append((cur, e))
    return out


def _holiday_ordinals(schedule: StaffSchedule, first: date, last: date) -> set[int]:
    days: set[int] = set()
    for h in schedule.holidays:
        days |= _applies_on(h.rrule, h.on_date, first, last)
    return days


def _local_windows(
    schedule: StaffSchedule, first: date, last: date
) -> dict[int, list[_LocalWindow]]:
    """SPEC §5.1 in local minutes: date ordinal -> unioned windows per location."""
    first_ord, last_ord = first.toordinal(), last.toordinal()
    default_loc = schedule.location_id
    holidays = _holiday_ordinals(schedule, first, last)

    available: list[tuple[frozenset[int], UUID | None, int, int]] = []
    closed: set[int] = set()
    cuts: list[tuple[frozenset[int], int, int]] = []
    for o in schedule.overrides:
        days = _applies_on(o.rrule, o.on_date, first, last)
        if not days:
            continue
        times = _valid_minutes(o.start_min, o.end_min)
        if o.is_available:
            # SPEC: the base is the available rows "with times"; an available row without
            # (valid) times adds nothing and does not displace the templates.
            if times is not None:
                loc = o.location_id if o.location_id is not None else default_loc
                available.append((days, loc, times[0], times[1]))
        elif o.start_min is None or o.end_min is None:
            closed |= days
        elif times is not None:
            cuts.append((days, times[0], times[1]))

    by_weekday: dict[int, list[tuple[int, int, UUID | None, int, int]]] = {}
    for tr in schedule.templates:
        times = _valid_minutes(tr.start_min, tr.end_min)
        if times is None:
            continue
        vf = tr.valid_from.toordinal() if tr.valid_from is not None else first_ord
        vu = tr.valid_until.toordinal() if tr.valid_until is not None else last_ord
        loc = tr.location_id if tr.location_id is not None else default_loc
        by_weekday.setdefault(tr.weekday, []).append((vf, vu, loc, times[0], times[1]))

    out: dict[int, list[_LocalWindow]] = {}
    for ordinal in range(first_ord, last_ord + 1):
        if ordinal in holidays or ordinal in closed:
            continue
        base: list[_LocalWindow] = [(loc, s, e) for days, loc, s, e in available if ordinal in days]
        if not base:
            weekday = (ordinal - 1) % 7 + 1  # ordinal 1 (0001-01-01) is a Monday
            base = [
                (loc, s, e)
                for vf, vu, loc, s, e in by_weekday.get(weekday, ())
                if vf <= ordinal <= vu
            ]
        if not base:
            continue
        day_cuts = _union((s, e) for days, s, e in cuts if ordinal in days)
        per_loc: dict[UUID | None, list[tuple[int, int]]] = {}
        for loc, s, e in base:
            per_loc.setdefault(loc, []).append((s, e))
        day: list[_LocalWindow] = []
        for loc, spans in per_loc.items():
            merged = _union(spans)
            if day_cuts:
                merged = _subtract(merged, day_cuts)
            day.extend((loc, s, e) for s, e in merged)
        if day:
            out[ordinal] = day
    return out


def _loc_key(loc: UUID | None) -> str:
    return "" if loc is None else str(loc)


def merged_windows(schedule: StaffSchedule, first: date, last: date) -> list[Window]:
    """Working windows of local dates ``first..last`` (inclusive) as merged instant ranges.

    Applies holidays, available overrides (replace the templates), unavailable overrides
    (close or subtract), converts wall-clock windows to instants in ``schedule.zone`` and
    merges windows of the same location that overlap or touch, across midnight too.
    Sorted by start (then end, then location id, None first).

    Only the given dates are looked at, so a window that continues across the boundary of
    the range is cut there, and its grid is anchored at the cut. Callers that materialize
    part of a horizon should pass a wider date range (a day either side) and select starts
    with ``lo``/``hi``.
    """
    if last < first:
        return []
    local = _local_windows(schedule, first, last)
    if not local:
        return []
    segments = _zone_segments(schedule.zone, first.toordinal(), last.toordinal())
    pieces: dict[UUID | None, list[tuple[int, int]]] = {}
    for ordinal, day in local.items():
        day_segs = _day_segments(segments, ordinal)
        for loc, s, e in day:
            pieces.setdefault(loc, []).extend(_to_instants(day_segs, ordinal, s, e))
    windows = [Window(s, e, loc) for loc, spans in pieces.items() for s, e in _union(spans)]
    windows.sort(key=lambda w: (w.start, w.end, _loc_key(w.location_id)))
    return windows


# ---------------------------------------------------------------------------------------
# Candidates and slots.

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


_starts_at = attrgetter("starts_at")


class _BusyIndex:
    """Busy ranges as a sorted union: a blocked range is free iff it misses the union."""

    __slots__ = ("ends", "starts")

    def __init__(self, busy: Iterable[BusyRange]) -> None:
        merged = _union((b.start, b.end) for b in busy if b.start < b.end)
        self.starts = [s for s, _ in merged]
        self.ends = [e for _, e in merged]


class _HoldIndex:
    """Live holds sorted by start, for the held_until lookup."""

    __slots__ = ("holds",)

    def __init__(self, holds: Iterable[LiveHold]) -> None:
        self.holds = sorted((h for h in holds if h.start < h.end), key=lambda h: h.start)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


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
    """Free grid starts ``a + k*step`` in ``[lo, hi)`` with ``t + duration <= b``."""
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


def _service_params(service: ServiceRule) -> tuple[int, int, int, int]:
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
    duration_s, step_s, before_s, after_s = _service_params(service)
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
        starts = _window_starts(w.start, w.end, lo, hi, duration_s, step_s, before_s, after_s, busy)
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
    return runs


# ---------------------------------------------------------------------------------------
# Explain.


def local_date_of(zone: str, instant: int) -> date:
    """The local calendar date of ``instant`` in ``zone``."""
    return datetime.fromtimestamp(instant, ZoneInfo(zone)).date()


_BUSY_CODES = {
    BusyKind.TIME_OFF: (ReasonCode.TIME_OFF, "time off"),
    BusyKind.BUSY: (ReasonCode.BUSY, "busy time"),
    BusyKind.BOOKED: (ReasonCode.BOOKED, "confirmed booking"),
}


def _ref(ref: str) -> str:
    return f" {ref}" if ref else ""


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
    booked) are reported iff ``generate_slots`` over ``merged_windows(schedule, first,
    last)`` would not produce this start; ``held`` iff it would but with ``held_until``.
    A holiday implies the start lies outside working hours, so only ``holiday`` is said.
    ``in_past`` implies ``min_notice``, so only ``in_past`` is said. When nothing applies
    the single reason is ``available``, naming the slot's location and end.
    """
    duration_s, step_s, before_s, after_s = _service_params(service)
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

    day = local_date_of(schedule.zone, t)
    offered_at: Window | None = None
    holidays = [
        h for h in schedule.holidays if day.toordinal() in _applies_on(h.rrule, h.on_date, day, day)
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
        on_grid = [w for w in fitting if (t - w.start) % step_s == 0]
        if not fitting:
            reasons.append(
                Reason(
                    ReasonCode.OUTSIDE_WORKING_HOURS,
                    f"no working window holds {_iso(t)}-{_iso(end)}",
                )
            )
        elif not on_grid:
            w = fitting[0]
            before = w.start + (t - w.start) // step_s * step_s
            reasons.append(
                Reason(
                    ReasonCode.OFF_GRID,
                    f"the window starting {_iso(w.start)} offers starts every "
                    f"{step_s // 60} min; nearest are {_iso(before)} and {_iso(before + step_s)}",
                )
            )
        else:
            offered_at = on_grid[0]

    for b in sorted(schedule.busy, key=lambda r: (r.start, r.end)):
        if b.start < b.end and b.start < block_hi and b.end > block_lo:
            code, label = _BUSY_CODES[b.kind]
            reasons.append(
                Reason(
                    code,
                    f"{label}{_ref(b.ref)} {_iso(b.start)}-{_iso(b.end)} overlaps the blocked "
                    f"range {_iso(block_lo)}-{_iso(block_hi)}",
                )
            )
    for h in sorted(schedule.holds, key=lambda r: (r.start, r.end)):
        if h.start < h.end and h.start < block_hi and h.end > block_lo:
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
    return Explanation(
        True, (Reason(ReasonCode.AVAILABLE, f"offered{loc}, {_iso(t)}-{_iso(end)}"),)
    )
