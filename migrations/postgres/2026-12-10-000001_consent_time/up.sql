-- Issue 11 F3: a consent ranks by Herald's clock, never by a time its sender
-- chose. recorded_at stays the ranking time (Herald's clock when it recorded
-- the entry, or the earlier time the sender stated); the sender's own
-- Consent.dateTime is kept here as evidence, and future_dated marks an entry
-- whose sender stated a time in the future (the EHR import records it at
-- Herald's time instead; such a permit never lifts an earlier deny).
ALTER TABLE consents ADD COLUMN stated_at TIMESTAMP;
ALTER TABLE consents ADD COLUMN future_dated BOOLEAN NOT NULL DEFAULT FALSE;
-- Rows stored before this fix with a time in the future rank from now on at
-- the time of this migration, marked, their claimed time kept as evidence.
UPDATE consents
   SET stated_at = recorded_at,
       recorded_at = (now() AT TIME ZONE 'UTC'),
       future_dated = TRUE
 WHERE recorded_at > (now() AT TIME ZONE 'UTC') + interval '5 minutes';
