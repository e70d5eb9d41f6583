//! `GET /fhir/Consent` (search by patient, status, category, date; `_count`),
//! `GET /fhir/Consent/{id}`, `GET /fhir/Consent/{id}/_history` and
//! `POST /fhir/Consent`: the consent ledger as FHIR R4 (issue 5 §2). The
//! ledger never rewrites a Consent — a change is a new Consent — so each
//! resource has one version. Every access and every write is audited.
// serde_json::Value indexing yields Null for a missing key; it never panics.
#![allow(clippy::indexing_slicing)]

use std::collections::BTreeSet;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::audit_api::{base_url, date_bounds, encode};
use super::{ApiError, AppState, access_record, internal, known_format, peer, recorded_query};
use crate::audit;
use crate::db::audit_store::DateBound;
use crate::db::consents::{self, StoredConsent};
use crate::db::patients;
use crate::domain::audit::{Activity, Actor};
use crate::error::AppError;
use crate::service::ingest::{self, IngestError};

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

fn bad(msg: impl Into<String>) -> AppError {
    AppError::BadRequest(msg.into())
}

/// FHIR R4 Consent.status codes.
const CONSENT_STATUS: [&str; 6] = [
    "draft",
    "proposed",
    "active",
    "rejected",
    "inactive",
    "entered-in-error",
];

fn consent_query(query: String) -> Activity {
    Activity::RecordQuery {
        resource_type: "Consent".into(),
        query,
    }
}

/// The served form of a stored Consent: its JSON with id and meta.
fn served(s: &StoredConsent) -> Option<Value> {
    let mut v: Value = serde_json::from_str(&s.resource).ok()?;
    // A ledger row without a usable Consent (legacy) is not served as FHIR.
    if v["resourceType"] != "Consent" {
        return None;
    }
    let id = v["id"]
        .as_str()
        .map(String::from)
        .unwrap_or_else(|| s.row_id.clone());
    let obj = v.as_object_mut()?;
    obj.insert("id".into(), json!(id));
    obj.insert(
        "meta".into(),
        json!({
            "versionId": "1",
            "lastUpdated": s.recorded_at.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }),
    );
    Some(v)
}

/// Distinct Consents (a multi-purpose Consent is several ledger rows).
fn distinct(rows: &[StoredConsent]) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    rows.iter()
        .filter_map(served)
        .filter(|v| seen.insert(v["id"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// GET /fhir/Consent
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = params.into_inner();
    let mut patient = None;
    let mut status = None;
    let mut category = None;
    let (mut from, mut to) = (None, None);
    let mut count: usize = 50;
    for (k, v) in &pairs {
        match k.as_str() {
            "patient" => patient = Some(v.trim_start_matches("Patient/").to_string()),
            "status" => status = Some(v.clone()),
            "category" => category = Some(v.rsplit('|').next().unwrap_or_default().to_string()),
            "date" => {
                for b in date_bounds(v).map_err(|e| ApiError::new(&req, e))? {
                    match b {
                        DateBound::Ge(t) | DateBound::Gt(t) => from = Some(t.and_utc()),
                        DateBound::Lt(t) | DateBound::Le(t) => to = Some(t.and_utc()),
                    }
                }
            }
            "_count" => {
                count = v
                    .parse::<usize>()
                    .map_err(|_| ApiError::new(&req, bad("_count must be a whole number")))?
                    .clamp(1, 1000);
            }
            "_format" => {}
            other => {
                return Err(ApiError::new(
                    &req,
                    bad(format!(
                        "unsupported search parameter {other:?} (supported: patient, status, category, date, _count)"
                    )),
                ));
            }
        }
    }
    let qs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut record = access_record(&state, &req, consent_query(String::new()), None);
    let pool = state.pool.clone();
    let ring = state.ring.clone();
    let rows = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        // The audit log names a patient, and keeps the query's values, only
        // as far as Herald can vouch for them (F6c).
        let known = match &patient {
            Some(p) => patients::exists(&mut c, p)?,
            None => false,
        };
        record.activity = consent_query(recorded_query(&ring, &pairs, |k, v| match k {
            "patient" => known,
            "status" => CONSENT_STATUS.contains(&v),
            "category" => v == "59284-0" || v == "http://loinc.org|59284-0",
            "date" | "_count" => true,
            "_format" => known_format(v),
            _ => false,
        }));
        record.patient_id = patient.clone().filter(|_| known);
        let rows = consents::search(&mut c, &ring, patient.as_deref(), from, to, 10_000)?;
        audit::append_now(&mut c, &[record])?;
        Ok(rows)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    let base = base_url(&req, &state);
    let entries: Vec<Value> = distinct(&rows)
        .into_iter()
        .filter(|v| status.as_deref().is_none_or(|s| v["status"] == s))
        .filter(|v| {
            category.as_deref().is_none_or(|c| {
                v["category"].as_array().is_some_and(|cs| {
                    cs.iter().any(|cc| {
                        cc["coding"]
                            .as_array()
                            .is_some_and(|co| co.iter().any(|x| x["code"] == c))
                    })
                })
            })
        })
        .take(count)
        .map(|v| {
            json!({
                "fullUrl": format!("{base}/fhir/Consent/{}", v["id"].as_str().unwrap_or_default()),
                "resource": v,
                "search": { "mode": "match" },
            })
        })
        .collect();
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": [{ "relation": "self", "url": format!("{base}/fhir/Consent?{}", qs.join("&")) }],
        "entry": entries,
    })))
}

/// One Consent by id, audited as `_id=…` (`history`: `&_history` follows).
async fn load_one(
    req: &HttpRequest,
    state: &AppState,
    id: &str,
    history: bool,
) -> Result<Value, ApiError> {
    let history = if history { "&_history" } else { "" };
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ApiError::new(req, AppError::NotFound));
    }
    let pool = state.pool.clone();
    let ring = state.ring.clone();
    let mut record = access_record(state, req, consent_query(String::new()), None);
    let id = id.to_string();
    let found = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let recorded = |found: bool| {
            // An id that names no Consent is the caller's text (F6c).
            let shown = if found {
                encode(&id)
            } else {
                ring.untrusted_ref("audit-query", &id)
            };
            consent_query(format!("_id={shown}{history}"))
        };
        // A multi-purpose Consent is stored as id-0, id-1, …; read the first.
        let mut found = None;
        for row in [id.clone(), format!("{id}-0")] {
            if let Some(r) = consents::resource(&mut c, &ring, &row)? {
                found = Some((row, r));
                break;
            }
        }
        let rows = match &found {
            Some((row, _)) => consents::search(&mut c, &ring, None, None, None, 1_000_000)?
                .into_iter()
                .filter(|s| &s.row_id == row)
                .collect::<Vec<_>>(),
            None => Vec::new(),
        };
        record.patient_id = rows.first().map(|r| r.patient_id.clone());
        record.activity = recorded(!rows.is_empty());
        audit::append_now(&mut c, &[record])?;
        Ok(rows)
    })
    .await
    .map_err(|e| internal(req, e))?
    .map_err(|e| ApiError::new(req, e.into()))?;
    found
        .first()
        .and_then(served)
        .ok_or_else(|| ApiError::new(req, AppError::NotFound))
}

/// GET /fhir/Consent/{id}
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let v = load_one(&req, &state, &id, false).await?;
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(v))
}

/// GET /fhir/Consent/{id}/_history: every version (the ledger never
/// rewrites a Consent, so there is one).
pub async fn history(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let v = load_one(&req, &state, &id, true).await?;
    let base = base_url(&req, &state);
    let last = v["meta"]["lastUpdated"].clone();
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": 1,
        "entry": [{
            "fullUrl": format!("{base}/fhir/Consent/{}", id.as_str()),
            "resource": v,
            "request": { "method": "POST", "url": "Consent" },
            "response": { "status": "201 Created", "lastModified": last },
        }],
    })))
}

/// POST /fhir/Consent: records a Consent given outside the EHR (e.g. by a
/// clinician on the patient's behalf); 201 with Location.
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let mut v: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(&req, bad("the body is not JSON")))?;
    if v["resourceType"] != "Consent" {
        return Err(ApiError::new(&req, bad("resourceType must be Consent")));
    }
    if v["status"] != "active" {
        return Err(ApiError::new(
            &req,
            bad("only an active Consent is recorded (status = active)"),
        ));
    }
    if v["policyRule"].is_null() && v["policy"].is_null() {
        return Err(ApiError::new(
            &req,
            bad("a Consent needs policy or policyRule (FHIR ppc-1)"),
        ));
    }
    // The server assigns the id.
    let id = uuid::Uuid::new_v4().to_string();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("id".into(), json!(id));
        obj.remove("meta");
    }
    let st = state.clone();
    let who = Actor::Anonymous(peer(&req));
    let raw = v.clone();
    let result = web::block(move || -> Result<bool, IngestError> {
        let mut c = st.pool.get().map_err(|e| IngestError::Db(e.into()))?;
        ingest::record_consent(
            &mut c,
            &st.ring,
            st.clock.as_ref(),
            &raw,
            "api",
            who,
            None,
            ingest::FutureDated::Refuse,
        )
    })
    .await
    .map_err(|e| internal(&req, e))?;
    match result {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::new(&req, AppError::Conflict)),
        Err(e @ (IngestError::Parse(_) | IngestError::Refused { .. })) => {
            return Err(ApiError::new(&req, bad(e.to_string())));
        }
        Err(IngestError::Db(e)) => return Err(ApiError::new(&req, e.into())),
    }
    let base = base_url(&req, &state);
    let stored = load_one(&req, &state, &id, false).await?;
    Ok(HttpResponse::Created()
        .content_type(FHIR_JSON)
        .insert_header(("Location", format!("{base}/fhir/Consent/{id}/_history/1")))
        .json(stored))
}
