//! HTTP: the only module that knows actix. The app is built from an
//! [`AppState`] passed in (no globals); every response carries an
//! `X-Request-Id` of Herald's own; errors are OperationOutcome on `/fhir` and problem+json
//! elsewhere, and a 5xx body never carries its cause (the cause is logged
//! once, here).

pub mod access;
mod audit_api;
mod audit_page;
mod communication_api;
mod consent_api;
mod errors;
mod fhir_hooks;
mod health;
pub mod hooks;
mod inbox;
pub mod limits;
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

/// What every handler may use. Build it with [`AppState::new`].
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
    /// API clients' access tokens (`[api]` issuers; JWKS and introspection caches).
    pub api: Arc<crate::smart::api_tokens::ApiVerifier>,
    /// Rate limits and password-check slots (`[limits]`).
    pub limits: Arc<limits::Limits>,
    /// The channels the preference page sends confirmation codes through (the
    /// configured ones; `None` when they cannot be built, and then no code is
    /// sent). Tests swap in a memory sender with [`AppState::with_channels`].
    pub channels: Option<Arc<dyn crate::providers::Sender>>,
}

impl AppState {
    /// The state for `settings`, a pool, a key ring and a clock.
    pub fn new(
        settings: Arc<Settings>,
        pool: Pool,
        ring: Arc<KeyRing>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let api = Arc::new(crate::smart::api_tokens::ApiVerifier::new(
            settings.api.issuers.clone(),
        ));
        let limits = Arc::new(limits::Limits::new(&settings.limits));
        let channels: Option<Arc<dyn crate::providers::Sender>> =
            match crate::providers::from_settings(&settings) {
                Ok(r) => Some(Arc::new(r)),
                Err(_) => None,
            };
        Self {
            settings,
            pool,
            ring,
            clock,
            api,
            limits,
            channels,
        }
    }

    /// The same state sending through `channels` (tests: a memory sender).
    pub fn with_channels(self, channels: Arc<dyn crate::providers::Sender>) -> Self {
        Self {
            channels: Some(channels),
            ..self
        }
    }
}

/// Whether browsers reach Herald over TLS: its own listener
/// (`server.tls_cert`), or a proxy in front of it (`server.public_url` is
/// https). Then HSTS is sent and cookies are Secure with the `__Host-` prefix.
/// A cookie's name under these settings (security review F8d): over TLS
/// (see [`served_over_tls`]) `__Host-` + `plain`, which browsers accept only
/// with Secure, `Path=/` and no Domain, so a sibling subdomain cannot plant or
/// shadow it; on plain http (the loopback demo) `plain` itself.
pub(crate) fn cookie_name(settings: &Settings, plain: &str) -> String {
    if served_over_tls(settings) {
        format!("__Host-{plain}")
    } else {
        plain.to_string()
    }
}

pub(crate) fn served_over_tls(settings: &Settings) -> bool {
    settings.server.tls_cert.is_some()
        || settings
            .server
            .public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
}

/// The caller's IP address ("unknown" when the connection does not say).
pub(crate) fn peer(req: &actix_web::HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The AuditEvent for an access through Herald's HTTP API: the caller the
/// access table found (a staff member, an API client, else the address),
/// the request id.
pub(crate) fn access_record(
    state: &AppState,
    req: &actix_web::HttpRequest,
    activity: crate::domain::audit::Activity,
    patient: Option<String>,
) -> crate::domain::audit::AuditRecord {
    crate::domain::audit::AuditRecord {
        recorded: state.clock.now(),
        activity,
        actor: access::Caller::of(req).actor(peer(req)),
        outcome: crate::domain::audit::Outcome::Success,
        outcome_desc: None,
        patient_id: patient,
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
        ehr: None,
    }
}

/// The AuditEvents of a search: with a patient filter, its one record; else
/// one per distinct patient whose data it returned (IHE BALP: one per
/// patient, so `herald audit report --patient` finds every disclosure), or
/// the one record without a patient when it returned nobody's (issue 11 F6b).
pub(crate) fn per_patient(
    record: crate::domain::audit::AuditRecord,
    returned: impl IntoIterator<Item = String>,
) -> Vec<crate::domain::audit::AuditRecord> {
    if record.patient_id.is_some() {
        return vec![record];
    }
    let mut seen = std::collections::BTreeSet::new();
    let records: Vec<_> = returned
        .into_iter()
        .filter(|p| seen.insert(p.clone()))
        .map(|p| crate::domain::audit::AuditRecord {
            patient_id: Some(p),
            ..record.clone()
        })
        .collect();
    if records.is_empty() {
        vec![record]
    } else {
        records
    }
}

/// A failure whose cause is logged, never shown (a 500 without details).
pub(crate) fn internal(req: &actix_web::HttpRequest, e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        req,
        crate::error::AppError::Internal(anyhow::anyhow!("{e}")),
    )
}

/// The request id of the current request: always Herald's own, so the id an
/// AuditEvent carries is never text a caller chose (issue 11 F6c).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The caller's own `X-Request-Id`, kept only when it is a UUID or 32 hex
/// digits (what proxies generate): logged beside Herald's id when a request
/// fails, never stored and never sent back.
#[derive(Debug, Clone)]
pub struct ClientRequestId(pub String);

fn client_request_id(value: Option<&HeaderValue>) -> Option<ClientRequestId> {
    let s = value?.to_str().ok()?;
    let hex = |t: &str| t.chars().all(|c| c.is_ascii_hexdigit());
    let ok = (s.len() == 32 && hex(s))
        || (s.len() == 36
            && uuid::Uuid::try_parse(s).is_ok()
            && s.split('-').map(str::len).eq([8, 4, 4, 4, 12]));
    ok.then(|| ClientRequestId(s.to_ascii_lowercase()))
}

/// The audit log's form of a search's query string: each parameter whose
/// value Herald vetted (`vetted`: a closed vocabulary, a parsed date or
/// number, a stored patient) as sent, any other value as a keyed hash
/// (`KeyRing::untrusted_ref`), so the log never holds text a caller chose.
pub(crate) fn recorded_query(
    ring: &KeyRing,
    pairs: &[(String, String)],
    vetted: impl Fn(&str, &str) -> bool,
) -> String {
    use audit_api::encode;
    pairs
        .iter()
        .map(|(k, v)| {
            if vetted(k, v) {
                format!("{}={}", encode(k), encode(v))
            } else {
                format!("{}={}", encode(k), ring.untrusted_ref("audit-query", v))
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// `_format` values Herald understands (anything else is recorded hashed).
pub(crate) fn known_format(v: &str) -> bool {
    matches!(
        v,
        "json" | "application/json" | "application/fhir+json" | "fhir+json"
    )
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
            .configure(access::configure);
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
    // HSTS whenever Herald is reached over TLS.
    let tls = served_over_tls(&state.settings);
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
            let rid = uuid::Uuid::new_v4().to_string();
            req.extensions_mut().insert(RequestId(rid.clone()));
            if let Some(client) = client_request_id(req.headers().get("x-request-id")) {
                req.extensions_mut().insert(client);
            }
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
