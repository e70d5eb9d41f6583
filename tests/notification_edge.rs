//! Issue 11: notifications are checked at the edge, before they are stored.
//!
//! Every body of `tests/corpus/notifications/` goes through the real route
//! `POST /hooks/fhir/{subscription}` with the subscription's valid secret.
//! `refuse/` must answer 4xx with an OperationOutcome whose
//! `issue.expression` names the element in the case's `.why`, store nothing,
//! and leave an AuditEvent with outcome 4 that holds none of the caller's
//! text; `accept/` must answer 2xx. The rules are FHIR R4 json.html (no
//! duplicate keys, null, empty `{}`/`[]`/`""`, U+0000), datatypes.html (id,
//! date/dateTime/instant with calendar validity and zones), the required
//! value sets, the Subscriptions Backport IG (N6: the status first) and
//! Herald's own (N4/N12 reference reduction: same-origin with
//! `ehr.base_url`; the followed type). The edge check runs before storage,
//! so SQLite is enough.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use actix_web::test;
use serde_json::Value;

use herald::config::Settings;
use herald::db::ehr as store;

use super::support;

const BASE: &str = "https://ehr.example.org/fhir/R4";
const SECRET: &str = "edge-s3cret-value";

struct Case {
    name: String,
    sub: String,
    element: String,
    body: Vec<u8>,
}

fn corpus(kind: &str) -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus/notifications")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let why = std::fs::read_to_string(p.with_extension("why")).unwrap();
            let mut words = why.split_whitespace();
            Case {
                name: p.file_stem().unwrap().to_string_lossy().into_owned(),
                sub: words.next().unwrap().to_string(),
                element: words.next().unwrap().to_string(),
                body: std::fs::read(&p).unwrap(),
            }
        })
        .collect()
}

fn subscription(id: &str, resource_type: &str, style: &str) -> store::EhrSubscription {
    store::EhrSubscription {
        id: id.into(),
        resource_type: resource_type.into(),
        style: style.into(),
        ehr: BASE.into(),
        remote_id: Some(format!("remote-{id}")),
        secret: SECRET.into(),
        status: "active".into(),
        topic: (style == "backport")
            .then(|| "http://example.org/fhir/SubscriptionTopic/appointment-booked".into()),
        last_event: 0,
        last_seen_at: None,
        heartbeat_secs: (style == "backport").then_some(3600),
    }
}

fn stored(c: &mut herald::db::DbConn) -> i64 {
    store::notification_counts(c)
        .unwrap()
        .iter()
        .map(|(_, n)| *n)
        .sum()
}

fn refusals(c: &mut herald::db::DbConn) -> Vec<Value> {
    super::fhir_follow::events_of(c)
        .into_iter()
        .filter(|e| e["outcome"] == "4")
        .collect()
}

/// Text the refused bodies carry that must never reach the audit log.
const CALLER_TEXT: &[&str] = &[
    "evil.example",
    "Apointment",
    "DROP",
    "histroy",
    "prescription",
    "acepted",
    "2026-02-30",
    "24:61",
];

fn names(oo: &Value) -> Vec<String> {
    oo["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|i| {
            i["expression"]
                .as_array()
                .into_iter()
                .flatten()
                .chain(i["location"].as_array().into_iter().flatten())
                .filter_map(|e| e.as_str().map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[actix_web::test]
async fn the_corpus_is_refused_and_accepted_at_the_edge() {
    // The check is before storage, but the refusal's AuditEvent and the
    // accepted notification are stored: both backends.
    for db in support::backends() {
        corpus_on(db).await;
    }
}

async fn corpus_on(db: support::TestDb) {
    let (ring, _) = support::ready(&db);
    let mut c = db.conn();
    for s in [
        subscription("appt", "Appointment", "r4"),
        subscription("meds", "MedicationRequest", "r4"),
        subscription("bp-appt", "Appointment", "backport"),
    ] {
        store::insert_subscription(&mut c, &ring, &s, support::now()).unwrap();
    }
    let mut settings = Settings::default();
    settings.ehr.base_url = Some(BASE.into());
    let state = herald::web::AppState::new(
        Arc::new(settings),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    let app = test::init_service(herald::web::app(state)).await;
    let post = |sub: &str, body: Vec<u8>| {
        test::TestRequest::post()
            .uri(&format!("/hooks/fhir/{sub}"))
            .insert_header(("content-type", "application/fhir+json"))
            .insert_header(("authorization", format!("Bearer {SECRET}")))
            .set_payload(body)
            .to_request()
    };

    let refuse = corpus("refuse");
    let accept = corpus("accept");
    assert!(
        refuse.len() >= 40 && accept.len() >= 15,
        "the corpus is complete"
    );
    let mut failures = Vec::new();
    let (mut refused, mut refused_named) = (0usize, 0usize);
    for case in &refuse {
        let before = stored(&mut c);
        let audited = refusals(&mut c).len();
        let res = test::call_service(&app, post(&case.sub, case.body.clone())).await;
        let status = res.status().as_u16();
        let body = test::read_body(res).await;
        let oo: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let named = names(&oo);
        // The answer names elements; it never repeats the sender's values.
        let text = String::from_utf8_lossy(&body);
        if let Some(t) = CALLER_TEXT.iter().find(|t| text.contains(**t)) {
            failures.push(format!("refuse/{}: the answer repeats {t:?}", case.name));
        }
        let now_stored = stored(&mut c);
        let is_4xx = (400..500).contains(&status) && status != 401 && status != 413;
        if is_4xx && now_stored == before {
            refused += 1;
        }
        let ok = is_4xx
            && now_stored == before
            && oo["resourceType"] == "OperationOutcome"
            && named.iter().any(|n| n == &case.element)
            && refusals(&mut c).len() > audited;
        if ok {
            refused_named += 1;
        } else {
            failures.push(format!(
                "refuse/{}: {status}, stored {}, named {named:?} (want {})",
                case.name,
                now_stored - before,
                case.element
            ));
        }
    }
    let mut accepted = 0usize;
    for case in &accept {
        let res = test::call_service(&app, post(&case.sub, case.body.clone())).await;
        let status = res.status().as_u16();
        if res.status().is_success() {
            accepted += 1;
        } else {
            let body = test::read_body(res).await;
            let oo: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            failures.push(format!(
                "accept/{}: {status} {:?} {}",
                case.name,
                names(&oo),
                oo["issue"][0]["diagnostics"]
            ));
        }
    }
    println!(
        "notification corpus on {}: refused {refused}/{} (4xx, nothing stored), refused naming the element {refused_named}/{}, accepted {accepted}/{}",
        db.backend,
        refuse.len(),
        refuse.len(),
        accept.len()
    );
    // No caller text in the audit log (issue 11 F6c).
    let log = serde_json::to_string(&super::fhir_follow::events_of(&mut c)).unwrap();
    for t in CALLER_TEXT {
        if log.contains(t) {
            failures.push(format!("the audit log holds caller text {t:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
