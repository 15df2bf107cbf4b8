-- owner: slotmill.jobs.nightly
-- Scheduled jobs (jobs/nightly.py): singleton locks, ticks, the nightly candidates.

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
