-- owner: slotmill.jobs.queue
-- The recompute queue (jobs/queue.py): claim, coalesce, retire.

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

-- name: queue_depth
-- Requests waiting, and the age of the oldest, for logs and tests.
SELECT count(*) AS depth,
       coalesce(extract(epoch FROM clock_timestamp() - min(requested_at)), 0)::float8 AS oldest_age_s
  FROM recompute_requests;
