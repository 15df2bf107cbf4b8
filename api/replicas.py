"""Read replicas: which server answers a read, and the consistency token (SPEC §16).

Slot reads and the catalog go to streaming replicas (``SLOTMILL_READ_DATABASE_URL``) when
there are any; holds, host calls, admin and the worker stay on the primary. A write through
the API answers with the primary's WAL position after its commit (the *consistency token*,
header ``Slotmill-Consistency``). A read that carries it back (the same header, or the
``consistency`` query parameter) is answered by a replica only once that replica has
replayed the token; else it waits up to ``SLOTMILL_READ_CONSISTENCY_WAIT_MS`` and then asks
the primary. So a customer never sees a state older than their own write, and everyone
else reads from replicas at whatever lag they have (``SLOTMILL_READ_MAX_LAG_SECONDS`` bounds
it: a replica further behind serves nothing until it catches up).

Each process probes the primary and every replica once a second (:meth:`ReadRouter.monitor`):
that gives the lag metrics, ``/readyz``'s replica list, and which replicas are usable. A
replica that fails a read is out until its next good probe, and the read is retried on
the primary: reads are idempotent.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from prometheus_client import Counter, Gauge
from psycopg import AsyncConnection, AsyncCursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import AsyncRowFactory
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from starlette.requests import Request

from slotmill.api.errors import invalid
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.api")
Q = owned_by(__name__)

Row = TypeVar("Row")
T = TypeVar("T")

HEADER = "Slotmill-Consistency"
QUERY_PARAM = "consistency"
_LSN = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")

PROBE_INTERVAL_S = 1.0
# A probe or a read waits this long for a replica connection before it counts as down: a
# replica must never make a read slower than asking the primary would.
REPLICA_ACQUIRE_S = 1.0
# Primary positions kept for the lag in seconds (one a probe): bounds the lag it can show.
HISTORY = 3600

REPLICA_LAG_SECONDS = Gauge(
    "slotmill_replica_lag_seconds",
    "How long ago the primary had WAL this replica has not replayed yet (0: caught up), at probe resolution.",
    ["replica"],
    multiprocess_mode="livemax",
)
REPLICA_LAG_BYTES = Gauge(
    "slotmill_replica_lag_bytes",
    "WAL bytes between the primary's position and this replica's replay position at the last probe.",
    ["replica"],
    multiprocess_mode="livemax",
)
REPLICA_UP = Gauge(
    "slotmill_replica_up",
    "1 while this replica answers probes and is within SLOTMILL_READ_MAX_LAG_SECONDS, else 0.",
    ["replica"],
    multiprocess_mode="livemin",
)
READS = Counter(
    "slotmill_reads_total",
    "Routed reads (slots, catalog) by the server that answered: replica, primary (no usable replica),"
    " fallback (a replica had not replayed the read's token in time) or failover (a replica failed).",
    ["served_by"],
)


# --- the token ----------------------------------------------------------------------------


def parse_lsn(text: str) -> int:
    """A ``pg_lsn`` in PostgreSQL's text form (``16/B374D848``) as one integer."""
    m = _LSN.match(text)
    if m is None:
        raise ValueError(f"not a WAL position: {text!r}")
    return (int(m[1], 16) << 32) | int(m[2], 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def request_token(request: Request) -> int | None:
    """The consistency token a read carries (header, else query parameter), or None; a
    malformed one is a 422 naming where it came from."""
    for where, value in (
        (f"header.{HEADER}", request.headers.get(HEADER)),
        (f"query.{QUERY_PARAM}", request.query_params.get(QUERY_PARAM)),
    ):
        if value is None or value == "":
            continue
        try:
            return parse_lsn(value.strip())
        except ValueError:
            raise invalid(
                where, f"{where}: a WAL position as a write returned it in {HEADER} (like 0/1A2B3C8)"
            ) from None
    return None


async def write_position(conn: AsyncConnection[Any]) -> str:
    """The token of the writes this connection committed (run it after the COMMIT; in a
    pipeline it shares the COMMIT's round trip)."""
    cur = await conn.execute(Q["write_position"])
    row = await cur.fetchone()
    assert row is not None
    return str(row[0])


def write_position_sync(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute(Q["write_position"]).fetchone()
    assert row is not None
    return str(row[0])


# --- the replicas -------------------------------------------------------------------------


def replica_name(url: str, index: int) -> str:
    """host:port of a replica (its metrics label; never the password)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return f"replica{index}"
    host = str(params.get("host") or params.get("hostaddr") or "local")
    return f"{host}:{params.get('port') or 5432}"


@dataclass
class Replica:
    name: str
    pool: AsyncConnectionPool[Any]
    # From the last probe: answered, how far behind, and why not (for /readyz and the logs).
    up: bool = False
    replayed: int | None = None
    lag_seconds: float | None = None
    lag_bytes: int | None = None
    error: str | None = None
    usable: bool = False

    def failed(self, e: BaseException) -> None:
        if self.up:
            log.warning("read replica %s failed; its reads go to the primary: %s", self.name, _first_line(e))
        self.up = self.usable = False
        self.error = _first_line(e)
        REPLICA_UP.labels(self.name).set(0)

    def status(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.usable,
            "lag_seconds": self.lag_seconds,
            "lag_bytes": self.lag_bytes,
            "error": self.error,
        }


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text.splitlines()[0]}" if text else type(e).__name__


async def _position(conn: AsyncConnection[Any]) -> int | None:
    cur = await conn.execute(Q["replay_position"])
    row = await cur.fetchone()
    return None if row is None or row[0] is None else parse_lsn(str(row[0]))


@dataclass
class ReadRouter:
    """Runs a read on a replica that may answer it, else on the primary."""

    primary: AsyncConnectionPool[Any]
    replicas: Sequence[Replica] = ()
    wait_s: float = 0.1
    max_lag_s: float = 30.0
    _turn: itertools.count[int] = field(default_factory=itertools.count)
    # (monotonic time, primary WAL position) at each probe, oldest first.
    _history: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=HISTORY))

    async def run(self, read: Callable[[AsyncConnection[Any]], Awaitable[T]], *, token: int | None = None) -> T:
        """``read(conn)`` on a usable replica that has replayed ``token``, else on the
        primary. ``read`` must only read: it may run twice (a replica that fails mid-way)."""
        replica = self._pick()
        served_by = "primary"
        if replica is not None:
            try:
                async with replica.pool.connection(timeout=REPLICA_ACQUIRE_S) as conn:
                    if token is None or await self._replayed(conn, token):
                        out = await read(conn)
                        READS.labels("replica").inc()
                        return out
                served_by = "fallback"
            except (psycopg.OperationalError, PoolTimeout) as e:
                # Down, restarting, or a query cancelled by a conflict with recovery: the
                # primary answers this read, and the replica sits out until a good probe.
                replica.failed(e)
                served_by = "failover"
        async with self.primary.connection() as conn:
            out = await read(conn)
        READS.labels(served_by).inc()
        return out

    async def fetch_one(
        self,
        query: str,
        params: dict[str, Any],
        *,
        token: int | None = None,
        row_factory: AsyncRowFactory[Row],
    ) -> Row | None:
        """The first row of one statement, routed as :meth:`run` routes."""

        async def read(conn: AsyncConnection[Any]) -> Row | None:
            cur: AsyncCursor[Row] = conn.cursor(row_factory=row_factory)
            await cur.execute(query, params)
            return await cur.fetchone()

        return await self.run(read, token=token)

    def _pick(self) -> Replica | None:
        usable = [r for r in self.replicas if r.usable]
        if not usable:
            return None
        return usable[next(self._turn) % len(usable)]

    async def _replayed(self, conn: AsyncConnection[Any], token: int) -> bool:
        """Whether this replica has replayed ``token``, waiting for it a little (checking
        often, then less); the read that follows on this connection takes its snapshot
        after the check, so it shows at least everything up to the token."""
        deadline = time.monotonic() + self.wait_s
        pause = 0.002
        while True:
            pos = await _position(conn)
            if pos is not None and pos >= token:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.02)

    # --- probes ---------------------------------------------------------------------------

    async def monitor(self) -> None:
        """Probe forever (the app's lifespan runs it as a task and cancels it)."""
        while True:
            await self.probe()
            await asyncio.sleep(PROBE_INTERVAL_S)

    async def probe(self) -> None:
        try:
            async with self.primary.connection(timeout=REPLICA_ACQUIRE_S) as conn:
                primary_at = await _position(conn)
        except (psycopg.Error, PoolTimeout) as e:
            log.debug("replica probe: primary unavailable: %s", e)
            primary_at = None
        now = time.monotonic()
        if primary_at is not None:
            self._history.append((now, primary_at))
        await asyncio.gather(*(self._probe(r, now) for r in self.replicas))

    async def _probe(self, replica: Replica, now: float) -> None:
        try:
            async with replica.pool.connection(timeout=REPLICA_ACQUIRE_S) as conn:
                pos = await _position(conn)
        except (psycopg.Error, PoolTimeout) as e:
            replica.failed(e)
            return
        was_usable = replica.usable
        replica.up, replica.replayed, replica.error = True, pos, None
        replica.lag_seconds, replica.lag_bytes = self._lag(pos, now)
        replica.usable = pos is not None and (replica.lag_seconds or 0.0) <= self.max_lag_s
        if not replica.usable:
            replica.error = f"behind by {replica.lag_seconds:.1f} s" if pos is not None else "nothing replayed yet"
        if replica.usable != was_usable:
            state = "serves reads" if replica.usable else f"sits out: {replica.error}"
            log.info("read replica %s %s", replica.name, state)
        REPLICA_UP.labels(replica.name).set(1 if replica.usable else 0)
        if replica.lag_seconds is not None:
            REPLICA_LAG_SECONDS.labels(replica.name).set(replica.lag_seconds)
        if replica.lag_bytes is not None:
            REPLICA_LAG_BYTES.labels(replica.name).set(replica.lag_bytes)

    def _lag(self, replayed: int | None, now: float) -> tuple[float | None, int | None]:
        """Seconds since the primary first stood past ``replayed`` (among the probes kept),
        and bytes between the primary's last known position and it."""
        if not self._history:
            return None, None
        if replayed is None:
            return now - self._history[0][0], None
        latest = self._history[-1][1]
        if replayed >= latest:
            return 0.0, 0
        first_ahead = next(t for t, lsn in self._history if lsn > replayed)
        return max(0.0, now - first_ahead), latest - replayed

    def status(self) -> list[dict[str, Any]]:
        return [r.status() for r in self.replicas]

    async def close(self) -> None:
        await asyncio.gather(*(r.pool.close() for r in self.replicas))
