//! The compliance guard: `Guard::scan` over the labelled corpus (fixtures/guard/corpus.jsonl)
//! against a bare baseline in the same run: one plain `regex` scan of 10 PHI patterns (phone,
//! email, SSN, dates ×3, URL, MRN/ref, card, IP), as performance.md's "g peer". See
//! `benches/README.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods,
    clippy::indexing_slicing,
    clippy::as_conversions
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herald::guard::{Guard, ScanContext};

struct Text {
    text: String,
    lang: String,
    allowed: Vec<String>,
}

fn corpus() -> Vec<Text> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/guard/corpus.jsonl");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Text {
                text: v["text"].as_str().unwrap().to_string(),
                lang: v["lang"].as_str().unwrap().to_string(),
                allowed: v["allowed"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string())
                    .collect(),
            }
        })
        .collect()
}

const PEER: [&str; 10] = [
    r"\(?\b\d{3}\)?[-.\s]?\d{3}[-.\s]?\d{4}\b",
    r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b",
    r"\b\d{3}-\d{2}-\d{4}\b",
    r"\b\d{1,2}/\d{1,2}/\d{2,4}\b",
    r"\b\d{4}-\d{2}-\d{2}\b",
    r"(?i)\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.? \d{1,2},? \d{4}\b",
    r"(?i)\bhttps?://\S+|\bwww\.\S+",
    r"(?i)\b(?:mrn|ref|record)[:# ]*\d{5,}\b",
    r"\b(?:\d[ -]?){13,16}\b",
    r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
];

fn guard_scan(c: &mut Criterion) {
    let texts = corpus();
    let guard = Guard::new();
    let peer: Vec<regex::Regex> = PEER.iter().map(|p| regex::Regex::new(p).unwrap()).collect();
    let allowed: Vec<Vec<&str>> = texts
        .iter()
        .map(|t| t.allowed.iter().map(String::as_str).collect())
        .collect();
    let domains = ["portal.lakesidefm.org", "my.riverbendhealth.org"];

    let mut g = c.benchmark_group("guard_scan");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function("herald_guard_scan", |b| {
        b.iter(|| {
            let mut blocked = 0usize;
            for (t, a) in texts.iter().zip(&allowed) {
                let ctx = ScanContext {
                    lang: Some(&t.lang),
                    allowed: a,
                    allowed_domains: &domains,
                    content: None,
                };
                blocked += usize::from(guard.scan(black_box(&t.text), &ctx).blocked());
            }
            blocked
        });
    });
    g.bench_function("bare_regex_10_patterns", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for t in &texts {
                for re in &peer {
                    hits += re.find_iter(black_box(&t.text)).count();
                }
            }
            hits
        });
    });
    g.finish();
}

criterion_group!(benches, guard_scan);
criterion_main!(benches);
