//! Auditor search at 1,000,000 events (performance.md goal 3): a patient +
//! 30-day search through Herald, beside the bare indexed SQL query, on the
//! same database in the same run. See `benches/README.md`.
//!
//! ```sh
//! cargo bench --bench audit_search -- --backend sqlite
//! cargo bench --bench audit_search -- --backend postgres --pg postgres://herald:herald@127.0.0.1:54341/herald_bench
//! ```
//!
//! Four paths, interleaved per query (rotating the order), same random
//! patient and window for each:
//! - `bare`: the indexed query written by hand on a native diesel connection
//!   (`SELECT * FROM audit_events WHERE patient_ref = ? AND recorded >= ? AND
//!   recorded < ? ORDER BY recorded, seq LIMIT 51`), rows loaded;
//! - `search`: Herald's query layer, what the handler calls: `audit::search::parse`
//!   of the FHIR parameters and `audit::search::run` on a pooled connection;
//! - `handler`: `GET /fhir/AuditEvent?patient=…&date=ge…&date=lt…` with an
//!   auditor's bearer token, through the actix app in process (server side, no
//!   socket): the token check, the parse, the search, the AuditEvent the read
//!   writes (committed) and the Bundle;
//! - `search+append`: the handler's database work without HTTP — the search,
//!   then the read's AuditEvent committed — to show where the time goes.
//!
//! The log is built once through the real append path and kept (the SQLite
//! file under the target directory, the PostgreSQL database as given); a run
//! reuses it when it already holds the events asked for. Every SQL statement
//! the timed paths issue is recorded through diesel's instrumentation (off
//! while timing) and printed, so the report shows that nothing counts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::indexing_slicing,
    clippy::as_conversions,
    clippy::panic
)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::test;
use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection as _};
use diesel::prelude::*;

use herald::audit;
use herald::config::{DbUrl, Settings};
use herald::db::audit_store::{self, AuditRow};
use herald::db::schema::audit_events as a;
use herald::domain::audit::{Activity, Actor, AuditRecord, Outcome, RestInteraction};
use herald::domain::{Channel, Purpose};

const PATIENTS: u64 = 10_000;
const DAYS: i64 = 365;
const WINDOW_DAYS: i64 = 30;

// ------------------------------------------------------------- SQL recorder

static RECORDING: AtomicBool = AtomicBool::new(false);
static STATEMENTS: Mutex<BTreeMap<String, u64>> = Mutex::new(BTreeMap::new());

/// Counts each distinct SQL text while RECORDING is on (off while timing).
struct Recorder;

impl Instrumentation for Recorder {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if !RECORDING.load(Ordering::Relaxed) {
            return;
        }
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            let sql = query.to_string();
            let sql = sql.split(" -- binds:").next().unwrap_or(&sql).to_string();
            *STATEMENTS.lock().unwrap().entry(sql).or_default() += 1;
        }
    }
}

fn recorder() -> Option<Box<dyn Instrumentation>> {
    Some(Box::new(Recorder))
}

// ------------------------------------------------------------------ the log

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0).unwrap()
}

/// Event i of n: spread evenly over a year ending well before today (the
/// searches' own AuditEvents, dated now, fall outside every window), 10,000 patients (about 90 events
/// each; one event in ten names none), the kinds Herald writes.
fn record(i: u64, n: u64, rng: &mut Rng) -> AuditRecord {
    let span = DAYS * 86_400_000_000;
    let at = (i as i64) * (span / n as i64) + rng.below(1_000_000) as i64;
    let patient = (rng.below(10) != 0).then(|| format!("pat-{}", rng.below(PATIENTS)));
    let activity = match rng.below(4) {
        0 => Activity::Disclosure {
            intent_id: uuid::Uuid::new_v4().to_string(),
            channel: Channel::Sms,
            purpose: Purpose::Appointment,
            about: format!("Appointment/appt-{}", rng.below(200_000)),
        },
        1 => Activity::ConsentDecision {
            intent_id: uuid::Uuid::new_v4().to_string(),
            channel: Channel::Sms,
            purpose: Purpose::Appointment,
            permit: true,
            consent_id: Some(format!("consent-{}", rng.below(20_000))),
        },
        2 => Activity::EhrRest {
            interaction: RestInteraction::Read,
            resource_type: "Appointment".into(),
            id: Some(format!("appt-{}", rng.below(200_000))),
            query: None,
            token_jti: Some(uuid::Uuid::new_v4().to_string()),
        },
        _ => Activity::RecordQuery {
            resource_type: "Communication".into(),
            query: "patient=x&_count=20".into(),
        },
    };
    AuditRecord {
        recorded: start() + chrono::Duration::microseconds(at),
        activity,
        actor: if rng.below(3) == 0 {
            Actor::Staff(format!("user-{}", rng.below(300)))
        } else {
            Actor::System
        },
        outcome: Outcome::Success,
        outcome_desc: None,
        patient_id: patient,
        request_id: Some(uuid::Uuid::new_v4().to_string()),
        ehr: Some("https://ehr.example.org/fhir".into()),
    }
}

fn build(pool: &herald::db::Pool, n: u64) {
    let mut c = pool.get().unwrap();
    let (have, _) = audit_store::head(&mut c).unwrap();
    if have as u64 >= n {
        eprintln!("log: reusing {have} events");
        return;
    }
    assert_eq!(have, 0, "a partly built log: remove it and run again");
    let t = Instant::now();
    let mut rng = Rng(0x5EED);
    let mut i = 0;
    while i < n {
        let batch: Vec<AuditRecord> = (i..(i + 1000).min(n))
            .map(|k| record(k, n, &mut rng))
            .collect();
        herald::db::write_tx(&mut c, |c| audit::append(c, &batch)).unwrap();
        i += 1000;
        if i % 100_000 == 0 {
            eprintln!("log: {i} events appended ({:.0?})", t.elapsed());
        }
    }
    eprintln!("log: built {n} events in {:.1?}", t.elapsed());
}

// ---------------------------------------------------------------- the paths

enum Native {
    Sqlite(SqliteConnection),
    Pg(PgConnection),
}

fn bare(conn: &mut Native, patient: &str, lo: NaiveDateTime, hi: NaiveDateTime) -> usize {
    macro_rules! q {
        ($c:expr) => {
            a::table
                .filter(a::patient_ref.eq(patient))
                .filter(a::recorded.ge(lo))
                .filter(a::recorded.lt(hi))
                .order((a::recorded.asc(), a::seq.asc()))
                .limit(51)
                .load::<AuditRow>($c)
                .unwrap()
                .len()
        };
    }
    match conn {
        Native::Sqlite(c) => q!(c),
        Native::Pg(c) => q!(c),
    }
}

fn pairs(patient: &str, lo: NaiveDateTime, hi: NaiveDateTime) -> Vec<(String, String)> {
    let iso = |t: NaiveDateTime| t.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    vec![
        ("patient".into(), patient.into()),
        ("date".into(), format!("ge{}", iso(lo))),
        ("date".into(), format!("lt{}", iso(hi))),
    ]
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

struct Args {
    backend: String,
    pg: String,
    events: u64,
    queries: usize,
    rounds: usize,
}

fn args() -> Args {
    let mut a = Args {
        backend: "sqlite".into(),
        pg: std::env::var("HERALD_BENCH_PG")
            .unwrap_or_else(|_| "postgres://herald:herald@127.0.0.1:54341/herald_bench".into()),
        events: 1_000_000,
        queries: 10_000,
        rounds: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--backend" => a.backend = it.next().unwrap(),
            "--pg" => a.pg = it.next().unwrap(),
            "--events" => a.events = it.next().unwrap().parse().unwrap(),
            "--queries" => a.queries = it.next().unwrap().parse().unwrap(),
            "--rounds" => a.rounds = it.next().unwrap().parse().unwrap(),
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

fn main() {
    let args = args();
    diesel::connection::set_default_instrumentation(recorder).unwrap();
    let (url, mut native) = match args.backend.as_str() {
        "sqlite" => {
            let dir = std::path::PathBuf::from(
                std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()),
            )
            .join("audit-search-bench");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("audit-{}.db", args.events));
            let url = DbUrl::new(format!("sqlite://{}", path.display()));
            let pool = herald::db::pool(&url, 4, Duration::from_secs(30)).unwrap();
            herald::db::migrate(&mut pool.get().unwrap()).unwrap();
            drop(pool);
            let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
            c.batch_execute(
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
            )
            .unwrap();
            (url, Native::Sqlite(c))
        }
        "postgres" => {
            let url = DbUrl::new(args.pg.clone());
            let c = PgConnection::establish(&args.pg).unwrap();
            (url, Native::Pg(c))
        }
        other => panic!("--backend sqlite|postgres, not {other}"),
    };
    let pool = herald::db::pool(&url, 4, Duration::from_secs(30)).unwrap();
    herald::db::migrate(&mut pool.get().unwrap()).unwrap();
    build(&pool, args.events);
    if let Some(path) = url.expose().strip_prefix("sqlite://") {
        // Warm: this machine's kernel reclaims idle page cache (DAMON), so read
        // the file once, as performance.md's c4 measured a warm cache.
        let t = Instant::now();
        let n = std::io::copy(
            &mut std::fs::File::open(path).unwrap(),
            &mut std::io::sink(),
        )
        .unwrap();
        eprintln!("warm: read {} MB in {:.1?}", n >> 20, t.elapsed());
    }
    if let Native::Pg(c) = &mut native {
        // What autovacuum does after a bulk load.
        c.batch_execute("VACUUM ANALYZE audit_events").unwrap();
    }

    let m = herald::crypto::MasterKey::generate().unwrap();
    let ring =
        herald::crypto::KeyRing::open(&m, &[herald::crypto::new_data_key(&m, 1).unwrap()]).unwrap();
    // The audit API is auditors' only: an auditor account and its API token
    // (a new one each run; the handler path checks it on every request).
    let token = {
        let mut c = pool.get().unwrap();
        let name = format!("bench-auditor-{}", uuid::Uuid::new_v4().simple());
        let now = Utc::now();
        herald::service::staff::add_user(
            &mut c,
            &ring,
            now,
            &name,
            herald::domain::staff::Role::Auditor,
            "correct horse battery staple",
        )
        .unwrap();
        herald::service::staff::issue_token(&mut c, now, &name, 30).unwrap()
    };
    let state = herald::web::AppState::new(
        Arc::new(Settings::default()),
        pool.clone(),
        Arc::new(ring),
        Arc::new(herald::clock::SystemClock),
    );
    let mut conn = pool.get().unwrap();

    let sys = actix_web::rt::System::new();
    sys.block_on(async move {
        let app = test::init_service(herald::web::app(state)).await;
        let mut rng = Rng(42);
        let mut pick = || {
            let p = format!("Patient/pat-{}", rng.below(PATIENTS));
            let day = rng.below((DAYS - WINDOW_DAYS) as u64) as i64;
            let lo = (start() + chrono::Duration::days(day)).naive_utc();
            (p, lo, lo + chrono::Duration::days(WINDOW_DAYS))
        };

        // One query of each, with EXPLAIN and the SQL they issue.
        let (p, lo, hi) = pick();
        let q = audit::search::parse(&pairs(&p, lo, hi)).unwrap();
        println!("== plan of Herald's search (patient + 30 days)");
        for l in audit_store::explain(&mut conn, &q).unwrap() {
            println!("   {l}");
        }

        const PATHS: usize = 4;
        let mut samples: [Vec<Duration>; PATHS] = Default::default();
        let mut rows = [0usize; 3];
        let mut round_p95: Vec<[f64; PATHS]> = Vec::new();
        let per_round = args.queries / args.rounds;
        // Warm-up (untimed), then the timed rounds. The SQL recorder is on for
        // the warm-up only.
        for phase in 0..=args.rounds {
            let warm = phase == 0;
            RECORDING.store(warm, Ordering::Relaxed);
            let n = if warm { 500.min(per_round) } else { per_round };
            let mut round: [Vec<Duration>; PATHS] = Default::default();
            for k in 0..n {
                let (p, lo, hi) = pick();
                for step in 0..PATHS {
                    let path = (k + step) % PATHS;
                    let t = Instant::now();
                    let got = match path {
                        0 => bare(&mut native, &p, lo, hi),
                        1 => {
                            let q = audit::search::parse(&pairs(&p, lo, hi)).unwrap();
                            audit::search::run(&mut conn, &q).unwrap().rows.len()
                        }
                        3 => {
                            // The handler's database work without HTTP: the
                            // search, then the read's AuditEvent committed.
                            let q = audit::search::parse(&pairs(&p, lo, hi)).unwrap();
                            let page = audit::search::run(&mut conn, &q).unwrap();
                            let rec = AuditRecord {
                                recorded: Utc::now(),
                                activity: Activity::AuditQuery {
                                    query: format!("patient={p}"),
                                },
                                actor: Actor::Anonymous("127.0.0.1".into()),
                                outcome: Outcome::Success,
                                outcome_desc: None,
                                patient_id: Some(p.trim_start_matches("Patient/").into()),
                                request_id: None,
                                ehr: None,
                            };
                            audit::append_now(&mut conn, &[rec]).unwrap();
                            page.rows.len()
                        }
                        _ => {
                            let uri = format!(
                                "/fhir/AuditEvent?patient={p}&date=ge{}&date=lt{}",
                                lo.and_utc().format("%Y-%m-%dT%H:%M:%SZ"),
                                hi.and_utc().format("%Y-%m-%dT%H:%M:%SZ")
                            );
                            let res = test::call_service(
                                &app,
                                test::TestRequest::get()
                                    .uri(&uri)
                                    .insert_header(("authorization", format!("Bearer {token}")))
                                    .to_request(),
                            )
                            .await;
                            let status = res.status().as_u16();
                            let body = test::read_body(res).await;
                            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
                            body.len()
                        }
                    };
                    let el = t.elapsed();
                    if !warm {
                        round[path].push(el);
                        if path < 2 {
                            rows[path] += got;
                        }
                    }
                }
            }
            if warm {
                continue;
            }
            let mut p95 = [0.0; PATHS];
            for path in 0..PATHS {
                round[path].sort();
                p95[path] = us(percentile(&round[path], 0.95));
                samples[path].extend(round[path].iter().copied());
            }
            eprintln!(
                "round {phase}: p95 bare {:.0} µs, search {:.0} µs, handler {:.0} µs, search+append {:.0} µs",
                p95[0], p95[1], p95[2], p95[3]
            );
            round_p95.push(p95);
        }
        RECORDING.store(false, Ordering::Relaxed);
        assert_eq!(rows[0], rows[1], "Herald's search returns what the bare query does");

        println!("== SQL the three paths issued during the warm-up (distinct statements, calls)");
        for (sql, n) in STATEMENTS.lock().unwrap().iter() {
            println!("   {n:>5} × {sql}");
        }
        let counted = STATEMENTS
            .lock()
            .unwrap()
            .keys()
            .any(|s| s.to_lowercase().contains("count("));
        println!("   any COUNT: {counted}");

        println!(
            "== {} backend, {} events, {} queries per path in {} rounds, {:.1} rows per query",
            args.backend,
            args.events,
            samples[0].len(),
            args.rounds,
            rows[0] as f64 / samples[0].len() as f64
        );
        let names = [
            "bare SQL",
            "Herald search()",
            "Herald GET handler",
            "search+append",
        ];
        for path in 0..PATHS {
            samples[path].sort();
            let s = &samples[path];
            println!(
                "   {:<20} p50 {:>7.1} µs   p95 {:>7.1} µs   p99 {:>7.1} µs",
                names[path],
                us(percentile(s, 0.5)),
                us(percentile(s, 0.95)),
                us(percentile(s, 0.99))
            );
        }
        let ratio = |path: usize, p: f64| {
            us(percentile(&samples[path], p)) / us(percentile(&samples[0], p))
        };
        let mut per_round: Vec<f64> = round_p95.iter().map(|r| r[2] / r[0]).collect();
        per_round.sort_by(f64::total_cmp);
        println!(
            "   ratio to bare: search p50 {:.2}× p95 {:.2}×; handler p50 {:.2}× p95 {:.2}× (per-round p95 ratios {:?}, median {:.2}×)",
            ratio(1, 0.5),
            ratio(1, 0.95),
            ratio(2, 0.5),
            ratio(2, 0.95),
            per_round.iter().map(|r| (r * 100.0).round() / 100.0).collect::<Vec<_>>(),
            per_round[per_round.len() / 2]
        );
    });
}
