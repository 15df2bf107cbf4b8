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
-- Staff members with their effective zone (staff, else location, else tenant: SPEC §3) and
-- their booking limits (all services).
SELECT s.id, s.active, s.priority, s.location_id,
       coalesce(s.timezone, l.timezone, t.timezone) AS zone,
       s.max_bookings_per_day, s.max_bookings_per_week
  FROM staff s
  JOIN tenants t ON t.id = s.tenant_id
  LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
 WHERE s.tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR s.id = ANY(%(staff_ids)s::uuid[]))
 ORDER BY s.id;

-- name: load_services
-- Every service of the tenant with the staff members qualified for it, its seats and limits,
-- and its resource requirements, one per kind (two rows of one kind add up).
SELECT v.id, v.active, v.duration_minutes, v.buffer_before_minutes, v.buffer_after_minutes,
       v.slot_interval_minutes, v.min_notice_minutes, v.max_advance_days,
       v.seats, v.max_bookings_per_day, v.max_bookings_per_week,
       coalesce(q.staff_ids, '{}') AS staff_ids,
       coalesce(n.kinds, '{}') AS need_kinds, coalesce(n.quantities, '{}') AS need_quantities
  FROM services v
  LEFT JOIN LATERAL (
       SELECT array_agg(ss.staff_id) AS staff_ids
         FROM staff_services ss
        WHERE ss.tenant_id = v.tenant_id AND ss.service_id = v.id) q ON true
  LEFT JOIN LATERAL (
       SELECT array_agg(r.kind ORDER BY r.kind) AS kinds, array_agg(r.quantity ORDER BY r.kind) AS quantities
         FROM (SELECT sr.kind, sum(sr.quantity)::int AS quantity
                 FROM service_resources sr
                WHERE sr.tenant_id = v.tenant_id AND sr.service_id = v.id
                GROUP BY sr.kind) r) n ON true
 WHERE v.tenant_id = %(tenant_id)s
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
-- clamped to [lo, hi], which changes no overlap inside it. Confirmed bookings are read over
-- [lo_wide, hi_wide) instead (a week more each side), so that the day and week limits
-- count every booking of the local weeks that touch [lo, hi), and travel (up to a day)
-- widens the ranges of the bookings near it; their own start is clamped a day short of
-- lo_wide, which puts no booking before it into a week that matters. Instants come as
-- whole epoch seconds, the engine's unit: cheaper to send and read than timestamptz.
SELECT staff_id, 'time_off' AS kind,
       floor(extract(epoch FROM greatest(lower(during), %(lo)s)))::bigint AS lo,
       floor(extract(epoch FROM least(upper(during), %(hi)s)))::bigint AS hi,
       NULL::bigint AS expires_at, id::text AS ref,
       NULL::uuid AS service_id, NULL::bigint AS starts_at, NULL::uuid AS location_id,
       NULL::integer AS seats, NULL::text AS session_key
  FROM time_off
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT staff_id, 'busy',
       floor(extract(epoch FROM greatest(lower(during), %(lo)s)))::bigint,
       floor(extract(epoch FROM least(upper(during), %(hi)s)))::bigint,
       NULL, id::text, NULL, NULL, NULL, NULL, NULL
  FROM busy_times
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
-- session_key is left out (NULL) where it is the booking's own id, as for every booking
-- of a one-seat service: the engine reads no key as a session of its own.
SELECT staff_id, 'booked',
       floor(extract(epoch FROM greatest(lower(blocked), %(lo_wide)s)))::bigint,
       floor(extract(epoch FROM least(upper(blocked), %(hi_wide)s)))::bigint,
       NULL, id::text, service_id,
       floor(extract(epoch FROM greatest(starts_at, %(lo_wide)s - interval '1 day')))::bigint,
       location_id, seats, nullif(session_key, id::text)
  FROM bookings
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND status = 'confirmed'
   AND starts_at < %(hi_wide)s AND ends_at > %(lo_wide)s
   AND id IS DISTINCT FROM %(ignore_booking)s::uuid
UNION ALL
SELECT staff_id, 'held',
       floor(extract(epoch FROM greatest(lower(blocked), %(lo)s)))::bigint,
       floor(extract(epoch FROM least(upper(blocked), %(hi)s)))::bigint,
       floor(extract(epoch FROM least(expires_at, TIMESTAMPTZ '2201-01-01 00:00:00+00')))::bigint, id::text,
       service_id, floor(extract(epoch FROM greatest(least(starts_at, %(hi)s), %(lo)s - interval '1 day')))::bigint,
       location_id, seats, NULL
  FROM bookings
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND status = 'held' AND expires_at > %(now)s
   AND starts_at < %(hi)s AND ends_at > %(lo)s
   AND id IS DISTINCT FROM %(ignore_booking)s::uuid;

-- name: load_resources
-- The tenant's active resources of the kinds some service needs (SPEC §5.7).
SELECT r.id, r.kind, r.location_id, r.name
  FROM resources r
 WHERE r.tenant_id = %(tenant_id)s AND r.active
   AND EXISTS (SELECT FROM service_resources sr WHERE sr.tenant_id = r.tenant_id AND sr.kind = r.kind)
 ORDER BY r.kind, r.name, r.id;

-- name: load_resource_busy
-- When those resources are taken: the blocked ranges of the confirmed bookings that hold
-- them, of any staff member (booking_resources keeps each booking's range and whether it is
-- live), with the session each booking is of. Clamped to [lo, hi] like load_busy.
SELECT br.resource_id,
       floor(extract(epoch FROM greatest(lower(br.blocked), %(lo)s)))::bigint AS lo,
       floor(extract(epoch FROM least(upper(br.blocked), %(hi)s)))::bigint AS hi,
       b.id::text AS ref, b.staff_id, b.service_id, b.location_id,
       floor(extract(epoch FROM greatest(least(b.starts_at, %(hi)s), %(lo)s - interval '1 day')))::bigint AS starts_at
  FROM booking_resources br
  JOIN resources r ON r.tenant_id = br.tenant_id AND r.id = br.resource_id
  JOIN bookings b ON b.tenant_id = br.tenant_id AND b.id = br.booking_id
 WHERE br.tenant_id = %(tenant_id)s AND br.live AND r.active
   AND br.blocked && tstzrange(%(lo)s, %(hi)s)
   AND b.status = 'confirmed'
   AND b.id IS DISTINCT FROM %(ignore_booking)s::uuid
 ORDER BY br.resource_id, lower(br.blocked);

-- name: load_travel
-- Minutes from one location to another (SPEC §5.9): the tenant's whole matrix.
SELECT from_location_id, to_location_id, minutes
  FROM location_travel
 WHERE tenant_id = %(tenant_id)s;

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
