-- owner: slotmill.api.catalog
-- The public catalog a booking widget needs before it can ask for slots: what can be booked
-- and with whom. Built as JSON inside PostgreSQL in one statement, so the API only passes
-- the text through. Never any customer data, notes or reasons.

-- name: read_catalog
-- Active services, active staff (with the active services they perform) and locations of one tenant; no row: unknown tenant.
SELECT json_build_object(
           'tenant', json_build_object(
               'slug', t.slug,
               'name', t.name,
               'timezone', t.timezone,
               'horizon_days', t.horizon_days),
           'services', coalesce((
               SELECT json_agg(json_build_object(
                          'id', v.id,
                          'name', v.name,
                          'duration_minutes', v.duration_minutes) ORDER BY v.name, v.id)
                 FROM services v
                WHERE v.tenant_id = t.id AND v.active), '[]'::json),
           'staff', coalesce((
               SELECT json_agg(json_build_object(
                          'id', s.id,
                          'display_name', s.display_name,
                          'location_id', s.location_id,
                          'service_ids', coalesce((
                              SELECT json_agg(ss.service_id ORDER BY ss.service_id)
                                FROM staff_services ss
                                JOIN services v ON v.tenant_id = ss.tenant_id AND v.id = ss.service_id
                               WHERE ss.tenant_id = s.tenant_id AND ss.staff_id = s.id AND v.active),
                              '[]'::json)) ORDER BY s.priority, s.display_name, s.id)
                 FROM staff s
                WHERE s.tenant_id = t.id AND s.active), '[]'::json),
           -- a location without its own zone is in the tenant's (SPEC §3)
           'locations', coalesce((
               SELECT json_agg(json_build_object(
                          'id', l.id,
                          'name', l.name,
                          'timezone', coalesce(l.timezone, t.timezone)) ORDER BY l.name, l.id)
                 FROM locations l
                WHERE l.tenant_id = t.id), '[]'::json)
       )::text AS catalog
  FROM tenants t
 WHERE t.slug = %(slug)s;
