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
    let sig =
        hooks::twilio_signature(TOKEN, &format!("{PUBLIC}{INBOUND}"), &params).expect("token set");
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

/// F5b: a read finds its Consent by id through an index and opens that one
/// Consent (the read after POST, `_history` too); a search opens only the
/// page it returns, and its `next` links walk every Consent once.
#[actix_web::test]
async fn reads_and_search_pages_open_only_what_they_return() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let ring = Arc::new(ring);
        let clock = Arc::new(support::clock());
        support::clinician(&db, &ring);
        // 300 patients with a Consent each, recorded straight into the ledger.
        const N: usize = 300;
        {
            let mut c = db.conn();
            herald::db::write_tx(&mut c, |c| {
                for i in 0..N {
                    let id = format!("seed-{i:04}");
                    let at = support::now() - chrono::Duration::minutes(i64::try_from(N - i).unwrap());
                    consents::insert(
                        c,
                        &ring,
                        &consents::NewConsent {
                            id: id.clone(),
                            patient_id: format!("p-seed-{i:04}"),
                            channel: Channel::Sms,
                            purpose: Some(Purpose::Appointment),
                            address_index: format!("idx-{i}"),
                            decision: herald::domain::consent::Decision::Permit,
                            source: "web".into(),
                            recorded_at: at,
                            stated_at: None,
                            future_dated: false,
                            valid_until: None,
                            resource: json!({"resourceType": "Consent", "id": id, "status": "active",
                                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                                "patient": {"reference": format!("Patient/p-seed-{i:04}")}})
                            .to_string(),
                            part_of: None,
                            categories: vec!["59284-0".into()],
                        },
                    )?;
                }
                Ok::<_, herald::db::DbError>(())
            })
            .unwrap();
        }
        super::channels::patient(&db, &ring, PATIENT, Some(PHONE), None, "en-US", &[]);
        let state = AppState::new(
            Arc::new(settings()),
            db.pool.clone(),
            Arc::clone(&ring),
            clock.clone(),
        );
        let app = atest::init_service(app(state)).await;
        let get = |uri: String| {
            let app = &app;
            let ring = Arc::clone(&ring);
            async move {
                let before = ring.opened();
                let res = atest::call_service(
                    app,
                    support::as_clinician(atest::TestRequest::get())
                        .uri(&uri)
                        .to_request(),
                )
                .await;
                let status = res.status().as_u16();
                let body: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
                (status, body, ring.opened() - before)
            }
        };

        // One Consent of four rows (2 channels × 2 purposes), by POST: the
        // read that answers the POST opens one row.
        let before = ring.opened();
        let res = atest::call_service(
            &app,
            post_consent(&scoped(&["sms", "voice"], &["appointment", "medication"])),
        )
        .await;
        assert_eq!(res.status().as_u16(), 201);
        let created: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
        assert!(
            ring.opened() - before <= 1,
            "{}: POST opened {} Consents",
            db.backend,
            ring.opened() - before
        );
        let multi = created["id"].as_str().unwrap().to_string();

        for uri in [
            format!("/fhir/Consent/{multi}"),
            format!("/fhir/Consent/{multi}/_history"),
            "/fhir/Consent/seed-0150".to_string(),
        ] {
            let (status, body, opened) = get(uri.clone()).await;
            assert_eq!(status, 200, "{uri}: {body}");
            assert_eq!(opened, 1, "{}: {uri} opened {opened} Consents", db.backend);
        }
        let (_, body, _) = get(format!("/fhir/Consent/{multi}")).await;
        assert_eq!(body["id"], json!(multi));
        let (status, _, opened) = get("/fhir/Consent/no-such-consent".into()).await;
        assert_eq!((status, opened), (404, 0));

        // A page opens its own Consents only.
        let (status, body, opened) = get("/fhir/Consent?_count=5".into()).await;
        assert_eq!(status, 200);
        assert_eq!(body["entry"].as_array().unwrap().len(), 5);
        assert!(opened <= 5, "{}: a page of 5 opened {opened}", db.backend);
        let (_, body, opened) =
            get("/fhir/Consent?category=http://loinc.org|59284-0&_count=7".into()).await;
        assert_eq!(body["entry"].as_array().unwrap().len(), 7);
        assert!(opened <= 7, "{}: a page of 7 opened {opened}", db.backend);
        let (_, body, opened) = get("/fhir/Consent?status=inactive".into()).await;
        assert_eq!((body["entry"].as_array().unwrap().len(), opened), (0, 0));

        // The next links walk every Consent once, a page at a time.
        let mut seen = std::collections::BTreeSet::new();
        let mut uri = "/fhir/Consent?_count=100".to_string();
        let mut pages = 0;
        loop {
            let (status, body, opened) = get(uri.clone()).await;
            assert_eq!(status, 200, "{uri}: {body}");
            let entries = body["entry"].as_array().unwrap();
            assert!(opened <= 101, "{}: a page opened {opened}", db.backend);
            for e in entries {
                assert!(seen.insert(e["resource"]["id"].as_str().unwrap().to_string()));
            }
            pages += 1;
            let next = body["link"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == "next")
                .map(|l| l["url"].as_str().unwrap().to_string());
            match next {
                Some(n) => uri = n.trim_start_matches(PUBLIC).to_string(),
                None => break,
            }
        }
        assert_eq!(seen.len(), N + 1, "{}", db.backend);
        assert_eq!(pages, 4);
    }
}

/// What `herald audit report --patient P` lists: P's events, as report lines.
fn report_for(db: &TestDb, patient: &str) -> Vec<herald::audit::report::Line> {
    use herald::audit::report::{self, Subject};
    let q = report::query_for(&Subject::Patient(patient.into()), None, None);
    herald::db::audit_store::search(&mut db.conn(), &q)
        .unwrap()
        .iter()
        .map(report::line_of)
        .collect()
}

/// F6b: a search without a patient filter writes one AuditEvent per
/// distinct patient it returned, so the breach report of each finds the
/// disclosure; with a filter, one record naming that patient.
#[actix_web::test]
async fn unfiltered_searches_are_audited_per_patient() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let ring = Arc::new(ring);
        let clock = Arc::new(support::clock());
        support::clinician(&db, &ring);
        let people = ["p-one", "p-two", "p-three"];
        for (i, p) in people.iter().enumerate() {
            let phone = format!("+1212555018{i}");
            super::channels::patient(
                &db,
                &ring,
                p,
                Some(&phone),
                None,
                "en-US",
                &[(Channel::Sms, &phone)],
            );
        }
        // A message for each, so Communication has something to show.
        {
            let parts = support::Parts::new();
            let sender = MemorySender::default();
            let ctx = parts.ctx(&ring, clock.as_ref(), &sender);
            let mut c = db.conn();
            for p in people {
                super::channels::intent_with(&mut c, p, 1);
            }
            let r = herald::service::send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
            assert_eq!(r.len(), 3, "{r:?}");
        }
        let state = AppState::new(
            Arc::new(settings()),
            db.pool.clone(),
            Arc::clone(&ring),
            clock.clone(),
        );
        let app = atest::init_service(app(state)).await;
        let search = |uri: &'static str| {
            let app = &app;
            async move {
                let res = atest::call_service(
                    app,
                    support::as_clinician(atest::TestRequest::get())
                        .uri(uri)
                        .to_request(),
                )
                .await;
                assert_eq!(res.status().as_u16(), 200, "{uri}");
                let b: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
                b["entry"].as_array().unwrap().len()
            }
        };
        let searched = |patient: &str, resource: &str| {
            report_for(&db, patient)
                .iter()
                .filter(|l| {
                    l.query.as_deref().is_some_and(|q| {
                        q.starts_with(&format!("{resource}?")) && !q.contains("patient=")
                    })
                })
                .count()
        };
        assert_eq!(search("/fhir/Consent?_count=100").await, 3);
        assert_eq!(search("/fhir/Communication?_count=100").await, 3);
        for p in people {
            assert_eq!(searched(p, "Consent"), 1, "{}: {p}", db.backend);
            assert_eq!(searched(p, "Communication"), 1, "{}: {p}", db.backend);
        }
        // A page returns only its patients' data, and names only them.
        assert_eq!(search("/fhir/Consent?_count=1").await, 1);
        let named: usize = people.iter().map(|p| searched(p, "Consent")).sum();
        assert_eq!(named, 3 + 1, "{}", db.backend);
        // A search that returns nobody's data is still one record.
        let before = super::fhir_follow::events_of(&mut db.conn()).len();
        assert_eq!(search("/fhir/Consent?date=ge2099-01-01").await, 0);
        assert_eq!(
            super::fhir_follow::events_of(&mut db.conn()).len(),
            before + 1
        );
    }
}
