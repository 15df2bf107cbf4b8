-- owner: slotmill.api.admin_day
-- The console's day timeline (api/admin_day.py): one staff member, one service, one local
-- date. The engine's own input comes from materializer/loader.py; these statements read
-- what the engine does not need but an operator does (the rule rows by id, labels of busy
-- ranges, what the slot table holds), in the same snapshot.

-- name: day_snapshot
-- Every statement of the request sees one snapshot, so the table and the engine's input
-- cannot disagree because a write landed between two reads.
SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY;

-- name: day_context
-- The tenant, whether the staff member and the service are its, the staff member's zone
-- (staff, else location, else tenant), the read-time limits of the service from the
-- functions the public reads use (slotmill_bookable_from/until), and where the table ends
-- (past it, reads compute slots on demand).
SELECT t.id, t.slug, t.name, t.timezone, t.horizon_days, t.settings,
       s.id IS NOT NULL AS staff_found, s.display_name AS staff_name,
       coalesce(s.timezone, l.timezone, t.timezone) AS staff_zone,
       v.id IS NOT NULL AS service_found, v.name AS service_name,
       now() AS now,
       slotmill_bookable_from(t.settings, v.min_notice_minutes) AS bookable_from,
       slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days) AS bookable_until,
       slotmill_table_end(t.id, t.timezone, t.horizon_days) AS table_end
  FROM tenants t
  LEFT JOIN staff s ON s.tenant_id = t.id AND s.id = %(staff_id)s
  LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
  LEFT JOIN services v ON v.tenant_id = t.id AND v.id = %(service_id)s
 WHERE t.slug = %(slug)s;

-- name: day_rules
-- The rule rows that can apply on local date %(on_date)s: templates of its weekday valid
-- that day, overrides and holidays (tenant-wide or the staff member's) of that date or
-- recurring from before it (the caller keeps those whose rule has an occurrence that day,
-- by the engine's own recurrence function). Times as text, 24:00 included.
SELECT 'template' AS kind, id, weekday, NULL::date AS on_date, NULL::boolean AS is_available,
       to_char(start_time, 'HH24:MI') AS start_time, to_char(end_time, 'HH24:MI') AS end_time,
       location_id, slotmill_clamp_date(valid_from) AS valid_from, slotmill_clamp_date(valid_until) AS valid_until,
       NULL::text AS rrule, NULL::text AS label, false AS tenant_wide
  FROM availability_templates
 WHERE tenant_id = %(tenant_id)s AND staff_id = %(staff_id)s
   AND weekday = extract(isodow FROM %(on_date)s::date)
   AND (valid_from IS NULL OR valid_from <= %(on_date)s::date)
   AND (valid_until IS NULL OR valid_until >= %(on_date)s::date)
UNION ALL
SELECT 'override', id, NULL, slotmill_clamp_date(on_date), is_available,
       to_char(start_time, 'HH24:MI'), to_char(end_time, 'HH24:MI'),
       location_id, NULL, NULL, rrule, reason, false
  FROM availability_overrides
 WHERE tenant_id = %(tenant_id)s AND staff_id = %(staff_id)s
   AND on_date <= %(on_date)s::date
   AND (on_date = %(on_date)s::date OR (rrule IS NOT NULL AND slotmill_valid_date(on_date)))
UNION ALL
SELECT 'holiday', id, NULL, slotmill_clamp_date(on_date), NULL, NULL, NULL,
       NULL, NULL, NULL, rrule, name, staff_id IS NULL
  FROM holidays
 WHERE tenant_id = %(tenant_id)s AND (staff_id IS NULL OR staff_id = %(staff_id)s)
   AND on_date <= %(on_date)s::date
   AND (on_date = %(on_date)s::date OR (rrule IS NOT NULL AND slotmill_valid_date(on_date)))
 ORDER BY 1, 3, 6, 2;

-- name: day_sources
-- What the busy set's ranges and the live holds are, for a label: time off (its reason),
-- busy times (source and external id), bookings (service, own start and end, customer
-- reference). Ranges that touch [lo, hi), the reach of the day's candidates.
SELECT 'time_off' AS kind, id::text AS ref, reason AS label, lower(during) AS starts_at, upper(during) AS ends_at,
       NULL::uuid AS service_id, NULL::text AS service_name, NULL::text AS status, NULL::text AS customer_ref
  FROM time_off
 WHERE tenant_id = %(tenant_id)s AND staff_id = %(staff_id)s AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT 'busy', id::text, concat_ws(': ', source, external_id), lower(during), upper(during), NULL, NULL, NULL, NULL
  FROM busy_times
 WHERE tenant_id = %(tenant_id)s AND staff_id = %(staff_id)s AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT 'booking', b.id::text, NULL, b.starts_at, b.ends_at, b.service_id, v.name, b.status, b.customer_ref
  FROM bookings b
  JOIN services v ON v.tenant_id = b.tenant_id AND v.id = b.service_id
 WHERE b.tenant_id = %(tenant_id)s AND b.staff_id = %(staff_id)s
   AND b.status IN ('confirmed', 'held')
   AND b.blocked && tstzrange(%(lo)s, %(hi)s);

-- name: day_table
-- What availability_slots holds for the day: the staff member's slots of the service that
-- start in [lo, hi).
SELECT id, location_id, starts_at, ends_at, held_until, seats_left, resource_free
  FROM availability_slots
 WHERE tenant_id = %(tenant_id)s AND staff_id = %(staff_id)s AND service_id = %(service_id)s
   AND starts_at >= %(lo)s AND starts_at < %(hi)s
 ORDER BY starts_at;
