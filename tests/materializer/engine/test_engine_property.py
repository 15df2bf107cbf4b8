"""The engine against a deliberately simple, minute-by-minute reference (SPEC §5).

The reference shares no code with the engine: it decides for every local wall-clock minute
of every date whether it is working time, finds the instants of each minute by asking
zoneinfo the wall time of every instant of the day at one-minute steps, takes maximal runs
of working instants per location as windows, and walks the grid testing each candidate
against every busy range and hold. Recurrence rules are read by hand for the few forms the
generator draws.

The capacity rules (SPEC §5.6-5.9) are checked the same way, candidate by candidate against
every booking: its own group session (same service, same start, a location that matches)
takes seats instead of blocking, a booking at another location blocks over its range
widened by the travel there and back, a limit counts the sessions booked on the
candidate's local date (or ISO week) as zoneinfo reads each booking's start, and each
resource of a needed kind is free unless a booking of another session holds it then.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slotmill.materializer.engine import explain, generate_slots, merged_windows
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    HolidayRule,
    LiveHold,
    OverrideRule,
    ReasonCode,
    Resource,
    ResourceUse,
    ServiceRule,
    StaffSchedule,
    TemplateRule,
    Travel,
    Window,
)

# Each zone with the dates of its DST changes (or any dates for zones without DST):
# London and New York (2024-2026), Lord Howe (half an hour, April and October 2024),
# Sao Paulo (at midnight, 2018 and 2019), UTC and Kolkata for ordinary days.
ZONE_ANCHORS: dict[str, list[date]] = {
    "UTC": [date(2024, 10, 27)],
    "Europe/London": [date(2024, 3, 31), date(2024, 10, 27), date(2025, 3, 30)],
    "America/New_York": [date(2026, 3, 8), date(2026, 11, 1)],
    "Australia/Lord_Howe": [date(2024, 4, 7), date(2024, 10, 6)],
    "Asia/Kolkata": [date(2024, 3, 31)],
    "America/Sao_Paulo": [date(2018, 11, 4), date(2019, 2, 17)],
}
# Wall times at and strictly inside each zone's gaps and repeated hours, drawn often so that
# windows start and end inside them (Sao Paulo changed at midnight: 23:00-24:00 repeated).
TRICKY_MINUTES: dict[str, list[int]] = {
    "UTC": [0, 1440],
    "Europe/London": [0, 60, 75, 90, 105, 120, 150, 180],
    "America/New_York": [0, 60, 75, 90, 105, 120, 150, 180],
    "Australia/Lord_Howe": [0, 90, 105, 120, 135, 150],
    "Asia/Kolkata": [0, 1440],
    "America/Sao_Paulo": [0, 30, 60, 90, 1320, 1380, 1395, 1410, 1425, 1440],
}

RRULES: list[str | None] = [
    None,
    "FREQ=WEEKLY",
    "RRULE:FREQ=WEEKLY;INTERVAL=2",
    "FREQ=DAILY;COUNT=3",
    "FREQ=YEARLY",
]
STAFF = UUID(int=1)
OTHER_STAFF = UUID(int=4)
# Another service of the staff member, for bookings that are never of the candidate's session.
OTHER_SERVICE = ServiceRule(UUID(int=3), 45, buffer_before_min=10, buffer_after_min=5)
LOCATIONS: list[UUID | None] = [None, UUID(int=10), UUID(int=11)]
KINDS = ["room", "chair"]
# What the service needs: nothing, one room, two chairs, a room twice (adds up), one of each.
NEEDS: list[tuple[tuple[str, int], ...]] = [
    (),
    (),
    (("room", 1),),
    (("chair", 2),),
    (("room", 1), ("room", 1)),
    (("room", 1), ("chair", 1)),
]
SCHEDULE_CODES = {
    ReasonCode.HOLIDAY,
    ReasonCode.OUTSIDE_WORKING_HOURS,
    ReasonCode.OFF_GRID,
    ReasonCode.TIME_OFF,
    ReasonCode.BUSY,
    ReasonCode.BOOKED,
    ReasonCode.SESSION_FULL,
    ReasonCode.RESOURCE_BUSY,
    ReasonCode.LIMIT_REACHED,
    ReasonCode.TRAVEL,
}
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def utc_midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


# --- the reference --------------------------------------------------------------------------


def ref_applies(on_date: date, rrule: str | None, d: date) -> bool:
    if d == on_date:
        return True
    if rrule is None or d < on_date:
        return False
    delta = (d - on_date).days
    if rrule == "FREQ=WEEKLY":
        return delta % 7 == 0
    if rrule == "RRULE:FREQ=WEEKLY;INTERVAL=2":
        return delta % 14 == 0
    if rrule == "FREQ=DAILY;COUNT=3":
        return delta < 3
    if rrule == "FREQ=YEARLY":
        return (d.month, d.day) == (on_date.month, on_date.day)
    raise AssertionError(rrule)


def ref_working_minutes(s: StaffSchedule, d: date) -> dict[UUID | None, set[int]]:
    """Location -> the wall-clock minutes of ``d`` that are working time there."""
    if any(ref_applies(h.on_date, h.rrule, d) for h in s.holidays):
        return {}
    rows: list[tuple[UUID | None, int, int]] = [
        (o.location_id, o.start_min, o.end_min)
        for o in s.overrides
        if o.is_available and o.start_min is not None and o.end_min is not None and ref_applies(o.on_date, o.rrule, d)
    ]
    if not rows:
        rows = [
            (t.location_id, t.start_min, t.end_min)
            for t in s.templates
            if t.weekday == d.isoweekday()
            and (t.valid_from is None or t.valid_from <= d)
            and (t.valid_until is None or d <= t.valid_until)
        ]
    off: set[int] = set()
    for o in s.overrides:
        if not o.is_available and ref_applies(o.on_date, o.rrule, d):
            if o.start_min is None or o.end_min is None:
                return {}
            off.update(range(o.start_min, o.end_min))
    out: dict[UUID | None, set[int]] = {}
    for loc, start, end in rows:
        where = loc if loc is not None else s.location_id
        out.setdefault(where, set()).update(m for m in range(start, end) if m not in off)
    return out


def ref_windows(s: StaffSchedule, first: date, last: date) -> list[Window]:
    tz = ZoneInfo(s.zone)
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    working = {d: ref_working_minutes(s, d) for d in days}
    instants: dict[UUID | None, list[int]] = {}
    # Every instant of the dates at one-minute steps, with a margin wider than any offset.
    for t in range(utc_midnight(first) - 15 * 3600, utc_midnight(last) + 39 * 3600, 60):
        wall = datetime.fromtimestamp(t, tz)
        minutes = working.get(wall.date())
        if not minutes:
            continue
        m = wall.hour * 60 + wall.minute
        for loc, ms in minutes.items():
            if m in ms:
                instants.setdefault(loc, []).append(t)
    out: list[Window] = []
    for loc, ts in instants.items():
        run_start = prev = ts[0]
        for t in ts[1:]:
            if t != prev + 60:
                out.append(Window(run_start, prev + 60, loc))
                run_start = t
            prev = t
        out.append(Window(run_start, prev + 60, loc))
    out.sort(key=lambda w: (w.start, w.end, "" if w.location_id is None else str(w.location_id)))
    return out


def ref_matches(a: UUID | None, b: UUID | None) -> bool:
    return a is None or b is None or a == b


def ref_own(s: StaffSchedule, v: ServiceRule, loc: UUID | None, t: int, b: BusyRange) -> bool:
    start = b.start if b.starts_at is None else b.starts_at
    return (
        v.seats > 1
        and b.kind is BusyKind.BOOKED
        and b.service_id == v.id
        and start == t
        and ref_matches(b.location_id, loc)
    )


def ref_limit_reached(s: StaffSchedule, v: ServiceRule, t: int) -> bool:
    tz = ZoneInfo(s.zone)
    day = datetime.fromtimestamp(t, tz).date()

    def local(b: BusyRange) -> date:
        return datetime.fromtimestamp(b.start if b.starts_at is None else b.starts_at, tz).date()

    booked = [b for b in s.busy if b.kind is BusyKind.BOOKED]
    of_service = [b for b in booked if b.service_id == v.id]

    def sessions(bookings: list[BusyRange], week: bool) -> int:
        if week:
            return len({b.session or b.ref for b in bookings if local(b).isocalendar()[:2] == day.isocalendar()[:2]})
        return len({b.session or b.ref for b in bookings if local(b) == day})

    checks = [
        (s.max_per_day, booked, False),
        (s.max_per_week, booked, True),
        (v.max_per_day, of_service, False),
        (v.max_per_week, of_service, True),
    ]
    return any(limit is not None and sessions(bs, week) >= limit for limit, bs, week in checks)


def ref_resource_free(s: StaffSchedule, v: ServiceRule, loc: UUID | None, t: int, b0: int, b1: int) -> int:
    needs: dict[str, int] = {}
    for kind, quantity in v.resources:
        needs[kind] = needs.get(kind, 0) + quantity

    def own(u: ResourceUse) -> bool:
        return (
            v.seats > 1
            and u.staff_id == s.staff_id
            and u.service_id == v.id
            and u.starts_at == t
            and ref_matches(u.location_id, loc)
        )

    best = []
    for kind, quantity in needs.items():
        free = 0
        for r in s.resources:
            if r.kind != kind or not (r.location_id is None or r.location_id == loc):
                continue
            if not any(u.start < u.end and u.start < b1 and b0 < u.end and not own(u) for u in r.busy):
                free += 1
        best.append(free // quantity)
    return min(best)


Expected = tuple[int, int, UUID | None, int | None, int, int | None]


def ref_slots(s: StaffSchedule, v: ServiceRule, windows: list[Window], lo: int, hi: int) -> list[Expected]:
    dur, step = v.duration_min * 60, (v.interval_min or v.duration_min) * 60
    before, after = v.buffer_before_min * 60, v.buffer_after_min * 60
    travel = {(x.from_location, x.to_location): x.minutes * 60 for x in s.travel}
    found: dict[int, tuple[UUID | None, int | None, int, int | None]] = {}
    for w in windows:  # first window wins a start offered twice (engine: slot ids are unique)
        loc = w.location_id
        t = w.start
        while t + dur <= w.end:
            if lo <= t < hi and t not in found:
                b0, b1 = t - before, t + dur + after
                free_of_busy = True
                taken = joined = 0
                for r in s.busy:
                    if ref_own(s, v, loc, t, r):
                        taken += r.seats
                        joined += 1
                        continue
                    rs, re = r.start, r.end
                    if r.kind is BusyKind.BOOKED and loc is not None and r.location_id not in (None, loc):
                        rs -= travel.get((loc, r.location_id), 0)
                        re += travel.get((r.location_id, loc), 0)
                    if rs < b1 and b0 < re:
                        free_of_busy = False
                seats_left = v.seats - taken
                ok = free_of_busy and seats_left > 0
                if ok and joined == 0 and ref_limit_reached(s, v, t):
                    ok = False
                resource_free = ref_resource_free(s, v, loc, t, b0, b1) if v.resources else None
                if resource_free == 0:
                    ok = False
                if ok:
                    exp = [
                        h.expires_at
                        for h in s.holds
                        if h.start < b1
                        and b0 < h.end
                        and not (
                            v.seats > 1
                            and h.service_id == v.id
                            and h.starts_at == t
                            and ref_matches(h.location_id, loc)
                        )
                    ]
                    found[t] = (loc, max(exp) if exp else None, seats_left, resource_free)
            t += step
    return [(t, t + dur, loc, held, seats, free) for t, (loc, held, seats, free) in sorted(found.items())]


# --- random rule sets -----------------------------------------------------------------------


Scenario = tuple[StaffSchedule, ServiceRule, date, date, int, int]
minutes_5 = st.integers(1, 24).map(lambda k: k * 5)


@st.composite
def spans(draw: st.DrawFn, zone: str) -> tuple[int, int]:
    """A local [start, end) in minutes, often at or inside the zone's DST-sensitive times."""
    tricky = TRICKY_MINUTES[zone]
    any_start = st.integers(0, 95).map(lambda k: k * 15)
    start = draw(st.sampled_from([m for m in tricky if m < 1440]) | any_start)
    later = st.sampled_from([m for m in [*tricky, 1440] if m > start])
    end = draw(later | later | st.integers(1, 48).map(lambda k: start + k * 15))
    return start, min(1440, end)


def wall_instant(zone: str, day: date, minute: int) -> int:
    """An instant near local ``minute`` of ``day`` (generator only: any nearby instant will do)."""
    when = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)) + timedelta(minutes=minute)
    return int(when.timestamp())


@st.composite
def ranges(
    draw: st.DrawFn,
    zone: str,
    days: list[date],
    max_len: int,
    service: ServiceRule,
    grid_origins: list[int],
) -> tuple[int, int]:
    """An instant range, one of three kinds: touching the blocked range of a likely candidate
    (a grid start counted from a rule's start), at a local quarter hour of a date, or
    anywhere on the five-minute grid from a day before the dates to a day after."""
    kind = draw(st.sampled_from([0, 0, 0, 1, 2]))
    length = draw(st.integers(1, max_len // 5)) * 300
    if kind == 0 and grid_origins:
        t = draw(st.sampled_from(grid_origins)) + draw(st.integers(0, 4)) * service.step_s
        if draw(st.booleans()):
            end = t - service.buffer_before_min * 60
            return end - length, end
        start = t + (service.duration_min + service.buffer_after_min) * 60
        return start, start + length
    if kind == 1:
        start = wall_instant(zone, draw(st.sampled_from(days)), draw(st.integers(0, 95)) * 15)
        return start, start + length
    origin = utc_midnight(days[0]) - 86400
    start = origin + draw(st.integers(0, (len(days) + 2) * 288)) * 300
    return start, start + length


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone = draw(st.sampled_from(sorted(ZONE_ANCHORS)))
    anchor = draw(st.sampled_from(ZONE_ANCHORS[zone]))
    first = anchor - timedelta(days=draw(st.integers(0, 2)))
    last = anchor + timedelta(days=draw(st.integers(0, 1)))
    days = [first + timedelta(days=k) for k in range((last - first).days + 1)]
    near = st.integers(-9, len(days) + 1).map(lambda k: first + timedelta(days=k))
    loc = st.sampled_from(LOCATIONS)
    # Two thirds of the worlds also draw the capacity rules (seats, resources, limits,
    # travel), on a working day at least at each date so that there are slots to judge.
    capacity = draw(st.integers(0, 2)) > 0

    templates = []
    if capacity:
        hours = (st.sampled_from([0, 420, 480]), st.sampled_from([1080, 1440]))
        templates = [TemplateRule(d.isoweekday(), draw(hours[0]), draw(hours[1]), draw(loc)) for d in days]
    for _ in range(draw(st.integers(0, 4 if not capacity else 2))):
        s, e = draw(spans(zone))
        weekday = draw(
            st.just(anchor.isoweekday()) | st.sampled_from([d.isoweekday() for d in days]) | st.integers(1, 7)
        )
        valid = (draw(st.none() | near), draw(st.none() | near))
        templates.append(TemplateRule(weekday, s, e, draw(loc), *valid))
    overrides = []
    for _ in range(draw(st.integers(0, 3))):
        available = draw(st.booleans())
        s2, e2 = draw(spans(zone))
        times: tuple[int | None, int | None] = (s2, e2)
        if not available and draw(st.integers(0, 3)) == 0:
            times = (None, None)  # closes the day
        rule = draw(st.sampled_from(RRULES))
        overrides.append(OverrideRule(draw(near), available, *times, rule, draw(loc)))
    holidays = [
        HolidayRule(draw(near), draw(st.sampled_from(RRULES)), "h", draw(st.booleans()))
        for _ in range(draw(st.integers(0, 1)))
    ]
    common = st.sampled_from([15, 30, 45, 60])
    limit = st.sampled_from([None, None, None, None, None, None, 1, 2, 3, 4, 0])
    service = ServiceRule(
        UUID(int=2),
        draw(common | minutes_5),
        draw(st.sampled_from([0, 15]) | st.integers(0, 12).map(lambda k: k * 5)),
        draw(st.sampled_from([0, 15, 30]) | st.integers(0, 12).map(lambda k: k * 5)),
        draw(st.none() | common | minutes_5.filter(lambda m: m <= 90)),
        seats=(seats := draw(st.sampled_from([1, 1, 2, 3])) if capacity else 1),
        resources=draw(st.sampled_from(NEEDS)) if capacity else (),
        # a group service's day limit is often 1: its sessions' joiners are what it exempts
        max_per_day=draw(st.sampled_from([None, 1, 2]) if seats > 1 else limit) if capacity else None,
        max_per_week=draw(limit) if capacity else None,
    )
    # Where grids probably start: each rule's start on each date of the range.
    origins = sorted(
        {wall_instant(zone, d, r.start_min) for d in days for r in templates if r.weekday == d.isoweekday()}
        | {wall_instant(zone, d, o.start_min) for d in days for o in overrides if o.start_min}
    )
    busy = [
        BusyRange(
            *draw(ranges(zone, days, 300, service, origins)),
            draw(st.sampled_from(list(BusyKind))),
            ref=f"busy-{i}",
        )
        for i in range(draw(st.integers(0, 4 if not capacity else 2)))
    ]
    holds = [
        LiveHold(
            *draw(ranges(zone, days, 120, service, origins)),
            expires_at=draw(st.integers(1, 10)) * 1000,
        )
        for _ in range(draw(st.integers(0, 3)))
    ]
    schedule_loc = draw(loc)
    resources: list[Resource] = []
    travel: list[Travel] = []
    limits: tuple[int | None, int | None] = (None, None)
    if capacity:
        bookings = [draw(bookings_of(zone, days, service, origins, f"b{i}")) for i in range(draw(st.integers(0, 6)))]
        busy.extend(bookings)
        for _ in range(draw(st.integers(0, 2))):
            # a hold that may be of a candidate's own session
            t = draw(st.sampled_from(origins)) + draw(st.integers(0, 4)) * service.step_s if origins else 0
            holds.append(
                LiveHold(
                    t - service.buffer_before_min * 60,
                    t + (service.duration_min + service.buffer_after_min) * 60,
                    expires_at=draw(st.integers(1, 10)) * 1000,
                    service_id=service.id,
                    starts_at=t,
                    location_id=draw(loc),
                )
            )
        kinds = [k for k, _ in service.resources] or KINDS
        for i in range(draw(st.integers(1, 4) if service.resources else st.integers(0, 2))):
            held_by = (
                draw(st.lists(st.sampled_from(bookings), max_size=3, unique_by=lambda b: b.ref)) if bookings else []
            )
            uses = [
                ResourceUse(b.start, b.end, STAFF, b.service_id or service.id, b.begins, b.location_id, b.ref)
                for b in held_by
            ]
            for _ in range(draw(st.integers(0, 2))):  # another staff member's booking holds it
                r0, r1 = draw(ranges(zone, days, 180, service, origins))
                other = draw(st.sampled_from([service, OTHER_SERVICE]))
                uses.append(ResourceUse(r0, r1, OTHER_STAFF, other.id, r0 + other.buffer_before_min * 60, draw(loc)))
            # mostly usable where the staff member works: no location, or the staff member's
            where = draw(st.sampled_from([None, None, schedule_loc]) | loc)
            resources.append(Resource(UUID(int=100 + i), draw(st.sampled_from(kinds)), where, f"r{i}", tuple(uses)))
        minutes = st.sampled_from([0, 15, 30, 60, 90, 240])
        travel = [
            Travel(a, b, draw(minutes))
            for a, b in ((LOCATIONS[1], LOCATIONS[2]), (LOCATIONS[2], LOCATIONS[1]))
            if a is not None and b is not None and draw(st.booleans())
        ]
        limits = (draw(limit), draw(limit))
    schedule = StaffSchedule(
        STAFF,
        zone,
        schedule_loc,
        tuple(templates),
        tuple(overrides),
        tuple(holidays),
        tuple(busy),
        tuple(holds),
        max_per_day=limits[0],
        max_per_week=limits[1],
        resources=tuple(resources),
        travel=tuple(travel),
    )
    origin = utc_midnight(first) - 86400
    steps = (len(days) + 2) * 288
    if draw(st.booleans()):
        lo, hi = 0, 2**40
    else:
        lo = origin + draw(st.integers(0, steps)) * 300
        hi = lo + draw(st.integers(0, steps)) * 300
    return schedule, service, first, last, lo, hi


@st.composite
def bookings_of(
    draw: st.DrawFn, zone: str, days: list[date], service: ServiceRule, grid_origins: list[int], ref: str
) -> BusyRange:
    """A confirmed booking: of the service at a likely grid start (so that candidates have
    sessions to join), or of another service anywhere from a week before the dates to a
    week after (so that weeks have bookings to count)."""
    which = draw(st.sampled_from([service, service, OTHER_SERVICE]))
    place = draw(st.integers(0, 3))
    if which is service and grid_origins and place > 0:
        start = draw(st.sampled_from(grid_origins)) + draw(st.integers(0, 4)) * service.step_s
    elif which is OTHER_SERVICE and grid_origins and place > 1:
        # just after a likely candidate's blocked range, or just before it: where travel
        # (and nothing else) decides
        t = draw(st.sampled_from(grid_origins)) + draw(st.integers(0, 4)) * service.step_s
        gap = draw(st.sampled_from([0, 15, 30, 60, 120])) * 60
        if draw(st.booleans()):
            start = t + (service.duration_min + service.buffer_after_min + which.buffer_before_min) * 60 + gap
        else:
            start = t - (service.buffer_before_min + which.duration_min + which.buffer_after_min) * 60 - gap
    else:
        start = utc_midnight(days[0]) + draw(st.integers(-8 * 96, (len(days) + 8) * 96)) * 900
    before, after = which.buffer_before_min * 60, which.buffer_after_min * 60
    end = start + which.duration_min * 60
    group = which.seats > 1
    return BusyRange(
        start - before,
        end + after,
        BusyKind.BOOKED,
        ref,
        service_id=which.id,
        starts_at=start,
        location_id=draw(st.sampled_from(LOCATIONS)),
        seats=draw(st.sampled_from([1, 1, 2])),
        session=f"g:{which.id}@{start}" if group else ref,
    )


@PROPERTY_SETTINGS
@given(scenarios())
def test_engine_matches_minute_by_minute_reference(scenario: Scenario) -> None:
    schedule, service, first, last, lo, hi = scenario
    windows = merged_windows(schedule, first, last)
    assert windows == ref_windows(schedule, first, last)
    got = generate_slots(schedule, service, windows, lo, hi)
    assert [
        (s.starts_at, s.ends_at, s.location_id, s.held_until, s.seats_left, s.resource_free) for s in got
    ] == ref_slots(schedule, service, windows, lo, hi)
    assert all(s.staff_id == STAFF and s.service_id == service.id for s in got)


@PROPERTY_SETTINGS
@given(scenarios(), st.lists(st.integers(0, 6 * 288), max_size=12))
def test_explain_agrees_with_generate_slots(scenario: Scenario, picks: list[int]) -> None:
    schedule, service, first, last, _, _ = scenario
    windows = merged_windows(schedule, first, last)
    slots = {s.starts_at: s for s in generate_slots(schedule, service, windows, 0, 2**40)}
    origin = utc_midnight(first) - 86400
    starts = {origin + k * 300 for k in picks}
    starts.update(list(slots)[:4])
    starts.update(w.start + d for w in windows[:3] for d in (0, service.step_s, 300))
    kw: dict[str, Any] = {
        "qualified": True,
        "active": True,
        "now": 0,
        "min_notice_s": 0,
        "advance_limit": 2**40,
        "horizon_end": 2**40,
        "first": first,
        "last": last,
    }
    for t in sorted(starts):
        got = explain(schedule, service, starts_at=t, **kw)
        codes = {r.code for r in got.reasons}
        assert (not codes & SCHEDULE_CODES) == (t in slots), (t, got)
        if t in slots:
            assert (ReasonCode.HELD in codes) == (slots[t].held_until is not None)
            assert got.available == (slots[t].held_until is None)
            if got.available:  # and it says what the slot carries
                detail = got.reasons[0].detail
                seats = f"{slots[t].seats_left} of {service.seats} seats left"
                assert (seats in detail) == (service.seats > 1), (detail, seats)
                free = slots[t].resource_free
                assert (f"resources for {free} more" in detail) == (free is not None), (detail, free)
        else:
            assert not got.available
