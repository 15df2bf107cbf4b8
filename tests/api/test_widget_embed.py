"""The booking widget embedded with one script tag on a salon's own site: another origin
(a second local HTTP server, another port), so every API call is cross-origin and only the
tenant's allowed_origins may make them. Two ways to confirm: the publishable key, and the
salon's own confirm URL (its backend confirms with the secret key, which never reaches the
browser).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser

from slotmill.demo import DEMO_PUBLISHABLE_KEY, DEMO_SLUG, demo_id
from slotmill.keys import create_key
from tests.api.conftest import Site
from tests.api.test_widget_browser import (
    CONTACT,
    WIDTHS,
    _active_id,
    _axe,
    _context,
    _fill_contact,
    _no_horizontal_scroll,
    _ready,
    _shot,
    _watch,
)

pytestmark = pytest.mark.browser

# The salon's page: its own heading, and rules that would wreck the widget if they reached in.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Fern &amp; Finch Salon</title>
  <style>
    body {{ margin: 0; font-family: Georgia, serif; background: #fbf7f2; }}
    header, footer {{ padding: 16px 24px; background: #2f3e2f; color: #fff; }}
    main {{ max-width: 1040px; margin: 0 auto; }}
    button {{ background: hotpink !important; }}
    #service, .slot {{ display: none !important; }}
  </style>
</head>
<body>
  <header><h1>Fern &amp; Finch Salon</h1><p>Hair and beauty in London and New York</p></header>
  <main>
    <p>Book online below, or call us.</p>
    <script src="{api}/widget/embed.js" {attrs} async></script>
  </main>
  <footer>© Fern &amp; Finch</footer>
</body>
</html>
"""


@contextmanager
def salon_site(api: str, attrs: str, secret: str = "") -> Iterator[str]:
    """The salon's own site on 127.0.0.1 (a port of its own): the page, and POST /confirm,
    which confirms the hold server to server with the tenant's secret key."""
    confirmed: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] != "/":
                self._send(404, "text/plain", b"not found")
                return
            self._send(200, "text/html; charset=utf-8", PAGE.format(api=api, attrs=attrs).encode())

        def do_POST(self) -> None:
            if self.path != "/confirm":
                self._send(404, "text/plain", b"not found")
                return
            data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            confirmed.append(data)
            r = httpx.post(
                f"{api}/v1/tenants/{data['tenant']}/holds/{data['hold_id']}/confirm",
                json={"customer_ref": "site-user-42", "contact": data["contact"]},
                headers={"Authorization": f"Bearer {secret}"},
            )
            if r.status_code == 201:
                number = "FF-" + r.json()["id"][:6]
                body = {"message": f"See you soon, {data['contact']['name']}! Your booking number is {number}."}
                self._send(201, "application/json", json.dumps(body).encode())
            else:  # the problem as slotmill said it: the widget knows 409 and 410
                self._send(r.status_code, "application/problem+json", r.content)

        def _send(self, status: int, kind: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="salon-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


def _book_first_brooklyn_time(page: Any, site: Site) -> tuple[Any, ...]:
    page.wait_for_selector("#widget[data-step='pick']")
    page.locator("#location-list label", has_text="Brooklyn").click()
    page.select_option("#service", site.service("Haircut"))
    _ready(page)
    page.locator("button.slot").first.click()
    page.wait_for_selector("#step-hold:not([hidden])")
    held = site.held()
    _fill_contact(page, CONTACT)
    return held


@pytest.mark.parametrize("size", list(WIDTHS))
def test_embedded_on_another_origin_with_the_publishable_key(browser: Browser, site: Site, size: str) -> None:
    attrs = f'data-tenant="{DEMO_SLUG}" data-key="{DEMO_PUBLISHABLE_KEY}"'
    with salon_site(site.base, attrs) as origin:
        site.settings(allowed_origins=[origin])
        errors: list[str] = []
        ctx = _context(browser, size=size)
        page = _watch(ctx.new_page(), errors)
        calls: list[str] = []
        page.on("request", lambda r: calls.append(r.url) if "/v1/" in r.url else None)
        page.goto(origin + "/")
        hold_id, _, location_id, _ = _book_first_brooklyn_time(page, site)
        assert location_id == demo_id("location", "Fern & Finch, Brooklyn")
        # The salon's rules stay outside: its "hide #service" and pink buttons do not apply.
        assert (
            page.evaluate(
                "getComputedStyle(document.querySelector('.slotmill-booking')"
                ".shadowRoot.getElementById('confirm')).backgroundColor"
            )
            != "rgb(255, 105, 180)"
        )
        _no_horizontal_scroll(page, WIDTHS[size][0])
        _shot(page, f"{size}-embedded-hold")
        page.click("#confirm")
        page.wait_for_selector("#step-done:not([hidden])")
        assert _active_id(page) == "done-heading"
        _shot(page, f"{size}-embedded-done")
        _axe(page, "embedded, done")
        assert site.query("SELECT status, customer_ref, contact FROM bookings WHERE id = %s", hold_id) == [
            ("confirmed", "widget", CONTACT)
        ]
        # Every API call went to slotmill's origin from the salon's: cross-origin, allowed.
        assert calls and all(c.startswith(site.base) for c in calls)
        assert any("/confirm/public" in c for c in calls)
        assert errors == []
        ctx.close()


def test_an_origin_the_tenant_did_not_allow_gets_nothing(browser: Browser, site: Site) -> None:
    attrs = f'data-tenant="{DEMO_SLUG}" data-key="{DEMO_PUBLISHABLE_KEY}"'
    with salon_site(site.base, attrs) as origin:
        site.settings(allowed_origins=[origin])
        ctx = _context(browser)
        page = ctx.new_page()
        # Same server, another origin: localhost is not 127.0.0.1 to a browser.
        page.goto(origin.replace("127.0.0.1", "localhost") + "/")
        page.wait_for_selector("#alert:not([hidden])")
        assert "Could not reach the booking server" in page.inner_text("#alert")
        ctx.close()


def test_embedded_posts_the_hold_to_the_salons_own_confirm_url(browser: Browser, site: Site) -> None:
    with psycopg.connect(site.db_url) as conn:
        tenant_id = conn.execute("SELECT id FROM tenants WHERE slug = %s", (DEMO_SLUG,)).fetchone()
        assert tenant_id is not None
        secret = create_key(conn, tenant_id[0])
    # No publishable key on this page: it hands the hold to the salon's backend.
    with salon_site(site.base, f'data-tenant="{DEMO_SLUG}"', secret=secret) as origin:
        site.settings(allowed_origins=[origin], public_confirm=False, confirm_url=origin + "/confirm")
        errors: list[str] = []
        ctx = _context(browser)
        page = _watch(ctx.new_page(), errors)
        page.goto(origin + "/")
        hold_id = _book_first_brooklyn_time(page, site)[0]
        page.click("#confirm")
        page.wait_for_selector("#step-done:not([hidden])")
        # The salon's own answer is shown.
        assert "See you soon, Grace Hopper! Your booking number is FF-" in page.inner_text("#done-message")
        assert "Brooklyn" in page.inner_text("#done-summary")
        _shot(page, "desktop-embedded-host-confirm")
        assert site.query("SELECT status, customer_ref, contact FROM bookings WHERE id = %s", hold_id) == [
            ("confirmed", "site-user-42", CONTACT)
        ]
        html = page.content()
        assert secret not in html and "smk_" not in html
        assert errors == []
        ctx.close()
