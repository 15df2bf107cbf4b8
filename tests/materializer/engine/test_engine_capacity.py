"""The capacity rules of the slot engine (SPEC §5.6-5.9), by hand: group sessions and their
seats, resources, booking limits per day and week, travel between locations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from slotmill.materializer.engine import compute_slots, explain, slot_runs
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    Explanation,
    LiveHold,
    ReasonCode,
    Resource,
    ResourceUse,
    ServiceRule,
    Slot,
    StaffSchedule,
    TemplateRule,
    Travel,
)

ANN = UUID(int=1)
BOB = UUID(int=2)
LOC_A = UUID(int=10)
LOC_B = UUID(int=11)
MONDAY = date(2024, 1, 1)
CLASS = ServiceRule(UUID(int=20), 60, interval_min=30, seats=3)  # sessions overlap: every 30 min
CUT = ServiceRule(UUID(int=21), 60)


def at(clock: str, day: date = MONDAY, zone: str = "UTC") -> int:
    local = datetime.fromisoformat(f"{day.isoformat()}T{clock}").replace(tzinfo=ZoneInfo(zone))
    return int(local.timestamp())


def hhmm(t: int, zone: str = "UTC") -> str:
    return datetime.fromtimestamp(t, ZoneInfo(zone)).strftime("%H:%M")


def booking(
    service: ServiceRule,
    start: int,
    *,
    ref: str = "",
    location: UUID | None = None,
    seats: int = 1,
) -> BusyRange:
    """A confirmed booking of ``service`` at ``start``, as the loader hands it over."""
    ref = ref or f"booking-{start}"
    end = start + service.duration_min * 60
    return BusyRange(
        start - service.buffer_before_min * 60,
        end + service.buffer_after_min * 60,
        BusyKind.BOOKED,
        ref,
        service_id=service.id,
        starts_at=start,
        location_id=location,
        seats=seats,
        session=f"g:{service.id}@{start}" if service.seats > 1 else ref,
    )


def staff(who: UUID = ANN, *, start: str = "09:00", end: str = "17:00", days: int = 1, **kw: Any) -> StaffSchedule:
    h0, m0 = (int(x) for x in start.split(":"))
    h1, m1 = (int(x) for x in end.split(":"))
    location = kw.pop("location_id", None)
    zone = kw.pop("zone", "UTC")
    templates = tuple(
        TemplateRule(wd, h0 * 60 + m0, h1 * 60 + m1, location)
        for wd in sorted({(MONDAY + timedelta(days=k)).isoweekday() for k in range(days)})
    )
    return StaffSchedule(who, zone, location, templates, **kw)


def slots(schedule: StaffSchedule, service: ServiceRule, first: date = MONDAY, last: date = MONDAY) -> dict[str, Slot]:
    """Local start (HH:MM, one day) -> slot."""
    return {hhmm(s.starts_at, schedule.zone): s for s in compute_slots(schedule, [service], first, last, 0, 2**40)}


def why(schedule: StaffSchedule, service: ServiceRule, t: int, around: date = MONDAY) -> Explanation:
    return explain(
        schedule,
        service,
        qualified=True,
        active=True,
        starts_at=t,
        now=0,
        min_notice_s=0,
        advance_limit=2**40,
        horizon_end=2**40,
        first=around - timedelta(days=1),
        last=around + timedelta(days=10),
    )


def codes(e: Explanation) -> list[ReasonCode]:
    return [r.code for r in e.reasons]


# --- seats and sessions ---------------------------------------------------------------------


def test_a_one_seat_service_has_one_seat_left_and_no_resource_count() -> None:
    got = slots(staff(), CUT)
    assert list(got) == ["09:00", "10:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    assert {(s.seats_left, s.resource_free) for s in got.values()} == {(1, None)}


def test_overlapping_sessions_of_one_group_service() -> None:
    # A 60-minute class every 30 minutes: the sessions at 10:00 and 10:30 overlap. Two
    # people booked 10:00 (one party of two): that session has one seat left, and it blocks
    # the sessions it overlaps (09:30, 10:30) like any booking; 09:00 and 11:00 only touch it.
    sched = staff(busy=(booking(CLASS, at("10:00"), seats=2),))
    got = slots(sched, CLASS)
    assert [(t, s.seats_left) for t, s in got.items()][:4] == [("09:00", 3), ("10:00", 1), ("11:00", 3), ("11:30", 3)]
    assert "09:30" not in got and "10:30" not in got
    assert codes(why(sched, CLASS, at("10:30"))) == [ReasonCode.BOOKED]
    assert "1 of 3 seats left" in why(sched, CLASS, at("10:00")).reasons[0].detail


def test_a_full_session_is_not_a_slot_and_explain_says_session_full() -> None:
    sched = staff(busy=(booking(CLASS, at("10:00"), seats=2, ref="b1"), booking(CLASS, at("10:00"), ref="b2")))
    assert "10:00" not in slots(sched, CLASS)
    e = why(sched, CLASS, at("10:00"))
    assert codes(e) == [ReasonCode.SESSION_FULL]
    assert "3 of 3 seats taken by 2 confirmed bookings" in e.reasons[0].detail
    # seats lowered below what is booked: still full, never negative
    fewer = ServiceRule(CLASS.id, 60, interval_min=30, seats=2)
    assert "10:00" not in slots(sched, fewer)


def test_a_session_is_at_one_location_and_a_booking_without_one_joins_it_anywhere() -> None:
    at_b = staff(location_id=LOC_A, busy=(booking(CLASS, at("10:00"), location=LOC_B),))
    assert "10:00" not in slots(at_b, CLASS), "a booking at another location is another session"
    assert codes(why(at_b, CLASS, at("10:00"))) == [ReasonCode.BOOKED]
    nowhere = staff(location_id=LOC_A, busy=(booking(CLASS, at("10:00"), location=None),))
    assert slots(nowhere, CLASS)["10:00"].seats_left == 2


def test_other_services_block_a_session_and_a_session_blocks_them() -> None:
    sched = staff(busy=(booking(CLASS, at("10:00")),))
    assert "10:00" not in slots(sched, CUT)
    cut_booked = staff(busy=(booking(CUT, at("10:00")),))
    assert "10:00" not in slots(cut_booked, CLASS)


def test_a_hold_of_the_own_session_does_not_hide_it_but_another_hold_does() -> None:
    own = LiveHold(at("10:00"), at("11:00"), 5000, "h1", service_id=CLASS.id, starts_at=at("10:00"))
    got = slots(staff(holds=(own,)), CLASS)
    assert got["10:00"].held_until is None and got["10:00"].seats_left == 3
    assert got["10:30"].held_until == 5000 and got["09:30"].held_until == 5000
    assert got["11:00"].held_until is None
    e = why(staff(holds=(own,)), CLASS, at("10:00"))
    assert e.available and ReasonCode.HELD not in codes(e)
    # the same hold on a one-seat service hides the slot as always
    cut_hold = LiveHold(at("10:00"), at("11:00"), 5000, "h2", service_id=CUT.id, starts_at=at("10:00"))
    assert slots(staff(holds=(cut_hold,)), CUT)["10:00"].held_until == 5000


# --- resources ------------------------------------------------------------------------------


MASSAGE = ServiceRule(UUID(int=22), 60, resources=(("room", 1),))


def room(n: int, location: UUID | None = None, *uses: ResourceUse, kind: str = "room") -> Resource:
    return Resource(UUID(int=100 + n), kind, location, f"{kind} {n}", tuple(uses))


def use(who: UUID, service: ServiceRule, start: int, location: UUID | None = None) -> ResourceUse:
    b = booking(service, start, location=location)
    return ResourceUse(b.start, b.end, who, service.id, start, location, b.ref)


def test_a_room_booked_by_one_staff_member_removes_anothers_room_slots_only() -> None:
    # Ann's confirmed 10:00 massage holds the only room. Bob's massage at 10:00 needs it;
    # his cut at 10:00 does not.
    rooms = (room(1, None, use(ANN, MASSAGE, at("10:00"))),)
    bob = staff(BOB, resources=rooms)
    massage = slots(bob, MASSAGE)
    assert "10:00" not in massage and massage["09:00"].resource_free == 1 and massage["11:00"].resource_free == 1
    assert slots(bob, CUT)["10:00"].resource_free is None
    e = why(bob, MASSAGE, at("10:00"))
    assert codes(e) == [ReasonCode.RESOURCE_BUSY]
    assert "0 of 1 resources of kind 'room'" in e.reasons[0].detail and "1 needed" in e.reasons[0].detail


def test_a_service_needing_two_of_three_chairs() -> None:
    pedicure = ServiceRule(UUID(int=23), 60, resources=(("chair", 2),))
    chairs = (
        room(1, None, use(BOB, CUT, at("10:00")), use(BOB, CUT, at("11:00")), kind="chair"),
        room(2, None, use(BOB, CUT, at("11:00")), kind="chair"),
        room(3, None, kind="chair"),
    )
    got = slots(staff(resources=chairs), pedicure)
    assert got["09:00"].resource_free == 1  # 3 free // 2
    assert got["10:00"].resource_free == 1  # 2 free // 2
    assert "11:00" not in got  # 1 free: not enough
    assert why(staff(resources=chairs), pedicure, at("11:00")).reasons[0].detail.startswith("1 of 3")
    # a one-chair service counts every free chair
    one = ServiceRule(UUID(int=24), 60, resources=(("chair", 1),))
    assert [slots(staff(resources=chairs), one)[t].resource_free for t in ("09:00", "10:00", "11:00")] == [3, 2, 1]


def test_two_requirements_of_one_kind_add_up() -> None:
    twice = ServiceRule(UUID(int=25), 60, resources=(("room", 1), ("room", 1)))
    assert twice.needs == (("room", 2),)
    rooms = (room(1), room(2), room(3))
    assert slots(staff(resources=rooms), twice)["09:00"].resource_free == 1
    assert "09:00" not in slots(staff(resources=rooms[:1]), twice)


def test_a_location_less_resource_serves_every_location_and_a_located_one_only_its_own() -> None:
    at_b = staff(location_id=LOC_B, resources=(room(1, LOC_A), room(2, None)))
    assert slots(at_b, MASSAGE)["10:00"].resource_free == 1  # only the location-less room
    at_a = staff(location_id=LOC_A, resources=(room(1, LOC_A), room(2, None)))
    assert slots(at_a, MASSAGE)["10:00"].resource_free == 2
    # Busy the location-less room: nothing left at B, though A's room is free.
    busy = (room(1, LOC_A), room(2, None, use(BOB, MASSAGE, at("10:00"))))
    assert "10:00" not in slots(staff(location_id=LOC_B, resources=busy), MASSAGE)
    assert slots(staff(location_id=LOC_A, resources=busy), MASSAGE)["10:00"].resource_free == 1
    # A slot with no location can use only location-less resources.
    assert "10:00" not in slots(staff(resources=busy), MASSAGE)


def test_a_resource_held_only_by_the_own_session_counts_as_free() -> None:
    yoga = ServiceRule(UUID(int=26), 60, interval_min=30, seats=4, resources=(("room", 1),))
    studio = (room(1, None, use(ANN, yoga, at("10:00"))),)
    sched = staff(busy=(booking(yoga, at("10:00")),), resources=studio)
    got = slots(sched, yoga)
    assert got["10:00"].seats_left == 3 and got["10:00"].resource_free == 1
    # Bob's session at 10:00 of the same class is not Ann's: the room is taken for him.
    assert "10:00" not in slots(staff(BOB, resources=studio), yoga)


def test_slot_runs_carry_one_value_when_constant_and_a_list_when_not() -> None:
    chairs = (room(1, None, use(BOB, CUT, at("10:00")), kind="chair"), room(2, None, kind="chair"))
    one = ServiceRule(UUID(int=24), 60, resources=(("chair", 1),))
    (run,) = slot_runs(staff(resources=chairs), [one], MONDAY, MONDAY, 0, 2**40)
    assert run.resource_free == [2, 1, 2, 2, 2, 2, 2, 2] and run.seats_left == 1
    (plain,) = slot_runs(staff(), [CUT], MONDAY, MONDAY, 0, 2**40)
    assert plain.resource_free is None and plain.seats_left == 1


# --- limits ---------------------------------------------------------------------------------


def test_a_day_limit_spares_a_group_session_that_still_accepts_joiners() -> None:
    # Two bookings of the 10:00 class (one session: counts once) and a cut at 14:00 reach
    # Ann's limit of two a day. Nothing new is offered that day, except joining 10:00.
    busy = (
        booking(CLASS, at("10:00"), ref="b1"),
        booking(CLASS, at("10:00"), ref="b2"),
        booking(CUT, at("14:00"), ref="b3"),
    )
    sched = staff(max_per_day=2, days=2, busy=busy)
    got = compute_slots(sched, [CLASS], MONDAY, MONDAY + timedelta(days=1), 0, 2**40)
    monday = [(hhmm(s.starts_at), s.seats_left) for s in got if s.starts_at < at("00:00", MONDAY + timedelta(days=1))]
    assert monday == [("10:00", 1)]
    assert slots(sched, CUT) == {}
    tuesday = slots(sched, CUT, MONDAY + timedelta(days=1), MONDAY + timedelta(days=1))
    assert len(tuesday) == 8
    e = why(sched, CLASS, at("12:00"))
    assert codes(e) == [ReasonCode.LIMIT_REACHED]
    assert "the staff member's day limit is reached: 2 of 2 booked in 2024-01-01 (UTC)" in e.reasons[0].detail
    # one fewer: the limit is not reached, every time is offered again
    assert len(slots(staff(max_per_day=2, busy=busy[:2]), CUT)) == 7  # all but the class at 10:00


def test_a_service_limit_counts_that_service_only() -> None:
    busy = (booking(CUT, at("09:00"), ref="b1"), booking(MASSAGE, at("11:00"), ref="b2"))
    limited = ServiceRule(CUT.id, 60, max_per_day=1)
    assert slots(staff(busy=busy), limited) == {}
    assert "the service's day limit" in why(staff(busy=busy), limited, at("13:00")).reasons[0].detail
    other = ServiceRule(MASSAGE.id, 60, max_per_day=2)
    assert len(slots(staff(busy=busy), other)) == 6  # 8 hours, two of them booked


def test_a_limit_counts_later_bookings_of_the_day_too() -> None:
    sched = staff(max_per_day=1, busy=(booking(CUT, at("16:00")),))
    assert slots(sched, CUT) == {}


def test_a_week_limit_across_a_dst_change_counts_local_iso_weeks() -> None:
    # New York falls back on Sunday 2024-11-03. A booking that Sunday at 21:00 EST is
    # 02:00Z on Monday the 4th: it counts in the local week of Oct 28 - Nov 3 (a 169-hour
    # week), which a limit of one closes, and not in the week from Monday Nov 4.
    zone = "America/New_York"
    sunday = date(2024, 11, 3)
    start = at("21:00", sunday, zone)
    assert datetime.fromtimestamp(start, UTC).date() == date(2024, 11, 4)
    sched = StaffSchedule(
        ANN,
        zone,
        templates=tuple(TemplateRule(wd, 0, 1440) for wd in range(1, 8)),
        busy=(booking(CUT, start),),
        max_per_week=1,
    )
    first, last = date(2024, 10, 27), date(2024, 11, 6)
    got = compute_slots(sched, [CUT], first, last, 0, 2**40)
    days = sorted({datetime.fromtimestamp(s.starts_at, ZoneInfo(zone)).date() for s in got})
    assert days[0] == date(2024, 10, 27)  # the week before: Sunday Oct 27 is in week 43
    assert date(2024, 10, 28) not in days and sunday not in days
    assert days[1] == date(2024, 11, 4)
    first_monday = min(s.starts_at for s in got if s.starts_at >= at("00:00", date(2024, 11, 4), zone))
    assert first_monday == at("00:00", date(2024, 11, 4), zone)
    e = why(sched, CUT, at("23:00", sunday, zone), around=sunday)
    assert codes(e) == [ReasonCode.LIMIT_REACHED]
    assert "week limit is reached: 1 of 1 booked in 2024-W44 (America/New_York)" in e.reasons[0].detail


# --- travel ---------------------------------------------------------------------------------


def test_asymmetric_travel_with_buffers() -> None:
    # Ann works at A; she has a confirmed 12:00-13:00 booking at B whose service has 10
    # minutes before and 5 after: blocked 11:50-13:05. From A to B takes 30 minutes, back 20.
    # A 30-minute service with 15 minutes after, every 15 minutes, blocks [t, t + 45).
    visit = ServiceRule(UUID(int=27), 60, buffer_before_min=10, buffer_after_min=5)
    quick = ServiceRule(UUID(int=28), 30, buffer_after_min=15, interval_min=15)
    travel = (Travel(LOC_A, LOC_B, 30), Travel(LOC_B, LOC_A, 20))
    e_at_b = booking(visit, at("12:00"), location=LOC_B, ref="E")
    sched = staff(location_id=LOC_A, busy=(e_at_b,), travel=travel)
    got = list(slots(sched, quick))
    # widened to 11:20-13:25: the last start before is 10:30 (ends 11:15 after buffer,
    # 11:20 with travel), the first after 13:30
    assert got[got.index("10:30") + 1] == "13:30"
    without = list(slots(staff(location_id=LOC_A, busy=(e_at_b,)), quick))
    assert without[without.index("11:00") + 1] == "13:15"
    e = why(sched, quick, at("10:45"))
    assert codes(e) == [ReasonCode.TRAVEL]
    assert f"booking E 2024-01-01T11:50:00Z-2024-01-01T13:05:00Z at location {LOC_B}" in e.reasons[0].detail
    assert "30 min of travel there" in e.reasons[0].detail and "20 min back" in e.reasons[0].detail
    assert codes(why(sched, quick, at("13:15"))) == [ReasonCode.TRAVEL]
    # a booking at the same location, or with none, gets no travel; nor does time off
    same = staff(location_id=LOC_A, busy=(booking(visit, at("12:00"), location=LOC_A),), travel=travel)
    assert "11:00" in slots(same, quick)
    nowhere = staff(location_id=LOC_A, busy=(booking(visit, at("12:00")),), travel=travel)
    assert "11:00" in slots(nowhere, quick)
    off = staff(location_id=LOC_A, busy=(BusyRange(at("11:50"), at("13:05"), BusyKind.TIME_OFF),), travel=travel)
    assert "11:00" in slots(off, quick)
