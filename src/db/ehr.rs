//! Following the EHR: Herald's signing keys for SMART Backend Services, the
//! Subscriptions it holds on the EHR, notifications received (stored before
//! Herald answers 2xx), the poller's checkpoints, and named leases.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{ehr_subscriptions as s, fhir_notifications as n, leases as l};
use super::schema::{poll_state as p, signing_keys as k};
use super::{DbConn, DbError, ts, utc};
use crate::crypto::KeyRing;

fn key_id(ring: &KeyRing) -> Result<i32, DbError> {
    i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))
}

// ---------------------------------------------------------------- signing keys

/// One of Herald's key pairs for client assertions (SMART S17/S18).
#[derive(Debug, Clone)]
pub struct SigningKey {
    /// Key id (the JWK `kid`).
    pub kid: String,
    /// RS384 or ES384.
    pub alg: String,
    /// PKCS#8 PEM of the private key (decrypted).
    pub private_pem: String,
    /// The public JWK (JSON).
    pub public_jwk: String,
    /// When it was made (and published).
    pub created_at: DateTime<Utc>,
    /// From when Herald signs with it (publication comes first, S18).
    pub sign_from: DateTime<Utc>,
}

fn signing_aad(kid: &str) -> String {
    format!("signing_keys.private_enc:{kid}")
}

/// Stores a new key pair.
pub fn insert_signing_key(
    conn: &mut DbConn,
    ring: &KeyRing,
    key: &SigningKey,
) -> Result<(), DbError> {
    let enc = ring.encrypt_str(&signing_aad(&key.kid), &key.private_pem)?;
    diesel::insert_into(k::table)
        .values((
            k::kid.eq(&key.kid),
            k::alg.eq(&key.alg),
            k::private_enc.eq(enc),
            k::key_id.eq(key_id(ring)?),
            k::public_jwk.eq(&key.public_jwk),
            k::created_at.eq(ts(key.created_at)),
            k::sign_from.eq(ts(key.sign_from)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Every key not retired, oldest first (what the JWKS publishes).
pub fn published_keys(conn: &mut DbConn, ring: &KeyRing) -> Result<Vec<SigningKey>, DbError> {
    type Row = (
        String,
        String,
        Vec<u8>,
        String,
        chrono::NaiveDateTime,
        chrono::NaiveDateTime,
    );
    let rows: Vec<Row> = k::table
        .filter(k::retired_at.is_null())
        .select((
            k::kid,
            k::alg,
            k::private_enc,
            k::public_jwk,
            k::created_at,
            k::sign_from,
        ))
        .order((k::created_at.asc(), k::kid.asc()))
        .load(conn)?;
    rows.into_iter()
        .map(|(kid, alg, enc, public_jwk, created, from)| {
            Ok(SigningKey {
                private_pem: ring.decrypt_str(&signing_aad(&kid), &enc)?,
                kid,
                alg,
                public_jwk,
                created_at: utc(created),
                sign_from: utc(from),
            })
        })
        .collect()
}

/// Public JWKs only (no decryption), for `/.well-known/jwks.json`.
pub fn public_jwks(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    Ok(k::table
        .filter(k::retired_at.is_null())
        .select(k::public_jwk)
        .order((k::created_at.asc(), k::kid.asc()))
        .load(conn)?)
}

/// Retires every key of `alg` except those in `keep` (they leave the JWKS).
pub fn retire_signing_keys_except(
    conn: &mut DbConn,
    alg: &str,
    keep: &[String],
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        k::table
            .filter(k::alg.eq(alg))
            .filter(k::retired_at.is_null())
            .filter(k::kid.ne_all(keep)),
    )
    .set(k::retired_at.eq(ts(now)))
    .execute(conn)?)
}

// ---------------------------------------------------------------- subscriptions

/// A Subscription Herald made on the EHR.
#[derive(Debug, Clone)]
pub struct EhrSubscription {
    /// Herald's id: the last path segment of the notification URL.
    pub id: String,
    /// Appointment or MedicationRequest.
    pub resource_type: String,
    /// r4 (criteria) or backport (topic).
    pub style: String,
    /// The EHR base URL.
    pub ehr: String,
    /// The Subscription's id on the EHR.
    pub remote_id: Option<String>,
    /// The secret the EHR sends back in `channel.header` (decrypted).
    pub secret: String,
    /// requested | active | error | off.
    pub status: String,
    /// Backport topic canonical.
    pub topic: Option<String>,
    /// Last backport event number processed.
    pub last_event: i64,
    /// Last notification (any kind) received.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// Backport heartbeat period.
    pub heartbeat_secs: Option<i32>,
}

fn secret_aad(id: &str) -> String {
    format!("ehr_subscriptions.secret_enc:{id}")
}

/// Stores a new subscription.
pub fn insert_subscription(
    conn: &mut DbConn,
    ring: &KeyRing,
    sub: &EhrSubscription,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let enc = ring.encrypt_str(&secret_aad(&sub.id), &sub.secret)?;
    diesel::insert_into(s::table)
        .values((
            s::id.eq(&sub.id),
            s::resource_type.eq(&sub.resource_type),
            s::style.eq(&sub.style),
            s::ehr.eq(&sub.ehr),
            s::remote_id.eq(&sub.remote_id),
            s::secret_enc.eq(enc),
            s::key_id.eq(key_id(ring)?),
            s::status.eq(&sub.status),
            s::topic.eq(&sub.topic),
            s::last_event.eq(sub.last_event),
            s::heartbeat_secs.eq(sub.heartbeat_secs),
            s::created_at.eq(ts(now)),
            s::updated_at.eq(ts(now)),
        ))
        .execute(conn)?;
    Ok(())
}

type SubRow = (
    String,
    String,
    String,
    String,
    Option<String>,
    Vec<u8>,
    String,
    Option<String>,
    i64,
    Option<chrono::NaiveDateTime>,
    Option<i32>,
);

fn sub_of(ring: &KeyRing, r: SubRow) -> Result<EhrSubscription, DbError> {
    let (id, resource_type, style, ehr, remote_id, enc, status, topic, last_event, seen, hb) = r;
    Ok(EhrSubscription {
        secret: ring.decrypt_str(&secret_aad(&id), &enc)?,
        id,
        resource_type,
        style,
        ehr,
        remote_id,
        status,
        topic,
        last_event,
        last_seen_at: seen.map(utc),
        heartbeat_secs: hb,
    })
}

macro_rules! sub_cols {
    () => {
        (
            s::id,
            s::resource_type,
            s::style,
            s::ehr,
            s::remote_id,
            s::secret_enc,
            s::status,
            s::topic,
            s::last_event,
            s::last_seen_at,
            s::heartbeat_secs,
        )
    };
}

/// One subscription by Herald's id.
pub fn subscription(
    conn: &mut DbConn,
    ring: &KeyRing,
    id: &str,
) -> Result<Option<EhrSubscription>, DbError> {
    let row: Option<SubRow> = s::table
        .find(id)
        .select(sub_cols!())
        .first(conn)
        .optional()?;
    row.map(|r| sub_of(ring, r)).transpose()
}

/// Every subscription Herald holds on `ehr`, not switched off.
pub fn subscriptions(
    conn: &mut DbConn,
    ring: &KeyRing,
    ehr: &str,
) -> Result<Vec<EhrSubscription>, DbError> {
    let rows: Vec<SubRow> = s::table
        .filter(s::ehr.eq(ehr))
        .filter(s::status.ne("off"))
        .select(sub_cols!())
        .order(s::created_at.asc())
        .load(conn)?;
    rows.into_iter().map(|r| sub_of(ring, r)).collect()
}

/// Records the EHR's id and status for a subscription.
pub fn set_subscription_remote(
    conn: &mut DbConn,
    id: &str,
    remote_id: Option<&str>,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(s::table.find(id))
        .set((
            s::remote_id.eq(remote_id),
            s::status.eq(status),
            s::updated_at.eq(ts(now)),
        ))
        .execute(conn)?;
    Ok(())
}

/// Notes that something arrived for the subscription (liveness, N11).
pub fn touch_subscription(conn: &mut DbConn, id: &str, now: DateTime<Utc>) -> Result<(), DbError> {
    diesel::update(s::table.find(id))
        .set(s::last_seen_at.eq(ts(now)))
        .execute(conn)?;
    Ok(())
}

/// Moves the processed backport event number forward (never back, N12).
pub fn advance_event(conn: &mut DbConn, id: &str, event: i64) -> Result<(), DbError> {
    diesel::update(s::table.find(id).filter(s::last_event.lt(event)))
        .set(s::last_event.eq(event))
        .execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- notifications

/// A stored notification.
#[derive(Debug, Clone)]
pub struct Notification {
    /// Herald's id for it.
    pub id: String,
    /// Herald's subscription id.
    pub subscription_id: String,
    /// The path after the subscription (R4 payload style `Appointment/1`), if any.
    pub path: Option<String>,
    /// The body (decrypted; may be empty).
    pub body: String,
    /// Processing attempts so far.
    pub attempts: i32,
}

fn note_aad(id: &str) -> String {
    format!("fhir_notifications.body_enc:{id}")
}

/// Stores a notification durably (before the 2xx).
pub fn insert_notification(
    conn: &mut DbConn,
    ring: &KeyRing,
    note: &Notification,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let enc = ring.encrypt_str(&note_aad(&note.id), &note.body)?;
    diesel::insert_into(n::table)
        .values((
            n::id.eq(&note.id),
            n::subscription_id.eq(&note.subscription_id),
            n::received_at.eq(ts(now)),
            n::path.eq(&note.path),
            n::body_enc.eq(enc),
            n::key_id.eq(key_id(ring)?),
            n::state.eq("pending"),
        ))
        .execute(conn)?;
    Ok(())
}

/// Pending notifications, oldest first.
pub fn pending_notifications(
    conn: &mut DbConn,
    ring: &KeyRing,
    limit: i64,
) -> Result<Vec<Notification>, DbError> {
    type Row = (String, String, Option<String>, Vec<u8>, i32);
    let rows: Vec<Row> = n::table
        .filter(n::state.eq("pending"))
        .select((n::id, n::subscription_id, n::path, n::body_enc, n::attempts))
        .order((n::received_at.asc(), n::id.asc()))
        .limit(limit)
        .load(conn)?;
    rows.into_iter()
        .map(|(id, subscription_id, path, enc, attempts)| {
            Ok(Notification {
                body: ring.decrypt_str(&note_aad(&id), &enc)?,
                id,
                subscription_id,
                path,
                attempts,
            })
        })
        .collect()
}

/// Marks a notification done, or failed for good, or counts a failed attempt.
pub fn finish_notification(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(n::table.find(id))
        .set((
            n::state.eq(state),
            n::attempts.eq(n::attempts + 1),
            n::processed_at.eq(ts(now)),
            n::error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// How many notifications are in each state (tests, metrics).
pub fn notification_counts(conn: &mut DbConn) -> Result<Vec<(String, i64)>, DbError> {
    Ok(n::table
        .group_by(n::state)
        .select((n::state, diesel::dsl::count_star()))
        .load(conn)?)
}

// ---------------------------------------------------------------- poll state

/// The poller's checkpoint `name`.
pub fn checkpoint(conn: &mut DbConn, name: &str) -> Result<Option<String>, DbError> {
    Ok(p::table
        .find(name)
        .select(p::checkpoint)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
}

/// Saves a checkpoint.
pub fn set_checkpoint(
    conn: &mut DbConn,
    name: &str,
    value: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let updated = diesel::update(p::table.find(name))
        .set((p::checkpoint.eq(value), p::updated_at.eq(ts(now))))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(p::table)
            .values((
                p::name.eq(name),
                p::checkpoint.eq(value),
                p::updated_at.eq(ts(now)),
            ))
            .execute(conn)?;
    }
    Ok(())
}

// ---------------------------------------------------------------- leases

/// Takes (or renews) the named lease for `holder` until `until`. False when
/// another holder has it. Works the same on SQLite and PostgreSQL: the row is
/// claimed by a conditional UPDATE, and a first INSERT races on the key.
pub fn try_lease(
    conn: &mut DbConn,
    name: &str,
    holder: &str,
    until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<bool, DbError> {
    let taken = diesel::update(
        l::table
            .find(name)
            .filter(l::holder.eq(holder).or(l::until_at.lt(ts(now)))),
    )
    .set((l::holder.eq(holder), l::until_at.eq(ts(until))))
    .execute(conn)?;
    if taken == 1 {
        return Ok(true);
    }
    let exists: i64 = l::table.filter(l::name.eq(name)).count().get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    match diesel::insert_into(l::table)
        .values((
            l::name.eq(name),
            l::holder.eq(holder),
            l::until_at.eq(ts(until)),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(true),
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Gives the lease back.
pub fn release_lease(conn: &mut DbConn, name: &str, holder: &str) -> Result<(), DbError> {
    diesel::delete(l::table.find(name).filter(l::holder.eq(holder))).execute(conn)?;
    Ok(())
}

// ---------------------------------------------------------------- key rotation

/// Re-encrypts up to `limit` sealed rows of these tables under the active key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = key_id(ring)?;
    let mut done = 0;
    let keys: Vec<(String, Vec<u8>)> = k::table
        .filter(k::key_id.ne(active))
        .select((k::kid, k::private_enc))
        .limit(limit)
        .load(conn)?;
    for (kid, enc) in &keys {
        let plain = ring.decrypt(signing_aad(kid).as_bytes(), enc)?;
        let sealed = ring.encrypt(signing_aad(kid).as_bytes(), &plain)?;
        diesel::update(k::table.find(kid))
            .set((k::private_enc.eq(sealed), k::key_id.eq(active)))
            .execute(conn)?;
        done += 1;
    }
    let subs: Vec<(String, Vec<u8>)> = s::table
        .filter(s::key_id.ne(active))
        .select((s::id, s::secret_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &subs {
        let plain = ring.decrypt(secret_aad(id).as_bytes(), enc)?;
        let sealed = ring.encrypt(secret_aad(id).as_bytes(), &plain)?;
        diesel::update(s::table.find(id))
            .set((s::secret_enc.eq(sealed), s::key_id.eq(active)))
            .execute(conn)?;
        done += 1;
    }
    let notes: Vec<(String, Vec<u8>)> = n::table
        .filter(n::key_id.ne(active))
        .select((n::id, n::body_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &notes {
        let plain = ring.decrypt(note_aad(id).as_bytes(), enc)?;
        let sealed = ring.encrypt(note_aad(id).as_bytes(), &plain)?;
        diesel::update(n::table.find(id))
            .set((n::body_enc.eq(sealed), n::key_id.eq(active)))
            .execute(conn)?;
        done += 1;
    }
    Ok(done)
}
