"""/openapi.json (api/openapi.py) and the documented routes it is built from (api/routing.py):
every route documented and every documented operation mounted, a valid OpenAPI 3.1
document, the package's version, links that name real operations and parameters, and
models that describe what the database builds."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import httpx
import pytest
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles

from slotmill.api.app import WIDGET_DIR, create_app
from slotmill.api.models import CatalogOut, HoldPath, Ok, Ready, TenantPath
from slotmill.api.openapi import build_document, operations
from slotmill.api.routing import DocumentedRoute, Reply, route
from tests.support import World, run, settings_for

# The document needs no database: the app is built, never started.
NO_DB = "postgresql://nobody@127.0.0.1:1/none"
DEMO_PATH = "/v1/demo/tenants/{slug}/holds/{hold_id}/confirm"


def _document(demo_mode: bool) -> tuple[Starlette, dict[str, Any]]:
    app = create_app(settings_for(NO_DB, demo_mode=demo_mode))

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            return await c.get("/openapi.json")

    r = asyncio.run(main())
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc: dict[str, Any] = r.json()
    return app, doc


def _mounted(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str, Route]]:
    for r in routes:
        if isinstance(r, Mount):
            yield from _mounted(r.routes, prefix + r.path)
        elif isinstance(r, Route):
            for method in r.methods or ():
                if method != "HEAD":
                    yield prefix + r.path, method.lower(), r


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def _ops(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield path, method, op


@pytest.mark.parametrize("demo_mode", [False, True])
def test_every_mounted_route_is_documented_and_every_operation_is_mounted(demo_mode: bool) -> None:
    app, doc = _document(demo_mode)
    mounted = list(_mounted(app.routes))
    assert all(isinstance(r, DocumentedRoute) for _, _, r in mounted)
    assert {(p, m) for p, m, _ in mounted} == {(p, m) for p, m, _ in _ops(doc)}
    assert (DEMO_PATH in doc["paths"]) is demo_mode
    assert any(isinstance(r, Mount) and r.path == "/widget" for r in app.routes) is WIDGET_DIR.is_dir()
    ids = [op["operationId"] for _, _, op in _ops(doc)]
    assert len(ids) == len(set(ids))
    for path, _, op in _ops(doc):
        assert "500" in op["responses"] and any(s < "300" for s in op["responses"]), (path, op)
        declared = {p["name"] for p in op.get("parameters", ()) if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
    schemas = doc["components"]["schemas"]
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref


@pytest.mark.parametrize("demo_mode", [False, True])
def test_the_document_is_valid_openapi_3_1_of_this_version(demo_mode: bool) -> None:
    _, doc = _document(demo_mode)
    validate(doc, cls=OpenAPIV31SpecValidator)
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["version"] == version("slotmill")


def test_what_the_document_says_of_parameters_keys_and_problems() -> None:
    _, doc = _document(demo_mode=True)
    paths = doc["paths"]
    slots = paths["/v1/tenants/{slug}/slots"]["get"]
    params = {p["name"]: p for p in slots["parameters"]}
    assert set(params) == {
        "slug",
        "service_id",
        "from",
        "to",
        "staff_id",
        "location_id",
        "tz",
        "group",
        "candidates",
        "limit",
        "consistency",
        "Slotmill-Consistency",
    }
    assert params["slug"]["schema"]["pattern"] == "^[a-z0-9][a-z0-9-]{0,62}$"
    assert params["service_id"]["required"] and not params["staff_id"]["required"]
    # An optional query parameter is absent, never null.
    assert params["staff_id"]["schema"] == {"type": "string", "format": "uuid"}
    assert "SlotQuery" not in doc["components"]["schemas"]

    hold = paths["/v1/tenants/{slug}/holds"]["post"]
    assert set(hold["responses"]) == {"201", "404", "409", "413", "422", "429", "500", "503"}
    assert hold["responses"]["429"]["headers"]["Retry-After"]["required"] is True
    assert "slot_unavailable" in hold["responses"]["409"]["description"]
    assert "security" not in hold

    confirm = paths["/v1/tenants/{slug}/holds/{hold_id}/confirm"]["post"]
    assert set(confirm["responses"]) >= {"201", "401", "404", "409", "410", "422"}
    assert confirm["security"] == [{"tenant_key": []}]
    assert {p["name"] for p in confirm["parameters"] if p["in"] == "header"} == {"Idempotency-Key", "X-Idempotency-Key"}
    assert "Idempotent-Replayed" in confirm["responses"]["201"]["headers"]
    assert confirm["responses"]["401"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    for path in ("/v1/admin/recalculate", "/v1/admin/tenants/{slug}/status"):
        (op,) = paths[path].values()
        assert op["security"] == [{"admin_key": []}]
    assert set(paths["/v1/admin/recalculate"]["post"]["responses"]) >= {"200", "202"}
    assert set(doc["components"]["securitySchemes"]) == {"tenant_key", "admin_key"}
    release = paths["/v1/tenants/{slug}/holds/{hold_id}"]["delete"]
    assert "content" not in release["responses"]["204"]
    assert paths["/metrics"]["get"]["responses"]["200"]["content"] == {"text/plain": {"schema": {"type": "string"}}}


@pytest.mark.parametrize("demo_mode", [False, True])
def test_links_name_operations_and_parameters_of_the_document(demo_mode: bool) -> None:
    app, doc = _document(demo_mode)
    by_id = {op["operationId"]: (path, op) for path, _, op in _ops(doc)}
    declared = {
        (op.id, name)
        for op in operations(app.routes)
        for reply in op.doc.responses.values()
        for name, link in reply.links.items()
        if demo_mode or link.operation != "demo_confirm"
    }
    found = set()
    for path, _, op in _ops(doc):
        for response in op["responses"].values():
            for name, link in response.get("links", {}).items():
                found.add((op["operationId"], name))
                _, target = by_id[link["operationId"]]
                target_params = {p["name"] for p in target.get("parameters", ())}
                assert set(link.get("parameters", {})) <= target_params, (name, link)
                for expr in link.get("parameters", {}).values():
                    m = re.fullmatch(r"\$request\.path\.(\w+)", expr)
                    assert m is None or "{" + m.group(1) + "}" in path, expr
    # Only links to an operation the app does not mount (the demo route) are left out.
    assert found == declared
    # The chain a stateful run follows: slots -> hold -> confirm -> cancel.
    chain = [("read_slots", "hold_slot"), ("create_hold", "confirm"), ("confirm_hold", "cancel")]
    assert set(chain) <= found


def test_an_undocumented_route_is_an_error_and_mounts_follow_one_rule(tmp_path: Any) -> None:
    async def endpoint(request: Request) -> Response:
        return Response()

    documented = route(
        "/v1/tenants/{slug}/x", endpoint, "GET", summary="x", tag="t", path=TenantPath, responses={200: Ok}
    )
    with pytest.raises(TypeError, match="not documented"):
        build_document([Route("/plain", endpoint)])
    # A mounted router is documented under its prefix; a mounted app that is not a router
    # (static files) has no routes to document.
    doc = build_document(
        [
            Mount("/api", routes=[documented]),
            Mount("/files", app=StaticFiles(directory=tmp_path)),
            Mount("/sub", app=Router(routes=[documented])),
        ]
    )
    assert set(doc["paths"]) == {"/api/v1/tenants/{slug}/x", "/sub/v1/tenants/{slug}/x"}


def test_route_declarations_are_checked_where_they_are_written() -> None:
    async def endpoint(request: Request) -> Response:
        return Response()

    with pytest.raises(ValueError, match="path parameters"):
        route("/v1/tenants/{slug}", endpoint, "GET", summary="x", tag="t", path=HoldPath, responses={})
    with pytest.raises(ValueError, match="path parameters"):
        route("/v1/tenants/{slug}", endpoint, "GET", summary="x", tag="t", responses={})
    with pytest.raises(ValueError, match="notes"):
        route("/x", endpoint, "GET", summary="x", tag="t", responses={}, problems=[404], notes={409: "?"})
    r = route("/x", endpoint, "POST", summary="x", tag="t", responses={201: Ok}, problems=[503])
    assert r.name == "endpoint" and r.methods == {"POST"}
    assert r.doc.responses == {201: Reply(Ok)} and r.doc.problems == {503: None}


def test_the_models_describe_what_the_database_builds(world: World) -> None:
    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await c.get(f"/v1/tenants/{world.acme.slug}/catalog"),
            await c.get("/healthz"),
            await c.get("/readyz"),
        ]

    catalog, health, ready = run(world.url, body)
    assert catalog.status_code == 200, catalog.text
    cat = CatalogOut.model_validate_json(catalog.content)
    assert {s.id for s in cat.services} == {world.acme.cut, world.acme.trim}
    assert {s.id for s in cat.staff} == {world.acme.ann, world.acme.bob, world.acme.cid}
    Ok.model_validate_json(health.content)
    Ready.model_validate_json(ready.content)
