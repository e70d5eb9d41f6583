//! The last version Herald saw of each followed EHR resource (encrypted: it
//! may hold clinical detail), so plans can follow changes and a duplicate
//! notification is processed once.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::tracked_resources as t;
use super::{DbConn, DbError};
use crate::crypto::KeyRing;

/// A stored resource version.
#[derive(Debug, Clone)]
pub struct Tracked {
    /// meta.versionId.
    pub version_id: Option<String>,
    /// Status code.
    pub status: String,
    /// The resource's time zone, resolved at ingest.
    pub timezone: Option<String>,
    /// The raw JSON as received.
    pub body: String,
    /// meta.lastUpdated of that version.
    pub last_updated: Option<DateTime<Utc>>,
}

fn aad(rt: &str, id: &str) -> String {
    format!("tracked_resources.body:{rt}/{id}")
}

/// What Herald last saw of `resource_type/id`.
pub fn get(
    conn: &mut DbConn,
    ring: &KeyRing,
    resource_type: &str,
    id: &str,
) -> Result<Option<Tracked>, DbError> {
    type Row = (
        Option<String>,
        String,
        Option<String>,
        Vec<u8>,
        Option<chrono::NaiveDateTime>,
    );
    let row: Option<Row> = t::table
        .find((resource_type, id))
        .select((
            t::version_id,
            t::status,
            t::timezone,
            t::body_enc,
            t::last_updated,
        ))
        .first(conn)
        .optional()?;
    row.map(|(version_id, status, timezone, enc, last_updated)| {
        Ok(Tracked {
            version_id,
            status,
            timezone,
            body: ring.decrypt_str(&aad(resource_type, id), &enc)?,
            last_updated: last_updated.map(super::utc),
        })
    })
    .transpose()
}

/// Records the version just processed.
#[allow(clippy::too_many_arguments)]
pub fn put(
    conn: &mut DbConn,
    ring: &KeyRing,
    resource_type: &str,
    id: &str,
    version_id: Option<&str>,
    last_updated: Option<DateTime<Utc>>,
    status: &str,
    patient_id: &str,
    timezone: Option<&str>,
    body: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let enc = ring.encrypt_str(&aad(resource_type, id), body)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let values = (
        t::version_id.eq(version_id),
        t::last_updated.eq(last_updated.map(super::ts)),
        t::status.eq(status),
        t::patient_fhir_id.eq(patient_id),
        t::timezone.eq(timezone),
        t::body_enc.eq(&enc),
        t::key_id.eq(key_id),
        t::updated_at.eq(super::ts(now)),
    );
    let n = diesel::update(t::table.find((resource_type, id)))
        .set(values)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(t::table)
            .values((
                t::resource_type.eq(resource_type),
                t::fhir_id.eq(id),
                values,
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Re-encrypts up to `limit` rows sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let rows: Vec<(String, String, Vec<u8>)> = t::table
        .filter(t::key_id.ne(active))
        .select((t::resource_type, t::fhir_id, t::body_enc))
        .limit(limit)
        .load(conn)?;
    for (rt, id, enc) in &rows {
        let body = ring.decrypt(aad(rt, id).as_bytes(), enc)?;
        let sealed = ring.encrypt(aad(rt, id).as_bytes(), &body)?;
        diesel::update(t::table.find((rt, id)))
            .set((t::body_enc.eq(sealed), t::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(rows.len())
}

/// Tracked resources of a type whose status is one of `statuses`, optionally
/// for one patient: `(id, what Herald holds)`.
pub fn list_by_status(
    conn: &mut DbConn,
    ring: &KeyRing,
    resource_type: &str,
    statuses: &[&str],
    patient: Option<&str>,
) -> Result<Vec<(String, Tracked)>, DbError> {
    type Row = (
        String,
        Option<String>,
        String,
        Option<String>,
        Vec<u8>,
        Option<chrono::NaiveDateTime>,
    );
    let mut q = t::table
        .filter(t::resource_type.eq(resource_type))
        .filter(t::status.eq_any(statuses))
        .into_boxed();
    if let Some(p) = patient {
        q = q.filter(t::patient_fhir_id.eq(p.to_string()));
    }
    let rows: Vec<Row> = q
        .select((
            t::fhir_id,
            t::version_id,
            t::status,
            t::timezone,
            t::body_enc,
            t::last_updated,
        ))
        .order(t::fhir_id.asc())
        .load(conn)?;
    rows.into_iter()
        .map(|(id, version_id, status, timezone, enc, lu)| {
            let body = ring.decrypt_str(&aad(resource_type, &id), &enc)?;
            Ok((
                id,
                Tracked {
                    version_id,
                    status,
                    timezone,
                    body,
                    last_updated: lu.map(super::utc),
                },
            ))
        })
        .collect()
}

/// Marks a tracked resource as gone from the EHR (deleted or no longer readable).
pub fn set_status(
    conn: &mut DbConn,
    resource_type: &str,
    id: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    diesel::update(t::table.find((resource_type, id)))
        .set((t::status.eq(status), t::updated_at.eq(super::ts(now))))
        .execute(conn)?;
    Ok(())
}

/// The patient a tracked resource is about.
pub fn patient_of(
    conn: &mut DbConn,
    resource_type: &str,
    id: &str,
) -> Result<Option<String>, DbError> {
    Ok(t::table
        .find((resource_type, id))
        .select(t::patient_fhir_id)
        .first(conn)
        .optional()?)
}
