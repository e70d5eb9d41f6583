//! Patients: contact details encrypted per column, blind indexes for lookup
//! by phone or email. Only the minimum a send needs is kept.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::patients;
use super::{DbConn, DbError};
use crate::crypto::{KeyRing, normalize_email, normalize_phone};
use crate::domain::facts::PatientFacts;
use crate::domain::phi::{Email, PersonName, Phone};

fn aad(column: &str, id: &str) -> String {
    format!("patients.{column}:{id}")
}

#[derive(Queryable)]
struct Row {
    fhir_id: String,
    name_enc: Vec<u8>,
    given_enc: Option<Vec<u8>>,
    phone_enc: Option<Vec<u8>>,
    email_enc: Option<Vec<u8>>,
    language: Option<String>,
    timezone: Option<String>,
    region: Option<String>,
    alt_phone_enc: Option<Vec<u8>>,
}

type Sealed = (
    Vec<u8>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Option<String>,
    Option<String>,
);

fn seal(ring: &KeyRing, p: &PatientFacts) -> Result<Sealed, DbError> {
    let id = &p.id;
    let opt = |col: &str, v: Option<&str>| -> Result<Option<Vec<u8>>, DbError> {
        v.map(|v| ring.encrypt_str(&aad(col, id), v))
            .transpose()
            .map_err(DbError::from)
    };
    Ok((
        ring.encrypt_str(&aad("name", id), p.name.expose())?,
        opt("given", p.given.as_ref().map(PersonName::expose))?,
        opt("phone", p.phone.as_ref().map(Phone::expose))?,
        opt("email", p.email.as_ref().map(Email::expose))?,
        p.phone
            .as_ref()
            .map(|ph| ring.blind_index("phone", &normalize_phone(ph.expose()))),
        p.email
            .as_ref()
            .map(|e| ring.blind_index("email", &normalize_email(e.expose()))),
    ))
}

/// Inserts or replaces a patient's contact facts.
pub fn upsert(
    conn: &mut DbConn,
    ring: &KeyRing,
    p: &PatientFacts,
    now: DateTime<Utc>,
) -> Result<(), DbError> {
    let (name, given, phone, email, phone_index, email_index) = seal(ring, p)?;
    let key_id = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let tz = p.tz.map(|t| t.name().to_string());
    let values = (
        patients::name_enc.eq(&name),
        patients::given_enc.eq(&given),
        patients::phone_enc.eq(&phone),
        patients::email_enc.eq(&email),
        patients::phone_index.eq(&phone_index),
        patients::email_index.eq(&email_index),
        patients::language.eq(&p.language),
        patients::timezone.eq(&tz),
        patients::region.eq(&p.region),
        patients::key_id.eq(key_id),
        patients::updated_at.eq(super::ts(now)),
    );
    let updated = diesel::update(patients::table.find(&p.id))
        .set(values)
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(patients::table)
            .values((patients::fhir_id.eq(&p.id), values))
            .execute(conn)?;
    }
    Ok(())
}

/// A patient's contact facts, decrypted.
pub fn get(
    conn: &mut DbConn,
    ring: &KeyRing,
    fhir_id: &str,
) -> Result<Option<PatientFacts>, DbError> {
    Ok(load(conn, ring, fhir_id)?.map(|(mut p, alt)| {
        // A confidential-communications request for another number (H10)
        // replaces the EHR's number for every text and call.
        if let Some(a) = alt {
            p.phone = Some(Phone::new(a));
        }
        p
    }))
}

/// The EHR's facts as stored, and the patient's other number, if any.
fn load(
    conn: &mut DbConn,
    ring: &KeyRing,
    fhir_id: &str,
) -> Result<Option<(PatientFacts, Option<String>)>, DbError> {
    let row: Option<Row> = patients::table
        .find(fhir_id)
        .select((
            patients::fhir_id,
            patients::name_enc,
            patients::given_enc,
            patients::phone_enc,
            patients::email_enc,
            patients::language,
            patients::timezone,
            patients::region,
            patients::alt_phone_enc,
        ))
        .first(conn)
        .optional()?;
    let Some(r) = row else { return Ok(None) };
    let id = r.fhir_id;
    let open = |col: &str, v: Option<Vec<u8>>| -> Result<Option<String>, DbError> {
        v.map(|v| ring.decrypt_str(&aad(col, &id), &v))
            .transpose()
            .map_err(DbError::from)
    };
    let alt = open("alt_phone", r.alt_phone_enc)?;
    Ok(Some((
        PatientFacts {
            name: PersonName::new(ring.decrypt_str(&aad("name", &id), &r.name_enc)?),
            given: open("given", r.given_enc)?.map(PersonName::new),
            phone: open("phone", r.phone_enc)?.map(Phone::new),
            email: open("email", r.email_enc)?.map(Email::new),
            language: r.language,
            tz: r.timezone.and_then(|t| t.parse().ok()),
            region: r.region,
            id,
        },
        alt,
    )))
}

/// Sets (or with None, lifts) the patient's other number for texts and calls.
pub fn set_alt_phone(
    conn: &mut DbConn,
    ring: &KeyRing,
    fhir_id: &str,
    phone: Option<&str>,
) -> Result<bool, DbError> {
    let (enc, idx) = match phone {
        Some(ph) => (
            Some(ring.encrypt_str(&aad("alt_phone", fhir_id), ph)?),
            Some(ring.blind_index("phone", &normalize_phone(ph))),
        ),
        None => (None, None),
    };
    Ok(diesel::update(patients::table.find(fhir_id))
        .set((
            patients::alt_phone_enc.eq(enc),
            patients::alt_phone_index.eq(idx),
        ))
        .execute(conn)?
        == 1)
}

/// Patients whose phone matches (through the blind index).
pub fn find_by_phone(
    conn: &mut DbConn,
    ring: &KeyRing,
    phone: &str,
) -> Result<Vec<String>, DbError> {
    let idx = ring.blind_index("phone", &normalize_phone(phone));
    Ok(patients::table
        .filter(
            patients::phone_index
                .eq(&idx)
                .or(patients::alt_phone_index.eq(&idx)),
        )
        .select(patients::fhir_id)
        .load(conn)?)
}

/// Re-encrypts up to `limit` patients sealed by an older key; returns how many.
pub fn rekey_batch(
    conn: &mut DbConn,
    ring: &KeyRing,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<usize, DbError> {
    let active = i32::try_from(ring.active_id()).map_err(|e| DbError::Other(e.into()))?;
    let ids: Vec<String> = patients::table
        .filter(patients::key_id.ne(active))
        .select(patients::fhir_id)
        .limit(limit)
        .load(conn)?;
    for id in &ids {
        if let Some((p, alt)) = load(conn, ring, id)? {
            upsert(conn, ring, &p, now)?;
            if alt.is_some() {
                set_alt_phone(conn, ring, id, alt.as_deref())?;
            }
        }
    }
    Ok(ids.len())
}

/// Sets a patient's preferred language (from the preference page).
pub fn set_language(conn: &mut DbConn, fhir_id: &str, lang: &str) -> Result<bool, DbError> {
    Ok(diesel::update(patients::table.find(fhir_id))
        .set(patients::language.eq(lang))
        .execute(conn)?
        == 1)
}

/// Whether Herald holds `fhir_id`.
pub fn exists(conn: &mut DbConn, fhir_id: &str) -> Result<bool, DbError> {
    let n: i64 = patients::table
        .filter(patients::fhir_id.eq(fhir_id))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Every patient id Herald serves (the roster the poller walks), in order.
pub fn ids(conn: &mut DbConn) -> Result<Vec<String>, DbError> {
    Ok(patients::table
        .select(patients::fhir_id)
        .order(patients::fhir_id.asc())
        .load(conn)?)
}
