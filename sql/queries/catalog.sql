-- owner: slotmill.api.catalog
-- The public catalog a booking widget needs before it can ask for slots: what can be booked
-- and with whom. Built as JSON inside PostgreSQL in one statement, so the API only passes
-- the text through. Never any customer data, notes or reasons, nor the tenant's keys.

-- name: read_catalog
-- Active services, active staff (with the active services they perform and where they work), locations and how a page books with one tenant; no row: unknown tenant.
SELECT json_build_object(
           'tenant', json_build_object(
               'slug', t.slug,
               'name', t.name,
               'timezone', t.timezone,
               'horizon_days', t.horizon_days),
           -- What a booking page must know to book: how long a hold lasts (its countdown
           -- runs from the hold's answer for exactly this long, whatever the customer's
           -- clock says), and how the page may confirm (docs: README "Booking widget").
           'booking', json_build_object(
               'hold_ttl_seconds', greatest(slotmill_setting_int(t.settings, 'hold_ttl_seconds', 600), 1),
               'public_confirm', coalesce(t.settings -> 'public_confirm' = 'true'::jsonb, false)
                                 AND jsonb_typeof(t.settings -> 'publishable_key') = 'string',
               'confirm_url', CASE WHEN t.settings ->> 'confirm_url' ~ '^https?://[^\s]+$'
                                   THEN t.settings ->> 'confirm_url' END),
           'features', %(features)s::json,
           'services', coalesce((
               SELECT json_agg(json_build_object(
                          'id', v.id,
                          'name', v.name,
                          'duration_minutes', v.duration_minutes,
                          'seats', v.seats,
                          -- the bookable window as reads and holds apply it
                          -- (slotmill_bookable_from / _until): a page tells a day past it
                          -- from a closed day
                          'min_notice_minutes', least(greatest(coalesce(
                              v.min_notice_minutes, slotmill_setting_int(t.settings, 'min_notice_minutes', 0)), 0), 5256000),
                          'max_advance_days', least(coalesce(
                              v.max_advance_days, slotmill_setting_int(t.settings, 'max_advance_days', t.horizon_days)), 3660)
                      ) ORDER BY v.name, v.id)
                 FROM services v
                WHERE v.tenant_id = t.id AND v.active), '[]'::json),
           'staff', coalesce((
               SELECT json_agg(json_build_object(
                          'id', s.id,
                          'display_name', s.display_name,
                          'location_id', s.location_id,
                          -- a staff member's zone (docs/rules.md#conventions): where their
                          -- location-less times are
                          'timezone', coalesce(s.timezone, sl.timezone, t.timezone),
                          -- every location they work at: their own, and those of their
                          -- current weekly hours and date overrides
                          'location_ids', coalesce((
                              SELECT json_agg(w.location_id ORDER BY w.location_id)
                                FROM (SELECT s.location_id
                                       WHERE s.location_id IS NOT NULL
                                      UNION
                                      SELECT a.location_id
                                        FROM availability_templates a
                                       WHERE a.tenant_id = s.tenant_id AND a.staff_id = s.id
                                         AND a.location_id IS NOT NULL
                                         AND (a.valid_until IS NULL OR a.valid_until >= current_date - 1)
                                      UNION
                                      SELECT o.location_id
                                        FROM availability_overrides o
                                       WHERE o.tenant_id = s.tenant_id AND o.staff_id = s.id
                                         AND o.location_id IS NOT NULL AND o.is_available
                                         AND (o.rrule IS NOT NULL OR o.on_date >= current_date - 1)) w),
                              '[]'::json),
                          'service_ids', coalesce((
                              SELECT json_agg(ss.service_id ORDER BY ss.service_id)
                                FROM staff_services ss
                                JOIN services v ON v.tenant_id = ss.tenant_id AND v.id = ss.service_id
                               WHERE ss.tenant_id = s.tenant_id AND ss.staff_id = s.id AND v.active),
                              '[]'::json)) ORDER BY s.priority, s.display_name, s.id)
                 FROM staff s
                 LEFT JOIN locations sl ON sl.tenant_id = s.tenant_id AND sl.id = s.location_id
                WHERE s.tenant_id = t.id AND s.active), '[]'::json),
           -- a location without its own zone is in the tenant's (docs/rules.md#conventions)
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
