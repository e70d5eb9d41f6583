//! HTTP: the only module that knows actix. The app is built from an
//! [`AppState`] passed in (no globals); every response carries an
//! `X-Request-Id`; errors are OperationOutcome on `/fhir` and problem+json
//! elsewhere, and a 5xx body never carries its cause (the cause is logged
//! once, here).

mod audit_api;
mod audit_page;
mod communication_api;
mod consent_api;
mod errors;
mod fhir_hooks;
mod health;
pub mod hooks;
mod preferences;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, Service as _, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{App, HttpMessage as _, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;

pub use errors::ApiError;

use crate::clock::Clock;
use crate::config::Settings;
use crate::crypto::KeyRing;
use crate::db::Pool;

/// What every handler may use.
#[derive(Clone)]
pub struct AppState {
    /// Settings.
    pub settings: Arc<Settings>,
    /// The database pool.
    pub pool: Pool,
    /// The key ring.
    pub ring: Arc<KeyRing>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// The caller's IP address ("unknown" when the connection does not say).
pub(crate) fn peer(req: &actix_web::HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The AuditEvent for an access through Herald's HTTP API: the caller by
/// address (loopback only until staff sign-in), the request id.
pub(crate) fn access_record(
    state: &AppState,
    req: &actix_web::HttpRequest,
    activity: crate::domain::audit::Activity,
    patient: Option<String>,
) -> crate::domain::audit::AuditRecord {
    crate::domain::audit::AuditRecord {
        recorded: state.clock.now(),
        activity,
        actor: crate::domain::audit::Actor::Anonymous(peer(req)),
        outcome: crate::domain::audit::Outcome::Success,
        outcome_desc: None,
        patient_id: patient,
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        ehr: None,
    }
}

/// A failure whose cause is logged, never shown (a 500 without details).
pub(crate) fn internal(req: &actix_web::HttpRequest, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        req,
        crate::error::AppError::Internal(anyhow::anyhow!("{e}")),
    )
}

/// The request id of the current request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn request_id_from(value: Option<&HeaderValue>) -> String {
    value
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 64
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// Registers every route.
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(state))
            .app_data(web::QueryConfig::default().error_handler(|_, req| {
                ApiError::for_path(
                    req.path(),
                    crate::error::AppError::BadRequest("The query string is malformed.".into()),
                )
                .into()
            }))
            .route("/healthz", web::get().to(health::healthz))
            .route("/readyz", web::get().to(health::readyz))
            .route(
                "/hooks/sms/{provider}/status",
                web::post().to(hooks::status),
            )
            .route(
                "/hooks/sms/{provider}/inbound",
                web::post().to(hooks::inbound),
            )
            .route("/.well-known/jwks.json", web::get().to(fhir_hooks::jwks))
            .route(
                "/hooks/fhir/{subscription}",
                web::post().to(fhir_hooks::notify),
            )
            .route(
                "/hooks/fhir/{subscription}/{type}",
                web::post().to(fhir_hooks::notify),
            )
            .route(
                "/hooks/fhir/{subscription}/{type}/{id}",
                web::put().to(fhir_hooks::notify),
            )
            .route("/audit", web::get().to(audit_page::page))
            .route("/audit/export", web::get().to(audit_page::export))
            .route("/audit/audit.css", web::get().to(audit_page::stylesheet))
            .route("/p/{token}", web::get().to(preferences::show))
            .route("/p/{token}", web::post().to(preferences::save))
            .service(
                web::scope("/fhir")
                    .route("/metadata", web::get().to(audit_api::metadata))
                    .route("/AuditEvent", web::get().to(audit_api::search))
                    .route("/AuditEvent/{id}", web::get().to(audit_api::read))
                    .route("/Consent", web::get().to(consent_api::search))
                    .route("/Consent", web::post().to(consent_api::create))
                    .route("/Consent/{id}", web::get().to(consent_api::read))
                    .route(
                        "/Consent/{id}/_history",
                        web::get().to(consent_api::history),
                    )
                    .route("/Communication", web::get().to(communication_api::search))
                    .route(
                        "/Communication/{id}",
                        web::get().to(communication_api::read),
                    )
                    .default_service(web::to(errors::not_found)),
            )
            .default_service(web::to(errors::not_found));
    }
}

/// The whole application: routes plus the request-id and header middleware.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .wrap_fn(|req, srv| {
            let rid = request_id_from(req.headers().get("x-request-id"));
            req.extensions_mut().insert(RequestId(rid.clone()));
            let fut = srv.call(req);
            async move {
                let mut res = fut.await?;
                let h = res.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&rid) {
                    h.insert(HeaderName::from_static("x-request-id"), v);
                }
                h.insert(
                    HeaderName::from_static("x-content-type-options"),
                    HeaderValue::from_static("nosniff"),
                );
                h.insert(
                    HeaderName::from_static("cache-control"),
                    HeaderValue::from_static("no-store"),
                );
                Ok(res)
            }
        })
        .configure(configure(state))
}

/// Starts the server on a bound listener (port 0 in tests).
pub fn server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let workers = state.settings.server.workers;
    let mut s = HttpServer::new(move || app(state.clone())).listen(listener)?;
    if workers > 0 {
        s = s.workers(workers);
    }
    Ok(s.disable_signals().run())
}
