-- owner: slotmill.jobs.webhooks
-- Delivering webhooks (jobs/webhooks.py): claim due deliveries endpoint by endpoint, and
-- record each attempt's outcome (the delivery, the log, the endpoint's circuit).

-- name: claim_deliveries
-- Due deliveries of active endpoints, at most %(per_endpoint)s in flight per endpoint
-- (%(busy)s: {endpoint id: requests this worker has in flight}), so a slow endpoint's
-- backlog never fills a claim: each endpoint is read through its own index range. The
-- claim leases the row (next_attempt_at moves %(lease_s)s ahead): another worker skips it
-- while it is locked and finds it not due afterwards; a worker that dies leaves the lease
-- to run out.
WITH claimed AS (
    SELECT x.tenant_id, x.id
      FROM webhook_endpoints e
     CROSS JOIN LATERAL (
           SELECT d.tenant_id, d.id
             FROM webhook_deliveries d
            WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status = 'pending'
              AND d.next_attempt_at <= clock_timestamp()
            ORDER BY d.next_attempt_at
            LIMIT greatest(%(per_endpoint)s - coalesce((%(busy)s::jsonb ->> e.id::text)::integer, 0), 0)
              FOR UPDATE OF d SKIP LOCKED) x
     WHERE e.active
     LIMIT %(limit)s
)
UPDATE webhook_deliveries d
   SET next_attempt_at = clock_timestamp() + make_interval(secs => %(lease_s)s), attempts = d.attempts + 1
  FROM claimed c, events ev, webhook_endpoints e
 WHERE d.tenant_id = c.tenant_id AND d.id = c.id
   AND ev.tenant_id = d.tenant_id AND ev.id = d.event_id
   AND e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
RETURNING d.tenant_id, d.id, d.endpoint_id, d.attempts, d.created_at,
          ev.id AS event_id, ev.seq, ev.type, ev.data::text AS data, ev.created_at AS event_at,
          e.url, e.secret, CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END AS previous_secret;

-- name: record_attempt
-- One attempt's outcome: the delivery (delivered, retried at %(retry_s)s, or given up), the
-- log row, the endpoint's last result and failure run. A failure that makes the run
-- %(circuit_failures)s long and %(circuit_s)s old opens the circuit: the endpoint is
-- disabled and a webhook.disabled event says so (once: only the attempt that tripped it).
WITH d AS (
    UPDATE webhook_deliveries d
       SET status = CASE WHEN %(ok)s THEN 'delivered' WHEN %(give_up)s THEN 'failed' ELSE 'pending' END,
           delivered_at = CASE WHEN %(ok)s THEN clock_timestamp() END,
           next_attempt_at = CASE WHEN %(ok)s OR %(give_up)s THEN d.next_attempt_at
                                  ELSE clock_timestamp() + make_interval(secs => %(retry_s)s) END,
           last_status = %(status_code)s,
           last_error = %(error)s
     WHERE d.tenant_id = %(tenant_id)s AND d.id = %(delivery_id)s
    RETURNING d.tenant_id, d.id, d.endpoint_id, d.attempts
), log AS (
    INSERT INTO webhook_attempts (tenant_id, delivery_id, endpoint_id, attempt, attempted_at, duration_ms, status_code, error)
    SELECT tenant_id, id, endpoint_id, attempts, %(attempted_at)s, %(duration_ms)s, %(status_code)s, %(error)s FROM d
), cur AS (
    -- the endpoint's row, locked (the latest version, whoever recorded just before us)
    SELECT e.tenant_id, e.id,
           e.active AND NOT %(ok)s AND e.consecutive_failures + 1 >= %(circuit_failures)s
           AND %(attempted_at)s - coalesce(e.failing_since, %(attempted_at)s) >= make_interval(secs => %(circuit_s)s) AS trip
      FROM webhook_endpoints e
     WHERE e.tenant_id = %(tenant_id)s AND e.id = %(endpoint_id)s
       FOR UPDATE
), e AS (
    UPDATE webhook_endpoints e
       SET consecutive_failures = CASE WHEN %(ok)s THEN 0 ELSE e.consecutive_failures + 1 END,
           failing_since = CASE WHEN %(ok)s THEN NULL ELSE coalesce(e.failing_since, %(attempted_at)s) END,
           last_attempt_at = %(attempted_at)s,
           last_status = %(status_code)s,
           last_error = %(error)s,
           last_success_at = CASE WHEN %(ok)s THEN clock_timestamp() ELSE e.last_success_at END,
           active = e.active AND NOT cur.trip,
           disabled_reason = CASE WHEN cur.trip THEN 'circuit' ELSE e.disabled_reason END,
           disabled_at = CASE WHEN cur.trip THEN clock_timestamp() ELSE e.disabled_at END
      FROM cur
     WHERE e.tenant_id = cur.tenant_id AND e.id = cur.id
    RETURNING e.tenant_id, e.id, e.url, e.consecutive_failures, e.failing_since, cur.trip AS tripped
)
INSERT INTO events (tenant_id, type, data)
SELECT e.tenant_id, 'webhook.disabled',
       jsonb_build_object('endpoint_id', e.id, 'url', e.url, 'reason', 'circuit',
                          'consecutive_failures', e.consecutive_failures,
                          'failing_since', slotmill_instant(e.failing_since))
  FROM e
 WHERE e.tripped
RETURNING id;
