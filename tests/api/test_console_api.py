"""What the operator console stands on besides the day and the heatmap: the tenants list, a
tenant's directory, and the page itself (served at /admin/ with headers that keep the key's
page to itself), through the real app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from slotmill import seed
from slotmill.api.admin_console import ADMIN_UI_DIR, HEADERS
from slotmill.api.app import create_app
from slotmill.config import Settings
from tests.jobs.test_worker_queue import AppClient

Conn = psycopg.Connection[Any]
KEY = "t" * 40
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture
def client(db_url: str) -> Iterator[AppClient]:
    s = Settings(database_url=db_url, pool_min_size=1, pool_max_size=4, admin_key=KEY)
    with AppClient(create_app(s)) as c:
        yield c


def test_tenants_are_listed_by_slug_a_page_at_a_time(conn: Conn, client: AppClient) -> None:
    for slug in ("cedar", "alder", "birch"):
        t = seed.tenant(conn, slug, name=slug.title(), timezone="Europe/Paris")
        seed.staff(conn, t, "One")
        seed.staff(conn, t, "Two", active=False)
    conn.commit()
    r = client.get("/v1/admin/tenants", params={"limit": 2}, headers=AUTH)
    assert r.status_code == 200, r.text
    page = r.json()
    assert [t["slug"] for t in page["tenants"]] == ["alder", "birch"]
    assert page["tenants"][0] == {
        "slug": "alder",
        "name": "Alder",
        "timezone": "Europe/Paris",
        "horizon_days": 60,
        "staff": 2,
        "active_staff": 1,
    }
    assert page["next_after"] == "birch"
    rest = client.get("/v1/admin/tenants", params={"limit": 2, "after": "birch"}, headers=AUTH).json()
    assert [t["slug"] for t in rest["tenants"]] == ["cedar"] and rest["next_after"] is None
    assert client.get("/v1/admin/tenants").status_code == 401
    bad = client.get("/v1/admin/tenants", params={"limit": 0}, headers=AUTH)
    assert bad.status_code == 422 and bad.json()["field"] == "query.limit"


def test_the_directory_lists_inactive_staff_and_services_too(conn: Conn, client: AppClient) -> None:
    t = seed.tenant(conn, "dir", timezone="Europe/London")
    paris = seed.location(conn, t, "Paris", timezone="Europe/Paris")
    ann = seed.staff(conn, t, "Ann", location_id=paris)
    old = seed.staff(conn, t, "Old", active=False, timezone="Asia/Tokyo")
    cut = seed.service(conn, t, "Cut", 30, before=5, after=10, staff_ids=[ann])
    gone = seed.service(conn, t, "Gone", 60, interval=15, staff_ids=[ann, old])
    conn.execute("UPDATE services SET active = false WHERE id = %s", (gone,))
    conn.commit()
    r = client.get("/v1/admin/tenants/dir/directory", headers=AUTH)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["tenant"] == {"slug": "dir", "name": "dir", "timezone": "Europe/London", "horizon_days": 60}
    assert d["locations"] == [{"id": str(paris), "name": "Paris", "timezone": "Europe/Paris"}]
    staff = {s["display_name"]: s for s in d["staff"]}
    assert staff["Ann"]["zone"] == "Europe/Paris" and staff["Ann"]["active"]
    assert sorted(staff["Ann"]["service_ids"]) == sorted([str(cut), str(gone)])
    assert staff["Old"]["zone"] == "Asia/Tokyo" and not staff["Old"]["active"]
    services = {s["name"]: s for s in d["services"]}
    assert services["Cut"]["interval_minutes"] == 30 and services["Cut"]["buffer_after_minutes"] == 10
    assert not services["Gone"]["active"] and services["Gone"]["interval_minutes"] == 15
    assert client.get("/v1/admin/tenants/nobody/directory", headers=AUTH).json()["code"] == "tenant_not_found"
    assert client.get("/v1/admin/tenants/dir/directory").status_code == 401


def test_the_page_is_served_with_headers_that_keep_it_to_itself(client: AppClient) -> None:
    r = client.get("/admin/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    for name, value in HEADERS.items():
        assert r.headers[name] == value
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    for asset in ("console.js", "console.css"):
        a = client.get(f"/admin/{asset}")
        assert a.status_code == 200 and a.headers["x-frame-options"] == "DENY"
    assert client.get("/admin").status_code in (301, 307, 308)  # to /admin/
    # The page works without a key (it asks for one) and without the database.
    assert "Admin key" in r.text


def test_the_page_has_no_inline_code_and_never_puts_the_key_in_a_url() -> None:
    html = (ADMIN_UI_DIR / "index.html").read_text()
    # The content security policy refuses inline scripts, styles and handlers: none is written.
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    js = (ADMIN_UI_DIR / "console.js").read_text()
    assert "innerHTML" not in js and "eval(" not in js
    # The key travels in one header; nothing builds a URL with it, and it lives in sessionStorage.
    assert js.count("sessionStorage.setItem(KEY") == 1 and "localStorage" not in js
    assert re.search(r'"Authorization": "Bearer " \+ key', js)
    login = re.search(r'<form id="login-form"[^>]*>', html)
    assert login is not None and 'method="post"' in login.group(0)


def test_the_console_files_ship_in_the_package() -> None:
    names = {p.name for p in Path(ADMIN_UI_DIR).iterdir()}
    assert {"index.html", "console.js", "console.css"} <= names
