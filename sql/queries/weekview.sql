-- owner: slotmill.weekview
-- `slotmill week` (slotmill/weekview.py): one staff member's week.

-- name: week_staff
-- The staff member's name and zone (theirs, else their location's, else the tenant's).
SELECT s.display_name, slotmill_staff_zone(s.tenant_id, s.id)
  FROM staff s
 WHERE s.tenant_id = %(tenant_id)s AND s.id = %(staff_id)s;

-- name: week_locations
-- Location names, to label working windows.
SELECT id, name FROM locations WHERE tenant_id = %(tenant_id)s;

-- name: week_bookings
-- The staff member's live bookings starting in the week (expired holds left out).
SELECT b.starts_at, b.ends_at, b.status, v.name, b.customer_ref
  FROM bookings b
  JOIN services v ON v.tenant_id = b.tenant_id AND v.id = b.service_id
 WHERE b.tenant_id = %(tenant_id)s AND b.staff_id = %(staff_id)s
   AND b.starts_at >= %(lo)s AND b.starts_at < %(hi)s
   AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > now()))
 ORDER BY b.starts_at;
