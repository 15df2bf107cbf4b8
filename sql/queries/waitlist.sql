-- owner: slotmill.materializer.waitlist
-- The waitlist (materializer/waitlist.py): entries as customers and hosts make and end
-- them, and matching slots that appear to the oldest waiting entry.

-- name: create_entry
-- A public entry: flags name what is unknown (404s); the entry's id when made. A location
-- must be one the service can be had at (a staff member who performs it works there).
WITH t AS (
    SELECT id FROM tenants WHERE slug = %(slug)s
), v AS (
    SELECT v.id FROM t JOIN services v ON v.tenant_id = t.id AND v.id = %(service_id)s AND v.active
), s AS (
    SELECT ss.staff_id FROM t
      JOIN staff_services ss ON ss.tenant_id = t.id AND ss.service_id = %(service_id)s AND ss.staff_id = %(staff_id)s::uuid
      JOIN staff st ON st.tenant_id = t.id AND st.id = ss.staff_id AND st.active
), l AS (
    SELECT l.id FROM t JOIN locations l ON l.tenant_id = t.id AND l.id = %(location_id)s::uuid
), e AS (
    INSERT INTO waitlist_entries (tenant_id, service_id, staff_id, from_date, to_date, time_windows, contact_ref,
                                  contact, location_id)
    SELECT t.id, %(service_id)s, %(staff_id)s::uuid, %(from_date)s, %(to_date)s, %(time_windows)s::int4multirange,
           %(contact_ref)s, %(contact)s::jsonb, %(location_id)s::uuid
      FROM t
     WHERE EXISTS (SELECT FROM v) AND (%(staff_id)s::uuid IS NULL OR EXISTS (SELECT FROM s))
       AND (%(location_id)s::uuid IS NULL OR EXISTS (SELECT FROM l))
    RETURNING id, created_at
)
SELECT NOT EXISTS (SELECT FROM t) AS no_tenant,
       NOT EXISTS (SELECT FROM v) AS no_service,
       %(staff_id)s::uuid IS NOT NULL AND NOT EXISTS (SELECT FROM s) AS no_staff,
       %(location_id)s::uuid IS NOT NULL AND NOT EXISTS (SELECT FROM l) AS no_location,
       (SELECT id FROM e) AS id,
       (SELECT created_at FROM e) AS created_at;

-- name: list_entries
SELECT w.id, w.service_id, w.staff_id, w.from_date, w.to_date, w.time_windows::text AS time_windows,
       w.contact_ref, w.contact, w.location_id, w.status, w.created_at, w.ended_at,
       (SELECT count(*) FROM waitlist_matches m WHERE m.tenant_id = w.tenant_id AND m.entry_id = w.id) AS matches
  FROM waitlist_entries w
 WHERE w.tenant_id = %(tenant_id)s
   AND (%(status)s::text IS NULL OR w.status = %(status)s::text)
   AND (%(entry_id)s::uuid IS NULL OR w.id = %(entry_id)s::uuid)
 ORDER BY w.created_at, w.id
 LIMIT %(limit)s;

-- name: cancel_entry
UPDATE waitlist_entries
   SET status = 'cancelled', ended_at = now()
 WHERE tenant_id = %(tenant_id)s AND id = %(entry_id)s AND status = 'waiting'
RETURNING id;

-- name: expire_entries
-- Entries whose last date has passed in their tenant's zone.
UPDATE waitlist_entries w
   SET status = 'expired', ended_at = now()
  FROM tenants t
 WHERE t.id = w.tenant_id AND w.status = 'waiting'
   AND w.to_date < (now() AT TIME ZONE t.timezone)::date;

-- name: claim_match_event
-- The next numbered slots.changed event the waitlist has not looked at (SKIP LOCKED: any
-- number of workers).
SELECT tenant_id, id, data
  FROM events
 WHERE match_pending AND seq IS NOT NULL
 ORDER BY id
 LIMIT 1
   FOR UPDATE SKIP LOCKED;

-- name: lock_tenant_waitlist
-- One matcher per tenant at a time (a job lock: taken before any staff lock, sql/schema.sql
-- section Locks), so one slot never goes to two entries.
SELECT pg_advisory_xact_lock(slotmill_job_lock_key('waitlist', %(tenant_id)s));

-- name: match_candidates
-- (entry, slot) pairs of an event's staff members, services and range: the slot is visible now (as a
-- public read would show it) and fits the entry (staff, local date and time of day in the
-- staff member's zone), and is news: the entry was never told about it, and no other entry
-- was told since it last became free. Oldest entry first, then
-- the earliest slot, then the staff order of any-staff reads.
SELECT w.id AS entry_id, a.id AS slot_id, a.staff_id, a.service_id, a.location_id, a.starts_at, a.ends_at,
       w.contact_ref, (t.settings -> 'waitlist_auto_hold') = 'true'::jsonb AS auto_hold, t.slug
  FROM tenants t
  JOIN waitlist_entries w ON w.tenant_id = t.id AND w.status = 'waiting' AND w.service_id = ANY (%(service_ids)s::uuid[])
  JOIN services v ON v.tenant_id = t.id AND v.id = w.service_id AND v.active
  JOIN availability_slots a
    ON a.tenant_id = t.id AND a.service_id = w.service_id
   AND a.starts_at >= %(lo)s AND a.starts_at < %(hi)s
   AND (w.staff_id IS NULL OR a.staff_id = w.staff_id)
   AND (w.location_id IS NULL OR a.location_id = w.location_id)
   AND a.staff_id = ANY (%(staff_ids)s::uuid[])
  JOIN staff s ON s.tenant_id = t.id AND s.id = a.staff_id AND s.active
 CROSS JOIN LATERAL (SELECT a.starts_at AT TIME ZONE coalesce(s.timezone, (
                        SELECT l.timezone FROM locations l WHERE l.tenant_id = s.tenant_id AND l.id = s.location_id),
                        t.timezone) AS at) z
 WHERE t.id = %(tenant_id)s
   AND (a.held_until IS NULL OR a.held_until <= now())
   AND a.seats_left - slotmill_held_seats(a.tenant_id, a.staff_id, a.service_id, a.starts_at, v.seats) >= 1
   AND a.starts_at >= slotmill_bookable_from(t.settings, v.min_notice_minutes)
   AND a.starts_at < slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days)
   AND z.at::date BETWEEN w.from_date AND w.to_date
   AND (w.time_windows IS NULL
        OR w.time_windows @> (extract(hour FROM z.at) * 60 + extract(minute FROM z.at))::integer)
   AND NOT EXISTS (SELECT 1 FROM waitlist_matches m
                    WHERE m.tenant_id = w.tenant_id AND m.entry_id = w.id AND m.slot_id = a.id)
   -- a slot told to an entry goes to nobody else while it stays free: only once it has been
   -- booked or held again since (and freed once more) is it news for the next entry
   AND NOT EXISTS (SELECT 1 FROM waitlist_matches m
                    WHERE m.tenant_id = t.id AND m.slot_id = a.id
                      AND NOT EXISTS (SELECT 1 FROM bookings b
                                       WHERE b.tenant_id = t.id AND b.staff_id = a.staff_id
                                         AND b.created_at > m.matched_at
                                         AND b.starts_at < a.ends_at AND b.ends_at > a.starts_at))
 ORDER BY w.created_at, w.id, a.starts_at, s.priority, a.staff_id
 LIMIT %(limit)s;

-- name: record_match
-- The entry is told: the match (once per entry and slot) and its waitlist.matched event.
WITH m AS (
    INSERT INTO waitlist_matches (tenant_id, entry_id, slot_id, staff_id, service_id, starts_at, hold_id)
    VALUES (%(tenant_id)s, %(entry_id)s, %(slot_id)s, %(staff_id)s, %(service_id)s, %(starts_at)s, %(hold_id)s)
    ON CONFLICT DO NOTHING
    RETURNING tenant_id, entry_id
)
INSERT INTO events (tenant_id, type, data)
SELECT m.tenant_id, 'waitlist.matched',
       jsonb_strip_nulls(jsonb_build_object(
           'entry_id', m.entry_id, 'slot_id', %(slot_id)s::text, 'service_id', %(service_id)s::uuid,
           'staff_id', %(staff_id)s::uuid, 'location_id', %(location_id)s::uuid,
           'starts_at', slotmill_instant(%(starts_at)s), 'ends_at', slotmill_instant(%(ends_at)s),
           'contact_ref', %(contact_ref)s::text, 'hold_id', %(hold_id)s::uuid,
           'hold_expires_at', %(hold_expires_at)s::text))
  FROM m
RETURNING id;

-- name: match_done
UPDATE events SET match_pending = false WHERE tenant_id = %(tenant_id)s AND id = %(event_id)s;
