"""``GET /openapi.json``: an OpenAPI 3.1 document built from the app's routes.

Like starlette/schemas.py, it walks ``app.routes`` (into mounted routers, under their
prefix; a mounted app that is not a router, such as the widget's static files, has no routes
to document). Every route must be a ``DocumentedRoute`` (api/routing.py): what the document
says of an operation is declared where the route is, so the demo route appears only when
demo mode mounts it. Schemas are pydantic's JSON Schema of the declared types, gathered into
``components``; the schemathesis test checks every answer of the running app against them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, StringConstraints, TypeAdapter
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue
from starlette.routing import BaseRoute, Mount, Route

from slotmill.api.errors import PROBLEM_JSON
from slotmill.api.models import Problem
from slotmill.api.routing import DocumentedRoute, Header, Link, OperationDoc, Reply, Security

REF = "#/components/schemas/{model}"

_CONVERTER = re.compile(r":[^}]*}")

# What each problem status means, unless an operation says more precisely.
_PROBLEMS = {
    401: "Missing or wrong key (code `unauthorized`).",
    404: "Unknown tenant, or an id that is not this tenant's (code `*_not_found`).",
    409: "Conflict; see `code`.",
    410: "The hold expired (code `hold_expired`).",
    413: "Request body too large.",
    422: "Invalid input; `field` names it (code `validation_error`).",
    429: "Rate limit of the client address (code `rate_limited`).",
    500: "Unexpected error (code `internal_error`).",
    503: "Database unavailable or not ready (see `code`).",
}
Seconds = Annotated[str, StringConstraints(pattern=r"^[0-9]+$")]
_PROBLEM_HEADERS = {
    401: {"WWW-Authenticate": Header("The bearer challenge.", required=True)},
    429: {"Retry-After": Header("Seconds until the address may try again.", Seconds, required=True)},
    503: {"Retry-After": Header("Seconds to wait when the database did not answer.", Seconds)},
}
_SECURITY_SCHEMES: dict[Security, str] = {
    "tenant_key": "The tenant's secret key (`slotmill keys create`): host calls.",
    "admin_key": "SLOTMILL_ADMIN_KEY of the API server: admin calls.",
}
_OK = {200: "OK", 201: "Created", 202: "Accepted", 204: "No content"}


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    id: str
    doc: OperationDoc


def operations(routes: Iterable[BaseRoute], prefix: str = "") -> Iterator[Operation]:
    """Every operation of ``routes``, in order. An undocumented route is a bug: it raises."""
    for r in routes:
        if isinstance(r, Mount):
            yield from operations(r.routes, prefix + _CONVERTER.sub("}", r.path))
        elif isinstance(r, Route) and r.include_in_schema:
            if not isinstance(r, DocumentedRoute):
                raise TypeError(f"route {r.path} ({r.name}) is not documented: declare it with api.routing.route")
            yield Operation(prefix + _CONVERTER.sub("}", r.path), r.method, r.name, r.doc)


class _Schemas:
    """The JSON Schemas of the declared types, generated together so that shared models
    become one entry of ``components.schemas``."""

    def __init__(self, ops: list[Operation]) -> None:
        wanted: dict[tuple[Any, JsonSchemaMode], None] = {(Problem, "serialization"): None}
        for op in ops:
            if op.doc.body is not None:
                wanted[op.doc.body, "validation"] = None
            for reply in op.doc.responses.values():
                if reply.body is not None:
                    wanted[reply.body, "serialization"] = None
        inputs = [(t, mode, TypeAdapter(t)) for t, mode in wanted]
        self._of, defs = TypeAdapter.json_schemas(inputs, by_alias=True, ref_template=REF)
        self.components: dict[str, JsonSchemaValue] = defs.get("$defs", {})

    def __call__(self, t: Any, mode: JsonSchemaMode) -> JsonSchemaValue:
        return self._of[t, mode]


def _parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
    if model is None:
        return []
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    if "$defs" in schema:
        raise TypeError(f"{model.__name__}: parameters are scalars, not nested models")
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        prop.pop("title", None)
        description = prop.pop("description", None)
        if "anyOf" in prop and {"type": "null"} in prop["anyOf"]:
            # An optional parameter is absent, never null.
            variants = [v for v in prop.pop("anyOf") if v != {"type": "null"}]
            if "default" in prop and prop["default"] is None:
                del prop["default"]
            prop = {**variants[0], **prop} if len(variants) == 1 else {"anyOf": variants, **prop}
        param: dict[str, Any] = {
            "name": name,
            "in": where,
            "required": where == "path" or name in required,
            "schema": prop,
        }
        if description:
            param["description"] = description
        out.append(param)
    return out


def _headers(headers: Mapping[str, Header]) -> dict[str, Any]:
    return {
        name: {"description": h.description, "required": h.required, "schema": TypeAdapter(h.value).json_schema()}
        for name, h in headers.items()
    }


def _link(link: Link) -> dict[str, Any]:
    out: dict[str, Any] = {"operationId": link.operation}
    if link.parameters:
        out["parameters"] = dict(link.parameters)
    if link.body is not None:
        out["requestBody"] = dict(link.body)
        # The link's body is the whole body (OpenAPI), not a patch of a generated one.
        out["x-schemathesis"] = {"merge_body": False}
    if link.description:
        out["description"] = link.description
    return out


def _reply(status: int, reply: Reply, schemas: _Schemas, known: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"description": reply.description or _OK.get(status, "Success")}
    if reply.headers:
        out["headers"] = _headers(reply.headers)
    if reply.body is not None:
        out["content"] = {reply.media_type: {"schema": schemas(reply.body, "serialization")}}
    # A link to an operation this app does not mount (the demo route) is left out.
    links = {name: _link(link) for name, link in reply.links.items() if link.operation in known}
    if links:
        out["links"] = links
    return out


def _problem(status: int, note: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "description": note or _PROBLEMS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": REF.format(model=Problem.__name__)}}},
    }
    if status in _PROBLEM_HEADERS:
        out["headers"] = _headers(_PROBLEM_HEADERS[status])
    return out


def _operation(op: Operation, schemas: _Schemas, known: set[str]) -> dict[str, Any]:
    doc = op.doc
    out: dict[str, Any] = {"operationId": op.id, "summary": doc.summary, "tags": [doc.tag]}
    params = [
        *_parameters(doc.path, "path"),
        *_parameters(doc.query, "query"),
        *_parameters(doc.headers, "header"),
    ]
    if params:
        out["parameters"] = params
    if doc.body is not None:
        out["requestBody"] = {
            "required": doc.body_required,
            "content": {"application/json": {"schema": schemas(doc.body, "validation")}},
        }
    responses = {str(s): _reply(s, r, schemas, known) for s, r in sorted(doc.responses.items())}
    problems = {**doc.problems, 500: doc.problems.get(500)}
    responses.update((str(s), _problem(s, note)) for s, note in sorted(problems.items()))
    out["responses"] = responses
    if doc.security is not None:
        out["security"] = [{doc.security: []}]
    return out


def build_document(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    ops = list(operations(routes))
    schemas = _Schemas(ops)
    known = {op.id for op in ops}
    paths: dict[str, dict[str, Any]] = {}
    for op in ops:
        paths.setdefault(op.path, {})[op.method] = _operation(op, schemas, known)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "slotmill",
            "version": version("slotmill"),
            "description": "Pre-computed bookable slots, holds and bookings. Instants are RFC 3339 "
            "in UTC; errors are RFC 9457 problem+json with a stable `code`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.components,
            "securitySchemes": {
                name: {"type": "http", "scheme": "bearer", "description": text}
                for name, text in _SECURITY_SCHEMES.items()
            },
        },
    }


def openapi_document(routes: Iterable[BaseRoute]) -> bytes:
    return orjson.dumps(build_document(routes))
