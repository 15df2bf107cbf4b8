"""Demo-only routes (the widget's confirm-on-behalf). Mounted only in demo mode.

Confirming a hold needs the tenant's secret key (SPEC §9), which a public page must never
hold. So in demo mode (``SLOTMILL_DEMO_MODE=1``, set by ``slotmill run``) the server confirms
on the page's behalf: the booking lifecycle's confirm (``slotmill.materializer.bookings.confirm``), in-process, in one
transaction: live-hold check (410 expired, 409 not held), re-check against the current rules,
confirmed, now-impossible slots removed. The customer is recorded as ``demo:<name>``, and the
name, email and phone the page sends as the booking's contact.
Without demo mode the route does not exist at all (a 404 like any unknown path).
"""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.models import (
    BookingOut,
    Email,
    HoldPath,
    Phone,
    parse_json_object,
    parse_model,
    parse_uuid,
    tenant_slug,
)
from slotmill.api.publishable import confirm_hold
from slotmill.api.ratelimit import rate_limit
from slotmill.api.routing import Link, Reply, route

CUSTOMER_PREFIX = "demo:"


def _printable(value: str) -> str:
    # A name is shown back on pages and in admin tools: no NULs, newlines or other controls.
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValueError("must not contain control characters")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_printable),
]


class DemoConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    email: Email | None = None
    phone: Phone | None = None


def _allow_any(tenant: object) -> None:
    """Demo mode confirms for any tenant: the server runs for a first look only."""


async def confirm_for_demo(request: Request) -> Response:
    state = request.app.state
    # A public write, like a hold: the same per-address budget.
    await rate_limit(request, "holds")
    slug = tenant_slug(request.path_params["slug"])
    hold_id = parse_uuid(request.path_params["hold_id"], "path.hold_id")
    req = parse_model(DemoConfirmIn, parse_json_object(await request.body()), "body")
    contact = req.model_dump(exclude_none=True)
    booking = await asyncio.to_thread(
        confirm_hold,
        state.sync_pool,
        slug,
        hold_id,
        customer_ref=CUSTOMER_PREFIX + req.name,
        contact=contact,
        authorize=_allow_any,
    )
    metrics = getattr(state, "metrics", None)
    if metrics is not None:
        metrics.confirms.inc()
    return JSONResponse(booking, status_code=201)


routes: list[BaseRoute] = [
    route(
        "/v1/demo/tenants/{slug}/holds/{hold_id}/confirm",
        confirm_for_demo,
        "POST",
        summary="Demo mode only: confirm a hold on the widget's behalf",
        tag="demo",
        path=HoldPath,
        body=DemoConfirmIn,
        responses={
            201: Reply(
                BookingOut,
                links={
                    "cancel": Link(
                        "cancel_booking", {"slug": "$request.path.slug", "booking_id": "$response.body#/id"}
                    )
                },
            )
        },
        problems=[404, 409, 410, 413, 422, 429, 503],
        name="demo_confirm",
    ),
]
