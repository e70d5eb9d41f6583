//! SMART Backend Services (S16–S19): a `client_credentials` grant through the
//! oauth2 crate, authenticated by a client assertion Herald signs (RS384 or
//! ES384, `jwt`), the token URL from `.well-known/smart-configuration`, the
//! token cached until shortly before it expires. A refusal is a [`TokenError`]
//! that names its likely cause.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use oauth2::{AuthType, ClientId, Scope, TokenResponse, TokenUrl};
use serde_json::Value;

use super::SmartConfiguration;
use super::jwt::{self, Assertion};
use crate::clock::Clock;
use crate::db::ehr::SigningKey;

/// Where the current signing key comes from (the database, in production):
/// `(alg, now)` → the newest key of `alg` that may sign at `now`.
pub type KeySource =
    dyn Fn(&str, DateTime<Utc>) -> anyhow::Result<Option<SigningKey>> + Send + Sync;

/// Seconds of difference between Herald's clock and the server's `Date`
/// beyond which a refusal is blamed on the clock.
const SKEW_TOLERANCE_SECS: i64 = 60;

/// Why no token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Discovery failed.
    #[error("cannot read the EHR's SMART configuration: {0}")]
    Discovery(String),
    /// No key to sign with.
    #[error("no {0} signing key: run `herald keys init` (or `herald keys rotate --smart`)")]
    NoKey(String),
    /// The server could not verify the assertion's signature.
    #[error(
        "the EHR refused Herald's signature ({0}): is Herald's JWKS URL registered for this client, reachable from the EHR, and does it publish the signing key?"
    )]
    BadKey(String),
    /// The assertion's times were refused.
    #[error(
        "the EHR refused the assertion's time ({0}): Herald's clock and the EHR's disagree; check NTP"
    )]
    ClockSkew(String),
    /// The assertion's jti was seen before.
    #[error("the EHR refused a replayed assertion ({0}): every assertion needs a new jti")]
    Replayed(String),
    /// The client id is not registered.
    #[error(
        "the EHR does not know this client ({0}): check ehr.client_id and the app's registration"
    )]
    UnknownClient(String),
    /// Scopes refused.
    #[error(
        "the EHR refused the scopes asked for ({0}): check ehr.scope against what the app is registered for"
    )]
    Scope(String),
    /// Any other refusal.
    #[error("the EHR refused a token ({0})")]
    Refused(String),
    /// The token endpoint could not be reached.
    #[error("cannot reach the token endpoint: {0}")]
    Network(String),
}

/// Reads an OAuth error response into a cause (pure; unit-tested).
/// `skew_secs` is server `Date` minus Herald's clock, when known.
pub fn classify(error: &str, description: &str, skew_secs: Option<i64>) -> TokenError {
    let d = description.to_ascii_lowercase();
    let summary = if description.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {description}")
    };
    let skewed = skew_secs.is_some_and(|s| s.abs() > SKEW_TOLERANCE_SECS);
    if error == "invalid_scope" {
        return TokenError::Scope(summary);
    }
    let replay = d.contains("replay")
        || d.contains("used once")
        || (d.contains("jti")
            && ["already", "used", "unique", "seen"]
                .iter()
                .any(|w| d.contains(w)));
    if replay {
        return TokenError::Replayed(summary);
    }
    let time_words = [
        "expired",
        "exp ",
        "\"exp\"",
        "exp claim",
        "iat",
        "nbf",
        "not yet valid",
        "clock",
        "in the future",
        "timestamp",
    ];
    if skewed || time_words.iter().any(|w| d.contains(w)) {
        let summary = match skew_secs {
            Some(s) if skewed => format!("{summary}; server clock differs by {s} s"),
            _ => summary,
        };
        return TokenError::ClockSkew(summary);
    }
    if [
        "not found",
        "unknown client",
        "no such client",
        "client is invalid",
        "invalid client_id",
        "unregistered",
        "client not",
    ]
    .iter()
    .any(|w| d.contains(w))
        || error == "unauthorized_client"
    {
        return TokenError::UnknownClient(summary);
    }
    if ["signature", "key", "jwks", "kid", "verify", "verification"]
        .iter()
        .any(|w| d.contains(w))
    {
        return TokenError::BadKey(summary);
    }
    TokenError::Refused(summary)
}

/// An access token.
#[derive(Clone)]
pub struct Token {
    /// The bearer value (never logged).
    pub access_token: String,
    /// When Herald stops using it.
    pub use_until: DateTime<Utc>,
    /// Granted scopes (S10).
    pub scope: Option<String>,
    /// The token's own `jti` when it is a JWT (for audit, A6).
    pub jti: Option<String>,
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("use_until", &self.use_until)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Backend Services settings.
#[derive(Debug, Clone)]
pub struct BackendConfig {
    /// FHIR base.
    pub base_url: String,
    /// Registered client id.
    pub client_id: String,
    /// Scopes asked for.
    pub scope: String,
    /// RS384 | ES384.
    pub alg: String,
    /// Token URL, when configured rather than discovered.
    pub token_url: Option<String>,
    /// Herald's JWKS URL (sent as `jku`).
    pub jku: Option<String>,
}

/// Gets and caches Backend Services tokens.
pub struct BackendAuth {
    cfg: BackendConfig,
    http: reqwest::blocking::Client,
    keys: Box<KeySource>,
    clock: Arc<dyn Clock>,
    token_url: Mutex<Option<String>>,
    cache: Mutex<Option<Token>>,
}

impl std::fmt::Debug for BackendAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendAuth")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Reads `{base}/.well-known/smart-configuration` (S2: JSON whatever the
/// content type; relative URLs resolved against the base).
pub fn discover(
    http: &reqwest::blocking::Client,
    base: &str,
) -> Result<SmartConfiguration, TokenError> {
    let url = format!(
        "{}/.well-known/smart-configuration",
        base.trim_end_matches('/')
    );
    let resp = http
        .get(&url)
        .header("Accept", "application/json")
        .send()
        .map_err(|e| TokenError::Discovery(format!("{url}: {}", crate::fhir::client::short(&e))))?;
    if !resp.status().is_success() {
        return Err(TokenError::Discovery(format!(
            "{url} answered {}",
            resp.status()
        )));
    }
    let text = resp
        .text()
        .map_err(|e| TokenError::Discovery(format!("{url}: {}", crate::fhir::client::short(&e))))?;
    let conf: SmartConfiguration = serde_json::from_str(&text)
        .map_err(|e| TokenError::Discovery(format!("{url} is not a SMART configuration: {e}")))?;
    Ok(conf.resolved(base))
}

impl BackendAuth {
    /// A token source for `cfg`.
    pub fn new(
        cfg: BackendConfig,
        http: reqwest::blocking::Client,
        keys: Box<KeySource>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let token_url = Mutex::new(cfg.token_url.clone());
        Self {
            cfg,
            http,
            keys,
            clock,
            token_url,
            cache: Mutex::new(None),
        }
    }

    /// The token URL (configured, or discovered once).
    pub fn token_url(&self) -> Result<String, TokenError> {
        if let Ok(g) = self.token_url.lock()
            && let Some(u) = g.as_ref()
        {
            return Ok(u.clone());
        }
        let conf = discover(&self.http, &self.cfg.base_url)?;
        if !conf.grant_types_supported.is_empty()
            && !conf
                .grant_types_supported
                .iter()
                .any(|g| g == "client_credentials")
        {
            return Err(TokenError::Discovery(
                "the server does not offer client_credentials (SMART Backend Services)".into(),
            ));
        }
        let url = conf
            .token_endpoint
            .ok_or_else(|| TokenError::Discovery("no token_endpoint".into()))?;
        if let Ok(mut g) = self.token_url.lock() {
            *g = Some(url.clone());
        }
        Ok(url)
    }

    /// A fresh client assertion (new jti each time).
    pub fn assertion(&self, now: DateTime<Utc>) -> Result<String, TokenError> {
        let token_url = self.token_url()?;
        let key = (self.keys)(&self.cfg.alg, now)
            .map_err(|e| TokenError::NoKey(format!("{} ({e})", self.cfg.alg)))?
            .ok_or_else(|| TokenError::NoKey(self.cfg.alg.clone()))?;
        let jti = uuid::Uuid::new_v4().to_string();
        jwt::sign_assertion(
            &key.private_pem,
            &key.alg,
            &key.kid,
            &Assertion {
                client_id: &self.cfg.client_id,
                token_url: &token_url,
                jti: &jti,
                now,
                jku: self.cfg.jku.as_deref(),
            },
        )
        .map_err(|e| TokenError::NoKey(format!("{}: {e}", self.cfg.alg)))
    }

    /// The cached token, or a new one when it is within a minute (or a tenth
    /// of its life) of expiring (S19: no refresh token; re-authenticate).
    pub fn token(&self) -> Result<Token, TokenError> {
        let now = self.clock.now();
        if let Ok(g) = self.cache.lock()
            && let Some(t) = g.as_ref()
            && t.use_until > now
        {
            return Ok(t.clone());
        }
        let assertion = self.assertion(now)?;
        let token = self.exchange(&assertion)?;
        if let Ok(mut g) = self.cache.lock() {
            *g = Some(token.clone());
        }
        Ok(token)
    }

    /// Forgets the cached token (after a 401).
    pub fn invalidate(&self) {
        if let Ok(mut g) = self.cache.lock() {
            *g = None;
        }
    }

    /// Exchanges an assertion for a token through the oauth2 crate.
    pub fn exchange(&self, assertion: &str) -> Result<Token, TokenError> {
        let token_url = self.token_url()?;
        let url = TokenUrl::new(token_url.clone())
            .map_err(|e| TokenError::Discovery(format!("token endpoint {token_url:?}: {e}")))?;
        let client = oauth2::basic::BasicClient::new(ClientId::new(self.cfg.client_id.clone()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(url);
        // The oauth2 crate speaks through any `Fn(HttpRequest) -> HttpResponse`;
        // this one is reqwest 0.13 (the crate's own adapter is for 0.12), and
        // it keeps the raw error body and the server's Date for `classify`.
        let seen: Mutex<(Option<Value>, Option<DateTime<Utc>>)> = Mutex::new((None, None));
        let http = |req: oauth2::HttpRequest| -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>> {
            let (parts, body) = req.into_parts();
            let resp = self
                .http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .map_err(|e| oauth2::HttpClientError::Reqwest(Box::new(e)))?;
            let status = resp.status();
            let date = resp
                .headers()
                .get("date")
                .and_then(|d| d.to_str().ok())
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .map(|d| d.with_timezone(&Utc));
            let mut builder = oauth2::http::Response::builder().status(status);
            for (k, v) in resp.headers() {
                builder = builder.header(k, v);
            }
            let bytes = resp
                .bytes()
                .map_err(|e| oauth2::HttpClientError::Reqwest(Box::new(e)))?
                .to_vec();
            if let Ok(mut s) = seen.lock() {
                s.0 = serde_json::from_slice(&bytes).ok();
                s.1 = date;
            }
            builder.body(bytes).map_err(oauth2::HttpClientError::Http)
        };
        let mut req = client
            .exchange_client_credentials()
            .add_extra_param(
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            )
            .add_extra_param("client_assertion", assertion.to_string());
        for s in self.cfg.scope.split_whitespace() {
            req = req.add_scope(Scope::new(s.to_string()));
        }
        let now = self.clock.now();
        match req.request(&http) {
            Ok(resp) => {
                let access_token = resp.access_token().secret().clone();
                let life = resp
                    .expires_in()
                    .and_then(|d| Duration::from_std(d).ok())
                    .unwrap_or(Duration::seconds(300));
                let margin = (life / 10).max(Duration::seconds(30)).min(life / 2);
                let scope = resp.scopes().map(|v| {
                    v.iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                });
                let jti = jwt::unverified_claims(&access_token)
                    .and_then(|c| c["jti"].as_str().map(String::from));
                Ok(Token {
                    access_token,
                    use_until: now + life - margin,
                    scope,
                    jti,
                })
            }
            Err(e) => {
                let (body, date) = seen.lock().map(|g| g.clone()).unwrap_or((None, None));
                let skew = date.map(|d| (d - now).num_seconds());
                Err(match (&e, body) {
                    (oauth2::RequestTokenError::Request(inner), _) => {
                        TokenError::Network(inner.to_string())
                    }
                    (_, Some(b)) if b["error"].is_string() => classify(
                        b["error"].as_str().unwrap_or_default(),
                        b["error_description"]
                            .as_str()
                            .or(b["error_detail"].as_str())
                            .unwrap_or_default(),
                        skew,
                    ),
                    _ => TokenError::Refused(format!("{e}")),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_their_cause() {
        assert!(matches!(
            classify("invalid_client", "jwt expired", None),
            TokenError::ClockSkew(_)
        ));
        assert!(matches!(
            classify("invalid_client", "client authentication failed", Some(600)),
            TokenError::ClockSkew(_)
        ));
        assert!(matches!(
            classify(
                "invalid_client",
                "client assertion tokens must only be used once (jti already used)",
                None
            ),
            TokenError::Replayed(_)
        ));
        // oidc-provider's wording.
        assert!(matches!(
            classify(
                "invalid_client",
                "client authentication failed: client assertion tokens must only be used once",
                None
            ),
            TokenError::Replayed(_)
        ));
        assert!(matches!(
            classify("invalid_client", "client not found", None),
            TokenError::UnknownClient(_)
        ));
        assert!(matches!(
            classify(
                "invalid_client",
                "invalid signature or no matching key in jwks",
                None
            ),
            TokenError::BadKey(_)
        ));
        assert!(matches!(
            classify("invalid_scope", "system/Foo.rs", None),
            TokenError::Scope(_)
        ));
        let e = classify("invalid_client", "jwt expired", Some(-900));
        assert!(e.to_string().contains("-900 s"), "{e}");
        assert!(e.to_string().contains("clock"), "{e}");
    }
}
