"""The outbox (issue 14): booking changes and slot changes as events, written in the
transaction that makes them, numbered per tenant after commit, never skipped and never
written for a rolled-back change."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import psycopg
import pytest

from slotmill import seed
from slotmill.materializer import bookings
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.outbox import sequence_events
from slotmill.materializer.refresh import recompute_in_transaction
from tests.support import World, db_exec, db_rows


def events(url: str, tenant: UUID, *, numbered: bool | None = None) -> list[tuple[Any, ...]]:
    where = "" if numbered is None else (" AND seq IS NOT NULL" if numbered else " AND seq IS NULL")
    return db_rows(url, f"SELECT id, seq, type, data FROM events WHERE tenant_id = %s{where} ORDER BY id", (tenant,))


def sequence(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return sequence_events(conn)


def slot_id(w: World, staff: UUID, hhmm: str) -> str:
    rows = db_rows(
        w.url,
        "SELECT id FROM availability_slots"
        " WHERE tenant_id = %s AND staff_id = %s AND service_id = %s AND starts_at = %s",
        (w.acme.id, staff, w.acme.cut, w.at(hhmm)),
    )
    assert rows, f"no slot at {hhmm}"
    return str(rows[0][0])


def hold(conn: psycopg.Connection[Any], slug: str, slot: str) -> UUID:
    row = conn.execute("SELECT hold FROM slotmill_hold(%s, %s, NULL, NULL, NULL, NULL, 1)", (slug, slot)).fetchone()
    assert row is not None and row[0] is not None
    import json

    return UUID(json.loads(row[0])["hold_id"])


def clear(url: str) -> None:
    """Number what the set-up wrote and start from a clean sheet."""
    sequence(url)
    db_exec(url, "DELETE FROM events")
    db_exec(url, "DELETE FROM event_sequences")


def test_every_booking_change_is_an_event_with_no_customer_data(world: World) -> None:
    w, a = world, world.acme
    clear(w.url)
    with psycopg.connect(w.url) as conn:
        tenant = load_tenant(conn, "acme")
        held = hold(conn, "acme", slot_id(w, a.ann, "10:00"))
        conn.commit()
        bookings.confirm(
            conn, tenant, hold_id=held, customer_ref="cust-7", notes="secret note", contact={"email": "a@b.example"}
        )
        conn.commit()
        moved_to = hold(conn, "acme", slot_id(w, a.ann, "14:00"))
        conn.commit()
        moved = bookings.reschedule(conn, tenant, booking_id=held, hold_id=moved_to)
        conn.commit()
        bookings.cancel(conn, tenant, booking_id=moved.id)
        conn.commit()
        lapsed = hold(conn, "acme", slot_id(w, a.cid, "11:00"))
        conn.execute("UPDATE bookings SET expires_at = now() - interval '1 second' WHERE id = %s", (lapsed,))
        conn.commit()
        assert bookings.expire(conn, limit=10) == 1
        conn.commit()
        # a host writing the table directly: an insert, then a delete
        conn.execute(
            "INSERT INTO bookings (tenant_id, staff_id, service_id, starts_at, ends_at, status, customer_ref)"
            " VALUES (%s, %s, %s, %s, %s, 'confirmed', 'direct-1')",
            (a.id, a.bob, a.cut, w.at("09:00"), w.at("10:00")),
        )
        conn.commit()
        conn.execute("DELETE FROM bookings WHERE customer_ref = 'direct-1'")
        conn.commit()
    booking_events = [(t, d) for _, _, t, d in events(w.url, a.id) if t.startswith("booking.")]
    got = [(t, d.get("status"), d.get("previous_status")) for t, d in booking_events]
    assert got == [
        ("booking.held", "held", None),
        ("booking.confirmed", "confirmed", "held"),
        ("booking.held", "held", None),
        # the reschedule is one event: the old booking's cancellation is folded into it
        ("booking.rescheduled", "confirmed", "held"),
        ("booking.cancelled", "cancelled", "confirmed"),
        ("booking.held", "held", None),
        ("booking.expired", "expired", "held"),
        ("booking.confirmed", "confirmed", None),
        ("booking.cancelled", "deleted", "confirmed"),
    ]
    datas = [d for _, _, t, d in events(w.url, a.id) if t.startswith("booking.")]
    assert datas[3]["rescheduled_from"] == str(held)
    assert datas[1]["customer_ref"] == "cust-7"
    text = str(datas)
    assert "secret note" not in text and "a@b.example" not in text and "contact" not in text


def test_a_rolled_back_change_writes_no_event(world: World) -> None:
    w, a = world, world.acme
    clear(w.url)
    with psycopg.connect(w.url) as conn:
        tenant = load_tenant(conn, "acme")
        hold(conn, "acme", slot_id(w, a.ann, "10:00"))
        conn.execute(
            "INSERT INTO time_off (tenant_id, staff_id, during) VALUES (%s, %s, tstzrange(%s, %s))",
            (a.id, a.ann, w.at("09:00"), w.at("17:00")),
        )
        now = int(time.time())
        recompute_in_transaction(conn, tenant, [a.ann], lo=now, hi=now + 7 * 86400, now=now)
        assert events(w.url, a.id) == []  # not committed: nobody sees it
        conn.rollback()
    sequence(w.url)
    assert events(w.url, a.id) == []
    assert db_rows(w.url, "SELECT count(*) FROM slot_watches") == [(0,)]


def test_a_recompute_reports_only_what_changed(world: World) -> None:
    w, a = world, world.acme
    clear(w.url)
    with psycopg.connect(w.url) as conn:
        tenant = load_tenant(conn, "acme")
        now = int(time.time())
        lo, hi = now, now + 6 * 86400
        # the same slots written again: nothing to tell
        recompute_in_transaction(conn, tenant, [a.ann], lo=lo, hi=hi, now=now)
        conn.commit()
        assert events(w.url, a.id) == []
        # Ann's day gets shorter: one slots.changed for her services, over the window
        conn.execute(
            "INSERT INTO time_off (tenant_id, staff_id, during) VALUES (%s, %s, tstzrange(%s, %s))",
            (a.id, a.ann, w.at("15:00"), w.at("17:00")),
        )
        recompute_in_transaction(conn, tenant, [a.ann], lo=lo, hi=hi, now=now)
        conn.commit()
    ((_, seq, kind, data),) = events(w.url, a.id)
    assert (seq, kind) == (None, "slots.changed")
    assert sorted(data["service_ids"]) == sorted([str(a.cut), str(a.trim)])
    assert data["staff_ids"] == [str(a.ann)]
    assert data["from"] < data["to"]
    assert db_rows(w.url, "SELECT count(*) FROM slot_watches") == [(0,)]


def test_numbers_follow_commit_order_and_a_late_commit_is_never_skipped(world: World) -> None:
    """A long transaction inserts an event while a later one commits first: the later one
    is numbered at once, the long one when it commits, with the next number, and a reader
    that had already read past the first sees it."""
    w, a = world, world.acme
    clear(w.url)
    with psycopg.connect(w.url) as slow, psycopg.connect(w.url) as fast:
        insert = (
            "INSERT INTO events (tenant_id, type, data) VALUES (%s, 'slots.changed', jsonb_build_object('n', %s::text))"
        )
        slow.execute(insert, (a.id, "slow"))
        fast.execute(insert, (a.id, "fast"))
        fast.commit()
        assert sequence(w.url) == 1
        read = [(s, d["n"]) for _, s, _, d in events(w.url, a.id, numbered=True)]
        assert read == [(1, "fast")]
        slow.commit()
    assert sequence(w.url) == 1
    after = db_rows(
        w.url, "SELECT seq, data ->> 'n' FROM events WHERE tenant_id = %s AND seq > %s ORDER BY seq", (a.id, 1)
    )
    assert after == [(2, "slow")]
    assert db_rows(w.url, "SELECT last_seq FROM event_sequences WHERE tenant_id = %s", (a.id,)) == [(2,)]


def test_sequences_are_per_tenant_and_dense(world: World) -> None:
    w = world
    clear(w.url)
    with psycopg.connect(w.url) as conn:
        for i in range(7):
            tenant = w.acme if i % 3 else w.other
            conn.execute("INSERT INTO events (tenant_id, type, data) VALUES (%s, 'slots.changed', '{}')", (tenant.id,))
            if i % 2:
                conn.commit()
        conn.commit()
    sequence(w.url)
    for t in (w.acme, w.other):
        seqs = [s for _, s, _, _ in events(w.url, t.id)]
        assert seqs == list(range(1, len(seqs) + 1))


def test_only_one_transaction_numbers_at_a_time(world: World) -> None:
    w, a = world, world.acme
    clear(w.url)
    db_exec(w.url, "INSERT INTO events (tenant_id, type, data) VALUES (%s, 'slots.changed', '{}')", (a.id,))
    with psycopg.connect(w.url) as first, psycopg.connect(w.url) as second:
        assert first.execute("SELECT slotmill_sequence_events(100)").fetchone() == (1,)
        # the first has not committed: the second neither waits nor numbers anything
        assert second.execute("SELECT slotmill_sequence_events(100)").fetchone() == (-1,)
        first.commit()
        second.rollback()
        assert second.execute("SELECT slotmill_sequence_events(100)").fetchone() == (0,)


@pytest.mark.parametrize("staff_count", [2])
def test_a_bulk_import_of_bookings_is_one_statement_of_events(world: World, staff_count: int) -> None:
    w, a = world, world.acme
    clear(w.url)
    with psycopg.connect(w.url) as conn:
        loc = seed.location(conn, a.id, "Second street")
        conn.execute(
            "INSERT INTO bookings (tenant_id, staff_id, service_id, location_id, starts_at, ends_at, status)"
            " SELECT %s, %s, %s, %s, g, g + interval '30 minutes', 'confirmed'"
            " FROM generate_series(%s::timestamptz, %s::timestamptz, interval '1 hour') g",
            (a.id, a.ann, a.trim, loc, w.at("09:00"), w.at("16:00")),
        )
        conn.commit()
    kinds = [t for _, _, t, _ in events(w.url, a.id)]
    assert kinds == ["booking.confirmed"] * 8
