//! The auditor's page: `GET /audit` (a filter form, the matching events with
//! keyset paging, the chain-verification status) and `GET /audit/export`
//! (the current filter as CSV or NDJSON, streamed a thousand rows at a time,
//! so a million rows never sit in memory).
//!
//! Server-rendered, no scripts; the CSP allows nothing but the page's own
//! stylesheet (`/audit/audit.css`), and every value is HTML-escaped. The
//! filter form uses GET: it changes nothing but the audit log itself, so it
//! needs no CSRF token (a forged link can at most make an auditor run a search,
//! which is recorded like any other). Every view and export passes
//! [`authorize_auditor`] and writes its AuditEvent before showing anything.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use super::audit_api::{Via, authorize_auditor, encode, search_records};
use super::{ApiError, AppState, internal};
use crate::audit::{self, ChainStatus, Format, SinceCheck, balp, report, search};
use crate::db::audit_store::AuditQuery;
use crate::error::AppError;
use crate::render::escape_markup as esc;

/// Records appended since the last full verification that a page view walks
/// itself (about a second on SQLite); beyond that the page says how many wait.
const MAX_WALK_ON_VIEW: i64 = 20_000;
/// Rows per chunk of an export.
const EXPORT_BATCH: i64 = 1000;

const CSS: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:1rem 2rem;color:#111}\
h1{font-size:1.4rem}form{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end;margin:1rem 0}\
label{display:flex;flex-direction:column;font-size:.85rem}input,select{font:inherit;padding:2px 4px}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}td.mono,.mono{font-family:ui-monospace,monospace;font-size:.8rem}\
.status{padding:.5rem 1rem;border-left:4px solid #888;background:#f8f8f8}.ok{border-color:#2a7}.bad{border-color:#c22;background:#fdecec}\
.warn{border-color:#d90}nav a{margin-right:1rem}";

/// The page's form fields, in order: (name, label).
const FIELDS: [(&str, &str); 7] = [
    ("patient", "Patient"),
    ("agent", "Agent (user:ID, herald, anonymous)"),
    ("entity", "Entity (Type/id)"),
    ("type", "Type"),
    ("subtype", "Subtype"),
    ("action", "Action"),
    ("outcome", "Outcome"),
];

fn html(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("x-frame-options", "DENY"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><link rel=\"stylesheet\" href=\"/audit/audit.css\"></head><body>{body}</body></html>",
            esc(title)
        ))
}

/// The page's own parameters translated into the FHIR search's: `from` and
/// `to` become `date=ge…` and `date=le…`; empty fields are dropped (a form
/// sends every field). Unknown fields are refused, as on the API.
fn fhir_pairs(form: &[(String, String)], extra: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (k, v) in form {
        let v = v.trim();
        if v.is_empty() || extra.contains(&k.as_str()) {
            continue;
        }
        match k.as_str() {
            "from" => out.push(("date".into(), format!("ge{v}"))),
            "to" => out.push(("date".into(), format!("le{v}"))),
            "sort" => out.push(("_sort".into(), v.into())),
            "count" => out.push(("_count".into(), v.into())),
            "_cursor" => out.push(("_cursor".into(), v.into())),
            k if FIELDS.iter().any(|(f, _)| *f == k) => out.push((k.into(), v.into())),
            other => {
                return Err(format!(
                    "{other:?} is not a filter of this page; use patient, agent, entity, type, subtype, action, outcome, from, to, sort, count"
                ));
            }
        }
    }
    Ok(out)
}

/// The page's own query string again (non-empty fields), without `_cursor`.
fn page_query(form: &[(String, String)], drop: &[&str]) -> String {
    form.iter()
        .filter(|(k, v)| !v.trim().is_empty() && k != "_cursor" && !drop.contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}", encode(k), encode(v.trim())))
        .collect::<Vec<_>>()
        .join("&")
}

fn value_of<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

fn select(name: &str, label: &str, current: &str, options: &[(&str, &str)]) -> String {
    let empty = match name {
        "sort" => "newest first",
        "count" => "50",
        _ => "any",
    };
    let mut s = format!(
        "<label>{}<select name=\"{}\"><option value=\"\">{empty}</option>",
        esc(label),
        esc(name)
    );
    for (value, text) in options {
        s.push_str(&format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(value),
            if *value == current { " selected" } else { "" },
            esc(text)
        ));
    }
    s.push_str("</select></label>");
    s
}

fn text_input(name: &str, label: &str, current: &str, kind: &str) -> String {
    format!(
        "<label>{}<input type=\"{kind}\" name=\"{}\" value=\"{}\"></label>",
        esc(label),
        esc(name),
        esc(current)
    )
}

fn form_html(form: &[(String, String)]) -> String {
    let types: Vec<(&str, &str)> = balp::TYPE_CODINGS
        .iter()
        .map(|(_, c)| match *c {
            "rest" => ("rest", "rest (REST operation)"),
            "110106" => ("110106", "110106 (Export: message sent)"),
            "110113" => ("110113", "110113 (Security alert: consent decision)"),
            c => (c, c),
        })
        .collect();
    let subtypes: Vec<(&str, &str)> = balp::SUBTYPE_CODINGS
        .iter()
        .map(|(_, c)| (*c, *c))
        .collect();
    let mut h = String::from("<form method=\"get\" action=\"/audit\">");
    for (name, label) in FIELDS.iter().take(3) {
        h.push_str(&text_input(name, label, value_of(form, name), "text"));
    }
    h.push_str(&select("type", "Type", value_of(form, "type"), &types));
    h.push_str(&select(
        "subtype",
        "Subtype",
        value_of(form, "subtype"),
        &subtypes,
    ));
    h.push_str(&select(
        "action",
        "Action",
        value_of(form, "action"),
        &[
            ("C", "C create"),
            ("R", "R read"),
            ("U", "U update"),
            ("D", "D delete"),
            ("E", "E execute"),
        ],
    ));
    h.push_str(&select(
        "outcome",
        "Outcome",
        value_of(form, "outcome"),
        &[
            ("0", "0 success"),
            ("4", "4 minor failure"),
            ("8", "8 serious failure"),
            ("12", "12 major failure"),
        ],
    ));
    h.push_str(&text_input(
        "from",
        "From (UTC, inclusive)",
        value_of(form, "from"),
        "datetime-local",
    ));
    h.push_str(&text_input(
        "to",
        "To (UTC, inclusive)",
        value_of(form, "to"),
        "datetime-local",
    ));
    h.push_str(&select(
        "sort",
        "Order",
        value_of(form, "sort"),
        &[("date", "oldest first")],
    ));
    h.push_str(&select(
        "count",
        "Per page",
        value_of(form, "count"),
        &[("200", "200"), ("1000", "1000")],
    ));
    h.push_str("<button type=\"submit\">Search</button> <a href=\"/audit\">Clear</a></form>");
    h
}

fn ago(now: chrono::DateTime<chrono::Utc>, then: chrono::NaiveDateTime) -> String {
    let mins = (now.naive_utc() - then).num_minutes().max(0);
    match mins {
        0 => "less than a minute ago".into(),
        m if m < 120 => format!("{m} minutes ago"),
        m if m < 48 * 60 => format!("{} hours ago", m / 60),
        m => format!("{} days ago", m / (24 * 60)),
    }
}

fn status_html(s: &ChainStatus, now: chrono::DateTime<chrono::Utc>) -> String {
    let full = match &s.last_full {
        None => "No full verification is recorded yet (<span class=\"mono\">herald audit verify</span> records one; <span class=\"mono\">herald serve</span> runs one every hour).".to_string(),
        Some(v) => {
            let when = format!(
                "{} UTC ({}, took {} ms)",
                v.checked_at.format("%Y-%m-%d %H:%M:%S"),
                ago(now, v.checked_at),
                v.duration_ms
            );
            match &v.problem {
                None => format!("Full verification at {when}: records 1–{} chain intact.", v.through_seq),
                Some(p) => format!("<strong>Chain broken.</strong> Full verification at {when}: {}.", esc(p)),
            }
        }
    };
    let (class, since) = match (&s.since, &s.last_full) {
        (_, Some(v)) if v.problem.is_some() => ("bad", String::new()),
        (SinceCheck::AfterBreak, _) => ("bad", String::new()),
        (SinceCheck::Broken(b), _) => (
            "bad",
            format!(
                " <strong>Chain broken</strong> (found now): {}.",
                esc(&b.to_string())
            ),
        ),
        (SinceCheck::Intact { count }, Some(_)) => (
            "ok",
            format!(
                " The {count} records appended since chain onto it (checked now, through record {}).",
                s.head_seq
            ),
        ),
        (SinceCheck::Intact { count }, None) => (
            "ok",
            format!(" All {count} records chain intact (checked now)."),
        ),
        (SinceCheck::NotChecked { pending }, _) => (
            "warn",
            format!(
                " {pending} records appended since are not checked yet; the next full verification covers them."
            ),
        ),
    };
    format!("<p class=\"status {class}\" id=\"chain-status\">{full}{since}</p>")
}

fn table_html(rows: &[crate::db::audit_store::AuditRow]) -> String {
    if rows.is_empty() {
        return "<p id=\"no-results\">No events match.</p>".into();
    }
    let mut h = String::from(
        "<table id=\"events\"><thead><tr><th>Recorded (UTC)</th><th>Who</th><th>Action</th><th>What</th><th>Patient</th><th>Entity or query</th><th>Purpose</th><th>Outcome</th><th>Id</th></tr></thead><tbody>",
    );
    for r in rows {
        let l = report::line_of(r);
        let who = match &l.address {
            Some(a) => format!("{} ({})", l.who, a),
            None => l.who.clone(),
        };
        let mut what = l
            .query
            .as_ref()
            .map(|q| format!("query {q}"))
            .or_else(|| l.entity.clone())
            .unwrap_or_default();
        if let Some(c) = &l.channel {
            what.push_str(&format!(" via {c}"));
        }
        let outcome = match &l.outcome_desc {
            Some(d) => format!("{} ({d})", l.outcome),
            None => l.outcome.clone(),
        };
        h.push_str(&format!(
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"mono\">{}</td></tr>",
            esc(&l.recorded),
            esc(&who),
            esc(&l.action),
            esc(&l.what),
            esc(l.patient.as_deref().unwrap_or("")),
            esc(&what),
            esc(&l.purpose.join(", ")),
            esc(&outcome),
            esc(&l.id),
        ));
    }
    h.push_str("</tbody></table>");
    h
}

fn refused(e: &ApiError) -> HttpResponse {
    let status = actix_web::ResponseError::status_code(e);
    let msg = match status {
        StatusCode::FORBIDDEN => "Only auditors may read the audit log.".to_string(),
        StatusCode::UNAUTHORIZED => "Sign in to read the audit log.".to_string(),
        s if s.is_server_error() => return actix_web::ResponseError::error_response(e),
        _ => e.to_string(),
    };
    html(
        status,
        "Audit log",
        &format!("<h1>Audit log</h1><p>{}</p>", esc(&msg)),
    )
}

/// GET /audit
pub async fn page(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Query<Vec<(String, String)>>,
) -> HttpResponse {
    let actor = match authorize_auditor(&req, &state, Via::Page).await {
        Ok(a) => a,
        Err(e)
            if actix_web::ResponseError::status_code(&e)
                == actix_web::http::StatusCode::UNAUTHORIZED =>
        {
            return super::staff::see_other("/login");
        }
        Err(e) => return refused(&e),
    };
    let form = form.into_inner();
    let bad_request = |msg: &str| {
        let body = format!(
            "<h1>Audit log</h1><p id=\"error\" class=\"status bad\">{}</p>{}",
            esc(msg),
            form_html(&form)
        );
        html(StatusCode::BAD_REQUEST, "Audit log", &body)
    };
    let pairs = match fhir_pairs(&form, &[]) {
        Ok(p) => p,
        Err(m) => return bad_request(&m),
    };
    let mut q = match search::parse(&pairs) {
        Ok(q) => q,
        Err(e) => return bad_request(&e.0),
    };
    if !pairs.iter().any(|(k, _)| k == "_sort") {
        q.descending = true; // newest first unless asked otherwise
    }
    let records = search_records(
        &state,
        &req,
        &actor,
        &q,
        &super::audit_api::query_string(&pairs, None),
    );
    let pool = state.pool.clone();
    let query = q.clone();
    let loaded = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        let page = search::run(&mut c, &query)?;
        audit::append_now(&mut c, &records)?;
        let status = audit::chain_status(&mut c, MAX_WALK_ON_VIEW)?;
        Ok((page, status))
    })
    .await;
    let (page, status) = match loaded {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return refused(&ApiError::new(&req, e.into())),
        Err(e) => return refused(&internal(&req, e)),
    };
    let base_query = page_query(&form, &[]);
    let mut body = String::from("<main><h1>Audit log</h1>");
    body.push_str(&status_html(&status, state.clock.now()));
    body.push_str(&form_html(&form));
    body.push_str("<nav>");
    let with = |prefix: &str, extra: Option<String>| {
        let mut href = prefix.to_string();
        for part in [Some(base_query.clone()), extra].into_iter().flatten() {
            if !part.is_empty() {
                href.push(if href.contains('?') { '&' } else { '?' });
                href.push_str(&part);
            }
        }
        esc(&href)
    };
    for (fmt, label) in [("csv", "Export CSV"), ("ndjson", "Export NDJSON")] {
        body.push_str(&format!(
            "<a id=\"export-{fmt}\" href=\"{}\">{label}</a>",
            with(&format!("/audit/export?format={fmt}"), None)
        ));
    }
    body.push_str("</nav>");
    body.push_str(&table_html(&page.rows));
    body.push_str("<nav>");
    if q.cursor.is_some() {
        body.push_str(&format!(
            "<a id=\"first\" href=\"{}\">First page</a>",
            with("/audit", None)
        ));
    }
    if let Some(next) = &page.next {
        body.push_str(&format!(
            "<a id=\"next\" href=\"{}\">Next page</a>",
            with("/audit", Some(format!("_cursor={}", encode(next))))
        ));
    }
    body.push_str("</nav></main>");
    html(StatusCode::OK, "Audit log", &body)
}

/// GET /audit/export?format=csv|ndjson&<the page's filters>
pub async fn export(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Query<Vec<(String, String)>>,
) -> Result<HttpResponse, ApiError> {
    let actor = authorize_auditor(&req, &state, Via::Page).await?;
    let form = form.into_inner();
    let bad = |m: String| ApiError::new(&req, AppError::BadRequest(m));
    let format = match value_of(&form, "format") {
        "csv" => Format::Csv,
        "ndjson" => Format::Ndjson,
        _ => return Err(bad("format must be csv or ndjson".into())),
    };
    let pairs = fhir_pairs(&form, &["format", "count", "_cursor"]).map_err(bad)?;
    let mut q: AuditQuery = search::parse(&pairs).map_err(|e| bad(e.0))?;
    q.limit = EXPORT_BATCH;
    let fmt = value_of(&form, "format");
    let mut recorded = super::audit_api::query_string(&pairs, None);
    recorded.push_str(if recorded.is_empty() { "" } else { "&" });
    recorded.push_str(&format!("_export={fmt}"));
    let records = search_records(&state, &req, &actor, &q, &recorded);
    // The export's AuditEvent commits before the first byte leaves.
    let pool = state.pool.clone();
    web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = pool.get()?;
        audit::append_now(&mut c, &records)
    })
    .await
    .map_err(|e| internal(&req, e))?
    .map_err(|e| ApiError::new(&req, e.into()))?;
    let header = audit::export_header(format).map_err(|e| internal(&req, e))?;
    let pool = state.pool.clone();
    // Each chunk is one keyset page, so memory stays at one page and the
    // export lists every matching event once even while events are added.
    let stream = futures_util::stream::unfold((Some(q), Some(header)), move |(q, header)| {
        let pool = pool.clone();
        async move {
            let q = q?;
            let chunk = web::block(move || -> anyhow::Result<(Vec<u8>, Option<AuditQuery>)> {
                let mut c = pool.get()?;
                let page = search::run(&mut c, &q)?;
                let mut buf = header.unwrap_or_default();
                audit::export_rows(format, &page.rows, &mut buf)?;
                let next = page
                    .next
                    .as_deref()
                    .and_then(search::parse_cursor)
                    .map(|cursor| AuditQuery {
                        cursor: Some(cursor),
                        ..q
                    });
                Ok((buf, next))
            })
            .await;
            match chunk {
                Ok(Ok((buf, next))) => Some((Ok(web::Bytes::from(buf)), (next, None))),
                Ok(Err(e)) => {
                    tracing::error!(cause = %format!("{e:#}"), "audit export stopped");
                    Some((
                        Err(std::io::Error::other("audit export failed")),
                        (None, None),
                    ))
                }
                Err(e) => {
                    tracing::error!(cause = %e, "audit export stopped");
                    Some((
                        Err(std::io::Error::other("audit export failed")),
                        (None, None),
                    ))
                }
            }
        }
    });
    let (ct, ext) = match format {
        Format::Csv => ("text/csv; charset=utf-8", "csv"),
        Format::Ndjson => ("application/fhir+ndjson", "ndjson"),
    };
    let stamp = state.clock.now().format("%Y%m%dT%H%M%SZ");
    Ok(HttpResponse::Ok()
        .content_type(ct)
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"audit-{stamp}.{ext}\""),
        ))
        .streaming(stream))
}

/// GET /audit/audit.css — the page's only style (the CSP allows no inline style).
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "max-age=3600"))
        .body(CSS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn form_fields_become_fhir_parameters() {
        let got = fhir_pairs(
            &pairs(&[
                ("patient", " p1 "),
                ("agent", ""),
                ("from", "2026-12-01T08:00"),
                ("to", "2026-12-02"),
                ("sort", "date"),
                ("count", "200"),
            ]),
            &[],
        )
        .unwrap();
        assert_eq!(
            got,
            pairs(&[
                ("patient", "p1"),
                ("date", "ge2026-12-01T08:00"),
                ("date", "le2026-12-02"),
                ("_sort", "date"),
                ("_count", "200"),
            ])
        );
        assert!(search::parse(&got).is_ok());
        assert!(fhir_pairs(&pairs(&[("nope", "1")]), &[]).is_err());
        assert!(
            fhir_pairs(&pairs(&[("format", "csv")]), &["format"])
                .unwrap()
                .is_empty()
        );
    }
}
