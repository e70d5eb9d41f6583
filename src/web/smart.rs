//! The SMART launch routes and the clinician page (issue 6 items 1–2).
//! `GET /smart/launch?iss&launch` and `GET /smart/login?iss` start a launch
//! (`smart::launch`), `GET /smart/callback` completes it and opens a
//! clinician session (a new cookie: no fixation), `GET /app` shows the
//! patient in context: consent per channel and purpose with its evidence,
//! language, messages with delivery status; `POST /app/consent` records a
//! consent given in person, `POST /app/send` sends a template message now
//! (through the outbox: consent, quiet hours and the guard still decide).
//! Every view and action is audited with the clinician (fhirUser) as agent.
//! Pages: every value escaped, a CSRF token on every form, a CSP without
//! unsafe-inline, frame-ancestors from `smart.frame_ancestors`, cookies
//! HttpOnly, SameSite, Secure under https.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Duration;

use super::{AppState, peer};
use crate::audit;
use crate::db::{self, consents, outbox, patients, smart as store};
use crate::domain::audit::{Activity, Actor, AuditRecord, Outcome};
use crate::domain::{Channel, Purpose};
use crate::render::escape_markup as esc;
use crate::smart::launch::{self, LaunchError};

const LAUNCH_COOKIE: &str = "herald_launch";
pub(crate) const APP_COOKIE: &str = "herald_app";
/// A clinician session ends after this long whatever happens (H3).
const ABSOLUTE_HOURS: i64 = 12;

/// F8b: from the configuration only, never the request's Host.
fn redirect_uri(_req: &HttpRequest, state: &AppState) -> String {
    format!("{}/smart/callback", state.settings.server.base_url())
}

fn secure(_req: &HttpRequest, state: &AppState) -> bool {
    super::served_over_tls(&state.settings)
}

/// The launch cookie's name (`__Host-` over TLS, F8d).
fn launch_cookie(state: &AppState) -> String {
    super::cookie_name(&state.settings, LAUNCH_COOKIE)
}

/// The clinician session cookie's name (`__Host-` over TLS, F8d).
pub(crate) fn app_cookie(state: &AppState) -> String {
    super::cookie_name(&state.settings, APP_COOKIE)
}

fn csp(state: &AppState) -> String {
    let ancestors = if state.settings.smart.frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        state.settings.smart.frame_ancestors.join(" ")
    };
    format!(
        "default-src 'none'; img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

fn page(state: &AppState, status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("content-security-policy", csp(state)))
        .insert_header(("referrer-policy", "no-referrer"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head><body>{body}</body></html>",
            esc(title)
        ))
}

fn failed(state: &AppState, e: &LaunchError) -> HttpResponse {
    let status = match e {
        LaunchError::Missing(_) | LaunchError::ForeignIss(_) | LaunchError::NoS256 => {
            StatusCode::BAD_REQUEST
        }
        LaunchError::State => StatusCode::FORBIDDEN,
        _ => StatusCode::BAD_GATEWAY,
    };
    page(
        state,
        status,
        "Herald could not open",
        &format!(
            "<h1>Herald could not open</h1><p id=\"launch-error\">{}</p>",
            esc(&e.to_string())
        ),
    )
}

fn cookie(
    req: &HttpRequest,
    state: &AppState,
    name: String,
    value: String,
    same_site: SameSite,
) -> Cookie<'static> {
    let mut c = Cookie::new(name, value);
    c.set_http_only(true);
    c.set_path("/");
    c.set_same_site(same_site);
    c.set_secure(secure(req, state));
    c
}

/// What handlers take from the request into a blocking task (HttpRequest
/// is not Send).
#[derive(Clone)]
struct Caller {
    app_cookie: Option<String>,
    request_id: Option<String>,
    ip: String,
    redirect_uri: String,
}

/// The Patient's display name read from the EHR with the session's token.
fn read_patient_name(
    http: &reqwest::blocking::Client,
    s: &store::SmartSession,
    patient: &str,
) -> Option<String> {
    let token = launch::secrets_of(s).access_token?;
    let v: serde_json::Value = http
        .get(format!("{}/Patient/{patient}", s.iss))
        .header("Accept", crate::fhir::client::FHIR_JSON_R4)
        .bearer_auth(token)
        .send()
        .ok()
        .filter(|r| r.status().is_success())?
        .json()
        .ok()?;
    crate::fhir::patient_facts(&v)
        .ok()
        .map(|p| p.name.expose().to_string())
}

impl Caller {
    fn of(req: &HttpRequest, state: &AppState) -> Self {
        use actix_web::HttpMessage as _;
        // Each borrow of the request's extensions ends before the next
        // reader (`connection_info` borrows them mutably): holding one across
        // panicked the worker ("already borrowed").
        let request_id = {
            let ext = req.extensions();
            ext.get::<super::RequestId>().map(|r| r.0.clone())
        };
        let app_cookie = req
            .cookie(&app_cookie(state))
            .map(|c| c.value().to_string());
        let redirect_uri = redirect_uri(req, state);
        Self {
            app_cookie,
            request_id,
            ip: peer(req),
            redirect_uri,
        }
    }
}

fn record(
    state: &AppState,
    caller: &Caller,
    who: &str,
    activity: Activity,
    patient: Option<String>,
    outcome: Outcome,
) -> AuditRecord {
    AuditRecord {
        recorded: state.clock.now(),
        activity,
        actor: Actor::Staff(who.to_string()),
        outcome,
        outcome_desc: None,
        patient_id: patient,
        request_id: caller.request_id.clone(),
        ehr: None,
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct LaunchQuery {
    iss: Option<String>,
    launch: Option<String>,
}

async fn begin(
    req: HttpRequest,
    state: web::Data<AppState>,
    iss: Option<String>,
    launch_token: Option<String>,
    ehr_launch: bool,
) -> HttpResponse {
    let Some(iss) = iss.filter(|i| !i.is_empty()) else {
        return failed(&state, &LaunchError::Missing("iss"));
    };
    if ehr_launch && launch_token.as_deref().is_none_or(str::is_empty) {
        return failed(&state, &LaunchError::Missing("launch"));
    }
    // The allow-list first: an unknown issuer gets no request and no redirect.
    if !launch::allowed(&state.settings.smart, &iss) {
        tracing::warn!(
            alert = "smart-launch",
            "a launch from an issuer not on smart.allowed_iss was refused"
        );
        return failed(&state, &LaunchError::ForeignIss(iss));
    }
    let redirect = redirect_uri(&req, &state);
    let st = state.clone();
    let now = state.clock.now();
    let done = web::block(move || -> Result<launch::Begun, LaunchError> {
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .build()
            .map_err(|e| LaunchError::Config(e.to_string()))?;
        let b = launch::begin(
            &http,
            &st.settings.smart,
            &iss,
            launch_token.as_deref(),
            &redirect,
            now,
        )?;
        let mut c = st
            .pool
            .get()
            .map_err(|e| LaunchError::Config(e.to_string()))?;
        store::put(&mut c, &st.ring, &b.session).map_err(|e| LaunchError::Config(e.to_string()))?;
        Ok(b)
    })
    .await;
    match done {
        Ok(Ok(b)) => HttpResponse::Found()
            .insert_header(("location", b.redirect))
            // Lax: the authorization server sends the browser back with a top-level GET.
            .cookie(cookie(
                &req,
                &state,
                launch_cookie(&state),
                b.cookie,
                SameSite::Lax,
            ))
            .finish(),
        Ok(Err(e)) => failed(&state, &e),
        Err(_) => failed(&state, &LaunchError::Config("busy".into())),
    }
}

/// GET /smart/launch?iss&launch (EHR launch, S1).
pub async fn ehr_launch(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<LaunchQuery>,
) -> HttpResponse {
    let q = q.into_inner();
    begin(req, state, q.iss, q.launch, true).await
}

/// GET /smart/login?iss (standalone launch).
pub async fn standalone(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<LaunchQuery>,
) -> HttpResponse {
    let q = q.into_inner();
    begin(req, state, q.iss, None, false).await
}

#[derive(serde::Deserialize)]
pub(crate) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

/// GET /smart/callback: state checked, code exchanged, id_token verified.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<CallbackQuery>,
) -> HttpResponse {
    let q = q.into_inner();
    let Some(token) = req
        .cookie(&launch_cookie(&state))
        .map(|c| c.value().to_string())
    else {
        return failed(&state, &LaunchError::State);
    };
    if let Some(err) = q.error {
        let d = q.error_description.unwrap_or_default();
        return failed(
            &state,
            &LaunchError::Refused(format!("{err} {d}").trim().to_string()),
        );
    }
    let (Some(code), Some(st_param)) = (q.code, q.state) else {
        return failed(&state, &LaunchError::State);
    };
    let redirect = redirect_uri(&req, &state);
    let st = state.clone();
    let now = state.clock.now();
    let caller = Caller::of(&req, &state);
    let who_ip = caller.ip.clone();
    let done = web::block(move || -> Result<(String, String), LaunchError> {
        let cfg = |e: db::DbError| LaunchError::Config(e.to_string());
        let mut c = st
            .pool
            .get()
            .map_err(|e| LaunchError::Config(e.to_string()))?;
        let launching = store::get(&mut c, &st.ring, &launch::hash_token(&token))
            .map_err(cfg)?
            .ok_or(LaunchError::State)?;
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .build()
            .map_err(|e| LaunchError::Config(e.to_string()))?;
        let result = launch::finish(
            &http,
            &st.settings.smart,
            &launching,
            &code,
            &st_param,
            &redirect,
            now,
        );
        // The launch row is single-use, whatever the outcome.
        store::delete(&mut c, &launching.id_hash).map_err(cfg)?;
        let who = match &result {
            Ok(s) => identity(s).unwrap_or_default(),
            Err(_) => format!("unknown@{who_ip}"),
        };
        let outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::SeriousFailure
        };
        let mut rec = record(
            &st,
            &caller,
            &who,
            Activity::RecordQuery {
                resource_type: "Patient".into(),
                query: "smart-launch".into(),
            },
            result.as_ref().ok().and_then(|s| s.patient.clone()),
            outcome,
        );
        rec.outcome_desc = result.as_ref().err().map(|e| e.to_string());
        let active = match result {
            Ok(s) => s,
            Err(e) => {
                db::write_tx(&mut c, |c| audit::append(c, &[rec]).map(|_| ())).map_err(cfg)?;
                return Err(e);
            }
        };
        // A fresh cookie for the session (the launch cookie dies here).
        let fresh = {
            let mut b = [0u8; 32];
            openssl::rand::rand_bytes(&mut b).map_err(|e| LaunchError::Config(e.to_string()))?;
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
        };
        let session = store::SmartSession {
            id_hash: launch::hash_token(&fresh),
            ..active
        };
        db::write_tx(&mut c, |c| {
            store::put(c, &st.ring, &session)?;
            audit::append(c, &[rec]).map(|_| ())
        })
        .map_err(cfg)?;
        Ok((fresh, session.patient.unwrap_or_default()))
    })
    .await;
    match done {
        Ok(Ok((fresh, _patient))) => {
            let mut gone = Cookie::new(launch_cookie(&state), "");
            gone.set_path("/");
            gone.make_removal();
            HttpResponse::Found()
                .insert_header(("location", "/app"))
                .cookie(gone)
                .cookie(cookie(
                    &req,
                    &state,
                    app_cookie(&state),
                    fresh,
                    SameSite::Lax,
                ))
                .finish()
        }
        Ok(Err(e)) => failed(&state, &e),
        Err(_) => failed(&state, &LaunchError::Config("busy".into())),
    }
}

/// The active clinician session of this request, refreshed when due.
fn session_of(
    caller: &Caller,
    state: &AppState,
    c: &mut db::DbConn,
) -> Result<Option<store::SmartSession>, db::DbError> {
    let Some(token) = caller.app_cookie.clone() else {
        return Ok(None);
    };
    let Some(s) = store::get(c, &state.ring, &launch::hash_token(&token))? else {
        return Ok(None);
    };
    let now = state.clock.now();
    let idle = Duration::minutes(i64::from(state.settings.smart.idle_minutes));
    if s.phase != "active"
        || now - s.last_seen_at > idle
        || now - s.created_at > Duration::hours(ABSOLUTE_HOURS)
    {
        store::delete(c, &s.id_hash)?;
        return Ok(None);
    }
    store::touch(c, &s.id_hash, now)?;
    Ok(Some(s))
}

/// The page for a session that has ended (idle, absolute limit, signed out):
/// also what the access table answers for a dead `herald_app` cookie.
pub(crate) fn ended(state: &AppState) -> HttpResponse {
    page(
        state,
        StatusCode::UNAUTHORIZED,
        "Signed out",
        "<h1>Your Herald session has ended</h1><p id=\"signed-out\">Open Herald from the patient's chart in the EHR again.</p>",
    )
}

fn label(c: Channel) -> &'static str {
    match c {
        Channel::Sms => "Text (SMS)",
        Channel::Email => "Email",
        Channel::Voice => "Voice",
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct AppQuery {
    patient: Option<String>,
}

/// The clinician as Herald keys them (F7): `{iss}|{fhirUser}`, so an identity
/// from one issuer never collides with another issuer's, nor with a staff
/// account's UUID. Grants and audit agents carry this key.
fn identity(s: &store::SmartSession) -> Option<String> {
    s.fhir_user
        .as_ref()
        .map(|u| format!("{}|{u}", s.iss.trim().trim_end_matches('/')))
}

/// Whether the session's issuer is the EHR Herald follows (F7): only then
/// may it see or change Herald's patients.
fn follows(st: &AppState, s: &store::SmartSession) -> bool {
    let norm = |v: &str| v.trim().trim_end_matches('/').to_string();
    st.settings
        .ehr
        .base_url
        .as_deref()
        .is_some_and(|b| norm(b) == norm(&s.iss))
}

const OTHER_EHR: &str = "<h1>This Herald follows another EHR</h1><p id=\"other-ehr\">You opened Herald from an EHR it does not follow, so it shows no patients here. Open it from the EHR your organisation connected to Herald.</p>";

/// Which patient a request may see, and as whom it is recorded.
enum Access {
    /// The patient, and the audit actor (BTG under a break-glass grant).
    Allowed(String, Actor),
    /// The launch gave no patient and none was asked for.
    NoContext,
    /// Another patient than the launch's, without an active grant.
    NeedsReason(String),
    /// Another patient than the launch's, asked by an identity that is not a
    /// practitioner (F2): never, grant or not.
    Forbidden,
}

/// The launch's patient as the clinician; any other patient only under an
/// active break-glass grant (issue 6 item 4, H2).
fn which_patient(
    c: &mut db::DbConn,
    st: &AppState,
    s: &store::SmartSession,
    requested: Option<&str>,
) -> Result<Access, db::DbError> {
    let who = identity(s).unwrap_or_default();
    let fhir_user = s.fhir_user.clone().unwrap_or_default();
    let requested = requested
        .map(|r| r.trim().trim_start_matches("Patient/").to_string())
        .filter(|r| !r.is_empty());
    match (requested, &s.patient) {
        (None, None) => Ok(Access::NoContext),
        (None, Some(p)) => Ok(Access::Allowed(p.clone(), Actor::Staff(who))),
        (Some(r), Some(p)) if &r == p => Ok(Access::Allowed(r, Actor::Staff(who))),
        (Some(_), _) if !crate::domain::staff::is_practitioner(&fhir_user) => {
            tracing::warn!(target: "security", "another patient than the launch's asked for by a non-practitioner identity; refused");
            Ok(Access::Forbidden)
        }
        (Some(r), _) => {
            let actor = crate::service::staff::actor_for(c, &who, Some(&r), st.clock.now())?;
            Ok(match actor {
                Actor::BreakGlass { .. } => Access::Allowed(r, actor),
                _ => Access::NeedsReason(r),
            })
        }
    }
}

/// GET /app: the clinician page for the patient in context.
pub async fn app_page(
    req: HttpRequest,
    state: web::Data<AppState>,
    q: web::Query<AppQuery>,
) -> HttpResponse {
    let st = state.clone();
    let caller = Caller::of(&req, &state);
    let requested = q.into_inner().patient;
    let done = web::block(move || -> Result<Option<(StatusCode, String)>, db::DbError> {
        let mut c = st.pool.get()?;
        let Some(s) = session_of(&caller, &st, &mut c)? else {
            return Ok(None);
        };
        if !follows(&st, &s) {
            tracing::warn!(target: "security", "a SMART session from an issuer other than the followed EHR asked for a patient; refused");
            return Ok(Some((StatusCode::FORBIDDEN, OTHER_EHR.to_string())));
        }
        let who = identity(&s).unwrap_or_default();
        let display = s.fhir_user.clone().unwrap_or_default();
        let (patient, actor) = match which_patient(&mut c, &st, &s, requested.as_deref())? {
            Access::Allowed(p, a) => (p, a),
            Access::NoContext => {
                return Ok(Some((
                    StatusCode::OK,
                    "<h1>No patient in context</h1><p>Open Herald from a patient's chart.</p>".into(),
                )));
            }
            Access::Forbidden => {
                return Ok(Some((
                    StatusCode::FORBIDDEN,
                    "<h1>Not available</h1><p id=\"not-practitioner\">Only a practitioner may open a patient other than the one in context.</p>".into(),
                )));
            }
            Access::NeedsReason(other) => {
                let csrf = launch::secrets_of(&s).csrf.unwrap_or_default();
                return Ok(Some((StatusCode::OK, format!(
                    "<h1>This patient is not the one you opened Herald for</h1>\
                     <p id=\"break-glass-needed\">To open Patient/{p} outside the launch context, give a reason. Access lasts {m} minutes, \
                     the privacy officer is alerted, and everything you do is recorded as emergency access.</p>\
                     <form method=\"post\" action=\"/app/break-glass\" id=\"break-glass-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                     <input type=\"hidden\" name=\"patient\" value=\"{p}\"><label>Reason <textarea name=\"reason\" required minlength=\"10\"></textarea></label>\
                     <button type=\"submit\">Open with emergency access</button></form>",
                    p = esc(&other),
                    m = st.settings.staff.break_glass_minutes
                ))));
            }
        };
        // S14: refresh the EHR's token shortly before it expires.
        let http = reqwest::blocking::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .build()
            .map_err(|e| db::DbError::Other(e.into()))?;
        let s = match launch::refresh_if_due(&http, &st.settings.smart, &s, &caller.redirect_uri, st.clock.now()) {
            Ok(Some(fresh)) => {
                store::put(&mut c, &st.ring, &fresh)?;
                fresh
            }
            Ok(None) => s,
            Err(e) => {
                // F8e: the EHR refused the refresh (revoked, or the user's
                // access ended there): so does this session.
                tracing::warn!(target: "security", error = %e, "the EHR token could not be refreshed; the SMART session ends");
                store::delete(&mut c, &s.id_hash)?;
                return Ok(None);
            }
        };
        let csrf = launch::secrets_of(&s).csrf.unwrap_or_default();
        let held = patients::get(&mut c, &st.ring, &patient)?;
        // Not followed by Herald yet: the banner comes from the EHR, read
        // with the clinician's own token (and audited as their read).
        let ehr_name = if held.is_none() && s.need_banner {
            let name = read_patient_name(&http, &s, &patient);
            let mut rec = record(
                &st,
                &caller,
                &who,
                Activity::EhrRest {
                    interaction: crate::domain::audit::RestInteraction::Read,
                    resource_type: "Patient".into(),
                    id: Some(patient.clone()),
                    query: None,
                    token_jti: None,
                },
                Some(patient.clone()),
                if name.is_some() {
                    Outcome::Success
                } else {
                    Outcome::MinorFailure
                },
            )
            .by(actor.clone());
            rec.ehr = Some(s.iss.clone());
            audit::append_now(&mut c, &[rec])?;
            name
        } else {
            None
        };
        let mut html = String::new();
        if s.need_banner {
            let name = held
                .as_ref()
                .map(|p| p.name.expose().to_string())
                .or(ehr_name)
                .unwrap_or_default();
            html.push_str(&format!(
                "<header id=\"banner\"><strong id=\"patient-name\">{}</strong> <span id=\"patient-id\">Patient/{}</span></header>",
                esc(&name),
                esc(&patient)
            ));
        }
        html.push_str(&format!("<p>Signed in from the EHR as <span id=\"clinician\">{}</span>.</p>", esc(&display)));
        match &held {
            None => html.push_str("<p id=\"not-followed\">Herald holds no record of this patient yet: no messages have been planned.</p>"),
            Some(p) => html.push_str(&format!(
                "<p>Preferred language: <span id=\"language\">{}</span></p>",
                esc(p.language.as_deref().unwrap_or("not stated"))
            )),
        }
        // Consent per channel and purpose, with its evidence.
        html.push_str("<h2>Consent</h2><table id=\"consents\"><tr><th>Channel</th><th>Purpose</th><th>Decision</th><th>When</th><th>Evidence</th></tr>");
        let mut entries = consents::entries_for(&mut c, &patient)?;
        entries.sort_by_key(|e| std::cmp::Reverse(e.recorded_at));
        for e in &entries {
            let evidence = consents::resource_of(&mut c, &st.ring, &e.consent_id)?
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
                .and_then(|v| v.get("policyRule").and_then(|p| p.get("text")).and_then(|t| t.as_str()).map(String::from))
                .unwrap_or_default();
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                label(e.channel),
                esc(e.purpose.map_or("every purpose", Purpose::code)),
                if e.decision == crate::domain::consent::Decision::Permit { "permit" } else { "deny" },
                e.recorded_at.format("%Y-%m-%d %H:%M UTC"),
                esc(&evidence)
            ));
        }
        html.push_str("</table>");
        // Messages, upcoming and past, with delivery status.
        let msgs = outbox::search(
            &mut c,
            &outbox::Search {
                patient: Some(patient.clone()),
                states: None,
                purposes: None,
                sent_from: None,
                sent_to: None,
                after: None,
                limit: 100,
            },
        )?;
        html.push_str("<h2>Messages</h2><table id=\"messages\"><tr><th>Message</th><th>About</th><th>Due</th><th>State</th><th>Channel</th><th>Delivery</th><th>Reason</th></tr>");
        for m in &msgs {
            html.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&m.kind),
                esc(&m.about),
                m.due_at.format("%Y-%m-%d %H:%M UTC"),
                esc(&m.state),
                esc(m.channel.as_deref().unwrap_or("")),
                esc(m.delivery_status.as_deref().unwrap_or("")),
                esc(m.reason.as_deref().unwrap_or(""))
            ));
        }
        html.push_str("</table>");
        // Record a consent given in person (the wording shown is required).
        let pid = esc(&patient);
        html.push_str(&format!(
            "<h2>Record consent given in person</h2><form method=\"post\" action=\"/app/consent\" id=\"consent-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"patient\" value=\"{pid}\">\
             <label>Channel <select name=\"channel\"><option value=\"sms\">Text (SMS)</option><option value=\"email\">Email</option><option value=\"voice\">Voice</option></select></label> \
             <label>Purpose <select name=\"purpose\"><option value=\"appointment\">Appointments</option><option value=\"medication\">Medications</option><option value=\"billing\">Billing</option></select></label> \
             <label>Decision <select name=\"decision\"><option value=\"permit\">Permit</option><option value=\"deny\">Deny</option></select></label><br>\
             <label>Wording shown to the patient <textarea name=\"wording\" required minlength=\"10\"></textarea></label><br><button type=\"submit\">Record</button></form>"
        ));
        html.push_str(&format!(
            "<h2>Send a message now</h2><form method=\"post\" action=\"/app/send\" id=\"send-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"patient\" value=\"{pid}\">\
             <label>Message <select name=\"kind\"><option value=\"appointment-confirmation\">Appointment confirmation</option><option value=\"reminder-24h\">Appointment reminder</option></select></label> \
             <label>Appointment id <input name=\"appointment\" required></label> <button type=\"submit\">Send</button></form>"
        ));
        let rec = record(
            &st,
            &caller,
            &who,
            Activity::RecordQuery {
                resource_type: "Patient".into(),
                query: format!("app&patient=Patient/{patient}"),
            },
            Some(patient.clone()),
            Outcome::Success,
        )
        .by(actor.clone());
        audit::append_now(&mut c, &[rec])?;
        Ok(Some((StatusCode::OK, html)))
    })
    .await;
    match done {
        Ok(Ok(Some((status, body)))) => page(&state, status, "Herald", &body),
        Ok(Ok(None)) => ended(&state),
        _ => page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<h1>Herald is busy; try again.</h1>",
        ),
    }
}

fn form_field<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

fn csrf_ok(s: &store::SmartSession, given: Option<&str>) -> bool {
    let want = launch::secrets_of(s).csrf.unwrap_or_default();
    let given = given.unwrap_or_default();
    !want.is_empty()
        && want.len() == given.len()
        && openssl::memcmp::eq(want.as_bytes(), given.as_bytes())
}

enum Act {
    Consent,
    Send,
    BreakGlass,
}

async fn act(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
    what: Act,
) -> HttpResponse {
    let form = form.into_inner();
    let st = state.clone();
    let caller = Caller::of(&req, &state);
    let done = web::block(
        move || -> Result<Result<Option<String>, StatusCode>, db::DbError> {
            let mut c = st.pool.get()?;
            let Some(s) = session_of(&caller, &st, &mut c)? else {
                return Ok(Err(StatusCode::UNAUTHORIZED));
            };
            if !csrf_ok(&s, form_field(&form, "csrf")) {
                return Ok(Err(StatusCode::FORBIDDEN));
            }
            // F7: only sessions from the followed EHR touch its patients.
            if !follows(&st, &s) {
                return Ok(Err(StatusCode::FORBIDDEN));
            }
            // F2: no fhirUser, no identity to act or be recorded as.
            let (Some(who), Some(fhir_user)) = (identity(&s), s.fhir_user.clone()) else {
                return Ok(Err(StatusCode::FORBIDDEN));
            };
            let access = which_patient(&mut c, &st, &s, form_field(&form, "patient"))?;
            if let (Act::BreakGlass, Access::NeedsReason(other)) = (&what, &access) {
                // H2: a reason, a time limit, an alert, and BTG on all that follows.
                let reason = form_field(&form, "reason").unwrap_or_default();
                let origin = crate::service::staff::Origin {
                    address: caller.ip.clone(),
                    request_id: caller.request_id.clone(),
                };
                let granted = crate::service::staff::break_glass(
                    &mut c,
                    &st.ring,
                    &st.settings.staff,
                    st.clock.now(),
                    &crate::service::staff::Emergency {
                        user_id: &who,
                        patient: other,
                        reason,
                    },
                    &origin,
                )?;
                return Ok(match granted {
                    Ok(grant) => {
                        if let Some(url) = &st.settings.staff.alert_webhook {
                            crate::service::staff::raise_alert(
                                url.expose().to_string(),
                                crate::service::staff::alert_payload(&grant),
                            );
                        }
                        Ok(Some(format!(
                            "/app?patient={}",
                            super::audit_api::encode(other)
                        )))
                    }
                    Err(crate::domain::staff::BreakGlassRefusal::TooMany) => {
                        Err(StatusCode::TOO_MANY_REQUESTS)
                    }
                    Err(_) => Err(StatusCode::BAD_REQUEST),
                });
            }
            let (patient, actor) = match access {
                Access::Allowed(p, a) => (p, a),
                Access::NoContext => return Ok(Err(StatusCode::BAD_REQUEST)),
                Access::NeedsReason(_) | Access::Forbidden => {
                    return Ok(Err(StatusCode::FORBIDDEN));
                }
            };
            let now = st.clock.now();
            match what {
                // Already allowed: nothing to grant.
                Act::BreakGlass => {}
                Act::Consent => {
                    let channel = match form_field(&form, "channel") {
                        Some("sms") => Channel::Sms,
                        Some("email") => Channel::Email,
                        Some("voice") => Channel::Voice,
                        _ => return Ok(Err(StatusCode::BAD_REQUEST)),
                    };
                    let purpose = match form_field(&form, "purpose") {
                        Some("appointment") => Purpose::Appointment,
                        Some("medication") => Purpose::Medication,
                        Some("billing") => Purpose::Billing,
                        _ => return Ok(Err(StatusCode::BAD_REQUEST)),
                    };
                    let permit = form_field(&form, "decision") == Some("permit");
                    let wording = form_field(&form, "wording")
                        .unwrap_or_default()
                        .trim()
                        .to_string();
                    if wording.chars().count() < 10 {
                        return Ok(Err(StatusCode::BAD_REQUEST));
                    }
                    let Some(p) = patients::get(&mut c, &st.ring, &patient)? else {
                        return Ok(Err(StatusCode::NOT_FOUND));
                    };
                    let address = match channel {
                        Channel::Email => p.email.map(|e| e.expose().to_string()),
                        _ => p.phone.map(|ph| ph.expose().to_string()),
                    };
                    let Some(address) = address else {
                        return Ok(Err(StatusCode::BAD_REQUEST));
                    };
                    let id = uuid::Uuid::new_v4().to_string();
                    let rule =
                        format!("Given in person to {fhir_user}; wording shown: \"{wording}\"");
                    let resource =
                        crate::fhir::consent::resource(&crate::fhir::consent::ConsentDraft {
                            id: &id,
                            patient: &patient,
                            performer: Some(&fhir_user),
                            permit,
                            channel,
                            purpose: Some(purpose),
                            address: Some(&address),
                            rule: &rule,
                            at: now,
                        });
                    let v: serde_json::Value = serde_json::from_str(&resource)
                        .map_err(|e| db::DbError::Other(e.into()))?;
                    crate::service::ingest::record_consent(
                        &mut c,
                        &st.ring,
                        st.clock.as_ref(),
                        &v,
                        "clinician",
                        actor,
                        None,
                        crate::service::ingest::FutureDated::Refuse,
                    )
                    .map_err(|e| db::DbError::Other(anyhow::anyhow!("{e}")))?;
                }
                Act::Send => {
                    let kind = match form_field(&form, "kind") {
                        Some(k @ ("appointment-confirmation" | "reminder-24h")) => k.to_string(),
                        _ => return Ok(Err(StatusCode::BAD_REQUEST)),
                    };
                    let appt = form_field(&form, "appointment")
                        .unwrap_or_default()
                        .trim()
                        .trim_start_matches("Appointment/")
                        .to_string();
                    let about = format!("Appointment/{appt}");
                    let owner = crate::db::resources::patient_of(&mut c, "Appointment", &appt)?;
                    if owner.as_deref() != Some(patient.as_str()) {
                        return Ok(Err(StatusCode::NOT_FOUND));
                    }
                    let intent = outbox::NewIntent {
                        id: uuid::Uuid::new_v4().to_string(),
                        dedupe_key: format!("manual:{}", uuid::Uuid::new_v4()),
                        patient_id: patient.clone(),
                        kind,
                        purpose: Purpose::Appointment.code().into(),
                        about: about.clone(),
                        due_at: now,
                        expires_at: Some(now + Duration::hours(24)),
                    };
                    let rec = record(
                        &st,
                        &caller,
                        &who,
                        Activity::RecordQuery {
                            resource_type: "Communication".into(),
                            query: format!("send-now&about={about}"),
                        },
                        Some(patient.clone()),
                        Outcome::Success,
                    )
                    .by(actor.clone());
                    db::write_tx(&mut c, |c| {
                        outbox::enqueue(c, &intent, now)?;
                        audit::append(c, &[rec]).map(|_| ())
                    })?;
                }
            }
            Ok(Ok(Some(format!(
                "/app?patient={}",
                super::audit_api::encode(&patient)
            ))))
        },
    )
    .await;
    match done {
        Ok(Ok(Ok(to))) => HttpResponse::SeeOther()
            .insert_header(("location", to.unwrap_or_else(|| "/app".into())))
            .finish(),
        Ok(Ok(Err(StatusCode::UNAUTHORIZED))) => ended(&state),
        Ok(Ok(Err(code))) => page(
            &state,
            code,
            "Not done",
            "<h1>That was not done</h1><p id=\"refused\">Reload Herald from the EHR and try again.</p>",
        ),
        _ => page(
            &state,
            StatusCode::SERVICE_UNAVAILABLE,
            "Try again",
            "<h1>Herald is busy; try again.</h1>",
        ),
    }
}

/// POST /app/consent.
pub async fn record_consent(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    act(req, state, form, Act::Consent).await
}

/// POST /app/send.
pub async fn send_now(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    act(req, state, form, Act::Send).await
}

/// POST /app/break-glass: open a patient outside the launch context.
pub async fn break_glass(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<Vec<(String, String)>>,
) -> HttpResponse {
    act(req, state, form, Act::BreakGlass).await
}

/// The store could not be asked whether a session is live.
#[derive(Debug)]
pub(crate) struct Unavailable;

/// Whether the request carries the cookie of a live (active, within its idle
/// and absolute limits) clinician session: the access table's check
/// (`web::access`); the handlers load, refresh and touch the session.
pub(crate) async fn has_live_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<bool, Unavailable> {
    let Some(token) = req
        .cookie(&app_cookie(state))
        .map(|c| c.value().to_string())
    else {
        return Ok(false);
    };
    let st = state.clone();
    let live = web::block(move || -> Result<bool, crate::db::DbError> {
        let mut c = st.pool.get()?;
        let Some(s) = store::get(&mut c, &st.ring, &launch::hash_token(&token))? else {
            return Ok(false);
        };
        let now = st.clock.now();
        let idle = Duration::minutes(i64::from(st.settings.smart.idle_minutes));
        Ok(s.phase == "active"
            && now - s.last_seen_at <= idle
            && now - s.created_at <= Duration::hours(ABSOLUTE_HOURS))
    })
    .await;
    match live {
        Ok(Ok(live)) => Ok(live),
        Ok(Err(_)) | Err(_) => Err(Unavailable),
    }
}
