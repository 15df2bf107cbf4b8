"""Apply the numbered migrations of ``sql/migrations``: idempotent, and safe when several
processes run it at once (a session advisory lock serializes them; each migration commits
with its bookkeeping row, so a crash leaves a consistent prefix applied).

An applied migration must never change: its recorded checksum is compared with the file's.
The one exception is ``EDITED_MIGRATIONS``, below."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from slotmill.sql import Migration, migrations

log = logging.getLogger(__name__)

# Arbitrary constant: "slotmill migrate" in ASCII, folded into a bigint.
MIGRATION_LOCK_KEY = 0x736C6F746D696C6C

Conn = psycopg.Connection[tuple[object, ...]]


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class EditedMigration:
    """An earlier text of a migration that was edited after it landed."""

    version: int
    checksum: str  # sha256 of that text, as the runner recorded it
    commit: str  # the commit whose text it is
    superseded_by: int  # the migration that turns its effect into the current text's
    # SQL that later migrations need before `superseded_by` can run (run once, on acceptance)
    prepare: str = ""


# The first text of 0001 (86d7efb) had no slot id prefix function, and 0005 builds a
# generated column on it, so it must exist before 0005 runs; 0006 repairs the rest. The
# same definition as sql/migrations/0001_schema.sql (tests/sql/test_migrations.py compares).
_SLOT_ID_PREFIX = """
CREATE OR REPLACE FUNCTION slotmill_slot_id_prefix(p_tenant uuid, p_staff uuid, p_service uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(encode(sha256(uuid_send(p_tenant) || uuid_send(p_staff) || uuid_send(p_service)), 'hex'), 24)
$$;
"""

# Why these exist: 0001, 0003 and 0005 were edited in place after they had been committed
# (before tests/sql/test_migrations.py made that a failing test). A database migrated before an
# edit recorded the earlier checksum, and every later `migrate` refused it. These are the
# earlier texts, accepted by checksum; 0006_repair_edited_migrations brings such a database
# to what the current texts build. The list is closed: a new edit is a failing test, never
# a new entry here.
EDITED_MIGRATIONS: tuple[EditedMigration, ...] = (
    EditedMigration(
        1, "41af60c95515aa8d457deca8b100ee9938357039b2251c4b46fef98bbdc90354", "86d7efb", 6, _SLOT_ID_PREFIX
    ),
    EditedMigration(1, "961d75456ed31dd10093a72b1b0eb0895c2ea3d831031f8de6f510f752acc3e6", "d492eea", 6),
    EditedMigration(3, "81f3755aa75a10a8186e01319931510406b7873f3da779b1ea69c6e007913fcd", "dcd8916", 6),
    EditedMigration(5, "2a6be4665ddba00dc9439cb14b48751009b90cefa51d38acf381a2e42509b9b1", "efd0da1", 6),
)


def edited_migration(version: int, checksum: str) -> EditedMigration | None:
    for e in EDITED_MIGRATIONS:
        if e.version == version and e.checksum == checksum:
            return e
    return None


def applied_versions(conn: Conn) -> dict[int, str]:
    exists = conn.execute("SELECT to_regclass('slotmill_migrations') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return {}
    rows = conn.execute("SELECT version, checksum FROM slotmill_migrations").fetchall()
    return {int(str(v)): str(c) for v, c in rows}


def _bookkeeping(conn: Conn) -> None:
    conn.execute(
        """CREATE TABLE IF NOT EXISTS slotmill_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               checksum text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now(),
               superseded_by integer)"""
    )
    # Tables made by earlier runners lack superseded_by. Looked up first so that a current
    # database takes no exclusive lock on the table readiness checks read.
    has = conn.execute(
        "SELECT 1 FROM pg_attribute WHERE attrelid = 'slotmill_migrations'::regclass"
        " AND attname = 'superseded_by' AND NOT attisdropped"
    ).fetchone()
    if not has:
        conn.execute("ALTER TABLE slotmill_migrations ADD COLUMN IF NOT EXISTS superseded_by integer")


def _accept_edited(conn: Conn, m: Migration, edit: EditedMigration) -> None:
    """A database that applied ``edit``'s text of ``m``: record, once, which migration
    supersedes it (and prepare what the migrations in between need)."""
    row = conn.execute("SELECT superseded_by FROM slotmill_migrations WHERE version = %s", (m.version,)).fetchone()
    if row is not None and row[0] is not None:
        return
    with conn.transaction():
        if edit.prepare:
            conn.execute(edit.prepare.encode())
        conn.execute(
            "UPDATE slotmill_migrations SET superseded_by = %s WHERE version = %s", (edit.superseded_by, m.version)
        )
    log.warning(
        "migration %04d_%s was applied from its text of commit %s, edited since; %04d repairs it",
        m.version,
        m.name,
        edit.commit,
        edit.superseded_by,
    )


def migrate(url: str) -> list[int]:
    """Bring the database at ``url`` to the current schema; returns the versions applied."""
    applied: list[int] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            _bookkeeping(conn)
            done = applied_versions(conn)
            for m in migrations():
                if m.version in done:
                    if done[m.version] != m.checksum:
                        edit = edited_migration(m.version, done[m.version])
                        if edit is None:
                            raise MigrationError(
                                f"migration {m.version:04d}_{m.name} changed after it was applied "
                                f"(database has checksum {done[m.version][:12]}, this build "
                                f"{m.checksum[:12]}); migrations are forward-only: add a new one instead"
                            )
                        _accept_edited(conn, m, edit)
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


def current_version(conn: Conn) -> int:
    done = applied_versions(conn)
    return max(done) if done else 0
