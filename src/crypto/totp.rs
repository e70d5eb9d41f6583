//! TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA-1 through OpenSSL, six
//! digits, 30-second steps, one step of drift either way. A code is accepted
//! only for a step later than the last one accepted, so a code seen on the
//! wire cannot be replayed. Codes are compared in constant time.

use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::sign::Signer;

use super::CryptoError;

/// Seconds per step.
pub const STEP_SECS: i64 = 30;
/// Digits per code.
pub const DIGITS: u32 = 6;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation for SHA-1).
pub const SECRET_LEN: usize = 20;

/// A fresh random secret from OpenSSL's CSPRNG.
pub fn generate_secret() -> Result<[u8; SECRET_LEN], CryptoError> {
    let mut s = [0u8; SECRET_LEN];
    openssl::rand::rand_bytes(&mut s)?;
    Ok(s)
}

/// The step a Unix time falls in.
pub fn step_at(unix_secs: i64) -> i64 {
    unix_secs.div_euclid(STEP_SECS)
}

/// HOTP with any digest (RFC 4226 §5.3 dynamic truncation).
fn hotp_with(
    digest: MessageDigest,
    key: &[u8],
    counter: u64,
    digits: u32,
) -> Result<u32, CryptoError> {
    let pkey = PKey::hmac(key)?;
    let mut signer = Signer::new(digest, &pkey)?;
    signer.update(&counter.to_be_bytes())?;
    let mac = signer.sign_to_vec()?;
    let offset = usize::from(mac.last().ok_or(CryptoError::Corrupt)? & 0x0f);
    let word: [u8; 4] = mac
        .get(offset..offset + 4)
        .and_then(|w| w.try_into().ok())
        .ok_or(CryptoError::Corrupt)?;
    let bin = u32::from_be_bytes(word) & 0x7fff_ffff;
    Ok(bin % 10u32.pow(digits))
}

fn totp_with(
    digest: MessageDigest,
    key: &[u8],
    unix_secs: i64,
    digits: u32,
) -> Result<String, CryptoError> {
    let step = u64::try_from(step_at(unix_secs)).map_err(|_| CryptoError::Corrupt)?;
    let n = hotp_with(digest, key, step, digits)?;
    Ok(format!(
        "{n:0width$}",
        width = usize::try_from(digits).unwrap_or(6)
    ))
}

/// The six-digit code for a step.
pub fn code_for_step(key: &[u8], step: i64) -> Result<String, CryptoError> {
    totp_with(MessageDigest::sha1(), key, step * STEP_SECS, DIGITS)
}

/// Checks `code` at `unix_secs` (one step of drift either way). Returns the
/// step it matched, when that step is later than `last_step`; `None` for a
/// wrong, malformed or replayed code. Every candidate step is computed and
/// compared in constant time.
pub fn verify(key: &[u8], code: &str, unix_secs: i64, last_step: Option<i64>) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    let well_formed = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    let now = step_at(unix_secs);
    let mut matched = None;
    for step in [now - 1, now, now + 1] {
        let Ok(expected) = code_for_step(key, step) else {
            continue;
        };
        let same = well_formed && openssl::memcmp::eq(expected.as_bytes(), code.as_bytes());
        if same && last_step.is_none_or(|last| step > last) {
            matched = Some(step);
        }
    }
    matched
}

/// RFC 4648 base32 without padding (what authenticator apps read).
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u32 = 0;
    let mut bits = 0u32;
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let i = usize::try_from((buffer >> bits) & 31).unwrap_or(0);
            out.extend(ALPHABET.get(i).map(|c| char::from(*c)));
        }
    }
    if bits > 0 {
        let i = usize::try_from((buffer << (5 - bits)) & 31).unwrap_or(0);
        out.extend(ALPHABET.get(i).map(|c| char::from(*c)));
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The `otpauth://` URI an authenticator app enrols from (Key Uri Format).
pub fn enrolment_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        percent(issuer),
        percent(account),
        base32(secret),
        percent(issuer)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the test vectors for SHA-1, SHA-256 and SHA-512
    /// (eight digits), each with the seed the RFC's reference code uses.
    #[test]
    fn rfc6238_appendix_b() {
        let sha1 = b"12345678901234567890".as_slice();
        let sha256 = b"12345678901234567890123456789012".as_slice();
        let sha512 = b"1234567890123456789012345678901234567890123456789012345678901234".as_slice();
        let cases: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, c1, c256, c512) in cases {
            assert_eq!(
                totp_with(MessageDigest::sha1(), sha1, t, 8).unwrap(),
                c1,
                "{t}"
            );
            assert_eq!(
                totp_with(MessageDigest::sha256(), sha256, t, 8).unwrap(),
                c256,
                "{t}"
            );
            assert_eq!(
                totp_with(MessageDigest::sha512(), sha512, t, 8).unwrap(),
                c512,
                "{t}"
            );
        }
        // Six digits are the low six of the eight.
        assert_eq!(code_for_step(sha1, step_at(59)).unwrap(), "287082");
    }

    #[test]
    fn drift_replay_and_malformed_codes() {
        let key = b"12345678901234567890";
        let t = 1234567890;
        let now = step_at(t);
        let code = code_for_step(key, now).unwrap();
        assert_eq!(verify(key, &code, t, None), Some(now));
        assert_eq!(verify(key, &code, t + 30, None), Some(now), "one step late");
        assert_eq!(
            verify(key, &code, t - 30, None),
            Some(now),
            "one step early"
        );
        assert_eq!(verify(key, &code, t + 60, None), None, "two steps late");
        assert_eq!(verify(key, &code, t, Some(now)), None, "replayed");
        assert_eq!(verify(key, &code, t, Some(now - 1)), Some(now));
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(key, &spaced, t, None), Some(now));
        for bad in ["", "12345", "1234567", "abcdef", "12345x"] {
            assert_eq!(verify(key, bad, t, None), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_and_uri() {
        // RFC 4648 §10.
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32(plain.as_bytes()), enc);
        }
        assert_eq!(
            enrolment_uri("Herald", "dr who", b"foobar"),
            "otpauth://totp/Herald:dr%20who?secret=MZXW6YTBOI&issuer=Herald&algorithm=SHA1&digits=6&period=30"
        );
    }
}
