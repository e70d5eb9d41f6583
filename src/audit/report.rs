//! `herald audit report`: who accessed or sent what, when, why and with what
//! outcome, for a breach investigation — one line per AuditEvent about a
//! patient or by a user. The lines are read from the stored AuditEvent JSON
//! (what the chain protects), never from anything else.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use serde_json::{Value, json};

use crate::db::audit_store::AuditRow;

/// One event, as a report shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// AuditEvent.recorded (RFC 3339, UTC).
    pub recorded: String,
    /// The requesting agent (`user:<id>`, `herald`, `anonymous`).
    pub who: String,
    /// The requesting agent's network address, when recorded.
    pub address: Option<String>,
    /// action (C, R, U, D, E).
    pub action: String,
    /// The interaction: subtype code (read, search-type, disclose, …).
    pub what: String,
    /// The data entity (Appointment/…, Consent/…), or the identifier of an
    /// intent or provider message.
    pub entity: Option<String>,
    /// The query of a search, decoded.
    pub query: Option<String>,
    /// The channel of a disclosure or consent decision.
    pub channel: Option<String>,
    /// The patient.
    pub patient: Option<String>,
    /// Why: purposeOfEvent and the agent's purposeOfUse codes.
    pub purpose: Vec<String>,
    /// outcome (0, 4, 8, 12).
    pub outcome: String,
    /// outcomeDesc, for a failure.
    pub outcome_desc: Option<String>,
    /// AuditEvent.id.
    pub id: String,
}

fn codes(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|cc| cc["coding"].as_array().into_iter().flatten())
        .filter_map(|c| c["code"].as_str().map(String::from))
        .collect()
}

/// Reads one stored row.
pub fn line_of(row: &AuditRow) -> Line {
    let ev: Value = serde_json::from_str(&row.resource).unwrap_or(Value::Null);
    let requestor = ev["agent"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["requestor"] == true))
        .cloned()
        .unwrap_or(Value::Null);
    let mut purpose = codes(&ev["purposeOfEvent"]);
    purpose.extend(codes(&requestor["purposeOfUse"]));
    let entities: Vec<&Value> = ev["entity"].as_array().into_iter().flatten().collect();
    let query = entities.iter().find_map(|e| {
        use base64::Engine as _;
        let q = e["query"].as_str()?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(q).ok()?;
        String::from_utf8(bytes).ok()
    });
    let entity = row.entity_ref.clone().or_else(|| {
        entities
            .iter()
            .filter(|e| e["type"]["code"] != "XrequestId")
            .find_map(|e| {
                let id = &e["what"]["identifier"];
                Some(format!(
                    "{}|{}",
                    id["system"].as_str()?,
                    id["value"].as_str()?
                ))
            })
    });
    let channel = entities.iter().find_map(|e| {
        e["detail"]
            .as_array()?
            .iter()
            .find(|d| d["type"] == "channel")
            .and_then(|d| d["valueString"].as_str().map(String::from))
    });
    Line {
        recorded: row
            .recorded
            .and_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        who: row.agent_who.clone().unwrap_or_else(|| "-".into()),
        // Herald's own client records "herald" as its address; say only real ones.
        address: requestor["network"]["address"]
            .as_str()
            .filter(|a| *a != "herald")
            .map(String::from),
        action: row.action.clone(),
        what: row
            .subtype_code
            .clone()
            .unwrap_or_else(|| row.type_code.clone()),
        entity,
        query,
        channel,
        patient: row.patient_ref.clone(),
        purpose,
        outcome: row.outcome.clone(),
        outcome_desc: ev["outcomeDesc"].as_str().map(String::from),
        id: row.id.clone(),
    }
}

/// Makes a value safe for one text line (no control characters).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// One text line: time, who, action/interaction, what, patient, why, outcome, id.
pub fn text(l: &Line) -> String {
    let opt = |v: &Option<String>| v.as_deref().map(one_line).unwrap_or_else(|| "-".into());
    let who = match &l.address {
        Some(a) => format!("{}@{}", l.who, a),
        None => l.who.clone(),
    };
    let mut what = opt(&l.entity);
    if let Some(q) = &l.query {
        what = format!("query {}", one_line(q));
    }
    if let Some(c) = &l.channel {
        what.push_str(&format!(" via {c}"));
    }
    let purpose = if l.purpose.is_empty() {
        "-".to_string()
    } else {
        l.purpose.join(",")
    };
    let outcome = match &l.outcome_desc {
        Some(d) => format!("{} ({})", l.outcome, one_line(d)),
        None => l.outcome.clone(),
    };
    format!(
        "{}  {}  {} {}  {}  patient={}  purpose={}  outcome={}  AuditEvent/{}",
        l.recorded,
        one_line(&who),
        l.action,
        l.what,
        what,
        opt(&l.patient),
        purpose,
        outcome,
        l.id
    )
}

/// One NDJSON object with the same fields.
pub fn json(l: &Line) -> Value {
    json!({
        "recorded": l.recorded,
        "who": l.who,
        "address": l.address,
        "action": l.action,
        "what": l.what,
        "entity": l.entity,
        "query": l.query,
        "channel": l.channel,
        "patient": l.patient,
        "purpose": l.purpose,
        "outcome": l.outcome,
        "outcomeDesc": l.outcome_desc,
        "id": l.id,
    })
}

/// Whose events a report lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// Every event about this patient (logical id, or `Patient/id`).
    Patient(String),
    /// Every event this agent requested: a staff user id, or `herald`,
    /// `anonymous`, or a stored `user:<id>` value.
    User(String),
}

/// How a report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportFormat {
    /// One line per event ([`text`]).
    Text,
    /// One JSON object per line ([`fn@json`]).
    Ndjson,
}

/// The search a report runs: the subject's events recorded in [since, until),
/// oldest first.
pub fn query_for(
    subject: &Subject,
    since: Option<chrono::NaiveDateTime>,
    until: Option<chrono::NaiveDateTime>,
) -> crate::db::audit_store::AuditQuery {
    use crate::db::audit_store::{AuditQuery, DateBound, Field, Filter};
    let filter = match subject {
        Subject::Patient(p) => Filter {
            field: Field::Patient,
            any_of: vec![format!("Patient/{}", p.trim_start_matches("Patient/"))],
        },
        Subject::User(u) => {
            let who = if u.starts_with("user:") || u == "herald" || u == "anonymous" {
                u.clone()
            } else {
                format!("user:{u}")
            };
            Filter {
                field: Field::Agent,
                any_of: vec![who],
            }
        }
    };
    let mut dates = Vec::new();
    dates.extend(since.map(DateBound::Ge));
    dates.extend(until.map(DateBound::Lt));
    AuditQuery {
        filters: vec![filter],
        dates,
        descending: false,
        cursor: None,
        limit: 1000,
    }
}

/// Writes the report, a page of a thousand events at a time; returns the
/// number of events and of distinct patients they name.
pub fn write(
    conn: &mut crate::db::DbConn,
    q: &crate::db::audit_store::AuditQuery,
    format: ReportFormat,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<(u64, usize)> {
    let mut q = q.clone();
    let mut n = 0u64;
    let mut patients = std::collections::BTreeSet::new();
    loop {
        let page = super::search::run(conn, &q)?;
        for r in &page.rows {
            let l = line_of(r);
            match format {
                ReportFormat::Text => writeln!(out, "{}", text(&l))?,
                ReportFormat::Ndjson => writeln!(out, "{}", json(&l))?,
            }
            if let Some(p) = &l.patient {
                patients.insert(p.clone());
            }
            n += 1;
        }
        match page.next.as_deref().and_then(super::search::parse_cursor) {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    Ok((n, patients.len()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
    use crate::domain::{Channel, Purpose};

    fn row_of(r: &AuditRecord) -> AuditRow {
        let (ev, cols) = super::super::balp::build("e1", r);
        AuditRow {
            seq: 1,
            id: "e1".into(),
            recorded: r.recorded.naive_utc(),
            type_code: cols.type_code,
            subtype_code: cols.subtype_code,
            action: cols.action,
            outcome: cols.outcome,
            patient_ref: cols.patient_ref,
            agent_who: cols.agent_who,
            entity_ref: cols.entity_ref,
            resource: ev.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn check(r: AuditRecord, expect: &str) {
        assert_eq!(text(&line_of(&row_of(&r))), expect);
    }

    fn base(activity: Activity, actor: Actor) -> AuditRecord {
        AuditRecord {
            recorded: chrono::DateTime::from_timestamp(1_796_144_400, 0).unwrap_or_default(),
            activity,
            actor,
            outcome: Outcome::Success,
            outcome_desc: None,
            patient_id: Some("p1".into()),
            request_id: Some("req-1".into()),
            ehr: None,
        }
    }

    #[test]
    fn lines_say_who_what_when_why_and_outcome() {
        check(
            base(
                Activity::Disclosure {
                    intent_id: "i1".into(),
                    channel: Channel::Sms,
                    purpose: Purpose::Appointment,
                    about: "Appointment/a1".into(),
                },
                Actor::System,
            ),
            "2026-12-01T17:00:00.000000Z  herald  R disclose  Appointment/a1 via sms  patient=Patient/p1  purpose=TREAT  outcome=0  AuditEvent/e1",
        );
        check(
            base(
                Activity::AuditQuery {
                    query: "patient=Patient/p1".into(),
                },
                Actor::Anonymous("127.0.0.1".into()),
            ),
            "2026-12-01T17:00:00.000000Z  anonymous@127.0.0.1  E search-type  query AuditEvent?patient=Patient/p1  patient=Patient/p1  purpose=-  outcome=0  AuditEvent/e1",
        );
        let mut failed = base(
            Activity::ConsentDecision {
                intent_id: "i1".into(),
                channel: Channel::Email,
                purpose: Purpose::Marketing,
                permit: false,
                consent_id: None,
            },
            Actor::Staff("alice".into()),
        );
        failed.outcome = Outcome::MinorFailure;
        failed.outcome_desc = Some("no consent\nfor email".into());
        check(
            failed,
            "2026-12-01T17:00:00.000000Z  herald  E AuthZ-Consent  urn:herald:intent|i1 via email  patient=Patient/p1  purpose=HMARKT  outcome=4 (no consent for email)  AuditEvent/e1",
        );
    }
}
