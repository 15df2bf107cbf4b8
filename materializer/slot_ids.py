"""Slot ids: opaque, deterministic, stable across recomputation (SPEC §3).

An id is derived from tenant, staff, service and start only, so recomputing a window
yields the same ids for the slots that survive. A full refresh makes ~300k ids, so the
hashing is done once per (tenant, staff, service) as a prefix and the start is appended
as plain hex: ``prefix (24 hex chars of sha256) + start minute (8 hex chars)``.
"""

from __future__ import annotations

from functools import lru_cache
from hashlib import sha256
from uuid import UUID

__all__ = ["slot_id", "slot_id_prefix"]


@lru_cache(maxsize=65536)
def slot_id_prefix(tenant_id: UUID, staff_id: UUID, service_id: UUID) -> str:
    """First 24 hex chars (96 bits) of sha256 over the three UUIDs' 16-byte forms.

    96 bits keep collisions between different (tenant, staff, service) triples out of
    reach while the id stays a short 32-character string.
    """
    return sha256(tenant_id.bytes + staff_id.bytes + service_id.bytes).hexdigest()[:24]


def slot_id(tenant_id: UUID, staff_id: UUID, service_id: UUID, starts_at: int) -> str:
    """The id of the slot of ``service_id`` with ``staff_id`` starting at ``starts_at``.

    Starts are whole minutes (durations, intervals and zone offsets are), so the minute
    number identifies the start; 8 hex digits last until the year 10136.
    """
    return f"{slot_id_prefix(tenant_id, staff_id, service_id)}{starts_at // 60:08x}"
