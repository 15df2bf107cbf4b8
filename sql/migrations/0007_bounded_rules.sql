-- 0007: refuse at the door what cannot be computed, and let the queue park what fails.
--
-- Values PostgreSQL accepts but the engine cannot compute used to stop the worker, or a
-- tenant, for good: a recurrence that never ends, a range ending in year 20000, a zone
-- abbreviation such as 'CEST', infinite or BC dates. The CHECKs below refuse them on every
-- write path (the rules API, the CLI and direct SQL alike), each by a constraint name that
-- the API turns into a field error. They are added NOT VALID and then validated where the
-- rows allow it: a database that already holds such a row keeps it (the engine fails only
-- that staff member's recompute, with its reason) instead of failing this migration.

-- IANA names only: PostgreSQL also accepts abbreviations ('CEST') and POSIX specs ('UTC+3')
-- in AT TIME ZONE, which Python's tz database does not know. pg_timezone_names lists the
-- tz database's zone names. Not truly IMMUTABLE (the tz database can change), which is why
-- a row it once accepted is still loaded defensively (materializer/loader.py).
CREATE OR REPLACE FUNCTION slotmill_valid_zone(tz text) RETURNS boolean
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

ALTER TABLE holidays
    ADD CONSTRAINT holidays_on_date_valid CHECK (slotmill_valid_date(on_date)) NOT VALID,
    ADD CONSTRAINT holidays_rrule_valid CHECK (slotmill_rrule_problem(rrule) IS NULL) NOT VALID;
ALTER TABLE availability_overrides
    ADD CONSTRAINT availability_overrides_on_date_valid CHECK (slotmill_valid_date(on_date)) NOT VALID,
    ADD CONSTRAINT availability_overrides_rrule_valid CHECK (slotmill_rrule_problem(rrule) IS NULL) NOT VALID;
ALTER TABLE availability_templates
    ADD CONSTRAINT availability_templates_dates_valid
        CHECK (slotmill_valid_date(valid_from) AND slotmill_valid_date(valid_until)) NOT VALID;
ALTER TABLE time_off
    ADD CONSTRAINT time_off_during_valid CHECK (slotmill_valid_range(during)) NOT VALID;
ALTER TABLE busy_times
    ADD CONSTRAINT busy_times_during_valid CHECK (slotmill_valid_range(during)) NOT VALID;
ALTER TABLE bookings
    ADD CONSTRAINT bookings_instants_valid
        CHECK (slotmill_valid_instant(starts_at) AND slotmill_valid_instant(ends_at)
               AND slotmill_valid_instant(expires_at)) NOT VALID;

-- Validate each where the rows allow it; otherwise leave it NOT VALID (new writes are
-- still checked) and say so.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conrelid::regclass AS tbl, conname
               FROM pg_constraint
              WHERE conname IN ('holidays_on_date_valid', 'holidays_rrule_valid',
                                'availability_overrides_on_date_valid', 'availability_overrides_rrule_valid',
                                'availability_templates_dates_valid', 'time_off_during_valid',
                                'busy_times_during_valid', 'bookings_instants_valid')
                AND NOT convalidated
    LOOP
        BEGIN
            EXECUTE format('ALTER TABLE %s VALIDATE CONSTRAINT %I', c.tbl, c.conname);
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE 'slotmill: % has rows that % refuses; they stay, and fail only their staff''s recompute',
                c.tbl, c.conname;
        END;
    END LOOP;
END $$;

-- Failed recomputes are retried with back-off and, after a few attempts, parked: they stay
-- in the queue (never lost, shown by admin status) but no longer block anything. A later
-- request of the same (tenant, staff member) claims them again with it.
ALTER TABLE recompute_requests
    ADD COLUMN attempts   integer NOT NULL DEFAULT 0,
    ADD COLUMN not_before timestamptz,
    ADD COLUMN last_error text;
-- The claim's head: the oldest request that is due.
CREATE INDEX recompute_requests_due ON recompute_requests (id) WHERE last_error IS NULL;
CREATE INDEX recompute_requests_failed ON recompute_requests (tenant_id, not_before) WHERE last_error IS NOT NULL;
