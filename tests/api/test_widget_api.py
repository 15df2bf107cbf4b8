"""What the booking widget stands on, without a browser: the public catalog, the demo-only
confirm-on-behalf (absent without demo mode), the publishable-key confirm, cross-origin
access per tenant, why a time went, and the page itself being served.

The real app runs on uvicorn in a thread on a free port (``serve``, also used by the browser
tests), so its lifespan, pools and middleware are all the real ones.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import orjson
import psycopg
import pytest
import uvicorn

from slotmill import seed
from slotmill.api.app import create_app
from slotmill.config import Settings
from slotmill.demo import DEMO_PUBLISHABLE_KEY, DEMO_SLUG, load_demo
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh

LONDON = ZoneInfo("Europe/London")


@contextmanager
def serve(settings: Settings) -> Iterator[str]:
    """The real app on uvicorn in a thread, on a port of its own; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="widget-api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()


@contextmanager
def client(*, demo_mode: bool) -> Iterator[httpx.Client]:
    with serve(_settings(demo_mode=demo_mode)) as base, httpx.Client(base_url=base) as c:
        yield c


def _settings(*, demo_mode: bool) -> Settings:
    # DATABASE_URL comes from the environment (env_db); limits out of the way of the tests.
    return Settings(demo_mode=demo_mode, rate_limit_reads=100_000, rate_limit_holds=100_000)


@pytest.fixture
def demo_db(env_db: str) -> str:
    with psycopg.connect(env_db) as conn:
        load_demo(conn)
        conn.commit()
        refresh(conn, load_tenant(conn, DEMO_SLUG))
    return env_db


@pytest.fixture
def demo_client(demo_db: str) -> Iterator[httpx.Client]:
    with client(demo_mode=True) as c:
        yield c


def _catalog(client: httpx.Client, slug: str = DEMO_SLUG) -> dict[str, Any]:
    r = client.get(f"/v1/tenants/{slug}/catalog")
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()
    return data


def _by_name(items: list[dict[str, Any]], key: str, name: str) -> str:
    return next(str(i["id"]) for i in items if i[key] == name)


def _hold(client: httpx.Client) -> dict[str, Any]:
    """Hold the first slot Ava has for a haircut next week (she works every weekday)."""
    cat = _catalog(client)
    haircut = _by_name(cat["services"], "name", "Haircut")
    ava = _by_name(cat["staff"], "display_name", "Ava Clarke")
    monday = datetime.now(LONDON).date() + timedelta(days=7 - datetime.now(LONDON).weekday())
    r = client.get(
        f"/v1/tenants/{DEMO_SLUG}/slots",
        params={
            "service_id": haircut,
            "staff_id": ava,
            "from": str(monday),
            "to": str(monday + timedelta(days=6)),
            "tz": "Europe/London",
        },
    )
    assert r.status_code == 200, r.text
    slot = r.json()["slots"][0]
    r = client.post(f"/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": slot["id"]})
    assert r.status_code == 201, r.text
    hold: dict[str, Any] = r.json()
    return hold


def _booking(url: str, booking_id: str) -> tuple[str, str | None]:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT status, customer_ref FROM bookings WHERE id = %s", (booking_id,)).fetchone()
    assert row is not None
    return row[0], row[1]


# --- catalog -------------------------------------------------------------------------------


def test_catalog_lists_what_can_be_booked_and_nothing_private(env_db: str) -> None:
    with psycopg.connect(env_db) as conn:
        t = seed.tenant(
            conn,
            "corner",
            name="Corner Shop",
            timezone="Europe/Paris",
            horizon_days=30,
            settings={
                "hold_ttl_seconds": 90,
                "max_advance_days": 20,
                "min_notice_minutes": 30,
                "public_confirm": True,
                "publishable_key": "smp_corner-public",
                "confirm_url": "https://corner.example/book/confirm",
                "allowed_origins": ["https://corner.example"],
            },
        )
        paris = seed.location(conn, t, "Paris")
        tokyo = seed.location(conn, t, "Tokyo", timezone="Asia/Tokyo")
        ann = seed.staff(conn, t, "Ann", location_id=paris, priority=1)
        bob = seed.staff(conn, t, "Bob", location_id=tokyo, priority=2, timezone="Asia/Seoul")
        gone = seed.staff(conn, t, "Gone", active=False)
        cut = seed.service(conn, t, "Cut", 30, staff_ids=[ann, bob, gone])
        group = seed.service(conn, t, "Group class", 60, max_advance_days=7, min_notice=0, staff_ids=[bob])
        conn.execute("UPDATE services SET seats = 6 WHERE id = %s", (group,))
        old = seed.service(conn, t, "Retired service", 30, active=False, staff_ids=[ann])
        seed.template(conn, t, ann, [1, 2, 3, 4, 5], "09:00", "17:00")
        # Ann also works Saturdays in Tokyo
        seed.template(conn, t, ann, [6], "09:00", "12:00", location_id=tokyo)
        start = datetime.now(LONDON).replace(microsecond=0) + timedelta(days=3)
        seed.booking(
            conn,
            t,
            ann,
            cut,
            start,
            start + timedelta(minutes=30),
            customer_ref="secret-customer-42",
        )
        other = seed.tenant(conn, "elsewhere")
        seed.staff(conn, other, "Someone else")
        conn.commit()

    with client(demo_mode=False) as c:
        r = c.get("/v1/tenants/corner/catalog")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json")
        assert "secret-customer-42" not in r.text
        assert "smp_corner-public" not in r.text  # the page is given its key by its host
        cat = r.json()
        assert cat["tenant"] == {
            "slug": "corner",
            "name": "Corner Shop",
            "timezone": "Europe/Paris",
            "horizon_days": 30,
        }
        assert cat["booking"] == {
            "hold_ttl_seconds": 90,
            "public_confirm": True,
            "confirm_url": "https://corner.example/book/confirm",
        }
        # this server streams live changes and keeps a waitlist: the page uses both
        assert cat["features"] == {"events": True, "waitlist": True}
        # the bookable window: the service's own, else the tenant's settings
        assert cat["services"] == [
            {
                "id": str(cut),
                "name": "Cut",
                "duration_minutes": 30,
                "seats": 1,
                "min_notice_minutes": 30,
                "max_advance_days": 20,
            },
            {
                "id": str(group),
                "name": "Group class",
                "duration_minutes": 60,
                "seats": 6,
                "min_notice_minutes": 0,
                "max_advance_days": 7,
            },
        ]
        assert str(old) not in r.text and str(gone) not in r.text
        # staff by priority; only active services in service_ids; zones and every location
        assert cat["staff"] == [
            {
                "id": str(ann),
                "display_name": "Ann",
                "location_id": str(paris),
                "timezone": "Europe/Paris",
                "location_ids": sorted([str(paris), str(tokyo)]),
                "service_ids": [str(cut)],
            },
            {
                "id": str(bob),
                "display_name": "Bob",
                "location_id": str(tokyo),
                "timezone": "Asia/Seoul",
                "location_ids": [str(tokyo)],
                "service_ids": sorted([str(cut), str(group)]),
            },
        ]
        # a location without a zone of its own is in the tenant's
        assert cat["locations"] == [
            {"id": str(paris), "name": "Paris", "timezone": "Europe/Paris"},
            {"id": str(tokyo), "name": "Tokyo", "timezone": "Asia/Tokyo"},
        ]
        assert "Someone else" not in r.text

        for slug in ("nope", "NOT-A-SLUG", "a%00b", "x" * 80):
            r = c.get(f"/v1/tenants/{slug}/catalog")
            assert r.status_code == 404, slug
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "tenant_not_found"


def test_catalog_of_a_tenant_with_nothing_yet(env_db: str) -> None:
    with psycopg.connect(env_db) as conn:
        seed.tenant(conn, "empty")
        conn.commit()
    with client(demo_mode=False) as c:
        cat = _catalog(c, "empty")
    assert (cat["services"], cat["staff"], cat["locations"]) == ([], [], [])


# --- the demo confirm route ------------------------------------------------------------------


def test_demo_confirm_route_absent_without_demo_mode(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        hold = _hold(c)
        r = c.post(
            f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm",
            json={"name": "Mallory"},
        )
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"  # no such route, not an unknown hold
    assert _booking(demo_db, hold["hold_id"]) == ("held", None)

    # The same hold, the same request, in demo mode: confirmed.
    with client(demo_mode=True) as c:
        r = c.post(
            f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm",
            json={"name": "Mallory"},
        )
        assert r.status_code == 201, r.text
    assert _booking(demo_db, hold["hold_id"]) == ("confirmed", "demo:Mallory")


def test_demo_confirm_confirms_like_the_host_and_removes_the_slot(demo_client: httpx.Client, demo_db: str) -> None:
    hold = _hold(demo_client)
    r = demo_client.post(f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm", json={"name": "  Ada  "})
    assert r.status_code == 201, r.text
    booking = r.json()
    assert booking["id"] == hold["hold_id"]
    assert booking["status"] == "confirmed"
    assert booking["customer_ref"] == "demo:Ada"
    assert (booking["starts_at"], booking["ends_at"], booking["staff_id"]) == (
        hold["starts_at"],
        hold["ends_at"],
        hold["staff_id"],
    )

    day = datetime.fromisoformat(hold["starts_at"].replace("Z", "+00:00")).astimezone(LONDON).date()
    r = demo_client.get(
        f"/v1/tenants/{DEMO_SLUG}/slots",
        params={
            "service_id": hold["service_id"],
            "staff_id": hold["staff_id"],
            "from": str(day),
            "to": str(day),
            "tz": "Europe/London",
        },
    )
    assert hold["starts_at"] not in {s["starts_at"] for s in r.json()["slots"]}
    with psycopg.connect(demo_db) as conn:
        left = conn.execute(
            "SELECT count(*) FROM availability_slots WHERE staff_id = %s AND starts_at = %s",
            (hold["staff_id"], hold["starts_at"]),
        ).fetchone()
    assert left == (0,)

    # Twice: it is no longer a hold.
    r = demo_client.post(f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm", json={"name": "Ada"})
    assert r.status_code == 409
    assert r.json()["code"] == "hold_not_live"


def test_demo_confirm_of_an_expired_hold_is_gone(demo_client: httpx.Client, demo_db: str) -> None:
    hold = _hold(demo_client)
    with psycopg.connect(demo_db) as conn:
        conn.execute(
            "UPDATE bookings SET expires_at = now() - interval '1 second' WHERE id = %s",
            (hold["hold_id"],),
        )
    r = demo_client.post(f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm", json={"name": "Late"})
    assert r.status_code == 410
    assert r.json()["code"] == "hold_expired"
    assert _booking(demo_db, hold["hold_id"]) == ("expired", None)


BAD_BODIES: list[tuple[Any, str]] = [
    ({}, "body.name"),
    ({"name": ""}, "body.name"),
    ({"name": "   "}, "body.name"),
    ({"name": 42}, "body.name"),
    ({"name": "x" * 101}, "body.name"),
    ({"name": "two\nlines"}, "body.name"),
    ({"name": "nul\x00"}, "body.name"),
    ({"name": "Ada", "customer_ref": "someone-else"}, "body.customer_ref"),
    ([], "body"),
    (None, "body"),  # not JSON at all
]


def test_demo_confirm_refuses_bad_input_and_changes_nothing(demo_client: httpx.Client, demo_db: str) -> None:
    hold = _hold(demo_client)
    url = f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm"
    for body, field in BAD_BODIES:
        if body is None:
            r = demo_client.post(url, content=b"{not json", headers={"Content-Type": "application/json"})
        else:
            r = demo_client.post(url, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field, body
    assert _booking(demo_db, hold["hold_id"]) == ("held", None)


def test_demo_confirm_unknown_things(demo_client: httpx.Client) -> None:
    base = "/v1/demo/tenants"
    r = demo_client.post(f"{base}/{DEMO_SLUG}/holds/not-a-uuid/confirm", json={"name": "Ada"})
    assert (r.status_code, r.json()["field"]) == (422, "path.hold_id")
    r = demo_client.post(f"{base}/{DEMO_SLUG}/holds/{UUID(int=1)}/confirm", json={"name": "Ada"})
    assert (r.status_code, r.json()["code"]) == (404, "hold_not_found")
    hold = _hold(demo_client)
    r = demo_client.post(f"{base}/nobody/holds/{hold['hold_id']}/confirm", json={"name": "Ada"})
    assert (r.status_code, r.json()["code"]) == (404, "tenant_not_found")


def test_widget_page_is_served(demo_client: httpx.Client) -> None:
    r = demo_client.get("/widget/")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    # slotmill's own page is the one-tag embed too, its options from the address
    assert '<script src="embed.js" data-from-url' in r.text
    for asset, kind in (("embed.js", "javascript"), ("widget.js", "javascript"), ("widget.css", "text/css")):
        r = demo_client.get(f"/widget/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"], asset


def test_demo_confirm_stores_the_contact(demo_client: httpx.Client, demo_db: str) -> None:
    hold = _hold(demo_client)
    r = demo_client.post(
        f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm",
        json={"name": "Ada", "email": "ada@example.org", "phone": "+44 20 7946 0000"},
    )
    assert r.status_code == 201, r.text
    assert _contact(demo_db, hold["hold_id"]) == {
        "name": "Ada",
        "email": "ada@example.org",
        "phone": "+44 20 7946 0000",
    }
    hold = _hold(demo_client)
    r = demo_client.post(
        f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm",
        json={"name": "Ada", "email": "not-an-address"},
    )
    assert (r.status_code, r.json()["field"]) == (422, "body.email")


def _contact(url: str, booking_id: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT contact FROM bookings WHERE id = %s", (booking_id,)).fetchone()
    assert row is not None
    return row[0]


def _set_settings(url: str, slug: str = DEMO_SLUG, **settings: Any) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE tenants SET settings = settings || %s::jsonb WHERE slug = %s",
            (orjson.dumps(settings).decode(), slug),
        )


# --- confirm with the publishable key ------------------------------------------------------

PUBLIC_CONTACT = {"name": "Grace Hopper", "email": "grace@example.org", "phone": "+1 212 555 0100"}


def _public_confirm(c: httpx.Client, hold_id: str, body: Any, key: str | None = DEMO_PUBLISHABLE_KEY) -> httpx.Response:
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    return c.post(f"/v1/tenants/{DEMO_SLUG}/holds/{hold_id}/confirm/public", json=body, headers=headers)


def test_public_confirm_with_the_publishable_key_stores_the_contact_and_shows_none(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        assert _catalog(c)["booking"]["public_confirm"] is True
        hold = _hold(c)
        r = _public_confirm(c, hold["hold_id"], {"contact": {**PUBLIC_CONTACT, "name": "  Grace Hopper "}})
        assert r.status_code == 201, r.text
        booking = r.json()
        assert booking == {
            "id": hold["hold_id"],
            "status": "confirmed",
            "service_id": hold["service_id"],
            "staff_id": hold["staff_id"],
            "location_id": hold["location_id"],
            "starts_at": hold["starts_at"],
            "ends_at": hold["ends_at"],
            "seats": 1,
        }
        assert "grace" not in r.text.lower()
        assert _booking(demo_db, hold["hold_id"]) == ("confirmed", "widget")
        assert _contact(demo_db, hold["hold_id"]) == PUBLIC_CONTACT

        # Twice: not a hold any more; an unknown hold; a lapsed one is gone (and marked so).
        r = _public_confirm(c, hold["hold_id"], {"contact": PUBLIC_CONTACT})
        assert (r.status_code, r.json()["code"]) == (409, "hold_not_live")
        r = _public_confirm(c, str(UUID(int=7)), {"contact": PUBLIC_CONTACT})
        assert (r.status_code, r.json()["code"]) == (404, "hold_not_found")
        late = _hold(c)
        with psycopg.connect(demo_db) as conn:
            conn.execute(
                "UPDATE bookings SET expires_at = now() - interval '1 second' WHERE id = %s", (late["hold_id"],)
            )
        r = _public_confirm(c, late["hold_id"], {"contact": PUBLIC_CONTACT})
        assert (r.status_code, r.json()["code"]) == (410, "hold_expired")
        assert _booking(demo_db, late["hold_id"]) == ("expired", None)


PUBLIC_BAD_BODIES: list[tuple[Any, str]] = [
    ({}, "body.contact"),
    ({"contact": {"name": "Ada"}}, "body.contact.email"),  # no way to reach her
    ({"contact": {"name": "", "email": "a@b.org"}}, "body.contact.name"),
    ({"contact": {"name": "Ada", "email": "ada@"}}, "body.contact.email"),
    ({"contact": {"name": "Ada", "email": "ada example.org"}}, "body.contact.email"),
    ({"contact": {"name": "Ada", "phone": "12"}}, "body.contact.phone"),
    ({"contact": {"name": "Ada", "phone": "call me maybe"}}, "body.contact.phone"),
    ({"contact": {"name": "Ada", "email": "a@b.org", "age": 3}}, "body.contact.age"),
    ({"contact": PUBLIC_CONTACT, "customer_ref": "someone-else"}, "body.customer_ref"),
    ({"contact": PUBLIC_CONTACT, "notes": "hi"}, "body.notes"),
    ([], "body"),
]


def test_public_confirm_validates_the_contact_and_changes_nothing(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        hold = _hold(c)
        for body, field in PUBLIC_BAD_BODIES:
            r = _public_confirm(c, hold["hold_id"], body)
            assert r.status_code == 422, (body, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["field"] == field, body
        assert _booking(demo_db, hold["hold_id"]) == ("held", None)


def test_public_confirm_needs_the_current_key_of_a_tenant_that_opted_in(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        hold = _hold(c)
        body = {"contact": PUBLIC_CONTACT}
        for key in (None, "smk_" + "x" * 40, "smp_not-the-key", DEMO_PUBLISHABLE_KEY + "x"):
            r = _public_confirm(c, hold["hold_id"], body, key=key)
            assert (r.status_code, r.json()["code"]) == (401, "unauthorized"), key
            assert r.headers["www-authenticate"].startswith("Bearer")
        # A rotated key stops the old one at once.
        _set_settings(demo_db, publishable_key="smp_rotated")
        r = _public_confirm(c, hold["hold_id"], body)
        assert r.status_code == 401
        # A tenant that did not opt in confirms through its own site only.
        _set_settings(demo_db, public_confirm=False)
        r = _public_confirm(c, hold["hold_id"], body, key="smp_rotated")
        assert (r.status_code, r.json()["code"]) == (403, "public_confirm_disabled")
        assert _catalog(c)["booking"]["public_confirm"] is False
        assert _booking(demo_db, hold["hold_id"]) == ("held", None)
        _set_settings(demo_db, public_confirm=True)
        r = _public_confirm(c, hold["hold_id"], body, key="smp_rotated")
        assert r.status_code == 201, r.text


def test_public_confirm_is_rate_limited_like_holds(demo_db: str) -> None:
    settings = Settings(demo_mode=False, rate_limit_reads=100_000, rate_limit_holds=3)
    with serve(settings) as base, httpx.Client(base_url=base) as c:
        answers = [_public_confirm(c, str(UUID(int=n)), {"contact": PUBLIC_CONTACT}).status_code for n in range(4)]
    # the same budget as holds: three, then a 429 until the bucket refills
    assert answers == [404, 404, 404, 429]


# --- cross-origin access, per tenant ----------------------------------------------------------

SALON = "https://fernandfinch.example"


def _preflight(c: httpx.Client, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return c.options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )


def test_cors_only_for_the_tenants_origins_and_only_on_public_routes(demo_db: str) -> None:
    _set_settings(demo_db, allowed_origins=[SALON + "/", "https://other.example"])
    with client(demo_mode=False) as c:
        hold = _hold(c)
        public_paths = [
            f"/v1/tenants/{DEMO_SLUG}/catalog",
            f"/v1/tenants/{DEMO_SLUG}/slots",
            f"/v1/tenants/{DEMO_SLUG}/holds",
            f"/v1/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}",
            f"/v1/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm/public",
            f"/v1/tenants/{DEMO_SLUG}/slot-status",
        ]
        for path in public_paths:
            r = _preflight(c, path, SALON)
            assert r.status_code == 204, (path, r.text)
            assert r.headers["access-control-allow-origin"] == SALON
            assert "POST" in r.headers["access-control-allow-methods"]
            assert "authorization" in r.headers["access-control-allow-headers"].lower()
            r = _preflight(c, path, "https://evil.example")
            assert (r.status_code, r.json()["code"]) == (403, "origin_not_allowed"), path
            assert "access-control-allow-origin" not in r.headers

        # Simple requests: the grant is on the answer, 4xx included (a page reads problems).
        r = c.get(f"/v1/tenants/{DEMO_SLUG}/catalog", headers={"Origin": SALON})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == SALON
        assert "Origin" in r.headers["vary"]
        assert "date" in r.headers["access-control-expose-headers"].lower()
        r = c.post(f"/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": "nope"}, headers={"Origin": SALON})
        assert r.status_code == 404 and r.headers["access-control-allow-origin"] == SALON
        r = c.get(f"/v1/tenants/{DEMO_SLUG}/catalog", headers={"Origin": "https://evil.example"})
        assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
        assert "Origin" in r.headers["vary"]

        # The secret-key routes never: a browser must not be able to use the secret key.
        for path in (
            f"/v1/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm",
            f"/v1/tenants/{DEMO_SLUG}/bookings/{hold['hold_id']}/cancel",
        ):
            r = _preflight(c, path, SALON)
            assert "access-control-allow-origin" not in r.headers, path
            r = c.post(path, json={}, headers={"Origin": SALON})
            assert r.status_code == 401 and "access-control-allow-origin" not in r.headers
        # Nor another tenant's public routes.
        with psycopg.connect(demo_db) as conn:
            seed.tenant(conn, "closed-shop")
        r = _preflight(c, "/v1/tenants/closed-shop/catalog", SALON, "GET")
        assert r.status_code == 403
        r = _preflight(c, "/v1/tenants/nobody/catalog", SALON, "GET")
        assert r.status_code == 403


def test_cors_any_origin_and_a_changed_list(demo_db: str) -> None:
    _set_settings(demo_db, allowed_origins=["*"])
    with client(demo_mode=False) as c:
        r = _preflight(c, f"/v1/tenants/{DEMO_SLUG}/holds", "http://localhost:5173")
        assert r.status_code == 204
        assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    # Not a list of strings: nobody (a new server: the list is cached per process).
    _set_settings(demo_db, allowed_origins=SALON)
    with client(demo_mode=False) as c:
        r = _preflight(c, f"/v1/tenants/{DEMO_SLUG}/holds", SALON)
        assert r.status_code == 403


# --- why a time went ------------------------------------------------------------------------------


def _status(c: httpx.Client, service_id: str, starts_at: str, *staff_ids: str) -> str:
    r = c.get(
        f"/v1/tenants/{DEMO_SLUG}/slot-status",
        params=[("service_id", service_id), ("starts_at", starts_at), *[("staff_id", s) for s in staff_ids]],
    )
    assert r.status_code == 200, r.text
    status: str = r.json()["status"]
    return status


def test_slot_status_tells_taken_from_withdrawn(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        cat = _catalog(c)
        haircut = _by_name(cat["services"], "name", "Haircut")
        ava = _by_name(cat["staff"], "display_name", "Ava Clarke")
        ben = _by_name(cat["staff"], "display_name", "Ben Okafor")
        monday = datetime.now(LONDON).date() + timedelta(days=7 - datetime.now(LONDON).weekday())
        slots = c.get(
            f"/v1/tenants/{DEMO_SLUG}/slots",
            params={"service_id": haircut, "staff_id": ava, "from": str(monday), "to": str(monday)},
        ).json()["slots"]
        first, later = slots[0], slots[-1]
        assert _status(c, haircut, first["starts_at"], ava) == "available"

        # Another visitor holds it: taken (for Ava; Ben is free then, so "available" with him).
        r = c.post(f"/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": first["id"]})
        assert r.status_code == 201
        assert _status(c, haircut, first["starts_at"], ava) == "taken"
        # the start 15 minutes later overlaps the hold (45 min + 15 min after): taken too
        r = c.post(f"/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": first["id"]})
        assert (r.status_code, r.json()["code"]) == (409, "slot_unavailable")

        # The salon gives Ava the afternoon off: withdrawn, not taken.
        start = datetime.fromisoformat(later["starts_at"].replace("Z", "+00:00"))
        with psycopg.connect(demo_db) as conn:
            off = (start - timedelta(hours=1), start + timedelta(hours=2))
            seed.time_off(conn, cat_tenant_id(conn), UUID(ava), *off, "Dentist")
            conn.commit()
            refresh(conn, load_tenant(conn, DEMO_SLUG))
        r = c.post(f"/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": later["id"]})
        assert (r.status_code, r.json()["code"]) == (409, "slot_unavailable")
        r = c.get(
            f"/v1/tenants/{DEMO_SLUG}/slot-status",
            params=[("service_id", haircut), ("starts_at", later["starts_at"]), ("staff_id", ava)],
        )
        assert r.json() == {"status": "unavailable"}
        assert "Dentist" not in r.text
        # With several candidates: the one that is free answers.
        assert _status(c, haircut, first["starts_at"], ava, ben) in ("available", "taken")


def cat_tenant_id(conn: psycopg.Connection[Any]) -> UUID:
    row = conn.execute("SELECT id FROM tenants WHERE slug = %s", (DEMO_SLUG,)).fetchone()
    assert row is not None
    return UUID(str(row[0]))


def test_slot_status_of_a_full_group_session(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        cat = _catalog(c)
        workshop = _by_name(cat["services"], "name", "Styling workshop")
        ben = _by_name(cat["staff"], "display_name", "Ben Okafor")
        today = datetime.now(LONDON).date()
        r = c.get(
            f"/v1/tenants/{DEMO_SLUG}/slots",
            params={"service_id": workshop, "staff_id": ben, "from": str(today), "to": str(today + timedelta(days=13))},
        )
        session = r.json()["slots"][0]
        r = c.post(f"/v1/tenants/{DEMO_SLUG}/holds", json={"slot_id": session["id"], "seats": session["seats_left"]})
        assert r.status_code == 201, r.text
        assert _status(c, workshop, session["starts_at"], ben) == "full"


def test_slot_status_bad_input(demo_db: str) -> None:
    with client(demo_mode=False) as c:
        cat = _catalog(c)
        haircut = _by_name(cat["services"], "name", "Haircut")
        ava = _by_name(cat["staff"], "display_name", "Ava Clarke")
        base = f"/v1/tenants/{DEMO_SLUG}/slot-status"
        at = "2030-01-07T10:00:00Z"
        cases: list[tuple[list[tuple[str, str]], int, str]] = [
            ([("service_id", haircut), ("starts_at", at)], 422, "query.staff_id"),
            ([("service_id", haircut), ("starts_at", "tomorrow"), ("staff_id", ava)], 422, "query.starts_at"),
            ([("service_id", "x"), ("starts_at", at), ("staff_id", ava)], 422, "query.service_id"),
            ([("service_id", haircut), ("starts_at", at), ("staff_id", "nope")], 422, "query.staff_id.0"),
            ([("service_id", haircut), ("starts_at", at), *[("staff_id", ava)] * 21], 422, "query.staff_id"),
        ]
        for params, status, field in cases:
            r = c.get(base, params=params)
            assert (r.status_code, r.json().get("field")) == (status, field), params
        r = c.get(base, params=[("service_id", str(UUID(int=3))), ("starts_at", at), ("staff_id", ava)])
        assert (r.status_code, r.json()["code"]) == (404, "service_not_found")
        params = [("service_id", haircut), ("starts_at", at), ("staff_id", ava)]
        r = c.get("/v1/tenants/nobody/slot-status", params=params)
        assert (r.status_code, r.json()["code"]) == (404, "tenant_not_found")
        # a staff member of nobody: not offered by anyone
        assert _status(c, haircut, at, str(UUID(int=5))) == "unavailable"


def test_embed_script_is_served_to_any_site(demo_client: httpx.Client) -> None:
    r = demo_client.get("/widget/embed.js", headers={"Origin": SALON})
    assert r.status_code == 200 and "javascript" in r.headers["content-type"]
    assert "data-tenant" in r.text
    # The widget's own files are public: any site (and its tools) may read them.
    for asset in ("embed.js", "widget.js", "widget.css"):
        r = demo_client.get(f"/widget/{asset}", headers={"Origin": "https://anywhere.example"})
        assert r.headers["access-control-allow-origin"] == "*", asset


def test_catalog_features_follow_the_routes_this_server_has() -> None:
    from slotmill.api.catalog import features

    assert features([]) == {"events": False, "waitlist": False}
