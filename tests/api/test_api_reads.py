"""GET /v1/tenants/{slug}/slots (SPEC §6, §9): shapes, read-time rules, validation, 404s,
one SQL statement per read, and the index the read uses."""

from __future__ import annotations

import os
import re
import tempfile
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import psycopg
import pytest

from slotmill import seed
from slotmill.api.public import NO_EXTRAS
from slotmill.api.public import Q as READS
from tests.support import World, bearer, db_exec, hold_ok, iso, materialize, problem, run, running, slots

RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_per_staff_read_lists_every_visible_slot_in_rfc3339_utc(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        return await slots(c, w, a.cut)

    got = run(w.url, body)
    # Ann and Cid 09:00-17:00 (8 one-hour slots each), Bob 09:00-12:00 (3).
    assert len(got) == 19
    assert set(got[0]) == {"id", "starts_at", "ends_at", "staff_id", "location_id", "seats_left"}
    assert all(s["seats_left"] == 1 for s in got)  # one-seat services
    assert all(RFC3339_Z.match(s["starts_at"]) and RFC3339_Z.match(s["ends_at"]) for s in got)
    by_staff = {UUID(s["staff_id"]) for s in got}
    assert by_staff == {a.ann, a.bob, a.cid}
    assert [s["starts_at"] for s in got] == sorted(s["starts_at"] for s in got)
    assert {s["starts_at"] for s in got if UUID(s["staff_id"]) == a.bob} == {
        iso(w.at("09:00")),
        iso(w.at("10:00")),
        iso(w.at("11:00")),
    }
    assert all(s["location_id"] == str(a.location) for s in got)
    assert len({s["id"] for s in got}) == 19


def test_filters_by_staff_and_location(world: World) -> None:
    w, a = world, world.acme
    with psycopg.connect(w.url) as conn:
        empty_location = seed.location(conn, a.id, "Nobody works here")
        conn.commit()

    async def body(c: httpx.AsyncClient) -> tuple[Any, ...]:
        return (
            await slots(c, w, a.cut, staff_id=str(a.bob)),
            await slots(c, w, a.cut, location_id=str(a.location)),
            await slots(c, w, a.cut, location_id=str(empty_location)),
            await slots(c, w, a.trim, staff_id=str(a.bob)),  # Bob does not trim
        )

    bob, at_main, at_empty, bob_trims = run(w.url, body)
    assert len(bob) == 3 and {s["staff_id"] for s in bob} == {str(a.bob)}
    assert len(at_main) == 19
    assert at_empty == [] and bob_trims == []


def test_group_by_time_counts_capacity_and_orders_candidates(world: World) -> None:
    w, a = world, world.acme
    # Ann and Cid tie on priority: the one with the smaller id would come first, so give
    # THAT one a confirmed booking on the day; then the other must come first.
    first, second = sorted([a.ann, a.cid], key=str)
    with psycopg.connect(w.url) as conn:
        seed.booking(conn, a.id, first, a.cut, w.at("16:00"), w.at("17:00"))
        # A booking of `second` on another local day does not count for this day.
        nxt = w.day + timedelta(days=1)
        seed.booking(conn, a.id, second, a.cut, w.at("16:00", nxt), w.at("17:00", nxt))
        seed.booking(conn, a.id, second, a.cut, w.at("15:00", nxt), w.at("16:00", nxt))
        materialize(conn, "acme")

    async def body(c: httpx.AsyncClient) -> tuple[Any, ...]:
        return (
            await slots(c, w, a.cut, group="time"),
            await slots(c, w, a.cut, group="time", candidates="1"),
            await slots(c, w, a.cut, group="time", candidates="100"),
        )

    grouped, one, many = run(w.url, body)
    assert [g["starts_at"] for g in grouped] == [iso(w.at(f"{h:02d}:00")) for h in range(9, 17)]
    assert set(grouped[0]) == {"starts_at", "ends_at", "capacity", "candidates"}
    at = {g["starts_at"]: g for g in grouped}
    ten = at[iso(w.at("10:00"))]
    assert ten["capacity"] == 3
    # Bob first (priority 50), then the one without a booking that day, then the other.
    assert ten["candidates"] == [str(a.bob), str(second), str(first)]
    assert at[iso(w.at("13:00"))]["capacity"] == 2
    assert at[iso(w.at("13:00"))]["candidates"] == [str(second), str(first)]
    assert at[iso(w.at("16:00"))]["candidates"] == [str(second)]  # `first` is booked then
    assert [g["candidates"] for g in one][:3] == [[str(a.bob)]] * 3
    assert all(len(g["candidates"]) == g["capacity"] for g in many)


def test_candidates_default_to_three(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        t = seed.tenant(conn, "big")
        crew = [seed.staff(conn, t, f"S{i}") for i in range(5)]
        v = seed.service(conn, t, "Cut", 60, staff_ids=crew)
        for s in crew:
            seed.template(conn, t, s, range(1, 8), "09:00", "10:00")
        materialize(conn, "big")
    day = datetime.now(UTC).date() + timedelta(days=2)

    async def body(c: httpx.AsyncClient) -> httpx.Response:
        params = {"service_id": str(v), "from": str(day), "to": str(day), "group": "time"}
        return await c.get("/v1/tenants/big/slots", params=params)

    r = run(db_url, body)
    (only,) = r.json()["slots"]
    assert only["capacity"] == 5
    assert only["candidates"] == sorted(str(s) for s in crew)[:3]


def test_date_bounds_are_local_to_tz_and_instant_bounds_are_half_open(world: World) -> None:
    w, a = world, world.acme
    d = w.day.isoformat()

    async def body(c: httpx.AsyncClient) -> tuple[Any, ...]:
        return (
            # Tokyo's day d is [d-1 15:00Z, d 15:00Z).
            await slots(c, w, a.cut, staff_id=str(a.ann), tz="Asia/Tokyo"),
            await slots(c, w, a.cut, staff_id=str(a.ann), tz="America/New_York"),
            await slots(
                c,
                w,
                a.cut,
                staff_id=str(a.ann),
                **{"from": iso(w.at("10:00")), "to": iso(w.at("12:00"))},
            ),
            await slots(
                c,
                w,
                a.cut,
                staff_id=str(a.ann),
                **{"from": f"{d}T11:00:00+01:00", "to": f"{d}T12:00:00+01:00"},
            ),
        )

    tokyo, new_york, instants, offset = run(w.url, body)
    # [d-1 15:00Z, d 15:00Z): the previous UTC day's last two starts, then d's until 14:00.
    prev = w.day - timedelta(days=1)
    assert [s["starts_at"] for s in tokyo] == [
        *(iso(w.at(f"{h}:00", prev)) for h in (15, 16)),
        *(iso(w.at(f"{h:02d}:00")) for h in range(9, 15)),
    ]
    assert len(new_york) == 8
    assert [s["starts_at"] for s in instants] == [iso(w.at("10:00")), iso(w.at("11:00"))]
    assert [s["starts_at"] for s in offset] == [iso(w.at("10:00"))]


def test_min_notice_and_max_advance_from_service_else_tenant_settings(world: World) -> None:
    w, a = world, world.acme
    now = datetime.now(UTC)
    # Notice reaching to 11:30 on the day hides 09:00-11:00 of every staff member.
    notice = int((w.at("11:30") - now).total_seconds() // 60)

    def set_tenant(settings: dict[str, Any]) -> None:
        db_exec(
            w.url,
            "UPDATE tenants SET settings = %s::jsonb WHERE id = %s",
            (psycopg.types.json.Jsonb(settings), a.id),
        )

    def set_service(notice_min: int | None, advance: int | None) -> None:
        db_exec(
            w.url,
            "UPDATE services SET min_notice_minutes = %s, max_advance_days = %s WHERE id = %s",
            (notice_min, advance, a.cut),
        )

    async def starts(c: httpx.AsyncClient) -> list[str]:
        return sorted({s["starts_at"] for s in await slots(c, w, a.cut)})

    async def body(c: httpx.AsyncClient) -> dict[str, list[str]]:
        out = {}
        set_tenant({"min_notice_minutes": notice})
        out["tenant notice"] = await starts(c)
        set_service(0, None)
        out["service notice 0 wins"] = await starts(c)
        set_service(None, None)
        set_tenant({"max_advance_days": 2})  # the day is 3 days ahead
        out["tenant advance 2"] = await starts(c)
        set_service(None, 5)
        out["service advance 5 wins"] = await starts(c)
        set_service(None, None)
        set_tenant({"max_advance_days": "lots", "min_notice_minutes": True})  # ignored: not numbers
        out["bad settings ignored"] = await starts(c)
        set_tenant({"max_advance_days": 1e30, "min_notice_minutes": -5})  # out of range: clamped
        out["huge settings clamped"] = await starts(c)
        return out

    out = run(w.url, body)
    every = [iso(w.at(f"{h:02d}:00")) for h in range(9, 17)]
    assert out["tenant notice"] == every[3:]
    assert out["service notice 0 wins"] == every
    assert out["tenant advance 2"] == []
    assert out["service advance 5 wins"] == every
    assert out["bad settings ignored"] == every
    assert out["huge settings clamped"] == every


def test_held_until_in_the_future_hides_a_slot_and_in_the_past_does_not(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> tuple[int, int, int]:
        before = len(await slots(c, w, a.cut, staff_id=str(a.ann)))
        db_exec(
            w.url,
            "UPDATE availability_slots SET held_until = now() + interval '1 hour'"
            " WHERE staff_id = %s AND service_id = %s AND starts_at = %s",
            (a.ann, a.cut, w.at("10:00")),
        )
        hidden = len(await slots(c, w, a.cut, staff_id=str(a.ann)))
        db_exec(
            w.url,
            "UPDATE availability_slots SET held_until = now() - interval '1 second'"
            " WHERE staff_id = %s AND service_id = %s AND starts_at = %s",
            (a.ann, a.cut, w.at("10:00")),
        )
        return before, hidden, len(await slots(c, w, a.cut, staff_id=str(a.ann)))

    assert run(w.url, body) == (8, 7, 8)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"service_id": None}, "query.service_id"),
        ({"service_id": "not-a-uuid"}, "query.service_id"),
        ({"from": None}, "query.from"),
        ({"from": "tomorrow"}, "query.from"),
        ({"from": "2026-02-30"}, "query.from"),
        ({"from": "2026-11-23T09:00:00"}, "query.from"),  # an instant needs an offset
        ({"to": None}, "query.to"),
        ({"to": "2026-13-01"}, "query.to"),
        ({"to": "-1"}, "query.to"),
        ({"tz": "Mars/Olympus_Mons"}, "query.tz"),
        ({"tz": "UTC+3"}, "query.tz"),
        ({"tz": "../../etc/passwd"}, "query.tz"),
        ({"group": "staff"}, "query.group"),
        ({"candidates": "0"}, "query.candidates"),
        ({"candidates": "101"}, "query.candidates"),
        ({"candidates": "three"}, "query.candidates"),
        ({"staff_id": "42"}, "query.staff_id"),
        ({"location_id": "x"}, "query.location_id"),
    ],
)
def test_bad_query_parameters_are_422_naming_the_field(world: World, params: dict[str, Any], field: str) -> None:
    w, a = world, world.acme
    q: dict[str, Any] = {
        "service_id": str(a.cut),
        "from": w.day.isoformat(),
        "to": w.day.isoformat(),
    }
    q.update(params)
    q = {k: v for k, v in q.items() if v is not None}

    async def body(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/v1/tenants/acme/slots", params=q)

    p = problem(run(w.url, body), 422, "validation_error")
    assert p["field"] == field
    assert field in p["detail"]


def test_range_rules_to_not_before_from_at_most_62_days_same_kind(world: World) -> None:
    w, a = world, world.acme
    d = w.day

    async def get(c: httpx.AsyncClient, lo: str, hi: str) -> httpx.Response:
        return await c.get("/v1/tenants/acme/slots", params={"service_id": str(a.cut), "from": lo, "to": hi})

    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await get(c, str(d), str(d - timedelta(days=1))),
            await get(c, str(d), str(d + timedelta(days=62))),  # 63 days, both inclusive
            await get(c, str(d), str(d + timedelta(days=61))),
            await get(c, iso(w.at("09:00")), iso(w.at("09:00") + timedelta(days=62, seconds=1))),
            await get(c, iso(w.at("09:00")), iso(w.at("09:00") + timedelta(days=62))),
            await get(c, str(d), iso(w.at("12:00"))),
            await get(c, iso(w.at("10:00")), iso(w.at("09:00"))),
        ]

    r = run(w.url, body)
    for bad in (r[0], r[1], r[3], r[5], r[6]):
        assert problem(bad, 422, "validation_error")["field"] == "query.to"
    assert r[2].status_code == 200 and r[4].status_code == 200


def test_unknown_or_foreign_tenant_service_staff_location_are_404(world: World) -> None:
    w, a, o = world, world.acme, world.other
    d = w.day.isoformat()
    base = {"service_id": str(a.cut), "from": d, "to": d}
    cases = [
        ("nope", base, "tenant_not_found"),
        ("NOT-A-SLUG", base, "tenant_not_found"),
        ("acme", {**base, "service_id": str(o.cut)}, "service_not_found"),
        ("acme", {**base, "service_id": str(uuid4())}, "service_not_found"),
        ("acme", {**base, "staff_id": str(o.ann)}, "staff_not_found"),
        ("acme", {**base, "location_id": str(o.location)}, "location_not_found"),
        ("acme", {**base, "group": "time", "staff_id": str(o.bob)}, "staff_not_found"),
        ("other", base, "service_not_found"),
    ]

    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [await c.get(f"/v1/tenants/{slug}/slots", params=q) for slug, q, _ in cases]

    for r, (_, _, code) in zip(run(w.url, body), cases, strict=True):
        problem(r, 404, code)


def test_inactive_service_or_staff_is_404(world: World) -> None:
    w, a = world, world.acme
    db_exec(w.url, "UPDATE services SET active = false WHERE id = %s", (a.trim,))
    db_exec(w.url, "UPDATE staff SET active = false WHERE id = %s", (a.cid,))
    d = w.day.isoformat()

    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await c.get("/v1/tenants/acme/slots", params={"service_id": str(a.trim), "from": d, "to": d}),
            await c.get(
                "/v1/tenants/acme/slots",
                params={"service_id": str(a.cut), "from": d, "to": d, "staff_id": str(a.cid)},
            ),
        ]

    trim, cid = run(w.url, body)
    problem(trim, 404, "service_not_found")
    problem(cid, 404, "staff_not_found")


def _statements_in_trace(path: str) -> list[str]:
    """Statements a client sent, from a libpq protocol trace: each extended-protocol
    Execute and each simple Query (BEGIN/COMMIT would be those) is one."""
    with open(path) as f:
        lines = f.read().splitlines()
    return [ln for ln in lines if re.match(r"^F\s+\d+\s+(Execute|Query)\b", ln)]


@pytest.mark.parametrize("group", [None, "time"])
def test_a_slot_read_is_exactly_one_sql_statement(world: World, group: str | None) -> None:
    w, a = world, world.acme
    fd, path = tempfile.mkstemp(prefix="slotmill-trace-")
    os.close(fd)

    async def main() -> tuple[list[str], httpx.Response]:
        # One pooled connection, traced at the protocol level: everything the read sends.
        async with running(w.url, pool_min_size=1, pool_max_size=1) as (app, c):
            await slots(c, w, a.cut)  # warm up
            async with app.state.pool.connection() as conn:
                trace = open(path, "w")  # noqa: SIM115 (closed below, after the request)
                conn.pgconn.trace(trace.fileno())
                conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
            params = {"service_id": str(a.cut), "from": str(w.day), "to": str(w.day)}
            if group:
                params["group"] = group
            r = await c.get("/v1/tenants/acme/slots", params=params)
            async with app.state.pool.connection() as conn:
                conn.pgconn.untrace()
            trace.close()
            return _statements_in_trace(path), r

    try:
        import asyncio

        sent, r = asyncio.run(main())
    finally:
        os.unlink(path)
    assert r.status_code == 200 and r.json()["slots"]
    assert len(sent) == 1, sent


def test_the_read_uses_the_availability_slots_read_index(world: World) -> None:
    w, a = world, world.acme
    params = {
        "slug": "acme",
        "service_id": a.cut,
        "from_at": None,
        "to_at": None,
        "from_date": w.day,
        "to_date": w.day + timedelta(days=6),
        "tz": None,
        "staff_id": None,
        "location_id": None,
        "candidates": 3,
        "limit": 1000,
        **NO_EXTRAS,
    }
    # and with engine slots passed in past a table end (beyond the horizon): the table's
    # part still reads by index
    beyond = {**params, "beyond_from": w.at("12:00") + timedelta(days=3)}
    with psycopg.connect(w.url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE availability_slots")
        for name, indexes, values in (
            ("read_slots", ("availability_slots_read",), params),
            # per staff member of the service: the primary key (tenant, staff, starts_at)
            # is as good as the read index, and the planner picks by the numbers
            ("read_slots_by_time", ("availability_slots_read", "availability_slots_pkey"), params),
            ("read_slots", ("availability_slots_read",), beyond),
            ("read_slots_by_time", ("availability_slots_read", "availability_slots_pkey"), beyond),
        ):
            plan = "\n".join(r[0] for r in conn.execute("EXPLAIN " + READS[name], values).fetchall())
            assert any(i in plan for i in indexes), plan
            assert "Seq Scan on availability_slots" not in plan, plan


def test_public_responses_carry_no_customer_data(world: World) -> None:
    w, a = world, world.acme
    secret_ref, secret_note = "CUSTOMER-REF-3141", "NOTE-2718-private"

    async def body(c: httpx.AsyncClient) -> list[str]:
        h = await hold_ok(
            c,
            a,
            {"service_id": str(a.cut), "starts_at": iso(w.at("10:00")), "staff_id": str(a.ann)},
        )
        r = await c.post(
            f"/v1/tenants/acme/holds/{h['hold_id']}/confirm",
            json={"customer_ref": secret_ref, "notes": secret_note},
            headers=bearer(a.key),
        )
        assert r.status_code == 201, r.text
        seen = [(await c.post("/v1/tenants/acme/holds", json={"slot_id": "x" * 32})).text]
        h2 = await hold_ok(c, a, {"service_id": str(a.cut), "starts_at": iso(w.at("10:00"))})
        seen.append(str(h2))
        seen.append((await c.delete(f"/v1/tenants/acme/holds/{h2['hold_id']}")).text)
        seen.append((await c.delete(f"/v1/tenants/acme/holds/{h['hold_id']}")).text)
        for service in (a.cut, a.trim):
            for group in (None, "time"):
                q = {
                    "service_id": str(service),
                    "from": str(w.day),
                    "to": str(w.day + timedelta(days=3)),
                }
                if group:
                    q["group"] = group
                seen.append((await c.get("/v1/tenants/acme/slots", params=q)).text)
        return seen

    texts = run(w.url, body)
    assert any(str(a.ann) in t for t in texts)  # the reads did return slots
    for t in texts:
        assert secret_ref not in t and secret_note not in t
        assert "customer" not in t and "notes" not in t


def test_reads_are_rate_limited_per_client_address(world: World) -> None:
    w, a = world, world.acme

    async def main() -> list[httpx.Response]:
        async with running(w.url, rate_limit_reads=3) as (_, c):
            q = {"service_id": str(a.cut), "from": str(w.day), "to": str(w.day)}
            return [await c.get("/v1/tenants/acme/slots", params=q) for _ in range(4)]

    import asyncio

    rs = asyncio.run(main())
    assert [r.status_code for r in rs] == [200, 200, 200, 429]
    p = problem(rs[3], 429, "rate_limited")
    assert int(rs[3].headers["Retry-After"]) >= 1
    assert "minute" in p["detail"]


def test_large_reads_come_in_pages_that_never_split_a_start(world: World) -> None:
    # A per-staff read of every staff member over 62 days used to be one 40 MB answer.
    w, a = world, world.acme
    last = (w.day + timedelta(days=20)).isoformat()

    async def body(client: httpx.AsyncClient) -> None:
        query = {"service_id": str(a.cut), "from": w.day.isoformat(), "to": last}
        whole = (await client.get(f"/v1/tenants/{a.slug}/slots", params={**query, "limit": 5000})).json()
        assert whole["next_from"] is None and len(whole["slots"]) > 100
        got: list[dict[str, Any]] = []
        page: dict[str, Any] = {"next_from": w.day.isoformat()}
        pages = 0
        while page["next_from"] is not None:
            start = page["next_from"]
            params = {**query, "limit": 50, "from": start}
            if "T" in start:  # an instant: the end as an instant too, the same local midnight
                params["to"] = iso(w.at("00:00", w.day + timedelta(days=21)))
            r = await client.get(f"/v1/tenants/{a.slug}/slots", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            starts = [s["starts_at"] for s in page["slots"]]
            assert len(page["slots"]) <= 50
            if page["next_from"] is not None:
                assert page["next_from"] not in starts and page["next_from"] > starts[-1]
            got.extend(page["slots"])
            pages += 1
        assert pages > 3
        assert [s["id"] for s in got] == [s["id"] for s in whole["slots"]][: len(got)]
        # grouped by time, the same paging
        grouped = await client.get(f"/v1/tenants/{a.slug}/slots", params={**query, "group": "time", "limit": 10})
        g = grouped.json()
        assert len(g["slots"]) == 10 and g["next_from"] > g["slots"][-1]["starts_at"]

    run(w.url, body)
