-- owner: slotmill.api.public
-- Public slot reads (api/public.py). A read is ONE statement that also builds the JSON
-- body, which the API passes to the client without decoding it. The read-time rules
-- (slotmill_read_window, slotmill_bookable_from/until, held_until) are SQL functions of
-- the schema (sql/schema.sql), defined once.
--
-- Parameters shared by the reads: %(slug)s, %(service_id)s; the range as either instants
-- (%(from_at)s, %(to_at)s: starts in [from_at, to_at)) or local dates (%(from_date)s,
-- %(to_date)s, both inclusive, in %(tz)s else the tenant's zone) with the other pair NULL;
-- optional %(staff_id)s and %(location_id)s filters (NULL: any).

-- name: read_slots
-- Per staff member: {"slots": [{"id", "starts_at", "ends_at", "staff_id", "location_id"}],
-- "next_from"}, plus flags naming what does not exist, for the 404s. At most %(limit)s slots,
-- cut between two starts (a start's slots are never split; the first start always comes
-- whole, so a client paging with next_from always advances); next_from is the first start
-- left out, or null. Index: availability_slots_read.
WITH t AS (
    SELECT id, timezone, horizon_days, settings
      FROM tenants
     WHERE slug = %(slug)s
), v AS (
    SELECT v.min_notice_minutes, v.max_advance_days
      FROM t JOIN services v ON v.tenant_id = t.id
     WHERE v.id = %(service_id)s AND v.active
), win AS (
    SELECT w.lo, w.hi
      FROM t, v,
           slotmill_read_window(t.settings, t.horizon_days, v.min_notice_minutes, v.max_advance_days,
                                coalesce(%(tz)s::text, t.timezone), %(from_at)s::timestamptz,
                                %(to_at)s::timestamptz, %(from_date)s::date, %(to_date)s::date) w
)
SELECT NOT EXISTS (SELECT FROM t) AS no_tenant,
       NOT EXISTS (SELECT FROM v) AS no_service,
       %(staff_id)s::uuid IS NOT NULL AND NOT EXISTS (
           SELECT FROM t JOIN staff s ON s.tenant_id = t.id
            WHERE s.id = %(staff_id)s::uuid AND s.active) AS no_staff,
       %(location_id)s::uuid IS NOT NULL AND NOT EXISTS (
           SELECT FROM t JOIN locations l ON l.tenant_id = t.id
            WHERE l.id = %(location_id)s::uuid) AS no_location,
       (SELECT json_build_object(
                   'slots', coalesce(json_agg(json_build_object(
                       'id', p.id,
                       'starts_at', slotmill_instant(p.starts_at),
                       'ends_at', slotmill_instant(p.ends_at),
                       'staff_id', p.staff_id,
                       'location_id', p.location_id) ORDER BY p.starts_at, p.staff_id) FILTER (WHERE p.kept), '[]'::json),
                   'next_from', slotmill_instant(min(p.starts_at) FILTER (WHERE NOT p.kept)))::text
          FROM (SELECT a.*,
                       -- slots starting at or before this one's start: a page keeps whole starts
                       count(*) OVER (ORDER BY a.starts_at) <= %(limit)s
                       OR a.starts_at = min(a.starts_at) OVER () AS kept
                  FROM win
                  JOIN availability_slots a
                    ON a.tenant_id = (SELECT id FROM t) AND a.service_id = %(service_id)s
                   AND a.starts_at >= win.lo AND a.starts_at < win.hi
                 WHERE (a.held_until IS NULL OR a.held_until <= now())
                   AND (%(staff_id)s::uuid IS NULL OR a.staff_id = %(staff_id)s::uuid)
                   AND (%(location_id)s::uuid IS NULL OR a.location_id = %(location_id)s::uuid)) p) AS body;

-- name: read_slots_by_time
-- Any staff (group=time): {"slots": [{"starts_at", "ends_at", "capacity", "candidates"}],
-- "next_from"}: at most %(limit)s starts, next_from the first start left out, or null.
-- candidates: the first %(candidates)s staff ids with a visible slot at that start, by
-- priority, then fewest confirmed bookings that local day (the staff member's zone), then id.
WITH t AS (
    SELECT id, timezone, horizon_days, settings
      FROM tenants
     WHERE slug = %(slug)s
), v AS (
    SELECT v.min_notice_minutes, v.max_advance_days
      FROM t JOIN services v ON v.tenant_id = t.id
     WHERE v.id = %(service_id)s AND v.active
), win AS (
    SELECT w.lo, w.hi
      FROM t, v,
           slotmill_read_window(t.settings, t.horizon_days, v.min_notice_minutes, v.max_advance_days,
                                coalesce(%(tz)s::text, t.timezone), %(from_at)s::timestamptz,
                                %(to_at)s::timestamptz, %(from_date)s::date, %(to_date)s::date) w
), crew AS (
    -- The staff who perform the service (not derived from the slots: the slot scan below
    -- then runs once, in index order, and needs no sort).
    SELECT s.id, s.priority, coalesce(s.timezone, l.timezone, t.timezone) AS zone
      FROM t
      JOIN staff_services ss ON ss.tenant_id = t.id AND ss.service_id = %(service_id)s
      JOIN staff s ON s.tenant_id = ss.tenant_id AND s.id = ss.staff_id
      LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
     WHERE %(staff_id)s::uuid IS NULL OR s.id = %(staff_id)s::uuid
), booked AS (
    -- Confirmed bookings per staff member and local day; the window is widened by two
    -- days so that every local day of a visible start is counted whole, in any zone.
    SELECT b.staff_id, (b.starts_at AT TIME ZONE c.zone)::date AS day, count(*) AS n
      FROM crew c
     CROSS JOIN win
      JOIN bookings b
        ON b.tenant_id = (SELECT id FROM t) AND b.staff_id = c.id AND b.status = 'confirmed'
       AND b.starts_at >= win.lo - interval '48 hours' AND b.starts_at < win.hi + interval '48 hours'
     GROUP BY 1, 2
), grouped AS (
    -- One service: every slot at a start has the same end.
    SELECT a.starts_at, min(a.ends_at) AS ends_at, count(*) AS capacity,
           (array_agg(a.staff_id ORDER BY c.priority, coalesce(k.n, 0), a.staff_id))[1:%(candidates)s::int] AS candidates
      FROM win
      JOIN availability_slots a
        ON a.tenant_id = (SELECT id FROM t) AND a.service_id = %(service_id)s
       AND a.starts_at >= win.lo AND a.starts_at < win.hi
      JOIN crew c ON c.id = a.staff_id
      LEFT JOIN booked k ON k.staff_id = a.staff_id AND k.day = (a.starts_at AT TIME ZONE c.zone)::date
     WHERE (a.held_until IS NULL OR a.held_until <= now())
       AND (%(location_id)s::uuid IS NULL OR a.location_id = %(location_id)s::uuid)
     GROUP BY a.starts_at
)
SELECT NOT EXISTS (SELECT FROM t) AS no_tenant,
       NOT EXISTS (SELECT FROM v) AS no_service,
       %(staff_id)s::uuid IS NOT NULL AND NOT EXISTS (
           SELECT FROM t JOIN staff s ON s.tenant_id = t.id
            WHERE s.id = %(staff_id)s::uuid AND s.active) AS no_staff,
       %(location_id)s::uuid IS NOT NULL AND NOT EXISTS (
           SELECT FROM t JOIN locations l ON l.tenant_id = t.id
            WHERE l.id = %(location_id)s::uuid) AS no_location,
       (SELECT json_build_object(
                   'slots', coalesce(json_agg(json_build_object(
                       'starts_at', slotmill_instant(g.starts_at),
                       'ends_at', slotmill_instant(g.ends_at),
                       'capacity', g.capacity,
                       'candidates', g.candidates) ORDER BY g.starts_at) FILTER (WHERE g.n <= %(limit)s), '[]'::json),
                   'next_from', slotmill_instant(min(g.starts_at) FILTER (WHERE g.n > %(limit)s)))::text
          FROM (SELECT grouped.*, row_number() OVER (ORDER BY grouped.starts_at) AS n FROM grouped) g) AS body;
