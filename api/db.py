"""The API's connection pools.

- ``AsyncConnectionPool`` for the hot paths (slot reads, holds): autocommit, so a read is
  exactly one statement and one round trip, and a hold is one function call.
- ``ConnectionPool`` (sync) for the host paths (confirm, cancel, reschedule) and admin
  explain: they run the synchronous materializer code (loader + engine) in one transaction,
  in a worker thread (``asyncio.to_thread``).
- One ``AsyncConnectionPool`` per read replica (``SLOTMILL_READ_DATABASE_URL``), behind the
  :class:`~slotmill.api.replicas.ReadRouter` that slot reads and the catalog go through.

No connection carries session state the next user could trip on: every statement is
autocommit or inside its own transaction, locks are transaction-level, settings are
``SET LOCAL``. So any URL here may lead to PgBouncer in transaction mode
(``SLOTMILL_API_PGBOUNCER``); LISTEN belongs to the worker's direct connections.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from slotmill.api.replicas import ReadRouter, Replica, replica_name
from slotmill.config import Settings, api_connect_options
from slotmill.db import resolve_database_url

# Seconds a request waits for a free connection before it is answered 503.
ACQUIRE_TIMEOUT = 10.0


@dataclass
class Pools:
    url: str
    pool: AsyncConnectionPool
    sync_pool: ConnectionPool
    reads: ReadRouter

    async def close(self) -> None:
        await self.reads.close()
        await self.pool.close()
        await asyncio.to_thread(self.sync_pool.close)


async def open_pools(settings: Settings) -> Pools:
    # The embedded server may have to start: that blocks, so not on the event loop.
    url = await asyncio.to_thread(resolve_database_url, settings)
    # prepare_threshold=None: no server-side prepared statements. The reads' values decide
    # their best plan (how many staff, how long a range), and PostgreSQL's generic plan for
    # a prepared read was measured 3.7x slower than a fresh custom one (144 ms vs 39 ms,
    # any-staff read of 100 staff, PostgreSQL 15); psycopg would switch every pooled
    # connection to it after five reads. The hold is a PL/pgSQL function, which caches its
    # own statements' plans either way.
    conn_kwargs: dict[str, object] = {
        "autocommit": True,
        "application_name": "slotmill-api",
        "prepare_threshold": None,
        **api_connect_options(settings),
    }
    pool = AsyncConnectionPool(
        url,
        min_size=min(settings.pool_min_size, settings.pool_max_size),
        max_size=settings.pool_max_size,
        kwargs=conn_kwargs,
        timeout=ACQUIRE_TIMEOUT,
        name="slotmill-api",
        open=False,
    )
    sync_pool = ConnectionPool(
        url,
        min_size=1,
        max_size=max(2, settings.pool_max_size // 4),
        kwargs=conn_kwargs,
        timeout=ACQUIRE_TIMEOUT,
        name="slotmill-api-sync",
        open=False,
    )
    # wait=False: the app starts even while the database is down; requests then answer
    # 503 and /readyz says why, instead of the process failing to boot.
    await pool.open(wait=False)
    await asyncio.to_thread(sync_pool.open, False)
    replicas = []
    for i, replica_url in enumerate(settings.read_database_urls):
        name = replica_name(replica_url, i)
        replica_pool = AsyncConnectionPool(
            replica_url,
            min_size=min(settings.pool_min_size, settings.pool_max_size),
            max_size=settings.pool_max_size,
            kwargs=conn_kwargs,
            timeout=ACQUIRE_TIMEOUT,
            name=f"slotmill-read-{name}",
            open=False,
        )
        await replica_pool.open(wait=False)
        replicas.append(Replica(name, replica_pool))
    reads = ReadRouter(
        pool,
        replicas,
        wait_s=settings.read_consistency_wait_ms / 1000,
        max_lag_s=settings.read_max_lag_seconds,
    )
    return Pools(url, pool, sync_pool, reads)
