"""The demo tenant: a small hair-and-beauty salon with two locations in two zones.

Dates are relative to today so the demo always has a live week to look at.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg

from slotmill import seed

DEMO_SLUG = "demo"
Conn = psycopg.Connection[Any]


def demo_exists(conn: Conn) -> bool:
    return conn.execute("SELECT 1 FROM tenants WHERE slug = %s", (DEMO_SLUG,)).fetchone() is not None


def _at(d: date, hh: int, mm: int, zone: str) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _next_weekday(d: date, iso: int) -> date:
    return d + timedelta(days=(iso - d.isoweekday()) % 7 or 7)


def load_demo(conn: Conn, *, today: date | None = None) -> UUID:
    """Create the demo tenant in the caller's transaction; returns its id."""
    today = today or datetime.now(ZoneInfo("Europe/London")).date()
    t = seed.tenant(
        conn,
        DEMO_SLUG,
        name="Fern & Finch Salon",
        timezone="Europe/London",
        horizon_days=60,
        settings={"min_notice_minutes": 60, "hold_ttl_seconds": 300, "cancellation_deadline_hours": 24},
    )
    london = seed.location(conn, t, "Fern & Finch, Shoreditch")
    brooklyn = seed.location(conn, t, "Fern & Finch, Brooklyn", timezone="America/New_York")

    ava = seed.staff(conn, t, "Ava Clarke", location_id=london, priority=10)
    ben = seed.staff(conn, t, "Ben Okafor", location_id=london, priority=20)
    chloe = seed.staff(conn, t, "Chloé Martin", location_id=london, priority=30)
    diego = seed.staff(conn, t, "Diego Reyes", location_id=brooklyn, priority=10)
    emi = seed.staff(conn, t, "Emi Tanaka", location_id=brooklyn, priority=20)

    cut = seed.service(conn, t, "Haircut", 45, after=15, interval=15, staff_ids=[ava, ben, chloe, diego, emi])
    colour = seed.service(conn, t, "Colour", 120, before=15, after=15, interval=30, staff_ids=[ava, chloe, emi])
    beard = seed.service(conn, t, "Beard trim", 20, interval=10, min_notice=120, staff_ids=[ben, diego])
    seed.service(conn, t, "Consultation", 15, interval=15, max_advance_days=14, staff_ids=[ava, diego])

    # Ava: weekdays with a lunch break (a split shift).
    seed.template(conn, t, ava, [1, 2, 3, 4, 5], "09:00", "13:00")
    seed.template(conn, t, ava, [1, 2, 3, 4, 5], "14:00", "18:00")
    # Ben: Tuesday to Saturday, long days.
    seed.template(conn, t, ben, [2, 3, 4, 5, 6], "10:00", "19:00")
    # Chloé: late shifts, and a Thursday that runs to 22:00.
    seed.template(conn, t, chloe, [1, 3, 5], "12:00", "20:00")
    seed.template(conn, t, chloe, [4], "12:00", "22:00")
    # Diego (New York): weekdays.
    seed.template(conn, t, diego, [1, 2, 3, 4, 5], "09:00", "17:00")
    # Emi (New York): Wednesday and weekends.
    seed.template(conn, t, emi, [3, 6, 7], "10:00", "16:00")

    # Tenant-wide: Christmas every year; staff: Diego's own day off for Thanksgiving.
    seed.holiday(conn, t, date(today.year, 12, 25), "Christmas Day", rrule="FREQ=YEARLY")
    seed.holiday(conn, t, date(today.year, 12, 26), "Boxing Day", rrule="FREQ=YEARLY")
    thanksgiving = date(today.year, 11, 1) + timedelta(days=(3 - date(today.year, 11, 1).weekday()) % 7 + 21)
    seed.holiday(conn, t, thanksgiving, "Thanksgiving", staff_id=diego)

    # Ava works a Saturday morning next week instead of her Friday.
    sat = _next_weekday(today, 6)
    seed.override(conn, t, ava, sat, available=True, start="09:00", end="13:00", reason="Saturday cover")
    seed.override(conn, t, ava, sat - timedelta(days=1), available=False, reason="Swapped for Saturday")
    # Chloé: a training afternoon every other Monday.
    mon = _next_weekday(today, 1)
    seed.override(
        conn,
        t,
        chloe,
        mon,
        available=False,
        start="12:00",
        end="15:00",
        rrule="FREQ=WEEKLY;INTERVAL=2",
        reason="Training",
    )

    # Ben is away for two days next week.
    thu = _next_weekday(today, 4)
    seed.time_off(
        conn, t, ben, _at(thu, 0, 0, "Europe/London"), _at(thu + timedelta(days=2), 0, 0, "Europe/London"), "Holiday"
    )
    # Diego's dentist appointment from his calendar.
    tue = _next_weekday(today, 2)
    seed.busy(
        conn,
        t,
        diego,
        _at(tue, 11, 0, "America/New_York"),
        _at(tue, 12, 30, "America/New_York"),
        source="google",
        external_id="evt-dentist",
    )

    # Some confirmed bookings over the next days.
    for offset, staff_id, service_id, hh, mm, zone, ref in [
        (1, ava, cut, 10, 0, "Europe/London", "cust-1001"),
        (1, ava, colour, 14, 30, "Europe/London", "cust-1002"),
        (2, ben, beard, 11, 0, "Europe/London", "cust-1003"),
        (2, chloe, cut, 15, 0, "Europe/London", "cust-1004"),
        (3, diego, cut, 9, 0, "America/New_York", "cust-1005"),
        (3, emi, colour, 10, 0, "America/New_York", "cust-1006"),
    ]:
        d = today + timedelta(days=offset)
        start = _at(d, hh, mm, zone)
        duration = {cut: 45, colour: 120, beard: 20}[service_id]
        try:
            with conn.transaction():
                seed.booking(
                    conn, t, staff_id, service_id, start, start + timedelta(minutes=duration), customer_ref=ref
                )
        except psycopg.errors.ExclusionViolation:
            pass  # cannot happen on a fresh tenant; a booking on a day off is harmless
    return t
