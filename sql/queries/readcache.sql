-- owner: slotmill.api.readcache
-- The one statement a kept read answer costs (api/readcache.py): the tenant's version now.

-- name: tenant_version
SELECT slotmill_tenant_version(%(tenant_id)s) AS version;
