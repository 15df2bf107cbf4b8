-- owner: slotmill.api.admin_usage
-- The console's utilization heatmap (api/admin_usage.py; the definition is in
-- docs/console.md#utilization).

-- name: usage_context
-- The tenant, and the staff member and location a request names (found or not), each with
-- its zone: staff, else their location's, else the tenant's; a location's, else the tenant's.
SELECT t.id, t.slug, t.name, t.timezone, now() AS now,
       s.id IS NOT NULL AS staff_found, s.display_name AS staff_name,
       coalesce(s.timezone, sl.timezone, t.timezone) AS staff_zone,
       l.id IS NOT NULL AS location_found, l.name AS location_name,
       coalesce(l.timezone, t.timezone) AS location_zone
  FROM tenants t
  LEFT JOIN staff s ON s.tenant_id = t.id AND s.id = %(staff_id)s::uuid
  LEFT JOIN locations sl ON sl.tenant_id = s.tenant_id AND sl.id = s.location_id
  LEFT JOIN locations l ON l.tenant_id = t.id AND l.id = %(location_id)s::uuid
 WHERE t.slug = %(slug)s;

-- name: utilization
-- Booked, offered and either minutes per local weekday and hour of %(zone)s over
-- [%(lo)s, %(hi)s). Per staff member in scope: offered = the union of their slots'
-- [starts_at, ends_at) (every service; held slots too), booked = the union of their
-- confirmed bookings' [starts_at, ends_at) (no buffers), either = the union of both. Each
-- union is cut into the zone's local hours and summed over staff members and dates. With a
-- location: slots at it, and bookings at it (a booking with no location counts at its staff
-- member's). The hours are stepped in local time from 3 hours before a range to 3 after,
-- so that they tile it whatever a DST change does to the hours at its ends.
WITH scope AS (
    SELECT s.id, s.location_id
      FROM staff s
     WHERE s.tenant_id = %(tenant_id)s
       AND (%(staff_id)s::uuid IS NULL OR s.id = %(staff_id)s::uuid)
),
offered AS (
    SELECT a.staff_id, range_agg(tstzrange(a.starts_at, a.ends_at) * tstzrange(%(lo)s, %(hi)s)) AS m
      FROM availability_slots a
      JOIN scope ON scope.id = a.staff_id
     WHERE a.tenant_id = %(tenant_id)s
       AND a.starts_at < %(hi)s AND a.ends_at > %(lo)s
       AND (%(location_id)s::uuid IS NULL OR a.location_id = %(location_id)s::uuid)
     GROUP BY a.staff_id
),
booked AS (
    SELECT b.staff_id, range_agg(tstzrange(b.starts_at, b.ends_at) * tstzrange(%(lo)s, %(hi)s)) AS m
      FROM bookings b
      JOIN scope ON scope.id = b.staff_id
     WHERE b.tenant_id = %(tenant_id)s AND b.status = 'confirmed'
       AND b.starts_at < %(hi)s AND b.ends_at > %(lo)s
       AND (%(location_id)s::uuid IS NULL OR coalesce(b.location_id, scope.location_id) = %(location_id)s::uuid)
     GROUP BY b.staff_id
),
pieces AS (
    SELECT 'offered' AS kind, unnest(m) AS r FROM offered
    UNION ALL
    SELECT 'booked', unnest(m) FROM booked
    UNION ALL
    SELECT 'either', unnest(coalesce(o.m, '{}'::tstzmultirange) + coalesce(b.m, '{}'::tstzmultirange))
      FROM offered o
      FULL JOIN booked b ON b.staff_id = o.staff_id
),
cells AS (
    SELECT p.kind, h.local_start,
           extract(epoch FROM least(upper(p.r), h.hi) - greatest(lower(p.r), h.lo)) AS seconds
      FROM pieces p
     CROSS JOIN LATERAL (
           SELECT ts AS local_start,
                  ts AT TIME ZONE %(zone)s AS lo,
                  (ts + interval '1 hour') AT TIME ZONE %(zone)s AS hi
             FROM generate_series(date_trunc('hour', lower(p.r) AT TIME ZONE %(zone)s) - interval '3 hours',
                                  (upper(p.r) AT TIME ZONE %(zone)s) + interval '3 hours',
                                  interval '1 hour') AS ts) h
     WHERE h.lo < upper(p.r) AND h.hi > lower(p.r)
)
SELECT extract(isodow FROM local_start)::int AS weekday,
       extract(hour FROM local_start)::int AS hour,
       coalesce(sum(seconds) FILTER (WHERE kind = 'offered'), 0)::float8 / 60 AS offered_minutes,
       coalesce(sum(seconds) FILTER (WHERE kind = 'booked'), 0)::float8 / 60 AS booked_minutes,
       coalesce(sum(seconds) FILTER (WHERE kind = 'either'), 0)::float8 / 60 AS either_minutes
  FROM cells
 GROUP BY 1, 2
 ORDER BY 1, 2;
