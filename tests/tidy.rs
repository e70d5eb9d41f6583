//! Architecture invariants (ARCHITECTURE.md), checked on the source text.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<(String, String)>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((
                p.display().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            ));
        }
    }
}

/// Lines outside `#[cfg(test)] mod tests` blocks (tests may do as they like).
fn code_lines(src: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    for (i, l) in src.lines().enumerate() {
        if l.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        if !l.trim_start().starts_with("//") {
            out.push((i + 1, l));
        }
    }
    out
}

/// Which files under src/ mention a forbidden word, outside their allowed home.
pub fn violations(root: &Path) -> Vec<String> {
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "actix",
            &["src/web/", "src/main.rs"],
            "only web/ (and the CLI that starts it) knows actix",
        ),
        ("diesel", &["src/db/"], "only db/ knows diesel"),
    ];
    let mut bad = Vec::new();
    for (path, src) in &files {
        // A `tests.rs` file is a `#[cfg(test)] mod tests;` (test code may read
        // fixtures and parse JSON); everything else is product code.
        if path.ends_with("/tests.rs") {
            continue;
        }
        let rel = path
            .split("/src/")
            .nth(1)
            .map(|r| format!("src/{r}"))
            .unwrap_or_else(|| path.clone());
        for (word, homes, why) in rules {
            if homes.iter().any(|h| rel.starts_with(h)) {
                continue;
            }
            for (n, line) in code_lines(src) {
                if line.contains(&format!("{word}::"))
                    || line.contains(&format!("{word}_")) && line.contains("use ")
                {
                    bad.push(format!("{rel}:{n}: {why}: {}", line.trim()));
                }
            }
        }
        // Pure modules: the domain core and the compliance guard.
        if rel.starts_with("src/domain/") || rel.starts_with("src/guard/") {
            for (n, line) in code_lines(src) {
                for forbidden in [
                    "actix",
                    "diesel",
                    "reqwest",
                    "std::env",
                    "std::fs",
                    "std::net",
                    "tokio",
                    "Utc::now",
                    "SystemTime",
                    "Instant::now",
                    "Serialize",
                    "serde_json",
                    "println!",
                ] {
                    if line.contains(forbidden) {
                        bad.push(format!(
                            "{rel}:{n}: domain/ does no IO and reads no clock: {}",
                            line.trim()
                        ));
                    }
                }
            }
        }
    }
    bad
}

#[test]
fn architecture_invariants_hold() {
    let v = violations(&super::support::repo_root());
    assert!(
        v.is_empty(),
        "architecture invariants broken:\n{}",
        v.join("\n")
    );
}

/// Handlers in the audit-log modules that do not call `authorize_auditor`
/// before anything else (the one place the auditor role is checked).
pub fn unguarded_audit_handlers(root: &Path) -> Vec<String> {
    // Public handlers that read no audit data.
    const OPEN: [&str; 2] = ["metadata", "stylesheet"];
    let mut bad = Vec::new();
    for file in ["src/web/audit_api.rs", "src/web/audit_page.rs"] {
        let src = std::fs::read_to_string(root.join(file)).unwrap();
        for chunk in src.split("pub async fn ").skip(1) {
            let name = chunk.split('(').next().unwrap_or("").trim();
            if OPEN.contains(&name) {
                continue;
            }
            // The body, up to its first statement's end.
            let body = chunk.split_once("{").map(|(_, b)| b).unwrap_or("");
            let first = body.split(';').next().unwrap_or("");
            if !first.contains("authorize_auditor(") {
                bad.push(format!(
                    "{file}: {name} does not start with authorize_auditor"
                ));
            }
        }
    }
    bad
}

#[test]
fn every_audit_log_handler_checks_the_auditor_first() {
    let root = super::support::repo_root();
    assert_eq!(unguarded_audit_handlers(&root), Vec::<String>::new());
    // And the check notices a handler that skips it.
    let tmp = tempfile::tempdir().unwrap();
    copy_dir(&root.join("src"), &tmp.path().join("src"));
    let page = tmp.path().join("src/web/audit_page.rs");
    let text = std::fs::read_to_string(&page).unwrap();
    std::fs::write(
        &page,
        format!(
            "{text}\npub async fn leak(req: HttpRequest) -> HttpResponse {{ let x = 1; todo!() }}\n"
        ),
    )
    .unwrap();
    assert_eq!(
        unguarded_audit_handlers(tmp.path()),
        vec!["src/web/audit_page.rs: leak does not start with authorize_auditor".to_string()]
    );
}

#[test]
fn tidy_fails_when_domain_imports_actix() {
    // Copy the tree, plant a violation, and expect tidy to name it.
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_dir(&super::support::repo_root().join("src"), &src);
    let plan = src.join("domain/plan.rs");
    let text = std::fs::read_to_string(&plan).unwrap();
    std::fs::write(&plan, format!("use actix_web::HttpResponse;\n{text}")).unwrap();
    let v = violations(tmp.path());
    assert!(
        v.iter().any(|l| l.starts_with("src/domain/plan.rs:1:")),
        "{v:?}"
    );
    let clock = src.join("domain/policy.rs");
    let text = std::fs::read_to_string(&clock).unwrap();
    std::fs::write(
        &clock,
        format!("fn f() {{ let _ = chrono::Utc::now(); }}\n{text}"),
    )
    .unwrap();
    assert!(
        violations(tmp.path())
            .iter()
            .any(|l| l.starts_with("src/domain/policy.rs:1:"))
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
