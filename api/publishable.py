"""Confirming a hold from a public booking page, with the tenant's publishable key.

Confirming normally takes the tenant's secret key (api/host.py), which a page must never
hold. A tenant that opts in lets the page confirm by itself: in ``tenants.settings``,
``public_confirm: true`` and ``publishable_key: "smp_..."``; the page sends that key as
``Authorization: Bearer smp_...`` with the customer's contact details.

The key is publishable: every page that embeds the widget shows it. So it is stored plainly
in the settings (a hash would hide nothing that the tenant's own pages do not show, and
stored plainly the host can read it back to paste into a page); rotating it is one UPDATE,
which stops every old copy of a page. What it can do is narrow: confirm a live hold (which
the same visitor just made) with contact details, rate-limited like holds, and nothing
else: it cannot read, cancel or reschedule a booking, and the answer carries no customer
data. Other sites' pages are kept out by the browser, per ``settings.allowed_origins``
(api/cors.py).

Tenants that do not opt in have the page post the hold to their own backend instead
(``settings.confirm_url``), which confirms with the secret key.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable
from typing import Any
from uuid import UUID

from psycopg_pool import ConnectionPool
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.errors import ProblemError, booking_problem, invalid, not_found
from slotmill.api.hostcall import unauthorized
from slotmill.api.models import (
    Contact,
    HoldPath,
    Instant,
    parse_json_object,
    parse_model,
    parse_uuid,
    tenant_slug,
)
from slotmill.api.ratelimit import rate_limit
from slotmill.api.routing import route
from slotmill.materializer import bookings
from slotmill.materializer.loader import Tenant, UnknownTenant, load_tenant

PREFIX = "smp_"
# What a booking confirmed from a page is to the host: the channel, never the customer's
# name or address (customer_ref travels in events and webhooks; contact does not).
CUSTOMER_REF = "widget"


class PublicConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    contact: Contact = Field(description="Name, and an email address or a phone number (at least one).")


class PublicBookingOut(BaseModel):
    """A booking as its customer may see it: no customer_ref, notes or contact."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: UUID
    status: str
    service_id: UUID
    staff_id: UUID
    location_id: UUID | None
    starts_at: Instant
    ends_at: Instant
    seats: int


PUBLIC_FIELDS = tuple(PublicBookingOut.model_fields)


def publishable_key(request: Request) -> str:
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key.startswith(PREFIX):
        raise unauthorized(f"send the tenant's publishable key as `Authorization: Bearer {PREFIX}...`")
    return key


def check_publishable(tenant: Tenant, key: str) -> None:
    """The tenant opted in and ``key`` is its current publishable key."""
    settings = tenant.settings
    stored = settings.get("publishable_key")
    if settings.get("public_confirm") is not True or not isinstance(stored, str):
        raise ProblemError(
            403,
            "public_confirm_disabled",
            "Public confirm not enabled",
            f"tenant {tenant.slug!r} confirms bookings through its own site, not from a public page",
        )
    if not hmac.compare_digest(key.encode(), stored.encode()):
        raise unauthorized("the key is not this tenant's publishable key")


def confirm_hold(
    pool: ConnectionPool[Any],
    slug: str,
    hold_id: UUID,
    *,
    customer_ref: str,
    contact: dict[str, Any] | None,
    authorize: Callable[[Tenant], None],
) -> dict[str, Any]:
    """Confirm a hold in one transaction of its own, on behalf of a page (this module, and the
    demo route). A refusal that is an outcome (a lapsed hold, now marked expired) commits."""
    failure: bookings.BookingError | None = None
    with pool.connection() as conn, conn.transaction():
        try:
            tenant = load_tenant(conn, slug)
        except UnknownTenant:
            raise not_found("tenant", f"no tenant {slug!r}") from None
        authorize(tenant)
        try:
            booking = bookings.confirm(
                conn, tenant, hold_id=hold_id, customer_ref=customer_ref, notes=None, contact=contact
            )
            return booking.as_json()
        except bookings.BookingError as err:
            if getattr(err, "transient", False):
                raise booking_problem(err) from None
            failure = err
    assert failure is not None
    raise booking_problem(failure)


def contact_of(contact: Contact) -> dict[str, Any]:
    """The contact as stored; a page must give a way to reach the customer."""
    if contact.email is None and contact.phone is None:
        raise invalid("body.contact.email", "body.contact.email: give an email address or a phone number")
    return contact.model_dump(exclude_none=True)


async def confirm_public(request: Request) -> Response:
    state = request.app.state
    await rate_limit(request, "holds")
    slug = tenant_slug(request.path_params["slug"])
    hold_id = parse_uuid(request.path_params["hold_id"], "path.hold_id")
    key = publishable_key(request)
    req = parse_model(PublicConfirmIn, parse_json_object(await request.body()), "body")
    contact = contact_of(req.contact)
    booking = await asyncio.to_thread(
        confirm_hold,
        state.sync_pool,
        slug,
        hold_id,
        customer_ref=CUSTOMER_REF,
        contact=contact,
        authorize=lambda t: check_publishable(t, key),
    )
    state.metrics.confirms.inc()
    return JSONResponse({k: booking[k] for k in PUBLIC_FIELDS}, status_code=201)


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/holds/{hold_id}/confirm/public",
        confirm_public,
        "POST",
        summary="Confirm a hold from a public booking page (`Authorization: Bearer <publishable key>`),"
        " when the tenant allows it",
        tag="public",
        path=HoldPath,
        body=PublicConfirmIn,
        responses={201: PublicBookingOut},
        problems=[401, 403, 404, 409, 410, 413, 422, 429, 503],
        notes={
            401: "No publishable key, or not this tenant's current one (code `unauthorized`).",
            403: "The tenant does not confirm from public pages (code `public_confirm_disabled`).",
            409: "`hold_not_live`, `slot_no_longer_valid` or `booking_conflict`.",
        },
        name="confirm_public",
    ),
]
