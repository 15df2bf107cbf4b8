-- owner: slotmill.materializer.verify
-- What the table holds, for `slotmill verify` (materializer/verify.py).

-- name: read_window
-- What the table holds for a window, for verify.
SELECT id, staff_id, service_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free
  FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND (%(staff_ids)s::uuid[] IS NULL OR staff_id = ANY(%(staff_ids)s::uuid[]))
   AND starts_at >= %(lo)s AND starts_at < %(hi)s;
