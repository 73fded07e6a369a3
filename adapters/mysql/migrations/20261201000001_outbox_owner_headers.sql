-- Leases know their owner (a relay may retry its own events at once), and an
-- event keeps the record headers it is published with (its trace context, as
-- JSON pairs).
ALTER TABLE outbox
    ADD COLUMN IF NOT EXISTS leased_by VARCHAR(64) NULL,
    ADD COLUMN IF NOT EXISTS headers   TEXT        NULL;
