"""Calendar feeds, below the database: fetch an ICS URL with a conditional GET, and turn
an iCalendar body into the busy ranges it means over a window.

Neutral ground between the worker (jobs/feeds.py, which syncs feeds on their interval) and
the CLI (``slotmill feeds sync``): no database here. Parsing is icalendar's and expansion is
recurring-ical-events' (RRULE, RDATE, EXDATE, RECURRENCE-ID exceptions, X-WR-TIMEZONE);
what an event means for availability is decided here:

- ``TRANSP:TRANSPARENT`` (free) and ``STATUS:CANCELLED`` events (a cancelled series or one
  cancelled occurrence) block nothing;
- an all-day event blocks its dates from local midnight to local midnight in the staff
  member's zone (a day off is a day off wherever the calendar was written);
- a floating time (no zone, no Z) is a wall-clock time of the calendar's X-WR-TIMEZONE,
  else of the staff member's zone;
- each occurrence is named by its UID and its recurrence id (its original start), so a
  moved occurrence keeps its name and a re-sync updates, rather than duplicates, it.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
import recurring_ical_events

from slotmill.outbound import Guard, sync_client

USER_AGENT = "slotmill-feeds/1"


class FeedError(Exception):
    """A feed that could not be synced: nothing is changed, and this is recorded."""

    def __init__(self, reason: str, http_status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.http_status = http_status


@dataclass(frozen=True)
class Fetched:
    status: int  # 200 or 304
    body: bytes | None
    etag: str | None
    last_modified: str | None

    @property
    def sha256(self) -> str | None:
        return None if self.body is None else hashlib.sha256(self.body).hexdigest()


@dataclass(frozen=True, order=True)
class Busy:
    starts_at: datetime
    ends_at: datetime
    external_id: str


def http_url(url: str) -> str:
    # webcal:// is how calendar apps spell "subscribe over HTTP(S)"
    return "https://" + url[len("webcal://") :] if url.startswith("webcal://") else url


def fetch(
    url: str,
    *,
    etag: str | None,
    last_modified: str | None,
    timeout_s: float,
    max_bytes: int,
    client: httpx.Client | None = None,
    guard: Guard | None = None,
) -> Fetched:
    """GET ``url`` with If-None-Match / If-Modified-Since. Raises :class:`FeedError` for a
    timeout, a network error, an answer other than 200 or 304, or a body over ``max_bytes``
    (read as a stream, so an enormous one is never held whole)."""
    headers = {"User-Agent": USER_AGENT, "Accept": "text/calendar, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    own = client is None
    # every connection, redirects included, reaches public addresses only (slotmill/outbound.py)
    http = client or sync_client(guard or Guard(), follow_redirects=True, max_redirects=5)
    deadline = time.monotonic() + timeout_s
    try:
        with http.stream("GET", http_url(url), headers=headers, timeout=timeout_s) as r:
            if r.status_code == 304:
                return Fetched(
                    304, None, r.headers.get("etag") or etag, r.headers.get("last-modified") or last_modified
                )
            if r.status_code != 200:
                raise FeedError(f"HTTP {r.status_code} {r.reason_phrase}".strip(), r.status_code)
            declared = r.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise FeedError(f"the feed is {int(declared)} bytes, more than the limit of {max_bytes}", 200)
            chunks: list[bytes] = []
            size = 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise FeedError(f"the feed is more than the limit of {max_bytes} bytes", 200)
                if time.monotonic() > deadline:
                    raise FeedError(f"timed out after {timeout_s:g} s (still sending)", 200)
                chunks.append(chunk)
            return Fetched(200, b"".join(chunks), r.headers.get("etag"), r.headers.get("last-modified"))
    except httpx.TimeoutException:
        raise FeedError(f"timed out after {timeout_s:g} s") from None
    except httpx.HTTPError as e:
        raise FeedError(f"could not fetch: {type(e).__name__}: {e}") from None
    finally:
        if own:
            http.close()


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(str(name).strip())
    except (ValueError, OSError, KeyError):
        return None  # an unknown X-WR-TIMEZONE: the staff member's zone instead


def _instant(value: date | datetime, zone: ZoneInfo) -> datetime:
    if isinstance(value, datetime):
        return (value if value.tzinfo is not None else value.replace(tzinfo=zone)).astimezone(UTC)
    # a date: local midnight in the staff member's zone
    return datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)


def _prop(event: Any, name: str) -> Any:
    value = event.get(name)
    return getattr(value, "dt", value)


def _name(event: Any, uid: str, zone: ZoneInfo, recurring: set[str]) -> str:
    """UID alone for a single event (so moving it updates its row); UID and the original
    start (RECURRENCE-ID) for an occurrence of a series."""
    if uid not in recurring:
        return uid
    rid = _prop(event, "RECURRENCE-ID")
    if rid is None:
        rid = _prop(event, "DTSTART")
    return f"{uid}/{_instant(rid, zone):%Y%m%dT%H%M%SZ}"


def parse(body: bytes, *, zone: str, lo: datetime, hi: datetime, max_events: int) -> list[Busy]:
    """The busy ranges ``body`` (an iCalendar text) means in ``[lo, hi)``, sorted.

    Raises :class:`FeedError` when it is not iCalendar, or means more than ``max_events``."""
    try:
        cal = icalendar.Calendar.from_ical(body)
    except Exception as e:  # icalendar raises ValueError and friends for anything odd
        raise FeedError(f"not iCalendar: {str(e).splitlines()[0][:200] if str(e) else type(e).__name__}") from None
    if not isinstance(cal, icalendar.Calendar) or cal.name != "VCALENDAR":
        raise FeedError("not iCalendar: no VCALENDAR")
    floating = _zone(cal.get("X-WR-TIMEZONE")) or ZoneInfo(zone)
    staff_zone = ZoneInfo(zone)
    # Series (UIDs with a rule, extra dates or exceptions) go through recurring-ical-events;
    # single events, most of a real calendar, are read directly: expanding them too costs
    # three times as much and cannot change them.
    events = list(cal.walk("VEVENT"))
    recurring = {
        str(e.get("UID"))
        for e in events
        if e.get("RRULE") is not None or e.get("RDATE") is not None or e.get("RECURRENCE-ID") is not None
    }
    out: dict[str, Busy] = {}

    def add(event: Any) -> None:
        if str(event.get("TRANSP", "OPAQUE")).upper() == "TRANSPARENT":
            return
        if str(event.get("STATUS", "")).upper() == "CANCELLED":
            return
        start = _prop(event, "DTSTART")
        if start is None:
            return
        end = _prop(event, "DTEND")
        all_day = not isinstance(start, datetime)
        if end is None:
            duration = _prop(event, "DURATION")
            if isinstance(duration, timedelta):
                end = start + duration
            elif all_day:
                end = start + timedelta(days=1)
            else:
                return  # an instant with no length blocks nothing
        in_zone = staff_zone if all_day else floating
        starts_at, ends_at = _instant(start, in_zone), _instant(end, in_zone)
        if ends_at <= starts_at or ends_at <= lo or starts_at >= hi:
            return
        uid = str(event.get("UID") or f"no-uid-{start}")
        name = _name(event, uid, floating, recurring)
        if name in out:  # two events with one UID and no recurrence: keep both
            name = f"{name}#{sum(1 for k in out if k.startswith(name))}"
        out[name] = Busy(starts_at, ends_at, name[:500])
        if len(out) > max_events:
            raise FeedError(f"the feed has more than {max_events} events in the horizon")

    try:
        series = icalendar.Calendar()
        for key, value in cal.property_items(recursive=False)[1:-1]:
            series.add(key, value)
        for tz in cal.walk("VTIMEZONE"):
            series.add_component(tz)
        for event in events:
            if str(event.get("UID")) in recurring:
                series.add_component(event)
            else:
                add(event)
        if recurring:
            for event in recurring_ical_events.of(series, skip_bad_series=True).between(lo, hi):
                add(event)
    except FeedError:
        raise
    except Exception as e:  # a series recurring-ical-events cannot expand at all
        raise FeedError(f"cannot expand the feed: {type(e).__name__}: {str(e)[:200]}") from None
    return sorted(out.values())
