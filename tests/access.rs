//! The access table, walked (issue 11 item 1; security review F1): every row
//! of `herald::web::access::ROUTES` — the table the router is built from, so a
//! route without a row does not exist — called by every kind of caller, with
//! and without `server.public_url`. A caller the row accepts gets through the
//! gate (neither 401 nor 403 nor a redirect to `/login`, and never a 5xx); any
//! other caller is refused (401, 403, or the sign-in redirect for staff pages).
//! Credentials only the handler can check (the patient's link, the EHR's
//! secret, Twilio's signature) are sent with wrong values and must be
//! refused by the handler, then with right values where this test can make
//! them. No request may panic a worker.

use actix_web::test as at;
use std::sync::Arc;

use herald::config::Settings;
use herald::crypto::KeyRing;
use herald::db::smart::SmartSession;
use herald::domain::staff::Role;
use herald::web::access::{self, Method, ROUTES, Rule, Who};
use herald::web::{AppState, app};

use super::support::{self, TestDb};

/// One kind of caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nobody,
    Session(Role),
    Token(Role),
    Smart,
    /// Headers of the EHR and Twilio kinds, with wrong values.
    ForgedHook,
}

const KINDS: &[Kind] = &[
    Kind::Nobody,
    Kind::Session(Role::Admin),
    Kind::Session(Role::Clinician),
    Kind::Session(Role::Auditor),
    Kind::Token(Role::Clinician),
    Kind::Token(Role::Auditor),
    Kind::Smart,
    Kind::ForgedHook,
];

struct Callers {
    sessions: Vec<(Role, String)>,
    tokens: Vec<(Role, String)>,
    smart: String,
    link: String,
    /// The session cookie's name (`__Host-` prefixed over https, F8d).
    session_cookie: &'static str,
}

fn callers(db: &TestDb, ring: &KeyRing) -> Callers {
    let now = support::now();
    let mut c = db.conn();
    let mut sessions = Vec::new();
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let name = format!("walk-{}", role.code());
        herald::service::staff::add_user(
            &mut c,
            ring,
            now,
            &name,
            role,
            "correct horse battery staple",
        )
        .unwrap();
        let user = herald::db::staff::user_by_name(&mut c, &name)
            .unwrap()
            .unwrap();
        let cookie = format!("walk-session-{}", role.code());
        herald::db::staff::insert_session(
            &mut c,
            &herald::db::staff::Session {
                token_hash: herald::crypto::sha256_hex(cookie.as_bytes()),
                user_id: user.id,
                csrf: "csrf".into(),
                created_at: now,
                last_seen_at: now,
            },
        )
        .unwrap();
        sessions.push((role, cookie));
        if role != Role::Admin {
            let t = herald::service::staff::issue_token(&mut c, now, &name, 30).unwrap();
            tokens.push((role, t));
        }
    }
    let smart = "walk-smart-session".to_string();
    herald::db::smart::put(
        &mut c,
        ring,
        &SmartSession {
            id_hash: herald::smart::launch::hash_token(&smart),
            phase: "active".into(),
            iss: "https://ehr.example.org/fhir".into(),
            secrets: "{}".into(),
            patient: Some("p-walk".into()),
            encounter: None,
            fhir_user: Some("Practitioner/walk".into()),
            need_banner: true,
            style_url: None,
            scope: Some("launch openid fhirUser patient/*.rs".into()),
            token_expires_at: Some(now + chrono::Duration::hours(1)),
            created_at: now,
            last_seen_at: now,
        },
    )
    .unwrap();
    drop(c);
    super::channels::patient(
        db,
        ring,
        "p-walk",
        Some("+12125550177"),
        None,
        "en-US",
        &[(herald::domain::Channel::Sms, "+12125550177")],
    );
    let link = herald::service::preferences::issue_link(
        ring,
        "p-walk",
        now,
        now + chrono::Duration::days(7),
    )
    .unwrap();
    Callers {
        session_cookie: herald::web::staff::SESSION_COOKIE,
        sessions,
        tokens,
        smart,
        link,
    }
}

/// Whether the row accepts this kind of caller at its gate.
fn accepts(rule: &Rule, kind: Kind) -> bool {
    rule.who.iter().any(|w| match (*w, kind) {
        (Who::Anyone, _) => true,
        (Who::StaffSession(roles), Kind::Session(r)) => roles.contains(&r),
        (Who::StaffToken(roles), Kind::Token(r)) => roles.contains(&r),
        (Who::SmartClinician, Kind::Smart) => true,
        _ => false,
    })
}

/// Rows whose credential only the handler can check.
fn handler_checked(rule: &Rule) -> bool {
    rule.who
        .iter()
        .any(|w| matches!(w, Who::PatientLink | Who::EhrSecret | Who::TwilioSignature))
}

fn concrete(path: &str, link: &str) -> String {
    path.replace("{provider}", "twilio")
        .replace("{subscription}", "walk-sub")
        .replace("{type}", "Appointment")
        .replace("{id}", "walk-1")
        .replace("{token}", link)
}

fn request(rule: &Rule, path: &str, kind: Kind, cx: &Callers) -> at::TestRequest {
    let mut r = match rule.method {
        Method::Get => at::TestRequest::get(),
        Method::Post => at::TestRequest::post(),
        Method::Put => at::TestRequest::put(),
    }
    .uri(path)
    .peer_addr("127.0.0.1:40000".parse().unwrap());
    if rule.method != Method::Get {
        r = if path.starts_with("/fhir/") {
            r.insert_header(("content-type", "application/fhir+json"))
                .set_payload(r#"{"resourceType":"Consent"}"#)
        } else if path.starts_with("/hooks/fhir/") {
            r.insert_header(("content-type", "application/fhir+json"))
                .set_payload("")
        } else {
            r.set_form([("csrf", "csrf"), ("MessageSid", "SMwalk")])
        };
    }
    match kind {
        Kind::Nobody => r,
        Kind::Session(role) => {
            let c = &cx.sessions.iter().find(|(r, _)| *r == role).unwrap().1;
            r.cookie(actix_web::cookie::Cookie::new(cx.session_cookie, c.clone()))
        }
        Kind::Token(role) => {
            let t = &cx.tokens.iter().find(|(r, _)| *r == role).unwrap().1;
            r.insert_header(("authorization", format!("Bearer {t}")))
        }
        // Over https the clinician cookie is `__Host-` prefixed too (F8d).
        Kind::Smart => r.cookie(actix_web::cookie::Cookie::new(
            if cx.session_cookie.starts_with("__Host-") {
                "__Host-herald_app"
            } else {
                "herald_app"
            },
            cx.smart.clone(),
        )),
        Kind::ForgedHook => r
            .insert_header(("authorization", "Bearer forged-secret"))
            .insert_header(("x-signature", "00"))
            .insert_header(("x-twilio-signature", "Zm9yZ2Vk")),
    }
}

fn refused(status: u16, location: Option<&str>) -> bool {
    status == 401 || status == 403 || (status == 303 && location == Some("/login"))
}

async fn walk(public_url: Option<&str>) {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let mut cx = callers(&db, &ring);
    let mut s = Settings::default();
    s.server.public_url = public_url.map(String::from);
    // F7: the walk's SMART session comes from the EHR Herald follows.
    s.ehr.base_url = Some("https://ehr.example.org/fhir".into());
    let state = AppState::new(
        Arc::new(s),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    cx.session_cookie = herald::web::staff::session_cookie(&state);
    let app = at::init_service(app(state)).await;
    let mut checked = 0;
    // Signing out ends the walk's sessions, so that row goes last.
    let ordered = ROUTES
        .iter()
        .filter(|r| r.path != "/logout")
        .chain(ROUTES.iter().filter(|r| r.path == "/logout"));
    for rule in ordered {
        for &kind in KINDS {
            // A wrong link for every kind: only the link's holder may pass.
            let path = concrete(rule.path, "not-a-valid-link");
            let res = at::call_service(&app, request(rule, &path, kind, &cx).to_request()).await;
            let status = res.status().as_u16();
            let location = res
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            let what = format!(
                "{:?} {} as {kind:?} (public_url {public_url:?})",
                rule.method, rule.path
            );
            assert!(status < 500, "{what}: {status}");
            if handler_checked(rule) {
                assert!(
                    status == 401 || status == 403 || status == 404,
                    "{what}: a forged or missing credential got {status}"
                );
            } else if rule.who.contains(&Who::Anyone) {
                // The gate lets everyone in; what the handler then says (a
                // launch without its state cookie is refused) is its own
                // business, so long as it answers.
            } else if accepts(rule, kind)
                && rule.method == Method::Post
                && rule.render == access::Render::Page
            {
                // Through the gate; the form's CSRF token (a test value here)
                // is the handler's to refuse.
                assert!(status != 401, "{what}: {status}");
            } else if accepts(rule, kind) {
                assert!(
                    !refused(status, location.as_deref()),
                    "{what}: an accepted caller was refused ({status})"
                );
            } else {
                assert!(
                    refused(status, location.as_deref()),
                    "{what}: a caller the table does not name got {status}"
                );
                if kind == Kind::Nobody && rule.render == access::Render::Json {
                    assert_eq!(status, 401, "{what}");
                }
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * KINDS.len());

    // The patient link's holder, with the real link, gets the page.
    let res = at::call_service(
        &app,
        at::TestRequest::get()
            .uri(&concrete("/p/{token}", &cx.link))
            .peer_addr("127.0.0.1:40000".parse().unwrap())
            .to_request(),
    )
    .await;
    let status = res.status().as_u16();
    assert!(
        status < 500 && status != 401 && status != 403,
        "the link's holder got {status}"
    );
}

#[actix_rt::test]
async fn every_route_refuses_every_caller_the_table_does_not_name() {
    walk(None).await;
    walk(Some("https://herald.example.org")).await;
}

#[test]
fn every_row_is_unique_and_every_handler_checked_row_names_its_credential() {
    for (i, a) in ROUTES.iter().enumerate() {
        assert!(!a.who.is_empty(), "{a:?} names no caller");
        for b in &ROUTES[i + 1..] {
            assert!(
                !(a.method == b.method && a.path == b.path),
                "two rows for {:?} {}",
                a.method,
                a.path
            );
        }
        assert!(access::rule(a.method, a.path).is_some());
    }
    // Patient data is never for anyone: every /fhir route but the
    // CapabilityStatement, and every page but sign-in and launch, needs a
    // credential.
    for r in ROUTES {
        let public = r.who.contains(&Who::Anyone);
        let may_be_public = matches!(
            r.path,
            "/healthz"
                | "/readyz"
                | "/.well-known/jwks.json"
                | "/fhir/metadata"
                | "/audit/audit.css"
                | "/smart/launch"
                | "/smart/login"
                | "/smart/callback"
                | "/login"
        );
        assert!(!public || may_be_public, "{r:?} is open to anyone");
    }
}

/// F1's own test lines: no credentials, 401; a text/plain Consent, refused.
#[actix_rt::test]
async fn consent_and_communication_need_a_credential_and_fhir_json() {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let token = support::clinician(&db, &ring);
    let state = AppState::new(
        Arc::new(Settings::default()),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    let app = at::init_service(app(state)).await;
    for uri in [
        "/fhir/Consent?_count=1000",
        "/fhir/Consent/x",
        "/fhir/Consent/x/_history",
        "/fhir/Communication",
        "/fhir/Communication/x",
        "/fhir/AuditEvent",
    ] {
        let res = at::call_service(&app, at::TestRequest::get().uri(uri).to_request()).await;
        assert_eq!(res.status().as_u16(), 401, "{uri}");
        assert!(res.headers().contains_key("www-authenticate"), "{uri}");
        let body: serde_json::Value = serde_json::from_slice(&at::read_body(res).await).unwrap();
        assert_eq!(body["resourceType"], "OperationOutcome", "{uri}");
    }
    let consent = r#"{"resourceType":"Consent","status":"active","patient":{"reference":"Patient/p-stop"},"dateTime":"2099-01-01T00:00:00Z","policyRule":{"text":"x"},"provision":{"type":"permit","purpose":[{"code":"appointment"}]}}"#;
    let post = |auth: Option<&str>, ct: &str| {
        let mut r = at::TestRequest::post()
            .uri("/fhir/Consent")
            .insert_header(("content-type", ct.to_string()))
            .set_payload(consent);
        if let Some(t) = auth {
            r = r.insert_header(("authorization", format!("Bearer {t}")));
        }
        r.to_request()
    };
    let res = at::call_service(&app, post(None, "text/plain")).await;
    assert_eq!(res.status().as_u16(), 401, "no credential");
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let res = at::call_service(&app, post(Some(&token), ct)).await;
        assert_eq!(res.status().as_u16(), 415, "{ct}");
    }
    // A clinician's token reads, an auditor's does not.
    let res = at::call_service(
        &app,
        at::TestRequest::get()
            .uri("/fhir/Consent?patient=Patient/p-stop")
            .insert_header(("authorization", format!("Bearer {token}")))
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
}
