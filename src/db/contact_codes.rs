//! Confirmation codes for a contact point a patient entered on the
//! preference page (issue 11 F8f). The new address is sealed (associated data
//! names table, column and row); the code is kept only as a keyed hash. Only
//! the newest unused code of a patient can confirm: writing a new one retires
//! the others.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::contact_codes as cc;
use super::{DbConn, DbError, ts, utc};
use crate::crypto::KeyRing;
use crate::domain::Channel;

fn address_aad(id: &str) -> String {
    format!("contact_codes.address:{id}")
}

/// A code just sent.
#[derive(Debug)]
pub struct NewCode<'a> {
    /// Opaque id (also the message's intent id).
    pub id: &'a str,
    /// The patient.
    pub patient_id: &'a str,
    /// Where the code went: SMS (a number) or email (an address).
    pub channel: Channel,
    /// The normalised address (sealed here).
    pub address: &'a str,
    /// Its blind index.
    pub address_index: &'a str,
    /// The code's keyed hash.
    pub code_hash: &'a str,
    /// When.
    pub created: DateTime<Utc>,
    /// Until when it may be entered.
    pub expires: DateTime<Utc>,
}

/// A patient's newest unused code.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Id.
    pub id: String,
    /// Channel.
    pub channel: Channel,
    /// The address (PHI).
    pub address: String,
    /// The code's keyed hash.
    pub code_hash: String,
    /// Expiry.
    pub expires: DateTime<Utc>,
    /// Wrong attempts so far.
    pub attempts: i32,
}

/// Stores a code and retires the patient's earlier unused ones.
pub fn insert(conn: &mut DbConn, ring: &KeyRing, n: &NewCode<'_>) -> Result<(), DbError> {
    diesel::update(
        cc::table
            .filter(cc::patient_fhir_id.eq(n.patient_id))
            .filter(cc::used_at.is_null()),
    )
    .set(cc::used_at.eq(Some(ts(n.created))))
    .execute(conn)?;
    let sealed = ring.encrypt_str(&address_aad(n.id), n.address)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    diesel::insert_into(cc::table)
        .values((
            cc::id.eq(n.id),
            cc::patient_fhir_id.eq(n.patient_id),
            cc::channel.eq(n.channel.code()),
            cc::address_enc.eq(sealed),
            cc::address_index.eq(n.address_index),
            cc::key_id.eq(key_id),
            cc::code_hash.eq(n.code_hash),
            cc::created_at.eq(ts(n.created)),
            cc::expires_at.eq(ts(n.expires)),
            cc::attempts.eq(0),
        ))
        .execute(conn)?;
    Ok(())
}

/// How many codes were sent for `patient_id` since `since` (the cap).
pub fn sent_since(
    conn: &mut DbConn,
    patient_id: &str,
    since: DateTime<Utc>,
) -> Result<i64, DbError> {
    Ok(cc::table
        .filter(cc::patient_fhir_id.eq(patient_id))
        .filter(cc::created_at.gt(ts(since)))
        .count()
        .get_result(conn)?)
}

type Row = (String, String, Vec<u8>, String, NaiveDateTime, i32);

/// The patient's newest unused code, if any (expired or not).
pub fn pending(
    conn: &mut DbConn,
    ring: &KeyRing,
    patient_id: &str,
) -> Result<Option<Pending>, DbError> {
    let row: Option<Row> = cc::table
        .filter(cc::patient_fhir_id.eq(patient_id))
        .filter(cc::used_at.is_null())
        .order(cc::created_at.desc())
        .select((
            cc::id,
            cc::channel,
            cc::address_enc,
            cc::code_hash,
            cc::expires_at,
            cc::attempts,
        ))
        .first(conn)
        .optional()?;
    let Some((id, channel, enc, code_hash, expires, attempts)) = row else {
        return Ok(None);
    };
    let channel: Channel = channel
        .parse()
        .map_err(|e| DbError::Other(anyhow::Error::new(e)))?;
    let address = ring.decrypt_str(&address_aad(&id), &enc)?;
    Ok(Some(Pending {
        id,
        channel,
        address,
        code_hash,
        expires: utc(expires),
        attempts,
    }))
}

/// Takes one of the code's `max` attempts before the code is compared, in one
/// conditional UPDATE, so concurrent tries cannot exceed `max`; false when
/// none is left (or the code is used).
pub fn take_attempt(conn: &mut DbConn, id: &str, max: i32) -> Result<bool, DbError> {
    let n = diesel::update(
        cc::table
            .find(id)
            .filter(cc::attempts.lt(max))
            .filter(cc::used_at.is_null()),
    )
    .set(cc::attempts.eq(cc::attempts + 1))
    .execute(conn)?;
    Ok(n == 1)
}

/// Marks the code used; false when it was used (or retired) already.
pub fn mark_used(conn: &mut DbConn, id: &str, now: DateTime<Utc>) -> Result<bool, DbError> {
    let n = diesel::update(cc::table.find(id).filter(cc::used_at.is_null()))
        .set(cc::used_at.eq(Some(ts(now))))
        .execute(conn)?;
    Ok(n == 1)
}
