"""The waitlist: a public ``POST /v1/tenants/{slug}/waitlist`` (rate-limited like holds), and
the host's list and cancel (tenant key). Matching slots to entries is the worker's
(slotmill.materializer.waitlist.match_pending); an entry is told with a
``waitlist.matched`` event.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.errors import invalid, not_found
from slotmill.api.hostcall import bearer, host_call
from slotmill.api.models import Contact, Instant, TenantPath, parse_json_object, parse_model, parse_uuid, tenant_slug
from slotmill.api.ratelimit import rate_limit
from slotmill.api.routing import route
from slotmill.materializer import waitlist
from slotmill.materializer.bookings import NotFound
from slotmill.materializer.loader import Conn, Tenant

_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$")
# How far a waitlist may reach: a year of dates, starting at most a year ahead.
MAX_DAYS = 366


def _clock(value: str) -> str:
    if not _HHMM.match(value):
        raise ValueError("a local time HH:MM (00:00 to 24:00)")
    return value


Clock = Annotated[str, AfterValidator(_clock)]


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class TimeWindow(_In):
    start: Clock = Field(description="Local time of day, HH:MM.", examples=["09:00"])
    end: Clock = Field(description="Local time of day, HH:MM (24:00: midnight), after start.", examples=["12:00"])


class WaitlistIn(_In):
    service_id: UUID
    staff_id: UUID | None = Field(None, description="Omitted: anyone who performs the service.")
    from_: date = Field(alias="from", description="First local date wanted.")
    to: date = Field(description="Last local date wanted (inclusive).")
    times: list[TimeWindow] | None = Field(
        None, min_length=1, max_length=10, description="Times of day a start may have (omitted: any)."
    )
    location_id: UUID | None = Field(
        None, description="Only slots at this location (the branch whose page the customer is on)."
    )
    contact: Contact | None = Field(
        None, description="How to reach the customer (a booking page asks for it); shown to the host, never publicly."
    )
    contact_ref: Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^\x00]*$")] | None = Field(
        None, description="The host's own reference for the customer; never shown publicly. This or `contact`."
    )

    @model_validator(mode="after")
    def _valid(self) -> WaitlistIn:
        for w in self.times or ():
            if _minutes(w.end) <= _minutes(w.start):
                raise ValueError("each time window ends after it starts")
        if self.contact is None and self.contact_ref is None:
            raise ValueError("`contact` or `contact_ref` is required: how to reach the customer")
        if self.contact is not None and self.contact.email is None and self.contact.phone is None:
            raise ValueError("`contact` needs an email or a phone: how to tell the customer a time freed up")
        return self


class TimeWindowOut(_Out):
    start: str
    end: str


class WaitlistCreated(_Out):
    id: UUID
    service_id: UUID
    staff_id: UUID | None
    location_id: UUID | None
    from_: date = Field(alias="from")
    to: date
    times: list[TimeWindowOut] | None
    status: Literal["waiting"]
    created_at: Instant


class EntryOut(_Out):
    id: UUID
    service_id: UUID
    staff_id: UUID | None
    from_: date = Field(alias="from")
    to: date
    times: list[TimeWindowOut] | None
    location_id: UUID | None
    contact_ref: str | None
    contact: dict[str, Any] | None = Field(description="name, and email and/or phone, as the customer gave them")
    status: Literal["waiting", "cancelled", "expired"]
    created_at: Instant
    ended_at: Instant | None
    matches: int = Field(description="Slots this entry was told about.")


class EntriesOut(_Out):
    entries: list[EntryOut]


class EntryPath(TenantPath):
    entry_id: UUID = Field(description="The waitlist entry's id.")


class WaitlistQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    status: Literal["waiting", "cancelled", "expired", "all"] = "waiting"


async def join_waitlist(request: Request) -> Response:
    await rate_limit(request, "holds")
    slug = tenant_slug(request.path_params["slug"])
    body = parse_model(WaitlistIn, parse_json_object(await request.body()), "body")
    if body.to < body.from_:
        raise invalid("body.to", "body.to: before from")
    today = datetime.now(UTC).date()
    if body.to < today - timedelta(days=1):
        raise invalid("body.to", "body.to: in the past")
    if body.from_ > today + timedelta(days=MAX_DAYS) or (body.to - body.from_).days >= MAX_DAYS:
        raise invalid("body.to", f"body.to: at most {MAX_DAYS} days, starting within {MAX_DAYS} days")
    times = None if body.times is None else [(_minutes(w.start), _minutes(w.end)) for w in body.times]

    def create() -> waitlist.Created:
        with request.app.state.sync_pool.connection() as conn, conn.transaction():
            return waitlist.create_entry(
                conn,
                slug=slug,
                service_id=body.service_id,
                staff_id=body.staff_id,
                from_date=body.from_,
                to_date=body.to,
                times=times,
                contact_ref=body.contact_ref,
                contact=None if body.contact is None else body.contact.model_dump(exclude_none=True),
                location_id=body.location_id,
            )

    made = await asyncio.to_thread(create)
    if made.no_tenant:
        raise not_found("tenant", f"no tenant {slug!r}")
    if made.no_service:
        raise not_found("service", f"no active service {body.service_id} in tenant {slug!r}")
    if made.no_location:
        raise not_found("location", f"no location {body.location_id} in tenant {slug!r}")
    if made.no_staff or made.id is None or made.created_at is None:
        raise not_found("staff", f"no active staff member {body.staff_id} who performs this service")
    out = WaitlistCreated.model_validate(
        {
            "id": made.id,
            "service_id": body.service_id,
            "staff_id": body.staff_id,
            "location_id": body.location_id,
            "from": body.from_,
            "to": body.to,
            "times": None if body.times is None else [w.model_dump() for w in body.times],
            "status": "waiting",
            "created_at": made.created_at,
        }
    )
    return JSONResponse(out.model_dump(mode="json", by_alias=True), status_code=201)


async def list_entries(request: Request) -> Response:
    bearer(request)
    q = parse_model(WaitlistQuery, request.query_params, "query")

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        status = None if q.status == "all" else q.status
        return 200, {"entries": [e.as_json() for e in waitlist.list_entries(conn, tenant.id, status=status)]}

    return (await host_call(request, "waitlist_list", {}, action)).response()


async def cancel_entry(request: Request) -> Response:
    bearer(request)
    entry_id = parse_uuid(request.path_params["entry_id"], "path.entry_id")

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        entry = waitlist.cancel_entry(conn, tenant.id, entry_id)
        if entry is None:
            raise NotFound("waitlist_entry", f"no waitlist entry {entry_id}")
        return 200, entry.as_json()

    return (await host_call(request, "waitlist_cancel", {}, action)).response()


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/waitlist",
        join_waitlist,
        "POST",
        summary="Join the waitlist for a service (told by the host when a time fits)",
        tag="public",
        path=TenantPath,
        body=WaitlistIn,
        responses={201: WaitlistCreated},
        problems=[404, 413, 422, 429, 503],
        name="join_waitlist",
    ),
    route(
        "/v1/tenants/{slug}/waitlist",
        list_entries,
        "GET",
        summary="The tenant's waitlist entries, oldest first",
        tag="host",
        path=TenantPath,
        query=WaitlistQuery,
        responses={200: EntriesOut},
        problems=[401, 404, 422, 503],
        security="tenant_key",
        name="list_waitlist",
    ),
    route(
        "/v1/tenants/{slug}/waitlist/{entry_id}/cancel",
        cancel_entry,
        "POST",
        summary="End a waitlist entry",
        tag="host",
        path=EntryPath,
        responses={200: EntryOut},
        problems=[401, 404, 422, 503],
        security="tenant_key",
        name="cancel_waitlist_entry",
    ),
]
