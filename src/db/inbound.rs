//! Inbound messages: one row per provider message, keyed by the provider's
//! signed message id (`sid:…`; rows recorded before issue 11 may carry the
//! provider's unsigned idempotency token instead, and are found by message id
//! too), so a replayed webhook changes nothing.
//! The body is PHI and is sealed.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::inbound_messages as m;
use super::{DbConn, DbError};
use crate::crypto::KeyRing;

/// An inbound message to record.
#[derive(Debug, Clone)]
pub struct NewInbound<'a> {
    /// `sid:` and the provider's signed message id.
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
    /// When a person must have read it (None: nothing for staff).
    pub due_by: Option<DateTime<Utc>>,
}

/// Whether this message was already received.
pub fn seen(conn: &mut DbConn, dedupe_key: &str) -> Result<bool, DbError> {
    let n: i64 = m::table
        .filter(m::dedupe_key.eq(dedupe_key))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Whether `provider` already delivered the message it calls `message_ref`
/// (whatever key it was recorded under).
pub fn seen_message(conn: &mut DbConn, provider: &str, message_ref: &str) -> Result<bool, DbError> {
    let n: i64 = m::table
        .filter(m::provider.eq(provider))
        .filter(m::message_ref.eq(message_ref))
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
            m::due_by.eq(n.due_by.map(super::ts)),
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

/// A text waiting for staff.
#[derive(Debug, Clone)]
pub struct Open {
    /// Its key (to mark it handled).
    pub dedupe_key: String,
    /// Patient.
    pub patient_id: Option<String>,
    /// Herald's reading.
    pub reading: String,
    /// The text (decrypted; PHI).
    pub body: String,
    /// Received.
    pub received_at: DateTime<Utc>,
    /// Deadline.
    pub due_by: DateTime<Utc>,
}

/// Texts waiting for staff, oldest deadline first.
pub fn open_queue(conn: &mut DbConn, ring: &KeyRing) -> Result<Vec<Open>, DbError> {
    type Row = (
        String,
        Option<String>,
        String,
        Option<Vec<u8>>,
        chrono::NaiveDateTime,
        Option<chrono::NaiveDateTime>,
    );
    let rows: Vec<Row> = m::table
        .filter(m::handled_at.is_null())
        .filter(m::due_by.is_not_null())
        .order(m::due_by.asc())
        .select((
            m::dedupe_key,
            m::patient_fhir_id,
            m::reading,
            m::body_enc,
            m::received_at,
            m::due_by,
        ))
        .load(conn)?;
    rows.into_iter()
        .map(|(key, patient, reading, body, received, due)| {
            let body = match body {
                Some(b) => ring.decrypt_str(&format!("inbound_messages.body:{key}"), &b)?,
                None => String::new(),
            };
            Ok(Open {
                dedupe_key: key,
                patient_id: patient,
                reading,
                body,
                received_at: super::utc(received),
                due_by: due.map(super::utc).unwrap_or_else(|| super::utc(received)),
            })
        })
        .collect()
}

/// Marks a queued text handled by `user`; false when there is no such open item.
pub fn mark_handled(
    conn: &mut DbConn,
    key: &str,
    user: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    Ok(diesel::update(
        m::table
            .filter(m::dedupe_key.eq(key))
            .filter(m::handled_at.is_null()),
    )
    .set((m::handled_at.eq(super::ts(now)), m::handled_by.eq(user)))
    .execute(conn)?
        == 1)
}
