-- Calendar feeds (docs/architecture.md#calendar-feeds): an ICS URL per staff member, synced by the worker into
-- busy_times (source 'feed:<feed id>', external_id UID + recurrence id). The feed row keeps
-- the last validators (conditional GET) and the last result, so a failure records why and
-- changes nothing else.

CREATE TABLE calendar_feeds (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id          uuid NOT NULL,
    url               text NOT NULL CONSTRAINT calendar_feeds_url_valid CHECK (url ~ '^(https?|webcal)://\S+$' AND length(url) <= 2000),
    name              text NOT NULL DEFAULT '',
    refresh_minutes   integer NOT NULL DEFAULT 15 CONSTRAINT calendar_feeds_refresh_valid CHECK (refresh_minutes BETWEEN 1 AND 10080),
    active            boolean NOT NULL DEFAULT true,
    -- the validators of the last 200 answer, sent back as If-None-Match / If-Modified-Since
    etag              text,
    last_modified     text,
    -- due when next_sync_at <= now(); a write of url or staff_id makes it due at once
    next_sync_at      timestamptz NOT NULL DEFAULT now(),
    -- the last attempt, and the last one that succeeded (replaced or found unchanged)
    last_sync_at      timestamptz,
    last_success_at   timestamptz,
    -- failed attempts since the last success: the retry backs off with them
    failures          integer NOT NULL DEFAULT 0,
    -- 'ok' (replaced), 'not_modified' (304 or the same body), 'error' (nothing changed)
    last_status       text CONSTRAINT calendar_feeds_last_status_valid CHECK (last_status IN ('ok', 'not_modified', 'error')),
    last_http_status  integer,
    last_error        text,
    -- busy_times rows the last successful sync left
    busy_count        integer NOT NULL DEFAULT 0,
    -- sha256 of the last body synced: an unchanged body served without validators costs no write
    body_sha256       text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT calendar_feeds_one_url UNIQUE (tenant_id, staff_id, url),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
-- the worker's claim: active feeds that are due, across tenants, oldest due first
CREATE INDEX calendar_feeds_due ON calendar_feeds (next_sync_at) WHERE active;

-- A feed's busy times belong to it: deleting the feed deletes them, and pointing it at
-- another staff member or URL drops them and the validators, so the next sync starts over.
CREATE FUNCTION calendar_feeds_drop_busy() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM busy_times WHERE tenant_id = OLD.tenant_id AND source = 'feed:' || OLD.id;
    RETURN NULL;
END $$;

CREATE FUNCTION calendar_feeds_start_over() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.etag := NULL;
    NEW.last_modified := NULL;
    NEW.body_sha256 := NULL;
    NEW.busy_count := 0;
    NEW.failures := 0;
    NEW.next_sync_at := now();
    RETURN NEW;
END $$;

CREATE TRIGGER calendar_feeds_start_over BEFORE UPDATE OF staff_id, url ON calendar_feeds
    FOR EACH ROW WHEN (OLD.staff_id <> NEW.staff_id OR OLD.url <> NEW.url)
    EXECUTE FUNCTION calendar_feeds_start_over();
CREATE TRIGGER calendar_feeds_moved AFTER UPDATE OF staff_id, url ON calendar_feeds
    FOR EACH ROW WHEN (OLD.staff_id <> NEW.staff_id OR OLD.url <> NEW.url)
    EXECUTE FUNCTION calendar_feeds_drop_busy();
CREATE TRIGGER calendar_feeds_deleted AFTER DELETE ON calendar_feeds
    FOR EACH ROW EXECUTE FUNCTION calendar_feeds_drop_busy();
