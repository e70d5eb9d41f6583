//! `GET /fhir/AuditEvent` (FHIR R4 search: date, patient, agent, entity,
//! type, subtype, action, outcome, `_count`, `_sort`, keyset paging — see
//! [`crate::audit::search`]) and `GET /fhir/AuditEvent/{id}`.
//!
//! Every read of the audit log, here and on the /audit page, passes
//! [`authorize_auditor`] first and writes its own AuditEvent (reference/fhir.md
//! §1.4 A9) before any record leaves: a read whose record cannot be written
//! fails.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::{ApiError, AppState, access_record, internal};
use crate::audit::{self, search};
use crate::db::audit_store::{self, AuditRow, DateBound};
use crate::domain::audit::{Activity, Actor, AuditRecord};
use crate::error::AppError;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// How an auditor reaches the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The FHIR API, `/fhir/AuditEvent`: a bearer token.
    Api,
    /// The /audit page and its export: a staff session.
    Page,
}

/// **The** access check for reading the audit log: every handler of
/// `/fhir/AuditEvent` and `/audit` calls it before anything else, and nothing
/// else decides who may read the log (`tests/tidy.rs` checks that each
/// handler calls it). It returns who is reading, for the AuditEvent the read
/// writes.
///
/// The role check goes here: with [`Via::Api`] a bearer token, with
/// [`Via::Page`] a staff session, and only the auditor role passes (a
/// clinician's token gets 403 `Forbidden`, no credentials 401). Until staff
/// sign-in exists, Herald listens on loopback only (`server.allow_non_loopback`)
/// and the caller is recorded by address, as every other API does.
pub(crate) async fn authorize_auditor(
    req: &HttpRequest,
    state: &AppState,
    via: Via,
) -> Result<Actor, ApiError> {
    // The API is for programs: a bearer token, never a browser's cookie
    // (which a cross-site request would carry). The page takes the session
    // (or a token, for scripts that fetch the exports).
    // An API client the access table let through (`system/AuditEvent.rs`).
    if via == Via::Api
        && let caller @ super::access::Caller::ApiClient(_) = super::access::Caller::of(req)
    {
        return Ok(caller.actor(super::peer(req)));
    }
    if via == Via::Api && req.headers().get("authorization").is_none() {
        return Err(ApiError::new(req, crate::error::AppError::Unauthorized));
    }
    let staff = super::staff::require(req, state, &[super::staff::Role::Auditor]).await?;
    Ok(Actor::Staff(staff.user_id))
}

/// The AuditEvent for a read of the log by `actor`, about `patient` if any.
pub(crate) fn audit_read_record(
    state: &AppState,
    req: &HttpRequest,
    actor: &Actor,
    query: String,
    patient: Option<String>,
) -> AuditRecord {
    let mut r = access_record(state, req, Activity::AuditQuery { query }, patient);
    r.actor = actor.clone();
    r
}

/// The records a search writes: one per patient it names (BALP, A5), or one.
pub(crate) fn search_records(
    state: &AppState,
    req: &HttpRequest,
    actor: &Actor,
    q: &audit_store::AuditQuery,
    query: &str,
) -> Vec<AuditRecord> {
    let patients = search::patients(q);
    if patients.is_empty() {
        return vec![audit_read_record(state, req, actor, query.into(), None)];
    }
    patients
        .into_iter()
        .map(|p| audit_read_record(state, req, actor, query.into(), Some(p)))
        .collect()
}

/// Parses a FHIR date search value with its prefix into bounds (shared with
/// the Consent and Communication searches).
pub(crate) fn date_bounds(raw: &str) -> Result<Vec<DateBound>, AppError> {
    search::date_bounds(raw).map_err(|e| AppError::BadRequest(e.0))
}

/// Bundle links' base (F8b): from the configuration only, never the
/// request's Host or X-Forwarded-*.
pub(crate) fn base_url(_req: &HttpRequest, state: &AppState) -> String {
    state.settings.server.base_url()
}

pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The query string again, with `_cursor` replaced.
pub(crate) fn query_string(pairs: &[(String, String)], cursor: Option<&str>) -> String {
    let mut parts: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k != "_cursor")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    if let Some(c) = cursor {
        parts.push(format!("_cursor={}", encode(c)));
    }
    parts.join("&")
}

/// A JSON string literal.
fn js(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// The searchset Bundle, written around the stored AuditEvent JSON as it is
/// (Herald wrote it and the chain hash covers those exact bytes), so a page
/// costs no parse and re-serialisation of its resources.
fn bundle(
    base: &str,
    self_url: &str,
    next_url: Option<&str>,
    rows: &[AuditRow],
    total: Option<usize>,
) -> String {
    let mut out =
        String::with_capacity(256 + rows.iter().map(|r| r.resource.len() + 160).sum::<usize>());
    out.push_str(r#"{"resourceType":"Bundle","type":"searchset","#);
    if let Some(t) = total {
        out.push_str(&format!(r#""total":{t},"#));
    }
    out.push_str(r#""link":[{"relation":"self","url":"#);
    out.push_str(&js(self_url));
    out.push('}');
    if let Some(n) = next_url {
        out.push_str(r#",{"relation":"next","url":"#);
        out.push_str(&js(n));
        out.push('}');
    }
    out.push_str(r#"],"entry":["#);
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"fullUrl":"#);
        out.push_str(&js(&format!("{base}/fhir/AuditEvent/{}", r.id)));
        out.push_str(r#","resource":"#);
        out.push_str(&r.resource);
        out.push_str(r#","search":{"mode":"match"}}"#);
    }
    out.push_str("]}");
    out
}

/// GET /fhir/AuditEvent
pub async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    params: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize_auditor(&req, &state, Via::Api).await?;
    let pairs = params.into_inner();
    let q = search::parse(&pairs).map_err(|e| ApiError::new(&req, AppError::BadRequest(e.0)))?;
    let cursor = q.cursor.map(|(t, s)| search::cursor_token(t, s));
    let self_query = query_string(&pairs, cursor.as_deref());
    let records = search_records(&state, &req, &actor, &q, &self_query);
    let pool = state.pool.clone();
    let query = q.clone();
    let page = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let page = search::run(&mut c, &query)?;
        audit::append_now(&mut c, &records)?;
        Ok(page)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    let base = base_url(&req, &state);
    let self_url = format!("{base}/fhir/AuditEvent?{self_query}");
    let next_url = page
        .next
        .as_deref()
        .map(|c| format!("{base}/fhir/AuditEvent?{}", query_string(&pairs, Some(c))));
    // The total is known without counting only when the first page holds
    // everything; otherwise it is left out (never a COUNT over the log).
    let total = (q.cursor.is_none() && page.next.is_none()).then_some(page.rows.len());
    Ok(HttpResponse::Ok().content_type(FHIR_JSON).body(bundle(
        &base,
        &self_url,
        next_url.as_deref(),
        &page.rows,
        total,
    )))
}

/// GET /fhir/AuditEvent/{id}
pub async fn read(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize_auditor(&req, &state, Via::Api).await?;
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
    let mut record = audit_read_record(&state, &req, &actor, format!("_id={id}"), None);
    let row = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let row = audit_store::get(&mut c, &id)?;
        // The read is about the event's patient, when it names one.
        record.patient_id = row
            .as_ref()
            .and_then(|r| r.patient_ref.as_deref())
            .map(|p| p.trim_start_matches("Patient/").to_string());
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
    let param =
        |name: &str, ty: &str, doc: &str| json!({ "name": name, "type": ty, "documentation": doc });
    let mut body = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-08",
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
                    param("date", "date", "recorded; prefixes eq, ge, gt, le, lt; the value's precision sets its range (UTC)"),
                    param("patient", "reference", "Patient/x or x"),
                    param("agent", "reference", "the requesting agent: user:<id>, herald or anonymous; or agent:identifier=urn:herald:user|<id>"),
                    param("entity", "reference", "a typed reference: the patient or the data entity"),
                    param("type", "token", "code or system|code"),
                    param("subtype", "token", "code or system|code"),
                    param("action", "token", "C, R, U, D, E"),
                    param("outcome", "token", "0, 4, 8, 12"),
                    param("_count", "number", "page size, 1 to 1000 (default 50)"),
                    param("_sort", "string", "date or -date; pages follow Bundle.link next (keyset: stable while events are added); no total count"),
                ]
            }]
        }]
    });
    if state.api.enabled() {
        // SMART Backend Services: API clients bring a bearer token of an `[api]`
        // issuer; the first issuer's token endpoint is advertised.
        let mut security = json!({
            "cors": false,
            "service": [{
                "coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                    "code": "SMART-on-FHIR",
                }],
                "text": "OAuth2 bearer tokens (SMART Backend Services, system scopes)",
            }],
            "description": "Bearer tokens: SMART v2 system scopes (system/Consent.rs, system/Consent.c, system/Communication.rs, system/AuditEvent.rs; v1 equivalents accepted), or a staff API token",
        });
        if let Some(token) = state.api.token_endpoint().await
            && let Some(o) = security.as_object_mut()
        {
            o.insert(
                "extension".into(),
                json!([{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [{ "url": "token", "valueUri": token }],
                }]),
            );
        }
        if let Some(rest) = body
            .pointer_mut("/rest/0")
            .and_then(serde_json::Value::as_object_mut)
        {
            rest.insert("security".into(), security);
        }
    }
    HttpResponse::Ok().content_type(FHIR_JSON).json(body)
}
