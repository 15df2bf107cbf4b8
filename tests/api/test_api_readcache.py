"""Kept read answers are never stale (api/readcache.py): a slot write, a hold, a hold's expiry
(no write at all), a confirm and a rules change each change the next read at once, whichever
of several API processes (here: separate apps with caches of their own) answers it."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from datetime import timedelta
from typing import Any

import httpx
import psycopg

from slotmill import seed
from slotmill.jobs.queue import drain_one
from tests.support import World, bearer, db_exec, iso, running


def _query(w: World) -> dict[str, str]:
    return {"service_id": str(w.acme.cut), "from": w.day.isoformat(), "to": w.day.isoformat()}


async def _read(client: httpx.AsyncClient, w: World, **headers: str) -> httpx.Response:
    r = await client.get(f"/v1/tenants/{w.acme.slug}/slots", params=_query(w), headers=headers)
    assert r.status_code in (200, 304), r.text
    return r


def _starts(r: httpx.Response) -> list[tuple[str, str]]:
    return [(s["starts_at"], s["staff_id"]) for s in r.json()["slots"]]


def _drain(url: str) -> None:
    with psycopg.connect(url) as conn:
        while drain_one(conn) is not None:
            pass


def test_kept_answers_follow_every_change_across_processes(world: World) -> None:
    w, a = world, world.acme
    db_exec(w.url, "UPDATE tenants SET settings = settings || '{\"hold_ttl_seconds\": 2}' WHERE id = %s", (a.id,))
    _drain(w.url)

    async def body() -> None:
        async with running(w.url) as (app_a, one), running(w.url) as (_app_b, two):
            first = await _read(one, w)
            assert _starts(first) == _starts(await _read(one, w))  # kept: a hit
            assert app_a.state.read_cache.hits == 1
            await _read(two, w)  # the other process keeps its own

            # a hold (through process two) hides a slot: process one's next read shows it
            ten = iso(w.at("10:00"))
            h = await two.post(
                f"/v1/tenants/{a.slug}/holds", json={"service_id": str(a.cut), "starts_at": ten, "staff_id": str(a.ann)}
            )
            assert h.status_code == 201, h.text
            held = _starts(await _read(one, w))
            assert (ten, str(a.ann)) not in held and (ten, str(a.ann)) in _starts(first)

            # the hold lapses: no write at all, and the slot is back
            await asyncio.sleep(2.2)
            assert (ten, str(a.ann)) in _starts(await _read(one, w))

            # a confirm: hold again (by process one), confirm through process two
            h = await one.post(
                f"/v1/tenants/{a.slug}/holds", json={"service_id": str(a.cut), "starts_at": ten, "staff_id": str(a.cid)}
            )
            assert h.status_code == 201, h.text
            assert (ten, str(a.cid)) not in _starts(await _read(two, w))
            r = await two.post(
                f"/v1/tenants/{a.slug}/holds/{h.json()['hold_id']}/confirm",
                json={"customer_ref": "c-1"},
                headers=bearer(a.key),
            )
            assert r.status_code == 201, r.text
            await asyncio.sleep(2.2)  # the hold would have lapsed: the booking keeps it gone
            assert (ten, str(a.cid)) not in _starts(await _read(one, w))

            # a rules change written straight into the table, recomputed by the worker
            before = _starts(await _read(one, w))
            db_exec(w.url, "DELETE FROM availability_templates WHERE staff_id = %s", (a.bob,))
            await asyncio.to_thread(_drain, w.url)
            after = _starts(await _read(one, w))
            assert any(s == str(a.bob) for _, s in before) and not any(s == str(a.bob) for _, s in after)

            # a slot write alone (a host's direct insert of time off, then the worker)
            with psycopg.connect(w.url) as conn:
                seed.time_off(conn, a.id, a.ann, w.at("13:00"), w.at("15:00"))
            await asyncio.to_thread(_drain, w.url)
            assert (iso(w.at("13:00")), str(a.ann)) not in _starts(await _read(two, w))
            assert _starts(await _read(one, w)) == _starts(await _read(two, w))

    asyncio.run(body())


def test_not_modified_and_gzip(world: World) -> None:
    w = world

    async def body() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        async with running(w.url) as (_, client):
            first = await _read(client, w)
            again = await _read(client, w, **{"If-None-Match": first.headers["etag"]})
            raw = await client.get(
                f"/v1/tenants/{w.acme.slug}/slots",
                params=_query(w),
                headers={"Accept-Encoding": "gzip"},
            )
            return first, again, raw

    first, again, packed = asyncio.run(body())
    assert first.headers["cache-control"] == "no-cache" and first.headers["etag"].startswith('"')
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
    # httpx decodes gzip itself: the header says it was compressed, the body is the same
    assert packed.headers.get("content-encoding") == "gzip"
    assert packed.json() == first.json()
    assert len(gzip.compress(first.content)) < len(first.content)


def test_notice_moving_with_time_ends_a_kept_answer(world: World) -> None:
    # An answer that starts at the first bookable slot ends when that slot falls under the
    # minimum notice: valid_until says when, with no write at all.
    w, _a = world, world.acme

    async def body() -> dict[str, Any]:
        async with running(w.url) as (app, client):
            r = await _read(client, w)
            key = next(iter(app.state.read_cache._entries))
            kept = app.state.read_cache._entries[key]
            return {"valid_until": kept.valid_until, "first": r.json()["slots"][0]["starts_at"]}

    out = asyncio.run(body())
    # the world's day is three days ahead and the tenant has no notice: the first slot leaves
    # the answer when it starts, at the latest
    first = time.mktime(time.strptime(out["first"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert out["valid_until"] <= first + 1
    assert out["valid_until"] > time.time() + timedelta(days=1).total_seconds()
    assert json.dumps(out)
