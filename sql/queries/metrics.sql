-- owner: slotmill.api.metrics
-- Gauges read at scrape time (api/metrics.py): the recompute queue, as the database has it.

-- name: queue_gauges
-- Due requests and the age of the oldest, failed ones waiting out a back-off, parked ones.
SELECT count(*) FILTER (WHERE last_error IS NULL) AS due,
       coalesce(extract(epoch FROM clock_timestamp() - min(requested_at) FILTER (WHERE last_error IS NULL)), 0)::float8
           AS oldest_due_s,
       count(*) FILTER (WHERE last_error IS NOT NULL AND isfinite(not_before)) AS retrying,
       count(*) FILTER (WHERE last_error IS NOT NULL AND NOT isfinite(not_before)) AS parked
  FROM recompute_requests;
