//! Issue 11 F5c–e, F8d, F8i: rate limits on sign-in, SMART, webhooks and
//! preference links (429 + Retry-After, nothing written for a refusal), the
//! bound on password checks (503 + Retry-After, no argon2 run), the sign-in
//! CSRF token bound to the browser and to 30 minutes, `__Host-` Secure
//! cookies over TLS, the read-only lookup of unknown session cookies, the
//! scheduled purge of expired sessions, and a login flood against a real
//! `herald serve` (memory and availability).

use actix_web::cookie::Cookie;
use actix_web::test as at;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

use herald::clock::{Clock as _, FixedClock};
use herald::config::Settings;
use herald::crypto::{KeyRing, totp};
use herald::domain::staff::Role;
use herald::service::staff as svc;
use herald::web::AppState;

use super::support::{self, TestDb};

const PASSWORD: &str = "correct horse battery staple";

struct Ctx {
    state: AppState,
    clock: Arc<FixedClock>,
    ring: KeyRing,
}

fn ctx(db: &TestDb, settings: Settings) -> Ctx {
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

fn with_limits(f: impl FnOnce(&mut herald::config::LimitsSettings)) -> Settings {
    let mut s = Settings::default();
    f(&mut s.limits);
    s
}

fn add(db: &TestDb, cx: &Ctx, name: &str) {
    svc::add_user(
        &mut db.conn(),
        &cx.ring,
        cx.clock.now(),
        name,
        Role::Admin,
        PASSWORD,
    )
    .unwrap();
}

fn code(db: &TestDb, cx: &Ctx, name: &str) -> String {
    let secret = herald::db::staff::credentials(&mut db.conn(), &cx.ring, name)
        .unwrap()
        .unwrap()
        .totp_secret;
    totp::code_for_step(&secret, totp::step_at(cx.clock.now().timestamp())).unwrap()
}

/// How many AuditEvents the chain holds.
fn audit_count(db: &TestDb) -> usize {
    let mut out = Vec::new();
    herald::audit::export(
        &mut db.conn(),
        None,
        None,
        herald::audit::Format::Ndjson,
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap().lines().count()
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap() + marker.len();
    let len = html[start..].find('"').unwrap();
    html[start..start + len].to_string()
}

fn req() -> at::TestRequest {
    at::TestRequest::default().peer_addr("127.0.0.1:40000".parse().unwrap())
}

macro_rules! app {
    ($cx:expr) => {
        at::init_service(herald::web::app($cx.state.clone())).await
    };
}

/// GET /login: the browser cookie and the form's token.
macro_rules! login_form {
    ($app:expr) => {{
        let res = at::call_service(&$app, req().uri("/login").to_request()).await;
        assert_eq!(res.status().as_u16(), 200);
        let cookie = res
            .response()
            .cookies()
            .find(|c| c.name().ends_with("herald_login_csrf"))
            .unwrap()
            .into_owned();
        let html = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
        (cookie, field(&html, "csrf"))
    }};
}

/// POST /login with a cookie and token: status, headers, body.
macro_rules! post_login {
    ($app:expr, $cookie:expr, $csrf:expr, $name:expr, $code:expr) => {{
        let name: &str = $name;
        let code: &str = $code;
        let csrf: &str = $csrf.as_str();
        let res = at::call_service(
            &$app,
            req()
                .method(actix_web::http::Method::POST)
                .uri("/login")
                .cookie($cookie.clone())
                .set_form([
                    ("name", name),
                    ("password", PASSWORD),
                    ("code", code),
                    ("csrf", csrf),
                ])
                .to_request(),
        )
        .await;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let cookies: Vec<Cookie<'static>> =
            res.response().cookies().map(|c| c.into_owned()).collect();
        let body = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
        (status, headers, body, cookies)
    }};
}

fn retry_after(h: &actix_web::http::header::HeaderMap) -> u64 {
    h.get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[actix_web::test]
async fn sign_ins_over_the_address_limit_get_429_and_write_nothing() {
    for db in support::backends() {
        let cx = ctx(&db, with_limits(|l| l.login_per_minute = 3));
        let app = app!(cx);
        let (cookie, csrf) = login_form!(app);
        // Unknown names: each refusal within the limit is audited (one record).
        for i in 0..3 {
            let before = audit_count(&db);
            let (s, ..) = post_login!(app, cookie, csrf, &format!("nobody-{i}"), "000000");
            assert_eq!(s, 401, "{}", db.backend);
            assert_eq!(audit_count(&db), before + 1);
        }
        let before = audit_count(&db);
        for i in 0..5 {
            let (s, h, body, _) = post_login!(app, cookie, csrf, &format!("flood-{i}"), "000000");
            assert_eq!(s, 429, "{}", db.backend);
            assert!((1..=60).contains(&retry_after(&h)));
            assert_eq!(h.get("content-type").unwrap(), "application/problem+json");
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["code"], "too-many-requests");
            assert!(!body.contains("flood"), "{body}");
        }
        assert_eq!(
            audit_count(&db),
            before,
            "a refusal by the limit writes nothing"
        );
        // GET /login is not counted; another client address is.
        let res = at::call_service(&app, req().uri("/login").to_request()).await;
        assert_eq!(res.status().as_u16(), 200);
        let other = at::call_service(
            &app,
            at::TestRequest::post()
                .peer_addr("192.0.2.9:5000".parse().unwrap())
                .uri("/login")
                .cookie(cookie.clone())
                .set_form([("name", "x"), ("csrf", csrf.as_str())])
                .to_request(),
        )
        .await;
        assert_eq!(other.status().as_u16(), 401);
    }
}

#[actix_web::test]
async fn sign_ins_over_the_account_limit_get_429_whatever_the_address() {
    let db = support::sqlite();
    let cx = ctx(
        &db,
        with_limits(|l| {
            l.login_per_minute = 1000;
            l.login_per_account_per_minute = 2;
        }),
    );
    add(&db, &cx, "ada");
    let app = app!(cx);
    let (cookie, csrf) = login_form!(app);
    assert_eq!(post_login!(app, cookie, csrf, "ada", "000000").0, 401);
    // The same name, differently spelled, counts as the same account.
    assert_eq!(post_login!(app, cookie, csrf, " ADA ", "000000").0, 401);
    let before = audit_count(&db);
    let (s, h, ..) = post_login!(app, cookie, csrf, "ada", "000000");
    assert_eq!(s, 429);
    assert!(retry_after(&h) >= 1);
    assert_eq!(audit_count(&db), before);
    // Even with the right password and code: the limit comes first.
    let right = code(&db, &cx, "ada");
    assert_eq!(post_login!(app, cookie, csrf, "ada", &right).0, 429);
    // Another name is not held back.
    assert_eq!(post_login!(app, cookie, csrf, "bea", "000000").0, 401);
}

#[actix_web::test]
async fn without_a_password_check_slot_the_sign_in_is_503_and_runs_nothing() {
    for db in support::backends() {
        let cx = ctx(
            &db,
            with_limits(|l| {
                l.password_checks = 1;
                l.password_wait_ms = 50;
            }),
        );
        add(&db, &cx, "ada");
        let app = app!(cx);
        let (cookie, csrf) = login_form!(app);
        let held = Arc::clone(&cx.state.limits.password_slots)
            .try_acquire_owned()
            .unwrap();
        let before = audit_count(&db);
        let t0 = Instant::now();
        let (s, h, body, cookies) = post_login!(app, cookie, csrf, "ada", "000000");
        assert_eq!(s, 503, "{}", db.backend);
        assert!(retry_after(&h) >= 1);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert!(!body.contains("ada"));
        assert!(
            cookies
                .iter()
                .all(|c| !c.name().ends_with("herald_session"))
        );
        assert_eq!(audit_count(&db), before, "no check ran, nothing recorded");
        drop(held);
        let right = code(&db, &cx, "ada");
        assert_eq!(post_login!(app, cookie, csrf, "ada", &right).0, 303);
    }
}

#[actix_web::test]
async fn the_sign_in_token_is_bound_to_its_browser_and_expires_after_30_minutes() {
    let db = support::sqlite();
    let cx = ctx(&db, Settings::default());
    add(&db, &cx, "ada");
    let app = app!(cx);
    let (mine, my_csrf) = login_form!(app);
    let (theirs, their_csrf) = login_form!(app);
    assert_ne!(mine.value(), theirs.value());
    assert_ne!(mine.value(), my_csrf, "the cookie is not the token");
    // Another browser's token with my cookie, and mine with theirs: refused.
    let right = code(&db, &cx, "ada");
    assert_eq!(post_login!(app, mine, their_csrf, "ada", &right).0, 403);
    assert_eq!(post_login!(app, theirs, my_csrf, "ada", &right).0, 403);
    // A token made up from the cookie alone (the old double submit): refused.
    let forged = mine.value().to_string();
    assert_eq!(post_login!(app, mine, forged, "ada", &right).0, 403);
    assert_eq!(audit_count(&db), 1, "only the account's creation");
    // 31 minutes later my own pair is refused too...
    cx.clock.advance(chrono::Duration::minutes(31));
    let right = code(&db, &cx, "ada");
    let (s, _, body, _) = post_login!(app, mine, my_csrf, "ada", &right);
    assert_eq!(s, 403);
    assert!(body.contains("The form expired"));
    // ...while a fresh form (the same browser) within 30 minutes works.
    let (again, fresh) = {
        let res =
            at::call_service(&app, req().uri("/login").cookie(mine.clone()).to_request()).await;
        let c = res
            .response()
            .cookies()
            .find(|c| c.name() == "herald_login_csrf")
            .unwrap()
            .into_owned();
        let html = String::from_utf8(at::read_body(res).await.to_vec()).unwrap();
        (c, field(&html, "csrf"))
    };
    assert_eq!(again.value(), mine.value(), "the browser keeps its cookie");
    cx.clock.advance(chrono::Duration::minutes(29));
    let right = code(&db, &cx, "ada");
    assert_eq!(post_login!(app, again, fresh, "ada", &right).0, 303);
}

#[actix_web::test]
async fn over_tls_cookies_are_secure_and_host_prefixed_and_plain_http_keeps_plain_names() {
    let db = support::sqlite();
    // Plain http on loopback (the demo): plain names, not Secure.
    let cx = ctx(&db, Settings::default());
    add(&db, &cx, "ada");
    let app = app!(cx);
    let (cookie, csrf) = login_form!(app);
    assert_eq!(cookie.name(), "herald_login_csrf");
    assert_ne!(cookie.secure(), Some(true));
    let (s, _, _, cookies) = post_login!(app, cookie, csrf, "ada", &code(&db, &cx, "ada"));
    assert_eq!(s, 303);
    let session = cookies
        .iter()
        .find(|c| c.name() == "herald_session")
        .unwrap();
    assert_ne!(session.secure(), Some(true));
    drop(app);
    // Herald serving TLS itself, and behind an https proxy: __Host-, Secure, Path=/.
    for tls in [true, false] {
        let mut settings = Settings::default();
        if tls {
            settings.server.tls_cert = Some("/etc/herald/cert.pem".into());
            settings.server.tls_key = Some("/etc/herald/key.pem".into());
        } else {
            settings.server.public_url = Some("https://herald.example.org".into());
        }
        let db = support::sqlite();
        let cx = ctx(&db, settings);
        add(&db, &cx, "ada");
        let app = app!(cx);
        let (cookie, csrf) = login_form!(app);
        assert_eq!(cookie.name(), "__Host-herald_login_csrf");
        assert_eq!(
            (cookie.secure(), cookie.path(), cookie.domain()),
            (Some(true), Some("/"), None)
        );
        let (s, _, _, cookies) = post_login!(app, cookie, csrf, "ada", &code(&db, &cx, "ada"));
        assert_eq!(s, 303, "tls={tls}");
        let session = cookies
            .iter()
            .find(|c| c.value() != "" && c.name().ends_with("herald_session"))
            .unwrap()
            .clone();
        assert_eq!(session.name(), "__Host-herald_session");
        assert_eq!(
            (session.secure(), session.path(), session.domain()),
            (Some(true), Some("/"), None)
        );
        // The session opens the admin page under its prefixed name only.
        let res = at::call_service(
            &app,
            req().uri("/admin").cookie(session.clone()).to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        let plain = Cookie::new("herald_session", session.value().to_string());
        let res = at::call_service(&app, req().uri("/admin").cookie(plain).to_request()).await;
        assert_eq!(
            res.status().as_u16(),
            303,
            "an unprefixed cookie is not read"
        );
    }
}

#[actix_web::test]
async fn webhooks_and_smart_over_their_limit_get_429_in_their_own_format() {
    for db in support::backends() {
        let cx = ctx(
            &db,
            with_limits(|l| {
                l.hooks_per_minute = 2;
                l.smart_per_minute = 1;
                l.patient_link_per_minute = 1;
            }),
        );
        let app = app!(cx);
        let hook = || {
            req()
                .method(actix_web::http::Method::POST)
                .uri("/hooks/fhir/sub-1")
                .insert_header(("content-type", "application/fhir+json"))
                .insert_header(("authorization", "Bearer wrong"))
                .set_payload("{}")
                .to_request()
        };
        for _ in 0..2 {
            let res = at::call_service(&app, hook()).await;
            assert_ne!(res.status().as_u16(), 429);
        }
        let before = audit_count(&db);
        let res = at::call_service(&app, hook()).await;
        assert_eq!(res.status().as_u16(), 429, "{}", db.backend);
        assert!(retry_after(res.headers()) >= 1);
        let v: Value = at::read_body_json(res).await;
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert_eq!(v["issue"][0]["code"], "throttled");
        // Unsigned SMS webhooks share the hooks quota: refused, nothing written.
        let res = at::call_service(
            &app,
            req()
                .method(actix_web::http::Method::POST)
                .uri("/hooks/sms/twilio/inbound")
                .insert_header(("content-type", "application/x-www-form-urlencoded"))
                .set_payload("From=%2B15555550100&Body=STOP&MessageSid=SM1")
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 429);
        assert_eq!(
            res.headers().get("content-type").unwrap(),
            "application/problem+json"
        );
        assert_eq!(
            audit_count(&db),
            before,
            "refusals by the limit write nothing"
        );
        // SMART and preference links have their own quotas.
        for (uri, first) in [
            ("/smart/login?iss=https://ehr.example", true),
            ("/p/abc", true),
        ] {
            let res = at::call_service(&app, req().uri(uri).to_request()).await;
            assert_eq!(res.status().as_u16() != 429, first, "{uri}");
            let res = at::call_service(&app, req().uri(uri).to_request()).await;
            assert_eq!(res.status().as_u16(), 429, "{uri}");
        }
        // Health and metadata are never limited.
        for _ in 0..5 {
            let res = at::call_service(&app, req().uri("/healthz").to_request()).await;
            assert_eq!(res.status().as_u16(), 200);
        }
    }
}

#[actix_web::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let post = |xff: &str| {
        at::TestRequest::post()
            .peer_addr("10.0.0.1:5000".parse().unwrap())
            .uri("/login")
            .insert_header(("x-forwarded-for", xff.to_string()))
            .set_form([("name", "x")])
            .to_request()
    };
    let db = support::sqlite();
    // Untrusted peer: X-Forwarded-For is ignored, every request is 10.0.0.1's.
    let cx = ctx(&db, with_limits(|l| l.login_per_minute = 1));
    let app = app!(cx);
    assert_eq!(
        at::call_service(&app, post("203.0.113.1"))
            .await
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        at::call_service(&app, post("203.0.113.2"))
            .await
            .status()
            .as_u16(),
        429
    );
    drop(app);
    // Trusted proxy: each forwarded client has its own quota; a forged hop
    // before the proxy's own entry does not help.
    let db = support::sqlite();
    let cx = ctx(
        &db,
        with_limits(|l| {
            l.login_per_minute = 1;
            l.trusted_proxies = vec!["10.0.0.1".into()];
        }),
    );
    let app = app!(cx);
    assert_eq!(
        at::call_service(&app, post("203.0.113.1"))
            .await
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        at::call_service(&app, post("203.0.113.2"))
            .await
            .status()
            .as_u16(),
        403
    );
    assert_eq!(
        at::call_service(&app, post("203.0.113.1"))
            .await
            .status()
            .as_u16(),
        429
    );
    assert_eq!(
        at::call_service(&app, post("198.51.100.7, 203.0.113.1"))
            .await
            .status()
            .as_u16(),
        429
    );
}

#[test]
fn an_unknown_session_cookie_is_answered_without_taking_the_writer_lock() {
    use diesel::Connection as _;
    use diesel::connection::SimpleConnection as _;
    let db = support::sqlite();
    let (_ring, _) = support::ready(&db);
    let settings = Settings::default();
    // Another writer holds SQLite's write lock.
    let mut writer =
        diesel::SqliteConnection::establish(db.sqlite_path.as_ref().unwrap().to_str().unwrap())
            .unwrap();
    writer.batch_execute("BEGIN IMMEDIATE").unwrap();
    let t0 = Instant::now();
    let found = svc::session_staff(
        &mut db.conn(),
        &settings.staff,
        support::now(),
        "a-random-cookie-value",
        &svc::Origin::cli(),
    );
    assert!(matches!(found, Ok(None)), "{found:?}");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "waited {:?} for the writer",
        t0.elapsed()
    );
    writer.batch_execute("ROLLBACK").unwrap();
}

#[actix_web::test]
async fn the_housekeeping_tick_purges_expired_sessions_and_keeps_live_ones() {
    for db in support::backends() {
        let cx = ctx(&db, Settings::default());
        add(&db, &cx, "ada");
        let now = cx.clock.now();
        let user = herald::db::staff::user_by_name(&mut db.conn(), "ada")
            .unwrap()
            .unwrap();
        let staff_row = |hash: &str, created: i64, seen: i64| herald::db::staff::Session {
            token_hash: hash.into(),
            user_id: user.id.clone(),
            csrf: "c".into(),
            created_at: now - chrono::Duration::minutes(created),
            last_seen_at: now - chrono::Duration::minutes(seen),
        };
        let smart_row = |hash: &str, phase: &str, seen: i64| herald::db::smart::SmartSession {
            id_hash: hash.into(),
            phase: phase.into(),
            iss: "https://ehr.example/fhir".into(),
            secrets: "{}".into(),
            patient: None,
            encounter: None,
            fhir_user: None,
            need_banner: false,
            style_url: None,
            scope: None,
            token_expires_at: None,
            created_at: now - chrono::Duration::minutes(seen),
            last_seen_at: now - chrono::Duration::minutes(seen),
        };
        {
            let mut c = db.conn();
            for s in [
                staff_row("live", 60, 1),
                staff_row("idle", 60, 16),
                staff_row("old", 13 * 60, 1),
            ] {
                herald::db::staff::insert_session(&mut c, &s).unwrap();
            }
            for s in [
                smart_row("live-app", "active", 2),
                smart_row("idle-app", "active", 20),
                smart_row("launch-now", "launching", 1),
                smart_row("launch-stale", "launching", 60 * 24),
            ] {
                herald::db::smart::put(&mut c, &cx.ring, &s).unwrap();
            }
        }
        let purged = herald::web::limits::tick(&cx.state).await.unwrap();
        assert_eq!((purged.staff, purged.smart), (2, 2), "{}", db.backend);
        let mut c = db.conn();
        assert!(
            herald::db::staff::session(&mut c, "live")
                .unwrap()
                .is_some()
        );
        assert!(
            herald::db::staff::session(&mut c, "idle")
                .unwrap()
                .is_none()
        );
        assert!(herald::db::staff::session(&mut c, "old").unwrap().is_none());
        for (h, kept) in [
            ("live-app", true),
            ("idle-app", false),
            ("launch-now", true),
            ("launch-stale", false),
        ] {
            assert_eq!(
                herald::db::smart::get(&mut c, &cx.ring, h)
                    .unwrap()
                    .is_some(),
                kept,
                "{h}"
            );
        }
        // A second tick finds nothing more.
        drop(c);
        let again = herald::web::limits::tick(&cx.state).await.unwrap();
        assert_eq!((again.staff, again.smart), (0, 0));
    }
}

/// The resident set of a process, in kB: (VmRSS, VmHWM).
fn rss_kb(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((kb("VmRSS:")?, kb("VmHWM:")?))
}

/// Issue 11 F5c acceptance: 2,000 sign-ins, 200 at a time, against a real
/// `herald serve` on loopback. Memory stays bounded and `/healthz` and a cheap
/// anonymous route keep answering.
#[test]
fn a_login_flood_keeps_memory_bounded_and_the_server_answering() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let herald = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
        c.args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HERALD_DATA_DIR", dir.path().join("data"))
            .env("HERALD_SERVER__BIND", "127.0.0.1:0")
            .env("HERALD_LOG__LEVEL", "warn")
            // Let many attempts past the address limit so the name limit and
            // the password-check slots are exercised too.
            .env("HERALD_LIMITS__LOGIN_PER_MINUTE", "600");
        c
    };
    let init = herald(&["keys", "init"]).output().unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mut child = herald(&["serve"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if let Some(rest) = line.strip_prefix("Herald is listening on ") {
            break rest.trim().to_string();
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        // One sign-in form, replayed by every attempt (valid for 30 minutes).
        let page = client.get(format!("{base}/login")).send().await.unwrap();
        let cookie = page
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("herald_login_csrf="))
            .and_then(|v| v.split(';').next())
            .unwrap()
            .to_string();
        let csrf = field(&page.text().await.unwrap(), "csrf");
        let idle_rss = rss_kb(pid).unwrap().0;

        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        // RSS sampler.
        let sampler = {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let mut peak = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Some((rss, _)) = rss_kb(pid) {
                        peak = peak.max(rss);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                peak
            })
        };
        // Availability probe: /healthz and /fhir/metadata, each timed.
        let probe = {
            let done = Arc::clone(&done);
            let client = client.clone();
            let base = base.clone();
            tokio::spawn(async move {
                let mut worst = Duration::ZERO;
                let mut answered = 0;
                let mut failed = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    for path in ["/healthz", "/fhir/metadata"] {
                        let t0 = Instant::now();
                        let ok = client
                            .get(format!("{base}{path}"))
                            .timeout(Duration::from_secs(10))
                            .send()
                            .await
                            .is_ok_and(|r| r.status().is_success());
                        worst = worst.max(t0.elapsed());
                        if ok {
                            answered += 1;
                        } else {
                            failed += 1;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                (worst, answered, failed)
            })
        };
        // The flood: 2,000 attempts, 200 in flight, names from a set of 40.
        let gate = Arc::new(tokio::sync::Semaphore::new(200));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..2000 {
            let permit = Arc::clone(&gate).acquire_owned().await.unwrap();
            let client = client.clone();
            let url = format!("{base}/login");
            let cookie = cookie.clone();
            let csrf = csrf.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                let name = format!("flood-{}", i % 40);
                client
                    .post(url)
                    .header("cookie", cookie)
                    .form(&[
                        ("name", name.as_str()),
                        ("password", "not the password"),
                        ("code", "000000"),
                        ("csrf", csrf.as_str()),
                    ])
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }));
        }
        let mut by_status = std::collections::BTreeMap::<u16, u32>::new();
        for t in tasks {
            *by_status.entry(t.await.unwrap()).or_default() += 1;
        }
        let flood = t0.elapsed();
        // The server still answers after the flood, quickly.
        let t1 = Instant::now();
        let after = client.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(after.status().is_success());
        let after = t1.elapsed();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        let peak = sampler.await.unwrap();
        let (worst, answered, failed) = probe.await.unwrap();
        (
            idle_rss, peak, by_status, flood, worst, answered, failed, after,
        )
    });
    let hwm = rss_kb(pid).map(|r| r.1).unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    let (idle_rss, peak, by_status, flood, worst, answered, failed, after) = outcome;
    println!(
        "login flood: 2000 POST /login, 200 concurrent, in {:.1}s; statuses {by_status:?}; RSS idle {} MB, peak sampled {} MB, VmHWM {} MB; /healthz+/fhir/metadata during the flood: {answered} answered, {failed} failed, slowest {} ms; /healthz after: {} ms",
        flood.as_secs_f64(),
        idle_rss / 1024,
        peak / 1024,
        hwm / 1024,
        worst.as_millis(),
        after.as_millis()
    );
    assert_eq!(by_status.values().sum::<u32>(), 2000);
    assert!(
        !by_status.contains_key(&0),
        "every attempt was answered: {by_status:?}"
    );
    assert!(by_status.contains_key(&429), "{by_status:?}");
    assert!(
        by_status.keys().all(|s| [401, 429, 503].contains(s)),
        "{by_status:?}"
    );
    assert!(hwm.max(peak) < 300 * 1024, "peak RSS {} kB", hwm.max(peak));
    assert_eq!(failed, 0, "health probes failed during the flood");
    assert!(answered > 0);
    assert!(worst < Duration::from_secs(5), "slowest probe {worst:?}");
}
