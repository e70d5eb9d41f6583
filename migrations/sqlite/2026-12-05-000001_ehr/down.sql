ALTER TABLE tracked_resources DROP COLUMN last_updated;
DROP TABLE leases;
DROP TABLE poll_state;
DROP INDEX fhir_notifications_pending;
DROP TABLE fhir_notifications;
DROP TABLE ehr_subscriptions;
DROP TABLE signing_keys;
