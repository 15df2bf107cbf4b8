"""Workers under stress: two draining a burst together, one killed mid-recompute, one
stopped by SIGTERM mid-recompute, one whose connections are cut."""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest

from slotmill import seed
from slotmill.jobs.worker import HOLD_ENV
from tests.jobs.test_worker_queue import (
    Salon,
    assert_no_drift,
    queue_depth,
    running_worker,
    slot_starts,
    today_utc,
    utc,
    wait_quiet,
    wait_until,
)

Conn = psycopg.Connection[Any]
ROOT = Path(__file__).resolve().parents[2]


def _burst(conn: Conn, salon: Salon, colour: UUID, n: int, rng: random.Random) -> int:
    """``n`` committed transactions of mixed source changes, as a host application makes them."""
    t = salon.tenant
    today = today_utc()
    done = 0

    def when() -> tuple[datetime, datetime]:
        day = today + timedelta(days=rng.randrange(0, 25))
        start = utc(day, rng.randrange(8, 17), rng.choice([0, 30]))
        return start, start + timedelta(minutes=30 * rng.randrange(1, 5))

    for _ in range(n):
        staff = rng.choice(salon.staff)
        kind = rng.randrange(12)
        try:
            with conn.transaction():
                if kind <= 2:
                    start, _ = when()
                    seed.booking(conn, t, staff, salon.cut, start, start + timedelta(minutes=30))
                elif kind == 3:
                    conn.execute(
                        "UPDATE bookings SET status = 'cancelled', cancelled_at = now()"
                        " WHERE id = (SELECT id FROM bookings WHERE tenant_id = %s"
                        " AND status = 'confirmed' ORDER BY random() LIMIT 1)",
                        (t,),
                    )
                elif kind == 4:
                    start, _ = when()
                    seed.booking(
                        conn,
                        t,
                        staff,
                        colour,
                        start,
                        start + timedelta(minutes=60),
                        status="held",
                        expires_at=datetime.now(UTC) + timedelta(minutes=rng.choice([-1, 10])),
                    )
                elif kind == 5:
                    seed.time_off(conn, t, staff, *when())
                elif kind == 6:
                    conn.execute(
                        "DELETE FROM time_off WHERE id = (SELECT id FROM time_off WHERE tenant_id = %s LIMIT 1)",
                        (t,),
                    )
                elif kind == 7:
                    seed.busy(conn, t, staff, *when(), external_id=f"evt-{rng.random()}")
                elif kind == 8:
                    day = today + timedelta(days=rng.randrange(0, 25))
                    if rng.random() < 0.5:
                        seed.override(conn, t, staff, day, available=False, start="12:00", end="13:00")
                    else:
                        seed.override(conn, t, staff, day, available=True, start="07:00", end="21:00")
                elif kind == 9:
                    day = today + timedelta(days=rng.randrange(0, 25))
                    seed.holiday(conn, t, day, "closed", staff_id=rng.choice([None, staff]))
                elif kind == 10:
                    conn.execute(
                        "UPDATE availability_templates SET end_time = %s WHERE staff_id = %s",
                        (rng.choice(["15:00", "17:00", "19:00"]), staff),
                    )
                else:
                    linked = conn.execute(
                        "DELETE FROM staff_services WHERE staff_id = %s AND service_id = %s RETURNING id",
                        (staff, colour),
                    ).fetchone()
                    if linked is None:
                        seed.qualify(conn, t, staff, colour)
            done += 1
        except psycopg.errors.ExclusionViolation:
            pass  # the host's own double-booking attempt, refused by the database
        conn.commit()
    return done


def test_two_workers_drain_a_burst_without_drift(conn: Conn, db_url: str) -> None:
    salon = Salon(conn, staff=6)
    colour = seed.service(
        conn,
        salon.tenant,
        "Colour",
        60,
        before=15,
        after=15,
        interval=15,
        staff_ids=salon.staff[:3],
    )
    conn.commit()
    with running_worker(db_url, name="w1") as w1, running_worker(db_url, name="w2") as w2:
        wait_quiet(db_url)
        done = _burst(conn, salon, colour, 300, random.Random(20240601))
        wait_quiet(db_url)
        assert w1.failures == w2.failures == 0
    assert done > 250
    assert_no_drift(db_url, salon.slug)


def _worker_process(db_url: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "slotmill.cli", "worker"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": db_url, "SLOTMILL_LOG_JSON": "true", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextmanager
def _stderr_lines(proc: subprocess.Popen[str]) -> Iterator[queue.Queue[str]]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)

    t = threading.Thread(target=pump, daemon=True)
    t.start()
    try:
        yield lines
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        t.join(10)
        if proc.stderr is not None:
            proc.stderr.close()


def _wait_for_line(lines: queue.Queue[str], needle: str, timeout: float = 60) -> str:
    seen = []
    deadline = datetime.now() + timedelta(seconds=timeout)
    while datetime.now() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"no log line with {needle!r}; saw:\n{''.join(seen[-20:])}")


def _snapshot(url: str, tenant: UUID) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as c:
        return c.execute(
            "SELECT id, starts_at, held_until FROM availability_slots WHERE tenant_id = %s ORDER BY id",
            (tenant,),
        ).fetchall()


@pytest.mark.slow
def test_worker_killed_mid_recompute_loses_nothing(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    with running_worker(db_url):
        wait_quiet(db_url)
    before = _snapshot(db_url, salon.tenant)
    day = today_utc() + timedelta(days=2)
    seed.time_off(conn, salon.tenant, salon.ann, utc(day, 9), utc(day, 17))
    conn.commit()
    assert queue_depth(db_url) == 1

    proc = _worker_process(db_url, **{HOLD_ENV: "120"})
    with _stderr_lines(proc) as lines:
        _wait_for_line(lines, "test hook")
        # the recompute has deleted and rewritten the window, uncommitted: readers see the old one
        assert _snapshot(db_url, salon.tenant) == before
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    assert _snapshot(db_url, salon.tenant) == before
    assert queue_depth(db_url) == 1

    with running_worker(db_url, poll_seconds=0.2):
        wait_quiet(db_url)
    assert slot_starts(db_url, salon.ann, salon.cut, day) == []
    assert_no_drift(db_url, salon.slug)


@pytest.mark.slow
def test_sigterm_mid_recompute_finishes_the_window_and_exits_zero(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    with running_worker(db_url):
        wait_quiet(db_url)
    day = today_utc() + timedelta(days=2)
    seed.time_off(conn, salon.tenant, salon.bob, utc(day, 9), utc(day, 17))
    conn.commit()

    proc = _worker_process(db_url, **{HOLD_ENV: "2"})
    with _stderr_lines(proc) as lines:
        _wait_for_line(lines, "test hook")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        _wait_for_line(lines, "worker stopped")
    assert queue_depth(db_url) == 0
    assert slot_starts(db_url, salon.bob, salon.cut, day) == []
    assert_no_drift(db_url, salon.slug)


@pytest.mark.slow
def test_idle_worker_exits_zero_on_sigint(db_url: str) -> None:
    proc = _worker_process(db_url)
    with _stderr_lines(proc) as lines:
        _wait_for_line(lines, "worker started")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0


def test_worker_reconnects_after_its_connections_are_cut(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    with running_worker(db_url, name="cut-me", poll_seconds=0.5):
        wait_quiet(db_url)
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name LIKE 'cut-me%%'"
        ).fetchone()
        conn.commit()
        assert killed is not None and killed[0] >= 2  # the listener and the consumer
        day = today_utc() + timedelta(days=1)
        seed.time_off(conn, salon.tenant, salon.ann, utc(day, 0), utc(day + timedelta(days=1), 0))
        conn.commit()
        wait_until(
            lambda: slot_starts(db_url, salon.ann, salon.cut, day) == [],
            what="the time off to show",
        )
    assert_no_drift(db_url, salon.slug)
