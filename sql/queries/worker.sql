-- Queries of the worker (jobs/): drain the recompute queue, run the scheduled jobs.

-- name: claim_group
-- The oldest request nobody holds, and every other free request of its (tenant, staff_id)
-- group, locked until the transaction that writes their result commits (SPEC §8: a crash
-- loses nothing). Rows another worker holds are skipped; a NULL staff_id is its own group
-- (every staff member). Groups that just failed are left out for a while (skip_*).
WITH head AS (
    SELECT r.tenant_id, r.staff_id
      FROM recompute_requests r
     WHERE NOT EXISTS (
               SELECT 1
                 FROM unnest(%(skip_tenants)s::uuid[], %(skip_staff)s::uuid[]) AS k (tenant_id, staff_id)
                WHERE k.tenant_id = r.tenant_id AND k.staff_id IS NOT DISTINCT FROM r.staff_id)
     ORDER BY r.id
     LIMIT 1
       FOR UPDATE SKIP LOCKED
)
SELECT r.id, r.tenant_id, r.staff_id, r.during IS NULL AS whole,
       coalesce(isempty(r.during), false) AS empty,
       -- 'infinity' bounds read as unbounded: the driver has no datetime for them
       CASE WHEN isfinite(lower(r.during)) THEN lower(r.during) END AS lo,
       CASE WHEN isfinite(upper(r.during)) THEN upper(r.during) END AS hi,
       r.reason, r.requested_at
  FROM recompute_requests r
  JOIN head h ON h.tenant_id = r.tenant_id AND h.staff_id IS NOT DISTINCT FROM r.staff_id
 ORDER BY r.id
 LIMIT %(batch)s
   FOR UPDATE OF r SKIP LOCKED;

-- name: service_reach
-- How far a slot's blocked range reaches from its start, over the tenant's services: a
-- busy range [a, b) touches the slots starting in (a - after_s, b + before_s).
SELECT coalesce(max(duration_minutes + buffer_after_minutes), 0) * 60 AS after_s,
       coalesce(max(buffer_before_minutes), 0) * 60 AS before_s
  FROM services
 WHERE tenant_id = %(tenant_id)s;

-- name: delete_requests
-- Retire claimed requests, in the transaction that wrote their result.
DELETE FROM recompute_requests
 WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s::bigint[]);

-- name: expand_requests
-- Split whole-tenant requests of a large tenant into one request per staff member and
-- window (NULL bounds: the whole horizon), so each is drained in a small transaction.
INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
SELECT s.tenant_id, s.id,
       CASE WHEN w.lo IS NULL THEN NULL ELSE tstzrange(w.lo, w.hi, '[)') END,
       %(reason)s
  FROM staff s
 CROSS JOIN unnest(%(los)s::timestamptz[], %(his)s::timestamptz[]) AS w (lo, hi)
 WHERE s.tenant_id = %(tenant_id)s;

-- name: notify_recompute
-- Wake the workers (delivered when the transaction commits).
SELECT pg_notify('slotmill_recompute', '');

-- name: delete_tenant_slots
-- A deleted tenant's slots (availability_slots has no foreign key to tenants).
DELETE FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = %(tenant_id)s);

-- name: queue_depth
-- Requests waiting, and the age of the oldest, for logs and tests.
SELECT count(*) AS depth,
       coalesce(extract(epoch FROM clock_timestamp() - min(requested_at)), 0)::float8 AS oldest_age_s
  FROM recompute_requests;

-- name: try_job_lock
-- A scheduled job's singleton lock for this session (released by release_job_lock, or
-- when the connection ends: a worker that dies lets the next one run the job).
SELECT pg_try_advisory_lock(slotmill_job_lock_key(%(job)s, %(tenant_id)s::uuid)) AS locked;

-- name: release_job_lock
SELECT pg_advisory_unlock(slotmill_job_lock_key(%(job)s, %(tenant_id)s::uuid)) AS released;

-- name: try_job_xact_lock
-- A scheduled job's singleton lock for this transaction.
SELECT pg_try_advisory_xact_lock(slotmill_job_lock_key(%(job)s, %(tenant_id)s::uuid)) AS locked;

-- name: job_tick_done
SELECT EXISTS (
    SELECT 1 FROM job_ticks WHERE tenant_id = %(tenant_id)s AND job = %(job)s AND tick = %(tick)s
) AS done;

-- name: record_job_tick
INSERT INTO job_ticks (tenant_id, job, tick, started_at, worker)
VALUES (%(tenant_id)s, %(job)s, %(tick)s, %(started_at)s, %(worker)s)
ON CONFLICT DO NOTHING;

-- name: prune_job_ticks
-- Ticks older than any catch-up can ask about: the table stays a few rows per tenant.
DELETE FROM job_ticks
 WHERE tenant_id = %(tenant_id)s AND job = %(job)s AND finished_at < now() - interval '90 days';

-- name: nightly_candidates
-- Every tenant with the horizon end its last full refresh covered (NULL: never refreshed).
SELECT t.id, t.slug, t.timezone, t.horizon_days,
       (SELECT r.horizon_end
          FROM refresh_runs r
         WHERE r.tenant_id = t.id AND r.kind = 'full'
         ORDER BY r.finished_at DESC
         LIMIT 1) AS covered_until
  FROM tenants t
 ORDER BY t.slug;

-- name: set_refresh_drift
-- The drift a nightly run found before repairing it, on the run's refresh_runs row.
UPDATE refresh_runs
   SET drift = %(drift)s
 WHERE tenant_id = %(tenant_id)s
   AND id = (SELECT max(id) FROM refresh_runs WHERE tenant_id = %(tenant_id)s AND kind = 'full');

-- name: expire_holds
-- Retire lapsed holds (a batch at a time). The caller sets slotmill.holds_applied, so the
-- bookings trigger enqueues nothing: an expired hold hides nothing already (held_until is
-- in the past), and the slot table needs no change.
WITH due AS (
    SELECT tenant_id, id
      FROM bookings
     WHERE status = 'held' AND expires_at <= clock_timestamp()
     ORDER BY expires_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE bookings b
   SET status = 'expired'
  FROM due
 WHERE b.tenant_id = due.tenant_id AND b.id = due.id;
