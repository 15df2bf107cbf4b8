"""The database is the final judge of seats, resources, limits and travel (docs/rules.md,
booking rules): every refusal through a direct INSERT, by its own constraint name, and the
races a real booking page makes: the last room, the last seats."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from slotmill import seed
from tests.support import db_rows, materialize, run

Conn = psycopg.Connection[Any]
T0 = datetime(2030, 3, 4, 10, 0, tzinfo=UTC)  # a Monday


def _id(conn: Conn, sql: str, *params: Any) -> UUID:
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def resource(conn: Conn, t: UUID, kind: str, name: str, location: UUID | None = None) -> UUID:
    return _id(
        conn,
        "INSERT INTO resources (tenant_id, kind, name, location_id) VALUES (%s, %s, %s, %s) RETURNING id",
        t,
        kind,
        name,
        location,
    )


def needs(conn: Conn, t: UUID, service: UUID, kind: str, quantity: int = 1) -> None:
    conn.execute(
        "INSERT INTO service_resources (tenant_id, service_id, kind, quantity) VALUES (%s, %s, %s, %s)",
        (t, service, kind, quantity),
    )


def book(
    conn: Conn,
    t: UUID,
    staff: UUID,
    service: UUID,
    start: datetime,
    minutes: int = 60,
    *,
    seats: int = 1,
    location: UUID | None = None,
    status: str = "confirmed",
) -> UUID:
    return _id(
        conn,
        "INSERT INTO bookings"
        " (tenant_id, staff_id, service_id, location_id, starts_at, ends_at, status, expires_at, seats)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, CASE WHEN %s = 'held' THEN now() + interval '10 minutes' END, %s)"
        " RETURNING id",
        t,
        staff,
        service,
        location,
        start,
        start + timedelta(minutes=minutes),
        status,
        status,
        seats,
    )


def holds(conn: Conn, t: UUID, booking: UUID, res: UUID) -> None:
    # what a host writes: the trigger fills in the booking's range, liveness and session
    conn.execute(
        "INSERT INTO booking_resources (tenant_id, booking_id, resource_id) VALUES (%s, %s, %s)", (t, booking, res)
    )


def refused(conn: Conn, constraint: str, sql_call: Any) -> str:
    with pytest.raises(psycopg.errors.IntegrityError) as e:
        sql_call()
    conn.rollback()
    assert e.value.diag.constraint_name == constraint, e.value
    return str(e.value)


def test_a_group_session_takes_at_most_its_seats(conn: Conn) -> None:
    t = seed.tenant(conn, "yoga")
    s = seed.staff(conn, t, "Ivy")
    v = seed.service(conn, t, "Class", 60, staff_ids=[s])
    conn.execute("UPDATE services SET seats = 5 WHERE id = %s", (v,))
    book(conn, t, s, v, T0, seats=3)
    book(conn, t, s, v, T0, seats=2, status="held")  # one session: no conflict between them
    conn.commit()
    message = refused(conn, "bookings_session_seats", lambda: book(conn, t, s, v, T0))
    assert "5 of 5 seats taken" in message
    # another session of the same service that overlaps still conflicts (interval < duration)
    refused(conn, "bookings_no_overlap", lambda: book(conn, t, s, v, T0 + timedelta(minutes=30)))
    # a one-seat service takes one seat
    one = seed.service(conn, t, "Private", 60, staff_ids=[s])
    refused(conn, "bookings_session_seats", lambda: book(conn, t, s, one, T0 + timedelta(hours=3), seats=2))
    # one session is at one location
    a, b = seed.location(conn, t, "A"), seed.location(conn, t, "B")
    book(conn, t, s, v, T0 + timedelta(days=1), location=a)
    book(conn, t, s, v, T0 + timedelta(days=1))  # no location: belongs wherever it is
    conn.commit()
    refused(conn, "bookings_session_location", lambda: book(conn, t, s, v, T0 + timedelta(days=1), location=b))


def test_a_resource_is_held_by_one_live_booking_at_a_time(conn: Conn) -> None:
    t = seed.tenant(conn, "spa")
    ann, bob = seed.staff(conn, t, "Ann"), seed.staff(conn, t, "Bob")
    steam = seed.service(conn, t, "Steam", 60, after=15, staff_ids=[ann, bob])
    room = resource(conn, t, "steam room", "The steam room")
    holds(conn, t, book(conn, t, ann, steam, T0), room)
    conn.commit()
    copied = db_rows_conn(conn, "SELECT live, upper(blocked) FROM booking_resources")
    assert copied == [(True, T0 + timedelta(minutes=75))]
    # Bob's booking overlaps Ann's after-buffer: the room is busy
    late = book(conn, t, bob, steam, T0 + timedelta(minutes=70))
    refused(conn, "booking_resources_no_overlap", lambda: holds(conn, t, late, room))
    # touching is free; a cancelled booking frees the room at once
    fine = book(conn, t, bob, steam, T0 + timedelta(minutes=75))
    holds(conn, t, fine, room)
    conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = %s", (fine,))
    again = book(conn, t, bob, steam, T0 + timedelta(minutes=80))
    holds(conn, t, again, room)
    conn.commit()
    # an expired hold in the way is retired, not a conflict
    lapsed = book(conn, t, ann, steam, T0 + timedelta(hours=5), status="held")
    holds(conn, t, lapsed, room)
    conn.execute("UPDATE bookings SET expires_at = now() - interval '1 second' WHERE id = %s", (lapsed,))
    conn.commit()
    taker = book(conn, t, bob, steam, T0 + timedelta(hours=5))
    holds(conn, t, taker, room)
    conn.commit()
    assert db_rows_conn(conn, "SELECT status FROM bookings WHERE id = %s", lapsed) == [("expired",)]


def test_a_group_session_shares_its_room(conn: Conn) -> None:
    t = seed.tenant(conn, "studio")
    s = seed.staff(conn, t, "Ivy")
    v = seed.service(conn, t, "Class", 60, staff_ids=[s])
    conn.execute("UPDATE services SET seats = 10 WHERE id = %s", (v,))
    hall = resource(conn, t, "hall", "Hall")
    for _ in range(3):
        holds(conn, t, book(conn, t, s, v, T0), hall)  # the same session: one room, no conflict
    conn.commit()
    assert db_rows_conn(conn, "SELECT count(*) FROM booking_resources WHERE live") == [(3,)]


def test_limits_count_sessions_per_local_day_and_week(conn: Conn) -> None:
    t = seed.tenant(conn, "clinic", timezone="America/New_York")
    doc = seed.staff(conn, t, "Dr Ada")
    consult = seed.service(conn, t, "Consult", 30, staff_ids=[doc])
    group = seed.service(conn, t, "Group", 60, staff_ids=[doc])
    conn.execute("UPDATE services SET seats = 4 WHERE id = %s", (group,))
    conn.execute("UPDATE staff SET max_bookings_per_day = 2, max_bookings_per_week = 3 WHERE id = %s", (doc,))
    day = datetime(2030, 3, 4, 14, 0, tzinfo=UTC)  # 09:00 in New York, a Monday
    book(conn, t, doc, consult, day)
    book(conn, t, doc, group, day + timedelta(hours=2))
    conn.commit()
    refused(conn, "bookings_limit_staff_day", lambda: book(conn, t, doc, consult, day + timedelta(hours=4)))
    # joining the existing group session adds no session: allowed on a full day
    book(conn, t, doc, group, day + timedelta(hours=2), seats=2)
    # 23:30 New York is still Monday there (04:30Z Tuesday): the day limit holds
    late = datetime(2030, 3, 5, 4, 30, tzinfo=UTC)
    refused(conn, "bookings_limit_staff_day", lambda: book(conn, t, doc, consult, late))
    # Tuesday: a day of its own, but the week has room for one more only
    book(conn, t, doc, consult, day + timedelta(days=1))
    conn.commit()
    refused(conn, "bookings_limit_staff_week", lambda: book(conn, t, doc, consult, day + timedelta(days=2)))
    # the next ISO week starts on Monday
    book(conn, t, doc, consult, day + timedelta(days=7))
    conn.commit()
    # a service limit counts that service only
    conn.execute("UPDATE staff SET max_bookings_per_day = NULL, max_bookings_per_week = NULL WHERE id = %s", (doc,))
    conn.execute("UPDATE services SET max_bookings_per_day = 1 WHERE id = %s", (consult,))
    conn.commit()
    refused(conn, "bookings_limit_service_day", lambda: book(conn, t, doc, consult, day + timedelta(days=7, hours=2)))
    book(conn, t, doc, group, day + timedelta(days=7, hours=2))
    conn.commit()


def test_travel_between_locations_is_kept_free_both_ways(conn: Conn) -> None:
    t = seed.tenant(conn, "salon")
    london, brooklyn = seed.location(conn, t, "London"), seed.location(conn, t, "Brooklyn")
    emi = seed.staff(conn, t, "Emi")
    cut = seed.service(conn, t, "Cut", 60, before=5, after=10, staff_ids=[emi])
    conn.execute(
        "INSERT INTO location_travel (tenant_id, from_location_id, to_location_id, minutes)"
        " VALUES (%s, %s, %s, 30), (%s, %s, %s, 45)",
        (t, london, brooklyn, t, brooklyn, london),
    )
    book(conn, t, emi, cut, T0, location=london)  # 10:00-11:00, blocked 09:55-11:10
    conn.commit()
    # For a booking in Brooklyn, London's blocks [09:55 - 45 (Brooklyn->London), 11:10 + 30
    # (London->Brooklyn)) = [09:10, 11:40).
    refused(conn, "bookings_travel", lambda: book(conn, t, emi, cut, T0 + timedelta(minutes=90), location=brooklyn))
    book(conn, t, emi, cut, T0 + timedelta(minutes=105), location=brooklyn)  # 11:45, blocked from 11:40
    refused(conn, "bookings_travel", lambda: book(conn, t, emi, cut, T0 - timedelta(minutes=110), location=brooklyn))
    book(conn, t, emi, cut, T0 - timedelta(minutes=120), location=brooklyn)  # 08:00-09:00, blocked to 09:10
    # no location: no travel
    book(conn, t, emi, cut, T0 + timedelta(hours=5))
    conn.commit()


def db_rows_conn(conn: Conn, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    rows = conn.execute(sql, params).fetchall()
    conn.commit()
    return rows


# --- the races -----------------------------------------------------------------------------------


def _crowd(conn: Conn, slug: str, n: int, seats: int = 1) -> tuple[UUID, UUID, list[UUID]]:
    t = seed.tenant(conn, slug, timezone="UTC", horizon_days=7)
    crew = [seed.staff(conn, t, f"S{i:03d}") for i in range(n)]
    v = seed.service(conn, t, "Massage", 60, staff_ids=crew)
    conn.execute("UPDATE services SET seats = %s WHERE id = %s", (seats, v))
    for s in crew:
        seed.template(conn, t, s, range(1, 8), "09:00", "17:00")
    return t, v, crew


def _start(conn: Conn, service: UUID) -> datetime:
    row = conn.execute(
        "SELECT min(starts_at) FROM availability_slots WHERE service_id = %s AND starts_at > now() + interval '1 day'",
        (service,),
    ).fetchone()
    assert row is not None and row[0] is not None
    return row[0]  # type: ignore[no-any-return]


def test_two_hundred_staff_racing_for_the_last_room_leave_one_winner(db_url: str, conn: Conn) -> None:
    t, v, crew = _crowd(conn, "rush", 200)
    needs(conn, t, v, "room")
    resource(conn, t, "room", "The last room")
    materialize(conn, "rush")
    at = _start(conn, v).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def body(client: httpx.AsyncClient) -> list[httpx.Response]:
        async def one(staff: UUID) -> httpx.Response:
            return await client.post(
                "/v1/tenants/rush/holds", json={"service_id": str(v), "starts_at": at, "staff_id": str(staff)}
            )

        return list(await asyncio.gather(*(one(s) for s in crew)))

    answers = run(db_url, body, pool_max_size=16)
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 1, 409: 199}, codes
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"resource_unavailable"}
    assert db_rows(db_url, "SELECT count(*) FROM booking_resources WHERE live") == [(1,)]


def test_a_session_filled_by_racing_holds_never_exceeds_its_seats(db_url: str, conn: Conn) -> None:
    _t, v, (ivy,) = _crowd(conn, "yoga", 1, seats=5)
    materialize(conn, "yoga")
    at = _start(conn, v).strftime("%Y-%m-%dT%H:%M:%SZ")

    async def body(client: httpx.AsyncClient) -> list[httpx.Response]:
        async def one(seats: int) -> httpx.Response:
            return await client.post(
                "/v1/tenants/yoga/holds",
                json={"service_id": str(v), "starts_at": at, "staff_id": str(ivy), "seats": seats},
            )

        return list(await asyncio.gather(*(one(1 + i % 2) for i in range(30))))

    answers = run(db_url, body, pool_max_size=12)
    won = [r.json() for r in answers if r.status_code == 201]
    assert sum(h["seats"] for h in won) <= 5 and sum(h["seats"] for h in won) >= 4
    assert {r.json()["code"] for r in answers if r.status_code == 409} == {"session_full"}
    taken = db_rows(db_url, "SELECT sum(seats) FROM bookings WHERE status = 'held'")
    assert taken[0][0] == sum(h["seats"] for h in won)

    # and the read shows what is left, hidden at 0
    async def read(client: httpx.AsyncClient) -> list[dict[str, Any]]:
        r = await client.get(
            "/v1/tenants/yoga/slots", params={"service_id": str(v), "from": at, "to": at[:11] + "23:59:00Z"}
        )
        out: list[dict[str, Any]] = r.json()["slots"]
        return out

    first = run(db_url, read)[0]
    left = 5 - taken[0][0]
    if left:
        assert first["starts_at"] == at and first["seats_left"] == left
    else:
        assert first["starts_at"] != at


def test_a_limit_reached_by_a_hold_is_a_409_limit_reached(db_url: str, conn: Conn) -> None:
    _t, v, (doc,) = _crowd(conn, "clinic", 1)
    conn.execute("UPDATE staff SET max_bookings_per_day = 1 WHERE id = %s", (doc,))
    materialize(conn, "clinic")
    at = _start(conn, v)

    async def body(client: httpx.AsyncClient) -> list[httpx.Response]:
        out = []
        for hours in (0, 2):
            out.append(
                await client.post(
                    "/v1/tenants/clinic/holds",
                    json={
                        "service_id": str(v),
                        "starts_at": (at + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "staff_id": str(doc),
                    },
                )
            )
        return out

    first, second = run(db_url, body)
    assert first.status_code == 201, first.text
    assert second.status_code == 409 and second.json()["code"] == "limit_reached", second.text


def test_two_staff_teaching_at_the_same_time_never_share_a_room(conn: Conn) -> None:
    # Each teaches a session of the same group service at the same start: two sessions.
    t = seed.tenant(conn, "studio2")
    ivy, joe = seed.staff(conn, t, "Ivy"), seed.staff(conn, t, "Joe")
    v = seed.service(conn, t, "Class", 60, staff_ids=[ivy, joe])
    conn.execute("UPDATE services SET seats = 10 WHERE id = %s", (v,))
    hall = resource(conn, t, "hall", "Hall")
    holds(conn, t, book(conn, t, ivy, v, T0), hall)
    conn.commit()
    late = book(conn, t, joe, v, T0)
    refused(conn, "booking_resources_no_overlap", lambda: holds(conn, t, late, hall))
