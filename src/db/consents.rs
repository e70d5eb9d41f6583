//! The consent ledger: one row per FHIR Consent and scope (channel ×
//! purpose), never updated or deleted; the newest applicable row decides
//! (see `domain::consent`). The Consent itself (it names the address) is
//! stored encrypted. A Consent is found by its own id through an index
//! (`consent_id`, `part`), and a search pages in SQL, so a request opens
//! only the Consents it returns (issue 11 F5b).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::consents as c;
use super::{DbConn, DbError};
use crate::crypto::KeyRing;
use crate::domain::consent::{ConsentEntry, Decision};
use crate::domain::{Channel, Purpose};

/// A consent to record.
#[derive(Debug, Clone)]
pub struct NewConsent {
    /// Consent id.
    pub id: String,
    /// Patient's logical id.
    pub patient_id: String,
    /// Channel.
    pub channel: Channel,
    /// Purpose, or all.
    pub purpose: Option<Purpose>,
    /// Blind index of the address.
    pub address_index: String,
    /// Permit or deny.
    pub decision: Decision,
    /// sms-keyword | web | clinician | ehr-import.
    pub source: String,
    /// When it ranks: Herald's clock when it records it, or the earlier time
    /// the sender stated (`domain::consent::ranked_at`); never later than now.
    pub recorded_at: DateTime<Utc>,
    /// The time the sender stated (`Consent.dateTime`), kept as evidence.
    pub stated_at: Option<DateTime<Utc>>,
    /// The sender stated a time in the future; recorded at Herald's time.
    pub future_dated: bool,
    /// Period end.
    pub valid_until: Option<DateTime<Utc>>,
    /// The FHIR Consent JSON.
    pub resource: String,
    /// The FHIR Consent this row is one scope of, and the row's place in it,
    /// when the Consent has several (its rows are `id-0`, `id-1`, …); `None`:
    /// the row is the whole Consent (its id, place 0).
    pub part_of: Option<(String, i32)>,
    /// The Consent's category codes (for the search).
    pub categories: Vec<String>,
}

impl NewConsent {
    fn consent_id(&self) -> (&str, i32) {
        match &self.part_of {
            Some((id, part)) => (id, *part),
            None => (&self.id, 0),
        }
    }
}

/// Category codes as stored: `|code|code|` (a code holding `|` is dropped).
fn categories_column(codes: &[String]) -> String {
    let mut out = String::from("|");
    for code in codes.iter().filter(|c| !c.is_empty() && !c.contains('|')) {
        out.push_str(code);
        out.push('|');
    }
    out
}

fn aad(id: &str) -> String {
    format!("consents.resource:{id}")
}

fn decision_code(d: Decision) -> &'static str {
    match d {
        Decision::Permit => "permit",
        Decision::Deny => "deny",
    }
}

/// Appends a ledger row. Returns false when this Consent id is already there.
pub fn insert(conn: &mut DbConn, ring: &KeyRing, n: &NewConsent) -> Result<bool, DbError> {
    let (consent_id, part) = n.consent_id();
    let exists: i64 = c::table
        .filter(
            c::id
                .eq(&n.id)
                .or(c::consent_id.eq(consent_id).and(c::part.eq(part))),
        )
        .count()
        .get_result(conn)?;
    if exists > 0 {
        return Ok(false);
    }
    let enc = ring.encrypt_str(&aad(&n.id), &n.resource)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    diesel::insert_into(c::table)
        .values((
            c::id.eq(&n.id),
            c::patient_fhir_id.eq(&n.patient_id),
            c::channel.eq(n.channel.code()),
            c::purpose.eq(n.purpose.map(Purpose::code)),
            c::address_index.eq(&n.address_index),
            c::decision.eq(decision_code(n.decision)),
            c::source.eq(&n.source),
            c::recorded_at.eq(super::ts(n.recorded_at)),
            c::valid_until.eq(n.valid_until.map(super::ts)),
            c::resource_enc.eq(&enc),
            c::key_id.eq(key_id),
            c::stated_at.eq(n.stated_at.map(super::ts)),
            c::future_dated.eq(n.future_dated),
            c::consent_id.eq(consent_id),
            c::part.eq(part),
            c::categories.eq(Some(categories_column(&n.categories))),
        ))
        .execute(conn)?;
    // Every Consent Herald records is owed to the EHR (written where its
    // preset accepts Consent), once: its first row carries the whole
    // Consent. One that came from the EHR is not owed.
    if !n.source.starts_with("ehr") && part == 0 {
        super::writes::enqueue(
            conn,
            super::writes::WriteKind::Consent,
            &format!("Consent/{}", n.id),
            &n.patient_id,
            None,
            n.recorded_at,
        )?;
    }
    Ok(true)
}

/// One ledger row's FHIR Consent (decrypted), for the write-back.
pub fn resource_of(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<Option<String>, DbError> {
    let enc: Option<Vec<u8>> = c::table
        .find(id)
        .select(c::resource_enc)
        .first(conn)
        .optional()?;
    enc.map(|e| ring.decrypt_str(&aad(id), &e).map_err(DbError::from))
        .transpose()
}

type EntryRow = (
    String,
    String,
    Option<String>,
    String,
    String,
    chrono::NaiveDateTime,
    Option<chrono::NaiveDateTime>,
    bool,
);

/// Every ledger entry for a patient.
pub fn entries_for(conn: &mut DbConn, patient_id: &str) -> Result<Vec<ConsentEntry>, DbError> {
    let rows: Vec<EntryRow> = c::table
        .filter(c::patient_fhir_id.eq(patient_id))
        .select((
            c::id,
            c::channel,
            c::purpose,
            c::address_index,
            c::decision,
            c::recorded_at,
            c::valid_until,
            c::future_dated,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (id, channel, purpose, address_index, decision, at, until, future_dated) in rows {
        // A row Herald cannot read is skipped rather than trusted.
        let Ok(channel) = channel.parse::<Channel>() else {
            continue;
        };
        let purpose = match purpose.map(|p| p.parse::<Purpose>()).transpose() {
            Ok(p) => p,
            Err(_) => continue,
        };
        let decision = match decision.as_str() {
            "permit" => Decision::Permit,
            "deny" => Decision::Deny,
            _ => continue,
        };
        out.push(ConsentEntry {
            consent_id: id,
            channel,
            purpose,
            address_index,
            decision,
            recorded_at: super::utc(at),
            valid_until: until.map(super::utc),
            future_dated,
        });
    }
    Ok(out)
}

/// The stored FHIR Consent JSON of one ledger row.
pub fn resource(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<Option<String>, DbError> {
    resource_of(conn, ring, id)
}

/// Re-encrypts up to `limit` rows sealed by an older key.
pub fn rekey_batch(conn: &mut DbConn, ring: &KeyRing, limit: i64) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let rows: Vec<(String, Vec<u8>)> = c::table
        .filter(c::key_id.ne(active))
        .select((c::id, c::resource_enc))
        .limit(limit)
        .load(conn)?;
    for (id, enc) in &rows {
        let plain = ring.decrypt(aad(id).as_bytes(), enc)?;
        let sealed = ring.encrypt(aad(id).as_bytes(), &plain)?;
        diesel::update(c::table.find(id))
            .set((c::resource_enc.eq(sealed), c::key_id.eq(active)))
            .execute(conn)?;
    }
    Ok(rows.len())
}

/// A stored Consent: its first ledger row, when it ranks, and its JSON.
#[derive(Debug, Clone)]
pub struct StoredConsent {
    /// Ledger row id (the paging cursor).
    pub row_id: String,
    /// The FHIR Consent's id.
    pub consent_id: String,
    /// Patient.
    pub patient_id: String,
    /// Recorded at.
    pub recorded_at: chrono::NaiveDateTime,
    /// The Consent's category codes, when stored (rows recorded before the
    /// column existed by the API or the EHR import have none: read them from
    /// the Consent).
    pub categories: Option<Vec<String>>,
    /// The FHIR Consent (decrypted).
    pub resource: String,
}

type StoredRow = (
    String,
    String,
    String,
    chrono::NaiveDateTime,
    Option<String>,
    Vec<u8>,
);

/// The columns of a [`StoredRow`].
const STORED: (
    c::id,
    c::consent_id,
    c::patient_fhir_id,
    c::recorded_at,
    c::categories,
    c::resource_enc,
) = (
    c::id,
    c::consent_id,
    c::patient_fhir_id,
    c::recorded_at,
    c::categories,
    c::resource_enc,
);

fn opened(ring: &KeyRing, row: StoredRow) -> Result<StoredConsent, DbError> {
    let (row_id, consent_id, patient_id, recorded_at, categories, enc) = row;
    Ok(StoredConsent {
        resource: ring.decrypt_str(&aad(&row_id), &enc)?,
        categories: categories.map(|c| {
            c.split('|')
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect()
        }),
        row_id,
        consent_id,
        patient_id,
        recorded_at,
    })
}

/// One Consent by its FHIR id, through the `consent_id` index: its first
/// row, the only one opened.
pub fn get(conn: &mut DbConn, ring: &KeyRing, id: &str) -> Result<Option<StoredConsent>, DbError> {
    let row: Option<StoredRow> = c::table
        .filter(c::consent_id.eq(id))
        .filter(c::part.eq(0))
        .order((c::recorded_at.asc(), c::id.asc()))
        .select(STORED)
        .first(conn)
        .optional()?;
    row.map(|r| opened(ring, r)).transpose()
}

/// A Consent search: each filter optional, oldest first, one page.
#[derive(Debug, Clone, Default)]
pub struct ConsentSearch {
    /// Patient.
    pub patient: Option<String>,
    /// Ranked at or after.
    pub from: Option<DateTime<Utc>>,
    /// Ranked before.
    pub to: Option<DateTime<Utc>>,
    /// A category code (rows without stored categories pass, for the
    /// caller to check in the Consent).
    pub category: Option<String>,
    /// Keyset: Consents after this ledger row (a previous page's last).
    pub after: Option<String>,
    /// Page size.
    pub limit: i64,
}

/// Where a ledger row sits in search order, if it exists (a cursor).
pub fn position(conn: &mut DbConn, row_id: &str) -> Result<Option<chrono::NaiveDateTime>, DbError> {
    Ok(c::table
        .find(row_id)
        .select(c::recorded_at)
        .first(conn)
        .optional()?)
}

/// One page of a Consent search.
#[derive(Debug, Clone, Default)]
pub struct ConsentPage {
    /// The page's Consents, opened.
    pub consents: Vec<StoredConsent>,
    /// More follow (after the page's last row).
    pub more: bool,
}

/// One page of Consents (one per Consent: their first rows), oldest first;
/// only the page's rows are opened.
pub fn search(
    conn: &mut DbConn,
    ring: &KeyRing,
    s: &ConsentSearch,
) -> Result<ConsentPage, DbError> {
    let mut q = c::table.filter(c::part.eq(0)).into_boxed();
    if let Some(p) = &s.patient {
        q = q.filter(c::patient_fhir_id.eq(p));
    }
    if let Some(f) = s.from {
        q = q.filter(c::recorded_at.ge(super::ts(f)));
    }
    if let Some(t) = s.to {
        q = q.filter(c::recorded_at.lt(super::ts(t)));
    }
    if let Some(code) = &s.category {
        let escaped: String = code
            .chars()
            .flat_map(|ch| match ch {
                '\\' | '%' | '_' => vec!['\\', ch],
                other => vec![other],
            })
            .collect();
        q = q.filter(
            c::categories
                .like(format!("%|{escaped}|%"))
                .escape('\\')
                .or(c::categories.is_null()),
        );
    }
    if let Some(after) = &s.after {
        let Some(at) = position(conn, after)? else {
            return Ok(ConsentPage::default());
        };
        q = q.filter(
            c::recorded_at
                .gt(at)
                .or(c::recorded_at.eq(at).and(c::id.gt(after.clone()))),
        );
    }
    // One row more than the page says whether another follows; it is not
    // opened.
    let mut rows: Vec<StoredRow> = q
        .order((c::recorded_at.asc(), c::id.asc()))
        .limit(s.limit.saturating_add(1))
        .select(STORED)
        .load(conn)?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > s.limit;
    rows.truncate(usize::try_from(s.limit).unwrap_or(0));
    Ok(ConsentPage {
        consents: rows
            .into_iter()
            .map(|r| opened(ring, r))
            .collect::<Result<_, _>>()?,
        more,
    })
}
