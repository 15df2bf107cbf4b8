"""What the booking widget stands on, without a browser: the public catalog, the demo-only
confirm-on-behalf (absent without demo mode), and the page itself being served.

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
import psycopg
import pytest
import uvicorn

from slotmill import seed
from slotmill.api.app import create_app
from slotmill.config import Settings
from slotmill.demo import DEMO_SLUG, load_demo
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
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="widget-api", daemon=True
    )
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
        row = conn.execute(
            "SELECT status, customer_ref FROM bookings WHERE id = %s", (booking_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


# --- catalog -------------------------------------------------------------------------------


def test_catalog_lists_what_can_be_booked_and_nothing_private(env_db: str) -> None:
    with psycopg.connect(env_db) as conn:
        t = seed.tenant(
            conn, "corner", name="Corner Shop", timezone="Europe/Paris", horizon_days=30
        )
        paris = seed.location(conn, t, "Paris")
        tokyo = seed.location(conn, t, "Tokyo", timezone="Asia/Tokyo")
        ann = seed.staff(conn, t, "Ann", location_id=paris, priority=1)
        bob = seed.staff(conn, t, "Bob", location_id=tokyo, priority=2)
        gone = seed.staff(conn, t, "Gone", active=False)
        cut = seed.service(conn, t, "Cut", 30, staff_ids=[ann, bob, gone])
        old = seed.service(conn, t, "Retired service", 30, active=False, staff_ids=[ann])
        seed.template(conn, t, ann, [1, 2, 3, 4, 5], "09:00", "17:00")
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
        cat = r.json()
        assert cat["tenant"] == {
            "slug": "corner",
            "name": "Corner Shop",
            "timezone": "Europe/Paris",
            "horizon_days": 30,
        }
        assert cat["services"] == [{"id": str(cut), "name": "Cut", "duration_minutes": 30}]
        assert str(old) not in r.text and str(gone) not in r.text
        # staff by priority; only active services in service_ids
        assert cat["staff"] == [
            {
                "id": str(ann),
                "display_name": "Ann",
                "location_id": str(paris),
                "service_ids": [str(cut)],
            },
            {
                "id": str(bob),
                "display_name": "Bob",
                "location_id": str(tokyo),
                "service_ids": [str(cut)],
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


def test_demo_confirm_confirms_like_the_host_and_removes_the_slot(
    demo_client: httpx.Client, demo_db: str
) -> None:
    hold = _hold(demo_client)
    r = demo_client.post(
        f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm", json={"name": "  Ada  "}
    )
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
    r = demo_client.post(
        f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm", json={"name": "Ada"}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "hold_not_live"


def test_demo_confirm_of_an_expired_hold_is_gone(demo_client: httpx.Client, demo_db: str) -> None:
    hold = _hold(demo_client)
    with psycopg.connect(demo_db) as conn:
        conn.execute(
            "UPDATE bookings SET expires_at = now() - interval '1 second' WHERE id = %s",
            (hold["hold_id"],),
        )
    r = demo_client.post(
        f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm", json={"name": "Late"}
    )
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


def test_demo_confirm_refuses_bad_input_and_changes_nothing(
    demo_client: httpx.Client, demo_db: str
) -> None:
    hold = _hold(demo_client)
    url = f"/v1/demo/tenants/{DEMO_SLUG}/holds/{hold['hold_id']}/confirm"
    for body, field in BAD_BODIES:
        if body is None:
            r = demo_client.post(
                url, content=b"{not json", headers={"Content-Type": "application/json"}
            )
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
    assert 'src="widget.js"' in r.text and 'href="widget.css"' in r.text
    for asset, kind in (("widget.js", "javascript"), ("widget.css", "text/css")):
        r = demo_client.get(f"/widget/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"], asset
