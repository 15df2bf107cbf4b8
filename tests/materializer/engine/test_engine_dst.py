"""Wall-clock windows across DST changes (SPEC §5.1): exact instants, by hand.

A local window on date d is the set of instants whose wall-clock time on d lies in
[start, end); see the module docstring of materializer.engine for the edge-case choices.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import UUID

from slotmill.materializer.engine import generate_slots, merged_windows
from slotmill.materializer.model import ServiceRule, StaffSchedule, TemplateRule, Window

STAFF = UUID(int=1)
SERVICE = UUID(int=2)


def ts(text: str) -> int:
    """'2024-10-26T23:00' (UTC) -> epoch seconds."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def hm(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


def day_windows(zone: str, day: date, start: str, end: str) -> list[tuple[int, int]]:
    """Windows of one template row that applies on ``day`` only."""
    rule = TemplateRule(day.isoweekday(), hm(start), hm(end), valid_from=day, valid_until=day)
    schedule = StaffSchedule(STAFF, zone, templates=(rule,))
    return [(w.start, w.end) for w in merged_windows(schedule, day, day)]


# --- the SPEC's and the brief's examples ---------------------------------------------------


def test_london_fall_back_midnight_to_two_is_three_hours() -> None:
    got = day_windows("Europe/London", date(2024, 10, 27), "00:00", "02:00")
    assert got == [(ts("2024-10-26T23:00"), ts("2024-10-27T02:00"))]
    assert got[0][1] - got[0][0] == 3 * 3600


def test_new_york_spring_forward_afternoon() -> None:
    got = day_windows("America/New_York", date(2026, 3, 8), "13:00", "18:00")
    assert got == [(ts("2026-03-08T17:00"), ts("2026-03-08T22:00"))]


def test_new_york_fall_back_afternoon() -> None:
    got = day_windows("America/New_York", date(2026, 11, 1), "13:00", "18:00")
    assert got == [(ts("2026-11-01T18:00"), ts("2026-11-01T23:00"))]


def test_london_spring_forward_midnight_to_three_is_two_hours() -> None:
    got = day_windows("Europe/London", date(2025, 3, 30), "00:00", "03:00")
    assert got == [(ts("2025-03-30T00:00"), ts("2025-03-30T02:00"))]


# --- gap (spring forward) edges -------------------------------------------------------------


def test_start_in_gap_resolves_to_gap_end() -> None:
    # 01:00-02:00 does not exist in London on 2025-03-30; 02:00 BST is 01:00Z.
    got = day_windows("Europe/London", date(2025, 3, 30), "01:30", "03:00")
    assert got == [(ts("2025-03-30T01:00"), ts("2025-03-30T02:00"))]


def test_end_in_gap_resolves_to_gap_end() -> None:
    got = day_windows("Europe/London", date(2025, 3, 30), "00:00", "01:30")
    assert got == [(ts("2025-03-30T00:00"), ts("2025-03-30T01:00"))]


def test_window_entirely_in_gap_is_empty() -> None:
    assert day_windows("Europe/London", date(2025, 3, 30), "01:00", "02:00") == []


def test_new_york_whole_days_are_23_and_25_hours() -> None:
    spring = day_windows("America/New_York", date(2026, 3, 8), "00:00", "24:00")
    fall = day_windows("America/New_York", date(2026, 11, 1), "00:00", "24:00")
    assert spring == [(ts("2026-03-08T05:00"), ts("2026-03-09T04:00"))]
    assert fall == [(ts("2026-11-01T04:00"), ts("2026-11-02T05:00"))]


# --- ambiguous (fall back) edges ------------------------------------------------------------


def test_repeated_hour_is_worked_twice() -> None:
    # 01:00-02:00 happens at 00:00Z-01:00Z (BST) and again at 01:00Z-02:00Z (GMT).
    got = day_windows("Europe/London", date(2024, 10, 27), "01:00", "02:00")
    assert got == [(ts("2024-10-27T00:00"), ts("2024-10-27T02:00"))]


def test_ambiguous_end_uses_second_occurrence() -> None:
    got = day_windows("Europe/London", date(2024, 10, 27), "00:00", "01:30")
    # Wall 00:00-01:30 BST, then 01:00-01:30 GMT: 23:00Z-00:30Z and 01:00Z-01:30Z.
    assert got == [
        (ts("2024-10-26T23:00"), ts("2024-10-27T00:30")),
        (ts("2024-10-27T01:00"), ts("2024-10-27T01:30")),
    ]


def test_start_inside_repeated_hour_splits_the_window() -> None:
    # 01:00Z-01:30Z reads 01:00-01:30 GMT, which is before 01:30: not working time.
    got = day_windows("Europe/London", date(2024, 10, 27), "01:30", "03:00")
    assert got == [
        (ts("2024-10-27T00:30"), ts("2024-10-27T01:00")),
        (ts("2024-10-27T01:30"), ts("2024-10-27T03:00")),
    ]


def test_adjacent_rules_fill_the_split() -> None:
    day = date(2024, 10, 27)
    rules = (
        TemplateRule(day.isoweekday(), hm("00:00"), hm("01:30")),
        TemplateRule(day.isoweekday(), hm("01:30"), hm("03:00")),
    )
    schedule = StaffSchedule(STAFF, "Europe/London", templates=rules)
    assert merged_windows(schedule, day, day) == [Window(ts("2024-10-26T23:00"), ts("2024-10-27T03:00"), None)]


# --- other zones ----------------------------------------------------------------------------


def test_lord_howe_half_hour_fall_back() -> None:
    # 2024-04-07 02:00 +11 -> 01:30 +10:30 (at 15:00Z on the 6th): the day lasts 24.5 h.
    got = day_windows("Australia/Lord_Howe", date(2024, 4, 7), "00:00", "24:00")
    assert got == [(ts("2024-04-06T13:00"), ts("2024-04-07T13:30"))]
    # 01:30-02:00 happens twice: 14:30Z-15:00Z (+11) and 15:00Z-15:30Z (+10:30).
    twice = day_windows("Australia/Lord_Howe", date(2024, 4, 7), "01:30", "02:00")
    assert twice == [(ts("2024-04-06T14:30"), ts("2024-04-06T15:30"))]


def test_kolkata_half_hour_offset() -> None:
    got = day_windows("Asia/Kolkata", date(2024, 3, 31), "09:00", "17:00")
    assert got == [(ts("2024-03-31T03:30"), ts("2024-03-31T11:30"))]


def test_sao_paulo_midnight_gap_merges_across_midnight() -> None:
    # 2018-11-04 00:00 -03 jumped to 01:00 -02 (at 03:00Z): 24:00 of the 3rd and the
    # first wall time of the 4th are the same instant, so the windows touch and merge.
    rules = (
        TemplateRule(date(2018, 11, 3).isoweekday(), hm("22:00"), hm("24:00")),
        TemplateRule(date(2018, 11, 4).isoweekday(), hm("00:00"), hm("02:00")),
    )
    schedule = StaffSchedule(STAFF, "America/Sao_Paulo", templates=rules)
    got = merged_windows(schedule, date(2018, 11, 3), date(2018, 11, 4))
    assert got == [Window(ts("2018-11-04T01:00"), ts("2018-11-04T04:00"), None)]


def test_sao_paulo_fall_back_at_midnight_repeats_late_evening() -> None:
    # 2019-02-17 00:00 -02 fell back to 2019-02-16 23:00 -03 (at 02:00Z on the 17th).
    got = day_windows("America/Sao_Paulo", date(2019, 2, 16), "22:00", "24:00")
    assert got == [(ts("2019-02-17T00:00"), ts("2019-02-17T03:00"))]


def test_utc_days_are_plain() -> None:
    got = day_windows("UTC", date(2024, 10, 27), "09:00", "17:00")
    assert got == [(ts("2024-10-27T09:00"), ts("2024-10-27T17:00"))]


# --- the grid steps in elapsed time ---------------------------------------------------------


def test_grid_steps_in_elapsed_time_across_fall_back() -> None:
    day = date(2024, 10, 27)
    rule = TemplateRule(day.isoweekday(), hm("00:00"), hm("03:00"))
    schedule = StaffSchedule(STAFF, "Europe/London", templates=(rule,))
    windows = merged_windows(schedule, day, day)
    slots = generate_slots(schedule, ServiceRule(SERVICE, 60), windows, 0, 2**40)
    assert [s.starts_at for s in slots] == [
        ts("2024-10-26T23:00"),
        ts("2024-10-27T00:00"),
        ts("2024-10-27T01:00"),
        ts("2024-10-27T02:00"),
    ]
    assert all(s.ends_at - s.starts_at == 3600 for s in slots)


def test_grid_steps_in_elapsed_time_across_spring_forward() -> None:
    day = date(2026, 3, 8)
    rule = TemplateRule(day.isoweekday(), hm("00:00"), hm("04:00"))
    schedule = StaffSchedule(STAFF, "America/New_York", templates=(rule,))
    windows = merged_windows(schedule, day, day)
    slots = generate_slots(schedule, ServiceRule(SERVICE, 90), windows, 0, 2**40)
    # 00:00 EST = 05:00Z .. 04:00 EDT = 08:00Z: three hours, two 90-minute slots.
    assert [s.starts_at for s in slots] == [ts("2026-03-08T05:00"), ts("2026-03-08T06:30")]
