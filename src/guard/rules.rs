//! Pattern rules over the folded text: identifiers (P1) and test values. Each rule is one regex,
//! run only when the text has what it needs (a digit, an `@`, a dot, a capital letter), and
//! validated in code (checksums, allowed values, year of a date, context words).

use regex::{Captures, Regex};

use super::fold::Folded;
use super::{Allowed, Finding, Kind};

/// Labels that introduce an identifier, by kind; the value follows (`MRN: 00482913`).
const ID_LABELS: &[(Kind, &str)] = &[
    (
        Kind::Mrn,
        r"mrn|medical record(?: number| no\.?| #)?|med(?:ical)? rec(?:ord)? #|chart(?: number| no\.?| #| id)|patient (?:id|number|#)|pt id|expediente(?: medico| clinico)?(?: no\.?| #| numero)?|numero de expediente|historia clinica(?: no\.?| #)?|registro medico|n(?:o|um)\.? de expediente",
    ),
    (
        Kind::Insurance,
        r"member(?: id| number| no\.?| #)|policy(?: number| no\.?| #| id)|subscriber(?: id| number| #)|group(?: number| no\.?| #)|insurance(?: id| number| no\.?| #)|medicaid(?: id| number| no\.?| #)?|medicare(?: id| number| no\.?| #)?|mbi|health plan(?: id| number| #)|plan id|(?:numero de )?poliza(?: no\.?| #)?|(?:numero de )?afiliado|id de (?:miembro|seguro|afiliado)|numero de (?:miembro|seguro)|seguro(?: medico)?(?: id| numero| no\.?| #)",
    ),
    (
        Kind::Account,
        r"account(?: number| no\.?| #| id)?|acct\.?(?: no\.?| #| number)?|invoice(?: number| no\.?| #)?|billing(?: id| number| #)|statement(?: number| no\.?| #)|(?:numero de )?cuenta(?: numero| no\.?| #)?|(?:numero de )?factura(?: no\.?| #)?|card(?: number| no\.?| #)|tarjeta(?: numero| no\.?| #)?",
    ),
    (
        Kind::License,
        r"driver'?s? licen[cs]e(?: number| no\.?| #)?|licen[cs]e(?: number| no\.?| #)|dl(?: number| no\.?| #)|(?:numero de )?licencia(?: de conducir| de manejo)?(?: numero| no\.?| #)?|dea(?: number| no\.?| #)?|npi(?: number| no\.?| #)?|passport(?: number| no\.?| #)?|pasaporte(?: numero| no\.?| #)?|certificate(?: number| no\.?| #)|certificado(?: numero| no\.?| #)",
    ),
    (
        Kind::Device,
        r"serial(?: number| no\.?| #)?|device(?: id| number| serial| no\.?| #)|implant(?: id| serial| number| #)|pacemaker(?: serial| id| #)|pump(?: serial| id| #)|(?:numero de )?serie|dispositivo(?: id| numero| no\.?| #)?|udi",
    ),
    (
        Kind::Vehicle,
        r"vin|license plate(?: number| no\.?| #)?|plate(?: number| no\.?| #)|(?:numero de )?placas?(?: numero| no\.?| #)?|tag number|matricula",
    ),
];

const SHORTENERS: &[&str] = &[
    "bit.ly",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "tiny.cc",
    "shorturl.at",
    "rb.gy",
    "t.ly",
    "s.id",
    "bl.ink",
    "lnkd.in",
];

const STATES: &[&str] = &[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL", "IN", "IA",
    "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM",
    "NY", "NC", "ND", "OH", "OK", "OR", "PA", "PR", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA",
    "WA", "WV", "WI", "WY",
];

/// Words that never sit between a house number and a street type ("at 10 am with Dr").
const NOT_STREET: &[&str] = &[
    "am", "pm", "a", "p", "m", "with", "at", "on", "to", "for", "the", "and", "min", "mins",
    "minutes", "hours", "hrs", "de", "y", "con", "la", "el", "or", "in", "is", "your", "please",
    "para", "por", "en", "al", "del", "a.m", "p.m",
];

/// The digit rules that gated the pattern rules before [`Gates`]; [`Gates::legacy`] computes
/// whether each matches without a regex (the unit tests compare the two).
#[cfg(test)]
pub(crate) const LEGACY_DIGIT_RULES: [&str; 6] = [
    r"\d{3}[\s.-]?\d{4}",                        // phone
    r"\d{3}[- ]\d{2}[- ]\d{4}|\d{9}",            // ssn
    r"\d[/.-]\d|\d{4}-\d\d-\d\d",                // numeric dates
    r"(?i)[a-z]\.?,?\s+\d|\d\s+(?:de\s+)?[a-z]", // dates with month names, streets, ages
    r"\d{7,}|\d{4}[\s-]\d{4}",                   // cards, long ids
    r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",       // ip
];

/// Keywords by rule: every match of the rule contains one of them, starting at a word start
/// (in lower case). A keyword may be shorter than the word ("licen" for license, licencia).
const TRIGGERS: &[(u8, &[&str])] = &[
    (Gates::SSN_CTX, &["ss", "soc", "nss"]),
    (
        Gates::DOB,
        &[
            "dob",
            "d.o.b",
            "birth",
            "born",
            "b-day",
            "bday",
            "nac",
            "fdn",
            "f.n.",
            "cumpleanos",
        ],
    ),
    (
        Gates::IDS,
        &[
            // MRN
            "mrn",
            "rec",
            "chart",
            "patient",
            "pt",
            "expediente",
            "historia",
            "registro",
            // insurance
            "member",
            "policy",
            "subscriber",
            "group",
            "insurance",
            "medicaid",
            "medicare",
            "mbi",
            "plan",
            "poliza",
            "afiliado",
            "miembro",
            "seguro",
            // account
            "account",
            "acct",
            "invoice",
            "billing",
            "statement",
            "cuenta",
            "factura",
            "card",
            "tarjeta",
            // licence
            "driver",
            "licen",
            "dl",
            "dea",
            "npi",
            "passport",
            "pasaporte",
            "certific",
            // device
            "seri",
            "device",
            "implant",
            "pacemaker",
            "pump",
            "dispositivo",
            "udi",
            // vehicle
            "vin",
            "plate",
            "placa",
            "tag",
            "matricula",
        ],
    ),
    (
        Gates::STREET,
        &[
            "st",
            "av",
            "road",
            "rd",
            "boulevard",
            "blvd",
            "dr",
            "lane",
            "ln",
            "court",
            "ct",
            "place",
            "pl",
            "ter",
            "parkway",
            "pkwy",
            "highway",
            "hwy",
            "cir",
            "trail",
            "trl",
            "way",
            "calle",
        ],
    ),
    (
        Gates::STREET_ES,
        &[
            "calle",
            "av",
            "camino",
            "carretera",
            "paseo",
            "bulevar",
            "privada",
            "cerrada",
        ],
    ),
];

/// A maximal run of digits, [start, end).
type Run = (usize, usize);

/// Which rules can match a text at all. Each field is a condition that every match of its
/// rule satisfies (a superset: an open gate may still find nothing), so a closed gate skips a
/// regex without changing the verdict. The unit tests check that against running every rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Gates {
    /// Any ASCII digit.
    pub(crate) digit: bool,
    /// A scheme, `www.` or a dot before a letter.
    url: bool,
    /// 3 digits, at most one `[\s.-]`, 4 digits.
    phone: bool,
    /// Digit runs 3, 2, 4 joined by single `-` or spaces.
    ssn: bool,
    /// Three digit runs joined by single `/`, `.` or `-`.
    numeric_date: bool,
    /// A run of exactly four digits below 2020 (a year the date rules report).
    old_year: bool,
    /// A run of 2 digits starting with 9, or 3 starting with 10–12.
    age: bool,
    /// A run of at most 6 digits.
    house_number: bool,
    /// A run of exactly 5 digits.
    zip: bool,
    /// Digit runs joined by single spaces or dashes holding 13 or more digits.
    card: bool,
    /// A run of 7 or more digits.
    long_digits: bool,
    /// Four digit runs joined by single dots.
    ip: bool,
    /// A run of `[A-Za-z0-9-]` of 11 or more with 5 or more digits.
    mbi: bool,
    /// A word (`\w` run) of exactly 17 characters with a digit.
    vin: bool,
    /// The coarse digit gates the rules had before these, kept so that verdicts stay the
    /// same: whether each of [`LEGACY_DIGIT_RULES`] matches.
    pub(crate) legacy: [bool; 6],
    /// Bits of the keyword rules ([`Gates::SSN_CTX`], ...).
    keywords: u8,
}

impl Gates {
    pub(crate) const SSN_CTX: u8 = 1;
    pub(crate) const DOB: u8 = 2;
    pub(crate) const IDS: u8 = 4;
    pub(crate) const STREET: u8 = 8;
    pub(crate) const STREET_ES: u8 = 16;

    /// Every gate open but the legacy ones: every rule runs as it did before the gates (the
    /// reference the tests compare against).
    pub(crate) fn opened(self) -> Gates {
        Gates {
            digit: self.digit,
            url: true,
            phone: true,
            ssn: true,
            numeric_date: true,
            old_year: true,
            age: true,
            house_number: true,
            zip: true,
            card: true,
            long_digits: true,
            ip: true,
            mbi: true,
            vin: true,
            legacy: self.legacy,
            keywords: u8::MAX,
        }
    }

    fn has(&self, bit: u8) -> bool {
        self.keywords & bit != 0
    }

    /// The byte-level gates: digit runs and words of the folded text.
    fn from_text(orig: &[u8], lower: &[u8]) -> Gates {
        let mut g = Gates::default();
        for (i, &b) in lower.iter().enumerate() {
            let rest = || lower.get(i + 1..).unwrap_or(&[]);
            g.url |= match b {
                b'.' => rest().first().is_some_and(u8::is_ascii_alphabetic),
                b':' => rest().starts_with(b"//"),
                b'w' => rest().starts_with(b"ww."),
                _ => false,
            };
        }

        // Maximal digit runs, [start, end).
        let mut runs: Vec<(usize, usize)> = Vec::new();
        let mut run_start = None;
        // Current `[A-Za-z0-9-]` run: length and digits; current `\w` run: length, digit seen.
        let (mut tok_len, mut tok_digits) = (0usize, 0usize);
        let (mut word_len, mut word_digit) = (0usize, false);
        for (i, &b) in orig.iter().chain(std::iter::once(&b' ')).enumerate() {
            let digit = b.is_ascii_digit();
            match (digit, run_start) {
                (true, None) => run_start = Some(i),
                (false, Some(s)) => {
                    runs.push((s, i));
                    run_start = None;
                }
                _ => {}
            }
            if b.is_ascii_alphanumeric() || b == b'-' {
                tok_len += 1;
                tok_digits += usize::from(digit);
            } else {
                g.mbi |= tok_len >= 11 && tok_digits >= 5;
                (tok_len, tok_digits) = (0, 0);
            }
            if b.is_ascii_alphanumeric() || b == b'_' {
                word_len += 1;
                word_digit |= digit;
            } else {
                g.vin |= word_len == 17 && word_digit;
                (word_len, word_digit) = (0, false);
            }
        }
        g.digit = !runs.is_empty();
        let run = |r: &(usize, usize)| orig.get(r.0..r.1).unwrap_or(&[]);
        // The byte between two runs when exactly one separates them.
        let sep = |a: &(usize, usize), b: &(usize, usize)| {
            if b.0 == a.1 + 1 {
                orig.get(a.1).copied()
            } else {
                None
            }
        };
        for r in &runs {
            let d = run(r);
            g.long_digits |= d.len() >= 7;
            g.house_number |= d.len() <= 6;
            g.zip |= d.len() == 5;
            g.old_year |= d.len() == 4 && d < b"2020".as_slice();
            g.age |= matches!(d, [b'9', _] | [b'1', b'0'..=b'2', _]);
        }
        g.phone = g.long_digits
            || runs.windows(2).any(|w| {
                matches!(w, [a, b] if a.1 - a.0 >= 3 && b.1 - b.0 >= 4
                    && matches!(sep(a, b), Some(b' ' | b'\t' | b'\n' | b'.' | b'-')))
            });
        g.ssn = runs.windows(3).any(|w| {
            matches!(w, [a, b, c] if a.1 - a.0 >= 3 && b.1 - b.0 == 2 && c.1 - c.0 >= 4
                && matches!(sep(a, b), Some(b'-' | b' '))
                && matches!(sep(b, c), Some(b'-' | b' ')))
        });
        g.numeric_date = runs.windows(3).any(|w| {
            matches!(w, [a, b, c] if matches!(sep(a, b), Some(b'/' | b'.' | b'-'))
                && matches!(sep(b, c), Some(b'/' | b'.' | b'-')))
        });
        g.ip = runs.windows(4).any(|w| {
            matches!(w, [a, b, c, d] if sep(a, b) == Some(b'.') && sep(b, c) == Some(b'.')
                && sep(c, d) == Some(b'.'))
        });
        let mut chain = 0;
        let mut prev: Option<&(usize, usize)> = None;
        for r in &runs {
            let joined = prev.is_some_and(|p| matches!(sep(p, r), Some(b' ' | b'-')));
            chain = if joined { chain } else { 0 } + (r.1 - r.0);
            g.card |= chain >= 13;
            prev = Some(r);
        }
        let pair = |f: &dyn Fn(&Run, &Run) -> bool| {
            runs.windows(2).any(|w| matches!(w, [a, b] if f(a, b)))
        };
        let len = |r: &(usize, usize)| r.1 - r.0;
        let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n');
        // A letter, `.`?, `,`?, spaces, then this run; or this run, spaces, a letter.
        let word_digit = runs.iter().any(|r| {
            let after = orig.get(r.1..).unwrap_or(&[]);
            let spaces_after = after.iter().take_while(|b| space(b)).count();
            let mut before = orig.get(..r.0).unwrap_or(&[]);
            let spaces_before = before.iter().rev().take_while(|b| space(b)).count();
            before = before.get(..before.len() - spaces_before).unwrap_or(&[]);
            if let [rest @ .., b','] = before {
                before = rest;
            }
            if let [rest @ .., b'.'] = before {
                before = rest;
            }
            (spaces_after > 0 && after.get(spaces_after).is_some_and(u8::is_ascii_alphabetic))
                || (spaces_before > 0 && before.last().is_some_and(u8::is_ascii_alphabetic))
        });
        g.legacy = [
            g.phone,
            g.ssn || runs.iter().any(|r| len(r) >= 9),
            pair(&|a, b| matches!(sep(a, b), Some(b'/' | b'.' | b'-'))),
            word_digit,
            g.long_digits
                || pair(&|a, b| {
                    len(a) >= 4
                        && len(b) >= 4
                        && matches!(sep(a, b), Some(b' ' | b'\t' | b'\n' | b'-'))
                }),
            g.ip,
        ];
        g
    }
}

pub(crate) struct Rules {
    /// Keywords that every match of a keyword rule contains, at a word start (lower case).
    /// [`TRIGGERS`] by first byte: (keyword, the [`Gates`] bits it opens).
    triggers: Vec<Vec<(&'static [u8], u8)>>,
    /// Bit `256 * b0 + b1` is set when a keyword starts with the bytes `b0 b1`.
    trigger_pairs: Vec<u64>,
    phone: Regex,
    ssn: Regex,
    ssn_ctx: Regex,
    date_num: Regex,
    date_iso: Regex,
    date_en: Regex,
    date_es: Regex,
    dob_ctx: Regex,
    ids: Regex,
    mbi: Regex,
    vin: Regex,
    card: Regex,
    long_digits: Regex,
    ip: Regex,
    age: Regex,
    street: Regex,
    street_es: Regex,
    zip: Regex,
    email: Regex,
    url: Regex,
    name: Regex,
    opt_out: Regex,
    test_value: Regex,
}

fn re(p: &str) -> Regex {
    // Every pattern here is a constant checked by the unit tests; an invalid one would match nothing.
    Regex::new(p).unwrap_or_else(|_| never())
}

fn never() -> Regex {
    // `[^\s\S]` matches no text; the fallback cannot fail in practice.
    Regex::new(r"[^\s\S]").unwrap_or_else(|_| never())
}

const MONTHS_EN: &str = r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?";
const MONTHS_ES: &str = r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|ene|feb|mar|abr|jun|jul|ago|sep|oct|nov|dic";

impl Rules {
    pub(crate) fn new() -> Rules {
        let labels: Vec<String> = ID_LABELS
            .iter()
            .enumerate()
            .map(|(i, (_, p))| format!("(?P<l{i}>{p})"))
            .collect();
        let ids = format!(
            r"(?i)\b(?:{})\s*(?:is|es|was|:|#|=|-|no\.?|number|numero)?\s*(?:is|es|:|#)?\s*(?P<val>[A-Za-z0-9][A-Za-z0-9-]{{3,}})",
            labels.join("|")
        );
        let mut triggers: Vec<Vec<(&'static [u8], u8)>> = vec![Vec::new(); 256];
        let mut trigger_pairs = vec![0u64; 65536 / 64];
        for (bit, words) in TRIGGERS {
            for w in *words {
                if let [b0, b1, ..] = w.as_bytes() {
                    let k = usize::from(*b0) << 8 | usize::from(*b1);
                    if let Some(x) = trigger_pairs.get_mut(k / 64) {
                        *x |= 1 << (k % 64);
                    }
                }
                let first = w.as_bytes().first().map_or(0, |&b| usize::from(b));
                if let Some(list) = triggers.get_mut(first) {
                    list.push((w.as_bytes(), *bit));
                }
            }
        }
        Rules {
            triggers,
            trigger_pairs,
            phone: re(
                r"(?:\+?\b1[\s.-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.-]?)\d{3}[\s.-]?\d{4}\b|\b\d{3}[.-]\d{4}\b",
            ),
            ssn: re(r"\b\d{3}-\d{2}-\d{4}\b|\b\d{3} \d{2} \d{4}\b"),
            ssn_ctx: re(
                r"(?i)\b(?:ssn|ss#|ss #|soc(?:ial)? sec(?:urity)?(?: number| no\.?| #)?|social|seguro social|numero de seguro social|nss)\s*(?:is|es|:|#|no\.?)?\s*(?:ending in|ending|terminado en|que termina en|last 4|ultimos 4)?\s*:?\s*(?P<val>\d{3}[- .]?\d{2}[- .]?\d{4}|\d{4})\b",
            ),
            date_num: re(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4}|\d{2})\b"),
            date_iso: re(r"\b(\d{4})-(\d{2})-(\d{2})\b"),
            date_en: re(&format!(
                r"(?i)\b(?:{MONTHS_EN})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+(?P<year>\d{{4}}))?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{MONTHS_EN})\.?,?\s+(?P<year2>\d{{4}})\b"
            )),
            date_es: re(&format!(
                r"(?i)\b\d{{1,2}}\s+(?:de\s+)?(?:{MONTHS_ES})\.?(?:,?\s+(?:de\s+|del\s+)?(?P<year>\d{{4}}))?\b"
            )),
            dob_ctx: re(&format!(
                r"(?i)\b(?:dob|d\.o\.b\.?|date of birth|birth ?date|birthday|born(?: on| in)?|b-day|bday|fecha de nacimiento|fecha de nac\.?|f\. ?de nac\.?|fdn|f\.n\.|nacio(?: el)?|nacid[oa](?: el)?|cumpleanos|naci(?:miento)?)\s*(?:is|es|was|fue|:|-|=)?\s*(?:el\s+|on\s+)?(?P<val>\d{{1,4}}[\s/.-]\d{{1,2}}[\s/.-]\d{{2,4}}|\d{{1,2}}[/.-]\d{{1,2}}|(?:{MONTHS_EN})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}\s+(?:de\s+)?(?:{MONTHS_ES}|{MONTHS_EN})\.?(?:,?\s+(?:de\s+)?\d{{4}})?|\d{{4}})"
            )),
            ids: re(&ids),
            mbi: re(
                r"\b[1-9][AC-HJKMNP-RT-Yac-hjkmnp-rt-y][AC-HJKMNP-RT-Yac-hjkmnp-rt-y0-9]\d-?[AC-HJKMNP-RT-Yac-hjkmnp-rt-y][AC-HJKMNP-RT-Yac-hjkmnp-rt-y0-9]\d-?[AC-HJKMNP-RT-Yac-hjkmnp-rt-y]{2}\d{2}\b",
            ),
            vin: re(r"\b[A-HJ-NPR-Z0-9]{17}\b"),
            card: re(r"\b(?:\d[ -]?){12,18}\d\b"),
            long_digits: re(r"\b[A-Za-z]{0,3}-?\d{7,}\b"),
            ip: re(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}\b"),
            age: re(
                r"(?i)\b(?P<a>9\d|1[0-2]\d)\s*-?\s*(?:years?[- ]old|yrs?\.?[- ]old|y/?o\b|yrs?\b|-year-old|anos(?: de edad)?)|\b(?:age[ds]?|edad(?: de)?|tiene|de edad)\s*:?\s*(?P<b>9\d|1[0-2]\d)\b",
            ),
            street: re(
                r"(?i)\b\d{1,6}[a-z]?\s+(?:[nsew]\.?\s+)?(?:[a-z0-9']+\s+){0,3}?(?:street|st|avenue|ave|av|road|rd|boulevard|blvd|drive|dr|lane|ln|court|ct|place|pl|terrace|ter|parkway|pkwy|highway|hwy|circle|cir|trail|trl|way|calle|avenida)\b\.?(?:,?\s*(?:apt|apartment|unit|suite|ste|#|depto|apto)\.?\s*#?[a-z0-9-]+)?",
            ),
            street_es: re(
                r"(?i)\b(?:calle|avenida|avda|av|camino|carretera|paseo|bulevar|privada|cerrada|callejon)\.?\s+(?:[a-z0-9']+\s+){0,3}?(?:#\s*|no\.?\s*|num\.?\s*|numero\s+)?\d{1,6}[a-z]?\b(?:,?\s*(?:apt|apto|depto|int|interior|#)\.?\s*[a-z0-9-]+)?",
            ),
            zip: re(
                r"(?i)\b(?:zip(?: code)?|codigo postal|c\.p\.|cp)\s*:?\s*(?P<z>\d{5}(?:-\d{4})?)\b|\b(?P<st>[A-Z]{2}),?\s+(?P<z2>\d{5})(?:-\d{4})?\b|\b(?P<z3>\d{5}-\d{4})\b",
            ),
            email: re(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
            url: re(
                r"(?i)\b(?:https?://|www\.)[^\s<>\x01]+|\b(?:[a-z0-9-]+\.)+(?:com|org|net|gov|edu|io|ly|me|co|us|info|biz|health|care|app|link|site|online|gl|gd|cc|at|to|mx|es|ai|ws|in|id|gy)\b(?:/[^\s<>\x01]*)?",
            ),
            name: re(
                r"\b(?:(?:Dr|Dra|Mr|Mrs|Ms|Mx|Sr|Sra|Srta|Prof|Lic)\.?|(?i:doctor|doctora|nurse|enfermer[oa]|miss|don|dona|senor|senora|senorita))\s+(?P<n>[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)|(?i:\b(?:your|his|her|their|the|tu|su|sus|la|el)\s+(?:husband|wife|son|daughter|mother|mom|father|dad|brother|sister|spouse|partner|caregiver|grandson|granddaughter|grandmother|grandfather|roommate|neighbor|esposo|esposa|marido|hijo|hija|madre|mama|padre|papa|hermano|hermana|pareja|nieto|nieta|abuela|abuelo|cuidador|cuidadora|vecino|vecina|companero|companera)\b,?)\s+(?P<r>[A-Z][a-z'-]+(?:\s+[A-Z][a-z'-]+)?)|(?i:\b(?:patient|paciente|pt\.?|re:|for patient|para (?:el|la) paciente|nombre|name)\s*:?)\s+(?P<p>[A-Z][a-z'-]+\s+[A-Z][a-z'-]+)",
            ),
            opt_out: re(
                r#"(?i)\b(?:reply|text|txt|send|respond|responda|responde|envie|envia|escriba|escribe|conteste|contesta|mande|manda)\s+(?:with\s+|con\s+)?["']?(?:stop|alto|baja|parar|cancelar|end|quit)\b|\b(?:stop|alto|baja)\s+(?:to|para)\s+\w|\b(?:opt[- ]?out|unsubscribe|darse de baja|dejar de recibir)\b"#,
            ),
            test_value: re(
                r"(?i)^\s*(?:level|nivel|result|resultado|reading)?\s*(?:of|was|is|at|came back|fue|es|esta|salio|de|en|:|=)?\s*(?:of|was|is|at|:|=|de|en)?\s*(?P<v>[<>]?\s*\d+(?:[.,]\d+)?(?:\s*(?:%|mg/dl|mmol/l|ng/ml|mg|mmhg))?|high|low|elevated|very high|critical|normal|alto|alta|bajo|baja|elevado|elevada|critico)\b",
            ),
        }
    }

    pub(crate) fn has_opt_out(&self, f: &Folded) -> bool {
        self.opt_out.is_match(f.lower())
    }

    /// A value right after a test name ("A1C 9.2", "glucosa de 250", "PSA was high").
    pub(crate) fn value_after_test(&self, f: &Folded, end: usize) -> Option<(usize, usize)> {
        let rest = f.orig().get(end..)?;
        let c = self.test_value.captures(rest)?;
        let v = c.name("v")?;
        Some((end + v.start(), end + v.end()))
    }

    /// Which rules can match `f` at all: one pass over the digits and words, one over the
    /// keywords. Each gate is a condition that every match of its rule (with a finding)
    /// satisfies, so skipping a closed rule changes nothing.
    pub(crate) fn gates(&self, f: &Folded) -> Gates {
        let mut g = Gates::from_text(f.orig().as_bytes(), f.lower().as_bytes());
        let lower = f.lower().as_bytes();
        // A street type follows its house number ("12 Oak St"): one before every digit is
        // no street.
        let first_digit = lower
            .iter()
            .position(u8::is_ascii_digit)
            .unwrap_or(usize::MAX);
        let mut after_word = false;
        for (i, &b) in lower.iter().enumerate() {
            let word = b.is_ascii_alphanumeric() || b == b'_';
            if word && !after_word {
                let rest = lower.get(i..).unwrap_or(&[]);
                let k = usize::from(b) << 8 | usize::from(rest.get(1).copied().unwrap_or(0));
                if self
                    .trigger_pairs
                    .get(k / 64)
                    .is_none_or(|x| x & (1 << (k % 64)) == 0)
                {
                    after_word = word;
                    continue;
                }
                for (w, bit) in self.triggers.get(usize::from(b)).into_iter().flatten() {
                    if rest.starts_with(w) {
                        g.keywords |= if i > first_digit {
                            *bit
                        } else {
                            bit & !Gates::STREET
                        };
                    }
                }
            }
            after_word = word;
        }
        g
    }

    pub(crate) fn scan(
        &self,
        f: &Folded,
        gates: &Gates,
        allowed: &Allowed,
        domains: &[&str],
        out: &mut Vec<Finding>,
    ) {
        let text = f.orig();
        let bytes = text.as_bytes();
        let push = |out: &mut Vec<Finding>, kind, s, e| {
            out.push(Finding {
                kind,
                start: s,
                end: e,
            })
        };
        if bytes.contains(&b'@') {
            for m in self.email.find_iter(text) {
                push(out, Kind::Email, m.start(), m.end());
            }
        }
        if bytes.contains(&b'.') && gates.url {
            for m in self.url.find_iter(text) {
                let before = m.start().checked_sub(1).and_then(|i| bytes.get(i));
                if before == Some(&b'@') || inside(out, Kind::Email, m.start()) {
                    continue;
                }
                let url = m.as_str().trim_end_matches(['.', ',', ')', ';', '!', '?']);
                if !url_allowed(url, domains) {
                    push(out, Kind::Url, m.start(), m.start() + url.len());
                }
            }
        }
        self.names(text, allowed, out);
        if !bytes.iter().any(u8::is_ascii_digit) {
            return;
        }
        let [l_phone, l_ssn, l_date, l_word, l_long, l_ip] = gates.legacy;
        if l_phone && gates.phone {
            for m in self.phone.find_iter(text) {
                let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
                if !allowed.phone(&digits) && !looks_like_time_range(m.as_str()) {
                    push(out, Kind::Phone, m.start(), m.end());
                }
            }
        }
        if (l_ssn || l_word) && gates.ssn {
            for m in self.ssn.find_iter(text) {
                if ssn_valid(m.as_str()) {
                    push(out, Kind::Ssn, m.start(), m.end());
                }
            }
        }
        // A keyword ("SSN", "seguro social") is gate enough: "SSN: 1234" has
        // no letter-space-digit run, and a partial SSN is still an identifier.
        if gates.has(Gates::SSN_CTX) {
            for c in caps(&self.ssn_ctx, text) {
                if let Some(v) = c.name("val") {
                    push(out, Kind::Ssn, v.start(), v.end());
                }
            }
        }
        if l_date || l_word {
            self.dates(text, gates, out);
        }
        if gates.has(Gates::IDS) {
            self.ids(text, out);
        }
        let l_age_address = l_word || l_long || l_ssn;
        // Ages over 89 need only their digits ("95-year-old" has no space).
        if gates.age {
            for c in caps(&self.age, text) {
                let m = if c.name("a").is_some() {
                    c.get(0)
                } else {
                    c.name("b")
                };
                if let Some(m) = m {
                    push(out, Kind::Age, m.start(), m.end());
                }
            }
        }
        if l_age_address {
            self.addresses(text, gates, out);
        }
        if l_long && gates.card {
            for m in self.card.find_iter(text) {
                let digits: Vec<u32> = m.as_str().chars().filter_map(|c| c.to_digit(10)).collect();
                if digits.len() >= 13 && luhn(&digits) {
                    push(out, Kind::Account, m.start(), m.end());
                }
            }
        }
        if l_long && gates.long_digits {
            for m in self.long_digits.find_iter(text) {
                // A long bare number that no other rule explains is a unique code (identifier 18).
                if !out.iter().any(|g| g.start <= m.start() && m.end() <= g.end)
                    && !overlaps(out, m.start(), m.end())
                {
                    let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
                    if !allowed.phone(&digits) {
                        push(out, Kind::Account, m.start(), m.end());
                    }
                }
            }
        }
        if l_ip && gates.ip {
            for m in self.ip.find_iter(text) {
                let ok = m.as_str().contains(':')
                    || m.as_str()
                        .split('.')
                        .all(|o| o.parse::<u16>().is_ok_and(|n| n <= 255));
                if ok {
                    push(out, Kind::Ip, m.start(), m.end());
                }
            }
        }
        if gates.mbi {
            for m in self.mbi.find_iter(text) {
                push(out, Kind::Insurance, m.start(), m.end());
            }
        }
        if gates.vin {
            for m in self.vin.find_iter(text) {
                let s = m.as_str();
                if s.bytes().any(|b| b.is_ascii_digit())
                    && s.bytes().any(|b| b.is_ascii_alphabetic())
                {
                    push(out, Kind::Vehicle, m.start(), m.end());
                }
            }
        }
    }

    fn names(&self, text: &str, allowed: &Allowed, out: &mut Vec<Finding>) {
        for c in caps(&self.name, text) {
            let Some(n) = c.name("n").or_else(|| c.name("r")).or_else(|| c.name("p")) else {
                continue;
            };
            if !allowed.name(n.as_str()) && !is_calendar_word(n.as_str()) {
                out.push(Finding {
                    kind: Kind::OtherName,
                    start: n.start(),
                    end: n.end(),
                });
            }
        }
    }

    fn dates(&self, text: &str, gates: &Gates, out: &mut Vec<Finding>) {
        if gates.has(Gates::DOB) {
            for c in caps(&self.dob_ctx, text) {
                if let Some(v) = c.name("val") {
                    out.push(Finding {
                        kind: Kind::Dob,
                        start: v.start(),
                        end: v.end(),
                    });
                }
            }
        }
        // A full date in the past (before 2020) is a birth date or a date of care: safe-harbor
        // identifier 3. Appointment dates are current and come through `allowed` anyway.
        let mut old = |m: Option<regex::Match<'_>>, year: Option<u32>| {
            if let (Some(m), Some(y)) = (m, year)
                && y < 2020
            {
                out.push(Finding {
                    kind: Kind::Dob,
                    start: m.start(),
                    end: m.end(),
                });
            }
        };
        if gates.numeric_date {
            for c in caps(&self.date_num, text) {
                old(c.get(0), year(&c, 3));
            }
        }
        // The other formats only count with a four-digit year before 2020.
        if !gates.old_year {
            return;
        }
        if gates.numeric_date {
            for c in caps(&self.date_iso, text) {
                old(c.get(0), year(&c, 1));
            }
        }
        for c in caps(&self.date_en, text) {
            let y = c
                .name("year")
                .or_else(|| c.name("year2"))
                .and_then(|m| m.as_str().parse().ok());
            old(c.get(0), y);
        }
        for c in caps(&self.date_es, text) {
            old(
                c.get(0),
                c.name("year").and_then(|m| m.as_str().parse().ok()),
            );
        }
    }

    fn ids(&self, text: &str, out: &mut Vec<Finding>) {
        for c in caps(&self.ids, text) {
            let Some(v) = c.name("val") else { continue };
            if v.as_str().bytes().filter(u8::is_ascii_digit).count() < 2 {
                continue;
            }
            let kind = ID_LABELS
                .iter()
                .enumerate()
                .find(|(i, _)| c.name(&format!("l{i}")).is_some())
                .map_or(Kind::Account, |(_, (k, _))| *k);
            out.push(Finding {
                kind,
                start: v.start(),
                end: v.end(),
            });
        }
    }

    fn addresses(&self, text: &str, gates: &Gates, out: &mut Vec<Finding>) {
        if gates.has(Gates::STREET_ES) {
            for m in self.street_es.find_iter(text) {
                out.push(Finding {
                    kind: Kind::Address,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
        if gates.house_number && gates.has(Gates::STREET) {
            self.streets(text, out);
        }
        if gates.zip {
            self.zips(text, out);
        }
    }

    fn streets(&self, text: &str, out: &mut Vec<Finding>) {
        for m in self.street.find_iter(text) {
            // A house number stands alone: not the tail of a phone number, URL path or time.
            let before = m
                .start()
                .checked_sub(1)
                .and_then(|i| text.as_bytes().get(i));
            if before.is_some_and(|b| !matches!(b, b' ' | b'(' | b',' | b'\n' | b'\t')) {
                continue;
            }
            let words: Vec<String> = m
                .as_str()
                .split_whitespace()
                .map(|w| w.trim_matches(['.', ',']).to_ascii_lowercase())
                .collect();
            let inner = words.get(1..words.len().saturating_sub(1)).unwrap_or(&[]);
            if inner.iter().any(|w| NOT_STREET.contains(&w.as_str())) {
                continue;
            }
            // "Dr" and "St" need a capitalised street name before them ("12 Oak Dr").
            let last = m.as_str().split_whitespace().last().unwrap_or("");
            if matches!(
                last.trim_end_matches('.'),
                "dr" | "st" | "Dr" | "St" | "pl" | "ct"
            ) && words.len() < 3
            {
                continue;
            }
            out.push(Finding {
                kind: Kind::Address,
                start: m.start(),
                end: m.end(),
            });
        }
    }

    fn zips(&self, text: &str, out: &mut Vec<Finding>) {
        for c in caps(&self.zip, text) {
            if c.name("st")
                .is_some_and(|st| !STATES.contains(&st.as_str()))
            {
                continue;
            }
            if let Some(z) = c
                .name("z")
                .or_else(|| c.name("z2"))
                .or_else(|| c.name("z3"))
            {
                out.push(Finding {
                    kind: Kind::Address,
                    start: z.start(),
                    end: z.end(),
                });
            }
        }
    }
}

/// Captures, after a cheap `is_match` (the lazy DFA says "no" fast; captures are slow).
fn caps<'t>(re: &'t Regex, text: &'t str) -> impl Iterator<Item = Captures<'t>> + 't {
    re.is_match(text)
        .then(|| re.captures_iter(text))
        .into_iter()
        .flatten()
}

fn year(c: &Captures<'_>, i: usize) -> Option<u32> {
    let s = c.get(i)?.as_str();
    let y: u32 = s.parse().ok()?;
    Some(if s.len() == 2 {
        // Two-digit years: 00–29 are this century.
        if y < 30 { 2000 + y } else { 1900 + y }
    } else {
        y
    })
}

fn inside(out: &[Finding], kind: Kind, at: usize) -> bool {
    out.iter()
        .any(|f| f.kind == kind && f.start <= at && at < f.end)
}

fn overlaps(out: &[Finding], s: usize, e: usize) -> bool {
    out.iter().any(|f| f.start < e && s < f.end)
}

/// "9:30-10:00" or "2-3 pm"-like runs are not phone numbers; the phone rule needs 7 digits anyway,
/// so only clock ranges written without colons could reach here.
fn looks_like_time_range(s: &str) -> bool {
    s.contains(':')
}

fn is_calendar_word(s: &str) -> bool {
    let first = s
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "monday"
            | "tuesday"
            | "wednesday"
            | "thursday"
            | "friday"
            | "saturday"
            | "sunday"
            | "lunes"
            | "martes"
            | "miercoles"
            | "jueves"
            | "viernes"
            | "sabado"
            | "domingo"
            | "reply"
            | "call"
            | "please"
            | "text"
    )
}

fn ssn_valid(s: &str) -> bool {
    let d: String = s.chars().filter(char::is_ascii_digit).collect();
    let (area, group, serial) = (d.get(0..3), d.get(3..5), d.get(5..9));
    !matches!(area, Some("000" | "666"))
        && area.is_some_and(|a| !a.starts_with('9'))
        && group != Some("00")
        && serial != Some("0000")
}

fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn host_of(url: &str) -> String {
    let u = url.to_ascii_lowercase();
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .unwrap_or(&u)
        .to_string();
    let host = u.split(['/', ':', '?', '#']).next().unwrap_or("");
    host.strip_prefix("www.").unwrap_or(host).to_string()
}

fn url_allowed(url: &str, domains: &[&str]) -> bool {
    let host = host_of(url);
    if SHORTENERS.contains(&host.as_str()) {
        return false;
    }
    domains.iter().any(|d| {
        let d = host_of(d.trim());
        !d.is_empty() && (host == d || host.ends_with(&format!(".{d}")))
    })
}

#[cfg(test)]
mod profile {
    #![allow(
        clippy::unwrap_used,
        clippy::print_stdout,
        clippy::disallowed_methods,
        clippy::as_conversions
    )]
    use super::*;
    use crate::guard::{Guard, ScanContext};

    #[test]
    #[ignore]
    fn phases() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/guard/corpus.jsonl");
        let texts: Vec<(String, String)> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["text"].as_str().unwrap().to_string(),
                    v["lang"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let folded: Vec<Folded> = texts.iter().map(|t| Folded::new(&t.0)).collect();
        let r = Rules::new();
        let g = Guard::new();
        let n = 200;
        let time = |name: &str, f: &dyn Fn(&Folded) -> usize| {
            let t0 = std::time::Instant::now();
            let mut k = 0;
            for _ in 0..n {
                for x in &folded {
                    k += f(x);
                }
            }
            let ns = t0.elapsed().as_nanos() as f64 / (n * folded.len()) as f64;
            println!("{name:14} {ns:8.0} ns/text  ({k})");
        };
        let regs: Vec<(&str, &Regex)> = vec![
            ("phone", &r.phone),
            ("ssn", &r.ssn),
            ("ssn_ctx", &r.ssn_ctx),
            ("date_num", &r.date_num),
            ("date_iso", &r.date_iso),
            ("date_en", &r.date_en),
            ("date_es", &r.date_es),
            ("dob_ctx", &r.dob_ctx),
            ("ids", &r.ids),
            ("mbi", &r.mbi),
            ("vin", &r.vin),
            ("card", &r.card),
            ("long_digits", &r.long_digits),
            ("ip", &r.ip),
            ("age", &r.age),
            ("street", &r.street),
            ("street_es", &r.street_es),
            ("zip", &r.zip),
            ("email", &r.email),
            ("url", &r.url),
            ("name", &r.name),
            ("opt_out", &r.opt_out),
        ];
        for (name, re) in &regs {
            time(name, &|f| re.find_iter(f.orig()).count());
        }
        for (name, re) in &regs {
            let nm = format!("ism {name}");
            time(&nm, &|f| usize::from(re.is_match(f.orig())));
        }
        time("gates", &|f| usize::from(r.gates(f).digit));
        time("from_text", &|f| {
            usize::from(Gates::from_text(f.orig().as_bytes(), f.lower().as_bytes()).digit)
        });
        time("fold", &|f| Folded::new(f.orig()).len());
        time("ac", &|f| {
            g.vocab
                .as_ref()
                .unwrap()
                .find_overlapping_iter(f.lower())
                .count()
        });
        for kind in [
            aho_corasick::AhoCorasickKind::DFA,
            aho_corasick::AhoCorasickKind::ContiguousNFA,
            aho_corasick::AhoCorasickKind::NoncontiguousNFA,
        ] {
            let mut terms: Vec<&str> = Vec::new();
            for (_, _, text) in crate::guard::VOCABS {
                terms.extend(text.lines().map(str::trim).filter(|t| !t.is_empty()));
            }
            let t0 = std::time::Instant::now();
            let ac = aho_corasick::AhoCorasick::builder()
                .kind(Some(kind))
                .build(&terms)
                .unwrap();
            println!(
                "{kind:?} build {:?} mem {}",
                t0.elapsed(),
                ac.memory_usage()
            );
            time("ac kind", &|f| ac.find_overlapping_iter(f.lower()).count());
        }
        println!("default kind {:?}", g.vocab.as_ref().unwrap().kind());
        time("fuzzy", &|f| {
            let mut out = Vec::new();
            g.fuzzy.scan(f.lower(), crate::guard::LANG_ALL, &mut out);
            out.len()
        });
        let t0 = std::time::Instant::now();
        for _ in 0..n {
            for (t, l) in &texts {
                let ctx = ScanContext {
                    lang: Some(l),
                    ..Default::default()
                };
                std::hint::black_box(g.scan(t, &ctx));
            }
        }
        let ns = t0.elapsed().as_nanos() as f64 / (n * texts.len()) as f64;
        println!("scan total     {ns:8.0} ns/text");
    }
}
