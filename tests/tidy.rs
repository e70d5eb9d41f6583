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

/// Lines outside `#[cfg(test)]` items (tests may do as they like), from the
/// whole file: an item under `#[cfg(test)]` (a `mod tests { … }`, a test-only
/// const or fn) is skipped to its end, and checking resumes after it.
pub fn code_lines(src: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut skipping = false;
    let mut depth: i64 = 0;
    let mut opened = false;
    for (i, l) in src.lines().enumerate() {
        let t = l.trim_start();
        if !skipping && t.starts_with("#[cfg(test)]") {
            skipping = true;
            depth = 0;
            opened = false;
            continue;
        }
        if skipping {
            if t.starts_with("#[") || t.starts_with("//") || t.is_empty() {
                continue;
            }
            let mut ended = false;
            for c in strip_literals(l).chars() {
                match c {
                    '{' | '(' | '[' => {
                        depth += 1;
                        opened |= c == '{';
                    }
                    '}' | ')' | ']' => {
                        depth -= 1;
                        if c == '}' && depth == 0 && opened {
                            ended = true;
                        }
                    }
                    ';' if depth == 0 => ended = true,
                    _ => {}
                }
            }
            if ended {
                skipping = false;
            }
            continue;
        }
        if !t.starts_with("//") {
            out.push((i + 1, l));
        }
    }
    out
}

/// A line with its string and char literals blanked, so braces inside them
/// do not count.
fn strip_literals(l: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut chars = l.chars().peekable();
    while let Some(c) = chars.next() {
        if in_str {
            if c == '\\' {
                chars.next();
            } else if c == '"' {
                in_str = false;
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '\'' => {
                // A char literal ('{', '\\n'), not a lifetime ('a).
                let rest: String = chars.clone().take(3).collect();
                if rest.chars().nth(1) == Some('\'') {
                    chars.next();
                    chars.next();
                } else if rest.starts_with('\\') {
                    for _ in 0..3 {
                        chars.next();
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => break,
            _ => out.push(c),
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
        // Routes exist only as rows of the access table (web::access).
        if (rel.starts_with("src/web/") || rel == "src/main.rs") && rel != "src/web/access.rs" {
            for (n, line) in code_lines(src) {
                for word in [".route(", "web::resource(", "web::scope(", ".service("] {
                    if line.contains(word) {
                        bad.push(format!(
                            "{rel}:{n}: routes are registered only from the access table (src/web/access.rs): {}",
                            line.trim()
                        ));
                    }
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

#[test]
fn tidy_reads_whole_files_and_refuses_routes_outside_the_access_table() {
    // Code after a test-only item is checked (it used to stop at the first
    // `#[cfg(test)]`).
    let src = "#[cfg(test)]\nconst T: &str = \"{\";\nfn f() {}\n#[cfg(test)]\nmod tests {\n    fn g() { let _ = '}'; }\n}\nfn h() {}\n";
    let lines: Vec<usize> = code_lines(src).into_iter().map(|(n, _)| n).collect();
    assert_eq!(lines, vec![3, 8], "{src}");
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_dir(&super::support::repo_root().join("src"), &src);
    let rules = src.join("guard/rules.rs");
    let text = std::fs::read_to_string(&rules).unwrap();
    std::fs::write(
        &rules,
        format!("{text}\nfn late() {{ let _ = std::env::args(); }}\n"),
    )
    .unwrap();
    let web = src.join("web/mod.rs");
    let text = std::fs::read_to_string(&web).unwrap();
    std::fs::write(
        &web,
        format!("{text}\nfn sneak(c: &mut web::ServiceConfig) {{ c.route(\"/x\", web::get().to(health::healthz)); }}\n"),
    )
    .unwrap();
    let v = violations(tmp.path());
    assert!(
        v.iter()
            .any(|l| l.starts_with("src/guard/rules.rs:") && l.contains("std::env")),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|l| l.starts_with("src/web/mod.rs:") && l.contains("access table")),
        "{v:?}"
    );
}
