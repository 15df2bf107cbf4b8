-- 0016: holds and reads past the materialized horizon (docs/architecture.md, "Beyond the
-- horizon").
--
-- The table covers horizon_days; customers may book up to the advance limit. A read there
-- gets its slots from the engine on demand (api/public.py passes them into the read
-- statement); a hold there is judged by the engine under the staff lock and then written
-- exactly as a hold of a materialized slot is. So the write half of a hold becomes a
-- function of its own (slotmill_hold_insert), and slotmill_hold says when a start lies
-- past the horizon (beyond_*), for its caller to judge.

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

DROP FUNCTION slotmill_hold(text, text, uuid, timestamptz, uuid, text, integer);
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
