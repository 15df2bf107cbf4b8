"""The benchmark's database: a dedicated one, created fresh and migrated for each run.

Server: ``--server-url``, else the server of ``DATABASE_URL``, else the embedded PostgreSQL
(``slotmill.db.resolve_database_url``). Where the role may not create databases, the
``DATABASE_URL`` database itself is used (migrated; the benchmark's tenants are replaced).
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from slotmill.migrate import migrate
from tests.testdb import with_database

Conn = psycopg.Connection[Any]


@dataclass
class BenchDatabase:
    url: str
    how: str
    drop: Callable[[], None]


def _admin_url(server_url: str | None) -> tuple[str, str]:
    if server_url:
        return server_url, "--server-url"
    env = os.environ.get("DATABASE_URL")
    if env:
        return env, "DATABASE_URL's server"
    from slotmill.db import resolve_database_url

    return with_database(resolve_database_url(), "postgres"), "embedded PostgreSQL"


def open_bench_database(server_url: str | None, name: str, *, keep: bool) -> BenchDatabase:
    admin, how = _admin_url(server_url)
    try:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.errors.InsufficientPrivilege:
        if server_url or not os.environ.get("DATABASE_URL"):
            raise
        url = os.environ["DATABASE_URL"]
        migrate(url)
        with psycopg.connect(url) as conn:
            ids = conn.execute("SELECT id FROM tenants WHERE slug LIKE 'bench%%'").fetchall()
            for (tid,) in ids:
                for table in ("bookings", "availability_slots", "recompute_requests"):
                    conn.execute(
                        sql.SQL("DELETE FROM {} WHERE tenant_id = %s").format(sql.Identifier(table)),
                        (tid,),
                    )
                conn.execute("DELETE FROM tenants WHERE id = %s", (tid,))
        return BenchDatabase(url, "DATABASE_URL (no CREATE DATABASE privilege)", lambda: None)
    url = with_database(admin, name)
    migrate(url)

    def drop() -> None:
        if keep:
            return
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return BenchDatabase(url, f"database {name} on {how}", drop)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(conn: Conn) -> dict[str, Any]:
    settings = {
        name: conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone()[0]  # type: ignore[index]
        for name in (
            "server_version",
            "shared_buffers",
            "fsync",
            "synchronous_commit",
            "max_connections",
        )
    }
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=5)
        wrk_version = (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else ""
    except (OSError, subprocess.TimeoutExpired):
        wrk_version = ""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "postgresql": settings.pop("server_version"),
        "postgresql_settings": settings,
        "wrk": wrk_version,
        "platform": platform.platform(),
    }
