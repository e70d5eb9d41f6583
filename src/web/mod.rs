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
mod inbox;
mod preferences;
mod smart;
pub mod staff;

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
            .route("/smart/launch", web::get().to(smart::ehr_launch))
            .route("/smart/login", web::get().to(smart::standalone))
            .route("/smart/callback", web::get().to(smart::callback))
            .route("/app", web::get().to(smart::app_page))
            .route("/app/consent", web::post().to(smart::record_consent))
            .route("/app/send", web::post().to(smart::send_now))
            .route("/app/break-glass", web::post().to(smart::break_glass))
            .route("/inbox", web::get().to(inbox::show))
            .route("/inbox/done", web::post().to(inbox::done))
            .route("/audit", web::get().to(audit_page::page))
            .route("/audit/export", web::get().to(audit_page::export))
            .route("/audit/audit.css", web::get().to(audit_page::stylesheet))
            .route("/p/{token}", web::get().to(preferences::show))
            .route("/p/{token}", web::post().to(preferences::save))
            .route("/login", web::get().to(staff::login_form))
            .route("/login", web::post().to(staff::login))
            .route("/logout", web::post().to(staff::logout))
            .route("/admin", web::get().to(staff::admin))
            .route("/break-glass", web::get().to(staff::break_glass_form))
            .route("/break-glass", web::post().to(staff::break_glass))
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
    // HSTS whenever Herald is reached over TLS: its own listener, or a proxy
    // in front of it (server.public_url is https).
    let tls = state.settings.server.tls_cert.is_some()
        || state
            .settings
            .server
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"));
    let hsts = tls
        .then(|| {
            format!(
                "max-age={}; includeSubDomains",
                state.settings.server.hsts_max_age
            )
        })
        .and_then(|v| HeaderValue::from_str(&v).ok());
    App::new()
        .wrap_fn(move |req, srv| {
            let hsts = hsts.clone();
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
                if let Some(v) = hsts {
                    h.insert(HeaderName::from_static("strict-transport-security"), v);
                }
                Ok(res)
            }
        })
        .configure(configure(state))
}

/// The TLS acceptor for `server.tls_cert`/`tls_key`: OpenSSL with Mozilla's
/// intermediate profile and TLS 1.2 as the floor (H8, S21), whatever the
/// distribution's OpenSSL policy.
pub fn tls_acceptor(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> std::io::Result<openssl::ssl::SslAcceptorBuilder> {
    use openssl::ssl::{SslAcceptor, SslFiletype, SslMethod, SslVersion};
    let io =
        |what: &str, e: openssl::error::ErrorStack| std::io::Error::other(format!("{what}: {e}"));
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls()).map_err(|e| io("TLS", e))?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .map_err(|e| io("TLS 1.2 floor", e))?;
    b.set_certificate_chain_file(cert)
        .map_err(|e| io(&format!("certificate {}", cert.display()), e))?;
    b.set_private_key_file(key, SslFiletype::PEM)
        .map_err(|e| io(&format!("private key {}", key.display()), e))?;
    b.check_private_key()
        .map_err(|e| io("the private key does not match the certificate", e))?;
    Ok(b)
}

/// Starts the server on a bound listener (port 0 in tests): HTTPS when a
/// certificate and key are configured, plain HTTP otherwise.
pub fn server(state: AppState, listener: TcpListener) -> std::io::Result<Server> {
    let workers = state.settings.server.workers;
    let tls = match (
        &state.settings.server.tls_cert,
        &state.settings.server.tls_key,
    ) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        _ => None,
    };
    let factory = HttpServer::new(move || app(state.clone()));
    let mut s = match tls {
        Some(b) => factory.listen_openssl(listener, b)?,
        None => factory.listen(listener)?,
    };
    if workers > 0 {
        s = s.workers(workers);
    }
    Ok(s.disable_signals().run())
}
