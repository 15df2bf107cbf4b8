"""``GET /``: where to go from here, for whoever opens the server's address.

A browser (``Accept: text/html``) gets a small page of links; anything else gets the same
links as JSON. No database call: the page answers even while the database is down, and
says where to look (``/readyz``).
"""

from __future__ import annotations

from html import escape
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute

from slotmill.api.routing import Reply, route
from slotmill.demo import DEMO_SLUG

# The project's own documentation, in the repository (not served).
DOCS = {
    "README.md": "first hour, CLI, HTTP API, decisions",
    "docs/rules.md": "what a slot is; read and booking rules, with examples",
    "docs/architecture.md": "the layers, who owns what, one hold -> confirm traced",
    "docs/operations.md": "configuration, scaling, backups, upgrades, metrics, runbooks",
    "docs/console.md": "the operator console: status, a staff day traced, utilization",
}


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 1.0


def _wants_html(request: Request) -> bool:
    """HTML when the client ranks text/html above JSON: a browser does, curl (*/*) does not."""
    html = json = 0.0
    for part in request.headers.get("accept", "").split(","):
        media, _, params = part.partition(";")
        media = media.strip().lower()
        if media in ("text/html", "application/xhtml+xml"):
            html = max(html, _quality(params))
        elif media == "application/json":
            json = max(json, _quality(params))
    return html > 0 and html >= json


def links(request: Request) -> dict[str, Any]:
    mounted = {getattr(r, "name", None) for r in request.app.routes}
    demo = bool(request.app.state.settings.demo_mode)
    out: dict[str, str] = {}
    if "widget" in mounted:
        out["widget"] = f"/widget/?tenant={DEMO_SLUG}" if demo else "/widget/?tenant=SLUG"
    if "admin_ui" in mounted:
        out["console"] = "/admin/"
    out |= {
        "openapi": "/openapi.json",
        "healthz": "/healthz",
        "readyz": "/readyz",
        "metrics": "/metrics",
        "catalog": f"/v1/tenants/{DEMO_SLUG if demo else 'SLUG'}/catalog",
    }
    return {"name": "slotmill", "links": out, "docs": DOCS}


_TITLES = {
    "widget": "Booking widget",
    "console": "Operator console (asks for the admin key)",
    "openapi": "OpenAPI document (every endpoint)",
    "healthz": "Liveness probe",
    "readyz": "Readiness probe (database reachable, schema current)",
    "metrics": "Prometheus metrics",
    "catalog": "Catalog: services, staff and locations of a tenant",
}


def _page(data: dict[str, Any]) -> str:
    items = "\n".join(
        f'<li><a href="{escape(url)}">{escape(_TITLES.get(name, name))}</a> <code>{escape(url)}</code></li>'
        for name, url in data["links"].items()
    )
    docs = "\n".join(f"<li><code>{escape(path)}</code>: {escape(what)}</li>" for path, what in data["docs"].items())
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>slotmill</title>
<style>body{{font-family:system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
code{{background:#f3f3f3;padding:0 .25rem}}</style></head>
<body>
<h1>slotmill</h1>
<p>Pre-computed bookable appointment slots in PostgreSQL.</p>
<h2>Here</h2>
<ul>
{items}
</ul>
<h2>In the repository</h2>
<ul>
{docs}
</ul>
</body>
</html>
"""


async def home(request: Request) -> Response:
    data = links(request)
    headers = {"Vary": "Accept"}
    if _wants_html(request):
        return HTMLResponse(_page(data), headers=headers)
    return JSONResponse(data, headers=headers)


routes: list[BaseRoute] = [
    route(
        "/",
        home,
        "GET",
        summary="Where to look: the widget, this API's document, probes and metrics (HTML for browsers)",
        tag="probes",
        responses={200: Reply(dict[str, Any], media_type="application/json")},
        name="home",
    )
]
