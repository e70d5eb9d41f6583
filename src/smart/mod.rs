//! SMART on FHIR, Herald as the client: discovery (`.well-known/smart-configuration`),
//! Herald's own key pairs and client assertions (`jwt`), and Backend Services
//! tokens (`backend`). Only this module and `fhir::client` talk to the EHR.

pub mod api_tokens;
pub mod backend;
pub mod jwt;
pub mod launch;

use serde::Deserialize;

/// What `{base}/.well-known/smart-configuration` says (S4).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SmartConfiguration {
    /// The issuer.
    pub issuer: Option<String>,
    /// Where Herald's keys are published (the server's own, for id_tokens).
    pub jwks_uri: Option<String>,
    /// Authorization endpoint (launches).
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: Option<String>,
    /// Grant types.
    pub grant_types_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Signing algorithms for client assertions.
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Scopes.
    pub scopes_supported: Vec<String>,
    /// Capabilities (S5).
    pub capabilities: Vec<String>,
    /// PKCE methods (S3).
    pub code_challenge_methods_supported: Vec<String>,
    /// Introspection endpoint.
    pub introspection_endpoint: Option<String>,
    /// Revocation endpoint.
    pub revocation_endpoint: Option<String>,
}

impl SmartConfiguration {
    /// Resolves relative endpoint URLs against the FHIR base (S2).
    pub fn resolved(mut self, base: &str) -> Self {
        let fix = |u: &mut Option<String>| {
            if let Some(v) = u
                && !v.starts_with("http://")
                && !v.starts_with("https://")
            {
                *v = format!(
                    "{}/{}",
                    base.trim_end_matches('/'),
                    v.trim_start_matches('/')
                );
            }
        };
        fix(&mut self.token_endpoint);
        fix(&mut self.authorization_endpoint);
        fix(&mut self.jwks_uri);
        fix(&mut self.introspection_endpoint);
        fix(&mut self.revocation_endpoint);
        self
    }
}
