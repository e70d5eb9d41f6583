//! Issue 6 §3–4 acceptance: staff sign-in with password and TOTP, lockout,
//! idle and absolute session limits, CSRF, escaping, cookie flags, the
//! AuditEvents of every sign-in (valid FHIR R4), API tokens for auditors, and
//! break-glass (reason, time limit, webhook alert, purposeOfUse BTG).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::{HttpResponse, test as at, web};
use serde_json::Value;
use std::sync::Arc;

use herald::clock::{Clock as _, FixedClock};
use herald::config::{Settings, StaffSettings};
use herald::crypto::{KeyRing, totp};
use herald::domain::audit::{Activity, AuditRecord, Outcome};
use herald::domain::staff::Role;
use herald::service::staff::{self as svc, StaffError};
use herald::web::AppState;
use herald::web::staff::Staff;

use super::support::{self, TestDb};

const PASSWORD: &str = "correct horse battery staple";
const SIGN_IN_FAILED: &str = "Sign-in failed. Check your name, password and code";

struct Ctx {
    state: AppState,
    clock: Arc<FixedClock>,
    ring: KeyRing,
}

fn ctx_with(db: &TestDb, settings: Settings) -> Ctx {
    let (ring, _) = support::ready(db);
    let clock = Arc::new(support::clock());
    Ctx {
        state: AppState::new(
            Arc::new(settings),
            db.pool.clone(),
            Arc::new(ring.clone()),
            clock.clone(),
        ),
        clock,
        ring,
    }
}

fn ctx(db: &TestDb) -> Ctx {
    ctx_with(db, Settings::default())
}

fn add(db: &TestDb, cx: &Ctx, name: &str, role: Role) -> String {
    let (id, uri) = svc::add_user(
        &mut db.conn(),
        &cx.ring,
        cx.clock.now(),
        name,
        role,
        PASSWORD,
    )
    .unwrap();
    assert!(uri.starts_with("otpauth://totp/Herald:"), "{uri}");
    id
}

fn secret(db: &TestDb, cx: &Ctx, name: &str) -> Vec<u8> {
    herald::db::staff::credentials(&mut db.conn(), &cx.ring, name)
        .unwrap()
        .unwrap()
        .totp_secret
}

/// The code an authenticator app shows now.
fn code(db: &TestDb, cx: &Ctx, name: &str) -> String {
    let step = totp::step_at(cx.clock.now().timestamp());
    totp::code_for_step(&secret(db, cx, name), step).unwrap()
}

/// A well-formed code that is right for none of the accepted steps.
fn wrong_code(db: &TestDb, cx: &Ctx, name: &str) -> String {
    let s = secret(db, cx, name);
    let now = totp::step_at(cx.clock.now().timestamp());
    let right: Vec<String> = (now - 1..=now + 1)
        .map(|st| totp::code_for_step(&s, st).unwrap())
        .collect();
    (0..1000)
        .map(|i| format!("{:06}", 123_456 + i))
        .find(|c| !right.contains(c))
        .unwrap()
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_string()
}

async fn body(res: actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>) -> String {
    String::from_utf8(at::read_body(res).await.to_vec()).unwrap()
}

macro_rules! app {
    ($cx:expr) => {
        at::init_service(herald::web::app($cx.state.clone())).await
    };
}

fn req() -> at::TestRequest {
    at::TestRequest::default().peer_addr("127.0.0.1:40000".parse().unwrap())
}

/// GET /login, then POST it: the response (303 with a session cookie on success).
async fn sign_in<S, B>(
    app: &S,
    name: &str,
    password: &str,
    code: &str,
) -> (u16, String, Option<Cookie<'static>>)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let res = at::call_service(app, req().uri("/login").to_request()).await;
    assert_eq!(res.status().as_u16(), 200);
    let csrf_cookie = res
        .response()
        .cookies()
        .find(|c| c.name().ends_with("herald_login_csrf"))
        .unwrap()
        .into_owned();
    let html = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
    let csrf = field(&html, "csrf");
    let res = at::call_service(
        app,
        req()
            .method(actix_web::http::Method::POST)
            .uri("/login")
            .cookie(csrf_cookie)
            .set_form([
                ("name", name),
                ("password", password),
                ("code", code),
                ("csrf", csrf.as_str()),
            ])
            .to_request(),
    )
    .await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let session = res
        .response()
        .cookies()
        .find(|c| c.name().ends_with("herald_session"))
        .map(|c| c.into_owned());
    let text = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
    (status, if status == 303 { location } else { text }, session)
}

async fn get<S, B>(app: &S, uri: &str, session: &Cookie<'static>) -> (u16, String, String)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let res = at::call_service(app, req().uri(uri).cookie(session.clone()).to_request()).await;
    let status = res.status().as_u16();
    let location = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let text = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
    (status, text, location)
}

/// Every AuditEvent so far, parsed.
fn events(db: &TestDb) -> Vec<Value> {
    let mut out = Vec::new();
    herald::audit::export(
        &mut db.conn(),
        None,
        None,
        herald::audit::Format::Ndjson,
        &mut out,
    )
    .unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn logins(db: &TestDb) -> Vec<Value> {
    events(db)
        .into_iter()
        .filter(|e| e["type"]["code"] == "110114")
        .collect()
}

#[test]
fn totp_matches_rfc6238_appendix_b() {
    // The SHA-1 rows of RFC 6238 Appendix B (eight digits); Herald's six are
    // the same number mod 10^6.
    let seed = b"12345678901234567890";
    for (t, eight) in [
        (59i64, "94287082"),
        (1111111109, "07081804"),
        (1111111111, "14050471"),
        (1234567890, "89005924"),
        (2000000000, "69279037"),
        (20000000000, "65353130"),
    ] {
        assert_eq!(
            totp::code_for_step(seed, totp::step_at(t)).unwrap(),
            eight[2..],
            "T = {t}"
        );
        assert_eq!(
            totp::verify(seed, &eight[2..], t, None),
            Some(totp::step_at(t))
        );
    }
}

#[actix_web::test]
async fn sign_in_with_password_and_totp_opens_the_admin_page() {
    for db in support::backends() {
        let cx = ctx(&db);
        let admin = add(&db, &cx, "alice", Role::Admin);
        add(&db, &cx, "bob", Role::Clinician);
        let app = app!(cx);
        // Not signed in: pages redirect to /login.
        let res = at::call_service(&app, req().uri("/admin").to_request()).await;
        assert_eq!(res.status().as_u16(), 303);
        assert_eq!(res.headers().get("location").unwrap(), "/login");

        let (s, to, session) = sign_in(&app, "alice", PASSWORD, &code(&db, &cx, "alice")).await;
        assert_eq!((s, to.as_str()), (303, "/admin"), "{}", db.backend);
        let session = session.expect("a session cookie");
        assert_eq!(session.http_only(), Some(true));
        assert_eq!(session.same_site(), Some(SameSite::Strict));
        assert_eq!(session.path(), Some("/"));
        assert_ne!(
            session.secure(),
            Some(true),
            "plain http without public_url"
        );
        let (s, html, _) = get(&app, "/admin", &session).await;
        assert_eq!(s, 200);
        assert!(
            html.contains("<td>alice</td><td>admin</td><td>active</td>"),
            "{html}"
        );
        assert!(html.contains("<td>bob</td><td>clinician</td>"));
        assert!(
            !html.contains("argon2") && !html.contains("otpauth"),
            "no secrets"
        );
        // The session is stored as a hash only.
        assert!(!db.dump().contains(session.value()));
        // Signed in: /login says who, with a sign-out form.
        let (s, html, _) = get(&app, "/login", &session).await;
        assert_eq!(s, 200);
        assert!(html.contains("id=\"who\">alice</strong>"));
        // A clinician is not an admin.
        cx.clock.advance(chrono::Duration::seconds(30));
        let (_, _, bob) = sign_in(&app, "bob", PASSWORD, &code(&db, &cx, "bob")).await;
        let (s, _, _) = get(&app, "/admin", &bob.unwrap()).await;
        assert_eq!(s, 403);
        // Sign-out ends the session (CSRF token from the page).
        let csrf = field(&html, "csrf");
        let res = at::call_service(
            &app,
            req()
                .method(actix_web::http::Method::POST)
                .uri("/logout")
                .cookie(session.clone())
                .set_form([("csrf", csrf.as_str())])
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 303);
        let (s, _, to) = get(&app, "/admin", &session).await;
        assert_eq!((s, to.as_str()), (303, "/login"));
        let outs: Vec<Value> = logins(&db)
            .into_iter()
            .filter(|e| e["subtype"][0]["code"] == "110123")
            .collect();
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0]["agent"][0]["who"]["identifier"]["value"], admin);
    }
}

#[actix_web::test]
async fn wrong_or_replayed_totp_fails_with_one_generic_message() {
    for db in support::backends() {
        let cx = ctx(&db);
        add(&db, &cx, "carol", Role::Admin);
        let app = app!(cx);
        let (s, wrong_code_page, session) =
            sign_in(&app, "carol", PASSWORD, &wrong_code(&db, &cx, "carol")).await;
        assert_eq!(s, 401);
        assert!(session.is_none());
        assert!(wrong_code_page.contains(SIGN_IN_FAILED));
        let (s, wrong_password_page, _) =
            sign_in(&app, "carol", "not the password!", &code(&db, &cx, "carol")).await;
        assert_eq!(s, 401);
        let (s, unknown_page, _) = sign_in(&app, "nobody", PASSWORD, "123456").await;
        assert_eq!(s, 401);
        // The same words whichever factor failed (the CSRF token aside).
        let strip = |p: &str| p.replace(&field(p, "csrf"), "");
        assert_eq!(strip(&wrong_code_page), strip(&wrong_password_page));
        assert_eq!(strip(&wrong_code_page), strip(&unknown_page));
        // A code is good once.
        let c = code(&db, &cx, "carol");
        let (s, _, _) = sign_in(&app, "carol", PASSWORD, &c).await;
        assert_eq!(s, 303);
        let (s, _, session) = sign_in(&app, "carol", PASSWORD, &c).await;
        assert_eq!((s, session.is_none()), (401, true), "replayed code");
        cx.clock.advance(chrono::Duration::seconds(30));
        let (s, _, _) = sign_in(&app, "carol", PASSWORD, &code(&db, &cx, "carol")).await;
        assert_eq!(s, 303, "the next step's code works");
        let descs: Vec<String> = logins(&db)
            .iter()
            .filter_map(|e| e["outcomeDesc"].as_str().map(String::from))
            .collect();
        for d in [
            "wrong or expired one-time code",
            "wrong password",
            "unknown user",
            "one-time code already used",
        ] {
            assert!(descs.iter().any(|x| x == d), "{d} in {descs:?}");
        }
    }
}

#[actix_web::test]
async fn repeated_failures_lock_the_account_until_the_lock_ends() {
    for db in support::backends() {
        // More attempts than the rate limits allow in a minute (issue 11):
        // this test is about the lockout, so the limits are raised.
        let mut settings = Settings::default();
        settings.limits.login_per_minute = 1000;
        settings.limits.login_per_account_per_minute = 1000;
        let cx = ctx_with(&db, settings);
        let dave = add(&db, &cx, "dave", Role::Admin);
        let app = app!(cx);
        for _ in 0..5 {
            let (s, _, _) =
                sign_in(&app, "dave", "wrong password 123", &code(&db, &cx, "dave")).await;
            assert_eq!(s, 401);
        }
        let user = herald::db::staff::user(&mut db.conn(), &dave)
            .unwrap()
            .unwrap();
        assert_eq!(
            user.locked_until,
            Some(cx.clock.now() + chrono::Duration::minutes(15))
        );
        // Right credentials fail while locked, with the same message.
        cx.clock.advance(chrono::Duration::minutes(14));
        let (s, page, _) = sign_in(&app, "dave", PASSWORD, &code(&db, &cx, "dave")).await;
        assert_eq!(s, 401, "{}", db.backend);
        assert!(page.contains(SIGN_IN_FAILED));
        // The lock ends.
        cx.clock.advance(chrono::Duration::minutes(1));
        let (s, to, _) = sign_in(&app, "dave", PASSWORD, &code(&db, &cx, "dave")).await;
        assert_eq!((s, to.as_str()), (303, "/admin"));
        // Every attempt is audited; the lockout and the locked attempt are serious.
        let ev = logins(&db);
        assert_eq!(
            ev.len(),
            5 + 1 + 1 + 1,
            "5 failures, the lockout, 1 locked try, 1 success"
        );
        let serious: Vec<&str> = ev
            .iter()
            .filter(|e| e["outcome"] == "8")
            .map(|e| e["outcomeDesc"].as_str().unwrap())
            .collect();
        assert_eq!(
            serious,
            [
                "account locked for 15 minutes after 5 failed sign-ins",
                "account locked"
            ]
        );
        assert_eq!(ev.iter().filter(|e| e["outcome"] == "4").count(), 5);
        assert_eq!(ev.last().unwrap()["outcome"], "0");
        // `herald user unlock` lifts a lock at once (and is audited).
        for _ in 0..5 {
            sign_in(&app, "dave", "wrong password 123", "000000").await;
        }
        assert!(
            herald::db::staff::user(&mut db.conn(), &dave)
                .unwrap()
                .unwrap()
                .locked_until
                > Some(cx.clock.now())
        );
        svc::unlock(&mut db.conn(), cx.clock.now(), "dave").unwrap();
        cx.clock.advance(chrono::Duration::seconds(30));
        let (s, _, _) = sign_in(&app, "dave", PASSWORD, &code(&db, &cx, "dave")).await;
        assert_eq!(s, 303);
        assert!(
            events(&db)
                .iter()
                .any(|e| e["subtype"][0]["code"] == "110137"
                    && e["entity"][0]["detail"][0]["valueString"] == "unlocked")
        );
    }
}

#[actix_web::test]
async fn a_session_idle_past_the_limit_is_logged_out() {
    for db in support::backends() {
        let cx = ctx(&db);
        let erin = add(&db, &cx, "erin", Role::Admin);
        let app = app!(cx);
        let (_, _, session) = sign_in(&app, "erin", PASSWORD, &code(&db, &cx, "erin")).await;
        let session = session.unwrap();
        // Each request within 15 minutes keeps it alive.
        for _ in 0..3 {
            cx.clock.advance(chrono::Duration::minutes(14));
            let (s, _, _) = get(&app, "/admin", &session).await;
            assert_eq!(s, 200, "{}", db.backend);
        }
        cx.clock.advance(chrono::Duration::minutes(15));
        let (s, _, to) = get(&app, "/admin", &session).await;
        assert_eq!((s, to.as_str()), (303, "/login"));
        // Gone for good, and audited as a logout by timeout.
        cx.clock.advance(chrono::Duration::seconds(1));
        let (s, _, _) = get(&app, "/admin", &session).await;
        assert_eq!(s, 303);
        let out: Vec<Value> = logins(&db)
            .into_iter()
            .filter(|e| e["subtype"][0]["code"] == "110123")
            .collect();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["outcomeDesc"], "idle timeout");
        assert_eq!(out[0]["agent"][0]["who"]["identifier"]["value"], erin);
    }
}

#[actix_web::test]
async fn a_busy_session_ends_at_the_absolute_limit() {
    let db = support::sqlite();
    let settings = Settings {
        staff: StaffSettings {
            absolute_hours: 1,
            ..StaffSettings::default()
        },
        ..Settings::default()
    };
    let cx = ctx_with(&db, settings);
    add(&db, &cx, "frank", Role::Admin);
    let app = app!(cx);
    let (_, _, session) = sign_in(&app, "frank", PASSWORD, &code(&db, &cx, "frank")).await;
    let session = session.unwrap();
    for _ in 0..5 {
        cx.clock.advance(chrono::Duration::minutes(10));
        assert_eq!(get(&app, "/admin", &session).await.0, 200);
    }
    cx.clock.advance(chrono::Duration::minutes(10));
    assert_eq!(
        get(&app, "/admin", &session).await.0,
        303,
        "an hour after sign-in"
    );
    let last = logins(&db).pop().unwrap();
    assert_eq!(last["outcomeDesc"], "absolute session limit");
}

#[actix_web::test]
async fn forms_without_their_csrf_token_are_refused() {
    let db = support::sqlite();
    let cx = ctx(&db);
    add(&db, &cx, "gina", Role::Clinician);
    let app = app!(cx);
    // /login without the cookie and field: refused before any check, nothing audited.
    let res = at::call_service(
        &app,
        req()
            .method(actix_web::http::Method::POST)
            .uri("/login")
            .set_form([
                ("name", "gina"),
                ("password", PASSWORD),
                ("code", code(&db, &cx, "gina").as_str()),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(
        res.response()
            .cookies()
            .all(|c| !c.name().ends_with("herald_session"))
    );
    // A field without the cookie (or another page's token) is refused too.
    let page = body(at::call_service(&app, req().uri("/login").to_request()).await).await;
    let res = at::call_service(
        &app,
        req()
            .method(actix_web::http::Method::POST)
            .uri("/login")
            .set_form([
                ("name", "gina"),
                ("password", PASSWORD),
                ("code", code(&db, &cx, "gina").as_str()),
                ("csrf", field(&page, "csrf").as_str()),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    assert!(logins(&db).is_empty());
    // Signed in, a POST without the session's token changes nothing.
    let (_, _, session) = sign_in(&app, "gina", PASSWORD, &code(&db, &cx, "gina")).await;
    let session = session.unwrap();
    for (uri, form) in [
        ("/logout", vec![("csrf", "forged")]),
        (
            "/break-glass",
            vec![
                ("patient", "p-1"),
                ("reason", "patient unconscious in the ED"),
            ],
        ),
    ] {
        let res = at::call_service(
            &app,
            req()
                .method(actix_web::http::Method::POST)
                .uri(uri)
                .cookie(session.clone())
                .set_form(form)
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 403, "{uri}");
    }
    assert_eq!(
        get(&app, "/break-glass", &session).await.0,
        200,
        "still signed in"
    );
    let mut c = db.conn();
    let user = herald::db::staff::user_by_name(&mut c, "gina")
        .unwrap()
        .unwrap();
    assert!(
        svc::break_glass_active(&mut c, &user.id, "p-1", cx.clock.now())
            .unwrap()
            .is_none()
    );
}

#[actix_web::test]
async fn pages_escape_names_and_send_strict_headers() {
    let db = support::sqlite();
    let settings = Settings {
        server: herald::config::ServerSettings {
            public_url: Some("https://herald.example.org".into()),
            ..Default::default()
        },
        ..Settings::default()
    };
    let cx = ctx_with(&db, settings);
    add(&db, &cx, "<script>alert(1)</script>", Role::Clinician);
    add(&db, &cx, "hal", Role::Admin);
    let app = app!(cx);
    let res = at::call_service(&app, req().uri("/login").to_request()).await;
    let csp = res
        .headers()
        .get("content-security-policy")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(
        res.headers().get("strict-transport-security").unwrap(),
        "max-age=31536000; includeSubDomains"
    );
    let csrf = res
        .response()
        .cookies()
        .find(|c| c.name().ends_with("herald_login_csrf"))
        .unwrap()
        .into_owned();
    assert_eq!(
        (csrf.http_only(), csrf.secure(), csrf.same_site()),
        (Some(true), Some(true), Some(SameSite::Strict))
    );
    // Issue 11 F8d: over TLS the cookies carry the __Host- prefix.
    assert_eq!(csrf.name(), "__Host-herald_login_csrf");
    let (s, _, session) = sign_in(&app, "hal", PASSWORD, &code(&db, &cx, "hal")).await;
    assert_eq!(s, 303);
    let session = session.unwrap();
    assert_eq!(
        (
            session.http_only(),
            session.secure(),
            session.same_site(),
            session.path()
        ),
        (Some(true), Some(true), Some(SameSite::Strict), Some("/"))
    );
    assert_eq!(session.name(), "__Host-herald_session");
    let (_, html, _) = get(&app, "/admin", &session).await;
    assert!(
        html.contains("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>"),
        "{html}"
    );
    assert!(!html.contains("<script>"));
    // The name signs in as typed, and shows escaped in the header.
    cx.clock.advance(chrono::Duration::seconds(30));
    let name = "<script>alert(1)</script>";
    let (s, _, x) = sign_in(&app, name, PASSWORD, &code(&db, &cx, name)).await;
    assert_eq!(s, 303);
    let (_, html, _) = get(&app, "/break-glass", &x.unwrap()).await;
    assert!(html.contains("id=\"who\">&lt;script&gt;alert(1)&lt;/script&gt;</strong>"));
    assert!(!html.contains("<script>"));
}

async fn whoami(staff: Staff) -> HttpResponse {
    HttpResponse::Ok().body(format!("{} {}", staff.role.code(), staff.user_id))
}

async fn audit_only(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, herald::web::ApiError> {
    let staff = herald::web::staff::require(&req, &state, &[Role::Auditor]).await?;
    Ok(HttpResponse::Ok().body(staff.user_id))
}

#[actix_web::test]
async fn auditors_use_api_tokens_through_the_extractor() {
    let db = support::sqlite();
    let cx = ctx(&db);
    let ivy = add(&db, &cx, "ivy", Role::Auditor);
    add(&db, &cx, "jon", Role::Admin);
    let mut c = db.conn();
    let token = svc::issue_token(&mut c, cx.clock.now(), "ivy", 30).unwrap();
    assert!(token.starts_with("herald_"));
    assert!(matches!(
        svc::issue_token(&mut c, cx.clock.now(), "jon", 30),
        Err(StaffError::NoTokenForRole)
    ));
    drop(c);
    assert!(!db.dump().contains(&token), "stored hashed");
    let app = at::init_service(
        actix_web::App::new()
            .configure(herald::web::configure(cx.state.clone()))
            .route("/test/whoami", web::get().to(whoami))
            .route("/test/audit", web::get().to(audit_only)),
    )
    .await;
    let call = |uri: &'static str, auth: Option<String>| {
        let mut r = req().uri(uri);
        if let Some(a) = auth {
            r = r.insert_header(("authorization", a));
        }
        r.to_request()
    };
    let res = at::call_service(&app, call("/test/whoami", None)).await;
    assert_eq!(res.status().as_u16(), 401);
    let res = at::call_service(&app, call("/test/audit", Some(format!("Bearer {token}")))).await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(body(res).await, ivy);
    let res = at::call_service(
        &app,
        call("/test/audit", Some("Bearer herald_forged".into())),
    )
    .await;
    assert_eq!(res.status().as_u16(), 401);
    // An admin's session is someone, but not an auditor.
    let (_, _, jon) = sign_in(&app, "jon", PASSWORD, &code(&db, &cx, "jon")).await;
    let res = at::call_service(
        &app,
        req()
            .uri("/test/audit")
            .cookie(jon.clone().unwrap())
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 403);
    let res = at::call_service(
        &app,
        req().uri("/test/whoami").cookie(jon.unwrap()).to_request(),
    )
    .await;
    assert!(body(res).await.starts_with("admin "));
    // Tokens expire.
    cx.clock.advance(chrono::Duration::days(30));
    let res = at::call_service(&app, call("/test/audit", Some(format!("Bearer {token}")))).await;
    assert_eq!(res.status().as_u16(), 401);
}

/// A one-shot HTTP receiver on loopback: the body of the first POST.
fn webhook() -> (String, std::sync::mpsc::Receiver<String>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/alert", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut len = 0usize;
        let mut first = String::new();
        reader.read_line(&mut first).unwrap();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
            .unwrap();
        tx.send(format!(
            "{}\n{}",
            first.trim(),
            String::from_utf8(body).unwrap()
        ))
        .unwrap();
    });
    (url, rx)
}

#[actix_web::test]
async fn break_glass_needs_a_reason_ends_alerts_and_audits_btg() {
    for db in support::backends() {
        let (url, alerts) = webhook();
        let settings = Settings {
            staff: StaffSettings {
                alert_webhook: Some(herald::config::Secret::new(url)),
                ..StaffSettings::default()
            },
            ..Settings::default()
        };
        let cx = ctx_with(&db, settings);
        let kim = add(&db, &cx, "kim", Role::Clinician);
        add(&db, &cx, "lee", Role::Admin);
        let app = app!(cx);
        let (s, to, session) = sign_in(&app, "kim", PASSWORD, &code(&db, &cx, "kim")).await;
        assert_eq!((s, to.as_str()), (303, "/break-glass"));
        let session = session.unwrap();
        let (_, page, _) = get(&app, "/break-glass?patient=pat-7", &session).await;
        assert!(page.contains("value=\"pat-7\""));
        let csrf = field(&page, "csrf");
        let post = |reason: &str| {
            req()
                .method(actix_web::http::Method::POST)
                .uri("/break-glass")
                .cookie(session.clone())
                .set_form([
                    ("csrf", csrf.as_str()),
                    ("patient", "pat-7"),
                    ("reason", reason),
                ])
                .to_request()
        };
        // No reason, no access.
        let res = at::call_service(&app, post("urgent")).await;
        assert_eq!(res.status().as_u16(), 400);
        assert!(body(res).await.contains("at least 10 characters"));
        let mut c = db.conn();
        assert!(
            svc::break_glass_active(&mut c, &kim, "pat-7", cx.clock.now())
                .unwrap()
                .is_none()
        );
        drop(c);
        // A reason opens it for an hour.
        let reason = "Unresponsive in the ED, no EHR launch available";
        let res = at::call_service(&app, post(reason)).await;
        assert_eq!(res.status().as_u16(), 303);
        let (_, page, _) = get(&app, "/break-glass", &session).await;
        assert!(
            page.contains("Patient/pat-7</a> until 2026-12-01T18:00:00Z</li>"),
            "{page}"
        );
        let alert = alerts
            .recv_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let (line, json) = alert.split_once('\n').unwrap();
        assert!(line.starts_with("POST /alert"), "{line}");
        let alert: Value = serde_json::from_str(json).unwrap();
        assert_eq!(alert["alert"], "break-glass");
        assert_eq!(alert["user"], kim);
        assert_eq!(alert["patient"], "pat-7");
        assert!(
            !json.contains("Unresponsive"),
            "the reason is not in the alert"
        );
        let mut c = db.conn();
        let grant = svc::break_glass_active(&mut c, &kim, "pat-7", cx.clock.now())
            .unwrap()
            .expect("a grant");
        assert_eq!(alert["grant"], grant.id);
        assert!(
            svc::break_glass_active(&mut c, &kim, "pat-8", cx.clock.now())
                .unwrap()
                .is_none()
        );
        // The reason is kept sealed, for review.
        assert_eq!(
            herald::db::staff::grant_reason(&mut c, &cx.ring, &grant.id)
                .unwrap()
                .as_deref(),
            Some(reason)
        );
        // What kim does to the patient meanwhile is marked BTG.
        let actor = svc::actor_for(&mut c, &kim, Some("pat-7"), cx.clock.now()).unwrap();
        let read = AuditRecord {
            recorded: cx.clock.now(),
            activity: Activity::RecordQuery {
                resource_type: "Communication".into(),
                query: "patient=pat-7".into(),
            },
            actor: herald::domain::audit::Actor::Anonymous("127.0.0.1".into()),
            outcome: Outcome::Success,
            outcome_desc: None,
            patient_id: Some("pat-7".into()),
            request_id: None,
            ehr: None,
        }
        .by(actor);
        herald::audit::append_now(&mut c, std::slice::from_ref(&read)).unwrap();
        // It ends after break_glass_minutes.
        cx.clock.advance(chrono::Duration::minutes(60));
        assert!(
            svc::break_glass_active(&mut c, &kim, "pat-7", cx.clock.now())
                .unwrap()
                .is_none()
        );
        assert_eq!(
            svc::actor_for(&mut c, &kim, Some("pat-7"), cx.clock.now()).unwrap(),
            herald::domain::audit::Actor::Staff(kim.clone())
        );
        drop(c);
        // Only clinicians may break the glass.
        cx.clock.advance(chrono::Duration::seconds(30));
        let (_, _, lee) = sign_in(&app, "lee", PASSWORD, &code(&db, &cx, "lee")).await;
        assert_eq!(get(&app, "/break-glass", &lee.unwrap()).await.0, 403);

        let ev = events(&db);
        let btg = |e: &Value| {
            e["purposeOfEvent"]
                .as_array()
                .is_some_and(|p| p.iter().any(|c| c["coding"][0]["code"] == "BTG"))
        };
        let glass: Vec<&Value> = ev
            .iter()
            .filter(|e| e["subtype"][0]["code"] == "110127")
            .collect();
        assert_eq!(glass.len(), 2, "the refusal and the grant");
        assert_eq!(glass[0]["outcome"], "4");
        assert_eq!(glass[1]["outcome"], "0");
        assert!(glass.iter().all(|e| btg(e)));
        assert_eq!(glass[1]["entity"][0]["what"]["reference"], "Patient/pat-7");
        assert_eq!(
            glass[1]["agent"][0]["purposeOfUse"][0]["coding"][0]["code"],
            "BTG"
        );
        let under = ev
            .iter()
            .find(|e| {
                e["type"]["code"] == "rest"
                    && e["entity"][0]["what"]["reference"] == "Patient/pat-7"
            })
            .unwrap();
        assert!(btg(under), "{under}");
        assert_eq!(
            under["agent"][0]["policy"][0],
            format!("urn:herald:break-glass:{}", grant.id)
        );
        assert!(!ev.iter().any(|e| e.to_string().contains("Unresponsive")));
        assert!(!db.dump().contains("Unresponsive"), "the reason is sealed");
    }
}

#[actix_web::test]
async fn sign_in_audit_events_are_valid_fhir_r4() {
    let db = support::sqlite();
    let cx = ctx(&db);
    add(&db, &cx, "mia", Role::Clinician);
    let app = app!(cx);
    sign_in(&app, "nobody-here", "some password", "123456").await;
    sign_in(&app, "mia", "wrong password!!", &code(&db, &cx, "mia")).await;
    let (_, _, session) = sign_in(&app, "mia", PASSWORD, &code(&db, &cx, "mia")).await;
    let session = session.unwrap();
    let (_, page, _) = get(&app, "/break-glass", &session).await;
    let res = at::call_service(
        &app,
        req()
            .method(actix_web::http::Method::POST)
            .uri("/break-glass")
            .cookie(session.clone())
            .set_form([
                ("csrf", field(&page, "csrf").as_str()),
                ("patient", "pat-1"),
                ("reason", "Cardiac arrest on ward 3"),
            ])
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 303);
    cx.clock.advance(chrono::Duration::minutes(20));
    assert_eq!(
        get(&app, "/break-glass", &session).await.0,
        303,
        "idle logout"
    );
    for _ in 0..5 {
        sign_in(&app, "mia", "wrong password!!", "000000").await;
    }
    svc::unlock(&mut db.conn(), cx.clock.now(), "mia").unwrap();
    let ev = events(&db);
    let ndjson: String = ev.iter().map(|e| format!("{e}\n")).collect();
    for secret in [
        PASSWORD,
        "wrong password!!",
        "nobody-here",
        "Cardiac",
        session.value(),
    ] {
        assert!(!ndjson.contains(secret), "{secret} in the audit log");
    }
    let unknown = ev.iter().find(|e| e["type"]["code"] == "110114").unwrap();
    assert_eq!(unknown["type"]["code"], "110114");
    assert_eq!(unknown["subtype"][0]["code"], "110122");
    assert_eq!(unknown["outcome"], "4");
    assert_eq!(
        unknown["agent"][0]["who"]["identifier"]["system"],
        "urn:herald:attempted-user"
    );
    assert_eq!(unknown["agent"][0]["network"]["address"], "127.0.0.1");
    for (ty, sub) in [
        ("110114", "110122"),
        ("110114", "110123"),
        ("110113", "110127"),
        ("110113", "110137"),
    ] {
        assert!(
            ev.iter()
                .any(|e| e["type"]["code"] == ty && e["subtype"][0]["code"] == sub),
            "{ty}/{sub}"
        );
    }
    let out = super::demo::validate(&ndjson);
    let report = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("\"valid\":false"))
        .collect();
    assert!(out.status.success(), "invalid AuditEvents: {bad:?}");
    assert!(matches!(
        herald::audit::verify(&mut db.conn()).unwrap(),
        herald::audit::Verdict::Intact { .. }
    ));
}

#[test]
fn user_commands_on_the_command_line() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let herald = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HERALD_DATA_DIR", dir.path().join("data"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    assert_eq!(herald(&["keys", "init"], "").0, Some(0));
    let (code, out, err) = herald(
        &["user", "add", "nurse.joy", "--role", "clinician"],
        "short\n",
    );
    assert_eq!(code, Some(1));
    assert!(out.is_empty());
    assert_eq!(err, "herald: the password must be at least 12 characters\n");
    let (code, out, err) = herald(
        &["user", "add", "nurse.joy", "--role", "clinician"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!(code, Some(0), "{err}");
    let uri = out.trim();
    assert!(
        uri.starts_with("otpauth://totp/Herald:nurse.joy?secret=")
            && uri.contains("&issuer=Herald"),
        "{uri}"
    );
    let (code, _, err) = herald(
        &["user", "add", "nurse.joy", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    assert_eq!((code, err.lines().count()), (Some(1), 1), "{err}");
    assert!(err.contains("already exists"));
    // Clinicians get API tokens (the Consent and Communication API, issue
    // 11); administrators do not.
    let (code, out, err) = herald(&["user", "token", "nurse.joy"], "");
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("herald_"), "{out}");
    herald(
        &["user", "add", "ada", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    );
    let (code, _, err) = herald(&["user", "token", "ada"], "");
    assert_eq!(code, Some(1));
    assert!(err.contains("auditors and clinicians only"), "{err}");
    herald(
        &["user", "add", "audrey", "--role", "auditor"],
        &format!("{PASSWORD}\n"),
    );
    let (code, out, _) = herald(&["user", "token", "audrey", "--days", "7"], "");
    assert_eq!(code, Some(0));
    assert!(out.trim().starts_with("herald_") && out.trim().len() > 40);
    let (code, out, _) = herald(&["user", "unlock", "audrey"], "");
    assert_eq!((code, out.as_str()), (Some(0), "user: unlocked\n"));
    let (code, _, err) = herald(&["user", "unlock", "nobody"], "");
    assert_eq!(code, Some(1));
    assert!(err.starts_with("herald: no such user"), "{err}");
    let (code, _, _) = herald(&["user", "add", "x", "--role", "root"], "");
    assert_eq!(code, Some(2), "usage error");
    // Each change is in the audit log.
    let (_, out, _) = herald(&["audit", "export"], "");
    let changes: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["subtype"][0]["code"] == "110137")
        .collect();
    let kinds: Vec<&str> = changes
        .iter()
        .map(|e| e["entity"][0]["detail"][0]["valueString"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "token-issued",
            "created",
            "created",
            "token-issued",
            "unlocked"
        ]
    );
}

#[actix_web::test]
async fn the_staff_inbox_lists_texts_to_read_and_closes_them() {
    // Issue 5 §3–4: texts Herald cannot act on alone wait for a person.
    let db = support::sqlite();
    let cx = ctx(&db);
    add(&db, &cx, "carol", Role::Clinician);
    add(&db, &cx, "dan", Role::Auditor);
    let now = cx.clock.now();
    herald::db::inbound::insert(
        &mut db.conn(),
        &cx.ring,
        &herald::db::inbound::NewInbound {
            dedupe_key: "SMinbox1",
            provider: "twilio",
            message_ref: "SMinbox1",
            patient_id: Some("p-in"),
            reading: "other",
            body: "<b>can I bring my dog?</b>",
            received_at: now,
            due_by: Some(now + chrono::Duration::hours(24)),
        },
    )
    .unwrap();
    let app = app!(cx);
    let res = at::call_service(&app, req().uri("/inbox").to_request()).await;
    assert_eq!(res.status().as_u16(), 303, "signed out: to /login");
    let (_, _, auditor) = sign_in(&app, "dan", PASSWORD, &code(&db, &cx, "dan")).await;
    let (s, _, _) = get(&app, "/inbox", &auditor.unwrap()).await;
    assert_eq!(s, 403, "auditors do not answer patients");
    let (_, _, session) = sign_in(&app, "carol", PASSWORD, &code(&db, &cx, "carol")).await;
    let session = session.unwrap();
    let (s, html, _) = get(&app, "/inbox", &session).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("&lt;b&gt;can I bring my dog?&lt;/b&gt;"),
        "escaped: {html}"
    );
    let csrf = field(&html, "csrf");
    let post = |csrf: &str| {
        req()
            .method(actix_web::http::Method::POST)
            .uri("/inbox/done")
            .cookie(session.clone())
            .set_form([("csrf", csrf), ("key", "SMinbox1")])
            .to_request()
    };
    let res = at::call_service(&app, post("forged")).await;
    assert_eq!(res.status().as_u16(), 403);
    assert_eq!(
        herald::db::inbound::open_queue(&mut db.conn(), &cx.ring)
            .unwrap()
            .len(),
        1
    );
    let res = at::call_service(&app, post(&csrf)).await;
    assert_eq!(res.status().as_u16(), 303);
    assert!(
        herald::db::inbound::open_queue(&mut db.conn(), &cx.ring)
            .unwrap()
            .is_empty()
    );
    let (_, html, _) = get(&app, "/inbox", &session).await;
    assert!(html.contains("Nothing waits for you"));
    assert!(events(&db).iter().any(|e| {
        e.to_string().contains("inbox-done")
            || e["entity"]
                .as_array()
                .is_some_and(|x| x.iter().any(|x| x["query"].is_string()))
    }));
}

#[actix_web::test]
async fn only_auditors_read_the_audit_log() {
    // Issue 6 item 5: auditor role only — bearer tokens for the API, a
    // session for the page; a clinician gets 403, nobody 401.
    let db = support::sqlite();
    let cx = ctx(&db);
    add(&db, &cx, "erin", Role::Admin);
    add(&db, &cx, "audra", Role::Auditor);
    let token = svc::issue_token(&mut db.conn(), cx.clock.now(), "audra", 7).unwrap();
    assert!(matches!(
        svc::issue_token(&mut db.conn(), cx.clock.now(), "erin", 7),
        Err(StaffError::NoTokenForRole)
    ));
    let app = app!(cx);
    let api = |auth: Option<String>| {
        let mut r = req().uri("/fhir/AuditEvent?_count=5");
        if let Some(a) = auth {
            r = r.insert_header(("authorization", a));
        }
        r.to_request()
    };
    assert_eq!(
        at::call_service(&app, api(None)).await.status().as_u16(),
        401
    );
    assert_eq!(
        at::call_service(&app, api(Some("Bearer hrt_forged".into())))
            .await
            .status()
            .as_u16(),
        401
    );
    assert_eq!(
        at::call_service(&app, api(Some(format!("Bearer {token}"))))
            .await
            .status()
            .as_u16(),
        200
    );
    let (_, _, clinician) = sign_in(&app, "erin", PASSWORD, &code(&db, &cx, "erin")).await;
    let clinician = clinician.unwrap();
    let (s, _, _) = get(&app, "/audit", &clinician).await;
    assert_eq!(s, 403, "a clinician's session is refused");
    let res = at::call_service(
        &app,
        req()
            .uri("/fhir/AuditEvent")
            .cookie(clinician.clone())
            .to_request(),
    )
    .await;
    assert_eq!(
        res.status().as_u16(),
        401,
        "the API takes no browser cookie"
    );
    let (_, _, auditor) = sign_in(&app, "audra", PASSWORD, &code(&db, &cx, "audra")).await;
    let (s, html, _) = get(&app, "/audit", &auditor.unwrap()).await;
    assert_eq!(s, 200, "{html}");
    let res = at::call_service(&app, req().uri("/audit").to_request()).await;
    assert_eq!(res.status().as_u16(), 303, "signed out: to /login");
}

/// Issue 11 F8j: a grant opens its patient in a read-only staff view —
/// consents and messages — for the clinician it was made for and only while
/// it lasts; the view is audited with purposeOfUse BTG and the grant.
#[actix_web::test]
async fn a_grant_opens_its_patient_read_only_while_it_lasts() {
    for db in support::backends() {
        let cx = ctx(&db);
        let kim = add(&db, &cx, "kim", Role::Clinician);
        add(&db, &cx, "ann", Role::Clinician);
        add(&db, &cx, "lee", Role::Admin);
        super::channels::patient(
            &db,
            &cx.ring,
            "pat-9",
            Some("+12125550142"),
            None,
            "en-US",
            &[(herald::domain::Channel::Sms, "+12125550142")],
        );
        let app = app!(cx);
        let (_, _, session) = sign_in(&app, "kim", PASSWORD, &code(&db, &cx, "kim")).await;
        let session = session.unwrap();
        assert_eq!(
            get(&app, "/break-glass/no-such-grant", &session).await.0,
            404
        );
        let (_, page, _) = get(&app, "/break-glass", &session).await;
        let csrf = field(&page, "csrf");
        let res = at::call_service(
            &app,
            req()
                .method(actix_web::http::Method::POST)
                .uri("/break-glass")
                .cookie(session.clone())
                .set_form([
                    ("csrf", csrf.as_str()),
                    ("patient", "pat-9"),
                    ("reason", "Unresponsive in the ED, no EHR launch available"),
                ])
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 303);
        let view = res
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let grant = svc::break_glass_active(&mut db.conn(), &kim, "pat-9", cx.clock.now())
            .unwrap()
            .unwrap();
        assert_eq!(view, format!("/break-glass/{}", grant.id));
        let (status, page, _) = get(&app, &view, &session).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("<span id=\"patient-id\">pat-9</span>"),
            "{page}"
        );
        assert!(
            page.contains("<tr><td>sms</td><td>appointment</td><td>permit</td>"),
            "{page}"
        );
        assert!(page.contains("id=\"messages\""));
        assert_eq!(
            page.matches("<form").count(),
            page.matches("action=\"/logout\"").count(),
            "read-only: no form but sign-out"
        );
        // Not for another clinician, not for an admin.
        let (_, _, ann) = sign_in(&app, "ann", PASSWORD, &code(&db, &cx, "ann")).await;
        assert_eq!(get(&app, &view, &ann.unwrap()).await.0, 404);
        cx.clock.advance(chrono::Duration::seconds(30));
        let (_, _, lee) = sign_in(&app, "lee", PASSWORD, &code(&db, &cx, "lee")).await;
        assert_eq!(get(&app, &view, &lee.unwrap()).await.0, 403);
        // The view is audited as emergency access under this grant.
        let ev = events(&db);
        let read = ev
            .iter()
            .find(|e| {
                e["subtype"][0]["code"] == "search-type"
                    && e["entity"][0]["what"]["reference"] == "Patient/pat-9"
            })
            .expect("the view is audited");
        assert_eq!(
            read["agent"][0]["purposeOfUse"][0]["coding"][0]["code"],
            "BTG"
        );
        assert_eq!(
            read["agent"][0]["policy"][0],
            format!("urn:herald:break-glass:{}", grant.id)
        );
        // Once the grant ends, the view is gone.
        cx.clock.advance(chrono::Duration::minutes(61));
        let (_, _, again) = sign_in(&app, "kim", PASSWORD, &code(&db, &cx, "kim")).await;
        assert_eq!(get(&app, &view, &again.unwrap()).await.0, 404);
    }
}
