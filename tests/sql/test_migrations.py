"""The migrations, proven: sql/schema.sql declares what they build, an applied migration
never changes, and a database migrated at any earlier commit upgrades to the current schema.
"""

from __future__ import annotations

import difflib
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from slotmill.materializer.slot_ids import slot_id
from slotmill.migrate import EDITED_MIGRATIONS, MigrationError, edited_migration, migrate
from slotmill.sql import SQL_DIR, migrations
from tests import migration_history as history
from tests.catalog import catalog_diff, read_catalog
from tests.testdb import drop_test_database, with_database

SCHEMA_SQL = SQL_DIR / "schema.sql"
REPAIR_VERSION = 6

_counter = itertools.count()


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """An empty database of this test's own (not a clone of the migrated template)."""
    name = f"slotmill_m{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    try:
        yield url
    finally:
        drop_test_database(admin_url, url)


def run_script(url: str, text: str) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(text.encode())  # bytes: a script, not a template with placeholders


def apply_as_old_runner(url: str, texts: list[history.Text]) -> None:
    """What `slotmill migrate` did at the commit these texts come from: its table, and each
    text in version order, recorded with its checksum."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            """CREATE TABLE slotmill_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        for t in texts:
            with conn.transaction():
                conn.execute(t.sql.encode())
                conn.execute(
                    "INSERT INTO slotmill_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (t.version, t.name, t.checksum),
                )


def fail_on_diff(expected_url: str, expected_name: str, other_url: str, other_name: str, advice: str) -> None:
    diff = catalog_diff(read_catalog(expected_url), read_catalog(other_url), expected_name, other_name)
    if diff:
        pytest.fail(f"{diff}\n\n{advice}", pytrace=False)


# -- sql/schema.sql ---------------------------------------------------------------------------


def test_schema_sql_declares_what_the_migrations_build(pg_admin_url: str, db_url: str) -> None:
    with scratch_database(pg_admin_url) as declared:
        run_script(declared, SCHEMA_SQL.read_text())
        fail_on_diff(
            db_url,
            "sql/migrations",
            declared,
            "sql/schema.sql",
            "sql/schema.sql must declare exactly what sql/migrations build: a migration that "
            "changes the schema changes sql/schema.sql in the same commit (- lines: what the "
            "migrations make; + lines: what sql/schema.sql says).",
        )


# -- applied migrations never change ----------------------------------------------------------


def _require_history() -> None:
    reason = history.unavailable()
    if reason:
        pytest.skip(reason)


def test_applied_migrations_never_change() -> None:
    """Every text a migration file ever had in HEAD's history is its text now, unless it is
    one of the grandfathered EDITED_MIGRATIONS. A working-tree edit counts too."""
    _require_history()
    current = {f"sql/migrations/{m.version:04d}_{m.name}.sql": m for m in migrations()}
    problems: list[str] = []
    for path in history.paths_ever():
        now = current.get(path)
        if now is None:
            problems.append(f"{path} was deleted; databases that applied it still have it")
            continue
        for commit, text in history.versions_of(path):
            if text is None or text == now.sql:
                continue
            old = history.Text(path, now.version, now.name, text)
            if edited_migration(old.version, old.checksum) is not None:
                continue
            then = f"{path} at {history.short(commit)}"
            diff = difflib.unified_diff(text.splitlines(), now.sql.splitlines(), then, f"{path} now", lineterm="")
            problems.append(
                f"{path} changed after commit {history.short(commit)} had it "
                f"(checksum then {old.checksum[:12]}, now {now.checksum[:12]}). A database "
                "migrated at that commit recorded the old checksum and `slotmill migrate` would refuse it.\n"
                f"  Migrations are forward-only: restore it (git checkout {history.short(commit)} -- {path}) and "
                "put the change in a new numbered migration and in sql/schema.sql. (A migration still on an "
                "unmerged branch, which no database can have run, may instead be fixed in the commit that added "
                "it.)\n" + "\n".join(f"    {line}" for line in itertools.islice(diff, 40))
            )
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def test_grandfathered_texts_are_the_texts_history_had() -> None:
    """EDITED_MIGRATIONS names real texts: each checksum is its file's text at its commit."""
    _require_history()
    paths = {m.version: f"sql/migrations/{m.version:04d}_{m.name}.sql" for m in migrations()}
    for e in EDITED_MIGRATIONS:
        text = history.git("show", f"{e.commit}:{paths[e.version]}")
        assert history.Text(paths[e.version], e.version, "", text).checksum == e.checksum, e
        assert e.superseded_by in paths, f"{e}: no migration {e.superseded_by}"


def test_migrate_refuses_an_edit_it_does_not_know(db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("UPDATE slotmill_migrations SET checksum = repeat('0', 64) WHERE version = 3")
    with pytest.raises(MigrationError, match=r"0003_api changed after it was applied .*add a new one"):
        migrate(db_url)


# -- the repair: a database of any earlier commit upgrades --------------------------------------


T0 = datetime(2030, 3, 4, 9, 0, tzinfo=UTC)


def _seed(url: str) -> dict[str, Any]:
    """A slot and a booking, in SQL every earlier schema accepts."""
    with psycopg.connect(url) as conn:
        tenant = _one(conn, "INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id")
        staff = _one(conn, "INSERT INTO staff (tenant_id, display_name) VALUES (%s, 'Ann') RETURNING id", tenant)
        service = _one(
            conn, "INSERT INTO services (tenant_id, name, duration_minutes) VALUES (%s, 'Cut', 30) RETURNING id", tenant
        )
        conn.execute(
            "INSERT INTO staff_services (tenant_id, staff_id, service_id) VALUES (%s, %s, %s)", (tenant, staff, service)
        )
        sid = slot_id(tenant, staff, service, int(T0.timestamp()))
        conn.execute(
            "INSERT INTO availability_slots (tenant_id, id, staff_id, service_id, starts_at, ends_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (tenant, sid, staff, service, T0, T0 + timedelta(minutes=30)),
        )
        conn.execute(
            "INSERT INTO bookings (tenant_id, staff_id, service_id, starts_at, ends_at, status)"
            " VALUES (%s, %s, %s, %s, %s, 'confirmed')",
            (tenant, staff, service, T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=30)),
        )
    return {"tenant": tenant, "staff": staff, "service": service, "slot_id": sid}


def _one(conn: psycopg.Connection[Any], query: str, *params: Any) -> UUID:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def _history_states() -> list[Any]:
    reason = history.unavailable()
    if reason:
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-history")]
    return [pytest.param(c, id=history.short(c)) for c in history.commits_changing_migrations()]


@pytest.mark.parametrize("commit", _history_states())
def test_a_database_migrated_at_any_commit_upgrades(commit: str, pg_admin_url: str, db_url: str) -> None:
    """A database migrated at ``commit`` has exactly that commit's migration texts, recorded
    with their checksums. Today's `migrate` must accept it and leave the schema a fresh
    database has, keeping its rows. (Every commit, not just "the first texts of
    0001..0005": the first 0005 never ran on the first 0001, which lacks what it builds on.)"""
    texts = history.texts_at(commit)
    current = {m.version: m for m in migrations()}
    with scratch_database(pg_admin_url) as url:
        apply_as_old_runner(url, texts)
        seeded = _seed(url)

        applied = migrate(url)

        assert applied == sorted(current.keys() - {t.version for t in texts})
        fail_on_diff(
            db_url,
            "a fresh database",
            url,
            f"a database migrated at {history.short(commit)}",
            f"A database migrated at {history.short(commit)} does not upgrade to the current schema: "
            f"repair it in a migration (see 0006_repair_edited_migrations.sql).",
        )
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version, checksum, superseded_by FROM slotmill_migrations").fetchall()
            for version, checksum, superseded_by in rows:
                edit = edited_migration(version, checksum)
                if edit is None:
                    assert (checksum, superseded_by) == (current[version].checksum, None), version
                else:
                    assert superseded_by == edit.superseded_by, version
            # the rows survived, and the slot id still decodes to its slot
            key = conn.execute(
                "SELECT staff_id, service_id, starts_at FROM slotmill_slot_key(%s, %s)",
                (seeded["tenant"], seeded["slot_id"]),
            ).fetchall()
            assert key == [(seeded["staff"], seeded["service"], T0)]
            assert conn.execute("SELECT count(*) FROM availability_slots").fetchone() == (1,)
            assert conn.execute("SELECT count(*) FROM bookings WHERE status = 'confirmed'").fetchone() == (1,)
        assert migrate(url) == []


def test_repair_changes_nothing_on_a_current_database(pg_admin_url: str) -> None:
    """0006 on a database that applied the current 0001..0005: the same catalog before and
    after, and running it again changes nothing either. (Later migrations replace some of
    the functions 0006 writes, slotmill_hold among them: 0006 is judged where it stands.)"""
    repair = next(m for m in migrations() if m.version == REPAIR_VERSION)
    with scratch_database(pg_admin_url) as url:
        run_script(url, "".join(m.sql + "\n" for m in migrations() if m.version < REPAIR_VERSION))
        before = read_catalog(url)
        run_script(url, repair.sql)
        diff = catalog_diff(before, read_catalog(url), "0001..0005", "0001..0006")
        assert not diff, diff
        run_script(url, repair.sql)
        diff = catalog_diff(before, read_catalog(url), "0001..0006", "0001..0006 + 0006 again")
        assert not diff, diff
