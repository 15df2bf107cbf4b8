"""A staff member's weekly template as one representation: ``GET`` it whole (with an ETag
over the whole week) and ``PUT`` it whole, which replaces every window in one transaction
(the staff row locked, so two replacements of one week queue instead of interleaving).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import invalid, not_found
from slotmill.api.hostcall import bearer, host_call
from slotmill.api.models import TenantPath, parse_json_object, parse_model, parse_uuid
from slotmill.api.routing import Reply, route
from slotmill.api.rules import tables as t
from slotmill.api.rules.crud import ETAG_HEADER, PROBLEMS, TAG, WriteHeaders, blame, if_match, respond
from slotmill.api.rules.models import WeekIn, WeekOut
from slotmill.api.rules.resources import wall
from slotmill.api.rules.store import check_if_match, run
from slotmill.materializer.loader import Conn, Tenant

T = t.availability_templates
_WINDOW = [
    T.c.weekday,
    wall(T.c.start_time).label("start_time"),
    wall(T.c.end_time).label("end_time"),
    T.c.location_id,
    T.c.valid_from,
    T.c.valid_until,
]


class WeekPath(TenantPath):
    staff_id: UUID


def parse_week(data: Any, prefix: str = "body") -> WeekIn:
    week = parse_model(WeekIn, data, prefix)
    for i, window in enumerate(week.windows):
        for name, message in window.problems():
            field = f"{prefix}.windows.{i}.{name}"
            raise invalid(field, f"{field}: {message}")
    return week


def read_week(conn: Conn, tenant: Tenant, staff_id: UUID, *, lock: bool = False) -> dict[str, Any]:
    who = sa.select(t.staff.c.id).where(t.staff.c.tenant_id == tenant.id, t.staff.c.id == staff_id)
    if not run(conn, who.with_for_update() if lock else who):
        raise not_found("staff", f"no staff member {staff_id} in tenant {tenant.slug!r}")
    rows = run(
        conn,
        sa.select(*_WINDOW)
        .where(T.c.tenant_id == tenant.id, T.c.staff_id == staff_id)
        .order_by(
            T.c.weekday,
            T.c.start_time,
            T.c.end_time,
            T.c.location_id.nulls_first(),
            T.c.valid_from.nulls_first(),
            T.c.valid_until.nulls_first(),
        ),
    )
    return {"staff_id": staff_id, "windows": rows}


def replace_week(
    conn: Conn, tenant: Tenant, staff_id: UUID, week: WeekIn, expected: str | None, prefix: str = "body"
) -> dict[str, Any]:
    """Replace the whole week of ``staff_id`` (when ``expected``, an If-Match, still names it)."""
    check_if_match(expected, read_week(conn, tenant, staff_id, lock=True))
    run(conn, sa.delete(T).where(T.c.tenant_id == tenant.id, T.c.staff_id == staff_id))
    rows = [{**w.model_dump(), "tenant_id": tenant.id, "staff_id": staff_id} for w in week.windows]
    if rows:
        try:
            with conn.transaction():
                run(conn, sa.insert(T).values(rows))
        except psycopg.Error as first:
            blame(conn, T, rows, first, f"{prefix}.windows")
            raise
    return read_week(conn, tenant, staff_id)


async def get_week(request: Request) -> Response:
    bearer(request)
    staff_id = parse_uuid(request.path_params["staff_id"], "path.staff_id")
    out = await host_call(request, "rules.week.get", {}, lambda c, tn: (200, read_week(c, tn, staff_id)))
    return respond(out)


async def put_week(request: Request) -> Response:
    bearer(request)
    staff_id = parse_uuid(request.path_params["staff_id"], "path.staff_id")
    data = parse_json_object(await request.body())
    week = parse_week(data)
    tag = if_match(request)
    out = await host_call(
        request, "rules.week.replace", data, lambda c, tn: (200, replace_week(c, tn, staff_id, week, tag))
    )
    return respond(out)


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/staff/{staff_id}/week",
        get_week,
        "GET",
        summary="Read a staff member's weekly template",
        tag=TAG,
        path=WeekPath,
        responses={200: Reply(WeekOut, headers=ETAG_HEADER)},
        problems=[401, 404, 422, 503],
        security="tenant_key",
    ),
    route(
        "/v1/tenants/{slug}/staff/{staff_id}/week",
        put_week,
        "PUT",
        summary="Replace a staff member's whole weekly template in one transaction",
        tag=TAG,
        path=WeekPath,
        headers=WriteHeaders,
        body=WeekIn,
        responses={200: Reply(WeekOut, headers=ETAG_HEADER)},
        problems=[*PROBLEMS, 412],
        notes={412: "If-Match names another version of the week (code `precondition_failed`)."},
        security="tenant_key",
    ),
]
