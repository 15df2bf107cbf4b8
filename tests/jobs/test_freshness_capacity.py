"""Freshness reaches as far as the capacity rules do (docs/rules.md, capacity rules): a room
booked by one staff member changes another's slots through the worker; a limit reached or a
booking at another branch changes the rest of the day; and two workers draining a mix of
such changes leave no drift."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg

from slotmill import seed
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.verify import verify
from tests.jobs.test_worker_queue import running_worker, slot_starts, today_utc, utc, wait_quiet, wait_until

Conn = psycopg.Connection[Any]


class Spa:
    """Two therapists at one location sharing one treatment room, a second branch 30 minutes
    away, a daily limit on one of them, and a group class."""

    def __init__(self, conn: Conn) -> None:
        t = self.tenant = seed.tenant(conn, "spa", timezone="UTC", horizon_days=20)
        self.main = seed.location(conn, t, "Main")
        self.annex = seed.location(conn, t, "Annex")
        seed.travel(conn, t, self.main, self.annex, 30)
        seed.travel(conn, t, self.annex, self.main, 30)
        self.ann = seed.staff(conn, t, "Ann", location_id=self.main, max_per_day=3)
        self.bob = seed.staff(conn, t, "Bob", location_id=self.main)
        self.massage = seed.service(conn, t, "Massage", 60, staff_ids=[self.ann, self.bob])
        self.walk = seed.service(conn, t, "Walk-in", 30, staff_ids=[self.ann, self.bob])
        self.yoga = seed.service(conn, t, "Yoga", 60, seats=6, staff_ids=[self.bob])
        seed.service_resource(conn, t, self.massage, "room")
        self.room = seed.resource(conn, t, "room", "Treatment room", location_id=self.main)
        for s in (self.ann, self.bob):
            seed.template(conn, t, s, range(1, 8), "09:00", "17:00")
        seed.template(conn, t, self.bob, range(1, 8), "18:00", "20:00", location_id=self.annex)
        conn.commit()


def _book(conn: Conn, spa: Spa, staff: UUID, service: UUID, start: datetime, minutes: int, **kw: Any) -> UUID:
    b = seed.booking(conn, spa.tenant, staff, service, start, start + timedelta(minutes=minutes), **kw)
    if service == spa.massage:
        seed.booking_resource(conn, spa.tenant, b, spa.room)
    return b


def test_a_room_booked_by_ann_removes_bobs_room_slots_through_the_worker(db_url: str, conn: Conn) -> None:
    spa = Spa(conn)
    day = today_utc() + timedelta(days=3)
    with running_worker(db_url):
        wait_quiet(db_url)
        assert utc(day, 10) in slot_starts(db_url, spa.bob, spa.massage, day)
        _book(conn, spa, spa.ann, spa.massage, utc(day, 10), 60)
        conn.commit()
        wait_until(
            lambda: utc(day, 10) not in slot_starts(db_url, spa.bob, spa.massage, day),
            what="Bob's massage at 10:00 gone (the room is Ann's)",
        )
        # Bob's other services keep the time: it is the room that is taken, not Bob
        assert utc(day, 10) in slot_starts(db_url, spa.bob, spa.walk, day)
        wait_quiet(db_url)
    assert verify(conn, load_tenant(conn, "spa")).total == 0


def test_a_reached_day_limit_and_a_booking_at_another_branch_reach_the_rest_of_the_day(db_url: str, conn: Conn) -> None:
    spa = Spa(conn)
    day = today_utc() + timedelta(days=4)
    with running_worker(db_url):
        wait_quiet(db_url)
        for hh in (9, 11, 13):
            seed.booking(conn, spa.tenant, spa.ann, spa.walk, utc(day, hh), utc(day, hh, 30))
        conn.commit()
        wait_until(lambda: slot_starts(db_url, spa.ann, spa.walk, day) == [], what="Ann's day closed by her limit")
        # The host books Bob at the Annex at 17:00 (after his Main shift): his 16:30 at Main,
        # which only touches it, goes (30 minutes to get there); 16:00 stays
        seed.booking(conn, spa.tenant, spa.bob, spa.walk, utc(day, 17), utc(day, 17, 30), location_id=spa.annex)
        conn.commit()
        wait_until(
            lambda: utc(day, 16, 30) not in slot_starts(db_url, spa.bob, spa.walk, day),
            what="Bob's 16:30 at Main gone (30 minutes to travel to the Annex)",
        )
        assert utc(day, 16) in slot_starts(db_url, spa.bob, spa.walk, day)
        wait_quiet(db_url)
    assert verify(conn, load_tenant(conn, "spa")).total == 0


def test_two_workers_drain_mixed_capacity_changes_with_no_drift(db_url: str, conn: Conn) -> None:
    spa = Spa(conn)
    rng = random.Random(7)
    with running_worker(db_url, concurrency=2), running_worker(db_url):
        for _ in range(60):
            day = today_utc() + timedelta(days=rng.randrange(1, 15))
            start = utc(day, rng.randrange(9, 16), rng.choice([0, 30]))
            staff = rng.choice([spa.ann, spa.bob])
            kind = rng.randrange(6)
            try:
                with conn.transaction():
                    if kind == 0:
                        _book(conn, spa, staff, spa.massage, start, 60)
                    elif kind == 1:
                        seed.booking(conn, spa.tenant, spa.bob, spa.yoga, start, start + timedelta(hours=1), seats=2)
                    elif kind == 2:
                        seed.booking(conn, spa.tenant, staff, spa.walk, start, start + timedelta(minutes=30))
                    elif kind == 3:
                        conn.execute(
                            "UPDATE bookings SET status = 'cancelled', cancelled_at = now() WHERE id = "
                            "(SELECT id FROM bookings WHERE tenant_id = %s AND status = 'confirmed'"
                            " ORDER BY random() LIMIT 1)",
                            (spa.tenant,),
                        )
                    elif kind == 4:
                        conn.execute(
                            "UPDATE staff SET max_bookings_per_day = %s WHERE id = %s", (rng.randrange(2, 5), spa.ann)
                        )
                    else:
                        seed.time_off(conn, spa.tenant, staff, start, start + timedelta(hours=1))
            except psycopg.errors.IntegrityError:
                pass  # the database refused it (a conflict, a full room, a limit): as a host would see
        wait_quiet(db_url, timeout=120)
    drift = verify(conn, load_tenant(conn, "spa"))
    assert drift.total == 0, drift
    assert datetime.now(UTC)  # the run ended
