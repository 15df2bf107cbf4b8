"""Measurement 3: slot read latency through the real HTTP server, beside ``GET /healthz/db``
(``SELECT 1`` through the same stack) at the same concurrency.

Reads, 7 days from tomorrow: any staff of the service 20 staff perform (``group=time``),
per staff (the 20 in turn), and any staff of the service every staff member performs.
Each run measures every scenario once, one after the other, so drift in the machine's load
touches all of them alike.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta
from functools import partial
from typing import Any

import psycopg

from bench.common import Plan, Row, spread_s, summary
from bench.generate import Dataset
from bench.loadgen import LoadGenerator, LoadResult, Request
from bench.procs import Server
from bench.profiling import spy, spy_sentence
from slotmill.api.public import Q as READS

TARGET_RATIO = 1.5


def read_paths(ds: Dataset) -> dict[str, list[Request]]:
    first = ds.horizon.today + timedelta(days=1)
    last = first + timedelta(days=min(7, ds.horizon_days - 2) - 1)
    base = f"/v1/tenants/{ds.slug}/slots?from={first.isoformat()}&to={last.isoformat()}"
    s20, s_all = ds.service20, ds.service_all
    return {
        "healthz_db": [("GET", "/healthz/db", "")],
        "any20": [("GET", f"{base}&service_id={s20}&group=time", "")],
        "per_staff": [("GET", f"{base}&service_id={s20}&staff_id={sid}", "") for sid in ds.staff_of_service[s20]],
        "any_all": [("GET", f"{base}&service_id={s_all}&group=time", "")],
    }


def probe(base_url: str, path: str) -> tuple[int, int, Any]:
    """Status, body size and parsed body of one GET (before loading a path for seconds)."""
    try:
        with urllib.request.urlopen(base_url + path, timeout=30) as r:
            body = r.read()
            status = r.status
    except urllib.error.HTTPError as e:
        body = e.read()
        status = e.code
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    return status, len(body), parsed


LABELS = {
    "any20": "slot read, any staff, one service 20 staff perform, 7 days (group=time)",
    "per_staff": "slot read, per staff, 7 days",
    "any_all": "slot read, any staff, one service all {n} staff perform, 7 days (group=time)",
}


def statement_costs(url: str, ds: Dataset) -> dict[str, dict[str, Any]]:
    """EXPLAIN ANALYZE of the API's statement behind each read (server-side execution and
    planning time), where the API's named queries exist."""
    first = ds.horizon.today + timedelta(days=1)
    last = first + timedelta(days=min(7, ds.horizon_days - 2) - 1)
    common = {
        "slug": ds.slug,
        "from_at": None,
        "to_at": None,
        "from_date": first,
        "to_date": last,
        "tz": None,
        "staff_id": None,
        "location_id": None,
        "candidates": 3,
        "limit": 5000,
    }
    scenarios = {
        "healthz_db": ("ping", {}),
        "any20": ("read_slots_by_time", {**common, "service_id": ds.service20}),
        "per_staff": (
            "read_slots",
            {**common, "service_id": ds.service20, "staff_id": ds.staff_of_service[ds.service20][0]},
        ),
        "any_all": ("read_slots_by_time", {**common, "service_id": ds.service_all}),
    }
    out: dict[str, dict[str, Any]] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        for name, (qname, params) in scenarios.items():
            try:
                stmt = READS[qname]
            except KeyError:
                continue
            row = conn.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt, params).fetchone()
            doc = row[0][0] if row else {}
            out[name] = {
                "statement": qname,
                "execution_ms": float(doc.get("Execution Time", 0.0)),
                "planning_ms": float(doc.get("Planning Time", 0.0)),
            }
    return out


def measure(server: Server, url: str, ds: Dataset, plan: Plan, gen: LoadGenerator) -> list[Row]:
    base_url = server.base
    paths = read_paths(ds)
    probes: dict[str, dict[str, Any]] = {}
    for name, reqs in paths.items():
        status, size, body = probe(base_url, reqs[0][1])
        starts = len(body["slots"]) if isinstance(body, dict) and isinstance(body.get("slots"), list) else None
        probes[name] = {"status": status, "bytes": size, "slots": starts, "path": reqs[0][1]}
    runs: dict[str, list[LoadResult]] = {name: [] for name in paths}
    live = [n for n in paths if probes[n]["status"] == 200]
    for name in live:  # warm-up: the pool's connections, prepared statements, caches
        gen.run(base_url, paths[name], connections=plan.connections, seconds=plan.load_seconds / 2)
    for _ in range(plan.runs):
        for name in live:
            runs[name].append(gen.run(base_url, paths[name], connections=plan.connections, seconds=plan.load_seconds))

    costs = statement_costs(url, ds)
    base_p50 = summary([r.p50_ms for r in runs["healthz_db"]])["median"] if runs["healthz_db"] else None
    rows = []
    for name, label in LABELS.items():
        what = label.format(n=len(ds.staff_ids)) + f", {plan.connections} connections"
        key = f"read_{name}"
        if name not in live:
            rows.append(
                Row.not_measured(
                    key,
                    what,
                    "p50 <= 1.5 x SELECT-1 endpoint",
                    f"GET {probes[name]['path']} answered {probes[name]['status']}",
                )
            )
            continue
        p50 = summary([r.p50_ms / 1000 for r in runs[name]])
        p99 = summary([r.p99_ms / 1000 for r in runs[name]])
        rps = summary([r.rps for r in runs[name]])
        raw: dict[str, Any] = {
            "probe": probes[name],
            "baseline_probe": probes["healthz_db"],
            "p50_s": p50,
            "p99_s": p99,
            "rps": rps,
            "runs": [r.as_json() for r in runs[name]],
            "baseline_runs": [r.as_json() for r in runs["healthz_db"]],
        }
        if base_p50 is None:
            ratio, met = (
                f"no baseline: GET /healthz/db answered {probes['healthz_db']['status']}",
                None,
            )
            note = "not compared: the SELECT-1 endpoint GET /healthz/db is missing"
        else:
            r = p50["median"] * 1000 / base_p50
            raw["ratio_to_select1"] = r
            ratio = f"{r:.2f}x GET /healthz/db (p50 {base_p50:.2f} ms)"
            met = r <= TARGET_RATIO
            note = ""
            if not met:
                cost = costs.get(name)
                if cost:
                    note = (
                        f"The read's statement ({cost['statement']}) executes in "
                        f"{cost['execution_ms']:.2f} ms and plans in {cost['planning_ms']:.2f} ms in "
                        "PostgreSQL (EXPLAIN ANALYZE, one run) against "
                        f"{costs.get('healthz_db', {}).get('execution_ms', 0.0):.3f} ms for SELECT 1. "
                    )
                prof = spy(
                    server.pid,
                    plan.load_seconds,
                    partial(
                        gen.run,
                        base_url,
                        paths[name],
                        connections=plan.connections,
                        seconds=plan.load_seconds,
                    ),
                )
                raw["server_profile"] = prof
                raw["statement_cost"] = cost
                note += spy_sentence(prof, "the API process during this read")
        rows.append(
            Row(
                key=key,
                what=what,
                target="p50 <= 1.5 x SELECT-1 endpoint",
                value=f"p50 {p50['median'] * 1000:.2f} ms, p99 {p99['median'] * 1000:.2f} ms "
                f"({rps['median']:,.0f} req/s, {probes[name]['bytes']:,} B)",
                spread="p50 " + spread_s(p50),
                ratio=ratio,
                met=met,
                note=note,
                raw=raw,
            )
        )
    return rows
