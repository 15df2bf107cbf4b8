"""Beyond the horizon (docs/architecture.md): a service bookable further ahead than the table
reaches gets its slots there from the engine, on demand, and they are exactly what the table
holds once the horizon gets there: same ids, instants, seats; holds and confirms work there.

The worlds are random (a seeded generator per case): zones with DST ahead, grids, buffers,
whole-day windows that merge into week-long ones (grid anchoring at the epoch), recurring
overrides, time off and bookings past the horizon. Each is read through the API with a
14-day table, then materialized 130 days deep and read again: the answers must be equal.
"""

from __future__ import annotations

import asyncio
import random
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from slotmill import seed
from slotmill.keys import create_key
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from tests.support import bearer, db_exec, db_rows, running

HORIZON = 14
ADVANCE = 120
ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "America/Santiago"]


def _today(zone: str) -> date:
    return datetime.now(ZoneInfo(zone)).date()


def _world(conn: psycopg.Connection[Any], rnd: random.Random) -> dict[str, Any]:
    zone = rnd.choice(ZONES)
    t = seed.tenant(conn, "far", timezone=zone, horizon_days=HORIZON)
    today = _today(zone)
    main = seed.location(conn, t, "Main")
    staff = [seed.staff(conn, t, f"S{i}", location_id=main, priority=rnd.choice([50, 100])) for i in range(3)]
    cut = seed.service(
        conn,
        t,
        "Cut",
        rnd.choice([30, 45, 60, 90]),
        interval=rnd.choice([None, 15, 20, 30]),
        before=rnd.choice([0, 10]),
        after=rnd.choice([0, 15]),
        max_advance_days=ADVANCE,
        staff_ids=staff,
    )
    group = seed.service(conn, t, "Class", 60, seats=4, max_advance_days=ADVANCE, staff_ids=staff[:2])
    days = sorted(rnd.sample(range(1, 8), rnd.randint(3, 6)))
    seed.template(conn, t, staff[0], days, rnd.choice(["08:00", "09:00", "09:30"]), rnd.choice(["13:00", "17:00"]))
    # whole days in a row merge into one window: under 7 days it is anchored at its own
    # start, 7 days or longer (every day) at the epoch (engine/grid.py)
    seed.template(conn, t, staff[1], range(1, 8) if rnd.random() < 0.5 else range(1, 6), "00:00", "24:00")
    seed.template(conn, t, staff[2], range(1, 8), "07:00", "11:00")
    seed.template(conn, t, staff[2], range(1, 8), "14:00", "19:45")
    far = today + timedelta(days=rnd.randint(HORIZON + 1, 60))
    seed.override(conn, t, staff[0], far, available=False)
    seed.override(
        conn,
        t,
        staff[2],
        today + timedelta(days=rnd.randint(0, 30)),
        available=True,
        start="20:00",
        end="23:00",
        rrule=rnd.choice(["FREQ=WEEKLY;INTERVAL=2", "FREQ=DAILY;INTERVAL=9", "FREQ=MONTHLY;BYMONTHDAY=15"]),
    )
    off = datetime.combine(today + timedelta(days=rnd.randint(HORIZON, 80)), datetime.min.time(), ZoneInfo(zone))
    seed.time_off(conn, t, staff[2], off + timedelta(hours=10), off + timedelta(days=rnd.randint(1, 4), hours=3))
    seed.holiday(conn, t, today + timedelta(days=rnd.randint(HORIZON, 100)), "Closed")
    create_key(conn, t)
    conn.commit()
    refresh(conn, load_tenant(conn, "far"))
    return {"tenant": t, "zone": zone, "today": today, "staff": staff, "cut": cut, "group": group}


QUERIES: list[tuple[str, int, int, str | None]] = [
    # service, first day, last day (from today), group; all short of the advance limit,
    # which moves with the clock between the two reads
    ("cut", HORIZON - 3, HORIZON + 58, None),
    ("cut", 70, ADVANCE - 2, "time"),
    ("group", 5, 66, None),
    ("group", 60, ADVANCE - 2, "time"),
]


async def _reads(c: httpx.AsyncClient, w: dict[str, Any]) -> list[Any]:
    out = []
    for name, first, last, grouped in QUERIES:
        q = {
            "service_id": str(w[name]),
            "from": str(w["today"] + timedelta(days=first)),
            "to": str(w["today"] + timedelta(days=last)),
            "limit": "5000",
        }
        if grouped:
            q["group"] = grouped
        r = await c.get("/v1/tenants/far/slots", params=q)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


@pytest.mark.parametrize("case", range(6))
def test_reads_beyond_the_horizon_equal_a_deeper_table(db_url: str, case: int) -> None:
    rnd = random.Random(20261129 + case)
    with psycopg.connect(db_url) as conn:
        w = _world(conn, rnd)

    async def body() -> tuple[list[Any], list[Any], list[Any]]:
        async with running(db_url) as (_, c):
            # something booked and something held past the horizon, through the API
            far_day = w["today"] + timedelta(days=HORIZON + rnd.randint(2, 40))
            got = await c.get(
                "/v1/tenants/far/slots",
                params={"service_id": str(w["group"]), "from": str(far_day), "to": str(far_day + timedelta(days=6))},
            )
            assert got.status_code == 200, got.text
            session = got.json()["slots"][0]
            r = await c.post("/v1/tenants/far/holds", json={"slot_id": session["id"], "seats": 3})
            assert r.status_code == 201, r.text
            got = await c.get(
                "/v1/tenants/far/slots",
                params={"service_id": str(w["cut"]), "from": str(far_day), "to": str(far_day + timedelta(days=6))},
            )
            assert got.status_code == 200, got.text
            pick = got.json()["slots"][len(got.json()["slots"]) // 2]
            r = await c.post("/v1/tenants/far/holds", json={"slot_id": pick["id"]})
            assert r.status_code == 201, r.text
            before = await _reads(c, w)
            # the held slot is hidden, the session shows one seat left
            flat = [s for page in before if "slots" in page for s in page["slots"]]
            assert pick["id"] not in {s.get("id") for s in flat}
            assert any(s.get("id") == session["id"] and s["seats_left"] == 1 for s in flat)

            conn = await psycopg.AsyncConnection.connect(db_url, autocommit=True)
            async with conn:
                await conn.execute("UPDATE tenants SET horizon_days = %s WHERE slug = 'far'", (ADVANCE + 10,))
            await asyncio.to_thread(_deep_refresh, db_url)
            after = await _reads(c, w)
            return before, after, flat

    before, after, flat = asyncio.run(body())
    assert len(flat) > 100, "the reads past the horizon found slots"
    assert before == after


def _deep_refresh(url: str) -> None:
    with psycopg.connect(url) as conn:
        refresh(conn, load_tenant(conn, "far"))


def test_holds_and_confirms_past_the_horizon(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        t = seed.tenant(conn, "far", timezone="Europe/Paris", horizon_days=HORIZON)
        loc = seed.location(conn, t, "Main")
        ann = seed.staff(conn, t, "Ann", location_id=loc, priority=50)
        bob = seed.staff(conn, t, "Bob", location_id=loc)
        cut = seed.service(conn, t, "Cut", 60, max_advance_days=ADVANCE, staff_ids=[ann, bob])
        short = seed.service(conn, t, "Short", 60, staff_ids=[ann, bob])  # the horizon's advance
        seed.template(conn, t, ann, range(1, 8), "09:00", "12:00")
        seed.template(conn, t, bob, range(1, 8), "09:00", "12:00")
        key = create_key(conn, t)
        conn.commit()
        refresh(conn, load_tenant(conn, "far"))
    day = _today("Europe/Paris") + timedelta(days=40)
    nine = datetime.combine(day, datetime.min.time(), ZoneInfo("Europe/Paris")).replace(hour=9)
    at = nine.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def body() -> None:
        async with running(db_url, admin_key="admin-key-for-tests") as (_, c):
            q = {"service_id": str(cut), "from": str(day), "to": str(day)}
            r = await c.get("/v1/tenants/far/slots", params=q)
            assert r.status_code == 200
            assert [s["starts_at"] for s in r.json()["slots"]].count(at) == 2
            etag = r.headers["etag"]
            # a service without a longer advance ends at the horizon
            r = await c.get("/v1/tenants/far/slots", params={**q, "service_id": str(short)})
            assert r.json()["slots"] == []
            r = await c.post("/v1/tenants/far/holds", json={"service_id": str(short), "starts_at": at})
            assert r.status_code == 409, r.text

            # any staff: Ann first (priority), then Bob, then nobody
            h1 = await c.post("/v1/tenants/far/holds", json={"service_id": str(cut), "starts_at": at})
            assert h1.status_code == 201, h1.text
            assert h1.json()["staff_id"] == str(ann)
            h2 = await c.post("/v1/tenants/far/holds", json={"service_id": str(cut), "starts_at": at})
            assert h2.status_code == 201, h2.text
            assert h2.json()["staff_id"] == str(bob)
            r = await c.post("/v1/tenants/far/holds", json={"service_id": str(cut), "starts_at": at})
            assert r.status_code == 409, r.text
            # off the grid, or outside working hours, past the horizon: refused as anywhere
            r = await c.post(
                "/v1/tenants/far/holds",
                json={"service_id": str(cut), "starts_at": at.replace(":00:00Z", ":10:00Z"), "staff_id": str(ann)},
            )
            assert r.status_code == 409, r.text
            # past the advance limit: refused
            late = (datetime.fromisoformat(at) + timedelta(days=ADVANCE)).strftime("%Y-%m-%dT%H:%M:%SZ")
            r = await c.post("/v1/tenants/far/holds", json={"service_id": str(cut), "starts_at": late})
            assert r.status_code == 409, r.text

            # explain answers past the horizon as the engine judges there
            for when, code in (
                (at.replace("T09:", "T14:").replace("T08:", "T13:"), "outside_working_hours"),
                (late, "beyond_horizon"),
            ):
                r = await c.get(
                    "/v1/admin/tenants/far/explain",
                    params={"staff_id": str(ann), "service_id": str(cut), "starts_at": when},
                    headers=bearer("admin-key-for-tests"),
                )
                assert r.status_code == 200, r.text
                assert [x["code"] for x in r.json()["reasons"]][:1] == [code], r.json()

            # the read changed (its version moved with the holds): both hidden
            r = await c.get("/v1/tenants/far/slots", params=q, headers={"If-None-Match": etag})
            assert r.status_code == 200
            assert at not in [s["starts_at"] for s in r.json()["slots"]]

            # confirm: the re-check runs the engine past the horizon too
            r = await c.post(
                f"/v1/tenants/far/holds/{h1.json()['hold_id']}/confirm",
                json={"customer_ref": "c1"},
                headers=bearer(key),
            )
            assert r.status_code == 201, r.text
            # a rule change past the horizon makes the other hold's confirm fail
            db_exec(
                db_url,
                "INSERT INTO availability_overrides (tenant_id, staff_id, on_date, is_available)"
                " VALUES (%s, %s, %s, false)",
                (t, bob, day),
            )
            r = await c.post(
                f"/v1/tenants/far/holds/{h2.json()['hold_id']}/confirm",
                json={"customer_ref": "c2"},
                headers=bearer(key),
            )
            assert r.status_code == 409, r.text
            assert r.json()["code"] == "slot_no_longer_valid"

    asyncio.run(body())
    rows = db_rows(
        db_url, "SELECT staff_id, status FROM bookings WHERE tenant_id = %s ORDER BY staff_id = %s DESC", (t, ann)
    )
    assert rows[0] == (ann, "confirmed")
    assert {r[1] for r in rows[1:]} == {"held"}


def test_the_day_the_nightly_has_not_written_yet_is_offered(db_url: str) -> None:
    """After local midnight the horizon has a new last day the nightly has not written: its
    slots come from the engine (slotmill_table_end) for reads and holds alike."""
    with psycopg.connect(db_url) as conn:
        t = seed.tenant(conn, "far", timezone="UTC", horizon_days=HORIZON)
        loc = seed.location(conn, t, "Main")
        ann = seed.staff(conn, t, "Ann", location_id=loc)
        cut = seed.service(conn, t, "Cut", 60, staff_ids=[ann])
        seed.template(conn, t, ann, range(1, 8), "09:00", "12:00")
        conn.commit()
        refresh(conn, load_tenant(conn, "far"))
        # as if the last full refresh ran yesterday: it covered one day less
        conn.execute("UPDATE refresh_runs SET horizon_end = horizon_end - interval '1 day' WHERE tenant_id = %s", (t,))
        conn.execute(
            "DELETE FROM availability_slots WHERE tenant_id = %s AND starts_at >= (SELECT horizon_end FROM refresh_runs"
            " WHERE tenant_id = %s)",
            (t, t),
        )
        conn.commit()
    last = _today("UTC") + timedelta(days=HORIZON - 1)

    async def body() -> None:
        async with running(db_url) as (_, c):
            q = {"service_id": str(cut), "from": str(last), "to": str(last)}
            r = await c.get("/v1/tenants/far/slots", params=q)
            found = r.json()["slots"]
            assert [s["starts_at"][11:16] for s in found] == ["09:00", "10:00", "11:00"]
            h = await c.post("/v1/tenants/far/holds", json={"slot_id": found[0]["id"]})
            assert h.status_code == 201, h.text

    asyncio.run(body())
