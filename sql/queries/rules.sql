-- owner: slotmill.materializer.loader
-- Loading rules for the engine: a few set-based reads for any number of staff members,
-- sent in one pipelined round trip (materializer/loader.py). %(staff_ids)s NULL means every
-- staff member of the tenant.

-- name: load_tenant_by_slug
-- The tenant a command or request names.
SELECT id, slug, name, timezone, horizon_days, settings
  FROM tenants
 WHERE slug = %(slug)s;

-- name: load_tenant_by_id
-- The tenant of a queued recompute request.
SELECT id, slug, name, timezone, horizon_days, settings
  FROM tenants
 WHERE id = %(tenant_id)s;

-- name: load_staff
-- Staff members with their effective zone (staff, else location, else tenant: SPEC §3).
SELECT s.id, s.active, s.priority, s.location_id,
       coalesce(s.timezone, l.timezone, t.timezone) AS zone
  FROM staff s
  JOIN tenants t ON t.id = s.tenant_id
  LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
 WHERE s.tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR s.id = ANY(%(staff_ids)s::uuid[]))
 ORDER BY s.id;

-- name: load_services
-- Every service of the tenant with the staff members qualified for it.
SELECT v.id, v.active, v.duration_minutes, v.buffer_before_minutes, v.buffer_after_minutes,
       v.slot_interval_minutes, v.min_notice_minutes, v.max_advance_days,
       coalesce(array_agg(ss.staff_id) FILTER (WHERE ss.staff_id IS NOT NULL), '{}') AS staff_ids
  FROM services v
  LEFT JOIN staff_services ss ON ss.tenant_id = v.tenant_id AND ss.service_id = v.id
 WHERE v.tenant_id = %(tenant_id)s
 GROUP BY v.tenant_id, v.id
 ORDER BY v.id;

-- Every date and instant below is read clamped into the years the service schedules
-- (slotmill_clamp_date, the greatest/least around busy ranges): a row written before the
-- schema refused them ('infinity', year 20000, BC) would otherwise not load at all, and
-- the clamp does not change what is computed for any horizon. A date that starts a
-- recurrence cannot be clamped: on_date_ok says so and that staff member's recompute fails.

-- name: load_templates
-- Times as minutes after midnight: '24:00' is 1440 (no Python time can hold it).
SELECT staff_id, weekday,
       (extract(epoch FROM start_time) / 60)::int AS start_min,
       (extract(epoch FROM end_time) / 60)::int AS end_min,
       location_id, slotmill_clamp_date(valid_from) AS valid_from, slotmill_clamp_date(valid_until) AS valid_until
  FROM availability_templates
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND (valid_from IS NULL OR valid_from <= %(last_date)s)
   AND (valid_until IS NULL OR valid_until >= %(first_date)s);

-- name: load_overrides
SELECT id, staff_id, slotmill_clamp_date(on_date) AS on_date, slotmill_valid_date(on_date) AS on_date_ok,
       is_available,
       (extract(epoch FROM start_time) / 60)::int AS start_min,
       (extract(epoch FROM end_time) / 60)::int AS end_min,
       rrule, location_id
  FROM availability_overrides
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND on_date <= %(last_date)s
   AND (rrule IS NOT NULL OR on_date >= %(first_date)s);

-- name: load_holidays
-- Tenant-wide holidays (staff_id NULL) and the staff members' own.
SELECT id, staff_id, slotmill_clamp_date(on_date) AS on_date, slotmill_valid_date(on_date) AS on_date_ok,
       rrule, name
  FROM holidays
 WHERE tenant_id = %(tenant_id)s
   AND (staff_id IS NULL OR %(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND on_date <= %(last_date)s
   AND (rrule IS NOT NULL OR on_date >= %(first_date)s);

-- name: load_busy
-- Everything that blocks time in [lo, hi): time off, external busy times, confirmed
-- bookings' blocked ranges and live holds (kind 'held', with their expiry). Bounds are
-- clamped to [lo, hi], which changes no overlap inside it.
SELECT staff_id, 'time_off' AS kind, greatest(lower(during), %(lo)s) AS lo, least(upper(during), %(hi)s) AS hi,
       NULL::timestamptz AS expires_at, id::text AS ref
  FROM time_off
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT staff_id, 'busy', greatest(lower(during), %(lo)s), least(upper(during), %(hi)s), NULL, id::text
  FROM busy_times
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT staff_id, CASE status WHEN 'confirmed' THEN 'booked' ELSE 'held' END,
       greatest(lower(blocked), %(lo)s), least(upper(blocked), %(hi)s),
       CASE status WHEN 'held' THEN least(expires_at, TIMESTAMPTZ '2201-01-01 00:00:00+00') END, id::text
  FROM bookings
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND (status = 'confirmed' OR (status = 'held' AND expires_at > %(now)s))
   AND starts_at < %(hi)s AND ends_at > %(lo)s
   AND id IS DISTINCT FROM %(ignore_booking)s::uuid;

-- name: staff_of_service
-- On-demand computation (materializer/ondemand.py): who performs a service.
SELECT staff_id
  FROM staff_services
 WHERE tenant_id = %(tenant_id)s AND service_id = %(service_id)s
 ORDER BY staff_id;

-- name: all_staff_ids
-- Every staff member of a tenant, in lock order (materializer/refresh.py, the queue).
SELECT id
  FROM staff
 WHERE tenant_id = %(tenant_id)s
 ORDER BY id;
