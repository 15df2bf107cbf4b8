-- 0002: every write to a source table enqueues, in its own transaction, a recompute of
-- the staff members and instants it can affect (SPEC §8), and wakes the workers.
--
-- Statement-level triggers with transition tables: a bulk write (an import of 10,000
-- time-off rows) enqueues one row per distinct scope, not one per source row.
--
-- Scope of a request: staff_id NULL = every staff member of the tenant; during NULL = the
-- whole horizon. `during` is a range of instants; a date-based rule's date d is widened to
-- [d-1, d+2) in UTC, which covers local date d in every zone (UTC-12 .. UTC+14). The worker
-- widens each range again by the longest service span, so slots whose buffers reach into it
-- are recomputed too.

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

-- Attach slotmill_enqueue() to one table for INSERT, UPDATE and DELETE (a trigger with
-- transition tables may name only one event).
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

-- A local date d, widened to instants that contain it in every zone.
CREATE FUNCTION slotmill_date_span(d date) RETURNS tstzrange
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT tstzrange(((d - 1)::timestamp AT TIME ZONE 'UTC'), ((d + 2)::timestamp AT TIME ZONE 'UTC'), '[)')
$$;

SELECT slotmill_attach_enqueue('tenants', 'NULL::uuid', 'NULL::tstzrange');
SELECT slotmill_attach_enqueue('locations', 'NULL::uuid', 'NULL::tstzrange');
SELECT slotmill_attach_enqueue('staff', 'r.id', 'NULL::tstzrange');
SELECT slotmill_attach_enqueue('staff_services', 'r.staff_id', 'NULL::tstzrange');
SELECT slotmill_attach_enqueue('availability_templates', 'r.staff_id', 'NULL::tstzrange');
SELECT slotmill_attach_enqueue('availability_overrides', 'r.staff_id',
    'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
SELECT slotmill_attach_enqueue('holidays', 'r.staff_id',
    'CASE WHEN r.rrule IS NULL THEN slotmill_date_span(r.on_date) END');
SELECT slotmill_attach_enqueue('time_off', 'r.staff_id', 'r.during');
SELECT slotmill_attach_enqueue('busy_times', 'r.staff_id', 'r.during');

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

CREATE TRIGGER services_enqueue_ins AFTER INSERT ON services REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION services_enqueue();
CREATE TRIGGER services_enqueue_upd AFTER UPDATE ON services REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION services_enqueue();

-- Bookings: only rows that block or stopped blocking matter. A transaction that has
-- already applied a hold's effect on the slot table itself (the API's hold and release
-- paths, the expiry clean-up) says so with SET LOCAL slotmill.holds_applied = 'on'; then
-- hold-only transitions enqueue nothing. Anything touching a confirmed booking always does.
CREATE FUNCTION bookings_enqueue() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_skip_holds boolean := coalesce(current_setting('slotmill.holds_applied', true), '') = 'on';
    v_count bigint;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
        SELECT r.tenant_id, r.staff_id, tstzrange(min(lower(r.blocked)), max(upper(r.blocked))), 'bookings'
          FROM new_rows r
         WHERE r.status = 'confirmed' OR (r.status = 'held' AND NOT v_skip_holds)
         GROUP BY r.tenant_id, r.staff_id;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
        SELECT r.tenant_id, r.staff_id, tstzrange(min(lower(r.blocked)), max(upper(r.blocked))), 'bookings'
          FROM old_rows r
         WHERE r.status = 'confirmed' OR r.status = 'held'
         GROUP BY r.tenant_id, r.staff_id;
    ELSE
        INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
        SELECT c.tenant_id, c.staff_id, tstzrange(min(lower(c.blocked)), max(upper(c.blocked))), 'bookings'
          FROM (
            SELECT o.tenant_id, o.staff_id, o.blocked, o.status AS old_status, n.status AS new_status
              FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE (o.status, o.staff_id, o.blocked, o.expires_at) IS DISTINCT FROM
                   (n.status, n.staff_id, n.blocked, n.expires_at)
            UNION ALL
            SELECT n.tenant_id, n.staff_id, n.blocked, o.status, n.status
              FROM old_rows o JOIN new_rows n ON n.tenant_id = o.tenant_id AND n.id = o.id
             WHERE (o.status, o.staff_id, o.blocked, o.expires_at) IS DISTINCT FROM
                   (n.status, n.staff_id, n.blocked, n.expires_at)
          ) c
         WHERE (c.old_status IN ('held', 'confirmed') OR c.new_status IN ('held', 'confirmed'))
           AND NOT (v_skip_holds AND 'confirmed' NOT IN (c.old_status, c.new_status))
         GROUP BY c.tenant_id, c.staff_id;
    END IF;
    GET DIAGNOSTICS v_count = ROW_COUNT;
    IF v_count > 0 THEN
        PERFORM pg_notify('slotmill_recompute', '');
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER bookings_enqueue_ins AFTER INSERT ON bookings REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_enqueue();
CREATE TRIGGER bookings_enqueue_upd AFTER UPDATE ON bookings REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_enqueue();
CREATE TRIGGER bookings_enqueue_del AFTER DELETE ON bookings REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bookings_enqueue();
