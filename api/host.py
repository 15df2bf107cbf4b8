"""Host-backend endpoints: confirm a hold, cancel or reschedule a booking.

Each handler parses the request, runs one booking-lifecycle function
(slotmill.materializer.bookings) inside the host-call transaction (api/hostcall.py: tenant
key, idempotency), and shapes the answer.
"""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.hostcall import bearer, host_call
from slotmill.api.models import (
    BookingOut,
    BookingPath,
    CancelIn,
    ConfirmIn,
    HoldPath,
    IdempotencyHeaders,
    RescheduleIn,
    parse_json_object,
    parse_model,
    parse_uuid,
)
from slotmill.api.routing import Header, Link, Reply, route
from slotmill.materializer import bookings


async def confirm_hold(request: Request) -> Response:
    bearer(request)
    hold_id = parse_uuid(request.path_params["hold_id"], "path.hold_id")
    data = parse_json_object(await request.body())
    req = parse_model(ConfirmIn, data, "body")
    out = await host_call(
        request,
        "confirm",
        data,
        lambda c, t: (
            201,
            bookings.confirm(
                c,
                t,
                hold_id=hold_id,
                customer_ref=req.customer_ref,
                notes=req.notes,
                contact=None if req.contact is None else req.contact.model_dump(exclude_none=True),
            ).as_json(),
        ),
    )
    if out.status == 201 and not out.replayed:
        request.app.state.metrics.confirms.inc()
    return out.response()


async def cancel_booking(request: Request) -> Response:
    bearer(request)
    booking_id = parse_uuid(request.path_params["booking_id"], "path.booking_id")
    data = parse_json_object(await request.body(), empty_ok=True)
    parse_model(CancelIn, data, "body")
    out = await host_call(
        request, "cancel", data, lambda c, t: (200, bookings.cancel(c, t, booking_id=booking_id).as_json())
    )
    if out.status == 200 and not out.replayed:
        request.app.state.metrics.cancels.inc()
    return out.response()


async def reschedule_booking(request: Request) -> Response:
    bearer(request)
    booking_id = parse_uuid(request.path_params["booking_id"], "path.booking_id")
    data = parse_json_object(await request.body())
    req = parse_model(RescheduleIn, data, "body")
    out = await host_call(
        request,
        "reschedule",
        data,
        lambda c, t: (200, bookings.reschedule(c, t, booking_id=booking_id, hold_id=req.hold_id).as_json()),
    )
    if out.status == 200 and not out.replayed:
        request.app.state.metrics.reschedules.inc()
    return out.response()


# An answer can be the stored one of an earlier call with the same Idempotency-Key.
_REPLAYED = {
    "Idempotent-Replayed": Header(
        "`true`: the stored answer of an earlier call with this Idempotency-Key.", Literal["true"]
    ),
    "Slotmill-Consistency": Header(
        "The primary's WAL position after this call: reads that carry it never show an older state.",
        required=True,
    ),
}
# The booking this answer shows (OpenAPI runtime expressions), for the next call.
_THE_BOOKING = {"slug": "$request.path.slug", "booking_id": "$response.body#/id"}
_BOOKING_LINKS = {
    "cancel": Link("cancel_booking", _THE_BOOKING),
    "reschedule": Link("reschedule_booking", _THE_BOOKING),
}
_HOST_PROBLEMS = [401, 404, 409, 413, 422, 503]

routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/holds/{hold_id}/confirm",
        confirm_hold,
        "POST",
        summary="Confirm a hold into a booking",
        tag="host",
        path=HoldPath,
        headers=IdempotencyHeaders,
        body=ConfirmIn,
        responses={201: Reply(BookingOut, headers=_REPLAYED, links=_BOOKING_LINKS)},
        problems=[*_HOST_PROBLEMS, 410],
        notes={409: "`hold_not_live`, `slot_no_longer_valid` or `booking_conflict`."},
        security="tenant_key",
    ),
    route(
        "/v1/tenants/{slug}/bookings/{booking_id}/cancel",
        cancel_booking,
        "POST",
        summary="Cancel a confirmed booking",
        tag="host",
        path=BookingPath,
        headers=IdempotencyHeaders,
        body=CancelIn,
        body_required=False,
        responses={200: Reply(BookingOut, headers=_REPLAYED)},
        problems=_HOST_PROBLEMS,
        notes={409: "`booking_not_confirmed` or `cancellation_deadline_passed`."},
        security="tenant_key",
    ),
    route(
        "/v1/tenants/{slug}/bookings/{booking_id}/reschedule",
        reschedule_booking,
        "POST",
        summary="Move a confirmed booking to a held slot",
        tag="host",
        path=BookingPath,
        headers=IdempotencyHeaders,
        body=RescheduleIn,
        responses={200: Reply(BookingOut, headers=_REPLAYED, links=_BOOKING_LINKS)},
        problems=[*_HOST_PROBLEMS, 410],
        notes={
            409: "`booking_not_confirmed`, `reschedule_deadline_passed`, `reschedule_limit_reached`, "
            "`hold_not_live`, `slot_no_longer_valid` or `booking_conflict`."
        },
        security="tenant_key",
    ),
]
