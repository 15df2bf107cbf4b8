-- owner: slotmill.materializer.bookings
-- The booking lifecycle (materializer/bookings.py): the public hold and release (async
-- pool), the host's confirm, cancel and reschedule (one transaction each, sync connection),
-- and the expiry clean-up.
--
-- Locking (sql/schema.sql, section "Locks"): each statement sequence takes the staff
-- member's advisory lock in a statement of its own BEFORE the statement that reads and
-- writes slots, so that statement's snapshot is taken after the lock and sees the slot rows
-- a concurrent recompute just committed.
--
-- Hold paths maintain availability_slots.held_until themselves and say so with
-- slotmill.holds_applied = 'on' (set_config(..., true) is SET LOCAL), so the bookings
-- triggers enqueue no recompute for hold-only transitions.

-- name: create_hold
-- A hold by %(slot_id)s, or by %(service_id)s + %(starts_at)s + %(staff_id)s: lock the staff
-- member, check the slot is visible (SPEC §6), insert the held booking, hide the
-- overlapping slots. One function call (migration 0005 says why).
-- Past the table's end (materializer/beyond.py) it names the slot, beyond_*, for the engine
-- to judge while this transaction holds the staff lock; then hold_beyond writes it.
SELECT no_tenant, no_service, no_staff, no_slot, hold, beyond_tenant, beyond_staff, beyond_service, beyond_start
  FROM slotmill_hold(%(slug)s::text, %(slot_id)s::text, %(service_id)s::uuid,
                     %(starts_at)s::timestamptz, %(staff_id)s::uuid, %(session_id)s::text, %(seats)s::integer);

-- name: hold_beyond
-- A hold past the table's end that the engine found visible (materializer/beyond.py): the
-- same write as a hold of a table row, in the transaction that holds the staff lock. It
-- queues a recompute of the staff member, so readers' versions move.
SELECT slotmill_hold_insert(t.id, t.settings, %(staff_id)s::uuid, %(service_id)s::uuid, %(location_id)s::uuid,
                            %(starts_at)s::timestamptz, %(ends_at)s::timestamptz, %(seats)s::integer,
                            %(session_id)s::text, true)
  FROM tenants t
 WHERE t.id = %(tenant_id)s;

-- name: hold_candidates
-- A hold without a staff member: who has a visible slot of %(service_id)s at exactly
-- %(starts_at)s with %(seats)s seats left, in the any-staff order of read_slots_by_time.
-- Past the table's end (`beyond`: where the engine must say who) the caller asks again with
-- the staff the engine found, %(beyond_staff)s.
WITH t AS (
    SELECT id, timezone, horizon_days, settings
      FROM tenants
     WHERE slug = %(slug)s
), v AS (
    SELECT v.min_notice_minutes, v.max_advance_days, v.seats
      FROM t JOIN services v ON v.tenant_id = t.id
     WHERE v.id = %(service_id)s AND v.active
), visible AS (
    SELECT a.staff_id, a.starts_at
      FROM t
     CROSS JOIN v
      JOIN availability_slots a
        ON a.tenant_id = t.id AND a.service_id = %(service_id)s
       AND a.starts_at = %(starts_at)s::timestamptz
     WHERE (a.held_until IS NULL OR a.held_until <= now())
       AND a.seats_left - slotmill_held_seats(a.tenant_id, a.staff_id, a.service_id, a.starts_at, v.seats) >= %(seats)s
       AND a.starts_at >= slotmill_bookable_from(t.settings, v.min_notice_minutes)
       AND a.starts_at < slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days)
    UNION
    SELECT b.id, %(starts_at)s::timestamptz FROM unnest(%(beyond_staff)s::uuid[]) AS b (id)
), crew AS (
    SELECT s.id, s.priority, coalesce(s.timezone, l.timezone, t.timezone) AS zone
      FROM t
      JOIN staff s ON s.tenant_id = t.id AND s.active
      LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
     WHERE s.id IN (SELECT staff_id FROM visible)
), booked AS (
    SELECT c.id AS staff_id, count(*) AS n
      FROM crew c
      JOIN bookings b
        ON b.tenant_id = (SELECT id FROM t) AND b.staff_id = c.id AND b.status = 'confirmed'
       AND b.starts_at >= %(starts_at)s::timestamptz - interval '48 hours'
       AND b.starts_at < %(starts_at)s::timestamptz + interval '48 hours'
     WHERE (b.starts_at AT TIME ZONE c.zone)::date = (%(starts_at)s::timestamptz AT TIME ZONE c.zone)::date
     GROUP BY c.id
)
SELECT NOT EXISTS (SELECT FROM t) AS no_tenant,
       NOT EXISTS (SELECT FROM v) AS no_service,
       (SELECT coalesce(array_agg(x.staff_id ORDER BY c.priority, coalesce(k.n, 0), x.staff_id), '{}')
          FROM visible x
          JOIN crew c ON c.id = x.staff_id
          LEFT JOIN booked k ON k.staff_id = x.staff_id) AS staff_ids,
       (SELECT id FROM t) AS tenant_id,
       (SELECT %(starts_at)s::timestamptz >= slotmill_table_end(t.id, t.timezone, t.horizon_days)
               AND %(starts_at)s::timestamptz >= slotmill_bookable_from(t.settings, v.min_notice_minutes)
               AND %(starts_at)s::timestamptz < slotmill_bookable_until(t.settings, t.horizon_days, v.max_advance_days)
          FROM t, v) AS beyond;

-- name: lock_hold_staff
-- Release, step 1: the advisory lock of the hold's staff member.
SELECT pg_advisory_xact_lock(slotmill_staff_lock_key(b.tenant_id, b.staff_id))
  FROM tenants t
  JOIN bookings b ON b.tenant_id = t.id AND b.id = %(hold_id)s
 WHERE t.slug = %(slug)s;

-- name: release_hold
-- Release, step 2: a held booking becomes cancelled (expired if it already lapsed), and
-- the slots it hid get held_until recomputed from that staff member's other live holds.
-- `status` is the booking's status before; `released` whether this statement changed it.
WITH t AS (
    SELECT id FROM tenants WHERE slug = %(slug)s
), before AS (
    SELECT b.status
      FROM t JOIN bookings b ON b.tenant_id = t.id AND b.id = %(hold_id)s
), cfg AS (
    SELECT set_config('slotmill.holds_applied', 'on', true) AS applied
), released AS (
    UPDATE bookings b
       SET status = CASE WHEN b.expires_at > now() THEN 'cancelled' ELSE 'expired' END,
           cancelled_at = CASE WHEN b.expires_at > now() THEN now() END
      FROM t, cfg
     WHERE b.tenant_id = t.id AND b.id = %(hold_id)s AND b.status = 'held'
    RETURNING b.tenant_id, b.id, b.staff_id, b.blocked
), unhidden AS (
    UPDATE availability_slots a
       SET held_until = (
               SELECT max(h.expires_at)
                 FROM bookings h
                WHERE h.tenant_id = a.tenant_id AND h.staff_id = a.staff_id
                  AND h.status = 'held' AND h.expires_at > now() AND h.id <> r.id
                  AND h.blocked && slotmill_slot_blocked(a.starts_at, a.ends_at, v.buffer_before_minutes, v.buffer_after_minutes)
                  -- a hold of the slot's own session lowers its seats, never hides it
                  AND h.session_key IS DISTINCT FROM slotmill_session_key(a.staff_id, a.service_id, a.starts_at, v.seats))
      FROM released r, services v
     WHERE a.tenant_id = r.tenant_id AND a.staff_id = r.staff_id
       AND a.held_until IS NOT NULL
       AND a.starts_at > lower(r.blocked) - interval '48 hours'
       AND a.starts_at < upper(r.blocked) + interval '24 hours'
       AND v.tenant_id = a.tenant_id AND v.id = a.service_id
       AND slotmill_slot_blocked(a.starts_at, a.ends_at, v.buffer_before_minutes, v.buffer_after_minutes) && r.blocked
)
SELECT NOT EXISTS (SELECT FROM t) AS no_tenant,
       (SELECT status FROM before) AS status,
       EXISTS (SELECT FROM released) AS released;

-- name: booking_staff
-- Whose advisory lock to take before locking the booking row (the bookings trigger takes
-- the staff lock first and may then update a booking row: same order here, no deadlock).
SELECT staff_id
  FROM bookings
 WHERE tenant_id = %(tenant_id)s AND id = %(booking_id)s;

-- name: booking_for_update
SELECT id, staff_id, service_id, location_id, starts_at, ends_at, status, expires_at, seats,
       customer_ref, notes, contact, reschedule_count, rescheduled_from, confirmed_at, cancelled_at,
       status = 'held' AND expires_at <= now() AS lapsed,
       now() AS now
  FROM bookings
 WHERE tenant_id = %(tenant_id)s AND id = %(booking_id)s
   FOR UPDATE;

-- name: expire_hold
-- A lapsed hold found by confirm: mark it (it already hides nothing: held_until <= now()).
WITH cfg AS (
    SELECT set_config('slotmill.holds_applied', 'on', true) AS applied
)
UPDATE bookings b
   SET status = 'expired'
  FROM cfg
 WHERE b.tenant_id = %(tenant_id)s AND b.id = %(booking_id)s AND b.status = 'held';

-- name: confirm_hold
-- Held -> confirmed (SPEC §7). Also the new booking of a reschedule (count, origin and
-- customer carried over).
UPDATE bookings
   SET status = 'confirmed', confirmed_at = now(), expires_at = NULL,
       customer_ref = %(customer_ref)s, notes = %(notes)s, contact = %(contact)s,
       reschedule_count = %(reschedule_count)s, rescheduled_from = %(rescheduled_from)s
 WHERE tenant_id = %(tenant_id)s AND id = %(booking_id)s AND status = 'held'
RETURNING id, staff_id, service_id, location_id, starts_at, ends_at, status, seats, customer_ref, notes,
          contact, confirmed_at, cancelled_at, reschedule_count, rescheduled_from;

-- name: remove_blocked_slots
-- After a confirm: the slots of that staff member (every service) that the booking makes
-- impossible, and the seats it takes from its own session's slot. The recompute the
-- trigger enqueued would do this too (and everything farther: resources of other staff,
-- limits, travel); this makes the confirm visible to readers at once.
WITH b AS (
    SELECT * FROM bookings WHERE tenant_id = %(tenant_id)s AND id = %(booking_id)s
), session AS (
    UPDATE availability_slots a
       SET seats_left = a.seats_left - b.seats
      FROM b
     WHERE a.tenant_id = b.tenant_id AND a.staff_id = b.staff_id AND a.starts_at = b.starts_at
       AND a.service_id = b.service_id AND b.session_key LIKE 'g:%%'
       AND a.seats_left - b.seats > 0  -- else deleted below: never one row twice
)
DELETE FROM availability_slots a
 USING b, services v
 WHERE a.tenant_id = b.tenant_id AND a.staff_id = b.staff_id
   AND a.starts_at > lower(b.blocked) - interval '48 hours'
   AND a.starts_at < upper(b.blocked) + interval '24 hours'
   AND v.tenant_id = a.tenant_id AND v.id = a.service_id
   AND slotmill_slot_blocked(a.starts_at, a.ends_at, v.buffer_before_minutes, v.buffer_after_minutes) && b.blocked
   AND (slotmill_session_key(a.staff_id, a.service_id, a.starts_at, v.seats) IS DISTINCT FROM b.session_key
        OR a.seats_left - b.seats <= 0);

-- name: cancel_booking
-- Confirmed -> cancelled. The bookings trigger enqueues the recompute that brings the
-- freed slots back.
UPDATE bookings
   SET status = 'cancelled', cancelled_at = now()
 WHERE tenant_id = %(tenant_id)s AND id = %(booking_id)s AND status = 'confirmed'
RETURNING id, staff_id, service_id, location_id, starts_at, ends_at, status, seats, customer_ref, notes,
          contact, confirmed_at, cancelled_at, reschedule_count, rescheduled_from;

-- name: expire_holds
-- Retire lapsed holds (a batch at a time). The caller sets slotmill.holds_applied, so the
-- bookings trigger enqueues nothing: an expired hold hides nothing already (held_until is
-- in the past), and the slot table needs no change.
WITH due AS (
    SELECT tenant_id, id
      FROM bookings
     WHERE status = 'held' AND expires_at <= clock_timestamp()
     ORDER BY expires_at
     LIMIT %(limit)s
       FOR UPDATE SKIP LOCKED
)
UPDATE bookings b
   SET status = 'expired'
  FROM due
 WHERE b.tenant_id = due.tenant_id AND b.id = due.id;
