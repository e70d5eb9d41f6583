-- Issue 4: delivery tracking, frequency caps and the recipient's state.
ALTER TABLE patients ADD COLUMN region TEXT;
ALTER TABLE outbox ADD COLUMN first_claimed_at TIMESTAMP;
ALTER TABLE outbox ADD COLUMN sent_at TIMESTAMP;
ALTER TABLE outbox ADD COLUMN delivery_status TEXT;
ALTER TABLE outbox ADD COLUMN error_code TEXT;
ALTER TABLE outbox ADD COLUMN segments INTEGER;
CREATE INDEX outbox_patient_sent ON outbox (patient_fhir_id, sent_at);
CREATE INDEX outbox_provider_ref ON outbox (provider_ref);
