-- 0017: a waitlist entry a booking page can make (docs/architecture.md, "Events").
--
-- A customer joining from a booking page gives a name and a phone number or an email
-- address, not a host's reference: an entry keeps that contact (shown to the host, never
-- publicly, never in an event), a host-made one its contact_ref, or both. An entry made on
-- a branch's page also keeps that location: only slots there match it.

ALTER TABLE waitlist_entries
    ADD COLUMN contact jsonb
        CONSTRAINT waitlist_entries_contact_object CHECK (contact IS NULL OR jsonb_typeof(contact) = 'object'),
    ADD COLUMN location_id uuid,
    ALTER COLUMN contact_ref DROP NOT NULL,
    ADD CONSTRAINT waitlist_entries_reachable CHECK (contact_ref IS NOT NULL OR contact IS NOT NULL),
    ADD FOREIGN KEY (tenant_id, location_id) REFERENCES locations (tenant_id, id) ON DELETE CASCADE;
