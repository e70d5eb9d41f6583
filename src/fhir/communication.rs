//! Each outbound message as a FHIR R4 Communication (issue 4 §8): sent ones
//! `completed`, suppressed or expired ones `not-done` with the reason,
//! failed ones `stopped`. The text itself is not included (minimum
//! necessary, messaging.md H9); the delivery status rides in an extension.

use serde_json::{Value, json};

use crate::db::outbox::Intent;

/// The purpose code system Herald uses in Consent and Communication.
pub const PURPOSE_SYSTEM: &str = "https://herald.example.org/fhir/CodeSystem/message-purpose";
/// Extension carrying the provider's delivery status (Twilio's words, W3).
pub const EXT_DELIVERY: &str =
    "https://herald.example.org/fhir/StructureDefinition/communication-delivery-status";

/// FHIR `Communication.status` for an outbox state.
pub fn status_of(state: &str) -> &'static str {
    match state {
        "sent" => "completed",
        "suppressed" | "expired" | "withdrawn" => "not-done",
        "failed" => "stopped",
        "leased" => "in-progress",
        _ => "preparation",
    }
}

/// Outbox states for a FHIR status search value.
pub fn states_for(status: &str) -> Option<&'static [&'static str]> {
    Some(match status {
        "completed" => &["sent"],
        "not-done" => &["suppressed", "expired"],
        "stopped" => &["failed"],
        _ => return None,
    })
}

/// `reminder` for reminders, `notification` for everything else.
pub fn category_of(kind: &str) -> &'static str {
    if kind.starts_with("reminder-") || kind == "medication-refill-reminder" {
        "reminder"
    } else {
        "notification"
    }
}

fn instant(t: chrono::NaiveDateTime) -> String {
    t.and_utc()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The Communication for one intent.
pub fn communication(i: &Intent) -> Value {
    let mut c = json!({
        "resourceType": "Communication",
        "id": i.id,
        "meta": { "lastUpdated": instant(i.updated_at) },
        "identifier": [{ "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", i.id) }],
        "status": status_of(&i.state),
        "category": [
            { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/communication-category", "code": category_of(&i.kind) }] },
            { "coding": [{ "system": PURPOSE_SYSTEM, "code": i.purpose }] }
        ],
        "subject": { "reference": format!("Patient/{}", i.patient_id) },
        "recipient": [{ "reference": format!("Patient/{}", i.patient_id) }],
        "about": [{ "reference": i.about }],
    });
    let Some(obj) = c.as_object_mut() else {
        return c;
    };
    if let Some(reason) = &i.reason
        && i.state != "sent"
    {
        obj.insert("statusReason".into(), json!({ "text": reason }));
    }
    if let Some(ch) = &i.channel {
        let (code, display) = match ch.as_str() {
            "sms" => ("SMSWRIT", "SMS writing"),
            "email" => ("EMAILWRIT", "email"),
            _ => ("PHONE", "telephone"),
        };
        obj.insert(
            "medium".into(),
            json!([{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode", "code": code, "display": display }] }]),
        );
    }
    if let Some(sent) = i.sent_at {
        obj.insert("sent".into(), json!(instant(sent)));
    }
    if let Some(d) = &i.delivery_status {
        obj.insert(
            "extension".into(),
            json!([{ "url": EXT_DELIVERY, "valueCode": d }]),
        );
    }
    c
}
