//! `herald demo --once` end to end, its logs free of PHI, its AuditEvents
//! valid FHIR R4 (checked by real validators from npm), and `herald audit`
//! on the result: verify, export, tamper detection.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

use super::support;

fn herald(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HERALD_DATA_DIR", dir.join("data"))
        .env("HERALD_LOG__LEVEL", "debug");
    c
}

fn fixture_phi() -> Vec<String> {
    let text =
        std::fs::read_to_string(support::repo_root().join("fixtures/fhir/demo/patients.json"))
            .unwrap();
    let bundle: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for e in bundle["entry"].as_array().unwrap() {
        let p = &e["resource"];
        for t in p["telecom"].as_array().into_iter().flatten() {
            let v = t["value"].as_str().unwrap().to_string();
            out.push(v.trim_start_matches("+1").to_string());
            out.push(v);
        }
        let n = &p["name"][0];
        let given: Vec<&str> = n["given"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        out.push(format!(
            "{} {}",
            given.join(" "),
            n["family"].as_str().unwrap()
        ));
        out.push(p["identifier"][0]["value"].as_str().unwrap().to_string());
        out.push(p["birthDate"].as_str().unwrap().to_string());
    }
    out
}

fn run_demo(dir: &Path) -> (String, String) {
    let out = herald(dir).args(["demo", "--once"]).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    (stdout, stderr)
}

#[test]
fn demo_once_sends_and_blocks_with_reasons_and_logs_no_phi() {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = run_demo(dir.path());
    assert!(
        stdout
            .lines()
            .filter(|l| l.trim_start().starts_with("SENT"))
            .count()
            >= 20,
        "{stdout}"
    );
    for reason in [
        "reason: no consent (opted out)",
        "reason: no consent",
        "reason: no consent for this address",
    ] {
        assert!(stdout.contains(reason), "{reason} missing:\n{stdout}");
    }
    assert!(stdout.contains("[es-US]") && stdout.contains("[en-US]"));
    assert!(
        stdout.contains("DEFERRED"),
        "a Hawaii patient at 07:00 local is deferred"
    );
    assert!(stdout.contains("Summary:"));
    for phi in fixture_phi() {
        assert!(!stderr.contains(&phi), "log carries PHI {phi:?}");
        assert!(!stdout.contains(&phi), "demo output carries PHI {phi:?}");
    }
    for term in ["metformin", "lisinopril", "Diabetes", "MRN-"] {
        assert!(
            !stdout.contains(term) && !stderr.contains(term),
            "{term} leaked"
        );
    }
    // A second run tells the same story (fresh demo database, fixed clock).
    let (again, _) = run_demo(dir.path());
    let summary = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Summary:"))
            .unwrap()
            .to_string()
    };
    assert_eq!(summary(&stdout), summary(&again));
}

/// Runs the FHIR R4 validator from npm over NDJSON resources (exit 0: all
/// valid; stdout has one verdict line per resource).
pub fn validate(ndjson: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = Command::new("node")
        .arg(support::npm_dir("tests/validator").join("validate.js"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ndjson.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn demo_audit_events_are_valid_fhir_r4_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    run_demo(dir.path());
    let db_url = format!(
        "sqlite://{}",
        dir.path().join("data/demo/herald.db").display()
    );
    let verify = herald(dir.path())
        .args(["audit", "verify"])
        .env("HERALD_DATABASE__URL", &db_url)
        .output()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let export = herald(dir.path())
        .args(["audit", "export", "--format", "ndjson"])
        .env("HERALD_DATABASE__URL", &db_url)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(0));
    let ndjson = String::from_utf8(export.stdout).unwrap();
    let events: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.len() > 300, "{} events", events.len());
    for kind in ["110106", "110113", "rest"] {
        assert!(
            events.iter().any(|e| e["type"]["code"] == kind),
            "no {kind} event"
        );
    }
    // Every one is valid FHIR R4, per the official schema and FHIR.js.
    let out = validate(&ndjson);
    let report = String::from_utf8_lossy(&out.stdout);
    let bad: Vec<&str> = report
        .lines()
        .filter(|l| l.contains("\"valid\":false"))
        .take(3)
        .collect();
    assert!(out.status.success(), "invalid AuditEvents: {bad:?}");
    // The validator does reject a broken one (the check can fail).
    let mut broken = events[0].clone();
    broken["action"] = Value::String("X".into());
    assert_eq!(validate(&format!("{broken}\n")).status.code(), Some(1));
    // CSV export has a header and a row per event: those above and the CSV
    // export's own record (an export is audited before it writes).
    let csv = herald(dir.path())
        .args(["audit", "export", "--format", "csv"])
        .env("HERALD_DATABASE__URL", &db_url)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(csv.stdout).unwrap().lines().count(),
        1 + events.len() + 1
    );

    // Rotating the key re-encrypts every sealed row of the demo under the new key.
    let rotate = herald(dir.path())
        .args(["keys", "rotate"])
        .env("HERALD_DATA_DIR", dir.path().join("data/demo"))
        .env("HERALD_DATABASE__URL", &db_url)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&rotate.stdout).to_string();
    assert_eq!(
        rotate.status.code(),
        Some(0),
        "{said} {}",
        String::from_utf8_lossy(&rotate.stderr)
    );
    assert!(said.contains("data key 2 is now active"), "{said}");
    {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut c = diesel::SqliteConnection::establish(
            dir.path().join("data/demo/herald.db").to_str().unwrap(),
        )
        .unwrap();
        for t in ["patients", "tracked_resources", "consents", "outbox"] {
            let old: N =
                diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {t} WHERE key_id = 1"))
                    .get_result(&mut c)
                    .unwrap();
            assert_eq!(old.n, 0, "{t} still has rows under key 1");
        }
    }
    let verify = herald(dir.path())
        .args(["audit", "verify"])
        .env("HERALD_DATABASE__URL", &db_url)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(0));

    // Tampering with the demo's log makes verify exit 1 naming the record.
    let db = dir.path().join("data/demo/herald.db");
    {
        use diesel::Connection as _;
        use diesel::connection::SimpleConnection as _;
        let mut c = diesel::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
        c.batch_execute("DROP TRIGGER audit_events_no_update; UPDATE audit_events SET outcome = '12' WHERE seq = 42;").unwrap();
    }
    let verify = herald(dir.path())
        .args(["audit", "verify"])
        .env("HERALD_DATABASE__URL", &db_url)
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stderr).contains("seq 42"));
}
