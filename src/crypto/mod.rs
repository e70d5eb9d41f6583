//! Encryption at rest: AES-256-GCM field envelopes through OpenSSL, the key
//! ring (a master key wraps the data keys kept in the database), and keyed
//! blind indexes for lookups by phone or email.
//!
//! Envelope format: `key id (4 bytes, big endian) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.
//! The caller passes associated data naming the table, column and row, so a
//! ciphertext moved to another row or column does not decrypt.
//!
//! Must not: log or return key material or plaintext in errors.

pub mod password;
pub mod totp;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;
use openssl::symm::{Cipher, decrypt_aead, encrypt_aead};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KID_LEN: usize = 4;

/// What can go wrong with keys and envelopes. Never carries key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The key is not base64 of 32 bytes.
    #[error("a key must be base64 of exactly 32 bytes")]
    BadKey,
    /// The envelope names a key the ring does not hold.
    #[error("unknown data key id {0}")]
    UnknownKey(u32),
    /// The envelope is too short or the tag does not verify.
    #[error("ciphertext is malformed or was tampered with")]
    Corrupt,
    /// No key is configured.
    #[error(
        "no encryption key: set HERALD_MASTER_KEY (base64 of 32 bytes, e.g. `openssl rand -base64 32`) or run `herald keys init` to create {0}"
    )]
    NoKey(String),
    /// The key file exists but cannot be read or written.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// Password hashing failed.
    #[error("password hashing failed")]
    Password,
    /// OpenSSL failed.
    #[error("openssl: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

/// The master key (key-encryption key). Never printed.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// Parses base64 of exactly 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, CryptoError> {
        let bytes = B64.decode(s.trim()).map_err(|_| CryptoError::BadKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self(arr))
    }

    /// A fresh random key from OpenSSL's CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        Ok(Self(random_32()?))
    }

    /// Base64 text of the key (for the key file only).
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// Reads the key file.
    pub fn read_file(path: &Path) -> Result<Option<Self>, CryptoError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text)
                .map(Some)
                .map_err(|_| CryptoError::KeyFile {
                    path: path.display().to_string(),
                    reason: "does not hold base64 of 32 bytes".into(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(CryptoError::KeyFile {
                path: path.display().to_string(),
                reason: e.kind().to_string(),
            }),
        }
    }

    /// Writes a new key file readable by the owner only; refuses to overwrite.
    pub fn write_new_file(&self, path: &Path) -> Result<(), CryptoError> {
        use std::io::Write as _;
        let err = |reason: String| CryptoError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err(e.kind().to_string()))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                err("already exists; refusing to overwrite a key".into())
            } else {
                err(e.kind().to_string())
            }
        })?;
        writeln!(f, "{}", self.to_base64()).map_err(|e| err(e.kind().to_string()))?;
        Ok(())
    }

    fn wrap(&self, kid: u32, raw: &[u8; 32]) -> Result<Vec<u8>, CryptoError> {
        seal(&self.0, kid, &wrap_aad(kid), raw)
    }

    fn unwrap(&self, kid: u32, wrapped: &[u8]) -> Result<[u8; 32], CryptoError> {
        let raw = open(&self.0, &wrap_aad(kid), wrapped)?;
        raw.try_into().map_err(|_| CryptoError::Corrupt)
    }

    fn derive(&self, label: &str) -> Result<[u8; 32], CryptoError> {
        let mac = hmac_sha256(&self.0, label.as_bytes())?;
        Ok(mac)
    }
}

fn wrap_aad(kid: u32) -> Vec<u8> {
    format!("herald:data-key:{kid}").into_bytes()
}

/// A data key as stored: id and wrapped bytes.
#[derive(Debug, Clone)]
pub struct WrappedKey {
    /// Key id (appears in every envelope it seals).
    pub id: u32,
    /// The key sealed under the master key.
    pub wrapped: Vec<u8>,
}

/// Makes a new data key with id `id`, wrapped under `master`.
pub fn new_data_key(master: &MasterKey, id: u32) -> Result<WrappedKey, CryptoError> {
    let raw = random_32()?;
    Ok(WrappedKey {
        id,
        wrapped: master.wrap(id, &raw)?,
    })
}

/// The unwrapped data keys; the newest seals, all open.
#[derive(Clone)]
pub struct KeyRing {
    keys: BTreeMap<u32, [u8; 32]>,
    active: u32,
    index: HmacKey,
    /// Envelopes opened by this ring and its clones (see [`KeyRing::opened`]).
    opened: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// HMAC-SHA-256 with its key schedule done once: the SHA-256 states after
/// the inner and outer padded keys (RFC 2104), cloned per message. Same
/// output as a fresh HMAC, without building an OpenSSL key each time.
#[derive(Clone)]
struct HmacKey {
    inner: openssl::sha::Sha256,
    outer: openssl::sha::Sha256,
}

impl HmacKey {
    fn new(key: &[u8; 32]) -> Self {
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for (i, k) in key.iter().enumerate() {
            if let (Some(a), Some(b)) = (ipad.get_mut(i), opad.get_mut(i)) {
                *a ^= k;
                *b ^= k;
            }
        }
        let mut inner = openssl::sha::Sha256::new();
        inner.update(&ipad);
        let mut outer = openssl::sha::Sha256::new();
        outer.update(&opad);
        Self { inner, outer }
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        for p in parts {
            inner.update(p);
        }
        let mut outer = self.outer.clone();
        outer.update(&inner.finish());
        outer.finish()
    }
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("key_ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

impl KeyRing {
    /// Unwraps the stored data keys. The highest id is the active one.
    pub fn open(master: &MasterKey, stored: &[WrappedKey]) -> Result<Self, CryptoError> {
        let mut keys = BTreeMap::new();
        for k in stored {
            keys.insert(k.id, master.unwrap(k.id, &k.wrapped)?);
        }
        let active = *keys.keys().next_back().ok_or(CryptoError::UnknownKey(0))?;
        Ok(Self {
            keys,
            active,
            index: HmacKey::new(&master.derive("herald:blind-index:v1")?),
            opened: std::sync::Arc::default(),
        })
    }

    /// The id of the key that seals new values.
    pub fn active_id(&self) -> u32 {
        self.active
    }

    /// Seals `plaintext` under the active key, bound to `aad`.
    pub fn encrypt(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or(CryptoError::UnknownKey(self.active))?;
        seal(key, self.active, aad, plaintext)
    }

    /// Opens an envelope sealed by any key in the ring.
    pub fn decrypt(&self, aad: &[u8], envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.opened
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kid = envelope_key_id(envelope).ok_or(CryptoError::Corrupt)?;
        let key = self.keys.get(&kid).ok_or(CryptoError::UnknownKey(kid))?;
        open(key, aad, envelope)
    }

    /// Convenience: seal a string.
    pub fn encrypt_str(&self, aad: &str, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        self.encrypt(aad.as_bytes(), plaintext.as_bytes())
    }

    /// Convenience: open to a string.
    pub fn decrypt_str(&self, aad: &str, envelope: &[u8]) -> Result<String, CryptoError> {
        String::from_utf8(self.decrypt(aad.as_bytes(), envelope)?).map_err(|_| CryptoError::Corrupt)
    }

    /// A keyed HMAC-SHA-256 of a normalised value (hex), for exact-match lookup
    /// without storing the value. `domain` separates e.g. phone from email.
    pub fn blind_index(&self, domain: &str, normalized: &str) -> String {
        hex(&self
            .index
            .mac(&[domain.as_bytes(), &[0], normalized.as_bytes()]))
    }

    /// How many envelopes this ring (and its clones) has opened: what a
    /// request cost in decryptions (tests hold reads to what they return).
    pub fn opened(&self) -> u64 {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// What the audit log keeps of text an unauthenticated or unvetted caller
    /// chose (a message id on an unsigned webhook, an unknown patient id in a
    /// query): `hmac:` and its keyed hash, fixed in form, so nothing a caller
    /// writes enters the append-only log, yet the same text always maps to
    /// the same value (issue 11 F6c).
    pub fn untrusted_ref(&self, domain: &str, text: &str) -> String {
        format!("hmac:{}", self.blind_index(domain, text))
    }

    /// A ring with one fixed key, for unit tests.
    #[cfg(test)]
    pub fn for_testing() -> Self {
        Self {
            keys: BTreeMap::from([(1, [7u8; 32])]),
            active: 1,
            index: HmacKey::new(&[9u8; 32]),
            opened: std::sync::Arc::default(),
        }
    }
}

/// The key id an envelope was sealed with.
pub fn envelope_key_id(envelope: &[u8]) -> Option<u32> {
    let kid: [u8; KID_LEN] = envelope.get(..KID_LEN)?.try_into().ok()?;
    Some(u32::from_be_bytes(kid))
}

fn seal(key: &[u8; 32], kid: u32, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut nonce = [0u8; NONCE_LEN];
    openssl::rand::rand_bytes(&mut nonce)?;
    let mut tag = [0u8; TAG_LEN];
    let ct = encrypt_aead(
        Cipher::aes_256_gcm(),
        key,
        Some(&nonce),
        aad,
        plaintext,
        &mut tag,
    )?;
    let mut out = Vec::with_capacity(KID_LEN + NONCE_LEN + ct.len() + TAG_LEN);
    out.extend_from_slice(&kid.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    out.extend_from_slice(&tag);
    Ok(out)
}

fn open(key: &[u8; 32], aad: &[u8], envelope: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if envelope.len() < KID_LEN + NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Corrupt);
    }
    let (head, tag) = envelope.split_at(envelope.len() - TAG_LEN);
    let (kid_nonce, ct) = head.split_at(KID_LEN + NONCE_LEN);
    let nonce = kid_nonce.get(KID_LEN..).ok_or(CryptoError::Corrupt)?;
    decrypt_aead(Cipher::aes_256_gcm(), key, Some(nonce), aad, ct, tag)
        .map_err(|_| CryptoError::Corrupt)
}

/// A random bearer secret (session cookie, API token, CSRF token): 32 bytes
/// from OpenSSL's CSPRNG, base64url without padding. Store only its
/// [`sha256_hex`].
pub fn random_token() -> Result<String, CryptoError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    Ok(URL_SAFE_NO_PAD.encode(random_32()?))
}

/// A uniformly random six-digit code (contact confirmation), from OpenSSL's
/// CSPRNG by rejection sampling, so no code is likelier than another.
pub fn random_code6() -> Result<String, CryptoError> {
    loop {
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b)?;
        let n = u32::from_be_bytes(b);
        // 4_294_000_000 is the largest multiple of 10^6 below 2^32.
        if n < 4_294_000_000 {
            return Ok(format!("{:06}", n % 1_000_000));
        }
    }
}

/// Compares two secrets in constant time (for equal lengths; unequal
/// lengths differ at once, which reveals only the length).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && openssl::memcmp::eq(a.as_bytes(), b.as_bytes())
}

fn random_32() -> Result<[u8; 32], CryptoError> {
    let mut k = [0u8; 32];
    openssl::rand::rand_bytes(&mut k)?;
    Ok(k)
}

/// HMAC-SHA-256.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> Result<[u8; 32], CryptoError> {
    // F4: an empty key is never a secret.
    if key.is_empty() {
        return Err(CryptoError::Corrupt);
    }
    let pkey = PKey::hmac(key)?;
    let mut signer = Signer::new(MessageDigest::sha256(), &pkey)?;
    signer.update(msg)?;
    let mac = signer.sign_to_vec()?;
    mac.try_into().map_err(|_| CryptoError::Corrupt)
}

/// HMAC-SHA1 (Twilio's webhook signature, messaging.md W1). An empty key or
/// an OpenSSL failure is an error, never an empty MAC that could match an
/// empty signature (security review F4: fail closed).
pub fn hmac_sha1(key: &[u8], msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if key.is_empty() {
        return Err(CryptoError::Corrupt);
    }
    let pkey = PKey::hmac(key)?;
    let mut signer = Signer::new(MessageDigest::sha1(), &pkey)?;
    signer.update(msg)?;
    let mac = signer.sign_to_vec()?;
    if mac.is_empty() {
        return Err(CryptoError::Corrupt);
    }
    Ok(mac)
}

/// SHA-256 of `data`, hex.
pub fn sha256_hex(data: &[u8]) -> String {
    match openssl::hash::hash(MessageDigest::sha256(), data) {
        Ok(d) => hex(&d),
        Err(_) => String::new(),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0xf] {
            if let Some(d) = DIGITS.get(usize::from(nibble)) {
                s.push(char::from(*d));
            }
        }
    }
    s
}

/// Normalises a phone number for the blind index: digits only, with a leading
/// `+` kept; a 10-digit NANP number gets `+1`.
pub fn normalize_phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if digits.len() == 10 {
        format!("+1{digits}")
    } else {
        format!("+{digits}")
    }
}

/// Normalises an email for the blind index: trimmed, lower case.
pub fn normalize_email(raw: &str) -> String {
    raw.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_envelope_layout() {
        let ring = KeyRing::for_testing();
        let env = ring.encrypt(b"patients.phone:1", b"+12125550123").unwrap();
        assert_eq!(envelope_key_id(&env), Some(1));
        assert_eq!(env.len(), 4 + 12 + 12 + 16);
        assert_eq!(
            ring.decrypt(b"patients.phone:1", &env).unwrap(),
            b"+12125550123"
        );
    }

    #[test]
    fn tamper_wrong_aad_and_unknown_key_fail() {
        let ring = KeyRing::for_testing();
        let mut env = ring.encrypt(b"a", b"secret").unwrap();
        assert!(matches!(
            ring.decrypt(b"b", &env),
            Err(CryptoError::Corrupt)
        ));
        let last = env.len() - 1;
        env[last] ^= 1;
        assert!(matches!(
            ring.decrypt(b"a", &env),
            Err(CryptoError::Corrupt)
        ));
        env[..4].copy_from_slice(&9u32.to_be_bytes());
        assert!(matches!(
            ring.decrypt(b"a", &env),
            Err(CryptoError::UnknownKey(9))
        ));
        assert!(matches!(
            ring.decrypt(b"a", &[1, 2]),
            Err(CryptoError::Corrupt)
        ));
    }

    #[test]
    fn nonces_differ() {
        let ring = KeyRing::for_testing();
        assert_ne!(
            ring.encrypt(b"a", b"x").unwrap(),
            ring.encrypt(b"a", b"x").unwrap()
        );
    }

    #[test]
    fn ring_rotation_keeps_old_keys_readable() {
        let master = MasterKey::generate().unwrap();
        let k1 = new_data_key(&master, 1).unwrap();
        let ring1 = KeyRing::open(&master, std::slice::from_ref(&k1)).unwrap();
        let old = ring1.encrypt(b"aad", b"old").unwrap();
        let k2 = new_data_key(&master, 2).unwrap();
        let ring2 = KeyRing::open(&master, &[k1, k2]).unwrap();
        assert_eq!(ring2.active_id(), 2);
        assert_eq!(ring2.decrypt(b"aad", &old).unwrap(), b"old");
        assert_eq!(
            envelope_key_id(&ring2.encrypt(b"aad", b"new").unwrap()),
            Some(2)
        );
        // The blind index does not change with rotation.
        assert_eq!(
            ring1.blind_index("phone", "+1"),
            ring2.blind_index("phone", "+1")
        );
        // Another master key cannot open the ring.
        assert!(
            KeyRing::open(
                &MasterKey::generate().unwrap(),
                &[new_data_key(&master, 3).unwrap()]
            )
            .is_err()
        );
    }

    #[test]
    fn blind_index_is_keyed_and_domain_separated() {
        let ring = KeyRing::for_testing();
        // The precomputed key schedule gives exactly HMAC-SHA-256.
        assert_eq!(
            ring.blind_index("phone", "+12125550123"),
            hex(&hmac_sha256(&[9u8; 32], b"phone\0+12125550123").unwrap())
        );
        let a = ring.blind_index("phone", &normalize_phone("(212) 555-0123"));
        assert_eq!(
            a,
            ring.blind_index("phone", &normalize_phone("+1 212 555 0123"))
        );
        assert_ne!(
            a,
            ring.blind_index("email", &normalize_phone("+1 212 555 0123"))
        );
        assert_eq!(a.len(), 64);
        assert_ne!(a, sha256_hex(b"phone\0+12125550123"));
    }

    #[test]
    fn master_key_parsing() {
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        let k = MasterKey::generate().unwrap();
        let again = MasterKey::from_base64(&k.to_base64()).unwrap();
        assert_eq!(k.0, again.0);
        assert_eq!(format!("{k:?}"), "MasterKey(***)");
    }
}
