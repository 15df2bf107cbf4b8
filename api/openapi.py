"""``GET /openapi.json``: an OpenAPI 3.1 document generated from the pydantic models.

Each operation is declared once here (parameters, body model, every response it can give,
problem responses included) and appears in the document only when the app mounts a route
of that name, so the demo route shows up in demo mode only. Schemas come from the models
in api/models.py (and api/admin.py's), through pydantic's JSON Schema generator; the
schemathesis test checks every answer of the running app against them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.routing import BaseRoute, Mount, Route

from slotmill.api import admin
from slotmill.api.errors import PROBLEM_JSON
from slotmill.api.models import (
    BookingOut,
    CancelIn,
    ConfirmIn,
    HoldBySlot,
    HoldByTime,
    HoldOut,
    Ok,
    Problem,
    Ready,
    RescheduleIn,
    SlotQuery,
    SlotsOut,
    TimeSlotsOut,
)

VERSION = "0.1.0"
REF = "#/components/schemas/{model}"

_UUID = {"type": "string", "format": "uuid"}
_SLUG = {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$", "example": "demo"}

# What each problem status means, for the response descriptions.
_PROBLEMS = {
    401: "Missing or wrong key (code `unauthorized`).",
    404: "Unknown tenant, or an id that is not this tenant's (code `*_not_found`).",
    405: "Method not allowed.",
    409: "Conflict; see `code`.",
    410: "The hold expired (code `hold_expired`).",
    413: "Request body too large.",
    422: "Invalid input; `field` names it (code `validation_error`).",
    429: "Rate limit of the client address (code `rate_limited`, `Retry-After` header).",
    500: "Unexpected error (code `internal_error`).",
    503: "Database unavailable or not ready (see `code`).",
}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path | query | header
    schema: dict[str, Any]
    required: bool = False
    description: str = ""


@dataclass(frozen=True)
class Op:
    route: str  # the Starlette route name
    method: str
    summary: str
    tag: str
    params: Sequence[Param] = ()
    body: Sequence[type[BaseModel]] = ()
    body_required: bool = True
    ok: int = 200
    ok_schema: dict[str, Any] | type[BaseModel] | Sequence[type[BaseModel]] | None = None
    ok_media: str = "application/json"
    problems: Sequence[int] = ()
    problem_notes: dict[int, str] = field(default_factory=dict)
    security: bool = False
    ok_headers: dict[str, Any] = field(default_factory=dict)


def _slug() -> Param:
    return Param("slug", "path", _SLUG, True, "The tenant's slug.")


def _path_uuid(name: str, description: str) -> Param:
    return Param(name, "path", _UUID, True, description)


def _idempotency() -> list[Param]:
    schema = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"}
    text = "Replays the first response for the same key and body; another body with it: 422."
    return [
        Param("Idempotency-Key", "header", schema, False, text),
        Param("X-Idempotency-Key", "header", schema, False, "Alias of Idempotency-Key."),
    ]


def _catalog_schema() -> dict[str, Any]:
    service = {
        "type": "object",
        "required": ["id", "name", "duration_minutes"],
        "properties": {
            "id": _UUID,
            "name": {"type": "string"},
            "duration_minutes": {"type": "integer"},
        },
    }
    staff = {
        "type": "object",
        "required": ["id", "display_name", "location_id", "service_ids"],
        "properties": {
            "id": _UUID,
            "display_name": {"type": "string"},
            "location_id": {"anyOf": [_UUID, {"type": "null"}]},
            "service_ids": {"type": "array", "items": _UUID},
        },
    }
    location = {
        "type": "object",
        "required": ["id", "name", "timezone"],
        "properties": {"id": _UUID, "name": {"type": "string"}, "timezone": {"type": "string"}},
    }
    tenant = {
        "type": "object",
        "required": ["slug", "name", "timezone", "horizon_days"],
        "properties": {
            "slug": {"type": "string"},
            "name": {"type": "string"},
            "timezone": {"type": "string"},
            "horizon_days": {"type": "integer"},
        },
    }
    return {
        "type": "object",
        "required": ["tenant", "services", "staff", "locations"],
        "properties": {
            "tenant": tenant,
            "services": {"type": "array", "items": service},
            "staff": {"type": "array", "items": staff},
            "locations": {"type": "array", "items": location},
        },
    }


def _operations() -> list[Op]:
    ops = [
        Op("healthz", "get", "Liveness: the process is up", "probes", ok_schema=Ok),
        Op(
            "healthz_db",
            "get",
            "SELECT 1 through the async pool (the benchmark's baseline)",
            "probes",
            ok_schema=Ok,
            problems=[503],
        ),
        Op(
            "readyz",
            "get",
            "Readiness: database reachable and schema current",
            "probes",
            ok_schema=Ready,
            problems=[503],
        ),
        Op(
            "metrics",
            "get",
            "Prometheus metrics of this process",
            "probes",
            ok_schema={"type": "string"},
            ok_media="text/plain",
        ),
        Op(
            "openapi",
            "get",
            "This document",
            "probes",
            ok_schema={"type": "object"},
        ),
        Op("home", "get", "Links for a newcomer (HTML for a browser)", "probes", ok_schema={"type": "object"}),
        Op(
            "read_slots",
            "get",
            "Bookable slots of one service (one SQL statement)",
            "public",
            params=[_slug()],  # query parameters come from SlotQuery, below
            ok_schema=[SlotsOut, TimeSlotsOut],
            problems=[404, 422, 429, 503],
        ),
        Op(
            "create_hold",
            "post",
            "Hold a slot: by slot id, or by service and start (optionally a staff member)",
            "public",
            params=[_slug()],
            body=[HoldBySlot, HoldByTime],
            ok=201,
            ok_schema=HoldOut,
            problems=[404, 409, 413, 422, 429, 503],
            problem_notes={409: "The slot is not offered now (code `slot_unavailable`)."},
        ),
        Op(
            "release_hold",
            "delete",
            "Release a hold (idempotent)",
            "public",
            params=[_slug(), _path_uuid("hold_id", "The hold's id.")],
            ok=204,
            problems=[404, 409, 422, 503],
            problem_notes={409: "It is a confirmed booking now (code `hold_confirmed`)."},
        ),
        Op(
            "confirm_hold",
            "post",
            "Confirm a hold into a booking",
            "host",
            params=[_slug(), _path_uuid("hold_id", "The hold's id."), *_idempotency()],
            body=[ConfirmIn],
            ok=201,
            ok_schema=BookingOut,
            problems=[401, 404, 409, 410, 413, 422, 503],
            problem_notes={
                409: "`hold_not_live`, `slot_no_longer_valid` or `booking_conflict`.",
            },
            security=True,
        ),
        Op(
            "cancel_booking",
            "post",
            "Cancel a confirmed booking",
            "host",
            params=[_slug(), _path_uuid("booking_id", "The booking's id."), *_idempotency()],
            body=[CancelIn],
            body_required=False,
            ok_schema=BookingOut,
            problems=[401, 404, 409, 413, 422, 503],
            problem_notes={
                409: "`booking_not_confirmed` or `cancellation_deadline_passed`.",
            },
            security=True,
        ),
        Op(
            "reschedule_booking",
            "post",
            "Move a confirmed booking to a held slot",
            "host",
            params=[_slug(), _path_uuid("booking_id", "The booking's id."), *_idempotency()],
            body=[RescheduleIn],
            ok_schema=BookingOut,
            problems=[401, 404, 409, 410, 413, 422, 503],
            problem_notes={
                409: "`booking_not_confirmed`, `reschedule_deadline_passed`, "
                "`reschedule_limit_reached`, `hold_not_live`, `slot_no_longer_valid` or "
                "`booking_conflict`.",
            },
            security=True,
        ),
        Op(
            "catalog",
            "get",
            "What can be booked with whom: services, staff, locations",
            "public",
            params=[_slug()],
            ok_schema=_catalog_schema(),
            problems=[404, 429, 503],
        ),
        Op(
            "admin_recalculate",
            "post",
            "Queue a recalculation (202), or run it now (`wait`: 200)",
            "admin",
            body=[admin.RecalculateIn],
            ok_schema=admin.RecalculateDone,
            problems=[401, 404, 413, 422, 503],
            security=True,
        ),
        Op(
            "admin_status",
            "get",
            "Horizon, slot count, last full refresh, queue",
            "admin",
            params=[_slug()],
            ok_schema=admin.StatusOut,
            problems=[401, 404, 503],
            security=True,
        ),
        Op(
            "admin_explain",
            "get",
            "Why a start is or is not offered",
            "admin",
            params=[
                _slug(),
                Param("staff_id", "query", _UUID, True),
                Param("service_id", "query", _UUID, True),
                Param(
                    "starts_at",
                    "query",
                    {"type": "string", "format": "date-time", "example": "2026-11-23T09:00:00Z"},
                    True,
                ),
            ],
            ok_schema=admin.ExplainOut,
            problems=[401, 404, 422, 503],
            security=True,
        ),
        Op(
            "demo_confirm",
            "post",
            "Demo mode only: confirm a hold on the widget's behalf",
            "demo",
            params=[_slug(), _path_uuid("hold_id", "The hold's id.")],
            body=[],
            ok=201,
            ok_schema=BookingOut,
            problems=[404, 409, 410, 413, 422, 429, 503],
        ),
    ]
    return ops


def _models(ops: Iterable[Op]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    out: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Problem, "serialization")]
    for op in ops:
        out.extend((m, "validation") for m in op.body)
        if isinstance(op.ok_schema, type):
            out.append((op.ok_schema, "serialization"))
        elif isinstance(op.ok_schema, list):
            out.extend((m, "serialization") for m in op.ok_schema)
    if any(op.route == "admin_recalculate" for op in ops):
        out.append((admin.RecalculateQueued, "serialization"))
    seen: set[type[BaseModel]] = set()
    unique = []
    for m, mode in out:
        if m not in seen:
            seen.add(m)
            unique.append((m, mode))
    return unique


def _ref(model: type[BaseModel]) -> dict[str, Any]:
    return {"$ref": REF.format(model=model.__name__)}


def _schema_of(
    spec: dict[str, Any] | type[BaseModel] | Sequence[type[BaseModel]],
) -> dict[str, Any]:
    if isinstance(spec, dict):
        return spec
    if isinstance(spec, type):
        return _ref(spec)
    return {"anyOf": [_ref(m) for m in spec]}


def _slot_query_params() -> list[dict[str, Any]]:
    schema = SlotQuery.model_json_schema(by_alias=True, ref_template=REF)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        if "anyOf" in prop and {"type": "null"} in prop["anyOf"]:
            # An optional query parameter is absent, never JSON null.
            variants = [v for v in prop["anyOf"] if v != {"type": "null"}]
            rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            prop = {**variants[0], **rest} if len(variants) == 1 else {"anyOf": variants, **rest}
        param: dict[str, Any] = {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        out.append(param)
    return out


def _parameter(p: Param) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": p.name,
        "in": p.where,
        "required": p.required,
        "schema": p.schema,
    }
    if p.description:
        out["description"] = p.description
    return out


def _problem_response(status: int, note: str | None) -> dict[str, Any]:
    return {
        "description": note or _PROBLEMS[status],
        "content": {PROBLEM_JSON: {"schema": _ref(Problem)}},
    }


def _operation(op: Op) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": op.route, "summary": op.summary, "tags": [op.tag]}
    params = [_parameter(p) for p in op.params]
    if op.route == "read_slots":
        params.extend(_slot_query_params())
    if params:
        out["parameters"] = params
    if op.body:
        schema = _ref(op.body[0]) if len(op.body) == 1 else {"oneOf": [_ref(m) for m in op.body]}
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema}},
        }
    elif op.route == "demo_confirm":
        name = {"type": "string", "minLength": 1, "maxLength": 100}
        out["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"name": name},
                    }
                }
            },
        }
    responses: dict[str, Any] = {}
    ok: dict[str, Any] = {"description": "OK" if op.ok != 201 else "Created"}
    if op.ok == 204:
        ok = {"description": "No content"}
    elif op.ok_schema is not None:
        ok["content"] = {op.ok_media: {"schema": _schema_of(op.ok_schema)}}
    responses[str(op.ok)] = ok
    if op.route == "admin_recalculate":
        responses["202"] = {
            "description": "Queued",
            "content": {"application/json": {"schema": _ref(admin.RecalculateQueued)}},
        }
    for status in sorted({*op.problems, 500}):
        responses[str(status)] = _problem_response(status, op.problem_notes.get(status))
    out["responses"] = responses
    if op.security:
        out["security"] = _BEARER
    return out


def _route_paths(routes: Iterable[BaseRoute]) -> dict[str, str]:
    found: dict[str, str] = {}
    for r in routes:
        if isinstance(r, Route):
            found[r.name] = r.path
        elif isinstance(r, Mount):
            continue  # static files (the widget): not part of the API
    return found


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    mounted = _route_paths(routes)
    ops = [op for op in _operations() if op.route in mounted]
    _, defs = models_json_schema(_models(ops), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        # Starlette's {name} placeholders are OpenAPI's already.
        paths.setdefault(mounted[op.route], {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "slotmill",
            "version": VERSION,
            "description": "Pre-computed bookable slots, holds and bookings. Instants are RFC 3339 "
            "in UTC; errors are RFC 9457 problem+json with a stable `code`.",
        },
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Host calls: the tenant's secret key (`slotmill keys create`). "
                    "Admin calls: SLOTMILL_ADMIN_KEY.",
                }
            },
        },
    }


def openapi_document(routes: Iterable[BaseRoute]) -> bytes:
    return orjson.dumps(build_document(routes))
