-- 0004: the worker's bookkeeping (singleton scheduled jobs) and the one recompute trigger
-- gap 0002 left: TRUNCATE.
--
-- Scopes of 0002 checked against SPEC §8: a booking touches its staff member and blocked
-- range; a template, staff or staff_services change the staff member's horizon; an
-- override or holiday its dates (the whole horizon when it recurs), a tenant-wide holiday
-- every staff member on those dates; a service change its staff; a tenant or location
-- change the whole tenant. A shortened horizon leaves slots beyond the new end: the
-- worker deletes them when it handles a whole-tenant request (it runs delete_outside).

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

-- Advisory lock key of a scheduled job (per tenant, or global when p_tenant is NULL).
-- Distinct from slotmill_staff_lock_key's keys by the 'job:' prefix of the hashed text.
CREATE FUNCTION slotmill_job_lock_key(p_job text, p_tenant uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || substr(md5('job:' || p_job || ':' || coalesce(p_tenant::text, '*')), 1, 16))::bit(64)::bigint
$$;

-- TRUNCATE has no transition table and names no tenant: every tenant is recomputed whole.
CREATE FUNCTION slotmill_enqueue_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO recompute_requests (tenant_id, staff_id, during, reason)
    SELECT id, NULL, NULL, TG_TABLE_NAME || ' truncated' FROM tenants;
    PERFORM pg_notify('slotmill_recompute', '');
    RETURN NULL;
END $$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['locations', 'staff', 'services', 'staff_services', 'availability_templates',
                             'availability_overrides', 'holidays', 'time_off', 'busy_times', 'bookings']
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %I
                        FOR EACH STATEMENT EXECUTE FUNCTION slotmill_enqueue_truncate()',
                       t || '_enqueue_truncate', t);
    END LOOP;
END $$;
