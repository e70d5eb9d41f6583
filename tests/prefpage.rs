//! Issue 5 acceptance: the patient preference page works in headless
//! Chromium (Debian's, driven by puppeteer-core from npm) — opt out, change
//! language, give written consent, email only — and refuses an expired or
//! tampered link; a form without the CSRF token changes nothing.

use std::process::Command;
use std::sync::Arc;

use herald::domain::Channel;
use herald::domain::consent::{self, DenyReason, Verdict};
use herald::service::preferences;
use herald::web::AppState;

use super::support;

const PHONE: &str = "+12125550142";
const EMAIL: &str = "pref.patient@example.org";

#[test]
fn preference_page_in_headless_chromium() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    super::channels::patient(
        &db,
        &ring,
        "p-pref",
        Some(PHONE),
        Some(EMAIL),
        "en-US",
        &[(Channel::Sms, PHONE), (Channel::Email, EMAIL)],
    );
    let now = support::now();
    let good =
        preferences::issue_link(&ring, "p-pref", now, now + chrono::Duration::days(7)).unwrap();
    let expired = preferences::issue_link(
        &ring,
        "p-pref",
        now - chrono::Duration::days(7),
        now - chrono::Duration::minutes(1),
    )
    .unwrap();
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let ring = Arc::new(ring);
    let clock = Arc::new(support::clock());
    let state = AppState::new(
        Arc::new(herald::config::Settings::default()),
        db.pool.clone(),
        Arc::clone(&ring),
        clock.clone(),
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = herald::web::server(state, listener).unwrap();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    let handle = rx.recv().unwrap();

    // A POST without the CSRF cookie and field changes nothing.
    let client = reqwest::blocking::Client::new();
    let res = client
        .post(format!("{base}/p/{good}"))
        .form(&[("action", "optout_all")])
        .send()
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);

    let out = Command::new("node")
        .arg(support::npm_dir("tests/browser").join("prefpage.mjs"))
        .args([&base, &good, &expired, &tampered])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    actix_rt::System::new().block_on(handle.stop(false));
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert!(
        seen["seen"]["csp"]
            .as_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(
        seen["seen"]["wording"]
            .as_str()
            .unwrap()
            .contains("Consent is not a condition of care")
    );

    // What the browser did is in the ledger, with evidence, and audited.
    let mut c = db.conn();
    let p = herald::db::patients::get(&mut c, &ring, "p-pref")
        .unwrap()
        .unwrap();
    assert_eq!(p.language.as_deref(), Some("es-US"));
    let entries = herald::db::consents::entries_for(&mut c, "p-pref").unwrap();
    let idx = ring.blind_index("phone", &herald::crypto::normalize_phone(PHONE));
    let t = now + chrono::Duration::hours(1);
    assert!(matches!(
        consent::decide(
            &entries,
            Channel::Sms,
            herald::domain::Purpose::Appointment,
            &idx,
            t
        ),
        Verdict::Deny {
            reason: DenyReason::ConfidentialCommunications,
            ..
        }
    ));
    let email_idx = ring.blind_index("email", &herald::crypto::normalize_email(EMAIL));
    assert!(matches!(
        consent::decide(
            &entries,
            Channel::Email,
            herald::domain::Purpose::Appointment,
            &email_idx,
            t
        ),
        Verdict::Deny {
            reason: DenyReason::OptedOut,
            ..
        }
    ));
    let stored = herald::db::consents::search(
        &mut c,
        &ring,
        &herald::db::consents::ConsentSearch {
            patient: Some("p-pref".into()),
            limit: 1000,
            ..Default::default()
        },
    )
    .unwrap()
    .consents;
    let written = stored
        .iter()
        .find(|s| s.resource.contains(preferences::WRITTEN_CONSENT_VERSION))
        .expect("the written consent is recorded with its wording version");
    assert!(
        written
            .resource
            .contains("Consent is not a condition of care")
    );
    assert!(
        written.resource.contains("from 127.0.0.1"),
        "{}",
        written.resource
    );
    let dump = db.dump();
    assert!(
        dump.contains("Q29uc2VudD9wYXRpZW50LXByZWZlcmVuY2UtcGFnZT12aWV3"),
        "page views are audited"
    );
    assert!(!dump.contains(PHONE) && !dump.contains(EMAIL));
}

#[test]
fn another_number_replaces_the_ehr_number_for_texts_calls_and_replies() {
    // H10: "text me at another number" — without asking why; an EHR refresh
    // of the Patient does not undo it; lifting it brings the EHR's back.
    use herald::crypto::normalize_phone;
    use herald::db::{consents, patients};
    use herald::domain::Purpose;
    use herald::service::preferences::Change;
    let other = "+13125550199";
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    super::channels::patient(
        &db,
        &ring,
        "p-alt",
        Some(PHONE),
        None,
        "en-US",
        &[(Channel::Sms, PHONE)],
    );
    let clock = support::clock();
    let mut c = db.conn();
    assert!(preferences::check_number("212-555").is_err());
    let n = preferences::check_number("+1 (312) 555-0199").unwrap();
    assert_eq!(n, other);
    // Issue 11 F8f: the number is the patient's only once the code sent to
    // it comes back (tests/prefcode.rs covers the rules).
    let sent = super::prefcode::confirm_number(&mut c, &ring, &clock, "p-alt", &n);
    assert_eq!(
        consents::entries_for(&mut c, "p-alt").unwrap().len() - 1,
        6,
        "SMS and voice × appointment, medication, billing"
    );
    assert_eq!(sent.to, other);
    let p = patients::get(&mut c, &ring, "p-alt").unwrap().unwrap();
    assert_eq!(p.phone.unwrap().expose(), other);
    assert_eq!(
        patients::find_by_phone(&mut c, &ring, other).unwrap(),
        vec!["p-alt".to_string()]
    );
    let entries = consents::entries_for(&mut c, "p-alt").unwrap();
    let idx = ring.blind_index("phone", &normalize_phone(other));
    let now = support::now();
    assert!(matches!(
        consent::decide(&entries, Channel::Sms, Purpose::Appointment, &idx, now),
        Verdict::Permit { .. }
    ));
    assert!(
        !matches!(
            consent::decide(&entries, Channel::Sms, Purpose::Marketing, &idx, now),
            Verdict::Permit { .. }
        ),
        "marketing still needs express written consent"
    );
    // The EHR sends the Patient again with its own number: the request stands.
    let ctx = herald::service::ingest::IngestCtx {
        ring: &ring,
        clock: &clock,
        messaging: &support::messaging(),
        ehr: "urn:test",
    };
    herald::service::ingest::patient(
        &mut c,
        &ctx,
        &serde_json::json!({"resourceType": "Patient", "id": "p-alt",
        "telecom": [{"system": "sms", "value": PHONE}]}),
        &[],
    )
    .unwrap();
    assert_eq!(
        patients::get(&mut c, &ring, "p-alt")
            .unwrap()
            .unwrap()
            .phone
            .unwrap()
            .expose(),
        other
    );
    // Lifted: the EHR's number again.
    preferences::apply(
        &mut c,
        &ring,
        &clock,
        "p-alt",
        &[Change::ClearNumber],
        "127.0.0.1",
    )
    .unwrap();
    assert_eq!(
        patients::get(&mut c, &ring, "p-alt")
            .unwrap()
            .unwrap()
            .phone
            .unwrap()
            .expose(),
        PHONE
    );
    assert!(
        patients::find_by_phone(&mut c, &ring, other)
            .unwrap()
            .is_empty()
    );
}
