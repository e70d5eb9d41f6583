//! FHIR R4 on the wire: lenient reading of the resources Herald follows
//! (unknown elements, extensions and codes are ignored, never fatal; one bad
//! entry is skipped and reported, not the whole page), and the EHR sources.
//!
//! Architecture invariant: FHIR JSON is read here and written here and in
//! `audit::balp`; the rest of Herald sees `domain::facts`.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

pub mod client;
pub mod communication;
pub mod consent;
pub mod notification;
pub mod source;
pub mod strict;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde_json::Value;

use crate::domain::facts::{AppointmentFacts, MedicationFacts, PatientFacts};
use crate::domain::phi::{Email, PersonName, Phone};

/// Why a resource could not be used (never carries PHI values).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not the expected resourceType.
    #[error("expected a {expected}, got {got:?}")]
    WrongType {
        /// Expected type.
        expected: &'static str,
        /// What came.
        got: String,
    },
    /// A required element is missing or malformed.
    #[error("{resource}: {element} is missing or malformed")]
    Missing {
        /// "Appointment/123".
        resource: String,
        /// The element.
        element: &'static str,
    },
}

fn expect_type(v: &Value, expected: &'static str) -> Result<String, ParseError> {
    let got = v["resourceType"].as_str().unwrap_or_default();
    if got != expected {
        return Err(ParseError::WrongType {
            expected,
            got: got.chars().take(40).collect(),
        });
    }
    v["id"]
        .as_str()
        .map(String::from)
        .ok_or(ParseError::Missing {
            resource: expected.to_string(),
            element: "id",
        })
}

/// The logical id in a relative reference of the given type ("Patient/1" → "1").
pub fn reference_id(reference: &Value, resource_type: &str) -> Option<String> {
    let r = reference["reference"].as_str()?;
    let tail = r
        .rsplit_once(&format!("{resource_type}/"))
        .map(|(_, t)| t)?;
    let id = tail.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

fn instant(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

fn date(v: &Value) -> Option<NaiveDate> {
    let s = v.as_str()?;
    NaiveDate::parse_from_str(s.get(..10)?, "%Y-%m-%d").ok()
}

fn extension<'a>(v: &'a Value, url: &str) -> Option<&'a Value> {
    v["extension"].as_array()?.iter().find(|e| e["url"] == url)
}

/// The IANA zone of a US state or territory (its most populous zone).
pub fn state_timezone(state: &str) -> Option<Tz> {
    use chrono_tz::{America, Pacific};
    let tz = match state.trim().to_ascii_uppercase().as_str() {
        "CT" | "DE" | "DC" | "FL" | "GA" | "ME" | "MD" | "MA" | "NH" | "NJ" | "NY" | "NC"
        | "OH" | "PA" | "RI" | "SC" | "VT" | "VA" | "WV" | "MI" | "IN" | "KY" => America::New_York,
        "AL" | "AR" | "IL" | "IA" | "KS" | "LA" | "MN" | "MS" | "MO" | "NE" | "ND" | "OK"
        | "SD" | "TN" | "TX" | "WI" => America::Chicago,
        "CO" | "MT" | "NM" | "UT" | "WY" | "ID" => America::Denver,
        "AZ" => America::Phoenix,
        "CA" | "NV" | "OR" | "WA" => America::Los_Angeles,
        "AK" => America::Anchorage,
        "HI" => Pacific::Honolulu,
        "PR" | "VI" => America::Puerto_Rico,
        "GU" | "MP" => Pacific::Guam,
        _ => return None,
    };
    Some(tz)
}

/// A Location's time zone: the R5-backport `timezone` extension, else its state.
pub fn location_timezone(loc: &Value) -> Option<Tz> {
    extension(loc, "http://hl7.org/fhir/StructureDefinition/timezone")
        .and_then(|e| e["valueCode"].as_str())
        .and_then(|z| z.parse().ok())
        .or_else(|| loc["address"]["state"].as_str().and_then(state_timezone))
}

/// Reads a Patient's contact facts.
pub fn patient_facts(v: &Value) -> Result<PatientFacts, ParseError> {
    let id = expect_type(v, "Patient")?;
    let names = v["name"].as_array().cloned().unwrap_or_default();
    // A Patient without a name is valid FHIR (and messages never need it):
    // lenient on input, the name is then empty.
    let none = Value::Null;
    let name = names
        .iter()
        .find(|n| n["use"] == "official")
        .or_else(|| names.first())
        .unwrap_or(&none);
    let given: Vec<&str> = name["given"]
        .as_array()
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let display = match name["text"].as_str() {
        Some(t) => t.to_string(),
        None => {
            let mut parts = given.clone();
            if let Some(f) = name["family"].as_str() {
                parts.push(f);
            }
            parts.join(" ")
        }
    };
    let telecom = v["telecom"].as_array().cloned().unwrap_or_default();
    let pick = |system: &str| -> Option<String> {
        let usable: Vec<&Value> = telecom
            .iter()
            .filter(|t| {
                t["system"] == system && t["value"].is_string() && t["period"]["end"].is_null()
            })
            .collect();
        usable
            .iter()
            .find(|t| t["use"] == "mobile")
            .or_else(|| usable.iter().find(|t| t["use"] != "work"))
            .or_else(|| usable.first())
            .and_then(|t| t["value"].as_str())
            .map(String::from)
    };
    let phone = pick("sms").or_else(|| pick("phone"));
    let language = v["communication"].as_array().and_then(|cs| {
        let preferred = cs
            .iter()
            .find(|c| c["preferred"] == true)
            .or_else(|| cs.first())?;
        let codings = preferred["language"]["coding"].as_array()?;
        codings
            .iter()
            .find_map(|c| c["code"].as_str())
            .map(String::from)
    });
    let state = v["address"].as_array().and_then(|addrs| {
        addrs
            .iter()
            .find(|a| a["use"] == "home")
            .or_else(|| addrs.first())
            .and_then(|a| a["state"].as_str())
    });
    let tz = state.and_then(state_timezone);
    let region = state
        .map(|s| s.trim().to_ascii_uppercase())
        .filter(|s| s.len() == 2);
    Ok(PatientFacts {
        name: PersonName::new(display),
        given: given.first().map(|g| PersonName::new(*g)),
        phone: phone.map(Phone::new),
        email: pick("email").map(Email::new),
        language,
        tz,
        region,
        id,
    })
}

/// Reads an Appointment. `location_tz` resolves a Location id to its zone.
pub fn appointment_facts(
    v: &Value,
    location_tz: &dyn Fn(&str) -> Option<Tz>,
) -> Result<AppointmentFacts, ParseError> {
    let id = expect_type(v, "Appointment")?;
    let missing = |element| ParseError::Missing {
        resource: format!("Appointment/{id}"),
        element,
    };
    let status = v["status"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| missing("status"))?;
    let participants = v["participant"].as_array().cloned().unwrap_or_default();
    let find = |rt: &str| {
        participants
            .iter()
            .find(|p| reference_id(&p["actor"], rt).is_some())
    };
    let patient = find("Patient")
        .and_then(|p| reference_id(&p["actor"], "Patient"))
        .ok_or_else(|| missing("participant.actor(Patient)"))?;
    let clinician =
        find("Practitioner").and_then(|p| p["actor"]["display"].as_str().map(String::from));
    let loc = find("Location");
    let location_id = loc.and_then(|p| reference_id(&p["actor"], "Location"));
    Ok(AppointmentFacts {
        version: v["meta"]["versionId"].as_str().map(String::from),
        status,
        start: instant(&v["start"]),
        patient_id: patient,
        clinician,
        location: loc.and_then(|p| p["actor"]["display"].as_str().map(String::from)),
        tz: location_id.as_deref().and_then(location_tz),
        location_id,
        id,
    })
}

/// Reads a MedicationRequest (never the medication itself).
pub fn medication_facts(v: &Value) -> Result<MedicationFacts, ParseError> {
    let id = expect_type(v, "MedicationRequest")?;
    let missing = |element| ParseError::Missing {
        resource: format!("MedicationRequest/{id}"),
        element,
    };
    let dr = &v["dispenseRequest"];
    let supply_days = {
        let d = &dr["expectedSupplyDuration"];
        d["value"].as_f64().and_then(|n| {
            let days = match d["code"].as_str().or(d["unit"].as_str()) {
                Some("wk") | Some("week") | Some("weeks") => n * 7.0,
                Some("mo") | Some("month") | Some("months") => n * 30.0,
                Some("d") | Some("day") | Some("days") | None => n,
                Some(_) => return None,
            };
            (0.0..10_000.0)
                .contains(&days)
                .then(|| format!("{days:.0}").parse().ok())
                .flatten()
        })
    };
    Ok(MedicationFacts {
        version: v["meta"]["versionId"].as_str().map(String::from),
        status: v["status"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| missing("status"))?,
        patient_id: reference_id(&v["subject"], "Patient").ok_or_else(|| missing("subject"))?,
        authored_on: date(&v["authoredOn"]),
        supply_days,
        repeats_allowed: dr["numberOfRepeatsAllowed"]
            .as_u64()
            .and_then(|n| u32::try_from(n).ok()),
        valid_until: date(&dr["validityPeriod"]["end"]),
        ready_for_pickup: extension(
            v,
            "https://herald.example.org/fhir/StructureDefinition/ready-for-pickup",
        )
        .is_some_and(|e| e["valueBoolean"] == true),
        id,
    })
}

/// The messaging facts of a Consent in Herald's encoding (profiles/fhir/).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsentFacts {
    /// Consent id.
    pub id: String,
    /// Patient.
    pub patient_id: String,
    /// active, inactive, ...
    pub status: String,
    /// Channel code.
    pub channels: Vec<String>,
    /// The exact address (PHI).
    pub address: Option<String>,
    /// Purpose codes (empty = every purpose).
    pub purposes: Vec<String>,
    /// permit or deny.
    pub permit: bool,
    /// Consent.dateTime.
    pub date_time: Option<DateTime<Utc>>,
    /// provision.period.end.
    pub valid_until: Option<DateTime<Utc>>,
    /// category[].coding[].code.
    pub categories: Vec<String>,
}

/// Herald's extension for the consented channel.
pub const EXT_CHANNEL: &str = "https://herald.example.org/fhir/StructureDefinition/consent-channel";
/// Herald's extension for the consented address.
pub const EXT_ADDRESS: &str = "https://herald.example.org/fhir/StructureDefinition/consent-address";

/// Reads a Consent in Herald's encoding.
pub fn consent_facts(v: &Value) -> Result<ConsentFacts, ParseError> {
    let id = expect_type(v, "Consent")?;
    let missing = |element| ParseError::Missing {
        resource: format!("Consent/{id}"),
        element,
    };
    let p = &v["provision"];
    Ok(ConsentFacts {
        patient_id: reference_id(&v["patient"], "Patient").ok_or_else(|| missing("patient"))?,
        status: v["status"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| missing("status"))?,
        channels: {
            let cs: Vec<String> = p["extension"]
                .as_array()
                .map(|es| {
                    es.iter()
                        .filter(|e| e["url"] == EXT_CHANNEL)
                        .filter_map(|e| e["valueCode"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if cs.is_empty() {
                return Err(missing("provision.extension(consent-channel)"));
            }
            cs
        },
        // No address: the provision covers every address on its channels
        // (a confidential-communications request, H10).
        address: extension(p, EXT_ADDRESS)
            .and_then(|e| e["valueString"].as_str())
            .map(String::from),
        purposes: p["purpose"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|c| c["code"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default(),
        permit: match p["type"].as_str() {
            Some("permit") => true,
            Some("deny") => false,
            _ => return Err(missing("provision.type")),
        },
        date_time: instant(&v["dateTime"]),
        valid_until: instant(&p["period"]["end"]),
        categories: v["category"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|c| c["coding"].as_array().into_iter().flatten())
            .filter_map(|c| c["code"].as_str().map(String::from))
            .collect(),
        id,
    })
}

/// The entries of a Bundle: each resource, or a reason it was skipped.
pub fn bundle_resources(bundle: &Value) -> Vec<Value> {
    bundle["entry"]
        .as_array()
        .map(|es| {
            es.iter()
                .filter_map(|e| e.get("resource").cloned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lenient_on_unknown_elements_and_extensions() {
        let p = json!({
            "resourceType": "Patient", "id": "p1",
            "name": [{"use": "official", "family": "Doe", "given": ["Ana", "María"]}],
            "telecom": [{"system": "phone", "value": "+12125550100", "use": "work"},
                        {"system": "phone", "value": "+12125550101", "use": "mobile"}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-US"}]}, "preferred": true}],
            "address": [{"state": "HI"}],
            "fooBar": 1, "gender": "F",
            "extension": [{"url": "https://vendor.example/x", "valueString": "y"}]
        });
        let f = patient_facts(&p).unwrap();
        assert_eq!(f.name.expose(), "Ana María Doe");
        assert_eq!(f.phone.unwrap().expose(), "+12125550101");
        assert_eq!(f.language.as_deref(), Some("es-US"));
        assert_eq!(f.tz, Some(chrono_tz::Pacific::Honolulu));
    }

    #[test]
    fn appointment_with_unknown_code_is_an_error_not_a_panic() {
        let a = json!({"resourceType": "Appointment", "id": "a1", "status": "scheduled", "participant": []});
        let err = appointment_facts(&a, &|_| None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Appointment/a1: status is missing or malformed"
        );
        let b = json!({"resourceType": "Appointment", "id": "a2", "status": "booked",
            "start": "2026-12-03T09:30:00-05:00",
            "participant": [{"actor": {"reference": "Patient/p1"}}, {"actor": {"reference": "https://ehr.example/fhir/Location/l1", "display": "Clinic"}}]});
        let f = appointment_facts(&b, &|id| {
            (id == "l1").then_some(chrono_tz::America::New_York)
        })
        .unwrap();
        assert_eq!(f.patient_id, "p1");
        assert_eq!(f.tz, Some(chrono_tz::America::New_York));
        assert_eq!(f.start.unwrap().to_rfc3339(), "2026-12-03T14:30:00+00:00");
    }

    #[test]
    fn medication_supply() {
        let m = json!({"resourceType": "MedicationRequest", "id": "m1", "status": "active", "subject": {"reference": "Patient/p1"},
            "authoredOn": "2026-11-07T16:45:00Z",
            "dispenseRequest": {"numberOfRepeatsAllowed": 2, "expectedSupplyDuration": {"value": 4, "code": "wk"}}});
        let f = medication_facts(&m).unwrap();
        assert_eq!(f.supply_days, Some(28));
        assert_eq!(f.repeats_allowed, Some(2));
    }
}
