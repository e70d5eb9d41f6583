//! The outbox: one row per message intent, unique by id and by dedupe key.
//! Workers claim due rows with a lease (`FOR UPDATE SKIP LOCKED` on
//! PostgreSQL; `BEGIN IMMEDIATE` on SQLite), so several processes share the
//! work and a crashed worker's lease runs out and is claimed again.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::schema::outbox as o;
use super::{DbConn, DbError, write_tx};
use crate::crypto::KeyRing;
use crate::domain::intent::IntentState;

/// An intent to enqueue.
#[derive(Debug, Clone)]
pub struct NewIntent {
    /// Unique id (also the provider idempotency key).
    pub id: String,
    /// Unique per resource, kind and fact.
    pub dedupe_key: String,
    /// Patient's logical id.
    pub patient_id: String,
    /// `MessageKind::key()`.
    pub kind: String,
    /// Purpose code.
    pub purpose: String,
    /// "Appointment/123".
    pub about: String,
    /// Earliest send time.
    pub due_at: DateTime<Utc>,
    /// Latest send time.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A stored intent.
#[derive(Debug, Clone, Queryable)]
pub struct Intent {
    /// Id.
    pub id: String,
    /// Dedupe key.
    pub dedupe_key: String,
    /// Patient.
    pub patient_id: String,
    /// Kind key.
    pub kind: String,
    /// Purpose code.
    pub purpose: String,
    /// About.
    pub about: String,
    /// Due.
    pub due_at: chrono::NaiveDateTime,
    /// Expiry.
    pub expires_at: Option<chrono::NaiveDateTime>,
    /// State code.
    pub state: String,
    /// Attempts so far.
    pub attempts: i32,
    /// Channel used.
    pub channel: Option<String>,
    /// Suppression or failure reason.
    pub reason: Option<String>,
    /// Provider message id.
    pub provider_ref: Option<String>,
}

type Cols = (
    o::id,
    o::dedupe_key,
    o::patient_fhir_id,
    o::kind,
    o::purpose,
    o::about,
    o::due_at,
    o::expires_at,
    o::state,
    o::attempts,
    o::channel,
    o::reason,
    o::provider_ref,
);

const COLS: Cols = (
    o::id,
    o::dedupe_key,
    o::patient_fhir_id,
    o::kind,
    o::purpose,
    o::about,
    o::due_at,
    o::expires_at,
    o::state,
    o::attempts,
    o::channel,
    o::reason,
    o::provider_ref,
);

/// Enqueues an intent unless one with its dedupe key exists; true if new.
pub fn enqueue(conn: &mut DbConn, n: &NewIntent, now: DateTime<Utc>) -> Result<bool, DbError> {
    let values = (
        o::id.eq(&n.id),
        o::dedupe_key.eq(&n.dedupe_key),
        o::patient_fhir_id.eq(&n.patient_id),
        o::kind.eq(&n.kind),
        o::purpose.eq(&n.purpose),
        o::about.eq(&n.about),
        o::due_at.eq(super::ts(n.due_at)),
        o::expires_at.eq(n.expires_at.map(super::ts)),
        o::state.eq(IntentState::Pending.code()),
        o::attempts.eq(0),
        o::created_at.eq(super::ts(now)),
        o::updated_at.eq(super::ts(now)),
    );
    let inserted = match conn {
        DbConn::Pg(c) => diesel::insert_into(o::table)
            .values(values)
            .on_conflict(o::dedupe_key)
            .do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(o::table)
            .values(values)
            .on_conflict(o::dedupe_key)
            .do_nothing()
            .execute(c)?,
    };
    Ok(inserted == 1)
}

/// Withdraws every pending intent about a resource; returns how many.
pub fn withdraw_pending(
    conn: &mut DbConn,
    about: &str,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        o::table
            .filter(o::about.eq(about))
            .filter(o::state.eq(IntentState::Pending.code())),
    )
    .set((
        o::state.eq(IntentState::Withdrawn.code()),
        o::reason.eq("resource changed"),
        o::updated_at.eq(super::ts(now)),
    ))
    .execute(conn)?)
}

/// Claims up to `limit` due intents for `owner` until `now + lease`.
/// Expired leases (a crashed worker) are claimed again.
pub fn claim_due(
    conn: &mut DbConn,
    owner: &str,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<Intent>, DbError> {
    let n = super::ts(now);
    write_tx(conn, |conn| {
        let due = o::state
            .eq(IntentState::Pending.code())
            .and(o::due_at.le(n))
            .or(o::state
                .eq(IntentState::Leased.code())
                .and(o::lease_until.lt(n)));
        let ids: Vec<String> = match conn {
            DbConn::Pg(c) => o::table
                .filter(due)
                .order(o::due_at.asc())
                .select(o::id)
                .limit(limit)
                .for_update()
                .skip_locked()
                .load(c)?,
            DbConn::Sqlite(c) => o::table
                .filter(due)
                .order(o::due_at.asc())
                .select(o::id)
                .limit(limit)
                .load(c)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(o::table.filter(o::id.eq_any(&ids)))
            .set((
                o::state.eq(IntentState::Leased.code()),
                o::lease_owner.eq(owner),
                o::lease_until.eq(super::ts(now + lease)),
                o::attempts.eq(o::attempts + 1),
                o::updated_at.eq(n),
            ))
            .execute(conn)?;
        let rows: Vec<Intent> = o::table
            .filter(o::id.eq_any(&ids))
            .order(o::due_at.asc())
            .select(COLS)
            .load(conn)?;
        Ok::<_, DbError>(rows)
    })
}

/// The final (or deferred) outcome of one attempt, recorded under the lease.
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    /// New state.
    pub state: IntentState,
    /// Channel used or considered.
    pub channel: Option<&'a str>,
    /// Reason (suppression, failure, deferral).
    pub reason: Option<&'a str>,
    /// Provider message id.
    pub provider_ref: Option<&'a str>,
    /// Rendered text (encrypted here).
    pub body: Option<&'a str>,
    /// New due time (when deferred back to pending).
    pub due_at: Option<DateTime<Utc>>,
}

/// Records an attempt's outcome; fails with `Conflict` if the lease was lost.
pub fn finish(
    conn: &mut DbConn,
    ring: &KeyRing,
    id: &str,
    owner: &str,
    f: &Finish<'_>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let body = f
        .body
        .map(|b| ring.encrypt_str(&format!("outbox.body:{id}"), b))
        .transpose()?;
    let key_id = match body {
        Some(_) => Some(i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?),
        None => None,
    };
    let n = diesel::update(
        o::table
            .filter(o::id.eq(id))
            .filter(o::lease_owner.eq(owner)),
    )
    .set((
        o::state.eq(f.state.code()),
        o::channel.eq(f.channel),
        o::reason.eq(f.reason),
        o::provider_ref.eq(f.provider_ref),
        o::body_enc.eq(body),
        o::key_id.eq(key_id),
        o::lease_owner.eq(None::<String>),
        o::lease_until.eq(None::<chrono::NaiveDateTime>),
        o::updated_at.eq(super::ts(now)),
    ))
    .execute(conn)?;
    if let Some(due) = f.due_at {
        diesel::update(o::table.filter(o::id.eq(id)))
            .set(o::due_at.eq(super::ts(due)))
            .execute(conn)?;
    }
    if n == 1 {
        Ok(())
    } else {
        Err(DbError::Conflict)
    }
}

/// Every intent, by due time (for the demo summary and tests).
pub fn list(conn: &mut DbConn) -> Result<Vec<Intent>, DbError> {
    Ok(o::table
        .order((o::due_at.asc(), o::id.asc()))
        .select(COLS)
        .load(conn)?)
}

/// The decrypted body of a sent intent.
pub fn body(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<Option<String>, DbError> {
    let enc: Option<Option<Vec<u8>>> = o::table
        .find(id)
        .select(o::body_enc)
        .first(conn)
        .optional()?;
    match enc.flatten() {
        Some(e) => Ok(Some(ring.decrypt_str(&format!("outbox.body:{id}"), &e)?)),
        None => Ok(None),
    }
}

/// Re-encrypts up to `limit` bodies sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let rows: Vec<(String, Option<Vec<u8>>)> = o::table
        .filter(o::key_id.ne(active))
        .select((o::id, o::body_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &rows {
        let Some(enc) = enc else { continue };
        let aad = format!("outbox.body:{id}");
        let plain = ring.decrypt(aad.as_bytes(), enc)?;
        let sealed = ring.encrypt(aad.as_bytes(), &plain)?;
        diesel::update(o::table.find(id))
            .set((o::body_enc.eq(sealed), o::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(rows.len())
}
