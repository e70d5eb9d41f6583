//! Authorization overhead of API clients (issue 11 item 2): p95 of
//! `GET /fhir/Consent?patient=…` through the actix app in process, with an
//! API client's JWT access token (RS384, verified against the issuer's JWKS,
//! keys cached) beside the same handler with the check bypassed (the caller
//! stored as the access table would store it) and with a clinician's staff
//! API token (one indexed SHA-256 lookup), interleaved in the same run on the
//! same SQLite database. See `benches/README.md`.
//!
//! ```sh
//! cargo bench --bench api_auth
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::indexing_slicing,
    clippy::as_conversions,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::ServiceRequest;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpMessage as _, test, web};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::Utc;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde_json::json;

use herald::clock::SystemClock;
use herald::config::{ApiIssuer, DbUrl, Settings};
use herald::web::{AppState, access};

const ISS: &str = "https://auth.hospital.example";
const AUD: &str = "https://herald.example/fhir";
const ROUNDS: usize = 5;
const PER_ROUND: usize = 400;
const WARM: usize = 200;

fn jwt(key: &PKey<openssl::pkey::Private>) -> String {
    let now = Utc::now().timestamp();
    let h = B64URL.encode(json!({"alg": "RS384", "kid": "k1", "typ": "at+jwt"}).to_string());
    let p = B64URL.encode(
        json!({"iss": ISS, "aud": AUD, "exp": now + 3600, "iat": now, "client_id": "scheduler",
               "scope": "system/Consent.rs"})
        .to_string(),
    );
    let input = format!("{h}.{p}");
    let mut s = openssl::sign::Signer::new(MessageDigest::sha384(), key).unwrap();
    s.update(input.as_bytes()).unwrap();
    format!("{input}.{}", B64URL.encode(s.sign_to_vec().unwrap()))
}

fn percentile(v: &[Duration], p: f64) -> f64 {
    let mut v: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let url = DbUrl::new(format!(
        "sqlite://{}",
        dir.path().join("herald.db").display()
    ));
    let pool = herald::db::pool(&url, 4, Duration::from_secs(5)).unwrap();
    let mut c = pool.get().unwrap();
    herald::db::migrate(&mut c).unwrap();
    let master = herald::crypto::MasterKey::generate().unwrap();
    herald::db::keys::insert(
        &mut c,
        &herald::crypto::new_data_key(&master, 1).unwrap(),
        Utc::now(),
    )
    .unwrap();
    let ring =
        herald::crypto::KeyRing::open(&master, &herald::db::keys::list(&mut c).unwrap()).unwrap();
    herald::service::staff::add_user(
        &mut c,
        &ring,
        Utc::now(),
        "clin",
        herald::domain::staff::Role::Clinician,
        "correct horse battery staple",
    )
    .unwrap();
    let staff = herald::service::staff::issue_token(&mut c, Utc::now(), "clin", 30).unwrap();
    drop(c);

    let rsa = Rsa::generate(2048).unwrap();
    let jwk = json!({"kty": "RSA", "kid": "k1", "n": B64URL.encode(rsa.n().to_vec()),
                     "e": B64URL.encode(rsa.e().to_vec())});
    let key = PKey::from_rsa(rsa).unwrap();
    let api = jwt(&key);

    let mut s = Settings::default();
    s.api.issuers = vec![ApiIssuer {
        issuer: ISS.into(),
        audience: AUD.into(),
        jwks_uri: Some("http://127.0.0.1:9/jwks".into()),
        ..ApiIssuer::default()
    }];
    let state = AppState::new(Arc::new(s), pool, Arc::new(ring), Arc::new(SystemClock));
    state.api.seed_jwks(ISS, json!({ "keys": [jwk] }));

    actix_rt::System::new().block_on(async move {
        // Three apps over the same state that differ only in what stands in
        // front of the handler of GET /fhir/Consent: nothing (the caller is
        // stored as the table would store it), or the access table's
        // `enforce` with a staff token or an API client's JWT.
        let rule = access::rule(access::Method::Get, "/fhir/Consent").expect("row");
        let bare = test::init_service(
            App::new().app_data(web::Data::new(state.clone())).service(
                web::resource(rule.path).route(
                    rule.handler(web::get())
                        .wrap(from_fn(|req: ServiceRequest, next: Next<_>| async move {
                            req.extensions_mut()
                                .insert(access::Caller::ApiClient(access::ApiIdentity {
                                    issuer: ISS.into(),
                                    client_id: "scheduler".into(),
                                }));
                            next.call(req).await
                        })),
                ),
            ),
        )
        .await;
        let guarded = test::init_service(
            App::new().app_data(web::Data::new(state.clone())).service(
                web::resource(rule.path).route(
                    rule.handler(web::get())
                        .wrap(from_fn(move |req, next| access::enforce(rule, req, next))),
                ),
            ),
        )
        .await;
        // The verification alone (signature, claims, cached key), for the
        // note: how much of the difference it explains.
        let mut alone = Vec::new();
        for _ in 0..2000 {
            let t = Instant::now();
            state.api.verify(&api, Utc::now()).await.unwrap();
            alone.push(t.elapsed());
        }
        println!(
            "ApiVerifier::verify alone: p50 {:.1} µs, p95 {:.1} µs",
            percentile(&alone, 0.5),
            percentile(&alone, 0.95)
        );
        let names = ["check bypassed", "staff token", "API client JWT"];
        let tokens = [String::new(), staff, api];
        let mut samples: [Vec<Duration>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        let mut round_ratio = Vec::new();
        for round in 0..=ROUNDS {
            let n = if round == 0 { WARM } else { PER_ROUND };
            let mut this: [Vec<Duration>; 3] = [Vec::new(), Vec::new(), Vec::new()];
            for i in 0..n {
                for k in 0..3 {
                    let path = (i + k) % 3;
                    let mut req = test::TestRequest::get().uri("/fhir/Consent?patient=Patient/p-1");
                    if path > 0 {
                        req = req.insert_header(("authorization", format!("Bearer {}", tokens[path])));
                    }
                    let req = req.to_request();
                    let t = Instant::now();
                    let res = if path == 0 {
                        test::call_service(&bare, req).await
                    } else {
                        test::call_service(&guarded, req).await
                    };
                    let status = res.status().as_u16();
                    let _ = test::read_body(res).await;
                    this[path].push(t.elapsed());
                    assert_eq!(status, 200, "{}", names[path]);
                }
            }
            if round > 0 {
                let p = |k: usize| percentile(&this[k], 0.95);
                let r = p(2) / p(0);
                println!(
                    "round {round}: p95 {} {:.0} µs, {} {:.0} µs, {} {:.0} µs, API/bypassed {r:.2}×",
                    names[0],
                    p(0),
                    names[1],
                    p(1),
                    names[2],
                    p(2)
                );
                round_ratio.push(r);
                for k in 0..3 {
                    samples[k].append(&mut this[k]);
                }
            }
        }
        println!("== GET /fhir/Consent?patient=… ({ROUNDS} rounds × {PER_ROUND} each, interleaved, SQLite)");
        for k in 0..3 {
            println!(
                "   {:<16} p50 {:>7.1} µs   p95 {:>7.1} µs   p99 {:>7.1} µs",
                names[k],
                percentile(&samples[k], 0.5),
                percentile(&samples[k], 0.95),
                percentile(&samples[k], 0.99)
            );
        }
        round_ratio.sort_by(f64::total_cmp);
        let ratio = |k: usize, q: f64| percentile(&samples[k], q) / percentile(&samples[0], q);
        println!(
            "   API client / bypassed: p50 {:.2}× p95 {:.2}× (per-round p95 median {:.2}×); staff token / bypassed: p95 {:.2}×",
            ratio(2, 0.5),
            ratio(2, 0.95),
            round_ratio[round_ratio.len() / 2],
            ratio(1, 0.95)
        );
    });
}
