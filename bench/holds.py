"""Measurement 6: holds over HTTP.

- One slot, ``crowd`` (500) concurrent holds: every connection is opened first, then all
  requests are written at once; exactly one must win (201), and the database must hold
  exactly one live booking for that staff member and range.
- Throughput on distinct slots: holds on slots whose blocked ranges do not overlap one
  another (so every request could succeed), driven by the load generator; holds/s counts
  201 answers only. Between runs every hold is released in one transaction (bookings
  deleted and the slots' ``held_until`` cleared together, as the API's release does).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import psycopg

from bench.common import Plan, Row, summary
from bench.generate import Dataset
from bench.loadgen import LoadGenerator, Request
from bench.procs import Server
from bench.profiling import spy, spy_sentence
from slotmill.materializer.horizon import from_epoch, to_epoch

TARGET_HOLDS_S = 1000.0


def reset_holds(url: str, tenant_id: UUID) -> int:
    """Release every hold of the tenant (the benchmark's own) and forget the recomputes
    their deletion queues: the slot table is already what it was before them."""
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL slotmill.holds_applied = 'on'")
        n = conn.execute(
            "DELETE FROM bookings WHERE tenant_id = %s AND status IN ('held', 'expired')",
            (tenant_id,),
        ).rowcount
        conn.execute(
            "UPDATE availability_slots SET held_until = NULL WHERE tenant_id = %s AND held_until IS NOT NULL",
            (tenant_id,),
        )
        conn.execute("DELETE FROM recompute_requests WHERE tenant_id = %s", (tenant_id,))
        conn.commit()
    return n


def distinct_slots(url: str, ds: Dataset, *, limit: int) -> list[str]:
    """Slot ids of the all-staff service, at least 2 h ahead, whose blocked ranges are
    pairwise disjoint per staff member (so no hold can refuse another)."""
    rule = ds.service_rules[ds.service_all]
    before, after = rule.buffer_before_min * 60, rule.buffer_after_min * 60
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT id, staff_id, starts_at, ends_at FROM availability_slots WHERE tenant_id = %s"
            " AND service_id = %s AND starts_at > now() + interval '2 hours' AND held_until IS NULL"
            " ORDER BY staff_id, starts_at",
            (ds.tenant_id, ds.service_all),
        ).fetchall()
    out: list[str] = []
    last_end: dict[UUID, int] = {}
    for sid, staff, start, end in rows:
        s, e = to_epoch(start) - before, to_epoch(end) + after
        if s >= last_end.get(staff, -1):
            out.append(sid)
            last_end[staff] = e
    # Interleave staff members: consecutive requests then rarely wait on one staff lock.
    by_staff: dict[str, list[str]] = {}
    for sid in out:
        by_staff.setdefault(sid[:24], []).append(sid)
    mixed = [x for group in zip(*by_staff.values(), strict=False) for x in group]
    taken = set(mixed)
    rest = [x for x in out if x not in taken]
    return (mixed + rest)[:limit]


async def _crowd(base_url: str, path: str, body: bytes, n: int) -> tuple[dict[int, int], float, list[Any]]:
    parts = urlsplit(base_url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    req = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body
    conns = []
    for _ in range(n):
        conns.append(await asyncio.open_connection(host, port))

    async def answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
        data = await reader.read()  # Connection: close: the whole answer, then EOF
        head, _, rest = data.partition(b"\r\n\r\n")
        return int(head[9:12]), rest

    t0 = time.perf_counter()
    for _, writer in conns:
        writer.write(req)
    results = await asyncio.gather(*(answer(r) for r, _ in conns), return_exceptions=True)
    elapsed = time.perf_counter() - t0
    for _, writer in conns:
        writer.close()
    status: dict[int, int] = {}
    winners: list[Any] = []
    for res in results:
        if isinstance(res, BaseException):
            status[0] = status.get(0, 0) + 1
            continue
        code, rest = res
        status[code] = status.get(code, 0) + 1
        if code == 201:
            try:
                winners.append(json.loads(rest))
            except ValueError:
                winners.append(rest[:200].decode(errors="replace"))
    return status, elapsed, winners


def _live_bookings(url: str, tenant_id: UUID, slot_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM bookings b JOIN availability_slots s ON s.tenant_id = b.tenant_id"
            " AND s.staff_id = b.staff_id AND s.id = %s"
            " JOIN services v ON v.tenant_id = s.tenant_id AND v.id = s.service_id"
            " WHERE b.tenant_id = %s AND b.status IN ('held', 'confirmed')"
            " AND (b.status = 'confirmed' OR b.expires_at > now())"
            " AND b.blocked && tstzrange("
            "     s.starts_at - make_interval(mins => v.buffer_before_minutes),"
            "     s.ends_at + make_interval(mins => v.buffer_after_minutes))",
            (slot_id, tenant_id),
        ).fetchone()
    return int(row[0]) if row else -1


def measure_crowd(server: Server, url: str, ds: Dataset, plan: Plan) -> Row:
    base_url = server.base
    path = f"/v1/tenants/{ds.slug}/holds"
    what = f"one slot, {plan.crowd} concurrent holds over HTTP"
    targets = distinct_slots(url, ds, limit=plan.runs)
    if not targets:
        return Row.not_measured("holds_one_slot", what, "exactly 1 winner, 0 double bookings", "no slot to hold")
    runs: list[dict[str, Any]] = []
    for slot_id in targets:
        body = json.dumps({"slot_id": slot_id}).encode()
        status, elapsed, winners = asyncio.run(_crowd(base_url, path, body, plan.crowd))
        live = _live_bookings(url, ds.tenant_id, slot_id)
        runs.append(
            {
                "slot_id": slot_id,
                "status": status,
                "seconds": elapsed,
                "winners": len(winners),
                "live_bookings": live,
                "winner_body": winners[:1],
            }
        )
    reset_holds(url, ds.tenant_id)
    ok = all(r["winners"] == 1 and r["live_bookings"] == 1 for r in runs)
    secs = summary([r["seconds"] for r in runs])
    others = sorted({k for r in runs for k in r["status"] if k != 201})
    return Row(
        key="holds_one_slot",
        what=what,
        target="exactly 1 winner, 0 double bookings",
        value=(
            f"1 winner and 1 live booking in each of {len(runs)} runs"
            if ok
            else "; ".join(f"{r['winners']} winner(s), {r['live_bookings']} booking(s)" for r in runs)
        ),
        spread=f"all answered in {secs['median'] * 1000:.0f} ms (median; "
        f"{secs['min'] * 1000:.0f} .. {secs['max'] * 1000:.0f} ms, {len(runs)} runs)",
        ratio="other answers: " + ", ".join(f"{k}" for k in others),
        met=ok,
        note="" if ok else "a run did not end with exactly one winner and one booking: see results.json",
        raw={"runs": runs},
    )


def measure_throughput(server: Server, url: str, ds: Dataset, plan: Plan, gen: LoadGenerator) -> Row:
    base_url = server.base
    path = f"/v1/tenants/{ds.slug}/holds"
    what = f"hold throughput over HTTP, distinct slots, {plan.connections} connections"
    ids = distinct_slots(url, ds, limit=200_000)
    if not ids:
        return Row.not_measured("holds_throughput", what, ">= 1,000 holds/s", "no slot to hold")
    reqs: list[Request] = [("POST", path, json.dumps({"slot_id": i})) for i in ids]
    results = []
    created = []
    # Warm-up (pool connections, prepared statements), not counted.
    reset_holds(url, ds.tenant_id)
    gen.run(base_url, reqs[len(reqs) // 2 :], connections=plan.connections, seconds=plan.load_seconds / 2)
    for _ in range(plan.runs):
        reset_holds(url, ds.tenant_id)
        r = gen.run(base_url, reqs, connections=plan.connections, seconds=plan.load_seconds)
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM bookings WHERE tenant_id = %s AND status = 'held'",
                (ds.tenant_id,),
            ).fetchone()
        created.append(int(row[0]) if row else 0)
        results.append(r)
    rate = summary([r.ok_rps for r in results])
    p99 = summary([r.p99_ms for r in results])
    exhausted = any(r.requests > len(ids) for r in results)
    met = rate["median"] >= TARGET_HOLDS_S
    notes = []
    if exhausted:
        notes.append(f"the {len(ids):,} distinct slots ran out within a run; later requests repeated (409).")
    prof: dict[str, Any] = {}
    if not met:
        reset_holds(url, ds.tenant_id)
        prof = spy(
            server.pid,
            plan.load_seconds,
            lambda: gen.run(base_url, reqs, connections=plan.connections, seconds=plan.load_seconds),
        )
        notes.append(spy_sentence(prof, "the API process during the holds"))
    reset_holds(url, ds.tenant_id)
    return Row(
        key="holds_throughput",
        what=what,
        target=">= 1,000 holds/s",
        value=f"{rate['median']:,.0f} holds/s (p99 {p99['median']:.1f} ms)",
        spread=f"{rate['min']:,.0f} .. {rate['max']:,.0f} holds/s ({len(results)} runs)",
        # wrk counts the answers it read before its time was up; holds still in flight then
        # are committed but not counted, so the table may hold a few more.
        ratio=f"201 answers counted {[r.ok for r in results]}; held rows {created}",
        met=met,
        note=" ".join(notes),
        raw={
            "server_profile": prof,
            "distinct_slots": len(ids),
            "holds_per_s": rate,
            "p99_ms": p99,
            "held_rows": created,
            "runs": [r.as_json() for r in results],
            "horizon_end": from_epoch(ds.horizon.end).isoformat(),
        },
    )
