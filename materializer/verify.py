"""Compare the slot table with a full recomputation (SPEC §8: at quiescence they are equal)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from slotmill.materializer.horizon import from_epoch, to_epoch
from slotmill.materializer.loader import Conn, Tenant, load_rules
from slotmill.materializer.refresh import compute, slot_rows
from slotmill.sql import owned_by

Q = owned_by(__name__)

# (staff_id, service_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free)
# by slot id
SlotKey = tuple[Any, ...]


@dataclass
class Drift:
    missing: list[tuple[str, SlotKey]] = field(default_factory=list)
    unexpected: list[tuple[str, SlotKey]] = field(default_factory=list)
    changed: list[tuple[str, SlotKey, SlotKey]] = field(default_factory=list)
    expected_count: int = 0
    actual_count: int = 0
    # Staff members whose rules cannot be computed, with why: their slots are not compared.
    failed: dict[UUID, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.missing) + len(self.unexpected) + len(self.changed)


def verify(conn: Conn, tenant: Tenant, *, staff_ids: list[UUID] | None = None, now: int | None = None) -> Drift:
    """Recompute the tenant's horizon in memory and diff it against the table, in one
    repeatable-read snapshot so a concurrent write cannot show up as drift."""
    now = int(time.time()) if now is None else now
    horizon = tenant.horizon(now)
    conn.commit()
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    try:
        rules = load_rules(conn, tenant, staff_ids=staff_ids, lo=horizon.start, hi=horizon.end, now=now)
        expected: dict[str, SlotKey] = {}
        computed, failed = compute(rules, horizon.start, horizon.end)
        for slots in computed.values():
            for row in slot_rows(tenant.id, slots):
                expected[row[1]] = _key(row[2:], now)
        with conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                Q["read_window"],
                {
                    "tenant_id": tenant.id,
                    "staff_ids": staff_ids,
                    "lo": from_epoch(horizon.start),
                    "hi": datetime(9999, 1, 1, tzinfo=UTC),  # everything ahead: beyond the horizon is drift too
                },
            ).fetchall()
    finally:
        conn.rollback()
    actual = {
        r["id"]: _key(
            (
                r["staff_id"],
                r["service_id"],
                r["location_id"],
                r["starts_at"],
                r["ends_at"],
                r["held_until"],
                r["seats_left"],
                r["resource_free"],
            ),
            now,
        )
        for r in rows
        if r["staff_id"] not in failed
    }
    drift = Drift(expected_count=len(expected), actual_count=len(actual), failed=failed)
    for sid, key in expected.items():
        got = actual.get(sid)
        if got is None:
            drift.missing.append((sid, key))
        elif got != key:
            drift.changed.append((sid, key, got))
    drift.unexpected = [(sid, key) for sid, key in actual.items() if sid not in expected]
    return drift


def _key(values: tuple[Any, ...], now: int) -> SlotKey:
    staff_id, service_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free = values
    # A hold that has lapsed hides nothing, whether or not its mark is still in the table.
    held = to_epoch(held_until) if held_until is not None else None
    if held is not None and held <= now:
        held = None
    return (staff_id, service_id, location_id, to_epoch(starts_at), to_epoch(ends_at), held, seats_left, resource_free)
