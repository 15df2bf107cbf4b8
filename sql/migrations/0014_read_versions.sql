-- 0014: versions that make a read's answer cacheable and never stale (docs/architecture.md,
-- "Reads").
--
-- A staff member's version changes in the same transaction as anything that can change
-- what a read shows of them: a write of their slots (a recompute, a hold hiding slots, a
-- release, a confirm), a change of their rules or bookings (every such change queues a
-- recompute request, whose insert bumps the version: answers computed on demand beyond the
-- horizon read rules, not slots), and a hold or release on a group session (seats held
-- change what a read subtracts, with no slot row written). An API process keeps answers
-- with the sum of the tenant's versions they were computed under and checks it with one
-- small statement; what changes with time alone (a hold lapsing, notice and advance
-- moving with now()) each answer bounds with its own valid_until.
--
-- One row per staff member: a write bumps only its own staff member's row, which that
-- writer's staff lock already serializes, so versions add no contention between staff.

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
