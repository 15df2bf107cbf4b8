"""The API's two connection pools.

- ``AsyncConnectionPool`` for the hot paths (slot reads, holds): autocommit, so a read is
  exactly one statement and one round trip, and a hold is one function call.
- ``ConnectionPool`` (sync) for the host paths (confirm, cancel, reschedule) and admin
  explain: they run the synchronous materializer code (loader + engine) in one transaction,
  in a worker thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from psycopg_pool import AsyncConnectionPool, ConnectionPool

from slotmill.config import Settings, timeout_options
from slotmill.db import resolve_database_url

# Seconds a request waits for a free connection before it is answered 503.
ACQUIRE_TIMEOUT = 10.0


@dataclass
class Pools:
    url: str
    pool: AsyncConnectionPool
    sync_pool: ConnectionPool

    async def close(self) -> None:
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
        "options": timeout_options(settings.api_statement_timeout_ms),
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
    return Pools(url, pool, sync_pool)
