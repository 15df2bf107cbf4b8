"""The recompute queue: coalescing (pure), claiming and draining (real PostgreSQL).

Also holds the helpers the other worker, freshness and admin tests share.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager, ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import anyio.from_thread
import httpx
import psycopg
from starlette.applications import Starlette

from slotmill import seed
from slotmill.jobs.queue import (
    Request,
    drain_one,
    extend_to_windows,
    merge_spans,
    request_spans,
)
from slotmill.jobs.worker import Worker
from slotmill.materializer.horizon import Horizon, horizon_for
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.verify import verify

Conn = psycopg.Connection[Any]
H = 3600
D = 86400


# ---------------------------------------------------------------------------------------
# Shared helpers.


def wait_until(predicate: Callable[[], bool], *, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail after ``timeout`` (never a timing assertion:
    the bound only keeps a broken build from hanging)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def queue_depth(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as c:
        row = c.execute("SELECT count(*) FROM recompute_requests").fetchone()
    return int(row[0]) if row else 0


def wait_quiet(url: str, timeout: float = 60.0) -> None:
    """Until the queue is empty: a request leaves it in the commit that writes its result."""
    wait_until(lambda: queue_depth(url) == 0, timeout=timeout, what="an empty recompute queue")


def assert_no_drift(url: str, slug: str) -> None:
    with psycopg.connect(url) as c:
        drift = verify(c, load_tenant(c, slug))
    assert drift.total == 0, (drift.missing[:3], drift.unexpected[:3], drift.changed[:3])


@contextmanager
def running_worker(url: str, concurrency: int = 1, **kw: Any) -> Iterator[Worker]:
    kw.setdefault("schedule", False)
    kw.setdefault("poll_seconds", 1.0)
    w = Worker(url, concurrency, **kw)
    w.start()
    try:
        yield w
    finally:
        w.stop()
        assert w.join(timeout=60), "worker threads did not stop"


def utc(d: date, hh: int, mm: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, hh, mm, tzinfo=UTC)


def today_utc() -> date:
    return datetime.now(UTC).date()


def slot_starts(url: str, staff_id: UUID, service_id: UUID, day: date) -> list[datetime]:
    """Materialized slot starts of one staff member and service on one UTC day."""
    with psycopg.connect(url, autocommit=True) as c:
        rows = c.execute(
            "SELECT starts_at FROM availability_slots WHERE staff_id = %s AND service_id = %s"
            " AND starts_at >= %s AND starts_at < %s ORDER BY starts_at",
            (staff_id, service_id, utc(day, 0), utc(day + timedelta(days=1), 0)),
        ).fetchall()
    return [r[0] for r in rows]


class Salon:
    """A small UTC tenant: Ann and Bob work every day 09:00-17:00; Cut is 30 min every 30 min
    with 10 min buffers each side."""

    def __init__(self, conn: Conn, slug: str = "acme", *, staff: int = 2) -> None:
        self.slug = slug
        self.tenant = seed.tenant(conn, slug, timezone="UTC", horizon_days=30)
        self.location = seed.location(conn, self.tenant, "Main street")
        self.staff = [
            seed.staff(conn, self.tenant, f"Staff {i}", location_id=self.location, priority=10 * i)
            for i in range(staff)
        ]
        self.cut = seed.service(conn, self.tenant, "Cut", 30, before=10, after=10, interval=30, staff_ids=self.staff)
        for s in self.staff:
            seed.template(conn, self.tenant, s, range(1, 8), "09:00", "17:00")
        conn.commit()

    @property
    def ann(self) -> UUID:
        return self.staff[0]

    @property
    def bob(self) -> UUID:
        return self.staff[1]


class AppClient:
    """A synchronous client of an ASGI app in this process (httpx.ASGITransport), with the
    app's lifespan (its connection pools) running on a portal thread's event loop."""

    def __init__(self, app: Starlette) -> None:
        self._stack = ExitStack()
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())
        self._lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        self._portal.call(self._lifespan.__aenter__)
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")

    def request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        return self._portal.call(functools.partial(self._client.request, method, url, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        try:
            self._portal.call(self._client.aclose)
            self._portal.call(self._lifespan.__aexit__, None, None, None)
        finally:
            self._stack.close()

    def __enter__(self) -> AppClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------
# Coalescing.

HORIZON = Horizon(start=100 * D, end=130 * D, today=date(1970, 4, 11), last_day=date(1970, 5, 10))


def req(lo: int | None, hi: int | None, reason: str = "time_off", *, whole: bool = False) -> Request:
    return Request(
        id=1,
        tenant_id=UUID(int=1),
        staff_id=None,
        whole=whole,
        lo=lo,
        hi=hi,
        empty=False,
        reason=reason,
        requested_at=datetime.now(UTC),
    )


def test_busy_spans_widen_by_service_reach() -> None:
    whole, busy, rules = request_spans(
        [req(110 * D + 10 * H, 110 * D + 11 * H)], HORIZON, after_s=40 * 60, before_s=10 * 60
    )
    assert not whole and not rules
    # a slot starting 40 min before 10:00 ends its blocked range at 10:00 (touching): it
    # is the first one not affected; the window starts just after it
    assert busy == [(110 * D + 10 * H - 40 * 60, 110 * D + 11 * H + 10 * 60)]


def test_whole_request_wins_and_unbounded_sides_reach_the_horizon() -> None:
    assert request_spans([req(1, 2), req(None, None, whole=True)], HORIZON, after_s=0, before_s=0)[0]
    _, busy, _ = request_spans([req(None, 111 * D)], HORIZON, after_s=0, before_s=0)
    assert busy == [(HORIZON.start, 111 * D)]


def test_rule_spans_grow_to_the_working_windows_they_touch() -> None:
    # a 24-hour schedule: one window runs through the changed day into the next ones
    windows = [(109 * D, 113 * D), (120 * D, 121 * D)]
    assert extend_to_windows([(110 * D, 111 * D)], windows) == [(109 * D, 113 * D)]
    assert extend_to_windows([(115 * D, 116 * D)], windows) == [(115 * D, 116 * D)]


def test_merge_clips_joins_and_caps() -> None:
    spans = [
        (90 * D, 101 * D),
        (105 * D, 105 * D + H),
        (105 * D + 2 * H, 106 * D),
        (140 * D, 150 * D),
    ]
    assert merge_spans(spans, HORIZON) == [(100 * D, 101 * D), (105 * D, 106 * D)]
    many = [(s * D, s * D + H) for s in range(101, 129, 3)]
    assert merge_spans(many, HORIZON) == [(101 * D, 128 * D + H)]
    assert merge_spans([], HORIZON) == []


# ---------------------------------------------------------------------------------------
# Draining, against the database.


def test_drain_materializes_a_new_tenant_and_empties_the_queue(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    outcomes = []
    while (o := drain_one(conn)) is not None:
        outcomes.append(o)
    assert queue_depth(db_url) == 0
    assert {o.action for o in outcomes} == {"recomputed"}
    day = today_utc() + timedelta(days=3)
    assert len(slot_starts(db_url, salon.ann, salon.cut, day)) == 16  # 09:00 .. 16:30
    assert_no_drift(db_url, salon.slug)


def test_claimed_group_is_invisible_to_a_second_consumer(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    while drain_one(conn) is not None:
        pass
    day = today_utc() + timedelta(days=3)
    seed.time_off(conn, salon.tenant, salon.ann, utc(day, 10), utc(day, 11))
    seed.time_off(conn, salon.tenant, salon.bob, utc(day, 10), utc(day, 11))
    conn.commit()
    with psycopg.connect(db_url) as other:
        # another consumer holds Ann's group (its claim transaction is open) ...
        other.execute("SELECT id FROM recompute_requests WHERE staff_id = %s FOR UPDATE", (salon.ann,))
        o = drain_one(conn)
        assert o is not None and o.staff_id == salon.bob  # ... so this one takes Bob's
        assert drain_one(conn) is None
        other.rollback()
    o = drain_one(conn)
    assert o is not None and o.staff_id == salon.ann
    assert_no_drift(db_url, salon.slug)


def test_requests_of_a_deleted_tenant_are_dropped_with_its_slots(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    while drain_one(conn) is not None:
        pass
    conn.execute("DELETE FROM staff_services WHERE tenant_id = %s", (salon.tenant,))
    conn.execute("DELETE FROM tenants WHERE id = %s", (salon.tenant,))
    conn.commit()
    actions = set()
    while (o := drain_one(conn)) is not None:
        actions.add(o.action)
    assert actions == {"dropped"}
    assert queue_depth(db_url) == 0
    assert conn.execute("SELECT count(*) FROM availability_slots").fetchone() == (0,)


def test_large_tenant_requests_are_split_per_staff_member(conn: Conn, db_url: str) -> None:
    salon = Salon(conn, staff=3)
    conn.execute("DELETE FROM recompute_requests")
    conn.execute("UPDATE tenants SET horizon_days = 20 WHERE id = %s", (salon.tenant,))
    conn.commit()
    first = drain_one(conn, chunk=2)
    assert first is not None and first.action == "expanded" and first.staff == 3
    rows = conn.execute("SELECT staff_id, during FROM recompute_requests ORDER BY staff_id").fetchall()
    conn.rollback()
    assert sorted(r[0] for r in rows) == sorted(salon.staff) and all(r[1] is None for r in rows)
    while drain_one(conn, chunk=2) is not None:
        pass
    assert_no_drift(db_url, salon.slug)


def test_large_tenant_holiday_is_split_per_staff_member(conn: Conn, db_url: str) -> None:
    salon = Salon(conn, staff=3)
    while drain_one(conn, chunk=2) is not None:
        pass
    day = today_utc() + timedelta(days=4)
    seed.holiday(conn, salon.tenant, day, "closed")
    conn.commit()
    first = drain_one(conn, chunk=2)
    assert first is not None and first.action == "expanded"
    assert queue_depth(db_url) == 3
    while drain_one(conn, chunk=2) is not None:
        pass
    assert all(slot_starts(db_url, s, salon.cut, day) == [] for s in salon.staff)
    assert slot_starts(db_url, salon.ann, salon.cut, day + timedelta(days=1))
    assert_no_drift(db_url, salon.slug)


def test_shorter_horizon_removes_the_slots_beyond_it(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    while drain_one(conn) is not None:
        pass
    far = today_utc() + timedelta(days=25)
    assert slot_starts(db_url, salon.ann, salon.cut, far)
    conn.execute("UPDATE tenants SET horizon_days = 10 WHERE id = %s", (salon.tenant,))
    conn.commit()
    while drain_one(conn) is not None:
        pass
    assert slot_starts(db_url, salon.ann, salon.cut, far) == []
    assert_no_drift(db_url, salon.slug)


def test_a_failing_group_rolls_back_and_keeps_its_requests(conn: Conn, db_url: str) -> None:
    salon = Salon(conn)
    while drain_one(conn) is not None:
        pass
    day = today_utc() + timedelta(days=2)
    seed.busy(conn, salon.tenant, salon.ann, utc(day, 9), utc(day, 10))
    conn.commit()
    before = slot_starts(db_url, salon.ann, salon.cut, day)
    with psycopg.connect(db_url) as blocker:
        # a lock on Ann's staff key that never comes free within the lock timeout
        blocker.execute(
            "SELECT pg_advisory_xact_lock(slotmill_staff_lock_key(%s, %s))",
            (salon.tenant, salon.ann),
        )
        conn.execute("SET lock_timeout = '200ms'")
        conn.commit()
        failed = drain_one(conn)
        assert failed is not None and failed.action == "failed"
        assert (failed.tenant_id, failed.staff_id) == (salon.tenant, salon.ann)
        assert failed.error and "LockNotAvailable" in failed.error and failed.attempts == 1
        # the failed group waits out its back-off: nothing else is due
        assert drain_one(conn) is None
        blocker.rollback()
    assert queue_depth(db_url) == 1
    with psycopg.connect(db_url, autocommit=True) as c:
        row = c.execute("SELECT attempts, last_error, not_before > now() FROM recompute_requests").fetchone()
    assert row is not None and row[0] == 1 and "lock timeout" in row[1] and row[2]
    assert slot_starts(db_url, salon.ann, salon.cut, day) == before
    conn.execute("RESET lock_timeout")
    conn.execute("UPDATE recompute_requests SET not_before = now()")  # the back-off is over
    conn.commit()
    assert drain_one(conn) is not None
    assert slot_starts(db_url, salon.ann, salon.cut, day)[0] == utc(day, 10, 30)
    assert_no_drift(db_url, salon.slug)


def test_a_rule_change_regrids_the_rest_of_a_window_beyond_its_dates(conn: Conn, db_url: str) -> None:
    # Around the clock, every day, until an hour off on day+2 of `later`: a window of many
    # days, its 50-minute grid anchored at the epoch. An hour off two days before `later`
    # cuts a 4-day window out of it, whose grid is anchored at its own start (01:00): every
    # slot of `later` moves, two days after the date the override names.
    t = seed.tenant(conn, "night", timezone="UTC", horizon_days=20)
    s = seed.staff(conn, t, "Owl")
    v = seed.service(conn, t, "Watch", 50, staff_ids=[s])
    seed.template(conn, t, s, range(1, 8), "00:00", "24:00")
    later = today_utc() + timedelta(days=11)
    seed.override(conn, t, s, later + timedelta(days=2), available=False, start="00:00", end="01:00")
    conn.commit()
    while drain_one(conn) is not None:
        pass
    day = later - timedelta(days=2)
    before = slot_starts(db_url, s, v, later)
    assert before and all(x.timestamp() % 3000 == 0 for x in before)
    seed.override(conn, t, s, day, available=False, start="00:00", end="01:00")
    conn.commit()
    while drain_one(conn) is not None:
        pass
    assert slot_starts(db_url, s, v, later) != before
    assert_no_drift(db_url, "night")


def test_horizon_helper_matches_materializer() -> None:
    h = horizon_for("UTC", 30, 100 * D + 5)
    assert (h.start, h.end) == (100 * D, 130 * D)


def test_deleting_a_service_recomputes_its_staff(conn: Conn, db_url: str) -> None:
    # services_enqueue() skips DELETE: the cascade to staff_services enqueues the staff
    salon = Salon(conn)
    while drain_one(conn) is not None:
        pass
    day = today_utc() + timedelta(days=2)
    assert slot_starts(db_url, salon.bob, salon.cut, day)
    conn.execute("DELETE FROM services WHERE id = %s", (salon.cut,))
    conn.commit()
    assert queue_depth(db_url) == 2
    while drain_one(conn) is not None:
        pass
    assert slot_starts(db_url, salon.bob, salon.cut, day) == []
    assert_no_drift(db_url, salon.slug)
