//! Storage: one diesel `MultiConnection` over SQLite and PostgreSQL, an r2d2
//! pool whose manager picks the backend from the URL scheme, embedded
//! migrations per backend, and repositories per aggregate.
//!
//! Architecture invariant: only this module knows diesel. Repository
//! functions are synchronous and take `&mut DbConn`; async callers run them
//! in a blocking task. A state change and its audit records commit in one
//! [`write_tx`].

pub mod audit_store;
pub mod consents;
pub mod contact_codes;
pub mod ehr;
pub mod inbound;
pub mod keys;
pub mod outbox;
pub mod patients;
pub mod resources;
pub mod schema;
pub mod smart;
pub mod staff;
pub mod writes;

use diesel::connection::{AnsiTransactionManager, SimpleConnection as _, TransactionManager};
use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::DbUrl;

/// A connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    /// PostgreSQL.
    Pg(diesel::PgConnection),
    /// SQLite (bundled).
    Sqlite(diesel::SqliteConnection),
}

/// The pool.
pub type Pool = r2d2::Pool<Manager>;
/// A pooled connection.
pub type PooledConn = r2d2::PooledConnection<Manager>;

/// Storage errors, as the rest of Herald needs to tell them apart.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No such row.
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write.
    #[error("conflict")]
    Conflict,
    /// The database cannot be reached.
    #[error("database unavailable: {0}")]
    Unavailable(anyhow::Error),
    /// Anything else.
    #[error("database error: {0}")]
    Other(anyhow::Error),
}

impl From<diesel::result::Error> for DbError {
    fn from(e: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match e {
            Error::NotFound => Self::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => Self::Conflict,
            Error::DatabaseError(DatabaseErrorKind::ClosedConnection, _) => {
                Self::Unavailable(e.into())
            }
            other => Self::Other(other.into()),
        }
    }
}

impl From<r2d2::Error> for DbError {
    fn from(e: r2d2::Error) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<crate::crypto::CryptoError> for DbError {
    fn from(e: crate::crypto::CryptoError) -> Self {
        Self::Other(e.into())
    }
}

/// Which backend a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A libpq URL (kept whole, password included; never printed).
    Postgres(String),
}

/// Chooses the backend from the URL scheme. A bare path is refused: SQLite
/// would create any file it is given.
pub fn backend_of(url: &DbUrl) -> Result<Backend, DbError> {
    let u = url.expose();
    if let Some(path) = u.strip_prefix("sqlite://") {
        Ok(Backend::Sqlite(PathBuf::from(path)))
    } else if u.starts_with("postgres://") || u.starts_with("postgresql://") {
        Ok(Backend::Postgres(u.to_string()))
    } else {
        Err(DbError::Other(anyhow::anyhow!(
            "database URL {} must start with sqlite:// or postgres://",
            url.redacted()
        )))
    }
}

/// The r2d2 manager: connects to the backend its URL names and reports the
/// real connection error (not diesel's generic multi-connection one).
#[derive(Debug)]
pub struct Manager {
    backend: Backend,
}

/// A connection failure, with the driver's own message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConnectError(String);

impl r2d2::ManageConnection for Manager {
    type Connection = DbConn;
    type Error = ConnectError;

    fn connect(&self) -> Result<DbConn, ConnectError> {
        match &self.backend {
            Backend::Postgres(url) => diesel::PgConnection::establish(url)
                .map(DbConn::Pg)
                .map_err(|e| ConnectError(e.to_string())),
            Backend::Sqlite(path) => {
                let p = path
                    .to_str()
                    .ok_or_else(|| ConnectError("SQLite path is not UTF-8".into()))?;
                let mut c = diesel::SqliteConnection::establish(p)
                    .map_err(|e| ConnectError(e.to_string()))?;
                // busy_timeout first: setting WAL under contention needs it (feasibility.md §5).
                c.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(|e| ConnectError(e.to_string()))?;
                Ok(DbConn::Sqlite(c))
            }
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), ConnectError> {
        conn.batch_execute("SELECT 1")
            .map_err(|e| ConnectError(e.to_string()))
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

/// Builds the pool, creating the SQLite file's directory if needed.
pub fn pool(url: &DbUrl, size: u32, timeout: Duration) -> Result<Pool, DbError> {
    let backend = backend_of(url)?;
    if let Backend::Sqlite(path) = &backend
        && let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| DbError::Unavailable(e.into()))?;
    }
    r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(timeout)
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build(Manager { backend })
        .map_err(DbError::from)
}

/// Builds the pool without connecting: a server can start while the database
/// is down and report it at `/readyz` (503) until it comes back.
pub fn pool_lazy(url: &DbUrl, size: u32, timeout: Duration) -> Result<Pool, DbError> {
    let backend = backend_of(url)?;
    Ok(r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(timeout)
        .error_handler(Box::new(r2d2::NopErrorHandler))
        .build_unchecked(Manager { backend }))
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Applies pending migrations; returns the names applied.
pub fn migrate(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let applied = match conn {
        DbConn::Pg(c) => c
            .run_pending_migrations(PG_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
        DbConn::Sqlite(c) => c
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
    };
    applied.map_err(|e| DbError::Other(anyhow::anyhow!("migration failed: {e}")))
}

/// Reverts every migration (development and tests only).
pub fn revert_all(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    let reverted = match conn {
        DbConn::Pg(c) => c
            .revert_all_migrations(PG_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
        DbConn::Sqlite(c) => c
            .revert_all_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
    };
    reverted.map_err(|e| DbError::Other(anyhow::anyhow!("revert failed: {e}")))
}

/// SQLite has one writer at a time. Threads of one process queue for it here,
/// in order, instead of each sleeping and retrying in SQLite's busy handler
/// (which wasted half the CPU of an 8-worker blast); other processes still
/// meet the busy timeout.
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a write transaction: `BEGIN IMMEDIATE` on SQLite (so writers
/// queue instead of failing on lock upgrade), a plain transaction on
/// PostgreSQL. Commits on `Ok`, rolls back on `Err`.
pub fn write_tx<T, E>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DbError>,
{
    let _writer = match conn {
        DbConn::Sqlite(_) => Some(
            SQLITE_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        ),
        DbConn::Pg(_) => None,
    };
    type Tm = <DbConn as Connection>::TransactionManager;
    let db = |e: diesel::result::Error| E::from(DbError::from(e));
    match conn {
        DbConn::Sqlite(c) => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE").map_err(db)?
        }
        DbConn::Pg(_) => Tm::begin_transaction(conn).map_err(db)?,
    }
    match f(conn) {
        Ok(v) => {
            Tm::commit_transaction(conn).map_err(db)?;
            Ok(v)
        }
        Err(e) => {
            // The original error matters more than a failed rollback.
            let _ = Tm::rollback_transaction(conn);
            Err(e)
        }
    }
}

/// Is the database answering?
pub fn ping(conn: &mut DbConn) -> Result<(), DbError> {
    conn.batch_execute("SELECT 1").map_err(DbError::from)
}

/// Which backend this connection speaks ("sqlite" or "postgres").
pub fn backend_name(conn: &DbConn) -> &'static str {
    match conn {
        DbConn::Pg(_) => "postgres",
        DbConn::Sqlite(_) => "sqlite",
    }
}

/// Converts a UTC instant to the naive UTC timestamp stored in the database.
pub fn ts(t: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    t.naive_utc()
}

/// Converts a stored timestamp back to UTC.
pub fn utc(t: chrono::NaiveDateTime) -> chrono::DateTime<chrono::Utc> {
    t.and_utc()
}
