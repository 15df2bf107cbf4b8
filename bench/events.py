"""Events out (issue 14), with ``slotmill worker`` and ``slotmill api`` running.

- Webhooks: a local receiver (127.0.0.1) takes deliveries of one endpoint. Commit to
  delivered: events committed one at a time (an INSERT into the outbox and its NOTIFY, as
  the booking triggers do outside the hold path), the clock from COMMIT to the receiver
  having the request. Deliveries/s: a burst committed at once, until the receiver has all.
  A dead endpoint (nothing listens) and a slow one (answers after 10 s, past the 5 s
  timeout) are then added beside it, and commit to delivered is measured again.
- Live updates: N open event streams of one service; one hold committed; the clock from
  COMMIT to each stream having its ``slots.changed``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import httpx
import psycopg

from bench.common import Plan, Row, ms, percentile
from bench.generate import Dataset
from bench.procs import Server, free_port
from slotmill.materializer import webhooks

TARGET_P99_S = 1.0
TARGET_RATE = 500.0
WAIT_S = 60.0


class _Receiver:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.port = free_port()

    @contextmanager
    def running(self) -> Iterator[str]:
        state = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                now = time.perf_counter()
                self.rfile.read(int(self.headers.get("content-length") or 0))
                if state.delay_s:
                    time.sleep(state.delay_s)
                with state.lock:
                    state.arrived.setdefault(self.headers["webhook-id"], now)
                try:
                    self.send_response(200)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{self.port}/hooks"
        finally:
            server.shutdown()
            server.server_close()

    def wait(self, ids: set[str], timeout: float = WAIT_S) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if ids <= self.arrived.keys():
                    return True
            time.sleep(0.002)
        return False


def _commit_events(conn: psycopg.Connection[Any], tenant_id: UUID, n: int) -> tuple[list[str], float]:
    """``n`` events in one transaction; their webhook ids and the instant COMMIT returned."""
    rows = conn.execute(
        "INSERT INTO events (tenant_id, type, data)"
        " SELECT %s, 'slots.changed', jsonb_build_object('bench', g) FROM generate_series(1, %s) g RETURNING id",
        (tenant_id, n),
    ).fetchall()
    conn.execute("SELECT pg_notify('slotmill_outbox', '')")
    conn.commit()
    return [webhooks.webhook_id(r[0]) for r in rows], time.perf_counter()


def _latencies(db_url: str, tenant_id: UUID, rx: _Receiver, count: int) -> list[float]:
    out = []
    with psycopg.connect(db_url) as conn:
        for _ in range(count):
            ids, committed = _commit_events(conn, tenant_id, 1)
            if not rx.wait(set(ids)):
                raise TimeoutError("a delivery did not arrive within a minute")
            out.append(rx.arrived[ids[0]] - committed)
            time.sleep(0.02)
    return out


def _add(db_url: str, tenant_id: UUID, url: str) -> UUID:
    with psycopg.connect(db_url) as conn:
        ep, _ = webhooks.create_endpoint(conn, tenant_id, url, event_types=["slots.changed"])
        conn.commit()
    return ep.id


def measure_webhooks(db_url: str, ds: Dataset, plan: Plan) -> list[Row]:
    count = 20 if plan.smoke else 200
    burst = 100 if plan.smoke else 3000
    healthy, slow = _Receiver(), _Receiver(delay_s=10.0)
    with healthy.running() as good_url, slow.running() as slow_url, psycopg.connect(db_url) as conn:
        endpoint = _add(db_url, ds.tenant_id, good_url)
        alone = _latencies(db_url, ds.tenant_id, healthy, count)
        ids, committed = _commit_events(conn, ds.tenant_id, burst)
        if not healthy.wait(set(ids), timeout=120):
            raise TimeoutError("the burst did not arrive within two minutes")
        burst_s = max(healthy.arrived[i] for i in ids) - committed
        dead_port = free_port()
        _add(db_url, ds.tenant_id, f"http://127.0.0.1:{dead_port}/dead")
        _add(db_url, ds.tenant_id, slow_url)
        beside = _latencies(db_url, ds.tenant_id, healthy, count)
        conn.execute("UPDATE webhook_endpoints SET active = false WHERE tenant_id = %s", (ds.tenant_id,))
        conn.commit()
    p99, p99_beside = percentile(alone, 99), percentile(beside, 99)
    rate = burst / burst_s
    return [
        Row(
            key="webhooks_latency",
            what="webhook: commit to delivered at a local receiver",
            target="p99 <= 1 s",
            value=f"p99 {ms(p99)}",
            spread=f"p50 {ms(percentile(alone, 50))} ({len(alone)} events)",
            met=p99 <= TARGET_P99_S,
            note="events notified at commit (a hold's event waits for the worker's poll, "
            "SLOTMILL_EVENTS_POLL_SECONDS, 0.25 s, instead)",
            raw={"latencies_s": alone, "endpoint": str(endpoint)},
        ),
        Row(
            key="webhooks_throughput",
            what="webhook deliveries per second, one endpoint, one worker",
            target=">= 500 deliveries/s",
            value=f"{rate:.0f} deliveries/s",
            spread=f"{burst} events committed at once, all delivered in {burst_s:.2f} s",
            met=rate >= TARGET_RATE,
            raw={"burst": burst, "seconds": burst_s},
        ),
        Row(
            key="webhooks_dead_endpoint",
            what="webhook: a dead and a 10 s endpoint beside a healthy one",
            target="adds 0 to the healthy one",
            value=f"p99 {ms(p99_beside)} (alone {ms(p99)})",
            ratio=f"{p99_beside / p99:.2f}x" if p99 > 0 else "",
            met=p99_beside <= max(p99 * 1.5, p99 + 0.05),
            raw={"latencies_s": beside},
        ),
    ]


async def _streams(server: Server, db_url: str, ds: Dataset, n: int) -> list[float]:
    service = ds.service20
    ready = 0
    all_ready = asyncio.Event()
    arrivals: list[float] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=0)

    async def one(client: httpx.AsyncClient) -> None:
        nonlocal ready
        async with client.stream("GET", f"/v1/tenants/{ds.slug}/events", params={"service_id": str(service)}) as r:
            r.raise_for_status()
            event = ""
            async for line in r.aiter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line == "" and event:
                    if event == "ready":
                        ready += 1
                        if ready == n:
                            all_ready.set()
                    elif event == "slots.changed":
                        arrivals.append(time.perf_counter())
                        if len(arrivals) == n:
                            done.set()
                        return
                    event = ""

    async with httpx.AsyncClient(base_url=server.base, timeout=60, limits=limits) as client:
        tasks = [asyncio.create_task(one(client)) for _ in range(n)]
        await asyncio.wait_for(all_ready.wait(), 120)
        slot = await asyncio.to_thread(_free_slot, db_url, ds.tenant_id, service)
        committed = await asyncio.to_thread(_hold, db_url, ds.slug, slot)
        await asyncio.wait_for(done.wait(), 60)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [a - committed for a in arrivals]


def _free_slot(db_url: str, tenant_id: UUID, service: UUID) -> str:
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT id FROM availability_slots WHERE tenant_id = %s AND service_id = %s"
            " AND starts_at > now() + interval '2 days' AND (held_until IS NULL OR held_until < now())"
            " ORDER BY starts_at DESC LIMIT 1",
            (tenant_id, service),
        ).fetchone()
    assert row is not None
    return str(row[0])


def _hold(db_url: str, slug: str, slot: str) -> float:
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT hold FROM slotmill_hold(%s, %s, NULL, NULL, NULL, NULL, 1)", (slug, slot)).fetchone()
        conn.commit()
        at = time.perf_counter()
    assert row is not None and row[0] is not None, "the slot could not be held"
    json.loads(row[0])
    return at


def measure_sse(server: Server, db_url: str, ds: Dataset, plan: Plan) -> Row:
    n = 50 if plan.smoke else 1000
    waits = asyncio.run(_streams(server, db_url, ds, n))
    p99 = percentile(waits, 99)
    return Row(
        key="sse_fanout",
        what=f"live updates: {n:,} open event streams, one hold",
        target="all told within 1 s (p99)",
        value=f"p99 {ms(p99)}",
        spread=f"p50 {ms(percentile(waits, 50))}, last {ms(max(waits))}",
        met=p99 <= TARGET_P99_S,
        note="a hold sends no NOTIFY: the worker's poll (0.25 s) numbers it, then one notification reaches the API",
        raw={"waits_s": waits},
    )
