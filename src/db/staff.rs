//! Staff accounts, sessions, API tokens and break-glass grants. Tokens are
//! kept only as SHA-256 hashes; the TOTP secret and the break-glass reason
//! are sealed with the key ring (associated data names table, column, row).

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{
    break_glass as bg, staff_sessions as ss, staff_tokens as st, staff_users as u,
};
use super::{DbConn, DbError, ts, utc};
use crate::crypto::KeyRing;
use crate::domain::staff::{Grant, Role};

fn totp_aad(id: &str) -> String {
    format!("staff_users.totp_secret:{id}")
}

fn reason_aad(id: &str) -> String {
    format!("break_glass.reason:{id}")
}

fn active_key(ring: &KeyRing) -> Result<i32, DbError> {
    i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))
}

fn role_of(code: &str) -> Result<Role, DbError> {
    Role::parse(code).ok_or_else(|| DbError::Other(anyhow::anyhow!("unknown staff role {code:?}")))
}

/// A new account.
#[derive(Debug)]
pub struct NewUser<'a> {
    /// Opaque id.
    pub id: &'a str,
    /// Unique sign-in name.
    pub name: &'a str,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: &'a str,
    /// TOTP secret (sealed here).
    pub totp_secret: &'a [u8],
    /// When.
    pub created_at: DateTime<Utc>,
}

/// Creates an account; `Conflict` when the name is taken.
pub fn insert_user(conn: &mut DbConn, ring: &KeyRing, n: &NewUser<'_>) -> Result<(), DbError> {
    let sealed = ring.encrypt(totp_aad(n.id).as_bytes(), n.totp_secret)?;
    diesel::insert_into(u::table)
        .values((
            u::id.eq(n.id),
            u::name.eq(n.name),
            u::role.eq(n.role.code()),
            u::password_hash.eq(n.password_hash),
            u::totp_secret_enc.eq(sealed),
            u::key_id.eq(active_key(ring)?),
            u::failed_attempts.eq(0),
            u::disabled.eq(false),
            u::created_at.eq(ts(n.created_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// An account as sign-in needs it (secrets included: never shown).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Opaque id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string.
    pub password_hash: String,
    /// TOTP secret (opened).
    pub totp_secret: Vec<u8>,
    /// Failures in a row.
    pub failed_attempts: i32,
    /// Locked until.
    pub locked_until: Option<DateTime<Utc>>,
    /// The last TOTP step accepted.
    pub last_totp_step: Option<i64>,
    /// Disabled accounts never sign in.
    pub disabled: bool,
}

type CredRow = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    i32,
    Option<NaiveDateTime>,
    Option<i64>,
    bool,
);

/// The account with this name, secrets opened.
pub fn credentials(
    conn: &mut DbConn,
    ring: &KeyRing,
    name: &str,
) -> Result<Option<Credentials>, DbError> {
    let row: Option<CredRow> = u::table
        .filter(u::name.eq(name))
        .select((
            u::id,
            u::name,
            u::role,
            u::password_hash,
            u::totp_secret_enc,
            u::failed_attempts,
            u::locked_until,
            u::last_totp_step,
            u::disabled,
        ))
        .first(conn)
        .optional()?;
    let Some((id, name, role, hash, enc, failed, locked, step, disabled)) = row else {
        return Ok(None);
    };
    let secret = ring.decrypt(totp_aad(&id).as_bytes(), &enc)?;
    Ok(Some(Credentials {
        role: role_of(&role)?,
        id,
        name,
        password_hash: hash,
        totp_secret: secret,
        failed_attempts: failed,
        locked_until: locked.map(utc),
        last_totp_step: step,
        disabled,
    }))
}

/// An account as the admin page shows it (no secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSummary {
    /// Opaque id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Failures in a row.
    pub failed_attempts: i32,
    /// Locked until.
    pub locked_until: Option<DateTime<Utc>>,
    /// Disabled.
    pub disabled: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

type SummaryRow = (
    String,
    String,
    String,
    i32,
    Option<NaiveDateTime>,
    bool,
    NaiveDateTime,
);

fn summary(
    (id, name, role, failed, locked, disabled, created): SummaryRow,
) -> Result<UserSummary, DbError> {
    Ok(UserSummary {
        role: role_of(&role)?,
        id,
        name,
        failed_attempts: failed,
        locked_until: locked.map(utc),
        disabled,
        created_at: utc(created),
    })
}

/// Every account, by name.
pub fn list_users(conn: &mut DbConn) -> Result<Vec<UserSummary>, DbError> {
    let rows: Vec<SummaryRow> = u::table
        .order(u::name.asc())
        .select((
            u::id,
            u::name,
            u::role,
            u::failed_attempts,
            u::locked_until,
            u::disabled,
            u::created_at,
        ))
        .load(conn)?;
    rows.into_iter().map(summary).collect()
}

/// One account by id.
pub fn user(conn: &mut DbConn, id: &str) -> Result<Option<UserSummary>, DbError> {
    let row: Option<SummaryRow> = u::table
        .find(id)
        .select((
            u::id,
            u::name,
            u::role,
            u::failed_attempts,
            u::locked_until,
            u::disabled,
            u::created_at,
        ))
        .first(conn)
        .optional()?;
    row.map(summary).transpose()
}

/// One account by name.
pub fn user_by_name(conn: &mut DbConn, name: &str) -> Result<Option<UserSummary>, DbError> {
    let id: Option<String> = u::table
        .filter(u::name.eq(name))
        .select(u::id)
        .first(conn)
        .optional()?;
    match id {
        Some(id) => user(conn, &id),
        None => Ok(None),
    }
}

/// The last TOTP step accepted for an account.
pub fn last_totp_step(conn: &mut DbConn, id: &str) -> Result<Option<i64>, DbError> {
    Ok(u::table
        .find(id)
        .select(u::last_totp_step)
        .first::<Option<i64>>(conn)
        .optional()?
        .flatten())
}

/// Counts a failed sign-in. When the run of failures reaches `lockout_after`
/// the account is locked until `lock_until` and the run starts again; returns
/// whether this failure locked it.
pub fn record_failure(
    conn: &mut DbConn,
    id: &str,
    lockout_after: u32,
    lock_until: DateTime<Utc>,
) -> Result<bool, DbError> {
    diesel::update(u::table.find(id))
        .set(u::failed_attempts.eq(u::failed_attempts + 1))
        .execute(conn)?;
    let failures: i32 = u::table.find(id).select(u::failed_attempts).first(conn)?;
    if crate::domain::staff::locks(failures, lockout_after) {
        diesel::update(u::table.find(id))
            .set((
                u::failed_attempts.eq(0),
                u::locked_until.eq(Some(ts(lock_until))),
            ))
            .execute(conn)?;
        return Ok(true);
    }
    Ok(false)
}

/// Records a successful sign-in with the TOTP step it used: clears failures
/// and any lock. False (and nothing changed) when that step, or a later one,
/// was already used — a replayed code, even by a concurrent request.
pub fn record_success(conn: &mut DbConn, id: &str, step: i64) -> Result<bool, DbError> {
    let n = diesel::update(
        u::table
            .filter(u::id.eq(id))
            .filter(u::last_totp_step.is_null().or(u::last_totp_step.lt(step))),
    )
    .set((
        u::failed_attempts.eq(0),
        u::locked_until.eq(None::<NaiveDateTime>),
        u::last_totp_step.eq(Some(step)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Lifts a lockout; false when there is no such account.
pub fn unlock(conn: &mut DbConn, id: &str) -> Result<bool, DbError> {
    Ok(diesel::update(u::table.find(id))
        .set((
            u::failed_attempts.eq(0),
            u::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)?
        == 1)
}

/// A browser session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 of the cookie value.
    pub token_hash: String,
    /// Whose.
    pub user_id: String,
    /// The CSRF token its forms carry.
    pub csrf: String,
    /// Signed in at.
    pub created_at: DateTime<Utc>,
    /// Last request at.
    pub last_seen_at: DateTime<Utc>,
}

/// Stores a new session.
pub fn insert_session(conn: &mut DbConn, s: &Session) -> Result<(), DbError> {
    diesel::insert_into(ss::table)
        .values((
            ss::token_hash.eq(&s.token_hash),
            ss::user_id.eq(&s.user_id),
            ss::csrf.eq(&s.csrf),
            ss::created_at.eq(ts(s.created_at)),
            ss::last_seen_at.eq(ts(s.last_seen_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The session whose token hashes to `token_hash`.
pub fn session(conn: &mut DbConn, token_hash: &str) -> Result<Option<Session>, DbError> {
    let row: Option<(String, String, String, NaiveDateTime, NaiveDateTime)> = ss::table
        .find(token_hash)
        .select((
            ss::token_hash,
            ss::user_id,
            ss::csrf,
            ss::created_at,
            ss::last_seen_at,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(|(token_hash, user_id, csrf, c, l)| Session {
        token_hash,
        user_id,
        csrf,
        created_at: utc(c),
        last_seen_at: utc(l),
    }))
}

/// Marks a session used now.
pub fn touch_session(
    conn: &mut DbConn,
    token_hash: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(ss::table.find(token_hash))
        .set(ss::last_seen_at.eq(ts(now)))
        .execute(conn)?;
    Ok(())
}

/// Ends a session; false when it was already gone.
pub fn delete_session(conn: &mut DbConn, token_hash: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(ss::table.find(token_hash)).execute(conn)? == 1)
}

/// Removes sessions unused since `idle_before` or begun before
/// `created_before` (ended either way; issue 11 F5d).
pub fn purge_sessions(
    conn: &mut DbConn,
    idle_before: DateTime<Utc>,
    created_before: DateTime<Utc>,
) -> Result<usize, DbError> {
    Ok(diesel::delete(
        ss::table.filter(
            ss::last_seen_at
                .lt(ts(idle_before))
                .or(ss::created_at.lt(ts(created_before))),
        ),
    )
    .execute(conn)?)
}

/// Stores an API token's hash.
pub fn insert_token(
    conn: &mut DbConn,
    token_hash: &str,
    user_id: &str,
    created: DateTime<Utc>,
    expires: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::insert_into(st::table)
        .values((
            st::token_hash.eq(token_hash),
            st::user_id.eq(user_id),
            st::created_at.eq(ts(created)),
            st::expires_at.eq(ts(expires)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The user and expiry of the API token hashing to `token_hash`.
pub fn token(
    conn: &mut DbConn,
    token_hash: &str,
) -> Result<Option<(String, DateTime<Utc>)>, DbError> {
    let row: Option<(String, NaiveDateTime)> = st::table
        .find(token_hash)
        .select((st::user_id, st::expires_at))
        .first(conn)
        .optional()?;
    Ok(row.map(|(user, exp)| (user, utc(exp))))
}

/// Stores a break-glass grant with its reason (sealed).
pub fn insert_grant(
    conn: &mut DbConn,
    ring: &KeyRing,
    g: &Grant,
    reason: &str,
) -> Result<(), DbError> {
    let sealed = ring.encrypt_str(&reason_aad(&g.id), reason)?;
    diesel::insert_into(bg::table)
        .values((
            bg::id.eq(&g.id),
            bg::user_id.eq(&g.user_id),
            bg::patient_fhir_id.eq(&g.patient_id),
            bg::reason_enc.eq(sealed),
            bg::key_id.eq(active_key(ring)?),
            bg::started_at.eq(ts(g.started)),
            bg::ends_at.eq(ts(g.ends)),
        ))
        .execute(conn)?;
    Ok(())
}

type GrantRow = (String, String, String, NaiveDateTime, NaiveDateTime);

fn grant((id, user_id, patient_id, s, e): GrantRow) -> Grant {
    Grant {
        id,
        user_id,
        patient_id,
        started: utc(s),
        ends: utc(e),
    }
}

/// The grants of `user_id` in force at `now`, for one patient or all,
/// latest ending first.
pub fn active_grants(
    conn: &mut DbConn,
    user_id: &str,
    patient_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<Grant>, DbError> {
    let mut q = bg::table
        .filter(bg::user_id.eq(user_id))
        .filter(bg::started_at.le(ts(now)))
        .filter(bg::ends_at.gt(ts(now)))
        .into_boxed();
    if let Some(p) = patient_id {
        q = q.filter(bg::patient_fhir_id.eq(p));
    }
    let rows: Vec<GrantRow> = q
        .order(bg::ends_at.desc())
        .select((
            bg::id,
            bg::user_id,
            bg::patient_fhir_id,
            bg::started_at,
            bg::ends_at,
        ))
        .load(conn)?;
    Ok(rows.into_iter().map(grant).collect())
}

/// How many grants `user_id` has opened since `since` (F2 rate limit).
pub fn grants_since(
    conn: &mut DbConn,
    user_id: &str,
    since: DateTime<Utc>,
) -> Result<i64, DbError> {
    Ok(bg::table
        .filter(bg::user_id.eq(user_id))
        .filter(bg::started_at.gt(ts(since)))
        .count()
        .get_result(conn)?)
}

/// The reason given for a grant (PHI; opened for review only).
pub fn grant_reason(
    conn: &mut DbConn,
    ring: &KeyRing,
    id: &str,
) -> Result<Option<String>, DbError> {
    let enc: Option<Vec<u8>> = bg::table
        .find(id)
        .select(bg::reason_enc)
        .first(conn)
        .optional()?;
    enc.map(|e| ring.decrypt_str(&reason_aad(id), &e).map_err(DbError::from))
        .transpose()
}

/// Re-encrypts up to `limit` TOTP secrets and reasons sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = active_key(ring)?;
    let users: Vec<(String, Vec<u8>)> = u::table
        .filter(u::key_id.ne(active))
        .select((u::id, u::totp_secret_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &users {
        let aad = totp_aad(id);
        let plain = ring.decrypt(aad.as_bytes(), enc)?;
        let sealed = ring.encrypt(aad.as_bytes(), &plain)?;
        diesel::update(u::table.find(id))
            .set((u::totp_secret_enc.eq(sealed), u::key_id.eq(active)))
            .execute(conn)?;
    }
    let grants: Vec<(String, Vec<u8>)> = bg::table
        .filter(bg::key_id.ne(active))
        .select((bg::id, bg::reason_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &grants {
        let aad = reason_aad(id);
        let plain = ring.decrypt(aad.as_bytes(), enc)?;
        let sealed = ring.encrypt(aad.as_bytes(), &plain)?;
        diesel::update(bg::table.find(id))
            .set((bg::reason_enc.eq(sealed), bg::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(users.len() + grants.len())
}
