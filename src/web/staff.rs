//! Staff sign-in (`/login`, `/logout`), administration (`/admin`) and
//! break-glass (`/break-glass`), and [`Staff`]: who is signed in, from the
//! `herald_session` cookie or an auditor's `Authorization: Bearer` token.
//!
//! Pages: no scripts, a CSP without inline anything, every value escaped,
//! every form carrying a CSRF token (for `/login`, a token bound to the
//! browser's SameSite=Strict cookie and to its issue time, refused after 30
//! minutes or from another browser; the session's own token after it).
//! Cookies are HttpOnly, SameSite=Strict, Path=/; when Herald is reached
//! over TLS (`server.tls_cert`, or an https `server.public_url`) they are
//! also Secure and named with the `__Host-` prefix, so a sibling subdomain
//! cannot plant them (issue 11 F8d, F8i); plain names on plain http (the
//! loopback demo).
//!
//! A sign-in is rate limited per client address (the access table's gate)
//! and per submitted name (here, before anything else is read), and its
//! password check waits at most `limits.password_wait_ms` for one of
//! `limits.password_checks` slots, else it is answered 503 with Retry-After
//! without running argon2 (issue 11 F5c).
//!
//! Other handlers ask for a role with [`require`] (401 / 403 as
//! problem+json) or [`require_page`] (a redirect to `/login` / a 403 page),
//! or take [`Staff`] as an extractor (any role).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{ApiError, AppState, RequestId, peer};
pub use crate::domain::staff::Role;
use crate::error::AppError;
use crate::render::escape_markup;
pub use crate::service::staff::Staff;
use crate::service::staff::{self as svc, Attempt, Emergency, Origin, SignIn};

/// The session cookie (plain http).
pub const SESSION_COOKIE: &str = "herald_session";
/// The session cookie when Herald is reached over TLS.
pub const SESSION_COOKIE_TLS: &str = "__Host-herald_session";
/// The sign-in form's browser cookie (plain http).
const LOGIN_CSRF_COOKIE: &str = "herald_login_csrf";
/// The sign-in form's browser cookie over TLS.
const LOGIN_CSRF_COOKIE_TLS: &str = "__Host-herald_login_csrf";
/// How long a sign-in form's token is accepted.
const LOGIN_CSRF_SECS: i64 = 30 * 60;

fn secure(state: &AppState) -> bool {
    super::served_over_tls(&state.settings)
}

/// The name of the session cookie under these settings.
pub fn session_cookie(state: &AppState) -> &'static str {
    if secure(state) {
        SESSION_COOKIE_TLS
    } else {
        SESSION_COOKIE
    }
}

fn login_cookie(state: &AppState) -> &'static str {
    if secure(state) {
        LOGIN_CSRF_COOKIE_TLS
    } else {
        LOGIN_CSRF_COOKIE
    }
}

fn origin(req: &HttpRequest) -> Origin {
    Origin {
        address: peer(req),
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}

pub(crate) fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "content-security-policy",
            "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("referrer-policy", "no-referrer"))
        .insert_header(("x-frame-options", "DENY"))
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title></head><body>{body}</body></html>",
            escape_markup(title)
        ))
}

pub(crate) fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("location", to))
        .finish()
}

fn unavailable() -> HttpResponse {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<main><h1>Please try again in a few minutes</h1></main>",
    )
}

/// 503 with Retry-After: every password-check slot stayed busy.
fn busy() -> HttpResponse {
    let mut res = page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Try again",
        "<main><h1>Herald is busy; please try again in a few seconds</h1></main>",
    );
    res.headers_mut().insert(
        actix_web::http::header::RETRY_AFTER,
        actix_web::http::header::HeaderValue::from_static("5"),
    );
    res
}

fn db_error(req: &HttpRequest, e: crate::db::DbError) -> ApiError {
    ApiError::new(req, AppError::from(e))
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// Who is signed in: the session cookie (idle and absolute limits applied,
/// `last_seen_at` moved) or else an auditor's bearer token. `None` when
/// neither holds.
pub async fn authenticate(req: &HttpRequest, state: &AppState) -> Result<Option<Staff>, ApiError> {
    // The access table's middleware has already looked (`web::access`).
    if let super::access::Caller::Staff(s) = super::access::Caller::of(req) {
        return Ok(Some(s));
    }
    let cookie = req
        .cookie(session_cookie(state))
        .map(|c| c.value().to_string());
    let token = bearer(req);
    lookup(req, state, cookie, token).await
}

/// The staff member of the session cookie alone (for `web::access`).
pub(crate) async fn session_of(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Option<Staff>, ApiError> {
    let cookie = req
        .cookie(session_cookie(state))
        .map(|c| c.value().to_string());
    lookup(req, state, cookie, None).await
}

/// The staff member of an API bearer token alone (for `web::access`).
pub(crate) async fn token_of(token: &str, state: &AppState) -> Result<Option<Staff>, ApiError> {
    if !token.starts_with(svc::TOKEN_PREFIX) {
        return Ok(None);
    }
    let st = state.clone();
    let token = token.to_string();
    let found = web::block(move || -> Result<Option<Staff>, crate::db::DbError> {
        let mut c = st.pool.get()?;
        svc::token_staff(&mut c, st.clock.now(), &token)
    })
    .await;
    match found {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(ApiError::for_path("/", AppError::from(e))),
        Err(e) => Err(ApiError::for_path(
            "/",
            AppError::Internal(anyhow::anyhow!("{e}")),
        )),
    }
}

async fn lookup(
    req: &HttpRequest,
    state: &AppState,
    cookie: Option<String>,
    token: Option<String>,
) -> Result<Option<Staff>, ApiError> {
    if cookie.is_none() && token.is_none() {
        return Ok(None);
    }
    let st = state.clone();
    let from = origin(req);
    let found = web::block(move || -> Result<Option<Staff>, crate::db::DbError> {
        let mut c = st.pool.get()?;
        let now = st.clock.now();
        if let Some(cookie) = cookie
            && let Some(s) = svc::session_staff(&mut c, &st.settings.staff, now, &cookie, &from)?
        {
            return Ok(Some(s));
        }
        match token {
            Some(t) => svc::token_staff(&mut c, now, &t),
            None => Ok(None),
        }
    })
    .await;
    match found {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(db_error(req, e)),
        Err(e) => Err(super::internal(req, e)),
    }
}

/// The signed-in staff member when their role is one of `roles`: 401 when
/// nobody is signed in, 403 when the role is wrong.
pub async fn require(
    req: &HttpRequest,
    state: &AppState,
    roles: &[Role],
) -> Result<Staff, ApiError> {
    match authenticate(req, state).await? {
        None => Err(ApiError::new(req, AppError::Unauthorized)),
        Some(s) if roles.contains(&s.role) => Ok(s),
        Some(_) => Err(ApiError::new(req, AppError::Forbidden)),
    }
}

/// [`require`] for pages: a redirect to `/login` when nobody is signed in, a
/// 403 page when the role is wrong.
pub async fn require_page(
    req: &HttpRequest,
    state: &AppState,
    roles: &[Role],
) -> Result<Staff, HttpResponse> {
    match authenticate(req, state).await {
        Ok(None) => Err(see_other("/login")),
        Ok(Some(s)) if roles.contains(&s.role) => Ok(s),
        Ok(Some(_)) => Err(page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "<main><h1>Your role does not allow this page</h1><p><a href=\"/login\">Back</a></p></main>",
        )),
        Err(_) => Err(unavailable()),
    }
}

impl FromRequest for Staff {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| super::internal(&req, "AppState missing"))?;
            require(&req, &state, &Role::ALL).await
        })
    }
}

/// The browser's sign-in cookie, when it has a well-formed one.
fn browser_of(req: &HttpRequest, state: &AppState) -> Option<String> {
    let v = req.cookie(login_cookie(state))?.value().to_string();
    let ok = (32..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(v)
}

/// The keyed MAC (a key derived from the key ring) binding a form token to
/// a browser and an issue time.
fn login_csrf_mac(state: &AppState, browser: &str, issued: i64, nonce: &str) -> String {
    state
        .ring
        .blind_index("login-csrf", &format!("{browser}.{issued}.{nonce}"))
}

/// The sign-in form's CSRF token for a browser: `issued.nonce.mac`, so it
/// matches only that browser's cookie and only for 30 minutes (F8i).
fn login_csrf_new(state: &AppState, browser: &str) -> Option<String> {
    let nonce = crate::crypto::random_token().ok()?;
    let issued = state.clock.now().timestamp();
    let mac = login_csrf_mac(state, browser, issued, &nonce);
    Some(format!("{issued}.{nonce}.{mac}"))
}

fn login_csrf_ok(state: &AppState, browser: Option<&str>, field: &str) -> bool {
    let Some(browser) = browser else {
        return false;
    };
    let mut parts = field.splitn(3, '.');
    let (Some(issued), Some(nonce), Some(mac)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let Ok(issued) = issued.parse::<i64>() else {
        return false;
    };
    let age = state.clock.now().timestamp().saturating_sub(issued);
    (-60..=LOGIN_CSRF_SECS).contains(&age)
        && crate::crypto::same_secret(mac, &login_csrf_mac(state, browser, issued, nonce))
}

fn cookie<'a>(state: &AppState, name: &'a str, value: String, path: &'a str) -> Cookie<'a> {
    Cookie::build(name, value)
        .path(path)
        .http_only(true)
        .secure(secure(state))
        .same_site(SameSite::Strict)
        .finish()
}

fn logout_form(staff: &Staff) -> String {
    format!(
        "<form method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button type=\"submit\" id=\"logout\">Sign out</button></form>",
        escape_markup(staff.csrf.as_deref().unwrap_or_default())
    )
}

fn nav(staff: &Staff) -> String {
    let mut links = Vec::new();
    if staff.role == Role::Admin {
        links.push("<a href=\"/admin\">Accounts</a>");
    }
    if staff.role == Role::Clinician {
        links.push("<a href=\"/break-glass\">Emergency access</a>");
    }
    if staff.role == Role::Auditor {
        links.push("<a href=\"/fhir/AuditEvent?_sort=-date&amp;_count=20\">Audit log</a>");
    }
    format!(
        "<header><p>Signed in as <strong id=\"who\">{}</strong> ({}). {}</p>{}</header>",
        escape_markup(&staff.name),
        staff.role.code(),
        links.join(" · "),
        logout_form(staff)
    )
}

fn login_page(
    state: &AppState,
    browser: Option<String>,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let Some(browser) = browser.or_else(|| crate::crypto::random_token().ok()) else {
        return unavailable();
    };
    let Some(csrf) = login_csrf_new(state, &browser) else {
        return unavailable();
    };
    let mut html = String::from("<main><h1>Sign in to Herald</h1>");
    if let Some(e) = error {
        html.push_str(&format!(
            "<p role=\"alert\" id=\"error\">{}</p>",
            escape_markup(e)
        ));
    }
    html.push_str("<form method=\"post\" action=\"/login\">");
    html.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape_markup(&csrf)
    ));
    html.push_str("<p><label for=\"name\">Name</label><br><input id=\"name\" name=\"name\" autocomplete=\"username\" maxlength=\"64\" required></p>");
    html.push_str("<p><label for=\"password\">Password</label><br><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>");
    html.push_str("<p><label for=\"code\">Code from your authenticator app</label><br><input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"7\" required></p>");
    html.push_str("<button type=\"submit\" id=\"signin\">Sign in</button></form></main>");
    let mut resp = page(status, "Sign in", &html);
    let _ = resp.add_cookie(&cookie(state, login_cookie(state), browser, "/"));
    resp
}

/// GET /login: the form, or who is signed in.
pub async fn login_form(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    match authenticate(&req, &state).await {
        Ok(Some(staff)) if staff.csrf.is_some() => page(
            StatusCode::OK,
            "Signed in",
            &format!("<main>{}<h1>Herald</h1></main>", nav(&staff)),
        ),
        Ok(_) => login_page(&state, browser_of(&req, &state), StatusCode::OK, None),
        Err(_) => unavailable(),
    }
}

/// The sign-in form as posted (missing fields read as empty).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct LoginForm {
    name: String,
    password: String,
    code: String,
    csrf: String,
}

/// Said for every failed sign-in: never which factor, never "locked".
const SIGN_IN_FAILED: &str = "Sign-in failed. Check your name, password and code and try again; after repeated failures the account is locked for a while.";

/// POST /login
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<LoginForm>,
) -> HttpResponse {
    let form = form.into_inner();
    let browser = browser_of(&req, &state);
    if !login_csrf_ok(&state, browser.as_deref(), &form.csrf) {
        return login_page(
            &state,
            browser,
            StatusCode::FORBIDDEN,
            Some("The form expired or was not sent from this page. Please sign in again."),
        );
    }
    // Per submitted name, kept only as a keyed hash (F5c).
    let name_key = state
        .ring
        .blind_index("login-rate", &form.name.trim().to_lowercase());
    if let Err(r) = state.limits.check_account(name_key) {
        return super::limits::too_many(&req, r);
    }
    // At most `limits.password_checks` argon2 runs at once; a sign-in that
    // cannot get a slot soon is told to come back, and runs nothing.
    let slots = Arc::clone(&state.limits.password_slots);
    let permit = match tokio::time::timeout(state.limits.password_wait, slots.acquire_owned()).await
    {
        Ok(Ok(p)) => p,
        _ => {
            tracing::warn!(target: "security", "sign-in deferred: every password-check slot is busy");
            return busy();
        }
    };
    let st = state.clone();
    let from = origin(&req);
    let done = web::block(move || -> Result<SignIn, crate::db::DbError> {
        // Held until the check and its records are done.
        let _permit = permit;
        let mut c = st.pool.get()?;
        let attempt = Attempt {
            name: form.name.trim(),
            password: &form.password,
            code: &form.code,
        };
        svc::sign_in(
            &mut c,
            &st.ring,
            &st.settings.staff,
            st.clock.now(),
            &attempt,
            &from,
        )
    })
    .await;
    match done {
        Ok(Ok(SignIn::Session { token, staff })) => {
            let to = match staff.role {
                Role::Admin => "/admin",
                Role::Clinician => "/break-glass",
                Role::Auditor => "/login",
            };
            let mut resp = see_other(to);
            let _ = resp.add_cookie(&cookie(&state, session_cookie(&state), token, "/"));
            let _ =
                resp.add_removal_cookie(&cookie(&state, login_cookie(&state), String::new(), "/"));
            resp
        }
        Ok(Ok(SignIn::Refused)) => login_page(
            &state,
            browser,
            StatusCode::UNAUTHORIZED,
            Some(SIGN_IN_FAILED),
        ),
        _ => unavailable(),
    }
}

/// A form that carries only the session's CSRF token.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CsrfForm {
    csrf: String,
}

fn csrf_refused() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "Not done",
        "<main><h1>The form expired or was not sent from this site</h1><p><a href=\"/login\">Back</a></p></main>",
    )
}

/// POST /logout
pub async fn logout(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CsrfForm>,
) -> HttpResponse {
    let staff = match require_page(&req, &state, &Role::ALL).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    if !staff.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    let Some(token) = req
        .cookie(session_cookie(&state))
        .map(|c| c.value().to_string())
    else {
        return see_other("/login");
    };
    let st = state.clone();
    let from = origin(&req);
    let done = web::block(move || -> Result<bool, crate::db::DbError> {
        let mut c = st.pool.get()?;
        svc::sign_out(&mut c, st.clock.now(), &token, &from)
    })
    .await;
    match done {
        Ok(Ok(_)) => {
            let mut resp = see_other("/login");
            let _ = resp.add_removal_cookie(&cookie(
                &state,
                session_cookie(&state),
                String::new(),
                "/",
            ));
            resp
        }
        _ => unavailable(),
    }
}

/// GET /admin: the accounts, their roles and states (admins only; no secrets).
pub async fn admin(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let staff = match require_page(&req, &state, &[Role::Admin]).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let st = state.clone();
    let users = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = st.pool.get()?;
        crate::db::staff::list_users(&mut c)
    })
    .await;
    let Ok(Ok(users)) = users else {
        return unavailable();
    };
    let now = state.clock.now();
    let mut html = format!("<main>{}<h1>Staff accounts</h1>", nav(&staff));
    html.push_str("<table id=\"users\"><thead><tr><th>Name</th><th>Role</th><th>State</th><th>Created</th></tr></thead><tbody>");
    for u in &users {
        let state_text = if u.disabled {
            "disabled".to_string()
        } else if crate::domain::staff::is_locked(u.locked_until, now) {
            format!(
                "locked until {}",
                u.locked_until
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default()
            )
        } else {
            "active".to_string()
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_markup(&u.name),
            u.role.code(),
            escape_markup(&state_text),
            u.created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ));
    }
    html.push_str("</tbody></table><p>Accounts are added with <code>herald user add NAME --role admin|clinician|auditor</code>; a lockout is lifted with <code>herald user unlock NAME</code>.</p></main>");
    page(StatusCode::OK, "Staff accounts", &html)
}

fn break_glass_page(
    state: &AppState,
    staff: &Staff,
    status: StatusCode,
    patient: &str,
    error: Option<&str>,
    grants: &[crate::domain::staff::Grant],
) -> HttpResponse {
    let mut html = format!(
        "<main>{}<h1>Emergency access (break-glass)</h1>",
        nav(staff)
    );
    html.push_str(&format!(
        "<p>Open a patient outside the EHR launch only in an emergency. Your reason is recorded, access ends after {} minutes, the privacy officer is alerted, and everything you do under it is audited.</p>",
        state.settings.staff.break_glass_minutes
    ));
    if !grants.is_empty() {
        html.push_str("<h2>In force</h2><ul id=\"grants\">");
        for g in grants {
            html.push_str(&format!(
                "<li><a href=\"/break-glass/{}\">Patient/{}</a> until {}</li>",
                escape_markup(&g.id),
                escape_markup(&g.patient_id),
                g.ends.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ));
        }
        html.push_str("</ul>");
    }
    if let Some(e) = error {
        html.push_str(&format!(
            "<p role=\"alert\" id=\"error\">{}</p>",
            escape_markup(e)
        ));
    }
    html.push_str("<form method=\"post\" action=\"/break-glass\">");
    html.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape_markup(staff.csrf.as_deref().unwrap_or_default())
    ));
    html.push_str(&format!(
        "<p><label for=\"patient\">Patient id (as the EHR knows it)</label><br><input id=\"patient\" name=\"patient\" maxlength=\"64\" required value=\"{}\"></p>",
        escape_markup(patient)
    ));
    html.push_str("<p><label for=\"reason\">Reason (at least 10 characters)</label><br><textarea id=\"reason\" name=\"reason\" minlength=\"10\" maxlength=\"2000\" required></textarea></p>");
    html.push_str(
        "<button type=\"submit\" id=\"open\">Open with emergency access</button></form></main>",
    );
    page(status, "Emergency access", &html)
}

async fn grants_of(
    state: &AppState,
    user_id: &str,
) -> Result<Vec<crate::domain::staff::Grant>, ()> {
    let st = state.clone();
    let user = user_id.to_string();
    match web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = st.pool.get()?;
        crate::db::staff::active_grants(&mut c, &user, None, st.clock.now())
    })
    .await
    {
        Ok(Ok(g)) => Ok(g),
        _ => Err(()),
    }
}

/// `?patient=` on the break-glass page.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PatientQuery {
    patient: String,
}

/// GET /break-glass: the grants in force and the request form (clinicians).
pub async fn break_glass_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PatientQuery>,
) -> HttpResponse {
    let staff = match require_page(&req, &state, &[Role::Clinician]).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let Ok(grants) = grants_of(&state, &staff.user_id).await else {
        return unavailable();
    };
    break_glass_page(
        &state,
        &staff,
        StatusCode::OK,
        &query.patient,
        None,
        &grants,
    )
}

/// The break-glass form as posted.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct BreakGlassForm {
    csrf: String,
    patient: String,
    reason: String,
}

/// POST /break-glass: a grant for `staff.break_glass_minutes`, an alert (log
/// and `staff.alert_webhook`), an AuditEvent with purposeOfUse BTG.
pub async fn break_glass(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<BreakGlassForm>,
) -> HttpResponse {
    let staff = match require_page(&req, &state, &[Role::Clinician]).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let form = form.into_inner();
    if !staff.csrf_ok(&form.csrf) {
        return csrf_refused();
    }
    let st = state.clone();
    let from = origin(&req);
    let user = staff.user_id.clone();
    let patient = form.patient.trim().to_string();
    let p = patient.clone();
    let done = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = st.pool.get()?;
        let request = Emergency {
            user_id: &user,
            patient: &p,
            reason: &form.reason,
        };
        svc::break_glass(
            &mut c,
            &st.ring,
            &st.settings.staff,
            st.clock.now(),
            &request,
            &from,
        )
    })
    .await;
    match done {
        Ok(Ok(Ok(grant))) => {
            if let Some(url) = &state.settings.staff.alert_webhook {
                svc::raise_alert(url.expose().to_string(), svc::alert_payload(&grant));
            }
            see_other(&format!(
                "/break-glass/{}",
                crate::crypto::totp::percent(&grant.id)
            ))
        }
        Ok(Ok(Err(refusal))) => {
            let Ok(grants) = grants_of(&state, &staff.user_id).await else {
                return unavailable();
            };
            break_glass_page(
                &state,
                &staff,
                StatusCode::BAD_REQUEST,
                &patient,
                Some(refusal.message()),
                &grants,
            )
        }
        _ => unavailable(),
    }
}

/// GET /break-glass/{grant}: the grant's patient, read-only — consents and
/// messages — for the clinician it was made for, while it lasts; the read is
/// audited with purposeOfUse BTG before the page is sent (issue 11 F8j).
pub async fn break_glass_view(
    req: HttpRequest,
    state: web::Data<AppState>,
    grant: web::Path<String>,
) -> HttpResponse {
    let staff = match require_page(&req, &state, &[Role::Clinician]).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let st = state.clone();
    let from = origin(&req);
    let user = staff.user_id.clone();
    let grant = grant.into_inner();
    let found = web::block(move || -> Result<_, crate::db::DbError> {
        let mut c = st.pool.get()?;
        svc::grant_view(&mut c, &user, &grant, st.clock.now(), &from)
    })
    .await;
    let view = match found {
        Ok(Ok(Some(v))) => v,
        Ok(Ok(None)) => {
            return page(
                StatusCode::NOT_FOUND,
                "No emergency access",
                "<main><h1>No emergency access in force</h1><p>This grant is not yours or has ended. <a href=\"/break-glass\">Request access</a></p></main>",
            );
        }
        _ => return unavailable(),
    };
    let ts =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut html = format!(
        "<main>{}<h1>Emergency access: Patient/<span id=\"patient-id\">{}</span></h1><p id=\"btg\">Read-only, until {}. This view is recorded as emergency access (break-glass).</p>",
        nav(&staff),
        escape_markup(&view.grant.patient_id),
        ts(view.grant.ends)
    );
    html.push_str("<h2>Consent</h2><table id=\"consents\"><tr><th>Channel</th><th>Purpose</th><th>Decision</th><th>When</th></tr>");
    for e in &view.consents {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.channel.code(),
            escape_markup(
                e.purpose
                    .map_or("every purpose", crate::domain::Purpose::code)
            ),
            if e.decision == crate::domain::consent::Decision::Permit {
                "permit"
            } else {
                "deny"
            },
            ts(e.recorded_at)
        ));
    }
    html.push_str("</table><h2>Messages</h2><table id=\"messages\"><tr><th>Message</th><th>About</th><th>Due</th><th>State</th><th>Channel</th><th>Delivery</th></tr>");
    for m in &view.messages {
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_markup(&m.kind),
            escape_markup(&m.about),
            m.due_at.format("%Y-%m-%d %H:%M UTC"),
            escape_markup(&m.state),
            escape_markup(m.channel.as_deref().unwrap_or("")),
            escape_markup(m.delivery_status.as_deref().unwrap_or(""))
        ));
    }
    html.push_str("</table></main>");
    page(StatusCode::OK, "Emergency access", &html)
}
