"""GET /: the links a newcomer wants, as HTML for a browser and JSON for anything else.
No database is needed (the handler makes no query), so the app runs without its lifespan."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from slotmill.api.app import create_app
from slotmill.api.home import DOCS
from slotmill.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def _get(accept: str | None, *, demo_mode: bool = True) -> httpx.Response:
    app = create_app(Settings(database_url="postgresql://unused", demo_mode=demo_mode))
    headers = {} if accept is None else {"Accept": accept}

    async def main() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.get("/", headers=headers)

    return asyncio.run(main())


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "text/html;q=0.5, application/json"])
def test_json_for_anything_but_a_browser(accept: str | None) -> None:
    r = _get(accept)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.headers["vary"] == "Accept"
    links = r.json()["links"]
    assert links["widget"] == "/widget/?tenant=demo"
    assert links["console"] == "/admin/"
    assert {links[k] for k in ("openapi", "healthz", "readyz", "metrics")} == {
        "/openapi.json",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    assert set(r.json()["docs"]) == set(DOCS)


def test_html_for_a_browser() -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = _get(browser)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for href in ("/widget/?tenant=demo", "/admin/", "/openapi.json", "/healthz", "/readyz", "/metrics"):
        assert f'href="{href}"' in r.text
    for doc in DOCS:
        assert doc in r.text


def test_outside_demo_mode_the_links_name_no_tenant() -> None:
    links = _get(None, demo_mode=False).json()["links"]
    assert links["widget"] == "/widget/?tenant=SLUG"
    assert "demo" not in str(links)


def test_every_listed_doc_exists() -> None:
    missing = [name for name in DOCS if not (ROOT / name).is_file()]
    assert not missing
