"""The console's utilization endpoint (api/admin_usage.py): booked against offered time per
local weekday and hour, for a staff member, a location or the tenant, counted exactly as
docs/console.md#utilization defines it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
import pytest

from slotmill import seed
from slotmill.api.app import create_app
from slotmill.config import Settings
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from tests.api.test_console_day import dst_changes
from tests.jobs.test_worker_queue import AppClient

Conn = psycopg.Connection[Any]
KEY = "u" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def client(db_url: str) -> Iterator[AppClient]:
    s = Settings(database_url=db_url, pool_min_size=1, pool_max_size=4, admin_key=KEY)
    with AppClient(create_app(s)) as c:
        yield c


class Shop:
    """A UTC tenant. Ana (at Main street) works Mondays 09:00-12:00 and has 10:00-11:00
    booked; Cy works Tuesdays 09:00-11:00 (overlapping slots: 60 minutes every 30); Bo
    (no location, New York) works Mondays 09:00-10:00 New York time."""

    def __init__(self, conn: Conn) -> None:
        t = self.tenant = seed.tenant(conn, "shop", timezone="UTC", horizon_days=30)
        self.main = seed.location(conn, t, "Main street")
        self.ana = seed.staff(conn, t, "Ana", location_id=self.main)
        self.cy = seed.staff(conn, t, "Cy", location_id=self.main)
        self.bo = seed.staff(conn, t, "Bo", timezone="America/New_York")
        self.cut = seed.service(conn, t, "Cut", 60, interval=30, staff_ids=[self.ana, self.cy, self.bo])
        seed.template(conn, t, self.ana, [1], "09:00", "12:00")
        seed.template(conn, t, self.cy, [2], "09:00", "11:00")
        seed.template(conn, t, self.bo, [1], "09:00", "10:00")
        today = datetime.now(UTC).date()
        self.monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
        start = datetime.combine(self.monday, time(10), tzinfo=UTC)
        seed.booking(conn, t, self.ana, self.cut, start, start + timedelta(hours=1), customer_ref="c-1")
        conn.commit()
        refresh(conn, load_tenant(conn, "shop"))


@pytest.fixture
def shop(conn: Conn) -> Shop:
    return Shop(conn)


def _use(client: AppClient, slug: str, **params: Any) -> dict[str, Any]:
    r = client.get(f"/v1/admin/tenants/{slug}/utilization", params={k: str(v) for k, v in params.items()}, headers=AUTH)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _open(u: dict[str, Any]) -> dict[tuple[int, int], tuple[float, float, float]]:
    """(weekday, hour) -> (booked, offered, open) minutes, for cells with anything open."""
    assert len(u["cells"]) == 168
    return {
        (c["weekday"], c["hour"]): (c["booked_minutes"], c["offered_minutes"], c["open_minutes"])
        for c in u["cells"]
        if c["open_minutes"]
    }


def test_the_tenant_in_its_zone(client: AppClient, shop: Shop) -> None:
    u = _use(client, "shop", **{"from": shop.monday, "to": shop.monday + timedelta(days=1)})
    assert (u["scope"]["kind"], u["scope"]["name"], u["zone"]) == ("tenant", "shop", "UTC")
    bo_hour = datetime.combine(shop.monday, time(9), tzinfo=NEW_YORK).astimezone(UTC).hour
    assert _open(u) == {
        (1, 9): (0, 60, 60),  # Ana's 09:00 slot
        (1, 10): (60, 0, 60),  # her booking (and the slots it removed: 09:30, 10:00, 10:30)
        (1, 11): (0, 60, 60),  # her 11:00 slot
        (1, bo_hour): (0, 60, 60),  # Bo's 09:00 in New York
        (2, 9): (0, 60, 60),  # Cy's 09:00, 09:30 and 10:00 slots cover 09:00-11:00 once
        (2, 10): (0, 60, 60),
    }
    assert u["totals"] == {
        "booked_minutes": 60,
        "offered_minutes": 300,
        "open_minutes": 360,
        "share": round(60 / 360, 4),
    }
    assert [(c["weekday"], c["hour"], c["share"]) for c in u["busiest"]] == [(1, 10, 1.0)]
    assert [(c["weekday"], c["hour"]) for c in u["emptiest"]] == [(1, 9), (1, 11), (1, bo_hour)]
    assert u["range_start"] == f"{shop.monday}T00:00:00Z"
    assert u["range_end"] == f"{shop.monday + timedelta(days=2)}T00:00:00Z"


def test_a_staff_member_in_their_zone_and_a_location(client: AppClient, shop: Shop) -> None:
    week = {"from": shop.monday, "to": shop.monday + timedelta(days=6)}
    bo = _use(client, "shop", staff_id=shop.bo, **week)
    assert (bo["scope"]["kind"], bo["scope"]["name"], bo["zone"]) == ("staff", "Bo", "America/New_York")
    assert _open(bo) == {(1, 9): (0, 60, 60)}
    assert bo["busiest"] == []  # nothing booked
    ana = _use(client, "shop", staff_id=shop.ana, **week)
    assert _open(ana) == {(1, 9): (0, 60, 60), (1, 10): (60, 0, 60), (1, 11): (0, 60, 60)}
    # The location: slots at it and bookings at it (Ana's booking has none: it counts at hers).
    main = _use(client, "shop", location_id=shop.main, **week)
    assert (main["scope"]["kind"], main["scope"]["name"], main["zone"]) == ("location", "Main street", "UTC")
    assert _open(main) == {
        (1, 9): (0, 60, 60),
        (1, 10): (60, 0, 60),
        (1, 11): (0, 60, 60),
        (2, 9): (0, 60, 60),
        (2, 10): (0, 60, 60),
    }
    # A staff member at a location: both apply.
    assert _open(_use(client, "shop", staff_id=shop.cy, location_id=shop.main, **week)) == {
        (2, 9): (0, 60, 60),
        (2, 10): (0, 60, 60),
    }
    assert _open(_use(client, "shop", staff_id=shop.bo, location_id=shop.main, **week)) == {}


def test_defaults_are_four_weeks_from_today(client: AppClient, shop: Shop) -> None:
    u = _use(client, "shop")
    today = datetime.now(UTC).date()
    assert (u["from"], u["to"]) == (str(today), str(today + timedelta(days=27)))
    assert u["totals"]["booked_minutes"] == 60


def test_hours_tile_the_range_across_dst_changes(conn: Conn, client: AppClient) -> None:
    # Someone who is always available: offered time is every minute of the range, so the
    # cells must add up to its elapsed length on the 23- and the 25-hour day alike.
    t = seed.tenant(conn, "always", timezone="Europe/London", horizon_days=366)
    eve = seed.staff(conn, t, "Eve")
    seed.service(conn, t, "Call", 60, staff_ids=[eve])
    seed.template(conn, t, eve, range(1, 8), "00:00", "24:00")
    conn.commit()
    refresh(conn, load_tenant(conn, "always"))
    london = ZoneInfo("Europe/London")
    for d in dst_changes(london, datetime.now(london).date() + timedelta(days=1), 360):
        u = _use(client, "always", **{"from": d, "to": d})
        hours = 23 if d.month < 7 else 25
        assert u["totals"]["offered_minutes"] == hours * 60
        assert sum(c["offered_minutes"] for c in u["cells"]) == hours * 60
        assert {c["weekday"] for c in u["cells"] if c["offered_minutes"]} == {d.isoweekday()}


def test_refusals(client: AppClient, shop: Shop) -> None:
    path = "/v1/admin/tenants/shop/utilization"

    def problem(params: dict[str, Any], status: int, code: str, field: str | None = None, **kw: Any) -> None:
        r = client.get(path, params=params, headers=kw.get("headers", AUTH))
        assert r.status_code == status, r.text
        assert r.json()["code"] == code
        if field:
            assert r.json()["field"] == field

    d = date(2030, 1, 7)
    problem({}, 401, "unauthorized", headers={})
    problem({"from": str(d), "to": str(d - timedelta(days=1))}, 422, "validation_error", "query.to")
    problem({"from": str(d), "to": str(d + timedelta(days=92))}, 422, "validation_error", "query.to")
    problem({"from": "07/01/2030"}, 422, "validation_error", "query.from")
    problem({"staff_id": "nope"}, 422, "validation_error", "query.staff_id")
    problem({"staff_id": str(UUID(int=5))}, 404, "staff_not_found")
    problem({"location_id": str(UUID(int=5))}, 404, "location_not_found")
    r = client.get("/v1/admin/tenants/nobody/utilization", headers=AUTH)
    assert r.status_code == 404 and r.json()["code"] == "tenant_not_found"
    # 92 days is allowed, and far from the horizon nothing is open.
    far = _use(client, "shop", **{"from": d, "to": d + timedelta(days=91)})
    assert far["totals"] == {"booked_minutes": 0, "offered_minutes": 0, "open_minutes": 0, "share": None}
    assert far["busiest"] == [] and far["emptiest"] == []
