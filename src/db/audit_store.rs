//! Audit rows: append (under the chain head's lock), scan in order, search.
//! The rows are append-only at the database level (triggers in migrations).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{audit_events as a, audit_head as h};
use super::{DbConn, DbError};

/// One stored audit row: the search columns, the AuditEvent JSON, the chain.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Insertable)]
#[diesel(table_name = a)]
pub struct AuditRow {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// AuditEvent.id.
    pub id: String,
    /// AuditEvent.recorded (UTC).
    pub recorded: NaiveDateTime,
    /// type.code.
    pub type_code: String,
    /// subtype[0].code.
    pub subtype_code: Option<String>,
    /// action.
    pub action: String,
    /// outcome.
    pub outcome: String,
    /// "Patient/<id>" of the patient entity.
    pub patient_ref: Option<String>,
    /// The requesting agent's who (reference or identifier value).
    pub agent_who: Option<String>,
    /// The data entity's reference.
    pub entity_ref: Option<String>,
    /// The AuditEvent JSON as hashed.
    pub resource: String,
    /// Hash of the previous row (or the genesis hash).
    pub prev_hash: String,
    /// SHA-256 over prev_hash and this row's content.
    pub hash: String,
}

/// Locks the chain head for this transaction and returns (seq, hash).
/// The no-op UPDATE takes the row lock on PostgreSQL and the write lock on
/// SQLite, so concurrent appenders queue here.
pub fn lock_head(conn: &mut DbConn) -> Result<(i64, String), DbError> {
    diesel::update(h::table.find(1))
        .set(h::seq.eq(h::seq))
        .execute(conn)?;
    Ok(h::table.find(1).select((h::seq, h::hash)).first(conn)?)
}

/// The chain head without locking.
pub fn head(conn: &mut DbConn) -> Result<(i64, String), DbError> {
    Ok(h::table.find(1).select((h::seq, h::hash)).first(conn)?)
}

/// Inserts rows and moves the head to the last one. Call after [`lock_head`]
/// in the same transaction.
pub fn insert(conn: &mut DbConn, rows: &[AuditRow]) -> Result<(), DbError> {
    let Some(last) = rows.last() else {
        return Ok(());
    };
    for chunk in rows.chunks(100) {
        // Multi-row VALUES is backend-specific in diesel.
        match conn {
            DbConn::Pg(c) => diesel::insert_into(a::table).values(chunk).execute(c)?,
            DbConn::Sqlite(c) => diesel::insert_into(a::table).values(chunk).execute(c)?,
        };
    }
    diesel::update(h::table.find(1))
        .set((h::seq.eq(last.seq), h::hash.eq(&last.hash)))
        .execute(conn)?;
    Ok(())
}

/// Rows after `after_seq` in chain order, at most `limit`.
pub fn scan(conn: &mut DbConn, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, DbError> {
    Ok(a::table
        .filter(a::seq.gt(after_seq))
        .order(a::seq.asc())
        .limit(limit)
        .load(conn)?)
}

/// Rows in chain order whose `recorded` lies in [since, until).
pub fn scan_between(
    conn: &mut DbConn,
    after_seq: i64,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    limit: i64,
) -> Result<Vec<AuditRow>, DbError> {
    let mut q = a::table.filter(a::seq.gt(after_seq)).into_boxed();
    if let Some(s) = since {
        q = q.filter(a::recorded.ge(s));
    }
    if let Some(u) = until {
        q = q.filter(a::recorded.lt(u));
    }
    Ok(q.order(a::seq.asc()).limit(limit).load(conn)?)
}

/// One row by AuditEvent id.
pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<AuditRow>, DbError> {
    Ok(a::table.filter(a::id.eq(id)).first(conn).optional()?)
}

/// A date bound: comparator and instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateBound {
    /// recorded >= t
    Ge(NaiveDateTime),
    /// recorded > t
    Gt(NaiveDateTime),
    /// recorded <= t
    Le(NaiveDateTime),
    /// recorded < t
    Lt(NaiveDateTime),
}

/// A basic AuditEvent search.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// "Patient/<id>".
    pub patient_ref: Option<String>,
    /// Date bounds (ANDed).
    pub dates: Vec<DateBound>,
    /// Newest first.
    pub descending: bool,
    /// Keyset cursor: continue after (before, when descending) this
    /// (recorded, seq) position.
    pub cursor: Option<(NaiveDateTime, i64)>,
    /// Page size.
    pub limit: i64,
}

/// Runs a search, ordered by (recorded, seq). Keyset paging keeps pages stable while new rows
/// arrive; no total count is computed.
pub fn search(conn: &mut DbConn, q: &AuditQuery) -> Result<Vec<AuditRow>, DbError> {
    let mut b = a::table.into_boxed();
    if let Some(p) = &q.patient_ref {
        b = b.filter(a::patient_ref.eq(p.clone()));
    }
    for d in &q.dates {
        b = match *d {
            DateBound::Ge(t) => b.filter(a::recorded.ge(t)),
            DateBound::Gt(t) => b.filter(a::recorded.gt(t)),
            DateBound::Le(t) => b.filter(a::recorded.le(t)),
            DateBound::Lt(t) => b.filter(a::recorded.lt(t)),
        };
    }
    if q.descending {
        if let Some((t, s)) = q.cursor {
            b = b.filter(a::recorded.lt(t).or(a::recorded.eq(t).and(a::seq.lt(s))));
        }
        b = b.order((a::recorded.desc(), a::seq.desc()));
    } else {
        if let Some((t, s)) = q.cursor {
            b = b.filter(a::recorded.gt(t).or(a::recorded.eq(t).and(a::seq.gt(s))));
        }
        b = b.order((a::recorded.asc(), a::seq.asc()));
    }
    Ok(b.limit(q.limit).load(conn)?)
}
