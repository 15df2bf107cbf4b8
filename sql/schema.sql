-- slotmill's schema, declared whole: what sql/migrations build, in one place.
--
-- The reference, not an apply path: `slotmill migrate` runs the numbered migrations and
-- never reads this file. tests/sql/test_migrations.py builds one database from this file and one
-- from the migrations and compares their catalogs (tables, columns, constraints, indexes,
-- functions, triggers, extensions), so this file cannot drift: a new migration updates it in
-- the same change. The migration runner's own table, slotmill_migrations, is not part of it.
--
-- Sections:
--   Extensions and helper functions
--   Tenants and rules (the source tables of SPEC §4)
--   Locks (the per-staff lock protocol)
--   Bookings and the conflict rule
--   Derived slots, reads and holds
--   Calendar feeds
--   Queue and bookkeeping
--   Triggers (every source write enqueues a recompute)
--   Events out (the outbox, webhooks, the waitlist)
--
-- Every table carries tenant_id and every key includes it, so the schema can be distributed
-- by tenant later; foreign keys are composite (tenant_id, id) so a row can never point at
-- another tenant's row.


-- ============================================================================================
-- Extensions and helper functions
-- ============================================================================================

-- The conflict rule's exclusion constraint mixes = on uuids with && on ranges in one gist index.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- IANA names only: PostgreSQL also accepts abbreviations ('CEST') and POSIX specs ('UTC+3')
-- in AT TIME ZONE, which Python's tz database does not know. pg_timezone_names lists the
-- tz database's zone names. Not truly IMMUTABLE (the tz database can change), which is why
-- a row it once accepted is still loaded defensively (materializer/loader.py).
CREATE FUNCTION slotmill_valid_zone(tz text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF tz IS NULL THEN
        RETURN true;
    END IF;
    IF length(tz) > 64
       OR tz !~ '^[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*$'
       OR tz ~ '^(UTC|GMT|Etc/GMT)[+-]?[0-9]' AND tz !~ '^Etc/GMT[+-][0-9]+$'
       OR tz IN ('posixrules', 'Factory', 'localtime') THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz);
END $$;

-- Why a recurrence of a date (a holiday, an override) is not one the engine will expand,
-- or NULL when it is fine. The subset of RFC 5545 that makes sense for a date: FREQ DAILY
-- to YEARLY (no sub-daily frequency, no times of day), INTERVAL 1..1000, COUNT 1..10000 or
-- an UNTIL in 1900..2200 (not both), BY parts in range. Mirrors
-- materializer/engine/recurrence.py rrule_problem() (a test runs both on the same rules).
CREATE FUNCTION slotmill_rrule_problem(p_rule text) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    v_rule   text;
    v_part   text;
    v_name   text;
    v_value  text;
    v_item   text;
    v_n      integer;
    v_top    integer;
    v_signed boolean;
    v_seen   text[] := '{}';
    v_day    text := '(MO|TU|WE|TH|FR|SA|SU)';
BEGIN
    IF p_rule IS NULL THEN
        RETURN NULL;
    END IF;
    IF length(p_rule) > 500 THEN
        RETURN 'longer than 500 characters';
    END IF;
    v_rule := upper(btrim(p_rule));
    IF v_rule LIKE 'RRULE:%' THEN
        v_rule := substr(v_rule, 7);
    END IF;
    IF v_rule = '' THEN
        RETURN 'empty rule';
    END IF;
    FOREACH v_part IN ARRAY string_to_array(v_rule, ';') LOOP
        IF v_part !~ '^[A-Z]+=[^=]+$' THEN
            RETURN format('%L is not NAME=VALUE', v_part);
        END IF;
        v_name := split_part(v_part, '=', 1);
        v_value := split_part(v_part, '=', 2);
        IF v_name = ANY (v_seen) THEN
            RETURN format('%s given twice', v_name);
        END IF;
        v_seen := v_seen || v_name;
        IF v_name = 'FREQ' THEN
            IF v_value IN ('SECONDLY', 'MINUTELY', 'HOURLY') THEN
                RETURN format('FREQ=%s: a date rule recurs at most daily', v_value);
            ELSIF v_value NOT IN ('DAILY', 'WEEKLY', 'MONTHLY', 'YEARLY') THEN
                RETURN format('FREQ=%s is not one of DAILY, WEEKLY, MONTHLY, YEARLY', v_value);
            END IF;
        ELSIF v_name IN ('INTERVAL', 'COUNT') THEN
            v_top := CASE v_name WHEN 'INTERVAL' THEN 1000 ELSE 10000 END;
            IF v_value !~ '^[0-9]{1,6}$' OR v_value::integer NOT BETWEEN 1 AND v_top THEN
                RETURN format('%s must be a whole number from 1 to %s', v_name, v_top);
            END IF;
        ELSIF v_name = 'UNTIL' THEN
            IF v_value !~ '^[0-9]{8}(T[0-9]{6}Z?)?$' THEN
                RETURN 'UNTIL must be a date (20261231) or a date-time (20261231T000000Z)';
            END IF;
            BEGIN
                PERFORM make_date(substr(v_value, 1, 4)::integer, substr(v_value, 5, 2)::integer,
                                  substr(v_value, 7, 2)::integer);
            EXCEPTION WHEN others THEN
                RETURN format('UNTIL %s is not a calendar date', v_value);
            END;
            IF substr(v_value, 1, 4)::integer NOT BETWEEN 1900 AND 2200 THEN
                RETURN 'UNTIL must lie in the years 1900 to 2200';
            END IF;
        ELSIF v_name = 'BYDAY' THEN
            FOREACH v_item IN ARRAY string_to_array(v_value, ',') LOOP
                IF v_item !~ ('^([+-]?[0-9]{1,2})?' || v_day || '$')
                   OR (v_item ~ '^[+-]?[0-9]' AND abs(substring(v_item FROM '^[+-]?[0-9]+')::integer) NOT BETWEEN 1 AND 53) THEN
                    RETURN format('BYDAY item %L is not a weekday such as MO, 1MO or -1FR', v_item);
                END IF;
            END LOOP;
        ELSIF v_name = 'WKST' THEN
            IF v_value !~ ('^' || v_day || '$') THEN
                RETURN 'WKST must be a weekday such as MO';
            END IF;
        ELSIF v_name IN ('BYMONTHDAY', 'BYYEARDAY', 'BYWEEKNO', 'BYMONTH', 'BYSETPOS') THEN
            v_top := CASE v_name WHEN 'BYMONTHDAY' THEN 31 WHEN 'BYYEARDAY' THEN 366
                                 WHEN 'BYWEEKNO' THEN 53 WHEN 'BYMONTH' THEN 12 ELSE 366 END;
            v_signed := v_name <> 'BYMONTH';
            IF v_value !~ '^[+-]?[0-9]{1,3}(,[+-]?[0-9]{1,3})*$' THEN
                RETURN format('%s must be a comma-separated list of numbers', v_name);
            END IF;
            FOREACH v_item IN ARRAY string_to_array(v_value, ',') LOOP
                v_n := v_item::integer;
                IF v_n = 0 OR abs(v_n) > v_top OR (v_n < 0 AND NOT v_signed) THEN
                    RETURN format('%s value %s is out of range', v_name, v_n);
                END IF;
            END LOOP;
        ELSIF v_name IN ('BYHOUR', 'BYMINUTE', 'BYSECOND') THEN
            RETURN format('%s: a date rule has no times of day', v_name);
        ELSE
            RETURN format('unknown part %s', v_name);
        END IF;
    END LOOP;
    IF NOT 'FREQ' = ANY (v_seen) THEN
        RETURN 'FREQ is required';
    END IF;
    IF 'COUNT' = ANY (v_seen) AND 'UNTIL' = ANY (v_seen) THEN
        RETURN 'COUNT and UNTIL cannot both be given';
    END IF;
    RETURN NULL;
END $$;

-- The years the service schedules: dates and instants outside them are refused (a range
-- ending in year 20000 used to poison the recompute queue; BC and infinite dates could not
-- be loaded by the driver at all).
CREATE FUNCTION slotmill_valid_date(d date) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT d IS NULL OR d BETWEEN DATE '1900-01-01' AND DATE '2200-12-31'
$$;

CREATE FUNCTION slotmill_valid_range(r tstzrange) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT r IS NULL
        OR (NOT lower_inf(r) AND NOT upper_inf(r)
            AND lower(r) >= TIMESTAMPTZ '1900-01-01 00:00:00+00'
            AND upper(r) <= TIMESTAMPTZ '2201-01-01 00:00:00+00')
$$;

CREATE FUNCTION slotmill_valid_instant(t timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT t IS NULL OR t BETWEEN TIMESTAMPTZ '1900-01-01 00:00:00+00' AND TIMESTAMPTZ '2201-01-01 00:00:00+00'
$$;

-- A date clamped into those years: how the loader reads a bound that lies beyond them
-- (an open-ended validity stored as 'infinity'), which is exact for any horizon.
CREATE FUNCTION slotmill_clamp_date(d date) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN d < DATE '1900-01-01' THEN DATE '1900-01-01'
                WHEN d > DATE '2200-12-31' THEN DATE '2200-12-31'
                ELSE d END
$$;

-- The first 24 hex digits of a slot id (same as materializer.slot_ids.slot_id_prefix).
CREATE FUNCTION slotmill_slot_id_prefix(p_tenant uuid, p_staff uuid, p_service uuid) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT left(encode(sha256(uuid_send(p_tenant) || uuid_send(p_staff) || uuid_send(p_service)), 'hex'), 24)
$$;

-- An integer from tenants.settings, or the default when the key is missing or holds
-- something else (a string, a boolean, a number out of range). Host applications write
-- settings directly, and a bad value must not turn a public read into an error. Mirrors
-- materializer.loader.Tenant.setting_int (numbers truncate towards zero).
CREATE FUNCTION slotmill_setting_int(p_settings jsonb, p_key text, p_default integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN jsonb_typeof(p_settings -> p_key) = 'number' THEN
                CASE WHEN abs((p_settings ->> p_key)::numeric) < 2147483648
                     THEN trunc((p_settings ->> p_key)::numeric)::integer
                     ELSE p_default END
           ELSE p_default END
$$;

-- An instant as the API writes it: RFC 3339 in UTC with a Z, whole seconds
-- (2026-11-23T09:00:00Z), whatever the session's TimeZone and DateStyle.
CREATE FUNCTION slotmill_instant(p_at timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT to_char(p_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
$$;

-- A local date d, widened to instants that contain it in every zone (UTC-12 .. UTC+14):
-- [d-1, d+2) in UTC. The recompute scope of a date-based rule.
CREATE FUNCTION slotmill_date_span(d date) RETURNS tstzrange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tstzrange(((d - 1)::timestamp AT TIME ZONE 'UTC'), ((d + 2)::timestamp AT TIME ZONE 'UTC'), '[)')
$$;

-- The group session a slot or a booking of a service belongs to (NULL: a one-seat service,
-- whose bookings each are a session of their own). The text bookings.session_key holds.
CREATE FUNCTION slotmill_session_key(p_staff uuid, p_service uuid, p_starts timestamptz, p_seats integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_seats > 1
                THEN 'g:' || p_staff || ':' || p_service || '@' || extract(epoch FROM p_starts)::bigint END
$$;




-- ============================================================================================
-- Tenants and rules (the source tables of SPEC §4)
-- ============================================================================================
-- Host applications write these directly. Every write enqueues a recompute (section
-- Triggers). The engine reads them whole per staff member, so besides the keys only the
-- lookups by staff member (and a date) are indexed.

CREATE TABLE tenants (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- the same value, so every table (this one too) can be keyed and distributed by tenant_id
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
    -- booking limits over all services (docs/rules.md, limits); NULL: none
    max_bookings_per_day   integer CONSTRAINT staff_max_per_day_valid CHECK (max_bookings_per_day >= 0),
    max_bookings_per_week  integer CONSTRAINT staff_max_per_week_valid CHECK (max_bookings_per_week >= 0),
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
    -- > 1: a group service, sold by the seat (docs/rules.md, sessions and seats)
    seats                  integer NOT NULL DEFAULT 1 CONSTRAINT services_seats_valid CHECK (seats BETWEEN 1 AND 10000),
    -- booking limits of this service per staff member; NULL: none
    max_bookings_per_day   integer CONSTRAINT services_max_per_day_valid CHECK (max_bookings_per_day >= 0),
    max_bookings_per_week  integer CONSTRAINT services_max_per_week_valid CHECK (max_bookings_per_week >= 0),
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE staff_services (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id     uuid NOT NULL,
    service_id   uuid NOT NULL,
    -- The first 24 hex digits of this pair's slot ids, stored so that decoding a slot id
    -- (slotmill_slot_key) is an index lookup, not one sha256 per row of the tenant
    -- (~0.3 ms at 300 rows, on every hold).
    slot_prefix  text COLLATE "C" GENERATED ALWAYS AS (slotmill_slot_id_prefix(tenant_id, staff_id, service_id)) STORED,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, staff_id, service_id),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE
);
-- "which staff perform this service" (service change fan-out, any-staff reads)
CREATE INDEX staff_services_by_service ON staff_services (tenant_id, service_id);
-- a slot id back to its staff member and service (slotmill_slot_key, every hold by id)
CREATE INDEX staff_services_by_slot_prefix ON staff_services (tenant_id, slot_prefix);

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
    CONSTRAINT availability_templates_dates_valid CHECK (slotmill_valid_date(valid_from) AND slotmill_valid_date(valid_until)),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);
-- the rule loader: one staff member's weekly windows
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
    CONSTRAINT availability_overrides_on_date_valid CHECK (slotmill_valid_date(on_date)),
    CONSTRAINT availability_overrides_rrule_valid CHECK (slotmill_rrule_problem(rrule) IS NULL),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);
-- the rule loader: one staff member's overrides in a date range
CREATE INDEX availability_overrides_by_staff ON availability_overrides (tenant_id, staff_id, on_date);

CREATE TABLE holidays (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id   uuid,
    on_date    date NOT NULL,
    rrule      text,
    name       text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT holidays_on_date_valid CHECK (slotmill_valid_date(on_date)),
    CONSTRAINT holidays_rrule_valid CHECK (slotmill_rrule_problem(rrule) IS NULL),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
-- the rule loader: a tenant's holidays (tenant-wide ones have no staff) in a date range
CREATE INDEX holidays_by_tenant ON holidays (tenant_id, on_date);

CREATE TABLE time_off (
    tenant_id  uuid NOT NULL,
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id   uuid NOT NULL,
    during     tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    reason     text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT time_off_during_valid CHECK (slotmill_valid_range(during)),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
-- the rule loader: one staff member's time off overlapping a window (&&)
CREATE INDEX time_off_by_staff ON time_off USING gist (tenant_id, staff_id, during);

CREATE TABLE busy_times (
    tenant_id    uuid NOT NULL,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    staff_id     uuid NOT NULL,
    during       tstzrange NOT NULL CHECK (NOT isempty(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    source       text NOT NULL DEFAULT 'external',
    external_id  text,
    PRIMARY KEY (tenant_id, id),
    -- a calendar sync upserts by its own event id
    UNIQUE (tenant_id, source, external_id),
    CONSTRAINT busy_times_during_valid CHECK (slotmill_valid_range(during)),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id) ON DELETE CASCADE
);
-- the rule loader: one staff member's busy times overlapping a window (&&)
CREATE INDEX busy_times_by_staff ON busy_times USING gist (tenant_id, staff_id, during);

-- Rooms, chairs, machines. A service needs `quantity` distinct active resources of a kind
-- usable at the slot's location: at it, or with no location (docs/rules.md, resources).
CREATE TABLE resources (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    location_id  uuid,
    kind         text NOT NULL CONSTRAINT resources_kind_valid CHECK (kind ~ '^\S.{0,62}$'),
    name         text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);
-- the resources of a kind (assignment at hold time, the engine's pools)
CREATE INDEX resources_by_kind ON resources (tenant_id, kind, location_id);

CREATE TABLE service_resources (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id  uuid NOT NULL,
    kind        text NOT NULL CONSTRAINT service_resources_kind_valid CHECK (kind ~ '^\S.{0,62}$'),
    quantity    integer NOT NULL DEFAULT 1 CONSTRAINT service_resources_quantity_valid CHECK (quantity BETWEEN 1 AND 100),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE
);
-- a service's requirements; and which services need a kind (fan-out of a resource booking)
CREATE INDEX service_resources_by_service ON service_resources (tenant_id, service_id);
CREATE INDEX service_resources_by_kind ON service_resources (tenant_id, kind);

-- Minutes a staff member needs from one location to another (one direction; no row: 0).
CREATE TABLE location_travel (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    from_location_id  uuid NOT NULL,
    to_location_id    uuid NOT NULL,
    minutes           integer NOT NULL CONSTRAINT location_travel_minutes_valid CHECK (minutes BETWEEN 0 AND 1440),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT location_travel_one_way UNIQUE (tenant_id, from_location_id, to_location_id),
    CONSTRAINT location_travel_two_places CHECK (from_location_id <> to_location_id),
    FOREIGN KEY (tenant_id, from_location_id) REFERENCES locations (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, to_location_id) REFERENCES locations (tenant_id, id) ON DELETE CASCADE
);


-- A staff member's zone: theirs, else their location's, else the tenant's.
CREATE FUNCTION slotmill_staff_zone(p_tenant uuid, p_staff uuid) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(s.timezone, l.timezone, t.timezone)
      FROM staff s
      JOIN tenants t ON t.id = s.tenant_id
      LEFT JOIN locations l ON l.tenant_id = s.tenant_id AND l.id = s.location_id
     WHERE s.tenant_id = p_tenant AND s.id = p_staff
$$;

-- Minutes to travel from one location to another (no row, or a missing end: 0).
CREATE FUNCTION slotmill_travel(p_tenant uuid, p_from uuid, p_to uuid) RETURNS integer
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce((SELECT minutes FROM location_travel
                      WHERE tenant_id = p_tenant AND from_location_id = p_from AND to_location_id = p_to), 0)
$$;

-- ============================================================================================
-- Locks
-- ============================================================================================
-- The per-staff lock protocol. Code that takes these locks points here.
--
-- The lock: pg_advisory_xact_lock(slotmill_staff_lock_key(tenant_id, staff_id)), one key
-- per (tenant, staff member), held until the transaction ends.
--
-- Who takes it: every transaction that makes a booking of a staff member blocking, moves
-- a blocking one, or writes that staff member's slots.
--   * The bookings trigger (bookings_before_write, next section), on every insert of a
--     'held' or 'confirmed' booking and every update that makes a booking blocking or
--     changes a blocking booking's staff member, service or times. So direct inserts by
--     a host application are serialized too, with no cooperation from it.
--   * The booking lifecycle (materializer/bookings.py): hold (slotmill_hold, below),
--     release (sql/queries/bookings.sql lock_hold_staff), confirm and reschedule, as a
--     statement of its own before the statement that reads and writes slots. That
--     statement then gets a snapshot from after the lock and sees the slot rows a
--     concurrent recompute just committed.
--   * Every recompute of slots: refresh, the worker, the nightly job.
-- From Python it is taken only through materializer/locks.py (lock_staff, try_lock_staff;
-- sql/queries/locks.sql).
--
-- In which order:
--   1. staff locks first; several in one statement, sorted by staff id (lock_staff sorts;
--      a reschedule locks the old and the new staff member together);
--   2. then row locks (SELECT ... FOR UPDATE of a booking, UPDATE or DELETE of rows);
--   3. then resource kind locks (slotmill_resource_lock_key(tenant, kind)), in kind order:
--      the hold's assignment takes each kind's lock before it picks free resources of it,
--      and booking_resources_before_write takes it for a host's direct insert. Two holds
--      of different staff members racing for the last room queue on the kind's lock, so
--      exactly one wins and neither waits on the other's staff lock: no deadlock.
-- Never the other way round. Taking a staff lock again in the same transaction is free,
-- which is why the trigger can take it after a caller already has.
--
-- Who may wait: a transaction waits for a staff lock only while it holds no other one, or
-- in the sorted order of a single lock_staff call. A recompute of several staff members
-- never waits: it takes the free locks with pg_try_advisory_xact_lock (try_lock_staff) and
-- leaves the others to a transaction of their own, because a host transaction that writes
-- bookings of several staff members takes their locks, through the trigger, in its own
-- order.
--
-- Outside the order, because nobody ever waits for them:
--   * Transitions that only stop a booking blocking take no staff lock: hold expiry
--     (held -> expired, rows claimed with FOR UPDATE SKIP LOCKED) and cancel. They
--     remove a conflict and cannot create one; the freed time comes back through the
--     recompute queue.
--   * The worker's claim of recompute_requests rows (FOR UPDATE SKIP LOCKED), taken before
--     the recompute's staff locks: claims skip rows, they never wait for them. So do
--     record_failures and clear_failures (sql/queries/slots.sql), which touch a staff
--     member's failed requests while holding staff locks: rows a worker holds are skipped.
--   * Other advisory locks have key spaces of their own and are taken before any staff
--     lock: Idempotency-Key (two-int keys), scheduled jobs (slotmill_job_lock_key,
--     'job:' keys), migrations.
--
-- A host application that UPDATEs a booking row directly takes the row lock before the
-- trigger takes the staff lock: against a confirm that holds the staff lock and waits for
-- that row, PostgreSQL finds the deadlock and fails one of them (after deadlock_timeout).
-- Such code should take the staff lock first:
--   SELECT pg_advisory_xact_lock(slotmill_staff_lock_key(tenant_id, staff_id));
--
-- Why (SPEC §7): measured here, 90 simultaneous inserts of one range released at the
-- same instant always leave exactly one winner through the exclusion constraint alone,
-- but the losers deadlock among themselves, and PostgreSQL breaks each deadlock only after
-- deadlock_timeout: rounds of up to 82 s at the default 1 s. With the advisory lock
-- first, 0 deadlocks and all 90 answered in 21 ms. The same lock keeps a recompute from
-- interleaving with a booking write: a recompute reads bookings and rewrites slots as one
-- step per staff member.

CREATE FUNCTION slotmill_staff_lock_key(p_tenant uuid, p_staff uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5(p_tenant::text || ':' || p_staff::text), 1, 16))::bit(64)::bigint
$$;

-- Lock key of a resource kind of a tenant: taken after the staff locks, kinds in order, by
-- whoever assigns or adds a resource to a booking.
CREATE FUNCTION slotmill_resource_lock_key(p_tenant uuid, p_kind text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5('resource:' || p_tenant::text || ':' || p_kind), 1, 16))::bit(64)::bigint
$$;

-- Advisory lock key of a scheduled job (per tenant, or global when p_tenant is NULL).
-- Distinct from slotmill_staff_lock_key's keys by the 'job:' prefix of the hashed text.
CREATE FUNCTION slotmill_job_lock_key(p_job text, p_tenant uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5('job:' || p_job || ':' || coalesce(p_tenant::text, '*')), 1, 16))::bit(64)::bigint
$$;


-- ============================================================================================
-- Bookings and the conflict rule
-- ============================================================================================

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
    -- the party size: seats of a group session this booking takes
    seats             integer NOT NULL DEFAULT 1 CONSTRAINT bookings_seats_valid CHECK (seats BETWEEN 1 AND 10000),
    -- name, email, phone as the customer gave them: never in a public response
    contact           jsonb CONSTRAINT bookings_contact_object CHECK (contact IS NULL OR jsonb_typeof(contact) = 'object'),
    -- the group session this booking belongs to ('g:<staff>:<service>@<epoch>'), or its own id for a
    -- one-seat service; kept by bookings_before_write()
    session_key       text NOT NULL,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT bookings_times CHECK (ends_at > starts_at),
    CONSTRAINT bookings_hold_expiry CHECK (status <> 'held' OR expires_at IS NOT NULL),
    CONSTRAINT bookings_instants_valid
        CHECK (slotmill_valid_instant(starts_at) AND slotmill_valid_instant(ends_at)
               AND slotmill_valid_instant(expires_at)),
    FOREIGN KEY (tenant_id, staff_id) REFERENCES staff (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id),
    -- The conflict rule (SPEC §7), for every writer including direct inserts; its gist
    -- index (bookings_no_overlap) also finds the holds in a new booking's way. Expired
    -- holds still say 'held' until retired, which bookings_before_write() does for the
    -- range it is about to take.
    CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, staff_id WITH =, blocked WITH &&, session_key WITH <>
    ) WHERE (status IN ('confirmed', 'held')),
    -- one group session is at one location (a booking with no location belongs to it
    -- wherever it is: NULL is never <> anything)
    CONSTRAINT bookings_session_location EXCLUDE USING gist (
        tenant_id WITH =, staff_id WITH =, session_key WITH =, location_id WITH <>
    ) WHERE (status IN ('confirmed', 'held'))
);
-- busy set loading and "confirmed bookings that local day" in any-staff reads
CREATE INDEX bookings_by_staff_start ON bookings (tenant_id, staff_id, starts_at) WHERE status = 'confirmed';
-- live holds per staff (slot hiding on materialization) and expiry clean-up
CREATE INDEX bookings_holds ON bookings (tenant_id, staff_id, expires_at) WHERE status = 'held';
-- a session's live bookings (seat counts) and a staff member's live bookings by start
-- (limits, travel), both under the staff lock
CREATE INDEX bookings_live_by_staff ON bookings (tenant_id, staff_id, starts_at) WHERE status IN ('confirmed', 'held');

-- Keeps `blocked`, takes the staff lock (section Locks) and retires the expired holds in
-- the new range, so an expired hold never blocks anything and no job is involved.
CREATE FUNCTION bookings_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_before   integer;
    v_after    integer;
    v_seats    integer;
    v_v_day    integer;
    v_v_week   integer;
    v_s_day    integer;
    v_s_week   integer;
    v_zone     text;
    v_taken    bigint;
    v_day      date;
    v_week     date;
    v_count    bigint;
    v_clash    record;
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.staff_id = OLD.staff_id AND NEW.service_id = OLD.service_id
       AND NEW.starts_at = OLD.starts_at AND NEW.ends_at = OLD.ends_at
       AND NEW.blocked = OLD.blocked AND NEW.session_key = OLD.session_key
       AND NEW.location_id IS NOT DISTINCT FROM OLD.location_id AND NEW.seats = OLD.seats
       AND NOT (NEW.status IN ('held', 'confirmed') AND OLD.status NOT IN ('held', 'confirmed')) THEN
        -- no change to the range, the session or whether it is live: nothing to judge
        RETURN NEW;
    END IF;

    SELECT buffer_before_minutes, buffer_after_minutes, seats, max_bookings_per_day, max_bookings_per_week
      INTO v_before, v_after, v_seats, v_v_day, v_v_week
      FROM services WHERE tenant_id = NEW.tenant_id AND id = NEW.service_id;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'bookings.service_id: unknown service';
    END IF;
    NEW.blocked := tstzrange(NEW.starts_at - make_interval(mins => v_before),
                             NEW.ends_at + make_interval(mins => v_after), '[)');
    NEW.session_key := coalesce(slotmill_session_key(NEW.staff_id, NEW.service_id, NEW.starts_at, v_seats), NEW.id::text);

    IF NEW.status NOT IN ('held', 'confirmed') THEN
        RETURN NEW;
    END IF;
    PERFORM pg_advisory_xact_lock(slotmill_staff_lock_key(NEW.tenant_id, NEW.staff_id));
    -- An expired hold never blocks anything: retire the ones in the way first.
    UPDATE bookings
       SET status = 'expired'
     WHERE tenant_id = NEW.tenant_id AND staff_id = NEW.staff_id
       AND status = 'held' AND expires_at <= clock_timestamp()
       AND blocked && NEW.blocked
       AND id <> NEW.id;

    -- Seats: the live bookings of one session take at most the service's seats.
    IF v_seats > 1 THEN
        SELECT coalesce(sum(b.seats), 0) INTO v_taken
          FROM bookings b
         WHERE b.tenant_id = NEW.tenant_id AND b.staff_id = NEW.staff_id AND b.starts_at = NEW.starts_at
           AND b.session_key = NEW.session_key AND b.id <> NEW.id
           AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > clock_timestamp()));
        IF v_taken + NEW.seats > v_seats THEN
            RAISE check_violation USING CONSTRAINT = 'bookings_session_seats',
                MESSAGE = format('the session has %s of %s seats taken; %s more do not fit',
                                 v_taken, v_seats, NEW.seats),
                TABLE = 'bookings';
        END IF;
    ELSIF NEW.seats > 1 THEN
        RAISE check_violation USING CONSTRAINT = 'bookings_session_seats',
            MESSAGE = format('a one-seat service takes one seat, not %s', NEW.seats), TABLE = 'bookings';
    END IF;

    -- Limits: counted in sessions (joining a session adds none), live bookings, over the
    -- staff member's local day and ISO week of starts_at.
    SELECT max_bookings_per_day, max_bookings_per_week INTO v_s_day, v_s_week
      FROM staff WHERE tenant_id = NEW.tenant_id AND id = NEW.staff_id;
    IF coalesce(v_s_day, v_s_week, v_v_day, v_v_week) IS NOT NULL
       AND NOT (v_seats > 1 AND EXISTS (
           SELECT 1 FROM bookings b
            WHERE b.tenant_id = NEW.tenant_id AND b.staff_id = NEW.staff_id AND b.starts_at = NEW.starts_at
              AND b.session_key = NEW.session_key AND b.id <> NEW.id
              AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > clock_timestamp())))) THEN
        v_zone := slotmill_staff_zone(NEW.tenant_id, NEW.staff_id);
        v_day := (NEW.starts_at AT TIME ZONE v_zone)::date;
        v_week := date_trunc('week', v_day)::date;
        FOR v_clash IN
            SELECT 'bookings_limit_staff_day' AS name, v_s_day AS lim, v_day AS lo, v_day + 1 AS hi, NULL::uuid AS svc
            UNION ALL SELECT 'bookings_limit_staff_week', v_s_week, v_week, v_week + 7, NULL
            UNION ALL SELECT 'bookings_limit_service_day', v_v_day, v_day, v_day + 1, NEW.service_id
            UNION ALL SELECT 'bookings_limit_service_week', v_v_week, v_week, v_week + 7, NEW.service_id
        LOOP
            CONTINUE WHEN v_clash.lim IS NULL;
            SELECT count(DISTINCT b.session_key) INTO v_count
              FROM bookings b
             WHERE b.tenant_id = NEW.tenant_id AND b.staff_id = NEW.staff_id AND b.id <> NEW.id
               AND (v_clash.svc IS NULL OR b.service_id = v_clash.svc)
               AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > clock_timestamp()))
               AND b.starts_at >= (v_clash.lo::timestamp AT TIME ZONE v_zone) - interval '1 day'
               AND b.starts_at < (v_clash.hi::timestamp AT TIME ZONE v_zone) + interval '1 day'
               AND (b.starts_at AT TIME ZONE v_zone)::date >= v_clash.lo
               AND (b.starts_at AT TIME ZONE v_zone)::date < v_clash.hi;
            IF v_count + 1 > v_clash.lim THEN
                RAISE check_violation USING CONSTRAINT = v_clash.name,
                    MESSAGE = format('%s: %s bookings from %s to %s already, the limit is %s',
                                     v_clash.name, v_count, v_clash.lo, v_clash.hi - 1, v_clash.lim),
                    TABLE = 'bookings';
            END IF;
        END LOOP;
    END IF;

    -- Travel: to get from this booking's location to another live booking's and back.
    IF NEW.location_id IS NOT NULL THEN
        SELECT b.id, b.location_id, l.name INTO v_clash
          FROM bookings b
          JOIN locations l ON l.tenant_id = b.tenant_id AND l.id = b.location_id
         WHERE b.tenant_id = NEW.tenant_id AND b.staff_id = NEW.staff_id AND b.id <> NEW.id
           AND b.session_key <> NEW.session_key  -- one session at two places: bookings_session_location
           AND b.location_id IS NOT NULL AND b.location_id <> NEW.location_id
           AND (b.status = 'confirmed' OR (b.status = 'held' AND b.expires_at > clock_timestamp()))
           AND b.starts_at < upper(NEW.blocked) + interval '2 days'
           AND b.ends_at > lower(NEW.blocked) - interval '2 days'
           AND NEW.blocked && tstzrange(
                   lower(b.blocked) - make_interval(mins => slotmill_travel(NEW.tenant_id, NEW.location_id, b.location_id)),
                   upper(b.blocked) + make_interval(mins => slotmill_travel(NEW.tenant_id, b.location_id, NEW.location_id)))
         LIMIT 1;
        IF FOUND THEN
            RAISE check_violation USING CONSTRAINT = 'bookings_travel',
                MESSAGE = format('no time to travel between this booking and booking %s at %s', v_clash.id, v_clash.name),
                TABLE = 'bookings';
        END IF;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER bookings_before_write
    BEFORE INSERT OR UPDATE ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_before_write();

-- Which resources a booking holds. blocked, live and session_key copy the booking's, so
-- the database refuses two live bookings holding one resource over overlapping blocked
-- ranges, the bookings of one session excepted.
CREATE TABLE booking_resources (
    tenant_id    uuid NOT NULL,
    booking_id   uuid NOT NULL,
    resource_id  uuid NOT NULL,
    blocked      tstzrange NOT NULL,
    live         boolean NOT NULL,
    session_key  text NOT NULL,
    PRIMARY KEY (tenant_id, booking_id, resource_id),
    FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
    CONSTRAINT booking_resources_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, resource_id WITH =, blocked WITH &&, session_key WITH <>
    ) WHERE (live)
);
-- a resource's bookings over a range (the engine's resource busy sets)
CREATE INDEX booking_resources_by_resource ON booking_resources USING gist (tenant_id, resource_id, blocked) WHERE live;

-- booking_resources copies its booking's blocked range, liveness and session, so its
-- exclusion constraint can judge; a host may insert just (tenant_id, booking_id,
-- resource_id). Takes the resource kind's lock (after the booking's staff lock, which its
-- booking's insert took) and retires the expired holds in the resource's way.
CREATE FUNCTION booking_resources_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_kind text;
BEGIN
    SELECT b.blocked, b.status = 'confirmed' OR b.status = 'held', b.session_key
      INTO NEW.blocked, NEW.live, NEW.session_key
      FROM bookings b WHERE b.tenant_id = NEW.tenant_id AND b.id = NEW.booking_id;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'booking_resources.booking_id: unknown booking';
    END IF;
    SELECT kind INTO v_kind FROM resources WHERE tenant_id = NEW.tenant_id AND id = NEW.resource_id;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'booking_resources.resource_id: unknown resource';
    END IF;
    IF NEW.live THEN
        PERFORM pg_advisory_xact_lock(slotmill_resource_lock_key(NEW.tenant_id, v_kind));
        UPDATE bookings b
           SET status = 'expired'
          FROM booking_resources r
         WHERE r.tenant_id = NEW.tenant_id AND r.resource_id = NEW.resource_id AND r.live
           AND r.blocked && NEW.blocked AND r.booking_id <> NEW.booking_id
           AND b.tenant_id = r.tenant_id AND b.id = r.booking_id
           AND b.status = 'held' AND b.expires_at <= clock_timestamp();
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER booking_resources_before_write
    BEFORE INSERT OR UPDATE OF booking_id, resource_id ON booking_resources
    FOR EACH ROW EXECUTE FUNCTION booking_resources_before_write();

-- A booking's change reaches its resources' copies.
CREATE FUNCTION bookings_sync_resources() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE booking_resources
       SET blocked = NEW.blocked,
           live = NEW.status IN ('held', 'confirmed'),
           session_key = NEW.session_key
     WHERE tenant_id = NEW.tenant_id AND booking_id = NEW.id
       AND (blocked, live, session_key) IS DISTINCT FROM (NEW.blocked, NEW.status IN ('held', 'confirmed'), NEW.session_key);
    RETURN NULL;
END $$;

CREATE TRIGGER bookings_sync_resources
    AFTER UPDATE OF status, blocked, session_key, starts_at, ends_at ON bookings
    FOR EACH ROW
    WHEN ((OLD.status, OLD.blocked, OLD.session_key) IS DISTINCT FROM (NEW.status, NEW.blocked, NEW.session_key))
    EXECUTE FUNCTION bookings_sync_resources();


-- ============================================================================================
-- Derived slots, reads and holds
-- ============================================================================================

-- The materialized slots. Slot ids are derived from tenant, staff, service and start
-- (materializer/slot_ids.py), so they survive recomputation.
--
-- Two indexes only: index maintenance, not the rows, is what a full refresh pays for
-- (measured: COPY of 240k rows 0.4 s bare, several seconds per extra index under load).
-- The primary key serves window replacement and hold hiding (one staff member's starts);
-- the id needs no index of its own because slotmill_slot_key() turns it back into the
-- primary key.
CREATE TABLE availability_slots (
    tenant_id    uuid NOT NULL,
    -- "C": ids are hex, compared byte-wise, never by a locale's rules
    id           text COLLATE "C" NOT NULL,
    staff_id     uuid NOT NULL,
    service_id   uuid NOT NULL,
    location_id  uuid,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    -- latest expiry of the live holds that overlap this slot's blocked range; a read
    -- hides the slot while held_until > now(), so expiry needs no job.
    held_until   timestamptz,
    -- seats left in this slot's session (1 for a one-seat service)
    seats_left     integer NOT NULL DEFAULT 1,
    -- bookings the resources still allow at this start; NULL: the service needs none
    resource_free  integer,
    PRIMARY KEY (tenant_id, staff_id, starts_at, service_id)
);
-- The public read (SPEC §6): one service, a start range, any or one staff member.
CREATE INDEX availability_slots_read ON availability_slots (tenant_id, service_id, starts_at);

-- A slot id back to its primary key: the staff member and service whose prefix matches
-- (staff_services.slot_prefix, by index), and the start minute. No row for a malformed id
-- or one of another tenant.
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
       AND ss.slot_prefix = left(p_id, 24)
$$;

-- A slot's blocked range (SPEC §5.4): its service's buffers around it. One definition for
-- the statements that hide, unhide and remove slots around a booking.
CREATE FUNCTION slotmill_slot_blocked(p_starts timestamptz, p_ends timestamptz, p_before integer, p_after integer)
RETURNS tstzrange
-- STABLE like the timestamptz - interval operator it uses, so the planner can inline it.
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- minutes only: adding them is exact elapsed time, whatever the session's zone
    SELECT tstzrange(p_starts - make_interval(mins => p_before), p_ends + make_interval(mins => p_after))
$$;

-- SPEC §6: a public read shows a slot iff it starts at or after slotmill_bookable_from()
-- and before slotmill_bookable_until(). Notice and advance come from the service where set,
-- else from tenants.settings (min_notice_minutes 0; max_advance_days = horizon_days).
-- Elapsed time, not calendar days: the answer must not depend on the session's TimeZone.
-- Clamped so that no setting a host writes can push an instant out of range.
-- Plain SQL functions, so the planner inlines them into the queries that use them
-- (sql/queries/reads.sql, bookings.sql).
CREATE FUNCTION slotmill_bookable_from(p_settings jsonb, p_min_notice_minutes integer) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT now() + make_interval(mins => least(greatest(coalesce(
        p_min_notice_minutes, slotmill_setting_int(p_settings, 'min_notice_minutes', 0)), 0), 5256000))
$$;

CREATE FUNCTION slotmill_bookable_until(p_settings jsonb, p_horizon_days integer, p_max_advance_days integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT now() + make_interval(secs => 86400.0 * least(coalesce(
        p_max_advance_days, slotmill_setting_int(p_settings, 'max_advance_days', p_horizon_days)), 3660))
$$;

-- The instants a public read covers (SPEC §6, §9): the request's range, given as instants
-- or as inclusive local dates in p_zone, clipped to the bookable window above. Empty when
-- lo >= hi. One definition for every read statement (sql/queries/reads.sql).
CREATE FUNCTION slotmill_read_window(
    p_settings jsonb, p_horizon_days integer, p_min_notice_minutes integer, p_max_advance_days integer,
    p_zone text, p_from_at timestamptz, p_to_at timestamptz, p_from_date date, p_to_date date)
RETURNS TABLE (lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT greatest(coalesce(p_from_at, p_from_date::timestamp AT TIME ZONE p_zone),
                    slotmill_bookable_from(p_settings, p_min_notice_minutes)),
           least(coalesce(p_to_at, (p_to_date + 1)::timestamp AT TIME ZONE p_zone),
                 slotmill_bookable_until(p_settings, p_horizon_days, p_max_advance_days))
$$;

-- Seats of a group session held right now by live holds (0 for a one-seat service): what
-- a read subtracts from a slot's seats_left, the hold path too.
CREATE FUNCTION slotmill_held_seats(p_tenant uuid, p_staff uuid, p_service uuid, p_starts timestamptz, p_seats integer)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_seats > 1 THEN (
               SELECT coalesce(sum(b.seats), 0)
                 FROM bookings b
                WHERE b.tenant_id = p_tenant AND b.staff_id = p_staff AND b.starts_at = p_starts
                  AND b.session_key = slotmill_session_key(p_staff, p_service, p_starts, p_seats)
                  AND b.status = 'held' AND b.expires_at > now())
           ELSE 0 END
$$;

-- The write half of a hold, in the caller's transaction under the staff lock: the held
-- booking (the bookings trigger judges seats, limits and travel), the resources the service
-- needs (free ones at the location before location-less ones, each by name then id, under
-- each kind's lock), the staff member's overlapping slots hidden (but for the session's own
-- slot); the hold as JSON. p_queue: the change also queues a recompute (a hold checked by
-- the engine past the horizon, whose readers' versions must move), else the hold path says
-- it has applied its effect itself (holds_applied).
CREATE FUNCTION slotmill_hold_insert(
    p_tenant uuid, p_settings jsonb, p_staff uuid, p_service uuid, p_location uuid,
    p_start timestamptz, p_ends timestamptz, p_seats integer, p_session_id text, p_queue boolean)
RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_booking    uuid;
    v_expires    timestamptz;
    v_blocked    tstzrange;
    v_session    text;
    v_need       record;
    v_got        integer;
BEGIN
    IF NOT p_queue THEN
        PERFORM set_config('slotmill.holds_applied', 'on', true);
    END IF;
    INSERT INTO bookings (tenant_id, staff_id, service_id, location_id, starts_at, ends_at,
                          status, expires_at, session_id, seats)
    VALUES (p_tenant, p_staff, p_service, p_location, p_start, p_ends, 'held',
            now() + make_interval(secs => greatest(slotmill_setting_int(p_settings, 'hold_ttl_seconds', 600), 1)),
            p_session_id, p_seats)
    RETURNING id, expires_at, blocked, session_key INTO v_booking, v_expires, v_blocked, v_session;

    -- Resources, kind by kind in order (the kinds' locks are taken in that order).
    FOR v_need IN
        SELECT sr.kind, sum(sr.quantity)::integer AS quantity
          FROM service_resources sr
         WHERE sr.tenant_id = p_tenant AND sr.service_id = p_service
         GROUP BY sr.kind
         ORDER BY sr.kind
    LOOP
        PERFORM pg_advisory_xact_lock(slotmill_resource_lock_key(p_tenant, v_need.kind));
        INSERT INTO booking_resources (tenant_id, booking_id, resource_id, blocked, live, session_key)
        SELECT p_tenant, v_booking, r.id, v_blocked, true, v_session
          FROM resources r
         WHERE r.tenant_id = p_tenant AND r.kind = v_need.kind AND r.active
           AND (r.location_id IS NULL OR r.location_id = p_location)
           AND NOT EXISTS (
               SELECT 1
                 FROM booking_resources br
                 JOIN bookings b ON b.tenant_id = br.tenant_id AND b.id = br.booking_id
                WHERE br.tenant_id = p_tenant AND br.resource_id = r.id AND br.live
                  AND br.blocked && v_blocked AND br.session_key <> v_session
                  AND (b.status = 'confirmed' OR b.expires_at > clock_timestamp()))
         ORDER BY r.location_id IS NULL, r.name, r.id
         LIMIT v_need.quantity;
        GET DIAGNOSTICS v_got = ROW_COUNT;
        IF v_got < v_need.quantity THEN
            RAISE check_violation USING CONSTRAINT = 'booking_resources_unavailable',
                MESSAGE = format('%s of %s %s free at this time', v_got, v_need.quantity, v_need.kind),
                TABLE = 'booking_resources';
        END IF;
    END LOOP;

    -- Hide that staff member's slots (every service) whose blocked range overlaps the
    -- hold's, but for the session's own slot. A slot's blocked range starts at most 1 day
    -- (buffer) before it and ends at most 2 days (duration + buffer) after: the starts_at
    -- bounds keep this on the key.
    UPDATE availability_slots a
       SET held_until = greatest(a.held_until, v_expires)
      FROM services v
     WHERE a.tenant_id = p_tenant AND a.staff_id = p_staff
       AND a.starts_at > lower(v_blocked) - interval '48 hours'
       AND a.starts_at < upper(v_blocked) + interval '24 hours'
       AND v.tenant_id = a.tenant_id AND v.id = a.service_id
       AND slotmill_slot_blocked(a.starts_at, a.ends_at, v.buffer_before_minutes, v.buffer_after_minutes) && v_blocked
       AND slotmill_session_key(a.staff_id, a.service_id, a.starts_at, v.seats) IS DISTINCT FROM v_session;

    RETURN         json_build_object(
            'hold_id', v_booking,
            'staff_id', p_staff,
            'service_id', p_service,
            'location_id', p_location,
            'starts_at', slotmill_instant(p_start),
            'ends_at', slotmill_instant(p_ends),
            -- to the microsecond: a countdown shown from it must not end before the hold does
            'expires_at', to_char(v_expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'seats', p_seats)::text;
END $$;

-- A hold (SPEC §7) as one PL/pgSQL function: it caches a plan per statement once per
-- session and needs one round trip (planning the equivalent CTEs cost ~4 ms per hold,
-- more than executing them). It is VOLATILE, so under READ COMMITTED each statement takes
-- a fresh snapshot: the statements after the staff lock see whatever a concurrent
-- recompute committed before the lock was granted.
--
-- Returns one row: which of tenant / service / staff / slot id is unknown (404s), and the
-- hold as JSON text, or NULL when the slot is not visible (409). A conflicting booking the
-- slot table does not show yet makes the INSERT raise exclusion_violation (409 too). Past
-- the table's end (beyond the horizon, within the advance limit) it returns beyond_*: the
-- caller judges the start with the engine while this transaction holds the staff lock,
-- then writes it with slotmill_hold_insert (materializer/beyond.py).
CREATE FUNCTION slotmill_hold(
    p_slug text,
    p_slot_id text,
    p_service_id uuid,
    p_starts_at timestamptz,
    p_staff_id uuid,
    p_session_id text,
    p_seats integer
) RETURNS TABLE (no_tenant boolean, no_service boolean, no_staff boolean, no_slot boolean, hold text,
                beyond_tenant uuid, beyond_staff uuid, beyond_service uuid, beyond_start timestamptz)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_tenant     uuid;
    v_settings   jsonb;
    v_horizon    integer;
    v_zone       text;
    v_staff      uuid := p_staff_id;
    v_service    uuid := p_service_id;
    v_start      timestamptz := p_starts_at;
    v_notice     integer;
    v_advance    integer;
    v_seats      integer;
    v_location   uuid;
    v_ends       timestamptz;
    v_held       timestamptz;
    v_left       integer;
    v_taken      bigint;
BEGIN
    SELECT t.id, t.settings, t.horizon_days, t.timezone INTO v_tenant, v_settings, v_horizon, v_zone
      FROM tenants t WHERE t.slug = p_slug;
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, false, false, false, NULL::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;

    IF p_slot_id IS NOT NULL THEN
        -- An id of another tenant, or a made-up one, decodes to nothing: 404. A real
        -- slot that is gone or hidden is a 409 below.
        SELECT k.staff_id, k.service_id, k.starts_at INTO v_staff, v_service, v_start
          FROM slotmill_slot_key(v_tenant, p_slot_id) k;
        IF NOT FOUND THEN
            RETURN QUERY SELECT false, false, false, true, NULL::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz;
            RETURN;
        END IF;
    END IF;

    SELECT v.min_notice_minutes, v.max_advance_days, v.seats
      INTO v_notice, v_advance, v_seats
      FROM services v WHERE v.tenant_id = v_tenant AND v.id = v_service AND v.active;
    -- By time, an unknown or inactive service or staff member is a 404; by slot id the
    -- slot is real but no longer offered: a 409.
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, p_slot_id IS NULL, false, false, NULL::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;
    PERFORM 1 FROM staff s WHERE s.tenant_id = v_tenant AND s.id = v_staff AND s.active;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, false, p_slot_id IS NULL, false, NULL::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(slotmill_staff_lock_key(v_tenant, v_staff));

    -- Visible now, with the seats asked for? Read after the lock, so a recompute that
    -- committed while we waited is seen.
    SELECT a.location_id, a.ends_at, a.held_until, a.seats_left INTO v_location, v_ends, v_held, v_left
      FROM availability_slots a
     WHERE a.tenant_id = v_tenant AND a.staff_id = v_staff
       AND a.starts_at = v_start AND a.service_id = v_service;
    IF NOT FOUND
       AND v_start >= slotmill_table_end(v_tenant, v_zone, v_horizon)
       AND v_start >= slotmill_bookable_from(v_settings, v_notice)
       AND v_start < slotmill_bookable_until(v_settings, v_horizon, v_advance) THEN
        -- Past the materialized horizon and within the advance limit: the caller judges
        -- the start with the engine (under this same lock, in a transaction of its own).
        RETURN QUERY SELECT false, false, false, false, NULL::text, v_tenant, v_staff, v_service, v_start;
        RETURN;
    END IF;
    IF NOT FOUND
       OR (v_held IS NOT NULL AND v_held > now())
       OR v_start < slotmill_bookable_from(v_settings, v_notice)
       OR v_start >= slotmill_bookable_until(v_settings, v_horizon, v_advance) THEN
        RETURN QUERY SELECT false, false, false, false, NULL::text, NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz;
        RETURN;
    END IF;
    IF v_seats > 1 THEN
        v_taken := slotmill_held_seats(v_tenant, v_staff, v_service, v_start, v_seats);
        IF v_left - v_taken < p_seats THEN
            RAISE check_violation USING CONSTRAINT = 'bookings_session_seats',
                MESSAGE = format('%s of the session''s seats are left, not %s', greatest(v_left - v_taken, 0), p_seats),
                TABLE = 'bookings';
        END IF;
    END IF;

    RETURN QUERY SELECT false, false, false, false,
        slotmill_hold_insert(v_tenant, v_settings, v_staff, v_service, v_location, v_start, v_ends, p_seats,
                             p_session_id, false),
        NULL::uuid, NULL::uuid, NULL::uuid, NULL::timestamptz;
END $$;


-- ============================================================================================
-- Calendar feeds
-- ============================================================================================
-- An ICS URL per staff member (docs/architecture.md#calendar-feeds), synced by the worker (jobs/feeds.py) into
-- busy_times with source 'feed:<feed id>' and external_id UID + recurrence id, replaced in
-- one transaction. The row keeps the last validators (conditional GET) and the last
-- result: a failure records why and changes nothing else.

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


-- ============================================================================================
-- Queue and bookkeeping
-- ============================================================================================

-- The transactional outbox of recompute work (SPEC §8), filled by the triggers below.
-- staff_id NULL: every staff member of the tenant; during NULL: the whole horizon.
-- Failed recomputes are retried with back-off and, after a few attempts, parked: they stay
-- in the queue (never lost, shown by admin status) but no longer block anything. A later
-- request of the same (tenant, staff member) claims them again with it.
CREATE TABLE recompute_requests (
    tenant_id     uuid NOT NULL,
    id            bigint GENERATED ALWAYS AS IDENTITY,
    staff_id      uuid,
    during        tstzrange,
    reason        text NOT NULL,
    requested_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    attempts      integer NOT NULL DEFAULT 0,
    -- retry after this instant (back-off); NULL: now
    not_before    timestamptz,
    -- why the last attempt failed; set: retried with back-off, then parked
    last_error    text,
    PRIMARY KEY (tenant_id, id)
);
-- every request oldest first, across tenants (the claim's order, first come first served)
CREATE INDEX recompute_requests_fifo ON recompute_requests (id);
-- the claim's head: the oldest request that never failed (query claim_group)
CREATE INDEX recompute_requests_due ON recompute_requests (id) WHERE last_error IS NULL;
-- failed requests of a tenant by when they are due again (retries, admin status)
CREATE INDEX recompute_requests_failed ON recompute_requests (tenant_id, not_before) WHERE last_error IS NOT NULL;

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
-- status and freshness: a tenant's latest run of each kind
CREATE INDEX refresh_runs_latest ON refresh_runs (tenant_id, kind, finished_at DESC);

-- Where the table's slots end: the horizon's end, or, between local midnight and the next
-- full refresh, the end the last full refresh covered. Slots from there on are the
-- engine's (reads and holds alike), so a day the nightly has not written yet is still
-- offered, exactly as it will be written.
CREATE FUNCTION slotmill_table_end(p_tenant uuid, p_zone text, p_horizon_days integer)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT least(((now() AT TIME ZONE p_zone)::date + p_horizon_days)::timestamp AT TIME ZONE p_zone,
                 coalesce((SELECT r.horizon_end
                             FROM refresh_runs r
                            WHERE r.tenant_id = p_tenant AND r.kind = 'full'
                            ORDER BY r.finished_at DESC
                            LIMIT 1), 'infinity'))
$$;

-- One row per run of a per-tenant scheduled job and tick (the nightly refresh of one local
-- date). Written when the run finishes, while the run holds a session advisory lock on
-- slotmill_job_lock_key(job, tenant): a second worker either cannot take the lock or finds
-- the row, so the job runs once per tick however many workers are up, and a run that
-- crashed half-way left no row and is retried.
CREATE TABLE job_ticks (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job          text NOT NULL,
    tick         text NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    worker       text NOT NULL DEFAULT '',
    PRIMARY KEY (tenant_id, job, tick)
);

-- Host-backend keys: only a hash of the secret is stored.
CREATE TABLE api_keys (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    key_hash     text NOT NULL,
    prefix       text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    -- its index authenticates a request by tenant and hash (0013: tenant first, like every key)
    UNIQUE (tenant_id, key_hash)
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


-- ============================================================================================
-- Triggers (every source write enqueues a recompute)
-- ============================================================================================
-- Every write to a source table enqueues, in its own transaction, a recompute of the staff
-- members and instants it can affect (SPEC §8), and wakes the workers. (The bookings
-- trigger that keeps the conflict rule is in section Bookings and the conflict rule.)
--
-- Statement-level triggers with transition tables: a bulk write (an import of 10,000
-- time-off rows) enqueues one row per distinct scope, not one per source row. A trigger
-- with transition tables may name only one event, hence three per table.
--
-- Scope of a request: a booking touches its staff member and blocked range; a template,
-- staff or staff_services change the staff member's horizon; an override or holiday its
-- dates (slotmill_date_span; the whole horizon when it recurs), a tenant-wide holiday
-- every staff member on those dates; a service change its staff; a tenant or location
-- change the whole tenant. The worker widens each range again by the longest service
-- span, so slots whose buffers reach into it are recomputed too.

-- The generic enqueue: the arguments of each trigger say which staff member and range a row
-- of that table touches.
CREATE FUNCTION slotmill_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    -- TG_ARGV[0]: expression for staff_id, TG_ARGV[1]: expression for during, both over r.*
    v_src text;
    v_count bigint;
BEGIN
    v_src := CASE TG_OP
        WHEN 'INSERT' THEN 'SELECT * FROM new_rows'
        WHEN 'DELETE' THEN 'SELECT * FROM old_rows'
        ELSE 'SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows'
    END;
    EXECUTE format(
        'INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
         SELECT DISTINCT r.tenant_id, %s, %s, %L FROM (%s) r',
        TG_ARGV[0], TG_ARGV[1], TG_TABLE_NAME, v_src);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('slotmill_recompute', '');
    END IF;
    RETURN NULL;
END $$;

-- Attach slotmill_enqueue() to one table for INSERT, UPDATE and DELETE: the three
-- <table>_enqueue_ins/_upd/_del triggers below. Migration 0002 made them with it; a new
-- source table can too.
CREATE FUNCTION slotmill_attach_enqueue(p_table text, p_staff text, p_during text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue(%L, %L)',
                   p_table || '_enqueue_ins', p_table, p_staff, p_during);
    EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue(%L, %L)',
                   p_table || '_enqueue_upd', p_table, p_staff, p_during);
    EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows
                    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue(%L, %L)',
                   p_table || '_enqueue_del', p_table, p_staff, p_during);
END $$;

-- A service change reaches every staff member who performs it.
CREATE FUNCTION services_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        -- staff_services rows go by cascade, and their own trigger enqueues their staff
        RETURN NULL;
    END IF;
    INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
    SELECT DISTINCT ss.tenant_id, ss.staff_id, NULL::tstzrange, 'services'
      FROM new_rows r
      JOIN staff_services ss ON ss.tenant_id = r.tenant_id AND ss.service_id = r.id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('slotmill_recompute', '');
    END IF;
    RETURN NULL;
END $$;

-- Bookings: only rows that block or stopped blocking matter. A transaction that has
-- already applied a hold's effect on the slot table itself (the API's hold and release
-- paths, the expiry clean-up) says so with SET LOCAL slotmill.holds_applied = 'on'; then
-- hold-only transitions enqueue nothing. Anything touching a confirmed booking always does.
CREATE TYPE slotmill_changed_booking AS (
    tenant_id uuid, id uuid, staff_id uuid, service_id uuid, blocked tstzrange, confirmed boolean
);

CREATE FUNCTION slotmill_enqueue_bookings(p_changed slotmill_changed_booking[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
    v_more  bigint;
BEGIN
    INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
    SELECT c.tenant_id, c.staff_id,
           tstzrange(min(lower(c.blocked) - w.widen - w.travel), max(upper(c.blocked) + w.widen + w.travel)),
           'bookings'
      FROM unnest(p_changed) c
     CROSS JOIN LATERAL (
           SELECT CASE WHEN s.max_bookings_per_day IS NOT NULL OR s.max_bookings_per_week IS NOT NULL
                            OR v.max_bookings_per_day IS NOT NULL OR v.max_bookings_per_week IS NOT NULL
                       THEN interval '8 days' ELSE interval '0' END AS widen,
                  make_interval(mins => coalesce((SELECT max(t.minutes) FROM location_travel t
                                                   WHERE t.tenant_id = c.tenant_id), 0)) AS travel
             FROM staff s, services v
            WHERE s.tenant_id = c.tenant_id AND s.id = c.staff_id
              AND v.tenant_id = c.tenant_id AND v.id = c.service_id) w
     GROUP BY c.tenant_id, c.staff_id;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
    SELECT c.tenant_id, x.staff_id, tstzrange(min(lower(c.blocked)), max(upper(c.blocked))), 'booking_resources'
      FROM unnest(p_changed) c
      JOIN booking_resources br ON br.tenant_id = c.tenant_id AND br.booking_id = c.id
      JOIN resources res ON res.tenant_id = br.tenant_id AND res.id = br.resource_id
     CROSS JOIN LATERAL slotmill_resource_staff(c.tenant_id, res.kind, res.location_id) x
     WHERE c.confirmed
     GROUP BY c.tenant_id, x.staff_id;
    GET DIAGNOSTICS v_more = ROW_COUNT;
    IF v_count + v_more > 0 THEN
        PERFORM pg_notify('slotmill_recompute', '');
    END IF;
    RETURN v_count + v_more;
END $$;

CREATE FUNCTION bookings_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_skip_holds boolean := coalesce(current_setting('slotmill.holds_applied', true), '') = 'on';
    v_changed slotmill_changed_booking[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        SELECT array_agg(ROW(r.tenant_id, r.id, r.staff_id, r.service_id, r.blocked, r.status = 'confirmed')::slotmill_changed_booking)
          INTO v_changed
          FROM new_rows r
         WHERE r.status = 'confirmed' OR (r.status = 'held' AND NOT v_skip_holds);
    ELSIF TG_OP = 'DELETE' THEN
        SELECT array_agg(ROW(r.tenant_id, r.id, r.staff_id, r.service_id, r.blocked, r.status = 'confirmed')::slotmill_changed_booking)
          INTO v_changed
          FROM old_rows r
         WHERE r.status = 'confirmed' OR r.status = 'held';
    ELSE
        SELECT array_agg(ROW(c.tenant_id, c.id, c.staff_id, c.service_id, c.blocked,
                             'confirmed' IN (c.old_status, c.new_status))::slotmill_changed_booking)
          INTO v_changed
          FROM (
            SELECT o.tenant_id, o.id, o.staff_id, o.service_id, o.blocked, o.status AS old_status, n.status AS new_status
              FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE (o.status, o.staff_id, o.blocked, o.expires_at, o.seats, o.location_id) IS DISTINCT FROM
                   (n.status, n.staff_id, n.blocked, n.expires_at, n.seats, n.location_id)
            UNION ALL
            SELECT n.tenant_id, n.id, n.staff_id, n.service_id, n.blocked, o.status, n.status
              FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE (o.status, o.staff_id, o.blocked, o.expires_at, o.seats, o.location_id) IS DISTINCT FROM
                   (n.status, n.staff_id, n.blocked, n.expires_at, n.seats, n.location_id)
          ) c
         WHERE (c.old_status IN ('held', 'confirmed') OR c.new_status IN ('held', 'confirmed'))
           AND NOT (v_skip_holds AND 'confirmed' NOT IN (c.old_status, c.new_status));
    END IF;
    IF v_changed IS NOT NULL THEN
        PERFORM slotmill_enqueue_bookings(v_changed);
    END IF;
    RETURN NULL;
END $$;

-- TRUNCATE has no transition table and names no tenant: every tenant is recomputed whole.
-- The staff members a resource can matter to: those who perform a service needing its
-- kind and may work where it is (it has no location, or they are or work there).
CREATE FUNCTION slotmill_resource_staff(p_tenant uuid, p_kind text, p_location uuid)
RETURNS TABLE (staff_id uuid)
LANGUAGE sql STABLE AS $$
    SELECT DISTINCT ss.staff_id
      FROM service_resources sr
      JOIN staff_services ss ON ss.tenant_id = sr.tenant_id AND ss.service_id = sr.service_id
      JOIN staff s ON s.tenant_id = ss.tenant_id AND s.id = ss.staff_id
     WHERE sr.tenant_id = p_tenant AND sr.kind = p_kind
       AND (p_location IS NULL OR s.location_id IS NULL OR s.location_id = p_location
            OR EXISTS (SELECT 1 FROM availability_templates t
                        WHERE t.tenant_id = s.tenant_id AND t.staff_id = s.id AND t.location_id = p_location)
            OR EXISTS (SELECT 1 FROM availability_overrides o
                        WHERE o.tenant_id = s.tenant_id AND o.staff_id = s.id AND o.location_id = p_location))
$$;

-- A confirmed booking's resources change what every such staff member can offer over its
-- blocked range. Hold paths (holds_applied) enqueue nothing: another staff member's hold on
-- a resource never hides a slot (the database refuses the competing hold instead).
CREATE FUNCTION booking_resources_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_count bigint;
BEGIN
    IF coalesce(current_setting('slotmill.holds_applied', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    EXECUTE format(
        'INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
         SELECT r.tenant_id, x.staff_id, tstzrange(min(lower(r.blocked)), max(upper(r.blocked))), %L
           FROM (%s) r
           JOIN resources res ON res.tenant_id = r.tenant_id AND res.id = r.resource_id
          CROSS JOIN LATERAL slotmill_resource_staff(r.tenant_id, res.kind, res.location_id) x
          GROUP BY r.tenant_id, x.staff_id',
        'booking_resources',
        CASE TG_OP WHEN 'INSERT' THEN 'SELECT * FROM new_rows'
                   WHEN 'DELETE' THEN 'SELECT * FROM old_rows'
                   ELSE 'SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows' END);
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('slotmill_recompute', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER booking_resources_enqueue_ins AFTER INSERT ON booking_resources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION booking_resources_enqueue();
CREATE TRIGGER booking_resources_enqueue_upd AFTER UPDATE ON booking_resources
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION booking_resources_enqueue();
CREATE TRIGGER booking_resources_enqueue_del AFTER DELETE ON booking_resources REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION booking_resources_enqueue();

-- A change of resources or of what services need: every staff member the kind can matter
-- to, over the whole horizon. A change of travel times: the staff members who work at
-- either location (or have no fixed one), over the whole horizon.
CREATE FUNCTION slotmill_enqueue_rules_v2() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_src text := CASE TG_OP WHEN 'INSERT' THEN 'SELECT * FROM new_rows'
                             WHEN 'DELETE' THEN 'SELECT * FROM old_rows'
                             ELSE 'SELECT * FROM old_rows UNION ALL SELECT * FROM new_rows' END;
    v_count bigint;
BEGIN
    IF TG_TABLE_NAME = 'resources' THEN
        EXECUTE format(
            'INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
             SELECT DISTINCT r.tenant_id, x.staff_id, NULL::tstzrange, %L
               FROM (%s) r CROSS JOIN LATERAL slotmill_resource_staff(r.tenant_id, r.kind, r.location_id) x',
            TG_TABLE_NAME, v_src);
    ELSIF TG_TABLE_NAME = 'service_resources' THEN
        EXECUTE format(
            'INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
             SELECT DISTINCT r.tenant_id, ss.staff_id, NULL::tstzrange, %L
               FROM (%s) r JOIN staff_services ss ON ss.tenant_id = r.tenant_id AND ss.service_id = r.service_id',
            TG_TABLE_NAME, v_src);
    ELSE  -- location_travel
        EXECUTE format(
            'INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
             SELECT DISTINCT r.tenant_id, s.id, NULL::tstzrange, %L
               FROM (%s) r
               JOIN staff s ON s.tenant_id = r.tenant_id
              WHERE s.location_id IS NULL OR s.location_id IN (r.from_location_id, r.to_location_id)
                 OR EXISTS (SELECT 1 FROM availability_templates t
                             WHERE t.tenant_id = s.tenant_id AND t.staff_id = s.id
                               AND t.location_id IN (r.from_location_id, r.to_location_id))
                 OR EXISTS (SELECT 1 FROM availability_overrides o
                             WHERE o.tenant_id = s.tenant_id AND o.staff_id = s.id
                               AND o.location_id IN (r.from_location_id, r.to_location_id))',
            TG_TABLE_NAME, v_src);
    END IF;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('slotmill_recompute', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER resources_enqueue_ins AFTER INSERT ON resources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER resources_enqueue_upd AFTER UPDATE ON resources REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER resources_enqueue_del AFTER DELETE ON resources REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER service_resources_enqueue_ins AFTER INSERT ON service_resources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER service_resources_enqueue_upd AFTER UPDATE ON service_resources REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER service_resources_enqueue_del AFTER DELETE ON service_resources REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER location_travel_enqueue_ins AFTER INSERT ON location_travel REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER location_travel_enqueue_upd AFTER UPDATE ON location_travel REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();
CREATE TRIGGER location_travel_enqueue_del AFTER DELETE ON location_travel REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2();

CREATE FUNCTION slotmill_enqueue_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
    SELECT id, NULL, NULL, TG_TABLE_NAME || ' truncated' FROM tenants;
    PERFORM pg_notify('slotmill_recompute', '');
    RETURN NULL;
END $$;

-- The whole tenant. (No TRUNCATE trigger on tenants: with no tenant left, nothing to recompute.)
CREATE TRIGGER tenants_enqueue_ins AFTER INSERT ON tenants REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('NULL::uuid', 'NULL::tstzrange');
CREATE TRIGGER tenants_enqueue_upd AFTER UPDATE ON tenants REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('NULL::uuid', 'NULL::tstzrange');
CREATE TRIGGER tenants_enqueue_del AFTER DELETE ON tenants REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('NULL::uuid', 'NULL::tstzrange');

CREATE TRIGGER locations_enqueue_ins AFTER INSERT ON locations REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('NULL::uuid', 'NULL::tstzrange');
CREATE TRIGGER locations_enqueue_upd AFTER UPDATE ON locations REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('NULL::uuid', 'NULL::tstzrange');
CREATE TRIGGER locations_enqueue_del AFTER DELETE ON locations REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('NULL::uuid', 'NULL::tstzrange');
CREATE TRIGGER locations_enqueue_truncate AFTER TRUNCATE ON locations
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

-- One staff member's whole horizon.
CREATE TRIGGER staff_enqueue_ins AFTER INSERT ON staff REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.id', 'NULL::tstzrange');
CREATE TRIGGER staff_enqueue_upd AFTER UPDATE ON staff REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.id', 'NULL::tstzrange');
CREATE TRIGGER staff_enqueue_del AFTER DELETE ON staff REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.id', 'NULL::tstzrange');
CREATE TRIGGER staff_enqueue_truncate AFTER TRUNCATE ON staff
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

CREATE TRIGGER services_enqueue_ins AFTER INSERT ON services REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION services_enqueue();
CREATE TRIGGER services_enqueue_upd AFTER UPDATE ON services REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION services_enqueue();
CREATE TRIGGER services_enqueue_truncate AFTER TRUNCATE ON services
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

CREATE TRIGGER staff_services_enqueue_ins AFTER INSERT ON staff_services REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'NULL::tstzrange');
CREATE TRIGGER staff_services_enqueue_upd AFTER UPDATE ON staff_services REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'NULL::tstzrange');
CREATE TRIGGER staff_services_enqueue_del AFTER DELETE ON staff_services REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'NULL::tstzrange');
CREATE TRIGGER staff_services_enqueue_truncate AFTER TRUNCATE ON staff_services
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

CREATE TRIGGER availability_templates_enqueue_ins AFTER INSERT ON availability_templates REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'NULL::tstzrange');
CREATE TRIGGER availability_templates_enqueue_upd AFTER UPDATE ON availability_templates REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'NULL::tstzrange');
CREATE TRIGGER availability_templates_enqueue_del AFTER DELETE ON availability_templates REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'NULL::tstzrange');
CREATE TRIGGER availability_templates_enqueue_truncate AFTER TRUNCATE ON availability_templates
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

-- Date-based rules: their dates, or the whole horizon when they recur.
CREATE TRIGGER availability_overrides_enqueue_ins AFTER INSERT ON availability_overrides REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
CREATE TRIGGER availability_overrides_enqueue_upd AFTER UPDATE ON availability_overrides REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
CREATE TRIGGER availability_overrides_enqueue_del AFTER DELETE ON availability_overrides REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
CREATE TRIGGER availability_overrides_enqueue_truncate AFTER TRUNCATE ON availability_overrides
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

-- staff_id NULL (a tenant-wide holiday) enqueues every staff member of the tenant
CREATE TRIGGER holidays_enqueue_ins AFTER INSERT ON holidays REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
CREATE TRIGGER holidays_enqueue_upd AFTER UPDATE ON holidays REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
CREATE TRIGGER holidays_enqueue_del AFTER DELETE ON holidays REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
CREATE TRIGGER holidays_enqueue_truncate AFTER TRUNCATE ON holidays
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

-- Ranges of instants: exactly that range.
CREATE TRIGGER time_off_enqueue_ins AFTER INSERT ON time_off REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'r.during');
CREATE TRIGGER time_off_enqueue_upd AFTER UPDATE ON time_off REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'r.during');
CREATE TRIGGER time_off_enqueue_del AFTER DELETE ON time_off REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'r.during');
CREATE TRIGGER time_off_enqueue_truncate AFTER TRUNCATE ON time_off
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

CREATE TRIGGER busy_times_enqueue_ins AFTER INSERT ON busy_times REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'r.during');
CREATE TRIGGER busy_times_enqueue_upd AFTER UPDATE ON busy_times REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'r.during');
CREATE TRIGGER busy_times_enqueue_del AFTER DELETE ON busy_times REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue('r.staff_id', 'r.during');
CREATE TRIGGER busy_times_enqueue_truncate AFTER TRUNCATE ON busy_times
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();

-- Bookings: the staff member's blocked range, and only when a booking blocks or stopped
-- blocking (bookings_enqueue).
CREATE TRIGGER bookings_enqueue_ins AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_enqueue();
CREATE TRIGGER bookings_enqueue_upd AFTER UPDATE ON bookings REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_enqueue();
CREATE TRIGGER bookings_enqueue_del AFTER DELETE ON bookings REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_enqueue();
CREATE TRIGGER bookings_enqueue_truncate AFTER TRUNCATE ON bookings
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();
CREATE TRIGGER resources_enqueue_truncate AFTER TRUNCATE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();
CREATE TRIGGER service_resources_enqueue_truncate AFTER TRUNCATE ON service_resources
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();
CREATE TRIGGER location_travel_enqueue_truncate AFTER TRUNCATE ON location_travel
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();
CREATE TRIGGER booking_resources_enqueue_truncate AFTER TRUNCATE ON booking_resources
    FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate();


-- ============================================================================================
-- Read versions: kept answers that are never stale
-- ============================================================================================
-- A staff member's version changes in the same transaction as anything that can change what
-- a read shows of them (a slot write, a recompute request, a hold on a group session); an
-- API process serves a kept answer only while the tenant's sum of versions is unchanged and
-- time has not moved it (slotmill_kept_until). api/readcache.py.

CREATE TABLE staff_versions (
    tenant_id  uuid NOT NULL,
    staff_id   uuid NOT NULL,
    version    bigint NOT NULL DEFAULT 1,
    PRIMARY KEY (tenant_id, staff_id)
);

-- Bump the versions of some staff members. A NULL in p_staff (a change of the whole tenant:
-- its zone, a location, a tenant-wide holiday) bumps the tenant's own row instead (staff_id
-- all zeros), so it locks one row, not every staff member's. Rows are bumped in id order:
-- two transactions bumping the same rows in one statement never deadlock. A staff member
-- deleted since keeps a row: a later delete of their slots still bumps it.
CREATE FUNCTION slotmill_bump_versions(p_tenant uuid, p_staff uuid[]) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO staff_versions AS v (tenant_id, staff_id)
    SELECT DISTINCT p_tenant, coalesce(x, '00000000-0000-0000-0000-000000000000'::uuid)
      FROM unnest(p_staff) AS x
     ORDER BY 2
        ON CONFLICT (tenant_id, staff_id) DO UPDATE SET version = v.version + 1
$$;

-- Slot writes (statement-level, with transition tables: a refresh of 60,000 rows bumps each
-- of its staff members once).
CREATE FUNCTION availability_slots_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM slotmill_bump_versions(t, array_agg(DISTINCT s))
           FROM (SELECT tenant_id AS t, staff_id AS s FROM new_rows) x GROUP BY t;
    ELSIF TG_OP = 'DELETE' THEN
        PERFORM slotmill_bump_versions(t, array_agg(DISTINCT s))
           FROM (SELECT tenant_id AS t, staff_id AS s FROM old_rows) x GROUP BY t;
    ELSE
        PERFORM slotmill_bump_versions(t, array_agg(DISTINCT s))
           FROM (SELECT tenant_id AS t, staff_id AS s FROM new_rows
                 UNION ALL SELECT tenant_id, staff_id FROM old_rows) x GROUP BY t;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER availability_slots_bump_ins AFTER INSERT ON availability_slots REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_bump();
CREATE TRIGGER availability_slots_bump_upd AFTER UPDATE ON availability_slots
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_bump();
CREATE TRIGGER availability_slots_bump_del AFTER DELETE ON availability_slots REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION availability_slots_bump();

-- Every change of rules or bookings queues a recompute request in its own transaction
-- (the enqueue triggers): its insert bumps the staff members it names.
CREATE FUNCTION recompute_requests_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM slotmill_bump_versions(t, array_agg(DISTINCT s))
       FROM (SELECT tenant_id AS t, staff_id AS s FROM new_rows) x GROUP BY t;
    RETURN NULL;
END $$;

CREATE TRIGGER recompute_requests_bump AFTER INSERT ON recompute_requests REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION recompute_requests_bump();

-- Group sessions: a hold or release changes the seats a read subtracts without writing a
-- slot row (the holds path sets holds_applied, so it queues nothing either).
CREATE FUNCTION bookings_bump_sessions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM slotmill_bump_versions(t, array_agg(DISTINCT s))
           FROM (SELECT tenant_id AS t, staff_id AS s FROM new_rows WHERE session_key LIKE 'g:%') x GROUP BY t;
    ELSE
        PERFORM slotmill_bump_versions(t, array_agg(DISTINCT s))
           FROM (SELECT n.tenant_id AS t, n.staff_id AS s
                   FROM new_rows n JOIN old_rows o ON o.tenant_id = n.tenant_id AND o.id = n.id
                  WHERE n.session_key LIKE 'g:%' AND (n.status, n.seats) IS DISTINCT FROM (o.status, o.seats)) x
          GROUP BY t;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER bookings_bump_sessions_ins AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_bump_sessions();
CREATE TRIGGER bookings_bump_sessions_upd AFTER UPDATE ON bookings
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_bump_sessions();

-- What an API process checks before it serves a kept answer: one index range scan.
CREATE FUNCTION slotmill_tenant_version(p_tenant uuid) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT coalesce(sum(version), 0)::bigint FROM staff_versions WHERE tenant_id = p_tenant
$$;

-- Until when a read's answer for one service over [lo, hi) (what was asked: [asked_lo,
-- asked_hi); notice and advance cut it at bookable_from and bookable_until now) stays what
-- it is with no write at all: until the first hidden slot's hold lapses, the first live
-- hold of the service in the window lapses (seats of a group session come back), the
-- first slot in the window falls under the minimum notice, or the next slot past the
-- advance limit comes into it. NULL: for ever (as far as time goes).
CREATE FUNCTION slotmill_kept_until(
    p_tenant uuid, p_service uuid, p_lo timestamptz, p_hi timestamptz, p_asked_lo timestamptz,
    p_asked_hi timestamptz, p_bookable_from timestamptz, p_bookable_until timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT least(
        (SELECT min(a.held_until) FROM availability_slots a
          WHERE a.tenant_id = p_tenant AND a.service_id = p_service
            AND a.starts_at >= p_lo AND a.starts_at < p_hi AND a.held_until > now()),
        (SELECT min(b.expires_at) FROM bookings b
          WHERE b.tenant_id = p_tenant AND b.service_id = p_service AND b.status = 'held'
            AND b.expires_at > now() AND b.starts_at >= p_lo AND b.starts_at < p_hi),
        (SELECT min(a.starts_at) FROM availability_slots a
          WHERE a.tenant_id = p_tenant AND a.service_id = p_service
            AND a.starts_at >= p_lo AND a.starts_at < p_hi) - (p_bookable_from - now()),
        CASE WHEN p_asked_hi > p_bookable_until THEN
            (SELECT min(a.starts_at) FROM availability_slots a
              WHERE a.tenant_id = p_tenant AND a.service_id = p_service
                AND a.starts_at >= greatest(p_bookable_until, p_asked_lo) AND a.starts_at < p_asked_hi)
            - (p_bookable_until - now())
        END)
$$;


-- ============================================================================================
-- Events out (the outbox, webhooks, the waitlist)
-- ============================================================================================
-- Writers insert events in their own transaction (triggers on bookings; the recompute's
-- slot watch, checked at commit); the worker numbers committed events per tenant
-- (slotmill_sequence_events), fans them out to webhook endpoints and delivers them; the
-- API streams slot changes to widgets. See docs/architecture.md, "Events".

-- ============================================================================================
-- Events out: the outbox
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
    -- the host's reference, the customer's contact (name, email, phone: shown to the host,
    -- never publicly nor in an event), or both (0017)
    contact_ref   text CONSTRAINT waitlist_entries_contact_ref_valid CHECK (length(contact_ref) BETWEEN 1 AND 200),
    status        text NOT NULL DEFAULT 'waiting'
                      CONSTRAINT waitlist_entries_status_valid CHECK (status IN ('waiting', 'cancelled', 'expired')),
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    ended_at      timestamptz,
    contact       jsonb CONSTRAINT waitlist_entries_contact_object CHECK (contact IS NULL OR jsonb_typeof(contact) = 'object'),
    -- made on a branch's page: only slots at that location match it
    location_id   uuid,
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT waitlist_entries_reachable CHECK (contact_ref IS NOT NULL OR contact IS NOT NULL),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE CASCADE,
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
