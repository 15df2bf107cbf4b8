"""Zones: wall-clock windows on local dates as instants, exactly, across DST.

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

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

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


def day_base(ordinal: int) -> int:
    """Wall-clock seconds of local midnight of a date, counted as if the zone were UTC."""
    return (ordinal - _EPOCH_ORDINAL) * _DAY_S



# ---------------------------------------------------------------------------------------
# Zones: constant-offset segments, cached across calls (a full refresh asks the same zone
# and date range for every staff member).


def _offset_at(tz: ZoneInfo, t: int) -> int:
    off = datetime.fromtimestamp(t, tz).utcoffset()
    assert off is not None  # a ZoneInfo always answers
    return int(off.total_seconds())


@lru_cache(maxsize=1024)
def zone_segments(zone: str, first_ord: int, last_ord: int) -> tuple[_Segment, ...]:
    """Constant-offset segments covering every instant whose wall date can be in range."""
    tz = ZoneInfo(zone)
    lo = day_base(first_ord) - _MAX_OFFSET_S
    hi = day_base(last_ord + 1) + _MAX_OFFSET_S
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


def day_segments(segments: Sequence[_Segment], ordinal: int) -> list[_Segment]:
    """The pieces of ``segments`` whose instants have wall date ``ordinal``."""
    base = day_base(ordinal)
    out: list[_Segment] = []
    for start, end, off in segments:
        # Instants of this segment reading wall time in [base, base + 1 day).
        lo = max(start, base - off)
        hi = min(end, base + _DAY_S - off)
        if lo < hi:
            out.append((lo, hi, off))
    return out


def to_instants(
    day_segments: Sequence[_Segment], ordinal: int, s_min: int, e_min: int
) -> Iterable[tuple[int, int]]:
    """Instant pieces of the local window [s_min, e_min) on one date (see module doc)."""
    base = day_base(ordinal)
    w0 = base + s_min * 60
    w1 = base + e_min * 60
    for start, end, off in day_segments:
        lo = max(start, w0 - off)
        hi = min(end, w1 - off)
        if lo < hi:
            yield lo, hi



def local_date_of(zone: str, instant: int) -> date:
    """The local calendar date of ``instant`` in ``zone``."""
    return datetime.fromtimestamp(instant, ZoneInfo(zone)).date()
