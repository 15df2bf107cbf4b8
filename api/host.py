"""Host-backend endpoints: confirm a hold, cancel or reschedule a booking.

Each handler parses the request, runs one booking-lifecycle function
(slotmill.materializer.bookings) inside the host-call transaction (api/hostcall.py: tenant
key, idempotency), and shapes the answer.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from slotmill.api.hostcall import bearer, host_call
from slotmill.api.models import CancelIn, ConfirmIn, RescheduleIn, parse_json_object, parse_model, parse_uuid
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
            bookings.confirm(c, t, hold_id=hold_id, customer_ref=req.customer_ref, notes=req.notes).as_json(),
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


routes: list[BaseRoute] = [
    Route(
        "/v1/tenants/{slug}/holds/{hold_id}/confirm",
        confirm_hold,
        methods=["POST"],
        name="confirm_hold",
    ),
    Route(
        "/v1/tenants/{slug}/bookings/{booking_id}/cancel",
        cancel_booking,
        methods=["POST"],
        name="cancel_booking",
    ),
    Route(
        "/v1/tenants/{slug}/bookings/{booking_id}/reschedule",
        reschedule_booking,
        methods=["POST"],
        name="reschedule_booking",
    ),
]
