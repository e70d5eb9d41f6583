//! Issue 4 acceptance: 10,000 messages planned by the real ingest path (a
//! booking each: the confirmation is due now) go through the outbox against
//! a provider that fails 30% of calls (15% HTTP 500, 15% created-then-timed-
//! out), while worker processes are killed with SIGKILL several times: every
//! message is delivered exactly once. Runs on PostgreSQL when
//! TEST_DATABASE_URL is set (two worker processes share it), else on SQLite.
//! `HERALD_CHAOS_N` changes the count (default 10,000).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use herald::db::outbox;
use herald::service::ingest;
use serde_json::json;

use crate::support::{self, TestDb};
use crate::twilio_double;

/// A US state where it is not 23:xx now, so the test's 00:00-23:59 sending
/// window never defers a message.
fn state_awake() -> (&'static str, chrono_tz::Tz) {
    let now = Utc::now();
    [
        ("NY", chrono_tz::America::New_York),
        ("HI", chrono_tz::Pacific::Honolulu),
    ]
    .into_iter()
    .find(|(_, tz)| now.with_timezone(tz).hour() < 23)
    .unwrap()
}

/// Plans `n` bookings through the real ingest path: each patient, their SMS
/// consent and a booked appointment ten days out, so a confirmation is due
/// now and three reminders wait for later.
fn seed(db: &TestDb, n: usize) -> herald::crypto::MasterKey {
    let (ring, master) = support::ready(db);
    let (state, tz) = state_awake();
    let clock = herald::clock::SystemClock;
    let parts = support::Parts::new();
    let unused = herald::providers::MemorySender::default();
    let ctx = parts.ctx(&ring, &clock, &unused);
    let start = (Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let mut c = db.conn();
    for i in 0..n {
        let id = format!("p{i}");
        let phone = format!("+1212{i:07}");
        ingest::patient(
            &mut c,
            &ctx,
            &json!({
                "resourceType": "Patient", "id": id,
                "name": [{"family": format!("Chaos{i}"), "given": ["Synthetic"]}],
                "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
                "address": [{"use": "home", "state": state}],
                "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-US"}]}, "preferred": true}]
            }), &[],
        )
        .unwrap();
        ingest::consent(
            &mut c,
            &ctx,
            &json!({
                "resourceType": "Consent", "id": format!("consent-{i}"), "status": "active",
                "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
                "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
                "patient": {"reference": format!("Patient/{id}")},
                "dateTime": (Utc::now() - chrono::Duration::days(1)).to_rfc3339(),
                "provision": {"type": "permit", "extension": [
                    {"url": herald::fhir::EXT_CHANNEL, "valueCode": "sms"},
                    {"url": herald::fhir::EXT_ADDRESS, "valueString": phone}
                ]}
            }),
            "clinician",
        )
        .unwrap();
        let planned = ingest::appointment(
            &mut c,
            &ctx,
            &json!({
                "resourceType": "Appointment", "id": format!("a{i}"), "meta": {"versionId": "1"},
                "status": "booked", "start": start,
                "participant": [
                    {"actor": {"reference": format!("Patient/{id}")}, "status": "accepted"},
                    {"actor": {"reference": "Practitioner/pr-1", "display": "Dr. Chaos Test"}, "status": "accepted"}
                ]
            }),
            &|_| Some(tz), &[],
        )
        .unwrap();
        assert_eq!(
            planned,
            ingest::Ingested::Planned {
                enqueued: 4,
                withdrawn: 0
            }
        );
    }
    master
}

fn worker(db: &TestDb, master: &str, provider: &str, data: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("worker")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HERALD_DATA_DIR", data)
        .env("HERALD_DATABASE__URL", db.url.expose())
        .env("HERALD_MASTER_KEY", master)
        .env("HERALD_SMS__PROVIDER", "twilio")
        // Twilio's callbacks need Herald's public address (F8b).
        .env("HERALD_SERVER__PUBLIC_URL", "https://herald.example")
        .env("HERALD_SMS__BASE_URL", provider)
        .env("HERALD_SMS__ACCOUNT_SID", twilio_double::SID)
        .env("HERALD_SMS__AUTH_TOKEN", twilio_double::TOKEN)
        .env("HERALD_SMS__FROM", "+18005550199")
        .env("HERALD_SMS__TIMEOUT_MS", "400")
        .env("HERALD_OUTBOX__WORKERS", "8")
        .env("HERALD_OUTBOX__BATCH", "5")
        .env("HERALD_OUTBOX__LEASE_SECS", "2")
        .env("HERALD_OUTBOX__RETRY_BASE_MS", "100")
        .env("HERALD_OUTBOX__RETRY_MAX_SECS", "2")
        .env("HERALD_OUTBOX__MAX_ATTEMPTS", "100")
        .env("HERALD_OUTBOX__POLL_MS", "50")
        .env("HERALD_MESSAGING__QUIET_END", "00:00")
        .env("HERALD_MESSAGING__QUIET_START", "23:59")
        .env("HERALD_MESSAGING__CAP_PER_DAY", "0")
        .env("HERALD_MESSAGING__CAP_PER_WEEK", "0")
        .env("HERALD_LOG__LEVEL", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn states(db: &TestDb) -> HashMap<String, usize> {
    let mut c = db.conn();
    let mut m = HashMap::new();
    for i in outbox::list(&mut c).unwrap() {
        *m.entry(i.state).or_default() += 1;
    }
    m
}

#[test]
fn ten_thousand_messages_survive_sigkill_and_a_flaky_provider_exactly_once() {
    let n: usize = std::env::var("HERALD_CHAOS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let db = support::postgres().unwrap_or_else(support::sqlite);
    let started = Instant::now();
    let master = seed(&db, n).to_base64();
    eprintln!(
        "[{}] seeded {n} intents in {:?}",
        db.backend,
        started.elapsed()
    );
    let double = twilio_double::start(15, 15, Duration::from_millis(1500));
    let data = tempfile::tempdir().unwrap();
    let mut procs: Vec<Child> = (0..2)
        .map(|_| worker(&db, &master, &double.base_url, data.path()))
        .collect();
    let run = Instant::now();
    let mut kills = 0;
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let st = states(&db);
        let sent = st.get("sent").copied().unwrap_or(0);
        eprintln!("[{:>5.1}s] {st:?}", run.elapsed().as_secs_f64());
        if sent == n || run.elapsed() > Duration::from_secs(900) {
            break;
        }
        for p in &mut procs {
            if let Some(status) = p.try_wait().unwrap() {
                panic!("a worker process exited by itself: {status}");
            }
        }
        // Kill a worker process mid-run (SIGKILL: no cleanup), then start another.
        if kills < 6 {
            let victim = kills % procs.len();
            procs[victim].kill().unwrap();
            procs[victim].wait().unwrap();
            procs[victim] = worker(&db, &master, &double.base_url, data.path());
            kills += 1;
        }
    }
    for p in &mut procs {
        let _ = p.kill();
        let _ = p.wait();
    }
    let elapsed = run.elapsed();
    let intents = outbox::list(&mut db.conn()).unwrap();
    let msgs = double.state.messages.lock().unwrap().clone();
    eprintln!(
        "[{}] {n} messages, {kills} SIGKILLs, {} provider requests, {:.0} msgs/s overall",
        db.backend,
        double
            .state
            .requests
            .load(std::sync::atomic::Ordering::SeqCst),
        n as f64 / elapsed.as_secs_f64()
    );
    assert!(kills >= 3, "the run ended before enough kills ({kills})");
    let (confirmations, reminders): (Vec<_>, Vec<_>) = intents
        .iter()
        .partition(|i| i.kind == "appointment-confirmation");
    assert_eq!(confirmations.len(), n);
    assert!(
        reminders.iter().all(|i| i.state == "pending"),
        "a reminder left before its time"
    );
    let not_sent: Vec<_> = confirmations.iter().filter(|i| i.state != "sent").collect();
    assert!(
        not_sent.is_empty(),
        "{} not sent, e.g. {:?}",
        not_sent.len(),
        not_sent.first()
    );
    // Exactly once: every number got one message, and it is the one recorded.
    let mut by_to: HashMap<&str, Vec<&twilio_double::Created>> = HashMap::new();
    for m in &msgs {
        by_to.entry(m.to.as_str()).or_default().push(m);
    }
    let dupes: Vec<_> = by_to.iter().filter(|(_, v)| v.len() > 1).collect();
    assert!(
        dupes.is_empty(),
        "{} numbers got duplicates, e.g. {:?}",
        dupes.len(),
        dupes.first()
    );
    assert_eq!(msgs.len(), n, "delivered count");
    let sids: std::collections::HashSet<&str> = msgs.iter().map(|m| m.sid.as_str()).collect();
    for i in &confirmations {
        assert!(
            sids.contains(i.provider_ref.as_deref().unwrap_or_default()),
            "intent {} records a provider id the provider never issued",
            i.id
        );
    }
    // Validity was set (W5) and bounded by Twilio's maximum.
    assert!(msgs.iter().all(|m| {
        m.validity
            .as_deref()
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| (1..=36_000).contains(&v))
    }));
}
