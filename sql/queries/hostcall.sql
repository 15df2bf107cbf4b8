-- owner: slotmill.api.hostcall
-- The transaction around every host call (api/hostcall.py): the tenant key check and
-- idempotent replays.

-- name: host_tenant
-- The tenant of a host call, and whether the bearer key (sha256, slotmill.keys.hash_key) is
-- one of ITS live keys: a key of another tenant authorizes nothing here.
SELECT t.id, t.slug, t.name, t.timezone, t.horizon_days, t.settings,
       EXISTS (SELECT FROM api_keys k
                WHERE k.tenant_id = t.id AND k.key_hash = %(key_hash)s AND k.revoked_at IS NULL) AS authorized
  FROM tenants t
 WHERE t.slug = %(slug)s;

-- name: idempotency_lock
-- Serializes requests with one Idempotency-Key: the second waits for the first's commit,
-- then replays it. Two-int keys: a space of their own, apart from the staff locks.
SELECT pg_advisory_xact_lock(hashtext(%(tenant_id)s::text || ' ' || %(endpoint)s), hashtext(%(key)s));

-- name: idempotency_get
SELECT request_hash, status_code, response_body::text AS body
  FROM idempotency_keys
 WHERE tenant_id = %(tenant_id)s AND endpoint = %(endpoint)s AND key = %(key)s;

-- name: idempotency_put
-- Stored in the transaction of the effect. The response is sent as the database renders
-- the stored jsonb, so the first answer and every replay are the same bytes.
INSERT INTO idempotency_keys (tenant_id, endpoint, key, request_hash, status_code, response_body)
VALUES (%(tenant_id)s, %(endpoint)s, %(key)s, %(request_hash)s, %(status_code)s, %(body)s::jsonb)
RETURNING response_body::text AS body;
