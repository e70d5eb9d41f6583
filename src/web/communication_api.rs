//! `GET /fhir/Communication` (search by patient, status, sent, category;
//! `_count`, keyset paging) and `GET /fhir/Communication/{id}`: every
//! message Herald sent or held back, as FHIR. Each access is audited.
// serde_json::Value indexing yields Null for a missing key; it never panics.
#![allow(clippy::indexing_slicing)]

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::audit_api::{base_url, date_bounds, encode};
use super::{
    ApiError, AppState, access_record, internal, known_format, per_patient, recorded_query,
};
use crate::audit;
use crate::db::audit_store::DateBound;
use crate::db::outbox::{self, Search};
use crate::domain::audit::Activity;
use crate::error::AppError;
use crate::fhir::communication::{self as comm, PURPOSE_SYSTEM};

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

fn bad(msg: impl Into<String>) -> AppError {
    AppError::BadRequest(msg.into())
}

fn parse(pairs: &[(String, String)]) -> Result<(Search, Option<String>), AppError> {
    let mut s = Search {
        limit: 50,
        ..Search::default()
    };
    let mut category = None;
    for (k, v) in pairs {
        match k.as_str() {
            "patient" | "subject" | "recipient" => {
                s.patient = Some(v.trim_start_matches("Patient/").to_string());
            }
            "status" => {
                let mut states = Vec::new();
                for one in v.split(',') {
                    let st = comm::states_for(one).ok_or_else(|| {
                        bad(format!(
                            "status={one:?}: use completed, not-done or stopped"
                        ))
                    })?;
                    states.extend(st.iter().map(|x| (*x).to_string()));
                }
                s.states = Some(states);
            }
            "sent" => {
                for b in date_bounds(v)? {
                    match b {
                        DateBound::Ge(t) | DateBound::Gt(t) => s.sent_from = Some(t.and_utc()),
                        DateBound::Lt(t) | DateBound::Le(t) => s.sent_to = Some(t.and_utc()),
                    }
                }
            }
            "category" => {
                let code = v.rsplit('|').next().unwrap_or_default();
                match code {
                    "appointment" | "medication" | "billing" | "marketing" => {
                        s.purposes = Some(vec![code.to_string()]);
                    }
                    "reminder" | "notification" => category = Some(code.to_string()),
                    _ => {
                        return Err(bad(format!(
                            "category={v:?}: use reminder, notification or a purpose ({PURPOSE_SYSTEM}|appointment)"
                        )));
                    }
                }
            }
            "_count" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("_count must be a whole number"))?;
                s.limit = n.clamp(1, 1000);
            }
            "_cursor" => s.after = Some(v.clone()),
            "_format" => {}
            other => {
                return Err(bad(format!(
                    "unsupported search parameter {other:?} (supported: patient, status, sent, category, _count)"
                )));
            }
        }
    }
    Ok((s, category))
}

fn communication_query(query: String) -> Activity {
    Activity::RecordQuery {
        resource_type: "Communication".into(),
        query,
    }
}

/// GET /fhir/Communication
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = params.into_inner();
    let (q, category) = parse(&pairs).map_err(|e| ApiError::new(&req, e))?;
    let qs: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let mut record = access_record(&state, &req, communication_query(String::new()), None);
    let pool = state.pool.clone();
    let ring = state.ring.clone();
    let mut probe = q.clone();
    probe.limit = q.limit + 1;
    let q_limit = q.limit;
    let only = category.clone();
    let rows = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        // The audit log names a patient, and keeps the query's values, only
        // as far as Herald can vouch for them (F6c); every other value was
        // checked against a closed vocabulary or parsed by `parse`.
        let known = match &probe.patient {
            Some(p) => crate::db::patients::exists(&mut c, p)?,
            None => false,
        };
        let recorded: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k != "_cursor")
            .cloned()
            .collect();
        record.activity = communication_query(recorded_query(&ring, &recorded, |k, v| match k {
            "patient" | "subject" | "recipient" => known,
            "status" | "sent" | "category" | "_count" => true,
            "_format" => known_format(v),
            _ => false,
        }));
        record.patient_id = probe.patient.clone().filter(|_| known);
        let rows = outbox::search(&mut c, &probe)?;
        // The probe row beyond the page is not returned, so not disclosed.
        let returned = rows
            .iter()
            .take(usize::try_from(q_limit).unwrap_or(0))
            .filter(|i| {
                only.as_deref()
                    .is_none_or(|c| comm::category_of(&i.kind) == c)
            })
            .map(|i| i.patient_id.clone());
        audit::append_now(&mut c, &per_patient(record, returned))?;
        Ok(rows)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > q.limit;
    let page: Vec<_> = rows
        .into_iter()
        .take(usize::try_from(q.limit).unwrap_or(0))
        .collect();
    let base = base_url(&req, &state);
    let mut links = vec![
        json!({ "relation": "self", "url": format!("{base}/fhir/Communication?{}", qs.join("&")) }),
    ];
    if more && let Some(last) = page.last() {
        let mut next = qs.clone();
        next.push(format!("_cursor={}", encode(&last.id)));
        links.push(json!({ "relation": "next", "url": format!("{base}/fhir/Communication?{}", next.join("&")) }));
    }
    let entries: Vec<Value> = page
        .iter()
        .filter(|i| {
            category
                .as_deref()
                .is_none_or(|c| comm::category_of(&i.kind) == c)
        })
        .map(|i| {
            json!({
                "fullUrl": format!("{base}/fhir/Communication/{}", i.id),
                "resource": comm::communication(i),
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

/// GET /fhir/Communication/{id}
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if id.is_empty() || id.len() > 64 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ApiError::new(&req, AppError::NotFound));
    }
    let pool = state.pool.clone();
    let ring = state.ring.clone();
    let mut record = access_record(&state, &req, communication_query(String::new()), None);
    let row = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let row = outbox::get(&mut c, &id)?;
        record.patient_id = row.as_ref().map(|r| r.patient_id.clone());
        // An id that names no message is the caller's text (F6c).
        let shown = if row.is_some() {
            id.clone()
        } else {
            ring.untrusted_ref("audit-query", &id)
        };
        record.activity = communication_query(format!("_id={shown}"));
        audit::append_now(&mut c, &[record])?;
        Ok(row)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    match row {
        Some(i) if !["pending", "leased", "withdrawn"].contains(&i.state.as_str()) => {
            Ok(HttpResponse::Ok()
                .content_type(FHIR_JSON)
                .json(comm::communication(&i)))
        }
        _ => Err(ApiError::new(&req, AppError::NotFound)),
    }
}
