"""The per-staff advisory lock: the protocol is declared once, in sql/schema.sql (section
"Locks"); this module is the Python side's one way to take it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

import psycopg

from slotmill.sql import owned_by

Q = owned_by(__name__)


def lock_staff(conn: psycopg.Connection[Any], tenant_id: UUID, staff_ids: Iterable[UUID]) -> None:
    """Take the transaction-level locks of ``staff_ids`` (sorted, so two lockers of
    overlapping sets never deadlock). Released at commit or rollback."""
    conn.execute(Q["lock_staff"], {"tenant_id": tenant_id, "staff_ids": sorted(set(staff_ids))})


def try_lock_staff(conn: psycopg.Connection[Any], tenant_id: UUID, staff_ids: Iterable[UUID]) -> set[UUID]:
    """Take the locks of ``staff_ids`` that are free, without waiting; the ids locked.

    Holding several staff locks while waiting for one more is how a recompute deadlocks with
    a host transaction that writes bookings of several staff members in another order; a
    caller of many staff members uses this and leaves the rest for later."""
    rows = conn.execute(Q["try_lock_staff"], {"tenant_id": tenant_id, "staff_ids": sorted(set(staff_ids))})
    return {r[0] for r in rows.fetchall()}
