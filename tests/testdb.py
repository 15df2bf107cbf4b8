"""Test databases: resolve a server, keep a migrated template, clone it per test.

Order (SPEC §2): ``SLOTMILL_TEST_DATABASE_URL``; else testcontainers when a Docker engine
answers; else the embedded server. Isolation is by ``CREATE DATABASE ... TEMPLATE``, not by
rollback, because workers, LISTEN/NOTIFY and many connections are under test.
Test-only (never installed): `make bench-smoke` imports it from here too.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from slotmill.embedded import embedded_server
from slotmill.migrate import migrate
from slotmill.sql import migrations

_counter = itertools.count()
TEMPLATE_LOCK_KEY = 0x736C6F7474706C  # "slottpl"


def with_database(url: str, dbname: str) -> str:
    params = conninfo_to_dict(url)
    params["dbname"] = dbname
    return make_conninfo("", **params)


def docker_answers() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def resolve_server(home: Path) -> tuple[str, str, Callable[[], None]]:
    """(admin URL, description, cleanup) of the server tests run against."""
    explicit = os.environ.get("SLOTMILL_TEST_DATABASE_URL")
    if explicit:
        return explicit, "SLOTMILL_TEST_DATABASE_URL", lambda: None
    if docker_answers():
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:16-alpine", driver=None)
        container.start()
        return container.get_connection_url(), "testcontainers", container.stop
    server = embedded_server(home, durable=False, name="test-pgdata")
    return server.uri("postgres"), f"embedded PostgreSQL ({server.pgdata})", server.stop


def template_name() -> str:
    digest = hashlib.sha256("".join(m.checksum for m in migrations()).encode()).hexdigest()[:12]
    return f"slotmill_tpl_{digest}"


def ensure_template(admin_url: str) -> str:
    """A database with every migration applied, created once per schema version."""
    name = template_name()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (TEMPLATE_LOCK_KEY,))
        try:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                building = f"{name}_build"
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(building)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(building)))
                migrate(with_database(admin_url, building))
                # Renamed only when complete: a crash mid-way never leaves a half template.
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name))
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (TEMPLATE_LOCK_KEY,))
    return name


def create_test_database(admin_url: str, template: str) -> str:
    name = f"slotmill_t{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        for attempt in range(50):
            try:
                conn.execute(
                    sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
                )
                break
            except psycopg.errors.ObjectInUse:
                # another process is cloning or building the template right now
                time.sleep(0.1 * (attempt + 1))
        else:
            raise RuntimeError(f"template {template} stayed busy")
    return with_database(admin_url, name)


def drop_test_database(admin_url: str, url: str) -> None:
    name = conninfo_to_dict(url)["dbname"]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))
