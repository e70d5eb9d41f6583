-- Issue 5: inbound messages, deduplicated by the provider's idempotency token
-- or message id; the body is PHI and sealed like every other PHI column.
CREATE TABLE inbound_messages (
    dedupe_key TEXT PRIMARY KEY NOT NULL,
    provider TEXT NOT NULL,
    message_ref TEXT NOT NULL,
    patient_fhir_id TEXT,
    reading TEXT NOT NULL,
    body_enc BLOB,
    key_id INTEGER,
    received_at TIMESTAMP NOT NULL
);
CREATE INDEX inbound_patient ON inbound_messages (patient_fhir_id, received_at);
