-- Queries of the materializer: load the rules of a set of staff members in a few set-based
-- reads, replace a window of slots. %(staff_ids)s NULL means every staff member.

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

-- name: load_templates
-- Times as minutes after midnight: '24:00' is 1440 (no Python time can hold it).
SELECT staff_id, weekday,
       (extract(epoch FROM start_time) / 60)::int AS start_min,
       (extract(epoch FROM end_time) / 60)::int AS end_min,
       location_id, valid_from, valid_until
  FROM availability_templates
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND (valid_from IS NULL OR valid_from <= %(last_date)s)
   AND (valid_until IS NULL OR valid_until >= %(first_date)s);

-- name: load_overrides
SELECT staff_id, on_date, is_available,
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
SELECT staff_id, on_date, rrule, name
  FROM holidays
 WHERE tenant_id = %(tenant_id)s
   AND (staff_id IS NULL OR %(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND on_date <= %(last_date)s
   AND (rrule IS NOT NULL OR on_date >= %(first_date)s);

-- name: load_busy
-- Everything that blocks time in [lo, hi): time off, external busy times, confirmed
-- bookings' blocked ranges and live holds (kind 'held', with their expiry).
SELECT staff_id, 'time_off' AS kind, lower(during) AS lo, upper(during) AS hi, NULL::timestamptz AS expires_at, id::text AS ref
  FROM time_off
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT staff_id, 'busy', lower(during), upper(during), NULL, id::text
  FROM busy_times
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND during && tstzrange(%(lo)s, %(hi)s)
UNION ALL
SELECT staff_id, CASE status WHEN 'confirmed' THEN 'booked' ELSE 'held' END,
       lower(blocked), upper(blocked), CASE status WHEN 'held' THEN expires_at END, id::text
  FROM bookings
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND (status = 'confirmed' OR (status = 'held' AND expires_at > %(now)s))
   AND starts_at < %(hi)s AND ends_at > %(lo)s
   AND id IS DISTINCT FROM %(ignore_booking)s::uuid;

-- name: lock_staff
-- Serialize with every other writer of these staff members' bookings and slots (the same
-- key the bookings trigger takes). Sorted, so two lockers never deadlock.
SELECT pg_advisory_xact_lock(slotmill_staff_lock_key(%(tenant_id)s, s))
  FROM unnest(%(staff_ids)s::uuid[]) AS s
 ORDER BY s;

-- name: delete_window
-- The slots a recompute replaces: these staff members' starts in [lo, hi).
DELETE FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND staff_id = ANY(%(staff_ids)s::uuid[])
   AND starts_at >= %(lo)s AND starts_at < %(hi)s;

-- name: delete_outside
-- A full refresh: slots of staff members no longer materialized, and slots outside the
-- horizon (the past, or beyond a shortened horizon).
DELETE FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND (staff_id <> ALL(%(staff_ids)s::uuid[]) OR starts_at < %(lo)s OR starts_at >= %(hi)s);

-- name: copy_slots
COPY availability_slots (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, held_until) FROM STDIN (FORMAT BINARY);

-- name: read_window
-- What the table holds for a window, for verify.
SELECT id, staff_id, service_id, location_id, starts_at, ends_at, held_until
  FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND starts_at >= %(lo)s AND starts_at < %(hi)s;

-- name: record_refresh
INSERT INTO refresh_runs (tenant_id, kind, started_at, horizon_start, horizon_end, staff_count, slots_written, drift)
VALUES (%(tenant_id)s, %(kind)s, %(started_at)s, %(horizon_start)s, %(horizon_end)s, %(staff_count)s, %(slots_written)s, %(drift)s);

-- Large windows (a full refresh) are applied as a diff: the new slots are COPYed into a
-- session-local staging table, and only rows that changed are deleted and inserted. A
-- nightly refresh that rolls the horizon by a day rewrites about 1/60 of the table
-- instead of all of it, and unchanged rows (and their index entries) stay put.

-- name: create_stage
-- The staging table, once per session; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS slot_stage (LIKE availability_slots) ON COMMIT DELETE ROWS;

-- name: copy_stage
COPY slot_stage (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, held_until) FROM STDIN (FORMAT BINARY);

-- name: analyze_stage
-- Temporary tables are never auto-analyzed; without statistics the diff below would be
-- planned as nested loops over a table assumed tiny.
ANALYZE slot_stage;

-- name: diff_delete
-- Rows of the window that the new computation does not contain exactly.
DELETE FROM availability_slots a
 WHERE a.tenant_id = %(tenant_id)s
   AND a.staff_id = ANY(%(staff_ids)s::uuid[])
   AND a.starts_at >= %(lo)s AND a.starts_at < %(hi)s
   AND NOT EXISTS (
       SELECT FROM slot_stage s
        WHERE s.staff_id = a.staff_id AND s.starts_at = a.starts_at AND s.service_id = a.service_id
          AND s.id = a.id AND s.ends_at = a.ends_at
          AND s.location_id IS NOT DISTINCT FROM a.location_id
          AND s.held_until IS NOT DISTINCT FROM a.held_until);

-- name: diff_insert
-- New rows: after diff_delete, every row left in the window equals its staged twin.
INSERT INTO availability_slots (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, held_until)
SELECT s.tenant_id, s.id, s.staff_id, s.service_id, s.location_id, s.starts_at, s.ends_at, s.held_until
  FROM slot_stage s
 WHERE NOT EXISTS (
       SELECT FROM availability_slots a
        WHERE a.tenant_id = s.tenant_id AND a.staff_id = s.staff_id
          AND a.starts_at = s.starts_at AND a.service_id = s.service_id);
