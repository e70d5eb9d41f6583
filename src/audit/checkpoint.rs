//! Signed checkpoints of the audit chain's head: the chain's anchor outside
//! the database (security review F8h).
//!
//! The chain alone is unkeyed: a database owner can drop the append-only
//! triggers, rewrite the tail, recompute the hashes and move `audit_head`, and
//! [`super::verify`] passes. A checkpoint is Herald's ES384 signature over
//! (seq, head hash, time, key id), written as a file into
//! `audit.checkpoint_dir` (and optionally POSTed to a webhook). The key is a
//! PEM file (`audit.checkpoint_key`, mode 0600), never in the database. What
//! a checkpoint vouches for can then not be rewritten unseen: [`verify_dir`]
//! checks each checkpoint's signature and that the record at its seq still has
//! its hash, and that the chain has not shrunk below the newest one.
//!
//! Granularity: a mismatch shows that some record at or before the
//! checkpoint's seq (after the previous good checkpoint) was rewritten;
//! records appended after the newest checkpoint are covered only by the next.
//!
//! This module must not sign a head that does not extend the newest valid
//! checkpoint ([`take`] walks from it first), so a rewrite is never laundered
//! into a fresh signature.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use chrono::{DateTime, SecondsFormat, Utc};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey, EcKeyRef};
use openssl::ecdsa::EcdsaSig;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Private, Public};
use serde::{Deserialize, Serialize};

use crate::db::{DbConn, DbError, audit_store};

/// The `format` of a checkpoint document and the first line of what is signed.
pub const FORMAT: &str = "herald-audit-checkpoint/1";

/// What went wrong while making or reading checkpoints.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the OS said.
        reason: String,
    },
    /// The key file is not a P-384 key.
    #[error("{path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// OpenSSL refused.
    #[error("openssl: {0}")]
    Openssl(#[from] openssl::error::ErrorStack),
    /// The database.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The chain does not extend the newest valid checkpoint: refusing to sign.
    #[error(
        "refusing to sign the audit chain head: {0}; run `herald audit verify --checkpoints DIR` and investigate"
    )]
    NotExtending(String),
}

fn io_err(path: &Path, e: &std::io::Error) -> CheckpointError {
    CheckpointError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn b64(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

fn p384() -> Result<EcGroup, CheckpointError> {
    Ok(EcGroup::from_curve_name(Nid::SECP384R1)?)
}

/// The RFC 7638 thumbprint of a P-384 public key (its key id).
fn kid_of<T: HasPublic>(key: &EcKeyRef<T>) -> Result<String, CheckpointError> {
    let group = p384()?;
    let mut ctx = BigNumContext::new()?;
    let (mut x, mut y) = (BigNum::new()?, BigNum::new()?);
    key.public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)?;
    // serde_json sorts object keys: the canonical RFC 7638 member order.
    let members = serde_json::json!({
        "crv": "P-384",
        "kty": "EC",
        "x": b64(&x.to_vec_padded(48)?),
        "y": b64(&y.to_vec_padded(48)?),
    });
    let digest = openssl::hash::hash(MessageDigest::sha256(), members.to_string().as_bytes())?;
    Ok(b64(&digest))
}

fn is_p384<T: openssl::pkey::HasParams>(key: &EcKeyRef<T>) -> bool {
    key.group().curve_name() == Some(Nid::SECP384R1)
}

/// Herald's checkpoint signing key (private).
pub struct SigningKey {
    key: EcKey<Private>,
    kid: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({})", self.kid)
    }
}

/// A key that checks checkpoints (public).
#[derive(Debug)]
pub struct VerifyingKey {
    key: EcKey<Public>,
    kid: String,
}

impl SigningKey {
    /// Reads the key file; `None` when there is none.
    pub fn load(path: &Path) -> Result<Option<Self>, CheckpointError> {
        let pem = match std::fs::read(path) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(path, &e)),
        };
        let bad = |reason: &str| CheckpointError::Key {
            path: path.display().to_string(),
            reason: reason.into(),
        };
        let key = openssl::pkey::PKey::private_key_from_pem(&pem)
            .ok()
            .and_then(|k| k.ec_key().ok())
            .filter(|k| is_p384(k))
            .ok_or_else(|| bad("not a P-384 private key in PEM"))?;
        let kid = kid_of(&key)?;
        Ok(Some(Self { key, kid }))
    }

    /// Reads the key file, or makes a new key there (PKCS#8 PEM, mode 0600,
    /// never overwriting a file) when there is none. `Ok((key, true))` when made.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), CheckpointError> {
        if let Some(k) = Self::load(path)? {
            return Ok((k, false));
        }
        let group = p384()?;
        let key = EcKey::generate(&group)?;
        let pem = openssl::pkey::PKey::from_ec_key(key.clone())?.private_key_to_pem_pkcs8()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        match opts.open(path) {
            Ok(mut f) => {
                f.write_all(&pem).map_err(|e| io_err(path, &e))?;
                f.sync_all().map_err(|e| io_err(path, &e))?;
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::load(path)?
                    .map(|k| (k, false))
                    .ok_or_else(|| io_err(path, &e));
            }
            Err(e) => return Err(io_err(path, &e)),
        }
        let kid = kid_of(&key)?;
        Ok((Self { key, kid }, true))
    }

    /// The key id (RFC 7638 thumbprint of the public key).
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as PEM (SubjectPublicKeyInfo), for `--public-key FILE`.
    pub fn public_pem(&self) -> Result<String, CheckpointError> {
        Ok(String::from_utf8_lossy(&self.key.public_key_to_pem()?).into_owned())
    }

    /// The public half.
    pub fn verifying_key(&self) -> Result<VerifyingKey, CheckpointError> {
        let group = p384()?;
        let key = EcKey::from_public_key(&group, self.key.public_key())?;
        Ok(VerifyingKey {
            key,
            kid: self.kid.clone(),
        })
    }

    /// Signs the head (seq, hash) at `time`.
    pub fn sign(
        &self,
        seq: i64,
        hash: &str,
        time: DateTime<Utc>,
    ) -> Result<Checkpoint, CheckpointError> {
        let time = time.to_rfc3339_opts(SecondsFormat::Secs, true);
        let digest = openssl::hash::hash(
            MessageDigest::sha384(),
            &signed_bytes(seq, hash, &time, &self.kid),
        )?;
        let sig = EcdsaSig::sign(&digest, &self.key)?;
        let mut raw = sig.r().to_vec_padded(48)?;
        raw.extend(sig.s().to_vec_padded(48)?);
        Ok(Checkpoint {
            format: FORMAT.into(),
            seq,
            hash: hash.into(),
            time,
            kid: self.kid.clone(),
            alg: "ES384".into(),
            signature: b64(&raw),
        })
    }
}

impl VerifyingKey {
    /// Reads a public key PEM (or a private key PEM, whose public half is used).
    pub fn read(path: &Path) -> Result<Self, CheckpointError> {
        let pem = std::fs::read(path).map_err(|e| io_err(path, &e))?;
        let public = EcKey::public_key_from_pem(&pem).ok().filter(|k| is_p384(k));
        if let Some(key) = public {
            let kid = kid_of(&key)?;
            return Ok(Self { key, kid });
        }
        match SigningKey::load(path)? {
            Some(k) => k.verifying_key(),
            None => Err(io_err(path, &std::io::ErrorKind::NotFound.into())),
        }
    }

    /// The key id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Whether `cp`'s signature is this key's over its fields.
    pub fn verifies(&self, cp: &Checkpoint) -> bool {
        if cp.alg != "ES384" || cp.format != FORMAT || cp.kid != self.kid {
            return false;
        }
        let Ok(raw) = B64URL.decode(cp.signature.as_bytes()) else {
            return false;
        };
        let (Some(r), Some(s)) = (raw.get(..48), raw.get(48..)) else {
            return false;
        };
        if s.len() != 48 {
            return false;
        }
        let sig = BigNum::from_slice(r)
            .and_then(|r| BigNum::from_slice(s).map(|s| (r, s)))
            .and_then(|(r, s)| EcdsaSig::from_private_components(r, s));
        let digest = openssl::hash::hash(
            MessageDigest::sha384(),
            &signed_bytes(cp.seq, &cp.hash, &cp.time, &cp.kid),
        );
        match (sig, digest) {
            (Ok(sig), Ok(d)) => sig.verify(&d, &self.key).unwrap_or(false),
            _ => false,
        }
    }
}

/// The canonical bytes a checkpoint's signature covers: the format, seq,
/// head hash, time and key id, one `name=value` per line.
pub fn signed_bytes(seq: i64, hash: &str, time: &str, kid: &str) -> Vec<u8> {
    format!("{FORMAT}\nseq={seq}\nhash={hash}\ntime={time}\nkid={kid}\n").into_bytes()
}

/// One signed checkpoint: the document written to a file and the webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// [`FORMAT`].
    pub format: String,
    /// The head's sequence number (0: the empty chain).
    pub seq: i64,
    /// The head's hash (the record at `seq`).
    pub hash: String,
    /// When it was signed, RFC 3339 in UTC, seconds.
    pub time: String,
    /// The signing key's id (RFC 7638 thumbprint).
    pub kid: String,
    /// ES384.
    pub alg: String,
    /// base64url of the raw 96-byte `r ‖ s` over [`signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// The file name: sorts by seq, then time; never reused.
    pub fn file_name(&self) -> String {
        let stamp: String = self
            .time
            .chars()
            .filter(|c| *c != '-' && *c != ':')
            .collect();
        format!("checkpoint-{:020}-{stamp}.json", self.seq.max(0))
    }
}

/// Writes `cp` into `dir` atomically (a temporary file, then a link to its
/// name, which never replaces a file). Returns the path; an existing file of
/// that name (the same seq in the same second) is kept.
pub fn write_file(dir: &Path, cp: &Checkpoint) -> Result<PathBuf, CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|e| io_err(dir, &e))?;
    let path = dir.join(cp.file_name());
    let tmp = dir.join(format!(".checkpoint-{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut text = serde_json::to_string_pretty(cp).map_err(|e| CheckpointError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        });
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(&tmp, &e));
    }
    let linked = match std::fs::hard_link(&tmp, &path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        // Storage without hard links: rename, unless the name is taken.
        Err(_) if path.exists() => Ok(()),
        Err(_) => std::fs::rename(&tmp, &path),
    };
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| io_err(&path, &e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(path)
}

/// A checkpoint file's name and its document, or why it could not be read.
pub type Entry = (String, Result<Checkpoint, String>);

/// The checkpoint files in `dir` in name order (seq, then time), each parsed
/// or with why it could not be.
pub fn read_dir(dir: &Path) -> Result<Vec<Entry>, CheckpointError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| io_err(dir, &e))? {
        let entry = entry.map_err(|e| io_err(dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.starts_with("checkpoint-") && name.ends_with(".json")) {
            continue;
        }
        let parsed = std::fs::read(entry.path())
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).map_err(|e| e.to_string()));
        out.push((name, parsed));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// A checkpoint just written.
#[derive(Debug)]
pub struct Written {
    /// The document.
    pub checkpoint: Checkpoint,
    /// Its file.
    pub path: PathBuf,
}

/// Signs the chain head now, after checking that the chain still extends the
/// newest checkpoint in `dir` this key signed (its record keeps its hash and
/// every record since chains on; with none, the whole chain is walked).
/// Refuses ([`CheckpointError::NotExtending`]) otherwise.
pub fn take(
    conn: &mut DbConn,
    key: &SigningKey,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<Written, CheckpointError> {
    let public = key.verifying_key()?;
    let base = if dir.exists() {
        read_dir(dir)?
            .into_iter()
            .filter_map(|(name, cp)| cp.ok().map(|cp| (name, cp)))
            .filter(|(_, cp)| public.verifies(cp))
            .max_by(|a, b| (a.1.seq, &a.0).cmp(&(b.1.seq, &b.0)))
    } else {
        None
    };
    let (from_seq, from_hash) = match &base {
        Some((name, cp)) if cp.seq > 0 => {
            match audit_store::record_hash(conn, cp.seq)? {
                Some((_, h)) if h == cp.hash => {}
                Some((id, _)) => {
                    return Err(CheckpointError::NotExtending(format!(
                        "record seq {} (AuditEvent/{id}) no longer has the hash checkpoint {name} signed",
                        cp.seq
                    )));
                }
                None => {
                    return Err(CheckpointError::NotExtending(format!(
                        "checkpoint {name} vouches for seq {} but the chain has no such record",
                        cp.seq
                    )));
                }
            }
            (cp.seq, cp.hash.clone())
        }
        _ => (0, super::GENESIS.to_string()),
    };
    let walk = super::walk(conn, from_seq, &from_hash)?;
    if let super::Verdict::Broken(b) = walk.verdict {
        return Err(CheckpointError::NotExtending(b.to_string()));
    }
    let checkpoint = key.sign(walk.through_seq, &walk.through_hash, now)?;
    let path = write_file(dir, &checkpoint)?;
    Ok(Written { checkpoint, path })
}

/// What [`anchor`] did.
#[derive(Debug)]
pub struct Anchored {
    /// The checkpoint and its file.
    pub written: Written,
    /// Whether the signing key was made just now (first use).
    pub key_created: bool,
    /// The webhook's answer, when `audit.checkpoint_webhook` is set.
    pub webhook: Option<Result<(), String>>,
}

/// Writes a checkpoint of the chain head now with the configured key (made on
/// first need) into the configured directory, and POSTs it to the webhook
/// when one is set (`herald audit checkpoint`; hourly and at shutdown in
/// `herald serve`). Blocking.
pub fn anchor(
    conn: &mut DbConn,
    settings: &crate::config::Settings,
    now: DateTime<Utc>,
) -> Result<Anchored, CheckpointError> {
    let (key, key_created) = SigningKey::load_or_create(&settings.checkpoint_key())?;
    let written = take(conn, &key, &settings.checkpoint_dir(), now)?;
    let webhook = settings
        .audit
        .checkpoint_webhook
        .as_ref()
        .map(|url| post(url.expose(), &written.checkpoint));
    Ok(Anchored {
        written,
        key_created,
        webhook,
    })
}

/// POSTs a checkpoint to the webhook (verified TLS; 10 s at most). The error
/// never carries the URL (it may hold a token).
pub fn post(url: &str, cp: &Checkpoint) -> Result<(), String> {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .and_then(|client| client.post(url).json(cp).send())
        .and_then(reqwest::blocking::Response::error_for_status)
        .map(|_| ())
        .map_err(|e| e.without_url().to_string())
}

/// What [`verify_dir`] found when every checkpoint holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Checkpoints checked.
    pub count: usize,
    /// The newest one's seq.
    pub newest_seq: i64,
    /// When it was signed.
    pub newest_time: String,
}

/// The first checkpoint that fails, as one line saying what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The checkpoint file (or the directory, when it holds none).
    pub file: String,
    /// The record concerned, when one is.
    pub seq: Option<i64>,
    /// What is wrong and how to mend it.
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Checks the chain against every checkpoint in `dir`, in seq order: the
/// signature is `key`'s, the record at its seq exists and has the signed hash,
/// and the chain reaches the newest checkpoint's seq. Run after
/// [`super::verify`] (which checks that the chain itself holds together).
pub fn verify_dir(
    conn: &mut DbConn,
    dir: &Path,
    key: &VerifyingKey,
) -> Result<Result<Verified, Failure>, CheckpointError> {
    let d = dir.display();
    let files = read_dir(dir)?;
    let fail = |file: &str, seq: Option<i64>, message: String| {
        Ok(Err(Failure {
            file: file.into(),
            seq,
            message,
        }))
    };
    if files.is_empty() {
        return fail(
            &d.to_string(),
            None,
            format!(
                "no checkpoint files in {d}: check the path (`herald serve` writes them to audit.checkpoint_dir; `herald audit checkpoint` writes one now)"
            ),
        );
    }
    let mut good: Vec<(String, Checkpoint)> = Vec::new();
    for (name, parsed) in files {
        let cp = match parsed {
            Ok(cp) => cp,
            Err(e) => {
                return fail(
                    &name,
                    None,
                    format!(
                        "checkpoint {name} in {d} is not a Herald checkpoint ({e}): compare it with its off-host copy"
                    ),
                );
            }
        };
        if cp.kid != key.kid() {
            return fail(
                &name,
                Some(cp.seq),
                format!(
                    "checkpoint {name} is signed by key {}, not {}: pass that key's public PEM with --public-key FILE",
                    cp.kid,
                    key.kid()
                ),
            );
        }
        if !key.verifies(&cp) {
            return fail(
                &name,
                Some(cp.seq),
                format!(
                    "checkpoint {name} (seq {}) has a signature that does not verify: forged or altered; compare it with its off-host copy and investigate",
                    cp.seq
                ),
            );
        }
        good.push((name, cp));
    }
    good.sort_by(|a, b| (a.1.seq, &a.0).cmp(&(b.1.seq, &b.0)));
    let (head_seq, _) = audit_store::head(conn)?;
    let mut after = 0i64;
    for (name, cp) in &good {
        if cp.seq == 0 {
            if cp.hash != super::GENESIS {
                return fail(
                    name,
                    Some(0),
                    format!(
                        "checkpoint {name} signs seq 0 with a hash other than the genesis hash: investigate"
                    ),
                );
            }
            continue;
        }
        match audit_store::record_hash(conn, cp.seq)? {
            None => {
                return fail(
                    name,
                    Some(cp.seq),
                    format!(
                        "audit chain truncated: checkpoint {name} (signed {}) vouches for seq {} but the chain ends at seq {head_seq}: records were removed; restore the log from a backup and investigate",
                        cp.time, cp.seq
                    ),
                );
            }
            Some((id, hash)) if hash != cp.hash => {
                return fail(
                    name,
                    Some(cp.seq),
                    format!(
                        "audit chain rewritten: record seq {} (AuditEvent/{id}) differs from checkpoint {name} (signed {}); a record in seq {}..={} was altered after it was signed; restore the log from a backup and investigate",
                        cp.seq,
                        cp.time,
                        after + 1,
                        cp.seq
                    ),
                );
            }
            Some(_) => after = cp.seq,
        }
    }
    let Some((name, newest)) = good.last() else {
        return fail(&d.to_string(), None, format!("no checkpoint files in {d}"));
    };
    if head_seq < newest.seq {
        return fail(
            name,
            Some(newest.seq),
            format!(
                "audit chain truncated: the head is at seq {head_seq} but checkpoint {name} vouches for seq {}: restore the log from a backup and investigate",
                newest.seq
            ),
        );
    }
    Ok(Ok(Verified {
        count: good.len(),
        newest_seq: newest.seq,
        newest_time: newest.time.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        let key = EcKey::generate(&p384().unwrap()).unwrap();
        let kid = kid_of(&key).unwrap();
        SigningKey { key, kid }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_signature_covers_every_field() {
        let k = key();
        let v = k.verifying_key().unwrap();
        let cp = k
            .sign(7, &"ab".repeat(32), at("2026-12-06T01:02:03Z"))
            .unwrap();
        assert!(v.verifies(&cp));
        assert_eq!(cp.time, "2026-12-06T01:02:03Z");
        assert_eq!(
            cp.file_name(),
            "checkpoint-00000000000000000007-20261206T010203Z.json"
        );
        let check = |edit: &dyn Fn(&mut Checkpoint)| {
            let mut c = cp.clone();
            edit(&mut c);
            v.verifies(&c)
        };
        assert!(!check(&|c| c.seq = 8));
        assert!(!check(&|c| c.hash = "cd".repeat(32)));
        assert!(!check(&|c| c.time = "2026-12-06T01:02:04Z".into()));
        assert!(!check(&|c| c.signature.truncate(10)));
        assert!(!check(&|c| c.alg = "ES256".into()));
        // Another key's signature, relabelled with this key's id.
        let other = key().sign(7, &cp.hash, at("2026-12-06T01:02:03Z")).unwrap();
        assert!(!check(&|c| c.signature.clone_from(&other.signature)));
    }

    #[test]
    fn the_key_id_is_stable_across_pem_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.pem");
        let (made, new) = SigningKey::load_or_create(&path).unwrap();
        assert!(new);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (again, new) = SigningKey::load_or_create(&path).unwrap();
        assert!(!new);
        assert_eq!(made.kid(), again.kid());
        let pub_path = dir.path().join("k.pub");
        std::fs::write(&pub_path, made.public_pem().unwrap()).unwrap();
        let v = VerifyingKey::read(&pub_path).unwrap();
        assert_eq!(v.kid(), made.kid());
        assert!(v.verifies(&again.sign(1, "x", at("2026-12-06T00:00:00Z")).unwrap()));
    }

    #[test]
    fn files_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let k = key();
        let cp = k.sign(3, "h", at("2026-12-06T00:00:00Z")).unwrap();
        let p = write_file(dir.path(), &cp).unwrap();
        let first = std::fs::read_to_string(&p).unwrap();
        let again = k.sign(3, "h", at("2026-12-06T00:00:00Z")).unwrap();
        assert_eq!(write_file(dir.path(), &again).unwrap(), p);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), first);
        let later = k.sign(2, "h", at("2026-12-06T01:00:00Z")).unwrap();
        write_file(dir.path(), &later).unwrap();
        let names: Vec<String> = read_dir(dir.path())
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(
            names,
            [
                "checkpoint-00000000000000000002-20261206T010000Z.json",
                "checkpoint-00000000000000000003-20261206T000000Z.json"
            ]
        );
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
