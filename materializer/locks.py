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
