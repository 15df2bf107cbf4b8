"""SPEC §8 freshness, one source table at a time: a committed write shows in the API's slot
read (GET /v1/tenants/{slug}/slots, api.app.create_app in process) once a running worker has
picked it up (LISTEN/NOTIFY), and the table then equals a full recomputation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from slotmill import seed
from slotmill.api.app import create_app
from slotmill.config import Settings
from tests.jobs.test_worker_queue import (
    AppClient,
    Salon,
    assert_no_drift,
    running_worker,
    today_utc,
    utc,
    wait_quiet,
    wait_until,
)

Conn = psycopg.Connection[Any]
DAY = today_utc() + timedelta(days=3)


def starts(api: AppClient, staff_id: UUID, service_id: UUID, day: date = DAY) -> list[datetime]:
    """What a widget sees: the starts of one staff member and service on a UTC day. Read for
    every staff member and filtered here, because a read naming an inactive staff member
    is a 404."""
    params = {
        "service_id": str(service_id),
        "from": utc(day, 0).isoformat(),
        "to": utc(day + timedelta(days=1), 0).isoformat(),
    }
    r = api.get("/v1/tenants/acme/slots", params=params)
    if r.status_code == 404 and r.json()["code"] == "service_not_found":
        return []  # an inactive service has no slots to show
    assert r.status_code == 200, r.text
    return [datetime.fromisoformat(x["starts_at"]) for x in r.json()["slots"] if x["staff_id"] == str(staff_id)]


def eventually(api: AppClient, staff_id: UUID, service_id: UUID, want: Any, day: date = DAY) -> None:
    """Wait until the read satisfies ``want`` (a list to equal, or a predicate)."""

    def ok() -> bool:
        got = starts(api, staff_id, service_id, day)
        return bool(want(got)) if callable(want) else got == want

    wait_until(ok, timeout=30, what=f"the slot read of {day} to change")


def grid(day: date, first: tuple[int, int], last: tuple[int, int], step: int = 30) -> list[datetime]:
    out = []
    t, end = utc(day, *first), utc(day, *last)
    while t <= end:
        out.append(t)
        t += timedelta(minutes=step)
    return out


FULL_DAY = grid(DAY, (9, 0), (16, 30))


@pytest.fixture
def api(db_url: str) -> Iterator[AppClient]:
    settings = Settings(database_url=db_url, pool_min_size=1, pool_max_size=4, rate_limit_reads=0)
    with AppClient(create_app(settings)) as client:
        yield client


@pytest.fixture
def salon(conn: Conn, db_url: str, api: AppClient) -> Iterator[Salon]:
    s = Salon(conn)
    with running_worker(db_url):
        wait_quiet(db_url)
        assert starts(api, s.ann, s.cut) == FULL_DAY
        yield s
        wait_quiet(db_url)
        assert_no_drift(db_url, s.slug)


def test_tenant_horizon(conn: Conn, api: AppClient, salon: Salon) -> None:
    far = today_utc() + timedelta(days=20)
    assert starts(api, salon.ann, salon.cut, far)
    conn.execute("UPDATE tenants SET horizon_days = 10 WHERE id = %s", (salon.tenant,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, [], far)
    conn.execute("UPDATE tenants SET horizon_days = 30 WHERE id = %s", (salon.tenant,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, grid(far, (9, 0), (16, 30)), far)


def test_tenant_settings(conn: Conn, api: AppClient, salon: Salon) -> None:
    # min_notice is a read-time rule (SPEC §6): visible at once, the worker has nothing to do
    soon = today_utc() + timedelta(days=1)
    assert starts(api, salon.ann, salon.cut, soon)
    conn.execute(
        "UPDATE tenants SET settings = '{\"min_notice_minutes\": 4320}' WHERE id = %s",
        (salon.tenant,),
    )
    conn.commit()
    eventually(api, salon.ann, salon.cut, [], soon)
    assert starts(api, salon.ann, salon.cut, today_utc() + timedelta(days=5))


def test_tenant_zone(conn: Conn, api: AppClient, salon: Salon) -> None:
    # The staff member's zone falls back to the tenant's when neither staff nor location has one.
    conn.execute("UPDATE tenants SET timezone = 'Asia/Kolkata' WHERE id = %s", (salon.tenant,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, lambda got: got and got[0] == utc(DAY, 3, 30))


def test_locations(conn: Conn, api: AppClient, salon: Salon) -> None:
    conn.execute("UPDATE locations SET timezone = 'Asia/Tokyo' WHERE id = %s", (salon.location,))
    conn.commit()
    # 09:00 in Tokyo is 00:00Z; the day's last 30-minute start is 16:30 Tokyo = 07:30Z
    eventually(
        api,
        salon.ann,
        salon.cut,
        lambda got: got and got[0] == utc(DAY, 0) and got[-1] == utc(DAY, 7, 30),
    )


def test_staff(conn: Conn, api: AppClient, salon: Salon) -> None:
    conn.execute("UPDATE staff SET active = false WHERE id = %s", (salon.ann,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, [])
    assert starts(api, salon.bob, salon.cut) == FULL_DAY
    conn.execute("UPDATE staff SET active = true, timezone = 'Europe/Helsinki' WHERE id = %s", (salon.ann,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, lambda got: got and got[0] < utc(DAY, 9))


def test_services(conn: Conn, api: AppClient, salon: Salon) -> None:
    conn.execute("UPDATE services SET slot_interval_minutes = 60 WHERE id = %s", (salon.cut,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, grid(DAY, (9, 0), (16, 0), step=60))
    eventually(api, salon.bob, salon.cut, grid(DAY, (9, 0), (16, 0), step=60))
    conn.execute("UPDATE services SET active = false WHERE id = %s", (salon.cut,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, [])


def test_new_service_and_staff_services(conn: Conn, api: AppClient, salon: Salon) -> None:
    colour = seed.service(conn, salon.tenant, "Colour", 120, interval=60)
    conn.commit()
    seed.qualify(conn, salon.tenant, salon.ann, colour)
    conn.commit()
    eventually(api, salon.ann, colour, grid(DAY, (9, 0), (15, 0), step=60))
    assert starts(api, salon.bob, colour) == []
    conn.execute("DELETE FROM staff_services WHERE staff_id = %s AND service_id = %s", (salon.ann, salon.cut))
    conn.commit()
    eventually(api, salon.ann, salon.cut, [])


def test_availability_templates(conn: Conn, api: AppClient, salon: Salon) -> None:
    conn.execute("UPDATE availability_templates SET end_time = '12:00' WHERE staff_id = %s", (salon.ann,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, grid(DAY, (9, 0), (11, 30)))
    assert starts(api, salon.bob, salon.cut) == FULL_DAY


def test_availability_overrides(conn: Conn, api: AppClient, salon: Salon) -> None:
    override = seed.override(conn, salon.tenant, salon.ann, DAY, available=False, reason="dentist")
    conn.commit()
    eventually(api, salon.ann, salon.cut, [])
    assert starts(api, salon.ann, salon.cut, DAY + timedelta(days=1))
    conn.execute(
        "UPDATE availability_overrides SET is_available = true, start_time = '18:00', end_time = '20:00' WHERE id = %s",
        (override,),
    )
    conn.commit()
    eventually(api, salon.ann, salon.cut, grid(DAY, (18, 0), (19, 30)))


def test_holidays_tenant_wide(conn: Conn, api: AppClient, salon: Salon) -> None:
    holiday = seed.holiday(conn, salon.tenant, DAY, "Founders' day")
    conn.commit()
    eventually(api, salon.ann, salon.cut, [])
    eventually(api, salon.bob, salon.cut, [])
    assert starts(api, salon.ann, salon.cut, DAY + timedelta(days=1))
    conn.execute("DELETE FROM holidays WHERE id = %s", (holiday,))
    conn.commit()
    eventually(api, salon.bob, salon.cut, FULL_DAY)


def test_time_off(conn: Conn, api: AppClient, salon: Salon) -> None:
    seed.time_off(conn, salon.tenant, salon.ann, utc(DAY, 10), utc(DAY, 12))
    conn.commit()
    # blocked range of a start t is [t - 10, t + 40): free iff it ends by 10:00 or starts at 12:00
    eventually(api, salon.ann, salon.cut, grid(DAY, (9, 0), (9, 0)) + grid(DAY, (12, 30), (16, 30)))
    assert starts(api, salon.bob, salon.cut) == FULL_DAY


def test_busy_times(conn: Conn, api: AppClient, salon: Salon) -> None:
    busy = seed.busy(conn, salon.tenant, salon.bob, utc(DAY, 15), utc(DAY, 17), external_id="evt-1")
    conn.commit()
    eventually(api, salon.bob, salon.cut, grid(DAY, (9, 0), (14, 0)))
    conn.execute(
        "UPDATE busy_times SET during = tstzrange(%s, %s) WHERE id = %s",
        (utc(DAY, 9), utc(DAY, 10), busy),
    )
    conn.commit()
    eventually(api, salon.bob, salon.cut, grid(DAY, (10, 30), (16, 30)))


def test_bookings(conn: Conn, api: AppClient, salon: Salon) -> None:
    booking = seed.booking(conn, salon.tenant, salon.ann, salon.cut, utc(DAY, 11), utc(DAY, 11, 30))
    conn.commit()
    # the booking blocks [10:50, 11:40); a start t blocks [t - 10, t + 40)
    eventually(
        api,
        salon.ann,
        salon.cut,
        [t for t in FULL_DAY if not utc(DAY, 10, 30) <= t <= utc(DAY, 11, 30)],
    )
    conn.execute("UPDATE bookings SET status = 'cancelled', cancelled_at = now() WHERE id = %s", (booking,))
    conn.commit()
    eventually(api, salon.ann, salon.cut, FULL_DAY)
