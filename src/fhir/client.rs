//! Herald's FHIR R4 client for the EHR.
//!
//! fhir-sdk's own HTTP client announces `fhirVersion=4.3` on every request and
//! cannot be told otherwise (reference/feasibility.md §3), which a strict R4
//! server answers with 406/415. So the transport is reqwest with R4 headers,
//! and fhir-sdk's models do what they are good at: [`strict_check`] refuses
//! to write a resource its R4(B) model rejects (strict on output), while reads
//! stay raw JSON, parsed entry by entry by `fhir::*_facts` (lenient on input:
//! unknown elements, extensions and codes are kept or ignored; one bad entry
//! is skipped, never the page). Writes send Herald's own JSON untouched, so
//! vendor elements Herald did not understand are never dropped.
//!
//! Every call is journalled as a BALP AuditEvent record (A2–A6; one per
//! patient for a search page, A5). Callers [`FhirClient::take_audit`] and
//! append the records in the transaction that stores what the call brought.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::clock::Clock;
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome, RestInteraction};
use crate::smart::backend::{BackendAuth, TokenError};

/// The FHIR R4 JSON media type, with the version parameter R4 defines.
pub const FHIR_JSON_R4: &str = "application/fhir+json; fhirVersion=4.0";

/// Why a FHIR call failed.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    /// No token.
    #[error(transparent)]
    Auth(#[from] TokenError),
    /// A non-success answer (after retries).
    #[error("the EHR answered {status} to {what}{detail}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The interaction (`search Appointment`), no PHI.
        what: String,
        /// The OperationOutcome's first diagnostics, prefixed with ": ".
        detail: String,
    },
    /// If-Match failed: the resource changed since Herald read it.
    #[error("the resource changed on the EHR since Herald read it (412)")]
    Conflict,
    /// Network, TLS or timeout.
    #[error("cannot reach the EHR: {0}")]
    Network(String),
    /// The answer is not what FHIR promises.
    #[error("the EHR's answer is not usable FHIR JSON: {0}")]
    Invalid(String),
    /// A `next` link to another origin.
    #[error("refused to follow a paging link to another origin: {0}")]
    Origin(String),
    /// Herald itself would write invalid FHIR.
    #[error("Herald would write an invalid {0}")]
    Strict(String),
}

/// Shortens a reqwest error to its kind and cause, without the URL (which
/// may carry a patient id in a query).
pub fn short(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_decode() {
        "bad body"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        cause = s.to_string();
        src = s.source();
    }
    if cause.is_empty() {
        kind.into()
    } else {
        format!("{kind} ({cause})")
    }
}

/// Refuses a resource the fhir-sdk R4(B) model does not accept: a missing
/// required element, a code outside a required value set (strict on output).
pub fn strict_check(resource: &Value) -> Result<(), FhirError> {
    let rt = resource["resourceType"]
        .as_str()
        .unwrap_or("resource")
        .to_string();
    serde_json::from_value::<fhir_sdk::r4b::resources::Resource>(resource.clone())
        .map(|_| ())
        .map_err(|e| FhirError::Strict(format!("{rt}: {e}")))
}

/// The patients a resource is about (for audit, A4/A5).
pub fn patients_of(resource: &Value) -> Vec<String> {
    let mut out = Vec::new();
    match resource["resourceType"].as_str() {
        Some("Patient") => {
            if let Some(id) = resource["id"].as_str() {
                out.push(id.to_string());
            }
        }
        Some("Appointment") => {
            for p in resource["participant"].as_array().into_iter().flatten() {
                if let Some(id) = super::reference_id(&p["actor"], "Patient") {
                    out.push(id);
                }
            }
        }
        _ => {
            for key in ["subject", "patient", "beneficiary"] {
                if let Some(id) = super::reference_id(&resource[key], "Patient") {
                    out.push(id);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A created resource.
#[derive(Debug, Clone)]
pub struct Created {
    /// Logical id (from Location, else the body).
    pub id: Option<String>,
    /// The body the server returned (may be empty with `Prefer: return=minimal`).
    pub body: Option<Value>,
    /// True when an If-None-Exist match meant nothing was created (200).
    pub existed: bool,
}

/// One page of a search.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Entries with a usable resource (any type: matches and includes).
    pub resources: Vec<Value>,
    /// Entries skipped as unusable (no resource, no type, no id).
    pub skipped: usize,
}

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// FHIR base URL.
    pub base_url: String,
    /// Retries on 429, 5xx and network errors.
    pub max_retries: u32,
    /// First backoff.
    pub retry_base: Duration,
    /// Longest backoff.
    pub retry_max: Duration,
}

/// Herald's client for one EHR. Not shared between threads (its audit
/// journal is per caller); the token source is.
pub struct FhirClient {
    cfg: ClientConfig,
    origin: String,
    http: reqwest::blocking::Client,
    auth: Option<Arc<BackendAuth>>,
    clock: Arc<dyn Clock>,
    journal: Mutex<Vec<AuditRecord>>,
    sleep: Box<dyn Fn(Duration) + Send + Sync>,
}

impl std::fmt::Debug for FhirClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirClient")
            .field("base", &self.cfg.base_url)
            .finish_non_exhaustive()
    }
}

fn origin_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => u.origin().ascii_serialization(),
        Err(_) => String::new(),
    }
}

#[allow(clippy::disallowed_methods)]
fn real_sleep(d: Duration) {
    std::thread::sleep(d);
}

fn jittered(base: Duration, attempt: u32, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.min(16)).min(max);
    let mut r = [0u8; 2];
    let jitter = if openssl::rand::rand_bytes(&mut r).is_ok() {
        f64::from(u16::from_le_bytes(r)) / 65_536.0
    } else {
        0.5
    };
    exp.mul_f64(0.5 + jitter)
}

fn retry_after(
    h: &reqwest::header::HeaderMap,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    if let Ok(secs) = v.trim().parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

fn outcome_detail(body: &str) -> String {
    let Ok(v) = serde_json::from_str::<Value>(body) else {
        return String::new();
    };
    if v["resourceType"] != "OperationOutcome" {
        return String::new();
    }
    let issue = &v["issue"][0];
    let text = issue["diagnostics"]
        .as_str()
        .or(issue["details"]["text"].as_str())
        .or(issue["code"].as_str())
        .unwrap_or_default();
    // Diagnostics may echo a request; keep it short and single-line.
    let one: String = text.chars().take(160).filter(|c| !c.is_control()).collect();
    if one.is_empty() {
        String::new()
    } else {
        format!(": {one}")
    }
}

/// What a call is, for its audit record.
#[derive(Clone, Copy)]
struct Audited<'a> {
    interaction: RestInteraction,
    resource_type: &'a str,
    label: &'a str,
    id: Option<&'a str>,
    query: Option<&'a str>,
    patients: &'a [String],
}

impl<'a> Audited<'a> {
    fn new(interaction: RestInteraction, resource_type: &'a str, label: &'a str) -> Self {
        Self {
            interaction,
            resource_type,
            label,
            id: None,
            query: None,
            patients: &[],
        }
    }
    fn id(self, id: &'a str) -> Self {
        Self {
            id: Some(id),
            ..self
        }
    }
    fn query(self, query: &'a str) -> Self {
        Self {
            query: Some(query),
            ..self
        }
    }
    fn patients(self, patients: &'a [String]) -> Self {
        Self { patients, ..self }
    }
}

/// One HTTP request.
struct Request<'a> {
    method: reqwest::Method,
    url: &'a str,
    body: Option<&'a Value>,
    headers: &'a [(&'a str, String)],
    idempotent: bool,
}

impl<'a> Request<'a> {
    fn get(url: &'a str) -> Self {
        Self {
            method: reqwest::Method::GET,
            url,
            body: None,
            headers: &[],
            idempotent: true,
        }
    }
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl FhirClient {
    /// A client for `cfg.base_url`; `auth` None for an open server.
    pub fn new(
        cfg: ClientConfig,
        http: reqwest::blocking::Client,
        auth: Option<Arc<BackendAuth>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let origin = origin_of(&cfg.base_url);
        Self {
            cfg,
            origin,
            http,
            auth,
            clock,
            journal: Mutex::new(Vec::new()),
            sleep: Box::new(real_sleep),
        }
    }

    /// Replaces how the client waits between retries (tests).
    pub fn with_sleep(mut self, f: Box<dyn Fn(Duration) + Send + Sync>) -> Self {
        self.sleep = f;
        self
    }

    /// The FHIR base.
    pub fn base(&self) -> &str {
        self.cfg.base_url.trim_end_matches('/')
    }

    /// The audit records of the calls made since the last take.
    pub fn take_audit(&self) -> Vec<AuditRecord> {
        self.journal
            .lock()
            .map(|mut j| std::mem::take(&mut *j))
            .unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn journal(
        &self,
        interaction: RestInteraction,
        resource_type: &str,
        id: Option<&str>,
        query: Option<&str>,
        patients: &[String],
        outcome: Result<(), String>,
        jti: Option<String>,
    ) {
        let now = self.clock.now();
        let make = |patient: Option<&String>| AuditRecord {
            recorded: now,
            activity: Activity::EhrRest {
                interaction,
                resource_type: resource_type.to_string(),
                id: id.map(String::from),
                query: query.map(String::from),
                token_jti: jti.clone(),
            },
            actor: Actor::System,
            outcome: if outcome.is_ok() {
                Outcome::Success
            } else {
                Outcome::SeriousFailure
            },
            outcome_desc: outcome.clone().err(),
            patient_id: patient.cloned(),
            request_id: None,
            ehr: Some(self.base().to_string()),
        };
        let records: Vec<AuditRecord> = if patients.is_empty() {
            vec![make(None)]
        } else {
            patients.iter().map(|p| make(Some(p))).collect()
        };
        if let Ok(mut j) = self.journal.lock() {
            j.extend(records);
        }
    }

    /// One HTTP exchange with auth, R4 headers and retries. `idempotent`
    /// allows retrying after a 5xx or a timeout (GET, PUT with If-Match,
    /// POST with If-None-Exist); otherwise only a refused connection, 429 and
    /// 503 — answers that say nothing was done — are retried.
    fn exchange(
        &self,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, String)],
        idempotent: bool,
    ) -> Result<(Answer, Option<String>), FhirError> {
        let mut attempt = 0u32;
        let mut reauthed = false;
        loop {
            let token = match &self.auth {
                Some(a) => Some(a.token()?),
                None => None,
            };
            let mut req = self.http.request(method.clone(), url);
            if !headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("accept"))
            {
                req = req.header("Accept", FHIR_JSON_R4);
            }
            if let Some(t) = &token {
                req = req.bearer_auth(&t.access_token);
            }
            for (k, v) in headers {
                req = req.header(*k, v);
            }
            if let Some(b) = body {
                req = req.header("Content-Type", FHIR_JSON_R4).body(b.to_string());
            }
            let jti = token.as_ref().and_then(|t| t.jti.clone());
            let retryable_after: Option<Duration>;
            match req.send() {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let hdrs = resp.headers().clone();
                    let text = resp.text().unwrap_or_default();
                    if status == 401
                        && !reauthed
                        && let Some(a) = &self.auth
                    {
                        // A token revoked or expired early: one fresh token, once.
                        a.invalidate();
                        reauthed = true;
                        continue;
                    }
                    let retry = status == 429
                        || status == 503
                        || (idempotent && (500..600).contains(&status));
                    if !retry || attempt >= self.cfg.max_retries {
                        return Ok((
                            Answer {
                                status,
                                headers: hdrs,
                                body: text,
                            },
                            jti,
                        ));
                    }
                    retryable_after = retry_after(&hdrs, self.clock.now());
                }
                Err(e) => {
                    let safe = e.is_connect() || idempotent;
                    if !safe || attempt >= self.cfg.max_retries {
                        return Err(FhirError::Network(short(&e)));
                    }
                    retryable_after = None;
                }
            }
            let wait = jittered(self.cfg.retry_base, attempt, self.cfg.retry_max);
            (self.sleep)(retryable_after.map_or(wait, |ra| ra.max(wait)));
            attempt += 1;
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base(), path.trim_start_matches('/'))
    }

    fn json(answer: &Answer) -> Result<Value, FhirError> {
        serde_json::from_str(&answer.body)
            .map_err(|e| FhirError::Invalid(format!("HTTP {}: {e}", answer.status)))
    }

    fn fail(answer: &Answer, what: &str) -> FhirError {
        if answer.status == 412 {
            return FhirError::Conflict;
        }
        FhirError::Status {
            status: answer.status,
            what: what.to_string(),
            detail: outcome_detail(&answer.body),
        }
    }

    /// One audited call: the exchange, then `accept` decides which statuses
    /// succeed. A failure (network, refused status, unreadable answer) is
    /// journalled here, once; the caller journals the success, when it knows
    /// the id and patients the answer carries.
    fn call(
        &self,
        what: &Audited<'_>,
        request: Request<'_>,
        accept: impl Fn(u16) -> bool,
    ) -> Result<(Answer, Option<String>), FhirError> {
        match self.exchange(
            request.method,
            request.url,
            request.body,
            request.headers,
            request.idempotent,
        ) {
            Ok((answer, jti)) if accept(answer.status) => Ok((answer, jti)),
            Ok((answer, jti)) => {
                let e = Self::fail(&answer, what.label);
                self.journal_as(what, Err(e.to_string()), jti);
                Err(e)
            }
            Err(e) => {
                self.journal_as(what, Err(e.to_string()), None);
                Err(e)
            }
        }
    }

    fn journal_as(&self, what: &Audited<'_>, outcome: Result<(), String>, jti: Option<String>) {
        self.journal(
            what.interaction,
            what.resource_type,
            what.id,
            what.query,
            what.patients,
            outcome,
            jti,
        );
    }

    /// GET `{type}/{id}`; None when the server says 404 or 410 (gone).
    pub fn read(&self, resource_type: &str, id: &str) -> Result<Option<Value>, FhirError> {
        let url = self.url(&format!("{resource_type}/{id}"));
        let label = format!("read {resource_type}");
        let what = Audited::new(RestInteraction::Read, resource_type, &label).id(id);
        let (answer, jti) =
            self.call(&what, Request::get(&url), |s| matches!(s, 200 | 404 | 410))?;
        if answer.status != 200 {
            self.journal_as(&what, Err(format!("HTTP {}", answer.status)), jti);
            return Ok(None);
        }
        let v = match Self::json(&answer) {
            Ok(v) if v["resourceType"] == resource_type => v,
            Ok(v) => {
                let e = FhirError::Invalid(format!(
                    "read {resource_type} returned {}",
                    v["resourceType"]
                ));
                self.journal_as(&what, Err(e.to_string()), jti);
                return Err(e);
            }
            Err(e) => {
                self.journal_as(&what, Err(e.to_string()), jti);
                return Err(e);
            }
        };
        let patients = patients_of(&v);
        self.journal_as(&what.patients(&patients), Ok(()), jti);
        Ok(Some(v))
    }

    /// Searches `resource_type?query`, following `next` links on the same
    /// origin to the end, handing each page to `on_page` as it arrives.
    pub fn search<E: From<FhirError>>(
        &self,
        resource_type: &str,
        query: &str,
        mut on_page: impl FnMut(&Self, Page) -> Result<(), E>,
    ) -> Result<usize, E> {
        let mut url = format!("{}?{query}", self.url(resource_type));
        let label = format!("search {resource_type}");
        let mut pages = 0;
        loop {
            let q = url
                .split_once('?')
                .map(|(_, q)| q.to_string())
                .unwrap_or_default();
            let what = Audited::new(RestInteraction::Search, resource_type, &label).query(&q);
            let (answer, jti) = self.call(&what, Request::get(&url), |s| s == 200)?;
            let bundle = match Self::json(&answer) {
                Ok(b) if b["resourceType"] == "Bundle" => b,
                Ok(_) | Err(_) => {
                    let e = FhirError::Invalid(format!("{label} did not return a Bundle"));
                    self.journal_as(&what, Err(e.to_string()), jti);
                    return Err(e.into());
                }
            };
            let mut page = Page::default();
            let mut patients = Vec::new();
            for entry in bundle["entry"].as_array().into_iter().flatten() {
                let r = &entry["resource"];
                let usable = r["resourceType"].is_string()
                    && r["id"].is_string()
                    && r["resourceType"] != "OperationOutcome";
                if usable {
                    patients.extend(patients_of(r));
                    page.resources.push(r.clone());
                } else if r["resourceType"] != "OperationOutcome" {
                    page.skipped += 1;
                }
            }
            patients.sort();
            patients.dedup();
            self.journal_as(&what.patients(&patients), Ok(()), jti);
            if page.skipped > 0 {
                tracing::warn!(
                    resource_type,
                    skipped = page.skipped,
                    "search page entries without a usable resource were skipped"
                );
            }
            pages += 1;
            on_page(self, page)?;
            let next = bundle["link"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["relation"] == "next")
                .and_then(|l| l["url"].as_str())
                .map(String::from);
            let Some(n) = next else {
                return Ok(pages);
            };
            let n = if n.starts_with("http://") || n.starts_with("https://") {
                n
            } else {
                self.url(&n)
            };
            if origin_of(&n) != self.origin {
                return Err(FhirError::Origin(origin_of(&n)).into());
            }
            if n == url {
                return Ok(pages);
            }
            url = n;
        }
    }

    /// POST a new resource; with `if_none_exist` (a search, e.g. an
    /// identifier) the create is conditional, so a retry cannot duplicate it.
    pub fn create(
        &self,
        resource: &Value,
        if_none_exist: Option<&str>,
    ) -> Result<Created, FhirError> {
        strict_check(resource)?;
        let rt = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut headers = vec![("Prefer", "return=representation".to_string())];
        if let Some(q) = if_none_exist {
            headers.push(("If-None-Exist", q.to_string()));
        }
        let url = self.url(&rt);
        let patients = patients_of(resource);
        let label = format!("create {rt}");
        let what = Audited::new(RestInteraction::Create, &rt, &label).patients(&patients);
        let request = Request {
            method: reqwest::Method::POST,
            url: &url,
            body: Some(resource),
            headers: &headers,
            // Only a conditional create may be repeated after an unknown outcome.
            idempotent: if_none_exist.is_some(),
        };
        let (answer, jti) = self.call(&what, request, |s| (200..300).contains(&s))?;
        let body: Option<Value> = serde_json::from_str(&answer.body).ok();
        // A 201 without Location is still a create (feasibility §4): take the
        // id from the body rather than failing and tempting a retry.
        let id = answer
            .headers
            .get(reqwest::header::LOCATION)
            .or(answer.headers.get(reqwest::header::CONTENT_LOCATION))
            .and_then(|l| l.to_str().ok())
            .and_then(|l| {
                let after = l.split_once(&format!("{rt}/"))?.1;
                after.split('/').next().map(String::from)
            })
            .or_else(|| {
                body.as_ref()
                    .and_then(|b| b["id"].as_str().map(String::from))
            });
        let done = match &id {
            Some(i) => what.id(i),
            None => what,
        };
        self.journal_as(&done, Ok(()), jti);
        Ok(Created {
            id,
            body,
            existed: answer.status == 200,
        })
    }

    /// PUT a resource; `if_match` is the versionId Herald read (412 → [`FhirError::Conflict`]).
    pub fn update(
        &self,
        resource: &Value,
        if_match: Option<&str>,
    ) -> Result<Option<Value>, FhirError> {
        strict_check(resource)?;
        let rt = resource["resourceType"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let id = resource["id"]
            .as_str()
            .ok_or_else(|| FhirError::Strict(format!("{rt} without an id cannot be updated")))?
            .to_string();
        let mut headers = vec![("Prefer", "return=representation".to_string())];
        if let Some(v) = if_match {
            headers.push(("If-Match", format!("W/\"{v}\"")));
        }
        let url = self.url(&format!("{rt}/{id}"));
        let patients = patients_of(resource);
        let label = format!("update {rt}");
        let what = Audited::new(RestInteraction::Update, &rt, &label)
            .id(&id)
            .patients(&patients);
        let request = Request {
            method: reqwest::Method::PUT,
            url: &url,
            body: Some(resource),
            headers: &headers,
            idempotent: if_match.is_some(),
        };
        let (answer, jti) = self.call(&what, request, |s| (200..300).contains(&s))?;
        self.journal_as(&what, Ok(()), jti);
        Ok(serde_json::from_str(&answer.body).ok())
    }

    /// GET an operation, e.g. `Subscription/{id}/$status` or `$events?…`.
    pub fn operation(&self, resource_type: &str, path: &str) -> Result<Value, FhirError> {
        let url = self.url(path);
        let q = path
            .split_once('/')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default();
        let label = format!("{resource_type} operation");
        let what = Audited::new(RestInteraction::Operation, resource_type, &label).query(&q);
        let (answer, jti) = self.call(&what, Request::get(&url), |s| s == 200)?;
        self.journal_as(&what, Ok(()), jti);
        Self::json(&answer)
    }
}

/// Where a Bulk Data export stands (FHIR Bulk Data Access 2.0).
#[derive(Debug, Clone)]
pub enum BulkStatus {
    /// Still running: ask again after this long.
    Running(Duration),
    /// Done: the manifest (`transactionTime`, `requiresAccessToken`, `output[]`).
    Done(Value),
}

impl FhirClient {
    /// Kicks off `Group/{id}/$export` (`query` holds `_type`, `_since`):
    /// `Prefer: respond-async`; returns the status URL from Content-Location.
    pub fn bulk_kickoff(&self, group: &str, query: &str) -> Result<String, FhirError> {
        let path = format!("{group}/$export?{query}");
        let url = self.url(&path);
        let headers = [("Prefer", "respond-async".to_string())];
        let what = Audited::new(RestInteraction::Operation, "Group", "Group $export").query(&path);
        let request = Request {
            headers: &headers,
            ..Request::get(&url)
        };
        let (answer, jti) = self.call(&what, request, |s| s == 202)?;
        self.journal_as(&what, Ok(()), jti);
        let loc = answer
            .headers
            .get(reqwest::header::CONTENT_LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                FhirError::Invalid("$export answered 202 without Content-Location".into())
            })?;
        if origin_of(loc) != self.origin {
            return Err(FhirError::Origin(origin_of(loc)));
        }
        Ok(loc.to_string())
    }

    /// Asks an export's status URL.
    pub fn bulk_status(&self, status_url: &str) -> Result<BulkStatus, FhirError> {
        let (answer, _) = self.exchange(reqwest::Method::GET, status_url, None, &[], true)?;
        match answer.status {
            202 => Ok(BulkStatus::Running(
                retry_after(&answer.headers, self.clock.now()).unwrap_or(Duration::from_secs(2)),
            )),
            200 => Ok(BulkStatus::Done(Self::json(&answer)?)),
            _ => Err(Self::fail(&answer, "$export status")),
        }
    }

    /// Downloads one output file (NDJSON), with the token when the manifest
    /// says `requiresAccessToken` (never to another origin).
    pub fn bulk_download(&self, url: &str) -> Result<String, FhirError> {
        if origin_of(url) != self.origin {
            return Err(FhirError::Origin(origin_of(url)));
        }
        let file = url.rsplit('/').next().unwrap_or("file").to_string();
        let headers = [("Accept", "application/fhir+ndjson".to_string())];
        let what = Audited::new(RestInteraction::Read, "Binary", "$export download").id(&file);
        let request = Request {
            headers: &headers,
            ..Request::get(url)
        };
        let (answer, jti) = self.call(&what, request, |s| s == 200)?;
        self.journal_as(&what, Ok(()), jti);
        Ok(answer.body)
    }

    /// Tells the server the export's files may go (Oracle Health: delete when done, V13).
    pub fn bulk_delete(&self, status_url: &str) -> Result<(), FhirError> {
        let (answer, _) = self.exchange(reqwest::Method::DELETE, status_url, None, &[], true)?;
        if (200..300).contains(&answer.status) || answer.status == 404 {
            Ok(())
        } else {
            Err(Self::fail(&answer, "$export delete"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strict_output_refuses_what_r4_refuses_and_keeps_vendor_elements_on_the_wire() {
        let ok = json!({"resourceType": "Consent", "status": "active",
            "scope": {"text": "x"}, "category": [{"text": "x"}],
            "extension": [{"url": "http://vendor.example/x", "valueString": "kept"}]});
        strict_check(&ok).unwrap();
        let bad = json!({"resourceType": "Consent", "status": "scheduled",
            "scope": {"text": "x"}, "category": [{"text": "x"}]});
        assert!(matches!(strict_check(&bad), Err(FhirError::Strict(_))));
    }

    #[test]
    fn patients_are_found_where_each_type_keeps_them() {
        let a = json!({"resourceType": "Appointment", "participant": [
            {"actor": {"reference": "Patient/p2"}}, {"actor": {"reference": "Practitioner/x"}},
            {"actor": {"reference": "Patient/p1"}}]});
        assert_eq!(patients_of(&a), vec!["p1", "p2"]);
        let m =
            json!({"resourceType": "MedicationRequest", "subject": {"reference": "Patient/p3"}});
        assert_eq!(patients_of(&m), vec!["p3"]);
    }

    #[test]
    fn operation_outcome_details_are_one_short_line() {
        let oo = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
            "code": "invalid", "diagnostics": "bad\nthing"}]});
        assert_eq!(outcome_detail(&oo.to_string()), ": badthing");
        assert_eq!(outcome_detail("not json"), "");
    }
}
