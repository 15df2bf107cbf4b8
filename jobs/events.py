"""The event pump of a worker (docs/architecture.md, "Events"): a thread that numbers
committed events (which also queues their webhook deliveries), matches slots that appeared
to the waitlist, and keeps both tidy (waitlist entries past their dates, event retention).

It runs on notification (``slotmill_outbox``, sent by event writers except the hold path)
and every ``poll_s`` seconds, so an event that no notification announced still goes out
within a poll. Any number of workers run one each: numbering is one transaction at a time
(a try-lock), matching claims events with SKIP LOCKED.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from slotmill.materializer import outbox, waitlist

log = logging.getLogger("slotmill.worker")

CHANNEL = "slotmill_outbox"
# Waitlist expiry and event retention: housekeeping, not urgent.
HOUSEKEEPING_EVERY_S = 60.0


class EventPump:
    def __init__(
        self,
        url: str,
        *,
        poll_s: float,
        retention_days: int,
        on_numbered: Callable[[], None],
        name: str = "slotmill-worker",
    ) -> None:
        self.url = url
        self.poll_s = poll_s
        self.retention = timedelta(days=retention_days)
        self.on_numbered = on_numbered
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.numbered = 0
        self.matched = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="slotmill-events", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(
            self.url,
            autocommit=True,
            application_name=f"{self.name}-events"[:63],
            connect_timeout=10,
            prepare_threshold=None,
        )

    def _run(self) -> None:
        delay = 0.1
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.1
                    self._serve(conn)
            except psycopg.Error as e:
                if self._stop.is_set():
                    break
                log.warning("event pump lost its connection; retrying", extra={"ctx_error": str(e).strip()[:200]})
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        last_housekeeping = 0.0
        while not self._stop.is_set():
            n = outbox.sequence_events(conn)
            if n > 0:
                self.numbered += n
                self.on_numbered()
            m = waitlist.match_pending(conn)
            self.matched += m
            if time.monotonic() - last_housekeeping > HOUSEKEEPING_EVERY_S:
                last_housekeeping = time.monotonic()
                expired = waitlist.expire_entries(conn)
                pruned = outbox.prune_events(conn, datetime.now(UTC) - self.retention)
                if expired or pruned:
                    log.info("events housekeeping", extra={"ctx_expired_entries": expired, "ctx_pruned": pruned})
            if n >= outbox.SEQUENCE_BATCH or m > 0:
                continue  # more to number (matches wrote events)
            for _ in conn.notifies(timeout=self.poll_s, stop_after=1):
                pass
