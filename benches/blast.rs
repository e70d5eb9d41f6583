//! Reminder blast: Herald's whole send path for N due reminders, K worker
//! threads, against a loopback Twilio-shaped mock provider, next to a bare
//! loop of N form POSTs from K threads to the same mock. See
//! `benches/README.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use chrono::{DateTime, Timelike as _, Utc};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use diesel::connection::SimpleConnection as _;

use herald::clock::SystemClock;
use herald::config::{DbUrl, MessagingSettings, OutboxSettings};
use herald::crypto::{KeyRing, MasterKey, new_data_key, normalize_phone};
use herald::db::{self, Pool, consents, outbox, patients, resources};
use herald::domain::consent::Decision;
use herald::domain::facts::PatientFacts;
use herald::domain::phi::{Email, PersonName, Phone};
use herald::domain::{Channel, Purpose};
use herald::providers::twilio::{Twilio, TwilioConfig, TwilioSms};
use herald::service::Ctx;
use herald::service::send::{self, SendOutcome};

/// Messages per blast.
const N: usize = 2_000;
/// Sending threads on both sides (Herald's outbox workers); `HERALD_BLAST_K`
/// overrides it, to see how the send path scales with workers.
fn k() -> usize {
    std::env::var("HERALD_BLAST_K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}
/// Mock provider workers.
const MOCK_WORKERS: usize = 2;
const ACCOUNT: &str = "AC00000000000000000000000000000001";
const TOKEN: &str = "bench-auth-token";
const FROM: &str = "+18005550199";

// ------------------------------------------------------------ Mock provider

/// A hello-style Twilio stand-in: reads the body, answers 201 with a small
/// JSON message resource and a unique sid. No auth check, no parsing.
struct Mock {
    base_url: String,
    calls: Arc<AtomicU64>,
    handle: actix_web::dev::ServerHandle,
}

async fn create(_body: web::Bytes, calls: web::Data<Arc<AtomicU64>>) -> HttpResponse {
    let n = calls.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Created()
        .content_type("application/json")
        .body(format!(r#"{{"sid":"SM{n:032x}","status":"queued"}}"#))
}

fn start_mock() -> Mock {
    let calls = Arc::new(AtomicU64::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = Arc::clone(&calls);
    std::thread::spawn(move || {
        actix_rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                App::new()
                    .app_data(web::Data::new(Arc::clone(&shared)))
                    .route(
                        "/2010-04-01/Accounts/{sid}/Messages.json",
                        web::post().to(create),
                    )
            })
            .workers(MOCK_WORKERS)
            .listen(listener)
            .unwrap()
            .run();
            tx.send(server.handle()).unwrap();
            server.await.unwrap();
        });
    });
    let handle = rx.recv().unwrap();
    Mock {
        base_url,
        calls,
        handle,
    }
}

impl Mock {
    fn stop(self) {
        actix_rt::System::new().block_on(self.handle.stop(true));
    }
}

// ------------------------------------------------------------ Bare baseline

/// A Twilio-shaped SMS body of about 140 characters.
const BODY: &str = "Herald Demo Health: reminder, your appointment with Dr. Priya Raman is in 24 hours. Reply C to confirm, R to reschedule, STOP to opt out.";

/// N form POSTs from K threads through one shared blocking client (as
/// Herald's workers share one `Twilio` client); each reads the reply.
fn bare_post_loop(http: &reqwest::blocking::Client, url: &str) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..k() {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= N {
                        break;
                    }
                    let to = format!("+1212{:07}", i % 10_000_000);
                    let resp = http
                        .post(url)
                        .basic_auth(ACCOUNT, Some(TOKEN))
                        .form(&[("To", to.as_str()), ("From", FROM), ("Body", BODY)])
                        .send()
                        .unwrap();
                    assert_eq!(resp.status().as_u16(), 201);
                    let body = resp.text().unwrap();
                    assert!(body.starts_with(r#"{"sid":"SM"#));
                }
            });
        }
    });
}

// ---------------------------------------------------------------- Herald side

/// A fixed-offset zone where it is about noon now, so quiet hours never
/// defer anything (as tests/outbox_chaos.rs does).
fn daytime_zone() -> chrono_tz::Tz {
    let h = i64::from(Utc::now().hour());
    let offset = (12 - h).clamp(-12, 14);
    let name = match offset {
        0 => "Etc/GMT".to_string(),
        o if o > 0 => format!("Etc/GMT-{o}"),
        o => format!("Etc/GMT+{}", -o),
    };
    name.parse().unwrap()
}

fn appointment(i: usize, start: DateTime<Utc>) -> String {
    serde_json::json!({
        "resourceType": "Appointment", "id": format!("a{i}"), "meta": {"versionId": "1"},
        "status": "booked",
        "start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "participant": [
            {"actor": {"reference": format!("Patient/p{i}"), "display": format!("Blast Patient {i}")}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/prac-1", "display": "Dr. Priya Raman"}, "status": "accepted"},
            {"actor": {"reference": "Location/loc-1", "display": "Downtown Clinic"}, "status": "accepted"}
        ]
    })
    .to_string()
}

fn sqlite_pool(path: &Path, size: u32) -> Pool {
    let url = DbUrl::new(format!("sqlite://{}", path.display()));
    db::pool(&url, size, Duration::from_secs(30)).unwrap()
}

/// Seeds a template database once: N patients with a phone and an SMS
/// consent, their appointment (tomorrow, as Herald tracks it) and a due
/// 24-hour reminder each. Each blast runs on a fresh copy of the file.
fn seed_template(path: &Path, master: &MasterKey) -> KeyRing {
    let pool = sqlite_pool(path, 1);
    let mut c = pool.get().unwrap();
    db::migrate(&mut c).unwrap();
    let now = Utc::now();
    db::keys::insert(&mut c, &new_data_key(master, 1).unwrap(), now).unwrap();
    let ring = KeyRing::open(master, &db::keys::list(&mut c).unwrap()).unwrap();
    let zone = daytime_zone();
    let start = now + chrono::Duration::hours(24);
    for chunk in (0..N).collect::<Vec<_>>().chunks(500) {
        db::write_tx(&mut c, |c| {
            for &i in chunk {
                let id = format!("p{i}");
                let phone = format!("+1212{i:07}");
                patients::upsert(
                    c,
                    &ring,
                    &PatientFacts {
                        id: id.clone(),
                        name: PersonName::new(format!("Blast Patient {i}")),
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
                        source: "bench".into(),
                        recorded_at: now - chrono::Duration::days(1),
                        stated_at: None,
                        future_dated: false,
                        part_of: None,
                        categories: Vec::new(),
                        valid_until: None,
                        resource: "{}".into(),
                    },
                )?;
                resources::put(
                    c,
                    &ring,
                    "Appointment",
                    &format!("a{i}"),
                    Some("1"),
                    None,
                    "booked",
                    &id,
                    Some(zone.name()),
                    &appointment(i, start),
                    now,
                )?;
                outbox::enqueue(
                    c,
                    &outbox::NewIntent {
                        id: uuid::Uuid::new_v4().to_string(),
                        dedupe_key: format!("Appointment/a{i}/reminder-24h"),
                        patient_id: id,
                        kind: "reminder-24h".into(),
                        purpose: "appointment".into(),
                        about: format!("Appointment/a{i}"),
                        due_at: now - chrono::Duration::minutes(1),
                        expires_at: Some(start),
                    },
                    now,
                )?;
            }
            Ok::<_, db::DbError>(())
        })
        .unwrap();
    }
    // Everything into the main file, so a file copy is a complete database.
    c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);").unwrap();
    ring
}

/// What every blast shares.
struct Herald {
    template: PathBuf,
    ring: KeyRing,
    messaging: MessagingSettings,
    outbox: OutboxSettings,
    renderer: herald::render::Renderer,
    guard: herald::guard::Guard,
    sender: TwilioSms,
}

impl Herald {
    /// A fresh copy of the seeded database and a pool of K connections.
    fn fresh(&self) -> (tempfile::TempDir, Pool) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("herald.db");
        std::fs::copy(&self.template, &path).unwrap();
        let pool = sqlite_pool(&path, u32::try_from(k()).unwrap());
        // Open all K connections before the clock starts.
        let conns: Vec<_> = (0..k()).map(|_| pool.get().unwrap()).collect();
        drop(conns);
        (dir, pool)
    }

    /// K threads, each with its own pooled connection, run `send::run_due`
    /// until nothing is due; returns how many were sent.
    fn blast(&self, pool: &Pool) -> usize {
        let clock = SystemClock;
        let sent = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for w in 0..k() {
                let (pool, clock, sent) = (pool, &clock, &sent);
                s.spawn(move || {
                    let ctx = Ctx {
                        ring: &self.ring,
                        clock,
                        messaging: &self.messaging,
                        renderer: &self.renderer,
                        ehr: "https://ehr.example.org/fhir",
                        outbox: &self.outbox,
                        sender: &self.sender,
                        status_callback: None,
                        guard: &self.guard,
                    };
                    let mut conn = pool.get().unwrap();
                    let reports =
                        send::run_due(&mut conn, &ctx, &self.sender, &format!("bench/w{w}"))
                            .unwrap();
                    let other = reports
                        .iter()
                        .find(|r| !matches!(r.outcome, SendOutcome::Sent { .. }));
                    assert!(other.is_none(), "not sent: {other:?}");
                    sent.fetch_add(reports.len(), Ordering::Relaxed);
                });
            }
        });
        sent.into_inner()
    }
}

// ---------------------------------------------------------------- Benchmarks

fn blast(c: &mut Criterion) {
    let mock = start_mock();
    let url = format!(
        "{}/2010-04-01/Accounts/{ACCOUNT}/Messages.json",
        mock.base_url
    );

    let seed_dir = tempfile::tempdir().unwrap();
    let template = seed_dir.path().join("template.db");
    let master = MasterKey::generate().unwrap();
    let t = Instant::now();
    let ring = seed_template(&template, &master);
    eprintln!(
        "seeded {N} patients, consents, appointments and reminders in {:?}",
        t.elapsed()
    );

    let herald = Herald {
        template,
        ring,
        messaging: MessagingSettings {
            cap_per_day: 0,
            cap_per_week: 0,
            quiet_end: "00:00".into(),
            quiet_start: "23:59".into(),
            state_windows: Vec::new(),
            ..MessagingSettings::default()
        },
        outbox: OutboxSettings {
            workers: u32::try_from(k()).unwrap(),
            ..OutboxSettings::default()
        },
        renderer: herald::render::Renderer::embedded().unwrap(),
        guard: herald::guard::Guard::new(),
        sender: TwilioSms(
            Twilio::new(TwilioConfig {
                base_url: mock.base_url.clone(),
                account_sid: ACCOUNT.into(),
                auth_token: TOKEN.into(),
                from: FROM.into(),
                timeout: Duration::from_secs(10),
            })
            .unwrap(),
        ),
    };

    // Sanity, untimed: one blast sends all N, once each, through the mock.
    {
        let (_dir, pool) = herald.fresh();
        let before = mock.calls.load(Ordering::Relaxed);
        let t = Instant::now();
        assert_eq!(herald.blast(&pool), N);
        eprintln!("sanity blast: {N} sent in {:?}", t.elapsed());
        assert_eq!(
            mock.calls.load(Ordering::Relaxed) - before,
            u64::try_from(N).unwrap()
        );
        let intents = outbox::list(&mut pool.get().unwrap()).unwrap();
        assert!(intents.iter().all(|i| i.state == "sent"));
    }

    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let mut group = c.benchmark_group("blast");
    group.sampling_mode(SamplingMode::Flat);
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::try_from(N).unwrap()));

    // Bare: N Twilio-shaped form POSTs from K threads, nothing else.
    group.bench_function("bare_http_post_loop", |b| {
        b.iter(|| bare_post_loop(&http, &url))
    });

    // Herald: claim, consent, policy, render, guard, encryption, provider
    // call, outcome and audit records, for N reminders; each blast on a fresh
    // copy of the seeded database (the copy is not timed).
    group.bench_function("reminder_blast", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (dir, pool) = herald.fresh();
                let t = Instant::now();
                let sent = herald.blast(&pool);
                total += t.elapsed();
                assert_eq!(sent, N);
                drop(pool);
                drop(dir);
            }
            total
        })
    });
    group.finish();
    mock.stop();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = blast
}
criterion_main!(benches);
