//! The patient preference page's rules (issue 5 §5): signed, expiring links
//! for one patient; what the patient currently allows; and each change as
//! ledger rows with their FHIR Consent, recorded with the page's exact
//! wording and version, the time and the IP (CTIA C4, TCPA T1, H10).

use chrono::{DateTime, Utc};

use crate::audit;
use crate::clock::Clock;
use crate::crypto::{KeyRing, normalize_email, normalize_phone};
use crate::db::{self, DbConn, DbError, consents, contact_codes, patients};
use crate::domain::audit::{Activity, Actor, AuditRecord, CodeStep, Outcome};
use crate::domain::consent::{self, ANY_ADDRESS, Decision, Verdict};
use crate::domain::facts::PatientFacts;
use crate::domain::{Channel, Purpose};

/// The version of the wording shown for express written consent.
pub const WRITTEN_CONSENT_VERSION: &str = "marketing-consent-v1";
/// The exact wording shown next to the (never pre-checked) checkbox.
pub const WRITTEN_CONSENT_TEXT: &str = "I agree to receive marketing text messages and emails from this practice at the number and address above. Consent is not a condition of care. Msg & data rates may apply. Reply STOP to opt out at any time.";

/// The longest a preference link may work (issue 11 F8f): the CLI refuses
/// more, and the page refuses a link that says more, signed or not.
pub const MAX_LINK_DAYS: u32 = 30;

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not made by Herald, altered, or valid for longer than [`MAX_LINK_DAYS`].
    Invalid,
    /// Past its expiry.
    Expired,
}

const LINK_AAD: &[u8] = b"herald:patient-link:v1";

/// A link token for `patient`, issued at `issued` and valid until `until`:
/// sealed with the key ring (AES-256-GCM), so it is opaque and any change
/// breaks it. It does not check the length: [`new_link`] does, and
/// [`open_link`] refuses a link longer than [`MAX_LINK_DAYS`].
pub fn issue_link(
    ring: &KeyRing,
    patient: &str,
    issued: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<String, DbError> {
    use base64::Engine as _;
    let plain = format!(
        "v2\n{}\n{}\n{patient}",
        issued.timestamp(),
        until.timestamp()
    );
    let sealed = ring.encrypt(LINK_AAD, plain.as_bytes())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
}

/// The patient a link is for, if it is genuine, unexpired, and valid for no
/// more than [`MAX_LINK_DAYS`] from its issue (a link made before issue
/// times were sealed in must end within that many days of `now`).
pub fn open_link(ring: &KeyRing, token: &str, now: DateTime<Utc>) -> Result<String, LinkError> {
    use base64::Engine as _;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| LinkError::Invalid)?;
    let plain = ring
        .decrypt(LINK_AAD, &sealed)
        .map_err(|_| LinkError::Invalid)?;
    let text = String::from_utf8(plain).map_err(|_| LinkError::Invalid)?;
    let max = i64::from(MAX_LINK_DAYS) * 86_400;
    let int = |s: &str| s.parse::<i64>().map_err(|_| LinkError::Invalid);
    let (until, patient) = match text.strip_prefix("v2\n") {
        Some(rest) => {
            let mut parts = rest.splitn(3, '\n');
            let issued = int(parts.next().unwrap_or_default())?;
            let until = int(parts.next().unwrap_or_default())?;
            let patient = parts.next().ok_or(LinkError::Invalid)?;
            if until.saturating_sub(issued) > max {
                return Err(LinkError::Invalid);
            }
            (until, patient)
        }
        None => {
            let (until, patient) = text.split_once('\n').ok_or(LinkError::Invalid)?;
            (int(until)?, patient)
        }
    };
    if until.saturating_sub(now.timestamp()) > max {
        return Err(LinkError::Invalid);
    }
    if now.timestamp() >= until {
        return Err(LinkError::Expired);
    }
    Ok(patient.to_string())
}

/// Why [`new_link`] made no link.
#[derive(Debug, thiserror::Error)]
pub enum NewLinkError {
    /// `days` is 0 or more than [`MAX_LINK_DAYS`].
    #[error("a preference link lasts 1 to {MAX_LINK_DAYS} days")]
    Days,
    /// Herald holds no such patient.
    #[error("no such patient in Herald's store")]
    UnknownPatient,
    /// Storage.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Issues a preference link for `patient`, valid `days` (1 to
/// [`MAX_LINK_DAYS`]), and records who issued it, for whom and until when
/// (never the token) in the same transaction. Every issuer goes through here.
pub fn new_link(
    conn: &mut DbConn,
    ring: &KeyRing,
    now: DateTime<Utc>,
    patient: &str,
    days: u32,
    by: Actor,
) -> Result<(String, DateTime<Utc>), NewLinkError> {
    if !(1..=MAX_LINK_DAYS).contains(&days) {
        return Err(NewLinkError::Days);
    }
    let until = now + chrono::Duration::days(i64::from(days));
    db::write_tx(conn, |c| {
        if patients::get(c, ring, patient)?.is_none() {
            return Err(NewLinkError::UnknownPatient);
        }
        let token = issue_link(ring, patient, now, until)?;
        audit::append(
            c,
            &[AuditRecord {
                recorded: now,
                activity: Activity::PreferenceLink { expires: until },
                actor: by,
                outcome: Outcome::Success,
                outcome_desc: None,
                patient_id: Some(patient.into()),
                request_id: None,
                ehr: None,
            }],
        )?;
        Ok((token, until))
    })
}

/// The CSRF token for a link (keyed, so only Herald can make it).
pub fn csrf_for(ring: &KeyRing, token: &str) -> String {
    ring.blind_index("csrf", token)
}

/// What the page shows.
#[derive(Debug, Clone)]
pub struct View {
    /// The patient.
    pub patient: PatientFacts,
    /// (channel, purpose, allowed now) for every channel the patient has an address for.
    pub allowed: Vec<(Channel, Purpose, bool)>,
    /// A confidential-communications request is in force for the channel.
    pub blocked_channels: Vec<Channel>,
}

fn address_index(ring: &KeyRing, p: &PatientFacts, channel: Channel) -> Option<String> {
    match channel {
        Channel::Sms | Channel::Voice => p
            .phone
            .as_ref()
            .map(|ph| ring.blind_index("phone", &normalize_phone(ph.expose()))),
        Channel::Email => p
            .email
            .as_ref()
            .map(|e| ring.blind_index("email", &normalize_email(e.expose()))),
    }
}

const CHANNELS: [Channel; 3] = [Channel::Sms, Channel::Email, Channel::Voice];
/// The purposes a patient chooses on the page.
pub const PURPOSES: [Purpose; 3] = [Purpose::Appointment, Purpose::Medication, Purpose::Billing];

/// Loads the page's view.
pub fn view(
    conn: &mut DbConn,
    ring: &KeyRing,
    patient: &str,
    now: DateTime<Utc>,
) -> Result<Option<View>, DbError> {
    let Some(p) = patients::get(conn, ring, patient)? else {
        return Ok(None);
    };
    let entries = consents::entries_for(conn, patient)?;
    let mut allowed = Vec::new();
    let mut blocked = Vec::new();
    for channel in CHANNELS {
        let Some(idx) = address_index(ring, &p, channel) else {
            continue;
        };
        for purpose in PURPOSES.into_iter().chain([Purpose::Marketing]) {
            let v = consent::decide(&entries, channel, purpose, &idx, now);
            if let Verdict::Deny {
                reason: consent::DenyReason::ConfidentialCommunications,
                ..
            } = v
                && !blocked.contains(&channel)
            {
                blocked.push(channel);
            }
            allowed.push((channel, purpose, matches!(v, Verdict::Permit { .. })));
        }
    }
    Ok(Some(View {
        patient: p,
        allowed,
        blocked_channels: blocked,
    }))
}

/// One change the patient made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Allow or stop a channel for a purpose.
    Set(Channel, Purpose, bool),
    /// Stop everything on every channel.
    OptOutAll,
    /// Express written consent to marketing (the box was ticked).
    WrittenConsent,
    /// Confidential communications: email only (no SMS, no calls).
    EmailOnly,
    /// Confidential communications: no voice calls.
    NoVoicemail,
    /// Preferred language.
    Language(String),
    /// Confidential communications: text and call this number instead of
    /// the EHR's (H10), with consent for it for every purpose but marketing.
    /// Only [`confirm_code`] makes one: a number is used once a code sent to
    /// it has come back (issue 11 F8f).
    UseNumber(ConfirmedNumber),
    /// Lift the other-number request: the EHR's number again.
    ClearNumber,
}

/// A number whose confirmation code the patient entered. It cannot be made
/// outside this module, so no caller can skip the confirmation.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfirmedNumber(String);

impl ConfirmedNumber {
    /// The number (PHI).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ConfirmedNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ConfirmedNumber([redacted])")
    }
}

/// Why a number was refused.
pub fn check_number(raw: &str) -> Result<String, &'static str> {
    let n = normalize_phone(raw);
    let digits = n.trim_start_matches('+');
    if !n.starts_with('+')
        || !(8..=15).contains(&digits.len())
        || !digits.chars().all(|c| c.is_ascii_digit())
    {
        return Err("Enter the number with its country code, e.g. +1 212 555 0100.");
    }
    Ok(n)
}

/// Applies the patient's changes in one transaction, each consent row with
/// its Consent and AuditEvent; returns how many ledger rows were written.
pub fn apply(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    patient: &str,
    changes: &[Change],
    ip: &str,
) -> Result<usize, DbError> {
    let now = clock.now();
    db::write_tx(conn, |c| apply_in(c, ring, now, patient, changes, ip))
}

/// [`apply`] inside the caller's transaction.
fn apply_in(
    c: &mut DbConn,
    ring: &KeyRing,
    now: DateTime<Utc>,
    patient: &str,
    changes: &[Change],
    ip: &str,
) -> Result<usize, DbError> {
    {
        let Some(p) = patients::get(c, ring, patient)? else {
            return Ok(0);
        };
        let mut rows = 0;
        let mut records = Vec::new();
        // `other`: a number the patient gave instead of the EHR's.
        let mut put = |c: &mut DbConn,
                       channel: Channel,
                       purpose: Option<Purpose>,
                       permit: bool,
                       any_address: bool,
                       other: Option<&str>,
                       rule: &str|
         -> Result<(), DbError> {
            let (idx, addr) = if any_address {
                (Some(ANY_ADDRESS.to_string()), None)
            } else if let Some(n) = other {
                (
                    Some(ring.blind_index("phone", &normalize_phone(n))),
                    Some(n.to_string()),
                )
            } else {
                let a = match channel {
                    Channel::Email => p.email.as_ref().map(|e| e.expose().to_string()),
                    _ => p.phone.as_ref().map(|ph| ph.expose().to_string()),
                };
                (address_index(ring, &p, channel), a)
            };
            let Some(idx) = idx else { return Ok(()) };
            let id = uuid::Uuid::new_v4().to_string();
            let rule = format!("{rule} (patient preference page; from {ip})");
            consents::insert(
                c,
                ring,
                &consents::NewConsent {
                    id: id.clone(),
                    patient_id: patient.into(),
                    channel,
                    purpose,
                    address_index: idx,
                    decision: if permit {
                        Decision::Permit
                    } else {
                        Decision::Deny
                    },
                    source: "web".into(),
                    recorded_at: now,
                    stated_at: None,
                    future_dated: false,
                    part_of: None,
                    categories: vec![crate::fhir::consent::CATEGORY.into()],
                    valid_until: None,
                    resource: crate::fhir::consent::resource(&crate::fhir::consent::ConsentDraft {
                        id: &id,
                        patient,
                        performer: Some(&format!("Patient/{patient}")),
                        permit,
                        channel,
                        purpose,
                        address: addr.as_deref(),
                        rule: &rule,
                        at: now,
                    }),
                },
            )?;
            rows += 1;
            records.push(AuditRecord {
                recorded: now,
                activity: Activity::ConsentRecorded { consent_id: id },
                actor: Actor::Anonymous(ip.into()),
                outcome: Outcome::Success,
                outcome_desc: None,
                patient_id: Some(patient.into()),
                request_id: None,
                ehr: None,
            });
            Ok(())
        };
        for change in changes {
            match change {
                Change::Set(ch, purpose, on) => put(
                    c,
                    *ch,
                    Some(*purpose),
                    *on,
                    false,
                    None,
                    "Chosen on the preference page",
                )?,
                Change::OptOutAll => {
                    for ch in CHANNELS {
                        put(
                            c,
                            ch,
                            None,
                            false,
                            false,
                            None,
                            "Opted out of everything on the preference page",
                        )?;
                    }
                }
                Change::WrittenConsent => {
                    let rule = format!(
                        "Express written consent, wording {WRITTEN_CONSENT_VERSION}: \"{WRITTEN_CONSENT_TEXT}\""
                    );
                    for ch in [Channel::Sms, Channel::Email] {
                        put(c, ch, Some(Purpose::Marketing), true, false, None, &rule)?;
                    }
                }
                Change::EmailOnly => {
                    for ch in [Channel::Sms, Channel::Voice] {
                        put(
                            c,
                            ch,
                            None,
                            false,
                            true,
                            None,
                            "Confidential communications request (45 CFR 164.522(b)): email only",
                        )?;
                    }
                }
                Change::NoVoicemail => put(
                    c,
                    Channel::Voice,
                    None,
                    false,
                    true,
                    None,
                    "Confidential communications request (45 CFR 164.522(b)): no voice calls",
                )?,
                Change::Language(lang) => {
                    patients::set_language(c, patient, lang)?;
                }
                Change::UseNumber(n) => {
                    let n = n.expose();
                    patients::set_alt_phone(c, ring, patient, Some(n))?;
                    let rule = "Confidential communications request (45 CFR 164.522(b)): text and call this number instead";
                    for ch in [Channel::Sms, Channel::Voice] {
                        for purpose in PURPOSES {
                            put(c, ch, Some(purpose), true, false, Some(n), rule)?;
                        }
                    }
                }
                Change::ClearNumber => {
                    patients::set_alt_phone(c, ring, patient, None)?;
                }
            }
        }
        audit::append(c, &records)?;
        Ok(rows)
    }
}

/// How long a confirmation code may be entered.
pub const CODE_MINUTES: i64 = 10;
/// Tries per code.
pub const CODE_ATTEMPTS: i32 = 5;
/// Codes per patient in any hour, so the page cannot be used to flood a
/// third party's number.
pub const CODES_PER_HOUR: i64 = 3;

/// What [`request_code`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRequest {
    /// The code went to the number.
    Sent,
    /// Refused: [`CODES_PER_HOUR`] codes were sent in the last hour.
    Capped,
    /// The channel did not take it; nothing changes.
    SendFailed,
    /// Herald holds no such patient.
    UnknownPatient,
}

/// What [`confirm_code`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCheck {
    /// The right code: the number is now the patient's.
    Confirmed,
    /// A wrong code; this many tries are left.
    Wrong {
        /// Tries left.
        left: i32,
    },
    /// Too late: ask for a new code.
    Expired,
    /// No tries left: ask for a new code.
    Locked,
    /// No code is waiting.
    NoCode,
}

/// How a code reaches the new number: the configured channel and the
/// message's wording.
pub struct CodeChannel<'a> {
    /// The channels (Twilio, SMTP, console; memory in tests).
    pub sender: &'a dyn crate::providers::Sender,
    /// The locales.
    pub renderer: &'a crate::render::Renderer,
    /// The practice's name, the only thing the message says besides the code.
    pub practice: &'a str,
}

fn code_hash(ring: &KeyRing, id: &str, code: &str) -> String {
    ring.blind_index("contact-code", &format!("{id}:{code}"))
}

fn code_record(
    now: DateTime<Utc>,
    id: &str,
    step: CodeStep,
    patient: &str,
    ip: &str,
) -> AuditRecord {
    AuditRecord {
        recorded: now,
        activity: Activity::ContactCode {
            code_id: id.into(),
            channel: Channel::Sms,
            step,
        },
        actor: Actor::Anonymous(ip.into()),
        outcome: if matches!(step, CodeStep::Sent | CodeStep::Confirmed) {
            Outcome::Success
        } else {
            Outcome::MinorFailure
        },
        outcome_desc: None,
        patient_id: Some(patient.into()),
        request_id: None,
        ehr: None,
    }
}

/// A number the patient entered on the page (already [`check_number`]ed):
/// sends a six-digit code to it — at once, whatever the hour (the patient
/// asked just now), at most [`CODES_PER_HOUR`] per patient — and keeps only
/// the code's keyed hash, for [`CODE_MINUTES`]. The number is not used for
/// anything until [`confirm_code`]. Each step is audited.
pub fn request_code(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    via: &CodeChannel<'_>,
    patient: &str,
    number: &str,
    ip: &str,
) -> Result<CodeRequest, DbError> {
    let now = clock.now();
    let id = uuid::Uuid::new_v4().to_string();
    let code = crate::crypto::random_code6()?;
    let number = normalize_phone(number);
    let lang = db::write_tx(conn, |c| -> Result<Result<_, CodeRequest>, DbError> {
        let Some(p) = patients::get(c, ring, patient)? else {
            return Ok(Err(CodeRequest::UnknownPatient));
        };
        let since = now - chrono::Duration::hours(1);
        if contact_codes::sent_since(c, patient, since)? >= CODES_PER_HOUR {
            audit::append(c, &[code_record(now, &id, CodeStep::Capped, patient, ip)])?;
            return Ok(Err(CodeRequest::Capped));
        }
        contact_codes::insert(
            c,
            ring,
            &contact_codes::NewCode {
                id: &id,
                patient_id: patient,
                channel: Channel::Sms,
                address: &number,
                address_index: &ring.blind_index("phone", &number),
                code_hash: &code_hash(ring, &id, &code),
                created: now,
                expires: now + chrono::Duration::minutes(CODE_MINUTES),
            },
        )?;
        audit::append(c, &[code_record(now, &id, CodeStep::Sent, patient, ip)])?;
        Ok(Ok(p.language))
    })?;
    let lang = match lang {
        Ok(l) => l,
        Err(refused) => return Ok(refused),
    };
    let sent = via
        .renderer
        .render_code(lang.as_deref(), via.practice, &code)
        .map_err(|e| e.to_string())
        .and_then(|m| {
            via.sender
                .send(&crate::providers::Outbound {
                    intent_id: id.clone(),
                    channel: Channel::Sms,
                    to: number.clone(),
                    subject: m.subject,
                    text: m.sms,
                    email_text: m.email,
                    voice_text: m.voice,
                    lang: m.lang,
                    rtl: m.rtl,
                    validity_secs: u32::try_from(CODE_MINUTES * 60).ok(),
                    status_callback: None,
                })
                .map_err(|e| e.to_string())
        });
    match sent {
        Ok(_) => Ok(CodeRequest::Sent),
        Err(why) => {
            tracing::warn!(code.id = %id, reason = %why, "confirmation code not sent");
            audit::append_now(
                conn,
                &[code_record(now, &id, CodeStep::SendFailed, patient, ip)],
            )?;
            Ok(CodeRequest::SendFailed)
        }
    }
}

/// The code the patient typed: compared in constant time with the newest
/// code sent for them, each try counted before it is compared (at most
/// [`CODE_ATTEMPTS`]), refused after [`CODE_MINUTES`], usable once. The right
/// code makes its number the patient's (as [`Change::UseNumber`]), in the
/// same transaction as its AuditEvent; every try is audited.
pub fn confirm_code(
    conn: &mut DbConn,
    ring: &KeyRing,
    clock: &dyn Clock,
    patient: &str,
    code: &str,
    ip: &str,
) -> Result<CodeCheck, DbError> {
    let now = clock.now();
    db::write_tx(conn, |c| {
        let Some(p) = contact_codes::pending(c, ring, patient)? else {
            return Ok(CodeCheck::NoCode);
        };
        let record = |step| code_record(now, &p.id, step, patient, ip);
        if now >= p.expires {
            audit::append(c, &[record(CodeStep::Expired)])?;
            return Ok(CodeCheck::Expired);
        }
        if !contact_codes::take_attempt(c, &p.id, CODE_ATTEMPTS)? {
            audit::append(c, &[record(CodeStep::Locked)])?;
            return Ok(CodeCheck::Locked);
        }
        let given = code_hash(ring, &p.id, code.trim());
        if !crate::crypto::same_secret(&given, &p.code_hash) {
            audit::append(c, &[record(CodeStep::Wrong)])?;
            return Ok(CodeCheck::Wrong {
                left: (CODE_ATTEMPTS - p.attempts - 1).max(0),
            });
        }
        if !contact_codes::mark_used(c, &p.id, now)? {
            return Ok(CodeCheck::NoCode);
        }
        let number = ConfirmedNumber(p.address.clone());
        apply_in(c, ring, now, patient, &[Change::UseNumber(number)], ip)?;
        audit::append(c, &[record(CodeStep::Confirmed)])?;
        Ok(CodeCheck::Confirmed)
    })
}

/// A code waiting to be entered, for the page: where it went (masked) and
/// until when.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// The number's last four digits, masked.
    pub masked: String,
    /// Until when the code works.
    pub expires: DateTime<Utc>,
}

/// The code waiting for `patient`, if one may still be entered.
pub fn waiting(
    conn: &mut DbConn,
    ring: &KeyRing,
    patient: &str,
    now: DateTime<Utc>,
) -> Result<Option<Waiting>, DbError> {
    Ok(contact_codes::pending(conn, ring, patient)?
        .filter(|p| now < p.expires && p.attempts < CODE_ATTEMPTS)
        .map(|p| Waiting {
            masked: crate::providers::mask(&p.address),
            expires: p.expires,
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_sealed_expire_and_refuse_tampering() {
        let ring = KeyRing::for_testing();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let t = issue_link(&ring, "pat-001", now, now + chrono::Duration::days(7)).unwrap();
        assert!(
            !t.contains("pat-001"),
            "the link must not show the patient id"
        );
        assert_eq!(open_link(&ring, &t, now), Ok("pat-001".into()));
        assert_eq!(
            open_link(&ring, &t, now + chrono::Duration::days(8)),
            Err(LinkError::Expired)
        );
        let mut bad = t.clone().into_bytes();
        if let Some(b) = bad.get_mut(10) {
            *b = if *b == b'A' { b'B' } else { b'A' };
        }
        assert_eq!(
            open_link(&ring, &String::from_utf8(bad).unwrap_or_default(), now),
            Err(LinkError::Invalid)
        );
        assert_eq!(
            open_link(&ring, "not-a-token", now),
            Err(LinkError::Invalid)
        );
        assert_ne!(csrf_for(&ring, &t), csrf_for(&ring, "other"));
    }

    /// Issue 11 F8f: a link says when it was issued, and one valid for more
    /// than 30 days from then does not open, though Herald signed it.
    #[test]
    fn links_longer_than_thirty_days_do_not_open() {
        use base64::Engine as _;
        let ring = KeyRing::for_testing();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let day = chrono::Duration::days(1);
        let check = |issued, until, at, expect: Result<&str, LinkError>| {
            let t = issue_link(&ring, "pat-001", issued, until).unwrap();
            assert_eq!(
                open_link(&ring, &t, at).as_deref().map_err(|e| *e),
                expect,
                "{issued} → {until} at {at}"
            );
        };
        check(now, now + day * 30, now, Ok("pat-001"));
        check(now, now + day * 30, now + day * 29, Ok("pat-001"));
        check(
            now,
            now + day * 30 + chrono::Duration::seconds(1),
            now,
            Err(LinkError::Invalid),
        );
        check(now, now + day * 365, now, Err(LinkError::Invalid));
        // Late in a too-long link's life it is still refused.
        check(now - day * 60, now + day, now, Err(LinkError::Invalid));
        // A link sealed before issue times were: at most 30 days from now.
        let old = |until: chrono::DateTime<Utc>| {
            let sealed = ring
                .encrypt(
                    LINK_AAD,
                    format!("{}\npat-001", until.timestamp()).as_bytes(),
                )
                .unwrap();
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed)
        };
        assert_eq!(
            open_link(&ring, &old(now + day * 7), now),
            Ok("pat-001".into())
        );
        assert_eq!(
            open_link(&ring, &old(now + day * 31), now),
            Err(LinkError::Invalid)
        );
    }
}
