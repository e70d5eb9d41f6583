//! Builds FHIR R4 AuditEvent JSON from a domain [`AuditRecord`], following the
//! IHE Basic Audit Log Patterns (reference/fhir.md §1.4 A1–A11). The one place
//! that knows AuditEvent's shape.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use serde_json::{Value, json};

use crate::domain::audit::{Activity, Actor, AuditRecord, AuthEvent};
use crate::domain::{Channel, Purpose};

const DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const AUDIT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL: &str = "http://hl7.org/fhir/restful-interaction";
const LIFECYCLE: &str = "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle";
const AUTHZ_SUBTYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/AuthZsubType";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const BALP_ENTITY: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
/// The identifier system of Herald itself as an agent.
pub const HERALD_SYSTEM: &str = "urn:herald:system";
/// The identifier system of Herald's staff users as agents.
pub const HERALD_USER: &str = "urn:herald:user";
const HERALD_ATTEMPT: &str = "urn:herald:attempted-user";
const HERALD_GRANT: &str = "urn:herald:break-glass";
const SECURITY_ROLE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";

/// Every (system, code) Herald writes as `AuditEvent.type`: a token search
/// with a system resolves against this list (the column keeps the code only).
/// A unit test checks that [`build`] writes nothing else.
pub const TYPE_CODINGS: &[(&str, &str)] = &[
    (AUDIT_TYPE, "rest"),
    (DCM, "110106"),
    (DCM, "110113"),
    (DCM, "110114"),
];

/// Every (system, code) Herald writes as `AuditEvent.subtype`.
pub const SUBTYPE_CODINGS: &[(&str, &str)] = &[
    (RESTFUL, "read"),
    (RESTFUL, "vread"),
    (RESTFUL, "search-type"),
    (RESTFUL, "create"),
    (RESTFUL, "update"),
    (RESTFUL, "operation"),
    (LIFECYCLE, "disclose"),
    (AUTHZ_SUBTYPE, "AuthZ-Consent"),
    (DCM, "110122"),
    (DCM, "110123"),
    (DCM, "110137"),
    (DCM, "110127"),
];

/// The search columns derived from a record (stored beside the JSON and
/// re-derived by `herald audit verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    /// type.code
    pub type_code: String,
    /// `subtype[0].code`
    pub subtype_code: Option<String>,
    /// action
    pub action: String,
    /// outcome
    pub outcome: String,
    /// Patient reference.
    pub patient_ref: Option<String>,
    /// Requesting agent.
    pub agent_who: Option<String>,
    /// Data entity reference.
    pub entity_ref: Option<String>,
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({ "system": system, "code": code, "display": display })
}

fn cc(system: &str, code: &str, display: &str) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

fn herald_who() -> Value {
    json!({ "identifier": { "system": HERALD_SYSTEM, "value": "herald" }, "display": "Herald" })
}

fn actor_who(actor: &Actor) -> (Value, String) {
    match actor {
        Actor::System => (herald_who(), "herald".into()),
        Actor::Staff(u) => (
            json!({ "identifier": { "system": HERALD_USER, "value": u } }),
            format!("user:{u}"),
        ),
        Actor::BreakGlass { user: u, .. } => (
            json!({ "identifier": { "system": HERALD_USER, "value": u } }),
            format!("user:{u}"),
        ),
        Actor::UnknownUser(h) => (
            json!({ "identifier": { "system": HERALD_ATTEMPT, "value": h } }),
            format!("attempt:{h}"),
        ),
        Actor::Anonymous(_) => (json!({ "display": "anonymous" }), "anonymous".into()),
        Actor::ApiClient { issuer, client } => (
            json!({ "identifier": { "system": issuer, "value": client } }),
            format!("client:{client}"),
        ),
    }
}

/// Break-glass: purposeOfUse BTG (v3-ActReason).
fn btg() -> Value {
    cc(ACT_REASON, "BTG", "break the glass")
}

/// A person at a keyboard (sign-in, break-glass).
fn user_agent(actor: &Actor) -> Value {
    let mut agent = requestor_agent(actor, ("110150", "Application"));
    agent["type"] = cc(SECURITY_ROLE, "humanuser", "human user");
    agent
}

fn purpose_of_use(p: Purpose) -> Value {
    match p {
        Purpose::Appointment | Purpose::Medication => cc(ACT_REASON, "TREAT", "treatment"),
        Purpose::Billing => cc(ACT_REASON, "HPAYMT", "healthcare payment"),
        Purpose::Marketing => cc(ACT_REASON, "HMARKT", "healthcare marketing"),
    }
}

fn requestor_agent(actor: &Actor, type_code: (&str, &str)) -> Value {
    let (who, _) = actor_who(actor);
    let mut agent = json!({
        "type": cc(DCM, type_code.0, type_code.1),
        "who": who,
        "requestor": true,
    });
    if let (Actor::Anonymous(addr), Some(obj)) = (actor, agent.as_object_mut()) {
        obj.insert("network".into(), json!({ "address": addr, "type": "2" }));
    }
    if let (Actor::BreakGlass { grant, .. }, Some(obj)) = (actor, agent.as_object_mut()) {
        obj.insert("purposeOfUse".into(), json!([btg()]));
        obj.insert("policy".into(), json!([format!("{HERALD_GRANT}:{grant}")]));
    }
    agent
}

fn server_agent(ehr: Option<&str>) -> Value {
    let base = ehr.unwrap_or("urn:herald:unknown-ehr");
    json!({
        "type": cc(DCM, "110153", "Source Role ID"),
        "who": { "identifier": { "system": "urn:ietf:rfc:3986", "value": base } },
        "requestor": false,
        "network": { "address": base, "type": "5" },
    })
}

fn patient_entity(id: &str) -> Value {
    json!({
        "what": { "reference": format!("Patient/{id}") },
        "type": coding(ENTITY_TYPE, "1", "Person"),
        "role": coding(OBJECT_ROLE, "1", "Patient"),
    })
}

fn data_entity(reference: &str, details: Vec<Value>) -> Value {
    let mut e = json!({
        "what": { "reference": reference },
        "type": coding(ENTITY_TYPE, "2", "System Object"),
        "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
    });
    if !details.is_empty()
        && let Some(obj) = e.as_object_mut()
    {
        obj.insert("detail".into(), Value::Array(details));
    }
    e
}

fn query_entity(query: &str) -> Value {
    use base64::Engine as _;
    json!({
        "type": coding(ENTITY_TYPE, "2", "System Object"),
        "role": coding(OBJECT_ROLE, "24", "Query"),
        "query": base64::engine::general_purpose::STANDARD.encode(query.as_bytes()),
    })
}

fn detail(kind: &str, value: &str) -> Value {
    json!({ "type": kind, "valueString": value })
}

fn channel_detail(c: Channel) -> Value {
    detail("channel", c.code())
}

/// Builds the AuditEvent JSON (with `id`) and its search columns.
pub fn build(id: &str, r: &AuditRecord) -> (Value, Columns) {
    let mut agents = Vec::new();
    let mut entities = Vec::new();
    let mut purpose_of_event = None;
    let (type_coding, subtype) = match &r.activity {
        Activity::EhrRead {
            resource_type,
            id: rid,
        } => {
            agents.push(requestor_agent(&r.actor, ("110152", "Destination Role ID")));
            agents.push(server_agent(r.ehr.as_deref()));
            let reference = format!("{resource_type}/{rid}");
            if resource_type != "Patient" {
                entities.push(data_entity(&reference, vec![]));
            }
            (
                coding(AUDIT_TYPE, "rest", "Restful Operation"),
                coding(RESTFUL, "read", "read"),
            )
        }
        Activity::EhrRest {
            interaction,
            resource_type,
            id: rid,
            query,
            token_jti,
        } => {
            // A3: read and query — Herald is the Destination, the EHR the
            // Source; create and update — the reverse.
            let (ours, theirs) = if interaction.writes() {
                (
                    ("110153", "Source Role ID"),
                    ("110152", "Destination Role ID"),
                )
            } else {
                (
                    ("110152", "Destination Role ID"),
                    ("110153", "Source Role ID"),
                )
            };
            let mut client = requestor_agent(&r.actor, ours);
            if let Some(obj) = client.as_object_mut() {
                obj.insert(
                    "network".into(),
                    json!({ "address": "herald", "type": "1" }),
                );
                if let Some(j) = token_jti {
                    // A6: the token's jti, never the token.
                    obj.insert(
                        "policy".into(),
                        json!([format!("urn:ietf:params:oauth:jti:{j}")]),
                    );
                }
            }
            agents.push(client);
            let mut server = server_agent(r.ehr.as_deref());
            server["type"] = cc(DCM, theirs.0, theirs.1);
            agents.push(server);
            if let Some(rid) = rid
                && resource_type != "Patient"
            {
                entities.push(data_entity(&format!("{resource_type}/{rid}"), vec![]));
            }
            if let Some(q) = query {
                entities.push(query_entity(&format!("{resource_type}?{q}")));
            }
            let code = interaction.code();
            (
                coding(AUDIT_TYPE, "rest", "Restful Operation"),
                coding(RESTFUL, code, code),
            )
        }
        Activity::Disclosure {
            intent_id,
            channel,
            purpose,
            about,
        } => {
            agents.push(json!({
                "type": cc(DCM, "110153", "Source Role ID"),
                "who": herald_who(),
                "requestor": true,
            }));
            if let Some(p) = &r.patient_id {
                agents.push(json!({
                    "type": cc(PARTICIPATION, "IRCP", "information recipient"),
                    "who": { "reference": format!("Patient/{p}") },
                    "requestor": false,
                }));
            }
            purpose_of_event = Some(purpose_of_use(*purpose));
            entities.push(data_entity(
                about,
                vec![channel_detail(*channel), detail("intent", intent_id)],
            ));
            (
                coding(DCM, "110106", "Export"),
                coding(LIFECYCLE, "disclose", "Disclose Record Lifecycle Event"),
            )
        }
        Activity::ConsentDecision {
            intent_id,
            channel,
            purpose,
            permit,
            consent_id,
        } => {
            agents.push(json!({
                "type": cc(DCM, "110150", "Application"),
                "who": herald_who(),
                "requestor": true,
            }));
            purpose_of_event = Some(purpose_of_use(*purpose));
            let decision = if *permit { "permit" } else { "deny" };
            if let Some(c) = consent_id {
                let reference = format!("Consent/{c}");
                entities.push(data_entity(&reference, vec![detail("decision", decision)]));
            }
            entities.push(json!({
                "what": { "identifier": { "system": "urn:herald:intent", "value": intent_id } },
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "3", "Report"),
                "detail": [channel_detail(*channel), detail("purpose", purpose.code()), detail("decision", decision)],
            }));
            (
                coding(DCM, "110113", "Security Alert"),
                coding(
                    AUTHZ_SUBTYPE,
                    "AuthZ-Consent",
                    "Authorization Decision using Roles and Consent",
                ),
            )
        }
        Activity::ConsentRecorded { consent_id } => {
            agents.push(requestor_agent(&r.actor, ("110153", "Source Role ID")));
            let reference = format!("Consent/{consent_id}");
            entities.push(data_entity(&reference, vec![]));
            (
                coding(AUDIT_TYPE, "rest", "Restful Operation"),
                coding(RESTFUL, "create", "create"),
            )
        }
        Activity::InboundMessage {
            message_ref,
            reading,
        } => {
            agents.push(requestor_agent(&r.actor, ("110153", "Source Role ID")));
            agents.push(json!({
                "type": cc(DCM, "110152", "Destination Role ID"),
                "who": herald_who(),
                "requestor": false,
            }));
            entities.push(json!({
                "what": { "identifier": { "system": "urn:herald:provider-message", "value": message_ref } },
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "4", "Domain Resource"),
                "detail": [{ "type": "reading", "valueString": reading }],
            }));
            (
                coding(AUDIT_TYPE, "rest", "Restful Operation"),
                coding(RESTFUL, "create", "create"),
            )
        }
        Activity::AuditQuery { .. } | Activity::RecordQuery { .. } => {
            let q = match &r.activity {
                Activity::RecordQuery {
                    resource_type,
                    query,
                } => format!("{resource_type}?{query}"),
                Activity::AuditQuery { query } => format!("AuditEvent?{query}"),
                _ => String::new(),
            };
            agents.push(requestor_agent(&r.actor, ("110152", "Destination Role ID")));
            agents.push(json!({
                "type": cc(DCM, "110153", "Source Role ID"),
                "who": herald_who(),
                "requestor": false,
            }));
            entities.push(query_entity(&q));
            (
                coding(AUDIT_TYPE, "rest", "Restful Operation"),
                coding(RESTFUL, "search-type", "search type"),
            )
        }
        Activity::UserAuthentication { event, address } => {
            let mut user = user_agent(&r.actor);
            user["network"] = json!({ "address": address, "type": "2" });
            agents.push(user);
            agents.push(json!({
                "type": cc(DCM, "110150", "Application"),
                "who": herald_who(),
                "requestor": false,
            }));
            let sub = match event {
                AuthEvent::Login => coding(DCM, "110122", "Login"),
                AuthEvent::Logout => coding(DCM, "110123", "Logout"),
            };
            (coding(DCM, "110114", "User Authentication"), sub)
        }
        Activity::StaffAccount { user_id, change } => {
            agents.push(requestor_agent(&r.actor, ("110150", "Application")));
            entities.push(json!({
                "what": { "identifier": { "system": HERALD_USER, "value": user_id } },
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "11", "Security User Entity"),
                "detail": [detail("change", change.code())],
            }));
            (
                coding(DCM, "110113", "Security Alert"),
                coding(DCM, "110137", "User Security Attributes Changed"),
            )
        }
        Activity::BreakGlass { grant_id, ends } => {
            agents.push(user_agent(&r.actor));
            agents.push(json!({
                "type": cc(DCM, "110150", "Application"),
                "who": herald_who(),
                "requestor": false,
            }));
            purpose_of_event = Some(btg());
            if let Some(g) = grant_id {
                let mut details = Vec::new();
                if let Some(end) = ends {
                    details.push(detail(
                        "ends",
                        &end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ));
                }
                let mut e = json!({
                    "what": { "identifier": { "system": HERALD_GRANT, "value": g } },
                    "type": coding(ENTITY_TYPE, "2", "System Object"),
                    "role": coding(OBJECT_ROLE, "13", "Security Resource"),
                });
                if !details.is_empty() {
                    e["detail"] = Value::Array(details);
                }
                entities.push(e);
            }
            (
                coding(DCM, "110113", "Security Alert"),
                coding(DCM, "110127", "Emergency Override Started"),
            )
        }
        Activity::PreferenceLink { expires } => {
            agents.push(requestor_agent(&r.actor, ("110153", "Source Role ID")));
            entities.push(json!({
                "what": { "identifier": { "system": "urn:herald:preference-link" } },
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "13", "Security Resource"),
                "detail": [detail("expires", &expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))],
            }));
            (
                coding(AUDIT_TYPE, "rest", "Restful Operation"),
                coding(RESTFUL, "create", "create"),
            )
        }
        Activity::ContactCode {
            code_id,
            channel,
            step,
        } => {
            agents.push(requestor_agent(&r.actor, ("110153", "Source Role ID")));
            entities.push(json!({
                "what": { "identifier": { "system": "urn:herald:contact-code", "value": code_id } },
                "type": coding(ENTITY_TYPE, "2", "System Object"),
                "role": coding(OBJECT_ROLE, "13", "Security Resource"),
                "detail": [channel_detail(*channel), detail("step", step.code())],
            }));
            let sub = match r.action() {
                crate::domain::audit::Action::Create => coding(RESTFUL, "create", "create"),
                _ => coding(RESTFUL, "update", "update"),
            };
            (coding(AUDIT_TYPE, "rest", "Restful Operation"), sub)
        }
    };
    // Whatever a user does under a break-glass grant is marked BTG.
    let mut purposes: Vec<Value> = purpose_of_event.into_iter().collect();
    if matches!(r.actor, Actor::BreakGlass { .. })
        && !purposes.iter().any(|p| p["coding"][0]["code"] == "BTG")
    {
        purposes.push(btg());
    }
    if let Some(p) = &r.patient_id {
        entities.insert(0, patient_entity(p));
    }
    if let Some(req) = &r.request_id {
        entities.push(json!({
            "what": { "identifier": { "value": req } },
            "type": coding(BALP_ENTITY, "XrequestId", "X-Request-Id"),
        }));
    }
    let recorded = r
        .recorded
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut ev = json!({
        "resourceType": "AuditEvent",
        "id": id,
        "type": type_coding,
        "subtype": [subtype],
        "action": r.action().code(),
        "recorded": recorded,
        "outcome": r.outcome.code(),
        "agent": agents,
        "source": {
            "site": "herald",
            "observer": herald_who(),
            "type": [coding(SOURCE_TYPE, "4", "Application Server")],
        },
    });
    if let Some(obj) = ev.as_object_mut() {
        if let Some(desc) = &r.outcome_desc {
            obj.insert("outcomeDesc".into(), Value::String(desc.clone()));
        }
        if !purposes.is_empty() {
            obj.insert("purposeOfEvent".into(), Value::Array(purposes));
        }
        if !entities.is_empty() {
            obj.insert("entity".into(), Value::Array(entities));
        }
    }
    let cols = columns_of(&ev).unwrap_or(Columns {
        type_code: String::new(),
        subtype_code: None,
        action: String::new(),
        outcome: String::new(),
        patient_ref: None,
        agent_who: None,
        entity_ref: None,
    });
    (ev, cols)
}

/// Derives the search columns from stored AuditEvent JSON (used by verify).
pub fn columns_of(ev: &Value) -> Option<Columns> {
    let s = |v: &Value| v.as_str().map(String::from);
    let patient_ref = ev["entity"].as_array().and_then(|es| {
        es.iter()
            .find(|e| e["role"]["code"] == "1" && e["type"]["code"] == "1")
            .and_then(|e| s(&e["what"]["reference"]))
    });
    let entity_ref = ev["entity"].as_array().and_then(|es| {
        es.iter()
            .find(|e| e["role"]["code"] == "4")
            .and_then(|e| s(&e["what"]["reference"]))
    });
    let agent_who = ev["agent"].as_array().and_then(|agents| {
        agents.iter().find(|a| a["requestor"] == true).map(|a| {
            let who = &a["who"];
            match (
                who["identifier"]["system"].as_str(),
                who["identifier"]["value"].as_str(),
            ) {
                (Some(HERALD_USER), Some(u)) => format!("user:{u}"),
                (Some(HERALD_ATTEMPT), Some(h)) => format!("attempt:{h}"),
                (Some(HERALD_SYSTEM), Some(v)) => v.to_string(),
                _ => "anonymous".to_string(),
            }
        })
    });
    Some(Columns {
        type_code: s(&ev["type"]["code"])?,
        subtype_code: s(&ev["subtype"][0]["code"]),
        action: s(&ev["action"])?,
        outcome: s(&ev["outcome"])?,
        patient_ref,
        agent_who,
        entity_ref,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{CodeStep, Outcome, RestInteraction};

    fn record(activity: Activity, actor: Actor) -> AuditRecord {
        AuditRecord {
            recorded: chrono::DateTime::UNIX_EPOCH,
            activity,
            actor,
            outcome: Outcome::Success,
            outcome_desc: None,
            patient_id: Some("p1".into()),
            request_id: Some("r1".into()),
            ehr: None,
        }
    }

    /// The search resolves `system|code` through TYPE_CODINGS and
    /// SUBTYPE_CODINGS: every coding Herald writes must be listed there.
    #[test]
    fn every_written_coding_is_searchable() {
        let mut activities = vec![
            Activity::EhrRead {
                resource_type: "Appointment".into(),
                id: "a1".into(),
            },
            Activity::Disclosure {
                intent_id: "i1".into(),
                channel: Channel::Sms,
                purpose: Purpose::Appointment,
                about: "Appointment/a1".into(),
            },
            Activity::ConsentDecision {
                intent_id: "i1".into(),
                channel: Channel::Sms,
                purpose: Purpose::Appointment,
                permit: true,
                consent_id: Some("c1".into()),
            },
            Activity::ConsentRecorded {
                consent_id: "c1".into(),
            },
            Activity::AuditQuery { query: "x".into() },
            Activity::InboundMessage {
                message_ref: "m1".into(),
                reading: "stop".into(),
            },
            Activity::RecordQuery {
                resource_type: "Communication".into(),
                query: "x".into(),
            },
            Activity::PreferenceLink {
                expires: chrono::DateTime::UNIX_EPOCH,
            },
        ];
        for step in [
            CodeStep::Sent,
            CodeStep::SendFailed,
            CodeStep::Capped,
            CodeStep::Confirmed,
            CodeStep::Wrong,
            CodeStep::Expired,
            CodeStep::Locked,
        ] {
            activities.push(Activity::ContactCode {
                code_id: "k1".into(),
                channel: Channel::Sms,
                step,
            });
        }
        for interaction in [
            RestInteraction::Read,
            RestInteraction::Vread,
            RestInteraction::Search,
            RestInteraction::Create,
            RestInteraction::Update,
            RestInteraction::Operation,
        ] {
            activities.push(Activity::EhrRest {
                interaction,
                resource_type: "Appointment".into(),
                id: Some("a1".into()),
                query: None,
                token_jti: None,
            });
        }
        for a in activities {
            for actor in [
                Actor::System,
                Actor::Staff("u1".into()),
                Actor::Anonymous("127.0.0.1".into()),
            ] {
                let (ev, cols) = build("id1", &record(a.clone(), actor));
                let pair = |v: &Value| {
                    (
                        v["system"].as_str().unwrap_or("").to_string(),
                        v["code"].as_str().unwrap_or("").to_string(),
                    )
                };
                let listed = |list: &[(&str, &str)], (s, c): (String, String)| {
                    list.iter().any(|(ls, lc)| *ls == s && *lc == c)
                };
                assert!(listed(TYPE_CODINGS, pair(&ev["type"])), "{a:?}");
                assert!(listed(SUBTYPE_CODINGS, pair(&ev["subtype"][0])), "{a:?}");
                assert_eq!(columns_of(&ev), Some(cols));
            }
        }
    }
}
