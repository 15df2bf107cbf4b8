-- owner: slotmill.api.admin
-- Queries of the admin endpoints (api/admin.py): recalculation, status, explain.

-- name: admin_tenant
-- The tenant a request names, and whether the staff member it names (if any) is one of its.
SELECT t.id, t.slug, t.name, t.timezone, t.horizon_days, t.settings,
       %(staff_id)s::uuid IS NULL
       OR EXISTS (SELECT 1 FROM staff s WHERE s.tenant_id = t.id AND s.id = %(staff_id)s::uuid) AS staff_found
  FROM tenants t
 WHERE t.slug = %(slug)s;

-- name: admin_enqueue_recompute
-- Queue a recalculation like any source change does, and wake the workers (the
-- notification is delivered when this one-statement transaction commits). during NULL:
-- the whole horizon; a NULL bound: that edge of the horizon.
WITH r AS (
    INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
    VALUES (
        %(tenant_id)s,
        %(staff_id)s::uuid,
        CASE WHEN %(lo)s::timestamptz IS NULL AND %(hi)s::timestamptz IS NULL THEN NULL
             ELSE tstzrange(%(lo)s::timestamptz, %(hi)s::timestamptz, '[)') END,
        'admin')
    RETURNING id
)
SELECT r.id, pg_notify('slotmill_recompute', '') FROM r;

-- name: admin_tenant_status
-- Slot count, the last full refresh, and the tenant's queue of due work (depth, oldest
-- request's age; failed requests are listed by admin_failures).
SELECT s.slot_count,
       f.finished_at AS last_full_at, f.horizon_end AS last_full_horizon_end,
       f.drift AS last_full_drift, f.slots_written AS last_full_slots_written,
       f.staff_count AS last_full_staff,
       q.depth AS queue_depth,
       extract(epoch FROM clock_timestamp() - q.oldest)::float8 AS oldest_age_s
  FROM (SELECT count(*) AS slot_count FROM availability_slots WHERE tenant_id = %(tenant_id)s) s
 CROSS JOIN (SELECT count(*) AS depth, min(requested_at) AS oldest
               FROM recompute_requests WHERE tenant_id = %(tenant_id)s AND last_error IS NULL) q
  LEFT JOIN LATERAL (
        SELECT finished_at, horizon_end, drift, slots_written, staff_count
          FROM refresh_runs
         WHERE tenant_id = %(tenant_id)s AND kind = 'full'
         ORDER BY finished_at DESC
         LIMIT 1) f ON true;

-- name: admin_bookable
-- Explain's read-time limits for a service, from the same SQL functions the public reads
-- use (slotmill_bookable_from/until), so explain and a read can never disagree.
SELECT now() AS now,
       slotmill_bookable_from(t.settings, v.min_notice_minutes) AS bookable_from,
       slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days) AS bookable_until
  FROM tenants t
  JOIN services v ON v.tenant_id = t.id AND v.id = %(service_id)s
 WHERE t.id = %(tenant_id)s;

-- name: admin_failures
-- Recomputes that failed, per staff member (NULL: the whole tenant): the latest reason,
-- attempts so far, since when, and when the worker tries again (NULL: parked, until a new
-- change of that staff member or a full refresh).
SELECT staff_id,
       (array_agg(last_error ORDER BY id DESC))[1] AS reason,
       max(attempts) AS attempts,
       min(requested_at) AS since,
       count(*) AS requests,
       bool_or(NOT isfinite(not_before)) AS parked,
       min(not_before) FILTER (WHERE isfinite(not_before)) AS next_attempt_at
  FROM recompute_requests
 WHERE tenant_id = %(tenant_id)s AND last_error IS NOT NULL
 GROUP BY staff_id
 ORDER BY min(requested_at), staff_id NULLS FIRST;

-- name: admin_webhooks
-- events14: the tenant's webhook endpoints: last result, circuit, deliveries waiting.
SELECT e.id, e.url, e.active, CASE WHEN e.disabled_reason = 'circuit' THEN 'open' ELSE 'closed' END AS circuit,
       e.disabled_reason, e.consecutive_failures, e.failing_since, e.last_attempt_at, e.last_status, e.last_error,
       e.last_success_at,
       (SELECT count(*) FROM webhook_deliveries d
         WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status = 'pending') AS pending,
       (SELECT min(d.created_at) FROM webhook_deliveries d
         WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status = 'pending') AS oldest_pending_at
  FROM webhook_endpoints e
 WHERE e.tenant_id = %(tenant_id)s
 ORDER BY e.created_at, e.id;
-- name: admin_feeds
-- The tenant's calendar feeds with their last result (what failed and why, when next).
SELECT f.id, f.staff_id, f.url, f.active, f.refresh_minutes, f.last_status, f.last_http_status,
       f.last_error, f.last_sync_at, f.last_success_at, f.next_sync_at, f.busy_count, f.failures
  FROM calendar_feeds f
 WHERE f.tenant_id = %(tenant_id)s
 ORDER BY f.staff_id, f.url, f.id;
