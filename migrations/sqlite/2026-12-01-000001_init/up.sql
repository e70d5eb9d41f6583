-- Herald's first schema (SQLite). Keep in step with ../../postgres/<same name>.
CREATE TABLE data_keys (
    id INTEGER PRIMARY KEY NOT NULL,
    wrapped BLOB NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE patients (
    fhir_id TEXT PRIMARY KEY NOT NULL,
    name_enc BLOB NOT NULL,
    given_enc BLOB,
    phone_enc BLOB,
    email_enc BLOB,
    phone_index TEXT,
    email_index TEXT,
    language TEXT,
    timezone TEXT,
    key_id INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX patients_phone_index ON patients (phone_index);
CREATE INDEX patients_email_index ON patients (email_index);

CREATE TABLE tracked_resources (
    resource_type TEXT NOT NULL,
    fhir_id TEXT NOT NULL,
    version_id TEXT,
    status TEXT NOT NULL,
    patient_fhir_id TEXT NOT NULL,
    timezone TEXT,
    body_enc BLOB NOT NULL,
    key_id INTEGER NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    PRIMARY KEY (resource_type, fhir_id)
);

CREATE TABLE consents (
    id TEXT PRIMARY KEY NOT NULL,
    patient_fhir_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    purpose TEXT,
    address_index TEXT NOT NULL,
    decision TEXT NOT NULL,
    source TEXT NOT NULL,
    recorded_at TIMESTAMP NOT NULL,
    valid_until TIMESTAMP,
    resource_enc BLOB NOT NULL,
    key_id INTEGER NOT NULL
);
CREATE INDEX consents_patient ON consents (patient_fhir_id, channel);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    dedupe_key TEXT NOT NULL UNIQUE,
    patient_fhir_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    purpose TEXT NOT NULL,
    about TEXT NOT NULL,
    due_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until TIMESTAMP,
    channel TEXT,
    reason TEXT,
    provider_ref TEXT,
    body_enc BLOB,
    key_id INTEGER,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, due_at);
CREATE INDEX outbox_about ON outbox (about, state);

CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY NOT NULL,
    id TEXT NOT NULL UNIQUE,
    recorded TIMESTAMP NOT NULL,
    type_code TEXT NOT NULL,
    subtype_code TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    patient_ref TEXT,
    agent_who TEXT,
    entity_ref TEXT,
    resource TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_events_patient_recorded ON audit_events (patient_ref, recorded, seq);
CREATE INDEX audit_events_recorded ON audit_events (recorded, seq);

CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');

-- Append-only: the application cannot change or remove an audit row.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
