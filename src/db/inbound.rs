//! Inbound messages: one row per provider message, keyed by the provider's
//! idempotency token (or message id), so a replayed webhook changes nothing.
//! The body is PHI and is sealed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::inbound_messages as m;
use super::{DbConn, DbError};
use crate::crypto::KeyRing;

/// An inbound message to record.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    /// Idempotency token or message id.
    pub dedupe_key: &'a str,
    /// "twilio".
    pub provider: &'a str,
    /// The provider's message id.
    pub message_ref: &'a str,
    /// The patient it came from, when known.
    pub patient_id: Option<&'a str>,
    /// How Herald read it.
    pub reading: &'a str,
    /// The text (sealed here).
    pub body: &'a str,
    /// When.
    pub received_at: DateTime<Utc>,
}

/// Whether this message was already received.
pub fn seen(conn: &mut DbConn, dedupe_key: &str) -> Result<bool, DbError> {
    let n: i64 = m::table
        .filter(m::dedupe_key.eq(dedupe_key))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Records a message; false when its key was already there.
pub fn insert(conn: &mut DbConn, ring: &KeyRing, n: &NewInbound<'_>) -> Result<bool, DbError> {
    if seen(conn, n.dedupe_key)? {
        return Ok(false);
    }
    let body = ring.encrypt_str(&format!("inbound_messages.body:{}", n.dedupe_key), n.body)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    diesel::insert_into(m::table)
        .values((
            m::dedupe_key.eq(n.dedupe_key),
            m::provider.eq(n.provider),
            m::message_ref.eq(n.message_ref),
            m::patient_fhir_id.eq(n.patient_id),
            m::reading.eq(n.reading),
            m::body_enc.eq(Some(body)),
            m::key_id.eq(Some(key_id)),
            m::received_at.eq(super::ts(n.received_at)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Readings of a patient's messages, newest first (the staff queue reads these).
pub fn readings_for(conn: &mut DbConn, patient_id: &str) -> Result<Vec<String>, DbError> {
    Ok(m::table
        .filter(m::patient_fhir_id.eq(patient_id))
        .order(m::received_at.desc())
        .select(m::reading)
        .load(conn)?)
}

/// Re-encrypts up to `limit` bodies sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let rows: Vec<(String, Option<Vec<u8>>)> = m::table
        .filter(m::key_id.ne(active))
        .select((m::dedupe_key, m::body_enc))
        .limit(limit)
        .load(conn)?;
    for (key, enc) in &rows {
        let Some(enc) = enc else { continue };
        let aad = format!("inbound_messages.body:{key}");
        let plain = ring.decrypt(aad.as_bytes(), enc)?;
        let sealed = ring.encrypt(aad.as_bytes(), &plain)?;
        diesel::update(m::table.find(key))
            .set((m::body_enc.eq(sealed), m::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(rows.len())
}
