"""Measurement 4: the same "any staff" read computed on demand vs read from the table.

On demand, in this process: load the rules of the service's staff for the 7 days
(``load_rules``), run ``compute_slots`` per staff member for the service (windows built for
the week and a day either side), hide live holds, group by start. Materialized, in this
process: the API's grouped read statement when it exists (``sql/queries``), else an
equivalent one here. Both answers are compared, so the ratio is between equal results.
"""

from __future__ import annotations

import json
import statistics
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from bench.common import Plan, Row, ms, spread_s, summary
from bench.generate import Dataset
from bench.profiling import profile, sentence
from slotmill.api.public import Q as READS
from slotmill.materializer.engine import compute_slots
from slotmill.materializer.horizon import from_epoch, local_midnight
from slotmill.materializer.loader import Conn, Tenant, load_rules, load_tenant

TARGET_RATIO = 50.0

# The grouped read (SPEC §6), candidates by priority then id. Used for the comparison in
# process; the HTTP read of measurement 3 runs the API's own statement.
GROUPED_READ = """
SELECT s.starts_at, s.ends_at, count(*) AS capacity,
       (array_agg(s.staff_id ORDER BY st.priority, s.staff_id))[1:3] AS candidates
  FROM availability_slots s
  JOIN staff st ON st.tenant_id = s.tenant_id AND st.id = s.staff_id
 WHERE s.tenant_id = %(tenant_id)s AND s.service_id = %(service_id)s
   AND s.starts_at >= %(lo)s AND s.starts_at < %(hi)s
   AND (s.held_until IS NULL OR s.held_until <= now())
 GROUP BY s.starts_at, s.ends_at
 ORDER BY s.starts_at
"""


def week(ds: Dataset, days: int = 7) -> tuple[int, int]:
    """The read window: tomorrow and the six days after, tenant zone (never "now" in it)."""
    first = ds.horizon.today + timedelta(days=1)
    days = min(days, ds.horizon_days - 2)
    return local_midnight(first, ds.zone), local_midnight(first + timedelta(days=days), ds.zone)


def on_demand(
    conn: Conn, tenant: Tenant, service_id: UUID, staff_ids: list[UUID], lo: int, hi: int
) -> list[tuple[datetime, int, list[UUID]]]:
    now = int(time.time())
    rules = load_rules(conn, tenant, staff_ids=staff_ids, lo=lo, hi=hi, now=now)
    conn.rollback()
    groups: dict[tuple[int, int], list[tuple[int, UUID]]] = defaultdict(list)
    for sid in staff_ids:
        staff = rules.staff.get(sid)
        if staff is None:
            continue
        # the materializer's own windows (the horizon's dates) and rule of who is offered
        for slot in compute_slots(staff.schedule, staff.offered(service_id), rules.first_date, rules.last_date, lo, hi):
            if slot.held_until is not None and slot.held_until > now:
                continue
            groups[(slot.starts_at, slot.ends_at)].append((staff.priority, sid))
    out = []
    for (start, _end), who in sorted(groups.items()):
        who.sort()
        out.append((from_epoch(start), len(who), [sid for _, sid in who[:3]]))
    return out


class Materialized:
    """The grouped read statement: the API's own (``read_slots_by_time``, JSON body and all)
    when it exists, else :data:`GROUPED_READ`."""

    def __init__(self, tenant: Tenant, service_id: UUID, lo: int, hi: int) -> None:
        try:
            self.sql = READS["read_slots_by_time"]
            self.source = "sql/queries/api.sql read_slots_by_time (the HTTP read's statement)"
            self.params: dict[str, Any] = {
                "slug": tenant.slug,
                "service_id": service_id,
                "from_at": from_epoch(lo),
                "to_at": from_epoch(hi),
                "from_date": None,
                "to_date": None,
                "tz": None,
                "staff_id": None,
                "location_id": None,
                "candidates": 3,
                "limit": 5000,
            }
            self.api = True
        except KeyError:
            self.sql = GROUPED_READ
            self.source = "bench/on_demand.py GROUPED_READ (the API's statement is not there yet)"
            self.params = {
                "tenant_id": tenant.id,
                "service_id": service_id,
                "lo": from_epoch(lo),
                "hi": from_epoch(hi),
            }
            self.api = False

    def run(self, conn: Conn) -> list[tuple[Any, ...]]:
        rows = conn.execute(self.sql, self.params).fetchall()
        conn.rollback()
        return rows

    def starts(self, rows: list[tuple[Any, ...]]) -> list[tuple[datetime, int]]:
        """(start, capacity) of each grouped slot."""
        if not self.api:
            return [(r[0], r[2]) for r in rows]
        # the read's row: no_tenant, no_service, no_staff, no_location, body, then its version
        body = json.loads(rows[0][4]) if rows else {"slots": []}
        return [(datetime.fromisoformat(x["starts_at"].replace("Z", "+00:00")), x["capacity"]) for x in body["slots"]]

    def explain(self, conn: Conn) -> dict[str, float]:
        sql = "EXPLAIN (ANALYZE, FORMAT JSON) " + self.sql
        plan = conn.execute(sql, self.params).fetchone()
        conn.rollback()
        doc = plan[0][0] if plan else {}
        return {
            "execution_ms": float(doc.get("Execution Time", 0.0)),
            "planning_ms": float(doc.get("Planning Time", 0.0)),
        }


def _project_on_demand(conn: Conn, tenant: Tenant, service: UUID, lo: int, hi: int, n: int) -> dict[str, float] | None:
    """The project's own on-demand path (materializer/ondemand.py), for the record: it builds
    working windows over the whole horizon, where the comparison above builds the week's."""
    try:
        from slotmill.materializer.ondemand import compute_on_demand
    except ImportError:
        return None

    def once() -> None:
        compute_on_demand(conn, tenant, service, lo, hi)
        conn.rollback()

    return summary(_timed(once, n))


def _timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def measure(conn: Conn, ds: Dataset, plan: Plan) -> Row:
    tenant = load_tenant(conn, ds.slug)
    lo, hi = week(ds)
    service = ds.service20
    staff = ds.staff_of_service[service]
    mat = Materialized(tenant, service, lo, hi)
    demand = on_demand(conn, tenant, service, staff, lo, hi)
    table = mat.starts(mat.run(conn))
    agree = [(r[0], r[1]) for r in demand] == table

    reps_demand = max(3, plan.runs * 4)
    reps_sql = max(10, plan.runs * 40)
    demand_t = _timed(lambda: on_demand(conn, tenant, service, staff, lo, hi), reps_demand)
    sql_t = _timed(lambda: mat.run(conn), reps_sql)
    project_t = _project_on_demand(conn, tenant, service, lo, hi, reps_demand)
    d, m = summary(demand_t), summary(sql_t)
    ratio = d["median"] / m["median"]
    starts = len(table)
    notes = [] if agree else ["The two answers differ (starts or capacities): see results.json."]
    explain: dict[str, float] = {}
    if ratio < TARGET_RATIO:
        explain = mat.explain(conn)
        prof = profile(lambda: on_demand(conn, tenant, service, staff, lo, hi))
        notes.append(
            f"The materialized read takes {ms(m['median'])} from this client, of which the server "
            f"executes {explain['execution_ms']:.2f} ms and plans {explain['planning_ms']:.2f} ms "
            "(EXPLAIN ANALYZE); the rest is the round trip and psycopg. " + sentence(prof, "one on-demand read")
        )
    return Row(
        key="on_demand_vs_materialized",
        what=f"any-staff read, {len(staff)} staff, 7 days ({starts} starts): on demand vs materialized, in process",
        target=">= 50x",
        value=f"{ratio:.0f}x" if ratio >= 10 else f"{ratio:.1f}x",
        spread=f"on demand {spread_s(d)}; table {spread_s(m)}",
        ratio=f"on demand {ms(d['median'])} / SQL {ms(m['median'])}",
        met=ratio >= TARGET_RATIO,
        note=" ".join(notes),
        raw={
            "explain": explain,
            "materialized_statement": mat.source,
            "project_compute_on_demand_s": project_t,
            "staff": len(staff),
            "starts": starts,
            "answers_agree": agree,
            "on_demand_s": d,
            "materialized_sql_s": m,
            "ratio": ratio,
            "ratio_spread": [d["min"] / m["max"], d["max"] / m["min"]],
            "sql_runs_median_check": statistics.median(sql_t),
        },
    )
