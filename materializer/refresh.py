"""Materialization: load rules, run the engine, replace a window of slots atomically.

Every writer of a staff member's slots or bookings takes that staff member's advisory lock
first (sql/schema.sql, section "Locks"), so a recompute never interleaves with a booking
write or with another recompute of the same staff member. This module and the booking
lifecycle (materializer/bookings.py) are the only writers of ``availability_slots``.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg.copy import QueuedLibpqWriter

from slotmill.materializer import engine
from slotmill.materializer.engine import SlotRun
from slotmill.materializer.engine.grid import free_at, seats_at
from slotmill.materializer.horizon import from_epoch
from slotmill.materializer.loader import Conn, LoadedRules, Tenant, all_staff_ids, load_rules
from slotmill.materializer.locks import lock_staff, try_lock_staff
from slotmill.materializer.model import RuleError, Slot
from slotmill.materializer.outbox import watch_slots
from slotmill.materializer.slot_ids import slot_id, slot_id_prefix
from slotmill.sql import owned_by

Q = owned_by(__name__)

# Staff members per transaction in a full refresh: bounds lock-table use (one advisory
# lock each) and how long one transaction holds them.
FULL_REFRESH_CHUNK = 200

Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class WindowResult:
    staff: int
    slots_written: int  # rows inserted
    slots_deleted: int  # rows removed
    lo: int
    hi: int
    slots_total: int = 0  # slots the window holds now
    # Staff members left out, with why: a stored rule the engine cannot compute. Their
    # slots were not touched.
    failed: dict[UUID, str] = field(default_factory=dict)
    # Staff members whose lock another transaction held: not recomputed here (see
    # recompute_in_transaction); the caller recomputes them on their own.
    deferred: list[UUID] = field(default_factory=list)


# Windows at least this long are applied as a diff through the staging table; shorter
# ones (the worker's targeted recomputes) are replaced outright, which is cheaper for a
# few hundred rows.
DIFF_APPLY_MIN_S = 7 * 86_400


def compute_runs(
    rules: LoadedRules, lo: int, hi: int, *, progress: Progress | None = None
) -> tuple[list[tuple[UUID, SlotRun]], dict[UUID, str]]:
    """(staff_id, run) for every loaded staff member's slots with a start in ``[lo, hi)``,
    and the staff members whose rules cannot be computed, with why (left out whole)."""
    runs: list[tuple[UUID, SlotRun]] = []
    failed: dict[UUID, str] = {}
    for sid, staff in rules.staff.items():
        if staff.error:
            failed[sid] = staff.error
        else:
            offered = staff.offered()
            try:
                staff_runs = (
                    engine.slot_runs(staff.schedule, offered, rules.first_date, rules.last_date, lo, hi)
                    if offered
                    else []
                )
            except RuleError as e:
                failed[sid] = str(e)
            else:
                runs.extend((sid, run) for run in staff_runs)
        if progress:
            progress(1)
    return runs, failed


def compute(rules: LoadedRules, lo: int, hi: int) -> tuple[dict[UUID, list[Slot]], dict[UUID, str]]:
    """The slots every loaded staff member should have with a start in ``[lo, hi)``, and
    the staff members that cannot be computed, with why."""
    out: dict[UUID, list[Slot]] = {}
    failed: dict[UUID, str] = {}
    for sid, staff in rules.staff.items():
        if staff.error:
            failed[sid] = staff.error
            continue
        try:
            out[sid] = engine.compute_slots(staff.schedule, staff.offered(), rules.first_date, rules.last_date, lo, hi)
        except RuleError as e:
            failed[sid] = str(e)
    return out, failed


class _Instants:
    """Epoch seconds to aware datetimes, memoised: a refresh repeats the same few thousand
    starts across every staff member and service."""

    def __init__(self) -> None:
        self._cache: dict[int, datetime] = {}

    def __call__(self, s: int) -> datetime:
        dt = self._cache.get(s)
        if dt is None:
            dt = self._cache[s] = from_epoch(s)
        return dt


def slot_rows(tenant_id: UUID, slots: Iterable[Slot]) -> Iterator[tuple[Any, ...]]:
    """Slots as table rows (verify compares these with what the table holds)."""
    instant = _Instants()
    for s in slots:
        yield (
            tenant_id,
            slot_id(tenant_id, s.staff_id, s.service_id, s.starts_at),
            s.staff_id,
            s.service_id,
            s.location_id,
            instant(s.starts_at),
            instant(s.ends_at),
            None if s.held_until is None else instant(s.held_until),
            s.seats_left,
            s.resource_free,
        )


# Binary COPY, encoded here rather than through Copy.write_row: per-row adaptation cost
# ~10 us a row, which made Python, not PostgreSQL, the cost of a full refresh. Everything
# that is constant per (staff, service, location) is encoded once; a slot costs one pack.
_PG_EPOCH_S = 946_684_800  # 2000-01-01T00:00:00Z, PostgreSQL's timestamp origin
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_NULL = struct.pack(">i", -1)
_TIMES = struct.Struct(">iqiq")
_HELD = struct.Struct(">iq")
_INT = struct.Struct(">ii")


def _uuid_field(u: UUID | None) -> bytes:
    return _NULL if u is None else struct.pack(">i", 16) + u.bytes


def _int_field(value: int | None) -> bytes:
    return _NULL if value is None else _INT.pack(4, value)


def encode_runs(tenant_id: UUID, runs: Iterable[tuple[UUID, SlotRun]]) -> Iterator[bytes]:
    """(staff_id, run) pairs as rows of ``copy_slots`` in PostgreSQL's binary COPY format,
    a chunk per run batch."""
    heads: dict[tuple[UUID, UUID], bytes] = {}
    tenant_field = _uuid_field(tenant_id)
    pack_times = _TIMES.pack
    pack_held = _HELD.pack
    null = _NULL
    buf: list[bytes] = [_COPY_HEADER]
    size = 0
    for staff_id, run in runs:
        key = (staff_id, run.service_id)
        head = heads.get(key)
        if head is None:
            # 10 fields; tenant_id; id = slot_ids.slot_id's text: the 24 hex prefix, then
            # the 8 hex start minute appended per slot below (32 bytes)
            prefix = slot_id_prefix(tenant_id, staff_id, run.service_id).encode()
            head = heads[key] = struct.pack(">h", 10) + tenant_field + struct.pack(">i", 32) + prefix
        middle = _uuid_field(staff_id) + _uuid_field(run.service_id) + _uuid_field(run.location_id)
        d_us = run.duration_s * 1_000_000
        seats, free = run.seats_left, run.resource_free
        if isinstance(seats, int) and (free is None or isinstance(free, int)):
            # seats_left and resource_free are the same for the whole run (the common case)
            tail = _int_field(seats) + _int_field(free)
            if run.held:
                held = run.held
                buf.extend(
                    head
                    + b"%08x" % (t // 60)
                    + middle
                    + pack_times(8, (t - _PG_EPOCH_S) * 1_000_000, 8, (t - _PG_EPOCH_S) * 1_000_000 + d_us)
                    + (null if (h := held.get(i)) is None else pack_held(8, (h - _PG_EPOCH_S) * 1_000_000))
                    + tail
                    for i, t in enumerate(run.starts)
                )
            else:
                buf.extend(
                    head
                    + b"%08x" % (t // 60)
                    + middle
                    + pack_times(8, (t - _PG_EPOCH_S) * 1_000_000, 8, (t - _PG_EPOCH_S) * 1_000_000 + d_us)
                    + null
                    + tail
                    for t in run.starts
                )
        else:
            held = run.held
            buf.extend(
                head
                + b"%08x" % (t // 60)
                + middle
                + pack_times(8, (t - _PG_EPOCH_S) * 1_000_000, 8, (t - _PG_EPOCH_S) * 1_000_000 + d_us)
                + (null if (h := held.get(i)) is None else pack_held(8, (h - _PG_EPOCH_S) * 1_000_000))
                + _int_field(seats_at(run, i))
                + _int_field(free_at(run, i))
                for i, t in enumerate(run.starts)
            )
        size += len(run.starts)
        if size >= 8192:
            yield b"".join(buf)
            buf.clear()
            size = 0
    buf.append(_COPY_TRAILER)
    yield b"".join(buf)


def copy_slots(
    conn: Conn, tenant_id: UUID, runs: Iterable[tuple[UUID, SlotRun]], *, statement: str = "copy_slots"
) -> int:
    """COPY (staff_id, run) pairs into availability_slots (or the staging table); returns
    how many rows were sent."""
    with conn.cursor() as cur:
        # The queued writer sends on a thread of its own, so encoding the next chunk in
        # Python overlaps with the network and the server's work on the last one.
        with cur.copy(Q[statement], writer=QueuedLibpqWriter(cur)) as cp:
            for chunk in encode_runs(tenant_id, runs):
                cp.write(chunk)
        return max(cur.rowcount, 0)


def recompute_in_transaction(
    conn: Conn,
    tenant: Tenant,
    staff_ids: list[UUID],
    *,
    lo: int | None,
    hi: int | None,
    now: int,
    progress: Progress | None = None,
) -> WindowResult:
    """Replace the slots of ``staff_ids`` starting in ``[lo, hi)`` (clipped to the horizon;
    None: the horizon's edge). Runs in the caller's transaction, so a queue consumer can
    delete its requests in the same commit that writes their result.

    One staff member waits for their lock. Of several, only those whose lock is free are
    recomputed (``deferred`` names the others): waiting for one lock while holding others
    could deadlock with a host writing several staff members' bookings in another order
    (sql/schema.sql, section "Locks"). Staff members whose rules cannot be computed are
    left untouched and named in ``failed``.
    """
    staff_ids = sorted(set(staff_ids))
    if len(staff_ids) == 1:
        lock_staff(conn, tenant.id, staff_ids)
        deferred: list[UUID] = []
    else:
        locked = try_lock_staff(conn, tenant.id, staff_ids)
        deferred = [s for s in staff_ids if s not in locked]
        staff_ids = [s for s in staff_ids if s in locked]
    horizon = tenant.horizon(now)
    lo, hi = horizon.clip(lo, hi)
    if lo >= hi or not staff_ids:
        return WindowResult(len(staff_ids), 0, 0, lo, hi, deferred=deferred)
    rules = load_rules(conn, tenant, staff_ids=staff_ids, lo=lo, hi=hi, now=now)
    runs, failed = compute_runs(rules, lo, hi, progress=progress)
    done = [s for s in staff_ids if s not in failed]
    window = {"tenant_id": tenant.id, "staff_ids": done, "lo": from_epoch(lo), "hi": from_epoch(hi)}
    watch_slots(conn, tenant.id, done, lo, hi)  # events14: slots.changed at commit, if the window changed

    if hi - lo < DIFF_APPLY_MIN_S:
        deleted = conn.execute(Q["delete_window"], window).rowcount
        total = written = copy_slots(conn, tenant.id, runs)
    else:
        conn.execute(Q["create_stage"])
        total = copy_slots(conn, tenant.id, runs, statement="copy_stage")
        conn.execute(Q["analyze_stage"])
        conn.execute(Q["no_nested_loops"])
        deleted = conn.execute(Q["diff_delete"], window).rowcount
        written = conn.execute(Q["diff_insert"]).rowcount
    return WindowResult(len(done), written, deleted, lo, hi, total, failed=failed, deferred=deferred)


def record_failures(conn: Conn, tenant_id: UUID, failed: dict[UUID, str], *, reason: str) -> None:
    """Leave a failed request per staff member in ``failed``, so the worker retries it
    with back-off and admin status shows why (jobs/queue.py)."""
    if failed:
        ids = sorted(failed)
        conn.execute(
            Q["record_failures"],
            {"tenant_id": tenant_id, "staff_ids": ids, "errors": [failed[s] for s in ids], "reason": reason},
        )


def refresh(
    conn: Conn,
    tenant: Tenant,
    *,
    staff_ids: list[UUID] | None = None,
    lo: int | None = None,
    hi: int | None = None,
    now: int | None = None,
    progress: Progress | None = None,
    on_staff_count: Callable[[int], None] | None = None,
) -> WindowResult:
    """Recompute a tenant (or some of its staff members, or a window) and commit.

    A full refresh (no staff, no window) also removes slots that no longer belong: the
    past, beyond the horizon, and staff members that no longer exist. It runs in chunks of
    ``FULL_REFRESH_CHUNK`` staff members, each chunk one transaction; within a staff member
    the window is always replaced atomically. A staff member whose lock is busy is done
    after the chunk, on their own; one whose rules cannot be computed is left as it was,
    named in ``failed`` and queued as a failed request (admin status shows why).
    """
    now = int(time.time()) if now is None else now
    started = datetime.now().astimezone()
    full = staff_ids is None and lo is None and hi is None
    ids = all_staff_ids(conn, tenant.id) if staff_ids is None else sorted(set(staff_ids))
    conn.commit()
    if on_staff_count:
        on_staff_count(len(ids))
    horizon = tenant.horizon(now)
    written = deleted = total = 0
    failed: dict[UUID, str] = {}
    win_lo, win_hi = horizon.clip(lo, hi)
    chunks = [ids[i : i + FULL_REFRESH_CHUNK] for i in range(0, len(ids), FULL_REFRESH_CHUNK)]

    def one(chunk: list[UUID], first: bool) -> list[UUID]:
        nonlocal written, deleted, total
        with conn.transaction():
            if full and first:
                deleted += delete_outside(conn, tenant, ids, now=now)
            r = recompute_in_transaction(conn, tenant, chunk, lo=lo, hi=hi, now=now, progress=progress)
            written += r.slots_written
            deleted += r.slots_deleted
            total += r.slots_total
            failed.update(r.failed)
            record_failures(conn, tenant.id, r.failed, reason="refresh")
            if full:
                ok = [s for s in chunk if s not in r.failed and s not in r.deferred]
                conn.execute(Q["clear_failures"], {"tenant_id": tenant.id, "staff_ids": ok, "started_at": started})
        return r.deferred

    for i, chunk in enumerate(chunks):
        for staff_id in one(chunk, i == 0):
            one([staff_id], False)  # waits for that one lock, holding no other
    with conn.transaction():
        if full and not chunks:
            deleted += delete_outside(conn, tenant, ids, now=now)
        conn.execute(
            Q["record_refresh"],
            {
                "tenant_id": tenant.id,
                "kind": "full" if full else "partial",
                "started_at": started,
                "horizon_start": from_epoch(horizon.start),
                "horizon_end": from_epoch(horizon.end),
                "staff_count": len(ids),
                "slots_written": total,
                "drift": None,
            },
        )
    return WindowResult(len(ids), written, deleted, win_lo, win_hi, total, failed=failed)


def delete_outside(conn: Conn, tenant: Tenant, staff_ids: list[UUID], *, now: int) -> int:
    """Remove slots that no longer belong: of staff members not in ``staff_ids``, in the
    past, or beyond a (shortened) horizon. Part of every whole-tenant recompute."""
    horizon = tenant.horizon(now)
    params = {
        "tenant_id": tenant.id,
        "staff_ids": staff_ids,
        "lo": from_epoch(horizon.start),
        "hi": from_epoch(horizon.end),
    }
    return int(conn.execute(Q["delete_outside"], params).rowcount)


def delete_tenant_slots(conn: Conn, tenant_id: UUID) -> int:
    """A deleted tenant's slots (availability_slots has no foreign key to tenants)."""
    return int(conn.execute(Q["delete_tenant_slots"], {"tenant_id": tenant_id}).rowcount)


def record_drift(conn: Conn, tenant_id: UUID, drift: int) -> None:
    """The drift a nightly run found before it repaired it, on the run's refresh_runs row."""
    conn.execute(Q["set_refresh_drift"], {"tenant_id": tenant_id, "drift": drift})
