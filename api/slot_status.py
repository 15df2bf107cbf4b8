"""Why a time a booking page showed is gone: taken by another customer, or withdrawn.

A hold of a time that is not offered any more is a 409 ``slot_unavailable`` whatever the
cause, and the time has disappeared from reads either way. A customer deserves to know
which: "someone just took it" and "the salon changed its schedule" call for different
next steps. One statement (sql/queries/slot_status.sql) answers with one word; it names no
customer and no reason of the business (time off, a calendar event), only which of the two
it is, which a visitor could tell anyway by watching the times before and after.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

import psycopg
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.errors import invalid, not_found
from slotmill.api.models import Instant, TenantPath, parse_model, tenant_slug
from slotmill.api.ratelimit import rate_limit
from slotmill.api.routing import route
from slotmill.sql import owned_by

Q = owned_by(__name__)

# A page asks about the candidates it tried for one start (an any-staff read gives 3 by
# default); more than this is not a question a page has.
MAX_STAFF = 20


class SlotStatusQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    service_id: UUID
    starts_at: Instant
    staff_id: list[UUID] = Field(
        min_length=1, max_length=MAX_STAFF, description="The staff member(s) the page offered it with (repeatable)."
    )


class SlotStatusOut(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Literal["available", "full", "taken", "unavailable"] = Field(
        description="`available`: still offered; `full`: the group session has no seat left; `taken`: another"
        " customer's hold or booking is in the way; `unavailable`: the schedule no longer offers it."
    )


async def slot_status(request: Request) -> Response:
    await rate_limit(request, "reads")
    slug = tenant_slug(request.path_params["slug"])
    qp = request.query_params
    data: dict[str, Any] = {k: qp[k] for k in ("service_id", "starts_at") if k in qp}
    data["staff_id"] = qp.getlist("staff_id")
    q = parse_model(SlotStatusQuery, data, "query")
    params = {"slug": slug, "service_id": q.service_id, "starts_at": q.starts_at, "staff_ids": q.staff_id}
    async with request.app.state.pool.connection() as conn:
        try:
            cur = await conn.execute(Q["slot_status"], params)
        except psycopg.errors.DataError:
            raise invalid("query.starts_at", "query.starts_at: out of range") from None
        row = await cur.fetchone()
    assert row is not None
    no_tenant, no_service, status = row
    if no_tenant:
        raise not_found("tenant", f"no tenant {slug!r}")
    if no_service:
        raise not_found("service", f"no active service {q.service_id} in tenant {slug!r}")
    return JSONResponse({"status": status}, headers={"Cache-Control": "no-store"})


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/slot-status",
        slot_status,
        "GET",
        summary="Is a start still offered, and if not, was it taken or withdrawn by the business",
        tag="public",
        path=TenantPath,
        query=SlotStatusQuery,
        responses={200: SlotStatusOut},
        problems=[404, 422, 429, 503],
        name="slot_status",
    ),
]
