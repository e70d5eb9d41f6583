-- Herald's first schema (PostgreSQL). Keep in step with ../../sqlite/<same name>.
CREATE TABLE data_keys (
    id INTEGER PRIMARY KEY NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE patients (
    fhir_id TEXT PRIMARY KEY NOT NULL,
    name_enc BYTEA NOT NULL,
    given_enc BYTEA,
    phone_enc BYTEA,
    email_enc BYTEA,
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
    body_enc BYTEA NOT NULL,
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
    resource_enc BYTEA NOT NULL,
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
    body_enc BYTEA,
    key_id INTEGER,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, due_at);
CREATE INDEX outbox_about ON outbox (about, state);

CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY NOT NULL,
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

-- Append-only: no UPDATE, DELETE or TRUNCATE on audit rows, whoever asks.
-- (Grant the application role INSERT and SELECT only; the trigger holds even for the owner.)
CREATE FUNCTION herald_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION herald_audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION herald_audit_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM PUBLIC;
