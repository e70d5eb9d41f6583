//! The consent decision: may this patient be messaged on this channel, for
//! this purpose, at this exact address, now? The ledger (in `db/`) supplies
//! the entries; this module only decides. Rules: reference/messaging.md T1,
//! T5–T9 and reference/fhir.md §1.5.
//!
//! Time: an entry ranks by the time Herald gives it when it records it
//! ([`ranked_at`]), never later than Herald's own clock then. A time the
//! sender states (a Consent's `dateTime`) can only move an entry earlier —
//! a consent given at 09:00 and entered at 12:00 does not outrank a STOP the
//! patient sent at 11:00 — and one stated in the future (beyond
//! [`CLOCK_SKEW`]) is either refused (Herald's API) or recorded at Herald's
//! time and marked [`ConsentEntry::future_dated`] (the EHR import); a
//! future-dated permit never lifts a deny recorded before it.

use chrono::{DateTime, Duration, Utc};

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
    /// When it ranks (Herald's clock when recorded, or the earlier time
    /// its sender stated; see [`ranked_at`]); the newest applicable entry wins.
    pub recorded_at: DateTime<Utc>,
    /// End of the provision period, if any.
    pub valid_until: Option<DateTime<Utc>>,
    /// Its sender stated a time in the future (beyond [`CLOCK_SKEW`]); it was
    /// recorded at Herald's time instead. Such a permit never lifts a deny
    /// recorded before it.
    pub future_dated: bool,
}

/// How far ahead of Herald's clock a stated time may be and still be taken
/// as "now" (the sender's clock runs a little fast).
pub const CLOCK_SKEW: Duration = Duration::minutes(5);

/// When an entry ranks, from the time its sender states (`Consent.dateTime`)
/// and Herald's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ranked {
    /// The ranking time: the stated time when it is in the past, else now.
    pub at: DateTime<Utc>,
    /// The stated time is later than now plus [`CLOCK_SKEW`].
    pub future: bool,
}

/// The ranking time of an entry recorded `now` whose sender states `stated`:
/// never later than `now`, so no sender can place an entry ahead of what a
/// patient does next; earlier when the sender says it was given earlier, so a
/// consent entered (or imported) late does not outrank a STOP sent after it.
pub fn ranked_at(stated: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Ranked {
    match stated {
        Some(s) if s > now + CLOCK_SKEW => Ranked {
            at: now,
            future: true,
        },
        Some(s) => Ranked {
            at: s.min(now),
            future: false,
        },
        None => Ranked {
            at: now,
            future: false,
        },
    }
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

/// The entry in force after replaying `entries` in ranking order: the newest
/// wins, a deny wins a tie, and a future-dated permit does not lift a deny
/// still in force before it.
fn replay<'a>(
    entries: impl Iterator<Item = &'a ConsentEntry>,
    now: DateTime<Utc>,
) -> Option<&'a ConsentEntry> {
    let mut ordered: Vec<&ConsentEntry> = entries.collect();
    // At the same instant a permit goes first, so the deny is what stands.
    ordered.sort_by_key(|e| (e.recorded_at, e.decision == Decision::Deny));
    let mut current: Option<&ConsentEntry> = None;
    for e in ordered {
        let lifts_a_deny = current.is_some_and(|c| {
            c.decision == Decision::Deny && c.valid_until.is_none_or(|end| end > now)
        });
        if e.future_dated && e.decision == Decision::Permit && lifts_a_deny {
            continue;
        }
        current = Some(e);
    }
    current
}

/// The address index of an entry that covers every address on its channel
/// (a confidential-communications request, H10).
pub const ANY_ADDRESS: &str = "*";

/// Decides one send from the patient's ledger entries.
pub fn decide(
    entries: &[ConsentEntry],
    channel: Channel,
    purpose: Purpose,
    address_index: &str,
    now: DateTime<Utc>,
) -> Verdict {
    let applicable: Vec<&ConsentEntry> = entries
        .iter()
        .filter(|e| e.channel == channel && e.purpose.is_none_or(|p| p == purpose))
        .collect();
    // A confidential-communications request (H10) covers every address on
    // the channel and overrides any consent until the patient lifts it.
    let blanket = replay(
        applicable
            .iter()
            .copied()
            .filter(|e| e.address_index == ANY_ADDRESS),
        now,
    );
    if let Some(b) = blanket
        && b.decision == Decision::Deny
        && b.valid_until.is_none_or(|end| end > now)
    {
        return Verdict::Deny {
            reason: DenyReason::ConfidentialCommunications,
            consent_id: Some(b.consent_id.clone()),
        };
    }
    let specific = applicable
        .iter()
        .copied()
        .filter(|e| e.address_index != ANY_ADDRESS);
    let other_address = specific.clone().any(|e| e.address_index != address_index);
    let latest = replay(specific.filter(|e| e.address_index == address_index), now);
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
            future_dated: false,
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
            future_dated: false,
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

    #[test]
    fn ranking_time_is_never_later_than_herald_s_clock() {
        let check = |stated: Option<i64>, expect: (i64, bool)| {
            let r = ranked_at(stated.map(|m| t(0) + Duration::minutes(m)), t(0));
            assert_eq!(
                (r.at, r.future),
                (t(0) + Duration::minutes(expect.0), expect.1),
                "stated {stated:?}"
            );
        };
        check(None, (0, false));
        check(Some(-90), (-90, false)); // given earlier: ranks then
        check(Some(3), (0, false)); // a fast clock: now
        check(Some(5), (0, false));
        check(Some(6), (0, true)); // the future: now, and marked
        check(Some(60 * 24 * 365 * 70), (0, true));
    }

    #[test]
    fn a_future_dated_permit_never_lifts_an_earlier_deny() {
        let stop = entry("stop", None, "A", Decision::Deny, 2);
        let mut ehr = entry("ehr", Some(Purpose::Appointment), "A", Decision::Permit, 3);
        ehr.future_dated = true;
        check(
            &[ehr.clone(), stop.clone()],
            Verdict::Deny {
                reason: DenyReason::OptedOut,
                consent_id: Some("stop".into()),
            },
        );
        // Without a deny before it, it is a permit like any other…
        check(
            std::slice::from_ref(&ehr),
            Verdict::Permit {
                consent_id: "ehr".into(),
            },
        );
        // …and the patient's own START after the STOP opts in again.
        check(
            &[ehr, stop, entry("start", None, "A", Decision::Permit, 4)],
            Verdict::Permit {
                consent_id: "start".into(),
            },
        );
        // A future-dated deny is a deny.
        let mut deny = entry("deny", None, "A", Decision::Deny, 5);
        deny.future_dated = true;
        check(
            &[entry("c1", None, "A", Decision::Permit, 1), deny],
            Verdict::Deny {
                reason: DenyReason::OptedOut,
                consent_id: Some("deny".into()),
            },
        );
    }
}
