//! SMART EHR launch (issue 6 acceptance): a full launch in headless Chromium
//! against a real OAuth2 server (oidc-provider, `tests/interop`) lands on
//! /app with the right patient; a foreign iss, a wrong state, a wrong PKCE
//! verifier and a forged id_token each fail with a clear page; an idle
//! clinician session ends. S1–S15 in reference/fhir.md.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use herald::clock::{Clock, FixedClock, SystemClock};
use herald::config::Settings;
use herald::db::smart as store;
use herald::domain::Channel;
use herald::smart::launch;
use herald::web::AppState;

use super::interop::{Harness, harness};
use super::support;

const XSS: &str = "<script>alert(1)</script>";

struct Setup {
    h: Harness,
    db: support::TestDb,
    state: AppState,
    clock: Arc<FixedClock>,
    base: String,
    handle: actix_web::dev::ServerHandle,
}

fn admin(h: &Harness, path: &str, body: Value) -> Value {
    let res = reqwest::blocking::Client::new()
        .post(format!("{}/{path}", h.admin))
        .json(&body)
        .send()
        .unwrap();
    assert!(res.status().is_success(), "{path}: {}", res.status());
    res.json().unwrap()
}

fn setup() -> Setup {
    let h = harness();
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    super::channels::patient(
        &db,
        &ring,
        "p-launch",
        Some("+12125550131"),
        None,
        "es-US",
        &[(Channel::Sms, "+12125550131")],
    );
    // A hostile name: it must render as text.
    let mut c = db.conn();
    let mut p = herald::db::patients::get(&mut c, &ring, "p-launch")
        .unwrap()
        .unwrap();
    p.name = herald::domain::phi::PersonName::new(XSS.to_string());
    herald::db::patients::upsert(&mut c, &ring, &p, support::now()).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut s = Settings::default();
    s.server.public_url = Some(base.clone());
    s.smart.allowed_iss = vec![h.fhir.clone()];
    // F7: the launch's issuer is the EHR Herald follows.
    s.ehr.base_url = Some(h.fhir.clone());
    s.smart.client_id = Some("herald-app".into());
    let clock = Arc::new(FixedClock::new(SystemClock.now()));
    let state = AppState::new(Arc::new(s), db.pool.clone(), Arc::new(ring), clock.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let st = state.clone();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = herald::web::server(st, listener).unwrap();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        });
    });
    let handle = rx.recv().unwrap();
    admin(
        &h,
        "clients",
        json!({"client_id": "herald-app", "redirect_uris": [format!("{base}/smart/callback")],
               "token_endpoint_auth_method": "none",
               "scope": "launch launch/patient openid fhirUser offline_access patient/*.rs"}),
    );
    Setup {
        h,
        db,
        state,
        clock,
        base,
        handle,
    }
}

fn launch_url(s: &Setup, patient: &str) -> String {
    let l = admin(
        &s.h,
        "launch",
        json!({"patient": patient, "encounter": "e-1"}),
    );
    format!(
        "{}/smart/launch?iss={}&launch={}",
        s.base,
        urlencode(&s.h.fhir),
        l["launch"].as_str().unwrap()
    )
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A browser without JavaScript: follows redirects by hand, keeps cookies,
/// and stops at Herald's callback so a test can tamper first.
fn to_callback(s: &Setup, start: &str) -> (reqwest::blocking::Client, String) {
    let client = reqwest::blocking::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut url = start.to_string();
    for _ in 0..10 {
        let res = client.get(&url).send().unwrap();
        let loc = res
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let Some(loc) = loc else {
            panic!(
                "no redirect from {url}: {} {}",
                res.status(),
                res.text().unwrap_or_default()
            );
        };
        let next = reqwest::Url::parse(&url)
            .unwrap()
            .join(&loc)
            .unwrap()
            .to_string();
        if next.starts_with(&format!("{}/smart/callback", s.base)) {
            return (client, next);
        }
        url = next;
    }
    panic!("no callback after 10 redirects");
}

fn text(res: reqwest::blocking::Response) -> (u16, String) {
    let s = res.status().as_u16();
    (s, res.text().unwrap())
}

#[test]
fn an_ehr_launch_in_headless_chromium_lands_on_the_patient_in_context() {
    let s = setup();
    let url = launch_url(&s, "p-launch");
    let out = std::process::Command::new("node")
        .arg(support::npm_dir("tests/browser").join("smart.mjs"))
        .arg(&url)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_str(report.trim()).unwrap();
    let seen = &seen["seen"];
    assert_eq!(seen["patientId"], "Patient/p-launch", "{seen}");
    assert_eq!(seen["patientName"], XSS, "the name renders as text: {seen}");
    assert_eq!(
        seen["dialogs"].as_array().unwrap().len(),
        0,
        "no script ran"
    );
    assert_eq!(seen["scripts"], 0);
    assert_eq!(seen["clinician"], "Practitioner/pr1");
    let csp = seen["csp"].as_str().unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && !csp.contains("unsafe-inline")
            && csp.contains("frame-ancestors"),
        "{csp}"
    );
    let cookies = seen["cookies"].as_array().unwrap();
    let app = cookies.iter().find(|c| c["name"] == "herald_app").unwrap();
    assert_eq!(app["httpOnly"], true);
    assert_eq!(app["sameSite"], "Lax");
    assert_eq!(seen["afterConsent"], "/app");
    assert_eq!(
        seen["consentRows"], 2,
        "the in-person consent joined the ledger"
    );
    // Recorded with the clinician as performer, and audited.
    let mut c = s.db.conn();
    let entries = herald::db::consents::entries_for(&mut c, "p-launch").unwrap();
    assert_eq!(entries.len(), 2);
    let events = super::fhir_follow::events_of(&mut c);
    assert!(events.iter().any(|e| {
        // F7: agents are keyed by issuer.
        e["agent"][0]["who"]["identifier"]["value"]
            == format!("{}|Practitioner/pr1", s.h.fhir.trim_end_matches('/'))
            && e["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == "Patient/p-launch")
    }));
    actix_rt::System::new().block_on(s.handle.stop(false));
}

#[test]
fn bad_launches_fail_with_a_clear_page_and_sessions_end_when_idle() {
    let s = setup();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // A foreign iss: no redirect anywhere (S1, issue 6 item 1).
    let (st, body) = text(
        http.get(format!(
            "{}/smart/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=x",
            s.base
        ))
        .send()
        .unwrap(),
    );
    assert_eq!(st, 400);
    assert!(
        body.contains("not one Herald is configured to trust"),
        "{body}"
    );
    let res = http
        .get(format!(
            "{}/smart/launch?iss=https%3A%2F%2Fevil.example%2Ffhir&launch=x",
            s.base
        ))
        .send()
        .unwrap();
    assert!(res.headers().get("location").is_none());
    // S1: launch missing.
    let (st, body) = text(
        http.get(format!(
            "{}/smart/launch?iss={}",
            s.base,
            urlencode(&s.h.fhir)
        ))
        .send()
        .unwrap(),
    );
    assert_eq!(st, 400);
    assert!(body.contains("missing launch"), "{body}");

    // A wrong state.
    let (client, cb) = to_callback(&s, &launch_url(&s, "p-launch"));
    let forged = cb.replace("state=", "state=x");
    let (st, body) = text(client.get(&forged).send().unwrap());
    assert_eq!(st, 403, "{body}");
    assert!(body.contains("state"), "{body}");

    // A wrong PKCE verifier (the stored one altered before the exchange).
    let tamper = |f: &dyn Fn(&mut launch::Secrets)| {
        let mut c = s.db.conn();
        let ring = &s.state.ring;
        // the only launching row
        let rows: Vec<String> = {
            use diesel::prelude::*;
            herald::db::schema::smart_sessions::table
                .filter(herald::db::schema::smart_sessions::phase.eq("launching"))
                .select(herald::db::schema::smart_sessions::id_hash)
                .load(&mut c)
                .unwrap()
        };
        assert_eq!(rows.len(), 1);
        let mut row = store::get(&mut c, ring, &rows[0]).unwrap().unwrap();
        let mut sec: launch::Secrets = serde_json::from_str(&row.secrets).unwrap();
        f(&mut sec);
        row.secrets = serde_json::to_string(&sec).unwrap();
        store::put(&mut c, ring, &row).unwrap();
    };
    let (client, cb) = to_callback(&s, &launch_url(&s, "p-launch"));
    tamper(&|sec| sec.verifier = "x".repeat(43));
    let (st, body) = text(client.get(&cb).send().unwrap());
    assert_eq!(st, 502, "{body}");
    assert!(
        body.contains("refused Herald&#x27;s code exchange") || body.contains("code exchange"),
        "{body}"
    );
    // A missing verifier.
    let (client, cb) = to_callback(&s, &launch_url(&s, "p-launch"));
    tamper(&|sec| sec.verifier.clear());
    let (st, _) = text(client.get(&cb).send().unwrap());
    assert_eq!(st, 502);

    // A forged id_token: verified against another key set than the issuer's.
    let other = {
        let key = herald::smart::jwt::generate("RS384").unwrap();
        let mut jwk = key.public_jwk.clone();
        jwk["kid"] = json!("any");
        json!({"keys": [jwk]})
    };
    let forged_jwks = serve_json(other);
    let (client, cb) = to_callback(&s, &launch_url(&s, "p-launch"));
    tamper(&|sec| sec.jwks_uri = Some(forged_jwks.clone()));
    let (st, body) = text(client.get(&cb).send().unwrap());
    assert_eq!(st, 502, "{body}");
    assert!(body.contains("identity token is not valid"), "{body}");

    // A good launch, then idle past smart.idle_minutes: signed out.
    let (client, cb) = to_callback(&s, &launch_url(&s, "p-launch"));
    let res = client.get(&cb).send().unwrap();
    assert_eq!(res.status().as_u16(), 302);
    let (st, body) = text(client.get(format!("{}/app", s.base)).send().unwrap());
    assert_eq!(st, 200, "{body}");
    // Forms carry a CSRF token; a POST without it is refused.
    let (st, _) = text(
        client
            .post(format!("{}/app/send", s.base))
            .form(&[("kind", "reminder-24h"), ("appointment", "a1")])
            .send()
            .unwrap(),
    );
    assert_eq!(st, 403);
    // Break-glass (H2): another patient than the launch's needs a reason.
    let (st, body) = text(
        client
            .get(format!("{}/app?patient=p-other", s.base))
            .send()
            .unwrap(),
    );
    assert_eq!(st, 200);
    assert!(
        body.contains("break-glass-needed") && !body.contains("id=\"consents\""),
        "{body}"
    );
    let csrf = body
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let post = |reason: &str| {
        client
            .post(format!("{}/app/break-glass", s.base))
            .form(&[
                ("csrf", csrf.as_str()),
                ("patient", "p-other"),
                ("reason", reason),
            ])
            .send()
            .unwrap()
    };
    assert_eq!(post("").status().as_u16(), 400, "no reason, no access");
    let res = post("Patient collapsed in the waiting room; covering for Dr. Ito");
    assert_eq!(res.status().as_u16(), 303);
    assert_eq!(res.headers()["location"], "/app?patient=p-other");
    let (st, body) = text(
        client
            .get(format!("{}/app?patient=p-other", s.base))
            .send()
            .unwrap(),
    );
    assert_eq!(st, 200);
    assert!(
        body.contains("Patient/p-other") && body.contains("id=\"consents\""),
        "{body}"
    );
    let events = super::fhir_follow::events_of(&mut s.db.conn());
    let btg = events
        .iter()
        .filter(|e| {
            e["entity"].as_array().is_some_and(|x| {
                x.iter()
                    .any(|x| x["what"]["reference"] == "Patient/p-other")
            })
        })
        .filter(|e| e.to_string().contains("\"BTG\""))
        .count();
    assert!(
        btg >= 2,
        "the grant and the view inside it carry purposeOfUse BTG: {btg}"
    );
    // S14: shortly before the EHR's token expires, the page refreshes it; the
    // new refresh token replaces the old one.
    let active = || {
        use diesel::prelude::*;
        let mut c = s.db.conn();
        let ids: Vec<String> = herald::db::schema::smart_sessions::table
            .filter(herald::db::schema::smart_sessions::phase.eq("active"))
            .select(herald::db::schema::smart_sessions::id_hash)
            .load(&mut c)
            .unwrap();
        assert_eq!(ids.len(), 1);
        let row = store::get(&mut c, &s.state.ring, &ids[0]).unwrap().unwrap();
        launch::secrets_of(&row)
    };
    let before = active();
    assert!(
        before.refresh_token.is_some(),
        "offline_access gave a refresh token"
    );
    s.clock.advance(chrono::Duration::minutes(5));
    let (st, _) = text(client.get(format!("{}/app", s.base)).send().unwrap());
    assert_eq!(st, 200);
    let after = active();
    assert_ne!(before.access_token, after.access_token, "refreshed");
    assert_ne!(
        before.refresh_token, after.refresh_token,
        "the new refresh token replaced the old"
    );
    s.clock.advance(chrono::Duration::minutes(16));
    let (st, body) = text(client.get(format!("{}/app", s.base)).send().unwrap());
    assert_eq!(st, 401);
    assert!(body.contains("session has ended"), "{body}");
    actix_rt::System::new().block_on(s.handle.stop(false));
}

/// Serves one JSON document on loopback; returns its URL.
fn serve_json(v: Value) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            use std::io::{Read, Write};
            let mut s = stream;
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let body = v.to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn id_tokens_are_checked_for_signature_issuer_audience_and_expiry() {
    // S12 with a key Herald controls: every claim matters.
    use base64::Engine as _;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let key = openssl::rsa::Rsa::generate(2048).unwrap();
    let pkey = openssl::pkey::PKey::from_rsa(key.clone()).unwrap();
    let jwk = json!({"kty": "RSA", "kid": "k1",
        "n": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.n().to_vec()),
        "e": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key.e().to_vec())});
    let jwks = json!({"keys": [jwk]});
    let now = SystemClock.now();
    let sign = |claims: Value| {
        let input = format!(
            "{}.{}",
            b64(&json!({"alg": "RS256", "kid": "k1"})),
            b64(&claims)
        );
        let mut s =
            openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &pkey).unwrap();
        s.update(input.as_bytes()).unwrap();
        format!(
            "{input}.{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.sign_to_vec().unwrap())
        )
    };
    let good = json!({"iss": "https://as.example", "aud": "herald-app", "sub": "u1",
        "fhirUser": "Practitioner/pr7", "exp": now.timestamp() + 300, "iat": now.timestamp(),
        "nonce": "n-sent"});
    let ok = launch::validate_id_token(
        &sign(good.clone()),
        &jwks,
        Some("https://as.example"),
        "n-sent",
        "herald-app",
        now,
    )
    .unwrap();
    assert_eq!(ok.fhir_user, "Practitioner/pr7");
    let t = sign(good.clone());
    let mut parts: Vec<&str> = t.split('.').collect();
    let evil = b64(
        &json!({"iss": "https://as.example", "aud": "herald-app", "sub": "u1",
        "fhirUser": "Practitioner/admin", "exp": now.timestamp() + 300}),
    );
    parts[1] = &evil;
    let tampered = parts.join(".");
    for (token, why) in [
        (tampered, "signature"),
        (
            sign(
                json!({"iss": "https://other.example", "aud": "herald-app", "sub": "u", "exp": now.timestamp() + 300}),
            ),
            "issuer",
        ),
        (
            sign(
                json!({"iss": "https://as.example", "aud": "someone-else", "sub": "u", "exp": now.timestamp() + 300}),
            ),
            "aud",
        ),
        (
            sign(
                json!({"iss": "https://as.example", "aud": "herald-app", "sub": "u", "exp": now.timestamp() - 600}),
            ),
            "expired",
        ),
    ] {
        let e = launch::validate_id_token(
            &token,
            &jwks,
            Some("https://as.example"),
            "n-sent",
            "herald-app",
            now,
        )
        .unwrap_err();
        assert!(
            e.to_string().contains(why) || matches!(e, launch::LaunchError::IdToken(_)),
            "{why}: {e}"
        );
    }
    // F8c (security-review.md): the nonce Herald sent, iat within bounds,
    // and an issuer the discovery named.
    let with = |k: &str, v: Value| {
        let mut c = good.clone();
        if v.is_null() {
            c.as_object_mut().unwrap().remove(k);
        } else {
            c[k] = v;
        }
        sign(c)
    };
    for (token, why) in [
        (with("nonce", json!("n-other")), "nonce"),
        (with("nonce", Value::Null), "nonce"),
        (with("iat", Value::Null), "iat"),
        (
            with("iat", json!(now.timestamp() + 600)),
            "iat in the future",
        ),
        (with("iat", json!(now.timestamp() - 11 * 60)), "iat too old"),
    ] {
        let e = launch::validate_id_token(
            &token,
            &jwks,
            Some("https://as.example"),
            "n-sent",
            "herald-app",
            now,
        )
        .unwrap_err();
        assert!(e.to_string().contains(why), "{why}: {e}");
    }
    let e = launch::validate_id_token(
        &sign(good.clone()),
        &jwks,
        None,
        "n-sent",
        "herald-app",
        now,
    )
    .unwrap_err();
    assert!(e.to_string().contains("names no issuer"), "{e}");
    // Within skew and age: accepted.
    launch::validate_id_token(
        &with("iat", json!(now.timestamp() - 9 * 60)),
        &jwks,
        Some("https://as.example"),
        "n-sent",
        "herald-app",
        now,
    )
    .unwrap();
    let _ = Duration::from_secs(0);
}
