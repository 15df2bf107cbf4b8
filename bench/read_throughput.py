"""Measurement 7: read throughput over HTTP while p99 stays under 25 ms.

Steps the concurrency up (1, 2, 4, ... connections) on the main read (any staff, the
service 20 staff perform, 7 days); the best level whose p99 < 25 ms is then run ``runs``
times for the median and spread.
"""

from __future__ import annotations

from typing import Any

from bench.common import Plan, Row, summary
from bench.generate import Dataset
from bench.loadgen import LoadGenerator, LoadResult
from bench.procs import Server
from bench.profiling import spy, spy_sentence
from bench.read_latency import probe, read_paths

P99_LIMIT_MS = 25.0
TARGET_RPS = 2000.0


def measure(server: Server, ds: Dataset, plan: Plan, gen: LoadGenerator) -> Row:
    base_url = server.base
    reqs = read_paths(ds)["any20"]
    what = "read throughput over HTTP at p99 < 25 ms (any staff, 20 staff, 7 days)"
    status, _, _ = probe(base_url, reqs[0][1])
    if status != 200:
        return Row.not_measured("read_throughput", what, ">= 2,000 req/s", f"GET {reqs[0][1]} answered {status}")
    steps: list[LoadResult] = []
    for c in plan.steps:
        r = gen.run(base_url, reqs, connections=c, seconds=plan.load_seconds)
        steps.append(r)
        if r.p99_ms >= P99_LIMIT_MS * 2:
            break  # past the knee: more connections only queue
    good = [r for r in steps if r.p99_ms < P99_LIMIT_MS and r.non2xx == 0 and r.errors == 0]
    raw: dict[str, Any] = {"steps": [r.as_json() for r in steps]}
    if not good:
        return Row(
            key="read_throughput",
            what=what,
            target=">= 2,000 req/s",
            value="0 req/s",
            met=False,
            note=f"p99 was >= 25 ms even at {steps[0].connections} connection(s) ({steps[0].p99_ms:.1f} ms)",
            raw=raw,
        )
    best = max(good, key=lambda r: r.rps)
    confirm = [
        gen.run(base_url, reqs, connections=best.connections, seconds=plan.load_seconds)
        for _ in range(max(1, plan.runs - 1))
    ]
    results = [best, *confirm]
    rps = summary([r.rps for r in results])
    p99 = summary([r.p99_ms for r in results])
    raw.update(
        {
            "connections": best.connections,
            "rps": rps,
            "p99_ms": p99,
            "runs": [r.as_json() for r in results],
        }
    )
    met = rps["median"] >= TARGET_RPS and p99["median"] < P99_LIMIT_MS
    note = ""
    if not met:
        prof = spy(
            server.pid,
            plan.load_seconds,
            lambda: gen.run(base_url, reqs, connections=best.connections, seconds=plan.load_seconds),
        )
        raw["server_profile"] = prof
        note = spy_sentence(prof, f"the API process at {best.connections} connections")
    return Row(
        key="read_throughput",
        what=what,
        target=">= 2,000 req/s",
        value=f"{rps['median']:,.0f} req/s at {best.connections} connections (p99 {p99['median']:.1f} ms)",
        spread=f"{rps['min']:,.0f} .. {rps['max']:,.0f} req/s ({len(results)} runs); "
        f"p99 {p99['min']:.1f} .. {p99['max']:.1f} ms",
        ratio="steps: " + ", ".join(f"{r.connections}c {r.rps:,.0f}/s p99 {r.p99_ms:.1f} ms" for r in steps),
        met=met,
        note=note,
        raw=raw,
    )
