//! Issue 11 item 3, the SMS webhooks under attack (security review F6, F8a):
//! a carrier opt-out commits with its status and its AuditEvent or not at
//! all; a replayed signed text changes nothing whatever its unsigned headers
//! say; what unauthenticated callers send never reaches the audit log
//! verbatim.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::test as atest;
use serde_json::Value;

use herald::clock::Clock as _;
use herald::config::Settings;
use herald::crypto::normalize_phone;
use herald::db::{consents, outbox};
use herald::domain::Channel;
use herald::domain::consent::{self, DenyReason, Verdict};
use herald::providers::MemorySender;
use herald::service::send;
use herald::web::{AppState, app, hooks};

use super::support::{self, TestDb};

const PUBLIC: &str = "https://herald.example.org";
const TOKEN: &str = "webhook-guard-token";
const STATUS: &str = "/hooks/sms/twilio/status";
const PHONE: &str = "+12125550188";
const PATIENT: &str = "p-hook";

fn settings() -> Settings {
    let env = BTreeMap::from([
        ("HERALD_SERVER__PUBLIC_URL".to_string(), PUBLIC.to_string()),
        ("HERALD_SMS__AUTH_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    Settings::load(None, &env).unwrap()
}

fn sign(path: &str, form: &[(&str, &str)]) -> String {
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    hooks::twilio_signature(TOKEN, &format!("{PUBLIC}{path}"), &params).expect("token set")
}

/// A signed form POST to `path`.
fn signed(path: &str, form: &[(&str, &str)]) -> atest::TestRequest {
    atest::TestRequest::post()
        .uri(path)
        .set_form(form)
        .insert_header(("X-Twilio-Signature", sign(path, form)))
}

struct Fixture {
    ring: Arc<herald::crypto::KeyRing>,
    clock: Arc<herald::clock::FixedClock>,
    state: AppState,
}

/// A patient with SMS consent on `PHONE`, and the app.
fn fixture(db: &TestDb) -> Fixture {
    let (ring, _) = support::ready(db);
    let ring = Arc::new(ring);
    let clock = Arc::new(support::clock());
    super::channels::patient(
        db,
        &ring,
        PATIENT,
        Some(PHONE),
        None,
        "en-US",
        &[(Channel::Sms, PHONE)],
    );
    support::clinician(db, &ring);
    let state = AppState::new(
        Arc::new(settings()),
        db.pool.clone(),
        Arc::clone(&ring),
        clock.clone(),
    );
    Fixture { ring, clock, state }
}

/// Sends one message to the patient; returns (intent id, provider id).
fn sent_message(db: &TestDb, f: &Fixture, n: u32) -> (String, String) {
    let sender = MemorySender::default();
    let parts = support::Parts::new();
    let ctx = parts.ctx(&f.ring, f.clock.as_ref(), &sender);
    let mut c = db.conn();
    let id = super::channels::intent_with(&mut c, PATIENT, n);
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert!(
        r.iter()
            .any(|x| x.intent_id == id && matches!(x.outcome, send::SendOutcome::Sent { .. })),
        "{r:?}"
    );
    let provider_ref = outbox::get(&mut c, &id)
        .unwrap()
        .unwrap()
        .provider_ref
        .unwrap();
    (id, provider_ref)
}

fn verdict(db: &TestDb, f: &Fixture) -> Verdict {
    let entries = consents::entries_for(&mut db.conn(), PATIENT).unwrap();
    let idx = f.ring.blind_index("phone", &normalize_phone(PHONE));
    consent::decide(
        &entries,
        Channel::Sms,
        herald::domain::Purpose::Appointment,
        &idx,
        f.clock.now(),
    )
}

fn events(db: &TestDb) -> Vec<Value> {
    super::fhir_follow::events_of(&mut db.conn())
}

/// The AuditEvents that name `reference` as an entity.
fn naming(db: &TestDb, reference: &str) -> Vec<Value> {
    events(db)
        .into_iter()
        .filter(|e| {
            e["entity"]
                .as_array()
                .is_some_and(|es| es.iter().any(|x| x["what"]["reference"] == reference))
        })
        .collect()
}

fn carrier_stop(provider_ref: &str) -> Vec<(&str, &str)> {
    vec![
        ("MessageSid", provider_ref),
        ("MessageStatus", "undelivered"),
        ("ErrorCode", "21610"),
        ("AccountSid", "AC00000000000000000000000000000001"),
    ]
}

/// F6a: a 21610 callback writes the carrier's opt-out to the ledger with its
/// AuditEvent, and the status with it.
#[actix_web::test]
async fn a_carrier_stop_is_recorded_with_its_audit_event() {
    for db in support::backends() {
        let f = fixture(&db);
        let app = atest::init_service(app(f.state.clone())).await;
        let (intent, sid) = sent_message(&db, &f, 1);
        let form = carrier_stop(&sid);
        let res = atest::call_service(&app, signed(STATUS, &form).to_request()).await;
        assert_eq!(res.status().as_u16(), 204, "{}", db.backend);
        let row = outbox::get(&mut db.conn(), &intent).unwrap().unwrap();
        assert_eq!(row.delivery_status.as_deref(), Some("undelivered"));
        assert_eq!(row.error_code.as_deref(), Some("21610"));
        assert!(
            matches!(
                verdict(&db, &f),
                Verdict::Deny {
                    reason: DenyReason::OptedOut,
                    ..
                }
            ),
            "{}",
            db.backend
        );
        let id = herald::service::delivery::carrier_opt_out_id(&intent);
        let audited = naming(&db, &format!("Consent/{id}"));
        assert_eq!(audited.len(), 1, "{}: {audited:?}", db.backend);
        assert!(
            audited[0]["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == format!("Patient/{PATIENT}"))
        );
        // Twilio's retry of the same callback records nothing twice.
        let res = atest::call_service(&app, signed(STATUS, &form).to_request()).await;
        assert_eq!(res.status().as_u16(), 204);
        let rows = consents::entries_for(&mut db.conn(), PATIENT).unwrap();
        assert_eq!(rows.iter().filter(|e| e.consent_id == id).count(), 1);
        assert_eq!(naming(&db, &format!("Consent/{id}")).len(), 1);
    }
}

/// F6a: when the ledger write fails, nothing of the callback is kept (503),
/// so Twilio's retry still records the opt-out.
#[actix_web::test]
async fn a_carrier_stop_survives_a_failed_first_attempt() {
    for db in support::backends() {
        let f = fixture(&db);
        let app = atest::init_service(app(f.state.clone())).await;
        let (intent, sid) = sent_message(&db, &f, 1);
        let form = carrier_stop(&sid);
        // The ledger refuses writes for the first attempt.
        if db.backend == "sqlite" {
            db.raw(
                "CREATE TRIGGER consents_fail BEFORE INSERT ON consents \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            );
        } else {
            db.raw(
                "CREATE FUNCTION consents_fail() RETURNS trigger AS $$ \
                 BEGIN RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
                 CREATE TRIGGER consents_fail BEFORE INSERT ON consents \
                 FOR EACH ROW EXECUTE FUNCTION consents_fail();",
            );
        }
        let res = atest::call_service(&app, signed(STATUS, &form).to_request()).await;
        assert_eq!(res.status().as_u16(), 503, "{}", db.backend);
        let row = outbox::get(&mut db.conn(), &intent).unwrap().unwrap();
        assert_eq!(
            row.delivery_status, None,
            "{}: the status committed without the opt-out",
            db.backend
        );
        if db.backend == "sqlite" {
            db.raw("DROP TRIGGER consents_fail;");
        } else {
            db.raw("DROP TRIGGER consents_fail ON consents; DROP FUNCTION consents_fail();");
        }
        // Twilio retries.
        let res = atest::call_service(&app, signed(STATUS, &form).to_request()).await;
        assert_eq!(res.status().as_u16(), 204, "{}", db.backend);
        assert!(
            matches!(
                verdict(&db, &f),
                Verdict::Deny {
                    reason: DenyReason::OptedOut,
                    ..
                }
            ),
            "{}: the retry lost the carrier's opt-out",
            db.backend
        );
        let id = herald::service::delivery::carrier_opt_out_id(&intent);
        assert_eq!(naming(&db, &format!("Consent/{id}")).len(), 1);
        let row = outbox::get(&mut db.conn(), &intent).unwrap().unwrap();
        assert_eq!(row.delivery_status.as_deref(), Some("undelivered"));
    }
}

const INBOUND: &str = "/hooks/sms/twilio/inbound";

fn text_form<'a>(sid: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", PHONE),
        ("To", "+18005550199"),
        ("Body", body),
    ]
}

fn permitted(v: &Verdict) -> bool {
    matches!(v, Verdict::Permit { .. })
}

/// F8a: the inbound dedupe rests on the signed MessageSid. A captured signed
/// STOP replayed after the patient's START, with another
/// `I-Twilio-Idempotency-Token`, changes nothing; nor does one recorded
/// under an idempotency token before the fix.
#[actix_web::test]
async fn a_replayed_text_with_a_new_idempotency_header_changes_nothing() {
    for db in support::backends() {
        let f = fixture(&db);
        let app = atest::init_service(app(f.state.clone())).await;
        let tick = || f.clock.advance(chrono::Duration::minutes(1));
        let stop = text_form("SMreplay0000000000000000000000001", "STOP");
        tick();
        let res = atest::call_service(
            &app,
            signed(INBOUND, &stop)
                .insert_header(("I-Twilio-Idempotency-Token", "captured-token-1"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200, "{}", db.backend);
        assert!(!permitted(&verdict(&db, &f)));
        let start = text_form("SMreplay0000000000000000000000002", "START");
        tick();
        let res = atest::call_service(&app, signed(INBOUND, &start).to_request()).await;
        assert_eq!(res.status().as_u16(), 200);
        assert!(permitted(&verdict(&db, &f)), "{}", db.backend);
        let rows = consents::entries_for(&mut db.conn(), PATIENT)
            .unwrap()
            .len();
        // The attacker replays the captured STOP with a fresh header.
        for token in ["captured-token-2", "anything-else"] {
            tick();
            let res = atest::call_service(
                &app,
                signed(INBOUND, &stop)
                    .insert_header(("I-Twilio-Idempotency-Token", token))
                    .to_request(),
            )
            .await;
            assert_eq!(res.status().as_u16(), 200);
        }
        assert!(
            permitted(&verdict(&db, &f)),
            "{}: a replayed STOP opted the patient out again",
            db.backend
        );
        assert_eq!(
            consents::entries_for(&mut db.conn(), PATIENT)
                .unwrap()
                .len(),
            rows
        );
        let replays = events(&db)
            .iter()
            .filter(|e| e.to_string().contains("replay ignored"))
            .count();
        assert_eq!(replays, 2, "{}", db.backend);

        // A text recorded under an idempotency token before the fix is found
        // by its MessageSid.
        herald::db::inbound::insert(
            &mut db.conn(),
            &f.ring,
            &herald::db::inbound::NewInbound {
                dedupe_key: "token:legacy-token",
                provider: "twilio",
                message_ref: "SMlegacy000000000000000000000003",
                patient_id: Some(PATIENT),
                reading: "stop",
                body: "STOP",
                received_at: f.clock.now(),
                due_by: None,
            },
        )
        .unwrap();
        let legacy = text_form("SMlegacy000000000000000000000003", "STOP");
        tick();
        let res = atest::call_service(&app, signed(INBOUND, &legacy).to_request()).await;
        assert_eq!(res.status().as_u16(), 200);
        assert!(permitted(&verdict(&db, &f)), "{}", db.backend);

        // A signed text without a MessageSid has nothing to be deduplicated
        // on: refused.
        let no_sid: Vec<(&str, &str)> = text_form("", "STOP")
            .into_iter()
            .filter(|(k, _)| *k != "MessageSid")
            .collect();
        let res = atest::call_service(&app, signed(INBOUND, &no_sid).to_request()).await;
        assert_eq!(res.status().as_u16(), 400);
        assert!(permitted(&verdict(&db, &f)));
    }
}

/// Every AuditEvent as text, with each query entity's base64 decoded.
fn log_text(db: &TestDb) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for e in events(db) {
        out.push_str(&e.to_string());
        for x in e["entity"].as_array().into_iter().flatten() {
            if let Some(q) = x["query"].as_str() {
                let plain = base64::engine::general_purpose::STANDARD.decode(q).unwrap();
                out.push_str(&String::from_utf8_lossy(&plain));
            }
        }
        out.push('\n');
    }
    out
}

/// F6c: what an unauthenticated caller writes never enters the append-only
/// log verbatim — an unsigned text's MessageSid, an unknown subscription in a
/// FHIR hook's URL — and the request id stored is Herald's own.
#[actix_web::test]
async fn unsigned_callers_leave_no_text_of_theirs_in_the_audit_log() {
    for db in support::backends() {
        let f = fixture(&db);
        let app = atest::init_service(app(f.state.clone())).await;
        let planted = "SMJaneDoeHasHIVcallher2125550100";
        let form = text_form(planted, "START");
        for sig in [None, Some("bm90IGEgc2lnbmF0dXJl")] {
            let mut r = atest::TestRequest::post().uri(INBOUND).set_form(&form);
            if let Some(s) = sig {
                r = r.insert_header(("X-Twilio-Signature", s));
            }
            let res = atest::call_service(&app, r.to_request()).await;
            assert_eq!(res.status().as_u16(), 403);
        }
        let hook = "/hooks/fhir/JaneDoeHasHIV";
        let res = atest::call_service(
            &app,
            atest::TestRequest::post()
                .uri(hook)
                .insert_header(("content-type", "application/fhir+json"))
                .set_payload("{}")
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 401);
        let log = log_text(&db);
        assert!(
            !log.contains("JaneDoe"),
            "{}: caller text in the audit log:\n{log}",
            db.backend
        );
        let refused: Vec<&str> = log.lines().filter(|l| l.contains("refused:")).collect();
        assert_eq!(refused.len(), 3, "{log}");
        assert!(refused.iter().all(|l| l.contains("hmac:")), "{log}");
        // The same text maps to the same value, so refusals can be correlated.
        let id = f.ring.untrusted_ref("provider-message", planted);
        assert_eq!(log.matches(&id).count(), 2);
    }
}

/// F6c: `?patient=` is recorded only when it names a patient Herald holds
/// (else as a keyed hash), and so is an id read that finds nothing; every
/// other value in a recorded query is one Herald vetted.
#[actix_web::test]
async fn queries_are_recorded_only_as_far_as_herald_can_vouch_for_them() {
    for db in support::backends() {
        let f = fixture(&db);
        let app = atest::init_service(app(f.state.clone())).await;
        for uri in [
            "/fhir/Consent?patient=Patient/JaneDoeHasHIV&status=JaneDoe&category=JaneDoe&_format=JaneDoe",
            "/fhir/Communication?patient=JaneDoeHasHIV&_format=JaneDoe",
            "/fhir/Communication?subject=Patient/JaneDoeHasHIV",
            "/fhir/Consent/JaneDoeHasHIV",
            "/fhir/Consent/JaneDoeHasHIV/_history",
            "/fhir/Communication/JaneDoeHasHIV",
        ] {
            let res = atest::call_service(
                &app,
                support::as_clinician(atest::TestRequest::get())
                    .uri(uri)
                    .to_request(),
            )
            .await;
            assert!(
                [200, 404].contains(&res.status().as_u16()),
                "{uri}: {}",
                res.status()
            );
        }
        let log = log_text(&db);
        assert!(
            !log.contains("JaneDoe"),
            "{}: caller text in the audit log:\n{log}",
            db.backend
        );
        assert_eq!(
            log.lines().filter(|l| l.contains("hmac:")).count(),
            6,
            "{log}"
        );
        // A patient Herald holds is named, in the query and as the patient.
        let before = events(&db).len();
        let res = atest::call_service(
            &app,
            support::as_clinician(atest::TestRequest::get())
                .uri(&format!(
                    "/fhir/Consent?patient=Patient/{PATIENT}&status=active&_count=5"
                ))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        let after = events(&db);
        let rec = after.get(before).unwrap();
        assert!(
            rec["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == format!("Patient/{PATIENT}")),
            "{rec}"
        );
        let log = log_text(&db);
        assert!(
            log.contains(&format!("patient=Patient/{PATIENT}&status=active&_count=5")),
            "{log}"
        );
    }
}

/// F6c: the request id stored with an AuditEvent, and sent back, is always
/// Herald's own; a caller's is never adopted.
#[actix_web::test]
async fn the_request_id_is_always_herald_s_own() {
    let db = support::sqlite();
    let f = fixture(&db);
    let app = atest::init_service(app(f.state.clone())).await;
    for theirs in [
        "JaneDoeHasHIV",
        "0f1e2d3c-4b5a-4968-8776-655443322110",
        "0f1e2d3c4b5a49688776655443322110",
    ] {
        let res = atest::call_service(
            &app,
            support::as_clinician(atest::TestRequest::get())
                .uri(&format!("/fhir/Consent?patient=Patient/{PATIENT}"))
                .insert_header(("x-request-id", theirs))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        let ours = res
            .headers()
            .get("x-request-id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert_ne!(ours, theirs);
        assert!(uuid::Uuid::try_parse(&ours).is_ok(), "{ours}");
        let last = events(&db).pop().unwrap();
        let stored: Vec<&Value> = last["entity"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["type"]["code"] == "XrequestId")
            .map(|x| &x["what"]["identifier"]["value"])
            .collect();
        assert_eq!(stored, [&Value::String(ours)], "{last}");
    }
    assert!(!log_text(&db).contains("JaneDoe"));
}
