-- owner: slotmill.materializer.locks
-- The per-staff advisory lock (the protocol is declared once: sql/schema.sql, section
-- "Locks"). Every writer of a staff member's bookings or slots takes it first.

-- name: lock_staff
-- Serialize with every other writer of these staff members' bookings and slots (the same
-- key the bookings trigger takes). Sorted, so two lockers never deadlock.
SELECT pg_advisory_xact_lock(slotmill_staff_lock_key(%(tenant_id)s, s))
  FROM unnest(%(staff_ids)s::uuid[]) AS s
 ORDER BY s;

-- name: try_lock_staff
-- The staff members of %(staff_ids)s whose locks were free and are now held by this
-- transaction. Never waits: a recompute of many staff members takes what it can and leaves
-- the rest for a transaction of their own, so it can never deadlock with a host that
-- writes several staff members' bookings in any order.
SELECT s AS staff_id
  FROM unnest(%(staff_ids)s::uuid[]) AS s
 WHERE pg_try_advisory_xact_lock(slotmill_staff_lock_key(%(tenant_id)s, s))
 ORDER BY s;
