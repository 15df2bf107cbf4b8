-- 0003: helpers of the HTTP API's statements (sql/queries/api.sql, holds.sql).
--
-- Both are plain SQL functions, so the planner inlines them into the queries that use them.

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

-- SPEC §6: a public read shows a slot iff it starts at or after slotmill_bookable_from()
-- and before slotmill_bookable_until(). Notice and advance come from the service where set,
-- else from tenants.settings (min_notice_minutes 0; max_advance_days = horizon_days).
-- Elapsed time, not calendar days: the answer must not depend on the session's TimeZone.
-- Clamped so that no setting a host writes can push an instant out of range.
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
-- lo >= hi. One definition for every read statement (sql/queries/api.sql).
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
