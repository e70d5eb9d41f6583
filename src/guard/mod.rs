//! The compliance guard: scans outgoing SMS/email text for PHI (safe-harbor identifiers, clinical terms)
//! and, on request, for the TCPA/CTIA content every message must carry (brand, opt-out instruction).
//!
//! Owns: text folding, the embedded vocabularies (`vocab/`, built by `vocab/generate.py`), the pattern
//! rules, and the verdict. Must not: do IO, read a clock or the environment, log, or derive `Serialize`
//! (callers print [`Kind::as_str`]). A [`Guard`] is built once and shared (`Send + Sync`); `scan` is
//! a pure function of the text and its [`ScanContext`].
//!
//! Offsets in a [`Finding`] count Unicode scalar values (chars), end exclusive. Each char of the input
//! is folded to exactly one ASCII byte (accents dropped, other scripts to a placeholder), so byte
//! offsets in the folded text are char offsets in the input.

mod fold;
mod fuzzy;
mod rules;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use fold::Folded;

/// What a finding is. Serialized by callers as [`Kind::as_str`] (snake_case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Drug,
    Diagnosis,
    Test,
    Result,
    Mrn,
    Ssn,
    Dob,
    Address,
    Email,
    Phone,
    Insurance,
    Account,
    Specialty,
    OtherName,
    Url,
    Ip,
    License,
    Device,
    Vehicle,
    Age,
    MissingBrand,
    MissingOptOut,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 22] = [
        Kind::Drug,
        Kind::Diagnosis,
        Kind::Test,
        Kind::Result,
        Kind::Mrn,
        Kind::Ssn,
        Kind::Dob,
        Kind::Address,
        Kind::Email,
        Kind::Phone,
        Kind::Insurance,
        Kind::Account,
        Kind::Specialty,
        Kind::OtherName,
        Kind::Url,
        Kind::Ip,
        Kind::License,
        Kind::Device,
        Kind::Vehicle,
        Kind::Age,
        Kind::MissingBrand,
        Kind::MissingOptOut,
    ];

    /// The stable snake_case name used in JSON, the outbox and audit records.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Drug => "drug",
            Kind::Diagnosis => "diagnosis",
            Kind::Test => "test",
            Kind::Result => "result",
            Kind::Mrn => "mrn",
            Kind::Ssn => "ssn",
            Kind::Dob => "dob",
            Kind::Address => "address",
            Kind::Email => "email",
            Kind::Phone => "phone",
            Kind::Insurance => "insurance",
            Kind::Account => "account",
            Kind::Specialty => "specialty",
            Kind::OtherName => "other_name",
            Kind::Url => "url",
            Kind::Ip => "ip",
            Kind::License => "license",
            Kind::Device => "device",
            Kind::Vehicle => "vehicle",
            Kind::Age => "age",
            Kind::MissingBrand => "missing_brand",
            Kind::MissingOptOut => "missing_opt_out",
        }
    }

    /// The kind named `s` (as [`Kind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// A content rule (TCPA/CTIA) rather than PHI.
    pub fn is_content(self) -> bool {
        matches!(self, Kind::MissingBrand | Kind::MissingOptOut)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// TCPA/CTIA content checks (T2, C1–C3).
#[derive(Clone, Copy, Debug)]
pub struct ContentRules<'a> {
    /// The brand or program name that must appear.
    pub brand: &'a str,
    /// Whether a STOP-style opt-out instruction must appear.
    pub require_opt_out: bool,
}

/// What the caller knows about the text.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanContext<'a> {
    /// "en-US", "es-US", ...; `None` tries every language.
    pub lang: Option<&'a str>,
    /// Values the template inserted on purpose (practice name and phone, clinician, location,
    /// patient first name, the formatted date and time). Never flagged.
    pub allowed: &'a [&'a str],
    /// Branded or portal domains whose URLs are fine (C8).
    pub allowed_domains: &'a [&'a str],
    /// Content checks, when `Some`.
    pub content: Option<ContentRules<'a>>,
}

/// One flagged span. Offsets in chars, end exclusive. Content findings span the whole text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Finding {
    pub kind: Kind,
    pub start: usize,
    pub end: usize,
}

/// The outcome of a scan: blocked when anything was found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    pub findings: Vec<Finding>,
}

impl Verdict {
    /// Fail closed: any finding blocks the text.
    pub fn blocked(&self) -> bool {
        !self.findings.is_empty()
    }

    /// A short reason without PHI, e.g. `"phi: drug, dob; content: missing_opt_out"`; empty when clean.
    pub fn reasons(&self) -> String {
        let mut phi: Vec<&str> = Vec::new();
        let mut content: Vec<&str> = Vec::new();
        for f in &self.findings {
            let list = if f.kind.is_content() {
                &mut content
            } else {
                &mut phi
            };
            if !list.contains(&f.kind.as_str()) {
                list.push(f.kind.as_str());
            }
        }
        let mut parts = Vec::new();
        if !phi.is_empty() {
            parts.push(format!("phi: {}", phi.join(", ")));
        }
        if !content.is_empty() {
            parts.push(format!("content: {}", content.join(", ")));
        }
        parts.join("; ")
    }
}

pub(crate) const LANG_EN: u8 = 1;
pub(crate) const LANG_ES: u8 = 2;
pub(crate) const LANG_ALL: u8 = LANG_EN | LANG_ES;

/// The embedded vocabularies: (kind, languages, one term per line, folded lower case).
const VOCABS: &[(Kind, u8, &str)] = &[
    (Kind::Drug, LANG_ALL, include_str!("vocab/drug.txt")),
    (Kind::Drug, LANG_ES, include_str!("vocab/drug.es.txt")),
    (
        Kind::Diagnosis,
        LANG_EN,
        include_str!("vocab/diagnosis.en.txt"),
    ),
    (
        Kind::Diagnosis,
        LANG_ES,
        include_str!("vocab/diagnosis.es.txt"),
    ),
    (Kind::Test, LANG_EN, include_str!("vocab/test.en.txt")),
    (Kind::Test, LANG_ES, include_str!("vocab/test.es.txt")),
    (Kind::Result, LANG_EN, include_str!("vocab/result.en.txt")),
    (Kind::Result, LANG_ES, include_str!("vocab/result.es.txt")),
    (
        Kind::Specialty,
        LANG_EN,
        include_str!("vocab/specialty.en.txt"),
    ),
    (
        Kind::Specialty,
        LANG_ES,
        include_str!("vocab/specialty.es.txt"),
    ),
];

/// The scanner. Build once with [`Guard::new`]; share behind an `Arc`.
pub struct Guard {
    /// `None` only if the embedded lists could not be compiled (the unit tests rule that out).
    vocab: Option<AhoCorasick>,
    /// Per vocabulary pattern id: its kind and languages.
    meta: Vec<(Kind, u8)>,
    fuzzy: fuzzy::Fuzzy,
    rules: rules::Rules,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("terms", &self.meta.len())
            .finish_non_exhaustive()
    }
}

impl Default for Guard {
    fn default() -> Self {
        Self::new()
    }
}

impl Guard {
    /// Builds the automaton and the rules from the embedded vocabularies (tens of milliseconds).
    pub fn new() -> Guard {
        let mut terms: Vec<&str> = Vec::new();
        let mut meta = Vec::new();
        for (kind, langs, text) in VOCABS {
            for t in text.lines().map(str::trim).filter(|t| !t.is_empty()) {
                terms.push(t);
                meta.push((*kind, *langs));
            }
        }
        let vocab = AhoCorasickBuilder::new()
            .match_kind(MatchKind::Standard)
            .build(&terms)
            .ok();
        Guard {
            vocab,
            meta,
            fuzzy: fuzzy::Fuzzy::new(
                include_str!("vocab/fuzzy.txt"),
                include_str!("vocab/fuzzy_stop.txt"),
            ),
            rules: rules::Rules::new(),
        }
    }

    /// Scans `text`. Findings are sorted by start; an empty list means the text may go out.
    pub fn scan(&self, text: &str, ctx: &ScanContext<'_>) -> Verdict {
        self.scan_gated(text, ctx, false)
    }

    /// [`Guard::scan`]; `every_rule` runs each pattern rule whatever its gate says (the tests'
    /// reference for the gates).
    fn scan_gated(&self, text: &str, ctx: &ScanContext<'_>, every_rule: bool) -> Verdict {
        let folded = Folded::new(text);
        let prefix = |l: &str, p: &str| {
            l.as_bytes()
                .get(..p.len())
                .is_some_and(|h| h.eq_ignore_ascii_case(p.as_bytes()))
        };
        let langs = match ctx.lang {
            Some(l) if prefix(l, "es") => LANG_ES,
            Some(l) if prefix(l, "en") => LANG_EN,
            _ => LANG_ALL,
        };
        let allowed = Allowed::new(&folded, ctx);
        let mut found: Vec<Finding> = Vec::new();
        self.scan_vocab(&folded, langs, &mut found);
        let mut gates = self.rules.gates(&folded);
        if every_rule {
            gates = gates.opened();
        }
        self.rules
            .scan(&folded, &gates, &allowed, ctx.allowed_domains, &mut found);
        found.retain(|f| !allowed.covers(f.start, f.end));
        found.sort_unstable();
        found.dedup();
        dedup_contained(&mut found);
        if let Some(rules) = ctx.content {
            let n = folded.len();
            let brand = fold::fold_lower(rules.brand.trim());
            if !brand.is_empty() && !folded.lower().contains(brand.as_str()) {
                found.push(Finding {
                    kind: Kind::MissingBrand,
                    start: 0,
                    end: n,
                });
            }
            let other_script = ctx
                .lang
                .is_some_and(|l| !(l.starts_with("en") || l.starts_with("es")));
            if rules.require_opt_out
                && !self.rules.has_opt_out(&folded)
                && !(other_script && has_stop_keyword(text))
            {
                found.push(Finding {
                    kind: Kind::MissingOptOut,
                    start: 0,
                    end: n,
                });
            }
        }
        found.sort_by_key(|f| (f.start, f.end, f.kind));
        Verdict { findings: found }
    }

    fn scan_vocab(&self, folded: &Folded, langs: u8, out: &mut Vec<Finding>) {
        let lower_str = folded.lower();
        let lower = lower_str.as_bytes();
        let mut hits: Vec<Finding> = Vec::new();
        let Some(vocab) = &self.vocab else { return };
        for m in vocab.find_overlapping_iter(lower) {
            let Some(&(kind, term_langs)) = self.meta.get(m.pattern().as_usize()) else {
                continue;
            };
            if term_langs & langs == 0 || !fold::boundary_before(lower, m.start()) {
                continue;
            }
            // Plurals: "tumors", "biopsias".
            let end = if fold::boundary_after(lower, m.end()) {
                m.end()
            } else if lower.get(m.end()) == Some(&b's') && fold::boundary_after(lower, m.end() + 1)
            {
                m.end() + 1
            } else {
                continue;
            };
            hits.push(Finding {
                kind,
                start: m.start(),
                end,
            });
        }
        // Keep the longest term at each place: "hepatitis c" over "hepatitis".
        hits.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
        let mut reach = 0;
        let mut first = true;
        for h in hits {
            if !first && h.end <= reach {
                continue;
            }
            first = false;
            reach = reach.max(h.end);
            out.push(h);
        }
        self.fuzzy.scan(lower_str, langs, out);
        for i in 0..out.len() {
            let Some(t) = out.get(i).copied().filter(|f| f.kind == Kind::Test) else {
                continue;
            };
            if let Some((s, e)) = self.rules.value_after_test(folded, t.end) {
                out.push(Finding {
                    kind: Kind::Result,
                    start: s,
                    end: e,
                });
            }
        }
    }
}

/// Drops a finding that lies inside another finding of the same kind.
fn dedup_contained(found: &mut Vec<Finding>) {
    if found.len() < 2 {
        return;
    }
    let snapshot = found.clone();
    found.retain(|f| {
        !snapshot
            .iter()
            .any(|g| g != f && g.kind == f.kind && g.start <= f.start && f.end <= g.end)
    });
}

/// The template's own values, located in the text.
pub(crate) struct Allowed {
    spans: Vec<(usize, usize)>,
    /// Digits of every allowed value with at least 7 digits (phones), last 10 kept.
    phones: Vec<String>,
    /// Lower-case words of every allowed value (names), as ranges of `word_text`.
    words: Vec<std::ops::Range<usize>>,
    word_text: String,
}

impl Allowed {
    fn new(folded: &Folded, ctx: &ScanContext<'_>) -> Allowed {
        let lower = folded.lower().as_bytes();
        let mut spans = Vec::new();
        let mut phones = Vec::new();
        let mut words: Vec<std::ops::Range<usize>> = Vec::new();
        let mut word_text = String::new();
        let mut v = String::new();
        for value in ctx.allowed {
            fold::fold_lower_into(value.trim(), &mut v);
            let vb = v.as_bytes();
            let Some(&first) = vb.first().filter(|_| vb.len() >= 2) else {
                continue;
            };
            // Every occurrence, overlapping ones included.
            for (i, _) in lower.iter().enumerate().filter(|&(_, &b)| b == first) {
                if lower.get(i..).is_some_and(|rest| rest.starts_with(vb)) {
                    spans.push((i, i + vb.len()));
                }
            }
            if v.bytes().filter(u8::is_ascii_digit).count() >= 7 {
                let digits: String = v.chars().filter(char::is_ascii_digit).collect();
                phones.push(last10(&digits).to_string());
            }
            for w in v.split(|c: char| !c.is_ascii_alphanumeric()) {
                if w.len() >= 2 && !words.iter().any(|r| word_text.get(r.clone()) == Some(w)) {
                    let start = word_text.len();
                    word_text.push_str(w);
                    words.push(start..word_text.len());
                }
            }
        }
        Allowed {
            spans,
            phones,
            words,
            word_text,
        }
    }

    fn covers(&self, start: usize, end: usize) -> bool {
        self.spans.iter().any(|&(s, e)| s <= start && end <= e)
    }

    /// Whether `digits` is one of the allowed phone numbers.
    pub(crate) fn phone(&self, digits: &str) -> bool {
        let d = last10(digits);
        self.phones.iter().any(|p| p == d)
    }

    /// Whether every word of `name` belongs to an allowed value.
    pub(crate) fn name(&self, name: &str) -> bool {
        let mut any = false;
        for w in name.split(|c: char| !c.is_ascii_alphanumeric()) {
            if w.is_empty() {
                continue;
            }
            any = true;
            if !self.words.iter().any(|r| {
                self.word_text
                    .get(r.clone())
                    .is_some_and(|x| x.eq_ignore_ascii_case(w))
            }) {
                return false;
            }
        }
        any
    }
}

fn last10(digits: &str) -> &str {
    digits
        .get(digits.len().saturating_sub(10)..)
        .unwrap_or(digits)
}

#[cfg(test)]
mod tests;

/// In the other locales the instruction is the carrier keyword STOP, in
/// Latin capitals, inside text in another script ("回复STOP退订", "STOP — отписаться").
fn has_stop_keyword(text: &str) -> bool {
    text.match_indices("STOP").any(|(i, _)| {
        let before = text.get(..i).and_then(|s| s.chars().next_back());
        let after = text.get(i + 4..).and_then(|s| s.chars().next());
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}
