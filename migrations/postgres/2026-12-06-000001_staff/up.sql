-- Issue 6: staff sign-in and break-glass. Accounts (argon2id password hash,
-- TOTP secret sealed with the key ring, lockout state, the last TOTP step used
-- so a code is never accepted twice), browser sessions and auditor API tokens
-- (only SHA-256 hashes of the tokens are kept), and break-glass grants (the
-- reason is sealed: it may name clinical facts).
CREATE TABLE staff_users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'clinician', 'auditor')),
    password_hash TEXT NOT NULL,
    totp_secret_enc BYTEA NOT NULL,
    key_id INTEGER NOT NULL,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until TIMESTAMP,
    last_totp_step BIGINT,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE staff_sessions (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
CREATE INDEX staff_sessions_user ON staff_sessions (user_id);

CREATE TABLE staff_tokens (
    token_hash TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES staff_users (id) ON DELETE CASCADE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX staff_tokens_user ON staff_tokens (user_id);

CREATE TABLE break_glass (
    id TEXT PRIMARY KEY,
    -- A staff user's id, or the fhirUser of a clinician signed in through a
    -- SMART launch (they have no Herald account): no foreign key.
    user_id TEXT NOT NULL,
    patient_fhir_id TEXT NOT NULL,
    reason_enc BYTEA NOT NULL,
    key_id INTEGER NOT NULL,
    started_at TIMESTAMP NOT NULL,
    ends_at TIMESTAMP NOT NULL
);
CREATE INDEX break_glass_active ON break_glass (user_id, patient_fhir_id, ends_at);
