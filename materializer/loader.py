"""Load the rules of a tenant's staff members into engine input, in a few set-based reads.

One pipelined round of nine queries whatever the number of staff members: no per-staff or
per-slot statements.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfoNotFoundError

import psycopg
from psycopg.rows import dict_row

from slotmill.materializer.horizon import (
    DAY_S,
    MAX_SPAN_S,
    Horizon,
    from_epoch,
    horizon_for,
    local_date,
    window_dates,
    zone,
)
from slotmill.materializer.model import (
    BusyKind,
    BusyRange,
    HolidayRule,
    LiveHold,
    OverrideRule,
    Resource,
    ResourceUse,
    RuleError,
    ServiceRule,
    StaffSchedule,
    TemplateRule,
    Travel,
)
from slotmill.sql import owned_by

Conn = psycopg.Connection[Any]
Q = owned_by(__name__)

# Confirmed bookings are read this much further each side than the busy window: a week
# limit counts the whole local ISO weeks that touch it (6 days either side, a day more for
# zones), and travel (at most a day) reaches further than a slot's own blocked range.
BOOKINGS_MARGIN_S = 8 * DAY_S


def _check_zone(name: str, owner: str) -> str:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError(f"{owner}: unknown time zone {name!r} (an IANA name such as 'Europe/London')") from None
    return name


class UnknownTenant(LookupError):
    def __init__(self, slug: str) -> None:
        super().__init__(f"unknown tenant {slug!r}")
        self.slug = slug


@dataclass(frozen=True, slots=True)
class Tenant:
    id: UUID
    slug: str
    name: str
    zone: str
    horizon_days: int
    settings: dict[str, Any]

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Tenant:
        """A ``tenants`` row (id, slug, name, timezone, horizon_days, settings); the zone is
        checked so that a rule the engine cannot use is a :class:`RuleError`, not a crash."""
        return cls(
            id=row["id"],
            slug=row["slug"],
            name=row["name"],
            zone=_check_zone(row["timezone"], f"tenant {row['slug']}"),
            horizon_days=row["horizon_days"],
            settings=dict(row["settings"] or {}),
        )

    def setting_int(self, key: str, default: int) -> int:
        value = self.settings.get(key, default)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else default

    def horizon(self, now: int) -> Horizon:
        return horizon_for(self.zone, self.horizon_days, now)


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    rule: ServiceRule
    active: bool
    min_notice_minutes: int | None
    max_advance_days: int | None
    staff_ids: frozenset[UUID]


@dataclass(slots=True)
class StaffRules:
    """One staff member as loaded: the engine's schedule plus what decides which services
    they are materialized for."""

    schedule: StaffSchedule
    active: bool
    priority: int
    services: list[ServiceRule] = field(default_factory=list)  # active and qualified
    # Why this staff member's rules cannot be computed (a stored value the engine cannot
    # use), or None. Such a staff member is left out of a recompute, with this reason.
    error: str | None = None

    def computable(self) -> StaffSchedule:
        """The schedule, or :class:`RuleError` when a stored rule of it cannot be computed
        (for callers that answer about this one staff member: the confirm re-check, explain,
        on-demand reads)."""
        if self.error:
            raise RuleError(self.error)
        return self.schedule

    def offered(self, service_id: UUID | None = None) -> list[ServiceRule]:
        """The services this staff member has slots of (SPEC §5: staff active, service
        active and linked through staff_services), optionally just ``service_id``. The one
        place materialization, verify and on-demand computation ask."""
        if not self.active:
            return []
        return self.services if service_id is None else [s for s in self.services if s.id == service_id]


@dataclass(slots=True)
class LoadedRules:
    tenant: Tenant
    horizon: Horizon
    first_date: date
    last_date: date
    services: dict[UUID, ServiceInfo]
    staff: dict[UUID, StaffRules]


def load_tenant(conn: Conn, slug: str) -> Tenant:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(Q["load_tenant_by_slug"], {"slug": slug}).fetchone()
    if row is None:
        raise UnknownTenant(slug)
    return Tenant.from_row(row)


def load_tenant_by_id(conn: Conn, tenant_id: UUID) -> Tenant | None:
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(Q["load_tenant_by_id"], {"tenant_id": tenant_id}).fetchone()
    return Tenant.from_row(row) if row else None


def staff_of_service(conn: Conn, tenant_id: UUID, service_id: UUID) -> list[UUID]:
    """Who performs a service (linked through staff_services), by id."""
    rows = conn.execute(Q["staff_of_service"], {"tenant_id": tenant_id, "service_id": service_id}).fetchall()
    return [r[0] for r in rows]


def all_staff_ids(conn: Conn, tenant_id: UUID) -> list[UUID]:
    """Every staff member of a tenant, sorted (the lock order)."""
    return [r[0] for r in conn.execute(Q["all_staff_ids"], {"tenant_id": tenant_id}).fetchall()]


def load_rules(
    conn: Conn,
    tenant: Tenant,
    *,
    staff_ids: list[UUID] | None,
    lo: int,
    hi: int,
    now: int,
    ignore_booking: UUID | None = None,
    beyond: bool = False,
) -> LoadedRules:
    """Rules of ``staff_ids`` (None: all) for computing slots that start in ``[lo, hi)``.

    ``beyond``: ``hi`` may lie past the horizon (slots computed on demand there); windows are
    then built through its date too.

    Windows are always built over the whole horizon's dates (see ``window_dates``); busy
    data is loaded around ``[lo, hi)`` only (confirmed bookings a week further, for the day
    and week limits). ``ignore_booking`` leaves one booking out of the busy set and of the
    resources' busy ranges: the confirm-time re-check judges a hold against everything but
    itself.
    """
    horizon = tenant.horizon(now)
    first, last = window_dates(horizon, local_date(hi, tenant.zone) + timedelta(days=1) if beyond else None)
    params: dict[str, Any] = {
        "tenant_id": tenant.id,
        "staff_ids": staff_ids,
        "first_date": first,
        "last_date": last,
        "lo": from_epoch(lo - MAX_SPAN_S),
        "hi": from_epoch(hi + MAX_SPAN_S),
        "lo_wide": from_epoch(lo - MAX_SPAN_S - BOOKINGS_MARGIN_S),
        "hi_wide": from_epoch(hi + MAX_SPAN_S + BOOKINGS_MARGIN_S),
        "now": from_epoch(now),
        "ignore_booking": ignore_booking,
    }
    names = [
        "load_staff",
        "load_services",
        "load_templates",
        "load_overrides",
        "load_holidays",
        "load_busy",
        "load_resources",
        "load_resource_busy",
        "load_travel",
    ]
    results: dict[str, list[dict[str, Any]]] = {}
    cursors = []
    with conn.pipeline():  # one round trip for all of them
        for name in names:
            c = conn.cursor(row_factory=dict_row)
            c.execute(Q[name], params)
            cursors.append((name, c))
    for name, c in cursors:
        results[name] = c.fetchall()
        c.close()

    services: dict[UUID, ServiceInfo] = {}
    for r in results["load_services"]:
        services[r["id"]] = ServiceInfo(
            rule=ServiceRule(
                id=r["id"],
                duration_min=r["duration_minutes"],
                buffer_before_min=r["buffer_before_minutes"],
                buffer_after_min=r["buffer_after_minutes"],
                interval_min=r["slot_interval_minutes"],
                seats=r["seats"],
                resources=tuple(zip(r["need_kinds"], r["need_quantities"], strict=True)),
                max_per_day=r["max_bookings_per_day"],
                max_per_week=r["max_bookings_per_week"],
            ),
            active=r["active"],
            min_notice_minutes=r["min_notice_minutes"],
            max_advance_days=r["max_advance_days"],
            staff_ids=frozenset(r["staff_ids"]),
        )

    templates: dict[UUID, list[TemplateRule]] = defaultdict(list)
    for r in results["load_templates"]:
        templates[r["staff_id"]].append(
            TemplateRule(
                weekday=r["weekday"],
                start_min=r["start_min"],
                end_min=r["end_min"],
                location_id=r["location_id"],
                valid_from=r["valid_from"],
                valid_until=r["valid_until"],
            )
        )
    # Rows the engine cannot use, by staff member (None: every staff member of the tenant).
    bad: dict[UUID | None, list[str]] = defaultdict(list)
    overrides: dict[UUID, list[OverrideRule]] = defaultdict(list)
    for r in results["load_overrides"]:
        if not r["on_date_ok"]:
            # Outside the years the service schedules: it can never apply on a date of the
            # horizon, unless it starts a recurrence, which cannot be computed from there.
            if r["rrule"]:
                bad[r["staff_id"]].append(
                    f"availability_overrides {r['id']}: on_date outside 1900-2200 starts a recurrence"
                )
            continue
        overrides[r["staff_id"]].append(
            OverrideRule(
                on_date=r["on_date"],
                is_available=r["is_available"],
                start_min=r["start_min"],
                end_min=r["end_min"],
                rrule=r["rrule"],
                location_id=r["location_id"],
            )
        )
    tenant_holidays: list[HolidayRule] = []
    staff_holidays: dict[UUID, list[HolidayRule]] = defaultdict(list)
    for r in results["load_holidays"]:
        if not r["on_date_ok"]:
            if r["rrule"]:
                bad[r["staff_id"]].append(f"holidays {r['id']}: on_date outside 1900-2200 starts a recurrence")
            continue
        rule = HolidayRule(on_date=r["on_date"], rrule=r["rrule"], name=r["name"], tenant_wide=r["staff_id"] is None)
        if r["staff_id"] is None:
            tenant_holidays.append(rule)
        else:
            staff_holidays[r["staff_id"]].append(rule)
    busy: dict[UUID, list[BusyRange]] = defaultdict(list)
    holds: dict[UUID, list[LiveHold]] = defaultdict(list)
    for r in results["load_busy"]:
        start, end = r["lo"], r["hi"]  # epoch seconds
        if r["kind"] == "held":
            holds[r["staff_id"]].append(
                LiveHold(start, end, r["expires_at"], r["ref"], r["service_id"], r["starts_at"], r["location_id"])
            )
        elif r["kind"] == "booked":
            busy[r["staff_id"]].append(
                BusyRange(
                    start,
                    end,
                    BusyKind.BOOKED,
                    r["ref"],
                    r["service_id"],
                    r["starts_at"],
                    r["location_id"],
                    r["seats"],
                    r["session_key"] or "",
                )
            )
        else:
            busy[r["staff_id"]].append(BusyRange(start, end, BusyKind(r["kind"]), r["ref"]))
    resources = _resources(results["load_resources"], results["load_resource_busy"])
    travel = tuple(
        Travel(r["from_location_id"], r["to_location_id"], r["minutes"]) for r in results["load_travel"]
    )

    staff: dict[UUID, StaffRules] = {}
    for r in results["load_staff"]:
        sid = r["id"]
        problems = bad.get(None, []) + bad.get(sid, [])
        try:
            staff_zone = _check_zone(r["zone"], "the staff member's zone (staff, location or tenant)")
        except RuleError as e:
            problems.append(str(e))
            staff_zone = "UTC"  # never computed: the error below keeps it out
        schedule = StaffSchedule(
            staff_id=sid,
            zone=staff_zone,
            location_id=r["location_id"],
            templates=tuple(templates.get(sid, ())),
            overrides=tuple(overrides.get(sid, ())),
            holidays=tuple(tenant_holidays + staff_holidays.get(sid, [])),
            busy=tuple(sorted(busy.get(sid, ()), key=lambda b: (b.start, b.end))),
            holds=tuple(holds.get(sid, ())),
            max_per_day=r["max_bookings_per_day"],
            max_per_week=r["max_bookings_per_week"],
            resources=resources,
            travel=travel,
        )
        qualified = [s.rule for s in services.values() if s.active and sid in s.staff_ids]
        staff[sid] = StaffRules(
            schedule=schedule,
            active=r["active"],
            priority=r["priority"],
            services=qualified,
            error="; ".join(problems) or None,
        )
    return LoadedRules(
        tenant=tenant,
        horizon=horizon,
        first_date=first,
        last_date=last,
        services=services,
        staff=staff,
    )


def _resources(rows: list[dict[str, Any]], busy_rows: list[dict[str, Any]]) -> tuple[Resource, ...]:
    """The tenant's resources with their busy ranges: one tuple, shared by every staff
    member's schedule (the engine indexes each resource once)."""
    uses: dict[UUID, list[ResourceUse]] = defaultdict(list)
    for r in busy_rows:
        uses[r["resource_id"]].append(
            ResourceUse(r["lo"], r["hi"], r["staff_id"], r["service_id"], r["starts_at"], r["location_id"], r["ref"])
        )
    return tuple(
        Resource(r["id"], r["kind"], r["location_id"], r["name"], tuple(uses.get(r["id"], ()))) for r in rows
    )
