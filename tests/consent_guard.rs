//! Issue 11 item 3, the consent ledger under attack (security review F3,
//! F5): a consent ranks by Herald's clock, never by a time its sender chose;
//! what one Consent may write is bounded; a read finds its row by index.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use actix_web::test as atest;
use serde_json::{Value, json};

use herald::clock::Clock as _;
use herald::config::Settings;
use herald::crypto::normalize_phone;
use herald::db::consents;
use herald::domain::consent::{self, DenyReason, Verdict};
use herald::domain::{Channel, Purpose};
use herald::providers::MemorySender;
use herald::service::ingest;
use herald::web::{AppState, app, hooks};

use super::support::{self, TestDb};

const PUBLIC: &str = "https://herald.example.org";
const TOKEN: &str = "consent-guard-token";
const INBOUND: &str = "/hooks/sms/twilio/inbound";
const PHONE: &str = "+12125550177";
const PATIENT: &str = "p-guard";

fn settings() -> Settings {
    let env = BTreeMap::from([
        ("HERALD_SERVER__PUBLIC_URL".to_string(), PUBLIC.to_string()),
        ("HERALD_SMS__AUTH_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    Settings::load(None, &env).unwrap()
}

/// A signed inbound text from the patient's number.
fn text(sid: &str, body: &str) -> actix_http::Request {
    let form = vec![
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", PHONE),
        ("To", "+18005550199"),
        ("Body", body),
    ];
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    let sig = hooks::twilio_signature(TOKEN, &format!("{PUBLIC}{INBOUND}"), &params);
    atest::TestRequest::post()
        .uri(INBOUND)
        .set_form(&form)
        .insert_header(("X-Twilio-Signature", sig))
        .to_request()
}

/// A permit for the patient's number, by SMS, for appointments.
fn permit(id: Option<&str>, date_time: &str) -> Value {
    let mut c = json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": format!("Patient/{PATIENT}")},
        "dateTime": date_time,
        "policyRule": {"text": "Permit for appointment texts"},
        "provision": {"type": "permit", "extension": [
            {"url": herald::fhir::EXT_CHANNEL, "valueCode": "sms"},
            {"url": herald::fhir::EXT_ADDRESS, "valueString": PHONE}
        ], "purpose": [{"system": "https://herald.example.org/fhir/CodeSystem/message-purpose", "code": "appointment"}]}
    });
    if let Some(id) = id {
        c["id"] = json!(id);
    }
    c
}

fn post_consent(body: &Value) -> actix_http::Request {
    support::as_clinician(atest::TestRequest::post())
        .uri("/fhir/Consent")
        .insert_header(("content-type", "application/fhir+json"))
        .set_payload(body.to_string())
        .to_request()
}

fn verdict(
    db: &TestDb,
    ring: &herald::crypto::KeyRing,
    now: chrono::DateTime<chrono::Utc>,
) -> Verdict {
    let entries = consents::entries_for(&mut db.conn(), PATIENT).unwrap();
    let idx = ring.blind_index("phone", &normalize_phone(PHONE));
    consent::decide(&entries, Channel::Sms, Purpose::Appointment, &idx, now)
}

fn opted_out(v: &Verdict) -> bool {
    matches!(
        v,
        Verdict::Deny {
            reason: DenyReason::OptedOut,
            ..
        }
    )
}

fn ledger_len(db: &TestDb) -> usize {
    consents::entries_for(&mut db.conn(), PATIENT)
        .unwrap()
        .len()
}

/// Everything written through `tracing` while `f` runs.
fn logged<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let out = buf.clone();
    let sub = tracing_subscriber::fmt()
        .with_writer(move || out.clone())
        .with_target(true)
        .with_ansi(false)
        .finish();
    let r = tracing::subscriber::with_default(sub, f);
    let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    (r, text)
}

/// F3 acceptance: a patient who texted STOP stays opted out after a permit
/// dated 2099 through the API (refused, 400 naming Consent.dateTime) and one
/// imported from the EHR (recorded at Herald's time, marked, logged, and
/// unable to lift the STOP); a consent given before the STOP but entered after
/// it does not lift it either; the patient's own START does.
#[actix_web::test]
async fn a_future_dated_permit_never_outranks_a_stop() {
    for db in support::backends() {
        future_dated_permits_on(&db).await;
    }
}

async fn future_dated_permits_on(db: &TestDb) {
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
    let app = atest::init_service(app(state)).await;
    let tick = || clock.advance(chrono::Duration::minutes(1));
    assert!(matches!(
        verdict(db, &ring, clock.now()),
        Verdict::Permit { .. }
    ));

    // The patient texts STOP.
    tick();
    let stop_at = clock.now();
    let res = atest::call_service(&app, text("SMguardstop", "STOP")).await;
    assert_eq!(res.status().as_u16(), 200, "{}", db.backend);
    assert!(
        opted_out(&verdict(db, &ring, clock.now())),
        "{}",
        db.backend
    );
    let rows = ledger_len(db);

    // (a) A permit dated 2099 through the API: refused, nothing written.
    tick();
    let res = atest::call_service(&app, post_consent(&permit(None, "2099-01-01T00:00:00Z"))).await;
    assert_eq!(res.status().as_u16(), 400, "{}", db.backend);
    let oo: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    assert!(
        oo["issue"][0]["details"]["text"]
            .as_str()
            .unwrap()
            .contains("Consent.dateTime"),
        "{oo}"
    );
    assert_eq!(ledger_len(db), rows, "{}", db.backend);
    assert!(
        opted_out(&verdict(db, &ring, clock.now())),
        "{}",
        db.backend
    );
    // A clock a few minutes fast is not the future.
    let skewed = (clock.now() + chrono::Duration::minutes(4)).to_rfc3339();
    let mut fast = permit(None, &skewed);
    fast["provision"]["type"] = json!("deny");
    let res = atest::call_service(&app, post_consent(&fast)).await;
    assert_eq!(res.status().as_u16(), 201, "{}", db.backend);
    let created: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    assert_eq!(
        created["dateTime"],
        json!(skewed),
        "the stated time is kept"
    );

    // A consent given an hour before the STOP, entered after it: recorded,
    // ranked when it was given, so the STOP still stands.
    tick();
    let earlier = (stop_at - chrono::Duration::hours(1)).to_rfc3339();
    let res = atest::call_service(&app, post_consent(&permit(None, &earlier))).await;
    assert_eq!(res.status().as_u16(), 201, "{}", db.backend);
    assert!(
        opted_out(&verdict(db, &ring, clock.now())),
        "{}",
        db.backend
    );

    // (b) A permit dated 2099 imported from the EHR: recorded at Herald's
    // time and marked, the claimed time kept, a security log line without
    // PHI, a marker on its AuditEvent; the STOP still stands.
    tick();
    let parts = support::Parts::new();
    let sender = MemorySender::default();
    let ctx = parts.ctx(&ring, clock.as_ref(), &sender);
    let raw = permit(Some("ehr-consent-2099"), "2099-01-01T00:00:00Z");
    let (done, log) = logged(|| ingest::consent(&mut db.conn(), &ctx, &raw, "ehr-import"));
    assert!(done.unwrap(), "{}", db.backend);
    assert!(
        opted_out(&verdict(db, &ring, clock.now())),
        "{}",
        db.backend
    );
    let entries = consents::entries_for(&mut db.conn(), PATIENT).unwrap();
    let imported = entries
        .iter()
        .find(|e| e.consent_id == "ehr-consent-2099")
        .unwrap();
    assert!(imported.future_dated);
    assert_eq!(imported.recorded_at, clock.now());
    let kept = consents::resource(&mut db.conn(), &ring, "ehr-consent-2099")
        .unwrap()
        .unwrap();
    assert!(
        kept.contains("2099-01-01T00:00:00Z"),
        "the claim is evidence"
    );
    assert!(
        log.contains("security") && log.contains("ehr-consent-2099"),
        "{log}"
    );
    for phi in [PHONE, PATIENT] {
        assert!(!log.contains(phi), "{phi} in the log: {log}");
    }
    let events = super::fhir_follow::events_of(&mut db.conn());
    let marked = events
        .iter()
        .find(|e| {
            e["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == "Consent/ehr-consent-2099")
        })
        .unwrap();
    assert!(
        marked["outcomeDesc"]
            .as_str()
            .unwrap()
            .contains("Consent.dateTime was in the future"),
        "{marked}"
    );

    // The patient's own START opts in again.
    tick();
    let res = atest::call_service(&app, text("SMguardstart", "START")).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        matches!(verdict(db, &ring, clock.now()), Verdict::Permit { .. }),
        "{}",
        db.backend
    );
}

/// A Consent for the patient's number with these channel codes and
/// purposes (none: every purpose).
fn scoped(channels: &[&str], purposes: &[&str]) -> Value {
    let mut c = permit(None, "2026-12-01T16:00:00Z");
    let mut ext: Vec<Value> = channels
        .iter()
        .map(|ch| json!({"url": herald::fhir::EXT_CHANNEL, "valueCode": ch}))
        .collect();
    ext.push(json!({"url": herald::fhir::EXT_ADDRESS, "valueString": PHONE}));
    c["provision"]["extension"] = Value::Array(ext);
    c["provision"]["purpose"] = purposes
        .iter()
        .map(|p| json!({"system": "https://herald.example.org/fhir/CodeSystem/message-purpose", "code": p}))
        .collect();
    c
}

/// F5a: one Consent writes at most channels × purposes rows, each list
/// deduplicated and capped (3 channels, 4 purposes); more is refused with
/// a 400 naming the element, and nothing is written.
#[actix_web::test]
async fn one_consent_writes_a_bounded_number_of_rows() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let ring = Arc::new(ring);
        let clock = Arc::new(support::clock());
        super::channels::patient(&db, &ring, PATIENT, Some(PHONE), None, "en-US", &[]);
        support::clinician(&db, &ring);
        let state = AppState::new(
            Arc::new(settings()),
            db.pool.clone(),
            Arc::clone(&ring),
            clock.clone(),
        );
        let app = atest::init_service(app(state)).await;
        let refused = |body: Value, element: &'static str| {
            let app = &app;
            async move {
                let res = atest::call_service(app, post_consent(&body)).await;
                assert_eq!(res.status().as_u16(), 400, "{element}");
                let oo: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
                let text = oo["issue"][0]["details"]["text"]
                    .as_str()
                    .unwrap()
                    .to_string();
                assert!(text.contains(element), "{text}");
            }
        };
        let flood = vec!["sms"; 1_400];
        let body = scoped(&flood, &["appointment"]);
        assert!(body.to_string().len() < 256 * 1024, "under the body limit");
        refused(body, "Consent.provision.extension(consent-channel)").await;
        refused(
            scoped(&["sms"], &["appointment"; 5]),
            "Consent.provision.purpose",
        )
        .await;
        refused(
            scoped(&["sms", "email", "voice", "sms"], &["appointment"]),
            "Consent.provision.extension(consent-channel)",
        )
        .await;
        assert_eq!(ledger_len(&db), 0, "{}: rows written", db.backend);
        // The EHR import holds to the same bound.
        let parts = support::Parts::new();
        let sender = MemorySender::default();
        let ctx = parts.ctx(&ring, clock.as_ref(), &sender);
        let mut ehr = scoped(&flood, &["appointment"]);
        ehr["id"] = json!("ehr-flood");
        assert!(matches!(
            ingest::consent(&mut db.conn(), &ctx, &ehr, "ehr-import"),
            Err(ingest::IngestError::Refused { .. })
        ));
        assert_eq!(ledger_len(&db), 0, "{}: rows written", db.backend);
        // Within the caps, duplicates are one row each: 2 channels × 2 purposes.
        let res = atest::call_service(
            &app,
            post_consent(&scoped(
                &["sms", "voice", "sms"],
                &["appointment", "medication", "appointment", "medication"],
            )),
        )
        .await;
        assert_eq!(res.status().as_u16(), 201, "{}", db.backend);
        assert_eq!(ledger_len(&db), 4, "{}", db.backend);
    }
}
