//! Issue 5 acceptance, inbound SMS: STOP (each keyword, any case, with
//! spaces) from the consented number blocks the next send at once, with the
//! reason "no consent"; exactly one confirmation goes out; START restores it.
//! A forged or missing signature, a replayed MessageSid and a text from an
//! unknown number change nothing and are audited (messaging.md T5, T9, W1,
//! W2, W7, C2, C3).

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::test as atest;

use herald::config::Settings;
use herald::db::{consents, outbox};
use herald::domain::Channel;
use herald::providers::MemorySender;
use herald::service::send::{self, SendOutcome};
use herald::web::{AppState, app, hooks};

use super::support;

const PUBLIC: &str = "https://herald.example.org";
const TOKEN: &str = "inbound-test-token";
const PATH: &str = "/hooks/sms/twilio/inbound";
const PHONE: &str = "+12125550142";

fn settings() -> Settings {
    let env = BTreeMap::from([
        ("HERALD_SERVER__PUBLIC_URL".to_string(), PUBLIC.to_string()),
        ("HERALD_SMS__AUTH_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    Settings::load(None, &env).unwrap()
}

fn form<'a>(sid: &'a str, from: &'a str, body: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MessageSid", sid),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", from),
        ("To", "+18005550199"),
        ("Body", body),
        ("NumMedia", "0"),
        ("OptOutType", "STOP"),
    ]
}

fn signature(form: &[(&str, &str)]) -> String {
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    hooks::twilio_signature(TOKEN, &format!("{PUBLIC}{PATH}"), &params).expect("token set")
}

#[actix_web::test]
async fn stop_start_help_replays_forgeries_and_strangers() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let ring = Arc::new(ring);
    // One clock for the webhook and the workers; each step moves it on a
    // minute, as real replies are minutes apart.
    let clock = Arc::new(support::clock());
    let parts = support::Parts::new();
    let sender = MemorySender::default();
    let ctx = parts.ctx(&ring, clock.as_ref(), &sender);
    super::channels::patient(
        &db,
        &ring,
        "p-in",
        Some(PHONE),
        None,
        "es-US",
        &[(Channel::Sms, PHONE)],
    );
    support::clinician(&db, &ring);
    let state = AppState::new(
        Arc::new(settings()),
        db.pool.clone(),
        Arc::clone(&ring),
        clock.clone(),
    );
    let app = atest::init_service(app(state)).await;
    let post = |f: Vec<(&str, &str)>, sig: Option<String>| {
        let mut r = atest::TestRequest::post().uri(PATH).set_form(&f);
        if let Some(s) = sig {
            r = r.insert_header(("X-Twilio-Signature", s));
        }
        r.to_request()
    };
    let ledger =
        |db: &support::TestDb| consents::entries_for(&mut db.conn(), "p-in").unwrap().len();
    let mut n = 0u32;
    let tick = || clock.advance(chrono::Duration::minutes(1));
    let mut next = |c: &mut herald::db::PooledConn| -> Vec<send::Report> {
        n += 1;
        tick();
        super::channels::intent_with(c, "p-in", n);
        send::run_due(c, &ctx, &sender, "w1").unwrap()
    };

    // Each keyword, any case, with spaces or punctuation.
    for (i, kw) in [
        "STOP",
        " stop ",
        "Stop.",
        "OPT OUT",
        "opt-out",
        "unsubscribe",
        "Cancel",
        "END",
        "quit",
        "Revoke",
        "STOPALL",
        "optout",
        "no más mensajes",
    ]
    .iter()
    .enumerate()
    {
        let sid = format!("SM{i:032}");
        let f = form(&sid, PHONE, kw);
        tick();
        let res = atest::call_service(&app, post(f.clone(), Some(signature(&f)))).await;
        assert_eq!(res.status().as_u16(), 200, "{kw:?}");
        let mut c = db.conn();
        let before = sender.sent.lock().unwrap().len();
        let r = next(&mut c);
        // The opt-out confirmation and the blocked message, in one pass.
        let blocked = r
            .iter()
            .find(|x| x.kind == "medication-ready-for-pickup")
            .unwrap();
        assert_eq!(
            blocked.outcome,
            SendOutcome::Suppressed {
                reason: "no consent (opted out)".into()
            },
            "{kw:?}"
        );
        {
            let sent = sender.sent.lock().unwrap();
            assert_eq!(
                sent.len(),
                before + 1,
                "exactly one confirmation after {kw:?}"
            );
            assert!(
                sent.last().unwrap().text.contains("START"),
                "{}",
                sent.last().unwrap().text
            );
        }
        // START restores it, with its own confirmation.
        let sid = format!("SMstart{i:027}");
        let f = form(&sid, PHONE, "START");
        tick();
        let res = atest::call_service(&app, post(f.clone(), Some(signature(&f)))).await;
        assert_eq!(res.status().as_u16(), 200);
        let r = next(&mut c);
        assert!(r.iter().any(|x| x.kind == "consent-opt-in-confirmation"
            && matches!(x.outcome, SendOutcome::Sent { .. })));
        assert!(
            r.iter().any(|x| x.kind == "medication-ready-for-pickup"
                && x.outcome
                    == SendOutcome::Sent {
                        channel: Channel::Sms
                    }),
            "START did not restore sending after {kw:?}: {r:?}"
        );
    }

    // STOP twice: one confirmation only.
    let mut c = db.conn();
    let before = sender.sent.lock().unwrap().len();
    for sid in ["SMtwice1", "SMtwice2"] {
        let f = form(sid, PHONE, "STOP");
        atest::call_service(&app, post(f.clone(), Some(signature(&f)))).await;
    }
    send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(
        sender.sent.lock().unwrap().len(),
        before + 1,
        "two STOPs, one confirmation"
    );

    // HELP: brand, contact and opt-out instructions; no consent change.
    let entries = ledger(&db);
    let f = form("SMhelp", PHONE, "help");
    atest::call_service(&app, post(f.clone(), Some(signature(&f)))).await;
    send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(ledger(&db), entries);
    let help = sender.sent.lock().unwrap().last().unwrap().text.clone();
    assert!(
        help.contains("Herald Demo Health")
            && help.contains("STOP")
            && help.contains("+18005550100"),
        "{help}"
    );

    // Forged, missing signature; replay; stranger: nothing changes, all audited.
    let entries = ledger(&db);
    let f = form("SMforged", PHONE, "START");
    let res = atest::call_service(
        &app,
        post(f.clone(), Some("AAAAAAAAAAAAAAAAAAAAAAAAAAA=".into())),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    let res = atest::call_service(&app, post(f.clone(), None)).await;
    assert_eq!(res.status().as_u16(), 403);
    let mut tampered = f.clone();
    tampered[4] = ("Body", "STOP");
    let res = atest::call_service(&app, post(tampered, Some(signature(&f)))).await;
    assert_eq!(res.status().as_u16(), 403);
    let f = form("SMhelp", PHONE, "START");
    let res = atest::call_service(&app, post(f.clone(), Some(signature(&f)))).await;
    assert_eq!(res.status().as_u16(), 200, "a replay is acknowledged");
    let f = form("SMstranger", "+13105550199", "STOP");
    let res = atest::call_service(&app, post(f.clone(), Some(signature(&f)))).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        ledger(&db),
        entries,
        "a refused, replayed or unknown text changed the ledger"
    );
    let pending: Vec<_> = outbox::list(&mut c)
        .unwrap()
        .into_iter()
        .filter(|i| i.state == "pending")
        .collect();
    assert!(pending.is_empty(), "{pending:?}");
    let dump = db.dump();
    for reading in [
        "refused: bad or missing signature",
        "replay ignored",
        "unknown number",
    ] {
        assert!(dump.contains(reading), "no AuditEvent for {reading:?}");
    }
    for phi in [PHONE, "+13105550199", "no más mensajes"] {
        assert!(!dump.contains(phi), "PHI {phi:?} stored in clear");
    }

    // The ledger as FHIR: every Consent valid R4, history per resource, POST.
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::get())
            .uri("/fhir/Consent?patient=Patient/p-in&_count=1000")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let bundle: serde_json::Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    let consents: Vec<serde_json::Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    assert!(consents.len() >= 4 * 13, "{} Consents", consents.len());
    assert!(consents.iter().any(|c| c["provision"]["type"] == "deny"));
    assert!(consents.iter().any(|c| c["provision"]["type"] == "permit"));
    let id = consents[0]["id"].as_str().unwrap().to_string();
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::get())
            .uri(&format!("/fhir/Consent/{id}/_history"))
            .to_request(),
    )
    .await;
    let hist: serde_json::Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    assert_eq!(hist["type"], "history");
    assert_eq!(hist["entry"][0]["resource"]["meta"]["versionId"], "1");
    let given = serde_json::json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p-in"},
        "dateTime": "2026-12-01T17:00:00Z",
        "policyRule": {"text": "Given in person at the front desk; wording v3 shown"},
        "provision": {"type": "permit", "extension": [
            {"url": herald::fhir::EXT_CHANNEL, "valueCode": "email"},
            {"url": herald::fhir::EXT_ADDRESS, "valueString": "p-in@example.org"}
        ], "purpose": [{"system": "https://herald.example.org/fhir/CodeSystem/message-purpose", "code": "appointment"}]}
    });
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::post())
            .uri("/fhir/Consent")
            .insert_header(("content-type", "application/fhir+json"))
            .set_payload(given.to_string())
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    let location = res
        .headers()
        .get("location")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        location.contains("/fhir/Consent/") && location.ends_with("/_history/1"),
        "{location}"
    );
    let created: serde_json::Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    let mut broken = given.clone();
    broken.as_object_mut().unwrap().remove("policyRule");
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::post())
            .uri("/fhir/Consent")
            .insert_header(("content-type", "application/fhir+json"))
            .set_payload(broken.to_string())
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    let oo: serde_json::Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::get())
            .uri("/fhir/Consent/no-such-consent")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 404);

    let mut all = consents.clone();
    all.push(created);
    let ndjson: String = all.iter().map(|r| format!("{r}\n")).collect();
    let out = super::demo::validate(&ndjson);
    assert!(
        out.status.success(),
        "invalid Consent: {}",
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.contains("false"))
            .unwrap_or("")
    );
}

/// H10: a confidential-communications request "email only", posted as one
/// Consent, stops SMS and voice for every purpose at once; email still goes.
#[actix_web::test]
async fn email_only_request_stops_sms_and_voice_at_once() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let ring = Arc::new(ring);
    let clock = Arc::new(support::clock());
    super::channels::patient(
        &db,
        &ring,
        "p-cc",
        Some(PHONE),
        Some("p-cc@example.org"),
        "en-US",
        &[
            (Channel::Sms, PHONE),
            (Channel::Voice, PHONE),
            (Channel::Email, "p-cc@example.org"),
        ],
    );
    support::clinician(&db, &ring);
    let state = AppState::new(
        Arc::new(settings()),
        db.pool.clone(),
        Arc::clone(&ring),
        clock.clone(),
    );
    let app = atest::init_service(app(state)).await;
    clock.advance(chrono::Duration::minutes(1));
    let request = serde_json::json!({
        "resourceType": "Consent", "status": "active",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": "Patient/p-cc"},
        "policyRule": {"text": "Confidential communications request (45 CFR 164.522(b)): email only"},
        "provision": {"type": "deny", "extension": [
            {"url": herald::fhir::EXT_CHANNEL, "valueCode": "sms"},
            {"url": herald::fhir::EXT_CHANNEL, "valueCode": "voice"}
        ]}
    });
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::post())
            .uri("/fhir/Consent")
            .insert_header(("content-type", "application/fhir+json"))
            .set_payload(request.to_string())
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 201);
    clock.advance(chrono::Duration::minutes(1));
    let sender = MemorySender::default();
    let parts = support::Parts::new();
    let ctx = parts.ctx(&ring, clock.as_ref(), &sender);
    let mut c = db.conn();
    super::channels::intent_with(&mut c, "p-cc", 1);
    super::channels::intent_with(&mut c, "p-cc", 2);
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(r.len(), 2);
    for x in &r {
        assert_eq!(
            x.outcome,
            SendOutcome::Sent {
                channel: Channel::Email
            },
            "{r:?}"
        );
    }
    let ledger = consents::entries_for(&mut c, "p-cc").unwrap();
    for ch in [Channel::Sms, Channel::Voice] {
        for purpose in [
            herald::domain::Purpose::Appointment,
            herald::domain::Purpose::Medication,
            herald::domain::Purpose::Billing,
        ] {
            let idx = ring.blind_index("phone", &herald::crypto::normalize_phone(PHONE));
            assert!(matches!(
                herald::domain::consent::decide(
                    &ledger,
                    ch,
                    purpose,
                    &idx,
                    herald::clock::Clock::now(clock.as_ref())
                ),
                herald::domain::consent::Verdict::Deny {
                    reason: herald::domain::consent::DenyReason::ConfidentialCommunications,
                    ..
                }
            ));
        }
    }
}

/// Issue 5 §4: answers to a reminder, each replied to in the patient's
/// language about the appointment it answers; consent still applies.
#[actix_web::test]
async fn two_way_answers_get_replies_in_the_patients_language() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let ring = Arc::new(ring);
    let clock = Arc::new(support::clock());
    super::channels::patient(
        &db,
        &ring,
        "p-2w",
        Some(PHONE),
        None,
        "es-US",
        &[(Channel::Sms, PHONE)],
    );
    let sender = MemorySender::default();
    let parts = support::Parts::new();
    let ctx = parts.ctx(&ring, clock.as_ref(), &sender);
    let mut c = db.conn();
    herald::service::ingest::appointment(
        &mut c,
        &ctx,
        &serde_json::json!({
            "resourceType": "Appointment", "id": "a-2w", "meta": {"versionId": "1"},
            "status": "booked", "start": "2026-12-03T09:30:00-05:00",
            "participant": [
                {"actor": {"reference": "Patient/p-2w"}, "status": "needs-action"},
                {"actor": {"reference": "Practitioner/pr-1", "display": "Dr. Ada Lovelace"}, "status": "accepted"}
            ]
        }),
        &|_| Some(chrono_tz::America::New_York), &[],
    )
    .unwrap();
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(
        r[0].outcome,
        SendOutcome::Sent {
            channel: Channel::Sms
        }
    );
    support::clinician(&db, &ring);
    let state = AppState::new(
        Arc::new(settings()),
        db.pool.clone(),
        Arc::clone(&ring),
        clock.clone(),
    );
    let app = atest::init_service(app(state)).await;
    let mut replies = Vec::new();
    for (n, text) in ["C", "R", "cancelar cita", "¿dónde me estaciono?"]
        .iter()
        .enumerate()
    {
        clock.advance(chrono::Duration::minutes(1));
        let sid = format!("SM2w{n:030}");
        let f = form(&sid, PHONE, text);
        let res = atest::call_service(
            &app,
            atest::TestRequest::post()
                .uri(PATH)
                .set_form(&f)
                .insert_header(("X-Twilio-Signature", signature(&f)))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
        assert_eq!(r.len(), 1, "{text:?}: {r:?}");
        assert_eq!(
            r[0].outcome,
            SendOutcome::Sent {
                channel: Channel::Sms
            },
            "{text:?}"
        );
        replies.push((
            r[0].kind.clone(),
            r[0].about.clone(),
            sender.sent.lock().unwrap().last().unwrap().text.clone(),
        ));
    }
    assert_eq!(replies[0].0, "reply-confirmed");
    assert_eq!(replies[0].1, "Appointment/a-2w");
    assert!(
        replies[0].2.contains("confirmada") && replies[0].2.contains("3 de diciembre"),
        "{}",
        replies[0].2
    );
    assert_eq!(replies[1].0, "reply-reschedule");
    assert!(
        replies[1].2.contains("https://portal.example.org"),
        "{}",
        replies[1].2
    );
    assert_eq!(replies[2].0, "reply-cancel-requested");
    assert!(replies[2].2.contains("cancelar"), "{}", replies[2].2);
    assert_eq!(replies[3].0, "reply-received");
    // The confirmation is owed to the EHR (participant accepted, issue 5 §4);
    // a cancel request stays a staff task unless messaging.reply_cancel = cancel.
    let owed = herald::db::writes::list(&mut c).unwrap();
    assert!(
        owed.contains(&(
            "appointment-accept".into(),
            "Appointment/a-2w".into(),
            "pending".into()
        )),
        "{owed:?}"
    );
    assert!(
        !owed.iter().any(|(k, _, _)| k == "appointment-cancel"),
        "{owed:?}"
    );
    // Staff see how each text was read.
    let readings = herald::db::inbound::readings_for(&mut c, "p-2w").unwrap();
    assert_eq!(
        readings,
        ["other", "cancel_appointment", "reschedule", "confirm"]
    );
    // Those a person must read wait with a deadline (24 h by default); R does not.
    let open = herald::db::inbound::open_queue(&mut c, &ring).unwrap();
    let mut kinds: Vec<&str> = open.iter().map(|o| o.reading.as_str()).collect();
    kinds.sort_unstable();
    assert_eq!(kinds, ["cancel_appointment", "confirm", "other"]);
    assert!(
        open.iter()
            .all(|o| o.due_by == o.received_at + chrono::Duration::hours(24))
    );
    assert!(open.iter().any(|o| o.body == "¿dónde me estaciono?"));
    assert!(
        herald::db::inbound::mark_handled(&mut c, &open[0].dedupe_key, "staff-1", support::now())
            .unwrap()
    );
    assert!(
        !herald::db::inbound::mark_handled(&mut c, &open[0].dedupe_key, "staff-1", support::now())
            .unwrap()
    );
    assert_eq!(
        herald::db::inbound::open_queue(&mut c, &ring)
            .unwrap()
            .len(),
        2
    );
    // After STOP, an answer gets no reply: consent still decides.
    for (sid, text) in [("SM2wstop", "STOP"), ("SM2wlate", "C")] {
        clock.advance(chrono::Duration::minutes(1));
        let f = form(sid, PHONE, text);
        atest::call_service(
            &app,
            atest::TestRequest::post()
                .uri(PATH)
                .set_form(&f)
                .insert_header(("X-Twilio-Signature", signature(&f)))
                .to_request(),
        )
        .await;
    }
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    let late = r
        .iter()
        .find(|x| x.kind == "reply-received" || x.kind == "reply-confirmed")
        .unwrap();
    assert_eq!(
        late.outcome,
        SendOutcome::Suppressed {
            reason: "no consent (opted out)".into()
        }
    );
}

/// With the provider answering keywords itself (Twilio Advanced Opt-Out),
/// STOP still revokes at once but Herald sends no second confirmation.
#[actix_web::test]
async fn provider_confirmations_mean_herald_sends_none() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let ring = Arc::new(ring);
    super::channels::patient(
        &db,
        &ring,
        "p-aoo",
        Some(PHONE),
        None,
        "en-US",
        &[(Channel::Sms, PHONE)],
    );
    let mut env = BTreeMap::from([
        ("HERALD_SERVER__PUBLIC_URL".to_string(), PUBLIC.to_string()),
        ("HERALD_SMS__AUTH_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    env.insert("HERALD_SMS__KEYWORD_CONFIRMATIONS".into(), "false".into());
    let state = AppState::new(
        Arc::new(Settings::load(None, &env).unwrap()),
        db.pool.clone(),
        Arc::clone(&ring),
        Arc::new(support::clock()),
    );
    let app = atest::init_service(app(state)).await;
    let f = form("SMaoo", PHONE, "STOP");
    let res = atest::call_service(
        &app,
        atest::TestRequest::post()
            .uri(PATH)
            .set_form(&f)
            .insert_header(("X-Twilio-Signature", signature(&f)))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let mut c = db.conn();
    assert!(
        outbox::list(&mut c).unwrap().is_empty(),
        "no confirmation queued"
    );
    let entries = consents::entries_for(&mut c, "p-aoo").unwrap();
    let idx = ring.blind_index("phone", &herald::crypto::normalize_phone(PHONE));
    assert!(matches!(
        herald::domain::consent::decide(
            &entries,
            Channel::Sms,
            herald::domain::Purpose::Appointment,
            &idx,
            support::now() + chrono::Duration::minutes(1)
        ),
        herald::domain::consent::Verdict::Deny { .. }
    ));
}
