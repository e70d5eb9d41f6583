//! Signed checkpoints anchor the audit chain outside the database (security
//! review F8h; reference/fhir.md §1.4 A11, tamper-evident audit): a database
//! owner who drops the append-only triggers, rewrites the tail, recomputes
//! every hash and moves `audit_head` passes plain `herald audit verify`, but
//! not `herald audit verify --checkpoints DIR`.

use std::path::{Path, PathBuf};
use std::process::Command;

use herald::audit::checkpoint::{self, CheckpointError, SigningKey, VerifyingKey};
use herald::audit::{self, Verdict};

use super::audit_chain::record;
use super::support::{self, TestDb};

fn herald(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HERALD_DATA_DIR", dir.join("data"));
    c
}

/// A migrated log of `n` records.
fn append(db: &TestDb, from: u32, to: u32) {
    let mut c = db.conn();
    herald::db::migrate(&mut c).unwrap();
    for i in from..=to {
        audit::append_now(&mut c, &[record(i)]).unwrap();
    }
}

struct Anchor {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    key: SigningKey,
    pub_pem: PathBuf,
}

fn anchor() -> Anchor {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkpoints");
    let (key, made) = SigningKey::load_or_create(&tmp.path().join("key.pem")).unwrap();
    assert!(made);
    let pub_pem = tmp.path().join("checkpoint.pub");
    std::fs::write(&pub_pem, key.public_pem().unwrap()).unwrap();
    Anchor {
        _tmp: tmp,
        dir,
        key,
        pub_pem,
    }
}

impl Anchor {
    fn take(&self, db: &TestDb) -> checkpoint::Checkpoint {
        checkpoint::take(&mut db.conn(), &self.key, &self.dir, support::now())
            .unwrap()
            .checkpoint
    }

    fn verify(&self, db: &TestDb) -> Result<checkpoint::Verified, checkpoint::Failure> {
        let v = self.key.verifying_key().unwrap();
        checkpoint::verify_dir(&mut db.conn(), &self.dir, &v).unwrap()
    }
}

/// What a database owner can do: drop the append-only triggers.
fn drop_triggers(db: &TestDb) {
    if db.backend == "sqlite" {
        db.raw("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;");
    } else {
        db.raw(
            "DROP TRIGGER audit_events_no_update_delete ON audit_events; \
             DROP TRIGGER audit_events_no_truncate ON audit_events;",
        );
    }
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Rewrites record `seq` (outcome success → serious failure, JSON and column
/// alike), recomputes the hashes from there to the head, and moves
/// `audit_head` and the recorded verifications to match: a forgery that plain
/// verification cannot see.
fn rewrite_tail(db: &TestDb, seq: i64) {
    drop_triggers(db);
    let mut rows = herald::db::audit_store::scan(&mut db.conn(), seq - 1, 1000).unwrap();
    let mut prev = herald::db::audit_store::record_hash(&mut db.conn(), seq - 1)
        .unwrap()
        .map(|(_, h)| h)
        .unwrap_or_else(|| audit::GENESIS.to_string());
    let mut sql = String::new();
    for (i, r) in rows.iter_mut().enumerate() {
        if i == 0 {
            assert!(r.resource.contains("\"outcome\":\"0\""));
            r.resource = r.resource.replace("\"outcome\":\"0\"", "\"outcome\":\"8\"");
            r.outcome = "8".into();
        }
        r.prev_hash.clone_from(&prev);
        r.hash = audit::chain_hash(&prev, r.seq, &r.id, &r.resource);
        prev.clone_from(&r.hash);
        sql.push_str(&format!(
            "UPDATE audit_events SET resource = {}, outcome = {}, prev_hash = {}, hash = {} WHERE seq = {};\n",
            q(&r.resource),
            q(&r.outcome),
            q(&r.prev_hash),
            q(&r.hash),
            r.seq
        ));
    }
    let last = rows.last().unwrap();
    sql.push_str(&format!(
        "UPDATE audit_head SET hash = {}, prev_hash = {} WHERE id = 1;\n\
         UPDATE audit_verifications SET through_hash = {} WHERE through_seq = {};",
        q(&last.hash),
        q(&last.prev_hash),
        q(&last.hash),
        last.seq
    ));
    db.raw(&sql);
}

/// Removes the records after `keep` and moves the head back to it.
fn truncate_to(db: &TestDb, keep: i64) {
    drop_triggers(db);
    let (_, hash) = herald::db::audit_store::record_hash(&mut db.conn(), keep)
        .unwrap()
        .unwrap();
    db.raw(&format!(
        "DELETE FROM audit_events WHERE seq > {keep}; \
         UPDATE audit_head SET seq = {keep}, hash = {} WHERE id = 1; \
         DELETE FROM audit_verifications WHERE through_seq > {keep};",
        q(&hash)
    ));
}

fn run(db: &TestDb, a: &Anchor, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    herald(dir.path())
        .args(args)
        .env("HERALD_DATABASE__URL", db.url.expose())
        .env("HERALD_AUDIT__CHECKPOINT_DIR", &a.dir)
        .output()
        .unwrap()
}

fn verify_cli(db: &TestDb, a: &Anchor) -> std::process::Output {
    run(
        db,
        a,
        &[
            "audit",
            "verify",
            "--checkpoints",
            a.dir.to_str().unwrap(),
            "--public-key",
            a.pub_pem.to_str().unwrap(),
        ],
    )
}

#[test]
fn an_intact_chain_verifies_against_its_checkpoints() {
    for db in support::backends() {
        let a = anchor();
        append(&db, 1, 5);
        let first = a.take(&db);
        assert_eq!(first.seq, 5, "{}", db.backend);
        assert_eq!(
            herald::db::audit_store::record_hash(&mut db.conn(), 5)
                .unwrap()
                .unwrap()
                .1,
            first.hash
        );
        append(&db, 6, 10);
        assert_eq!(a.take(&db).seq, 10);
        let v = a.verify(&db).unwrap();
        assert_eq!((v.count, v.newest_seq), (2, 10), "{}", db.backend);
        // As a process: exit 0, and the CLI names what it checked.
        let out = verify_cli(&db, &a);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            db.backend,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains("2 checkpoints verified, the newest at seq 10"),
            "{text}"
        );
    }
}

#[test]
fn a_rewritten_tail_with_recomputed_hashes_is_caught_by_the_checkpoint() {
    for db in support::backends() {
        let a = anchor();
        append(&db, 1, 5);
        a.take(&db);
        append(&db, 6, 10);
        a.take(&db);
        audit::verify_and_record(&mut db.conn(), &support::clock()).unwrap();
        rewrite_tail(&db, 8);
        // Plain verification is fooled: the chain holds together.
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { count: 10 },
            "{}",
            db.backend
        );
        let plain = run(&db, &a, &["audit", "verify"]);
        assert_eq!(plain.status.code(), Some(0), "{}", db.backend);
        // The checkpoint at seq 5 still holds; the one at seq 10 does not.
        let f = a.verify(&db).unwrap_err();
        assert_eq!(f.seq, Some(10), "{}: {f}", db.backend);
        assert!(
            f.file.starts_with("checkpoint-00000000000000000010-"),
            "{f:?}"
        );
        assert!(
            f.message.contains("rewritten") && f.message.contains("6..=10"),
            "{f}"
        );
        // As a process: exit 1, one line naming the record and the checkpoint.
        let out = verify_cli(&db, &a);
        assert_eq!(out.status.code(), Some(1), "{}", db.backend);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        let id = herald::db::audit_store::record_hash(&mut db.conn(), 10)
            .unwrap()
            .unwrap()
            .0;
        assert!(
            err.starts_with("herald: audit chain rewritten: record seq 10")
                && err.contains(&format!("AuditEvent/{id}"))
                && err.contains(&f.file)
                && err.contains("restore"),
            "{err}"
        );
        // And Herald refuses to sign the forged head.
        let refused = checkpoint::take(&mut db.conn(), &a.key, &a.dir, support::now());
        assert!(
            matches!(refused, Err(CheckpointError::NotExtending(ref m)) if m.contains("seq 10")),
            "{}: {refused:?}",
            db.backend
        );
    }
}

#[test]
fn a_rewrite_at_the_checkpointed_record_itself_is_caught() {
    for db in support::backends() {
        let a = anchor();
        append(&db, 1, 4);
        a.take(&db);
        rewrite_tail(&db, 4);
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { count: 4 }
        );
        let f = a.verify(&db).unwrap_err();
        assert_eq!(f.seq, Some(4), "{}: {f}", db.backend);
        assert!(f.message.contains("1..=4"), "{f}");
    }
}

#[test]
fn a_truncated_chain_is_caught() {
    for db in support::backends() {
        let a = anchor();
        append(&db, 1, 10);
        a.take(&db);
        truncate_to(&db, 7);
        assert_eq!(
            audit::verify(&mut db.conn()).unwrap(),
            Verdict::Intact { count: 7 },
            "{}",
            db.backend
        );
        let f = a.verify(&db).unwrap_err();
        assert_eq!(f.seq, Some(10), "{}: {f}", db.backend);
        assert!(
            f.message.starts_with("audit chain truncated")
                && f.message.contains("chain ends at seq 7"),
            "{f}"
        );
        let out = verify_cli(&db, &a);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    }
}

#[test]
fn a_tampered_or_forged_checkpoint_is_reported() {
    let db = support::sqlite();
    let a = anchor();
    append(&db, 1, 3);
    let cp = a.take(&db);
    a.verify(&db).unwrap();
    let path = a.dir.join(cp.file_name());
    let original = std::fs::read_to_string(&path).unwrap();
    // Someone points the checkpoint at their rewritten head.
    let edited = original.replace(&cp.hash, &"0".repeat(64));
    assert_ne!(edited, original);
    std::fs::write(&path, &edited).unwrap();
    let f = a.verify(&db).unwrap_err();
    assert_eq!(f.file, cp.file_name());
    assert!(f.message.contains("does not verify"), "{f}");
    let out = verify_cli(&db, &a);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&cp.file_name()) && err.contains("forged"),
        "{err}"
    );
    std::fs::write(&path, &original).unwrap();
    a.verify(&db).unwrap();
    // A checkpoint made with another key under this key's id.
    let other = anchor();
    let mut forged = other.key.sign(3, &cp.hash, support::now()).unwrap();
    forged.kid = a.key.kid().to_string();
    forged.time = "2026-12-01T18:00:00Z".into();
    checkpoint::write_file(&a.dir, &forged).unwrap();
    let f = a.verify(&db).unwrap_err();
    assert_eq!(f.file, forged.file_name());
    // A checkpoint signed by another key entirely: say which key to pass.
    let tmp = tempfile::tempdir().unwrap();
    let alien = other.key.sign(3, &cp.hash, support::now()).unwrap();
    checkpoint::write_file(tmp.path(), &alien).unwrap();
    let v = a.key.verifying_key().unwrap();
    let f = checkpoint::verify_dir(&mut db.conn(), tmp.path(), &v)
        .unwrap()
        .unwrap_err();
    assert!(
        f.message.contains(other.key.kid()) && f.message.contains("--public-key"),
        "{f}"
    );
    // The other key's public PEM verifies it.
    let ok = VerifyingKey::read(&other.pub_pem).unwrap();
    checkpoint::verify_dir(&mut db.conn(), tmp.path(), &ok)
        .unwrap()
        .unwrap();
    // An empty directory is a failure, not a pass.
    let empty = tempfile::tempdir().unwrap();
    let f = checkpoint::verify_dir(&mut db.conn(), empty.path(), &v)
        .unwrap()
        .unwrap_err();
    assert!(f.message.starts_with("no checkpoint files"), "{f}");
}

#[test]
fn the_cli_writes_checkpoints_with_a_key_it_makes_and_prints() {
    let db = support::sqlite();
    append(&db, 1, 3);
    let dir = tempfile::tempdir().unwrap();
    let cps = dir.path().join("anchor");
    let cli = |args: &[&str], extra: &[(&str, &str)]| {
        let mut c = herald(dir.path());
        c.args(args)
            .env("HERALD_DATABASE__URL", db.url.expose())
            .env("HERALD_AUDIT__CHECKPOINT_DIR", &cps);
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = cli(&["audit", "checkpoint"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("made the checkpoint signing key"), "{text}");
    assert!(text.contains("checkpoint of seq 3"), "{text}");
    // The key lives in the data dir, owner-only, and never in the database.
    let key_file = dir.path().join("data/audit-checkpoint.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = std::fs::read_to_string(&key_file).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!db.dump().contains(&body[..40]));
    // The public key prints as PEM; verification with it or the data dir's key passes.
    let public = cli(&["audit", "checkpoint", "--public-key"], &[]);
    let public = String::from_utf8(public.stdout).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
    let pub_file = dir.path().join("pub.pem");
    std::fs::write(&pub_file, &public).unwrap();
    let cps_s = cps.to_str().unwrap();
    assert_eq!(
        cli(&["audit", "verify", "--checkpoints", cps_s], &[])
            .status
            .code(),
        Some(0)
    );
    let with_pub = cli(
        &[
            "audit",
            "verify",
            "--checkpoints",
            cps_s,
            "--public-key",
            pub_file.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(with_pub.status.code(), Some(0));
    // Without the key and without --public-key: one line saying what to pass.
    let elsewhere = tempfile::tempdir().unwrap();
    let out = herald(elsewhere.path())
        .args(["audit", "verify", "--checkpoints", cps_s])
        .env("HERALD_DATABASE__URL", db.url.expose())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--public-key FILE"), "{err}");
    // A checkpoint webhook must be https (or loopback http).
    let check = cli(
        &["check"],
        &[(
            "HERALD_AUDIT__CHECKPOINT_WEBHOOK",
            "http://example.org/hook",
        )],
    );
    assert_eq!(check.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&check.stderr)
            .contains("herald check: audit.checkpoint_webhook: must be an https:// URL")
    );
}

/// A one-shot HTTP listener: answers `status` to one request and returns its body.
fn listener(status: u16) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/herald", l.local_addr().unwrap());
    let t = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut len = 0usize;
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let lower = line.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
        let mut s = s;
        write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, t)
}

#[test]
fn each_checkpoint_is_also_posted_to_the_webhook() {
    let db = support::sqlite();
    append(&db, 1, 2);
    let dir = tempfile::tempdir().unwrap();
    let cps = dir.path().join("anchor");
    let cli = |url: &str| {
        herald(dir.path())
            .args(["audit", "checkpoint"])
            .env("HERALD_DATABASE__URL", db.url.expose())
            .env("HERALD_AUDIT__CHECKPOINT_DIR", &cps)
            .env("HERALD_AUDIT__CHECKPOINT_WEBHOOK", url)
            .output()
            .unwrap()
    };
    let (url, got) = listener(200);
    let out = cli(&url);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let posted: checkpoint::Checkpoint = serde_json::from_str(&got.join().unwrap()).unwrap();
    let files = checkpoint::read_dir(&cps).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1.as_ref().unwrap(), &posted);
    assert_eq!(posted.seq, 2);
    // A refusing webhook: the file is still written, the command says so (exit 1).
    append(&db, 3, 3);
    let (url, got) = listener(503);
    let out = cli(&url);
    got.join().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("file was written") && !err.contains(&url),
        "{err}"
    );
    assert_eq!(checkpoint::read_dir(&cps).unwrap().len(), 2);
}

#[test]
fn serve_signs_the_head_at_start_and_at_sigterm() {
    use std::io::{BufRead as _, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let cps = dir.path().join("anchor");
    let init = herald(dir.path()).args(["keys", "init"]).output().unwrap();
    assert_eq!(init.status.code(), Some(0));
    let mut child = herald(dir.path())
        .args(["serve"])
        .env("HERALD_SERVER__BIND", "127.0.0.1:0")
        .env("HERALD_AUDIT__CHECKPOINT_DIR", &cps)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        let line = lines
            .next()
            .expect("serve exited before listening")
            .unwrap();
        if line.starts_with("Herald is listening on") {
            break;
        }
    }
    let files = |n: usize| {
        for _ in 0..300 {
            let found = checkpoint::read_dir(&cps).map(|v| v.len()).unwrap_or(0);
            if found >= n {
                return checkpoint::read_dir(&cps).unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("no checkpoint {n} from herald serve");
    };
    let at_start = files(1);
    // Records appended while it runs are covered by the shutdown checkpoint.
    let url = format!("sqlite://{}", dir.path().join("data/herald.db").display());
    let pool = herald::db::pool(
        &herald::config::DbUrl::new(url),
        1,
        std::time::Duration::from_secs(10),
    )
    .unwrap();
    for i in 1..=3 {
        audit::append_now(&mut pool.get().unwrap(), &[record(i)]).unwrap();
    }
    let head = herald::db::audit_store::head(&mut pool.get().unwrap()).unwrap();
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean shutdown");
    let all = checkpoint::read_dir(&cps).unwrap();
    assert_eq!(all.len(), at_start.len() + 1, "{all:?}");
    let last = all.last().unwrap().1.as_ref().unwrap();
    assert_eq!((last.seq, last.hash.as_str()), (head.0, head.1.as_str()));
    let verify = herald(dir.path())
        .args(["audit", "verify", "--checkpoints", cps.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
