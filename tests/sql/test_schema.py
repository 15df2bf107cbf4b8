"""The schema's own guarantees: the conflict rule, validation, idempotent migrations."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest

from slotmill import seed
from slotmill.migrate import migrate
from tests.testdb import create_test_database, drop_test_database

T0 = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)


def _setup(conn: psycopg.Connection[Any]) -> tuple[UUID, UUID, UUID]:
    t = seed.tenant(conn, "acme")
    s = seed.staff(conn, t, "Ann")
    v = seed.service(conn, t, "Cut", 30, before=15, after=30, staff_ids=[s])
    conn.commit()
    return t, s, v


def _book(conn: psycopg.Connection[Any], t: UUID, s: UUID, v: UUID, start: datetime, **kw: Any) -> UUID:
    return seed.booking(conn, t, s, v, start, start + timedelta(minutes=30), **kw)


def test_exclusion_rejects_overlap_and_accepts_touching(conn: psycopg.Connection[Any]) -> None:
    t, s, v = _setup(conn)
    _book(conn, t, s, v, T0)  # blocked [11:45, 13:00)
    conn.commit()

    with pytest.raises(psycopg.errors.ExclusionViolation):
        _book(conn, t, s, v, T0 + timedelta(minutes=10))  # plain overlap
    conn.rollback()
    with pytest.raises(psycopg.errors.ExclusionViolation):
        # 12:30-13:00 does not overlap 12:00-12:30, but E.after (30) + N.before (15) = 45
        # minutes must separate them: only buffers overlap.
        _book(conn, t, s, v, T0 + timedelta(minutes=30))
    conn.rollback()
    with pytest.raises(psycopg.errors.ExclusionViolation):
        _book(conn, t, s, v, T0 - timedelta(minutes=60))  # its after-buffer reaches into ours
    conn.rollback()

    _book(conn, t, s, v, T0 + timedelta(minutes=75))  # blocked starts 13:00: touching
    _book(conn, t, s, v, T0 - timedelta(minutes=75))  # blocked ends 11:45: touching
    conn.commit()
    n = conn.execute("SELECT count(*) FROM bookings WHERE status = 'confirmed'").fetchone()
    assert n == (3,)


def test_other_staff_and_cancelled_do_not_conflict(conn: psycopg.Connection[Any]) -> None:
    t, s, v = _setup(conn)
    other = seed.staff(conn, t, "Bob")
    _book(conn, t, s, v, T0)
    _book(conn, t, other, v, T0)
    cancelled = _book(conn, t, s, v, T0 + timedelta(hours=3))
    conn.execute("UPDATE bookings SET status = 'cancelled' WHERE id = %s", (cancelled,))
    _book(conn, t, s, v, T0 + timedelta(hours=3))
    conn.commit()


def test_live_hold_blocks_direct_confirmed_insert_but_expired_hold_does_not(conn: psycopg.Connection[Any]) -> None:
    t, s, v = _setup(conn)
    now = datetime.now(UTC)
    _book(conn, t, s, v, T0, status="held", expires_at=now + timedelta(minutes=10))
    conn.commit()
    with pytest.raises(psycopg.errors.ExclusionViolation):
        _book(conn, t, s, v, T0)
    conn.rollback()

    lapsed = _book(conn, t, s, v, T0 + timedelta(hours=4), status="held", expires_at=now - timedelta(seconds=1))
    conn.commit()
    _book(conn, t, s, v, T0 + timedelta(hours=4))  # the lapsed hold is retired, not in the way
    conn.commit()
    status = conn.execute("SELECT status FROM bookings WHERE id = %s", (lapsed,)).fetchone()
    assert status == ("expired",)


def test_blocked_range_is_kept_by_trigger(conn: psycopg.Connection[Any]) -> None:
    t, s, v = _setup(conn)
    b = _book(conn, t, s, v, T0)
    row = conn.execute("SELECT lower(blocked), upper(blocked) FROM bookings WHERE id = %s", (b,)).fetchone()
    assert row == (T0 - timedelta(minutes=15), T0 + timedelta(minutes=60))
    # Moving the booking moves its blocked range; a host cannot set it to something else.
    conn.execute(
        "UPDATE bookings SET starts_at = starts_at + interval '1 hour', ends_at = ends_at + interval '1 hour',"
        " blocked = tstzrange(now(), now() + interval '1 minute') WHERE id = %s",
        (b,),
    )
    row = conn.execute("SELECT lower(blocked), upper(blocked) FROM bookings WHERE id = %s", (b,)).fetchone()
    assert row == (T0 + timedelta(minutes=45), T0 + timedelta(minutes=120))


def test_concurrent_inserts_of_one_range_leave_one_winner(db_url: str) -> None:
    with psycopg.connect(db_url) as c:
        t, s, v = _setup(c)
    outcomes: list[str] = []
    barrier = threading.Barrier(20)

    def attempt() -> None:
        with psycopg.connect(db_url) as c:
            barrier.wait()
            try:
                _book(c, t, s, v, T0, status="held", expires_at=datetime.now(UTC) + timedelta(minutes=5))
                c.commit()
                outcomes.append("won")
            except psycopg.errors.ExclusionViolation:
                outcomes.append("lost")

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["lost"] * 19 + ["won"]


@pytest.mark.parametrize(
    ("sql", "params", "constraint"),
    [
        (
            "INSERT INTO staff (tenant_id, display_name, timezone) VALUES (%s, 'X', 'Mars/Olympus')",
            (),
            "staff_timezone_valid",
        ),
        ("INSERT INTO staff (tenant_id, display_name, timezone) VALUES (%s, 'X', 'UTC+3')", (), "staff_timezone_valid"),
        (
            "INSERT INTO locations (tenant_id, name, timezone) VALUES (%s, 'X', 'Nowhere/City')",
            (),
            "locations_timezone_valid",
        ),
        (
            "INSERT INTO availability_templates (tenant_id, staff_id, weekday, start_time, end_time)"
            " SELECT %s, id, 1, '10:00', '09:00' FROM staff LIMIT 1",
            (),
            "availability_templates_times",
        ),
        (
            "INSERT INTO availability_templates (tenant_id, staff_id, weekday, start_time, end_time)"
            " SELECT %s, id, 1, '10:00', '10:00' FROM staff LIMIT 1",
            (),
            "availability_templates_times",
        ),
        (
            "INSERT INTO availability_overrides (tenant_id, staff_id, on_date, is_available)"
            " SELECT %s, id, '2030-01-01', true FROM staff LIMIT 1",
            (),
            "availability_overrides_times",
        ),
    ],
)
def test_bad_rules_are_refused_by_name(
    conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...], constraint: str
) -> None:
    t, _s, _v = _setup(conn)
    with pytest.raises(psycopg.errors.CheckViolation) as err:
        conn.execute(sql, (t, *params))
    assert err.value.diag.constraint_name == constraint


def test_24_00_end_time_is_allowed(conn: psycopg.Connection[Any]) -> None:
    t, s, _v = _setup(conn)
    seed.template(conn, t, s, [1], "22:00", "24:00")
    conn.commit()


def test_migrate_is_idempotent_and_safe_concurrently(pg_admin_url: str) -> None:
    from tests.testdb import with_database

    name = "slotmill_migrate_race"
    with psycopg.connect(pg_admin_url, autocommit=True) as c:
        c.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        c.execute(f"CREATE DATABASE {name}")
    url = with_database(pg_admin_url, name)
    try:
        results: list[list[int]] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                results.append(migrate(url))
            except BaseException as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=run) for _ in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors
        applied = [r for r in results if r]
        assert len(applied) == 1  # exactly one process applied them, the others found them done
        assert migrate(url) == []
    finally:
        drop_test_database(pg_admin_url, url)


def test_template_clone_is_isolated(pg_admin_url: str, pg_template: str) -> None:
    a = create_test_database(pg_admin_url, pg_template)
    b = create_test_database(pg_admin_url, pg_template)
    try:
        with psycopg.connect(a) as ca:
            seed.tenant(ca, "only-in-a")
            ca.commit()
        with psycopg.connect(b) as cb:
            assert cb.execute("SELECT count(*) FROM tenants").fetchone() == (0,)
    finally:
        drop_test_database(pg_admin_url, a)
        drop_test_database(pg_admin_url, b)
