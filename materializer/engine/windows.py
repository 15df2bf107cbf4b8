"""Working windows (the day-window rule): templates, overrides and holidays of local
dates, converted to instants and merged per location."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from uuid import UUID

from slotmill.materializer.engine.recurrence import applies_on
from slotmill.materializer.engine.zones import day_segments, to_instants, zone_segments
from slotmill.materializer.model import MINUTES_PER_DAY, StaffSchedule, Window

# A local window on one day: (location, start minute, end minute).
_LocalWindow = tuple[UUID | None, int, int]


def _valid_minutes(start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None or end is None:
        return None
    s, e = max(0, start), min(MINUTES_PER_DAY, end)
    return (s, e) if s < e else None


def union(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
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
        days |= applies_on(h.rrule, h.on_date, first, last)
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
        days = applies_on(o.rrule, o.on_date, first, last)
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
        day_cuts = union((s, e) for days, s, e in cuts if ordinal in days)
        per_loc: dict[UUID | None, list[tuple[int, int]]] = {}
        for loc, s, e in base:
            per_loc.setdefault(loc, []).append((s, e))
        day: list[_LocalWindow] = []
        for loc, spans in per_loc.items():
            merged = union(spans)
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
    segments = zone_segments(schedule.zone, first.toordinal(), last.toordinal())
    pieces: dict[UUID | None, list[tuple[int, int]]] = {}
    for ordinal, day in local.items():
        day_segs = day_segments(segments, ordinal)
        for loc, s, e in day:
            pieces.setdefault(loc, []).extend(to_instants(day_segs, ordinal, s, e))
    windows = [Window(s, e, loc) for loc, spans in pieces.items() for s, e in union(spans)]
    windows.sort(key=lambda w: (w.start, w.end, _loc_key(w.location_id)))
    return windows


