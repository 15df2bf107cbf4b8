"""Measurement 2: commit-to-visible latency with ``slotmill worker`` running.

Two kinds of event, as a host application writes them: a confirmed booking cancelled
(``UPDATE bookings SET status = 'cancelled'``) and a weekly template changed (an end time
moved by 30 minutes). Before committing, the writer works out with the engine, inside its
own transaction, which slot ids the change must add or remove (so the poll waits for the
real effect, not for any change). The clock starts when COMMIT is sent; another connection
then polls the slot table (the read's table, by slot id) until the change shows.
Events are one at a time: the queue is empty before each.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from typing import Any
from uuid import UUID

import psycopg

from bench.common import Plan, Row, ms, percentile, summary
from bench.generate import Dataset
from bench.profiling import spy, spy_sentence
from slotmill.materializer.horizon import from_epoch, to_epoch
from slotmill.materializer.loader import Conn, Tenant, load_rules, load_tenant
from slotmill.materializer.refresh import compute, slot_rows

TARGET_P99_S = 0.200
POLL_TIMEOUT_S = 10.0
POLL_SLEEP_S = 0.0005


def _expected_ids(conn: Conn, tenant: Tenant, staff_id: UUID, lo: int, hi: int) -> set[str]:
    now = int(time.time())
    rules = load_rules(conn, tenant, staff_ids=[staff_id], lo=lo, hi=hi, now=now)
    ids: set[str] = set()
    computed, _failed = compute(rules, lo, hi)
    for slots in computed.values():
        ids.update(row[1] for row in slot_rows(tenant.id, slots))
    return ids


def _table_ids(conn: Conn, tenant_id: UUID, staff_id: UUID, lo: int, hi: int) -> set[str]:
    rows = conn.execute(
        "SELECT id FROM availability_slots WHERE tenant_id = %s AND staff_id = %s"
        " AND starts_at >= %s AND starts_at < %s",
        (tenant_id, staff_id, from_epoch(lo), from_epoch(hi)),
    ).fetchall()
    return {r[0] for r in rows}


def _wait_queue_empty(poll: Conn, tenant_id: UUID, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = poll.execute("SELECT count(*) FROM recompute_requests WHERE tenant_id = %s", (tenant_id,)).fetchone()
        if row and row[0] == 0:
            return True
        time.sleep(0.01)
    return False


def _poll(poll: Conn, tenant_id: UUID, slot_id: str, present: bool, t0: float) -> float | None:
    """Seconds from t0 until the slot's presence is as expected; None on timeout."""
    stmt = "SELECT EXISTS (SELECT 1 FROM availability_slots WHERE tenant_id = %s AND id = %s)"
    while True:
        row = poll.execute(stmt, (tenant_id, slot_id)).fetchone()
        now = time.perf_counter()
        if row is not None and bool(row[0]) == present:
            return now - t0
        if now - t0 > POLL_TIMEOUT_S:
            return None
        time.sleep(POLL_SLEEP_S)


def _commit_and_time(writer: Conn, poll: Conn, tenant_id: UUID, appear: set[str], vanish: set[str]) -> float | None:
    slot_id, present = (min(appear), True) if appear else (min(vanish), False)
    t0 = time.perf_counter()
    writer.commit()
    return _poll(poll, tenant_id, slot_id, present, t0)


def _cancel_event(writer: Conn, poll: Conn, tenant: Tenant, rnd: random.Random) -> float | None:
    soon = int(time.time()) + 6 * 3600
    for _ in range(20):
        row = writer.execute(
            "SELECT id, staff_id, lower(blocked), upper(blocked) FROM bookings WHERE tenant_id = %s"
            " AND status = 'confirmed' AND starts_at > %s ORDER BY random() LIMIT 1",
            (tenant.id, from_epoch(soon)),
        ).fetchone()
        if row is None:
            return None
        booking, staff, blo, bhi = row
        lo, hi = to_epoch(blo) - 4 * 3600, to_epoch(bhi) + 4 * 3600
        before = _table_ids(writer, tenant.id, staff, lo, hi)
        writer.execute(
            "UPDATE bookings SET status = 'cancelled', cancelled_at = now() WHERE tenant_id = %s AND id = %s",
            (tenant.id, booking),
        )
        after = _expected_ids(writer, tenant, staff, lo, hi)
        if after - before:
            return _commit_and_time(writer, poll, tenant.id, after - before, set())
        writer.rollback()  # frees nothing visible (neighbours still block): try another
    return None


def _template_event(writer: Conn, poll: Conn, tenant: Tenant, ds: Dataset, rnd: random.Random) -> float | None:
    for _ in range(20):
        staff = rnd.choice(ds.staff_ids)
        row = writer.execute(
            "SELECT id, end_time FROM availability_templates WHERE tenant_id = %s AND staff_id = %s"
            " AND end_time <= '23:00' ORDER BY random() LIMIT 1",
            (tenant.id, staff),
        ).fetchone()
        if row is None:
            continue
        tpl, end = row
        h = tenant.horizon(int(time.time()))
        lo, hi = max(h.start, int(time.time()) + 3600), h.end
        before = _table_ids(writer, tenant.id, staff, lo, hi)
        # Alternate: a longer day where it was short, a shorter one where it was lengthened.
        delta = timedelta(minutes=30) if end.minute == 0 else timedelta(minutes=-30)
        writer.execute(
            "UPDATE availability_templates SET end_time = end_time + %s WHERE tenant_id = %s AND id = %s",
            (delta, tenant.id, tpl),
        )
        after = _expected_ids(writer, tenant, staff, lo, hi)
        if after != before:
            return _commit_and_time(writer, poll, tenant.id, after - before, before - after)
        writer.rollback()
    return None


def _events(
    writer: Conn,
    poll: Conn,
    tenant: Tenant,
    ds: Dataset,
    rnd: random.Random,
    n: int,
    kinds: dict[str, list[float]],
    timeouts: dict[str, int],
) -> None:
    for i in range(n):
        kind = "cancel" if i % 2 == 0 else "template"
        if not _wait_queue_empty(poll, tenant.id):
            timeouts[kind] += 1
            continue
        time.sleep(0.02)
        latency = (
            _cancel_event(writer, poll, tenant, rnd)
            if kind == "cancel"
            else _template_event(writer, poll, tenant, ds, rnd)
        )
        if latency is None:
            timeouts[kind] += 1
        else:
            kinds[kind].append(latency)


def measure(url: str, ds: Dataset, plan: Plan, worker_pid: int | None = None) -> Row:
    rnd = random.Random(2)
    what = "commit-to-visible after a booking cancel / a template change (slotmill worker running)"
    prof: dict[str, Any] = {}
    with psycopg.connect(url) as writer, psycopg.connect(url, autocommit=True) as poll:
        tenant = load_tenant(writer, ds.slug)
        writer.commit()
        # The worker is up when it has drained a request of its own.
        writer.execute(
            "INSERT INTO recompute_requests (tenant_id, staff_id, during, reason) VALUES (%s, %s, NULL, 'bench')",
            (tenant.id, ds.staff_ids[0]),
        )
        writer.execute("SELECT pg_notify('slotmill_recompute', '')")
        writer.commit()
        if not _wait_queue_empty(poll, tenant.id, timeout=60):
            return Row.not_measured("freshness", what, "p99 <= 200 ms", "the worker did not drain its queue in 60 s")
        kinds: dict[str, list[float]] = {"cancel": [], "template": []}
        timeouts = {"cancel": 0, "template": 0}
        _events(writer, poll, tenant, ds, rnd, plan.events * 2, kinds, timeouts)
        _wait_queue_empty(poll, tenant.id)
        every = kinds["cancel"] + kinds["template"]
        if every and worker_pid and percentile(every, 99) > TARGET_P99_S:
            spare: dict[str, list[float]] = {"cancel": [], "template": []}
            prof = spy(
                worker_pid,
                5,
                lambda: _events(writer, poll, tenant, ds, rnd, 10, spare, dict(timeouts)),
            )
            _wait_queue_empty(poll, tenant.id)
    if not every:
        return Row.not_measured("freshness", what, "p99 <= 200 ms", f"no event became visible ({timeouts})")
    p50, p99 = percentile(every, 50), percentile(every, 99)
    per: dict[str, Any] = {}
    for k, v in kinds.items():
        if v:
            per[k] = {
                "n": len(v),
                "p50_s": percentile(v, 50),
                "p99_s": percentile(v, 99),
                "summary": summary(v),
            }
    lost = sum(timeouts.values())
    notes = [f"{lost} event(s) not visible within {POLL_TIMEOUT_S:.0f} s."] if lost else []
    if prof:
        notes.append(spy_sentence(prof, "the worker during 10 more events"))
    return Row(
        key="freshness",
        what=what + f", {len(every)} events",
        target="p99 <= 200 ms",
        value=f"p50 {ms(p50)}, p99 {ms(p99)}",
        spread=f"min {ms(min(every))} .. max {ms(max(every))}"
        + "; "
        + "; ".join(f"{k} p50 {ms(v['p50_s'])} p99 {ms(v['p99_s'])}" for k, v in per.items()),
        ratio="",
        met=p99 <= TARGET_P99_S and lost == 0,
        note=" ".join(notes),
        raw={
            "p50_s": p50,
            "p99_s": p99,
            "per_kind": per,
            "timeouts": timeouts,
            "latencies_s": every,
            "worker_profile": prof,
        },
    )
