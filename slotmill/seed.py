"""Small, explicit writers of source rows, shared by the demo tenant, tests and benchmarks.

Each takes an open connection and leaves the transaction to the caller. These write the
host application's tables exactly as a host would (plain INSERTs), so triggers fire.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import psycopg

Conn = psycopg.Connection[Any]


def _id(conn: Conn, sql: str, params: Iterable[Any]) -> UUID:
    row = conn.execute(sql, tuple(params)).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def tenant(
    conn: Conn,
    slug: str,
    *,
    name: str | None = None,
    timezone: str = "UTC",
    horizon_days: int = 60,
    settings: dict[str, Any] | None = None,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO tenants (id, slug, name, timezone, horizon_days, settings)"
        " VALUES (coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s) RETURNING id",
        (id, slug, name or slug, timezone, horizon_days, json.dumps(settings or {})),
    )


def location(
    conn: Conn, tenant_id: UUID, name: str, *, timezone: str | None = None, id: UUID | None = None
) -> UUID:
    return _id(
        conn,
        "INSERT INTO locations (tenant_id, id, name, timezone)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, %s) RETURNING id",
        (tenant_id, id, name, timezone),
    )


def staff(
    conn: Conn,
    tenant_id: UUID,
    name: str,
    *,
    location_id: UUID | None = None,
    timezone: str | None = None,
    priority: int = 100,
    active: bool = True,
    max_per_day: int | None = None,
    max_per_week: int | None = None,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO staff (tenant_id, id, display_name, location_id, timezone, priority, active,"
        " max_bookings_per_day, max_bookings_per_week)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, id, name, location_id, timezone, priority, active, max_per_day, max_per_week),
    )


def service(
    conn: Conn,
    tenant_id: UUID,
    name: str,
    duration: int,
    *,
    before: int = 0,
    after: int = 0,
    interval: int | None = None,
    min_notice: int | None = None,
    max_advance_days: int | None = None,
    active: bool = True,
    staff_ids: Iterable[UUID] = (),
    seats: int = 1,
    max_per_day: int | None = None,
    max_per_week: int | None = None,
    id: UUID | None = None,
) -> UUID:
    sid = _id(
        conn,
        "INSERT INTO services (tenant_id, id, name, duration_minutes, buffer_before_minutes, buffer_after_minutes,"
        " slot_interval_minutes, min_notice_minutes, max_advance_days, active, seats, max_bookings_per_day,"
        " max_bookings_per_week)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            tenant_id,
            id,
            name,
            duration,
            before,
            after,
            interval,
            min_notice,
            max_advance_days,
            active,
            seats,
            max_per_day,
            max_per_week,
        ),
    )
    for staff_id in staff_ids:
        qualify(conn, tenant_id, staff_id, sid)
    return sid


def qualify(conn: Conn, tenant_id: UUID, staff_id: UUID, service_id: UUID) -> None:
    conn.execute(
        "INSERT INTO staff_services (tenant_id, staff_id, service_id) VALUES (%s, %s, %s)",
        (tenant_id, staff_id, service_id),
    )


def template(
    conn: Conn,
    tenant_id: UUID,
    staff_id: UUID,
    weekdays: Iterable[int],
    start: str,
    end: str,
    *,
    location_id: UUID | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO availability_templates (tenant_id, staff_id, weekday, start_time, end_time, location_id,"
            " valid_from, valid_until) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(tenant_id, staff_id, wd, start, end, location_id, valid_from, valid_until) for wd in weekdays],
        )


def override(
    conn: Conn,
    tenant_id: UUID,
    staff_id: UUID,
    on_date: date,
    *,
    available: bool,
    start: str | None = None,
    end: str | None = None,
    rrule: str | None = None,
    reason: str = "",
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO availability_overrides (tenant_id, id, staff_id, on_date, is_available, start_time, end_time,"
        " rrule, reason) VALUES (%s, coalesce(%s, gen_random_uuid()), %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, id, staff_id, on_date, available, start, end, rrule, reason),
    )


def holiday(
    conn: Conn,
    tenant_id: UUID,
    on_date: date,
    name: str,
    *,
    staff_id: UUID | None = None,
    rrule: str | None = None,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO holidays (tenant_id, id, staff_id, on_date, rrule, name)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, %s, %s, %s) RETURNING id",
        (tenant_id, id, staff_id, on_date, rrule, name),
    )


def time_off(
    conn: Conn,
    tenant_id: UUID,
    staff_id: UUID,
    start: datetime,
    end: datetime,
    reason: str = "",
    *,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO time_off (tenant_id, id, staff_id, during, reason)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, tstzrange(%s, %s), %s) RETURNING id",
        (tenant_id, id, staff_id, start, end, reason),
    )


def busy(
    conn: Conn,
    tenant_id: UUID,
    staff_id: UUID,
    start: datetime,
    end: datetime,
    *,
    source: str = "calendar",
    external_id: str | None = None,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO busy_times (tenant_id, id, staff_id, during, source, external_id)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, tstzrange(%s, %s), %s, %s) RETURNING id",
        (tenant_id, id, staff_id, start, end, source, external_id),
    )


def booking(
    conn: Conn,
    tenant_id: UUID,
    staff_id: UUID,
    service_id: UUID,
    start: datetime,
    end: datetime,
    *,
    status: str = "confirmed",
    expires_at: datetime | None = None,
    customer_ref: str | None = None,
    location_id: UUID | None = None,
    seats: int = 1,
    contact: dict[str, Any] | None = None,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO bookings (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, status,"
        " expires_at, customer_ref, confirmed_at, seats, contact) VALUES (%s, coalesce(%s, gen_random_uuid()), %s,"
        " %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s = 'confirmed' THEN now() END, %s, %s) RETURNING id",
        (
            tenant_id,
            id,
            staff_id,
            service_id,
            location_id,
            start,
            end,
            status,
            expires_at,
            customer_ref,
            status,
            seats,
            None if contact is None else json.dumps(contact),
        ),
    )


def resource(
    conn: Conn,
    tenant_id: UUID,
    kind: str,
    name: str,
    *,
    location_id: UUID | None = None,
    active: bool = True,
    id: UUID | None = None,
) -> UUID:
    return _id(
        conn,
        "INSERT INTO resources (tenant_id, id, location_id, kind, name, active)"
        " VALUES (%s, coalesce(%s, gen_random_uuid()), %s, %s, %s, %s) RETURNING id",
        (tenant_id, id, location_id, kind, name, active),
    )


def service_resource(conn: Conn, tenant_id: UUID, service_id: UUID, kind: str, quantity: int = 1) -> UUID:
    """A requirement: ``service_id`` needs ``quantity`` resources of ``kind``."""
    return _id(
        conn,
        "INSERT INTO service_resources (tenant_id, service_id, kind, quantity) VALUES (%s, %s, %s, %s) RETURNING id",
        (tenant_id, service_id, kind, quantity),
    )


def booking_resource(conn: Conn, tenant_id: UUID, booking_id: UUID, resource_id: UUID) -> None:
    """``booking_id`` holds ``resource_id``. The copies of the booking's blocked range,
    liveness and session are written from the booking, as the triggers keep them."""
    conn.execute(
        "INSERT INTO booking_resources (tenant_id, booking_id, resource_id, blocked, live, session_key)"
        " SELECT tenant_id, id, %s, blocked, status IN ('held', 'confirmed'), session_key"
        " FROM bookings WHERE tenant_id = %s AND id = %s",
        (resource_id, tenant_id, booking_id),
    )


def travel(conn: Conn, tenant_id: UUID, from_location: UUID, to_location: UUID, minutes: int) -> UUID:
    """Minutes a staff member needs from one location to another (one direction)."""
    return _id(
        conn,
        "INSERT INTO location_travel (tenant_id, from_location_id, to_location_id, minutes)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (tenant_id, from_location, to_location, minutes),
    )
