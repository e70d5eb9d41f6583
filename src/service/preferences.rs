//! The patient preference page's rules (issue 5 §5): signed, expiring links
//! for one patient; what the patient currently allows; and each change as
//! ledger rows with their FHIR Consent, recorded with the page's exact
//! wording and version, the time and the IP (CTIA C4, TCPA T1, H10).

use chrono::{DateTime, Utc};

use crate::audit;
use crate::clock::Clock;
use crate::crypto::{KeyRing, normalize_email, normalize_phone};
use crate::db::{self, DbConn, DbError, consents, patients};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::domain::consent::{self, ANY_ADDRESS, Decision, Verdict};
use crate::domain::facts::PatientFacts;
use crate::domain::{Channel, Purpose};

/// The version of the wording shown for express written consent.
pub const WRITTEN_CONSENT_VERSION: &str = "marketing-consent-v1";
/// The exact wording shown next to the (never pre-checked) checkbox.
pub const WRITTEN_CONSENT_TEXT: &str = "I agree to receive marketing text messages and emails from this practice at the number and address above. Consent is not a condition of care. Msg & data rates may apply. Reply STOP to opt out at any time.";

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not made by Herald, or altered.
    Invalid,
    /// Past its expiry.
    Expired,
}

const LINK_AAD: &[u8] = b"herald:patient-link:v1";

/// A link token for `patient` valid until `until`: sealed with the key ring
/// (AES-256-GCM), so it is opaque and any change breaks it.
pub fn issue_link(ring: &KeyRing, patient: &str, until: DateTime<Utc>) -> Result<String, DbError> {
    use base64::Engine as _;
    let plain = format!("{}\n{patient}", until.timestamp());
    let sealed = ring.encrypt(LINK_AAD, plain.as_bytes())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sealed))
}

/// The patient a link is for, if it is genuine and unexpired.
pub fn open_link(ring: &KeyRing, token: &str, now: DateTime<Utc>) -> Result<String, LinkError> {
    use base64::Engine as _;
    let sealed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| LinkError::Invalid)?;
    let plain = ring
        .decrypt(LINK_AAD, &sealed)
        .map_err(|_| LinkError::Invalid)?;
    let text = String::from_utf8(plain).map_err(|_| LinkError::Invalid)?;
    let (until, patient) = text.split_once('\n').ok_or(LinkError::Invalid)?;
    let until: i64 = until.parse().map_err(|_| LinkError::Invalid)?;
    if now.timestamp() >= until {
        return Err(LinkError::Expired);
    }
    Ok(patient.to_string())
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
    UseNumber(String),
    /// Lift the other-number request: the EHR's number again.
    ClearNumber,
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
    db::write_tx(conn, |c| {
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_sealed_expire_and_refuse_tampering() {
        let ring = KeyRing::for_testing();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default();
        let t = issue_link(&ring, "pat-001", now + chrono::Duration::days(7)).unwrap();
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
}
