//! The tamper-evident audit log: append FHIR AuditEvents to a SHA-256 hash
//! chain inside the caller's transaction, verify the chain, export it.
//!
//! Invariant: [`append`] runs inside the transaction of the action it
//! records; if it fails the action fails. Records hold references, never PHI.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

pub mod balp;

use chrono::{DateTime, NaiveDateTime, Utc};

use crate::db::audit_store::{self, AuditRow};
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

fn row_for(seq: i64, prev: &str, r: &AuditRecord) -> Result<AuditRow, DbError> {
    use chrono::SubsecRound as _;
    let id = uuid::Uuid::new_v4().to_string();
    // The JSON carries microseconds; the column must hold the same instant.
    let r = &AuditRecord {
        recorded: r.recorded.trunc_subsecs(6),
        ..r.clone()
    };
    let (json, cols) = balp::build(&id, r);
    let resource = serde_json::to_string(&json).map_err(|e| DbError::Other(e.into()))?;
    let hash = chain_hash(prev, seq, &id, &resource);
    Ok(AuditRow {
        seq,
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
        prev_hash: prev.to_string(),
        hash,
    })
}

/// Appends records to the chain. Call inside the action's [`crate::db::write_tx`].
/// Returns the new AuditEvent ids.
pub fn append(conn: &mut DbConn, records: &[AuditRecord]) -> Result<Vec<String>, DbError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let (mut seq, mut prev) = audit_store::lock_head(conn)?;
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        seq += 1;
        let row = row_for(seq, &prev, r)?;
        prev.clone_from(&row.hash);
        rows.push(row);
    }
    audit_store::insert(conn, &rows)?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Appends records in a transaction of their own (for activities that change
/// nothing else, such as a read).
pub fn append_now(conn: &mut DbConn, records: &[AuditRecord]) -> Result<Vec<String>, DbError> {
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

/// Walks the whole chain from the genesis hash and compares the end with the
/// stored head (which catches removal of the newest records).
pub fn verify(conn: &mut DbConn) -> Result<Verdict, DbError> {
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    loop {
        let batch = audit_store::scan(conn, expected_seq - 1, 1000)?;
        // A gap right after the cursor shows up as a batch starting later.
        if batch.is_empty() {
            break;
        }
        for row in &batch {
            if let Some(b) = check_row(row, expected_seq, &prev) {
                return Ok(Verdict::Broken(b));
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
            return Ok(Verdict::Intact { count: last });
        }
        if head_seq < last {
            return Ok(Verdict::Broken(Break {
                seq: head_seq + 1,
                id: None,
                problem: format!(
                    "records after seq {head_seq} are not in the chain head: inserted"
                ),
            }));
        }
        let more = audit_store::scan(conn, last, 1000)?;
        if more.is_empty() {
            return Ok(Verdict::Broken(Break {
                seq: last + 1,
                id: None,
                problem: format!(
                    "the log ends at seq {last} but its head says seq {head_seq}: records removed or the head altered"
                ),
            }));
        }
        for row in &more {
            if let Some(b) = check_row(row, expected_seq, &prev) {
                return Ok(Verdict::Broken(b));
            }
            prev.clone_from(&row.hash);
            expected_seq += 1;
        }
    }
    let last = expected_seq - 1;
    Ok(Verdict::Broken(Break {
        seq: last + 1,
        id: None,
        problem: "the chain head keeps moving; verify again when appends pause".into(),
    }))
}

/// Export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One AuditEvent JSON per line.
    Ndjson,
    /// One row per event with its search columns and chain hash.
    Csv,
}

/// Writes AuditEvents recorded in [since, until) to `out`, in chain order.
pub fn export(
    conn: &mut DbConn,
    since: Option<NaiveDateTime>,
    until: Option<NaiveDateTime>,
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<u64> {
    let mut after = 0i64;
    let mut n = 0u64;
    let csv = match format {
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record([
                "seq", "id", "recorded", "type", "subtype", "action", "outcome", "patient",
                "agent", "entity", "hash",
            ])?;
            out.write_all(&w.into_inner()?)?;
            true
        }
        Format::Ndjson => false,
    };
    loop {
        let batch = audit_store::scan_between(conn, after, since, until, 1000)?;
        let Some(last) = batch.last() else { break };
        after = last.seq;
        for r in &batch {
            if csv {
                let mut w = csv::Writer::from_writer(Vec::new());
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
                out.write_all(&w.into_inner()?)?;
            } else {
                out.write_all(r.resource.as_bytes())?;
                out.write_all(b"\n")?;
            }
            n += 1;
        }
    }
    Ok(n)
}
