//! Pattern rules over the folded text: identifiers (P1) and test values. Each rule is one regex,
//! run only when the text has what it needs (a digit, an `@`, a dot, a capital letter), and
//! validated in code (checksums, allowed values, year of a date, context words).

use regex::{Captures, Regex, RegexSet};

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

pub(crate) struct Rules {
    /// Which digit rules can match at all (one pass).
    digit_set: RegexSet,
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
        let digit_rules = [
            r"\d{3}[\s.-]?\d{4}",                        // phone
            r"\d{3}[- ]\d{2}[- ]\d{4}|\d{9}",            // ssn
            r"\d[/.-]\d|\d{4}-\d\d-\d\d",                // numeric dates
            r"(?i)[a-z]\.?,?\s+\d|\d\s+(?:de\s+)?[a-z]", // dates with month names, streets, ages
            r"\d{7,}|\d{4}[\s-]\d{4}",                   // cards, long ids
            r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}",       // ip
        ];
        Rules {
            digit_set: RegexSet::new(digit_rules).unwrap_or_else(|_| RegexSet::empty()),
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

    pub(crate) fn scan(
        &self,
        f: &Folded,
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
        if bytes.contains(&b'.') {
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
        let set = self.digit_set.matches(text);
        if set.matched(0) {
            for m in self.phone.find_iter(text) {
                let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
                if !allowed.phone(&digits) && !looks_like_time_range(m.as_str()) {
                    push(out, Kind::Phone, m.start(), m.end());
                }
            }
        }
        if set.matched(1) || set.matched(3) {
            for m in self.ssn.find_iter(text) {
                if ssn_valid(m.as_str()) {
                    push(out, Kind::Ssn, m.start(), m.end());
                }
            }
            for c in caps(&self.ssn_ctx, text) {
                if let Some(v) = c.name("val") {
                    push(out, Kind::Ssn, v.start(), v.end());
                }
            }
        }
        if set.matched(2) || set.matched(3) {
            self.dates(text, out);
        }
        self.ids(text, out);
        if set.matched(3) || set.matched(4) || set.matched(1) {
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
            self.addresses(text, out);
        }
        if set.matched(4) {
            for m in self.card.find_iter(text) {
                let digits: Vec<u32> = m.as_str().chars().filter_map(|c| c.to_digit(10)).collect();
                if digits.len() >= 13 && luhn(&digits) {
                    push(out, Kind::Account, m.start(), m.end());
                }
            }
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
        if set.matched(5) {
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
        for m in self.mbi.find_iter(text) {
            push(out, Kind::Insurance, m.start(), m.end());
        }
        for m in self.vin.find_iter(text) {
            let s = m.as_str();
            if s.bytes().any(|b| b.is_ascii_digit()) && s.bytes().any(|b| b.is_ascii_alphabetic()) {
                push(out, Kind::Vehicle, m.start(), m.end());
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

    fn dates(&self, text: &str, out: &mut Vec<Finding>) {
        for c in caps(&self.dob_ctx, text) {
            if let Some(v) = c.name("val") {
                out.push(Finding {
                    kind: Kind::Dob,
                    start: v.start(),
                    end: v.end(),
                });
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
        for c in caps(&self.date_num, text) {
            old(c.get(0), year(&c, 3));
        }
        for c in caps(&self.date_iso, text) {
            old(c.get(0), year(&c, 1));
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

    fn addresses(&self, text: &str, out: &mut Vec<Finding>) {
        for m in self.street_es.find_iter(text) {
            out.push(Finding {
                kind: Kind::Address,
                start: m.start(),
                end: m.end(),
            });
        }
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
