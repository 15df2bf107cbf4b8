"""Materialization against a real database: windows, holds, DST, agreement with verify."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from slotmill import seed
from slotmill.materializer.horizon import local_midnight, to_epoch
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from slotmill.materializer.verify import verify

Conn = psycopg.Connection[Any]


def _tenant(conn: Conn, zone: str = "UTC", **settings: Any) -> tuple[UUID, UUID, UUID]:
    t = seed.tenant(conn, "t", timezone=zone, settings=settings)
    s = seed.staff(conn, t, "Ann")
    v = seed.service(conn, t, "Cut", 30, interval=15, before=15, after=30, staff_ids=[s])
    return t, s, v


def _starts(conn: Conn, day: date | None = None, zone: str = "UTC") -> list[datetime]:
    rows = conn.execute("SELECT starts_at FROM availability_slots ORDER BY starts_at").fetchall()
    out = [r[0] for r in rows]
    if day is not None:
        out = [s for s in out if s.astimezone(ZoneInfo(zone)).date() == day]
    return out


def test_spec_example_materializes_exactly(conn: Conn) -> None:
    t, s, v = _tenant(conn)
    day = date.today() + timedelta(days=7)
    seed.template(conn, t, s, [day.isoweekday()], "09:00", "17:00")
    at = lambda hh, mm: datetime(day.year, day.month, day.day, hh, mm, tzinfo=UTC)  # noqa: E731
    seed.booking(conn, t, s, v, at(12, 30), at(13, 0))
    seed.booking(conn, t, s, v, at(14, 30), at(15, 0))
    conn.commit()
    refresh(conn, load_tenant(conn, "t"))
    got = [x.strftime("%H:%M") for x in _starts(conn, day)]
    morning = [f"{h:02d}:{m:02d}" for h in range(9, 12) for m in (0, 15, 30, 45)][:10]
    assert got == [*morning, "15:45", "16:00", "16:15", "16:30"]


def test_london_fall_back_night_is_one_three_hour_window(conn: Conn) -> None:
    # Needs a horizon that contains 2024-10-27: refresh with a pinned "now".
    t = seed.tenant(conn, "t", timezone="Europe/London")
    s = seed.staff(conn, t, "Night")
    seed.service(conn, t, "Hour", 60, staff_ids=[s])
    seed.template(conn, t, s, [7], "00:00", "02:00")  # 2024-10-27 is a Sunday
    conn.commit()
    now = to_epoch(datetime(2024, 10, 20, 12, tzinfo=UTC))
    refresh(conn, load_tenant(conn, "t"), now=now)
    got = [x for x in _starts(conn) if x.date() in (date(2024, 10, 26), date(2024, 10, 27))]
    assert [x.isoformat() for x in got] == [
        "2024-10-26T23:00:00+00:00",
        "2024-10-27T00:00:00+00:00",
        "2024-10-27T01:00:00+00:00",
    ]


def test_live_hold_marks_held_until_and_expired_hold_does_not(conn: Conn) -> None:
    t, s, v = _tenant(conn)
    day = date.today() + timedelta(days=3)
    seed.template(conn, t, s, [day.isoweekday()], "09:00", "12:00")
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=UTC)
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    seed.booking(conn, t, s, v, start, start + timedelta(minutes=30), status="held", expires_at=expires)
    seed.booking(
        conn,
        t,
        s,
        v,
        start + timedelta(minutes=90),
        start + timedelta(hours=2),
        status="held",
        expires_at=datetime.now(UTC) - timedelta(seconds=5),
    )
    conn.commit()
    refresh(conn, load_tenant(conn, "t"))
    rows = conn.execute(
        "SELECT starts_at, held_until FROM availability_slots"
        " WHERE (starts_at AT TIME ZONE 'UTC')::date = %s ORDER BY starts_at",
        (day,),
    ).fetchall()
    held = {r[0].strftime("%H:%M") for r in rows if r[1] is not None}
    # blocked [9:45, 11:00) of the hold vs each slot's [t-15, t+60): 08:46 < t < 11:15
    assert held == {"09:00", "09:15", "09:30", "09:45", "10:00", "10:15", "10:30", "10:45", "11:00"}
    assert all(r[1] == expires for r in rows if r[1] is not None)
    assert len(rows) == len(held) + 2  # the lapsed hold hides nothing: 11:15 and 11:30 stay free


def test_partial_recomputes_converge_to_full(conn: Conn) -> None:
    """Random rule changes, each followed by a refresh of only the affected day or staff
    member, end equal to a full recomputation (what the worker relies on)."""
    rng = random.Random(7)
    t = seed.tenant(conn, "t", timezone="Europe/London")
    staff = [seed.staff(conn, t, f"s{i}", timezone=z) for i, z in enumerate([None, "America/New_York", "Asia/Kolkata"])]
    services = [
        seed.service(conn, t, "a", 30, interval=15, after=10, staff_ids=staff),
        seed.service(conn, t, "b", 60, interval=20, before=10, after=5, staff_ids=staff[:2]),
    ]
    for s in staff:
        seed.template(conn, t, s, range(1, 8), "08:00", "12:00")
        seed.template(conn, t, s, [1, 3, 5], "13:00", "19:30")
    conn.commit()
    tenant = load_tenant(conn, "t")
    refresh(conn, tenant)
    today = date.today()
    for _ in range(12):
        s = rng.choice(staff)
        day = today + timedelta(days=rng.randrange(1, 20))
        kind = rng.choice(["booking", "time_off", "override", "holiday"])
        start = datetime(day.year, day.month, day.day, rng.choice([8, 9, 10, 14]), rng.choice([0, 20, 40]), tzinfo=UTC)
        if kind == "booking":
            try:
                with conn.transaction():
                    seed.booking(conn, t, s, rng.choice(services), start, start + timedelta(minutes=30))
            except psycopg.errors.ExclusionViolation:
                continue
        elif kind == "time_off":
            seed.time_off(conn, t, s, start, start + timedelta(minutes=rng.choice([45, 90, 600])))
        elif kind == "override":
            seed.override(conn, t, s, day, available=False, start="09:00", end="10:30")
        else:
            seed.holiday(conn, t, day, "closed", staff_id=s)
        conn.commit()
        lo = local_midnight(day - timedelta(days=1), "Europe/London")
        refresh(conn, tenant, staff_ids=[s], lo=lo, hi=lo + 3 * 86400)
    drift = verify(conn, tenant)
    assert drift.total == 0, (drift.missing[:3], drift.unexpected[:3], drift.changed[:3])
    assert drift.actual_count > 0


def test_inactive_staff_and_services_have_no_slots(conn: Conn) -> None:
    t, s, _v = _tenant(conn)
    seed.template(conn, t, s, range(1, 8), "09:00", "10:00")
    conn.commit()
    tenant = load_tenant(conn, "t")
    refresh(conn, tenant)
    assert _starts(conn)
    conn.execute("UPDATE services SET active = false")
    conn.commit()
    refresh(conn, tenant)
    assert _starts(conn) == []
    conn.execute("UPDATE services SET active = true")
    conn.execute("UPDATE staff SET active = false")
    conn.commit()
    refresh(conn, tenant)
    assert _starts(conn) == []


@pytest.mark.parametrize("horizon_days", [1, 14])
def test_horizon_bounds(conn: Conn, horizon_days: int) -> None:
    t = seed.tenant(conn, "t", timezone="Pacific/Auckland", horizon_days=horizon_days)
    s = seed.staff(conn, t, "Ann")
    seed.service(conn, t, "All day", 60, staff_ids=[s])
    seed.template(conn, t, s, range(1, 8), "00:00", "24:00")
    conn.commit()
    now = int(time.time())
    tenant = load_tenant(conn, "t")
    refresh(conn, tenant, now=now)
    h = tenant.horizon(now)
    starts = [to_epoch(x) for x in _starts(conn)]
    assert min(starts) >= h.start and max(starts) < h.end
    assert len(starts) == (h.end - h.start) // 3600  # every hour of the horizon, DST or not
