-- owner: slotmill.materializer.refresh
-- Writing availability_slots: replace a window of slots atomically (binary COPY, or a diff
-- through a staging table for large windows), and the bookkeeping of refreshes. The other
-- writer of availability_slots is the booking lifecycle (bookings.sql: hide on hold,
-- unhide on release, remove on confirm); both take the staff lock first.

-- name: delete_window
-- The slots a recompute replaces: these staff members' starts in [lo, hi).
DELETE FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND staff_id = ANY(%(staff_ids)s::uuid[])
   AND starts_at >= %(lo)s AND starts_at < %(hi)s;

-- name: delete_outside
-- A full refresh: slots of staff members no longer materialized, and slots outside the
-- horizon (the past, or beyond a shortened horizon).
DELETE FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND (staff_id <> ALL(%(staff_ids)s::uuid[]) OR starts_at < %(lo)s OR starts_at >= %(hi)s);

-- name: copy_slots
COPY availability_slots (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free) FROM STDIN (FORMAT BINARY);

-- name: record_refresh
INSERT INTO refresh_runs (tenant_id, kind, started_at, horizon_start, horizon_end, staff_count, slots_written, drift)
VALUES (%(tenant_id)s, %(kind)s, %(started_at)s, %(horizon_start)s, %(horizon_end)s, %(staff_count)s, %(slots_written)s, %(drift)s);

-- name: set_refresh_drift
-- The drift a nightly run found before repairing it, on the run's refresh_runs row.
UPDATE refresh_runs
   SET drift = %(drift)s
 WHERE tenant_id = %(tenant_id)s
   AND id = (SELECT max(id) FROM refresh_runs WHERE tenant_id = %(tenant_id)s AND kind = 'full');

-- name: delete_tenant_slots
-- A deleted tenant's slots (availability_slots has no foreign key to tenants).
DELETE FROM availability_slots
 WHERE tenant_id = %(tenant_id)s
   AND NOT EXISTS (SELECT 1 FROM tenants WHERE id = %(tenant_id)s);

-- Large windows (a full refresh) are applied as a diff: the new slots are COPYed into a
-- session-local staging table, and only rows that changed are deleted and inserted. A
-- nightly refresh that rolls the horizon by a day rewrites about 1/60 of the table
-- instead of all of it, and unchanged rows (and their index entries) stay put.

-- name: create_stage
-- The staging table, once per session; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS slot_stage (LIKE availability_slots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;

-- name: copy_stage
COPY slot_stage (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, held_until, seats_left, resource_free) FROM STDIN (FORMAT BINARY);

-- name: analyze_stage
-- Temporary tables are never auto-analyzed; without statistics the diff below would be
-- planned as nested loops over a table assumed tiny.
ANALYZE slot_stage;

-- name: no_nested_loops
-- The diff compares two sets of tens of thousands of rows: a nested loop is never the right
-- plan, and a planner without statistics for availability_slots (a refresh right after the
-- first, before autovacuum has analyzed it) chose one that ran for minutes. For this
-- transaction only.
SET LOCAL enable_nestloop = off;

-- name: diff_delete
-- Rows of the window that the new computation does not contain exactly.
DELETE FROM availability_slots a
 WHERE a.tenant_id = %(tenant_id)s
   AND a.staff_id = ANY(%(staff_ids)s::uuid[])
   AND a.starts_at >= %(lo)s AND a.starts_at < %(hi)s
   AND NOT EXISTS (
       SELECT FROM slot_stage s
        WHERE s.staff_id = a.staff_id AND s.starts_at = a.starts_at AND s.service_id = a.service_id
          AND s.id = a.id AND s.ends_at = a.ends_at
          AND s.location_id IS NOT DISTINCT FROM a.location_id
          AND s.held_until IS NOT DISTINCT FROM a.held_until
          AND s.seats_left = a.seats_left
          AND s.resource_free IS NOT DISTINCT FROM a.resource_free);

-- name: diff_insert
-- New rows: after diff_delete, every row left in the window equals its staged twin.
INSERT INTO availability_slots (tenant_id, id, staff_id, service_id, location_id, starts_at, ends_at, held_until,
                                seats_left, resource_free)
SELECT s.tenant_id, s.id, s.staff_id, s.service_id, s.location_id, s.starts_at, s.ends_at, s.held_until,
       s.seats_left, s.resource_free
  FROM slot_stage s
 WHERE NOT EXISTS (
       SELECT FROM availability_slots a
        WHERE a.tenant_id = s.tenant_id AND a.staff_id = s.staff_id
          AND a.starts_at = s.starts_at AND a.service_id = s.service_id);

-- name: record_failures
-- Staff members whose recompute failed (a stored rule the engine cannot compute): one
-- failed request each, saying why, which the worker retries with back-off and parks after
-- a few attempts (jobs/queue.py), and admin status shows. An existing failed request of
-- the staff member gets the new reason instead of a second one being added. Rows a worker
-- holds right now are skipped, never waited for: the caller may hold staff locks, and
-- that worker may be waiting for one of them (sql/schema.sql, section "Locks").
WITH f AS (
    SELECT * FROM unnest(%(staff_ids)s::uuid[], %(errors)s::text[]) AS f (staff_id, error)
), failed AS (
    SELECT r.id, r.staff_id
      FROM recompute_requests r
     WHERE r.tenant_id = %(tenant_id)s AND r.staff_id IN (SELECT staff_id FROM f) AND r.last_error IS NOT NULL
       FOR UPDATE SKIP LOCKED
), updated AS (
    UPDATE recompute_requests r
       SET last_error = f.error
      FROM f, failed
     WHERE r.tenant_id = %(tenant_id)s AND r.id = failed.id AND f.staff_id = failed.staff_id
)
INSERT INTO recompute_requests (tenant_id, staff_id, during, reason, attempts, not_before, last_error)
SELECT %(tenant_id)s, f.staff_id, NULL, %(reason)s, 1, clock_timestamp() + interval '30 seconds', f.error
  FROM f
 WHERE NOT EXISTS (SELECT 1 FROM recompute_requests r
                    WHERE r.tenant_id = %(tenant_id)s AND r.staff_id = f.staff_id AND r.last_error IS NOT NULL);

-- name: clear_failures
-- A full refresh recomputed these staff members: failed requests made before it started
-- are done (what they asked for is in the refresh's result). Rows a worker holds are left
-- to it, never waited for (see record_failures).
DELETE FROM recompute_requests
 WHERE id IN (SELECT id
                FROM recompute_requests
               WHERE tenant_id = %(tenant_id)s
                 AND staff_id = ANY(%(staff_ids)s::uuid[])
                 AND last_error IS NOT NULL
                 AND requested_at < %(started_at)s
                 FOR UPDATE SKIP LOCKED);
