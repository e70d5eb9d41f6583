//! What Herald needs to know about an EHR resource, already parsed and
//! normalised by `fhir/`: ids, status, times, and nothing clinical.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

use super::code_enum;

/// R4 AppointmentStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppointmentStatus {
    /// proposed
    Proposed,
    /// pending
    Pending,
    /// booked
    Booked,
    /// arrived
    Arrived,
    /// fulfilled
    Fulfilled,
    /// cancelled
    Cancelled,
    /// noshow
    Noshow,
    /// entered-in-error
    EnteredInError,
    /// checked-in
    CheckedIn,
    /// waitlist
    Waitlist,
}

code_enum!(AppointmentStatus {
    Proposed = "proposed",
    Pending = "pending",
    Booked = "booked",
    Arrived = "arrived",
    Fulfilled = "fulfilled",
    Cancelled = "cancelled",
    Noshow = "noshow",
    EnteredInError = "entered-in-error",
    CheckedIn = "checked-in",
    Waitlist = "waitlist",
});

/// An Appointment, as far as messaging cares.
#[derive(Debug, Clone, PartialEq)]
pub struct AppointmentFacts {
    /// Logical id at the EHR.
    pub id: String,
    /// meta.versionId, when the server gives one.
    pub version: Option<String>,
    /// Status.
    pub status: AppointmentStatus,
    /// Start instant.
    pub start: Option<DateTime<Utc>>,
    /// The patient's logical id.
    pub patient_id: String,
    /// The clinician's display name.
    pub clinician: Option<String>,
    /// The location's display name.
    pub location: Option<String>,
    /// The location's logical id.
    pub location_id: Option<String>,
    /// The appointment's time zone (from the location).
    pub tz: Option<Tz>,
}

/// A MedicationRequest, as far as messaging cares (never the drug).
#[derive(Debug, Clone, PartialEq)]
pub struct MedicationFacts {
    /// Logical id at the EHR.
    pub id: String,
    /// meta.versionId.
    pub version: Option<String>,
    /// R4 medicationrequest-status code (kept as text: the set is extensible in practice).
    pub status: String,
    /// The patient's logical id.
    pub patient_id: String,
    /// When it was written.
    pub authored_on: Option<NaiveDate>,
    /// dispenseRequest.expectedSupplyDuration in days.
    pub supply_days: Option<u32>,
    /// dispenseRequest.numberOfRepeatsAllowed.
    pub repeats_allowed: Option<u32>,
    /// dispenseRequest.validityPeriod.end.
    pub valid_until: Option<NaiveDate>,
    /// The pharmacy marked it ready for pickup.
    pub ready_for_pickup: bool,
}

/// A patient's contact facts (PHI stays in newtypes).
#[derive(Debug, Clone)]
pub struct PatientFacts {
    /// Logical id at the EHR.
    pub id: String,
    /// Display name.
    pub name: super::phi::PersonName,
    /// Given name, for templates that greet.
    pub given: Option<super::phi::PersonName>,
    /// Mobile phone.
    pub phone: Option<super::phi::Phone>,
    /// Email.
    pub email: Option<super::phi::Email>,
    /// Preferred language (BCP 47), from Patient.communication.
    pub language: Option<String>,
    /// Home time zone, from the address.
    pub tz: Option<Tz>,
    /// Home state or province (e.g. "FL"), for state sending windows.
    pub region: Option<String>,
}

/// How an arriving resource version relates to the one Herald holds
/// (exactly once, N12: duplicates and late arrivals change nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOrder {
    /// Newer than what Herald holds (or Herald holds nothing): process it.
    Newer,
    /// The same version again: nothing to do.
    Same,
    /// An older version arriving late: never roll state back.
    Older,
}

/// Orders `(versionId, lastUpdated)` of an arriving version against the held
/// one. lastUpdated decides when both have it; then versionIds, compared as
/// numbers when both are numeric (HAPI, Medplum's are UUIDs, Epic's and
/// Oracle's are integers), as equal-or-not otherwise. A version with neither
/// counts as newer, because nothing proves it is not.
pub fn order_versions(
    new: (Option<&str>, Option<DateTime<Utc>>),
    held: (Option<&str>, Option<DateTime<Utc>>),
) -> VersionOrder {
    let (new_v, new_t) = new;
    let (old_v, old_t) = held;
    if let (Some(a), Some(b)) = (new_v, old_v)
        && a == b
    {
        return VersionOrder::Same;
    }
    if let (Some(a), Some(b)) = (new_t, old_t) {
        if a < b {
            return VersionOrder::Older;
        }
        if a > b {
            return VersionOrder::Newer;
        }
    }
    if let (Some(a), Some(b)) = (new_v, old_v)
        && let (Ok(a), Ok(b)) = (a.parse::<u64>(), b.parse::<u64>())
    {
        return match a.cmp(&b) {
            std::cmp::Ordering::Less => VersionOrder::Older,
            std::cmp::Ordering::Equal => VersionOrder::Same,
            std::cmp::Ordering::Greater => VersionOrder::Newer,
        };
    }
    match (new_v, old_v, new_t, old_t) {
        // Same instant, no versionIds to tell them apart: the same version.
        (None, None, Some(_), Some(_)) => VersionOrder::Same,
        _ => VersionOrder::Newer,
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> Option<DateTime<Utc>> {
        Utc.timestamp_opt(1_800_000_000 + s, 0).single()
    }

    #[test]
    fn duplicates_and_late_versions_are_recognised() {
        use VersionOrder::*;
        assert_eq!(order_versions((Some("2"), t(5)), (Some("2"), t(5))), Same);
        assert_eq!(order_versions((Some("1"), t(1)), (Some("2"), t(5))), Older);
        assert_eq!(order_versions((Some("3"), t(9)), (Some("2"), t(5))), Newer);
        // UUID versionIds (Medplum): lastUpdated decides.
        assert_eq!(order_versions((Some("b"), t(1)), (Some("a"), t(5))), Older);
        // No lastUpdated: numeric versionIds decide.
        assert_eq!(order_versions((Some("9"), None), (Some("10"), None)), Older);
        assert_eq!(
            order_versions((Some("11"), None), (Some("10"), None)),
            Newer
        );
        assert_eq!(order_versions((None, t(5)), (None, t(5))), Same);
        assert_eq!(order_versions((None, None), (None, None)), Newer);
        assert_eq!(order_versions((Some("1"), None), (None, None)), Newer);
    }
}
