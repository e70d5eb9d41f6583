//! Channels end to end: SMS and voice through Herald's Twilio client against
//! the Twilio-shaped double, email through a real SMTP server (aiosmtpd from
//! PyPI), delivery-status callbacks with Twilio's signature, the carrier's
//! 21610 opt-out, and every send and suppression served as valid FHIR R4
//! Communication.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix_web::test as atest;
use serde_json::Value;

use herald::config::Settings;
use herald::crypto::{normalize_email, normalize_phone};
use herald::db::{consents, outbox, patients};
use herald::domain::consent::Decision;
use herald::domain::facts::PatientFacts;
use herald::domain::phi::{Email, PersonName, Phone};
use herald::domain::{Channel, Purpose};
use herald::providers::twilio::{Twilio, TwilioConfig, TwilioSms, TwilioVoice};
use herald::providers::{ConsoleSender, Router, smtp::Smtp};
use herald::service::Ctx;
use herald::service::send::{self, SendOutcome};
use herald::web::{AppState, app, hooks};

use super::support::{self, TestDb};
use super::twilio_double;

const PUBLIC: &str = "https://herald.example.org";
const TOKEN: &str = twilio_double::TOKEN;

fn settings() -> Settings {
    let env = BTreeMap::from([
        ("HERALD_SERVER__PUBLIC_URL".to_string(), PUBLIC.to_string()),
        ("HERALD_SMS__AUTH_TOKEN".to_string(), TOKEN.to_string()),
    ]);
    Settings::load(None, &env).unwrap()
}

fn twilio(base: &str) -> Twilio {
    Twilio::new(TwilioConfig {
        base_url: base.into(),
        account_sid: twilio_double::SID.into(),
        auth_token: TOKEN.into(),
        from: "+18005550199".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

pub fn patient(
    db: &TestDb,
    ring: &herald::crypto::KeyRing,
    id: &str,
    phone: Option<&str>,
    email: Option<&str>,
    lang: &str,
    consent: &[(Channel, &str)],
) {
    let mut c = db.conn();
    let now = support::now();
    patients::upsert(
        &mut c,
        ring,
        &PatientFacts {
            id: id.into(),
            name: PersonName::new(format!("Synthetic {id}")),
            given: None,
            phone: phone.map(Phone::new),
            email: email.map(Email::new),
            language: Some(lang.into()),
            tz: Some(chrono_tz::America::New_York),
            region: Some("NY".into()),
        },
        now,
    )
    .unwrap();
    for (n, (channel, addr)) in consent.iter().enumerate() {
        let idx = match channel {
            Channel::Email => ring.blind_index("email", &normalize_email(addr)),
            _ => ring.blind_index("phone", &normalize_phone(addr)),
        };
        consents::insert(
            &mut c,
            ring,
            &consents::NewConsent {
                id: format!("consent-{id}-{n}"),
                patient_id: id.into(),
                channel: *channel,
                purpose: Some(Purpose::Appointment),
                address_index: idx,
                decision: Decision::Permit,
                source: "clinician".into(),
                recorded_at: now - chrono::Duration::days(1),
                stated_at: None,
                future_dated: false,
                part_of: None,
                categories: vec!["59284-0".into()],
                valid_until: None,
                resource: serde_json::json!({
                    "resourceType": "Consent", "id": format!("consent-{id}-{n}"), "status": "active",
                    "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                    "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                    "patient": {"reference": format!("Patient/{id}")},
                    "policyRule": {"text": "Given to the clinician"},
                    "provision": {"type": "permit", "extension": [
                        {"url": herald::fhir::EXT_CHANNEL, "valueCode": channel.code()},
                        {"url": herald::fhir::EXT_ADDRESS, "valueString": addr}
                    ]}
                })
                .to_string(),
            },
        )
        .unwrap();
    }
}

fn intent(db: &TestDb, patient: &str, n: u32) -> String {
    intent_with(&mut db.conn(), patient, n)
}

/// Queues a pickup notice for `patient`, due now.
pub fn intent_with(c: &mut herald::db::PooledConn, patient: &str, n: u32) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    outbox::enqueue(
        c,
        &outbox::NewIntent {
            id: id.clone(),
            dedupe_key: format!("test/{patient}/{n}"),
            patient_id: patient.into(),
            kind: "medication-ready-for-pickup".into(),
            purpose: "appointment".into(),
            about: format!("MedicationRequest/mr-{patient}-{n}"),
            due_at: support::now() - chrono::Duration::minutes(1),
            expires_at: None,
        },
        support::now(),
    )
    .unwrap();
    id
}

async fn post_form<S, B>(app: &S, path: &str, form: &[(&str, &str)], sign: Option<&str>) -> u16
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let mut req = atest::TestRequest::post().uri(path).set_form(form);
    if let Some(sig) = sign {
        req = req.insert_header(("X-Twilio-Signature", sig));
    }
    atest::call_service(app, req.to_request())
        .await
        .status()
        .as_u16()
}

fn sign(path: &str, form: &[(&str, &str)]) -> String {
    let params: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    hooks::twilio_signature(TOKEN, &format!("{PUBLIC}{path}"), &params).expect("token set")
}

#[test]
fn twilio_signature_matches_twilios_published_example() {
    // Twilio's "Webhooks security" worked example (messaging.md W1).
    let params: Vec<(String, String)> = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ]
    .iter()
    .map(|(k, v)| ((*k).into(), (*v).into()))
    .collect();
    let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(
        hooks::twilio_signature("12345", url, &params).as_deref(),
        Some("0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    );
    assert!(hooks::twilio_signature_ok(
        "12345",
        url,
        &params,
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    ));
    assert!(!hooks::twilio_signature_ok(
        "12345",
        url,
        &params,
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ"
    ));
    assert!(!hooks::twilio_signature_ok(
        "54321",
        url,
        &params,
        "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    ));
}

#[test]
fn twilio_signature_with_empty_token_is_refused() {
    // Security review F4: with an empty auth token the HMAC used to come back
    // empty, so a request with no X-Twilio-Signature header matched it.
    let url = "https://h/hooks/sms/twilio/inbound";
    assert_eq!(hooks::twilio_signature("", url, &[]), None);
    assert!(!hooks::twilio_signature_ok("", url, &[], ""));
    assert!(!hooks::twilio_signature_ok(
        "",
        url,
        &[],
        "2jmj7l5rSw0yVb/vlWAYkK/YBwk="
    ));
    // A real token with no signature given is refused too.
    assert!(!hooks::twilio_signature_ok("12345", url, &[], ""));
    assert!(herald::crypto::hmac_sha1(b"", b"x").is_err());
    assert!(herald::crypto::hmac_sha256(b"", b"x").is_err());
}

#[test]
fn sms_voice_status_callbacks_carrier_opt_out_and_communications() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let double = twilio_double::start(0, 0, Duration::ZERO);
    double
        .state
        .opted_out
        .lock()
        .unwrap()
        .push("+12125550177".into());
    patient(
        &db,
        &ring,
        "p-sms",
        Some("+12125550142"),
        None,
        "en-US",
        &[(Channel::Sms, "+12125550142")],
    );
    patient(
        &db,
        &ring,
        "p-voice",
        Some("+12125550155"),
        None,
        "es-US",
        &[(Channel::Voice, "+12125550155")],
    );
    patient(
        &db,
        &ring,
        "p-stop",
        Some("+12125550177"),
        None,
        "en-US",
        &[(Channel::Sms, "+12125550177")],
    );
    let sms_intent = intent(&db, "p-sms", 1);
    intent(&db, "p-voice", 1);
    intent(&db, "p-stop", 1);

    let router = Router {
        sms: Box::new(TwilioSms(twilio(&double.base_url))),
        voice: Box::new(TwilioVoice(twilio(&double.base_url))),
        email: Box::new(ConsoleSender::new(Box::new(std::io::sink()))),
    };
    let clock = support::clock();
    let parts = support::Parts::new();
    let ctx = Ctx {
        status_callback: Some(format!("{PUBLIC}/hooks/sms/twilio/status")),
        ..parts.ctx(&ring, &clock, &router)
    };
    let mut c = db.conn();
    let reports = send::run_due(&mut c, &ctx, &router, "w1").unwrap();
    let outcome = |p: &str| {
        reports
            .iter()
            .find(|r| r.patient_id == p)
            .unwrap()
            .outcome
            .clone()
    };
    assert_eq!(
        outcome("p-sms"),
        SendOutcome::Sent {
            channel: Channel::Sms
        }
    );
    assert_eq!(
        outcome("p-voice"),
        SendOutcome::Sent {
            channel: Channel::Voice
        }
    );
    assert_eq!(
        outcome("p-stop"),
        SendOutcome::Suppressed {
            reason: "opted out at carrier (21610)".into()
        }
    );
    let msgs = double.state.messages.lock().unwrap().clone();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0]
            .validity
            .as_deref()
            .is_some_and(|v| v.parse::<u32>().unwrap() <= 36_000)
    );
    let calls = double.state.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 1);
    assert!(
        calls[0]
            .body
            .starts_with("<Response><Say language=\"es-US\">Hola"),
        "{}",
        calls[0].body
    );
    // The carrier's opt-out is now in the ledger: the next message to that
    // number is suppressed without asking the provider again (W4).
    let before = double
        .state
        .requests
        .load(std::sync::atomic::Ordering::SeqCst);
    intent(&db, "p-stop", 2);
    let again = send::run_due(&mut c, &ctx, &router, "w1").unwrap();
    assert_eq!(
        again[0].outcome,
        SendOutcome::Suppressed {
            reason: "no consent (opted out)".into()
        }
    );
    assert_eq!(
        double
            .state
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    drop(c);
    drop(router);
    actix_rt::System::new().block_on(http_part(db, ring, sms_intent, msgs[0].sid.clone()));
}

async fn http_part(db: TestDb, ring: herald::crypto::KeyRing, sms_intent: String, sid: String) {
    // Delivery status callbacks: signed, out of order, never backwards (W1, W3).
    support::clinician(&db, &ring);
    let state = AppState::new(
        Arc::new(settings()),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    let app = atest::init_service(app(state)).await;
    let path = "/hooks/sms/twilio/status";
    let delivered = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "delivered"),
        ("AccountSid", twilio_double::SID),
    ];
    let sent = [
        ("MessageSid", sid.as_str()),
        ("MessageStatus", "sent"),
        ("AccountSid", twilio_double::SID),
    ];
    assert_eq!(
        post_form(&app, path, &delivered, None).await,
        403,
        "unsigned"
    );
    assert_eq!(
        post_form(&app, path, &delivered, Some("bm90IGEgc2lnbmF0dXJl")).await,
        403,
        "forged"
    );
    let mut tampered = delivered;
    tampered[1] = ("MessageStatus", "failed");
    assert_eq!(
        post_form(&app, path, &tampered, Some(&sign(path, &delivered))).await,
        403,
        "tampered"
    );
    let status = |db: &TestDb| {
        outbox::get(&mut db.conn(), &sms_intent)
            .unwrap()
            .unwrap()
            .delivery_status
    };
    assert_eq!(status(&db), None, "a refused callback changed nothing");
    assert_eq!(
        post_form(&app, path, &delivered, Some(&sign(path, &delivered))).await,
        204
    );
    assert_eq!(
        post_form(&app, path, &sent, Some(&sign(path, &sent))).await,
        204
    );
    assert_eq!(
        status(&db).as_deref(),
        Some("delivered"),
        "a late 'sent' moved a final status back"
    );

    // Every send and suppression is a Communication, valid FHIR R4.
    let req = support::as_clinician(atest::TestRequest::get())
        .uri("/fhir/Communication?_count=50")
        .to_request();
    let res = atest::call_service(&app, req).await;
    assert_eq!(res.status().as_u16(), 200);
    let bundle: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    let resources: Vec<Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .collect();
    assert_eq!(resources.len(), 4, "{bundle}");
    let sms = resources
        .iter()
        .find(|r| r["id"] == sms_intent.as_str())
        .unwrap();
    assert_eq!(sms["status"], "completed");
    assert_eq!(sms["medium"][0]["coding"][0]["code"], "SMSWRIT");
    assert_eq!(sms["extension"][0]["valueCode"], "delivered");
    assert!(sms["sent"].is_string());
    let stopped: Vec<&Value> = resources
        .iter()
        .filter(|r| r["status"] == "not-done")
        .collect();
    assert_eq!(stopped.len(), 2);
    assert!(
        stopped
            .iter()
            .any(|r| r["statusReason"]["text"] == "opted out at carrier (21610)")
    );
    for r in &resources {
        let text = r.to_string();
        assert!(
            !text.contains("+1212555") && !text.contains("Synthetic"),
            "PHI in a Communication: {text}"
        );
    }
    // Search by patient and status; read by id; errors as OperationOutcome.
    for (uri, n) in [
        ("/fhir/Communication?patient=Patient/p-stop", 2),
        ("/fhir/Communication?status=completed", 2),
        ("/fhir/Communication?status=not-done&patient=p-stop", 2),
        (
            "/fhir/Communication?category=notification&sent=ge2026-12-01",
            2,
        ),
    ] {
        let res = atest::call_service(
            &app,
            support::as_clinician(atest::TestRequest::get())
                .uri(uri)
                .to_request(),
        )
        .await;
        let b: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
        assert_eq!(b["entry"].as_array().map_or(0, Vec::len), n, "{uri}: {b}");
    }
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::get())
            .uri(&format!("/fhir/Communication/{sms_intent}"))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    let res = atest::call_service(
        &app,
        support::as_clinician(atest::TestRequest::get())
            .uri("/fhir/Communication?colour=blue")
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    let oo: Value = serde_json::from_slice(&atest::read_body(res).await).unwrap();
    assert_eq!(oo["resourceType"], "OperationOutcome");
    // The BALP query entity carries the query base64-encoded ("Communicatio…").
    assert!(
        db.dump().contains("Q29tbXVuaWNhdGlv"),
        "reading Communications is audited"
    );

    let ndjson: String = resources.iter().map(|r| format!("{r}\n")).collect();
    let out = super::demo::validate(&ndjson);
    assert!(
        out.status.success(),
        "invalid Communication: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The Python with aiosmtpd that CI installs (`.ci/run`).
fn smtp_python() -> std::path::PathBuf {
    std::env::var_os("HERALD_TEST_SMTP_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(std::env::var("HOME").unwrap())
                .join(".cache/herald-venv-smtp/bin/python")
        })
}

#[test]
fn email_goes_through_a_real_smtp_server_with_text_and_html() {
    let maildir = tempfile::tempdir().unwrap();
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir(maildir.path().join(sub)).unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new(smtp_python())
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(maildir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("aiosmtpd (pip install aiosmtpd; .ci/run does this)");
    let up = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "aiosmtpd did not start");

    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    patient(
        &db,
        &ring,
        "p-mail",
        None,
        Some("mail.patient@example.org"),
        "ar",
        &[(Channel::Email, "mail.patient@example.org")],
    );
    let id = intent(&db, "p-mail", 1);
    let smtp = Smtp::new(
        &format!("smtp://127.0.0.1:{port}"),
        "Herald Demo Health <no-reply@example.org>",
        Duration::from_secs(5),
    )
    .unwrap();
    let router = Router {
        sms: Box::new(ConsoleSender::new(Box::new(std::io::sink()))),
        voice: Box::new(ConsoleSender::new(Box::new(std::io::sink()))),
        email: Box::new(smtp),
    };
    let clock = support::clock();
    let parts = support::Parts::new();
    let ctx = parts.ctx(&ring, &clock, &router);
    let r = send::run_due(&mut db.conn(), &ctx, &router, "w1").unwrap();
    assert_eq!(
        r[0].outcome,
        SendOutcome::Sent {
            channel: Channel::Email
        }
    );
    let _ = server.kill();
    let _ = server.wait();
    let files: Vec<_> = std::fs::read_dir(maildir.path().join("new"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(files.len(), 1);
    let raw = std::fs::read_to_string(files[0].path()).unwrap();
    assert!(
        raw.contains(&format!("Message-ID: <{id}@example.org>")),
        "{raw}"
    );
    assert!(raw.contains("multipart/alternative"), "{raw}");
    assert!(
        raw.contains("text/plain") && raw.contains("text/html"),
        "{raw}"
    );
    assert!(raw.contains("To: mail.patient@example.org"), "{raw}");
    // Right-to-left: the HTML part says so (lettre sends it base64-encoded).
    let html_ok = {
        use base64::Engine as _;
        let raw = raw.replace("\r\n", "\n");
        let part = raw
            .split("Content-Type: text/html")
            .nth(1)
            .unwrap_or_default();
        let body = part.split("\n\n").nth(1).unwrap_or_default();
        let b64: String = body
            .split("\n--")
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .is_ok_and(|b| String::from_utf8_lossy(&b).contains("<html lang=\"ar\" dir=\"rtl\">"))
    };
    assert!(html_ok, "{raw}");
}

/// Frequency caps on the send path (T2): with the default 1 a day, a second
/// message the same day is deferred with the reason; a HELP reply (a consent
/// notice) is owed to the patient and is not capped.
#[test]
fn caps_defer_the_second_message_of_the_day_but_not_a_consent_notice() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    patient(
        &db,
        &ring,
        "p-cap",
        Some("+12125550142"),
        None,
        "en-US",
        &[(Channel::Sms, "+12125550142")],
    );
    intent(&db, "p-cap", 1);
    let sender = herald::providers::MemorySender::default();
    let clock = support::clock();
    let parts = support::Parts {
        messaging: herald::config::MessagingSettings::default(),
        ..support::Parts::new()
    };
    assert_eq!(
        (parts.messaging.cap_per_day, parts.messaging.cap_per_week),
        (1, 3)
    );
    let ctx = parts.ctx(&ring, &clock, &sender);
    let mut c = db.conn();
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(
        r[0].outcome,
        SendOutcome::Sent {
            channel: Channel::Sms
        }
    );
    intent(&db, "p-cap", 2);
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    match &r[0].outcome {
        SendOutcome::Deferred { until, reason } => {
            assert_eq!(*reason, "frequency cap");
            assert_eq!(*until, support::now() + chrono::Duration::days(1));
        }
        other => panic!("not capped: {other:?}"),
    }
    outbox::enqueue(
        &mut c,
        &outbox::NewIntent {
            id: uuid::Uuid::new_v4().to_string(),
            dedupe_key: "help/p-cap/1".into(),
            patient_id: "p-cap".into(),
            kind: "consent-help".into(),
            purpose: "appointment".into(),
            about: "Patient/p-cap".into(),
            due_at: support::now() - chrono::Duration::minutes(1),
            expires_at: None,
        },
        support::now(),
    )
    .unwrap();
    let r = send::run_due(&mut c, &ctx, &sender, "w1").unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        r[0].outcome,
        SendOutcome::Sent {
            channel: Channel::Sms
        }
    );
    let sent = sender.sent.lock().unwrap();
    assert!(sent[1].text.contains("for help call"), "{}", sent[1].text);
}

/// Every extension and code system Herald writes is published in
/// profiles/fhir/, and those definitions are valid FHIR R4.
#[test]
fn profiles_define_every_extension_herald_writes() {
    let root = support::repo_root();
    let mut urls = std::collections::BTreeSet::new();
    for file in ["src/fhir/mod.rs", "src/fhir/communication.rs"] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for part in text
            .split('"')
            .filter(|p| p.starts_with("https://herald.example.org/fhir/"))
        {
            urls.insert(part.to_string());
        }
    }
    assert!(urls.len() >= 4, "{urls:?}");
    let mut ndjson = String::new();
    for url in &urls {
        let (kind, id) = url
            .trim_start_matches("https://herald.example.org/fhir/")
            .split_once('/')
            .unwrap();
        let path = root.join(format!("profiles/fhir/{kind}-{id}.json"));
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("{url} has no {}", path.display()));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["url"], url.as_str());
        ndjson.push_str(&format!("{v}\n"));
    }
    let out = super::demo::validate(&ndjson);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
