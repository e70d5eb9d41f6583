//! The consent decision: may this patient be messaged on this channel, for
//! this purpose, at this exact address, now? The ledger (in `db/`) supplies
//! the entries; this module only decides. Rules: reference/messaging.md T1,
//! T5–T9 and reference/fhir.md §1.5.

use chrono::{DateTime, Utc};

use super::{Channel, Purpose};

/// Permit or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The patient agreed.
    Permit,
    /// The patient refused or withdrew.
    Deny,
}

/// One ledger entry (one FHIR Consent).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentEntry {
    /// The Consent's id.
    pub consent_id: String,
    /// Channel it covers.
    pub channel: Channel,
    /// Purpose it covers; `None` covers every purpose (an opt-out by STOP).
    pub purpose: Option<Purpose>,
    /// Blind index of the exact address it covers.
    pub address_index: String,
    /// Permit or deny.
    pub decision: Decision,
    /// When it was recorded; the newest applicable entry wins.
    pub recorded_at: DateTime<Utc>,
    /// End of the provision period, if any.
    pub valid_until: Option<DateTime<Utc>>,
}

/// Why a send is not permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DenyReason {
    /// Nothing on file for this channel and purpose.
    NoConsent,
    /// Consent exists, but for another number or email.
    OtherAddress,
    /// The patient opted out.
    OptedOut,
    /// The consent's period has ended.
    Expired,
    /// The patient asked not to be reached on this channel at all (H10).
    ConfidentialCommunications,
}

impl DenyReason {
    /// Text recorded as the suppression reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NoConsent => "no consent",
            Self::OtherAddress => "no consent for this address",
            Self::OptedOut => "no consent (opted out)",
            Self::ConfidentialCommunications => "no consent (confidential communications request)",
            Self::Expired => "consent expired",
        }
    }
}

/// The verdict, naming the Consent that decided it when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Send.
    Permit {
        /// The deciding Consent.
        consent_id: String,
    },
    /// Do not send.
    Deny {
        /// Why.
        reason: DenyReason,
        /// The deciding Consent, if any.
        consent_id: Option<String>,
    },
}

/// Decides from the patient's ledger entries.
/// The address index of an entry that covers every address on its channel
/// (a confidential-communications request, H10).
pub const ANY_ADDRESS: &str = "*";

/// Decides one send.
pub fn decide(
    entries: &[ConsentEntry],
    channel: Channel,
    purpose: Purpose,
    address_index: &str,
    now: DateTime<Utc>,
) -> Verdict {
    let applicable = entries
        .iter()
        .filter(|e| e.channel == channel && e.purpose.is_none_or(|p| p == purpose));
    // A confidential-communications request (H10) covers every address on
    // the channel and overrides any consent until the patient lifts it.
    let newest = |a: Option<&'_ ConsentEntry>, e: &'_ ConsentEntry| -> bool {
        a.is_none_or(|cur| {
            e.recorded_at > cur.recorded_at
                || (e.recorded_at == cur.recorded_at && e.decision == Decision::Deny)
        })
    };
    let mut blanket: Option<&ConsentEntry> = None;
    for e in applicable
        .clone()
        .filter(|e| e.address_index == ANY_ADDRESS)
    {
        if newest(blanket, e) {
            blanket = Some(e);
        }
    }
    if let Some(b) = blanket
        && b.decision == Decision::Deny
        && b.valid_until.is_none_or(|end| end > now)
    {
        return Verdict::Deny {
            reason: DenyReason::ConfidentialCommunications,
            consent_id: Some(b.consent_id.clone()),
        };
    }
    let applicable = applicable.filter(|e| e.address_index != ANY_ADDRESS);
    let mut latest: Option<&ConsentEntry> = None;
    let mut other_address = false;
    for e in applicable {
        if e.address_index != address_index {
            other_address = true;
            continue;
        }
        latest = match latest {
            // Newest wins; at the same instant a deny wins.
            Some(cur) if cur.recorded_at > e.recorded_at => Some(cur),
            Some(cur) if cur.recorded_at == e.recorded_at && cur.decision == Decision::Deny => {
                Some(cur)
            }
            _ => Some(e),
        };
    }
    match latest {
        None => Verdict::Deny {
            reason: if other_address {
                DenyReason::OtherAddress
            } else {
                DenyReason::NoConsent
            },
            consent_id: None,
        },
        Some(e) if e.decision == Decision::Deny => Verdict::Deny {
            reason: DenyReason::OptedOut,
            consent_id: Some(e.consent_id.clone()),
        },
        Some(e) if e.valid_until.is_some_and(|end| end <= now) => Verdict::Deny {
            reason: DenyReason::Expired,
            consent_id: Some(e.consent_id.clone()),
        },
        Some(e) => Verdict::Permit {
            consent_id: e.consent_id.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t(h: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::hours(h)
    }

    fn entry(id: &str, purpose: Option<Purpose>, addr: &str, d: Decision, at: i64) -> ConsentEntry {
        ConsentEntry {
            consent_id: id.into(),
            channel: Channel::Sms,
            purpose,
            address_index: addr.into(),
            decision: d,
            recorded_at: t(at),
            valid_until: None,
        }
    }

    fn check(entries: &[ConsentEntry], expect: Verdict) {
        assert_eq!(
            decide(entries, Channel::Sms, Purpose::Appointment, "A", t(100)),
            expect
        );
    }

    #[test]
    fn decisions() {
        check(
            &[],
            Verdict::Deny {
                reason: DenyReason::NoConsent,
                consent_id: None,
            },
        );
        check(
            &[entry(
                "c1",
                Some(Purpose::Appointment),
                "A",
                Decision::Permit,
                1,
            )],
            Verdict::Permit {
                consent_id: "c1".into(),
            },
        );
        // Consent for another purpose does not count.
        check(
            &[entry(
                "c1",
                Some(Purpose::Marketing),
                "A",
                Decision::Permit,
                1,
            )],
            Verdict::Deny {
                reason: DenyReason::NoConsent,
                consent_id: None,
            },
        );
        // Another number.
        check(
            &[entry(
                "c1",
                Some(Purpose::Appointment),
                "B",
                Decision::Permit,
                1,
            )],
            Verdict::Deny {
                reason: DenyReason::OtherAddress,
                consent_id: None,
            },
        );
        // A STOP (all purposes) after a permit wins; a START after it restores.
        let stop = entry("c2", None, "A", Decision::Deny, 2);
        let permit = entry("c1", Some(Purpose::Appointment), "A", Decision::Permit, 1);
        check(
            &[permit.clone(), stop.clone()],
            Verdict::Deny {
                reason: DenyReason::OptedOut,
                consent_id: Some("c2".into()),
            },
        );
        check(
            &[permit, stop, entry("c3", None, "A", Decision::Permit, 3)],
            Verdict::Permit {
                consent_id: "c3".into(),
            },
        );
        let mut expired = entry("c1", Some(Purpose::Appointment), "A", Decision::Permit, 1);
        expired.valid_until = Some(t(50));
        check(
            &[expired],
            Verdict::Deny {
                reason: DenyReason::Expired,
                consent_id: Some("c1".into()),
            },
        );
    }

    #[test]
    fn a_confidential_communications_request_overrides_every_address() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let entry = |id: &str, addr: &str, decision, mins: i64| ConsentEntry {
            consent_id: id.into(),
            channel: Channel::Sms,
            purpose: None,
            address_index: addr.into(),
            decision,
            recorded_at: t0 + chrono::Duration::minutes(mins),
            valid_until: None,
        };
        let mut entries = vec![
            entry("permit", "idx-1", Decision::Permit, 0),
            entry("email-only", ANY_ADDRESS, Decision::Deny, 1),
            // A newer permit for a number does not lift the request…
            entry("permit-later", "idx-1", Decision::Permit, 2),
        ];
        let now = t0 + chrono::Duration::minutes(3);
        assert_eq!(
            decide(&entries, Channel::Sms, Purpose::Medication, "idx-1", now),
            Verdict::Deny {
                reason: DenyReason::ConfidentialCommunications,
                consent_id: Some("email-only".into())
            }
        );
        // …lifting it does, and the address's own consent decides again.
        entries.push(entry("lifted", ANY_ADDRESS, Decision::Permit, 3));
        assert_eq!(
            decide(
                &entries,
                Channel::Sms,
                Purpose::Appointment,
                "idx-1",
                now + chrono::Duration::minutes(1)
            ),
            Verdict::Permit {
                consent_id: "permit-later".into()
            }
        );
        // A blanket permit never grants consent by itself.
        assert!(matches!(
            decide(&entries, Channel::Sms, Purpose::Appointment, "idx-2", now),
            Verdict::Deny { .. }
        ));
    }
}
