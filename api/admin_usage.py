"""How the schedule is used: ``GET /v1/admin/tenants/{slug}/utilization``.

Booked against offered time per local weekday and hour, for a staff member, a location or
the whole tenant, over a range of local dates, with the busiest and emptiest hours. One
statement (``utilization`` in sql/queries/admin_usage.sql) does the counting; the
definition is in docs/console.md#utilization.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfoNotFoundError

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.admin import authorize
from slotmill.api.admin_query import LocalDate, parse_query
from slotmill.api.errors import invalid, not_found
from slotmill.api.models import Instant, TenantPath, tenant_slug
from slotmill.api.routing import route
from slotmill.materializer.horizon import from_epoch, local_date, local_midnight, to_epoch, zone
from slotmill.materializer.model import RuleError
from slotmill.sql import owned_by

Q = owned_by(__name__)

DEFAULT_DAYS = 28
MAX_DAYS = 92
# How many cells the busiest and emptiest lists name.
RANKED = 3


class UsageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    from_: LocalDate | None = Field(None, alias="from", description="First local date; default: today.")
    to: LocalDate | None = Field(
        None, description=f"Last local date (inclusive); default: {DEFAULT_DAYS} days from `from`."
    )
    staff_id: UUID | None = Field(None, description="One staff member (their zone).")
    location_id: UUID | None = Field(None, description="One location (its zone, unless a staff member is named too).")


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ScopeOut(_Out):
    kind: Literal["tenant", "location", "staff"]
    name: str
    staff_id: UUID | None
    location_id: UUID | None


class CellOut(_Out):
    weekday: int = Field(ge=1, le=7, description="ISO weekday, 1 = Monday.")
    hour: int = Field(ge=0, le=23, description="Local hour of `zone`.")
    booked_minutes: float
    offered_minutes: float
    open_minutes: float = Field(description="Booked or offered: the union of both.")
    share: float | None = Field(description="booked / open; null when nothing is open.")


class TotalsOut(_Out):
    booked_minutes: float
    offered_minutes: float
    open_minutes: float
    share: float | None


class UsageOut(_Out):
    tenant: str
    scope: ScopeOut
    zone: str = Field(description="Weekdays and hours are local to this zone.")
    from_: date = Field(alias="from")
    to: date
    range_start: Instant
    range_end: Instant
    cells: list[CellOut] = Field(description="All 168 weekday x hour cells, Monday 00:00 first.")
    totals: TotalsOut
    busiest: list[CellOut] = Field(description="Open cells with the highest share booked, most booked first.")
    emptiest: list[CellOut] = Field(description="Open cells with the lowest share booked, most offered first.")


def _minutes(value: float) -> float:
    return round(value, 2)


def _share(booked: float, open_: float) -> float | None:
    return None if open_ <= 0 else round(booked / open_, 4)


def _cells(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = {(r["weekday"], r["hour"]): r for r in rows}
    out = []
    for weekday in range(1, 8):
        for hour in range(24):
            r = found.get((weekday, hour))
            booked = _minutes(r["booked_minutes"]) if r else 0.0
            offered = _minutes(r["offered_minutes"]) if r else 0.0
            open_ = _minutes(r["either_minutes"]) if r else 0.0
            out.append(
                {
                    "weekday": weekday,
                    "hour": hour,
                    "booked_minutes": booked,
                    "offered_minutes": offered,
                    "open_minutes": open_,
                    "share": _share(booked, open_),
                }
            )
    return out


def _checked_zone(name: str, whose: str) -> str:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise RuleError(f"{whose} zone {name!r} is not a time zone the engine knows") from None
    return name


async def utilization(request: Request) -> Response:
    authorize(request)
    slug = tenant_slug(request.path_params["slug"])
    query = parse_query(request, UsageQuery)
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(
            Q["usage_context"], {"slug": slug, "staff_id": query.staff_id, "location_id": query.location_id}
        )
        ctx = await cur.fetchone()
        if ctx is None:
            raise not_found("tenant", f"no tenant {slug!r}")
        if query.staff_id is not None and not ctx["staff_found"]:
            raise not_found("staff", f"no staff member {query.staff_id} in tenant {slug!r}")
        if query.location_id is not None and not ctx["location_found"]:
            raise not_found("location", f"no location {query.location_id} in tenant {slug!r}")
        if query.staff_id is not None:
            kind, name, tz = "staff", ctx["staff_name"], _checked_zone(ctx["staff_zone"], "the staff member's")
        elif query.location_id is not None:
            kind, name, tz = "location", ctx["location_name"], _checked_zone(ctx["location_zone"], "the location's")
        else:
            kind, name, tz = "tenant", ctx["name"], _checked_zone(ctx["timezone"], "the tenant's")
        first = query.from_ or local_date(to_epoch(ctx["now"]), tz)
        last = query.to or first + timedelta(days=DEFAULT_DAYS - 1)
        if last < first:
            raise invalid("query.to", "query.to: before `from`")
        if (last - first).days + 1 > MAX_DAYS:
            raise invalid("query.to", f"query.to: at most {MAX_DAYS} days from `from` (both inclusive)")
        lo = from_epoch(local_midnight(first, tz))
        hi = from_epoch(local_midnight(last + timedelta(days=1), tz))
        await cur.execute(
            Q["utilization"],
            {
                "tenant_id": ctx["id"],
                "staff_id": query.staff_id,
                "location_id": query.location_id,
                "zone": tz,
                "lo": lo,
                "hi": hi,
            },
        )
        rows = await cur.fetchall()
    cells = _cells(rows)
    booked = _minutes(sum(c["booked_minutes"] for c in cells))
    offered = _minutes(sum(c["offered_minutes"] for c in cells))
    open_ = _minutes(sum(c["open_minutes"] for c in cells))
    ranked = [c for c in cells if c["open_minutes"] > 0]
    busiest = sorted(ranked, key=lambda c: (-c["share"], -c["booked_minutes"], c["weekday"], c["hour"]))
    emptiest = sorted(ranked, key=lambda c: (c["share"], -c["offered_minutes"], c["weekday"], c["hour"]))
    out = UsageOut.model_validate(
        {
            "tenant": ctx["slug"],
            "scope": {"kind": kind, "name": name, "staff_id": query.staff_id, "location_id": query.location_id},
            "zone": tz,
            "from": first,
            "to": last,
            "range_start": lo,
            "range_end": hi,
            "cells": cells,
            "totals": {
                "booked_minutes": booked,
                "offered_minutes": offered,
                "open_minutes": open_,
                "share": _share(booked, open_),
            },
            "busiest": [c for c in busiest if c["booked_minutes"] > 0][:RANKED],
            "emptiest": emptiest[:RANKED],
        }
    )
    return JSONResponse(out.model_dump(mode="json", by_alias=True))


routes: list[BaseRoute] = [
    route(
        "/v1/admin/tenants/{slug}/utilization",
        utilization,
        "GET",
        summary="Booked vs offered time per weekday and hour",
        tag="admin",
        path=TenantPath,
        query=UsageQuery,
        responses={200: UsageOut},
        problems=[401, 404, 409, 422, 503],
        notes={409: "The zone of the scope is not one the engine knows (`rule_invalid`)."},
        security="admin_key",
        name="admin_utilization",
    ),
]

__all__ = ["UsageOut", "UsageQuery", "routes"]
