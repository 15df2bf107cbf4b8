"""POST/DELETE /v1/tenants/{slug}/holds (SPEC §7, §9): holding, hiding, expiry without a
job, release, any-staff holds, refusals, and 500 simultaneous holds on one slot."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest

from slotmill import seed
from tests.support import (
    World,
    db_exec,
    db_rows,
    hold,
    hold_ok,
    iso,
    materialize,
    problem,
    run,
    running,
    slots,
    snapshot,
)


def _starts(got: list[dict[str, Any]], staff: UUID) -> list[str]:
    return [s["starts_at"][11:16] for s in got if UUID(s["staff_id"]) == staff]


def test_hold_by_slot_id_answers_201_and_stores_a_held_booking(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
        target = (await slots(c, w, a.cut, staff_id=str(a.ann)))[1]
        r = await c.post(
            "/v1/tenants/acme/holds",
            json={"slot_id": target["id"], "session_id": "widget-session-1"},
        )
        assert r.status_code == 201, r.text
        assert r.headers["content-type"] == "application/json"
        return target, r.json()

    target, h = run(w.url, body)
    assert set(h) == {
        "hold_id",
        "staff_id",
        "service_id",
        "location_id",
        "starts_at",
        "ends_at",
        "expires_at",
        "seats",
        "consistency",
    }
    assert h["seats"] == 1 and h["location_id"] == str(a.location)
    assert (h["staff_id"], h["service_id"]) == (str(a.ann), str(a.cut))
    assert (h["starts_at"], h["ends_at"]) == (target["starts_at"], target["ends_at"])
    ((status, ttl, session, expires),) = db_rows(
        w.url,
        "SELECT status, expires_at - created_at, session_id, expires_at FROM bookings WHERE id = %s",
        (UUID(h["hold_id"]),),
    )
    assert status == "held"
    assert ttl == timedelta(seconds=600)  # tenants.settings has no hold_ttl_seconds
    assert session == "widget-session-1"
    # to the microsecond: a countdown from it can never end before the hold does
    assert h["expires_at"] == expires.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_hold_by_service_and_start_with_or_without_staff(world: World) -> None:
    w, a = world, world.acme
    ten = iso(w.at("10:00"))

    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await hold(c, a, {"service_id": str(a.cut), "starts_at": ten, "staff_id": str(a.cid)}),
            # Any staff: best candidate first (Bob, priority 50), then whoever is left.
            await hold(c, a, {"service_id": str(a.cut), "starts_at": ten}),
            await hold(c, a, {"service_id": str(a.cut), "starts_at": ten}),
            await hold(c, a, {"service_id": str(a.cut), "starts_at": ten}),
        ]

    cid, first, second, none_left = run(w.url, body)
    assert cid.status_code == 201 and cid.json()["staff_id"] == str(a.cid)
    assert first.status_code == 201 and first.json()["staff_id"] == str(a.bob)
    assert second.status_code == 201 and second.json()["staff_id"] == str(a.ann)
    problem(none_left, 409, "slot_unavailable")
    assert db_rows(w.url, "SELECT count(*) FROM bookings WHERE status = 'held'") == [(3,)]


def test_any_staff_hold_skips_a_candidate_the_database_refuses(world: World) -> None:
    w, a = world, world.acme
    # A host writes Bob's booking directly; its recompute has not run, so Bob's 10:00 slot
    # still shows. The exclusion constraint refuses Bob; the next candidate gets the hold.
    with psycopg.connect(w.url) as conn:
        seed.booking(conn, a.id, a.bob, a.cut, w.at("10:00"), w.at("11:00"))
        conn.commit()
    ten = iso(w.at("10:00"))

    async def body(c: httpx.AsyncClient) -> tuple[list[dict[str, Any]], httpx.Response, httpx.Response]:
        visible = await slots(c, w, a.cut, staff_id=str(a.bob))
        bob = await hold(c, a, {"service_id": str(a.cut), "starts_at": ten, "staff_id": str(a.bob)})
        anyone = await hold(c, a, {"service_id": str(a.cut), "starts_at": ten})
        return visible, bob, anyone

    visible, bob, anyone = run(w.url, body)
    assert "10:00" in _starts(visible, a.bob)
    problem(bob, 409, "slot_unavailable")
    assert anyone.status_code == 201, anyone.text
    assert anyone.json()["staff_id"] in (str(a.ann), str(a.cid))
    # The refused attempt left nothing behind.
    assert db_rows(w.url, "SELECT count(*) FROM bookings WHERE staff_id = %s", (a.bob,)) == [(1,)]


def test_a_hold_hides_overlapping_slots_of_every_service_of_that_staff_member_only(
    db_url: str,
) -> None:
    with psycopg.connect(db_url) as conn:
        from tests.support import seed_tenant

        a = seed_tenant(conn, "acme", settings={"hold_ttl_seconds": 2})
        # 30 minutes with 15 minutes of preparation before: its blocked range starts earlier.
        color = seed.service(conn, a.id, "Color", 30, before=15, interval=30, staff_ids=[a.ann])
        materialize(conn, "acme")
    from tests.support import World, today_in_zone

    w = World(db_url, today_in_zone() + timedelta(days=3), a, a)

    async def everything(c: httpx.AsyncClient) -> dict[str, list[str]]:
        return {
            "cut ann": _starts(await slots(c, w, a.cut), a.ann),
            "cut bob": _starts(await slots(c, w, a.cut), a.bob),
            "cut cid": _starts(await slots(c, w, a.cut), a.cid),
            "trim": _starts(await slots(c, w, a.trim), a.ann),
            "color": _starts(await slots(c, w, color), a.ann),
        }

    async def body(c: httpx.AsyncClient) -> tuple[Any, ...]:
        before = await everything(c)
        queued = db_rows(db_url, "SELECT count(*) FROM recompute_requests")
        h = await hold_ok(c, a, {"service_id": str(a.cut), "starts_at": iso(w.at("10:00")), "staff_id": str(a.ann)})
        during = await everything(c)
        # Expiry needs no job: poll the read until the hold has lapsed (bounded).
        deadline = time.monotonic() + 30
        after = during
        while after != before and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            after = await everything(c)
        return before, during, after, h, queued

    before, during, after, h, queued = run(db_url, body)
    assert during["cut ann"] == [x for x in before["cut ann"] if x != "10:00"]
    assert during["trim"] == [x for x in before["trim"] if x not in ("10:00", "10:30")]
    # Color at 11:00 blocks [10:45, 11:30): overlaps the hold. At 09:30 it blocks
    # [09:15, 10:00): touches it only. At 11:30, [11:15, 12:00): clear.
    assert during["color"] == [x for x in before["color"] if x not in ("10:00", "10:30", "11:00")]
    assert "09:30" in during["color"] and "11:30" in during["color"]
    for other in ("cut bob", "cut cid"):
        assert during[other] == before[other]
    assert after == before, "the hold's slots came back after expiry"
    # The hold path maintains held_until itself: no recompute was queued for it.
    assert db_rows(db_url, "SELECT count(*) FROM recompute_requests") == queued
    assert h["expires_at"] <= iso(datetime.now(UTC))


def test_release_frees_the_slots_and_recomputes_held_until_from_the_other_holds(
    world: World,
) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        out: dict[str, Any] = {}
        h1 = await hold_ok(c, a, {"service_id": str(a.trim), "starts_at": iso(w.at("10:00")), "staff_id": str(a.ann)})
        h2 = await hold_ok(c, a, {"service_id": str(a.trim), "starts_at": iso(w.at("10:30")), "staff_id": str(a.ann)})
        out["both"] = (_starts(await slots(c, w, a.cut), a.ann), _starts(await slots(c, w, a.trim), a.ann))
        r = await c.delete(f"/v1/tenants/acme/holds/{h1['hold_id']}")
        out["release 1"] = r.status_code, r.content
        out["one"] = (_starts(await slots(c, w, a.cut), a.ann), _starts(await slots(c, w, a.trim), a.ann))
        out["release 2"] = (await c.delete(f"/v1/tenants/acme/holds/{h2['hold_id']}")).status_code
        out["none"] = (_starts(await slots(c, w, a.cut), a.ann), _starts(await slots(c, w, a.trim), a.ann))
        out["again"] = (await c.delete(f"/v1/tenants/acme/holds/{h2['hold_id']}")).status_code
        out["ids"] = h1["hold_id"], h2["hold_id"]
        return out

    out = run(w.url, body)
    cut_both, trim_both = out["both"]
    assert "10:00" not in cut_both and "10:00" not in trim_both and "10:30" not in trim_both
    assert out["release 1"] == (204, b"")
    cut_one, trim_one = out["one"]
    assert "10:00" not in cut_one, "still hidden by the second hold"
    assert "10:00" in trim_one and "10:30" not in trim_one
    assert out["release 2"] == 204
    cut_none, trim_none = out["none"]
    assert "10:00" in cut_none and {"10:00", "10:30"} <= set(trim_none)
    assert out["again"] == 204, "releasing a released hold is done already"
    rows = db_rows(
        w.url,
        "SELECT status, cancelled_at IS NOT NULL FROM bookings WHERE id = ANY(%s)",
        ([UUID(x) for x in out["ids"]],),
    )
    assert rows == [("cancelled", True), ("cancelled", True)]
    assert db_rows(w.url, "SELECT count(*) FROM availability_slots WHERE held_until IS NOT NULL") == [(0,)]


def test_release_refusals(world: World) -> None:
    w, a, o = world, world.acme, world.other

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        theirs = await hold_ok(c, o, {"service_id": str(o.cut), "starts_at": iso(w.at("10:00"))})
        mine = await hold_ok(c, a, {"service_id": str(a.cut), "starts_at": iso(w.at("10:00"))})
        confirmed = await c.post(
            f"/v1/tenants/acme/holds/{mine['hold_id']}/confirm",
            json={"customer_ref": "c-1"},
            headers={"Authorization": f"Bearer {a.key}"},
        )
        assert confirmed.status_code == 201
        before = snapshot(w.url)
        out = {
            "unknown": await c.delete(f"/v1/tenants/acme/holds/{uuid4()}"),
            "foreign": await c.delete(f"/v1/tenants/acme/holds/{theirs['hold_id']}"),
            "no tenant": await c.delete(f"/v1/tenants/nope/holds/{theirs['hold_id']}"),
            "bad id": await c.delete("/v1/tenants/acme/holds/not-a-uuid"),
            "confirmed": await c.delete(f"/v1/tenants/acme/holds/{mine['hold_id']}"),
        }
        out["unchanged"] = snapshot(w.url) == before
        return out

    out = run(w.url, body)
    problem(out["unknown"], 404, "hold_not_found")
    problem(out["foreign"], 404, "hold_not_found")
    problem(out["no tenant"], 404, "tenant_not_found")
    assert problem(out["bad id"], 422, "validation_error")["field"] == "path.hold_id"
    problem(out["confirmed"], 409, "hold_confirmed")
    assert out["unchanged"]


def test_hold_refusals_404_409_422_change_nothing(world: World) -> None:
    w, a, o = world, world.acme, world.other
    ten = iso(w.at("10:00"))

    async def body(c: httpx.AsyncClient) -> dict[str, httpx.Response | bool]:
        foreign_slot = (await slots(c, w, o.cut, tenant=o))[0]["id"]
        gone = (await slots(c, w, a.cut, staff_id=str(a.ann)))[0]["id"]
        db_exec(w.url, "DELETE FROM availability_slots WHERE id = %s", (gone,))
        past = iso(datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1))
        before = snapshot(w.url)
        cut = str(a.cut)
        out: dict[str, httpx.Response | bool] = {
            "no tenant": await c.post("/v1/tenants/nope/holds", json={"service_id": cut, "starts_at": ten}),
            "foreign service": await hold(c, a, {"service_id": str(o.cut), "starts_at": ten}),
            "foreign service+staff": await hold(
                c, a, {"service_id": str(o.cut), "starts_at": ten, "staff_id": str(o.ann)}
            ),
            "foreign staff": await hold(c, a, {"service_id": cut, "starts_at": ten, "staff_id": str(o.ann)}),
            "foreign slot": await hold(c, a, {"slot_id": foreign_slot}),
            "made-up slot": await hold(c, a, {"slot_id": "0123456789abcdef0123456789abcdef"}),
            "malformed slot": await hold(c, a, {"slot_id": "x" * 32}),
            "short slot": await hold(c, a, {"slot_id": gone[:-1]}),
            "gone slot": await hold(c, a, {"slot_id": gone}),
            "off grid": await hold(c, a, {"service_id": cut, "starts_at": iso(w.at("10:15"))}),
            "past": await hold(c, a, {"service_id": cut, "starts_at": past, "staff_id": str(a.ann)}),
            "not qualified": await hold(c, a, {"service_id": str(a.trim), "starts_at": ten, "staff_id": str(a.bob)}),
        }
        out["unchanged"] = snapshot(w.url) == before
        return out

    out = run(w.url, body)
    problem(out["no tenant"], 404, "tenant_not_found")  # type: ignore[arg-type]
    problem(out["foreign service"], 404, "service_not_found")  # type: ignore[arg-type]
    problem(out["foreign service+staff"], 404, "service_not_found")  # type: ignore[arg-type]
    problem(out["foreign staff"], 404, "staff_not_found")  # type: ignore[arg-type]
    problem(out["foreign slot"], 404, "slot_not_found")  # type: ignore[arg-type]
    problem(out["made-up slot"], 404, "slot_not_found")  # type: ignore[arg-type]
    problem(out["malformed slot"], 404, "slot_not_found")  # type: ignore[arg-type]
    problem(out["short slot"], 404, "slot_not_found")  # type: ignore[arg-type]
    for name in ("gone slot", "off grid", "past", "not qualified"):
        problem(out[name], 409, "slot_unavailable")  # type: ignore[arg-type]
    assert out["unchanged"] is True


_SERVICE = b'"service_id": "6f1d6f5e-0000-4000-8000-000000000000"'
_WHEN = b'"starts_at": "2026-11-23T09:00:00Z"'


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"", "body"),
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "body.service_id"),
        (b'{"slot_id": 42}', "body.slot_id"),
        (b'{"slot_id": ""}', "body.slot_id"),
        (b'{"slot_id": "abc", "service_id": "x"}', "body.service_id"),
        (b'{"service_id": "nope", ' + _WHEN + b"}", "body.service_id"),
        (b"{" + _SERVICE + b', "starts_at": "2026-11-23 09:00"}', "body.starts_at"),
        (b"{" + _SERVICE + b", " + _WHEN + b', "staff_id": 7}', "body.staff_id"),
        (b"{" + _SERVICE + b", " + _WHEN + b', "colour": "red"}', "body.colour"),
        (b"{" + _SERVICE + b", " + _WHEN + b', "session_id": ""}', "body.session_id"),
    ],
)
def test_bad_hold_bodies_are_422_naming_the_field(world: World, raw: bytes, field: str) -> None:
    async def body(c: httpx.AsyncClient) -> httpx.Response:
        return await c.post("/v1/tenants/acme/holds", content=raw, headers={"content-type": "application/json"})

    assert problem(run(world.url, body), 422, "validation_error")["field"] == field


def test_holds_are_rate_limited_per_client_address(world: World) -> None:
    w, a = world, world.acme

    async def main() -> list[httpx.Response]:
        async with running(w.url, rate_limit_holds=2) as (_, c):
            body = {"service_id": str(a.cut), "starts_at": iso(w.at("10:00"))}
            return [await hold(c, a, body) for _ in range(3)]

    rs = asyncio.run(main())
    assert [r.status_code for r in rs] == [201, 201, 429]
    problem(rs[2], 429, "rate_limited")
    assert int(rs[2].headers["Retry-After"]) >= 1


def test_500_simultaneous_holds_on_one_slot_leave_exactly_one_winner(world: World) -> None:
    w, a = world, world.acme

    async def main() -> list[int]:
        async with running(w.url, pool_min_size=4, pool_max_size=16) as (_, c):
            target = (await slots(c, w, a.cut, staff_id=str(a.ann)))[2]
            body = {"slot_id": target["id"]}
            rs = await asyncio.gather(*(hold(c, a, body) for _ in range(500)))
            return [r.status_code for r in rs]

    codes = asyncio.run(main())
    assert codes.count(201) == 1
    assert codes.count(409) == 499
    assert db_rows(w.url, "SELECT count(*) FROM bookings") == [(1,)]


def test_a_confirmed_booking_written_directly_over_a_live_hold_is_refused(world: World) -> None:
    w, a = world, world.acme
    db_exec(w.url, "UPDATE tenants SET settings = '{\"hold_ttl_seconds\": 1}' WHERE id = %s", (a.id,))

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        return await hold_ok(c, a, {"service_id": str(a.cut), "starts_at": iso(w.at("10:00")), "staff_id": str(a.ann)})

    h = run(w.url, body)
    with psycopg.connect(w.url) as conn:
        # Overlapping by half an hour, written the way a host application would.
        with pytest.raises(psycopg.errors.ExclusionViolation):
            seed.booking(conn, a.id, a.ann, a.trim, w.at("10:30"), w.at("11:00"))
        conn.rollback()
        # Once the hold has lapsed it blocks nothing: the same insert goes through.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            lapsed = conn.execute(
                "SELECT expires_at <= clock_timestamp() FROM bookings WHERE id = %s", (UUID(h["hold_id"]),)
            ).fetchone()
            conn.rollback()
            if lapsed and lapsed[0]:
                break
            time.sleep(0.2)
        seed.booking(conn, a.id, a.ann, a.trim, w.at("10:30"), w.at("11:00"))
        conn.commit()
    statuses = db_rows(w.url, "SELECT status FROM bookings ORDER BY created_at")
    assert statuses == [("expired",), ("confirmed",)]
