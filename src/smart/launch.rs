//! The SMART App Launch, Herald as the app (S1–S15): EHR launch
//! (`/smart/launch?iss&launch`) and standalone launch (`/smart/login?iss`).
//! The issuer must be on the allow-list before Herald says anything to it;
//! discovery refuses a server without S256; state (256 random bits) and the
//! PKCE verifier are sealed in a launch row bound to the browser by a cookie;
//! the code exchange goes through the oauth2 crate with SMART's token fields;
//! the id_token's signature (the issuer's JWKS) and claims are checked and
//! the clinician is identified by `fhirUser`. No actix here: `web::smart`
//! is the HTTP side.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Duration, Utc};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::SmartConfiguration;
use super::backend::discover;
use crate::config::SmartSettings;
use crate::db::smart::SmartSession;

/// How long a launch may take between Herald's redirect and the callback.
pub const LAUNCH_TTL_MINUTES: i64 = 10;

/// Why a launch failed: what the clinician's page says (no secrets, no PHI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// S1: iss or launch missing.
    #[error("The launch is missing {0}: open Herald from inside the EHR again.")]
    Missing(&'static str),
    /// The issuer is not on the allow-list: Herald redirects nowhere.
    #[error("This EHR ({0}) is not one Herald is configured to trust (smart.allowed_iss).")]
    ForeignIss(String),
    /// Discovery failed.
    #[error("Herald could not read the EHR's SMART configuration: {0}")]
    Discovery(String),
    /// S3.
    #[error("The EHR does not offer PKCE with S256; Herald will not launch without it.")]
    NoS256,
    /// No such launch (cookie missing or expired) or the state differs.
    #[error("This sign-in does not match the one Herald started (state); start the launch again.")]
    State,
    /// The authorization server said no.
    #[error("The EHR refused the sign-in: {0}")]
    Refused(String),
    /// The token exchange failed (wrong or missing PKCE verifier, expired code…).
    #[error("The EHR refused Herald's code exchange: {0}")]
    Token(String),
    /// The id_token did not verify.
    #[error("The EHR's identity token is not valid: {0}")]
    IdToken(String),
    /// Herald's own configuration.
    #[error("Herald is not configured for SMART launches: {0}")]
    Config(String),
}

/// SMART's fields in the token response (S11).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SmartFields {
    /// Patient in context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient: Option<String>,
    /// Encounter in context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encounter: Option<String>,
    /// Whether the app should show its own patient banner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub need_patient_banner: Option<bool>,
    /// The EHR's style sheet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smart_style_url: Option<String>,
    /// OpenID Connect identity token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Launch intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intent: Option<String>,
    /// fhirContext.
    #[serde(
        default,
        rename = "fhirContext",
        skip_serializing_if = "Option::is_none"
    )]
    pub fhir_context: Option<Value>,
}

impl ExtraTokenFields for SmartFields {}

type SmartTokenResponse = StandardTokenResponse<SmartFields, oauth2::basic::BasicTokenType>;
type SmartClient = oauth2::Client<
    oauth2::basic::BasicErrorResponse,
    SmartTokenResponse,
    oauth2::basic::BasicTokenIntrospectionResponse,
    oauth2::StandardRevocableToken,
    oauth2::basic::BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// What a launch row keeps sealed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Secrets {
    /// `state` sent (launching).
    #[serde(default)]
    pub state: String,
    /// PKCE verifier (launching).
    #[serde(default)]
    pub verifier: String,
    /// Discovered endpoints.
    #[serde(default)]
    pub token_endpoint: String,
    /// Authorization endpoint.
    #[serde(default)]
    pub authorization_endpoint: String,
    /// The issuer's JWKS URL (id_token).
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The OpenID issuer (id_token `iss`).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Access token (active).
    #[serde(default)]
    pub access_token: Option<String>,
    /// Refresh token (active).
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// CSRF token of the clinician's forms (active).
    #[serde(default)]
    pub csrf: Option<String>,
    /// OIDC `nonce` sent in the authorize request (launching; F8c).
    #[serde(default)]
    pub nonce: String,
}

fn random_token() -> Result<String, LaunchError> {
    let mut b = [0u8; 32];
    openssl::rand::rand_bytes(&mut b).map_err(|e| LaunchError::Config(e.to_string()))?;
    Ok(B64URL.encode(b))
}

/// SHA-256 hex of a cookie token (the table's key).
pub fn hash_token(token: &str) -> String {
    openssl::sha::sha256(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn normalize(iss: &str) -> String {
    iss.trim().trim_end_matches('/').to_string()
}

/// Whether `iss` is on the allow-list (exact match, trailing slash ignored).
pub fn allowed(settings: &SmartSettings, iss: &str) -> bool {
    let iss = normalize(iss);
    settings.allowed_iss.iter().any(|a| normalize(a) == iss)
}

/// SMART v1 equivalents of v2 scopes (S9): `.rs` → `.read`, `.cruds` → `.*`,
/// any of c/u/d → `.write`.
pub fn v1_scopes(v2: &str) -> String {
    v2.split_whitespace()
        .map(|s| match s.rsplit_once('.') {
            Some((res, perms))
                if (s.starts_with("patient/")
                    || s.starts_with("user/")
                    || s.starts_with("system/"))
                    && perms.chars().all(|c| "cruds".contains(c)) =>
            {
                if perms == "cruds" {
                    format!("{res}.*")
                } else if perms.chars().any(|c| "cud".contains(c)) {
                    format!("{res}.write")
                } else {
                    format!("{res}.read")
                }
            }
            _ => s.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn client(
    settings: &SmartSettings,
    conf: &Secrets,
    redirect: &str,
) -> Result<SmartClient, LaunchError> {
    let id = settings
        .client_id
        .clone()
        .ok_or_else(|| LaunchError::Config("smart.client_id is not set".into()))?;
    let mut c = oauth2::Client::new(ClientId::new(id))
        .set_auth_uri(
            AuthUrl::new(conf.authorization_endpoint.clone())
                .map_err(|e| LaunchError::Discovery(e.to_string()))?,
        )
        .set_token_uri(
            TokenUrl::new(conf.token_endpoint.clone())
                .map_err(|e| LaunchError::Discovery(e.to_string()))?,
        )
        .set_redirect_uri(
            RedirectUrl::new(redirect.to_string())
                .map_err(|e| LaunchError::Config(e.to_string()))?,
        );
    if let Some(secret) = &settings.client_secret {
        c = c.set_client_secret(ClientSecret::new(secret.expose().to_string()));
    }
    Ok(c)
}

/// A launch Herald has started: where to send the browser, and the row and
/// cookie token that bind it.
#[derive(Debug)]
pub struct Begun {
    /// The authorization URL.
    pub redirect: String,
    /// The cookie token (the row is keyed by its hash).
    pub cookie: String,
    /// The row to store.
    pub session: SmartSession,
}

/// Starts an EHR launch (`launch` given) or a standalone launch.
pub fn begin(
    http: &reqwest::blocking::Client,
    settings: &SmartSettings,
    iss: &str,
    launch: Option<&str>,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> Result<Begun, LaunchError> {
    if !allowed(settings, iss) {
        return Err(LaunchError::ForeignIss(normalize(iss)));
    }
    let iss = normalize(iss);
    let conf: SmartConfiguration =
        discover(http, &iss).map_err(|e| LaunchError::Discovery(e.to_string()))?;
    if !conf
        .code_challenge_methods_supported
        .iter()
        .any(|m| m == "S256")
    {
        return Err(LaunchError::NoS256);
    }
    let (authorization_endpoint, token_endpoint) =
        match (&conf.authorization_endpoint, &conf.token_endpoint) {
            (Some(a), Some(t)) => (a.clone(), t.clone()),
            _ => {
                return Err(LaunchError::Discovery(
                    "no authorization or token endpoint".into(),
                ));
            }
        };
    let mut secrets = Secrets {
        state: random_token()?,
        nonce: random_token()?,
        authorization_endpoint,
        token_endpoint,
        jwks_uri: conf.jwks_uri.clone(),
        issuer: conf.issuer.clone(),
        ..Secrets::default()
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    secrets.verifier = verifier.secret().clone();
    let v2 = conf.capabilities.iter().any(|c| c == "permission-v2");
    let scopes = if v2 {
        settings.scope.clone()
    } else {
        v1_scopes(&settings.scope)
    };
    let context = if launch.is_some() {
        "launch"
    } else {
        "launch/patient"
    };
    let c = client(settings, &secrets, redirect_uri)?;
    let state = secrets.state.clone();
    let mut req = c
        .authorize_url(move || CsrfToken::new(state))
        .set_pkce_challenge(challenge)
        .add_scope(Scope::new(context.into()))
        .add_extra_param("aud", iss.clone())
        .add_extra_param("nonce", secrets.nonce.clone());
    for s in scopes.split_whitespace() {
        req = req.add_scope(Scope::new(s.into()));
    }
    if let Some(l) = launch {
        req = req.add_extra_param("launch", l.to_string());
    }
    let (url, _) = req.url();
    let cookie = random_token()?;
    Ok(Begun {
        redirect: url.to_string(),
        session: SmartSession {
            id_hash: hash_token(&cookie),
            phase: "launching".into(),
            iss,
            secrets: serde_json::to_string(&secrets)
                .map_err(|e| LaunchError::Config(e.to_string()))?,
            patient: None,
            encounter: None,
            fhir_user: None,
            need_banner: true,
            style_url: None,
            scope: None,
            token_expires_at: None,
            created_at: now,
            last_seen_at: now,
        },
        cookie,
    })
}

fn oauth_http(
    http: &reqwest::blocking::Client,
) -> impl Fn(
    oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, oauth2::HttpClientError<reqwest::Error>>
+ '_ {
    move |req: oauth2::HttpRequest| {
        let (parts, body) = req.into_parts();
        let resp = http
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .map_err(|e| oauth2::HttpClientError::Reqwest(Box::new(e)))?;
        let mut b = oauth2::http::Response::builder().status(resp.status());
        for (k, v) in resp.headers() {
            b = b.header(k, v);
        }
        let bytes = resp
            .bytes()
            .map_err(|e| oauth2::HttpClientError::Reqwest(Box::new(e)))?
            .to_vec();
        b.body(bytes).map_err(oauth2::HttpClientError::Http)
    }
}

fn token_error(
    e: &oauth2::RequestTokenError<
        oauth2::HttpClientError<reqwest::Error>,
        oauth2::basic::BasicErrorResponse,
    >,
) -> String {
    match e {
        oauth2::RequestTokenError::ServerResponse(r) => {
            let d = r.error_description().cloned().unwrap_or_default();
            format!(
                "{}{}",
                r.error(),
                if d.is_empty() {
                    String::new()
                } else {
                    format!(": {d}")
                }
            )
        }
        oauth2::RequestTokenError::Request(_) => "the token endpoint could not be reached".into(),
        other => other.to_string(),
    }
}

/// The claims Herald uses from a verified id_token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `fhirUser` (a resource URL, S12), else `sub`.
    pub fhir_user: String,
}

fn verify_rs256(jwt: &str, jwks: &Value) -> Result<Value, String> {
    let mut parts = jwt.split('.');
    let (h, p, sig) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => (h, p, s),
        _ => return Err("not a compact JWT".into()),
    };
    let header: Value = B64URL
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("unreadable header")?;
    if header["alg"] != "RS256" && header["alg"] != "RS384" {
        return Err(format!("algorithm {} not accepted", header["alg"]));
    }
    let kid = header["kid"].as_str();
    let key = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|k| k["kty"] == "RSA" && (kid.is_none() || k["kid"].as_str() == kid))
        .ok_or("no matching key in the issuer's JWKS")?;
    let num = |name: &str| -> Result<openssl::bn::BigNum, String> {
        let raw = B64URL
            .decode(key[name].as_str().unwrap_or_default())
            .map_err(|_| "bad JWK")?;
        openssl::bn::BigNum::from_slice(&raw).map_err(|e| e.to_string())
    };
    let rsa = openssl::rsa::Rsa::from_public_components(num("n")?, num("e")?)
        .map_err(|e| e.to_string())?;
    let pkey = openssl::pkey::PKey::from_rsa(rsa).map_err(|e| e.to_string())?;
    let md = if header["alg"] == "RS384" {
        openssl::hash::MessageDigest::sha384()
    } else {
        openssl::hash::MessageDigest::sha256()
    };
    let sig = B64URL.decode(sig).map_err(|_| "bad signature encoding")?;
    let mut v = openssl::sign::Verifier::new(md, &pkey).map_err(|e| e.to_string())?;
    v.update(format!("{h}.{p}").as_bytes())
        .map_err(|e| e.to_string())?;
    if !v.verify(&sig).unwrap_or(false) {
        return Err("signature does not verify".into());
    }
    B64URL
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| "unreadable claims".into())
}

/// How old an id_token's `iat` may be (F8c).
pub const ID_TOKEN_MAX_AGE_MINUTES: i64 = 10;

/// Verifies an id_token (S12, F8c): signature by the issuer's JWKS, `iss`
/// equal to the discovered issuer (required: a server that names none is
/// refused), `aud` containing the client id, `nonce` equal to the one Herald
/// sent, `iat` neither in the future (one minute of skew) nor older than
/// [`ID_TOKEN_MAX_AGE_MINUTES`], `exp` in the future (one minute of skew),
/// and reads `fhirUser`.
pub fn validate_id_token(
    id_token: &str,
    jwks: &Value,
    issuer: Option<&str>,
    nonce: &str,
    client_id: &str,
    now: DateTime<Utc>,
) -> Result<Identity, LaunchError> {
    let claims = verify_rs256(id_token, jwks).map_err(LaunchError::IdToken)?;
    let Some(want) = issuer else {
        return Err(LaunchError::IdToken(
            "the server's configuration names no issuer".into(),
        ));
    };
    if claims["iss"].as_str().map(normalize) != Some(normalize(want)) {
        return Err(LaunchError::IdToken("issuer differs".into()));
    }
    let nonce_ok = !nonce.is_empty()
        && claims["nonce"].as_str().is_some_and(|n| {
            n.len() == nonce.len() && openssl::memcmp::eq(n.as_bytes(), nonce.as_bytes())
        });
    if !nonce_ok {
        return Err(LaunchError::IdToken("nonce missing or differs".into()));
    }
    let iat = claims["iat"]
        .as_i64()
        .ok_or(LaunchError::IdToken("no iat".into()))?;
    if iat > now.timestamp() + 60 {
        return Err(LaunchError::IdToken("iat in the future".into()));
    }
    if iat < now.timestamp() - ID_TOKEN_MAX_AGE_MINUTES * 60 {
        return Err(LaunchError::IdToken("iat too old".into()));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == client_id,
        Value::Array(a) => a.iter().any(|x| x == client_id),
        _ => false,
    };
    if !aud_ok {
        return Err(LaunchError::IdToken("not issued to Herald (aud)".into()));
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or(LaunchError::IdToken("no exp".into()))?;
    if exp + 60 < now.timestamp() {
        return Err(LaunchError::IdToken("expired".into()));
    }
    let who = claims["fhirUser"]
        .as_str()
        .or(claims["profile"].as_str())
        .or(claims["sub"].as_str())
        .ok_or(LaunchError::IdToken("no fhirUser or sub".into()))?;
    Ok(Identity {
        fhir_user: who.to_string(),
    })
}

/// Completes a launch at the callback: the state must match, the code is
/// exchanged with the PKCE verifier, the id_token verified. Returns the
/// active session (same cookie) and the clinician.
pub fn finish(
    http: &reqwest::blocking::Client,
    settings: &SmartSettings,
    launching: &SmartSession,
    code: &str,
    state: &str,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> Result<SmartSession, LaunchError> {
    if launching.phase != "launching"
        || now - launching.created_at > Duration::minutes(LAUNCH_TTL_MINUTES)
    {
        return Err(LaunchError::State);
    }
    let mut secrets: Secrets =
        serde_json::from_str(&launching.secrets).map_err(|_| LaunchError::State)?;
    let same = secrets.state.len() == state.len()
        && openssl::memcmp::eq(secrets.state.as_bytes(), state.as_bytes());
    if !same {
        return Err(LaunchError::State);
    }
    let c = client(settings, &secrets, redirect_uri)?;
    let http_fn = oauth_http(http);
    let resp = c
        .exchange_code(AuthorizationCode::new(code.to_string()))
        .set_pkce_verifier(PkceCodeVerifier::new(secrets.verifier.clone()))
        .request(&http_fn)
        .map_err(|e| LaunchError::Token(token_error(&e)))?;
    let extra = resp.extra_fields().clone();
    let client_id = settings.client_id.clone().unwrap_or_default();
    let identity = match (&extra.id_token, &secrets.jwks_uri) {
        (Some(t), Some(uri)) => {
            let jwks: Value =
                http.get(uri).send().and_then(|r| r.json()).map_err(|_| {
                    LaunchError::IdToken("the issuer's JWKS could not be read".into())
                })?;
            Some(validate_id_token(
                t,
                &jwks,
                secrets.issuer.as_deref(),
                &secrets.nonce,
                &client_id,
                now,
            )?)
        }
        (Some(_), None) => {
            return Err(LaunchError::IdToken(
                "the server publishes no jwks_uri".into(),
            ));
        }
        (None, _) => None,
    };
    let identity = identity.ok_or(LaunchError::IdToken(
        "no id_token: Herald asks for openid fhirUser to know the clinician".into(),
    ))?;
    secrets.state.clear();
    secrets.verifier.clear();
    secrets.nonce.clear();
    secrets.access_token = Some(resp.access_token().secret().clone());
    secrets.refresh_token = resp.refresh_token().map(|r| r.secret().clone());
    secrets.csrf = Some(random_token()?);
    let life = resp
        .expires_in()
        .and_then(|d| Duration::from_std(d).ok())
        .unwrap_or(Duration::minutes(5));
    Ok(SmartSession {
        phase: "active".into(),
        secrets: serde_json::to_string(&secrets).map_err(|e| LaunchError::Config(e.to_string()))?,
        patient: extra.patient.clone(),
        encounter: extra.encounter.clone(),
        fhir_user: Some(identity.fhir_user),
        need_banner: extra.need_patient_banner.unwrap_or(true),
        style_url: extra.smart_style_url.clone(),
        scope: resp.scopes().map(|v| {
            v.iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        }),
        token_expires_at: Some(now + life),
        created_at: now,
        last_seen_at: now,
        ..launching.clone()
    })
}

/// Refreshes an active session's access token when it expires within a
/// minute (S14: a new refresh token replaces the old; never more scope).
pub fn refresh_if_due(
    http: &reqwest::blocking::Client,
    settings: &SmartSettings,
    session: &SmartSession,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> Result<Option<SmartSession>, LaunchError> {
    if session
        .token_expires_at
        .is_some_and(|t| t - now > Duration::minutes(1))
    {
        return Ok(None);
    }
    let mut secrets: Secrets =
        serde_json::from_str(&session.secrets).map_err(|_| LaunchError::State)?;
    let Some(rt) = secrets.refresh_token.clone() else {
        return Ok(None);
    };
    let c = client(settings, &secrets, redirect_uri)?;
    let http_fn = oauth_http(http);
    let resp = c
        .exchange_refresh_token(&RefreshToken::new(rt))
        .request(&http_fn)
        .map_err(|e| LaunchError::Token(token_error(&e)))?;
    secrets.access_token = Some(resp.access_token().secret().clone());
    if let Some(r) = resp.refresh_token() {
        secrets.refresh_token = Some(r.secret().clone());
    }
    let life = resp
        .expires_in()
        .and_then(|d| Duration::from_std(d).ok())
        .unwrap_or(Duration::minutes(5));
    Ok(Some(SmartSession {
        secrets: serde_json::to_string(&secrets).map_err(|e| LaunchError::Config(e.to_string()))?,
        token_expires_at: Some(now + life),
        ..session.clone()
    }))
}

/// The session's sealed secrets.
pub fn secrets_of(session: &SmartSession) -> Secrets {
    serde_json::from_str(&session.secrets).unwrap_or_default()
}

/// For tests and the page: the JSON of a token response's SMART fields.
pub fn describe(fields: &SmartFields) -> Value {
    json!(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_scopes_follow_s9() {
        assert_eq!(
            v1_scopes(
                "openid fhirUser patient/Patient.rs user/Appointment.cruds patient/Consent.cu"
            ),
            "openid fhirUser patient/Patient.read user/Appointment.* patient/Consent.write"
        );
    }

    #[test]
    fn the_allow_list_matches_exactly() {
        let s = SmartSettings {
            allowed_iss: vec!["https://ehr.example/fhir/".into()],
            ..SmartSettings::default()
        };
        assert!(allowed(&s, "https://ehr.example/fhir"));
        assert!(!allowed(&s, "https://ehr.example/fhir.evil.example"));
        assert!(!allowed(&s, "https://evil.example/fhir"));
    }
}
