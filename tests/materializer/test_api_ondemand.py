"""materializer.ondemand: the engine run on demand agrees with the materialized table, and
the confirm-time re-check judges a slot against the current rules, ignoring one booking."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import psycopg

from slotmill import seed
from slotmill.materializer.horizon import from_epoch, to_epoch
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.ondemand import compute_on_demand, slot_is_valid
from tests.support import World


def _materialized(conn: psycopg.Connection[Any], service: Any, lo: int, hi: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT staff_id, location_id, starts_at, ends_at FROM availability_slots"
        " WHERE service_id = %s AND starts_at >= %s AND starts_at < %s ORDER BY starts_at, staff_id::text",
        (service, from_epoch(lo), from_epoch(hi)),
    ).fetchall()


def test_on_demand_slots_equal_the_materialized_ones(world: World) -> None:
    w, a = world, world.acme
    lo, hi = to_epoch(w.at("00:00")), to_epoch(w.at("00:00", w.day + timedelta(days=7)))
    with psycopg.connect(w.url) as conn:
        tenant = load_tenant(conn, "acme")
        for service in (a.cut, a.trim):
            want = _materialized(conn, service, lo, hi)
            got = [
                (s.staff_id, s.location_id, from_epoch(s.starts_at), from_epoch(s.ends_at))
                for s in compute_on_demand(conn, tenant, service, lo, hi)
            ]
            assert got == want and want
        ann = compute_on_demand(conn, tenant, a.cut, lo, hi, staff_id=a.ann)
        assert ann and {s.staff_id for s in ann} == {a.ann}
        assert compute_on_demand(conn, tenant, a.trim, lo, hi, staff_id=a.bob) == []


def test_slot_is_valid_follows_the_current_rules_and_ignores_one_booking(world: World) -> None:
    w, a = world, world.acme
    now = int(time.time())
    ten, eleven = to_epoch(w.at("10:00")), to_epoch(w.at("11:00"))
    with psycopg.connect(w.url) as conn:
        tenant = load_tenant(conn, "acme")

        def valid(staff: Any, service: Any, t: int, ignore: Any = None, **kw: Any) -> bool:
            return slot_is_valid(conn, tenant, staff, service, t, ignore, now=now, **kw)

        assert valid(a.ann, a.cut, ten)
        assert valid(a.ann, a.cut, ten, ends_at=eleven)
        assert not valid(a.ann, a.cut, ten, ends_at=eleven + 60), "the duration changed"
        assert not valid(a.ann, a.cut, ten + 15 * 60), "off the grid"
        assert not valid(a.bob, a.trim, ten), "Bob does not trim"
        assert not valid(a.bob, a.cut, to_epoch(w.at("13:00"))), "Bob works mornings"
        assert not valid(a.ann, a.cut, now - 3600), "in the past"
        assert not valid(a.ann, a.cut, now + 400 * 86400), "beyond the horizon"

        # A hold is judged against confirmed bookings only: a live hold over the slot (the
        # one being confirmed; the database refuses any other that conflicts) counts for
        # nothing, a confirmed booking does, unless it is the one ignored.
        hold = seed.booking(
            conn,
            a.id,
            a.ann,
            a.cut,
            w.at("10:00"),
            w.at("11:00"),
            status="held",
            expires_at=from_epoch(now + 600),
        )
        assert valid(a.ann, a.cut, ten)
        assert valid(a.ann, a.cut, ten, hold)
        conn.execute("UPDATE bookings SET status = 'confirmed' WHERE id = %s", (hold,))
        assert not valid(a.ann, a.cut, ten)
        assert valid(a.ann, a.cut, ten, hold)
        # Time off written directly (its recompute not run yet) makes it invalid.
        seed.time_off(conn, a.id, a.ann, w.at("10:30"), w.at("10:45"))
        assert not valid(a.ann, a.cut, ten, hold)
        assert valid(a.cid, a.cut, ten)
        conn.rollback()
