"""A benchmark tenant: N staff in a few zones, realistic weekly rules, ~40 % booked, and the
capacity rules in use: a group class sold by the seat that needs a studio (two per
location), daily booking limits on a quarter of the staff (set to their busiest day, so
those days are full), and travel time between each city's two branches, where a fifth of
the staff work on Saturdays.

Every id is made here, so each table is written with one COPY (the host application's
tables, triggers and all, exactly as a bulk import would write them). The rows' triggers
enqueue recompute work for everything written; the benchmark materializes on its own
terms, so that queue is cleared at the end.

Bookings are placed on the engine's own working windows (``merged_windows``) and on each
service's grid, with the conflict rule's buffers respected, so cancelling one frees real
slots and the exclusion constraint never refuses a row.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql

from slotmill.materializer.engine import merged_windows
from slotmill.materializer.horizon import Horizon, horizon_for, local_midnight, window_dates
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    HolidayRule,
    OverrideRule,
    ServiceRule,
    StaffSchedule,
    TemplateRule,
)

Conn = psycopg.Connection[Any]

TENANT_ZONE = "Europe/London"
UTILISATION_TARGET = 0.40


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    duration: int
    interval: int
    before: int
    after: int
    seats: int = 1
    needs: str | None = None  # a resource kind, one of it


# (name, duration, interval, buffer before, buffer after), all minutes.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("Consultation", 30, 15, 0, 10),  # every staff member ("the 100-staff read")
    ServiceSpec("Treatment", 60, 30, 10, 10),  # exactly 20 staff ("any staff, 20 staff")
    ServiceSpec("Long session", 90, 30, 15, 15),
    ServiceSpec("Check-up", 45, 15, 5, 10),
    ServiceSpec("Workshop", 120, 60, 0, 15),
    ServiceSpec("Group class", 60, 60, 0, 15, seats=8, needs="studio"),  # the 20 staff, by the seat
)
GROUP_SERVICE = 5
STUDIOS_PER_LOCATION = 2
TRAVEL_MINUTES = 30
# Which services staff member i performs: the first always, then two of the others, so
# every staff member performs three services.
ALL_STAFF_SERVICE = 0
TWENTY_STAFF_SERVICE = 1
TWENTY = 20


def services_of(i: int) -> tuple[int, ...]:
    if i < TWENTY:
        return (0, 1, 2, GROUP_SERVICE)
    if i < 60 or i % 2 == 0:
        return (0, 2, 3)
    return (0, 3, 4)


# Weekly patterns: (ISO weekdays, start, end, at the second location?). Split shifts, late
# shifts, a Saturday at another branch, an early crew.
PATTERNS: tuple[tuple[tuple[tuple[int, ...], str, str, bool], ...], ...] = (
    (((1, 2, 3, 4, 5), "09:00", "13:00", False), ((1, 2, 3, 4, 5), "14:00", "18:00", False)),
    (((2, 3, 4, 5, 6), "10:00", "19:00", False),),
    (((1, 3, 5), "12:00", "20:00", False), ((4,), "12:00", "22:00", False)),
    (((1, 2, 3, 4), "07:00", "11:30", False), ((1, 2, 3, 4), "12:30", "15:00", False)),
    (((1, 2, 3, 4, 5), "16:00", "22:00", False), ((6,), "09:00", "14:00", True)),
)

# (name, zone or None for the tenant's), and a second branch in the same zone for each.
LOCATIONS: tuple[tuple[str, str | None], ...] = (
    ("London", None),
    ("London Bridge", None),
    ("New York", "America/New_York"),
    ("Brooklyn", "America/New_York"),
    ("Berlin", "Europe/Berlin"),
    ("Potsdam", "Europe/Berlin"),
)
STAFF_ZONE = "Asia/Kolkata"  # a few staff members carry a zone of their own


@dataclass
class Dataset:
    tenant_id: UUID
    slug: str
    zone: str
    horizon_days: int
    now: int
    horizon: Horizon
    staff_ids: list[UUID]
    service_ids: list[UUID]
    service_rules: dict[UUID, ServiceRule]
    staff_of_service: dict[UUID, list[UUID]]
    counts: dict[str, int] = field(default_factory=dict)
    utilisation: float = 0.0
    seconds: float = 0.0

    @property
    def service20(self) -> UUID:
        return self.service_ids[TWENTY_STAFF_SERVICE]

    @property
    def service_all(self) -> UUID:
        return self.service_ids[ALL_STAFF_SERVICE]

    @property
    def service20_group(self) -> UUID:
        """The group class with a studio the same 20 staff teach."""
        return self.service_ids[GROUP_SERVICE]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _rng(s: int, e: int) -> str:
    """A tstzrange literal for COPY's text format."""
    lo, hi = datetime.fromtimestamp(s, UTC), datetime.fromtimestamp(e, UTC)
    return f"[{lo.isoformat()},{hi.isoformat()})"


def _copy(conn: Conn, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(stmt) as cp:
        for row in rows:
            cp.write_row(row)


def place_bookings(
    rnd: random.Random,
    schedule: StaffSchedule,
    services: list[ServiceRule],
    first: date,
    last: date,
    lo: int,
    hi: int,
) -> tuple[list[tuple[UUID, int, int, UUID | None]], int, int]:
    """Confirmed bookings on the staff member's windows: (service, start, end, the window's
    location), booked and
    worked seconds. Walks each window, booking a random service at the next grid start
    that keeps the buffers clear, or leaving a gap."""
    out: list[tuple[UUID, int, int, UUID | None]] = []
    booked = worked = 0
    busy = sorted((b.start, b.end) for b in schedule.busy)
    for w in merged_windows(schedule, first, last):
        if w.end <= lo or w.start >= hi:
            continue
        worked += min(w.end, hi) - max(w.start, lo)
        free_from = max(w.start, lo)  # blocked ranges so far end at or before this
        while True:
            if rnd.random() >= 0.45:
                free_from += rnd.choice((15, 30, 45, 60)) * 60
                if free_from >= w.end:
                    break
                continue
            svc = rnd.choice(services)
            step, dur = svc.step_s, svc.duration_min * 60
            before, after = svc.buffer_before_min * 60, svc.buffer_after_min * 60
            k = -(-(free_from + before - w.start) // step)
            t = w.start + max(0, k) * step
            if t + dur > min(w.end, hi):
                break
            blo, bhi = t - before, t + dur + after
            if any(bs < bhi and be > blo for bs, be in busy):
                free_from = t + dur
                continue
            out.append((svc.id, t, t + dur, w.location_id))
            booked += dur
            free_from = bhi
    return out, booked, worked


def generate(
    conn: Conn,
    *,
    slug: str,
    staff: int,
    horizon_days: int = 60,
    seed: int = 1,
    now: int | None = None,
) -> Dataset:
    """Create tenant ``slug`` with ``staff`` staff members and commit; returns what the
    measurements need to know about it."""
    started = time.perf_counter()
    now = int(time.time()) if now is None else now
    rnd = random.Random(seed)
    u = uuid.UUID
    tenant_id = u(int=rnd.getrandbits(128), version=4)

    def new_id() -> UUID:
        return u(int=rnd.getrandbits(128), version=4)

    horizon = horizon_for(TENANT_ZONE, horizon_days, now)
    first, last = window_dates(horizon)
    today = horizon.today

    conn.execute(
        "INSERT INTO tenants (id, slug, name, timezone, horizon_days) VALUES (%s, %s, %s, %s, %s)",
        (tenant_id, slug, f"Benchmark {slug}", TENANT_ZONE, horizon_days),
    )
    loc_ids = [new_id() for _ in LOCATIONS]
    loc_zone = {lid: (z or TENANT_ZONE) for lid, (_, z) in zip(loc_ids, LOCATIONS, strict=True)}
    _copy(
        conn,
        "locations",
        ["tenant_id", "id", "name", "timezone"],
        [(tenant_id, lid, name, z) for lid, (name, z) in zip(loc_ids, LOCATIONS, strict=True)],
    )

    service_ids = [new_id() for _ in SERVICES]
    rules = {
        sid: ServiceRule(sid, s.duration, s.before, s.after, s.interval, seats=s.seats)
        for sid, s in zip(service_ids, SERVICES, strict=True)
    }
    _copy(
        conn,
        "services",
        [
            "tenant_id",
            "id",
            "name",
            "duration_minutes",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "slot_interval_minutes",
            "seats",
        ],
        [
            (tenant_id, sid, s.name, s.duration, s.before, s.after, s.interval, s.seats)
            for sid, s in zip(service_ids, SERVICES, strict=True)
        ],
    )
    _copy(
        conn,
        "service_resources",
        ["tenant_id", "id", "service_id", "kind", "quantity"],
        [(tenant_id, new_id(), sid, s.needs, 1) for sid, s in zip(service_ids, SERVICES, strict=True) if s.needs],
    )
    _copy(
        conn,
        "resources",
        ["tenant_id", "id", "location_id", "kind", "name"],
        [
            (tenant_id, new_id(), lid, "studio", f"Studio {k + 1}, {name}")
            for lid, (name, _) in zip(loc_ids, LOCATIONS, strict=True)
            for k in range(STUDIOS_PER_LOCATION)
        ],
    )
    # Each city's two branches are TRAVEL_MINUTES apart, both ways.
    _copy(
        conn,
        "location_travel",
        ["tenant_id", "id", "from_location_id", "to_location_id", "minutes"],
        [
            (tenant_id, new_id(), loc_ids[a], loc_ids[b], TRAVEL_MINUTES)
            for city in range(len(LOCATIONS) // 2)
            for a, b in ((2 * city, 2 * city + 1), (2 * city + 1, 2 * city))
        ],
    )

    staff_rows: list[tuple[Any, ...]] = []
    qual_rows: list[tuple[Any, ...]] = []
    tpl_rows: list[tuple[Any, ...]] = []
    ovr_rows: list[tuple[Any, ...]] = []
    hol_rows: list[tuple[Any, ...]] = []
    off_rows: list[tuple[Any, ...]] = []
    busy_rows: list[tuple[Any, ...]] = []
    book_rows: list[tuple[Any, ...]] = []
    staff_ids: list[UUID] = []
    staff_of_service: dict[UUID, list[UUID]] = {sid: [] for sid in service_ids}
    limits: dict[UUID, int] = {}

    tenant_holidays = [
        HolidayRule(today + timedelta(days=9), None, "Founders' Day"),
        HolidayRule(today + timedelta(days=min(38, horizon_days - 1)), None, "Bank holiday"),
        HolidayRule(date(today.year, 12, 25), "FREQ=YEARLY", "Christmas Day"),
    ]
    for h in tenant_holidays:
        hol_rows.append((tenant_id, new_id(), None, h.on_date, h.rrule, h.name))

    booked_total = worked_total = 0
    for i in range(staff):
        sid = new_id()
        staff_ids.append(sid)
        home = loc_ids[(i % 3) * 2]  # London, New York, Berlin in turn
        branch = loc_ids[(i % 3) * 2 + 1]
        own_zone = STAFF_ZONE if i % 25 == 24 else None
        zone = own_zone or loc_zone[home]
        staff_rows.append((tenant_id, sid, home, f"Staff {i:04d}", own_zone, 10 + (i * 37) % 90, True))
        my_services = [service_ids[k] for k in services_of(i)]
        for v in my_services:
            qual_rows.append((tenant_id, new_id(), sid, v))
            staff_of_service[v].append(sid)

        templates: list[TemplateRule] = []
        # Every seventh staff member changes pattern a month in: valid_until / valid_from.
        changes = i % 7 == 3
        switch = today + timedelta(days=min(30, horizon_days // 2))
        plans: list[tuple[int, date | None, date | None]] = [(i % len(PATTERNS), None, None)]
        if changes:
            plans = [
                (i % len(PATTERNS), None, switch - timedelta(days=1)),
                ((i + 1) % len(PATTERNS), switch, None),
            ]
        for pattern, vf, vu in plans:
            for days, start, end, at_branch in PATTERNS[pattern]:
                loc = branch if at_branch else None
                for wd in days:
                    t = TemplateRule(wd, _minutes(start), _minutes(end), loc, vf, vu)
                    templates.append(t)
                    tpl_rows.append((tenant_id, new_id(), sid, wd, f"{start}:00", f"{end}:00", loc, vf, vu))

        overrides: list[OverrideRule] = []
        if i % 10 == 3:  # covers a Sunday morning
            sunday = today + timedelta(days=(7 - today.isoweekday()) % 7 + 7)
            overrides.append(OverrideRule(sunday, True, 600, 840))
            ovr_rows.append(
                (
                    tenant_id,
                    new_id(),
                    sid,
                    sunday,
                    True,
                    "10:00:00",
                    "14:00:00",
                    None,
                    "Sunday cover",
                )
            )
        if i % 10 == 6:  # a dentist's appointment: three hours out of one day
            d = today + timedelta(days=3 + i % 11)
            overrides.append(OverrideRule(d, False, 720, 900))
            ovr_rows.append((tenant_id, new_id(), sid, d, False, "12:00:00", "15:00:00", None, "Appointment"))
        if i % 15 == 0:  # a whole day off
            d = today + timedelta(days=5 + i % 17)
            overrides.append(OverrideRule(d, False))
            ovr_rows.append((tenant_id, new_id(), sid, d, False, None, None, None, "Day off"))

        holidays = list(tenant_holidays)
        if i % 20 == 5:
            d = today + timedelta(days=(i * 7) % max(1, horizon_days))
            holidays.append(HolidayRule(d, None, "Personal day", tenant_wide=False))
            hol_rows.append((tenant_id, new_id(), sid, d, None, "Personal day"))

        busy: list[tuple[int, int]] = []
        if i % 10 == 1:  # three days of leave
            d = today + timedelta(days=14 + i % 20)
            s, e = local_midnight(d, zone), local_midnight(d + timedelta(days=3), zone)
            busy.append((s, e))
            off_rows.append((tenant_id, new_id(), sid, _rng(s, e), "Leave"))
        if i % 8 == 2:  # an external calendar entry
            d = today + timedelta(days=2 + i % 13)
            s = local_midnight(d, zone) + 11 * 3600
            busy.append((s, s + 2 * 3600))
            busy_rows.append((tenant_id, new_id(), sid, _rng(s, s + 7200), "calendar", f"evt-{i}"))

        schedule = StaffSchedule(
            staff_id=sid,
            zone=zone,
            location_id=home,
            templates=tuple(templates),
            overrides=tuple(overrides),
            holidays=tuple(holidays),
            busy=tuple(BusyRange(s, e, BusyKind.TIME_OFF) for s, e in busy),
        )
        placed, booked, worked = place_bookings(
            rnd,
            schedule,
            [rules[v] for v in my_services],
            first,
            last,
            max(horizon.start, now),
            horizon.end,
        )
        booked_total += booked
        worked_total += worked
        per_day: dict[date, int] = {}
        for v, s, e, where in placed:
            st, en = datetime.fromtimestamp(s, UTC), datetime.fromtimestamp(e, UTC)
            day = datetime.fromtimestamp(s, ZoneInfo(zone)).date()
            per_day[day] = per_day.get(day, 0) + 1
            book_rows.append(
                (
                    tenant_id,
                    new_id(),
                    sid,
                    v,
                    where or home,
                    st,
                    en,
                    "confirmed",
                    st - timedelta(days=3),
                    f"cust-{rnd.randrange(10**6)}",
                )
            )
        if i % 4 == 1 and per_day:
            # A daily limit at this staff member's busiest day: those days are full.
            limits[sid] = max(per_day.values())

    _copy(
        conn,
        "staff",
        ["tenant_id", "id", "location_id", "display_name", "timezone", "priority", "active", "max_bookings_per_day"],
        [(*r, limits.get(r[1])) for r in staff_rows],
    )
    _copy(conn, "staff_services", ["tenant_id", "id", "staff_id", "service_id"], qual_rows)
    _copy(
        conn,
        "availability_templates",
        [
            "tenant_id",
            "id",
            "staff_id",
            "weekday",
            "start_time",
            "end_time",
            "location_id",
            "valid_from",
            "valid_until",
        ],
        tpl_rows,
    )
    _copy(
        conn,
        "availability_overrides",
        [
            "tenant_id",
            "id",
            "staff_id",
            "on_date",
            "is_available",
            "start_time",
            "end_time",
            "rrule",
            "reason",
        ],
        ovr_rows,
    )
    _copy(conn, "holidays", ["tenant_id", "id", "staff_id", "on_date", "rrule", "name"], hol_rows)
    _copy(conn, "time_off", ["tenant_id", "id", "staff_id", "during", "reason"], off_rows)
    _copy(
        conn,
        "busy_times",
        ["tenant_id", "id", "staff_id", "during", "source", "external_id"],
        busy_rows,
    )
    _copy(
        conn,
        "bookings",
        [
            "tenant_id",
            "id",
            "staff_id",
            "service_id",
            "location_id",
            "starts_at",
            "ends_at",
            "status",
            "confirmed_at",
            "customer_ref",
        ],
        book_rows,
    )
    # The triggers queued recomputes of everything written; the benchmark refreshes itself.
    conn.execute("DELETE FROM recompute_requests WHERE tenant_id = %s", (tenant_id,))
    conn.commit()

    return Dataset(
        tenant_id=tenant_id,
        slug=slug,
        zone=TENANT_ZONE,
        horizon_days=horizon_days,
        now=now,
        horizon=horizon,
        staff_ids=staff_ids,
        service_ids=service_ids,
        service_rules=rules,
        staff_of_service=staff_of_service,
        counts={
            "staff": len(staff_rows),
            "services": len(service_ids),
            "staff_services": len(qual_rows),
            "templates": len(tpl_rows),
            "overrides": len(ovr_rows),
            "holidays": len(hol_rows),
            "time_off": len(off_rows),
            "busy_times": len(busy_rows),
            "bookings": len(book_rows),
            "resources": len(LOCATIONS) * STUDIOS_PER_LOCATION,
            "staff_with_limits": len(limits),
        },
        utilisation=booked_total / worked_total if worked_total else 0.0,
        seconds=time.perf_counter() - started,
    )
