-- owner: slotmill.api.cors
-- Which other sites may call a tenant's public endpoints from a browser.

-- name: allowed_origins
-- The tenant's settings.allowed_origins as stored (a JSON list of origins, or anything else: none); no row: unknown tenant.
SELECT t.settings -> 'allowed_origins' AS allowed_origins
  FROM tenants t
 WHERE t.slug = %(slug)s;
