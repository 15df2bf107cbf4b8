-- Events out (issue 14): the outbox of booking and slot changes with a per-tenant sequence,
-- signed webhooks with their delivery log, and the waitlist.
--
-- Writers insert events in their own transaction (triggers on bookings; the recompute's
-- slot watch, checked at commit); the worker numbers committed events per tenant
-- (slotmill_sequence_events), fans them out to webhook endpoints and delivers them; the
-- API streams slot changes to widgets. See docs/architecture.md, "Events".

-- ============================================================================================
-- The outbox
-- ============================================================================================

-- One row per event. `seq` is NULL until slotmill_sequence_events numbers it, after the
-- inserting transaction committed: numbers are handed out by one transaction at a time, in
-- commit order, so a reader that has seen seq n never later finds a new event below n
-- (an event whose transaction commits late gets a later number, it is never skipped).
CREATE TABLE events (
    tenant_id     uuid NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    seq           bigint,
    type          text NOT NULL,
    data          jsonb NOT NULL,
    -- the inserting transaction: a reschedule folds its own booking.cancelled away
    txid          xid8 NOT NULL DEFAULT pg_current_xact_id(),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    sequenced_at  timestamptz,
    -- a slots.changed event the waitlist has still to look at (materializer/waitlist.py)
    match_pending boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    -- a tenant's events in order (SSE resume, replay); NULLs (not yet numbered) repeat
    CONSTRAINT events_tenant_seq UNIQUE (tenant_id, seq)
);
-- the sequencer's work: events not numbered yet, oldest first
CREATE INDEX events_unsequenced ON events (id) WHERE seq IS NULL;
-- the waitlist matcher's work
CREATE INDEX events_match_pending ON events (id) WHERE match_pending;
-- retention: the oldest events first
CREATE INDEX events_by_created ON events (created_at);

-- The last number handed out per tenant; written only by slotmill_sequence_events.
CREATE TABLE event_sequences (
    tenant_id  uuid PRIMARY KEY,
    last_seq   bigint NOT NULL
);

-- Booking changes as events, for every writer (the API, the worker, a host's own SQL).
-- Statement-level with transition tables like the enqueue triggers: a bulk write is one
-- INSERT. The hold path (slotmill.holds_applied) sends no notification: NOTIFY serializes
-- committing transactions, and the worker's sequencer polls a few times a second anyway.
CREATE FUNCTION bookings_events() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_moved bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH ins AS (
            INSERT INTO events (tenant_id, type, data)
            SELECT r.tenant_id,
                   CASE WHEN r.status = 'held' THEN 'booking.held'
                        WHEN r.rescheduled_from IS NOT NULL THEN 'booking.rescheduled'
                        ELSE 'booking.confirmed' END,
                   slotmill_booking_event_data(r, NULL, false)
              FROM new_rows r
             WHERE r.status IN ('held', 'confirmed')
            RETURNING type
        )
        SELECT count(*), count(*) FILTER (WHERE type = 'booking.rescheduled') INTO v_count, v_moved FROM ins;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO events (tenant_id, type, data)
        SELECT r.tenant_id, 'booking.cancelled', slotmill_booking_event_data(r, r.status, true)
          FROM old_rows r
         WHERE r.status IN ('held', 'confirmed');
        GET DIAGNOSTICS v_count = ROW_COUNT;
        v_moved := 0;
    ELSE
        WITH ins AS (
            INSERT INTO events (tenant_id, type, data)
            SELECT c.tenant_id, c.type, c.data
              FROM (
                SELECT n.tenant_id, slotmill_booking_event_data(n, o.status, false) AS data,
                       CASE
                         WHEN n.status = 'confirmed' AND o.status <> 'confirmed' THEN
                              CASE WHEN n.rescheduled_from IS NOT NULL THEN 'booking.rescheduled' ELSE 'booking.confirmed' END
                         WHEN n.status = 'held' AND o.status NOT IN ('held', 'confirmed') THEN 'booking.held'
                         WHEN n.status = 'cancelled' AND o.status IN ('held', 'confirmed') THEN 'booking.cancelled'
                         WHEN n.status = 'expired' AND o.status = 'held' THEN 'booking.expired'
                         WHEN n.status = 'expired' AND o.status = 'confirmed' THEN 'booking.cancelled'
                         -- a confirmed booking moved in place (a host's UPDATE)
                         WHEN n.status = 'confirmed' AND o.status = 'confirmed'
                              AND (n.staff_id, n.starts_at, n.ends_at, n.location_id)
                                  IS DISTINCT FROM (o.staff_id, o.starts_at, o.ends_at, o.location_id)
                              THEN 'booking.rescheduled'
                       END AS type
                  FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
              ) c
             WHERE c.type IS NOT NULL
            RETURNING type
        )
        SELECT count(*), count(*) FILTER (WHERE type = 'booking.rescheduled') INTO v_count, v_moved FROM ins;
    END IF;
    IF v_moved > 0 THEN
        -- A reschedule is one event: the cancellation of the booking it replaces, made
        -- earlier in this transaction, is folded into it.
        DELETE FROM events e
         USING new_rows r
         WHERE e.seq IS NULL AND e.txid = pg_current_xact_id() AND e.type = 'booking.cancelled'
           AND r.rescheduled_from IS NOT NULL AND r.status = 'confirmed'
           AND e.tenant_id = r.tenant_id AND e.data ->> 'booking_id' = r.rescheduled_from::text;
    END IF;
    IF v_count > 0 AND coalesce(current_setting('slotmill.holds_applied', true), '') <> 'on' THEN
        PERFORM pg_notify('slotmill_outbox', '');
    END IF;
    RETURN NULL;
END $$;

-- What a booking event carries: the booking's place and time, its status before and after,
-- and the tenant's own customer_ref; never contact details or notes.
CREATE FUNCTION slotmill_booking_event_data(b bookings, p_previous text, p_deleted boolean) RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT jsonb_strip_nulls(jsonb_build_object(
        'booking_id', b.id,
        'status', CASE WHEN p_deleted THEN 'deleted' ELSE b.status END,
        'previous_status', p_previous,
        'staff_id', b.staff_id,
        'service_id', b.service_id,
        'location_id', b.location_id,
        'starts_at', slotmill_instant(b.starts_at),
        'ends_at', slotmill_instant(b.ends_at),
        'seats', b.seats,
        'customer_ref', b.customer_ref,
        'expires_at', CASE WHEN b.status = 'held' THEN slotmill_instant(b.expires_at) END,
        'rescheduled_from', b.rescheduled_from))
$$;

CREATE TRIGGER bookings_events_ins AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_events();
CREATE TRIGGER bookings_events_upd AFTER UPDATE ON bookings REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_events();
CREATE TRIGGER bookings_events_del AFTER DELETE ON bookings REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_events();

-- Slots of a window as they are now, per service: row count and an order-independent hash
-- of what a reader can see (the id names staff, service and start; a hold counts only while
-- it hides the slot). Two equal fingerprints: the window did not change for that service.
CREATE FUNCTION slotmill_slot_fingerprint(p_tenant uuid, p_staff uuid[], p_during tstzrange)
RETURNS TABLE (service_id uuid, n bigint, fp numeric)
LANGUAGE sql STABLE AS $$
    SELECT a.service_id, count(*),
           sum(hashtextextended(concat_ws('|', a.id, a.ends_at, a.location_id, a.seats_left, a.resource_free,
                                          CASE WHEN a.held_until > now() THEN a.held_until END), 0))
      FROM availability_slots a
     WHERE a.tenant_id = p_tenant AND a.staff_id = ANY (p_staff)
       AND a.starts_at >= lower(p_during) AND a.starts_at < upper(p_during)
     GROUP BY a.service_id
$$;

-- A recompute about to replace a window (materializer/outbox.py watch_slots, called by
-- materializer/refresh.py). `before` holds the window's fingerprint (NULL for long
-- windows, which are not fingerprinted: they are reported as changed). At commit the
-- deferred trigger below compares and writes one slots.changed event if the window
-- changed; a rolled-back recompute reports nothing. The row never outlives its transaction.
CREATE TABLE slot_watches (
    tenant_id  uuid NOT NULL,
    id         bigint GENERATED ALWAYS AS IDENTITY,
    staff_ids  uuid[] NOT NULL,
    during     tstzrange NOT NULL,
    before     jsonb,
    PRIMARY KEY (tenant_id, id)
);

CREATE FUNCTION slot_watches_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_services uuid[];
BEGIN
    IF NEW.before IS NULL THEN
        SELECT array_agg(v.id ORDER BY v.id) INTO v_services FROM services v WHERE v.tenant_id = NEW.tenant_id;
    ELSE
        SELECT array_agg(coalesce(a.service_id, b.service_id) ORDER BY coalesce(a.service_id, b.service_id))
          INTO v_services
          FROM slotmill_slot_fingerprint(NEW.tenant_id, NEW.staff_ids, NEW.during) a
          FULL JOIN jsonb_to_recordset(NEW.before) AS b (service_id uuid, n bigint, fp numeric)
            ON b.service_id = a.service_id
         WHERE (a.n, a.fp) IS DISTINCT FROM (b.n, b.fp);
    END IF;
    DELETE FROM slot_watches WHERE tenant_id = NEW.tenant_id AND id = NEW.id;
    IF v_services IS NOT NULL THEN
        INSERT INTO events (tenant_id, type, data, match_pending)
        VALUES (NEW.tenant_id, 'slots.changed',
                jsonb_build_object('service_ids', to_jsonb(v_services),
                                   'staff_ids', to_jsonb(NEW.staff_ids),
                                   'from', slotmill_instant(lower(NEW.during)),
                                   'to', slotmill_instant(upper(NEW.during))),
                EXISTS (SELECT 1 FROM waitlist_entries w
                         WHERE w.tenant_id = NEW.tenant_id AND w.status = 'waiting'
                           AND w.service_id = ANY (v_services)));
        PERFORM pg_notify('slotmill_outbox', '');
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER slot_watches_check AFTER INSERT ON slot_watches
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION slot_watches_check();


-- ============================================================================================
-- Webhooks
-- ============================================================================================

-- A host's receiver of events (Standard Webhooks). The secret signs; it is shown once when
-- made or rotated, and the one it replaced keeps signing beside it for a while, so the host
-- can switch without losing a delivery. `active` false: no new deliveries (disabled by the
-- host, or by the circuit breaker after a run of failures: disabled_reason says which).
CREATE TABLE webhook_endpoints (
    tenant_id              uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                     uuid NOT NULL DEFAULT gen_random_uuid(),
    url                    text NOT NULL CONSTRAINT webhook_endpoints_url_valid
                               CHECK (url ~ '^https?://[^/\s?#]+' AND length(url) <= 2000 AND url !~ '\s'),
    description            text NOT NULL DEFAULT '',
    -- NULL: every type
    event_types            text[] CONSTRAINT webhook_endpoints_types_valid
                               CHECK (event_types <@ ARRAY['booking.held', 'booking.confirmed', 'booking.cancelled',
                                                           'booking.rescheduled', 'booking.expired', 'slots.changed',
                                                           'waitlist.matched', 'webhook.disabled']),
    secret                 text NOT NULL,
    previous_secret        text,
    previous_secret_until  timestamptz,
    active                 boolean NOT NULL DEFAULT true,
    disabled_reason        text CONSTRAINT webhook_endpoints_disabled_reason_valid
                               CHECK (disabled_reason IN ('host', 'circuit')),
    disabled_at            timestamptz,
    consecutive_failures   integer NOT NULL DEFAULT 0,
    failing_since          timestamptz,
    last_attempt_at        timestamptz,
    last_status            integer,
    last_error             text,
    last_success_at        timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

-- One event for one endpoint: retried with back-off until delivered or given up ('failed').
-- A claim leases the row (next_attempt_at moves past the request's timeout), so several
-- workers share deliveries and never send one twice at the same time; a worker that dies
-- mid-request leaves the lease to run out, and the delivery is tried again.
CREATE TABLE webhook_deliveries (
    tenant_id        uuid NOT NULL,
    id               bigint GENERATED ALWAYS AS IDENTITY,
    endpoint_id      uuid NOT NULL,
    event_id         bigint NOT NULL,
    status           text NOT NULL DEFAULT 'pending'
                         CONSTRAINT webhook_deliveries_status_valid CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at     timestamptz,
    last_status      integer,
    last_error       text,
    replay           boolean NOT NULL DEFAULT false,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
-- the claim: an endpoint's due deliveries, oldest due first
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (tenant_id, endpoint_id, next_attempt_at) WHERE status = 'pending';
-- an endpoint's deliveries, newest first (the log, replay)
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (tenant_id, endpoint_id, id);

-- The delivery log: every attempt, its answer or why it failed.
CREATE TABLE webhook_attempts (
    tenant_id     uuid NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    delivery_id   bigint NOT NULL,
    endpoint_id   uuid NOT NULL,
    attempt       integer NOT NULL,
    attempted_at  timestamptz NOT NULL,
    duration_ms   integer NOT NULL,
    status_code   integer,
    error         text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, endpoint_id) REFERENCES webhook_endpoints (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (tenant_id, delivery_id);

-- Number committed events per tenant and fan them out to the endpoints that want them.
-- One transaction at a time (a try-lock: whoever holds it numbers everything it sees);
-- the statements run after the lock, so each sees what the previous holder committed.
-- Returns how many events it numbered, or -1 when another transaction is numbering.
CREATE FUNCTION slotmill_sequence_events(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer;
BEGIN
    IF NOT pg_try_advisory_xact_lock(slotmill_job_lock_key('sequence_events', NULL)) THEN
        RETURN -1;
    END IF;
    WITH pending AS (
        SELECT p.tenant_id, p.id, row_number() OVER (PARTITION BY p.tenant_id ORDER BY p.id) AS n
          FROM (SELECT tenant_id, id FROM events WHERE seq IS NULL ORDER BY id LIMIT p_limit) p
    ), numbered AS (
        UPDATE events e
           SET seq = coalesce(s.last_seq, 0) + p.n, sequenced_at = clock_timestamp()
          FROM pending p
          LEFT JOIN event_sequences s ON s.tenant_id = p.tenant_id
         WHERE e.tenant_id = p.tenant_id AND e.id = p.id
        RETURNING e.tenant_id, e.id, e.seq, e.type
    ), counters AS (
        INSERT INTO event_sequences (tenant_id, last_seq)
        SELECT tenant_id, max(seq) FROM numbered GROUP BY tenant_id
        ON CONFLICT (tenant_id) DO UPDATE SET last_seq = excluded.last_seq
    ), fanout AS (
        INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id)
        SELECT n.tenant_id, w.id, n.id
          FROM numbered n
          JOIN webhook_endpoints w ON w.tenant_id = n.tenant_id AND w.active
         WHERE w.event_types IS NULL OR n.type = ANY (w.event_types)
         ORDER BY n.id
    )
    SELECT count(*) INTO v_count FROM numbered;
    IF v_count > 0 THEN
        PERFORM pg_notify('slotmill_events', '');
    END IF;
    RETURN v_count;
END $$;


-- ============================================================================================
-- Waitlist
-- ============================================================================================

-- A customer waiting for a time: a service (and a staff member, or anyone), local dates
-- (inclusive, in the staff member's zone) and times of day (minutes after local midnight;
-- NULL: any time). When a slot that fits appears, the oldest waiting entry gets it.
CREATE TABLE waitlist_entries (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id    uuid NOT NULL,
    staff_id      uuid,
    from_date     date NOT NULL,
    to_date       date NOT NULL,
    time_windows  int4multirange CONSTRAINT waitlist_entries_times_valid
                      CHECK (time_windows <@ int4multirange(int4range(0, 1440))),
    contact_ref   text NOT NULL CONSTRAINT waitlist_entries_contact_ref_valid CHECK (length(contact_ref) BETWEEN 1 AND 200),
    status        text NOT NULL DEFAULT 'waiting'
                      CONSTRAINT waitlist_entries_status_valid CHECK (status IN ('waiting', 'cancelled', 'expired')),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at      timestamptz,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT waitlist_entries_dates_valid
        CHECK (from_date <= to_date AND slotmill_valid_date(from_date) AND slotmill_valid_date(to_date)),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
-- matching: a service's waiting entries, oldest first
CREATE INDEX waitlist_entries_waiting ON waitlist_entries (tenant_id, service_id, created_at) WHERE status = 'waiting';

-- Which slot an entry was told about: once per entry and slot.
CREATE TABLE waitlist_matches (
    tenant_id   uuid NOT NULL,
    entry_id    uuid NOT NULL,
    slot_id     text COLLATE "C" NOT NULL,
    staff_id    uuid NOT NULL,
    service_id  uuid NOT NULL,
    starts_at   timestamptz NOT NULL,
    hold_id     uuid,
    matched_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, entry_id, slot_id),
    FOREIGN KEY (tenant_id, entry_id) REFERENCES waitlist_entries (tenant_id, id) ON DELETE CASCADE
);
-- who was told about a slot already (a slot goes to one entry until it is booked again)
CREATE INDEX waitlist_matches_by_slot ON waitlist_matches (tenant_id, slot_id);
