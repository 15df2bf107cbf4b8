"""Calendar feeds (docs/architecture.md#calendar-feeds) against a local HTTP server serving
ICS files shaped like Google, Outlook and Apple exports (tests/jobs/feeds/*.ics, dated relative to
the test's day): recurrences with a moved and a cancelled occurrence, all-day events in the
staff member's zone, transparent events, floating times, X-WR-TIMEZONE; then a 304, a
changed feed (a diff), a timeout, a 500, garbage and an enormous feed, each failure
changing nothing and recorded on the feed; a running worker syncing a due feed; admin
status listing feeds."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from string import Template
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from slotmill.config import Settings, get_settings
from slotmill.jobs.feeds import SyncResult, sync_feed
from slotmill.jobs.queue import drain_one
from slotmill.jobs.worker import Worker
from tests.feed_server import FeedServer, Served
from tests.support import World, bearer, db_rows, iso, run, slots

FEEDS = Path(__file__).resolve().parent / "feeds"
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def ics(name: str, day: date) -> bytes:
    """A fixture file with its ${Dn} placeholders as the dates n days after ``day``."""
    dates = {f"D{n}": (day + timedelta(days=n)).strftime("%Y%m%d") for n in range(0, 30)}
    return Template((FEEDS / name).read_text()).substitute(dates).replace("\n", "\r\n").encode()


def local(day: date, hhmm: str, zone: ZoneInfo = LONDON, plus_days: int = 0) -> datetime:
    h, m = (int(x) for x in hhmm.split(":"))
    d = day + timedelta(days=plus_days)
    return datetime(d.year, d.month, d.day, h, m, tzinfo=zone).astimezone(UTC)


SETTINGS = Settings(feed_timeout_seconds=1.0, feed_max_bytes=200_000, feed_max_events=5_000)


def add_feed(w: World, staff: UUID, url: str) -> UUID:
    async def go(c: httpx.AsyncClient) -> str:
        r = await c.post(
            f"/v1/tenants/{w.acme.slug}/calendar-feeds",
            json={"staff_id": str(staff), "url": url},
            headers=bearer(w.acme.key),
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    return UUID(run(w.url, go))


def sync(w: World, feed: UUID, **kw: Any) -> SyncResult:
    with psycopg.connect(w.url) as conn:
        result = sync_feed(conn, w.acme.id, feed, settings=kw.pop("settings", SETTINGS), **kw)
    assert result is not None
    return result


def busy(w: World, feed: UUID) -> dict[str, tuple[datetime, datetime]]:
    rows = db_rows(
        w.url,
        "SELECT external_id, lower(during), upper(during) FROM busy_times WHERE tenant_id = %s AND source = %s",
        (w.acme.id, f"feed:{feed}"),
    )
    return {r[0]: (r[1], r[2]) for r in rows}


def feed_row(w: World, feed: UUID) -> dict[str, Any]:
    with psycopg.connect(w.url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        row = cur.execute("SELECT * FROM calendar_feeds WHERE id = %s", (feed,)).fetchone()
    assert row is not None
    return row


def ranges(found: dict[str, tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    return sorted(found.values())


def test_google_export_weekly_series_with_a_moved_and_a_cancelled_occurrence(
    world: World, feed_server: FeedServer
) -> None:
    w, d = world, world.day
    feed_server.routes["/google.ics"] = Served(ics("google.ics", d))
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/google.ics")
    result = sync(w, feed)
    assert (result.status, result.http_status, result.error) == ("ok", 200, None)
    got = busy(w, feed)
    uid = "3q8a1rn0k0v5s1d3jq0f2c9b7h@google.com"
    assert ranges(got) == [
        (local(d, "10:00"), local(d, "11:00")),
        (local(d, "09:00", plus_days=1), local(d, "09:30", plus_days=1)),
        (local(d, "14:00", plus_days=7), local(d, "15:00", plus_days=7)),  # moved
        # day 14 cancelled, day 21 as the series says; the transparent lunch blocks nothing
        (local(d, "10:00", plus_days=21), local(d, "11:00", plus_days=21)),
    ]
    # an occurrence is named by UID and recurrence id: the moved one by its original start
    assert f"{uid}/{local(d, '10:00', plus_days=7):%Y%m%dT%H%M%SZ}" in got
    assert "0f5e6d7c8b9a@google.com" in got  # a single event by its UID alone
    assert result.busy == 4 and feed_row(w, feed)["busy_count"] == 4


def test_outlook_export_with_windows_zone_all_day_and_free_events(world: World, feed_server: FeedServer) -> None:
    w, d = world, world.day
    feed_server.routes["/outlook.ics"] = Served(ics("outlook.ics", d))
    feed = add_feed(w, w.acme.bob, f"{feed_server.base}/outlook.ics")
    assert sync(w, feed).status == "ok"
    assert ranges(busy(w, feed)) == [
        (local(d, "09:30", plus_days=n), local(d, "09:45", plus_days=n)) for n in (0, 1)
    ] + [
        (local(d, "00:00", plus_days=2), local(d, "00:00", plus_days=3)),  # all day, London
        (local(d, "09:30", plus_days=2), local(d, "09:45", plus_days=2)),
    ]


def test_apple_export_floating_time_and_all_day_in_the_staff_zone(world: World, feed_server: FeedServer) -> None:
    w, d = world, world.day
    # Cid works in New York: all-day events and floating times are his wall clock
    db_rows(w.url, "UPDATE staff SET timezone = 'America/New_York' WHERE id = %s RETURNING id", (w.acme.cid,))
    feed_server.routes["/apple.ics"] = Served(ics("apple.ics", d))
    feed = add_feed(w, w.acme.cid, f"{feed_server.base}/apple.ics")
    assert sync(w, feed).status == "ok"
    assert ranges(busy(w, feed)) == [
        (local(d, "15:00", plus_days=1), local(d, "16:00", plus_days=1)),  # TZID Europe/London
        (local(d, "17:00", NEW_YORK, 1), local(d, "18:00", NEW_YORK, 1)),  # floating: his zone
        (local(d, "00:00", NEW_YORK, 4), local(d, "00:00", NEW_YORK, 5)),  # all day, his zone
    ]


def test_x_wr_timezone_reads_floating_and_recurring_times_in_the_calendars_zone(
    world: World, feed_server: FeedServer
) -> None:
    w, d = world, world.day
    feed_server.routes["/xwr.ics"] = Served(ics("xwr.ics", d))
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/xwr.ics")
    assert sync(w, feed).status == "ok"
    first = local(d, "14:00", ZoneInfo("UTC"))
    wall = first.astimezone(NEW_YORK)
    second = (wall.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=NEW_YORK).astimezone(UTC)
    assert ranges(busy(w, feed)) == sorted(
        [
            (first, first + timedelta(hours=1)),
            (second, second + timedelta(hours=1)),  # daily in New York wall-clock time
            (local(d, "09:00", NEW_YORK, 1), local(d, "10:00", NEW_YORK, 1)),  # floating: New York
        ]
    )


def test_a_synced_feed_reaches_the_slots_and_an_unchanged_one_changes_nothing(
    world: World, feed_server: FeedServer
) -> None:
    w, d = world, world.day
    feed_server.routes["/google.ics"] = Served(ics("google.ics", d))
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/google.ics")
    assert sync(w, feed).status == "ok"
    with psycopg.connect(w.url) as conn:
        while drain_one(conn) is not None:
            pass

    async def read(c: httpx.AsyncClient) -> list[str]:
        return [s["starts_at"] for s in await slots(c, w, w.acme.cut) if s["staff_id"] == str(w.acme.ann)]

    starts = run(w.url, read)
    assert iso(w.at("10:00")) not in starts  # the series' first occurrence
    assert iso(w.at("12:00")) in starts  # the transparent lunch
    assert iso(w.at("11:00")) in starts

    # 304: validators sent, nothing written, nothing queued
    queued = db_rows(w.url, "SELECT count(*) FROM recompute_requests")
    before = busy(w, feed)
    again = sync(w, feed)
    assert (again.status, again.http_status, again.added, again.removed) == ("not_modified", 304, 0, 0)
    assert feed_server.hits[-1][1] is not None
    assert busy(w, feed) == before
    assert db_rows(w.url, "SELECT count(*) FROM recompute_requests") == queued
    assert feed_row(w, feed)["last_status"] == "not_modified"

    # the same body from a server without validators: no parse, no write either
    feed_server.routes["/google.ics"] = Served(ics("google.ics", d), validators=False)
    assert sync(w, feed).status == "not_modified"
    assert db_rows(w.url, "SELECT count(*) FROM recompute_requests") == queued


def test_a_changed_feed_is_replaced_as_a_diff(world: World, feed_server: FeedServer) -> None:
    w, d = world, world.day
    body = ics("apple.ics", d)
    feed_server.routes["/apple.ics"] = Served(body)
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/apple.ics")
    assert sync(w, feed).status == "ok"
    before = busy(w, feed)
    moved = body.replace(b"T150000", b"T130000")  # the dentist moves to 13:00
    feed_server.routes["/apple.ics"] = Served(moved)
    result = sync(w, feed)
    assert (result.status, result.added, result.removed) == ("ok", 1, 1)
    after = busy(w, feed)
    assert after.keys() == before.keys()
    assert after["6F1C2A3B-4D5E-4F60-8172-93A4B5C6D7E8"][0] == local(d, "13:00", plus_days=1)


@pytest.mark.parametrize(
    ("served", "status", "reason"),
    [
        (Served(b"", delay_s=3.0), None, "timed out"),
        (Served(b"Internal error", status=500), 500, "HTTP 500"),
        (Served(b"<html><body>Sign in to see this calendar</body></html>"), 200, "not iCalendar"),
        (Served(b"BEGIN:VCALENDAR\r\n" + b"X-FILLER:" + b"x" * 300_000 + b"\r\nEND:VCALENDAR\r\n"), 200, "limit"),
        (
            Served(
                b"BEGIN:VCALENDAR\r\n" + b"X-FILLER:" + b"x" * 300_000 + b"\r\nEND:VCALENDAR\r\n",
                chunk_delay_s=0.001,
                validators=False,
            ),
            200,
            "limit",
        ),
    ],
    ids=["timeout", "500", "garbage", "enormous", "enormous-streamed"],
)
def test_a_failing_feed_changes_nothing_and_records_why(
    world: World, feed_server: FeedServer, served: Served, status: int | None, reason: str
) -> None:
    w, d = world, world.day
    feed_server.routes["/f.ics"] = Served(ics("google.ics", d))
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/f.ics")
    assert sync(w, feed).status == "ok"
    before = busy(w, feed)
    queued = db_rows(w.url, "SELECT count(*) FROM recompute_requests")
    feed_server.routes["/f.ics"] = served
    result = sync(w, feed, force=True)
    assert result.status == "error" and reason in (result.error or ""), result
    assert busy(w, feed) == before
    assert db_rows(w.url, "SELECT count(*) FROM recompute_requests") == queued
    row = feed_row(w, feed)
    assert (row["last_status"], row["last_http_status"], row["failures"]) == ("error", status, 1)
    assert reason in row["last_error"]
    assert row["last_success_at"] is not None and row["busy_count"] == len(before)
    assert row["next_sync_at"] > row["last_sync_at"]


def test_too_many_events_is_a_failure(world: World, feed_server: FeedServer) -> None:
    w, d = world, world.day
    feed_server.routes["/google.ics"] = Served(ics("google.ics", d))
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/google.ics")
    result = sync(w, feed, settings=Settings(feed_timeout_seconds=2, feed_max_bytes=200_000, feed_max_events=2))
    assert result.status == "error" and "more than 2 events" in (result.error or "")
    assert busy(w, feed) == {}


def test_deleting_or_moving_a_feed_drops_its_busy_times(world: World, feed_server: FeedServer) -> None:
    w, d = world, world.day
    feed_server.routes["/google.ics"] = Served(ics("google.ics", d))
    feed = add_feed(w, w.acme.ann, f"{feed_server.base}/google.ics")
    assert sync(w, feed).status == "ok" and busy(w, feed)

    async def move(c: httpx.AsyncClient) -> httpx.Response:
        path = f"/v1/tenants/{w.acme.slug}/calendar-feeds/{feed}"
        return await c.patch(path, json={"staff_id": str(w.acme.bob)}, headers=bearer(w.acme.key))

    r = run(w.url, move)
    assert r.status_code == 200, r.text
    assert busy(w, feed) == {}
    assert r.json()["busy_count"] == 0 and feed_row(w, feed)["etag"] is None
    assert sync(w, feed).status == "ok"
    assert {v for v in db_rows(w.url, "SELECT DISTINCT staff_id FROM busy_times")} == {(w.acme.bob,)}

    async def delete(c: httpx.AsyncClient) -> httpx.Response:
        return await c.delete(f"/v1/tenants/{w.acme.slug}/calendar-feeds/{feed}", headers=bearer(w.acme.key))

    assert run(w.url, delete).status_code == 204
    assert busy(w, feed) == {}


def test_a_running_worker_syncs_due_feeds_and_admin_status_lists_them(
    world: World, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    w, d = world, world.day
    monkeypatch.setenv("SLOTMILL_FEED_CHECK_SECONDS", "0.3")
    get_settings.cache_clear()
    feed_server.routes["/google.ics"] = Served(ics("google.ics", d))
    good = add_feed(w, w.acme.ann, f"{feed_server.base}/google.ics")
    bad = add_feed(w, w.acme.bob, f"{feed_server.base}/missing.ics")
    worker = Worker(w.url, poll_seconds=0.2)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (
            feed_row(w, good)["last_status"] is None or feed_row(w, bad)["last_status"] is None
        ):
            time.sleep(0.1)
    finally:
        worker.stop()
        worker.join(timeout=30)
        get_settings.cache_clear()
    assert feed_row(w, good)["last_status"] == "ok" and len(busy(w, good)) == 4
    assert feed_row(w, bad)["last_status"] == "error"

    async def status(c: httpx.AsyncClient) -> dict[str, Any]:
        r = await c.get(f"/v1/admin/tenants/{w.acme.slug}/status", headers=bearer("admin-secret"))
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    feeds = {f["id"]: f for f in run(w.url, status, admin_key="admin-secret")["feeds"]}
    assert feeds[str(good)]["last_status"] == "ok" and feeds[str(good)]["busy_count"] == 4
    assert feeds[str(bad)]["last_status"] == "error" and feeds[str(bad)]["last_http_status"] == 404
    assert "HTTP 404" in feeds[str(bad)]["last_error"]
