//! Test databases (a temp SQLite file; a fresh PostgreSQL schema per test when
//! TEST_DATABASE_URL is set), key rings and a pipeline context.

use chrono::{DateTime, TimeZone, Utc};
use diesel::Connection as _;
use diesel::connection::SimpleConnection as _;
use herald::clock::FixedClock;
use herald::config::{DbUrl, MessagingSettings};
use herald::crypto::{KeyRing, MasterKey, new_data_key};
use herald::db::{self, DbConn, Pool};
use std::path::PathBuf;

pub struct TestDb {
    pub backend: &'static str,
    #[allow(dead_code)]
    pub url: DbUrl,
    pub pool: Pool,
    pub sqlite_path: Option<PathBuf>,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn conn(&self) -> db::PooledConn {
        self.pool.get().expect("connection")
    }

    /// Runs raw SQL as the database owner (for tampering and dumps).
    pub fn raw(&self, sql: &str) {
        match (&self.sqlite_path, &self.pg) {
            (Some(p), _) => {
                let mut c = diesel::SqliteConnection::establish(p.to_str().unwrap()).unwrap();
                c.batch_execute(sql).unwrap();
            }
            (_, Some((base, schema))) => {
                let mut c = diesel::PgConnection::establish(base).unwrap();
                c.batch_execute(&format!("SET search_path TO {schema}; {sql}"))
                    .unwrap();
            }
            _ => unreachable!(),
        }
    }

    /// Every row of every table as text (a dump for PHI checks).
    pub fn dump(&self) -> String {
        match (&self.sqlite_path, &self.pg) {
            (Some(p), _) => {
                // Checkpoint so the main file holds everything, then read both files raw.
                self.raw("PRAGMA wal_checkpoint(TRUNCATE);");
                let mut bytes = std::fs::read(p).unwrap();
                if let Ok(wal) = std::fs::read(format!("{}-wal", p.display())) {
                    bytes.extend(wal);
                }
                String::from_utf8_lossy(&bytes).into_owned()
            }
            (_, Some((base, schema))) => {
                use diesel::prelude::*;
                #[derive(QueryableByName)]
                struct Line {
                    #[diesel(sql_type = diesel::sql_types::Text)]
                    line: String,
                }
                let mut c = diesel::PgConnection::establish(base).unwrap();
                let mut out = String::new();
                for t in [
                    "data_keys",
                    "patients",
                    "tracked_resources",
                    "consents",
                    "outbox",
                    "audit_events",
                    "audit_head",
                ] {
                    let rows: Vec<Line> = diesel::sql_query(format!(
                        "SELECT row_to_json(t)::text AS line FROM {schema}.{t} t"
                    ))
                    .load(&mut c)
                    .unwrap();
                    for r in rows {
                        out.push_str(&r.line);
                        out.push('\n');
                    }
                }
                out
            }
            _ => unreachable!(),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, schema)) = &self.pg
            && let Ok(mut c) = diesel::PgConnection::establish(base)
        {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

pub fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("herald.db");
    let url = DbUrl::new(format!("sqlite://{}", path.display()));
    let pool = db::pool(&url, 4, std::time::Duration::from_secs(5)).unwrap();
    TestDb {
        backend: "sqlite",
        url,
        pool,
        sqlite_path: Some(path),
        pg: None,
        _dir: Some(dir),
    }
}

pub fn postgres() -> Option<TestDb> {
    let base = std::env::var("TEST_DATABASE_URL").ok()?;
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut c =
        diesel::PgConnection::establish(&base).expect("TEST_DATABASE_URL must be reachable");
    c.batch_execute(&format!("CREATE SCHEMA {schema}")).unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = DbUrl::new(format!("{base}{sep}options=-csearch_path%3D{schema}"));
    let pool = db::pool(&url, 4, std::time::Duration::from_secs(10)).unwrap();
    Some(TestDb {
        backend: "postgres",
        url,
        pool,
        sqlite_path: None,
        pg: Some((base, schema)),
        _dir: None,
    })
}

/// SQLite, and PostgreSQL when configured.
pub fn backends() -> Vec<TestDb> {
    let mut v = vec![sqlite()];
    v.extend(postgres());
    v
}

/// A migrated database with a key ring.
pub fn ready(db: &TestDb) -> (KeyRing, MasterKey) {
    let mut c = db.conn();
    db::migrate(&mut c).unwrap();
    let master = MasterKey::generate().unwrap();
    db::keys::insert(&mut c, &new_data_key(&master, 1).unwrap(), now()).unwrap();
    let ring = KeyRing::open(&master, &db::keys::list(&mut c).unwrap()).unwrap();
    (ring, master)
}

pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 17, 0, 0).unwrap()
}

pub fn clock() -> FixedClock {
    FixedClock::new(now())
}

/// Default messaging settings without frequency caps (the story sends
/// several notices to one patient in a day; caps have their own tests).
pub fn messaging() -> MessagingSettings {
    MessagingSettings {
        cap_per_day: 0,
        cap_per_week: 0,
        ..MessagingSettings::default()
    }
}

pub fn renderer() -> herald::render::Renderer {
    herald::render::Renderer::embedded().unwrap()
}

#[allow(dead_code)]
pub fn is_pg(c: &DbConn) -> bool {
    matches!(c, DbConn::Pg(_))
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// What a pipeline `Ctx` borrows besides the key ring, clock and channel:
/// messaging settings without caps, the embedded templates, default outbox
/// settings and the compliance guard.
pub struct Parts {
    pub messaging: MessagingSettings,
    pub renderer: herald::render::Renderer,
    pub outbox: herald::config::OutboxSettings,
    pub guard: herald::guard::Guard,
}

impl Parts {
    pub fn new() -> Self {
        Self {
            messaging: messaging(),
            renderer: renderer(),
            outbox: herald::config::OutboxSettings::default(),
            guard: herald::guard::Guard::new(),
        }
    }

    /// A `Ctx` over these parts (no status callback, a test EHR).
    pub fn ctx<'a>(
        &'a self,
        ring: &'a KeyRing,
        clock: &'a dyn herald::clock::Clock,
        sender: &'a dyn herald::providers::Sender,
    ) -> herald::service::Ctx<'a> {
        herald::service::Ctx {
            ring,
            clock,
            messaging: &self.messaging,
            renderer: &self.renderer,
            ehr: "https://ehr.example.org/fhir",
            outbox: &self.outbox,
            sender,
            status_callback: None,
            guard: &self.guard,
        }
    }
}

/// A Node tool directory of the test suite (`tests/validator`, `tests/browser`,
/// `tests/interop`), its packages installed from the lock file on first use.
pub fn npm_dir(rel: &str) -> PathBuf {
    let dir = repo_root().join(rel);
    if !dir.join("node_modules").exists() {
        let st = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .status()
            .expect("npm");
        assert!(st.success(), "npm ci in {rel} failed");
    }
    dir
}

thread_local! {
    /// The auditor token of the current test's app (see [`auditor`]).
    pub static AUDITOR: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// The clinician token of the current test's app (see [`clinician`]).
    pub static CLINICIAN: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A staff account of `role` with an API token; the token is returned.
fn staff_with_token(db: &TestDb, ring: &KeyRing, role: herald::domain::staff::Role) -> String {
    let mut c = db.conn();
    let name = format!(
        "{}-{}",
        role.code(),
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    herald::service::staff::add_user(
        &mut c,
        ring,
        now(),
        &name,
        role,
        "correct horse battery staple",
    )
    .unwrap();
    herald::service::staff::issue_token(&mut c, now(), &name, 30).unwrap()
}

/// Makes an auditor account with an API token on `db` and remembers the
/// token for [`as_auditor`] on this thread (the audit API is auditors only).
pub fn auditor(db: &TestDb, ring: &KeyRing) -> String {
    let token = staff_with_token(db, ring, herald::domain::staff::Role::Auditor);
    AUDITOR.with(|a| *a.borrow_mut() = Some(token.clone()));
    token
}

/// A clinician account with an API token (the Consent and Communication
/// API's staff credential); the token is returned and kept for
/// [`as_clinician`].
pub fn clinician(db: &TestDb, ring: &KeyRing) -> String {
    let token = staff_with_token(db, ring, herald::domain::staff::Role::Clinician);
    CLINICIAN.with(|a| *a.borrow_mut() = Some(token.clone()));
    token
}

/// Adds this thread's clinician token to a test request.
pub fn as_clinician(r: actix_web::test::TestRequest) -> actix_web::test::TestRequest {
    match CLINICIAN.with(|a| a.borrow().clone()) {
        Some(t) => r.insert_header(("authorization", format!("Bearer {t}"))),
        None => r,
    }
}

/// Adds this thread's auditor token to a test request.
pub fn as_auditor(r: actix_web::test::TestRequest) -> actix_web::test::TestRequest {
    match AUDITOR.with(|a| a.borrow().clone()) {
        Some(t) => r.insert_header(("authorization", format!("Bearer {t}"))),
        None => r,
    }
}
