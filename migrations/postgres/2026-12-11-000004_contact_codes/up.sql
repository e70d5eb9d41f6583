-- Issue 11 F8f: a number (or address) a patient enters on the preference page
-- is used only once a code sent to it comes back. One row per code sent: the
-- new address sealed (key ring, associated data names table, column and row)
-- with its blind index, the code only as a keyed hash, its expiry, the wrong
-- attempts so far, and when it was used (single use).
CREATE TABLE contact_codes (
    id TEXT PRIMARY KEY,
    patient_fhir_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    address_enc BYTEA NOT NULL,
    address_index TEXT NOT NULL,
    key_id INTEGER NOT NULL,
    code_hash TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    used_at TIMESTAMP
);
CREATE INDEX contact_codes_patient ON contact_codes (patient_fhir_id, created_at);
