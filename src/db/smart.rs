//! SMART launches in flight and clinician sessions. The browser holds a
//! random token; the table holds its SHA-256, so a database reader cannot
//! take over a session. Secrets (state, PKCE verifier, the EHR's tokens) are
//! sealed with the key ring.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::smart_sessions as s;
use super::{DbConn, DbError, ts, utc};
use crate::crypto::KeyRing;

/// One row.
#[derive(Debug, Clone)]
pub struct SmartSession {
    /// SHA-256 (hex) of the cookie token.
    pub id_hash: String,
    /// `launching` (state + verifier) or `active` (tokens + context).
    pub phase: String,
    /// The EHR's FHIR base.
    pub iss: String,
    /// Sealed JSON: state, verifier, token endpoint… or tokens.
    pub secrets: String,
    /// Patient in context.
    pub patient: Option<String>,
    /// Encounter in context.
    pub encounter: Option<String>,
    /// The clinician (fhirUser).
    pub fhir_user: Option<String>,
    /// Show Herald's patient banner.
    pub need_banner: bool,
    /// The EHR's style URL.
    pub style_url: Option<String>,
    /// Granted scopes.
    pub scope: Option<String>,
    /// When the access token expires.
    pub token_expires_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_seen_at: DateTime<Utc>,
}

fn aad(id_hash: &str) -> String {
    format!("smart_sessions.secrets_enc:{id_hash}")
}

/// Stores (or replaces) a session.
pub fn put(conn: &mut DbConn, ring: &KeyRing, v: &SmartSession) -> Result<(), DbError> {
    let enc = ring.encrypt_str(&aad(&v.id_hash), &v.secrets)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    diesel::delete(s::table.find(&v.id_hash)).execute(conn)?;
    diesel::insert_into(s::table)
        .values((
            s::id_hash.eq(&v.id_hash),
            s::phase.eq(&v.phase),
            s::iss.eq(&v.iss),
            s::secrets_enc.eq(enc),
            s::key_id.eq(key_id),
            s::patient.eq(&v.patient),
            s::encounter.eq(&v.encounter),
            s::fhir_user.eq(&v.fhir_user),
            s::need_banner.eq(v.need_banner),
            s::style_url.eq(&v.style_url),
            s::scope.eq(&v.scope),
            s::token_expires_at.eq(v.token_expires_at.map(ts)),
            s::created_at.eq(ts(v.created_at)),
            s::last_seen_at.eq(ts(v.last_seen_at)),
        ))
        .execute(conn)?;
    Ok(())
}

type Row = (
    String,
    String,
    String,
    Vec<u8>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
    Option<String>,
    Option<String>,
    Option<chrono::NaiveDateTime>,
    chrono::NaiveDateTime,
    chrono::NaiveDateTime,
);

/// A session by the hash of its cookie token.
pub fn get(
    conn: &mut DbConn,
    ring: &KeyRing,
    id_hash: &str,
) -> Result<Option<SmartSession>, DbError> {
    let row: Option<Row> = s::table
        .find(id_hash)
        .select((
            s::id_hash,
            s::phase,
            s::iss,
            s::secrets_enc,
            s::patient,
            s::encounter,
            s::fhir_user,
            s::need_banner,
            s::style_url,
            s::scope,
            s::token_expires_at,
            s::created_at,
            s::last_seen_at,
        ))
        .first(conn)
        .optional()?;
    row.map(|r| {
        Ok(SmartSession {
            secrets: ring.decrypt_str(&aad(&r.0), &r.3)?,
            id_hash: r.0,
            phase: r.1,
            iss: r.2,
            patient: r.4,
            encounter: r.5,
            fhir_user: r.6,
            need_banner: r.7,
            style_url: r.8,
            scope: r.9,
            token_expires_at: r.10.map(utc),
            created_at: utc(r.11),
            last_seen_at: utc(r.12),
        })
    })
    .transpose()
}

/// Notes a request on the session.
pub fn touch(conn: &mut DbConn, id_hash: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    diesel::update(s::table.find(id_hash))
        .set(s::last_seen_at.eq(ts(now)))
        .execute(conn)?;
    Ok(())
}

/// Ends a session (or a launch).
pub fn delete(conn: &mut DbConn, id_hash: &str) -> Result<(), DbError> {
    diesel::delete(s::table.find(id_hash)).execute(conn)?;
    Ok(())
}

/// Removes launches and sessions not seen since `before`.
pub fn purge(conn: &mut DbConn, before: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(diesel::delete(s::table.filter(s::last_seen_at.lt(ts(before)))).execute(conn)?)
}

/// Re-encrypts up to `limit` rows sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let rows: Vec<(String, Vec<u8>)> = s::table
        .filter(s::key_id.ne(active))
        .select((s::id_hash, s::secrets_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &rows {
        let plain = ring.decrypt(aad(id).as_bytes(), enc)?;
        let sealed = ring.encrypt(aad(id).as_bytes(), &plain)?;
        diesel::update(s::table.find(id))
            .set((s::secrets_enc.eq(sealed), s::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(rows.len())
}
