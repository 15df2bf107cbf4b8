"""GET /v1/tenants/{slug}/events (issue 14): live slot changes as Server-Sent Events from a
real server, fed by LISTEN/NOTIFY; a resume with Last-Event-ID gets what it missed; no
customer data; a cap on streams per client address."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import psycopg
import uvicorn

from slotmill.api.app import create_app
from slotmill.materializer.outbox import sequence_events
from tests.support import World, db_rows, settings_for


@contextmanager
def serving(world: World, **overrides: Any) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    app = create_app(settings_for(world.url, **overrides))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/healthz", timeout=2)
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline and thread.is_alive()
            time.sleep(0.1)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Stream:
    """An open event stream, read message by message."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 20.0) -> dict[str, str]:
        msg: dict[str, str] = {}
        async with asyncio.timeout(timeout):
            while True:
                line = await anext(self.lines)
                if line == "":
                    if "event" in msg or "data" in msg:
                        return msg
                    msg = {}
                    continue
                if line.startswith(":"):
                    continue  # a heartbeat
                name, _, value = line.partition(":")
                msg[name] = value[1:] if value.startswith(" ") else value


@asynccontextmanager
async def stream(base: str, slug: str, **headers: str) -> AsyncIterator[Stream]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        params = {k: v for k, v in headers.items() if k in ("service_id", "last_event_id")}
        hdrs = {k.replace("_", "-"): v for k, v in headers.items() if k not in params}
        async with client.stream("GET", f"/v1/tenants/{slug}/events", params=params, headers=hdrs) as r:
            assert r.status_code == 200, await r.aread()
            assert r.headers["content-type"].startswith("text/event-stream")
            yield Stream(r)


def hold(url: str, slug: str, slot: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT hold FROM slotmill_hold(%s, %s, NULL, NULL, NULL, NULL, 1)", (slug, slot)).fetchone()
        conn.commit()
    assert row is not None and row[0]
    return str(json.loads(row[0])["hold_id"])


def number(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        sequence_events(conn)


def slot_ids(w: World) -> list[str]:
    rows = db_rows(
        w.url,
        "SELECT id FROM availability_slots WHERE tenant_id = %s AND service_id = %s AND starts_at >= %s"
        " ORDER BY starts_at, staff_id",
        (w.acme.id, w.acme.cut, w.at("09:00")),
    )
    return [r[0] for r in rows]


def test_a_hold_reaches_an_open_stream_and_a_resume_gets_what_it_missed(world: World) -> None:
    w, a = world, world.acme
    number(w.url)
    slots = slot_ids(w)

    async def body(base: str) -> None:
        async with stream(base, "acme", service_id=str(a.cut)) as s:
            ready = await s.next()
            assert ready["event"] == "ready"
            start = int(ready["id"])
            hold(w.url, "acme", slots[0])
            number(w.url)
            msg = await s.next()
            assert msg["event"] == "slots.changed" and int(msg["id"]) == start + 1
            data = json.loads(msg["data"])
            # the range and the services; nothing about who booked
            assert set(data) == {"service_ids", "from", "to", "seq"}
            assert str(a.cut) in data["service_ids"] and data["seq"] == start + 1
        last = start + 1
        # while nobody listens: two more changes
        hold(w.url, "acme", slots[5])
        hold(w.url, "acme", slots[9])
        number(w.url)
        async with stream(base, "acme", service_id=str(a.cut), Last_Event_ID=str(last)) as s:
            missed = [await s.next(), await s.next()]
            assert [m["event"] for m in missed] == ["slots.changed", "slots.changed"]
            assert [int(m["id"]) for m in missed] == [last + 1, last + 2]
            ready = await s.next()
            assert (ready["event"], int(ready["id"])) == ("ready", last + 2)
            # and live again after the replay, with no duplicate
            hold(w.url, "acme", slots[13])
            number(w.url)
            msg = await s.next()
            assert (msg["event"], int(msg["id"])) == ("slots.changed", last + 3)
        # an EventSource that cannot send the header can say it in the query
        async with stream(base, "acme", last_event_id=str(last + 2)) as s:
            msg = await s.next()
            assert (msg["event"], int(msg["id"])) == ("slots.changed", last + 3)

    with serving(w) as base:
        asyncio.run(body(base))


def test_a_stream_for_another_service_hears_nothing_of_this_one(world: World) -> None:
    w, a = world, world.acme
    number(w.url)
    ann_slot = db_rows(
        w.url,
        "SELECT id FROM availability_slots WHERE staff_id = %s AND service_id = %s AND starts_at >= %s"
        " ORDER BY starts_at LIMIT 1",
        (a.ann, a.trim, w.at("13:00")),
    )[0][0]
    # Bob performs cut only: a hold of his tells cut's streams, not trim's
    bob_slot = db_rows(
        w.url,
        "SELECT id FROM availability_slots WHERE staff_id = %s AND starts_at >= %s ORDER BY starts_at LIMIT 1",
        (a.bob, w.at("09:00")),
    )[0][0]

    async def body(base: str) -> None:
        async with (
            stream(base, "acme", service_id=str(a.trim)) as trim,
            stream(base, "acme", service_id=str(a.cut)) as cut,
        ):
            await trim.next()
            await cut.next()
            hold(w.url, "acme", bob_slot)
            number(w.url)
            msg = await cut.next()
            assert msg["event"] == "slots.changed"
            # the next thing trim's stream says is about a later change of Ann (cut and trim)
            hold(w.url, "acme", ann_slot)
            number(w.url)
            got = await trim.next()
            assert int(got["id"]) == int(msg["id"]) + 1

    with serving(w) as base:
        asyncio.run(body(base))


def test_streams_are_capped_per_client_address_and_unknown_names_are_404(world: World) -> None:
    w = world

    async def body(base: str) -> None:
        async with stream(base, "acme") as one, stream(base, "acme") as two:
            await one.next()
            await two.next()
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                r = await client.get("/v1/tenants/acme/events")
                assert r.status_code == 429 and r.json()["code"] == "too_many_streams"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/v1/tenants/nope/events")).status_code == 404
            r = await client.get("/v1/tenants/acme/events", params={"service_id": "not-a-uuid"})
            assert r.status_code == 422 and r.json()["field"] == "query.service_id"
            r = await client.get("/v1/tenants/acme/events", headers={"Last-Event-ID": "x"})
            assert r.status_code == 422 and r.json()["field"] == "header.Last-Event-ID"
            r = await client.get("/v1/tenants/acme/events", params={"service_id": str(w.other.cut)})
            assert r.status_code == 404
        # the closed streams no longer count
        async with stream(base, "acme") as again:
            assert (await again.next())["event"] == "ready"

    with serving(w, sse_streams_per_client=2) as base:
        asyncio.run(body(base))
