"""Read throughput with 1, 2 and 4 API processes, and with a read replica (SPEC §16).

All four on a primary + streaming replica pair of the benchmark's own (tests/pgcluster.py),
the main dataset generated on the primary and streamed to the replica, the same read as
the throughput row (any staff, the service 20 staff perform, 7 days) at the same
concurrency. On a machine of two cores the database, the API processes, the replica and
the load generator share those cores: the rows show what more processes and a replica
cost and that reads are routed where they should be, not how they scale on more machines.
"""

from __future__ import annotations

import statistics
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

from bench import full_refresh
from bench.common import Plan, Row, spread_s, summary
from bench.generate import generate
from bench.loadgen import LoadGenerator, LoadResult
from bench.procs import Server, api_server
from bench.read_latency import probe, read_paths
from slotmill.migrate import migrate
from tests.pgcluster import Cluster, pg_bin, wait_for_replay

TARGET = "(2 cores: overhead and routing, not scale)"
ROWS = {
    "scale_reads_1proc": "read throughput, 1 API process (primary + replica pair)",
    "scale_reads_2proc": "read throughput, 2 API processes (--workers 2)",
    "scale_reads_4proc": "read throughput, 4 API processes (--workers 4)",
    "scale_reads_replica": "read throughput, 1 API process reading from a streaming replica",
}


def missing() -> str | None:
    if pg_bin() is None:
        return "no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) for a primary + replica pair"
    return None


def _metric(base: str, name: str, labels: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(f"{name}{{{labels}}}")
    )


def _wait_replica_ready(server: Server) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        _, _, body = probe(server.base, "/readyz")
        if isinstance(body, dict) and body.get("replicas") and body["replicas"][0].get("ok"):
            return
        time.sleep(0.2)
    raise RuntimeError("the API never found the replica usable (see its log)")


def _load(server: Server, reqs: list[Any], plan: Plan, gen: LoadGenerator) -> list[LoadResult]:
    status, _, _ = probe(server.base, reqs[0][1])
    if status != 200:
        raise RuntimeError(f"GET {reqs[0][1]} answered {status}")
    gen.run(server.base, reqs, connections=plan.connections, seconds=min(1.0, plan.load_seconds))  # warm-up
    return [
        gen.run(server.base, reqs, connections=plan.connections, seconds=plan.load_seconds) for _ in range(plan.runs)
    ]


def _row(key: str, results: list[LoadResult], base_rps: float | None, note: str = "") -> Row:
    rps = summary([r.rps for r in results])
    p99 = summary([r.p99_ms for r in results])
    bad = sum(r.non2xx + r.errors for r in results)
    return Row(
        key=key,
        what=ROWS[key],
        target=TARGET,
        value=f"{rps['median']:,.0f} req/s (p99 {p99['median']:.1f} ms)",
        spread=spread_s(rps, "rps") if len(results) > 1 else "",
        ratio="" if base_rps is None else f"{rps['median'] / base_rps:.2f} x 1 process",
        met=None,
        note=(f"{bad} non-2xx or failed answers; " if bad else "") + note,
        raw={"runs": [r.as_json() for r in results], "rps": rps, "p99_ms": p99},
    )


def _served(server: Server) -> dict[str, float]:
    labels = ("replica", "primary", "fallback", "failover")
    return {k: _metric(server.base, "slotmill_reads_total", f'served_by="{k}"') for k in labels}


def measure(plan: Plan, gen: LoadGenerator, logs: Path) -> list[Row]:
    cluster = Cluster.create()
    try:
        primary = cluster.start_primary()
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("CREATE DATABASE slotmill_scale")
        url = primary.url("slotmill_scale")
        migrate(url)
        with psycopg.connect(url) as conn:
            ds = generate(conn, slug="bench", staff=plan.staff_sizes[0], horizon_days=plan.horizon_days)
            full_refresh.vacuum(conn)
        replica = cluster.start_replica()
        wait_for_replay(primary.url(), replica.url())
        reqs = read_paths(ds)["any20"]

        rows: list[Row] = []
        base: float | None = None
        for n in (1, 2, 4):
            with api_server(url, logs, workers=n, name=f"api-scale-{n}") as server:
                results = _load(server, reqs, plan, gen)
            rps = statistics.median(r.rps for r in results)
            base = base or rps
            rows.append(_row(f"scale_reads_{n}proc", results, None if n == 1 else base))

        env = {"SLOTMILL_READ_DATABASE_URL": replica.url("slotmill_scale")}
        with api_server(url, logs, env=env, name="api-scale-replica") as server:
            _wait_replica_ready(server)
            before = _served(server)
            results = _load(server, reqs, plan, gen)
            after = _served(server)
        served = {k: after[k] - before[k] for k in after}
        share = served["replica"] / max(1.0, sum(served.values()))
        rows.append(
            _row(
                "scale_reads_replica",
                results,
                base,
                note=f"routing: {share * 100:.1f} % of the measured reads answered by the replica "
                f"({', '.join(f'{k} {v:.0f}' for k, v in served.items())}); the replica is a third "
                "PostgreSQL process group on the same two cores",
            )
        )
        return rows
    finally:
        cluster.stop()
