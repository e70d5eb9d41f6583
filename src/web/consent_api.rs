//! `GET /fhir/Consent` (search by patient, status, category, date; `_count`,
//! keyset `_cursor`; one page opened),
//! `GET /fhir/Consent/{id}`, `GET /fhir/Consent/{id}/_history` and
//! `POST /fhir/Consent`: the consent ledger as FHIR R4 (issue 5 §2). The
//! ledger never rewrites a Consent — a change is a new Consent — so each
//! resource has one version. Every access and every write is audited.
// serde_json::Value indexing yields Null for a missing key; it never panics.
#![allow(clippy::indexing_slicing)]

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::audit_api::{base_url, date_bounds, encode};
use super::{
    ApiError, AppState, access_record, internal, known_format, peer, per_patient, recorded_query,
};
use crate::audit;
use crate::db::audit_store::DateBound;
use crate::db::consents::{self, ConsentPage, ConsentSearch, StoredConsent};
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
        .unwrap_or_else(|| s.consent_id.clone());
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

/// GET /fhir/Consent: one page, in SQL (`_count`, keyset `_cursor`); only
/// the page's Consents are opened (issue 11 F5b).
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = params.into_inner();
    let mut q = ConsentSearch {
        limit: 50,
        ..ConsentSearch::default()
    };
    let mut statuses: Option<Vec<String>> = None;
    for (k, v) in &pairs {
        match k.as_str() {
            "patient" => q.patient = Some(v.trim_start_matches("Patient/").to_string()),
            "status" => statuses = Some(v.split(',').map(String::from).collect()),
            "category" => {
                q.category = Some(v.rsplit('|').next().unwrap_or_default().to_string());
            }
            "date" => {
                for b in date_bounds(v).map_err(|e| ApiError::new(&req, e))? {
                    match b {
                        DateBound::Ge(t) | DateBound::Gt(t) => q.from = Some(t.and_utc()),
                        DateBound::Lt(t) | DateBound::Le(t) => q.to = Some(t.and_utc()),
                    }
                }
            }
            "_count" => {
                let n = v
                    .parse::<i64>()
                    .map_err(|_| ApiError::new(&req, bad("_count must be a whole number")))?;
                q.limit = n.clamp(1, 1000);
            }
            "_cursor" => q.after = Some(v.clone()),
            "_format" => {}
            other => {
                return Err(ApiError::new(
                    &req,
                    bad(format!(
                        "unsupported search parameter {other:?} (supported: patient, status, category, date, _count, _cursor)"
                    )),
                ));
            }
        }
    }
    // The ledger holds active Consents only: a change is a new Consent.
    let nothing = statuses.is_some_and(|s| !s.iter().any(|x| x == "active"));
    let pairs: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| k != "_cursor").collect();
    let qs: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut record = access_record(&state, &req, consent_query(String::new()), None);
    let pool = state.pool.clone();
    let ring = state.ring.clone();
    let category = q.category.clone();
    let rows = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        // The audit log names a patient, and keeps the query's values, only
        // as far as Herald can vouch for them (F6c).
        let known = match &q.patient {
            Some(p) => patients::exists(&mut c, p)?,
            None => false,
        };
        record.activity = consent_query(recorded_query(&ring, &pairs, |k, v| match k {
            "patient" => known,
            "status" => v.split(',').all(|s| CONSENT_STATUS.contains(&s)),
            "category" => v == "59284-0" || v == "http://loinc.org|59284-0",
            "date" | "_count" => true,
            "_format" => known_format(v),
            _ => false,
        }));
        record.patient_id = q.patient.clone().filter(|_| known);
        let rows = if nothing {
            ConsentPage::default()
        } else {
            consents::search(&mut c, &ring, &q)?
        };
        let returned = rows.consents.iter().map(|r| r.patient_id.clone());
        audit::append_now(&mut c, &per_patient(record, returned))?;
        Ok(rows)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    let (page, more) = (rows.consents, rows.more);
    let base = base_url(&req, &state);
    let mut links =
        vec![json!({ "relation": "self", "url": format!("{base}/fhir/Consent?{}", qs.join("&")) })];
    if more && let Some(last) = page.last() {
        let mut next = qs.clone();
        next.push(format!("_cursor={}", encode(&last.row_id)));
        links.push(
            json!({ "relation": "next", "url": format!("{base}/fhir/Consent?{}", next.join("&")) }),
        );
    }
    let entries: Vec<Value> = page
        .iter()
        .filter_map(|s| {
            let v = served(s)?;
            // Rows recorded before categories were stored: read the Consent.
            let category_ok = s.categories.is_some()
                || category.as_deref().is_none_or(|c| {
                    v["category"].as_array().is_some_and(|cs| {
                        cs.iter().any(|cc| {
                            cc["coding"]
                                .as_array()
                                .is_some_and(|co| co.iter().any(|x| x["code"] == c))
                        })
                    })
                });
            category_ok.then_some(v)
        })
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
        "link": links,
        "entry": entries,
    })))
}

/// One Consent by id (through the ledger's `consent_id` index; one row
/// opened), audited as `_id=…` (`history`: `&_history` follows).
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
        let found = consents::get(&mut c, &ring, &id)?;
        // An id that names no Consent is the caller's text (F6c).
        let shown = if found.is_some() {
            encode(&id)
        } else {
            ring.untrusted_ref("audit-query", &id)
        };
        record.activity = consent_query(format!("_id={shown}{history}"));
        record.patient_id = found.as_ref().map(|r| r.patient_id.clone());
        audit::append_now(&mut c, &[record])?;
        Ok(found)
    })
    .await
    .map_err(|e| internal(req, e))?
    .map_err(|e| ApiError::new(req, e.into()))?;
    found
        .as_ref()
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
