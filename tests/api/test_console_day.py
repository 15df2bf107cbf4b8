"""The console's day timeline endpoint (api/admin_day.py) through the real app against a real
database: what it draws is what refresh materializes and what explain says.

- its windows are the engine's merged windows and its slots are exactly the rows refresh
  wrote for that day (read back from availability_slots), for every staff member, service
  and day of a week of the demo tenant, and over both DST changes of a year;
- explain (the endpoint) agrees with it for every minute of a partially booked day;
- it names the rule rows, busy ranges, buffers, holds and travel that made the day;
- it reports drift when the table and the engine differ;
- refusals: the key, unknown ids, bad dates.
"""

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
from slotmill.demo import DEMO_SLUG, demo_id, load_demo
from slotmill.materializer import engine
from slotmill.materializer.horizon import from_epoch, local_midnight, to_epoch
from slotmill.materializer.loader import load_rules, load_tenant
from slotmill.materializer.refresh import refresh
from tests.jobs.test_worker_queue import AppClient

Conn = psycopg.Connection[Any]
KEY = "c" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}
LONDON = ZoneInfo("Europe/London")
# Explain's reasons that are about the moment asked, not the schedule: a materialized slot
# may carry them (SCHEDULE reasons it may not).
READ_TIME = {"available", "held", "in_past", "min_notice", "beyond_horizon"}


@pytest.fixture
def client(db_url: str) -> Iterator[AppClient]:
    s = Settings(database_url=db_url, pool_min_size=1, pool_max_size=4, admin_key=KEY)
    with AppClient(create_app(s)) as c:
        yield c


@pytest.fixture
def demo(conn: Conn) -> UUID:
    t = load_demo(conn)
    conn.commit()
    refresh(conn, load_tenant(conn, DEMO_SLUG))
    return t


def _day(client: AppClient, slug: str, staff: UUID, service: UUID, on: date) -> dict[str, Any]:
    r = client.get(
        f"/v1/admin/tenants/{slug}/staff/{staff}/day",
        params={"date": on.isoformat(), "service_id": str(service)},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _table(conn: Conn, staff: UUID, service: UUID, lo: datetime, hi: datetime) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT starts_at, ends_at, location_id, held_until, seats_left, resource_free FROM availability_slots"
        " WHERE staff_id = %s AND service_id = %s AND starts_at >= %s AND starts_at < %s ORDER BY starts_at",
        (staff, service, lo, hi),
    ).fetchall()


def _shown(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            _at(s["starts_at"]),
            _at(s["ends_at"]),
            None if s["location_id"] is None else UUID(s["location_id"]),
            None if s["held_until"] is None else _at(s["held_until"]),
            s["seats_left"],
            s["resource_free"],
        )
        for s in rows
    ]


def _engine_windows(conn: Conn, slug: str, staff: UUID, day: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    """The engine's merged windows of the horizon that overlap the day, computed here."""
    tenant = load_tenant(conn, slug)
    lo, hi = to_epoch(_at(day["day"]["start"])), to_epoch(_at(day["day"]["end"]))
    rules = load_rules(conn, tenant, staff_ids=[staff], lo=lo, hi=hi, now=to_epoch(_at(day["now"])))
    windows = engine.merged_windows(rules.staff[staff].schedule, rules.first_date, rules.last_date)
    return [(from_epoch(w.start), from_epoch(w.end)) for w in windows if w.start < hi and w.end > lo]


def _check_day_against_the_table(conn: Conn, client: AppClient, slug: str, staff: UUID, service: UUID, on: date) -> int:
    day = _day(client, slug, staff, service, on)
    lo, hi = _at(day["day"]["start"]), _at(day["day"]["end"])
    table = _table(conn, staff, service, lo, hi)
    assert _shown(day["slots"]) == table, (staff, service, on)
    assert _shown(day["table"]) == table
    assert day["drift"] == {"missing": [], "unexpected": [], "changed": []}
    assert [(_at(w["start"]), _at(w["end"])) for w in day["windows"]] == _engine_windows(conn, slug, staff, day)
    # Every slot is a candidate marked as one, and only slots are.
    marked = [_at(c["starts_at"]) for c in day["candidates"] if c["slot"]]
    assert marked == [row[0] for row in table]
    return len(table)


# --- equal to what refresh materializes -----------------------------------------------------


def test_timeline_windows_and_slots_equal_what_refresh_materialized(conn: Conn, client: AppClient, demo: UUID) -> None:
    today = datetime.now(LONDON).date()
    services = conn.execute(
        "SELECT ss.staff_id, ss.service_id FROM staff_services ss WHERE ss.tenant_id = %s ORDER BY 1, 2", (demo,)
    ).fetchall()
    seen = 0
    for staff, service in services:
        for offset in range(8):
            seen += _check_day_against_the_table(
                conn, client, DEMO_SLUG, staff, service, today + timedelta(days=offset)
            )
    assert seen > 500  # the week of the demo has slots to compare, not only empty days


def dst_changes(zone: ZoneInfo, first: date, days: int) -> list[date]:
    out = []
    for k in range(days):
        d = first + timedelta(days=k)
        noon = datetime.combine(d, time(12), tzinfo=zone)
        if (noon - timedelta(days=1)).utcoffset() != noon.utcoffset():
            out.append(d)
    return out


def test_timeline_equals_the_table_across_dst_and_midnight(conn: Conn, client: AppClient) -> None:
    # A year of horizon, so both changes of the clocks are in it whatever today is; a night
    # shift that runs across midnight (one merged window) and a day shift on a grid that
    # does not divide the hour.
    t = seed.tenant(conn, "night", timezone="Europe/London", horizon_days=366)
    nina = seed.staff(conn, t, "Nina")
    cut = seed.service(conn, t, "Cut", 50, after=10, interval=25, staff_ids=[nina])
    seed.template(conn, t, nina, range(1, 8), "22:00", "24:00")
    seed.template(conn, t, nina, range(1, 8), "00:00", "03:00")
    seed.template(conn, t, nina, range(1, 8), "09:10", "16:40")
    conn.commit()
    refresh(conn, load_tenant(conn, "night"))
    today = datetime.now(LONDON).date()
    changes = dst_changes(LONDON, today + timedelta(days=1), 360)
    assert len(changes) == 2
    for d in changes:
        day = _day(client, "night", nina, cut, d)
        hours = (_at(day["day"]["end"]) - _at(day["day"]["start"])) / timedelta(hours=1)
        assert hours in (23, 25)
        _check_day_against_the_table(conn, client, "night", nina, cut, d)
        _check_day_against_the_table(conn, client, "night", nina, cut, d + timedelta(days=1))


def test_past_the_table_the_slots_are_what_a_read_computes_on_demand(conn: Conn, client: AppClient) -> None:
    # Fourteen days in the table, sixty bookable: a day a month out is the engine's on demand.
    t = seed.tenant(conn, "far", timezone="UTC", horizon_days=14, settings={"max_advance_days": 60})
    fay = seed.staff(conn, t, "Fay")
    cut = seed.service(conn, t, "Cut", 60, after=10, interval=30, staff_ids=[fay])
    seed.template(conn, t, fay, range(1, 6), "09:00", "13:00")
    d = datetime.now(UTC).date() + timedelta(days=30)
    while d.isoweekday() > 5:
        d += timedelta(days=1)
    seed.booking(conn, t, fay, cut, _utc(d, 10), _utc(d, 11), customer_ref="c-far")
    conn.commit()
    refresh(conn, load_tenant(conn, "far"))
    day = _day(client, "far", fay, cut, d)
    assert _at(day["horizon"]["table_end"]) < _at(day["day"]["start"])
    assert day["table"] == [] and day["drift"] == {"missing": [], "unexpected": [], "changed": []}
    r = client.get(
        "/v1/tenants/far/slots",
        params={"service_id": str(cut), "staff_id": str(fay), "from": str(d), "to": str(d)},
    )
    assert r.status_code == 200, r.text
    read = [(s["id"], s["starts_at"], s["ends_at"]) for s in r.json()["slots"]]
    assert read == [(s["id"], s["starts_at"], s["ends_at"]) for s in day["slots"]]
    # 09:00 would end, with its 10 minutes after, inside the booking's range: 11:30 and 12:00 are left.
    assert [s["starts_at"] for s in day["slots"]] == [_z(d, 11, 30), _z(d, 12)]
    reasons = {c["starts_at"]: [r["code"] for r in c["reasons"]] for c in day["candidates"]}
    assert reasons[_z(d, 9)] == ["booked"] and reasons[_z(d, 12)] == ["available"]
    # Beyond the advance limit too: still drawn, and explain says why nothing is offered.
    later = d + timedelta(days=35)
    while later.isoweekday() > 5:
        later += timedelta(days=1)
    out = _day(client, "far", fay, cut, later)
    assert out["candidates"] and all("beyond_horizon" in [r["code"] for r in c["reasons"]] for c in out["candidates"])


# --- explain agrees, minute by minute ---------------------------------------------------------


def partially_booked_day(conn: Conn, tenant: UUID) -> tuple[date, datetime]:
    """A date next week on which Ava works (a weekday that is not a holiday, not her swapped
    Friday), with a Haircut booked at 15:00 (45 minutes, 15 after)."""
    today = datetime.now(LONDON).date()
    d = today + timedelta(days=2)
    while d.isoweekday() > 4 or (d.month, d.day) in ((12, 25), (12, 26)):
        d += timedelta(days=1)
    start = datetime.combine(d, time(15), tzinfo=LONDON)
    seed.booking(
        conn,
        tenant,
        demo_id("staff", "Ava Clarke"),
        demo_id("service", "Haircut"),
        start,
        start + timedelta(minutes=45),
        customer_ref="cust-test",
    )
    conn.commit()
    refresh(conn, load_tenant(conn, DEMO_SLUG))
    return d, start


def _agrees(t: datetime, available: bool, codes: list[str], slots: dict[datetime, dict[str, Any]]) -> None:
    # The schedule offers exactly the timeline's slots (explain's other reasons are about
    # the moment asked: notice, holds, the horizon) ...
    assert (set(codes) <= READ_TIME) == (t in slots), (t, codes)
    # ... and the public sees a start iff explain says it is available.
    if available:
        assert t in slots and slots[t]["held_until"] is None, (t, codes)


@pytest.mark.slow
def test_explain_agrees_with_the_timeline_for_every_minute_of_the_day(
    conn: Conn, client: AppClient, demo: UUID
) -> None:
    ava, cut = demo_id("staff", "Ava Clarke"), demo_id("service", "Haircut")
    d, _ = partially_booked_day(conn, demo)
    day = _day(client, DEMO_SLUG, ava, cut, d)
    slots = {_at(s["starts_at"]): s for s in day["slots"]}
    candidates = {_at(c["starts_at"]): c for c in day["candidates"]}
    assert slots and len(candidates) > len(slots)  # partially booked: some starts are not slots
    day_start, day_end = _at(day["day"]["start"]), _at(day["day"]["end"])

    # Every minute of the day, by the engine's explain on the rules as loaded for the
    # endpoint (what GET .../explain runs, without a round trip per minute).
    tenant = load_tenant(conn, DEMO_SLUG)
    now = to_epoch(_at(day["now"]))
    rules = load_rules(conn, tenant, staff_ids=[ava], lo=to_epoch(day_start), hi=to_epoch(day_end), now=now)
    service = rules.services[cut]
    kw: dict[str, Any] = {
        "qualified": True,
        "active": True,
        "now": now,
        "min_notice_s": to_epoch(_at(day["bookable_from"])) - now,
        "advance_limit": to_epoch(_at(day["bookable_until"])),
        "horizon_end": rules.horizon.end,
        "first": rules.first_date,
        "last": rules.last_date,
    }
    t, minutes = day_start, 0
    while t < day_end:
        got = engine.explain(rules.staff[ava].schedule, service.rule, starts_at=to_epoch(t), **kw)
        codes = [str(r.code) for r in got.reasons]
        _agrees(t, got.available, codes, slots)
        if t in candidates:  # the timeline carries explain's own reasons for its starts
            assert [x["code"] for x in candidates[t]["reasons"]] == codes
        t += timedelta(minutes=1)
        minutes += 1
    assert minutes == (day_end - day_start) / timedelta(minutes=1)

    # And through the endpoint, every minute from an hour before the first window to an hour
    # after the last (nothing outside can be offered: no window reaches there).
    first = _at(day["windows"][0]["start"]) - timedelta(hours=1)
    last = _at(day["windows"][-1]["end"]) + timedelta(hours=1)
    assert all(first <= c <= last for c in candidates)
    t = first
    while t < last:
        r = client.get(
            f"/v1/admin/tenants/{DEMO_SLUG}/explain",
            params={"staff_id": str(ava), "service_id": str(cut), "starts_at": t.isoformat()},
            headers=AUTH,
        )
        assert r.status_code == 200, r.text
        _agrees(t, r.json()["available"], [x["code"] for x in r.json()["reasons"]], slots)
        t += timedelta(minutes=1)


# --- what made the day --------------------------------------------------------------------------


def test_the_day_names_rules_busy_ranges_buffers_holds_and_travel(conn: Conn, client: AppClient) -> None:
    t = seed.tenant(conn, "studio", timezone="UTC", horizon_days=30)
    north = seed.location(conn, t, "North")
    south = seed.location(conn, t, "South")
    sam = seed.staff(conn, t, "Sam", location_id=north)
    cut = seed.service(conn, t, "Cut", 30, before=5, after=10, interval=15, staff_ids=[sam])
    seed.travel(conn, t, north, south, 20)
    seed.travel(conn, t, south, north, 25)
    d = datetime.now(UTC).date() + timedelta(days=3)
    other = d + timedelta(days=1)
    seed.template(conn, t, sam, range(1, 8), "09:00", "17:00")
    lunch = seed.override(conn, t, sam, d, available=False, start="12:00", end="13:00", reason="Lunch")
    weekly = seed.override(
        conn,
        t,
        sam,
        d - timedelta(days=7),
        available=False,
        start="16:00",
        end="17:00",
        rrule="FREQ=WEEKLY",
        reason="Team meeting",
    )
    seed.override(conn, t, sam, other, available=False, reason="Not this one")
    closed = seed.holiday(conn, t, other, "Founders' day")
    off = seed.time_off(conn, t, sam, _utc(d, 9), _utc(d, 10), "Dentist")
    busy = seed.busy(conn, t, sam, _utc(d, 10, 30), _utc(d, 11), source="google", external_id="evt-1")
    near = seed.booking(conn, t, sam, cut, _utc(d, 14), _utc(d, 14, 30), customer_ref="c-1", location_id=north)
    far = seed.booking(conn, t, sam, cut, _utc(d, 15, 30), _utc(d, 16), customer_ref="c-2", location_id=south)
    conn.commit()
    refresh(conn, load_tenant(conn, "studio"))
    hold = seed.booking(
        conn,
        t,
        sam,
        cut,
        _utc(d, 13),
        _utc(d, 13, 30),
        status="held",
        expires_at=datetime.now(UTC) + timedelta(hours=1),
    )
    conn.commit()

    day = _day(client, "studio", sam, cut, d)
    assert day["zone"] == "UTC" and day["date"] == d.isoformat()
    assert (
        day["duration_minutes"],
        day["buffer_before_minutes"],
        day["buffer_after_minutes"],
        day["interval_minutes"],
    ) == (
        30,
        5,
        10,
        15,
    )
    rules = {(r["kind"], r["id"]) for r in day["rules"]}
    assert ("override", str(lunch)) in rules and ("override", str(weekly)) in rules  # the weekly one recurs today
    assert ("holiday", str(closed)) not in rules  # another date's
    assert all(r["kind"] != "template" or r["weekday"] == d.isoweekday() for r in day["rules"])
    lunch_row = next(r for r in day["rules"] if r["id"] == str(lunch))
    assert (lunch_row["start_time"], lunch_row["end_time"], lunch_row["label"]) == ("12:00", "13:00", "Lunch")
    assert [(s["start"], s["end"]) for s in lunch_row["spans"]] == [(_z(d, 12), _z(d, 13))]
    assert [(w["start"], w["end"]) for w in day["windows"]] == [(_z(d, 9), _z(d, 12)), (_z(d, 13), _z(d, 16))]

    busy_rows = {b["id"]: b for b in day["busy"]}
    assert busy_rows[str(off)]["kind"] == "time_off" and busy_rows[str(off)]["label"] == "Dentist"
    assert busy_rows[str(busy)]["kind"] == "busy" and busy_rows[str(busy)]["label"] == "google: evt-1"
    b = busy_rows[str(near)]
    # The blocked range (buffers of its service) and the booking's own range.
    assert (b["kind"], b["start"], b["end"]) == ("booked", _z(d, 13, 55), _z(d, 14, 40))
    assert (b["booking"]["starts_at"], b["booking"]["ends_at"], b["booking"]["customer_ref"]) == (
        _z(d, 14),
        _z(d, 14, 30),
        "c-1",
    )
    assert b["travel"] == []  # at the day's only location
    f = busy_rows[str(far)]
    assert (f["start"], f["end"]) == (_z(d, 15, 25), _z(d, 16, 10))
    # Candidates at North see it 20 minutes earlier (travel there) and 25 later (back).
    assert [(w["location_id"], w["start"], w["end"]) for w in f["travel"]] == [
        (str(north), _z(d, 15, 5), _z(d, 16, 35))
    ]
    assert [(h["id"], h["start"], h["end"]) for h in day["holds"]] == [(str(hold), _z(d, 12, 55), _z(d, 13, 40))]

    reasons = {c["starts_at"]: [r["code"] for r in c["reasons"]] for c in day["candidates"]}
    assert reasons[_z(d, 9)] == ["time_off"]
    assert reasons[_z(d, 10, 15)] == ["busy"]
    assert reasons[_z(d, 14, 15)] == ["booked"]  # its blocked range 14:10-14:55 meets the booking's buffer
    assert reasons[_z(d, 14, 30)] == ["booked", "travel"]  # 14:25-15:10: that one, and the travel to the next
    assert reasons[_z(d, 14, 45)] == ["travel"]  # 14:40-15:25 misses the booking, not the travel to it
    assert reasons[_z(d, 13)] == ["held"]  # a slot, hidden by the hold
    assert reasons[_z(d, 11, 30)] == ["available"]
    slot_13 = next(c for c in day["candidates"] if c["starts_at"] == _z(d, 13))
    assert slot_13["slot"] and not slot_13["available"] and slot_13["held_until"] is not None

    closed_day = _day(client, "studio", sam, cut, other)
    assert closed_day["windows"] == [] and closed_day["candidates"] == [] and closed_day["slots"] == []
    kinds = sorted((r["kind"], r["label"]) for r in closed_day["rules"])
    assert ("holiday", "Founders' day") in kinds and ("override", "Not this one") in kinds
    holiday_row = next(r for r in closed_day["rules"] if r["kind"] == "holiday")
    assert [(s["start"], s["end"]) for s in holiday_row["spans"]] == [(_z(other, 0), _z(other + timedelta(days=1), 0))]


def _utc(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=UTC)


def _z(d: date, hh: int, mm: int = 0) -> str:
    return _utc(d, hh, mm).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_local_times_are_the_staff_members_zone(conn: Conn, client: AppClient) -> None:
    t = seed.tenant(conn, "twozones", timezone="Europe/London", horizon_days=30)
    ny = seed.location(conn, t, "Brooklyn", timezone="America/New_York")
    kim = seed.staff(conn, t, "Kim", location_id=ny)
    cut = seed.service(conn, t, "Cut", 60, staff_ids=[kim])
    seed.template(conn, t, kim, range(1, 8), "09:00", "11:00")
    conn.commit()
    refresh(conn, load_tenant(conn, "twozones"))
    d = datetime.now(UTC).date() + timedelta(days=5)
    day = _day(client, "twozones", kim, cut, d)
    zone = ZoneInfo("America/New_York")
    assert day["zone"] == "America/New_York"
    assert day["day"]["start"] == from_epoch(local_midnight(d, "America/New_York")).strftime("%Y-%m-%dT%H:%M:%SZ")
    nine = datetime.combine(d, time(9), tzinfo=zone)
    assert day["windows"][0]["start_local"] == nine.isoformat()
    assert [c["start_local"][11:16] for c in day["candidates"]] == ["09:00", "10:00"]


# --- drift ----------------------------------------------------------------------------------------


def test_drift_between_the_table_and_the_engine_is_reported(conn: Conn, client: AppClient, demo: UUID) -> None:
    ava, cut = demo_id("staff", "Ava Clarke"), demo_id("service", "Haircut")
    d, _ = partially_booked_day(conn, demo)
    day = _day(client, DEMO_SLUG, ava, cut, d)
    first, second = day["slots"][0]["starts_at"], day["slots"][1]["starts_at"]
    # A slot lost, one changed, one that should not be there (as a bug or a host's hand would).
    conn.execute(
        "DELETE FROM availability_slots WHERE staff_id = %s AND service_id = %s AND starts_at = %s", (ava, cut, first)
    )
    conn.execute(
        "UPDATE availability_slots SET seats_left = 7 WHERE staff_id = %s AND service_id = %s AND starts_at = %s",
        (ava, cut, second),
    )
    booked = datetime.combine(d, time(15), tzinfo=LONDON)
    conn.execute(
        "INSERT INTO availability_slots (tenant_id, id, staff_id, service_id, starts_at, ends_at)"
        " VALUES (%s, 'x-test', %s, %s, %s, %s)",
        (demo, ava, cut, booked, booked + timedelta(minutes=45)),
    )
    conn.commit()
    drifted = _day(client, DEMO_SLUG, ava, cut, d)
    assert drifted["drift"] == {
        "missing": [first],
        "unexpected": [booked.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")],
        "changed": [second],
    }
    assert drifted["slots"] == day["slots"]  # the engine's answer does not change with the table


# --- refusals -----------------------------------------------------------------------------------


def test_the_day_refuses_what_it_cannot_answer(conn: Conn, client: AppClient, demo: UUID) -> None:
    ava, cut = demo_id("staff", "Ava Clarke"), demo_id("service", "Haircut")
    path = f"/v1/admin/tenants/{DEMO_SLUG}/staff/{ava}/day"
    today = datetime.now(LONDON).date()
    ok = {"date": today.isoformat(), "service_id": str(cut)}

    def problem(r: Any, status: int, code: str, field: str | None = None) -> None:
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code
        if field:
            assert r.json()["field"] == field

    problem(client.get(path, params=ok), 401, "unauthorized")
    problem(client.get(path, params=ok, headers={"Authorization": "Bearer nope"}), 401, "unauthorized")
    problem(client.get(f"/v1/admin/tenants/nobody/staff/{ava}/day", params=ok, headers=AUTH), 404, "tenant_not_found")
    problem(
        client.get(f"/v1/admin/tenants/{DEMO_SLUG}/staff/{cut}/day", params=ok, headers=AUTH), 404, "staff_not_found"
    )
    problem(client.get(path, params={**ok, "service_id": str(ava)}, headers=AUTH), 404, "service_not_found")
    problem(
        client.get(f"/v1/admin/tenants/{DEMO_SLUG}/staff/x/day", params=ok, headers=AUTH),
        422,
        "validation_error",
        "path.staff_id",
    )
    for bad in ("2026-02-30", "tomorrow", "1700000000", "2026-01-01T00:00:00Z", "0001-01-01"):
        problem(client.get(path, params={**ok, "date": bad}, headers=AUTH), 422, "validation_error", "query.date")
    far = today + timedelta(days=400)
    problem(
        client.get(path, params={**ok, "date": far.isoformat()}, headers=AUTH), 422, "validation_error", "query.date"
    )
    problem(client.get(path, params={"date": ok["date"]}, headers=AUTH), 422, "validation_error", "query.service_id")
    problem(
        client.get(f"{path}?date={today}&date={today}&service_id={cut}", headers=AUTH),
        422,
        "validation_error",
        "query.date",
    )
    # A staff member who does not perform the service: no slots, and explain says why.
    ben = demo_id("staff", "Ben Okafor")
    colour = demo_id("service", "Colour")
    day = _day(client, DEMO_SLUG, ben, colour, today + timedelta(days=2))
    assert not day["offered"] and day["slots"] == []
    assert all("not_qualified" in [r["code"] for r in c["reasons"]] for c in day["candidates"])
