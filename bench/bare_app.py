"""The baseline of the stack itself: a bare Starlette + uvicorn + psycopg pool app whose one
route runs ``SELECT 1``. ``make bench`` starts it beside ``slotmill api`` and compares the
API's own ``GET /healthz/db`` with it, so what the API adds (middleware, routing, metrics,
logging) shows as a ratio.

``python -m bench.bare_app --port P --database-url URL``
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def build(database_url: str, pool_size: int) -> Starlette:
    pool = AsyncConnectionPool(
        database_url,
        min_size=pool_size,
        max_size=pool_size,
        kwargs={"autocommit": True, "prepare_threshold": None},
        open=False,
    )

    async def select1(request: Request) -> Response:
        async with pool.connection() as conn:
            await conn.execute("SELECT 1")
        return Response(b'{"ok":true}', media_type="application/json")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await pool.open(wait=True)
        try:
            yield
        finally:
            await pool.close()

    return Starlette(routes=[Route("/select1", select1)], lifespan=lifespan)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--database-url", required=True)
    p.add_argument("--pool-size", type=int, default=16)
    args = p.parse_args()
    uvicorn.run(
        build(args.database_url, args.pool_size),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
