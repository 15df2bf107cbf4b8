-- owner: slotmill.materializer.outbox
-- The outbox (materializer/outbox.py): watching a recompute's window, numbering committed
-- events, retention. Booking events are written by the bookings triggers (migration 0010).

-- name: watch_slots
-- A recompute is about to replace these staff members' slots in [lo, hi): remember the
-- window and, for a short window, its fingerprint; at commit slot_watches_check compares
-- and writes slots.changed if anything a reader can see changed.
INSERT INTO slot_watches (tenant_id, staff_ids, during, before)
SELECT %(tenant_id)s, %(staff_ids)s::uuid[], w.during,
       CASE WHEN %(fingerprint)s THEN (
           SELECT coalesce(jsonb_agg(f), '[]'::jsonb)
             FROM slotmill_slot_fingerprint(%(tenant_id)s, %(staff_ids)s::uuid[], w.during) f) END
  FROM (SELECT tstzrange(%(lo)s::timestamptz, %(hi)s::timestamptz, '[)') AS during) w;

-- name: sequence_events
-- Number what has committed (one transaction at a time; -1: another is at it).
SELECT slotmill_sequence_events(%(limit)s);

-- name: prune_events
-- Retention: events (and their deliveries and attempts) older than the cut-off, except
-- deliveries still pending (and their events).
WITH old AS (
    SELECT e.tenant_id, e.id
      FROM events e
     WHERE e.created_at < %(before)s AND e.seq IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d
                        WHERE d.tenant_id = e.tenant_id AND d.event_id = e.id AND d.status = 'pending')
     ORDER BY e.created_at
     LIMIT %(limit)s
), attempts AS (
    DELETE FROM webhook_attempts a
     USING webhook_deliveries d, old
     WHERE d.tenant_id = old.tenant_id AND d.event_id = old.id
       AND a.tenant_id = d.tenant_id AND a.delivery_id = d.id
), deliveries AS (
    DELETE FROM webhook_deliveries d USING old WHERE d.tenant_id = old.tenant_id AND d.event_id = old.id
)
DELETE FROM events e USING old WHERE e.tenant_id = old.tenant_id AND e.id = old.id;
