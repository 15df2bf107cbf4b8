"""Rule semantics of the slot engine (SPEC §5), by hand, with exact expected instants."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from slotmill.materializer.engine import compute_slots, generate_slots, merged_windows
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    HolidayRule,
    LiveHold,
    OverrideRule,
    RuleError,
    ServiceRule,
    Slot,
    StaffSchedule,
    TemplateRule,
    Window,
)
from slotmill.materializer.slot_ids import slot_id, slot_id_prefix

STAFF = UUID(int=1)
SERVICE = UUID(int=2)
LOC_A = UUID(int=10)
LOC_B = UUID(int=11)
MONDAY = date(2024, 1, 1)  # a Monday
EVERYTHING = (0, 2**40)


def ts(text: str) -> int:
    """'2024-01-01T09:00' (UTC) -> epoch seconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def at(day: date, clock: str) -> int:
    return ts(f"{day.isoformat()}T{clock}")


def utc_date(t: int) -> date:
    return datetime.fromtimestamp(t, UTC).date()


def hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def tpl(day: date, start: str, end: str, **kw: Any) -> TemplateRule:
    return TemplateRule(day.isoweekday(), hm(start), hm(end), **kw)


def schedule(zone: str = "UTC", **kw: Any) -> StaffSchedule:
    return StaffSchedule(STAFF, zone, **kw)


def spans(windows: list[Window]) -> list[tuple[int, int]]:
    return [(w.start, w.end) for w in windows]


def starts(slots: list[Slot]) -> list[int]:
    return [s.starts_at for s in slots]


def nine_to_five(day: date = MONDAY, **kw: Any) -> StaffSchedule:
    return schedule(templates=(tpl(day, "09:00", "17:00"),), **kw)


def slots_of(sched: StaffSchedule, service: ServiceRule, first: date, last: date | None = None) -> list[Slot]:
    windows = merged_windows(sched, first, last or first)
    return generate_slots(sched, service, windows, *EVERYTHING)


# --- the buffer example ---------------------------------------------------------------------


def test_buffers_against_confirmed_bookings_of_the_same_service() -> None:
    service = ServiceRule(SERVICE, 30, buffer_before_min=15, buffer_after_min=30, interval_min=15)

    def booked(start: str, end: str) -> BusyRange:
        # A confirmed booking's busy range is its blocked range (its own service's buffers).
        return BusyRange(at(MONDAY, start) - 15 * 60, at(MONDAY, end) + 30 * 60, BusyKind.BOOKED, "b")

    busy = (booked("12:30", "13:00"), booked("14:30", "15:00"))
    assert [(b.start, b.end) for b in busy] == [
        (at(MONDAY, "12:15"), at(MONDAY, "13:30")),
        (at(MONDAY, "14:15"), at(MONDAY, "15:30")),
    ]
    got = slots_of(nine_to_five(busy=busy), service, MONDAY)
    morning = [at(MONDAY, "09:00") + k * 15 * 60 for k in range(10)]  # 09:00 .. 11:15
    afternoon = [at(MONDAY, c) for c in ("15:45", "16:00", "16:15", "16:30")]
    assert starts(got) == morning + afternoon
    assert all(s.ends_at == s.starts_at + 30 * 60 for s in got)
    assert all(s.held_until is None and s.location_id is None for s in got)


# --- across midnight ------------------------------------------------------------------------


def test_monday_late_and_tuesday_early_form_one_window() -> None:
    tuesday = MONDAY + timedelta(days=1)
    sched = schedule(templates=(tpl(MONDAY, "22:00", "24:00"), tpl(tuesday, "00:00", "06:00")))
    windows = merged_windows(sched, MONDAY, tuesday)
    assert windows == [Window(at(MONDAY, "22:00"), at(tuesday, "06:00"), None)]
    got = generate_slots(sched, ServiceRule(SERVICE, 90), windows, *EVERYTHING)
    # One grid from 22:00: a slot straddles midnight.
    assert starts(got) == [at(MONDAY, "22:00") + k * 90 * 60 for k in range(5)]


def test_overlapping_rows_of_one_day_merge() -> None:
    sched = schedule(templates=(tpl(MONDAY, "09:00", "12:00"), tpl(MONDAY, "11:00", "13:00")))
    assert spans(merged_windows(sched, MONDAY, MONDAY)) == [(at(MONDAY, "09:00"), at(MONDAY, "13:00"))]


# --- holidays -------------------------------------------------------------------------------


def test_holiday_on_date_closes_the_day() -> None:
    tuesday = MONDAY + timedelta(days=1)
    rules = (tpl(MONDAY, "09:00", "17:00"), tpl(tuesday, "09:00", "17:00"))
    sched = schedule(templates=rules, holidays=(HolidayRule(MONDAY, name="New Year"),))
    assert spans(merged_windows(sched, MONDAY, tuesday)) == [(at(tuesday, "09:00"), at(tuesday, "17:00"))]


def test_staff_holiday_closes_the_day() -> None:
    sched = nine_to_five(holidays=(HolidayRule(MONDAY, name="own", tenant_wide=False),))
    assert merged_windows(sched, MONDAY, MONDAY) == []


@pytest.mark.parametrize("rule", ["FREQ=YEARLY", "RRULE:FREQ=YEARLY"])
def test_yearly_holiday_recurs(rule: str) -> None:
    xmas = date(2023, 12, 25)
    every_day = tuple(TemplateRule(wd, hm("09:00"), hm("17:00")) for wd in range(1, 8))
    sched = schedule(templates=every_day, holidays=(HolidayRule(xmas, rrule=rule),))
    first, last = date(2025, 12, 24), date(2025, 12, 26)
    got = {utc_date(w.start) for w in merged_windows(sched, first, last)}
    assert got == {date(2025, 12, 24), date(2025, 12, 26)}


def test_recurring_holiday_does_not_apply_before_its_start() -> None:
    sched = nine_to_five(holidays=(HolidayRule(MONDAY + timedelta(days=7), rrule="FREQ=WEEKLY"),))
    assert len(merged_windows(sched, MONDAY, MONDAY)) == 1


def test_holiday_with_utc_until_is_understood() -> None:
    holiday = HolidayRule(MONDAY, rrule="FREQ=WEEKLY;UNTIL=20240108T000000Z")
    sched = nine_to_five(holidays=(holiday,))
    weeks = [MONDAY + timedelta(days=7 * k) for k in range(3)]
    assert [len(merged_windows(sched, d, d)) for d in weeks] == [0, 0, 1]


def test_malformed_rrule_is_a_rule_error_not_silence() -> None:
    # It used to apply on its on_date only, silently: the host never learned the rule was
    # ignored. Now that staff member's recompute fails, naming the rule.
    sched = nine_to_five(holidays=(HolidayRule(MONDAY, rrule="FREQ=NONSENSE"),))
    with pytest.raises(RuleError, match="FREQ=NONSENSE is not one of"):
        merged_windows(sched, MONDAY, MONDAY)


# --- overrides ------------------------------------------------------------------------------


def test_available_override_replaces_the_templates() -> None:
    sched = nine_to_five(
        overrides=(
            OverrideRule(MONDAY, True, hm("07:00"), hm("08:00")),
            OverrideRule(MONDAY, True, hm("18:00"), hm("20:00"), location_id=LOC_A),
        )
    )
    assert merged_windows(sched, MONDAY, MONDAY) == [
        Window(at(MONDAY, "07:00"), at(MONDAY, "08:00"), None),
        Window(at(MONDAY, "18:00"), at(MONDAY, "20:00"), LOC_A),
    ]


def test_available_override_without_times_adds_nothing() -> None:
    # SPEC §5.1: the base is the available rows "with times"; the template still applies.
    sched = nine_to_five(overrides=(OverrideRule(MONDAY, True),))
    assert spans(merged_windows(sched, MONDAY, MONDAY)) == [(at(MONDAY, "09:00"), at(MONDAY, "17:00"))]


def test_unavailable_override_with_times_subtracts() -> None:
    sched = nine_to_five(overrides=(OverrideRule(MONDAY, False, hm("12:00"), hm("13:00")),))
    assert spans(merged_windows(sched, MONDAY, MONDAY)) == [
        (at(MONDAY, "09:00"), at(MONDAY, "12:00")),
        (at(MONDAY, "13:00"), at(MONDAY, "17:00")),
    ]


def test_unavailable_override_subtracts_from_an_available_override() -> None:
    sched = nine_to_five(
        overrides=(
            OverrideRule(MONDAY, True, hm("10:00"), hm("20:00")),
            OverrideRule(MONDAY, False, hm("08:00"), hm("11:00")),
        )
    )
    assert spans(merged_windows(sched, MONDAY, MONDAY)) == [(at(MONDAY, "11:00"), at(MONDAY, "20:00"))]


def test_unavailable_override_without_times_closes_the_day() -> None:
    sched = nine_to_five(
        overrides=(
            OverrideRule(MONDAY, True, hm("07:00"), hm("08:00")),
            OverrideRule(MONDAY, False),
        )
    )
    assert merged_windows(sched, MONDAY, MONDAY) == []


def test_weekly_override_applies_on_each_occurrence() -> None:
    weekly = OverrideRule(MONDAY, False, hm("09:00"), hm("13:00"), rrule="RRULE:FREQ=WEEKLY")
    sched = nine_to_five(overrides=(weekly,))
    last = MONDAY + timedelta(days=21)
    assert spans(merged_windows(sched, MONDAY, last)) == [
        (at(MONDAY + timedelta(days=7 * k), "13:00"), at(MONDAY + timedelta(days=7 * k), "17:00")) for k in range(4)
    ]


def test_biweekly_available_override() -> None:
    tuesday = MONDAY + timedelta(days=1)
    override = OverrideRule(MONDAY, True, hm("06:00"), hm("07:00"), rrule="FREQ=WEEKLY;INTERVAL=2")
    sched = schedule(
        templates=(tpl(MONDAY, "09:00", "10:00"), tpl(tuesday, "09:00", "10:00")),
        overrides=(override,),
    )
    got = merged_windows(sched, MONDAY, MONDAY + timedelta(days=15))
    expected = [
        (at(MONDAY, "06:00"), at(MONDAY, "07:00")),
        (at(tuesday, "09:00"), at(tuesday, "10:00")),
        (at(MONDAY + timedelta(days=7), "09:00"), at(MONDAY + timedelta(days=7), "10:00")),
        (at(tuesday + timedelta(days=7), "09:00"), at(tuesday + timedelta(days=7), "10:00")),
        (at(MONDAY + timedelta(days=14), "06:00"), at(MONDAY + timedelta(days=14), "07:00")),
        (at(tuesday + timedelta(days=14), "09:00"), at(tuesday + timedelta(days=14), "10:00")),
    ]
    assert spans(got) == expected


# --- templates ------------------------------------------------------------------------------


def test_template_validity_bounds_are_inclusive() -> None:
    rules = tuple(
        TemplateRule(wd, hm("09:00"), hm("10:00"), valid_from=date(2024, 1, 3), valid_until=date(2024, 1, 5))
        for wd in range(1, 8)
    )
    sched = schedule(templates=rules)
    got = [utc_date(w.start) for w in merged_windows(sched, MONDAY, date(2024, 1, 7))]
    assert got == [date(2024, 1, 3), date(2024, 1, 4), date(2024, 1, 5)]


def test_open_validity_bounds() -> None:
    rules = (
        tpl(MONDAY, "09:00", "10:00", valid_until=date(2024, 1, 8)),
        tpl(MONDAY, "11:00", "12:00", valid_from=date(2024, 1, 8)),
    )
    sched = schedule(templates=rules)
    got = spans(merged_windows(sched, MONDAY, date(2024, 1, 15)))
    week2, week3 = MONDAY + timedelta(days=7), MONDAY + timedelta(days=14)
    assert got == [
        (at(MONDAY, "09:00"), at(MONDAY, "10:00")),
        (at(week2, "09:00"), at(week2, "10:00")),
        (at(week2, "11:00"), at(week2, "12:00")),
        (at(week3, "11:00"), at(week3, "12:00")),
    ]


# --- locations ------------------------------------------------------------------------------


def test_touching_windows_of_different_locations_do_not_merge() -> None:
    sched = schedule(
        location_id=LOC_A,
        templates=(tpl(MONDAY, "09:00", "12:00"), tpl(MONDAY, "12:00", "15:00", location_id=LOC_B)),
    )
    windows = merged_windows(sched, MONDAY, MONDAY)
    assert windows == [
        Window(at(MONDAY, "09:00"), at(MONDAY, "12:00"), LOC_A),
        Window(at(MONDAY, "12:00"), at(MONDAY, "15:00"), LOC_B),
    ]
    got = generate_slots(sched, ServiceRule(SERVICE, 120, interval_min=60), windows, *EVERYTHING)
    # 11:00 would need both locations: not offered.
    assert [(s.starts_at, s.location_id) for s in got] == [
        (at(MONDAY, "09:00"), LOC_A),
        (at(MONDAY, "10:00"), LOC_A),
        (at(MONDAY, "12:00"), LOC_B),
        (at(MONDAY, "13:00"), LOC_B),
    ]


def test_overlapping_locations_give_one_slot_per_start() -> None:
    # Conflicting rows: the slot id (staff, service, start) admits one slot per start; the
    # first window (earliest start) wins where both offer the same start.
    sched = schedule(
        templates=(
            tpl(MONDAY, "09:00", "12:00", location_id=LOC_B),
            tpl(MONDAY, "10:00", "13:00", location_id=LOC_A),
        )
    )
    got = slots_of(sched, ServiceRule(SERVICE, 60), MONDAY)
    assert [(s.starts_at, s.location_id) for s in got] == [
        (at(MONDAY, "09:00"), LOC_B),
        (at(MONDAY, "10:00"), LOC_B),
        (at(MONDAY, "11:00"), LOC_B),
        (at(MONDAY, "12:00"), LOC_A),
    ]


# --- busy ranges and holds ------------------------------------------------------------------


def test_touching_busy_ranges_do_not_block() -> None:
    service = ServiceRule(SERVICE, 60, buffer_before_min=10, buffer_after_min=20)
    busy = (
        BusyRange(at(MONDAY, "08:00"), at(MONDAY, "08:50"), BusyKind.TIME_OFF),  # ends at 09:00-10
        BusyRange(at(MONDAY, "11:20"), at(MONDAY, "12:00"), BusyKind.BUSY),  # starts at 10:00+80
    )
    got = slots_of(nine_to_five(busy=busy), service, MONDAY)
    assert starts(got)[:2] == [at(MONDAY, "09:00"), at(MONDAY, "10:00")]
    # One minute more on either side blocks.
    busy2 = (
        BusyRange(at(MONDAY, "08:00"), at(MONDAY, "08:51"), BusyKind.TIME_OFF),
        BusyRange(at(MONDAY, "11:19"), at(MONDAY, "12:00"), BusyKind.BUSY),
    )
    got2 = slots_of(nine_to_five(busy=busy2), service, MONDAY)
    assert at(MONDAY, "09:00") not in starts(got2)
    assert at(MONDAY, "10:00") not in starts(got2)


def test_buffers_may_lie_outside_working_hours() -> None:
    service = ServiceRule(SERVICE, 60, buffer_before_min=30, buffer_after_min=30)
    got = slots_of(nine_to_five(), service, MONDAY)
    assert starts(got)[0] == at(MONDAY, "09:00")
    assert starts(got)[-1] == at(MONDAY, "16:00")


def test_busy_range_skips_to_next_grid_start() -> None:
    busy = (BusyRange(at(MONDAY, "10:10"), at(MONDAY, "11:05"), BusyKind.BOOKED),)
    got = slots_of(nine_to_five(busy=busy), ServiceRule(SERVICE, 30, interval_min=15), MONDAY)
    assert at(MONDAY, "09:30") in starts(got)
    assert at(MONDAY, "09:45") not in starts(got)
    assert at(MONDAY, "11:00") not in starts(got)
    assert at(MONDAY, "11:15") in starts(got)


def test_empty_busy_range_blocks_nothing() -> None:
    busy = (BusyRange(at(MONDAY, "10:00"), at(MONDAY, "10:00"), BusyKind.BUSY),)
    assert len(slots_of(nine_to_five(busy=busy), ServiceRule(SERVICE, 60), MONDAY)) == 8


def test_holds_set_held_until_but_keep_the_slot() -> None:
    service = ServiceRule(SERVICE, 60, buffer_after_min=15)
    holds = (
        LiveHold(at(MONDAY, "10:00"), at(MONDAY, "11:00"), expires_at=1000, booking_id="h1"),
        LiveHold(at(MONDAY, "10:30"), at(MONDAY, "11:30"), expires_at=3000, booking_id="h2"),
        LiveHold(at(MONDAY, "13:00"), at(MONDAY, "13:30"), expires_at=2000, booking_id="h3"),
    )
    got = slots_of(nine_to_five(holds=holds), service, MONDAY)
    held = {datetime.fromtimestamp(s.starts_at, UTC).strftime("%H:%M"): s.held_until for s in got}
    assert held == {
        "09:00": 1000,  # blocked 09:00-10:15 overlaps h1 only
        "10:00": 3000,
        "11:00": 3000,  # 11:00-12:15 overlaps h2 (until 11:30), not h1 (ends 11:00)
        "12:00": 2000,  # 12:00-13:15 overlaps h3
        "13:00": 2000,
        "14:00": None,
        "15:00": None,
        "16:00": None,
    }


# --- the grid -------------------------------------------------------------------------------


def test_grid_stays_anchored_when_lo_is_mid_window() -> None:
    sched = nine_to_five()
    windows = merged_windows(sched, MONDAY, MONDAY)
    service = ServiceRule(SERVICE, 45)
    got = generate_slots(sched, service, windows, at(MONDAY, "10:00"), at(MONDAY, "13:00"))
    assert starts(got) == [at(MONDAY, c) for c in ("10:30", "11:15", "12:00", "12:45")]


def test_lo_on_grid_is_included_and_hi_excluded() -> None:
    sched = nine_to_five()
    windows = merged_windows(sched, MONDAY, MONDAY)
    got = generate_slots(sched, ServiceRule(SERVICE, 60), windows, at(MONDAY, "10:00"), at(MONDAY, "12:00"))
    assert starts(got) == [at(MONDAY, "10:00"), at(MONDAY, "11:00")]


def test_last_slot_must_end_by_window_end() -> None:
    got = slots_of(nine_to_five(), ServiceRule(SERVICE, 50, interval_min=20), MONDAY)
    assert starts(got)[-1] == at(MONDAY, "16:00")  # 16:00-16:50; 16:20 would end 17:10


def test_service_without_positive_duration_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        slots_of(nine_to_five(), ServiceRule(SERVICE, 0), MONDAY)


# --- compute_slots --------------------------------------------------------------------------


def test_compute_slots_orders_by_service_then_start() -> None:
    a = ServiceRule(UUID(int=20), 60)
    b = ServiceRule(UUID(int=21), 30, interval_min=120)
    sched = nine_to_five(busy=(BusyRange(at(MONDAY, "12:00"), at(MONDAY, "13:00"), BusyKind.BUSY),))
    lo, hi = at(MONDAY, "10:00"), at(MONDAY, "23:00")
    got = compute_slots(sched, [b, a], MONDAY, MONDAY, lo, hi)
    windows = merged_windows(sched, MONDAY, MONDAY)
    expected = generate_slots(sched, b, windows, lo, hi) + generate_slots(sched, a, windows, lo, hi)
    assert got == expected
    assert [s.service_id for s in got] == [b.id] * 3 + [a.id] * 6


def test_compute_slots_without_windows_is_empty() -> None:
    assert compute_slots(schedule(), [ServiceRule(SERVICE, 30)], MONDAY, MONDAY, 0, 2**40) == []


def test_fast_slot_construction_matches_the_dataclass() -> None:
    got = slots_of(nine_to_five(location_id=LOC_A), ServiceRule(SERVICE, 60), MONDAY)[0]
    made = Slot(STAFF, SERVICE, LOC_A, at(MONDAY, "09:00"), at(MONDAY, "10:00"), None)
    assert got == made
    assert hash(got) == hash(made)
    assert repr(got) == repr(made)


# --- slot ids -------------------------------------------------------------------------------


def test_slot_ids_are_deterministic_and_distinct() -> None:
    tenant = UUID("6f1c7a52-8a52-4c1e-9e0a-2c9c1f0b7a11")
    start = at(MONDAY, "09:00")
    sid = slot_id(tenant, STAFF, SERVICE, start)
    assert sid == slot_id(tenant, STAFF, SERVICE, start)
    assert re.fullmatch(r"[0-9a-f]{32}", sid)
    assert sid.startswith(slot_id_prefix(tenant, STAFF, SERVICE))
    assert sid.endswith(f"{start // 60:08x}")
    others = {
        slot_id(tenant, STAFF, SERVICE, start + 60),
        slot_id(tenant, SERVICE, STAFF, start),
        slot_id(UUID(int=3), STAFF, SERVICE, start),
        slot_id(tenant, STAFF, UUID(int=4), start),
    }
    assert sid not in others
    assert len(others) == 4
