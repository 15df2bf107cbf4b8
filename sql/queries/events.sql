-- owner: slotmill.api.events
-- Live updates (api/events.py): the public stream of slot changes, read from the outbox.
-- Only the range and the services of a change leave the database: never a booking's
-- customer, staff member or id.

-- name: stream_start
-- The tenant a stream is for, whether the service filter is one of its services, and the
-- newest number handed out (where a stream without Last-Event-ID starts).
SELECT t.id AS tenant_id,
       %(service_id)s::uuid IS NULL
       OR EXISTS (SELECT 1 FROM services v WHERE v.tenant_id = t.id AND v.id = %(service_id)s::uuid) AS service_found,
       coalesce((SELECT s.last_seq FROM event_sequences s WHERE s.tenant_id = t.id), 0) AS last_seq
  FROM tenants t
 WHERE t.slug = %(slug)s;

-- name: slot_changes
-- Numbered events of each tenant after its cursor, in order, as public slot changes: a
-- slots.changed as it is; a booking change as the services of its staff member over the
-- starts whose blocked range can meet the booking's. Other events (NULL service_ids) only
-- move the cursor.
SELECT c.tenant_id, e.seq, ch.service_ids, ch.lo, ch.hi
  FROM unnest(%(tenant_ids)s::uuid[], %(after)s::bigint[]) AS c (tenant_id, after)
 CROSS JOIN LATERAL (
       SELECT e.seq, e.type, e.data
         FROM events e
        WHERE e.tenant_id = c.tenant_id AND e.seq > c.after
        ORDER BY e.seq
        LIMIT %(limit)s) e
  LEFT JOIN LATERAL (
       SELECT ARRAY(SELECT jsonb_array_elements_text(e.data -> 'service_ids')) AS service_ids,
              e.data ->> 'from' AS lo, e.data ->> 'to' AS hi
        WHERE e.type = 'slots.changed'
       UNION ALL
       SELECT array_agg(ss.service_id::text ORDER BY ss.service_id),
              slotmill_instant(b.lo - make_interval(mins => max(v.duration_minutes + v.buffer_after_minutes))),
              slotmill_instant(b.hi + make_interval(mins => max(v.buffer_before_minutes)))
         FROM (SELECT (e.data ->> 'starts_at')::timestamptz - make_interval(mins => bv.buffer_before_minutes) AS lo,
                      (e.data ->> 'ends_at')::timestamptz + make_interval(mins => bv.buffer_after_minutes) AS hi
                 FROM services bv
                WHERE bv.tenant_id = c.tenant_id AND bv.id = (e.data ->> 'service_id')::uuid) b
         JOIN staff_services ss ON ss.tenant_id = c.tenant_id AND ss.staff_id = (e.data ->> 'staff_id')::uuid
         JOIN services v ON v.tenant_id = ss.tenant_id AND v.id = ss.service_id
        WHERE e.type LIKE 'booking.%%'
        GROUP BY b.lo, b.hi) ch ON true
 ORDER BY c.tenant_id, e.seq;
