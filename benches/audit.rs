//! Audit log: Herald's hash-chained append and chain verification, each
//! against a bare baseline measured in the same group. See `benches/README.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use chrono::{NaiveDateTime, SubsecRound as _};
use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;

use herald::audit::Verdict;
use herald::config::DbUrl;
use herald::db::audit_store::{self, AuditRow};
use herald::db::{DbConn, Pool, PooledConn};
use herald::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use herald::domain::{Channel, Purpose};

/// Batch sizes for the append benchmarks.
const BATCHES: [usize; 2] = [1, 100];
/// Chain length for the verify benchmarks.
const CHAIN_LEN: usize = 10_000;

// ---------------------------------------------------------------- Herald side

/// A realistic record: an SMS appointment reminder was disclosed.
///
/// `recorded` is truncated to microseconds: the AuditEvent JSON carries
/// microseconds while the `recorded` column keeps whatever precision it is
/// given, and `verify` compares the two, so a nanosecond timestamp would make
/// the chain read as "edited" at its first record and `herald_verify` would
/// measure an early exit instead of a full walk.
fn record() -> AuditRecord {
    AuditRecord {
        recorded: chrono::Utc::now().trunc_subsecs(6),
        activity: Activity::Disclosure {
            intent_id: uuid::Uuid::new_v4().to_string(),
            channel: Channel::Sms,
            purpose: Purpose::Appointment,
            about: "Appointment/appt-001".into(),
        },
        actor: Actor::System,
        outcome: Outcome::Success,
        outcome_desc: None,
        patient_id: Some("pat-001".into()),
        request_id: Some(uuid::Uuid::new_v4().to_string()),
        ehr: None,
    }
}

/// A migrated Herald database in `dir`, and one connection from its pool.
/// The pool is returned too so it outlives the connection.
fn herald_db(dir: &Path) -> (Pool, PooledConn) {
    let path = dir.join("herald.db");
    let url = DbUrl::new(format!("sqlite://{}", path.display()));
    let pool = herald::db::pool(&url, 2, Duration::from_secs(5)).unwrap();
    let mut conn = pool.get().unwrap();
    herald::db::migrate(&mut conn).unwrap();
    (pool, conn)
}

fn herald_append(conn: &mut DbConn, records: &[AuditRecord]) {
    herald::db::write_tx(conn, |c| herald::audit::append(c, records).map(|_| ())).unwrap();
}

// ------------------------------------------------------------ Bare baseline

diesel::table! {
    /// Same columns as Herald's `audit_events`.
    raw_audit_events (seq) {
        seq -> BigInt,
        id -> Text,
        recorded -> Timestamp,
        type_code -> Text,
        subtype_code -> Nullable<Text>,
        action -> Text,
        outcome -> Text,
        patient_ref -> Nullable<Text>,
        agent_who -> Nullable<Text>,
        entity_ref -> Nullable<Text>,
        resource -> Text,
        prev_hash -> Text,
        hash -> Text,
    }
}

/// The DDL of `audit_events` and its indexes, copied from
/// migrations/sqlite/2026-12-01-000001_init/up.sql and
/// 2026-12-08-000001_audit_search/up.sql (table renamed; no triggers, no head
/// table).
const RAW_DDL: &str = "
CREATE TABLE raw_audit_events (
    seq INTEGER PRIMARY KEY NOT NULL,
    id TEXT NOT NULL UNIQUE,
    recorded TIMESTAMP NOT NULL,
    type_code TEXT NOT NULL,
    subtype_code TEXT,
    action TEXT NOT NULL,
    outcome TEXT NOT NULL,
    patient_ref TEXT,
    agent_who TEXT,
    entity_ref TEXT,
    resource TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX raw_audit_events_patient_recorded ON raw_audit_events (patient_ref, recorded, seq);
CREATE INDEX raw_audit_events_recorded ON raw_audit_events (recorded, seq);
CREATE INDEX raw_audit_events_agent_recorded ON raw_audit_events (agent_who, recorded, seq);
CREATE INDEX raw_audit_events_entity_recorded ON raw_audit_events (entity_ref, recorded, seq)
    WHERE entity_ref IS NOT NULL;
CREATE INDEX raw_audit_events_subtype_recorded ON raw_audit_events (subtype_code, recorded, seq);
CREATE INDEX raw_audit_events_failures_recorded ON raw_audit_events (outcome, recorded, seq)
    WHERE outcome <> '0';
";

/// One pre-built row. `None` binds NULL, so every insert has the same SQL and
/// reuses diesel's cached prepared statement.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = raw_audit_events, treat_none_as_default_value = false)]
struct RawRow {
    seq: i64,
    id: String,
    recorded: NaiveDateTime,
    type_code: String,
    subtype_code: Option<String>,
    action: String,
    outcome: String,
    patient_ref: Option<String>,
    agent_who: Option<String>,
    entity_ref: Option<String>,
    resource: String,
    prev_hash: String,
    hash: String,
}

impl RawRow {
    fn from_herald(r: &AuditRow) -> Self {
        Self {
            seq: r.seq,
            id: r.id.clone(),
            recorded: r.recorded,
            type_code: r.type_code.clone(),
            subtype_code: r.subtype_code.clone(),
            action: r.action.clone(),
            outcome: r.outcome.clone(),
            patient_ref: r.patient_ref.clone(),
            agent_who: r.agent_who.clone(),
            entity_ref: r.entity_ref.clone(),
            resource: r.resource.clone(),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
        }
    }
}

/// A plain SQLite file with Herald's PRAGMAs and the `audit_events` layout.
fn raw_db(dir: &Path) -> SqliteConnection {
    let path = dir.join("raw.db");
    let mut c = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    c.batch_execute(
        "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
    )
    .unwrap();
    c.batch_execute(RAW_DDL).unwrap();
    c
}

/// `BEGIN IMMEDIATE`, one single-row INSERT per row, `COMMIT`.
fn raw_insert(conn: &mut SqliteConnection, rows: &[RawRow]) {
    conn.batch_execute("BEGIN IMMEDIATE").unwrap();
    for row in rows {
        diesel::insert_into(raw_audit_events::table)
            .values(row)
            .execute(conn)
            .unwrap();
    }
    conn.batch_execute("COMMIT").unwrap();
}

// ---------------------------------------------------------------- Benchmarks

fn audit_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_append");
    for n in BATCHES {
        let elements = u64::try_from(n).unwrap();
        group.throughput(Throughput::Elements(elements));

        // Herald: build the AuditEvent JSON, hash-chain, insert, move the head.
        let herald_dir = tempfile::tempdir().unwrap();
        let (_pool, mut conn) = herald_db(herald_dir.path());
        let records = vec![record(); n];
        // One real row to copy for the baseline (same JSON, same columns).
        herald_append(&mut conn, &[record()]);
        let template =
            RawRow::from_herald(audit_store::scan(&mut conn, 0, 1).unwrap().first().unwrap());
        group.bench_with_input(BenchmarkId::new("herald_append", n), &records, |b, recs| {
            b.iter(|| herald_append(&mut conn, black_box(recs)))
        });
        drop(conn);

        // Bare: the same rows already built, inserted with the same batching.
        let raw_dir = tempfile::tempdir().unwrap();
        let mut raw = raw_db(raw_dir.path());
        let mut next_seq = 0i64;
        group.bench_function(BenchmarkId::new("raw_sqlite_insert", n), |b| {
            b.iter_batched(
                || {
                    (0..n)
                        .map(|_| {
                            next_seq += 1;
                            RawRow {
                                seq: next_seq,
                                id: uuid::Uuid::new_v4().to_string(),
                                ..template.clone()
                            }
                        })
                        .collect::<Vec<_>>()
                },
                |rows| raw_insert(&mut raw, black_box(&rows)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn audit_verify(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (_pool, mut conn) = herald_db(dir.path());
    let batch = vec![record(); 100];
    for _ in 0..CHAIN_LEN / batch.len() {
        herald_append(&mut conn, &batch);
    }
    let expected = i64::try_from(CHAIN_LEN).unwrap();
    assert_eq!(
        herald::audit::verify(&mut conn).unwrap(),
        Verdict::Intact { count: expected }
    );

    // The same stored JSON, in chain order, for the bare chain.
    let mut resources = Vec::with_capacity(CHAIN_LEN);
    let mut after = 0;
    loop {
        let page = audit_store::scan(&mut conn, after, 1000).unwrap();
        let Some(last) = page.last() else { break };
        after = last.seq;
        resources.extend(page.into_iter().map(|r| r.resource));
    }
    assert_eq!(resources.len(), CHAIN_LEN);

    let mut group = c.benchmark_group("audit_verify");
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Elements(u64::try_from(CHAIN_LEN).unwrap()));

    // Herald: read every row, re-hash, parse the JSON, compare the columns, check the head.
    group.bench_function("herald_verify", |b| {
        b.iter(|| herald::audit::verify(&mut conn).unwrap())
    });

    // Bare: SHA-256(prev ‖ resource) over the same strings, in memory.
    group.bench_function("bare_sha256_chain", |b| {
        b.iter(|| {
            let mut prev = [0u8; 32];
            for r in black_box(&resources) {
                let mut h = openssl::sha::Sha256::new();
                h.update(&prev);
                h.update(r.as_bytes());
                prev = h.finish();
            }
            prev
        })
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
}

criterion_group! {
    name = benches;
    config = config();
    targets = audit_append, audit_verify
}
criterion_main!(benches);
