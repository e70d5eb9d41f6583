//! `GET /fhir/AuditEvent` (basic search: patient, date, _count, _sort,
//! keyset paging) and `GET /fhir/AuditEvent/{id}`. Reading the log is itself
//! audited (reference/fhir.md §1.4 A9). Loopback only until staff sign-in.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};

use super::{ApiError, AppState, access_record, internal};
use crate::audit;
use crate::db::audit_store::{self, AuditQuery, DateBound};
use crate::domain::audit::Activity;
use crate::error::AppError;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
const DEFAULT_COUNT: i64 = 50;
const MAX_COUNT: i64 = 1000;

fn bad(msg: impl Into<String>) -> AppError {
    AppError::BadRequest(msg.into())
}

/// Parses a FHIR date search value with its prefix into bounds.
pub(crate) fn date_bounds(raw: &str) -> Result<Vec<DateBound>, AppError> {
    let (prefix, value) = match raw.get(..2) {
        Some(p @ ("eq" | "ge" | "gt" | "le" | "lt")) => (p, raw.get(2..).unwrap_or_default()),
        _ => ("eq", raw),
    };
    // The implicit range of the value (a day, or an instant).
    let (lo, hi): (NaiveDateTime, NaiveDateTime) = if let Ok(d) =
        NaiveDate::parse_from_str(value, "%Y-%m-%d")
    {
        let start = d.and_hms_opt(0, 0, 0).ok_or_else(|| bad("bad date"))?;
        (start, start + chrono::Duration::days(1))
    } else if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        let t = t.with_timezone(&Utc).naive_utc();
        (t, t + chrono::Duration::microseconds(1))
    } else {
        return Err(bad(format!(
            "date={raw:?} is not a FHIR date search value such as ge2026-12-01 or lt2026-12-01T17:00:00Z"
        )));
    };
    Ok(match prefix {
        "ge" => vec![DateBound::Ge(lo)],
        "gt" => vec![DateBound::Ge(hi)],
        "le" => vec![DateBound::Lt(hi)],
        "lt" => vec![DateBound::Lt(lo)],
        _ => vec![DateBound::Ge(lo), DateBound::Lt(hi)],
    })
}

fn parse_query(pairs: &[(String, String)]) -> Result<AuditQuery, AppError> {
    let mut q = AuditQuery {
        limit: DEFAULT_COUNT,
        ..AuditQuery::default()
    };
    for (k, v) in pairs {
        match k.as_str() {
            "patient" => {
                let id = v.strip_prefix("Patient/").unwrap_or(v);
                if id.is_empty() {
                    return Err(bad("patient must name a Patient, e.g. patient=Patient/123"));
                }
                q.patient_ref = Some(format!("Patient/{id}"));
            }
            "date" => q.dates.extend(date_bounds(v)?),
            "_count" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("_count must be a whole number"))?;
                q.limit = n.clamp(1, MAX_COUNT);
            }
            "_sort" => match v.as_str() {
                "date" | "_lastUpdated" => q.descending = false,
                "-date" | "-_lastUpdated" => q.descending = true,
                _ => return Err(bad("_sort supports date and -date")),
            },
            "_cursor" => {
                q.cursor = Some(
                    parse_cursor(v)
                        .ok_or_else(|| bad("_cursor is not a paging token Herald issued"))?,
                )
            }
            "_format" => {}
            other => {
                // Silently ignoring a filter would mislead an auditor.
                return Err(bad(format!(
                    "search parameter {other:?} is not supported here; supported: patient, date, _count, _sort"
                )));
            }
        }
    }
    Ok(q)
}

/// Paging token: microseconds since the epoch and seq of the last entry.
fn cursor_token(recorded: NaiveDateTime, seq: i64) -> String {
    format!("{}.{}", recorded.and_utc().timestamp_micros(), seq)
}

fn parse_cursor(s: &str) -> Option<(NaiveDateTime, i64)> {
    let (t, seq) = s.split_once('.')?;
    let t = DateTime::from_timestamp_micros(t.parse().ok()?)?.naive_utc();
    Some((t, seq.parse().ok()?))
}

pub(crate) fn base_url(req: &HttpRequest, state: &AppState) -> String {
    match &state.settings.server.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let ci = req.connection_info();
            format!("{}://{}", ci.scheme(), ci.host())
        }
    }
}

pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn query_string(pairs: &[(String, String)], cursor: Option<String>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    if let Some(c) = cursor {
        parts.push(format!("_cursor={}", encode(&c)));
    }
    parts.join("&")
}

/// GET /fhir/AuditEvent
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let pairs = params.into_inner();
    let q = parse_query(&pairs).map_err(|e| ApiError::new(&req, e))?;
    let record = access_record(
        &state,
        &req,
        Activity::AuditQuery {
            query: query_string(&pairs, q.cursor.map(|(t, s)| cursor_token(t, s))),
        },
        q.patient_ref
            .as_ref()
            .map(|p| p.trim_start_matches("Patient/").to_string()),
    );
    let pool = state.pool.clone();
    let mut probe = q.clone();
    probe.limit = q.limit + 1;
    let rows = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let rows = audit_store::search(&mut c, &probe)?;
        audit::append_now(&mut c, &[record])?;
        Ok(rows)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    let base = base_url(&req, &state);
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > q.limit;
    let page: Vec<_> = rows
        .into_iter()
        .take(usize::try_from(q.limit).unwrap_or(0))
        .collect();
    let mut links = vec![
        json!({ "relation": "self", "url": format!("{base}/fhir/AuditEvent?{}", query_string(&pairs, q.cursor.map(|(t, s)| cursor_token(t, s)))) }),
    ];
    if more && let Some(last) = page.last() {
        links.push(json!({ "relation": "next", "url": format!("{base}/fhir/AuditEvent?{}", query_string(&pairs, Some(cursor_token(last.recorded, last.seq)))) }));
    }
    let entries: Vec<Value> = page
        .iter()
        .filter_map(|r| {
            let resource: Value = serde_json::from_str(&r.resource).ok()?;
            Some(json!({
                "fullUrl": format!("{base}/fhir/AuditEvent/{}", r.id),
                "resource": resource,
                "search": { "mode": "match" },
            }))
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": entries,
    });
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).json(bundle))
}

/// GET /fhir/AuditEvent/{id}
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner();
    if id.is_empty()
        || id.len() > 64
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        return Err(ApiError::new(&req, AppError::NotFound));
    }
    let pool = state.pool.clone();
    let record = access_record(
        &state,
        &req,
        Activity::AuditQuery {
            query: format!("_id={id}"),
        },
        None,
    );
    let row = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let row = audit_store::get(&mut c, &id)?;
        audit::append_now(&mut c, &[record])?;
        Ok(row)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    match row {
        Some(r) => Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(r.resource)),
        None => Err(ApiError::new(&req, AppError::NotFound)),
    }
}

/// GET /fhir/metadata: what this endpoint offers (FHIR R4 CapabilityStatement).
pub async fn metadata(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let base = base_url(&req, &state);
    HttpResponse::Ok().content_type(FHIR_JSON).json(json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-01",
        "kind": "instance",
        "software": { "name": "Herald", "version": env!("CARGO_PKG_VERSION") },
        "implementation": { "description": "Herald patient messaging", "url": format!("{base}/fhir") },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "resource": [{
                "type": "AuditEvent",
                "interaction": [{ "code": "read" }, { "code": "search-type" }],
                "searchParam": [
                    { "name": "patient", "type": "reference" },
                    { "name": "date", "type": "date" },
                    { "name": "_count", "type": "number" },
                    { "name": "_sort", "type": "string" }
                ]
            }]
        }]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> NaiveDateTime {
        DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&Utc)
            .naive_utc()
    }

    #[test]
    fn date_prefixes() {
        assert_eq!(
            date_bounds("2026-12-01").unwrap(),
            vec![
                DateBound::Ge(dt("2026-12-01T00:00:00Z")),
                DateBound::Lt(dt("2026-12-02T00:00:00Z"))
            ]
        );
        assert_eq!(
            date_bounds("ge2026-12-01").unwrap(),
            vec![DateBound::Ge(dt("2026-12-01T00:00:00Z"))]
        );
        assert_eq!(
            date_bounds("le2026-12-01").unwrap(),
            vec![DateBound::Lt(dt("2026-12-02T00:00:00Z"))]
        );
        assert_eq!(
            date_bounds("lt2026-12-01T17:00:00Z").unwrap(),
            vec![DateBound::Lt(dt("2026-12-01T17:00:00Z"))]
        );
        assert!(date_bounds("yesterday").is_err());
    }

    #[test]
    fn unknown_parameters_are_refused() {
        let e = parse_query(&[("subtype".into(), "read".into())]).unwrap_err();
        assert!(e.public_message().contains("subtype"));
        let q = parse_query(&[
            ("patient".into(), "p1".into()),
            ("_count".into(), "5000".into()),
        ])
        .unwrap();
        assert_eq!(q.patient_ref.as_deref(), Some("Patient/p1"));
        assert_eq!(q.limit, MAX_COUNT);
    }
}
