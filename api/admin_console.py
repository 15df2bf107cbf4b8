"""The operator console's page (api/admin_ui/: static HTML, CSS and JavaScript, no build
step), mounted at /admin/.

The page holds nothing secret: it asks for the admin key, keeps it in the tab's session
storage and sends it as a bearer token to the admin API. Because that key opens every
tenant, the page is served with headers that keep other code away from it: scripts and
styles from this origin only (no inline code, so an injected string cannot run), never in
a frame of another site (clickjacking), no referrer, and revalidated on every load so an
upgrade is seen at once.
"""

from __future__ import annotations

from pathlib import Path

from starlette.datastructures import MutableHeaders
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_UI_DIR = Path(__file__).resolve().parent / "admin_ui"

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class _WithHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount() -> Mount:
    return Mount("/admin", app=_WithHeaders(StaticFiles(directory=ADMIN_UI_DIR, html=True)), name="admin_ui")
