//! Interop (issue 3 acceptance): Herald against a real FHIR engine
//! (@medplum/fhir-router over its in-memory repository: validation, search,
//! versioning) and a real OAuth2 server (oidc-provider), both from npm and
//! started here (`tests/interop/server.mjs`). The harness adds only what no
//! package does in memory: rest-hook and Backport notification delivery.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use herald::clock::{Clock, FixedClock, SystemClock};
use herald::config::Settings;
use herald::service::ehr::Follower;
use herald::smart::backend::{BackendAuth, BackendConfig, TokenError};
use herald::web::AppState;

use super::support::{self, TestDb};

pub struct Harness {
    child: Child,
    pub fhir: String,
    pub admin: String,
    pub issuer: String,
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn harness() -> Harness {
    harness_with(&[])
}

pub fn harness_with(args: &[&str]) -> Harness {
    let dir = support::npm_dir("tests/interop");
    let mut child = Command::new("node")
        .arg(dir.join("server.mjs"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value =
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("harness said {line:?}: {e}"));
    Harness {
        child,
        fhir: v["fhir"].as_str().unwrap().into(),
        admin: v["admin"].as_str().unwrap().into(),
        issuer: v["issuer"].as_str().unwrap().into(),
    }
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

pub fn admin(h: &Harness, method: &str, path: &str, body: Value) -> Value {
    let url = format!("{}/{}", h.admin, path.trim_start_matches('/'));
    let req = match method {
        "GET" => http().get(&url),
        _ => http().post(&url).json(&body),
    };
    let res = req.send().unwrap();
    let status = res.status();
    let text = res.text().unwrap();
    assert!(status.is_success(), "admin {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Herald's HTTP server (hooks, JWKS) on `listener`, in its own thread.
fn serve(state: AppState, listener: std::net::TcpListener) -> actix_web::dev::ServerHandle {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = herald::web::server(state, listener).unwrap();
            tx.send(server.handle()).unwrap();
            let _ = server.await;
        });
    });
    rx.recv().unwrap()
}

fn stop(handle: actix_web::dev::ServerHandle) {
    actix_rt::System::new().block_on(handle.stop(false));
}

const SCOPE: &str = "system/Patient.rs system/Location.rs system/Appointment.cruds system/MedicationRequest.cruds system/Subscription.cruds system/Consent.cruds";

pub struct Herald {
    pub db: TestDb,
    pub state: AppState,
    pub base: String,
    pub addr: std::net::SocketAddr,
}

pub fn herald_for(
    h: &Harness,
    client_id: &str,
    tweak: impl FnOnce(&mut Settings),
) -> (Herald, actix_web::dev::ServerHandle) {
    let db = support::sqlite();
    let (ring, _) = support::ready(&db);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut s = Settings::default();
    s.server.public_url = Some(base.clone());
    s.ehr.base_url = Some(h.fhir.clone());
    s.ehr.client_id = Some(client_id.into());
    s.ehr.auth = "backend-services".into();
    s.ehr.scope = SCOPE.into();
    s.ehr.subscription = "r4".into();
    s.ehr.payload = "full-resource".into();
    s.ehr.poll = "last-updated".into();
    s.ehr.page_size = 5;
    s.ehr.timeout_ms = 10_000;
    tweak(&mut s);
    herald::service::ehr::init_signing_keys(&mut db.conn(), &ring, SystemClock.now()).unwrap();
    let state = AppState::new(
        Arc::new(s),
        db.pool.clone(),
        Arc::new(ring),
        Arc::new(SystemClock),
    );
    let handle = serve(state.clone(), listener);
    admin(
        h,
        "POST",
        "clients",
        json!({"client_id": client_id, "jwks_uri": format!("{base}/.well-known/jwks.json"), "scope": SCOPE}),
    );
    (
        Herald {
            db,
            state,
            base,
            addr,
        },
        handle,
    )
}

fn follower(hd: &Herald) -> Follower {
    Follower::new(
        Arc::clone(&hd.state.settings),
        hd.state.pool.clone(),
        Arc::clone(&hd.state.ring),
        hd.state.clock.clone(),
    )
    .unwrap()
}

fn auth(
    hd: &Herald,
    h: &Harness,
    client_id: &str,
    alg: &str,
    clock: Arc<dyn Clock>,
) -> BackendAuth {
    auth_with(hd, h, client_id, alg, clock, "system/Appointment.rs")
}

fn auth_with(
    hd: &Herald,
    h: &Harness,
    client_id: &str,
    alg: &str,
    clock: Arc<dyn Clock>,
    scope: &str,
) -> BackendAuth {
    let (pool, ring) = (hd.state.pool.clone(), Arc::clone(&hd.state.ring));
    BackendAuth::new(
        BackendConfig {
            base_url: h.fhir.clone(),
            client_id: client_id.into(),
            scope: scope.into(),
            alg: alg.into(),
            token_url: None,
            jku: Some(format!("{}/.well-known/jwks.json", hd.base)),
        },
        http(),
        Box::new(move |alg: &str, now| {
            let mut c = pool.get()?;
            let keys = herald::db::ehr::published_keys(&mut c, &ring)?;
            // Any published key of the algorithm: the slow-clock case below
            // must reach the server, whatever the key's sign_from.
            let _ = now;
            Ok(keys
                .into_iter()
                .filter(|k| k.alg == alg)
                .max_by_key(|k| k.sign_from))
        }),
        clock,
    )
}

#[test]
fn backend_services_tokens_with_rs384_and_es384_and_clear_refusals() {
    // S16–S19 against oidc-provider, which fetches Herald's JWKS URL.
    let h = harness();
    let (hd, handle) = herald_for(&h, "herald-bs", |_| {});
    for alg in ["RS384", "ES384"] {
        let a = auth(&hd, &h, "herald-bs", alg, Arc::new(SystemClock));
        let t = a.token().unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert!(!t.access_token.is_empty());
        assert!(
            t.scope
                .as_deref()
                .unwrap_or("")
                .contains("system/Appointment.rs"),
            "{alg}: {:?}",
            t.scope
        );
        // Cached until shortly before expiry.
        assert_eq!(a.token().unwrap().access_token, t.access_token);
        // A replayed assertion is refused and the error says so.
        let assertion = a.assertion(SystemClock.now()).unwrap();
        a.exchange(&assertion).unwrap();
        let e = a.exchange(&assertion).unwrap_err();
        assert!(matches!(e, TokenError::Replayed(_)), "{alg} replay: {e}");
    }
    // An expired assertion (Herald's clock 10 minutes slow): the error names the clock.
    let slow = Arc::new(FixedClock::new(
        SystemClock.now() - chrono::Duration::minutes(10),
    ));
    let e = auth(&hd, &h, "herald-bs", "RS384", slow)
        .token()
        .unwrap_err();
    assert!(matches!(e, TokenError::ClockSkew(_)), "expired: {e}");
    assert!(e.to_string().contains("clock"), "{e}");
    // An unknown client.
    let e = auth(&hd, &h, "nobody-registered", "RS384", Arc::new(SystemClock))
        .token()
        .unwrap_err();
    assert!(
        matches!(e, TokenError::UnknownClient(_)),
        "unknown client: {e}"
    );
    stop(handle);
}

fn future(days: i64) -> String {
    let t = SystemClock.now() + chrono::Duration::days(days);
    format!("{}T15:00:00Z", t.format("%Y-%m-%d"))
}

fn appointment(id: Option<&str>, patient: &str, start: &str, status: &str) -> Value {
    let mut a = json!({
        "resourceType": "Appointment", "status": status, "start": start,
        "end": start.replace("T15:00", "T15:30"),
        "participant": [{"actor": {"reference": format!("Patient/{patient}")}, "status": "accepted"}]
    });
    if let Some(id) = id {
        a["id"] = json!(id);
    }
    a
}

fn intents(hd: &Herald, about: &str) -> Vec<(String, String)> {
    let mut c = hd.db.conn();
    let mut v: Vec<(String, String)> = herald::db::outbox::list(&mut c)
        .unwrap()
        .into_iter()
        .filter(|i| i.about == about)
        .map(|i| (i.kind, i.state))
        .collect();
    v.sort();
    v
}

/// Processes notifications until `done` holds (deliveries are asynchronous).
fn until(f: &Follower, what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    loop {
        f.process_notifications("test", 100).unwrap();
        if done() {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn subscriptions_polling_and_replays_plan_each_change_exactly_once() {
    let h = harness();
    let (hd, handle) = herald_for(&h, "herald-subs", |_| {});
    let f = follower(&hd);
    let made = f.subscribe().unwrap();
    assert_eq!(made.len(), 2, "{made:?}");
    assert!(made.iter().all(|(_, _, created)| *created));
    // Refreshing keeps the same Subscriptions.
    let again = f.subscribe().unwrap();
    assert_eq!(
        made.iter().map(|m| &m.1).collect::<Vec<_>>(),
        again.iter().map(|m| &m.1).collect::<Vec<_>>()
    );

    // The EHR's own users write the chart: a separate client with write scopes.
    admin(
        &h,
        "POST",
        "clients",
        json!({"client_id": "ehr-seeder", "jwks_uri": format!("{}/.well-known/jwks.json", hd.base), "scope": "system/*.cruds"}),
    );
    let seeder = auth_with(
        &hd,
        &h,
        "ehr-seeder",
        "ES384",
        Arc::new(SystemClock),
        "system/*.cruds",
    );
    let ehr = herald::fhir::client::FhirClient::new(
        herald::fhir::client::ClientConfig {
            base_url: h.fhir.clone(),
            max_retries: 1,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        },
        http(),
        Some(Arc::new(seeder)),
        Arc::new(SystemClock),
    );
    let patient = ehr
        .create(&json!({"resourceType": "Patient", "name": [{"given": ["Iris"], "family": "Test"}],
            "telecom": [{"system": "sms", "value": "+12125550123"}],
            "extension": [{"url": "http://vendor.example/fhir/StructureDefinition/vip", "valueBoolean": false}],
            "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}, "preferred": true}],
            "address": [{"state": "NY"}]}), None)
        .unwrap()
        .id
        .unwrap();
    // Booked → confirmation and reminders, once.
    let created = ehr
        .create(&appointment(None, &patient, &future(5), "booked"), None)
        .unwrap();
    let a1 = created.id.clone().unwrap();
    let about = format!("Appointment/{a1}");
    until(&f, "the booking's plan", || {
        intents(&hd, &about)
            .iter()
            .any(|(k, _)| k == "appointment-confirmation")
    });
    let booked = intents(&hd, &about);
    assert_eq!(
        booked
            .iter()
            .filter(|(k, _)| k == "appointment-confirmation")
            .count(),
        1
    );
    // Rescheduled → one notice; the old reminders withdrawn.
    let mut moved = created.body.clone().unwrap();
    moved["start"] = json!(future(6));
    moved["end"] = json!(future(6).replace("T15:00", "T15:30"));
    ehr.update(&moved, moved["meta"]["versionId"].as_str())
        .unwrap();
    until(&f, "the reschedule", || {
        intents(&hd, &about)
            .iter()
            .any(|(k, _)| k == "appointment-rescheduled")
    });
    // Cancelled → one notice; every pending reminder withdrawn.
    let current = ehr.read("Appointment", &a1).unwrap().unwrap();
    let mut cancelled = current.clone();
    cancelled["status"] = json!("cancelled");
    ehr.update(&cancelled, current["meta"]["versionId"].as_str())
        .unwrap();
    until(&f, "the cancellation", || {
        intents(&hd, &about)
            .iter()
            .any(|(k, _)| k == "appointment-cancelled")
    });
    let after = intents(&hd, &about);
    for kind in [
        "appointment-confirmation",
        "appointment-rescheduled",
        "appointment-cancelled",
    ] {
        assert_eq!(
            after.iter().filter(|(k, _)| k == kind).count(),
            1,
            "{kind} once: {after:?}"
        );
    }
    assert!(
        after
            .iter()
            .filter(|(k, _)| k.starts_with("reminder-"))
            .all(|(_, s)| s != "pending"),
        "no reminder left pending for a cancelled appointment: {after:?}"
    );
    // Conditional create: a retried create with If-None-Exist creates nothing new.
    let loc = json!({"resourceType": "Location", "name": "Clinic C",
        "identifier": [{"system": "urn:herald:test", "value": "loc-c"}]});
    let first = ehr
        .create(&loc, Some("identifier=urn:herald:test|loc-c"))
        .unwrap();
    let again = ehr
        .create(&loc, Some("identifier=urn:herald:test|loc-c"))
        .unwrap();
    assert!(!first.existed && again.existed, "{first:?} {again:?}");
    // A stale write is refused by the engine (If-Match), not lost silently.
    let stale = ehr.update(&cancelled, current["meta"]["versionId"].as_str());
    assert!(
        matches!(stale, Err(herald::fhir::client::FhirError::Conflict)),
        "{stale:?}"
    );

    // A MedicationRequest → refill reminders.
    let med = ehr
        .create(&json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "subject": {"reference": format!("Patient/{patient}")},
            "medicationCodeableConcept": {"text": "synthetic-med"},
            "authoredOn": SystemClock.now().format("%Y-%m-%d").to_string(),
            "dispenseRequest": {"numberOfRepeatsAllowed": 2,
                "expectedSupplyDuration": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}}), None)
        .unwrap()
        .id
        .unwrap();
    let med_about = format!("MedicationRequest/{med}");
    until(&f, "the refill plan", || {
        intents(&hd, &med_about)
            .iter()
            .any(|(k, _)| k == "medication-refill-reminder")
    });

    // Replayed and duplicated notifications change nothing.
    let snapshot: Vec<_> = herald::db::outbox::list(&mut hd.db.conn())
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect();
    let deliveries = admin(&h, "GET", "deliveries", Value::Null);
    let ok: Vec<i64> = deliveries
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| {
            d["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))
        })
        .map(|d| d["seq"].as_i64().unwrap())
        .collect();
    assert!(ok.len() >= 4, "deliveries: {deliveries}");
    for seq in &ok {
        admin(&h, "POST", "redeliver", json!({"seq": seq}));
        admin(&h, "POST", "redeliver", json!({"seq": seq}));
    }
    let mut r = f.process_notifications("test", 1000).unwrap();
    r.duplicates += 0;
    assert_eq!(r.planned, 0, "replays re-planned something: {r:?}");
    assert!(r.duplicates + r.stale >= ok.len(), "{r:?}");
    let now: Vec<_> = herald::db::outbox::list(&mut hd.db.conn())
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect();
    assert_eq!(snapshot, now, "replays changed the outbox");

    // Herald's receiver is down for a while: the poller recovers every missed change.
    stop(handle);
    let a2 = ehr
        .create(&appointment(None, &patient, &future(8), "booked"), None)
        .unwrap();
    let a2_id = a2.id.clone().unwrap();
    let mut a2_moved = a2.body.clone().unwrap();
    a2_moved["start"] = json!(future(9));
    a2_moved["end"] = json!(future(9).replace("T15:00", "T15:30"));
    ehr.update(&a2_moved, a2_moved["meta"]["versionId"].as_str())
        .unwrap();
    let a3 = ehr
        .create(&appointment(None, &patient, &future(10), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    admin(&h, "GET", "idle", Value::Null); // the harness has given up those deliveries
    assert!(
        admin(&h, "GET", "stats", Value::Null)["failures"]
            .as_u64()
            .unwrap()
            >= 3,
        "the outage lost notifications"
    );
    let listener = std::net::TcpListener::bind(hd.addr).unwrap();
    let handle = serve(hd.state.clone(), listener);
    let r = f.poll_once("test").unwrap().unwrap();
    assert!(r.planned >= 2, "{r:?}");
    for id in [&a2_id, &a3] {
        let got = intents(&hd, &format!("Appointment/{id}"));
        assert_eq!(
            got.iter()
                .filter(|(k, _)| k == "appointment-confirmation")
                .count(),
            1,
            "{id}: {got:?}"
        );
    }
    // A second pass finds nothing new.
    let r = f.poll_once("test").unwrap().unwrap();
    assert_eq!(r.planned, 0, "{r:?}");

    // Every FHIR call Herald made has its AuditEvent, and every AuditEvent is valid R4.
    let events = super::fhir_follow::events_of(&mut hd.db.conn());
    let rest: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["subtype"][0]["system"] == "http://hl7.org/fhir/restful-interaction"
                && e["agent"][1]["network"]["address"].as_str() == Some(h.fhir.as_str())
        })
        .collect();
    for code in ["create", "update", "read", "search-type"] {
        assert!(
            rest.iter().any(|e| e["subtype"][0]["code"] == code),
            "no {code} AuditEvent"
        );
    }
    // Match each request the engine logged from Herald's client to an AuditEvent.
    let requests = admin(&h, "GET", "requests?client=herald-subs", Value::Null);
    let requests = requests.as_array().unwrap();
    assert!(requests.len() >= 10, "{requests:?}");
    use base64::Engine as _;
    let decoded = |e: &Value| -> Option<String> {
        e["entity"]
            .as_array()?
            .iter()
            .find_map(|x| x["query"].as_str())
            .map(|q| {
                String::from_utf8(base64::engine::general_purpose::STANDARD.decode(q).unwrap())
                    .unwrap()
            })
    };
    let refs = |e: &Value| -> Vec<String> {
        e["entity"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["what"]["reference"].as_str().map(String::from))
            .collect()
    };
    for r in requests {
        let (method, path, query) = (
            r["method"].as_str().unwrap(),
            r["path"].as_str().unwrap(),
            r["query"].as_str().unwrap_or(""),
        );
        let parts: Vec<&str> = path.split('/').collect();
        let found = rest.iter().any(|e| {
            let code = e["subtype"][0]["code"].as_str().unwrap_or("");
            match (method, parts.as_slice()) {
                ("GET", [t]) => {
                    code == "search-type"
                        && decoded(e)
                            .is_some_and(|q| q.starts_with(&format!("{t}?")) && q.ends_with(query))
                }
                ("GET", [t, id]) => {
                    code == "read" && (refs(e).contains(&format!("{t}/{id}")) || *t == "Patient")
                }
                ("GET", [_, _, op]) => {
                    code == "operation" && decoded(e).is_some_and(|q| q.contains(op))
                }
                ("POST", [_]) => code == "create",
                ("PUT", [t, id]) => {
                    code == "update" && refs(e).iter().any(|x| x == &format!("{t}/{id}"))
                }
                _ => false,
            }
        });
        assert!(found, "no AuditEvent for {method} {path}?{query}");
    }
    let ndjson: String = events.iter().map(|e| format!("{e}\n")).collect();
    let out = super::demo::validate(&ndjson);
    assert!(
        out.status.success(),
        "AuditEvents valid R4: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    stop(handle);
}

fn seeder(hd: &Herald, h: &Harness) -> herald::fhir::client::FhirClient {
    seeder_with_auth(hd, h).0
}

fn seeder_with_auth(
    hd: &Herald,
    h: &Harness,
) -> (herald::fhir::client::FhirClient, Arc<BackendAuth>) {
    admin(
        h,
        "POST",
        "clients",
        json!({"client_id": "ehr-seeder", "jwks_uri": format!("{}/.well-known/jwks.json", hd.base), "scope": "system/*.cruds"}),
    );
    let a = Arc::new(auth_with(
        hd,
        h,
        "ehr-seeder",
        "RS384",
        Arc::new(SystemClock),
        "system/*.cruds",
    ));
    let c = herald::fhir::client::FhirClient::new(
        herald::fhir::client::ClientConfig {
            base_url: h.fhir.clone(),
            max_retries: 1,
            retry_base: Duration::from_millis(100),
            retry_max: Duration::from_secs(1),
        },
        http(),
        Some(Arc::clone(&a)),
        Arc::new(SystemClock),
    );
    (c, a)
}

#[test]
fn backport_topic_subscriptions_detect_gaps_and_recover_through_events() {
    // N5–N11: id-only payloads (fetched), handshake, event numbers, a gap
    // recovered through $events, and a heartbeat that reveals missed events.
    let h = harness();
    let (hd, handle) = herald_for(&h, "herald-bp", |s| {
        s.ehr.subscription = "backport".into();
        s.ehr.payload = "id-only".into();
        s.ehr.topic_appointment = Some("http://herald.test/SubscriptionTopic/appointment".into());
        s.ehr.topic_medication =
            Some("http://herald.test/SubscriptionTopic/medication-request".into());
        s.ehr.heartbeat_secs = 1;
    });
    let f = follower(&hd);
    f.subscribe().unwrap();
    let subs = herald::db::ehr::subscriptions(&mut hd.db.conn(), &hd.state.ring, &h.fhir).unwrap();
    until(&f, "the handshakes", || {
        herald::db::ehr::subscriptions(&mut hd.db.conn(), &hd.state.ring, &h.fhir)
            .unwrap()
            .iter()
            .all(|s| s.status == "active")
    });
    assert_eq!(subs.len(), 2);
    let appt_sub = subs
        .iter()
        .find(|s| s.resource_type == "Appointment")
        .unwrap()
        .id
        .clone();
    let last = || {
        herald::db::ehr::subscription(&mut hd.db.conn(), &hd.state.ring, &appt_sub)
            .unwrap()
            .unwrap()
            .last_event
    };

    let ehr = seeder(&hd, &h);
    let patient = ehr
        .create(&json!({"resourceType": "Patient", "telecom": [{"system": "sms", "value": "+12125550177"}],
            "address": [{"state": "NY"}]}), None)
        .unwrap()
        .id
        .unwrap();
    let b1 = ehr
        .create(&appointment(None, &patient, &future(5), "booked"), None)
        .unwrap();
    let b1_id = b1.id.clone().unwrap();
    until(&f, "event 1", || last() == 1);
    assert_eq!(
        intents(&hd, &format!("Appointment/{b1_id}"))
            .iter()
            .filter(|(k, _)| k == "appointment-confirmation")
            .count(),
        1
    );

    // Herald misses events 2 and 3; event 4 reveals the gap.
    admin(&h, "POST", "pause", Value::Null);
    let b2 = ehr
        .create(&appointment(None, &patient, &future(7), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    let mut moved = b1.body.clone().unwrap();
    moved["start"] = json!(future(6));
    moved["end"] = json!(future(6).replace("T15:00", "T15:30"));
    ehr.update(&moved, moved["meta"]["versionId"].as_str())
        .unwrap();
    admin(&h, "GET", "idle", Value::Null);
    admin(&h, "POST", "resume", Value::Null);
    let b3 = ehr
        .create(&appointment(None, &patient, &future(8), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    until(&f, "event 4 and the recovery", || last() == 4);
    for id in [&b2, &b3] {
        let got = intents(&hd, &format!("Appointment/{id}"));
        assert_eq!(
            got.iter()
                .filter(|(k, _)| k == "appointment-confirmation")
                .count(),
            1,
            "{id}: {got:?}"
        );
    }
    assert_eq!(
        intents(&hd, &format!("Appointment/{b1_id}"))
            .iter()
            .filter(|(k, _)| k == "appointment-rescheduled")
            .count(),
        1,
        "the missed reschedule was recovered once"
    );

    // Missed event 5, then a heartbeat says there have been 5.
    admin(&h, "POST", "pause", Value::Null);
    let b4 = ehr
        .create(&appointment(None, &patient, &future(9), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    admin(&h, "GET", "idle", Value::Null);
    admin(&h, "POST", "resume", Value::Null);
    admin(&h, "POST", "heartbeat-now", Value::Null);
    until(&f, "the heartbeat's catch-up", || last() == 5);
    assert_eq!(
        intents(&hd, &format!("Appointment/{b4}"))
            .iter()
            .filter(|(k, _)| k == "appointment-confirmation")
            .count(),
        1
    );
    // N11: silence past two heartbeat periods → Herald asks $status itself
    // and catches up on what it missed (here event 6, while deliveries were lost).
    admin(&h, "POST", "pause", Value::Null);
    let b5 = ehr
        .create(&appointment(None, &patient, &future(11), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    admin(&h, "GET", "idle", Value::Null);
    std::thread::sleep(Duration::from_millis(2500));
    f.process_notifications("test", 100).unwrap();
    assert_eq!(last(), 5, "nothing arrived while paused");
    f.check_liveness().unwrap();
    assert_eq!(
        last(),
        6,
        "$status revealed event 6 and $events recovered it"
    );
    assert_eq!(
        intents(&hd, &format!("Appointment/{b5}"))
            .iter()
            .filter(|(k, _)| k == "appointment-confirmation")
            .count(),
        1
    );
    admin(&h, "POST", "resume", Value::Null);
    // The gap and the heartbeat were recovered through $events (audited as operations).
    use base64::Engine as _;
    let ops: Vec<String> = super::fhir_follow::events_of(&mut hd.db.conn())
        .iter()
        .filter(|e| e["subtype"][0]["code"] == "operation")
        .filter_map(|e| {
            e["entity"]
                .as_array()?
                .iter()
                .find_map(|x| x["query"].as_str().map(String::from))
        })
        .map(|q| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(q).unwrap()).unwrap()
        })
        .collect();
    assert!(
        ops.iter()
            .filter(|q| q.contains("$events?eventsSinceNumber=2&eventsUntilNumber=3"))
            .count()
            == 1,
        "{ops:?}"
    );
    assert!(
        ops.iter()
            .any(|q| q.contains("$events?eventsSinceNumber=5&eventsUntilNumber=5")),
        "{ops:?}"
    );
    // Replaying every delivery changes nothing.
    let before: Vec<_> = herald::db::outbox::list(&mut hd.db.conn())
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect();
    for d in admin(&h, "GET", "deliveries", Value::Null)
        .as_array()
        .unwrap()
    {
        if d["status"].as_u64() == Some(200) {
            admin(&h, "POST", "redeliver", json!({"seq": d["seq"]}));
        }
    }
    f.process_notifications("test", 1000).unwrap();
    let after: Vec<_> = herald::db::outbox::list(&mut hd.db.conn())
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i.state))
        .collect();
    assert_eq!(before, after);
    assert_eq!(last(), 6);
    stop(handle);
}

fn at(patient: &str, location: &str, start: &str, status: &str) -> Value {
    let mut a = appointment(None, patient, start, status);
    a["participant"].as_array_mut().unwrap().push(
        json!({"actor": {"reference": format!("Location/{location}")}, "status": "accepted"}),
    );
    a
}

fn pending(hd: &Herald, id: &str) -> usize {
    intents(hd, &format!("Appointment/{id}"))
        .iter()
        .filter(|(_, s)| s == "pending")
        .count()
}

#[test]
fn oracle_location_sweeps_and_epic_roster_polling_find_new_moved_cancelled_and_vanished() {
    // V12 (Oracle Health: one location over a date window, no _lastUpdated)
    // and V15 (Epic: patient-scoped searches over Herald's roster).
    let h = harness();
    let (hd, handle) = herald_for(&h, "herald-poll", |s| s.ehr.subscription = "none".into());
    let (ehr, seed_auth) = seeder_with_auth(&hd, &h);
    let loc = |name: &str, tz: &str| {
        ehr.create(&json!({"resourceType": "Location", "name": name,
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/timezone", "valueCode": tz}]}), None)
            .unwrap().id.unwrap()
    };
    let (l1, l2) = (
        loc("Clinic A", "America/Chicago"),
        loc("Clinic B", "America/Denver"),
    );
    let p = ehr.create(&json!({"resourceType": "Patient", "telecom": [{"system": "sms", "value": "+13125550111"}]}), None).unwrap().id.unwrap();
    let mk = |l: &str, days: i64| {
        ehr.create(&at(&p, l, &future(days), "booked"), None)
            .unwrap()
    };
    let (w1, w2, w3, w4, w5) = (mk(&l1, 3), mk(&l1, 4), mk(&l2, 3), mk(&l1, 30), mk(&l1, 5));
    let id = |c: &herald::fhir::client::Created| c.id.clone().unwrap();
    ehr.create(&json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
        "subject": {"reference": format!("Patient/{p}")}, "medicationCodeableConcept": {"text": "synthetic"},
        "authoredOn": SystemClock.now().format("%Y-%m-%d").to_string(),
        "dispenseRequest": {"numberOfRepeatsAllowed": 1, "expectedSupplyDuration": {"value": 30, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}}}), None).unwrap();

    let mut s = (*hd.state.settings).clone();
    s.ehr.poll = "location-window".into();
    s.ehr.poll_locations = vec![format!("Location/{l1}")];
    s.ehr.poll_window_days = 14;
    let f = Follower::new(
        Arc::new(s),
        hd.state.pool.clone(),
        Arc::clone(&hd.state.ring),
        hd.state.clock.clone(),
    )
    .unwrap();
    let r = f.poll_once("o").unwrap().unwrap();
    assert!(
        pending(&hd, &id(&w1)) > 0 && pending(&hd, &id(&w2)) > 0 && pending(&hd, &id(&w5)) > 0,
        "{r:?}"
    );
    assert_eq!(
        intents(&hd, &format!("Appointment/{}", id(&w3))).len(),
        0,
        "another location is not swept"
    );
    assert_eq!(
        intents(&hd, &format!("Appointment/{}", id(&w4))).len(),
        0,
        "outside the window"
    );
    assert!(
        herald::db::outbox::list(&mut hd.db.conn())
            .unwrap()
            .iter()
            .any(|i| i.kind == "medication-refill-reminder"),
        "MedicationRequest by the roster of patients the sweep brought in: {r:?} {:?}",
        herald::db::outbox::list(&mut hd.db.conn())
            .unwrap()
            .iter()
            .map(|i| i.kind.clone())
            .collect::<Vec<_>>()
    );

    // Moved to another location, cancelled, and deleted.
    let mut moved = w1.body.clone().unwrap();
    moved["participant"][1]["actor"]["reference"] = json!(format!("Location/{l2}"));
    moved["start"] = json!(future(6));
    moved["end"] = json!(future(6).replace("T15:00", "T15:30"));
    ehr.update(&moved, moved["meta"]["versionId"].as_str())
        .unwrap();
    let mut cancelled = w2.body.clone().unwrap();
    cancelled["status"] = json!("cancelled");
    ehr.update(&cancelled, cancelled["meta"]["versionId"].as_str())
        .unwrap();
    let token = seed_auth.token().unwrap().access_token;
    let del = http()
        .delete(format!("{}/Appointment/{}", h.fhir, id(&w5)))
        .bearer_auth(token)
        .send()
        .unwrap();
    assert!(del.status().is_success(), "{}", del.status());
    let r = f.poll_once("o").unwrap().unwrap();
    assert_eq!(r.vanished, 1, "{r:?}");
    assert_eq!(
        pending(&hd, &id(&w5)),
        0,
        "a deleted appointment's reminders are withdrawn"
    );
    let w1_kinds = intents(&hd, &format!("Appointment/{}", id(&w1)));
    assert_eq!(
        w1_kinds
            .iter()
            .filter(|(k, _)| k == "appointment-rescheduled")
            .count(),
        1,
        "{w1_kinds:?}"
    );
    let w2_kinds = intents(&hd, &format!("Appointment/{}", id(&w2)));
    assert_eq!(
        w2_kinds
            .iter()
            .filter(|(k, _)| k == "appointment-cancelled")
            .count(),
        1,
        "{w2_kinds:?}"
    );
    let r = f.poll_once("o").unwrap().unwrap();
    assert_eq!(
        (r.planned, r.vanished),
        (0, 0),
        "a second sweep changes nothing: {r:?}"
    );

    // Epic: the roster of patients Herald serves, patient by patient.
    let q = ehr.create(&json!({"resourceType": "Patient", "telecom": [{"system": "sms", "value": "+13125550122"}]}), None).unwrap().id.unwrap();
    let e1 = ehr
        .create(&appointment(None, &q, &future(2), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    let mut s = (*hd.state.settings).clone();
    s.ehr.poll = "patient-roster".into();
    s.ehr.poll_rate_per_sec = 50;
    let epic = Follower::new(
        Arc::new(s),
        hd.state.pool.clone(),
        Arc::clone(&hd.state.ring),
        hd.state.clock.clone(),
    )
    .unwrap();
    epic.poll_once("e").unwrap().unwrap();
    assert_eq!(pending(&hd, &e1), 0, "not on the roster yet");
    assert!(epic.enroll(&q).unwrap());
    epic.poll_once("e").unwrap().unwrap();
    assert!(pending(&hd, &e1) > 0, "on the roster: found");
    stop(handle);
}

#[test]
fn herald_subscribe_and_poll_once_from_the_command_line() {
    // interface.md: `herald subscribe`, `herald poll --once`; an open HAPI-style server.
    let h = harness_with(&["--no-auth"]);
    let dir = tempfile::tempdir().unwrap();
    let herald = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HERALD_DATA_DIR", dir.path().join("data"))
            .env("HERALD_EHR__PRESET", "hapi")
            .env("HERALD_EHR__BASE_URL", &h.fhir)
            .env("HERALD_SERVER__PUBLIC_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, err) = herald(&["keys", "init"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("SMART signing key"), "{out}");
    let (code, out, err) = herald(&["subscribe"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert_eq!(out.matches("created Subscription/").count(), 2, "{out}");
    let (code, out, _) = herald(&["subscribe"]);
    assert_eq!(
        (code, out.matches("refreshed Subscription/").count()),
        (Some(0), 2),
        "{out}"
    );

    let post = |body: Value| -> Value {
        let rt = body["resourceType"].as_str().unwrap().to_string();
        http()
            .post(format!("{}/{rt}", h.fhir))
            .header("content-type", "application/fhir+json")
            .body(body.to_string())
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let p = post(
        json!({"resourceType": "Patient", "telecom": [{"system": "sms", "value": "+12125550166"}]}),
    );
    post(appointment(
        None,
        p["id"].as_str().unwrap(),
        &future(4),
        "booked",
    ));
    let (code, out, err) = herald(&["poll", "--once"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 planned"), "{out}");
    let (code, out, _) = herald(&["poll", "--once"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("0 planned") && out.contains("1 duplicates"),
        "{out}"
    );
    let (code, out, _) = herald(&["keys", "rotate", "--smart", "--alg", "ES384"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("ES384 key") && out.contains("signs from"),
        "{out}"
    );
    // Bulk without a group: one line, exit 1.
    let (code, _, err) = herald(&["poll", "--once", "--bulk"]);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("ehr.bulk_group") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn write_back_accepts_cancels_and_exchanges_consents_with_the_ehr() {
    // Issue 5 §2 and §4 against the engine: Herald's Consents written back
    // (conditional on Herald's identifier) and the EHR's imported; a patient's
    // confirmation becomes participant status accepted, a cancel reply a
    // cancellation (reply_cancel = cancel), each with If-Match.
    use herald::db::writes::{self, WriteKind};
    let h = harness();
    let (hd, handle) = herald_for(&h, "herald-wb", |s| {
        s.ehr.subscription = "none".into();
        s.ehr.writes = vec!["Consent".into(), "Appointment".into()];
        s.ehr.import_consents = true;
    });
    let f = follower(&hd);
    let ehr = seeder(&hd, &h);
    let p = ehr
        .create(&json!({"resourceType": "Patient", "telecom": [{"system": "sms", "value": "+12125550188"}]}), None)
        .unwrap()
        .id
        .unwrap();
    let mut a = appointment(None, &p, &future(5), "booked");
    a["participant"][0]["status"] = json!("needs-action");
    a["extension"] = json!([{"url": "http://vendor.example/fhir/StructureDefinition/room", "valueString": "4B"}]);
    let a1 = ehr.create(&a, None).unwrap().id.unwrap();
    let a2 = ehr
        .create(&appointment(None, &p, &future(6), "booked"), None)
        .unwrap()
        .id
        .unwrap();
    f.poll_once("wb").unwrap().unwrap();

    // A consent the patient gave on the page, and the replies' writes.
    let clock = SystemClock;
    herald::service::preferences::apply(
        &mut hd.db.conn(),
        &hd.state.ring,
        &clock,
        &p,
        &[herald::service::preferences::Change::Set(
            herald::domain::Channel::Sms,
            herald::domain::Purpose::Appointment,
            true,
        )],
        "127.0.0.1",
    )
    .unwrap();
    let now = clock.now();
    writes::enqueue(
        &mut hd.db.conn(),
        WriteKind::AppointmentAccept,
        &format!("Appointment/{a1}"),
        &p,
        None,
        now,
    )
    .unwrap();
    writes::enqueue(
        &mut hd.db.conn(),
        WriteKind::AppointmentCancel,
        &format!("Appointment/{a2}"),
        &p,
        None,
        now,
    )
    .unwrap();
    let n = f.process_writes("wb", 50).unwrap();
    assert_eq!(n, 3, "{:?}", writes::list(&mut hd.db.conn()).unwrap());

    let got = ehr.read("Appointment", &a1).unwrap().unwrap();
    assert_eq!(got["participant"][0]["status"], "accepted");
    assert_eq!(
        got["extension"][0]["valueString"], "4B",
        "vendor elements survive Herald's update"
    );
    let got = ehr.read("Appointment", &a2).unwrap().unwrap();
    assert_eq!(got["status"], "cancelled");
    assert_eq!(got["cancelationReason"]["coding"][0]["code"], "pat");
    let mut ours = Vec::new();
    ehr.search("Consent", &format!("patient=Patient/{p}"), |_, page| {
        ours.extend(page.resources);
        Ok::<(), herald::fhir::client::FhirError>(())
    })
    .unwrap();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0]["identifier"][0]["system"], "urn:herald:consent");
    // Nothing owed twice.
    assert_eq!(f.process_writes("wb", 50).unwrap(), 0);

    // The EHR's cancellation comes back as a change: a notice, reminders withdrawn.
    f.poll_once("wb").unwrap().unwrap();
    let kinds = intents(&hd, &format!("Appointment/{a2}"));
    assert_eq!(
        kinds
            .iter()
            .filter(|(k, _)| k == "appointment-cancelled")
            .count(),
        1,
        "{kinds:?}"
    );

    // A Consent recorded at the EHR (following Herald's profile) is imported;
    // Herald's own is not re-imported.
    let before = herald::db::consents::entries_for(&mut hd.db.conn(), &p)
        .unwrap()
        .len();
    let theirs = herald::fhir::consent::resource(&herald::fhir::consent::ConsentDraft {
        id: "front-desk-1",
        patient: &p,
        performer: Some("Practitioner/pr-9"),
        permit: false,
        channel: herald::domain::Channel::Email,
        purpose: Some(herald::domain::Purpose::Billing),
        address: Some("someone@example.org"),
        rule: "Recorded at the front desk",
        at: now,
    });
    let mut theirs: Value = serde_json::from_str(&theirs).unwrap();
    theirs.as_object_mut().unwrap().remove("id");
    ehr.create(&theirs, None).unwrap();
    f.poll_once("wb").unwrap().unwrap();
    let after = herald::db::consents::entries_for(&mut hd.db.conn(), &p)
        .unwrap()
        .len();
    assert_eq!(
        after,
        before + 1,
        "the EHR's Consent imported, Herald's own skipped"
    );

    // A preset that accepts no writes: owed writes are skipped, not sent.
    let mut s = (*hd.state.settings).clone();
    s.ehr.writes = vec![];
    let none = Follower::new(
        Arc::new(s),
        hd.state.pool.clone(),
        Arc::clone(&hd.state.ring),
        hd.state.clock.clone(),
    )
    .unwrap();
    writes::enqueue(
        &mut hd.db.conn(),
        WriteKind::AppointmentAccept,
        &format!("Appointment/{a2}"),
        &p,
        None,
        now,
    )
    .unwrap();
    assert_eq!(none.process_writes("wb2", 50).unwrap(), 0);
    assert!(
        writes::list(&mut hd.db.conn())
            .unwrap()
            .iter()
            .any(|(_, _, st)| st == "skipped")
    );
    stop(handle);
}
