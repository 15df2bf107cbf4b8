"""Scheduled jobs: the nightly refresh (once per tenant and local date, however many workers
are up; counts and repairs drift) and the hold expiry clean-up."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from slotmill import seed
from slotmill.jobs.nightly import (
    counted_drift,
    expire_holds,
    nightly_due,
    nightly_tick,
    run_nightly_for,
)
from slotmill.jobs.queue import drain_one
from slotmill.jobs.scheduler import build_scheduler
from slotmill.materializer.horizon import to_epoch
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.verify import Drift
from tests.jobs.test_worker_queue import (
    Salon,
    assert_no_drift,
    queue_depth,
    running_worker,
    today_utc,
    utc,
    wait_quiet,
    wait_until,
)

Conn = psycopg.Connection[Any]
LONDON = ZoneInfo("Europe/London")


def _drain(conn: Conn) -> None:
    while drain_one(conn) is not None:
        pass


def _full_runs(conn: Conn) -> list[tuple[Any, ...]]:
    rows = conn.execute("SELECT drift, horizon_end FROM refresh_runs WHERE kind = 'full' ORDER BY id").fetchall()
    conn.rollback()
    return rows


def test_nightly_due_from_two_oclock_local() -> None:
    day = datetime(2030, 6, 3, tzinfo=LONDON)
    assert not nightly_due(day.replace(hour=1, minute=59), covered=False)
    assert nightly_due(day.replace(hour=2), covered=True)
    assert nightly_due(day.replace(hour=7, minute=59), covered=True)
    # later than the grace period: only a tenant whose horizon is not covered catches up
    assert not nightly_due(day.replace(hour=9), covered=True)
    assert nightly_due(day.replace(hour=9), covered=False)


def test_drift_of_the_day_just_rolled_in_is_not_a_fault() -> None:
    d = Drift(
        missing=[
            ("a", (None, None, None, 100, 130, None)),
            ("b", (None, None, None, 200, 230, None)),
        ]
    )
    assert counted_drift(d, covered_until=200) == 1
    assert counted_drift(d, covered_until=None) == 2


def test_nightly_runs_once_for_three_workers(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    _drain(conn)
    tenant = load_tenant(conn, salon.slug)
    conn.commit()
    barrier = threading.Barrier(3)
    results: list[Any] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with psycopg.connect(db_url) as c:
                barrier.wait(timeout=30)
                results.append(run_nightly_for(c, tenant, "2030-01-01", worker=threading.current_thread().name))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sum(r is not None for r in results) == 1
    assert len(_full_runs(conn)) == 1
    ticks = conn.execute("SELECT job, tick FROM job_ticks").fetchall()
    assert ticks == [("nightly", "2030-01-01")]
    # the same tick again: already done
    assert run_nightly_for(conn, tenant, "2030-01-01") is None
    assert len(_full_runs(conn)) == 1
    # the next night runs again
    assert run_nightly_for(conn, tenant, "2030-01-02") is not None
    assert len(_full_runs(conn)) == 2


def test_nightly_tick_from_three_workers_at_two_oclock(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    _drain(conn)
    other = seed.tenant(conn, "late", timezone="America/Los_Angeles")
    conn.commit()
    _drain(conn)
    # 02:30 in UTC, where acme lives; 18:30 the day before in Los Angeles
    now = to_epoch(datetime.combine(today_utc(), datetime.min.time(), UTC) + timedelta(hours=2, minutes=30))
    barrier = threading.Barrier(3)
    done: list[int] = []

    def worker() -> None:
        with psycopg.connect(db_url) as c:
            barrier.wait(timeout=30)
            done.append(len(nightly_tick(c, now=now)))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # "late" has never had a full refresh: not covered, so it catches up at once
    assert sum(done) == 2
    tenants = conn.execute("SELECT tenant_id FROM refresh_runs WHERE kind = 'full'").fetchall()
    assert sorted(r[0] for r in tenants) == sorted([salon.tenant, other])
    # a later check the same night finds both done
    assert nightly_tick(conn, now=now + 600) == []


def test_nightly_counts_drift_and_repairs_it(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    _drain(conn)
    tenant = load_tenant(conn, salon.slug)
    day = today_utc() + timedelta(days=2)
    # damage the table behind the worker's back: 3 slots gone, 1 that should not be there
    conn.execute(
        "DELETE FROM availability_slots WHERE staff_id = %s AND starts_at IN (%s, %s, %s)",
        (salon.ann, utc(day, 9), utc(day, 9, 30), utc(day, 10)),
    )
    conn.execute(
        "INSERT INTO availability_slots (tenant_id, id, staff_id, service_id, starts_at, ends_at)"
        " VALUES (%s, 'bogus', %s, %s, %s, %s)",
        (salon.tenant, salon.bob, salon.cut, utc(day, 20), utc(day, 20, 30)),
    )
    conn.commit()
    result = run_nightly_for(conn, tenant, "tick")
    assert result is not None and result.drift == 4
    assert [r[0] for r in _full_runs(conn)] == [4]
    assert_no_drift(db_url, salon.slug)


def test_expire_holds_retires_lapsed_holds_without_enqueueing(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    _drain(conn)
    now = datetime.now(UTC)
    day = today_utc() + timedelta(days=2)
    lapsed = seed.booking(
        conn,
        salon.tenant,
        salon.ann,
        salon.cut,
        utc(day, 9),
        utc(day, 9, 30),
        status="held",
        expires_at=now,
    )
    live = seed.booking(
        conn,
        salon.tenant,
        salon.ann,
        salon.cut,
        utc(day, 12),
        utc(day, 12, 30),
        status="held",
        expires_at=now + timedelta(minutes=10),
    )
    conn.commit()
    _drain(conn)
    assert expire_holds(conn) == 1
    statuses = dict(conn.execute("SELECT id, status FROM bookings").fetchall())
    conn.rollback()
    assert statuses == {lapsed: "expired", live: "held"}
    assert queue_depth(db_url) == 0
    assert expire_holds(conn) == 0
    assert_no_drift(db_url, salon.slug)


def test_expire_holds_is_a_singleton(conn: Conn, db_url: str) -> None:
    with psycopg.connect(db_url) as other:
        other.execute("SELECT pg_advisory_xact_lock(slotmill_job_lock_key('expire_holds', NULL))")
        assert expire_holds(conn) is None
        other.rollback()
    assert expire_holds(conn) == 0


@pytest.mark.parametrize("table", ["time_off", "busy_times"])
def test_truncate_enqueues_every_tenant(conn: Conn, table: str) -> None:
    salon = Salon(conn)
    _drain(conn)
    conn.execute(f"TRUNCATE {table}")
    conn.commit()
    rows = conn.execute("SELECT tenant_id, staff_id, during FROM recompute_requests").fetchall()
    conn.rollback()
    assert rows == [(salon.tenant, None, None)]


def test_scheduler_has_the_four_jobs_and_polls(db_url: str) -> None:
    woken = threading.Event()
    stop = threading.Event()
    scheduler = build_scheduler(db_url, poll_seconds=0.2, wake=woken.set, stop=stop, worker_name="t")
    assert {j.id for j in scheduler.get_jobs()} == {"poll", "expire_holds", "nightly", "feeds"}
    scheduler.start()
    try:
        assert woken.wait(30)
    finally:
        stop.set()
        scheduler.shutdown(wait=True)


@pytest.mark.slow
def test_a_running_worker_expires_lapsed_holds(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    day = today_utc() + timedelta(days=2)
    hold = seed.booking(
        conn,
        salon.tenant,
        salon.ann,
        salon.cut,
        utc(day, 9),
        utc(day, 9, 30),
        status="held",
        expires_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    conn.commit()

    def expired() -> bool:
        row = conn.execute("SELECT status FROM bookings WHERE id = %s", (hold,)).fetchone()
        conn.rollback()
        return row == ("expired",)

    with running_worker(db_url, schedule=True):
        wait_until(expired, timeout=60, what="the hold clean-up job to run")
        wait_quiet(db_url)
    assert_no_drift(db_url, salon.slug)
