"""Shared set-up of the database and API tests: a seeded, materialized world (the `world`
fixture in tests/conftest.py builds it from here), an in-process client that runs the app's
lifespan (real pools against the test database), and small helpers (reads, holds, problems,
rows, a worker to run and a condition to wait for).

No tests here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import psycopg
from starlette.applications import Starlette

from slotmill import seed
from slotmill.api.app import create_app
from slotmill.config import Settings
from slotmill.jobs.worker import Worker
from slotmill.keys import create_key
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh

T = TypeVar("T")
ZONE = "Europe/London"


@dataclass
class Tenant:
    slug: str
    id: UUID
    key: str
    ann: UUID  # priority 100, works 09:00-17:00, performs cut and trim
    bob: UUID  # priority 50 (before Ann), works 09:00-12:00, performs cut
    cid: UUID  # priority 100, works 09:00-17:00, performs cut
    cut: UUID  # 60 min
    trim: UUID  # 30 min
    location: UUID
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class World:
    url: str
    day: date  # a local date (tenant zone) three days ahead: fully bookable
    acme: Tenant
    other: Tenant  # a second tenant with the same shape, for isolation tests

    def at(self, hhmm: str, day: date | None = None) -> datetime:
        """A local wall-clock time on ``day`` (default: the world's day) as a UTC instant."""
        h, m = (int(x) for x in hhmm.split(":"))
        local = datetime.combine(day or self.day, datetime.min.time(), ZoneInfo(ZONE))
        return local.replace(hour=h, minute=m).astimezone(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seed_tenant(conn: psycopg.Connection[Any], slug: str, settings: dict[str, Any] | None = None) -> Tenant:
    t = seed.tenant(conn, slug, timezone=ZONE, settings=settings or {})
    loc = seed.location(conn, t, "Main street")
    ann = seed.staff(conn, t, "Ann", location_id=loc)
    bob = seed.staff(conn, t, "Bob", location_id=loc, priority=50)
    cid = seed.staff(conn, t, "Cid", location_id=loc)
    cut = seed.service(conn, t, "Cut", 60, staff_ids=[ann, bob, cid])
    trim = seed.service(conn, t, "Trim", 30, staff_ids=[ann])
    seed.template(conn, t, ann, range(1, 8), "09:00", "17:00")
    seed.template(conn, t, bob, range(1, 8), "09:00", "12:00")
    seed.template(conn, t, cid, range(1, 8), "09:00", "17:00")
    key = create_key(conn, t)
    return Tenant(slug, t, key, ann, bob, cid, cut, trim, loc)


def materialize(conn: psycopg.Connection[Any], *slugs: str) -> None:
    conn.commit()
    for slug in slugs:
        refresh(conn, load_tenant(conn, slug))
    conn.commit()


def today_in_zone() -> date:
    return datetime.now(ZoneInfo(ZONE)).date()


def settings_for(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "rate_limit_reads": 0,
        "rate_limit_holds": 0,
        "pool_min_size": 1,
        "pool_max_size": 4,
        "log_json": True,
    }
    values.update(overrides)
    return Settings(database_url=url, **values)


@asynccontextmanager
async def running(url: str, **overrides: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """The app with its lifespan run (pools open), and a client talking to it in-process."""
    app = create_app(settings_for(url, **overrides))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield app, client


def run(url: str, body: Callable[[httpx.AsyncClient], Awaitable[T]], **overrides: Any) -> T:
    """Run ``body(client)`` against a fresh app on the test database."""

    async def main() -> T:
        async with running(url, **overrides) as (_, client):
            return await body(client)

    return asyncio.run(main())


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def slots(
    client: httpx.AsyncClient,
    w: World,
    service: UUID,
    *,
    tenant: Tenant | None = None,
    **params: Any,
) -> list[dict[str, Any]]:
    t = tenant or w.acme
    query = {
        "service_id": str(service),
        "from": w.day.isoformat(),
        "to": w.day.isoformat(),
        **params,
    }
    r = await client.get(f"/v1/tenants/{t.slug}/slots", params=query)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["slots"]
    return out


async def hold(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/v1/tenants/{tenant.slug}/holds", json=body)


async def hold_ok(client: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
    r = await hold(client, tenant, body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def problem(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem with this status (and code); return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert isinstance(body["code"], str) and body["code"]
    assert body["type"].endswith(body["code"])
    if code is not None:
        assert body["code"] == code, body
    return body


def db_rows(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def db_exec(url: str, sql: str, params: Any = None) -> int:
    """Run one writing statement in its own transaction; the number of rows it touched."""
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).rowcount  # type: ignore[arg-type]


def snapshot(url: str) -> str:
    """Everything a request could change, as text: to prove that a refused one changed nothing."""
    tables = ["bookings", "availability_slots", "idempotency_keys", "recompute_requests"]
    parts = []
    for table in tables:
        rows = db_rows(url, f"SELECT to_jsonb(x) FROM {table} x")
        parts.append(json.dumps(sorted(json.dumps(r[0], sort_keys=True) for r in rows)))
    return "\n".join(parts)


@contextmanager
def worker(url: str) -> Iterator[Worker]:
    """A worker (one consumer, no scheduler) running in this process on ``url``."""
    w = Worker(url, 1, schedule=False, poll_seconds=0.2)
    w.start()
    try:
        yield w
    finally:
        w.stop()
        assert w.join(30)


def wait(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Until ``predicate()`` is true; fails the test after ``timeout`` seconds (a bound on
    waiting, not a performance threshold)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
