//! Following the EHR, edge by edge, against a small EHR double that answers
//! what servers answer (FHIR R4 search Bundles, 429 with Retry-After, paging
//! links, 404): the R4 media type on every request (feasibility §3), retries,
//! same-origin paging, one bad entry skipped not the page (issue 3 item 1),
//! the `_lastUpdated` checkpoint with overlap (N13), exactly once and no roll
//! back (N12), BALP records per call and patient (A2–A5), and the
//! notification endpoint's refusals (401, 400, 413; N4). The real FHIR engine
//! and OAuth server are in `interop.rs`.

use std::sync::{Arc, Mutex};

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use herald::config::Settings;
use herald::db::ehr as store;
use herald::service::ehr::Follower;
use herald::service::ingest::{self, IngestCtx, Ingested};

use super::support;

#[derive(Default)]
struct Seen {
    accepts: Vec<String>,
    queries: Vec<String>,
    page1_calls: usize,
    foreign_next: bool,
}

fn appt(id: &str, version: &str, updated: &str, start: &str, status: &str) -> Value {
    json!({
        "resourceType": "Appointment", "id": id,
        "meta": {"versionId": version, "lastUpdated": updated},
        "extension": [{"url": "http://vendor.example/fhir/priority-score", "valueInteger": 7}],
        "status": status, "start": start,
        "end": start.replace("T15:00", "T15:30"),
        "participant": [{"actor": {"reference": "Patient/fp1"}, "status": "accepted"},
                        {"actor": {"reference": "Location/loc-x"}, "status": "accepted"}]
    })
}

fn patient() -> Value {
    json!({"resourceType": "Patient", "id": "fp1", "meta": {"versionId": "1"},
        "name": [{"given": ["Ana"], "family": "Ruiz"}],
        "telecom": [{"system": "sms", "value": "+12125550199"}],
        "communication": [{"language": {"coding": [{"code": "es-US"}]}, "preferred": true}],
        "address": [{"state": "NY"}]})
}

async fn ehr_search(req: HttpRequest, seen: web::Data<Mutex<Seen>>) -> HttpResponse {
    let base = format!("http://{}", req.connection_info().host());
    let q = req.query_string().to_string();
    let mut s = seen.lock().unwrap();
    s.accepts.push(
        req.headers()
            .get("accept")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
    );
    s.queries.push(q.clone());
    if req.path().ends_with("/MedicationRequest") {
        return HttpResponse::Ok()
            .content_type("application/fhir+json")
            .json(json!({"resourceType": "Bundle", "type": "searchset"}));
    }
    if q.contains("page=2") {
        let next = if s.foreign_next {
            json!([{"relation": "next", "url": "http://127.0.0.2:9/fhir/Appointment?page=3"}])
        } else {
            json!([])
        };
        return HttpResponse::Ok().content_type("application/fhir+json").json(json!({
            "resourceType": "Bundle", "type": "searchset", "link": next,
            "entry": [{"resource": appt("fa2", "1", "2026-12-01T16:00:00Z", "2026-12-07T15:00:00Z", "booked"), "search": {"mode": "match"}}]}));
    }
    s.page1_calls += 1;
    if s.page1_calls % 2 == 1 {
        // Every first try is throttled: the client must wait and retry.
        return HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "1"))
            .finish();
    }
    HttpResponse::Ok().content_type("application/fhir+json").json(json!({
        "resourceType": "Bundle", "type": "searchset",
        "link": [{"relation": "next", "url": format!("{base}/fhir/Appointment?page=2")}],
        "entry": [
            {"resource": appt("fa1", "2", "2026-12-01T15:00:00Z", "2026-12-06T15:00:00Z", "booked"), "search": {"mode": "match"}},
            // A code R4 does not have: this entry is skipped, not the page.
            {"resource": appt("fa3", "1", "2026-12-01T15:30:00Z", "2026-12-06T15:00:00Z", "scheduled"), "search": {"mode": "match"}},
            // No resource at all.
            {"fullUrl": "urn:uuid:broken", "search": {"mode": "match"}}
        ]}))
}

async fn ehr_read(
    req: HttpRequest,
    seen: web::Data<Mutex<Seen>>,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    seen.lock().unwrap().accepts.push(
        req.headers()
            .get("accept")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
    );
    match (path.0.as_str(), path.1.as_str()) {
        ("Patient", "fp1") => HttpResponse::Ok().content_type("application/fhir+json").json(patient()),
        _ => HttpResponse::NotFound().content_type("application/fhir+json").json(json!({
            "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]})),
    }
}

fn start_double(seen: Arc<Mutex<Seen>>) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let data = web::Data::from(seen);
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(data.clone())
                    .route("/fhir/{type}", web::get().to(ehr_search))
                    .route("/fhir/{type}/{id}", web::get().to(ehr_read))
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    (base, rx.recv().unwrap())
}

pub fn events_of(c: &mut herald::db::DbConn) -> Vec<Value> {
    let mut out = Vec::new();
    herald::audit::export(c, None, None, herald::audit::Format::Ndjson, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn settings(base: &str) -> Settings {
    let mut s = Settings::default();
    s.ehr.base_url = Some(base.into());
    s.ehr.auth = "none".into();
    s.ehr.poll = "last-updated".into();
    s.ehr.page_size = 2;
    s.ehr.max_retries = 2;
    s
}

#[test]
fn polling_is_r4_on_the_wire_retries_pages_skips_bad_entries_and_resumes_from_its_checkpoint() {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (base, handle) = start_double(Arc::clone(&seen));
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let ring = Arc::new(ring);
    let clock: Arc<dyn herald::clock::Clock> = Arc::new(support::clock());
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w2 = Arc::clone(&waits);
    let f = Follower::new(
        Arc::new(settings(&base)),
        db.pool.clone(),
        Arc::clone(&ring),
        clock,
    )
    .unwrap()
    .with_sleep(Arc::new(move |d| w2.lock().unwrap().push(d)));

    let r = f.poll_once("t1").unwrap().expect("the lease is free");
    // fa1 and fa2 planned; fa3 (unknown status code) and the empty entry skipped.
    assert_eq!((r.planned, r.skipped), (2, 2), "{r:?}");
    {
        let s = seen.lock().unwrap();
        assert!(!s.accepts.is_empty());
        for a in &s.accepts {
            assert!(
                a.contains("application/fhir+json") && a.contains("fhirVersion=4.0"),
                "R4 on the wire: {a}"
            );
            assert!(!a.contains("4.3"), "never R4B's version: {a}");
        }
        assert_eq!(s.page1_calls, 2, "the 429 was retried");
    }
    assert!(
        waits
            .lock()
            .unwrap()
            .iter()
            .any(|d| *d >= std::time::Duration::from_secs(1)),
        "Retry-After was honoured"
    );
    let mut c = db.conn();
    let outbox = herald::db::outbox::list(&mut c).unwrap();
    let about: std::collections::BTreeSet<_> = outbox.iter().map(|i| i.about.clone()).collect();
    assert!(about.contains("Appointment/fa1") && about.contains("Appointment/fa2"));
    assert!(!about.contains("Appointment/fa3"));

    // The checkpoint is the newest lastUpdated; the next pass starts one
    // overlap window before it and finds only duplicates.
    let cp = store::checkpoint(&mut c, &format!("{base}|Appointment|_lastUpdated")).unwrap();
    assert_eq!(cp.as_deref(), Some("2026-12-01T16:00:00.000Z"));
    let before = outbox.len();
    let r2 = f.poll_once("t1").unwrap().unwrap();
    assert_eq!((r2.planned, r2.duplicates), (0, 2), "{r2:?}");
    assert_eq!(herald::db::outbox::list(&mut c).unwrap().len(), before);
    let last_q = seen
        .lock()
        .unwrap()
        .queries
        .iter()
        .rev()
        .find(|q| q.contains("_lastUpdated=gt"))
        .cloned();
    assert!(
        last_q
            .unwrap_or_default()
            .contains("_lastUpdated=gt2026-12-01T15:55:00.000Z"),
        "overlap of poll_overlap_secs (300) before the checkpoint: {:?}",
        seen.lock().unwrap().queries
    );

    // A second instance does not poll while the first holds the lease.
    let now = herald::clock::Clock::now(&support::clock());
    assert!(
        store::try_lease(
            &mut c,
            &format!("poll|{base}"),
            "other",
            now + chrono::Duration::minutes(5),
            now
        )
        .unwrap()
    );
    assert!(f.poll_once("t1").unwrap().is_none());
    store::release_lease(&mut c, &format!("poll|{base}"), "other").unwrap();

    // A paging link to another origin is refused (tokens never leave the EHR).
    seen.lock().unwrap().foreign_next = true;
    let err = f.poll_once("t1").unwrap_err().to_string();
    assert!(err.contains("another origin"), "{err}");

    // BALP: every search page and read is an AuditEvent with its subtype and
    // one per patient (A2–A5); the Patient read carries the patient entity.
    let events = events_of(&mut c);
    let rest: Vec<&Value> = events
        .iter()
        .filter(|e| e["subtype"][0]["system"] == "http://hl7.org/fhir/restful-interaction")
        .collect();
    assert!(rest.iter().any(|e| {
        e["subtype"][0]["code"] == "search-type"
            && e["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["role"]["code"] == "24")
            && e["entity"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x["what"]["reference"] == "Patient/fp1")
    }));
    assert!(
        rest.iter()
            .any(|e| e["subtype"][0]["code"] == "read" && e["action"] == "R")
    );
    assert!(
        rest.iter()
            .any(|e| e["subtype"][0]["code"] == "read" && e["outcome"] != "0"),
        "the 404 Location read is audited as a failure"
    );
    let ndjson: String = events.iter().map(|e| format!("{e}\n")).collect();
    let out = super::demo::validate(&ndjson);
    assert!(
        out.status.success(),
        "every AuditEvent is valid R4: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    actix_rt::System::new().block_on(handle.stop(false));
}

#[test]
fn a_version_is_processed_once_and_a_late_older_one_never_rolls_back() {
    // N12 on both backends: the same version twice, then an older one late.
    for db in support::backends() {
        let (ring, _) = support::ready(&db);
        let clock = support::clock();
        let messaging = support::messaging();
        let ctx = IngestCtx {
            ring: &ring,
            clock: &clock,
            messaging: &messaging,
            ehr: "urn:test",
        };
        let mut c = db.conn();
        ingest::patient(&mut c, &ctx, &patient(), &[]).unwrap();
        let tz = |_: &str| Some(chrono_tz::America::New_York);
        let v2 = appt(
            "o1",
            "2",
            "2026-12-01T15:00:00Z",
            "2026-12-06T15:00:00Z",
            "booked",
        );
        let v1 = appt(
            "o1",
            "1",
            "2026-12-01T14:00:00Z",
            "2026-12-08T15:00:00Z",
            "booked",
        );
        let v3 = appt(
            "o1",
            "3",
            "2026-12-01T16:00:00Z",
            "2026-12-06T15:00:00Z",
            "cancelled",
        );
        assert!(matches!(
            ingest::appointment(&mut c, &ctx, &v2, &tz, &[]).unwrap(),
            Ingested::Planned { .. }
        ));
        let snapshot = herald::db::outbox::list(&mut c).unwrap().len();
        assert_eq!(
            ingest::appointment(&mut c, &ctx, &v2, &tz, &[]).unwrap(),
            Ingested::Duplicate
        );
        assert_eq!(
            ingest::appointment(&mut c, &ctx, &v1, &tz, &[]).unwrap(),
            Ingested::Stale,
            "{}",
            db.backend
        );
        assert_eq!(
            herald::db::outbox::list(&mut c).unwrap().len(),
            snapshot,
            "nothing re-planned"
        );
        assert!(matches!(
            ingest::appointment(&mut c, &ctx, &v3, &tz, &[]).unwrap(),
            Ingested::Planned { .. }
        ));
        // The cancellation stays: v2 replayed afterwards is older.
        assert_eq!(
            ingest::appointment(&mut c, &ctx, &v2, &tz, &[]).unwrap(),
            Ingested::Stale
        );
        let held = herald::db::resources::get(&mut c, &ring, "Appointment", "o1")
            .unwrap()
            .unwrap();
        assert_eq!(held.status, "cancelled");
    }
}

#[actix_web::test]
async fn notifications_are_authenticated_checked_and_stored_before_the_answer() {
    use actix_web::test;
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let now = support::now();
    let mut c = db.conn();
    let sub = store::EhrSubscription {
        id: "sub1".into(),
        resource_type: "Appointment".into(),
        style: "r4".into(),
        ehr: "urn:test".into(),
        remote_id: Some("r1".into()),
        secret: "s3cret-value".into(),
        status: "active".into(),
        topic: None,
        last_event: 0,
        last_seen_at: None,
        heartbeat_secs: None,
    };
    store::insert_subscription(&mut c, &ring, &sub, now).unwrap();
    let mut settings = Settings::default();
    settings.ehr.max_notification_bytes = 4096;
    let state = herald::web::AppState::new(
        Arc::new(settings),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    );
    let app = test::init_service(herald::web::app(state)).await;
    let body = appt(
        "n1",
        "1",
        "2026-12-01T15:00:00Z",
        "2026-12-06T15:00:00Z",
        "booked",
    )
    .to_string();
    let post = |auth: Option<&str>, sig: Option<String>, body: String| {
        let mut r = test::TestRequest::post()
            .uri("/hooks/fhir/sub1")
            .insert_header(("content-type", "application/fhir+json"));
        if let Some(a) = auth {
            r = r.insert_header(("authorization", a.to_string()));
        }
        if let Some(s) = sig {
            r = r.insert_header(("x-signature", s));
        }
        r.set_payload(body).to_request()
    };
    let stored = |c: &mut herald::db::DbConn| {
        store::notification_counts(c)
            .unwrap()
            .iter()
            .map(|(_, n)| *n)
            .sum::<i64>()
    };

    // N4: no secret, a wrong one, an unknown subscription → 401, nothing stored.
    for (uri, auth) in [
        ("/hooks/fhir/sub1", None),
        ("/hooks/fhir/sub1", Some("Bearer wrong")),
        ("/hooks/fhir/nope", Some("Bearer s3cret-value")),
    ] {
        let mut r = test::TestRequest::post().uri(uri).set_payload(body.clone());
        if let Some(a) = auth {
            r = r.insert_header(("authorization", a));
        }
        let res = test::call_service(&app, r.to_request()).await;
        assert_eq!(res.status().as_u16(), 401, "{uri} {auth:?}");
        let oo: Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
        assert_eq!(oo["resourceType"], "OperationOutcome");
    }
    assert_eq!(stored(&mut c), 0);
    // Malformed JSON → 400 OperationOutcome, not stored.
    let res = test::call_service(
        &app,
        post(Some("Bearer s3cret-value"), None, "{not json".into()),
    )
    .await;
    assert_eq!(res.status().as_u16(), 400);
    let oo: Value = serde_json::from_slice(&test::read_body(res).await).unwrap();
    assert_eq!(oo["issue"][0]["code"], "invalid");
    // Oversized → 413.
    let big = format!(
        "{{\"resourceType\":\"Basic\",\"x\":\"{}\"}}",
        "a".repeat(5000)
    );
    let res = test::call_service(&app, post(Some("Bearer s3cret-value"), None, big)).await;
    assert_eq!(res.status().as_u16(), 413);
    assert_eq!(stored(&mut c), 0);
    // The bearer secret, or Medplum's X-Signature (HMAC-SHA256 hex of the body).
    let res = test::call_service(&app, post(Some("Bearer s3cret-value"), None, body.clone())).await;
    assert_eq!(res.status().as_u16(), 200);
    let key = openssl::pkey::PKey::hmac(b"s3cret-value").unwrap();
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &key).unwrap();
    signer.update(body.as_bytes()).unwrap();
    let hex: String = signer
        .sign_to_vec()
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let res = test::call_service(&app, post(None, Some(hex), body.clone())).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = test::call_service(&app, post(None, Some("00".repeat(32)), body.clone())).await;
    assert_eq!(res.status().as_u16(), 401, "a wrong signature");
    // Empty (N2) and the R4 update style PUT {endpoint}/{type}/{id}.
    let res =
        test::call_service(&app, post(Some("Bearer s3cret-value"), None, String::new())).await;
    assert_eq!(res.status().as_u16(), 200);
    let res = test::call_service(
        &app,
        test::TestRequest::put()
            .uri("/hooks/fhir/sub1/Appointment/n1")
            .insert_header(("authorization", "Bearer s3cret-value"))
            .set_payload(body.clone())
            .to_request(),
    )
    .await;
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(stored(&mut c), 4);
    // Refusals are audited.
    let events = events_of(&mut c);
    assert!(
        events.iter().filter(|e| e["outcome"] == "4").count() >= 4,
        "each refusal has an AuditEvent"
    );
}

#[test]
fn signing_keys_are_published_before_they_sign() {
    // S18: rotation publishes the new key at once; Herald signs with it only
    // after `publish_ahead`.
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let mut c = db.conn();
    let now = support::now();
    let made = herald::service::ehr::init_signing_keys(&mut c, &ring, now).unwrap();
    assert_eq!(made.len(), 2);
    assert!(
        herald::service::ehr::init_signing_keys(&mut c, &ring, now)
            .unwrap()
            .is_empty(),
        "idempotent"
    );
    let new = herald::service::ehr::rotate_signing_key(
        &mut c,
        &ring,
        "RS384",
        now,
        chrono::Duration::hours(24),
    )
    .unwrap();
    let jwks = herald::service::ehr::jwks(&mut c).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(kids.contains(&new.as_str()), "published at once");
    assert_eq!(
        kids.len(),
        3,
        "the old RS384 key stays until the new one signs"
    );
    for k in jwks["keys"].as_array().unwrap() {
        assert!(k["d"].is_null() && k["p"].is_null(), "public halves only");
    }
    let pick = |at: chrono::DateTime<chrono::Utc>| {
        store::published_keys(&mut db.conn(), &ring)
            .unwrap()
            .into_iter()
            .filter(|k| k.alg == "RS384" && k.sign_from <= at)
            .max_by_key(|k| k.sign_from)
            .unwrap()
            .kid
    };
    assert_ne!(pick(now + chrono::Duration::hours(1)), new);
    assert_eq!(pick(now + chrono::Duration::hours(25)), new);
    // The next rotation retires the oldest.
    herald::service::ehr::rotate_signing_key(
        &mut c,
        &ring,
        "RS384",
        now + chrono::Duration::days(2),
        chrono::Duration::hours(24),
    )
    .unwrap();
    let jwks = herald::service::ehr::jwks(&mut c).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 3);
}

#[derive(Default)]
struct BulkSeen {
    kickoffs: Vec<(String, String)>,
    status_calls: usize,
    deleted: bool,
}

async fn bulk_kickoff(req: HttpRequest, seen: web::Data<Mutex<BulkSeen>>) -> HttpResponse {
    let base = format!("http://{}", req.connection_info().host());
    let prefer = req
        .headers()
        .get("prefer")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    seen.lock()
        .unwrap()
        .kickoffs
        .push((req.query_string().to_string(), prefer));
    HttpResponse::Accepted()
        .insert_header(("Content-Location", format!("{base}/bulkstatus/job1")))
        .finish()
}

async fn bulk_status(req: HttpRequest, seen: web::Data<Mutex<BulkSeen>>) -> HttpResponse {
    let base = format!("http://{}", req.connection_info().host());
    let mut s = seen.lock().unwrap();
    if req.method() == actix_web::http::Method::DELETE {
        s.deleted = true;
        return HttpResponse::Accepted().finish();
    }
    s.status_calls += 1;
    if s.status_calls % 2 == 1 {
        return HttpResponse::Accepted()
            .insert_header(("X-Progress", "50%"))
            .insert_header(("Retry-After", "3"))
            .finish();
    }
    HttpResponse::Ok().json(json!({
        "transactionTime": "2026-12-01T16:30:00.000Z",
        "request": format!("{base}/fhir/Group/g1/$export"),
        "requiresAccessToken": true,
        "output": [
            {"type": "Appointment", "url": format!("{base}/files/appointments.ndjson")},
            {"type": "Patient", "url": format!("{base}/files/patients.ndjson")}
        ],
        "error": []
    }))
}

async fn bulk_file(path: web::Path<String>) -> HttpResponse {
    let body = match path.as_str() {
        "patients.ndjson" => format!("{}\n", patient()),
        _ => format!(
            "{}\nnot json at all\n{}\n",
            appt(
                "bk1",
                "1",
                "2026-12-01T15:00:00Z",
                "2026-12-06T15:00:00Z",
                "booked"
            ),
            appt(
                "bk2",
                "1",
                "2026-12-01T15:00:00Z",
                "2026-12-07T15:00:00Z",
                "booked"
            )
        ),
    };
    HttpResponse::Ok()
        .content_type("application/fhir+ndjson")
        .body(body)
}

#[test]
fn bulk_data_reconcile_waits_downloads_ingests_and_deletes_the_export() {
    // Bulk Data Access 2.0 kick-off / status / manifest / NDJSON / DELETE (V13, V14).
    let seen = Arc::new(Mutex::new(BulkSeen::default()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/fhir", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let s2 = Arc::clone(&seen);
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let data = web::Data::from(s2);
            let server = actix_web::HttpServer::new(move || {
                actix_web::App::new()
                    .app_data(data.clone())
                    .route("/fhir/Group/g1/$export", web::get().to(bulk_kickoff))
                    .route("/bulkstatus/job1", web::get().to(bulk_status))
                    .route("/bulkstatus/job1", web::delete().to(bulk_status))
                    .route("/files/{name}", web::get().to(bulk_file))
                    .route(
                        "/fhir/{type}/{id}",
                        web::get().to(|| async { HttpResponse::NotFound().finish() }),
                    )
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    let handle = rx.recv().unwrap();
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let mut s = settings(&base);
    s.ehr.bulk_group = Some("Group/g1".into());
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w2 = Arc::clone(&waits);
    let f = Follower::new(
        Arc::new(s),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(support::clock()),
    )
    .unwrap()
    .with_sleep(Arc::new(move |d| w2.lock().unwrap().push(d)));
    let r = f.bulk_reconcile("b").unwrap().unwrap();
    assert_eq!(
        (r.seen, r.planned, r.skipped),
        (3, 2, 1),
        "patient + 2 appointments; the bad line skipped: {r:?}"
    );
    {
        let s = seen.lock().unwrap();
        assert_eq!(s.kickoffs[0].1, "respond-async");
        assert!(
            s.kickoffs[0]
                .0
                .contains("_type=Patient,Appointment,MedicationRequest")
        );
        assert!(
            !s.kickoffs[0].0.contains("_since"),
            "the first export is full"
        );
        assert!(s.deleted, "the finished export is deleted (V13)");
    }
    assert!(
        waits
            .lock()
            .unwrap()
            .contains(&std::time::Duration::from_secs(3)),
        "Retry-After of the status"
    );
    // The next export asks only for what changed since the last transactionTime.
    let r = f.bulk_reconcile("b").unwrap().unwrap();
    assert_eq!((r.planned, r.duplicates), (0, 3), "{r:?}");
    let s = seen.lock().unwrap();
    assert!(
        s.kickoffs[1].0.contains("_since=2026-12-01T16:30:00.000Z"),
        "{:?}",
        s.kickoffs
    );
    drop(s);
    actix_rt::System::new().block_on(handle.stop(false));
}

fn env(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn presets_fill_what_configuration_leaves_unset_and_every_preset_is_valid() {
    // Issue 3 item 2: herald.toml names a preset and overrides any field.
    for name in ["epic", "oracle-health", "hapi", "medplum"] {
        let s = Settings::load(
            None,
            &env(&[
                ("HERALD_EHR__PRESET", name),
                ("HERALD_EHR__BASE_URL", "https://ehr.example/fhir"),
                ("HERALD_EHR__CLIENT_ID", "herald"),
                ("HERALD_EHR__POLL_LOCATIONS", "Location/1,Location/2"),
                // Presets that subscribe need Herald's public address (F8b).
                ("HERALD_SERVER__PUBLIC_URL", "https://herald.example"),
            ]),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let problems = s.validate();
        assert!(
            problems.iter().all(|p| !p.to_string().contains("ehr.")),
            "{name}: {problems:?}"
        );
        let text = herald::config::EHR_PRESETS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1;
        let doc: toml::Table = text.parse().unwrap();
        for key in ["name", "description", "base_url_shape", "discovery"] {
            assert!(doc.contains_key(key), "{name} documents {key}");
        }
    }
    let epic = Settings::load(None, &env(&[("HERALD_EHR__PRESET", "epic")])).unwrap();
    assert_eq!(
        (epic.ehr.poll.as_str(), epic.ehr.subscription.as_str()),
        ("patient-roster", "none")
    );
    assert!(epic.ehr.writes.is_empty());
    let oracle = Settings::load(None, &env(&[("HERALD_EHR__PRESET", "oracle-health")])).unwrap();
    assert_eq!(oracle.ehr.poll, "location-window");
    let hapi = Settings::load(None, &env(&[("HERALD_EHR__PRESET", "hapi")])).unwrap();
    assert_eq!(
        (hapi.ehr.auth.as_str(), hapi.ehr.subscription.as_str()),
        ("none", "r4")
    );
    assert!(hapi.ehr.writes.contains(&"Consent".to_string()));
    // An explicit value wins over the preset.
    let mine = Settings::load(
        None,
        &env(&[
            ("HERALD_EHR__PRESET", "hapi"),
            ("HERALD_EHR__SUBSCRIPTION", "backport"),
            ("HERALD_EHR__WRITES", "AuditEvent"),
        ]),
    )
    .unwrap();
    assert_eq!(mine.ehr.subscription, "backport");
    assert_eq!(mine.ehr.writes, vec!["AuditEvent".to_string()]);
    // Bad values are named.
    let bad = Settings::load(
        None,
        &env(&[
            ("HERALD_EHR__POLL_SCHEDULE", "*/5 * * * *"),
            ("HERALD_EHR__SIGNING_ALG", "HS256"),
        ]),
    )
    .unwrap();
    let problems: Vec<String> = bad.validate().iter().map(|p| p.to_string()).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("ehr.poll_schedule") && p.contains("six fields")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("ehr.signing_alg")),
        "{problems:?}"
    );
}

#[test]
fn one_instance_at_a_time_holds_a_lease_on_either_backend() {
    // Several Herald instances on one PostgreSQL never poll the same EHR at once.
    for db in support::backends() {
        let (_ring, _) = support::ready(&db);
        let now = support::now();
        let later = now + chrono::Duration::minutes(5);
        let mut a = db.conn();
        let mut b = db.conn();
        assert!(store::try_lease(&mut a, "poll|x", "A", later, now).unwrap());
        assert!(
            !store::try_lease(&mut b, "poll|x", "B", later, now).unwrap(),
            "{}",
            db.backend
        );
        assert!(
            store::try_lease(&mut a, "poll|x", "A", later, now).unwrap(),
            "the holder renews"
        );
        // Expired: anyone may take it.
        assert!(
            store::try_lease(
                &mut b,
                "poll|x",
                "B",
                later + chrono::Duration::minutes(10),
                later + chrono::Duration::seconds(1)
            )
            .unwrap()
        );
        store::release_lease(&mut b, "poll|x", "B").unwrap();
        // A race for a fresh lease: exactly one winner.
        let wins: usize = std::thread::scope(|s| {
            let hs: Vec<_> = (0..4)
                .map(|i| {
                    let pool = db.pool.clone();
                    s.spawn(move || {
                        let mut c = pool.get().unwrap();
                        herald::db::write_tx(&mut c, |c| {
                            store::try_lease(c, "poll|race", &format!("h{i}"), later, now)
                        })
                        .unwrap_or(false)
                    })
                })
                .collect();
            hs.into_iter().map(|h| usize::from(h.join().unwrap())).sum()
        });
        assert_eq!(wins, 1, "{}", db.backend);
    }
}

#[test]
fn herald_serve_polls_on_its_cron_schedule() {
    // The follower thread `herald serve` starts: polls on ehr.poll_schedule (cron).
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (base, handle) = start_double(Arc::clone(&seen));
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let mut s = settings(&base);
    s.ehr.poll_schedule = "* * * * * *".into();
    let f = Follower::new(
        Arc::new(s),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(herald::clock::SystemClock),
    )
    .unwrap()
    .with_sleep(Arc::new(|_| {}));
    let running = herald::service::ehr::Running::start(Arc::new(f), "serve-test".into()).unwrap();
    let t0 = std::time::Instant::now();
    loop {
        let planned = herald::db::outbox::list(&mut db.conn())
            .unwrap()
            .iter()
            .any(|i| i.about == "Appointment/fa1");
        if planned {
            break;
        }
        assert!(
            t0.elapsed() < std::time::Duration::from_secs(15),
            "no scheduled poll"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    running.stop();
    actix_rt::System::new().block_on(handle.stop(false));
}
