//! The tamper-evident audit log: append FHIR AuditEvents to a SHA-256 hash
//! chain inside the caller's transaction, verify the chain, export it.
//!
//! Invariant: [`append`] runs inside the transaction of the action it
//! records; if it fails the action fails. Records hold references, never PHI.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

pub mod balp;
pub mod checkpoint;
pub mod report;
pub mod search;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::db::audit_store::{self, AuditRow, VerificationRow};
use crate::db::{DbConn, DbError};
use crate::domain::audit::AuditRecord;

/// The hash the first record chains from.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain hash of one row: SHA-256 over the previous hash, the sequence
/// number, the id and the exact stored JSON.
pub fn chain_hash(prev: &str, seq: i64, id: &str, resource: &str) -> String {
    let mut buf = Vec::with_capacity(prev.len() + id.len() + resource.len() + 24);
    buf.extend_from_slice(prev.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(seq.to_string().as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(id.as_bytes());
    buf.push(b'\n');
    buf.extend_from_slice(resource.as_bytes());
    crate::crypto::sha256_hex(&buf)
}

/// A record's row before it is chained (seq 0, no hashes): the id, the
/// AuditEvent JSON and its search columns.
fn unchained(r: &AuditRecord) -> Result<AuditRow, DbError> {
    use chrono::SubsecRound as _;
    let id = uuid::Uuid::new_v4().to_string();
    // The JSON carries microseconds; the column must hold the same instant.
    let r = &AuditRecord {
        recorded: r.recorded.trunc_subsecs(6),
        ..r.clone()
    };
    let (json, cols) = balp::build(&id, r);
    let resource = serde_json::to_string(&json).map_err(|e| DbError::Other(e.into()))?;
    Ok(AuditRow {
        seq: 0,
        id,
        recorded: r.recorded.naive_utc(),
        type_code: cols.type_code,
        subtype_code: cols.subtype_code,
        action: cols.action,
        outcome: cols.outcome,
        patient_ref: cols.patient_ref,
        agent_who: cols.agent_who,
        entity_ref: cols.entity_ref,
        resource,
        prev_hash: String::new(),
        hash: String::new(),
    })
}

/// Appends records to the chain. Call inside the action's [`crate::db::write_tx`].
/// Returns the new AuditEvent ids.
///
/// One record on PostgreSQL is one statement ([`audit_store::append_one`]: the
/// database locks the head, hashes with the same formula as [`chain_hash`],
/// inserts and moves the head); otherwise the head is locked, each row is
/// chained here and the rows inserted.
pub fn append(conn: &mut DbConn, records: &[AuditRecord]) -> Result<Vec<String>, DbError> {
    let mut rows = records
        .iter()
        .map(unchained)
        .collect::<Result<Vec<_>, _>>()?;
    if let [row] = rows.as_slice()
        && audit_store::append_one(conn, row)?
    {
        return Ok(vec![row.id.clone()]);
    }
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (mut seq, mut prev) = audit_store::lock_head(conn)?;
    for row in &mut rows {
        seq += 1;
        row.seq = seq;
        row.hash = chain_hash(&prev, seq, &row.id, &row.resource);
        row.prev_hash = std::mem::replace(&mut prev, row.hash.clone());
    }
    audit_store::insert(conn, &rows)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Appends records in a transaction of their own (for activities that change
/// nothing else, such as a read). One record on PostgreSQL is a single
/// statement, a transaction by itself.
pub fn append_now(conn: &mut DbConn, records: &[AuditRecord]) -> Result<Vec<String>, DbError> {
    if records.len() == 1 && audit_store::appends_in_one_statement(conn) {
        return append(conn, records);
    }
    crate::db::write_tx(conn, |c| append(c, records))
}

/// The first broken record and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The sequence number where the chain breaks.
    pub seq: i64,
    /// The record's id, when there is a record at that place.
    pub id: Option<String>,
    /// What was found.
    pub problem: String,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.id {
            Some(id) => write!(
                f,
                "audit chain broken at seq {} (AuditEvent/{}): {}",
                self.seq, id, self.problem
            ),
            None => write!(
                f,
                "audit chain broken at seq {}: {}",
                self.seq, self.problem
            ),
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every record chains; `count` records checked.
    Intact {
        /// Records checked.
        count: i64,
    },
    /// The first break.
    Broken(Break),
}

/// Checks one row against what the chain expects; `None` when it fits.
pub fn check_row(row: &AuditRow, expected_seq: i64, expected_prev: &str) -> Option<Break> {
    let at = |problem: String| {
        Some(Break {
            seq: expected_seq,
            id: Some(row.id.clone()),
            problem,
        })
    };
    if row.seq != expected_seq {
        return Some(Break {
            seq: expected_seq,
            id: None,
            problem: format!(
                "record missing (the next record present is seq {}): deleted or renumbered",
                row.seq
            ),
        });
    }
    if row.prev_hash != expected_prev {
        return at("does not follow the record before it: inserted, deleted or reordered".into());
    }
    if chain_hash(&row.prev_hash, row.seq, &row.id, &row.resource) != row.hash {
        return at("content does not match its hash: edited".into());
    }
    let parsed: Option<serde_json::Value> = serde_json::from_str(&row.resource).ok();
    let Some(json) = parsed else {
        return at("stored AuditEvent is not JSON".into());
    };
    if json["id"].as_str() != Some(row.id.as_str()) {
        return at("id column differs from the record: edited".into());
    }
    let recorded_ok = json["recorded"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .is_some_and(|d| d.with_timezone(&Utc).naive_utc() == row.recorded);
    let cols_ok = balp::columns_of(&json).is_some_and(|c| {
        c.type_code == row.type_code
            && c.subtype_code == row.subtype_code
            && c.action == row.action
            && c.outcome == row.outcome
            && c.patient_ref == row.patient_ref
            && c.agent_who == row.agent_who
            && c.entity_ref == row.entity_ref
    });
    if !recorded_ok || !cols_ok {
        return at("search columns differ from the record: edited".into());
    }
    None
}

/// Where a walk of the chain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// What the walk found.
    pub verdict: Verdict,
    /// The last record that chained (0 when none did).
    pub through_seq: i64,
    /// Its hash (the genesis hash when none did).
    pub through_hash: String,
}

/// Walks the whole chain from the genesis hash and compares the end with the
/// stored head (which catches removal of the newest records).
pub fn verify(conn: &mut DbConn) -> Result<Verdict, DbError> {
    Ok(walk(conn, 0, GENESIS)?.verdict)
}

/// Walks the chain from the record after `after_seq`, which must chain from
/// `after_hash`, to the head. From (0, [`GENESIS`]) this is [`verify`]; from a
/// point an earlier full walk reached, it checks only what was appended since.
/// `Intact { count }` is the newest record's seq either way.
pub fn walk(conn: &mut DbConn, after_seq: i64, after_hash: &str) -> Result<Walk, DbError> {
    let mut expected_seq = after_seq + 1;
    let mut prev = after_hash.to_string();
    let done = |verdict: Verdict, seq: i64, prev: &str| Walk {
        verdict,
        through_seq: seq,
        through_hash: prev.to_string(),
    };
    loop {
        let batch = audit_store::scan(conn, expected_seq - 1, 1000)?;
        // A gap right after the cursor shows up as a batch starting later.
        if batch.is_empty() {
            break;
        }
        for row in &batch {
            if let Some(b) = check_row(row, expected_seq, &prev) {
                return Ok(done(Verdict::Broken(b), expected_seq - 1, &prev));
            }
            prev.clone_from(&row.hash);
            expected_seq += 1;
        }
    }
    // The head names the newest record: rows beyond it were inserted behind
    // Herald's back; a head beyond the rows means the newest were removed.
    // (Rows appended while we read are picked up by scanning again.)
    for _ in 0..3 {
        let (head_seq, head_hash) = audit_store::head(conn)?;
        let last = expected_seq - 1;
        if head_seq == last && head_hash == prev {
            return Ok(done(Verdict::Intact { count: last }, last, &prev));
        }
        if head_seq < last {
            let b = Break {
                seq: head_seq + 1,
                id: None,
                problem: format!(
                    "records after seq {head_seq} are not in the chain head: inserted"
                ),
            };
            return Ok(done(Verdict::Broken(b), last, &prev));
        }
        let more = audit_store::scan(conn, last, 1000)?;
        if more.is_empty() {
            let b = Break {
                seq: last + 1,
                id: None,
                problem: format!(
                    "the log ends at seq {last} but its head says seq {head_seq}: records removed or the head altered"
                ),
            };
            return Ok(done(Verdict::Broken(b), last, &prev));
        }
        for row in &more {
            if let Some(b) = check_row(row, expected_seq, &prev) {
                return Ok(done(Verdict::Broken(b), expected_seq - 1, &prev));
            }
            prev.clone_from(&row.hash);
            expected_seq += 1;
        }
    }
    let last = expected_seq - 1;
    let b = Break {
        seq: last + 1,
        id: None,
        problem: "the chain head keeps moving; verify again when appends pause".into(),
    };
    Ok(done(Verdict::Broken(b), last, &prev))
}

/// Verifies the whole chain and records the result in `audit_verifications`
/// (`herald audit verify` and the periodic check in `herald serve`), so the
/// /audit page can show it without walking the log.
pub fn verify_and_record(
    conn: &mut DbConn,
    clock: &dyn crate::clock::Clock,
) -> Result<Verdict, DbError> {
    let started = std::time::Instant::now();
    let w = walk(conn, 0, GENESIS)?;
    let (broken_seq, problem) = match &w.verdict {
        Verdict::Intact { .. } => (None, None),
        Verdict::Broken(b) => (Some(b.seq), Some(b.to_string())),
    };
    let row = VerificationRow {
        id: uuid::Uuid::new_v4().to_string(),
        checked_at: clock.now().naive_utc(),
        through_seq: w.through_seq,
        through_hash: w.through_hash,
        broken_seq,
        problem,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
    };
    crate::db::write_tx(conn, |c| audit_store::insert_verification(c, &row))?;
    Ok(w.verdict)
}

/// What is known about the chain now, cheaply enough for a page view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// The newest full verification, if any ran.
    pub last_full: Option<VerificationRow>,
    /// The records appended since it (or all, when none ran).
    pub since: SinceCheck,
    /// The chain head's seq now.
    pub head_seq: i64,
}

/// The check of the records a full verification has not covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinceCheck {
    /// They were walked now and chain on; `count` records checked.
    Intact {
        /// Records checked now.
        count: i64,
    },
    /// Walking them now found a break.
    Broken(Break),
    /// Too many to walk during a page view; the next full verification will.
    NotChecked {
        /// Records not yet checked.
        pending: i64,
    },
    /// The last full verification found a break; nothing after it is checked.
    AfterBreak,
}

/// The newest full verification and a walk of what was appended since, when
/// that is at most `max_walk` records.
pub fn chain_status(conn: &mut DbConn, max_walk: i64) -> Result<ChainStatus, DbError> {
    let last_full = audit_store::latest_verification(conn)?;
    let (head_seq, _) = audit_store::head(conn)?;
    let (from_seq, from_hash) = match &last_full {
        Some(v) if v.broken_seq.is_some() => {
            return Ok(ChainStatus {
                last_full,
                since: SinceCheck::AfterBreak,
                head_seq,
            });
        }
        Some(v) => (v.through_seq, v.through_hash.clone()),
        None => (0, GENESIS.to_string()),
    };
    let pending = head_seq - from_seq;
    let since = if pending > max_walk {
        SinceCheck::NotChecked { pending }
    } else {
        let w = walk(conn, from_seq, &from_hash)?;
        match w.verdict {
            Verdict::Intact { count } => SinceCheck::Intact {
                count: count - from_seq,
            },
            Verdict::Broken(b) => SinceCheck::Broken(b),
        }
    };
    Ok(ChainStatus {
        last_full,
        since,
        head_seq,
    })
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One AuditEvent JSON per line.
    Ndjson,
    /// One row per event with its search columns and chain hash.
    Csv,
}

/// The first bytes of an export: the CSV header, nothing for NDJSON.
pub fn export_header(format: Format) -> anyhow::Result<Vec<u8>> {
    Ok(match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "seq", "id", "recorded", "type", "subtype", "action", "outcome", "patient",
                "agent", "entity", "hash",
            ])?;
            w.into_inner()?
        }
        Format::Ndjson => Vec::new(),
    })
}

/// Appends rows to an export: one CSV row (search columns and chain hash) or
/// one AuditEvent JSON line each.
pub fn export_rows(format: Format, rows: &[AuditRow], out: &mut Vec<u8>) -> anyhow::Result<()> {
    match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            for r in rows {
                w.write_record([
                    r.seq.to_string().as_str(),
                    &r.id,
                    &r.recorded.and_utc().to_rfc3339(),
                    &r.type_code,
                    r.subtype_code.as_deref().unwrap_or(""),
                    &r.action,
                    &r.outcome,
                    r.patient_ref.as_deref().unwrap_or(""),
                    r.agent_who.as_deref().unwrap_or(""),
                    r.entity_ref.as_deref().unwrap_or(""),
                    &r.hash,
                ])?;
            }
            w.flush()?;
        }
        Format::Ndjson => {
            for r in rows {
                out.extend_from_slice(r.resource.as_bytes());
                out.push(b'\n');
            }
        }
    }
    Ok(())
}

/// Writes AuditEvents recorded in [since, until) to `out`, in chain order,
/// a thousand rows at a time.
pub fn export(
    conn: &mut DbConn,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    let mut after = 0i64;
    let mut n = 0u64;
    out.write_all(&export_header(format)?)?;
    let mut buf = Vec::new();
    loop {
        let batch = audit_store::scan_between(conn, after, since, until, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        buf.clear();
        export_rows(format, &batch, &mut buf)?;
        out.write_all(&buf)?;
        n += u64::try_from(batch.len()).unwrap_or(0);
    }
    Ok(n)
}
