"""The waitlist (docs/architecture.md, "Events"): customers waiting for a time, and matching
slots that appear to them.

An entry names a service, optionally a staff member, local dates (inclusive, in the staff
member's zone) and optionally times of day. When a recompute makes slots appear (a
cancellation freed a time, a rule opened one), its ``slots.changed`` event is marked for
the waitlist; :func:`match_pending` looks at it: each visible slot in its range goes to the
oldest waiting entry it fits that was never told about it, one slot per entry per event,
with a ``waitlist.matched`` event. With the tenant setting ``waitlist_auto_hold`` the slot
is also held for the entry (``hold_ttl_seconds``, session ``waitlist:<entry id>``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

import orjson
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from psycopg.types.range import Range

from slotmill.materializer.bookings import BookingError, HoldRequest, hold_in_transaction
from slotmill.materializer.horizon import format_instant
from slotmill.materializer.loader import Conn
from slotmill.sql import owned_by

Q = owned_by(__name__)

CANDIDATE_LIMIT = 5000
_RANGE = re.compile(r"\[(\d+),(\d+)\)")


@dataclass(frozen=True, slots=True)
class Created:
    no_tenant: bool
    no_service: bool
    no_staff: bool
    no_location: bool
    id: UUID | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class Entry:
    id: UUID
    service_id: UUID
    staff_id: UUID | None
    from_date: date
    to_date: date
    time_windows: str | None
    contact_ref: str | None
    contact: dict[str, Any] | None
    location_id: UUID | None
    status: str
    created_at: datetime
    ended_at: datetime | None
    matches: int

    def as_json(self, *, contact: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(self.id),
            "service_id": str(self.service_id),
            "staff_id": None if self.staff_id is None else str(self.staff_id),
            "location_id": None if self.location_id is None else str(self.location_id),
            "from": self.from_date.isoformat(),
            "to": self.to_date.isoformat(),
            "times": windows_out(self.time_windows),
            "status": self.status,
            "created_at": format_instant(self.created_at),
            "ended_at": None if self.ended_at is None else format_instant(self.ended_at),
            "matches": self.matches,
        }
        if contact:
            out["contact_ref"] = self.contact_ref
            out["contact"] = self.contact
        return out


def windows_in(times: list[tuple[int, int]] | None) -> str | None:
    """Times of day as minutes after midnight ``[(start, end), ...]`` -> an int4multirange
    literal (None: any time)."""
    if not times:
        return None
    return "{" + ",".join(str(Range(a, b, "[)")) for a, b in times) + "}"


def windows_out(text: str | None) -> list[dict[str, str]] | None:
    """An int4multirange's text (``{[540,720),[780,1020)}``) as times of day."""
    if not text:
        return None
    return [{"start": _hhmm(int(a)), "end": _hhmm(int(b))} for a, b in _RANGE.findall(text)]


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def create_entry(
    conn: Conn,
    *,
    slug: str,
    service_id: UUID,
    staff_id: UUID | None,
    from_date: date,
    to_date: date,
    times: list[tuple[int, int]] | None,
    contact_ref: str | None,
    contact: dict[str, Any] | None = None,
    location_id: UUID | None = None,
) -> Created:
    with conn.cursor(row_factory=class_row(Created)) as cur:
        row = cur.execute(
            Q["create_entry"],
            {
                "slug": slug,
                "service_id": service_id,
                "staff_id": staff_id,
                "from_date": from_date,
                "to_date": to_date,
                "time_windows": windows_in(times),
                "contact_ref": contact_ref,
                "contact": None if contact is None else Jsonb(contact),
                "location_id": location_id,
            },
        ).fetchone()
    assert row is not None
    return row


def list_entries(
    conn: Conn, tenant_id: UUID, *, status: str | None = "waiting", entry_id: UUID | None = None, limit: int = 500
) -> list[Entry]:
    with conn.cursor(row_factory=class_row(Entry)) as cur:
        return cur.execute(
            Q["list_entries"], {"tenant_id": tenant_id, "status": status, "entry_id": entry_id, "limit": limit}
        ).fetchall()


def cancel_entry(conn: Conn, tenant_id: UUID, entry_id: UUID) -> Entry | None:
    """A waiting entry ends (None: no such entry). Ending one that has ended is a no-op."""
    conn.execute(Q["cancel_entry"], {"tenant_id": tenant_id, "entry_id": entry_id})
    found = list_entries(conn, tenant_id, status=None, entry_id=entry_id, limit=1)
    return found[0] if found else None


def expire_entries(conn: Conn) -> int:
    """Entries past their last date end as expired; how many (own transaction)."""
    with conn.transaction():
        return int(conn.execute(Q["expire_entries"]).rowcount)


def match_pending(conn: Conn, *, max_events: int = 50) -> int:
    """Look at the slots.changed events the waitlist has not seen, one transaction each;
    how many entries were told about a slot."""
    told = 0
    for _ in range(max_events):
        with conn.transaction():
            with conn.cursor(row_factory=dict_row) as cur:
                ev = cur.execute(Q["claim_match_event"]).fetchone()
            if ev is None:
                break
            told += _match_event(conn, ev["tenant_id"], ev["data"])
            conn.execute(Q["match_done"], {"tenant_id": ev["tenant_id"], "event_id": ev["id"]})
    return told


def _match_event(conn: Conn, tenant_id: UUID, data: dict[str, Any]) -> int:
    conn.execute(Q["lock_tenant_waitlist"], {"tenant_id": tenant_id})
    with conn.cursor(row_factory=dict_row) as cur:
        candidates = cur.execute(
            Q["match_candidates"],
            {
                "tenant_id": tenant_id,
                "service_ids": data.get("service_ids") or [],
                "staff_ids": data.get("staff_ids") or [],
                "lo": data["from"],
                "hi": data["to"],
                "limit": CANDIDATE_LIMIT,
            },
        ).fetchall()
    told: set[UUID] = set()
    gone: set[str] = set()
    for c in candidates:
        if c["entry_id"] in told or c["slot_id"] in gone:
            continue
        hold_id = hold_expires = None
        if c["auto_hold"]:
            try:
                held = hold_in_transaction(
                    conn, HoldRequest(c["slug"], slot_id=c["slot_id"], session_id=f"waitlist:{c['entry_id']}")
                )
            except BookingError:
                held = None
            if held is None:
                gone.add(c["slot_id"])  # taken meanwhile: the next slot, for the same entry
                continue
            h = orjson.loads(held)
            hold_id, hold_expires = h["hold_id"], h["expires_at"]
        params = {**c, "tenant_id": tenant_id, "hold_id": hold_id, "hold_expires_at": hold_expires}
        conn.execute(Q["record_match"], params)
        told.add(c["entry_id"])
        gone.add(c["slot_id"])
    return len(told)
