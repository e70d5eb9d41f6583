//! Herald's key pairs and client-assertion JWTs for SMART Backend Services
//! (S17, S18): RS384 (RSA 2048, PKCS#1 v1.5 with SHA-384) and ES384 (P-384,
//! the signature as the raw 96-byte `r ‖ s` JWS wants, not DER). The `kid` is
//! the RFC 7638 thumbprint of the public key, so it is unique in the JWKS.
// serde_json::Value indexing yields Null for a missing key or index; it never panics.
#![allow(clippy::indexing_slicing)]

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, Utc};
use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Value, json};

/// The longest lifetime SMART allows a client assertion (S17: exp ≤ 5 minutes).
pub const ASSERTION_LIFETIME_SECS: i64 = 240;

/// Key or signing failures.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// OpenSSL refused.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// An algorithm Herald does not sign with.
    #[error("unsupported algorithm {0:?} (RS384 or ES384)")]
    Alg(String),
}

/// A freshly made key pair.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// RS384 | ES384.
    pub alg: String,
    /// PKCS#8 PEM.
    pub private_pem: String,
    /// Public JWK.
    pub public_jwk: Value,
}

fn b64(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

fn padded(n: &BigNumRef, len: i32) -> Result<Vec<u8>, JwtError> {
    Ok(n.to_vec_padded(len)?)
}

fn thumbprint(members: &Value) -> Result<String, JwtError> {
    // serde_json keeps object keys sorted (no preserve_order): the canonical
    // RFC 7638 form is the required members, sorted, without whitespace.
    let text = members.to_string();
    let digest = openssl::hash::hash(MessageDigest::sha256(), text.as_bytes())?;
    Ok(b64(&digest))
}

/// Makes a key pair for `alg`.
pub fn generate(alg: &str) -> Result<NewKey, JwtError> {
    match alg {
        "RS384" => {
            let rsa = Rsa::generate(2048)?;
            let n = b64(&rsa.n().to_vec());
            let e = b64(&rsa.e().to_vec());
            let kid = thumbprint(&json!({ "e": e, "kty": "RSA", "n": n }))?;
            let pem = PKey::from_rsa(rsa)?.private_key_to_pem_pkcs8()?;
            Ok(NewKey {
                public_jwk: json!({
                    "kty": "RSA", "kid": kid, "alg": "RS384", "use": "sig",
                    "key_ops": ["verify"], "n": n, "e": e,
                }),
                kid,
                alg: alg.into(),
                private_pem: String::from_utf8_lossy(&pem).into_owned(),
            })
        }
        "ES384" => {
            let group = EcGroup::from_curve_name(Nid::SECP384R1)?;
            let key = EcKey::generate(&group)?;
            let mut ctx = BigNumContext::new()?;
            let mut x = BigNum::new()?;
            let mut y = BigNum::new()?;
            key.public_key()
                .affine_coordinates(&group, &mut x, &mut y, &mut ctx)?;
            let x = b64(&padded(&x, 48)?);
            let y = b64(&padded(&y, 48)?);
            let kid = thumbprint(&json!({ "crv": "P-384", "kty": "EC", "x": x, "y": y }))?;
            let pem = PKey::from_ec_key(key)?.private_key_to_pem_pkcs8()?;
            Ok(NewKey {
                public_jwk: json!({
                    "kty": "EC", "kid": kid, "alg": "ES384", "use": "sig",
                    "key_ops": ["verify"], "crv": "P-384", "x": x, "y": y,
                }),
                kid,
                alg: alg.into(),
                private_pem: String::from_utf8_lossy(&pem).into_owned(),
            })
        }
        other => Err(JwtError::Alg(other.into())),
    }
}

/// The claims of a client assertion (S17).
#[derive(Debug, Clone)]
pub struct Assertion<'a> {
    /// iss = sub = the client id.
    pub client_id: &'a str,
    /// aud = the token URL.
    pub token_url: &'a str,
    /// A unique id (never reused).
    pub jti: &'a str,
    /// Now.
    pub now: DateTime<Utc>,
    /// The registered JWKS URL, sent as `jku` when known (Epic's JKU, V3).
    pub jku: Option<&'a str>,
}

/// Signs a client assertion with the private key `pem` (`alg`, `kid`).
pub fn sign_assertion(
    pem: &str,
    alg: &str,
    kid: &str,
    a: &Assertion<'_>,
) -> Result<String, JwtError> {
    let mut header = json!({ "alg": alg, "kid": kid, "typ": "JWT" });
    if let Some(jku) = a.jku {
        header["jku"] = json!(jku);
    }
    let iat = a.now.timestamp();
    let claims = json!({
        "iss": a.client_id,
        "sub": a.client_id,
        "aud": a.token_url,
        "jti": a.jti,
        "iat": iat,
        "exp": iat + ASSERTION_LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let key: PKey<Private> = PKey::private_key_from_pem(pem.as_bytes())?;
    let mut signer = Signer::new(MessageDigest::sha384(), &key)?;
    signer.update(signing_input.as_bytes())?;
    let der = signer.sign_to_vec()?;
    let signature = match alg {
        "RS384" => der,
        "ES384" => {
            let sig = EcdsaSig::from_der(&der)?;
            let mut raw = padded(sig.r(), 48)?;
            raw.extend(padded(sig.s(), 48)?);
            raw
        }
        other => return Err(JwtError::Alg(other.into())),
    };
    Ok(format!("{signing_input}.{}", b64(&signature)))
}

/// Reads the claims of a JWT without checking it (for the `jti` of an access
/// token Herald received, BALP A6). None when it is not a JWT.
pub fn unverified_claims(token: &str) -> Option<Value> {
    let mut parts = token.split('.');
    let (_h, p, _s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&B64URL.decode(p).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::sign::Verifier;

    fn verify(jwt: &str, jwk: &Value) -> bool {
        let (input, sig) = jwt.rsplit_once('.').unwrap();
        let sig = B64URL.decode(sig).unwrap();
        let num = |k: &str| {
            BigNum::from_slice(&B64URL.decode(jwk[k].as_str().unwrap()).unwrap()).unwrap()
        };
        let (key, sig) = if jwk["kty"] == "RSA" {
            let rsa = Rsa::from_public_components(num("n"), num("e")).unwrap();
            (PKey::from_rsa(rsa).unwrap(), sig)
        } else {
            let g = EcGroup::from_curve_name(Nid::SECP384R1).unwrap();
            let k = EcKey::from_public_key_affine_coordinates(&g, &num("x"), &num("y")).unwrap();
            assert_eq!(sig.len(), 96, "JWS ES384 signatures are raw r||s");
            let r = BigNum::from_slice(&sig[..48]).unwrap();
            let s = BigNum::from_slice(&sig[48..]).unwrap();
            let der = EcdsaSig::from_private_components(r, s)
                .unwrap()
                .to_der()
                .unwrap();
            (PKey::from_ec_key(k).unwrap(), der)
        };
        let mut v = Verifier::new(MessageDigest::sha384(), &key).unwrap();
        v.update(input.as_bytes()).unwrap();
        v.verify(&sig).unwrap_or(false)
    }

    #[test]
    fn assertions_verify_against_the_published_jwk_with_both_algorithms() {
        // S17: RS384 and ES384; claims iss = sub = client_id, aud, exp ≤ 5 min, jti, kid.
        let now = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for alg in ["RS384", "ES384"] {
            let key = generate(alg).unwrap();
            let a = Assertion {
                client_id: "herald",
                token_url: "https://ehr.example/token",
                jti: "j-1",
                now,
                jku: Some("https://herald.example/.well-known/jwks.json"),
            };
            let jwt = sign_assertion(&key.private_pem, alg, &key.kid, &a).unwrap();
            assert!(verify(&jwt, &key.public_jwk), "{alg} signature verifies");
            let other = generate(alg).unwrap();
            assert!(
                !verify(&jwt, &other.public_jwk),
                "{alg}: another key does not"
            );
            let claims = unverified_claims(&jwt).unwrap();
            assert_eq!(claims["iss"], "herald");
            assert_eq!(claims["sub"], "herald");
            assert_eq!(claims["aud"], "https://ehr.example/token");
            let exp = claims["exp"].as_i64().unwrap();
            assert!(exp > now.timestamp() && exp - now.timestamp() <= 300);
            let header: Value =
                serde_json::from_slice(&B64URL.decode(jwt.split('.').next().unwrap()).unwrap())
                    .unwrap();
            assert_eq!(header["alg"], alg);
            assert_eq!(header["typ"], "JWT");
            assert_eq!(header["kid"], key.kid.as_str());
            assert_eq!(key.public_jwk["kid"], key.kid.as_str());
        }
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1 example key and thumbprint.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let tp = thumbprint(&json!({ "e": "AQAB", "kty": "RSA", "n": n })).unwrap();
        assert_eq!(tp, "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }
}
