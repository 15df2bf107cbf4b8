"""Public catalog of a tenant (services, staff, locations) for booking widgets.

SPEC §9 has no public way to learn what can be booked and with whom, yet every widget needs
it before its first slot read. Read-only, no key, no customer data, rate-limited like the
slot reads: one SQL statement (``read_catalog``) builds the JSON in PostgreSQL and the
handler passes the text through; ``CatalogOut`` (api/models.py) documents it.
"""

from __future__ import annotations

from typing import Any

from psycopg.rows import tuple_row
from psycopg.types.json import Json
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from slotmill.api.errors import not_found
from slotmill.api.models import CatalogOut, TenantPath, tenant_slug
from slotmill.api.ratelimit import rate_limit
from slotmill.api.replicas import ReadRouter, request_token
from slotmill.api.routing import Header, Reply, route
from slotmill.sql import owned_by

Q = owned_by(__name__)

# Services and staff change rarely; a minute of staleness spares the database a read per
# page view and is far shorter than anyone takes to pick a slot.
CACHE_CONTROL = "public, max-age=60"

# Endpoints a booking page uses when this server has them, by path: the page subscribes to
# live changes and offers a waitlist only where they exist.
FEATURES = {"events": "/v1/tenants/{slug}/events", "waitlist": "/v1/tenants/{slug}/waitlist"}


def features(routes: list[Any]) -> dict[str, bool]:
    paths = {getattr(r, "path", None) for r in routes}
    return {name: path in paths for name, path in FEATURES.items()}


async def read_catalog(request: Request) -> Response:
    await rate_limit(request, "reads")
    state = request.app.state
    slug = tenant_slug(request.path_params["slug"])
    found = getattr(state, "catalog_features", None)
    if found is None:
        found = state.catalog_features = features(request.app.routes)
    # A replica's answer when there is one (api/replicas.py), like the slot reads.
    reads: ReadRouter = state.reads
    row = await reads.fetch_one(
        Q["read_catalog"], {"slug": slug, "features": Json(found)}, token=request_token(request), row_factory=tuple_row
    )
    if row is None:
        raise not_found("tenant", f"no tenant {slug!r}")
    return Response(row[0], media_type="application/json", headers={"Cache-Control": CACHE_CONTROL})


routes: list[BaseRoute] = [
    route(
        "/v1/tenants/{slug}/catalog",
        read_catalog,
        "GET",
        summary="What can be booked with whom, where, and how a booking page confirms",
        tag="public",
        path=TenantPath,
        responses={
            200: Reply(CatalogOut, headers={"Cache-Control": Header("Cacheable for a minute.", required=True)})
        },
        problems=[404, 429, 503],
        name="catalog",
    ),
]
