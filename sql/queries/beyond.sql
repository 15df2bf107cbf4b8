-- owner: slotmill.materializer.beyond
-- Slots past the table's end (materializer/beyond.py): what the engine's slots need from
-- the database beyond the rules the loader reads.

-- name: held_seats
-- Seats of each candidate's session of %(service_id)s at %(starts_at)s held right now by
-- live holds (slotmill_held_seats: 0 for a one-seat service).
SELECT s.id, slotmill_held_seats(%(tenant_id)s, s.id, %(service_id)s, %(starts_at)s::timestamptz, v.seats)
  FROM unnest(%(staff_ids)s::uuid[]) AS s (id)
 CROSS JOIN services v
 WHERE v.tenant_id = %(tenant_id)s AND v.id = %(service_id)s;
