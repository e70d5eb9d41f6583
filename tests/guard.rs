//! The compliance guard against its labelled corpus (fixtures/guard/corpus.jsonl), and the
//! `herald guard` JSON-lines contract.

use herald::guard::{Guard, Kind, ScanContext};
use std::io::Write as _;
use std::process::{Command, Stdio};

/// Text-level precision on the held-out split must stay at or above this (benches/README.md).
const HELDOUT_PRECISION: f64 = 0.98;

struct Rec {
    id: String,
    lang: String,
    text: String,
    phi: bool,
    split: String,
    allowed: Vec<String>,
    spans: Vec<(Kind, usize, usize)>,
}

fn corpus() -> Vec<Rec> {
    let path = super::support::repo_root().join("fixtures/guard/corpus.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            Rec {
                id: s("id"),
                lang: s("lang"),
                text: s("text"),
                phi: v["phi"].as_bool().unwrap(),
                split: s("split"),
                allowed: v["allowed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
                spans: v["spans"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|sp| {
                        (
                            Kind::parse(sp["kind"].as_str().unwrap()).unwrap(),
                            sp["start"].as_u64().unwrap() as usize,
                            sp["end"].as_u64().unwrap() as usize,
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn domains(allowed: &[&str]) -> Vec<String> {
    allowed
        .iter()
        .filter_map(|a| a.strip_prefix("https://"))
        .filter_map(|r| r.split('/').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn guard_corpus_is_well_formed() {
    let c = corpus();
    assert!(c.len() >= 500);
    for lang in ["en-US", "es-US"] {
        assert!(c.iter().filter(|r| r.lang == lang).count() >= 250);
    }
    for r in &c {
        let n = r.text.chars().count();
        assert_eq!(r.phi, !r.spans.is_empty(), "{}", r.id);
        assert!(r.spans.iter().all(|&(_, s, e)| s < e && e <= n), "{}", r.id);
    }
}

#[test]
fn guard_heldout_recall_is_total_and_precision_holds() {
    let guard = Guard::new();
    let (mut tp, mut fp, mut fneg, mut missed_spans) = (0, 0, 0, Vec::new());
    for r in corpus().iter().filter(|r| r.split == "heldout") {
        let allowed: Vec<&str> = r.allowed.iter().map(String::as_str).collect();
        let doms = domains(&allowed);
        let doms: Vec<&str> = doms.iter().map(String::as_str).collect();
        let ctx = ScanContext {
            lang: Some(&r.lang),
            allowed: &allowed,
            allowed_domains: &doms,
            content: None,
        };
        let v = guard.scan(&r.text, &ctx);
        match (r.phi, v.blocked()) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            (false, false) => {}
        }
        for &(k, s, e) in &r.spans {
            if !v.findings.iter().any(|f| f.start < e && s < f.end) {
                missed_spans.push(format!("{} {k}", r.id));
            }
        }
    }
    assert_eq!(fneg, 0, "held-out PHI texts that passed");
    let precision = f64::from(tp) / f64::from(tp + fp);
    assert!(precision >= HELDOUT_PRECISION, "precision {precision}");
    assert!(
        missed_spans.is_empty(),
        "spans not flagged: {missed_spans:?}"
    );
}

#[test]
fn guard_cli_speaks_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["guard", "--content"])
        .current_dir(dir.path())
        .env_clear()
        .env("HERALD_DATA_DIR", dir.path().join("data"))
        .env("HERALD_MESSAGING__PRACTICE_NAME", "Lakeside Clinic")
        .env("HERALD_MESSAGING__PRACTICE_PHONE", "(617) 555-0100")
        .env(
            "HERALD_MESSAGING__PORTAL_URL",
            "https://portal.lakeside.example/",
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input = concat!(
        "Lakeside Clinic: see you Monday. Call (617) 555-0100 or https://portal.lakeside.example/x. Reply STOP to opt out.\n",
        "{\"text\":\"Lakeside Clinic: tome su metformina. Responda STOP para cancelar.\",\"lang\":\"es-US\"}\n",
        "{\"text\": 12}\n",
        "{not json\n",
        "Lakeside Clinic: Dr. Priya Raman, Monday. Reply STOP to opt out.\n",
        "{\"text\":\"Lakeside Clinic: Dr. Priya Raman, Monday. Reply STOP to opt out.\",\"allowed\":[\"Dr. Priya Raman\"]}\n",
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(
        lines[0],
        serde_json::json!({"verdict": "pass", "findings": []})
    );
    assert_eq!(lines[1]["verdict"], "block");
    assert_eq!(
        lines[1]["findings"],
        serde_json::json!([{"kind": "drug", "start": 25, "end": 35}])
    );
    for l in &lines[2..4] {
        assert_eq!(l["verdict"], "block");
        assert!(l["error"].as_str().unwrap().starts_with("line "));
    }
    assert_eq!(lines[4]["findings"][0]["kind"], "other_name");
    assert_eq!(lines[5]["verdict"], "pass");
}
