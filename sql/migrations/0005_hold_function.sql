-- 0005: a hold as one PL/pgSQL function (SPEC §7).
--
-- The hold used to be two CTE-heavy statements. Measured on PostgreSQL 15, planning
-- them cost ~4 ms per hold, more than executing them, and psycopg's prepared generic
-- plans were slower still. A PL/pgSQL function caches a plan for each of its simple
-- statements once per session and needs one round trip. It is VOLATILE, so under READ
-- COMMITTED each statement takes a fresh snapshot: the statements after the staff lock
-- see whatever a concurrent recompute committed before the lock was granted (the reason
-- the lock used to be a statement of its own).
--
-- Returns one row: which of tenant / service / staff / slot id is unknown (404s), and the
-- hold as JSON text, or NULL when the slot is not visible (409). A conflicting booking the
-- slot table does not show yet makes the INSERT raise exclusion_violation (409 too).

-- A slot's blocked range (SPEC §5.4): its service's buffers around it. One definition for
-- the statements that hide, unhide and remove slots around a booking.
CREATE FUNCTION slotmill_slot_blocked(p_starts timestamptz, p_ends timestamptz, p_before integer, p_after integer)
RETURNS tstzrange
-- STABLE like the timestamptz - interval operator it uses, so the planner can inline it.
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    -- minutes only: adding them is exact elapsed time, whatever the session's zone
    SELECT tstzrange(p_starts - make_interval(mins => p_before), p_ends + make_interval(mins => p_after))
$$;

CREATE FUNCTION slotmill_hold(
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

-- Decoding a slot id hashed every staff_services row of the tenant (one sha256 each, ~0.3 ms
-- at 300 rows, on every hold). The prefix is an immutable function of the row: store it
-- and look it up by index instead.
ALTER TABLE staff_services
    ADD COLUMN slot_prefix text COLLATE "C"
    GENERATED ALWAYS AS (slotmill_slot_id_prefix(tenant_id, staff_id, service_id)) STORED;
CREATE INDEX staff_services_by_slot_prefix ON staff_services (tenant_id, slot_prefix);

CREATE OR REPLACE FUNCTION slotmill_slot_key(p_tenant uuid, p_id text)
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
