"""The demo tenant: a small hair-and-beauty salon with three locations in two zones.

It shows every rule: split shifts, overrides, holidays, time off, calendar busy times,
buffers, a group workshop sold by the seat, a treatment room two stylists share, a daily
booking limit, and travel time between the two London branches.

Dates are relative to today so the demo always has a live week to look at. Ids are not:
every named row's id is a uuid5 of its kind and name, so the staff, service and location ids
a newcomer copies into a URL stay the same across ``slotmill demo --reset`` and on every
machine. A reset keeps the tenant row and its host keys and reloads everything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from slotmill import seed

DEMO_SLUG = "demo"
# Fixed forever: changing it changes every demo id.
DEMO_NAMESPACE = UUID("8772fcb6-3a53-4f85-b695-80dc0fb2cbed")
DEMO_NAME = "Fern & Finch Salon"
DEMO_ZONE = "Europe/London"
DEMO_HORIZON_DAYS = 60
# The demo's booking page confirms by itself with this publishable key (a public value by
# design: any page that embeds the widget shows it), and may be embedded on a page served
# from port 8080 of this machine (docs/embed-example.html: `python -m http.server 8080`).
DEMO_PUBLISHABLE_KEY = "smp_demo_fernandfinch_0000000000000000"
DEMO_SETTINGS: dict[str, Any] = {
    "min_notice_minutes": 60,
    "hold_ttl_seconds": 300,
    "cancellation_deadline_hours": 24,
    "public_confirm": True,
    "publishable_key": DEMO_PUBLISHABLE_KEY,
    "allowed_origins": ["http://localhost:8080", "http://127.0.0.1:8080"],
}
Conn = psycopg.Connection[Any]


def demo_id(kind: str, name: str) -> UUID:
    """The id of the demo's ``kind`` row named ``name`` (e.g. ``demo_id("staff", "Ava Clarke")``)."""
    return uuid5(DEMO_NAMESPACE, f"{kind}:{name}")


@dataclass(frozen=True)
class ResetResult:
    tenant_id: UUID
    kept_keys: int  # live host keys (api_keys not revoked) that still work after the reset


def demo_exists(conn: Conn) -> bool:
    return conn.execute("SELECT 1 FROM tenants WHERE slug = %s", (DEMO_SLUG,)).fetchone() is not None


def _at(d: date, hh: int, mm: int, zone: str) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _next_weekday(d: date, iso: int) -> date:
    return d + timedelta(days=(iso - d.isoweekday()) % 7 or 7)


def load_demo(conn: Conn, *, today: date | None = None) -> UUID:
    """Create the demo tenant in the caller's transaction; returns its id."""
    t = seed.tenant(
        conn,
        DEMO_SLUG,
        name=DEMO_NAME,
        timezone=DEMO_ZONE,
        horizon_days=DEMO_HORIZON_DAYS,
        settings=DEMO_SETTINGS,
        id=demo_id("tenant", DEMO_SLUG),
    )
    _load_contents(conn, t, today)
    return t


def reset_demo(conn: Conn, *, today: date | None = None) -> ResetResult:
    """Reload the demo tenant's contents in the caller's transaction, keeping the tenant row
    (and so its id and its host keys); loads it afresh when there is none."""
    row = conn.execute(
        "UPDATE tenants SET name = %s, timezone = %s, horizon_days = %s, settings = %s WHERE slug = %s RETURNING id",
        (DEMO_NAME, DEMO_ZONE, DEMO_HORIZON_DAYS, Jsonb(DEMO_SETTINGS), DEMO_SLUG),
    ).fetchone()
    if row is None:
        return ResetResult(load_demo(conn, today=today), 0)
    t = UUID(str(row[0]))
    # Children first: bookings point at staff and services without a cascade; deleting staff
    # cascades to their links, templates, overrides, own holidays, time off and busy times.
    for table in (
        "bookings",  # and, by cascade, the resources they hold
        "idempotency_keys",
        "availability_slots",
        "holidays",
        "staff",
        "services",
        "resources",
        "locations",  # and, by cascade, the travel times between them
    ):
        conn.execute(sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(sql.Identifier(table)), (t,))
    keys = conn.execute("SELECT count(*) FROM api_keys WHERE tenant_id = %s AND revoked_at IS NULL", (t,)).fetchone()
    _load_contents(conn, t, today)
    return ResetResult(t, int(keys[0]) if keys else 0)


def _load_contents(conn: Conn, t: UUID, today: date | None) -> None:
    today = today or datetime.now(ZoneInfo(DEMO_ZONE)).date()

    def location(name: str, **kw: Any) -> UUID:
        return seed.location(conn, t, name, id=demo_id("location", name), **kw)

    def staff(name: str, **kw: Any) -> UUID:
        return seed.staff(conn, t, name, id=demo_id("staff", name), **kw)

    def service(name: str, duration: int, **kw: Any) -> UUID:
        return seed.service(conn, t, name, duration, id=demo_id("service", name), **kw)

    london = location("Fern & Finch, Shoreditch")
    camden = location("Fern & Finch, Camden")
    brooklyn = location("Fern & Finch, Brooklyn", timezone="America/New_York")

    ava = staff("Ava Clarke", location_id=london, priority=10)
    ben = staff("Ben Okafor", location_id=london, priority=20)
    chloe = staff("Chloé Martin", location_id=london, priority=30)
    diego = staff("Diego Reyes", location_id=brooklyn, priority=10)
    emi = staff("Emi Tanaka", location_id=brooklyn, priority=20)

    cut = service("Haircut", 45, after=15, interval=15, staff_ids=[ava, ben, chloe, diego, emi])
    colour = service("Colour", 120, before=15, after=15, interval=30, staff_ids=[ava, chloe, emi])
    beard = service("Beard trim", 20, interval=10, min_notice=120, staff_ids=[ben, diego])
    service("Consultation", 15, interval=15, max_advance_days=14, staff_ids=[ava, diego])
    # A group workshop sold by the seat: Ben teaches it on Saturday afternoons.
    workshop = service("Styling workshop", 90, staff_ids=[ben])
    # A scalp treatment needs the one treatment room Ava and Chloé share.
    scalp = service("Scalp treatment", 45, after=15, interval=15, staff_ids=[ava, chloe])
    conn.execute("UPDATE services SET seats = 8 WHERE id = %s", (workshop,))
    conn.execute(
        "INSERT INTO resources (tenant_id, id, location_id, kind, name) VALUES (%s, %s, %s, 'treatment room', %s)",
        (t, demo_id("resource", "Treatment room"), london, "Treatment room"),
    )
    conn.execute(
        "INSERT INTO service_resources (tenant_id, id, service_id, kind) VALUES (%s, %s, %s, 'treatment room')",
        (t, demo_id("service_resource", "Scalp treatment: treatment room"), scalp),
    )
    # Ava takes at most six bookings a day.
    conn.execute("UPDATE staff SET max_bookings_per_day = 6 WHERE id = %s", (ava,))
    # Shoreditch and Camden are 30 minutes apart either way.
    for a, b, name in ((london, camden, "Shoreditch to Camden"), (camden, london, "Camden to Shoreditch")):
        conn.execute(
            "INSERT INTO location_travel (tenant_id, id, from_location_id, to_location_id, minutes)"
            " VALUES (%s, %s, %s, %s, 30)",
            (t, demo_id("travel", name), a, b),
        )

    # Ava: weekdays with a lunch break (a split shift).
    seed.template(conn, t, ava, [1, 2, 3, 4, 5], "09:00", "13:00")
    seed.template(conn, t, ava, [1, 2, 3, 4, 5], "14:00", "18:00")
    # Ben: Tuesday to Friday, long days; Saturday mornings, and his workshop at 16:00.
    seed.template(conn, t, ben, [2, 3, 4, 5], "10:00", "19:00")
    seed.template(conn, t, ben, [6], "10:00", "14:00")
    seed.template(conn, t, ben, [6], "16:00", "17:30")
    # Chloé: late shifts in Shoreditch, and a Thursday in Camden that runs to 22:00.
    seed.template(conn, t, chloe, [1, 3, 5], "12:00", "20:00")
    seed.template(conn, t, chloe, [4], "12:00", "22:00", location_id=camden)
    # Diego (New York): weekdays.
    seed.template(conn, t, diego, [1, 2, 3, 4, 5], "09:00", "17:00")
    # Emi (New York): Wednesday and weekends.
    seed.template(conn, t, emi, [3, 6, 7], "10:00", "16:00")

    # Tenant-wide: Christmas every year; staff: Diego's own day off for Thanksgiving.
    def holiday(on: date, name: str, **kw: Any) -> None:
        seed.holiday(conn, t, on, name, id=demo_id("holiday", name), **kw)

    holiday(date(today.year, 12, 25), "Christmas Day", rrule="FREQ=YEARLY")
    holiday(date(today.year, 12, 26), "Boxing Day", rrule="FREQ=YEARLY")
    thanksgiving = date(today.year, 11, 1) + timedelta(days=(3 - date(today.year, 11, 1).weekday()) % 7 + 21)
    holiday(thanksgiving, "Thanksgiving", staff_id=diego)

    def override(staff_id: UUID, on: date, reason: str, **kw: Any) -> None:
        seed.override(conn, t, staff_id, on, reason=reason, id=demo_id("override", reason), **kw)

    # Ava works a Saturday morning next week instead of her Friday.
    sat = _next_weekday(today, 6)
    override(ava, sat, "Saturday cover", available=True, start="09:00", end="13:00")
    override(ava, sat - timedelta(days=1), "Swapped for Saturday", available=False)
    # Chloé: a training afternoon every other Monday.
    mon = _next_weekday(today, 1)
    override(chloe, mon, "Training", available=False, start="12:00", end="15:00", rrule="FREQ=WEEKLY;INTERVAL=2")

    # Ben is away for two days next week.
    thu = _next_weekday(today, 4)
    seed.time_off(
        conn,
        t,
        ben,
        _at(thu, 0, 0, "Europe/London"),
        _at(thu + timedelta(days=2), 0, 0, "Europe/London"),
        "Holiday",
        id=demo_id("time_off", "Ben Okafor: Holiday"),
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
        id=demo_id("busy", "evt-dentist"),
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
                    conn,
                    t,
                    staff_id,
                    service_id,
                    start,
                    start + timedelta(minutes=duration),
                    customer_ref=ref,
                    id=demo_id("booking", ref),
                )
        except psycopg.errors.ExclusionViolation:
            pass  # cannot happen on a fresh tenant; a booking on a day off is harmless

    # Three seats of Saturday's workshop are sold; Ava has the treatment room booked.
    workshop_start = _at(sat, 16, 0, "Europe/London")
    seed.booking(
        conn,
        t,
        ben,
        workshop,
        workshop_start,
        workshop_start + timedelta(minutes=90),
        customer_ref="cust-1007",
        id=demo_id("booking", "cust-1007"),
    )
    conn.execute("UPDATE bookings SET seats = 3 WHERE id = %s", (demo_id("booking", "cust-1007"),))
    scalp_day = today + timedelta(days=2)
    while scalp_day.isoweekday() > 5:  # Ava works weekdays
        scalp_day += timedelta(days=1)
    scalp_start = _at(scalp_day, 11, 0, "Europe/London")
    with conn.transaction():
        seed.booking(
            conn,
            t,
            ava,
            scalp,
            scalp_start,
            scalp_start + timedelta(minutes=45),
            customer_ref="cust-1008",
            location_id=london,
            id=demo_id("booking", "cust-1008"),
        )
        conn.execute(
            "INSERT INTO booking_resources (tenant_id, booking_id, resource_id) VALUES (%s, %s, %s)",
            (t, demo_id("booking", "cust-1008"), demo_id("resource", "Treatment room")),
        )
