//! Passwords: argon2id (RustCrypto `argon2`) with OWASP's parameters
//! (m = 19456 KiB, t = 2, p = 1), a 16-byte salt from OpenSSL, stored as a
//! PHC string. Verification reads the parameters from the stored string, so
//! raising them later keeps old hashes working.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};

use super::CryptoError;

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 passes, 1 lane.
fn hasher() -> Result<Argon2<'static>, CryptoError> {
    let params = Params::new(19_456, 2, 1, None).map_err(|_| CryptoError::Password)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a password to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub fn hash(password: &str) -> Result<String, CryptoError> {
    let mut salt = [0u8; 16];
    openssl::rand::rand_bytes(&mut salt)?;
    let h = hasher()?
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map_err(|_| CryptoError::Password)?;
    Ok(h.to_string())
}

/// Whether `password` matches the stored PHC string (constant time inside
/// `argon2`). A malformed hash matches nothing.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of no one's password, with the same parameters: verifying against
/// it costs what a real check costs, so an unknown name answers as slowly as
/// a known one.
const DUMMY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$3CJ2MUJCcwKAQ4jFDt5dKoIBCwYRhYdPkkdNG3rI7Hg";

/// Spends the time of one verification and fails (for unknown accounts).
pub fn burn(password: &str) -> bool {
    verify(password, DUMMY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let h = hash("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert!(!verify("x", "not a hash"));
        assert_ne!(h, hash("correct horse battery").unwrap(), "salted");
        assert!(!burn("correct horse battery"));
        // The dummy is a well-formed hash with the same parameters.
        assert!(PasswordHash::new(DUMMY).is_ok());
    }
}
