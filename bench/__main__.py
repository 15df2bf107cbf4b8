"""`python -m bench [--smoke] [--staff 100,300,1000] [--runs N]`: every SPEC §11 target.

Order: generate the main tenant; the engine alone; full refresh; on demand vs materialized;
then with `slotmill api` running: read latency, read throughput, holds; then with
`slotmill worker` running: commit-to-visible; then read throughput with 1, 2, 4 API
processes and a replica (a primary + replica pair of its own); last, full refreshes of the
larger tenants.
A measurement that cannot run (its part of the project is not there yet, or it failed)
gives a "not measured: <why>" row, never a number.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench import (
    engine_speed,
    events,
    feed_sync,
    freshness,
    full_refresh,
    holds,
    on_demand,
    read_latency,
    read_throughput,
    scale_out,
)
from bench.common import Plan, Row
from bench.db import machine_info, open_bench_database
from bench.generate import Dataset, generate
from bench.loadgen import LoadGenerator
from bench.procs import api_missing, api_server, log_dir, worker, worker_missing
from bench.report import expected_keys, print_table, write_json, write_markdown

ROOT = Path(__file__).resolve().parent.parent

# The benchmark's webhook receiver and feed server listen on this machine: its worker and
# its in-process feed syncs may reach loopback (production reaches public addresses only).
os.environ.setdefault("SLOTMILL_OUTBOUND_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")

# Keys, labels and targets of rows that may have to be reported as not measured.
HTTP_ROWS = {
    "read_any20": (
        "slot read, any staff, one service 20 staff perform, 7 days",
        "p50 <= 1.5 x SELECT-1 endpoint",
    ),
    "read_per_staff": ("slot read, per staff, 7 days", "p50 <= 1.5 x SELECT-1 endpoint"),
    "read_any_all": (
        "slot read, any staff, one service all staff perform, 7 days",
        "p50 <= 1.5 x SELECT-1 endpoint",
    ),
    "read_throughput": ("read throughput over HTTP at p99 < 25 ms", ">= 2,000 req/s"),
    "holds_one_slot": (
        "one slot, 500 concurrent holds over HTTP",
        "exactly 1 winner, 0 double bookings",
    ),
    "holds_throughput": ("hold throughput over HTTP, distinct slots", ">= 1,000 holds/s"),
}
EVENT_ROWS = {
    "webhooks_latency": ("webhook: commit to delivered at a local receiver", "p99 <= 1 s"),
    "webhooks_throughput": ("webhook deliveries per second, one endpoint, one worker", ">= 500 deliveries/s"),
    "webhooks_dead_endpoint": ("webhook: a dead and a 10 s endpoint beside a healthy one", "adds 0 to the healthy one"),
    "sse_fanout": ("live updates: 1,000 open event streams, one hold", "all told within 1 s (p99)"),
}
FEED_ROWS = {
    "feed_sync": ("calendar feed of 5,000 events (recurring included) synced", "<= 2 s"),
    "feed_unchanged": ("calendar feed unchanged (conditional GET answered 304)", "<= 50 ms"),
}
WORKER_ROW = ("commit-to-visible after a booking cancel / a template change", "p99 <= 200 ms")


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--staff: comma-separated staff counts, got {text!r}") from None
    if not sizes or any(n < 20 for n in sizes):
        raise argparse.ArgumentTypeError("--staff: every size must be at least 20 (one service has 20 staff)")
    return sizes


def _runs(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--runs: a whole number, got {text!r}") from None
    if not 1 <= n <= 100:
        raise argparse.ArgumentTypeError("--runs: between 1 and 100")
    return n


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--smoke", action="store_true", help="tiny sizes and one run: checks every row is produced")
    p.add_argument(
        "--staff",
        type=_sizes,
        default=None,
        help="staff counts, first is the main tenant (default 100,300,1000)",
    )
    p.add_argument("--runs", type=_runs, default=None, help="repetitions per measurement (default 5; smoke 1)")
    p.add_argument(
        "--server-url",
        default=None,
        help="PostgreSQL server to create the benchmark database on "
        "(default: DATABASE_URL's server, else the embedded one)",
    )
    p.add_argument("--db-name", default="slotmill_bench", help="the dedicated database (dropped and created)")
    p.add_argument("--keep-db", action="store_true", help="leave the benchmark database behind")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where BENCHMARKS.md and results.json go (default: the repository; smoke: bench/results/smoke)",
    )
    return p


class Runner:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def attempt(self, key: str, what: str, target: str, fn: Callable[[], Row | list[Row]]) -> None:
        started = time.perf_counter()
        print(f"-- {what} ...", file=sys.stderr, flush=True)
        try:
            out = fn()
        except Exception as e:  # one broken measurement must not lose the others
            traceback.print_exc()
            out = Row.not_measured(key, what, target, f"failed: {type(e).__name__}: {str(e)[:300]}")
        for row in out if isinstance(out, list) else [out]:
            self.rows.append(row)
            print(
                f"   {row.key}: {row.value or row.note} ({time.perf_counter() - started:.1f} s)",
                file=sys.stderr,
                flush=True,
            )

    def skip(self, key: str, what: str, target: str, why: str) -> None:
        self.rows.append(Row.not_measured(key, what, target, why))

    def fill(self, expected: dict[str, tuple[str, str]], why: str) -> None:
        done = {r.key for r in self.rows}
        for key, (what, target) in expected.items():
            if key not in done:
                self.skip(key, what, target, why)


def run(args: argparse.Namespace) -> int:
    plan = Plan.tiny(args.runs or 1) if args.smoke else Plan.full(args.staff or (100, 300, 1000), args.runs or 5)
    if args.smoke and args.staff:
        plan = Plan(**{**plan.__dict__, "staff_sizes": args.staff})
    out_dir: Path = args.out_dir or (ROOT / "bench" / "results" / "smoke" if args.smoke else ROOT)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json" if args.out_dir or args.smoke else ROOT / "bench" / "results.json"
    md_path = out_dir / "BENCHMARKS.md"

    gen = LoadGenerator()
    db = open_bench_database(args.server_url, args.db_name, keep=args.keep_db)
    logs = log_dir(out_dir if args.out_dir or args.smoke else ROOT / "bench" / "results")
    runner = Runner()
    main_n = plan.staff_sizes[0]
    ds: Dataset | None = None
    try:
        with psycopg.connect(db.url) as conn:
            info: dict[str, Any] = {"machine": machine_info(conn)}
            conn.rollback()
            print(f"generating {main_n} staff ...", file=sys.stderr, flush=True)
            ds = generate(conn, slug="bench", staff=main_n, horizon_days=plan.horizon_days)
            full_refresh.vacuum(conn)
            dsm = ds
            runner.attempt("engine_5000", "engine, 5,000 slots", "< 20 ms", lambda: engine_speed.measure(plan))
            runner.attempt(
                f"full_refresh_{main_n}",
                f"full refresh, {main_n} staff",
                "<= 2 s",
                lambda: full_refresh.measure(conn, dsm, plan),
            )
            # The timed refreshes rewrote every row: let VACUUM set the visibility map again,
            # as autovacuum would between a nightly refresh and the day's reads.
            full_refresh.vacuum(conn, "availability_slots")
            runner.attempt(
                "on_demand_vs_materialized",
                "on demand vs materialized",
                ">= 50x",
                lambda: on_demand.measure(conn, dsm, plan),
            )
            runner.attempt(
                "feed_sync",
                "calendar feed of 5,000 events synced / unchanged",
                "<= 2 s / <= 50 ms",
                lambda: feed_sync.measure(conn, dsm, plan),
            )
            runner.fill(FEED_ROWS, "failed with the feed sync (see feed_sync)")

        why_api = api_missing()
        if why_api:
            for key, (what, target) in HTTP_ROWS.items():
                runner.skip(key, what, target, why_api)
        else:
            try:
                with api_server(db.url, logs) as server:
                    runner.attempt(
                        "read_any20",
                        "slot read latency (3 reads + SELECT 1)",
                        "p50 <= 1.5 x SELECT-1",
                        lambda: read_latency.measure(server, db.url, dsm, plan, gen),
                    )
                    runner.attempt(
                        "read_throughput",
                        *HTTP_ROWS["read_throughput"],
                        lambda: read_throughput.measure(server, dsm, plan, gen),
                    )
                    runner.attempt(
                        "holds_one_slot",
                        *HTTP_ROWS["holds_one_slot"],
                        lambda: holds.measure_crowd(server, db.url, dsm, plan),
                    )
                    runner.attempt(
                        "holds_throughput",
                        *HTTP_ROWS["holds_throughput"],
                        lambda: holds.measure_throughput(server, db.url, dsm, plan, gen),
                    )
            except Exception as e:
                traceback.print_exc()
                runner.fill(HTTP_ROWS, f"slotmill api failed: {str(e)[:300]}")
            runner.fill(HTTP_ROWS, "failed with the other reads (see read_any20)")

        why_worker = worker_missing()
        if why_worker:
            runner.skip("freshness", *WORKER_ROW, why_worker)
        else:
            try:
                with worker(db.url, logs) as wproc:
                    runner.attempt(
                        "freshness",
                        *WORKER_ROW,
                        lambda: freshness.measure(db.url, dsm, plan, wproc.pid),
                    )
            except Exception as e:
                traceback.print_exc()
                if "freshness" not in {r.key for r in runner.rows}:
                    runner.skip("freshness", *WORKER_ROW, f"slotmill worker failed: {str(e)[:300]}")

        scale_rows = {k: (what, scale_out.TARGET) for k, what in scale_out.ROWS.items()}
        why_scale = api_missing() or scale_out.missing()
        if why_scale:
            runner.fill(scale_rows, why_scale)
        else:
            runner.attempt(
                "scale_reads_1proc",
                "read throughput with 1, 2, 4 API processes and a replica",
                scale_out.TARGET,
                lambda: scale_out.measure(plan, gen, logs),
            )
            runner.fill(scale_rows, "failed with the other scale-out rows (see scale_reads_1proc)")
        why_events = why_api or why_worker
        if why_events:
            for key, (what, target) in EVENT_ROWS.items():
                runner.skip(key, what, target, why_events)
        else:
            try:
                with worker(db.url, logs), api_server(db.url, logs) as server:
                    runner.attempt(
                        "webhooks_latency",
                        "webhooks (latency, deliveries/s, a dead endpoint beside)",
                        "p99 <= 1 s",
                        lambda: events.measure_webhooks(db.url, dsm, plan),
                    )
                    runner.attempt(
                        "sse_fanout",
                        *EVENT_ROWS["sse_fanout"],
                        lambda: events.measure_sse(server, db.url, dsm, plan),
                    )
            except Exception as e:
                traceback.print_exc()
                runner.fill(EVENT_ROWS, f"slotmill worker or api failed: {str(e)[:300]}")
            runner.fill(EVENT_ROWS, "failed with the other webhook rows (see webhooks_latency)")

        for n in plan.staff_sizes[1:]:
            with psycopg.connect(db.url) as conn:
                print(f"generating {n} staff ...", file=sys.stderr, flush=True)
                big = generate(conn, slug=f"bench-{n}", staff=n, horizon_days=plan.horizon_days, seed=n)
                full_refresh.vacuum(conn)
                runner.attempt(
                    f"full_refresh_{n}",
                    f"full refresh, {n} staff",
                    "(growth)",
                    partial(full_refresh.measure, conn, big, plan),
                )
    finally:
        db.drop()

    order = {k: i for i, k in enumerate(expected_keys(plan.staff_sizes))}
    rows = sorted(runner.rows, key=lambda r: order.get(r.key, len(order)))
    assert ds is not None
    info["run"] = {
        "command": "make bench-smoke" if args.smoke else "make bench",
        "smoke": plan.smoke,
        "staff_sizes": list(plan.staff_sizes),
        "runs": plan.runs,
        "load_seconds": plan.load_seconds,
        "database": db.how,
        "load_generator": gen.tool,
        "dataset": (
            f"{main_n} staff in one tenant (Europe/London; locations in London, New York, "
            f"Berlin; every 25th staff member in Asia/Kolkata), {ds.counts['services']} "
            f"services (3 per staff member; one performed "
            f"by exactly {len(ds.staff_of_service[ds.service20])} staff, one by all), "
            f"{ds.counts['templates']} template rows (split shifts, pattern changes "
            f"mid-horizon), {ds.counts['overrides']} overrides, {ds.counts['holidays']} "
            f"holidays, {ds.counts['time_off']} time off and {ds.counts['busy_times']} busy "
            f"rows, {ds.counts['bookings']:,} confirmed bookings at "
            f"{ds.utilisation * 100:.0f} % utilisation over {ds.horizon_days} days"
        ),
        "logs": str(logs),
        "load_average_end": os.getloadavg(),
    }
    write_json(json_path, info, rows)
    write_markdown(md_path, info, rows, os.path.relpath(json_path, md_path.parent))
    print_table(rows)
    print(f"wrote {md_path} and {json_path}", file=sys.stderr)
    missing = set(expected_keys(plan.staff_sizes)) - {r.key for r in rows}
    if missing:
        print(f"rows missing: {sorted(missing)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
