"""Apply the numbered migrations of ``sql/migrations``: idempotent, and safe when several
processes run it at once (a session advisory lock serializes them; each migration commits
with its bookkeeping row, so a crash leaves a consistent prefix applied)."""

from __future__ import annotations

import logging

import psycopg

from slotmill.sql import migrations

log = logging.getLogger(__name__)

# Arbitrary constant: "slotmill migrate" in ASCII, folded into a bigint.
MIGRATION_LOCK_KEY = 0x736C6F746D696C6C


class MigrationError(RuntimeError):
    pass


def applied_versions(conn: psycopg.Connection[tuple[object, ...]]) -> dict[int, str]:
    exists = conn.execute("SELECT to_regclass('slotmill_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, checksum FROM slotmill_migrations").fetchall()
    return {int(str(v)): str(c) for v, c in rows}


def migrate(url: str) -> list[int]:
    """Bring the database at ``url`` to the current schema; returns the versions applied."""
    applied: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS slotmill_migrations (
                       version integer PRIMARY KEY,
                       name text NOT NULL,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = applied_versions(conn)
            for m in migrations():
                if m.version in done:
                    if done[m.version] != m.checksum:
                        raise MigrationError(
                            f"migration {m.version:04d}_{m.name} changed after it was applied; "
                            "migrations are forward-only: add a new one instead"
                        )
                    continue
                with conn.transaction():
                    conn.execute(m.sql.encode())  # bytes: a script, not a template with placeholders
                    conn.execute(
                        "INSERT INTO slotmill_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (m.version, m.name, m.checksum),
                    )
                log.info("applied migration %04d_%s", m.version, m.name)
                applied.append(m.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied


def current_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    done = applied_versions(conn)
    return max(done) if done else 0
