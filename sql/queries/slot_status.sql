-- owner: slotmill.api.slot_status
-- Why a start a booking page showed is not offered any more, in the words a customer needs:
-- someone took it, or the business changed its schedule. Never who, nor the business's
-- reason (time off, a calendar event): only which of the two.

-- name: slot_status
-- 'available' (still offered to one of the staff), 'full' (the group session has no seat left), 'taken' (a customer's live hold or booking is in its way), else 'unavailable' (the schedule no longer offers it); flags name what does not exist.
WITH t AS (
    SELECT t.id, t.settings, t.horizon_days
      FROM tenants t
     WHERE t.slug = %(slug)s
), v AS (
    SELECT v.id, v.seats, v.min_notice_minutes, v.max_advance_days,
           slotmill_slot_blocked(%(starts_at)s::timestamptz,
                                 %(starts_at)s::timestamptz + make_interval(mins => v.duration_minutes),
                                 v.buffer_before_minutes, v.buffer_after_minutes) AS blocked
      FROM services v
      JOIN t ON v.tenant_id = t.id
     WHERE v.id = %(service_id)s AND v.active
), s AS (
    SELECT s.id
      FROM staff s
      JOIN t ON s.tenant_id = t.id
     WHERE s.id = ANY (%(staff_ids)s::uuid[])
), live AS (
    -- the live bookings of those staff members in the start's way (blocked ranges overlap)
    -- own_key: the key that staff member's session at this start would have (a group
    -- session is one staff member's: migration 0015)
    SELECT b.staff_id, b.seats, b.session_key,
           slotmill_session_key(b.staff_id, v.id, %(starts_at)s::timestamptz, v.seats) AS own_key
      FROM bookings b, t, v
     WHERE b.tenant_id = t.id AND b.staff_id IN (SELECT id FROM s)
       AND b.blocked && v.blocked
       AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > now()))
)
SELECT NOT EXISTS (SELECT 1 FROM t) AS no_tenant,
       NOT EXISTS (SELECT 1 FROM v) AS no_service,
       CASE
           WHEN EXISTS (
               SELECT 1
                 FROM availability_slots a, t, v
                WHERE a.tenant_id = t.id AND a.staff_id IN (SELECT id FROM s) AND a.service_id = v.id
                  AND a.starts_at = %(starts_at)s::timestamptz
                  AND (a.held_until IS NULL OR a.held_until <= now())
                  AND a.seats_left > slotmill_held_seats(t.id, a.staff_id, v.id, a.starts_at, v.seats)
                  AND a.starts_at >= slotmill_bookable_from(t.settings, v.min_notice_minutes)
                  AND a.starts_at < slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days))
               THEN 'available'
           WHEN EXISTS (
               -- held to the last seat the table shows
               SELECT 1
                 FROM availability_slots a, t, v
                WHERE v.seats > 1
                  AND a.tenant_id = t.id AND a.staff_id IN (SELECT id FROM s) AND a.service_id = v.id
                  AND a.starts_at = %(starts_at)s::timestamptz
                  AND a.seats_left <= slotmill_held_seats(t.id, a.staff_id, v.id, a.starts_at, v.seats))
             OR EXISTS (
               -- or booked to the last seat
               SELECT 1
                 FROM live l, v
                WHERE v.seats > 1 AND l.session_key = l.own_key
                GROUP BY l.staff_id
               HAVING sum(l.seats) >= max(v.seats))
               THEN 'full'
           WHEN EXISTS (SELECT 1 FROM live l WHERE l.session_key IS DISTINCT FROM l.own_key)
             OR EXISTS (
               -- a room or machine the service needs, taken by a booking of anyone
               SELECT 1
                 FROM booking_resources br
                 JOIN resources r ON r.tenant_id = br.tenant_id AND r.id = br.resource_id
                 JOIN bookings b ON b.tenant_id = br.tenant_id AND b.id = br.booking_id, t, v
                WHERE br.tenant_id = t.id AND br.live AND br.blocked && v.blocked
                  AND br.session_key IS DISTINCT FROM slotmill_session_key(b.staff_id, v.id, %(starts_at)s::timestamptz, v.seats)
                  AND r.kind IN (SELECT sr.kind FROM service_resources sr
                                  WHERE sr.tenant_id = t.id AND sr.service_id = v.id)
                  AND (b.status = 'confirmed' OR b.expires_at > now()))
               THEN 'taken'
           ELSE 'unavailable'
       END AS status;
