"""Admin endpoints (SPEC §9): the key, recalculate, status and explain, through the real app
(api.app.create_app) against a real database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from slotmill import seed
from slotmill.api.app import create_app
from slotmill.config import Settings
from slotmill.jobs.queue import drain_one
from slotmill.materializer.loader import load_tenant
from slotmill.materializer.refresh import refresh
from tests.jobs.test_worker_queue import AppClient, Salon, assert_no_drift, queue_depth, today_utc, utc

Conn = psycopg.Connection[Any]
KEY = "k" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}


def _client(db_url: str, **settings: Any) -> AppClient:
    s = Settings(database_url=db_url, pool_min_size=1, pool_max_size=4, **settings)
    return AppClient(create_app(s))


@pytest.fixture
def client(db_url: str) -> Iterator[AppClient]:
    with _client(db_url, admin_key=KEY) as c:
        yield c


def _problem(r: Any, status: int, code: str, field: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    if field is not None:
        assert body.get("field") == field, body
    return body


# --- the key ------------------------------------------------------------------------------


ADMIN_ROUTES = [
    ("POST", "/v1/admin/recalculate"),
    ("GET", "/v1/admin/tenants/acme/status"),
    ("GET", "/v1/admin/tenants/acme/explain"),
]


def test_every_admin_route_wants_the_key(client: AppClient) -> None:
    for method, path in ADMIN_ROUTES:
        r = client.request(method, path)
        _problem(r, 401, "unauthorized")
        assert r.headers["www-authenticate"].startswith("Bearer")
        for header in (f"Bearer {KEY}x", f"Basic {KEY}", KEY, "Bearer ", f"bearer {KEY[:-1]}"):
            r = client.request(method, path, headers={"Authorization": header})
            _problem(r, 401, "unauthorized")


def test_without_a_configured_key_admin_is_unavailable(db_url: str) -> None:
    with _client(db_url, admin_key=None) as c:
        _problem(c.get("/v1/admin/tenants/acme/status", headers=AUTH), 503, "admin_not_configured")
        _problem(c.get("/v1/admin/tenants/acme/status"), 503, "admin_not_configured")


# --- recalculate --------------------------------------------------------------------------


def test_recalculate_queues_a_request(conn: Conn, db_url: str, client: AppClient) -> None:
    salon = Salon(conn)
    conn.execute("DELETE FROM recompute_requests")
    conn.commit()
    day = today_utc() + timedelta(days=2)
    r = client.post(
        "/v1/admin/recalculate",
        headers=AUTH,
        json={
            "tenant": "acme",
            "staff_id": str(salon.ann),
            "from": day.isoformat(),
            "to": day.isoformat(),
        },
    )
    assert r.status_code == 202, r.text
    rid = r.json()["request_id"]
    row = conn.execute("SELECT staff_id, during, reason FROM recompute_requests WHERE id = %s", (rid,)).fetchone()
    conn.rollback()
    assert row is not None
    staff_id, during, reason = row
    assert (staff_id, reason) == (salon.ann, "admin")
    assert (during.lower, during.upper) == (utc(day, 0), utc(day + timedelta(days=1), 0))
    # the whole tenant: NULL staff, NULL range
    r = client.post("/v1/admin/recalculate", headers=AUTH, json={"tenant": "acme"})
    assert r.status_code == 202
    row = conn.execute(
        "SELECT staff_id, during FROM recompute_requests WHERE id = %s", (r.json()["request_id"],)
    ).fetchone()
    conn.rollback()
    assert row == (None, None)
    while drain_one(conn) is not None:
        pass
    assert queue_depth(db_url) == 0
    assert_no_drift(db_url, "acme")


def test_recalculate_and_wait(conn: Conn, db_url: str, client: AppClient) -> None:
    salon = Salon(conn)
    conn.execute("DELETE FROM recompute_requests")
    conn.commit()
    r = client.post("/v1/admin/recalculate", headers=AUTH, json={"tenant": "acme", "wait": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["staff"] == 2 and body["slots_written"] > 0 and body["slots_deleted"] == 0
    assert set(body) == {"staff", "slots_written", "slots_deleted", "from", "to"}
    assert_no_drift(db_url, "acme")
    # one staff member, one instant window: only that window is rewritten
    day = today_utc() + timedelta(days=3)
    r = client.post(
        "/v1/admin/recalculate",
        headers=AUTH,
        json={
            "tenant": "acme",
            "staff_id": str(salon.bob),
            "from": f"{day.isoformat()}T09:00:00Z",
            "to": f"{day.isoformat()}T12:00:00+00:00",
            "wait": True,
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["staff"] == 1 and r.json()["slots_written"] == r.json()["slots_deleted"] == 6
    status = client.get("/v1/admin/tenants/acme/status", headers=AUTH).json()
    assert status["horizon"]["covered"] is True


BAD_RECALCULATIONS: list[tuple[dict[str, Any], int, str, str | None]] = [
    ({}, 422, "validation_error", "body.tenant"),
    ({"tenant": 5}, 422, "validation_error", "body.tenant"),
    ({"tenant": "acme", "staff_id": "nope"}, 422, "validation_error", "body.staff_id"),
    ({"tenant": "acme", "from": "2030-02-30"}, 422, "validation_error", "body.from"),
    ({"tenant": "acme", "to": "tomorrow"}, 422, "validation_error", "body.to"),
    ({"tenant": "acme", "from": "2030-01-02T10:00:00"}, 422, "validation_error", "body.from"),
    (
        {"tenant": "acme", "from": "2030-01-05", "to": "2030-01-04"},
        422,
        "validation_error",
        "body.to",
    ),
    ({"tenant": "acme", "wait": "yes"}, 422, "validation_error", "body.wait"),
    ({"tenant": "acme", "force": True}, 422, "validation_error", "body.force"),
    ({"tenant": "nobody"}, 404, "tenant_not_found", None),
    ({"tenant": "NOT A SLUG"}, 404, "tenant_not_found", None),
    (
        {"tenant": "acme", "staff_id": "00000000-0000-0000-0000-000000000001"},
        404,
        "staff_not_found",
        None,
    ),
]


def test_recalculate_refuses_bad_input_and_changes_nothing(conn: Conn, db_url: str, client: AppClient) -> None:
    Salon(conn)
    conn.execute("DELETE FROM recompute_requests")
    conn.commit()
    for body, status, code, field in BAD_RECALCULATIONS:
        _problem(client.post("/v1/admin/recalculate", headers=AUTH, json=body), status, code, field)
    for raw in (b"", b"not json", b"[1, 2]", b'"acme"', b"\xff\xfe"):
        headers = {**AUTH, "Content-Type": "application/json"}
        r = client.post("/v1/admin/recalculate", headers=headers, content=raw)
        _problem(r, 422, "validation_error", "body")
    assert queue_depth(db_url) == 0


def test_recalculate_window_at_the_ends_of_the_calendar(conn: Conn, client: AppClient) -> None:
    Salon(conn)
    r = client.post(
        "/v1/admin/recalculate",
        headers=AUTH,
        json={"tenant": "acme", "from": "0001-01-01", "to": "9999-12-31", "wait": True},
    )
    assert r.status_code == 200, r.text


# --- status -------------------------------------------------------------------------------


def test_status(conn: Conn, db_url: str, client: AppClient) -> None:
    Salon(conn)
    before = client.get("/v1/admin/tenants/acme/status", headers=AUTH)
    assert before.status_code == 200, before.text
    b = before.json()
    assert b["tenant"] == "acme" and b["timezone"] == "UTC"
    assert b["horizon"]["covered"] is False and b["last_full_refresh"] is None
    assert b["queue"]["depth"] >= 3 and b["queue"]["oldest_age_seconds"] >= 0
    assert b["slots"] == 0
    start = datetime.fromisoformat(b["horizon"]["start"])
    assert start == datetime.combine(today_utc(), datetime.min.time(), UTC)
    assert b["horizon"]["days"] == 30

    refresh(conn, load_tenant(conn, "acme"))
    conn.execute("DELETE FROM recompute_requests")
    conn.commit()
    a = client.get("/v1/admin/tenants/acme/status", headers=AUTH).json()
    count = conn.execute("SELECT count(*) FROM availability_slots").fetchone()
    conn.rollback()
    assert count is not None and a["slots"] == count[0] > 0
    assert a["horizon"]["covered"] is True
    assert a["last_full_refresh"]["staff"] == 2 and a["last_full_refresh"]["slots_written"] == count[0]
    assert a["last_full_refresh"]["horizon_end"] == a["horizon"]["end"]
    assert a["queue"] == {"depth": 0, "oldest_age_seconds": None}


def test_status_of_an_unknown_tenant(client: AppClient) -> None:
    _problem(client.get("/v1/admin/tenants/nobody/status", headers=AUTH), 404, "tenant_not_found")
    _problem(client.get("/v1/admin/tenants/Bad%20Slug/status", headers=AUTH), 404, "tenant_not_found")


# --- explain ------------------------------------------------------------------------------

D = today_utc() + timedelta(days=6)


@pytest.fixture
def explained(conn: Conn, client: AppClient) -> dict[str, Any]:
    salon = Salon(conn)
    conn.execute(
        "UPDATE tenants SET settings = '{\"min_notice_minutes\": 4320}' WHERE id = %s",
        (salon.tenant,),
    )
    colour = seed.service(conn, salon.tenant, "Colour", 60, staff_ids=[salon.ann])
    seed.holiday(conn, salon.tenant, D, "Founders' day")
    seed.time_off(
        conn,
        salon.tenant,
        salon.ann,
        utc(D + timedelta(days=1), 10),
        utc(D + timedelta(days=1), 11),
    )
    seed.busy(
        conn,
        salon.tenant,
        salon.ann,
        utc(D + timedelta(days=1), 13),
        utc(D + timedelta(days=1), 14),
    )
    seed.booking(
        conn,
        salon.tenant,
        salon.ann,
        salon.cut,
        utc(D + timedelta(days=2), 10),
        utc(D + timedelta(days=2), 10, 30),
    )
    seed.booking(
        conn,
        salon.tenant,
        salon.ann,
        salon.cut,
        utc(D + timedelta(days=2), 14),
        utc(D + timedelta(days=2), 14, 30),
        status="held",
        expires_at=datetime.now(UTC) + timedelta(minutes=30),
    )
    conn.commit()
    return {"salon": salon, "colour": colour}


def _explain(client: AppClient, **params: Any) -> dict[str, Any]:
    r = client.get("/v1/admin/tenants/acme/explain", headers=AUTH, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


REASONS = [
    ("ann", "cut", utc(D + timedelta(days=3), 10), "available"),
    ("bob", "colour", utc(D + timedelta(days=3), 10), "not_qualified"),
    ("ann", "cut", utc(D, 10), "holiday"),
    ("ann", "cut", utc(D + timedelta(days=3), 20), "outside_working_hours"),
    ("ann", "cut", utc(D + timedelta(days=1), 10), "time_off"),
    ("ann", "cut", utc(D + timedelta(days=1), 13), "busy"),
    ("ann", "cut", utc(D + timedelta(days=2), 10), "booked"),
    ("ann", "cut", utc(D + timedelta(days=2), 14), "held"),
    ("ann", "cut", utc(today_utc() + timedelta(days=2), 10), "min_notice"),
    ("ann", "cut", utc(today_utc() + timedelta(days=45), 10), "beyond_horizon"),
    ("ann", "cut", utc(D + timedelta(days=3), 10, 15), "off_grid"),
]


def test_explain_reasons(client: AppClient, explained: dict[str, Any]) -> None:
    salon: Salon = explained["salon"]
    for who, what, at, code in REASONS:
        staff = {"ann": salon.ann, "bob": salon.bob}[who]
        service = {"cut": salon.cut, "colour": explained["colour"]}[what]
        body = _explain(client, staff_id=str(staff), service_id=str(service), starts_at=at.isoformat())
        codes = [r["code"] for r in body["reasons"]]
        assert code in codes, (code, body)
        assert body["available"] is (code == "available"), body
        assert body["starts_at"] == at.strftime("%Y-%m-%dT%H:%M:%SZ")
        if code != "beyond_horizon":
            # the one reason that applies and no other (beyond the horizon there are no
            # working windows either)
            assert codes == [code], body
        assert all(r["detail"] for r in body["reasons"])


BAD_EXPLAINS: list[tuple[dict[str, str], int, str, str | None]] = [
    (
        {"service_id": "S", "starts_at": "2030-01-01T10:00:00Z"},
        422,
        "validation_error",
        "query.staff_id",
    ),
    (
        {"staff_id": "x", "service_id": "S", "starts_at": "2030-01-01T10:00:00Z"},
        422,
        "validation_error",
        "query.staff_id",
    ),
    (
        {"staff_id": "A", "starts_at": "2030-01-01T10:00:00Z"},
        422,
        "validation_error",
        "query.service_id",
    ),
    ({"staff_id": "A", "service_id": "S"}, 422, "validation_error", "query.starts_at"),
    (
        {"staff_id": "A", "service_id": "S", "starts_at": "2030-01-01"},
        422,
        "validation_error",
        "query.starts_at",
    ),
    (
        {"staff_id": "A", "service_id": "S", "starts_at": "2030-01-01T10:00:00"},
        422,
        "validation_error",
        "query.starts_at",
    ),
    (
        {"staff_id": "A", "service_id": "S", "starts_at": "0001-01-01T00:00:00Z"},
        422,
        "validation_error",
        "query.starts_at",
    ),
    (
        {"staff_id": "A", "service_id": "S", "starts_at": "9999-12-31T23:59:59-12:00"},
        422,
        "validation_error",
        "query.starts_at",
    ),
    (
        {"staff_id": "Z", "service_id": "S", "starts_at": "2030-01-01T10:00:00Z"},
        404,
        "staff_not_found",
        None,
    ),
    (
        {"staff_id": "A", "service_id": "Z", "starts_at": "2030-01-01T10:00:00Z"},
        404,
        "service_not_found",
        None,
    ),
]


def test_explain_refuses_bad_input(conn: Conn, client: AppClient) -> None:
    salon = Salon(conn)
    ids = {"A": str(salon.ann), "S": str(salon.cut), "Z": "00000000-0000-0000-0000-00000000000f"}
    for params, status, code, field in BAD_EXPLAINS:
        real = {k: ids.get(v, v) for k, v in params.items()}
        r = client.get("/v1/admin/tenants/acme/explain", headers=AUTH, params=real)
        _problem(r, status, code, field)


def test_explain_of_an_unknown_tenant(client: AppClient) -> None:
    params = {"staff_id": str(datetime.now().timestamp()), "service_id": "x", "starts_at": "x"}
    _problem(
        client.get("/v1/admin/tenants/nobody/explain", headers=AUTH, params=params),
        422,
        "validation_error",
    )
    ok = {
        "staff_id": "00000000-0000-0000-0000-000000000001",
        "service_id": "00000000-0000-0000-0000-000000000002",
        "starts_at": "2030-01-01T10:00:00Z",
    }
    _problem(
        client.get("/v1/admin/tenants/nobody/explain", headers=AUTH, params=ok),
        404,
        "tenant_not_found",
    )
