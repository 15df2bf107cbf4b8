"""The application shell: probes, problem+json for every error, request ids and logs,
metrics, rate limits, static widget files, the uvicorn entry point (the OpenAPI document:
tests/api/test_api_openapi.py)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from slotmill.api import db as api_db
from slotmill.api import server as api_server
from slotmill.api.app import Q as PROBES
from slotmill.api.app import create_app
from slotmill.api.protocol import ProblemHttpToolsProtocol
from slotmill.api.ratelimit import RateLimiter, TrustedProxies, client_address
from slotmill.logs import JsonFormatter
from slotmill.sql import schema_version
from tests.support import World, db_exec, hold_ok, iso, problem, run, running, settings_for


def test_probes(world: World) -> None:
    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [await c.get("/healthz"), await c.get("/healthz/db"), await c.get("/readyz")]

    health, db, ready = run(world.url, body)
    assert health.json() == {"ok": True} and db.json() == {"ok": True}
    assert ready.json() == {"ok": True, "schema_version": schema_version(), "replicas": []}
    sql = [ln for ln in PROBES["ping"].splitlines() if not ln.startswith("--")]
    assert sql == ["SELECT 1;"]


def test_readyz_is_503_while_the_schema_is_behind(world: World) -> None:
    db_exec(world.url, "DELETE FROM slotmill_migrations WHERE version = %s", (schema_version(),))

    async def body(c: httpx.AsyncClient) -> httpx.Response:
        return await c.get("/readyz")

    p = problem(run(world.url, body), 503, "schema_outdated")
    assert "slotmill migrate" in p["detail"]


def test_503_when_the_database_does_not_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing listens on port 1: the app still starts (the pool connects in the background)
    # and says it is not ready instead of failing to boot; requests needing the database
    # are told to retry.
    monkeypatch.setattr(api_db, "ACQUIRE_TIMEOUT", 0.5)

    async def main() -> list[httpx.Response]:
        app = create_app(settings_for("postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                return [
                    await c.get("/readyz"),
                    await c.get("/healthz"),
                    await c.get("/healthz/db"),
                    await c.post(
                        "/v1/tenants/acme/holds",
                        json={"slot_id": "0123456789abcdef0123456789abcdef"},
                    ),
                ]

    ready, health, db, hold = asyncio.run(main())
    problem(ready, 503, "not_ready")
    assert health.status_code == 200
    for r in (db, hold):
        problem(r, 503, "database_unavailable")
        assert r.headers["retry-after"] == "1"


def test_unknown_routes_methods_and_crashes_are_problems_with_a_request_id(world: World) -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("a bug")

    async def main() -> list[httpx.Response]:
        async with running(world.url) as (app, c):
            app.router.routes.append(Route("/boom", boom))
            return [
                await c.get("/no/such/route"),
                await c.post("/healthz"),
                await c.get("/boom"),
                await c.post("/v1/tenants/acme/holds", content=b"x" * 70_000),
                await c.request("PUT", "/v1/tenants/acme/slots"),
            ]

    missing, method, crash, big, put = asyncio.run(main())
    problem(missing, 404, "not_found")
    problem(method, 405, "method_not_allowed")
    assert "GET" in method.headers["allow"]
    p = problem(crash, 500, "internal_error")
    assert "a bug" not in crash.text, "no internals in the answer"
    assert crash.headers["x-request-id"] in p["detail"]
    problem(big, 413, "payload_too_large")
    problem(put, 405, "method_not_allowed")


def test_request_ids_are_echoed_sanitized_and_logged(world: World) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("slotmill.api")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)

    async def body(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [
            await c.get("/healthz", headers={"X-Request-ID": "trace-abc.123"}),
            await c.get("/healthz", headers={"X-Request-ID": "no spaces allowed"}),
            await c.get("/healthz", headers={"X-Request-ID": "x" * 200}),
            await c.get("/healthz"),
        ]

    try:
        given, spaced, long, none = run(world.url, body)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    assert given.headers["x-request-id"] == "trace-abc.123"
    for r in (spaced, long, none):
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    assert len({r.headers["x-request-id"] for r in (spaced, long, none)}) == 3
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = {(x.get("request_id"), x.get("path"), x.get("status")) for x in lines}
    assert ("trace-abc.123", "/healthz", 200) in logged
    assert (none.headers["x-request-id"], "/healthz", 200) in logged


def test_metrics_count_requests_by_route_template_and_holds(world: World) -> None:
    w, a = world, world.acme

    async def body(c: httpx.AsyncClient) -> str:
        h = {"service_id": str(a.cut), "starts_at": iso(w.at("10:00")), "staff_id": str(a.ann)}
        await hold_ok(c, a, h)
        assert (await c.post("/v1/tenants/acme/holds", json=h)).status_code == 409
        r = await c.get("/metrics")
        assert r.headers["content-type"].startswith("text/plain")
        return r.text

    text = run(w.url, body)
    assert re.search(r"^slotmill_holds_created_total \d", text, re.M)
    assert re.search(r"^slotmill_hold_conflicts_total \d", text, re.M)
    assert "slotmill_confirms_total" in text
    for status in ("201", "409"):
        assert re.search(
            r'slotmill_http_request_duration_seconds_count\{method="POST",'
            rf'route="/v1/tenants/{{slug}}/holds",status="{status}"\}} \d',
            text,
        ), text
    assert "acme" not in text, "labels are route templates, never raw paths"


def test_widget_files_are_served_and_demo_routes_only_in_demo_mode(world: World) -> None:
    async def main(demo: bool) -> tuple[httpx.Response, httpx.Response]:
        async with running(world.url, demo_mode=demo) as (_, c):
            return (
                await c.get("/widget/"),
                await c.post(f"/v1/demo/tenants/acme/holds/{'0' * 8}-0000-4000-8000-{'0' * 12}/confirm", json={}),
            )

    widget, demo_off = asyncio.run(main(False))
    assert widget.status_code == 200 and "text/html" in widget.headers["content-type"]
    problem(demo_off, 404, "not_found")
    _, demo_on = asyncio.run(main(True))
    assert demo_on.status_code != 404 or demo_on.json()["code"] != "not_found"


def test_create_app_without_arguments_reads_the_environment(env_db: str) -> None:
    async def main() -> httpx.Response:
        app = create_app()
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://t") as c,
        ):
            return await c.get("/healthz/db")

    assert asyncio.run(main()).json() == {"ok": True}


def test_rate_limiter_is_a_token_bucket_per_key() -> None:
    now = [1000.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, bursts of 60
    assert all(limiter.hit("a") == 0.0 for _ in range(60))
    assert limiter.hit("a") == pytest.approx(1.0)
    assert limiter.hit("b") == 0.0, "another address has its own bucket"
    now[0] += 2.5
    assert limiter.hit("a") == 0.0 and limiter.hit("a") == 0.0 and limiter.hit("a") > 0
    off = RateLimiter(0)
    assert not off.enabled and all(off.hit("a") == 0.0 for _ in range(1000))


def test_client_address_trusts_forwarded_for_only_when_configured() -> None:
    scope = {
        "type": "http",
        "headers": [(b"x-forwarded-for", b"198.51.100.9, 10.0.0.1")],
        "client": ("10.0.0.1", 5000),
    }
    request = Request(scope)
    assert client_address(request, TrustedProxies()) == "10.0.0.1"
    # one trusted hop: the address that proxy saw, not what the client wrote before it
    assert client_address(request, TrustedProxies(peer=True)) == "10.0.0.1"
    assert client_address(request, TrustedProxies(["10.0.0.0/8"])) == "198.51.100.9"


@pytest.mark.parametrize(
    ("forwarded", "trusted", "peer", "expected"),
    [
        # nginx appends $remote_addr: a client's own header is to its left
        ("6.6.6.6, 203.0.113.7", ["10.0.0.0/8"], "10.0.0.2", "203.0.113.7"),
        # two proxies of ours (a CDN range and the load balancer)
        ("6.6.6.6, 203.0.113.7, 192.0.2.10", ["10.0.0.0/8", "192.0.2.0/24"], "10.0.0.2", "203.0.113.7"),
        # a peer we do not trust: its header means nothing
        ("203.0.113.7", ["10.0.0.0/8"], "198.51.100.1", "198.51.100.1"),
        # garbage in the header is a hop like any other, and untrusted
        ("not-an-ip", ["10.0.0.0/8"], "10.0.0.2", "not-an-ip"),
        # every hop trusted: the leftmost is all we know
        ("10.1.1.1, 10.2.2.2", ["10.0.0.0/8"], "10.0.0.2", "10.1.1.1"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_hop(
    forwarded: str, trusted: list[str], peer: str, expected: str
) -> None:
    assert TrustedProxies(trusted).client(peer, forwarded) == expected


def test_serve_uses_the_factory_for_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, dict[str, Any]]] = []
    monkeypatch.setattr(api_server.uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setattr(api_server, "setup_logging", lambda level: None)
    monkeypatch.setenv("DATABASE_URL", "postgresql://unused")
    from slotmill.config import get_settings

    get_settings.cache_clear()
    try:
        api_server.serve("127.0.0.1", 8123, workers=3)
        api_server.serve("127.0.0.1", 8124, workers=1)
    finally:
        get_settings.cache_clear()
    (many_app, many), (one_app, one) = calls
    assert many_app == "slotmill.api.app:create_app" and many["factory"] is True and many["workers"] == 3
    assert not isinstance(one_app, str) and "workers" not in one
    for kw in (many, one):
        assert kw["loop"] == "auto" and kw["http"] is ProblemHttpToolsProtocol


@pytest.mark.parametrize(
    "raw",
    [
        b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n",  # a method no parser knows
        b"GET /" + b"a" * 1_048_576 + b" HTTP/1.1\r\nHost: x\r\n\r\n",  # a 1 MB request line
        b"POST /v1/tenants/acme/holds HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",  # request smuggling's favourite
    ],
    ids=["unknown-method", "1mb-url", "length-and-chunked"],
)
def test_requests_that_are_not_http_get_a_problem_json_400(raw: bytes) -> None:
    import socket
    import threading

    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never reached
        raise AssertionError("the parser should have refused it")

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=ProblemHttpToolsProtocol, log_config=None, lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(100):
            if server.started:
                break
            threading.Event().wait(0.05)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(raw)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    finally:
        server.should_exit = True
        thread.join(10)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["code"] == "bad_request"
