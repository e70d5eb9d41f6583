-- Issue 6: SMART launches in flight (state and PKCE verifier, sealed, bound
-- to the browser by a cookie whose hash is the key) and clinician sessions
-- (the EHR's tokens sealed; the launch context).
CREATE TABLE smart_sessions (
    id_hash TEXT PRIMARY KEY,
    phase TEXT NOT NULL,
    iss TEXT NOT NULL,
    secrets_enc BLOB NOT NULL,
    key_id INTEGER NOT NULL,
    patient TEXT,
    encounter TEXT,
    fhir_user TEXT,
    need_banner BOOLEAN NOT NULL DEFAULT TRUE,
    style_url TEXT,
    scope TEXT,
    token_expires_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL
);
