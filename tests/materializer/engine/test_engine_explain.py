"""explain(): every reason that applies, in agreement with generate_slots."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

from slotmill.materializer.engine import explain, generate_slots, merged_windows
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    Explanation,
    HolidayRule,
    LiveHold,
    ReasonCode,
    ServiceRule,
    StaffSchedule,
    TemplateRule,
)

STAFF = UUID(int=1)
SERVICE = ServiceRule(UUID(int=2), 30, buffer_before_min=15, buffer_after_min=30, interval_min=15)
LOC = UUID(int=10)
MONDAY = date(2024, 1, 1)
SCHEDULE_CODES = {
    ReasonCode.HOLIDAY,
    ReasonCode.OUTSIDE_WORKING_HOURS,
    ReasonCode.OFF_GRID,
    ReasonCode.TIME_OFF,
    ReasonCode.BUSY,
    ReasonCode.BOOKED,
}


def at(clock: str, day: date = MONDAY) -> int:
    return int(datetime.fromisoformat(f"{day.isoformat()}T{clock}").replace(tzinfo=UTC).timestamp())


def base_schedule(**kw: Any) -> StaffSchedule:
    return StaffSchedule(STAFF, "UTC", templates=(TemplateRule(1, 9 * 60, 17 * 60),), **kw)


def why(sched: StaffSchedule, start: int, **kw: Any) -> Explanation:
    args: dict[str, Any] = {
        "qualified": True,
        "active": True,
        "now": at("00:00") - 86400,
        "min_notice_s": 0,
        "advance_limit": at("00:00") + 30 * 86400,
        "horizon_end": at("00:00") + 60 * 86400,
        "first": MONDAY - timedelta(days=1),
        "last": MONDAY + timedelta(days=1),
    }
    args.update(kw)
    service = args.pop("service", SERVICE)
    return explain(sched, service, starts_at=start, **args)


def codes(e: Explanation) -> list[ReasonCode]:
    return [r.code for r in e.reasons]


def test_available_slot() -> None:
    got = why(base_schedule(location_id=LOC), at("09:00"))
    assert got.available
    assert codes(got) == [ReasonCode.AVAILABLE]
    assert str(LOC) in got.reasons[0].detail
    assert "2024-01-01T09:00:00Z" in got.reasons[0].detail


def test_not_qualified_and_inactive() -> None:
    got = why(base_schedule(), at("09:00"), qualified=False, active=False)
    assert not got.available
    assert codes(got) == [ReasonCode.NOT_QUALIFIED, ReasonCode.INACTIVE]


def test_holiday_alone_explains_a_closed_day() -> None:
    sched = base_schedule(holidays=(HolidayRule(MONDAY, name="New Year"),))
    got = why(sched, at("10:00"))
    assert codes(got) == [ReasonCode.HOLIDAY]
    assert "New Year" in got.reasons[0].detail
    assert "2024-01-01" in got.reasons[0].detail


def test_holiday_is_judged_on_the_local_date() -> None:
    # 2024-01-01T23:30Z is already 2024-01-02 in Kolkata; a holiday on the 1st does not apply.
    sched = StaffSchedule(STAFF, "Asia/Kolkata", holidays=(HolidayRule(MONDAY),))
    assert ReasonCode.HOLIDAY not in codes(why(sched, at("23:30")))
    assert ReasonCode.HOLIDAY in codes(why(sched, at("12:00")))


def test_outside_working_hours() -> None:
    assert codes(why(base_schedule(), at("08:45"))) == [ReasonCode.OUTSIDE_WORKING_HOURS]
    # Starts inside but would end after 17:00.
    assert codes(why(base_schedule(), at("16:45"))) == [ReasonCode.OUTSIDE_WORKING_HOURS]
    assert codes(why(base_schedule(), at("16:30"))) == [ReasonCode.AVAILABLE]


def test_off_grid() -> None:
    got = why(base_schedule(), at("09:10"))
    assert codes(got) == [ReasonCode.OFF_GRID]
    assert "2024-01-01T09:00:00Z" in got.reasons[0].detail
    assert "2024-01-01T09:15:00Z" in got.reasons[0].detail


def test_busy_kinds_name_their_ranges() -> None:
    busy = (
        BusyRange(at("09:40"), at("10:00"), BusyKind.TIME_OFF, "to-1"),
        BusyRange(at("09:50"), at("10:05"), BusyKind.BUSY, "cal-7"),
        BusyRange(at("10:00"), at("11:00"), BusyKind.BOOKED, "bk-3"),
        BusyRange(at("08:00"), at("09:15"), BusyKind.BOOKED, "bk-touching"),  # ends at 09:30-15
    )
    got = why(base_schedule(busy=busy), at("09:30"))
    assert codes(got) == [ReasonCode.TIME_OFF, ReasonCode.BUSY, ReasonCode.BOOKED]
    time_off, busy_time, booked = (r.detail for r in got.reasons)
    assert "to-1" in time_off and "2024-01-01T09:40:00Z-2024-01-01T10:00:00Z" in time_off
    assert "cal-7" in busy_time
    assert "bk-3" in booked
    assert "blocked range 2024-01-01T09:15:00Z-2024-01-01T10:30:00Z" in booked


def test_held_makes_it_unavailable() -> None:
    hold = LiveHold(at("10:00"), at("10:30"), expires_at=at("08:10"), booking_id="hold-9")
    got = why(base_schedule(holds=(hold,)), at("09:30"))
    assert not got.available
    assert codes(got) == [ReasonCode.HELD]
    assert "hold-9" in got.reasons[0].detail
    assert "until 2024-01-01T08:10:00Z" in got.reasons[0].detail


def test_in_past_implies_min_notice_and_says_only_in_past() -> None:
    got = why(base_schedule(), at("09:00"), now=at("09:05"), min_notice_s=3600)
    assert codes(got) == [ReasonCode.IN_PAST]


def test_min_notice() -> None:
    got = why(base_schedule(), at("09:30"), now=at("09:00"), min_notice_s=3600)
    assert codes(got) == [ReasonCode.MIN_NOTICE]
    assert "60 min" in got.reasons[0].detail
    assert codes(why(base_schedule(), at("10:00"), now=at("09:00"), min_notice_s=3600)) == [ReasonCode.AVAILABLE]


def test_beyond_horizon_and_advance_limit() -> None:
    horizon = why(base_schedule(), at("09:00"), horizon_end=at("09:00"))
    assert codes(horizon) == [ReasonCode.BEYOND_HORIZON]
    assert "horizon" in horizon.reasons[0].detail
    advance = why(base_schedule(), at("09:00"), advance_limit=at("09:00"))
    assert codes(advance) == [ReasonCode.BEYOND_HORIZON]
    assert "advance" in advance.reasons[0].detail


def test_several_reasons_at_once() -> None:
    busy = (BusyRange(at("09:00"), at("12:00"), BusyKind.TIME_OFF),)
    got = why(base_schedule(busy=busy), at("09:05"), qualified=False, now=at("10:00"))
    assert codes(got) == [
        ReasonCode.NOT_QUALIFIED,
        ReasonCode.OFF_GRID,
        ReasonCode.TIME_OFF,
        ReasonCode.IN_PAST,
    ]


def test_agrees_with_generate_slots_on_the_buffer_example() -> None:
    def booked(start: str, end: str) -> BusyRange:
        return BusyRange(at(start) - 15 * 60, at(end) + 30 * 60, BusyKind.BOOKED)

    hold = LiveHold(at("10:00"), at("10:15"), expires_at=at("08:00"))
    sched = base_schedule(busy=(booked("12:30", "13:00"), booked("14:30", "15:00")), holds=(hold,))
    first, last = MONDAY - timedelta(days=1), MONDAY + timedelta(days=1)
    slots = {s.starts_at: s for s in generate_slots(sched, SERVICE, merged_windows(sched, first, last), 0, 2**40)}
    for start in range(at("07:00"), at("19:00"), 5 * 60):
        got = why(sched, start)
        schedule_codes = set(codes(got)) & SCHEDULE_CODES
        assert (not schedule_codes) == (start in slots), start
        if start in slots:
            held = slots[start].held_until is not None
            assert (ReasonCode.HELD in codes(got)) == held
            assert got.available == (not held)
