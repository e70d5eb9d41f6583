//! Every Consent Herald writes (a keyword, the preference page, a carrier
//! opt-out), in the encoding ARCHITECTURE.md describes: scope
//! patient-privacy, LOINC 59284-0, `policyRule` saying how it was given, and
//! a provision with the channel, the exact address (none: every address on
//! the channel) and the purpose (none: every purpose).

use chrono::{DateTime, Utc};
use serde_json::json;

use super::communication::PURPOSE_SYSTEM;
use super::{EXT_ADDRESS, EXT_CHANNEL};
use crate::domain::{Channel, Purpose};

/// The category of every Consent Herald writes: LOINC 59284-0 (Patient
/// Consent).
pub const CATEGORY: &str = "59284-0";

/// What one Consent says.
#[derive(Debug, Clone)]
pub struct ConsentDraft<'a> {
    /// Resource id.
    pub id: &'a str,
    /// Patient's logical id.
    pub patient: &'a str,
    /// Who gave it, as a reference ("Patient/…"); none for a carrier report.
    pub performer: Option<&'a str>,
    /// Permit or deny.
    pub permit: bool,
    /// The channel the provision covers.
    pub channel: Channel,
    /// The purpose; none covers every purpose.
    pub purpose: Option<Purpose>,
    /// The exact address; none covers every address on the channel.
    pub address: Option<&'a str>,
    /// How it was given (`policyRule.text`).
    pub rule: &'a str,
    /// When.
    pub at: DateTime<Utc>,
}

/// The FHIR R4 Consent JSON.
pub fn resource(d: &ConsentDraft<'_>) -> String {
    let at = d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut ext = vec![json!({"url": EXT_CHANNEL, "valueCode": d.channel.code()})];
    if let Some(a) = d.address {
        ext.push(json!({"url": EXT_ADDRESS, "valueString": a}));
    }
    let mut provision = json!({
        "type": if d.permit { "permit" } else { "deny" },
        "period": {"start": at},
        "extension": ext,
    });
    if let (Some(p), Some(obj)) = (d.purpose, provision.as_object_mut()) {
        obj.insert(
            "purpose".into(),
            json!([{"system": PURPOSE_SYSTEM, "code": p.code()}]),
        );
    }
    let mut c = json!({
        "resourceType": "Consent", "id": d.id, "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": CATEGORY, "display": "Patient Consent"}]}],
        "patient": {"reference": format!("Patient/{}", d.patient)},
        "dateTime": at,
        "policyRule": {"text": d.rule},
        "provision": provision,
    });
    if let (Some(p), Some(obj)) = (d.performer, c.as_object_mut()) {
        obj.insert("performer".into(), json!([{"reference": p}]));
    }
    c.to_string()
}
