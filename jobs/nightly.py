"""Scheduled maintenance (SPEC §8): the nightly full refresh and the hold expiry clean-up.

Each runs once however many workers are up. The nightly refresh of a tenant is keyed by
its tick, the tenant's local date: the run holds a session advisory lock for
(nightly, tenant) while it works and records a ``job_ticks`` row when it is done, so a
second worker either cannot take the lock or finds the row; a run that died half-way
left no row and the next check retries it. The clean-up is one short transaction per batch
behind a transaction-level advisory lock.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from typing import Any
from uuid import UUID

from psycopg.rows import dict_row

from slotmill.materializer import bookings
from slotmill.materializer.horizon import from_epoch, horizon_for, to_epoch, zone
from slotmill.materializer.loader import Conn, Tenant, load_tenant_by_id
from slotmill.materializer.refresh import record_drift, refresh
from slotmill.materializer.verify import Drift, verify
from slotmill.sql import owned_by

log = logging.getLogger("slotmill.worker")
Q = owned_by(__name__)

NIGHTLY_JOB = "nightly"
EXPIRE_JOB = "expire_holds"
# 02:00 tenant-local (SPEC §8): after midnight has rolled the horizon, before the day's
# first bookings.
NIGHTLY_AT = clock(2, 0)
# A check that comes later than this after 02:00 (all workers were down) still runs the
# refresh if the horizon is not covered; a covered tenant waits for the next night.
NIGHTLY_GRACE = timedelta(hours=6)
EXPIRE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class NightlyResult:
    tenant_id: UUID
    tick: str
    drift: int
    staff: int
    slots_written: int
    slots_deleted: int
    duration_s: float


def nightly_due(local_now: datetime, covered: bool) -> bool:
    """Whether a tenant whose local time is ``local_now`` is due its nightly refresh today."""
    at = datetime.combine(local_now.date(), NIGHTLY_AT, tzinfo=local_now.tzinfo)
    if local_now < at:
        return False
    return local_now - at < NIGHTLY_GRACE or not covered


def counted_drift(drift: Drift, covered_until: int | None) -> int:
    """Drift that is a fault: slots of the day the horizon has just rolled onto (past the
    end the last full refresh covered) are missing by design until this refresh."""
    if covered_until is None:
        return drift.total
    missing = sum(1 for _, key in drift.missing if int(key[3]) < covered_until)
    return missing + len(drift.unexpected) + len(drift.changed)


def _job_lock(conn: Conn, job: str, tenant_id: UUID | None) -> bool:
    row = conn.execute(Q["try_job_lock"], {"job": job, "tenant_id": tenant_id}).fetchone()
    conn.commit()  # a session lock outlives the transaction that took it
    return bool(row and row[0])


def _job_unlock(conn: Conn, job: str, tenant_id: UUID | None) -> None:
    if conn.closed or conn.broken:
        return  # the server released it with the session
    conn.rollback()
    conn.execute(Q["release_job_lock"], {"job": job, "tenant_id": tenant_id})
    conn.commit()


def run_nightly_for(
    conn: Conn,
    tenant: Tenant,
    tick: str,
    *,
    covered_until: int | None = None,
    now: int | None = None,
    worker: str = "",
) -> NightlyResult | None:
    """The nightly refresh of one tenant for one tick, unless another worker runs or ran it.

    Counts drift first (``verify``), then refreshes the whole tenant (which rolls the
    horizon and repairs the drift) and stores the count on the run's ``refresh_runs`` row.
    """
    conn.rollback()
    if not _job_lock(conn, NIGHTLY_JOB, tenant.id):
        return None
    try:
        args = {"tenant_id": tenant.id, "job": NIGHTLY_JOB, "tick": tick}
        row = conn.execute(Q["job_tick_done"], args).fetchone()
        conn.commit()
        if row and row[0]:
            return None
        started = time.perf_counter()
        started_at = datetime.now().astimezone()
        now = int(time.time()) if now is None else now
        drift = counted_drift(verify(conn, tenant, now=now), covered_until)
        result = refresh(conn, tenant, now=now)
        with conn.transaction():
            record_drift(conn, tenant.id, drift)
            conn.execute(Q["record_job_tick"], {**args, "started_at": started_at, "worker": worker})
            conn.execute(Q["prune_job_ticks"], args)
        out = NightlyResult(
            tenant_id=tenant.id,
            tick=tick,
            drift=drift,
            staff=result.staff,
            slots_written=result.slots_written,
            slots_deleted=result.slots_deleted,
            duration_s=time.perf_counter() - started,
        )
        log.info(
            "nightly refresh",
            extra={
                "ctx_tenant": tenant.slug,
                "ctx_tick": tick,
                "ctx_drift": drift,
                "ctx_staff": out.staff,
                "ctx_slots_written": out.slots_written,
                "ctx_slots_deleted": out.slots_deleted,
                "ctx_ms": round(out.duration_s * 1000, 1),
            },
        )
        if drift:
            log.warning(
                "nightly refresh repaired drift",
                extra={"ctx_tenant": tenant.slug, "ctx_drift": drift},
            )
        return out
    finally:
        _job_unlock(conn, NIGHTLY_JOB, tenant.id)


def nightly_tick(
    conn: Conn, *, now: int | None = None, worker: str = "", stop: threading.Event | None = None
) -> list[NightlyResult]:
    """Run the nightly refresh of every tenant that is due (see :func:`nightly_due`)."""
    now = int(time.time()) if now is None else now
    conn.rollback()
    with conn.cursor(row_factory=dict_row) as cur:
        candidates: list[dict[str, Any]] = cur.execute(Q["nightly_candidates"]).fetchall()
    conn.commit()
    done: list[NightlyResult] = []
    for c in candidates:
        if stop is not None and stop.is_set():
            break
        # Everything about one tenant, its zone included, inside its own try: one tenant's
        # bad value (a zone Python does not know) must never stop the others' nights.
        try:
            r = _nightly_tenant(conn, c, now=now, worker=worker)
        except Exception as e:
            # The next check retries it; admin status and the logs say why.
            log.error(
                "nightly refresh failed", exc_info=e, extra={"ctx_tenant": c["slug"], "ctx_error": str(e)[:500]}
            )
            if conn.closed or conn.broken:
                raise
            conn.rollback()
            continue
        if r is not None:
            done.append(r)
    return done


def _nightly_tenant(conn: Conn, c: dict[str, Any], *, now: int, worker: str) -> NightlyResult | None:
    local_now = from_epoch(now).astimezone(zone(c["timezone"]))
    covered_until = None if c["covered_until"] is None else to_epoch(c["covered_until"])
    horizon_end = horizon_for(c["timezone"], c["horizon_days"], now).end
    covered = covered_until is not None and covered_until >= horizon_end
    if not nightly_due(local_now, covered):
        return None
    tenant = load_tenant_by_id(conn, c["id"])
    conn.commit()
    if tenant is None:
        return None
    return run_nightly_for(
        conn, tenant, local_now.date().isoformat(), covered_until=covered_until, now=now, worker=worker
    )


def expire_holds(conn: Conn, *, batch: int = EXPIRE_BATCH) -> int | None:
    """Mark lapsed holds 'expired'; None if another worker is doing it right now."""
    total = 0
    conn.rollback()
    while True:
        with conn.transaction():
            row = conn.execute(Q["try_job_xact_lock"], {"job": EXPIRE_JOB, "tenant_id": None}).fetchone()
            if not (row and row[0]):
                return total or None
            n = bookings.expire(conn, limit=batch)
        total += n
        if n < batch:
            if total:
                log.info("expired holds", extra={"ctx_count": total})
            return total
