"""Webhook endpoints, managed by the host backend with its tenant key: create (the secret is
in that answer only), list with each endpoint's state and circuit, rotate the secret,
disable and enable, delete, replay, and the delivery log. Each handler runs one function
of slotmill.materializer.webhooks in the host-call transaction (api/hostcall.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import invalid
from slotmill.api.hostcall import bearer, host_call
from slotmill.api.models import Instant, TenantPath, parse_json_object, parse_model, parse_uuid
from slotmill.api.routing import route
from slotmill.config import get_settings
from slotmill.materializer import webhooks
from slotmill.materializer.bookings import NotFound
from slotmill.materializer.loader import Conn, Tenant
from slotmill.materializer.webhooks import EventType
from slotmill.outbound import url_problem


def _reachable(value: str) -> str:
    # a literal private address or localhost can never be delivered to (slotmill/outbound.py)
    problem = url_problem(value, get_settings().outbound_guard)
    if problem:
        raise ValueError(problem)
    return value


Url = Annotated[
    str, StringConstraints(pattern=r"^https?://[^/\s?#]+[^\s]*$", max_length=2000), AfterValidator(_reachable)
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointPath(TenantPath):
    endpoint_id: UUID = Field(description="The webhook endpoint's id.")


class EndpointIn(_In):
    url: Url = Field(description="Where events are POSTed (http or https).")
    event_types: list[EventType] | None = Field(
        None, min_length=1, description="The event types it receives (omitted: all)."
    )
    description: Annotated[str, StringConstraints(max_length=200)] = ""


class EndpointOut(_Out):
    id: UUID
    url: str
    description: str
    event_types: list[str] | None
    active: bool
    circuit: Literal["open", "closed"] = Field(description="`open`: disabled by the breaker after a run of failures.")
    disabled_reason: Literal["host", "circuit"] | None
    disabled_at: Instant | None
    consecutive_failures: int
    failing_since: Instant | None
    last_attempt_at: Instant | None
    last_status: int | None
    last_error: str | None
    last_success_at: Instant | None
    created_at: Instant
    pending: int = Field(description="Deliveries waiting (due, or retrying).")
    failed: int = Field(description="Deliveries given up after the retry window.")


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (Standard Webhooks `whsec_...`): shown only here.")


class EndpointsOut(_Out):
    endpoints: list[EndpointOut]


class RotatedOut(_Out):
    id: UUID
    secret: str = Field(description="The new secret: shown only here. The old one signs beside it for 24 hours.")


class DeletedOut(_Out):
    id: UUID
    deleted: bool


class ReplayIn(_In):
    from_seq: int | None = Field(None, ge=1, description="First event number (the tenant's `seq`).")
    to_seq: int | None = Field(None, ge=1, description="Last event number (omitted: the newest).")
    delivery_id: int | None = Field(None, ge=1, description="Instead of a range: send this delivery again.")

    @model_validator(mode="after")
    def _one_kind(self) -> ReplayIn:
        if (self.delivery_id is None) == (self.from_seq is None):
            raise ValueError("give either from_seq (and to_seq) or delivery_id")
        return self


class ReplayOut(_Out):
    deliveries: int = Field(description="Deliveries due now.")


class DeliveryOut(_Out):
    id: int
    webhook_id: str
    event_id: int
    seq: int | None
    type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: Instant
    next_attempt_at: Instant | None
    delivered_at: Instant | None
    last_status: int | None
    last_error: str | None
    replay: bool


class DeliveriesOut(_Out):
    deliveries: list[DeliveryOut]


def _endpoint_id(request: Request) -> UUID:
    return parse_uuid(request.path_params["endpoint_id"], "path.endpoint_id")


def _found(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except webhooks.EndpointNotFound as e:
        raise NotFound("webhook_endpoint", str(e)) from None


async def create_endpoint(request: Request) -> Response:
    bearer(request)
    data = parse_json_object(await request.body())
    body = parse_model(EndpointIn, data, "body")

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        ep, secret = webhooks.create_endpoint(
            conn, tenant.id, body.url, event_types=list(body.event_types or []) or None, description=body.description
        )
        return 201, {**ep.as_json(), "secret": secret}

    return (await host_call(request, "webhook_create", data, action)).response()


async def list_endpoints(request: Request) -> Response:
    bearer(request)

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        return 200, {"endpoints": [e.as_json() for e in webhooks.list_endpoints(conn, tenant.id)]}

    return (await host_call(request, "webhook_list", {}, action)).response()


async def rotate_secret(request: Request) -> Response:
    bearer(request)
    endpoint_id = _endpoint_id(request)

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        secret = _found(lambda: {"s": webhooks.rotate_secret(conn, tenant.id, endpoint_id)})["s"]
        return 200, {"id": str(endpoint_id), "secret": secret}

    return (await host_call(request, "webhook_rotate", {}, action)).response()


def _activate(active: bool) -> Callable[[Request], Awaitable[Response]]:
    async def handler(request: Request) -> Response:
        bearer(request)
        endpoint_id = _endpoint_id(request)

        def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
            return 200, _found(lambda: webhooks.set_active(conn, tenant.id, endpoint_id, active).as_json())

        return (await host_call(request, "webhook_enable" if active else "webhook_disable", {}, action)).response()

    handler.__name__ = "enable_endpoint" if active else "disable_endpoint"
    return handler


async def delete_endpoint(request: Request) -> Response:
    bearer(request)
    endpoint_id = _endpoint_id(request)

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        try:
            webhooks.delete_endpoint(conn, tenant.id, endpoint_id)
        except webhooks.EndpointNotFound as e:
            raise NotFound("webhook_endpoint", str(e)) from None
        return 200, {"id": str(endpoint_id), "deleted": True}

    return (await host_call(request, "webhook_delete", {}, action)).response()


async def replay(request: Request) -> Response:
    bearer(request)
    endpoint_id = _endpoint_id(request)
    data = parse_json_object(await request.body())
    body = parse_model(ReplayIn, data, "body")
    if body.from_seq is not None and body.to_seq is not None and body.to_seq < body.from_seq:
        raise invalid("body.to_seq", "body.to_seq: before from_seq")

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        n = _found(
            lambda: {
                "n": webhooks.replay(
                    conn,
                    tenant.id,
                    endpoint_id,
                    from_seq=body.from_seq,
                    to_seq=body.to_seq,
                    delivery_id=body.delivery_id,
                )
            }
        )["n"]
        return 202, {"deliveries": n}

    return (await host_call(request, "webhook_replay", data, action)).response()


async def delivery_log(request: Request) -> Response:
    bearer(request)
    endpoint_id = _endpoint_id(request)

    def action(conn: Conn, tenant: Tenant) -> tuple[int, dict[str, Any]]:
        log = _found(lambda: {"d": webhooks.delivery_log(conn, tenant.id, endpoint_id)})["d"]
        return 200, {"deliveries": [d.as_json() for d in log]}

    return (await host_call(request, "webhook_log", {}, action)).response()


_PROBLEMS = [401, 404, 422, 503]
_ONE = "/v1/tenants/{slug}/webhooks/{endpoint_id}"

routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/webhooks",
        create_endpoint,
        "POST",
        summary="Add a webhook endpoint (the answer holds its secret, once)",
        tag="webhooks",
        path=TenantPath,
        body=EndpointIn,
        responses={201: EndpointCreated},
        problems=[*_PROBLEMS, 413],
        security="tenant_key",
        name="create_webhook_endpoint",
    ),
    route(
        "/v1/tenants/{slug}/webhooks",
        list_endpoints,
        "GET",
        summary="The tenant's webhook endpoints, their last result and circuit",
        tag="webhooks",
        path=TenantPath,
        responses={200: EndpointsOut},
        problems=_PROBLEMS,
        security="tenant_key",
        name="list_webhook_endpoints",
    ),
    route(
        f"{_ONE}/rotate",
        rotate_secret,
        "POST",
        summary="A new signing secret (the old one signs beside it for 24 hours)",
        tag="webhooks",
        path=EndpointPath,
        responses={200: RotatedOut},
        problems=_PROBLEMS,
        security="tenant_key",
        name="rotate_webhook_secret",
    ),
    route(
        f"{_ONE}/disable",
        _activate(False),
        "POST",
        summary="Disable an endpoint (no new deliveries; what waits, waits)",
        tag="webhooks",
        path=EndpointPath,
        responses={200: EndpointOut},
        problems=_PROBLEMS,
        security="tenant_key",
        name="disable_webhook_endpoint",
    ),
    route(
        f"{_ONE}/enable",
        _activate(True),
        "POST",
        summary="Enable an endpoint (closes its circuit; what waited is due at once)",
        tag="webhooks",
        path=EndpointPath,
        responses={200: EndpointOut},
        problems=_PROBLEMS,
        security="tenant_key",
        name="enable_webhook_endpoint",
    ),
    route(
        _ONE,
        delete_endpoint,
        "DELETE",
        summary="Delete an endpoint and its deliveries",
        tag="webhooks",
        path=EndpointPath,
        responses={200: DeletedOut},
        problems=_PROBLEMS,
        security="tenant_key",
        name="delete_webhook_endpoint",
    ),
    route(
        f"{_ONE}/replay",
        replay,
        "POST",
        summary="Deliver events again: a range of event numbers, or one delivery",
        tag="webhooks",
        path=EndpointPath,
        body=ReplayIn,
        responses={202: ReplayOut},
        problems=[*_PROBLEMS, 413],
        security="tenant_key",
        name="replay_webhooks",
    ),
    route(
        f"{_ONE}/deliveries",
        delivery_log,
        "GET",
        summary="The endpoint's latest deliveries (the delivery log)",
        tag="webhooks",
        path=EndpointPath,
        responses={200: DeliveriesOut},
        problems=_PROBLEMS,
        security="tenant_key",
        name="webhook_deliveries",
    ),
]
