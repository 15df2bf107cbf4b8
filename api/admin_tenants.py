"""What the operator console picks from: ``GET /v1/admin/tenants`` (tenants by slug, paged)
and ``GET /v1/admin/tenants/{slug}/directory`` (a tenant's locations, staff and services,
inactive ones included: the public catalog leaves those out, and they are exactly what an
operator asks about)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.admin import authorize
from slotmill.api.admin_query import parse_query
from slotmill.api.errors import not_found
from slotmill.api.models import Slug, TenantPath, tenant_slug
from slotmill.api.routing import route
from slotmill.sql import owned_by

Q = owned_by(__name__)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TenantsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    after: Slug | None = Field(None, description="The last slug of the previous page.")
    limit: int = Field(200, ge=1, le=1000)


class TenantRow(_Out):
    slug: str
    name: str
    timezone: str
    horizon_days: int
    staff: int
    active_staff: int


class TenantsOut(_Out):
    tenants: list[TenantRow]
    next_after: str | None = Field(description="Ask again with `after` this for the next page; null: no more.")


class LocationRow(_Out):
    id: UUID
    name: str
    timezone: str | None


class StaffRow(_Out):
    id: UUID
    display_name: str
    active: bool
    priority: int
    location_id: UUID | None
    zone: str = Field(description="The staff member's zone: their own, else their location's, else the tenant's.")
    service_ids: list[UUID]


class ServiceRow(_Out):
    id: UUID
    name: str
    active: bool
    duration_minutes: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    interval_minutes: int
    seats: int


class DirectoryTenant(_Out):
    slug: str
    name: str
    timezone: str
    horizon_days: int


class DirectoryOut(_Out):
    tenant: DirectoryTenant
    locations: list[LocationRow]
    staff: list[StaffRow]
    services: list[ServiceRow]


async def list_tenants(request: Request) -> Response:
    authorize(request)
    query = parse_query(request, TenantsQuery)
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    async with pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(Q["tenants_page"], {"after": query.after, "limit": query.limit})
        rows = await cur.fetchall()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    out = TenantsOut.model_validate({"tenants": rows, "next_after": rows[-1]["slug"] if more else None})
    return JSONResponse(out.model_dump(mode="json"))


async def directory(request: Request) -> Response:
    authorize(request)
    slug = tenant_slug(request.path_params["slug"])
    pool: AsyncConnectionPool[Any] = request.app.state.pool
    async with pool.connection() as conn, conn.transaction():
        cur = conn.cursor(row_factory=dict_row)
        await cur.execute(Q["directory_tenant"], {"slug": slug})
        tenant = await cur.fetchone()
        if tenant is None:
            raise not_found("tenant", f"no tenant {slug!r}")
        params = {"tenant_id": tenant.pop("id")}
        await cur.execute(Q["directory_locations"], params)
        locations = await cur.fetchall()
        await cur.execute(Q["directory_staff"], params)
        staff = await cur.fetchall()
        await cur.execute(Q["directory_services"], params)
        services = await cur.fetchall()
    out = DirectoryOut.model_validate({"tenant": tenant, "locations": locations, "staff": staff, "services": services})
    return JSONResponse(out.model_dump(mode="json"))


routes: list[BaseRoute] = [
    route(
        "/v1/admin/tenants",
        list_tenants,
        "GET",
        summary="Tenants by slug, a page at a time",
        tag="admin",
        query=TenantsQuery,
        responses={200: TenantsOut},
        problems=[401, 422, 503],
        security="admin_key",
        name="admin_tenants",
    ),
    route(
        "/v1/admin/tenants/{slug}/directory",
        directory,
        "GET",
        summary="A tenant's locations, staff and services, inactive ones included",
        tag="admin",
        path=TenantPath,
        responses={200: DirectoryOut},
        problems=[401, 404, 503],
        security="admin_key",
        name="admin_directory",
    ),
]

__all__ = ["DirectoryOut", "TenantsOut", "routes"]
