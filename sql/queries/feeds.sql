-- owner: slotmill.jobs.feeds
-- Calendar feeds (jobs/feeds.py): claim a feed, replace its busy times, record the result.

-- name: feed_claim_due
-- The active feed due longest, locked for this sync: another worker skips it (each feed is
-- synced by one worker at a time), and a crash releases it with nothing changed.
SELECT f.tenant_id, f.id, f.staff_id, f.url, f.etag, f.last_modified, f.body_sha256,
       slotmill_staff_zone(f.tenant_id, f.staff_id) AS zone, t.horizon_days
  FROM calendar_feeds f
  JOIN tenants t ON t.id = f.tenant_id
 WHERE f.active AND f.next_sync_at <= now()
 ORDER BY f.next_sync_at
 LIMIT 1
   FOR UPDATE OF f SKIP LOCKED;

-- name: feed_claim_one
-- One feed, active or not, for a sync asked for by hand (waits for a worker's sync of it).
SELECT f.tenant_id, f.id, f.staff_id, f.url, f.etag, f.last_modified, f.body_sha256,
       slotmill_staff_zone(f.tenant_id, f.staff_id) AS zone, t.horizon_days
  FROM calendar_feeds f
  JOIN tenants t ON t.id = f.tenant_id
 WHERE f.tenant_id = %(tenant_id)s AND f.id = %(feed_id)s
   FOR UPDATE OF f;

-- name: feed_stage
-- This session's staging table of one sync's events (emptied at every commit).
CREATE TEMP TABLE IF NOT EXISTS feed_events (
    external_id  text PRIMARY KEY,
    during       tstzrange NOT NULL
) ON COMMIT DELETE ROWS;

-- name: feed_copy
COPY feed_events (external_id, during) FROM STDIN;

-- name: feed_remove_stale
-- The feed's busy times that the feed no longer has, or has at another time: a diff, so
-- an unchanged event queues no recompute.
DELETE FROM busy_times b
 WHERE b.tenant_id = %(tenant_id)s AND b.source = %(source)s
   AND NOT EXISTS (SELECT 1 FROM feed_events e
                    WHERE e.external_id = b.external_id AND e.during = b.during
                      AND b.staff_id = %(staff_id)s);

-- name: feed_add_new
-- The feed's events it did not have yet (what is left in busy_times is the same as here).
INSERT INTO busy_times (tenant_id, staff_id, during, source, external_id)
SELECT %(tenant_id)s, %(staff_id)s, e.during, %(source)s, e.external_id
  FROM feed_events e
    ON CONFLICT (tenant_id, source, external_id) DO NOTHING;

-- name: feed_record_ok
-- A sync that replaced the busy times, or found them unchanged: validators, counts, and
-- the next sync one interval from now.
UPDATE calendar_feeds f
   SET etag = %(etag)s, last_modified = %(last_modified)s, body_sha256 = %(body_sha256)s,
       last_sync_at = now(), last_success_at = now(), last_status = %(status)s,
       last_http_status = %(http_status)s, last_error = NULL, failures = 0,
       busy_count = (SELECT count(*) FROM busy_times b WHERE b.tenant_id = f.tenant_id AND b.source = %(source)s),
       next_sync_at = now() + make_interval(mins => f.refresh_minutes)
 WHERE f.tenant_id = %(tenant_id)s AND f.id = %(feed_id)s
RETURNING f.busy_count;

-- name: feed_record_error
-- A sync that changed nothing: why, and the next try after the interval, doubled for each
-- failure in a row (at most a day, or the interval when that is longer).
UPDATE calendar_feeds f
   SET last_sync_at = now(), last_status = 'error', last_http_status = %(http_status)s,
       last_error = %(error)s, failures = f.failures + 1,
       next_sync_at = now() + make_interval(mins => least(f.refresh_minutes * (2 ^ least(f.failures, 10)),
                                                           greatest(f.refresh_minutes, 1440))::integer)
 WHERE f.tenant_id = %(tenant_id)s AND f.id = %(feed_id)s;

-- name: feeds_of_tenant
-- A tenant's feeds with their staff member and last result (slotmill feeds list).
SELECT f.id, f.staff_id, s.display_name, f.url, f.name, f.active, f.refresh_minutes,
       f.last_status, f.last_http_status, f.last_error, f.last_sync_at, f.next_sync_at, f.busy_count
  FROM calendar_feeds f
  JOIN staff s ON s.tenant_id = f.tenant_id AND s.id = f.staff_id
 WHERE f.tenant_id = %(tenant_id)s
 ORDER BY s.display_name, f.url, f.id;
