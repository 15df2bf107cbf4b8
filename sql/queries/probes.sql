-- owner: slotmill.api.app
-- Health and readiness probes (api/app.py).

-- name: ping
-- GET /healthz/db: the baseline the benchmark compares slot reads with.
SELECT 1;

-- name: schema_version
-- GET /readyz: the newest migration applied.
SELECT max(version) FROM slotmill_migrations;
