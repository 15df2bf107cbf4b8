"""`slotmill worker`: drain the recompute queue as changes commit, and run the scheduled jobs.

Threads of one worker process:
- a listener holds a connection in ``LISTEN slotmill_recompute`` and wakes the consumers
  the moment a notification arrives (the triggers notify in the writing transaction, so it
  is delivered at its commit);
- ``concurrency`` consumers, each with its own connection, drain the queue one claimed
  group (one transaction) at a time until nothing free is left, then wait for a wake-up or
  the poll;
- APScheduler's thread runs the poll, the hold expiry clean-up and the nightly refresh.

A lost connection (the database restarted) is reopened with backoff; on SIGTERM/SIGINT each
consumer finishes the group it is working on (or the server rolls it back if the process
dies), then the process exits 0.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from types import FrameType
from typing import Any

import psycopg
from apscheduler.schedulers.background import BackgroundScheduler

from slotmill.config import get_settings, timeout_options
from slotmill.jobs.events import EventPump
from slotmill.jobs.queue import Outcome, drain_one
from slotmill.jobs.scheduler import build_scheduler
from slotmill.jobs.webhooks import Deliverer, WebhookConfig

log = logging.getLogger("slotmill.worker")

CHANNEL = "slotmill_recompute"
# Test-only: keep each recompute transaction open this many seconds before it commits, so a
# test can kill a worker in the middle of one. Never set it in production.
HOLD_ENV = "SLOTMILL_TEST_RECOMPUTE_HOLD_S"
# How often a listener with no notifications looks up from its socket to see whether the
# worker is stopping; notifications themselves are handled the moment they arrive.
LISTEN_TICK_S = 0.5
BACKOFF_MIN_S = 0.1
BACKOFF_MAX_S = 10.0


class _Backoff:
    def __init__(self) -> None:
        self.delay = BACKOFF_MIN_S

    def reset(self) -> None:
        self.delay = BACKOFF_MIN_S

    def wait(self, stop: threading.Event) -> None:
        stop.wait(self.delay)
        self.delay = min(self.delay * 2, BACKOFF_MAX_S)


class Worker:
    """One worker process's threads; ``start()``, then ``stop()`` and ``join()``."""

    def __init__(
        self,
        url: str,
        concurrency: int = 1,
        *,
        poll_seconds: float | None = None,
        batch_size: int | None = None,
        schedule: bool = True,
        hold_s: float | None = None,
        name: str | None = None,
        events: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        settings = get_settings()
        self.url = url
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.worker_poll_seconds
        self.batch_size = batch_size if batch_size is not None else settings.worker_batch_size
        self.hold_s = hold_s if hold_s is not None else float(os.environ.get(HOLD_ENV) or 0)
        self.name = name or f"slotmill-worker@{socket.gethostname()}:{os.getpid()}"
        self._schedule = schedule
        self._stop = threading.Event()
        self._wakes = [threading.Event() for _ in range(concurrency)]
        self._threads: list[threading.Thread] = []
        self._scheduler: BackgroundScheduler | None = None
        self._lock = threading.Lock()
        # events14: the outbox pump and webhook delivery (jobs/events.py, jobs/webhooks.py)
        self.deliverer: Deliverer | None = None
        self.pump: EventPump | None = None
        if events:
            self.deliverer = Deliverer(url, WebhookConfig.from_settings(settings), name=self.name)
            self.pump = EventPump(
                url,
                poll_s=settings.events_poll_seconds,
                retention_days=settings.event_retention_days,
                on_numbered=self.deliverer.wake,
                name=self.name,
            )
        self.groups = 0
        self.requests = 0
        self.failures = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._threads = [threading.Thread(target=self._listen, name="slotmill-listen", daemon=True)]
        self._threads += [
            threading.Thread(target=self._consume, args=(i,), name=f"slotmill-consume-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for t in self._threads:
            t.start()
        if self.deliverer is not None and self.pump is not None:
            self.deliverer.start()
            self.pump.start()
        if self._schedule:
            self._scheduler = build_scheduler(
                self.url,
                poll_seconds=self.poll_seconds,
                wake=self.wake,
                stop=self._stop,
                worker_name=self.name,
            )
            self._scheduler.start()
        log.info(
            "worker started",
            extra={
                "ctx_worker": self.name,
                "ctx_concurrency": self.concurrency,
                "ctx_poll_s": self.poll_seconds,
            },
        )

    def wake(self) -> None:
        for e in self._wakes:
            e.set()

    def stop(self) -> None:
        self._stop.set()
        self.wake()
        if self.pump is not None and self.deliverer is not None:
            self.pump.stop()
            self.deliverer.stop()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads (a consumer first finishes its group); True if all ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._scheduler is not None:
            # Jobs check the stop flag between tenants; a job mid-way finishes its tenant.
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        for part in (self.pump, self.deliverer):
            if part is not None:
                part.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        alive = [t.name for t in self._threads if t.is_alive()]
        alive += [n for n, p in (("events", self.pump), ("webhooks", self.deliverer)) if p is not None and p.alive()]
        log.info(
            "worker stopped",
            extra={
                "ctx_worker": self.name,
                "ctx_groups": self.groups,
                "ctx_requests": self.requests,
                "ctx_failures": self.failures,
                "ctx_alive": alive,
            },
        )
        return not alive

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # -- threads -----------------------------------------------------------------------

    def _connect(self, role: str, *, autocommit: bool) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url,
            autocommit=autocommit,
            application_name=f"{self.name}-{role}"[:63],
            connect_timeout=10,
            # No server-side prepared statements: the loader's queries take optional
            # filters (`staff_ids IS NULL OR ...`) whose generic plans scan whole tables;
            # each recompute must be planned for the staff members it names.
            prepare_threshold=None,
            options=timeout_options(get_settings().worker_statement_timeout_ms),
            keepalives=1,
            keepalives_idle=30,
            keepalives_interval=10,
            keepalives_count=3,
        )

    def _listen(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            try:
                with self._connect("listen", autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    if backoff.delay > BACKOFF_MIN_S:
                        log.info("listener reconnected", extra={"ctx_worker": self.name})
                    backoff.reset()
                    # Whatever committed while nobody listened is found by draining now.
                    self.wake()
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=LISTEN_TICK_S):
                            self.wake()
            except psycopg.Error as e:
                if self._stop.is_set():
                    break
                log.warning(
                    "listener lost its connection; retrying",
                    extra={"ctx_error": str(e).strip(), "ctx_retry_s": backoff.delay},
                )
                backoff.wait(self._stop)

    def _consume(self, index: int) -> None:
        wake = self._wakes[index]
        wake.set()  # drain what is already queued
        conn: psycopg.Connection[Any] | None = None
        backoff = _Backoff()
        try:
            while not self._stop.is_set():
                wake.wait(self.poll_seconds)
                wake.clear()
                while not self._stop.is_set():
                    try:
                        if conn is None or conn.closed:
                            conn = self._connect("drain", autocommit=False)
                            backoff.reset()
                        outcome = drain_one(conn, batch_size=self.batch_size, hold_s=self.hold_s)
                    except Exception as e:
                        if conn is not None and (conn.closed or conn.broken):
                            log.warning(
                                "consumer lost its connection; retrying",
                                extra={"ctx_error": str(e).strip(), "ctx_retry_s": backoff.delay},
                            )
                            conn.close()
                            conn = None
                            backoff.wait(self._stop)
                            continue
                        if conn is None:  # could not connect
                            log.warning(
                                "consumer cannot connect; retrying",
                                extra={"ctx_error": str(e).strip(), "ctx_retry_s": backoff.delay},
                            )
                            backoff.wait(self._stop)
                            continue
                        # The claim itself failed (the schema is behind?): a failing group is
                        # handled inside drain_one, so this is rare; back off and retry.
                        with self._lock:
                            self.failures += 1
                        log.error("claiming from the queue failed", exc_info=e)
                        backoff.wait(self._stop)
                        continue
                    backoff.reset()
                    if outcome is None:
                        break
                    self._done(outcome)
        finally:
            if conn is not None:
                conn.close()

    def _done(self, o: Outcome) -> None:
        with self._lock:
            self.groups += 1
            self.requests += o.requests
        if o.action == "failed":
            with self._lock:
                self.failures += 1
            log.error(
                "recompute failed; parked" if o.parked else "recompute failed; retried later",
                extra={
                    "ctx_tenant": str(o.tenant_id),
                    "ctx_staff": str(o.staff_id or "*"),
                    "ctx_requests": o.requests,
                    "ctx_attempts": o.attempts,
                    "ctx_error": o.error,
                },
            )
            return
        lag_ms = max(0.0, (time.time() - o.oldest_requested_at.timestamp()) * 1000)
        log.info(
            "recompute",
            extra={
                "ctx_tenant": str(o.tenant_id),
                "ctx_staff": str(o.staff_id or "*"),
                "ctx_action": o.action,
                "ctx_requests": o.requests,
                "ctx_windows": o.windows,
                "ctx_staff_count": o.staff,
                "ctx_slots_written": o.slots_written,
                "ctx_slots_deleted": o.slots_deleted,
                "ctx_ms": round(o.duration_s * 1000, 2),
                # from the oldest request's enqueue (inside its writer's transaction) to now
                "ctx_lag_ms": round(lag_ms, 1),
            },
        )


def run_worker(url: str, concurrency: int = 1) -> int:
    """`slotmill worker`: run until SIGTERM or SIGINT, then stop cleanly; exit status."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("stopping", extra={"ctx_signal": signal.Signals(signum).name})
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = Worker(url, concurrency)
    worker.start()
    try:
        while not stop.wait(1.0):
            if not worker.alive():
                log.error("worker threads ended unexpectedly")
                return 1
    finally:
        worker.stop()
        worker.join()
    return 0
