-- 0015: a group session's key names its staff member.
--
-- 0009 keyed a group session by service and start ('g:<service>@<epoch>'). Within one staff
-- member that is enough (every rule that uses it also filters by staff), but
-- booking_resources_no_overlap compares keys across staff members: two staff teaching the
-- same class at the same time would have been let share one room. The key is now
-- 'g:<staff>:<service>@<epoch>', existing bookings are rekeyed (their resource copies
-- follow through bookings_sync_resources), and every user of the key goes through the
-- one function that makes it.

CREATE FUNCTION slotmill_session_key(p_staff uuid, p_service uuid, p_starts timestamptz, p_seats integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_seats > 1
                THEN 'g:' || p_staff || ':' || p_service || '@' || extract(epoch FROM p_starts)::bigint END
$$;

CREATE OR REPLACE FUNCTION bookings_before_write() RETURNS trigger
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

CREATE OR REPLACE FUNCTION slotmill_hold(
    p_slug text,
    p_slot_id text,
    p_service_id uuid,
    p_starts_at timestamptz,
    p_staff_id uuid,
    p_session_id text,
    p_seats integer
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
    v_seats      integer;
    v_location   uuid;
    v_ends       timestamptz;
    v_held       timestamptz;
    v_left       integer;
    v_taken      bigint;
    v_booking    uuid;
    v_expires    timestamptz;
    v_blocked    tstzrange;
    v_session    text;
    v_need       record;
    v_got        integer;
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

    SELECT v.min_notice_minutes, v.max_advance_days, v.seats
      INTO v_notice, v_advance, v_seats
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

    -- Visible now, with the seats asked for? Read after the lock, so a recompute that
    -- committed while we waited is seen.
    SELECT a.location_id, a.ends_at, a.held_until, a.seats_left INTO v_location, v_ends, v_held, v_left
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
    IF v_seats > 1 THEN
        v_taken := slotmill_held_seats(v_tenant, v_staff, v_service, v_start, v_seats);
        IF v_left - v_taken < p_seats THEN
            RAISE check_violation USING CONSTRAINT = 'bookings_session_seats',
                MESSAGE = format('%s of the session''s seats are left, not %s', greatest(v_left - v_taken, 0), p_seats),
                TABLE = 'bookings';
        END IF;
    END IF;

    PERFORM set_config('slotmill.holds_applied', 'on', true);
    INSERT INTO bookings (tenant_id, staff_id, service_id, location_id, starts_at, ends_at,
                          status, expires_at, session_id, seats)
    VALUES (v_tenant, v_staff, v_service, v_location, v_start, v_ends, 'held',
            now() + make_interval(secs => greatest(slotmill_setting_int(v_settings, 'hold_ttl_seconds', 600), 1)),
            p_session_id, p_seats)
    RETURNING id, expires_at, blocked, session_key INTO v_booking, v_expires, v_blocked, v_session;

    -- Resources, kind by kind in order (the kinds' locks are taken in that order).
    FOR v_need IN
        SELECT sr.kind, sum(sr.quantity)::integer AS quantity
          FROM service_resources sr
         WHERE sr.tenant_id = v_tenant AND sr.service_id = v_service
         GROUP BY sr.kind
         ORDER BY sr.kind
    LOOP
        PERFORM pg_advisory_xact_lock(slotmill_resource_lock_key(v_tenant, v_need.kind));
        INSERT INTO booking_resources (tenant_id, booking_id, resource_id, blocked, live, session_key)
        SELECT v_tenant, v_booking, r.id, v_blocked, true, v_session
          FROM resources r
         WHERE r.tenant_id = v_tenant AND r.kind = v_need.kind AND r.active
           AND (r.location_id IS NULL OR r.location_id = v_location)
           AND NOT EXISTS (
               SELECT 1
                 FROM booking_resources br
                 JOIN bookings b ON b.tenant_id = br.tenant_id AND b.id = br.booking_id
                WHERE br.tenant_id = v_tenant AND br.resource_id = r.id AND br.live
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
     WHERE a.tenant_id = v_tenant AND a.staff_id = v_staff
       AND a.starts_at > lower(v_blocked) - interval '48 hours'
       AND a.starts_at < upper(v_blocked) + interval '24 hours'
       AND v.tenant_id = a.tenant_id AND v.id = a.service_id
       AND slotmill_slot_blocked(a.starts_at, a.ends_at, v.buffer_before_minutes, v.buffer_after_minutes) && v_blocked
       AND slotmill_session_key(a.staff_id, a.service_id, a.starts_at, v.seats) IS DISTINCT FROM v_session;

    RETURN QUERY SELECT false, false, false, false,
        json_build_object(
            'hold_id', v_booking,
            'staff_id', v_staff,
            'service_id', v_service,
            'location_id', v_location,
            'starts_at', slotmill_instant(v_start),
            'ends_at', slotmill_instant(v_ends),
            -- to the microsecond: a countdown shown from it must not end before the hold does
            'expires_at', to_char(v_expires AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
            'seats', p_seats)::text;
END $$;

CREATE OR REPLACE FUNCTION slotmill_held_seats(p_tenant uuid, p_staff uuid, p_service uuid, p_starts timestamptz, p_seats integer)
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

DROP FUNCTION slotmill_session_key(uuid, timestamptz, integer);

-- Rekey: bookings_before_write computes the key again whenever it changes.
UPDATE bookings SET session_key = '' WHERE session_key LIKE 'g:%';
