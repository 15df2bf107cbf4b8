"""The engine is bounded: a host's rule can make a staff member's recompute fail, quickly and
with a reason, but never hang it; and a 24/7 grid does not move as the horizon rolls."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest

from slotmill.materializer.engine import compute_slots, explain, merged_windows
from slotmill.materializer.engine.budget import MAX_SLOTS_PER_STAFF, BudgetExceeded
from slotmill.materializer.engine.recurrence import applies_on, rrule_problem
from slotmill.materializer.horizon import horizon_for, window_dates
from slotmill.materializer.model import (
    HolidayRule,
    OverrideRule,
    ReasonCode,
    RuleError,
    ServiceRule,
    StaffSchedule,
    TemplateRule,
)

STAFF = UUID(int=1)
SERVICE = ServiceRule(UUID(int=2), duration_min=50)  # 50 does not divide 1440
NOV = date(2026, 11, 2)
FIRST, LAST = date(2026, 11, 1), date(2027, 2, 1)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL must be a whole number"),
        ("FREQ=SECONDLY", "at most daily"),
        ("FREQ=MINUTELY", "at most daily"),
        ("FREQ=HOURLY;BYHOUR=9", "at most daily"),
        ("FREQ=DAILY;BYHOUR=9", "no times of day"),
        ("FREQ=NONSENSE", "is not one of"),
        ("BYDAY=MO", "FREQ is required"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20270101", "cannot both be given"),
        ("FREQ=DAILY;UNTIL=99991231", "1900 to 2200"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "out of range"),
        ("FREQ=WEEKLY;BYDAY=XX", "not a weekday"),
        ("FREQ=WEEKLY;FREQ=DAILY", "given twice"),
        ("garbage", "not NAME=VALUE"),
        ("DTSTART:20200101\nRRULE:FREQ=DAILY", "not NAME=VALUE"),
    ],
)
def test_bad_rules_are_named_not_expanded(rule: str, problem: str) -> None:
    found = rrule_problem(rule)
    assert found is not None and problem in found
    started = time.monotonic()
    with pytest.raises(RuleError, match="recurrence"):
        applies_on(rule, date(2020, 1, 1), FIRST, LAST)
    assert time.monotonic() - started < 1.0  # refused before any expansion (not a timing threshold on work)


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
        "RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270101T000000Z",
        "FREQ=MONTHLY;BYDAY=-1FR;COUNT=20",
        "freq=daily;interval=2",
    ],
)
def test_good_rules_pass(rule: str) -> None:
    assert rrule_problem(rule) is None
    assert applies_on(rule, date(2026, 1, 1), FIRST, LAST)


def test_a_rule_that_never_matches_fails_on_its_time_budget() -> None:
    # Daily, but only on February 30th: dateutil would search every day up to year 9999.
    with pytest.raises(BudgetExceeded, match="took longer than"):
        applies_on("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", date(2020, 1, 1), FIRST, LAST)


def test_a_daily_rule_from_1900_is_expanded_to_the_horizon_only() -> None:
    days = applies_on("FREQ=DAILY", date(1900, 1, 1), FIRST, LAST)
    assert len(days) == (LAST - FIRST).days + 1


def test_a_recurrence_starting_outside_the_scheduled_years_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match="outside the years"):
        applies_on("FREQ=YEARLY", date(1, 1, 1), FIRST, LAST)


def test_a_bad_override_rule_fails_that_schedule() -> None:
    sched = StaffSchedule(
        STAFF,
        "Europe/London",
        templates=(TemplateRule(1, 540, 1020),),
        overrides=(OverrideRule(NOV, False, rrule="FREQ=DAILY;INTERVAL=0"),),
    )
    with pytest.raises(RuleError, match="INTERVAL"):
        merged_windows(sched, FIRST, LAST)


def test_too_many_slots_is_a_budget_error() -> None:
    # Every minute, around the clock, for a year, for five services: far past the budget.
    every_minute = [ServiceRule(UUID(int=10 + i), duration_min=1) for i in range(5)]
    sched = StaffSchedule(STAFF, "UTC", templates=tuple(TemplateRule(d, 0, 1440) for d in range(1, 8)))
    lo = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
    with pytest.raises(BudgetExceeded, match=str(MAX_SLOTS_PER_STAFF)):
        compute_slots(sched, every_minute, FIRST, FIRST + timedelta(days=366), lo, lo + 366 * 86400)


def _slots_seen_from(today: date) -> set[int]:
    """A 24/7 staff member's 50-minute grid as a refresh on ``today`` computes it."""
    sched = StaffSchedule(STAFF, "Europe/London", templates=tuple(TemplateRule(d, 0, 1440) for d in range(1, 8)))
    now = int(datetime.combine(today, datetime.min.time(), tzinfo=UTC).timestamp()) + 3600
    h = horizon_for("Europe/London", 60, now)
    first, last = window_dates(h)
    return {s.starts_at for s in compute_slots(sched, [SERVICE], first, last, h.start, h.end)}


def test_a_24_7_grid_does_not_move_as_the_horizon_rolls() -> None:
    # 50 minutes does not divide a day: anchored at the window's (cut) start, the grid
    # moved every midnight, so ids changed and verify failed until the nightly refresh.
    monday, tuesday = _slots_seen_from(NOV), _slots_seen_from(NOV + timedelta(days=1))
    overlap_lo = int(datetime(2026, 11, 4, tzinfo=UTC).timestamp())
    overlap_hi = int(datetime(2026, 12, 30, tzinfo=UTC).timestamp())
    a = {t for t in monday if overlap_lo <= t < overlap_hi}
    b = {t for t in tuesday if overlap_lo <= t < overlap_hi}
    assert a and a == b
    # Anchored at the epoch: every start is a whole number of intervals after 1970.
    assert all(t % (50 * 60) == 0 for t in a)


def test_explain_agrees_with_the_epoch_anchored_grid() -> None:
    sched = StaffSchedule(STAFF, "UTC", templates=tuple(TemplateRule(d, 0, 1440) for d in range(1, 8)))
    t = 3000 * (int(datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp()) // 3000)
    common = {
        "qualified": True,
        "active": True,
        "now": t - 86400,
        "min_notice_s": 0,
        "advance_limit": t + 86400 * 90,
        "horizon_end": t + 86400 * 60,
        "first": FIRST,
        "last": LAST,
    }
    assert explain(sched, SERVICE, starts_at=t, **common).available
    off = explain(sched, SERVICE, starts_at=t + 600, **common)
    assert not off.available and off.reasons[0].code == ReasonCode.OFF_GRID


def test_a_holiday_with_a_bad_rule_fails_explain_with_the_reason() -> None:
    sched = StaffSchedule(
        STAFF,
        "UTC",
        templates=(TemplateRule(1, 540, 1020),),
        holidays=(HolidayRule(NOV, rrule="FREQ=SECONDLY"),),
    )
    t = int(datetime(2026, 11, 9, 10, tzinfo=UTC).timestamp())
    with pytest.raises(RuleError, match="SECONDLY"):
        explain(
            sched,
            SERVICE,
            qualified=True,
            active=True,
            starts_at=t,
            now=t - 86400,
            min_notice_s=0,
            advance_limit=t + 86400,
            horizon_end=t + 86400,
            first=FIRST,
            last=LAST,
        )
