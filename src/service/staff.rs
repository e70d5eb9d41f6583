//! Staff sign-in and break-glass (issue 6 §3–4; messaging.md H1–H3, H5, H7).
//!
//! Accounts are made on the command line (`herald user add`); a sign-in needs
//! the password (argon2id) and a TOTP code never used before; failures in a
//! row lock the account for a while. A browser session is a random cookie
//! whose SHA-256 is stored with its CSRF token; it ends when idle too long or
//! old enough (`domain::staff::session_state`), and every request that finds
//! it live moves `last_seen_at`. Auditors may hold API tokens (hashes stored,
//! shown once). A clinician may open a patient outside the launch context
//! only through a break-glass grant: a reason, a limited time, an alert, and
//! every record made under it marked purposeOfUse BTG.
//!
//! Every sign-in (success or failure), sign-out, lockout, account change and
//! break-glass request commits with its AuditEvent in one transaction.
//! Must not: log or audit a password, a code, a token or a break-glass reason.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use crate::audit;
use crate::config::StaffSettings;
use crate::crypto::{self, CryptoError, KeyRing, password, totp};
use crate::db::staff::{self as repo, NewUser, Session};
use crate::db::{self, DbConn, DbError};
use crate::domain::audit::{AccountChange, Activity, Actor, AuditRecord, AuthEvent, Outcome};
use crate::domain::staff::{
    BreakGlassRefusal, Grant, MIN_PASSWORD_CHARS, Role, SessionLimits, SessionState,
    check_break_glass, check_name, is_locked, session_state,
};

/// The issuer authenticator apps show.
pub const ISSUER: &str = "Herald";
/// The prefix of API tokens (so a leaked one is recognisable in a scan).
pub const TOKEN_PREFIX: &str = "herald_";

/// A signed-in staff member, from a session cookie or an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// Opaque user id (what audit records name).
    pub user_id: String,
    /// Sign-in name (shown escaped; never logged).
    pub name: String,
    /// Role.
    pub role: Role,
    /// The session's CSRF token (`None` for an API token, which has no forms).
    pub csrf: Option<String>,
}

impl Staff {
    /// Whether a form's CSRF field is this session's (constant time).
    pub fn csrf_ok(&self, field: &str) -> bool {
        self.csrf
            .as_deref()
            .is_some_and(|c| crypto::same_secret(c, field))
    }
}

/// Where a request came from, for its audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The caller's network address ("cli" on the command line).
    pub address: String,
    /// The HTTP request id.
    pub request_id: Option<String>,
}

impl Origin {
    /// The command line.
    pub fn cli() -> Self {
        Self {
            address: "cli".into(),
            request_id: None,
        }
    }
}

/// What account commands can fail with (one line each, for the CLI).
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// The name is not acceptable.
    #[error("{0}")]
    BadName(&'static str),
    /// The password is too short.
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    WeakPassword,
    /// The name is taken.
    #[error("a user with that name already exists")]
    NameTaken,
    /// No such account.
    #[error("no such user; `herald user add NAME --role ...` creates one")]
    NoSuchUser,
    /// API tokens are for auditors (the audit API) and clinicians (the
    /// Consent and Communication API); administrators get none.
    #[error("API tokens are issued to auditors and clinicians only")]
    NoTokenForRole,
    /// Storage failed.
    #[error(transparent)]
    Db(DbError),
    /// Crypto failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

impl From<DbError> for StaffError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Conflict => Self::NameTaken,
            other => Self::Db(other),
        }
    }
}

fn record(
    now: DateTime<Utc>,
    activity: Activity,
    actor: Actor,
    outcome: Outcome,
    desc: Option<&str>,
    patient: Option<&str>,
    origin: &Origin,
) -> AuditRecord {
    AuditRecord {
        recorded: now,
        activity,
        actor,
        outcome,
        outcome_desc: desc.map(String::from),
        patient_id: patient.map(String::from),
        request_id: origin.request_id.clone(),
        ehr: None,
    }
}

fn auth(event: AuthEvent, origin: &Origin) -> Activity {
    Activity::UserAuthentication {
        event,
        address: origin.address.clone(),
    }
}

/// Creates an account and returns its id and the `otpauth://` URI to enrol
/// in an authenticator app (shown once; the secret is stored sealed).
pub fn add_user(
    conn: &mut DbConn,
    ring: &KeyRing,
    now: DateTime<Utc>,
    name: &str,
    role: Role,
    pass: &str,
) -> Result<(String, String), StaffError> {
    check_name(name).map_err(StaffError::BadName)?;
    if pass.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StaffError::WeakPassword);
    }
    let hash = password::hash(pass)?;
    let secret = totp::generate_secret()?;
    let id = uuid::Uuid::new_v4().to_string();
    let origin = Origin::cli();
    db::write_tx(conn, |c| {
        repo::insert_user(
            c,
            ring,
            &NewUser {
                id: &id,
                name,
                role,
                password_hash: &hash,
                totp_secret: &secret,
                created_at: now,
            },
        )?;
        audit::append(
            c,
            &[record(
                now,
                Activity::StaffAccount {
                    user_id: id.clone(),
                    change: AccountChange::Created,
                },
                Actor::System,
                Outcome::Success,
                Some(role.code()),
                None,
                &origin,
            )],
        )?;
        Ok::<_, StaffError>(())
    })?;
    Ok((id.clone(), totp::enrolment_uri(ISSUER, name, &secret)))
}

/// Issues an API bearer token to an auditor or clinician, valid for `days`; returns the
/// token (shown once; only its hash is kept).
pub fn issue_token(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    name: &str,
    days: u32,
) -> Result<String, StaffError> {
    let user = repo::user_by_name(conn, name)?.ok_or(StaffError::NoSuchUser)?;
    if !matches!(user.role, Role::Auditor | Role::Clinician) {
        return Err(StaffError::NoTokenForRole);
    }
    let token = format!("{TOKEN_PREFIX}{}", crypto::random_token()?);
    let expires = now + Duration::days(i64::from(days));
    db::write_tx(conn, |c| {
        repo::insert_token(
            c,
            &crypto::sha256_hex(token.as_bytes()),
            &user.id,
            now,
            expires,
        )?;
        audit::append(
            c,
            &[record(
                now,
                Activity::StaffAccount {
                    user_id: user.id.clone(),
                    change: AccountChange::TokenIssued,
                },
                Actor::System,
                Outcome::Success,
                None,
                None,
                &Origin::cli(),
            )],
        )?;
        Ok::<_, StaffError>(())
    })?;
    Ok(token)
}

/// Lifts a lockout.
pub fn unlock(conn: &mut DbConn, now: DateTime<Utc>, name: &str) -> Result<(), StaffError> {
    let user = repo::user_by_name(conn, name)?.ok_or(StaffError::NoSuchUser)?;
    db::write_tx(conn, |c| {
        repo::unlock(c, &user.id)?;
        audit::append(
            c,
            &[record(
                now,
                Activity::StaffAccount {
                    user_id: user.id.clone(),
                    change: AccountChange::Unlocked,
                },
                Actor::System,
                Outcome::Success,
                None,
                None,
                &Origin::cli(),
            )],
        )?;
        Ok::<_, StaffError>(())
    })
}

/// What a sign-in gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignIn {
    /// A new session: the cookie value (shown once) and who signed in.
    Session {
        /// The cookie value.
        token: String,
        /// Who (with the session's CSRF token).
        staff: Staff,
    },
    /// Refused. Deliberately one variant: the caller is never told which
    /// factor failed or that the account is locked.
    Refused,
}

/// Why a sign-in failed, for the audit record only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    UnknownUser,
    Disabled,
    Locked,
    Password,
    Code,
    Both,
    Replayed,
}

impl Failure {
    fn desc(self) -> &'static str {
        match self {
            Self::UnknownUser => "unknown user",
            Self::Disabled => "account disabled",
            Self::Locked => "account locked",
            Self::Password => "wrong password",
            Self::Code => "wrong or expired one-time code",
            Self::Both => "wrong password and one-time code",
            Self::Replayed => "one-time code already used",
        }
    }
}

/// What a sign-in form carries.
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    /// Sign-in name.
    pub name: &'a str,
    /// Password.
    pub password: &'a str,
    /// TOTP code.
    pub code: &'a str,
}

impl std::fmt::Debug for Attempt<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Attempt(***)")
    }
}

/// Signs in with name, password and TOTP code. The argon2id check runs
/// before the write transaction (so sign-ins do not hold SQLite's writer);
/// the lock, the counters, the code's step and the audit records are decided
/// and committed together.
pub fn sign_in(
    conn: &mut DbConn,
    ring: &KeyRing,
    settings: &StaffSettings,
    now: DateTime<Utc>,
    attempt: &Attempt<'_>,
    origin: &Origin,
) -> Result<SignIn, DbError> {
    let Attempt {
        name,
        password: pass,
        code,
    } = *attempt;
    let creds = repo::credentials(conn, ring, name)?;
    let Some(creds) = creds else {
        // As slow as a real check, so timing does not tell names apart.
        let _ = password::burn(pass);
        let who = Actor::UnknownUser(ring.blind_index("staff-name", name));
        let rec = record(
            now,
            auth(AuthEvent::Login, origin),
            who,
            Outcome::MinorFailure,
            Some(Failure::UnknownUser.desc()),
            None,
            origin,
        );
        audit::append_now(conn, &[rec])?;
        tracing::info!(target: "security", outcome = "refused", "staff sign-in refused");
        return Ok(SignIn::Refused);
    };
    let pw_ok = password::verify(pass, &creds.password_hash);
    let step = totp::verify(&creds.totp_secret, code, now.timestamp(), None);
    let lock_until = now + Duration::minutes(i64::from(settings.lockout_minutes));
    let who = Actor::Staff(creds.id.clone());
    let result = db::write_tx(conn, |c| {
        // The lock and the code's step as they are now, inside the transaction.
        let Some(current) = repo::user(c, &creds.id)? else {
            return Ok((SignIn::Refused, false));
        };
        let last_step = repo::last_totp_step(c, &creds.id)?;
        let failure = if current.disabled {
            Some(Failure::Disabled)
        } else if is_locked(current.locked_until, now) {
            Some(Failure::Locked)
        } else {
            match (pw_ok, step) {
                (true, Some(s)) if last_step.is_some_and(|l| s <= l) => Some(Failure::Replayed),
                (true, Some(s)) => {
                    if repo::record_success(c, &creds.id, s)? {
                        None
                    } else {
                        Some(Failure::Replayed)
                    }
                }
                (true, None) => Some(Failure::Code),
                (false, Some(_)) => Some(Failure::Password),
                (false, None) => Some(Failure::Both),
            }
        };
        let mut records = Vec::new();
        let outcome = match failure {
            None => {
                let token = crypto::random_token()?;
                let csrf = crypto::random_token()?;
                repo::insert_session(
                    c,
                    &Session {
                        token_hash: crypto::sha256_hex(token.as_bytes()),
                        user_id: creds.id.clone(),
                        csrf: csrf.clone(),
                        created_at: now,
                        last_seen_at: now,
                    },
                )?;
                records.push(record(
                    now,
                    auth(AuthEvent::Login, origin),
                    who.clone(),
                    Outcome::Success,
                    None,
                    None,
                    origin,
                ));
                (
                    SignIn::Session {
                        token,
                        staff: Staff {
                            user_id: creds.id.clone(),
                            name: creds.name.clone(),
                            role: creds.role,
                            csrf: Some(csrf),
                        },
                    },
                    false,
                )
            }
            Some(f @ (Failure::Disabled | Failure::Locked)) => {
                records.push(record(
                    now,
                    auth(AuthEvent::Login, origin),
                    who.clone(),
                    Outcome::SeriousFailure,
                    Some(f.desc()),
                    None,
                    origin,
                ));
                (SignIn::Refused, false)
            }
            Some(f) => {
                records.push(record(
                    now,
                    auth(AuthEvent::Login, origin),
                    who.clone(),
                    Outcome::MinorFailure,
                    Some(f.desc()),
                    None,
                    origin,
                ));
                let locked =
                    repo::record_failure(c, &creds.id, settings.lockout_after, lock_until)?;
                if locked {
                    let desc = format!(
                        "account locked for {} minutes after {} failed sign-ins",
                        settings.lockout_minutes, settings.lockout_after
                    );
                    records.push(record(
                        now,
                        auth(AuthEvent::Login, origin),
                        who.clone(),
                        Outcome::SeriousFailure,
                        Some(&desc),
                        None,
                        origin,
                    ));
                }
                (SignIn::Refused, locked)
            }
        };
        audit::append(c, &records)?;
        Ok::<_, DbError>(outcome)
    })?;
    let (signed, locked) = &result;
    match signed {
        SignIn::Session { .. } => {
            tracing::info!(target: "security", outcome = "signed-in", user.id = %creds.id, "staff signed in");
        }
        SignIn::Refused => {
            tracing::info!(target: "security", outcome = "refused", user.id = %creds.id, "staff sign-in refused");
        }
    }
    if *locked {
        tracing::warn!(target: "security", alert = "lockout", user.id = %creds.id, "staff account locked after repeated failed sign-ins");
    }
    Ok(result.0)
}

/// The staff member a session cookie belongs to, when the session is live.
/// A session found idle or too old is deleted and its end audited as a
/// logout; a live one has `last_seen_at` moved to `now`.
/// A cookie that names no session is answered from a read alone (no write
/// transaction).
pub fn session_staff(
    conn: &mut DbConn,
    settings: &StaffSettings,
    now: DateTime<Utc>,
    token: &str,
    origin: &Origin,
) -> Result<Option<Staff>, DbError> {
    let hash = crypto::sha256_hex(token.as_bytes());
    let limits = SessionLimits {
        idle: Duration::minutes(i64::from(settings.idle_minutes)),
        absolute: Duration::hours(i64::from(settings.absolute_hours)),
    };
    // Read-only first: a random or stale cookie must not take SQLite's
    // writer lock (`BEGIN IMMEDIATE`) and stall every writer (issue 11 F5e).
    if repo::session(conn, &hash)?.is_none() {
        return Ok(None);
    }
    let ended = db::write_tx(conn, |c| {
        let Some(s) = repo::session(c, &hash)? else {
            return Ok::<_, DbError>(Err(None));
        };
        let user = repo::user(c, &s.user_id)?;
        let Some(user) = user.filter(|u| !u.disabled) else {
            repo::delete_session(c, &hash)?;
            return Ok(Err(None));
        };
        let state = session_state(s.created_at, s.last_seen_at, now, limits);
        if state != SessionState::Live {
            repo::delete_session(c, &hash)?;
            audit::append(
                c,
                &[record(
                    now,
                    auth(AuthEvent::Logout, origin),
                    Actor::Staff(user.id.clone()),
                    Outcome::Success,
                    state.reason(),
                    None,
                    origin,
                )],
            )?;
            return Ok(Err(Some((user.id, state))));
        }
        repo::touch_session(c, &hash, now)?;
        Ok(Ok(Staff {
            user_id: user.id,
            name: user.name,
            role: user.role,
            csrf: Some(s.csrf),
        }))
    })?;
    match ended {
        Ok(staff) => Ok(Some(staff)),
        Err(None) => Ok(None),
        Err(Some((user, state))) => {
            tracing::info!(target: "security", reason = state.reason().unwrap_or("-"), user.id = %user, "staff session ended");
            Ok(None)
        }
    }
}

/// The staff member an API token belongs to, while it is unexpired and the
/// account enabled; what the role may reach is the access table's business
/// (`web::access`).
pub fn token_staff(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    token: &str,
) -> Result<Option<Staff>, DbError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let Some((user_id, expires)) = repo::token(conn, &crypto::sha256_hex(token.as_bytes()))? else {
        return Ok(None);
    };
    if now >= expires {
        return Ok(None);
    }
    Ok(repo::user(conn, &user_id)?
        .filter(|u| !u.disabled)
        .map(|u| Staff {
            user_id: u.id,
            name: u.name,
            role: u.role,
            csrf: None,
        }))
}

/// Ends a session (sign-out); audited. False when there was none.
pub fn sign_out(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    token: &str,
    origin: &Origin,
) -> Result<bool, DbError> {
    let hash = crypto::sha256_hex(token.as_bytes());
    db::write_tx(conn, |c| {
        let Some(s) = repo::session(c, &hash)? else {
            return Ok(false);
        };
        repo::delete_session(c, &hash)?;
        audit::append(
            c,
            &[record(
                now,
                auth(AuthEvent::Logout, origin),
                Actor::Staff(s.user_id),
                Outcome::Success,
                None,
                None,
                origin,
            )],
        )?;
        Ok(true)
    })
}

/// A break-glass request.
#[derive(Clone, Copy)]
pub struct Emergency<'a> {
    /// The clinician.
    pub user_id: &'a str,
    /// The patient's logical id.
    pub patient: &'a str,
    /// Why (PHI: sealed, never logged).
    pub reason: &'a str,
}

impl std::fmt::Debug for Emergency<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emergency")
            .field("user_id", &self.user_id)
            .field("patient", &self.patient)
            .finish_non_exhaustive()
    }
}

/// A clinician's break-glass request: checked, then a grant for
/// `staff.break_glass_minutes`, audited (BTG) and logged as an alert. A
/// refusal is audited too. The caller posts [`alert_payload`] to the
/// configured webhook after the commit.
pub fn break_glass(
    conn: &mut DbConn,
    ring: &KeyRing,
    settings: &StaffSettings,
    now: DateTime<Utc>,
    request: &Emergency<'_>,
    origin: &Origin,
) -> Result<Result<Grant, BreakGlassRefusal>, DbError> {
    let Emergency {
        user_id,
        patient,
        reason,
    } = *request;
    // F2: at most `break_glass_per_hour` grants per identity in an hour.
    let recent = repo::grants_since(conn, user_id, now - Duration::hours(1))?;
    let checked = check_break_glass(patient, reason).and_then(|r| {
        if recent >= i64::from(settings.break_glass_per_hour) {
            Err(BreakGlassRefusal::TooMany)
        } else {
            Ok(r)
        }
    });
    let reason = match checked {
        Ok(r) => r,
        Err(refusal) => {
            let code = match refusal {
                BreakGlassRefusal::ReasonTooShort => "refused: no reason given",
                BreakGlassRefusal::ReasonTooLong => "refused: reason too long",
                BreakGlassRefusal::BadPatient => "refused: not a patient id",
                BreakGlassRefusal::TooMany => "refused: too many grants in an hour",
            };
            // The patient is named only when it is a well-formed id.
            let patient = (refusal != BreakGlassRefusal::BadPatient).then_some(patient);
            let rec = record(
                now,
                Activity::BreakGlass {
                    grant_id: None,
                    ends: None,
                },
                Actor::Staff(user_id.into()),
                Outcome::MinorFailure,
                Some(code),
                patient,
                origin,
            );
            audit::append_now(conn, &[rec])?;
            return Ok(Err(refusal));
        }
    };
    let grant = Grant {
        id: uuid::Uuid::new_v4().to_string(),
        user_id: user_id.into(),
        patient_id: patient.into(),
        started: now,
        ends: now + Duration::minutes(i64::from(settings.break_glass_minutes)),
    };
    db::write_tx(conn, |c| {
        repo::insert_grant(c, ring, &grant, reason)?;
        audit::append(
            c,
            &[record(
                now,
                Activity::BreakGlass {
                    grant_id: Some(grant.id.clone()),
                    ends: Some(grant.ends),
                },
                Actor::BreakGlass {
                    user: user_id.into(),
                    grant: grant.id.clone(),
                },
                Outcome::Success,
                None,
                Some(patient),
                origin,
            )],
        )?;
        Ok::<_, DbError>(())
    })?;
    tracing::warn!(
        target: "security",
        alert = "break-glass",
        user.id = %grant.user_id,
        patient.id = %grant.patient_id,
        grant.id = %grant.id,
        grant.ends = %grant.ends.to_rfc3339(),
        "break-glass access granted"
    );
    Ok(Ok(grant))
}

/// The grant under which `user_id` may see `patient_id` at `now`, if any.
pub fn break_glass_active(
    conn: &mut DbConn,
    user_id: &str,
    patient_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Grant>, DbError> {
    Ok(repo::active_grants(conn, user_id, Some(patient_id), now)?
        .into_iter()
        .next())
}

/// What a clinician sees of a patient under a break-glass grant (issue 11
/// F8j): the consent ledger and the messages, read-only.
#[derive(Debug, Clone)]
pub struct GrantView {
    /// The grant in force.
    pub grant: Grant,
    /// The patient's consent entries, newest first.
    pub consents: Vec<crate::domain::consent::ConsentEntry>,
    /// The patient's messages that reached a decision (at most 100).
    pub messages: Vec<db::outbox::Intent>,
}

/// Opens the patient of grant `grant_id` for `user_id`, only while the grant
/// is in force and only for the user it was made for (`None` otherwise), and
/// commits one AuditEvent for the read, by [`Actor::BreakGlass`] (purposeOfUse
/// BTG, the grant in `agent.policy`), before anything is returned.
pub fn grant_view(
    conn: &mut DbConn,
    user_id: &str,
    grant_id: &str,
    now: DateTime<Utc>,
    from: &Origin,
) -> Result<Option<GrantView>, DbError> {
    let Some(grant) = repo::active_grants(conn, user_id, None, now)?
        .into_iter()
        .find(|g| g.id == grant_id)
    else {
        return Ok(None);
    };
    let mut consents = db::consents::entries_for(conn, &grant.patient_id)?;
    consents.sort_by_key(|e| std::cmp::Reverse(e.recorded_at));
    let messages = db::outbox::search(
        conn,
        &db::outbox::Search {
            patient: Some(grant.patient_id.clone()),
            states: None,
            purposes: None,
            sent_from: None,
            sent_to: None,
            after: None,
            limit: 100,
        },
    )?;
    audit::append_now(
        conn,
        &[AuditRecord {
            recorded: now,
            activity: Activity::RecordQuery {
                resource_type: "Patient".into(),
                query: format!("break-glass&patient=Patient/{}", grant.patient_id),
            },
            actor: Actor::BreakGlass {
                user: user_id.into(),
                grant: grant.id.clone(),
            },
            outcome: Outcome::Success,
            outcome_desc: None,
            patient_id: Some(grant.patient_id.clone()),
            request_id: from.request_id.clone(),
            ehr: None,
        }],
    )?;
    Ok(Some(GrantView {
        grant,
        consents,
        messages,
    }))
}

/// The audit actor for what `user_id` does to `patient_id` now: under an
/// active break-glass grant the records carry purposeOfUse BTG and the grant.
/// Handlers build their records as usual and finish with
/// `.by(actor_for(...)?)`.
pub fn actor_for(
    conn: &mut DbConn,
    user_id: &str,
    patient_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Actor, DbError> {
    let grant = match patient_id {
        Some(p) => break_glass_active(conn, user_id, p, now)?,
        None => None,
    };
    Ok(match grant {
        Some(g) => Actor::BreakGlass {
            user: user_id.into(),
            grant: g.id,
        },
        None => Actor::Staff(user_id.into()),
    })
}

/// The alert a break-glass grant raises: opaque ids and times, no PHI (the
/// reason stays sealed in the database).
pub fn alert_payload(g: &Grant) -> serde_json::Value {
    json!({
        "alert": "break-glass",
        "source": "herald",
        "grant": g.id,
        "user": g.user_id,
        "patient": g.patient_id,
        "started": g.started.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "ends": g.ends.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    })
}

/// Sends a break-glass alert to the webhook on a thread of its own, so the
/// clinician is not kept waiting (verified TLS; 10 s at most). A failure is
/// logged, never fatal: the grant stands and the log carries the alert.
pub fn raise_alert(url: String, payload: serde_json::Value) {
    let spawned = std::thread::Builder::new()
        .name("break-glass-alert".into())
        .spawn(move || post_alert(&url, &payload));
    if let Err(e) = spawned {
        tracing::error!(target: "security", alert = "break-glass", error = %e, "break-glass alert not sent; this log is the alert");
    }
}

/// POSTs an alert and waits for the answer (blocking; see [`raise_alert`]).
pub fn post_alert(url: &str, payload: &serde_json::Value) {
    let sent = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .and_then(|client| client.post(url).json(payload).send())
        .and_then(reqwest::blocking::Response::error_for_status);
    match sent {
        Ok(_) => {
            tracing::info!(target: "security", alert = "break-glass", "break-glass alert delivered")
        }
        Err(e) => tracing::error!(
            target: "security",
            alert = "break-glass",
            error = %e.without_url(),
            "break-glass alert webhook failed; the grant stands and this log is the alert"
        ),
    }
}
