"""The worker's calendar feed sync (docs/architecture.md#calendar-feeds).

Each sync is one transaction: claim the feed row (``FOR UPDATE SKIP LOCKED``: one worker per
feed, however many are up), fetch it with a conditional GET, and either record that nothing
changed (304, or the same body again), or replace the feed's busy times with what the body
means over the horizon (a diff through a staging table, so unchanged events queue no
recompute), or record why it failed and change nothing else. The busy times' triggers queue
the recomputes like any other write.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import psycopg
from psycopg.rows import dict_row
from psycopg.types.range import Range

from slotmill.calendars import Busy, FeedError, fetch, parse
from slotmill.config import Settings, get_settings
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.feeds")
Q = owned_by(__name__)
Conn = psycopg.Connection[Any]


@dataclass(frozen=True)
class SyncResult:
    tenant_id: UUID
    feed_id: UUID
    status: str  # ok, not_modified, error
    http_status: int | None
    busy: int | None  # the feed's busy times after the sync (None: failed, as they were)
    added: int
    removed: int
    error: str | None
    seconds: float


def source_of(feed_id: UUID) -> str:
    return f"feed:{feed_id}"


def sync_due(
    conn: Conn,
    *,
    settings: Settings | None = None,
    stop: threading.Event | None = None,
    client: httpx.Client | None = None,
) -> list[SyncResult]:
    """Sync every feed that is due, one transaction each, until none is (or ``stop``)."""
    out: list[SyncResult] = []
    while stop is None or not stop.is_set():
        with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            feed = cur.execute(Q["feed_claim_due"]).fetchone()
            if feed is None:
                break
            out.append(_sync(conn, feed, settings or get_settings(), client, force=False))
    return out


def sync_feed(
    conn: Conn,
    tenant_id: UUID,
    feed_id: UUID,
    *,
    settings: Settings | None = None,
    client: httpx.Client | None = None,
    force: bool = False,
) -> SyncResult | None:
    """Sync one feed now (None: no such feed of this tenant). ``force``: fetch it whole,
    without the validators of the last answer."""
    with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        feed = cur.execute(Q["feed_claim_one"], {"tenant_id": tenant_id, "feed_id": feed_id}).fetchone()
        if feed is None:
            return None
        return _sync(conn, feed, settings or get_settings(), client, force=force)


def list_feeds(conn: Conn, tenant_id: UUID) -> list[dict[str, Any]]:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(Q["feeds_of_tenant"], {"tenant_id": tenant_id}).fetchall()


def _sync(
    conn: Conn, feed: dict[str, Any], settings: Settings, client: httpx.Client | None, *, force: bool
) -> SyncResult:
    started = time.perf_counter()
    keys = {"tenant_id": feed["tenant_id"], "feed_id": feed["id"], "staff_id": feed["staff_id"]}
    source = source_of(feed["id"])
    http_status: int | None = None
    try:
        got = fetch(
            feed["url"],
            etag=None if force else feed["etag"],
            last_modified=None if force else feed["last_modified"],
            timeout_s=settings.feed_timeout_seconds,
            max_bytes=settings.feed_max_bytes,
            client=client,
            guard=settings.outbound_guard,
        )
        http_status = got.status
        added = removed = 0
        unchanged = got.status == 304 or (not force and got.sha256 is not None and got.sha256 == feed["body_sha256"])
        if not unchanged:
            assert got.body is not None
            now = datetime.now(UTC)
            events = parse(
                got.body,
                zone=feed["zone"],
                lo=now - timedelta(days=1),
                hi=now + timedelta(days=feed["horizon_days"] + 1),
                max_events=settings.feed_max_events,
            )
            added, removed = _replace(conn, {**keys, "source": source}, events)
    except FeedError as e:
        return _failed(conn, keys, e.reason, e.http_status if e.http_status is not None else http_status, started)
    with conn.cursor() as cur:
        row = cur.execute(
            Q["feed_record_ok"],
            {
                **keys,
                "source": source,
                "etag": got.etag,
                "last_modified": got.last_modified,
                "body_sha256": got.sha256 if got.status == 200 else feed["body_sha256"],
                "status": "not_modified" if unchanged else "ok",
                "http_status": got.status,
            },
        ).fetchone()
    busy = int(row[0]) if row else 0
    result = SyncResult(
        feed["tenant_id"],
        feed["id"],
        "not_modified" if unchanged else "ok",
        got.status,
        busy,
        added,
        removed,
        None,
        time.perf_counter() - started,
    )
    log.info(
        "feed synced",
        extra={
            "ctx_tenant": str(result.tenant_id),
            "ctx_feed": str(result.feed_id),
            "ctx_status": result.status,
            "ctx_busy": busy,
            "ctx_added": added,
            "ctx_removed": removed,
            "ctx_ms": round(result.seconds * 1000, 1),
        },
    )
    return result


def _replace(conn: Conn, params: dict[str, Any], events: list[Busy]) -> tuple[int, int]:
    """Make the feed's busy times exactly ``events`` (in a savepoint: a refusal of the
    database is a failed sync like any other)."""
    try:
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(Q["feed_stage"])
            with cur.copy(Q["feed_copy"]) as copy:
                copy.set_types(["text", "tstzrange"])
                for b in events:
                    copy.write_row((b.external_id, Range(b.starts_at, b.ends_at, "[)")))
            removed = cur.execute(Q["feed_remove_stale"], params).rowcount
            added = cur.execute(Q["feed_add_new"], params).rowcount
    except psycopg.DataError as e:
        raise FeedError(f"the database refused an event: {e.diag.message_primary or e}") from None
    except psycopg.IntegrityError as e:
        raise FeedError(f"the database refused an event: {e.diag.message_primary or e}") from None
    return added, removed


def _failed(conn: Conn, keys: dict[str, Any], reason: str, http_status: int | None, started: float) -> SyncResult:
    with conn.cursor() as cur:
        cur.execute(Q["feed_record_error"], {**keys, "error": reason[:2000], "http_status": http_status})
    log.warning(
        "feed sync failed; nothing changed",
        extra={"ctx_tenant": str(keys["tenant_id"]), "ctx_feed": str(keys["feed_id"]), "ctx_error": reason},
    )
    return SyncResult(
        keys["tenant_id"], keys["feed_id"], "error", http_status, None, 0, 0, reason, time.perf_counter() - started
    )
