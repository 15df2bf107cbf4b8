"""``slotmill week``: what one staff member's week looks like, as the engine sees it: the
working windows of each local day (templates, overrides and holidays applied), the busy
ranges (time off, busy times and calendar feeds), and the bookings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from slotmill.materializer import engine
from slotmill.materializer.horizon import from_epoch, local_midnight
from slotmill.materializer.loader import Conn, Tenant, load_rules
from slotmill.materializer.model import BusyKind
from slotmill.sql import owned_by

Q = owned_by(__name__)


@dataclass(frozen=True)
class Entry:
    start: datetime  # local
    end: datetime
    what: str  # "work", "time off", "busy", "held", "confirmed"
    note: str


@dataclass(frozen=True)
class Week:
    staff_name: str
    zone: str
    monday: date
    days: dict[date, list[Entry]]
    error: str | None


def week_of(conn: Conn, tenant: Tenant, staff_id: UUID, day: date | None) -> Week | None:
    """The ISO week (Monday first, the staff member's zone) that holds ``day`` (today when
    None); None when the tenant has no such staff member."""
    row = conn.execute(Q["week_staff"], {"tenant_id": tenant.id, "staff_id": staff_id}).fetchone()
    if row is None:
        return None
    name, zone = row
    tz = ZoneInfo(zone)
    day = day or datetime.now(tz).date()
    monday = day - timedelta(days=day.isoweekday() - 1)
    lo, hi = local_midnight(monday, zone), local_midnight(monday + timedelta(days=7), zone)
    days: dict[date, list[Entry]] = {monday + timedelta(days=n): [] for n in range(7)}

    def put(start: int, end: int, what: str, note: str) -> None:
        s, e = from_epoch(start).astimezone(tz), from_epoch(end).astimezone(tz)
        if s.date() in days:
            days[s.date()].append(Entry(s, e, what, note))

    error = None
    # The horizon as if it were that Monday: the loader reads overrides and holidays of the
    # horizon's dates, so any week, past or far ahead, is seen whole.
    rules = load_rules(conn, tenant, staff_ids=[staff_id], lo=lo, hi=hi, now=lo)
    staff = rules.staff.get(staff_id)
    if staff is not None and staff.error:
        error = staff.error
    elif staff is not None:
        locations = dict(conn.execute(Q["week_locations"], {"tenant_id": tenant.id}).fetchall())
        for w in engine.merged_windows(staff.schedule, monday - timedelta(days=1), monday + timedelta(days=7)):
            if w.end > lo and w.start < hi:
                put(max(w.start, lo), min(w.end, hi), "work", locations.get(w.location_id, "") if w.location_id else "")
        for b in staff.schedule.busy:
            if b.kind is not BusyKind.BOOKED and b.end > lo and b.start < hi:
                put(max(b.start, lo), min(b.end, hi), "time off" if b.kind is BusyKind.TIME_OFF else "busy", "")
    bookings = conn.execute(
        Q["week_bookings"], {"tenant_id": tenant.id, "staff_id": staff_id, "lo": from_epoch(lo), "hi": from_epoch(hi)}
    ).fetchall()
    for starts, ends, status, service, customer in bookings:
        put(int(starts.timestamp()), int(ends.timestamp()), status, f"{service}{f' ({customer})' if customer else ''}")
    for entries in days.values():
        entries.sort(key=lambda e: (e.start, e.end, e.what))
    return Week(name, zone, monday, days, error)


def render(week: Week) -> list[str]:
    out = [
        f"{week.staff_name} ({week.zone}), week of {week.monday:%a %Y-%m-%d} to "
        f"{week.monday + timedelta(days=6):%a %Y-%m-%d}"
    ]
    if week.error:
        out.append(f"  rules cannot be computed: {week.error}")
    for day, entries in week.days.items():
        label = f"{day:%a %d %b}"
        if not entries:
            out.append(f"  {label}  -")
        for i, e in enumerate(entries):
            end = (
                f"{e.end:%H:%M}"
                if e.end.date() == e.start.date()
                else f"{e.end:%H:%M} (+{(e.end.date() - e.start.date()).days}d)"
            )
            note = f"  {e.note}" if e.note else ""
            out.append(
                f"  {label if i == 0 else ' ' * len(label)}  {e.start:%H:%M}-{end:<10} {e.what:<10}{note}".rstrip()
            )
    return out
