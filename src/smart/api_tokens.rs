//! SMART on FHIR, Herald as the resource server: the access tokens that the
//! hospital's authorization servers (`[[api.issuers]]`) issue to its systems
//! (SMART Backend Services, client_credentials) for Herald's own FHIR
//! endpoints. JWT access tokens are verified against the issuer's JWKS
//! (cached; refetched on an unknown `kid` at most once per
//! [`JWKS_REFETCH_SECS`]); opaque tokens are introspected (RFC 7662) and the
//! answer cached until `min(exp, INTROSPECTION_TTL_SECS)`. Scopes follow SMART
//! v2 (`system/Consent.rs`, `system/*.cruds`) and v1 (`system/Consent.read`,
//! `.write`, `.*`). A refusal names its cause (for the security log), never
//! the token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Public};
use openssl::rsa::Rsa;
use serde_json::Value;

use crate::config::ApiIssuer;

/// Seconds of clock skew allowed on `exp`, `nbf` and `iat`.
pub const SKEW_SECS: i64 = 60;
/// An unknown `kid` refetches the issuer's JWKS at most this often.
pub const JWKS_REFETCH_SECS: u64 = 30;
/// An introspection answer is reused at most this long.
pub const INTROSPECTION_TTL_SECS: i64 = 60;
/// A verified JWT is reused (by its SHA-256) at most this long, never past
/// its `exp`.
pub const VERIFIED_TTL_SECS: i64 = 60;
/// Verified JWTs remembered at once (memory bound; expired ones are dropped
/// first, then all).
const VERIFIED_MAX: usize = 10_000;

/// Why a token was refused (goes to the security log; never the token).
pub type Cause = &'static str;

/// A verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The issuer (one of `[api]` issuers, exactly).
    pub issuer: String,
    /// `client_id`, else `azp`, else `sub`.
    pub client_id: String,
    /// The granted scopes, space-separated.
    pub scope: String,
}

/// Tokens already checked, each with the instant it stops counting.
type Remembered<K> = Mutex<HashMap<K, (Verified, DateTime<Utc>)>>;

struct Jwks {
    keys: Value,
    fetched: Instant,
}

/// Verifies API clients' access tokens; build once per process (the caches
/// live here).
pub struct ApiVerifier {
    issuers: Vec<ApiIssuer>,
    http: reqwest::Client,
    jwks: Mutex<HashMap<String, Jwks>>,
    introspected: Remembered<String>,
    verified: Remembered<[u8; 32]>,
    token_endpoint: Mutex<Option<String>>,
}

impl std::fmt::Debug for ApiVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiVerifier")
            .field("issuers", &self.issuers.len())
            .finish()
    }
}

impl ApiVerifier {
    /// A verifier for these issuers (none: every token is "not an API token").
    pub fn new(issuers: Vec<ApiIssuer>) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            issuers,
            http,
            jwks: Mutex::new(HashMap::new()),
            introspected: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashMap::new()),
            token_endpoint: Mutex::new(None),
        }
    }

    /// Whether any issuer is configured.
    pub fn enabled(&self) -> bool {
        !self.issuers.is_empty()
    }

    /// The first issuer's token endpoint (for the CapabilityStatement's
    /// `oauth-uris`): configured, else discovered once and kept.
    pub async fn token_endpoint(&self) -> Option<String> {
        let first = self.issuers.first()?;
        if let Some(t) = &first.token_endpoint {
            return Some(t.clone());
        }
        if let Some(t) = self.token_endpoint.lock().ok()?.clone() {
            return Some(t);
        }
        let found = self.discover(first, "token_endpoint").await.ok()?;
        *self.token_endpoint.lock().ok()? = Some(found.clone());
        Some(found)
    }

    /// Seeds an issuer's JWKS (tests and benches; otherwise fetched).
    pub fn seed_jwks(&self, issuer: &str, keys: Value) {
        if let Ok(mut m) = self.jwks.lock() {
            m.insert(
                issuer.to_string(),
                Jwks {
                    keys,
                    fetched: Instant::now(),
                },
            );
        }
    }

    /// Verifies `token` at `now`.
    pub async fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<Verified, Cause> {
        if token.split('.').count() == 3 {
            // A JWT verified before is taken from the cache by its hash until
            // min(exp, VERIFIED_TTL_SECS) after it was checked: the signature
            // and claims cannot have changed, and an unknown token still goes
            // through the whole check.
            let digest = openssl::sha::sha256(token.as_bytes());
            if let Ok(m) = self.verified.lock()
                && let Some((v, until)) = m.get(&digest)
                && now < *until
            {
                return Ok(v.clone());
            }
            let (v, exp) = self.verify_jwt(token, now).await?;
            let until = DateTime::from_timestamp(exp, 0).map_or(now, |e| {
                e.min(now + chrono::Duration::seconds(VERIFIED_TTL_SECS))
            });
            if let Ok(mut m) = self.verified.lock() {
                if m.len() >= VERIFIED_MAX {
                    m.retain(|_, (_, u)| now < *u);
                    if m.len() >= VERIFIED_MAX {
                        m.clear();
                    }
                }
                m.insert(digest, (v.clone(), until));
            }
            Ok(v)
        } else {
            self.introspect(token, now).await
        }
    }

    /// The token verified, and its `exp`.
    async fn verify_jwt(&self, token: &str, now: DateTime<Utc>) -> Result<(Verified, i64), Cause> {
        let (header, claims) = decode(token).ok_or("malformed JWT")?;
        let iss = claims
            .get("iss")
            .and_then(Value::as_str)
            .ok_or("no iss claim")?;
        let issuer = self
            .issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or("unknown issuer")?;
        let alg = header.get("alg").and_then(Value::as_str).ok_or("no alg")?;
        if !matches!(alg, "RS256" | "RS384" | "ES256" | "ES384") {
            return Err("algorithm not accepted");
        }
        let kid = header.get("kid").and_then(Value::as_str);
        let jwk = match self.key(issuer, kid, alg, false).await? {
            Some(k) => k,
            None => self
                .key(issuer, kid, alg, true)
                .await?
                .ok_or("unknown key id")?,
        };
        if !verify_signature(token, alg, &jwk) {
            return Err("bad signature");
        }
        check_claims(&claims, issuer, now)?;
        let exp = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or("no exp claim")?;
        Ok((
            Verified {
                issuer: issuer.issuer.clone(),
                client_id: client_of(&claims).ok_or("no client_id, azp or sub")?,
                scope: claims
                    .get("scope")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
            exp,
        ))
    }

    /// The issuer's key for `kid`/`alg`, from the cache or (when `refetch`,
    /// at most once per [`JWKS_REFETCH_SECS`]; or when nothing is cached) a fetch.
    async fn key(
        &self,
        issuer: &ApiIssuer,
        kid: Option<&str>,
        alg: &str,
        refetch: bool,
    ) -> Result<Option<Value>, Cause> {
        let cached = {
            let m = self.jwks.lock().map_err(|_| "JWKS cache poisoned")?;
            m.get(&issuer.issuer)
                .map(|j| (find_key(&j.keys, kid, alg), j.fetched.elapsed()))
        };
        match cached {
            Some((found, _)) if !refetch => return Ok(found),
            Some((_, age)) if age < Duration::from_secs(JWKS_REFETCH_SECS) => return Ok(None),
            _ => {}
        }
        let keys = self.fetch_jwks(issuer).await?;
        let found = find_key(&keys, kid, alg);
        self.seed_jwks(&issuer.issuer, keys);
        Ok(found)
    }

    async fn fetch_jwks(&self, issuer: &ApiIssuer) -> Result<Value, Cause> {
        let uri = match &issuer.jwks_uri {
            Some(u) => u.clone(),
            None => self.discover(issuer, "jwks_uri").await?,
        };
        let res = self
            .http
            .get(&uri)
            .send()
            .await
            .map_err(|_| "JWKS unreachable")?;
        if !res.status().is_success() {
            return Err("JWKS unreachable");
        }
        let v: Value = res.json().await.map_err(|_| "JWKS unreadable")?;
        if !v.get("keys").is_some_and(Value::is_array) {
            return Err("JWKS unreadable");
        }
        Ok(v)
    }

    async fn discover(&self, issuer: &ApiIssuer, field: &str) -> Result<String, Cause> {
        let base = issuer.issuer.trim_end_matches('/');
        for doc in ["openid-configuration", "smart-configuration"] {
            let url = format!("{base}/.well-known/{doc}");
            if let Ok(res) = self.http.get(&url).send().await
                && res.status().is_success()
                && let Ok(v) = res.json::<Value>().await
                && let Some(u) = v.get(field).and_then(Value::as_str)
            {
                return Ok(u.to_string());
            }
        }
        Err("issuer discovery failed")
    }

    async fn introspect(&self, token: &str, now: DateTime<Utc>) -> Result<Verified, Cause> {
        let key = super::launch::hash_token(token);
        if let Ok(m) = self.introspected.lock()
            && let Some((v, until)) = m.get(&key)
            && now < *until
        {
            return Ok(v.clone());
        }
        let mut last: Cause = "not a JWT and no issuer introspects";
        for issuer in &self.issuers {
            let Some(endpoint) = &issuer.introspection_endpoint else {
                continue;
            };
            let secret = match (&issuer.client_secret, &issuer.client_secret_file) {
                (Some(s), _) => s.expose().to_string(),
                (None, Some(f)) => std::fs::read_to_string(f)
                    .map_err(|_| "introspection secret unreadable")?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
                (None, None) => return Err("introspection secret missing"),
            };
            let res = self
                .http
                .post(endpoint)
                .basic_auth(issuer.client_id.clone().unwrap_or_default(), Some(secret))
                .form(&[("token", token), ("token_type_hint", "access_token")])
                .send()
                .await
                .map_err(|_| "introspection unreachable")?;
            if !res.status().is_success() {
                last = "introspection refused Herald";
                continue;
            }
            let claims: Value = res.json().await.map_err(|_| "introspection unreadable")?;
            if claims.get("active") != Some(&Value::Bool(true)) {
                last = "inactive token";
                continue;
            }
            if claims
                .get("iss")
                .and_then(Value::as_str)
                .is_some_and(|i| i != issuer.issuer)
            {
                return Err("wrong issuer");
            }
            check_claims(&claims, issuer, now)?;
            let v = Verified {
                issuer: issuer.issuer.clone(),
                client_id: client_of(&claims).ok_or("no client_id, azp or sub")?,
                scope: claims
                    .get("scope")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            };
            let ttl = now + chrono::Duration::seconds(INTROSPECTION_TTL_SECS);
            let until = claims
                .get("exp")
                .and_then(Value::as_i64)
                .and_then(|e| DateTime::from_timestamp(e, 0))
                .map_or(ttl, |e| e.min(ttl));
            if let Ok(mut m) = self.introspected.lock() {
                m.retain(|_, (_, u)| now < *u);
                m.insert(key, (v.clone(), until));
            }
            return Ok(v);
        }
        Err(last)
    }
}

fn decode(token: &str) -> Option<(Value, Value)> {
    let mut parts = token.split('.');
    let (h, p) = (parts.next()?, parts.next()?);
    let json = |s: &str| -> Option<Value> {
        serde_json::from_slice::<Value>(&B64URL.decode(s).ok()?)
            .ok()
            .filter(Value::is_object)
    };
    Some((json(h)?, json(p)?))
}

fn client_of(claims: &Value) -> Option<String> {
    ["client_id", "azp", "sub"]
        .iter()
        .find_map(|k| claims[*k].as_str().filter(|s| !s.is_empty()))
        .map(str::to_string)
}

/// `aud` (string or array) must name the configured audience; `exp`
/// required and in the future, `nbf`/`iat` not in the future, each with
/// [`SKEW_SECS`] of skew.
fn check_claims(claims: &Value, issuer: &ApiIssuer, now: DateTime<Utc>) -> Result<(), Cause> {
    if claims["iss"].is_string() && claims["iss"] != issuer.issuer.as_str() {
        return Err("wrong issuer");
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => *a == issuer.audience,
        Value::Array(a) => a.iter().any(|x| x == issuer.audience.as_str()),
        _ => false,
    };
    if !aud_ok {
        return Err("wrong audience");
    }
    let t = now.timestamp();
    let exp = claims["exp"].as_i64().ok_or("no exp claim")?;
    if exp + SKEW_SECS <= t {
        return Err("expired");
    }
    if claims["nbf"].as_i64().is_some_and(|n| n - SKEW_SECS > t) {
        return Err("not yet valid");
    }
    if claims["iat"].as_i64().is_some_and(|n| n - SKEW_SECS > t) {
        return Err("issued in the future");
    }
    Ok(())
}

fn find_key(jwks: &Value, kid: Option<&str>, alg: &str) -> Option<Value> {
    let kty = if alg.starts_with("RS") { "RSA" } else { "EC" };
    jwks["keys"]
        .as_array()?
        .iter()
        .filter(|k| k["kty"] == kty)
        .filter(|k| k["use"].as_str().is_none_or(|u| u == "sig"))
        .filter(|k| k["alg"].as_str().is_none_or(|a| a == alg))
        .find(|k| match kid {
            Some(kid) => k["kid"].as_str() == Some(kid),
            None => true,
        })
        .cloned()
}

fn public_key(jwk: &Value, alg: &str) -> Option<PKey<Public>> {
    let num = |k: &str| BigNum::from_slice(&B64URL.decode(jwk[k].as_str()?).ok()?).ok();
    if alg.starts_with("RS") {
        let rsa = Rsa::from_public_components(num("n")?, num("e")?).ok()?;
        PKey::from_rsa(rsa).ok()
    } else {
        let (nid, crv) = match alg {
            "ES256" => (Nid::X9_62_PRIME256V1, "P-256"),
            _ => (Nid::SECP384R1, "P-384"),
        };
        if jwk["crv"] != crv {
            return None;
        }
        let g = EcGroup::from_curve_name(nid).ok()?;
        let (x, y) = (num("x")?, num("y")?);
        let k = EcKey::from_public_key_affine_coordinates(&g, &x, &y).ok()?;
        PKey::from_ec_key(k).ok()
    }
}

fn verify_signature(token: &str, alg: &str, jwk: &Value) -> bool {
    let Some((input, sig)) = token.rsplit_once('.') else {
        return false;
    };
    let (Some(key), Ok(sig)) = (public_key(jwk, alg), B64URL.decode(sig)) else {
        return false;
    };
    let (md, sig) = match alg {
        "RS256" => (MessageDigest::sha256(), sig),
        "RS384" => (MessageDigest::sha384(), sig),
        _ => {
            let (md, n) = if alg == "ES256" {
                (MessageDigest::sha256(), 32)
            } else {
                (MessageDigest::sha384(), 48)
            };
            if sig.len() != 2 * n {
                return false;
            }
            let (r, s) = sig.split_at(n);
            let der = BigNum::from_slice(r)
                .and_then(|r| Ok((r, BigNum::from_slice(s)?)))
                .and_then(|(r, s)| EcdsaSig::from_private_components(r, s))
                .and_then(|s| s.to_der());
            match der {
                Ok(d) => (md, d),
                Err(_) => return false,
            }
        }
    };
    openssl::sign::Verifier::new(md, &key)
        .and_then(|mut v| {
            v.update(input.as_bytes())?;
            v.verify(&sig)
        })
        .unwrap_or(false)
}

/// Whether `scope` (space-separated) grants `op` (`r` read, `s` search, `c`
/// create, `u`, `d`) on `resource` to a system client: SMART v2
/// `system/{Type|*}.{cruds subset, in order}` (scopes narrowed by a `?query`
/// grant nothing here), v1 `system/{Type|*}.{read|write|*}`.
pub fn scope_allows(scope: &str, resource: &str, op: char) -> bool {
    scope.split_ascii_whitespace().any(|s| {
        let Some(rest) = s.strip_prefix("system/") else {
            return false;
        };
        let Some((ty, perms)) = rest.split_once('.') else {
            return false;
        };
        if ty != "*" && ty != resource {
            return false;
        }
        match perms {
            "read" => matches!(op, 'r' | 's'),
            "write" => matches!(op, 'c' | 'u' | 'd'),
            "*" => true,
            p if !p.is_empty() && p.chars().all(|c| "cruds".contains(c)) => {
                // v2: a non-empty subset of c, r, u, d, s, in that order.
                let mut last = None;
                for c in p.chars() {
                    let i = "cruds".find(c);
                    if i <= last {
                        return false;
                    }
                    last = i;
                }
                p.contains(op)
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Signer;
    use serde_json::json;

    const ISS: &str = "https://auth.hospital.example";
    const AUD: &str = "https://herald.example/fhir";

    fn issuer() -> ApiIssuer {
        ApiIssuer {
            issuer: ISS.into(),
            audience: AUD.into(),
            jwks_uri: Some("http://127.0.0.1:9/jwks".into()),
            ..ApiIssuer::default()
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    struct Key {
        alg: &'static str,
        kid: String,
        private: PKey<openssl::pkey::Private>,
        jwk: Value,
    }

    fn key(alg: &'static str, kid: &str) -> Key {
        let b = |n: &openssl::bn::BigNumRef| B64URL.encode(n.to_vec());
        if alg.starts_with("RS") {
            let rsa = Rsa::generate(2048).unwrap();
            let jwk = json!({"kty": "RSA", "kid": kid, "n": b(rsa.n()), "e": b(rsa.e())});
            Key {
                alg,
                kid: kid.into(),
                private: PKey::from_rsa(rsa).unwrap(),
                jwk,
            }
        } else {
            let (nid, crv) = if alg == "ES256" {
                (Nid::X9_62_PRIME256V1, "P-256")
            } else {
                (Nid::SECP384R1, "P-384")
            };
            let g = EcGroup::from_curve_name(nid).unwrap();
            let ec = EcKey::generate(&g).unwrap();
            let mut ctx = openssl::bn::BigNumContext::new().unwrap();
            let (mut x, mut y) = (BigNum::new().unwrap(), BigNum::new().unwrap());
            ec.public_key()
                .affine_coordinates(&g, &mut x, &mut y, &mut ctx)
                .unwrap();
            let n = if alg == "ES256" { 32 } else { 48 };
            let pad = |v: &BigNum| B64URL.encode(v.to_vec_padded(n).unwrap());
            let jwk = json!({"kty": "EC", "crv": crv, "kid": kid, "x": pad(&x), "y": pad(&y)});
            Key {
                alg,
                kid: kid.into(),
                private: PKey::from_ec_key(ec).unwrap(),
                jwk,
            }
        }
    }

    fn sign(k: &Key, claims: &Value) -> String {
        let h = B64URL.encode(json!({"alg": k.alg, "kid": k.kid, "typ": "JWT"}).to_string());
        let p = B64URL.encode(claims.to_string());
        let input = format!("{h}.{p}");
        let md = match k.alg {
            "RS256" | "ES256" => MessageDigest::sha256(),
            _ => MessageDigest::sha384(),
        };
        let mut s = Signer::new(md, &k.private).unwrap();
        s.update(input.as_bytes()).unwrap();
        let der = s.sign_to_vec().unwrap();
        let sig = if k.alg.starts_with("ES") {
            let n = if k.alg == "ES256" { 32 } else { 48 };
            let e = EcdsaSig::from_der(&der).unwrap();
            let mut raw = e.r().to_vec_padded(n).unwrap();
            raw.extend(e.s().to_vec_padded(n).unwrap());
            raw
        } else {
            der
        };
        format!("{input}.{}", B64URL.encode(sig))
    }

    fn claims() -> Value {
        let t = now().timestamp();
        json!({"iss": ISS, "aud": AUD, "exp": t + 300, "iat": t - 5, "nbf": t - 5,
               "client_id": "scheduler", "sub": "svc", "scope": "system/Consent.rs"})
    }

    fn verifier(keys: &[&Key]) -> ApiVerifier {
        let v = ApiVerifier::new(vec![issuer()]);
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        v.seed_jwks(ISS, json!({ "keys": jwks }));
        v
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        actix_rt::System::new().block_on(f)
    }

    #[test]
    fn a_verified_jwt_is_reused_until_a_minute_passes_or_it_expires() {
        let k = key("RS384", "k1");
        let v = verifier(&[&k]);
        let token = sign(&k, &claims());
        assert!(run(v.verify(&token, now())).is_ok());
        // The issuer's keys change: the token checked a moment ago is still
        // accepted from the cache, a new one is checked and refused.
        v.seed_jwks(ISS, json!({ "keys": [] }));
        assert!(run(v.verify(&token, now() + chrono::Duration::seconds(30))).is_ok());
        let mut other = claims();
        other["jti"] = json!("second");
        assert!(run(v.verify(&sign(&k, &other), now())).is_err());
        // After VERIFIED_TTL_SECS it is checked again (and now refused).
        let later = now() + chrono::Duration::seconds(VERIFIED_TTL_SECS + 1);
        assert!(run(v.verify(&token, later)).is_err());
        // Never past its exp, whatever the TTL.
        let v = verifier(&[&k]);
        let mut short = claims();
        short["exp"] = json!(now().timestamp() + 10);
        let token = sign(&k, &short);
        assert!(run(v.verify(&token, now())).is_ok());
        v.seed_jwks(ISS, json!({ "keys": [] }));
        assert!(run(v.verify(&token, now() + chrono::Duration::seconds(11))).is_err());
    }

    #[test]
    fn every_accepted_algorithm_verifies_and_names_the_client() {
        // fhir.md SMART Backend Services: RS384/ES384 required, RS256/ES256 accepted.
        for alg in ["RS256", "RS384", "ES256", "ES384"] {
            let k = key(alg, "k1");
            let v = verifier(&[&k]);
            let got = run(v.verify(&sign(&k, &claims()), now())).unwrap();
            assert_eq!(got.issuer, ISS, "{alg}");
            assert_eq!(got.client_id, "scheduler", "{alg}");
            assert_eq!(got.scope, "system/Consent.rs");
        }
    }

    #[test]
    fn client_is_client_id_else_azp_else_sub() {
        let k = key("ES256", "k1");
        let v = verifier(&[&k]);
        let mut c = claims();
        c.as_object_mut().unwrap().remove("client_id");
        c["azp"] = json!("azp-client");
        assert_eq!(
            run(v.verify(&sign(&k, &c), now())).unwrap().client_id,
            "azp-client"
        );
        c.as_object_mut().unwrap().remove("azp");
        assert_eq!(
            run(v.verify(&sign(&k, &c), now())).unwrap().client_id,
            "svc"
        );
    }

    #[test]
    fn audience_may_be_an_array() {
        let k = key("ES256", "k1");
        let v = verifier(&[&k]);
        let mut c = claims();
        c["aud"] = json!(["https://other.example", AUD]);
        assert!(run(v.verify(&sign(&k, &c), now())).is_ok());
    }

    #[test]
    fn every_refusal_names_its_cause() {
        // fhir.md SMART Backend Services: iss exact, aud Herald's base, exp/nbf/iat with skew,
        // signature by the issuer's JWKS, the kid known.
        let k = key("RS384", "k1");
        let other = key("RS384", "k1");
        let v = verifier(&[&k]);
        let t = now().timestamp();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut c = claims();
            f(&mut c);
            sign(&k, &c)
        };
        let cases: Vec<(String, Cause)> = vec![
            (with(&|c| c["exp"] = json!(t - 61)), "expired"),
            (with(&|c| c["nbf"] = json!(t + 120)), "not yet valid"),
            (with(&|c| c["iat"] = json!(t + 120)), "issued in the future"),
            (
                with(&|c| c["aud"] = json!("https://other.example")),
                "wrong audience",
            ),
            (
                with(&|c| c["aud"] = json!(["https://other.example"])),
                "wrong audience",
            ),
            (
                with(&|c| c["iss"] = json!("https://evil.example")),
                "unknown issuer",
            ),
            (sign(&other, &claims()), "bad signature"),
            ("a.b.c".into(), "malformed JWT"),
            ("opaque-token".into(), "not a JWT and no issuer introspects"),
            (
                with(&|c| {
                    c.as_object_mut().unwrap().remove("exp");
                }),
                "no exp claim",
            ),
        ];
        for (token, cause) in cases {
            assert_eq!(run(v.verify(&token, now())), Err(cause));
        }
        // alg none and HS256 are never accepted.
        let tampered = {
            let h = B64URL.encode(json!({"alg": "HS256", "kid": "k1"}).to_string());
            let p = B64URL.encode(claims().to_string());
            format!("{h}.{p}.c2ln")
        };
        assert_eq!(
            run(v.verify(&tampered, now())),
            Err("algorithm not accepted")
        );
        // Within the skew, still accepted.
        assert!(run(v.verify(&with(&|c| c["exp"] = json!(t - 30)), now())).is_ok());
    }

    #[test]
    fn an_unknown_kid_refetches_at_most_once_per_interval() {
        // The seeded JWKS is fresh, so an unknown kid is refused without a fetch
        // (jwks_uri points at a closed port: a fetch would say "JWKS unreachable").
        let k = key("ES384", "k1");
        let v = verifier(&[&k]);
        let stranger = key("ES384", "k2");
        assert_eq!(
            run(v.verify(&sign(&stranger, &claims()), now())),
            Err("unknown key id")
        );
        // Once the cache is older than the interval, the refetch is tried.
        v.jwks.lock().unwrap().get_mut(ISS).unwrap().fetched =
            Instant::now() - Duration::from_secs(JWKS_REFETCH_SECS + 1);
        assert_eq!(
            run(v.verify(&sign(&stranger, &claims()), now())),
            Err("JWKS unreachable")
        );
    }

    #[test]
    fn scope_grammar_v2_and_v1() {
        // fhir.md scopes: SMART v2 system/Type.cruds subsets in order, * wildcard;
        // v1 .read/.write/.* accepted.
        for (scope, res, op, want) in [
            ("system/Consent.rs", "Consent", 'r', true),
            ("system/Consent.rs", "Consent", 's', true),
            ("system/Consent.rs", "Consent", 'c', false),
            ("system/Consent.c", "Consent", 'c', true),
            ("system/Consent.c", "Consent", 'r', false),
            ("system/Consent.cruds", "Consent", 'c', true),
            ("system/*.rs", "AuditEvent", 's', true),
            ("system/*.cruds", "Communication", 'r', true),
            ("system/Communication.rs", "Consent", 'r', false),
            ("system/Consent.sr", "Consent", 'r', false),
            ("system/Consent.rr", "Consent", 'r', false),
            ("system/Consent.", "Consent", 'r', false),
            ("system/Consent.rs?patient=1", "Consent", 'r', false),
            ("patient/Consent.rs", "Consent", 'r', false),
            ("user/Consent.rs", "Consent", 'r', false),
            ("system/Consent.read", "Consent", 's', true),
            ("system/Consent.read", "Consent", 'c', false),
            ("system/Consent.write", "Consent", 'c', true),
            ("system/Consent.write", "Consent", 'r', false),
            ("system/*.read", "AuditEvent", 'r', true),
            ("system/Consent.*", "Consent", 'c', true),
            ("openid system/AuditEvent.s", "AuditEvent", 's', true),
            ("", "Consent", 'r', false),
        ] {
            assert_eq!(scope_allows(scope, res, op), want, "{scope:?} {res} {op}");
        }
    }
}
