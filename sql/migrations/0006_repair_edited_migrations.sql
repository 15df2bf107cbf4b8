-- 0006: repair databases that applied an earlier text of a migration edited since.
--
-- Three migrations were edited in place after they had landed (tests/test_migrations.py now
-- fails on any such edit):
--   0001  d492eea keyed availability_slots by (tenant, staff, start, service) with "C" ids,
--         dropped an index, and added slotmill_slot_id_prefix and slotmill_slot_key;
--         dcd8916 changed slotmill_slot_key (0005 replaces it anyway);
--   0003  0df1403 added slotmill_read_window;
--   0005  74542d4 added slotmill_slot_blocked and made slotmill_hold use it.
-- A database migrated before an edit has the earlier effect and recorded the earlier
-- checksum. slotmill migrate accepts those checksums (EDITED_MIGRATIONS in
-- slotmill/migrate.py, with why) and this migration brings such a database to what the
-- current texts build. On a database that applied the current texts it changes nothing:
-- the functions are replaced by identical definitions and the table repair is conditional.

-- 0001 as first committed (86d7efb): availability_slots keyed by (tenant_id, id), a
-- covering read index and a by-staff index. Slot ids were derived as they are now, so the
-- rows stay: the new key is unique wherever the old one was.
DO $$
BEGIN
    IF (SELECT pg_get_constraintdef(oid) FROM pg_constraint
         WHERE conrelid = 'availability_slots'::regclass AND contype = 'p')
       <> 'PRIMARY KEY (tenant_id, staff_id, starts_at, service_id)' THEN
        ALTER TABLE availability_slots DROP CONSTRAINT availability_slots_pkey;
    END IF;
    IF to_regclass('availability_slots_by_staff') IS NOT NULL THEN
        DROP INDEX availability_slots_by_staff;
    END IF;
    IF EXISTS (SELECT FROM pg_index WHERE indexrelid = to_regclass('availability_slots_read')
                                      AND indnatts <> indnkeyatts) THEN
        DROP INDEX availability_slots_read;
    END IF;
    -- with no index on the column left, changing its collation rebuilds nothing
    IF (SELECT attcollation FROM pg_attribute WHERE attrelid = 'availability_slots'::regclass AND attname = 'id')
       <> (SELECT oid FROM pg_collation WHERE collname = 'C' AND collnamespace = 'pg_catalog'::regnamespace) THEN
        ALTER TABLE availability_slots ALTER COLUMN id TYPE text COLLATE "C";
    END IF;
    IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = 'availability_slots'::regclass AND contype = 'p') THEN
        ALTER TABLE availability_slots
            ADD CONSTRAINT availability_slots_pkey PRIMARY KEY (tenant_id, staff_id, starts_at, service_id);
    END IF;
    IF to_regclass('availability_slots_read') IS NULL THEN
        CREATE INDEX availability_slots_read ON availability_slots (tenant_id, service_id, starts_at);
    END IF;
END $$;

-- 0003 before 0df1403: no slotmill_read_window. The current text's definition:

-- The instants a public read covers (SPEC §6, §9): the request's range, given as instants
-- or as inclusive local dates in p_zone, clipped to the bookable window above. Empty when
-- lo >= hi. One definition for every read statement (sql/queries/reads.sql).
CREATE OR REPLACE FUNCTION slotmill_read_window(
    p_settings jsonb, p_horizon_days integer, p_min_notice_minutes integer, p_max_advance_days integer,
    p_zone text, p_from_at timestamptz, p_to_at timestamptz, p_from_date date, p_to_date date)
RETURNS TABLE (lo timestamptz, hi timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT greatest(coalesce(p_from_at, p_from_date::timestamp AT TIME ZONE p_zone),
                    slotmill_bookable_from(p_settings, p_min_notice_minutes)),
           least(coalesce(p_to_at, (p_to_date + 1)::timestamp AT TIME ZONE p_zone),
                 slotmill_bookable_until(p_settings, p_horizon_days, p_max_advance_days))
$$;

-- 0005 before 74542d4: no slotmill_slot_blocked, and slotmill_hold spelled the range out.
-- The current text's definitions:

-- A slot's blocked range (SPEC §5.4): its service's buffers around it. One definition for
-- the statements that hide, unhide and remove slots around a booking.
CREATE OR REPLACE FUNCTION slotmill_slot_blocked(p_starts timestamptz, p_ends timestamptz, p_before integer, p_after integer)
RETURNS tstzrange
-- STABLE like the timestamptz - interval operator it uses, so the planner can inline it.
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- minutes only: adding them is exact elapsed time, whatever the session's zone
    SELECT tstzrange(p_starts - make_interval(mins => p_before), p_ends + make_interval(mins => p_after))
$$;

CREATE OR REPLACE FUNCTION slotmill_hold(
    p_slug text,
    p_slot_id text,
    p_service_id uuid,
    p_starts_at timestamptz,
    p_staff_id uuid,
    p_session_id text
) RETURNS TABLE (no_tenant boolean, no_service boolean, no_staff boolean, no_slot boolean, hold text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_tenant     uuid;
    v_settings   jsonb;
    v_horizon    integer;
    v_staff      uuid := p_staff_id;
    v_service    uuid := p_service_id;
    v_start      timestamptz := p_starts_at;
    v_notice     integer;
    v_advance    integer;
    v_before     integer;
    v_after      integer;
    v_location   uuid;
    v_ends       timestamptz;
    v_held       timestamptz;
    v_booking    uuid;
    v_expires    timestamptz;
    v_blocked    tstzrange;
BEGIN
    SELECT t.id, t.settings, t.horizon_days INTO v_tenant, v_settings, v_horizon
      FROM tenants t WHERE t.slug = p_slug;
    IF NOT FOUND THEN
        RETURN QUERY SELECT true, false, false, false, NULL::text;
        RETURN;
    END IF;

    IF p_slot_id IS NOT NULL THEN
        -- An id of another tenant, or a made-up one, decodes to nothing: 404. A real
        -- slot that is gone or hidden is a 409 below.
        SELECT k.staff_id, k.service_id, k.starts_at INTO v_staff, v_service, v_start
          FROM slotmill_slot_key(v_tenant, p_slot_id) k;
        IF NOT FOUND THEN
            RETURN QUERY SELECT false, false, false, true, NULL::text;
            RETURN;
        END IF;
    END IF;

    SELECT v.min_notice_minutes, v.max_advance_days, v.buffer_before_minutes, v.buffer_after_minutes
      INTO v_notice, v_advance, v_before, v_after
      FROM services v WHERE v.tenant_id = v_tenant AND v.id = v_service AND v.active;
    -- By time, an unknown or inactive service or staff member is a 404; by slot id the
    -- slot is real but no longer offered: a 409.
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, p_slot_id IS NULL, false, false, NULL::text;
        RETURN;
    END IF;
    PERFORM 1 FROM staff s WHERE s.tenant_id = v_tenant AND s.id = v_staff AND s.active;
    IF NOT FOUND THEN
        RETURN QUERY SELECT false, false, p_slot_id IS NULL, false, NULL::text;
        RETURN;
    END IF;

    PERFORM pg_advisory_xact_lock(slotmill_staff_lock_key(v_tenant, v_staff));

    -- Visible now (SPEC §6)? Read after the lock, so a recompute that committed while we
    -- waited is seen.
    SELECT a.location_id, a.ends_at, a.held_until INTO v_location, v_ends, v_held
      FROM availability_slots a
     WHERE a.tenant_id = v_tenant AND a.staff_id = v_staff
       AND a.starts_at = v_start AND a.service_id = v_service;
    IF NOT FOUND
       OR (v_held IS NOT NULL AND v_held > now())
       OR v_start < slotmill_bookable_from(v_settings, v_notice)
       OR v_start >= slotmill_bookable_until(v_settings, v_horizon, v_advance) THEN
        RETURN QUERY SELECT false, false, false, false, NULL::text;
        RETURN;
    END IF;

    PERFORM set_config('slotmill.holds_applied', 'on', true);
    INSERT INTO bookings (tenant_id, staff_id, service_id, location_id, starts_at, ends_at,
                          status, expires_at, session_id)
    VALUES (v_tenant, v_staff, v_service, v_location, v_start, v_ends, 'held',
            now() + make_interval(secs => greatest(slotmill_setting_int(v_settings, 'hold_ttl_seconds', 600), 1)),
            p_session_id)
    RETURNING id, expires_at, blocked INTO v_booking, v_expires, v_blocked;

    -- Hide that staff member's slots (every service) whose blocked range overlaps the
    -- hold's. A slot's blocked range starts at most 1 day (buffer) before it and ends at
    -- most 2 days (duration + buffer) after: the starts_at bounds keep this on the key.
    UPDATE availability_slots a
       SET held_until = greatest(a.held_until, v_expires)
      FROM services v
     WHERE a.tenant_id = v_tenant AND a.staff_id = v_staff
       AND a.starts_at > lower(v_blocked) - interval '48 hours'
       AND a.starts_at < upper(v_blocked) + interval '24 hours'
       AND v.tenant_id = a.tenant_id AND v.id = a.service_id
       AND slotmill_slot_blocked(a.starts_at, a.ends_at, v.buffer_before_minutes, v.buffer_after_minutes) && v_blocked;

    RETURN QUERY SELECT false, false, false, false,
        json_build_object(
            'hold_id', v_booking,
            'staff_id', v_staff,
            'service_id', v_service,
            'starts_at', slotmill_instant(v_start),
            'ends_at', slotmill_instant(v_ends),
            'expires_at', slotmill_instant(v_expires))::text;
END $$;
