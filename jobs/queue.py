"""The recompute queue (SPEC §8): claim a group of requests, coalesce them into windows,
recompute those windows and retire the requests, all in one transaction.

A group is every free request of one (tenant, staff_id) pair; ``staff_id`` NULL stands for
every staff member of the tenant and is a group of its own. Claims use ``FOR UPDATE SKIP
LOCKED``, so any number of workers drain the queue together, and a request leaves the queue
only in the commit that writes its result: a worker that dies mid-way rolls back, and the
requests are claimed again.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from slotmill.materializer import engine
from slotmill.materializer.horizon import Horizon, from_epoch, to_epoch
from slotmill.materializer.loader import Conn, Tenant, all_staff_ids, load_rules, load_tenant_by_id
from slotmill.materializer.model import RuleError
from slotmill.materializer.refresh import (
    FULL_REFRESH_CHUNK,
    delete_outside,
    delete_tenant_slots,
    recompute_in_transaction,
    record_failures,
)
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.worker")
Q = owned_by(__name__)

DAY_S = 86_400
# Windows closer than this are recomputed as one: a load of the rules costs more than the
# slots of the gap.
MERGE_GAP_S = DAY_S
# More windows than this in one group: recompute their hull instead (one load, one delete).
MAX_WINDOWS = 4
# Requests whose range is a span of busy time (not a change of working windows): only the
# slots whose blocked range reaches into it can change. Every other reason is a rule change.
BUSY_REASONS = frozenset({"bookings", "time_off", "busy_times"})

Span = tuple[int, int]
GroupKey = tuple[UUID, UUID | None]


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    tenant_id: UUID
    staff_id: UUID | None
    whole: bool  # during NULL: the whole horizon
    lo: int | None  # None: unbounded on that side (or empty, see ``empty``)
    hi: int | None
    empty: bool
    reason: str
    requested_at: datetime
    attempts: int = 0  # times this request's recompute failed already

    @classmethod
    def from_row(cls, r: dict[str, Any]) -> Request:
        return cls(
            id=r["id"],
            tenant_id=r["tenant_id"],
            staff_id=r["staff_id"],
            whole=r["whole"],
            lo=None if r["lo"] is None else to_epoch(r["lo"]),
            hi=None if r["hi"] is None else to_epoch(r["hi"]),
            empty=r["empty"],
            reason=r["reason"],
            requested_at=r["requested_at"],
            attempts=r["attempts"],
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one claim transaction did."""

    tenant_id: UUID
    staff_id: UUID | None
    action: str  # recomputed | expanded | dropped (tenant gone) | failed (kept, retried later)
    requests: int
    windows: int
    staff: int
    slots_written: int
    slots_deleted: int
    oldest_requested_at: datetime
    duration_s: float
    error: str | None = None  # why it failed
    attempts: int = 0  # failures so far, this one included
    parked: bool = False  # failed PARK_AFTER times: kept, but retried only with a new request
    staff_failed: int = 0  # staff members of a whole-tenant group left out (each queued with why)


# A failed group is retried after BACKOFF_BASE_S, doubling per attempt up to BACKOFF_MAX_S
# (with jitter, so a burst of failures does not retry in lockstep), and parked after
# PARK_AFTER attempts: a parked request blocks nothing and costs nothing until a new
# request of its group (the host fixed the rule) or a full refresh takes it along.
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 3600.0
PARK_AFTER = 5


def backoff_s(attempts: int, *, jitter: float | None = None) -> float:
    """Seconds until a group that has failed ``attempts`` times is tried again."""
    j = random.uniform(0.8, 1.2) if jitter is None else jitter
    return min(BACKOFF_BASE_S * 2.0 ** max(attempts - 1, 0), BACKOFF_MAX_S) * j


def describe(e: BaseException) -> str:
    """One line saying why a recompute failed, for admin status."""
    if isinstance(e, RuleError):
        return str(e)
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"[:1000]


# ---------------------------------------------------------------------------------------
# Coalescing: pure functions over instants.


def request_spans(
    requests: Iterable[Request], horizon: Horizon, *, after_s: int, before_s: int
) -> tuple[bool, list[Span], list[Span]]:
    """(whole horizon?, busy spans, rule spans) of a group, widened by the services' reach.

    A busy range ``[a, b)`` touches the slots whose blocked range overlaps it, which start
    in ``(a - after_s, b + before_s)`` where ``after_s`` is the longest duration + buffer
    after and ``before_s`` the longest buffer before of the tenant's services.
    """
    busy: list[Span] = []
    rules: list[Span] = []
    for r in requests:
        if r.whole:
            return True, [], []
        if r.empty:
            continue
        lo = horizon.start if r.lo is None else r.lo - after_s
        hi = horizon.end if r.hi is None else r.hi + before_s
        (busy if r.reason in BUSY_REASONS else rules).append((lo, hi))
    return False, busy, rules


def extend_to_windows(spans: Iterable[Span], windows: Sequence[Span]) -> list[Span]:
    """Each span grown to cover every working window that intersects it.

    A rule change on one date can split, join or shorten a merged window that runs on into
    neighbouring dates (across midnight, or a 24-hour schedule), and the grid of every slot
    in that window is anchored at its start: all of it is recomputed. The windows are the
    current (new) rules' windows; a window of the old rules that reached out of the span
    still intersects the span with what is left of it, so it is covered too.
    """
    out: list[Span] = []
    for lo, hi in spans:
        for s, e in windows:
            if s < hi and e > lo:
                lo, hi = min(lo, s), max(hi, e)
        out.append((lo, hi))
    return out


def merge_spans(
    spans: Iterable[Span],
    horizon: Horizon,
    *,
    gap: int = MERGE_GAP_S,
    max_windows: int = MAX_WINDOWS,
) -> list[Span]:
    """Spans clipped to the horizon, sorted, with overlapping or close ones joined."""
    clipped = sorted(horizon.clip(lo, hi) for lo, hi in spans)
    out: list[Span] = []
    for lo, hi in clipped:
        if lo >= hi:
            continue
        if out and lo <= out[-1][1] + gap:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    if len(out) > max_windows:
        return [(out[0][0], max(hi for _, hi in out))]
    return out


# ---------------------------------------------------------------------------------------
# One claim transaction.


def _claim(conn: Conn, batch: int) -> list[Request]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(Q["claim_group"], {"batch": batch}).fetchall()
    return [Request.from_row(r) for r in rows]


def _reach(conn: Conn, tenant_id: UUID) -> tuple[int, int]:
    row = conn.execute(Q["service_reach"], {"tenant_id": tenant_id}).fetchone()
    if row is None:
        return 0, 0
    return int(str(row[0])), int(str(row[1]))


def _working_windows(conn: Conn, tenant: Tenant, staff_ids: list[UUID], now: int) -> list[Span]:
    h = tenant.horizon(now)
    # Only the windows are wanted: a one-second busy range keeps the busy load small.
    rules = load_rules(conn, tenant, staff_ids=staff_ids, lo=h.start, hi=h.start + 1, now=now)
    out: list[Span] = []
    for staff in rules.staff.values():
        if staff.error:
            continue  # the recompute names it as failed
        try:
            windows = engine.merged_windows(staff.schedule, rules.first_date, rules.last_date)
        except RuleError:
            continue  # likewise
        out.extend((w.start, w.end) for w in windows)
    return out


def _delete(conn: Conn, tenant_id: UUID, requests: Sequence[Request]) -> None:
    conn.execute(Q["delete_requests"], {"tenant_id": tenant_id, "ids": [r.id for r in requests]})


def drain_one(
    conn: Conn,
    *,
    batch_size: int = 500,
    chunk: int = FULL_REFRESH_CHUNK,
    hold_s: float = 0.0,
) -> Outcome | None:
    """Claim the oldest due group, recompute it and retire its requests; None when no due
    request is left.

    If the recompute fails (a rule the engine cannot compute, a statement timeout, ...),
    its work is rolled back to a savepoint and the requests stay queued, still locked by
    this transaction, marked with the reason, due again after a back-off, and parked after
    ``PARK_AFTER`` failures: a poison request never blocks the rest of the queue.

    ``hold_s`` keeps the transaction open that long after the slots are written and before
    the commit: a test-only hook that makes a recompute slow enough to be interrupted.
    """
    started = time.perf_counter()
    conn.rollback()  # a claim must be the first statement of its own transaction
    with conn.transaction():
        requests = _claim(conn, batch_size)
        if not requests:
            return None
        key: GroupKey = (requests[0].tenant_id, requests[0].staff_id)
        oldest = min(r.requested_at for r in requests)
        try:
            with conn.transaction():  # a savepoint: a failure undoes only the recompute
                done = _recompute_group(conn, key, requests, chunk=chunk, hold_s=hold_s)
        except Exception as e:
            if conn.closed or conn.broken:
                raise
            return _failed(conn, key, requests, e, oldest, time.perf_counter() - started)
    return Outcome(
        tenant_id=key[0],
        staff_id=key[1],
        action=done.action,
        requests=len(requests),
        windows=done.windows,
        staff=done.staff,
        slots_written=done.written,
        slots_deleted=done.deleted,
        oldest_requested_at=oldest,
        duration_s=time.perf_counter() - started,
        staff_failed=done.staff_failed,
    )


def _failed(
    conn: Conn, key: GroupKey, requests: list[Request], e: Exception, oldest: datetime, duration_s: float
) -> Outcome:
    attempts = max(r.attempts for r in requests) + 1
    error = describe(e)
    conn.execute(
        Q["fail_requests"],
        {
            "tenant_id": key[0],
            "ids": [r.id for r in requests],
            "attempts": attempts,
            "error": error,
            "park_after": PARK_AFTER,
            "backoff_s": backoff_s(attempts),
        },
    )
    return Outcome(
        tenant_id=key[0],
        staff_id=key[1],
        action="failed",
        requests=len(requests),
        windows=0,
        staff=0,
        slots_written=0,
        slots_deleted=0,
        oldest_requested_at=oldest,
        duration_s=duration_s,
        error=error,
        attempts=attempts,
        parked=attempts >= PARK_AFTER,
    )


@dataclass(frozen=True, slots=True)
class _Done:
    action: str
    windows: int = 0
    staff: int = 0
    written: int = 0
    deleted: int = 0
    staff_failed: int = 0


def _recompute_group(conn: Conn, key: GroupKey, requests: list[Request], *, chunk: int, hold_s: float) -> _Done:
    tenant_id, staff_id = key
    tenant = load_tenant_by_id(conn, tenant_id)
    if tenant is None:
        # The tenant was deleted: nothing to compute, and its slots are garbage now.
        deleted = delete_tenant_slots(conn, tenant_id)
        _delete(conn, tenant_id, requests)
        return _Done("dropped", deleted=deleted)

    now = int(time.time())
    horizon = tenant.horizon(now)
    after_s, before_s = _reach(conn, tenant_id)
    whole, busy, rules = request_spans(requests, horizon, after_s=after_s, before_s=before_s)
    staff_ids = [staff_id] if staff_id is not None else all_staff_ids(conn, tenant_id)

    if staff_id is None and len(staff_ids) > chunk:
        # Too many staff members for one transaction: hand each its own request (which
        # grows to its working windows when it is drained).
        windows = [(horizon.start, horizon.end)] if whole else merge_spans(busy + rules, horizon)
        conn.execute(
            Q["expand_requests"],
            {
                "tenant_id": tenant_id,
                "los": [None] if whole else [from_epoch(lo) for lo, _ in windows],
                "his": [None] if whole else [from_epoch(hi) for _, hi in windows],
                "reason": f"{requests[0].reason} (expanded)",
            },
        )
        deleted = delete_outside(conn, tenant, staff_ids, now=now) if whole else 0
        conn.execute(Q["notify_recompute"])
        _delete(conn, tenant_id, requests)
        return _Done("expanded", len(windows), len(staff_ids), 0, deleted)

    if whole:
        windows = [(horizon.start, horizon.end)]
    else:
        if rules and staff_ids:
            rules = extend_to_windows(rules, _working_windows(conn, tenant, staff_ids, now))
        windows = merge_spans(busy + rules, horizon)
    written = deleted = 0
    failed: dict[UUID, str] = {}
    deferred: set[UUID] = set()
    if staff_ids:
        for lo, hi in windows:
            r = recompute_in_transaction(conn, tenant, staff_ids, lo=lo, hi=hi, now=now)
            written += r.slots_written
            deleted += r.slots_deleted
            failed.update(r.failed)
            deferred.update(r.deferred)
    if staff_id is not None and staff_id in failed:
        raise RuleError(failed[staff_id])  # the whole group failed: keep its requests
    if failed:
        record_failures(conn, tenant_id, failed, reason=f"{requests[0].reason} (failed)")
    if deferred and windows:
        # Another transaction held their locks: each gets a request of its own, which
        # waits for its one lock.
        whole_span = whole or any(lo <= horizon.start and hi >= horizon.end for lo, hi in windows)
        conn.execute(
            Q["enqueue_staff"],
            {
                "tenant_id": tenant_id,
                "staff_ids": sorted(deferred),
                "lo": None if whole_span else from_epoch(min(lo for lo, _ in windows)),
                "hi": None if whole_span else from_epoch(max(hi for _, hi in windows)),
                "reason": f"{requests[0].reason} (lock busy)",
            },
        )
        conn.execute(Q["notify_recompute"])
    if whole and staff_id is None:
        # A whole-tenant request follows a tenant or location change, possibly a shorter
        # horizon or another zone: slots outside the new horizon must go too.
        deleted += delete_outside(conn, tenant, staff_ids, now=now)
    if hold_s > 0:
        log.warning("test hook: holding the recompute transaction open", extra={"ctx_hold_s": hold_s})
        time.sleep(hold_s)
    _delete(conn, tenant_id, requests)
    return _Done("recomputed", len(windows), len(staff_ids), written, deleted, len(failed))


def queue_depth(conn: Conn) -> tuple[int, float]:
    """(requests waiting, failed ones apart; age of the oldest in seconds)."""
    row = conn.execute(Q["queue_depth"]).fetchone()
    conn.rollback()
    if row is None:
        return 0, 0.0
    return int(str(row[0])), float(str(row[1]))
