"""Fixtures of the browser tests (the widget, its embedding, the operator console): one
Chromium per module, and the demo site served by uvicorn on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import pytest
from playwright.sync_api import Browser, sync_playwright

from slotmill.config import Settings
from slotmill.demo import DEMO_SLUG, load_demo
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from tests.api.test_widget_api import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's with `apt-get install -y chromium` (.ci/run does)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Site:
    base: str
    db_url: str
    catalog: dict[str, Any]

    def service(self, name: str) -> str:
        return next(str(s["id"]) for s in self.catalog["services"] if s["name"] == name)

    def staff(self, name: str) -> str:
        return next(str(s["id"]) for s in self.catalog["staff"] if s["display_name"] == name)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url) as conn:
            return conn.execute(sql, params).fetchall()

    def settings(self, **settings: Any) -> None:
        with psycopg.connect(self.db_url) as conn:
            conn.execute(
                "UPDATE tenants SET settings = settings || %s::jsonb WHERE slug = %s",
                (orjson.dumps(settings).decode(), DEMO_SLUG),
            )

    def held(self) -> tuple[Any, ...]:
        rows = self.query("SELECT id, staff_id, location_id, starts_at FROM bookings WHERE status = 'held'")
        assert len(rows) == 1, rows
        return rows[0]

    def url(self, **query: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in {"tenant": DEMO_SLUG, **query}.items())
        return f"{self.base}/widget/?{q}"


@pytest.fixture
def site(env_db: str) -> Iterator[Site]:
    with psycopg.connect(env_db) as conn:
        load_demo(conn)
        conn.commit()
        refresh(conn, load_tenant(conn, DEMO_SLUG))
    settings = Settings(demo_mode=True, rate_limit_reads=100_000, rate_limit_holds=100_000)
    with serve(settings) as base:
        catalog = httpx.get(f"{base}/v1/tenants/{DEMO_SLUG}/catalog").json()
        yield Site(base, env_db, catalog)
