//! Issue 4 acceptance: 10,000 planned messages go through the outbox against
//! a provider that fails 30% of calls (15% HTTP 500, 15% created-then-timed-
//! out), while worker processes are killed with SIGKILL several times: every
//! message is delivered exactly once. Runs on PostgreSQL when
//! TEST_DATABASE_URL is set (two worker processes share it), else on SQLite.
//! `HERALD_CHAOS_N` changes the count (default 10,000).

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{Timelike, Utc};
use herald::crypto::normalize_phone;
use herald::db::{self, consents, outbox, patients};
use herald::domain::consent::Decision;
use herald::domain::facts::PatientFacts;
use herald::domain::phi::{Email, PersonName, Phone};
use herald::domain::{Channel, Purpose};

use crate::support::{self, TestDb};
use crate::twilio_double;

/// A fixed-offset zone where it is the middle of the day now, so quiet hours
/// never interfere with the run.
fn daytime_zone() -> chrono_tz::Tz {
    let h = i64::from(Utc::now().hour());
    // Etc/GMT-N is UTC+N. Aim for 12:00 local.
    let offset = (12 - h).clamp(-12, 14);
    let name = match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    name.parse().unwrap()
}

fn seed(db: &TestDb, n: usize) -> herald::crypto::MasterKey {
    let (ring, master) = support::ready(db);
    let zone = daytime_zone();
    let now = Utc::now();
    let mut c = db.conn();
    for chunk in (0..n).collect::<Vec<_>>().chunks(500) {
        db::write_tx(&mut c, |c| {
            for &i in chunk {
                let id = format!("p{i}");
                let phone = format!("+1212{i:07}");
                patients::upsert(
                    c,
                    &ring,
                    &PatientFacts {
                        id: id.clone(),
                        name: PersonName::new(format!("Chaos Patient {i}")),
                        given: None,
                        phone: Some(Phone::new(phone.clone())),
                        email: None::<Email>,
                        language: Some("en-US".into()),
                        tz: Some(zone),
                        region: None,
                    },
                    now,
                )?;
                consents::insert(
                    c,
                    &ring,
                    &consents::NewConsent {
                        id: format!("consent-{i}"),
                        patient_id: id.clone(),
                        channel: Channel::Sms,
                        purpose: Some(Purpose::Appointment),
                        address_index: ring.blind_index("phone", &normalize_phone(&phone)),
                        decision: Decision::Permit,
                        source: "test".into(),
                        recorded_at: now - chrono::Duration::days(1),
                        valid_until: None,
                        resource: "{}".into(),
                    },
                )?;
                outbox::enqueue(
                    c,
                    &outbox::NewIntent {
                        id: uuid::Uuid::new_v4().to_string(),
                        dedupe_key: format!("chaos/{i}"),
                        patient_id: id,
                        kind: "appointment-confirmation".into(),
                        purpose: "appointment".into(),
                        about: format!("Appointment/a{i}"),
                        due_at: now - chrono::Duration::minutes(1),
                        expires_at: None,
                    },
                    now,
                )?;
            }
            Ok::<_, db::DbError>(())
        })
        .unwrap();
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
    let not_sent: Vec<_> = intents.iter().filter(|i| i.state != "sent").collect();
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
    for i in &intents {
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
