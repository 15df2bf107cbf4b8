"""The resources of the rules API: each source table, its bodies and what an answer shows.

The weekly template is not here: a staff member's week is one representation, read and
replaced whole (api/rules/week.py).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from psycopg.types.range import Range

from slotmill.api.rules import models as m
from slotmill.api.rules import tables as t
from slotmill.api.rules.crud import Resource


def _cols(table: sa.Table, *names: str) -> dict[str, sa.ColumnElement[Any]]:
    return {n: table.c[n] for n in names}


def wall(col: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    # to_char, not the time value: 24:00 has no Python time
    return sa.func.to_char(col, "HH24:MI")


def instant(expr: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    return sa.func.slotmill_instant(expr)


def _ranged(table: sa.Table) -> dict[str, sa.ColumnElement[Any]]:
    return {"starts_at": instant(sa.func.lower(table.c.during)), "ends_at": instant(sa.func.upper(table.c.during))}


def _during(body: Any) -> dict[str, Any]:
    row: dict[str, Any] = body.model_dump(exclude={"starts_at", "ends_at"})
    row["during"] = Range(body.starts_at, body.ends_at, "[)")
    return row


LOCATIONS = Resource(
    "locations",
    "location",
    t.locations,
    m.LocationIn,
    m.LocationOut,
    _cols(t.locations, "id", "name", "timezone"),
    "locations",
)
STAFF = Resource(
    "staff",
    "staff",
    t.staff,
    m.StaffIn,
    m.StaffOut,
    _cols(
        t.staff,
        "id",
        "display_name",
        "location_id",
        "timezone",
        "priority",
        "active",
        "max_bookings_per_day",
        "max_bookings_per_week",
    ),
    "staff members",
    filters=("location_id",),
)
SERVICES = Resource(
    "services",
    "service",
    t.services,
    m.ServiceIn,
    m.ServiceOut,
    _cols(
        t.services,
        "id",
        "name",
        "duration_minutes",
        "buffer_before_minutes",
        "buffer_after_minutes",
        "slot_interval_minutes",
        "min_notice_minutes",
        "max_advance_days",
        "active",
        "seats",
        "max_bookings_per_day",
        "max_bookings_per_week",
    ),
    "services",
)
STAFF_SERVICES = Resource(
    "staff-services",
    "staff_service",
    t.staff_services,
    m.StaffServiceIn,
    m.StaffServiceOut,
    _cols(t.staff_services, "id", "staff_id", "service_id"),
    "links of staff members to the services they perform",
    filters=("staff_id", "service_id"),
    bulk_key=("staff_id", "service_id"),
)
OVERRIDES = Resource(
    "overrides",
    "override",
    t.availability_overrides,
    m.OverrideIn,
    m.OverrideOut,
    {
        **_cols(t.availability_overrides, "id", "staff_id", "on_date", "is_available"),
        "start_time": wall(t.availability_overrides.c.start_time),
        "end_time": wall(t.availability_overrides.c.end_time),
        **_cols(t.availability_overrides, "rrule", "location_id", "reason"),
    },
    "availability overrides",
    filters=("staff_id",),
)
HOLIDAYS = Resource(
    "holidays",
    "holiday",
    t.holidays,
    m.HolidayIn,
    m.HolidayOut,
    _cols(t.holidays, "id", "staff_id", "on_date", "rrule", "name"),
    "holidays",
    filters=("staff_id",),
)
TIME_OFF = Resource(
    "time-off",
    "time_off",
    t.time_off,
    m.TimeOffIn,
    m.TimeOffOut,
    {**_cols(t.time_off, "id", "staff_id"), **_ranged(t.time_off), "reason": t.time_off.c.reason},
    "time off",
    filters=("staff_id",),
    to_row=_during,
)
BUSY_TIMES = Resource(
    "busy-times",
    "busy_time",
    t.busy_times,
    m.BusyTimeIn,
    m.BusyTimeOut,
    {**_cols(t.busy_times, "id", "staff_id"), **_ranged(t.busy_times), **_cols(t.busy_times, "source", "external_id")},
    "busy times",
    filters=("staff_id",),
    bulk_key=("source", "external_id"),
    to_row=_during,
    create_upserts=True,
)
RESOURCES = Resource(
    "resources",
    "resource",
    t.resources,
    m.ResourceIn,
    m.ResourceOut,
    _cols(t.resources, "id", "location_id", "kind", "name", "active"),
    "resources (rooms, chairs, machines)",
    filters=("location_id",),
)
REQUIREMENTS = Resource(
    "service-requirements",
    "service_requirement",
    t.service_resources,
    m.RequirementIn,
    m.RequirementOut,
    _cols(t.service_resources, "id", "service_id", "kind", "quantity"),
    "resources services need",
    filters=("service_id",),
)
TRAVEL = Resource(
    "travel-times",
    "travel_time",
    t.location_travel,
    m.TravelIn,
    m.TravelOut,
    _cols(t.location_travel, "id", "from_location_id", "to_location_id", "minutes"),
    "travel times between locations",
    filters=("from_location_id", "to_location_id"),
    bulk_key=("from_location_id", "to_location_id"),
)
FEEDS = Resource(
    "calendar-feeds",
    "calendar_feed",
    t.calendar_feeds,
    m.FeedIn,
    m.FeedOut,
    {
        **_cols(t.calendar_feeds, "id", "staff_id", "url", "name", "refresh_minutes", "active"),
        **{c: instant(t.calendar_feeds.c[c]) for c in ("next_sync_at", "last_sync_at", "last_success_at")},
        **_cols(t.calendar_feeds, "last_status", "last_http_status", "last_error", "busy_count", "failures"),
    },
    "calendar feeds (ICS) synced into busy times",
    filters=("staff_id",),
)

ALL = (
    LOCATIONS,
    STAFF,
    SERVICES,
    STAFF_SERVICES,
    OVERRIDES,
    HOLIDAYS,
    TIME_OFF,
    BUSY_TIMES,
    RESOURCES,
    REQUIREMENTS,
    TRAVEL,
    FEEDS,
)
