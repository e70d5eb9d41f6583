//! What Herald owes the EHR: each Consent it records, and a patient's
//! confirmation or cancellation of an appointment. Rows wait here (enqueued
//! in the transaction of the change that owes them) until the follower writes
//! them, where the preset says the EHR accepts that type.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::ehr_writes as w;
use super::{DbConn, DbError, ts};

/// What to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    /// POST the Consent (conditional on its identifier).
    Consent,
    /// The patient answered "confirm": participant status accepted.
    AppointmentAccept,
    /// The patient asked to cancel (when replies cancel, not staff).
    AppointmentCancel,
}

impl WriteKind {
    /// Stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Consent => "consent",
            Self::AppointmentAccept => "appointment-accept",
            Self::AppointmentCancel => "appointment-cancel",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            Self::Consent,
            Self::AppointmentAccept,
            Self::AppointmentCancel,
        ]
        .into_iter()
        .find(|k| k.code() == s)
    }
}

/// A pending write.
#[derive(Debug, Clone)]
pub struct Write {
    /// Row id.
    pub id: String,
    /// What.
    pub kind: WriteKind,
    /// `Consent/{ledger id}` or `Appointment/{id}`.
    pub target: String,
    /// The patient.
    pub patient_id: String,
    /// The inbound reply that asked for it (closed when written).
    pub inbound_key: Option<String>,
    /// Attempts so far.
    pub attempts: i32,
}

/// Owes the EHR a write; false when the same one is already owed.
pub fn enqueue(
    conn: &mut DbConn,
    kind: WriteKind,
    target: &str,
    patient_id: &str,
    inbound_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let dedupe = format!("{}|{target}", kind.code());
    let exists: i64 = w::table
        .filter(w::dedupe_key.eq(&dedupe))
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    diesel::insert_into(w::table)
        .values((
            w::id.eq(uuid::Uuid::new_v4().to_string()),
            w::dedupe_key.eq(&dedupe),
            w::kind.eq(kind.code()),
            w::target.eq(target),
            w::patient_fhir_id.eq(patient_id),
            w::inbound_key.eq(inbound_key),
            w::state.eq("pending"),
            w::due_at.eq(ts(now)),
            w::created_at.eq(ts(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Writes due now, oldest first.
pub fn due(conn: &mut DbConn, now: DateTime<Utc>, limit: i64) -> Result<Vec<Write>, DbError> {
    type Row = (String, String, String, String, Option<String>, i32);
    let rows: Vec<Row> = w::table
        .filter(w::state.eq("pending"))
        .filter(w::due_at.le(ts(now)))
        .select((
            w::id,
            w::kind,
            w::target,
            w::patient_fhir_id,
            w::inbound_key,
            w::attempts,
        ))
        .order((w::due_at.asc(), w::id.asc()))
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, kind, target, patient_id, inbound_key, attempts)| {
            Some(Write {
                id,
                kind: WriteKind::parse(&kind)?,
                target,
                patient_id,
                inbound_key,
                attempts,
            })
        })
        .collect())
}

/// Ends a write: `done` (with the EHR's id), `skipped` (the EHR does not
/// accept it) or `failed`; or, with `retry_at`, tries again later.
pub fn finish(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    remote_id: Option<&str>,
    error: Option<&str>,
    retry_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let (state, due) = match retry_at {
        Some(t) => ("pending", t),
        None => (state, now),
    };
    diesel::update(w::table.find(id))
        .set((
            w::state.eq(state),
            w::attempts.eq(w::attempts + 1),
            w::due_at.eq(ts(due)),
            w::done_at.eq((state != "pending").then(|| ts(now))),
            w::remote_id.eq(remote_id),
            w::error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// `(kind, target, state)` of every write (tests, operators).
pub fn list(conn: &mut DbConn) -> Result<Vec<(String, String, String)>, DbError> {
    Ok(w::table
        .select((w::kind, w::target, w::state))
        .order(w::created_at.asc())
        .load(conn)?)
}
