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
    /// When a worker first claimed it (a retry reconciles from here).
    pub first_claimed_at: Option<chrono::NaiveDateTime>,
    /// When the provider accepted it.
    pub sent_at: Option<chrono::NaiveDateTime>,
    /// The provider's last delivery status (W3).
    pub delivery_status: Option<String>,
    /// The provider's error code, if any.
    pub error_code: Option<String>,
    /// SMS segments.
    pub segments: Option<i32>,
    /// Created.
    pub created_at: chrono::NaiveDateTime,
    /// Last change.
    pub updated_at: chrono::NaiveDateTime,
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
    o::first_claimed_at,
    o::sent_at,
    o::delivery_status,
    o::error_code,
    o::segments,
    o::created_at,
    o::updated_at,
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
    o::first_claimed_at,
    o::sent_at,
    o::delivery_status,
    o::error_code,
    o::segments,
    o::created_at,
    o::updated_at,
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

/// Withdraws pending intents about a resource except those with the given
/// dedupe keys; returns how many.
pub fn withdraw_pending_except(
    conn: &mut DbConn,
    about: &str,
    keep: &[String],
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        o::table
            .filter(o::about.eq(about))
            .filter(o::state.eq(IntentState::Pending.code()))
            .filter(o::dedupe_key.ne_all(keep)),
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
                .order((o::due_at.asc(), o::dedupe_key.asc()))
                .select(o::id)
                .limit(limit)
                .for_update()
                .skip_locked()
                .load(c)?,
            DbConn::Sqlite(c) => o::table
                .filter(due)
                .order((o::due_at.asc(), o::dedupe_key.asc()))
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
        diesel::update(
            o::table
                .filter(o::id.eq_any(&ids))
                .filter(o::first_claimed_at.is_null()),
        )
        .set(o::first_claimed_at.eq(n))
        .execute(conn)?;
        let rows: Vec<Intent> = o::table
            .filter(o::id.eq_any(&ids))
            .order((o::due_at.asc(), o::dedupe_key.asc()))
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
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The provider's error code.
    pub error_code: Option<&'a str>,
    /// SMS segments.
    pub segments: Option<i32>,
}

impl Finish<'_> {
    /// A state change with nothing else to record.
    pub fn state(state: IntentState, reason: Option<&'static str>) -> Finish<'static> {
        Finish {
            state,
            channel: None,
            reason,
            provider_ref: None,
            body: None,
            due_at: None,
            sent_at: None,
            error_code: None,
            segments: None,
        }
    }
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
        o::sent_at.eq(f.sent_at.map(super::ts)),
        o::error_code.eq(f.error_code),
        o::segments.eq(f.segments),
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

/// Renews this worker's lease on one intent just before a provider call, so
/// a slow batch never lets another worker take over a message that is being
/// sent. `false`: the lease was lost and the message must not be sent.
pub fn renew_lease(
    conn: &mut DbConn,
    id: &str,
    owner: &str,
    until: DateTime<Utc>,
) -> Result<bool, DbError> {
    let n = diesel::update(
        o::table
            .filter(o::id.eq(id))
            .filter(o::lease_owner.eq(owner))
            .filter(o::state.eq(IntentState::Leased.code())),
    )
    .set(o::lease_until.eq(super::ts(until)))
    .execute(conn)?;
    Ok(n == 1)
}

/// When messages to a patient were accepted by a provider since `since`
/// (for frequency caps).
pub fn sent_times(
    conn: &mut DbConn,
    patient_id: &str,
    since: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbError> {
    let rows: Vec<Option<chrono::NaiveDateTime>> = o::table
        .filter(o::patient_fhir_id.eq(patient_id))
        .filter(o::sent_at.ge(super::ts(since)))
        .select(o::sent_at)
        .load(conn)?;
    Ok(rows.into_iter().flatten().map(super::utc).collect())
}

/// One intent.
pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<Intent>, DbError> {
    Ok(o::table.find(id).select(COLS).first(conn).optional()?)
}

/// Rank of a provider status; a status never replaces a higher one, and a
/// final status is never replaced (messaging.md W3: callbacks arrive out of
/// order).
pub fn status_rank(s: &str) -> u8 {
    match s {
        "accepted" | "scheduled" => 1,
        "queued" => 2,
        "sending" | "initiated" | "ringing" => 3,
        "sent" | "in-progress" => 4,
        "delivered" | "undelivered" | "failed" | "read" | "canceled" | "completed" | "busy"
        | "no-answer" => 9,
        _ => 0,
    }
}

/// The intent the provider knows as `provider_ref`.
pub fn by_provider_ref(conn: &mut DbConn, provider_ref: &str) -> Result<Option<Intent>, DbError> {
    Ok(o::table
        .filter(o::provider_ref.eq(provider_ref))
        .select(COLS)
        .first::<Intent>(conn)
        .optional()?)
}

/// Records a delivery status on `current` (as just read, inside the caller's
/// write transaction). Returns false when the status is unknown or would
/// move a final status backwards, and leaves the row as it was.
pub fn record_status(
    conn: &mut DbConn,
    current: &Intent,
    status: &str,
    error_code: Option<&str>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let old = current.delivery_status.as_deref().map_or(0, status_rank);
    let new = status_rank(status);
    if new == 0 || old == 9 || new < old {
        return Ok(false);
    }
    diesel::update(o::table.find(&current.id))
        .set((
            o::delivery_status.eq(status),
            o::error_code.eq(error_code.or(current.error_code.as_deref())),
            o::updated_at.eq(super::ts(now)),
        ))
        .execute(conn)?;
    Ok(true)
}

/// Filters for the Communication search.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Patient id.
    pub patient: Option<String>,
    /// Outbox states.
    pub states: Option<Vec<String>>,
    /// Purposes.
    pub purposes: Option<Vec<String>>,
    /// sent ≥.
    pub sent_from: Option<DateTime<Utc>>,
    /// sent <.
    pub sent_to: Option<DateTime<Utc>>,
    /// Keyset: ids after this one.
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// Intents that reached a decision (sent, suppressed, failed, expired), by id.
pub fn search(conn: &mut DbConn, s: &Search) -> Result<Vec<Intent>, DbError> {
    let mut q = o::table
        .filter(o::state.eq_any([
            IntentState::Sent.code(),
            IntentState::Suppressed.code(),
            IntentState::Failed.code(),
            IntentState::Expired.code(),
        ]))
        .into_boxed();
    if let Some(p) = &s.patient {
        q = q.filter(o::patient_fhir_id.eq(p));
    }
    if let Some(st) = &s.states {
        q = q.filter(o::state.eq_any(st));
    }
    if let Some(p) = &s.purposes {
        q = q.filter(o::purpose.eq_any(p));
    }
    if let Some(f) = s.sent_from {
        q = q.filter(o::sent_at.ge(super::ts(f)));
    }
    if let Some(t) = s.sent_to {
        q = q.filter(o::sent_at.lt(super::ts(t)));
    }
    if let Some(a) = &s.after {
        q = q.filter(o::id.gt(a));
    }
    Ok(q.order(o::id.asc())
        .limit(s.limit)
        .select(COLS)
        .load(conn)?)
}
