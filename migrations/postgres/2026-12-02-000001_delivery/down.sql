DROP INDEX outbox_provider_ref;
DROP INDEX outbox_patient_sent;
ALTER TABLE outbox DROP COLUMN segments;
ALTER TABLE outbox DROP COLUMN error_code;
ALTER TABLE outbox DROP COLUMN delivery_status;
ALTER TABLE outbox DROP COLUMN sent_at;
ALTER TABLE outbox DROP COLUMN first_claimed_at;
ALTER TABLE patients DROP COLUMN region;
