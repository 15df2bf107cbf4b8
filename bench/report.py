"""The run's output: a table on stdout, BENCHMARKS.md and results.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import Row

# Every row a run produces, in report order (the smoke test checks all of them appear).
ROW_KEYS_FIXED = (
    "full_refresh_{main}",
    "freshness",
    "read_any20",
    "read_per_staff",
    "read_any_all",
    "on_demand_vs_materialized",
    "engine_5000",
    "holds_one_slot",
    "holds_throughput",
    "read_throughput",
    "scale_reads_1proc",
    "scale_reads_2proc",
    "scale_reads_4proc",
    "scale_reads_replica",
    "webhooks_latency",
    "webhooks_throughput",
    "webhooks_dead_endpoint",
    "sse_fanout",
    "feed_sync",
    "feed_unchanged",
)


METHOD = """\
## How each number is taken

- Full refresh: `materializer.refresh.refresh` of the whole tenant while the table already
  holds its slots (the nightly case: delete and rewrite). Baseline: `copy_slots` of the same
  computed slots into an empty `availability_slots` (TRUNCATE in a transaction that is
  rolled back), so the ratio is refresh / bare COPY.
- Commit-to-visible: the writer works out, in its own transaction, which slot ids its change
  adds or removes; the clock starts when COMMIT is sent and stops when another connection
  sees that slot id appear (cancel) or appear / vanish (a template's end time moved by 30
  minutes). One event at a time, the queue empty before each.
- Slot reads: the load generator against `slotmill api`, every scenario at the same
  concurrency, beside `GET /healthz/db` (SELECT 1 through the same stack); ratio = p50 of
  the read / p50 of the SELECT-1 endpoint.
- On demand vs materialized: in this process, `load_rules` + `compute_slots` + group by start
  for the service's 20 staff over 7 days, against the grouped read statement; the two
  answers are checked equal.
- Engine: `timeit` of `compute_slots` for one staff member and one service, cut to exactly
  5,000 slots (zone and rrule caches warm, as in a refresh).
- Holds: every connection opened first, then all requests written at once; the winners and
  the live bookings over the slot's range are counted. Throughput: slots whose blocked
  ranges are pairwise disjoint, so each hold could succeed; only 201 answers count.
- Read throughput: concurrency stepped up; the best req/s whose p99 stays under 25 ms.
- Scale-out (SPEC §16): a primary + streaming replica pair of the run's own (initdb,
  pg_basebackup -R; fsync off), the main dataset on it; the throughput read at the latency
  comparison's concurrency with `slotmill api --workers 1`, `2` and `4` on the primary, then
  one process with `SLOTMILL_READ_DATABASE_URL` naming the replica (its `/metrics` counts
  who answered). Ratio: req/s against one process. Two cores hold the database, the
  replica, the API processes and the load generator: these rows show the cost of more
  processes and of a replica, and that reads go where they should; not scale.
- Webhooks (`bench/events.py`, worker and API running): a receiver on 127.0.0.1; events
  committed one at a time (with their NOTIFY), COMMIT to the request arriving; a burst
  committed at once for deliveries/s; then a dead endpoint and a 10 s one beside it, and the
  healthy endpoint's commit-to-delivered again.
- Live updates: that many streams of one service open at once, one hold committed, COMMIT to
  each stream's `slots.changed`.
- Calendar feeds: `jobs.feeds.sync_feed` of one feed served by a local HTTP server with
  ETags (claim, conditional GET, parse and expand, the diff into busy_times, record,
  commit), each synced run from no busy times and no validators; the unchanged run is the
  304 answer. Beside it: the parse alone.
"""


def expected_keys(staff_sizes: tuple[int, ...]) -> list[str]:
    keys = [k.format(main=staff_sizes[0]) for k in ROW_KEYS_FIXED]
    keys[1:1] = [f"full_refresh_{n}" for n in staff_sizes[1:]]
    return keys


def _met(row: Row) -> str:
    if row.value is None:
        return "—"
    return {True: "yes", False: "**no**", None: "—"}[row.met]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def print_table(rows: list[Row]) -> None:
    """A compact table on stdout: what, measured value, target, met (details: BENCHMARKS.md)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="slotmill benchmarks (SPEC §11)")
    for col in ("#", "what", "measured (median)", "target", "met"):
        table.add_column(col, overflow="fold")
    for i, r in enumerate(rows, 1):
        table.add_row(str(i), r.what, r.value or r.note, r.target, _met(r).strip("*"))
    Console(width=160).print(table)


def write_json(path: Path, info: dict[str, Any], rows: list[Row]) -> None:
    doc = {"machine": info["machine"], "run": info["run"], "rows": [r.as_json() for r in rows]}
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")


def write_markdown(path: Path, info: dict[str, Any], rows: list[Row], json_name: str) -> None:
    m, run = info["machine"], info["run"]
    pg = m["postgresql_settings"]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `{run['command']}` on {m['date']}; raw numbers in `{json_name}`.",
        "The targets are SPEC §11's. Timings are medians over the runs, with the spread beside",
        "them; no test asserts any of them.",
        "",
        "## Machine and method",
        "",
        f"- CPU: {m['cpu_count']} x {m['cpu_model']} (load average at the start "
        f"{', '.join(f'{x:.2f}' for x in m['load_average'])}, at the end "
        f"{', '.join(f'{x:.2f}' for x in run['load_average_end'])}; the cores are shared by",
        "  the database, the server under test, the load generator and whatever else runs)",
        f"- PostgreSQL {m['postgresql']} ({run['database']}; "
        f"shared_buffers {pg['shared_buffers']}, fsync {pg['fsync']}, "
        f"synchronous_commit {pg['synchronous_commit']})",
        f"- Python {m['python']}; {m['platform']}",
        f"- Load generator: {run['load_generator']}"
        + (f" ({m['wrk']})" if m.get("wrk") and run["load_generator"].startswith("wrk") else ""),
        "- HTTP server: `slotmill api --workers 1` (uvicorn), rate limits off; worker: `slotmill worker`",
        f"- Dataset (bench/generate.py): {run['dataset']}",
        f"- Runs per measurement: {run['runs']}; load-generator runs of {run['load_seconds']:g} s"
        + ("; **smoke mode: tiny sizes, numbers are not meaningful**" if run["smoke"] else ""),
        "",
        "## Results",
        "",
        "| # | what | measured (median) | spread | SPEC §11 target | met | baseline / peer ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, r in enumerate(rows, 1):
        value = r.value if r.value is not None else r.note
        lines.append(
            f"| {i} | {_cell(r.what)} | {_cell(value)} | {_cell(r.spread)} | "
            f"{_cell(r.target)} | {_met(r)} | {_cell(r.ratio)} |"
        )
    notes = [r for r in rows if r.value is not None and r.note]
    if notes:
        lines += ["", "## Where the time goes", ""]
        for r in notes:
            lines.append(f"- **{r.what}**: {r.note}")
    missing = [r for r in rows if r.value is None]
    if missing:
        lines += ["", "## Not measured", ""]
        for r in missing:
            lines.append(f"- {r.what}: {r.note}")
    lines += [
        "",
        *METHOD.splitlines(),
        "",
        f"Run it: `make bench` (or `python -m bench --staff {','.join(map(str, run['staff_sizes']))} --runs N`);",
        "`make bench-smoke` runs every measurement at tiny sizes once.",
        "",
    ]
    path.write_text("\n".join(lines))
