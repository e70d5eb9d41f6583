//! The command line as users and scripts call it: one-line errors, exit codes.

use std::process::Command;

fn herald(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HERALD_DATA_DIR", dir.join("data"));
    c
}

#[test]
fn check_reports_each_problem_on_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = herald(dir.path())
        .args(["check"])
        .env("HERALD_SERVER__BIND", "0.0.0.0:8080")
        .env("HERALD_EHR__PRESET", "allscripts")
        .env("HERALD_SMS__PROVIDER", "twilio")
        .env("HERALD_SMS__AUTH_TOKEN", "very-secret-token")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = err.lines().collect();
    for key in ["server.bind", "ehr.preset", "sms.account_sid", "sms.from"] {
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with(&format!("herald check: {key}:")))
                .count(),
            1,
            "{key}: {err}"
        );
    }
    assert!(!err.contains("very-secret-token"));
    let ok = herald(dir.path())
        .args(["check", "--print"])
        .env("HERALD_SMS__AUTH_TOKEN", "very-secret-token")
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let printed = String::from_utf8(ok.stdout).unwrap();
    assert!(
        printed.contains("***") && !printed.contains("very-secret-token"),
        "{printed}"
    );
}

#[test]
fn empty_secret_file_is_named_by_check() {
    // Security review F4: HERALD_SMS__AUTH_TOKEN_FILE pointing at an empty
    // file (a secret-mount race) gave an empty token and a signature check
    // that failed open; `herald check` must name the setting on one line.
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").unwrap();
    let out = herald(dir.path())
        .args(["check"])
        .env("HERALD_SMS__AUTH_TOKEN_FILE", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.lines()
            .filter(|l| l.starts_with("herald check: sms.auth_token:") && l.contains("empty"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn unknown_setting_is_one_line_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = herald(dir.path())
        .args(["check"])
        .env("HERALD_SERVER__PORTT", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("portt"), "{err}");
}

#[test]
fn serve_refuses_to_start_without_a_key_and_says_how_to_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = herald(dir.path())
        .args(["serve"])
        .env("HERALD_SERVER__BIND", "127.0.0.1:0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("herald keys init") && err.contains("HERALD_MASTER_KEY"),
        "{err}"
    );
    // keys init makes a key file; a second init does not overwrite it.
    let init = herald(dir.path()).args(["keys", "init"]).output().unwrap();
    assert_eq!(
        init.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let key = std::fs::read_to_string(dir.path().join("data/master.key")).unwrap();
    let again = herald(dir.path()).args(["keys", "init"]).output().unwrap();
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/master.key")).unwrap(),
        key
    );
    let rotate = herald(dir.path())
        .args(["keys", "rotate"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&rotate.stdout).contains("data key 2 is now active"));
    // A malformed HERALD_MASTER_KEY is refused with a hint.
    let bad = herald(dir.path())
        .args(["serve"])
        .env("HERALD_MASTER_KEY", "short")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("openssl rand -base64 32"));
}

#[test]
fn the_example_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let example = super::support::repo_root().join("herald.example.toml");
    let out = herald(dir.path())
        .arg("check")
        .arg("--config")
        .arg(&example)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn demo_keeps_serving_and_prints_the_urls() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let mut child = herald(dir.path())
        .args(["demo"])
        .env("HERALD_SERVER__BIND", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut token = String::new();
    let addr = loop {
        let line = lines.next().expect("demo exited before listening").unwrap();
        if let Some(t) = line.strip_prefix("Demo auditor token (1 day): ") {
            token = t.trim().to_string();
        }
        if let Some(rest) = line.strip_prefix("Herald is listening on http://") {
            break rest.trim().to_string();
        }
    };
    assert!(!token.is_empty(), "the demo prints an auditor token");
    let get = |path: &str| {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).unwrap();
        buf
    };
    assert!(get("/healthz").starts_with("HTTP/1.1 200"));
    let audit = get("/fhir/AuditEvent?patient=Patient/pat-001&_count=5");
    assert!(audit.starts_with("HTTP/1.1 200"), "{audit}");
    assert!(audit.contains("\"searchset\"") && audit.contains("Patient/pat-001"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn reply_classify_reads_each_line_like_the_webhook() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let mut child = herald(dir.path())
        .args(["reply", "classify", "--context", "reminder"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(
            "  Stop. \nOPT OUT\nplease stop texting me\nno más mensajes\nC\nR\nHELP\n{\"text\":\"YES\",\"context\":\"after_opt_out\"}\n{\"text\":\"cancelar cita\",\"lang\":\"es-US\"}\nsee you then\n{oops\n"
                .as_bytes(),
        )
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let intents: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["intent"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        intents,
        [
            "stop",
            "stop",
            "stop",
            "stop",
            "confirm",
            "reschedule",
            "help",
            "start",
            "cancel_appointment",
            "other",
            "other"
        ]
    );
    // A bad context is a usage error (exit 2), one line.
    let bad = herald(dir.path())
        .args(["reply", "classify", "--context", "later"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn link_prints_a_preference_page_link_that_opens_for_that_patient() {
    let dir = tempfile::tempdir().unwrap();
    let demo = herald(dir.path())
        .args(["demo", "--once"])
        .output()
        .unwrap();
    assert_eq!(demo.status.code(), Some(0));
    // The demo keeps its database and key in <data>/demo.
    let link = |patient: &str| {
        herald(dir.path())
            .args(["link", patient, "--days", "2"])
            .env("HERALD_DATA_DIR", dir.path().join("data/demo"))
            .env("HERALD_SERVER__PUBLIC_URL", "https://herald.example.org")
            .output()
            .unwrap()
    };
    let ok = link("pat-001");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let url = String::from_utf8(ok.stdout).unwrap();
    assert!(url.starts_with("https://herald.example.org/p/"), "{url}");
    assert!(
        !url.contains("pat-001"),
        "the link hides the patient id: {url}"
    );
    let missing = link("no-such-patient");
    assert_eq!(missing.status.code(), Some(1));
    assert_eq!(String::from_utf8_lossy(&missing.stderr).lines().count(), 1);
    // Issue 11 F8f: at most 30 days, a usage error in one line otherwise.
    for days in ["0", "31", "365"] {
        let out = herald(dir.path())
            .args(["link", "pat-001", "--days", days])
            .env("HERALD_DATA_DIR", dir.path().join("data/demo"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "--days {days}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("1 to 30"), "{err}");
        assert!(out.stdout.is_empty());
    }
    // Issuing is audited: who, for whom, until when; never the token.
    let by = herald(dir.path())
        .args(["link", "pat-001", "--days", "30", "--by", "frontdesk-4"])
        .env("HERALD_DATA_DIR", dir.path().join("data/demo"))
        .output()
        .unwrap();
    assert_eq!(by.status.code(), Some(0));
    let token = String::from_utf8(by.stdout).unwrap();
    let token = token.trim().rsplit('/').next().unwrap().to_string();
    let export = herald(dir.path())
        .args(["audit", "export", "--format", "ndjson"])
        .env("HERALD_DATA_DIR", dir.path().join("data/demo"))
        .output()
        .unwrap();
    assert_eq!(
        export.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let log = String::from_utf8(export.stdout).unwrap();
    let issued: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e.to_string().contains("urn:herald:preference-link"))
        .collect();
    assert_eq!(issued.len(), 2, "both links issued are audited");
    let last = issued.last().unwrap();
    assert_eq!(
        last["agent"][0]["who"]["identifier"]["value"],
        "frontdesk-4"
    );
    assert_eq!(last["entity"][0]["what"]["reference"], "Patient/pat-001");
    assert!(!log.contains(&token), "never the token");
}

#[test]
fn inbox_lists_open_texts_and_marks_them_done_audited() {
    let db = super::support::sqlite();
    let (ring, master) = super::support::ready(&db);
    let now = chrono::Utc::now();
    herald::db::inbound::insert(
        &mut db.conn(),
        &ring,
        &herald::db::inbound::NewInbound {
            dedupe_key: "sid:SMinbox1",
            provider: "twilio",
            message_ref: "SMinbox1",
            patient_id: Some("p-1"),
            reading: "other",
            body: "can I bring my son?",
            received_at: now,
            due_by: Some(now + chrono::Duration::hours(24)),
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        herald(dir.path())
            .args(args)
            .env("HERALD_DATABASE__URL", db.url.expose())
            .env("HERALD_MASTER_KEY", master.to_base64())
            .output()
            .unwrap()
    };
    let out = run(&["inbox", "list", "--as", "staff-7"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["key"], "sid:SMinbox1");
    assert_eq!(line["text"], "can I bring my son?");
    assert_eq!(line["overdue"], false);
    assert_eq!(
        run(&["inbox", "done", "sid:SMinbox1", "--as", "staff-7"])
            .status
            .code(),
        Some(0)
    );
    assert!(run(&["inbox", "list", "--as", "staff-7"]).stdout.is_empty());
    assert_eq!(
        run(&["inbox", "done", "sid:SMinbox1", "--as", "staff-7"])
            .status
            .code(),
        Some(1)
    );
    let dump = db.dump();
    assert!(
        dump.contains("staff-7"),
        "reading the inbox is audited with the user"
    );
    assert!(
        !dump.contains("can I bring my son?"),
        "the text is sealed at rest"
    );
}

#[test]
fn audit_report_verify_and_export_are_audited() {
    let db = super::support::sqlite();
    let mut c = db.conn();
    herald::db::migrate(&mut c).unwrap();
    for i in 0..9 {
        herald::audit::append_now(&mut c, &[super::audit_chain::record(i)]).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        herald(dir.path())
            .args(args)
            .env("HERALD_DATABASE__URL", db.url.expose())
            .output()
            .unwrap()
    };
    // record(i) has patient p{i % 3}: p1 has i = 1, 4, 7.
    let out = run(&["audit", "report", "--patient", "p1", "--as", "auditor-1"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // Three disclosures and the report's own record (written before it reads).
    assert_eq!(lines.len(), 4, "{text}");
    for i in [1, 4, 7] {
        assert!(
            lines.iter().any(|l| l.contains(&format!(
                "herald  R disclose  Appointment/a{i} via sms  patient=Patient/p1  purpose=TREAT  outcome=0  AuditEvent/"
            ))),
            "{text}"
        );
    }
    assert!(
        lines.iter().any(|l| l.contains(
            "user:auditor-1  E search-type  query AuditEvent?_report=breach&patient=Patient/p1  patient=Patient/p1"
        )),
        "{text}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("4 events naming 1 patients"));
    // By user, as NDJSON: what auditor-1 did (the first report), read by someone else.
    let ndjson = |args: &[&str]| -> Vec<serde_json::Value> {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let lines = ndjson(&[
        "audit",
        "report",
        "--user",
        "auditor-1",
        "--format",
        "ndjson",
        "--as",
        "auditor-2",
    ]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["who"], "user:auditor-1");
    assert_eq!(lines[0]["patient"], "Patient/p1");
    assert_eq!(lines[0]["what"], "search-type");
    // A window that holds nothing.
    let lines = ndjson(&[
        "audit",
        "report",
        "--user",
        "auditor-1",
        "--since",
        "2100-01-01",
        "--format",
        "ndjson",
    ]);
    assert!(lines.is_empty());
    // Neither --patient nor --user: a usage error.
    assert_eq!(run(&["audit", "report"]).status.code(), Some(2));
    // Export is audited (the OS user, when --as is not given) and verify is recorded.
    let before = herald::db::audit_store::head(&mut c).unwrap().0;
    assert_eq!(
        run(&["audit", "export", "--format", "csv"]).status.code(),
        Some(0)
    );
    let after = herald::db::audit_store::scan(&mut c, before, 10).unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].agent_who.as_deref(), Some("user:os:unknown"));
    assert!(
        herald::db::audit_store::latest_verification(&mut c)
            .unwrap()
            .is_none()
    );
    let out = run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(0));
    let v = herald::db::audit_store::latest_verification(&mut c)
        .unwrap()
        .unwrap();
    assert_eq!((v.through_seq, v.broken_seq), (before + 1, None));
}
