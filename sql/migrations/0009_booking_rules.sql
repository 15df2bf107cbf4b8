-- 0009: the database is the final judge of the second-version rules (docs/rules.md:
-- sessions and seats, resources, limits, travel), for every writer, direct inserts
-- included; and recompute requests reach as far as those rules do.
--
-- Under the per-staff lock (sql/schema.sql, section "Locks"), a live booking (confirmed, or
-- held and unexpired) is refused when it would overfill its group session
-- (bookings_session_seats), exceed a booking limit (bookings_limit_staff_day, _staff_week,
-- _service_day, _service_week), or leave no time to travel to or from another live booking
-- of that staff member at another location (bookings_travel). Each is a check_violation
-- naming its own constraint. A resource held by two live bookings over overlapping blocked
-- ranges is refused by booking_resources_no_overlap (0008), bookings of one session
-- excepted; the hold's assignment takes the resource kind's lock first, so two holds for
-- different staff competing for the last room queue there: exactly one wins, and nobody
-- deadlocks.

-- The group session a slot or a booking of a service belongs to (NULL: a one-seat service,
-- whose bookings each are a session of their own). The text bookings.session_key holds.
CREATE FUNCTION slotmill_session_key(p_service uuid, p_starts timestamptz, p_seats integer) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_seats > 1 THEN 'g:' || p_service || '@' || extract(epoch FROM p_starts)::bigint END
$$;

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

-- Lock key of a resource kind of a tenant: taken after the staff locks, kinds in order, by
-- whoever assigns or adds a resource to a booking.
CREATE FUNCTION slotmill_resource_lock_key(p_tenant uuid, p_kind text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5('resource:' || p_tenant::text || ':' || p_kind), 1, 16))::bit(64)::bigint
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
    NEW.session_key := coalesce(slotmill_session_key(NEW.service_id, NEW.starts_at, v_seats), NEW.id::text);

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

-- Freshness: a booking's change reaches as far as the rules do. Limits count the whole
-- local day and week, and travel widens a booking at another location, so the range of a
-- booking of a staff member with limits (or of a service with limits) is widened by 8 days,
-- and every range by the tenant's longest travel. A change that involves a confirmed
-- booking holding resources reaches every staff member those resources can matter to.
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

CREATE OR REPLACE FUNCTION bookings_enqueue() RETURNS trigger
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

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['resources', 'service_resources', 'location_travel'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2()', t || '_enqueue_ins', t);
        EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %I REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2()', t || '_enqueue_upd', t);
        EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %I REFERENCING OLD TABLE AS old_rows
                        FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_rules_v2()', t || '_enqueue_del', t);
    END LOOP;
    FOREACH t IN ARRAY ARRAY['resources', 'service_resources', 'location_travel', 'booking_resources'] LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate()', t || '_enqueue_truncate', t);
    END LOOP;
END $$;

-- A hold (docs/rules.md, holds), now with seats and resources: lock the staff member, check
-- the slot is visible with enough seats, insert the held booking (the bookings trigger
-- judges seats, limits and travel), assign the resources the service needs (free ones at
-- the location before location-less ones, each by name then id, under each kind's lock),
-- and hide the staff member's other slots whose blocked range overlaps (the session's own
-- slot loses seats at read time instead).
DROP FUNCTION slotmill_hold(text, text, uuid, timestamptz, uuid, text);
CREATE FUNCTION slotmill_hold(
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
       AND slotmill_session_key(a.service_id, a.starts_at, v.seats) IS DISTINCT FROM v_session;

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

-- Seats of a group session held right now by live holds (0 for a one-seat service): what
-- a read subtracts from a slot's seats_left, the hold path too.
CREATE FUNCTION slotmill_held_seats(p_tenant uuid, p_staff uuid, p_service uuid, p_starts timestamptz, p_seats integer)
RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN p_seats > 1 THEN (
               SELECT coalesce(sum(b.seats), 0)
                 FROM bookings b
                WHERE b.tenant_id = p_tenant AND b.staff_id = p_staff AND b.starts_at = p_starts
                  AND b.session_key = slotmill_session_key(p_service, p_starts, p_seats)
                  AND b.status = 'held' AND b.expires_at > now())
           ELSE 0 END
$$;
