"""Outbound HTTP (webhook deliveries, calendar feeds) never reaches the platform's own
network unless the operator allows it (slotmill/outbound.py): checked on every connection,
redirects included, and when a host registers a URL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from slotmill.calendars import FeedError, fetch
from slotmill.outbound import Guard, async_client, sync_client, url_problem
from tests.support import World, bearer, db_rows, problem, run

LOOPBACK = Guard.from_setting("127.0.0.0/8")


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/away"):
            # a redirect elsewhere: /away?to=http://...
            self.send_response(302)
            self.send_header("Location", self.path.split("to=", 1)[1])
            self.end_headers()
            return
        body = b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[int]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # a cloud's metadata service
        ("100.64.0.1", True),  # carrier-grade NAT
        ("0.0.0.0", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),  # IPv4-mapped loopback
        ("224.0.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_only_public_addresses_are_reached_by_default(address: str, refused: bool) -> None:
    assert Guard().refuses(address) is refused


def test_allowed_networks_and_any() -> None:
    g = Guard.from_setting("10.0.0.0/8, 192.168.0.0/16")
    assert not g.refuses("10.9.9.9") and not g.refuses("192.168.1.1")
    assert g.refuses("127.0.0.1") and g.refuses("172.16.0.1")
    assert not Guard.from_setting("*").refuses("127.0.0.1")
    with pytest.raises(ValueError):
        Guard.from_setting("not-a-network")


def test_registered_urls_with_a_private_literal_or_localhost_are_refused() -> None:
    g = Guard()
    assert url_problem("http://127.0.0.1:8080/hook", g)
    assert url_problem("http://[::1]/hook", g)
    assert url_problem("https://localhost/hook", g)
    assert url_problem("http://169.254.169.254/latest/meta-data/", g)
    # a name is checked when it is resolved, on each connection
    assert url_problem("https://hooks.example.com/x", g) is None
    assert url_problem("https://8.8.8.8/x", g) is None
    assert url_problem("http://127.0.0.1:8080/hook", LOOPBACK) is None


def test_connections_to_a_private_address_are_refused_sync_and_async(server: int) -> None:
    url = f"http://127.0.0.1:{server}/ok"
    with sync_client(Guard()) as c, pytest.raises(httpx.ConnectError, match="not a public address"):
        c.get(url)
    with sync_client(LOOPBACK) as c:
        assert c.get(url).status_code == 200

    async def go() -> None:
        async with async_client(Guard()) as c:
            with pytest.raises(httpx.ConnectError, match="not a public address"):
                await c.post(url, content=b"{}")
        async with async_client(LOOPBACK) as c:
            assert (await c.get(url)).status_code == 200

    asyncio.run(go())


def test_a_name_that_resolves_to_loopback_is_refused(server: int) -> None:
    with sync_client(Guard()) as c, pytest.raises(httpx.ConnectError, match="localhost resolves to"):
        c.get(f"http://localhost:{server}/ok")


def test_a_feed_fetch_refuses_a_private_address_and_says_why(server: int) -> None:
    with pytest.raises(FeedError, match="not a public address"):
        fetch(f"http://127.0.0.1:{server}/ok", etag=None, last_modified=None, timeout_s=5, max_bytes=10_000)
    got = fetch(
        f"http://127.0.0.1:{server}/ok", etag=None, last_modified=None, timeout_s=5, max_bytes=10_000, guard=LOOPBACK
    )
    assert got.status == 200


def test_a_redirect_into_the_private_network_is_refused(server: int) -> None:
    """The first hop is allowed (as a public host would be); the redirect's target is
    checked on its own connection and refused, though it answers."""
    first = Guard.from_setting("127.0.0.1/32")
    other = ThreadingHTTPServer(("127.0.0.2", 0), _Handler)
    t = threading.Thread(target=other.serve_forever, daemon=True)
    t.start()
    try:
        target = f"http://127.0.0.2:{other.server_address[1]}/ok"
        with sync_client(Guard.from_setting("127.0.0.0/8")) as c:
            assert c.get(target).status_code == 200  # it does answer
        with sync_client(first, follow_redirects=True) as c, pytest.raises(httpx.ConnectError, match=r"127\.0\.0\.2"):
            c.get(f"http://127.0.0.1:{server}/away?to={target}")
    finally:
        other.shutdown()
        other.server_close()


def test_the_api_refuses_to_register_a_private_url(world: World) -> None:
    a = world.acme

    async def body(c: httpx.AsyncClient) -> None:
        r = await c.post(
            "/v1/tenants/acme/webhooks", json={"url": "http://169.254.169.254/latest"}, headers=bearer(a.key)
        )
        assert problem(r, 422)["field"] == "body.url", r.text
        r = await c.post(
            "/v1/tenants/acme/calendar-feeds",
            json={"staff_id": str(a.ann), "url": "https://10.0.0.8/cal.ics"},
            headers=bearer(a.key),
        )
        assert problem(r, 422)["field"] == "body.url", r.text

    run(world.url, body)
    assert db_rows(
        world.url, "SELECT (SELECT count(*) FROM webhook_endpoints) + (SELECT count(*) FROM calendar_feeds)"
    ) == [(0,)]
