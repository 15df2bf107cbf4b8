-- 0001: source tables (SPEC §4), derived slots, the recompute queue, and the bookings
-- conflict rule (SPEC §7).
--
-- Every table carries tenant_id and every key includes it, so the schema can be
-- distributed by tenant later; foreign keys are composite (tenant_id, id) so a row can
-- never point at another tenant's row.

CREATE EXTENSION IF NOT EXISTS btree_gist;

-- A zone name the engine (Python zoneinfo) and PostgreSQL both understand. POSIX-style
-- specs such as 'UTC+3' are accepted by PostgreSQL but mean the opposite of what people
-- expect and are unknown to zoneinfo, so they are refused here.
CREATE FUNCTION slotmill_valid_zone(tz text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF tz IS NULL THEN
        RETURN true;
    END IF;
    IF tz !~ '^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$' OR tz ~ '^(UTC|GMT|Etc/GMT)[+-]?[0-9]' AND tz !~ '^Etc/GMT[+-][0-9]+$' THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE tz;
    RETURN true;
EXCEPTION WHEN others THEN
    RETURN false;
END $$;

CREATE TABLE tenants (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid GENERATED ALWAYS AS (id) STORED,
    slug          text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name          text NOT NULL,
    timezone      text NOT NULL DEFAULT 'UTC' CONSTRAINT tenants_timezone_valid CHECK (slotmill_valid_zone(timezone)),
    horizon_days  integer NOT NULL DEFAULT 60 CHECK (horizon_days BETWEEN 1 AND 366),
    settings      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE locations (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    timezone   text CONSTRAINT locations_timezone_valid CHECK (slotmill_valid_zone(timezone)),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE staff (
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    location_id   uuid,
    display_name  text NOT NULL,
    timezone      text CONSTRAINT staff_timezone_valid CHECK (slotmill_valid_zone(timezone)),
    priority      integer NOT NULL DEFAULT 100,
    active        boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);

CREATE TABLE services (
    tenant_id              uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                     uuid NOT NULL DEFAULT gen_random_uuid(),
    name                   text NOT NULL,
    duration_minutes       integer NOT NULL CHECK (duration_minutes BETWEEN 1 AND 1440),
    buffer_before_minutes  integer NOT NULL DEFAULT 0 CHECK (buffer_before_minutes BETWEEN 0 AND 1440),
    buffer_after_minutes   integer NOT NULL DEFAULT 0 CHECK (buffer_after_minutes BETWEEN 0 AND 1440),
    slot_interval_minutes  integer CHECK (slot_interval_minutes BETWEEN 1 AND 1440),
    min_notice_minutes     integer CHECK (min_notice_minutes >= 0),
    max_advance_days       integer CHECK (max_advance_days >= 0),
    active                 boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE staff_services (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id    uuid NOT NULL,
    service_id  uuid NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, staff_id, service_id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE
);
-- "which staff perform this service" (service change fan-out, any-staff reads)
CREATE INDEX staff_services_by_service ON staff_services (tenant_id, service_id);

CREATE TABLE availability_templates (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id     uuid NOT NULL,
    weekday      smallint NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_time   time NOT NULL,
    end_time     time NOT NULL,
    location_id  uuid,
    valid_from   date,
    valid_until  date,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT availability_templates_times CHECK (end_time > start_time),
    CONSTRAINT availability_templates_validity CHECK (valid_from IS NULL OR valid_until IS NULL OR valid_from <= valid_until),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);
CREATE INDEX availability_templates_by_staff ON availability_templates (tenant_id, staff_id);

CREATE TABLE availability_overrides (
    tenant_id     uuid NOT NULL,
    id            uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id      uuid NOT NULL,
    on_date       date NOT NULL,
    is_available  boolean NOT NULL,
    start_time    time,
    end_time      time,
    rrule         text,
    location_id   uuid,
    reason        text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT availability_overrides_times CHECK (
        (start_time IS NULL AND end_time IS NULL AND NOT is_available)
        OR (start_time IS NOT NULL AND end_time IS NOT NULL AND end_time > start_time)),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);
CREATE INDEX availability_overrides_by_staff ON availability_overrides (tenant_id, staff_id, on_date);

CREATE TABLE holidays (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id   uuid,
    on_date    date NOT NULL,
    rrule      text,
    name       text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX holidays_by_tenant ON holidays (tenant_id, on_date);

CREATE TABLE time_off (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id   uuid NOT NULL,
    during     tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    reason     text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX time_off_by_staff ON time_off USING gist (tenant_id, staff_id, during);

CREATE TABLE busy_times (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id     uuid NOT NULL,
    during       tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    source       text NOT NULL DEFAULT 'external',
    external_id  text,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, source, external_id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX busy_times_by_staff ON busy_times USING gist (tenant_id, staff_id, during);

CREATE TABLE bookings (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id          uuid NOT NULL,
    service_id        uuid NOT NULL,
    location_id       uuid,
    starts_at         timestamptz NOT NULL,
    ends_at           timestamptz NOT NULL,
    status            text NOT NULL CHECK (status IN ('held', 'confirmed', 'cancelled', 'expired')),
    expires_at        timestamptz,
    customer_ref      text,
    notes             text,
    session_id        text,
    reschedule_count  integer NOT NULL DEFAULT 0,
    rescheduled_from  uuid,
    created_at        timestamptz NOT NULL DEFAULT now(),
    confirmed_at      timestamptz,
    cancelled_at      timestamptz,
    -- [starts_at - buffer_before, ends_at + buffer_after) of this booking's service. Kept by
    -- bookings_before_write(): timestamptz + interval is not immutable, so it cannot be a
    -- generated column.
    blocked           tstzrange NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT bookings_times CHECK (ends_at > starts_at),
    CONSTRAINT bookings_hold_expiry CHECK (status <> 'held' OR expires_at IS NOT NULL),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id),
    -- The conflict rule (SPEC §7). Expired holds still say 'held' until retired, which
    -- bookings_before_write() does for the range it is about to take.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, staff_id WITH =, blocked WITH &&
    ) WHERE (status IN ('confirmed', 'held'))
);
-- busy set loading and "confirmed bookings that local day" in any-staff reads
CREATE INDEX bookings_by_staff_start ON bookings (tenant_id, staff_id, starts_at) WHERE status = 'confirmed';
-- live holds per staff (slot hiding on materialization) and expiry clean-up
CREATE INDEX bookings_holds ON bookings (tenant_id, staff_id, expires_at) WHERE status = 'held';

-- One lock key per (tenant, staff): every writer of a staff member's bookings or slots
-- takes it first, so concurrent inserts of one range never deadlock among themselves
-- (SPEC §7) and a recompute never interleaves with a booking write.
CREATE FUNCTION slotmill_staff_lock_key(p_tenant uuid, p_staff uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5(p_tenant::text || ':' || p_staff::text), 1, 16))::bit(64)::bigint
$$;

CREATE FUNCTION bookings_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_before integer;
    v_after  integer;
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.staff_id = OLD.staff_id AND NEW.service_id = OLD.service_id
       AND NEW.starts_at = OLD.starts_at AND NEW.ends_at = OLD.ends_at
       AND NEW.blocked = OLD.blocked
       AND NOT (NEW.status IN ('held', 'confirmed') AND OLD.status NOT IN ('held', 'confirmed')) THEN
        -- no change to the range or to whether it blocks: nothing to serialize
        RETURN NEW;
    END IF;

    SELECT buffer_before_minutes, buffer_after_minutes INTO v_before, v_after
      FROM services WHERE tenant_id = NEW.tenant_id AND id = NEW.service_id;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'bookings.service_id: unknown service';
    END IF;
    NEW.blocked := tstzrange(NEW.starts_at - make_interval(mins => v_before),
                             NEW.ends_at + make_interval(mins => v_after), '[)');

    IF NEW.status IN ('held', 'confirmed') THEN
        PERFORM pg_advisory_xact_lock(slotmill_staff_lock_key(NEW.tenant_id, NEW.staff_id));
        -- An expired hold never blocks anything: retire the ones in the way first.
        UPDATE bookings
           SET status = 'expired'
         WHERE tenant_id = NEW.tenant_id AND staff_id = NEW.staff_id
           AND status = 'held' AND expires_at <= clock_timestamp()
           AND blocked && NEW.blocked
           AND id <> NEW.id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER bookings_before_write
    BEFORE INSERT OR UPDATE ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_before_write();

-- Derived: the materialized slots. Slot ids are derived from tenant, staff, service and
-- start (materializer/slot_ids.py), so they survive recomputation.
--
-- Two indexes only: index maintenance, not the rows, is what a full refresh pays for
-- (measured: COPY of 240k rows 0.4 s bare, several seconds per extra index under load).
-- The primary key serves window replacement and hold hiding (one staff member's starts);
-- the id needs no index of its own because slotmill_slot_key() turns it back into the
-- primary key.
CREATE TABLE availability_slots (
    tenant_id    uuid NOT NULL,
    id           text COLLATE "C" NOT NULL,
    staff_id     uuid NOT NULL,
    service_id   uuid NOT NULL,
    location_id  uuid,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    -- latest expiry of the live holds that overlap this slot's blocked range; a read
    -- hides the slot while held_until > now(), so expiry needs no job.
    held_until   timestamptz,
    PRIMARY KEY (tenant_id, staff_id, starts_at, service_id)
);
-- The public read (SPEC §6): one service, a start range, any or one staff member.
CREATE INDEX availability_slots_read ON availability_slots (tenant_id, service_id, starts_at);

-- The first 24 hex digits of a slot id (same as materializer.slot_ids.slot_id_prefix).
CREATE FUNCTION slotmill_slot_id_prefix(p_tenant uuid, p_staff uuid, p_service uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(encode(sha256(uuid_send(p_tenant) || uuid_send(p_staff) || uuid_send(p_service)), 'hex'), 24)
$$;

-- A slot id back to its primary key: the staff member and service whose prefix matches
-- (one hash per staff_services row of the tenant), and the start minute. No row for a
-- malformed id or one of another tenant.
CREATE FUNCTION slotmill_slot_key(p_tenant uuid, p_id text)
RETURNS TABLE (staff_id uuid, service_id uuid, starts_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- The CASE keeps the hex decoding from running on a malformed id even when the
    -- planner inlines this function and evaluates the select list before the filter.
    SELECT ss.staff_id, ss.service_id,
           CASE WHEN p_id ~ '^[0-9a-f]{32}$'
                THEN to_timestamp(('x' || right(p_id, 8))::bit(32)::bigint * 60) END
      FROM staff_services ss
     WHERE p_id ~ '^[0-9a-f]{32}$'
       AND ss.tenant_id = p_tenant
       AND slotmill_slot_id_prefix(p_tenant, ss.staff_id, ss.service_id) = left(p_id, 24)
$$;

-- The transactional outbox of recompute work (SPEC §8). staff_id NULL: every staff member
-- of the tenant; during NULL: the whole horizon.
CREATE TABLE recompute_requests (
    tenant_id     uuid NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    staff_id      uuid,
    during        tstzrange,
    reason        text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX recompute_requests_fifo ON recompute_requests (id);

-- What the materializer last did, per tenant: status and drift reporting.
CREATE TABLE refresh_runs (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id             bigint GENERATED ALWAYS AS IDENTITY,
    kind           text NOT NULL CHECK (kind IN ('full', 'partial')),
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    horizon_start  timestamptz,
    horizon_end    timestamptz,
    staff_count    integer NOT NULL DEFAULT 0,
    slots_written  integer NOT NULL DEFAULT 0,
    drift          integer,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX refresh_runs_latest ON refresh_runs (tenant_id, kind, finished_at DESC);

-- Host-backend keys: only a hash of the secret is stored.
CREATE TABLE api_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    key_hash     text NOT NULL UNIQUE,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id)
);

-- Idempotent host calls: the first response of a key is replayed for the same body.
CREATE TABLE idempotency_keys (
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key            text NOT NULL,
    endpoint       text NOT NULL,
    request_hash   text NOT NULL,
    status_code    integer NOT NULL,
    response_body  jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, endpoint, key)
);
