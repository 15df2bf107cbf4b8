"""The host's rules API (docs/architecture.md#rules-api): every resource created, read,
listed in cursor pages, replaced, patched, deleted and bulk-upserted; ETag / If-Match (412 on
a stale write); a 422 naming the field for each kind of invalid value; 404 across tenants;
no partial writes; and each write visible in slot reads once the worker has run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from slotmill import seed
from slotmill.jobs.queue import drain_one
from tests.support import Tenant, World, bearer, db_rows, iso, problem, run, slots, snapshot

Body = Callable[[World, Tenant], dict[str, Any]]


def _second_location(w: World, t: Tenant) -> UUID:
    with psycopg.connect(w.url) as conn:
        return seed.location(conn, t.id, "Second street")


# resource path -> (a body to create, changes for PATCH, the field PATCH changes, table)
CASES: dict[str, tuple[Body, dict[str, Any], str]] = {
    "locations": (lambda w, t: {"name": "North", "timezone": "Europe/Paris"}, {"name": "North 2"}, "locations"),
    "staff": (
        lambda w, t: {"display_name": "Dee", "location_id": str(t.location), "priority": 10},
        {"priority": 5},
        "staff",
    ),
    "services": (lambda w, t: {"name": "Wash", "duration_minutes": 20}, {"buffer_after_minutes": 5}, "services"),
    "staff-services": (
        lambda w, t: {"staff_id": str(t.bob), "service_id": str(t.trim)},
        {},  # the staff member: see _patch_of
        "staff_services",
    ),
    "overrides": (
        lambda w, t: {"staff_id": str(t.ann), "on_date": w.day.isoformat(), "is_available": False},
        {"reason": "dentist"},
        "availability_overrides",
    ),
    "holidays": (
        lambda w, t: {"on_date": w.day.isoformat(), "name": "Feast", "rrule": "FREQ=YEARLY"},
        {"name": "Feast day"},
        "holidays",
    ),
    "time-off": (
        lambda w, t: {"staff_id": str(t.ann), "starts_at": iso(w.at("10:00")), "ends_at": iso(w.at("11:00"))},
        {"reason": "errand"},
        "time_off",
    ),
    "busy-times": (
        lambda w, t: {
            "staff_id": str(t.ann),
            "starts_at": iso(w.at("12:00")),
            "ends_at": iso(w.at("13:00")),
            "source": "crm",
            "external_id": "evt-1",
        },
        {"external_id": "evt-2"},
        "busy_times",
    ),
    "resources": (
        lambda w, t: {"kind": "room", "name": "Room 1", "location_id": str(t.location)},
        {"active": False},
        "resources",
    ),
    "service-requirements": (
        lambda w, t: {"service_id": str(t.trim), "kind": "basin"},
        {"quantity": 2},
        "service_resources",
    ),
    "travel-times": (
        lambda w, t: {
            "from_location_id": str(t.location),
            "to_location_id": str(_second_location(w, t)),
            "minutes": 20,
        },
        {"minutes": 25},
        "location_travel",
    ),
    "calendar-feeds": (
        lambda w, t: {"staff_id": str(t.ann), "url": "https://calendar.example/ann.ics"},
        {"refresh_minutes": 60},
        "calendar_feeds",
    ),
}


def _patch_of(path: str, t: Tenant) -> dict[str, Any]:
    changes = dict(CASES[path][1])
    if path == "staff-services":
        changes = {"staff_id": str(t.cid)}
    return changes


def _count(url: str, table: str, t: Tenant) -> int:
    return int(db_rows(url, f"SELECT count(*) FROM {table} WHERE tenant_id = %s", (t.id,))[0][0])


@pytest.mark.parametrize("path", list(CASES))
def test_create_read_list_replace_patch_delete(world: World, path: str) -> None:
    w, a, o = world, world.acme, world.other
    make, _, table = CASES[path]
    changes = _patch_of(path, a)
    base = f"/v1/tenants/{a.slug}/{path}"
    body = make(w, a)

    async def go(c: httpx.AsyncClient) -> None:
        h = bearer(a.key)
        r = await c.post(base, json=body, headers=h)
        assert r.status_code == 201, r.text
        created = r.json()
        row_id = created["id"]
        for k, v in body.items():
            assert created[k] == v, (k, created)
        tag = r.headers["ETag"]
        assert r.headers["Location"] == f"{base}/{row_id}"

        r = await c.get(f"{base}/{row_id}", headers=h)
        assert r.status_code == 200 and r.json() == created and r.headers["ETag"] == tag

        listed = await c.get(base, headers=h, params={"limit": 500})
        assert listed.status_code == 200, listed.text
        assert created in listed.json()["items"]

        # another tenant's key and path never see it
        other = await c.get(f"/v1/tenants/{o.slug}/{path}/{row_id}", headers=bearer(o.key))
        problem(other, 404)
        assert created not in (await c.get(f"/v1/tenants/{o.slug}/{path}", headers=bearer(o.key))).json()["items"]
        problem(await c.delete(f"/v1/tenants/{o.slug}/{path}/{row_id}", headers=bearer(o.key)), 404)

        # PATCH with the current ETag, then a PUT with the old one is refused
        r = await c.patch(f"{base}/{row_id}", json=changes, headers={**h, "If-Match": tag})
        assert r.status_code == 200, r.text
        patched = r.json()
        assert {k: patched[k] for k in changes} == changes
        new_tag = r.headers["ETag"]
        assert new_tag != tag
        stale = await c.put(f"{base}/{row_id}", json=body, headers={**h, "If-Match": tag})
        assert problem(stale, 412, "precondition_failed")["field"] == "header.If-Match"
        assert (await c.get(f"{base}/{row_id}", headers=h)).json() == patched

        r = await c.put(f"{base}/{row_id}", json=body, headers={**h, "If-Match": new_tag})
        assert r.status_code == 200, r.text
        assert r.json() == created and r.headers["ETag"] == tag  # the same representation, the same tag

        problem(await c.delete(f"{base}/{row_id}", headers={**h, "If-Match": new_tag}), 412)
        r = await c.delete(f"{base}/{row_id}", headers={**h, "If-Match": tag})
        assert r.status_code == 204, r.text
        problem(await c.get(f"{base}/{row_id}", headers=h), 404)

    before = _count(w.url, table, a)
    run(w.url, go)
    assert _count(w.url, table, a) == before


@pytest.mark.parametrize("path", list(CASES))
def test_bulk_upserts_all_or_nothing(world: World, path: str) -> None:
    w, a = world, world.acme
    make, _, table = CASES[path]
    first = make(w, a)
    base = f"/v1/tenants/{a.slug}/{path}"

    async def go(c: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        h = bearer(a.key)
        bad = {**first, "nonsense": 1}
        refused = await c.post(f"{base}/bulk", json={"items": [first, bad]}, headers=h)
        ok = await c.post(f"{base}/bulk", json={"items": [first]}, headers=h)
        known = [{**first, "id": ok.json()["items"][0]["id"]}] if _natural(path) == ("id",) else [first]
        again = await c.post(f"{base}/bulk", json={"items": known}, headers=h)
        return refused, ok, again

    before = _count(w.url, table, a)
    refused, ok, again = run(w.url, go)
    assert problem(refused, 422)["field"] == "body.items.1.nonsense"
    assert ok.status_code == 200, ok.text
    assert (ok.json()["created"], ok.json()["updated"]) == (1, 0)
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["updated"]) == (0, 1)
    assert again.json()["items"] == ok.json()["items"]
    assert _count(w.url, table, a) == before + 1


def _natural(path: str) -> tuple[str, ...]:
    return {
        "busy-times": ("source", "external_id"),
        "staff-services": ("staff_id", "service_id"),
        "travel-times": ("from_location_id", "to_location_id"),
    }.get(path, ("id",))


def test_a_bulk_with_one_bad_row_changes_nothing_and_names_it(world: World) -> None:
    w, a = world, world.acme
    items = [
        {"staff_id": str(a.ann), "starts_at": iso(w.at("09:00")), "ends_at": iso(w.at("10:00"))},
        {"staff_id": str(a.bob), "starts_at": iso(w.at("09:00")), "ends_at": iso(w.at("10:00"))},
        # the database refuses this one: the staff member is the other tenant's
        {"staff_id": str(w.other.ann), "starts_at": iso(w.at("09:00")), "ends_at": iso(w.at("10:00"))},
    ]
    queued = db_rows(w.url, "SELECT count(*) FROM recompute_requests")

    async def go(c: httpx.AsyncClient) -> httpx.Response:
        return await c.post(f"/v1/tenants/{a.slug}/time-off/bulk", json={"items": items}, headers=bearer(a.key))

    body = problem(run(w.url, go), 422, "validation_error")
    assert body["field"] == "body.items.2.staff_id"
    assert _count(w.url, "time_off", a) == 0
    assert db_rows(w.url, "SELECT count(*) FROM recompute_requests") == queued


# --- 422 for every kind of invalid value ---------------------------------------------------

INVALID: list[tuple[str, str, dict[str, Any], str]] = [
    ("zone abbreviation", "locations", {"name": "X", "timezone": "CEST"}, "timezone"),
    ("unknown zone", "staff", {"display_name": "X", "timezone": "Mars/Olympus"}, "timezone"),
    ("posix zone", "locations", {"name": "X", "timezone": "UTC+3"}, "timezone"),
    ("hour 25", "overrides", {"is_available": True, "start_time": "09:00", "end_time": "25:00"}, "end_time"),
    ("24:30", "overrides", {"is_available": True, "start_time": "09:00", "end_time": "24:30"}, "end_time"),
    ("end before start", "overrides", {"is_available": True, "start_time": "12:00", "end_time": "09:00"}, "end_time"),
    ("start at 24:00", "overrides", {"is_available": True, "start_time": "24:00", "end_time": "24:00"}, "end_time"),
    ("only one time", "overrides", {"is_available": True, "start_time": "09:00"}, "end_time"),
    ("rrule not parsing", "holidays", {"rrule": "every monday"}, "rrule"),
    ("rrule sub-daily", "holidays", {"rrule": "FREQ=HOURLY"}, "rrule"),
    ("rrule interval 0", "holidays", {"rrule": "FREQ=DAILY;INTERVAL=0"}, "rrule"),
    ("rrule never matching", "holidays", {"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, "rrule"),
    (
        "rrule count never reached",
        "overrides",
        {"is_available": False, "rrule": "FREQ=YEARLY;COUNT=3;BYMONTH=2;BYMONTHDAY=31"},
        "rrule",
    ),
    ("not a date", "holidays", {"on_date": "2026-02-30"}, "on_date"),
    ("date out of years", "holidays", {"on_date": "1800-01-01"}, "on_date"),
    (
        "range backwards",
        "time-off",
        {"starts_at": "2030-01-02T10:00:00Z", "ends_at": "2030-01-02T09:00:00Z"},
        "ends_at",
    ),
    ("empty range", "busy-times", {"starts_at": "2030-01-02T10:00:00Z", "ends_at": "2030-01-02T10:00:00Z"}, "ends_at"),
    (
        "instant without offset",
        "time-off",
        {"starts_at": "2030-01-02T10:00:00", "ends_at": "2030-01-02T11:00:00Z"},
        "starts_at",
    ),
    (
        "instant out of years",
        "time-off",
        {"starts_at": "2030-01-02T10:00:00Z", "ends_at": "9999-01-02T11:00:00Z"},
        "ends_at",
    ),
    ("feed source", "busy-times", {"source": "feed:x"}, "source"),
    ("duration 0", "services", {"name": "X", "duration_minutes": 0}, "duration_minutes"),
    ("seats 0", "services", {"name": "X", "duration_minutes": 30, "seats": 0}, "seats"),
    ("travel to itself", "travel-times", {"minutes": 5}, "to_location_id"),
    ("quantity 0", "service-requirements", {"kind": "room", "quantity": 0}, "quantity"),
    ("feed url", "calendar-feeds", {"url": "ftp://example/x.ics"}, "url"),
    ("unknown field", "locations", {"name": "X", "colour": "red"}, "colour"),
    ("missing field", "services", {"name": "X"}, "duration_minutes"),
]


def _base_body(path: str, w: World, t: Tenant) -> dict[str, Any]:
    staff = {"staff_id": str(t.ann)}
    return {
        "overrides": {**staff, "on_date": w.day.isoformat()},
        "holidays": {"on_date": w.day.isoformat()},
        "time-off": staff,
        "busy-times": {**staff, "starts_at": iso(w.at("09:00")), "ends_at": iso(w.at("10:00"))},
        "travel-times": {"from_location_id": str(t.location), "to_location_id": str(t.location)},
        "service-requirements": {"service_id": str(t.cut)},
        "calendar-feeds": staff,
    }.get(path, {})


def test_each_invalid_value_is_a_422_naming_the_field(world: World) -> None:
    """Each case alone and as the one item of a bulk (one world for all: they write nothing)."""
    w, a = world, world.acme

    async def go(c: httpx.AsyncClient) -> list[tuple[str, str, httpx.Response, httpx.Response]]:
        h = bearer(a.key)
        out = []
        for what, path, body, field in INVALID:
            full = {**_base_body(path, w, a), **body}
            single = await c.post(f"/v1/tenants/{a.slug}/{path}", json=full, headers=h)
            bulk = await c.post(f"/v1/tenants/{a.slug}/{path}/bulk", json={"items": [full]}, headers=h)
            out.append((what, field, single, bulk))
        return out

    before = snapshot(w.url)
    for what, field, single, bulk in run(w.url, go):
        assert problem(single, 422, "validation_error")["field"] == f"body.{field}", (what, single.text)
        assert problem(bulk, 422, "validation_error")["field"] == f"body.items.0.{field}", (what, bulk.text)
    assert snapshot(w.url) == before


def test_a_reference_to_another_tenants_row_is_a_422_naming_it(world: World) -> None:
    w, a = world, world.acme

    async def go(c: httpx.AsyncClient) -> list[httpx.Response]:
        h = bearer(a.key)
        return [
            await c.post(
                f"/v1/tenants/{a.slug}/staff",
                json={"display_name": "X", "location_id": str(w.other.location)},
                headers=h,
            ),
            await c.post(
                f"/v1/tenants/{a.slug}/staff-services",
                json={"staff_id": str(a.ann), "service_id": str(w.other.cut)},
                headers=h,
            ),
        ]

    staff, link = run(w.url, go)
    assert problem(staff, 422)["field"] == "body.location_id"
    assert problem(link, 422)["field"] == "body.service_id"


def test_a_constraint_the_api_did_not_check_is_still_a_422_or_409_never_a_500(world: World) -> None:
    w, a = world, world.acme

    async def go(c: httpx.AsyncClient) -> list[httpx.Response]:
        h = bearer(a.key)
        link = {"staff_id": str(a.ann), "service_id": str(a.cut)}  # exists already
        return [
            await c.post(f"/v1/tenants/{a.slug}/staff-services", json=link, headers=h),
            # a service with bookings cannot go: the bookings refer to it
            await c.delete(f"/v1/tenants/{a.slug}/services/{a.cut}", headers=h),
        ]

    with psycopg.connect(w.url) as conn:
        seed.booking(conn, a.id, a.ann, a.cut, w.at("15:00"), w.at("16:00"))
    dup, gone = run(w.url, go)
    assert problem(dup, 409, "conflict")["field"] == "body.service_id"
    problem(gone, 409, "in_use")


def test_busy_times_upsert_by_source_and_external_id(world: World) -> None:
    w, a = world, world.acme
    body = {
        "staff_id": str(a.ann),
        "starts_at": iso(w.at("12:00")),
        "ends_at": iso(w.at("13:00")),
        "source": "crm",
        "external_id": "evt-9",
    }

    async def go(c: httpx.AsyncClient) -> list[httpx.Response]:
        h = bearer(a.key)
        first = await c.post(f"/v1/tenants/{a.slug}/busy-times", json=body, headers=h)
        moved = await c.post(
            f"/v1/tenants/{a.slug}/busy-times", json={**body, "ends_at": iso(w.at("14:00"))}, headers=h
        )
        return [first, moved]

    first, moved = run(w.url, go)
    assert (first.status_code, moved.status_code) == (201, 200)
    assert moved.json()["id"] == first.json()["id"] and moved.json()["ends_at"] == iso(w.at("14:00"))
    assert _count(w.url, "busy_times", a) == 1


def test_cursor_pages_cover_every_row_once(world: World) -> None:
    w, a = world, world.acme
    items = [{"name": f"Branch {i}"} for i in range(7)]

    async def go(c: httpx.AsyncClient) -> tuple[list[str], httpx.Response]:
        h = bearer(a.key)
        assert (
            await c.post(f"/v1/tenants/{a.slug}/locations/bulk", json={"items": items}, headers=h)
        ).status_code == 200
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            r = await c.get(f"/v1/tenants/{a.slug}/locations", params=params, headers=h)
            assert r.status_code == 200, r.text
            page = r.json()
            assert len(page["items"]) <= 3
            seen += [x["id"] for x in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        bad = await c.get(f"/v1/tenants/{a.slug}/locations", params={"cursor": "nope"}, headers=h)
        return seen, bad

    seen, bad = run(w.url, go)
    assert len(seen) == len(set(seen)) == 8 and seen == sorted(seen)
    assert problem(bad, 422)["field"] == "query.cursor"


def test_the_rules_api_needs_the_tenants_key(world: World) -> None:
    w, a = world, world.acme

    async def go(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await c.get(f"/v1/tenants/{a.slug}/staff"),
            await c.get(f"/v1/tenants/{a.slug}/staff", headers=bearer(w.other.key)),
            await c.post(f"/v1/tenants/{a.slug}/locations", json={"name": "X"}, headers=bearer("nope")),
        ]

    for r in run(w.url, go):
        problem(r, 401, "unauthorized")
    assert _count(w.url, "locations", a) == 1


# --- the weekly template -------------------------------------------------------------------


def test_a_week_is_read_and_replaced_whole_with_its_etag(world: World) -> None:
    w, a = world, world.acme
    path = f"/v1/tenants/{a.slug}/staff/{a.bob}/week"
    week = {
        "windows": [{"weekday": d, "start_time": "13:00", "end_time": "24:00"} for d in range(1, 8)]
        + [{"weekday": 1, "start_time": "08:00", "end_time": "09:00", "valid_from": "2030-01-01"}]
    }

    async def go(c: httpx.AsyncClient) -> dict[str, Any]:
        h = bearer(a.key)
        before = await c.get(path, headers=h)
        assert before.status_code == 200
        assert len(before.json()["windows"]) == 7
        tag = before.headers["ETag"]
        r = await c.put(path, json=week, headers={**h, "If-Match": tag})
        assert r.status_code == 200, r.text
        stale = await c.put(path, json={"windows": []}, headers={**h, "If-Match": tag})
        bad = await c.put(
            path, json={"windows": [{"weekday": 8, "start_time": "09:00", "end_time": "10:00"}]}, headers=h
        )
        late = await c.put(
            path, json={"windows": [{"weekday": 2, "start_time": "09:00", "end_time": "08:00"}]}, headers=h
        )
        elsewhere = await c.put(
            path,
            json={
                "windows": [
                    {"weekday": 2, "start_time": "09:00", "end_time": "10:00", "location_id": str(w.other.location)}
                ]
            },
            headers=h,
        )
        other = await c.get(f"/v1/tenants/{w.other.slug}/staff/{a.bob}/week", headers=bearer(w.other.key))
        after = await c.get(path, headers=h)
        return {
            "put": r,
            "stale": stale,
            "bad": bad,
            "late": late,
            "elsewhere": elsewhere,
            "other": other,
            "after": after,
        }

    out = run(w.url, go)
    assert out["put"].json() == out["after"].json()
    windows = out["after"].json()["windows"]
    assert windows[0] == {
        "weekday": 1,
        "start_time": "08:00",
        "end_time": "09:00",
        "location_id": None,
        "valid_from": "2030-01-01",
        "valid_until": None,
    }
    assert {x["end_time"] for x in windows[1:]} == {"24:00"}
    assert problem(out["stale"], 412)["field"] == "header.If-Match"
    assert problem(out["bad"], 422)["field"] == "body.windows.0.weekday"
    assert problem(out["late"], 422)["field"] == "body.windows.0.end_time"
    assert problem(out["elsewhere"], 422)["field"] == "body.windows.0.location_id"
    problem(out["other"], 404, "staff_not_found")
    assert len(windows) == 8


# --- writes reach the slots ----------------------------------------------------------------


def _drain(url: str) -> None:
    with psycopg.connect(url) as conn:
        while drain_one(conn) is not None:
            pass


def _starts(rows: list[dict[str, Any]], staff: UUID) -> list[str]:
    return [s["starts_at"] for s in rows if s["staff_id"] == str(staff)]


def test_each_write_reaches_the_slot_reads_through_the_worker(world: World) -> None:
    w, a = world, world.acme
    h = bearer(a.key)

    async def write(c: httpx.AsyncClient) -> None:
        # Ann: 10:00-11:00 off; 12:00-13:00 busy; Bob: a new week (only 11:00-12:00 on every day)
        r = await c.post(
            f"/v1/tenants/{a.slug}/time-off",
            json={"staff_id": str(a.ann), "starts_at": iso(w.at("10:00")), "ends_at": iso(w.at("11:00"))},
            headers=h,
        )
        assert r.status_code == 201, r.text
        r = await c.post(
            f"/v1/tenants/{a.slug}/busy-times/bulk",
            json={
                "items": [
                    {
                        "staff_id": str(a.ann),
                        "starts_at": iso(w.at("12:00")),
                        "ends_at": iso(w.at("13:00")),
                        "source": "crm",
                        "external_id": "lunch",
                    }
                ]
            },
            headers=h,
        )
        assert r.status_code == 200, r.text
        r = await c.put(
            f"/v1/tenants/{a.slug}/staff/{a.bob}/week",
            json={"windows": [{"weekday": d, "start_time": "11:00", "end_time": "12:00"} for d in range(1, 8)]},
            headers=h,
        )
        assert r.status_code == 200, r.text
        # Cid: a holiday on the day
        r = await c.post(
            f"/v1/tenants/{a.slug}/holidays",
            json={"staff_id": str(a.cid), "on_date": w.day.isoformat(), "name": "off"},
            headers=h,
        )
        assert r.status_code == 201, r.text

    async def read(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        return await slots(c, w, a.cut)

    before = run(w.url, read)
    run(w.url, write)
    _drain(w.url)
    after = run(w.url, read)

    hours = [iso(w.at(f"{h:02d}:00")) for h in range(9, 17)]
    assert _starts(before, a.ann) == hours
    assert _starts(after, a.ann) == [x for x in hours if x not in (iso(w.at("10:00")), iso(w.at("12:00")))]
    assert _starts(after, a.bob) == [iso(w.at("11:00"))]
    assert _starts(after, a.cid) == []


def test_services_and_staff_written_through_the_api_get_slots(world: World) -> None:
    w, a = world, world.acme
    h = bearer(a.key)

    async def go(c: httpx.AsyncClient) -> str:
        svc = await c.post(
            f"/v1/tenants/{a.slug}/services", json={"name": "Consult", "duration_minutes": 120}, headers=h
        )
        dee = await c.post(
            f"/v1/tenants/{a.slug}/staff", json={"display_name": "Dee", "location_id": str(a.location)}, headers=h
        )
        assert svc.status_code == dee.status_code == 201
        sid, did = svc.json()["id"], dee.json()["id"]
        r = await c.post(
            f"/v1/tenants/{a.slug}/staff-services/bulk",
            json={"items": [{"staff_id": did, "service_id": sid}, {"staff_id": str(a.ann), "service_id": sid}]},
            headers=h,
        )
        assert r.status_code == 200 and r.json()["created"] == 2, r.text
        r = await c.put(
            f"/v1/tenants/{a.slug}/staff/{did}/week",
            json={"windows": [{"weekday": d, "start_time": "14:00", "end_time": "18:00"} for d in range(1, 8)]},
            headers=h,
        )
        assert r.status_code == 200, r.text
        return str(sid)

    service = UUID(run(w.url, go))
    _drain(w.url)

    async def read(c: httpx.AsyncClient) -> list[dict[str, Any]]:
        return await slots(c, w, service)

    got = run(w.url, read)
    by_staff = {s["staff_id"] for s in got}
    assert str(a.ann) in by_staff and len(by_staff) == 2
    assert [s["starts_at"] for s in got if s["staff_id"] not in (str(a.ann),)] == [
        iso(w.at("14:00")),
        iso(w.at("16:00")),
    ]
