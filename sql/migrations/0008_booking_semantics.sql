-- 0008: the second version of the booking model (docs/rules.md: seats, resources, limits,
-- travel): group sessions with seats, rooms and equipment, booking limits per day and
-- week, travel time between locations. Tables and columns; the rules that enforce them
-- on every write path are in 0009.

-- Seats: a service with seats > 1 is a group service; its session is (staff, service,
-- starts_at) at one location. A booking takes `seats` of it (the party size).
ALTER TABLE services
    ADD COLUMN seats integer NOT NULL DEFAULT 1 CONSTRAINT services_seats_valid CHECK (seats BETWEEN 1 AND 10000),
    ADD COLUMN max_bookings_per_day integer CONSTRAINT services_max_per_day_valid CHECK (max_bookings_per_day >= 0),
    ADD COLUMN max_bookings_per_week integer CONSTRAINT services_max_per_week_valid CHECK (max_bookings_per_week >= 0);

ALTER TABLE staff
    ADD COLUMN max_bookings_per_day integer CONSTRAINT staff_max_per_day_valid CHECK (max_bookings_per_day >= 0),
    ADD COLUMN max_bookings_per_week integer CONSTRAINT staff_max_per_week_valid CHECK (max_bookings_per_week >= 0);

-- contact: what the customer told us (name, email, phone). Never in a public response.
-- session_key: which group session a booking belongs to ('g:<service>@<epoch>' for a group
-- service, the booking's own id otherwise), kept by bookings_before_write (0009): bookings
-- of one session never conflict with each other (bookings_no_overlap below).
ALTER TABLE bookings
    ADD COLUMN seats integer NOT NULL DEFAULT 1 CONSTRAINT bookings_seats_valid CHECK (seats BETWEEN 1 AND 10000),
    ADD COLUMN contact jsonb CONSTRAINT bookings_contact_object CHECK (contact IS NULL OR jsonb_typeof(contact) = 'object'),
    ADD COLUMN session_key text;
UPDATE bookings SET session_key = id::text WHERE session_key IS NULL;
ALTER TABLE bookings ALTER COLUMN session_key SET NOT NULL;

-- The conflict rule, now with sessions: two live bookings of one staff member whose blocked
-- ranges overlap conflict unless they are of the same session; and one session is at one
-- location (a booking with no location belongs to it wherever it is).
ALTER TABLE bookings DROP CONSTRAINT bookings_no_overlap;
ALTER TABLE bookings
    ADD CONSTRAINT bookings_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, staff_id WITH =, blocked WITH &&, session_key WITH <>
    ) WHERE (status IN ('confirmed', 'held')),
    ADD CONSTRAINT bookings_session_location EXCLUDE USING gist (
        tenant_id WITH =, staff_id WITH =, session_key WITH =, location_id WITH <>
    ) WHERE (status IN ('confirmed', 'held'));
-- a session's live bookings (seat counts) and a staff member's live bookings by start
-- (limits, travel), both under the staff lock
CREATE INDEX bookings_live_by_staff ON bookings (tenant_id, staff_id, starts_at) WHERE status IN ('confirmed', 'held');

-- Rooms, chairs, machines. A service needs `quantity` distinct active resources of a kind
-- usable at the slot's location: at it, or with no location.
CREATE TABLE resources (
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid NOT NULL DEFAULT gen_random_uuid(),
    location_id  uuid,
    kind         text NOT NULL CONSTRAINT resources_kind_valid CHECK (kind ~ '^\S.{0,62}$'),
    name         text NOT NULL,
    active       boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE SET NULL (location_id)
);
-- the resources of a kind (assignment at hold time, the engine's pools)
CREATE INDEX resources_by_kind ON resources (tenant_id, kind, location_id);

CREATE TABLE service_resources (
    tenant_id   uuid NOT NULL,
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    service_id  uuid NOT NULL,
    kind        text NOT NULL CONSTRAINT service_resources_kind_valid CHECK (kind ~ '^\S.{0,62}$'),
    quantity    integer NOT NULL DEFAULT 1 CONSTRAINT service_resources_quantity_valid CHECK (quantity BETWEEN 1 AND 100),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, service_id) REFERENCES services (tenant_id, id) ON DELETE CASCADE
);
-- a service's requirements; and which services need a kind (fan-out of a resource booking)
CREATE INDEX service_resources_by_service ON service_resources (tenant_id, service_id);
CREATE INDEX service_resources_by_kind ON service_resources (tenant_id, kind);

-- Which resources a booking holds. blocked, live and session_key copy the booking's (kept
-- by triggers in 0009), so the database can refuse two live bookings holding one resource
-- over overlapping blocked ranges, bookings of one session excepted.
CREATE TABLE booking_resources (
    tenant_id    uuid NOT NULL,
    booking_id   uuid NOT NULL,
    resource_id  uuid NOT NULL,
    blocked      tstzrange NOT NULL,
    live         boolean NOT NULL,
    session_key  text NOT NULL,
    PRIMARY KEY (tenant_id, booking_id, resource_id),
    FOREIGN KEY (tenant_id, booking_id) REFERENCES bookings (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
    CONSTRAINT booking_resources_no_overlap EXCLUDE USING gist (
        tenant_id WITH =, resource_id WITH =, blocked WITH &&, session_key WITH <>
    ) WHERE (live)
);
-- a resource's bookings over a range (the engine's resource busy sets)
CREATE INDEX booking_resources_by_resource ON booking_resources USING gist (tenant_id, resource_id, blocked) WHERE live;

-- Minutes a staff member needs from one location to another (one direction; no row: 0).
CREATE TABLE location_travel (
    tenant_id         uuid NOT NULL,
    id                uuid NOT NULL DEFAULT gen_random_uuid(),
    from_location_id  uuid NOT NULL,
    to_location_id    uuid NOT NULL,
    minutes           integer NOT NULL CONSTRAINT location_travel_minutes_valid CHECK (minutes BETWEEN 0 AND 1440),
    PRIMARY KEY (tenant_id, id),
    CONSTRAINT location_travel_one_way UNIQUE (tenant_id, from_location_id, to_location_id),
    CONSTRAINT location_travel_two_places CHECK (from_location_id <> to_location_id),
    FOREIGN KEY (tenant_id, from_location_id) REFERENCES locations (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, to_location_id) REFERENCES locations (tenant_id, id) ON DELETE CASCADE
);

-- What a slot carries beyond its time: seats left in its session (1 for a one-seat
-- service), and how many such bookings the resources still allow at its start (NULL: the
-- service needs none).
ALTER TABLE availability_slots
    ADD COLUMN seats_left integer NOT NULL DEFAULT 1,
    ADD COLUMN resource_free integer;

-- bookings_before_write (0001) also keeps session_key now. The rest of the new rules
-- (seats, resources, limits, travel) are enforced by 0009.
CREATE OR REPLACE FUNCTION bookings_before_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    v_before integer;
    v_after  integer;
    v_seats  integer;
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.staff_id = OLD.staff_id AND NEW.service_id = OLD.service_id
       AND NEW.starts_at = OLD.starts_at AND NEW.ends_at = OLD.ends_at
       AND NEW.blocked = OLD.blocked AND NEW.session_key = OLD.session_key
       AND NOT (NEW.status IN ('held', 'confirmed') AND OLD.status NOT IN ('held', 'confirmed')) THEN
        -- no change to the range or to whether it blocks: nothing to serialize
        RETURN NEW;
    END IF;

    SELECT buffer_before_minutes, buffer_after_minutes, seats INTO v_before, v_after, v_seats
      FROM services WHERE tenant_id = NEW.tenant_id AND id = NEW.service_id;
    IF NOT FOUND THEN
        RAISE foreign_key_violation USING MESSAGE = 'bookings.service_id: unknown service';
    END IF;
    NEW.blocked := tstzrange(NEW.starts_at - make_interval(mins => v_before),
                             NEW.ends_at + make_interval(mins => v_after), '[)');
    NEW.session_key := CASE WHEN v_seats > 1
                            THEN 'g:' || NEW.service_id || '@' || extract(epoch FROM NEW.starts_at)::bigint
                            ELSE NEW.id::text END;

    IF NEW.status IN ('held', 'confirmed') THEN
        PERFORM pg_advisory_xact_lock(slotmill_staff_lock_key(NEW.tenant_id, NEW.staff_id));
        -- An expired hold never blocks anything: retire the ones in the way first.
        UPDATE bookings
           SET status = 'expired'
         WHERE tenant_id = NEW.tenant_id AND staff_id = NEW.staff_id
           AND status = 'held' AND expires_at <= clock_timestamp()
           AND blocked && NEW.blocked
           AND id <> NEW.id;
    END IF;
    RETURN NEW;
END $$;
