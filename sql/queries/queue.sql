-- owner: slotmill.jobs.queue
-- The recompute queue (jobs/queue.py): claim, coalesce, retire.

-- name: claim_group
-- The oldest due request nobody holds, and every other free request of its (tenant,
-- staff_id) group, failed and parked ones included, locked until the transaction that
-- writes their result commits (a crash loses nothing). Rows another worker holds are
-- skipped; a NULL staff_id is its own group (every staff member). A failed request is due
-- again at not_before ('infinity' once parked: then only a new request of its group brings
-- it back). Bounds are clamped to the years the service schedules, so a range written
-- before the schema refused it cannot make the claim itself fail.
WITH head AS (
    SELECT r.tenant_id, r.staff_id
      FROM recompute_requests r
     WHERE r.last_error IS NULL OR r.not_before <= clock_timestamp()
     ORDER BY r.id
     LIMIT 1
       FOR UPDATE SKIP LOCKED
)
SELECT r.id, r.tenant_id, r.staff_id, r.during IS NULL AS whole,
       coalesce(isempty(r.during), false) AS empty,
       -- unbounded (or 'infinity') sides read as NULL: the horizon's edge
       CASE WHEN isfinite(lower(r.during))
            THEN least(greatest(lower(r.during), TIMESTAMPTZ '1900-01-01 00:00:00+00'), TIMESTAMPTZ '2201-01-01 00:00:00+00')
       END AS lo,
       CASE WHEN isfinite(upper(r.during))
            THEN least(greatest(upper(r.during), TIMESTAMPTZ '1900-01-01 00:00:00+00'), TIMESTAMPTZ '2201-01-01 00:00:00+00')
       END AS hi,
       r.reason, r.requested_at, r.attempts
  FROM recompute_requests r
  JOIN head h ON h.tenant_id = r.tenant_id AND h.staff_id IS NOT DISTINCT FROM r.staff_id
 ORDER BY r.id
 LIMIT %(batch)s
   FOR UPDATE OF r SKIP LOCKED;

-- name: fail_requests
-- A group's recompute failed: its requests stay queued, due again after a back-off, and
-- parked (not_before 'infinity') once they have failed %(park_after)s times.
UPDATE recompute_requests
   SET attempts = %(attempts)s,
       last_error = %(error)s,
       not_before = CASE WHEN %(attempts)s >= %(park_after)s THEN TIMESTAMPTZ 'infinity'
                         ELSE clock_timestamp() + make_interval(secs => %(backoff_s)s) END
 WHERE tenant_id = %(tenant_id)s AND id = ANY(%(ids)s::bigint[]);

-- name: enqueue_staff
-- Recompute requests for single staff members (a whole-tenant request whose recompute
-- could not lock them, or that failed for them), immediately due.
INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
SELECT %(tenant_id)s, s, CASE WHEN %(lo)s::timestamptz IS NULL THEN NULL ELSE tstzrange(%(lo)s, %(hi)s, '[)') END, %(reason)s
  FROM unnest(%(staff_ids)s::uuid[]) AS s;

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
-- Requests waiting (failed ones apart), and the age of the oldest, for logs and tests.
SELECT count(*) FILTER (WHERE last_error IS NULL) AS depth,
       coalesce(extract(epoch FROM clock_timestamp() - min(requested_at) FILTER (WHERE last_error IS NULL)), 0)::float8
           AS oldest_age_s,
       count(*) FILTER (WHERE last_error IS NOT NULL) AS failed
  FROM recompute_requests;
