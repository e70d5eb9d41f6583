//! The access table: for every route, which credentials may call it and what
//! the handler receives as the actor. **The router is built from this table**
//! ([`configure`]): a route without a row cannot be registered, and every row
//! is wrapped in [`enforce`], which decides before the handler runs and puts
//! the [`Caller`] in the request's extensions (401 without a credential the
//! row accepts, 403 with one the row accepts but whose role or scope is too
//! small; pages get a redirect to `/login` or a 403 page instead).
//!
//! Some credentials can only be checked by the handler, because they cover
//! the body or live in the path: the patient's sealed link (`/p/{token}`), an
//! EHR subscription's secret or body HMAC, Twilio's signature. For those the
//! row still says who may call and the handler checks the value, a missing
//! one included (fail closed), so that each refusal is audited there.
//!
//! Before any of that, `POST /login`, `/smart/*`, `/hooks/*` and `/p/*` are
//! counted against their per-address rate limit ([`super::limits`]); over
//! it, the answer is 429 and nothing else runs.
//!
//! `tests/access.rs` walks every row of [`ROUTES`] with every kind of caller,
//! and `tests/tidy.rs` checks that nothing in `web/` registers a route
//! outside this file.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage as _, HttpRequest, HttpResponse, web};

use super::{
    ApiError, AppState, audit_api, audit_page, communication_api, consent_api, errors, fhir_hooks,
    health, hooks, inbox, preferences, smart, staff,
};
use crate::domain::audit::Actor;
use crate::domain::staff::Role;
use crate::error::AppError;

/// An HTTP method a row answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET (and HEAD).
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
}

impl Method {
    /// The actix method.
    pub fn http(self) -> actix_web::http::Method {
        match self {
            Self::Get => actix_web::http::Method::GET,
            Self::Post => actix_web::http::Method::POST,
            Self::Put => actix_web::http::Method::PUT,
        }
    }
}

/// What an API client's scope must allow (SMART v2 letters: `c`, `r`, `s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interaction {
    /// `r`: read one resource by id (and its history).
    Read,
    /// `s`: search.
    Search,
    /// `c`: create.
    Create,
}

/// One kind of credential a row accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Anybody, no credential (public metadata, sign-in, health).
    Anyone,
    /// The patient holding a sealed, expiring preference link (the handler
    /// opens the link in the path).
    PatientLink,
    /// A clinician with a live SMART session (`herald_app` cookie) from an
    /// EHR launch.
    SmartClinician,
    /// A staff member signed in to a page (session cookie) with one of these
    /// roles.
    StaffSession(&'static [Role]),
    /// A staff API bearer token (`herald_…`) whose account has one of these
    /// roles.
    StaffToken(&'static [Role]),
    /// An API client of the hospital's authorization server (`[api]`
    /// issuers) whose access token carries a system scope for this resource
    /// type and interaction.
    ApiClient(&'static str, Interaction),
    /// The EHR, by the subscription's secret (bearer) or body HMAC
    /// (`X-Signature`); the handler checks the value.
    EhrSecret,
    /// Twilio, by `X-Twilio-Signature` over `server.public_url`; the handler
    /// checks the value.
    TwilioSignature,
}

/// How a refusal is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Render {
    /// JSON: an OperationOutcome under `/fhir` and `/hooks/fhir`,
    /// problem+json elsewhere.
    Json,
    /// HTML: 401 → a redirect to `/login` (staff pages) or a page that says
    /// to open Herald from the EHR (SMART pages); 403 → a page.
    Page,
}

/// One row of the access table.
pub struct Rule {
    /// The method.
    pub method: Method,
    /// The path pattern, as actix matches it.
    pub path: &'static str,
    /// The credentials that may call it, tried in this order.
    pub who: &'static [Who],
    /// What the handler receives as the actor (for the docs and the audit).
    pub actor: &'static str,
    /// How refusals look.
    pub render: Render,
    /// Attaches the handler.
    mount: fn(actix_web::Route) -> actix_web::Route,
}

impl Rule {
    /// Attaches this row's handler to `route` without [`enforce`] in front:
    /// for benches that measure the table's own cost against the bare
    /// handler (`benches/api_auth.rs`). The server only mounts rows through
    /// [`configure`].
    pub fn handler(&self, route: actix_web::Route) -> actix_web::Route {
        (self.mount)(route)
    }
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

use Interaction::{Create, Read, Search};
use Method::{Get, Post, Put};
use Render::{Json, Page};
use Who::*;

const CLINICIAN: &[Role] = &[Role::Clinician];
const CLINICIAN_ADMIN: &[Role] = &[Role::Clinician, Role::Admin];
const ADMIN: &[Role] = &[Role::Admin];
const AUDITOR: &[Role] = &[Role::Auditor];
const ANY_ROLE: &[Role] = &Role::ALL;

const PUBLIC: &str = "Actor::Anonymous(peer address)";
const PATIENT: &str = "the link's patient (Actor::Anonymous(peer address), patient from the link)";
const EHR: &str =
    "Actor::Anonymous(peer address) until the secret is checked; the EHR (Actor::System) after";
const TWILIO: &str = "Actor::Anonymous(peer address); the message's patient after the signature";
const SMART_USER: &str = "Actor::Staff(issuer-qualified fhirUser), Actor::BreakGlass under a grant";
const STAFF: &str = "Actor::Staff(staff user id)";
const STAFF_BTG: &str =
    "Actor::BreakGlass(staff user id, grant): only the grant's clinician, only while it lasts";
const API: &str = "Actor::ApiClient(issuer, client_id) or Actor::Staff(staff user id)";

macro_rules! row {
    ($m:expr, $p:literal, [$($w:expr),+ $(,)?], $actor:expr, $r:expr, $h:path) => {
        Rule {
            method: $m,
            path: $p,
            who: &[$($w),+],
            actor: $actor,
            render: $r,
            mount: |r| r.to($h),
        }
    };
}

/// **The** access table: every route Herald serves, once.
pub static ROUTES: &[Rule] = &[
    row!(Get, "/healthz", [Anyone], PUBLIC, Json, health::healthz),
    row!(Get, "/readyz", [Anyone], PUBLIC, Json, health::readyz),
    row!(
        Get,
        "/.well-known/jwks.json",
        [Anyone],
        PUBLIC,
        Json,
        fhir_hooks::jwks
    ),
    row!(
        Get,
        "/fhir/metadata",
        [Anyone],
        PUBLIC,
        Json,
        audit_api::metadata
    ),
    row!(
        Get,
        "/audit/audit.css",
        [Anyone],
        PUBLIC,
        Json,
        audit_page::stylesheet
    ),
    // Inbound from the SMS provider and the EHR: their own credentials.
    row!(
        Post,
        "/hooks/sms/{provider}/status",
        [TwilioSignature],
        TWILIO,
        Json,
        hooks::status
    ),
    row!(
        Post,
        "/hooks/sms/{provider}/inbound",
        [TwilioSignature],
        TWILIO,
        Json,
        hooks::inbound
    ),
    row!(
        Post,
        "/hooks/fhir/{subscription}",
        [EhrSecret],
        EHR,
        Json,
        fhir_hooks::notify
    ),
    row!(
        Post,
        "/hooks/fhir/{subscription}/{type}",
        [EhrSecret],
        EHR,
        Json,
        fhir_hooks::notify
    ),
    row!(
        Put,
        "/hooks/fhir/{subscription}/{type}/{id}",
        [EhrSecret],
        EHR,
        Json,
        fhir_hooks::notify
    ),
    // SMART launch: anyone may start one (issuer allow-list, state bound to
    // a cookie, PKCE); the page needs the session it ends in.
    row!(
        Get,
        "/smart/launch",
        [Anyone],
        PUBLIC,
        Page,
        smart::ehr_launch
    ),
    row!(
        Get,
        "/smart/login",
        [Anyone],
        PUBLIC,
        Page,
        smart::standalone
    ),
    row!(
        Get,
        "/smart/callback",
        [Anyone],
        PUBLIC,
        Page,
        smart::callback
    ),
    row!(
        Get,
        "/app",
        [SmartClinician],
        SMART_USER,
        Page,
        smart::app_page
    ),
    row!(
        Post,
        "/app/consent",
        [SmartClinician],
        SMART_USER,
        Page,
        smart::record_consent
    ),
    row!(
        Post,
        "/app/send",
        [SmartClinician],
        SMART_USER,
        Page,
        smart::send_now
    ),
    row!(
        Post,
        "/app/break-glass",
        [SmartClinician],
        SMART_USER,
        Page,
        smart::break_glass
    ),
    // The patient's own page.
    row!(
        Get,
        "/p/{token}",
        [PatientLink],
        PATIENT,
        Page,
        preferences::show
    ),
    row!(
        Post,
        "/p/{token}",
        [PatientLink],
        PATIENT,
        Page,
        preferences::save
    ),
    row!(
        Post,
        "/p/{token}/confirm",
        [PatientLink],
        PATIENT,
        Page,
        preferences::confirm
    ),
    // Staff pages.
    row!(Get, "/login", [Anyone], PUBLIC, Page, staff::login_form),
    row!(Post, "/login", [Anyone], PUBLIC, Page, staff::login),
    row!(
        Post,
        "/logout",
        [StaffSession(ANY_ROLE)],
        STAFF,
        Page,
        staff::logout
    ),
    row!(
        Get,
        "/admin",
        [StaffSession(ADMIN)],
        STAFF,
        Page,
        staff::admin
    ),
    row!(
        Get,
        "/break-glass",
        [StaffSession(CLINICIAN)],
        STAFF,
        Page,
        staff::break_glass_form
    ),
    row!(
        Post,
        "/break-glass",
        [StaffSession(CLINICIAN)],
        STAFF,
        Page,
        staff::break_glass
    ),
    row!(
        Get,
        "/break-glass/{grant}",
        [StaffSession(CLINICIAN)],
        STAFF_BTG,
        Page,
        staff::break_glass_view
    ),
    row!(
        Get,
        "/inbox",
        [StaffSession(CLINICIAN_ADMIN)],
        STAFF,
        Page,
        inbox::show
    ),
    row!(
        Post,
        "/inbox/done",
        [StaffSession(CLINICIAN_ADMIN)],
        STAFF,
        Page,
        inbox::done
    ),
    row!(
        Get,
        "/audit",
        [StaffSession(AUDITOR), StaffToken(AUDITOR)],
        STAFF,
        Page,
        audit_page::page
    ),
    row!(
        Get,
        "/audit/export",
        [StaffSession(AUDITOR), StaffToken(AUDITOR)],
        STAFF,
        Page,
        audit_page::export
    ),
    // Herald's FHIR API: programs with bearer tokens, never a browser's cookie.
    row!(
        Get,
        "/fhir/AuditEvent",
        [StaffToken(AUDITOR), ApiClient("AuditEvent", Search)],
        API,
        Json,
        audit_api::search
    ),
    row!(
        Get,
        "/fhir/AuditEvent/{id}",
        [StaffToken(AUDITOR), ApiClient("AuditEvent", Read)],
        API,
        Json,
        audit_api::read
    ),
    row!(
        Get,
        "/fhir/Consent",
        [StaffToken(CLINICIAN), ApiClient("Consent", Search)],
        API,
        Json,
        consent_api::search
    ),
    row!(
        Post,
        "/fhir/Consent",
        [StaffToken(CLINICIAN), ApiClient("Consent", Create)],
        API,
        Json,
        consent_api::create
    ),
    row!(
        Get,
        "/fhir/Consent/{id}",
        [StaffToken(CLINICIAN), ApiClient("Consent", Read)],
        API,
        Json,
        consent_api::read
    ),
    row!(
        Get,
        "/fhir/Consent/{id}/_history",
        [StaffToken(CLINICIAN), ApiClient("Consent", Read)],
        API,
        Json,
        consent_api::history
    ),
    row!(
        Get,
        "/fhir/Communication",
        [StaffToken(CLINICIAN), ApiClient("Communication", Search)],
        API,
        Json,
        communication_api::search
    ),
    row!(
        Get,
        "/fhir/Communication/{id}",
        [StaffToken(CLINICIAN), ApiClient("Communication", Read)],
        API,
        Json,
        communication_api::read
    ),
];

/// Who is calling, as [`enforce`] found it; handlers read it from the
/// request's extensions (see [`Caller::of`]).
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credential was needed.
    Anonymous,
    /// A preference link's holder (the handler opens the link).
    LinkHolder,
    /// A live SMART session (the handler loads and refreshes it).
    Smart,
    /// A staff member, by session or API token.
    Staff(staff::Staff),
    /// An API client of a configured issuer.
    ApiClient(ApiIdentity),
    /// Claims to be the EHR or Twilio; the handler checks the secret or
    /// signature.
    Unverified,
}

/// An API client, as its verified access token names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiIdentity {
    /// The token's issuer (one of `[api]` issuers).
    pub issuer: String,
    /// The client (`client_id`, else `sub`).
    pub client_id: String,
}

impl Caller {
    /// The caller [`enforce`] stored for this request (`Anonymous` when the
    /// request did not pass through it, which only tests can arrange).
    pub fn of(req: &HttpRequest) -> Self {
        let found = req.extensions().get::<Caller>().cloned();
        found.unwrap_or(Caller::Anonymous)
    }

    /// The audit actor for this caller, `peer` being its network address.
    pub fn actor(&self, peer: String) -> Actor {
        match self {
            Caller::Staff(s) => Actor::Staff(s.user_id.clone()),
            Caller::ApiClient(a) => Actor::ApiClient {
                issuer: a.issuer.clone(),
                client: a.client_id.clone(),
            },
            Caller::Anonymous | Caller::LinkHolder | Caller::Smart | Caller::Unverified => {
                Actor::Anonymous(peer)
            }
        }
    }
}

/// What checking an API client's token said.
pub(crate) enum ApiDecision {
    /// Not a token for an API client (none configured, or a staff token).
    NotApiToken,
    /// The token is not valid; the named cause goes to the security log.
    Invalid(&'static str),
    /// Valid, but its scopes do not allow this.
    Denied(ApiIdentity),
    /// Valid and allowed.
    Allowed(ApiIdentity),
}

/// Checks an API client's bearer token against the `[api]` issuers
/// ([`crate::smart::api_tokens`]) and the SMART system scope this row needs.
pub(crate) async fn api_client(
    state: &AppState,
    token: &str,
    resource: &str,
    interaction: Interaction,
) -> ApiDecision {
    if token.starts_with(crate::service::staff::TOKEN_PREFIX) || !state.api.enabled() {
        return ApiDecision::NotApiToken;
    }
    match state.api.verify(token, state.clock.now()).await {
        Err(cause) => ApiDecision::Invalid(cause),
        Ok(v) => {
            let id = ApiIdentity {
                issuer: v.issuer,
                client_id: v.client_id,
            };
            let op = match interaction {
                Interaction::Read => 'r',
                Interaction::Search => 's',
                Interaction::Create => 'c',
            };
            if crate::smart::api_tokens::scope_allows(&v.scope, resource, op) {
                ApiDecision::Allowed(id)
            } else {
                ApiDecision::Denied(id)
            }
        }
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = h.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// No credential this row accepts (401).
    Unauthenticated,
    /// A credential this row accepts, but too small a role or scope (403).
    Forbidden,
    /// The store could not be asked (503).
    Unavailable,
    /// A bearer token of an `[api]` issuer that is not valid (401 with
    /// `error="invalid_token"`).
    InvalidToken,
}

/// Decides a request against a row: the caller, or why not.
async fn decide(rule: &Rule, req: &HttpRequest, state: &AppState) -> Result<Caller, Refusal> {
    let mut forbidden = false;
    let mut invalid = false;
    let token = bearer(req);
    for who in rule.who {
        match *who {
            Anyone => return Ok(Caller::Anonymous),
            PatientLink => {
                if req.match_info().get("token").is_some_and(|t| !t.is_empty()) {
                    return Ok(Caller::LinkHolder);
                }
            }
            // The handler checks the secret or signature, missing ones
            // included, so that every refusal gets its AuditEvent there.
            EhrSecret | TwilioSignature => return Ok(Caller::Unverified),
            SmartClinician => {
                if smart::has_live_session(req, state)
                    .await
                    .map_err(|_| Refusal::Unavailable)?
                {
                    return Ok(Caller::Smart);
                }
            }
            StaffSession(roles) => {
                if req.cookie(staff::session_cookie(state)).is_some() {
                    match staff::session_of(req, state).await {
                        Ok(Some(s)) if roles.contains(&s.role) => return Ok(Caller::Staff(s)),
                        Ok(Some(_)) => forbidden = true,
                        Ok(None) => {}
                        Err(_) => return Err(Refusal::Unavailable),
                    }
                }
            }
            StaffToken(roles) => {
                if let Some(t) = &token {
                    match staff::token_of(t, state).await {
                        Ok(Some(s)) if roles.contains(&s.role) => return Ok(Caller::Staff(s)),
                        Ok(Some(_)) => forbidden = true,
                        Ok(None) => {}
                        Err(_) => return Err(Refusal::Unavailable),
                    }
                }
            }
            ApiClient(resource, interaction) => {
                if let Some(t) = &token {
                    match api_client(state, t, resource, interaction).await {
                        ApiDecision::Allowed(id) => return Ok(Caller::ApiClient(id)),
                        ApiDecision::Denied(id) => {
                            let (issuer, client) = (id.issuer.as_str(), id.client_id.as_str());
                            tracing::warn!(target: "security", issuer, client, resource, path = rule.path, "API client refused: its scopes do not allow {interaction:?} on this");
                            forbidden = true;
                        }
                        ApiDecision::Invalid(cause) => {
                            tracing::warn!(target: "security", cause, path = rule.path, "API token refused");
                            invalid = true;
                        }
                        ApiDecision::NotApiToken => {}
                    }
                }
            }
        }
    }
    Err(if forbidden {
        Refusal::Forbidden
    } else if invalid {
        Refusal::InvalidToken
    } else {
        Refusal::Unauthenticated
    })
}

fn refusal_response(
    rule: &Rule,
    req: &HttpRequest,
    state: &AppState,
    why: Refusal,
) -> HttpResponse {
    use actix_web::ResponseError as _;
    match (rule.render, why) {
        (_, Refusal::Unavailable) => ApiError::new(
            req,
            AppError::Unavailable(anyhow::anyhow!("access check: store unavailable")),
        )
        .error_response(),
        (Json, Refusal::Unauthenticated) => {
            let mut res = ApiError::new(req, AppError::Unauthorized).error_response();
            if rule
                .who
                .iter()
                .any(|w| matches!(w, StaffToken(_) | ApiClient(..)))
            {
                res.headers_mut().insert(
                    actix_web::http::header::WWW_AUTHENTICATE,
                    actix_web::http::header::HeaderValue::from_static("Bearer realm=\"herald\""),
                );
            }
            res
        }
        (_, Refusal::InvalidToken) => {
            let mut res = ApiError::new(req, AppError::Unauthorized).error_response();
            res.headers_mut().insert(
                actix_web::http::header::WWW_AUTHENTICATE,
                actix_web::http::header::HeaderValue::from_static(
                    "Bearer realm=\"herald\", error=\"invalid_token\"",
                ),
            );
            res
        }
        (Json, Refusal::Forbidden) => ApiError::new(req, AppError::Forbidden).error_response(),
        (Page, Refusal::Unauthenticated)
            if rule.who.iter().any(|w| matches!(w, StaffSession(_))) =>
        {
            staff::see_other("/login")
        }
        (Page, Refusal::Unauthenticated)
            if rule.who.contains(&SmartClinician)
                && req.cookie(&smart::app_cookie(state)).is_some() =>
        {
            smart::ended(state)
        }
        (Page, Refusal::Unauthenticated) => staff::page(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "<main><h1>You are not signed in</h1><p id=\"signed-out\">Open Herald from the patient's chart in the EHR, or use the link you were sent.</p></main>",
        ),
        (Page, Refusal::Forbidden) => staff::page(
            StatusCode::FORBIDDEN,
            "Not allowed",
            "<main><h1>Your role does not allow this page</h1><p><a href=\"/login\">Back</a></p></main>",
        ),
    }
}

/// The media types a route's body may have: FHIR writes take FHIR JSON (a
/// browser cannot send that cross-site without a preflight, so no HTML form
/// can post a Consent), forms and provider callbacks take URL-encoded forms,
/// and FHIR notifications are left to their handler (an empty rest-hook
/// notification has no body).
fn body_ok(rule: &Rule, req: &HttpRequest) -> bool {
    if rule.method == Method::Get || rule.path.starts_with("/hooks/fhir/") {
        return true;
    }
    let essence = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if rule.path.starts_with("/fhir/") {
        matches!(
            essence.as_str(),
            "application/fhir+json" | "application/json"
        )
    } else {
        essence == "application/x-www-form-urlencoded"
    }
}

/// The middleware on every route: decides the row, stores the [`Caller`],
/// or answers the refusal without calling the handler.
pub async fn enforce(
    rule: &'static Rule,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        let res = {
            use actix_web::ResponseError as _;
            ApiError::new(
                req.request(),
                AppError::Unavailable(anyhow::anyhow!("access check: no application state")),
            )
            .error_response()
        };
        return Ok(req.into_response(res).map_into_right_body());
    };
    // Rate limits first (issue 11 F5): a refused request reads nothing,
    // writes nothing and runs no password check.
    if let Some(group) = super::limits::Group::of(&rule.method.http(), rule.path)
        && let Err(r) = state.limits.check_address(group, req.request())
    {
        let res = super::limits::too_many(req.request(), r);
        return Ok(req.into_response(res).map_into_right_body());
    }
    let decided = decide(rule, req.request(), &state).await;
    match decided {
        Ok(_) if !body_ok(rule, req.request()) => {
            let res = {
                use actix_web::ResponseError as _;
                ApiError::new(req.request(), AppError::UnsupportedMediaType).error_response()
            };
            Ok(req.into_response(res).map_into_right_body())
        }
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            Ok(next.call(req).await?.map_into_left_body())
        }
        Err(why) => {
            if why != Refusal::Unavailable {
                tracing::info!(target: "security", path = rule.path, status = if why == Refusal::Forbidden { 403 } else { 401 }, "request refused by the access table");
            }
            let res = refusal_response(rule, req.request(), &state, why);
            Ok(req.into_response(res).map_into_right_body())
        }
    }
}

/// Registers every row of [`ROUTES`], each behind [`enforce`]; unrouted
/// paths answer 404 through [`errors::not_found`].
pub fn configure(cfg: &mut web::ServiceConfig) {
    let mut paths: Vec<&'static str> = Vec::new();
    for rule in ROUTES {
        if !paths.contains(&rule.path) {
            paths.push(rule.path);
        }
    }
    for path in paths {
        let mut resource = web::resource(path);
        for rule in ROUTES.iter().filter(|r| r.path == path) {
            let route = (rule.mount)(web::method(rule.method.http()))
                .wrap(from_fn(move |req, next| enforce(rule, req, next)));
            resource = resource.route(route);
        }
        cfg.service(resource);
    }
    cfg.default_service(web::to(errors::not_found));
}

/// The row for a method and path pattern, if any.
pub fn rule(method: Method, path: &str) -> Option<&'static Rule> {
    ROUTES.iter().find(|r| r.method == method && r.path == path)
}
