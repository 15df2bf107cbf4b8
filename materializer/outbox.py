"""The outbox of events (docs/architecture.md, "Events"): what changed, written in the
transaction that changed it, numbered per tenant once it has committed.

- Booking events come from triggers on ``bookings`` (migration 0010), so every writer is
  covered, a host's own SQL included; a rolled-back booking leaves no event.
- ``slots.changed`` comes from recomputes: :func:`watch_slots` is called before a window is
  replaced and a deferred trigger compares the window at commit, so one event is written
  per recompute window, and only if what a reader sees changed.
- :func:`sequence_events` numbers committed events (per-tenant ``seq``) and fans them out to
  webhook endpoints; the worker calls it a few times a second and on notification.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from slotmill.materializer.horizon import from_epoch
from slotmill.materializer.loader import Conn
from slotmill.sql import owned_by

Q = owned_by(__name__)

# Windows shorter than this (a targeted recompute: a few hundred rows) are fingerprinted
# before and after, so a recompute that rewrites the same slots reports nothing. Longer
# ones (a staff member's horizon, a full refresh) are reported as changed without reading
# the window twice: the nightly refresh rolls a new day in, so they nearly always are.
FINGERPRINT_MAX_S = 7 * 86_400
SEQUENCE_BATCH = 5000


def watch_slots(conn: Conn, tenant_id: UUID, staff_ids: list[UUID], lo: int, hi: int) -> None:
    """Call before replacing the slots of ``staff_ids`` starting in ``[lo, hi)``, in the
    same transaction: at its commit, one ``slots.changed`` event is written if the window
    changed (for the services whose slots changed)."""
    if not staff_ids or lo >= hi:
        return
    conn.execute(
        Q["watch_slots"],
        {
            "tenant_id": tenant_id,
            "staff_ids": staff_ids,
            "lo": from_epoch(lo),
            "hi": from_epoch(hi),
            "fingerprint": hi - lo < FINGERPRINT_MAX_S,
        },
    )


def sequence_events(conn: Conn, *, limit: int = SEQUENCE_BATCH) -> int:
    """Number committed events and queue their webhook deliveries, in a transaction of its
    own; how many were numbered (-1: another process is numbering right now)."""
    with conn.transaction():
        row = conn.execute(Q["sequence_events"], {"limit": limit}).fetchone()
    return int(str(row[0])) if row else 0


def prune_events(conn: Conn, before: datetime, *, limit: int = 10_000) -> int:
    """Delete events older than ``before`` (with their finished deliveries and attempts);
    how many events went."""
    with conn.transaction():
        return int(conn.execute(Q["prune_events"], {"before": before, "limit": limit}).rowcount)
