"""The host's rules API: the source tables as resources, behind the tenant's key
(docs/architecture.md#rules-api)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from slotmill.api.rules import feeds, week
from slotmill.api.rules.crud import resource_routes
from slotmill.api.rules.resources import ALL

routes: list[BaseRoute] = [
    *(r for res in ALL for r in resource_routes(res)),
    *week.routes,
    *feeds.routes,
]
