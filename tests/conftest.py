from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.feed_server import feed_server
from tests.support import World, materialize, seed_tenant, today_in_zone
from tests.testdb import create_test_database, drop_test_database, ensure_template, resolve_server

# fixtures defined elsewhere that every test folder may use
__all__ = ["feed_server"]

ROOT = Path(__file__).resolve().parent.parent

# The tests' webhook receivers and feed servers listen on this machine: outbound HTTP may
# reach loopback here (a production worker reaches public addresses only; slotmill/outbound.py,
# tests/slotmill/test_outbound.py).
os.environ.setdefault("SLOTMILL_OUTBOUND_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    url, how, cleanup = resolve_server(ROOT / ".slotmill")
    print(f"\ntests use {how}")
    try:
        yield url
    finally:
        cleanup()


@pytest.fixture(scope="session")
def pg_template(pg_admin_url: str) -> str:
    return ensure_template(pg_admin_url)


@pytest.fixture
def db_url(pg_admin_url: str, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database of its own for one test."""
    url = create_test_database(pg_admin_url, pg_template)
    try:
        yield url
    finally:
        drop_test_database(pg_admin_url, url)


@pytest.fixture
def conn(db_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(db_url) as c:
        yield c


@pytest.fixture
def env_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the application's own resolution (DATABASE_URL) at the test database."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    from slotmill.config import get_settings

    get_settings.cache_clear()
    return db_url


def pytest_report_header() -> str:
    return f"SLOTMILL_TEST_DATABASE_URL={'set' if os.environ.get('SLOTMILL_TEST_DATABASE_URL') else 'unset'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Anything that gets a database is a database test (`make test-db`, CI's PostgreSQL 15 run).
    for item in items:
        if "db_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture
def world(db_url: str) -> World:
    """Two seeded, materialized tenants of the same shape (tests/support.py, World)."""
    with psycopg.connect(db_url) as conn:
        acme = seed_tenant(conn, "acme")
        other = seed_tenant(conn, "other")
        materialize(conn, "acme", "other")
    return World(db_url, today_in_zone() + timedelta(days=3), acme, other)
