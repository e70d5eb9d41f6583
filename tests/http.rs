//! The HTTP skeleton: health, request ids, error bodies, the basic
//! AuditEvent search with stable paging, and a database outage.

use actix_web::test;
use serde_json::Value;
use std::sync::Arc;

use herald::audit;
use herald::config::{DbUrl, Settings};
use herald::web::{AppState, app};

use super::audit_chain::record;
use super::support::{self, TestDb};

fn state(db: &TestDb) -> AppState {
    let (ring, _) = support::ready(db);
    support::auditor(db, &ring);
    AppState::new(
        Arc::new(Settings::default()),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    )
}

async fn get<S, B>(app: &S, uri: &str) -> (u16, String, String, Value)
where
    S: actix_web::dev::Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: actix_web::body::MessageBody,
{
    let res = test::call_service(
        app,
        support::as_auditor(test::TestRequest::get().uri(uri)).to_request(),
    )
    .await;
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let rid = res
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = test::read_body(res).await;
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, ct, rid, json)
}

#[actix_web::test]
async fn health_request_ids_and_error_bodies() {
    let db = support::sqlite();
    let app = test::init_service(app(state(&db))).await;
    let (s, _, rid, body) = get(&app, "/healthz").await;
    assert_eq!((s, body["status"].as_str()), (200, Some("ok")));
    assert!(!rid.is_empty(), "every response has a request id");
    let (s, _, _, _) = get(&app, "/readyz").await;
    assert_eq!(s, 200);
    let res = test::call_service(
        &app,
        test::TestRequest::get()
            .uri("/healthz")
            .insert_header(("x-request-id", "abc-123"))
            .to_request(),
    )
    .await;
    // Herald's own id, never the caller's (issue 11 F6c).
    let rid = res.headers().get("x-request-id").unwrap().to_str().unwrap();
    assert_ne!(rid, "abc-123");
    assert!(uuid::Uuid::try_parse(rid).is_ok(), "{rid}");
    let (s, ct, _, body) = get(&app, "/fhir/Nothing").await;
    assert_eq!(s, 404);
    assert!(ct.starts_with("application/fhir+json"), "{ct}");
    assert_eq!(body["resourceType"], "OperationOutcome");
    let (s, ct, _, body) = get(&app, "/nothing").await;
    assert_eq!(s, 404);
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["code"], "not-found");
    let (s, _, _, body) = get(&app, "/fhir/AuditEvent?purpose=TREAT").await;
    assert_eq!(s, 400);
    assert_eq!(body["issue"][0]["code"], "invalid");
    let msg = body["issue"][0]["details"]["text"].as_str().unwrap();
    assert!(
        msg.contains("purpose") && msg.contains("supported: date"),
        "{msg}"
    );
    let (s, _, _, _) = get(&app, "/fhir/AuditEvent?date=yesterday").await;
    assert_eq!(s, 400);
    let (s, _, _, body) = get(&app, "/fhir/metadata").await;
    assert_eq!((s, body["fhirVersion"].as_str()), (200, Some("4.0.1")));
    // No [api] issuers: no security section advertised.
    assert!(body["rest"][0]["security"].is_null());
}

#[actix_web::test]
async fn audit_search_pages_every_event_once_while_events_arrive() {
    for db in support::backends() {
        let st = state(&db);
        {
            let mut c = db.conn();
            for i in 0..21 {
                audit::append_now(&mut c, &[record(i)]).unwrap();
            }
        }
        let app = test::init_service(app(st)).await;
        // record(i) has patient p{i % 3}: p1 has i = 1, 4, ..., 19 → 7 events.
        let mut url = "/fhir/AuditEvent?patient=Patient/p1&_count=3".to_string();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let (s, ct, _, body) = get(&app, &url).await;
            assert_eq!(s, 200, "{}", db.backend);
            assert!(ct.starts_with("application/fhir+json"));
            assert_eq!(body["type"], "searchset");
            for e in body["entry"].as_array().unwrap() {
                assert_eq!(e["resource"]["resourceType"], "AuditEvent");
                seen.push(e["resource"]["id"].as_str().unwrap().to_string());
            }
            pages += 1;
            // New events for the same patient arrive between pages.
            audit::append_now(&mut db.conn(), &[record(100 + 3 * pages + 1)]).unwrap();
            let next = body["link"]
                .as_array()
                .unwrap()
                .iter()
                .find(|l| l["relation"] == "next")
                .map(|l| l["url"].as_str().unwrap().to_string());
            match next {
                Some(n) => {
                    url = n
                        .split_once("://")
                        .unwrap()
                        .1
                        .split_once('/')
                        .map(|(_, p)| format!("/{p}"))
                        .unwrap()
                }
                None => break,
            }
            assert!(pages < 20);
        }
        let unique: std::collections::BTreeSet<_> = seen.iter().collect();
        assert_eq!(unique.len(), seen.len(), "no event twice");
        assert!(
            seen.len() >= 7,
            "all 7 original events were returned ({})",
            seen.len()
        );
        // Reading the log is itself audited (A9).
        let rows = herald::db::audit_store::scan(&mut db.conn(), 0, 1000).unwrap();
        assert!(
            rows.iter()
                .filter(|r| r.subtype_code.as_deref() == Some("search-type")
                    && r.agent_who
                        .as_deref()
                        .is_some_and(|a| a.starts_with("user:")))
                .count()
                >= pages as usize
        );
        // Date filter and read by id.
        // p2 has records 2, 5, 8, ... one second apart from 17:00:00.
        let count = |body: &Value| body["entry"].as_array().unwrap().len();
        let (_, _, _, body) = get(
            &app,
            "/fhir/AuditEvent?patient=p2&date=lt2026-12-01T17:00:05Z",
        )
        .await;
        assert_eq!(count(&body), 1, "{}", db.backend);
        let (_, _, _, body) = get(
            &app,
            "/fhir/AuditEvent?patient=p2&date=ge2026-12-01T17:00:05Z&date=le2026-12-01T17:00:20Z",
        )
        .await;
        assert_eq!(count(&body), 6, "{}", db.backend);
        let (_, _, _, body) = get(
            &app,
            "/fhir/AuditEvent?patient=p2&date=gt2026-12-01T17:00:05Z&date=lt2026-12-01T17:00:20Z",
        )
        .await;
        assert_eq!(count(&body), 4, "{}", db.backend);
        let (_, _, _, body) = get(
            &app,
            "/fhir/AuditEvent?patient=p2&date=2026-12-01&_sort=-date&_count=2",
        )
        .await;
        let first = body["entry"][0]["resource"]["recorded"]
            .as_str()
            .unwrap()
            .to_string();
        let second = body["entry"][1]["resource"]["recorded"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(first > second, "-date sorts newest first");
        let id = rows[0].id.clone();
        let (s, _, _, body) = get(&app, &format!("/fhir/AuditEvent/{id}")).await;
        assert_eq!((s, body["id"].as_str()), (200, Some(id.as_str())));
        let (s, _, _, _) = get(&app, "/fhir/AuditEvent/does-not-exist").await;
        assert_eq!(s, 404);
    }
}

#[actix_web::test]
async fn database_outage_is_a_503_without_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    // A directory where the database file should be: every connection fails.
    let url = DbUrl::new(format!("sqlite://{}", dir.path().display()));
    let pool = herald::db::pool_lazy(&url, 2, std::time::Duration::from_millis(300)).unwrap();
    let m = herald::crypto::MasterKey::generate().unwrap();
    let ring =
        herald::crypto::KeyRing::open(&m, &[herald::crypto::new_data_key(&m, 1).unwrap()]).unwrap();
    let st = AppState::new(
        Arc::new(Settings::default()),
        pool,
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    let app = test::init_service(app(st)).await;
    for (uri, fhir) in [("/readyz", false), ("/fhir/AuditEvent", true)] {
        let res = test::call_service(
            &app,
            test::TestRequest::get()
                .uri(uri)
                .insert_header(("authorization", "Bearer herald_unreachable"))
                .to_request(),
        )
        .await;
        assert_eq!(res.status().as_u16(), 503, "{uri}");
        let body = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
        for leak in [
            "unable to open",
            "sqlite",
            "database file",
            "timed out",
            dir.path().to_str().unwrap(),
        ] {
            assert!(!body.contains(leak), "{uri} leaks {leak:?}: {body}");
        }
        assert!(
            body.contains(if fhir {
                "OperationOutcome"
            } else {
                "unavailable"
            }),
            "{body}"
        );
    }
}
