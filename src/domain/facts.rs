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
