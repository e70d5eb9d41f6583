//! API clients of Herald's own FHIR endpoints (issue 11 item 2): access
//! tokens issued by a real authorization server (oidc-provider in
//! `tests/interop`, RFC 9068 JWT access tokens through client_credentials)
//! to the hospital's systems, verified against the issuer's JWKS (discovered
//! from its openid-configuration). Rules: fhir.md, SMART Backend Services
//! and scopes.

use std::sync::{Arc, Mutex};

use actix_web::test as at;
use serde_json::{Value, json};

use herald::clock::{Clock, FixedClock, SystemClock};
use herald::config::{ApiIssuer, Settings};
use herald::web::{AppState, app};

use super::interop::{Harness, admin, harness};
use super::support;

const SECRET: &str = "api-client-secret-api-client-secret-0123";
const AUDIENCE: &str = "http://herald.test/fhir";

/// The security log lines written while `f` runs on this thread.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Registers `client_id` with `scope` at the harness (JWT access tokens for
/// `aud`) and returns a client_credentials access token.
fn token(h: &Harness, client_id: &str, scope: &str, aud: &str) -> String {
    admin(
        h,
        "POST",
        "clients",
        json!({"client_id": client_id, "token_endpoint_auth_method": "client_secret_basic",
               "client_secret": SECRET, "scope": scope,
               "access_token_format": "jwt", "access_token_audience": aud}),
    );
    let res: Value = reqwest::blocking::Client::new()
        .post(format!("{}/token", h.issuer))
        .basic_auth(client_id, Some(SECRET))
        .form(&[("grant_type", "client_credentials"), ("scope", scope)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    res["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {res}"))
        .to_string()
}

fn state(
    db: &support::TestDb,
    ring: &Arc<herald::crypto::KeyRing>,
    issuer: &str,
    clock: Arc<dyn Clock>,
) -> AppState {
    let mut s = Settings::default();
    s.api.issuers = vec![ApiIssuer {
        issuer: issuer.into(),
        audience: AUDIENCE.into(),
        ..ApiIssuer::default()
    }];
    AppState::new(Arc::new(s), db.pool.clone(), Arc::clone(ring), clock)
}

#[test]
fn jwt_access_tokens_from_the_hospitals_authorization_server() {
    let h = harness();
    let db = support::sqlite();
    let ring = Arc::new(support::ready(&db).0);
    let reader = token(&h, "scheduler", "system/Consent.rs", AUDIENCE);
    let comms = token(&h, "comms", "system/Communication.rs", AUDIENCE);
    let elsewhere = token(
        &h,
        "elsewhere",
        "system/Consent.rs",
        "https://other.example/fhir",
    );
    let forged = {
        // Same header and claims, the signature of another token.
        let (input, _) = reader.rsplit_once('.').unwrap();
        let (_, sig) = comms.rsplit_once('.').unwrap();
        format!("{input}.{sig}")
    };
    let logs = Logs::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    actix_rt::System::new().block_on(async {
        let get = |t: &str| {
            at::TestRequest::get()
                .uri("/fhir/Consent?patient=Patient/p-1")
                .insert_header(("authorization", format!("Bearer {t}")))
                .to_request()
        };
        let svc = at::init_service(app(state(&db, &ring, &h.issuer, Arc::new(SystemClock)))).await;
        // SMART Backend Services: a JWT access token with system/Consent.rs reads (200).
        let res = at::call_service(&svc, get(&reader)).await;
        assert_eq!(res.status().as_u16(), 200);
        // Scopes: system/Communication.rs does not cover Consent (403).
        let res = at::call_service(&svc, get(&comms)).await;
        assert_eq!(res.status().as_u16(), 403);
        // ...but reads Communication.
        let res = at::call_service(
            &svc,
            at::TestRequest::get()
                .uri("/fhir/Communication")
                .insert_header(("authorization", format!("Bearer {comms}")))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 200);
        // The CapabilityStatement advertises SMART and the first issuer's token
        // endpoint (discovered from its openid-configuration).
        let res = at::call_service(
            &svc,
            at::TestRequest::get().uri("/fhir/metadata").to_request(),
        )
        .await;
        let cs: Value = serde_json::from_slice(&at::read_body(res).await).unwrap();
        let security = &cs["rest"][0]["security"];
        assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
        let oauth = &security["extension"][0];
        assert_eq!(
            oauth["url"],
            "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
        );
        assert_eq!(oauth["extension"][0]["url"], "token");
        assert_eq!(
            oauth["extension"][0]["valueUri"],
            format!("{}/token", h.issuer)
        );
        // Wrong audience, bad signature: 401 invalid_token with a named cause.
        for (t, cause) in [(&elsewhere, "wrong audience"), (&forged, "bad signature")] {
            let res = at::call_service(&svc, get(t)).await;
            assert_eq!(res.status().as_u16(), 401, "{cause}");
            let www = res
                .headers()
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap();
            assert!(www.contains("error=\"invalid_token\""), "{www}");
            let body: Value = serde_json::from_slice(&at::read_body(res).await).unwrap();
            assert_eq!(body["resourceType"], "OperationOutcome");
            assert!(
                logs.text().contains(&format!("cause=\"{cause}\"")),
                "{cause}"
            );
        }

        // Expired: the same valid token ten minutes later (beyond exp + skew).
        let later = FixedClock::new(SystemClock.now() + chrono::Duration::minutes(10));
        let svc = at::init_service(app(state(&db, &ring, &h.issuer, Arc::new(later)))).await;
        let res = at::call_service(&svc, get(&reader)).await;
        assert_eq!(res.status().as_u16(), 401);
        assert!(logs.text().contains("cause=\"expired\""));

        // Wrong issuer: Herald trusts another issuer only.
        let other = format!("{}/other", h.issuer);
        let svc = at::init_service(app(state(&db, &ring, &other, Arc::new(SystemClock)))).await;
        let res = at::call_service(&svc, get(&reader)).await;
        assert_eq!(res.status().as_u16(), 401);
        assert!(logs.text().contains("cause=\"unknown issuer\""));
    });
    // Never the token itself.
    let text = logs.text();
    for t in [&reader, &comms, &elsewhere, &forged] {
        let sig = t.rsplit_once('.').unwrap().1;
        assert!(!text.contains(sig), "a token reached the log");
    }
}
