//! The consent ledger: one row per FHIR Consent, never updated or deleted;
//! the newest applicable row decides (see `domain::consent`). The Consent
//! itself (it names the address) is stored encrypted.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::consents as c;
use super::{DbConn, DbError};
use crate::crypto::KeyRing;
use crate::domain::consent::{ConsentEntry, Decision};
use crate::domain::{Channel, Purpose};

/// A consent to record.
#[derive(Debug, Clone)]
pub struct NewConsent {
    /// Consent id.
    pub id: String,
    /// Patient's logical id.
    pub patient_id: String,
    /// Channel.
    pub channel: Channel,
    /// Purpose, or all.
    pub purpose: Option<Purpose>,
    /// Blind index of the address.
    pub address_index: String,
    /// Permit or deny.
    pub decision: Decision,
    /// sms-keyword | web | clinician | ehr-import.
    pub source: String,
    /// When it ranks: Herald's clock when it records it, or the earlier time
    /// the sender stated (`domain::consent::ranked_at`); never later than now.
    pub recorded_at: DateTime<Utc>,
    /// The time the sender stated (`Consent.dateTime`), kept as evidence.
    pub stated_at: Option<DateTime<Utc>>,
    /// The sender stated a time in the future; recorded at Herald's time.
    pub future_dated: bool,
    /// Period end.
    pub valid_until: Option<DateTime<Utc>>,
    /// The FHIR Consent JSON.
    pub resource: String,
}

fn aad(id: &str) -> String {
    format!("consents.resource:{id}")
}

fn decision_code(d: Decision) -> &'static str {
    match d {
        Decision::Permit => "permit",
        Decision::Deny => "deny",
    }
}

/// Appends a ledger row. Returns false when this Consent id is already there.
pub fn insert(conn: &mut DbConn, ring: &KeyRing, n: &NewConsent) -> Result<bool, DbError> {
    let exists: i64 = c::table.filter(c::id.eq(&n.id)).count().get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    let enc = ring.encrypt_str(&aad(&n.id), &n.resource)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    diesel::insert_into(c::table)
        .values((
            c::id.eq(&n.id),
            c::patient_fhir_id.eq(&n.patient_id),
            c::channel.eq(n.channel.code()),
            c::purpose.eq(n.purpose.map(Purpose::code)),
            c::address_index.eq(&n.address_index),
            c::decision.eq(decision_code(n.decision)),
            c::source.eq(&n.source),
            c::recorded_at.eq(super::ts(n.recorded_at)),
            c::valid_until.eq(n.valid_until.map(super::ts)),
            c::resource_enc.eq(&enc),
            c::key_id.eq(key_id),
            c::stated_at.eq(n.stated_at.map(super::ts)),
            c::future_dated.eq(n.future_dated),
        ))
        .execute(conn)?;
    // Every Consent Herald records is owed to the EHR (written where its
    // preset accepts Consent); one that came from the EHR is not.
    if !n.source.starts_with("ehr") {
        super::writes::enqueue(
            conn,
            super::writes::WriteKind::Consent,
            &format!("Consent/{}", n.id),
            &n.patient_id,
            None,
            n.recorded_at,
        )?;
    }
    Ok(true)
}

/// One ledger row's FHIR Consent (decrypted), for the write-back.
pub fn resource_of(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<Option<String>, DbError> {
    let enc: Option<Vec<u8>> = c::table
        .find(id)
        .select(c::resource_enc)
        .first(conn)
        .optional()?;
    enc.map(|e| ring.decrypt_str(&aad(id), &e).map_err(DbError::from))
        .transpose()
}

type EntryRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
    bool,
);

/// Every ledger entry for a patient.
pub fn entries_for(conn: &mut DbConn, patient_id: &str) -> Result<Vec<ConsentEntry>, DbError> {
    let rows: Vec<EntryRow> = c::table
        .filter(c::patient_fhir_id.eq(patient_id))
        .select((
            c::id,
            c::channel,
            c::purpose,
            c::address_index,
            c::decision,
            c::recorded_at,
            c::valid_until,
            c::future_dated,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, channel, purpose, address_index, decision, at, until, future_dated) in rows {
        // A row Herald cannot read is skipped rather than trusted.
        let Ok(channel) = channel.parse::<Channel>() else {
            continue;
        };
        let purpose = match purpose.map(|p| p.parse::<Purpose>()).transpose() {
            Ok(p) => p,
            Err(_) => continue,
        };
        let decision = match decision.as_str() {
            "permit" => Decision::Permit,
            "deny" => Decision::Deny,
            _ => continue,
        };
        out.push(ConsentEntry {
            consent_id: id,
            channel,
            purpose,
            address_index,
            decision,
            recorded_at: super::utc(at),
            valid_until: until.map(super::utc),
            future_dated,
        });
    }
    Ok(out)
}

/// The stored FHIR Consent JSON.
pub fn resource(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<Option<String>, DbError> {
    let enc: Option<Vec<u8>> = c::table
        .find(id)
        .select(c::resource_enc)
        .first(conn)
        .optional()?;
    enc.map(|e| ring.decrypt_str(&aad(id), &e).map_err(DbError::from))
        .transpose()
}

/// Re-encrypts up to `limit` rows sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let rows: Vec<(String, Vec<u8>)> = c::table
        .filter(c::key_id.ne(active))
        .select((c::id, c::resource_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &rows {
        let plain = ring.decrypt(aad(id).as_bytes(), enc)?;
        let sealed = ring.encrypt(aad(id).as_bytes(), &plain)?;
        diesel::update(c::table.find(id))
            .set((c::resource_enc.eq(sealed), c::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(rows.len())
}

/// A stored Consent: its ledger row id, when it was recorded, and its JSON.
#[derive(Debug, Clone)]
pub struct StoredConsent {
    /// Ledger row id.
    pub row_id: String,
    /// Patient.
    pub patient_id: String,
    /// Recorded at.
    pub recorded_at: chrono::NaiveDateTime,
    /// The FHIR Consent (decrypted).
    pub resource: String,
}

/// Ledger rows, oldest first, optionally for one patient and a time range.
pub fn search(
    conn: &mut DbConn,
    ring: &KeyRing,
    patient: Option<&str>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i64,
) -> Result<Vec<StoredConsent>, DbError> {
    let mut q = c::table.into_boxed();
    if let Some(p) = patient {
        q = q.filter(c::patient_fhir_id.eq(p));
    }
    if let Some(f) = from {
        q = q.filter(c::recorded_at.ge(super::ts(f)));
    }
    if let Some(t) = to {
        q = q.filter(c::recorded_at.lt(super::ts(t)));
    }
    let rows: Vec<(String, String, chrono::NaiveDateTime, Vec<u8>)> = q
        .order((c::recorded_at.asc(), c::id.asc()))
        .limit(limit)
        .select((c::id, c::patient_fhir_id, c::recorded_at, c::resource_enc))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, patient_id, recorded_at, enc)| {
            Ok(StoredConsent {
                resource: ring.decrypt_str(&aad(&id), &enc)?,
                row_id: id,
                patient_id,
                recorded_at,
            })
        })
        .collect()
}
