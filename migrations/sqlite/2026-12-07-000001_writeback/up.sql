-- Issue 5: what Herald writes back to the EHR (Consents, a patient's
-- confirmation or cancellation of an appointment) waits here and is written
-- by the follower with retries, where the preset says the EHR accepts it.
-- And a confidential-communications request for another number (H10): the
-- number Herald texts and calls instead of the EHR's, sealed, with its own
-- blind index so replies from it are recognised.
CREATE TABLE ehr_writes (
    id TEXT PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    patient_fhir_id TEXT NOT NULL,
    inbound_key TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due_at TIMESTAMP NOT NULL,
    created_at TIMESTAMP NOT NULL,
    done_at TIMESTAMP,
    remote_id TEXT,
    error TEXT
);
CREATE INDEX ehr_writes_due ON ehr_writes (state, due_at);

ALTER TABLE patients ADD COLUMN alt_phone_enc BLOB;
ALTER TABLE patients ADD COLUMN alt_phone_index TEXT;
CREATE INDEX patients_alt_phone ON patients (alt_phone_index);
