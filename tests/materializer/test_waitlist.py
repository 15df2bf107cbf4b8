"""The waitlist (issue 14): joining over the public API, and a cancellation that frees a
matching time telling the oldest matching entry once (with a hold when the tenant asks for
it), through the worker's queue and event pump."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from slotmill.config import get_settings
from slotmill.materializer import bookings
from slotmill.materializer.loader import load_tenant
from tests.support import World, bearer, db_exec, db_rows, problem, run, wait, worker


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SLOTMILL_EVENTS_POLL_SECONDS", "0.05")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def join(w: World, body: dict[str, Any]) -> str:
    async def go(c: httpx.AsyncClient) -> httpx.Response:
        return await c.post("/v1/tenants/acme/waitlist", json=body)

    r = run(w.url, go)
    assert r.status_code == 201, r.text
    assert "contact_ref" not in r.json()
    return str(r.json()["id"])


def fill_day(w: World) -> UUID:
    """Every cut slot of Cid's day is booked (direct inserts), one of them the one to cancel."""
    a = w.acme
    with psycopg.connect(w.url) as conn:
        ids = []
        for h in range(9, 17):
            row = conn.execute(
                "INSERT INTO bookings (tenant_id, staff_id, service_id, starts_at, ends_at, status, customer_ref)"
                " VALUES (%s, %s, %s, %s, %s, 'confirmed', %s) RETURNING id",
                (a.id, a.cid, a.cut, w.at(f"{h:02d}:00"), w.at(f"{h + 1:02d}:00"), f"c{h}"),
            ).fetchone()
            assert row is not None
            ids.append(row[0])
        conn.commit()
    return UUID(str(ids[2]))  # 11:00


def cancel(w: World, booking: UUID) -> None:
    with psycopg.connect(w.url) as conn:
        bookings.cancel(conn, load_tenant(conn, "acme"), booking_id=booking)
        conn.commit()


def matched(w: World) -> list[tuple[Any, ...]]:
    return db_rows(
        w.url,
        "SELECT data ->> 'entry_id', data ->> 'slot_id', data ->> 'starts_at', data ->> 'contact_ref',"
        " data ->> 'hold_id' FROM events WHERE type = 'waitlist.matched' ORDER BY id",
    )


def test_a_cancellation_tells_the_oldest_matching_entry_once(world: World) -> None:
    w, a = world, world.acme
    day = w.day.isoformat()
    with worker(w.url):
        freed = fill_day(w)
        # wait until the recomputes of the bookings are done: Cid's day is full
        wait(lambda: db_rows(w.url, "SELECT count(*) FROM recompute_requests") == [(0,)])
        wrong_time = join(
            w,
            {
                "service_id": str(a.cut),
                "staff_id": str(a.cid),
                "from": day,
                "to": day,
                "times": [{"start": "14:00", "end": "17:00"}],
                "contact_ref": "late-afternoon",
            },
        )
        oldest = join(
            w,
            {
                "service_id": str(a.cut),
                "staff_id": str(a.cid),
                "from": day,
                "to": day,
                "times": [{"start": "10:00", "end": "12:00"}],
                "contact_ref": "first",
            },
        )
        second = join(
            w, {"service_id": str(a.cut), "staff_id": str(a.cid), "from": day, "to": day, "contact_ref": "second"}
        )
        cancel(w, freed)
        wait(lambda: len(matched(w)) >= 1)
        # a later recompute of the same window (nothing new) tells nobody again
        db_exec(
            w.url,
            "INSERT INTO recompute_requests (tenant_id, staff_id, during, reason) VALUES (%s, %s, NULL, 'admin')",
            (a.id, a.cid),
        )
        wait(lambda: db_rows(w.url, "SELECT count(*) FROM recompute_requests") == [(0,)])
        time.sleep(0.5)
    got = matched(w)
    assert len(got) == 1
    entry, slot, starts, contact, hold_id = got[0]
    assert entry == oldest and contact == "first" and hold_id is None
    assert starts == w.at("11:00").strftime("%Y-%m-%dT%H:%M:%SZ")
    assert db_rows(w.url, "SELECT entry_id::text, slot_id FROM waitlist_matches") == [(oldest, slot)]
    assert wrong_time != oldest and second != oldest


def test_with_auto_hold_the_freed_time_is_held_for_the_entry(world: World) -> None:
    w, a = world, world.acme
    day = w.day.isoformat()
    db_exec(w.url, "UPDATE tenants SET settings = settings || '{\"waitlist_auto_hold\": true}' WHERE id = %s", (a.id,))
    with worker(w.url):
        freed = fill_day(w)
        wait(lambda: db_rows(w.url, "SELECT count(*) FROM recompute_requests") == [(0,)])
        entry = join(
            w,
            {
                "service_id": str(a.cut),
                "from": day,
                "to": day,
                "times": [{"start": "11:00", "end": "12:00"}],
                "contact_ref": "cust-42",
            },
        )
        cancel(w, freed)
        wait(lambda: len(matched(w)) >= 1)
    ((got_entry, _, _, _, hold_id),) = matched(w)
    assert got_entry == entry and hold_id is not None
    ((status, session, staff),) = db_rows(
        w.url, "SELECT status, session_id, staff_id FROM bookings WHERE id = %s", (UUID(hold_id),)
    )
    assert (status, session, staff) == ("held", f"waitlist:{entry}", a.cid)

    # the host sees the entry with its match
    async def listing(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/v1/tenants/acme/waitlist", headers=bearer(a.key))

    r = run(w.url, listing)
    assert r.status_code == 200
    (e,) = r.json()["entries"]
    assert (e["id"], e["matches"], e["contact_ref"], e["times"]) == (
        entry,
        1,
        "cust-42",
        [{"start": "11:00", "end": "12:00"}],
    )


def test_joining_validates_and_the_host_can_cancel(world: World) -> None:
    w, a = world, world.acme
    day = w.day.isoformat()

    async def body(c: httpx.AsyncClient) -> None:
        base = {"service_id": str(a.cut), "from": day, "to": day, "contact_ref": "x"}
        problem(await c.post("/v1/tenants/acme/waitlist", json={**base, "to": "2000-01-01"}), 422)
        r = await c.post("/v1/tenants/acme/waitlist", json={**base, "times": [{"start": "12:00", "end": "11:00"}]})
        problem(r, 422)
        problem(
            await c.post("/v1/tenants/acme/waitlist", json={**base, "times": [{"start": "25:00", "end": "26:00"}]}), 422
        )
        problem(await c.post("/v1/tenants/acme/waitlist", json={**base, "contact_ref": ""}), 422)
        problem(await c.post("/v1/tenants/nope/waitlist", json=base), 404, "tenant_not_found")
        problem(
            await c.post("/v1/tenants/acme/waitlist", json={**base, "service_id": str(w.other.cut)}),
            404,
            "service_not_found",
        )
        problem(
            await c.post("/v1/tenants/acme/waitlist", json={**base, "staff_id": str(a.bob), "service_id": str(a.trim)}),
            404,
            "staff_not_found",
        )
        r = await c.post("/v1/tenants/acme/waitlist", json=base)
        assert r.status_code == 201
        entry = r.json()["id"]
        problem(await c.post(f"/v1/tenants/acme/waitlist/{entry}/cancel"), 401)
        r = await c.post(f"/v1/tenants/acme/waitlist/{entry}/cancel", headers=bearer(a.key))
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        problem(await c.post(f"/v1/tenants/other/waitlist/{entry}/cancel", headers=bearer(w.other.key)), 404)
        r = await c.get("/v1/tenants/acme/waitlist", headers=bearer(a.key))
        assert r.json()["entries"] == []

    run(w.url, body)


def test_entries_past_their_dates_expire(world: World) -> None:
    w, a = world, world.acme
    db_exec(
        w.url,
        "INSERT INTO waitlist_entries (tenant_id, service_id, from_date, to_date, contact_ref)"
        " VALUES (%s, %s, current_date - 5, current_date - 2, 'old')",
        (a.id, a.cut),
    )
    with psycopg.connect(w.url, autocommit=True) as conn:
        from slotmill.materializer.waitlist import expire_entries

        assert expire_entries(conn) == 1
    assert db_rows(w.url, "SELECT status FROM waitlist_entries") == [("expired",)]


def test_a_booking_page_joins_with_contact_details_and_a_branch(world: World) -> None:
    """A customer gives a name and a phone or email, not a host reference; an entry made on a
    branch's page is told only of times at that branch. The contact reaches the host's
    list, never an event or a public answer."""
    w, a = world, world.acme
    day = w.day.isoformat()
    other_branch = db_rows(
        w.url, "INSERT INTO locations (tenant_id, name) VALUES (%s, 'Across town') RETURNING id", (a.id,)
    )[0][0]
    contact = {"name": "Grace Hopper", "phone": "+442079460000"}
    base = {"service_id": str(a.cut), "staff_id": str(a.cid), "from": day, "to": day}

    async def bad(c: httpx.AsyncClient) -> None:
        problem(await c.post("/v1/tenants/acme/waitlist", json=base), 422)  # no way to reach them
        problem(await c.post("/v1/tenants/acme/waitlist", json={**base, "contact": {"name": "G"}}), 422)
        r = await c.post(
            "/v1/tenants/acme/waitlist", json={**base, "contact": contact, "location_id": str(w.other.location)}
        )
        problem(r, 404, "location_not_found")
        assert db_rows(w.url, "SELECT count(*) FROM waitlist_entries") == [(0,)]

    run(w.url, bad)
    with worker(w.url):
        freed = fill_day(w)
        wait(lambda: db_rows(w.url, "SELECT count(*) FROM recompute_requests") == [(0,)])
        elsewhere = join(
            w, {**base, "contact": {"name": "Ada", "email": "ada@example.org"}, "location_id": str(other_branch)}
        )
        here = join(w, {**base, "contact": contact, "location_id": str(a.location)})
        cancel(w, freed)
        wait(lambda: len(matched(w)) >= 1)
        time.sleep(0.5)
    got = matched(w)
    assert [(g[0], g[3]) for g in got] == [(here, None)]  # the event carries no contact
    assert elsewhere != here
    assert "Grace" not in str(db_rows(w.url, "SELECT data FROM events"))

    async def listed(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        r = await c.get("/v1/tenants/acme/waitlist?status=all", headers=bearer(a.key))
        assert r.status_code == 200, r.text
        out: list[dict[str, Any]] = r.json()["entries"]
        return out

    entries = {e["id"]: e for e in run(w.url, listed)}
    assert entries[here]["contact"] == contact and entries[here]["location_id"] == str(a.location)
    assert entries[here]["contact_ref"] is None and entries[here]["matches"] == 1
    assert entries[elsewhere]["matches"] == 0
