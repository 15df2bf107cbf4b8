-- owner: slotmill.api.admin_tenants
-- The console's lists (api/admin_tenants.py): tenants, and one tenant's locations, staff
-- and services, inactive ones included.

-- name: tenants_page
-- Tenants by slug, after a slug (the cursor), one more than asked so the caller knows
-- whether there is a next page.
SELECT t.slug, t.name, t.timezone, t.horizon_days,
       (SELECT count(*) FROM staff s WHERE s.tenant_id = t.id) AS staff,
       (SELECT count(*) FROM staff s WHERE s.tenant_id = t.id AND s.active) AS active_staff
  FROM tenants t
 WHERE %(after)s::text IS NULL OR t.slug > %(after)s::text
 ORDER BY t.slug
 LIMIT %(limit)s + 1;

-- name: directory_tenant
SELECT id, slug, name, timezone, horizon_days
  FROM tenants
 WHERE slug = %(slug)s;

-- name: directory_locations
SELECT id, name, timezone
  FROM locations
 WHERE tenant_id = %(tenant_id)s
 ORDER BY name, id;

-- name: directory_staff
-- Staff with their zone (staff, else location, else tenant) and the services they are
-- linked to.
SELECT s.id, s.display_name, s.active, s.priority, s.location_id,
       coalesce(s.timezone, l.timezone, t.timezone) AS zone,
       coalesce((SELECT array_agg(ss.service_id ORDER BY ss.service_id)
                   FROM staff_services ss
                  WHERE ss.tenant_id = s.tenant_id AND ss.staff_id = s.id), '{}') AS service_ids
  FROM staff s
  JOIN tenants t ON t.id = s.tenant_id
  LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
 WHERE s.tenant_id = %(tenant_id)s
 ORDER BY s.display_name, s.id;

-- name: directory_services
SELECT id, name, active, duration_minutes, buffer_before_minutes, buffer_after_minutes,
       coalesce(slot_interval_minutes, duration_minutes) AS interval_minutes, seats
  FROM services
 WHERE tenant_id = %(tenant_id)s
 ORDER BY name, id;
