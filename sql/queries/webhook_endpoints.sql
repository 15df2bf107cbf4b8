-- owner: slotmill.materializer.webhooks
-- Webhook endpoints as the host manages them (materializer/webhooks.py, used by the host
-- API and the CLI): create, list, rotate the secret, disable/enable, delete, replay, and
-- the delivery log. Delivering is the worker's (sql/queries/deliveries.sql).

-- name: create_endpoint
INSERT INTO webhook_endpoints (tenant_id, url, description, event_types, secret)
VALUES (%(tenant_id)s, %(url)s, %(description)s, %(event_types)s, %(secret)s)
RETURNING id;

-- name: list_endpoints
-- A tenant's endpoints with their state (never the secret), and what waits for each.
SELECT e.id, e.url, e.description, e.event_types, e.active, e.disabled_reason, e.disabled_at,
       e.consecutive_failures, e.failing_since, e.last_attempt_at, e.last_status, e.last_error,
       e.last_success_at, e.created_at,
       (SELECT count(*) FROM webhook_deliveries d
         WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status = 'pending') AS pending,
       (SELECT count(*) FROM webhook_deliveries d
         WHERE d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status = 'failed') AS failed
  FROM webhook_endpoints e
 WHERE e.tenant_id = %(tenant_id)s AND (%(endpoint_id)s::uuid IS NULL OR e.id = %(endpoint_id)s::uuid)
 ORDER BY e.created_at, e.id;

-- name: rotate_secret
-- A new secret; the old one keeps signing beside it until %(grace_until)s.
UPDATE webhook_endpoints
   SET previous_secret = secret, previous_secret_until = %(grace_until)s, secret = %(secret)s
 WHERE tenant_id = %(tenant_id)s AND id = %(endpoint_id)s
RETURNING id;

-- name: set_active
-- Disable (by the host) or enable: enabling closes the circuit, and the deliveries that
-- waited are due at once.
WITH e AS (
    UPDATE webhook_endpoints
       SET active = %(active)s,
           disabled_reason = CASE WHEN %(active)s THEN NULL ELSE 'host' END,
           disabled_at = CASE WHEN %(active)s THEN NULL ELSE now() END,
           consecutive_failures = CASE WHEN %(active)s THEN 0 ELSE consecutive_failures END,
           failing_since = CASE WHEN %(active)s THEN NULL ELSE failing_since END
     WHERE tenant_id = %(tenant_id)s AND id = %(endpoint_id)s
    RETURNING tenant_id, id
), due AS (
    UPDATE webhook_deliveries d
       SET next_attempt_at = clock_timestamp()
      FROM e
     WHERE %(active)s AND d.tenant_id = e.tenant_id AND d.endpoint_id = e.id AND d.status = 'pending'
)
SELECT id FROM e;

-- name: delete_endpoint
DELETE FROM webhook_endpoints WHERE tenant_id = %(tenant_id)s AND id = %(endpoint_id)s RETURNING id;

-- name: replay_range
-- Deliver again the tenant's events numbered %(from_seq)s..%(to_seq)s (NULL: the newest)
-- that this endpoint takes, as new deliveries (same webhook-id: the event's).
INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, replay)
SELECT ev.tenant_id, w.id, ev.id, true
  FROM webhook_endpoints w
  JOIN events ev ON ev.tenant_id = w.tenant_id
 WHERE w.tenant_id = %(tenant_id)s AND w.id = %(endpoint_id)s
   AND ev.seq >= %(from_seq)s AND (%(to_seq)s::bigint IS NULL OR ev.seq <= %(to_seq)s::bigint)
   AND (w.event_types IS NULL OR ev.type = ANY (w.event_types))
 ORDER BY ev.seq
 LIMIT %(limit)s;

-- name: replay_delivery
-- One delivery again: due now, with a fresh retry window.
UPDATE webhook_deliveries
   SET status = 'pending', next_attempt_at = clock_timestamp(), created_at = clock_timestamp(), replay = true
 WHERE tenant_id = %(tenant_id)s AND endpoint_id = %(endpoint_id)s AND id = %(delivery_id)s
   AND status <> 'pending'
RETURNING id;

-- name: delivery_log
-- An endpoint's latest deliveries, newest first, with the event they carry.
SELECT d.id, ev.id AS event_id, ev.seq, ev.type, d.status, d.attempts, d.created_at, d.next_attempt_at,
       d.delivered_at, d.last_status, d.last_error, d.replay
  FROM webhook_deliveries d
  JOIN events ev ON ev.tenant_id = d.tenant_id AND ev.id = d.event_id
 WHERE d.tenant_id = %(tenant_id)s AND d.endpoint_id = %(endpoint_id)s
   AND (%(before)s::bigint IS NULL OR d.id < %(before)s::bigint)
 ORDER BY d.id DESC
 LIMIT %(limit)s;
