"""Calendar feeds: a feed of 5,000 events (recurring ones included) synced into busy times,
and the same feed synced again unchanged (a 304).

A generated ICS (single events, weekly series with a moved and a cancelled occurrence,
all-day events, transparent ones) is served by a local HTTP server with ETags; the clock
covers what the worker does for one feed: ``jobs.feeds.sync_feed`` (claim, conditional GET,
parse and expand, the diff into busy_times, record, commit). Each synced run starts from no
busy times and no validators. Beside it, in the same run: the parse alone (no database), so
the report says where the time goes.
"""

from __future__ import annotations

import hashlib
import threading
import time
import timeit
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg

from bench.common import Plan, Row, ms, spread_s, summary
from bench.generate import Dataset
from slotmill.calendars import parse
from slotmill.config import Settings
from slotmill.jobs.feeds import sync_feed

EVENTS = 5000
SYNC_TARGET_S = 2.0
UNCHANGED_TARGET_S = 0.050
SERIES_LENGTH = 10  # occurrences per weekly series


def feed_text(events: int, start: datetime, days: int) -> bytes:
    """An ICS of about ``events`` busy occurrences from ``start`` on: a fifth of them from
    weekly series (each with one moved and one cancelled occurrence), the rest single events
    (every 50th all day); plus transparent events, which block nothing. Occurrences past
    ``days`` (the horizon) are not synced: the report gives the busy times actually written."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//slotmill bench//EN", "X-WR-TIMEZONE:Europe/London"]

    def stamp(t: datetime) -> str:
        return t.strftime("%Y%m%dT%H%M%SZ")

    def event(uid: str, s: datetime, e: datetime, *extra: str) -> None:
        lines.extend(
            [
                "BEGIN:VEVENT",
                f"UID:{uid}",
                f"DTSTAMP:{stamp(start)}",
                f"DTSTART:{stamp(s)}",
                f"DTEND:{stamp(e)}",
                *extra,
                "END:VEVENT",
            ]
        )

    weeks = max(3, min(SERIES_LENGTH, days // 7))
    n = 0
    for i in range((events // 5) // (weeks - 1)):
        s = start + timedelta(hours=8 + i % 10, days=i % 7)
        uid = f"series-{i}@bench"
        event(uid, s, s + timedelta(minutes=45), f"RRULE:FREQ=WEEKLY;COUNT={weeks}")
        moved = s + timedelta(days=7)
        event(uid, moved + timedelta(hours=1), moved + timedelta(hours=2), f"RECURRENCE-ID:{stamp(moved)}")
        last = s + timedelta(days=7 * (weeks - 1))
        event(uid, last, last + timedelta(minutes=45), f"RECURRENCE-ID:{stamp(last)}", "STATUS:CANCELLED")
        n += weeks - 1
    span = days * 24 * 60
    i = 0
    while n < events:
        s = start + timedelta(minutes=(i * 37) % span)
        if i % 50 == 49:
            lines.extend(
                [
                    "BEGIN:VEVENT",
                    f"UID:allday-{i}@bench",
                    f"DTSTAMP:{stamp(start)}",
                    f"DTSTART;VALUE=DATE:{s:%Y%m%d}",
                    f"DTEND;VALUE=DATE:{s + timedelta(days=1):%Y%m%d}",
                    "END:VEVENT",
                ]
            )
        else:
            event(f"single-{i}@bench", s, s + timedelta(minutes=30))
        if i % 20 == 0:
            event(f"free-{i}@bench", s, s + timedelta(minutes=30), "TRANSP:TRANSPARENT")
        n += 1
        i += 1
    lines.append("END:VCALENDAR")
    return ("\r\n".join(lines) + "\r\n").encode()


@contextmanager
def serving(body: bytes) -> Iterator[str]:
    tag = '"' + hashlib.sha1(body).hexdigest() + '"'

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("If-None-Match") == tag:
                self.send_response(304)
                self.send_header("ETag", tag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("ETag", tag)
            self.send_header("Content-Type", "text/calendar")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/feed.ics"
    finally:
        httpd.shutdown()
        httpd.server_close()


def measure(conn: psycopg.Connection[Any], ds: Dataset, plan: Plan) -> list[Row]:
    events = EVENTS if not plan.smoke else 300
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    body = feed_text(events, now + timedelta(days=1), max(7, ds.horizon_days - 2))
    staff = ds.staff_ids[0]
    settings = Settings(feed_timeout_seconds=30, feed_max_bytes=50_000_000, feed_max_events=100_000)
    feed_id = uuid.uuid4()
    with serving(body) as url:
        conn.execute(
            "INSERT INTO calendar_feeds (tenant_id, id, staff_id, url) VALUES (%s, %s, %s, %s)",
            (ds.tenant_id, feed_id, staff, url),
        )
        conn.commit()
        try:
            synced: list[float] = []
            busy = 0
            for _ in range(plan.runs):
                conn.execute(
                    "UPDATE calendar_feeds SET etag = NULL, body_sha256 = NULL WHERE tenant_id = %s AND id = %s",
                    (ds.tenant_id, feed_id),
                )
                conn.execute(
                    "DELETE FROM busy_times WHERE tenant_id = %s AND source = %s", (ds.tenant_id, f"feed:{feed_id}")
                )
                conn.commit()
                t0 = time.perf_counter()
                result = sync_feed(conn, ds.tenant_id, feed_id, settings=settings)
                synced.append(time.perf_counter() - t0)
                assert result is not None and result.status == "ok", result
                busy = result.busy or 0
            unchanged: list[float] = []
            for _ in range(max(plan.runs, 5)):
                t0 = time.perf_counter()
                result = sync_feed(conn, ds.tenant_id, feed_id, settings=settings)
                unchanged.append(time.perf_counter() - t0)
                assert result is not None and result.status == "not_modified", result
            lo, hi = now - timedelta(days=1), now + timedelta(days=ds.horizon_days + 1)
            parse_t = timeit.repeat(
                lambda: parse(body, zone=ds.zone, lo=lo, hi=hi, max_events=100_000), number=1, repeat=plan.runs
            )
        finally:
            conn.execute("DELETE FROM calendar_feeds WHERE tenant_id = %s AND id = %s", (ds.tenant_id, feed_id))
            # the feed's writes queued recomputes of what is now as before: drop them
            conn.execute(
                "DELETE FROM recompute_requests WHERE tenant_id = %s AND reason = 'busy_times'", (ds.tenant_id,)
            )
            conn.commit()
    s, u, p = summary(synced), summary(unchanged), summary(parse_t)
    return [
        Row(
            key="feed_sync",
            what=f"calendar feed of {events:,} events (recurring included) synced into {busy:,} busy times",
            target="<= 2 s",
            value=ms(s["median"]) if s["median"] < 1 else f"{s['median']:.2f} s",
            spread=spread_s(s),
            ratio=f"parse and expand alone {ms(p['median'])} ({len(body) / 1e6:.1f} MB)",
            met=s["median"] <= SYNC_TARGET_S,
            raw={"events": events, "busy": busy, "bytes": len(body), "sync_s": s, "parse_s": p, "runs_s": synced},
        ),
        Row(
            key="feed_unchanged",
            what="calendar feed unchanged (conditional GET answered 304)",
            target="<= 50 ms",
            value=ms(u["median"]),
            spread=spread_s(u),
            ratio=f"vs a full sync: {s['median'] / u['median']:.0f}x less",
            met=u["median"] <= UNCHANGED_TARGET_S,
            raw={"unchanged_s": u, "runs_s": unchanged},
        ),
    ]
