"""A bad rule stops nobody: values a host can write straight into the tables are refused at
the door when they cannot be computed, and the ones already stored (an older schema let
them in) fail only their own staff member's recompute, visibly, never the worker, another
tenant, or an HTTP answer (no 500).

Each test names the finding it covers (docs/rules.md, "When a rule cannot be computed").
"""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
import pytest

from slotmill import seed
from slotmill.cli import main
from slotmill.jobs.nightly import nightly_tick
from slotmill.jobs.queue import PARK_AFTER, drain_one
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.verify import verify
from tests.support import World, bearer, db_exec, db_rows, hold_ok, iso, materialize, problem, run

Conn = psycopg.Connection[Any]

# The CHECKs of migration 0007, dropped to stand for a database that took these values
# before the schema refused them.
NEW_CHECKS = {
    "holidays": ["holidays_on_date_valid", "holidays_rrule_valid"],
    "availability_overrides": ["availability_overrides_on_date_valid", "availability_overrides_rrule_valid"],
    "availability_templates": ["availability_templates_dates_valid"],
    "time_off": ["time_off_during_valid"],
    "busy_times": ["busy_times_during_valid"],
    "bookings": ["bookings_instants_valid"],
    "staff": ["staff_timezone_valid"],
    "tenants": ["tenants_timezone_valid"],
    "locations": ["locations_timezone_valid"],
}


def as_old_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as c:
        for table, names in NEW_CHECKS.items():
            for name in names:
                c.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")


def drain(conn: Conn, limit: int = 200) -> list[Any]:
    out = []
    for _ in range(limit):
        o = drain_one(conn)
        if o is None:
            return out
        out.append(o)
    raise AssertionError("the queue never emptied")


def make_due(url: str) -> None:
    """End every back-off now (not parked ones): what waiting would do, without the wait."""
    db_exec(url, "UPDATE recompute_requests SET not_before = now() WHERE isfinite(not_before)")


# --- refused at the door ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "constraint"),
    [
        (
            "INSERT INTO holidays (tenant_id, on_date, rrule) VALUES (%(t)s, current_date, 'FREQ=DAILY;INTERVAL=0')",
            "holidays_rrule_valid",
        ),
        (
            "INSERT INTO holidays (tenant_id, on_date, rrule) VALUES (%(t)s, current_date, 'FREQ=SECONDLY')",
            "holidays_rrule_valid",
        ),
        (
            "INSERT INTO holidays (tenant_id, on_date, rrule) VALUES (%(t)s, current_date, 'not a rule')",
            "holidays_rrule_valid",
        ),
        (
            "INSERT INTO holidays (tenant_id, on_date, rrule) VALUES (%(t)s, '-infinity', 'FREQ=YEARLY')",
            "holidays_on_date_valid",
        ),
        (
            "INSERT INTO availability_overrides (tenant_id, staff_id, on_date, is_available, rrule)"
            " VALUES (%(t)s, %(s)s, current_date, false, 'FREQ=HOURLY')",
            "availability_overrides_rrule_valid",
        ),
        (
            "INSERT INTO availability_templates (tenant_id, staff_id, weekday, start_time, end_time, valid_from)"
            " VALUES (%(t)s, %(s)s, 1, '09:00', '10:00', '0044-03-15 BC')",
            "availability_templates_dates_valid",
        ),
        (
            "INSERT INTO availability_templates (tenant_id, staff_id, weekday, start_time, end_time, valid_until)"
            " VALUES (%(t)s, %(s)s, 1, '09:00', '10:00', 'infinity')",
            "availability_templates_dates_valid",
        ),
        (
            "INSERT INTO time_off (tenant_id, staff_id, during)"
            " VALUES (%(t)s, %(s)s, tstzrange(now() + interval '1 day', '20000-01-01'))",
            "time_off_during_valid",
        ),
        (
            "INSERT INTO busy_times (tenant_id, staff_id, during)"
            " VALUES (%(t)s, %(s)s, tstzrange('1899-12-31', now()))",
            "busy_times_during_valid",
        ),
        ("UPDATE staff SET timezone = 'CEST' WHERE id = %(s)s", "staff_timezone_valid"),
        ("UPDATE tenants SET timezone = 'PDT' WHERE id = %(t)s", "tenants_timezone_valid"),
    ],
)
def test_values_that_cannot_be_computed_are_refused_by_name(conn: Conn, sql: str, constraint: str) -> None:
    t = seed.tenant(conn, "door")
    s = seed.staff(conn, t, "Ann")
    conn.commit()
    with pytest.raises(psycopg.errors.CheckViolation) as e:
        conn.execute(sql, {"t": t, "s": s})
    assert e.value.diag.constraint_name == constraint
    conn.rollback()


def test_the_sql_and_python_recurrence_checks_agree(conn: Conn) -> None:
    from slotmill.materializer.engine.recurrence import rrule_problem

    rules = [
        "FREQ=DAILY",
        "freq=weekly;byday=mo,we",
        "RRULE:FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=1001",
        "FREQ=DAILY;COUNT=10001",
        "FREQ=SECONDLY",
        "FREQ=DAILY;BYHOUR=9",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=WEEKLY;BYDAY=54MO",
        "FREQ=MONTHLY;BYMONTHDAY=32",
        "FREQ=MONTHLY;BYMONTHDAY=-31",
        "FREQ=YEARLY;BYMONTH=-1",
        "FREQ=DAILY;UNTIL=20261301",
        "FREQ=DAILY;UNTIL=22010101",
        "FREQ=DAILY;UNTIL=20270101T000000Z",
        "FREQ=DAILY;COUNT=2;UNTIL=20270101",
        "FREQ=DAILY;FREQ=DAILY",
        "BYDAY=MO",
        "",
        "  ",
        "FREQ=DAILY;X-NAME=1",
        "FREQ=DAILY;WKST=SU",
        "FREQ=DAILY;WKST=XX",
        "FREQ=DAILY;;",
        "FREQ=DAILY;BYSETPOS=1,-1",
        "FREQ=YEARLY;BYWEEKNO=53;BYYEARDAY=366",
        "FREQ=DAILY;INTERVAL=+5",
        "FREQ==DAILY",
        "FREQ=DAILY=WEEKLY",
        "x" * 501,
    ]
    for rule in rules:
        row = conn.execute("SELECT slotmill_rrule_problem(%s)", (rule,)).fetchone()
        assert row is not None
        assert (row[0] is None) == (rrule_problem(rule) is None), (rule, row[0], rrule_problem(rule))


# --- stored anyway: each fails only its own staff member -----------------------------------------


def _two_staff(conn: Conn, slug: str = "salon") -> tuple[UUID, UUID, UUID, UUID]:
    t = seed.tenant(conn, slug, timezone="Europe/London", horizon_days=14)
    good = seed.staff(conn, t, "Good")
    bad = seed.staff(conn, t, "Bad")
    v = seed.service(conn, t, "Cut", 30, staff_ids=[good, bad])
    for s in (good, bad):
        seed.template(conn, t, s, range(1, 8), "09:00", "17:00")
    conn.commit()
    return t, good, bad, v


POISONS = {
    # finding 1: an endless recurrence (python-dateutil loops for ever on INTERVAL=0)
    "endless override": "INSERT INTO availability_overrides (tenant_id, staff_id, on_date, is_available, rrule)"
    " VALUES (%(t)s, %(bad)s, current_date, false, 'FREQ=DAILY;INTERVAL=0')",
    # finding 1: sub-daily from long ago (minutes of expansion)
    "secondly holiday": "INSERT INTO holidays (tenant_id, staff_id, on_date, rrule)"
    " VALUES (%(t)s, %(bad)s, '2025-01-01', 'FREQ=SECONDLY')",
    # finding 2: a range past year 9999 (poisoned the claim query for every tenant)
    "year 20000": "INSERT INTO time_off (tenant_id, staff_id, during)"
    " VALUES (%(t)s, %(bad)s, tstzrange(now() + interval '1 day', '20000-01-01'))",
    # finding 4: dates the driver cannot load
    "BC valid_from": "UPDATE availability_templates SET valid_from = '0044-03-15 BC' WHERE staff_id = %(bad)s",
    "infinite valid_until": "UPDATE availability_templates SET valid_until = 'infinity' WHERE staff_id = %(bad)s",
    "year 10000 valid_until": "UPDATE availability_templates SET valid_until = '10000-01-01' WHERE staff_id = %(bad)s",
    "-infinity rrule start": "INSERT INTO availability_overrides (tenant_id, staff_id, on_date, is_available, rrule)"
    " VALUES (%(t)s, %(bad)s, '-infinity', false, 'FREQ=WEEKLY')",
    # finding 4: a zone abbreviation PostgreSQL accepts and Python does not
    "CEST zone": "UPDATE staff SET timezone = 'CEST' WHERE id = %(bad)s",
    # an RRULE that is not one (used to be ignored silently)
    "garbage rule": "INSERT INTO holidays (tenant_id, staff_id, on_date, rrule)"
    " VALUES (%(t)s, %(bad)s, current_date, 'sometimes')",
}
# Values that cannot be computed at all (the others are read clamped and compute fine).
FAILING = {"endless override", "secondly holiday", "-infinity rrule start", "CEST zone", "garbage rule"}


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_stored_poison_fails_only_its_staff_member(db_url: str, conn: Conn, poison: str) -> None:
    as_old_schema(db_url)
    t, good, bad, _v = _two_staff(conn)
    drain(conn)
    conn.execute(POISONS[poison], {"t": t, "bad": bad})
    conn.commit()
    seed.busy(conn, t, good, *_tomorrow(conn, "10:00", "11:00"))  # a good change beside it
    conn.commit()
    outcomes = drain(conn)
    tenant = load_tenant(conn, "salon")
    drift = verify(conn, tenant)
    assert drift.total == 0, drift  # the good staff member is exact; the table agrees
    failed = [o for o in outcomes if o.action == "failed"]
    if poison in FAILING:
        assert bad in drift.failed and good not in drift.failed
        assert failed and all(o.staff_id == bad for o in failed)
        rows = db_rows(db_url, "SELECT staff_id, last_error FROM recompute_requests")
        assert rows and all(r[0] == bad and r[1] for r in rows)
    else:
        # Read clamped into the years the service schedules: exact, nothing fails.
        assert not drift.failed and not failed
        assert db_rows(db_url, "SELECT count(*) FROM recompute_requests") == [(0,)]


def _tomorrow(conn: Conn, start: str, end: str) -> tuple[Any, Any]:
    row = conn.execute(
        "SELECT (current_date + 1 + %s::time) AT TIME ZONE 'Europe/London',"
        " (current_date + 1 + %s::time) AT TIME ZONE 'Europe/London'",
        (start, end),
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_a_poison_in_the_queue_itself_never_blocks_it(db_url: str, conn: Conn) -> None:
    # finding 2: deleting the year-20000 row enqueued a second request whose range the
    # claim query could not even read; the oldest request was retried every 10 s for ever.
    as_old_schema(db_url)
    t, good, bad, _ = _two_staff(conn)
    drain(conn)
    conn.execute(POISONS["year 20000"], {"t": t, "bad": bad})
    conn.execute("DELETE FROM time_off WHERE staff_id = %s", (bad,))
    conn.execute(
        "INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)"
        " VALUES (%s, %s, tstzrange('20000-01-01', '30000-01-01'), 'time_off')",
        (t, good),
    )
    conn.commit()
    drain(conn)
    assert db_rows(db_url, "SELECT count(*) FROM recompute_requests") == [(0,)]
    assert verify(conn, load_tenant(conn, "salon")).total == 0


def test_a_failing_group_backs_off_then_parks_and_a_fix_unparks_it(db_url: str, conn: Conn) -> None:
    as_old_schema(db_url)
    t, _good, bad, _ = _two_staff(conn)
    drain(conn)
    conn.execute(POISONS["endless override"], {"t": t, "bad": bad})
    conn.commit()
    for attempt in range(1, PARK_AFTER + 1):
        (o,) = drain(conn)
        assert o.action == "failed" and o.attempts == attempt and "INTERVAL" in (o.error or "")
        assert o.parked == (attempt == PARK_AFTER)
        assert drain(conn) == []  # backing off: nothing due
        make_due(db_url)
    assert drain(conn) == []  # parked: due never again by itself
    assert db_rows(db_url, "SELECT attempts, NOT isfinite(not_before) FROM recompute_requests") == [(PARK_AFTER, True)]
    # The host fixes the rule: its change claims the parked request along, and both go.
    conn.execute("UPDATE availability_overrides SET rrule = 'FREQ=DAILY;COUNT=2' WHERE staff_id = %s", (bad,))
    conn.commit()
    (o,) = drain(conn)
    assert o.action == "recomputed" and o.requests == 2
    assert db_rows(db_url, "SELECT count(*) FROM recompute_requests") == [(0,)]
    assert verify(conn, load_tenant(conn, "salon")).total == 0


def test_a_tenant_wide_poison_fails_every_staff_member_but_no_other_tenant(db_url: str, conn: Conn) -> None:
    as_old_schema(db_url)
    t, good, bad, _ = _two_staff(conn)
    t2, good2, _, _ = _two_staff(conn, "other")
    drain(conn)
    conn.execute(
        "INSERT INTO holidays (tenant_id, on_date, rrule) VALUES (%s, current_date, 'FREQ=DAILY;INTERVAL=0')", (t,)
    )
    seed.busy(conn, t2, good2, *_tomorrow(conn, "10:00", "11:00"))
    conn.commit()
    drain(conn)
    failed = {r[0] for r in db_rows(db_url, "SELECT staff_id FROM recompute_requests WHERE last_error IS NOT NULL")}
    assert failed == {good, bad}
    assert verify(conn, load_tenant(conn, "other")).total == 0
    assert not verify(conn, load_tenant(conn, "other")).failed


# --- the API answers, never 500 ---------------------------------------------------------------------


def test_stored_poison_gives_clear_answers_not_500s(world: World) -> None:
    as_old_schema(world.url)
    a = world.acme
    db_exec(world.url, "UPDATE staff SET timezone = 'CEST' WHERE id = %s", (a.cid,))

    async def body(client: httpx.AsyncClient) -> None:
        # A hold on Cid's slot (the table still shows it) then a confirm: the re-check
        # cannot compute Cid's rules.
        h = await hold_ok(
            client, a, {"service_id": str(a.cut), "starts_at": iso(world.at("10:00")), "staff_id": str(a.cid)}
        )
        r = await client.post(
            f"/v1/tenants/{a.slug}/holds/{h['hold_id']}/confirm", json={"customer_ref": "c1"}, headers=bearer(a.key)
        )
        body_ = problem(r, 409, "rule_invalid")
        assert "CEST" in body_["detail"]
        admin = bearer("admin-key")
        r = await client.get(
            f"/v1/admin/tenants/{a.slug}/explain",
            params={"staff_id": str(a.cid), "service_id": str(a.cut), "starts_at": iso(world.at("11:00"))},
            headers=admin,
        )
        problem(r, 409, "rule_invalid")
        r = await client.post("/v1/admin/recalculate", json={"tenant": a.slug, "wait": True}, headers=admin)
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/admin/tenants/{a.slug}/status", headers=admin)
        assert r.status_code == 200, r.text
        (failure,) = r.json()["failures"]
        assert failure["staff_id"] == str(a.cid) and "CEST" in failure["reason"]
        # The tenant's own zone: status still answers, and says so.
        db_exec(world.url, "UPDATE tenants SET timezone = 'CEST' WHERE id = %s", (a.id,))
        r = await client.get(f"/v1/admin/tenants/{a.slug}/status", headers=admin)
        assert r.status_code == 200 and "CEST" in r.json()["error"] and r.json()["horizon"] is None
        r = await client.post("/v1/admin/recalculate", json={"tenant": a.slug, "wait": True}, headers=admin)
        problem(r, 409, "rule_invalid")
        # The other tenant is untouched by any of it.
        r = await client.get(f"/v1/admin/tenants/{world.other.slug}/status", headers=admin)
        assert r.status_code == 200 and r.json()["error"] is None and r.json()["failures"] == []

    run(world.url, body, admin_key="admin-key")


def test_metrics_show_failing_and_parked_recomputes(world: World, conn: Conn) -> None:
    as_old_schema(world.url)
    db_exec(world.url, "UPDATE staff SET timezone = 'CEST' WHERE id = %s", (world.acme.cid,))
    drain(conn)

    async def body(client: httpx.AsyncClient) -> str:
        return (await client.get("/metrics")).text

    text = run(world.url, body)
    retrying = re.search(r'slotmill_recompute_requests\{state="retrying"\} (\d+)', text)
    assert retrying and int(retrying[1]) >= 1  # Cid's requests, kept with why
    assert 'slotmill_recompute_requests{state="due"} 0.0' in text


# --- one tenant's bad zone never stops another's night -------------------------------------------


def test_a_bad_tenant_zone_does_not_stop_the_nightly_refresh_of_the_others(db_url: str, conn: Conn) -> None:
    # finding 5: zone() was called outside the per-tenant try in nightly_tick.
    as_old_schema(db_url)
    first = seed.tenant(conn, "aaa", timezone="UTC")
    seed.tenant(conn, "bbb", timezone="UTC")
    conn.execute("UPDATE tenants SET timezone = 'CEST' WHERE id = %s", (first,))
    conn.commit()
    done = nightly_tick(conn)
    assert [r.tenant_id for r in done] == [load_tenant(conn, "bbb").id]


# --- the any-staff hold tries every candidate ---------------------------------------------------------


def test_any_staff_holds_at_exactly_capacity_all_succeed(db_url: str, conn: Conn) -> None:
    # finding 3: a refused first candidate made the hold give up (a psycopg.Rollback was
    # swallowed by the savepoint block): at capacity, 141 of 370 holds succeeded.
    t = seed.tenant(conn, "crowd", timezone="UTC")
    crew = [seed.staff(conn, t, f"S{i:02d}") for i in range(12)]
    v = seed.service(conn, t, "Cut", 60, staff_ids=crew)
    for s in crew:
        seed.template(conn, t, s, range(1, 8), "09:00", "17:00")
    conn.commit()
    materialize(conn, "crowd")
    start = conn.execute("SELECT min(starts_at) FROM availability_slots WHERE starts_at > now() + interval '1 day'")
    at = start.fetchone()
    assert at is not None

    async def body(client: httpx.AsyncClient) -> list[int]:
        async def one() -> int:
            r = await client.post("/v1/tenants/crowd/holds", json={"service_id": str(v), "starts_at": iso(at[0])})
            return r.status_code

        return list(await asyncio.gather(*(one() for _ in range(len(crew)))))

    codes = run(db_url, body, pool_max_size=12)
    assert codes.count(201) == len(crew), codes
    held = db_rows(db_url, "SELECT count(DISTINCT staff_id) FROM bookings WHERE status = 'held'")
    assert held == [(len(crew),)]


# --- a host writing in any lock order never deadlocks a refresh -----------------------------------------


def test_a_host_writing_staff_in_descending_order_does_not_kill_a_refresh(db_url: str, conn: Conn) -> None:
    t = seed.tenant(conn, "order", timezone="UTC")
    a, b = sorted(seed.staff(conn, t, n) for n in ("A", "B"))
    v = seed.service(conn, t, "Cut", 30, staff_ids=[a, b])
    for s in (a, b):
        seed.template(conn, t, s, range(1, 8), "09:00", "17:00")
    conn.commit()
    when = conn.execute("SELECT date_trunc('day', now()) + interval '2 days 10 hours'").fetchone()
    assert when is not None
    with psycopg.connect(db_url) as host:
        # The host holds B's lock (its booking trigger took it) and will take A's next.
        seed.booking(host, t, b, v, when[0], when[0] + timedelta(minutes=30))
        result: dict[str, int] = {}

        def refresh() -> None:
            result["exit"] = main(["refresh", "--tenant", "order"])

        worker = threading.Thread(target=refresh)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DATABASE_URL", db_url)
            from slotmill.config import get_settings

            get_settings.cache_clear()
            worker.start()
            host.execute("SELECT pg_sleep(1.0)")
            seed.booking(host, t, a, v, when[0], when[0] + timedelta(minutes=30))
            host.commit()
            worker.join(60)
            get_settings.cache_clear()
    assert result.get("exit") == 0
    drain(conn)  # the host's booking of A, committed after the refresh did A, is the queue's
    assert verify(conn, load_tenant(conn, "order")).total == 0


# --- chaos: a worker pool, good changes and every poison, three tenants ----------------------------------


def test_chaos_poisons_among_good_changes_across_three_tenants(db_url: str, conn: Conn, env_db: str) -> None:
    import random

    from tests.jobs.test_worker_queue import Salon, running_worker, wait_until

    as_old_schema(db_url)
    rng = random.Random(11)
    salons = [Salon(conn, slug, staff=4) for slug in ("north", "south", "east")]
    poisoned: dict[UUID, str] = {}  # staff member -> poison written (only "east" is poisoned)
    east = salons[2]
    failing = sorted(FAILING)
    with running_worker(db_url, concurrency=2) as w1, running_worker(db_url, concurrency=1) as w2:
        for i in range(60):
            salon = rng.choice(salons)
            staff = rng.choice(salon.staff)
            with conn.transaction():
                if salon is east and i % 6 == 0 and len(poisoned) < 3:
                    victim = east.staff[len(poisoned)]
                    kind = failing[len(poisoned) % len(failing)]
                    conn.execute(POISONS[kind], {"t": east.tenant, "bad": victim})
                    poisoned[victim] = kind
                else:
                    start, _ = _tomorrow(conn, f"{rng.randrange(9, 16):02d}:00", "17:00")
                    day = timedelta(days=rng.randrange(0, 20))
                    seed.busy(conn, salon.tenant, staff, start + day, start + day + timedelta(minutes=30))
        # Everything good drained; every poisoned staff member's requests kept with why.
        wait_until(
            lambda: db_rows(db_url, "SELECT count(*) FROM recompute_requests WHERE last_error IS NULL") == [(0,)],
            timeout=120,
            what="no due request left",
        )
        assert w1.alive() and w2.alive()
    for salon in salons[:2]:
        assert main(["verify", "--tenant", salon.slug]) == 0
    # the poisoned tenant: exact for everyone else, and the poisoned named with why
    drift = verify(conn, load_tenant(conn, "east"))
    assert drift.total == 0 and set(drift.failed) == set(poisoned)

    async def body(client: httpx.AsyncClient) -> dict[str, Any]:
        r = await client.get("/v1/admin/tenants/east/status", headers=bearer("k"))
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    status = run(db_url, body, admin_key="k")
    reasons = {UUID(f["staff_id"]): f["reason"] for f in status["failures"]}
    assert set(reasons) == set(poisoned)
    assert all(reasons[s] for s in poisoned)
    assert status["queue"]["depth"] == 0
