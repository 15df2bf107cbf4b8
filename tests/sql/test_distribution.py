"""What running slotmill on a distributed PostgreSQL (Citus) or behind PgBouncer needs from
the schema and the API, checked (docs/operations.md, "Distributed PostgreSQL (Citus)" and
"PgBouncer").

- Every primary key, unique and exclusion constraint starts with tenant_id, so each table can
  be distributed by tenant_id and every constraint is enforced within one shard. ``tenants``
  is the exception by design: keyed by ``id`` (``tenant_id`` is a generated copy of it), a
  reference table under Citus. The migration runner's own table has no tenant at all.
- The API keeps no session state on its connections (a pooler in transaction mode hands
  each transaction to any server session): no plain SET, no LISTEN, no session advisory
  locks, no session-wide set_config in anything the API runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg

from slotmill.sql import QUERIES_DIR, query_files

ROOT = Path(__file__).resolve().parents[2]

# Keyed otherwise on purpose (see the module docstring and docs/operations.md).
NOT_BY_TENANT = {"tenants", "slotmill_migrations"}


def keys(conn: psycopg.Connection[Any]) -> list[tuple[str, str, str, list[str]]]:
    """(table, constraint or index, kind, columns) of every primary key, unique and
    exclusion constraint, and every unique index, of the public schema."""
    return [
        (str(t), str(n), str(k), list(cols))
        for t, n, k, cols in conn.execute(
            """
            SELECT c.conrelid::regclass::text, c.conname, c.contype::text,
                   array_agg(a.attname::text ORDER BY k.ord)
              FROM pg_constraint c
              JOIN pg_namespace ns ON ns.oid = c.connamespace AND ns.nspname = 'public'
             CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
              JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             WHERE c.contype IN ('p', 'u', 'x')
             GROUP BY 1, 2, 3
            UNION ALL
            SELECT i.indrelid::regclass::text, i.indexrelid::regclass::text, 'index',
                   array_agg(coalesce(a.attname::text, '(expression)') ORDER BY k.ord)
              FROM pg_index i
              JOIN pg_class r ON r.oid = i.indrelid
              JOIN pg_namespace ns ON ns.oid = r.relnamespace AND ns.nspname = 'public'
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
              LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
             WHERE i.indisunique
               AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.indexrelid)
             GROUP BY 1, 2, 3
             ORDER BY 1, 2
            """
        ).fetchall()
    ]


def test_every_key_unique_and_exclusion_constraint_starts_with_tenant_id(conn: psycopg.Connection[Any]) -> None:
    found = keys(conn)
    tables = {t for t, *_ in found}
    assert {"bookings", "availability_slots", "api_keys", "booking_resources"} <= tables  # the scan works
    assert any(k == "x" for _, _, k, _ in found)  # exclusion constraints are in it
    wrong = [(t, n, cols) for t, n, _, cols in found if t not in NOT_BY_TENANT and cols[0] != "tenant_id"]
    assert not wrong, f"these would not be enforceable within one tenant's shard: {wrong}"


def test_the_tables_keyed_otherwise_are_the_expected_ones(conn: psycopg.Connection[Any]) -> None:
    tenant_cols = dict(
        conn.execute(
            "SELECT attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attribute a"
            " JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = 'tenants'::regclass AND a.attname = 'tenant_id'"
        ).fetchall()
    )
    assert tenant_cols == {"tenant_id": "id"}  # generated as id: the same value as everywhere else
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') ORDER BY 1"
        )
    ]
    without = [
        t
        for t in tables
        if not conn.execute(
            "SELECT 1 FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'tenant_id'", (t,)
        ).fetchone()
    ]
    assert without == ["slotmill_migrations"]


# Session state a transaction-mode pooler would leak from one client to the next.
_SESSION_STATE = [
    # A statement that is a SET (not an UPDATE's SET clause): each block is one statement.
    (re.compile(r"\A\s*SET\s+(?!LOCAL\b|TRANSACTION\b)", re.IGNORECASE), "a session-wide SET"),
    (re.compile(r"\bLISTEN\b"), "LISTEN"),
    (re.compile(r"\bpg_(try_)?advisory_lock(_shared)?\s*\("), "a session advisory lock"),
    (re.compile(r"set_config\([^)]*,\s*false\s*\)", re.IGNORECASE), "a session-wide set_config"),
]
# Whose statements the API runs: its own modules, and the booking lifecycle and the
# refresh it calls (admin recalculate with wait; host confirm, cancel, reschedule).
_API_OWNERS = ("slotmill.api.", "slotmill.materializer.")


def test_nothing_the_api_runs_keeps_session_state() -> None:
    problems = []
    for owner, q in query_files().items():
        if not owner.startswith(_API_OWNERS):
            continue
        for name, text in q.statements.items():
            body = "\n".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("--"))
            problems += [f"{q.file}:{name}: {what}" for rx, what in _SESSION_STATE if rx.search(body)]
    for path in sorted((ROOT / "api").glob("*.py")) + sorted((ROOT / "materializer").glob("*.py")):
        code = "\n".join(ln for ln in path.read_text().splitlines() if not ln.lstrip().startswith("#"))
        for literal in re.findall(r'"((?:SET|LISTEN|SELECT)[^"]*)"', code):
            problems += [f"{path.name}: {what}: {literal!r}" for rx, what in _SESSION_STATE if rx.search(literal)]
    # The event hub's LISTEN is on a connection of its own, never the pool's, and behind
    # PgBouncer it is not made at all (the hub polls): see the test below.
    problems.remove("events.py: LISTEN: 'LISTEN {CHANNEL}'")
    assert QUERIES_DIR.is_dir()
    assert not problems, problems


def test_behind_pgbouncer_the_event_hub_polls_instead_of_listening() -> None:
    from slotmill.api.events import EventHub
    from slotmill.config import Settings

    pool: Any = None
    assert EventHub.from_settings("x", pool, Settings(api_pgbouncer=True)).poll_s is not None
    assert EventHub.from_settings("x", pool, Settings(api_pgbouncer=False)).poll_s is None
