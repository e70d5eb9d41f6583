-- Issue 3: following the EHR. Herald's own signing keys for SMART Backend
-- Services (private halves sealed with the key ring), the Subscriptions it
-- made on the EHR, every notification received (stored before the 2xx), the
-- poller's checkpoints, and named leases so only one instance polls an EHR.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_enc BYTEA NOT NULL,
    key_id INTEGER NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    sign_from TIMESTAMP NOT NULL,
    retired_at TIMESTAMP
);

CREATE TABLE ehr_subscriptions (
    id TEXT PRIMARY KEY,
    resource_type TEXT NOT NULL,
    style TEXT NOT NULL,
    ehr TEXT NOT NULL,
    remote_id TEXT,
    secret_enc BYTEA NOT NULL,
    key_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    topic TEXT,
    last_event BIGINT NOT NULL DEFAULT 0,
    last_seen_at TIMESTAMP,
    heartbeat_secs INTEGER,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE fhir_notifications (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    received_at TIMESTAMP NOT NULL,
    path TEXT,
    body_enc BYTEA NOT NULL,
    key_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    processed_at TIMESTAMP,
    error TEXT
);
CREATE INDEX fhir_notifications_pending ON fhir_notifications (state, received_at);

CREATE TABLE poll_state (
    name TEXT PRIMARY KEY,
    checkpoint TEXT,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    until_at TIMESTAMP NOT NULL
);

ALTER TABLE tracked_resources ADD COLUMN last_updated TIMESTAMP;
