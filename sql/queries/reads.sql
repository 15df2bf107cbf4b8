-- owner: slotmill.api.public
-- Public slot reads (api/public.py). A read is ONE statement that also builds the JSON
-- body, which the API passes to the client without decoding it. The read-time rules
-- (slotmill_read_window, slotmill_bookable_from/until, held_until) are SQL functions of
-- the schema (sql/schema.sql), defined once.
--
-- Past the materialized horizon (up to the advance limit) the engine computes the slots
-- on demand and the API passes them in (%(beyond_from)s and the %(x_...)s arrays): they join
-- the table's rows in the `slots` CTE, so one statement still builds the whole answer with
-- the same rules, ids and JSON.
--
-- Besides the body, each read answers the tenant's version and until when its answer holds
-- with no write at all (slotmill_kept_until): the API keeps answers and serves them again
-- while the version is unchanged and valid_until is ahead (api/readcache.py).
--
-- Parameters shared by the reads: %(slug)s, %(service_id)s; the range as either instants
-- (%(from_at)s, %(to_at)s: starts in [from_at, to_at)) or local dates (%(from_date)s,
-- %(to_date)s, both inclusive, in %(tz)s else the tenant's zone) with the other pair NULL;
-- optional %(staff_id)s and %(location_id)s filters (NULL: any).

-- name: read_slots
-- Per staff member: {"slots": [{"id", "starts_at", "ends_at", "staff_id", "location_id",
-- "seats_left"}], "next_from"}, plus flags naming what does not exist, for the 404s.
-- seats_left: the session's seats minus its confirmed and live held bookings' (1 for a
-- one-seat service); a slot with none left is not shown. At most %(limit)s slots,
-- cut between two starts (a start's slots are never split; the first start always comes
-- whole, so a client paging with next_from always advances); next_from is the first start
-- left out, or null. Index: availability_slots_read.
WITH t AS (
    SELECT id, timezone, horizon_days, settings
      FROM tenants
     WHERE slug = %(slug)s
), v AS (
    SELECT v.min_notice_minutes, v.max_advance_days, v.seats
      FROM t JOIN services v ON v.tenant_id = t.id
     WHERE v.id = %(service_id)s AND v.active
), win AS (
    SELECT w.lo, w.hi,
           -- what the window was asked for, and where notice and advance cut it now: the
           -- answer's valid_until is when those cuts move past a slot (see kept_until)
           coalesce(%(from_at)s::timestamptz,
                    %(from_date)s::date::timestamp AT TIME ZONE coalesce(%(tz)s::text, t.timezone)) AS asked_lo,
           coalesce(%(to_at)s::timestamptz,
                    (%(to_date)s::date + 1)::timestamp AT TIME ZONE coalesce(%(tz)s::text, t.timezone)) AS asked_hi,
           slotmill_bookable_from(t.settings, v.min_notice_minutes) AS bookable_from,
           slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days) AS bookable_until
      FROM t, v,
           slotmill_read_window(t.settings, t.horizon_days, v.min_notice_minutes, v.max_advance_days,
                                coalesce(%(tz)s::text, t.timezone), %(from_at)s::timestamptz,
                                %(to_at)s::timestamptz, %(from_date)s::date, %(to_date)s::date) w
), slots AS (
    -- The table's slots, and past the horizon (from %(beyond_from)s) the slots the engine
    -- computed on demand for this read (api/public.py passes them in): the same rows, so
    -- everything below treats both alike. Without any, the second part is empty.
    SELECT a.tenant_id, a.id, a.staff_id, a.service_id, a.location_id, a.starts_at, a.ends_at,
           a.held_until, a.seats_left, a.resource_free
      FROM availability_slots a
     WHERE %(beyond_from)s::timestamptz IS NULL OR a.starts_at < %(beyond_from)s::timestamptz
    UNION ALL
    SELECT (SELECT id FROM t), x.id, x.staff_id, %(service_id)s::uuid, x.location_id, x.starts_at, x.ends_at,
           x.held_until, x.seats_left, x.resource_free
      FROM unnest(%(x_id)s::text[], %(x_staff)s::uuid[], %(x_location)s::uuid[], %(x_starts)s::timestamptz[],
                  %(x_ends)s::timestamptz[], %(x_held)s::timestamptz[], %(x_seats)s::integer[],
                  %(x_free)s::integer[])
           AS x (id, staff_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free)
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
                       'location_id', p.location_id,
                       'seats_left', p.seats_visible) ORDER BY p.starts_at, p.staff_id) FILTER (WHERE p.kept), '[]'::json),
                   'next_from', slotmill_instant(min(p.starts_at) FILTER (WHERE NOT p.kept)))::text
          FROM (SELECT s.*,
                       -- slots starting at or before this one's start: a page keeps whole starts
                       count(*) OVER (ORDER BY s.starts_at) <= %(limit)s
                       OR s.starts_at = min(s.starts_at) OVER () AS kept
                  FROM (SELECT a.*, a.seats_left - slotmill_held_seats(a.tenant_id, a.staff_id, a.service_id, a.starts_at, v.seats)
                                    AS seats_visible
                          FROM win
                         CROSS JOIN v
                          JOIN slots a
                            ON a.tenant_id = (SELECT id FROM t) AND a.service_id = %(service_id)s
                           AND a.starts_at >= win.lo AND a.starts_at < win.hi
                         WHERE (a.held_until IS NULL OR a.held_until <= now())
                           AND (%(staff_id)s::uuid IS NULL OR a.staff_id = %(staff_id)s::uuid)
                           AND (%(location_id)s::uuid IS NULL OR a.location_id = %(location_id)s::uuid)) s
                 -- a group session whose seats are all held is hidden
                 WHERE s.seats_visible > 0) p) AS body,
       (SELECT id FROM t) AS tenant_id,
       slotmill_tenant_version((SELECT id FROM t)) AS version,
       (SELECT slotmill_kept_until(t.id, %(service_id)s, win.lo, win.hi, win.asked_lo, win.asked_hi,
                                   win.bookable_from, win.bookable_until)
          FROM t, win) AS valid_until,
       -- where the table's slots end: a window reaching past it has the engine's slots
       -- there (api/public.py computes them, then runs the read again with them)
       (SELECT slotmill_table_end(t.id, t.timezone, t.horizon_days) FROM t) AS table_end,
       win.lo AS window_lo, win.hi AS window_hi, win.asked_hi, win.bookable_from, win.bookable_until
  FROM (SELECT) one LEFT JOIN win ON true;

-- name: read_slots_by_time
-- Any staff (group=time): {"slots": [{"starts_at", "ends_at", "capacity", "candidates"}],
-- "next_from"}: at most %(limit)s starts, next_from the first start left out, or null.
-- candidates: the first %(candidates)s staff ids with a visible slot at that start, by
-- priority, then fewest confirmed bookings that local day (the staff member's zone), then id.
-- capacity: the bookings that could still be made at that start, summed over locations:
-- the smaller of the staff there and what the resources allow (resource_free; an upper
-- bound where location-less resources are shared, the hold judging), or for a group
-- service the visible seats.
WITH t AS (
    SELECT id, timezone, horizon_days, settings
      FROM tenants
     WHERE slug = %(slug)s
), v AS (
    SELECT v.min_notice_minutes, v.max_advance_days, v.seats
      FROM t JOIN services v ON v.tenant_id = t.id
     WHERE v.id = %(service_id)s AND v.active
), win AS (
    SELECT w.lo, w.hi,
           -- what the window was asked for, and where notice and advance cut it now: the
           -- answer's valid_until is when those cuts move past a slot (see kept_until)
           coalesce(%(from_at)s::timestamptz,
                    %(from_date)s::date::timestamp AT TIME ZONE coalesce(%(tz)s::text, t.timezone)) AS asked_lo,
           coalesce(%(to_at)s::timestamptz,
                    (%(to_date)s::date + 1)::timestamp AT TIME ZONE coalesce(%(tz)s::text, t.timezone)) AS asked_hi,
           slotmill_bookable_from(t.settings, v.min_notice_minutes) AS bookable_from,
           slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days) AS bookable_until
      FROM t, v,
           slotmill_read_window(t.settings, t.horizon_days, v.min_notice_minutes, v.max_advance_days,
                                coalesce(%(tz)s::text, t.timezone), %(from_at)s::timestamptz,
                                %(to_at)s::timestamptz, %(from_date)s::date, %(to_date)s::date) w
), slots AS (
    -- The table's slots, and past the horizon (from %(beyond_from)s) the slots the engine
    -- computed on demand for this read (api/public.py passes them in): the same rows, so
    -- everything below treats both alike. Without any, the second part is empty.
    SELECT a.tenant_id, a.id, a.staff_id, a.service_id, a.location_id, a.starts_at, a.ends_at,
           a.held_until, a.seats_left, a.resource_free
      FROM availability_slots a
     WHERE %(beyond_from)s::timestamptz IS NULL OR a.starts_at < %(beyond_from)s::timestamptz
    UNION ALL
    SELECT (SELECT id FROM t), x.id, x.staff_id, %(service_id)s::uuid, x.location_id, x.starts_at, x.ends_at,
           x.held_until, x.seats_left, x.resource_free
      FROM unnest(%(x_id)s::text[], %(x_staff)s::uuid[], %(x_location)s::uuid[], %(x_starts)s::timestamptz[],
                  %(x_ends)s::timestamptz[], %(x_held)s::timestamptz[], %(x_seats)s::integer[],
                  %(x_free)s::integer[])
           AS x (id, staff_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free)
), crew AS (
    -- The staff who perform the service (not derived from the slots: the slot scan below
    -- then runs once, in index order, and needs no sort).
    SELECT s.id, s.priority, coalesce(s.timezone, l.timezone, t.timezone) AS zone
      FROM t
      JOIN staff_services ss ON ss.tenant_id = t.id AND ss.service_id = %(service_id)s
      JOIN staff s ON s.tenant_id = ss.tenant_id AND s.id = ss.staff_id
      LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
     WHERE %(staff_id)s::uuid IS NULL OR s.id = %(staff_id)s::uuid
), booked AS MATERIALIZED (
    -- Confirmed bookings per staff member and local day; the window is widened by two
    -- days so that every local day of a visible start is counted whole, in any zone.
    -- MATERIALIZED: computed once, whatever the planner believes of fresh rows (without
    -- statistics it re-ran this aggregate once per slot: 51 ms instead of 4).
    SELECT b.staff_id, (b.starts_at AT TIME ZONE c.zone)::date AS day, count(*) AS n
      FROM crew c
     CROSS JOIN win
      JOIN bookings b
        ON b.tenant_id = (SELECT id FROM t) AND b.staff_id = c.id AND b.status = 'confirmed'
       AND b.starts_at >= win.lo - interval '48 hours' AND b.starts_at < win.hi + interval '48 hours'
     GROUP BY 1, 2
), visible AS (
    SELECT a.starts_at, a.ends_at, a.staff_id, a.location_id, a.resource_free, c.priority,
           coalesce(k.n, 0) AS booked_that_day,
           a.seats_left - slotmill_held_seats(a.tenant_id, a.staff_id, a.service_id, a.starts_at, v.seats) AS seats
      FROM win
     CROSS JOIN v
      JOIN slots a
        ON a.tenant_id = (SELECT id FROM t) AND a.service_id = %(service_id)s
       AND a.starts_at >= win.lo AND a.starts_at < win.hi
      JOIN crew c ON c.id = a.staff_id
      LEFT JOIN booked k ON k.staff_id = a.staff_id AND k.day = (a.starts_at AT TIME ZONE c.zone)::date
     WHERE (a.held_until IS NULL OR a.held_until <= now())
       AND (%(location_id)s::uuid IS NULL OR a.location_id = %(location_id)s::uuid)
), per_location AS (
    -- capacity at one location: the staff who can take it, as far as the resources allow
    -- (resource_free is the same for every staff member there); a group service: seats
    SELECT x.starts_at, x.location_id,
           CASE WHEN (SELECT seats FROM v) > 1 THEN sum(x.seats)
                ELSE least(count(*), coalesce(max(x.resource_free), count(*))) END AS capacity
      FROM visible x
     WHERE x.seats > 0
     GROUP BY x.starts_at, x.location_id
), capacity AS (
    SELECT l.starts_at, sum(l.capacity) AS capacity FROM per_location l GROUP BY l.starts_at
), grouped AS (
    -- One service: every slot at a start has the same end.
    SELECT x.starts_at, min(x.ends_at) AS ends_at, c.capacity,
           (array_agg(x.staff_id ORDER BY x.priority, x.booked_that_day, x.staff_id))[1:%(candidates)s::int] AS candidates
      FROM visible x
      JOIN capacity c ON c.starts_at = x.starts_at
     WHERE x.seats > 0
     GROUP BY x.starts_at, c.capacity
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
          FROM (SELECT grouped.*, row_number() OVER (ORDER BY grouped.starts_at) AS n FROM grouped) g) AS body,
       (SELECT id FROM t) AS tenant_id,
       slotmill_tenant_version((SELECT id FROM t)) AS version,
       (SELECT slotmill_kept_until(t.id, %(service_id)s, win.lo, win.hi, win.asked_lo, win.asked_hi,
                                   win.bookable_from, win.bookable_until)
          FROM t, win) AS valid_until,
       -- where the table's slots end: a window reaching past it has the engine's slots
       -- there (api/public.py computes them, then runs the read again with them)
       (SELECT slotmill_table_end(t.id, t.timezone, t.horizon_days) FROM t) AS table_end,
       win.lo AS window_lo, win.hi AS window_hi, win.asked_hi, win.bookable_from, win.bookable_until
  FROM (SELECT) one LEFT JOIN win ON true;
