"""Webhook delivery (docs/architecture.md, "Events"): an asyncio loop on a thread of the
worker that sends due deliveries per the Standard Webhooks specification.

- Signing is the ``standardwebhooks`` package's (``webhook-id`` is the event's and the same
  for every retry and replay; ``webhook-timestamp`` and ``webhook-signature`` are made per
  attempt; during a secret rotation both secrets sign).
- Claims lease rows with ``FOR UPDATE SKIP LOCKED`` (sql/queries/deliveries.sql), endpoint
  by endpoint, never more than ``concurrency`` requests in flight per endpoint, so a slow or
  dead endpoint holds at most that many slots of this worker and never delays the others.
- Every request has a timeout. A failure is retried with exponential back-off and jitter
  until ``retry_hours`` have passed since the delivery was made; a run of failures opens the
  endpoint's circuit (disabled, with a ``webhook.disabled`` event).
- At least once: an attempt is recorded after its request; a worker that dies in between
  leaves the lease to run out and the delivery is sent again (same ``webhook-id``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
import orjson
import psycopg
from psycopg.rows import class_row
from psycopg_pool import AsyncConnectionPool
from standardwebhooks.webhooks import Webhook

from slotmill.config import Settings, get_settings
from slotmill.materializer.webhooks import webhook_id
from slotmill.outbound import Guard, async_client
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.worker")
Q = owned_by(__name__)

USER_AGENT = "slotmill-webhooks/1"
# Errors and answers kept in the log are cut to this many characters.
ERROR_CHARS = 500


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    timeout_s: float = 5.0
    concurrency: int = 4  # requests in flight per endpoint (per worker process)
    max_in_flight: int = 64  # per worker process
    backoff_base_s: float = 5.0
    backoff_max_s: float = 7200.0
    retry_s: float = 25 * 3600.0
    circuit_failures: int = 20
    circuit_s: float = 3600.0
    lease_s: float = 30.0
    poll_s: float = 0.25
    guard: Guard = field(default_factory=Guard)  # which addresses deliveries may reach (slotmill/outbound.py)

    @classmethod
    def from_settings(cls, s: Settings | None = None) -> WebhookConfig:
        s = s or get_settings()
        return cls(
            timeout_s=s.webhook_timeout_seconds,
            concurrency=max(1, s.webhook_concurrency),
            max_in_flight=max(1, s.webhook_max_in_flight),
            backoff_base_s=s.webhook_backoff_base_seconds,
            backoff_max_s=s.webhook_backoff_max_seconds,
            retry_s=s.webhook_retry_hours * 3600.0,
            circuit_failures=max(1, s.webhook_circuit_failures),
            circuit_s=s.webhook_circuit_seconds,
            lease_s=max(s.webhook_lease_seconds, s.webhook_timeout_seconds + 1.0),
            poll_s=s.events_poll_seconds,
            guard=s.outbound_guard,
        )

    def retry_after(self, attempts: int, *, jitter: float | None = None) -> float:
        """Seconds before the next attempt after ``attempts`` failed ones: doubling from the
        base up to the maximum, times a jitter of +-20% so retries do not come in waves."""
        j = random.uniform(0.8, 1.2) if jitter is None else jitter
        return min(self.backoff_base_s * 2.0 ** max(attempts - 1, 0), self.backoff_max_s) * j


@dataclass(frozen=True, slots=True)
class Claimed:
    tenant_id: UUID
    id: int
    endpoint_id: UUID
    attempts: int
    created_at: datetime
    event_id: int
    seq: int | None
    type: str
    data: str
    event_at: datetime
    url: str
    secret: str
    previous_secret: str | None


def payload(event_type: str, event_at: datetime, seq: int | None, data: str) -> bytes:
    """The body of a delivery (Standard Webhooks' type, timestamp, data; and the tenant's
    sequence number): the same bytes for every attempt of one event."""
    head = orjson.dumps(
        {"type": event_type, "timestamp": event_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "seq": seq}
    )
    return head[:-1] + b',"data":' + data.encode() + b"}"


_SIGNERS: dict[str, Webhook] = {}


def sign(secret: str, msg_id: str, at: datetime, body: bytes) -> str:
    signer = _SIGNERS.get(secret)
    if signer is None:
        if len(_SIGNERS) > 10_000:
            _SIGNERS.clear()
        signer = _SIGNERS[secret] = Webhook(secret)
    return signer.sign(msg_id, at, body.decode())


def headers_for(d: Claimed, body: bytes, at: datetime) -> dict[str, str]:
    msg_id = webhook_id(d.event_id)
    signatures = [sign(d.secret, msg_id, at, body)]
    if d.previous_secret:
        signatures.append(sign(d.previous_secret, msg_id, at, body))
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
    }


class Deliverer:
    """The delivery loop of one worker process, on a thread of its own with its own event
    loop; ``start()``, ``wake()`` when there may be new work, ``stop()`` and ``join()``."""

    def __init__(self, url: str, config: WebhookConfig | None = None, *, name: str = "slotmill-worker") -> None:
        self.url = url
        self.config = config or WebhookConfig.from_settings()
        self.name = name
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = threading.Event()
        self._busy: Counter[UUID] = Counter()
        self.sent = 0
        self.failed = 0

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slotmill-webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(event.set)

    def stop(self) -> None:
        self._stopping.set()
        self.wake()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- the loop ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception:
            log.exception("webhook delivery loop ended")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        cfg = self.config
        pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=4,
            kwargs={"autocommit": True, "application_name": f"{self.name}-webhooks"[:63], "prepare_threshold": None},
            name="slotmill-webhooks",
            open=False,
        )
        await pool.open(wait=False)
        limits = httpx.Limits(max_connections=cfg.max_in_flight, max_keepalive_connections=cfg.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()
        backoff = 0.1
        async with async_client(cfg.guard, timeout=httpx.Timeout(cfg.timeout_s), limits=limits) as client:
            try:
                while not self._stopping.is_set():
                    spare = cfg.max_in_flight - len(tasks)
                    claimed: list[Claimed] = []
                    if spare > 0:
                        try:
                            claimed = await self._claim(pool, spare)
                            backoff = 0.1
                        except (psycopg.Error, OSError) as e:
                            log.warning("webhook claim failed; retrying", extra={"ctx_error": str(e).strip()[:200]})
                            await self._sleep(backoff)
                            backoff = min(backoff * 2, 10.0)
                            continue
                    for d in claimed:
                        self._busy[d.endpoint_id] += 1
                        task = asyncio.create_task(self._deliver(pool, client, d))
                        tasks.add(task)
                        task.add_done_callback(functools.partial(self._done, tasks, d))
                    if claimed and len(claimed) == spare:
                        continue  # more may be due
                    await self._sleep(cfg.poll_s)
            finally:
                # In-flight requests finish (each within its timeout) and are recorded.
                if tasks:
                    await asyncio.wait(tasks, timeout=cfg.timeout_s + 5.0)
                await pool.close()

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()

    def _done(self, tasks: set[asyncio.Task[None]], d: Claimed, task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        self._busy[d.endpoint_id] -= 1
        if self._busy[d.endpoint_id] <= 0:
            del self._busy[d.endpoint_id]
        if self._wake is not None:
            self._wake.set()  # a slot is free

    async def _claim(self, pool: AsyncConnectionPool[Any], limit: int) -> list[Claimed]:
        cfg = self.config
        busy = {str(k): v for k, v in self._busy.items() if v > 0}
        async with pool.connection() as conn:
            cur = conn.cursor(row_factory=class_row(Claimed))
            await cur.execute(
                Q["claim_deliveries"],
                {
                    "per_endpoint": cfg.concurrency,
                    "busy": orjson.dumps(busy).decode(),
                    "limit": limit,
                    "lease_s": cfg.lease_s,
                },
            )
            rows: list[Claimed] = await cur.fetchall()
            return rows

    async def _deliver(self, pool: AsyncConnectionPool[Any], client: httpx.AsyncClient, d: Claimed) -> None:
        cfg = self.config
        body = payload(d.type, d.event_at, d.seq, d.data)
        at = datetime.now(UTC)
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            async with asyncio.timeout(cfg.timeout_s):
                r = await client.post(d.url, content=body, headers=headers_for(d, body, at))
            status = r.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {r.text[:200]}".strip()[:ERROR_CHARS]
        except TimeoutError:
            error = f"timeout after {cfg.timeout_s:g} s"
        except httpx.TimeoutException:
            error = f"timeout after {cfg.timeout_s:g} s"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"[:ERROR_CHARS]
        ok = error is None
        duration_ms = int((time.monotonic() - started) * 1000)
        retry_s = cfg.retry_after(d.attempts)
        age_s = (at - d.created_at).total_seconds()
        give_up = not ok and age_s + retry_s > cfg.retry_s
        params = {
            "tenant_id": d.tenant_id,
            "delivery_id": d.id,
            "endpoint_id": d.endpoint_id,
            "ok": ok,
            "give_up": give_up,
            "retry_s": retry_s,
            "status_code": status,
            "error": error,
            "attempted_at": at,
            "duration_ms": duration_ms,
            "circuit_failures": cfg.circuit_failures,
            "circuit_s": cfg.circuit_s,
        }
        for attempt in range(3):
            try:
                async with pool.connection() as conn:
                    cur = await conn.execute(Q["record_attempt"], params)
                    tripped = await cur.fetchone()
                break
            except (psycopg.Error, OSError) as e:
                # Unrecorded, the lease runs out and the delivery is sent again: at least once.
                if attempt == 2:
                    log.warning("webhook attempt not recorded", extra={"ctx_error": str(e).strip()[:200]})
                    return
                await asyncio.sleep(0.2 * (attempt + 1))
        if ok:
            self.sent += 1
        else:
            self.failed += 1
            log.info(
                "webhook attempt failed" + ("; giving up" if give_up else ""),
                extra={
                    "ctx_endpoint": str(d.endpoint_id),
                    "ctx_delivery": d.id,
                    "ctx_attempt": d.attempts,
                    "ctx_error": error,
                    "ctx_retry_s": None if give_up else round(retry_s, 1),
                },
            )
        if tripped is not None:
            log.warning(
                "webhook endpoint disabled: circuit open",
                extra={"ctx_endpoint": str(d.endpoint_id), "ctx_url": d.url},
            )
