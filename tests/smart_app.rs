//! The clinician app's gate on identities (issue 11 item 3; security review
//! F2): break-glass and any patient other than the launch's only for a
//! practitioner (`Practitioner/…` or `PractitionerRole/…` fhirUser), and
//! grants rate-limited per identity. The sessions are seeded as a completed
//! launch would leave them, so these tests need no authorization server.

use actix_web::test as at;
use std::sync::Arc;

use herald::config::Settings;
use herald::crypto::KeyRing;
use herald::db::smart::SmartSession;
use herald::web::{AppState, app};

use super::support::{self, TestDb};

const CSRF: &str = "csrf-of-this-session";

/// A live SMART session for `fhir_user`, launched for patient p-launch;
/// returns the cookie.
fn session(db: &TestDb, ring: &KeyRing, name: &str, fhir_user: Option<&str>) -> String {
    session_from(db, ring, name, FOLLOWED, fhir_user)
}

const FOLLOWED: &str = "https://ehr.example.org/fhir";

fn session_from(
    db: &TestDb,
    ring: &KeyRing,
    name: &str,
    iss: &str,
    fhir_user: Option<&str>,
) -> String {
    let now = support::now();
    let cookie = format!("smart-{name}");
    herald::db::smart::put(
        &mut db.conn(),
        ring,
        &SmartSession {
            id_hash: herald::smart::launch::hash_token(&cookie),
            phase: "active".into(),
            iss: iss.into(),
            secrets: serde_json::json!({ "csrf": CSRF }).to_string(),
            patient: Some("p-launch".into()),
            encounter: None,
            fhir_user: fhir_user.map(String::from),
            need_banner: true,
            style_url: None,
            scope: Some("launch openid fhirUser patient/*.rs".into()),
            token_expires_at: Some(now + chrono::Duration::hours(1)),
            created_at: now,
            last_seen_at: now,
        },
    )
    .unwrap();
    cookie
}

fn state(db: &TestDb, ring: KeyRing, mut settings: Settings) -> AppState {
    settings.ehr.base_url = Some(format!("{FOLLOWED}/"));
    AppState::new(
        Arc::new(settings),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    )
}

fn get(cookie: &str, path: &str) -> actix_http::Request {
    at::TestRequest::get()
        .uri(path)
        .cookie(actix_web::cookie::Cookie::new(
            "herald_app",
            cookie.to_string(),
        ))
        .to_request()
}

fn break_glass(cookie: &str, patient: &str) -> actix_http::Request {
    at::TestRequest::post()
        .uri("/app/break-glass")
        .cookie(actix_web::cookie::Cookie::new(
            "herald_app",
            cookie.to_string(),
        ))
        .set_form([
            ("csrf", CSRF),
            ("patient", patient),
            ("reason", "0123456789 patient unconscious in ED"),
        ])
        .to_request()
}

fn grants(db: &TestDb) -> i64 {
    use diesel::prelude::*;
    herald::db::schema::break_glass::table
        .count()
        .get_result(&mut db.conn())
        .unwrap()
}

#[actix_rt::test]
async fn only_practitioners_break_the_glass_or_open_another_patient() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        // F2: a patient (or relative, or a bare sub, or no fhirUser at all)
        // who completed a launch must never reach another patient.
        let refused: Vec<(&str, Option<&str>)> = vec![
            ("patient", Some("Patient/p-9")),
            (
                "absolute-patient",
                Some("https://ehr.example.org/fhir/Patient/p-9"),
            ),
            ("relative", Some("RelatedPerson/r-1")),
            ("sub", Some("u-1")),
            ("none", None),
        ];
        let cookies: Vec<_> = refused
            .iter()
            .map(|(n, who)| session(&db, &ring, n, *who))
            .collect();
        let app = at::init_service(app(state(&db, ring, Settings::default()))).await;
        for ((name, _), cookie) in refused.iter().zip(&cookies) {
            let res = at::call_service(&app, break_glass(cookie, "p-1")).await;
            assert_eq!(res.status().as_u16(), 403, "{}: break-glass", name);
            let res = at::call_service(&app, get(cookie, "/app?patient=p-1")).await;
            assert_eq!(res.status().as_u16(), 403, "{}: /app?patient=p-1", name);
            let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
            assert!(body.contains("not-practitioner"), "{name}: {body}");
        }
        assert_eq!(grants(&db), 0, "{}: no grant was made", db.backend);
    }
}

#[actix_rt::test]
async fn practitioners_get_a_grant_but_only_so_many_an_hour() {
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let doc = session(&db, &ring, "doc", Some("Practitioner/pr-7"));
        let role = session(
            &db,
            &ring,
            "role",
            Some("https://ehr.example.org/fhir/PractitionerRole/r-7"),
        );
        let mut s = Settings::default();
        s.staff.break_glass_per_hour = 2;
        let app = at::init_service(app(state(&db, ring, s))).await;
        // A practitioner, relative or absolute: the grant is made (303 to the patient).
        for (cookie, patient) in [(&doc, "p-1"), (&doc, "p-2"), (&role, "p-1")] {
            let res = at::call_service(&app, break_glass(cookie, patient)).await;
            assert_eq!(res.status().as_u16(), 303, "{patient}");
        }
        // F2: the third grant within the hour for the same identity is refused.
        let res = at::call_service(&app, break_glass(&doc, "p-3")).await;
        assert_eq!(res.status().as_u16(), 429, "{}: rate limited", db.backend);
        assert_eq!(grants(&db), 3, "{}", db.backend);
    }
}

#[actix_rt::test]
async fn a_launch_from_another_issuer_never_reaches_the_followed_ehrs_patients() {
    // F7: a sandbox on the SMART allow-list is not the EHR Herald follows.
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        super::channels::patient(
            &db,
            &ring,
            "p-launch",
            Some("+12125550131"),
            None,
            "en-US",
            &[(herald::domain::Channel::Sms, "+12125550131")],
        );
        let sandbox = session_from(
            &db,
            &ring,
            "sandbox",
            "https://sandbox.example.net/fhir",
            Some("Practitioner/pr-7"),
        );
        let app = at::init_service(app(state(&db, ring, Settings::default()))).await;
        for path in ["/app", "/app?patient=p-launch", "/app?patient=p-1"] {
            let res = at::call_service(&app, get(&sandbox, path)).await;
            assert_eq!(res.status().as_u16(), 403, "{path}");
            let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
            assert!(
                body.contains("other-ehr") && !body.contains("+1212"),
                "{path}: {body}"
            );
        }
        let res = at::call_service(&app, break_glass(&sandbox, "p-1")).await;
        assert_eq!(res.status().as_u16(), 403);
        let consent = at::TestRequest::post()
            .uri("/app/consent")
            .cookie(actix_web::cookie::Cookie::new(
                "herald_app",
                sandbox.clone(),
            ))
            .set_form([
                ("csrf", CSRF),
                ("patient", "p-launch"),
                ("channel", "sms"),
                ("purpose", "appointment"),
                ("decision", "permit"),
                ("wording", "You agreed to texts about appointments."),
            ])
            .to_request();
        assert_eq!(at::call_service(&app, consent).await.status().as_u16(), 403);
        let mut c = db.conn();
        let entries = herald::db::consents::entries_for(&mut c, "p-launch").unwrap();
        assert_eq!(entries.len(), 1, "{}: the ledger is unchanged", db.backend);
        assert_eq!(grants(&db), 0);
    }
}

#[actix_rt::test]
async fn grants_and_audit_agents_are_keyed_by_issuer_and_fhir_user() {
    // F7: the bare fhirUser (or sub) could collide with another issuer's user
    // or a staff UUID; Herald keys the clinician as `{iss}|{fhirUser}`.
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let doc = session(&db, &ring, "doc", Some("Practitioner/pr-7"));
        let app = at::init_service(app(state(&db, ring, Settings::default()))).await;
        let res = at::call_service(&app, break_glass(&doc, "p-1")).await;
        assert_eq!(res.status().as_u16(), 303);
        use diesel::prelude::*;
        let users: Vec<String> = herald::db::schema::break_glass::table
            .select(herald::db::schema::break_glass::user_id)
            .load(&mut db.conn())
            .unwrap();
        let key = format!("{FOLLOWED}|Practitioner/pr-7");
        assert_eq!(users, std::slice::from_ref(&key), "{}", db.backend);
        let events = super::fhir_follow::events_of(&mut db.conn());
        assert!(
            events
                .iter()
                .any(|e| e.to_string().contains(&key) && e.to_string().contains("\"BTG\"")),
            "{}: the grant's AuditEvent names the keyed identity",
            db.backend
        );
    }
}

/// A token endpoint that refuses every refresh (the EHR revoked the grant):
/// answers `400 {"error":"invalid_grant"}` on loopback; returns its URL.
fn revoking_token_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut s = stream;
            let mut buf = [0u8; 8192];
            let _ = s.read(&mut buf);
            let body = r#"{"error":"invalid_grant","error_description":"revoked"}"#;
            let _ = write!(
                s,
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[actix_rt::test]
async fn a_session_ends_when_the_ehr_refuses_its_refresh() {
    // F8e: the EHR revoked the clinician's token; Herald's session must not
    // outlive it. The next /app is the "session has ended" page (401) and
    // the session row is gone.
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let token = revoking_token_endpoint();
    let cookie = "smart-revoked".to_string();
    let now = support::now();
    herald::db::smart::put(
        &mut db.conn(),
        &ring,
        &SmartSession {
            id_hash: herald::smart::launch::hash_token(&cookie),
            phase: "active".into(),
            iss: FOLLOWED.into(),
            secrets: serde_json::json!({
                "csrf": CSRF,
                "token_endpoint": token,
                "authorization_endpoint": token.replace("/token", "/authorize"),
                "access_token": "at-1",
                "refresh_token": "rt-revoked",
            })
            .to_string(),
            patient: Some("p-launch".into()),
            encounter: None,
            fhir_user: Some("Practitioner/pr-7".into()),
            need_banner: true,
            style_url: None,
            scope: Some("launch openid fhirUser offline_access patient/*.rs".into()),
            // Due for refresh now.
            token_expires_at: Some(now + chrono::Duration::seconds(30)),
            created_at: now,
            last_seen_at: now,
        },
    )
    .unwrap();
    let mut s = Settings::default();
    s.server.public_url = Some("https://herald.example.org".into());
    s.smart.client_id = Some("herald-app".into());
    let app = at::init_service(app(state(&db, ring, s))).await;
    // Over https the cookie carries the `__Host-` prefix (F8d).
    let req = at::TestRequest::get()
        .uri("/app")
        .cookie(actix_web::cookie::Cookie::new(
            "__Host-herald_app",
            cookie.to_string(),
        ))
        .to_request();
    let res = at::call_service(&app, req).await;
    assert_eq!(res.status().as_u16(), 401);
    let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
    assert!(body.contains("session has ended"), "{body}");
    use diesel::prelude::*;
    let left: i64 = herald::db::schema::smart_sessions::table
        .count()
        .get_result(&mut db.conn())
        .unwrap();
    assert_eq!(left, 0, "the session row is deleted");
}

#[test]
fn public_url_is_required_when_smart_or_webhooks_are_on() {
    // F8b: redirect_uri and callback URLs come from server.public_url, so
    // `herald check` names it whenever something depends on it.
    let named = |s: &Settings| {
        s.validate()
            .iter()
            .any(|p| p.to_string().contains("server.public_url"))
    };
    assert!(!named(&Settings::default()), "nothing needs it by default");
    let mut smart = Settings::default();
    smart.smart.allowed_iss = vec!["https://ehr.example.org/fhir".into()];
    assert!(named(&smart), "SMART launch");
    let mut twilio = Settings::default();
    twilio.sms.provider = "twilio".into();
    assert!(named(&twilio), "SMS provider webhooks");
    let mut subs = Settings::default();
    subs.ehr.subscription = "r4".into();
    assert!(named(&subs), "FHIR subscriptions");
    for mut s in [smart, twilio, subs] {
        s.server.public_url = Some("https://herald.example.org".into());
        assert!(!named(&s));
    }
}

#[actix_rt::test]
async fn bundle_links_never_come_from_host_or_forwarded_headers() {
    // F8b: a request naming another host must not steer Herald's links.
    for public_url in [Some("https://herald.example.org"), None] {
        let db = support::sqlite();
        let (ring, _) = support::ready(&db);
        let token = support::clinician(&db, &ring);
        let mut s = Settings::default();
        s.server.public_url = public_url.map(String::from);
        let app = at::init_service(app(state(&db, ring, s))).await;
        let req = at::TestRequest::get()
            .uri("/fhir/Consent?patient=p-1")
            .insert_header(("authorization", format!("Bearer {token}")))
            .insert_header(("host", "evil.example"))
            .insert_header(("x-forwarded-host", "evil.example"))
            .insert_header(("x-forwarded-proto", "https"))
            .insert_header(("forwarded", "host=evil.example;proto=https"))
            .to_request();
        let res = at::call_service(&app, req).await;
        assert_eq!(res.status().as_u16(), 200, "{public_url:?}");
        let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
        assert!(!body.contains("evil.example"), "{public_url:?}: {body}");
        let want = public_url.unwrap_or("http://127.0.0.1:8080");
        assert!(body.contains(&format!("{want}/fhir/Consent")), "{body}");
    }
}
