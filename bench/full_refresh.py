"""Measurement 1: a full refresh of a whole tenant, beside the bare COPY of the same rows.

The refresh is timed in the steady state (the table already holds the tenant's slots, as
at the nightly run: it deletes and rewrites them). The baseline is ``copy_slots`` of the
same, already computed, slots into an empty ``availability_slots`` (TRUNCATE inside a
transaction that is rolled back, so the table has its indexes and nothing else).
A breakdown run times the phases separately (load rules / engine / delete / COPY).
"""

from __future__ import annotations

import time
from typing import Any

from psycopg import sql

from bench.common import Plan, Row, spread_s, summary
from bench.generate import Dataset
from bench.profiling import profile, sentence
from slotmill.materializer.horizon import from_epoch
from slotmill.materializer.loader import Conn, LoadedRules, load_rules, load_tenant
from slotmill.materializer.refresh import Q as SLOTS
from slotmill.materializer.refresh import compute_runs, copy_slots, refresh

TARGET_S = 2.0


def vacuum(conn: Conn, table: str | None = None) -> None:
    """VACUUM ANALYZE one table, or the whole database (it needs autocommit): statistics
    and a visibility map, as autovacuum gives a production database after a bulk load.
    Without them the planner guesses one row for freshly loaded tables."""
    conn.commit()
    conn.autocommit = True
    try:
        if table is None:
            conn.execute("VACUUM ANALYZE")
        else:
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(table)))
    finally:
        conn.autocommit = False


def _compute_payload(rules: LoadedRules, lo: int, hi: int) -> tuple[list[Any], int]:
    """What ``copy_slots`` takes for every loaded staff member (the refresh's own
    ``compute_runs``), and the slot count: the baseline writes exactly what the refresh
    writes, through the same function."""
    runs, _failed = compute_runs(rules, lo, hi)
    return runs, sum(len(run.starts) for _, run in runs)


def _breakdown(conn: Conn, ds: Dataset) -> dict[str, Any]:
    """One refresh's phases, timed one after the other (the real refresh overlaps the
    engine with the COPY): load rules, engine, delete the window, COPY."""
    tenant = load_tenant(conn, ds.slug)
    now = int(time.time())
    h = tenant.horizon(now)
    with conn.transaction(force_rollback=True):
        t0 = time.perf_counter()
        rules = load_rules(conn, tenant, staff_ids=None, lo=h.start, hi=h.end, now=now)
        t1 = time.perf_counter()
        payload, n = _compute_payload(rules, h.start, h.end)
        t2 = time.perf_counter()
        conn.execute(
            SLOTS["delete_window"],
            {
                "tenant_id": tenant.id,
                "staff_ids": ds.staff_ids,
                "lo": from_epoch(h.start),
                "hi": from_epoch(h.end),
            },
        )
        t3 = time.perf_counter()
        copy_slots(conn, tenant.id, payload)
        t4 = time.perf_counter()
    return {
        "load_rules_s": t1 - t0,
        "engine_s": t2 - t1,
        "delete_s": t3 - t2,
        "copy_s": t4 - t3,
        "slots": n,
    }


def _all_payload(conn: Conn, ds: Dataset) -> tuple[list[Any], int]:
    tenant = load_tenant(conn, ds.slug)
    now = int(time.time())
    h = tenant.horizon(now)
    rules = load_rules(conn, tenant, staff_ids=None, lo=h.start, hi=h.end, now=now)
    conn.rollback()
    return _compute_payload(rules, h.start, h.end)


def _bare_copy(conn: Conn, ds: Dataset, payload: list[Any]) -> float:
    with conn.transaction(force_rollback=True):
        conn.execute("TRUNCATE availability_slots")
        t0 = time.perf_counter()
        copy_slots(conn, ds.tenant_id, payload)
        return time.perf_counter() - t0


def measure(conn: Conn, ds: Dataset, plan: Plan) -> Row:
    tenant = load_tenant(conn, ds.slug)
    conn.commit()
    first = time.perf_counter()
    result = refresh(conn, tenant)  # into an empty table (for this tenant): not the timed case
    first_s = time.perf_counter() - first
    vacuum(conn, "availability_slots")
    times: list[float] = []
    for _ in range(plan.runs):
        t0 = time.perf_counter()
        result = refresh(conn, tenant)
        times.append(time.perf_counter() - t0)
    payload, n_payload = _all_payload(conn, ds)
    copies = [_bare_copy(conn, ds, payload) for _ in range(plan.runs)]
    breakdown = _breakdown(conn, ds)
    r, c = summary(times), summary(copies)
    # Slots the tenant's window holds after a refresh (a diffing refresh writes fewer rows).
    n = result.slots_total
    staff = len(ds.staff_ids)
    met = r["median"] <= TARGET_S
    note = ""
    raw: dict[str, Any] = {
        "staff": staff,
        "horizon_days": ds.horizon_days,
        "services_per_staff": 3,
        "slots": n,
        "baseline_rows": n_payload,
        "refresh_rows_written": result.slots_written,
        "slots_per_s": n / r["median"],
        "refresh_s": r,
        "refresh_runs_s": times,
        "first_refresh_into_empty_s": first_s,
        "bare_copy_s": c,
        "bare_copy_runs_s": copies,
        "breakdown": breakdown,
        "dataset": {
            **ds.counts,
            "utilisation": round(ds.utilisation, 3),
            "generate_s": round(ds.seconds, 2),
        },
    }
    if not met:
        prof = profile(lambda: refresh(conn, tenant))
        raw["profile_top"] = prof["top"]
        note = (
            f"Phases (one run, serial): load rules {breakdown['load_rules_s']:.2f} s, engine "
            f"{breakdown['engine_s']:.2f} s, delete {breakdown['delete_s']:.2f} s, COPY "
            f"{breakdown['copy_s']:.2f} s. " + sentence(prof, "one refresh")
        )
    return Row(
        key=f"full_refresh_{staff}",
        what=f"full refresh, {staff} staff x {ds.horizon_days} days x 3 services ({n:,} slots)",
        target="<= 2 s" if staff == 100 or plan.smoke else "(growth; 2 s is for 100 staff)",
        value=f"{r['median']:.2f} s ({n / r['median']:,.0f} slots/s)",
        spread=spread_s(r, "s"),
        ratio=f"{r['median'] / c['median']:.2f}x bare COPY ({c['median']:.2f} s, {n / c['median']:,.0f} rows/s)",
        met=met if (staff == 100 or plan.smoke) else None,
        note=note,
        raw=raw,
    )
