"""Host-backend endpoints (SPEC §7, §9): confirm, cancel, reschedule; the tenant key;
idempotency keys; tenant isolation."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
from psycopg.types.json import Jsonb

from slotmill import seed
from tests.support import Tenant, World, bearer, db_exec, db_rows, hold_ok, iso, problem, run, slots, snapshot

BOOKING_FIELDS = {
    "id",
    "staff_id",
    "service_id",
    "location_id",
    "starts_at",
    "seats",
    "contact",
    "ends_at",
    "status",
    "customer_ref",
    "notes",
    "confirmed_at",
    "cancelled_at",
    "reschedule_count",
    "rescheduled_from",
}


async def _hold(c: httpx.AsyncClient, w: World, t: Tenant, hhmm: str, staff: UUID | None = None) -> str:
    body: dict[str, Any] = {"service_id": str(t.cut), "starts_at": iso(w.at(hhmm))}
    if staff is not None:
        body["staff_id"] = str(staff)
    return str((await hold_ok(c, t, body))["hold_id"])


async def _confirm(
    c: httpx.AsyncClient, t: Tenant, hold_id: str, body: Any = None, key: str | None = None, **headers: str
) -> httpx.Response:
    return await c.post(
        f"/v1/tenants/{t.slug}/holds/{hold_id}/confirm",
        json={"customer_ref": "cust-1"} if body is None else body,
        headers={**bearer(key or t.key), **headers},
    )


async def _booked(c: httpx.AsyncClient, w: World, t: Tenant, hhmm: str, staff: UUID | None = None) -> dict[str, Any]:
    r = await _confirm(c, t, await _hold(c, w, t, hhmm, staff), {"customer_ref": "cust-7", "notes": "window seat"})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _settings(url: str, t: Tenant, settings: dict[str, Any]) -> None:
    db_exec(url, "UPDATE tenants SET settings = %s WHERE id = %s", (Jsonb(settings), t.id))


def _status(url: str, booking_id: str) -> str:
    ((status,),) = db_rows(url, "SELECT status FROM bookings WHERE id = %s", (UUID(booking_id),))
    return str(status)


async def _wait_lapsed(url: str, booking_id: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        rows = db_rows(url, "SELECT expires_at <= now() FROM bookings WHERE id = %s", (UUID(booking_id),))
        if rows[0][0]:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("the hold did not lapse")


# --- confirm -------------------------------------------------------------------------------


def test_confirm_books_the_hold_and_removes_the_slots_it_makes_impossible(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> tuple[Any, ...]:
        hold_id = await _hold(c, w, a, "10:00", a.ann)
        r = await _confirm(c, a, hold_id, {"customer_ref": "cust-42", "notes": "first visit"})
        return hold_id, r, await slots(c, w, a.cut), await slots(c, w, a.trim)

    hold_id, r, cut, trim = run(w.url, body)
    assert r.status_code == 201, r.text
    b = r.json()
    assert set(b) == BOOKING_FIELDS
    assert b["id"] == hold_id and b["status"] == "confirmed"
    assert (b["staff_id"], b["service_id"], b["location_id"]) == (str(a.ann), str(a.cut), str(a.location))
    assert (b["starts_at"], b["ends_at"]) == (iso(w.at("10:00")), iso(w.at("11:00")))
    assert (b["customer_ref"], b["notes"], b["reschedule_count"]) == ("cust-42", "first visit", 0)
    assert b["confirmed_at"] and b["cancelled_at"] is None and b["rescheduled_from"] is None
    assert db_rows(w.url, "SELECT status, expires_at FROM bookings WHERE id = %s", (UUID(hold_id),)) == [
        ("confirmed", None)
    ]
    # Removed from the table (not merely hidden): Ann's 10:00 cut, 10:00 and 10:30 trims.
    rows = db_rows(
        w.url,
        "SELECT service_id, starts_at FROM availability_slots WHERE staff_id = %s"
        " AND starts_at >= %s AND starts_at < %s ORDER BY 2, 1",
        (a.ann, w.at("09:30"), w.at("11:00")),
    )
    assert rows == [(a.trim, w.at("09:30"))]
    assert iso(w.at("10:00")) not in {s["starts_at"] for s in cut if s["staff_id"] == str(a.ann)}
    assert iso(w.at("10:00")) in {s["starts_at"] for s in cut if s["staff_id"] == str(a.cid)}
    assert {s["starts_at"][11:16] for s in trim} >= {"09:30", "11:00"}


def test_confirm_needs_a_live_key_of_that_tenant(world: World) -> None:
    w, a, o = world, world.acme, world.other
    with psycopg.connect(w.url) as conn:
        from slotmill.keys import create_key

        revoked = create_key(conn, a.id)
        conn.execute("UPDATE api_keys SET revoked_at = now() WHERE prefix = %s", (revoked[:10],))
        conn.commit()

    async def body(c: httpx.AsyncClient) -> tuple[list[httpx.Response], bool, str]:
        hold_id = await _hold(c, w, a, "10:00")
        before = snapshot(w.url)
        url = f"/v1/tenants/acme/holds/{hold_id}/confirm"
        payload = {"customer_ref": "x"}
        rs = [
            await c.post(url, json=payload),
            await c.post(url, json=payload, headers={"Authorization": f"Basic {a.key}"}),
            await c.post(url, json=payload, headers={"Authorization": "Bearer "}),
            await c.post(url, json=payload, headers=bearer("smk_wrong")),
            await c.post(url, json=payload, headers=bearer(o.key)),
            await c.post(url, json=payload, headers=bearer(revoked)),
        ]
        return rs, snapshot(w.url) == before, hold_id

    rs, unchanged, hold_id = run(w.url, body)
    for r in rs:
        problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert unchanged and _status(w.url, hold_id) == "held"


def test_confirm_refusals_404_409_410_422(world: World) -> None:
    w, a, o = world, world.acme, world.other
    _settings(w.url, a, {"hold_ttl_seconds": 1})

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lapsing = await _hold(c, w, a, "09:00", a.ann)
        _settings(w.url, a, {})
        released = await _hold(c, w, a, "11:00", a.ann)
        assert (await c.delete(f"/v1/tenants/acme/holds/{released}")).status_code == 204
        confirmed = (await _booked(c, w, a, "12:00", a.ann))["id"]
        theirs = await _hold(c, w, o, "10:00", o.ann)
        invalid = await _hold(c, w, a, "13:00", a.ann)
        # The host closes the afternoon directly; the recompute has not run yet.
        with psycopg.connect(w.url) as conn:
            seed.time_off(conn, a.id, a.ann, w.at("13:00"), w.at("14:00"), "dentist")
            conn.commit()
        await _wait_lapsed(w.url, lapsing)
        out["expired"] = await _confirm(c, a, lapsing)
        out["released"] = await _confirm(c, a, released)
        out["confirmed"] = await _confirm(c, a, confirmed)
        out["foreign"] = await _confirm(c, a, theirs)
        out["unknown"] = await _confirm(c, a, str(uuid4()))
        out["unknown tenant"] = await c.post(
            f"/v1/tenants/nope/holds/{theirs}/confirm", json={"customer_ref": "x"}, headers=bearer(a.key)
        )
        out["invalid"] = await _confirm(c, a, invalid)
        out["bad id"] = await _confirm(c, a, "123")
        out["no ref"] = await _confirm(c, a, theirs, {"notes": "n"})
        out["ref type"] = await _confirm(c, a, theirs, {"customer_ref": 5})
        out["long notes"] = await _confirm(c, a, theirs, {"customer_ref": "x", "notes": "n" * 2001})
        out["long key"] = await _confirm(c, a, theirs, **{"Idempotency-Key": "k" * 256})
        out["bad key"] = await _confirm(c, a, theirs, **{"Idempotency-Key": "two words"})
        out["ids"] = {"lapsing": lapsing, "theirs": theirs, "invalid": invalid}
        return out

    out = run(w.url, body)
    problem(out["expired"], 410, "hold_expired")
    assert _status(w.url, out["ids"]["lapsing"]) == "expired"
    problem(out["released"], 409, "hold_not_live")
    problem(out["confirmed"], 409, "hold_not_live")
    problem(out["foreign"], 404, "hold_not_found")
    assert _status(w.url, out["ids"]["theirs"]) == "held"
    problem(out["unknown"], 404, "hold_not_found")
    problem(out["unknown tenant"], 404, "tenant_not_found")
    problem(out["invalid"], 409, "slot_no_longer_valid")
    assert _status(w.url, out["ids"]["invalid"]) == "held"
    assert problem(out["bad id"], 422)["field"] == "path.hold_id"
    assert problem(out["no ref"], 422)["field"] == "body.customer_ref"
    assert problem(out["ref type"], 422)["field"] == "body.customer_ref"
    assert problem(out["long notes"], 422)["field"] == "body.notes"
    assert problem(out["long key"], 422)["field"] == "header.Idempotency-Key"
    assert problem(out["bad key"], 422)["field"] == "header.Idempotency-Key"


def test_idempotent_confirm_replays_the_first_answer(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        hold_id = await _hold(c, w, a, "10:00", a.ann)
        other_hold = await _hold(c, w, a, "14:00", a.ann)
        key = {"Idempotency-Key": "order-1001"}
        out = {
            "first": await _confirm(c, a, hold_id, {"customer_ref": "c"}, **key),
            "replay": await _confirm(c, a, hold_id, {"customer_ref": "c"}, **key),
            "alias": await _confirm(c, a, hold_id, {"customer_ref": "c"}, **{"X-Idempotency-Key": "order-1001"}),
            "other body": await _confirm(c, a, hold_id, {"customer_ref": "d"}, **key),
            "other hold": await _confirm(c, a, other_hold, {"customer_ref": "c"}, **key),
            "disagree": await _confirm(
                c, a, hold_id, {"customer_ref": "c"}, **{"Idempotency-Key": "a", "X-Idempotency-Key": "b"}
            ),
            "404": await _confirm(c, a, str(uuid4()), **{"Idempotency-Key": "missing-1"}),
        }
        out["404 replay"] = await c.post(
            str(out["404"].request.url),
            json={"customer_ref": "cust-1"},
            headers={**bearer(a.key), "Idempotency-Key": "missing-1"},
        )
        out["other_hold"] = other_hold
        return out

    out = run(w.url, body)
    first, replay = out["first"], out["replay"]
    assert first.status_code == replay.status_code == 201
    assert replay.content == first.content
    assert replay.headers.get("idempotent-replayed") == "true"
    assert out["alias"].status_code == 201 and out["alias"].content == first.content
    assert problem(out["other body"], 422, "idempotency_key_reused")["field"] == "header.Idempotency-Key"
    problem(out["other hold"], 422, "idempotency_key_reused")
    assert _status(w.url, out["other_hold"]) == "held"
    problem(out["disagree"], 422, "validation_error")
    problem(out["404"], 404, "hold_not_found")
    assert out["404 replay"].status_code == 404 and out["404 replay"].content == out["404"].content
    assert db_rows(w.url, "SELECT count(*) FROM bookings WHERE status = 'confirmed'") == [(1,)]
    assert db_rows(w.url, "SELECT endpoint, key, status_code FROM idempotency_keys ORDER BY key") == [
        ("confirm", "missing-1", 404),
        ("confirm", "order-1001", 201),
    ]


# --- cancel --------------------------------------------------------------------------------


def test_cancel(world: World) -> None:
    w, a, o = world, world.acme, world.other

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        booking = await _booked(c, w, a, "10:00", a.ann)
        late = await _booked(c, w, a, "11:00", a.ann)
        held = await _hold(c, w, a, "15:00", a.ann)
        theirs = await _booked(c, w, o, "10:00", o.ann)
        queued = db_rows(w.url, "SELECT count(*) FROM recompute_requests")[0][0]
        url = f"/v1/tenants/acme/bookings/{booking['id']}/cancel"
        out: dict[str, Any] = {
            "ok": await c.post(url, headers={**bearer(a.key), "Idempotency-Key": "cancel-1"}),
            "replay": await c.post(url, headers={**bearer(a.key), "Idempotency-Key": "cancel-1"}),
            "again": await c.post(url, json={}, headers=bearer(a.key)),
            "held": await c.post(f"/v1/tenants/acme/bookings/{held}/cancel", headers=bearer(a.key)),
            "foreign": await c.post(f"/v1/tenants/acme/bookings/{theirs['id']}/cancel", headers=bearer(a.key)),
            "foreign key": await c.post(url, headers=bearer(o.key)),
            "unknown": await c.post(f"/v1/tenants/acme/bookings/{uuid4()}/cancel", headers=bearer(a.key)),
            "bad body": await c.post(url, json={"reason": "x"}, headers=bearer(a.key)),
            "bad id": await c.post("/v1/tenants/acme/bookings/xyz/cancel", headers=bearer(a.key)),
        }
        out["queued"] = db_rows(w.url, "SELECT count(*) FROM recompute_requests")[0][0] - queued
        _settings(w.url, a, {"cancellation_deadline_hours": 24 * 30})
        out["deadline"] = await c.post(f"/v1/tenants/acme/bookings/{late['id']}/cancel", headers=bearer(a.key))
        out["ids"] = booking["id"], late["id"], theirs["id"]
        return out

    out = run(w.url, body)
    ok = out["ok"]
    assert ok.status_code == 200, ok.text
    b = ok.json()
    assert set(b) == BOOKING_FIELDS
    assert b["status"] == "cancelled" and b["cancelled_at"] and b["customer_ref"] == "cust-7"
    assert out["replay"].status_code == 200 and out["replay"].content == ok.content
    assert out["queued"] == 1, "the freed time comes back through the recompute queue"
    problem(out["again"], 409, "booking_not_confirmed")
    problem(out["held"], 409, "booking_not_confirmed")
    problem(out["foreign"], 404, "booking_not_found")
    problem(out["foreign key"], 401, "unauthorized")
    problem(out["unknown"], 404, "booking_not_found")
    assert problem(out["bad body"], 422)["field"] == "body.reason"
    assert problem(out["bad id"], 422)["field"] == "path.booking_id"
    problem(out["deadline"], 409, "cancellation_deadline_passed")
    booking_id, late_id, theirs_id = out["ids"]
    assert [_status(w.url, x) for x in (booking_id, late_id, theirs_id)] == ["cancelled", "confirmed", "confirmed"]


# --- reschedule ----------------------------------------------------------------------------


def test_reschedule_moves_the_booking_onto_a_hold(world: World) -> None:
    w, a = world, world.acme
    _settings(w.url, a, {"max_reschedules": 1})

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        old = await _booked(c, w, a, "10:00", a.ann)
        new_hold = await _hold(c, w, a, "14:00", a.cid)
        url = f"/v1/tenants/acme/bookings/{old['id']}/reschedule"
        out: dict[str, Any] = {"old": old, "hold": new_hold}
        out["ok"] = await c.post(url, json={"hold_id": new_hold}, headers={**bearer(a.key), "Idempotency-Key": "r1"})
        out["replay"] = await c.post(
            url, json={"hold_id": new_hold}, headers={**bearer(a.key), "Idempotency-Key": "r1"}
        )
        newer = await _hold(c, w, a, "15:00", a.cid)
        moved = out["ok"].json()["id"]
        out["limit"] = await c.post(
            f"/v1/tenants/acme/bookings/{moved}/reschedule", json={"hold_id": newer}, headers=bearer(a.key)
        )
        out["from cancelled"] = await c.post(url, json={"hold_id": newer}, headers=bearer(a.key))
        out["newer"] = newer
        out["ann 10:00 back?"] = iso(w.at("10:00")) in {
            s["starts_at"] for s in await slots(c, w, a.cut) if s["staff_id"] == str(a.ann)
        }
        return out

    out = run(w.url, body)
    r = out["ok"]
    assert r.status_code == 200, r.text
    b = r.json()
    assert set(b) == BOOKING_FIELDS
    assert b["id"] == out["hold"] and b["status"] == "confirmed"
    assert (b["staff_id"], b["starts_at"]) == (str(a.cid), iso(w.at("14:00")))
    assert (b["reschedule_count"], b["rescheduled_from"]) == (1, out["old"]["id"])
    assert (b["customer_ref"], b["notes"]) == ("cust-7", "window seat")
    assert _status(w.url, out["old"]["id"]) == "cancelled"
    assert out["replay"].status_code == 200 and out["replay"].content == r.content
    problem(out["limit"], 409, "reschedule_limit_reached")
    problem(out["from cancelled"], 409, "booking_not_confirmed")
    assert _status(w.url, out["newer"]) == "held"
    # Freed time comes back through the recompute queue (the worker), not at once.
    assert not out["ann 10:00 back?"]
    assert (
        db_rows(w.url, "SELECT count(*) FROM recompute_requests WHERE staff_id = %s AND reason = 'bookings'", (a.ann,))[
            0
        ][0]
        >= 1
    )


def test_reschedule_refusals(world: World) -> None:
    w, a, o = world, world.acme, world.other

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        old = await _booked(c, w, a, "10:00", a.ann)
        url = f"/v1/tenants/acme/bookings/{old['id']}/reschedule"
        _settings(w.url, a, {"hold_ttl_seconds": 1})
        lapsing = await _hold(c, w, a, "09:00", a.cid)
        _settings(w.url, a, {})
        theirs = await _hold(c, w, o, "10:00", o.ann)
        invalid = await _hold(c, w, a, "13:00", a.cid)
        with psycopg.connect(w.url) as conn:
            seed.busy(conn, a.id, a.cid, w.at("13:30"), w.at("13:45"), external_id="ev-1")
            conn.commit()
        good = await _hold(c, w, a, "15:00", a.cid)
        await _wait_lapsed(w.url, lapsing)
        before = snapshot(w.url)
        out: dict[str, Any] = {
            "expired": await c.post(url, json={"hold_id": lapsing}, headers=bearer(a.key)),
            "foreign hold": await c.post(url, json={"hold_id": theirs}, headers=bearer(a.key)),
            "unknown hold": await c.post(url, json={"hold_id": str(uuid4())}, headers=bearer(a.key)),
            "unknown booking": await c.post(
                f"/v1/tenants/acme/bookings/{uuid4()}/reschedule", json={"hold_id": good}, headers=bearer(a.key)
            ),
            "invalid": await c.post(url, json={"hold_id": invalid}, headers=bearer(a.key)),
            "no hold id": await c.post(url, json={}, headers=bearer(a.key)),
            "bad hold id": await c.post(url, json={"hold_id": "h"}, headers=bearer(a.key)),
            "not a booking": await c.post(
                f"/v1/tenants/acme/bookings/{good}/reschedule", json={"hold_id": good}, headers=bearer(a.key)
            ),
            "other key": await c.post(url, json={"hold_id": good}, headers=bearer(o.key)),
        }
        out["changed"] = snapshot(w.url) != before  # only the expired hold's mark
        _settings(w.url, a, {"reschedule_deadline_hours": 24 * 30})
        out["deadline"] = await c.post(url, json={"hold_id": good}, headers=bearer(a.key))
        out["old"], out["good"], out["lapsing"] = old["id"], good, lapsing
        return out

    out = run(w.url, body)
    problem(out["expired"], 410, "hold_expired")
    assert _status(w.url, out["lapsing"]) == "expired"
    problem(out["foreign hold"], 404, "hold_not_found")
    problem(out["unknown hold"], 404, "hold_not_found")
    problem(out["unknown booking"], 404, "booking_not_found")
    problem(out["invalid"], 409, "slot_no_longer_valid")
    assert problem(out["no hold id"], 422)["field"] == "body.hold_id"
    assert problem(out["bad hold id"], 422)["field"] == "body.hold_id"
    problem(out["not a booking"], 409, "booking_not_confirmed")
    problem(out["other key"], 401, "unauthorized")
    problem(out["deadline"], 409, "reschedule_deadline_passed")
    assert _status(w.url, out["old"]) == "confirmed" and _status(w.url, out["good"]) == "held"


# --- isolation -----------------------------------------------------------------------------


def test_every_endpoint_refuses_another_tenants_ids_and_changes_nothing(world: World) -> None:
    w, a, o = world, world.acme, world.other

    async def body(c: httpx.AsyncClient) -> tuple[list[tuple[str, httpx.Response]], bool]:
        their_hold = await _hold(c, w, o, "10:00", o.ann)
        their_booking = (await _booked(c, w, o, "11:00", o.ann))["id"]
        my_booking = (await _booked(c, w, a, "11:00", a.ann))["id"]
        my_hold = await _hold(c, w, a, "13:00", a.ann)
        their_slot = (await slots(c, w, o.cut, tenant=o))[0]["id"]
        day = w.day.isoformat()
        before = snapshot(w.url)
        k = bearer(a.key)
        calls = [
            (
                "slots: their service",
                c.get("/v1/tenants/acme/slots", params={"service_id": str(o.cut), "from": day, "to": day}),
            ),
            (
                "slots: their staff",
                c.get(
                    "/v1/tenants/acme/slots",
                    params={"service_id": str(a.cut), "from": day, "to": day, "staff_id": str(o.ann)},
                ),
            ),
            (
                "slots: their location",
                c.get(
                    "/v1/tenants/acme/slots",
                    params={"service_id": str(a.cut), "from": day, "to": day, "location_id": str(o.location)},
                ),
            ),
            ("hold: their slot", c.post("/v1/tenants/acme/holds", json={"slot_id": their_slot})),
            (
                "hold: their service",
                c.post("/v1/tenants/acme/holds", json={"service_id": str(o.cut), "starts_at": iso(w.at("12:00"))}),
            ),
            (
                "hold: their staff",
                c.post(
                    "/v1/tenants/acme/holds",
                    json={"service_id": str(a.cut), "starts_at": iso(w.at("12:00")), "staff_id": str(o.cid)},
                ),
            ),
            ("release: their hold", c.delete(f"/v1/tenants/acme/holds/{their_hold}")),
            (
                "confirm: their hold",
                c.post(f"/v1/tenants/acme/holds/{their_hold}/confirm", json={"customer_ref": "x"}, headers=k),
            ),
            ("cancel: their booking", c.post(f"/v1/tenants/acme/bookings/{their_booking}/cancel", headers=k)),
            (
                "reschedule: their booking",
                c.post(f"/v1/tenants/acme/bookings/{their_booking}/reschedule", json={"hold_id": my_hold}, headers=k),
            ),
            (
                "reschedule: onto their hold",
                c.post(f"/v1/tenants/acme/bookings/{my_booking}/reschedule", json={"hold_id": their_hold}, headers=k),
            ),
            (
                "confirm: their key",
                c.post(f"/v1/tenants/acme/holds/{my_hold}/confirm", json={"customer_ref": "x"}, headers=bearer(o.key)),
            ),
            ("cancel: their key", c.post(f"/v1/tenants/acme/bookings/{my_booking}/cancel", headers=bearer(o.key))),
            (
                "confirm: my key, their slug",
                c.post(f"/v1/tenants/other/holds/{their_hold}/confirm", json={"customer_ref": "x"}, headers=k),
            ),
        ]
        out = [(name, await call) for name, call in calls]
        return out, snapshot(w.url) == before

    results, unchanged = run(w.url, body)
    for name, r in results:
        expected = 401 if "key" in name or "slug" in name else 404
        assert r.status_code == expected, (name, r.text)
        problem(r, expected)
    assert unchanged


def test_simultaneous_confirms_of_one_hold_book_it_once(world: World) -> None:
    """Two simultaneous confirms of one hold: one books it, the other is told it is not live."""
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> list[int]:
        hold_id = await _hold(c, w, a, "10:00", a.ann)
        rs = await asyncio.gather(*(_confirm(c, a, hold_id) for _ in range(5)))
        return sorted(r.status_code for r in rs)

    assert run(w.url, body) == [201, 409, 409, 409, 409]
    assert db_rows(w.url, "SELECT count(*) FROM bookings WHERE status = 'confirmed'") == [(1,)]


def test_concurrent_confirms_with_one_idempotency_key_give_one_effect_and_equal_answers(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        hold_id = await _hold(c, w, a, "10:00", a.ann)
        return list(await asyncio.gather(*(_confirm(c, a, hold_id, **{"Idempotency-Key": "same"}) for _ in range(5))))

    rs = run(w.url, body)
    assert {r.status_code for r in rs} == {201}
    assert len({r.content for r in rs}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in rs) == 4
